//! TCP through the uplink: each connection a stack opens out is ended in a
//! smoltcp socket of the uplink's own and carried on by a host socket.
//!
//! The stack's SYN is held while the host socket connects: only once the host's
//! connection is up does the uplink answer, by replaying the SYN to a smoltcp
//! socket listening on exactly that destination, so the stack's connect
//! succeeds when the remote accepted, and fails as the remote refused it (a
//! reset) or as the host's network said (an ICMP error). Retransmitted SYNs
//! are ignored meanwhile. Then bytes move between smoltcp's buffers and the host
//! socket with no copy between; an end of stream goes on as `shutdown`, a reset
//! as a reset.
//!
//! The smoltcp interface sees only segments of connections it admitted (its
//! "any IP" mode would take every address as its own).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::socket::{self, Shutdown, SockaddrStorage, sockopt};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::wire::{
    HardwareAddress, IpAddress, IpCidr, IpEndpoint, TcpControl, TcpPacket, TcpRepr,
};

use super::audit::FlowRecord;
use super::packets::{self, Unreachable};
use super::policy::Protocol;
use super::{Admission, Flows, HostSocket};
use crate::modules::vunet::cidr::Cidr;
use crate::modules::vunet::network::tcp_reset_packet;
use crate::modules::vunet::smol_time::{smol_time, std_time};
use crate::sandbox::host_sockets::HostSocketKind;

/// Each direction's buffer in the uplink's smoltcp socket of a connection.
const BUFFER: usize = 256 * 1024;

/// Who a connection is between: the stack's end and the destination it dialled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    stack: SocketAddr,
    remote: SocketAddr,
}

/// One connection.
struct Connection {
    host: HostSocket,
    /// The stack's SYN, held while the host socket connects.
    syn: Option<Vec<u8>>,
    /// The uplink's socket for it, once the host's connection is up.
    handle: Option<SocketHandle>,
    /// The host socket may have bytes to read, or room to write (it turned
    /// ready and was not read or written to `EAGAIN` since).
    readable: bool,
    writable: bool,
    /// The host's side ended its stream (read 0).
    host_ended: bool,
    /// The stack's end of stream was passed on (`shutdown(SHUT_WR)`).
    stack_ended: bool,
    record: FlowRecord,
}

/// The TCP connections of one uplink.
pub(super) struct Tcp {
    iface: Interface,
    device: Queue,
    sockets: SocketSet<'static>,
    connections: HashMap<Key, Connection>,
    by_fd: HashMap<RawFd, Key>,
    by_handle: HashMap<SocketHandle, Key>,
    /// Connections to look at after the next interface poll.
    touched: HashSet<Key>,
    /// When the interface next has timer work, as of its last poll.
    deadline: Option<Instant>,
}

impl Tcp {
    /// The TCP side of an uplink with addresses `own` on a link of `mtu`.
    pub fn new(own: &[Cidr], mtu: usize, now: Instant) -> Self {
        let mut device = Queue { mtu, ..Queue::default() };
        let mut iface =
            Interface::new(Config::new(HardwareAddress::Ip), &mut device, smol_time(now));
        iface.update_ip_addrs(|addresses| {
            for cidr in own {
                let _ = addresses.push(IpCidr::new(IpAddress::from(cidr.ip), cidr.prefix));
            }
        });
        // "Any IP": every destination routed through one of its own addresses
        // is the interface's; it only ever sees admitted connections' segments.
        iface.set_any_ip(true);
        for cidr in own {
            let _ = match cidr.ip {
                IpAddr::V4(ip) => iface.routes_mut().add_default_ipv4_route(ip).map(drop),
                IpAddr::V6(ip) => iface.routes_mut().add_default_ipv6_route(ip).map(drop),
            };
        }
        Self {
            iface,
            device,
            sockets: SocketSet::new(Vec::new()),
            connections: HashMap::new(),
            by_fd: HashMap::new(),
            by_handle: HashMap::new(),
            touched: HashSet::new(),
            deadline: None,
        }
    }

    /// Takes segment `ip` (a whole IP packet) from the stack.
    pub fn segment(
        &mut self,
        flows: &mut Flows,
        ip: Vec<u8>,
        now: Instant,
        out: &mut Vec<Vec<u8>>,
    ) {
        let Some(header) = packets::Header::parse(&ip) else { return };
        let Ok(segment) = TcpPacket::new_checked(&ip[header.payload.clone()]) else { return };
        let key = Key {
            stack: SocketAddr::new(header.source, segment.src_port()),
            remote: SocketAddr::new(header.destination, segment.dst_port()),
        };
        let opening = segment.syn() && !segment.ack();
        match self.connections.get_mut(&key) {
            Some(connection) if connection.handle.is_none() && segment.rst() => {
                // The stack gave up the connection the host is still making.
                let _ = connection;
                self.forget(flows, key, now);
            }
            Some(connection) if connection.handle.is_some() => {
                // Taken in at the end of the network's round, with the others
                // that came meanwhile (see `Tcp::poll`): what they carry goes
                // to the host in as few writes as it came in segments.
                self.device.incoming.push_back(ip);
                self.touched.insert(key);
            }
            Some(connection) => {
                if opening {
                    connection.syn = Some(ip); // a retransmission: the newest is replayed
                }
            }
            // Only a SYN the uplink's socket will take starts a flow (a bad
            // checksum, a port 0, other flags with it start nothing).
            None if opening => {
                if is_plain_syn(&ip, &header) {
                    self.dial(flows, key, ip, now, out);
                }
            }
            None => out.extend(tcp_reset_packet(
                header.source,
                header.destination,
                &ip[header.payload],
                64,
            )),
        }
    }

    /// Starts the host's side of a new connection, holding its SYN.
    fn dial(
        &mut self,
        flows: &mut Flows,
        key: Key,
        syn: Vec<u8>,
        now: Instant,
        out: &mut Vec<Vec<u8>>,
    ) {
        let (outside, record) = match flows.admit(Protocol::Tcp, (key.stack, key.remote), now) {
            Admission::Allow(outside, record) => (outside, record),
            Admission::Refuse(why) => return refuse(&syn, why, out),
            Admission::Drop => return,
        };
        let kind = if key.remote.is_ipv4() { HostSocketKind::Tcp4 } else { HostSocketKind::Tcp6 };
        let Ok(host) = flows.open(kind) else {
            flows.closed(&record, now);
            return refuse(&syn, Unreachable::Port, out);
        };
        match socket::connect(host.as_raw_fd(), &SockaddrStorage::from(outside)) {
            Ok(()) | Err(Errno::EINPROGRESS) => {}
            Err(e) => {
                flows.closed(&record, now);
                return refuse_with(&syn, e, out);
            }
        }
        self.by_fd.insert(host.as_raw_fd(), key);
        let connection = Connection {
            host,
            syn: Some(syn),
            handle: None,
            readable: false,
            writable: false,
            host_ended: false,
            stack_ended: false,
            record,
        };
        self.connections.insert(key, connection);
    }

    /// Takes connection `host`, accepted on a published port from `client` (as
    /// the stacks are to see it), into the session: a socket of the uplink's
    /// connects from the client's address to `target`, a stack's.
    pub fn inbound(
        &mut self,
        flows: &mut Flows,
        host: HostSocket,
        (client, target): (SocketAddr, SocketAddr),
        record: FlowRecord,
        now: Instant,
        out: &mut Vec<Vec<u8>>,
    ) {
        let key = Key { stack: target, remote: client };
        if self.connections.contains_key(&key) {
            // (The same client port twice: the older goes on.)
            return flows.closed(&record, now);
        }
        let buffer = || tcp::SocketBuffer::new(vec![0; BUFFER]);
        let mut socket = tcp::Socket::new(buffer(), buffer());
        socket.set_nagle_enabled(false);
        let remote = IpEndpoint::new(IpAddress::from(target.ip()), target.port());
        let local = IpEndpoint::new(IpAddress::from(client.ip()), client.port());
        if socket.connect(self.iface.context(), remote, local).is_err() {
            return flows.closed(&record, now);
        }
        let handle = self.sockets.add(socket);
        self.by_handle.insert(handle, key);
        self.by_fd.insert(host.as_raw_fd(), key);
        let connection = Connection {
            host,
            syn: None,
            handle: Some(handle),
            readable: true,
            writable: true,
            host_ended: false,
            stack_ended: false,
            record,
        };
        self.connections.insert(key, connection);
        self.touched.insert(key);
        self.run(flows, now, out);
    }

    /// Whether `fd` is one of the connections' host sockets.
    pub fn watches(&self, fd: RawFd) -> bool {
        self.by_fd.contains_key(&fd)
    }

    /// Works on host socket `fd`, which turned ready.
    pub fn ready(&mut self, flows: &Flows, fd: RawFd, now: Instant, out: &mut Vec<Vec<u8>>) {
        let Some(&key) = self.by_fd.get(&fd) else { return };
        let Some(connection) = self.connections.get_mut(&key) else { return };
        connection.readable = true;
        connection.writable = true;
        if connection.handle.is_none() {
            match socket::getsockopt(&connection.host, sockopt::SocketError) {
                Ok(0) => self.accept(key, now),
                Ok(errno) => {
                    let syn = connection.syn.take().unwrap_or_default();
                    self.forget(flows, key, now);
                    return refuse_with(&syn, Errno::from_raw(errno), out);
                }
                Err(_) => return,
            }
        }
        self.touched.insert(key);
        self.run(flows, now, out);
    }

    /// The host's connection is up: a socket of the uplink's takes the held SYN.
    fn accept(&mut self, key: Key, now: Instant) {
        let Some(connection) = self.connections.get_mut(&key) else { return };
        let buffer = || tcp::SocketBuffer::new(vec![0; BUFFER]);
        let mut socket = tcp::Socket::new(buffer(), buffer());
        let listening = IpEndpoint::new(IpAddress::from(key.remote.ip()), key.remote.port());
        if socket.listen(listening).is_err() {
            return;
        }
        socket.set_nagle_enabled(false);
        let handle = self.sockets.add(socket);
        connection.handle = Some(handle);
        self.by_handle.insert(handle, key);
        self.device.incoming.extend(connection.syn.take());
        // The SYN must meet this socket alone: no other listens on this endpoint
        // by now (each took its SYN when it was made).
        let _ = self.iface.poll(smol_time(now), &mut self.device, &mut self.sockets);
    }

    /// Polls the interface, moves bytes of the touched connections, polls
    /// again to send what they gave, and hands out what the interface sent.
    fn run(&mut self, flows: &Flows, now: Instant, out: &mut Vec<Vec<u8>>) {
        let at = smol_time(now);
        let _ = self.iface.poll(at, &mut self.device, &mut self.sockets);
        for key in std::mem::take(&mut self.touched) {
            self.pump(flows, key, now);
        }
        let _ = self.iface.poll(at, &mut self.device, &mut self.sockets);
        out.append(&mut self.device.outgoing);
        self.deadline = self.iface.poll_at(at, &self.sockets).map(|at| std_time(at, now));
    }

    /// Moves what can move between connection `key`'s two ends, and ends it
    /// once both are done.
    fn pump(&mut self, flows: &Flows, key: Key, now: Instant) {
        let Some(connection) = self.connections.get_mut(&key) else { return };
        let Some(handle) = connection.handle else { return };
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        let fd = connection.host.as_raw_fd();
        while connection.writable && socket.can_recv() {
            match socket.recv(|bytes| match nix::unistd::write(&connection.host, bytes) {
                Ok(n) => (n, Ok(n)),
                Err(e) => (0, Err(e)),
            }) {
                Ok(Ok(n)) => connection.record.bytes_out += n as u64,
                Ok(Err(Errno::EAGAIN)) => connection.writable = false,
                Ok(Err(_)) | Err(_) => {
                    socket.abort();
                    break;
                }
            }
        }
        while connection.readable && !connection.host_ended && socket.can_send() {
            match socket.send(|room| match nix::unistd::read(&connection.host, room) {
                Ok(n) => (n, Ok(n)),
                Err(e) => (0, Err(e)),
            }) {
                Ok(Ok(0)) => {
                    connection.host_ended = true;
                    socket.close();
                }
                Ok(Ok(n)) => connection.record.bytes_in += n as u64,
                Ok(Err(Errno::EAGAIN)) => connection.readable = false,
                Ok(Err(_)) | Err(_) => {
                    socket.abort();
                    break;
                }
            }
        }
        let state = socket.state();
        let stack_ended = matches!(
            state,
            tcp::State::CloseWait
                | tcp::State::LastAck
                | tcp::State::Closing
                | tcp::State::TimeWait
        );
        if stack_ended && !socket.can_recv() && !connection.stack_ended {
            connection.stack_ended = true;
            let _ = socket::shutdown(fd, Shutdown::Write);
        }
        // Done once both ends are, and what the stack sent reached the host; a
        // socket back to listening took a reset in the handshake.
        let reset = state == tcp::State::Listen;
        let drained = !socket.can_recv();
        let done = reset || (drained && matches!(state, tcp::State::Closed | tcp::State::TimeWait));
        if done {
            let graceful = !reset && connection.host_ended && connection.stack_ended;
            if !graceful {
                // A reset from the stack, or a failed host socket: the host's
                // peer is reset too.
                let _ = socket::setsockopt(
                    &connection.host,
                    sockopt::Linger,
                    &libc::linger { l_onoff: 1, l_linger: 0 },
                );
            }
            self.forget(flows, key, now);
        }
    }

    /// Closes connection `key` and lets go of its sockets.
    fn forget(&mut self, flows: &Flows, key: Key, now: Instant) {
        let Some(connection) = self.connections.remove(&key) else { return };
        flows.closed(&connection.record, now);
        self.by_fd.remove(&connection.host.as_raw_fd());
        if let Some(handle) = connection.handle {
            self.sockets.remove(handle);
            self.by_handle.remove(&handle);
        }
    }

    /// Takes in the segments that came since the last call, and runs the
    /// interface's timers (retransmissions) when due.
    pub fn poll(&mut self, flows: &Flows, now: Instant, out: &mut Vec<Vec<u8>>) {
        if self.deadline.is_some_and(|at| at <= now) {
            // A timer may have ended a connection: look at every one.
            self.touched.extend(self.by_handle.values().copied());
        }
        if !self.touched.is_empty() || !self.device.incoming.is_empty() {
            self.run(flows, now, out);
        }
    }

    /// Whether segments wait to be taken in ([`Tcp::poll`]).
    pub fn busy(&self) -> bool {
        !self.device.incoming.is_empty()
    }

    /// The connections open.
    pub fn records(&self) -> impl Iterator<Item = &FlowRecord> {
        self.connections.values().map(|c| &c.record)
    }

    /// When [`Tcp::poll`] next has work.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

/// Whether `ip` (whose header is `header`) carries a SYN that the uplink's
/// smoltcp socket will take: a valid checksum, no port 0, SYN alone.
fn is_plain_syn(ip: &[u8], header: &packets::Header) -> bool {
    let Ok(segment) = TcpPacket::new_checked(&ip[header.payload.clone()]) else { return false };
    let (source, destination) =
        (IpAddress::from(header.source), IpAddress::from(header.destination));
    let parsed = TcpRepr::parse(&segment, &source, &destination, &ChecksumCapabilities::default());
    parsed.is_ok_and(|repr| {
        repr.control == TcpControl::Syn
            && repr.ack_number.is_none()
            && repr.src_port != 0
            && repr.dst_port != 0
    })
}

/// Answers SYN `syn` as the host's `connect` failed with `errno`.
fn refuse_with(syn: &[u8], errno: Errno, out: &mut Vec<Vec<u8>>) {
    match Unreachable::of_errno(errno as i32) {
        Some(why) => refuse(syn, why, out),
        // Timed out, or the supervisor's own trouble: the stack's SYN goes
        // unanswered, and its connect times out as it would.
        None => log::debug!("uplink: a connection failed on the host: {errno}"),
    }
}

/// Answers SYN `syn` with a reset (`Port`) or the ICMP error for `why`.
fn refuse(syn: &[u8], why: Unreachable, out: &mut Vec<Vec<u8>>) {
    let reset = || {
        let header = packets::Header::parse(syn)?;
        tcp_reset_packet(header.source, header.destination, &syn[header.payload], 64)
    };
    let answer = if why == Unreachable::Port { reset() } else { packets::unreachable(syn, why) };
    out.extend(answer);
}

/// The uplink's smoltcp device: IP packets in from the stacks, out to them.
#[derive(Default)]
struct Queue {
    mtu: usize,
    incoming: VecDeque<Vec<u8>>,
    outgoing: Vec<Vec<u8>>,
}

struct Rx(Vec<u8>);

struct Tx<'a>(&'a mut Vec<Vec<u8>>);

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut packet = vec![0; len];
        let result = f(&mut packet);
        self.0.push(packet);
        result
    }
}

impl phy::Device for Queue {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(
        &mut self,
        _timestamp: smoltcp::time::Instant,
    ) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let packet = self.incoming.pop_front()?;
        Some((Rx(packet), Tx(&mut self.outgoing)))
    }

    fn transmit(&mut self, _timestamp: smoltcp::time::Instant) -> Option<Self::TxToken<'_>> {
        Some(Tx(&mut self.outgoing))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = self.mtu;
        caps.checksum = ChecksumCapabilities::default();
        caps
    }
}
