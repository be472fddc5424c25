//! The session's control channel: how `netvm stack` and `netvm status` talk to a
//! running supervisor.
//!
//! A supervisor listens on the abstract `AF_UNIX` `SOCK_SEQPACKET` name
//! `netvm-<supervisor pid>.ctl` (`@netvm-<pid>.ctl` in `/proc/net/unix`). A client
//! connects, sends one [`Request`] as JSON in one message, and reads one [`Reply`] as
//! JSON: the messages it receives up to the end of the connection, concatenated
//! (a large reply comes in several). Then both sides close.
//!
//! Every request carries the pid of the process that sent it, checked by the kernel
//! (`SO_PASSCRED`/`SCM_CREDENTIALS`, or `SO_PEERCRED` if the message came without
//! credentials), so the supervisor knows who asks without trusting what it is told.
//! The other way round, a client checks (`SO_PEERCRED`) that the process listening
//! is the supervisor it meant: anyone can bind an abstract name first.
//!
//! The server side never blocks: [`ControlSocket::serve`] accepts what is pending,
//! answers the clients whose request has arrived, writes what their sockets take,
//! and keeps the others for a later call. Its [`ControlSocket::as_raw_fd`] is an
//! epoll descriptor that becomes readable whenever `serve` has something to do.

use std::collections::HashMap;
use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    self, AddressFamily, Backlog, ControlMessageOwned, MsgFlags, SockFlag, SockType, UnixAddr,
    UnixCredentials, sockopt,
};
use nix::sys::time::TimeVal;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::status::StatusReport;

/// What a client asks of a session.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// Move the sending process to the stack `name` (`netvm stack NAME`).
    UseStack {
        /// The stack's name.
        name: String,
    },
    /// Report the session's state (`netvm status`).
    Status,
}

/// The session's answer.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// Done.
    Ok,
    /// Refused or failed, with the reason, for a person.
    Error {
        /// Why, as one line: `no stack named `x`: this session mounts ...`.
        message: String,
    },
    /// The answer to [`Request::Status`].
    Status {
        /// The session's state.
        report: StatusReport,
    },
}

impl Reply {
    /// An [`Reply::Error`] with `message`.
    pub fn error(message: impl Into<String>) -> Self {
        Self::Error { message: message.into() }
    }
}

/// How long a client waits for its reply, and how long the server keeps a client
/// that has not sent its request or not read its reply.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The most connections the server keeps waiting; beyond, the oldest are dropped.
const MAX_PENDING: usize = 64;

/// The largest request the server reads, and the largest message a client takes.
const MAX_MESSAGE: usize = 64 * 1024;

/// How much of a reply goes in one message (well under the default socket buffer).
const CHUNK: usize = 32 * 1024;

/// The abstract socket name of the session whose supervisor is `supervisor`,
/// without the leading NUL: `netvm-1234.ctl`.
pub fn socket_name(supervisor: Pid) -> String {
    format!("netvm-{supervisor}.ctl")
}

fn address(supervisor: Pid) -> io::Result<UnixAddr> {
    Ok(UnixAddr::new_abstract(socket_name(supervisor).as_bytes())?)
}

const LISTENER: Token = Token(0);
/// The token of the channel of clients from outside (connections count from 1).
const OUTSIDE: Token = Token(usize::MAX);

/// A socket listening on the control name of the session whose supervisor is
/// `supervisor`, taking credentials with every message. Fails with `AddrInUse` if
/// the name is taken (by another process that chose it first).
pub fn listening_socket(supervisor: Pid) -> io::Result<OwnedFd> {
    let listener = socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    socket::setsockopt(&listener, sockopt::PassCred, &true)?;
    socket::bind(listener.as_raw_fd(), &address(supervisor)?)?;
    socket::listen(&listener, Backlog::new(MAX_PENDING as i32)?)?;
    Ok(listener)
}

/// A connection the server has accepted and not finished with.
struct Connection {
    fd: OwnedFd,
    since: Instant,
    /// The reply and how much of it is sent, once the request has been answered.
    reply: Option<(Vec<u8>, usize)>,
    /// For a client handed over from the host's namespace: whether it is the
    /// session's user or root, as judged there (see [`crate::sandbox`]).
    vouched: Option<bool>,
}

/// What became of a connection after a step.
enum Progress {
    /// Waiting for the client (its request, or room for the reply).
    Waiting,
    /// Finished, or broken: close it.
    Done,
}

/// The supervisor's end of the control channel.
pub struct ControlSocket {
    listener: OwnedFd,
    /// Where clients from outside the session's namespaces are handed over.
    outside: Option<OwnedFd>,
    /// Readiness of the listener and of every connection, as one descriptor.
    poll: Poll,
    events: Events,
    connections: HashMap<Token, Connection>,
    next_token: usize,
}

impl ControlSocket {
    /// Listens on the control socket of the session whose supervisor is
    /// `supervisor` (normally the calling process). Fails with `AddrInUse` if the
    /// name is taken (by another process that chose it first).
    pub fn bind(supervisor: Pid) -> io::Result<Self> {
        let listener = listening_socket(supervisor)?;
        let poll = Poll::new()?;
        poll.registry().register(
            &mut SourceFd(&listener.as_raw_fd()),
            LISTENER,
            Interest::READABLE,
        )?;
        Ok(Self {
            listener,
            outside: None,
            poll,
            events: Events::with_capacity(64),
            connections: HashMap::new(),
            next_token: 1,
        })
    }

    /// Also serves the clients handed over on `channel` from the session's listener
    /// in the host's namespaces (see [`crate::sandbox::Entered::outside_clients`]).
    pub fn serve_outside(&mut self, channel: OwnedFd) -> io::Result<()> {
        self.poll.registry().register(
            &mut SourceFd(&channel.as_raw_fd()),
            OUTSIDE,
            Interest::READABLE,
        )?;
        self.outside = Some(channel);
        Ok(())
    }

    /// A descriptor that is readable when [`serve`](Self::serve) has work: a new
    /// client, a request that arrived, room for a reply. It is an epoll descriptor;
    /// register it (for reading) with the supervisor's poll.
    pub fn as_raw_fd(&self) -> RawFd {
        self.poll.as_raw_fd()
    }

    /// How many connections are waiting (for their request or to take their reply).
    pub fn pending(&self) -> usize {
        self.connections.len()
    }

    /// Does all the work that can be done now without blocking: accepts the new
    /// clients, passes each request that has arrived to `handle` with the pid of the
    /// process that sent it, and sends the replies. A request that is not valid
    /// JSON, or not a [`Request`], is answered with [`Reply::Error`] without calling
    /// `handle`. Clients that have not sent their request yet are kept for a later
    /// call (for [`TIMEOUT`], and at most a few dozen).
    pub fn serve(&mut self, mut handle: impl FnMut(Request, Pid) -> Reply) {
        // New clients first, so that the readiness their registration raises is
        // drained with the rest. The registrations are edge-triggered: what happens
        // after the drain stays queued and wakes the caller again, and what was
        // drained is seen below, since every connection is looked at (there are only
        // ever a few). So the descriptor is readable exactly when there is work.
        self.accept_all();
        self.receive_outside();
        loop {
            match self.poll.poll(&mut self.events, Some(Duration::ZERO)) {
                Ok(()) if self.events.iter().count() == self.events.capacity() => continue,
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("control socket: epoll: {e}");
                    break;
                }
            }
        }
        let now = Instant::now();
        let tokens: Vec<Token> = self.connections.keys().copied().collect();
        for token in tokens {
            let connection = self.connections.get_mut(&token).expect("a live token");
            let progress = match connection.reply {
                None => connection.read(&mut handle),
                Some(_) => Progress::Waiting,
            };
            let progress = match (progress, &connection.reply) {
                (Progress::Waiting, Some(_)) => connection.write(),
                (progress, _) => progress,
            };
            let expired = now.duration_since(connection.since) > TIMEOUT;
            if matches!(progress, Progress::Done) || expired {
                if expired {
                    log::debug!("control socket: dropped a client that took too long");
                }
                self.close(token);
            }
        }
        while self.connections.len() > MAX_PENDING {
            let oldest = self.connections.iter().min_by_key(|(_, c)| c.since).map(|(t, _)| *t);
            if let Some(token) = oldest {
                log::debug!("control socket: too many clients waiting; dropped the oldest");
                self.close(token);
            }
        }
    }

    fn accept_all(&mut self) {
        loop {
            let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
            let fd = match socket::accept4(self.listener.as_raw_fd(), flags) {
                // SAFETY: accept4 returned a new descriptor that nothing else owns.
                Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
                Err(Errno::EINTR | Errno::ECONNABORTED) => continue,
                Err(Errno::EAGAIN) => return,
                Err(e) => {
                    // EMFILE and the like: leave the client queued for a later call.
                    log::warn!("control socket: accept: {e}");
                    return;
                }
            };
            self.add(fd, None);
        }
    }

    /// Takes the clients the host-side helper handed over.
    fn receive_outside(&mut self) {
        while let Some(channel) = &self.outside {
            match crate::sandbox::receive_client(channel) {
                Ok(Some((fd, vouched))) => {
                    // The helper accepted it blocking; the server never blocks.
                    let _ = nix::fcntl::fcntl(
                        &fd,
                        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                    );
                    self.add(fd, Some(vouched));
                }
                Ok(None) => return,
                Err(e) => {
                    log::warn!("control socket: clients from outside the session: {e}");
                    if let Some(channel) = self.outside.take() {
                        let _ =
                            self.poll.registry().deregister(&mut SourceFd(&channel.as_raw_fd()));
                    }
                }
            }
        }
    }

    fn add(&mut self, fd: OwnedFd, vouched: Option<bool>) {
        let token = Token(self.next_token);
        self.next_token += 1;
        let registered = self.poll.registry().register(
            &mut SourceFd(&fd.as_raw_fd()),
            token,
            Interest::READABLE | Interest::WRITABLE,
        );
        if let Err(e) = registered {
            log::warn!("control socket: epoll: {e}");
            return;
        }
        self.connections
            .insert(token, Connection { fd, since: Instant::now(), reply: None, vouched });
    }

    fn close(&mut self, token: Token) {
        if let Some(connection) = self.connections.remove(&token) {
            let _ = self.poll.registry().deregister(&mut SourceFd(&connection.fd.as_raw_fd()));
        }
    }
}

impl AsRawFd for ControlSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.poll.as_raw_fd()
    }
}

impl Connection {
    /// Reads the request if it has come, and answers it.
    fn read(&mut self, handle: &mut impl FnMut(Request, Pid) -> Reply) -> Progress {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let mut space = nix::cmsg_space!(UnixCredentials);
        let (len, truncated, credentials) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match socket::recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(msg) => {
                    let credentials = msg.cmsgs().ok().and_then(|mut cmsgs| {
                        cmsgs.find_map(|c| match c {
                            ControlMessageOwned::ScmCredentials(c) => Some(c.pid()),
                            _ => None,
                        })
                    });
                    break (msg.bytes, msg.flags.contains(MsgFlags::MSG_TRUNC), credentials);
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return Progress::Waiting,
                Err(_) => return Progress::Done,
            }
        };
        if len == 0 {
            // The client went away (or sent an empty message, which is no request).
            return Progress::Done;
        }
        let sender = credentials.filter(|&pid| pid > 0).or_else(|| {
            socket::getsockopt(&self.fd, sockopt::PeerCredentials)
                .ok()
                .map(|c| c.pid())
                .filter(|&pid| pid > 0)
        });
        // A session answers its own user (and root) only: its report names
        // processes, addresses and sockets.
        let allowed = self.vouched.unwrap_or_else(|| {
            let peer_uid = socket::getsockopt(&self.fd, sockopt::PeerCredentials).map(|c| c.uid());
            // SAFETY: getuid has no preconditions and cannot fail.
            let own_uid = unsafe { libc::getuid() };
            matches!(peer_uid, Ok(uid) if uid == own_uid || uid == 0)
        });
        let reply = if !allowed {
            Reply::error("this session belongs to another user")
        } else if truncated {
            Reply::error(format!("the request is too long (over {MAX_MESSAGE} bytes)"))
        } else {
            match (serde_json::from_slice::<Request>(&buf[..len]), sender) {
                (Err(e), _) => Reply::error(format!("not a valid request: {e}")),
                (Ok(_), None) => Reply::error("cannot tell which process sent the request"),
                (Ok(request), Some(pid)) => handle(request, Pid::from_raw(pid)),
            }
        };
        let bytes = serde_json::to_vec(&reply).unwrap_or_else(|e| {
            serde_json::to_vec(&Reply::error(format!("cannot encode the reply: {e}")))
                .expect("a plain error encodes")
        });
        self.reply = Some((bytes, 0));
        self.since = Instant::now();
        Progress::Waiting
    }

    /// Sends what the socket takes of the reply; done when all of it is sent.
    fn write(&mut self) -> Progress {
        let Some((bytes, sent)) = &mut self.reply else {
            return Progress::Waiting;
        };
        while *sent < bytes.len() {
            let end = bytes.len().min(*sent + CHUNK);
            match socket::send(
                self.fd.as_raw_fd(),
                &bytes[*sent..end],
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
            ) {
                Ok(n) => *sent += n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return Progress::Waiting,
                Err(_) => return Progress::Done,
            }
        }
        Progress::Done
    }
}

/// Sends `request` to the session whose supervisor is `supervisor` and waits (up to
/// [`TIMEOUT`]) for its reply. No session there gives `ConnectionRefused`; a socket
/// of that name that another process listens on gives `PermissionDenied`; no reply
/// in time gives `TimedOut`.
pub fn request(supervisor: Pid, request: &Request) -> io::Result<Reply> {
    let fd =
        socket::socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None)?;
    // With credentials asked for on this side too, every message carries them,
    // even one sent before the server has accepted the connection.
    socket::setsockopt(&fd, sockopt::PassCred, &true)?;
    let deadline = Instant::now() + TIMEOUT;
    // Bounds connect (when the server's backlog is full) and send. The reply is
    // waited for with poll, which a session does not trap: each call a session
    // traps costs a round trip through the supervisor.
    let timeout =
        TimeVal::from(libc::timeval { tv_sec: TIMEOUT.as_secs() as libc::time_t, tv_usec: 0 });
    socket::setsockopt(&fd, sockopt::SendTimeout, &timeout)?;
    let to = address(supervisor)?;
    until_done(|| socket::connect(fd.as_raw_fd(), &to))?;
    // The kernel names the process that listens: a name taken by anyone but the
    // supervisor (who could take it first: abstract names have no owner) is refused.
    let server = socket::getsockopt(&fd, sockopt::PeerCredentials)?.pid();
    if server != supervisor.as_raw() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "its control socket, {}, is held by process {server}, not by the supervisor",
                socket_name(supervisor)
            ),
        ));
    }
    let message = serde_json::to_vec(request).map_err(io::Error::other)?;
    until_done(|| socket::send(fd.as_raw_fd(), &message, MsgFlags::MSG_NOSIGNAL))?;
    let reply = receive_reply(&fd, deadline)?;
    serde_json::from_slice(&reply).map_err(|e| {
        io::Error::new(io::ErrorKind::InvalidData, format!("the session's reply is not valid: {e}"))
    })
}

/// The error of a session that did not answer in time.
fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the session did not answer in time")
}

/// Makes `call` until it is not interrupted; `EAGAIN` (the socket's send timeout)
/// is a session that did not answer in time.
fn until_done<T>(mut call: impl FnMut() -> nix::Result<T>) -> io::Result<T> {
    loop {
        match call() {
            Ok(value) => return Ok(value),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Err(timed_out()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reads the session's reply on `fd`, message by message until the session closes
/// the connection, waiting no later than `deadline`.
fn receive_reply(fd: &OwnedFd, deadline: Instant) -> io::Result<Vec<u8>> {
    let mut reply = Vec::new();
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        match socket::recv(fd.as_raw_fd(), &mut buf, MsgFlags::MSG_TRUNC | MsgFlags::MSG_DONTWAIT) {
            Ok(0) => break,
            Ok(n) if n > buf.len() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the session's reply came in a message too long",
                ));
            }
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => {
                let left = deadline.saturating_duration_since(Instant::now());
                // Rounded up to a whole millisecond, so that it never spins.
                let left = PollTimeout::try_from(left + Duration::from_micros(999))
                    .unwrap_or(PollTimeout::MAX);
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, left) {
                    Ok(0) => return Err(timed_out()),
                    Ok(_) | Err(Errno::EINTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    if reply.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the session closed the connection without answering",
        ));
    }
    Ok(reply)
}

/// The session the calling process runs in: its tracer, if it has one and that
/// tracer has a control socket. `None` outside any session (or under a tracer
/// that is no netvm, such as strace or gdb).
pub fn session_of_self() -> Option<Pid> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let tracer = status_field(&status, "TracerPid:")?;
    if tracer <= 0 {
        return None;
    }
    // TracerPid names the tracing thread; the socket is named after its process.
    let process = std::fs::read_to_string(format!("/proc/{tracer}/status"))
        .ok()
        .and_then(|s| status_field(&s, "Tgid:"))
        .unwrap_or(tracer);
    let pid = Pid::from_raw(process);
    sessions().contains(&pid).then_some(pid)
}

fn status_field(status: &str, key: &str) -> Option<i32> {
    status.lines().find_map(|line| line.strip_prefix(key)).and_then(|v| v.trim().parse().ok())
}

/// The supervisors of every running session that this process can see: those
/// listening on a control socket in `/proc/net/unix`, by pid, in order.
pub fn sessions() -> Vec<Pid> {
    std::fs::read("/proc/net/unix").map(|table| parse_sessions(&table)).unwrap_or_default()
}

/// The listening control sockets in a `/proc/net/unix` table
/// (`Num RefCount Protocol Flags Type St Inode [Path]`).
fn parse_sessions(table: &[u8]) -> Vec<Pid> {
    /// `__SO_ACCEPTCON`: the socket listens.
    const ACCEPTING: u32 = 1 << 16;
    let mut pids: Vec<Pid> = table
        .split(|&b| b == b'\n')
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&[u8]> =
                line.split(|b| b.is_ascii_whitespace()).filter(|f| !f.is_empty()).collect();
            let [_, _, _, flags, kind, _, _, path] = fields[..] else {
                return None;
            };
            let flags = u32::from_str_radix(std::str::from_utf8(flags).ok()?, 16).ok()?;
            let kind = u32::from_str_radix(std::str::from_utf8(kind).ok()?, 16).ok()?;
            if flags & ACCEPTING == 0 || kind != libc::SOCK_SEQPACKET as u32 {
                return None;
            }
            let digits = path.strip_prefix(b"@netvm-")?.strip_suffix(b".ctl")?;
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let pid: i32 = std::str::from_utf8(digits).ok()?.parse().ok()?;
            (pid > 0).then(|| Pid::from_raw(pid))
        })
        .collect();
    pids.sort_unstable_by_key(|p| p.as_raw());
    pids.dedup();
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_are_tagged_json() {
        let use_stack = Request::UseStack { name: "lwip1".into() };
        let json = serde_json::to_string(&use_stack).unwrap();
        assert_eq!(json, r#"{"request":"use_stack","name":"lwip1"}"#);
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), use_stack);
        assert_eq!(serde_json::to_string(&Request::Status).unwrap(), r#"{"request":"status"}"#);
        assert_eq!(serde_json::to_string(&Reply::Ok).unwrap(), r#"{"reply":"ok"}"#);
        assert_eq!(
            serde_json::to_string(&Reply::error("no")).unwrap(),
            r#"{"reply":"error","message":"no"}"#
        );
        let status = Reply::Status { report: StatusReport { supervisor: 9, ..Default::default() } };
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(
            json,
            r#"{"reply":"status","report":{"supervisor":9,"stacks":[],"uplinks":[]}}"#
        );
        assert_eq!(serde_json::from_str::<Reply>(&json).unwrap(), status);
    }

    #[test]
    fn finds_listening_control_sockets_only() {
        let table = b"Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000: 00000002 00000000 00010000 0005 01 100 @netvm-4242.ctl\n\
            0000: 00000003 00000000 00000000 0005 03 101 @netvm-4242.ctl\n\
            0000: 00000002 00000000 00010000 0005 01 102 @netvm-17.ctl\n\
            0000: 00000002 00000000 00010000 0001 01 103 @netvm-18.ctl\n\
            0000: 00000002 00000000 00010000 0005 01 104 @netvm-19.ctl.x\n\
            0000: 00000002 00000000 00010000 0005 01 105 @netvm-.ctl\n\
            0000: 00000002 00000000 00010000 0005 01 106 /tmp/netvm-20.ctl\n\
            0000: 00000002 00000000 00010000 0005 01 107 @netvm-+21.ctl\n\
            0000: 00000002 00000000 00010000 0005 01 108 @nv\xff\x00\x01\n\
            0000: 00000003 00000000 00000000 0001 03 109\n";
        assert_eq!(parse_sessions(table), [Pid::from_raw(17), Pid::from_raw(4242)]);
    }

    #[test]
    fn reads_status_fields() {
        let status = "Name:\tcat\nTgid:\t77\nPid:\t78\nTracerPid:\t0\n";
        assert_eq!(status_field(status, "Tgid:"), Some(77));
        assert_eq!(status_field(status, "TracerPid:"), Some(0));
        assert_eq!(status_field(status, "Missing:"), None);
    }

    #[test]
    fn an_untraced_process_is_in_no_session() {
        // The test runner is not traced (or, if it is, not by a netvm).
        assert_eq!(session_of_self(), None);
    }
}
