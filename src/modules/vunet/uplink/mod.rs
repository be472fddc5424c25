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

mod audit;
pub mod dns;
pub mod forward;
mod packets;
mod ping;
pub mod policy;
mod tcp;
mod udp;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::sys::socket::{self, SockFlag, SockaddrStorage};
use smoltcp::wire::IpProtocol;

use super::budget::{SharedBudget, UPLINKS};
use super::cidr::Cidr;
use super::network::IpEndpoint;
use crate::sandbox::host_sockets::{HostSocketKind, HostSockets};
use audit::FlowRecord;
pub use audit::{AuditLog, Originator};
use forward::{Listener, Publish, Transport};
use packets::{Header, Unreachable};
use policy::{Decision, Policy, Protocol, Verdict};

use super::status::{FlowStatus, UplinkStatus};

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
    /// Where published ports are taken from, and the ones taken, by their
    /// host socket, with the stack's end each leads to.
    forwards: Rc<RefCell<Vec<(Listener, SocketAddr)>>>,
    published: HashMap<RawFd, (Listener, SocketAddr)>,
}

/// What the session gives all its uplinks: the egress policy, the audit log,
/// and the count of flows.
#[derive(Default)]
pub struct Egress {
    /// Which flows may leave.
    pub policy: Policy,
    /// Where each flow's lines go, if anywhere.
    pub audit: Option<AuditLog>,
    /// Addresses that lead to the host's own loopback (`--map-host-loopback`):
    /// an IPv4 one to 127.0.0.1, an IPv6 one to ::1.
    pub host_loopback: Vec<IpAddr>,
    /// Flows decided on so far, in the whole session.
    flows: u64,
}

/// An [`Egress`] shared by the session and its uplinks.
pub type SharedEgress = Rc<RefCell<Egress>>;

/// What a session shares with all its uplinks.
#[derive(Clone, Default)]
pub struct Shared {
    /// Where host sockets come from.
    pub host: Rc<HostSockets>,
    /// The egress policy and the audit log.
    pub egress: SharedEgress,
    /// Published ports not taken by an uplink yet, each with the stack's end
    /// it leads to (the first uplink takes them all).
    pub forwards: Rc<RefCell<Vec<(Listener, SocketAddr)>>>,
}

/// The rule named for destinations that are not the host's network.
const NOT_OUTSIDE: &str = "not the host's network";
/// The most flows one uplink carries at once (each holds a host socket, and
/// a TCP one up to two buffers): beyond, new ones are refused, and logged
/// with the rule [`AT_LIMIT`].
const MAX_FLOWS: usize = 4096;
/// How long a refused flow's verdict holds for its next packets (a resent
/// SYN, the next datagram), which are refused alike without a new decision
/// or audit line.
const REFUSAL_MEMORY: Duration = Duration::from_secs(10);
/// The most refusals remembered at once.
const MAX_REFUSALS: usize = 4096;
/// The rule named for flows refused at [`MAX_FLOWS`].
const AT_LIMIT: &str = "too many flows open (4096)";

/// What every kind of flow shares: where host sockets come from, the event
/// loop they are watched by, which destinations may be reached, and the log.
struct Flows {
    host: Rc<HostSockets>,
    registry: Registry,
    /// The uplink's own addresses, whose subnets are not the host's network.
    own: Vec<Cidr>,
    /// Its DNS addresses, each with the host's nameserver it leads to.
    relays: Vec<(IpAddr, IpAddr)>,
    egress: SharedEgress,
    /// How many flows are open (allowed and not closed yet).
    open: Cell<usize>,
    /// The session's descriptor budget, which host sockets count in.
    budget: SharedBudget,
    /// Whether the user was told the uplinks' share is spent.
    told_limit: Cell<bool>,
    /// Flows refused lately, with when and how (see [`REFUSAL_MEMORY`]).
    refusals: HashMap<(Protocol, SocketAddr, SocketAddr), (Instant, Option<Unreachable>)>,
}

/// A host socket of a flow's, counted in the session's descriptor budget
/// until it closes.
pub(super) struct HostSocket {
    socket: OwnedFd,
    budget: SharedBudget,
}

impl Drop for HostSocket {
    fn drop(&mut self) {
        self.budget.borrow_mut().give(UPLINKS);
    }
}

impl std::ops::Deref for HostSocket {
    type Target = OwnedFd;

    fn deref(&self) -> &OwnedFd {
        &self.socket
    }
}

impl AsFd for HostSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// Whether a new flow may go out.
enum Admission {
    /// Yes, to this address outside; the flow's record.
    Allow(SocketAddr, FlowRecord),
    /// No: answered as this.
    Refuse(Unreachable),
    /// No, and nothing answers.
    Drop,
}

impl Flows {
    /// Decides on a new flow of `protocol` from `from` (a stack's end) to `to`,
    /// and logs what was decided.
    fn admit(
        &mut self,
        protocol: Protocol,
        (from, to): (SocketAddr, SocketAddr),
        now: Instant,
    ) -> Admission {
        let key = (protocol, from, to);
        if let Some(&(at, how)) = self.refusals.get(&key)
            && now.saturating_duration_since(at) < REFUSAL_MEMORY
        {
            return how.map_or(Admission::Drop, Admission::Refuse);
        }
        let admission = self.decide(protocol, (from, to), now);
        let refusal = match &admission {
            Admission::Allow(..) => return admission,
            Admission::Refuse(why) => Some(*why),
            Admission::Drop => None,
        };
        if self.refusals.len() >= MAX_REFUSALS {
            self.refusals.retain(|_, (at, _)| now.saturating_duration_since(*at) < REFUSAL_MEMORY);
        }
        if self.refusals.len() < MAX_REFUSALS {
            self.refusals.insert(key, (now, refusal));
        }
        admission
    }

    /// [`Flows::admit`]'s decision on a flow not refused lately.
    fn decide(
        &mut self,
        protocol: Protocol,
        (from, to): (SocketAddr, SocketAddr),
        now: Instant,
    ) -> Admission {
        let mut egress = self.egress.borrow_mut();
        let relayed =
            self.relays.iter().find(|(relay, _)| *relay == to.ip() && to.port() == dns::PORT);
        let (outside, reachable) = match relayed {
            Some(&(_, nameserver)) => (SocketAddr::new(nameserver, dns::PORT), true),
            None if egress.host_loopback.contains(&to.ip()) => {
                let loopback = match to.ip() {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
                };
                (SocketAddr::new(loopback, to.port()), true)
            }
            None => (to, is_outside(to.ip()) && !self.own.iter().any(|c| c.contains(to.ip()))),
        };
        let refused = |rule: &str| Decision {
            verdict: Verdict::Deny,
            rule: Some(rule.to_owned()),
            stack: egress.policy.stack_of(from.ip()),
        };
        let decision = match reachable {
            true => egress.policy.decide(protocol, from.ip(), to),
            false => refused(NOT_OUTSIDE),
        };
        let decision = match decision.verdict {
            Verdict::Allow if self.open.get() >= MAX_FLOWS => refused(AT_LIMIT),
            _ => decision,
        };
        egress.flows += 1;
        let record = FlowRecord {
            id: egress.flows,
            protocol,
            source: from,
            destination: to,
            decision,
            inbound: false,
            started: now,
            bytes_out: 0,
            bytes_in: 0,
        };
        if let Some(audit) = &mut egress.audit {
            audit.write(&record, record.decided_event(), now);
        }
        match record.decision.verdict {
            Verdict::Allow => {
                self.open.set(self.open.get() + 1);
                Admission::Allow(outside, record)
            }
            Verdict::Deny => Admission::Refuse(Unreachable::Port),
            Verdict::Drop => Admission::Drop,
        }
    }

    /// Logs the end of an allowed flow.
    fn closed(&self, record: &FlowRecord, now: Instant) {
        self.open.set(self.open.get().saturating_sub(1));
        if let Some(audit) = &mut self.egress.borrow_mut().audit {
            audit.write(record, "close", now);
        }
    }

    /// A new host socket of `kind`, counted in the budget and watched by the
    /// session's event loop (token: its descriptor). Fails with the host's
    /// error, or with none if the uplinks' share of descriptors is spent.
    fn open(&mut self, kind: HostSocketKind) -> Result<HostSocket, Option<std::io::Error>> {
        let socket = self.host.open(kind).map_err(|e| {
            log::info!("uplink: no host socket ({kind:?}): {e}");
            Some(e)
        })?;
        self.adopt(socket).ok_or(None)
    }

    /// Host socket `socket`, counted and watched as [`Flows::open`]'s.
    fn adopt(&self, socket: OwnedFd) -> Option<HostSocket> {
        if self.budget.borrow_mut().take(UPLINKS).is_err() {
            if !self.told_limit.replace(true) {
                log::warn!(
                    "the uplink holds as many host sockets as one process may: new flows are refused"
                );
            }
            return None;
        }
        let socket = HostSocket { socket, budget: Rc::clone(&self.budget) };
        self.watch(&socket.socket).then_some(socket)
    }

    /// Has the session's event loop watch host socket `socket` (token: its
    /// descriptor); false if it cannot.
    fn watch(&self, socket: &OwnedFd) -> bool {
        let fd = socket.as_raw_fd();
        let interest = Interest::READABLE | Interest::WRITABLE;
        self.registry.register(&mut SourceFd(&fd), Token(fd as usize), interest).is_ok()
    }

    /// The address the stacks see host-side client `client` as: itself, or for
    /// a client on the host's own loopback, the uplink's address of its family.
    fn inside_client(&self, client: SocketAddr) -> Option<SocketAddr> {
        let ip = client.ip();
        let loopback = ip.is_loopback()
            || matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()));
        if !loopback {
            return Some(match ip {
                IpAddr::V6(v6) => {
                    SocketAddr::new(v6.to_ipv4_mapped().map_or(ip, IpAddr::V4), client.port())
                }
                IpAddr::V4(_) => client,
            });
        }
        let own = self.own.iter().find(|c| c.ip.is_ipv4() == client.is_ipv4())?;
        Some(SocketAddr::new(own.ip, client.port()))
    }

    /// The record of a flow that came in by forward `publish` from `client`
    /// to `target`.
    fn inbound(
        &self,
        publish: &Publish,
        (client, target): (SocketAddr, SocketAddr),
        now: Instant,
    ) -> FlowRecord {
        self.open.set(self.open.get() + 1);
        let mut egress = self.egress.borrow_mut();
        egress.flows += 1;
        let record = FlowRecord {
            id: egress.flows,
            protocol: match publish.transport {
                Transport::Tcp => Protocol::Tcp,
                Transport::Udp => Protocol::Udp,
            },
            source: client,
            destination: target,
            decision: Decision {
                verdict: Verdict::Allow,
                rule: Some(format!("publish {publish}")),
                stack: Some(publish.stack.clone()),
            },
            inbound: true,
            started: now,
            bytes_out: 0,
            bytes_in: 0,
        };
        if let Some(audit) = &mut egress.audit {
            audit.write(&record, "open", now);
        }
        record
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
        // An IPv4-mapped address never belongs on an IPv6 wire: the host's
        // socket would reach its IPv4 address past an IPv4 rule.
        IpAddr::V6(v6) => {
            v6.to_ipv4_mapped().is_none()
                && !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || v6.is_unicast_link_local())
        }
    }
}

impl Uplink {
    /// The NAT of an uplink with addresses `own` on a link of `mtu`, whose
    /// DNS addresses lead to the host's nameservers as `relays` says, of a
    /// session that shares `shared`; host sockets are watched by `registry`.
    pub fn new(
        (own, mtu): (Vec<Cidr>, usize),
        relays: Vec<(IpAddr, IpAddr)>,
        (shared, budget): (&Shared, &SharedBudget),
        registry: Registry,
        now: Instant,
    ) -> Self {
        let (host, egress) = (Rc::clone(&shared.host), Rc::clone(&shared.egress));
        Self {
            tcp: tcp::Tcp::new(&own, mtu, now),
            forwards: Rc::clone(&shared.forwards),
            published: HashMap::new(),
            flows: Flows {
                host,
                registry,
                own,
                relays,
                egress,
                open: Cell::new(0),
                budget: Rc::clone(budget),
                told_limit: Cell::new(false),
                refusals: HashMap::new(),
            },
            udp: udp::Udp::default(),
            ping: ping::Ping::default(),
            next_expiry: now + EXPIRY_INTERVAL,
        }
    }
}

/// An uplink shared by its port on the network and the session, which asks it
/// for `netvm status`.
#[derive(Clone)]
pub struct SharedUplink(pub Rc<RefCell<Uplink>>);

/// A mounted uplink, as the session knows it.
pub struct Mounted {
    /// Its name and the switch it is on.
    pub name: String,
    /// See `name`.
    pub switch: String,
    /// Its addresses, `ADDRESS/PREFIX`.
    pub addresses: Vec<String>,
    /// The uplink.
    pub uplink: SharedUplink,
}

impl Mounted {
    /// What `netvm status` shows of it at `now`.
    pub fn status(&self, now: Instant) -> UplinkStatus {
        let mut status = UplinkStatus {
            name: self.name.clone(),
            switch: self.switch.clone(),
            addresses: self.addresses.clone(),
            ..UplinkStatus::default()
        };
        self.uplink.0.borrow().report(&mut status, now);
        status
    }
}

impl IpEndpoint for SharedUplink {
    fn packet(&mut self, ip: Vec<u8>, now: Instant, out: &mut Vec<Vec<u8>>) {
        self.0.borrow_mut().packet(ip, now, out);
    }

    fn poll(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) {
        self.0.borrow_mut().poll(now, out);
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.0.borrow().next_deadline()
    }

    fn watches(&self, fd: RawFd) -> bool {
        self.0.borrow().watches(fd)
    }

    fn ready(&mut self, fd: RawFd, now: Instant, out: &mut Vec<Vec<u8>>) {
        self.0.borrow_mut().ready(fd, now, out);
    }

    fn busy(&self) -> bool {
        self.0.borrow().busy()
    }
}

impl Uplink {
    /// Fills in what the uplink knows of itself for `netvm status`: its DNS
    /// addresses, published ports and open flows.
    pub fn report(&self, status: &mut UplinkStatus, now: Instant) {
        status.dns = self
            .flows
            .relays
            .iter()
            .map(|(relay, server)| format!("{relay} -> {server}"))
            .collect();
        let mut published: Vec<String> = self
            .published
            .values()
            .map(|(listener, target)| {
                let transport = listener.publish.transport.name();
                format!("{} -> {target}/{transport}", listener.address)
            })
            .collect();
        published.sort();
        status.published = published;
        let records = self.tcp.records().chain(self.udp.records()).chain(self.ping.records());
        let mut flows: Vec<FlowStatus> = records.map(|r| r.status(now)).collect();
        flows.sort_by_key(|f| f.id);
        status.flows = flows;
    }
}

impl Drop for Uplink {
    /// The session ends: every open flow is logged as closed.
    fn drop(&mut self) {
        let now = Instant::now();
        for record in self.tcp.records().chain(self.udp.records()).chain(self.ping.records()) {
            self.flows.closed(record, now);
        }
        if let Some(audit) = &mut self.flows.egress.borrow_mut().audit {
            audit.flush(&|_, _, _| None);
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
        for (listener, target) in self.forwards.borrow_mut().drain(..) {
            if self.flows.watch(&listener.socket) {
                self.published.insert(listener.socket.as_raw_fd(), (listener, target));
            }
        }
        self.tcp.poll(&self.flows, now, out);
        if now >= self.next_expiry {
            self.udp.expire(&self.flows, now);
            self.ping.expire(&self.flows, now);
            self.next_expiry = now + EXPIRY_INTERVAL;
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let expiry = (self.udp.len() + self.ping.len() > 0).then_some(self.next_expiry);
        super::earliest(self.tcp.deadline(), expiry)
    }

    fn busy(&self) -> bool {
        self.tcp.busy()
    }

    fn watches(&self, fd: RawFd) -> bool {
        self.tcp.watches(fd)
            || self.udp.watches(fd)
            || self.ping.watches(fd)
            || self.published.contains_key(&fd)
    }

    fn ready(&mut self, fd: RawFd, now: Instant, out: &mut Vec<Vec<u8>>) {
        if self.published.contains_key(&fd) {
            self.arrive(fd, now, out);
        } else if self.tcp.watches(fd) {
            self.tcp.ready(&self.flows, fd, now, out);
        } else if self.udp.watches(fd) {
            self.udp.ready(fd, now, out);
        } else {
            self.ping.ready(fd, now, out);
        }
    }
}

impl Uplink {
    /// Takes what came to published port `fd`: every connection waiting, or
    /// every datagram.
    fn arrive(&mut self, fd: RawFd, now: Instant, out: &mut Vec<Vec<u8>>) {
        let Some((listener, target)) = self.published.get(&fd) else { return };
        let (publish, target) = (listener.publish.clone(), *target);
        match publish.transport {
            Transport::Tcp => {
                while let Ok(accepted) =
                    socket::accept4(fd, SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC)
                {
                    // SAFETY: accept4 returned a new descriptor that nothing else owns.
                    let host = unsafe { OwnedFd::from_raw_fd(accepted) };
                    // (Beyond the uplinks' share, the client is closed on.)
                    let Some(host) = self.flows.adopt(host) else { continue };
                    let peer = socket::getpeername::<SockaddrStorage>(accepted).ok();
                    let Some(client) = peer.as_ref().and_then(udp::socket_address) else {
                        continue;
                    };
                    let Some(client) = self.flows.inside_client(client) else { continue };
                    let record = self.flows.inbound(&publish, (client, target), now);
                    self.tcp.inbound(&mut self.flows, host, (client, target), record, now, out);
                }
            }
            Transport::Udp => self.udp.arrive(&mut self.flows, fd, (&publish, target), now, out),
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
        assert!(outside("192.0.2.2") && outside("2001:db8::2"));
        for inside in ["127.0.0.53", "::1", "0.0.0.0", "0.1.2.3", "224.0.0.1", "255.255.255.255"] {
            assert!(!outside(inside), "{inside}");
        }
        for inside in
            ["169.254.1.1", "fe80::1", "ff02::1", "::", "::ffff:127.0.0.1", "::ffff:192.0.2.2"]
        {
            assert!(!outside(inside), "{inside}");
        }
    }
}
