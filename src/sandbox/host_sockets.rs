//! Sockets of the host's network namespace, made on the supervisor's behalf.
//!
//! A socket belongs to the network namespace it was made in, whoever later
//! binds, connects or sends with it. Once the supervisor has moved into the
//! session's empty namespace (see [`super::enter`]) it can make no socket that
//! reaches the host's network, and it cannot go back. The helper that stayed
//! outside makes them instead: the supervisor asks for one [`HostSocketKind`]
//! over a private channel, and the helper answers with an errno or the socket,
//! passed as `SCM_RIGHTS`. Only the kinds below are ever made (no raw sockets,
//! no other families), always non-blocking and close-on-exec; the channel is
//! the supervisor's alone.
//!
//! A session that stayed in the host's namespace (`--filter-only`, a `host`
//! stack) makes its sockets itself, as [`HostSockets::direct`] does until told
//! of a helper ([`HostSockets::use_helper`]).

use std::cell::OnceCell;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{self, ControlMessage, ControlMessageOwned, MsgFlags};

/// A kind of host socket the uplink may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum HostSocketKind {
    /// An IPv4 TCP socket.
    Tcp4 = 1,
    /// An IPv6 TCP socket.
    Tcp6 = 2,
    /// An IPv4 UDP socket.
    Udp4 = 3,
    /// An IPv6 UDP socket.
    Udp6 = 4,
    /// An IPv4 ICMP echo ("ping") socket, as `net.ipv4.ping_group_range` allows.
    Ping4 = 5,
    /// An IPv6 ICMP echo socket.
    Ping6 = 6,
}

impl HostSocketKind {
    const ALL: [Self; 6] =
        [Self::Tcp4, Self::Tcp6, Self::Udp4, Self::Udp6, Self::Ping4, Self::Ping6];

    fn from_wire(byte: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| *kind as u8 == byte)
    }

    /// Makes the socket in the calling process's network namespace.
    fn make(self) -> Result<OwnedFd, Errno> {
        let (family, kind, protocol) = match self {
            Self::Tcp4 => (libc::AF_INET, libc::SOCK_STREAM, 0),
            Self::Tcp6 => (libc::AF_INET6, libc::SOCK_STREAM, 0),
            Self::Udp4 => (libc::AF_INET, libc::SOCK_DGRAM, 0),
            Self::Udp6 => (libc::AF_INET6, libc::SOCK_DGRAM, 0),
            Self::Ping4 => (libc::AF_INET, libc::SOCK_DGRAM, libc::IPPROTO_ICMP),
            Self::Ping6 => (libc::AF_INET6, libc::SOCK_DGRAM, libc::IPPROTO_ICMPV6),
        };
        let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: socket takes plain integers and returns a new descriptor or -1.
        let fd = unsafe { libc::socket(family, kind | flags, protocol) };
        if fd < 0 {
            return Err(Errno::last());
        }
        // SAFETY: socket returned a new descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// Where the supervisor's host sockets come from.
#[derive(Default)]
pub struct HostSockets {
    /// The channel to the helper outside; unset while the supervisor is in
    /// the host's namespace itself.
    helper: OnceCell<OwnedFd>,
}

impl HostSockets {
    /// Sockets made by the supervisor itself, for a session in the host's
    /// network namespace.
    pub fn direct() -> Self {
        Self::default()
    }

    /// Sockets asked of the helper at the other end of `channel`
    /// ([`super::Entered::host_sockets`]).
    pub fn through(channel: OwnedFd) -> Self {
        let sockets = Self::default();
        sockets.use_helper(channel);
        sockets
    }

    /// From now on, sockets are asked of the helper at the other end of
    /// `channel`, the supervisor having left the host's namespace. Once only:
    /// a second channel is dropped.
    pub fn use_helper(&self, channel: OwnedFd) {
        let _ = self.helper.set(channel);
    }

    /// A new non-blocking, close-on-exec socket of the host's network
    /// namespace. Fails with the errno `socket(2)` gave there, or with the
    /// channel's own error (EPIPE when the helper is gone).
    pub fn open(&self, kind: HostSocketKind) -> io::Result<OwnedFd> {
        match self.helper.get() {
            None => Ok(kind.make()?),
            Some(channel) => Ok(ask(channel, kind)?),
        }
    }
}

/// One round trip to the helper: the request is the kind's byte; the answer is
/// an errno (0 with the socket as `SCM_RIGHTS`).
fn ask(channel: &OwnedFd, kind: HostSocketKind) -> Result<OwnedFd, Errno> {
    let request = [kind as u8];
    socket::send(channel.as_raw_fd(), &request, MsgFlags::MSG_NOSIGNAL)?;
    let mut errno = [0u8; 4];
    let mut space = nix::cmsg_space!(RawFd);
    let mut iov = [IoSliceMut::new(&mut errno)];
    let message = loop {
        match socket::recvmsg::<()>(
            channel.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            other => break other?,
        }
    };
    let bytes = message.bytes;
    let fd = message.cmsgs()?.find_map(|c| match c {
        ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
        _ => None,
    });
    // SAFETY: SCM_RIGHTS gave this process a new descriptor that nothing else owns.
    let fd = fd.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    match (bytes, i32::from_ne_bytes(errno), fd) {
        (0, ..) => Err(Errno::EPIPE),
        (4, 0, Some(fd)) => Ok(fd),
        (4, e, None) if e > 0 => Err(Errno::from_raw(e)),
        _ => Err(Errno::EPROTO),
    }
}

/// Answers one request waiting on `channel` (the helper's side). Returns false
/// when the supervisor's end is gone or the channel broke.
pub(super) fn answer(channel: &OwnedFd) -> bool {
    let mut request = [0u8; 1];
    let received = match socket::recv(channel.as_raw_fd(), &mut request, MsgFlags::empty()) {
        Ok(received) => received,
        Err(Errno::EINTR | Errno::EAGAIN) => return true,
        Err(_) => return false,
    };
    if received == 0 {
        return false;
    }
    let made = HostSocketKind::from_wire(request[0]).ok_or(Errno::EINVAL).and_then(|k| k.make());
    let (errno, fds) = match &made {
        Ok(socket) => (0, vec![socket.as_raw_fd()]),
        Err(e) => (*e as i32, Vec::new()),
    };
    let errno = errno.to_ne_bytes();
    let rights = [ControlMessage::ScmRights(&fds)];
    let control = if fds.is_empty() { &[][..] } else { &rights[..] };
    socket::sendmsg::<()>(
        channel.as_raw_fd(),
        &[IoSlice::new(&errno)],
        control,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{SockFlag, SockType, sockopt};

    fn channel() -> (OwnedFd, OwnedFd) {
        socket::socketpair(
            socket::AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap()
    }

    /// The helper's loop, for one request at a time.
    fn serve_one(theirs: &OwnedFd) -> std::thread::JoinHandle<bool> {
        let theirs = theirs.try_clone().unwrap();
        std::thread::spawn(move || answer(&theirs))
    }

    #[test]
    fn each_kind_arrives_as_asked() {
        let (ours, theirs) = channel();
        let sockets = HostSockets::through(ours);
        for kind in [HostSocketKind::Tcp4, HostSocketKind::Tcp6, HostSocketKind::Udp6] {
            let server = serve_one(&theirs);
            let socket = sockets.open(kind).unwrap();
            assert!(server.join().unwrap());
            let expected = match kind {
                HostSocketKind::Tcp4 | HostSocketKind::Tcp6 => SockType::Stream,
                _ => SockType::Datagram,
            };
            assert_eq!(socket::getsockopt(&socket, sockopt::SockType).unwrap(), expected);
            // SAFETY: fcntl F_GETFL on a live descriptor.
            let flags = unsafe { libc::fcntl(socket.as_raw_fd(), libc::F_GETFL) };
            assert_ne!(flags & libc::O_NONBLOCK, 0, "{kind:?} is non-blocking");
            // SAFETY: fcntl F_GETFD on a live descriptor.
            let fd_flags = unsafe { libc::fcntl(socket.as_raw_fd(), libc::F_GETFD) };
            assert_ne!(fd_flags & libc::FD_CLOEXEC, 0, "{kind:?} is close-on-exec");
        }
    }

    #[test]
    fn an_unknown_kind_is_refused_and_a_gone_helper_is_epipe() {
        let (ours, theirs) = channel();
        let server = serve_one(&theirs);
        socket::send(ours.as_raw_fd(), &[0x7f], MsgFlags::empty()).unwrap();
        assert!(server.join().unwrap());
        let mut errno = [0u8; 4];
        assert_eq!(socket::recv(ours.as_raw_fd(), &mut errno, MsgFlags::empty()).unwrap(), 4);
        assert_eq!(i32::from_ne_bytes(errno), libc::EINVAL);

        drop(theirs);
        let sockets = HostSockets::through(ours);
        let error = sockets.open(HostSocketKind::Udp4).unwrap_err();
        assert!(matches!(error.raw_os_error(), Some(libc::EPIPE) | Some(libc::ECONNRESET)));
    }

    #[test]
    fn direct_sockets_are_made_here() {
        let socket = HostSockets::direct().open(HostSocketKind::Udp4).unwrap();
        assert_eq!(socket::getsockopt(&socket, sockopt::SockType).unwrap(), SockType::Datagram);
    }
}
