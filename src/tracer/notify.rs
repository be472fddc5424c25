//! Seccomp user notifications: the cheap way in for calls the supervisor answers
//! from the process's memory alone.
//!
//! A ptrace stop takes several requests per call (wait, read the registers, write
//! them, resume). A notification takes two (`SECCOMP_IOCTL_NOTIF_RECV` and `_SEND`),
//! and with `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` the kernel switches straight to the
//! supervisor and back, on one CPU, where a ptrace stop goes through the scheduler.
//! The price is reach: the supervisor can read and write memory and give a result,
//! or let the call run unchanged, but not touch the thread's registers.
//!
//! The filter is installed with `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`: once the
//! supervisor has received a call, only a fatal signal can take it back, so every
//! answer given is the answer seen (the kernel would otherwise drop it when a signal
//! arrives). A signal arriving before the supervisor received the call interrupts it
//! with `ERESTARTSYS`; the tracer turns that into a transparent restart at the
//! signal's delivery stop (see [`restart_interrupted`]), as if the signal had come
//! just before the call.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

use super::arch::Registers;

/// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (linux/seccomp.h, Linux 6.6).
const SYNC_WAKE_UP: u64 = 1;
/// The kernel's internal "interrupted, restart if `SA_RESTART`" and "interrupted,
/// always restart" codes (linux/errno.h), as a thread's return register shows them.
const ERESTARTSYS: i64 = 512;
const ERESTARTNOINTR: i64 = 513;

/// A call some thread made that awaits the supervisor's answer.
#[derive(Clone, Copy, Debug)]
pub struct Notification {
    /// The kernel's cookie for the answer.
    pub id: u64,
    /// The calling thread.
    pub tid: Pid,
    /// The call number.
    pub number: i64,
    /// Its six arguments.
    pub args: [u64; 6],
}

/// What a notified call does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// It returns this (a value or `-errno`) without running.
    Return(i64),
    /// It runs in the kernel as the thread made it.
    Continue,
}

/// The supervisor's end of the notifier filter.
#[derive(Debug)]
pub struct Notifier {
    listener: OwnedFd,
}

impl Notifier {
    /// Serves the notifier filter behind `listener`.
    pub fn new(listener: OwnedFd) -> Self {
        // SAFETY: this ioctl takes the flags as its argument's value, no pointer. On
        // kernels before 6.6 it fails, and wake-ups merely go through the scheduler.
        let set = unsafe {
            libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS, SYNC_WAKE_UP)
        };
        if set != 0 {
            log::debug!("no synchronous wake-ups for notified calls: {}", Errno::last());
        }
        Self { listener }
    }

    /// The fd to watch for readability: a call is waiting.
    pub fn fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }

    /// Takes the next waiting call, if any, without blocking.
    pub fn receive(&self) -> Option<Notification> {
        let mut ready = libc::pollfd { fd: self.fd(), events: libc::POLLIN, revents: 0 };
        loop {
            // SAFETY: polls one live pollfd, without waiting.
            match unsafe { libc::poll(&mut ready, 1, 0) } {
                1 if ready.revents & libc::POLLIN != 0 => break,
                -1 if Errno::last() == Errno::EINTR => continue,
                _ => return None,
            }
        }
        // SAFETY: seccomp_notif is plain data; RECV wants it zeroed.
        let mut raw: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: RECV fills the live struct it is given. It blocks only with
        // nothing waiting, which the poll above ruled out: this thread alone
        // receives.
        if unsafe { libc::ioctl(self.fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut raw) } != 0 {
            // ENOENT: the caller was interrupted or killed meanwhile.
            return None;
        }
        Some(Notification {
            id: raw.id,
            tid: Pid::from_raw(raw.pid as i32),
            number: i64::from(raw.data.nr),
            args: raw.data.args,
        })
    }

    /// Whether call `id` still waits for its answer (it was not interrupted, and its
    /// thread is alive and has not been ended by another thread's exec).
    pub fn is_waiting(&self, id: u64) -> bool {
        // SAFETY: ID_VALID reads one u64 from a live local.
        unsafe { libc::ioctl(self.fd(), libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0 }
    }

    /// Installs a copy of `fd` in the process that made call `id` (close-on-exec),
    /// and returns its number there.
    pub fn add_fd(&self, id: u64, fd: RawFd) -> Result<i32, Errno> {
        self.install(id, fd, 0, true)
    }

    /// Answers call `id` with a new descriptor in its process, a copy of `fd`
    /// (close-on-exec if `cloexec`): installed and returned at once
    /// (`SECCOMP_ADDFD_FLAG_SEND`), so the caller never has the one without the
    /// other.
    pub fn add_fd_as_result(&self, id: u64, fd: RawFd, cloexec: bool) -> Result<i32, Errno> {
        self.install(id, fd, libc::SECCOMP_ADDFD_FLAG_SEND as u32, cloexec)
    }

    /// `SECCOMP_IOCTL_NOTIF_ADDFD` with `flags`.
    fn install(&self, id: u64, fd: RawFd, flags: u32, cloexec: bool) -> Result<i32, Errno> {
        let addfd = libc::seccomp_notif_addfd {
            id,
            flags,
            srcfd: fd as u32,
            newfd: 0,
            newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 },
        };
        // SAFETY: ADDFD reads the live struct it is given and returns the new fd.
        let added = unsafe { libc::ioctl(self.fd(), libc::SECCOMP_IOCTL_NOTIF_ADDFD, &addfd) };
        if added < 0 { Err(Errno::last()) } else { Ok(added) }
    }

    /// Answers call `id`. A caller killed meanwhile no longer wants it; that is no
    /// error.
    pub fn reply(&self, id: u64, reply: Reply) {
        // SAFETY: seccomp_notif_resp is plain data.
        let mut resp: libc::seccomp_notif_resp = unsafe { std::mem::zeroed() };
        resp.id = id;
        match reply {
            Reply::Return(value) if value < 0 => resp.error = value as i32,
            Reply::Return(value) => resp.val = value,
            Reply::Continue => resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
        }
        // SAFETY: SEND reads the live struct it is given.
        if unsafe { libc::ioctl(self.fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) } != 0
            && Errno::last() != Errno::ENOENT
        {
            log::warn!("seccomp notification reply: {}", Errno::last());
        }
    }
}

/// Installs the notifier filter in the calling thread, to be inherited by
/// everything it runs, and returns the listener fd (or `-errno`).
///
/// For the launched child between fork and exec: it makes one system call, so it is
/// async-signal-safe.
pub fn install(program: &libc::sock_fprog) -> i32 {
    let flags =
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    // SAFETY: `program` points at a live filter; seccomp copies it.
    let fd =
        unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, flags, program) };
    if fd < 0 { -(Errno::last() as i32) } else { fd as i32 }
}

/// At a signal-delivery stop: a notified call the signal interrupted before the
/// supervisor received it shows `ERESTARTSYS`, which a handler without
/// `SA_RESTART` would turn into `EINTR`, an error the call never gives natively.
/// Makes it restart whatever the handler: the thread runs the handler, then the call.
pub fn restart_interrupted(regs: &mut Registers, notified: impl Fn(i64) -> bool) -> bool {
    if regs.return_value() == -ERESTARTSYS && notified(regs.syscall_number()) {
        regs.set_return_value(-ERESTARTNOINTR);
        true
    } else {
        false
    }
}
