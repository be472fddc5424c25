//! The network side of a `smoltcp` stack: its interfaces on the session's virtual
//! network, and the traffic that leaves the stack.
//!
//! Between two sockets of one stack, data runs from carrier to carrier in the
//! kernel (see the parent module). Traffic to another host is smoltcp's: each
//! plugged interface is a smoltcp [`Interface`] whose device is a link of the
//! [`Network`], and the supervisor moves bytes between a program's carrier and the
//! smoltcp socket that stands for it on the wire:
//! - a TCP connection has a *pump*: the supervisor's end of the carrier's
//!   `AF_UNIX` connection on one side, a smoltcp TCP socket on the other;
//! - datagrams (UDP, ICMP) to and from a remote address pass through that
//!   address's *remote*: a datagram socket of the supervisor, bound to a carrier
//!   name that the stack records under the remote address, so that a program's
//!   `recvfrom` reports the remote host, and a connected UDP carrier is simply
//!   connected to it.
//!
//! The program still reads, writes and polls its carrier natively; only the
//! supervisor's ends move, in the stack's service rounds (`service`), which
//! drive the `NetHost` here and tell the socket table what happened.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::errno::Errno;
use nix::sys::socket::{Backlog, MsgFlags, SockFlag, SockType, accept4, listen};
use nix::unistd::Pid;
use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::{self, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::socket::{raw, tcp, udp};
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, IpProtocol, IpVersion,
};

use super::carrier::{Carriers, bind_to, connect_to, inode_of, unix_socket};
use super::cells::{Cell, CellId, Cells, Destination, Tuple};
use super::endpoint::EndpointName;
use super::neighbours::Learnt;
use super::ports::Proto;
use super::private::PrivateEnd;
use crate::fdtable::SocketId;
use crate::modules::vunet::budget::{Holder, SharedBudget};
use crate::modules::vunet::cidr::Cidr;
use crate::modules::vunet::config::InterfaceSpec;
use crate::modules::vunet::earliest;
use crate::modules::vunet::inside::{Inside, NeighbourView};
use crate::modules::vunet::network::fragment::{Fit, Reassembly, Sender, fit};
use crate::modules::vunet::network::neighbour;
use crate::modules::vunet::network::path_mtu::{self, PathMtus};
use crate::modules::vunet::network::{Frame, LinkId, Network};
use crate::modules::vunet::smol_time::{smol_time, std_time};
use crate::modules::vunet::stack::{give_back_freed_memory, shrink_idle};

/// How many remotes (see [`Remote`]) a stack keeps at most.
const MAX_REMOTES: usize = 256;
/// How long an unused remote is kept.
const REMOTE_IDLE: Duration = Duration::from_secs(30);

/// Bytes each smoltcp TCP socket buffers each way.
const TCP_BUFFER: usize = 256 * 1024;
/// Datagrams (and bytes) each smoltcp UDP or raw socket buffers each way.
const DATAGRAM_SLOTS: usize = 64;
const DATAGRAM_BUFFER: usize = 256 * 1024;
/// The most IP protocols besides ICMP that a stack's raw sockets may use at
/// once, and each one's smoltcp buffers (per interface, version and
/// direction): a raw socket of a new protocol costs the supervisor memory
/// that is never given back, so the protocols are bounded.
const RAW_PROTOCOLS: usize = 16;
const RAW_SLOTS: usize = 32;
const RAW_BUFFER: usize = 64 * 1024;
/// How long a connect waits for the neighbour its SYN goes to before giving
/// up (Linux gives up resolving one after about 3 seconds); a neighbour that
/// answered lets the SYN be retried until [`SYN_RETRIES_END`].
const DIAL_TIMEOUT: Duration = Duration::from_secs(3);
/// How long an unanswered SYN is sent again before the connect fails with
/// `ETIMEDOUT`: Linux's six retries (`tcp_syn_retries`), 1 + 2 + ... + 64 s.
const SYN_RETRIES_END: Duration = Duration::from_secs(127);
/// How many bytes closed UDP sockets may leave waiting for neighbours, per
/// interface: Linux's default limit on an unresolved neighbour's queue
/// (`unres_qlen_bytes`, 212,992 bytes).
const MAX_DRAINING: usize = 212_992;
/// How many connections to one port may wait, half open or not yet handed to
/// the program: Linux's largest backlog (`somaxconn`). SYNs beyond are dropped,
/// as Linux drops them when its queue is full; the client sends again.
const MAX_HALF_OPEN: usize = 4096;

/// One interface of a stack, as configured, and where it was plugged in.
#[derive(Clone, Debug)]
pub struct InterfacePlan {
    /// The interface, as configured.
    pub spec: InterfaceSpec,
    /// The link it is plugged into, if any, and the switch's name.
    pub link: Option<(LinkId, String)>,
}

/// What a stack's network side uses of its session's: where it watches its
/// event sources, and the supervisor's descriptors it may take.
pub struct Resources {
    /// Where the stack's own event sources are watched.
    pub registry: Registry,
    /// The supervisor's descriptors, shared by the session's processes.
    pub budget: SharedBudget,
}

/// Where traffic to a remote address leaves the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The interface (index among the plugged ones).
    pub iface: usize,
    /// The stack's own address the traffic comes from.
    pub source: IpAddr,
}

/// A plugged interface: smoltcp's interface and its general sockets.
struct NetIface {
    /// Its link's index as programs see it (`eth0` is 2).
    index: u32,
    /// Where its frames go, and how large they may be.
    wire: Wire,
    /// Fragments that came in, until their datagrams are whole.
    reassembly: Reassembly,
    /// The neighbours it learnt (smoltcp does not show its own cache).
    learnt: Learnt,
    iface: Interface,
    /// The sockets every frame that is for no cell goes to: the raw ICMP ones,
    /// and those of the protocols smoltcp does not handle itself.
    general: SocketSet<'static>,
    /// Raw sockets of TCP and UDP, for what raw sockets of theirs send: only
    /// ever polled to send. In `general` they would take every TCP and UDP
    /// packet for handled, and smoltcp would answer no closed port with a
    /// reset or "port unreachable" (their copies are taken at ingress, see
    /// [`NetHost::copy_for_raw`]).
    raw_out: SocketSet<'static>,
    /// A frame held back until its cell has room (see [`Role::Udp`]).
    held: Option<Frame>,
    /// The neighbours asked for ahead of smoltcp (see [`NetHost::ask_ahead`]),
    /// and when.
    asked: HashMap<IpAddr, Instant>,
    /// Destinations traffic was just given to smoltcp for, whose neighbours
    /// the round asks for ahead.
    to_ask: Vec<IpAddr>,
    /// The bytes closed UDP sockets' cells still hold to send (see
    /// [`Role::Draining`]): at most [`MAX_DRAINING`].
    draining: usize,
}

/// What a cell's smoltcp socket is for.
enum Role {
    /// A TCP socket made for a SYN that arrived for listened port `port`.
    Listen { port: u16 },
    /// The UDP socket of a port of the stack, with how many datagrams it took
    /// since they were last collected: when its buffer may be full, frames for it
    /// wait at the link until the datagrams have gone to their carriers.
    Udp { waiting: usize, marks: VecDeque<Marks> },
    /// A connect under way.
    Dial(Dial),
    /// A connection a listener of `port` took, not handed to a program yet.
    Arriving { port: u16 },
    /// A connection between a carrier and the network.
    Pump(Pump),
    /// Done with: removed once its turn has sent what it still owes (a reset, a
    /// last acknowledgement).
    Retiring,
    /// A closed UDP port's socket with `bytes` of datagrams still waiting for
    /// a neighbour to answer: they go out when it does (the socket's close does
    /// not take back what it sent, as on Linux), or are dropped at `until`.
    Draining { until: Instant, bytes: usize },
}

/// What the IP header of a datagram from the network said that smoltcp does
/// not keep: its TTL (hop limit) and type of service (traffic class).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Marks {
    pub(super) ttl: u8,
    pub(super) tos: u8,
}

impl Marks {
    /// The marks of Ethernet frame `frame`'s IP header, if it has one.
    fn of(frame: &[u8]) -> Option<Self> {
        let ip = frame.get(ETHERNET_HEADER..)?;
        match ip.first()? >> 4 {
            4 => Some(Self { ttl: *ip.get(8)?, tos: *ip.get(1)? }),
            6 => {
                let tclass = (u16::from_be_bytes([*ip.first()?, *ip.get(1)?]) >> 4) as u8;
                Some(Self { ttl: *ip.get(7)?, tos: tclass })
            }
            _ => None,
        }
    }
}

/// A TCP connection between a carrier and the network.
struct Pump {
    /// The supervisor's end of the carrier's connection.
    end: OwnedFd,
    /// Who the end was taken from the budget for.
    holder: Holder,
    /// The program will send no more (its end read EOF).
    program_done: bool,
    /// The program was told the peer sends no more.
    peer_done_told: bool,
    /// A stand-in for the remote peer that `accept` looked up, dropped with the pump.
    stand_in: Option<SocketId>,
    /// The program's socket, once known (a connect's at once, an arrival's
    /// when the program accepts it): if it closes with `SO_LINGER` {1, 0}
    /// (see [`NetHost::abortive`]), its end of file is a reset, not a FIN.
    socket: Option<SocketId>,
}

/// A TCP connect under way, the program's carrier waiting at `gate`.
///
/// The gate is a listener of the supervisor's that the carrier connects to. A
/// blocking connect must block until the handshake ends, so a filler connection
/// fills the gate's backlog first and the program's connect waits in the kernel
/// (where signals, `SA_RESTART` and `SO_SNDTIMEO` act as usual). Established: the
/// filler is taken, the carrier's connection goes through and becomes a pump.
/// Failed: the gate closes, and the waiting connect fails natively.
struct Dial {
    /// When the program's connect began.
    started: Instant,
    socket: SocketId,
    /// The process that connects: its gate, then its pump's end, is one
    /// descriptor of its share.
    owner: Pid,
    gate: OwnedFd,
    gate_name: EndpointName,
    filler: Option<OwnedFd>,
    deadline: Instant,
    /// What keeps a non-blocking connect's carrier from polling writable.
    plug: Option<Plug>,
    /// A non-blocking connect whose exit was not seen yet: a failure waits for
    /// it, or the carrier's own connect, not made yet, would fail at once
    /// (Linux says `EINPROGRESS`, and the error comes later).
    exit_pending: bool,
    /// The error an ICMP message about the handshake's SYN reported: the
    /// connect fails with it.
    refused_by: Option<Errno>,
    /// The handshake ended: the connect succeeds, even if a reset closes the
    /// connection before the program comes for it (as on Linux, the reset is
    /// then the connected socket's to report).
    established: bool,
}

/// A non-blocking connect's carrier, kept from polling writable while the
/// handshake goes on, as Linux's socket is.
///
/// The carrier's connection to the gate is made at once, and an `AF_UNIX`
/// stream socket polls writable while its queued bytes take less than a quarter
/// of its send buffer, and takes a write while they take less than all of it:
/// so its send buffer is shrunk to the least and filled from the supervisor's
/// copy of it, and the program's writes meet `EAGAIN` as on Linux. Established,
/// the bytes are read off the carrier's connection and the send buffer comes
/// back; failed, the gate closes (which frees the bytes) and the carrier polls
/// `POLLOUT | POLLERR | POLLHUP`, as Linux's after a failed connect.
///
/// Another thread of the program may write between the carrier's connect and
/// the plug: the pull tells the supervisor's bytes from the program's by their
/// writer (each queued write of an `AF_UNIX` stream carries its writer's
/// process while nobody has accepted the connection yet), and keeps the
/// program's.
struct Plug {
    /// The supervisor's copy of the program's carrier.
    carrier: OwnedFd,
    /// How many bytes it queued.
    bytes: usize,
    /// The carrier's send buffer as it was (as `SO_SNDBUF` is set).
    sndbuf: usize,
}

impl Plug {
    /// Plugs `carrier`, if the kernel lets it.
    fn new(carrier: OwnedFd) -> Option<Self> {
        use nix::sys::socket::{getsockopt, setsockopt, sockopt::SndBuf};
        // The kernel doubles what it is given, and reports the doubled value.
        let sndbuf = getsockopt(&carrier, SndBuf).ok()? / 2;
        setsockopt(&carrier, SndBuf, &1).ok()?;
        let filler = [0u8; PLUG_BYTES];
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        let mut bytes = 0;
        // Until the send buffer is full: a write of the program's then waits.
        while bytes < PLUG_LIMIT {
            match nix::sys::socket::send(carrier.as_raw_fd(), &filler, flags) {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes += n,
            }
        }
        if bytes == 0 {
            let _ = setsockopt(&carrier, SndBuf, &sndbuf);
            return None;
        }
        Some(Self { carrier, bytes, sndbuf })
    }

    /// Takes the plug out of the carrier's connection, whose supervisor end is
    /// `end`: its bytes are read off, and the send buffer comes back. Returns
    /// what the program wrote before them, to be sent first.
    fn pull(self, end: &OwnedFd) -> Vec<u8> {
        use nix::sys::socket::{ControlMessageOwned, recvmsg, setsockopt, sockopt::PassCred};
        // With credentials asked for, a read stops where the writer changes.
        let asked = setsockopt(end, PassCred, &true).is_ok();
        let supervisor = Pid::this().as_raw();
        let mut left = self.bytes;
        let mut program = Vec::new();
        // All of it at once where it can: each read that frees some of the
        // carrier's buffer wakes its writers (an edge-triggered EPOLLOUT).
        let mut scratch = vec![0u8; left];
        while left > 0 {
            let mut space = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
            let mut iov = [std::io::IoSliceMut::new(&mut scratch[..left])];
            let Ok(message) =
                recvmsg::<()>(end.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_DONTWAIT)
            else {
                break;
            };
            let n = message.bytes;
            let ours = !asked
                || message.cmsgs().ok().into_iter().flatten().any(|m| {
                    matches!(m, ControlMessageOwned::ScmCredentials(c) if c.pid() == supervisor)
                });
            if n == 0 {
                break;
            } else if ours {
                left -= n;
            } else {
                program.extend_from_slice(&scratch[..n]);
            }
        }
        if asked {
            let _ = setsockopt(end, PassCred, &false);
        }
        self.unplug();
        program
    }

    /// Gives the carrier its send buffer back.
    fn unplug(self) {
        use nix::sys::socket::{setsockopt, sockopt::SndBuf};
        let _ = setsockopt(&self.carrier, SndBuf, &self.sndbuf);
    }
}

/// How many bytes a [`Plug`] queues at a time.
const PLUG_BYTES: usize = 1024;
/// The most a [`Plug`] queues (the least send buffer fills long before).
const PLUG_LIMIT: usize = 64 * 1024;

impl Dial {
    /// When the dial is next to be looked at, whatever happens: its handshake's
    /// deadline, or the end of the wait for a program that never came for it.
    fn wake(&self, now: Instant) -> Instant {
        if now < self.deadline { self.deadline } else { self.deadline + DIAL_TIMEOUT }
    }
}

/// A datagram a carrier sent that smoltcp had no room for yet: its end is read
/// no further until it went.
pub(super) struct Parked {
    /// The carrier that sent it.
    pub(super) sender: EndpointName,
    pub(super) payload: Vec<u8>,
}

/// A remote address as the stack's carriers see it (see the module docs).
pub(super) struct Remote {
    end: OwnedFd,
    /// When a datagram last passed through it.
    used: Instant,
    /// Its carrier name, which the stack records under the remote address.
    pub(super) name: EndpointName,
    /// Its stand-in socket in the stack's table.
    pub(super) id: SocketId,
}

impl Remote {
    /// The supervisor's end that datagrams from the remote leave by.
    pub(super) fn fd(&self) -> RawFd {
        self.end.as_raw_fd()
    }
}

/// A smoltcp stack's network side.
///
/// Its smoltcp sockets live in [`Cells`]: a listened port or a bound UDP port
/// costs nothing until a frame comes for it, and a round works only on the
/// cells something touched.
pub(super) struct NetHost {
    ifaces: Vec<NetIface>,
    registry: Registry,
    /// The supervisor's descriptors: each pump's end, gate or private end is
    /// taken from it for the process that caused it.
    pub(super) budget: SharedBudget,
    cells: Cells<Role>,
    /// The cells whose turn this round is (see [`NetHost::begin_round`]).
    turn: Vec<CellId>,
    /// The cell each watched fd (a pump's end, a dial's gate) belongs to.
    by_fd: HashMap<RawFd, CellId>,
    /// The cell of each socket's connect under way.
    dials: HashMap<SocketId, CellId>,
    /// The pump of each connection that arrived, by its stand-in (until the
    /// program accepts it, the pump does not know the program's socket).
    arrived: HashMap<SocketId, CellId>,
    /// The program's sockets that close with `SO_LINGER` {1, 0}: their
    /// connections across the network end with a reset.
    pub(super) abortive: HashSet<SocketId>,
    /// The pump of each program socket that has one: its flag above outlives
    /// the socket's record, until the pump has seen the program's close.
    pumps: HashMap<SocketId, CellId>,
    /// The listened TCP ports, with the one address listened on (`None`: all).
    listeners: HashMap<u16, Option<IpAddr>>,
    /// How many connections are in the making (or made, not handed over) per
    /// listened port: at most [`MAX_HALF_OPEN`].
    half_open: HashMap<u16, usize>,
    /// The UDP ports bound, and the cells of those that had traffic, by
    /// interface and port.
    udp_ports: HashSet<u16>,
    udp: HashMap<(usize, u16), CellId>,
    /// UDP cells that took datagrams since they were last collected.
    udp_received: Vec<CellId>,
    /// One raw ICMP socket per interface and IP version (in its general set):
    /// every ICMP packet in.
    icmp: HashMap<(usize, IpVersion), SocketHandle>,
    /// Raw smoltcp sockets of the other IP protocols the stack's raw sockets
    /// use, by interface, IP version and protocol: a copy of every packet of
    /// theirs in, and theirs out. Opened as raw sockets ask, never closed, at
    /// most [`RAW_PROTOCOLS`] protocols.
    raw: HashMap<(usize, IpVersion, u8), SocketHandle>,
    /// Copies of packets a socket's cell took, for the raw sockets of their
    /// protocol (see [`NetHost::copy_for_raw`]).
    raw_copies: Vec<Vec<u8>>,
    remotes: HashMap<(Proto, SocketAddr), Remote>,
    /// The TTL of the last packet each ICMP socket received, for `IP_RECVTTL`.
    pub(super) last_ttl: HashMap<SocketId, u8>,
    /// The private ends of connected datagram carriers, by carrier name.
    pub(super) privates: HashMap<EndpointName, PrivateEnd>,
    /// The remote each end that carriers send to (a remote's, a private one)
    /// stands for, by fd: a round reads only the ends that fired.
    ends: HashMap<RawFd, (Proto, SocketAddr)>,
    /// The datagram each end that carriers send to has parked, waiting for room.
    pub(super) parked: HashMap<RawFd, Parked>,
    /// Carriers to mark with an error, and when.
    pub(super) raise_at: Vec<(Instant, EndpointName)>,
    /// When idle remotes were last looked for.
    remotes_checked: Instant,
    /// The segment size each connection's peer announced in its SYN, by
    /// interface and connection (for `TCP_MAXSEG`).
    peer_mss: HashMap<(usize, Tuple), u16>,
}

/// What an interface's device needs to put frames on its link.
struct Wire {
    link: LinkId,
    /// Administratively up: down, it passes no frame either way (what smoltcp
    /// sends is dropped; its timers still run, as Linux's do for a connection
    /// whose route went down).
    up: bool,
    /// The link's MTU, as configured.
    mtu: usize,
    /// The path MTUs routers reported.
    paths: PathMtus,
    /// The identification of the next datagram sent in fragments.
    ident: u32,
}

impl Wire {
    /// Makes arriving `frame` what smoltcp is to see: a SYN announces no more
    /// than the path back carries (see `path_mtu::clamp_syn`).
    fn arriving(&self, frame: &mut Frame, now: Instant) {
        let Some(packet) = frame.get_mut(ETHERNET_HEADER..) else { return };
        if let Some((source, _)) = path_mtu::addresses(packet) {
            path_mtu::clamp_syn(packet, self.paths.towards(source, self.mtu, now));
        }
    }

    /// Sends `frame`, which smoltcp made for a link of any size, as the link
    /// takes it: a SYN announces the segment size of its path, and a datagram
    /// larger than its path goes in fragments (see `network::fragment`).
    fn send(&mut self, network: &mut Network, mut frame: Frame, now: Instant) -> usize {
        if !self.up {
            return 0;
        }
        let Some((_, destination)) = frame.get(ETHERNET_HEADER..).and_then(path_mtu::addresses)
        else {
            network.send(self.link, frame, now);
            return 1;
        };
        let mtu = self.paths.towards(destination, self.mtu, now);
        path_mtu::clamp_syn(&mut frame[ETHERNET_HEADER..], mtu);
        if frame.len() - ETHERNET_HEADER <= mtu {
            network.send(self.link, frame, now);
            return 1;
        }
        let packet = frame.split_off(ETHERNET_HEADER);
        let fragments = match fit(packet, mtu, Sender::Origin, self.ident) {
            Fit::Fragments(fragments) => fragments,
            Fit::Whole(packet) | Fit::TooBig(packet) => vec![packet],
        };
        self.ident = self.ident.wrapping_add(1);
        let sent = fragments.len();
        for fragment in fragments {
            network.send(self.link, [&frame[..], &fragment].concat(), now);
        }
        sent
    }
}

/// The device of a plugged interface for one step of smoltcp: the frame it
/// takes in, if any, and its wire for what it sends.
///
/// smoltcp is told the largest MTU, so that datagrams of any size reach the
/// wire, which cuts them to their path.
struct LinkDevice<'n> {
    network: &'n mut Network,
    wire: &'n mut Wire,
    now: Instant,
    incoming: Option<Frame>,
    /// Frames sent.
    sent: usize,
}

impl<'n> LinkDevice<'n> {
    fn new(
        network: &'n mut Network,
        wire: &'n mut Wire,
        now: Instant,
        incoming: Option<Frame>,
    ) -> Self {
        Self { network, wire, now, incoming, sent: 0 }
    }

    fn tx(&mut self) -> LinkTx<'_> {
        LinkTx { network: self.network, wire: self.wire, now: self.now, sent: &mut self.sent }
    }
}

struct LinkRx(Frame);

struct LinkTx<'a> {
    network: &'a mut Network,
    wire: &'a mut Wire,
    now: Instant,
    sent: &'a mut usize,
}

impl phy::RxToken for LinkRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for LinkTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let result = f(&mut frame);
        *self.sent += self.wire.send(self.network, frame, self.now);
        result
    }
}

impl phy::Device for LinkDevice<'_> {
    type RxToken<'a>
        = LinkRx
    where
        Self: 'a;
    type TxToken<'a>
        = LinkTx<'a>
    where
        Self: 'a;

    fn receive(
        &mut self,
        _timestamp: smoltcp::time::Instant,
    ) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let frame = self.incoming.take()?;
        Some((LinkRx(frame), self.tx()))
    }

    fn transmit(&mut self, _timestamp: smoltcp::time::Instant) -> Option<Self::TxToken<'_>> {
        Some(self.tx())
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_IP_PACKET + ETHERNET_HEADER;
        caps.checksum = ChecksumCapabilities::default();
        caps
    }
}

/// The largest IP packet smoltcp is let make (see [`LinkDevice`]): IPv6's
/// largest payload and its header.
const MAX_IP_PACKET: usize = 65535 + 40;
const ETHERNET_HEADER: usize = 14;

/// The neighbour that traffic to `to` out of `iface` goes to: `to` itself on
/// a connected subnet, else the gateway of the longest matching route.
fn next_hop(iface: &mut Interface, to: IpAddr) -> Option<IpAddr> {
    let to = IpAddress::from(to);
    let broadcast = |cidr: &IpCidr| match cidr {
        IpCidr::Ipv4(v4) => v4.broadcast().map(IpAddress::Ipv4) == Some(to),
        IpCidr::Ipv6(_) => false,
    };
    // Groups and broadcasts have no neighbour to ask for.
    if !to.is_unicast() || iface.ip_addrs().iter().any(broadcast) {
        return None;
    }
    if iface.ip_addrs().iter().any(|cidr| cidr.contains_addr(&to)) {
        return Some(to.into());
    }
    let mut best: Option<(u8, IpAddress)> = None;
    iface.routes_mut().update(|table| {
        for route in table.iter().filter(|r| r.cidr.contains_addr(&to)) {
            if best.is_none_or(|(len, _)| route.cidr.prefix_len() > len) {
                best = Some((route.cidr.prefix_len(), route.via_router));
            }
        }
    });
    best.map(|(_, via)| via.into())
}

/// `cidr` as smoltcp writes it.
fn smol_cidr(cidr: Cidr) -> IpCidr {
    IpCidr::new(IpAddress::from(cidr.ip), cidr.prefix)
}

/// A smoltcp TCP socket. Its buffers are zeroed allocations large enough to be
/// mapped afresh (see `supervisor::return_freed_memory`): their pages cost
/// nothing until data passes, and go back to the system when the socket goes.
fn new_tcp() -> tcp::Socket<'static> {
    let mut socket = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; TCP_BUFFER]),
        tcp::SocketBuffer::new(vec![0; TCP_BUFFER]),
    );
    // Links inside the session do not lose packets; acknowledge at once.
    socket.set_ack_delay(None);
    socket.set_nagle_enabled(false);
    socket
}

/// Whether raw sockets of `protocol` only send through smoltcp (TCP and UDP,
/// which smoltcp handles itself; see [`NetIface::raw_out`]).
fn sends_only(protocol: u8) -> bool {
    [IpProtocol::Tcp, IpProtocol::Udp].contains(&protocol.into())
}

/// Whether `protocol` is the ICMP of IP `version`, whose raw smoltcp sockets
/// the stack has from the start.
fn is_own_icmp(version: IpVersion, protocol: u8) -> bool {
    match version {
        IpVersion::Ipv4 => protocol == u8::from(IpProtocol::Icmp),
        IpVersion::Ipv6 => protocol == u8::from(IpProtocol::Icmpv6),
    }
}

/// A pair of datagram buffers (receive, send) for a smoltcp UDP or raw socket.
fn datagram_buffers<M: Clone>()
-> (smoltcp::storage::PacketBuffer<'static, M>, smoltcp::storage::PacketBuffer<'static, M>) {
    let buffer = || {
        smoltcp::storage::PacketBuffer::new(
            vec![smoltcp::storage::PacketMetadata::EMPTY; DATAGRAM_SLOTS],
            vec![0; DATAGRAM_BUFFER],
        )
    };
    (buffer(), buffer())
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

fn read_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    nix::unistd::read(unsafe_borrow(fd), buf).map_err(io::Error::from)
}

fn write_fd(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    nix::sys::socket::send(fd, buf, MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT)
        .map_err(io::Error::from)
}

/// Borrows a raw fd owned elsewhere for one call.
fn unsafe_borrow(fd: RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: every caller passes an fd owned by a live `OwnedFd` of this module,
    // used only within the call.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

impl NetHost {
    /// The network side of a stack with `interfaces` (those plugged into a link
    /// become smoltcp interfaces), configured as `view` says. With none plugged
    /// it reaches no other host, and still stands in for the host itself (the
    /// replies to pings of its own addresses come from there).
    pub(super) fn new(
        interfaces: &[InterfacePlan],
        view: &Inside,
        network: &mut Network,
        resources: Resources,
        seed: u64,
    ) -> Self {
        let Resources { registry, budget } = resources;
        let now = Instant::now();
        let mut ifaces = Vec::new();
        for (position, plan) in interfaces.iter().enumerate() {
            let Some((link, _)) = plan.link.clone() else { continue };
            let spec = &plan.spec;
            let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(spec.mac)));
            config.random_seed = seed ^ ifaces.len() as u64;
            let mut wire =
                Wire { link, up: true, mtu: spec.mtu, paths: PathMtus::default(), ident: 0 };
            let mut device = LinkDevice::new(network, &mut wire, now, None);
            let iface = Interface::new(config, &mut device, smol_time(now));
            let mut general = SocketSet::new(Vec::new());
            let mut icmp = |version, protocol| {
                let (rx, tx) = datagram_buffers();
                general.add(raw::Socket::new(Some(version), Some(protocol), rx, tx))
            };
            let v4 = icmp(IpVersion::Ipv4, IpProtocol::Icmp);
            let v6 = icmp(IpVersion::Ipv6, IpProtocol::Icmpv6);
            ifaces.push((
                NetIface {
                    index: position as u32 + 2,
                    wire,
                    reassembly: Reassembly::default(),
                    learnt: Learnt::default(),
                    iface,
                    general,
                    raw_out: SocketSet::new(Vec::new()),
                    held: None,
                    asked: HashMap::new(),
                    to_ask: Vec::new(),
                    draining: 0,
                },
                [(IpVersion::Ipv4, v4), (IpVersion::Ipv6, v6)],
            ));
        }
        let icmp = ifaces
            .iter()
            .enumerate()
            .flat_map(|(i, (_, handles))| handles.map(|(version, h)| ((i, version), h)))
            .collect();
        let mut host = Self {
            ifaces: ifaces.into_iter().map(|(f, _)| f).collect(),
            registry,
            budget,
            cells: Cells::default(),
            turn: Vec::new(),
            by_fd: HashMap::new(),
            dials: HashMap::new(),
            arrived: HashMap::new(),
            abortive: HashSet::new(),
            pumps: HashMap::new(),
            listeners: HashMap::new(),
            half_open: HashMap::new(),
            udp_ports: HashSet::new(),
            udp: HashMap::new(),
            udp_received: Vec::new(),
            icmp,
            raw: HashMap::new(),
            raw_copies: Vec::new(),
            remotes: HashMap::new(),
            last_ttl: HashMap::new(),
            privates: HashMap::new(),
            ends: HashMap::new(),
            parked: HashMap::new(),
            raise_at: Vec::new(),
            remotes_checked: now,
            peer_mss: HashMap::new(),
        };
        host.configure(view);
        host
    }

    /// Makes every interface follow `view`: up or down, its MTU and hardware
    /// address, its addresses, and the routes through its gateways.
    pub(super) fn configure(&mut self, view: &Inside) {
        for f in &mut self.ifaces {
            let Ok(link) = view.link(f.index) else { continue };
            f.wire.up = link.up;
            if f.wire.mtu != link.mtu as usize {
                f.wire.mtu = link.mtu as usize;
                f.wire.paths.clear();
            }
            let mac = HardwareAddress::Ethernet(EthernetAddress(link.mac));
            if f.iface.hardware_addr() != mac {
                f.iface.set_hardware_addr(mac);
            }
            // smoltcp holds unicast addresses only (it panics on others), and
            // forgets its neighbours whenever they change: only when they do.
            let own: Vec<IpCidr> = view
                .addresses
                .iter()
                .filter(|a| a.index == f.index)
                .map(|a| smol_cidr(a.address))
                .filter(|cidr| cidr.address().is_unicast())
                .collect();
            if f.iface.ip_addrs() != own.as_slice() || !f.wire.up {
                let own_ips = own.iter().map(|cidr| IpAddr::from(cidr.address())).collect();
                f.learnt.reset(own_ips);
                f.iface.update_ip_addrs(|addrs| {
                    addrs.clear();
                    for cidr in own {
                        let _ = addrs.push(cidr);
                    }
                });
            }
            let gateways = view.routes.iter().filter(|r| r.index == f.index);
            f.iface.routes_mut().update(|table| {
                table.clear();
                for route in gateways {
                    // smoltcp asserts that a gateway is unicast when it routes.
                    let Some(via) = route.gateway.map(IpAddress::from) else { continue };
                    if !via.is_unicast() {
                        continue;
                    }
                    let _ = table.push(smoltcp::iface::Route {
                        cidr: smol_cidr(route.destination),
                        via_router: via,
                        preferred_until: None,
                        expires_at: None,
                    });
                }
            });
        }
    }

    /// The neighbours each plugged interface learnt, as `ip neigh` shows them.
    pub(super) fn neighbours(&self, now: Instant) -> Vec<NeighbourView> {
        self.ifaces.iter().flat_map(|f| f.learnt.views(f.index, now)).collect()
    }

    /// Forgets the neighbour `ip` interface `index` learnt, as it was at `now`.
    pub(super) fn forget_neighbour(
        &mut self,
        index: u32,
        ip: IpAddr,
        now: Instant,
    ) -> Option<NeighbourView> {
        let f = self.ifaces.iter_mut().find(|f| f.index == index)?;
        let view = f.learnt.views(index, now).find(|view| view.ip == ip)?;
        f.learnt.forget(ip);
        Some(view)
    }

    /// Whether frames wait at one of the interfaces' links.
    pub(super) fn frames_waiting(&self, network: &Network) -> bool {
        self.ifaces.iter().any(|f| f.held.is_some() || network.has_frames(f.wire.link))
    }

    /// The MTU of interface `iface`'s link (index among the plugged ones).
    pub(super) fn link_mtu(&self, iface: usize) -> usize {
        self.ifaces.get(iface).map_or(MAX_IP_PACKET, |f| f.wire.mtu)
    }

    /// The MTU of the path to `to` through interface `iface` (index among the
    /// plugged ones): its link's, or less where a router reported less.
    pub(super) fn path_mtu(&self, iface: usize, to: IpAddr) -> usize {
        let Some(f) = self.ifaces.get(iface) else { return MAX_IP_PACKET };
        f.wire.paths.towards(to.to_canonical(), f.wire.mtu, Instant::now())
    }

    /// The plugged interface of link `index`, if it is plugged.
    pub(super) fn iface_of(&self, index: u32) -> Option<usize> {
        self.ifaces.iter().position(|f| f.index == index)
    }

    /// Watches a datagram socket of the supervisor for what carriers send it;
    /// its fd is its token, so that a round reads only the ones that fired.
    fn watch(&mut self, fd: RawFd) {
        let _ = self.registry.register(&mut SourceFd(&fd), Token(fd as usize), Interest::READABLE);
    }

    /// Whether `fd` is one the stack watches: a cell's, or an end carriers
    /// send datagrams to.
    pub(super) fn watches(&self, fd: RawFd) -> bool {
        self.by_fd.contains_key(&fd) || self.ends.contains_key(&fd)
    }

    /// Gives back the room of many sockets gone.
    pub(super) fn shrink_idle(&mut self) {
        self.forget_gone_peer_mss();
        self.cells.shrink_idle();
        shrink_idle(&mut self.by_fd);
        shrink_idle(&mut self.dials);
        shrink_idle(&mut self.arrived);
        shrink_idle(&mut self.pumps);
        shrink_idle(&mut self.abortive);
        shrink_idle(&mut self.peer_mss);
        shrink_idle(&mut self.udp);
        shrink_idle(&mut self.ends);
        shrink_idle(&mut self.parked);
        shrink_idle(&mut self.last_ttl);
        shrink_idle(&mut self.privates);
        shrink_idle(&mut self.remotes);
        shrink_idle(&mut self.half_open);
        shrink_idle(&mut self.listeners);
        shrink_idle(&mut self.udp_ports);
    }

    /// Watches `fd`, which belongs to cell `id`: when it fires, the cell gets a turn.
    fn watch_for(&mut self, fd: RawFd, id: CellId, interest: Interest) {
        let _ = self.registry.register(&mut SourceFd(&fd), Token(fd as usize), interest);
        self.by_fd.insert(fd, id);
    }

    /// Stops watching `fd` (before it closes: its number may come back for
    /// another).
    fn unwatch(&mut self, fd: RawFd) {
        let _ = self.registry.deregister(&mut SourceFd(&fd));
        self.by_fd.remove(&fd);
    }

    /// Starts a TCP connect from `local` to `to` for the carrier of `socket`, and
    /// returns the name of the gate the carrier is to connect to.
    pub(super) fn dial(
        &mut self,
        socket: SocketId,
        route: Route,
        local: SocketAddr,
        to: SocketAddr,
        gate_name: EndpointName,
        (blocking, owner): (bool, Pid),
    ) -> Result<(), Errno> {
        if self.budget.borrow_mut().take(Some(owner)).is_err() {
            // Connects the process closed under way may hold its share.
            self.drop_abandoned_dials(owner);
            self.budget.borrow_mut().take(Some(owner))?;
        }
        let dialled = self.dial_for(socket, route, (local, to), gate_name, (blocking, owner));
        if dialled.is_err() {
            self.budget.borrow_mut().give(Some(owner));
        }
        dialled
    }

    /// Ends the connects under way of `owner` whose socket it no longer
    /// holds: it closed them (their carriers outlive the close, kept by the
    /// supervisor's copy; Linux frees a closed socket's connect at once).
    fn drop_abandoned_dials(&mut self, owner: Pid) {
        let abandoned: Vec<CellId> = self
            .dials
            .iter()
            .filter(|&(&socket, &id)| {
                let Some(Cell { role: Role::Dial(dial), .. }) = self.cells.get(id) else {
                    return false;
                };
                dial.owner == owner
                    && dial.filler.is_none()
                    && !super::proc::holds_socket(owner, socket.0)
            })
            .map(|(_, &id)| id)
            .collect();
        for id in abandoned {
            self.retire(id);
        }
    }

    /// [`NetHost::dial`], once its descriptor is taken.
    fn dial_for(
        &mut self,
        socket: SocketId,
        route: Route,
        (local, to): (SocketAddr, SocketAddr),
        gate_name: EndpointName,
        (blocking, owner): (bool, Pid),
    ) -> Result<(), Errno> {
        let gate = unix_socket(SockType::Stream)?;
        bind_to(gate.as_raw_fd(), &gate_name)?;
        // Backlog 0 holds one connection: the filler's, so the program's waits.
        listen(&gate, Backlog::new(0)?)?;
        let filler = if blocking {
            let filler = unix_socket(SockType::Stream)?;
            connect_to(filler.as_raw_fd(), &gate_name)?;
            Some(filler)
        } else {
            None
        };
        let mut tcp = new_tcp();
        let context = self.ifaces[route.iface].iface.context();
        tcp.connect(context, IpEndpoint::from(to), IpEndpoint::from(local))
            .map_err(|_| Errno::EADDRNOTAVAIL)?;
        let tuple = Tuple::of(&tcp);
        let gate_fd = gate.as_raw_fd();
        let started = Instant::now();
        let deadline = started + DIAL_TIMEOUT;
        let exit_pending = !blocking;
        let dial = Dial {
            started,
            socket,
            owner,
            gate,
            gate_name,
            filler,
            deadline,
            plug: None,
            exit_pending,
            refused_by: None,
            established: false,
        };
        let id = self.cells.add(route.iface, tcp, Role::Dial(dial));
        self.will_send(route.iface, to.ip());
        if let Some(tuple) = tuple {
            self.cells.index(id, tuple);
        }
        self.watch_for(gate_fd, id, Interest::READABLE);
        if let Some(old) = self.dials.insert(socket, id) {
            self.retire(old);
        }
        Ok(())
    }

    /// Notes that traffic to `to` goes to smoltcp on interface `iface`: the
    /// round asks for its neighbour ahead (see [`NetHost::ask_ahead`]).
    fn will_send(&mut self, iface: usize, to: IpAddr) {
        const MAX_TO_ASK: usize = 64;
        if let Some(f) = self.ifaces.get_mut(iface)
            && f.to_ask.len() < MAX_TO_ASK
            && !f.to_ask.contains(&to)
        {
            f.to_ask.push(to);
        }
    }

    /// Asks for the neighbour that traffic to `to` out of interface `iface`
    /// goes through, unless it answered lately or was just asked for.
    ///
    /// smoltcp asks for one neighbour at a time: within a second of asking for
    /// one, traffic to another waits that second (a DNS query to the router,
    /// then a connect to a host, would). Asked here, the answer fills smoltcp's
    /// cache before its own request is due, as a Linux host's parallel requests
    /// would.
    fn ask_ahead(&mut self, network: &mut Network, iface: usize, to: IpAddr, now: Instant) {
        const AGAIN_AFTER: Duration = Duration::from_secs(1);
        const MAX_ASKED: usize = 256;
        let Some(f) = self.ifaces.get_mut(iface) else { return };
        let Some(hop) = next_hop(&mut f.iface, to) else { return };
        if f.learnt.confirmed(hop, now)
            || f.asked.get(&hop).is_some_and(|&at| now.saturating_duration_since(at) < AGAIN_AFTER)
        {
            return;
        }
        let Some(source) = f.iface.ip_addrs().iter().map(|c| IpAddr::from(c.address())).find(|ip| {
            ip.is_ipv4() == hop.is_ipv4() && !matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local())
        }) else {
            return;
        };
        let HardwareAddress::Ethernet(mac) = f.iface.hardware_addr() else { return };
        let Some(frame) = neighbour::solicitation(mac, source, hop) else { return };
        if f.asked.len() >= MAX_ASKED {
            f.asked.retain(|_, at| now.saturating_duration_since(*at) < AGAIN_AFTER);
        }
        if f.asked.len() < MAX_ASKED {
            f.asked.insert(hop, now);
            f.wire.send(network, frame, now);
        }
    }

    /// Fails the connect under way from `local` to `remote`, if there is one
    /// still sending its SYN, with `errno`: an ICMP error reported about it.
    pub(super) fn refuse_dial(&mut self, local: SocketAddr, remote: SocketAddr, errno: Errno) {
        let tuple = Tuple::between(local, remote);
        let Some(id) = (0..self.ifaces.len()).find_map(|i| self.cells.find(i, &tuple)) else {
            return;
        };
        if let Some(Cell { role: Role::Dial(dial), .. }) = self.cells.get_mut(id) {
            dial.refused_by = Some(errno);
            self.cells.touch(id);
        }
    }

    /// Gives up `socket`'s connect under way, if it has one (the socket closed).
    pub(super) fn drop_dial(&mut self, socket: SocketId) {
        if let Some(id) = self.dials.remove(&socket) {
            self.retire(id);
        }
    }

    /// Aborts cell `id`'s connection (if it has one) and retires it: its next
    /// turn sends the reset, and removes it.
    fn retire(&mut self, id: CellId) {
        let Some(cell) = self.cells.get_mut(id) else { return };
        let role = std::mem::replace(&mut cell.role, Role::Retiring);
        if !matches!(role, Role::Udp { .. } | Role::Draining { .. }) {
            cell.tcp().abort();
        }
        match role {
            Role::Dial(mut dial) => {
                self.dials.remove(&dial.socket);
                self.unwatch(dial.gate.as_raw_fd());
                self.budget.borrow_mut().give(Some(dial.owner));
                // The gate closes first, which marks the carrier failed: given
                // its send buffer back before, it would poll writable alone for
                // a moment, and a program could take that for success.
                let plug = dial.plug.take();
                drop(dial);
                if let Some(plug) = plug {
                    plug.unplug();
                }
            }
            Role::Pump(pump) => {
                self.unwatch(pump.end.as_raw_fd());
                self.budget.borrow_mut().give(pump.holder);
                if let Some(stand_in) = pump.stand_in {
                    self.arrived.remove(&stand_in);
                }
                if let Some(socket) = pump.socket {
                    self.pumps.remove(&socket);
                    self.abortive.remove(&socket);
                }
            }
            Role::Listen { port } | Role::Arriving { port } => self.handed(port),
            Role::Udp { .. } | Role::Draining { .. } | Role::Retiring => {}
        }
        self.cells.touch(id);
    }

    /// One connection to `port` is no longer waiting (handed over or given up).
    fn handed(&mut self, port: u16) {
        if let Some(count) = self.half_open.get_mut(&port) {
            *count -= 1;
            if *count == 0 {
                self.half_open.remove(&port);
            }
        }
    }

    /// Keeps `carrier`, the carrier of `socket`'s non-blocking connect under way,
    /// from polling writable until the handshake ends (see [`Plug`]).
    pub(super) fn plug(&mut self, socket: SocketId, carrier: OwnedFd) {
        let Some(&id) = self.dials.get(&socket) else { return };
        let Some(cell) = self.cells.get_mut(id) else { return };
        if let Role::Dial(dial) = &mut cell.role {
            dial.exit_pending = false;
            if dial.plug.is_none() {
                dial.plug = Plug::new(carrier);
            }
        }
        // A failure that waited for the exit is settled now.
        self.cells.touch(id);
    }

    /// The send buffer (as `SO_SNDBUF` sets it) that the plug of `socket`'s
    /// connect under way gives back, if it has one.
    pub(super) fn plugged_sndbuf(&mut self, socket: SocketId) -> Option<&mut usize> {
        let cell = self.cells.get_mut(*self.dials.get(&socket)?)?;
        match &mut cell.role {
            Role::Dial(Dial { plug: Some(plug), .. }) => Some(&mut plug.sndbuf),
            _ => None,
        }
    }

    /// The gate of `socket`'s connect under way, if it has one.
    pub(super) fn gate_of(&self, socket: SocketId) -> Option<EndpointName> {
        match &self.cells.get(*self.dials.get(&socket)?)?.role {
            Role::Dial(dial) => Some(dial.gate_name),
            _ => None,
        }
    }

    /// Listens for connections to `port` on `ip` (every address for a wildcard)
    /// on the interfaces that have it. Loopback is on no link: a listener there
    /// is not reachable from the network. Nothing is made until a SYN comes.
    pub(super) fn listen(&mut self, ip: IpAddr, port: u16) {
        let ip = ip.to_canonical();
        if ip.is_loopback() {
            return;
        }
        let wanted = (!ip.is_unspecified()).then_some(ip);
        // Two addresses on one port: listen on every one (what the port table
        // has no listener for is refused when it arrives).
        let addr = match self.listeners.get(&port) {
            Some(&addr) if addr != wanted => None,
            _ => wanted,
        };
        self.listeners.insert(port, addr);
    }

    /// Stops listening on `port`.
    pub(super) fn unlisten(&mut self, port: u16) {
        self.listeners.remove(&port);
    }

    /// Lets UDP datagrams to `port` in.
    pub(super) fn open_udp(&mut self, port: u16) {
        self.udp_ports.insert(port);
    }

    /// Closes UDP port `port`.
    pub(super) fn close_udp(&mut self, port: u16) {
        self.udp_ports.remove(&port);
        for i in 0..self.ifaces.len() {
            let Some(id) = self.udp.remove(&(i, port)) else { continue };
            let Some(cell) = self.cells.get_mut(id) else { continue };
            let bytes = cell.socket::<udp::Socket>().send_queue();
            let f = &mut self.ifaces[i];
            // What waits for neighbours is bounded, as Linux bounds the queue of
            // an unresolved neighbour: beyond, a closed socket's datagrams go.
            if bytes > 0 && f.draining + bytes <= MAX_DRAINING {
                f.draining += bytes;
                cell.role = Role::Draining { until: Instant::now() + DIAL_TIMEOUT, bytes };
                self.cells.touch(id);
            } else {
                self.cells.remove(id);
            }
        }
    }

    /// The cell of UDP port `port` on interface `iface`, made on first use.
    fn udp_cell(&mut self, iface: usize, port: u16) -> Option<CellId> {
        if let Some(&id) = self.udp.get(&(iface, port)) {
            return Some(id);
        }
        let (rx, tx) = datagram_buffers();
        let mut socket = udp::Socket::new(rx, tx);
        socket.bind(port).ok()?;
        let id = self.cells.add(iface, socket, Role::Udp { waiting: 0, marks: VecDeque::new() });
        self.udp.insert((iface, port), id);
        Some(id)
    }

    /// The remote for `(proto, addr)`, made on first use (bound to a name of
    /// `carriers`).
    pub(super) fn remote(
        &mut self,
        proto: Proto,
        addr: SocketAddr,
        carriers: &mut Carriers,
    ) -> Option<&Remote> {
        if !self.remotes.contains_key(&(proto, addr)) {
            let (end, name) = carriers.datagram_end()?;
            let id = inode_of(&end)?;
            self.watch(end.as_raw_fd());
            self.ends.insert(end.as_raw_fd(), (proto, addr));
            self.remotes.insert((proto, addr), Remote { end, used: Instant::now(), name, id });
        }
        let remote = self.remotes.get_mut(&(proto, addr))?;
        remote.used = Instant::now();
        Some(remote)
    }

    /// The ends of the supervisor's that carriers send datagrams to (remotes and
    /// private ends), with the remote each stands for: those in `ready`, or all.
    pub(super) fn datagram_ends(
        &self,
        ready: Option<&[RawFd]>,
    ) -> Vec<(RawFd, (Proto, SocketAddr))> {
        let Some(ready) = ready else {
            return self.ends.iter().map(|(fd, key)| (*fd, *key)).collect();
        };
        let mut fds: Vec<RawFd> = ready.iter().chain(self.parked.keys()).copied().collect();
        fds.sort_unstable();
        fds.dedup();
        fds.into_iter().filter_map(|fd| Some((fd, *self.ends.get(&fd)?))).collect()
    }

    /// Keeps `private`, the private end of the carrier named `carrier`; returns
    /// the one it replaces.
    pub(super) fn add_private(
        &mut self,
        carrier: EndpointName,
        private: PrivateEnd,
    ) -> Option<PrivateEnd> {
        let fd = private.end.as_raw_fd();
        self.watch(fd);
        self.ends.insert(fd, private.remote);
        let old = self.privates.insert(carrier, private)?;
        self.end_closing(old.end.as_raw_fd());
        self.budget.borrow_mut().give(old.holder);
        Some(old)
    }

    /// Lets go of the private end of the carrier named `carrier`.
    pub(super) fn remove_private(&mut self, carrier: &EndpointName) -> Option<PrivateEnd> {
        let private = self.privates.remove(carrier)?;
        self.end_closing(private.end.as_raw_fd());
        self.budget.borrow_mut().give(private.holder);
        Some(private)
    }

    /// Forgets end `fd`, about to close, and what it had parked.
    fn end_closing(&mut self, fd: RawFd) {
        self.ends.remove(&fd);
        self.parked.remove(&fd);
    }

    /// Drops remotes no datagram has used for a while, and the least recently
    /// used beyond [`MAX_REMOTES`]: a remote costs an fd. Returns their stand-ins.
    /// (A datagram still queued at a carrier from a dropped remote reports the
    /// unspecified address as its sender.)
    pub(super) fn expire_remotes(&mut self, now: Instant) -> Vec<SocketId> {
        if self.remotes.len() <= MAX_REMOTES && now < self.remotes_checked + REMOTE_IDLE / 4 {
            return Vec::new();
        }
        self.remotes_checked = now;
        let mut by_age: Vec<((Proto, SocketAddr), Instant)> =
            self.remotes.iter().map(|(key, r)| (*key, r.used)).collect();
        by_age.sort_by_key(|(_, used)| std::cmp::Reverse(*used));
        let mut expired = Vec::new();
        for (rank, (key, used)) in by_age.into_iter().enumerate() {
            if (rank >= MAX_REMOTES || now.saturating_duration_since(used) > REMOTE_IDLE)
                && let Some(remote) = self.remotes.remove(&key)
            {
                self.end_closing(remote.fd());
                expired.push(remote.id);
            }
        }
        expired
    }

    /// Sends a UDP datagram from the stack's `port` to `to` out through `route`,
    /// with TTL `ttl`; [`Full`] if the port's socket has no room for it until
    /// its next turn.
    pub(super) fn send_udp(
        &mut self,
        route: Route,
        port: u16,
        to: SocketAddr,
        ttl: u8,
        payload: &[u8],
    ) -> Result<(), Full> {
        let Some(id) = self.udp_cell(route.iface, port) else { return Ok(()) };
        self.cells.touch(id);
        self.will_send(route.iface, to.ip());
        let Some(cell) = self.cells.get_mut(id) else { return Ok(()) };
        let socket = cell.socket::<udp::Socket>();
        socket.set_hop_limit(Some(ttl));
        let meta = udp::UdpMetadata {
            endpoint: IpEndpoint::from(to),
            local_address: Some(IpAddress::from(route.source)),
            meta: Default::default(),
        };
        match socket.send_slice(payload, meta) {
            Err(udp::SendError::BufferFull) => Err(Full),
            // Unaddressable (a datagram too large for the buffer, say): dropped.
            _ => Ok(()),
        }
    }

    /// Sends `packet`, an IP packet carrying ICMP to `to`, out through `route`.
    pub(super) fn send_icmp(&mut self, route: Route, to: IpAddr, packet: &[u8]) {
        let version = if to.is_ipv4() { IpVersion::Ipv4 } else { IpVersion::Ipv6 };
        let handle = self.icmp[&(route.iface, version)];
        self.send_through(route, to, (handle, false), packet);
    }

    /// Sends `packet`, an IP packet of protocol `protocol` to `to`, out
    /// through `route` (opening the protocol if no raw socket did: one that
    /// writes its own header may send any).
    pub(super) fn send_raw(&mut self, route: Route, to: IpAddr, protocol: u8, packet: &[u8]) {
        let version = if to.is_ipv4() { IpVersion::Ipv4 } else { IpVersion::Ipv6 };
        if is_own_icmp(version, protocol) {
            return self.send_icmp(route, to, packet);
        }
        if self.open_raw(protocol).is_err() {
            return;
        }
        if let Some(&handle) = self.raw.get(&(route.iface, version, protocol)) {
            self.send_through(route, to, (handle, sends_only(protocol)), packet);
        }
    }

    /// Sends `packet` to `to` through raw smoltcp socket `handle` of `route`'s
    /// interface (in its sending-only set, if `sending_only`).
    fn send_through(
        &mut self,
        route: Route,
        to: IpAddr,
        (handle, sending_only): (SocketHandle, bool),
        packet: &[u8],
    ) {
        self.will_send(route.iface, to);
        let f = &mut self.ifaces[route.iface];
        let set = if sending_only { &mut f.raw_out } else { &mut f.general };
        let _ = set.get_mut::<raw::Socket>(handle).send_slice(packet);
    }

    /// Opens IP protocol `protocol` for raw sockets on every interface, both
    /// versions (ICMP of each version is open from the start): `ENOBUFS` past
    /// [`RAW_PROTOCOLS`] protocols.
    pub(super) fn open_raw(&mut self, protocol: u8) -> Result<(), nix::errno::Errno> {
        let open: HashSet<u8> = self.raw.keys().map(|&(_, _, p)| p).collect();
        if open.contains(&protocol) {
            return Ok(());
        }
        if open.len() >= RAW_PROTOCOLS {
            return Err(nix::errno::Errno::ENOBUFS);
        }
        for (index, iface) in self.ifaces.iter_mut().enumerate() {
            for version in [IpVersion::Ipv4, IpVersion::Ipv6] {
                if is_own_icmp(version, protocol) {
                    continue;
                }
                let buffer = |bytes| {
                    smoltcp::storage::PacketBuffer::new(
                        vec![smoltcp::storage::PacketMetadata::EMPTY; RAW_SLOTS],
                        vec![0; bytes],
                    )
                };
                // A sending-only socket takes nothing in.
                let rx = if sends_only(protocol) { 0 } else { RAW_BUFFER };
                let socket =
                    raw::Socket::new(Some(version), Some(protocol.into()), buffer(rx), buffer(RAW_BUFFER));
                let set = if sends_only(protocol) { &mut iface.raw_out } else { &mut iface.general };
                self.raw.insert((index, version, protocol), set.add(socket));
            }
        }
        Ok(())
    }

    /// The UDP datagrams smoltcp received since the last call: (from, to, payload).
    pub(super) fn received_udp(&mut self) -> Vec<(SocketAddr, SocketAddr, Vec<u8>, Marks)> {
        let mut received = Vec::new();
        for id in std::mem::take(&mut self.udp_received) {
            let Some(cell) = self.cells.get_mut(id) else { continue };
            let mut marks = match &mut cell.role {
                Role::Udp { waiting, marks } => {
                    *waiting = 0;
                    std::mem::take(marks)
                }
                _ => VecDeque::new(),
            };
            let socket = cell.socket::<udp::Socket>();
            let port = socket.endpoint().port;
            while let Ok((payload, meta)) = socket.recv() {
                let from = SocketAddr::new(meta.endpoint.addr.into(), meta.endpoint.port);
                let to_ip = meta.local_address.map_or(from.ip(), IpAddr::from);
                let mark = marks.pop_front().unwrap_or_default();
                received.push((from, SocketAddr::new(to_ip, port), payload.to_vec(), mark));
            }
        }
        received
    }

    /// The ICMP packets (IP header included) smoltcp received since the last
    /// call, and those of the other protocols raw sockets opened, apart.
    pub(super) fn received_raw(&mut self) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let mut take = |handles: &mut dyn Iterator<Item = (usize, SocketHandle)>| {
            let mut received = Vec::new();
            for (iface, handle) in handles {
                let socket = self.ifaces[iface].general.get_mut::<raw::Socket>(handle);
                while let Ok(packet) = socket.recv() {
                    received.push(packet.to_vec());
                }
            }
            received
        };
        let icmp = take(&mut self.icmp.iter().map(|(&(iface, _), &h)| (iface, h)));
        let receiving = self.raw.iter().filter(|((.., protocol), _)| !sends_only(*protocol));
        let mut others = take(&mut receiving.map(|(&(iface, ..), &h)| (iface, h)));
        others.append(&mut self.raw_copies);
        (icmp, others)
    }

    /// The carriers whose errors are due to be raised by now, taken off the list.
    pub(super) fn take_due_raises(&mut self, now: Instant) -> Vec<EndpointName> {
        let due = self.raise_at.iter().filter(|(at, _)| *at <= now).map(|(_, c)| *c).collect();
        self.raise_at.retain(|(at, _)| *at > now);
        due
    }

    /// When the next carrier error or cell timer is due.
    pub(super) fn next_deadline(&mut self) -> Option<Instant> {
        let raise = self.raise_at.iter().map(|(at, _)| *at).min();
        earliest(raise, self.cells.next_due())
    }

    /// Starts a round: the cells whose fds fired (`ready`), whose timers are due
    /// by `now`, or that something touched since the last round get their turn.
    pub(super) fn begin_round(&mut self, ready: &[RawFd], now: Instant) {
        for fd in ready {
            if let Some(&id) = self.by_fd.get(fd) {
                self.cells.touch(id);
            }
        }
        self.cells.touch_due(now);
        self.turn = self.cells.take_touched();
    }

    /// The cells of this round's turn whose role `wanted` accepts.
    fn turn_of(&self, wanted: fn(&Role) -> bool) -> Vec<CellId> {
        let cells = &self.cells;
        self.turn
            .iter()
            .copied()
            .filter(|&id| cells.get(id).is_some_and(|c| wanted(&c.role)))
            .collect()
    }

    /// One poll of every plugged interface: what this round's cells have to send
    /// goes out (and the retired ones go), then the frames that wait at the links
    /// come in, each to its cell. Returns whether anything moved, and when the
    /// interfaces want polling again.
    pub(super) fn poll(&mut self, network: &mut Network, now: Instant) -> (bool, Option<Instant>) {
        // This round's cells, and those its work touched (a datagram to send, a
        // connection to reset), send now.
        for i in 0..self.ifaces.len() {
            for to in std::mem::take(&mut self.ifaces[i].to_ask) {
                self.ask_ahead(network, i, to, now);
            }
        }
        let mut turn = std::mem::take(&mut self.turn);
        turn.extend(self.cells.take_touched());
        turn.sort_unstable();
        turn.dedup();
        let mut moved = 0;
        for id in turn {
            moved += self.egress(network, id, now);
        }
        let mut deadline = None;
        for i in 0..self.ifaces.len() {
            // Down, smoltcp still sends (into nothing): its timers move on instead
            // of being due, and the round due again, at once for ever.
            let f = &mut self.ifaces[i];
            let mut device = LinkDevice::new(network, &mut f.wire, now, None);
            while f.iface.poll_egress(smol_time(now), &mut device, &mut f.general)
                != PollResult::None
            {}
            while f.iface.poll_egress(smol_time(now), &mut device, &mut f.raw_out)
                != PollResult::None
            {}
            moved += device.sent;
            let link = self.ifaces[i].wire.link;
            while let Some(frame) = self.ifaces[i].held.take().or_else(|| network.receive(link)) {
                moved += 1;
                let f = &mut self.ifaces[i];
                let Some(mut frame) = f.reassembly.take_frame(frame, now) else { continue };
                f.wire.arriving(&mut frame, now);
                if f.wire.up
                    && let Err(held) = self.ingress(network, i, frame, now)
                {
                    self.ifaces[i].held = Some(held);
                    break;
                }
            }
            let f = &mut self.ifaces[i];
            let at = f.iface.poll_at(smol_time(now), &f.general).map(|at| std_time(at, now));
            deadline = earliest(deadline, at);
        }
        if self.cells.mostly_gone() {
            self.shrink_idle();
            give_back_freed_memory();
        }
        let busy = moved > 0 || self.cells.any_touched();
        (busy, earliest(deadline, self.next_deadline()))
    }

    /// Sends what cell `id` has to send, and sets its timer; removes it if it is
    /// retired. Returns how many frames it sent.
    fn egress(&mut self, network: &mut Network, id: CellId, now: Instant) -> usize {
        let Some(cell) = self.cells.get_mut(id) else { return 0 };
        let f = &mut self.ifaces[cell.iface];
        let mut device = LinkDevice::new(network, &mut f.wire, now, None);
        while f.iface.poll_egress(smol_time(now), &mut device, &mut cell.set) != PollResult::None {}
        let sent = device.sent;
        let at = f.iface.poll_at(smol_time(now), &cell.set).map(|at| std_time(at, now));
        let waiting = matches!(cell.role, Role::Listen { .. } | Role::Arriving { .. });
        let closed = waiting && cell.tcp().state() == tcp::State::Closed;
        let drained = matches!(cell.role, Role::Draining { .. })
            && cell.socket::<udp::Socket>().send_queue() == 0;
        let at = match &cell.role {
            Role::Retiring => {
                self.cells.remove(id);
                return sent;
            }
            &Role::Draining { until, bytes } if drained || now >= until => {
                self.ifaces[cell.iface].draining -= bytes;
                self.cells.remove(id);
                return sent;
            }
            &Role::Draining { until, .. } => earliest(at, Some(until)),
            // A handshake nobody finished timed out in this turn: smoltcp sent its
            // reset and forgot the peer, so no frame and no timer would touch the
            // cell again, and the port would count it waiting for ever.
            &Role::Listen { port } | &Role::Arriving { port } if closed => {
                self.cells.remove(id);
                self.handed(port);
                return sent;
            }
            Role::Dial(dial) => earliest(at, Some(dial.wake(now))),
            _ => at,
        };
        self.cells.schedule(id, at);
        sent
    }

    /// Takes `frame`, which reached interface `i`, into the cell it is for (or
    /// the interface's general sockets); gives it back if the cell has no room
    /// before its datagrams are collected.
    fn ingress(
        &mut self,
        network: &mut Network,
        i: usize,
        frame: Frame,
        now: Instant,
    ) -> Result<(), Frame> {
        let destination = Destination::of(&frame);
        if let Destination::Tcp { tuple, .. } = destination {
            self.note_peer_mss(i, tuple, &frame);
        }
        let cell = match destination {
            Destination::Tcp { tuple, opening } => match self.cells.find(i, &tuple) {
                Some(id) => Some(id),
                None if opening => match self.listener_for(i, tuple) {
                    Ok(listener) => listener,
                    // The port's queue is full: dropped, the client sends again.
                    Err(Full) => return Ok(()),
                },
                None => None,
            },
            Destination::Udp { port, .. } if self.udp_ports.contains(&port) => {
                self.udp_cell(i, port)
            }
            _ => None,
        };
        if let Some(id) = cell
            && let Some(Cell { role: Role::Udp { waiting, .. }, .. }) = self.cells.get(id)
            && *waiting >= DATAGRAM_SLOTS
        {
            return Err(frame);
        }
        if self.ifaces[i].learnt.observe(&frame, now) {
            // Sockets smoltcp holds back until a neighbour answers may send now.
            let waiting: Vec<CellId> = self.cells.iter_mut().map(|(id, _)| id).collect();
            for id in waiting {
                self.cells.touch(id);
            }
        }
        // Raw sockets of TCP and UDP get their copy here, whoever takes the
        // packet (the general sockets take the other protocols' copies).
        self.copy_for_raw(i, frame.get(ETHERNET_HEADER..).unwrap_or_default());
        let arrival_marks = Marks::of(&frame);
        let empty_datagram = matches!(destination, Destination::Udp { empty: true, .. });
        let f = &mut self.ifaces[i];
        if cell.is_none()
            && let Some((destination, mtu)) =
                path_mtu::reported(frame.get(ETHERNET_HEADER..).unwrap_or_default())
        {
            f.wire.paths.learn(destination, mtu, now);
        }
        let mut device = LinkDevice::new(network, &mut f.wire, now, Some(frame));
        let Some(id) = cell else {
            f.iface.poll_ingress_single(smol_time(now), &mut device, &mut f.general);
            return Ok(());
        };
        self.cells.touch(id);
        let Some(cell) = self.cells.get_mut(id) else { return Ok(()) };
        let queued = |cell: &mut Cell<Role>| match cell.role {
            Role::Udp { .. } => cell.socket::<udp::Socket>().recv_queue(),
            _ => 0,
        };
        let before = queued(cell);
        f.iface.poll_ingress_single(smol_time(now), &mut device, &mut cell.set);
        // (An empty datagram adds no bytes to the queue.)
        let taken = queued(cell) > before || empty_datagram;
        self.took(id, taken.then_some(arrival_marks).flatten());
        Ok(())
    }

    /// Keeps a copy of IP `packet`, which reached interface `i`, for the raw
    /// sockets of its protocol, if there are any (at most [`RAW_SLOTS`]
    /// waiting: a raw socket that does not keep up loses packets, as Linux's
    /// does).
    fn copy_for_raw(&mut self, i: usize, packet: &[u8]) {
        let version = match packet.first().map(|b| b >> 4) {
            Some(4) => IpVersion::Ipv4,
            Some(6) => IpVersion::Ipv6,
            _ => return,
        };
        let Some(protocol) = super::raw::protocol_of(packet) else { return };
        if sends_only(protocol)
            && self.raw.contains_key(&(i, version, protocol))
            && self.raw_copies.len() < RAW_SLOTS
        {
            self.raw_copies.push(packet.to_vec());
        }
    }

    /// Follows up cell `id`'s taking a frame: a UDP socket's datagram (with
    /// `marks` if the socket kept it) waits to be collected; a listening
    /// socket that took a SYN is a connection in the making.
    fn took(&mut self, id: CellId, marks: Option<Marks>) {
        let Some(cell) = self.cells.get_mut(id) else { return };
        match &mut cell.role {
            Role::Udp { waiting, marks: kept } => {
                // One mark per datagram the socket took, in its order.
                kept.extend(marks);
                *waiting += 1;
                if *waiting == 1 {
                    self.udp_received.push(id);
                }
            }
            Role::Dial(dial) => {
                let state = cell.set.get::<tcp::Socket>(cell.handle).state();
                dial.established |= !matches!(
                    state,
                    tcp::State::Closed | tcp::State::SynSent | tcp::State::SynReceived
                );
            }
            &mut Role::Listen { port } => match Tuple::of(cell.tcp()) {
                Some(tuple) if cell.tcp().state() != tcp::State::Listen => {
                    cell.role = Role::Arriving { port };
                    self.cells.index(id, tuple);
                }
                _ => {
                    self.cells.remove(id);
                    self.handed(port);
                }
            },
            _ => {}
        }
    }

    /// Notes the segment size that SYN `frame` of connection `tuple` on
    /// interface `i` announces (clamped to the path back already), if it is one.
    fn note_peer_mss(&mut self, i: usize, tuple: Tuple, frame: &[u8]) {
        let Some(mss) = frame.get(ETHERNET_HEADER..).and_then(path_mtu::announced_mss) else {
            return;
        };
        // Connections gone are forgotten once they are most of what is noted.
        if self.peer_mss.len() >= 2 * self.cells.len() + 64 {
            self.forget_gone_peer_mss();
        }
        self.peer_mss.insert((i, tuple), mss);
    }

    /// Forgets the segment sizes of connections that have no cell any more.
    fn forget_gone_peer_mss(&mut self) {
        let cells = &self.cells;
        self.peer_mss.retain(|(i, tuple), _| cells.find(*i, tuple).is_some());
    }

    /// The segment size the peer of connection `local`-`remote` announced, if
    /// it crossed an interface of the stack.
    pub(super) fn peer_mss(&self, local: SocketAddr, remote: SocketAddr) -> Option<u16> {
        let tuple = Tuple::between(local, remote);
        (0..self.ifaces.len()).find_map(|i| self.peer_mss.get(&(i, tuple)).copied())
    }

    /// A fresh listening cell for a SYN to `tuple` on interface `i`, if its port
    /// is listened on that address; [`Full`] if the port has
    /// [`MAX_HALF_OPEN`] connections waiting already.
    fn listener_for(&mut self, i: usize, tuple: Tuple) -> Result<Option<CellId>, Full> {
        let port = tuple.local.port();
        let Some(&addr) = self.listeners.get(&port) else { return Ok(None) };
        if addr.is_some_and(|addr| addr != tuple.local.ip().to_canonical()) {
            return Ok(None);
        }
        if self.half_open.get(&port).is_some_and(|&waiting| waiting >= MAX_HALF_OPEN) {
            return Err(Full);
        }
        let mut tcp = new_tcp();
        let endpoint = smoltcp::wire::IpListenEndpoint { addr: addr.map(IpAddress::from), port };
        if tcp.listen(endpoint).is_err() {
            return Ok(None);
        }
        // A handshake nobody finishes is given up, as Linux gives up its SYN-ACKs.
        tcp.set_timeout(Some(smoltcp::time::Duration::from_secs(DIAL_TIMEOUT.as_secs())));
        *self.half_open.entry(port).or_default() += 1;
        Ok(Some(self.cells.add(i, tcp, Role::Listen { port })))
    }

    /// Moves TCP bytes between carriers and smoltcp for this round's pumps; ends
    /// finished ones, telling `ended` of the stand-in each had.
    pub(super) fn pump_all(&mut self, mut ended: impl FnMut(SocketId)) -> bool {
        let mut busy = false;
        for id in self.turn_of(|role| matches!(role, Role::Pump(_))) {
            let Some(cell) = self.cells.get_mut(id) else { continue };
            let socket = match &cell.role {
                Role::Pump(pump) => pump.socket,
                _ => None,
            };
            busy |= pump(cell, socket.is_some_and(|socket| self.abortive.contains(&socket)));
            let state = cell.tcp().state();
            let Role::Pump(pump) = &cell.role else { continue };
            if matches!(state, tcp::State::Closed | tcp::State::TimeWait) && pump.peer_done_told {
                let stand_in = pump.stand_in;
                self.retire(id);
                if let Some(stand_in) = stand_in {
                    ended(stand_in);
                }
                busy = true;
            }
        }
        busy
    }

    /// Ends this round's connects whose handshake finished or failed, telling
    /// `settled` of each socket's outcome.
    pub(super) fn settle_dials(
        &mut self,
        now: Instant,
        mut settled: impl FnMut(SocketId, Result<(), Errno>),
    ) -> bool {
        let mut busy = false;
        for id in self.turn_of(|role| matches!(role, Role::Dial(_))) {
            let Some(cell) = self.cells.get_mut(id) else { continue };
            let state = cell.tcp().state();
            let remote = Tuple::of(cell.tcp()).map(|tuple| tuple.remote.ip());
            let iface = cell.iface;
            let Role::Dial(dial) = &mut cell.role else { continue };
            let (deadline, socket, exit_pending) = (dial.deadline, dial.socket, dial.exit_pending);
            let (refused_by, established) = (dial.refused_by, dial.established);
            // Whether the neighbour the SYN goes to answered: then only the
            // far end is silent.
            let mut hop_answered = || {
                let f = &mut self.ifaces[iface];
                remote
                    .and_then(|to| next_hop(&mut f.iface, to))
                    .is_some_and(|hop| f.learnt.confirmed(hop, now))
            };
            let failed = match state {
                tcp::State::SynSent if refused_by.is_some() => refused_by,
                tcp::State::SynSent if now >= dial.started + SYN_RETRIES_END => {
                    Some(Errno::ETIMEDOUT)
                }
                tcp::State::SynSent if now >= deadline && hop_answered() => {
                    // The SYN is sent again and again, as Linux's, until the
                    // far end answers or the retries run out, while the
                    // program holds the socket: a closed one's connect ends
                    // (a non-blocking connect's carrier is kept alive by the
                    // supervisor's copy, so the sweep would never see it go).
                    let blocking = dial.filler.is_some();
                    if blocking || super::proc::holds_socket(dial.owner, socket.0) {
                        dial.deadline = now + DIAL_TIMEOUT;
                        None
                    } else {
                        Some(Errno::ECONNABORTED)
                    }
                }
                // The neighbour never answered (Linux gives up its ARP or
                // neighbour solicitation after three tries).
                tcp::State::SynSent if now >= deadline => Some(Errno::EHOSTUNREACH),
                tcp::State::SynSent | tcp::State::SynReceived => None,
                // Connected, but the program never came for it (its connect was
                // interrupted and not repeated): give up the connection.
                _ if now >= deadline + DIAL_TIMEOUT => Some(Errno::ETIMEDOUT),
                tcp::State::Closed if !established => Some(Errno::ECONNREFUSED),
                // Established (or already closing): let the carrier through.
                _ => {
                    if self.let_through(id) {
                        settled(socket, Ok(()));
                        busy = true;
                    }
                    None
                }
            };
            if failed.is_some() && exit_pending && now < deadline + DIAL_TIMEOUT {
                continue;
            }
            if let Some(errno) = failed {
                // Closing the gate fails the waiting connect (or marks the
                // non-blocking carrier's queued connection refused).
                self.retire(id);
                settled(socket, Err(errno));
                busy = true;
            }
        }
        busy
    }

    /// Lets the carrier waiting at the gate of established dial `id` through: the
    /// dial becomes a pump. Returns whether the carrier was there (yet).
    fn let_through(&mut self, id: CellId) -> bool {
        let Some(cell) = self.cells.get_mut(id) else { return false };
        let Role::Dial(dial) = &mut cell.role else { return false };
        if let Some(filler) = dial.filler.take() {
            if let Ok(taken) = accept4(dial.gate.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
                // SAFETY: accept4 returned a new fd that nothing else owns.
                drop(unsafe { OwnedFd::from_raw_fd(taken) });
            }
            drop(filler);
        }
        let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
        let Ok(end) = accept4(dial.gate.as_raw_fd(), flags) else { return false };
        // SAFETY: accept4 returned a new fd that nothing else owns.
        let end = unsafe { OwnedFd::from_raw_fd(end) };
        let end_fd = end.as_raw_fd();
        let holder = Some(dial.owner);
        let pump = Pump {
            end,
            holder,
            program_done: false,
            peer_done_told: false,
            stand_in: None,
            socket: Some(dial.socket),
        };
        let Role::Dial(dial) = std::mem::replace(&mut cell.role, Role::Pump(pump)) else {
            unreachable!("matched above")
        };
        if let (Some(plug), Role::Pump(pump)) = (dial.plug, &cell.role) {
            let early = plug.pull(&pump.end);
            // What the program wrote before the plug goes first (the buffer,
            // empty when the handshake has just ended, holds it).
            let _ = cell.tcp().send_slice(&early);
        }
        self.dials.remove(&dial.socket);
        self.pumps.insert(dial.socket, id);
        self.unwatch(dial.gate.as_raw_fd());
        self.watch_for(end_fd, id, Interest::READABLE | Interest::WRITABLE);
        self.cells.touch(id);
        true
    }

    /// Tells the pump of the connection that arrived for `stand_in` that the
    /// program accepted it as `socket`.
    pub(super) fn adopt(&mut self, stand_in: SocketId, socket: SocketId) {
        let Some(&id) = self.arrived.get(&stand_in) else { return };
        if let Some(Cell { role: Role::Pump(pump), .. }) = self.cells.get_mut(id) {
            pump.socket = Some(socket);
            self.pumps.insert(socket, id);
        }
    }

    /// Forgets socket `socket`, closed: its `SO_LINGER` flag goes too, unless
    /// its connection's pump is yet to see the close.
    pub(super) fn forget_socket(&mut self, socket: SocketId) {
        if !self.pumps.contains_key(&socket) {
            self.abortive.remove(&socket);
        }
    }

    /// Hands this round's connections that listeners took to the programs'
    /// listening carriers: `hand_over(local, remote)` connects a stand-in for
    /// `remote` to the carrier listening at `local`, and gives its end and
    /// identity.
    pub(super) fn take_arrivals(
        &mut self,
        mut hand_over: impl FnMut(SocketAddr, SocketAddr) -> Option<(OwnedFd, SocketId)>,
    ) -> bool {
        let mut busy = false;
        for id in self.turn_of(|role| matches!(role, Role::Arriving { .. })) {
            let Some(cell) = self.cells.get_mut(id) else { continue };
            let Role::Arriving { port } = cell.role else { continue };
            let tcp = cell.tcp();
            match tcp.state() {
                tcp::State::SynReceived => continue,
                tcp::State::Established | tcp::State::CloseWait => {}
                _ => {
                    self.retire(id);
                    continue;
                }
            }
            busy = true;
            // The stand-in's end is the session's to hold: whoever connected
            // caused it, and the listener's backlog bounds it.
            let room = self.budget.borrow_mut().take(None).is_ok();
            let handed = Tuple::of(tcp)
                .filter(|_| room)
                .and_then(|t| Some((hand_over(t.local, t.remote)?, t)));
            let Some(((end, stand_in), _)) = handed else {
                if room {
                    self.budget.borrow_mut().give(None);
                }
                // Nobody listens there after all (or the supervisor has no
                // room): Linux resets.
                self.retire(id);
                continue;
            };
            let end_fd = end.as_raw_fd();
            let stand_in = Some(stand_in);
            let pump = Pump {
                end,
                holder: None,
                program_done: false,
                peer_done_told: false,
                stand_in,
                socket: None,
            };
            if let Some(stand_in) = stand_in {
                self.arrived.insert(stand_in, id);
            }
            cell.role = Role::Pump(pump);
            cell.tcp().set_timeout(None);
            self.handed(port);
            self.watch_for(end_fd, id, Interest::READABLE | Interest::WRITABLE);
            self.cells.touch(id);
        }
        busy
    }
}

/// A queue is full: a listened port's, or a socket's send buffer.
pub(super) struct Full;

/// Moves the bytes of pump cell `cell` each way; returns whether any moved. An
/// end of file from the program resets the connection if `abortive`.
fn pump(cell: &mut Cell<Role>, abortive: bool) -> bool {
    let mut busy = false;
    let Role::Pump(pump) = &mut cell.role else { return false };
    let tcp = cell.set.get_mut::<tcp::Socket>(cell.handle);
    let fd = pump.end.as_raw_fd();
    // The program's bytes to the network.
    while !pump.program_done && tcp.can_send() {
        let read = tcp.send(|buf| match read_fd(fd, buf) {
            Ok(n) => (n, Ok(n)),
            Err(e) => (0, Err(e)),
        });
        match read {
            Ok(Ok(0)) => {
                pump.program_done = true;
                if abortive {
                    tcp.abort();
                } else {
                    tcp.close();
                }
                busy = true;
            }
            Ok(Ok(_)) => busy = true,
            Ok(Err(e)) if would_block(&e) => break,
            Ok(Err(_)) | Err(_) => {
                pump.program_done = true;
                tcp.abort();
                break;
            }
        }
    }
    // The network's bytes to the program.
    while tcp.can_recv() {
        let written = tcp.recv(|buf| match write_fd(fd, buf) {
            Ok(n) => (n, Ok(n)),
            Err(e) => (0, Err(e)),
        });
        match written {
            Ok(Ok(n)) if n > 0 => busy = true,
            Ok(Err(e)) if !would_block(&e) => {
                // The program closed its end: Linux would reset.
                tcp.abort();
                pump.program_done = true;
                break;
            }
            _ => break,
        }
    }
    if !tcp.may_recv() && tcp.recv_queue() == 0 && !pump.peer_done_told {
        let _ = nix::sys::socket::shutdown(fd, nix::sys::socket::Shutdown::Write);
        pump.peer_done_told = true;
        busy = true;
    }
    busy
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::vunet::smoltcp::addressing::Addressing;

    /// An interface `eth0` with `addresses`.
    fn interface(addresses: &[&str]) -> InterfaceSpec {
        InterfaceSpec {
            name: "eth0".into(),
            switch: None,
            mac: [2, 0, 0, 0, 0, 2],
            mtu: 1500,
            addresses: addresses.iter().map(|a| Cidr::parse(a).unwrap()).collect(),
            capture: None,
        }
    }

    #[test]
    fn only_plugged_interfaces_reach_other_hosts() {
        let mut network = Network::new(None);
        let switch = network.add_switch("sw0");
        let link = network.attach(switch, "s/eth1", None).unwrap();
        let unplugged = InterfacePlan { spec: interface(&["10.0.0.2/24"]), link: None };
        let plugged =
            InterfacePlan { spec: interface(&["10.1.0.2/24"]), link: Some((link, "sw0".into())) };
        let plans = [unplugged, plugged];
        let view = Addressing::configured(&plans, &[]);
        let poll = mio::Poll::new().unwrap();
        let registry = poll.registry().try_clone().unwrap();
        let budget = std::rc::Rc::new(std::cell::RefCell::new(
            crate::modules::vunet::budget::Budget::new(None),
        ));
        let resources = Resources { registry, budget };
        let host = NetHost::new(&plans, view.view(), &mut network, resources, 1);
        assert_eq!(host.iface_of(2), None);
        assert_eq!(host.iface_of(3), Some(0));
    }
}
