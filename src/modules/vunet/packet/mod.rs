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

use std::cell::Cell;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

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

/// How often a stack whose frames are copied is checked for packet sockets
/// still open: the copying stops within this time of the last one's close.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The mirror namespaces of the session's stacks, made on first use.
#[derive(Default)]
pub struct PacketSockets {
    mirrors: HashMap<StackId, StackMirror>,
    last_check: Option<Instant>,
    /// Whether the session was told packet sockets need seccomp notifications:
    /// once, however often a program asks.
    warned_of_tracing: bool,
}

/// One stack's mirror: its namespace, and whether its frames are copied.
struct StackMirror {
    namespace: NetNamespace,
    /// Shared with the stack's [`Mirror`]s: whether a program holds a packet
    /// socket of the namespace.
    active: Rc<Cell<bool>>,
    /// The inodes of the supervisor's own packet sockets in the namespace.
    own: Vec<u64>,
    /// The devices as last made to look like the stack's interfaces.
    devices: Vec<Device>,
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
        // As `__sys_socket` and `__sock_create` judge before the family does.
        let (ty, _) = call.type_and_flags()?;
        if ty >= SOCK_MAX {
            return Err(Errno::EINVAL);
        }
        if !has_capability(stop.tid, CAP_NET_RAW) {
            return Err(Errno::EPERM);
        }
        // Asked before the mirror is made: it would serve no one.
        if !stop.can_return_new_fd() {
            if !self.warned_of_tracing {
                log::warn!("packet sockets need seccomp notifications (not under --trace)");
                self.warned_of_tracing = true;
            }
            return Err(Errno::EAFNOSUPPORT);
        }
        let mirror = match self.mirrors.entry(stack.id) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                entry.insert(StackMirror::new(&stack, network, registry).map_err(|e| {
                    log::warn!("stack {}: no packet devices: {e}", stack.name);
                    Errno::ENOBUFS
                })?)
            }
        };
        let socket = mirror
            .namespace
            .run(|| packet_socket(call.ty & !libc::SOCK_CLOEXEC, call.protocol))
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::ENOBUFS)))?;
        stop.return_new_fd(socket, call.ty & libc::SOCK_CLOEXEC != 0)
            .map_err(|_| Errno::EAFNOSUPPORT)?;
        mirror.active.set(true);
        Ok(Disposition::Kernel)
    }

    /// Makes stack `stack`'s devices, if it has them, follow what it shows of
    /// its interfaces now (`ip link set eth0 down`, `mtu`, `address` inside):
    /// what programs read of them with `getsockname` or the kernel's own calls.
    pub fn follow(&mut self, stack: StackId, inside: impl FnOnce() -> Option<Inside>) {
        let Some(mirror) = self.mirrors.get_mut(&stack) else { return };
        let Some(inside) = inside() else { return };
        let inside = &inside;
        let now = devices(inside);
        for (device, before) in now.iter().zip(&mirror.devices) {
            if device != before
                && let Err(e) = mirror.namespace.run(|| veth::set_link(device))
            {
                log::warn!("packet device {}: {e}", device.name);
            }
        }
        mirror.devices = now;
    }

    /// Whether `namespace` (an inode) is one of the stacks' mirror namespaces,
    /// whose sockets are the session's own.
    pub fn holds(&self, namespace: u64) -> bool {
        self.mirrors.values().any(|mirror| mirror.namespace.inode() == namespace)
    }

    /// Stops copying the frames of stacks where no program holds a packet
    /// socket any more, checking every [`CHECK_INTERVAL`]; returns when to check
    /// next, while some stack's frames are copied.
    pub fn refresh(&mut self, now: Instant) -> Option<Instant> {
        let mut copying = self.mirrors.values().filter(|mirror| mirror.active.get()).peekable();
        copying.peek()?;
        let last = *self.last_check.get_or_insert(now);
        if now < last + CHECK_INTERVAL {
            return Some(last + CHECK_INTERVAL);
        }
        for mirror in copying {
            let held = mirror
                .namespace
                .packet_sockets()
                .map_or(true, |sockets| sockets.iter().any(|inode| !mirror.own.contains(inode)));
            mirror.active.set(held);
        }
        self.last_check = Some(now);
        Some(now + CHECK_INTERVAL)
    }
}

/// `SOCK_MAX` (linux/net.h): socket types are below it.
const SOCK_MAX: i32 = 11;

impl StackMirror {
    /// Makes `stack`'s mirror namespace: a device for each of its Ethernet
    /// interfaces, mirroring the interface's link if it has one.
    fn new(stack: &StackSide, network: &mut Network, registry: &mio::Registry) -> io::Result<Self> {
        let namespace = NetNamespace::new()?;
        // The peers are made in the session's namespace: none of them speaks IPv6.
        std::fs::write(namespace::IPV6_DEFAULT, "1")?;
        let active = Rc::new(Cell::new(false));
        let mut own = Vec::new();
        for device in devices(stack.inside) {
            let peer_name = format!("nvp{}.{}", stack.id, device.index);
            veth::make_pair(&device, namespace.fd(), &peer_name)?;
            let Some(link_id) = network.find_link(&format!("{}/{}", stack.name, device.name))
            else {
                continue; // unplugged: a device that never sees a frame
            };
            let peer = bind_to_device(index_of(&peer_name)?, false, false)?;
            let on_device = namespace.run(|| bind_to_device(device.index, true, true))?;
            own.push(inode_of(&on_device)?);
            let fd = on_device.as_raw_fd();
            let source = &mut mio::unix::SourceFd(&fd);
            registry.register(source, mio::Token(fd as usize), mio::Interest::READABLE)?;
            let ends = (on_device, peer);
            let active = active.clone();
            network.wrap(link_id, |plug| Box::new(Mirror::new(plug, ends, active)));
        }
        let devices = devices(stack.inside);
        Ok(Self { namespace, active, own, devices })
    }
}

/// The mirror devices a stack's Ethernet interfaces have.
fn devices(inside: &Inside) -> Vec<Device> {
    let ethernet = inside.links.iter().filter(|link| link.kind == LinkKind::Ethernet);
    ethernet
        .map(|link| Device {
            index: link.index,
            name: link.name.clone(),
            mac: link.mac,
            mtu: link.mtu,
            up: link.up,
        })
        .collect()
}

/// A packet socket of the calling thread's namespace (`socket(AF_PACKET, ty,
/// protocol)`, close-on-exec).
fn packet_socket(ty: i32, protocol: i32) -> io::Result<OwnedFd> {
    // SAFETY: socket takes plain integers and returns a new descriptor or -1.
    let fd = unsafe { libc::socket(libc::AF_PACKET, ty | libc::SOCK_CLOEXEC, protocol) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just made and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The inode of `socket`.
fn inode_of(socket: &OwnedFd) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::File::from(socket.try_clone()?).metadata()?.ino())
}

/// The index of device `name` in the supervisor's namespace.
fn index_of(name: &str) -> io::Result<u32> {
    let name = std::ffi::CString::new(name).map_err(io::Error::other)?;
    // SAFETY: if_nametoindex reads the live, NUL-terminated name.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err(io::Error::last_os_error()),
        index => Ok(index),
    }
}
