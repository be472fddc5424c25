//! The system calls netvm traps, as a vocabulary of types: what each call's
//! arguments are, how they are decoded from and encoded back into raw registers,
//! and how they read in the `--trace` log.
//!
//! Handlers never look at raw registers: a trapped call arrives as one [`Syscall`]
//! variant whose fields are named and typed as in the kernel's prototype (`int`
//! arguments truncated to 32 bits exactly as the kernel does), and a call a
//! handler changes is re-encoded from that form ([`Syscall::encode`]). Pointers
//! stay tracee addresses ([`UserPtr`]); reading what they point to is the
//! business of whoever holds the tracee's memory, through [`ReadMemory`].
//!
//! This module knows the Linux ABI and nothing of ptrace: the tracer depends on
//! it, not the other way round.

pub mod names;
pub mod render;
pub mod sockaddr;

use std::fmt;

use nix::errno::Errno;

/// Read access to a tracee's memory, as much as rendering a call needs: the
/// tracer implements it for its processes, tests for a fake.
pub trait ReadMemory {
    /// Copies `len` bytes from `addr`; an address the tracee could not read is
    /// `EFAULT`.
    fn read_bytes(&self, addr: u64, len: usize) -> Result<Vec<u8>, Errno>;
}

/// An address in the tracee's memory.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserPtr(pub u64);

impl UserPtr {
    /// Whether this is the NULL pointer.
    pub fn is_null(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Debug for UserPtr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_null() { f.write_str("NULL") } else { write!(f, "{:#x}", self.0) }
    }
}

/// `socket(domain, type, protocol)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Socket {
    /// The address family (`AF_*`).
    pub domain: i32,
    /// The socket type with `SOCK_NONBLOCK` and `SOCK_CLOEXEC` still or-ed in.
    pub ty: i32,
    /// The protocol; 0 picks the family's default for the type.
    pub protocol: i32,
}

impl Socket {
    /// The type proper and its flags (`SOCK_NONBLOCK`, `SOCK_CLOEXEC`), or
    /// `EINVAL` for any other flag, which `socket(2)` judges before anything else.
    pub fn type_and_flags(&self) -> Result<(i32, i32), Errno> {
        const TYPE_MASK: i32 = 0xf;
        let flags = self.ty & !TYPE_MASK;
        if flags & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) != 0 {
            return Err(Errno::EINVAL);
        }
        Ok((self.ty & TYPE_MASK, flags))
    }
}

/// `socketpair(domain, type, protocol, sv)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Socketpair {
    /// The address family (`AF_*`).
    pub domain: i32,
    /// The type (`SOCK_*`), with `SOCK_NONBLOCK` and `SOCK_CLOEXEC` or-ed in.
    pub ty: i32,
    /// The protocol; 0 picks the family's default for the type.
    pub protocol: i32,
    /// Where the two new descriptors go.
    pub sv: UserPtr,
}

/// A call that passes a socket address in: `bind`, `connect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrIn {
    /// The socket's descriptor, as the calling process numbers it.
    pub fd: i32,
    /// The address passed in.
    pub addr: UserPtr,
    /// Its length.
    pub addrlen: u32,
}

/// A call that passes a socket address out through a value-result length:
/// `getsockname`, `getpeername`, and `accept`/`accept4` with their flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrOut {
    /// The socket's descriptor, as the calling process numbers it.
    pub fd: i32,
    /// Where the address goes (NULL: nowhere).
    pub addr: UserPtr,
    /// In: the room at `addr`; out: the address's full length.
    pub addrlen: UserPtr,
}

/// `accept(fd, addr, addrlen)` or `accept4(fd, addr, addrlen, flags)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accept {
    /// The socket's descriptor, as the calling process numbers it.
    pub fd: i32,
    /// Where the peer's address goes (NULL: nowhere).
    pub addr: UserPtr,
    /// In: the room at `addr`; out: the address's full length.
    pub addrlen: UserPtr,
    /// `None` for plain `accept`.
    pub flags: Option<i32>,
}

/// `listen(fd, backlog)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listen {
    /// The socket's descriptor, as the calling process numbers it.
    pub fd: i32,
    /// How many pending connections to queue.
    pub backlog: i32,
}

/// `shutdown(fd, how)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shutdown {
    /// The socket's descriptor, as the calling process numbers it.
    pub fd: i32,
    /// `SHUT_RD`, `SHUT_WR` or `SHUT_RDWR`.
    pub how: i32,
}

/// `getsockopt(fd, level, optname, optval, optlen)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Getsockopt {
    /// The socket's descriptor, as the calling process numbers it.
    pub fd: i32,
    /// The option's protocol level (`SOL_SOCKET`, `IPPROTO_TCP`, ...).
    pub level: i32,
    /// The option.
    pub optname: i32,
    /// Where the value goes.
    pub optval: UserPtr,
    /// In: the room at `optval`; out: the value's length.
    pub optlen: UserPtr,
}

/// `setsockopt(fd, level, optname, optval, optlen)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setsockopt {
    /// The socket's descriptor, as the calling process numbers it.
    pub fd: i32,
    /// The option's protocol level (`SOL_SOCKET`, `IPPROTO_TCP`, ...).
    pub level: i32,
    /// The option.
    pub optname: i32,
    /// The value.
    pub optval: UserPtr,
    /// The value's length.
    pub optlen: u32,
}

/// `sendto(fd, buf, len, flags, addr, addrlen)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sendto {
    /// The socket's descriptor, as the calling process numbers it.
    pub fd: i32,
    /// The data.
    pub buf: UserPtr,
    /// The data's length.
    pub len: u64,
    /// `MSG_*` flags.
    pub flags: i32,
    /// The destination (NULL: the connected peer).
    pub addr: UserPtr,
    /// The destination's length.
    pub addrlen: u32,
}

/// `recvfrom(fd, buf, len, flags, addr, addrlen)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recvfrom {
    /// The socket's descriptor, as the calling process numbers it.
    pub fd: i32,
    /// The data.
    pub buf: UserPtr,
    /// The data's length.
    pub len: u64,
    /// `MSG_*` flags.
    pub flags: i32,
    /// Where the sender's address goes (NULL: nowhere).
    pub addr: UserPtr,
    /// In: the room at `addr`; out: the address's full length.
    pub addrlen: UserPtr,
}

/// `sendmsg(fd, msg, flags)` or `recvmsg(fd, msg, flags)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msg {
    /// The socket's descriptor, as the calling process numbers it.
    pub fd: i32,
    /// The `struct msghdr`.
    pub msg: UserPtr,
    /// `MSG_*` flags.
    pub flags: i32,
}

/// `sendmmsg(fd, msgvec, vlen, flags)` or `recvmmsg(fd, msgvec, vlen, flags, timeout)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mmsg {
    /// The socket's descriptor, as the calling process numbers it.
    pub fd: i32,
    /// The array of `struct mmsghdr`.
    pub msgvec: UserPtr,
    /// How many entries the array has.
    pub vlen: u32,
    /// `MSG_*` flags.
    pub flags: i32,
    /// `recvmmsg` only; NULL for `sendmmsg`.
    pub timeout: UserPtr,
}

/// `ioctl(fd, request, arg)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ioctl {
    /// The socket's descriptor, as the calling process numbers it.
    pub fd: i32,
    /// The request number.
    pub request: u32,
    /// Its argument (often a pointer).
    pub arg: u64,
}

/// A call that reaches into another process: `ptrace`, `process_vm_readv`,
/// `process_vm_writev`, `pidfd_open`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessAccess {
    /// The request (`PTRACE_*`) for `ptrace`; `None` for the others.
    pub request: Option<i64>,
    /// The process or thread reached into.
    pub pid: i32,
}

/// `kcmp(pid1, pid2, type, idx1, idx2)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kcmp {
    /// The first process.
    pub pid1: i32,
    /// The second process.
    pub pid2: i32,
    /// What is compared (`KCMP_*`).
    pub ty: i32,
}

/// `pidfd_getfd(pidfd, targetfd, flags)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PidfdGetfd {
    /// The process to take from, as a pidfd of the caller.
    pub pidfd: i32,
    /// Its fd to copy.
    pub target: i32,
    /// Reserved, 0.
    pub flags: u32,
}

/// `setns(fd, nstype)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setns {
    /// A namespace file or a pidfd.
    pub fd: i32,
    /// `CLONE_NEW*` types allowed (0: any).
    pub nstype: i32,
}

/// The namespace and tracing flags of `clone(flags, ...)` or `unshare(flags)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloneFlags {
    /// `CLONE_*` (for clone, the low byte is the exit signal).
    pub flags: u64,
}

/// A decoded system call, one variant per call netvm traps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syscall {
    /// `socket(2)`.
    Socket(Socket),
    /// `socketpair(2)`.
    Socketpair(Socketpair),
    /// `bind(2)`.
    Bind(AddrIn),
    /// `connect(2)`.
    Connect(AddrIn),
    /// `listen(2)`.
    Listen(Listen),
    /// `accept(2)` and `accept4(2)`.
    Accept(Accept),
    /// `getsockname(2)`.
    Getsockname(AddrOut),
    /// `getpeername(2)`.
    Getpeername(AddrOut),
    /// `getsockopt(2)`.
    Getsockopt(Getsockopt),
    /// `setsockopt(2)`.
    Setsockopt(Setsockopt),
    /// `shutdown(2)`.
    Shutdown(Shutdown),
    /// `sendto(2)` with an address (without one it is not trapped).
    Sendto(Sendto),
    /// `recvfrom(2)` with an address (without one it is not trapped).
    Recvfrom(Recvfrom),
    /// `sendmsg(2)`.
    Sendmsg(Msg),
    /// `recvmsg(2)`.
    Recvmsg(Msg),
    /// `sendmmsg(2)`.
    Sendmmsg(Mmsg),
    /// `recvmmsg(2)`.
    Recvmmsg(Mmsg),
    /// `ioctl(2)` on a socket request.
    Ioctl(Ioctl),
    /// `clone(2)` (trapped for some flags only).
    Clone(CloneFlags),
    /// `unshare(2)` (trapped for some flags only).
    Unshare(CloneFlags),
    /// `setns(2)`.
    Setns(Setns),
    /// `ptrace(2)`, `process_vm_readv(2)`, `process_vm_writev(2)`, `pidfd_open(2)`:
    /// which, by [`Syscall::name`] of the raw number.
    ProcessAccess(i64, ProcessAccess),
    /// `pidfd_getfd(2)`.
    PidfdGetfd(PidfdGetfd),
    /// `kcmp(2)`.
    Kcmp(Kcmp),
    /// A call netvm does not decode (it should never have been trapped).
    Other {
        /// The call's number.
        number: i64,
        /// Its six raw arguments.
        args: [u64; 6],
    },
}

/// The kernel truncates `int` arguments to their low 32 bits; so do we.
fn int(raw: u64) -> i32 {
    raw as u32 as i32
}

impl Syscall {
    /// Decodes call `number` with raw arguments `a`.
    pub fn decode(number: i64, a: [u64; 6]) -> Self {
        Self::decode_socket(number, a)
            .or_else(|| Self::decode_transfer(number, a))
            .or_else(|| Self::decode_process(number, a))
            .unwrap_or(Self::Other { number, args: a })
    }

    /// The calls that make, name, connect and configure sockets.
    fn decode_socket(number: i64, a: [u64; 6]) -> Option<Self> {
        let addr_in = || AddrIn { fd: int(a[0]), addr: UserPtr(a[1]), addrlen: a[2] as u32 };
        let addr_out = || AddrOut { fd: int(a[0]), addr: UserPtr(a[1]), addrlen: UserPtr(a[2]) };
        let accept =
            |flags| Accept { fd: int(a[0]), addr: UserPtr(a[1]), addrlen: UserPtr(a[2]), flags };
        Some(match number {
            libc::SYS_socket => {
                Self::Socket(Socket { domain: int(a[0]), ty: int(a[1]), protocol: int(a[2]) })
            }
            libc::SYS_socketpair => Self::Socketpair(Socketpair {
                domain: int(a[0]),
                ty: int(a[1]),
                protocol: int(a[2]),
                sv: UserPtr(a[3]),
            }),
            libc::SYS_bind => Self::Bind(addr_in()),
            libc::SYS_connect => Self::Connect(addr_in()),
            libc::SYS_listen => Self::Listen(Listen { fd: int(a[0]), backlog: int(a[1]) }),
            libc::SYS_accept => Self::Accept(accept(None)),
            libc::SYS_accept4 => Self::Accept(accept(Some(int(a[3])))),
            libc::SYS_getsockname => Self::Getsockname(addr_out()),
            libc::SYS_getpeername => Self::Getpeername(addr_out()),
            libc::SYS_getsockopt => Self::Getsockopt(Getsockopt {
                fd: int(a[0]),
                level: int(a[1]),
                optname: int(a[2]),
                optval: UserPtr(a[3]),
                optlen: UserPtr(a[4]),
            }),
            libc::SYS_setsockopt => Self::Setsockopt(Setsockopt {
                fd: int(a[0]),
                level: int(a[1]),
                optname: int(a[2]),
                optval: UserPtr(a[3]),
                optlen: a[4] as u32,
            }),
            libc::SYS_shutdown => Self::Shutdown(Shutdown { fd: int(a[0]), how: int(a[1]) }),
            libc::SYS_ioctl => {
                Self::Ioctl(Ioctl { fd: int(a[0]), request: a[1] as u32, arg: a[2] })
            }
            _ => return None,
        })
    }

    /// The calls that send and receive data.
    fn decode_transfer(number: i64, a: [u64; 6]) -> Option<Self> {
        let msg = || Msg { fd: int(a[0]), msg: UserPtr(a[1]), flags: int(a[2]) };
        let mmsg = |timeout| Mmsg {
            fd: int(a[0]),
            msgvec: UserPtr(a[1]),
            vlen: a[2] as u32,
            flags: int(a[3]),
            timeout: UserPtr(timeout),
        };
        Some(match number {
            libc::SYS_sendto => Self::Sendto(Sendto {
                fd: int(a[0]),
                buf: UserPtr(a[1]),
                len: a[2],
                flags: int(a[3]),
                addr: UserPtr(a[4]),
                addrlen: a[5] as u32,
            }),
            libc::SYS_recvfrom => Self::Recvfrom(Recvfrom {
                fd: int(a[0]),
                buf: UserPtr(a[1]),
                len: a[2],
                flags: int(a[3]),
                addr: UserPtr(a[4]),
                addrlen: UserPtr(a[5]),
            }),
            libc::SYS_sendmsg => Self::Sendmsg(msg()),
            libc::SYS_recvmsg => Self::Recvmsg(msg()),
            libc::SYS_sendmmsg => Self::Sendmmsg(mmsg(0)),
            libc::SYS_recvmmsg => Self::Recvmmsg(mmsg(a[4])),
            _ => return None,
        })
    }

    /// The calls that create processes and namespaces or reach into another
    /// process.
    fn decode_process(number: i64, a: [u64; 6]) -> Option<Self> {
        Some(match number {
            libc::SYS_clone => Self::Clone(CloneFlags { flags: a[0] }),
            libc::SYS_unshare => Self::Unshare(CloneFlags { flags: a[0] }),
            libc::SYS_setns => Self::Setns(Setns { fd: int(a[0]), nstype: int(a[1]) }),
            libc::SYS_ptrace => Self::ProcessAccess(
                number,
                ProcessAccess { request: Some(a[0] as i64), pid: int(a[1]) },
            ),
            libc::SYS_process_vm_readv | libc::SYS_process_vm_writev | libc::SYS_pidfd_open => {
                Self::ProcessAccess(number, ProcessAccess { request: None, pid: int(a[0]) })
            }
            libc::SYS_pidfd_getfd => Self::PidfdGetfd(PidfdGetfd {
                pidfd: int(a[0]),
                target: int(a[1]),
                flags: a[2] as u32,
            }),
            libc::SYS_kcmp => Self::Kcmp(Kcmp { pid1: int(a[0]), pid2: int(a[1]), ty: int(a[2]) }),
            _ => return None,
        })
    }

    /// The call's number and raw arguments: the inverse of [`Syscall::decode`], for
    /// a call a handler changed (see `SyscallStop::rewrite`). `int` arguments are
    /// passed as the kernel reads them, in the low 32 bits.
    pub fn encode(&self) -> (i64, [u64; 6]) {
        let int = |v: i32| u64::from(v as u32);
        let addr_in = |c: &AddrIn| [int(c.fd), c.addr.0, u64::from(c.addrlen), 0, 0, 0];
        let addr_out = |c: &AddrOut| [int(c.fd), c.addr.0, c.addrlen.0, 0, 0, 0];
        let msg = |c: &Msg| [int(c.fd), c.msg.0, int(c.flags), 0, 0, 0];
        let mmsg =
            |c: &Mmsg| [int(c.fd), c.msgvec.0, u64::from(c.vlen), int(c.flags), c.timeout.0, 0];
        match self {
            Self::Socket(c) => {
                (libc::SYS_socket, [int(c.domain), int(c.ty), int(c.protocol), 0, 0, 0])
            }
            Self::Socketpair(c) => {
                (libc::SYS_socketpair, [int(c.domain), int(c.ty), int(c.protocol), c.sv.0, 0, 0])
            }
            Self::Bind(c) => (libc::SYS_bind, addr_in(c)),
            Self::Connect(c) => (libc::SYS_connect, addr_in(c)),
            Self::Listen(c) => (libc::SYS_listen, [int(c.fd), int(c.backlog), 0, 0, 0, 0]),
            Self::Accept(c) => {
                let args = [int(c.fd), c.addr.0, c.addrlen.0, c.flags.map_or(0, int), 0, 0];
                (if c.flags.is_some() { libc::SYS_accept4 } else { libc::SYS_accept }, args)
            }
            Self::Getsockname(c) => (libc::SYS_getsockname, addr_out(c)),
            Self::Getpeername(c) => (libc::SYS_getpeername, addr_out(c)),
            Self::Getsockopt(c) => (
                libc::SYS_getsockopt,
                [int(c.fd), int(c.level), int(c.optname), c.optval.0, c.optlen.0, 0],
            ),
            Self::Setsockopt(c) => (
                libc::SYS_setsockopt,
                [int(c.fd), int(c.level), int(c.optname), c.optval.0, u64::from(c.optlen), 0],
            ),
            Self::Shutdown(c) => (libc::SYS_shutdown, [int(c.fd), int(c.how), 0, 0, 0, 0]),
            Self::Sendto(c) => (
                libc::SYS_sendto,
                [int(c.fd), c.buf.0, c.len, int(c.flags), c.addr.0, u64::from(c.addrlen)],
            ),
            Self::Recvfrom(c) => (
                libc::SYS_recvfrom,
                [int(c.fd), c.buf.0, c.len, int(c.flags), c.addr.0, c.addrlen.0],
            ),
            Self::Sendmsg(c) => (libc::SYS_sendmsg, msg(c)),
            Self::Recvmsg(c) => (libc::SYS_recvmsg, msg(c)),
            Self::Sendmmsg(c) => (libc::SYS_sendmmsg, mmsg(c)),
            Self::Recvmmsg(c) => (libc::SYS_recvmmsg, mmsg(c)),
            Self::Ioctl(c) => (libc::SYS_ioctl, [int(c.fd), u64::from(c.request), c.arg, 0, 0, 0]),
            Self::Clone(c) => (libc::SYS_clone, [c.flags, 0, 0, 0, 0, 0]),
            Self::Unshare(c) => (libc::SYS_unshare, [c.flags, 0, 0, 0, 0, 0]),
            Self::Setns(c) => (libc::SYS_setns, [int(c.fd), int(c.nstype), 0, 0, 0, 0]),
            Self::ProcessAccess(number, c) => match c.request {
                Some(request) => (*number, [request as u64, int(c.pid), 0, 0, 0, 0]),
                None => (*number, [int(c.pid), 0, 0, 0, 0, 0]),
            },
            Self::PidfdGetfd(c) => {
                (libc::SYS_pidfd_getfd, [int(c.pidfd), int(c.target), u64::from(c.flags), 0, 0, 0])
            }
            Self::Kcmp(c) => (libc::SYS_kcmp, [int(c.pid1), int(c.pid2), int(c.ty), 0, 0, 0]),
            Self::Other { number, args } => (*number, *args),
        }
    }

    /// The call's number.
    pub fn number(&self) -> i64 {
        self.encode().0
    }

    /// The call's name, as in its man page.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Socket(_) => "socket",
            Self::Socketpair(_) => "socketpair",
            Self::Bind(_) => "bind",
            Self::Connect(_) => "connect",
            Self::Listen(_) => "listen",
            Self::Accept(Accept { flags: None, .. }) => "accept",
            Self::Accept(Accept { flags: Some(_), .. }) => "accept4",
            Self::Getsockname(_) => "getsockname",
            Self::Getpeername(_) => "getpeername",
            Self::Getsockopt(_) => "getsockopt",
            Self::Setsockopt(_) => "setsockopt",
            Self::Shutdown(_) => "shutdown",
            Self::Sendto(_) => "sendto",
            Self::Recvfrom(_) => "recvfrom",
            Self::Sendmsg(_) => "sendmsg",
            Self::Recvmsg(_) => "recvmsg",
            Self::Sendmmsg(_) => "sendmmsg",
            Self::Recvmmsg(_) => "recvmmsg",
            Self::Ioctl(_) => "ioctl",
            Self::Clone(_) => "clone",
            Self::Unshare(_) => "unshare",
            Self::Setns(_) => "setns",
            Self::ProcessAccess(libc::SYS_ptrace, _) => "ptrace",
            Self::ProcessAccess(libc::SYS_process_vm_readv, _) => "process_vm_readv",
            Self::ProcessAccess(libc::SYS_process_vm_writev, _) => "process_vm_writev",
            Self::ProcessAccess(..) => "pidfd_open",
            Self::PidfdGetfd(_) => "pidfd_getfd",
            Self::Kcmp(_) => "kcmp",
            Self::Other { .. } => "syscall",
        }
    }

    /// The file descriptor the call works on, if it takes one.
    pub fn fd(&self) -> Option<i32> {
        match *self {
            Self::Socket(_) | Self::Socketpair(_) | Self::Other { .. } => None,
            Self::Clone(_) | Self::Unshare(_) | Self::ProcessAccess(..) | Self::Kcmp(_) => None,
            Self::Setns(c) => Some(c.fd),
            Self::PidfdGetfd(c) => Some(c.pidfd),
            Self::Bind(c) | Self::Connect(c) => Some(c.fd),
            Self::Listen(c) => Some(c.fd),
            Self::Accept(c) => Some(c.fd),
            Self::Getsockname(c) | Self::Getpeername(c) => Some(c.fd),
            Self::Getsockopt(c) => Some(c.fd),
            Self::Setsockopt(c) => Some(c.fd),
            Self::Shutdown(c) => Some(c.fd),
            Self::Sendto(c) => Some(c.fd),
            Self::Recvfrom(c) => Some(c.fd),
            Self::Sendmsg(c) | Self::Recvmsg(c) => Some(c.fd),
            Self::Sendmmsg(c) | Self::Recvmmsg(c) => Some(c.fd),
            Self::Ioctl(c) => Some(c.fd),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_arguments_are_truncated_like_the_kernel_does() {
        let high_garbage = 0xdead_beef_0000_0000;
        let call = Syscall::decode(libc::SYS_socket, [high_garbage | 2, 1, 6, 0, 0, 0]);
        assert_eq!(call, Syscall::Socket(Socket { domain: 2, ty: 1, protocol: 6 }));
        let call = Syscall::decode(libc::SYS_listen, [3, 0xffff_ffff, 0, 0, 0, 0]);
        assert_eq!(call, Syscall::Listen(Listen { fd: 3, backlog: -1 }));
    }

    #[test]
    fn accept_and_accept4_differ_by_flags() {
        let a = Syscall::decode(libc::SYS_accept, [3, 0, 0, 0x80000, 0, 0]);
        let a4 = Syscall::decode(libc::SYS_accept4, [3, 0, 0, 0x80000, 0, 0]);
        assert_eq!(a.name(), "accept");
        assert_eq!(a4.name(), "accept4");
        assert!(matches!(a, Syscall::Accept(Accept { flags: None, .. })));
        assert!(matches!(a4, Syscall::Accept(Accept { flags: Some(0x80000), .. })));
    }

    #[test]
    fn fd_of_each_call() {
        let args = [7, 0x1000, 16, 0, 0x2000, 16];
        for nr in [libc::SYS_bind, libc::SYS_connect, libc::SYS_sendto, libc::SYS_ioctl] {
            assert_eq!(Syscall::decode(nr, args).fd(), Some(7));
        }
        assert_eq!(Syscall::decode(libc::SYS_socket, args).fd(), None);
        assert_eq!(Syscall::decode(libc::SYS_getpid, args).name(), "syscall");
    }

    #[test]
    fn encoding_gives_back_what_was_decoded() {
        let args = [7, 0x1000, 16, 0x40, 0x2000, 28];
        let numbers = [
            libc::SYS_socket,
            libc::SYS_socketpair,
            libc::SYS_bind,
            libc::SYS_connect,
            libc::SYS_listen,
            libc::SYS_accept4,
            libc::SYS_getsockname,
            libc::SYS_getpeername,
            libc::SYS_getsockopt,
            libc::SYS_setsockopt,
            libc::SYS_shutdown,
            libc::SYS_sendto,
            libc::SYS_recvfrom,
            libc::SYS_sendmsg,
            libc::SYS_recvmsg,
            libc::SYS_sendmmsg,
            libc::SYS_recvmmsg,
            libc::SYS_ioctl,
            libc::SYS_clone,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_ptrace,
            libc::SYS_process_vm_readv,
            libc::SYS_pidfd_open,
            libc::SYS_pidfd_getfd,
            libc::SYS_kcmp,
            libc::SYS_getpid,
        ];
        for number in numbers {
            let call = Syscall::decode(number, args);
            let (again, raw) = call.encode();
            assert_eq!(again, number, "{}", call.name());
            assert_eq!(Syscall::decode(again, raw), call, "{}", call.name());
        }
        let accept = Syscall::decode(libc::SYS_accept, args);
        assert_eq!(accept.encode(), (libc::SYS_accept, [7, 0x1000, 16, 0, 0, 0]));
        let socket = Syscall::Socket(Socket { domain: -1, ty: 1, protocol: 0 });
        assert_eq!(socket.encode().1[0], 0xffff_ffff, "an int is passed in 32 bits");
    }

    #[test]
    fn recvmmsg_keeps_its_timeout_and_sendmmsg_has_none() {
        let args = [3, 0x1000, 4, 0, 0x3000, 0];
        match Syscall::decode(libc::SYS_recvmmsg, args) {
            Syscall::Recvmmsg(m) => assert_eq!(m.timeout, UserPtr(0x3000)),
            other => panic!("{other:?}"),
        }
        match Syscall::decode(libc::SYS_sendmmsg, args) {
            Syscall::Sendmmsg(m) => assert!(m.timeout.is_null()),
            other => panic!("{other:?}"),
        }
    }
}
