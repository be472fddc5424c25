//! The seam between the network and whatever is plugged into it.
//!
//! A switch forwards frames between its ports and knows nothing else; what sits at the
//! far end of each link is a [`Plug`], and the [`Network`](super::Network) drives every
//! plug through this one trait, whatever its kind. Counting a link's traffic is the
//! network's job, not the plug's, so that every kind is counted alike.

use std::path::Path;
use std::time::Instant;

use super::{Frame, LinkId};

/// Whatever is plugged into a switch port, at the far end of a link: a stack's
/// interface, a router's port, a capture wrapped around either; next, a NAT, VDE or
/// VXLAN uplink.
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
