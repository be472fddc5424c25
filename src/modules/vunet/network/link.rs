//! The names of a network's parts, shared by everything in it: frames, links,
//! switches, and a link's counters.

/// One Ethernet frame, without preamble or FCS.
pub type Frame = Vec<u8>;

/// A link: the cable between a switch port and the plug at its far end.
///
/// Ids are only meaningful to the [`Network`] that issued them; given an id it did not
/// issue, a `Network` does nothing and answers "nothing" (no frames, zero counters,
/// empty names) rather than panicking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkId(pub usize);

/// A switch of the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SwitchId(pub usize);

/// Packet counters of a link, from its plug's point of view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    /// Frames delivered to the plug, and their bytes.
    pub rx_packets: u64,
    /// Bytes of the frames delivered to the plug (Ethernet header included).
    pub rx_bytes: u64,
    /// Frames sent into the link from the plug's side, and their bytes.
    pub tx_packets: u64,
    /// Bytes of the frames sent into the link (Ethernet header included).
    pub tx_bytes: u64,
    /// Frames lost on the way to the plug (it refused them: a full queue).
    pub dropped: u64,
}
