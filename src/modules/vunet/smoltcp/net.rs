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

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::errno::Errno;
use nix::sys::socket::{Backlog, MsgFlags, SockFlag, SockType, accept4, listen};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::socket::{raw, tcp, udp};
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, IpProtocol, IpVersion,
};

use super::carrier::{Carriers, bind_to, connect_to, inode_of, unix_socket};
use super::endpoint::EndpointName;
use super::ports::Proto;
use super::private::PrivateEnd;
use crate::fdtable::SocketId;
use crate::modules::vunet::cidr::Cidr;
use crate::modules::vunet::config::InterfaceSpec;
use super::neighbours::Learnt;
use crate::modules::vunet::inside::{Inside, NeighbourView};
use crate::modules::vunet::earliest;
use crate::modules::vunet::network::{LinkId, Network};

/// How many remotes (see [`Remote`]) a stack keeps at most.
const MAX_REMOTES: usize = 256;
/// How long an unused remote is kept.
const REMOTE_IDLE: Duration = Duration::from_secs(30);

/// Bytes each smoltcp TCP socket buffers each way.
const TCP_BUFFER: usize = 256 * 1024;
/// Datagrams (and bytes) each smoltcp UDP or raw socket buffers each way.
const DATAGRAM_SLOTS: usize = 64;
const DATAGRAM_BUFFER: usize = 256 * 1024;
/// How long a connect waits for its handshake before giving up. Inside the
/// session every host answers at once; only a neighbour nobody holds stays silent,
/// and Linux gives up resolving it after about 3 seconds.
const DIAL_TIMEOUT: Duration = Duration::from_secs(3);

/// One interface of a stack, as configured, and where it was plugged in.
#[derive(Clone, Debug)]
pub struct InterfacePlan {
    /// The interface, as configured.
    pub spec: InterfaceSpec,
    /// The link it is plugged into, if any, and the switch's name.
    pub link: Option<(LinkId, String)>,
}

/// Where traffic to a remote address leaves the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The interface (index among the plugged ones).
    pub iface: usize,
    /// The stack's own address the traffic comes from.
    pub source: IpAddr,
}

/// A plugged interface: smoltcp's interface and the sockets it serves.
struct NetIface {
    /// Its link's index as programs see it (`eth0` is 2).
    index: u32,
    link: LinkId,
    /// Administratively up: down, it passes no frame either way.
    up: bool,
    mtu: usize,
    /// The neighbours it learnt (smoltcp does not show its own cache).
    learnt: Learnt,
    iface: Interface,
    sockets: SocketSet<'static>,
}

/// A TCP connection between a carrier and the network.
struct Pump {
    iface: usize,
    handle: SocketHandle,
    /// The supervisor's end of the carrier's connection.
    end: OwnedFd,
    /// The program will send no more (its end read EOF).
    program_done: bool,
    /// The program was told the peer sends no more.
    peer_done_told: bool,
    /// A stand-in for the remote peer that `accept` looked up, dropped with the pump.
    stand_in: Option<SocketId>,
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
    socket: SocketId,
    iface: usize,
    handle: SocketHandle,
    gate: OwnedFd,
    gate_name: EndpointName,
    filler: Option<OwnedFd>,
    deadline: Instant,
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

/// The smoltcp sockets listening on one port.
struct Listening {
    /// The address they listen on; `None` for all.
    addr: Option<IpAddr>,
    /// One per interface that has the address: (interface, socket).
    handles: Vec<(usize, SocketHandle)>,
}

/// A smoltcp stack's network side.
pub(super) struct NetHost {
    ifaces: Vec<NetIface>,
    registry: Registry,
    pumps: Vec<Pump>,
    dials: Vec<Dial>,
    /// Listening smoltcp sockets per port, and connections they took that are not
    /// handed to a program yet.
    listeners: HashMap<u16, Listening>,
    arriving: Vec<(usize, SocketHandle)>,
    /// smoltcp UDP sockets by interface and port.
    udp: HashMap<(usize, u16), SocketHandle>,
    /// One raw ICMP socket per interface and IP version: every ICMP packet in.
    icmp: HashMap<(usize, IpVersion), SocketHandle>,
    remotes: HashMap<(Proto, SocketAddr), Remote>,
    /// The TTL of the last packet each ICMP socket received, for `IP_RECVTTL`.
    pub(super) last_ttl: HashMap<SocketId, u8>,
    /// The private ends of connected datagram carriers, by carrier name.
    pub(super) privates: HashMap<EndpointName, PrivateEnd>,
    /// Carriers to mark with an error, and when.
    pub(super) raise_at: Vec<(Instant, EndpointName)>,
    /// smoltcp sockets done with, removed after the next interface poll has sent
    /// what they still owe (a reset, a last acknowledgement).
    retiring: Vec<(usize, SocketHandle)>,
    /// When idle remotes were last looked for.
    remotes_checked: Instant,
}

/// The device of a plugged interface during one poll: its link of the network.
struct LinkDevice<'n> {
    network: &'n mut Network,
    link: LinkId,
    /// The interface is up: down, frames that arrive are dropped and none leave.
    up: bool,
    mtu: usize,
    now: Instant,
    /// Frames moved during this poll, either way.
    moved: usize,
    /// What the frames that reach the interface teach of its neighbours.
    learnt: Option<&'n mut Learnt>,
}

struct LinkRx(Vec<u8>);

struct LinkTx<'a> {
    network: &'a mut Network,
    link: LinkId,
    now: Instant,
    moved: &'a mut usize,
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
        self.network.send(self.link, frame, self.now);
        *self.moved += 1;
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
        if !self.up {
            while self.network.receive(self.link).is_some() {}
            return None;
        }
        let frame = self.network.receive(self.link)?;
        self.moved += 1;
        if let Some(learnt) = self.learnt.as_deref_mut() {
            learnt.observe(&frame, self.now);
        }
        let tx = LinkTx {
            network: self.network,
            link: self.link,
            now: self.now,
            moved: &mut self.moved,
        };
        Some((LinkRx(frame), tx))
    }

    fn transmit(&mut self, _timestamp: smoltcp::time::Instant) -> Option<Self::TxToken<'_>> {
        if !self.up {
            return None;
        }
        Some(LinkTx {
            network: self.network,
            link: self.link,
            now: self.now,
            moved: &mut self.moved,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu + 14;
        caps.checksum = ChecksumCapabilities::default();
        caps
    }
}

/// smoltcp's clock: microseconds since the first call.
fn smol_time(now: Instant) -> smoltcp::time::Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    smoltcp::time::Instant::from_micros(now.saturating_duration_since(epoch).as_micros() as i64)
}

/// `cidr` as smoltcp writes it.
fn smol_cidr(cidr: Cidr) -> IpCidr {
    IpCidr::new(IpAddress::from(cidr.ip), cidr.prefix)
}

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
        registry: Registry,
        seed: u64,
    ) -> Self {
        let now = Instant::now();
        let mut ifaces = Vec::new();
        for (position, plan) in interfaces.iter().enumerate() {
            let Some((link, _)) = plan.link.clone() else { continue };
            let spec = &plan.spec;
            let mtu = spec.mtu;
            let mut device = LinkDevice { network, link, up: true, mtu, now, moved: 0, learnt: None };
            let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(spec.mac)));
            config.random_seed = seed ^ ifaces.len() as u64;
            let iface = Interface::new(config, &mut device, smol_time(now));
            ifaces.push(NetIface {
                index: position as u32 + 2,
                link,
                up: true,
                mtu: spec.mtu,
                learnt: Learnt::default(),
                iface,
                sockets: SocketSet::new(Vec::new()),
            });
        }
        let mut host = Self {
            ifaces,
            registry,
            pumps: Vec::new(),
            dials: Vec::new(),
            listeners: HashMap::new(),
            arriving: Vec::new(),
            udp: HashMap::new(),
            icmp: HashMap::new(),
            remotes: HashMap::new(),
            last_ttl: HashMap::new(),
            privates: HashMap::new(),
            raise_at: Vec::new(),
            retiring: Vec::new(),
            remotes_checked: now,
        };
        for index in 0..host.ifaces.len() {
            for version in [IpVersion::Ipv4, IpVersion::Ipv6] {
                let protocol = match version {
                    IpVersion::Ipv4 => IpProtocol::Icmp,
                    IpVersion::Ipv6 => IpProtocol::Icmpv6,
                };
                let (rx, tx) = datagram_buffers();
                let handle = host.ifaces[index].sockets.add(raw::Socket::new(
                    Some(version),
                    Some(protocol),
                    rx,
                    tx,
                ));
                host.icmp.insert((index, version), handle);
            }
        }
        host.configure(view);
        host
    }

    /// Makes every interface follow `view`: up or down, its MTU and hardware
    /// address, its addresses, and the routes through its gateways.
    pub(super) fn configure(&mut self, view: &Inside) {
        for f in &mut self.ifaces {
            let Ok(link) = view.link(f.index) else { continue };
            f.up = link.up;
            f.mtu = link.mtu as usize;
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
            if f.iface.ip_addrs() != own.as_slice() || !f.up {
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

    /// The plugged interface of link `index`, if it is plugged.
    pub(super) fn iface_of(&self, index: u32) -> Option<usize> {
        self.ifaces.iter().position(|f| f.index == index)
    }

    /// Watches a datagram socket of the supervisor for what carriers send it;
    /// its fd is its token, so that a round reads only the ones that fired.
    pub(super) fn watch(&self, fd: RawFd) {
        let _ = self.registry.register(&mut SourceFd(&fd), Token(fd as usize), Interest::READABLE);
    }

    fn register(&self, fd: RawFd, interest: Interest) {
        let _ = self.registry.register(&mut SourceFd(&fd), Token(0), interest);
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
        blocking: bool,
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
        let iface = &mut self.ifaces[route.iface];
        let mut tcp = new_tcp();
        tcp.connect(iface.iface.context(), IpEndpoint::from(to), IpEndpoint::from(local))
            .map_err(|_| Errno::EADDRNOTAVAIL)?;
        let handle = iface.sockets.add(tcp);
        self.register(gate.as_raw_fd(), Interest::READABLE);
        let deadline = Instant::now() + DIAL_TIMEOUT;
        self.dials.push(Dial {
            socket,
            iface: route.iface,
            handle,
            gate,
            gate_name,
            filler,
            deadline,
        });
        Ok(())
    }

    /// Gives up `socket`'s connect under way, if it has one (the socket closed).
    pub(super) fn drop_dial(&mut self, socket: SocketId) {
        while let Some(at) = self.dials.iter().position(|d| d.socket == socket) {
            let dial = self.dials.swap_remove(at);
            self.ifaces[dial.iface].sockets.get_mut::<tcp::Socket>(dial.handle).abort();
            self.retiring.push((dial.iface, dial.handle));
        }
    }

    /// The gate of `socket`'s connect under way, if it has one.
    pub(super) fn gate_of(&self, socket: SocketId) -> Option<EndpointName> {
        self.dials.iter().find(|d| d.socket == socket).map(|d| d.gate_name)
    }

    /// Listens for connections to `port` on `ip` (every address for a wildcard)
    /// on the interfaces that have it. Loopback is on no link: a listener there
    /// is not reachable from the network.
    pub(super) fn listen(&mut self, ip: IpAddr, port: u16) {
        let ip = ip.to_canonical();
        if ip.is_loopback() {
            return;
        }
        let wanted = (!ip.is_unspecified()).then_some(ip);
        match self.listeners.get(&port) {
            Some(listening) if listening.addr.is_none() || listening.addr == wanted => return,
            // Two addresses on one port: listen on every one (what the port
            // table has no listener for is refused when it arrives).
            Some(_) => self.unlisten(port),
            None => {}
        }
        let addr = if self.listeners.contains_key(&port) { None } else { wanted };
        let handles = (0..self.ifaces.len())
            .filter_map(|i| Some((i, self.listen_on(i, addr, port)?)))
            .collect();
        self.listeners.insert(port, Listening { addr, handles });
    }

    /// A smoltcp socket listening on `port` (on `addr` only, if given) on interface
    /// `iface`, unless `addr` is not one of the interface's.
    fn listen_on(&mut self, iface: usize, addr: Option<IpAddr>, port: u16) -> Option<SocketHandle> {
        let f = &mut self.ifaces[iface];
        if let Some(addr) = addr
            && !f.iface.has_ip_addr(addr)
        {
            return None;
        }
        let mut tcp = new_tcp();
        let endpoint = smoltcp::wire::IpListenEndpoint { addr: addr.map(IpAddress::from), port };
        tcp.listen(endpoint).ok()?;
        Some(f.sockets.add(tcp))
    }

    /// Stops listening on `port`.
    pub(super) fn unlisten(&mut self, port: u16) {
        if let Some(listening) = self.listeners.remove(&port) {
            for (iface, handle) in listening.handles {
                self.ifaces[iface].sockets.remove(handle);
            }
        }
    }

    /// Opens a smoltcp UDP socket for `port` on every interface.
    pub(super) fn open_udp(&mut self, port: u16) {
        for i in 0..self.ifaces.len() {
            if self.udp.contains_key(&(i, port)) {
                continue;
            }
            let (rx, tx) = datagram_buffers();
            let mut socket = udp::Socket::new(rx, tx);
            if socket.bind(port).is_ok() {
                let handle = self.ifaces[i].sockets.add(socket);
                self.udp.insert((i, port), handle);
            }
        }
    }

    /// Closes the smoltcp UDP sockets of `port`.
    pub(super) fn close_udp(&mut self, port: u16) {
        for i in 0..self.ifaces.len() {
            if let Some(handle) = self.udp.remove(&(i, port)) {
                self.ifaces[i].sockets.remove(handle);
            }
        }
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
            let (end, name) = carriers.bound_socket(SockType::Datagram)?;
            let id = inode_of(&end)?;
            self.watch(end.as_raw_fd());
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
        self.remotes
            .iter()
            .map(|(key, r)| (r.end.as_raw_fd(), *key))
            .chain(self.privates.values().map(|p| (p.end.as_raw_fd(), p.remote)))
            .filter(|(fd, _)| ready.is_none_or(|ready| ready.contains(fd)))
            .collect()
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
                expired.push(remote.id);
            }
        }
        expired
    }

    /// Sends a UDP datagram from the stack's `port` to `to` out through `route`,
    /// with TTL `ttl`.
    pub(super) fn send_udp(
        &mut self,
        route: Route,
        port: u16,
        to: SocketAddr,
        ttl: u8,
        payload: &[u8],
    ) {
        self.open_udp(port);
        let Some(&handle) = self.udp.get(&(route.iface, port)) else { return };
        let socket = self.ifaces[route.iface].sockets.get_mut::<udp::Socket>(handle);
        socket.set_hop_limit(Some(ttl));
        let meta = udp::UdpMetadata {
            endpoint: IpEndpoint::from(to),
            local_address: Some(IpAddress::from(route.source)),
            meta: Default::default(),
        };
        let _ = socket.send_slice(payload, meta);
    }

    /// Sends `packet`, an IP packet carrying ICMP to `to`, out through `route`.
    pub(super) fn send_icmp(&mut self, route: Route, to: IpAddr, packet: &[u8]) {
        let version = if to.is_ipv4() { IpVersion::Ipv4 } else { IpVersion::Ipv6 };
        let handle = self.icmp[&(route.iface, version)];
        let socket = self.ifaces[route.iface].sockets.get_mut::<raw::Socket>(handle);
        let _ = socket.send_slice(packet);
    }

    /// The UDP datagrams smoltcp received since the last call: (from, to, payload).
    pub(super) fn received_udp(&mut self) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
        let mut received = Vec::new();
        for (&(iface, port), &handle) in &self.udp {
            let socket = self.ifaces[iface].sockets.get_mut::<udp::Socket>(handle);
            while let Ok((payload, meta)) = socket.recv() {
                let from = SocketAddr::new(meta.endpoint.addr.into(), meta.endpoint.port);
                let to_ip = meta.local_address.map_or(from.ip(), IpAddr::from);
                received.push((from, SocketAddr::new(to_ip, port), payload.to_vec()));
            }
        }
        received
    }

    /// The ICMP packets (IP header included) smoltcp received since the last call.
    pub(super) fn received_icmp(&mut self) -> Vec<Vec<u8>> {
        let mut received = Vec::new();
        for (&(iface, _), &handle) in &self.icmp {
            let socket = self.ifaces[iface].sockets.get_mut::<raw::Socket>(handle);
            while let Ok(packet) = socket.recv() {
                received.push(packet.to_vec());
            }
        }
        received
    }

    /// The carriers whose errors are due to be raised by now, taken off the list.
    pub(super) fn take_due_raises(&mut self, now: Instant) -> Vec<EndpointName> {
        let due = self.raise_at.iter().filter(|(at, _)| *at <= now).map(|(_, c)| *c).collect();
        self.raise_at.retain(|(at, _)| *at > now);
        due
    }

    /// When the next carrier error is due, and the next connect times out.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let raise = self.raise_at.iter().map(|(at, _)| *at).min();
        earliest(raise, self.dials.iter().map(|d| d.deadline).min())
    }

    /// One poll of every plugged interface: frames in and out of the links, then
    /// the retired smoltcp sockets go. Returns whether anything moved, and when
    /// the interfaces want polling again.
    pub(super) fn poll(&mut self, network: &mut Network, now: Instant) -> (bool, Option<Instant>) {
        let (mut busy, mut deadline) = (false, None);
        for f in &mut self.ifaces {
            let (link, up, mtu, learnt) = (f.link, f.up, f.mtu, Some(&mut f.learnt));
            let mut device = LinkDevice { network, link, up, mtu, now, moved: 0, learnt };
            let changed = f.iface.poll(smol_time(now), &mut device, &mut f.sockets);
            busy |= device.moved > 0 || changed == smoltcp::iface::PollResult::SocketStateChanged;
            let delay = f.iface.poll_delay(smol_time(now), &f.sockets);
            let at = delay.map(|delay| now + Duration::from_micros(delay.total_micros()));
            deadline = earliest(deadline, at);
        }
        for (iface, handle) in std::mem::take(&mut self.retiring) {
            self.ifaces[iface].sockets.remove(handle);
        }
        (busy, deadline)
    }

    /// Moves TCP bytes between carriers and smoltcp; ends finished pumps, telling
    /// `ended` of the stand-in each had.
    pub(super) fn pump_all(&mut self, mut ended: impl FnMut(SocketId)) -> bool {
        let mut busy = false;
        let mut index = 0;
        while index < self.pumps.len() {
            busy |= self.pump(index);
            let pump = &self.pumps[index];
            let tcp = self.ifaces[pump.iface].sockets.get::<tcp::Socket>(pump.handle);
            let over = matches!(tcp.state(), tcp::State::Closed | tcp::State::TimeWait);
            if over && pump.peer_done_told {
                let pump = self.pumps.swap_remove(index);
                self.retiring.push((pump.iface, pump.handle));
                if let Some(id) = pump.stand_in {
                    ended(id);
                }
                busy = true;
                continue;
            }
            index += 1;
        }
        busy
    }

    /// Moves the bytes of pump `index` each way; returns whether any moved.
    fn pump(&mut self, index: usize) -> bool {
        let mut busy = false;
        let pump = &mut self.pumps[index];
        let tcp = self.ifaces[pump.iface].sockets.get_mut::<tcp::Socket>(pump.handle);
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
                    tcp.close();
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

    /// Ends connects whose handshake finished or failed, telling `settled` of
    /// each socket's outcome.
    pub(super) fn settle_dials(
        &mut self,
        now: Instant,
        mut settled: impl FnMut(SocketId, Result<(), Errno>),
    ) -> bool {
        let mut busy = false;
        let mut index = 0;
        while index < self.dials.len() {
            let dial = &self.dials[index];
            let deadline = dial.deadline;
            let state = self.ifaces[dial.iface].sockets.get::<tcp::Socket>(dial.handle).state();
            let failed = match state {
                tcp::State::SynSent if now >= deadline => Some(Errno::EHOSTUNREACH),
                // Connected, but the program never came for it (its connect was
                // interrupted and not repeated): give up the connection.
                _ if now >= deadline + DIAL_TIMEOUT => Some(Errno::ETIMEDOUT),
                tcp::State::SynSent | tcp::State::SynReceived => None,
                tcp::State::Closed => Some(Errno::ECONNREFUSED),
                // Established (or already closing): let the carrier through.
                _ => match self.let_through(index) {
                    Some(socket) => {
                        settled(socket, Ok(()));
                        busy = true;
                        continue;
                    }
                    None => None,
                },
            };
            if let Some(errno) = failed {
                let dial = self.dials.swap_remove(index);
                self.ifaces[dial.iface].sockets.get_mut::<tcp::Socket>(dial.handle).abort();
                self.retiring.push((dial.iface, dial.handle));
                settled(dial.socket, Err(errno));
                // Closing the gate fails the waiting connect (or marks the
                // non-blocking carrier's queued connection refused).
                drop(dial);
                busy = true;
                continue;
            }
            index += 1;
        }
        busy
    }

    /// Lets the carrier waiting at the gate of established dial `index` through:
    /// the dial becomes a pump. Returns the dialing socket, or `None` if its
    /// carrier is not there (yet).
    fn let_through(&mut self, index: usize) -> Option<SocketId> {
        let dial = &mut self.dials[index];
        if let Some(filler) = dial.filler.take() {
            if let Ok(taken) = accept4(dial.gate.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
                // SAFETY: accept4 returned a new fd that nothing else owns.
                drop(unsafe { OwnedFd::from_raw_fd(taken) });
            }
            drop(filler);
        }
        let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
        let end = accept4(dial.gate.as_raw_fd(), flags).ok()?;
        let dial = self.dials.swap_remove(index);
        // SAFETY: accept4 returned a new fd that nothing else owns.
        let end = unsafe { OwnedFd::from_raw_fd(end) };
        self.register(end.as_raw_fd(), Interest::READABLE | Interest::WRITABLE);
        self.pumps.push(Pump {
            iface: dial.iface,
            handle: dial.handle,
            end,
            program_done: false,
            peer_done_told: false,
            stand_in: None,
        });
        Some(dial.socket)
    }

    /// Hands the connections that listeners took to the programs' listening
    /// carriers: `hand_over(local, remote)` connects a stand-in for `remote` to
    /// the carrier listening at `local`, and gives its end and identity.
    pub(super) fn take_arrivals(
        &mut self,
        mut hand_over: impl FnMut(SocketAddr, SocketAddr) -> Option<(OwnedFd, SocketId)>,
    ) -> bool {
        let mut busy = self.renew_listeners();
        let mut index = 0;
        while index < self.arriving.len() {
            let (iface, handle) = self.arriving[index];
            let tcp = self.ifaces[iface].sockets.get_mut::<tcp::Socket>(handle);
            match tcp.state() {
                tcp::State::SynReceived => {
                    index += 1;
                    continue;
                }
                tcp::State::Established | tcp::State::CloseWait => {}
                _ => {
                    self.arriving.swap_remove(index);
                    self.ifaces[iface].sockets.remove(handle);
                    continue;
                }
            }
            self.arriving.swap_remove(index);
            busy = true;
            let (Some(local), Some(remote)) = (tcp.local_endpoint(), tcp.remote_endpoint()) else {
                tcp.abort();
                self.retiring.push((iface, handle));
                continue;
            };
            let local = SocketAddr::new(local.addr.into(), local.port);
            let remote = SocketAddr::new(remote.addr.into(), remote.port);
            match hand_over(local, remote) {
                Some((end, stand_in)) => {
                    self.register(end.as_raw_fd(), Interest::READABLE | Interest::WRITABLE);
                    self.pumps.push(Pump {
                        iface,
                        handle,
                        end,
                        program_done: false,
                        peer_done_told: false,
                        stand_in: Some(stand_in),
                    });
                }
                // Nobody listens there after all: Linux resets.
                None => {
                    tcp.abort();
                    self.retiring.push((iface, handle));
                }
            }
        }
        busy
    }

    /// Moves the connections listening sockets took to the arrivals, each
    /// listener replaced by a fresh one; returns whether there were any.
    fn renew_listeners(&mut self) -> bool {
        let mut busy = false;
        let ports: Vec<u16> = self.listeners.keys().copied().collect();
        for port in ports {
            let (addr, handles) = {
                let listening = &self.listeners[&port];
                (listening.addr, listening.handles.clone())
            };
            for (slot, (iface, handle)) in handles.into_iter().enumerate() {
                let state = self.ifaces[iface].sockets.get::<tcp::Socket>(handle).state();
                if state != tcp::State::Listen {
                    self.arriving.push((iface, handle));
                    // The interface had the address a moment ago: it still has.
                    if let Some(fresh) = self.listen_on(iface, addr, port) {
                        self.listeners.get_mut(&port).expect("listed").handles[slot] =
                            (iface, fresh);
                    }
                    busy = true;
                }
            }
        }
        busy
    }
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
        let plugged = InterfacePlan { spec: interface(&["10.1.0.2/24"]), link: Some((link, "sw0".into())) };
        let plans = [unplugged, plugged];
        let view = Addressing::configured(&plans, &[]);
        let poll = mio::Poll::new().unwrap();
        let registry = poll.registry().try_clone().unwrap();
        let host = NetHost::new(&plans, view.view(), &mut network, registry, 1);
        assert_eq!(host.iface_of(2), None);
        assert_eq!(host.iface_of(3), Some(0));
    }
}
