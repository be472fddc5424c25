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

pub mod budget;
pub mod cidr;
pub mod config;
pub mod control;
pub mod inside;
pub mod kind;
mod mount;
pub mod network;
mod outside;
mod packet;
mod plain;
mod procnet;
mod smol_time;
pub mod sockaddr;
pub mod stack;
pub mod status;
mod sweep;
pub mod uplink;

kind::stack_kinds!(none, host, smoltcp, echo);

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use budget::Budget;

use nix::errno::Errno;
use nix::unistd::Pid;

use crate::fdtable::{FdTable, FdTarget, SocketId};
use crate::modules::{Answer, Disposition, Module};
use crate::sandbox::{Entered, Fence};
use crate::syscall::Syscall;
use crate::tracer::filter::{ArgTest, TrapRule};
use crate::tracer::{SyscallStop, TraceeMemory};
use cidr::Cidr;
use uplink::AuditLog;
use uplink::forward::Listener;
use uplink::policy::Rule;

use config::VunetConfig;
use control::{ControlSocket, Reply, Request};
use inside::socket::NetlinkSockets;
use mount::{mount_all, mount_unconfigured};
use network::Network;
pub use stack::{Activity, Claims, Owner, SetupError, Stack, StackId, earliest};

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
    /// A call on a program's netlink socket, to vunet's netlink service (from
    /// what the stack shows of itself).
    Netlink(StackId, SocketId),
    /// `socket(AF_NETLINK)` on a stack that shows its inside.
    NewNetlink(StackId, crate::syscall::Socket),
    /// `socket(AF_PACKET)` on a stack that shows its inside, in a session with
    /// a namespace of its own.
    NewPacket(StackId, crate::syscall::Socket),
    /// A call on anything else, for the kernel: the socket's identity if it is one.
    Kernel(Option<SocketId>),
}

/// The vunet module: mounted stacks, each process's choice, and the virtual sockets.
pub struct Vunet {
    stacks: Vec<Box<dyn Stack>>,
    launch_stack: StackId,
    /// The stack of every traced process.
    processes: HashMap<Pid, StackId>,
    /// The process that ended last, and its stack.
    last_ended: Option<(Pid, StackId)>,
    /// Virtual sockets and the stack that owns each.
    sockets: FdTable<Owner>,
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
    /// What each stack's last round did, and whether a call or a sweep touched
    /// it since: a session of a thousand stacks serves only those with work.
    rounds: Vec<(Activity, bool)>,
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
    /// The programs' netlink sockets, answered from what their stacks show.
    netlink: NetlinkSockets,
    /// The stacks' packet devices, for the programs' packet sockets.
    packet: packet::PacketSockets,
    /// The stacks' `/proc/net`, mounted for each program (with private
    /// namespaces only).
    procnet: Option<procnet::ProcNet>,
    /// What the uplinks share: where their host sockets come from (made here
    /// until the sandbox moves the supervisor out of the host's network
    /// namespace, then by its helper), the egress policy and the audit log.
    uplinks: uplink::Shared,
    /// Each stack's own egress rules (`egress` in its table), by name.
    stack_egress: Vec<(String, Vec<Rule>)>,
    /// Whether the session has an uplink (ports can be published).
    has_uplink: bool,
    /// The uplinks, for `netvm status`.
    mounted_uplinks: Vec<uplink::Mounted>,
    /// The uplinks' DNS addresses, which the session's `resolv.conf` names
    /// in place of the host's loopback nameservers.
    dns_relays: Vec<IpAddr>,
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
        let budget = Rc::new(RefCell::new(Budget::new(config.descriptors_per_process)));
        let uplinks = uplink::Shared::default();
        let (mut network, mut stacks, mounted_uplinks) =
            mount_all(config, capture_dir, poll.registry(), &budget, &uplinks)?;
        let wanted = launch_stack.unwrap_or(config.default.get_ref());
        let launch_stack = match stacks.iter().position(|s| &**s.name() == wanted) {
            Some(id) => id,
            None => match mount_unconfigured(
                config.kinds(),
                wanted,
                stacks.len(),
                &mut network,
                poll.registry(),
                &budget,
            ) {
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
        let registry =
            poll.registry().try_clone().map_err(|e| SetupError(format!("epoll: {e}")))?;
        Ok(Self {
            netlink: NetlinkSockets::new(registry),
            network,
            poll,
            control: None,
            stacks,
            launch_stack,
            processes: HashMap::new(),
            last_ended: None,
            sockets: FdTable::new(),
            kernel: "kernel".into(),
            in_flight: HashMap::new(),
            finished_since_sweep: 0,
            last_sweep: Instant::now(),
            rounds: Vec::new(),
            fence: Fence::FilterOnly,
            session_network: None,
            foreign: HashMap::new(),
            native_mmsg: HashMap::new(),
            packet: packet::PacketSockets::default(),
            procnet: None,
            uplinks,
            stack_egress: config
                .stacks
                .iter()
                .map(|s| (s.name.get_ref().clone(), s.egress().to_vec()))
                .collect(),
            has_uplink: !mounted_uplinks.is_empty(),
            mounted_uplinks,
            dns_relays: config
                .uplinks()
                .iter()
                .flat_map(|u| uplink::dns::relays(&u.dns))
                .map(|(relay, _)| relay)
                .collect(),
        })
        .map(|mut vunet| {
            vunet.follow_egress_sources();
            vunet
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
            self.uplinks.host.use_helper(entered.host_sockets);
            self.procnet = procnet::ProcNet::new()
                .map_err(|e| log::info!("programs read the session's own /proc/net: {e}"))
                .ok();
            self.relay_loopback_nameservers();
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

    /// Sets the session's own egress rules (tried before every stack's), its
    /// audit log (see [`uplink::policy`]), and the addresses that lead to the
    /// host's loopback (`--map-host-loopback`).
    pub fn egress(
        &mut self,
        rules: Vec<Rule>,
        audit: Option<AuditLog>,
        host_loopback: Vec<IpAddr>,
    ) {
        let mut egress = self.uplinks.egress.borrow_mut();
        egress.policy.session = rules;
        egress.audit = audit;
        egress.host_loopback = host_loopback;
    }

    /// Publishes `listeners`, host sockets opened before the sandbox
    /// (`netvm run -p`), each to its stack's address of the listener's family.
    /// Fails, with a line to show, when the session has no uplink, a stack is
    /// not mounted, or a forward leads to no address of its stack's.
    pub fn publish(&mut self, listeners: Vec<Listener>) -> Result<(), String> {
        if listeners.is_empty() {
            return Ok(());
        }
        if !self.has_uplink {
            return Err("published ports need an uplink (drop --no-uplink, or add a \
                        [[vunet.uplink]] to the configuration)"
                .to_owned());
        }
        let mut published = Vec::new();
        let mut unmatched: Vec<String> = Vec::new();
        for listener in listeners {
            let publish = &listener.publish;
            let Some(stack) = self.stacks.iter().find(|s| **s.name() == publish.stack) else {
                return Err(format!(
                    "cannot publish {publish}: no stack named `{}`",
                    publish.stack
                ));
            };
            let target = stack
                .addresses()
                .iter()
                .filter_map(|a| Cidr::parse(a).ok())
                .map(|c| c.ip)
                .find(|ip| ip.is_ipv4() == listener.address.is_ipv4() && !ip.is_loopback());
            match target {
                Some(ip) => published.push((SocketAddr::new(ip, publish.port), listener)),
                None => unmatched.push(publish.to_string()),
            }
        }
        if let Some(lost) =
            unmatched.iter().find(|p| !published.iter().any(|(_, l)| l.publish.to_string() == **p))
        {
            return Err(format!("cannot publish {lost}: its stack has no address to lead it to"));
        }
        let mut forwards = self.uplinks.forwards.borrow_mut();
        forwards.extend(published.into_iter().map(|(target, listener)| (listener, target)));
        Ok(())
    }

    /// Shows the session's programs a `resolv.conf` whose loopback nameservers
    /// are the uplinks' DNS addresses (see [`uplink::dns`]); the host's own
    /// file where it names none.
    fn relay_loopback_nameservers(&self) {
        let host = std::fs::read_to_string(uplink::dns::RESOLV_CONF).unwrap_or_default();
        let Some(rewritten) = uplink::dns::rewrite(&host, &self.dns_relays) else { return };
        let Some(procnet) = &self.procnet else { return };
        if let Err(e) = procnet.mount_file("resolv.conf", &rewritten, uplink::dns::RESOLV_CONF) {
            log::warn!("the host's nameserver on its loopback will not answer in the session: {e}");
        }
    }

    /// Tells the policy which addresses are whose, so that a flow is judged
    /// by its stack's rules (again whenever a stack's addresses may change).
    fn follow_egress_sources(&mut self) {
        let stacks = self.stacks.iter().map(|stack| {
            let name = stack.name().to_string();
            let addresses = stack
                .addresses()
                .iter()
                .filter_map(|a| Cidr::parse(a).ok())
                .map(|c| c.ip)
                .collect();
            let rules = self.stack_egress.iter().find(|(n, _)| *n == name).map(|(_, r)| r.clone());
            (name, addresses, rules.unwrap_or_default())
        });
        self.uplinks.egress.borrow_mut().policy.stacks = stacks.collect();
    }

    /// The mounted stacks: name, kind and own addresses.
    pub fn stacks(&self) -> impl Iterator<Item = (&str, &'static str, Vec<String>)> {
        self.stacks.iter().map(|s| (&**s.name(), s.kind(), s.addresses()))
    }

    /// An interface ioctl by a process on a stack that shows its inside, on any
    /// socket: answered by the stack, which it may change (see [`inside::ioctl`]).
    /// A stack's socket asks its own stack, as a socket asks its own namespace
    /// on Linux; any other asks the process's.
    fn interface_request(&mut self, stop: &SyscallStop) -> Option<Answer> {
        let Syscall::Ioctl(call) = stop.call() else { return None };
        if !inside::ioctl::is_answered_inside(call.request) {
            return None;
        }
        let own = self.stack_of(stop.process);
        self.stacks[own].inside(&self.network)?;
        let (stack, family) =
            match self.sockets.resolve(stop.tid, call.fd, || stop.copy_fd(call.fd)) {
                Ok(FdTarget::Socket(socket)) => self.socket_family(stop, socket, call.fd, own),
                Ok(FdTarget::Closed) | Err(_) => return Some(self.refusal(own, Errno::EBADF)),
                Ok(_) => return Some(self.refusal(own, Errno::ENOTTY)),
            };
        self.stacks[stack].inside(&self.network)?;
        let mut host = StackHost::new(&mut *self.stacks[stack], &mut self.network);
        let served = inside::ioctl::serve(&stop.memory(), &mut host, family, call);
        if !served.notifications.is_empty() {
            self.netlink.notify(stack, served.notifications);
            self.stack_changed(stack);
        }
        Some(Answer {
            by: self.stacks[stack].name().clone(),
            disposition: Disposition::of(served.handled),
        })
    }

    /// The stack socket `socket` (at `fd`) belongs to and its address family,
    /// as a program sees it: a stack's socket is its stack's and of the family
    /// the stack records; any other is the kernel's, seen from stack `own`.
    fn socket_family(
        &self,
        stop: &SyscallStop,
        socket: SocketId,
        fd: i32,
        own: StackId,
    ) -> (StackId, i32) {
        match self.sockets.get(socket) {
            Some(&Owner::Stack(stack)) if let Some(family) = self.stacks[stack].family(socket) => {
                (stack, family)
            }
            Some(&Owner::Netlink(stack)) => (stack, libc::AF_NETLINK),
            _ => {
                let copy = stop.copy_fd(fd).ok();
                (own, copy.as_ref().and_then(crate::fdtable::family).unwrap_or(libc::AF_UNIX))
            }
        }
    }

    /// Stack `stack`'s refusal of a call with `errno`.
    fn refusal(&self, stack: StackId, errno: Errno) -> Answer {
        Answer { by: self.stacks[stack].name().clone(), disposition: Disposition::of(Err(errno)) }
    }

    /// `socket(AF_PACKET)` by a process of `stack` (see [`packet`]).
    fn new_packet_socket(
        &mut self,
        stop: &mut SyscallStop,
        stack: StackId,
        call: crate::syscall::Socket,
    ) -> crate::modules::Handled {
        let inside = self.stacks[stack].inside(&self.network).ok_or(Errno::EAFNOSUPPORT)?;
        let side =
            packet::StackSide { id: stack, name: self.stacks[stack].name(), inside: &inside };
        self.packet.create(stop, side, call, &mut self.network, self.poll.registry())
    }

    /// Mounts stack `stack`'s `/proc/net` for process `process` (see [`procnet`]).
    fn show_proc_net(&mut self, process: Pid, stack: StackId) {
        if let Some(procnet) = &mut self.procnet {
            let (stacks, network) = (&self.stacks, &self.network);
            procnet.attach(process, stack, || stacks[stack].inside(network));
        }
    }

    /// A program changed stack `stack` from inside: what mirrors it follows (its
    /// packet devices, its programs' `/proc/net`).
    fn stack_changed(&mut self, stack: StackId) {
        self.poke(stack);
        self.follow_egress_sources();
        let (stacks, network) = (&self.stacks, &self.network);
        self.packet.follow(stack, || stacks[stack].inside(network));
        self.refresh_proc_net(&[stack], false);
    }

    /// Rewrites the `/proc/net` files of `stacks` from what they show now, their
    /// counters too if `counters`.
    fn refresh_proc_net(&mut self, stacks: &[StackId], counters: bool) {
        let Some(procnet) = &mut self.procnet else { return };
        for &stack in stacks {
            if let Some(inside) = self.stacks[stack].inside(&self.network) {
                procnet.refresh(stack, &inside, counters);
            }
        }
    }

    /// Whether stack `stack` is the host's own network, passed through.
    fn passes_host_network(&self, stack: StackId) -> bool {
        KINDS.find(self.stacks[stack].kind()).is_some_and(|kind| kind.passes_host_network())
    }

    fn stack_of(&self, process: Pid) -> StackId {
        let ended = self.last_ended.filter(|&(pid, _)| pid == process).map(|(_, stack)| stack);
        self.processes.get(&process).copied().or(ended).unwrap_or(self.launch_stack)
    }

    /// Where a call goes (see the module docs).
    fn route(&mut self, stop: &SyscallStop) -> Route {
        match stop.call() {
            Syscall::Socket(c)
                if c.domain == libc::AF_NETLINK
                    && self.stacks[self.stack_of(stop.process)].inside(&self.network).is_some() =>
            {
                Route::NewNetlink(self.stack_of(stop.process), c)
            }
            Syscall::Socket(c)
                if c.domain == libc::AF_PACKET
                    && self.fence == Fence::Namespaces
                    && self.stacks[self.stack_of(stop.process)].inside(&self.network).is_some() =>
            {
                Route::NewPacket(self.stack_of(stop.process), c)
            }
            Syscall::Socket(_) | Syscall::Socketpair(_) => {
                Route::Create(self.stack_of(stop.process))
            }
            call => {
                let Some(fd) = call.fd() else { return Route::Kernel(None) };
                match self.sockets.resolve(stop.tid, fd, || stop.copy_fd(fd)) {
                    Ok(FdTarget::Socket(socket)) => match self.sockets.get(socket) {
                        Some(&Owner::Stack(stack)) => Route::Socket(stack, socket),
                        Some(&Owner::Netlink(stack)) => Route::Netlink(stack, socket),
                        None => Route::Kernel(Some(socket)),
                    },
                    _ => Route::Kernel(None),
                }
            }
        }
    }

    /// Marks stack `stack` for a round: a call changed it.
    fn poke(&mut self, stack: StackId) {
        if let Some((_, poked)) = self.rounds.get_mut(stack) {
            *poked = true;
        }
    }

    /// Lets the network run until nothing moves (or for a bounded number of rounds,
    /// to come back soon): packets between stacks, connects, arrivals.
    ///
    /// A stack takes part in a round if it was busy in the last, its deadline
    /// is due, frames wait for it, a call touched it, or (in the first round) one
    /// of its event sources fired: a session of a thousand stacks serves only
    /// those with work.
    fn run_network(&mut self, now: Instant, ready: &[RawFd]) -> Option<Instant> {
        /// Rounds per call: enough for a handshake across a router, few enough
        /// that traced programs are not kept waiting behind a bulk transfer.
        const MAX_ROUNDS: usize = 64;
        self.rounds.resize(self.stacks.len(), (Activity { busy: true, deadline: None }, true));
        let mut deadline = None;
        for round in 0..MAX_ROUNDS {
            // What turned readable is read in the first round (to the end: the
            // sources are edge-triggered); later rounds only move the network.
            let ready = if round == 0 { ready } else { &[] };
            // Plugs that read descriptors of their own go first: what they
            // send waits at the stacks' links for this round.
            self.network.ready(ready, now);
            let mut activity = Activity::default();
            for (stack, (last, poked)) in self.stacks.iter_mut().zip(&mut self.rounds) {
                let due = last.deadline.is_some_and(|at| at <= now);
                let wanted = last.busy || due || *poked;
                if !wanted
                    && !ready.iter().any(|&fd| stack.watches(fd))
                    && !stack.frames_waiting(&self.network)
                {
                    activity.deadline = earliest(activity.deadline, last.deadline);
                    continue;
                }
                *poked = false;
                *last = stack.service(&mut self.network, now, ready);
                activity = activity.and(*last);
            }
            let plugs = Activity { busy: self.network.busy(), deadline: self.network.poll(now) };
            activity = activity.and(plugs);
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
                        self.show_proc_net(pid, stack);
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
        let now = Instant::now();
        let uplinks = self.mounted_uplinks.iter().map(|u| u.status(now)).collect();
        status::StatusReport { supervisor: std::process::id() as i32, stacks, uplinks }
    }
}

impl Module for Vunet {
    fn name(&self) -> &'static str {
        "vunet"
    }

    fn trap_rules(&self) -> Vec<TrapRule> {
        let not_unix = ArgTest::IntNotEqual(libc::AF_UNIX as u32);
        let mut rules = vec![
            // Served by making the carrier here and giving it to the program.
            TrapRule::when(libc::SYS_socket, 0, not_unix).notified(),
            TrapRule::when(libc::SYS_socketpair, 0, not_unix).notified(),
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
        if let Some(answer) = self.interface_request(stop) {
            return answer;
        }
        let (stack, disposition) = match self.route(stop) {
            Route::Kernel(socket) => {
                let disposition = Disposition::of(self.kernel_call(stop, socket));
                return Answer { by: self.kernel.clone(), disposition };
            }
            Route::Create(stack) => {
                let mut claims = Claims { table: &mut self.sockets, owner: Owner::Stack(stack) };
                let disposition = Disposition::of(self.stacks[stack].create(stop, &mut claims));
                self.count_unfinished(disposition);
                (stack, disposition)
            }
            Route::Socket(stack, socket) => {
                (stack, Disposition::of(self.stacks[stack].on_socket(socket, stop)))
            }
            Route::NewNetlink(stack, call) => {
                if self.netlink.is_full() {
                    // Closed ones may still be counted: they are let go of first.
                    self.sweep();
                }
                let mut claims = Claims { table: &mut self.sockets, owner: Owner::Netlink(stack) };
                let disposition =
                    Disposition::of(self.netlink.create(stop, &mut claims, stack, call));
                self.count_unfinished(disposition);
                return Answer { by: self.stacks[stack].name().clone(), disposition };
            }
            Route::NewPacket(stack, call) => {
                let disposition = Disposition::of(self.new_packet_socket(stop, stack, call));
                return Answer { by: self.stacks[stack].name().clone(), disposition };
            }
            Route::Netlink(stack, socket) => {
                let disposition = Disposition::of(self.netlink.on_socket(stop, socket));
                return Answer { by: self.stacks[stack].name().clone(), disposition };
            }
        };
        self.poke(stack);
        if disposition == Disposition::KernelThenFinish {
            self.in_flight.insert(stop.tid, stack);
        }
        Answer { by: self.stacks[stack].name().clone(), disposition }
    }

    fn finish(&mut self, stop: &mut SyscallStop) {
        if let Some(msgvec) = self.native_mmsg.remove(&stop.tid) {
            return stop.finish_as_first_message(msgvec);
        }
        if self.netlink.is_pending(stop.tid) {
            self.netlink.finish(stop, &mut self.sockets);
            return self.sweep_after_call();
        }
        let Some(stack) = self.in_flight.remove(&stop.tid) else {
            return;
        };
        let mut claims = Claims { table: &mut self.sockets, owner: Owner::Stack(stack) };
        self.stacks[stack].finish(stop, &mut claims);
        self.poke(stack);
        self.sweep_after_call();
    }

    fn describe(&self, memory: &TraceeMemory, call: &Syscall, result: i64) -> String {
        crate::syscall::render::arguments(memory, call, result)
    }

    fn process_started(&mut self, process: Pid, parent: Option<Pid>) {
        let stack = parent.map_or(self.launch_stack, |p| self.stack_of(p));
        self.processes.insert(process, stack);
        self.show_proc_net(process, stack);
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
        let sweep = earliest(self.sweep_if_due(now), self.packet.refresh(now));
        // What each stack's sockets are, listed once for all requests of the
        // round (a smoltcp stack asks the kernel of every AF_UNIX socket).
        let mut listed = HashMap::new();
        for (socket, stack) in self.netlink.ready(&ready) {
            let mut host = StackHost::new(&mut *self.stacks[stack], &mut self.network);
            host.sockets = listed.remove(&stack);
            let changed = self.netlink.serve(socket, &mut host);
            if let Some(sockets) = host.sockets.take() {
                listed.insert(stack, sockets);
            }
            if changed {
                self.stack_changed(stack);
            }
        }
        let counted = self.procnet.as_mut().map(|p| p.counters_due(now)).unwrap_or_default();
        self.refresh_proc_net(&counted, true);
        let sweep = earliest(sweep, self.netlink.deadline(now));
        let deadline = earliest(self.run_network(now, &ready), sweep);
        if let Some(audit) = &mut self.uplinks.egress.borrow_mut().audit {
            let stacks = &self.stacks;
            audit.flush(&|stack, tcp, source| {
                let stack = stacks.iter().find(|s| **s.name() == *stack)?;
                Some(stack.originator(tcp, source)?.as_raw())
            });
        }
        deadline
    }

    fn process_ended(&mut self, process: Pid) {
        // Kept for a child whose creator was killed before it was told of.
        self.last_ended = self.processes.remove(&process).map(|stack| (process, stack));
        if let Some(procnet) = &mut self.procnet {
            procnet.forget(process);
        }
    }

    fn thread_ended(&mut self, tid: Pid) {
        self.sockets.forget_thread(tid);
        self.in_flight.remove(&tid);
        self.native_mmsg.remove(&tid);
        self.netlink.thread_ended(tid);
        for stack in &mut self.stacks {
            stack.thread_ended(tid);
        }
    }
}

/// A stack as the programs on it reach it from inside (see [`inside::Host`]).
struct StackHost<'a> {
    stack: &'a mut dyn Stack,
    network: &'a mut Network,
    /// Its sockets, once listed.
    sockets: Option<Vec<inside::sock_diag::SocketView>>,
}

impl<'a> StackHost<'a> {
    /// `stack` on `network`, its sockets not listed yet.
    fn new(stack: &'a mut dyn Stack, network: &'a mut Network) -> Self {
        StackHost { stack, network, sockets: None }
    }
}

impl inside::Host for StackHost<'_> {
    fn view(&self) -> inside::Inside {
        self.stack.inside(self.network).unwrap_or_default()
    }

    fn change(
        &mut self,
        change: &inside::change::Change,
    ) -> Result<Vec<inside::change::Event>, inside::Errno> {
        self.stack.change(self.network, change)
    }

    fn sockets(&mut self) -> Vec<inside::sock_diag::SocketView> {
        let stack = &*self.stack;
        self.sockets.get_or_insert_with(|| stack.sockets().unwrap_or_default()).clone()
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
