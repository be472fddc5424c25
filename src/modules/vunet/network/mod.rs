//! The virtual network between stacks: switches, routers, links and captures.
//!
//! Each stack of a session is a virtual host with Ethernet interfaces. An interface is
//! a *party* at one end of a *link* (a virtual cable); the other end of every link is a
//! port of a *switch* ([`switch`]: an Ethernet learning switch). Routers
//! ([`router`]: a small built-in IPv4/IPv6 router) are parties too, with one link per
//! interface. The network is passive and single-threaded: a party hands a frame to
//! [`Network::send`], which switches it at once into the receive queues of the parties
//! it reaches (routers answer and forward inside the same call), and each party takes
//! its frames with [`Network::receive`]. [`Network::poll`] runs the routers' timers
//! (ARP / NDP retries) and flushes captures.
//!
//! Every link can be captured to a libpcap file ([`pcap`]): all the frames crossing it,
//! both ways, as seen from the link (what the party sends, what is delivered to it).

pub mod pcap;
mod router;
mod switch;

use std::collections::VecDeque;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use pcap::PcapWriter;
use router::Router;
use switch::Switch;

/// One Ethernet frame, without preamble or FCS.
pub type Frame = Vec<u8>;

/// A link: the cable between one party (a stack's interface) and a switch port.
///
/// Ids are only meaningful to the [`Network`] that issued them; given an id it did not
/// issue, a `Network` does nothing and answers "nothing" (no frames, zero counters,
/// empty names) rather than panicking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkId(pub usize);

/// A switch of the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SwitchId(pub usize);

/// Packet counters of a link, from its party's point of view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    /// Frames delivered to the party, and their bytes.
    pub rx_packets: u64,
    /// Bytes of the frames delivered to the party (Ethernet header included).
    pub rx_bytes: u64,
    /// Frames the party sent into the link, and their bytes.
    pub tx_packets: u64,
    /// Bytes of the frames the party sent into the link (Ethernet header included).
    pub tx_bytes: u64,
    /// Frames lost on the way to the party (its queue was full).
    pub dropped: u64,
}

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
    pub addresses: Vec<(IpAddr, u8)>,
    /// An extra capture file for this interface's link (see [`Network::attach`]).
    pub capture: Option<PathBuf>,
}

/// How many frames may wait in one party's receive queue; further frames for it are
/// dropped and counted in [`Counters::dropped`].
pub const RECEIVE_QUEUE_LIMIT: usize = 4096;

/// The whole virtual network of a session.
///
/// Build it with [`Network::add_switch`], [`Network::attach`] and
/// [`Network::add_router`]; then run it with [`Network::send`], [`Network::receive`]
/// and [`Network::poll`] (call `poll` by the deadline it returns, or
/// [`Network::next_deadline`] after a `send`).
pub struct Network {
    capture_dir: Option<PathBuf>,
    switches: Vec<Switch>,
    links: Vec<Link>,
    routers: Vec<RouterEntry>,
}

/// One link and what it knows of its traffic.
struct Link {
    name: String,
    switch: SwitchId,
    party: Party,
    counters: Counters,
    captures: Vec<PcapWriter>,
}

/// What sits at the party end of a link.
enum Party {
    /// A stack's interface, which takes its frames from this queue.
    Stack { inbox: VecDeque<Frame> },
    /// A router's port, which handles its frames as they arrive.
    Router { router: usize, port: usize },
}

/// A router with its name and the link of each of its ports.
struct RouterEntry {
    name: String,
    router: Router,
    links: Vec<LinkId>,
}

impl Link {
    /// Counts and captures a frame the party sends.
    fn record_sent(&mut self, frame: &[u8]) {
        self.counters.tx_packets += 1;
        self.counters.tx_bytes += frame.len() as u64;
        for capture in &mut self.captures {
            capture.write_frame(frame);
        }
    }

    /// Counts and captures a frame delivered to the party.
    fn record_delivered(&mut self, frame: &[u8]) {
        self.counters.rx_packets += 1;
        self.counters.rx_bytes += frame.len() as u64;
        for capture in &mut self.captures {
            capture.write_frame(frame);
        }
    }
}

impl Network {
    /// An empty network. With `capture_dir`, every link is captured into
    /// `capture_dir/<link name, '/' replaced by '-'>.pcap` (the directory is created
    /// when the first link is made).
    pub fn new(capture_dir: Option<PathBuf>) -> Self {
        Self { capture_dir, switches: Vec::new(), links: Vec::new(), routers: Vec::new() }
    }

    /// Adds a learning switch. Its name is what [`Network::switch_of`] reports; it
    /// should be unique.
    pub fn add_switch(&mut self, name: &str) -> SwitchId {
        self.switches.push(Switch::new(name));
        SwitchId(self.switches.len() - 1)
    }

    /// Plugs a party (a stack's interface) into a new port of `switch` and returns the
    /// link between them. `name` names the link (e.g. `lwip0/eth0`) and must be unique
    /// in the network.
    ///
    /// The link is captured into the capture directory's file (see [`Network::new`])
    /// and, if given, into `capture` too; when both are the same path it is written
    /// once. Fails if `switch` is unknown, the name is taken, or a capture file cannot
    /// be created.
    pub fn attach(
        &mut self,
        switch: SwitchId,
        name: &str,
        capture: Option<&Path>,
    ) -> io::Result<LinkId> {
        self.check_new_link(switch, name)?;
        let captures = self.open_captures(name, capture)?;
        Ok(self.add_link(switch, name, Party::Stack { inbox: VecDeque::new() }, captures))
    }

    /// Adds a router with one port per interface, each plugged into its switch by a
    /// link named `<router name>/<switch name>` (so captured as
    /// `<router name>-<switch name>.pcap`); a second interface on the same switch gets
    /// `<router name>/<switch name>-<interface index>`. Nothing is added on error: an
    /// unknown switch, a taken link name, a bad address or MAC, a capture file that
    /// cannot be created.
    pub fn add_router(&mut self, name: &str, interfaces: Vec<RouterInterface>) -> io::Result<()> {
        let router = Router::new(&interfaces)?;
        let mut planned: Vec<(SwitchId, String, Vec<PcapWriter>)> = Vec::new();
        for (index, interface) in interfaces.iter().enumerate() {
            let switch_name = self.switch_name(interface.switch);
            let mut link_name = format!("{name}/{switch_name}");
            if planned.iter().any(|(_, planned_name, _)| *planned_name == link_name) {
                link_name = format!("{link_name}-{index}");
            }
            self.check_new_link(interface.switch, &link_name)?;
            if planned.iter().any(|(_, planned_name, _)| *planned_name == link_name) {
                return Err(link_name_taken(&link_name));
            }
            let captures = self.open_captures(&link_name, interface.capture.as_deref())?;
            planned.push((interface.switch, link_name, captures));
        }
        let router_index = self.routers.len();
        let links = planned
            .into_iter()
            .enumerate()
            .map(|(port, (switch, link_name, captures))| {
                let party = Party::Router { router: router_index, port };
                self.add_link(switch, &link_name, party, captures)
            })
            .collect();
        self.routers.push(RouterEntry { name: name.to_owned(), router, links });
        Ok(())
    }

    /// The party at `link` sends a frame: it is counted, captured and switched to
    /// whoever it reaches. Routers it reaches handle it before this returns, and what
    /// they send is switched likewise; frames are delivered in the order they are
    /// produced. A router may start resolving a neighbour here, which sets a timer:
    /// see [`Network::next_deadline`].
    pub fn send(&mut self, link: LinkId, frame: Frame, now: Instant) {
        let Some(sender) = self.links.get_mut(link.0) else { return };
        sender.record_sent(&frame);
        self.switch_frames(VecDeque::from([(link, frame)]), now);
    }

    /// Takes the next frame waiting for the party at `link`.
    pub fn receive(&mut self, link: LinkId) -> Option<Frame> {
        match &mut self.links.get_mut(link.0)?.party {
            Party::Stack { inbox } => inbox.pop_front(),
            Party::Router { .. } => None,
        }
    }

    /// Whether a frame is waiting for the party at `link`.
    pub fn has_frames(&self, link: LinkId) -> bool {
        self.queued_frames(link) > 0
    }

    /// How many frames are waiting for the party at `link`.
    pub fn queued_frames(&self, link: LinkId) -> usize {
        match self.links.get(link.0).map(|link| &link.party) {
            Some(Party::Stack { inbox }) => inbox.len(),
            _ => 0,
        }
    }

    /// Runs the routers' timers (ARP / NDP retries, giving up on silent neighbours),
    /// switches what they send, and flushes the captures. Returns when it next has
    /// timer work to do, if ever.
    pub fn poll(&mut self, now: Instant) -> Option<Instant> {
        let mut work = VecDeque::new();
        for entry in &mut self.routers {
            let mut emitted = Vec::new();
            entry.router.poll(now, &mut emitted);
            for (port, frame) in emitted {
                let link = entry.links[port];
                self.links[link.0].record_sent(&frame);
                work.push_back((link, frame));
            }
        }
        self.switch_frames(work, now);
        for link in &mut self.links {
            for capture in &mut link.captures {
                capture.flush();
            }
        }
        self.next_deadline()
    }

    /// When [`Network::poll`] next has timer work to do. A [`Network::send`] can make
    /// this earlier (a router starts resolving a neighbour).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.routers.iter().filter_map(|entry| entry.router.next_deadline()).min()
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
        match self.links.get(link.0)?.party {
            Party::Router { router, .. } => Some(&self.routers[router].name),
            Party::Stack { .. } => None,
        }
    }

    /// The link with this name, if any.
    pub fn find_link(&self, name: &str) -> Option<LinkId> {
        self.links.iter().position(|link| link.name == name).map(LinkId)
    }

    /// Every link, stacks' and routers', in creation order.
    pub fn links(&self) -> impl Iterator<Item = LinkId> + '_ {
        (0..self.links.len()).map(LinkId)
    }

    /// Every switch, in creation order.
    pub fn switches(&self) -> impl Iterator<Item = SwitchId> + '_ {
        (0..self.switches.len()).map(SwitchId)
    }

    /// The capture files of `link` (empty when it is not captured).
    pub fn capture_paths(&self, link: LinkId) -> Vec<&Path> {
        self.links
            .get(link.0)
            .map(|link| link.captures.iter().map(PcapWriter::path).collect())
            .unwrap_or_default()
    }

    /// Checks that a link named `name` may be plugged into `switch`.
    fn check_new_link(&self, switch: SwitchId, name: &str) -> io::Result<()> {
        if switch.0 >= self.switches.len() {
            let message = format!("link {name}: no switch #{}", switch.0);
            return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
        }
        if self.find_link(name).is_some() {
            return Err(link_name_taken(name));
        }
        Ok(())
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

    /// Creates a link (all checks done) and plugs it into its switch.
    fn add_link(
        &mut self,
        switch: SwitchId,
        name: &str,
        party: Party,
        captures: Vec<PcapWriter>,
    ) -> LinkId {
        let link = LinkId(self.links.len());
        self.links.push(Link {
            name: name.to_owned(),
            switch,
            party,
            counters: Counters::default(),
            captures,
        });
        self.switches[switch.0].add_port(link);
        link
    }

    /// Switches frames that entered the network (each from the party at its link)
    /// until none is left: frames for stacks are queued, frames for routers are handled
    /// at once and what the routers send joins the work.
    fn switch_frames(&mut self, mut work: VecDeque<(LinkId, Frame)>, now: Instant) {
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

    /// Hands a frame to the party at `link`: queues it for a stack (unless the queue is
    /// full), or has the router handle it and queues what the router sends as new work.
    fn deliver(
        &mut self,
        link: LinkId,
        frame: Frame,
        now: Instant,
        work: &mut VecDeque<(LinkId, Frame)>,
    ) {
        let receiver = &mut self.links[link.0];
        if let Party::Stack { inbox } = &receiver.party
            && inbox.len() >= RECEIVE_QUEUE_LIMIT
        {
            receiver.counters.dropped += 1;
            return;
        }
        receiver.record_delivered(&frame);
        match &mut receiver.party {
            Party::Stack { inbox } => inbox.push_back(frame),
            &mut Party::Router { router, port } => {
                let entry = &mut self.routers[router];
                let mut emitted = Vec::new();
                entry.router.handle_frame(port, &frame, now, &mut emitted);
                for (port, frame) in emitted {
                    let link = entry.links[port];
                    self.links[link.0].record_sent(&frame);
                    work.push_back((link, frame));
                }
            }
        }
    }
}

/// The error for a link name already in use.
fn link_name_taken(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::AlreadyExists, format!("link {name} already exists"))
}

/// Names the file an I/O error is about.
fn with_path(error: io::Error, path: &Path) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests;
