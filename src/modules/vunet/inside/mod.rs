//! The network as seen from inside a stack: what `ip`, `ifconfig`, `getifaddrs` and
//! `if_nameindex` ask the kernel, answered by the stack a program runs on.
//!
//! A kind whose stacks are hosts on the virtual network describes itself as an
//! [`Inside`] snapshot ([`Stack::inside`](super::stack::Stack::inside)): its links,
//! its addresses and its configured routes. From that, [`rtnetlink`] answers
//! `NETLINK_ROUTE` requests as Linux would, deriving what the kernel derives
//! itself (the routes to connected subnets, the local table); [`socket`] gives a
//! program's `AF_NETLINK` socket its carrier and its calls their Linux answers.
//!
//! A program may also change its stack (`ip addr add`, `ip link set down`,
//! `ifconfig eth0 10.0.0.9`): requests become a typed [`Change`], which
//! [`Inside::apply`] judges and carries out with the kernel's rules and errnos
//! ([`change`]), on the snapshot a kind keeps as its configuration; the kind then
//! makes its network follow ([`Host`]).

pub mod change;
pub mod ioctl;
mod netlink;
pub mod rtnetlink;
pub mod sock_diag;
pub mod socket;
mod view;

use self::change::{Change, Event};
#[cfg(test)]
pub(crate) use self::view::fixtures;
pub use self::view::{
    AddressView, Errno, IPV6_DEFAULT_METRIC, Inside, LinkKind, LinkView, NeighbourView, RouteView,
    Scope,
};

/// A stack as its programs reach it from inside: what it shows, and changes to it.
pub trait Host {
    /// What the stack shows now.
    fn view(&self) -> Inside;

    /// Carries out `change` (judged as Linux judges it), and what it changed.
    fn change(&mut self, change: &Change) -> Result<Vec<Event>, Errno>;

    /// The stack's sockets, as `ss` lists them (see [`sock_diag`]).
    fn sockets(&mut self) -> Vec<sock_diag::SocketView>;
}

/// A bare snapshot as a host: what tests of the answering code change.
impl Host for Inside {
    fn view(&self) -> Inside {
        self.clone()
    }

    fn change(&mut self, change: &Change) -> Result<Vec<Event>, Errno> {
        self.apply(change)
    }

    fn sockets(&mut self) -> Vec<sock_diag::SocketView> {
        Vec::new()
    }
}
