//! Whose a tracee thread's new files are: its file system user and group ids,
//! which the kernel gives every inode the thread makes (sockets among them).
//!
//! Read through a pidfd (`PIDFD_GET_INFO`, Linux 6.13: one ioctl), or else from
//! `/proc/TID/status`, which costs a page of text.

use nix::errno::Errno;
use nix::unistd::Pid;

use super::fds::with_pidfd;

/// `struct pidfd_info` (linux/pidfd.h), as of its first size (64 bytes).
#[repr(C)]
#[derive(Default)]
struct PidfdInfo {
    mask: u64,
    cgroupid: u64,
    pid: u32,
    tgid: u32,
    ppid: u32,
    ruid: u32,
    rgid: u32,
    euid: u32,
    egid: u32,
    suid: u32,
    sgid: u32,
    fsuid: u32,
    fsgid: u32,
    spare0: u32,
}

/// `PIDFD_INFO_CREDS`: the mask bit asking for the ids.
const PIDFD_INFO_CREDS: u64 = 1 << 1;
/// `PIDFD_GET_INFO`: `_IOWR(0xFF, 11, struct pidfd_info)`.
const PIDFD_GET_INFO: libc::c_ulong =
    (3 << 30) | ((size_of::<PidfdInfo>() as libc::c_ulong) << 16) | (0xFF << 8) | 11;

/// The file system user and group ids of thread `tid` of process `process`.
pub fn file_system_ids(tid: Pid, process: Pid) -> Result<(u32, u32), Errno> {
    let info = with_pidfd(tid, process, |pidfd| {
        let mut info = PidfdInfo { mask: PIDFD_INFO_CREDS, ..PidfdInfo::default() };
        // SAFETY: PIDFD_GET_INFO fills the live struct it is given, whose size the
        // request number carries.
        let got = unsafe { libc::ioctl(pidfd, PIDFD_GET_INFO, &raw mut info) };
        if got == 0 { Ok(info) } else { Err(Errno::last()) }
    });
    match info {
        Ok(info) if info.mask & PIDFD_INFO_CREDS != 0 => Ok((info.fsuid, info.fsgid)),
        _ => from_status(tid),
    }
}

/// The ids from `/proc/TID/status`, whose `Uid:` and `Gid:` lines list the real,
/// effective, saved and file system ids.
fn from_status(tid: Pid) -> Result<(u32, u32), Errno> {
    let status =
        std::fs::read_to_string(format!("/proc/{tid}/status")).map_err(|_| Errno::ESRCH)?;
    let fs_id = |key: &str| -> Result<u32, Errno> {
        let line = status.lines().find_map(|l| l.strip_prefix(key)).ok_or(Errno::ESRCH)?;
        line.split_whitespace().nth(3).and_then(|id| id.parse().ok()).ok_or(Errno::ESRCH)
    };
    Ok((fs_id("Uid:")?, fs_id("Gid:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_threads_ids_are_read_both_ways_alike() {
        let (tid, process) = (nix::unistd::gettid(), nix::unistd::getpid());
        // SAFETY: getuid and getgid take nothing and cannot fail.
        let mine = unsafe { (libc::getuid(), libc::getgid()) };
        assert_eq!(file_system_ids(tid, process), Ok(mine));
        assert_eq!(from_status(tid), Ok(mine));
        assert_eq!(size_of::<PidfdInfo>(), 64);
    }
}
