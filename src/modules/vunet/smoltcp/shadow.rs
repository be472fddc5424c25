//! The kernel's own answers for the socket options netvm does not model.
//!
//! netvm keeps the options that change what its stacks do (TTL, type of
//! service, `IP_RECVERR`, `TCP_NODELAY`, ...) itself (see `sockopt.rs`). The
//! many others (`IP_RECVERR_RFC4884`, `IP_BIND_ADDRESS_NO_PORT`,
//! `TCP_WINDOW_CLAMP`, `IPV6_AUTOFLOWLABEL`, an unknown name at a known
//! level, ...) change nothing netvm does, but a program that sets or reads
//! one must get Linux's answer: its range checks, its defaults, what it keeps.
//! So a TCP or UDP socket of the same family in the supervisor's own network
//! namespace answers them: a *shadow*, never bound nor connected.
//!
//! A socket gets a shadow of its own at its first such `setsockopt` that
//! succeeds (held against the supervisor's descriptor budget like any other
//! supervisor descriptor of the process); until then, a pristine socket of its
//! kind, one per kind and stack, answers its `getsockopt`. Where Linux checks
//! a capability (`TCP_REPAIR`, netfilter's options, ...), it checks the
//! program's: the supervisor asks with its own cut to the program's.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

use super::inet::Family;
use super::ports::Proto;
use super::proc::{as_capable_as, with_effective};
use crate::fdtable::SocketId;
use crate::modules::vunet::budget::{Holder, SharedBudget};

/// The longest option value passed through (Linux's `optmem_max` is 20 KiB
/// by default; no option netvm passes on takes more).
pub(super) const MAX_VALUE: usize = 64 * 1024;

/// At most this many sockets of a stack without a descriptor budget (a stack
/// mounted without a network) have shadows of their own.
const UNBUDGETED_SHADOWS: usize = 1024;

/// An address the supervisor never maps (below `vm.mmap_min_addr`): given to
/// the kernel for a value the program's memory could not supply, so that the
/// kernel says `EFAULT` exactly when it reads the value.
const UNREADABLE: usize = 8;

/// An option value as the program's memory holds it, for the kernel to read
/// as it would have read the program's: the bytes that could be read, right
/// before a page that cannot be, so that the kernel faults (`EFAULT`) where it
/// would have faulted in the program, and only if it reads that far (an `int`
/// option reads 4 bytes whatever the length given).
pub(super) struct Value {
    /// The mapping: the bytes' pages, then the guard page.
    map: *mut libc::c_void,
    size: usize,
    /// Where the bytes start.
    start: *const libc::c_void,
}

impl Value {
    /// `bytes`, the readable start of a longer value, before a guard page.
    pub(super) fn guarded(bytes: &[u8]) -> Option<Self> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let data = bytes.len().div_ceil(page) * page;
        let size = data + page;
        // SAFETY: a fresh private anonymous mapping, owned by the Value.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return None;
        }
        // Unmapped again on every way out.
        let mut value = Self { map, size, start: std::ptr::null() };
        // SAFETY: the last page lies inside the mapping just made.
        let guard = unsafe { map.cast::<u8>().add(data) };
        // SAFETY: `guard` is page-aligned, within the mapping.
        if unsafe { libc::mprotect(guard.cast(), page, libc::PROT_NONE) } != 0 {
            return None;
        }
        // SAFETY: the bytes end where the guard page starts, inside the
        // mapping's writable pages (`data` bytes, at least `bytes.len()`).
        let start = unsafe { guard.sub(bytes.len()) };
        // SAFETY: `start` has room for `bytes` (see above); they do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), start, bytes.len()) };
        value.start = start.cast();
        Some(value)
    }

    /// Where the kernel is to read the value.
    fn as_ptr(&self) -> *const libc::c_void {
        self.start
    }
}

impl Drop for Value {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `guarded` and is unmapped once.
        unsafe { libc::munmap(self.map, self.size) };
    }
}

/// Who asks about an option: the socket, the process (whose share of the
/// descriptor budget a new shadow takes) and the thread (whose capabilities
/// the kernel checks: they are a thread's own).
#[derive(Clone, Copy, Debug)]
pub(super) struct Asker {
    pub(super) socket: SocketId,
    pub(super) process: Pid,
    pub(super) thread: Pid,
}

/// The shadows of one stack's sockets.
#[derive(Default)]
pub(super) struct Shadows {
    /// One untouched socket per kind, answering `getsockopt` for sockets
    /// without a shadow of their own.
    pristine: HashMap<(Family, Proto), OwnedFd>,
    /// The sockets' own shadows, and who holds each.
    own: HashMap<SocketId, (OwnedFd, Holder)>,
    budget: Option<SharedBudget>,
}

impl Shadows {
    /// Shadows charged to `budget`.
    pub(super) fn new(budget: SharedBudget) -> Self {
        Self { budget: Some(budget), ..Self::default() }
    }

    /// Linux's `getsockopt(level, name)` of the asker's socket (a `family`
    /// `proto` socket) with `room` bytes (as the program gave it, negative or not):
    /// the value and the length the kernel reports.
    pub(super) fn get(
        &mut self,
        asker: Asker,
        (family, proto): (Family, Proto),
        (level, name): (i32, i32),
        room: i32,
    ) -> Result<(Vec<u8>, usize), Errno> {
        let fd = match self.own.get(&asker.socket) {
            Some((fd, _)) => fd.as_raw_fd(),
            None => self.pristine(family, proto)?,
        };
        let mut value = vec![0u8; (room.max(0) as usize).min(MAX_VALUE)];
        let mut len = if room < 0 { room as libc::socklen_t } else { value.len() as libc::socklen_t };
        let buffer = value.as_mut_ptr().cast();
        // SAFETY: the kernel writes at most `len` bytes into `value`, which
        // holds that many (or nothing, for a negative `len` it refuses).
        let done = as_capable_as(asker.thread, || unsafe {
            libc::getsockopt(fd, level, name, buffer, &mut len)
        });
        if done < 0 {
            return Err(Errno::last());
        }
        let reported = len as usize;
        value.truncate(reported.min(value.len()));
        Ok((value, reported))
    }

    /// Linux's `setsockopt(level, name)` of the asker's socket with the
    /// value the program gave, `optlen` bytes long, of which `readable` are
    /// the bytes its memory holds (all of them, or those before the first it
    /// does not): on the socket's shadow, made for it if it has none (and
    /// dropped again if the kernel refuses the value).
    pub(super) fn set(
        &mut self,
        asker: Asker,
        (family, proto): (Family, Proto),
        (level, name): (i32, i32),
        (readable, optlen): (&[u8], u32),
    ) -> Result<(), Errno> {
        // Short of the length given, the bytes go before a guard page.
        let guarded = match readable.len() < optlen as usize {
            true => Some(Value::guarded(readable).ok_or(Errno::ENOMEM)?),
            false => None,
        };
        let pointer = guarded.as_ref().map_or(readable.as_ptr().cast(), Value::as_ptr);
        let id = asker.socket;
        let made = !self.own.contains_key(&id);
        if made {
            let holder = Some(asker.process);
            self.take(holder)?;
            match kernel_socket(family, proto) {
                Ok(fd) => {
                    self.own.insert(id, (fd, holder));
                }
                Err(error) => {
                    self.give(holder);
                    return Err(error);
                }
            }
        }
        let fd = self.own[&id].0.as_raw_fd();
        // SAFETY: the kernel reads at most `optlen` bytes at `pointer`: all of
        // `readable`, or its bytes and then a page it cannot read (EFAULT).
        let done = as_capable_as(asker.thread, || unsafe {
            libc::setsockopt(fd, level, name, pointer, optlen)
        });
        if done < 0 {
            let error = Errno::last();
            if made {
                self.forget(id);
            }
            return Err(error);
        }
        Ok(())
    }

    /// Whether the kernel has a handler for option `(level, name)` of a
    /// `family` `proto` socket (`getting` or setting) that refuses a caller
    /// without capabilities (`EPERM`), as netfilter's do, rather than knowing
    /// no such option (`ENOPROTOOPT`). Asked of the pristine socket with no
    /// capabilities at all, so that the kernel reads no value: none is given.
    pub(super) fn guarded(
        &mut self,
        (family, proto): (Family, Proto),
        (level, name): (i32, i32),
        getting: bool,
    ) -> bool {
        let Ok(fd) = self.pristine(family, proto) else { return false };
        let mut len: libc::socklen_t = 0;
        let unreadable = UNREADABLE as *mut libc::c_void;
        let done = with_effective(0, || {
            // SAFETY: the kernel refuses the call before it looks at the value
            // (an address it cannot use, and no length), or fails on it.
            unsafe {
                if getting {
                    libc::getsockopt(fd, level, name, unreadable, &mut len)
                } else {
                    libc::setsockopt(fd, level, name, unreadable, 0)
                }
            }
        });
        done < 0 && Errno::last() == Errno::EPERM
    }

    /// Lets go of socket `id`'s shadow, if it has one.
    pub(super) fn forget(&mut self, id: SocketId) {
        if let Some((fd, holder)) = self.own.remove(&id) {
            drop(fd);
            self.give(holder);
        }
    }

    /// The pristine socket of a kind, made on first use.
    fn pristine(&mut self, family: Family, proto: Proto) -> Result<RawFd, Errno> {
        if let Some(fd) = self.pristine.get(&(family, proto)) {
            return Ok(fd.as_raw_fd());
        }
        let fd = kernel_socket(family, proto)?;
        let raw = fd.as_raw_fd();
        self.pristine.insert((family, proto), fd);
        Ok(raw)
    }

    /// Takes a descriptor from the budget for `holder` (`ENOBUFS` past its share).
    fn take(&mut self, holder: Holder) -> Result<(), Errno> {
        match &self.budget {
            Some(budget) => budget.borrow_mut().take(holder),
            None if self.own.len() >= UNBUDGETED_SHADOWS => Err(Errno::ENOBUFS),
            None => Ok(()),
        }
    }

    /// Gives `holder`'s descriptor back to the budget.
    fn give(&mut self, holder: Holder) {
        if let Some(budget) = &self.budget {
            budget.borrow_mut().give(holder);
        }
    }
}

/// A socket of the supervisor of the kind of a `family` `proto` socket.
fn kernel_socket(family: Family, proto: Proto) -> Result<OwnedFd, Errno> {
    let ty = match proto {
        Proto::Tcp => libc::SOCK_STREAM,
        _ => libc::SOCK_DGRAM,
    };
    // SAFETY: socket() takes plain integers.
    let fd = unsafe { libc::socket(family.raw(), ty | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: `fd` was just made and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> SocketId {
        SocketId(n)
    }

    fn asker(n: u64) -> Asker {
        let me = nix::unistd::getpid();
        Asker { socket: id(n), process: me, thread: nix::unistd::gettid() }
    }

    #[test]
    fn the_kernel_judges_and_keeps_what_it_is_given() {
        let mut shadows = Shadows::default();
        let tcp = (Family::V4, Proto::Tcp);
        const TCP_WINDOW_CLAMP: i32 = 10;
        let clamp = (libc::IPPROTO_TCP, TCP_WINDOW_CLAMP);
        let get = |shadows: &mut Shadows, n| {
            let (value, len) = shadows.get(asker(n), tcp, clamp, 4).unwrap();
            (i32::from_ne_bytes(value.try_into().unwrap()), len)
        };
        assert_eq!(get(&mut shadows, 1), (0, 4));
        let value = 5000i32.to_ne_bytes();
        shadows.set(asker(1), tcp, clamp, (&value, 4)).unwrap();
        assert!(get(&mut shadows, 1).0 > 0, "kept");
        assert_eq!(get(&mut shadows, 2), (0, 4), "another socket is untouched");
        // Refused values leave no shadow behind.
        assert_eq!(
            shadows.set(asker(3), tcp, (libc::IPPROTO_TCP, libc::TCP_MAXSEG), (&[1], 1)),
            Err(Errno::EINVAL)
        );
        assert!(!shadows.own.contains_key(&id(3)));
        // What the program could not supply the kernel finds unreadable, if
        // it reads that far (an int option reads an int).
        assert_eq!(shadows.set(asker(4), tcp, clamp, (&[], 4)), Err(Errno::EFAULT));
        assert_eq!(shadows.set(asker(4), tcp, clamp, (&[0; 4], 4096)), Ok(()));
        assert_eq!(shadows.set(asker(6), tcp, clamp, (&[0; 3], 4)), Err(Errno::EFAULT));
        assert_eq!(shadows.get(asker(5), tcp, clamp, -1), Err(Errno::EINVAL));
        shadows.forget(id(1));
        shadows.forget(id(4));
        assert!(shadows.own.is_empty());
        // Netfilter's options refuse a caller without capabilities, if the
        // kernel has them at all; an IPv4 option is no such thing.
        assert!(!shadows.guarded(tcp, (libc::IPPROTO_IP, libc::IP_TTL), true));
    }
}
