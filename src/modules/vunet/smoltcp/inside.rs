//! What a smoltcp stack shows of itself to programs that ask (`ip`, `getifaddrs`),
//! and the changes they make to it from inside (`ip addr add`, `ifconfig`).

use super::stack::SmoltcpStack;
use crate::modules::vunet::inside::change::{Change, Event};
use crate::modules::vunet::inside::{Inside, NeighbourView};
use crate::modules::vunet::network::Network;

impl SmoltcpStack {
    /// The stack as its programs see it (see [`Inside`]): its configuration now,
    /// with each plugged link's counters and the neighbours its interfaces
    /// learnt (after those programs added, which they override).
    pub(super) fn inside_view(&self, network: &Network) -> Inside {
        let mut inside = self.host.view().clone();
        if let Some(net) = &self.net {
            for learnt in net.neighbours(std::time::Instant::now()) {
                let added = |n: &NeighbourView| n.index == learnt.index && n.ip == learnt.ip;
                if !inside.neighbours.iter().any(added) {
                    inside.neighbours.push(learnt);
                }
            }
        }
        for (position, plan) in self.host.interfaces().iter().enumerate() {
            let Some((link, _)) = &plan.link else { continue };
            let index = position as u32 + 2;
            if let Some(view) = inside.links.iter_mut().find(|view| view.index == index) {
                view.counters = network.counters(*link);
            }
        }
        inside
    }

    /// Carries out `change` on the configuration, and makes the network side
    /// follow it at once: addresses answer, a link down passes nothing, routes
    /// carry traffic.
    pub(super) fn change_inside(&mut self, change: &Change) -> Result<Vec<Event>, i32> {
        let events = match (self.host.apply(change), change) {
            // An entry the stack learnt itself, not one a program added.
            (Err(libc::ENOENT), &Change::DeleteNeighbour { index, ip }) => {
                let now = std::time::Instant::now();
                let forgotten = self.net.as_mut().and_then(|net| net.forget_neighbour(index, ip, now));
                vec![Event::DeletedNeighbour(forgotten.ok_or(libc::ENOENT)?)]
            }
            (result, _) => result?,
        };
        if let Some(net) = self.net.as_mut() {
            net.configure(self.host.view());
        }
        Ok(events)
    }
}
