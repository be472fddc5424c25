//! `vunet`: the network module. It virtualizes the BSD socket API.
//!
//! As in vuos, the module itself only routes: each kind of network stack is a
//! submodule implementing [`Stack`], and a session mounts any number of instances,
//! each independent of the others (own sockets, ports, addresses, routes). Every
//! process runs on one mounted stack, inherited by its children.
//!
//! Routing rules:
//! - `socket` and `socketpair` go to the calling process's stack;
//! - a call on an fd goes to the stack that owns the socket behind it, found by the
//!   socket's kernel identity in the [`FdTable`];
//! - a call on anything else (an `AF_UNIX` socket, a host socket, a file, a closed
//!   fd) is left to the kernel, which gives its own answer or errno.

pub mod cidr;
pub mod config;
pub mod control;
pub mod kind;
pub mod network;
mod plain;
pub mod sockaddr;
pub mod stack;
pub mod status;

kind::stack_kinds!(none, host, smoltcp, echo);

use std::collections::HashMap;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::unistd::Pid;

use crate::fdtable::{FdTable, FdTarget, SocketId};
use crate::modules::{Answer, Disposition, Handled, Module};
use crate::sandbox::{Entered, Fence};
use crate::syscall::{AddrIn, Msg, Sendto, Syscall, UserPtr};
use crate::tracer::filter::{ArgTest, TrapRule};
use crate::tracer::{SyscallStop, TraceeMemory};

use config::VunetConfig;
use control::{ControlSocket, Reply, Request};
use kind::Mount;
use network::{Network, RouterInterface};
pub use stack::{Activity, Claims, SetupError, Stack, StackId, earliest};

/// Builds the session's network (switches and routers) and mounts every stack of
/// `config`, plugging their interfaces into it.
fn mount_all(
    config: &VunetConfig,
    capture_dir: Option<PathBuf>,
    registry: &mio::Registry,
) -> Result<(Network, Vec<Box<dyn Stack>>), SetupError> {
    let mut network = Network::new(capture_dir);
    let mut switches = HashMap::new();
    for name in config.switch_names() {
        switches.insert(name.clone(), network.add_switch(&name));
    }
    for router in config.routers() {
        let interfaces = router
            .interfaces
            .iter()
            .filter_map(|i| {
                Some(RouterInterface {
                    switch: *switches.get(i.switch.as_ref()?)?,
                    mac: i.mac,
                    addresses: i.addresses.clone(),
                    capture: i.capture.clone(),
                })
            })
            .collect();
        network
            .add_router(&router.name, interfaces)
            .map_err(|e| SetupError(format!("router {}: {e}", router.name)))?;
    }
    let mut stacks = Vec::new();
    for (index, stack) in config.stacks.iter().enumerate() {
        let name = stack.name.get_ref();
        let mut mount = Mount { name, index, network: &mut network, switches: &switches, registry };
        stacks.push(stack.section.mount(&mut mount)?);
    }
    Ok((network, stacks))
}

/// Mounts the stack `name` that no configuration declares, if its kind allows
/// (`none` and `host` can always be chosen at launch).
fn mount_unconfigured(
    name: &str,
    index: usize,
    network: &mut Network,
    registry: &mio::Registry,
) -> Option<Result<Box<dyn Stack>, SetupError>> {
    let config = KINDS.find(name)?.unconfigured()?;
    let switches = HashMap::new();
    let mut mount = Mount { name, index, network, switches: &switches, registry };
    Some(config.mount(&mut mount))
}

impl From<UnknownStack> for SetupError {
    fn from(e: UnknownStack) -> Self {
        Self(e.to_string())
    }
}

/// Where a trapped call goes.
enum Route {
    /// `socket`/`socketpair`, to the caller's stack.
    Create(StackId),
    /// A call on a virtual socket, to the stack that owns it.
    Socket(StackId, SocketId),
    /// A call on anything else, for the kernel: the socket's identity if it is one.
    Kernel(Option<SocketId>),
}

/// Whether an `ioctl` request is about the network's interfaces (`SIOCGIFCONF`,
/// `SIOCSIFFLAGS`, routes, ARP, ...) rather than about the socket it is made on.
fn is_interface_request(request: u32) -> bool {
    (0x890B..=0x89FF).contains(&request) && request != SIOCOUTQNSD_REQUEST
}

/// The largest socket address the kernel takes (`sizeof(struct sockaddr_storage)`).
const MAX_SOCKADDR: u32 = 128;

/// What a call on a socket no stack owns hands the kernel to send to, read once
/// from the program's memory.
enum Outgoing {
    /// No address in play.
    Nothing,
    /// The address `call` (a `connect`, `bind` or `sendto`) passes.
    Address { call: Syscall, bytes: Vec<u8> },
    /// `sendmsg`'s header and the name it points to (`None`: none, or one the
    /// kernel refuses unread); for `sendmmsg`, its first message's.
    Message { header: libc::msghdr, name: Option<Vec<u8>>, msgvec: Option<u64> },
}

impl Outgoing {
    /// Reads what `call` passes; `EFAULT` where the kernel could not read it.
    fn read(memory: &TraceeMemory, call: &Syscall) -> Result<Self, Errno> {
        let address = |addr: UserPtr, len: u32| {
            if addr.is_null() || len > MAX_SOCKADDR {
                return Ok(Self::Nothing); // the kernel's error, from no read
            }
            Ok(Self::Address { call: *call, bytes: memory.read_bytes(addr.0, len as usize)? })
        };
        let message = |at: u64, msgvec| {
            let header = memory.read::<libc::msghdr>(at)?;
            let name = if header.msg_name.is_null() || header.msg_namelen > MAX_SOCKADDR {
                None
            } else {
                Some(memory.read_bytes(header.msg_name as u64, header.msg_namelen as usize)?)
            };
            Ok(Self::Message { header, name, msgvec })
        };
        match *call {
            Syscall::Connect(c) | Syscall::Bind(c) => address(c.addr, c.addrlen),
            Syscall::Sendto(c) => address(c.addr, c.addrlen),
            Syscall::Sendmsg(c) => message(c.msg.0, None),
            Syscall::Sendmmsg(c) if c.vlen > 0 => message(c.msgvec.0, Some(c.msgvec.0)),
            _ => Ok(Self::Nothing),
        }
    }

    /// The address the call sends to or binds, if any.
    fn name(&self) -> Option<&[u8]> {
        match self {
            Self::Address { bytes, .. } => Some(bytes),
            Self::Message { name, .. } => name.as_deref(),
            Self::Nothing => None,
        }
    }

    /// Whether `call` could act on its socket's network: connect, bind, listen,
    /// an option (a multicast group, a device), an interface request, a send to
    /// an address. Reads, writes and questions about the socket itself could not.
    fn reaches_a_network(&self, call: &Syscall) -> bool {
        match call {
            Syscall::Connect(_)
            | Syscall::Bind(_)
            | Syscall::Listen(_)
            | Syscall::Setsockopt(_) => true,
            Syscall::Ioctl(c) => is_interface_request(c.request),
            Syscall::Sendto(_) => true,
            _ => matches!(self, Self::Message { header, .. } if !header.msg_name.is_null()),
        }
    }

    /// Points the call at a sealed copy of what was read. A `sendmmsg` becomes the
    /// `sendmsg` of its first message, whose array is returned for the exit
    /// (see [`finish_first_message`]).
    fn seal(self, stop: &mut SyscallStop) -> Result<Option<u64>, Errno> {
        match self {
            Self::Nothing => Ok(None),
            Self::Address { call, bytes } => {
                let addr = UserPtr(stop.put_sealed(&bytes, 0)?);
                stop.rewrite(match call {
                    Syscall::Connect(c) => Syscall::Connect(AddrIn { addr, ..c }),
                    Syscall::Bind(c) => Syscall::Bind(AddrIn { addr, ..c }),
                    Syscall::Sendto(c) => Syscall::Sendto(Sendto { addr, ..c }),
                    other => other, // `read` makes an `Address` of the three above only
                });
                Ok(None)
            }
            Self::Message { header, name, msgvec } => {
                let (at, _) = stop.put_sealed_header(header, name.as_deref())?;
                let msg = UserPtr(at);
                stop.rewrite(match stop.call() {
                    Syscall::Sendmmsg(c) => Syscall::Sendmsg(Msg { fd: c.fd, msg, flags: c.flags }),
                    Syscall::Sendmsg(c) => Syscall::Sendmsg(Msg { msg, ..c }),
                    other => other, // `read` makes a `Message` of the two above only
                });
                Ok(msgvec)
            }
        }
    }
}

/// A `sendmmsg` that ran as the `sendmsg` of its first message returns 1 and
/// that message's length, in the program's array at `msgvec`, as the kernel
/// would have written it.
fn finish_first_message(stop: &mut SyscallStop, msgvec: u64) {
    let sent = stop.result();
    if sent < 0 {
        return;
    }
    let at = msgvec + std::mem::offset_of!(libc::mmsghdr, msg_len) as u64;
    match stop.memory().write(at, &(sent as u32)) {
        Ok(()) => stop.set_result(1),
        Err(e) => stop.set_result(-(e as i64)),
    }
}

/// `SIOCOUTQNSD`, a socket's unsent bytes: no interface request.
const SIOCOUTQNSD_REQUEST: u32 = 0x894B;

/// How many finished calls pass between sweeps of closed sockets.
const SWEEP_EVERY: u32 = 256;
/// The longest time between sweeps while sockets are open.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The inodes of every `AF_UNIX` socket of this network namespace.
fn live_unix_sockets() -> std::io::Result<std::collections::HashSet<SocketId>> {
    // Bytes, not text: abstract names (carriers' among them) are printed raw.
    let table = std::fs::read("/proc/net/unix")?;
    Ok(parse_unix_inodes(&table))
}

/// The inode column of `/proc/net/unix`
/// (`Num RefCount Protocol Flags Type St Inode [Path]`).
fn parse_unix_inodes(table: &[u8]) -> std::collections::HashSet<SocketId> {
    table
        .split(|&b| b == b'\n')
        .skip(1)
        .filter_map(|line| {
            let inode = line.split(|b| b.is_ascii_whitespace()).filter(|f| !f.is_empty()).nth(6)?;
            std::str::from_utf8(inode).ok()?.parse().ok()
        })
        .map(SocketId)
        .collect()
}

/// The vunet module: mounted stacks, each process's choice, and the virtual sockets.
pub struct Vunet {
    stacks: Vec<Box<dyn Stack>>,
    launch_stack: StackId,
    /// The stack of every traced process.
    processes: HashMap<Pid, StackId>,
    /// Virtual sockets and the stack that owns each.
    sockets: FdTable<StackId>,
    /// Who answers calls left to the kernel.
    kernel: Rc<str>,
    /// The stack of each thread whose call's exit a stack asked for.
    in_flight: HashMap<Pid, StackId>,
    finished_since_sweep: u32,
    /// When sockets were last swept: a listener closed on one stack must stop
    /// answering the network soon, even if no call comes to trigger a sweep.
    last_sweep: Instant,
    /// The switches, routers and links between the stacks.
    network: Network,
    /// The event sources of the stacks' network work and of the control socket.
    poll: mio::Poll,
    /// Where `netvm stack` and `netvm status` reach this session; made when the
    /// command is launched.
    control: Option<ControlSocket>,
    /// How the session is fenced in (see [`crate::sandbox`]).
    fence: Fence,
    /// The session's own network namespace, when it has one: sockets of any other
    /// are foreign.
    session_network: Option<u64>,
    /// Which sockets no stack owns are foreign (see [`Vunet::is_foreign`]).
    foreign: HashMap<SocketId, bool>,
    /// Threads whose `sendmmsg` on a socket no stack owns runs as the `sendmsg`
    /// of its first message, with the program's array.
    native_mmsg: HashMap<Pid, u64>,
}

/// The token of the control socket among the event sources (the others are
/// tokened by fd).
const CONTROL: mio::Token = mio::Token(usize::MAX);

/// A `--stack` name that names no stack.
#[derive(Debug, PartialEq, Eq)]
pub struct UnknownStack {
    /// The name asked for.
    pub name: String,
    /// The names of the mounted stacks.
    pub mounted: Vec<String>,
}

impl std::fmt::Display for UnknownStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no stack named `{}`: this session mounts {} (see `netvm stacks`)",
            self.name,
            self.mounted.join(", ")
        )
    }
}

impl std::error::Error for UnknownStack {}

impl Vunet {
    /// Mounts the stacks of `config` and puts the launched command on `launch_stack`
    /// (the configured default if `None`). `none` and `host` can always be chosen at
    /// launch: they are mounted for the purpose if the configuration lacks them.
    pub fn new(config: &VunetConfig, launch_stack: Option<&str>) -> Result<Self, SetupError> {
        Self::with_captures(config, launch_stack, None)
    }

    /// As [`Vunet::new`], capturing every link into a pcap file in `capture_dir`.
    pub fn with_captures(
        config: &VunetConfig,
        launch_stack: Option<&str>,
        capture_dir: Option<PathBuf>,
    ) -> Result<Self, SetupError> {
        let poll = mio::Poll::new().map_err(|e| SetupError(format!("epoll: {e}")))?;
        let (mut network, mut stacks) = mount_all(config, capture_dir, poll.registry())?;
        let wanted = launch_stack.unwrap_or(config.default.get_ref());
        let launch_stack = match stacks.iter().position(|s| &**s.name() == wanted) {
            Some(id) => id,
            None => match mount_unconfigured(wanted, stacks.len(), &mut network, poll.registry()) {
                Some(stack) => {
                    stacks.push(stack?);
                    stacks.len() - 1
                }
                None => {
                    let mounted = stacks.iter().map(|s| s.name().to_string()).collect();
                    return Err(UnknownStack { name: wanted.to_owned(), mounted }.into());
                }
            },
        };
        Ok(Self {
            network,
            poll,
            control: None,
            stacks,
            launch_stack,
            processes: HashMap::new(),
            sockets: FdTable::new(),
            kernel: "kernel".into(),
            in_flight: HashMap::new(),
            finished_since_sweep: 0,
            last_sweep: Instant::now(),
            fence: Fence::FilterOnly,
            session_network: None,
            foreign: HashMap::new(),
            native_mmsg: HashMap::new(),
        })
    }

    /// Says how the session is fenced in: by `fence`, and, with private namespaces,
    /// what the sandbox made of them.
    /// Then opens the control socket (`netvm stack`, `netvm status`), in the
    /// session's network namespace, before any program could take its name.
    pub fn fence(&mut self, fence: Fence, entered: Option<Entered>) {
        self.fence = fence;
        let mut outside_clients = None;
        if let Some(entered) = entered {
            self.session_network = Some(entered.network);
            outside_clients = entered.outside_clients;
        }
        let mut control = match ControlSocket::bind(nix::unistd::getpid()) {
            Ok(control) => control,
            Err(e) => {
                return log::warn!(
                    "no control socket (`netvm stack` and `netvm status` will not reach this \
                     session): {e}"
                );
            }
        };
        if let Some(channel) = outside_clients
            && let Err(e) = control.serve_outside(channel)
        {
            log::warn!("`netvm status` from outside this session will not answer: {e}");
        }
        let fd = control.as_raw_fd();
        let source = &mut mio::unix::SourceFd(&fd);
        let _ = self.poll.registry().register(source, CONTROL, mio::Interest::READABLE);
        self.control = Some(control);
    }

    /// The mounted stacks: name, kind and own addresses.
    pub fn stacks(&self) -> impl Iterator<Item = (&str, &'static str, Vec<String>)> {
        self.stacks.iter().map(|s| (&**s.name(), s.kind(), s.addresses()))
    }

    /// Whether stack `stack` is the host's own network, passed through.
    fn passes_host_network(&self, stack: StackId) -> bool {
        KINDS.find(self.stacks[stack].kind()).is_some_and(|kind| kind.passes_host_network())
    }

    fn stack_of(&self, process: Pid) -> StackId {
        self.processes.get(&process).copied().unwrap_or(self.launch_stack)
    }

    /// Where a call goes (see the module docs).
    fn route(&mut self, stop: &SyscallStop) -> Route {
        match stop.call() {
            Syscall::Socket(_) | Syscall::Socketpair(_) => {
                Route::Create(self.stack_of(stop.process))
            }
            call => {
                let Some(fd) = call.fd() else { return Route::Kernel(None) };
                match self.sockets.resolve(stop.tid, fd) {
                    Ok(FdTarget::Socket(socket)) => match self.sockets.get(socket) {
                        Some(&stack) => Route::Socket(stack, socket),
                        None => Route::Kernel(Some(socket)),
                    },
                    _ => Route::Kernel(None),
                }
            }
        }
    }

    /// A call on something no stack owns, for the kernel, if it may run: an
    /// address it passes is read once, judged, and put where the kernel reads it
    /// and no other thread of the program can change it (see
    /// [`SyscallStop::put_sealed`]). Refused: a call that would act on the network
    /// of a socket from outside, one that names a carrier (a process would cross
    /// to a stack past it), and without namespaces an interface request.
    fn kernel_call(&mut self, stop: &mut SyscallStop, socket: Option<SocketId>) -> Handled {
        let call = stop.call();
        let outgoing = Outgoing::read(&stop.memory(), &call)?;
        if let Some(socket) = socket
            && outgoing.reaches_a_network(&call)
            && self.is_foreign(stop, socket)
        {
            return Err(Errno::EPERM);
        }
        if self.fence == Fence::FilterOnly
            && let Syscall::Ioctl(c) = call
            && is_interface_request(c.request)
            && !self.passes_host_network(self.stack_of(stop.process))
        {
            // Without a namespace of its own, the kernel would answer about the
            // host's interfaces: as on a host without the interface asked for.
            return Err(Errno::ENODEV);
        }
        if outgoing.name().is_some_and(|name| self.stacks.iter().any(|s| s.reserves(name))) {
            let refusal = match call {
                Syscall::Bind(_) => Errno::EADDRINUSE,
                _ => Errno::ECONNREFUSED,
            };
            return Err(refusal);
        }
        match outgoing.seal(stop)? {
            Some(msgvec) => {
                self.native_mmsg.insert(stop.tid, msgvec);
                Ok(Disposition::KernelThenFinish)
            }
            None => Ok(Disposition::Kernel),
        }
    }

    /// Whether `socket`, on which the call at `stop` was made and which no stack
    /// owns, is foreign to the session (a socket inherited or passed in from the
    /// host): calls on it are refused, never run on the host's network. In a
    /// namespace of its own, the session's sockets are those of that namespace;
    /// without one, its `AF_UNIX` sockets, and every socket of a process on a
    /// stack of the `host` kind. Remembered per socket.
    fn is_foreign(&mut self, stop: &SyscallStop, socket: SocketId) -> bool {
        if self.session_network.is_none() && self.passes_host_network(self.stack_of(stop.process)) {
            return false;
        }
        if let Some(&foreign) = self.foreign.get(&socket) {
            return foreign;
        }
        let Some(copy) = stop.call().fd().and_then(|fd| stop.copy_fd(fd).ok()) else {
            return false; // closed meanwhile: the kernel says EBADF
        };
        let foreign = match self.session_network {
            Some(network) => crate::sandbox::network_of(&copy) != Some(network),
            None => crate::fdtable::family(&copy) != Some(libc::AF_UNIX),
        };
        // The fd may have been renumbered since it was resolved: the verdict is on
        // the socket the copy is of, and remembered only if that is the one resolved.
        if crate::fdtable::identity(&copy) == Some(socket) {
            self.foreign.insert(socket, foreign);
        }
        foreign
    }

    /// Lets the network run until nothing moves (or for a bounded number of rounds,
    /// to come back soon): packets between stacks, connects, arrivals.
    fn run_network(&mut self, now: Instant, ready: &[RawFd]) -> Option<Instant> {
        /// Rounds per call: enough for a handshake across a router, few enough
        /// that traced programs are not kept waiting behind a bulk transfer.
        const MAX_ROUNDS: usize = 64;
        let mut deadline = None;
        for round in 0..MAX_ROUNDS {
            // What turned readable is read in the first round (to the end: the
            // sources are edge-triggered); later rounds only move the network.
            let ready = if round == 0 { ready } else { &[] };
            let mut activity = Activity::default();
            for stack in &mut self.stacks {
                activity = activity.and(stack.service(&mut self.network, now, ready));
            }
            let routers = Activity { busy: false, deadline: self.network.poll(now) };
            activity = activity.and(routers);
            deadline = activity.deadline;
            if !activity.busy {
                break;
            }
            if round + 1 == MAX_ROUNDS {
                deadline = Some(now);
            }
        }
        deadline
    }

    /// Answers a request that came over the control socket from process `pid`.
    fn control_request(&mut self, request: Request, pid: Pid) -> Reply {
        match request {
            Request::UseStack { name } => {
                if !self.processes.contains_key(&pid) {
                    return Reply::error("only a process of this session can change its stack");
                }
                match self.stacks.iter().position(|s| **s.name() == name) {
                    Some(stack)
                        if self.fence == Fence::Namespaces && self.passes_host_network(stack) =>
                    {
                        Reply::error(format!(
                            "stack `{name}` passes the host's network through, and this \
                             session's programs run in a network namespace of their own: \
                             start a session on it with `netvm run --stack {name} -- CMD`"
                        ))
                    }
                    Some(stack) => {
                        self.processes.insert(pid, stack);
                        Reply::Ok
                    }
                    None => {
                        let mounted = self.stacks.iter().map(|s| s.name().to_string()).collect();
                        Reply::error(UnknownStack { name, mounted }.to_string())
                    }
                }
            }
            Request::Status => Reply::Status { report: self.status() },
        }
    }

    /// The session's state for `netvm status`.
    fn status(&self) -> status::StatusReport {
        let pids: Vec<i32> = self.processes.keys().map(|p| p.as_raw()).collect();
        let mut stacks: Vec<status::StackStatus> = self
            .stacks
            .iter()
            .enumerate()
            .map(|(id, stack)| {
                let mut processes: Vec<i32> = self
                    .processes
                    .iter()
                    .filter(|&(_, &s)| s == id)
                    .map(|(p, _)| p.as_raw())
                    .collect();
                processes.sort_unstable();
                let mut status = status::StackStatus {
                    name: stack.name().to_string(),
                    kind: stack.kind().to_string(),
                    processes,
                    ..Default::default()
                };
                stack.status(&self.network, &mut status);
                status
            })
            .collect();
        let inodes: Vec<u64> =
            stacks.iter().flat_map(|s| s.sockets.iter().map(|k| k.inode)).collect();
        let owners = status::owners(&inodes, &pids);
        for socket in stacks.iter_mut().flat_map(|s| s.sockets.iter_mut()) {
            socket.pids = owners.get(&socket.inode).cloned().unwrap_or_default();
        }
        status::StatusReport { supervisor: std::process::id() as i32, stacks }
    }

    /// Drops the virtual sockets whose last reference closed. A carrier is an
    /// `AF_UNIX` socket, so `/proc/net/unix` lists every one still alive.
    fn sweep(&mut self) {
        self.finished_since_sweep = 0;
        self.last_sweep = Instant::now();
        let Ok(alive) = live_unix_sockets() else {
            return;
        };
        let dead: Vec<SocketId> =
            self.sockets.iter().map(|(id, _)| id).filter(|id| !alive.contains(id)).collect();
        for id in &dead {
            self.sockets.remove(*id);
        }
        // Verdicts on sockets of other kinds or namespaces are simply taken again.
        self.foreign.retain(|id, _| alive.contains(id));
        for stack in &mut self.stacks {
            stack.forget(&dead);
        }
        log::debug!("sweep: {} virtual sockets alive, {} closed", self.sockets.len(), dead.len());
    }
}

impl Module for Vunet {
    fn name(&self) -> &'static str {
        "vunet"
    }

    fn trap_rules(&self) -> Vec<TrapRule> {
        let not_unix = ArgTest::IntNotEqual(libc::AF_UNIX as u32);
        let mut rules = vec![
            TrapRule::when(libc::SYS_socket, 0, not_unix),
            TrapRule::when(libc::SYS_socketpair, 0, not_unix),
            // With a NULL address these are plain send/recv: the data path stays native.
            TrapRule::when(libc::SYS_sendto, 4, ArgTest::NotNull),
            TrapRule::when(libc::SYS_recvfrom, 4, ArgTest::NotNull),
            // Only the socket ioctls (0x89xx); FIONREAD and friends run natively.
            TrapRule::when(
                libc::SYS_ioctl,
                1,
                ArgTest::IntMaskedEqual { mask: 0xff00, value: 0x8900 },
            ),
            // SIOCOUTQ shares its number with the terminal's TIOCOUTQ.
            TrapRule::when(
                libc::SYS_ioctl,
                1,
                ArgTest::IntMaskedEqual { mask: u32::MAX, value: libc::TIOCOUTQ as u32 },
            ),
        ];
        rules.extend(
            [
                libc::SYS_bind,
                libc::SYS_connect,
                libc::SYS_listen,
                libc::SYS_accept,
                libc::SYS_accept4,
                libc::SYS_sendmsg,
                libc::SYS_recvmsg,
                libc::SYS_sendmmsg,
                libc::SYS_recvmmsg,
            ]
            .map(TrapRule::always),
        );
        // Answered from the stack's records and the process's memory alone.
        rules.extend(
            [
                libc::SYS_getsockname,
                libc::SYS_getpeername,
                libc::SYS_getsockopt,
                libc::SYS_setsockopt,
                libc::SYS_shutdown,
            ]
            .map(|call| TrapRule::always(call).notified()),
        );
        rules
    }

    fn handle(&mut self, stop: &mut SyscallStop) -> Answer {
        let (stack, disposition) = match self.route(stop) {
            Route::Kernel(socket) => {
                let disposition = Disposition::of(self.kernel_call(stop, socket));
                return Answer { by: self.kernel.clone(), disposition };
            }
            Route::Create(stack) => (stack, self.stacks[stack].create(stop)),
            Route::Socket(stack, socket) => (stack, self.stacks[stack].on_socket(socket, stop)),
        };
        if disposition == Disposition::KernelThenFinish {
            self.in_flight.insert(stop.tid, stack);
        }
        Answer { by: self.stacks[stack].name().clone(), disposition }
    }

    fn finish(&mut self, stop: &mut SyscallStop) {
        if let Some(msgvec) = self.native_mmsg.remove(&stop.tid) {
            return finish_first_message(stop, msgvec);
        }
        let Some(stack) = self.in_flight.remove(&stop.tid) else {
            return;
        };
        let mut claims = Claims { table: &mut self.sockets, stack };
        self.stacks[stack].finish(stop, &mut claims);
        self.finished_since_sweep += 1;
        if self.finished_since_sweep >= SWEEP_EVERY {
            self.sweep();
        }
    }

    fn describe(&self, memory: &TraceeMemory, call: &Syscall, result: i64) -> String {
        crate::syscall::render::arguments(memory, call, result)
    }

    fn process_started(&mut self, process: Pid, parent: Option<Pid>) {
        let stack = parent.map_or(self.launch_stack, |p| self.stack_of(p));
        self.processes.insert(process, stack);
    }

    fn event_fd(&self) -> Option<RawFd> {
        Some(self.poll.as_raw_fd())
    }

    fn service(&mut self, now: Instant) -> Option<Instant> {
        // The sources are edge-triggered, each registered with its fd as token:
        // note every one that fired.
        let mut events = mio::Events::with_capacity(256);
        let mut ready = Vec::new();
        let mut control_ready = false;
        while self.poll.poll(&mut events, Some(Duration::ZERO)).is_ok() && !events.is_empty() {
            control_ready |= events.iter().any(|e| e.token() == CONTROL);
            ready.extend(
                events.iter().filter(|e| e.token() != CONTROL).map(|e| e.token().0 as RawFd),
            );
            if events.iter().count() < events.capacity() {
                break;
            }
        }
        // Only when it has work (news, or clients still waiting, whose timeouts it
        // keeps): accepting on an idle listener costs the kernel a socket
        // allocation, and this runs after every trapped call.
        let control_waiting = self.control.as_ref().is_some_and(|c| c.pending() > 0);
        if (control_ready || control_waiting)
            && let Some(mut control) = self.control.take()
        {
            control.serve(|request, pid| self.control_request(request, pid));
            self.control = Some(control);
        }
        if !self.sockets.is_empty() && now >= self.last_sweep + SWEEP_INTERVAL {
            self.sweep();
        }
        let deadline = self.run_network(now, &ready);
        // Come back for the next sweep while sockets are open.
        let sweep = (!self.sockets.is_empty()).then_some(self.last_sweep + SWEEP_INTERVAL);
        earliest(deadline, sweep)
    }

    fn process_ended(&mut self, process: Pid) {
        self.processes.remove(&process);
    }

    fn thread_ended(&mut self, tid: Pid) {
        self.sockets.forget_thread(tid);
        self.in_flight.remove(&tid);
        self.native_mmsg.remove(&tid);
        for stack in &mut self.stacks {
            stack.thread_ended(tid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Origin, parse};

    fn config(text: &str) -> VunetConfig {
        parse(text, &Origin::BuiltIn, crate::modules::Config::read).unwrap().vunet
    }

    const TWO: &str = "[vunet]\ndefault = \"quiet\"\n\
        [[vunet.stack]]\nname = \"quiet\"\nkind = \"none\"\n\
        [[vunet.stack]]\nname = \"real\"\nkind = \"host\"\n";

    #[test]
    fn the_launch_stack_defaults_to_the_configured_one() {
        let vunet = Vunet::new(&config(TWO), None).unwrap();
        assert_eq!(&**vunet.stacks[vunet.launch_stack].name(), "quiet");
        let vunet = Vunet::new(&config(TWO), Some("real")).unwrap();
        assert_eq!(vunet.stacks[vunet.launch_stack].kind(), "host");
    }

    #[test]
    fn none_and_host_are_always_available_at_launch() {
        let only_none =
            "[vunet]\ndefault = \"n\"\n[[vunet.stack]]\nname = \"n\"\nkind = \"none\"\n";
        let vunet = Vunet::new(&config(only_none), Some("host")).unwrap();
        let mounted: Vec<_> = vunet.stacks().map(|(name, kind, _)| (name, kind)).collect();
        assert_eq!(mounted, [("n", "none"), ("host", "host")]);
    }

    #[test]
    fn an_unknown_stack_is_an_error_that_lists_the_mounted_ones() {
        let err = Vunet::new(&config(TWO), Some("lwip9")).err().unwrap();
        assert_eq!(
            err.to_string(),
            "no stack named `lwip9`: this session mounts quiet, real (see `netvm stacks`)"
        );
    }

    #[test]
    fn children_inherit_their_parents_stack() {
        let mut vunet = Vunet::new(&config(TWO), Some("real")).unwrap();
        let (root, child) = (Pid::from_raw(100), Pid::from_raw(101));
        vunet.process_started(root, None);
        vunet.processes.insert(root, 0); // as if root had switched to `quiet`
        vunet.process_started(child, Some(root));
        assert_eq!(vunet.stack_of(child), 0);
        vunet.process_ended(child);
        assert!(!vunet.processes.contains_key(&child));
    }

    #[test]
    fn the_live_socket_list_survives_binary_names() {
        let table = b"Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000: 00000002 00000000 00010000 0001 01 14323 /tmp/x\n\
            0000: 00000002 00000000 00010000 0001 01 777 @nv\xff\x00\x01\n\
            0000: 00000003 00000000 00000000 0001 03  1173\n";
        let inodes = parse_unix_inodes(table);
        assert_eq!(inodes, [14323, 777, 1173].map(SocketId).into_iter().collect());
    }

    #[test]
    fn sweeping_finds_our_own_sockets() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let crate::fdtable::FdTarget::Socket(id) =
            crate::fdtable::resolve(nix::unistd::gettid(), std::os::fd::AsRawFd::as_raw_fd(&a))
                .unwrap()
        else {
            panic!("not a socket")
        };
        assert!(live_unix_sockets().unwrap().contains(&id));
    }

    #[test]
    fn unix_sockets_and_plain_sends_are_not_trapped() {
        let vunet = Vunet::new(&config(TWO), None).unwrap();
        let rules = vunet.trap_rules();
        let socket = rules.iter().find(|r| r.syscall == libc::SYS_socket).unwrap();
        assert_eq!(socket.tests, [(0, ArgTest::IntNotEqual(libc::AF_UNIX as u32))]);
        let sendto = rules.iter().find(|r| r.syscall == libc::SYS_sendto).unwrap();
        assert_eq!(sendto.tests, [(4, ArgTest::NotNull)]);
        assert!(
            !rules
                .iter()
                .any(|r| [libc::SYS_read, libc::SYS_write, libc::SYS_close].contains(&r.syscall))
        );
    }
}
