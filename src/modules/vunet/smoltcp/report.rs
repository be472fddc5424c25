//! What `netvm status` shows of a `smoltcp` stack: its interfaces with their
//! counters, its routes, and its sockets as `ss` lists them.

use std::net::SocketAddr;

use super::inet::Family;
use super::ports::Proto;
use super::stack::SmoltcpStack;
use super::table::VSocket;
use crate::fdtable::SocketId;
use crate::modules::vunet::network::Network;
use crate::modules::vunet::status::{InterfaceStatus, RouteStatus, SocketStatus, StackStatus};

impl SmoltcpStack {
    /// Fills in `status` (see `Stack::status`).
    pub(super) fn fill_status(&self, network: &Network, status: &mut StackStatus) {
        status.interfaces.push(InterfaceStatus {
            name: "lo".into(),
            mtu: Some(65536),
            addresses: vec!["127.0.0.1/8".into(), "::1/128".into()],
            ..Default::default()
        });
        if self.host.interfaces().is_empty() && !self.host.addresses().is_empty() {
            status.interfaces.push(InterfaceStatus {
                name: "eth0".into(),
                addresses: self.host.addresses().iter().map(ToString::to_string).collect(),
                ..Default::default()
            });
        }
        let view = self.host.view();
        for (position, plan) in self.host.interfaces().iter().enumerate() {
            let Ok(link) = view.link(position as u32 + 2) else { continue };
            let counters = plan.link.as_ref().map(|(link, _)| network.counters(*link));
            let mac = link.mac.map(|b| format!("{b:02x}")).join(":");
            let addresses = view.addresses.iter().filter(|a| a.index == link.index);
            status.interfaces.push(InterfaceStatus {
                name: link.name.clone(),
                mac: Some(mac),
                mtu: Some(link.mtu as usize),
                switch: plan.link.as_ref().map(|(_, switch)| switch.clone()),
                addresses: addresses.map(|a| a.address.to_string()).collect(),
                counters,
                up: Some(link.up),
            });
        }
        for route in &view.routes {
            let to = match route.destination.prefix {
                0 => "default".to_string(),
                _ => route.destination.to_string(),
            };
            let interface = view.link(route.index).ok().map(|link| link.name.clone());
            status.routes.push(RouteStatus {
                to,
                via: route.gateway.map(|via| via.to_string()),
                interface,
            });
        }
        status.udp = Some(self.udp_counters);
        let mut sockets: Vec<(SocketId, &VSocket)> =
            self.table.iter().filter(|(_, s)| !s.stand_in).collect();
        sockets.sort_by_key(|(id, _)| id.0);
        for (id, socket) in sockets {
            status.sockets.push(SocketStatus {
                proto: match socket.proto {
                    Proto::Tcp => "tcp",
                    Proto::Udp => "udp",
                    Proto::Icmp => "icmp",
                    Proto::Raw => "raw",
                }
                .into(),
                state: self.state_name(id, socket).into(),
                local: ss_address(socket.local, socket.family),
                peer: ss_address(socket.peer, socket.family),
                pids: Vec::new(),
                inode: id.0,
            });
        }
    }

    /// The socket's state as `ss` names it.
    fn state_name(&self, id: SocketId, socket: &VSocket) -> &'static str {
        use crate::modules::vunet::inside::sock_diag::state;
        match (socket.proto, self.linux_state(id, socket, false)) {
            (_, state::LISTEN) => "LISTEN",
            (_, state::SYN_SENT) => "SYN-SENT",
            (Proto::Tcp, state::CLOSE) => "CLOSE",
            (_, state::CLOSE) => "UNCONN",
            (_, state::FIN_WAIT2) => "FIN-WAIT-2",
            _ => "ESTAB",
        }
    }
}

/// An address as `ss` prints it: `10.0.0.2:80`, `[::]:80`, `*:*` for none.
fn ss_address(addr: Option<SocketAddr>, family: Family) -> String {
    match addr {
        None => match family {
            Family::V4 => "0.0.0.0:*".into(),
            Family::V6 => "[::]:*".into(),
        },
        Some(SocketAddr::V4(a)) => a.to_string(),
        Some(SocketAddr::V6(a)) => format!("[{}]:{}", a.ip(), a.port()),
    }
}
