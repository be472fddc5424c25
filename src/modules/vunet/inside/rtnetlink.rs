//! Answers `NETLINK_ROUTE` requests from an [`Inside`] snapshot, as Linux would.
//!
//! A program on a stack talks rtnetlink to read its network (`ip`, glibc's
//! `getifaddrs` and `if_nameindex`, Go's `net.Interfaces`); [`respond_with`] gives the
//! datagrams Linux would deliver for one datagram the program sent. The protocol
//! is the kernel's: `netlink_rcv_skb` cuts the datagram into messages, each request
//! is dispatched as `rtnetlink_rcv_msg` does (a family's handler, else
//! `AF_UNSPEC`'s), errors and acknowledgements are `netlink_ack`'s, dumps are
//! `netlink_dump`'s multipart answers packed into datagrams of `NLMSG_GOODSIZE`.
//! What is answered — links, addresses, the routes the kernel derives, rules,
//! netconf, qdiscs — is in the submodules.
//!
//! Requests that change things (`RTM_NEW*`, `RTM_DEL*`, `RTM_SETLINK`) are read
//! into a [`Change`](super::change::Change) (`changes`) and carried out by the
//! [`Host`]; what changed is notified to the sockets that joined its group
//! (`ip monitor`), and echoed to the asker when it set `NLM_F_ECHO`.

mod address;
mod changes;
mod link;
mod lookup;
mod neighbour;
mod other;
mod request;
mod route;
#[cfg(test)]
mod tests;

use netlink_packet_core::{NLM_F_DUMP, NLM_F_ECHO};

use super::netlink::{Addressee, Dump, Handled, Message, Replies, messages};
use super::{Errno, Host, Inside};

/// The socket options of the asking socket that change Linux's answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `NETLINK_GET_STRICT_CHK` is set (as `ip` sets it): dump requests are checked
    /// strictly and their filters (an address's link, a route's table) applied.
    pub strict_check: bool,
    /// The real user id of the process that made the socket (`RTA_UID` of a
    /// route lookup).
    pub uid: u32,
}

/// What one datagram a program sent is answered with.
#[derive(Debug, Default)]
pub struct Answers {
    /// The datagrams for the asking socket, in order.
    pub to_asker: Vec<Vec<u8>>,
    /// The notifications of what its requests changed, for the sockets of the
    /// stack that joined each one's group (`RTNLGRP_*`, from 1).
    pub notifications: Vec<(u32, Vec<u8>)>,
    /// Where in the datagram the work allowed ran out, if it did: the messages
    /// from there on are to be answered later.
    pub unanswered: Option<usize>,
}

/// The work one socket's requests may make the supervisor do in one round (see
/// [`respond_with`]): a message costs 1, one that changes the stack
/// [`CHANGE_COST`] (it derives and compares the stack's routes). Other stacks
/// wait while it is done, so it is bounded, and the rest is done in the next
/// rounds.
pub const ROUND_BUDGET: u32 = 256;
/// What a message that changes the stack costs of [`ROUND_BUDGET`].
pub const CHANGE_COST: u32 = 16;

/// Answers the netlink messages in `request`, one datagram a program's socket with
/// port id `port` sent, from `inside` (a bare snapshot: changes change it): the
/// datagrams to deliver to it, in order (what tests ask).
#[cfg(test)]
pub fn respond(inside: &mut Inside, port: u32, request: &[u8]) -> Vec<Vec<u8>> {
    let mut unlimited = u32::MAX;
    respond_with(inside, port, Options::default(), request, &mut unlimited).to_asker
}

/// Answers the messages in `request` from a socket with `options` on `host`, as
/// far as `budget` allows (see [`ROUND_BUDGET`]), which it spends.
pub fn respond_with(
    host: &mut dyn Host,
    port: u32,
    options: Options,
    request: &[u8],
    budget: &mut u32,
) -> Answers {
    let mut exchange =
        Exchange { host, port, options, replies: Replies::default(), notifications: Vec::new() };
    let mut unanswered = None;
    for message in messages(request) {
        if *budget == 0 {
            unanswered = Some(message.at);
            break;
        }
        let changes = message.header.message_type % 4 != libc::RTM_GETLINK % 4;
        *budget = budget.saturating_sub(if changes { CHANGE_COST } else { 1 });
        exchange.receive(message);
    }
    Answers {
        to_asker: exchange.replies.finish(),
        notifications: exchange.notifications,
        unanswered,
    }
}

/// The notifications of a change made other than by a netlink request (an
/// interface ioctl) whose `events` took the stack from `before` to `after`:
/// each with its group, from port 0 with sequence 0, as the kernel sends them.
pub fn notifications(
    before: &Inside,
    after: &Inside,
    events: &[super::Event],
) -> Vec<(u32, Vec<u8>)> {
    changes::notifications(before, after, events, Addressee { port: 0, sequence: 0 })
}

/// The main table's IPv4 unicast routes as the kernel holds them for `inside`
/// (those it derives from addresses included), in its order: what
/// `/proc/net/route` lists.
pub fn main_ipv4_routes(inside: &Inside) -> Vec<super::RouteView> {
    route::main_unicast(inside)
}

/// The highest rtnetlink message type (`RTM_MAX`).
const RTM_MAX: u16 = 123;

/// Address families as the family headers of requests carry them.
mod family {
    /// `AF_UNSPEC`: every family.
    pub const UNSPEC: u8 = libc::AF_UNSPEC as u8;
    /// `AF_INET`.
    pub const INET: u8 = libc::AF_INET as u8;
    /// `AF_INET6`.
    pub const INET6: u8 = libc::AF_INET6 as u8;
    /// `AF_BRIDGE`.
    pub const BRIDGE: u8 = libc::AF_BRIDGE as u8;
}

/// One request message, with what its handler needs to know of the asker.
struct Request<'a> {
    /// The message.
    message: Message<'a>,
    /// Where its answers go.
    to: Addressee,
    /// Whether the asker's socket checks strictly ([`Options::strict_check`]).
    strict: bool,
    /// The asker's user id ([`Options::uid`]).
    uid: u32,
}

/// The answering of one datagram's messages.
struct Exchange<'a> {
    host: &'a mut dyn Host,
    port: u32,
    options: Options,
    /// What is delivered to the asker so far.
    replies: Replies,
    /// The notifications of what its requests changed, with their groups.
    notifications: Vec<(u32, Vec<u8>)>,
}

impl Exchange<'_> {
    /// Answers one message (`netlink_rcv_skb`): only requests are handled, control
    /// messages are only acknowledged, errors always reported.
    fn receive(&mut self, message: Message) {
        let to = Addressee { port: self.port, sequence: message.header.sequence_number };
        let request =
            Request { message, to, strict: self.options.strict_check, uid: self.options.uid };
        let handled = if request.message.is_request() {
            self.handle(&request)
        } else {
            Handled::Acknowledge(0)
        };
        self.replies.conclude(&request.message, request.to, handled);
    }

    /// Handles one request (`rtnetlink_rcv_msg`).
    fn handle(&mut self, request: &Request) -> Handled {
        let message = &request.message;
        if message.header.message_type > RTM_MAX {
            return Handled::Acknowledge(libc::EOPNOTSUPP);
        }
        if message.payload().is_empty() {
            return Handled::Acknowledge(0);
        }
        if message.header.message_type % 4 != libc::RTM_GETLINK % 4 {
            return Handled::Acknowledge(self.change(request).err().unwrap_or(0));
        }
        if message.has_flag(NLM_F_DUMP) {
            return self.dump(request);
        }
        Handled::Acknowledge(self.get(request))
    }

    /// Starts a dump (`netlink_dump_start`): its first datagram goes out now, the
    /// rest as the program reads.
    fn dump(&mut self, request: &Request) -> Handled {
        if self.replies.dumping() {
            return Handled::Acknowledge(libc::EBUSY);
        }
        let message = &request.message;
        let Some(handler) = dump_handler(message.header.message_type, message.family()) else {
            return Handled::Acknowledge(libc::EOPNOTSUPP);
        };
        let view = self.host.view();
        self.replies.start_dump((handler.answer)(&view, request).into_datagrams(handler.done_apart))
    }

    /// Answers a single get; the errno to acknowledge it with.
    fn get(&mut self, request: &Request) -> Errno {
        let message = &request.message;
        let Some(get) = get_handler(message.header.message_type, message.family()) else {
            return libc::EOPNOTSUPP;
        };
        match get(&self.host.view(), request) {
            Ok(answers) => {
                self.replies.delivered.extend(answers);
                0
            }
            Err(errno) => errno,
        }
    }

    /// Carries out a request that changes the stack, and notifies what changed:
    /// to its group's members, and to the asker if it asked for an echo.
    fn change(&mut self, request: &Request) -> Result<(), Errno> {
        let before = self.host.view();
        let change = changes::read(&before, request)?;
        let events = self.host.change(&change)?;
        let after = self.host.view();
        for (group, message) in changes::notifications(&before, &after, &events, request.to) {
            if request.message.has_flag(NLM_F_ECHO) {
                self.replies.delivered.push(message.clone());
            }
            self.notifications.push((group, message));
        }
        Ok(())
    }
}

/// A dump handler as Linux registers one (`rtnl_register`).
#[derive(Clone, Copy)]
struct DumpHandler {
    /// What it answers.
    answer: fn(&Inside, &Request) -> Dump,
    /// Whether its `NLMSG_DONE` comes in a datagram of its own (the handlers that
    /// end by returning a length, or that Linux flags `RTNL_FLAG_DUMP_SPLIT_NLM_DONE`).
    done_apart: bool,
}

/// The dump handler for message type `kind` and `family`: the family's own, else
/// `AF_UNSPEC`'s.
fn dump_handler(kind: u16, family: u8) -> Option<DumpHandler> {
    registered_dump(kind, family).or_else(|| registered_dump(kind, family::UNSPEC))
}

/// Message types Linux has that the `libc` crate does not name.
mod rtm {
    pub const GETSTATS: u16 = 94;
    pub const GETCHAIN: u16 = 102;
    pub const GETNEXTHOP: u16 = 106;
    pub const GETNEXTHOPBUCKET: u16 = 118;
    pub const GETTUNNEL: u16 = 122;
}

/// The dump handler Linux registers for `kind` and `family` exactly.
fn registered_dump(kind: u16, family: u8) -> Option<DumpHandler> {
    use family::{BRIDGE, INET, INET6, UNSPEC};
    let nothing: fn(&Inside, &Request) -> Dump = |_, request| Dump::new(request.to);
    let (answer, done_apart): (fn(&Inside, &Request) -> Dump, bool) = match (kind, family) {
        (libc::RTM_GETLINK, UNSPEC) => (link::dump, true),
        (libc::RTM_GETLINK, INET6) => (link::dump_inet6, false),
        (libc::RTM_GETADDR, UNSPEC | INET) => (address::dump, true),
        (libc::RTM_GETADDR, INET6) => (address::dump, false),
        (libc::RTM_GETROUTE, UNSPEC | INET | INET6) => (route::dump, true),
        (libc::RTM_GETRULE, UNSPEC) => (other::dump_rules, false),
        (libc::RTM_GETNEIGH, UNSPEC) => (neighbour::dump, false),
        (libc::RTM_GETNETCONF, UNSPEC) => (other::dump_netconf, true),
        (libc::RTM_GETNETCONF, INET | INET6) => (other::dump_netconf, false),
        (libc::RTM_GETQDISC, UNSPEC) => (other::dump_qdiscs, true),
        (rtm::GETSTATS, UNSPEC) => (other::dump_stats, false),
        // Linux has these; a stack has none of what they list.
        (libc::RTM_GETLINK | libc::RTM_GETNEIGH | libc::RTM_GETMDB | rtm::GETTUNNEL, BRIDGE)
        | (libc::RTM_GETMULTICAST, INET | INET6)
        | (libc::RTM_GETANYCAST | libc::RTM_GETADDRLABEL, INET6) => (nothing, false),
        (
            libc::RTM_GETTCLASS
            | libc::RTM_GETTFILTER
            | libc::RTM_GETACTION
            | libc::RTM_GETNEIGHTBL
            | libc::RTM_GETNSID
            | rtm::GETCHAIN
            | rtm::GETNEXTHOP
            | rtm::GETNEXTHOPBUCKET,
            UNSPEC,
        ) => (nothing, false),
        _ => return None,
    };
    Some(DumpHandler { answer, done_apart })
}

/// A single get's answer: the messages to deliver, or the errno to report.
type GetAnswer = Result<Vec<Vec<u8>>, Errno>;

/// The single-get handler for `kind` and `family`: the family's own, else
/// `AF_UNSPEC`'s.
fn get_handler(kind: u16, family: u8) -> Option<fn(&Inside, &Request) -> GetAnswer> {
    let get: fn(&Inside, &Request) -> GetAnswer = match (kind, family) {
        (libc::RTM_GETLINK, _) => link::get,
        (libc::RTM_GETROUTE, family::INET | family::INET6) => lookup::get,
        (libc::RTM_GETADDR, family::INET6) => address::get_inet6,
        (libc::RTM_GETNEIGH, family::BRIDGE) => neighbour::get_bridge_entry,
        (libc::RTM_GETNEIGH, _) => neighbour::get,
        (libc::RTM_GETNETCONF, family::INET | family::INET6) => other::get_netconf,
        (libc::RTM_GETNSID, _) => other::get_nsid,
        _ => return None,
    };
    Some(get)
}
