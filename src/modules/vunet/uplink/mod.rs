//! The uplink: the session's way out to the host's network, with NAT.
//!
//! An uplink is a host on one of the session's switches (`[[vunet.uplink]]`);
//! routers send it what their routes lead out of the session, as to any
//! gateway. It ends each flow there and carries it on with a socket of the
//! host's network namespace, made by the sandbox's helper outside
//! ([`HostSockets`]): the host sees the supervisor's own sockets, as with
//! slirp4netns or pasta, and needs no privilege. TCP (`tcp.rs`), UDP (`udp.rs`)
//! and ICMP echo (`ping.rs`) go out, over IPv4 and IPv6; nothing else does.
//!
//! Why not libslirp: its sockets would be made in the session's empty
//! namespace (it calls `socket()` itself, with no hook), so it would have to
//! run in the helper on the host's side, parsing hostile frames in C there; it
//! has no ICMPv6 echo, and no place for a per-flow policy. smoltcp already
//! gives the TCP state machine, and the host's kernel the rest.
//!
//! Destinations that are not the host's network are refused as a host with
//! nothing there refuses them (a reset, "port unreachable"): the host's own
//! loopback, unspecified, multicast and broadcast addresses, link-local ones,
//! and the uplink's own subnets.

mod packets;
mod ping;
mod tcp;
mod udp;

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use smoltcp::wire::IpProtocol;

use super::cidr::Cidr;
use super::network::IpEndpoint;
use crate::sandbox::host_sockets::{HostSocketKind, HostSockets};
use packets::{Header, Unreachable};

/// How often idle UDP mappings and echoes are looked for.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(10);
/// ICMP echo request types (ICMPv4, ICMPv6).
const ECHO_REQUEST: [u8; 2] = [8, 128];

/// The NAT behind an uplink's port.
pub struct Uplink {
    flows: Flows,
    tcp: tcp::Tcp,
    udp: udp::Udp,
    ping: ping::Ping,
    next_expiry: Instant,
}

/// What every kind of flow shares: where host sockets come from, the event
/// loop they are watched by, and which destinations may be reached.
struct Flows {
    host: Rc<HostSockets>,
    registry: Rc<Registry>,
    /// The uplink's own addresses, whose subnets are not the host's network.
    own: Vec<Cidr>,
}

/// Whether a destination may be reached, and as which address outside.
enum Verdict {
    /// Yes, at this address.
    Allow(SocketAddr),
    /// No: answered as this.
    Refuse(Unreachable),
}

impl Flows {
    /// Whether `to` may be reached through the uplink.
    fn admit(&self, to: SocketAddr) -> Verdict {
        if is_outside(to.ip()) && !self.own.iter().any(|cidr| cidr.contains(to.ip())) {
            Verdict::Allow(to)
        } else {
            Verdict::Refuse(Unreachable::Port)
        }
    }

    /// The address the stacks see a host-side address `from` as.
    fn inside(&self, from: SocketAddr) -> SocketAddr {
        from
    }

    /// A new host socket of `kind`, watched by the session's event loop (token:
    /// its descriptor); `None`, logged, if the host refused it.
    fn open(&mut self, kind: HostSocketKind) -> Option<OwnedFd> {
        let socket = self
            .host
            .open(kind)
            .map_err(|e| log::info!("uplink: no host socket ({kind:?}): {e}"))
            .ok()?;
        let fd = socket.as_raw_fd();
        let interest = Interest::READABLE | Interest::WRITABLE;
        self.registry.register(&mut SourceFd(&fd), Token(fd as usize), interest).ok()?;
        Some(socket)
    }
}

/// Whether `ip` can be a destination on the host's network.
fn is_outside(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_link_local()
                || v4.octets()[0] == 0)
        }
        IpAddr::V6(v6) => {
            let mapped = v6.to_ipv4_mapped().is_none_or(|v4| is_outside(IpAddr::V4(v4)));
            mapped
                && !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || v6.is_unicast_link_local())
        }
    }
}

impl Uplink {
    /// The NAT of an uplink with addresses `own` on a link of `mtu`; host
    /// sockets come from `host` and are watched by `registry`.
    pub fn new(
        own: Vec<Cidr>,
        mtu: usize,
        host: Rc<HostSockets>,
        registry: Rc<Registry>,
        now: Instant,
    ) -> Self {
        Self {
            tcp: tcp::Tcp::new(&own, mtu, now),
            flows: Flows { host, registry, own },
            udp: udp::Udp::default(),
            ping: ping::Ping::default(),
            next_expiry: now + EXPIRY_INTERVAL,
        }
    }
}

impl IpEndpoint for Uplink {
    fn packet(&mut self, ip: Vec<u8>, now: Instant, out: &mut Vec<Vec<u8>>) {
        let Some(header) = Header::parse(&ip) else { return };
        let payload = ip.get(header.payload.clone()).unwrap_or_default();
        let ends = (header.source, header.destination);
        match header.protocol {
            IpProtocol::Tcp => self.tcp.segment(&mut self.flows, ip, now, out),
            IpProtocol::Udp => {
                let Some((from, to, data)) = udp_ends(ends, payload) else { return };
                self.udp.send(&mut self.flows, (from, to), &ip, data, now, out);
            }
            IpProtocol::Icmp | IpProtocol::Icmpv6
                if payload.first().is_some_and(|t| ECHO_REQUEST.contains(t)) =>
            {
                self.ping.send(&mut self.flows, ends, &ip, payload, now, out);
            }
            _ => {}
        }
    }

    fn poll(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) {
        self.tcp.poll(now, out);
        if now >= self.next_expiry {
            self.udp.expire(now);
            self.ping.expire(now);
            self.next_expiry = now + EXPIRY_INTERVAL;
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let expiry = (self.udp.len() + self.ping.len() > 0).then_some(self.next_expiry);
        super::earliest(self.tcp.deadline(), expiry)
    }

    fn watches(&self, fd: RawFd) -> bool {
        self.tcp.watches(fd) || self.udp.watches(fd) || self.ping.watches(fd)
    }

    fn ready(&mut self, fd: RawFd, now: Instant, out: &mut Vec<Vec<u8>>) {
        if self.tcp.watches(fd) {
            self.tcp.ready(fd, now, out);
        } else if self.udp.watches(fd) {
            self.udp.ready(&self.flows, fd, now, out);
        } else {
            self.ping.ready(fd, now, out);
        }
    }
}

/// The ends and data of UDP datagram `payload` between `ends`.
fn udp_ends(
    (source, destination): (IpAddr, IpAddr),
    payload: &[u8],
) -> Option<(SocketAddr, SocketAddr, &[u8])> {
    let datagram = smoltcp::wire::UdpPacket::new_checked(payload).ok()?;
    let from = SocketAddr::new(source, datagram.src_port());
    let to = SocketAddr::new(destination, datagram.dst_port());
    let len = usize::from(datagram.len()).min(payload.len());
    Some((from, to, payload.get(8..len)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hosts_network_is_outside() {
        let outside = |text: &str| is_outside(text.parse().unwrap());
        assert!(outside("192.0.2.2") && outside("2001:db8::2") && outside("::ffff:192.0.2.2"));
        for inside in ["127.0.0.53", "::1", "0.0.0.0", "0.1.2.3", "224.0.0.1", "255.255.255.255"] {
            assert!(!outside(inside), "{inside}");
        }
        for inside in ["169.254.1.1", "fe80::1", "ff02::1", "::", "::ffff:127.0.0.1"] {
            assert!(!outside(inside), "{inside}");
        }
    }
}
