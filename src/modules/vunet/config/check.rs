//! The checks that hold across the whole `[vunet]` table: unique names, declared
//! switches, and, for every party on the network (routers and hosts alike), its
//! interfaces and routes: names, MACs, addresses and capture files unique, MTUs in
//! range, gateways on a subnet of the party's own.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::interface::{
    self, InterfaceConfig, InterfaceSpec, MAX_INTERFACES, MAX_MTU, MIN_IPV6_MTU, MIN_MTU,
    ROUTER_MAC_BYTE, RouteConfig, STACK_MAC_BYTE, UPLINK_MAC_BYTE, parse_destination,
    parse_gateway, parse_host_address, parse_mac,
};
use super::{StackConfig, VunetConfig};
use crate::config::{Fault, Table, is_valid_name};
use crate::modules::vunet::cidr::Cidr;
use crate::modules::vunet::kind::Registry;
use crate::modules::vunet::stack::MAX_STACKS;
use crate::modules::vunet::uplink::forward::Publish;

/// The most static routes one router takes (as many as a stack).
const MAX_ROUTER_ROUTES: usize = 256;
/// The most routers one configuration can declare.
const MAX_ROUTERS: usize = 64;
/// The most addresses one router interface (or uplink) can have.
const MAX_ROUTER_ADDRESSES: usize = 8;
/// The most uplinks one configuration can declare.
const MAX_UPLINKS: usize = 8;

/// Checks `vunet`, read from `table`.
pub fn check(vunet: &VunetConfig, table: &Table) -> Result<(), Fault> {
    Checker::new(table).check(vunet)
}

/// A stack, a router or an uplink: something with interfaces on the network.
struct Party<'a> {
    /// `stack`, `router` or `uplink`.
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
    /// Whether it is a device of the network (a router, an uplink), whose
    /// interfaces must be on switches and have addresses; a stack's need not.
    fn is_device(&self) -> bool {
        self.what != "stack"
    }

    /// The fourth byte of its default MAC addresses.
    fn mac_role(&self) -> u8 {
        match self.what {
            "router" => ROUTER_MAC_BYTE,
            "uplink" => UPLINK_MAC_BYTE,
            _ => STACK_MAC_BYTE,
        }
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
    table: &'a Table<'a>,
    /// Declared switches, by name: where each was declared.
    switches: HashMap<&'a str, usize>,
    macs: HashMap<[u8; 6], String>,
    ips: HashMap<IpAddr, Vec<Holder>>,
    captures: HashMap<PathBuf, String>,
}

impl<'a> Checker<'a> {
    fn new(table: &'a Table<'a>) -> Self {
        Self {
            table,
            switches: HashMap::new(),
            macs: HashMap::new(),
            ips: HashMap::new(),
            captures: HashMap::new(),
        }
    }

    fn line(&self, offset: usize) -> usize {
        self.table.line(offset)
    }

    fn check(&mut self, vunet: &'a VunetConfig) -> Result<(), Fault> {
        let stack_names = self.check_stacks(vunet)?;
        self.check_switches(vunet)?;
        self.check_routers(vunet, &stack_names)?;
        self.check_uplinks(vunet, &stack_names)?;
        let stacks = vunet.stacks.iter().enumerate().map(|(s, stack)| Party {
            what: "stack",
            name: stack.name.get_ref(),
            index: s,
            offset: stack.name.span().start,
            tables: stack.interface_tables(),
            routes: stack.section.network().map_or(&[], |n| &n.route_tables[..]),
            capture_dir: stack.section.network().map_or(Path::new(""), |n| &n.capture_dir),
        });
        let routers = vunet.router_tables.iter().enumerate().map(|(r, router)| Party {
            what: "router",
            name: router.name.get_ref(),
            index: r,
            offset: router.name.span().start,
            tables: Cow::Borrowed(&router.interface_tables[..]),
            routes: &router.route_tables,
            capture_dir: &router.capture_dir,
        });
        let uplink_tables: Vec<_> =
            vunet.uplink_tables.iter().map(|u| [u.interface_table()]).collect();
        let uplinks = vunet.uplink_tables.iter().zip(&uplink_tables).enumerate().map(
            |(u, (uplink, table))| Party {
                what: "uplink",
                name: uplink.name.get_ref(),
                index: u,
                offset: uplink.name.span().start,
                tables: Cow::Borrowed(&table[..]),
                routes: &[],
                capture_dir: &uplink.capture_dir,
            },
        );
        let mut parties: Vec<Party> = stacks.chain(routers).chain(uplinks).collect();
        parties.sort_by_key(|p| p.offset);
        for (id, party) in parties.iter().enumerate() {
            self.check_party(id, party)?;
        }
        Ok(())
    }

    /// The default stack, once every stack's name was checked (by
    /// [`check_stack_name`]); gives the names and where each is.
    fn check_stacks(&self, vunet: &'a VunetConfig) -> Result<HashMap<&'a str, usize>, Fault> {
        let names: HashMap<&str, usize> =
            vunet.stacks.iter().map(|s| (s.name.get_ref().as_str(), s.name.span().start)).collect();
        let default = vunet.default.get_ref();
        let unconfigured = vunet.kinds.unconfigured(default).is_some();
        if !names.contains_key(default.as_str()) && !unconfigured {
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
            if let Some(extra) = router.route_tables.get(MAX_ROUTER_ROUTES) {
                let why = format!(
                    "router `{name}` has more than {MAX_ROUTER_ROUTES} routes; keep at most \
                     {MAX_ROUTER_ROUTES}, with a default route for the rest"
                );
                return Err((extra.to.span(), why));
            }
            if router.interface_tables.is_empty() {
                let why = format!(
                    "router `{name}` has no interface; give it [[vunet.router.interface]] tables \
                     with a switch and addresses"
                );
                return Err((at, why));
            }
            for table in &router.interface_tables {
                if let Some(extra) = table.get_ref().addresses.get(MAX_ROUTER_ADDRESSES) {
                    let why = format!(
                        "more than {MAX_ROUTER_ADDRESSES} addresses on one router interface; \
                         move the rest to another interface"
                    );
                    return Err((extra.span(), why));
                }
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

    /// The uplinks' names and numbers (their interfaces are checked as every
    /// party's).
    fn check_uplinks(
        &self,
        vunet: &'a VunetConfig,
        stack_names: &HashMap<&str, usize>,
    ) -> Result<(), Fault> {
        if let Some(extra) = vunet.uplink_tables.get(MAX_UPLINKS) {
            let why = format!("at most {MAX_UPLINKS} uplinks can be declared");
            return Err((extra.name.span(), why));
        }
        let routers = vunet.router_tables.iter().map(|r| (r.name.get_ref().as_str(), "a router's"));
        let stacks = stack_names.keys().map(|name| (*name, "a stack's"));
        let mut taken: HashMap<&str, &str> = routers.chain(stacks).collect();
        for uplink in &vunet.uplink_tables {
            let (name, at) = (uplink.name.get_ref(), uplink.name.span());
            if !is_valid_name(name) {
                let why = format!(
                    "uplink name `{name}` must be 1 to 32 letters, digits, `-`, `_` or `.`"
                );
                return Err((at, why));
            }
            if let Some(whose) = taken.insert(name, "another uplink's") {
                let why =
                    format!("`{name}` is already {whose} name; give the uplink a name of its own");
                return Err((at, why));
            }
            let own: Vec<Cidr> =
                uplink.addresses.iter().filter_map(|a| Cidr::parse(a.get_ref()).ok()).collect();
            for dns in &uplink.dns {
                let on_link = match dns.get_ref().parse::<IpAddr>() {
                    Ok(ip) => own.iter().any(|c| c.contains(ip) && c.ip != ip),
                    Err(_) => false,
                };
                if !on_link {
                    let why = format!(
                        "dns address `{}` must be one address on the uplink's subnets, not one \
                         of its own (like 10.0.2.3 beside 10.0.2.2/24)",
                        dns.get_ref()
                    );
                    return Err((dns.span(), why));
                }
            }
            for publish in &uplink.publish {
                let parsed = publish.get_ref().parse::<Publish>();
                parsed.map_err(|why| (publish.span(), why))?;
            }
            if let Some(extra) = uplink.addresses.get(MAX_ROUTER_ADDRESSES) {
                let why = format!("an uplink takes at most {MAX_ROUTER_ADDRESSES} addresses");
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
                .unwrap_or_else(|| Cidr::everything_like(via));
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
        self.check_interface_keys(party, table)?;
        let (at, t) = (table.span(), table.get_ref());
        let default_mac = interface::default_mac(party.mac_role(), party.index, index);
        let spec = interface::resolve_interface(t, index, default_mac, party.capture_dir);
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
        self.claim_mac(&spec, table, &who)?;
        self.claim_addresses(id, &spec, t, &who)?;
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

    /// The keys of one interface table, each on its own.
    fn check_interface_keys(
        &self,
        party: &Party,
        table: &Spanned<InterfaceConfig>,
    ) -> Result<(), Fault> {
        let (at, t) = (table.span(), table.get_ref());
        if let Some(name) = &t.name
            && !interface::is_valid_interface_name(name.get_ref())
        {
            let why = format!(
                "interface name `{}` must be 1 to 15 letters, digits, `-`, `_` or `.`, and not `lo`",
                name.get_ref()
            );
            return Err((name.span(), why));
        }
        self.check_switch(party, at.clone(), t)?;
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
        let mut own = HashSet::new();
        for address in &t.addresses {
            let cidr =
                parse_host_address(address.get_ref()).map_err(|why| (address.span(), why))?;
            if !own.insert(cidr.ip) {
                let why = format!("address {} is given twice on this interface; drop one", cidr.ip);
                return Err((address.span(), why));
            }
        }
        if party.is_device() && t.addresses.is_empty() {
            let why = "a router interface needs addresses: add addresses = [\"ADDRESS/PREFIX\"] \
                       on its switch's subnet"
                .to_owned();
            return Err((at, why));
        }
        check_capture(t)
    }

    /// An interface's switch: declared, and given for a router's.
    fn check_switch(
        &self,
        party: &Party,
        at: Range<usize>,
        t: &InterfaceConfig,
    ) -> Result<(), Fault> {
        match &t.switch {
            Some(switch) if !self.switches.contains_key(switch.get_ref().as_str()) => {
                let why = format!(
                    "no switch named `{0}`; declare it with [[vunet.switch]] name = \"{0}\"",
                    switch.get_ref()
                );
                Err((switch.span(), why))
            }
            None if party.is_device() => {
                let why = "a router interface needs a switch: add switch = \"NAME\", \
                           a [[vunet.switch]]'s name"
                    .to_owned();
                Err((at, why))
            }
            _ => Ok(()),
        }
    }

    /// Records interface `spec`'s MAC address (`who` has it), unless another has it.
    fn claim_mac(
        &mut self,
        spec: &InterfaceSpec,
        table: &Spanned<InterfaceConfig>,
        who: &str,
    ) -> Result<(), Fault> {
        if let Some(other) = self.macs.get(&spec.mac) {
            let mac = interface::mac_text(spec.mac);
            return Err(match &table.get_ref().mac {
                Some(given) => (
                    given.span(),
                    format!(
                        "MAC address {mac} is already used by {other}; give this interface another mac"
                    ),
                ),
                None => (
                    table.span(),
                    format!(
                        "this interface's default MAC address {mac} is already used by {other}; \
                         give one of them another mac"
                    ),
                ),
            });
        }
        self.macs.insert(spec.mac, who.to_owned());
        Ok(())
    }

    /// Records the addresses of interface `spec` of party number `id`, unless another
    /// party on the same network, or another interface of the party, has one.
    fn claim_addresses(
        &mut self,
        id: usize,
        spec: &InterfaceSpec,
        t: &InterfaceConfig,
        who: &str,
    ) -> Result<(), Fault> {
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
            holders.push(Holder { party: id, plugged, who: who.to_owned() });
        }
        Ok(())
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

/// An interface's `capture`: a file name, on a plugged interface.
fn check_capture(t: &InterfaceConfig) -> Result<(), Fault> {
    let Some(capture) = &t.capture else { return Ok(()) };
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
    Ok(())
}

/// Checks the name of the next stack, read from `table`, against the stacks
/// `earlier` than it: there is room for it, it is a valid name, and a new one.
pub fn check_stack_name(
    table: &Table,
    name: &Spanned<String>,
    kinds: &Registry,
    earlier: &[StackConfig],
) -> Result<(), Fault> {
    // Places are kept for the kinds that launch can add unconfigured.
    let room = MAX_STACKS - kinds.iter().filter(|k| k.unconfigured().is_some()).count();
    if earlier.len() >= room {
        let why = format!("at most {room} stacks can be mounted in one session");
        return Err((name.span(), why));
    }
    let text = name.get_ref();
    if !is_valid_name(text) {
        let why = format!("stack name `{text}` must be 1 to 32 letters, digits, `-`, `_` or `.`");
        return Err((name.span(), why));
    }
    if let Some(first) = earlier.iter().find(|s| s.name.get_ref() == text) {
        let first = first.name.span().start;
        let why = format!(
            "stack `{text}` is defined twice (first on line {}); rename one",
            table.line(first)
        );
        return Err((name.span(), why));
    }
    Ok(())
}
