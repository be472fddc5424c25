//! The options that name one of the stack's interfaces, by index or by
//! address: `IP_MULTICAST_IF`, `IP_UNICAST_IF`, `IPV6_MULTICAST_IF`,
//! `IPV6_UNICAST_IF`, and the group memberships (`IP_ADD_MEMBERSHIP`,
//! `IPV6_ADD_MEMBERSHIP` and their drops). A kernel socket of the supervisor
//! would look for the interface among the supervisor's own devices; netvm
//! looks among the stack's, with the checks of Linux's `do_ip_setsockopt` and
//! `do_ipv6_setsockopt`, and keeps the value for `getsockopt` (a membership
//! carries no multicast traffic: the stacks have none).

use std::net::{IpAddr, Ipv4Addr};

use nix::errno::Errno;

use super::ports::Proto;
use super::sockopt::{IPV6_UNICAST_IF, is_membership};
use super::stack::SmoltcpStack;
use crate::fdtable::SocketId;
use crate::syscall::Setsockopt;
use crate::tracer::SyscallStop;

impl SmoltcpStack {
    /// `setsockopt` `c` on socket `id` if it names an interface (`None` if
    /// it does not): checked against the stack's interfaces, and kept.
    pub(super) fn set_interface_option(
        &mut self,
        stop: &SyscallStop,
        id: SocketId,
        c: Setsockopt,
    ) -> Option<Result<(), Errno>> {
        let answer = match (c.level, c.optname) {
            (libc::IPPROTO_IP | libc::IPPROTO_IPV6, name) if is_membership(c.level, name) => {
                return Some(self.membership(stop, id, c));
            }
            (libc::IPPROTO_IP, libc::IP_MULTICAST_IF) => self.multicast_source(stop, id, c),
            (libc::IPPROTO_IP, libc::IP_UNICAST_IF)
            | (libc::IPPROTO_IPV6, IPV6_UNICAST_IF | libc::IPV6_MULTICAST_IF) => {
                self.interface_index(stop, id, c)
            }
            _ => return None,
        };
        Some(answer.map(|kept| {
            let socket = &mut self.table[id];
            // Kept as given: the options read back as they were set.
            let _ = socket.options.set(c.level, c.optname, kept, socket.proto);
        }))
    }

    /// `IP_UNICAST_IF`, `IPV6_UNICAST_IF` (an index in network order) and
    /// `IPV6_MULTICAST_IF` (in host order): what `getsockopt` gives back.
    fn interface_index(&self, stop: &SyscallStop, id: SocketId, c: Setsockopt) -> Result<i32, Errno> {
        let socket = &self.table[id];
        let multicast = c.optname == libc::IPV6_MULTICAST_IF;
        if multicast && socket.proto == Proto::Tcp {
            return Err(Errno::ENOPROTOOPT);
        }
        // Both levels read an int first if one was given.
        let value = match c.optlen as i32 {
            n if n >= 4 => stop.memory().read::<i32>(c.optval.0)?,
            n if n >= 1 && c.level == libc::IPPROTO_IP => {
                i32::from(stop.memory().read::<u8>(c.optval.0)?)
            }
            _ => 0,
        };
        let unicast_needs_int = !multicast && c.optlen != 4;
        if unicast_needs_int || (multicast && (c.optlen as i32) < 4) {
            return Err(Errno::EINVAL);
        }
        let index = if multicast { value } else { u32::from_be(value as u32) as i32 };
        if index == 0 {
            return Ok(0);
        }
        if self.host.view().link(index as u32).is_err() {
            return Err(if multicast { Errno::ENODEV } else { Errno::EADDRNOTAVAIL });
        }
        let bound = socket.options.bound_device;
        if bound != 0 && bound != index as u32 {
            return Err(Errno::EINVAL);
        }
        // IPv4 reads its index back in host order, IPv6 as it was given.
        Ok(if c.level == libc::IPPROTO_IP { index } else { value })
    }

    /// Joins or leaves a multicast group on one of the stack's links, named by
    /// index, by address (IPv4), or the one the route to the group leaves by:
    /// `IP_ADD_MEMBERSHIP` (`ip_mreq`, `ip_mreqn`), `IPV6_ADD_MEMBERSHIP`
    /// (`ipv6_mreq`), the source forms (`ip_mreq_source`), RFC 3678's
    /// `MCAST_JOIN_GROUP` and `MCAST_JOIN_SOURCE_GROUP` (`group_req`,
    /// `group_source_req`), and their drops. Sources are not kept: a source
    /// joins its group, and dropping one leaves the group joined.
    fn membership(&mut self, stop: &SyscallStop, id: SocketId, c: Setsockopt) -> Result<(), Errno> {
        /// The most groups one socket joins (`igmp_max_memberships`; IPv6
        /// counts against a socket's option memory instead).
        const MAX_V4: usize = 20;
        const MAX_V6: usize = 512;
        let stream = self.table[id].proto == Proto::Tcp;
        let request = self.membership_request(stop, c, stream)?;
        let Membership { group, index, action } = request;
        let v6 = group.is_ipv6();
        if !group.is_multicast() {
            return Err(Errno::EINVAL);
        }
        let link = match index {
            0 => self.host.route(group).map(|(index, _)| index),
            index => self.host.view().link(index).ok().map(|_| index),
        };
        let joined = &mut self.table[id].options.memberships;
        // IPv6 takes index 0 for any link (`ipv6_sock_mc_join`); IPv4 matches
        // the link the request resolves to.
        let found = joined.iter().position(|&(g, l)| {
            g == group && if v6 { index == 0 || l == index } else { Some(l) == link }
        });
        let joining = matches!(action, Action::Join | Action::AddSource);
        match (action, found, link) {
            (Action::Join, Some(_), _) if v6 => Err(Errno::EADDRINUSE),
            (Action::Join | Action::AddSource, _, None) => Err(Errno::ENODEV),
            (Action::Join, Some(_), _) => Err(Errno::EADDRINUSE),
            (Action::AddSource | Action::DropSource, Some(_), _) => Ok(()),
            (_, None, Some(link)) if joining => {
                let count = joined.iter().filter(|(g, _)| g.is_ipv6() == v6).count();
                if count >= if v6 { MAX_V6 } else { MAX_V4 } {
                    return Err(Errno::ENOBUFS);
                }
                joined.push((group, link));
                Ok(())
            }
            (Action::Leave, Some(at), _) => {
                joined.remove(at);
                Ok(())
            }
            (_, None, None) if !v6 && index == 0 => Err(Errno::ENODEV),
            _ => Err(Errno::EADDRNOTAVAIL),
        }
    }

    /// Reads membership option `c` of a socket (a `stream` or not), with
    /// Linux's checks of its form before the group is looked at.
    fn membership_request(
        &self,
        stop: &SyscallStop,
        c: Setsockopt,
        stream: bool,
    ) -> Result<Membership, Errno> {
        /// `struct group_req` and `struct group_source_req` (a `u32` index
        /// padded to 8, then one or two `sockaddr_storage`).
        const GROUP_REQ: i32 = 8 + 128;
        const GROUP_SOURCE_REQ: i32 = 8 + 2 * 128;
        let v6 = c.level == libc::IPPROTO_IPV6;
        let action = match c.optname {
            libc::IP_ADD_MEMBERSHIP | libc::MCAST_JOIN_GROUP => Action::Join,
            libc::IPV6_ADD_MEMBERSHIP if v6 => Action::Join,
            libc::IP_ADD_SOURCE_MEMBERSHIP | libc::MCAST_JOIN_SOURCE_GROUP => Action::AddSource,
            libc::IP_DROP_SOURCE_MEMBERSHIP | libc::MCAST_LEAVE_SOURCE_GROUP => Action::DropSource,
            _ => Action::Leave,
        };
        let len = c.optlen as i32;
        let least = match c.optname {
            libc::MCAST_JOIN_GROUP | libc::MCAST_LEAVE_GROUP => GROUP_REQ,
            libc::MCAST_JOIN_SOURCE_GROUP | libc::MCAST_LEAVE_SOURCE_GROUP => GROUP_SOURCE_REQ,
            _ if v6 => 20,
            libc::IP_ADD_SOURCE_MEMBERSHIP | libc::IP_DROP_SOURCE_MEMBERSHIP => 12,
            _ => 8,
        };
        // A stream is refused: at IPv4's level before the length is looked
        // at (EPROTO for the plain forms, EINVAL for the others), at IPv6's
        // after it (EPROTO, for the plain forms only).
        let plain = match v6 {
            false => matches!(c.optname, libc::IP_ADD_MEMBERSHIP | libc::IP_DROP_MEMBERSHIP),
            true => matches!(c.optname, libc::IPV6_ADD_MEMBERSHIP | libc::IPV6_DROP_MEMBERSHIP),
        };
        if stream && !v6 {
            return Err(if plain { Errno::EPROTO } else { Errno::EINVAL });
        }
        if len < least {
            return Err(Errno::EINVAL);
        }
        if stream && plain {
            return Err(Errno::EPROTO);
        }
        let memory = stop.memory();
        let word = |bytes: &[u8], at: usize| <[u8; 4]>::try_from(&bytes[at..at + 4]).expect("4");
        if least >= GROUP_REQ {
            let request = memory.read_bytes(c.optval.0, least as usize)?;
            let index = u32::from_ne_bytes(word(&request, 0));
            let family = i32::from(u16::from_ne_bytes([request[8], request[9]]));
            let group = match (v6, family) {
                (false, libc::AF_INET) => IpAddr::from(word(&request, 12)),
                (true, libc::AF_INET6) => {
                    IpAddr::from(<[u8; 16]>::try_from(&request[16..32]).expect("16"))
                }
                _ => return Err(Errno::EADDRNOTAVAIL),
            };
            return Ok(Membership { group, index, action });
        }
        if v6 {
            let request = memory.read_bytes(c.optval.0, 20)?;
            let group = IpAddr::from(<[u8; 16]>::try_from(&request[..16]).expect("16"));
            return Ok(Membership { group, index: u32::from_ne_bytes(word(&request, 16)), action });
        }
        // ip_mreqn { group, address, index }, ip_mreq { group, address },
        // ip_mreq_source { group, interface address, source }.
        let source_form = least == 12;
        let wanted = if !source_form && len >= 12 { 12 } else { 8 };
        let request = memory.read_bytes(c.optval.0, wanted)?;
        let index = if wanted == 12 && !source_form { u32::from_ne_bytes(word(&request, 8)) } else { 0 };
        let index = self.group_link_v4(Ipv4Addr::from(word(&request, 4)), index);
        Ok(Membership { group: IpAddr::from(word(&request, 0)), index, action })
    }

    /// The link an IPv4 membership names: by index, else by one of the
    /// stack's addresses (0 if neither names one; `membership` then takes the
    /// route's).
    fn group_link_v4(&self, address: Ipv4Addr, index: u32) -> u32 {
        if index != 0 || address.is_unspecified() {
            return index;
        }
        let view = self.host.view();
        view.addresses
            .iter()
            .find(|a| a.address.ip == IpAddr::V4(address))
            .map_or(u32::MAX, |a| a.index)
    }

    /// `IP_MULTICAST_IF`: an `in_addr`, `ip_mreq` or `ip_mreqn` naming the
    /// interface by address or by index; the address is what `getsockopt`
    /// gives back.
    fn multicast_source(&self, stop: &SyscallStop, id: SocketId, c: Setsockopt) -> Result<i32, Errno> {
        let socket = &self.table[id];
        let len = c.optlen as i32;
        if socket.proto == Proto::Tcp || len < 4 {
            return Err(Errno::EINVAL);
        }
        // struct ip_mreqn { imr_multiaddr, imr_address, imr_ifindex }; a
        // shorter ip_mreq or in_addr names the address alone.
        let memory = stop.memory();
        let bytes = memory.read_bytes(c.optval.0, (len as usize).min(12) / 4 * 4)?;
        let word = |at: usize| <[u8; 4]>::try_from(&bytes[at..at + 4]).expect("4 bytes");
        let (address, index) = match bytes.len() {
            12 => (word(4), i32::from_ne_bytes(word(8))),
            8 => (word(4), 0),
            _ => (word(0), 0),
        };
        let ip = Ipv4Addr::from(address);
        let known = if index != 0 {
            self.host.view().link(index as u32).is_ok()
        } else {
            ip.is_unspecified() || self.host.is_local(IpAddr::V4(ip))
        };
        if !known {
            return Err(Errno::EADDRNOTAVAIL);
        }
        let bound = socket.options.bound_device;
        if index != 0 && bound != 0 && bound != index as u32 {
            return Err(Errno::EINVAL);
        }
        Ok(i32::from_ne_bytes(address))
    }
}

/// What a membership option asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Join,
    Leave,
    AddSource,
    DropSource,
}

/// A membership option, read: the group, the link's index (0: the route's),
/// and what to do.
struct Membership {
    group: IpAddr,
    index: u32,
    action: Action,
}
