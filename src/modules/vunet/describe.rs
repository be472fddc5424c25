//! Renders a socket call's arguments for the `--trace` log, decoding what its
//! pointers point to: addresses, option values, message headers.

use crate::tracer::TraceeMemory;
use crate::tracer::syscall::{Syscall, UserPtr};

use super::names;
use super::sockaddr::SockAddr;

/// The longest address netvm decodes (`sizeof(struct sockaddr_storage)`).
const MAX_SOCKADDR: usize = 128;

/// The arguments of `call`, decoded; `result` tells whether output arguments hold
/// anything worth showing.
pub fn describe(memory: &TraceeMemory, call: &Syscall, result: i64) -> String {
    let ok = result >= 0;
    let addr_in = |ptr: UserPtr, len: u32| sockaddr_at(memory, ptr, len as usize);
    let addr_out = |ptr: UserPtr, len: UserPtr| {
        if ok && !ptr.is_null() {
            match memory.read::<u32>(len.0) {
                Ok(n) => format!("{}, [{n}]", sockaddr_at(memory, ptr, n as usize)),
                Err(_) => format!("{ptr:?}, {len:?}"),
            }
        } else {
            format!("{ptr:?}, {len:?}")
        }
    };
    match *call {
        Syscall::Socket(c) => format!(
            "{}, {}, {}",
            names::family(c.domain),
            names::socket_type(c.ty),
            names::protocol(c.domain, c.protocol)
        ),
        Syscall::Socketpair(c) => {
            let pair = match memory.read::<[i32; 2]>(c.sv.0) {
                Ok([a, b]) if ok => format!("[{a}, {b}]"),
                _ => format!("{:?}", c.sv),
            };
            format!(
                "{}, {}, {}, {pair}",
                names::family(c.domain),
                names::socket_type(c.ty),
                names::protocol(c.domain, c.protocol)
            )
        }
        Syscall::Bind(c) | Syscall::Connect(c) => {
            format!("{}, {}, {}", c.fd, addr_in(c.addr, c.addrlen), c.addrlen)
        }
        Syscall::Listen(c) => format!("{}, {}", c.fd, c.backlog),
        Syscall::Accept(c) => {
            let flags =
                c.flags.map(|f| format!(", {}", names::accept_flags(f))).unwrap_or_default();
            format!("{}, {}{flags}", c.fd, addr_out(c.addr, c.addrlen))
        }
        Syscall::Getsockname(c) | Syscall::Getpeername(c) => {
            format!("{}, {}", c.fd, addr_out(c.addr, c.addrlen))
        }
        Syscall::Getsockopt(c) => {
            let value = match memory.read::<u32>(c.optlen.0) {
                Ok(len) if ok => format!("{}, [{len}]", option_value(memory, c.optval, len)),
                _ => format!("{:?}, {:?}", c.optval, c.optlen),
            };
            let (level, name) = (names::level(c.level), names::option(c.level, c.optname));
            format!("{}, {level}, {name}, {value}", c.fd)
        }
        Syscall::Setsockopt(c) => format!(
            "{}, {}, {}, {}, {}",
            c.fd,
            names::level(c.level),
            names::option(c.level, c.optname),
            option_value(memory, c.optval, c.optlen),
            c.optlen
        ),
        Syscall::Shutdown(c) => format!("{}, {}", c.fd, names::shutdown_how(c.how)),
        Syscall::Sendto(c) => format!(
            "{}, {:?}, {}, {}, {}, {}",
            c.fd,
            c.buf,
            c.len,
            names::msg_flags(c.flags),
            addr_in(c.addr, c.addrlen),
            c.addrlen
        ),
        Syscall::Recvfrom(c) => format!(
            "{}, {:?}, {}, {}, {}",
            c.fd,
            c.buf,
            c.len,
            names::msg_flags(c.flags),
            addr_out(c.addr, c.addrlen)
        ),
        Syscall::Sendmsg(c) | Syscall::Recvmsg(c) => {
            let shows_name = matches!(call, Syscall::Sendmsg(_)) || ok;
            format!(
                "{}, {}, {}",
                c.fd,
                msghdr(memory, c.msg, shows_name),
                names::msg_flags(c.flags)
            )
        }
        Syscall::Sendmmsg(c) | Syscall::Recvmmsg(c) => {
            format!("{}, {:?}, {}, {}", c.fd, c.msgvec, c.vlen, names::msg_flags(c.flags))
        }
        Syscall::Ioctl(c) => format!("{}, {}, {:#x}", c.fd, names::ioctl_request(c.request), c.arg),
        Syscall::Other { number, args } => format!("{number}, {args:x?}"),
        // Process calls are another module's; vunet never sees them.
        other => format!("{other:?}"),
    }
}

/// `{AF_INET, 1.2.3.4:80}`, `NULL`, or the raw pointer if unreadable.
fn sockaddr_at(memory: &TraceeMemory, ptr: UserPtr, len: usize) -> String {
    if ptr.is_null() {
        return "NULL".to_owned();
    }
    match memory.read_bytes(ptr.0, len.min(MAX_SOCKADDR)) {
        Ok(bytes) => match SockAddr::parse(&bytes) {
            Ok(addr) => addr.to_string(),
            Err(_) => format!("{ptr:?} /* {len} bytes, too short */"),
        },
        Err(_) => format!("{ptr:?}"),
    }
}

/// An option value: `[1]` for an int, the pointer for anything longer.
fn option_value(memory: &TraceeMemory, ptr: UserPtr, len: u32) -> String {
    match (len, memory.read::<i32>(ptr.0)) {
        (4, Ok(v)) => format!("[{v}]"),
        _ => format!("{ptr:?}"),
    }
}

/// `{name={AF_INET, ...}, iov=2, control=24}`.
fn msghdr(memory: &TraceeMemory, ptr: UserPtr, shows_name: bool) -> String {
    let Ok(msg) = memory.read::<libc::msghdr>(ptr.0) else {
        return format!("{ptr:?}");
    };
    let name = if shows_name {
        sockaddr_at(memory, UserPtr(msg.msg_name as u64), msg.msg_namelen as usize)
    } else {
        format!("{:?}", UserPtr(msg.msg_name as u64))
    };
    format!("{{name={name}, iov={}, control={}}}", msg.msg_iovlen, msg.msg_controllen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracer::syscall::{AddrIn, Socket};

    fn own() -> TraceeMemory {
        TraceeMemory::new(nix::unistd::getpid())
    }

    #[test]
    fn socket_arguments_are_named() {
        let call = Syscall::Socket(Socket {
            domain: libc::AF_INET,
            ty: libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            protocol: libc::IPPROTO_TCP,
        });
        assert_eq!(describe(&own(), &call, 3), "AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP");
    }

    #[test]
    fn connect_shows_the_address_it_reads() {
        // SAFETY: sockaddr_in is plain data, valid when zeroed.
        let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sin.sin_family = libc::AF_INET as u16;
        sin.sin_port = 8080u16.to_be();
        sin.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let addr = UserPtr(&sin as *const _ as u64);
        let call = Syscall::Connect(AddrIn { fd: 3, addr, addrlen: 16 });
        assert_eq!(describe(&own(), &call, 0), "3, {AF_INET, 127.0.0.1:8080}, 16");
        let bad = Syscall::Connect(AddrIn { fd: 3, addr: UserPtr(8), addrlen: 16 });
        assert_eq!(describe(&own(), &bad, -14), "3, 0x8, 16");
    }
}
