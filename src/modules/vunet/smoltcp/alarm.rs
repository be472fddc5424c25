//! A ping socket's ICMP errors, for programs that wait for them with `poll`.
//!
//! Linux marks an unconnected ping socket that asked for `IP_RECVERR` with each
//! ICMP error about what it sent: it polls `POLLERR`, and its next receive
//! fails with the error, before the program reads the error queue. Its
//! carrier, an unconnected `AF_UNIX` datagram socket, can be given no error
//! from outside. So an *alarm* wakes it instead: an empty datagram from an end
//! of the stack's, which makes it poll readable; the trapped receive that
//! comes next takes the alarm away and fails with the error, as Linux's
//! would. `ping` then reads the error queue and prints the router's
//! "Destination Net Unreachable" or "Time to live exceeded".

use std::collections::HashSet;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{SockType, UnixAddr};

use super::endpoint::EndpointName;
use super::carrier::Carriers;
use crate::fdtable::SocketId;
use crate::tracer::SyscallStop;

/// The stack's alarm end and the sockets it woke.
#[derive(Default)]
pub(super) struct Alarms {
    /// The end alarms come from, made on first use.
    end: Option<(OwnedFd, EndpointName)>,
    /// The sockets whose carrier an alarm may still wait in.
    pending: HashSet<SocketId>,
}

impl Alarms {
    /// Wakes socket `id` (carrier `carrier`), which an ICMP error is for; the
    /// alarm end is made from `carriers` on first use.
    pub(super) fn sound(&mut self, carriers: &mut Carriers, id: SocketId, carrier: EndpointName) {
        if self.end.is_none() {
            self.end = carriers.bound_socket(SockType::Datagram);
        }
        let Some((end, _)) = &self.end else { return };
        let Ok(to) = UnixAddr::new_abstract(&carrier.0) else { return };
        // A full carrier takes no alarm: the error still waits in its queue.
        let sent = nix::sys::socket::sendto(
            end.as_raw_fd(),
            &[],
            &to,
            nix::sys::socket::MsgFlags::MSG_DONTWAIT,
        );
        if sent.is_ok() {
            self.pending.insert(id);
        }
    }

    /// At a receive (not of the error queue) of socket `id` at `fd`, before it
    /// runs: takes the alarm away if it is the next datagram. The receive
    /// then fails with the socket's error, if it holds one.
    pub(super) fn take_next(&mut self, stop: &SyscallStop, id: SocketId, fd: i32) {
        if self.pending.contains(&id)
            && let (Some((_, alarm)), Ok(carrier)) = (&self.end, stop.copy_fd(fd))
            && next_sender(&carrier) == Some(*alarm)
        {
            let mut nothing = [0u8; 1];
            // SAFETY: reads at most one byte into a live local buffer.
            unsafe {
                libc::recv(carrier.as_raw_fd(), nothing.as_mut_ptr().cast(), 1, libc::MSG_DONTWAIT)
            };
            self.pending.remove(&id);
        }
    }

    /// At the exit of a receive of socket `id` that took a datagram from the
    /// carrier named `sender` (as a `sockaddr_un`): whether it was the alarm
    /// (a receive that waited in the kernel when it came). The receive then
    /// fails with the socket's error instead.
    pub(super) fn taken(&mut self, id: SocketId, sender: &[u8]) -> bool {
        let Some((_, alarm)) = &self.end else { return false };
        if EndpointName::from_sockaddr(sender) != Some(*alarm) {
            return false;
        }
        self.pending.remove(&id);
        true
    }

    /// Forgets socket `id`'s alarm, closed.
    pub(super) fn forget(&mut self, id: SocketId) {
        self.pending.remove(&id);
    }
}

/// The name of the sender of the datagram next in line at `carrier`, if any.
fn next_sender(carrier: &OwnedFd) -> Option<EndpointName> {
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let flags = nix::sys::socket::MsgFlags::MSG_PEEK | nix::sys::socket::MsgFlags::MSG_DONTWAIT;
    let peeked =
        nix::sys::socket::recvmsg::<UnixAddr>(carrier.as_raw_fd(), &mut iov, None, flags).ok()?;
    let name = peeked.address?;
    Some(EndpointName(name.as_abstract()?.try_into().ok()?))
}
