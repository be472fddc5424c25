//! Copying file descriptors out of a tracee.
//!
//! `pidfd_getfd(2)` gives the supervisor its own reference to an object a tracee
//! holds (a socket it must inspect, say). Access is checked like `ptrace` attach,
//! which the tracer always has over its tracees.

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

/// Duplicates fd `fd` of thread `tid` of process `process` into the supervisor
/// (close-on-exec).
///
/// Through a pidfd of the thread itself where the kernel has them: a process
/// whose first thread has exited keeps its fd table, but a pidfd of that
/// thread no longer reaches it.
///
/// `EBADF` if the tracee has no such fd; `ESRCH` if it is gone.
pub fn copy_fd(tid: Pid, process: Pid, fd: RawFd) -> Result<OwnedFd, Errno> {
    let pidfd = pidfd_of_thread(tid, process)?;
    // SAFETY: pidfd_getfd takes two fds and flags, no pointers.
    let copy = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if copy < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this new fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(copy as RawFd) })
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
}
