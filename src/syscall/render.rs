//! How a call reads in the `--trace` log, as strace would show it: its arguments
//! decoded, following pointers to addresses, option values and message headers,
//! and its result with the error's name.

use std::mem::offset_of;

use nix::errno::Errno;

use super::names;
use super::sockaddr::{MAX_LEN, SockAddr};
use super::{Getsockopt, Msg, ReadMemory, Setsockopt, Syscall, UserPtr};

/// The arguments of `call`, decoded; `result` tells whether output arguments hold
/// anything worth showing.
pub fn arguments(memory: &dyn ReadMemory, call: &Syscall, result: i64) -> String {
    let args = Arguments { memory, ok: result >= 0 };
    match *call {
        Syscall::Socket(c) => socket(c.domain, c.ty, c.protocol),
        Syscall::Socketpair(c) => {
            format!("{}, {}", socket(c.domain, c.ty, c.protocol), args.pair(c.sv))
        }
        Syscall::Bind(c) | Syscall::Connect(c) => {
            format!("{}, {}, {}", c.fd, args.addr_in(c.addr, c.addrlen), c.addrlen)
        }
        Syscall::Listen(c) => format!("{}, {}", c.fd, c.backlog),
        Syscall::Accept(c) => {
            let flags =
                c.flags.map(|f| format!(", {}", names::accept_flags(f))).unwrap_or_default();
            format!("{}, {}{flags}", c.fd, args.addr_out(c.addr, c.addrlen))
        }
        Syscall::Getsockname(c) | Syscall::Getpeername(c) => {
            format!("{}, {}", c.fd, args.addr_out(c.addr, c.addrlen))
        }
        Syscall::Getsockopt(c) => args.getsockopt(&c),
        Syscall::Setsockopt(c) => args.setsockopt(&c),
        Syscall::Shutdown(c) => format!("{}, {}", c.fd, names::shutdown_how(c.how)),
        Syscall::Sendto(c) => format!(
            "{}, {:?}, {}, {}, {}, {}",
            c.fd,
            c.buf,
            c.len,
            names::msg_flags(c.flags),
            args.addr_in(c.addr, c.addrlen),
            c.addrlen
        ),
        Syscall::Recvfrom(c) => format!(
            "{}, {:?}, {}, {}, {}",
            c.fd,
            c.buf,
            c.len,
            names::msg_flags(c.flags),
            args.addr_out(c.addr, c.addrlen)
        ),
        Syscall::Sendmsg(c) => args.msg(&c, true),
        Syscall::Recvmsg(c) => args.msg(&c, args.ok),
        Syscall::Sendmmsg(c) | Syscall::Recvmmsg(c) => {
            format!("{}, {:?}, {}, {}", c.fd, c.msgvec, c.vlen, names::msg_flags(c.flags))
        }
        Syscall::Ioctl(c) => format!("{}, {}, {:#x}", c.fd, names::ioctl_request(c.request), c.arg),
        Syscall::Other { number, args } => format!("{number}, {args:x?}"),
        // Process calls have no pointers worth following: their fields will do.
        other => format!("{other:?}"),
    }
}

/// Kernel-internal codes a call interrupted by a signal returns at its exit stop;
/// the tracee never sees them (it sees the restarted call, or EINTR).
const RESTART_CODES: [(i64, &str, &str); 4] = [
    (512, "ERESTARTSYS", "To be restarted if SA_RESTART is set"),
    (513, "ERESTARTNOINTR", "To be restarted"),
    (514, "ERESTARTNOHAND", "To be restarted if no handler"),
    (516, "ERESTART_RESTARTBLOCK", "Interrupted by signal"),
];

/// `0`, `5`, or `-1 ECONNREFUSED (Connection refused)`, as strace shows results.
pub fn result(result: i64) -> String {
    if let Some((_, name, text)) = RESTART_CODES.iter().find(|(code, ..)| -result == *code) {
        format!("? {name} ({text})")
    } else if (-4095..0).contains(&result) {
        let errno = Errno::from_raw(-result as i32);
        format!("-1 {errno:?} ({})", errno.desc())
    } else {
        result.to_string()
    }
}

/// `socket`'s arguments (and the first three of `socketpair`), each named.
fn socket(domain: i32, ty: i32, protocol: i32) -> String {
    format!(
        "{}, {}, {}",
        names::family(domain),
        names::socket_type(ty),
        names::protocol(domain, protocol)
    )
}

/// The fields of a `struct msghdr` the trace shows, decoded one by one from the
/// header's bytes.
struct MsgHeader {
    name: UserPtr,
    namelen: u32,
    iovlen: u64,
    controllen: u64,
}

impl MsgHeader {
    fn parse(bytes: &[u8; size_of::<libc::msghdr>()]) -> Self {
        fn at<const N: usize>(bytes: &[u8], offset: usize) -> [u8; N] {
            bytes[offset..offset + N].try_into().expect("a field inside the header")
        }
        Self {
            name: UserPtr(u64::from_ne_bytes(at(bytes, offset_of!(libc::msghdr, msg_name)))),
            namelen: u32::from_ne_bytes(at(bytes, offset_of!(libc::msghdr, msg_namelen))),
            iovlen: u64::from_ne_bytes(at(bytes, offset_of!(libc::msghdr, msg_iovlen))),
            controllen: u64::from_ne_bytes(at(bytes, offset_of!(libc::msghdr, msg_controllen))),
        }
    }
}

/// What rendering needs besides the call: the tracee's memory, and whether the
/// call succeeded (if not, what it points to holds nothing it wrote).
struct Arguments<'a> {
    memory: &'a dyn ReadMemory,
    ok: bool,
}

impl Arguments<'_> {
    /// The `N` bytes at `ptr`.
    fn read<const N: usize>(&self, ptr: UserPtr) -> Result<[u8; N], Errno> {
        let bytes = self.memory.read_bytes(ptr.0, N)?;
        bytes.try_into().map_err(|_| Errno::EFAULT)
    }

    /// The C `int` at `ptr`.
    fn read_i32(&self, ptr: UserPtr) -> Result<i32, Errno> {
        self.read(ptr).map(i32::from_ne_bytes)
    }

    /// The C `unsigned int` (or `socklen_t`) at `ptr`.
    fn read_u32(&self, ptr: UserPtr) -> Result<u32, Errno> {
        self.read(ptr).map(u32::from_ne_bytes)
    }

    /// An address passed in: `{AF_INET, 1.2.3.4:80}`, `NULL`, or the pointer.
    fn addr_in(&self, ptr: UserPtr, len: u32) -> String {
        self.sockaddr_at(ptr, len as usize)
    }

    /// An address passed out with its value-result length: `{AF_INET, ...}, [16]`
    /// once written, the two pointers otherwise.
    fn addr_out(&self, ptr: UserPtr, len: UserPtr) -> String {
        if self.ok && !ptr.is_null() {
            match self.read_u32(len) {
                Ok(n) => format!("{}, [{n}]", self.sockaddr_at(ptr, n as usize)),
                Err(_) => format!("{ptr:?}, {len:?}"),
            }
        } else {
            format!("{ptr:?}, {len:?}")
        }
    }

    /// `{AF_INET, 1.2.3.4:80}`, `NULL`, or the raw pointer if unreadable.
    fn sockaddr_at(&self, ptr: UserPtr, len: usize) -> String {
        if ptr.is_null() {
            return "NULL".to_owned();
        }
        match self.memory.read_bytes(ptr.0, len.min(MAX_LEN)) {
            Ok(bytes) => match SockAddr::parse(&bytes) {
                Ok(addr) => addr.to_string(),
                Err(_) => format!("{ptr:?} /* {len} bytes, too short */"),
            },
            Err(_) => format!("{ptr:?}"),
        }
    }

    /// `socketpair`'s two descriptors once written (`[3, 4]`), the pointer
    /// otherwise.
    fn pair(&self, sv: UserPtr) -> String {
        match self.read::<8>(sv) {
            Ok(bytes) if self.ok => {
                let (a, b) = bytes.split_at(4);
                let int = |half: &[u8]| i32::from_ne_bytes(half.try_into().expect("4 bytes"));
                format!("[{}, {}]", int(a), int(b))
            }
            _ => format!("{sv:?}"),
        }
    }

    /// An option value: `[1]` for an int, the pointer for anything longer.
    fn option_value(&self, ptr: UserPtr, len: u32) -> String {
        match (len, self.read_i32(ptr)) {
            (4, Ok(v)) => format!("[{v}]"),
            _ => format!("{ptr:?}"),
        }
    }

    fn getsockopt(&self, c: &Getsockopt) -> String {
        let value = match self.read_u32(c.optlen) {
            Ok(len) if self.ok => format!("{}, [{len}]", self.option_value(c.optval, len)),
            _ => format!("{:?}, {:?}", c.optval, c.optlen),
        };
        let (level, name) = (names::level(c.level), names::option(c.level, c.optname));
        format!("{}, {level}, {name}, {value}", c.fd)
    }

    fn setsockopt(&self, c: &Setsockopt) -> String {
        format!(
            "{}, {}, {}, {}, {}",
            c.fd,
            names::level(c.level),
            names::option(c.level, c.optname),
            self.option_value(c.optval, c.optlen),
            c.optlen
        )
    }

    /// `sendmsg`'s or `recvmsg`'s arguments; the header's name is followed if
    /// `shows_name` (what was sent, or what a successful receive wrote).
    fn msg(&self, c: &Msg, shows_name: bool) -> String {
        format!("{}, {}, {}", c.fd, self.msghdr(c.msg, shows_name), names::msg_flags(c.flags))
    }

    /// `{name={AF_INET, ...}, iov=2, control=24}`.
    fn msghdr(&self, ptr: UserPtr, shows_name: bool) -> String {
        let Ok(bytes) = self.read(ptr) else {
            return format!("{ptr:?}");
        };
        let msg = MsgHeader::parse(&bytes);
        let name = if shows_name {
            self.sockaddr_at(msg.name, msg.namelen as usize)
        } else {
            format!("{:?}", msg.name)
        };
        format!("{{name={name}, iov={}, control={}}}", msg.iovlen, msg.controllen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::{AddrIn, AddrOut, Socket, Socketpair};

    /// Tracee memory made of a few regions; anything else is unmapped.
    #[derive(Default)]
    struct FakeMemory(Vec<(u64, Vec<u8>)>);

    impl FakeMemory {
        fn with(mut self, addr: u64, bytes: &[u8]) -> Self {
            self.0.push((addr, bytes.to_vec()));
            self
        }
    }

    impl ReadMemory for FakeMemory {
        fn read_bytes(&self, addr: u64, len: usize) -> Result<Vec<u8>, Errno> {
            self.0
                .iter()
                .find(|(at, bytes)| addr >= *at && addr + len as u64 <= at + bytes.len() as u64)
                .map(|(at, bytes)| bytes[(addr - at) as usize..][..len].to_vec())
                .ok_or(Errno::EFAULT)
        }
    }

    /// `ip:port` as a `struct sockaddr_in`.
    fn sockaddr_in(port: u16, ip: [u8; 4]) -> Vec<u8> {
        super::super::sockaddr::encode((ip, port).into(), libc::AF_INET)
    }

    #[test]
    fn socket_arguments_are_named() {
        let call = Syscall::Socket(Socket {
            domain: libc::AF_INET,
            ty: libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            protocol: libc::IPPROTO_TCP,
        });
        assert_eq!(
            arguments(&FakeMemory::default(), &call, 3),
            "AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP"
        );
    }

    #[test]
    fn connect_shows_the_address_it_reads() {
        let memory = FakeMemory::default().with(0x1000, &sockaddr_in(8080, [127, 0, 0, 1]));
        let call = Syscall::Connect(AddrIn { fd: 3, addr: UserPtr(0x1000), addrlen: 16 });
        assert_eq!(arguments(&memory, &call, 0), "3, {AF_INET, 127.0.0.1:8080}, 16");
        let bad = Syscall::Connect(AddrIn { fd: 3, addr: UserPtr(8), addrlen: 16 });
        assert_eq!(arguments(&memory, &bad, -14), "3, 0x8, 16");
        let short = Syscall::Connect(AddrIn { fd: 3, addr: UserPtr(0x1000), addrlen: 8 });
        assert_eq!(arguments(&memory, &short, -22), "3, 0x1000 /* 8 bytes, too short */, 8");
    }

    #[test]
    fn output_arguments_show_only_once_written() {
        let memory = FakeMemory::default()
            .with(0x1000, &sockaddr_in(80, [10, 0, 0, 2]))
            .with(0x2000, &16u32.to_ne_bytes())
            .with(0x3000, &[3, 0, 0, 0, 4, 0, 0, 0]);
        let addr = AddrOut { fd: 5, addr: UserPtr(0x1000), addrlen: UserPtr(0x2000) };
        let call = Syscall::Getpeername(addr);
        assert_eq!(arguments(&memory, &call, 0), "5, {AF_INET, 10.0.0.2:80}, [16]");
        assert_eq!(arguments(&memory, &call, -107), "5, 0x1000, 0x2000");
        let pair = Syscall::Socketpair(Socketpair {
            domain: libc::AF_UNIX,
            ty: libc::SOCK_STREAM,
            protocol: 0,
            sv: UserPtr(0x3000),
        });
        assert_eq!(arguments(&memory, &pair, 0), "AF_UNIX, SOCK_STREAM, 0, [3, 4]");
        assert_eq!(arguments(&memory, &pair, -24), "AF_UNIX, SOCK_STREAM, 0, 0x3000");
    }

    #[test]
    fn a_message_header_shows_its_name_and_lengths() {
        let mut header = [0u8; size_of::<libc::msghdr>()];
        let mut put = |offset: usize, field: &[u8]| {
            header[offset..offset + field.len()].copy_from_slice(field);
        };
        put(offset_of!(libc::msghdr, msg_name), &0x1000u64.to_ne_bytes());
        put(offset_of!(libc::msghdr, msg_namelen), &16u32.to_ne_bytes());
        put(offset_of!(libc::msghdr, msg_iovlen), &2u64.to_ne_bytes());
        put(offset_of!(libc::msghdr, msg_controllen), &24u64.to_ne_bytes());
        let memory = FakeMemory::default()
            .with(0x1000, &sockaddr_in(53, [1, 1, 1, 1]))
            .with(0x2000, &header);
        let msg = Msg { fd: 4, msg: UserPtr(0x2000), flags: libc::MSG_DONTWAIT };
        assert_eq!(
            arguments(&memory, &Syscall::Sendmsg(msg), 9),
            "4, {name={AF_INET, 1.1.1.1:53}, iov=2, control=24}, MSG_DONTWAIT"
        );
        assert_eq!(
            arguments(&memory, &Syscall::Recvmsg(msg), -11),
            "4, {name=0x1000, iov=2, control=24}, MSG_DONTWAIT"
        );
    }

    #[test]
    fn results_read_like_strace() {
        assert_eq!(result(0), "0");
        assert_eq!(result(17), "17");
        assert_eq!(
            result(-(libc::EAFNOSUPPORT as i64)),
            "-1 EAFNOSUPPORT (Address family not supported by protocol)"
        );
        assert_eq!(result(-512), "? ERESTARTSYS (To be restarted if SA_RESTART is set)");
    }
}
