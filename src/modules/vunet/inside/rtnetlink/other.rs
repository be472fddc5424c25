//! The other reads a plain Linux host answers: its routing rules (`ip rule`), its
//! forwarding settings (netconf), its queueing disciplines (`tc qdisc`), link
//! statistics (`RTM_GETSTATS`).

use netlink_packet_core::{DefaultNla, Emitable, NetlinkSerializable};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};
use netlink_packet_route::route::RouteProtocol;
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleHeader, RuleMessage};
use netlink_packet_route::stats::{StatsAttribute, StatsFilterMask, StatsHeader, StatsMessage};
use netlink_packet_route::tc::{
    TcAttribute, TcHandle, TcHeader, TcMessage, TcStats, TcStats2, TcStatsBasic, TcStatsQueue,
};

use super::request::{self, Policies, Policy};
use super::{Dump, GetAnswer, Request, family};
use crate::modules::vunet::inside::Inside;

/// The rules of a new namespace, per family: table and priority (`ip rule`:
/// `0: lookup local`, `32766: lookup main`, `32767: lookup default`).
const IPV4_RULES: [(u8, u32); 3] = [(255, 0), (254, 32766), (253, 32767)];
/// IPv6 has no `default` table rule.
const IPV6_RULES: [(u8, u32); 2] = [(255, 0), (254, 32766)];

/// Answers a rule dump (`fib_nl_dumprule`): the default rules of the family asked
/// for, or of both.
pub(super) fn dump_rules(_inside: &Inside, request: &Request) -> Dump {
    let payload = request.message.payload();
    // The strict request is a bare `fib_rule_hdr`: a family and nothing else.
    let strict_ok = payload.len() == 12 && payload[1..].iter().all(|&byte| byte == 0);
    if request.strict && !strict_ok {
        return Dump::failed(request.to, libc::EINVAL);
    }
    let families: &[u8] = match request.message.family() {
        family::UNSPEC => &[family::INET, family::INET6],
        family::INET => &[family::INET],
        family::INET6 => &[family::INET6],
        _ => return Dump::failed(request.to, libc::EAFNOSUPPORT),
    };
    let mut dump = Dump::new(request.to);
    for &family in families {
        let rules: &[(u8, u32)] = if family == family::INET { &IPV4_RULES } else { &IPV6_RULES };
        for &(table, priority) in rules {
            dump.add(RouteNetlinkMessage::NewRule(rule(family, table, priority)));
        }
    }
    dump
}

/// A default rule: look up `table`, at `priority`.
fn rule(family: u8, table: u8, priority: u32) -> RuleMessage {
    let header = RuleHeader {
        family: family.into(),
        table,
        action: RuleAction::ToTable,
        ..RuleHeader::default()
    };
    let mut attributes = vec![
        RuleAttribute::Table(table.into()),
        RuleAttribute::SuppressPrefixLen(u32::MAX),
        RuleAttribute::Protocol(RouteProtocol::Kernel),
    ];
    if priority != 0 {
        attributes.push(RuleAttribute::Priority(priority));
    }
    let mut message = RuleMessage::default();
    message.header = header;
    message.attributes = attributes;
    message
}

/// `NETCONFA_*` attribute types (`linux/netconf.h`).
mod netconfa {
    pub const IFINDEX: u16 = 1;
    pub const FORWARDING: u16 = 2;
    pub const RP_FILTER: u16 = 3;
    pub const MC_FORWARDING: u16 = 4;
    pub const PROXY_NEIGH: u16 = 5;
    pub const IGNORE_ROUTES_WITH_LINKDOWN: u16 = 6;
    pub const BC_FORWARDING: u16 = 8;
    /// `NETCONFA_MAX`.
    pub const MAX: u16 = 9;
    /// The settings for all links (`NETCONFA_IFINDEX_ALL`).
    pub const ALL: i32 = -1;
    /// The settings new links get (`NETCONFA_IFINDEX_DEFAULT`).
    pub const DEFAULT: i32 = -2;
}

/// An `RTM_NEWNETCONF` message (`struct netconfmsg` and its attributes), which
/// the crate does not model.
struct NetconfMessage {
    family: u8,
    attributes: Vec<DefaultNla>,
}

impl NetlinkSerializable for NetconfMessage {
    fn message_type(&self) -> u16 {
        libc::RTM_NEWNETCONF
    }

    fn buffer_len(&self) -> usize {
        4 + self.attributes.as_slice().buffer_len()
    }

    fn serialize(&self, buffer: &mut [u8]) {
        buffer[..4].copy_from_slice(&[self.family, 0, 0, 0]);
        self.attributes.as_slice().emit(&mut buffer[4..]);
    }
}

/// The netconf message of `family` for `index` (a link, or all, or the default):
/// no forwarding, no filtering, as on a host.
fn netconf(family: u8, index: i32) -> NetconfMessage {
    let kinds: &[u16] = if family == family::INET {
        &[
            netconfa::FORWARDING,
            netconfa::RP_FILTER,
            netconfa::MC_FORWARDING,
            netconfa::BC_FORWARDING,
            netconfa::PROXY_NEIGH,
            netconfa::IGNORE_ROUTES_WITH_LINKDOWN,
        ]
    } else {
        &[netconfa::FORWARDING, netconfa::PROXY_NEIGH, netconfa::IGNORE_ROUTES_WITH_LINKDOWN]
    };
    let mut attributes = vec![DefaultNla::new(netconfa::IFINDEX, index.to_ne_bytes().to_vec())];
    attributes.extend(kinds.iter().map(|&kind| DefaultNla::new(kind, vec![0; 4])));
    NetconfMessage { family, attributes }
}

/// The indexes netconf lists: each link's, then all's and the default's.
fn netconf_indexes(inside: &Inside) -> Vec<i32> {
    let mut indexes: Vec<i32> = inside.links.iter().map(|link| link.index as i32).collect();
    indexes.sort_unstable();
    indexes.extend([netconfa::ALL, netconfa::DEFAULT]);
    indexes
}

/// Answers a netconf dump (`inet_netconf_dump_devconf`, `inet6_netconf_dump_devconf`).
pub(super) fn dump_netconf(inside: &Inside, request: &Request) -> Dump {
    // A strict request is a bare `netconfmsg`, padded.
    if request.strict && request.message.payload().len() != 4 {
        return Dump::failed(request.to, libc::EINVAL);
    }
    let families: &[u8] = match request.message.family() {
        family::INET => &[family::INET],
        family::INET6 => &[family::INET6],
        _ => &[family::INET, family::INET6],
    };
    let mut dump = Dump::new(request.to);
    for &family in families {
        for index in netconf_indexes(inside) {
            dump.add(netconf(family, index));
        }
    }
    dump
}

/// How `devconf_ipv4_policy` and `devconf_ipv6_policy` check a get's attributes.
const NETCONF_POLICIES: Policies = Policies {
    max_kind: netconfa::MAX,
    of: |kind| {
        if kind <= netconfa::IGNORE_ROUTES_WITH_LINKDOWN { Policy::AtLeast(4) } else { Policy::Any }
    },
};

/// Answers a netconf get (`inet_netconf_get_devconf`): the settings of the link,
/// or all, or the default, `NETCONFA_IFINDEX` names.
pub(super) fn get_netconf(inside: &Inside, request: &Request) -> GetAnswer {
    let attributes = request::parse(&request.message, 1, NETCONF_POLICIES, request.strict)?;
    if request.strict && attributes.kinds().any(|kind| kind != netconfa::IFINDEX) {
        return Err(libc::EINVAL);
    }
    let index = attributes.u32(netconfa::IFINDEX).ok_or(libc::EINVAL)? as i32;
    if !netconf_indexes(inside).contains(&index) {
        return Err(libc::ENODEV);
    }
    Ok(vec![request.to.reply(netconf(request.message.family(), index))])
}

/// The length of a `tcmsg`.
const TC_HEADER_LEN: usize = 20;

/// Answers a qdisc dump (`tc_dump_qdisc`): each link has the `noqueue` qdisc
/// Linux gives software devices.
pub(super) fn dump_qdiscs(inside: &Inside, request: &Request) -> Dump {
    let policies = Policies { max_kind: 16, of: |_| Policy::Any };
    if let Err(errno) = request::parse(&request.message, TC_HEADER_LEN, policies, false) {
        return Dump::failed(request.to, errno);
    }
    let mut dump = Dump::new(request.to);
    for link in &inside.links {
        // The root qdisc, referenced twice (`refcnt 2`).
        let header = TcHeader {
            index: link.index as i32,
            handle: TcHandle::UNSPEC,
            parent: TcHandle::ROOT,
            info: 2,
            ..TcHeader::default()
        };
        let mut message = TcMessage::default();
        message.header = header;
        message.attributes = vec![
            TcAttribute::Kind("noqueue".into()),
            TcAttribute::HwOffload(0),
            TcAttribute::Stats2(vec![
                TcStats2::Basic(TcStatsBasic::default()),
                TcStats2::Queue(TcStatsQueue::default()),
            ]),
            TcAttribute::Stats(TcStats::default()),
        ];
        dump.add(RouteNetlinkMessage::NewQueueDiscipline(message));
    }
    dump
}

/// The length of an `if_stats_msg`.
const STATS_HEADER_LEN: usize = 12;

/// Answers a statistics dump (`rtnl_stats_dump`): a mask of what to give is
/// required; each link's 64-bit counters are given when asked for.
pub(super) fn dump_stats(inside: &Inside, request: &Request) -> Dump {
    let payload = request.message.payload();
    let Some(header) = payload.get(..STATS_HEADER_LEN).and_then(|h| StatsHeader::parse(h).ok())
    else {
        return Dump::failed(request.to, libc::EINVAL);
    };
    let mask = header.filter_mask;
    let strict_wrong = payload[1..8].iter().any(|&byte| byte != 0) || mask.bits() >= 1 << 6;
    if mask.is_empty() || (request.strict && strict_wrong) {
        return Dump::failed(request.to, libc::EINVAL);
    }
    let mut dump = Dump::new(request.to);
    for link in &inside.links {
        let mut header = StatsHeader::default();
        header.ifindex = link.index;
        header.filter_mask = mask;
        let mut message = StatsMessage::default();
        message.header = header;
        if mask.contains(StatsFilterMask::Link64) {
            let counters = super::link::counters64(link);
            message.attributes.push(StatsAttribute::Link64(counters));
        }
        dump.add(RouteNetlinkMessage::NewStats(message));
    }
    dump
}

/// `NETNSA_PID` and `NETNSA_FD`: the namespace a `RTM_GETNSID` asks about.
const NETNSA_PID: u16 = 2;
const NETNSA_FD: u16 = 3;

/// How `rtnl_net_policy` checks a namespace id request's attributes.
const NSID_POLICIES: Policies = Policies { max_kind: 5, of: |_| Policy::AtLeast(4) };

/// Answers a namespace id get (`rtnl_net_getid`), as `ip monitor` sends for its
/// own namespace: a stack knows no other namespace, so none has an id here
/// (`NETNSA_NSID_NOT_ASSIGNED`).
pub(super) fn get_nsid(_inside: &Inside, request: &Request) -> GetAnswer {
    let attributes = request::parse(&request.message, 1, NSID_POLICIES, request.strict)?;
    if attributes.get(NETNSA_PID).is_none() && attributes.get(NETNSA_FD).is_none() {
        return Err(libc::EINVAL);
    }
    let mut message = NsidMessage::default();
    message.attributes.push(NsidAttribute::Id(-1));
    Ok(vec![request.to.reply(RouteNetlinkMessage::NewNsId(message))])
}
