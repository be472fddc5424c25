//! Requests that change a stack (`RTM_NEW*`, `RTM_DEL*`, `RTM_SETLINK`): each
//! family's reader turns one into a [`Change`], and what the change did comes back
//! as the notifications Linux multicasts (`rtnl_notify`) to the groups `ip
//! monitor` joins.

use netlink_packet_core::{NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;

use super::{Addressee, Errno, Request, address, link, neighbour, route};
use crate::modules::vunet::inside::change::{Change, Event, Mode};
use crate::modules::vunet::inside::{AddressView, Inside};

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

/// The notifications of a change whose `events` took the stack from `before` to
/// `after`, for the asker `to` (Linux sends them with the request's port and
/// sequence), each with its group: the links, addresses and neighbours the events
/// name, then every route that came or went, the kernel's own among them (an
/// address brings its local and subnet routes, a link down takes its routes).
pub(super) fn notifications(
    before: &Inside,
    after: &Inside,
    events: &[Event],
    to: Addressee,
) -> Vec<(u32, Vec<u8>)> {
    if events.is_empty() {
        return Vec::new(); // nothing changed: no route either
    }
    let mut bodies: Vec<(u32, RouteNetlinkMessage)> =
        events.iter().filter_map(|event| notification(before, after, event)).collect();
    // IPv4 flushes the routes of a link gone down without a word (`fib_flush`).
    let went_down = events.iter().any(|event| match event {
        Event::Link(index) => {
            let up = |inside: &Inside| inside.link(*index).is_ok_and(|link| link.up);
            up(before) && !up(after)
        }
        _ => false,
    });
    for (added, ipv6, message) in route::changed(before, after) {
        if went_down && !ipv6 && !added {
            continue;
        }
        let group = if ipv6 { group::IPV6_ROUTE } else { group::IPV4_ROUTE };
        let body = match added {
            true => RouteNetlinkMessage::NewRoute(message),
            false => RouteNetlinkMessage::DelRoute(message),
        };
        bodies.push((group, body));
    }
    bodies
        .into_iter()
        .map(|(group, body)| (group, to.message(0, NetlinkPayload::InnerMessage(body))))
        .collect()
}

/// The notification of one event but a route's (those come from the routes
/// themselves): its group and message, a deleted object as it was `before`, a
/// new or changed one as it is `after`.
fn notification(
    before: &Inside,
    after: &Inside,
    event: &Event,
) -> Option<(u32, RouteNetlinkMessage)> {
    match event {
        Event::Link(index) => {
            let link = after.link(*index).ok()?;
            Some((group::LINK, RouteNetlinkMessage::NewLink(link::link_message(link, 0))))
        }
        Event::NewAddress(address) => {
            let message = address::notification_message(after, address)?;
            Some((address_group(address), RouteNetlinkMessage::NewAddress(message)))
        }
        Event::DeletedAddress(address) => {
            let message = address::notification_message(before, address)?;
            Some((address_group(address), RouteNetlinkMessage::DelAddress(message)))
        }
        Event::NewNeighbour(entry) => {
            Some((group::NEIGH, RouteNetlinkMessage::NewNeighbour(neighbour::message(entry))))
        }
        Event::DeletedNeighbour(entry) => {
            Some((group::NEIGH, RouteNetlinkMessage::DelNeighbour(neighbour::message(entry))))
        }
        Event::NewRoute(_) | Event::DeletedRoute(_) => None,
    }
}

/// The group of an address's notifications.
fn address_group(address: &AddressView) -> u32 {
    if address.address.ip.is_ipv6() { group::IPV6_IFADDR } else { group::IPV4_IFADDR }
}
