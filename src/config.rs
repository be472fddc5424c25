//! `modules.toml`: which modules a session loads, which stacks it mounts, and the
//! virtual network between them.
//!
//! netvm reads the first of these that exists:
//! 1. the file given with `--config FILE`;
//! 2. the file named by the environment variable `NETVM_CONFIG`;
//! 3. `$XDG_CONFIG_HOME/netvm/modules.toml` (default `~/.config/netvm/modules.toml`);
//! 4. `/etc/netvm/modules.toml`;
//! 5. the built-in default, which is the `modules.toml` at the top of the source tree.
//!
//! A file that is not valid is refused with its line and the reason; netvm never
//! falls back to another configuration behind the user's back.
//!
//! The network: `[[vunet.switch]]` tables declare named L2 segments;
//! `[[vunet.router]]` tables declare built-in routers, each with interfaces on
//! switches; a `smoltcp` stack has `[[vunet.stack.interface]]` tables (plugged into
//! a switch, or unplugged) and `[[vunet.stack.route]]` tables. The raw tables keep
//! their spans for messages; [`StackConfig::interfaces`], [`StackConfig::routes`]
//! and [`VunetConfig::routers`] give them resolved, with defaults filled in.
//! `man -l man/modules.toml.5` documents every key.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

/// Stack names that exist at launch whatever the configuration says.
pub const ALWAYS_AVAILABLE: [&str; 2] = ["none", "host"];
/// Stack kinds that take `addresses`, interfaces and routes.
const ADDRESSED_KINDS: [&str; 1] = ["smoltcp"];

/// The most addresses one interface can have (smoltcp's compile-time
/// `iface-max-addr-count-8`).
pub const MAX_ADDRESSES: usize = 8;
/// The most routes one stack can have (smoltcp's compile-time
/// `iface-max-route-count-16`).
pub const MAX_ROUTES: usize = 16;
/// The most interfaces one stack or router can have.
pub const MAX_INTERFACES: usize = 16;
/// The most routers one configuration can declare.
pub const MAX_ROUTERS: usize = 64;
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
const STACK_MAC_BYTE: u8 = 0x00;
/// The fourth byte of a router's default MAC addresses.
const ROUTER_MAC_BYTE: u8 = 0xff;

/// The built-in configuration.
pub const BUILT_IN: &str = include_str!("../modules.toml");

/// The whole configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The network module.
    pub vunet: VunetConfig,
}

/// The `[vunet]` table: the network module, its stacks and the network between them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VunetConfig {
    /// The stack a command runs on when `--stack` is not given.
    pub default: Spanned<String>,
    /// The switches, as `[[vunet.switch]]` tables.
    #[serde(default, rename = "switch")]
    pub switches: Vec<SwitchConfig>,
    /// The routers as written, as `[[vunet.router]]` tables; see
    /// [`VunetConfig::routers`] for them resolved.
    #[serde(default, rename = "router")]
    pub router_tables: Vec<RouterConfig>,
    /// The mounted stacks, as `[[vunet.stack]]` tables.
    #[serde(default, rename = "stack")]
    pub stacks: Vec<StackConfig>,
}

/// One `[[vunet.switch]]`: a named L2 segment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchConfig {
    /// What interfaces' `switch` calls it.
    pub name: Spanned<String>,
}

/// One `[[vunet.router]]`, as written: the built-in router, which answers ARP, NDP
/// and ping on its addresses and forwards between its interfaces.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterConfig {
    /// Its name (distinct from every stack's).
    pub name: Spanned<String>,
    /// Its `[[vunet.router.interface]]` tables.
    #[serde(default, rename = "interface")]
    pub interface_tables: Vec<Spanned<InterfaceConfig>>,
    /// The directory relative capture paths are in.
    #[serde(skip)]
    capture_dir: PathBuf,
}

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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// `default`, or a prefix such as `10.1.0.0/16` or `fd01::/64`.
    pub to: Spanned<String>,
    /// The gateway: an address on one of the stack's subnets.
    pub via: Spanned<String>,
}

/// One `[[vunet.stack]]`: a mounted stack instance.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackConfig {
    /// What processes and `--stack` call it.
    pub name: Spanned<String>,
    /// Which vunet submodule implements it.
    pub kind: Spanned<String>,
    /// The older form of one unplugged interface `eth0` (`smoltcp` stacks): its
    /// addresses, as `ADDRESS/PREFIX` or a bare address. Not with `interface_tables`.
    #[serde(default)]
    pub addresses: Vec<Spanned<String>>,
    /// Its `[[vunet.stack.interface]]` tables (`smoltcp` stacks); see
    /// [`StackConfig::interfaces`] for them resolved.
    #[serde(default, rename = "interface")]
    pub interface_tables: Vec<Spanned<InterfaceConfig>>,
    /// Its `[[vunet.stack.route]]` tables (`smoltcp` stacks); see
    /// [`StackConfig::routes`] for them resolved.
    #[serde(default, rename = "route")]
    pub route_tables: Vec<RouteConfig>,
    /// The directory relative capture paths are in.
    #[serde(skip)]
    capture_dir: PathBuf,
}

/// An address with its prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The address (host bits included).
    pub ip: IpAddr,
    /// The prefix length: 0 to 32 for IPv4, 0 to 128 for IPv6.
    pub prefix: u8,
}

impl Cidr {
    /// The same prefix with the host bits cleared (`10.0.0.2/24` gives `10.0.0.0/24`).
    pub fn network(&self) -> Cidr {
        Cidr { ip: masked(self.ip, self.prefix), prefix: self.prefix }
    }

    /// Whether `ip` is inside this prefix (of the same family, network bits equal).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.ip.is_ipv4() == ip.is_ipv4() && masked(ip, self.prefix) == self.network().ip
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

/// One interface, resolved (defaults filled in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceSpec {
    /// Its name: as given, or `eth0`, `eth1`, ... by position.
    pub name: String,
    /// The switch it is plugged into; `None` if unplugged (a router's never is).
    pub switch: Option<String>,
    /// Its MAC address: as given, or `02:6e:76:00:SS:II` for interface II of stack
    /// SS, `02:6e:76:ff:RR:II` for interface II of router RR.
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
}

impl StackConfig {
    /// The stack's interfaces, resolved; `stack_index` is the stack's position among
    /// the `[[vunet.stack]]` tables (it picks the default MAC addresses). The older
    /// stack-level `addresses` make one unplugged interface `eth0`.
    pub fn interfaces(&self, stack_index: usize) -> Vec<InterfaceSpec> {
        resolve_interfaces(&self.tables(), STACK_MAC_BYTE, stack_index, &self.capture_dir)
    }

    /// The stack's routes, resolved, in file order.
    pub fn routes(&self) -> Vec<RouteSpec> {
        self.route_tables
            .iter()
            .filter_map(|route| {
                let via = parse_gateway(route.via.get_ref()).ok()?;
                let to = match parse_destination(route.to.get_ref()).ok()? {
                    Some(to) => to,
                    None => default_destination(via),
                };
                Some(RouteSpec { to, via })
            })
            .collect()
    }

    /// Every address of every interface (checked when the file was read).
    pub fn ips(&self) -> Vec<IpAddr> {
        self.tables()
            .iter()
            .flat_map(|table| table.get_ref().addresses.iter())
            .filter_map(|a| parse_host_address(a.get_ref()).ok())
            .map(|cidr| cidr.ip)
            .collect()
    }

    /// The interface tables, or the one the older stack-level `addresses` stand for.
    fn tables(&self) -> Cow<'_, [Spanned<InterfaceConfig>]> {
        match self.addresses.first() {
            Some(first) if self.interface_tables.is_empty() => {
                let table =
                    InterfaceConfig { addresses: self.addresses.clone(), ..Default::default() };
                Cow::Owned(vec![Spanned::new(first.span(), table)])
            }
            _ => Cow::Borrowed(&self.interface_tables),
        }
    }
}

impl VunetConfig {
    /// The kind of the stack `name` would be: its declared kind, or for a name not
    /// declared, the name itself (`none` and `host` need no declaration).
    pub fn kind_of<'a>(&'a self, name: &'a str) -> &'a str {
        self.stacks.iter().find(|s| s.name.get_ref() == name).map_or(name, |s| s.kind.get_ref())
    }

    /// The names of the declared switches, in file order.
    pub fn switch_names(&self) -> Vec<String> {
        self.switches.iter().map(|s| s.name.get_ref().clone()).collect()
    }

    /// The routers, resolved, in file order.
    pub fn routers(&self) -> Vec<RouterSpec> {
        self.router_tables
            .iter()
            .enumerate()
            .map(|(r, router)| RouterSpec {
                name: router.name.get_ref().clone(),
                interfaces: resolve_interfaces(
                    &router.interface_tables,
                    ROUTER_MAC_BYTE,
                    r,
                    &router.capture_dir,
                ),
            })
            .collect()
    }
}

/// The default MAC address of interface `interface` of party `party` (`role` tells
/// stacks from routers).
fn default_mac(role: u8, party: usize, interface: usize) -> [u8; 6] {
    let [a, b, c] = MAC_PREFIX;
    [a, b, c, role, party as u8, interface as u8]
}

fn resolve_interfaces(
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
fn resolve_interface(
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

/// Parses `10.0.0.2/24`, `fd00::2/64`, or a bare address (a /32 or /128).
fn parse_cidr(text: &str) -> Result<Cidr, String> {
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
fn parse_host_address(text: &str) -> Result<Cidr, String> {
    let cidr = parse_cidr(text)?;
    match unusable(cidr.ip) {
        Some(why) => Err(format!("`{text}` cannot be an interface's address: it is {why}")),
        None => Ok(cidr),
    }
}

/// Parses a route's `to`: `None` for `default`.
fn parse_destination(text: &str) -> Result<Option<Cidr>, String> {
    if text == "default" {
        return Ok(None);
    }
    if text.split('/').next().is_some_and(|ip| ip.parse::<IpAddr>().is_err()) {
        return Err(format!(
            "`{text}` is not a destination: give \"default\" or a prefix like 10.1.0.0/16 or fd01::/64"
        ));
    }
    let cidr = parse_cidr(text)?;
    if cidr.network() != cidr {
        return Err(format!(
            "`{text}`: Invalid prefix for given prefix length (host bits are set); write {}",
            cidr.network()
        ));
    }
    Ok(Some(cidr))
}

/// `default` for a route through `via`: `0.0.0.0/0` or `::/0`.
fn default_destination(via: IpAddr) -> Cidr {
    let ip = match via {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    Cidr { ip, prefix: 0 }
}

/// Parses a route's `via`: one address, no prefix.
fn parse_gateway(text: &str) -> Result<IpAddr, String> {
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
fn parse_mac(text: &str) -> Result<[u8; 6], String> {
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
fn mac_text(mac: [u8; 6]) -> String {
    mac.map(|b| format!("{b:02x}")).join(":")
}

/// Where the configuration came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A file.
    File(PathBuf),
    /// The built-in default.
    BuiltIn,
}

impl Origin {
    /// The directory relative capture paths are in: the file's own, or the current
    /// directory (the empty path) for the built-in configuration.
    fn capture_dir(&self) -> PathBuf {
        match self {
            Self::File(path) => path.parent().map(Path::to_owned).unwrap_or_default(),
            Self::BuiltIn => PathBuf::new(),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::BuiltIn => f.write_str("(built-in modules.toml)"),
        }
    }
}

/// A configuration that cannot be used: where, and why.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the configuration came from.
    pub origin: Origin,
    /// 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// What is wrong, as one sentence.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.origin, self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Finds the configuration to use, following the order in the module docs.
pub fn locate(flag: Option<&Path>) -> Origin {
    if let Some(path) = flag {
        return Origin::File(path.to_owned());
    }
    if let Some(path) = std::env::var_os("NETVM_CONFIG").filter(|p| !p.is_empty()) {
        return Origin::File(path.into());
    }
    let user_dir = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".config")));
    let candidates = user_dir
        .map(|dir| dir.join("netvm/modules.toml"))
        .into_iter()
        .chain(std::iter::once(PathBuf::from("/etc/netvm/modules.toml")));
    for path in candidates {
        if path.is_file() {
            return Origin::File(path);
        }
    }
    Origin::BuiltIn
}

/// Reads and checks the configuration at `origin`; `kinds` are the stack kinds
/// this netvm knows.
pub fn load(origin: &Origin, kinds: &[&str]) -> Result<Config, ConfigError> {
    let text = match origin {
        Origin::BuiltIn => BUILT_IN.to_owned(),
        Origin::File(path) => read_capped(path).map_err(|message| ConfigError {
            origin: origin.clone(),
            line: None,
            message,
        })?,
    };
    parse(&text, origin, kinds)
}

/// The largest configuration netvm reads: far above any real one, and small enough
/// that `--config /dev/zero` is an error rather than an exhausted memory.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

fn read_capped(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let reason = |e: std::io::Error| {
        format!("cannot read: {}", e.to_string().split(" (os error").next().unwrap_or(""))
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text))
        .map_err(reason)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!(
            "larger than {} KiB: not a netvm configuration",
            MAX_CONFIG_BYTES / 1024
        ));
    }
    Ok(text)
}

/// Parses and checks configuration `text`.
pub fn parse(text: &str, origin: &Origin, kinds: &[&str]) -> Result<Config, ConfigError> {
    let error = |span: Option<Range<usize>>, message: String| ConfigError {
        origin: origin.clone(),
        line: span.map(|s| line_of(text, s.start)),
        message,
    };
    let mut config: Config =
        toml::from_str(text).map_err(|e| error(e.span(), e.message().trim().to_owned()))?;
    let capture_dir = origin.capture_dir();
    for stack in &mut config.vunet.stacks {
        stack.capture_dir.clone_from(&capture_dir);
    }
    for router in &mut config.vunet.router_tables {
        router.capture_dir.clone_from(&capture_dir);
    }
    Checker::new(text).check(&config.vunet, kinds).map_err(|(span, why)| error(Some(span), why))?;
    Ok(config)
}

/// Whether `name` can name a stack, switch or router (it appears in traces, paths
/// and command lines).
pub fn is_valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Whether `name` can name an interface: as a Linux one (at most 15 bytes), and not
/// the loopback's.
fn is_valid_interface_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !["lo", ".", ".."].contains(&name)
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

/// What is wrong, and where in the text.
type Fault = (Range<usize>, String);

/// A stack or a router: something with interfaces on the network.
struct Party<'a> {
    /// `stack` or `router`.
    what: &'static str,
    name: &'a str,
    /// Its position among the tables of its kind (for default MAC addresses).
    index: usize,
    /// Where it starts in the text (parties are checked in file order).
    offset: usize,
    tables: Cow<'a, [Spanned<InterfaceConfig>]>,
    routes: &'a [RouteConfig],
    capture_dir: &'a Path,
}

impl Party<'_> {
    fn is_router(&self) -> bool {
        self.what == "router"
    }
}

/// Who holds an address: for the check that two parties never share one.
struct Holder {
    /// The party's position in check order.
    party: usize,
    /// Whether the interface is on a switch (unplugged ones never meet).
    plugged: bool,
    /// Who, for messages: stack `a` interface eth0 (line 5).
    who: String,
}

/// Checks a parsed configuration, remembering what must be unique across it.
struct Checker<'a> {
    text: &'a str,
    /// Declared switches, by name: where each was declared.
    switches: HashMap<&'a str, usize>,
    macs: HashMap<[u8; 6], String>,
    ips: HashMap<IpAddr, Vec<Holder>>,
    captures: HashMap<PathBuf, String>,
}

impl<'a> Checker<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            switches: HashMap::new(),
            macs: HashMap::new(),
            ips: HashMap::new(),
            captures: HashMap::new(),
        }
    }

    fn line(&self, offset: usize) -> usize {
        line_of(self.text, offset)
    }

    fn check(&mut self, vunet: &'a VunetConfig, kinds: &[&str]) -> Result<(), Fault> {
        let stack_names = self.check_stacks(vunet, kinds)?;
        self.check_switches(vunet)?;
        self.check_routers(vunet, &stack_names)?;
        let stacks = vunet.stacks.iter().enumerate().map(|(s, stack)| Party {
            what: "stack",
            name: stack.name.get_ref(),
            index: s,
            offset: stack.name.span().start,
            tables: stack.tables(),
            routes: &stack.route_tables,
            capture_dir: &stack.capture_dir,
        });
        let routers = vunet.router_tables.iter().enumerate().map(|(r, router)| Party {
            what: "router",
            name: router.name.get_ref(),
            index: r,
            offset: router.name.span().start,
            tables: Cow::Borrowed(&router.interface_tables[..]),
            routes: &[],
            capture_dir: &router.capture_dir,
        });
        let mut parties: Vec<Party> = stacks.chain(routers).collect();
        parties.sort_by_key(|p| p.offset);
        for (id, party) in parties.iter().enumerate() {
            self.check_party(id, party)?;
        }
        Ok(())
    }

    /// Stack names, kinds, what each kind takes, and the default; gives the names
    /// and where each is.
    fn check_stacks(
        &self,
        vunet: &'a VunetConfig,
        kinds: &[&str],
    ) -> Result<HashMap<&'a str, usize>, Fault> {
        // Two places are kept for `none` and `host`, which launch can add.
        let room = crate::modules::vunet::smoltcp::MAX_STACKS - ALWAYS_AVAILABLE.len();
        if let Some(extra) = vunet.stacks.get(room) {
            let why = format!("at most {room} stacks can be mounted in one session");
            return Err((extra.name.span(), why));
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        for stack in &vunet.stacks {
            let name = stack.name.get_ref();
            if !is_valid_name(name) {
                let why =
                    format!("stack name `{name}` must be 1 to 32 letters, digits, `-`, `_` or `.`");
                return Err((stack.name.span(), why));
            }
            if let Some(&first) = names.get(name.as_str()) {
                let why = format!(
                    "stack `{name}` is defined twice (first on line {}); rename one",
                    self.line(first)
                );
                return Err((stack.name.span(), why));
            }
            names.insert(name, stack.name.span().start);
            let kind = stack.kind.get_ref().as_str();
            if !kinds.contains(&kind) {
                let why =
                    format!("unknown stack kind `{kind}` (known kinds: {})", kinds.join(", "));
                return Err((stack.kind.span(), why));
            }
            if !ADDRESSED_KINDS.contains(&kind) {
                if let Some(first) = stack.addresses.first() {
                    let why = format!(
                        "a `{kind}` stack has no addresses of its own; only smoltcp stacks take `addresses`"
                    );
                    return Err((first.span(), why));
                }
                if let Some(first) = stack.interface_tables.first() {
                    let why = format!(
                        "a `{kind}` stack has no interfaces; only smoltcp stacks take [[vunet.stack.interface]]"
                    );
                    return Err((first.span(), why));
                }
                if let Some(first) = stack.route_tables.first() {
                    let why = format!(
                        "a `{kind}` stack has no routes; only smoltcp stacks take [[vunet.stack.route]]"
                    );
                    return Err((first.to.span(), why));
                }
            }
            if let (Some(first), false) =
                (stack.addresses.first(), stack.interface_tables.is_empty())
            {
                let why = "give either `addresses` or [[vunet.stack.interface]] tables, not both: \
                           move these addresses into an interface"
                    .to_owned();
                return Err((first.span(), why));
            }
            if let Some(extra) = stack.interface_tables.get(MAX_INTERFACES) {
                let why = format!(
                    "stack `{name}` has more than {MAX_INTERFACES} interfaces, the most one stack can have"
                );
                return Err((extra.span(), why));
            }
            if let Some(extra) = stack.route_tables.get(MAX_ROUTES) {
                let why = format!(
                    "stack `{name}` has more than {MAX_ROUTES} routes, the most smoltcp holds; \
                     merge some into wider prefixes"
                );
                return Err((extra.to.span(), why));
            }
        }
        let default = vunet.default.get_ref();
        if !names.contains_key(default.as_str()) && !ALWAYS_AVAILABLE.contains(&default.as_str()) {
            let mounted = if names.is_empty() {
                "no stack is defined".to_owned()
            } else {
                let mut list: Vec<_> = names.keys().copied().collect();
                list.sort();
                format!("defined stacks: {}", list.join(", "))
            };
            let why = format!("default stack `{default}` is not defined ({mounted})");
            return Err((vunet.default.span(), why));
        }
        Ok(names)
    }

    fn check_switches(&mut self, vunet: &'a VunetConfig) -> Result<(), Fault> {
        for switch in &vunet.switches {
            let name = switch.name.get_ref();
            if !is_valid_name(name) {
                let why = format!(
                    "switch name `{name}` must be 1 to 32 letters, digits, `-`, `_` or `.`"
                );
                return Err((switch.name.span(), why));
            }
            if let Some(&first) = self.switches.get(name.as_str()) {
                let why = format!(
                    "switch `{name}` is defined twice (first on line {}); rename one",
                    self.line(first)
                );
                return Err((switch.name.span(), why));
            }
            self.switches.insert(name, switch.name.span().start);
        }
        Ok(())
    }

    fn check_routers(
        &self,
        vunet: &'a VunetConfig,
        stack_names: &HashMap<&str, usize>,
    ) -> Result<(), Fault> {
        if let Some(extra) = vunet.router_tables.get(MAX_ROUTERS) {
            let why = format!("at most {MAX_ROUTERS} routers can be declared");
            return Err((extra.name.span(), why));
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        for router in &vunet.router_tables {
            let (name, at) = (router.name.get_ref(), router.name.span());
            if !is_valid_name(name) {
                let why = format!(
                    "router name `{name}` must be 1 to 32 letters, digits, `-`, `_` or `.`"
                );
                return Err((at, why));
            }
            if let Some(&first) = names.get(name.as_str()) {
                let why = format!(
                    "router `{name}` is defined twice (first on line {}); rename one",
                    self.line(first)
                );
                return Err((at, why));
            }
            if let Some(&stack) = stack_names.get(name.as_str()) {
                let why = format!(
                    "`{name}` is already a stack's name (line {}); give the router a name of its own",
                    self.line(stack)
                );
                return Err((at, why));
            }
            names.insert(name, at.start);
            if router.interface_tables.is_empty() {
                let why = format!(
                    "router `{name}` has no interface; give it [[vunet.router.interface]] tables \
                     with a switch and addresses"
                );
                return Err((at, why));
            }
            if let Some(extra) = router.interface_tables.get(MAX_INTERFACES) {
                let why = format!(
                    "router `{name}` has more than {MAX_INTERFACES} interfaces, the most one router can have"
                );
                return Err((extra.span(), why));
            }
        }
        Ok(())
    }

    /// Party number `id` in check order: its interfaces, then its routes.
    fn check_party(&mut self, id: usize, party: &Party) -> Result<(), Fault> {
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut subnets = Vec::new();
        for (i, table) in party.tables.iter().enumerate() {
            let spec = self.check_interface(id, party, i, table)?;
            let at = table.get_ref().name.as_ref().map_or(table.span(), |n| n.span());
            if let Some(&first) = names.get(&spec.name) {
                let why = format!(
                    "{} `{}` has two interfaces named `{}` (the other on line {}); give this one \
                     another name",
                    party.what,
                    party.name,
                    spec.name,
                    self.line(first)
                );
                return Err((at, why));
            }
            names.insert(spec.name.clone(), table.span().start);
            subnets.extend(spec.addresses);
        }
        for route in party.routes {
            self.check_route(party, route, &subnets)?;
        }
        let mut destinations: HashMap<Cidr, usize> = HashMap::new();
        for route in party.routes {
            let via = parse_gateway(route.via.get_ref()).map_err(|why| (route.via.span(), why))?;
            let to = parse_destination(route.to.get_ref())
                .map_err(|why| (route.to.span(), why))?
                .unwrap_or_else(|| default_destination(via));
            if let Some(&first) = destinations.get(&to) {
                let to_text = if to.prefix == 0 { "default" } else { route.to.get_ref() };
                let why = format!(
                    "a route to {to_text} ({}) is already given on line {}; keep one",
                    if to.ip.is_ipv4() { "IPv4" } else { "IPv6" },
                    self.line(first)
                );
                return Err((route.to.span(), why));
            }
            destinations.insert(to, route.to.span().start);
        }
        Ok(())
    }

    /// Interface `index` of `party` (party number `id`), resolved once checked.
    fn check_interface(
        &mut self,
        id: usize,
        party: &Party,
        index: usize,
        table: &Spanned<InterfaceConfig>,
    ) -> Result<InterfaceSpec, Fault> {
        let (at, t) = (table.span(), table.get_ref());
        if let Some(name) = &t.name
            && !is_valid_interface_name(name.get_ref())
        {
            let why = format!(
                "interface name `{}` must be 1 to 15 letters, digits, `-`, `_` or `.`, and not `lo`",
                name.get_ref()
            );
            return Err((name.span(), why));
        }
        match &t.switch {
            Some(switch) if !self.switches.contains_key(switch.get_ref().as_str()) => {
                let why = format!(
                    "no switch named `{0}`; declare it with [[vunet.switch]] name = \"{0}\"",
                    switch.get_ref()
                );
                return Err((switch.span(), why));
            }
            None if party.is_router() => {
                let why = "a router interface needs a switch: add switch = \"NAME\", \
                           a [[vunet.switch]]'s name"
                    .to_owned();
                return Err((at, why));
            }
            _ => {}
        }
        if let Some(mac) = &t.mac {
            parse_mac(mac.get_ref()).map_err(|why| (mac.span(), why))?;
        }
        if let Some(mtu) = &t.mtu {
            let value = *mtu.get_ref();
            if usize::try_from(value).map_or(true, |v| !(MIN_MTU..=MAX_MTU).contains(&v)) {
                let why = format!(
                    "mtu {value} is out of range: give one from {MIN_MTU} to {MAX_MTU} (Ethernet's is 1500)"
                );
                return Err((mtu.span(), why));
            }
        }
        if let Some(extra) = t.addresses.get(MAX_ADDRESSES) {
            let why = format!(
                "more than {MAX_ADDRESSES} addresses on one interface, the most smoltcp holds; \
                 move the rest to another interface"
            );
            return Err((extra.span(), why));
        }
        let mut own = HashSet::new();
        for address in &t.addresses {
            let cidr =
                parse_host_address(address.get_ref()).map_err(|why| (address.span(), why))?;
            if !own.insert(cidr.ip) {
                let why = format!("address {} is given twice on this interface; drop one", cidr.ip);
                return Err((address.span(), why));
            }
        }
        if party.is_router() && t.addresses.is_empty() {
            let why = "a router interface needs addresses: add addresses = [\"ADDRESS/PREFIX\"] \
                       on its switch's subnet"
                .to_owned();
            return Err((at, why));
        }
        if let Some(capture) = &t.capture {
            if capture.get_ref().is_empty() {
                let why = "capture needs a file name, like capture = \"eth0.pcap\"".to_owned();
                return Err((capture.span(), why));
            }
            if t.switch.is_none() {
                let why = "an interface with no switch has no link to capture: give it a switch \
                           or drop `capture`"
                    .to_owned();
                return Err((capture.span(), why));
            }
        }

        let role = if party.is_router() { ROUTER_MAC_BYTE } else { STACK_MAC_BYTE };
        let spec =
            resolve_interface(t, index, default_mac(role, party.index, index), party.capture_dir);
        if spec.mtu < MIN_IPV6_MTU
            && let (Some(v6), Some(mtu)) = (spec.addresses.iter().find(|a| a.ip.is_ipv6()), &t.mtu)
        {
            let why = format!(
                "mtu {} is below {MIN_IPV6_MTU}, the least IPv6 allows, and this interface has \
                 the IPv6 address {v6}: raise the mtu to {MIN_IPV6_MTU} or more",
                spec.mtu
            );
            return Err((mtu.span(), why));
        }

        let who = format!(
            "{} `{}` interface {} (line {})",
            party.what,
            party.name,
            spec.name,
            self.line(at.start)
        );
        if let Some(other) = self.macs.get(&spec.mac) {
            let mac = mac_text(spec.mac);
            return Err(match &t.mac {
                Some(given) => (
                    given.span(),
                    format!(
                        "MAC address {mac} is already used by {other}; give this interface another mac"
                    ),
                ),
                None => (
                    at,
                    format!(
                        "this interface's default MAC address {mac} is already used by {other}; \
                         give one of them another mac"
                    ),
                ),
            });
        }
        self.macs.insert(spec.mac, who.clone());
        let plugged = spec.switch.is_some();
        for (address, cidr) in t.addresses.iter().zip(&spec.addresses) {
            let holders = self.ips.entry(cidr.ip).or_default();
            if let Some(other) = holders.iter().find(|h| h.party == id || (h.plugged && plugged)) {
                let why = format!(
                    "address {} is already used by {}; give each interface on the network its own addresses",
                    cidr.ip, other.who
                );
                return Err((address.span(), why));
            }
            holders.push(Holder { party: id, plugged, who: who.clone() });
        }
        if let (Some(path), Some(capture)) = (&spec.capture, &t.capture) {
            if let Some(other) = self.captures.get(path) {
                let why = format!(
                    "capture file `{}` is already used by {other}; give each link its own file",
                    capture.get_ref()
                );
                return Err((capture.span(), why));
            }
            self.captures.insert(path.clone(), who);
        }
        Ok(spec)
    }

    /// One route of `party`, whose interfaces have the addresses `subnets`.
    fn check_route(
        &self,
        party: &Party,
        route: &RouteConfig,
        subnets: &[Cidr],
    ) -> Result<(), Fault> {
        let family = |ip: IpAddr| if ip.is_ipv4() { "IPv4" } else { "IPv6" };
        let to = parse_destination(route.to.get_ref()).map_err(|why| (route.to.span(), why))?;
        let via = parse_gateway(route.via.get_ref()).map_err(|why| (route.via.span(), why))?;
        if let Some(to) = to
            && to.ip.is_ipv4() != via.is_ipv4()
        {
            let why = format!(
                "gateway {via} is {} but {to} is {}: give a gateway of the destination's family",
                family(via),
                family(to.ip)
            );
            return Err((route.via.span(), why));
        }
        if subnets.iter().any(|s| s.ip == via) {
            let why = format!(
                "gateway {via} is {} `{}`'s own address; a gateway is another host on one of its subnets",
                party.what, party.name
            );
            return Err((route.via.span(), why));
        }
        if !subnets.iter().any(|s| s.contains(via)) {
            let same: Vec<String> = subnets
                .iter()
                .filter(|s| s.ip.is_ipv4() == via.is_ipv4())
                .map(|s| s.network().to_string())
                .collect();
            let why = if same.is_empty() {
                format!(
                    "{} `{}` has no {} address, so gateway {via} is out of its reach; give one of \
                     its interfaces an address on the gateway's subnet",
                    party.what,
                    party.name,
                    family(via)
                )
            } else {
                format!(
                    "gateway {via} is on none of {} `{}`'s subnets ({}); a gateway must be on the \
                     subnet of one of its interfaces",
                    party.what,
                    party.name,
                    same.join(", ")
                )
            };
            return Err((route.via.span(), why));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: &[&str] = &["none", "host", "smoltcp"];

    fn parse_err(text: &str) -> String {
        parse(text, &Origin::File("m.toml".into()), KINDS).unwrap_err().to_string()
    }

    fn parse_ok(text: &str) -> VunetConfig {
        match parse(text, &Origin::File("conf/m.toml".into()), KINDS) {
            Ok(config) => config.vunet,
            Err(e) => panic!("{e}\n{text}"),
        }
    }

    /// Checks that `text` is refused on the line holding `at` (its first
    /// occurrence) with a message containing `reason`.
    #[track_caller]
    fn assert_refused(text: &str, at: &str, reason: &str) {
        refused_on(text, line_of(text, text.find(at).expect("`at` is in the text")), reason);
    }

    /// Like [`assert_refused`], on the line of the last occurrence of `at`.
    #[track_caller]
    fn assert_refused_last(text: &str, at: &str, reason: &str) {
        refused_on(text, line_of(text, text.rfind(at).expect("`at` is in the text")), reason);
    }

    #[track_caller]
    fn refused_on(text: &str, line: usize, reason: &str) {
        let message = parse_err(text);
        let prefix = format!("m.toml:{line}: ");
        assert!(message.starts_with(&prefix), "expected line {line}: {message}\n{text}");
        assert!(message.contains(reason), "expected `{reason}`: {message}");
        assert!(!message.contains('\n'), "one line: {message}");
    }

    /// A configuration with switches `sw0` and `sw1` and a stack `a`, then `rest`.
    fn net(rest: &str) -> String {
        format!(
            "[vunet]\ndefault = \"a\"\n[[vunet.switch]]\nname = \"sw0\"\n\
             [[vunet.switch]]\nname = \"sw1\"\n{rest}"
        )
    }

    /// Stack `a` on sw0 with `addresses` and the interface keys `extra`, then `rest`.
    fn stack_a(addresses: &str, extra: &str, rest: &str) -> String {
        net(&format!(
            "[[vunet.stack]]\nname = \"a\"\nkind = \"smoltcp\"\n\
             [[vunet.stack.interface]]\nswitch = \"sw0\"\naddresses = [{addresses}]\n{extra}{rest}"
        ))
    }

    fn cidr(text: &str) -> Cidr {
        parse_cidr(text).unwrap()
    }

    #[test]
    fn the_built_in_configuration_is_valid() {
        let kinds = crate::modules::vunet::kind_names();
        let config = load(&Origin::BuiltIn, &kinds).unwrap();
        assert!(!config.vunet.stacks.is_empty());
    }

    #[test]
    fn the_built_in_network() {
        let kinds = crate::modules::vunet::kind_names();
        let vunet = load(&Origin::BuiltIn, &kinds).unwrap().vunet;
        assert_eq!(vunet.default.get_ref(), "lwip0");
        assert_eq!(vunet.switch_names(), ["sw0"]);
        let gw = InterfaceSpec {
            name: "eth0".into(),
            switch: Some("sw0".into()),
            mac: [0x02, 0x6e, 0x76, 0xff, 0, 0],
            mtu: 1500,
            addresses: vec![cidr("10.0.0.1/24"), cidr("fd00::1/64")],
            capture: None,
        };
        assert_eq!(vunet.routers(), [RouterSpec { name: "gw".into(), interfaces: vec![gw] }]);
        let names: Vec<_> = vunet.stacks.iter().map(|s| s.name.get_ref().as_str()).collect();
        assert_eq!(names, ["lwip0", "lwip1", "none"]);
        for (s, host) in [(0, 2), (1, 3)] {
            let stack = &vunet.stacks[s];
            let eth0 = InterfaceSpec {
                name: "eth0".into(),
                switch: Some("sw0".into()),
                mac: [0x02, 0x6e, 0x76, 0, s as u8, 0],
                mtu: 1500,
                addresses: vec![
                    cidr(&format!("10.0.0.{host}/24")),
                    cidr(&format!("fd00::{host}/64")),
                ],
                capture: None,
            };
            assert_eq!(stack.interfaces(s), [eth0]);
            let routes = [
                RouteSpec { to: cidr("0.0.0.0/0"), via: "10.0.0.1".parse().unwrap() },
                RouteSpec { to: cidr("::/0"), via: "fd00::1".parse().unwrap() },
            ];
            assert_eq!(stack.routes(), routes);
            let ips: Vec<IpAddr> = [format!("10.0.0.{host}"), format!("fd00::{host}")]
                .map(|a| a.parse().unwrap())
                .into();
            assert_eq!(stack.ips(), ips);
        }
        assert!(vunet.stacks[2].interfaces(2).is_empty());
        assert!(vunet.stacks[2].routes().is_empty());
    }

    /// The complete configurations in `man/modules.toml.5` are valid, and the first
    /// is the built-in one without its comments.
    #[test]
    fn the_manual_examples_are_valid() {
        let page = include_str!("../man/modules.toml.5");
        let examples: Vec<String> = page
            .split(".EX\n")
            .skip(1)
            .filter_map(|block| block.split_once(".EE").map(|(example, _)| example))
            .filter(|example| example.starts_with("[vunet]"))
            .map(|example| example.replace("\\-", "-"))
            .collect();
        assert!(examples.len() >= 3, "{examples:?}");
        let kinds = crate::modules::vunet::kind_names();
        for example in &examples {
            if let Err(e) = parse(example, &Origin::File("man.toml".into()), &kinds) {
                panic!("{e}\n{example}");
            }
        }
        let lines = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(lines(&examples[0]), lines(BUILT_IN));
    }

    #[test]
    fn a_minimal_file() {
        let text = "[vunet]\ndefault = \"n\"\n[[vunet.stack]]\nname = \"n\"\nkind = \"none\"\n";
        let config = parse(text, &Origin::BuiltIn, KINDS).unwrap();
        assert_eq!(config.vunet.stacks[0].kind.get_ref(), "none");
        assert!(config.vunet.switch_names().is_empty());
        assert!(config.vunet.routers().is_empty());
    }

    #[test]
    fn errors_name_the_line_and_the_reason() {
        let unknown_kind =
            "[vunet]\ndefault = \"a\"\n[[vunet.stack]]\nname = \"a\"\nkind = \"lwip\"\n";
        assert_eq!(
            parse_err(unknown_kind),
            "m.toml:5: unknown stack kind `lwip` (known kinds: none, host, smoltcp)"
        );
        let twice = "[vunet]\ndefault = \"a\"\n[[vunet.stack]]\nname = \"a\"\nkind = \"none\"\n\
                     [[vunet.stack]]\nname = \"a\"\nkind = \"host\"\n";
        assert_eq!(
            parse_err(twice),
            "m.toml:7: stack `a` is defined twice (first on line 4); rename one"
        );
        let no_default =
            "[vunet]\ndefault = \"x\"\n[[vunet.stack]]\nname = \"a\"\nkind = \"none\"\n";
        assert_eq!(
            parse_err(no_default),
            "m.toml:2: default stack `x` is not defined (defined stacks: a)"
        );
        let bad_name =
            "[vunet]\ndefault = \"a b\"\n[[vunet.stack]]\nname = \"a b\"\nkind = \"none\"\n";
        assert!(parse_err(bad_name).starts_with("m.toml:4: stack name `a b` must be"));
    }

    #[test]
    fn syntax_and_typos_are_refused_with_their_line() {
        let typo = "[vunet]\ndefault = \"a\"\n[[vunet.stack]]\nname = \"a\"\nkidn = \"none\"\n";
        let message = parse_err(typo);
        assert!(message.starts_with("m.toml:5: unknown field `kidn`"), "{message}");
        let syntax = "[vunet\n";
        assert!(parse_err(syntax).starts_with("m.toml:1: "), "{}", parse_err(syntax));
        let missing = "[vunet]\n";
        assert!(parse_err(missing).contains("missing field `default`"), "{}", parse_err(missing));
        assert_refused(&stack_a("", "adresses = []\n", ""), "adresses", "unknown field `adresses`");
        assert_refused(&net("[[vunet.switch]]\nnmae = \"x\"\n"), "nmae", "unknown field `nmae`");
        let route = stack_a("\"10.0.0.2/24\"", "", "[[vunet.stack.route]]\nto = \"default\"\n");
        assert_refused(&route, "[[vunet.stack.route]]", "missing field `via`");
        assert_refused(&stack_a("", "mtu = \"big\"\n", ""), "mtu", "expected i64");
    }

    #[test]
    fn always_available_stacks_can_be_the_default_unlisted() {
        let text = "[vunet]\ndefault = \"none\"\n";
        assert!(parse(text, &Origin::BuiltIn, KINDS).is_ok());
    }

    #[test]
    fn only_smoltcp_stacks_take_addresses_interfaces_and_routes() {
        let head = "[vunet]\ndefault = \"a\"\n[[vunet.switch]]\nname = \"sw0\"\n\
                    [[vunet.stack]]\nname = \"a\"\nkind = \"none\"\n";
        let text = format!("{head}addresses = [\"10.0.0.2/24\"]\n");
        assert_eq!(
            parse_err(&text),
            "m.toml:8: a `none` stack has no addresses of its own; only smoltcp stacks take \
             `addresses`"
        );
        let text = format!("{head}[[vunet.stack.interface]]\nswitch = \"sw0\"\n");
        assert_refused(&text, "[[vunet.stack.interface]]", "a `none` stack has no interfaces");
        let text = format!("{head}[[vunet.stack.route]]\nto = \"default\"\nvia = \"10.0.0.1\"\n");
        assert_refused(&text, "to = ", "a `none` stack has no routes");
        let bad = "[vunet]\ndefault = \"a\"\n[[vunet.stack]]\nname = \"a\"\nkind = \"smoltcp\"\n\
                   addresses = [\"10.0.0.2/33\"]\n";
        assert_refused(bad, "addresses", "prefix length must be 0 to 32");
    }

    #[test]
    fn stack_level_addresses_are_one_unplugged_eth0() {
        let text = "[vunet]\ndefault = \"a\"\n[[vunet.stack]]\nname = \"n\"\nkind = \"none\"\n\
                    [[vunet.stack]]\nname = \"a\"\nkind = \"smoltcp\"\n\
                    addresses = [\"10.0.0.2/24\", \"fd00::2\"]\n";
        let vunet = parse_ok(text);
        let eth0 = InterfaceSpec {
            name: "eth0".into(),
            switch: None,
            mac: [0x02, 0x6e, 0x76, 0, 1, 0],
            mtu: DEFAULT_MTU,
            addresses: vec![cidr("10.0.0.2/24"), cidr("fd00::2/128")],
            capture: None,
        };
        assert_eq!(vunet.stacks[1].interfaces(1), [eth0]);
        assert_eq!(
            vunet.stacks[1].ips(),
            ["10.0.0.2".parse::<IpAddr>().unwrap(), "fd00::2".parse().unwrap()]
        );
        let both = stack_a("", "", "")
            .replace("kind = \"smoltcp\"\n", "kind = \"smoltcp\"\naddresses = [\"10.0.0.9/24\"]\n");
        assert_refused(&both, "10.0.0.9", "give either `addresses` or [[vunet.stack.interface]]");
    }

    #[test]
    fn addresses_bare_or_with_a_prefix() {
        assert_eq!(parse_cidr("10.0.0.2").unwrap(), cidr("10.0.0.2/32"));
        assert_eq!(parse_cidr("fd00::2").unwrap(), cidr("fd00::2/128"));
        for (bad, why) in [
            ("10.0.0.2/", "prefix length must be 0 to 32"),
            ("10.0.0.2/+4", "prefix length must be 0 to 32"),
            ("fd00::2/129", "prefix length must be 0 to 128"),
            ("10.0.0", "is not an IP address"),
            ("0.0.0.0/8", "the unspecified address"),
            ("224.0.0.1", "a multicast address"),
            ("127.0.0.2/8", "a loopback address"),
            ("::1", "a loopback address"),
            ("255.255.255.255", "the broadcast address"),
        ] {
            let text = stack_a(&format!("\"{bad}\""), "", "");
            assert_refused(&text, bad, why);
        }
        let twice = stack_a("\"10.0.0.2/24\", \"10.0.0.2/16\"", "", "");
        assert_refused(&twice, "10.0.0.2/24", "address 10.0.0.2 is given twice on this interface");
    }

    #[test]
    fn cidr_networks() {
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
    fn names_are_unique() {
        let switches = format!("{}[[vunet.switch]]\nname = \"sw0\"\n", stack_a("", "", ""));
        let message = parse_err(&switches);
        assert!(
            message.ends_with("switch `sw0` is defined twice (first on line 4); rename one"),
            "{message}"
        );
        let bad_switch = stack_a("", "", "[[vunet.switch]]\nname = \"s w\"\n");
        assert_refused(&bad_switch, "s w", "switch name `s w` must be");

        let router = "[[vunet.router]]\nname = \"gw\"\n\
                      [[vunet.router.interface]]\nswitch = \"sw0\"\naddresses = [\"10.0.0.1/24\"]\n";
        let routers = stack_a(
            "\"10.0.0.2/24\"",
            "",
            &format!("{router}{}", router.replace("10.0.0.1", "10.0.1.1").replace("sw0", "sw1")),
        );
        assert_refused_last(&routers, "name = \"gw\"", "router `gw` is defined twice");
        let same_as_stack = stack_a("\"10.0.0.2/24\"", "", &router.replace("gw", "a"));
        assert_refused_last(&same_as_stack, "name = \"a\"", "`a` is already a stack's name");

        let two_eth1 =
            stack_a("\"10.0.0.2/24\"", "name = \"eth1\"\n", "[[vunet.stack.interface]]\n");
        assert_refused_last(
            &two_eth1,
            "[[vunet.stack.interface]]",
            "stack `a` has two interfaces named `eth1` (the other on line 10); give this one another name",
        );
        let explicit = stack_a("", "name = \"x\"\n", "[[vunet.stack.interface]]\nname = \"x\"\n");
        let message = parse_err(&explicit);
        assert!(
            message.starts_with("m.toml:15: stack `a` has two interfaces named `x`"),
            "{message}"
        );
        for bad in ["lo", "a-very-long-interface", "e th0", ""] {
            let text = stack_a("", &format!("name = \"{bad}\"\n"), "");
            assert_refused_last(&text, "name = \"", "must be 1 to 15 letters");
        }
    }

    #[test]
    fn interfaces_plug_into_declared_switches() {
        let text = stack_a("", "", "").replace("switch = \"sw0\"", "switch = \"sw9\"");
        let message = parse_err(&text);
        assert_eq!(
            message,
            "m.toml:11: no switch named `sw9`; declare it with [[vunet.switch]] name = \"sw9\""
        );
    }

    #[test]
    fn interfaces_resolve_with_their_defaults_and_given_values() {
        let text = net("[[vunet.stack]]\nname = \"n\"\nkind = \"none\"\n\
             [[vunet.stack]]\nname = \"z\"\nkind = \"smoltcp\"\n\
             [[vunet.stack]]\nname = \"a\"\nkind = \"smoltcp\"\n\
             [[vunet.stack.interface]]\nswitch = \"sw0\"\naddresses = [\"10.0.0.2/24\"]\n\
             [[vunet.stack.interface]]\nname = \"up\"\nswitch = \"sw1\"\nmac = \"02:AA:bb:cc:dd:ee\"\n\
             mtu = 9000\naddresses = [\"10.1.0.2/24\", \"fd01::2/64\"]\ncapture = \"up.pcap\"\n\
             [[vunet.stack.interface]]\naddresses = [\"192.168.7.7/24\"]\nmtu = 576\n\
             [[vunet.stack.route]]\nto = \"10.8.0.0/16\"\nvia = \"10.1.0.1\"\n\
             [[vunet.stack.route]]\nto = \"fd09::/48\"\nvia = \"fd01::1\"\n\
             [[vunet.stack.route]]\nto = \"10.9.9.9\"\nvia = \"192.168.7.1\"\n");
        let vunet = parse_ok(&text);
        let a = &vunet.stacks[2];
        let interfaces = a.interfaces(2);
        let names: Vec<_> = interfaces.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["eth0", "up", "eth2"]);
        assert_eq!(interfaces[0].mac, [0x02, 0x6e, 0x76, 0, 2, 0]);
        assert_eq!(interfaces[1].mac, [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee]);
        assert_eq!(interfaces[2].mac, [0x02, 0x6e, 0x76, 0, 2, 2]);
        assert_eq!(interfaces.iter().map(|i| i.mtu).collect::<Vec<_>>(), [1500, 9000, 576]);
        assert_eq!(interfaces[1].switch.as_deref(), Some("sw1"));
        assert_eq!(interfaces[2].switch, None);
        assert_eq!(interfaces[1].capture, Some(PathBuf::from("conf/up.pcap")));
        assert_eq!(interfaces[0].capture, None);
        assert_eq!(
            a.routes(),
            [
                RouteSpec { to: cidr("10.8.0.0/16"), via: "10.1.0.1".parse().unwrap() },
                RouteSpec { to: cidr("fd09::/48"), via: "fd01::1".parse().unwrap() },
                RouteSpec { to: cidr("10.9.9.9/32"), via: "192.168.7.1".parse().unwrap() },
            ]
        );
        assert_eq!(a.ips().len(), 4);
        assert!(vunet.stacks[1].interfaces(1).is_empty());
    }

    #[test]
    fn macs_are_unicast_and_unique() {
        for (bad, why) in [
            ("02:6e:76:0:0:1", "is not a MAC address"),
            ("02-6e-76-00-00-01", "is not a MAC address"),
            ("02:6e:76:00:00:01:02", "is not a MAC address"),
            ("02:6e:76:00:00:0g", "is not a MAC address"),
            ("01:00:5e:00:00:01", "is a multicast MAC address"),
            ("ff:ff:ff:ff:ff:ff", "is a multicast MAC address"),
            ("00:00:00:00:00:00", "cannot be an interface's MAC address"),
        ] {
            let text = stack_a("", &format!("mac = \"{bad}\"\n"), "");
            assert_refused(&text, "mac = ", why);
        }
        let twice = stack_a(
            "",
            "mac = \"02:00:00:00:00:01\"\n",
            "[[vunet.stack.interface]]\nmac = \"02:00:00:00:00:01\"\n",
        );
        assert_refused_last(
            &twice,
            "mac = ",
            "MAC address 02:00:00:00:00:01 is already used by stack `a` interface eth0 (line 10); give \
             this interface another mac",
        );
        // An explicit MAC that is another interface's default, after or before it.
        let router = "[[vunet.router]]\nname = \"gw\"\n[[vunet.router.interface]]\nswitch = \"sw0\"\n\
                      addresses = [\"10.0.0.1/24\"]\n";
        let after = stack_a("", "", &format!("{router}mac = \"02:6e:76:00:00:00\"\n"));
        assert_refused(
            &after,
            "mac = ",
            "MAC address 02:6e:76:00:00:00 is already used by stack `a` interface eth0",
        );
        let before = format!(
            "{}[[vunet.stack]]\nname = \"b\"\nkind = \"smoltcp\"\n[[vunet.stack.interface]]\n",
            stack_a("", "mac = \"02:6e:76:00:01:00\"\n", "")
        );
        assert_refused_last(
            &before,
            "[[vunet.stack.interface]]",
            "this interface's default MAC address 02:6e:76:00:01:00 is already used by stack `a` interface eth0",
        );
    }

    #[test]
    fn an_address_belongs_to_one_party() {
        let b = |keys: &str| {
            format!(
                "[[vunet.stack]]\nname = \"b\"\nkind = \"smoltcp\"\n[[vunet.stack.interface]]\n{keys}"
            )
        };
        let shared =
            stack_a("\"10.0.0.2/24\"", "", &b("switch = \"sw1\"\naddresses = [\"10.0.0.2/24\"]\n"));
        assert_refused_last(
            &shared,
            "10.0.0.2/24",
            "address 10.0.0.2 is already used by stack `a` interface eth0 (line 10)",
        );
        let router = "[[vunet.router]]\nname = \"gw\"\n[[vunet.router.interface]]\nswitch = \"sw1\"\n\
                      addresses = [\"fd00::2/64\"]\n";
        let with_router = stack_a("\"fd00::2/64\"", "", router);
        assert_refused_last(&with_router, "fd00::2/64", "already used by stack `a`");
        let one_stack = stack_a(
            "\"10.0.0.2/24\"",
            "",
            "[[vunet.stack.interface]]\naddresses = [\"10.0.0.2/8\"]\n",
        );
        assert_refused(
            &one_stack,
            "10.0.0.2/8",
            "address 10.0.0.2 is already used by stack `a` interface eth0",
        );
        // Unplugged interfaces of different stacks never meet: they may share one.
        parse_ok(&stack_a("\"10.0.0.2/24\"", "", &b("addresses = [\"10.0.0.2/24\"]\n")));
        let unplugged_twice = "[vunet]\ndefault = \"a\"\n\
            [[vunet.stack]]\nname = \"a\"\nkind = \"smoltcp\"\naddresses = [\"10.0.0.2/24\"]\n\
            [[vunet.stack]]\nname = \"b\"\nkind = \"smoltcp\"\naddresses = [\"10.0.0.2/24\"]\n";
        parse_ok(unplugged_twice);
    }

    #[test]
    fn mtus_are_in_range() {
        for bad in ["575", "65536", "-1", "0", "99999999999"] {
            let text = stack_a("\"10.0.0.2/24\"", &format!("mtu = {bad}\n"), "");
            assert_refused(
                &text,
                "mtu",
                &format!("mtu {bad} is out of range: give one from 576 to 65535"),
            );
        }
        parse_ok(&stack_a("\"10.0.0.2/24\"", "mtu = 576\n", ""));
        parse_ok(&stack_a("\"10.0.0.2/24\"", "mtu = 65535\n", ""));
        parse_ok(&stack_a("\"fd00::2/64\"", "mtu = 1280\n", ""));
        let small = stack_a("\"10.0.0.2/24\", \"fd00::2/64\"", "mtu = 1279\n", "");
        assert_refused(
            &small,
            "mtu",
            "mtu 1279 is below 1280, the least IPv6 allows, and this interface has the IPv6 address fd00::2/64",
        );
    }

    #[test]
    fn routes_are_checked() {
        let route = |to: &str, via: &str| {
            stack_a(
                "\"10.0.0.2/24\", \"fd00::2/64\"",
                "",
                &format!("[[vunet.stack.route]]\nto = \"{to}\"\nvia = \"{via}\"\n"),
            )
        };
        parse_ok(&route("default", "10.0.0.1"));
        parse_ok(&route("0.0.0.0/0", "10.0.0.1"));
        parse_ok(&route("fd01::/64", "fd00::1"));
        assert_refused(
            &route("10.1.0.1/16", "10.0.0.1"),
            "to = ",
            "`10.1.0.1/16`: Invalid prefix for given prefix length (host bits are set); write 10.1.0.0/16",
        );
        assert_refused(&route("fd01::1/64", "fd00::1"), "to = ", "write fd01::/64");
        assert_refused(&route("everywhere", "10.0.0.1"), "to = ", "give \"default\" or a prefix");
        assert_refused(&route("10.1.0.0/40", "10.0.0.1"), "to = ", "prefix length must be 0 to 32");
        assert_refused(&route("default", "10.0.0.1/24"), "via = ", "without a prefix length");
        assert_refused(&route("default", "gateway"), "via = ", "is not an IP address");
        assert_refused(&route("default", "0.0.0.0"), "via = ", "cannot be a gateway");
        assert_refused(
            &route("default", "10.9.0.1"),
            "via = ",
            "gateway 10.9.0.1 is on none of stack `a`'s subnets (10.0.0.0/24); a gateway must be on \
             the subnet of one of its interfaces",
        );
        assert_refused(
            &route("10.1.0.0/16", "fd00::1"),
            "via = ",
            "gateway fd00::1 is IPv6 but 10.1.0.0/16 is IPv4",
        );
        assert_refused(
            &route("default", "10.0.0.2"),
            "via = ",
            "gateway 10.0.0.2 is stack `a`'s own address",
        );
        let v4_only = stack_a(
            "\"10.0.0.2/24\"",
            "",
            "[[vunet.stack.route]]\nto = \"default\"\nvia = \"fd00::1\"\n",
        );
        assert_refused(
            &v4_only,
            "via = ",
            "stack `a` has no IPv6 address, so gateway fd00::1 is out of its reach",
        );
        let twice = stack_a(
            "\"10.0.0.2/24\", \"fd00::2/64\"",
            "",
            "[[vunet.stack.route]]\nto = \"default\"\nvia = \"10.0.0.1\"\n\
             [[vunet.stack.route]]\nto = \"default\"\nvia = \"fd00::1\"\n\
             [[vunet.stack.route]]\nto = \"0.0.0.0/0\"\nvia = \"10.0.0.9\"\n",
        );
        assert_refused(
            &twice,
            "0.0.0.0/0",
            "a route to default (IPv4) is already given on line 14; keep one",
        );
        // A gateway on an unplugged interface's subnet counts.
        let unplugged = "[vunet]\ndefault = \"a\"\n\
            [[vunet.stack]]\nname = \"a\"\nkind = \"smoltcp\"\naddresses = [\"10.0.0.2/24\"]\n\
            [[vunet.stack.route]]\nto = \"default\"\nvia = \"10.0.0.1\"\n";
        assert_eq!(parse_ok(unplugged).stacks[0].routes().len(), 1);
    }

    #[test]
    fn smoltcp_capacities_are_limits() {
        let eight: Vec<String> = (1..=8).map(|i| format!("\"10.0.{i}.2/24\"")).collect();
        parse_ok(&stack_a(&eight.join(", "), "", ""));
        let nine: Vec<String> = (1..=9).map(|i| format!("\"10.0.{i}.2/24\"")).collect();
        assert_refused(
            &stack_a(&nine.join(", "), "", ""),
            "addresses",
            "more than 8 addresses on one interface, the most smoltcp holds",
        );
        let routes = |n: usize| {
            let routes: String = (1..=n)
                .map(|i| {
                    format!("[[vunet.stack.route]]\nto = \"10.{i}.0.0/16\"\nvia = \"10.0.0.1\"\n")
                })
                .collect();
            stack_a("\"10.0.0.2/24\"", "", &routes)
        };
        assert_eq!(parse_ok(&routes(16)).stacks[0].routes().len(), 16);
        assert_refused(&routes(17), "10.17.0.0", "stack `a` has more than 16 routes");
        let interfaces = "[[vunet.stack.interface]]\n".repeat(16);
        assert_refused_last(
            &stack_a("", "", &interfaces),
            "[[vunet.stack.interface]]",
            "stack `a` has more than 16 interfaces",
        );
    }

    #[test]
    fn routers_need_switches_and_addresses() {
        let router = |keys: &str| {
            stack_a(
                "\"10.0.0.2/24\"",
                "",
                &format!("[[vunet.router]]\nname = \"gw\"\n[[vunet.router.interface]]\n{keys}"),
            )
        };
        assert_refused(
            &router("addresses = [\"10.0.0.1/24\"]\n"),
            "[[vunet.router.interface]]",
            "a router interface needs a switch: add switch = \"NAME\"",
        );
        assert_refused(
            &router("switch = \"sw0\"\n"),
            "[[vunet.router.interface]]",
            "a router interface needs addresses",
        );
        assert_refused(
            &router("switch = \"sw7\"\naddresses = [\"10.0.0.1/24\"]\n"),
            "sw7",
            "no switch named `sw7`",
        );
        let lonely = stack_a("\"10.0.0.2/24\"", "", "[[vunet.router]]\nname = \"gw\"\n");
        assert_refused(&lonely, "name = \"gw\"", "router `gw` has no interface");
        let two = router(
            "switch = \"sw0\"\naddresses = [\"10.0.0.1/24\"]\ncapture = \"gw0.pcap\"\n\
             [[vunet.router.interface]]\nswitch = \"sw1\"\naddresses = [\"10.1.0.1/24\", \"fd01::1/64\"]\n\
             name = \"wan\"\nmac = \"02:00:00:00:00:09\"\n",
        );
        let routers = parse_ok(&two).routers();
        assert_eq!(routers.len(), 1);
        let gw = &routers[0];
        assert_eq!(gw.interfaces[0].name, "eth0");
        assert_eq!(gw.interfaces[0].mac, [0x02, 0x6e, 0x76, 0xff, 0, 0]);
        assert_eq!(gw.interfaces[0].capture, Some(PathBuf::from("conf/gw0.pcap")));
        assert_eq!(gw.interfaces[1].name, "wan");
        assert_eq!(gw.interfaces[1].switch.as_deref(), Some("sw1"));
        assert_eq!(gw.interfaces[1].mac, [0x02, 0, 0, 0, 0, 9]);
        assert_eq!(gw.interfaces[1].addresses, [cidr("10.1.0.1/24"), cidr("fd01::1/64")]);
        // The second router's default MACs.
        let second = format!(
            "{two}[[vunet.router]]\nname = \"gw2\"\n[[vunet.router.interface]]\nswitch = \"sw1\"\n\
             addresses = [\"10.1.0.254/24\"]\n"
        );
        assert_eq!(
            parse_ok(&second).routers()[1].interfaces[0].mac,
            [0x02, 0x6e, 0x76, 0xff, 1, 0]
        );
    }

    #[test]
    fn captures_are_files_of_their_own_relative_to_the_configuration() {
        let with =
            |capture: &str| stack_a("\"10.0.0.2/24\"", &format!("capture = \"{capture}\"\n"), "");
        let spec = |text: &str, origin: &Origin| {
            parse(text, origin, KINDS).unwrap().vunet.stacks[0].interfaces(0)[0].capture.clone()
        };
        let file = Origin::File("/etc/netvm/modules.toml".into());
        assert_eq!(spec(&with("a.pcap"), &file), Some(PathBuf::from("/etc/netvm/a.pcap")));
        assert_eq!(spec(&with("/tmp/a.pcap"), &file), Some(PathBuf::from("/tmp/a.pcap")));
        let bare = Origin::File("modules.toml".into());
        assert_eq!(spec(&with("a.pcap"), &bare), Some(PathBuf::from("a.pcap")));
        assert_eq!(spec(&with("d/a.pcap"), &Origin::BuiltIn), Some(PathBuf::from("d/a.pcap")));
        assert_refused(&with(""), "capture", "capture needs a file name");
        let unplugged = with("a.pcap").replace("switch = \"sw0\"\n", "");
        assert_refused(&unplugged, "capture", "an interface with no switch has no link to capture");
        let twice = stack_a(
            "\"10.0.0.2/24\"",
            "capture = \"a.pcap\"\n",
            "[[vunet.stack.interface]]\nswitch = \"sw1\"\ncapture = \"./../conf/a.pcap\"\n\
             [[vunet.stack.interface]]\nswitch = \"sw1\"\ncapture = \"a.pcap\"\n",
        );
        assert_refused_last(
            &twice,
            "capture = ",
            "capture file `a.pcap` is already used by stack `a` interface eth0 (line 10); give each link \
             its own file",
        );
    }

    #[test]
    fn a_session_mounts_at_most_62_stacks() {
        let mut text = String::from("[vunet]\ndefault = \"s0\"\n");
        for i in 0..63 {
            text.push_str(&format!("[[vunet.stack]]\nname = \"s{i}\"\nkind = \"none\"\n"));
        }
        let message = parse_err(&text);
        assert!(message.ends_with("at most 62 stacks can be mounted in one session"), "{message}");
    }

    #[test]
    fn huge_files_are_refused_without_reading_them_whole() {
        let err = load(&Origin::File("/dev/zero".into()), KINDS).unwrap_err();
        assert!(err.to_string().contains("larger than 1024 KiB"), "{err}");
    }

    #[test]
    fn an_explicit_file_wins() {
        let path = Path::new("/some/where.toml");
        assert_eq!(locate(Some(path)), Origin::File(path.to_owned()));
    }

    #[test]
    fn a_missing_file_is_an_error_not_a_fallback() {
        let origin = Origin::File("/nonexistent/netvm.toml".into());
        let err = load(&origin, KINDS).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/nonexistent/netvm.toml: cannot read: No such file or directory"
        );
    }
}
