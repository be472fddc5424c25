//! The virtual network between stacks: switches, and whatever is plugged into them.
//!
//! Each stack of a session is a virtual host with Ethernet interfaces. The network is
//! made of *switches* (`switch.rs`: Ethernet learning switches) and *links* (virtual
//! cables), each from a switch port to a [`Plug`] at its far end. A switch forwards
//! frames between its links and knows nothing of what is plugged in; the network
//! drives every plug through that one trait (`plug.rs`). Today's kinds:
//!
//! - a stack's interface (`stack_interface.rs`) queues the frames delivered to it until
//!   the stack takes them with [`Network::receive`]; the stack sends with
//!   [`Network::send`];
//! - a router's port (`router_port.rs`: one per interface of the small built-in
//!   IPv4/IPv6 router of `router.rs`) handles each frame as it arrives and answers it
//!   or forwards it out of another port; the router's ARP / NDP retries are its timers;
//! - a capture (`capture.rs`, writing [`pcap`] files) is a tap wrapped around another
//!   plug: it records every frame crossing the link, both ways, as seen from the link
//!   (what is sent from the plug's side, what is delivered to it).
//!
//! The network is passive and single-threaded. A frame sent into a link is counted and
//! switched at once into the plugs it reaches; what they send in answer is switched
//! likewise inside the same call, so [`Network::send`] returns with every consequence
//! delivered. [`Network::poll`] runs the plugs' timers and flushes their output. The
//! network keeps each link's [`Counters`] itself, so every kind is counted alike.
//!
//! # Adding a kind of link
//!
//! A new kind (a NAT uplink to the host, a VDE plug, a VXLAN tunnel) is one new file
//! in this folder and one registration call. The file holds a type implementing
//! [`Plug`]: `deliver` takes the frames the switch sends to the link; `poll` and
//! `next_deadline` let it send frames of its own through the [`Outbox`] (what a socket
//! brought in, what a timer says). The call is [`Network::plug`], made where the
//! session's network is built, with the switch and a name for the link; the link's
//! capture files, counters and name checks come with it, and nothing else changes.
//! (A plug fed from a file descriptor will also need the session's event loop to
//! watch that descriptor and call [`Network::poll`]; the network has no hook for that
//! yet, only deadlines.)

mod capture;
pub mod fragment;
pub mod frames;
mod ip_port;
mod link;
pub mod neighbour;
pub mod path_mtu;
pub mod pcap;
mod plug;
mod refusal;
mod router;
mod router_port;
mod stack_interface;
mod switch;

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use capture::Capture;
pub use ip_port::{IpEndpoint, IpPort};
pub use link::{Counters, Frame, LinkId, SwitchId};
use pcap::PcapWriter;
pub use plug::{Outbox, Plug};
pub use refusal::tcp_reset_packet;
use router::Router;
pub use router::{RouterInterface, StaticRoute};
use router_port::RouterPort;
pub use stack_interface::RECEIVE_QUEUE_LIMIT;
use stack_interface::StackInterface;
use switch::Switch;

/// The whole virtual network of a session.
///
/// Build it with [`Network::add_switch`], then plug things in: [`Network::attach`]
/// (a stack's interface), [`Network::add_router`], or any [`Plug`] with
/// [`Network::plug`]. Run it with [`Network::send`], [`Network::receive`] and
/// [`Network::poll`] (call `poll` by the deadline it returns, or
/// [`Network::next_deadline`] after a `send`).
pub struct Network {
    capture_dir: Option<PathBuf>,
    switches: Vec<Switch>,
    links: Vec<Link>,
}

/// One link: its switch, the plug at its far end, and what it knows of its traffic.
struct Link {
    name: String,
    switch: SwitchId,
    plug: Box<dyn Plug>,
    counters: Counters,
}

/// A link checked and with its capture files open, not plugged in yet: what may fail
/// in making a link is done before anything is added.
struct PreparedLink {
    name: String,
    switch: SwitchId,
    captures: Vec<PcapWriter>,
}

/// Frames that entered the network, each with the link it came in by, waiting to be
/// switched.
type Work = VecDeque<(LinkId, Frame)>;

impl Network {
    /// An empty network. With `capture_dir`, every link is captured into
    /// `capture_dir/<link name, '/' replaced by '-'>.pcap` (the directory is created
    /// when the first link is made).
    pub fn new(capture_dir: Option<PathBuf>) -> Self {
        Self { capture_dir, switches: Vec::new(), links: Vec::new() }
    }

    /// Adds a learning switch. Its name is what [`Network::switch_of`] reports; it
    /// should be unique.
    pub fn add_switch(&mut self, name: &str) -> SwitchId {
        self.switches.push(Switch::new(name));
        SwitchId(self.switches.len() - 1)
    }

    /// Plugs `plug` into a new port of `switch` and returns the link between them.
    /// `name` names the link (e.g. `lwip0/eth0`) and must be unique in the network.
    ///
    /// The link is captured into the capture directory's file (see [`Network::new`])
    /// and, if given, into `capture` too; when both are the same path it is written
    /// once. Fails, adding nothing, if `switch` is unknown, the name is taken, or a
    /// capture file cannot be created.
    pub fn plug(
        &mut self,
        switch: SwitchId,
        name: &str,
        plug: Box<dyn Plug>,
        capture: Option<&Path>,
    ) -> io::Result<LinkId> {
        let link = self.prepare_link(switch, name, capture, &[])?;
        Ok(self.connect(link, plug))
    }

    /// Puts the plug at `link` inside another, made by `wrap` around it (a mirror
    /// of the link's frames, added once the link is in use). Does nothing for a
    /// link this network does not have.
    pub fn wrap(&mut self, link: LinkId, wrap: impl FnOnce(Box<dyn Plug>) -> Box<dyn Plug>) {
        let Some(link) = self.links.get_mut(link.0) else { return };
        let plug = std::mem::replace(&mut link.plug, Box::new(StackInterface::default()));
        link.plug = wrap(plug);
    }

    /// Whoever is at `link` sends a frame: it is counted, captured and switched to
    /// whoever it reaches. Plugs it reaches (routers) handle it before this returns,
    /// and what they send is switched likewise; frames are delivered in the order they
    /// are produced. A router may start resolving a neighbour here, which sets a
    /// timer: see [`Network::next_deadline`].
    pub fn send(&mut self, link: LinkId, frame: Frame, now: Instant) {
        if self.record_sent(link, &frame) {
            self.switch_frames(VecDeque::from([(link, frame)]), now);
        }
    }

    /// Takes the next frame waiting at `link` (a stack's interface).
    pub fn receive(&mut self, link: LinkId) -> Option<Frame> {
        self.links.get_mut(link.0)?.plug.take()
    }

    /// Whether a frame is waiting at `link`.
    pub fn has_frames(&self, link: LinkId) -> bool {
        self.queued_frames(link) > 0
    }

    /// How many frames are waiting at `link`.
    pub fn queued_frames(&self, link: LinkId) -> usize {
        self.links.get(link.0).map_or(0, |link| link.plug.queued())
    }

    /// Hands each of `fds`, which turned ready, to the plugs that watch it
    /// ([`Plug::watches`]), and switches what they send.
    pub fn ready(&mut self, fds: &[RawFd], now: Instant) {
        let mut work = Work::new();
        for &fd in fds {
            for index in 0..self.links.len() {
                if self.links[index].plug.watches(fd) {
                    let mut out = Outbox::new(LinkId(index));
                    self.links[index].plug.ready(fd, now, &mut out);
                    self.enter(out, &mut work);
                }
            }
        }
        self.switch_frames(work, now);
    }

    /// Whether a plug has work it could do at once (see [`Plug::busy`]).
    pub fn busy(&self) -> bool {
        self.links.iter().any(|link| link.plug.busy())
    }

    /// Runs the plugs' timers (a router's ARP / NDP retries, giving up on silent
    /// neighbours), switches what they send, and flushes the captures. Returns when it
    /// next has timer work to do, if ever.
    pub fn poll(&mut self, now: Instant) -> Option<Instant> {
        let mut work = Work::new();
        for index in 0..self.links.len() {
            let mut out = Outbox::new(LinkId(index));
            self.links[index].plug.poll(now, &mut out);
            self.enter(out, &mut work);
        }
        self.switch_frames(work, now);
        for link in &mut self.links {
            link.plug.flush();
        }
        self.next_deadline()
    }

    /// When [`Network::poll`] next has timer work to do. A [`Network::send`] can make
    /// this earlier (a router starts resolving a neighbour).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.links.iter().filter_map(|link| link.plug.next_deadline()).min()
    }

    /// The counters of `link`.
    pub fn counters(&self, link: LinkId) -> Counters {
        self.links.get(link.0).map(|link| link.counters).unwrap_or_default()
    }

    /// The name of the switch `link` is plugged into.
    pub fn switch_of(&self, link: LinkId) -> &str {
        self.links.get(link.0).map_or("", |link| self.switch_name(link.switch))
    }

    /// The name `link` was given (for a router port, `<router>/<switch>`).
    pub fn link_name(&self, link: LinkId) -> &str {
        self.links.get(link.0).map_or("", |link| &link.name)
    }

    /// The name of a switch.
    pub fn switch_name(&self, switch: SwitchId) -> &str {
        self.switches.get(switch.0).map_or("", |switch| &switch.name)
    }

    /// The name of the router whose port `link` is, or `None` for a stack's link.
    pub fn router_of(&self, link: LinkId) -> Option<&str> {
        self.links.get(link.0)?.plug.owner()
    }

    /// The link with this name, if any.
    pub fn find_link(&self, name: &str) -> Option<LinkId> {
        self.links.iter().position(|link| link.name == name).map(LinkId)
    }

    /// Every link, of every kind, in creation order.
    pub fn links(&self) -> impl Iterator<Item = LinkId> + '_ {
        (0..self.links.len()).map(LinkId)
    }

    /// Every switch, in creation order.
    pub fn switches(&self) -> impl Iterator<Item = SwitchId> + '_ {
        (0..self.switches.len()).map(SwitchId)
    }

    /// The capture files of `link` (empty when it is not captured).
    pub fn capture_paths(&self, link: LinkId) -> Vec<&Path> {
        self.links.get(link.0).map(|link| link.plug.capture_paths()).unwrap_or_default()
    }

    /// Checks that a link named `name` may be plugged into `switch` (the switch exists;
    /// the name is neither in use nor promised to one of `also_prepared`) and opens its
    /// capture files.
    fn prepare_link(
        &self,
        switch: SwitchId,
        name: &str,
        capture: Option<&Path>,
        also_prepared: &[PreparedLink],
    ) -> io::Result<PreparedLink> {
        if switch.0 >= self.switches.len() {
            let message = format!("link {name}: no switch #{}", switch.0);
            return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
        }
        let promised = also_prepared.iter().any(|link| link.name == name);
        if promised || self.find_link(name).is_some() {
            let message = format!("link {name} already exists");
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, message));
        }
        let captures = self.open_captures(name, capture)?;
        Ok(PreparedLink { name: name.to_owned(), switch, captures })
    }

    /// Opens the capture files of a new link: the capture directory's, and `explicit`.
    fn open_captures(
        &self,
        link_name: &str,
        explicit: Option<&Path>,
    ) -> io::Result<Vec<PcapWriter>> {
        let mut paths = Vec::new();
        if let Some(dir) = &self.capture_dir {
            std::fs::create_dir_all(dir).map_err(|error| with_path(error, dir))?;
            paths.push(dir.join(format!("{}.pcap", link_name.replace('/', "-"))));
        }
        if let Some(explicit) = explicit
            && !paths.iter().any(|path| path == explicit)
        {
            paths.push(explicit.to_path_buf());
        }
        paths
            .iter()
            .map(|path| PcapWriter::create(path).map_err(|error| with_path(error, path)))
            .collect()
    }

    /// Plugs `plug`, wrapped in its link's captures, into a new port of the prepared
    /// link's switch.
    fn connect(&mut self, prepared: PreparedLink, plug: Box<dyn Plug>) -> LinkId {
        let PreparedLink { name, switch, captures } = prepared;
        let plug = captures
            .into_iter()
            .fold(plug, |inner, writer| -> Box<dyn Plug> { Box::new(Capture::new(inner, writer)) });
        let link = LinkId(self.links.len());
        self.links.push(Link { name, switch, plug, counters: Counters::default() });
        self.switches[switch.0].add_port(link);
        link
    }

    /// Counts a frame sent into `link` from its plug's side and shows it to the plug.
    /// Returns false, doing nothing, for a link this network does not have.
    fn record_sent(&mut self, link: LinkId, frame: &[u8]) -> bool {
        let Some(sender) = self.links.get_mut(link.0) else { return false };
        sender.counters.tx_packets += 1;
        sender.counters.tx_bytes += frame.len() as u64;
        sender.plug.sent(frame);
        true
    }

    /// Records what a plug sent and adds it to the work.
    fn enter(&mut self, out: Outbox, work: &mut Work) {
        for (link, frame) in out.into_frames() {
            if self.record_sent(link, &frame) {
                work.push_back((link, frame));
            }
        }
    }

    /// Switches frames that entered the network until none is left: each is delivered
    /// to the plugs it reaches, and what they send in answer joins the work.
    fn switch_frames(&mut self, mut work: Work, now: Instant) {
        while let Some((ingress, mut frame)) = work.pop_front() {
            let switch = self.links[ingress.0].switch;
            let egress = self.switches[switch.0].forward(ingress, &frame);
            for (index, &link) in egress.iter().enumerate() {
                let copy = if index + 1 == egress.len() {
                    std::mem::take(&mut frame)
                } else {
                    frame.clone()
                };
                self.deliver(link, copy, now, &mut work);
            }
        }
    }

    /// Hands a frame to the plug at `link`, unless it refuses it (counted as dropped);
    /// what the plug sends in answer joins the work.
    fn deliver(&mut self, link: LinkId, frame: Frame, now: Instant, work: &mut Work) {
        let receiver = &mut self.links[link.0];
        if !receiver.plug.accepts() {
            receiver.counters.dropped += 1;
            return;
        }
        receiver.counters.rx_packets += 1;
        receiver.counters.rx_bytes += frame.len() as u64;
        let mut out = Outbox::new(link);
        receiver.plug.deliver(frame, now, &mut out);
        self.enter(out, work);
    }
}

/// Names the file an I/O error is about.
fn with_path(error: io::Error, path: &Path) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

impl Network {
    /// Plugs a stack's interface into a new port of `switch` and returns the link
    /// between them. `name` names the link (e.g. `lwip0/eth0`) and must be unique in
    /// the network.
    ///
    /// The link is captured as [`Network::plug`] says. Fails if `switch` is unknown,
    /// the name is taken, or a capture file cannot be created.
    pub fn attach(
        &mut self,
        switch: SwitchId,
        name: &str,
        capture: Option<&Path>,
    ) -> io::Result<LinkId> {
        self.plug(switch, name, Box::new(StackInterface::default()), capture)
    }
}

impl Network {
    /// Adds a router with one port per interface and `routes` besides its
    /// connected subnets, each interface plugged into its switch by a
    /// link named `<router name>/<switch name>` (so captured as
    /// `<router name>-<switch name>.pcap`); a second interface on the same switch gets
    /// `<router name>/<switch name>-<interface index>`. Nothing is added on error: an
    /// unknown switch, a taken link name, a bad address or MAC, a capture file that
    /// cannot be created.
    pub fn add_router(
        &mut self,
        name: &str,
        interfaces: Vec<RouterInterface>,
        routes: Vec<StaticRoute>,
    ) -> io::Result<()> {
        let router = Router::new(&interfaces, routes)?;
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
        let links = (first_link..first_link + prepared.len()).map(LinkId).collect();
        let ports = RouterPort::one_per_link(name, links, router);
        for (link, plug) in prepared.into_iter().zip(ports) {
            self.connect(link, Box::new(plug));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
