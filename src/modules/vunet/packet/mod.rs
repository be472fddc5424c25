//! Packet sockets (`AF_PACKET`) on a stack's interfaces: `tcpdump` and `arping`
//! inside a stack, with the kernel's own packet sockets, BPF filters and
//! `TPACKET` rings.
//!
//! The first packet socket a program of a stack asks for gives that stack a
//! network namespace of the supervisor's (see [`namespace`]) holding one device
//! per Ethernet interface of the stack, with the interface's name, index, MAC and
//! MTU (`lo` is at 1 there too). Each device is one end of a veth pair whose
//! other end is in the session's namespace ([`veth`]), and a [`Mirror`] wrapped
//! around the interface's plug copies every frame of the link onto the device and
//! sends what programs send there into the link ([`mirror`]).
//!
//! The program's socket is then made by the supervisor in that namespace and
//! given to the program as the result of its `socket()`
//! ([`SyscallStop::return_new_fd`]). From then on everything is the kernel's:
//! `bind` to index 2 or to none (`-i any`), `PACKET_ADD_MEMBERSHIP`,
//! `getsockname`, filters, rings, the addresses `recvfrom` gives. They speak of
//! the stack's devices alone, with the indexes and names the stack shows, and a
//! program of one stack never sees another's frames: its namespace holds no
//! other.
//!
//! Privilege is as on Linux: a process needs `CAP_NET_RAW` (root in the
//! session). Sessions that never ask pay nothing; once asked, a stack's frames
//! are copied for the rest of the session.

mod mirror;
mod namespace;
mod veth;

use std::collections::HashMap;
use std::os::fd::AsRawFd;

use nix::errno::Errno;

use super::StackId;
use super::inside::{Inside, LinkKind};
use super::network::Network;
use super::smoltcp::proc::{CAP_NET_RAW, has_capability};
use crate::modules::{Disposition, Handled};
use crate::syscall::Socket;
use crate::tracer::SyscallStop;
use mirror::{Mirror, bind_to_device};
use namespace::NetNamespace;
use veth::Device;

/// The mirror namespaces of the session's stacks, made on first use.
#[derive(Default)]
pub struct PacketSockets {
    namespaces: HashMap<StackId, NetNamespace>,
}

/// Where a stack's mirror is made: its name, what it shows of itself, and the
/// network its links are on.
pub struct StackSide<'a> {
    /// Its index among the session's stacks.
    pub id: StackId,
    /// Its name (its links are named `<name>/<interface>`).
    pub name: &'a str,
    /// What it shows of itself.
    pub inside: &'a Inside,
}

impl PacketSockets {
    /// `socket(AF_PACKET, ...)` by a process of stack `stack`: a socket of the
    /// stack's mirror namespace, or the error Linux gives.
    pub fn create(
        &mut self,
        stop: &mut SyscallStop,
        stack: StackSide,
        call: Socket,
        network: &mut Network,
        registry: &mio::Registry,
    ) -> Handled {
        let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // As `__sys_socket` and `__sock_create` judge before the family does.
        if call.ty & !(flags | 0xf) != 0 || call.ty & 0xf >= SOCK_MAX {
            return Err(Errno::EINVAL);
        }
        if !has_capability(stop.process, CAP_NET_RAW) {
            return Err(Errno::EPERM);
        }
        let namespace = match self.namespaces.entry(stack.id) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(mirror_stack(&stack, network, registry).map_err(|e| {
                    log::warn!("stack {}: no packet devices: {e}", stack.name);
                    Errno::ENOBUFS
                })?)
            }
        };
        let ty = (call.ty & !libc::SOCK_CLOEXEC) | libc::SOCK_CLOEXEC;
        let socket = namespace
            .run(|| {
                // SAFETY: socket takes plain integers and returns a new descriptor or -1.
                let fd = unsafe { libc::socket(libc::AF_PACKET, ty, call.protocol) };
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // SAFETY: the descriptor was just made and nothing else owns it.
                Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
            })
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::ENOBUFS)))?;
        stop.return_new_fd(socket, call.ty & libc::SOCK_CLOEXEC != 0).map_err(|_| {
            log::warn!("packet sockets need seccomp notifications (not under --trace)");
            Errno::EAFNOSUPPORT
        })?;
        Ok(Disposition::Kernel)
    }

    /// Whether `namespace` (an inode) is one of the stacks' mirror namespaces,
    /// whose sockets are the session's own.
    pub fn holds(&self, namespace: u64) -> bool {
        self.namespaces.values().any(|ns| ns.inode() == namespace)
    }
}

/// `SOCK_MAX` (linux/net.h): socket types are below it.
const SOCK_MAX: i32 = 11;

/// Makes `stack`'s mirror namespace: a device for each of its Ethernet
/// interfaces, mirroring the interface's link if it has one.
fn mirror_stack(
    stack: &StackSide,
    network: &mut Network,
    registry: &mio::Registry,
) -> std::io::Result<NetNamespace> {
    let namespace = NetNamespace::new()?;
    // The peers are made in the session's namespace: none of them speaks IPv6.
    std::fs::write(namespace::IPV6_DEFAULT, "1")?;
    for link in stack.inside.links.iter().filter(|l| l.kind == LinkKind::Ethernet) {
        let device =
            Device { index: link.index, name: link.name.clone(), mac: link.mac, mtu: link.mtu };
        let peer_name = format!("nvp{}.{}", stack.id, link.index);
        veth::make_pair(&device, namespace.fd(), &peer_name)?;
        let Some(link_id) = network.find_link(&format!("{}/{}", stack.name, link.name)) else {
            continue; // unplugged: a device that never sees a frame
        };
        let peer_index = index_of(&peer_name)?;
        let peer = bind_to_device(peer_index, false, false)?;
        let on_device = namespace.run(|| bind_to_device(device.index, true, true))?;
        let fd = on_device.as_raw_fd();
        registry.register(
            &mut mio::unix::SourceFd(&fd),
            mio::Token(fd as usize),
            mio::Interest::READABLE,
        )?;
        network.wrap(link_id, |plug| Box::new(Mirror::new(plug, on_device, peer, device.mtu)));
    }
    Ok(namespace)
}

/// The index of device `name` in the supervisor's namespace.
fn index_of(name: &str) -> std::io::Result<u32> {
    let name = std::ffi::CString::new(name).map_err(std::io::Error::other)?;
    // SAFETY: if_nametoindex reads the live, NUL-terminated name.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err(std::io::Error::last_os_error()),
        index => Ok(index),
    }
}
