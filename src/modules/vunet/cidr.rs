//! [`Cidr`]: an address with its prefix length, the one type netvm uses for an
//! interface's address, a route's destination and a subnet.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address with its prefix length (`10.0.0.2/24`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The address (host bits included).
    pub ip: IpAddr,
    /// The prefix length: 0 to 32 for IPv4, 0 to 128 for IPv6.
    pub prefix: u8,
}

impl Cidr {
    /// `ip/prefix`.
    pub fn new(ip: IpAddr, prefix: u8) -> Self {
        Self { ip, prefix }
    }

    /// The same prefix with the host bits cleared (`10.0.0.2/24` gives `10.0.0.0/24`).
    pub fn network(&self) -> Cidr {
        Cidr { ip: masked(self.ip, self.prefix), prefix: self.prefix }
    }

    /// Whether `ip` is inside this prefix (of the same family, network bits equal).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.ip.is_ipv4() == ip.is_ipv4() && masked(ip, self.prefix) == self.network().ip
    }

    /// The subnet's IPv4 broadcast address (all host bits set), for an IPv4 prefix
    /// shorter than /31, which has one.
    pub fn broadcast(&self) -> Option<Ipv4Addr> {
        match self.ip {
            IpAddr::V4(ip) if self.prefix < 31 => {
                Some(Ipv4Addr::from(u32::from(ip) | (u32::MAX >> self.prefix)))
            }
            _ => None,
        }
    }

    /// `0.0.0.0/0` or `::/0`: every address of `ip`'s family.
    pub fn everything_like(ip: IpAddr) -> Cidr {
        let ip = match ip {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        Cidr { ip, prefix: 0 }
    }

    /// Parses `10.0.0.2/24`, `fd00::2/64`, or a bare address (a /32 or /128); the
    /// error is a sentence for the user.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (ip, prefix) = text.split_once('/').map_or((text, None), |(ip, p)| (ip, Some(p)));
        let ip: IpAddr =
            ip.parse().map_err(|_| format!("`{text}` is not an IP address (like 10.0.0.2/24)"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| p.parse::<u8>().ok())
                .flatten()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("`{text}`: the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { ip, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ip, self.prefix)
    }
}

/// `ip` with all but its first `prefix` bits cleared.
fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        Cidr::parse(text).unwrap()
    }

    #[test]
    fn networks_and_membership() {
        assert_eq!(cidr("10.1.2.3/16").network(), cidr("10.1.0.0/16"));
        assert_eq!(cidr("fd00::2/64").network(), cidr("fd00::/64"));
        assert_eq!(cidr("10.1.2.3/0").network(), cidr("0.0.0.0/0"));
        assert!(cidr("10.0.0.2/24").contains("10.0.0.200".parse().unwrap()));
        assert!(!cidr("10.0.0.2/24").contains("10.0.1.1".parse().unwrap()));
        assert!(!cidr("0.0.0.0/0").contains("::1".parse().unwrap()));
        assert!(cidr("::/0").contains("fd00::9".parse().unwrap()));
        assert_eq!(cidr("fd00::2/64").to_string(), "fd00::2/64");
    }

    #[test]
    fn broadcasts() {
        assert_eq!(cidr("10.0.0.2/24").broadcast(), Some(Ipv4Addr::new(10, 0, 0, 255)));
        assert_eq!(cidr("10.0.0.2/0").broadcast(), Some(Ipv4Addr::BROADCAST));
        assert_eq!(cidr("10.0.0.2/31").broadcast(), None);
        assert_eq!(cidr("fd00::2/64").broadcast(), None);
    }

    #[test]
    fn bare_addresses_and_bad_prefixes() {
        assert_eq!(cidr("10.0.0.2"), cidr("10.0.0.2/32"));
        assert_eq!(cidr("fd00::2"), cidr("fd00::2/128"));
        assert!(Cidr::parse("10.0.0.2/+4").unwrap_err().contains("must be 0 to 32"));
        assert!(Cidr::parse("fd00::2/129").unwrap_err().contains("must be 0 to 128"));
        assert!(Cidr::parse("10.0.0").unwrap_err().contains("is not an IP address"));
    }
}
