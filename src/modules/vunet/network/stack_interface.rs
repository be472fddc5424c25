//! A stack's interface as a plug: frames delivered to it wait in a queue until the
//! stack takes them with [`Network::receive`], and the stack sends with
//! [`Network::send`].

use std::collections::VecDeque;
use std::time::Instant;

use super::link::Frame;
use super::plug::{Outbox, Plug};

/// How many frames may wait in one stack interface's receive queue; further frames for
/// it are dropped and counted in [`Counters::dropped`](super::Counters::dropped).
pub const RECEIVE_QUEUE_LIMIT: usize = 4096;

/// The plug of a stack's interface: a bounded queue of the frames delivered to it.
#[derive(Default)]
pub(super) struct StackInterface {
    inbox: VecDeque<Frame>,
}

impl Plug for StackInterface {
    fn deliver(&mut self, frame: Frame, _now: Instant, _out: &mut Outbox) {
        self.inbox.push_back(frame);
    }

    fn accepts(&self) -> bool {
        self.inbox.len() < RECEIVE_QUEUE_LIMIT
    }

    fn take(&mut self) -> Option<Frame> {
        self.inbox.pop_front()
    }

    fn queued(&self) -> usize {
        self.inbox.len()
    }
}
