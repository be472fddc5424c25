//! [`Stack`]: what one mounted stack instance provides to the `vunet` module, and
//! what the module lends it (its sockets' [`Claims`], the time of its next round).
//!
//! Every kind of stack (see [`super::kind`]) mounts instances of this trait; vunet
//! routes calls to them and knows nothing else of them.

use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::Instant;

use nix::errno::Errno;
use nix::unistd::Pid;

use super::network::Network;
use super::status;
use crate::fdtable::{FdTable, FdTarget, SocketId};
use crate::modules::Disposition;
use crate::tracer::SyscallStop;

/// An index into the session's mounted stacks.
pub type StackId = usize;

/// The most stacks one session mounts: a stack's index is one of 64 letters in the
/// names kinds give their own objects (see [`Mount::index`](super::kind::Mount)).
pub const MAX_STACKS: usize = 64;

/// One mounted stack instance: what a vunet submodule provides.
pub trait Stack {
    /// The instance's name (`--stack NAME`).
    fn name(&self) -> &Rc<str>;
    /// The submodule's kind (`kind = ...` in `modules.toml`).
    fn kind(&self) -> &'static str;
    /// `socket` or `socketpair` by a process on this stack (`AF_UNIX` never comes
    /// here: it is not trapped).
    fn create(&mut self, stop: &mut SyscallStop) -> Disposition;
    /// A call on `socket`, one of this stack's own. Stacks that own none (they
    /// leave every socket to the kernel) keep the default.
    fn on_socket(&mut self, socket: SocketId, stop: &mut SyscallStop) -> Disposition {
        let _ = (socket, stop);
        Disposition::Kernel
    }
    /// Completes a call answered with [`Disposition::KernelThenFinish`]; sockets the
    /// call created are claimed through `claims`.
    fn finish(&mut self, stop: &mut SyscallStop, claims: &mut Claims) {
        let _ = (stop, claims);
    }
    /// Forgets sockets whose last reference is gone.
    fn forget(&mut self, sockets: &[SocketId]) {
        let _ = sockets;
    }
    /// A thread ended, perhaps inside a call: drop what was kept for its exit.
    fn thread_ended(&mut self, tid: Pid) {
        let _ = tid;
    }
    /// The stack's own addresses, as `netvm stacks` lists them (loopback first);
    /// empty for a stack with none of its own.
    fn addresses(&self) -> Vec<String> {
        Vec::new()
    }
    /// Whether `sockaddr`, an address a program hands the kernel on a socket no
    /// stack owns, names the stack's own plumbing (say, the `AF_UNIX` name of a
    /// socket carrying a virtual one): such calls are refused, or a program could
    /// reach past the stack.
    fn reserves(&self, sockaddr: &[u8]) -> bool {
        let _ = sockaddr;
        false
    }
    /// One round of the stack's own network work (packets in and out); see
    /// [`Activity`].
    /// `ready` holds the stack's own event sources that turned readable since
    /// the last round (see [`Vunet`](super::Vunet)'s event loop).
    fn service(&mut self, network: &mut Network, now: Instant, ready: &[RawFd]) -> Activity {
        let _ = (network, now, ready);
        Activity::default()
    }
    /// Fills in what `netvm status` shows of the stack beyond its name, kind and
    /// processes: interfaces, routes, sockets.
    fn status(&self, network: &Network, status: &mut status::StackStatus) {
        let _ = (network, status);
    }
}

/// What one round of a stack's network work did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Activity {
    /// Something moved: run another round, others may have work now.
    pub busy: bool,
    /// When the stack needs a round again if nothing else happens.
    pub deadline: Option<Instant>,
}

impl Activity {
    /// Both rounds' work together.
    pub fn and(self, other: Activity) -> Activity {
        Activity {
            busy: self.busy || other.busy,
            deadline: earliest(self.deadline, other.deadline),
        }
    }
}

/// The earlier of two deadlines, either of which may be absent.
pub fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Lets a stack record the kernel sockets that are its own.
pub struct Claims<'a> {
    pub(super) table: &'a mut FdTable<StackId>,
    pub(super) stack: StackId,
}

impl Claims<'_> {
    /// Records `socket` as this stack's.
    pub fn claim(&mut self, socket: SocketId) {
        self.table.insert(socket, self.stack);
    }

    /// What fd `fd` of thread `tid` refers to (a socket the call just made, say).
    pub fn resolve(&mut self, tid: Pid, fd: i32) -> Result<FdTarget, Errno> {
        self.table.resolve(tid, fd)
    }
}

/// A session that cannot be set up: a stack not mounted, a capture file that cannot
/// be written.
#[derive(Debug, PartialEq, Eq)]
pub struct SetupError(pub String);

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SetupError {}
