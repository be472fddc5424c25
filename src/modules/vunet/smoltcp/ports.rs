//! The port table of one stack, with Linux's rules for who may bind what.
//!
//! smoltcp accepts duplicate binds and rejects port 0, so netvm keeps the table
//! itself: `EADDRINUSE` where Linux gives it, ephemeral ports from Linux's default
//! range (a virtual stack is a host of its own, not the host's narrow range), and
//! `SO_REUSEADDR` / `SO_REUSEPORT` as in `inet_csk_bind_conflict` and
//! `udp_lib_lport_inuse`. Entries whose socket has closed are noticed lazily (the
//! holder check of [`EndpointName::is_held`]) when they stand in the way.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;

use nix::errno::Errno;

use super::endpoint::{EndpointName, SockType};
use crate::fdtable::SocketId;
use crate::modules::vunet::stack::shrink_idle;

/// Linux's default `ip_local_port_range`.
pub const EPHEMERAL: RangeInclusive<u16> = 32768..=60999;

/// The ephemeral ports of a socket whose `IP_LOCAL_PORT_RANGE` is `option`
/// (`low | high << 16`; 0 is unset): each bound that falls inside the host's
/// range narrows it (`inet_sk_get_local_port_range`).
pub fn ephemeral_range(option: i32) -> RangeInclusive<u16> {
    let (own_low, own_high) = (option as u32 as u16, (option as u32 >> 16) as u16);
    let (mut low, mut high) = (*EPHEMERAL.start(), *EPHEMERAL.end());
    if (low..=high).contains(&own_low) {
        low = own_low;
    }
    if (low..=high).contains(&own_high) {
        high = own_high;
    }
    low..=high
}

/// The transport protocols with ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
    /// A ping socket (`SOCK_DGRAM`, `IPPROTO_ICMP`): its "port" is the echo identifier.
    Icmp,
    /// A raw ICMP socket (`SOCK_RAW`): no port.
    Raw,
}

impl Proto {
    /// The type of the `AF_UNIX` socket that carries this protocol: a stream for
    /// TCP, datagrams (boundaries kept) for UDP.
    pub fn carrier(self) -> SockType {
        match self {
            Self::Tcp => SockType::Stream,
            Self::Udp | Self::Icmp | Self::Raw => SockType::Datagram,
        }
    }

    /// Whether a disconnect gives up the port the program's bind did not fix
    /// (`__udp_disconnect`, which ping sockets share), to be bound again by the
    /// next send.
    pub fn unhashes(self) -> bool {
        matches!(self, Self::Udp | Self::Icmp)
    }
}

/// What a bound address covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `0.0.0.0`.
    AnyV4,
    /// `::`, which also covers IPv4 unless `IPV6_V6ONLY` is set.
    AnyV6 {
        v6only: bool,
    },
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl Scope {
    /// The scope of binding `ip` (a v4-mapped IPv6 address is its IPv4 address).
    pub fn of(ip: IpAddr, v6only: bool) -> Self {
        match ip {
            IpAddr::V4(v4) if v4.is_unspecified() => Self::AnyV4,
            IpAddr::V4(v4) => Self::V4(v4),
            IpAddr::V6(v6) if v6.is_unspecified() => Self::AnyV6 { v6only },
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(Self::V6(v6), Self::V4),
        }
    }

    fn overlaps(self, other: Self) -> bool {
        use Scope::*;
        match (self, other) {
            (AnyV6 { .. }, AnyV6 { .. }) => true,
            (AnyV4, AnyV4) | (AnyV4, V4(_)) | (V4(_), AnyV4) => true,
            (AnyV4, AnyV6 { v6only }) | (AnyV6 { v6only }, AnyV4) => !v6only,
            (AnyV6 { v6only }, V4(_)) | (V4(_), AnyV6 { v6only }) => !v6only,
            (AnyV6 { .. }, V6(_)) | (V6(_), AnyV6 { .. }) => true,
            (V4(a), V4(b)) => a == b,
            (V6(a), V6(b)) => a == b,
            (V4(_), V6(_)) | (V6(_), V4(_)) | (AnyV4, V6(_)) | (V6(_), AnyV4) => false,
        }
    }

    /// Whether traffic to `ip` reaches a socket bound with this scope.
    pub fn accepts(self, ip: IpAddr) -> bool {
        self.overlaps(Self::of(ip, false))
    }

    fn is_wildcard(self) -> bool {
        matches!(self, Self::AnyV4 | Self::AnyV6 { .. })
    }
}

/// One bound socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub socket: SocketId,
    pub name: EndpointName,
    pub scope: Scope,
    pub reuse_addr: bool,
    pub reuse_port: bool,
    pub listening: bool,
}

/// The bound ports of one stack.
#[derive(Debug)]
pub struct PortTable {
    bound: HashMap<(Proto, u16), Vec<Binding>>,
    next_ephemeral: u16,
}

impl PortTable {
    /// An empty table; `seed` spreads the first ephemeral port like Linux's hash.
    pub fn new(seed: u16) -> Self {
        let span = EPHEMERAL.end() - EPHEMERAL.start() + 1;
        Self { bound: HashMap::new(), next_ephemeral: EPHEMERAL.start() + seed % span }
    }

    /// Gives back the room of many ports let go of.
    pub fn shrink_idle(&mut self) {
        shrink_idle(&mut self.bound);
    }

    /// Binds `binding` to `port` (0: an ephemeral port from `range`) and returns
    /// the port. `is_held` tells whether a binding's socket still exists.
    pub fn bind(
        &mut self,
        proto: Proto,
        port: u16,
        range: RangeInclusive<u16>,
        binding: Binding,
        is_held: impl Fn(&EndpointName) -> bool,
    ) -> Result<u16, Errno> {
        let port = if port == 0 {
            self.pick_ephemeral(proto, range, &binding, &is_held).ok_or(Errno::EADDRINUSE)?
        } else if self.conflict(proto, port, &binding, &is_held) {
            return Err(Errno::EADDRINUSE);
        } else {
            port
        };
        self.bound.entry((proto, port)).or_default().push(binding);
        Ok(port)
    }

    /// Marks a bound TCP socket listening; `EADDRINUSE` if another socket already
    /// listens where it would (Linux checks again at `listen`).
    pub fn listen(
        &mut self,
        port: u16,
        socket: SocketId,
        is_held: impl Fn(&EndpointName) -> bool,
    ) -> Result<(), Errno> {
        let key = (Proto::Tcp, port);
        let Some(mut me) = self.take(key, socket) else {
            return Err(Errno::EINVAL);
        };
        me.listening = true;
        if self.conflict(Proto::Tcp, port, &me, &is_held) {
            me.listening = false;
            self.bound.entry(key).or_default().push(me);
            return Err(Errno::EADDRINUSE);
        }
        self.bound.entry(key).or_default().push(me);
        Ok(())
    }

    /// Undoes [`listen`](Self::listen) (the carrier's own `listen` failed).
    pub fn unlisten(&mut self, port: u16, socket: SocketId) {
        let list = self.bound.get_mut(&(Proto::Tcp, port)).into_iter().flatten();
        list.filter(|b| b.socket == socket).for_each(|b| b.listening = false);
    }

    /// Whether some socket still listens on TCP `port`.
    pub fn is_listened(&self, port: u16) -> bool {
        self.bound.get(&(Proto::Tcp, port)).is_some_and(|list| list.iter().any(|b| b.listening))
    }

    /// Whether some socket of `proto` is still bound to `port`.
    pub fn is_bound(&self, proto: Proto, port: u16) -> bool {
        self.bound.contains_key(&(proto, port))
    }

    /// Sets the reuse flags that socket `socket`'s binding to `port` is judged
    /// by: Linux reads them from the bound socket at each later bind, so a
    /// change after the bind counts.
    pub fn set_reuse(&mut self, proto: Proto, port: u16, socket: SocketId, reuse: (bool, bool)) {
        let list = self.bound.get_mut(&(proto, port));
        if let Some(binding) = list.and_then(|l| l.iter_mut().find(|b| b.socket == socket)) {
            (binding.reuse_addr, binding.reuse_port) = reuse;
        }
    }

    /// Forgets a socket's binding.
    pub fn unbind(&mut self, proto: Proto, port: u16, socket: SocketId) {
        self.take((proto, port), socket);
    }

    /// The socket that receives traffic for `to`: a listener for TCP, a bound socket
    /// for UDP. A binding to the exact address wins over a wildcard, as in Linux.
    pub fn receiver(&self, proto: Proto, to: SocketAddr) -> Option<&Binding> {
        let candidates = self.bound.get(&(proto, to.port()))?;
        let eligible =
            |b: &&Binding| (proto != Proto::Tcp || b.listening) && b.scope.accepts(to.ip());
        candidates.iter().filter(eligible).max_by_key(|b| !b.scope.is_wildcard())
    }

    /// The socket that sends from `local`: bound there (exactly, or to its
    /// wildcard), and for TCP not a listener.
    pub fn sender(&self, proto: Proto, local: SocketAddr) -> Option<&Binding> {
        let candidates = self.bound.get(&(proto, local.port()))?;
        let eligible = |b: &&Binding| !b.listening && b.scope.accepts(local.ip());
        candidates.iter().filter(eligible).max_by_key(|b| !b.scope.is_wildcard())
    }

    fn take(&mut self, key: (Proto, u16), socket: SocketId) -> Option<Binding> {
        let list = self.bound.get_mut(&key)?;
        let at = list.iter().position(|b| b.socket == socket)?;
        let binding = list.swap_remove(at);
        if list.is_empty() {
            self.bound.remove(&key);
        }
        Some(binding)
    }

    /// Whether `new` may not bind `port`; drops stale entries met on the way.
    fn conflict(
        &mut self,
        proto: Proto,
        port: u16,
        new: &Binding,
        is_held: &impl Fn(&EndpointName) -> bool,
    ) -> bool {
        let Some(list) = self.bound.get_mut(&(proto, port)) else {
            return false;
        };
        let clashes = |old: &Binding| {
            let both_reuse_addr = new.reuse_addr && old.reuse_addr;
            let both_reuse_port = new.reuse_port && old.reuse_port;
            let shared = match proto {
                Proto::Tcp => {
                    // SO_REUSEADDR gives way only to a socket already listening.
                    both_reuse_port || (both_reuse_addr && !old.listening)
                }
                Proto::Udp | Proto::Icmp | Proto::Raw => both_reuse_port || both_reuse_addr,
            };
            old.socket != new.socket && old.scope.overlaps(new.scope) && !shared
        };
        if !list.iter().any(clashes) {
            return false;
        }
        list.retain(|old| !clashes(old) || is_held(&old.name));
        let still = list.iter().any(clashes);
        if list.is_empty() {
            self.bound.remove(&(proto, port));
        }
        still
    }

    /// A free port of `range`, searched from the table's cursor on (from where
    /// the cursor falls in a narrower range).
    fn pick_ephemeral(
        &mut self,
        proto: Proto,
        range: RangeInclusive<u16>,
        binding: &Binding,
        is_held: &impl Fn(&EndpointName) -> bool,
    ) -> Option<u16> {
        let (low, high) = (u32::from(*range.start()), u32::from(*range.end()));
        let span = high - low + 1;
        let first = u32::from(self.next_ephemeral).saturating_sub(low) % span;
        for i in 0..span {
            let port = (low + (first + i) % span) as u16;
            if !self.conflict(proto, port, binding, is_held) {
                let next = if port == *EPHEMERAL.end() { *EPHEMERAL.start() } else { port + 1 };
                if EPHEMERAL.contains(&next) {
                    self.next_ephemeral = next;
                }
                return Some(port);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(n: u64, ip: &str, reuse_addr: bool) -> Binding {
        Binding {
            socket: SocketId(n),
            name: EndpointName([n as u8; 13]),
            scope: Scope::of(ip.parse().unwrap(), false),
            reuse_addr,
            reuse_port: false,
            listening: false,
        }
    }

    const HELD: fn(&EndpointName) -> bool = |_| true;

    #[test]
    fn a_socket_narrows_its_ephemeral_ports() {
        assert_eq!(ephemeral_range(0), EPHEMERAL);
        assert_eq!(ephemeral_range((40000u32 | 40010 << 16) as i32), 40000..=40010);
        // Bounds outside the host's range are ignored.
        assert_eq!(ephemeral_range((1000u32 | 40000 << 16) as i32), 32768..=40000);
        let mut t = PortTable::new(0);
        let range = ephemeral_range((42000u32 | 42000 << 16) as i32);
        let mut one =
            |n| t.bind(Proto::Udp, 0, range.clone(), binding(n, "127.0.0.1", false), HELD);
        assert_eq!(one(1), Ok(42000));
        assert_eq!(one(2), Err(Errno::EADDRINUSE));
    }

    #[test]
    fn same_port_same_address_conflicts() {
        let mut t = PortTable::new(0);
        assert_eq!(t.bind(Proto::Tcp, 80, EPHEMERAL, binding(1, "127.0.0.1", false), HELD), Ok(80));
        assert_eq!(
            t.bind(Proto::Tcp, 80, EPHEMERAL, binding(2, "127.0.0.1", false), HELD),
            Err(Errno::EADDRINUSE)
        );
        assert_eq!(
            t.bind(Proto::Tcp, 80, EPHEMERAL, binding(3, "0.0.0.0", false), HELD),
            Err(Errno::EADDRINUSE)
        );
        assert_eq!(t.bind(Proto::Tcp, 80, EPHEMERAL, binding(4, "127.0.0.2", false), HELD), Ok(80));
        assert_eq!(t.bind(Proto::Udp, 80, EPHEMERAL, binding(5, "127.0.0.1", false), HELD), Ok(80));
    }

    #[test]
    fn dual_stack_wildcards_cover_ipv4_unless_v6only() {
        let mut t = PortTable::new(0);
        t.bind(Proto::Tcp, 80, EPHEMERAL, binding(1, "::", false), HELD).unwrap();
        assert_eq!(
            t.bind(Proto::Tcp, 80, EPHEMERAL, binding(2, "0.0.0.0", false), HELD),
            Err(Errno::EADDRINUSE)
        );
        let mut t = PortTable::new(0);
        let mut v6only = binding(1, "::", false);
        v6only.scope = Scope::AnyV6 { v6only: true };
        t.bind(Proto::Tcp, 80, EPHEMERAL, v6only, HELD).unwrap();
        assert_eq!(t.bind(Proto::Tcp, 80, EPHEMERAL, binding(2, "0.0.0.0", false), HELD), Ok(80));
    }

    #[test]
    fn reuse_addr_shares_until_someone_listens() {
        let mut t = PortTable::new(0);
        t.bind(Proto::Tcp, 80, EPHEMERAL, binding(1, "0.0.0.0", true), HELD).unwrap();
        assert_eq!(t.bind(Proto::Tcp, 80, EPHEMERAL, binding(2, "0.0.0.0", true), HELD), Ok(80));
        assert_eq!(t.listen(80, SocketId(1), HELD), Ok(()));
        assert_eq!(t.listen(80, SocketId(2), HELD), Err(Errno::EADDRINUSE));
        assert_eq!(
            t.bind(Proto::Tcp, 80, EPHEMERAL, binding(3, "0.0.0.0", true), HELD),
            Err(Errno::EADDRINUSE)
        );
    }

    #[test]
    fn stale_bindings_are_dropped_when_in_the_way() {
        let mut t = PortTable::new(0);
        t.bind(Proto::Tcp, 80, EPHEMERAL, binding(1, "0.0.0.0", false), HELD).unwrap();
        assert_eq!(
            t.bind(Proto::Tcp, 80, EPHEMERAL, binding(2, "0.0.0.0", false), |_| false),
            Ok(80)
        );
    }

    #[test]
    fn ephemeral_ports_come_from_linux_range_and_skip_used_ones() {
        let mut t = PortTable::new(0);
        let first = t.bind(Proto::Tcp, 0, EPHEMERAL, binding(1, "127.0.0.1", false), HELD).unwrap();
        assert!(EPHEMERAL.contains(&first));
        t.bind(Proto::Tcp, first + 1, EPHEMERAL, binding(2, "127.0.0.1", false), HELD).unwrap();
        let second =
            t.bind(Proto::Tcp, 0, EPHEMERAL, binding(3, "127.0.0.1", false), HELD).unwrap();
        assert_eq!(second, first + 2);
    }

    #[test]
    fn receivers_prefer_exact_addresses() {
        let mut t = PortTable::new(0);
        t.bind(Proto::Udp, 53, EPHEMERAL, binding(1, "0.0.0.0", true), HELD).unwrap();
        let lone = binding(9, "127.0.0.1", false);
        assert_eq!(t.bind(Proto::Udp, 53, EPHEMERAL, lone, HELD), Err(Errno::EADDRINUSE));
        t.bind(Proto::Udp, 53, EPHEMERAL, binding(2, "127.0.0.1", true), HELD).unwrap();
        let to = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(t.receiver(Proto::Udp, to("127.0.0.1:53")).unwrap().socket, SocketId(2));
        assert_eq!(t.receiver(Proto::Udp, to("127.0.0.9:53")).unwrap().socket, SocketId(1));
        assert!(t.receiver(Proto::Udp, to("[::1]:53")).is_none());
        assert!(t.receiver(Proto::Tcp, to("127.0.0.1:53")).is_none());
    }

    #[test]
    fn listeners_only_for_tcp() {
        let mut t = PortTable::new(0);
        t.bind(Proto::Tcp, 80, EPHEMERAL, binding(1, "::", false), HELD).unwrap();
        let to: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert!(t.receiver(Proto::Tcp, to).is_none());
        t.listen(80, SocketId(1), HELD).unwrap();
        assert_eq!(t.receiver(Proto::Tcp, to).unwrap().socket, SocketId(1));
        t.unbind(Proto::Tcp, 80, SocketId(1));
        assert!(t.receiver(Proto::Tcp, to).is_none());
    }
}
