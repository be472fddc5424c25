//! The stack's service rounds: the traffic between its carriers and the network
//! side ([`NetHost`]), and what the socket table learns from it.
//!
//! A round takes what carriers sent to remote hosts out through smoltcp, pumps
//! TCP bytes, settles connects and hands arriving connections to listeners,
//! polls the interfaces, then delivers what came in to the carriers it is for
//! (through the remote's stand-in, so the program sees the remote host as the
//! sender) and raises the ICMP errors that are due.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, UnixAddr, recvfrom, sendto};

use super::endpoint::{EndpointName, NAME_LEN};
use super::icmp;
use super::raw;
use super::inet::Family;
use super::net::{NetHost, Parked};
use super::ports::Proto;
use super::stack::{Noted, SmoltcpStack};
use super::table::{ConnectState, VSocket};
use crate::fdtable::SocketId;
use crate::modules::vunet::network::Network;
use crate::modules::vunet::stack::{Activity, earliest};

/// The largest datagram a carrier can send an end of the supervisor's.
const MAX_DATAGRAM: usize = 65536;

impl SmoltcpStack {
    /// One round of the stack's network work: datagrams from carriers to the
    /// network, TCP bytes both ways, connects and arrivals, then the interfaces.
    pub(super) fn serve_network(
        &mut self,
        network: &mut Network,
        now: Instant,
        ready: &[RawFd],
    ) -> Activity {
        let round = self.with_net(|stack, net| {
            net.begin_round(ready, now);
            let mut busy = stack.send_datagrams(net, Some(ready));
            busy |= net.pump_all(|stand_in| drop(stack.table.remove(stand_in)));
            busy |= net.settle_dials(now, |socket, outcome| stack.dial_settled(socket, outcome));
            busy |= net.take_arrivals(|local, remote| stack.hand_over(local, remote));
            let (moved, mut deadline) = net.poll(network, now);
            busy |= moved;
            busy |= stack.deliver_datagrams(net);
            for stand_in in net.expire_remotes(now) {
                stack.table.remove(stand_in);
            }
            stack.raise_due(net, now);
            deadline = earliest(deadline, net.next_deadline());
            Activity { busy, deadline }
        });
        let Some(activity) = round else { return Activity::default() };
        self.settle_forgotten();
        activity
    }

    /// A connect across the network settled: established (the next `connect`
    /// of a non-blocking one reports success), or failed with an error.
    fn dial_settled(&mut self, socket: SocketId, outcome: Result<(), nix::errno::Errno>) {
        match outcome {
            Ok(()) => {
                let waiting = self.table.get(socket).map(VSocket::connect_state);
                if matches!(waiting, Some(ConnectState::InProgress(_))) {
                    self.table.set_connect_state(socket, ConnectState::DoneUnreported);
                }
            }
            Err(error) => {
                self.table.set_connect_state(socket, ConnectState::Failed(error));
                if let Some(s) = self.table.get_mut(socket) {
                    s.peer = None;
                }
            }
        }
    }

    /// Takes every datagram carriers have sent to remote hosts so far into
    /// smoltcp, with their sockets' options as they are now.
    pub(super) fn flush_datagrams(&mut self) {
        self.with_net(|stack, net| stack.send_datagrams(net, None));
    }

    /// Handles at once what datagram socket `id` sent its private end, so that an
    /// error the host itself answers with (nobody bound a port) is there for the
    /// call that asks next, as on Linux's loopback.
    pub(super) fn settle_sent(&mut self, id: SocketId) {
        let Some(carrier) = self.table.get(id).and_then(|s| s.name) else { return };
        self.with_net(|stack, net| stack.forward_sent(net, carrier));
    }

    /// Sends what carriers wrote to remotes out through smoltcp: from the ends
    /// in `ready`, or from every end.
    fn send_datagrams(&mut self, net: &mut NetHost, ready: Option<&[RawFd]>) -> bool {
        let mut busy = false;
        for (fd, key) in net.datagram_ends(ready) {
            busy |= self.forward_from(net, fd, key);
        }
        busy
    }

    /// Forwards what the carrier named `carrier` sent its private end, if it has one.
    fn forward_sent(&mut self, net: &mut NetHost, carrier: EndpointName) {
        if let Some((fd, remote)) =
            net.privates.get(&carrier).map(|p| (p.end.as_raw_fd(), p.remote))
        {
            self.forward_from(net, fd, remote);
        }
    }

    /// Sends what carriers wrote to the end `fd` (standing for remote `key`) out
    /// through smoltcp; returns whether there was anything.
    ///
    /// A datagram smoltcp has no room for yet is parked at the end, which is read
    /// no further until it went: the sender waits (its carrier's queue fills),
    /// nothing is lost.
    fn forward_from(&mut self, net: &mut NetHost, fd: RawFd, key: (Proto, SocketAddr)) -> bool {
        if let Some(parked) = net.parked.remove(&fd)
            && !self.forward_one(net, key, parked.sender, &parked.payload)
        {
            net.parked.insert(fd, parked);
            return true;
        }
        let mut busy = false;
        // One buffer for the stack's life, not a zeroed 64 KiB per ready end.
        let mut buf = std::mem::take(&mut self.datagram_buffer);
        buf.resize(MAX_DATAGRAM, 0);
        while let Ok((len, Some(from))) = recvfrom::<UnixAddr>(fd, &mut buf) {
            busy = true;
            let Some(sender) =
                from.as_abstract().and_then(|n| <[u8; NAME_LEN]>::try_from(n).ok()).map(EndpointName)
            else {
                continue;
            };
            if !self.forward_one(net, key, sender, &buf[..len]) {
                net.parked.insert(fd, Parked { sender, payload: buf[..len].to_vec() });
                break;
            }
        }
        self.datagram_buffer = buf;
        busy
    }

    /// Sends `payload`, which the carrier named `sender` sent to `key`'s remote,
    /// through smoltcp; returns false if smoltcp has no room for it yet (a
    /// datagram of no socket of the stack's is dropped).
    fn forward_one(
        &mut self,
        net: &mut NetHost,
        key: (Proto, SocketAddr),
        sender: EndpointName,
        payload: &[u8],
    ) -> bool {
        let Some(id) = self.table.named(&sender) else { return true };
        let Some(socket) = self.table.get(id).cloned() else { return true };
        self.send_out(net, key, (id, socket), payload)
    }

    /// Sends one datagram of socket `sender` to `key`'s remote through smoltcp;
    /// returns false if a UDP socket of smoltcp's has no room for it yet.
    fn send_out(
        &mut self,
        net: &mut NetHost,
        (proto, to): (Proto, SocketAddr),
        (id, sender): (SocketId, VSocket),
        payload: &[u8],
    ) -> bool {
        if proto == Proto::Icmp && self.host.is_local(to.ip()) {
            // A connected ping socket's request to the host itself.
            self.echo_locally(net, id, to.ip(), payload);
            return true;
        }
        if proto == Proto::Udp && self.host.is_local(to.ip()) {
            // A connected UDP socket's datagram to a port of the host itself that
            // nobody had bound when it connected.
            let Some(from) = sender.sent_from() else { return true };
            match self.live_receiver(Proto::Udp, to) {
                Some(receiver) => _ = self.deliver(net, Proto::Udp, from, receiver, payload),
                None => self.report_error(net, icmp::port_unreachable(from, to, payload)),
            }
            return true;
        }
        let Some(route) = self.route_through(net, to.ip()) else { return true };
        let Some(local) = sender.local else { return true };
        let ttl = sender.options.hop_limit(sender.family == Family::V6);
        match proto {
            Proto::Udp => {
                if net.send_udp(route, local.port(), to, ttl, payload).is_err() {
                    return false;
                }
                self.udp_counters.out_datagrams += 1;
            }
            Proto::Raw if !sender.is_raw_icmp() => {
                let hdrincl = sender.options.is_on(libc::IPPROTO_IP, libc::IP_HDRINCL);
                let addresses = (route.source, to.ip());
                let packet = raw::raw_packet(sender.raw_protocol, addresses, ttl, payload, hdrincl);
                if let Some((protocol, packet)) = packet {
                    net.send_raw(route, to.ip(), protocol, &packet);
                }
            }
            Proto::Icmp | Proto::Raw => {
                let source = route.source;
                if let Some(packet) =
                    icmp::outgoing(proto, source, to.ip(), local.port(), ttl, payload)
                {
                    net.send_icmp(route, to.ip(), &packet);
                }
            }
            Proto::Tcp => {}
        }
        true
    }

    /// Answers an echo request that ping socket `id` sent to `to`, one of the
    /// stack's own addresses: the reply comes back at once, as from Linux's own
    /// loopback.
    pub(super) fn echo_locally(
        &mut self,
        net: &mut NetHost,
        id: SocketId,
        to: IpAddr,
        request: &[u8],
    ) {
        let Some(socket) = self.table.get(id) else { return };
        let (Some(local), Some(receiver)) = (socket.local, socket.name) else { return };
        let source = socket.source.unwrap_or(to);
        if let Some(reply) = icmp::echo_reply(to, source, local.port(), request) {
            net.last_ttl.insert(id, 64);
            _ = self.deliver(net, Proto::Icmp, SocketAddr::new(to, 0), receiver, &reply);
        }
    }

    /// Delivers datagrams smoltcp received to the carriers they are for.
    fn deliver_datagrams(&mut self, net: &mut NetHost) -> bool {
        let udp = net.received_udp();
        let mut busy = !udp.is_empty();
        for (from, to, payload, marks) in udp {
            if let Some(receiver) = self.deliver_to_port(net, from, to, &payload) {
                self.note(receiver, Noted { from, to: to.ip(), marks });
            }
        }
        let (icmp, others) = net.received_raw();
        busy |= !icmp.is_empty() || !others.is_empty();
        for packet in icmp {
            self.deliver_icmp(net, &packet);
        }
        for packet in others {
            self.deliver_raw(net, &packet);
        }
        busy
    }

    /// Delivers an ICMP packet that reached the stack: an echo reply to the ping
    /// socket it answers, every packet to each raw socket of its family, and an
    /// error to the socket that sent what it is about.
    fn deliver_icmp(&mut self, net: &mut NetHost, packet: &[u8]) {
        if let Some(arrival) = icmp::arrival(packet) {
            let mut receivers = Vec::new();
            if let Some(to) = arrival.echo_reply_to
                && let Some(receiver) = self.live_receiver(Proto::Icmp, to)
            {
                receivers.push((Proto::Icmp, receiver, arrival.message));
            }
            let icmp = arrival.family.icmp_protocol();
            for name in self.table.raw_receivers(arrival.family, icmp) {
                receivers.push((Proto::Raw, name, arrival.raw));
            }
            for (proto, receiver, bytes) in receivers {
                if let Some(id) = self.table.named(&receiver) {
                    net.last_ttl.insert(id, arrival.ttl);
                }
                _ = self.deliver(net, proto, arrival.from, receiver, bytes);
            }
        }
        if let Some(error) = icmp::error(packet) {
            self.report_error(net, error);
        }
    }

    /// Delivers a packet of another IP protocol than ICMP that reached the
    /// stack to each raw socket of its family and protocol (smoltcp handles
    /// TCP and UDP all the same).
    fn deliver_raw(&mut self, net: &mut NetHost, packet: &[u8]) {
        let Some((arrival, protocol)) = icmp::arrival(packet).zip(raw::protocol_of(packet)) else {
            return;
        };
        for receiver in self.table.raw_receivers(arrival.family, protocol) {
            if let Some(id) = self.table.named(&receiver) {
                net.last_ttl.insert(id, arrival.ttl);
            }
            _ = self.deliver(net, Proto::Raw, arrival.from, receiver, arrival.raw);
        }
    }

    /// Delivers UDP datagram `payload` from `from` to the socket of the stack's
    /// that receives traffic to `to`; returns its carrier's name if it took it.
    ///
    /// A receiver whose carrier has closed since it bound is found out by the
    /// kernel's refusal of its name, then forgotten, and the next is tried: the
    /// test [`live_receiver`](SmoltcpStack::live_receiver) makes with a probe
    /// socket per call, here for free on every datagram.
    fn deliver_to_port(
        &mut self,
        net: &mut NetHost,
        from: SocketAddr,
        to: SocketAddr,
        payload: &[u8],
    ) -> Option<EndpointName> {
        loop {
            let Some(binding) = self.table.ports.receiver(Proto::Udp, to) else {
                self.udp_counters.no_ports += 1;
                return None;
            };
            let (name, socket) = (binding.name, binding.socket);
            match self.deliver(net, Proto::Udp, from, name, payload) {
                Ok(()) => return Some(name),
                Err(Errno::ECONNREFUSED) => self.forget_closed_receiver(Proto::Udp, to.port(), socket),
                Err(_) => return None,
            }
        }
    }

    /// Sends `payload` to carrier `receiver` from the remote standing for `from`;
    /// `ECONNREFUSED` if no carrier holds that name any more.
    fn deliver(
        &mut self,
        net: &mut NetHost,
        proto: Proto,
        from: SocketAddr,
        receiver: EndpointName,
        payload: &[u8],
    ) -> Result<(), Errno> {
        // A carrier connected to the remote has its own end for it.
        let fd = match net.privates.get(&receiver).filter(|p| p.remote == (proto, from)) {
            Some(private) => private.end.as_raw_fd(),
            None => {
                let remote = net.remote(proto, from, &mut self.carriers).ok_or(Errno::ENOBUFS)?;
                self.table.record_stand_in(remote.id, remote.name, proto, from);
                remote.fd()
            }
        };
        let to = UnixAddr::new_abstract(&receiver.0)?;
        // A full receiver drops the datagram, as Linux's socket would.
        let sent = sendto(fd, payload, &to, MsgFlags::MSG_DONTWAIT);
        if proto == Proto::Udp {
            match sent {
                Ok(_) => self.udp_counters.in_datagrams += 1,
                Err(Errno::EAGAIN) => self.udp_counters.rcvbuf_errors += 1,
                Err(_) => {}
            }
        }
        sent.map(drop)
    }

    /// Notes, for a `receiver` that asked for control messages, what the
    /// network side saw of the datagram just handed to it.
    fn note(&mut self, receiver: EndpointName, noted: Noted) {
        /// Datagrams noted per socket; beyond, the oldest are forgotten (a
        /// program reading with plain `recv` never collects them): about 3 KB
        /// of the supervisor's per socket at most, less than the program's
        /// own socket costs the kernel.
        const MOST_NOTED: usize = 64;
        let Some(id) = self.table.named(&receiver) else { return };
        if !self.wants_controls(id) {
            return;
        }
        if self.noted.len() >= MOST_NOTED && !self.noted.contains_key(&id) {
            let table = &self.table;
            self.noted.retain(|id, _| table.get(*id).is_some());
        }
        let queue = self.noted.entry(id).or_default();
        if queue.len() >= MOST_NOTED {
            queue.pop_front();
        }
        queue.push_back(noted);
    }

    /// The carrier name datagrams for remote `(proto, to)` go to, made on first use.
    pub(super) fn remote_name(&mut self, proto: Proto, to: SocketAddr) -> Option<EndpointName> {
        let net = self.net.as_mut()?;
        let remote = net.remote(proto, to, &mut self.carriers)?;
        self.table.record_stand_in(remote.id, remote.name, proto, to);
        Some(remote.name)
    }

    /// Marks the carriers whose errors are due (see `errqueue`'s `RAISE_DELAY`).
    /// What a carrier sent its end is forwarded first: the marking empties the
    /// end's queue.
    fn raise_due(&mut self, net: &mut NetHost, now: Instant) {
        for carrier in net.take_due_raises(now) {
            self.forward_sent(net, carrier);
            if let Some(private) = net.privates.get(&carrier) {
                private.raise(carrier);
            }
        }
    }
}
