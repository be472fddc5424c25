//! ICMP errors for datagram sockets, as Linux reports them: `SO_ERROR` and the
//! next call's error on a connected socket, and with `IP_RECVERR` the error queue
//! (`recvmsg(MSG_ERRQUEUE)`), `POLLERR` in both cases.
//!
//! A datagram socket connected to a remote host has a private end (see
//! `private`), through which its carrier is marked with an error when one
//! arrives; netvm's trapped calls report the error Linux would have instead of
//! the carrier's.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Instant;

use nix::errno::Errno;
use nix::unistd::Pid;

use super::carrier::{clear_carrier_error, connect_to, inode_of};
use super::endpoint::EndpointName;
use super::icmp::{self, IcmpError, extended_error};
use super::inet::Family;
use super::net::{NetHost, Route};
use super::ports::Proto;
use super::private::PrivateEnd;
use super::stack::SmoltcpStack;
use super::table::VSocket;
use crate::fdtable::SocketId;
use crate::modules::vunet::sockaddr::encode;
use crate::modules::{Disposition, Handled};
use crate::tracer::SyscallStop;

/// How many errors a socket's queue holds; Linux bounds it by the receive buffer.
const QUEUE_LIMIT: usize = 16;

/// How long after an ICMP error arrives the carrier is marked. Inside the
/// supervisor an error comes back within microseconds, before a program has sent
/// the rest of a burst (traceroute sends its probes together); a marked carrier
/// would fail those sends. A real network's round trip is longer than this.
const RAISE_DELAY: std::time::Duration = std::time::Duration::from_millis(2);

impl SmoltcpStack {
    /// Makes the private end for `remote` of a socket of process `owner`,
    /// connected to its carrier (named `carrier`); returns the name the carrier
    /// is to connect to. `ENOBUFS` if the process has had its share of the
    /// supervisor's descriptors.
    pub(super) fn private_end(
        &mut self,
        carrier: EndpointName,
        remote: (Proto, SocketAddr),
        owner: Pid,
    ) -> Result<EndpointName, Errno> {
        let net = self.net.as_mut().ok_or(Errno::ENETUNREACH)?;
        let budget = net.budget.clone();
        budget.borrow_mut().take(Some(owner))?;
        let made = self.carriers.datagram_end().and_then(|(end, name)| {
            // A carrier connected elsewhere takes no new peer (`unix_may_send`):
            // the end then joins it once the carrier has connected to the end
            // ([`SmoltcpStack::join_private_end`]).
            let _ = connect_to(end.as_raw_fd(), &carrier);
            Some((inode_of(&end)?, end, name))
        });
        let Some((id, end, name)) = made else {
            budget.borrow_mut().give(Some(owner));
            return Err(Errno::ENETUNREACH);
        };
        self.table.record_stand_in(id, name, remote.0, remote.1);
        let private = PrivateEnd { end, remote, id, holder: Some(owner) };
        if let Some(old) = self.net.as_mut().and_then(|net| net.add_private(carrier, private)) {
            self.table.remove(old.id);
        }
        Ok(name)
    }

    /// Connects the private end of the carrier named `carrier` to it, once the
    /// carrier is connected to the end (it may have been connected elsewhere
    /// when the end was made).
    pub(super) fn join_private_end(&self, carrier: EndpointName) {
        let end = self.net.as_ref().and_then(|net| net.privates.get(&carrier));
        if let Some(private) = end {
            let _ = connect_to(private.end.as_raw_fd(), &carrier);
        }
    }

    /// Socket `id`'s error was reported by a trapped call: its carrier is not to be
    /// marked with it later, unless errors are still queued (`IP_RECVERR`), which
    /// keep the socket polling `POLLERR`.
    pub(super) fn error_reported(&mut self, id: SocketId) {
        let Some(socket) = self.table.get(id) else { return };
        let carrier = socket.name.filter(|_| socket.errors.is_empty());
        if let (Some(net), Some(carrier)) = (self.net.as_mut(), carrier) {
            net.raise_at.retain(|(_, c)| *c != carrier);
        }
    }

    /// Hands an ICMP error to the socket that sent the packet it is about.
    pub(super) fn report_error(&mut self, net: &mut NetHost, error: IcmpError) {
        let mut targets = Vec::new();
        match error.proto {
            Proto::Udp | Proto::Icmp => {
                if let Some(binding) = self.table.ports.receiver(error.proto, error.local) {
                    targets.push(binding.socket);
                }
            }
            // A connect under way fails with it at once, as Linux's does
            // (`tcp_v4_err`); "fragmentation needed" only lowers the path MTU.
            Proto::Tcp if error.errno != Errno::EMSGSIZE => {
                net.refuse_dial(error.local, error.remote, error.errno);
                return;
            }
            Proto::Tcp | Proto::Raw => return,
        }
        // Raw ICMP sockets connected to the destination get ICMP's errors too.
        if error.proto == Proto::Icmp {
            let raw = self
                .table
                .raw_sockets()
                .filter(|(_, s)| s.peer.map(|p| p.ip()) == Some(error.remote.ip()));
            targets.extend(raw.map(|(id, _)| id));
        }
        let mut to_wake = Vec::new();
        for id in targets {
            let Some(socket) = self.table.get_mut(id) else { continue };
            let recverr = wants_errors(socket);
            // A socket connected to port 0 matches every port of its peer
            // (`compute_score` skips a destination port of 0).
            let connected = socket.peer.is_some_and(|p| {
                p.ip().to_canonical() == error.remote.ip()
                    && (p.port() == 0 || p.port() == error.remote.port())
            });
            if recverr {
                if socket.errors.len() < QUEUE_LIMIT {
                    socket.errors.push_back(error.clone());
                }
            } else if !(error.fatal && connected) {
                continue;
            }
            socket.error = Some(error.errno);
            if let Some(carrier) = socket.name {
                net.raise_at.push((Instant::now() + RAISE_DELAY, carrier));
                // An unconnected ping socket polls no error: it is woken.
                if recverr && socket.peer.is_none() && socket.proto == Proto::Icmp {
                    to_wake.push((id, carrier));
                }
            }
        }
        for (id, carrier) in to_wake {
            self.alarms.sound(&mut self.carriers, id, carrier);
        }
    }

    /// Refuses a datagram of `len` bytes from socket `id` to `to` (reached by
    /// `route`) with `EMSGSIZE` when the socket forbids fragments and it is
    /// larger than its path (`IP_PMTUDISC_DO`) or its link (`IP_PMTUDISC_PROBE`,
    /// `IP_PMTUDISC_INTERFACE`), as Linux does; with `IP_RECVERR` the error is
    /// queued too, naming the MTU (ping prints it). The option is IPv4's for
    /// an IPv4 destination, even on an IPv6 socket.
    pub(super) fn refuse_oversize(
        &mut self,
        id: SocketId,
        to: SocketAddr,
        route: Route,
        len: u64,
    ) -> Result<(), Errno> {
        const IP_PMTUDISC_DO: i32 = 2;
        const IP_PMTUDISC_PROBE: i32 = 3;
        const IP_PMTUDISC_INTERFACE: i32 = 4;
        let Some(socket) = self.table.get(id) else { return Ok(()) };
        let ipv4 = to.ip().to_canonical().is_ipv4();
        let (level, name) = match ipv4 {
            true => (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER),
            false => (libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER),
        };
        let mode = socket.options.get(level, name, socket.family.raw(), socket.proto);
        let Some(net) = self.net.as_ref() else { return Ok(()) };
        let mtu = match mode {
            IP_PMTUDISC_DO => net.path_mtu(route.iface, to.ip()),
            IP_PMTUDISC_PROBE | IP_PMTUDISC_INTERFACE => net.link_mtu(route.iface),
            _ => return Ok(()),
        };
        let ip_header = if ipv4 { 20 } else { 40 };
        let transport_header = if socket.proto == Proto::Udp { 8 } else { 0 };
        if len + ip_header + transport_header <= mtu as u64 {
            return Ok(());
        }
        let local = SocketAddr::new(socket.source.unwrap_or(socket.family.unspecified()), 0);
        let error = icmp::too_long(socket.proto, local, to, mtu);
        if let Some(socket) = self.table.get_mut(id)
            && wants_errors(socket)
            && socket.errors.len() < QUEUE_LIMIT
        {
            socket.errors.push_back(error);
        }
        Err(Errno::EMSGSIZE)
    }

    /// `recvmsg(MSG_ERRQUEUE)` on datagram socket `id`: the oldest queued error,
    /// written into the program's `msghdr` as Linux writes it, or `EAGAIN`.
    pub(super) fn recv_error(&mut self, stop: &SyscallStop, id: SocketId, msg: u64) -> Handled {
        let socket = self.table.get_mut(id).ok_or(Errno::EBADF)?;
        let error = socket.errors.pop_front().ok_or(Errno::EAGAIN)?;
        if socket.errors.is_empty() {
            socket.error = None;
            if let Some(fd) = stop.call().fd() {
                clear_carrier_error(stop, fd);
            }
        }
        let family = socket.family;
        let memory = stop.memory();
        let written = (|| -> Result<i64, Errno> {
            let mut header = memory.read::<libc::msghdr>(msg)?;
            // The packet's bytes, into the program's buffers.
            let mut copied = 0;
            let mut truncated = false;
            for i in 0..header.msg_iovlen {
                let iov = memory.read::<libc::iovec>(header.msg_iov as u64 + (i * 16) as u64)?;
                let rest = &error.payload[copied..];
                let n = rest.len().min(iov.iov_len);
                memory.write_bytes(iov.iov_base as u64, &rest[..n])?;
                copied += n;
            }
            if copied < error.payload.len() {
                truncated = true;
            }
            // The destination the packet was for.
            if !header.msg_name.is_null() {
                let name = encode(error.remote, family.raw());
                let n = name.len().min(header.msg_namelen as usize);
                memory.write_bytes(header.msg_name as u64, &name[..n])?;
                header.msg_namelen = name.len() as u32;
            }
            header.msg_flags = libc::MSG_ERRQUEUE | if truncated { libc::MSG_TRUNC } else { 0 };
            let (level, kind) = match family {
                Family::V4 => (libc::SOL_IP, libc::IP_RECVERR),
                Family::V6 => (libc::SOL_IPV6, libc::IPV6_RECVERR),
            };
            let cmsg = control_message(level, kind, &extended_error(&error, family));
            let room = header.msg_controllen;
            if header.msg_control.is_null() || cmsg.len() > room {
                header.msg_flags |= libc::MSG_CTRUNC;
                header.msg_controllen = 0;
            } else {
                memory.write_bytes(header.msg_control as u64, &cmsg)?;
                header.msg_controllen = cmsg.len();
            }
            memory.write_msghdr(msg, &header)?;
            Ok(copied as i64)
        })();
        written.map(Disposition::Return)
    }

    /// After a trapped datagram call: the carrier reports `ECONNRESET` for an ICMP
    /// error netvm raised; the program sees the error Linux would have given.
    ///
    /// The call consumed the carrier's mark; errors still queued keep the socket
    /// polling `POLLERR` on Linux, so the carrier is marked again.
    pub(super) fn translate_raised(&mut self, stop: &mut SyscallStop, id: SocketId) {
        if stop.result() != -i64::from(libc::ECONNRESET) {
            return;
        }
        let Some(socket) = self.table.get_mut(id) else { return };
        let Some(error) = socket.error.take() else { return };
        stop.set_result(-(error as i64));
        if let (Some(next), Some(carrier)) = (socket.errors.front(), socket.name) {
            socket.error = Some(next.errno);
            if let Some(net) = self.net.as_mut() {
                net.raise_at.push((Instant::now(), carrier));
            }
        }
    }
}

/// Whether the socket asked for its errors to be queued (`IP_RECVERR`).
fn wants_errors(socket: &VSocket) -> bool {
    socket.ip_option(libc::IP_RECVERR, libc::IPV6_RECVERR) != 0
}

/// One control message (`cmsghdr` and `data`), padded as `CMSG_SPACE` pads it.
pub(super) fn control_message(level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
    // SAFETY: CMSG_LEN and CMSG_SPACE only compute sizes.
    let (len, space) = unsafe {
        (libc::CMSG_LEN(data.len() as u32) as usize, libc::CMSG_SPACE(data.len() as u32) as usize)
    };
    let mut cmsg = Vec::with_capacity(space);
    cmsg.extend_from_slice(&len.to_ne_bytes());
    cmsg.extend_from_slice(&level.to_ne_bytes());
    cmsg.extend_from_slice(&kind.to_ne_bytes());
    cmsg.extend_from_slice(data);
    cmsg.resize(space, 0);
    cmsg
}
