//! UDP through the uplink: one host socket per stack endpoint.
//!
//! The mapping is endpoint-independent (RFC 4787 REQ-1): every datagram a
//! stack's socket sends out, to whatever destination, leaves from the same host
//! socket, so a program that learns its outside port (STUN) keeps it. Filtering
//! is address-and-port-dependent: only datagrams from a destination the stack
//! endpoint sent to within [`IDLE`] come back in. A mapping idle for [`IDLE`]
//! is closed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::sys::socket::{self, MsgFlags, SockaddrStorage};

use super::audit::FlowRecord;
use super::forward::Publish;
use super::packets::{self, Unreachable};
use super::policy::Protocol;
use super::{Admission, Flows, HostSocket};
use crate::sandbox::host_sockets::HostSocketKind;

/// How long a mapping, and each destination it lets answer, lives unused
/// (Linux's conntrack keeps a UDP stream 180 s).
const IDLE: Duration = Duration::from_secs(180);
/// The largest datagram read from a host socket.
const LARGEST_DATAGRAM: usize = 65535;

/// The UDP mappings of one uplink.
#[derive(Default)]
pub(super) struct Udp {
    /// By the stack endpoint they serve.
    mappings: HashMap<SocketAddr, Mapping>,
    /// The stack endpoint of each host socket.
    by_fd: HashMap<RawFd, SocketAddr>,
    /// Clients of published ports, by the stack's end and the client as the
    /// stack sees it.
    clients: HashMap<(SocketAddr, SocketAddr), Client>,
}

/// A destination of a mapping's.
struct Peer {
    last_used: Instant,
    record: FlowRecord,
    /// The destination on the host's side (a nameserver for the uplink's DNS
    /// address).
    outside: SocketAddr,
}

/// A client of a published UDP port.
struct Client {
    /// The published port's host socket (the uplink's), and the client's
    /// address on the host's side.
    published: RawFd,
    address: SocketAddr,
    last_used: Instant,
    record: FlowRecord,
}

/// One stack endpoint's host socket.
struct Mapping {
    socket: HostSocket,
    /// The destinations it sent to, as the stack named them: when last, the
    /// flow to each, and where it is on the host's side.
    peers: HashMap<SocketAddr, Peer>,
    last_used: Instant,
}

impl Udp {
    /// Sends datagram `payload` of `ip` (a whole packet from `from` to `to`)
    /// out; what the host refuses at once comes back in `out` as an ICMP error.
    pub fn send(
        &mut self,
        flows: &mut Flows,
        (from, to): (SocketAddr, SocketAddr),
        ip: &[u8],
        payload: &[u8],
        now: Instant,
        out: &mut Vec<Vec<u8>>,
    ) {
        if let Some(client) = self.clients.get_mut(&(from, to)) {
            // An answer to a client of a published port: from that port.
            client.last_used = now;
            client.record.bytes_out += payload.len() as u64;
            let address = SockaddrStorage::from(client.address);
            let _ = socket::sendto(client.published, payload, &address, MsgFlags::MSG_DONTWAIT);
            return;
        }
        let known = self.mappings.get(&from).is_some_and(|m| m.peers.contains_key(&to));
        let admitted = match known {
            true => None,
            false => match flows.admit(Protocol::Udp, (from, to), now) {
                Admission::Allow(outside, record) => Some((outside, record)),
                Admission::Refuse(why) => return out.extend(packets::unreachable(ip, why)),
                Admission::Drop => return,
            },
        };
        let mapping = match self.mappings.get_mut(&from) {
            Some(mapping) => mapping,
            None => {
                let kind = if from.is_ipv4() { HostSocketKind::Udp4 } else { HostSocketKind::Udp6 };
                let Ok(socket) = flows.open(kind) else {
                    if let Some((_, record)) = &admitted {
                        flows.closed(record, now);
                    }
                    return out.extend(packets::unreachable(ip, Unreachable::Port));
                };
                self.by_fd.insert(socket.as_raw_fd(), from);
                let mapping = Mapping { socket, peers: HashMap::new(), last_used: now };
                self.mappings.entry(from).or_insert(mapping)
            }
        };
        mapping.last_used = now;
        if let Some((outside, record)) = admitted {
            mapping.peers.insert(to, Peer { last_used: now, record, outside });
        }
        let Some(peer) = mapping.peers.get_mut(&to) else { return };
        peer.last_used = now;
        peer.record.bytes_out += payload.len() as u64;
        let destination = SockaddrStorage::from(peer.outside);
        let sent = socket::sendto(
            mapping.socket.as_raw_fd(),
            payload,
            &destination,
            MsgFlags::MSG_DONTWAIT,
        );
        if let Err(e) = sent
            && let Some(why) = Unreachable::of_errno(e as i32)
        {
            out.extend(packets::unreachable(ip, why));
        }
    }

    /// Whether `fd` is one of the mappings' host sockets.
    pub fn watches(&self, fd: RawFd) -> bool {
        self.by_fd.contains_key(&fd)
    }

    /// Reads every datagram waiting at host socket `fd` and passes those from
    /// the mapping's destinations on to its stack endpoint.
    pub fn ready(&mut self, fd: RawFd, now: Instant, out: &mut Vec<Vec<u8>>) {
        let Some(&stack) = self.by_fd.get(&fd) else { return };
        let Some(mapping) = self.mappings.get_mut(&stack) else { return };
        let mut buffer = vec![0; LARGEST_DATAGRAM];
        loop {
            let (len, from) = match socket::recvfrom::<SockaddrStorage>(fd, &mut buffer) {
                Ok((len, Some(from))) => (len, from),
                Ok((_, None)) => continue,
                Err(_) => break,
            };
            let Some(from) = socket_address(&from) else { continue };
            let peer = mapping.peers.iter_mut().find(|(_, peer)| peer.outside == from);
            let Some((&inside, peer)) = peer else { continue };
            if now - peer.last_used < IDLE {
                peer.record.bytes_in += len as u64;
                mapping.last_used = now;
                out.push(packets::udp(inside, stack, &buffer[..len]));
            }
        }
    }

    /// Passes the datagrams waiting at published port `fd` on to `target`, a
    /// stack's end, each as from its client.
    pub fn arrive(
        &mut self,
        flows: &mut Flows,
        fd: RawFd,
        (publish, target): (&Publish, SocketAddr),
        now: Instant,
        out: &mut Vec<Vec<u8>>,
    ) {
        let mut buffer = vec![0; LARGEST_DATAGRAM];
        while let Ok((len, from)) = socket::recvfrom::<SockaddrStorage>(fd, &mut buffer) {
            let Some(address) = from.as_ref().and_then(socket_address) else { continue };
            let Some(inside) = flows.inside_client(address) else { continue };
            let client = self.clients.entry((target, inside)).or_insert_with(|| Client {
                published: fd,
                address,
                last_used: now,
                record: flows.inbound(publish, (inside, target), now),
            });
            client.last_used = now;
            client.record.bytes_in += len as u64;
            out.push(packets::udp(inside, target, &buffer[..len]));
        }
    }

    /// Closes the mappings idle for [`IDLE`], and ends the flows to idle
    /// destinations.
    pub fn expire(&mut self, flows: &Flows, now: Instant) {
        self.clients.retain(|_, client| {
            let live = now - client.last_used < IDLE;
            if !live {
                flows.closed(&client.record, now);
            }
            live
        });
        self.mappings.retain(|_, mapping| {
            mapping.peers.retain(|_, peer| {
                let live = now - peer.last_used < IDLE;
                if !live {
                    flows.closed(&peer.record, now);
                }
                live
            });
            now - mapping.last_used < IDLE
        });
        let mappings = &self.mappings;
        self.by_fd.retain(|_, stack| mappings.contains_key(stack));
    }

    /// How many mappings and clients are open.
    pub fn len(&self) -> usize {
        self.mappings.len() + self.clients.len()
    }

    /// The flows open, one per destination of each mapping.
    pub fn records(&self) -> impl Iterator<Item = &FlowRecord> {
        let out = self.mappings.values().flat_map(|m| m.peers.values().map(|peer| &peer.record));
        out.chain(self.clients.values().map(|client| &client.record))
    }
}

/// `address` as an IP socket address, if it is one.
pub(super) fn socket_address(address: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::from(*v4));
    }
    address.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
}
