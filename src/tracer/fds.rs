//! Copying file descriptors out of a tracee.
//!
//! `pidfd_getfd(2)` gives the supervisor its own reference to an object a tracee
//! holds (a socket it must inspect, say). Access is checked like `ptrace` attach,
//! which the tracer always has over its tracees.
//!
//! The pidfds are kept while their threads live, so that a copy is one call
//! rather than three (`pidfd_open`, `pidfd_getfd`, `close`): a connection
//! through a stack copies a few fds. The tracer drops a thread's pidfd when the
//! thread ends ([`forget_thread`]); one found stale (`ESRCH`: its thread gone,
//! its id perhaps reused) is opened again.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// `PIDFD_THREAD` (linux/pidfd.h, Linux 6.9): a pidfd for one thread, not
/// only a process's first.
const PIDFD_THREAD: u32 = libc::O_EXCL as u32;

/// Opens a pidfd for `pid` with `flags`.
fn pidfd_open(pid: Pid, flags: u32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags, no pointers.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), flags) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// A pidfd of thread `tid` of process `process`: of the thread itself where the
/// kernel has them, else of the process.
pub(super) fn pidfd_of_thread(tid: Pid, process: Pid) -> Result<OwnedFd, Errno> {
    match pidfd_open(tid, PIDFD_THREAD) {
        Err(Errno::EINVAL) => pidfd_open(process, 0),
        other => other,
    }
}

/// The most pidfds kept: past it the cache starts again (a program of more
/// threads costs the supervisor a `pidfd_open` per copy, as before the cache).
/// A small share of the supervisor's descriptors, whatever their limit: a
/// program's threads cost it none, and must not take from the supervisor the
/// descriptors its sockets need.
fn most_kept() -> usize {
    use nix::sys::resource::{Resource, getrlimit};
    /// The share of the descriptor limit kept pidfds may hold: one in 64.
    const SHARE: u64 = 64;
    const MOST: u64 = 256;
    thread_local! {
        static MOST_KEPT: usize = getrlimit(Resource::RLIMIT_NOFILE)
            .map_or(0, |(soft, _)| (soft / SHARE).min(MOST) as usize);
    }
    MOST_KEPT.with(|most| *most)
}

thread_local! {
    /// The supervisor's pidfds of traced threads, by thread id (see the module's
    /// documentation). The supervisor is one thread: one cache.
    static PIDFDS: RefCell<HashMap<Pid, OwnedFd>> = RefCell::new(HashMap::new());
}

/// Runs `use_it` on a pidfd of thread `tid` of process `process` (see
/// [`pidfd_of_thread`]), kept from an earlier call if it still reaches the
/// thread: `use_it` saying `ESRCH` makes it run once more, on a fresh one.
pub(super) fn with_pidfd<T>(
    tid: Pid,
    process: Pid,
    use_it: impl Fn(RawFd) -> Result<T, Errno>,
) -> Result<T, Errno> {
    PIDFDS.with_borrow_mut(|kept| {
        if let Some(pidfd) = kept.get(&tid) {
            match use_it(pidfd.as_raw_fd()) {
                Err(Errno::ESRCH) => kept.remove(&tid),
                done => return done,
            };
        }
        let pidfd = match pidfd_of_thread(tid, process) {
            // Out of descriptors: the kept ones go first.
            Err(Errno::EMFILE | Errno::ENFILE) if !kept.is_empty() => {
                kept.clear();
                pidfd_of_thread(tid, process)?
            }
            other => other?,
        };
        let done = use_it(pidfd.as_raw_fd());
        if !matches!(done, Err(Errno::ESRCH)) && most_kept() > 0 {
            if kept.len() >= most_kept() {
                kept.clear();
            }
            kept.insert(tid, pidfd);
        }
        done
    })
}

/// Drops the kept pidfd of thread `tid`, which ended.
pub fn forget_thread(tid: Pid) {
    PIDFDS.with_borrow_mut(|kept| kept.remove(&tid));
}

/// Duplicates fd `fd` of thread `tid` of process `process` into the supervisor
/// (close-on-exec).
///
/// Through a pidfd of the thread itself where the kernel has them: a process
/// whose first thread has exited keeps its fd table, but a pidfd of that
/// thread no longer reaches it.
///
/// `EBADF` if the tracee has no such fd; `ESRCH` if it is gone.
pub fn copy_fd(tid: Pid, process: Pid, fd: RawFd) -> Result<OwnedFd, Errno> {
    with_pidfd(tid, process, |pidfd| {
        // SAFETY: pidfd_getfd takes two fds and flags, no pointers.
        let copy = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) };
        if copy < 0 {
            return Err(Errno::last());
        }
        // SAFETY: the kernel just returned this new fd to us; nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(copy as RawFd) })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_copy_refers_to_the_same_socket() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let copy = copy_fd(nix::unistd::gettid(), nix::unistd::getpid(), a.as_raw_fd()).unwrap();
        assert_ne!(copy.as_raw_fd(), a.as_raw_fd());
        let mut copy = UnixStream::from(copy);
        copy.write_all(b"via the copy").unwrap();
        let mut got = [0u8; 12];
        b.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"via the copy");
    }

    #[test]
    fn missing_fds_and_processes_are_errors() {
        assert_eq!(
            copy_fd(nix::unistd::gettid(), nix::unistd::getpid(), 1_000_000).err(),
            Some(Errno::EBADF)
        );
        assert_eq!(
            copy_fd(Pid::from_raw(i32::MAX), Pid::from_raw(i32::MAX), 0).err(),
            Some(Errno::ESRCH)
        );
    }

    /// A kept pidfd that no longer reaches its thread (here: of a process that
    /// has ended, kept under a live thread's id, as a reused id would leave it)
    /// is opened again rather than failing the copy.
    #[test]
    fn a_stale_kept_pidfd_is_opened_again() {
        // SAFETY: the child only calls _exit, which is async-signal-safe.
        let child = match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => unsafe { libc::_exit(0) },
            nix::unistd::ForkResult::Parent { child } => child,
        };
        let stale = pidfd_open(child, 0).unwrap();
        nix::sys::wait::waitpid(child, None).unwrap();
        let (tid, process) = (nix::unistd::gettid(), nix::unistd::getpid());
        PIDFDS.with_borrow_mut(|kept| kept.insert(tid, stale));
        let (a, _b) = UnixStream::pair().unwrap();
        assert!(copy_fd(tid, process, a.as_raw_fd()).is_ok());
        forget_thread(tid);
        assert!(!PIDFDS.with_borrow(|kept| kept.contains_key(&tid)));
    }
}
