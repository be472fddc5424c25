//! Endpoint names: the kernel-side identity of a bound virtual socket.
//!
//! A virtual TCP or UDP socket is an `AF_UNIX` socket in the tracee (its carrier).
//! When the program binds it, netvm binds the carrier to a fresh abstract name, and
//! connections and datagrams between sockets of one stack are plain kernel `AF_UNIX`
//! traffic between carriers: the data path never enters the supervisor.
//!
//! A name is 13 characters, so its `sockaddr_un` is exactly as long as a
//! `sockaddr_in`: `"nv"`, 4 random characters per session (no clash with another
//! netvm), two for the stack, and a 5-character counter, all from a 64-character
//! alphabet with no space, newline, NUL or `@`, so that `/proc/net/unix` and
//! `ss -x` show each on one readable line, like `@nvq3Xz0000004`.

use std::os::fd::AsRawFd;

use nix::errno::Errno;
pub use nix::sys::socket::SockType;
use nix::sys::socket::{AddressFamily, SockFlag, UnixAddr, bind, socket};

use crate::modules::vunet::stack::random_bytes;

/// Length of an endpoint name.
pub const NAME_LEN: usize = 13;

/// The abstract name of one bound carrier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EndpointName(pub [u8; NAME_LEN]);

/// The characters names are made of.
const ALPHABET: &[u8; 64] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";

/// How many stacks a session can name (two characters each).
pub const MAX_STACKS: usize = ALPHABET.len() * ALPHABET.len();

/// Hands out the names of one stack.
#[derive(Debug)]
pub struct Namer {
    prefix: [u8; 8],
    next: u64,
}

impl Namer {
    /// A namer for stack number `stack` (below [`MAX_STACKS`]) of session `session`.
    pub fn new(session: [u8; 4], stack: usize) -> Self {
        let mut prefix = [0u8; 8];
        prefix[..2].copy_from_slice(b"nv");
        prefix[2..6].copy_from_slice(&session);
        let stack = stack % MAX_STACKS;
        prefix[6] = ALPHABET[stack / ALPHABET.len()];
        prefix[7] = ALPHABET[stack % ALPHABET.len()];
        Self { prefix, next: 1 }
    }

    /// A name never handed out before (64^5, some a billion, per stack).
    pub fn fresh(&mut self) -> EndpointName {
        let mut name = [0u8; NAME_LEN];
        name[..8].copy_from_slice(&self.prefix);
        let mut n = self.next;
        for digit in name[8..].iter_mut().rev() {
            *digit = ALPHABET[(n % 64) as usize];
            n /= 64;
        }
        self.next += 1;
        EndpointName(name)
    }
}

impl EndpointName {
    /// The `struct sockaddr_un` for this abstract name.
    pub fn sockaddr(&self) -> Vec<u8> {
        let mut bytes = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        bytes.push(0);
        bytes.extend_from_slice(&self.0);
        bytes
    }

    /// The name inside a `sockaddr_un` the kernel reported, if it is one of ours.
    pub fn from_sockaddr(bytes: &[u8]) -> Option<Self> {
        let name = bytes.strip_prefix(&(libc::AF_UNIX as u16).to_ne_bytes())?.strip_prefix(&[0])?;
        Self::from_abstract(name)
    }

    /// The abstract name `name` (without its leading NUL), if it is one of ours.
    pub fn from_abstract(name: &[u8]) -> Option<Self> {
        name.try_into().ok().map(Self)
    }

    /// Whether some carrier of type `ty` still holds this name: the kernel frees an
    /// abstract name when the last reference to its socket closes, so a bind attempt
    /// tells. Abstract names are per socket type, so the probe's type must match.
    pub fn is_held(&self, ty: SockType) -> bool {
        let Ok(probe) = socket(AddressFamily::Unix, ty, SockFlag::SOCK_CLOEXEC, None) else {
            return true; // cannot tell: assume held, the safe answer for conflicts
        };
        let Ok(addr) = UnixAddr::new_abstract(&self.0) else {
            return true;
        };
        match bind(probe.as_raw_fd(), &addr) {
            Ok(()) => false,
            Err(Errno::EADDRINUSE) => true,
            Err(_) => true,
        }
    }
}

/// Whether `sockaddr` (an address a program passes) names a carrier of session
/// `session`: an abstract `AF_UNIX` name starting with the session's prefix.
pub fn is_carrier_address(session: [u8; 4], sockaddr: &[u8]) -> bool {
    let Some(name) = sockaddr
        .strip_prefix(&(libc::AF_UNIX as u16).to_ne_bytes())
        .and_then(|rest| rest.strip_prefix(&[0]))
    else {
        return false;
    };
    name.len() > 6 && name.starts_with(b"nv") && name[2..6] == session
}

/// Random bytes for a session prefix.
pub fn session_id() -> [u8; 4] {
    let id = random_bytes::<4>().unwrap_or_else(|_| std::process::id().to_ne_bytes());
    id.map(|b| ALPHABET[usize::from(b) % ALPHABET.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_recognised() {
        let mut namer = Namer::new(*b"abcd", 7);
        let (a, b) = (namer.fresh(), namer.fresh());
        assert_ne!(a, b);
        assert_eq!(&a.0, b"nvabcd0700001");
        assert_eq!(&Namer::new(*b"abcd", 64 * 3 + 10).fresh().0, b"nvabcd3A00001");
        let printable = |c: &u8| c.is_ascii_graphic() && *c != b'@';
        let session = session_id();
        assert!(session.iter().all(printable));
        let mut busy = Namer::new(session, MAX_STACKS - 1);
        busy.next = 64u64.pow(5) - 1;
        assert!(busy.fresh().0.iter().all(printable));
        assert_eq!(a.sockaddr().len(), size_of::<libc::sockaddr_in>());
        assert_eq!(EndpointName::from_sockaddr(&a.sockaddr()), Some(a));
        assert_eq!(EndpointName::from_sockaddr(b"\x01\x00/tmp/x"), None);
    }

    #[test]
    fn carrier_addresses_are_recognised_by_session() {
        let mut namer = Namer::new([9, 8, 7, 6], 1);
        let name = namer.fresh();
        assert!(is_carrier_address([9, 8, 7, 6], &name.sockaddr()));
        assert!(!is_carrier_address([9, 8, 7, 5], &name.sockaddr()));
        let path =
            [&(libc::AF_UNIX as u16).to_ne_bytes()[..], b"/run/nv\x09\x08\x07\x06x"].concat();
        assert!(!is_carrier_address([9, 8, 7, 6], &path));
    }

    #[test]
    fn a_name_is_held_while_a_socket_is_bound_to_it() {
        // A stack number no other test uses: tests run in parallel in one session.
        let name = Namer::new(session_id(), MAX_STACKS - 1).fresh();
        assert!(!name.is_held(SockType::Stream));
        let holder =
            socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).unwrap();
        bind(holder.as_raw_fd(), &UnixAddr::new_abstract(&name.0).unwrap()).unwrap();
        assert!(name.is_held(SockType::Stream));
        assert!(!name.is_held(SockType::Datagram), "names are per socket type");
        drop(holder);
        // A child another test forks holds a copy of every fd until it executes:
        // the name is free once that copy is gone too.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while name.is_held(SockType::Stream) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(!name.is_held(SockType::Stream));
    }
}
