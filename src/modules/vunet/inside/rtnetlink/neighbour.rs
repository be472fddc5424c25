//! Neighbours (`ip neigh`): the entries of a stack's tables, dumped and got as
//! `neigh_dump_info` and `neigh_get` answer, and the requests that add and delete
//! them (`neigh_add`, `neigh_delete`).

use std::net::IpAddr;

use netlink_packet_core::DefaultNla;
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourHeader, NeighbourMessage,
    NeighbourState,
};
use netlink_packet_route::route::RouteType;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::request::{self, Policies, Policy, ip_of};
use super::{Dump, Errno, GetAnswer, Request, family};
use crate::modules::vunet::inside::change::{Change, Mode, NUD_PERMANENT};
use crate::modules::vunet::inside::{Inside, NeighbourView};

/// `NTF_ROUTER`: the neighbour is an IPv6 router.
const NTF_ROUTER: u8 = 0x80;

/// The length of a neighbour message's family header (`struct ndmsg`).
const NEIGHBOUR_HEADER_LEN: usize = 12;
/// `NTF_PROXY`: the proxy entries.
const NTF_PROXY: u8 = 0x08;
/// `NDA_MASTER`.
const NDA_MASTER: u16 = 9;

/// How `nda_policy` checks a neighbour request's attributes.
const NEIGHBOUR_POLICIES: Policies = Policies {
    max_kind: 16,
    of: |kind| match kind {
        libc::NDA_DST | libc::NDA_LLADDR => Policy::AtMost(32),
        libc::NDA_CACHEINFO => Policy::AtLeast(16),
        libc::NDA_VLAN | libc::NDA_PORT | 15 => Policy::AtLeast(2),
        libc::NDA_PROBES | libc::NDA_VNI | libc::NDA_IFINDEX | 9..=11 | 13 | 14 => {
            Policy::AtLeast(4)
        }
        12 | 16 => Policy::AtLeast(1),
        _ => Policy::Any,
    },
};

/// Checks a neighbour request's `ndmsg` as `neigh_valid_dump_req` and
/// `neigh_valid_get_req` do: present, no state or type, no flag but `NTF_PROXY`.
fn check_neighbour_header(payload: &[u8]) -> Result<(), Errno> {
    let header = payload.get(..NEIGHBOUR_HEADER_LEN).ok_or(libc::EINVAL)?;
    let pads = header[1..4].iter().any(|&byte| byte != 0);
    let state_or_type = header[8..10].iter().chain(&header[11..]).any(|&byte| byte != 0);
    if pads || state_or_type || header[10] & !NTF_PROXY != 0 {
        return Err(libc::EINVAL);
    }
    Ok(())
}

/// Answers a neighbour dump (`neigh_dump_info`): the entries of the family asked
/// for (IPv4's table first), on the link a strict request names.
pub(super) fn dump(inside: &Inside, request: &Request) -> Dump {
    let mut only_link = None;
    if request.strict {
        let checked = check_neighbour_header(request.message.payload())
            .and_then(|()| {
                request::parse(&request.message, NEIGHBOUR_HEADER_LEN, NEIGHBOUR_POLICIES, true)
            })
            .and_then(|attributes| {
                let filters = [libc::NDA_IFINDEX, NDA_MASTER];
                if attributes.kinds().all(|kind| filters.contains(&kind)) {
                    Ok(attributes.u32(libc::NDA_IFINDEX).filter(|&index| index != 0))
                } else {
                    Err(libc::EINVAL)
                }
            });
        match checked {
            Ok(link) => only_link = link,
            Err(errno) => return Dump::failed(request.to, errno),
        }
    }
    let payload = request.message.payload();
    let proxies = payload.get(10).is_some_and(|flags| flags & NTF_PROXY != 0);
    let mut dump = Dump::new(request.to);
    if only_link.is_some() {
        dump = dump.filtered();
    }
    let family = request.message.family();
    for ipv6 in [false, true] {
        let family_wanted = match family {
            family::INET => !ipv6,
            family::INET6 => ipv6,
            _ => true,
        };
        for neighbour in inside.neighbours.iter().filter(|n| n.ip.is_ipv6() == ipv6) {
            if family_wanted && !proxies && only_link.is_none_or(|index| index == neighbour.index) {
                dump.add(RouteNetlinkMessage::NewNeighbour(message(neighbour)));
            }
        }
    }
    dump
}

/// Answers a neighbour get (`neigh_get`), always checked strictly.
pub(super) fn get(inside: &Inside, request: &Request) -> GetAnswer {
    let payload = request.message.payload();
    check_neighbour_header(payload)?;
    let link = u32::from_ne_bytes(payload[4..8].try_into().map_err(|_| libc::EINVAL)?);
    let proxy = payload[10] & NTF_PROXY != 0;
    if !proxy && link == 0 {
        return Err(libc::EINVAL);
    }
    let attributes =
        request::parse(&request.message, NEIGHBOUR_HEADER_LEN, NEIGHBOUR_POLICIES, true)?;
    let key_len = match request.message.family() {
        family::INET => 4,
        family::INET6 => 16,
        _ => return Err(libc::EAFNOSUPPORT),
    };
    if attributes.kinds().any(|kind| kind != libc::NDA_DST) {
        return Err(libc::EINVAL);
    }
    let destination = attributes.get(libc::NDA_DST);
    if destination.is_some_and(|destination| destination.len() != key_len) {
        return Err(libc::EINVAL);
    }
    if link != 0 && !inside.links.iter().any(|known| known.index == link) {
        return Err(libc::ENODEV);
    }
    let ip = destination.and_then(ip_of).ok_or(libc::EINVAL)?;
    inside
        .neighbours
        .iter()
        .find(|n| n.ip == ip && (link == 0 || n.index == link) && !proxy)
        .map(|n| vec![request.to.reply(RouteNetlinkMessage::NewNeighbour(message(n)))])
        .ok_or(libc::ENOENT)
}

/// Answers a bridge forwarding entry get (`rtnl_fdb_get`): a stack has no
/// bridge, and its requests are refused as Linux refuses those that name none.
pub(super) fn get_bridge_entry(_inside: &Inside, _request: &Request) -> GetAnswer {
    Err(libc::EINVAL)
}

/// The `RTM_NEWNEIGH` message of an entry (`neigh_fill_info`).
pub(super) fn message(neighbour: &NeighbourView) -> NeighbourMessage {
    let (family, destination) = match neighbour.ip {
        IpAddr::V4(ip) => (AddressFamily::Inet, NeighbourAddress::Inet(ip)),
        IpAddr::V6(ip) => (AddressFamily::Inet6, NeighbourAddress::Inet6(ip)),
    };
    let mut flags = NeighbourFlags::empty();
    if neighbour.router {
        flags |= NeighbourFlags::Router;
    }
    let header = NeighbourHeader {
        family,
        ifindex: neighbour.index,
        state: NeighbourState::from(neighbour.state),
        flags,
        kind: RouteType::Unicast,
    };
    let mut attributes = vec![NeighbourAttribute::Destination(destination)];
    attributes.extend(neighbour.mac.map(|mac| NeighbourAttribute::LinkLayerAddress(mac.to_vec())));
    attributes.push(NeighbourAttribute::Other(DefaultNla::new(libc::NDA_CACHEINFO, vec![0; 16])));
    attributes.push(NeighbourAttribute::Probes(0));
    let mut message = NeighbourMessage::default();
    message.header = header;
    message.attributes = attributes;
    message
}

/// Reads an `RTM_NEWNEIGH` or `RTM_DELNEIGH` request (`neigh_add`,
/// `neigh_delete`) into the change it asks.
pub(super) fn read_change(inside: &Inside, request: &Request, mode: Mode) -> Result<Change, Errno> {
    let payload = request.message.payload();
    let attributes =
        request::parse(&request.message, NEIGHBOUR_HEADER_LEN, NEIGHBOUR_POLICIES, false)?;
    let destination = attributes.get(libc::NDA_DST).ok_or(libc::EINVAL)?;
    let index = u32::from_ne_bytes(payload[4..8].try_into().map_err(|_| libc::EINVAL)?);
    if index != 0 {
        inside.link(index)?;
    }
    let key_len = match request.message.family() {
        family::INET => 4,
        family::INET6 => 16,
        _ => return Err(libc::EAFNOSUPPORT),
    };
    if destination.len() < key_len {
        return Err(libc::EINVAL);
    }
    let ip = ip_of(&destination[..key_len]).ok_or(libc::EINVAL)?;
    if payload[10] & NTF_PROXY != 0 {
        return Err(libc::EOPNOTSUPP);
    }
    if request.message.header.message_type == libc::RTM_DELNEIGH {
        return Ok(Change::DeleteNeighbour { index, ip });
    }
    let mac = match attributes.get(libc::NDA_LLADDR) {
        Some(bytes) => Some(<[u8; 6]>::try_from(bytes.get(..6).ok_or(libc::EINVAL)?).unwrap()),
        None => None,
    };
    let state = u16::from_ne_bytes([payload[8], payload[9]]);
    let state = if state == 0 { NUD_PERMANENT } else { state };
    let router = payload[10] & NTF_ROUTER != 0;
    Ok(Change::AddNeighbour { neighbour: NeighbourView { index, ip, mac, state, router }, mode })
}
