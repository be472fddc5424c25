//! An Ethernet learning switch: the shared segment that joins the links plugged into it.
//!
//! It behaves like a plain unmanaged switch: it learns which port each source MAC
//! address sits behind, sends unicast frames to the learned port only, and floods
//! broadcast, multicast and not-yet-learned unicast frames to every other port. A frame
//! never goes back out of the port it came in on. Learned addresses do not age out; a
//! MAC address seen on another port simply moves there.

use std::collections::HashMap;

use super::link::LinkId;

/// Length of an Ethernet header: destination, source, EtherType.
const ETHERNET_HEADER_LEN: usize = 14;

/// One switch: its ports (the links plugged into it) and what it has learned.
pub(super) struct Switch {
    /// The name given in [`Network::add_switch`](super::Network::add_switch).
    pub(super) name: String,
    ports: Vec<LinkId>,
    port_of_mac: HashMap<[u8; 6], LinkId>,
}

impl Switch {
    /// A switch with no ports yet.
    pub(super) fn new(name: &str) -> Self {
        Self { name: name.to_owned(), ports: Vec::new(), port_of_mac: HashMap::new() }
    }

    /// Plugs a link into a new port.
    pub(super) fn add_port(&mut self, link: LinkId) {
        self.ports.push(link);
    }

    /// Learns where the frame's sender is and returns the ports the frame must leave by,
    /// in port order. A frame too short to carry an Ethernet header goes nowhere.
    pub(super) fn forward(&mut self, ingress: LinkId, frame: &[u8]) -> Vec<LinkId> {
        if frame.len() < ETHERNET_HEADER_LEN {
            return Vec::new();
        }
        let mut destination = [0u8; 6];
        destination.copy_from_slice(&frame[0..6]);
        let mut source = [0u8; 6];
        source.copy_from_slice(&frame[6..12]);

        if is_unicast(&source) {
            self.port_of_mac.insert(source, ingress);
        }
        if is_unicast(&destination)
            && let Some(&port) = self.port_of_mac.get(&destination)
        {
            return if port == ingress { Vec::new() } else { vec![port] };
        }
        self.ports.iter().copied().filter(|&port| port != ingress).collect()
    }
}

/// Whether a MAC address names one station: not a group address (which includes
/// broadcast) and not all zeros.
fn is_unicast(mac: &[u8; 6]) -> bool {
    mac[0] & 0x01 == 0 && *mac != [0; 6]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(destination: [u8; 6], source: [u8; 6]) -> Vec<u8> {
        let mut frame = Vec::new();
        frame.extend_from_slice(&destination);
        frame.extend_from_slice(&source);
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&[0; 46]);
        frame
    }

    const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb];
    const C: [u8; 6] = [0x02, 0, 0, 0, 0, 0xc];

    fn three_port_switch() -> Switch {
        let mut switch = Switch::new("sw0");
        for port in 0..3 {
            switch.add_port(LinkId(port));
        }
        switch
    }

    #[test]
    fn floods_unknown_then_sends_learned_unicast_to_one_port() {
        let mut switch = three_port_switch();
        // B is unknown: flooded everywhere but the ingress port.
        assert_eq!(switch.forward(LinkId(0), &frame(B, A)), vec![LinkId(1), LinkId(2)]);
        // A was learned on port 0: B's answer goes there only.
        assert_eq!(switch.forward(LinkId(1), &frame(A, B)), vec![LinkId(0)]);
        // Both are known now.
        assert_eq!(switch.forward(LinkId(0), &frame(B, A)), vec![LinkId(1)]);
        // C is still unknown.
        assert_eq!(switch.forward(LinkId(1), &frame(C, B)), vec![LinkId(0), LinkId(2)]);
    }

    #[test]
    fn floods_broadcast_and_multicast_never_back_to_ingress() {
        let mut switch = three_port_switch();
        switch.forward(LinkId(0), &frame(B, A));
        assert_eq!(switch.forward(LinkId(1), &frame([0xff; 6], B)), vec![LinkId(0), LinkId(2)]);
        let ipv6_multicast = [0x33, 0x33, 0xff, 0, 0, 1];
        assert_eq!(
            switch.forward(LinkId(2), &frame(ipv6_multicast, C)),
            vec![LinkId(0), LinkId(1)]
        );
        // A destination learned on the ingress port itself goes nowhere.
        assert_eq!(switch.forward(LinkId(0), &frame(A, A)), Vec::<LinkId>::new());
        // Multicast sources are never learned.
        switch.forward(LinkId(2), &frame(B, [0x01, 0, 0, 0, 0, 1]));
        assert_eq!(switch.forward(LinkId(1), &frame([0x01, 0, 0, 0, 0, 1], B)).len(), 2);
    }

    #[test]
    fn a_moved_station_is_relearned_and_runts_are_dropped() {
        let mut switch = three_port_switch();
        switch.forward(LinkId(0), &frame(B, A));
        switch.forward(LinkId(2), &frame(B, A));
        assert_eq!(switch.forward(LinkId(1), &frame(A, B)), vec![LinkId(2)]);
        assert!(switch.forward(LinkId(0), &[0xff; 13]).is_empty());
    }
}
