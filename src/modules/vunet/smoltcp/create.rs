//! `socket()`: a virtual TCP/IP socket is created as its carrier, an `AF_UNIX`
//! socket the supervisor makes and gives the program (or, without a notifier to
//! give it through, that the program makes and the exit claims), recorded in the
//! stack's table.

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::unistd::Pid;

use super::carrier::bind_to;
use super::inet::Family;
use super::ports::Proto;
use super::proc::{CAP_NET_RAW, has_capability};
use super::stack::{Pending, SmoltcpStack};
use super::table::VSocket;
use crate::fdtable::SocketId;
use crate::modules::vunet::Claims;
use crate::modules::vunet::stack::{NewCarrier, is_fresh};
use crate::modules::{Disposition, Handled};
use crate::syscall::Socket;
use crate::syscall::Syscall;
use crate::tracer::SyscallStop;

/// One past the largest socket type (`SOCK_PACKET` is 10).
const SOCK_MAX: i32 = 11;
/// One past the largest IP protocol number Linux takes (`IPPROTO_MPTCP` is 262).
const IPPROTO_MAX: i32 = 263;

impl SmoltcpStack {
    /// `socket()`: the carrier is made (see [`Claims::new_carrier`]).
    ///
    /// The arguments are judged in Linux's order: the type's flags, then (for
    /// `socketpair`) the vector the descriptors go to, then the family.
    pub(super) fn socket(&mut self, stop: &mut SyscallStop, claims: &mut Claims) -> Handled {
        let (c, vector) = match stop.call() {
            Syscall::Socket(c) => (c, None),
            Syscall::Socketpair(c) => {
                let socket = Socket { domain: c.domain, ty: c.ty, protocol: c.protocol };
                (socket, Some(c.sv))
            }
            _ => return Err(Errno::EINVAL),
        };
        let (ty, flags) = c.type_and_flags()?;
        if let Some(vector) = vector {
            // Linux takes two descriptor numbers and writes them before it makes
            // the sockets: no room is EMFILE, a vector it cannot write EFAULT,
            // whatever the family.
            let is_open = |fd| match stop.copy_fd(fd) {
                Ok(_) => Ok(true),
                Err(Errno::EBADF) => Ok(false),
                Err(e) => Err(e),
            };
            let numbers = crate::fdtable::lowest_free(stop.tid, stop.process, 2, is_open)?;
            stop.memory().write(vector.0, &[numbers[0], numbers[1]])?;
            return Err(socketpair_refusal(c.domain, ty, c.protocol, stop.tid));
        }
        let family = match c.domain {
            libc::AF_INET => Family::V4,
            libc::AF_INET6 => Family::V6,
            _ => return Err(Errno::EAFNOSUPPORT),
        };
        let proto = socket_proto(family, ty, c.protocol, stop.tid)?;
        // A raw socket's protocol: the IP protocol number (below 256; IPPROTO_MPTCP
        // and the like are not IP's).
        let raw_protocol = u8::try_from(c.protocol).map_err(|_| Errno::EPROTONOSUPPORT);
        let raw_protocol = if proto == Proto::Raw { raw_protocol? } else { 0 };
        if proto == Proto::Raw
            && raw_protocol != family.icmp_protocol()
            && let Some(net) = self.net.as_mut()
        {
            net.open_raw(raw_protocol)?;
        }
        let new = NewSocket { family, proto, raw_protocol };
        match claims.new_carrier(stop, proto.carrier(), flags)? {
            NewCarrier::Given(id) => {
                let carrier = stop.new_fd().ok_or(Errno::EBADF)?;
                self.adopt(id, carrier, new);
                Ok(Disposition::Kernel)
            }
            NewCarrier::Rewritten => Ok(self.await_exit(stop.tid, new)),
        }
    }

    /// Records `id`, the carrier `carrier` (the supervisor's descriptor of it),
    /// as the stack's new socket `new`.
    fn adopt(&mut self, id: SocketId, carrier: BorrowedFd, new: NewSocket) {
        let mut socket = VSocket::new(new.family, new.proto);
        socket.raw_protocol = new.raw_protocol;
        if new.raw_protocol == libc::IPPROTO_RAW as u8 && new.family == Family::V4 {
            // An IPPROTO_RAW socket writes its own IP header.
            let _ = socket.options.set(libc::IPPROTO_IP, libc::IP_HDRINCL, 1, new.proto);
        }
        let mut name = None;
        if new.proto == Proto::Raw {
            // A raw socket receives without ever binding: its carrier takes a
            // name now.
            let fresh = self.carriers.fresh();
            if bind_to(carrier.as_raw_fd(), &fresh).is_ok() {
                socket.local = Some(SocketAddr::new(new.family.unspecified(), 0));
                name = Some(fresh);
            }
        }
        self.table.insert(id, socket);
        if let Some(name) = name {
            self.table.name_carrier(id, name);
        }
    }
}

/// A new socket of `proto` and `family` (of IP protocol `raw_protocol`, if raw),
/// and, while the program makes its carrier, the call in flight.
struct NewSocket {
    family: Family,
    proto: Proto,
    raw_protocol: u8,
}

impl Pending for NewSocket {
    fn finish(
        self: Box<Self>,
        stack: &mut SmoltcpStack,
        stop: &mut SyscallStop,
        claims: &mut Claims,
    ) {
        let Some(fd) = stop.returned_fd() else { return };
        let carrier = self.proto.carrier();
        if let Some((id, copy)) = claims.claim_new(stop, fd, |copy| is_fresh(copy, carrier)) {
            stack.adopt(id, copy.as_fd(), *self);
        }
    }
}

/// What `socketpair(domain, ty, protocol)` fails with once its descriptors'
/// numbers are written: the error of making such a socket, else `EOPNOTSUPP`, as
/// from every family but `AF_UNIX` (`ty` without its flags).
fn socketpair_refusal(domain: i32, ty: i32, protocol: i32, thread: Pid) -> Errno {
    let made = match domain {
        libc::AF_INET => socket_proto(Family::V4, ty, protocol, thread).map(drop),
        libc::AF_INET6 => socket_proto(Family::V6, ty, protocol, thread).map(drop),
        // As netlink_create and packet_create judge.
        libc::AF_NETLINK if ty != libc::SOCK_RAW && ty != libc::SOCK_DGRAM => {
            Err(Errno::ESOCKTNOSUPPORT)
        }
        libc::AF_NETLINK if !(0..NETLINK_MAX_LINKS).contains(&protocol) => {
            Err(Errno::EPROTONOSUPPORT)
        }
        libc::AF_PACKET if !has_capability(thread, CAP_NET_RAW) => Err(Errno::EPERM),
        libc::AF_PACKET if ![libc::SOCK_DGRAM, libc::SOCK_RAW, SOCK_PACKET].contains(&ty) => {
            Err(Errno::ESOCKTNOSUPPORT)
        }
        libc::AF_NETLINK | libc::AF_PACKET => Ok(()),
        _ => Err(Errno::EAFNOSUPPORT),
    };
    made.err().unwrap_or(Errno::EOPNOTSUPP)
}

/// `SOCK_PACKET`, the obsolete packet socket type Linux still takes.
const SOCK_PACKET: i32 = 10;
/// One past the largest netlink protocol (`MAX_LINKS`, linux/netlink.h).
const NETLINK_MAX_LINKS: i32 = 32;

/// The transport a `socket(AF_INET*, type, protocol)` asks for, or Linux's error.
///
/// Ping sockets are open to every user, as with `net.ipv4.ping_group_range` set
/// wide open (a virtual host's own policy). Raw sockets need `CAP_NET_RAW`, as on
/// Linux, and a protocol (any but 0).
fn socket_proto(family: Family, ty: i32, protocol: i32, thread: Pid) -> Result<Proto, Errno> {
    let icmp = match family {
        Family::V4 => libc::IPPROTO_ICMP,
        Family::V6 => libc::IPPROTO_ICMPV6,
    };
    // Linux judges the type's range, then the protocol's, then the pair.
    if !(0..SOCK_MAX).contains(&ty) || !(0..IPPROTO_MAX).contains(&protocol) {
        return Err(Errno::EINVAL);
    }
    match (ty, protocol) {
        (libc::SOCK_STREAM, 0 | libc::IPPROTO_TCP) => Ok(Proto::Tcp),
        (libc::SOCK_DGRAM, 0 | libc::IPPROTO_UDP) => Ok(Proto::Udp),
        (libc::SOCK_DGRAM, p) if p == icmp => Ok(Proto::Icmp),
        (libc::SOCK_STREAM | libc::SOCK_DGRAM, _) => Err(Errno::EPROTONOSUPPORT),
        (libc::SOCK_RAW, _) if !has_capability(thread, CAP_NET_RAW) => Err(Errno::EPERM),
        (libc::SOCK_RAW, 0) => Err(Errno::EPROTONOSUPPORT),
        (libc::SOCK_RAW, _) => Ok(Proto::Raw),
        _ => Err(Errno::ESOCKTNOSUPPORT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_types_and_protocols_as_linux_judges_them() {
        let me = nix::unistd::getpid();
        let judge = |family, ty, protocol| socket_proto(family, ty, protocol, me);
        assert_eq!(judge(Family::V4, libc::SOCK_STREAM, 0), Ok(Proto::Tcp));
        assert_eq!(judge(Family::V4, libc::SOCK_STREAM, libc::IPPROTO_TCP), Ok(Proto::Tcp));
        assert_eq!(judge(Family::V6, libc::SOCK_DGRAM, libc::IPPROTO_UDP), Ok(Proto::Udp));
        assert_eq!(judge(Family::V4, libc::SOCK_DGRAM, libc::IPPROTO_ICMP), Ok(Proto::Icmp));
        assert_eq!(judge(Family::V6, libc::SOCK_DGRAM, libc::IPPROTO_ICMPV6), Ok(Proto::Icmp));
        assert_eq!(
            judge(Family::V6, libc::SOCK_DGRAM, libc::IPPROTO_ICMP),
            Err(Errno::EPROTONOSUPPORT)
        );
        assert_eq!(
            judge(Family::V4, libc::SOCK_STREAM, libc::IPPROTO_UDP),
            Err(Errno::EPROTONOSUPPORT)
        );
        assert_eq!(judge(Family::V4, libc::SOCK_SEQPACKET, 0), Err(Errno::ESOCKTNOSUPPORT));
        assert_eq!(judge(Family::V4, 42, 0), Err(Errno::EINVAL));
    }
}
