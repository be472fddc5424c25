//! The options that name one of the stack's interfaces, by index or by
//! address: `IP_MULTICAST_IF`, `IP_UNICAST_IF`, `IPV6_MULTICAST_IF` and
//! `IPV6_UNICAST_IF`. A kernel socket of the supervisor would look for the
//! interface among the supervisor's own devices; netvm looks among the
//! stack's, with the checks of Linux's `do_ip_setsockopt` and
//! `do_ipv6_setsockopt`, and keeps the value for `getsockopt`.

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
