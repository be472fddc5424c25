//! Setting up a process's scratch window (see [`window`](super::window)) by making
//! one of its threads run the calls, one after the other, before the call it was
//! stopped at:
//!
//! 1. `mmap` of the plain half: anonymous, private, never reserved;
//! 2. a call the notifier filter sends to the supervisor (`getsockname` on a
//!    descriptor no process can have), answered by installing the sealed memfd in
//!    the process (`SECCOMP_IOCTL_NOTIF_ADDFD`), the one way in for a descriptor;
//! 3. `mmap` of the memfd, shared and read-only;
//! 4. `mseal`: the mapping can be neither unmapped, remapped nor `mprotect`ed;
//! 5. `close` of the memfd's descriptor.
//!
//! Once per address space (see [`window`](super::window)); a `fork` child's
//! first trapped call only runs `mseal` on the sealed half it inherited (or the
//! plain one) and checks both, then shares its parent's window, or sets up its
//! own if the check fails. Without notifications (`--trace`, an old kernel) the sealed steps are left out
//! and inputs go to the plain half. A step that fails ends the sealed part (the
//! descriptor, once there, is still closed); the thread then makes its own call.

use std::collections::VecDeque;
#[cfg(test)]
use std::os::fd::AsRawFd;
use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::unistd::Pid;

use super::window::{self, Inheritance, SealOutcome, SealedMemory, Windows};

/// What `process` has mapped at `at` (`/proc/PID/maps`).
pub fn mapping_at(process: Pid, at: u64) -> Option<Mapping> {
    use std::io::BufRead;
    // Line by line: a large program's table runs to tens of kilobytes, and the
    // supervisor reads one per forked child.
    let maps = std::fs::File::open(format!("/proc/{process}/maps")).ok()?;
    let mut reader = std::io::BufReader::with_capacity(4096, maps);
    let mut line = String::with_capacity(256);
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(mapping) = parse_mapping(&line, at) {
            return Some(mapping);
        }
    }
}

/// A `/proc/PID/maps` line's mapping, if it starts at `at`:
/// `START-END PERMS OFFSET DEV INODE [PATH]`.
fn parse_mapping(line: &str, at: u64) -> Option<Mapping> {
    let mut fields = line.split_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let start = u64::from_str_radix(start, 16).ok()?;
    if start != at {
        return None;
    }
    let end = u64::from_str_radix(end, 16).ok()?;
    let shared_read_only = fields.next()? == "r--s";
    let inode = fields.nth(2)?.parse().ok()?;
    Some(Mapping { inode, len: end - start, shared_read_only })
}

/// The descriptor of step 2's call: beyond any process's descriptor limit, so a
/// program's own `getsockname` never looks like it.
pub const SENTINEL_FD: i32 = 0x7fff_4e56;

/// One call of the set-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Reseal,
    MapPlain,
    InstallMemfd,
    MapSealed,
    Seal,
    Close,
}

/// A thread running a process's window set-up in place of its call.
#[derive(Debug)]
pub struct WindowSetup {
    /// The call the thread made, made again at the end.
    pub number: i64,
    /// Its arguments.
    pub args: [u64; 6],
    current: Step,
    next: VecDeque<Step>,
    /// The sealed half, the supervisor's side, and the memfd until it is installed.
    memory: Option<(SealedMemory, Option<OwnedFd>)>,
    /// The memfd's descriptor in the process.
    installed: Option<i32>,
    /// Where the process mapped the sealed half.
    sealed_at: Option<u64>,
    /// Signals that came meanwhile (by number), delivered once the thread is back
    /// at its call.
    pub deferred: Vec<i32>,
    /// Whether the set-up maps a sealed half (the process has notifications).
    sealing: bool,
    /// How often a signal interrupted the current call.
    interruptions: u32,
    /// The window a `fork` child inherited, to check.
    inheritance: Option<Inheritance>,
    /// Whether the process has notifications (for a set-up of its own).
    notified: bool,
}

/// What a process has mapped at an address, as far as the sealed half goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The mapped file's inode.
    pub inode: u64,
    /// The mapping's length.
    pub len: u64,
    /// Mapped shared and read-only (`r--s`).
    pub shared_read_only: bool,
}

/// How often a set-up call is made again after a signal, before it counts as
/// failed (a storm of signals cannot hold a thread here forever).
const MAX_INTERRUPTIONS: u32 = 64;

/// Whether a call's result says a signal interrupted it: `EINTR`, or one of the
/// kernel's restart codes that a thread's register shows at a syscall stop.
fn is_interrupted(result: i64) -> bool {
    result == -i64::from(libc::EINTR) || matches!(-result, 512..=514 | 516)
}

impl WindowSetup {
    /// The set-up `process` needs before call `number(args)`, or `None`.
    /// `notified` says whether the notifier filter answers step 2.
    pub fn plan(
        windows: &Windows,
        process: Pid,
        notified: bool,
        number: i64,
        args: [u64; 6],
    ) -> Option<Self> {
        let mut steps = VecDeque::new();
        let inheritance = windows.inherited(process);
        if inheritance.is_some() {
            steps.push_back(Step::Reseal);
        }
        if windows.needs_mapping(process) {
            steps.push_back(Step::MapPlain);
        }
        let sealing =
            notified && (windows.needs_mapping(process) || windows.needs_sealing(process));
        let memory: Option<(SealedMemory, Option<OwnedFd>)> = if sealing {
            match SealedMemory::new() {
                Ok((memory, fd)) => Some((memory, Some(fd))),
                Err(e) => {
                    log::warn!("no sealed scratch window: {e}");
                    None
                }
            }
        } else {
            None
        };
        if memory.is_some() {
            steps.extend([Step::InstallMemfd, Step::MapSealed, Step::Seal, Step::Close]);
        }
        let current = steps.pop_front()?;
        let sealing = memory.is_some();
        Some(Self {
            number,
            args,
            current,
            next: steps,
            memory,
            installed: None,
            sealed_at: None,
            deferred: Vec::new(),
            sealing,
            interruptions: 0,
            inheritance,
            notified,
        })
    }

    /// The call the thread makes now: number and arguments.
    pub fn call(&self) -> (i64, [u64; 6]) {
        let size = window::SIZE as u64;
        let no_fd = u64::MAX; // -1
        match self.current {
            Step::Reseal => {
                let inherited =
                    self.inheritance.map_or(0, |i| i.sealed.map_or(i.plain, |(at, _)| at));
                (libc::SYS_mseal, [inherited, size, 0, 0, 0, 0])
            }
            Step::MapPlain => {
                let prot = (libc::PROT_READ | libc::PROT_WRITE) as u64;
                let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE) as u64;
                (libc::SYS_mmap, [0, size, prot, flags, no_fd, 0])
            }
            Step::InstallMemfd => (libc::SYS_getsockname, [SENTINEL_FD as u64, 0, 0, 0, 0, 0]),
            Step::MapSealed => {
                let fd = self.installed.map_or(no_fd, |fd| fd as u64);
                (libc::SYS_mmap, [0, size, libc::PROT_READ as u64, libc::MAP_SHARED as u64, fd, 0])
            }
            Step::Seal => (libc::SYS_mseal, [self.sealed_at.unwrap_or(0), size, 0, 0, 0, 0]),
            Step::Close => {
                (libc::SYS_close, [self.installed.map_or(no_fd, |fd| fd as u64), 0, 0, 0, 0, 0])
            }
        }
    }

    /// Whether the thread's notified call is step 2's.
    pub fn is_installing(&self, number: i64, args: &[u64; 6]) -> bool {
        self.current == Step::InstallMemfd
            && number == libc::SYS_getsockname
            && args[0] as u32 as i32 == SENTINEL_FD
    }

    /// The memfd to install (step 2), taken once.
    pub fn take_memfd(&mut self) -> Option<OwnedFd> {
        self.memory.as_mut().and_then(|(_, fd)| fd.take())
    }

    /// The current call returned `result`: records what it made in `windows`
    /// and moves on. `false` when the set-up is over. `mapping_at` tells what the
    /// process has mapped at an address ([`mapping_at`] does).
    ///
    /// A call a signal interrupted is made again. A set-up that fails leaves the
    /// window's halves missing, to be tried again at a later call (a descriptor
    /// or address space may be short for a moment); the calls that need them
    /// fail meanwhile. One whose sealed half the process tampered with is refused
    /// for good.
    pub fn advance(
        &mut self,
        result: i64,
        windows: &mut Windows,
        process: Pid,
        mapping_at: impl Fn(u64) -> Option<Mapping>,
    ) -> bool {
        if is_interrupted(result) && self.interruptions < MAX_INTERRUPTIONS {
            self.interruptions += 1;
            return true;
        }
        let ok = !(-4095..0).contains(&result);
        match (self.current, ok) {
            (Step::Reseal, _) => {
                // Whatever mseal said (an old kernel has none), what counts is what
                // is there: the plain half, whole, and the sealed one as made.
                let Some(inheritance) = self.inheritance else { return false };
                let plain = mapping_at(inheritance.plain);
                let plain_ok =
                    plain.is_some_and(|m| m.len == window::SIZE as u64 && !m.shared_read_only);
                let sealed_ok = inheritance.sealed.is_none_or(|(at, inode)| {
                    mapping_at(at)
                        == Some(Mapping { inode, len: window::SIZE as u64, shared_read_only: true })
                });
                if plain_ok && sealed_ok {
                    windows.adopt(process);
                    return false;
                }
                // Forked in the middle of its parent's set-up: a window of its own.
                windows.leave(process);
                let Some(own) = Self::plan(windows, process, self.notified, self.number, self.args)
                else {
                    return false;
                };
                *self = Self { deferred: std::mem::take(&mut self.deferred), ..own };
                return true;
            }
            (Step::MapPlain, true) => windows.mapped(process, result as u64),
            (Step::MapPlain, false) => {
                log::info!(
                    "process {process} has no room for netvm's scratch window yet ({})",
                    Errno::from_raw(-result as i32)
                );
                self.next.clear();
                return false;
            }
            (Step::InstallMemfd, true) => self.installed = Some(result as i32),
            (Step::MapSealed, true) => self.sealed_at = Some(result as u64),
            (Step::Close, _) => {}
            (Step::Seal, ok) => {
                if !ok {
                    log::info!(
                        "mseal: {}: process {process}'s sealed window could be unmapped",
                        Errno::from_raw(-result as i32)
                    );
                }
                // Only now, sealed, does the mapping stay as it is: it must be the
                // supervisor's memfd, all of it, shared and read-only (another
                // thread may have put a memfd of its own at the descriptor, or a
                // private, writable copy of this one at the address).
                let inode = self.memory.as_ref().map(|(memory, _)| memory.inode);
                let expected = inode.map(|inode| Mapping {
                    inode,
                    len: window::SIZE as u64,
                    shared_read_only: true,
                });
                match (self.memory.take(), self.sealed_at) {
                    (Some((memory, _)), Some(at))
                        if expected.is_some() && mapping_at(at) == expected =>
                    {
                        windows.sealed(process, SealOutcome::Mapped(memory, at));
                    }
                    _ => {
                        log::warn!(
                            "process {process} tampered with its sealed window: calls that need it fail"
                        );
                        windows.sealed(process, SealOutcome::Refused);
                    }
                }
            }
            (Step::InstallMemfd | Step::MapSealed, false) => {
                log::info!(
                    "process {process} has no sealed scratch window yet: {}",
                    Errno::from_raw(-result as i32)
                );
                // The descriptor, if installed, is still closed.
                let installed = self.installed.is_some();
                self.next.retain(|&s| s == Step::Close && installed);
            }
        }
        self.interruptions = 0;
        match self.next.pop_front() {
            Some(step) => {
                self.current = step;
                true
            }
            None => {
                if !self.sealing && windows.needs_sealing(process) {
                    windows.sealed(process, SealOutcome::NoNotifications);
                }
                false
            }
        }
    }

    /// The descriptor of the memfd this set-up would install, for tests.
    #[cfg(test)]
    fn memfd(&self) -> Option<i32> {
        self.memory.as_ref().and_then(|(_, fd)| fd.as_ref().map(|fd| fd.as_raw_fd()))
    }

    /// The memfd's inode, for tests.
    #[cfg(test)]
    fn memfd_inode(&self) -> Option<u64> {
        self.memory.as_ref().map(|(memory, _)| memory.inode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracer::window::Inputs;

    const CALL: (i64, [u64; 6]) = (libc::SYS_connect, [3, 0x1000, 16, 0, 0, 0]);

    fn plan(windows: &Windows, process: Pid, notified: bool) -> Option<WindowSetup> {
        WindowSetup::plan(windows, process, notified, CALL.0, CALL.1)
    }

    /// Runs a set-up to its end, every call returning what `answer` says; the
    /// process maps the supervisor's memfd where asked.
    fn run(
        setup: &mut WindowSetup,
        windows: &mut Windows,
        answer: impl Fn(Step) -> i64,
    ) -> Vec<i64> {
        let mapped = setup.memfd_inode().map(|inode| Mapping {
            inode,
            len: window::SIZE as u64,
            shared_read_only: true,
        });
        run_seeing(setup, windows, answer, mapped)
    }

    /// As [`run`], the process having mapped the file of inode `mapped`.
    fn run_seeing(
        setup: &mut WindowSetup,
        windows: &mut Windows,
        answer: impl Fn(Step) -> i64,
        mapped: Option<Mapping>,
    ) -> Vec<i64> {
        let process = Pid::from_raw(1);
        let mut calls = vec![setup.call().0];
        while setup.advance(answer(setup.current), windows, process, |_| mapped) {
            calls.push(setup.call().0);
        }
        calls
    }

    fn fine(step: Step) -> i64 {
        match step {
            Step::MapPlain => 0x7000_0000,
            Step::InstallMemfd => 9,
            Step::MapSealed => 0x7100_0000,
            _ => 0,
        }
    }

    #[test]
    fn a_new_process_gets_both_halves() {
        let mut windows = Windows::default();
        let process = Pid::from_raw(1);
        let mut setup = plan(&windows, process, true).unwrap();
        assert!(setup.memfd().is_some());
        let calls = run(&mut setup, &mut windows, fine);
        let expected = [
            libc::SYS_mmap,
            libc::SYS_getsockname,
            libc::SYS_mmap,
            libc::SYS_mseal,
            libc::SYS_close,
        ];
        assert_eq!(calls, expected);
        assert!(!windows.needs_mapping(process) && !windows.needs_sealing(process));
        let place = windows.room(process, process).small.unwrap();
        let Inputs::Sealed(sealed) = place.inputs else { panic!("not sealed") };
        assert_eq!((place.address, sealed.tracee), (0x7000_0000, 0x7100_0000));
        assert!(plan(&windows, process, true).is_none(), "nothing left to do");
    }

    #[test]
    fn without_notifications_only_the_plain_half() {
        let mut windows = Windows::default();
        let process = Pid::from_raw(1);
        let mut setup = plan(&windows, process, false).unwrap();
        assert_eq!(run(&mut setup, &mut windows, fine), [libc::SYS_mmap]);
        assert!(!windows.needs_sealing(process));
        assert_eq!(windows.room(process, process).small.unwrap().inputs, Inputs::Plain);
    }

    #[test]
    fn a_swapped_descriptor_is_found_out() {
        let mut windows = Windows::default();
        let process = Pid::from_raw(1);
        let mut setup = plan(&windows, process, true).unwrap();
        // Another memfd at the address; then this one, but a private copy.
        let other = Mapping { inode: 4242, len: window::SIZE as u64, shared_read_only: true };
        let calls = run_seeing(&mut setup, &mut windows, fine, Some(other));
        assert_eq!(calls.len(), 5, "every call is made: {calls:?}");
        assert_eq!(windows.room(process, process).small.unwrap().inputs, Inputs::Refused);
        assert!(!windows.needs_sealing(process), "for good");
        let mut windows = Windows::default();
        let mut setup = plan(&windows, process, true).unwrap();
        let private = Mapping {
            inode: setup.memfd_inode().unwrap(),
            len: window::SIZE as u64,
            shared_read_only: false,
        };
        run_seeing(&mut setup, &mut windows, fine, Some(private));
        assert_eq!(windows.room(process, process).small.unwrap().inputs, Inputs::Refused);
    }

    #[test]
    fn a_failed_step_still_closes_the_descriptor() {
        let mut windows = Windows::default();
        let process = Pid::from_raw(1);
        let mut setup = plan(&windows, process, true).unwrap();
        let calls = run(&mut setup, &mut windows, |step| {
            if step == Step::MapSealed { -(libc::ENOMEM as i64) } else { fine(step) }
        });
        assert_eq!(calls, [libc::SYS_mmap, libc::SYS_getsockname, libc::SYS_mmap, libc::SYS_close]);
        // Tried again later; meanwhile nothing goes where the program could race it.
        assert!(windows.needs_sealing(process));
        assert_eq!(windows.room(process, process).small.unwrap().inputs, Inputs::Refused);
        // No plain half: nothing more is tried now, all of it later.
        let mut windows = Windows::default();
        let mut setup = plan(&windows, process, true).unwrap();
        assert_eq!(run(&mut setup, &mut windows, |_| -(libc::ENOMEM as i64)), [libc::SYS_mmap]);
        assert!(windows.needs_mapping(process));
    }

    #[test]
    fn an_interrupted_call_is_made_again() {
        let mut windows = Windows::default();
        let process = Pid::from_raw(1);
        let mut setup = plan(&windows, process, true).unwrap();
        assert!(setup.advance(0x7000_0000, &mut windows, process, |_| None));
        assert_eq!(setup.current, Step::InstallMemfd);
        for interrupted in [-512, -i64::from(libc::EINTR)] {
            assert!(setup.advance(interrupted, &mut windows, process, |_| None));
            assert_eq!(setup.current, Step::InstallMemfd);
        }
        assert!(setup.advance(9, &mut windows, process, |_| None));
        assert_eq!(setup.current, Step::MapSealed);
    }

    #[test]
    fn a_fork_child_checks_what_it_inherited() {
        let mut windows = Windows::default();
        let (parent, child) = (Pid::from_raw(1), Pid::from_raw(2));
        let mut setup = plan(&windows, parent, true).unwrap();
        let inode = setup.memfd_inode().unwrap();
        run(&mut setup, &mut windows, fine);
        let plain = Mapping { inode: 0, len: window::SIZE as u64, shared_read_only: false };
        let sealed = Mapping { inode, len: window::SIZE as u64, shared_read_only: true };
        let seen = |at: u64| match at {
            0x7000_0000 => Some(plain),
            0x7100_0000 => Some(sealed),
            _ => None,
        };
        // Inherited whole: one mseal, then the parent's window.
        windows.forked(parent, child, false);
        let mut setup = plan(&windows, child, true).unwrap();
        assert_eq!(setup.call(), (libc::SYS_mseal, [0x7100_0000, window::SIZE as u64, 0, 0, 0, 0]));
        assert!(!setup.advance(0, &mut windows, child, seen));
        let Inputs::Sealed(place) = windows.room(child, child).small.unwrap().inputs else {
            panic!("not sealed")
        };
        assert_eq!(place.tracee, 0x7100_0000);
        windows.leave(child);
        // Forked before the sealed half was there: a window of its own.
        windows.forked(parent, child, false);
        let mut setup = plan(&windows, child, true).unwrap();
        assert!(setup.advance(0, &mut windows, child, |at| (at == 0x7000_0000).then_some(plain)));
        assert_eq!(setup.call().0, libc::SYS_mmap);
        assert!(windows.needs_mapping(child));
    }

    #[test]
    fn maps_lines_are_read() {
        let line =
            "7f84b8800000-7f84b9000000 r--s 00000000 00:01 27    /memfd:netvm-window (deleted)";
        let mapping = Mapping { inode: 27, len: 0x80_0000, shared_read_only: true };
        assert_eq!(parse_mapping(line, 0x7f84_b880_0000), Some(mapping));
        assert_eq!(parse_mapping(line, 0x7f84_b880_1000), None);
        let private = line.replace("r--s", "rw-p");
        assert_eq!(
            parse_mapping(&private, 0x7f84_b880_0000).map(|m| m.shared_read_only),
            Some(false)
        );
    }

    #[test]
    fn the_installing_call_is_recognised() {
        let windows = Windows::default();
        let mut setup = plan(&windows, Pid::from_raw(1), true).unwrap();
        let mut w = Windows::default();
        assert!(setup.advance(0x7000_0000, &mut w, Pid::from_raw(1), |_| None));
        let (number, args) = setup.call();
        assert!(setup.is_installing(number, &args));
        assert!(!setup.is_installing(number, &[3, 0, 0, 0, 0, 0]));
        assert!(setup.take_memfd().is_some());
        assert!(setup.take_memfd().is_none());
    }
}
