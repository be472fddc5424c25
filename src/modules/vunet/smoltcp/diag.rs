//! What a `smoltcp` stack tells `ss` of its sockets (`NETLINK_SOCK_DIAG`, see
//! [`sock_diag`](crate::modules::vunet::inside::sock_diag)): the program's
//! sockets in its table, never the supervisor's stand-ins or private ends.
//!
//! The table knows each socket's addresses and what Linux would call its state;
//! the rest is the carrier's, and the kernel knows that: one `unix_diag` dump of
//! the supervisor's own network namespace (where the carriers live) gives each
//! carrier's owner, queues and shutdown state. A carrier's owner is the uid its
//! `socket()` ran as (`sock_i_uid`), which is what Linux reports for the virtual
//! socket; its receive queue is what the program has yet to read; a listening
//! carrier's queue is the connections waiting for `accept`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use super::inet::Family;
use super::options::tcp_state;
use super::ports::Proto;
use super::stack::SmoltcpStack;
use super::table::VSocket;
use crate::fdtable::SocketId;
use crate::modules::vunet::inside::sock_diag::{RCV_SHUTDOWN, SEND_SHUTDOWN, SocketView};
use crate::modules::vunet::inside::sock_diag::{Transport, state};

/// What the kernel says of one carrier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct CarrierFacts {
    /// Its owner, if the kernel said.
    uid: Option<u32>,
    /// A listener's waiting connections, else the bytes waiting to be read.
    rqueue: u32,
    /// `sk_shutdown` (`RCV_SHUTDOWN`: the peer sent its last byte).
    shutdown: u8,
}

impl SmoltcpStack {
    /// The program's sockets, as `ss` would list them on Linux.
    pub(super) fn socket_views(&self) -> Vec<SocketView> {
        let carriers = carrier_facts().unwrap_or_else(|e| {
            log::debug!("unix_diag: {e}: carriers' owners and queues unknown");
            HashMap::new()
        });
        // Without the kernel's word, the session's user (the supervisor's).
        // SAFETY: geteuid has no preconditions and cannot fail.
        let session_user = unsafe { libc::geteuid() };
        self.table
            .iter()
            .filter(|(_, socket)| !socket.stand_in && socket.proto != Proto::Icmp)
            .map(|(id, socket)| {
                let facts = carriers.get(&id.0).copied().unwrap_or_default();
                self.socket_view(id, socket, facts, session_user)
            })
            .collect()
    }

    /// Socket `id` as `inet_diag` reports it, its carrier being as `facts` say
    /// (its owner `session_user` if they do not say).
    fn socket_view(
        &self,
        id: SocketId,
        socket: &VSocket,
        facts: CarrierFacts,
        session_user: u32,
    ) -> SocketView {
        let family = socket.family;
        let none = SocketAddr::new(family.unspecified(), 0);
        let remote = socket.peer.unwrap_or(none);
        let mut local = socket.local.unwrap_or(none);
        if local.ip().is_unspecified() && socket.peer.is_some() {
            // A connected socket is bound to the source its route gives.
            local.set_ip(self.host.source_for(remote.ip()));
        }
        let shut_wr = if socket.shut_wr { SEND_SHUTDOWN } else { 0 };
        let shutdown = facts.shutdown | shut_wr;
        let peer_done = shutdown & RCV_SHUTDOWN != 0;
        let state = self.linux_state(id, socket, peer_done);
        let (rqueue, wqueue) = match (socket.proto, state) {
            (Proto::Tcp, state::LISTEN) => (facts.rqueue, socket.backlog),
            (Proto::Tcp, _) => (facts.rqueue, 0),
            _ => (0, 0),
        };
        SocketView {
            family: family.raw() as u8,
            transport: match (socket.proto, family) {
                (Proto::Tcp, _) => Transport::Tcp,
                (Proto::Udp, _) => Transport::Udp,
                (_, Family::V4) => Transport::Raw(libc::IPPROTO_ICMP as u8),
                (_, Family::V6) => Transport::Raw(libc::IPPROTO_ICMPV6 as u8),
            },
            state,
            local,
            remote,
            rqueue,
            wqueue,
            uid: facts.uid.unwrap_or(session_user),
            inode: id.0,
            // The inode is unique among the session's sockets, and never 0.
            cookie: id.0,
            shutdown,
            v6only: socket.options.v6only,
            port_locked: socket.locks.port,
        }
    }

    /// Socket `id`'s state as Linux numbers it (`TCP_*`): a TCP socket's from its
    /// listen, its connect and which sides are done sending (`peer_done`: the
    /// peer's, as its carrier shows); a datagram socket is established once
    /// connected, closed before.
    pub(super) fn linux_state(&self, id: SocketId, socket: &VSocket, peer_done: bool) -> u8 {
        let connected = socket.peer.is_some();
        match socket.proto {
            Proto::Tcp if !socket.listening && connected && self.is_dialing(id) => {
                state::SYN_SENT
            }
            Proto::Tcp => tcp_state(socket.listening, connected, socket.shut_wr, peer_done),
            _ if connected => state::ESTABLISHED,
            _ => state::CLOSE,
        }
    }

    /// Whether socket `id`'s connect across the network waits for its handshake.
    fn is_dialing(&self, id: SocketId) -> bool {
        self.net.as_ref().is_some_and(|net| net.gate_of(id).is_some())
    }
}

/// `unix_diag` request and answer layouts (`linux/unix_diag.h`).
mod unix_diag {
    /// `sizeof(struct unix_diag_req)`.
    pub const REQUEST_LEN: usize = 24;
    /// `sizeof(struct unix_diag_msg)`.
    pub const MESSAGE_LEN: usize = 16;
    /// `UDIAG_SHOW_RQLEN | UDIAG_SHOW_UID`.
    pub const SHOW: u32 = 0x10 | 0x40;
    /// Attribute types of an answer.
    pub const RQLEN: u16 = 4;
    pub const SHUTDOWN: u16 = 6;
    pub const UID: u16 = 7;
}

/// The kernel's facts about every `AF_UNIX` socket of the supervisor's network
/// namespace, by inode: one `unix_diag` dump.
fn carrier_facts() -> std::io::Result<HashMap<u64, CarrierFacts>> {
    use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType};
    let socket = nix::sys::socket::socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )?;
    let timeout = nix::sys::time::TimeVal::new(1, 0);
    nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::ReceiveTimeout, &timeout)?;
    nix::sys::socket::send(socket.as_raw_fd(), &dump_request(), MsgFlags::empty())?;
    let mut facts = HashMap::new();
    let mut buffer = vec![0u8; 32 * 1024];
    loop {
        let len = nix::sys::socket::recv(socket.as_raw_fd(), &mut buffer, MsgFlags::empty())?;
        if read_answers(&buffer[..len], &mut facts)? {
            return Ok(facts);
        }
    }
}

/// A `SOCK_DIAG_BY_FAMILY` dump of every `AF_UNIX` socket, with queues and owners.
fn dump_request() -> Vec<u8> {
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    let len = 16 + unix_diag::REQUEST_LEN;
    let mut request = Vec::with_capacity(len);
    request.extend_from_slice(&(len as u32).to_ne_bytes());
    request.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    request.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
    request.extend_from_slice(&[0; 8]); // sequence, port
    request.extend_from_slice(&[libc::AF_UNIX as u8, 0, 0, 0]);
    request.extend_from_slice(&u32::MAX.to_ne_bytes()); // every state
    request.extend_from_slice(&0u32.to_ne_bytes()); // any inode
    request.extend_from_slice(&unix_diag::SHOW.to_ne_bytes());
    request.extend_from_slice(&[0xff; 8]); // no cookie
    request
}

/// Reads one datagram of the dump's answers into `facts`: whether the dump ended.
fn read_answers(datagram: &[u8], facts: &mut HashMap<u64, CarrierFacts>) -> std::io::Result<bool> {
    let mut rest = datagram;
    while rest.len() >= 16 {
        let len = u32::from_ne_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let kind = u16::from_ne_bytes([rest[4], rest[5]]);
        if len < 16 || len > rest.len() {
            break;
        }
        let body = &rest[16..len];
        match kind as i32 {
            libc::NLMSG_DONE => return Ok(true),
            libc::NLMSG_ERROR => {
                let errno = body.get(..4).map_or(0, |b| i32::from_ne_bytes(b.try_into().expect("4 bytes")));
                return Err(std::io::Error::from_raw_os_error(-errno));
            }
            _ => {
                if let Some((inode, fact)) = read_socket(body) {
                    facts.insert(inode, fact);
                }
            }
        }
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    Ok(false)
}

/// One `unix_diag_msg` and its attributes: the socket's inode and facts.
fn read_socket(body: &[u8]) -> Option<(u64, CarrierFacts)> {
    let header = body.get(..unix_diag::MESSAGE_LEN)?;
    let inode = u32::from_ne_bytes(header[4..8].try_into().ok()?);
    let word = |value: &[u8], at: usize| -> u32 {
        value.get(at..at + 4).map_or(0, |b| u32::from_ne_bytes(b.try_into().expect("4 bytes")))
    };
    let mut facts = CarrierFacts::default();
    let mut rest = &body[unix_diag::MESSAGE_LEN..];
    while rest.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        let kind = u16::from_ne_bytes([rest[2], rest[3]]);
        if len < 4 || len > rest.len() {
            break;
        }
        let value = &rest[4..len];
        match kind {
            unix_diag::RQLEN => facts.rqueue = word(value, 0),
            unix_diag::UID => facts.uid = Some(word(value, 0)),
            unix_diag::SHUTDOWN => facts.shutdown = value.first().copied().unwrap_or(0),
            _ => {}
        }
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    Some((u64::from(inode), facts))
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{UnixListener, UnixStream};

    use super::*;

    /// The kernel's facts about sockets of this test: a listener with one
    /// connection waiting, and a connection with unread bytes whose peer shut
    /// down its sending side.
    #[test]
    fn the_kernel_tells_each_carriers_owner_queue_and_shutdown() {
        let name = format!("netvm-diag-test-{}", std::process::id());
        let name = std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap();
        let listener = UnixListener::bind_addr(&name).unwrap();
        let _waiting = UnixStream::connect_addr(&name).unwrap();
        let (reader, writer) = UnixStream::pair().unwrap();
        std::io::Write::write_all(&mut &writer, b"hello").unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
        let facts = match carrier_facts() {
            Ok(facts) => facts,
            // Without unix_diag in this kernel, nothing to check.
            Err(e) => return eprintln!("SKIPPED: unix_diag: {e}"),
        };
        let inode = |fd: &dyn AsFd| crate::fdtable::identity(&fd.as_fd()).unwrap().0;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        let of_listener = facts[&inode(&listener)];
        assert_eq!((of_listener.uid, of_listener.rqueue), (Some(uid), 1));
        let of_reader = facts[&inode(&reader)];
        assert_eq!((of_reader.rqueue, of_reader.shutdown), (5, 1));
    }
}
