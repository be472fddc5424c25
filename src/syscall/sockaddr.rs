//! Socket addresses as Linux lays them out (no BSD `sa_len` byte: the vunet seed's
//! second proposal): decoded from the bytes a tracee passes, and encoded into the
//! bytes it is given back. Pure ABI: reading and writing those bytes in a tracee
//! is its caller's business.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// The longest address the kernel takes (`sizeof(struct sockaddr_storage)`).
pub const MAX_LEN: usize = size_of::<libc::sockaddr_storage>();

/// A decoded `struct sockaddr_*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SockAddr {
    /// `AF_UNSPEC`: used by `connect` to dissolve an association.
    Unspec,
    /// `AF_INET`.
    Inet(SocketAddrV4),
    /// `AF_INET6`.
    Inet6(SocketAddrV6),
    /// `AF_UNIX` with a path, an abstract name (leading NUL), or neither (unnamed).
    Unix(UnixName),
    /// `AF_NETLINK`.
    Netlink {
        /// The socket's netlink port id (0: the kernel).
        port_id: u32,
        /// The multicast groups it listens to.
        groups: u32,
    },
    /// A family netvm does not decode, with the bytes after `sa_family`.
    Other {
        /// The address family.
        family: u16,
        /// The bytes after `sa_family`.
        data: Vec<u8>,
    },
}

/// The name part of an `AF_UNIX` address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnixName {
    /// No name (an unbound socket).
    Unnamed,
    /// A filesystem path.
    Path(Vec<u8>),
    /// An abstract name (after the leading NUL).
    Abstract(Vec<u8>),
}

/// Why bytes are not a valid address (the kernel says `EINVAL` for each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooShort;

impl SockAddr {
    /// Decodes `bytes` (exactly the `addrlen` bytes the tracee passed).
    pub fn parse(bytes: &[u8]) -> Result<Self, TooShort> {
        if bytes.len() < 2 {
            return Err(TooShort);
        }
        let family = u16::from_ne_bytes([bytes[0], bytes[1]]);
        let be16 = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
        let ne32 = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        Ok(match i32::from(family) {
            libc::AF_UNSPEC => Self::Unspec,
            libc::AF_INET => {
                if bytes.len() < size_of::<libc::sockaddr_in>() {
                    return Err(TooShort);
                }
                let ip = Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]);
                Self::Inet(SocketAddrV4::new(ip, be16(2)))
            }
            libc::AF_INET6 => {
                if bytes.len() < size_of::<libc::sockaddr_in6>() {
                    return Err(TooShort);
                }
                let ip: [u8; 16] = bytes[8..24].try_into().expect("16 bytes");
                let flowinfo = u32::from_be(ne32(4));
                let v6 = SocketAddrV6::new(Ipv6Addr::from(ip), be16(2), flowinfo, ne32(24));
                Self::Inet6(v6)
            }
            libc::AF_UNIX => Self::Unix(match &bytes[2..] {
                [] => UnixName::Unnamed,
                [0, name @ ..] => UnixName::Abstract(name.to_vec()),
                path => UnixName::Path(path.split(|&b| b == 0).next().unwrap_or(&[]).to_vec()),
            }),
            libc::AF_NETLINK => {
                if bytes.len() < size_of::<libc::sockaddr_nl>() {
                    return Err(TooShort);
                }
                Self::Netlink { port_id: ne32(4), groups: ne32(8) }
            }
            _ => Self::Other { family, data: bytes[2..].to_vec() },
        })
    }
}

impl fmt::Display for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unspec => f.write_str("{AF_UNSPEC}"),
            Self::Inet(a) => write!(f, "{{AF_INET, {a}}}"),
            Self::Inet6(a) if a.scope_id() != 0 => {
                write!(f, "{{AF_INET6, [{}%{}]:{}}}", a.ip(), a.scope_id(), a.port())
            }
            Self::Inet6(a) => write!(f, "{{AF_INET6, [{}]:{}}}", a.ip(), a.port()),
            Self::Unix(UnixName::Unnamed) => f.write_str("{AF_UNIX}"),
            Self::Unix(UnixName::Path(p)) => write!(f, "{{AF_UNIX, {:?}}}", lossy(p)),
            Self::Unix(UnixName::Abstract(p)) => write!(f, "{{AF_UNIX, @{:?}}}", lossy(p)),
            Self::Netlink { port_id, groups } => {
                write!(f, "{{AF_NETLINK, pid={port_id}, groups={groups:#x}}}")
            }
            Self::Other { family, data } => {
                write!(f, "{{{}, {} bytes}}", super::names::family(i32::from(*family)), data.len())
            }
        }
    }
}

/// The `struct sockaddr_in` or `sockaddr_in6` for `addr`, as a socket of `family`
/// reports it: an `AF_INET6` socket shows IPv4 peers as v4-mapped addresses, and an
/// `AF_INET` socket sees a v4-mapped address as the IPv4 address it is.
pub fn encode(addr: SocketAddr, family: i32) -> Vec<u8> {
    let addr = match (addr, family) {
        (SocketAddr::V4(v4), libc::AF_INET6) => {
            SocketAddr::V6(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0))
        }
        (SocketAddr::V6(v6), libc::AF_INET) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, v6.port())),
            None => addr,
        },
        _ => addr,
    };
    match addr {
        SocketAddr::V4(v4) => {
            let mut b = vec![0u8; size_of::<libc::sockaddr_in>()];
            b[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            b[2..4].copy_from_slice(&v4.port().to_be_bytes());
            b[4..8].copy_from_slice(&v4.ip().octets());
            b
        }
        SocketAddr::V6(v6) => {
            let mut b = vec![0u8; size_of::<libc::sockaddr_in6>()];
            b[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            b[2..4].copy_from_slice(&v6.port().to_be_bytes());
            b[4..8].copy_from_slice(&v6.flowinfo().to_be_bytes());
            b[8..24].copy_from_slice(&v6.ip().octets());
            b[24..28].copy_from_slice(&v6.scope_id().to_ne_bytes());
            b
        }
    }
}

/// `bytes` as text, invalid UTF-8 replaced (for printing names).
fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ip:port` as a `struct sockaddr_in`.
    fn sockaddr_in(port: u16, ip: [u8; 4]) -> Vec<u8> {
        encode((ip, port).into(), libc::AF_INET)
    }

    #[test]
    fn inet_addresses_decode_and_print() {
        let a = SockAddr::parse(&sockaddr_in(8080, [127, 0, 0, 1])).unwrap();
        assert_eq!(a.to_string(), "{AF_INET, 127.0.0.1:8080}");
        assert_eq!(SockAddr::parse(&sockaddr_in(1, [1, 2, 3, 4])[..15]), Err(TooShort));
    }

    #[test]
    fn inet6_addresses_decode_and_print() {
        let mut b = vec![0u8; 28];
        b[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        b[2..4].copy_from_slice(&443u16.to_be_bytes());
        b[23] = 1;
        assert_eq!(SockAddr::parse(&b).unwrap().to_string(), "{AF_INET6, [::1]:443}");
        b[24] = 2;
        assert_eq!(SockAddr::parse(&b).unwrap().to_string(), "{AF_INET6, [::1%2]:443}");
    }

    #[test]
    fn unix_names_of_every_kind() {
        let unix = |rest: &[u8]| {
            let mut b = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
            b.extend_from_slice(rest);
            SockAddr::parse(&b).unwrap().to_string()
        };
        assert_eq!(unix(b""), "{AF_UNIX}");
        assert_eq!(unix(b"/run/x\0garbage"), "{AF_UNIX, \"/run/x\"}");
        assert_eq!(unix(b"\0hidden"), "{AF_UNIX, @\"hidden\"}");
    }

    #[test]
    fn encodes_round_trip_and_maps_v4_for_v6_sockets() {
        let v4: SocketAddr = "10.0.0.2:80".parse().unwrap();
        assert_eq!(
            SockAddr::parse(&encode(v4, libc::AF_INET)).unwrap().to_string(),
            "{AF_INET, 10.0.0.2:80}"
        );
        let mapped = encode(v4, libc::AF_INET6);
        assert_eq!(mapped.len(), 28);
        assert_eq!(
            SockAddr::parse(&mapped).unwrap().to_string(),
            "{AF_INET6, [::ffff:10.0.0.2]:80}"
        );
        let back = encode("[::ffff:10.0.0.2]:80".parse().unwrap(), libc::AF_INET);
        assert_eq!(SockAddr::parse(&back).unwrap().to_string(), "{AF_INET, 10.0.0.2:80}");
    }

    #[test]
    fn short_and_unknown() {
        assert_eq!(SockAddr::parse(&[2]), Err(TooShort));
        let other = SockAddr::parse(&[0x1f, 0, 1, 2, 3]).unwrap();
        assert_eq!(other.to_string(), "{AF_BLUETOOTH, 3 bytes}");
        assert_eq!(SockAddr::parse(&[0, 0]).unwrap(), SockAddr::Unspec);
    }
}
