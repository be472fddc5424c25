//! ICMP echo through the uplink, on the host's ping sockets.
//!
//! Each (stack address, destination, echo identifier) gets a ping socket of its
//! own (`SOCK_DGRAM`, `IPPROTO_ICMP` / `IPPROTO_ICMPV6`), which needs no
//! privilege where `net.ipv4.ping_group_range` lets the user's group in. The
//! kernel gives each ping socket an identifier of its own; replies get the
//! stack's back. Echoes idle for [`IDLE`] are closed.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::sys::socket::{self, MsgFlags, SockaddrStorage};

use super::audit::FlowRecord;
use super::packets::{self, Unreachable};
use super::policy::Protocol;
use super::udp::socket_address;
use super::{Admission, Flows, HostSocket};
use crate::sandbox::host_sockets::HostSocketKind;

/// How long an echo's socket lives unused.
const IDLE: Duration = Duration::from_secs(60);
/// The ICMP header of an echo: type, code, checksum, identifier, sequence.
const ECHO_HEADER: usize = 8;

/// Who an echo is between.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Echo {
    stack: IpAddr,
    destination: IpAddr,
    ident: u16,
}

/// The echoes of one uplink.
#[derive(Default)]
pub(super) struct Ping {
    /// Each echo's socket, when last used, its flow, and where it goes on the
    /// host's side.
    sockets: HashMap<Echo, (HostSocket, Instant, FlowRecord, IpAddr)>,
    by_fd: HashMap<RawFd, Echo>,
    /// Whether the user was told that the host refuses ping sockets.
    told: bool,
}

impl Ping {
    /// Sends echo request `icmp` (the ICMP message, header included) from
    /// `stack` to `destination`; a refused destination is answered in `out`.
    pub fn send(
        &mut self,
        flows: &mut Flows,
        (stack, destination): (IpAddr, IpAddr),
        ip: &[u8],
        icmp: &[u8],
        now: Instant,
        out: &mut Vec<Vec<u8>>,
    ) {
        if icmp.len() < ECHO_HEADER {
            return;
        }
        let ident = u16::from_be_bytes([icmp[4], icmp[5]]);
        let echo = Echo { stack, destination, ident };
        if !self.sockets.contains_key(&echo) {
            let ends = (SocketAddr::new(stack, 0), SocketAddr::new(destination, 0));
            let (outside, record) = match flows.admit(Protocol::Icmp, ends, now) {
                Admission::Allow(outside, record) => (outside.ip(), record),
                Admission::Refuse(why) => return out.extend(packets::unreachable(ip, why)),
                Admission::Drop => return,
            };
            let kind = if stack.is_ipv4() { HostSocketKind::Ping4 } else { HostSocketKind::Ping6 };
            let socket = match flows.open(kind) {
                Ok(socket) => socket,
                Err(refused) => {
                    flows.closed(&record, now);
                    let denied = [Some(libc::EACCES), Some(libc::EPERM)];
                    if denied.contains(&refused.and_then(|e| e.raw_os_error())) {
                        self.tell_unavailable();
                    }
                    return out.extend(packets::unreachable(ip, Unreachable::Port));
                }
            };
            self.by_fd.insert(socket.as_raw_fd(), echo);
            self.sockets.insert(echo, (socket, now, record, outside));
        }
        let Some((socket, last_used, record, outside)) = self.sockets.get_mut(&echo) else {
            return;
        };
        *last_used = now;
        record.bytes_out += (icmp.len() - ECHO_HEADER) as u64;
        let to = SockaddrStorage::from(SocketAddr::new(*outside, 0));
        let _ = socket::sendto(socket.as_raw_fd(), icmp, &to, MsgFlags::MSG_DONTWAIT);
    }

    fn tell_unavailable(&mut self) {
        if !std::mem::replace(&mut self.told, true) {
            log::warn!(
                "ping through the uplink is unavailable: the host refuses this user ping \
                 sockets (see `sysctl net.ipv4.ping_group_range`)"
            );
        }
    }

    /// Whether `fd` is one of the echoes' sockets.
    pub fn watches(&self, fd: RawFd) -> bool {
        self.by_fd.contains_key(&fd)
    }

    /// Passes the replies waiting at `fd` on to the stack, with its identifier.
    pub fn ready(&mut self, fd: RawFd, now: Instant, out: &mut Vec<Vec<u8>>) {
        let Some(&echo) = self.by_fd.get(&fd) else { return };
        let mut buffer = vec![0; 65535];
        while let Ok((len, from)) = socket::recvfrom::<SockaddrStorage>(fd, &mut buffer) {
            let reply = &buffer[..len];
            let from_destination =
                from.as_ref().and_then(socket_address).is_some_and(|_| len >= ECHO_HEADER);
            if !from_destination {
                continue;
            }
            if let Some((_, last_used, record, _)) = self.sockets.get_mut(&echo) {
                *last_used = now;
                record.bytes_in += (len - ECHO_HEADER) as u64;
            }
            let seq_no = u16::from_be_bytes([reply[6], reply[7]]);
            let data = &reply[ECHO_HEADER..];
            out.push(packets::echo_reply(echo.destination, echo.stack, echo.ident, seq_no, data));
        }
    }

    /// How many echoes are open.
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// The echoes open.
    pub fn records(&self) -> impl Iterator<Item = &FlowRecord> {
        self.sockets.values().map(|(_, _, record, _)| record)
    }

    /// Closes the echoes idle for [`IDLE`].
    pub fn expire(&mut self, flows: &Flows, now: Instant) {
        self.sockets.retain(|_, (_, at, record, _)| {
            let live = now - *at < IDLE;
            if !live {
                flows.closed(record, now);
            }
            live
        });
        let sockets = &self.sockets;
        self.by_fd.retain(|_, echo| sockets.contains_key(echo));
    }
}
