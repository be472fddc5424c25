//! A router's interfaces as plugs: one [`RouterPort`] per interface, each on its own
//! link, all sharing one [`Router`].

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use super::link::{Frame, LinkId};
use super::plug::{Outbox, Plug};
use super::router::Router;

/// The port whose plug runs the router's timers, so that they run once a poll however
/// many ports the router has.
const TIMER_PORT: usize = 0;

/// What a router's ports share: the router, its name, and the link of each port.
struct SharedRouter {
    name: String,
    /// The link of each port, by port number.
    links: Vec<LinkId>,
    /// Borrowed by one port's call at a time: the network never calls into a plug
    /// while another call runs, and a port's call does not call another port.
    router: RefCell<Router>,
}

/// The plug of one router interface.
pub(super) struct RouterPort {
    shared: Rc<SharedRouter>,
    port: usize,
}

impl RouterPort {
    /// Sends what the router emitted, each frame by the link of its port.
    fn send(&self, emitted: Vec<(usize, Frame)>, out: &mut Outbox) {
        for (port, frame) in emitted {
            out.send_by(self.shared.links[port], frame);
        }
    }
}

impl RouterPort {
    /// The ports of router `router`, called `name`, one for each of `links` (its
    /// interfaces' links, in order).
    pub(super) fn one_per_link(name: &str, links: Vec<LinkId>, router: Router) -> Vec<Self> {
        let count = links.len();
        let shared =
            Rc::new(SharedRouter { name: name.to_owned(), links, router: RefCell::new(router) });
        (0..count).map(|port| RouterPort { shared: Rc::clone(&shared), port }).collect()
    }
}

impl Plug for RouterPort {
    fn deliver(&mut self, frame: Frame, now: Instant, out: &mut Outbox) {
        let mut emitted = Vec::new();
        self.shared.router.borrow_mut().handle_frame(self.port, &frame, now, &mut emitted);
        self.send(emitted, out);
    }

    fn poll(&mut self, now: Instant, out: &mut Outbox) {
        if self.port == TIMER_PORT {
            let mut emitted = Vec::new();
            self.shared.router.borrow_mut().poll(now, &mut emitted);
            self.send(emitted, out);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        if self.port == TIMER_PORT { self.shared.router.borrow().next_deadline() } else { None }
    }

    fn owner(&self) -> Option<&str> {
        Some(&self.shared.name)
    }
}
