//! [`SmoltcpStack`]: one mounted stack, composed of parts with one job each.
//!
//! - [`Addressing`]: the host's own addresses and what they decide;
//! - [`SocketTable`]: the virtual sockets, their carriers' names, the ports;
//! - [`Carriers`]: the names carriers are bound to;
//! - [`NetHost`]: the network side, when an interface is plugged into a link;
//! - the calls in flight, each awaiting its exit as a [`Pending`] of its family.
//!
//! The call handlers (one file per family) and the service rounds are methods of
//! the stack that work on these parts; what spans parts lives here: finding a
//! live receiver, forgetting closed sockets on every side.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use nix::unistd::Pid;

use super::addressing::Addressing;
use super::carrier::Carriers;
use super::endpoint::EndpointName;
use super::net::{InterfacePlan, Marks, NetHost, Resources, Route};
use super::alarm::Alarms;
use super::shadow::Shadows;
use super::ports::Proto;
use super::table::SocketTable;
use crate::fdtable::SocketId;
use crate::modules::Disposition;
use crate::modules::vunet::Claims;
use crate::modules::vunet::config::RouteSpec;
use crate::modules::vunet::network::Network;
use crate::modules::vunet::status::UdpCounters;
use crate::tracer::SyscallStop;

/// A call in flight whose exit the stack needs: each handler family's own
/// state, finished by its own code (the stack's `finish` only dispatches).
pub(super) trait Pending {
    /// The call returned (`stop.result()`): complete it.
    fn finish(
        self: Box<Self>,
        stack: &mut SmoltcpStack,
        stop: &mut SyscallStop,
        claims: &mut Claims,
    );
}

/// What the network side must let go of for a closed socket (see
/// `SmoltcpStack::settle_forgotten`).
#[derive(Debug)]
enum Forgotten {
    /// A socket's private end, connect under way and last TTL.
    Side(SocketId, EndpointName),
    /// A port no socket uses any more.
    Port(Proto, u16),
}

/// What the network side saw of a datagram from the network that a socket
/// asking for control messages was handed.
#[derive(Clone, Copy, Debug)]
pub(super) struct Noted {
    /// Its sender.
    pub(super) from: SocketAddr,
    /// The stack's address it was sent to.
    pub(super) to: IpAddr,
    /// Its TTL and type of service.
    pub(super) marks: Marks,
}

/// A mounted `smoltcp` stack.
pub struct SmoltcpStack {
    pub(super) name: Rc<str>,
    /// The host's addresses, interfaces and routes.
    pub(super) host: Addressing,
    /// The virtual sockets and their ports.
    pub(super) table: SocketTable,
    /// The names of the stack's carriers.
    pub(super) carriers: Carriers,
    /// The stack's network side, if an interface is plugged into a link (taken
    /// out while a service round works on it).
    pub(super) net: Option<NetHost>,
    /// A service round has the network side out (see [`with_net`](Self::with_net)).
    net_at_work: bool,
    /// Closed sockets whose network side is to be let go of after the round.
    forgotten: Vec<Forgotten>,
    /// Calls in flight, by thread, whose exit the stack needs.
    pub(super) pending: HashMap<Pid, Box<dyn Pending>>,
    /// What the network side counted of UDP.
    pub(super) udp_counters: UdpCounters,
    /// For sockets that asked for control messages (`IP_PKTINFO`,
    /// `IP_RECVTTL`, ...): what only the network side saw of each datagram
    /// from the network handed to their carrier, oldest first, for `recvmsg`
    /// to report (see `datagram.rs`).
    pub(super) noted: HashMap<SocketId, VecDeque<Noted>>,
    /// Where datagrams carriers sent to the network are read into (empty
    /// until the first).
    pub(super) datagram_buffer: Vec<u8>,
    /// The kernel's sockets that answer the options netvm does not model.
    pub(super) shadows: Shadows,
    /// What wakes ping sockets for their ICMP errors (see `alarm.rs`).
    pub(super) alarms: Alarms,
}

impl SmoltcpStack {
    /// The submodule's kind, as written in `modules.toml`.
    pub const KIND: &'static str = "smoltcp";

    /// Mounts stack number `index` of the session, called `name`, with no network:
    /// its own `addresses` and loopback only.
    pub fn mount(name: &str, index: usize, session: [u8; 4], addresses: Vec<IpAddr>) -> Self {
        Self::with_host(name, index, session, Addressing::new(addresses))
    }

    /// Mounts stack number `index` with `interfaces` (those plugged into a link of
    /// `network` reach other hosts through it) and `routes`, with the session's
    /// `resources`.
    pub fn mount_networked(
        name: &str,
        index: usize,
        session: [u8; 4],
        interfaces: &[InterfacePlan],
        routes: &[RouteSpec],
        network: &mut Network,
        resources: Resources,
    ) -> Self {
        let seed = u64::from_ne_bytes([
            session[0],
            session[1],
            session[2],
            session[3],
            0,
            0,
            0,
            index as u8,
        ]);
        let host = Addressing::configured(interfaces, routes);
        let shadows = Shadows::new(resources.budget.clone());
        let net = NetHost::new(interfaces, host.view(), network, resources, seed);
        let mut stack = Self::with_host(name, index, session, host);
        stack.net = Some(net);
        stack.shadows = shadows;
        stack
    }

    /// Stack number `index` of session `session`, called `name`, on `host`.
    fn with_host(name: &str, index: usize, session: [u8; 4], host: Addressing) -> Self {
        // Stacks of one session start their ephemeral ports apart, as separate
        // hosts would.
        let seed = u16::from_ne_bytes([session[0], session[1]])
            .wrapping_add((index as u16).wrapping_mul(7919));
        Self {
            name: name.into(),
            host,
            table: SocketTable::new(seed),
            carriers: Carriers::new(session, index),
            net: None,
            net_at_work: false,
            forgotten: Vec::new(),
            udp_counters: UdpCounters::default(),
            noted: HashMap::new(),
            datagram_buffer: Vec::new(),
            pending: HashMap::new(),
            shadows: Shadows::default(),
            alarms: Alarms::default(),
        }
    }

    /// Where traffic to `to` leaves the stack, if it reaches another host: the
    /// plugged interface and the source address (see [`Addressing::route`]).
    pub(super) fn route(&self, to: IpAddr) -> Option<Route> {
        self.route_through(self.net.as_ref()?, to)
    }

    /// The MTU of the path to remote address `to`; `None` for the stack's own
    /// addresses (its loopback) or where no route leads.
    pub(super) fn path_mtu(&self, to: IpAddr) -> Option<usize> {
        if self.host.is_local(to) {
            return None;
        }
        let net = self.net.as_ref()?;
        Some(net.path_mtu(self.route_through(net, to)?.iface, to))
    }

    /// [`route`](Self::route) while a service round has the network side `net` out.
    pub(super) fn route_through(&self, net: &NetHost, to: IpAddr) -> Option<Route> {
        let (index, source) = self.host.route(to)?;
        Some(Route { iface: net.iface_of(index)?, source })
    }

    /// Records `pending` as what thread `tid`'s call awaits at its exit.
    pub(super) fn await_exit(&mut self, tid: Pid, pending: impl Pending + 'static) -> Disposition {
        self.pending.insert(tid, Box::new(pending));
        Disposition::KernelThenFinish
    }

    /// Runs `work` on the network side, taken out of the stack meanwhile (what is
    /// forgotten then waits, see [`settle_forgotten`](Self::settle_forgotten));
    /// `None` without a network side.
    pub(super) fn with_net<R>(
        &mut self,
        work: impl FnOnce(&mut Self, &mut NetHost) -> R,
    ) -> Option<R> {
        let mut net = self.net.take()?;
        self.net_at_work = true;
        let result = work(self, &mut net);
        self.net_at_work = false;
        self.net = Some(net);
        Some(result)
    }

    /// The receiver of traffic to `to`, if its socket still exists. A binding whose
    /// carrier closed since is dropped here: nothing else tells netvm of a close.
    pub(super) fn live_receiver(&mut self, proto: Proto, to: SocketAddr) -> Option<EndpointName> {
        loop {
            let receiver = self.table.ports.receiver(proto, to)?;
            let (name, socket) = (receiver.name, receiver.socket);
            if name.is_held(proto.carrier()) {
                return Some(name);
            }
            self.forget_closed_receiver(proto, to.port(), socket);
        }
    }

    /// Forgets `socket`, bound to `port` for `proto`, whose carrier turned out to
    /// have closed (nothing else tells netvm of a close): its binding goes with it.
    pub(super) fn forget_closed_receiver(&mut self, proto: Proto, port: u16, socket: SocketId) {
        self.forget_sockets(&[socket]);
        self.table.ports.unbind(proto, port, socket);
    }

    /// Forgets closed sockets on every side: the table, their ports, and what
    /// the network side kept for them.
    pub(super) fn forget_sockets(&mut self, sockets: &[SocketId]) {
        for &id in sockets {
            let Some(socket) = self.table.remove(id) else { continue };
            self.shadows.forget(id);
            self.alarms.forget(id);
            if let Some(net) = self.net.as_mut() {
                net.forget_socket(id);
            }
            if let Some(name) = socket.name {
                self.forget_network_side(id, name);
            }
            if let Some(local) = socket.local {
                self.table.ports.unbind(socket.proto, local.port(), id);
                self.close_network_port(socket.proto, local.port());
            }
        }
        self.table.shrink_idle();
        if let Some(net) = self.net.as_mut() {
            net.shrink_idle();
        }
    }

    /// Drops what the network side kept for socket `id` (carrier `name`): its
    /// private end, a connect under way, the TTL last seen.
    fn forget_network_side(&mut self, id: SocketId, name: EndpointName) {
        let Some(net) = self.net.as_mut() else {
            // The network side is at work (a round found the socket closed): later.
            if self.net_at_work {
                self.forgotten.push(Forgotten::Side(id, name));
            }
            return;
        };
        net.last_ttl.remove(&id);
        net.drop_dial(id);
        if let Some(private) = net.remove_private(&name) {
            self.table.remove(private.id);
        }
    }

    /// What was forgotten while the network side was at work, done now.
    pub(super) fn settle_forgotten(&mut self) {
        for forgotten in std::mem::take(&mut self.forgotten) {
            match forgotten {
                Forgotten::Side(id, name) => self.forget_network_side(id, name),
                Forgotten::Port(proto, port) => self.close_network_port(proto, port),
            }
        }
    }

    /// Stops serving `port` on the network once no socket of the stack uses it.
    pub(super) fn close_network_port(&mut self, proto: Proto, port: u16) {
        let Some(net) = self.net.as_mut() else {
            if self.net_at_work {
                self.forgotten.push(Forgotten::Port(proto, port));
            }
            return;
        };
        match proto {
            Proto::Tcp if !self.table.ports.is_listened(port) => net.unlisten(port),
            Proto::Udp if !self.table.ports.is_bound(proto, port) => net.close_udp(port),
            _ => {}
        }
    }
}
