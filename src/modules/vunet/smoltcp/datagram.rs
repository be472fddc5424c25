//! The calls that carry addresses with data: `sendto`, `recvfrom`, `sendmsg`,
//! `recvmsg`, `sendmmsg` and `recvmmsg`. A datagram's destination is translated
//! to the receiving carrier's name on the way out, and a sender's carrier name
//! back to its virtual address on the way in (by the receives' pending states,
//! at their exits); streams ignore or blank the address as Linux TCP.

use std::net::{IpAddr, SocketAddr};

use nix::errno::Errno;

use super::carrier::{clear_carrier_error, may_broadcast};
use super::endpoint::EndpointName;
use super::errqueue::control_message;
use super::icmp;
use super::inet::{Family, datagram_address, unspecified_as_loopback};
use super::ports::Proto;
use super::sockopt::{IP_ORIGDSTADDR, IPV6_ORIGDSTADDR, IPV6_RECVTCLASS};
use super::stack::{Noted, Pending, SmoltcpStack};
use super::table::{ConnectState, VSocket};
use crate::fdtable::SocketId;
use crate::modules::vunet::Claims;
use crate::modules::vunet::sockaddr::{encode, read_in, write_out};
use crate::modules::{Disposition, Handled};
use crate::syscall::Syscall;
use crate::syscall::{Mmsg, Msg, Recvfrom, Sendto, UserPtr};
use crate::tracer::{SyscallStop, TraceeMemory};

impl SmoltcpStack {
    /// Where a datagram of `len` bytes to the address at `addr` goes, for the
    /// stopped `sendto`, `sendmsg` or `sendmmsg` on datagram socket `id`.
    fn datagram_destination(
        &mut self,
        stop: &mut SyscallStop,
        id: SocketId,
        addr: UserPtr,
        addrlen: u32,
        len: u64,
        flags: i32,
    ) -> Result<Destination, Errno> {
        self.table[id].sender = Some(stop.process);
        let socket = &self.table[id];
        let bytes = read_in(&stop.memory(), addr, addrlen)?;
        // An IPv4 address goes to IPv4's UDP, which judges the flags before it
        // reads the address.
        let names_ipv4 = bytes.len() >= 2 && sa_family(&bytes) == libc::AF_INET;
        ipv4_from_ipv6(socket, names_ipv4, flags)?;
        let Some(to) = datagram_address(&bytes, socket.family, socket.proto)? else {
            // No address after all: the connected peer, or none.
            if socket.peer.is_none() {
                return Err(Errno::EDESTADDRREQ);
            }
            self.refuse_oversize_to_peer(id, len)?;
            return Ok(Destination::Peer);
        };
        ipv4_from_ipv6(socket, to.ip().to_canonical().is_ipv4(), flags)?;
        let to = unspecified_as_loopback(to);
        // A ping or raw socket's "port" means nothing to its destination.
        if to.port() == 0 && socket.proto == Proto::Udp {
            return Err(Errno::EINVAL);
        }
        let remote = match self.host.is_local(to.ip()) {
            true => None,
            false => match self.route(to.ip()) {
                Some(route) => Some(route),
                None => return Err(Errno::ENETUNREACH),
            },
        };
        if self.host.is_broadcast(to.ip()) && !may_broadcast(stop) {
            return Err(Errno::EACCES);
        }
        if self.table[id].shut_wr {
            // Shut down for sending, connected or not: no buffer is given.
            return Err(Errno::EPIPE);
        }
        if let Some(route) = remote {
            self.refuse_oversize(id, to, route, len)?;
            let socket = &self.table[id];
            let (proto, family) = (socket.proto, socket.family);
            let source = family.map_ip(route.source);
            if let Some(socket) = self.table.get_mut(id) {
                socket.source = Some(source);
            }
            let port = if proto == Proto::Udp { to.port() } else { 0 };
            let key = SocketAddr::new(to.ip().to_canonical(), port);
            return Ok(match self.remote_name(proto, key) {
                Some(name) => Destination::Remote(name),
                None => Destination::Nobody,
            });
        }
        let source = self.host.source_for(to.ip());
        let Some(socket) = self.table.get_mut(id) else { return Ok(Destination::Nobody) };
        socket.source = Some(source);
        Ok(match socket.proto {
            // The host itself answers an echo request to one of its addresses.
            Proto::Icmp => Destination::Echo(to.ip()),
            Proto::Udp => match self.live_receiver(Proto::Udp, to) {
                Some(receiver) => Destination::Carrier(receiver),
                None => Destination::Silent(to),
            },
            Proto::Raw | Proto::Tcp => Destination::Nobody,
        })
    }

    /// Fails a receive on unconnected datagram socket `id` (at `fd`) with the
    /// error an ICMP message left it, once, as Linux's receive does before it
    /// looks for data (taking away the alarm that woke it, see `alarm.rs`).
    /// A connected socket's carrier holds its error itself.
    fn fail_with_error(&mut self, stop: &SyscallStop, id: SocketId, fd: i32) -> Result<(), Errno> {
        let socket = &self.table[id];
        if socket.peer.is_some() || !matches!(socket.proto, Proto::Icmp | Proto::Udp) {
            return Ok(());
        }
        self.alarms.take_next(stop, id, fd);
        match self.table.get_mut(id).and_then(|socket| socket.error.take()) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// The error a receive of socket `id` fails with if the datagram it took
    /// came from `sender` and was the alarm that woke it (see `alarm.rs`).
    fn alarm_error(&mut self, id: SocketId, sender: &[u8]) -> Option<Errno> {
        if !self.alarms.taken(id, sender) {
            return None;
        }
        Some(self.table.get_mut(id).and_then(|s| s.error.take()).unwrap_or(Errno::EAGAIN))
    }

    /// Binds datagram socket `id` to the wildcard and an ephemeral port before
    /// a send if it is unbound, as `inet_send_prepare` does before UDP (or ICMP)
    /// looks at the send at all, so even a send that fails leaves it bound.
    /// (A raw socket sends unbound; a stream binds as it connects.)
    fn bind_sender(
        &mut self,
        stop: &mut SyscallStop,
        id: SocketId,
    ) -> Result<Option<Disposition>, Errno> {
        let socket = &self.table[id];
        if matches!(socket.proto, Proto::Raw | Proto::Tcp) {
            return Ok(None);
        }
        self.bind_implicitly(stop, id, socket.family.unspecified())
    }

    /// The port unreachable the host answers `payload`, sent by socket `id` to
    /// `to` (one of its own addresses, a port nobody is bound to), with:
    /// reported to the socket as any ICMP error.
    fn refused_by_host(&mut self, id: SocketId, to: SocketAddr, payload: &[u8]) {
        let Some(from) = self.table.get(id).and_then(VSocket::sent_from) else { return };
        let to = SocketAddr::new(to.ip().to_canonical(), to.port());
        let error = icmp::port_unreachable(from, to, payload);
        self.with_net(|stack, net| stack.report_error(net, error));
    }

    /// [`SmoltcpStack::refuse_oversize`] for a datagram of `len` bytes from
    /// socket `id` to its connected peer, when the peer is across the network.
    fn refuse_oversize_to_peer(&mut self, id: SocketId, len: u64) -> Result<(), Errno> {
        let Some(peer) = self.table[id].peer else { return Ok(()) };
        if self.host.is_local(peer.ip()) {
            return Ok(());
        }
        match self.route(peer.ip()) {
            Some(route) => self.refuse_oversize(id, peer, route, len),
            None => Ok(()),
        }
    }

    /// Answers a data call (a send or a receive) on TCP socket `id` that is not
    /// connected as Linux TCP answers it (`tcp_recvmsg`, `tcp_sendmsg`), before
    /// it looks at anything else; `None` for the other calls. A receive says
    /// `ENOTCONN` (on a listener too; `EINVAL` for `MSG_OOB`, which finds no
    /// urgent data; `EAGAIN` for the empty error queue), or reads end of file
    /// once the socket is shut down (a failed connect shuts it); a send says
    /// `EPIPE`, with `SIGPIPE` unless `MSG_NOSIGNAL`. A failed connect's error
    /// comes first, once. (The carrier, an unconnected `AF_UNIX` stream, would
    /// say `EINVAL` and `ENOTCONN`.)
    pub(super) fn unconnected_stream(
        &mut self,
        stop: &SyscallStop,
        id: SocketId,
    ) -> Result<Option<Disposition>, Errno> {
        let socket = &self.table[id];
        if socket.proto != Proto::Tcp || socket.peer.is_some() {
            return Ok(None);
        }
        let (sending, flags) = match stop.call() {
            Syscall::Sendto(c) => (true, c.flags),
            Syscall::Sendmsg(c) => (true, c.flags),
            Syscall::Sendmmsg(c) if c.vlen > 0 => (true, c.flags),
            Syscall::Recvfrom(c) => (false, c.flags),
            Syscall::Recvmsg(c) => (false, c.flags),
            Syscall::Recvmmsg(c) if c.vlen > 0 => (false, c.flags),
            _ => return Ok(None),
        };
        let memory = stop.memory();
        // The address, or the message header and its vector and name, are
        // copied in before the socket is asked anything.
        match stop.call() {
            Syscall::Sendto(c) if c.addr.0 != 0 => {
                read_in(&memory, c.addr, c.addrlen)?;
            }
            Syscall::Sendmsg(c) | Syscall::Recvmsg(c) => {
                let header = memory.read::<libc::msghdr>(c.msg.0)?;
                if !header.msg_name.is_null() {
                    let room = name_room(header.msg_namelen)?;
                    if sending {
                        memory.read_bytes(header.msg_name as u64, room as usize)?;
                    }
                }
                iovecs(&memory, &header)?;
            }
            _ => {}
        }
        if !sending {
            if flags & libc::MSG_ERRQUEUE != 0 {
                return Err(Errno::EAGAIN);
            }
            if socket.listening {
                return Err(Errno::ENOTCONN);
            }
            if flags & libc::MSG_OOB != 0 {
                return Err(Errno::EINVAL);
            }
        }
        if let ConnectState::Failed(error) = socket.connect_state() {
            // A failed connect's error, not yet reported, is the call's (once).
            self.table.set_connect_state(id, ConnectState::Refused);
            if let Some(fd) = stop.call().fd() {
                clear_carrier_error(stop, fd);
            }
            return Err(error);
        }
        if sending {
            if flags & libc::MSG_NOSIGNAL == 0 {
                // Linux sends the calling thread SIGPIPE as the call fails.
                // SAFETY: tgkill only sends a signal to the stopped thread.
                unsafe {
                    libc::syscall(
                        libc::SYS_tgkill,
                        stop.process.as_raw(),
                        stop.tid.as_raw(),
                        libc::SIGPIPE,
                    )
                };
            }
            return Err(Errno::EPIPE);
        }
        if !socket.shut_rd {
            return Err(Errno::ENOTCONN);
        }
        end_of_file(&memory, stop.call()).map(Some)
    }

    /// `sendto` on socket `id`: a datagram goes to its receiver's carrier (or is
    /// lost, or answered by the host itself); a stream ignores the address.
    pub(super) fn sendto(&mut self, stop: &mut SyscallStop, id: SocketId, c: Sendto) -> Handled {
        // Without an address, to the connected peer.
        let to_peer = Sendto { addr: UserPtr(0), addrlen: 0, ..c };
        // The address is copied in before the socket is asked anything.
        read_in(&stop.memory(), c.addr, c.addrlen)?;
        if let Some(again) = self.bind_sender(stop, id)? {
            return Ok(again);
        }
        if self.table[id].proto == Proto::Tcp {
            // A stream ignores the address (Linux TCP does; an AF_UNIX stream would not).
            stop.rewrite(Syscall::Sendto(to_peer));
            return Ok(Disposition::Kernel);
        }
        if c.len > max_datagram(self.table[id].family) {
            return Err(Errno::EMSGSIZE);
        }
        let flags = out_of_band(&self.table[id], c.flags)?;
        if self.table[id].proto == Proto::Icmp {
            // A ping socket sends echo requests and nothing else.
            let family = self.table[id].family;
            let head = stop.memory().read_bytes(c.buf.0, (c.len as usize).min(8))?;
            if !icmp::is_echo_request(family, &head) {
                return Err(Errno::EINVAL);
            }
        }
        let destination = self.datagram_destination(stop, id, c.addr, c.addrlen, c.len, c.flags)?;
        match destination {
            // Nobody listens: the datagram is lost, the sender is not told (but
            // Linux copies it first, so a bad buffer is EFAULT).
            Destination::Nobody => {
                stop.memory().read_bytes(c.buf.0, c.len as usize)?;
                Ok(Disposition::Return(c.len as i64))
            }
            Destination::Silent(to) => {
                let payload = stop.memory().read_bytes(c.buf.0, c.len as usize)?;
                self.refused_by_host(id, to, &payload);
                Ok(Disposition::Return(c.len as i64))
            }
            Destination::Echo(to) => {
                let request = stop.memory().read_bytes(c.buf.0, c.len as usize)?;
                self.with_net(|stack, net| stack.echo_locally(net, id, to, &request));
                Ok(Disposition::Return(c.len as i64))
            }
            Destination::Peer => {
                stop.rewrite(Syscall::Sendto(Sendto { flags, ..to_peer }));
                Ok(Disposition::Kernel)
            }
            Destination::Carrier(name) | Destination::Remote(name) => {
                let flags = flags | dropping(&destination);
                let sockaddr = name.sockaddr();
                let addr = UserPtr(stop.put_sealed(&sockaddr, 0)?);
                let addrlen = sockaddr.len() as u32;
                stop.rewrite(Syscall::Sendto(Sendto { flags, addr, addrlen, ..c }));
                Ok(self.await_exit(stop.tid, PendingSend { socket: id, len: c.len as i64 }))
            }
        }
    }

    /// `sendmsg` on socket `id`: as `sendto`, through a sealed shadow header
    /// naming the receiver's carrier.
    pub(super) fn sendmsg(&mut self, stop: &mut SyscallStop, id: SocketId, c: Msg) -> Handled {
        let memory = stop.memory();
        let socket = &self.table[id];
        let named = MsgNamePatch::read(&memory, c.msg.0)?;
        if socket.proto == Proto::Tcp {
            // A stream ignores the name, which the kernel must not see.
            return match named {
                Some((_, patch)) => self.shadow_msg(stop, c, patch, ShadowName::Null, |_, _| None),
                None => Ok(Disposition::Kernel),
            };
        }
        // A name of length 0 is no name (`__copy_msghdr`), which copies the
        // name and then the vector in before the socket is asked anything.
        let named = named.filter(|(_, patch)| patch.room > 0);
        if let Some((_, patch)) = named {
            memory.read_bytes(patch.name.0, patch.room as usize)?;
        }
        let header = memory.read::<libc::msghdr>(c.msg.0)?;
        let len = total_iov_len(&memory, &header)?;
        if let Some(again) = self.bind_sender(stop, id)? {
            return Ok(again);
        }
        let socket = &self.table[id];
        if len as u64 > max_datagram(socket.family) {
            return Err(Errno::EMSGSIZE);
        }
        let asked = c.flags;
        let c = Msg { flags: out_of_band(socket, c.flags)?, ..c };
        let Some((_, patch)) = named else {
            // No destination: Linux UDP says EDESTADDRREQ, a carrier ENOTCONN.
            if socket.peer.is_none() {
                return Err(Errno::EDESTADDRREQ);
            }
            // To the connected peer: the header still goes sealed, or another
            // thread could give it a name (a carrier's) before the kernel reads it.
            self.refuse_oversize_to_peer(id, len as u64)?;
            let patch = MsgNamePatch { msg: c.msg.0, name: UserPtr(0), room: 0, shadow: 0 };
            return self.shadow_msg(stop, c, patch, ShadowName::Null, |_, _| None);
        };
        let destination =
            self.datagram_destination(stop, id, patch.name, patch.room, len as u64, asked)?;
        match destination {
            // Lost or answered here: Linux copies the data all the same.
            Destination::Nobody => {
                iov_data(&memory, &header)?;
                Ok(Disposition::Return(len))
            }
            Destination::Silent(to) => {
                self.refused_by_host(id, to, &iov_data(&memory, &header)?);
                Ok(Disposition::Return(len))
            }
            Destination::Echo(to) => {
                let request = iov_data(&memory, &header)?;
                self.with_net(|stack, net| stack.echo_locally(net, id, to, &request));
                Ok(Disposition::Return(len))
            }
            Destination::Peer => self.shadow_msg(stop, c, patch, ShadowName::Null, |_, _| None),
            Destination::Carrier(carrier) | Destination::Remote(carrier) => {
                let c = Msg { flags: c.flags | dropping(&destination), ..c };
                let name = carrier.sockaddr();
                self.shadow_msg(stop, c, patch, ShadowName::Bytes(&name), |_, _| {
                    Some(Box::new(PendingSend { socket: id, len }))
                })
            }
        }
    }

    /// `recvmsg` on socket `id`: through a shadow header whose name the kernel
    /// fills with the sender's carrier name, which the exit translates; the
    /// error queue (`MSG_ERRQUEUE`) is netvm's.
    pub(super) fn recvmsg(&mut self, stop: &mut SyscallStop, id: SocketId, c: Msg) -> Handled {
        if c.flags & libc::MSG_ERRQUEUE != 0 && self.table[id].proto != Proto::Tcp {
            return self.recv_error(stop, id, c.msg.0);
        }
        self.fail_with_error(stop, id, c.fd)?;
        let Some((_, patch)) = MsgNamePatch::read(&stop.memory(), c.msg.0)? else {
            return Ok(Disposition::Kernel);
        };
        if self.table[id].proto == Proto::Tcp {
            return self.shadow_msg(stop, c, patch, ShadowName::Null, |patch, _| {
                Some(Box::new(PendingRecvmsg {
                    patch,
                    socket: id,
                    scratch: None,
                    control_room: None,
                }))
            });
        }
        let control_room = self.wants_controls(id).then(|| {
            let header = stop.memory().read::<libc::msghdr>(c.msg.0).ok()?;
            Some((header.msg_control as u64, header.msg_controllen))
        });
        let control_room = control_room.flatten();
        let c = Msg { flags: receive_flags(&self.table[id], c.flags), ..c };
        self.shadow_msg(stop, c, patch, ShadowName::Room(NAME_ROOM), |patch, scratch| {
            Some(Box::new(PendingRecvmsg { patch, socket: id, scratch, control_room }))
        })
    }

    /// Points `sendmsg`/`recvmsg` `c` (its flags as they are to run) at a shadow
    /// of the program's header (see [`MsgNamePatch`]) whose name is `name`, and
    /// awaits the exit as `pending` says from the shadowed patch and the name's
    /// address.
    fn shadow_msg(
        &mut self,
        stop: &mut SyscallStop,
        c: Msg,
        patch: MsgNamePatch,
        name: ShadowName,
        pending: impl FnOnce(MsgNamePatch, Option<u64>) -> Option<Box<dyn Pending>>,
    ) -> Handled {
        let header = size_of::<libc::msghdr>();
        // A send: the kernel only reads the header and the name, so both are
        // sealed, out of reach of the program's other threads. A receive writes
        // into its header.
        let sending = matches!(stop.call(), Syscall::Sendmsg(_));
        let (patch, name_at) = match name {
            ShadowName::Null | ShadowName::Bytes(_) if sending => seal_header(stop, patch, &name)?,
            _ => {
                let (at, copy) = shadow_headers(stop, name.room(), patch.msg, header)?;
                let patch = patch.shadowed(copy);
                let name_at = name.put(&stop.memory(), at)?;
                patch.write(&stop.memory(), name_at.map_or(UserPtr(0), UserPtr), name.len())?;
                (patch, name_at)
            }
        };
        let shadowed = Msg { msg: UserPtr(patch.shadow), ..c };
        stop.rewrite(if sending { Syscall::Sendmsg(shadowed) } else { Syscall::Recvmsg(shadowed) });
        match pending(patch, name_at) {
            Some(pending) => {
                self.pending.insert(stop.tid, pending);
                Ok(Disposition::KernelThenFinish)
            }
            None => Ok(Disposition::Kernel),
        }
    }

    /// `sendmmsg`: each header's destination as `sendmsg`'s. The batch is cut
    /// short before a datagram that cannot go the same way (nobody receives it,
    /// or its address is refused): `sendmmsg` may send fewer than asked, and the
    /// program sends the rest again. A first datagram nobody receives is counted
    /// as sent and lost, as Linux sends it.
    pub(super) fn sendmmsg(&mut self, stop: &mut SyscallStop, id: SocketId, c: Mmsg) -> Handled {
        let memory = stop.memory();
        let stream = self.table[id].proto == Proto::Tcp;
        // Bind first: never in the middle of a batch.
        if let Some(again) = self.bind_sender(stop, id)? {
            return Ok(again);
        }
        let batch = c.vlen.min(UIO_MAXIOV) as usize;
        if batch == 0 {
            return Ok(Disposition::Kernel);
        }
        let entry = size_of::<libc::mmsghdr>();
        let (slots, copy) =
            shadow_headers(stop, batch * CARRIER_NAME_LEN, c.msgvec.0, batch * entry)?;
        let mut count = batch;
        for i in 0..batch {
            let header = c.msgvec.0 + (i * entry) as u64;
            let (msghdr, patch) = match MsgNamePatch::read(&memory, header) {
                Ok(Some((msghdr, patch))) => (msghdr, patch.shadowed(copy + (i * entry) as u64)),
                Ok(None) if stream || self.table[id].peer.is_some() => continue,
                Ok(None) if i == 0 => return Err(Errno::EDESTADDRREQ),
                Err(e) if i == 0 => return Err(e),
                Ok(None) | Err(_) => {
                    count = i;
                    break;
                }
            };
            let destination = match stream {
                true => Ok(Destination::Peer),
                // (Each message's length is not read: a batch is not refused for its size.)
                false => self.datagram_destination(stop, id, patch.name, patch.room, 0, c.flags),
            };
            let (name, len) = match destination {
                Ok(Destination::Peer) => (UserPtr(0), 0),
                Ok(Destination::Carrier(name) | Destination::Remote(name)) => {
                    let slot = slots + (i * CARRIER_NAME_LEN) as u64;
                    memory.write_bytes(slot, &name.sockaddr())?;
                    (UserPtr(slot), CARRIER_NAME_LEN as u32)
                }
                // The first datagram is answered here, as `sendmsg`'s would be,
                // its length reported in its header as the kernel reports it.
                Ok(destination @ (Destination::Nobody | Destination::Silent(_) | Destination::Echo(_)))
                    if i == 0 =>
                {
                    let datagram = iov_data(&memory, &msghdr)?;
                    match destination {
                        Destination::Silent(to) => self.refused_by_host(id, to, &datagram),
                        Destination::Echo(to) => {
                            self.with_net(|stack, net| stack.echo_locally(net, id, to, &datagram));
                        }
                        _ => {}
                    }
                    memory.write(header + MMSG_LEN_OFFSET, &(datagram.len() as u32))?;
                    return Ok(Disposition::Return(1));
                }
                Err(e) if i == 0 => return Err(e),
                Ok(_) | Err(_) => {
                    count = i;
                    break;
                }
            };
            patch.write(&memory, name, len)?;
        }
        let vlen = if count < batch { count as u32 } else { c.vlen };
        stop.rewrite(Syscall::Sendmmsg(Mmsg { msgvec: UserPtr(copy), vlen, ..c }));
        let lengths = (0..count).map(|i| (i * entry) as u64);
        let entries = lengths.map(|at| (c.msgvec.0 + at, copy + at)).collect();
        Ok(self.await_exit(stop.tid, PendingSendmmsg { entries }))
    }

    /// `recvmmsg`: each header's name as `recvmsg`'s, for every message the kernel
    /// takes (`UIO_MAXIOV`: a large slot of the scratch window holds their names).
    pub(super) fn recvmmsg(&mut self, stop: &mut SyscallStop, id: SocketId, c: Mmsg) -> Handled {
        let memory = stop.memory();
        let stream = self.table[id].proto == Proto::Tcp;
        let batch = c.vlen.min(UIO_MAXIOV) as usize;
        if batch == 0 {
            return Ok(Disposition::Kernel);
        }
        let entry = size_of::<libc::mmsghdr>();
        let (slots, copy) =
            shadow_headers(stop, batch * NAME_ROOM as usize, c.msgvec.0, batch * entry)?;
        let mut entries = Vec::new();
        for i in 0..batch {
            let header = c.msgvec.0 + (i * entry) as u64;
            let shadow = copy + (i * entry) as u64;
            let patch = match MsgNamePatch::read(&memory, header) {
                Ok(Some((_, patch))) => patch.shadowed(shadow),
                // No name wanted: the shadow as the program wrote it; its results
                // still go back.
                _ => MsgNamePatch { msg: header, name: UserPtr(0), room: 0, shadow },
            };
            let (name, len, scratch) = if stream || patch.name.is_null() {
                (UserPtr(0), 0, None)
            } else {
                let slot = slots + (i * NAME_ROOM as usize) as u64;
                (UserPtr(slot), NAME_ROOM, Some(slot))
            };
            patch.write(&memory, name, len)?;
            entries.push((patch, scratch));
        }
        // Headers past the batch are not copied: they must not receive anything.
        let vlen = c.vlen.min(batch as u32);
        stop.rewrite(Syscall::Recvmmsg(Mmsg { msgvec: UserPtr(copy), vlen, ..c }));
        Ok(self.await_exit(stop.tid, PendingRecvmmsg { entries, socket: id }))
    }

    /// Gives the program the sender's address for a received message (the
    /// `msghdr` `patch` shadowed, the sender's carrier name at `scratch`), or a
    /// zero length on a stream; nothing if nothing was `received`.
    fn give_back_name(
        &self,
        memory: &TraceeMemory,
        patch: MsgNamePatch,
        socket: SocketId,
        scratch: Option<u64>,
        received: bool,
    ) -> Result<(), Errno> {
        if !received {
            return Ok(());
        }
        if patch.name.is_null() {
            return Ok(());
        }
        let reported = match scratch {
            // A stream reports no address (length 0), as Linux TCP does.
            None => Vec::new(),
            Some(scratch) => {
                let header = memory.read::<libc::msghdr>(patch.shadow);
                let len = header.map_or(0, |h| h.msg_namelen.min(NAME_ROOM));
                let name = memory.read_bytes(scratch, len as usize).unwrap_or_default();
                self.sender_address(socket, &name)
            }
        };
        let n = reported.len().min(patch.room as usize);
        memory.write_bytes(patch.name.0, &reported[..n])?;
        patch.set_name_len(memory, reported.len() as u32)
    }

    /// Whether datagram socket `id` asked for each datagram's TTL (hop limit):
    /// `IP_RECVTTL`, `IPV6_RECVHOPLIMIT`.
    fn wants_ttl(&self, id: SocketId) -> bool {
        let socket = &self.table[id];
        socket.proto != Proto::Tcp && socket.ip_option(libc::IP_RECVTTL, libc::IPV6_RECVHOPLIMIT) != 0
    }

    /// Whether datagram socket `id` asked for each datagram's type of service
    /// (traffic class): `IP_RECVTOS`, `IPV6_RECVTCLASS`.
    fn wants_tos(&self, id: SocketId) -> bool {
        let socket = &self.table[id];
        socket.proto != Proto::Tcp && socket.ip_option(libc::IP_RECVTOS, IPV6_RECVTCLASS) != 0
    }

    /// Whether datagram socket `id` asked for each datagram's original
    /// destination (`IP_RECVORIGDSTADDR`, `IPV6_RECVORIGDSTADDR`).
    fn wants_origdst(&self, id: SocketId) -> bool {
        let socket = &self.table[id];
        socket.proto != Proto::Tcp && socket.ip_option(IP_ORIGDSTADDR, IPV6_ORIGDSTADDR) != 0
    }

    /// Whether datagram socket `id` asked for any control message netvm adds.
    pub(super) fn wants_controls(&self, id: SocketId) -> bool {
        self.wants_pktinfo(id) || self.wants_ttl(id) || self.wants_tos(id) || self.wants_origdst(id)
    }

    /// Whether datagram socket `id` asked for the address each datagram was
    /// sent to (`IP_PKTINFO`, `IPV6_RECVPKTINFO`).
    pub(super) fn wants_pktinfo(&self, id: SocketId) -> bool {
        let socket = &self.table[id];
        socket.proto != Proto::Tcp && socket.ip_option(libc::IP_PKTINFO, libc::IPV6_RECVPKTINFO) != 0
    }

    /// Appends the control messages netvm adds to a datagram socket
    /// `socket`'s `recvmsg` (header at `msg`, control buffer `control` of
    /// `room` bytes) from `sender`, in Linux's order: `IP_PKTINFO`, the TTL,
    /// the type of service; `MSG_CTRUNC` where they do not fit.
    fn append_controls(
        &mut self,
        memory: &TraceeMemory,
        msg: u64,
        socket: SocketId,
        (control, room): (u64, usize),
        sender: Option<SocketAddr>,
    ) -> Result<(), Errno> {
        let Some(family) = self.table.get(socket).map(|s| s.family) else { return Ok(()) };
        let noted = sender.and_then(|sender| self.take_noted(socket, sender));
        let local_sender = sender.and_then(|sender| self.local_sender(socket, sender));
        let v4 = family == Family::V4;
        let mut messages = Vec::new();
        let to = sender.map(|sender| self.destination_of(socket, sender, noted.map(|n| n.to)));
        if let (true, Some(to)) = (self.wants_pktinfo(socket), to) {
            messages.push(self.pktinfo(socket, to));
        }
        if self.wants_ttl(socket) {
            let ttl = match (noted, local_sender) {
                (Some(noted), _) => noted.marks.ttl,
                (None, Some(sender)) => sender.options.hop_limit(sender.family == Family::V6),
                (None, None) => self.net.as_ref().and_then(|n| n.last_ttl.get(&socket)).copied().unwrap_or(64),
            };
            let (level, kind) = if v4 { (libc::IPPROTO_IP, libc::IP_TTL) } else { (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) };
            messages.push(control_message(level, kind, &i32::from(ttl).to_ne_bytes()));
        }
        if self.wants_tos(socket) {
            let tos = match (noted, local_sender) {
                (Some(noted), _) => noted.marks.tos,
                (None, Some(sender)) => sender.ip_option(libc::IP_TOS, libc::IPV6_TCLASS) as u8,
                (None, None) => 0,
            };
            let level = if v4 { libc::IPPROTO_IP } else { libc::IPPROTO_IPV6 };
            // IPv4 gives the byte as it is; IPv6 an int.
            messages.push(match v4 {
                true => control_message(level, libc::IP_TOS, &[tos]),
                false => control_message(level, libc::IPV6_TCLASS, &i32::from(tos).to_ne_bytes()),
            });
        }
        if let (true, Some(to)) = (self.wants_origdst(socket), to) {
            let port = self.table[socket].local.map_or(0, |l| l.port());
            let (level, kind) = match family {
                Family::V4 => (libc::IPPROTO_IP, IP_ORIGDSTADDR),
                Family::V6 => (libc::IPPROTO_IPV6, IPV6_ORIGDSTADDR),
            };
            let to = family.map_ip(to);
            messages.push(control_message(level, kind, &encode(SocketAddr::new(to, port), family.raw())));
        }
        let mut header = memory.read::<libc::msghdr>(msg)?;
        let mut used = (header.msg_controllen + 7) & !7;
        for cmsg in messages {
            if control == 0 || used + cmsg.len() > room {
                header.msg_flags |= libc::MSG_CTRUNC;
                break;
            }
            memory.write_bytes(control + used as u64, &cmsg)?;
            used += cmsg.len();
            header.msg_controllen = used;
        }
        memory.write_msghdr(msg, &header)
    }

    /// What the network side noted of the oldest datagram from `sender` that
    /// `socket` was handed, taken (see `service.rs`).
    fn take_noted(&mut self, socket: SocketId, sender: SocketAddr) -> Option<Noted> {
        let queue = self.noted.get_mut(&socket)?;
        let at = queue.iter().position(|n| n.from == sender)?;
        queue.remove(at)
    }

    /// The socket of the same stack that sent `receiver` a datagram from
    /// `sender`, if one did.
    fn local_sender(&self, receiver: SocketId, sender: SocketAddr) -> Option<&VSocket> {
        let me = self.table.get(receiver)?;
        let ip = sender.ip().to_canonical();
        if !self.host.is_local(ip) {
            return None;
        }
        let binding = self.table.ports.receiver(me.proto, SocketAddr::new(ip, sender.port()))?;
        self.table.get(binding.socket)
    }

    /// The address a datagram that socket `socket` received from `sender` was
    /// sent to. netvm does not see the datagram itself: the address is the
    /// socket's own if it is bound to one; from the network, the one `noted`
    /// when the datagram was handed over (see `service.rs`); from a sender of
    /// the same stack, the address it sent from, which is the one it sent to
    /// unless it was bound to another.
    fn destination_of(&self, socket: SocketId, sender: SocketAddr, noted: Option<IpAddr>) -> IpAddr {
        let bound = self.table[socket].local.map(|l| l.ip()).filter(|ip| !ip.is_unspecified());
        let from = sender.ip().to_canonical();
        bound.map(|ip| ip.to_canonical()).or(noted).unwrap_or_else(|| {
            if self.host.is_local(from) {
                from
            } else {
                self.route(from).map_or(from, |route| route.source)
            }
        })
    }

    /// The `IP_PKTINFO` (`IPV6_PKTINFO`) control message of a datagram that
    /// socket `socket` received, sent to `to`: the address, and its interface.
    fn pktinfo(&self, socket: SocketId, to: IpAddr) -> Vec<u8> {
        let s = &self.table[socket];
        let index = self.host.view().addresses.iter().find(|a| a.address.ip == to).map_or(1, |a| a.index);
        match (s.family, to) {
            (Family::V4, IpAddr::V4(to)) => {
                let mut data = (index as i32).to_ne_bytes().to_vec();
                data.extend_from_slice(&to.octets()); // ipi_spec_dst
                data.extend_from_slice(&to.octets()); // ipi_addr
                control_message(libc::IPPROTO_IP, libc::IP_PKTINFO, &data)
            }
            (_, to) => {
                let to = match to {
                    IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                    IpAddr::V6(v6) => v6,
                };
                let mut data = to.octets().to_vec();
                data.extend_from_slice(&(index as i32).to_ne_bytes());
                control_message(libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &data)
            }
        }
    }

    /// `recvfrom` on socket `id`: the kernel writes the sender's carrier name to
    /// scratch space, which the exit translates; a stream reports no address.
    pub(super) fn recvfrom(
        &mut self,
        stop: &mut SyscallStop,
        id: SocketId,
        c: Recvfrom,
    ) -> Handled {
        if self.table[id].proto == Proto::Tcp {
            stop.rewrite(Syscall::Recvfrom(Recvfrom {
                addr: UserPtr(0),
                addrlen: UserPtr(0),
                ..c
            }));
            return Ok(self.await_exit(stop.tid, PendingStreamRecvfrom { call: c }));
        }
        if c.flags & libc::MSG_ERRQUEUE == 0 {
            self.fail_with_error(stop, id, c.fd)?;
        }
        // The kernel writes the sender's carrier name to scratch; the exit
        // translates it into the sender's virtual address.
        let scratch = stop.scratch(NAME_ROOM as usize + 8)?;
        let addrlen = UserPtr(scratch + u64::from(NAME_ROOM));
        stop.memory().write(addrlen.0, &NAME_ROOM)?;
        let flags = receive_flags(&self.table[id], c.flags);
        stop.rewrite(Syscall::Recvfrom(Recvfrom { addr: UserPtr(scratch), addrlen, flags, ..c }));
        Ok(self.await_exit(stop.tid, PendingRecvfrom { socket: id, call: c, scratch }))
    }

    /// The `sockaddr` a datagram's receiver `receiver` reports for the sender whose
    /// carrier name (as a `sockaddr_un`) is `name`.
    fn sender_address(&self, receiver: SocketId, name: &[u8]) -> Vec<u8> {
        let Some(me) = self.table.get(receiver) else { return Vec::new() };
        let from =
            self.sender(receiver, name).unwrap_or(SocketAddr::new(me.family.unspecified(), 0));
        encode(from, me.family.raw())
    }

    /// The address of the sender whose carrier is named `name`, as `receiver`
    /// sees it.
    fn sender(&self, receiver: SocketId, name: &[u8]) -> Option<SocketAddr> {
        let me = self.table.get(receiver)?;
        let toward = match me.local {
            Some(l) if !l.ip().is_unspecified() => l.ip(),
            _ => me.family.loopback(),
        };
        self.address_of_name(name, toward)
    }

    /// The sender of the datagram a `recvmsg` through shadow header `patch` just
    /// received on `receiver`: its carrier's name is in the shadow's `scratch`.
    fn sender_of(
        &self,
        memory: &TraceeMemory,
        patch: MsgNamePatch,
        receiver: SocketId,
        scratch: u64,
    ) -> Option<SocketAddr> {
        let header = memory.read::<libc::msghdr>(patch.shadow).ok()?;
        let name = memory.read_bytes(scratch, header.msg_namelen.min(NAME_ROOM) as usize).ok()?;
        self.sender(receiver, &name)
    }

    /// The virtual address behind a carrier name: the bound address of the socket
    /// holding it, with a wildcard IP replaced by the source it sends from.
    fn address_of_name(&self, name: &[u8], toward: IpAddr) -> Option<SocketAddr> {
        let name = EndpointName::from_sockaddr(name)?;
        let sender = &self.table[self.table.named(&name)?];
        let local = sender.local?;
        let ip = match (local.ip().is_unspecified(), sender.source) {
            (false, _) => local.ip(),
            (true, Some(source)) => source,
            (true, None) => self.host.source_for(toward),
        };
        Some(SocketAddr::new(ip, local.port()))
    }
}

/// A datagram of `len` bytes sent to a carrier. A receiver connected elsewhere
/// refuses it (EPERM) and one that just closed is gone (ECONNREFUSED); Linux
/// sends the datagram all the same and the receiver drops it.
struct PendingSend {
    socket: SocketId,
    len: i64,
}

impl Pending for PendingSend {
    fn finish(self: Box<Self>, stack: &mut SmoltcpStack, stop: &mut SyscallStop, _: &mut Claims) {
        // What the kernel said, before an error netvm raised is translated.
        let ret = stop.result();
        stack.translate_raised(stop, self.socket);
        let dropped = [libc::EPERM, libc::ECONNREFUSED, libc::EAGAIN];
        if dropped.iter().any(|e| ret == -i64::from(*e)) {
            stop.set_result(self.len);
        }
    }
}

/// `recvfrom` `call` on a datagram carrier, with the sender's name going to
/// `scratch`.
struct PendingRecvfrom {
    socket: SocketId,
    call: Recvfrom,
    scratch: u64,
}

impl Pending for PendingRecvfrom {
    fn finish(self: Box<Self>, stack: &mut SmoltcpStack, stop: &mut SyscallStop, _: &mut Claims) {
        stack.translate_raised(stop, self.socket);
        if stop.result() < 0 {
            return;
        }
        let (memory, scratch) = (stop.memory(), self.scratch);
        let len = memory.read::<u32>(scratch + u64::from(NAME_ROOM)).unwrap_or(0);
        let name = memory.read_bytes(scratch, len.min(NAME_ROOM) as usize).unwrap_or_default();
        if let Some(error) = stack.alarm_error(self.socket, &name) {
            // The alarm that woke the socket (see `alarm.rs`).
            stop.set_result(-(error as i64));
            return;
        }
        let from = stack.sender_address(self.socket, &name);
        if let Err(e) = write_out(&memory, self.call.addr, self.call.addrlen, &from) {
            stop.set_result(-(e as i64));
        }
    }
}

/// `recvfrom` `call` on a stream: Linux reports no address (length 0).
struct PendingStreamRecvfrom {
    call: Recvfrom,
}

impl Pending for PendingStreamRecvfrom {
    fn finish(self: Box<Self>, _: &mut SmoltcpStack, stop: &mut SyscallStop, _: &mut Claims) {
        if stop.result() >= 0 && !self.call.addrlen.is_null() {
            let _ = stop.memory().write(self.call.addrlen.0, &0u32);
        }
    }
}

/// `recvmsg` through a shadow header: by `scratch` to learn a datagram's
/// sender, or with no name on a stream.
struct PendingRecvmsg {
    patch: MsgNamePatch,
    socket: SocketId,
    scratch: Option<u64>,
    /// The control buffer (address, size), when netvm adds control messages
    /// (`IP_PKTINFO`, a TTL).
    control_room: Option<(u64, usize)>,
}

impl Pending for PendingRecvmsg {
    fn finish(self: Box<Self>, stack: &mut SmoltcpStack, stop: &mut SyscallStop, _: &mut Claims) {
        let Self { patch, socket, scratch, control_room } = *self;
        stack.translate_raised(stop, socket);
        let memory = stop.memory();
        if stop.result() >= 0
            && let Some(error) = scratch.and_then(|scratch| {
                let header = memory.read::<libc::msghdr>(patch.shadow).ok()?;
                let len = header.msg_namelen.min(NAME_ROOM) as usize;
                let sender = memory.read_bytes(scratch, len).ok()?;
                stack.alarm_error(socket, &sender)
            })
        {
            // The alarm that woke the socket (see `alarm.rs`): the receive
            // fails with the error it stands for; the header is the program's.
            stop.set_result(-(error as i64));
            return;
        }
        let received = stop.result() >= 0;
        let mut given = patch
            .copy_back(&memory, false)
            .and_then(|()| stack.give_back_name(&memory, patch, socket, scratch, received));
        if let (true, Some(room), Ok(())) = (received, control_room, given) {
            let sender = scratch.and_then(|scratch| stack.sender_of(&memory, patch, socket, scratch));
            given = stack.append_controls(&memory, patch.msg, socket, room, sender);
        }
        if let Err(e) = given {
            stop.set_result(-(e as i64));
        }
    }
}

/// `recvmmsg` whose headers' names netvm replaced, each as for `recvmsg`.
struct PendingRecvmmsg {
    entries: Vec<(MsgNamePatch, Option<u64>)>,
    socket: SocketId,
}

impl Pending for PendingRecvmmsg {
    fn finish(self: Box<Self>, stack: &mut SmoltcpStack, stop: &mut SyscallStop, _: &mut Claims) {
        let memory = stop.memory();
        for (i, (patch, scratch)) in self.entries.into_iter().enumerate() {
            let received = (i as i64) < stop.result();
            if received {
                let _ = patch.copy_back(&memory, true);
            }
            let _ = stack.give_back_name(&memory, patch, self.socket, scratch, received);
        }
    }
}

/// `sendmmsg` through shadow headers: each sent message's `msg_len`, which the
/// kernel wrote in the shadow, goes to the program's own header.
struct PendingSendmmsg {
    /// The program's header and its shadow, for each message of the batch.
    entries: Vec<(u64, u64)>,
}

impl Pending for PendingSendmmsg {
    fn finish(self: Box<Self>, _: &mut SmoltcpStack, stop: &mut SyscallStop, _: &mut Claims) {
        let memory = stop.memory();
        let sent = usize::try_from(stop.result()).unwrap_or(0);
        for &(header, shadow) in self.entries.iter().take(sent) {
            if let Ok(len) = memory.read::<u32>(shadow + MMSG_LEN_OFFSET) {
                let _ = memory.write(header + MMSG_LEN_OFFSET, &len);
            }
        }
    }
}

/// The name fields of a program's `msghdr`, as it set them, and where netvm's copy
/// of the header is.
///
/// netvm never writes a program's `msghdr` to change what the kernel sees (it may
/// be read-only, or shared by threads): the call is pointed at a copy in the
/// scratch area (the *shadow*), whose name fields netvm sets; at the exit, the
/// fields the kernel writes are copied back.
#[derive(Clone, Copy, Debug)]
struct MsgNamePatch {
    msg: u64,
    name: UserPtr,
    room: u32,
    /// The shadow of this header (set by [`shadow_headers`]).
    shadow: u64,
}

impl MsgNamePatch {
    /// Reads the `msghdr` at `msg`: the header, and its name fields if a name is
    /// given (`None` if `msg_name` is NULL, so the kernel can handle the call as is).
    fn read(memory: &TraceeMemory, msg: u64) -> Result<Option<(libc::msghdr, Self)>, Errno> {
        let header = memory.read::<libc::msghdr>(msg)?;
        let name = UserPtr(header.msg_name as u64);
        if name.is_null() {
            return Ok(None);
        }
        let patch = Self { msg, name, room: name_room(header.msg_namelen)?, shadow: 0 };
        Ok(Some((header, patch)))
    }

    /// This header's patch with its shadow at `shadow`.
    fn shadowed(self, shadow: u64) -> Self {
        Self { shadow, ..self }
    }

    /// Sets the shadow's `msg_name` and `msg_namelen`: what the kernel sees.
    fn write(&self, memory: &TraceeMemory, name: UserPtr, len: u32) -> Result<(), Errno> {
        memory.write(self.shadow + MSG_NAME_OFFSET, &name.0)?;
        memory.write(self.shadow + MSG_NAMELEN_OFFSET, &len)
    }

    /// Copies what the kernel wrote in the shadow (besides the name) back to the
    /// program's header: `msg_controllen`, `msg_flags`, and for an `mmsghdr`
    /// entry `msg_len`.
    fn copy_back(&self, memory: &TraceeMemory, entry: bool) -> Result<(), Errno> {
        let shadow = memory.read::<libc::mmsghdr>(self.shadow)?;
        let mut header = memory.read::<libc::msghdr>(self.msg)?;
        header.msg_controllen = shadow.msg_hdr.msg_controllen;
        header.msg_flags = shadow.msg_hdr.msg_flags;
        memory.write_msghdr(self.msg, &header)?;
        if entry {
            memory.write(self.msg + MMSG_LEN_OFFSET, &shadow.msg_len)?;
        }
        Ok(())
    }

    /// Reports `len` as the length of the address given back, in the program's
    /// own header.
    fn set_name_len(&self, memory: &TraceeMemory, len: u32) -> Result<(), Errno> {
        memory.write(self.msg + MSG_NAMELEN_OFFSET, &len)
    }
}

/// What a shadow header's name is: none (NULL), a name netvm writes, or room for
/// the kernel to write one.
enum ShadowName<'a> {
    Null,
    Bytes(&'a [u8]),
    Room(u32),
}

impl ShadowName<'_> {
    /// Bytes of scratch the name takes.
    fn room(&self) -> usize {
        match self {
            Self::Null => 0,
            Self::Bytes(bytes) => bytes.len(),
            Self::Room(room) => *room as usize,
        }
    }

    /// The name's `msg_namelen`.
    fn len(&self) -> u32 {
        self.room() as u32
    }

    /// Writes the name at `at` (if netvm gives one) and returns its address.
    fn put(&self, memory: &TraceeMemory, at: u64) -> Result<Option<u64>, Errno> {
        match self {
            Self::Null => Ok(None),
            Self::Bytes(bytes) => memory.write_bytes(at, bytes).map(|()| Some(at)),
            Self::Room(_) => Ok(Some(at)),
        }
    }
}

/// A sealed copy of the program's header at `patch.msg`, its name `name` (sealed
/// too): the patch, shadowed by the copy, and the name's address.
fn seal_header(
    stop: &SyscallStop,
    patch: MsgNamePatch,
    name: &ShadowName,
) -> Result<(MsgNamePatch, Option<u64>), Errno> {
    let mut header = stop.memory().read::<libc::msghdr>(patch.msg)?;
    let name = match name {
        ShadowName::Bytes(bytes) => Some(*bytes),
        ShadowName::Null | ShadowName::Room(_) => {
            header.msg_name = std::ptr::null_mut();
            header.msg_namelen = 0;
            None
        }
    };
    let (copy, name_at) = stop.put_sealed_header(header, name)?;
    Ok((patch.shadowed(copy), name_at))
}

/// Offset of `msg_len` in `struct mmsghdr`.
const MMSG_LEN_OFFSET: u64 = std::mem::offset_of!(libc::mmsghdr, msg_len) as u64;

/// Makes room in the scratch area for `names` bytes of socket names followed by a
/// copy of the `len` bytes of message headers at `headers` in the program; returns
/// the address of the names and of the copy (see [`MsgNamePatch`]).
fn shadow_headers(
    stop: &SyscallStop,
    names: usize,
    headers: u64,
    len: usize,
) -> Result<(u64, u64), Errno> {
    let names = names.next_multiple_of(16);
    let base = stop.scratch(names + len)?;
    let memory = stop.memory();
    let bytes = memory.read_bytes(headers, len)?;
    memory.write_bytes(base + names as u64, &bytes)?;
    Ok((base, base + names as u64))
}

/// Offsets of `msg_name` and `msg_namelen` in `struct msghdr`.
const MSG_NAME_OFFSET: u64 = std::mem::offset_of!(libc::msghdr, msg_name) as u64;

const MSG_NAMELEN_OFFSET: u64 = std::mem::offset_of!(libc::msghdr, msg_namelen) as u64;

/// Where a datagram goes.
enum Destination {
    /// To the carrier bound to this name: a full one drops the datagram, it
    /// never holds the sender.
    Carrier(EndpointName),
    /// To the end of a remote host, bound to this name: like Linux's network
    /// card, it holds a sender whose datagrams it cannot take yet (unless the
    /// send is non-blocking), so that nothing is lost on the way.
    Remote(EndpointName),
    /// Nowhere: no socket is bound there.
    Nobody,
    /// A port of the stack's own address that no socket is bound to: the host
    /// answers with a port unreachable.
    Silent(SocketAddr),
    /// An echo request to the stack's own address (loopback included).
    Echo(IpAddr),
    /// To the connected peer: the call named no address after all.
    Peer,
}

/// The flag a datagram send to `destination` takes so that a full receiver
/// drops the datagram rather than hold the sender (see [`Destination`]).
fn dropping(destination: &Destination) -> i32 {
    match destination {
        Destination::Carrier(_) => libc::MSG_DONTWAIT,
        _ => 0,
    }
}

/// The flags a datagram receive on `socket` goes with: UDP ignores `MSG_OOB`
/// (an `AF_UNIX` carrier would refuse it).
fn receive_flags(socket: &VSocket, flags: i32) -> i32 {
    match socket.proto {
        Proto::Udp => flags & !libc::MSG_OOB,
        _ => flags,
    }
}

/// The flags a datagram send on `socket` goes with: `MSG_OOB` is refused
/// (`EOPNOTSUPP`) except by IPv6 UDP, which ignores it (`udpv6_sendmsg`).
fn out_of_band(socket: &VSocket, flags: i32) -> Result<i32, Errno> {
    match (socket.family, socket.proto) {
        _ if flags & libc::MSG_OOB == 0 => Ok(flags),
        (Family::V6, Proto::Udp) => Ok(flags & !libc::MSG_OOB),
        _ => Err(Errno::EOPNOTSUPP),
    }
}

/// Refuses what IPv4's UDP refuses of an IPv6 `socket` sending to an IPv4
/// address (`to_ipv4`) with `flags` (it sends as IPv4's UDP does, if it may):
/// an `IPV6_V6ONLY` socket, `MSG_OOB`.
fn ipv4_from_ipv6(socket: &VSocket, to_ipv4: bool, flags: i32) -> Result<(), Errno> {
    if socket.family != Family::V6 || !to_ipv4 {
        return Ok(());
    }
    if socket.options.v6only {
        return Err(Errno::ENETUNREACH);
    }
    if flags & libc::MSG_OOB != 0 && socket.proto == Proto::Udp {
        return Err(Errno::EOPNOTSUPP);
    }
    Ok(())
}

/// The family a `sockaddr` of at least two bytes names.
fn sa_family(bytes: &[u8]) -> i32 {
    i32::from(u16::from_ne_bytes([bytes[0], bytes[1]]))
}

/// The largest UDP payload: 65535 less the UDP header, and for IPv4 its header
/// too (IPv6's is outside the payload length).
fn max_datagram(family: Family) -> u64 {
    match family {
        Family::V4 => 65507,
        Family::V6 => 65527,
    }
}

/// What a receive that reads end of file writes besides its 0, for the
/// trapped receive `call`: the sender's address length (0) where it was asked
/// for; for `recvmsg`, also no control messages and no flags; a `recvmmsg`
/// fills each entry so, as every one of its receives reads end of file.
fn end_of_file(memory: &TraceeMemory, call: Syscall) -> Result<Disposition, Errno> {
    let empty_message = |msg: u64| {
        let mut header = memory.read::<libc::msghdr>(msg)?;
        if !header.msg_name.is_null() {
            header.msg_namelen = 0;
        }
        header.msg_controllen = 0;
        header.msg_flags = 0;
        memory.write_msghdr(msg, &header)
    };
    match call {
        Syscall::Recvfrom(c) if c.addr.0 != 0 => {
            // `move_addr_to_user` reads the room before it writes the length.
            if memory.read::<i32>(c.addrlen.0)? < 0 {
                return Err(Errno::EINVAL);
            }
            memory.write(c.addrlen.0, &0u32)?;
        }
        Syscall::Recvmsg(c) => empty_message(c.msg.0)?,
        Syscall::Recvmmsg(c) => {
            let vlen = c.vlen.min(UIO_MAXIOV);
            for i in 0..u64::from(vlen) {
                let entry = c.msgvec.0 + i * size_of::<libc::mmsghdr>() as u64;
                let filled = empty_message(entry)
                    .and_then(|()| memory.write(entry + MMSG_LEN_OFFSET, &0u32));
                match filled {
                    // A batch reports the messages it received before a failure.
                    Err(error) if i == 0 => return Err(error),
                    Err(_) => return Ok(Disposition::Return(i as i64)),
                    Ok(()) => {}
                }
            }
            return Ok(Disposition::Return(i64::from(vlen)));
        }
        _ => {}
    }
    Ok(Disposition::Return(0))
}

/// The iovecs of a `msghdr`, as the kernel takes them in (`import_iovec`): at
/// most `UIO_MAXIOV` (else `EMSGSIZE`), none longer than `ssize_t` holds
/// (else `EINVAL`), and cut where their total reaches `MAX_RW_COUNT`.
fn iovecs(memory: &TraceeMemory, header: &libc::msghdr) -> Result<Vec<libc::iovec>, Errno> {
    /// The most one call moves: `INT_MAX` rounded down to a page.
    const MAX_RW_COUNT: usize = (i32::MAX as usize) & !4095;
    if header.msg_iovlen > UIO_MAXIOV as usize {
        return Err(Errno::EMSGSIZE);
    }
    let mut total = 0usize;
    let mut vector = Vec::with_capacity(header.msg_iovlen);
    for i in 0..header.msg_iovlen as u64 {
        let at = header.msg_iov as u64 + i * size_of::<libc::iovec>() as u64;
        let mut iov = memory.read::<libc::iovec>(at)?;
        if (iov.iov_len as isize) < 0 {
            return Err(Errno::EINVAL);
        }
        iov.iov_len = iov.iov_len.min(MAX_RW_COUNT - total);
        total += iov.iov_len;
        vector.push(iov);
    }
    Ok(vector)
}

/// The bytes a `msghdr`'s iovecs describe (what a lost datagram "sent").
fn total_iov_len(memory: &TraceeMemory, header: &libc::msghdr) -> Result<i64, Errno> {
    Ok(iovecs(memory, header)?.iter().map(|iov| iov.iov_len as i64).sum())
}

/// The data a datagram's iovecs hold, read as the kernel copies it: `EFAULT`
/// if it cannot, `EMSGSIZE` for more than a datagram holds (so a program
/// cannot make the supervisor read gigabytes).
fn iov_data(memory: &TraceeMemory, header: &libc::msghdr) -> Result<Vec<u8>, Errno> {
    let vector = iovecs(memory, header)?;
    if vector.iter().map(|iov| iov.iov_len as u64).sum::<u64>() > max_datagram(Family::V6) {
        return Err(Errno::EMSGSIZE);
    }
    let mut data = Vec::new();
    for iov in vector {
        data.extend(memory.read_bytes(iov.iov_base as u64, iov.iov_len)?);
    }
    Ok(data)
}

/// The name length `__copy_msghdr` takes from a `msghdr` whose name is not
/// NULL: `EINVAL` if negative as an `int`, at most a `sockaddr_storage`.
fn name_room(namelen: u32) -> Result<u32, Errno> {
    if (namelen as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(namelen.min(size_of::<libc::sockaddr_storage>() as u32))
}

/// Room in the scratch area for a `sockaddr_un` and its length.
const NAME_ROOM: u32 = 112;

/// The length of a carrier's `sockaddr_un`.
const CARRIER_NAME_LEN: usize = 16;

/// The most messages one `sendmmsg`/`recvmmsg` handles (`UIO_MAXIOV`).
const UIO_MAXIOV: u32 = 1024;
