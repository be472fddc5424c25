//! The interface ioctls (`SIOCGIFCONF`, `SIOCGIFFLAGS`, `SIOCGIFADDR`, ...) answered
//! from an [`Inside`] snapshot, as `dev_ioctl` and `devinet_ioctl` answer them.
//!
//! They work on any socket of a process on the stack, as on Linux. Reading is
//! served; the requests that change an interface (`SIOCSIF*`, routes, ARP) are not
//! yet, and fail with `EOPNOTSUPP`.

use std::net::{IpAddr, Ipv4Addr};

use nix::errno::Errno;

use super::{Inside, LinkKind, LinkView};
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
const SIOCGIFNAME: u32 = 0x8910;
/// `SIOCGIFCONF`: the IPv4 addresses of every interface.
pub const SIOCGIFCONF: u32 = 0x8912;
const SIOCGIFFLAGS: u32 = 0x8913;
const SIOCGIFADDR: u32 = 0x8915;
const SIOCGIFDSTADDR: u32 = 0x8917;
const SIOCGIFBRDADDR: u32 = 0x8919;
const SIOCGIFNETMASK: u32 = 0x891b;
const SIOCGIFMETRIC: u32 = 0x891d;
const SIOCGIFMTU: u32 = 0x8921;
const SIOCGIFHWADDR: u32 = 0x8927;
const SIOCGIFINDEX: u32 = 0x8933;
const SIOCGIFTXQLEN: u32 = 0x8942;
const SIOCGIFMAP: u32 = 0x8970;
const SIOCGIFPFLAGS: u32 = 0x8935;
const SIOCGIFCOUNT: u32 = 0x8938;
const SIOCGARP: u32 = 0x8954;
/// `SIOCPROTOPRIVATE` to its last: protocols' own requests, none here.
const SIOCPROTOPRIVATE: u32 = 0x89E0;
const SIOCPROTOPRIVATE_LAST: u32 = 0x89EF;

/// Whether an `ioctl` request is about the network's interfaces (`SIOCGIFCONF`,
/// `SIOCSIFFLAGS`, routes, ARP, ...) rather than about the socket it is made on
/// (`SIOCOUTQNSD`, the socket's unsent bytes).
pub fn is_interface_request(request: u32) -> bool {
    /// `SIOCADDRT`, the first of them.
    const FIRST: u32 = 0x890B;
    /// `SIOCOUTQNSD`.
    const SOCKET_QUEUE: u32 = 0x894B;
    (FIRST..=0x89FF).contains(&request) && request != SOCKET_QUEUE
}

/// Whether `request` is an interface request a stack's inside answers: all but
/// `SIOCGSKNS`, which gives the network namespace of the socket's own kernel
/// object and is judged as any other call on that socket.
pub fn is_answered_inside(request: u32) -> bool {
    /// `SIOCGSKNS`.
    const NAMESPACE: u32 = 0x894C;
    is_interface_request(request) && request != NAMESPACE
}

/// Answers interface request `request` whose `struct ifreq` is `ifreq`: the
/// `ifreq` the program gets back.
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
        // A `struct arpreq`, not an `ifreq`: the neighbour table is empty.
        SIOCGARP => return Err(Errno::ENXIO),
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
            let ip = ipv4_field(inside, link, requested_name(ifreq), request)?;
            union[..16].copy_from_slice(&sockaddr_in(ip));
        }
        _ => return Err(Errno::EOPNOTSUPP),
    }
    Ok(out)
}

/// Serves interface request `call` (on a socket) of the stopped program from
/// `inside`, reading and writing its `struct ifreq` or `struct ifconf`.
pub fn serve(memory: &TraceeMemory, inside: &Inside, call: Ioctl) -> Handled {
    if call.request == SIOCGIFCONF {
        return list(memory, inside, call.arg);
    }
    let mut ifreq = [0u8; IFREQ_LEN];
    ifreq.copy_from_slice(&memory.read_bytes(call.arg, IFREQ_LEN)?);
    let out = answer(inside, call.request, &ifreq)?;
    memory.write_bytes(call.arg, &out)?;
    Ok(Disposition::Return(0))
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
            ifreq[..IFNAMSIZ]
                .copy_from_slice(&name_bytes(a.label.as_deref().unwrap_or(&link.name)));
            ifreq[UNION..UNION + 16].copy_from_slice(&sockaddr_in(ip));
            Some(ifreq)
        })
        .collect()
}

/// The link `ifreq` names (`ENODEV` if none).
fn link_named<'a>(inside: &'a Inside, ifreq: &[u8; IFREQ_LEN]) -> Result<&'a LinkView, Errno> {
    let name = requested_name(ifreq);
    // An alias (`eth0:1`) names its interface.
    let base = name.split(|&b| b == b':').next().unwrap_or(name);
    inside.links.iter().find(|l| l.name.as_bytes() == base).ok_or(Errno::ENODEV)
}

/// The name in `ifreq`, up to its NUL.
fn requested_name(ifreq: &[u8; IFREQ_LEN]) -> &[u8] {
    let name = &ifreq[..IFNAMSIZ];
    &name[..name.iter().position(|&b| b == 0).unwrap_or(IFNAMSIZ)]
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

/// The `struct sockaddr` of `SIOCGIFHWADDR`: the ARP hardware type and the address.
fn hardware_address(link: &LinkView) -> [u8; 16] {
    let family = match link.kind {
        LinkKind::Loopback => libc::ARPHRD_LOOPBACK,
        LinkKind::Ethernet => libc::ARPHRD_ETHER,
    };
    let mut sockaddr = [0u8; 16];
    sockaddr[..2].copy_from_slice(&family.to_ne_bytes());
    sockaddr[2..8].copy_from_slice(&link.mac);
    sockaddr
}

/// The first IPv4 address of `link` labelled `label` (the name asked for, an
/// alias's included) and what `request` asks of it: the address, its netmask,
/// its broadcast, or (point-to-point) its peer, which is itself.
/// `EADDRNOTAVAIL` if there is none, as `devinet_ioctl` says.
fn ipv4_field(
    inside: &Inside,
    link: &LinkView,
    label: &[u8],
    request: u32,
) -> Result<Ipv4Addr, Errno> {
    let address = inside
        .addresses
        .iter()
        .find(|a| {
            a.index == link.index
                && a.address.ip.is_ipv4()
                && a.label.as_deref().map(str::as_bytes) == Some(label)
        })
        .ok_or(Errno::EADDRNOTAVAIL)?;
    let IpAddr::V4(ip) = address.address.ip else { unreachable!("filtered above") };
    Ok(match request {
        SIOCGIFNETMASK => Ipv4Addr::from(
            u32::MAX.checked_shl(32 - u32::from(address.address.prefix)).unwrap_or(0),
        ),
        SIOCGIFBRDADDR => address.broadcast.unwrap_or(Ipv4Addr::UNSPECIFIED),
        _ => ip,
    })
}

/// A `struct sockaddr_in` of `ip`, port 0.
fn sockaddr_in(ip: Ipv4Addr) -> [u8; 16] {
    let mut sockaddr = [0u8; 16];
    sockaddr[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
    sockaddr[4..8].copy_from_slice(&ip.octets());
    sockaddr
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

    fn lwip0() -> Inside {
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
        assert_eq!(ask(SIOCGARP, "eth0"), Err(Errno::ENXIO));
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
