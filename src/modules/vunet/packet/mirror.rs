//! A stack interface's frames, mirrored onto its device, and the frames programs
//! send on that device, into the stack's link.
//!
//! The [`Mirror`] wraps the interface's plug, as a capture does, and holds two
//! packet sockets of the supervisor's:
//! - one on the device itself, in the stack's namespace. A frame the stack sends
//!   is sent here, so it leaves the device as an outgoing frame (`PACKET_OUTGOING`
//!   to every other packet socket, as the frames a Linux host sends). It also
//!   reads what programs send on the device (`arping`): the outgoing frames of
//!   other sockets, the only ones its filter keeps; the kernel never shows a
//!   socket its own;
//! - one on the device's veth peer, in the session's namespace. A frame delivered
//!   to the stack is sent here, so it arrives at the device as a received one
//!   (`PACKET_HOST`, `PACKET_BROADCAST`... by its destination, as on Linux).

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use crate::modules::vunet::network::{Frame, Outbox, Plug};

/// The most frames read from programs in one [`Plug::poll`]; the rest wait
/// for the next one, which is then due at once.
const READ_BATCH: usize = 256;

/// `SO_ATTACH_FILTER` (asm-generic/socket.h).
const SO_ATTACH_FILTER: libc::c_int = 26;
/// `PACKET_OUTGOING` (linux/if_packet.h).
const PACKET_OUTGOING: u32 = 4;

/// A stack interface's plug, mirrored onto its packet device.
pub(super) struct Mirror {
    inner: Box<dyn Plug>,
    /// The packet socket on the device (the stack's namespace).
    device: OwnedFd,
    /// The packet socket on the device's peer (the session's namespace).
    peer: OwnedFd,
    /// Frames programs sent, put into the outbox, that the network has not yet
    /// shown back as this link's (see [`Plug::sent`]): they are not mirrored.
    echoes: usize,
    /// The last read stopped at [`READ_BATCH`]: more may wait.
    more: bool,
    /// Whether a program holds a packet socket of the stack's namespace: only
    /// then are frames copied, or read.
    active: Rc<Cell<bool>>,
    buffer: Vec<u8>,
}

impl Mirror {
    /// Mirrors `inner`'s frames through `device` and `peer` (see the module
    /// docs), frames of up to the largest MTU a link takes, while `active` holds.
    pub(super) fn new(
        inner: Box<dyn Plug>,
        (device, peer): (OwnedFd, OwnedFd),
        active: Rc<Cell<bool>>,
    ) -> Self {
        // A program may raise the interface's MTU to 65535 at any time.
        let buffer = vec![0; 65535 + 64];
        Self { inner, device, peer, echoes: 0, more: false, active, buffer }
    }

    /// Reads what programs sent on the device into `out`.
    fn read_programs_frames(&mut self, out: &mut Outbox) {
        self.more = false;
        if !self.active.get() {
            return;
        }
        for _ in 0..READ_BATCH {
            // SAFETY: recv writes at most the buffer's length into the live buffer.
            let len = unsafe {
                libc::recv(
                    self.device.as_raw_fd(),
                    self.buffer.as_mut_ptr().cast(),
                    self.buffer.len(),
                    libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                )
            };
            let Ok(len) = usize::try_from(len) else { return };
            if len <= self.buffer.len() {
                out.send(self.buffer[..len].to_vec());
                self.echoes += 1;
            }
        }
        self.more = true;
    }
}

impl Plug for Mirror {
    fn deliver(&mut self, frame: Frame, now: Instant, out: &mut Outbox) {
        if self.active.get() {
            send(&self.peer, &frame);
        }
        self.inner.deliver(frame, now, out);
    }

    fn accepts(&self) -> bool {
        self.inner.accepts()
    }

    fn sent(&mut self, frame: &[u8]) {
        if self.echoes > 0 {
            self.echoes -= 1;
        } else if self.active.get() {
            send(&self.device, frame);
        }
        self.inner.sent(frame);
    }

    fn poll(&mut self, now: Instant, out: &mut Outbox) {
        // Ours first: the network shows them back to `sent` in this order.
        self.read_programs_frames(out);
        self.inner.poll(now, out);
    }

    fn next_deadline(&self) -> Option<Instant> {
        let backlog = self.more.then(Instant::now);
        crate::modules::vunet::earliest(backlog, self.inner.next_deadline())
    }

    fn flush(&mut self) {
        self.inner.flush();
    }

    fn take(&mut self) -> Option<Frame> {
        self.inner.take()
    }

    fn queued(&self) -> usize {
        self.inner.queued()
    }

    fn owner(&self) -> Option<&str> {
        self.inner.owner()
    }

    fn capture_paths(&self) -> Vec<&Path> {
        self.inner.capture_paths()
    }
}

/// Sends `frame` out of the device `socket` is bound to; a frame the device
/// cannot take now is lost, as on a tap.
fn send(socket: &OwnedFd, frame: &[u8]) {
    // SAFETY: send reads `frame.len()` bytes of the live slice.
    unsafe {
        libc::send(socket.as_raw_fd(), frame.as_ptr().cast(), frame.len(), libc::MSG_DONTWAIT)
    };
}

/// A packet socket bound to the device at `index` of the calling thread's
/// namespace: receiving every protocol's frames that `only_outgoing` keeps (all
/// of them if false), or none if `receives` is false.
pub(super) fn bind_to_device(
    index: u32,
    receives: bool,
    only_outgoing: bool,
) -> io::Result<OwnedFd> {
    let socket = super::packet_socket(libc::SOCK_RAW | libc::SOCK_NONBLOCK, 0)?;
    let fd = socket.as_raw_fd();
    if only_outgoing {
        keep_outgoing_only(fd)?;
    }
    // SAFETY: sockaddr_ll is plain data; all zero is a valid value.
    let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    address.sll_family = libc::AF_PACKET as u16;
    address.sll_ifindex = index as i32;
    address.sll_protocol = if receives { (libc::ETH_P_ALL as u16).to_be() } else { 0 };
    let len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: bind reads `len` bytes of the live address.
    if unsafe { libc::bind(fd, (&raw const address).cast(), len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(socket)
}

/// Attaches a classic BPF filter to `fd` that keeps outgoing frames alone.
fn keep_outgoing_only(fd: RawFd) -> io::Result<()> {
    let instruction =
        |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter { code: code as u16, jt, jf, k };
    let program = [
        // A = the frame's packet type (an ancillary load).
        instruction(
            libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
            0,
            0,
            (libc::SKF_AD_OFF + libc::SKF_AD_PKTTYPE) as u32,
        ),
        instruction(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 1, PACKET_OUTGOING),
        instruction(libc::BPF_RET | libc::BPF_K, 0, 0, u32::MAX),
        instruction(libc::BPF_RET | libc::BPF_K, 0, 0, 0),
    ];
    let fprog = libc::sock_fprog { len: program.len() as u16, filter: program.as_ptr().cast_mut() };
    let len = size_of::<libc::sock_fprog>() as libc::socklen_t;
    // SAFETY: the kernel copies the program `fprog` points at, which lives
    // through the call.
    let set = unsafe {
        libc::setsockopt(fd, libc::SOL_SOCKET, SO_ATTACH_FILTER, (&raw const fprog).cast(), len)
    };
    if set == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, recv, socketpair};

    use super::*;
    use crate::modules::vunet::network::Network;

    /// Two connected datagram sockets: the mirror's end and the far one (what a
    /// packet socket's device leads to).
    fn pair() -> (OwnedFd, OwnedFd) {
        let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
        socketpair(AddressFamily::Unix, SockType::Datagram, None, flags).unwrap()
    }

    /// A 60-byte Ethernet frame from `source` to `destination`, tagged `tag`.
    fn frame(destination: [u8; 6], source: [u8; 6], tag: u8) -> Frame {
        let mut frame = [destination, source].concat();
        frame.extend_from_slice(&[0x08, 0x00, tag]);
        frame.resize(60, 0);
        frame
    }

    /// The next datagram waiting at `far`, if any.
    fn next(far: &OwnedFd) -> Option<Vec<u8>> {
        let mut buffer = [0u8; 128];
        let len = recv(far.as_fd().as_raw_fd(), &mut buffer, MsgFlags::MSG_DONTWAIT).ok()?;
        Some(buffer[..len].to_vec())
    }

    #[test]
    fn frames_cross_both_ways_and_a_programs_frames_come_back_to_no_one() {
        const STACK: [u8; 6] = [2, 0, 0, 0, 0, 1];
        const OTHER: [u8; 6] = [2, 0, 0, 0, 0, 2];
        const BROADCAST: [u8; 6] = [0xff; 6];
        let mut network = Network::new(None);
        let switch = network.add_switch("sw0");
        let stack = network.attach(switch, "s/eth0", None).unwrap();
        let other = network.attach(switch, "o/eth0", None).unwrap();
        let ((device, device_far), (peer, peer_far)) = (pair(), pair());
        let active = Rc::new(Cell::new(true));
        let flag = active.clone();
        network.wrap(stack, |plug| Box::new(Mirror::new(plug, (device, peer), flag)));
        let now = Instant::now();

        // What the stack sends leaves through the device.
        let sent = frame(BROADCAST, STACK, 1);
        network.send(stack, sent.clone(), now);
        assert_eq!(next(&device_far), Some(sent.clone()));
        assert_eq!(network.receive(other), Some(sent));
        // What is delivered to it arrives through the peer.
        let delivered = frame(STACK, OTHER, 2);
        network.send(other, delivered.clone(), now);
        assert_eq!(next(&peer_far), Some(delivered.clone()));
        assert_eq!(network.receive(stack), Some(delivered));
        // What a program sends on the device goes into the link, as the stack's,
        // and is not copied back out of the device.
        let programs = frame(BROADCAST, STACK, 3);
        nix::unistd::write(&device_far, &programs).unwrap();
        network.poll(now);
        assert_eq!(network.receive(other), Some(programs));
        assert_eq!(network.counters(stack).tx_packets, 2);
        assert_eq!(next(&device_far), None);
        // With no packet socket left, nothing is copied.
        active.set(false);
        network.send(stack, frame(BROADCAST, STACK, 4), now);
        network.send(other, frame(STACK, OTHER, 5), now);
        assert_eq!((next(&device_far), next(&peer_far)), (None, None));
    }
}
