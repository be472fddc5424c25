//! The session's sandbox: the boundary the kernel itself keeps around the traced
//! programs, so that a call netvm does not trap, or a check a program wins a race
//! against, still reaches nothing it should not.
//!
//! netvm's seccomp filter is the first line: it stops the calls netvm must see.
//! Behind it, before the command starts, the supervisor moves itself, and so
//! everything it will start, into
//! - a new **user namespace** that maps the invoking user to itself (root maps every
//!   id to itself). A process inside can trace, read, write or take fds from no
//!   process outside it (the kernel wants `CAP_SYS_PTRACE` over the outer
//!   namespace), and the supervisor, though inside, is non-dumpable: its memory was
//!   made outside, so no process of the session can reach it either;
//! - a new, empty **network namespace**: a call that escapes every trap reaches no
//!   interface of the host; the carriers' abstract names, `/proc/net` and the
//!   kernel's interface calls show this session alone, and other local users can
//!   neither see nor squat its names;
//! - a new **mount namespace** (the host's mounts still show, as slaves: nothing
//!   mounted in it reaches the host), where each program's `/proc/PID/net` can
//!   show its stack (see `vunet::procnet`).
//!
//! The host's network namespace stays reachable through one small helper, forked
//! before the move. It keeps listening there for clients outside the session
//! (`netvm status`) and hands each over with a verdict on who it is, taken where
//! its credentials can still be read: inside, every user but the invoker reads as
//! the overflow id. And it makes the sockets an uplink needs to reach the host's
//! network ([`host_sockets`]).

pub mod host_sockets;

use std::fmt;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;

use nix::errno::Errno;
use nix::sys::socket::{self, ControlMessage, MsgFlags, SockFlag, sockopt};
use nix::unistd::{ForkResult, fork};

/// How the session's programs are fenced in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fence {
    /// Private user and network namespaces (the default).
    Namespaces,
    /// The seccomp filter alone (`--filter-only`): for hosts without user
    /// namespaces. A program can reach the host's network through any call netvm
    /// does not trap, and abstract names of other sessions and users.
    FilterOnly,
    /// The host's network namespace, kept because the command runs on a stack of
    /// the `host` kind (`--stack host`), which passes the host's network through.
    HostNetwork,
}

/// The private namespaces the supervisor entered.
pub struct Entered {
    /// The inode of the session's network namespace, which the session's own
    /// sockets belong to (`SIOCGSKNS` names it).
    pub network: u64,
    /// Clients of the host-side control listener, each handed over as a message of
    /// one byte (1: the invoking user or root; 0: anyone else) with the connection
    /// as `SCM_RIGHTS`.
    pub outside_clients: Option<OwnedFd>,
    /// The channel on which the helper makes sockets of the host's network
    /// namespace (see [`host_sockets::HostSockets::through`]).
    pub host_sockets: OwnedFd,
}

/// The namespaces could not be made.
#[derive(Debug)]
pub struct SandboxError(String);

impl fmt::Display for SandboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SandboxError {}

/// Closes the sockets netvm inherited beyond standard input, output and error, as
/// pasta does: a host socket in the command would be a way to the host's network
/// that no trap sees. Call it first, before netvm opens sockets of its own.
pub fn close_inherited_sockets() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else { return };
    let fds: Vec<RawFd> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: `stat` is plain old data, written by fstat before it is read.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat writes into the live local above; a closed fd (the
        // directory's own, gone by now) only fails.
        let is_socket = unsafe { libc::fstat(fd, &mut stat) } == 0
            && stat.st_mode & libc::S_IFMT == libc::S_IFSOCK;
        if is_socket {
            log::info!("closed the inherited socket at fd {fd} (--keep-sockets keeps it)");
            // SAFETY: the fd is an inherited socket that nothing in netvm owns.
            unsafe { libc::close(fd) };
        }
    }
}

/// Makes the supervisor non-dumpable: no process of its user may trace it, read
/// or write its memory, or take its fds, unless privileged over the namespace its
/// memory was made in.
pub fn make_non_dumpable() {
    // SAFETY: PR_SET_DUMPABLE takes an integer and changes only this process.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        log::warn!("cannot make the supervisor non-dumpable: {}", Errno::last());
    }
}

/// Moves the supervisor into a new user namespace and a new network namespace.
/// `outside_listener`, a listening socket of the host's namespace, keeps being
/// served there by a helper (see [`Entered::outside_clients`]), if there is one.
///
/// The caller must be single-threaded (the kernel refuses a new user namespace to
/// a process with threads), and still dumpable: its id maps are written through
/// its own `/proc` files. Make it non-dumpable afterwards.
pub fn enter(outside_listener: Option<OwnedFd>) -> Result<Entered, SandboxError> {
    let error = |what: &str, e: Errno| SandboxError(format!("{what}: {}", e.desc()));
    let pair = || {
        socket::socketpair(
            socket::AddressFamily::Unix,
            socket::SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| error("socketpair", e))
    };
    let (ours, theirs) = pair()?;
    let (factory, factory_helper) = pair()?;
    // SAFETY: the supervisor is single-threaded here, so the child may go on
    // running ordinary code; it never returns from `host_side`.
    if let ForkResult::Child = unsafe { fork() }.map_err(|e| error("fork", e))? {
        drop((ours, factory));
        host_side(outside_listener.as_ref(), &theirs, &factory_helper)
    }
    let serves_outside = outside_listener.is_some();
    drop((outside_listener, theirs, factory_helper));
    // SAFETY: unshare changes only this (single-threaded) process's namespaces.
    let unshared =
        unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET | libc::CLONE_NEWNS) };
    let errno = if unshared == 0 { 0 } else { Errno::last() as i32 };
    // The helper, still outside, writes the maps (root's full one needs a writer
    // privileged over the outer namespace); it answers with an errno, or 0.
    let mut answer = [0u8; 4];
    nix::unistd::write(&ours, &errno.to_ne_bytes())
        .and_then(|_| nix::unistd::read(&ours, &mut answer))
        .map_err(|e| error("the sandbox's helper", e))?;
    if errno != 0 {
        return Err(unavailable(Errno::from_raw(errno)));
    }
    match i32::from_ne_bytes(answer) {
        0 => {}
        e => {
            return Err(SandboxError(format!(
                "cannot map the user into the session's user namespace: {}",
                Errno::from_raw(e).desc()
            )));
        }
    }
    // A datagram carrier queues as many datagrams as its peer's send buffer
    // holds, as a UDP socket's receive buffer would, not the ten of an AF_UNIX
    // socket's default (the namespace is the session's: the host's is untouched).
    if let Err(e) = std::fs::write("/proc/sys/net/unix/max_dgram_qlen", DATAGRAM_QUEUE) {
        log::info!("cannot lengthen datagram carriers' queues: {e}");
    }
    let network = std::fs::metadata("/proc/thread-self/ns/net")
        .map_err(|e| SandboxError(format!("cannot read the session's network namespace: {e}")))?
        .ino();
    Ok(Entered { network, outside_clients: serves_outside.then_some(ours), host_sockets: factory })
}

/// `net.unix.max_dgram_qlen` in the session's namespace.
const DATAGRAM_QUEUE: &str = "65536";

fn unavailable(e: Errno) -> SandboxError {
    let why = match e {
        Errno::EPERM | Errno::EACCES => {
            "user namespaces are not allowed here (see the sysctls user.max_user_namespaces \
             and kernel.apparmor_restrict_unprivileged_userns)"
        }
        Errno::ENOSPC => "the limit on user namespaces is reached (user.max_user_namespaces)",
        Errno::EINVAL => "this kernel has no user or network namespaces",
        _ => e.desc(),
    };
    SandboxError(format!(
        "cannot make the session's private network namespace: {why}. `netvm run --filter-only` \
         goes on without it, fenced by the seccomp filter alone: a call netvm does not trap \
         then reaches the host's network"
    ))
}

/// Maps `process`'s user (and group) to itself; root, privileged over the outer
/// namespace, maps every id to itself, so files and processes look as they did.
fn map_ids(process: libc::pid_t, uid: u32, gid: u32) -> std::io::Result<()> {
    let file = |name: &str| format!("/proc/{process}/{name}");
    if uid == 0 {
        let all = "0 0 4294967295";
        std::fs::write(file("uid_map"), all)?;
        return std::fs::write(file("gid_map"), all);
    }
    // An unprivileged user may map its own ids only, and only once setgroups(2)
    // is shut off (it could otherwise drop a group that denies it something).
    std::fs::write(file("setgroups"), "deny")?;
    std::fs::write(file("uid_map"), format!("{uid} {uid} 1"))?;
    std::fs::write(file("gid_map"), format!("{gid} {gid} 1"))
}

/// The helper's life: write the supervisor's id maps once it has unshared, then
/// hand over every client of `listener` (if any) on `channel`, with its verdict,
/// and make the host sockets asked for on `factory`, until the supervisor's ends
/// close.
fn host_side(listener: Option<&OwnedFd>, channel: &OwnedFd, factory: &OwnedFd) -> ! {
    // SAFETY: prctl and signal take plain integers; they change only this process,
    // which then ends with the supervisor, keeps every process of its user out of
    // its memory, and is left alone by the terminal's job-control signals (the
    // supervisor decides for the session).
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        for signal in [libc::SIGINT, libc::SIGQUIT, libc::SIGTSTP, libc::SIGHUP, libc::SIGPIPE] {
            libc::signal(signal, libc::SIG_IGN);
        }
    }
    // SAFETY: these have no preconditions and cannot fail.
    let (uid, gid, supervisor) = unsafe { (libc::geteuid(), libc::getegid(), libc::getppid()) };
    let mut unshared = [0u8; 4];
    if matches!(nix::unistd::read(channel, &mut unshared), Ok(4)) {
        let answer = if i32::from_ne_bytes(unshared) != 0 {
            0 // nothing to map: the supervisor reports its own error
        } else {
            map_ids(supervisor, uid, gid)
                .map_or_else(|e| e.raw_os_error().unwrap_or(libc::EIO), |()| 0)
        };
        if nix::unistd::write(channel, &answer.to_ne_bytes()).is_ok() {
            serve(listener, channel, factory, uid);
        }
    }
    // SAFETY: _exit ends this helper without running the supervisor's destructors.
    unsafe { libc::_exit(0) }
}

/// Hands over the clients of `listener` (if any) on `channel` and answers the
/// requests on `factory`, each until the supervisor's end of it closes; returns
/// when both have.
fn serve(listener: Option<&OwnedFd>, channel: &OwnedFd, factory: &OwnedFd, uid: u32) {
    let pollfd = |fd: RawFd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // poll skips a negative descriptor: what is not (or no longer) served.
    let listening = listener.map_or(-1, AsRawFd::as_raw_fd);
    let mut fds = [pollfd(channel.as_raw_fd()), pollfd(factory.as_raw_fd()), pollfd(listening)];
    while fds[0].fd >= 0 || fds[1].fd >= 0 {
        // SAFETY: `fds` is a live array of its length.
        if unsafe { libc::poll(fds.as_mut_ptr(), 3, -1) } < 0 && Errno::last() != Errno::EINTR {
            return;
        }
        // The supervisor sends nothing on `channel`: readable means closed.
        let outside_done = fds[0].revents != 0
            || (fds[2].revents != 0 && hand_over(listener, channel, uid).is_err());
        if outside_done {
            fds[0].fd = -1;
            fds[2].fd = -1;
        }
        if fds[1].revents != 0 && !host_sockets::answer(factory) {
            fds[1].fd = -1;
        }
    }
}

/// Accepts one client and passes it on with its verdict; an error means the
/// channel is broken.
fn hand_over(listener: Option<&OwnedFd>, channel: &OwnedFd, uid: u32) -> Result<(), Errno> {
    let Some(listener) = listener else { return Ok(()) };
    let client = match socket::accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
        // SAFETY: accept4 returned a new descriptor that nothing else owns.
        Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
        Err(_) => return Ok(()),
    };
    let peer = socket::getsockopt(&client, sockopt::PeerCredentials).map(|c| c.uid());
    let verdict = [u8::from(matches!(peer, Ok(peer) if peer == uid || peer == 0))];
    let fds = [client.as_raw_fd()];
    socket::sendmsg::<()>(
        channel.as_raw_fd(),
        &[IoSlice::new(&verdict)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map(drop)
}

/// The inode of the network namespace socket `socket` belongs to, or `None` if it
/// is out of the supervisor's reach (`SIOCGSKNS` asks `CAP_NET_ADMIN` over it,
/// which the supervisor has over the session's namespace alone).
pub fn network_of(socket: &OwnedFd) -> Option<u64> {
    // SAFETY: SIOCGSKNS takes no argument and returns a new fd, or fails.
    let ns = unsafe { libc::ioctl(socket.as_raw_fd(), SIOCGSKNS) };
    if ns < 0 {
        return None;
    }
    // SAFETY: the ioctl returned a new descriptor that nothing else owns.
    let ns = unsafe { std::fs::File::from_raw_fd(ns) };
    ns.metadata().ok().map(|m| m.ino())
}

/// `SIOCGSKNS` (linux/sockios.h): a socket's network namespace, as an fd.
const SIOCGSKNS: libc::c_ulong = 0x894C;

/// Reads one handed-over client from `channel` without blocking: the connection
/// and whether its user may be answered. `Ok(None)` when none waits.
pub fn receive_client(channel: &OwnedFd) -> Result<Option<(OwnedFd, bool)>, Errno> {
    let mut verdict = [0u8; 1];
    let mut space = nix::cmsg_space!(RawFd);
    let mut iov = [std::io::IoSliceMut::new(&mut verdict)];
    let msg = match socket::recvmsg::<()>(
        channel.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
    ) {
        Ok(msg) => msg,
        Err(Errno::EAGAIN) => return Ok(None),
        Err(e) => return Err(e),
    };
    if msg.bytes == 0 {
        return Err(Errno::EPIPE); // the helper is gone
    }
    let fd = msg.cmsgs()?.find_map(|c| match c {
        socket::ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
        _ => None,
    });
    // SAFETY: SCM_RIGHTS gave this process a new descriptor that nothing else owns.
    Ok(fd.map(|fd| (unsafe { OwnedFd::from_raw_fd(fd) }, verdict[0] == 1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_socket_of_our_namespace_is_named() {
        let (a, _b) = UnixStream::pair().unwrap();
        let own = std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino();
        // Unprivileged test runs have no CAP_NET_ADMIN here: then nothing is named.
        if let Some(ns) = network_of(&OwnedFd::from(a)) {
            assert_eq!(ns, own);
        }
    }

    #[test]
    fn a_handed_over_client_arrives_with_its_verdict() {
        let (ours, theirs) = socket::socketpair(
            socket::AddressFamily::Unix,
            socket::SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        assert!(receive_client(&ours).unwrap().is_none());
        let (client, mut peer) = UnixStream::pair().unwrap();
        let fds = [client.as_raw_fd()];
        socket::sendmsg::<()>(
            theirs.as_raw_fd(),
            &[IoSlice::new(&[1])],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        let (received, allowed) = receive_client(&ours).unwrap().unwrap();
        assert!(allowed);
        nix::unistd::write(&received, b"x").unwrap();
        let mut byte = [0u8; 1];
        peer.read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x");
        drop(theirs);
        assert_eq!(receive_client(&ours).err(), Some(Errno::EPIPE));
    }
}
