//! A router's interfaces as plugs: one [`RouterPort`] per interface, each on its own
//! link, all sharing one [`Router`].

use crate::modules::vunet::cidr::Cidr;
use std::cell::RefCell;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

use super::router::Router;
use super::{Frame, LinkId, Network, Outbox, Plug, PreparedLink, SwitchId};

/// One interface of a router.
#[derive(Clone, Debug)]
pub struct RouterInterface {
    /// The switch this interface is plugged into.
    pub switch: SwitchId,
    /// Its MAC address, in transmission order (`[0x02, 0, 0, 0, 0, 1]` is
    /// `02:00:00:00:00:01`). Must be unicast.
    pub mac: [u8; 6],
    /// Its addresses with their prefix lengths, which also define the connected subnets
    /// it routes to. An EUI-64 `fe80::/64` link-local address is always added.
    pub addresses: Vec<Cidr>,
    /// An extra capture file for this interface's link (see [`Network::plug`]).
    pub capture: Option<PathBuf>,
}

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

impl Network {
    /// Adds a router with one port per interface, each plugged into its switch by a
    /// link named `<router name>/<switch name>` (so captured as
    /// `<router name>-<switch name>.pcap`); a second interface on the same switch gets
    /// `<router name>/<switch name>-<interface index>`. Nothing is added on error: an
    /// unknown switch, a taken link name, a bad address or MAC, a capture file that
    /// cannot be created.
    pub fn add_router(&mut self, name: &str, interfaces: Vec<RouterInterface>) -> io::Result<()> {
        let router = Router::new(&interfaces)?;
        let mut prepared: Vec<PreparedLink> = Vec::new();
        for (index, interface) in interfaces.iter().enumerate() {
            let mut link_name = format!("{name}/{}", self.switch_name(interface.switch));
            if prepared.iter().any(|link| link.name == link_name) {
                link_name = format!("{link_name}-{index}");
            }
            let capture = interface.capture.as_deref();
            prepared.push(self.prepare_link(interface.switch, &link_name, capture, &prepared)?);
        }
        let first_link = self.links.len();
        let shared = Rc::new(SharedRouter {
            name: name.to_owned(),
            links: (first_link..first_link + prepared.len()).map(LinkId).collect(),
            router: RefCell::new(router),
        });
        for (port, link) in prepared.into_iter().enumerate() {
            let plug = RouterPort { shared: Rc::clone(&shared), port };
            let added = self.connect(link, Box::new(plug));
            debug_assert_eq!(added, shared.links[port]);
        }
        Ok(())
    }
}
