//! The interface ioctls (`SIOCGIFCONF`, `SIOCSIFFLAGS`, `SIOCADDRT`, `SIOCSARP`,
//! ...) answered by a stack, as Linux answers them.
//!
//! They work on any socket of a process on the stack, as on Linux, but which
//! handler a request reaches depends on the socket's family, as in the kernel:
//! `inet_ioctl` takes the IPv4 address requests (`devinet_ioctl`), routes
//! (`ip_rt_ioctl`) and ARP (`arp_ioctl`); `inet6_ioctl` takes IPv6 routes and
//! addresses; whatever is left reaches the device layer (`dev_ioctl`), which
//! knows none of the others (`ENOTTY`). A virtual socket is an `AF_UNIX` carrier
//! in the kernel: its family is the one its stack records.
//!
//! Reading is answered from what the stack shows ([`Host::view`]); a request
//! that changes something becomes one or more [`Change`]s, as `ip` would ask
//! them, carried out by [`Host::change`] with the same effects: what changed
//! comes back as [`Event`]s, for `ip monitor`.

mod arp;
mod interface;
mod route;

use std::net::{IpAddr, Ipv4Addr};

use nix::errno::Errno;

use super::change::{Change, Event};
use super::rtnetlink::notifications;
use super::{Host, Inside, LinkKind, LinkView};
use crate::modules::{Disposition, Handled};
use crate::syscall::Ioctl;
use crate::tracer::TraceeMemory;

/// `sizeof(struct ifreq)`.
pub const IFREQ_LEN: usize = 40;
/// `IFNAMSIZ`.
const IFNAMSIZ: usize = 16;
/// Where the union of a `struct ifreq` starts.
const UNION: usize = IFNAMSIZ;

/// The requests this module answers.
const SIOCADDRT: u32 = 0x890B;
const SIOCDELRT: u32 = 0x890C;
const SIOCRTMSG: u32 = 0x890D;
const SIOCGIFNAME: u32 = 0x8910;
/// `SIOCGIFCONF`: the IPv4 addresses of every interface.
pub const SIOCGIFCONF: u32 = 0x8912;
const SIOCGIFFLAGS: u32 = 0x8913;
const SIOCSIFFLAGS: u32 = 0x8914;
const SIOCGIFADDR: u32 = 0x8915;
const SIOCSIFADDR: u32 = 0x8916;
const SIOCGIFDSTADDR: u32 = 0x8917;
const SIOCSIFDSTADDR: u32 = 0x8918;
const SIOCGIFBRDADDR: u32 = 0x8919;
const SIOCSIFBRDADDR: u32 = 0x891a;
const SIOCGIFNETMASK: u32 = 0x891b;
const SIOCSIFNETMASK: u32 = 0x891c;
const SIOCGIFMETRIC: u32 = 0x891d;
const SIOCSIFMETRIC: u32 = 0x891e;
const SIOCGIFMTU: u32 = 0x8921;
const SIOCSIFMTU: u32 = 0x8922;
const SIOCSIFHWADDR: u32 = 0x8924;
const SIOCGIFHWADDR: u32 = 0x8927;
const SIOCGIFINDEX: u32 = 0x8933;
const SIOCGIFPFLAGS: u32 = 0x8935;
const SIOCDIFADDR: u32 = 0x8936;
const SIOCSIFPFLAGS: u32 = 0x8934;
const SIOCGIFCOUNT: u32 = 0x8938;
const SIOCGIFTXQLEN: u32 = 0x8942;
const SIOCSIFTXQLEN: u32 = 0x8943;
const SIOCDARP: u32 = 0x8953;
const SIOCGARP: u32 = 0x8954;
const SIOCSARP: u32 = 0x8955;
const SIOCGIFMAP: u32 = 0x8970;
/// `SIOCPROTOPRIVATE` to its last: protocols' own requests, none here.
const SIOCPROTOPRIVATE: u32 = 0x89E0;
const SIOCPROTOPRIVATE_LAST: u32 = 0x89EF;

/// The requests `inet_ioctl` hands `devinet_ioctl`, with a `struct ifreq`.
const DEVINET_REQUESTS: [u32; 11] = [
    SIOCGIFADDR,
    SIOCSIFADDR,
    SIOCGIFDSTADDR,
    SIOCSIFDSTADDR,
    SIOCGIFBRDADDR,
    SIOCSIFBRDADDR,
    SIOCGIFNETMASK,
    SIOCSIFNETMASK,
    SIOCGIFPFLAGS,
    SIOCSIFPFLAGS,
    SIOCSIFFLAGS,
];

/// The requests `inet_ioctl` answers itself: routes, ARP, `SIOCDIFADDR`.
const INET_REQUESTS: [u32; 6] = [SIOCADDRT, SIOCDELRT, SIOCRTMSG, SIOCDIFADDR, SIOCGARP, SIOCSARP];

/// Whether only `inet_ioctl` or `inet6_ioctl` answer `request`: on any other
/// socket it reaches `dev_ioctl`, which knows of the devinet requests
/// `SIOCSIFFLAGS` alone.
fn is_protocol_request(request: u32) -> bool {
    INET_REQUESTS.contains(&request)
        || (request != SIOCSIFFLAGS && DEVINET_REQUESTS.contains(&request))
}

/// Whether an `ioctl` request is about the network's interfaces (`SIOCGIFCONF`,
/// `SIOCSIFFLAGS`, routes, ARP, ...) rather than about the socket it is made on
/// (`SIOCOUTQNSD`, the socket's unsent bytes).
pub fn is_interface_request(request: u32) -> bool {
    /// `SIOCOUTQNSD`.
    const SOCKET_QUEUE: u32 = 0x894B;
    (SIOCADDRT..=0x89FF).contains(&request) && request != SOCKET_QUEUE
}

/// Whether `request` is an interface request a stack's inside answers: all but
/// `SIOCGSKNS`, which gives the network namespace of the socket's own kernel
/// object and is judged as any other call on that socket.
pub fn is_answered_inside(request: u32) -> bool {
    /// `SIOCGSKNS`.
    const NAMESPACE: u32 = 0x894C;
    is_interface_request(request) && request != NAMESPACE
}

/// Which protocol's handler a socket's interface requests reach before the
/// device layer's (`sock->ops->ioctl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `inet_ioctl`: `AF_INET` sockets, and `AF_PACKET` ones, which hand it
    /// the same requests.
    Inet,
    /// `inet6_ioctl`: `AF_INET6` sockets.
    Inet6,
    /// None: `AF_UNIX`, `AF_NETLINK` and the rest go straight to `dev_ioctl`.
    Other,
}

impl Protocol {
    /// The handler of a socket of address family `family` (`AF_*`).
    pub fn of(family: i32) -> Self {
        match family {
            libc::AF_INET | libc::AF_PACKET => Protocol::Inet,
            libc::AF_INET6 => Protocol::Inet6,
            _ => Protocol::Other,
        }
    }
}

/// What serving one request did: its answer, and what it changed.
#[derive(Debug)]
pub struct Served {
    /// The call's answer.
    pub handled: Handled,
    /// The notifications of what it changed, each with its group, as rtnetlink
    /// sends them (none if it changed nothing).
    pub notifications: Vec<(u32, Vec<u8>)>,
}

/// Serves interface request `call`, made on a socket of family `family` by the
/// stopped program, on `host`: reads and writes its argument in `memory`.
pub fn serve(memory: &TraceeMemory, host: &mut dyn Host, family: i32, call: Ioctl) -> Served {
    let mut exchange = Exchange { memory, host, before: None, events: Vec::new() };
    let handled = exchange.serve(Protocol::of(family), call);
    let notifications = match exchange.before {
        Some(before) if !exchange.events.is_empty() => {
            notifications(&before, &exchange.host.view(), &exchange.events)
        }
        _ => Vec::new(),
    };
    Served { handled, notifications }
}

/// One request being served.
struct Exchange<'a> {
    memory: &'a TraceeMemory,
    host: &'a mut dyn Host,
    /// What the stack showed before the request changed it, once it does.
    before: Option<Inside>,
    /// What the request changed so far.
    events: Vec<Event>,
}

impl Exchange<'_> {
    /// Dispatches the request as `sock_ioctl` does: to the socket's protocol,
    /// then to the device layer.
    fn serve(&mut self, protocol: Protocol, call: Ioctl) -> Handled {
        match (protocol, call.request) {
            (_, SIOCGIFCONF) => return list(self.memory, &self.host.view(), call.arg),
            (Protocol::Inet, SIOCADDRT | SIOCDELRT) => {
                let change = route::read_ipv4(self.memory, &self.host.view(), call)?;
                return self.carry_out(&[change]);
            }
            (Protocol::Inet6, SIOCADDRT | SIOCDELRT) => {
                let change = route::read_ipv6(self.memory, &self.host.view(), call)?;
                return self.carry_out(&[change]);
            }
            (Protocol::Inet, SIOCRTMSG) => return Err(Errno::EINVAL),
            (Protocol::Inet, SIOCDARP | SIOCGARP | SIOCSARP) => return self.arp(call),
            (Protocol::Inet6, SIOCSIFADDR | SIOCDIFADDR | SIOCSIFDSTADDR) => {
                let change = interface::read_ipv6(self.memory, &self.host.view(), call)?;
                return self.carry_out(&[change]);
            }
            _ => {}
        }
        // Every other request carries a `struct ifreq`, read whole first
        // (`get_user_ifreq`).
        let mut ifreq = [0u8; IFREQ_LEN];
        ifreq.copy_from_slice(&self.memory.read_bytes(call.arg, IFREQ_LEN)?);
        let request = call.request;
        let devinet = protocol == Protocol::Inet && DEVINET_REQUESTS.contains(&request);
        if !devinet && is_protocol_request(request) {
            return Err(Errno::ENOTTY);
        }
        let view = self.host.view();
        let changes = match interface::is_change(request) {
            true if devinet => interface::devinet_change(&view, request, &ifreq)?,
            true => interface::device_change(&view, request, &ifreq)?,
            false => {
                let out = answer(&view, request, &ifreq)?;
                self.memory.write_bytes(call.arg, &out)?;
                return Ok(Disposition::Return(0));
            }
        };
        self.carry_out(&changes)
    }

    /// `SIOCSARP`, `SIOCDARP`, `SIOCGARP` with the `struct arpreq` at `call.arg`.
    fn arp(&mut self, call: Ioctl) -> Handled {
        let request = arp::Request::read(self.memory, call.arg)?;
        let view = self.host.view();
        match call.request {
            SIOCGARP => {
                let answered = request.get(&view)?;
                self.memory.write_bytes(call.arg, &answered)?;
                Ok(Disposition::Return(0))
            }
            SIOCSARP => self.carry_out(&request.set(&view)?),
            _ => {
                let first = self.events.len();
                let done = self.carry_out(&request.delete(&view)?);
                let deleted = self.events.split_off(first);
                self.events.extend(arp::invalidated(deleted));
                // `arp_invalidate` finds no entry.
                done.map_err(|e| if e == Errno::ENOENT { Errno::ENXIO } else { e })
            }
        }
    }

    /// Carries out `changes` in order, as one request's; the first refused
    /// stops the rest (what came before stays done, as in the kernel).
    fn carry_out(&mut self, changes: &[Change]) -> Handled {
        if self.before.is_none() {
            self.before = Some(self.host.view());
        }
        for change in changes {
            let events = self.host.change(change).map_err(Errno::from_raw)?;
            self.events.extend(events);
        }
        Ok(Disposition::Return(0))
    }
}

/// Answers interface request `request` that reads (`SIOCGIF*`) with `struct
/// ifreq` `ifreq`: the `ifreq` the program gets back.
pub fn answer(
    inside: &Inside,
    request: u32,
    ifreq: &[u8; IFREQ_LEN],
) -> Result<[u8; IFREQ_LEN], Errno> {
    let mut out = *ifreq;
    match request {
        // What Linux answers before it looks for the device.
        SIOCGIFCOUNT | SIOCPROTOPRIVATE..=SIOCPROTOPRIVATE_LAST => return Err(Errno::ENOTTY),
        SIOCGIFPFLAGS => return Err(Errno::EINVAL),
        _ => {}
    }
    if request == SIOCGIFNAME {
        let index = u32::from_ne_bytes(ifreq[UNION..UNION + 4].try_into().expect("4 bytes"));
        let link = inside.links.iter().find(|l| l.index == index).ok_or(Errno::ENODEV)?;
        out[..IFNAMSIZ].copy_from_slice(&name_bytes(&link.name));
        return Ok(out);
    }
    let link = link_named(inside, ifreq)?;
    let union = &mut out[UNION..];
    match request {
        SIOCGIFFLAGS => union[..2].copy_from_slice(&(flags(link) as u16).to_ne_bytes()),
        SIOCGIFINDEX => union[..4].copy_from_slice(&link.index.to_ne_bytes()),
        SIOCGIFMTU => union[..4].copy_from_slice(&link.mtu.to_ne_bytes()),
        SIOCGIFMETRIC => union[..4].copy_from_slice(&0u32.to_ne_bytes()),
        SIOCGIFTXQLEN => union[..4].copy_from_slice(&1000u32.to_ne_bytes()),
        // A virtual device has no memory, I/O port or interrupt to map.
        SIOCGIFMAP => union.fill(0),
        SIOCGIFHWADDR => union[..16].copy_from_slice(&hardware_address(link)),
        SIOCGIFADDR | SIOCGIFNETMASK | SIOCGIFBRDADDR | SIOCGIFDSTADDR => {
            let ip = ipv4_field(inside, link, ifreq, request)?;
            union[..16].copy_from_slice(&sockaddr_in(ip));
        }
        _ => return Err(Errno::EOPNOTSUPP),
    }
    Ok(out)
}

/// `SIOCGIFCONF` with the `struct ifconf` at `at`: as many entries as its buffer
/// holds, or with no buffer the length they need.
fn list(memory: &TraceeMemory, inside: &Inside, at: u64) -> Handled {
    let room = memory.read::<i32>(at)?;
    let buffer = memory.read::<u64>(at + 8)?;
    let entries = configured(inside);
    let fits = if buffer == 0 { 0 } else { (room.max(0) as usize / IFREQ_LEN).min(entries.len()) };
    for (i, entry) in entries[..fits].iter().enumerate() {
        memory.write_bytes(buffer + (i * IFREQ_LEN) as u64, entry)?;
    }
    let len = if buffer == 0 { entries.len() } else { fits } * IFREQ_LEN;
    memory.write(at, &(len as i32))?;
    Ok(Disposition::Return(0))
}

/// The `struct ifreq`s `SIOCGIFCONF` lists: one per IPv4 address, by interface.
pub fn configured(inside: &Inside) -> Vec<[u8; IFREQ_LEN]> {
    inside
        .addresses
        .iter()
        .filter_map(|a| {
            let IpAddr::V4(ip) = a.address.ip else { return None };
            let link = inside.links.iter().find(|l| l.index == a.index)?;
            let mut ifreq = [0u8; IFREQ_LEN];
            ifreq[..IFNAMSIZ].copy_from_slice(&name_bytes(label_of(a, link)));
            ifreq[UNION..UNION + 16].copy_from_slice(&sockaddr_in(ip));
            Some(ifreq)
        })
        .collect()
}

/// The label of IPv4 address `address` of `link`.
fn label_of<'a>(address: &'a super::AddressView, link: &'a LinkView) -> &'a str {
    address.label.as_deref().unwrap_or(&link.name)
}

/// The link `ifreq` names (`ENODEV` if none).
fn link_named<'a>(inside: &'a Inside, ifreq: &[u8; IFREQ_LEN]) -> Result<&'a LinkView, Errno> {
    let name = requested_name(ifreq);
    // An alias (`eth0:1`) names its interface.
    let base = name.split(|&b| b == b':').next().unwrap_or(name);
    inside.links.iter().find(|l| l.name.as_bytes() == base).ok_or(Errno::ENODEV)
}

/// The name in `ifreq`, up to its NUL (the kernel ends it at `IFNAMSIZ - 1`).
fn requested_name(ifreq: &[u8; IFREQ_LEN]) -> &[u8] {
    c_string(&ifreq[..IFNAMSIZ - 1])
}

/// `bytes` up to their first NUL.
fn c_string(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())]
}

/// `IFF_*` of `link` as `SIOCGIFFLAGS` gives them (the low 16 bits).
fn flags(link: &LinkView) -> u32 {
    let mut flags = 0;
    if link.up {
        flags |= libc::IFF_UP as u32;
    }
    if link.up && link.carrier {
        flags |= libc::IFF_RUNNING as u32;
    }
    match link.kind {
        LinkKind::Loopback => flags |= libc::IFF_LOOPBACK as u32,
        LinkKind::Ethernet => flags |= (libc::IFF_BROADCAST | libc::IFF_MULTICAST) as u32,
    }
    flags
}

/// The ARP hardware type of `link` (`dev->type`).
fn hardware_type(link: &LinkView) -> u16 {
    match link.kind {
        LinkKind::Loopback => libc::ARPHRD_LOOPBACK,
        LinkKind::Ethernet => libc::ARPHRD_ETHER,
    }
}

/// The `struct sockaddr` of `SIOCGIFHWADDR`: the ARP hardware type and the address.
fn hardware_address(link: &LinkView) -> [u8; 16] {
    let mut sockaddr = [0u8; 16];
    sockaddr[..2].copy_from_slice(&hardware_type(link).to_ne_bytes());
    sockaddr[2..8].copy_from_slice(&link.mac);
    sockaddr
}

/// The IPv4 address of `link` `devinet_ioctl` works on for `ifreq`: the first
/// labelled with the name asked for (an alias's included); to read, first the
/// one with the address the request carries too, if it carries one (4.4BSD
/// style).
fn labelled<'a>(
    inside: &'a Inside,
    link: &LinkView,
    ifreq: &[u8; IFREQ_LEN],
    match_address: bool,
) -> Option<&'a super::AddressView> {
    let label = requested_name(ifreq);
    let mut labelled = inside.addresses.iter().filter(|a| {
        a.index == link.index && a.address.ip.is_ipv4() && label_of(a, link).as_bytes() == label
    });
    let carried = read_sockaddr_in(&ifreq[UNION..UNION + 16]).map(IpAddr::V4);
    match carried {
        Some(ip) if match_address => {
            labelled.clone().find(|a| a.address.ip == ip).or_else(|| labelled.next())
        }
        _ => labelled.next(),
    }
}

/// What `request` asks of `link`'s address that [`labelled`] picks: the address,
/// its netmask, its broadcast, or its peer, which is itself. `EADDRNOTAVAIL` if
/// there is none, as `devinet_ioctl` says.
fn ipv4_field(
    inside: &Inside,
    link: &LinkView,
    ifreq: &[u8; IFREQ_LEN],
    request: u32,
) -> Result<Ipv4Addr, Errno> {
    let address = labelled(inside, link, ifreq, true).ok_or(Errno::EADDRNOTAVAIL)?;
    let IpAddr::V4(ip) = address.address.ip else { unreachable!("filtered above") };
    Ok(match request {
        SIOCGIFNETMASK => netmask(address.address.prefix),
        SIOCGIFBRDADDR => address.broadcast.unwrap_or(Ipv4Addr::UNSPECIFIED),
        _ => ip,
    })
}

/// The netmask of an IPv4 prefix length.
fn netmask(prefix: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0))
}

/// A `struct sockaddr_in` of `ip`, port 0.
fn sockaddr_in(ip: Ipv4Addr) -> [u8; 16] {
    let mut sockaddr = [0u8; 16];
    sockaddr[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
    sockaddr[4..8].copy_from_slice(&ip.octets());
    sockaddr
}

/// The address of `struct sockaddr_in` `sockaddr`, if its family is `AF_INET`.
fn read_sockaddr_in(sockaddr: &[u8]) -> Option<Ipv4Addr> {
    (sockaddr_family(sockaddr) == libc::AF_INET as u16).then(|| sockaddr_address(sockaddr))
}

/// The family of a `struct sockaddr`.
fn sockaddr_family(sockaddr: &[u8]) -> u16 {
    u16::from_ne_bytes([sockaddr[0], sockaddr[1]])
}

/// The `sin_addr` of a `struct sockaddr`, whatever its family says
/// (`sk_extract_addr`).
fn sockaddr_address(sockaddr: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(sockaddr[4], sockaddr[5], sockaddr[6], sockaddr[7])
}

/// `name` as `ifr_name` holds it: NUL-padded to `IFNAMSIZ`.
fn name_bytes(name: &str) -> [u8; IFNAMSIZ] {
    let mut bytes = [0u8; IFNAMSIZ];
    let len = name.len().min(IFNAMSIZ - 1);
    bytes[..len].copy_from_slice(&name.as_bytes()[..len]);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::vunet::cidr::Cidr;
    use crate::modules::vunet::inside::fixtures::link;
    use crate::modules::vunet::inside::{AddressView, Scope};

    /// lo, and eth0 with 10.0.0.2/24 and fd00::2/64, as lwip0 shows them.
    pub(super) fn lwip0() -> Inside {
        let address = |index, text: &str, label: &str| {
            let address = Cidr::parse(text).unwrap();
            AddressView {
                index,
                address,
                scope: if index == 1 { Scope::Host } else { Scope::Universe },
                broadcast: if index == 1 { None } else { address.broadcast() },
                label: address.ip.is_ipv4().then(|| label.to_owned()),
            }
        };
        Inside {
            links: vec![
                link(1, "lo", LinkKind::Loopback, [0; 6], 65536),
                link(2, "eth0", LinkKind::Ethernet, [2, 0x6e, 0x76, 0, 0, 0], 1500),
            ],
            addresses: vec![
                address(1, "127.0.0.1/8", "lo"),
                address(2, "10.0.0.2/24", "eth0"),
                address(2, "fd00::2/64", "eth0"),
            ],
            routes: Vec::new(),
            neighbours: Vec::new(),
        }
    }

    fn ifreq(name: &str) -> [u8; IFREQ_LEN] {
        let mut ifreq = [0u8; IFREQ_LEN];
        ifreq[..IFNAMSIZ].copy_from_slice(&name_bytes(name));
        ifreq
    }

    fn ipv4_of(out: &[u8; IFREQ_LEN]) -> Ipv4Addr {
        Ipv4Addr::new(out[20], out[21], out[22], out[23])
    }

    #[test]
    fn interfaces_answer_as_linux_devices_do() {
        let inside = lwip0();
        let ask = |request, name| answer(&inside, request, &ifreq(name));
        assert_eq!(ask(SIOCGIFINDEX, "eth0").unwrap()[16..20], 2u32.to_ne_bytes());
        assert_eq!(ask(SIOCGIFFLAGS, "eth0").unwrap()[16..18], 0x1043u16.to_ne_bytes());
        assert_eq!(ask(SIOCGIFFLAGS, "lo").unwrap()[16..18], 0x49u16.to_ne_bytes());
        assert_eq!(ask(SIOCGIFMTU, "lo").unwrap()[16..20], 65536u32.to_ne_bytes());
        assert_eq!(ipv4_of(&ask(SIOCGIFADDR, "eth0").unwrap()), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(ipv4_of(&ask(SIOCGIFNETMASK, "eth0").unwrap()), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(ipv4_of(&ask(SIOCGIFBRDADDR, "eth0").unwrap()), Ipv4Addr::new(10, 0, 0, 255));
        assert_eq!(ask(SIOCGIFADDR, "eth0:1"), Err(Errno::EADDRNOTAVAIL), "no such label");
        assert_eq!(ask(SIOCGIFFLAGS, "eth0:1").unwrap()[16..18], 0x1043u16.to_ne_bytes());
        let hw = ask(SIOCGIFHWADDR, "eth0").unwrap();
        assert_eq!(hw[16..18], 1u16.to_ne_bytes());
        assert_eq!(hw[18..24], [2, 0x6e, 0x76, 0, 0, 0]);
        assert_eq!(ask(SIOCGIFINDEX, "wlan0"), Err(Errno::ENODEV));
        assert_eq!(ask(SIOCGIFMAP, "eth0").unwrap()[16..], [0; 24]);
        assert_eq!(ask(SIOCGIFPFLAGS, "wlan0"), Err(Errno::EINVAL));
        assert_eq!(ask(SIOCGIFCOUNT, "eth0"), Err(Errno::ENOTTY));
        assert_eq!(ask(SIOCPROTOPRIVATE + 3, "eth0"), Err(Errno::ENOTTY));
        assert!(is_interface_request(0x894C) && !is_answered_inside(0x894C));
        assert_eq!(ask(SIOCGIFINDEX, ""), Err(Errno::ENODEV));
        let mut by_index = [0u8; IFREQ_LEN];
        by_index[16..20].copy_from_slice(&2u32.to_ne_bytes());
        assert_eq!(&answer(&inside, SIOCGIFNAME, &by_index).unwrap()[..5], b"eth0\0");
        by_index[16..20].copy_from_slice(&9u32.to_ne_bytes());
        assert_eq!(answer(&inside, SIOCGIFNAME, &by_index), Err(Errno::ENODEV));
    }

    #[test]
    fn a_link_without_ipv4_has_no_address_to_give() {
        let mut inside = lwip0();
        inside.addresses.retain(|a| !a.address.ip.is_ipv4() || a.index == 1);
        assert_eq!(answer(&inside, SIOCGIFADDR, &ifreq("eth0")), Err(Errno::EADDRNOTAVAIL));
    }

    #[test]
    fn the_configuration_lists_ipv4_addresses() {
        let listed = configured(&lwip0());
        let names: Vec<&[u8]> = listed.iter().map(|r| &r[..4]).collect();
        assert_eq!(names, [b"lo\0\0", b"eth0"]);
        assert_eq!(ipv4_of(&listed[1]), Ipv4Addr::new(10, 0, 0, 2));
    }
}
