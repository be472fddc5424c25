//! `boundary`: the session's process boundary, as the filter's first line.
//!
//! The kernel holds this boundary itself (see [`crate::sandbox`]): a process of the
//! session cannot trace, read, write or take fds from a process outside its user
//! namespace, nor from the non-dumpable supervisor. This module makes the same
//! calls fail early, with the `EPERM` the kernel gives an unprivileged process,
//! and shows each attempt in `--trace`:
//! - `ptrace`, `process_vm_readv`, `process_vm_writev`, `pidfd_open`, `pidfd_getfd`
//!   and `kcmp` on a process outside the session;
//! - `setns` to a namespace no process of the session is in;
//! - `clone` with `CLONE_UNTRACED`, whose child netvm could not follow (a program
//!   would trace it itself and let its socket calls run unseen);
//! - a network namespace of the program's own (`unshare` or `clone` with
//!   `CLONE_NEWNET`): its sockets would be cut off from the virtual network, so
//!   the program is told at once rather than left with a silently dead one.
//!
//! `clone3`, whose flags lie in memory the filter cannot read, fails with `ENOSYS`
//! in the filter's fixed guard; C libraries then fall back to `clone`.

use std::collections::HashSet;
use std::os::fd::AsRawFd;
use std::rc::Rc;

use nix::errno::Errno;
use nix::unistd::Pid;

use super::{Answer, Disposition, Module};
use crate::syscall::{CloneFlags, ProcessAccess, Syscall};
use crate::tracer::filter::{ArgTest, TrapRule};
use crate::tracer::{SyscallStop, TraceeMemory, thread_group_of};

/// The clone flags that are refused.
const REFUSED_CLONE_FLAGS: [u64; 2] = [libc::CLONE_UNTRACED as u64, libc::CLONE_NEWNET as u64];

/// The boundary module: which processes are the session's.
pub struct Boundary {
    processes: HashSet<Pid>,
    by: Rc<str>,
    /// A program was told that it cannot have a network namespace of its own.
    warned_of_namespaces: bool,
}

impl Default for Boundary {
    fn default() -> Self {
        Self { processes: HashSet::new(), by: "sandbox".into(), warned_of_namespaces: false }
    }
}

impl Boundary {
    /// Whether `pid`, a process or a thread, belongs to the session.
    fn is_inside(&self, pid: i32) -> bool {
        let pid = Pid::from_raw(pid);
        pid.as_raw() > 0
            && (self.processes.contains(&pid)
                || thread_group_of(pid).is_some_and(|p| self.processes.contains(&p)))
    }

    fn answer_clone(&mut self, stop: &SyscallStop, flags: CloneFlags) -> Disposition {
        if flags.flags & libc::CLONE_NEWNET as u64 != 0 && !self.warned_of_namespaces {
            self.warned_of_namespaces = true;
            eprintln!(
                "netvm: process {} asked for a network namespace of its own ({}): refused, \
                 since its sockets would be cut off from the session's virtual network",
                stop.process,
                stop.call().name()
            );
        }
        if REFUSED_CLONE_FLAGS.iter().any(|f| flags.flags & f != 0) {
            refuse()
        } else {
            Disposition::Kernel
        }
    }

    fn answer_access(&self, access: ProcessAccess) -> Disposition {
        if access.request == Some(libc::PTRACE_TRACEME.into()) || self.is_inside(access.pid) {
            Disposition::Kernel
        } else {
            refuse()
        }
    }

    /// `setns` joins a namespace of a session process, or none.
    fn answer_setns(&self, stop: &SyscallStop, fd: i32) -> Disposition {
        let link = match read_proc(stop, "fd", fd, std::fs::read_link) {
            Ok(link) => link.to_string_lossy().into_owned(),
            Err(Errno::EBADF | Errno::ENOENT) => return Disposition::Kernel, // EBADF from the kernel
            Err(_) => return refuse(),
        };
        if link == "anon_inode:[pidfd]" {
            return match pidfd_target(stop, fd) {
                Ok(Some(pid)) if pid == ENDED || self.is_inside(pid) => Disposition::Kernel,
                _ => refuse(),
            };
        }
        // `net:[4026531840]`: the namespace's type and identity. Anything else (a
        // file, a pipe, a socket) is no namespace: the kernel's own EINVAL.
        let Some((kind, _)) = link.split_once(':').filter(|(kind, _)| NAMESPACES.contains(kind))
        else {
            return Disposition::Kernel;
        };
        let joined_by_the_session = self.processes.iter().any(|p| {
            std::fs::read_link(format!("/proc/{p}/ns/{kind}"))
                .is_ok_and(|own| own.to_string_lossy() == link)
        });
        if joined_by_the_session { Disposition::Kernel } else { refuse() }
    }
}

/// What a pidfd's `fdinfo` says of a process that has ended (and been reaped):
/// nothing is left to reach, and the kernel says `ESRCH`.
const ENDED: i32 = -1;

/// The kinds of namespace a `/proc/PID/ns` link names (`net:[4026531840]`).
const NAMESPACES: [&str; 8] = ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"];

fn refuse() -> Disposition {
    Disposition::Return(-(Errno::EPERM as i64))
}

impl Module for Boundary {
    fn name(&self) -> &'static str {
        "boundary"
    }

    fn trap_rules(&self) -> Vec<TrapRule> {
        let has = |flag: u64| ArgTest::IntMaskedEqual { mask: flag as u32, value: flag as u32 };
        let mut rules: Vec<TrapRule> = REFUSED_CLONE_FLAGS
            .iter()
            .map(|&flag| TrapRule::when(libc::SYS_clone, 0, has(flag)))
            .collect();
        rules.push(TrapRule::when(libc::SYS_unshare, 0, has(libc::CLONE_NEWNET as u64)));
        rules.extend(
            [
                libc::SYS_setns,
                libc::SYS_ptrace,
                libc::SYS_process_vm_readv,
                libc::SYS_process_vm_writev,
                libc::SYS_pidfd_open,
                libc::SYS_pidfd_getfd,
                libc::SYS_kcmp,
            ]
            .map(TrapRule::always),
        );
        rules
    }

    fn handle(&mut self, stop: &mut SyscallStop) -> Answer {
        let disposition = match stop.call() {
            Syscall::Clone(flags) | Syscall::Unshare(flags) => self.answer_clone(stop, flags),
            Syscall::ProcessAccess(_, access) => self.answer_access(access),
            Syscall::Kcmp(c) => {
                if self.is_inside(c.pid1) && self.is_inside(c.pid2) {
                    Disposition::Kernel
                } else {
                    refuse()
                }
            }
            Syscall::PidfdGetfd(c) => match pidfd_target(stop, c.pidfd) {
                Ok(Some(pid)) if pid != ENDED && !self.is_inside(pid) => refuse(),
                // Not a pidfd, or no fd: the kernel's own error.
                Ok(_) => Disposition::Kernel,
                // Whose pidfd it is cannot be told: refused all the same.
                Err(_) => refuse(),
            },
            Syscall::Setns(c) => self.answer_setns(stop, c.fd),
            _ => Disposition::Kernel,
        };
        Answer { by: self.by.clone(), disposition }
    }

    fn describe(&self, _memory: &TraceeMemory, call: &Syscall, _result: i64) -> String {
        match *call {
            Syscall::Clone(c) | Syscall::Unshare(c) => format!("{:#x}", c.flags),
            Syscall::Setns(c) => format!("{}, {:#x}", c.fd, c.nstype),
            Syscall::ProcessAccess(_, c) => match c.request {
                Some(request) => format!("{request:#x}, {}, ...", c.pid),
                None => format!("{}, ...", c.pid),
            },
            Syscall::PidfdGetfd(c) => format!("{}, {}, {}", c.pidfd, c.target, c.flags),
            Syscall::Kcmp(c) => format!("{}, {}, {}, ...", c.pid1, c.pid2, c.ty),
            _ => String::new(),
        }
    }

    fn process_started(&mut self, process: Pid, _parent: Option<Pid>) {
        self.processes.insert(process);
    }

    fn process_ended(&mut self, process: Pid) {
        self.processes.remove(&process);
    }
}

/// The process a pidfd of the stopped thread refers to (its `fdinfo` says
/// `Pid:`), or `None` if `fd` is no pidfd or no fd at all; an error if the
/// supervisor may not look.
fn pidfd_target(stop: &SyscallStop, fd: i32) -> Result<Option<i32>, Errno> {
    match read_proc(stop, "fdinfo", fd, std::fs::read_to_string) {
        Ok(info) => Ok(pidfd_pid(&info)),
        Err(Errno::EBADF | Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The `Pid:` a pidfd's `fdinfo` names.
fn pidfd_pid(info: &str) -> Option<i32> {
    info.lines().find_map(|l| l.strip_prefix("Pid:")).and_then(|v| v.trim().parse().ok())
}

/// Reads (with `read`) the entry `/proc/TID/DIR/FD` of the stopped thread's fd
/// `fd` (`DIR` being `fd` or `fdinfo`). A process that made itself non-dumpable
/// has its `/proc` entries owned by a root the session does not map, and closed
/// to the supervisor: then the entry of the supervisor's own copy of the fd.
fn read_proc<T>(
    stop: &SyscallStop,
    dir: &str,
    fd: i32,
    read: impl Fn(String) -> std::io::Result<T>,
) -> Result<T, Errno> {
    let errno = |e: std::io::Error| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    match read(format!("/proc/{}/{dir}/{fd}", stop.tid)) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let copy = stop.copy_fd(fd)?;
            read(format!("/proc/self/{dir}/{}", copy.as_raw_fd())).map_err(errno)
        }
        other => other.map_err(errno),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_sessions_processes_are_inside() {
        let mut boundary = Boundary::default();
        let me = nix::unistd::getpid();
        assert!(!boundary.is_inside(me.as_raw()));
        boundary.process_started(me, None);
        assert!(boundary.is_inside(me.as_raw()));
        // A thread of a session process is inside too (tests run on threads).
        assert!(boundary.is_inside(nix::unistd::gettid().as_raw()));
        assert!(!boundary.is_inside(0));
        assert!(!boundary.is_inside(-1));
        boundary.process_ended(me);
        assert!(!boundary.is_inside(me.as_raw()));
    }

    #[test]
    fn refused_clones_are_the_untraced_and_the_networked() {
        let rules = Boundary::default().trap_rules();
        let clone_tests: Vec<_> =
            rules.iter().filter(|r| r.syscall == libc::SYS_clone).map(|r| r.tests[0]).collect();
        let untraced = libc::CLONE_UNTRACED as u32;
        let newnet = libc::CLONE_NEWNET as u32;
        assert_eq!(
            clone_tests,
            [
                (0, ArgTest::IntMaskedEqual { mask: untraced, value: untraced }),
                (0, ArgTest::IntMaskedEqual { mask: newnet, value: newnet }),
            ]
        );
    }

    #[test]
    fn a_pidfd_names_its_process() {
        let me = nix::unistd::getpid();
        // SAFETY: pidfd_open takes a pid and flags; the result is checked.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, me.as_raw(), 0) } as i32;
        assert!(fd >= 0);
        let info = |fd: i32| std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap();
        assert_eq!(pidfd_pid(&info(fd)), Some(me.as_raw()));
        assert_eq!(pidfd_pid(&info(0)), None);
        // SAFETY: closes the pidfd opened above.
        unsafe { libc::close(fd) };
    }
}
