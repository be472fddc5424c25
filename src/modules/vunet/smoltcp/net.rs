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
//! supervisor's ends move, in [`SmoltcpStack::service`].

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::errno::Errno;
use nix::sys::socket::{
    Backlog, MsgFlags, SockFlag, SockType, UnixAddr, accept4, listen, recvfrom, sendto,
};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::socket::{raw, tcp, udp};
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, IpProtocol, IpVersion,
};

use super::carrier::{bind_to, connect_to, inode_of, unix_socket};
use super::endpoint::EndpointName;
use super::ports::Proto;
use super::{ConnectState, SmoltcpStack, VSocket};
use crate::fdtable::SocketId;
use crate::modules::vunet::network::{LinkId, Network};
use crate::modules::vunet::{Activity, earliest};

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

/// One interface of a stack, as configured.
#[derive(Clone, Debug)]
pub struct InterfacePlan {
    /// Its name (`eth0`).
    pub name: String,
    /// Its Ethernet address.
    pub mac: [u8; 6],
    /// Largest IP packet it sends.
    pub mtu: usize,
    /// Its addresses, each with its prefix length.
    pub addresses: Vec<(IpAddr, u8)>,
    /// The link it is plugged into, if any, and the switch's name.
    pub link: Option<(LinkId, String)>,
}

/// One route of a stack: traffic to `to/prefix` goes through gateway `via`.
#[derive(Clone, Copy, Debug)]
pub struct RoutePlan {
    /// The destination prefix (`0.0.0.0/0` or `::/0` for a default route).
    pub to: (IpAddr, u8),
    /// The gateway.
    pub via: IpAddr,
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
    plan: InterfacePlan,
    link: LinkId,
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
    id: SocketId,
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
    routes: Vec<RoutePlan>,
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
    pub(super) remotes: HashMap<(Proto, SocketAddr), Remote>,
    /// The TTL of the last packet each ICMP socket received, for `IP_RECVTTL`.
    pub(super) last_ttl: HashMap<SocketId, u8>,
    /// The private ends of connected datagram carriers, by carrier name.
    pub(super) privates: HashMap<EndpointName, super::errqueue::PrivateEnd>,
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
    mtu: usize,
    now: Instant,
    /// Frames moved during this poll, either way.
    moved: usize,
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
        let frame = self.network.receive(self.link)?;
        self.moved += 1;
        let tx = LinkTx {
            network: self.network,
            link: self.link,
            now: self.now,
            moved: &mut self.moved,
        };
        Some((LinkRx(frame), tx))
    }

    fn transmit(&mut self, _timestamp: smoltcp::time::Instant) -> Option<Self::TxToken<'_>> {
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

fn contains(net: (IpAddr, u8), ip: IpAddr) -> bool {
    match (net.0, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(net.1)).unwrap_or(0);
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(net.1)).unwrap_or(0);
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

fn cidr((ip, prefix): (IpAddr, u8)) -> IpCidr {
    IpCidr::new(IpAddress::from(ip), prefix)
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
    /// become smoltcp interfaces) and `routes`. With none plugged it reaches no
    /// other host, and still stands in for the host itself (the replies to pings
    /// of its own addresses come from there).
    pub(super) fn new(
        interfaces: &[InterfacePlan],
        routes: &[RoutePlan],
        network: &mut Network,
        registry: Registry,
        seed: u64,
    ) -> Self {
        let now = Instant::now();
        let mut ifaces = Vec::new();
        for plan in interfaces {
            let Some((link, _)) = plan.link.clone() else { continue };
            let mut device = LinkDevice { network, link, mtu: plan.mtu, now, moved: 0 };
            let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(plan.mac)));
            config.random_seed = seed ^ ifaces.len() as u64;
            let mut iface = Interface::new(config, &mut device, smol_time(now));
            iface.update_ip_addrs(|addrs| {
                for &a in &plan.addresses {
                    let _ = addrs.push(cidr(a));
                }
            });
            for route in routes {
                if plan.addresses.iter().any(|&a| contains(a, route.via)) {
                    let via = IpAddress::from(route.via);
                    iface.routes_mut().update(|table| {
                        let _ = table.push(smoltcp::iface::Route {
                            cidr: cidr(route.to),
                            via_router: via,
                            preferred_until: None,
                            expires_at: None,
                        });
                    });
                }
            }
            ifaces.push(NetIface {
                plan: plan.clone(),
                link,
                iface,
                sockets: SocketSet::new(Vec::new()),
            });
        }
        let mut host = Self {
            ifaces,
            routes: routes.to_vec(),
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
        host
    }

    /// Where traffic to `to` leaves: the interface on its subnet, or the one on
    /// the subnet of the gateway of the most specific route to it.
    pub(super) fn route(&self, to: IpAddr) -> Option<Route> {
        let on_link = |ip: IpAddr| {
            self.ifaces.iter().enumerate().find_map(|(i, f)| {
                let a = f.plan.addresses.iter().find(|&&a| contains(a, ip))?;
                Some(Route { iface: i, source: a.0 })
            })
        };
        if let Some(route) = on_link(to) {
            return Some(route);
        }
        let best = self.routes.iter().filter(|r| contains(r.to, to)).max_by_key(|r| r.to.1)?;
        let gateway = on_link(best.via)?;
        // The source is the interface's address of the destination's family.
        let source = self.ifaces[gateway.iface]
            .plan
            .addresses
            .iter()
            .find(|a| a.0.is_ipv4() == to.is_ipv4())
            .map_or(gateway.source, |a| a.0);
        Some(Route { iface: gateway.iface, source })
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
            && !f.plan.addresses.iter().any(|a| a.0 == addr)
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

    /// The remote for `(proto, addr)`, made on first use.
    pub(super) fn remote(
        &mut self,
        proto: Proto,
        addr: SocketAddr,
        fresh: impl FnOnce() -> EndpointName,
    ) -> Option<&Remote> {
        if !self.remotes.contains_key(&(proto, addr)) {
            let name = fresh();
            let end = unix_socket(SockType::Datagram).ok()?;
            bind_to(end.as_raw_fd(), &name).ok()?;
            let id = inode_of(&end)?;
            self.watch(end.as_raw_fd());
            self.remotes.insert((proto, addr), Remote { end, used: Instant::now(), name, id });
        }
        let remote = self.remotes.get_mut(&(proto, addr))?;
        remote.used = Instant::now();
        Some(remote)
    }
}

impl SmoltcpStack {
    /// One round of the stack's network work: datagrams from carriers to the
    /// network, TCP bytes both ways, connects and arrivals, then the interfaces.
    pub(super) fn serve_network(
        &mut self,
        network: &mut Network,
        now: Instant,
        ready: &[RawFd],
    ) -> Activity {
        let Some(mut net) = self.net.take() else { return Activity::default() };
        let mut busy = self.send_datagrams(&mut net, Some(ready));
        busy |= self.pump_all(&mut net);
        busy |= self.settle_dials(&mut net, now);
        busy |= self.take_arrivals(&mut net);
        let mut deadline = None;
        for f in &mut net.ifaces {
            let mut device = LinkDevice { network, link: f.link, mtu: f.plan.mtu, now, moved: 0 };
            let changed = f.iface.poll(smol_time(now), &mut device, &mut f.sockets);
            busy |= device.moved > 0 || changed == smoltcp::iface::PollResult::SocketStateChanged;
            let delay = f.iface.poll_delay(smol_time(now), &f.sockets);
            let at = delay.map(|delay| now + Duration::from_micros(delay.total_micros()));
            deadline = earliest(deadline, at);
        }
        for (iface, handle) in std::mem::take(&mut net.retiring) {
            net.ifaces[iface].sockets.remove(handle);
        }
        busy |= self.deliver_datagrams(&mut net);
        self.expire_remotes(&mut net, now);
        deadline = earliest(deadline, self.raise_due(&mut net, now));
        deadline = earliest(deadline, net.dials.iter().map(|d| d.deadline).min());
        self.net = Some(net);
        self.settle_forgotten();
        Activity { busy, deadline }
    }

    /// Moves TCP bytes between carriers and smoltcp; ends finished pumps.
    fn pump_all(&mut self, net: &mut NetHost) -> bool {
        let mut busy = false;
        let mut index = 0;
        while index < net.pumps.len() {
            let pump = &mut net.pumps[index];
            let tcp = net.ifaces[pump.iface].sockets.get_mut::<tcp::Socket>(pump.handle);
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
            let over = matches!(tcp.state(), tcp::State::Closed | tcp::State::TimeWait);
            if over && pump.peer_done_told {
                let pump = net.pumps.swap_remove(index);
                net.retiring.push((pump.iface, pump.handle));
                if let Some(id) = pump.stand_in {
                    self.drop_stand_in(id);
                }
                busy = true;
                continue;
            }
            index += 1;
        }
        busy
    }

    /// Ends connects whose handshake finished or failed.
    fn settle_dials(&mut self, net: &mut NetHost, now: Instant) -> bool {
        let mut busy = false;
        let mut index = 0;
        while index < net.dials.len() {
            let dial = &mut net.dials[index];
            let state = net.ifaces[dial.iface].sockets.get::<tcp::Socket>(dial.handle).state();
            let failed = match state {
                tcp::State::SynSent if now >= dial.deadline => Some(Errno::EHOSTUNREACH),
                // Connected, but the program never came for it (its connect was
                // interrupted and not repeated): give up the connection.
                _ if now >= dial.deadline + DIAL_TIMEOUT => Some(Errno::ETIMEDOUT),
                tcp::State::SynSent | tcp::State::SynReceived => None,
                tcp::State::Closed => Some(Errno::ECONNREFUSED),
                _ => {
                    // Established (or already closing): let the carrier through.
                    if let Some(filler) = dial.filler.take() {
                        if let Ok(taken) = accept4(dial.gate.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
                            // SAFETY: accept4 returned a new fd that nothing else owns.
                            drop(unsafe { OwnedFd::from_raw_fd(taken) });
                        }
                        drop(filler);
                    }
                    match accept4(
                        dial.gate.as_raw_fd(),
                        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
                    ) {
                        Ok(end) => {
                            let dial = net.dials.swap_remove(index);
                            // SAFETY: accept4 returned a new fd that nothing else owns.
                            let end = unsafe { OwnedFd::from_raw_fd(end) };
                            net.register(end.as_raw_fd(), Interest::READABLE | Interest::WRITABLE);
                            if let Some(s) = self.sockets.get_mut(&dial.socket)
                                && matches!(s.connect, ConnectState::InProgress(_))
                            {
                                s.connect = ConnectState::DoneUnreported;
                            }
                            net.pumps.push(Pump {
                                iface: dial.iface,
                                handle: dial.handle,
                                end,
                                program_done: false,
                                peer_done_told: false,
                                stand_in: None,
                            });
                            busy = true;
                            continue;
                        }
                        Err(_) => None,
                    }
                }
            };
            if let Some(errno) = failed {
                let dial = net.dials.swap_remove(index);
                net.ifaces[dial.iface].sockets.get_mut::<tcp::Socket>(dial.handle).abort();
                net.retiring.push((dial.iface, dial.handle));
                if let Some(s) = self.sockets.get_mut(&dial.socket) {
                    s.connect = ConnectState::Failed(errno);
                    s.peer = None;
                }
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

    /// Hands connections that listeners took to the programs' listening carriers.
    fn take_arrivals(&mut self, net: &mut NetHost) -> bool {
        let mut busy = false;
        let ports: Vec<u16> = net.listeners.keys().copied().collect();
        for port in ports {
            let (addr, handles) = {
                let listening = &net.listeners[&port];
                (listening.addr, listening.handles.clone())
            };
            for (slot, (iface, handle)) in handles.into_iter().enumerate() {
                let state = net.ifaces[iface].sockets.get::<tcp::Socket>(handle).state();
                if state != tcp::State::Listen {
                    net.arriving.push((iface, handle));
                    // The interface had the address a moment ago: it still has.
                    if let Some(fresh) = net.listen_on(iface, addr, port) {
                        net.listeners.get_mut(&port).expect("listed").handles[slot] =
                            (iface, fresh);
                    }
                    busy = true;
                }
            }
        }
        let mut index = 0;
        while index < net.arriving.len() {
            let (iface, handle) = net.arriving[index];
            let tcp = net.ifaces[iface].sockets.get_mut::<tcp::Socket>(handle);
            match tcp.state() {
                tcp::State::SynReceived => {
                    index += 1;
                    continue;
                }
                tcp::State::Established | tcp::State::CloseWait => {}
                _ => {
                    net.arriving.swap_remove(index);
                    net.ifaces[iface].sockets.remove(handle);
                    continue;
                }
            }
            net.arriving.swap_remove(index);
            busy = true;
            let (Some(local), Some(remote)) = (tcp.local_endpoint(), tcp.remote_endpoint()) else {
                tcp.abort();
                net.retiring.push((iface, handle));
                continue;
            };
            let local = SocketAddr::new(local.addr.into(), local.port);
            let remote = SocketAddr::new(remote.addr.into(), remote.port);
            match self.hand_over(local, remote) {
                Some((end, stand_in)) => {
                    net.register(end.as_raw_fd(), Interest::READABLE | Interest::WRITABLE);
                    net.pumps.push(Pump {
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
                    net.retiring.push((iface, handle));
                }
            }
        }
        busy
    }

    /// Connects a stand-in for `remote` to the carrier listening at `local`, so
    /// that the program's `accept` returns a connection from `remote`.
    fn hand_over(&mut self, local: SocketAddr, remote: SocketAddr) -> Option<(OwnedFd, SocketId)> {
        let listener = self.live_receiver(Proto::Tcp, local)?;
        let name = self.namer.fresh();
        let end = unix_socket(SockType::Stream).ok()?;
        bind_to(end.as_raw_fd(), &name).ok()?;
        connect_to(end.as_raw_fd(), &listener).ok()?;
        let id = inode_of(&end)?;
        self.record_remote(id, name, Proto::Tcp, remote);
        if let Some(stand_in) = self.sockets.get_mut(&id) {
            stand_in.peer = Some(local);
        }
        Some((end, id))
    }

    pub(super) fn drop_stand_in(&mut self, id: SocketId) {
        if let Some(s) = self.sockets.remove(&id)
            && let Some(name) = s.name
        {
            self.by_name.remove(&name);
        }
    }

    /// Takes every datagram carriers have sent to remote hosts so far into
    /// smoltcp, with their sockets' options as they are now.
    pub(super) fn flush_datagrams(&mut self) {
        if let Some(mut net) = self.net.take() {
            self.send_datagrams(&mut net, None);
            self.net = Some(net);
        }
    }

    /// Sends what carriers wrote to remotes out through smoltcp: from the ends
    /// in `ready`, or from every end.
    fn send_datagrams(&mut self, net: &mut NetHost, ready: Option<&[RawFd]>) -> bool {
        // Each end of the supervisor's that carriers send to, with its remote.
        let ends: Vec<(RawFd, (Proto, SocketAddr))> = net
            .remotes
            .iter()
            .map(|(key, r)| (r.end.as_raw_fd(), *key))
            .chain(net.privates.values().map(|p| (p.end.as_raw_fd(), p.remote)))
            .filter(|(fd, _)| ready.is_none_or(|ready| ready.contains(fd)))
            .collect();
        let mut busy = false;
        for (fd, key) in ends {
            busy |= self.forward_from(net, fd, key);
        }
        busy
    }

    /// Drops remotes no datagram has used for a while, and the least recently
    /// used beyond [`MAX_REMOTES`]: a remote costs an fd. (A datagram still queued at a carrier from a dropped remote
    /// reports the unspecified address as its sender.)
    fn expire_remotes(&mut self, net: &mut NetHost, now: Instant) {
        if net.remotes.len() <= MAX_REMOTES && now < net.remotes_checked + REMOTE_IDLE / 4 {
            return;
        }
        net.remotes_checked = now;
        let mut by_age: Vec<((Proto, SocketAddr), Instant)> =
            net.remotes.iter().map(|(key, r)| (*key, r.used)).collect();
        by_age.sort_by_key(|(_, used)| std::cmp::Reverse(*used));
        for (rank, (key, used)) in by_age.into_iter().enumerate() {
            if (rank >= MAX_REMOTES || now.saturating_duration_since(used) > REMOTE_IDLE)
                && let Some(remote) = net.remotes.remove(&key)
            {
                self.drop_stand_in(remote.id);
            }
        }
    }

    /// Sends what carriers wrote to the end `fd` (standing for remote `key`) out
    /// through smoltcp; returns whether there was anything.
    pub(super) fn forward_from(
        &mut self,
        net: &mut NetHost,
        fd: RawFd,
        key: (Proto, SocketAddr),
    ) -> bool {
        let mut busy = false;
        let mut buf = vec![0u8; 65536];
        while let Ok((len, Some(from))) = recvfrom::<UnixAddr>(fd, &mut buf) {
            busy = true;
            let Some(sender) = from
                .as_abstract()
                .and_then(|n| <[u8; super::endpoint::NAME_LEN]>::try_from(n).ok())
                .and_then(|n| self.by_name.get(&EndpointName(n)))
                .and_then(|id| self.sockets.get(id).map(|s| (*id, s.clone())))
            else {
                continue;
            };
            self.send_out(net, key, sender, &buf[..len]);
        }
        busy
    }

    /// Sends one datagram of socket `sender` to `key`'s remote through smoltcp.
    fn send_out(
        &mut self,
        net: &mut NetHost,
        (proto, to): (Proto, SocketAddr),
        (id, sender): (SocketId, VSocket),
        payload: &[u8],
    ) {
        if proto == Proto::Icmp && self.is_local(to.ip()) {
            // A connected ping socket's request to the host itself.
            return self.echo_locally(net, id, to.ip(), payload);
        }
        if proto == Proto::Udp && self.is_local(to.ip()) {
            // A connected UDP socket's datagram to a port of the host itself that
            // nobody had bound when it connected.
            let Some(local) = sender.local else { return };
            let ip = match sender.source {
                Some(source) if local.ip().is_unspecified() => source,
                _ => local.ip(),
            };
            let from = SocketAddr::new(ip.to_canonical(), local.port());
            return match self.live_receiver(Proto::Udp, to) {
                Some(receiver) => self.deliver(net, Proto::Udp, from, receiver, payload),
                None => self.report_error(net, super::icmp::port_unreachable(from, to, payload)),
            };
        }
        let Some(route) = net.route(to.ip()) else { return };
        let Some(local) = sender.local else { return };
        let ttl = sender.options.hop_limit(sender.family == super::Family::V6);
        match proto {
            Proto::Udp => {
                net.open_udp(local.port());
                let Some(&handle) = net.udp.get(&(route.iface, local.port())) else { return };
                let socket = net.ifaces[route.iface].sockets.get_mut::<udp::Socket>(handle);
                socket.set_hop_limit(Some(ttl));
                let meta = udp::UdpMetadata {
                    endpoint: IpEndpoint::from(to),
                    local_address: Some(IpAddress::from(route.source)),
                    meta: Default::default(),
                };
                let _ = socket.send_slice(payload, meta);
            }
            Proto::Icmp | Proto::Raw => {
                let Some(packet) =
                    super::icmp::outgoing(proto, route.source, to.ip(), local.port(), ttl, payload)
                else {
                    return;
                };
                let version = if to.is_ipv4() { IpVersion::Ipv4 } else { IpVersion::Ipv6 };
                let handle = net.icmp[&(route.iface, version)];
                let socket = net.ifaces[route.iface].sockets.get_mut::<raw::Socket>(handle);
                let _ = socket.send_slice(&packet);
            }
            Proto::Tcp => {}
        }
    }

    /// Delivers datagrams smoltcp received to the carriers they are for.
    fn deliver_datagrams(&mut self, net: &mut NetHost) -> bool {
        let mut busy = false;
        let udp: Vec<((usize, u16), SocketHandle)> =
            net.udp.iter().map(|(k, v)| (*k, *v)).collect();
        for ((iface, port), handle) in udp {
            loop {
                let socket = net.ifaces[iface].sockets.get_mut::<udp::Socket>(handle);
                let Ok((payload, meta)) = socket.recv() else { break };
                busy = true;
                let payload = payload.to_vec();
                let from = SocketAddr::new(meta.endpoint.addr.into(), meta.endpoint.port);
                let to_ip = meta.local_address.map_or(from.ip(), IpAddr::from);
                let to = SocketAddr::new(to_ip, port);
                let Some(receiver) = self.live_receiver(Proto::Udp, to) else { continue };
                self.deliver(net, Proto::Udp, from, receiver, &payload);
            }
        }
        let icmp: Vec<((usize, IpVersion), SocketHandle)> =
            net.icmp.iter().map(|(k, v)| (*k, *v)).collect();
        for ((iface, _), handle) in icmp {
            loop {
                let socket = net.ifaces[iface].sockets.get_mut::<raw::Socket>(handle);
                let Ok(packet) = socket.recv() else { break };
                busy = true;
                let packet = packet.to_vec();
                for (proto, receiver, from, payload, ttl) in super::icmp::incoming(self, &packet) {
                    if let Some(id) = self.by_name.get(&receiver) {
                        net.last_ttl.insert(*id, ttl);
                    }
                    self.deliver(net, proto, from, receiver, &payload);
                }
                if let Some(error) = super::icmp::error(&packet) {
                    self.report_error(net, error);
                }
            }
        }
        busy
    }

    /// Sends `payload` to carrier `receiver` from the remote standing for `from`.
    pub(super) fn deliver(
        &mut self,
        net: &mut NetHost,
        proto: Proto,
        from: SocketAddr,
        receiver: EndpointName,
        payload: &[u8],
    ) {
        // A carrier connected to the remote has its own end for it.
        let fd = match net.privates.get(&receiver).filter(|p| p.remote == (proto, from)) {
            Some(private) => private.end.as_raw_fd(),
            None => {
                let namer = &mut self.namer;
                let Some(remote) = net.remote(proto, from, || namer.fresh()) else { return };
                let (name, id) = (remote.name, remote.id);
                let fd = remote.end.as_raw_fd();
                self.record_remote(id, name, proto, from);
                fd
            }
        };
        if let Ok(to) = UnixAddr::new_abstract(&receiver.0) {
            // A full receiver drops the datagram, as Linux's socket would.
            let _ = sendto(fd, payload, &to, MsgFlags::MSG_DONTWAIT);
        }
    }

    /// Records the supervisor's socket `id`, bound to `name`, as a stand-in for
    /// the remote host at `addr` (once; later calls change nothing), so that
    /// `recvfrom`, `accept` and `getpeername` report the remote host.
    pub(super) fn record_remote(
        &mut self,
        id: SocketId,
        name: EndpointName,
        proto: Proto,
        addr: SocketAddr,
    ) {
        if self.by_name.contains_key(&name) {
            return;
        }
        let mut stand_in = VSocket::new(super::Family::of(addr.ip()), proto);
        stand_in.local = Some(addr);
        stand_in.name = Some(name);
        stand_in.stand_in = true;
        self.sockets.insert(id, stand_in);
        self.by_name.insert(name, id);
    }

    /// The carrier name datagrams for remote `(proto, to)` go to, made on first use.
    pub(super) fn remote_name(&mut self, proto: Proto, to: SocketAddr) -> Option<EndpointName> {
        let mut net = self.net.take()?;
        let namer = &mut self.namer;
        let found = net.remote(proto, to, || namer.fresh()).map(|r| (r.name, r.id));
        self.net = Some(net);
        let (name, id) = found?;
        self.record_remote(id, name, proto, to);
        Some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_contain_what_their_bits_say() {
        let net = |s: &str, p| (s.parse::<IpAddr>().unwrap(), p);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(contains(net("10.0.0.2", 24), ip("10.0.0.200")));
        assert!(!contains(net("10.0.0.2", 24), ip("10.0.1.2")));
        assert!(contains(net("0.0.0.0", 0), ip("192.0.2.1")));
        assert!(!contains(net("0.0.0.0", 0), ip("::1")), "families never mix");
        assert!(contains(net("fd00::2", 64), ip("fd00::ffff")));
        assert!(contains(net("::", 0), ip("fd01::2")));
        assert!(!contains(net("fd00::2", 64), ip("fd01::2")));
    }

    #[test]
    fn routes_pick_the_subnet_then_the_most_specific_gateway() {
        let mut network = Network::new(None);
        let switch = network.add_switch("sw0");
        let link = network.attach(switch, "s/eth0", None).unwrap();
        let plan = InterfacePlan {
            name: "eth0".into(),
            mac: [2, 0, 0, 0, 0, 2],
            mtu: 1500,
            addresses: vec![("10.0.0.2".parse().unwrap(), 24), ("fd00::2".parse().unwrap(), 64)],
            link: Some((link, "sw0".into())),
        };
        let routes = [
            RoutePlan { to: ("0.0.0.0".parse().unwrap(), 0), via: "10.0.0.1".parse().unwrap() },
            RoutePlan { to: ("10.9.0.0".parse().unwrap(), 16), via: "10.0.0.9".parse().unwrap() },
        ];
        let poll = mio::Poll::new().unwrap();
        let registry = poll.registry().try_clone().unwrap();
        let host = NetHost::new(&[plan], &routes, &mut network, registry, 1);
        let source = |to: &str| host.route(to.parse().unwrap()).map(|r| r.source.to_string());
        assert_eq!(source("10.0.0.77").as_deref(), Some("10.0.0.2"));
        assert_eq!(source("192.0.2.1").as_deref(), Some("10.0.0.2"));
        assert_eq!(source("10.9.3.4").as_deref(), Some("10.0.0.2"));
        assert_eq!(source("fd00::5").as_deref(), Some("fd00::2"));
        // No IPv6 default route: other IPv6 networks are unreachable.
        assert_eq!(source("fd01::2"), None);
    }

    #[test]
    fn a_stack_without_a_plugged_interface_reaches_no_other_host() {
        let mut network = Network::new(None);
        let plan = InterfacePlan {
            name: "eth0".into(),
            mac: [2, 0, 0, 0, 0, 2],
            mtu: 1500,
            addresses: vec![("10.0.0.2".parse().unwrap(), 24)],
            link: None,
        };
        let poll = mio::Poll::new().unwrap();
        let registry = poll.registry().try_clone().unwrap();
        let host = NetHost::new(&[plan], &[], &mut network, registry, 1);
        assert_eq!(host.route("10.0.0.3".parse().unwrap()), None);
    }
}
