//! The `[vunet]` table: the network module's stacks and the virtual network between
//! them.
//!
//! `[[vunet.switch]]` tables declare named L2 segments; `[[vunet.router]]` tables
//! declare built-in routers, each with interfaces on switches; `[[vunet.uplink]]`
//! tables plug ways out to the host's network into switches; `[[vunet.stack]]`
//! tables mount stacks. A stack table's `name` and `kind` are read here; the rest of
//! it belongs to its kind ([`StackKind::configure`]), which may make the stack a
//! host on the network with the common keys of [`HostSection`]. Everything that
//! must hold across the whole network (names, addresses, MACs, capture files,
//! gateways) is checked here, by `check.rs`, for routers and hosts alike. The raw
//! tables keep their places in the text for messages; [`StackConfig::interfaces`],
//! [`StackConfig::routes`] and [`VunetConfig::routers`] give them resolved.

mod check;
pub mod interface;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;

use super::kind::{Key, KindConfig, Registry, StackKind};
use super::uplink::forward::Publish;
use super::uplink::policy::Rule;
use crate::config::{Fault, Table};
pub use interface::{
    InterfaceConfig, InterfaceSpec, MAX_INTERFACES, RouteConfig, RouteSpec, RouterSpec, UplinkSpec,
};

/// The `[vunet]` table: the network module, its stacks and the network between them.
#[derive(Debug)]
pub struct VunetConfig {
    /// The stack a command runs on when `--stack` is not given.
    pub default: Spanned<String>,
    /// The switches, as `[[vunet.switch]]` tables.
    pub switches: Vec<SwitchConfig>,
    /// The routers as written, as `[[vunet.router]]` tables; see
    /// [`VunetConfig::routers`] for them resolved.
    pub router_tables: Vec<RouterConfig>,
    /// The uplinks as written, as `[[vunet.uplink]]` tables; see
    /// [`VunetConfig::uplinks`] for them resolved.
    pub uplink_tables: Vec<UplinkConfig>,
    /// The mounted stacks, as `[[vunet.stack]]` tables.
    pub stacks: Vec<StackConfig>,
    /// How many of the supervisor's descriptors one process may hold (see
    /// [`Budget`](super::budget::Budget)); `None`: a quarter of its limit.
    pub descriptors_per_process: Option<usize>,
    /// The kinds the stacks were read with.
    kinds: &'static Registry,
}

/// The `[vunet]` table as serde reads it; stack tables are read one by one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VunetTable {
    default: Spanned<String>,
    #[serde(default, rename = "descriptors-per-process")]
    descriptors_per_process: Option<Spanned<i64>>,
    #[serde(default, rename = "switch")]
    switches: Vec<SwitchConfig>,
    #[serde(default, rename = "router")]
    router_tables: Vec<RouterConfig>,
    #[serde(default, rename = "uplink")]
    uplink_tables: Vec<UplinkConfig>,
    /// Tables, each read on its own (see [`read_stack`]).
    #[serde(default, rename = "stack")]
    #[allow(dead_code)]
    stacks: Vec<HashMap<String, IgnoredAny>>,
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
    /// Its `[[vunet.router.route]]` tables: static routes through gateways on
    /// its subnets, besides the subnets it is connected to.
    #[serde(default, rename = "route")]
    pub route_tables: Vec<RouteConfig>,
    /// The directory relative capture paths are in.
    #[serde(skip)]
    capture_dir: PathBuf,
}

/// One `[[vunet.uplink]]`, as written: a host on a switch through which the
/// session's stacks reach the host's network, their flows carried by the
/// supervisor's own sockets (see `vunet::uplink`). Its one interface's keys are
/// the table's own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UplinkConfig {
    /// Its name (distinct from every stack's and router's).
    pub name: Spanned<String>,
    /// The switch it is plugged into.
    pub switch: Option<Spanned<String>>,
    /// Its MAC address; a default if not given.
    pub mac: Option<Spanned<String>>,
    /// Its link's MTU.
    pub mtu: Option<Spanned<i64>>,
    /// Its addresses: the routers' gateway towards the host's network.
    #[serde(default)]
    pub addresses: Vec<Spanned<String>>,
    /// A pcap file for its link.
    pub capture: Option<Spanned<String>>,
    /// Ports of the host's published to stacks through it, as `netvm run -p`
    /// writes them (`8080:lwip1:80`).
    #[serde(default)]
    pub publish: Vec<Spanned<String>>,
    /// Its DNS addresses, on its subnets: port 53 there reaches the host's
    /// nameservers, even those on the host's loopback.
    #[serde(default)]
    pub dns: Vec<Spanned<String>>,
    /// The directory relative capture paths are in.
    #[serde(skip)]
    capture_dir: PathBuf,
}

impl UplinkConfig {
    /// Its interface, as a table of a router's would be written.
    fn interface_table(&self) -> Spanned<InterfaceConfig> {
        let interface = InterfaceConfig {
            name: None,
            switch: self.switch.clone(),
            mac: self.mac.clone(),
            mtu: self.mtu.clone(),
            addresses: self.addresses.clone(),
            capture: self.capture.clone(),
        };
        Spanned::new(self.name.span(), interface)
    }
}

/// One `[[vunet.stack]]`: a mounted stack instance.
#[derive(Debug)]
pub struct StackConfig {
    /// What processes and `--stack` call it.
    pub name: Spanned<String>,
    /// Which kind of stack it is.
    pub kind: Spanned<String>,
    /// The rest of the table, read by its kind.
    pub section: Box<dyn KindConfig>,
}

/// The keys every `[[vunet.stack]]` table has (their absence is told after a
/// mistyped key, as serde would).
#[derive(Deserialize)]
struct StackHead {
    name: Option<Spanned<String>>,
    kind: Option<Spanned<String>>,
}

/// The keys of a `[[vunet.stack]]` table whose stack is a host on the session's
/// network, as written: a kind with such stacks reads its tables as this.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSection {
    #[serde(rename = "name")]
    _name: IgnoredAny,
    #[serde(rename = "kind")]
    _kind: IgnoredAny,
    /// The older form of one unplugged interface `eth0`: its addresses, as
    /// `ADDRESS/PREFIX` or a bare address. Not with `interface_tables`.
    #[serde(default)]
    pub addresses: Vec<Spanned<String>>,
    /// Its `[[vunet.stack.interface]]` tables.
    #[serde(default, rename = "interface")]
    pub interface_tables: Vec<Spanned<InterfaceConfig>>,
    /// Its `[[vunet.stack.route]]` tables.
    #[serde(default, rename = "route")]
    pub route_tables: Vec<RouteConfig>,
    /// Its egress rules (`allow tcp:443`, ...), for flows that leave the
    /// session through an uplink.
    #[serde(default)]
    pub egress: Vec<Spanned<String>>,
}

impl HostSection {
    /// The keys of [`HostSection`], for [`StackKind::keys`].
    pub const KEYS: &[Key] = &[
        Key {
            key: "addresses",
            lacks: "addresses of its own",
            written: "`addresses`",
            point_at: None,
        },
        Key {
            key: "interface",
            lacks: "interfaces",
            written: "[[vunet.stack.interface]]",
            point_at: None,
        },
        Key {
            key: "route",
            lacks: "routes",
            written: "[[vunet.stack.route]]",
            point_at: Some("to"),
        },
        Key { key: "egress", lacks: "egress rules", written: "`egress`", point_at: None },
    ];

    /// The host's interfaces and routes; the older stack-level `addresses` make one
    /// unplugged interface `eth0`. `table` is where the section was read from.
    pub fn into_network(self, table: &Table) -> Result<NetworkConfig, Fault> {
        if let (Some(first), false) = (self.addresses.first(), self.interface_tables.is_empty()) {
            let why = "give either `addresses` or [[vunet.stack.interface]] tables, not both: \
                       move these addresses into an interface"
                .to_owned();
            return Err((first.span(), why));
        }
        let interface_tables = match self.addresses.first().map(Spanned::span) {
            Some(at) => {
                let eth0 = InterfaceConfig { addresses: self.addresses, ..Default::default() };
                vec![Spanned::new(at, eth0)]
            }
            None => self.interface_tables,
        };
        let egress = self
            .egress
            .iter()
            .map(|rule| rule.get_ref().parse::<Rule>().map_err(|why| (rule.span(), why)))
            .collect::<Result<_, _>>()?;
        Ok(NetworkConfig {
            interface_tables,
            route_tables: self.route_tables,
            egress,
            capture_dir: table.base_dir().to_owned(),
        })
    }
}

/// A host's interfaces and routes on the session's network, as written.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// Its interface tables.
    pub interface_tables: Vec<Spanned<InterfaceConfig>>,
    /// Its route tables.
    pub route_tables: Vec<RouteConfig>,
    /// Its egress rules, in order.
    pub egress: Vec<Rule>,
    /// The directory relative capture paths are in.
    pub capture_dir: PathBuf,
}

impl StackConfig {
    /// The stack's interfaces, resolved; `stack_index` is the stack's position among
    /// the `[[vunet.stack]]` tables (it picks the default MAC addresses).
    pub fn interfaces(&self, stack_index: usize) -> Vec<InterfaceSpec> {
        let network = self.section.network();
        network.map_or_else(Vec::new, |network| Self::resolve_network(network, stack_index))
    }

    /// The stack's routes, resolved, in file order.
    pub fn routes(&self) -> Vec<RouteSpec> {
        self.section.network().map_or_else(Vec::new, Self::resolve_routes)
    }

    /// The interfaces of host network `network`, resolved, for stack number
    /// `stack_index`.
    pub fn resolve_network(network: &NetworkConfig, stack_index: usize) -> Vec<InterfaceSpec> {
        interface::resolve_interfaces(
            &network.interface_tables,
            interface::STACK_MAC_BYTE,
            stack_index,
            &network.capture_dir,
        )
    }

    /// The routes of host network `network`, resolved, in file order.
    pub fn resolve_routes(network: &NetworkConfig) -> Vec<RouteSpec> {
        interface::resolve_routes(&network.route_tables)
    }

    /// The stack's egress rules, in order.
    pub fn egress(&self) -> &[Rule] {
        self.section.network().map_or(&[], |n| &n.egress[..])
    }

    /// Every address of every interface (checked when the file was read).
    pub fn ips(&self) -> Vec<IpAddr> {
        self.interfaces(0).iter().flat_map(|i| i.addresses.iter().map(|c| c.ip)).collect()
    }

    /// The interface tables, if the stack is a host on the network.
    fn interface_tables(&self) -> Cow<'_, [Spanned<InterfaceConfig>]> {
        self.section
            .network()
            .map_or(Cow::Owned(Vec::new()), |n| Cow::Borrowed(&n.interface_tables[..]))
    }
}

impl VunetConfig {
    /// Reads and checks the `[vunet]` table, whose stacks are of the kinds in
    /// `kinds`.
    pub fn read(table: &Table, kinds: &'static Registry) -> Result<Self, Fault> {
        let VunetTable {
            default,
            switches,
            mut router_tables,
            mut uplink_tables,
            descriptors_per_process,
            ..
        } = table.read()?;
        let descriptors_per_process = match descriptors_per_process {
            Some(n) if *n.get_ref() < 1 || *n.get_ref() > i64::from(i32::MAX) => {
                let why = "descriptors-per-process must be a number from 1 to 2147483647";
                return Err((n.span(), why.to_owned()));
            }
            n => n.map(|n| *n.get_ref() as usize),
        };
        for router in &mut router_tables {
            router.capture_dir = table.base_dir().to_owned();
        }
        for uplink in &mut uplink_tables {
            uplink.capture_dir = table.base_dir().to_owned();
        }
        let stack_tables = table.tables("stack");
        let mut stacks = Vec::new();
        for stack in &stack_tables {
            let read = read_stack(stack, kinds, &stacks)?;
            stacks.push(read);
        }
        let config = Self {
            default,
            switches,
            router_tables,
            uplink_tables,
            stacks,
            descriptors_per_process,
            kinds,
        };
        check::check(&config, table)?;
        Ok(config)
    }

    /// The kind of the stack `name` would be: its declared kind, or for a name not
    /// declared, the kind of that name that can be mounted unconfigured.
    pub fn kind_of(&self, name: &str) -> Option<&'static dyn StackKind> {
        match self.stacks.iter().find(|s| s.name.get_ref() == name) {
            Some(stack) => self.kinds.find(stack.kind.get_ref()),
            None => self.kinds.unconfigured(name),
        }
    }

    /// The kinds the stacks were read with.
    pub fn kinds(&self) -> &'static Registry {
        self.kinds
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
                interfaces: interface::resolve_interfaces(
                    &router.interface_tables,
                    interface::ROUTER_MAC_BYTE,
                    r,
                    &router.capture_dir,
                ),
                routes: interface::resolve_routes(&router.route_tables),
            })
            .collect()
    }
}

impl VunetConfig {
    /// The uplinks, resolved, in file order.
    pub fn uplinks(&self) -> Vec<UplinkSpec> {
        self.uplink_tables
            .iter()
            .enumerate()
            .map(|(u, uplink)| UplinkSpec {
                name: uplink.name.get_ref().clone(),
                dns: uplink.dns.iter().filter_map(|a| a.get_ref().parse().ok()).collect(),
                interface: interface::resolve_interface(
                    uplink.interface_table().get_ref(),
                    0,
                    interface::default_mac(interface::UPLINK_MAC_BYTE, u, 0),
                    &uplink.capture_dir,
                ),
            })
            .collect()
    }

    /// The ports the uplinks publish, in file order (checked when read).
    pub fn published(&self) -> Vec<Publish> {
        let written = self.uplink_tables.iter().flat_map(|u| &u.publish);
        written.filter_map(|p| p.get_ref().parse().ok()).collect()
    }

    /// Leaves the uplinks out (`--no-uplink`), and the routers' routes through
    /// them: the session reaches nothing beyond its own network, and a router
    /// says so at once ("network unreachable").
    pub fn without_uplinks(&mut self) {
        let gateways: Vec<IpAddr> = self
            .uplinks()
            .iter()
            .flat_map(|u| u.interface.addresses.iter().map(|c| c.ip))
            .collect();
        for router in &mut self.router_tables {
            router.route_tables.retain(|route| {
                interface::parse_gateway(route.via.get_ref())
                    .map_or(true, |via| !gateways.contains(&via))
            });
        }
        self.uplink_tables.clear();
    }
}

/// Reads one `[[vunet.stack]]` table: its name and kind here, the rest by its kind;
/// `earlier` are the stacks before it.
fn read_stack(
    table: &Table,
    kinds: &Registry,
    earlier: &[StackConfig],
) -> Result<StackConfig, Fault> {
    let StackHead { name, kind } = table.read()?;
    let stack_kind = kind.as_ref().and_then(|kind| kinds.find(kind.get_ref()));
    refuse_unknown_keys(table, stack_kind, kinds)?;
    let missing = |field| (table.span(), format!("missing field `{field}`"));
    let name = name.ok_or_else(|| missing("name"))?;
    let kind = kind.ok_or_else(|| missing("kind"))?;
    check::check_stack_name(table, &name, kinds, earlier)?;
    let Some(stack_kind) = stack_kind else {
        let known: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
        let why =
            format!("unknown stack kind `{}` (known kinds: {})", kind.get_ref(), known.join(", "));
        return Err((kind.span(), why));
    };
    refuse_other_kinds_keys(table, stack_kind, kinds)?;
    let section = stack_kind.configure(table)?;
    Ok(StackConfig { name, kind, section })
}

/// Refuses a key of `table` that neither `name`, `kind` nor a key of its kind (of
/// any kind, while the kind is not known) is.
fn refuse_unknown_keys(
    table: &Table,
    kind: Option<&dyn StackKind>,
    kinds: &Registry,
) -> Result<(), Fault> {
    let kind_keys = |k: &dyn StackKind| k.keys().iter().map(|key| key.key).collect::<Vec<_>>();
    let mut known = vec!["name", "kind"];
    match kind {
        Some(kind) => known.extend(kind_keys(kind)),
        None => known.extend(kinds.iter().flat_map(kind_keys)),
    }
    let other_kinds: Vec<&str> = kinds.iter().flat_map(kind_keys).collect();
    for (key, at) in table.keys() {
        if !known.contains(&key) && !other_kinds.contains(&key) {
            let expected: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
            let expected = match &expected[..] {
                [one, other] => format!("{one} or {other}"),
                many => format!("one of {}", many.join(", ")),
            };
            let why = format!("unknown field `{key}`, expected {expected}");
            return Err((at, why));
        }
    }
    Ok(())
}

/// Refuses the keys `table` holds that other kinds take but `kind` does not,
/// saying which kinds take them.
fn refuse_other_kinds_keys(
    table: &Table,
    kind: &dyn StackKind,
    kinds: &Registry,
) -> Result<(), Fault> {
    let theirs = kinds.iter().flat_map(|k| k.keys().iter().map(move |key| (k.name(), key)));
    let mut owners: HashMap<&str, (Key, Vec<&str>)> = HashMap::new();
    for (name, key) in theirs {
        owners.entry(key.key).or_insert((*key, Vec::new())).1.push(name);
    }
    for (key, _) in table.keys() {
        if kind.keys().iter().any(|k| k.key == key) || table.is_empty_array(key) {
            continue;
        }
        if let Some((doc, kinds)) = owners.get(key) {
            let at = table.first_place(key, doc.point_at).expect("the key is in the table");
            let why = format!(
                "{} `{}` stack has no {}; only {} stacks take {}",
                article(kind.name()),
                kind.name(),
                doc.lacks,
                kinds.join(", "),
                doc.written
            );
            return Err((at, why));
        }
    }
    Ok(())
}

/// `a` or `an`, as `word` (a kind's name) begins.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}
