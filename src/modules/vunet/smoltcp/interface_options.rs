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
use super::sockopt::IPV6_UNICAST_IF;
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
            (libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP | libc::IP_DROP_MEMBERSHIP)
            | (libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP | libc::IPV6_DROP_MEMBERSHIP) => {
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

    /// Joins or leaves a multicast group (`ip_mreq`/`ip_mreqn` for IPv4,
    /// `ipv6_mreq` for IPv6) on one of the stack's links: named by index, by
    /// address (IPv4), or the one the route to the group leaves by.
    fn membership(&mut self, stop: &SyscallStop, id: SocketId, c: Setsockopt) -> Result<(), Errno> {
        /// The most groups one socket joins (`igmp_max_memberships`; IPv6
        /// counts against a socket's option memory instead).
        const MAX_V4: usize = 20;
        const MAX_V6: usize = 256;
        let v6 = c.level == libc::IPPROTO_IPV6;
        let (least, stream_first) = if v6 { (20, false) } else { (8, true) };
        let stream = self.table[id].proto == Proto::Tcp;
        if stream && stream_first {
            return Err(Errno::EPROTO);
        }
        if (c.optlen as i32) < least {
            return Err(Errno::EINVAL);
        }
        if stream {
            return Err(Errno::EPROTO);
        }
        let memory = stop.memory();
        let (group, index) = if v6 {
            let mreq = memory.read_bytes(c.optval.0, 20)?;
            let group: [u8; 16] = mreq[..16].try_into().expect("16 bytes");
            let index = u32::from_ne_bytes(mreq[16..20].try_into().expect("4 bytes"));
            (IpAddr::from(group), index)
        } else {
            let wanted = if (c.optlen as i32) >= 12 { 12 } else { 8 };
            let mreq = memory.read_bytes(c.optval.0, wanted)?;
            let word = |at: usize| <[u8; 4]>::try_from(&mreq[at..at + 4]).expect("4 bytes");
            let index = if wanted == 12 { u32::from_ne_bytes(word(8)) } else { 0 };
            (IpAddr::from(word(0)), self.group_link_v4(Ipv4Addr::from(word(4)), index))
        };
        let joining = matches!(c.optname, libc::IP_ADD_MEMBERSHIP | libc::IPV6_ADD_MEMBERSHIP);
        if !group.is_multicast() {
            return Err(Errno::EINVAL);
        }
        let link = match index {
            0 => self.host.route(group).map(|(index, _)| index),
            index => self.host.view().link(index).ok().map(|_| index),
        };
        let joined = &mut self.table[id].options.memberships;
        let found = joined.iter().position(|&(g, l)| g == group && Some(l) == link.or(Some(index)));
        match (joining, found, link) {
            (true, Some(_), _) if v6 => Err(Errno::EADDRINUSE),
            (true, _, None) => Err(Errno::ENODEV),
            (true, Some(_), _) => Err(Errno::EADDRINUSE),
            (true, None, Some(link)) => {
                let count = joined.iter().filter(|(g, _)| g.is_ipv6() == v6).count();
                if count >= if v6 { MAX_V6 } else { MAX_V4 } {
                    return Err(Errno::ENOBUFS);
                }
                joined.push((group, link));
                Ok(())
            }
            (false, Some(at), _) => {
                joined.remove(at);
                Ok(())
            }
            (false, None, None) if !v6 && index == 0 => Err(Errno::ENODEV),
            (false, None, _) => Err(Errno::EADDRNOTAVAIL),
        }
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
