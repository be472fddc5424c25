//! Requests that change a stack (`RTM_NEW*`, `RTM_DEL*`, `RTM_SETLINK`): each
//! family's reader turns one into a [`Change`], and what the change did comes back
//! as the notifications Linux multicasts (`rtnl_notify`) to the groups `ip
//! monitor` joins.

use netlink_packet_core::{NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;

use super::{Addressee, Errno, Request, address, link, neighbour, route};
use crate::modules::vunet::inside::{Change, Event, Inside, Mode};

/// The rtnetlink multicast groups (`RTNLGRP_*`) of what changes.
mod group {
    pub const LINK: u32 = 1;
    pub const NEIGH: u32 = 3;
    pub const IPV4_IFADDR: u32 = 5;
    pub const IPV4_ROUTE: u32 = 7;
    pub const IPV6_IFADDR: u32 = 9;
    pub const IPV6_ROUTE: u32 = 11;
}

/// Reads a request that changes the stack `inside` shows: the change it asks,
/// or the errno Linux refuses it with before changing anything.
pub(super) fn read(inside: &Inside, request: &Request) -> Result<Change, Errno> {
    let message = &request.message;
    let mode = Mode {
        create: message.has_flag(NLM_F_CREATE),
        exclusive: message.has_flag(NLM_F_EXCL),
        replace: message.has_flag(NLM_F_REPLACE),
        append: message.has_flag(NLM_F_APPEND),
    };
    match message.header.message_type {
        libc::RTM_NEWLINK | libc::RTM_SETLINK | libc::RTM_DELLINK => {
            link::read_change(inside, request)
        }
        libc::RTM_NEWADDR | libc::RTM_DELADDR => address::read_change(inside, request, mode),
        libc::RTM_NEWROUTE | libc::RTM_DELROUTE => route::read_change(inside, request, mode),
        libc::RTM_NEWNEIGH | libc::RTM_DELNEIGH => neighbour::read_change(inside, request, mode),
        _ => Err(libc::EOPNOTSUPP),
    }
}

/// The notification of `event` for the asker `to` (Linux sends it with the
/// request's port and sequence): its group and its message, made from `inside`
/// as it is after the change.
pub(super) fn notification(
    inside: &Inside,
    event: &Event,
    to: Addressee,
) -> Option<(u32, Vec<u8>)> {
    let v4_or_v6 = |ipv6: bool, v4, v6| if ipv6 { v6 } else { v4 };
    let (group, body) = match event {
        Event::Link(index) => {
            let link = inside.link(*index).ok()?;
            (group::LINK, RouteNetlinkMessage::NewLink(link::link_message(link, 0)))
        }
        Event::NewAddress(added) | Event::DeletedAddress(added) => {
            let message = address::notification_message(inside, added)?;
            let group =
                v4_or_v6(added.address.ip.is_ipv6(), group::IPV4_IFADDR, group::IPV6_IFADDR);
            let body = match event {
                Event::NewAddress(_) => RouteNetlinkMessage::NewAddress(message),
                _ => RouteNetlinkMessage::DelAddress(message),
            };
            (group, body)
        }
        Event::NewRoute(changed) | Event::DeletedRoute(changed) => {
            let message = route::configured_message(inside, changed)?;
            let ipv6 = changed.destination.ip.is_ipv6();
            let body = match event {
                Event::NewRoute(_) => RouteNetlinkMessage::NewRoute(message),
                _ => RouteNetlinkMessage::DelRoute(message),
            };
            (v4_or_v6(ipv6, group::IPV4_ROUTE, group::IPV6_ROUTE), body)
        }
        Event::NewNeighbour(entry) => {
            (group::NEIGH, RouteNetlinkMessage::NewNeighbour(neighbour::message(entry)))
        }
        Event::DeletedNeighbour(entry) => {
            (group::NEIGH, RouteNetlinkMessage::DelNeighbour(neighbour::message(entry)))
        }
    };
    Some((group, to.message(0, NetlinkPayload::InnerMessage(body))))
}
