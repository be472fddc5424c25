//! Everything that depends on the CPU architecture, in one place.
//!
//! netvm serves the x86_64 system-call ABI. Porting to aarch64 means writing a second
//! version of this file: the register names, the syscall-instruction length, the audit
//! architecture the seccomp filter checks and the ELF machine the launcher accepts.

use nix::sys::ptrace;
use nix::unistd::Pid;

/// The `AUDIT_ARCH_*` value seccomp reports for the native ABI.
pub const AUDIT_ARCH_NATIVE: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
/// The `AUDIT_ARCH_*` value of the 32-bit compat ABI reachable from a native process
/// (`int 0x80`), which netvm refuses.
pub const AUDIT_ARCH_COMPAT: u32 = 0x4000_0003; // AUDIT_ARCH_I386
/// Syscall numbers at or above this bit belong to the x32 ABI, which netvm refuses.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// `exit` and `exit_group` in the compat ABI: the only compat calls let through, so that
/// a program that strays there can still end.
pub const COMPAT_EXIT_CALLS: [u32; 2] = [1, 252];
/// The ELF machine of programs netvm can run.
pub const ELF_MACHINE_NATIVE: u16 = goblin::elf::header::EM_X86_64;
/// Length of the `syscall` instruction, to step back over it and run a call again.
const SYSCALL_INSN_LEN: u64 = 2;
/// Code segment selector of a 64-bit user process; anything else runs a compat ABI.
const USER_CS_64: u64 = 0x33;

/// A stopped thread's general registers, with names for their roles in a system call.
#[derive(Clone, Copy)]
pub struct Registers(libc::user_regs_struct);

impl Registers {
    /// Reads the registers of a thread in a ptrace stop.
    pub fn read(tid: Pid) -> nix::Result<Self> {
        ptrace::getregs(tid).map(Self)
    }

    /// The registers of a call that arrived as a seccomp notification: its number
    /// and arguments, everything else zero. The thread is not stopped; these are
    /// never written back.
    pub fn of_notified_call(number: i64, args: [u64; 6]) -> Self {
        // SAFETY: user_regs_struct is plain integers; all zeros is a valid value.
        let mut regs = Self(unsafe { std::mem::zeroed() });
        regs.set_syscall_number(number);
        for (index, value) in args.into_iter().enumerate() {
            regs.set_syscall_arg(index, value);
        }
        regs
    }

    /// Writes the registers back to a thread in a ptrace stop.
    pub fn write(&self, tid: Pid) -> nix::Result<()> {
        ptrace::setregs(tid, self.0)
    }

    /// The system call number (as seen at a seccomp or syscall stop).
    pub fn syscall_number(&self) -> i64 {
        self.0.orig_rax as i64
    }

    /// The six system call arguments, in ABI order.
    pub fn syscall_args(&self) -> [u64; 6] {
        let r = &self.0;
        [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9]
    }

    /// Replaces argument `index` (0 to 5).
    pub fn set_syscall_arg(&mut self, index: usize, value: u64) {
        let r = &mut self.0;
        match index {
            0 => r.rdi = value,
            1 => r.rsi = value,
            2 => r.rdx = value,
            3 => r.r10 = value,
            4 => r.r8 = value,
            5 => r.r9 = value,
            _ => panic!("system calls have six arguments, not {}", index + 1),
        }
    }

    /// Replaces the system call about to run (at a seccomp stop).
    pub fn set_syscall_number(&mut self, number: i64) {
        self.0.orig_rax = number as u64;
    }

    /// The return value (at a syscall-exit stop): a result, or `-errno`.
    pub fn return_value(&self) -> i64 {
        self.0.rax as i64
    }

    /// Sets the value the tracee will see returned.
    pub fn set_return_value(&mut self, value: i64) {
        self.0.rax = value as u64;
    }

    /// At a seccomp stop: do not run the call, return `value` instead.
    pub fn skip_syscall(&mut self, value: i64) {
        self.set_syscall_number(-1);
        self.set_return_value(value);
    }

    /// At a syscall-exit stop: make the thread execute the same call again when it
    /// resumes, with the (possibly rewritten) arguments and the original number.
    pub fn restart_syscall(&mut self, number: i64) {
        self.0.rip -= SYSCALL_INSN_LEN;
        self.0.rax = number as u64;
    }

    /// At a syscall's exit: make the thread run call `number` with `args` when it
    /// resumes (see [`restart_syscall`](Self::restart_syscall)).
    pub fn restart_as(&mut self, number: i64, args: [u64; 6]) {
        self.restart_syscall(number);
        for (index, value) in args.into_iter().enumerate() {
            self.set_syscall_arg(index, value);
        }
    }

    /// Whether the thread runs 64-bit code (false after it execs a 32-bit program).
    pub fn is_native_mode(&self) -> bool {
        self.0.cs == USER_CS_64
    }
}

impl std::fmt::Debug for Registers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registers")
            .field("nr", &self.syscall_number())
            .field("args", &self.syscall_args())
            .field("ret", &self.return_value())
            .finish()
    }
}
