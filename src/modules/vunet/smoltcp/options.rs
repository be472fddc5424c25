//! `getsockopt`, `setsockopt` and the queue ioctls of a `smoltcp` stack's sockets,
//! answered from [`sockopt`]'s table or left to the carrier.

use std::os::fd::AsRawFd;

use nix::errno::Errno;

use super::accept::passes_to_accepted;
use super::addressing::LOOPBACK_MTU;
use super::ports::Proto;
use super::proc::{CAP_NET_ADMIN, has_capability};
use super::shadow::{self, Asker};
use super::carrier::{clear_carrier_error, peer_shut_down};
use super::sockopt::{self, Keeper, SO_BINDTOIFINDEX};
use super::stack::SmoltcpStack;
use super::table::{ConnectState, VSocket};
use crate::fdtable::SocketId;
use crate::modules::{Disposition, Handled};
use crate::syscall::{Getsockopt, Ioctl, Setsockopt};
use crate::tracer::{SyscallStop, TraceeMemory};

/// Linux's `TCP_*` state number for a socket: listening, connected, and which
/// sides have sent their FIN (this one with `SHUT_WR`, the peer as the carrier
/// shows it).
pub(super) fn tcp_state(listening: bool, connected: bool, shut_wr: bool, peer_done: bool) -> u8 {
    const ESTABLISHED: u8 = 1;
    const FIN_WAIT2: u8 = 5;
    const TIME_WAIT: u8 = 6;
    const CLOSE: u8 = 7;
    const CLOSE_WAIT: u8 = 8;
    const LISTEN: u8 = 10;
    match (listening, connected, shut_wr, peer_done) {
        (true, ..) => LISTEN,
        (false, false, ..) => CLOSE,
        (false, true, false, false) => ESTABLISHED,
        (false, true, true, false) => FIN_WAIT2,
        (false, true, false, true) => CLOSE_WAIT,
        (false, true, true, true) => TIME_WAIT,
    }
}

/// What `SO_ERROR` says: an error netvm reports, or another answer to the call.
enum SocketError {
    Report(Errno),
    Answer(Disposition),
}

/// `IFNAMSIZ`: an interface name with its NUL.
const IFNAMSIZ: usize = 16;

/// An `int` option's value as `getsockopt` returns it.
fn int_bytes(value: i32) -> Vec<u8> {
    value.to_ne_bytes().to_vec()
}

/// How long `SO_ERROR` waits for a connect across the network to settle before
/// answering 0, as Linux does while a handshake is under way.
const HANDSHAKE_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

impl SmoltcpStack {
    /// `getsockopt` on socket `id`: answered by the carrier or from what netvm
    /// keeps (see `sockopt::keeper`).
    pub(super) fn getsockopt(
        &mut self,
        stop: &mut SyscallStop,
        id: SocketId,
        c: Getsockopt,
    ) -> Handled {
        let so_error = (c.level, c.optname) == (libc::SOL_SOCKET, libc::SO_ERROR);
        if so_error {
            // What the program sent before asking may have been refused already.
            self.settle_sent(id);
        }
        let value = match self.table[id].keeper(c.level, c.optname, true)? {
            Keeper::Carrier if so_error => match self.socket_error(id) {
                SocketError::Report(error) => {
                    self.error_reported(id);
                    clear_carrier_error(stop, c.fd);
                    int_bytes(error as i32)
                }
                SocketError::Answer(answer) => return Ok(answer),
            },
            Keeper::Carrier => match self.plugged_sndbuf(id, c.level, c.optname) {
                // A plugged carrier's send buffer is the plug's (see `Plug`):
                // the program sees its own.
                Some(sndbuf) => int_bytes(*sndbuf as i32 * 2),
                None => return Ok(Disposition::Kernel),
            },
            Keeper::PacketFilter => {
                return Err(self.packet_filter_refusal(stop, id, (c.level, c.optname), true));
            }
            Keeper::Kernel => {
                let memory = stop.memory();
                let room = memory.read::<i32>(c.optlen.0)?;
                let socket = &self.table[id];
                let kind = (socket.family, socket.proto);
                let asker = Asker { socket: id, process: stop.process, thread: stop.tid };
                let (value, len) = self.shadows.get(asker, kind, (c.level, c.optname), room)?;
                // As the kernel: the length first, then the value.
                memory.write(c.optlen.0, &(len as u32))?;
                memory.write_bytes(c.optval.0, &value)?;
                return Ok(Disposition::Return(0));
            }
            keeper => self.option_value(stop, id, c, keeper)?,
        };
        write_option(&stop.memory(), c.optval.0, c.optlen.0, &value)?;
        Ok(Disposition::Return(0))
    }

    /// The send buffer kept by the plug of socket `id`'s connect under way, if
    /// it has one and option `(level, name)` is `SO_SNDBUF`.
    fn plugged_sndbuf(&mut self, id: SocketId, level: i32, name: i32) -> Option<&mut usize> {
        if (level, name) != (libc::SOL_SOCKET, libc::SO_SNDBUF) {
            return None;
        }
        self.net.as_mut()?.plugged_sndbuf(id)
    }

    /// `SO_ERROR` of socket `id`: the error netvm raised on its carrier, or the
    /// failure of its connect (reported once); else the carrier's own.
    fn socket_error(&mut self, id: SocketId) -> SocketError {
        let dialing = self.net.as_ref().is_some_and(|n| n.gate_of(id).is_some());
        let socket = &mut self.table[id];
        match (socket.connect_state(), socket.error.take()) {
            (_, Some(error)) => SocketError::Report(error),
            (ConnectState::InProgress(since), None)
                if since.elapsed() < HANDSHAKE_WAIT && dialing =>
            {
                // Inside the session a handshake takes microseconds; a program
                // asks as soon as its carrier polls writable, which it does at
                // once. Let it wait for the answer.
                SocketError::Answer(Disposition::Retry)
            }
            (ConnectState::Failed(error), None) => {
                self.table.set_connect_state(id, ConnectState::Refused);
                SocketError::Report(error)
            }
            _ => SocketError::Answer(Disposition::Kernel),
        }
    }

    /// The value of option `c` kept by `keeper` (other than the carrier) on
    /// socket `id`, as `getsockopt` returns it.
    fn option_value(
        &self,
        stop: &SyscallStop,
        id: SocketId,
        c: Getsockopt,
        keeper: Keeper,
    ) -> Result<Vec<u8>, Errno> {
        let socket = &self.table[id];
        Ok(match keeper {
            Keeper::Carrier | Keeper::Kernel => unreachable!("answered by a kernel socket"),
            Keeper::PacketFilter => unreachable!("refused by packet_filter_refusal"),
            Keeper::Refused(error) => return Err(error),
            Keeper::AddressForm => {
                socket.peer.ok_or(Errno::ENOTCONN)?;
                int_bytes(socket.family.raw())
            }
            Keeper::PathMtu => {
                let peer = socket.peer.ok_or(Errno::ENOTCONN)?.ip().to_canonical();
                int_bytes(self.path_mtu(peer).map_or(LOOPBACK_MTU, |mtu| mtu as u32) as i32)
            }
            Keeper::V6Only => int_bytes(i32::from(socket.options.v6only)),
            Keeper::ReusePort => int_bytes(i32::from(socket.options.reuse_port)),
            Keeper::TcpInfo => {
                let (listening, connected, shut_wr) =
                    (socket.listening, socket.peer.is_some(), socket.shut_wr);
                let peer_done = connected && peer_shut_down(stop, c.fd);
                sockopt::tcp_info(tcp_state(listening, connected, shut_wr, peer_done))
            }
            Keeper::Emulated
                if (c.level, c.optname) == (libc::IPPROTO_TCP, libc::TCP_MAXSEG)
                    && socket.peer.is_some()
                    && !socket.options.is_set(c.level, c.optname) =>
            {
                int_bytes(self.connected_mss(socket))
            }
            Keeper::Emulated
                if (c.level, c.optname) == (libc::SOL_SOCKET, libc::SO_PROTOCOL)
                    && socket.proto == Proto::Raw =>
            {
                int_bytes(i32::from(socket.raw_protocol))
            }
            Keeper::Emulated => {
                let value =
                    socket.options.get(c.level, c.optname, socket.family.raw(), socket.proto);
                sockopt::value_bytes(c.level, value, stop.memory().read::<i32>(c.optlen.0)?)
            }
            Keeper::NoPeerProcess if c.optname == libc::SO_PEERCRED => {
                let nobody = libc::ucred { pid: 0, uid: u32::MAX, gid: u32::MAX };
                [nobody.pid.to_ne_bytes(), nobody.uid.to_ne_bytes(), nobody.gid.to_ne_bytes()]
                    .concat()
            }
            Keeper::NoPeerProcess => return Err(Errno::ENODATA),
            Keeper::Listening => int_bytes(i32::from(socket.listening)),
            Keeper::Device if c.optname == SO_BINDTOIFINDEX => {
                int_bytes(socket.options.bound_device as i32)
            }
            Keeper::Device => {
                // `sock_getbindtodevice`: nothing when unbound, else the name.
                let index = socket.options.bound_device;
                if index == 0 {
                    return Ok(Vec::new());
                }
                let link = self.host.view().link(index).map_err(Errno::from_raw)?;
                if stop.memory().read::<i32>(c.optlen.0)? < IFNAMSIZ as i32 {
                    return Err(Errno::EINVAL);
                }
                let mut name = link.name.clone().into_bytes();
                name.push(0);
                name
            }
        })
    }

    /// The `TCP_MAXSEG` of connected `socket`: over the network, the smaller of
    /// what its path carries and what the peer announced, less the IP and TCP
    /// headers and the timestamps two Linux hosts agree on (never below
    /// Linux's least); over the stack's loopback, what Linux reports over its
    /// own.
    fn connected_mss(&self, socket: &VSocket) -> i32 {
        let announced = match (socket.local, socket.peer, self.net.as_ref()) {
            (Some(local), Some(peer), Some(net)) => net.peer_mss(local, peer),
            _ => None,
        };
        let peer = socket.peer.map(|p| p.ip().to_canonical());
        let mss = peer.and_then(|peer| {
            let headers = if peer.is_ipv4() { 20 } else { 40 } + TCP_HEADER;
            let path = self.path_mtu(peer)? as i32 - headers;
            let mss = announced.map_or(path, |a| path.min(i32::from(a)));
            Some(mss.max(TCP_MIN_SND_MSS) - TIMESTAMPS_OPTION)
        });
        mss.unwrap_or(CONNECTED_MSS)
    }

    /// The link index `SO_BINDTODEVICE` or `SO_BINDTOIFINDEX` names (0: none), as
    /// `sock_setbindtodevice` reads it.
    fn device_option(&self, stop: &SyscallStop, c: Setsockopt) -> Result<u32, Errno> {
        let view = self.host.view();
        if c.optname == SO_BINDTOIFINDEX {
            let index = read_int_option(&stop.memory(), c.level, c.optname, c.optval.0, c.optlen)?;
            // `sock_bindtoindex` takes any index that is not negative.
            return u32::try_from(index).map_err(|_| Errno::EINVAL);
        }
        if (c.optlen as i32) < 0 {
            return Err(Errno::EINVAL);
        }
        let len = (c.optlen as usize).min(IFNAMSIZ - 1);
        let name = stop.memory().read_bytes(c.optval.0, len)?;
        let name = name.split(|&byte| byte == 0).next().unwrap_or_default();
        if name.is_empty() {
            return Ok(0);
        }
        let link = view.links.iter().find(|link| link.name.as_bytes() == name);
        link.map(|link| link.index).ok_or(Errno::ENODEV)
    }

    /// The queue ioctls (`TIOCOUTQ`, `SIOCOUTQNSD`): bytes not yet acknowledged
    /// (or not yet sent). On a stack's own loopback the peer's kernel
    /// acknowledges at once, so none; a carrier would count what the peer has
    /// not read. Other requests go to the carrier.
    pub(super) fn ioctl(&mut self, stop: &SyscallStop, id: SocketId, c: Ioctl) -> Handled {
        if [SIOCGSTAMP, SIOCGSTAMPNS].contains(&c.request) {
            // No packet's arrival time is known (the data path is the kernel's
            // carrier): Linux says so before the first packet.
            return Err(Errno::ENOENT);
        }
        if ![libc::TIOCOUTQ as u32, SIOCOUTQNSD].contains(&c.request) {
            return Ok(Disposition::Kernel);
        }
        if self.table[id].listening {
            return Err(Errno::EINVAL);
        }
        stop.memory().write(c.arg, &0i32)?;
        Ok(Disposition::Return(0))
    }

    /// `setsockopt` on socket `id`: kept by netvm, given to the carrier, or both.
    pub(super) fn setsockopt(
        &mut self,
        stop: &SyscallStop,
        id: SocketId,
        c: Setsockopt,
    ) -> Handled {
        length_refused(self.table[id].proto, c)?;
        let hop_limit =
            [(libc::IPPROTO_IP, libc::IP_TTL), (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS)];
        if hop_limit.contains(&(c.level, c.optname)) {
            // Datagrams already sent leave with the TTL they were sent with.
            self.flush_datagrams();
        }
        let socket = &mut self.table[id];
        let keeper = socket.keeper(c.level, c.optname, false)?;
        let read_value =
            || read_int_option(&stop.memory(), c.level, c.optname, c.optval.0, c.optlen);
        if (c.level, c.optname) == (libc::SOL_SOCKET, libc::SO_REUSEADDR) {
            // The carrier answers getsockopt for it; binds need it here.
            let value = read_value()?;
            set_carrier_option(stop, c.fd, libc::SO_REUSEADDR, value);
            socket.options.reuse_addr = value != 0;
            self.table.reuse_changed(id);
            return Ok(Disposition::Return(0));
        }
        if keeper == Keeper::Carrier && self.plugged_sndbuf(id, c.level, c.optname).is_some() {
            // Kept for when the plug is pulled: now, it would unplug the carrier.
            let value = read_value()?;
            let kept = sndbuf_as_set(value);
            if let Some(sndbuf) = self.plugged_sndbuf(id, c.level, c.optname) {
                *sndbuf = kept;
            }
            return Ok(Disposition::Return(0));
        }
        if (c.level, c.optname) == (libc::SOL_SOCKET, libc::SO_LINGER) {
            self.note_linger(stop, id, c);
        }
        if c.level == libc::SOL_SOCKET && passes_to_accepted(c.optname) {
            self.table[id].options.inheritable_set = true;
        }
        if keeper == Keeper::Carrier {
            return Ok(Disposition::Kernel);
        }
        if keeper == Keeper::Kernel {
            return self.set_by_kernel(stop, id, c).map(|()| Disposition::Return(0));
        }
        if keeper == Keeper::PacketFilter {
            return Err(self.packet_filter_refusal(stop, id, (c.level, c.optname), false));
        }
        if let Keeper::Refused(error) = keeper {
            return Err(error);
        }
        if keeper == Keeper::Device {
            let index = self.device_option(stop, c)?;
            self.table[id].options.bound_device = index;
            return Ok(Disposition::Return(0));
        }
        if let Some(answer) = self.set_interface_option(stop, id, c) {
            return answer.map(|()| Disposition::Return(0));
        }
        let value = read_value()?;
        self.set_int_option(stop, id, c, keeper, value).map(|()| Disposition::Return(0))
    }

    /// Notes whether socket `id` is to close abortively (`SO_LINGER` {1, 0},
    /// which the carrier keeps too): its connections across the network then
    /// end with a reset, as Linux's do. A value the kernel will refuse changes
    /// nothing.
    fn note_linger(&mut self, stop: &SyscallStop, id: SocketId, c: Setsockopt) {
        if (c.optlen as i32) < size_of::<libc::linger>() as i32 {
            return;
        }
        let Ok(linger) = stop.memory().read::<[i32; 2]>(c.optval.0) else { return };
        let Some(net) = self.net.as_mut() else { return };
        if linger[0] != 0 && linger[1] == 0 {
            net.abortive.insert(id);
        } else {
            net.abortive.remove(&id);
        }
    }

    /// How netfilter's option `(level, name)` is refused to the stopped
    /// thread, on socket `id` (`getting` or setting): `EPERM` without
    /// `CAP_NET_ADMIN` where the host's kernel has the module (netfilter's
    /// first check), else `ENOPROTOOPT` (a stack has no packet filter).
    fn packet_filter_refusal(
        &mut self,
        stop: &SyscallStop,
        id: SocketId,
        option: (i32, i32),
        getting: bool,
    ) -> Errno {
        let socket = &self.table[id];
        let kind = (socket.family, socket.proto);
        let guarded = matches!(socket.proto, Proto::Tcp | Proto::Udp)
            && self.shadows.guarded(kind, option, getting);
        if guarded && !has_capability(stop.tid, CAP_NET_ADMIN) {
            Errno::EPERM
        } else {
            Errno::ENOPROTOOPT
        }
    }

    /// `setsockopt` `c` of an option the kernel answers for socket `id` (see
    /// `shadow.rs`): the value as far as the program's memory holds it (the
    /// kernel faults past that, as it would have in the program).
    fn set_by_kernel(&mut self, stop: &SyscallStop, id: SocketId, c: Setsockopt) -> Result<(), Errno> {
        let room = (c.optlen as usize).min(shadow::MAX_VALUE);
        let readable = stop.memory().read_prefix(c.optval.0, room);
        let socket = &self.table[id];
        let kind = (socket.family, socket.proto);
        let option = (c.level, c.optname);
        let asker = Asker { socket: id, process: stop.process, thread: stop.tid };
        self.shadows.set(asker, kind, option, (&readable, room as u32))
    }

    /// Sets `int` option `c` of socket `id`, kept by `keeper`, to `value`.
    fn set_int_option(
        &mut self,
        stop: &SyscallStop,
        id: SocketId,
        c: Setsockopt,
        keeper: Keeper,
        value: i32,
    ) -> Result<(), Errno> {
        let socket = &mut self.table[id];
        if (c.level, c.optname) == (libc::SOL_SOCKET, libc::SO_DEBUG)
            && value != 0
            && !has_capability(stop.tid, CAP_NET_ADMIN)
        {
            return Err(Errno::EACCES);
        }
        if (c.level, c.optname) == (libc::IPPROTO_IP, libc::IP_TOS) {
            let old = socket.options.get(c.level, c.optname, socket.family.raw(), socket.proto);
            let set = socket.options.set(c.level, c.optname, value, socket.proto);
            let new = socket.options.get(c.level, c.optname, socket.family.raw(), socket.proto);
            if new != old {
                // Linux derives the socket's priority from its type of service.
                set_carrier_option(stop, c.fd, libc::SO_PRIORITY, sockopt::tos_priority(new));
            }
            return set;
        }
        match keeper {
            Keeper::V6Only if socket.local.is_some() => return Err(Errno::EINVAL),
            Keeper::V6Only => socket.options.v6only = value != 0,
            Keeper::ReusePort => {
                socket.options.reuse_port = value != 0;
                self.table.reuse_changed(id);
            }
            Keeper::TcpInfo | Keeper::NoPeerProcess | Keeper::Listening | Keeper::Device => {
                return Err(Errno::ENOPROTOOPT);
            }
            _ => socket.options.set(c.level, c.optname, value, socket.proto)?,
        }
        Ok(())
    }
}

/// The `EINVAL` Linux gives a `setsockopt` for its length before it looks at
/// the option: a negative length (`__sys_setsockopt`), or less than an `int` at
/// UDP's level (`udp_lib_setsockopt`) or TCP's, for all but TCP's string
/// options (`do_tcp_setsockopt`).
fn length_refused(proto: Proto, c: Setsockopt) -> Result<(), Errno> {
    const TCP_STRING_OPTIONS: [i32; 3] = [libc::TCP_CONGESTION, libc::TCP_ULP, 33];
    let len = c.optlen as i32;
    let own_level = match proto {
        Proto::Udp => c.level == libc::IPPROTO_UDP,
        Proto::Tcp => c.level == libc::IPPROTO_TCP && !TCP_STRING_OPTIONS.contains(&c.optname),
        Proto::Icmp | Proto::Raw => false,
    };
    if len < 0 || (own_level && len < size_of::<i32>() as i32) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Returns an option value as `getsockopt` does: at most the caller's length
/// (`EINVAL` if negative), and the length actually written.
fn write_option(
    memory: &TraceeMemory,
    optval: u64,
    optlen: u64,
    value: &[u8],
) -> Result<(), Errno> {
    let room = memory.read::<i32>(optlen)?;
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    let n = value.len().min(room as usize);
    // As the kernel: the length first, then the value.
    memory.write(optlen, &(n as u32))?;
    memory.write_bytes(optval, &value[..n])
}

/// Reads an `int` option for `setsockopt`, as wide as Linux reads it at `level`
/// (see [`sockopt::value_width`]).
fn read_int_option(
    memory: &TraceeMemory,
    level: i32,
    name: i32,
    optval: u64,
    optlen: u32,
) -> Result<i32, Errno> {
    match sockopt::value_width(level, name, optlen)? {
        0 => Ok(0),
        1 => memory.read::<u8>(optval).map(i32::from),
        _ => memory.read::<i32>(optval),
    }
}

/// Sets socket-level option `name` on the carrier at fd `fd`, which answers
/// `getsockopt` for it.
fn set_carrier_option(stop: &SyscallStop, fd: i32, name: i32, value: i32) {
    if let Ok(copy) = stop.copy_fd(fd) {
        // SAFETY: passes a live int of the size given.
        unsafe {
            libc::setsockopt(
                copy.as_raw_fd(),
                libc::SOL_SOCKET,
                name,
                (&raw const value).cast(),
                size_of::<i32>() as libc::socklen_t,
            )
        };
    }
}

/// The `TCP_MAXSEG` of a connected socket, as Linux 6 reports it over loopback.
const CONNECTED_MSS: i32 = 32768;
/// A TCP header, the timestamps option in it (as `TCP_MAXSEG` counts it), and
/// the least segment size Linux uses however small the path
/// (`TCP_MIN_SND_MSS`).
const TCP_HEADER: i32 = 20;
const TIMESTAMPS_OPTION: i32 = 12;
const TCP_MIN_SND_MSS: i32 = 48;

/// The send buffer (as `SO_SNDBUF` sets it, half what it reports) that an
/// `AF_UNIX` socket keeps when `SO_SNDBUF` is set to `value`: the kernel's own
/// rounding and limits, asked of a socket of the supervisor's.
fn sndbuf_as_set(value: i32) -> usize {
    use nix::sys::socket::sockopt::SndBuf;
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, getsockopt, setsockopt, socket};
    let scratch = socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None);
    let reported = scratch.ok().and_then(|scratch| {
        setsockopt(&scratch, SndBuf, &(value as usize)).ok()?;
        getsockopt(&scratch, SndBuf).ok()
    });
    reported.unwrap_or(value.max(0) as usize * 2) / 2
}

/// `SIOCGSTAMP` and `SIOCGSTAMPNS`: the arrival time of the last packet.
const SIOCGSTAMP: u32 = 0x8906;
const SIOCGSTAMPNS: u32 = 0x8907;

/// `SIOCOUTQNSD` (linux/sockios.h): bytes not yet sent.
const SIOCOUTQNSD: u32 = 0x894B;
