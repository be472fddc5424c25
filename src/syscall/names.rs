//! The names of the socket API's constants, for the `--trace` log: what a student
//! looks up in the man pages should be what the trace prints.

/// `(value, name)` pairs.
type Table = &'static [(i64, &'static str)];

/// The name of `value` in `table`, or the number.
fn lookup(table: Table, value: i64) -> String {
    table
        .iter()
        .find(|(v, _)| *v == value)
        .map_or_else(|| value.to_string(), |(_, name)| (*name).to_owned())
}

/// `A|B|0x40` for the bits of `value` named in `table` (and any left over); `0` for none.
fn bits(table: Table, value: i64) -> String {
    let mut parts = Vec::new();
    let mut rest = value;
    for &(bit, name) in table {
        if bit != 0 && rest & bit == bit {
            parts.push(name.to_owned());
            rest &= !bit;
        }
    }
    if rest != 0 || parts.is_empty() {
        parts.push(if rest == 0 { "0".to_owned() } else { format!("{rest:#x}") });
    }
    parts.join("|")
}

const FAMILIES: Table = &[
    (0, "AF_UNSPEC"),
    (1, "AF_UNIX"),
    (2, "AF_INET"),
    (10, "AF_INET6"),
    (16, "AF_NETLINK"),
    (17, "AF_PACKET"),
    (31, "AF_BLUETOOTH"),
    (38, "AF_ALG"),
    (40, "AF_VSOCK"),
    (44, "AF_XDP"),
];

/// An address family: `AF_INET`.
pub fn family(value: i32) -> String {
    lookup(FAMILIES, value.into())
}

const TYPES: Table = &[
    (1, "SOCK_STREAM"),
    (2, "SOCK_DGRAM"),
    (3, "SOCK_RAW"),
    (4, "SOCK_RDM"),
    (5, "SOCK_SEQPACKET"),
    (10, "SOCK_PACKET"),
];

const TYPE_FLAGS: Table =
    &[(libc::SOCK_NONBLOCK as i64, "SOCK_NONBLOCK"), (libc::SOCK_CLOEXEC as i64, "SOCK_CLOEXEC")];

/// A socket type with its flags: `SOCK_STREAM|SOCK_CLOEXEC`.
pub fn socket_type(value: i32) -> String {
    let flags = i64::from(value) & (TYPE_FLAGS[0].0 | TYPE_FLAGS[1].0);
    let base = lookup(TYPES, i64::from(value) & !flags);
    if flags == 0 { base } else { format!("{base}|{}", bits(TYPE_FLAGS, flags)) }
}

/// `accept4` flags: `SOCK_NONBLOCK|SOCK_CLOEXEC`.
pub fn accept_flags(value: i32) -> String {
    bits(TYPE_FLAGS, value.into())
}

const IP_PROTOCOLS: Table = &[
    (0, "IPPROTO_IP"),
    (1, "IPPROTO_ICMP"),
    (6, "IPPROTO_TCP"),
    (17, "IPPROTO_UDP"),
    (41, "IPPROTO_IPV6"),
    (58, "IPPROTO_ICMPV6"),
    (132, "IPPROTO_SCTP"),
    (255, "IPPROTO_RAW"),
];

const NETLINK_PROTOCOLS: Table = &[
    (0, "NETLINK_ROUTE"),
    (4, "NETLINK_SOCK_DIAG"),
    (9, "NETLINK_AUDIT"),
    (15, "NETLINK_KOBJECT_UEVENT"),
    (16, "NETLINK_GENERIC"),
];

/// The protocol argument of `socket`, named for its family.
pub fn protocol(family: i32, value: i32) -> String {
    match family {
        libc::AF_INET | libc::AF_INET6 => lookup(IP_PROTOCOLS, value.into()),
        libc::AF_NETLINK => lookup(NETLINK_PROTOCOLS, value.into()),
        libc::AF_PACKET => format!("htons({:#06x})", u16::from_be(value as u16)),
        _ => value.to_string(),
    }
}

const LEVELS: Table = &[
    (1, "SOL_SOCKET"),
    (0, "SOL_IP"),
    (6, "SOL_TCP"),
    (17, "SOL_UDP"),
    (41, "SOL_IPV6"),
    (58, "SOL_ICMPV6"),
    (263, "SOL_PACKET"),
    (270, "SOL_NETLINK"),
];

/// A socket option level: `SOL_SOCKET`.
pub fn level(value: i32) -> String {
    lookup(LEVELS, value.into())
}

const SOCKET_OPTIONS: Table = &[
    (1, "SO_DEBUG"),
    (2, "SO_REUSEADDR"),
    (3, "SO_TYPE"),
    (4, "SO_ERROR"),
    (5, "SO_DONTROUTE"),
    (6, "SO_BROADCAST"),
    (7, "SO_SNDBUF"),
    (8, "SO_RCVBUF"),
    (9, "SO_KEEPALIVE"),
    (10, "SO_OOBINLINE"),
    (13, "SO_LINGER"),
    (15, "SO_REUSEPORT"),
    (16, "SO_PASSCRED"),
    (17, "SO_PEERCRED"),
    (18, "SO_RCVLOWAT"),
    (20, "SO_RCVTIMEO"),
    (21, "SO_SNDTIMEO"),
    (25, "SO_BINDTODEVICE"),
    (29, "SO_TIMESTAMP"),
    (30, "SO_ACCEPTCONN"),
    (32, "SO_SNDBUFFORCE"),
    (33, "SO_RCVBUFFORCE"),
    (35, "SO_TIMESTAMPNS"),
    (38, "SO_PROTOCOL"),
    (39, "SO_DOMAIN"),
    (46, "SO_BUSY_POLL"),
];

const TCP_OPTIONS: Table = &[
    (1, "TCP_NODELAY"),
    (2, "TCP_MAXSEG"),
    (3, "TCP_CORK"),
    (4, "TCP_KEEPIDLE"),
    (5, "TCP_KEEPINTVL"),
    (6, "TCP_KEEPCNT"),
    (7, "TCP_SYNCNT"),
    (8, "TCP_LINGER2"),
    (9, "TCP_DEFER_ACCEPT"),
    (11, "TCP_INFO"),
    (12, "TCP_QUICKACK"),
    (13, "TCP_CONGESTION"),
    (18, "TCP_USER_TIMEOUT"),
    (23, "TCP_FASTOPEN"),
    (25, "TCP_NOTSENT_LOWAT"),
];

const IP_OPTIONS: Table = &[
    (1, "IP_TOS"),
    (2, "IP_TTL"),
    (3, "IP_HDRINCL"),
    (4, "IP_OPTIONS"),
    (8, "IP_RECVOPTS"),
    (10, "IP_MTU_DISCOVER"),
    (11, "IP_RECVERR"),
    (12, "IP_RECVTTL"),
    (13, "IP_RECVTOS"),
    (14, "IP_MTU"),
    (32, "IP_MULTICAST_IF"),
    (33, "IP_MULTICAST_TTL"),
    (34, "IP_MULTICAST_LOOP"),
    (35, "IP_ADD_MEMBERSHIP"),
];

const IPV6_OPTIONS: Table = &[
    (16, "IPV6_UNICAST_HOPS"),
    (18, "IPV6_MULTICAST_HOPS"),
    (23, "IPV6_MTU_DISCOVER"),
    (25, "IPV6_RECVERR"),
    (26, "IPV6_V6ONLY"),
    (49, "IPV6_RECVPKTINFO"),
    (51, "IPV6_RECVHOPLIMIT"),
    (67, "IPV6_TCLASS"),
];

/// A socket option, named for its level: `SO_REUSEADDR`.
pub fn option(level: i32, value: i32) -> String {
    let table = match level {
        libc::SOL_SOCKET => SOCKET_OPTIONS,
        libc::IPPROTO_TCP => TCP_OPTIONS,
        libc::IPPROTO_IP => IP_OPTIONS,
        libc::IPPROTO_IPV6 => IPV6_OPTIONS,
        _ => &[],
    };
    lookup(table, value.into())
}

const MSG_FLAGS: Table = &[
    (0x1, "MSG_OOB"),
    (0x2, "MSG_PEEK"),
    (0x4, "MSG_DONTROUTE"),
    (0x8, "MSG_CTRUNC"),
    (0x20, "MSG_TRUNC"),
    (0x40, "MSG_DONTWAIT"),
    (0x80, "MSG_EOR"),
    (0x100, "MSG_WAITALL"),
    (0x800, "MSG_CONFIRM"),
    (0x2000, "MSG_ERRQUEUE"),
    (0x4000, "MSG_NOSIGNAL"),
    (0x8000, "MSG_MORE"),
    (0x10000, "MSG_WAITFORONE"),
    (0x4000000, "MSG_ZEROCOPY"),
    (0x20000000, "MSG_FASTOPEN"),
    (0x40000000, "MSG_CMSG_CLOEXEC"),
];

/// Send and receive flags: `MSG_PEEK|MSG_DONTWAIT`.
pub fn msg_flags(value: i32) -> String {
    bits(MSG_FLAGS, i64::from(value as u32))
}

/// `shutdown`'s `how`.
pub fn shutdown_how(value: i32) -> String {
    lookup(&[(0, "SHUT_RD"), (1, "SHUT_WR"), (2, "SHUT_RDWR")], value.into())
}

const IOCTLS: Table = &[
    (0x541B, "FIONREAD"),
    (0x5411, "TIOCOUTQ"),
    (0x5421, "FIONBIO"),
    (0x8905, "SIOCATMARK"),
    (0x8906, "SIOCGSTAMP"),
    (0x890B, "SIOCADDRT"),
    (0x890C, "SIOCDELRT"),
    (0x8910, "SIOCGIFNAME"),
    (0x8912, "SIOCGIFCONF"),
    (0x8913, "SIOCGIFFLAGS"),
    (0x8914, "SIOCSIFFLAGS"),
    (0x8915, "SIOCGIFADDR"),
    (0x8916, "SIOCSIFADDR"),
    (0x8919, "SIOCGIFBRDADDR"),
    (0x891B, "SIOCGIFNETMASK"),
    (0x8921, "SIOCGIFMTU"),
    (0x8922, "SIOCSIFMTU"),
    (0x8927, "SIOCGIFHWADDR"),
    (0x8933, "SIOCGIFINDEX"),
    (0x8946, "SIOCETHTOOL"),
    (0x894B, "SIOCOUTQNSD"),
];

/// An ioctl request: `SIOCGIFCONF`.
pub fn ioctl_request(value: u32) -> String {
    let name = lookup(IOCTLS, value.into());
    if name.parse::<i64>().is_ok() { format!("{value:#x}") } else { name }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(family(libc::AF_INET6), "AF_INET6");
        assert_eq!(family(123), "123");
        assert_eq!(protocol(libc::AF_INET, 6), "IPPROTO_TCP");
        assert_eq!(protocol(libc::AF_NETLINK, 0), "NETLINK_ROUTE");
        assert_eq!(protocol(libc::AF_PACKET, 0x0300), "htons(0x0003)");
        assert_eq!(option(libc::SOL_SOCKET, libc::SO_REUSEADDR), "SO_REUSEADDR");
        assert_eq!(option(libc::IPPROTO_TCP, libc::TCP_NODELAY), "TCP_NODELAY");
        assert_eq!(ioctl_request(0x8912), "SIOCGIFCONF");
        assert_eq!(ioctl_request(0x89ff), "0x89ff");
        assert_eq!(shutdown_how(1), "SHUT_WR");
    }

    #[test]
    fn flag_sets() {
        let ty = libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
        assert_eq!(socket_type(ty), "SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC");
        assert_eq!(socket_type(libc::SOCK_DGRAM), "SOCK_DGRAM");
        assert_eq!(msg_flags(0), "0");
        assert_eq!(msg_flags(libc::MSG_PEEK | libc::MSG_DONTWAIT), "MSG_PEEK|MSG_DONTWAIT");
        assert_eq!(msg_flags(0x2 | 0x1000_0000), "MSG_PEEK|0x10000000");
        assert_eq!(accept_flags(0), "0");
    }
}
