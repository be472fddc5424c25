//! Links (`RTM_GETLINK`): the messages Linux gives for a loopback or an Ethernet
//! device (`rtnl_fill_ifinfo`, and `inet6_fill_ifinfo` for `AF_INET6` dumps), the
//! dump's filters and the single get by index or name (`rtnl_getlink`).

use netlink_packet_core::{DefaultNla, Emitable, NLM_F_DUMP_FILTERED};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    AfSpecInet, AfSpecInet6, AfSpecUnspec, Icmp6Stats, In6AddrGenMode, Inet6DevConf,
    Inet6IfaceFlags, Inet6Stats, InetDevConf, LinkAttribute, LinkFlags, LinkHeader, LinkLayerType,
    LinkMessage, LinkMode, LinkXdp, Map, State, Stats, Stats64, XdpAttached,
};

use super::request::{self, Attributes, Policies, Policy};
use super::{Dump, Errno, GetAnswer, Request, family};
use crate::modules::vunet::inside::change::{Change, LinkSettings};
use crate::modules::vunet::inside::{Inside, LinkKind, LinkView};

/// `IFLA_*` attribute types (`linux/if_link.h`).
mod ifla {
    pub const ADDRESS: u16 = 1;
    pub const BROADCAST: u16 = 2;
    pub const IFNAME: u16 = 3;
    pub const MTU: u16 = 4;
    pub const TXQLEN: u16 = 13;
    pub const GROUP: u16 = 27;
    pub const MASTER: u16 = 10;
    pub const PROTINFO: u16 = 12;
    pub const MAP: u16 = 14;
    pub const LINKINFO: u16 = 18;
    pub const NET_NS_PID: u16 = 19;
    pub const IFALIAS: u16 = 20;
    pub const NET_NS_FD: u16 = 28;
    pub const EXT_MASK: u16 = 29;
    pub const TARGET_NETNSID: u16 = 46;
    pub const ALT_IFNAME: u16 = 53;
    pub const PERM_ADDRESS: u16 = 54;
    pub const MAX_PACING_OFFLOAD_HORIZON: u16 = 66;
    pub const HEADROOM: u16 = 68;
    pub const TAILROOM: u16 = 69;
    /// `IFLA_MAX`.
    pub const MAX: u16 = 69;
    /// `IFLA_INFO_KIND`, inside `IFLA_LINKINFO`.
    pub const INFO_KIND: u16 = 1;
}

/// `IFLA_INET6_CACHEINFO`, in the IPv6 attributes of a link.
const IFLA_INET6_CACHEINFO: u16 = 5;
/// The length of a link message's family header (`struct ifinfomsg`).
const HEADER_LEN: usize = 16;
/// The transmit queue length Linux gives `lo` and Ethernet devices.
const TXQLEN: u32 = 1000;
/// `IFNAMSIZ - 1`: the longest interface name.
const NAME_MAX: usize = 15;

/// How `ifla_policy` checks a link request's attributes.
const LINK_POLICIES: Policies = Policies { max_kind: ifla::MAX, of: link_policy };

fn link_policy(kind: u16) -> Policy {
    match kind {
        ifla::IFNAME => Policy::String { max: NAME_MAX },
        ifla::IFALIAS => Policy::String { max: 255 },
        ifla::ALT_IFNAME => Policy::String { max: 127 },
        ifla::ADDRESS | ifla::BROADCAST => Policy::AtMost(32),
        ifla::MAP => Policy::AtLeast(32),
        // NLA_U32 and NLA_S32 attributes.
        4 | 5 | 10 | 13 | 15 | 19 | 27..=32 | 35 | 37 | 40 | 41 | 45..=51 | 58 | 63 | 64 => {
            Policy::AtLeast(4)
        }
        // NLA_U8 attributes.
        16 | 17 | 33 | 39 => Policy::AtLeast(1),
        18 | 22 | 24..=26 | 43 | 52 | 55 => Policy::Nested,
        ifla::PERM_ADDRESS | 59..=62 | 65..=69 => Policy::Reject,
        _ => Policy::Any,
    }
}

/// `RTEXT_FILTER_SKIP_STATS`: leave out the counters.
const SKIP_STATS: u32 = libc::RTEXT_FILTER_SKIP_STATS as u32;

/// What a link dump request asks (`rtnl_dump_ifinfo`).
struct DumpAsked {
    /// `IFLA_EXT_MASK`.
    ext_mask: u32,
    /// A master (`IFLA_MASTER`) or a kind (`IFLA_LINKINFO`) to filter by: the
    /// messages say they are filtered.
    filtered: bool,
    /// The filter leaves nothing: no link of a stack has a master or a kind, and
    /// only a master of -1 (none) lets them all through.
    leaves_nothing: bool,
}

/// Answers an `AF_UNSPEC` link dump (and the families without their own).
pub(super) fn dump(inside: &Inside, request: &Request) -> Dump {
    let asked = match dump_asked(request) {
        Ok(asked) => asked,
        Err(errno) => return Dump::failed(request.to, errno),
    };
    let mut dump = Dump::new(request.to);
    if asked.filtered {
        dump.message_flags |= NLM_F_DUMP_FILTERED;
    }
    for link in inside.links.iter().filter(|_| !asked.leaves_nothing) {
        dump.add(RouteNetlinkMessage::NewLink(link_message(link, asked.ext_mask)));
    }
    dump
}

/// Reads a link dump request (`rtnl_valid_dump_ifinfo_req`): leniently, a header
/// that is too short is an old `rtgenmsg` and bad attributes are ignored.
fn dump_asked(request: &Request) -> Result<DumpAsked, Errno> {
    let attributes = if request.strict {
        check_strict_header(request.message.payload(), false)?;
        request::parse(&request.message, HEADER_LEN, LINK_POLICIES, true)?
    } else {
        let header_len = if request.message.payload().len() < HEADER_LEN { 1 } else { HEADER_LEN };
        request::parse(&request.message, header_len, LINK_POLICIES, false).unwrap_or_default()
    };
    let mut asked = DumpAsked { ext_mask: 0, filtered: false, leaves_nothing: false };
    for kind in attributes.kinds() {
        match kind {
            ifla::TARGET_NETNSID => return Err(libc::EINVAL),
            ifla::EXT_MASK => asked.ext_mask = attributes.u32(kind).unwrap_or(0),
            ifla::MASTER => {
                let master = attributes.u32(kind).unwrap_or(0);
                asked.filtered |= master != 0;
                // -1 asks for the links without a master: all of them.
                asked.leaves_nothing |= master != 0 && master != u32::MAX;
            }
            ifla::LINKINFO if names_kind(attributes.get(kind)) => {
                asked.filtered = true;
                asked.leaves_nothing = true;
            }
            ifla::LINKINFO => {}
            _ if request.strict => return Err(libc::EINVAL),
            _ => {}
        }
    }
    Ok(asked)
}

/// Whether an `IFLA_LINKINFO` value names a kind of link (`IFLA_INFO_KIND`).
fn names_kind(linkinfo: Option<&[u8]>) -> bool {
    let policies = Policies { max_kind: ifla::INFO_KIND, of: |_| Policy::Any };
    let Ok(info) = request::parse_area(linkinfo.unwrap_or_default(), policies, false) else {
        return false;
    };
    info.string(ifla::INFO_KIND).is_some_and(|kind| !kind.is_empty())
}

/// Checks a strict request's `ifinfomsg`: present, and nothing set in it but the
/// family (and, when `index_allowed`, the index).
fn check_strict_header(payload: &[u8], index_allowed: bool) -> Result<(), Errno> {
    let header = payload.get(..HEADER_LEN).ok_or(libc::EINVAL)?;
    let index = LinkHeader::parse(header).map_err(|_| libc::EINVAL)?.index;
    let pad_type_flags_change = header[1..4].iter().chain(&header[8..]).any(|&byte| byte != 0);
    if pad_type_flags_change || (!index_allowed && index != 0) {
        return Err(libc::EINVAL);
    }
    Ok(())
}

/// Answers an `AF_INET6` link dump (`inet6_dump_ifinfo`): each link's IPv6 view.
pub(super) fn dump_inet6(inside: &Inside, request: &Request) -> Dump {
    if request.strict {
        let payload = request.message.payload();
        // A bare header: nothing set in it, no attribute after it.
        if check_strict_header(payload, false).is_err() || payload.len() > HEADER_LEN {
            return Dump::failed(request.to, libc::EINVAL);
        }
    }
    let mut dump = Dump::new(request.to);
    for link in &inside.links {
        let mut message = LinkMessage::default();
        message.header = header(link, family::INET6);
        message.attributes = vec![
            LinkAttribute::IfName(link.name.clone()),
            LinkAttribute::Address(link.mac.to_vec()),
            LinkAttribute::Mtu(link.mtu),
            LinkAttribute::OperState(operstate(link)),
            LinkAttribute::Other(DefaultNla::new(ifla::PROTINFO, inet6_protinfo(link))),
        ];
        dump.add(RouteNetlinkMessage::NewLink(message));
    }
    dump
}

/// Answers a single link get (`rtnl_getlink`): by index, else by name.
pub(super) fn get(inside: &Inside, request: &Request) -> GetAnswer {
    let payload = request.message.payload();
    if payload.len() < HEADER_LEN {
        return Err(libc::EINVAL);
    }
    let attributes = if request.strict {
        check_strict_header(payload, true)?;
        let attributes = request::parse(&request.message, HEADER_LEN, LINK_POLICIES, true)?;
        let allowed = [ifla::IFNAME, ifla::ALT_IFNAME, ifla::EXT_MASK, ifla::TARGET_NETNSID];
        if attributes.kinds().any(|kind| !allowed.contains(&kind)) {
            return Err(libc::EINVAL);
        }
        attributes
    } else {
        request::parse(&request.message, HEADER_LEN, LINK_POLICIES, false)?
    };
    let link = find(inside, payload, &attributes)?;
    let ext_mask = attributes.u32(ifla::EXT_MASK).unwrap_or(0);
    Ok(vec![request.to.reply(RouteNetlinkMessage::NewLink(link_message(link, ext_mask)))])
}

/// The link a get names: by `ifi_index` when positive, else by `IFLA_IFNAME` or
/// `IFLA_ALT_IFNAME`.
fn find<'a>(
    inside: &'a Inside,
    payload: &[u8],
    attributes: &Attributes,
) -> Result<&'a LinkView, Errno> {
    if attributes.get(ifla::NET_NS_PID).is_some() || attributes.get(ifla::NET_NS_FD).is_some() {
        return Err(libc::EOPNOTSUPP);
    }
    if attributes.get(ifla::TARGET_NETNSID).is_some() {
        return Err(libc::EINVAL);
    }
    let index = LinkHeader::parse(payload).map_err(|_| libc::EINVAL)?.index;
    let name = attributes.string(ifla::IFNAME).or_else(|| attributes.string(ifla::ALT_IFNAME));
    let found = if (index as i32) > 0 {
        inside.links.iter().find(|link| link.index == index)
    } else if let Some(name) = name {
        inside.links.iter().find(|link| link.name.as_bytes() == name)
    } else {
        return Err(libc::EINVAL);
    };
    found.ok_or(libc::ENODEV)
}

/// A link's `ifinfomsg` for `family`.
fn header(link: &LinkView, family: u8) -> LinkHeader {
    LinkHeader {
        interface_family: family.into(),
        index: link.index,
        link_layer_type: match link.kind {
            LinkKind::Loopback => LinkLayerType::Loopback,
            LinkKind::Ethernet => LinkLayerType::Ether,
        },
        flags: flags(link),
        change_mask: LinkFlags::empty(),
    }
}

/// A link's flags as `dev_get_flags` gives them: `RUNNING` and `LOWER_UP` only
/// while up with a carrier.
fn flags(link: &LinkView) -> LinkFlags {
    let mut flags = match link.kind {
        LinkKind::Loopback => LinkFlags::Loopback,
        LinkKind::Ethernet => LinkFlags::Broadcast | LinkFlags::Multicast,
    };
    if link.up {
        flags |= LinkFlags::Up;
        if link.carrier {
            flags |= LinkFlags::Running | LinkFlags::LowerUp;
        }
    }
    flags
}

/// A link's RFC 2863 state: `lo` has none to report (unknown) while up.
fn operstate(link: &LinkView) -> State {
    match (link.up && link.carrier, link.kind) {
        (false, _) => State::Down,
        (true, LinkKind::Loopback) => State::Unknown,
        (true, LinkKind::Ethernet) => State::Up,
    }
}

/// The link's `RTM_NEWLINK` message, in the kernel's order of attributes; its
/// IPv6 statistics are left out when `ext_mask` asks to skip statistics (its
/// counters never are).
pub(super) fn link_message(link: &LinkView, ext_mask: u32) -> LinkMessage {
    let mut attributes = identity_attributes(link);
    attributes.extend(capacity_attributes(link));
    attributes.extend(carrier_attributes(link));
    let broadcast = match link.kind {
        LinkKind::Loopback => [0; 6],
        LinkKind::Ethernet => [0xff; 6],
    };
    attributes.push(LinkAttribute::Address(link.mac.to_vec()));
    attributes.push(LinkAttribute::Broadcast(broadcast.to_vec()));
    attributes.extend(counter_attributes(link));
    attributes.extend([
        LinkAttribute::Xdp(vec![LinkXdp::Attached(XdpAttached::None)]),
        LinkAttribute::Qdisc("noqueue".into()),
        LinkAttribute::AfSpecUnspec(vec![
            AfSpecUnspec::Inet(vec![AfSpecInet::DevConf(inet_devconf(link))]),
            AfSpecUnspec::Inet6(inet6_attributes(link, ext_mask & SKIP_STATS == 0)),
        ]),
        LinkAttribute::Map(Map::default()),
        LinkAttribute::DevlinkPort(Vec::new()),
        LinkAttribute::DpllPin(Vec::new()),
    ]);
    let mut message = LinkMessage::default();
    message.header = header(link, family::UNSPEC);
    message.attributes = attributes;
    message
}

/// The attributes naming the link and its state.
fn identity_attributes(link: &LinkView) -> Vec<LinkAttribute> {
    vec![
        LinkAttribute::IfName(link.name.clone()),
        LinkAttribute::TxQueueLen(TXQLEN),
        LinkAttribute::OperState(operstate(link)),
        LinkAttribute::Mode(LinkMode::Default),
        LinkAttribute::NetnsImmutable(link.kind == LinkKind::Loopback),
    ]
}

/// The attributes of the link's sizes and queues: Linux's defaults for `lo` and
/// a single-queue Ethernet device.
fn capacity_attributes(link: &LinkView) -> Vec<LinkAttribute> {
    let (min_mtu, max_mtu) = match link.kind {
        LinkKind::Loopback => (0, 0),
        LinkKind::Ethernet => (68, 65535),
    };
    vec![
        LinkAttribute::Mtu(link.mtu),
        LinkAttribute::MinMtu(min_mtu),
        LinkAttribute::MaxMtu(max_mtu),
        LinkAttribute::Group(0),
        LinkAttribute::Promiscuity(0),
        LinkAttribute::AllMulticast(0),
        LinkAttribute::NumTxQueues(1),
        LinkAttribute::GsoMaxSegs(65535),
        LinkAttribute::GsoMaxSize(65536),
        LinkAttribute::GroMaxSize(65536),
        LinkAttribute::GsoIpv4MaxSize(65536),
        LinkAttribute::GroIpv4MaxSize(65536),
        LinkAttribute::TsoMaxSize(524280),
        LinkAttribute::TsoMaxSegs(65535),
        u32_attribute(ifla::MAX_PACING_OFFLOAD_HORIZON, 0),
        LinkAttribute::NumRxQueues(1),
    ]
}

/// The carrier attributes: an Ethernet device starts without a carrier, so one
/// that has it saw it go down once and come up once.
fn carrier_attributes(link: &LinkView) -> Vec<LinkAttribute> {
    let (ups, downs) = match link.kind {
        LinkKind::Loopback => (0, 0),
        LinkKind::Ethernet => (u32::from(link.carrier), 1),
    };
    vec![
        LinkAttribute::Carrier(u8::from(link.carrier)),
        LinkAttribute::CarrierChanges(ups + downs),
        LinkAttribute::CarrierUpCount(ups),
        LinkAttribute::CarrierDownCount(downs),
        LinkAttribute::Other(DefaultNla::new(ifla::HEADROOM, 0u16.to_ne_bytes().to_vec())),
        LinkAttribute::Other(DefaultNla::new(ifla::TAILROOM, 0u16.to_ne_bytes().to_vec())),
        LinkAttribute::ProtoDown(0),
    ]
}

/// An attribute holding a native-endian `u32`.
fn u32_attribute(kind: u16, value: u32) -> LinkAttribute {
    LinkAttribute::Other(DefaultNla::new(kind, value.to_ne_bytes().to_vec()))
}

/// The link's counters, 64-bit then 32-bit (truncated, as Linux copies them).
fn counter_attributes(link: &LinkView) -> [LinkAttribute; 2] {
    let counters = &link.counters;
    let mut stats = Stats::default();
    stats.rx_packets = counters.rx_packets as u32;
    stats.rx_bytes = counters.rx_bytes as u32;
    stats.tx_packets = counters.tx_packets as u32;
    stats.tx_bytes = counters.tx_bytes as u32;
    stats.rx_dropped = counters.dropped as u32;
    [LinkAttribute::Stats64(counters64(link)), LinkAttribute::Stats(stats)]
}

/// The link's counters as `struct rtnl_link_stats64`: what the link's owner
/// refused counts as dropped on receipt.
pub(super) fn counters64(link: &LinkView) -> Stats64 {
    let counters = &link.counters;
    let mut stats = Stats64::default();
    stats.rx_packets = counters.rx_packets;
    stats.rx_bytes = counters.rx_bytes;
    stats.tx_packets = counters.tx_packets;
    stats.tx_bytes = counters.tx_bytes;
    stats.rx_dropped = counters.dropped;
    stats
}

/// The link's IPv4 settings: the defaults of a new namespace's interfaces (`lo`
/// skips IPsec policy).
fn inet_devconf(link: &LinkView) -> InetDevConf {
    let loopback = i32::from(link.kind == LinkKind::Loopback);
    let mut conf = InetDevConf::default();
    conf.accept_redirects = 1;
    conf.secure_redirects = 1;
    conf.send_redirects = 1;
    conf.shared_media = 1;
    conf.accept_source_route = 1;
    conf.noxfrm = loopback;
    conf.nopolicy = loopback;
    conf.igmpv2_unsolicited_report_interval = 10000;
    conf.igmpv3_unsolicited_report_interval = 1000;
    conf.arp_evict_nocarrier = 1;
    conf
}

/// The link's IPv6 state and settings (`inet6_fill_ifla6_attrs`), with its
/// (zero) IPv6 statistics when `with_stats`: `ip` reads the address generation
/// mode from them.
fn inet6_attributes(link: &LinkView, with_stats: bool) -> Vec<AfSpecInet6> {
    let flags = match (link.up, link.kind) {
        (false, _) => Inet6IfaceFlags::empty(),
        (true, LinkKind::Loopback) => Inet6IfaceFlags::Ready,
        (true, LinkKind::Ethernet) => Inet6IfaceFlags::Ready | Inet6IfaceFlags::RsSent,
    };
    // struct ifla_cacheinfo: the largest reassembly, a timestamp, the base
    // reachable time and the retransmission time, in milliseconds.
    let cache: Vec<u8> = [65535u32, 0, 30000, 1000].iter().flat_map(|n| n.to_ne_bytes()).collect();
    let mut attributes = vec![
        AfSpecInet6::Flags(flags),
        AfSpecInet6::Other(DefaultNla::new(IFLA_INET6_CACHEINFO, cache)),
        AfSpecInet6::DevConf(inet6_devconf(link)),
    ];
    if with_stats {
        // Each starts with its number of counters.
        let mut stats = Inet6Stats::default();
        stats.num = 38;
        let mut icmp6_stats = Icmp6Stats::default();
        icmp6_stats.num = 7;
        attributes.extend([AfSpecInet6::Stats(stats), AfSpecInet6::Icmp6Stats(icmp6_stats)]);
    }
    attributes.extend([
        AfSpecInet6::Token(std::net::Ipv6Addr::UNSPECIFIED),
        AfSpecInet6::AddrGenMode(In6AddrGenMode::Eui64),
    ]);
    attributes
}

/// The value of `IFLA_PROTINFO` in an `AF_INET6` link message: the IPv6
/// attributes, in a nest Linux does not flag as nested.
fn inet6_protinfo(link: &LinkView) -> Vec<u8> {
    let attributes = inet6_attributes(link, true);
    let mut value = vec![0; attributes.as_slice().buffer_len()];
    attributes.as_slice().emit(&mut value);
    value
}

/// The link's IPv6 settings: the defaults of a new namespace's interfaces (`lo`
/// neither uses temporary addresses nor detects duplicates).
fn inet6_devconf(link: &LinkView) -> Inet6DevConf {
    let loopback = link.kind == LinkKind::Loopback;
    let mut conf = Inet6DevConf::default();
    conf.hoplimit = 64;
    conf.mtu6 = link.mtu as i32;
    conf.accept_ra = 1;
    conf.accept_redirects = 1;
    conf.autoconf = 1;
    conf.dad_transmits = 1;
    conf.rtr_solicits = -1;
    conf.rtr_solicit_interval = 4000;
    conf.rtr_solicit_delay = 1000;
    conf.use_tempaddr = if loopback { -1 } else { 0 };
    conf.temp_valid_lft = 604800;
    conf.temp_prefered_lft = 86400;
    conf.regen_max_retry = 3;
    conf.max_desync_factor = 600;
    conf.max_addresses = 16;
    conf.accept_ra_defrtr = 1;
    conf.accept_ra_pinfo = 1;
    conf.accept_ra_rtr_pref = 1;
    conf.rtr_probe_interval = 60000;
    conf.accept_dad = if loopback { -1 } else { 1 };
    conf.mldv1_unsolicited_report_interval = 10000;
    conf.mldv2_unsolicited_report_interval = 1000;
    conf.suppress_frag_ndisc = 1;
    conf.accept_ra_mtu = 1;
    conf.accept_ra_min_hop_limit = 1;
    conf.rtr_solicit_max_interval = 3600000;
    conf.enhanced_dad = 1;
    conf.ra_defrtr_metric = 1024;
    conf.ioam6_id = 65535;
    conf.ioam6_id_wide = -1;
    conf.ndisc_evict_nocarrier = 1;
    conf
}

/// The attributes of a link change that a stack's link takes or ignores as
/// Linux's would leave it: its name (unchanged), queue length and group.
const KEPT_ATTRIBUTES: [u16; 5] =
    [ifla::IFNAME, ifla::MTU, ifla::ADDRESS, ifla::TXQLEN, ifla::GROUP];

/// Reads an `RTM_NEWLINK`, `RTM_SETLINK` or `RTM_DELLINK` request (`rtnl_newlink`,
/// `do_setlink`) into the change it asks: a stack's links are made by its
/// configuration, so only their state, MTU and hardware address change.
pub(super) fn read_change(inside: &Inside, request: &Request) -> Result<Change, Errno> {
    let message = &request.message;
    let payload = message.payload();
    let attributes = request::parse(message, HEADER_LEN, LINK_POLICIES, false)?;
    let creating = message.has_flag(netlink_packet_core::NLM_F_CREATE);
    let newlink = message.header.message_type == libc::RTM_NEWLINK;
    let link = match find(inside, payload, &attributes) {
        // A new link: a stack's links are its configuration's.
        Err(libc::ENODEV | libc::EINVAL) if creating && newlink => return Err(libc::EOPNOTSUPP),
        // `rtnl_newlink` looks a link up and finds none where `rtnl_setlink`
        // refuses a request that names none.
        Err(libc::EINVAL) if newlink => return Err(libc::ENODEV),
        found => found?,
    };
    match message.header.message_type {
        libc::RTM_DELLINK => return Err(libc::EOPNOTSUPP),
        libc::RTM_NEWLINK if message.has_flag(netlink_packet_core::NLM_F_EXCL) => {
            return Err(libc::EEXIST);
        }
        libc::RTM_NEWLINK if message.has_flag(netlink_packet_core::NLM_F_REPLACE) => {
            return Err(libc::EOPNOTSUPP);
        }
        _ => {}
    }
    let renamed = attributes.string(ifla::IFNAME).is_some_and(|name| name != link.name.as_bytes());
    if renamed || attributes.kinds().any(|kind| !KEPT_ATTRIBUTES.contains(&kind)) {
        return Err(libc::EOPNOTSUPP);
    }
    let mac = match attributes.get(ifla::ADDRESS) {
        Some(bytes) if bytes.len() < 6 => return Err(libc::EINVAL),
        Some(bytes) => Some(<[u8; 6]>::try_from(&bytes[..6]).map_err(|_| libc::EINVAL)?),
        None => None,
    };
    let header = LinkHeader::parse(payload).map_err(|_| libc::EINVAL)?;
    let (flags, change) = (header.flags.bits(), header.change_mask.bits());
    // `rtnl_dev_combine_flags`: a change mask of 0 sets every flag.
    let mask = if change == 0 { u32::MAX } else { change };
    let up_flag = LinkFlags::Up.bits();
    let up = (flags != 0 || change != 0) && mask & up_flag != 0;
    Ok(Change::SetLink(LinkSettings {
        index: link.index,
        up: up.then_some(flags & up_flag != 0),
        mtu: attributes.u32(ifla::MTU),
        mac,
    }))
}
