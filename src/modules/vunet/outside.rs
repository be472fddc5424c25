//! Calls on sockets no stack owns: left to the kernel, once judged.
//!
//! An address such a call passes is read once, judged, and put where the kernel
//! reads it and no other thread of the program can change it. Refused: a call that
//! would act on the network of a socket from outside the session, one that names a
//! stack's own plumbing, and without namespaces an interface request.

use nix::errno::Errno;

use super::Vunet;
use super::inside::ioctl::is_interface_request;
use super::inside::socket::NetlinkSockets;
use crate::fdtable::SocketId;
use crate::modules::{Disposition, Handled};
use crate::sandbox::Fence;
use crate::syscall::{AddrIn, Msg, Sendto, Syscall, UserPtr};
use crate::tracer::{SyscallStop, TraceeMemory};

/// The largest socket address the kernel takes (`sizeof(struct sockaddr_storage)`).
const MAX_SOCKADDR: u32 = 128;

/// What a call on a socket no stack owns hands the kernel to send to, read once
/// from the program's memory.
enum Outgoing {
    /// No address in play.
    Nothing,
    /// The address `call` (a `connect`, `bind` or `sendto`) passes.
    Address { call: Syscall, bytes: Vec<u8> },
    /// `sendmsg`'s header and the name it points to (`None`: none, or one the
    /// kernel refuses unread); for `sendmmsg`, its first message's.
    Message { header: libc::msghdr, name: Option<Vec<u8>>, msgvec: Option<u64> },
}

impl Outgoing {
    /// Reads what `call` passes; `EFAULT` where the kernel could not read it.
    fn read(memory: &TraceeMemory, call: &Syscall) -> Result<Self, Errno> {
        let address = |addr: UserPtr, len: u32| {
            if addr.is_null() || len > MAX_SOCKADDR {
                return Ok(Self::Nothing); // the kernel's error, from no read
            }
            Ok(Self::Address { call: *call, bytes: memory.read_bytes(addr.0, len as usize)? })
        };
        let message = |at: u64, msgvec| {
            let header = memory.read::<libc::msghdr>(at)?;
            let name = if header.msg_name.is_null() || header.msg_namelen > MAX_SOCKADDR {
                None
            } else {
                Some(memory.read_bytes(header.msg_name as u64, header.msg_namelen as usize)?)
            };
            Ok(Self::Message { header, name, msgvec })
        };
        match *call {
            Syscall::Connect(c) | Syscall::Bind(c) => address(c.addr, c.addrlen),
            Syscall::Sendto(c) => address(c.addr, c.addrlen),
            Syscall::Sendmsg(c) => message(c.msg.0, None),
            Syscall::Sendmmsg(c) if c.vlen > 0 => message(c.msgvec.0, Some(c.msgvec.0)),
            _ => Ok(Self::Nothing),
        }
    }

    /// The address the call sends to or binds, if any.
    fn name(&self) -> Option<&[u8]> {
        match self {
            Self::Address { bytes, .. } => Some(bytes),
            Self::Message { name, .. } => name.as_deref(),
            Self::Nothing => None,
        }
    }

    /// Whether `call` could act on its socket's network: connect, bind, listen,
    /// an option (a multicast group, a device), an interface request, a send to
    /// an address. Reads, writes and questions about the socket itself could not.
    fn reaches_a_network(&self, call: &Syscall) -> bool {
        match call {
            Syscall::Connect(_)
            | Syscall::Bind(_)
            | Syscall::Listen(_)
            | Syscall::Setsockopt(_) => true,
            Syscall::Ioctl(c) => is_interface_request(c.request),
            Syscall::Sendto(_) => true,
            _ => matches!(self, Self::Message { header, .. } if !header.msg_name.is_null()),
        }
    }

    /// Points the call at a sealed copy of what was read. A `sendmmsg` becomes the
    /// `sendmsg` of its first message, whose array is returned for the exit
    /// (see [`SyscallStop::finish_as_first_message`]).
    fn seal(self, stop: &mut SyscallStop) -> Result<Option<u64>, Errno> {
        match self {
            Self::Nothing => Ok(None),
            Self::Address { call, bytes } => {
                let addr = UserPtr(stop.put_sealed(&bytes, 0)?);
                stop.rewrite(match call {
                    Syscall::Connect(c) => Syscall::Connect(AddrIn { addr, ..c }),
                    Syscall::Bind(c) => Syscall::Bind(AddrIn { addr, ..c }),
                    Syscall::Sendto(c) => Syscall::Sendto(Sendto { addr, ..c }),
                    other => other, // `read` makes an `Address` of the three above only
                });
                Ok(None)
            }
            Self::Message { header, name, msgvec } => {
                let (at, _) = stop.put_sealed_header(header, name.as_deref())?;
                let msg = UserPtr(at);
                stop.rewrite(match stop.call() {
                    Syscall::Sendmmsg(c) => Syscall::Sendmsg(Msg { fd: c.fd, msg, flags: c.flags }),
                    Syscall::Sendmsg(c) => Syscall::Sendmsg(Msg { msg, ..c }),
                    other => other, // `read` makes a `Message` of the two above only
                });
                Ok(msgvec)
            }
        }
    }
}

impl Vunet {
    /// A call on something no stack owns, for the kernel, if it may run: an
    /// address it passes is read once, judged, and put where the kernel reads it
    /// and no other thread of the program can change it (see
    /// [`SyscallStop::put_sealed`]). Refused: a call that would act on the network
    /// of a socket from outside, one that names a carrier (a process would cross
    /// to a stack past it), and without namespaces an interface request.
    pub(super) fn kernel_call(
        &mut self,
        stop: &mut SyscallStop,
        socket: Option<SocketId>,
    ) -> Handled {
        let call = stop.call();
        let outgoing = Outgoing::read(&stop.memory(), &call)?;
        if let Some(socket) = socket
            && outgoing.reaches_a_network(&call)
            && self.is_foreign(stop, socket)
        {
            return Err(Errno::EPERM);
        }
        if self.fence == Fence::FilterOnly
            && let Syscall::Ioctl(c) = call
            && is_interface_request(c.request)
            && !self.passes_host_network(self.stack_of(stop.process))
        {
            // Without a namespace of its own, the kernel would answer about the
            // host's interfaces: as on a host without the interface asked for.
            return Err(Errno::ENODEV);
        }
        let reserved = |name: &[u8]| {
            self.stacks.iter().any(|s| s.reserves(name)) || NetlinkSockets::reserves(name)
        };
        if outgoing.name().is_some_and(reserved) {
            let refusal = match call {
                Syscall::Bind(_) => Errno::EADDRINUSE,
                _ => Errno::ECONNREFUSED,
            };
            return Err(refusal);
        }
        match outgoing.seal(stop)? {
            Some(msgvec) => {
                self.native_mmsg.insert(stop.tid, msgvec);
                Ok(Disposition::KernelThenFinish)
            }
            None => Ok(Disposition::Kernel),
        }
    }

    /// Whether `socket`, on which the call at `stop` was made and which no stack
    /// owns, is foreign to the session (a socket inherited or passed in from the
    /// host): calls on it are refused, never run on the host's network. In a
    /// namespace of its own, the session's sockets are those of that namespace;
    /// without one, its `AF_UNIX` sockets, and every socket of a process on a
    /// stack of the `host` kind. Remembered per socket.
    fn is_foreign(&mut self, stop: &SyscallStop, socket: SocketId) -> bool {
        if self.session_network.is_none() && self.passes_host_network(self.stack_of(stop.process)) {
            return false;
        }
        if let Some(&foreign) = self.foreign.get(&socket) {
            return foreign;
        }
        let Some(copy) = stop.call().fd().and_then(|fd| stop.copy_fd(fd).ok()) else {
            return false; // closed meanwhile: the kernel says EBADF
        };
        let foreign = match self.session_network {
            Some(network) => crate::sandbox::network_of(&copy)
                .is_none_or(|ns| ns != network && !self.packet.holds(ns)),
            None => crate::fdtable::family(&copy) != Some(libc::AF_UNIX),
        };
        // The fd may have been renumbered since it was resolved: the verdict is on
        // the socket the copy is of, and remembered only if that is the one resolved.
        if crate::fdtable::identity(&copy) == Some(socket) {
            self.foreign.insert(socket, foreign);
        }
        foreign
    }
}
