//! [`Stack`]: what one mounted stack instance provides to the `vunet` module, and
//! what the module lends it (its sockets' [`Claims`], the time of its next round).
//!
//! Every kind of stack (see [`super::kind`]) mounts instances of this trait; vunet
//! routes calls to them and knows nothing else of them.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::hash::Hash;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
use nix::unistd::Pid;

use super::inside::Inside;
use super::inside::change::{Change, Event};
use super::inside::sock_diag::SocketView;
use super::network::Network;
use super::status;
use crate::fdtable::{FdTable, FdTarget, SocketId};
use crate::modules::{Disposition, Handled};
use crate::syscall::{Socket, Syscall};
use crate::tracer::SyscallStop;

/// An index into the session's mounted stacks.
pub type StackId = usize;

/// Who answers the calls on a virtual socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// The stack that made it, through its kind.
    Stack(StackId),
    /// vunet's netlink service, from what that stack shows of itself (see
    /// [`super::inside`]).
    Netlink(StackId),
}

/// The most stacks one session mounts: a stack's index is two of 64 letters in
/// the names kinds give their own objects (see [`Mount::index`](super::kind::Mount)).
pub const MAX_STACKS: usize = 4096;

/// One mounted stack instance: what a vunet submodule provides.
pub trait Stack {
    /// The instance's name (`--stack NAME`).
    fn name(&self) -> &Rc<str>;
    /// The submodule's kind (`kind = ...` in `modules.toml`).
    fn kind(&self) -> &'static str;
    /// `socket` or `socketpair` by a process on this stack (`AF_UNIX` never comes
    /// here: it is not trapped). A socket of the stack's own gets its carrier
    /// from [`Claims::new_carrier`].
    fn create(&mut self, stop: &mut SyscallStop, claims: &mut Claims) -> Handled;
    /// A call on `socket`, one of this stack's own. Stacks that own none (they
    /// leave every socket to the kernel) keep the default.
    fn on_socket(&mut self, socket: SocketId, stop: &mut SyscallStop) -> Handled {
        let _ = (socket, stop);
        Ok(Disposition::Kernel)
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
    /// The address family (`AF_INET`, `AF_INET6`, ...) of `socket`, one of this
    /// stack's own, as its program made it (the kernel object may be another
    /// family's); `None` if the stack does not know it.
    fn family(&self, socket: SocketId) -> Option<i32> {
        let _ = socket;
        None
    }
    /// The process that last connected or sent with the stack's socket bound
    /// to `local` (TCP if `tcp`, else UDP), if the stack knows: who an uplink's
    /// audit log names for a flow from there.
    fn originator(&self, tcp: bool, local: SocketAddr) -> Option<Pid> {
        let _ = (tcp, local);
        None
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
    /// Whether `fd`, an event source that fired, may be one of the stack's own:
    /// a stack is served for the events of its own sources only. By default
    /// every source may be.
    fn watches(&self, fd: RawFd) -> bool {
        let _ = fd;
        true
    }
    /// Whether frames wait at one of the stack's links. A stack that is not
    /// busy, has no deadline due, had no call and no event is served again only
    /// when this says so; by default it is served every round.
    fn frames_waiting(&self, network: &Network) -> bool {
        let _ = network;
        true
    }
    /// One round of the stack's own network work (packets in and out); see
    /// [`Activity`].
    /// `ready` holds the stack's own event sources that turned readable since
    /// the last round (see [`Vunet`](super::Vunet)'s event loop).
    fn service(&mut self, network: &mut Network, now: Instant, ready: &[RawFd]) -> Activity {
        let _ = (network, now, ready);
        Activity::default()
    }
    /// What the stack shows of itself to programs that ask (`ip`, `getifaddrs`), if
    /// it is a host on the network: then vunet serves their `NETLINK_ROUTE`
    /// sockets from it (see [`super::inside`]).
    fn inside(&self, network: &Network) -> Option<Inside> {
        let _ = network;
        None
    }
    /// Carries out a change a program asks of the stack from inside (`ip addr
    /// add`, `ifconfig`), judged as Linux judges it (see
    /// [`Inside::apply`](super::inside::Inside::apply)), and makes the stack's
    /// network follow; what it changed. Only a stack that shows its inside is
    /// asked.
    fn change(&mut self, network: &mut Network, change: &Change) -> Result<Vec<Event>, i32> {
        let _ = (network, change);
        Err(libc::EOPNOTSUPP)
    }
    /// The stack's sockets as `ss` lists them, if it keeps its own (see
    /// [`sock_diag`](super::inside::sock_diag)): then vunet answers its
    /// programs' `NETLINK_SOCK_DIAG` sockets from them. Only the programs'
    /// sockets, never what the stack holds for itself.
    fn sockets(&self) -> Option<Vec<SocketView>> {
        None
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

/// Returns the allocator's free pages to the system, so that the supervisor
/// shrinks back once a program's sockets are gone.
pub fn give_back_freed_memory() {
    // SAFETY: malloc_trim only releases free memory of the allocator's own.
    unsafe { libc::malloc_trim(0) };
}

/// Gives back most of a map's room once it holds less than a quarter of what
/// it has room for: a session that once held ten thousand sockets shrinks back
/// when they close. (Each shrink at least halves the room, so the rehashing
/// costs a constant per removal.)
pub fn shrink_idle(collection: &mut impl Roomy) {
    let (held, room) = (collection.held(), collection.room());
    if room > 64 && held < room / 4 {
        collection.keep_room(held * 2);
    }
}

/// A collection that has room beyond what it holds (see [`shrink_idle`]).
pub trait Roomy {
    /// How many items it holds.
    fn held(&self) -> usize;
    /// How many it has room for.
    fn room(&self) -> usize;
    /// Lets go of room beyond `room` items.
    fn keep_room(&mut self, room: usize);
}

/// [`Roomy`] for the standard collections, which all say the same.
macro_rules! roomy {
    ($($collection:ty, [$($bound:tt)*];)*) => {$(
        impl<$($bound)*> Roomy for $collection {
            fn held(&self) -> usize {
                self.len()
            }
            fn room(&self) -> usize {
                self.capacity()
            }
            fn keep_room(&mut self, room: usize) {
                self.shrink_to(room)
            }
        }
    )*};
}

roomy! {
    HashMap<K, V>, [K: Eq + Hash, V];
    HashSet<T>, [T: Eq + Hash];
    BinaryHeap<T>, [T: Ord];
}

/// The earlier of two deadlines, either of which may be absent.
pub fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Lets a stack record the kernel sockets that are its own.
///
/// A socket the supervisor makes for a program ([`Claims::new_carrier`]) is the
/// stack's from the start. Otherwise a stack claims the socket a call it rewrote
/// made, found at the fd the call returned. By the time the supervisor looks,
/// another thread of the program may have put another socket at that number
/// (`dup2`): a host socket kept from outside, another stack's carrier. Such a
/// socket must not become the stack's, or calls on it would skip the checks every
/// socket no stack owns gets. So a claim takes only an `AF_UNIX` socket that no
/// stack owns yet and that the stack recognizes as the one its call made
/// ([`Claims::claim_new`]); anything else stays the kernel's.
pub struct Claims<'a> {
    pub(super) table: &'a mut FdTable<Owner>,
    pub(super) owner: Owner,
}

impl Claims<'_> {
    /// Claims the socket the call at `stop` just made at `fd`, if it is one the call
    /// could have made: an `AF_UNIX` socket no stack owns that `made_here` (given
    /// the supervisor's copy of it) recognizes. Returns it and the copy.
    pub fn claim_new(
        &mut self,
        stop: &SyscallStop,
        fd: i32,
        made_here: impl FnOnce(&OwnedFd) -> bool,
    ) -> Option<(SocketId, OwnedFd)> {
        let Ok(FdTarget::Socket(socket)) = self.table.resolve(stop.tid, fd, || stop.copy_fd(fd))
        else {
            return None;
        };
        let copy = stop.copy_fd(fd).ok()?;
        self.may_claim(socket, &copy, made_here).then(|| {
            self.table.insert(socket, self.owner);
            (socket, copy)
        })
    }

    /// Makes the carrier of a new virtual socket for the `socket()` at `stop`: an
    /// `AF_UNIX` socket of type `ty`, with the call's `SOCK_NONBLOCK` and
    /// `SOCK_CLOEXEC` `flags`. See [`NewCarrier`] for the two ways it reaches the
    /// program.
    pub fn new_carrier(
        &mut self,
        stop: &mut SyscallStop,
        ty: SockType,
        flags: i32,
    ) -> Result<NewCarrier, Errno> {
        if !stop.can_return_new_fd() {
            let ty = ty as i32 | flags;
            stop.rewrite(Syscall::Socket(Socket { domain: libc::AF_UNIX, ty, protocol: 0 }));
            return Ok(NewCarrier::Rewritten);
        }
        let nonblocking = if flags & libc::SOCK_NONBLOCK != 0 {
            SockFlag::SOCK_NONBLOCK
        } else {
            SockFlag::empty()
        };
        let carrier = socket(AddressFamily::Unix, ty, nonblocking | SockFlag::SOCK_CLOEXEC, None)?;
        chown_to_caller(&carrier, stop)?;
        let id = crate::fdtable::identity(&carrier).ok_or(Errno::EBADF)?;
        stop.return_new_fd(carrier, flags & libc::SOCK_CLOEXEC != 0)?;
        self.table.insert(id, self.owner);
        Ok(NewCarrier::Given(id))
    }

    /// Whether `copy`, a copy of what was resolved as `socket`, may be claimed.
    fn may_claim(
        &self,
        socket: SocketId,
        copy: &OwnedFd,
        made_here: impl FnOnce(&OwnedFd) -> bool,
    ) -> bool {
        // The fd may have been renumbered between the resolution and the copy.
        crate::fdtable::identity(copy) == Some(socket)
            && self.table.get(socket).is_none()
            && crate::fdtable::family(copy) == Some(libc::AF_UNIX)
            && made_here(copy)
    }
}

/// The carrier of a new virtual socket (see [`Claims::new_carrier`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewCarrier {
    /// Made by the supervisor, claimed already, and given to the program as the
    /// call's result ([`SyscallStop::return_new_fd`]): the answer is
    /// [`Disposition::Kernel`], and [`SyscallStop::new_fd`] lends it until then.
    Given(SocketId),
    /// Where nothing can be given (no seccomp notifier: `--trace`, a kernel
    /// before 5.19), the call was rewritten to make it in the program, to be
    /// claimed at the exit ([`Claims::claim_new`]): the answer is
    /// [`Disposition::KernelThenFinish`].
    Rewritten,
}

impl NewCarrier {
    /// The answer to the call, for a stack that needs nothing more of it.
    pub fn disposition(self) -> Disposition {
        match self {
            Self::Given(_) => Disposition::Kernel,
            Self::Rewritten => Disposition::KernelThenFinish,
        }
    }
}

/// Gives the supervisor's new socket `fd` the owner one made by the thread at
/// `stop` would have: its file system user and group. Only a supervisor running as
/// root makes sockets for programs of other users (a program that dropped its
/// privileges); for anyone else the two are the same.
fn chown_to_caller(fd: &OwnedFd, stop: &SyscallStop) -> Result<(), Errno> {
    // SAFETY: geteuid takes nothing and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    match stop.file_system_ids()? {
        (0, 0) => Ok(()),
        // SAFETY: fchown takes a live descriptor of ours and two plain ids.
        (uid, gid) => Errno::result(unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) }).map(drop),
    }
}

/// Whether `socket` (of the supervisor) is an `AF_UNIX` socket of type `ty` that has
/// no name and no peer: what a `socket()` just made.
pub fn is_fresh(socket: &OwnedFd, ty: SockType) -> bool {
    use nix::sys::socket::{UnixAddr, getpeername, getsockname, getsockopt, sockopt};
    let unnamed = getsockname::<UnixAddr>(socket.as_raw_fd())
        .is_ok_and(|name| name.path().is_none() && name.as_abstract().is_none());
    let unconnected = getpeername::<UnixAddr>(socket.as_raw_fd()) == Err(Errno::ENOTCONN);
    let of_type = getsockopt(socket, sockopt::SockType).is_ok_and(|t| t == ty);
    unnamed && unconnected && of_type
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

/// `N` random bytes from the kernel, for the names of objects of the supervisor's
/// own that no program may guess (carriers, listeners).
pub fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    // SAFETY: getrandom writes at most `bytes.len()` bytes into the live buffer.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n == N as isize { Ok(bytes) } else { Err(std::io::Error::last_os_error()) }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use nix::sys::socket::{AddressFamily, SockFlag, UnixAddr, bind, socket};

    use super::*;

    fn new_socket(family: AddressFamily, ty: SockType) -> OwnedFd {
        socket(family, ty, SockFlag::SOCK_CLOEXEC, None).unwrap()
    }

    fn id(socket: &OwnedFd) -> SocketId {
        crate::fdtable::identity(&socket.as_fd()).unwrap()
    }

    /// What another thread may have put at a new socket's fd is claimed only if it
    /// is what the call made: an unowned, fresh `AF_UNIX` socket of the right type.
    #[test]
    fn only_what_the_call_made_is_claimed() {
        let mut table = FdTable::new();
        let claims = Claims { table: &mut table, owner: Owner::Stack(0) };
        let fresh = |copy: &OwnedFd| is_fresh(copy, SockType::Stream);
        let stream = new_socket(AddressFamily::Unix, SockType::Stream);
        assert!(claims.may_claim(id(&stream), &stream, fresh));

        let host = new_socket(AddressFamily::Inet, SockType::Datagram);
        assert!(!claims.may_claim(id(&host), &host, |_| true), "not AF_UNIX");
        let datagram = new_socket(AddressFamily::Unix, SockType::Datagram);
        assert!(!claims.may_claim(id(&datagram), &datagram, fresh), "not of the call's type");
        let named = new_socket(AddressFamily::Unix, SockType::Stream);
        let name = format!("netvm-test-claim-{}", std::process::id());
        bind(named.as_raw_fd(), &UnixAddr::new_abstract(name.as_bytes()).unwrap()).unwrap();
        assert!(!claims.may_claim(id(&named), &named, fresh), "bound: not fresh");
        assert!(!claims.may_claim(id(&named), &stream, fresh), "renumbered since resolved");

        let mut table = FdTable::new();
        table.insert(id(&stream), Owner::Stack(1));
        let claims = Claims { table: &mut table, owner: Owner::Stack(0) };
        assert!(!claims.may_claim(id(&stream), &stream, fresh), "another stack's");
    }
}
