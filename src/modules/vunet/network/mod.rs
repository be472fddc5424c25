//! The virtual network between stacks: switches, routers, links and captures.
//!
//! (API stub: bodies are being written.)

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One Ethernet frame, without preamble or FCS.
pub type Frame = Vec<u8>;

/// A link: the cable between one party (a stack's interface) and a switch port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkId(pub usize);

/// A switch of the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SwitchId(pub usize);

/// Packet counters of a link, from its party's point of view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Frames delivered to the party, and their bytes.
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Frames the party sent into the link, and their bytes.
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Frames lost on the way to the party (its queue was full).
    pub dropped: u64,
}

/// One interface of a router.
#[derive(Clone, Debug)]
pub struct RouterInterface {
    pub switch: SwitchId,
    pub mac: [u8; 6],
    pub addresses: Vec<(IpAddr, u8)>,
    pub capture: Option<PathBuf>,
}

/// The whole virtual network of a session.
pub struct Network {}

impl Network {
    pub fn new(capture_dir: Option<PathBuf>) -> Self {
        let _ = capture_dir;
        Self {}
    }
    pub fn add_switch(&mut self, name: &str) -> SwitchId {
        let _ = name;
        todo!()
    }
    pub fn attach(&mut self, switch: SwitchId, name: &str, capture: Option<&Path>) -> io::Result<LinkId> {
        let _ = (switch, name, capture);
        todo!()
    }
    pub fn add_router(&mut self, name: &str, interfaces: Vec<RouterInterface>) -> io::Result<()> {
        let _ = (name, interfaces);
        todo!()
    }
    pub fn send(&mut self, link: LinkId, frame: Frame, now: Instant) {
        let _ = (link, frame, now);
        todo!()
    }
    pub fn receive(&mut self, link: LinkId) -> Option<Frame> {
        let _ = link;
        todo!()
    }
    pub fn has_frames(&self, link: LinkId) -> bool {
        let _ = link;
        todo!()
    }
    pub fn poll(&mut self, now: Instant) -> Option<Instant> {
        let _ = now;
        todo!()
    }
    pub fn counters(&self, link: LinkId) -> Counters {
        let _ = link;
        todo!()
    }
    pub fn switch_of(&self, link: LinkId) -> &str {
        let _ = link;
        todo!()
    }
}
