//! The `echo` kind: a toy stack that shows how little a kind needs.
//!
//! Every TCP connection a program on an `echo` stack makes, to any address and
//! port, reaches one echo service in the supervisor, which sends back everything
//! it reads (after the stack's `banner`, if it has one). Students can point any
//! client at any address and see its bytes come back; contributors can read this
//! file to see the whole seam of a kind:
//!
//! - [`Kind`] reads the kind's own key (`banner`) from its `[[vunet.stack]]` table;
//! - [`Config`] mounts an [`EchoStack`];
//! - the stack turns `socket` into an `AF_UNIX` stream socket, claims it, and turns
//!   its `connect` into one to the service's listener; reads and writes then run in
//!   the kernel, and the service answers in [`Stack::service`].
//!
//! What a toy leaves out: addresses read back as `AF_UNIX`, other socket types
//! fail with `EAFNOSUPPORT`, and `bind`, `listen`, `accept` and `ioctl` with
//! `EOPNOTSUPP`. The service holds at most 64 connections (each costs the
//! supervisor an fd; more are closed at once) and 64 KiB unread by each client.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::rc::Rc;
use std::time::Instant;

use mio::unix::SourceFd;
use mio::{Interest, Token};
use nix::errno::Errno;
use nix::sys::socket::SockType;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::config::{Fault, Table};
use crate::fdtable::SocketId;
use crate::modules::{Disposition, Handled};
use crate::modules::vunet::kind::{Key, KindConfig, Mount, StackKind};
use crate::modules::vunet::network::Network;
use crate::modules::vunet::stack::{
    Activity, Claims, SetupError, Stack, is_fresh, random_bytes,
};
use crate::syscall::{AddrIn, Socket, Syscall, UserPtr};
use crate::tracer::SyscallStop;

/// The `echo` kind.
pub static KIND: Kind = Kind;

/// The `echo` kind: a toy whose every TCP connection reaches an echo service.
pub struct Kind;

impl StackKind for Kind {
    fn name(&self) -> &'static str {
        "echo"
    }

    fn summary(&self) -> &'static str {
        "a toy: every TCP connection, to any address, reaches an echo service"
    }

    fn keys(&self) -> &'static [Key] {
        &[Key { key: "banner", lacks: "banner", written: "`banner`", point_at: None }]
    }

    fn configure(&self, table: &Table) -> Result<Box<dyn KindConfig>, Fault> {
        let section: Section = table.read()?;
        let banner = section.banner.unwrap_or_default();
        if banner.len() > MAX_BANNER {
            let at = table.first_place("banner", None).unwrap_or_else(|| table.span());
            return Err((at, format!("a banner is at most {MAX_BANNER} bytes")));
        }
        Ok(Box::new(Config { banner }))
    }
}

/// The keys of an `echo` stack's table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    #[serde(rename = "name")]
    _name: IgnoredAny,
    #[serde(rename = "kind")]
    _kind: IgnoredAny,
    /// Sent first on every connection.
    banner: Option<String>,
}

/// An `echo` stack's configuration.
#[derive(Debug)]
pub struct Config {
    banner: String,
}

/// The longest `banner`.
const MAX_BANNER: usize = 4096;
/// The most connections the service holds at once: each costs the supervisor an
/// fd. A connection beyond them is closed at once.
const MAX_CONNECTIONS: usize = 64;
/// The most connections taken per round, so that a flood of them cannot hold the
/// supervisor in one.
const ACCEPTS_PER_ROUND: usize = 16;
/// The most bytes the service holds back for a client that does not read: it
/// reads no more from that client until it has sent them.
const MAX_UNSENT: usize = 64 * 1024;

impl KindConfig for Config {
    fn mount(&self, mount: &mut Mount) -> Result<Box<dyn Stack>, SetupError> {
        let failed = |e: std::io::Error| SetupError(format!("echo stack {}: {e}", mount.name));
        // A name nobody can guess or take first: without namespaces, other local
        // users share the abstract namespace.
        let random = u64::from_ne_bytes(random_bytes().map_err(failed)?);
        let name = format!("netvm-echo-{random:016x}");
        let listener = UnixListener::bind_addr(&SocketAddr::from_abstract_name(&name).map_err(failed)?)
            .map_err(failed)?;
        listener.set_nonblocking(true).map_err(failed)?;
        let registry = mount.registry.try_clone().map_err(failed)?;
        let fd = listener.as_raw_fd();
        registry.register(&mut SourceFd(&fd), Token(fd as usize), Interest::READABLE).map_err(failed)?;
        let mut address = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        address.push(0);
        address.extend_from_slice(name.as_bytes());
        Ok(Box::new(EchoStack {
            name: mount.name.into(),
            banner: self.banner.clone(),
            listener,
            address,
            registry,
            connections: HashMap::new(),
            more_waiting: false,
        }))
    }
}

/// The service's end of one connection, and what it still has to send there.
struct Connection {
    stream: UnixStream,
    unsent: Vec<u8>,
}

impl Connection {
    /// Sends what it can of `unsent`; `false` once the client is gone.
    fn flush(&mut self) -> bool {
        while !self.unsent.is_empty() {
            match self.stream.write(&self.unsent) {
                Ok(n) => drop(self.unsent.drain(..n)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Echoes what the client sent, as far as the client reads; `false` once it
    /// is gone.
    fn echo(&mut self) -> bool {
        let mut buffer = [0u8; 16 * 1024];
        while self.flush() {
            if self.unsent.len() >= MAX_UNSENT {
                return true; // back when the client has read some
            }
            match self.stream.read(&mut buffer) {
                Ok(0) => return false,
                Ok(n) => self.unsent.extend_from_slice(&buffer[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        false
    }
}

/// A mounted `echo` stack.
pub struct EchoStack {
    name: Rc<str>,
    banner: String,
    /// Where every connection of the stack's programs ends up.
    listener: UnixListener,
    /// The listener's address, as `connect` passes it.
    address: Vec<u8>,
    registry: mio::Registry,
    /// The service's ends of the connections, by fd.
    connections: HashMap<RawFd, Connection>,
    /// The last round left connections at the listener (which is edge-triggered:
    /// no new event comes for them).
    more_waiting: bool,
}

impl EchoStack {
    /// Takes the connections waiting at the listener, a bounded number a round;
    /// notes whether more may wait.
    fn accept_some(&mut self) {
        self.more_waiting = true;
        for _ in 0..ACCEPTS_PER_ROUND {
            let Ok((stream, _)) = self.listener.accept() else {
                self.more_waiting = false;
                return;
            };
            if self.connections.len() >= MAX_CONNECTIONS || stream.set_nonblocking(true).is_err() {
                continue; // closed: the client reads the end of the stream
            }
            let fd = stream.as_raw_fd();
            let interest = Interest::READABLE | Interest::WRITABLE;
            if self.registry.register(&mut SourceFd(&fd), Token(fd as usize), interest).is_err() {
                continue;
            }
            let mut connection = Connection { stream, unsent: self.banner.clone().into_bytes() };
            if connection.flush() {
                self.connections.insert(fd, connection);
            }
        }
    }

    /// Serves connection `fd`, which turned readable or writable; drops it at its end.
    fn serve(&mut self, fd: RawFd) {
        let Some(connection) = self.connections.get_mut(&fd) else { return };
        if !connection.echo()
            && let Some(connection) = self.connections.remove(&fd)
        {
            let _ = self.registry.deregister(&mut SourceFd(&connection.stream.as_raw_fd()));
        }
    }

    /// `socket`: a TCP socket becomes an `AF_UNIX` stream socket.
    fn create_socket(stop: &mut SyscallStop, socket: Socket, claims: &mut Claims) -> Handled {
        let flags = socket.ty & (libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
        let inet = [libc::AF_INET, libc::AF_INET6].contains(&socket.domain);
        let tcp = socket.ty & !flags == libc::SOCK_STREAM
            && [0, libc::IPPROTO_TCP].contains(&socket.protocol);
        if !inet || !tcp {
            return Err(Errno::EAFNOSUPPORT);
        }
        Ok(claims.new_carrier(stop, SockType::Stream, flags)?.disposition())
    }

    /// `connect`, to wherever: to the service.
    fn connect(&self, stop: &mut SyscallStop, call: AddrIn) -> Handled {
        let addr = UserPtr(stop.put_sealed(&self.address, 0)?);
        let addrlen = self.address.len() as u32;
        stop.rewrite(Syscall::Connect(AddrIn { addr, addrlen, ..call }));
        Ok(Disposition::Kernel)
    }
}

impl Stack for EchoStack {
    fn name(&self) -> &Rc<str> {
        &self.name
    }

    fn kind(&self) -> &'static str {
        KIND.name()
    }

    fn create(&mut self, stop: &mut SyscallStop, claims: &mut Claims) -> Handled {
        match stop.call() {
            Syscall::Socket(socket) => Self::create_socket(stop, socket, claims),
            _ => Err(Errno::EOPNOTSUPP),
        }
    }

    fn on_socket(&mut self, _socket: SocketId, stop: &mut SyscallStop) -> Handled {
        match stop.call() {
            Syscall::Connect(call) => self.connect(stop, call),
            // A program's own name or listener, or the kernel's interfaces, would
            // reach past the toy: not served.
            Syscall::Bind(_) | Syscall::Listen(_) | Syscall::Accept(_) | Syscall::Ioctl(_) => {
                Err(Errno::EOPNOTSUPP)
            }
            // Sends and receives on a connected stream ignore any address.
            _ => Ok(Disposition::Kernel),
        }
    }

    fn finish(&mut self, stop: &mut SyscallStop, claims: &mut Claims) {
        if let Some(fd) = stop.returned_fd() {
            claims.claim_new(stop, fd, |copy| is_fresh(copy, SockType::Stream));
        }
    }

    fn reserves(&self, sockaddr: &[u8]) -> bool {
        sockaddr == self.address
    }

    fn service(&mut self, _network: &mut Network, _now: Instant, ready: &[RawFd]) -> Activity {
        let listener = self.listener.as_raw_fd();
        if self.more_waiting || ready.contains(&listener) {
            self.accept_some();
        }
        for &fd in ready.iter().filter(|&&fd| fd != listener) {
            self.serve(fd);
        }
        Activity { busy: self.more_waiting, deadline: None }
    }
}
