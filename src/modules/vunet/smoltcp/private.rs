//! The private end of a connected datagram socket.
//!
//! A datagram socket connected to a remote host has a *private end*: a datagram
//! socket of the supervisor, standing for the remote, which the carrier is
//! connected to and which is connected back. When an ICMP error arrives, the
//! private end disconnects and reconnects: the kernel then marks the carrier
//! with an error (`ECONNRESET`), which makes it poll `POLLERR` natively and fails
//! its next call; netvm's trapped calls report the error Linux would have
//! instead (see the error queue, `errqueue`).

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{MsgFlags, SockType, UnixAddr, connect};

use super::carrier::unix_socket;
use super::endpoint::EndpointName;
use super::ports::Proto;
use crate::fdtable::SocketId;
use crate::modules::vunet::budget::Holder;

/// The private end of a connected datagram socket (see the module docs).
pub(super) struct PrivateEnd {
    pub(super) end: OwnedFd,
    /// The remote it stands for.
    pub(super) remote: (Proto, SocketAddr),
    /// Its stand-in socket.
    pub(super) id: SocketId,
    /// Who it was taken from the supervisor's budget for.
    pub(super) holder: Holder,
}

impl PrivateEnd {
    /// Marks the carrier named `carrier`, which this end is connected to, with
    /// an error.
    ///
    /// The kernel marks a datagram socket's peer when the socket leaves it with
    /// messages unread (`unix_dgram_disconnected`): so the end leaves the carrier,
    /// takes a byte from an unconnected socket, rejoins, and leaves again.
    pub(super) fn raise(&self, carrier: EndpointName) {
        let fd = self.end.as_raw_fd();
        let (Ok(carrier), Some(own)) = (UnixAddr::new_abstract(&carrier.0), own_name(fd)) else {
            return;
        };
        let Ok(poker) = unix_socket(SockType::Datagram) else { return };
        disconnect(fd);
        let _ = nix::sys::socket::sendto(poker.as_raw_fd(), &[0], &own, MsgFlags::MSG_DONTWAIT);
        let _ = connect(fd, &carrier);
        disconnect(fd);
        let _ = connect(fd, &carrier);
    }
}

/// Dissolves a datagram socket's connection (`connect` to `AF_UNSPEC`).
fn disconnect(fd: RawFd) {
    // SAFETY: a zeroed sockaddr is plain data; AF_UNSPEC asks for a disconnect.
    let mut unspec: libc::sockaddr = unsafe { std::mem::zeroed() };
    unspec.sa_family = libc::AF_UNSPEC as libc::sa_family_t;
    // SAFETY: `unspec` is a live sockaddr of the size given.
    unsafe { libc::connect(fd, &unspec, size_of::<libc::sockaddr>() as libc::socklen_t) };
}

/// The address a socket of the supervisor is bound to.
fn own_name(fd: RawFd) -> Option<UnixAddr> {
    nix::sys::socket::getsockname::<UnixAddr>(fd).ok()
}
