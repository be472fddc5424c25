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
//! Once per program: children share their parent's window (see
//! [`window`](super::window)). Without notifications (`--trace`, an old kernel) the sealed steps are left out
//! and inputs go to the plain half. A step that fails ends the sealed part (the
//! descriptor, once there, is still closed); the thread then makes its own call.

use std::collections::VecDeque;
#[cfg(test)]
use std::os::fd::AsRawFd;
use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::window::{self, SealOutcome, SealedMemory, Windows};

/// The inode of the file `process` has mapped at `at` (`/proc/PID/maps`).
pub fn mapped_inode(process: Pid, at: u64) -> Option<u64> {
    let maps = std::fs::read_to_string(format!("/proc/{process}/maps")).ok()?;
    let line = maps.lines().find(|l| {
        l.split('-').next().and_then(|start| u64::from_str_radix(start, 16).ok()) == Some(at)
    })?;
    line.split_whitespace().nth(4)?.parse().ok()
}

/// The descriptor of step 2's call: beyond any process's descriptor limit, so a
/// program's own `getsockname` never looks like it.
pub const SENTINEL_FD: i32 = 0x7fff_4e56;

/// One call of the set-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
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
    /// Signals that came meanwhile, delivered once the thread is back at its call.
    pub deferred: Vec<Signal>,
    /// The sealed half failed: calls that need it are to fail.
    refused: bool,
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
        let refused = sealing && memory.is_none();
        Some(Self {
            number,
            args,
            current,
            next: steps,
            memory,
            installed: None,
            sealed_at: None,
            deferred: Vec::new(),
            refused,
        })
    }

    /// The call the thread makes now: number and arguments.
    pub fn call(&self) -> (i64, [u64; 6]) {
        let size = window::SIZE as u64;
        let no_fd = u64::MAX; // -1
        match self.current {
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
    /// and moves on. `false` when the set-up is over. `inode_at` tells which file
    /// the process has mapped at an address ([`mapped_inode`] does).
    pub fn advance(
        &mut self,
        result: i64,
        windows: &mut Windows,
        process: Pid,
        inode_at: impl Fn(u64) -> Option<u64>,
    ) -> bool {
        let ok = !(-4095..0).contains(&result);
        match (self.current, ok) {
            (Step::MapPlain, true) => windows.mapped(process, Some(result as u64)),
            (Step::MapPlain, false) => {
                log::warn!(
                    "process {process} has no room for netvm's scratch window ({}): calls \
                     that need it fail with ENOMEM",
                    Errno::from_raw(-result as i32)
                );
                windows.mapped(process, None);
                self.next.clear();
            }
            (Step::InstallMemfd, true) => self.installed = Some(result as i32),
            (Step::MapSealed, true) => {
                // Another thread may have put something else at the descriptor's
                // number meanwhile (a memfd of its own, mapped writable elsewhere):
                // only the supervisor's memfd will do.
                let inode = self.memory.as_ref().map(|(memory, _)| memory.inode);
                if inode.is_some() && inode == inode_at(result as u64) {
                    self.sealed_at = Some(result as u64);
                } else {
                    log::warn!(
                        "process {process} swapped its sealed window: calls that need it fail"
                    );
                    self.refused = true;
                    self.next.retain(|&s| s == Step::Close);
                }
            }
            (Step::Close, _) => {}
            (Step::Seal, ok) => {
                if !ok {
                    log::info!(
                        "mseal: {}: process {process}'s sealed window could be unmapped",
                        Errno::from_raw(-result as i32)
                    );
                }
                if let (Some((memory, _)), Some(at)) = (self.memory.take(), self.sealed_at) {
                    windows.sealed(process, SealOutcome::Mapped(memory, at));
                }
            }
            (Step::InstallMemfd | Step::MapSealed, false) => {
                log::info!(
                    "process {process} has no sealed scratch window: {}",
                    Errno::from_raw(-result as i32)
                );
                self.refused = true;
                // The descriptor, if installed, is still closed.
                let installed = self.installed.is_some();
                self.next.retain(|&s| s == Step::Close && installed);
            }
        }
        if self.current == Step::MapPlain && !ok {
            return false;
        }
        match self.next.pop_front() {
            Some(step) => {
                self.current = step;
                true
            }
            None => {
                if windows.needs_sealing(process) {
                    let outcome = if self.refused || self.memory.is_some() {
                        SealOutcome::Refused
                    } else {
                        SealOutcome::NoNotifications
                    };
                    windows.sealed(process, outcome);
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
        let inode = setup.memfd_inode();
        run_seeing(setup, windows, answer, inode)
    }

    /// As [`run`], the process having mapped the file of inode `mapped`.
    fn run_seeing(
        setup: &mut WindowSetup,
        windows: &mut Windows,
        answer: impl Fn(Step) -> i64,
        mapped: Option<u64>,
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
        let calls = run_seeing(&mut setup, &mut windows, fine, Some(4242));
        assert_eq!(calls, [libc::SYS_mmap, libc::SYS_getsockname, libc::SYS_mmap, libc::SYS_close]);
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
        assert!(!windows.needs_sealing(process));
        assert_eq!(windows.room(process, process).small.unwrap().inputs, Inputs::Refused);
        // A plain half refused: nothing more is tried.
        let mut windows = Windows::default();
        let mut setup = plan(&windows, process, true).unwrap();
        assert_eq!(run(&mut setup, &mut windows, |_| -(libc::ENOMEM as i64)), [libc::SYS_mmap]);
        assert!(!windows.needs_mapping(process));
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
