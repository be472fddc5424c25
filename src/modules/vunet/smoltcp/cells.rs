//! The smoltcp sockets of a stack's network side, each in a socket set of its own.
//!
//! smoltcp finds the socket a frame is for, and the sockets with something to
//! send, by walking every socket of the set it is polled with: with thousands of
//! connections, every frame and every round would cost thousands of steps. So each
//! TCP connection and each UDP port gets a set of one, a *cell*; frames are sorted
//! to their cell here, by 4-tuple or by port, before smoltcp sees them
//! ([`Destination::of`]); a cell is polled only when something touched it (a
//! frame, its carrier, its timer), and timers wait in a heap. The work of a frame,
//! a round or a timer is then independent of how many sockets the stack holds.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use smoltcp::iface::{SocketHandle, SocketSet};

use crate::modules::vunet::stack::shrink_idle;
use smoltcp::socket::{AnySocket, tcp};
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket, UdpPacket,
};

/// A cell's name, never reused within a stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct CellId(u64);

/// The two ends of a TCP connection, as the stack sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Tuple {
    /// The stack's own end.
    pub local: SocketAddr,
    /// The other host's end.
    pub remote: SocketAddr,
}

impl Tuple {
    /// The connection from `local` to `remote` as a socket names them (an
    /// IPv6 socket's IPv4 ends v4-mapped), in the plain form smoltcp uses.
    pub fn between(local: SocketAddr, remote: SocketAddr) -> Self {
        let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
        Self { local: canonical(local), remote: canonical(remote) }
    }

    /// The ends of `tcp`, once it has both.
    pub fn of(tcp: &tcp::Socket) -> Option<Self> {
        let (local, remote) = (tcp.local_endpoint()?, tcp.remote_endpoint()?);
        Some(Self {
            local: SocketAddr::new(local.addr.into(), local.port),
            remote: SocketAddr::new(remote.addr.into(), remote.port),
        })
    }
}

/// Which socket an incoming frame is for, read from its headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Destination {
    /// A TCP segment; `opening` when it is a SYN without ACK.
    Tcp { tuple: Tuple, opening: bool },
    /// A UDP datagram to port `port` of the stack; `empty` without payload
    /// (which adds nothing to a socket's queued bytes).
    Udp { port: u16, empty: bool },
    /// Anything else (ARP, ICMP, neighbour discovery, fragments, IPv6 extension
    /// headers): the interface's general sockets take it.
    General,
}

impl Destination {
    /// The destination of Ethernet frame `frame`.
    pub fn of(frame: &[u8]) -> Self {
        Self::parse(frame).unwrap_or(Self::General)
    }

    /// The transport protocol, source, destination and transport bytes of the
    /// unfragmented IP packet in Ethernet frame `frame`.
    fn transport(frame: &[u8]) -> Option<(IpProtocol, IpAddr, IpAddr, &[u8])> {
        let ethernet = EthernetFrame::new_checked(frame).ok()?;
        let (protocol, src, dst, payload): (_, IpAddr, IpAddr, &[u8]) = match ethernet.ethertype()
        {
            EthernetProtocol::Ipv4 => {
                let ip = Ipv4Packet::new_checked(ethernet.payload()).ok()?;
                if ip.more_frags() || ip.frag_offset() != 0 {
                    return None;
                }
                let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
                (ip.next_header(), src, dst, &ethernet.payload()[ip.header_len() as usize..])
            }
            EthernetProtocol::Ipv6 => {
                let ip = Ipv6Packet::new_checked(ethernet.payload()).ok()?;
                let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
                (ip.next_header(), src, dst, ip.payload())
            }
            _ => return None,
        };
        Some((protocol, src, dst, payload))
    }

    fn parse(frame: &[u8]) -> Option<Self> {
        let (protocol, src, dst, payload) = Self::transport(frame)?;
        match protocol {
            IpProtocol::Tcp => {
                let tcp = TcpPacket::new_checked(payload).ok()?;
                let tuple = Tuple {
                    local: SocketAddr::new(dst, tcp.dst_port()),
                    remote: SocketAddr::new(src, tcp.src_port()),
                };
                Some(Self::Tcp { tuple, opening: tcp.syn() && !tcp.ack() })
            }
            IpProtocol::Udp => {
                let udp = UdpPacket::new_checked(payload).ok()?;
                Some(Self::Udp { port: udp.dst_port(), empty: udp.len() == 8 })
            }
            _ => None,
        }
    }
}

/// One smoltcp socket in a set of its own, and what the stack uses it for.
pub(super) struct Cell<R> {
    /// The interface (index among the plugged ones) it belongs to.
    pub iface: usize,
    pub set: SocketSet<'static>,
    pub handle: SocketHandle,
    pub role: R,
    /// The connection it is indexed under, if any.
    tuple: Option<Tuple>,
    /// When its timer is due (the one entry of the heap that counts).
    due: Option<Instant>,
    /// Touched since its last turn.
    touched: bool,
}

impl<R> Cell<R> {
    /// Its socket, as a TCP socket (every cell but a UDP port's is one).
    pub fn tcp(&mut self) -> &mut tcp::Socket<'static> {
        self.set.get_mut::<tcp::Socket>(self.handle)
    }

    /// Its socket, as type `T`.
    pub fn socket<T: AnySocket<'static>>(&mut self) -> &mut T {
        self.set.get_mut::<T>(self.handle)
    }
}

/// The cells of a stack: by name, by connection, by due time, and those touched.
pub(super) struct Cells<R> {
    cells: HashMap<CellId, Cell<R>>,
    next: u64,
    /// TCP connections by interface and ends.
    by_tuple: HashMap<(usize, Tuple), CellId>,
    timers: BinaryHeap<Reverse<(Instant, CellId)>>,
    touched: Vec<CellId>,
    /// Cells removed since the room was last given back.
    gone: usize,
}

impl<R> Default for Cells<R> {
    fn default() -> Self {
        Self {
            cells: HashMap::new(),
            next: 0,
            by_tuple: HashMap::new(),
            timers: BinaryHeap::new(),
            touched: Vec::new(),
            gone: 0,
        }
    }
}

impl<R> Cells<R> {
    /// Puts `socket` in a new cell of interface `iface`, touched (so that its
    /// first turn comes in this round).
    pub fn add<T: AnySocket<'static>>(&mut self, iface: usize, socket: T, role: R) -> CellId {
        let id = CellId(self.next);
        self.next += 1;
        let mut set = SocketSet::new(Vec::with_capacity(1));
        let handle = set.add(socket);
        let cell = Cell { iface, set, handle, role, tuple: None, due: None, touched: true };
        self.cells.insert(id, cell);
        self.touched.push(id);
        id
    }

    /// Indexes cell `id` under connection `tuple` (replacing an older index).
    pub fn index(&mut self, id: CellId, tuple: Tuple) {
        let Some(cell) = self.cells.get_mut(&id) else { return };
        if let Some(old) = cell.tuple.replace(tuple) {
            self.by_tuple.remove(&(cell.iface, old));
        }
        self.by_tuple.insert((cell.iface, tuple), id);
    }

    /// The cell of connection `tuple` on interface `iface`.
    pub fn find(&self, iface: usize, tuple: &Tuple) -> Option<CellId> {
        self.by_tuple.get(&(iface, *tuple)).copied()
    }

    pub fn get(&self, id: CellId) -> Option<&Cell<R>> {
        self.cells.get(&id)
    }

    pub fn get_mut(&mut self, id: CellId) -> Option<&mut Cell<R>> {
        self.cells.get_mut(&id)
    }

    /// How many cells there are.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Takes cell `id` out, with its index.
    pub fn remove(&mut self, id: CellId) -> Option<Cell<R>> {
        let cell = self.cells.remove(&id)?;
        self.gone += 1;
        if let Some(tuple) = cell.tuple {
            self.by_tuple.remove(&(cell.iface, tuple));
        }
        Some(cell)
    }

    /// Marks cell `id` for a turn in the next round.
    pub fn touch(&mut self, id: CellId) {
        if let Some(cell) = self.cells.get_mut(&id)
            && !cell.touched
        {
            cell.touched = true;
            self.touched.push(id);
        }
    }

    /// Touches the cells whose timers are due by `now`.
    pub fn touch_due(&mut self, now: Instant) {
        while let Some(&Reverse((at, id))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            if self.cells.get(&id).is_some_and(|c| c.due == Some(at)) {
                self.cells.get_mut(&id).expect("checked").due = None;
                self.touch(id);
            }
        }
    }

    /// The cells touched since the last call, untouched again.
    pub fn take_touched(&mut self) -> Vec<CellId> {
        let touched = std::mem::take(&mut self.touched);
        for id in &touched {
            if let Some(cell) = self.cells.get_mut(id) {
                cell.touched = false;
            }
        }
        touched
    }

    /// Whether some cell waits for its turn.
    pub fn any_touched(&self) -> bool {
        !self.touched.is_empty()
    }

    /// Sets (or clears) cell `id`'s timer.
    pub fn schedule(&mut self, id: CellId, at: Option<Instant>) {
        let Some(cell) = self.cells.get_mut(&id) else { return };
        if cell.due == at {
            return;
        }
        cell.due = at;
        if let Some(at) = at {
            self.timers.push(Reverse((at, id)));
        }
    }

    /// When the next timer is due (dropping the heap's stale entries on the way).
    pub fn next_due(&mut self) -> Option<Instant> {
        while let Some(&Reverse((at, id))) = self.timers.peek() {
            if self.cells.get(&id).is_some_and(|c| c.due == Some(at)) {
                return Some(at);
            }
            self.timers.pop();
        }
        None
    }

    /// Whether most of the cells there were since the room was last given
    /// back are gone (a few dozen at least): connections that outlived their
    /// sockets (`TIME-WAIT`, a drain) end in a round, long after the sweep
    /// that shrank the rest.
    pub fn mostly_gone(&self) -> bool {
        self.gone >= 64 && self.gone > self.cells.len()
    }

    /// Gives back the room of many cells gone.
    pub fn shrink_idle(&mut self) {
        self.gone = 0;
        shrink_idle(&mut self.cells);
        shrink_idle(&mut self.by_tuple);
        shrink_idle(&mut self.timers);
    }

    /// Every cell, with its name.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (CellId, &mut Cell<R>)> {
        self.cells.iter_mut().map(|(id, cell)| (*id, cell))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{EthernetAddress, EthernetRepr, IpAddress, Ipv4Address, Ipv4Repr, TcpRepr};
    use smoltcp::wire::{TcpControl, TcpSeqNumber};
    use std::time::Duration;

    /// An Ethernet frame carrying a TCP segment 10.0.0.3:4000 -> 10.0.0.2:80.
    fn tcp_frame(control: TcpControl, ack: bool) -> Vec<u8> {
        let (src, dst) = (Ipv4Address::new(10, 0, 0, 3), Ipv4Address::new(10, 0, 0, 2));
        let tcp = TcpRepr {
            src_port: 4000,
            dst_port: 80,
            control,
            seq_number: TcpSeqNumber(1),
            ack_number: ack.then_some(TcpSeqNumber(1)),
            window_len: 100,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        };
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let ethernet = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 3]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype: EthernetProtocol::Ipv4,
        };
        let mut bytes = vec![0; ethernet.buffer_len() + ip.buffer_len() + tcp.buffer_len()];
        let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
        ethernet.emit(&mut frame);
        let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
        ip.emit(&mut packet, &Default::default());
        let mut segment = TcpPacket::new_unchecked(packet.payload_mut());
        let (s, d) = (IpAddress::Ipv4(src), IpAddress::Ipv4(dst));
        tcp.emit(&mut segment, &s, &d, &Default::default());
        bytes
    }

    #[test]
    fn frames_are_sorted_by_connection_and_opening() {
        let tuple = Tuple {
            local: "10.0.0.2:80".parse().unwrap(),
            remote: "10.0.0.3:4000".parse().unwrap(),
        };
        assert_eq!(
            Destination::of(&tcp_frame(TcpControl::Syn, false)),
            Destination::Tcp { tuple, opening: true }
        );
        assert_eq!(
            Destination::of(&tcp_frame(TcpControl::Syn, true)),
            Destination::Tcp { tuple, opening: false }
        );
        assert_eq!(
            Destination::of(&tcp_frame(TcpControl::None, true)),
            Destination::Tcp { tuple, opening: false }
        );
        assert_eq!(Destination::of(&[0; 10]), Destination::General);
    }

    /// A TCP socket with tiny buffers.
    fn small_tcp() -> tcp::Socket<'static> {
        tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 16]), tcp::SocketBuffer::new(vec![0; 16]))
    }

    #[test]
    fn only_the_latest_timer_of_a_cell_counts() {
        let mut cells = Cells::default();
        let id = cells.add(0, small_tcp(), ());
        cells.take_touched();
        let now = Instant::now();
        cells.schedule(id, Some(now + Duration::from_secs(5)));
        cells.schedule(id, Some(now + Duration::from_secs(1)));
        assert_eq!(cells.next_due(), Some(now + Duration::from_secs(1)));
        cells.schedule(id, Some(now + Duration::from_secs(9)));
        assert_eq!(cells.next_due(), Some(now + Duration::from_secs(9)));
        cells.touch_due(now + Duration::from_secs(6));
        assert!(!cells.any_touched(), "a stale entry touched the cell");
        cells.touch_due(now + Duration::from_secs(9));
        assert_eq!(cells.take_touched(), vec![id]);
        assert_eq!(cells.next_due(), None);
    }

    #[test]
    fn a_removed_cell_leaves_no_index() {
        let mut cells = Cells::default();
        let id = cells.add(1, small_tcp(), ());
        let tuple = Tuple {
            local: "10.0.0.2:80".parse().unwrap(),
            remote: "10.0.0.3:4000".parse().unwrap(),
        };
        cells.index(id, tuple);
        assert_eq!(cells.find(1, &tuple), Some(id));
        assert_eq!(cells.find(0, &tuple), None);
        cells.remove(id);
        assert_eq!(cells.find(1, &tuple), None);
        assert!(cells.get(id).is_none());
    }

    #[test]
    fn cells_gone_in_a_round_call_for_their_room_back() {
        let mut cells = Cells::default();
        let ids: Vec<CellId> = (0..200).map(|_| cells.add(0, small_tcp(), ())).collect();
        for &id in &ids[..60] {
            cells.remove(id);
        }
        assert!(!cells.mostly_gone(), "60 of 200 gone");
        for &id in &ids[60..150] {
            cells.remove(id);
        }
        assert!(cells.mostly_gone(), "150 of 200 gone");
        cells.shrink_idle();
        assert!(!cells.mostly_gone(), "the room was given back");
    }
}
