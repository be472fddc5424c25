//! The seccomp-bpf filter installed in every tracee.
//!
//! The filter is the reason netvm costs nothing on calls it does not care about: only
//! the calls named by [`TrapRule`]s stop in the supervisor (`SECCOMP_RET_TRACE`);
//! everything else runs in the kernel at native speed.
//!
//! Calls whose rules are [`Delivery::Notify`] also get a second, small filter,
//! [`build_notifier`], stacked on the first: it returns `SECCOMP_RET_USER_NOTIF`
//! for them, which outranks the first filter's `SECCOMP_RET_TRACE`, so they reach
//! the supervisor as a seccomp notification rather than a ptrace stop (see
//! [`super::notify`]). Where the notifier cannot be installed, the first filter
//! still traps them.
//!
//! In front of the rules sits a fixed guard that shuts the doors through which a
//! process could make system calls the rules never see:
//! - the 32-bit compat ABI (`int 0x80` from a 64-bit process, or a 32-bit program),
//!   where for instance `socketcall` lives: every compat call but `exit` and
//!   `exit_group` fails with `ENOSYS`;
//! - the x32 ABI (call numbers with bit 30 set): `ENOSYS`;
//! - io_uring, whose ring executes socket operations without any system call that
//!   seccomp could see: `io_uring_setup`, `_enter` and `_register` fail with `ENOSYS`,
//!   as on a kernel built without io_uring, and programs fall back to plain calls.

use std::collections::{BTreeMap, BTreeSet};

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};

use super::arch::{AUDIT_ARCH_NATIVE, COMPAT_EXIT_CALLS, X32_SYSCALL_BIT};

/// One argument test of a [`TrapRule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgTest {
    /// The `int` argument (low 32 bits) differs from the value.
    IntNotEqual(u32),
    /// The 64-bit argument (pointer, size) is not zero.
    NotNull,
    /// The `int` argument, masked, equals the value.
    IntMaskedEqual {
        /// Which bits to compare.
        mask: u32,
        /// What they must equal.
        value: u32,
    },
}

/// How a trapped call reaches the supervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// A ptrace stop: the supervisor may rewrite the thread's registers, run
    /// another call first, and see the call return.
    Stop,
    /// A seccomp user notification: cheaper, but the supervisor can only read and
    /// write the process's memory and then either give the result or let the
    /// call run unchanged. For calls whose handling never needs more.
    Notify,
}

/// "Stop the tracee at this call when these argument tests all hold."
///
/// Several rules for one call are alternatives: any one matching traps the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrapRule {
    /// The native system call number.
    pub syscall: i64,
    /// `(argument index, test)` pairs, all of which must hold; empty traps every call.
    pub tests: Vec<(u8, ArgTest)>,
    /// How the call reaches the supervisor.
    pub delivery: Delivery,
}

impl TrapRule {
    /// Trap every call to `syscall`.
    pub fn always(syscall: i64) -> Self {
        Self { syscall, tests: Vec::new(), delivery: Delivery::Stop }
    }

    /// Trap `syscall` when argument `index` passes `test`.
    pub fn when(syscall: i64, index: u8, test: ArgTest) -> Self {
        Self { syscall, tests: vec![(index, test)], delivery: Delivery::Stop }
    }

    /// Deliver the call as a notification ([`Delivery::Notify`]).
    pub fn notified(self) -> Self {
        Self { delivery: Delivery::Notify, ..self }
    }
}

/// A failure to build the filter (a bug in the rules, never the user's input).
#[derive(Debug)]
pub struct FilterError(String);

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot build the seccomp filter: {}", self.0)
    }
}

impl std::error::Error for FilterError {}

/// Builds the whole program: the guard, then the trap rules.
pub fn build(rules: &[TrapRule]) -> Result<BpfProgram, FilterError> {
    let mut program = guard();
    program.extend(matching(rules, SeccompAction::Trace(0))?);
    Ok(program)
}

/// The program that returns `on_match` for a call one of `rules` matches, and
/// `SECCOMP_RET_ALLOW` for every other (after seccompiler's own architecture
/// check, which the callers' prologues make moot).
fn matching(rules: &[TrapRule], on_match: SeccompAction) -> Result<BpfProgram, FilterError> {
    let err = |e: seccompiler::BackendError| FilterError(e.to_string());
    let mut by_call: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let mut unconditional = BTreeSet::new();
    for rule in rules {
        let alternatives = by_call.entry(rule.syscall).or_default();
        if rule.tests.is_empty() {
            unconditional.insert(rule.syscall);
            continue;
        }
        let conditions = rule
            .tests
            .iter()
            .map(|&(index, test)| condition(index, test).map_err(err))
            .collect::<Result<Vec<_>, _>>()?;
        alternatives.push(SeccompRule::new(conditions).map_err(err)?);
    }
    // To seccompiler an empty list of alternatives means "always"; an unconditional
    // rule makes any conditional ones for the same call moot.
    for syscall in unconditional {
        by_call.insert(syscall, Vec::new());
    }
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(err)?;
    let filter =
        SeccompFilter::new(by_call.into_iter().collect(), SeccompAction::Allow, on_match, arch)
            .map_err(err)?;
    filter.try_into().map_err(err)
}

/// The rules whose calls [`build_notifier`] turns into notifications.
fn notified(rules: &[TrapRule]) -> Vec<TrapRule> {
    rules.iter().filter(|r| r.delivery == Delivery::Notify).cloned().collect()
}

/// The call numbers of which some are notifications (see [`build_notifier`]).
pub fn notified_calls(rules: &[TrapRule]) -> BTreeSet<i64> {
    notified(rules).iter().map(|r| r.syscall).collect()
}

/// The action the notifier's rules are compiled with, then replaced by
/// `SECCOMP_RET_USER_NOTIF` (which seccompiler does not know): a trace value no
/// other filter of netvm returns.
const NOTIFY_MARK: u32 = 0x4e56;

/// The notifier filter: `SECCOMP_RET_USER_NOTIF` for the native calls that the
/// [notified](TrapRule::notified) rules match, `SECCOMP_RET_ALLOW` (which defers
/// to the main filter) for everything else. `None` when no rule asks for
/// notification.
pub fn build_notifier(rules: &[TrapRule]) -> Result<Option<BpfProgram>, FilterError> {
    let rules = notified(rules);
    if rules.is_empty() {
        return Ok(None);
    }
    let mut program = vec![
        stmt(LD_W_ABS, DATA_ARCH),
        jump(JMP_JEQ_K, AUDIT_ARCH_NATIVE, 1, 0),
        stmt(RET_K, libc::SECCOMP_RET_ALLOW), // a foreign ABI: the main filter's
    ];
    let marked = libc::SECCOMP_RET_TRACE | NOTIFY_MARK;
    for mut insn in matching(&rules, SeccompAction::Trace(NOTIFY_MARK))? {
        if insn.code == RET_K && insn.k == marked {
            insn.k = libc::SECCOMP_RET_USER_NOTIF;
        }
        program.push(insn);
    }
    Ok(Some(program))
}

fn condition(index: u8, test: ArgTest) -> Result<SeccompCondition, seccompiler::BackendError> {
    use SeccompCmpArgLen::{Dword, Qword};
    match test {
        ArgTest::IntNotEqual(v) => SeccompCondition::new(index, Dword, SeccompCmpOp::Ne, v.into()),
        ArgTest::NotNull => SeccompCondition::new(index, Qword, SeccompCmpOp::Ne, 0),
        ArgTest::IntMaskedEqual { mask, value } => {
            SeccompCondition::new(index, Dword, SeccompCmpOp::MaskedEq(mask.into()), value.into())
        }
    }
}

// Classic BPF opcodes (linux/bpf_common.h).
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JMP_JEQ_K: u16 = 0x05 | 0x10;
const JMP_JGE_K: u16 = 0x05 | 0x30;
const JMP_JA: u16 = 0x05;
const RET_K: u16 = 0x06;
// Offsets in struct seccomp_data.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

/// A conditional jump's offset, which classic BPF keeps in a byte: a longer one
/// is a bug in the program's layout, caught here rather than wrapped around.
fn short_jump(skipped: usize) -> u8 {
    u8::try_from(skipped).expect("a conditional jump of at most 255 instructions")
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter { code, jt: 0, jf: 0, k }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// The calls the guard refuses with `ENOSYS`, as a kernel built without them would:
/// io_uring's (its ring runs socket operations no filter sees) and `clone3` (its
/// flags lie in memory the filter cannot read; C libraries fall back to `clone`).
const REFUSED: [i64; 4] = [
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_clone3,
];

/// The fixed prologue. It either returns, or falls through to the rules with the
/// guarantee that the call is a native-ABI call.
fn guard() -> Vec<sock_filter> {
    let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    let refused = REFUSED.len();
    // The layout, by instruction index:
    let checks = 4; // the refused calls' jumps start here
    let to_rules = checks + refused; // native and not refused: on to the rules
    let foreign = to_rules + 1; // another ABI: exit and exit_group only
    let deny = foreign + 3;
    let allow = deny + 1;
    let rules = allow + 1;
    // A jump's offset counts the instructions it skips after itself.
    let skip = |from: usize, to: usize| short_jump(to - from - 1);
    let mut program = vec![
        stmt(LD_W_ABS, DATA_ARCH),
        jump(JMP_JEQ_K, AUDIT_ARCH_NATIVE, 0, skip(1, foreign)),
        stmt(LD_W_ABS, DATA_NR),
        jump(JMP_JGE_K, X32_SYSCALL_BIT, skip(3, deny), 0),
    ];
    for (i, &call) in REFUSED.iter().enumerate() {
        program.push(jump(JMP_JEQ_K, call as u32, skip(checks + i, deny), 0));
    }
    program.push(stmt(JMP_JA, u32::from(skip(to_rules, rules))));
    program.push(stmt(LD_W_ABS, DATA_NR));
    program.push(jump(JMP_JEQ_K, COMPAT_EXIT_CALLS[0], skip(foreign + 1, allow), 0));
    program.push(jump(JMP_JEQ_K, COMPAT_EXIT_CALLS[1], skip(foreign + 2, allow), 0));
    program.push(stmt(RET_K, enosys));
    program.push(stmt(RET_K, libc::SECCOMP_RET_ALLOW));
    debug_assert_eq!(program.len(), rules);
    program
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Follows the guard's jumps for one (arch, nr) and says where it ends:
    /// `Some(action)` for a return, `None` for falling through to the rules.
    fn run_guard(arch: u32, nr: u32) -> Option<u32> {
        run(&guard(), arch, nr)
    }

    /// Runs a program for one (arch, nr) with all arguments zero.
    fn run(program: &[sock_filter], arch: u32, nr: u32) -> Option<u32> {
        run_call(program, arch, nr, [0; 6])
    }

    /// Runs a program of the instructions netvm's filters are made of (word
    /// loads, `AND`, conditional and plain jumps, returns) on one call, as the
    /// kernel would: `Some(action)` for a return, `None` for running off the end.
    fn run_call(program: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> Option<u32> {
        const ALU_AND_K: u16 = 0x04 | 0x50;
        const JMP_JGT_K: u16 = 0x05 | 0x20;
        const JMP_JSET_K: u16 = 0x05 | 0x40;
        // struct seccomp_data: nr, arch, instruction pointer, then the arguments.
        let word = |offset: u32| -> u32 {
            match offset {
                DATA_NR => nr,
                DATA_ARCH => arch,
                16..=63 if offset.is_multiple_of(4) => {
                    let arg = args[(offset as usize - 16) / 8];
                    // Little-endian: the low half first.
                    if offset.is_multiple_of(8) { arg as u32 } else { (arg >> 32) as u32 }
                }
                other => panic!("unexpected load at {other}"),
            }
        };
        let mut pc = 0;
        let mut acc = 0;
        while pc < program.len() {
            let insn = &program[pc];
            let condition = match insn.code {
                JMP_JEQ_K => Some(acc == insn.k),
                JMP_JGE_K => Some(acc >= insn.k),
                JMP_JGT_K => Some(acc > insn.k),
                JMP_JSET_K => Some(acc & insn.k != 0),
                _ => None,
            };
            match (insn.code, condition) {
                (_, Some(taken)) => pc += usize::from(if taken { insn.jt } else { insn.jf }),
                (LD_W_ABS, _) => acc = word(insn.k),
                (ALU_AND_K, _) => acc &= insn.k,
                (JMP_JA, _) => pc += insn.k as usize,
                (RET_K, _) => return Some(insn.k),
                (other, _) => panic!("unexpected opcode {other:#x}"),
            }
            pc += 1;
        }
        None
    }

    const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    const I386: u32 = super::super::arch::AUDIT_ARCH_COMPAT;

    #[test]
    fn native_calls_reach_the_rules() {
        for nr in [libc::SYS_read, libc::SYS_socket, libc::SYS_exit_group] {
            assert_eq!(run_guard(AUDIT_ARCH_NATIVE, nr as u32), None);
        }
    }

    #[test]
    fn io_uring_is_refused() {
        for nr in [libc::SYS_io_uring_setup, libc::SYS_io_uring_enter, libc::SYS_io_uring_register]
        {
            assert_eq!(run_guard(AUDIT_ARCH_NATIVE, nr as u32), Some(ENOSYS));
        }
    }

    #[test]
    fn clone3_is_refused_and_clone_is_not() {
        assert_eq!(run_guard(AUDIT_ARCH_NATIVE, libc::SYS_clone3 as u32), Some(ENOSYS));
        assert_eq!(run_guard(AUDIT_ARCH_NATIVE, libc::SYS_clone as u32), None);
    }

    #[test]
    fn x32_is_refused() {
        assert_eq!(run_guard(AUDIT_ARCH_NATIVE, X32_SYSCALL_BIT + 41), Some(ENOSYS));
    }

    #[test]
    fn compat_abi_gets_only_exit() {
        const SOCKETCALL: u32 = 102;
        assert_eq!(run_guard(I386, SOCKETCALL), Some(ENOSYS));
        assert_eq!(run_guard(I386, 359), Some(ENOSYS)); // socket
        assert_eq!(run_guard(I386, 1), Some(libc::SECCOMP_RET_ALLOW));
        assert_eq!(run_guard(I386, 252), Some(libc::SECCOMP_RET_ALLOW));
    }

    #[test]
    fn the_notifier_notifies_its_calls_only() {
        let rules = [
            TrapRule::always(libc::SYS_getsockname).notified(),
            TrapRule::always(libc::SYS_connect),
            TrapRule::always(libc::SYS_getpeername).notified(),
            TrapRule::when(libc::SYS_sendto, 4, ArgTest::NotNull),
        ];
        let program = build_notifier(&rules).unwrap().unwrap();
        let notify = Some(libc::SECCOMP_RET_USER_NOTIF);
        let allow = Some(libc::SECCOMP_RET_ALLOW);
        for nr in [libc::SYS_getsockname, libc::SYS_getpeername] {
            assert_eq!(run(&program, AUDIT_ARCH_NATIVE, nr as u32), notify);
            // The same number in another ABI is another call.
            assert_eq!(run(&program, I386, nr as u32), allow);
            assert_eq!(run(&program, AUDIT_ARCH_NATIVE, X32_SYSCALL_BIT + nr as u32), allow);
        }
        for nr in [libc::SYS_connect, libc::SYS_sendto, libc::SYS_read] {
            assert_eq!(run(&program, AUDIT_ARCH_NATIVE, nr as u32), allow);
        }
        assert!(build_notifier(&rules[1..2]).unwrap().is_none());
    }

    /// `socket` is notified for the families netvm serves, and `AF_UNIX`'s is
    /// left to the kernel by both filters.
    #[test]
    fn the_notifier_judges_arguments_as_the_main_filter_does() {
        let not_unix = ArgTest::IntNotEqual(libc::AF_UNIX as u32);
        let rules = [
            TrapRule::when(libc::SYS_socket, 0, not_unix).notified(),
            TrapRule::when(libc::SYS_sendto, 4, ArgTest::NotNull).notified(),
        ];
        let notifier = build_notifier(&rules).unwrap().unwrap();
        let main = build(&rules).unwrap();
        let socket = libc::SYS_socket as u32;
        let sendto = libc::SYS_sendto as u32;
        let notify = Some(libc::SECCOMP_RET_USER_NOTIF);
        let allow = Some(libc::SECCOMP_RET_ALLOW);
        let trace = Some(libc::SECCOMP_RET_TRACE);
        let on = |program: &[sock_filter], nr, args| run_call(program, AUDIT_ARCH_NATIVE, nr, args);
        for family in [libc::AF_INET, libc::AF_INET6, libc::AF_NETLINK, libc::AF_PACKET] {
            // The upper half of an int argument is not the kernel's to read.
            for domain in [family as u64, family as u64 | 1 << 32] {
                assert_eq!(on(&notifier, socket, [domain, 1, 0, 0, 0, 0]), notify);
                assert_eq!(on(&main, socket, [domain, 1, 0, 0, 0, 0]), trace);
            }
        }
        let unix = [libc::AF_UNIX as u64 | 7 << 32, 1, 0, 0, 0, 0];
        assert_eq!(on(&notifier, socket, unix), allow);
        assert_eq!(on(&main, socket, unix), allow);
        assert_eq!(on(&notifier, sendto, [3, 0, 0, 0, 0, 0]), allow);
        assert_eq!(on(&notifier, sendto, [3, 0, 0, 0, 1 << 40, 0]), notify);
    }

    #[test]
    fn rules_compile_with_every_kind_of_test() {
        let rules = [
            TrapRule::when(libc::SYS_socket, 0, ArgTest::IntNotEqual(1)),
            TrapRule::when(libc::SYS_sendto, 4, ArgTest::NotNull),
            TrapRule::when(
                libc::SYS_ioctl,
                1,
                ArgTest::IntMaskedEqual { mask: 0xff00, value: 0x8900 },
            ),
            TrapRule::always(libc::SYS_connect),
            TrapRule::when(libc::SYS_connect, 0, ArgTest::NotNull),
        ];
        let program = build(&rules).unwrap();
        assert_eq!(&program[..guard().len()], &guard()[..]);
        assert!(program.len() > guard().len() + rules.len());
    }
}
