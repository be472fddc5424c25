//! The `smoltcp` kind: how a `[[vunet.stack]]` table with `kind = "smoltcp"` is
//! read, checked against what smoltcp can hold, and mounted.

use std::sync::OnceLock;

use super::stack::SmoltcpStack;
use super::endpoint;
use super::net::{InterfacePlan, Resources};
use crate::config::{Fault, Table};
use crate::modules::vunet::inside::change;
use crate::modules::vunet::config::{HostSection, MAX_INTERFACES, NetworkConfig, StackConfig};
use crate::modules::vunet::kind::{Key, KindConfig, Mount, StackKind};
use crate::modules::vunet::stack::{MAX_STACKS, SetupError, Stack};

/// The most addresses one interface can be configured with: what a link holds,
/// less one for the IPv6 link-local address it gets when it comes up.
pub const MAX_ADDRESSES: usize = change::MAX_ADDRESSES_PER_LINK - 1;
/// The most routes one stack can be configured with.
pub const MAX_ROUTES: usize = change::MAX_ROUTES;

// A stack's session index is two letters of its carriers' names.
const _: () = assert!(MAX_STACKS <= endpoint::MAX_STACKS);

/// The `smoltcp` kind.
pub static KIND: Kind = Kind;

/// The `smoltcp` kind: private TCP/IP hosts on the session's network.
pub struct Kind;

impl StackKind for Kind {
    fn name(&self) -> &'static str {
        SmoltcpStack::KIND
    }

    fn summary(&self) -> &'static str {
        "a private TCP/IP host: own loopback, addresses, ports"
    }

    fn keys(&self) -> &'static [Key] {
        HostSection::KEYS
    }

    fn configure(&self, table: &Table) -> Result<Box<dyn KindConfig>, Fault> {
        let section: HostSection = table.read()?;
        let name = table.read::<NameOnly>()?.name;
        if let Some(extra) = section.interface_tables.get(MAX_INTERFACES) {
            let why = format!(
                "stack `{name}` has more than {MAX_INTERFACES} interfaces, the most one stack can have"
            );
            return Err((extra.span(), why));
        }
        if let Some(extra) = section.route_tables.get(MAX_ROUTES) {
            let why = format!(
                "stack `{name}` has more than {MAX_ROUTES} routes, the most smoltcp holds; \
                 merge some into wider prefixes"
            );
            return Err((extra.to.span(), why));
        }
        let network = section.into_network(table)?;
        for interface in &network.interface_tables {
            if let Some(extra) = interface.get_ref().addresses.get(MAX_ADDRESSES) {
                let why = format!(
                    "more than {MAX_ADDRESSES} addresses on one interface, the most smoltcp \
                     holds; move the rest to another interface"
                );
                return Err((extra.span(), why));
            }
        }
        Ok(Box::new(Config { network }))
    }
}

/// A stack table's name alone, for messages.
#[derive(serde::Deserialize)]
struct NameOnly {
    name: String,
}

/// A `smoltcp` stack's configuration: its interfaces and routes.
#[derive(Debug)]
pub struct Config {
    network: NetworkConfig,
}

impl KindConfig for Config {
    fn network(&self) -> Option<&NetworkConfig> {
        Some(&self.network)
    }

    fn mount(&self, mount: &mut Mount) -> Result<Box<dyn Stack>, SetupError> {
        let mut interfaces = Vec::new();
        for spec in StackConfig::resolve_network(&self.network, mount.index) {
            let link = mount.plug(&spec)?;
            interfaces.push(InterfacePlan { spec, link });
        }
        let routes = StackConfig::resolve_routes(&self.network);
        let registry =
            mount.registry.try_clone().map_err(|e| SetupError(format!("epoll: {e}")))?;
        Ok(Box::new(SmoltcpStack::mount_networked(
            mount.name,
            mount.index,
            session(),
            &interfaces,
            &routes,
            mount.network,
            Resources { registry, budget: mount.budget.clone() },
        )))
    }
}

/// The prefix of this session's carrier names, the same for all its stacks.
pub fn session() -> [u8; 4] {
    static SESSION: OnceLock<[u8; 4]> = OnceLock::new();
    *SESSION.get_or_init(endpoint::session_id)
}
