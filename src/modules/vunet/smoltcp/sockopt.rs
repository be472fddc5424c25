//! Socket options a carrier cannot answer for itself.
//!
//! `SOL_SOCKET` options mostly mean the same on the `AF_UNIX` carrier and are left to
//! the kernel (buffer sizes, timeouts, `SO_TYPE`, `SO_ERROR`...). The TCP, IP and IPv6
//! levels, and the `SOL_SOCKET` options that name the family or protocol, are kept
//! here, with Linux's defaults and its `EINVAL`/`ENOPROTOOPT` answers.

use std::collections::HashMap;
use std::net::IpAddr;

use nix::errno::Errno;

use super::ports::Proto;

/// The level of raw socket options (`ICMP_FILTER`).
const SOL_RAW: i32 = 255;

/// `IPPROTO_TCP`-level options netvm accepts, with Linux's defaults.
const TCP_DEFAULTS: &[(i32, i32)] = &[
    (libc::TCP_NODELAY, 0),
    (libc::TCP_MAXSEG, 536),
    (libc::TCP_CORK, 0),
    (libc::TCP_KEEPIDLE, 7200),
    (libc::TCP_KEEPINTVL, 75),
    (libc::TCP_KEEPCNT, 9),
    (libc::TCP_SYNCNT, 6),
    (libc::TCP_LINGER2, 60),
    (libc::TCP_DEFER_ACCEPT, 0),
    (libc::TCP_QUICKACK, 1),
    (libc::TCP_USER_TIMEOUT, 0),
    (libc::TCP_FASTOPEN, 0),
    (libc::TCP_NOTSENT_LOWAT, 0),
];

/// `IPPROTO_IP`-level options, with Linux's defaults.
const IP_DEFAULTS: &[(i32, i32)] = &[
    (libc::IP_TTL, 64),
    (libc::IP_TOS, 0),
    (libc::IP_RECVERR, 0),
    (libc::IP_RECVTTL, 0),
    (libc::IP_RECVTOS, 0),
    (libc::IP_RECVOPTS, 0),
    (libc::IP_RETOPTS, 0),
    (libc::IP_PKTINFO, 0),
    (libc::IP_MTU_DISCOVER, 1),
    (libc::IP_MULTICAST_TTL, 1),
    (libc::IP_MULTICAST_LOOP, 1),
    (libc::IP_FREEBIND, 0),
    (IP_LOCAL_PORT_RANGE, 0),
    (IP_ORIGDSTADDR, 0),
    // A raw socket's own IP header (`IPPROTO_RAW` sets it at once).
    (libc::IP_HDRINCL, 0),
    // Interfaces, by address and by index (see `interface_options.rs`).
    (libc::IP_MULTICAST_IF, 0),
    (libc::IP_UNICAST_IF, 0),
];

/// `IPPROTO_UDP`-level options, with Linux's defaults. They are kept, not
/// applied: a corked socket sends each datagram as it comes.
const UDP_DEFAULTS: &[(i32, i32)] =
    &[(libc::UDP_CORK, 0), (libc::UDP_SEGMENT, 0), (libc::UDP_GRO, 0)];

/// `IPV6_UNICAST_IF` (linux/in6.h): the interface unicast leaves by.
pub const IPV6_UNICAST_IF: i32 = 76;

/// `IPV6_FREEBIND` (linux/in6.h): the same flag as `IP_FREEBIND`, set at the IPv6 level.
pub const IPV6_FREEBIND: i32 = 78;

/// `IP_LOCAL_PORT_RANGE` (linux/in.h): the socket's own ephemeral port bounds,
/// `low | high << 16`.
pub const IP_LOCAL_PORT_RANGE: i32 = 51;

/// `SO_PEERPIDFD` (asm-generic/socket.h): a pidfd of the peer process.
const SO_PEERPIDFD: i32 = 77;

/// `IPPROTO_IPV6`-level options (besides `IPV6_V6ONLY`), with Linux's defaults.
const IPV6_DEFAULTS: &[(i32, i32)] = &[
    (libc::IPV6_UNICAST_HOPS, 64),
    (libc::IPV6_MULTICAST_HOPS, 1),
    (libc::IPV6_MULTICAST_LOOP, 1),
    (libc::IPV6_RECVERR, 0),
    (libc::IPV6_RECVPKTINFO, 0),
    (libc::IPV6_TCLASS, 0),
    (libc::IPV6_MTU_DISCOVER, 1),
    (IPV6_FREEBIND, 0),
    // RFC 2292's receive flags (linux/in6.h): kept, as Linux keeps them.
    (IPV6_2292PKTINFO, 0),
    (IPV6_2292HOPOPTS, 0),
    (IPV6_2292DSTOPTS, 0),
    (IPV6_2292RTHDR, 0),
    (IPV6_2292HOPLIMIT, 0),
    (IPV6_RECVTCLASS, 0),
    (IPV6_ORIGDSTADDR, 0),
    // Interfaces, by index (see `interface_options.rs`).
    (libc::IPV6_MULTICAST_IF, 0),
    (IPV6_UNICAST_IF, 0),
];

/// `IPV6_RECVTCLASS` (linux/in6.h): a traffic class message with each datagram.
pub const IPV6_RECVTCLASS: i32 = 66;
/// `IP_RECVORIGDSTADDR` and `IPV6_RECVORIGDSTADDR` (linux/in.h, in6.h): each
/// datagram's destination address and port, in a message of the same number.
pub const IP_ORIGDSTADDR: i32 = 20;
pub const IPV6_ORIGDSTADDR: i32 = 74;

/// RFC 2292's names of the IPv6 receive options (linux/in6.h).
const IPV6_2292PKTINFO: i32 = 2;
const IPV6_2292HOPOPTS: i32 = 3;
const IPV6_2292DSTOPTS: i32 = 4;
const IPV6_2292RTHDR: i32 = 5;
const IPV6_2292HOPLIMIT: i32 = 8;

/// `SO_BINDTOIFINDEX`, which the `libc` crate does not name.
pub const SO_BINDTOIFINDEX: i32 = 62;

/// Where an option is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keeper {
    /// `IP_MTU`, `IPV6_MTU`: the MTU of the connected socket's path.
    PathMtu,
    /// `IPV6_ADDRFORM` read: a connected TCP or UDP socket's family.
    AddressForm,
    /// The carrier socket answers it like the kernel's TCP/UDP would.
    Carrier,
    /// netvm answers it: an `int` option it keeps.
    Emulated,
    /// `IPV6_V6ONLY`: kept, and it changes how the socket binds.
    V6Only,
    /// `SO_REUSEPORT`: kept (a carrier refuses it), and it changes binding.
    ReusePort,
    /// `TCP_INFO`: a `struct tcp_info` made up from what netvm knows.
    TcpInfo,
    /// `SO_PEERCRED` and `SO_PEERPIDFD`: a TCP/IP socket has no peer process (a
    /// carrier would name the process at its other end).
    NoPeerProcess,
    /// `SO_ACCEPTCONN`: whether the socket listens (a closed listener's carrier
    /// still does).
    Listening,
    /// `SO_BINDTODEVICE` and `SO_BINDTOIFINDEX`: a link of the stack, by name or
    /// index (the carrier would look for it among the session's own devices).
    Device,
    /// An option of TCP or UDP netvm does not model: a kernel socket of the
    /// same kind answers (see `shadow.rs`).
    Kernel,
    /// Netfilter's options (iptables, ip6tables, arptables, ebtables, IPVS):
    /// a stack has no packet filter, and their values hold pointers that the
    /// kernel would follow in the supervisor. Where the host's kernel has the
    /// module, `EPERM` without `CAP_NET_ADMIN` (netfilter's first check);
    /// otherwise, and for an administrator, `ENOPROTOOPT`.
    PacketFilter,
    /// Answered with this error, never by a kernel socket: `TCP_ZEROCOPY_RECEIVE`
    /// (its value holds pointers; a carrier has no mapping to receive into).
    Refused(Errno),
}

/// Whether option `(level, name)` may be netfilter's (see
/// [`Keeper::PacketFilter`]) on a socket of that family (`is_v6`: IPv6
/// sockets take IPv4's too): the names its modules register that the IP
/// levels do not answer themselves, for getting and for setting (iptables,
/// arptables, ebtables, IPVS; ip6tables).
fn is_packet_filter(level: i32, name: i32, is_v6: bool, getting: bool) -> bool {
    let ranges: &[(i32, i32)] = match (level, getting) {
        (libc::IPPROTO_IP, false) => &[(64, 65), (96, 97), (128, 129), (1152, 1167)],
        (libc::IPPROTO_IP, true) => &[(64, 67), (96, 99), (128, 131), (1152, 1160)],
        (libc::IPPROTO_IPV6, false) if is_v6 => &[(64, 65)],
        // (IPV6_RECVTCLASS and IPV6_TCLASS, 66 and 67, are IPv6's own.)
        (libc::IPPROTO_IPV6, true) if is_v6 => &[(64, 65), (68, 69)],
        _ => &[],
    };
    ranges.iter().any(|&(low, high)| (low..=high).contains(&name))
}

/// Whether option `name` at `level` is a multicast membership netvm judges
/// (the block, unblock and filter forms are the kernel's).
pub fn is_membership(level: i32, name: i32) -> bool {
    let rfc3678 = [
        libc::MCAST_JOIN_GROUP,
        libc::MCAST_LEAVE_GROUP,
        libc::MCAST_JOIN_SOURCE_GROUP,
        libc::MCAST_LEAVE_SOURCE_GROUP,
    ];
    match level {
        libc::IPPROTO_IP => {
            rfc3678.contains(&name)
                || [
                    libc::IP_ADD_MEMBERSHIP,
                    libc::IP_DROP_MEMBERSHIP,
                    libc::IP_ADD_SOURCE_MEMBERSHIP,
                    libc::IP_DROP_SOURCE_MEMBERSHIP,
                ]
                .contains(&name)
        }
        libc::IPPROTO_IPV6 => {
            rfc3678.contains(&name)
                || [libc::IPV6_ADD_MEMBERSHIP, libc::IPV6_DROP_MEMBERSHIP].contains(&name)
        }
        _ => false,
    }
}

/// `TCP_ZEROCOPY_RECEIVE` (linux/tcp.h).
const TCP_ZEROCOPY_RECEIVE: i32 = 35;

/// Decides who answers option `(level, name)` on a socket of `proto`, or the
/// kernel's error for an option that does not exist there. `getting` says which
/// call asks: an IPv4 socket's `getsockopt` at a level it lacks is `EOPNOTSUPP`
/// (`ip_getsockopt`), everything else missing is `ENOPROTOOPT`.
pub fn keeper(
    proto: Proto,
    is_v6: bool,
    level: i32,
    name: i32,
    getting: bool,
) -> Result<Keeper, Errno> {
    if is_packet_filter(level, name, is_v6, getting) {
        return Ok(Keeper::PacketFilter);
    }
    if (level, name) == (libc::IPPROTO_TCP, TCP_ZEROCOPY_RECEIVE) && proto == Proto::Tcp {
        return Ok(Keeper::Refused(if getting { Errno::EINVAL } else { Errno::ENOPROTOOPT }));
    }
    // IPv6's level is an IPv6 socket's alone.
    let joins = (level != libc::IPPROTO_IPV6 || is_v6) && is_membership(level, name);
    if joins && !getting && matches!(proto, Proto::Tcp | Proto::Udp) {
        // Judged against the stack's links (see `interface_options.rs`).
        return Ok(Keeper::Emulated);
    }
    let modelled = modelled_keeper(proto, is_v6, level, name, getting);
    match proto {
        // What netvm leaves unmodelled of TCP and UDP, the kernel answers.
        Proto::Tcp | Proto::Udp if modelled.is_err() && level != libc::SOL_SOCKET => {
            Ok(Keeper::Kernel)
        }
        _ => modelled,
    }
}

/// The keepers of the options netvm models, and its errors for the rest (those
/// of ping and raw sockets, which have no kernel shadow).
fn modelled_keeper(
    proto: Proto,
    is_v6: bool,
    level: i32,
    name: i32,
    getting: bool,
) -> Result<Keeper, Errno> {
    let known = |table: &[(i32, i32)]| table.iter().any(|(n, _)| *n == name);
    let own_levels: &[i32] = match proto {
        Proto::Tcp => &[libc::SOL_SOCKET, libc::IPPROTO_IP, libc::IPPROTO_TCP],
        Proto::Udp => &[libc::SOL_SOCKET, libc::IPPROTO_IP, libc::IPPROTO_UDP],
        Proto::Icmp | Proto::Raw => &[libc::SOL_SOCKET, libc::IPPROTO_IP, SOL_RAW],
    };
    if getting && !is_v6 && !own_levels.contains(&level) {
        return Err(Errno::EOPNOTSUPP);
    }
    match (level, name) {
        (libc::IPPROTO_IP, libc::IP_MTU) if getting => return Ok(Keeper::PathMtu),
        (libc::IPPROTO_IPV6, libc::IPV6_MTU) if getting && is_v6 => return Ok(Keeper::PathMtu),
        (libc::IPPROTO_IPV6, libc::IPV6_ADDRFORM)
            if getting && is_v6 && matches!(proto, Proto::Tcp | Proto::Udp) =>
        {
            return Ok(Keeper::AddressForm);
        }
        _ => {}
    }
    match level {
        libc::SOL_SOCKET => Ok(match name {
            // SO_DEBUG: the carrier would judge the capability in the host's
            // namespace, which the session's programs have none in.
            libc::SO_DOMAIN | libc::SO_PROTOCOL | libc::SO_DEBUG => Keeper::Emulated,
            libc::SO_REUSEPORT => Keeper::ReusePort,
            libc::SO_PEERCRED | SO_PEERPIDFD if getting => Keeper::NoPeerProcess,
            libc::SO_ACCEPTCONN if getting => Keeper::Listening,
            libc::SO_BINDTODEVICE | SO_BINDTOIFINDEX => Keeper::Device,
            _ => Keeper::Carrier,
        }),
        libc::IPPROTO_TCP if proto == Proto::Tcp => match name {
            libc::TCP_INFO => Ok(Keeper::TcpInfo),
            _ if known(TCP_DEFAULTS) => Ok(Keeper::Emulated),
            _ => Err(Errno::ENOPROTOOPT),
        },
        libc::IPPROTO_IP if known(IP_DEFAULTS) => Ok(Keeper::Emulated),
        libc::IPPROTO_UDP if proto == Proto::Udp && known(UDP_DEFAULTS) => Ok(Keeper::Emulated),
        // ICMP_FILTER (raw IPv4) and ICMP6_FILTER (IPv6): kept, not applied.
        SOL_RAW if proto == Proto::Raw && !is_v6 && name == 1 => Ok(Keeper::Emulated),
        libc::IPPROTO_ICMPV6 if proto != Proto::Tcp && is_v6 && name == 1 => Ok(Keeper::Emulated),
        libc::IPPROTO_IPV6 if is_v6 && name == libc::IPV6_RECVHOPLIMIT => Ok(Keeper::Emulated),
        // Only a raw socket has a checksum offset to set.
        libc::IPPROTO_IPV6
            if is_v6 && name == libc::IPV6_CHECKSUM && matches!(proto, Proto::Icmp | Proto::Raw) =>
        {
            Ok(Keeper::Emulated)
        }
        libc::IPPROTO_IPV6 if is_v6 && name == libc::IPV6_V6ONLY => Ok(Keeper::V6Only),
        // A stream has no multicast hops to set (the kernel says how).
        libc::IPPROTO_IPV6
            if !getting && proto == Proto::Tcp && name == libc::IPV6_MULTICAST_HOPS =>
        {
            Err(Errno::ENOPROTOOPT)
        }
        libc::IPPROTO_IPV6 if is_v6 && known(IPV6_DEFAULTS) => Ok(Keeper::Emulated),
        _ => Err(Errno::ENOPROTOOPT),
    }
}

/// The emulated options of one socket.
#[derive(Clone, Debug, Default)]
pub struct Options {
    values: HashMap<(i32, i32), i32>,
    pub v6only: bool,
    pub reuse_port: bool,
    pub reuse_addr: bool,
    /// The link the socket is bound to (`SO_BINDTODEVICE`), by index; 0 for none.
    pub bound_device: u32,
    /// The multicast groups it joined, with the link of each (see
    /// `interface_options.rs`).
    pub memberships: Vec<(IpAddr, u32)>,
    /// The program set (or tried to set) one of the options its carrier keeps
    /// that a TCP socket it accepts inherits: until then, accepting need not
    /// copy them.
    pub inheritable_set: bool,
}

/// Where an option's value is kept: `IPV6_FREEBIND` and `IP_FREEBIND` are one flag.
fn slot(level: i32, name: i32) -> (i32, i32) {
    match (level, name) {
        (libc::IPPROTO_IPV6, IPV6_FREEBIND) => (libc::IPPROTO_IP, libc::IP_FREEBIND),
        other => other,
    }
}

impl Options {
    /// The value of an emulated `int` option.
    pub fn get(&self, level: i32, name: i32, family: i32, proto: Proto) -> i32 {
        let (level, name) = slot(level, name);
        if let Some(v) = self.values.get(&(level, name)) {
            return *v;
        }
        let table = match level {
            libc::SOL_SOCKET => {
                return match name {
                    libc::SO_DOMAIN => family,
                    libc::SO_DEBUG => 0,
                    _ => match proto {
                        Proto::Tcp => libc::IPPROTO_TCP,
                        Proto::Udp => libc::IPPROTO_UDP,
                        Proto::Icmp | Proto::Raw if family == libc::AF_INET6 => {
                            libc::IPPROTO_ICMPV6
                        }
                        Proto::Icmp | Proto::Raw => libc::IPPROTO_ICMP,
                    },
                };
            }
            libc::IPPROTO_TCP => TCP_DEFAULTS,
            libc::IPPROTO_IP => IP_DEFAULTS,
            libc::IPPROTO_UDP => UDP_DEFAULTS,
            _ => IPV6_DEFAULTS,
        };
        table.iter().find(|(n, _)| *n == name).map_or(0, |(_, v)| *v)
    }

    /// The TTL (IPv4) or hop limit (IPv6) the socket's packets leave with.
    pub fn hop_limit(&self, v6: bool) -> u8 {
        let (level, name) = if v6 {
            (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS)
        } else {
            (libc::IPPROTO_IP, libc::IP_TTL)
        };
        self.values.get(&(level, name)).map_or(64, |&v| v.clamp(1, 255) as u8)
    }

    /// Whether a flag option is set.
    pub fn is_on(&self, level: i32, name: i32) -> bool {
        self.values.get(&slot(level, name)).is_some_and(|&v| v != 0)
    }

    /// Whether the program set this option itself.
    pub fn is_set(&self, level: i32, name: i32) -> bool {
        self.values.contains_key(&slot(level, name))
    }

    /// Whether the socket may bind an address the host does not own
    /// (`IP_FREEBIND`, `IPV6_FREEBIND`).
    pub fn freebind(&self) -> bool {
        self.values.get(&(libc::IPPROTO_IP, libc::IP_FREEBIND)).is_some_and(|&v| v != 0)
    }

    /// Sets an emulated `int` option, with Linux's range checks for the few that have
    /// them.
    pub fn set(&mut self, level: i32, name: i32, value: i32, proto: Proto) -> Result<(), Errno> {
        let in_range = match (level, name) {
            (libc::SOL_SOCKET, libc::SO_DOMAIN | libc::SO_PROTOCOL) => {
                return Err(Errno::ENOPROTOOPT);
            }
            (libc::IPPROTO_IP, libc::IP_HDRINCL) if proto != Proto::Raw => {
                return Err(Errno::ENOPROTOOPT);
            }
            (libc::IPPROTO_IP, libc::IP_TTL) => value == -1 || (1..=255).contains(&value),
            (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS) => (-1..=255).contains(&value),
            // A stream has no multicast.
            (libc::IPPROTO_IP, libc::IP_MULTICAST_TTL) if proto == Proto::Tcp => false,
            (libc::IPPROTO_IP, libc::IP_MULTICAST_TTL) => (-1..=255).contains(&value),
            (libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS | libc::IPV6_TCLASS) => {
                (-1..=255).contains(&value)
            }
            (libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP) => (0..=1).contains(&value),
            // (`tcp_v4_do_setsockopt` takes 0, for the route's, or a segment
            // TCP can carry.)
            (libc::IPPROTO_TCP, libc::TCP_MAXSEG) => value == 0 || (88..=32767).contains(&value),
            (libc::IPPROTO_TCP, libc::TCP_SYNCNT) => (1..=127).contains(&value),
            (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE | libc::TCP_KEEPINTVL) => {
                (1..=32767).contains(&value)
            }
            (libc::IPPROTO_TCP, libc::TCP_KEEPCNT) => (1..=127).contains(&value),
            (libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT) => value >= 0,
            (libc::IPPROTO_IP, IP_LOCAL_PORT_RANGE) => {
                let (low, high) = (value as u32 & 0xffff, value as u32 >> 16);
                low == 0 || high == 0 || low <= high
            }
            _ => true,
        };
        if !in_range {
            return Err(Errno::EINVAL);
        }
        let stored = match (level, name) {
            (libc::IPPROTO_IP, libc::IP_TTL) if value == -1 => 64,
            (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS) if value == -1 => 64,
            (libc::IPPROTO_IP, libc::IP_MULTICAST_TTL) if value == -1 => 1,
            (libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS) if value == -1 => 1,
            (libc::IPPROTO_IPV6, libc::IPV6_TCLASS) if value == -1 => 0,
            // Flags: Linux keeps one bit of each.
            (
                libc::IPPROTO_IP,
                libc::IP_MULTICAST_LOOP
                | libc::IP_RECVERR
                | libc::IP_RECVTTL
                | libc::IP_RECVTOS
                | libc::IP_RECVOPTS
                | libc::IP_RETOPTS
                | libc::IP_PKTINFO
                | IP_ORIGDSTADDR
                | libc::IP_FREEBIND
                | libc::IP_HDRINCL,
            )
            | (
                libc::IPPROTO_IPV6,
                libc::IPV6_RECVERR
                | libc::IPV6_RECVPKTINFO
                | libc::IPV6_RECVHOPLIMIT
                | IPV6_RECVTCLASS
                | IPV6_ORIGDSTADDR
                | IPV6_FREEBIND,
            ) => i32::from(value != 0),
            // A TCP socket keeps the ECN bits of its traffic class to itself.
            (libc::IPPROTO_IPV6, libc::IPV6_TCLASS) if proto == Proto::Tcp => value & !0x3,
            (libc::IPPROTO_TCP, libc::TCP_NODELAY | libc::TCP_CORK)
            | (libc::SOL_SOCKET, libc::SO_DEBUG) => i32::from(value != 0),
            // A TCP socket keeps the ECN bits of IP_TOS to itself.
            (libc::IPPROTO_IP, libc::IP_TOS) if proto == Proto::Tcp => value & !0x3,
            _ => value,
        };
        self.values.insert(slot(level, name), stored);
        Ok(())
    }
}

/// How many bytes of an `optlen`-byte value `setsockopt` reads at `level`, or
/// `EINVAL`. An `int` option takes at least an `int`, but `ip_setsockopt` also
/// takes 1 to 3 bytes as a char, and nothing at all as 0 (except for the options
/// that insist on a value).
pub fn value_width(level: i32, name: i32, optlen: u32) -> Result<usize, Errno> {
    let optlen = optlen as i32;
    let int = size_of::<i32>() as i32;
    match optlen {
        _ if optlen < 0 => Err(Errno::EINVAL),
        _ if (level, name) == (libc::IPPROTO_IP, IP_LOCAL_PORT_RANGE) && optlen != int => {
            Err(Errno::EINVAL)
        }
        _ if optlen >= int => Ok(size_of::<i32>()),
        _ if level != libc::IPPROTO_IP => Err(Errno::EINVAL),
        0 if [libc::IP_TTL, libc::IP_MULTICAST_TTL, libc::IP_MULTICAST_LOOP, libc::IP_FREEBIND]
            .contains(&name) =>
        {
            Err(Errno::EINVAL)
        }
        0 => Ok(0),
        _ => Ok(1),
    }
}

/// An `int` option's value as `getsockopt` gives it into `room` bytes: whole,
/// except that `ip_getsockopt` gives a value that fits in a char as one byte when
/// the room is smaller than an `int`.
pub fn value_bytes(level: i32, value: i32, room: i32) -> Vec<u8> {
    if level == libc::IPPROTO_IP && (1..4).contains(&room) && (0..=255).contains(&value) {
        vec![value as u8]
    } else {
        value.to_ne_bytes().to_vec()
    }
}

/// The `SO_PRIORITY` an IPv4 type of service gives (`rt_tos2priority`): low delay
/// is interactive (6), throughput is bulk (2), both interactive bulk (4).
pub fn tos_priority(tos: i32) -> i32 {
    const BY_TOS: [i32; 16] = [0, 0, 0, 0, 2, 2, 2, 2, 6, 6, 6, 6, 4, 4, 4, 4];
    BY_TOS[((tos & 0x1e) >> 1) as usize]
}

/// A `struct tcp_info` for a socket in `state` (Linux's `TCP_ESTABLISHED` is 1).
pub fn tcp_info(state: u8) -> Vec<u8> {
    // struct tcp_info is 232 bytes on current kernels; programs pass its size and
    // read the fields they know. Report a healthy, idle loopback connection.
    let mut info = vec![0u8; 232];
    info[0] = state;
    let put =
        |info: &mut [u8], at: usize, v: u32| info[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    put(&mut info, 16, 65483); // tcpi_snd_mss
    put(&mut info, 20, 65483); // tcpi_rcv_mss
    put(&mut info, 68, 20); // tcpi_rtt (µs)
    put(&mut info, 72, 10); // tcpi_rttvar
    put(&mut info, 76, 0x7fff_ffff); // tcpi_snd_ssthresh
    put(&mut info, 80, 10); // tcpi_snd_cwnd
    put(&mut info, 84, 65483); // tcpi_advmss
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_answers_what() {
        assert_eq!(
            keeper(Proto::Tcp, false, libc::SOL_SOCKET, libc::SO_RCVBUF, true),
            Ok(Keeper::Carrier)
        );
        assert_eq!(
            keeper(Proto::Tcp, false, libc::SOL_SOCKET, libc::SO_DOMAIN, true),
            Ok(Keeper::Emulated)
        );
        assert_eq!(
            keeper(Proto::Tcp, false, libc::IPPROTO_TCP, libc::TCP_NODELAY, true),
            Ok(Keeper::Emulated)
        );
        // What TCP and UDP do not model, the kernel answers; a ping or raw
        // socket's are netvm's: a level the socket lacks is EOPNOTSUPP for an
        // IPv4 get, ENOPROTOOPT for a set.
        let udp_tcp =
            |getting| keeper(Proto::Udp, false, libc::IPPROTO_TCP, libc::TCP_NODELAY, getting);
        assert_eq!(udp_tcp(true), Ok(Keeper::Kernel));
        assert_eq!(
            keeper(Proto::Tcp, false, libc::IPPROTO_TCP, 9999, true),
            Ok(Keeper::Kernel)
        );
        let ping_tcp =
            |getting| keeper(Proto::Icmp, false, libc::IPPROTO_TCP, libc::TCP_NODELAY, getting);
        assert_eq!(ping_tcp(true), Err(Errno::EOPNOTSUPP));
        assert_eq!(ping_tcp(false), Err(Errno::ENOPROTOOPT));
        assert_eq!(
            keeper(Proto::Icmp, true, libc::IPPROTO_TCP, libc::TCP_NODELAY, true),
            Err(Errno::ENOPROTOOPT)
        );
        assert_eq!(
            keeper(Proto::Tcp, true, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, true),
            Ok(Keeper::V6Only)
        );
        // A stream's multicast hops read, but do not set, here.
        assert_eq!(
            keeper(Proto::Tcp, true, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, false),
            Ok(Keeper::Kernel)
        );
    }

    #[test]
    fn defaults_and_changes() {
        let mut o = Options::default();
        assert_eq!(o.get(libc::IPPROTO_IP, libc::IP_TTL, libc::AF_INET, Proto::Tcp), 64);
        assert_eq!(
            o.get(libc::SOL_SOCKET, libc::SO_PROTOCOL, libc::AF_INET, Proto::Udp),
            libc::IPPROTO_UDP
        );
        o.set(libc::IPPROTO_TCP, libc::TCP_NODELAY, 5, Proto::Tcp).unwrap();
        assert_eq!(o.get(libc::IPPROTO_TCP, libc::TCP_NODELAY, libc::AF_INET, Proto::Tcp), 1);
        assert_eq!(o.set(libc::IPPROTO_IP, libc::IP_TTL, 0, Proto::Tcp), Err(Errno::EINVAL));
        o.set(libc::IPPROTO_IP, libc::IP_TTL, -1, Proto::Tcp).unwrap();
        assert_eq!(o.get(libc::IPPROTO_IP, libc::IP_TTL, libc::AF_INET, Proto::Tcp), 64);
        // One flag, two names.
        o.set(libc::IPPROTO_IPV6, IPV6_FREEBIND, 1, Proto::Udp).unwrap();
        assert!(o.freebind());
        assert_eq!(o.get(libc::IPPROTO_IP, libc::IP_FREEBIND, libc::AF_INET6, Proto::Udp), 1);
    }

    #[test]
    fn ip_options_take_chars() {
        let ip = libc::IPPROTO_IP;
        assert_eq!(value_width(ip, libc::IP_TOS, 4), Ok(4));
        assert_eq!(value_width(ip, libc::IP_TOS, 2), Ok(1));
        assert_eq!(value_width(ip, libc::IP_TOS, 0), Ok(0));
        assert_eq!(value_width(ip, libc::IP_TTL, 0), Err(Errno::EINVAL));
        assert_eq!(value_width(ip, libc::IP_TOS, u32::MAX), Err(Errno::EINVAL));
        assert_eq!(value_width(libc::IPPROTO_TCP, libc::TCP_NODELAY, 1), Err(Errno::EINVAL));
        assert_eq!(value_bytes(ip, 9, 2), vec![9]);
        assert_eq!(value_bytes(ip, 300, 2), 300i32.to_ne_bytes().to_vec());
        assert_eq!(value_bytes(ip, 9, 0), 9i32.to_ne_bytes().to_vec());
        assert_eq!(value_bytes(libc::IPPROTO_IPV6, 9, 1), 9i32.to_ne_bytes().to_vec());
    }

    #[test]
    fn type_of_service_sets_priority() {
        assert_eq!(tos_priority(0x10), 6);
        assert_eq!(tos_priority(0x08), 2);
        assert_eq!(tos_priority(0x18), 4);
        assert_eq!(tos_priority(0x02), 0);
    }
}
