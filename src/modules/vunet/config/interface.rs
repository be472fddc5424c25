//! The interfaces and routes of a party on the session's network (a stack that is a
//! host on it, or a router), as written and resolved: the keys every such party
//! shares, whatever its kind.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::modules::vunet::cidr::Cidr;

/// The most interfaces one stack or router can have.
pub const MAX_INTERFACES: usize = 16;
/// An interface's MTU when `mtu` is not given (Ethernet's).
pub const DEFAULT_MTU: usize = 1500;
/// The smallest `mtu` accepted (IPv4's minimum datagram every host must take).
pub const MIN_MTU: usize = 576;
/// The largest `mtu` accepted.
pub const MAX_MTU: usize = 65535;
/// The smallest MTU on a link that carries IPv6 (RFC 8200).
pub const MIN_IPV6_MTU: usize = 1280;

/// The first three bytes of every default MAC address (locally administered).
const MAC_PREFIX: [u8; 3] = [0x02, 0x6e, 0x76];
/// The fourth byte of a stack's default MAC addresses.
pub const STACK_MAC_BYTE: u8 = 0x00;
/// The fourth byte of a router's default MAC addresses.
pub const ROUTER_MAC_BYTE: u8 = 0xff;
/// The fourth byte of an uplink's default MAC address.
pub const UPLINK_MAC_BYTE: u8 = 0xfe;

/// One `[[vunet.stack.interface]]` or `[[vunet.router.interface]]`, as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceConfig {
    /// Its name; `eth0`, `eth1`, ... by position if not given.
    pub name: Option<Spanned<String>>,
    /// The switch it is plugged into; none for an unplugged interface (stacks only).
    pub switch: Option<Spanned<String>>,
    /// Its MAC address, `xx:xx:xx:xx:xx:xx`; a default derived from its position
    /// if not given.
    pub mac: Option<Spanned<String>>,
    /// Its MTU; [`DEFAULT_MTU`] if not given.
    pub mtu: Option<Spanned<i64>>,
    /// Its addresses, as `ADDRESS/PREFIX` or a bare address (a /32 or /128).
    #[serde(default)]
    pub addresses: Vec<Spanned<String>>,
    /// A pcap file to write the link's frames to.
    pub capture: Option<Spanned<String>>,
}

/// One `[[vunet.stack.route]]`, as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// `default`, or a prefix such as `10.1.0.0/16` or `fd01::/64`.
    pub to: Spanned<String>,
    /// The gateway: an address on one of the stack's (or router's) subnets.
    pub via: Spanned<String>,
}

/// One interface, resolved (defaults filled in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceSpec {
    /// Its name: as given, or `eth0`, `eth1`, ... by position.
    pub name: String,
    /// The switch it is plugged into; `None` if unplugged (a router's never is).
    pub switch: Option<String>,
    /// Its MAC address: as given, or `02:6e:76:SS:SS:II` for interface II of stack
    /// SSSS, `02:6e:76:ff:RR:II` for interface II of router RR.
    pub mac: [u8; 6],
    /// Its MTU ([`MIN_MTU`] to [`MAX_MTU`]; [`DEFAULT_MTU`] if not given).
    pub mtu: usize,
    /// Its addresses with their prefixes (a bare address is a /32 or /128).
    pub addresses: Vec<Cidr>,
    /// The pcap file for its link; a relative path in the file was made relative to
    /// the configuration file's directory (the current directory for the built-in
    /// configuration).
    pub capture: Option<PathBuf>,
}

/// One route of a stack, resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    /// The destination prefix (host bits clear); `default` is `0.0.0.0/0` or `::/0`,
    /// of the gateway's family.
    pub to: Cidr,
    /// The gateway, of the same family as `to`, on a subnet of one of the stack's
    /// interfaces.
    pub via: IpAddr,
}

/// One router, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterSpec {
    /// Its name.
    pub name: String,
    /// Its interfaces, in order; each has a switch (`switch` is always `Some`) and
    /// at least one address.
    pub interfaces: Vec<InterfaceSpec>,
    /// Its static routes, in file order.
    pub routes: Vec<RouteSpec>,
}

/// One uplink, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UplinkSpec {
    /// Its name.
    pub name: String,
    /// Its one interface (`switch` is always `Some`, with at least one address).
    pub interface: InterfaceSpec,
    /// Its DNS addresses (see `vunet::uplink::dns`).
    pub dns: Vec<IpAddr>,
}

/// The default MAC address of interface `interface` of party `party` (`role` tells
/// stacks from routers; a stack's number takes the role's byte too from 256 on).
pub fn default_mac(role: u8, party: usize, interface: usize) -> [u8; 6] {
    let [a, b, c] = MAC_PREFIX;
    [a, b, c, role | (party >> 8) as u8, party as u8, interface as u8]
}

/// Interface tables `tables` of party number `party` (`role`: stack or router),
/// resolved in order.
pub fn resolve_interfaces(
    tables: &[Spanned<InterfaceConfig>],
    role: u8,
    party: usize,
    capture_dir: &Path,
) -> Vec<InterfaceSpec> {
    tables
        .iter()
        .enumerate()
        .map(|(i, table)| {
            resolve_interface(table.get_ref(), i, default_mac(role, party, i), capture_dir)
        })
        .collect()
}

/// Interface `index` of its party, with defaults filled in. Values the check
/// refuses are replaced by defaults, not trusted.
pub fn resolve_interface(
    table: &InterfaceConfig,
    index: usize,
    default_mac: [u8; 6],
    capture_dir: &Path,
) -> InterfaceSpec {
    InterfaceSpec {
        name: table.name.as_ref().map_or_else(|| format!("eth{index}"), |n| n.get_ref().clone()),
        switch: table.switch.as_ref().map(|s| s.get_ref().clone()),
        mac: table.mac.as_ref().and_then(|m| parse_mac(m.get_ref()).ok()).unwrap_or(default_mac),
        mtu: table
            .mtu
            .as_ref()
            .and_then(|m| usize::try_from(*m.get_ref()).ok())
            .filter(|m| (MIN_MTU..=MAX_MTU).contains(m))
            .unwrap_or(DEFAULT_MTU),
        addresses: table
            .addresses
            .iter()
            .filter_map(|a| parse_host_address(a.get_ref()).ok())
            .collect(),
        capture: table.capture.as_ref().map(|c| capture_dir.join(c.get_ref())),
    }
}

/// Why `ip` cannot be an interface's address or a gateway, if it cannot.
fn unusable(ip: IpAddr) -> Option<&'static str> {
    if ip.is_unspecified() {
        Some("the unspecified address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if ip.is_loopback() {
        Some("a loopback address (every stack has its own loopback already)")
    } else if ip == IpAddr::V4(Ipv4Addr::BROADCAST) {
        Some("the broadcast address")
    } else {
        None
    }
}

/// Parses an interface's address, `ADDRESS/PREFIX` or bare.
pub fn parse_host_address(text: &str) -> Result<Cidr, String> {
    let cidr = Cidr::parse(text)?;
    match unusable(cidr.ip) {
        Some(why) => Err(format!("`{text}` cannot be an interface's address: it is {why}")),
        None => Ok(cidr),
    }
}

/// Parses a route's `to`: `None` for `default`.
pub fn parse_destination(text: &str) -> Result<Option<Cidr>, String> {
    if text == "default" {
        return Ok(None);
    }
    if text.split('/').next().is_some_and(|ip| ip.parse::<IpAddr>().is_err()) {
        return Err(format!(
            "`{text}` is not a destination: give \"default\" or a prefix like 10.1.0.0/16 or fd01::/64"
        ));
    }
    let cidr = Cidr::parse(text)?;
    if cidr.network() != cidr {
        return Err(format!(
            "`{text}`: Invalid prefix for given prefix length (host bits are set); write {}",
            cidr.network()
        ));
    }
    Ok(Some(cidr))
}

/// Parses a route's `via`: one address, no prefix.
pub fn parse_gateway(text: &str) -> Result<IpAddr, String> {
    if text.contains('/') {
        return Err(format!(
            "`{text}`: a gateway is one address, without a prefix length (like 10.0.0.1)"
        ));
    }
    let ip: IpAddr = text
        .parse()
        .map_err(|_| format!("`{text}` is not an IP address (a gateway is one like 10.0.0.1)"))?;
    match unusable(ip) {
        Some(why) => Err(format!("`{text}` cannot be a gateway: it is {why}")),
        None => Ok(ip),
    }
}

/// Parses `02:6e:76:00:00:01`: six two-digit hex bytes, unicast, not all zero.
pub fn parse_mac(text: &str) -> Result<[u8; 6], String> {
    let bad = || format!("`{text}` is not a MAC address (six hex bytes like 02:6e:76:00:00:01)");
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0; 6];
    for (byte, part) in mac.iter_mut().zip(parts) {
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    if mac[0] & 1 != 0 {
        return Err(format!(
            "`{text}` is a multicast MAC address (its first byte is odd); an interface needs a unicast one, like 02:6e:76:00:00:01"
        ));
    }
    if mac == [0; 6] {
        return Err(format!(
            "`{text}` cannot be an interface's MAC address; give one like 02:6e:76:00:00:01"
        ));
    }
    Ok(mac)
}

/// `02:6e:76:00:00:01`.
pub fn mac_text(mac: [u8; 6]) -> String {
    mac.map(|b| format!("{b:02x}")).join(":")
}

/// Whether `name` can name an interface: as a Linux one (at most 15 bytes), and not
/// the loopback's.
pub fn is_valid_interface_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !["lo", ".", ".."].contains(&name)
}

/// Routes `tables`, resolved, in file order (those the check refused left out).
pub fn resolve_routes(tables: &[RouteConfig]) -> Vec<RouteSpec> {
    tables
        .iter()
        .filter_map(|route| {
            let via = parse_gateway(route.via.get_ref()).ok()?;
            let to = parse_destination(route.to.get_ref()).ok()?;
            Some(RouteSpec { to: to.unwrap_or_else(|| Cidr::everything_like(via)), via })
        })
        .collect()
}
