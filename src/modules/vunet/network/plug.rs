//! The seam between the network and whatever is plugged into it.
//!
//! A switch forwards frames between its ports and knows nothing else; what sits at the
//! far end of each link is a [`Plug`], and the [`Network`](super::Network) drives every
//! plug through this one trait, whatever its kind. Counting a link's traffic is the
//! network's job, not the plug's, so that every kind is counted alike.

use std::os::fd::RawFd;
use std::path::Path;
use std::time::Instant;

use super::link::{Frame, LinkId};

/// Whatever is plugged into a switch port, at the far end of a link: a stack's
/// interface, a router's port, a capture wrapped around either; next, a NAT, VDE or
/// VXLAN uplink, which reads descriptors of its own ([`Plug::watches`]).
///
/// The network calls a plug from one thread and never while another call into the
/// same plug runs: frames a plug sends go into an [`Outbox`] and are switched after the
/// call returns, so a plug never sees its own frames come back mid-call. Everything
/// but [`Plug::deliver`] has a default that fits a plug without that ability.
pub trait Plug {
    /// Takes a frame the switch delivers to this link. Frames the plug sends in answer
    /// (a router's replies and forwards) go into `out`.
    fn deliver(&mut self, frame: Frame, now: Instant, out: &mut Outbox);

    /// Whether the plug takes a frame now. A refused frame is lost on the link and
    /// counted in [`Counters::dropped`](super::Counters::dropped); it is not delivered,
    /// so no capture records it.
    fn accepts(&self) -> bool {
        true
    }

    /// Sees a frame that entered the switch from this link, whoever produced it (the
    /// plug itself through an [`Outbox`], or a stack through
    /// [`Network::send`](super::Network::send)). A capture records it.
    fn sent(&mut self, _frame: &[u8]) {}

    /// Runs the plug's timers (a router's ARP and NDP retries); frames go into `out`.
    fn poll(&mut self, _now: Instant, _out: &mut Outbox) {}

    /// When [`Plug::poll`] next has work to do, if ever.
    fn next_deadline(&self) -> Option<Instant> {
        None
    }

    /// Whether the plug reads descriptor `fd` of the supervisor's (an uplink's
    /// host sockets): the session's event loop then hands it to
    /// [`Plug::ready`] when it turns ready.
    fn watches(&self, _fd: RawFd) -> bool {
        false
    }

    /// Works on `fd`, which [`Plug::watches`] and which turned ready; frames
    /// go into `out`.
    fn ready(&mut self, _fd: RawFd, _now: Instant, _out: &mut Outbox) {}

    /// Whether the plug has work it could do at once (bytes it could not move
    /// for want of room): the event loop then runs [`Plug::poll`] again
    /// before it waits.
    fn busy(&self) -> bool {
        false
    }

    /// Pushes buffered output where it goes (a capture's file). Called at the end of
    /// every [`Network::poll`](super::Network::poll).
    fn flush(&mut self) {}

    /// Takes the next delivered frame, for a plug whose owner pulls its frames (a
    /// stack's interface, through [`Network::receive`](super::Network::receive)).
    fn take(&mut self) -> Option<Frame> {
        None
    }

    /// How many delivered frames wait for [`Plug::take`].
    fn queued(&self) -> usize {
        0
    }

    /// The name of the device this plug is one port of, when that device has ports on
    /// several links (a router).
    fn owner(&self) -> Option<&str> {
        None
    }

    /// The files this link is captured into, in the order the captures were added.
    fn capture_paths(&self) -> Vec<&Path> {
        Vec::new()
    }
}

/// The frames a plug sends during one call, each with the link it enters the switch by.
///
/// The network counts them, shows them to the sending link's plug
/// ([`Plug::sent`]) and switches them, in order, once the call has returned.
pub struct Outbox {
    own_link: LinkId,
    frames: Vec<(LinkId, Frame)>,
}

impl Outbox {
    /// An empty outbox for a call into the plug at `own_link`.
    pub(super) fn new(own_link: LinkId) -> Self {
        Self { own_link, frames: Vec::new() }
    }

    /// Sends a frame into the switch by the plug's own link.
    pub fn send(&mut self, frame: Frame) {
        self.frames.push((self.own_link, frame));
    }

    /// Sends a frame by another link of the same device (a router forwarding out of
    /// another of its ports).
    pub fn send_by(&mut self, link: LinkId, frame: Frame) {
        self.frames.push((link, frame));
    }

    /// The frames sent, in order.
    pub(super) fn into_frames(self) -> Vec<(LinkId, Frame)> {
        self.frames
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{Counters, Network};
    use super::*;

    /// A toy uplink, as a NAT or VDE plug would be written: it answers every frame
    /// after a delay, from its timer, with source and destination swapped.
    struct DelayedEcho {
        delay: Duration,
        waiting: Vec<(Instant, Frame)>,
    }

    impl Plug for DelayedEcho {
        fn deliver(&mut self, mut frame: Frame, now: Instant, _out: &mut Outbox) {
            let (destination, source) = frame.split_at_mut(6);
            destination.swap_with_slice(&mut source[..6]);
            self.waiting.push((now + self.delay, frame));
        }

        fn poll(&mut self, now: Instant, out: &mut Outbox) {
            let (due, later) = self.waiting.drain(..).partition(|(at, _)| *at <= now);
            self.waiting = later;
            due.into_iter().for_each(|(_, frame)| out.send(frame));
        }

        fn next_deadline(&self) -> Option<Instant> {
            self.waiting.iter().map(|(at, _)| *at).min()
        }
    }

    #[test]
    fn a_new_kind_of_link_is_one_plug_and_one_call() {
        let dir = std::env::temp_dir().join(format!("netvm-plug-unit-{}", std::process::id()));
        let mut net = Network::new(Some(dir.clone()));
        let switch = net.add_switch("sw0");
        let stack = net.attach(switch, "s/eth0", None).unwrap();
        let echo = DelayedEcho { delay: Duration::from_millis(10), waiting: Vec::new() };
        let uplink = net.plug(switch, "up", Box::new(echo), None).unwrap();
        assert!(net.plug(switch, "up", Box::new(Sink), None).is_err());

        let now = Instant::now();
        let mut frame = vec![0xff; 6];
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
        frame.resize(60, 0);
        net.send(stack, frame, now);
        let deadline = now + Duration::from_millis(10);
        assert_eq!(net.next_deadline(), Some(deadline));
        assert_eq!(net.poll(now), Some(deadline));
        assert!(!net.has_frames(stack), "not due yet");
        assert_eq!(net.poll(deadline), None);
        let answer = net.receive(stack).unwrap();
        assert_eq!((&answer[0..6], &answer[6..12]), (&[0x02, 0, 0, 0, 0, 1][..], &[0xff; 6][..]));

        let both_ways =
            Counters { rx_packets: 1, rx_bytes: 60, tx_packets: 1, tx_bytes: 60, dropped: 0 };
        assert_eq!(net.counters(uplink), both_ways);
        assert_eq!(net.router_of(uplink), None);
        // Captured like every link: the file header and the two frames.
        assert_eq!(net.capture_paths(uplink), vec![dir.join("up.pcap")]);
        assert_eq!(std::fs::metadata(dir.join("up.pcap")).unwrap().len(), 24 + 2 * (16 + 60));
        drop(net);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A plug that swallows every frame: the least a kind must write.
    struct Sink;

    impl Plug for Sink {
        fn deliver(&mut self, _frame: Frame, _now: Instant, _out: &mut Outbox) {}
    }
}
