//! Mounting a session: its network (switches and routers), then every stack of the
//! configuration, each by its kind.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

use super::budget::SharedBudget;
use super::cidr::Cidr;
use super::config::{UplinkSpec, VunetConfig};
use super::kind::{Mount, Registry};
use super::network::{IpPort, Network, RouterInterface, StaticRoute, SwitchId};
use super::stack::{SetupError, Stack};
use super::uplink::{self, Uplink};

/// A session's network, its stacks and its uplinks, as mounted.
pub(super) type Mounted = (Network, Vec<Box<dyn Stack>>, Vec<uplink::Mounted>);

/// Builds the session's network (switches, routers and uplinks, which share
/// `shared`) and mounts every stack of `config`, plugging their interfaces into
/// it.
pub(super) fn mount_all(
    config: &VunetConfig,
    capture_dir: Option<PathBuf>,
    registry: &mio::Registry,
    budget: &SharedBudget,
    shared: &uplink::Shared,
) -> Result<Mounted, SetupError> {
    let mut network = Network::new(capture_dir);
    let mut switches = HashMap::new();
    for name in config.switch_names() {
        switches.insert(name.clone(), network.add_switch(&name));
    }
    let routers = config.routers();
    for router in &routers {
        let interfaces = router
            .interfaces
            .iter()
            .filter_map(|i| {
                Some(RouterInterface {
                    switch: *switches.get(i.switch.as_ref()?)?,
                    mac: i.mac,
                    addresses: i.addresses.clone(),
                    capture: i.capture.clone(),
                    mtu: i.mtu,
                })
            })
            .collect();
        let routes = router.routes.iter().map(|r| StaticRoute { to: r.to, via: r.via }).collect();
        network
            .add_router(&router.name, interfaces, routes)
            .map_err(|e| SetupError(format!("router {}: {e}", router.name)))?;
    }
    let mut uplinks = Vec::new();
    for uplink in config.uplinks() {
        let Some(&switch) = uplink.interface.switch.as_ref().and_then(|s| switches.get(s)) else {
            continue;
        };
        // Its gateways: the routers' addresses on its switch.
        let gateways: Vec<IpAddr> = routers
            .iter()
            .flat_map(|r| &r.interfaces)
            .filter(|i| i.switch == uplink.interface.switch)
            .flat_map(|i| i.addresses.iter().map(|c| c.ip))
            .collect();
        let watcher = registry.try_clone().map_err(|e| SetupError(format!("epoll: {e}")))?;
        let context = (shared, budget, watcher);
        uplinks.push(plug_uplink(&mut network, switch, uplink, &gateways, context)?);
    }
    let mut stacks = Vec::new();
    for (index, stack) in config.stacks.iter().enumerate() {
        let name = stack.name.get_ref();
        let network = &mut network;
        let mut mount = Mount { name, index, network, switches: &switches, registry, budget };
        stacks.push(stack.section.mount(&mut mount)?);
    }
    Ok((network, stacks, uplinks))
}

/// Plugs `uplink` into `switch`, its packets going to `gateways`; its flows
/// share `shared`, count in `budget` and are watched by `watcher`.
fn plug_uplink(
    network: &mut Network,
    switch: SwitchId,
    uplink: UplinkSpec,
    gateways: &[IpAddr],
    (shared, budget, watcher): (&uplink::Shared, &SharedBudget, mio::Registry),
) -> Result<uplink::Mounted, SetupError> {
    let interface = uplink.interface;
    let own = interface.addresses.clone();
    let relays = uplink::dns::relays(&uplink.dns);
    let nat = Uplink::new((own, interface.mtu), relays, (shared, budget), watcher, Instant::now());
    let nat = uplink::SharedUplink(Rc::new(RefCell::new(nat)));
    let mounted = uplink::Mounted {
        name: uplink.name.clone(),
        switch: interface.switch.clone().unwrap_or_default(),
        addresses: interface.addresses.iter().map(|c| format!("{}/{}", c.ip, c.prefix)).collect(),
        uplink: nat.clone(),
    };
    // It answers for its DNS addresses too.
    let mut addresses = interface.addresses;
    let host_route = |ip: IpAddr| Cidr::new(ip, if ip.is_ipv4() { 32 } else { 128 });
    addresses.extend(uplink.dns.iter().map(|&ip| host_route(ip)));
    let port = IpPort::new((interface.mac, addresses, interface.mtu), gateways, nat);
    network
        .plug(switch, &uplink.name, Box::new(port), interface.capture.as_deref())
        .map_err(|e| SetupError(format!("uplink {}: {e}", uplink.name)))?;
    Ok(mounted)
}

/// Mounts the stack `name` that no configuration declares, if its kind allows
/// (`none` and `host` can always be chosen at launch).
pub(super) fn mount_unconfigured(
    kinds: &Registry,
    name: &str,
    index: usize,
    network: &mut Network,
    registry: &mio::Registry,
    budget: &SharedBudget,
) -> Option<Result<Box<dyn Stack>, SetupError>> {
    let config = kinds.find(name)?.unconfigured()?;
    let switches = HashMap::new();
    let mut mount = Mount { name, index, network, switches: &switches, registry, budget };
    Some(config.mount(&mut mount))
}
