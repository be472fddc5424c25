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

/// How many frames' room an empty receive queue keeps.
const QUEUE_ROOM_KEPT: usize = 64;

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
        let frame = self.inbox.pop_front();
        // A burst that filled the queue leaves no room behind once it is taken.
        if frame.is_none() && self.inbox.capacity() > QUEUE_ROOM_KEPT {
            self.inbox.shrink_to(QUEUE_ROOM_KEPT);
        }
        frame
    }

    fn queued(&self) -> usize {
        self.inbox.len()
    }
}
