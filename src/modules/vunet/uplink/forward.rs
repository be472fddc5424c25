//! Port forwards: a port of the host's, published to a port of a stack's
//! (`netvm run -p 8080:lwip1:80`, `publish` in `[[vunet.uplink]]`).
//!
//! The host's listening sockets are made before the sandbox moves the
//! supervisor out of the host's network namespace ([`Publish::listen`]), so a
//! taken port is a clear error at start, and an administrator may publish a
//! port below 1024. Each connection (each UDP client) then enters the session
//! through the uplink as if from its client, so the service sees the client's
//! real address, where Linux DNAT would show it; a client on the host's own
//! loopback appears as the uplink's address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::str::FromStr;

use nix::errno::Errno;
use nix::sys::socket::{self, Backlog, SockaddrStorage, sockopt};

/// The transport a forward carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Transport {
    /// `tcp` or `udp`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// One forward as written: `[HOSTADDR:]HOSTPORT:STACK:PORT[/tcp|/udp]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    /// The host's address to listen on; `None`: every address of both families.
    pub host: Option<IpAddr>,
    /// The host's port.
    pub host_port: u16,
    /// The stack, by name.
    pub stack: String,
    /// The stack's port.
    pub port: u16,
    /// The transport.
    pub transport: Transport,
}

impl FromStr for Publish {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let usage = || {
            format!(
                "`{text}` is not a forward: give [HOSTADDR:]HOSTPORT:STACK:PORT[/tcp|/udp], \
                 like 8080:lwip1:80 or 127.0.0.1:5353:lwip1:53/udp"
            )
        };
        let (spec, transport) = match text.rsplit_once('/') {
            Some((spec, "tcp")) => (spec, Transport::Tcp),
            Some((spec, "udp")) => (spec, Transport::Udp),
            Some(_) => return Err(usage()),
            None => (text, Transport::Tcp),
        };
        let mut fields = spec.rsplitn(4, ':');
        let (port, stack, host_port) = (fields.next(), fields.next(), fields.next());
        let (Some(port), Some(stack), Some(host_port)) = (port, stack, host_port) else {
            return Err(usage());
        };
        let host = match fields.next() {
            None => None,
            Some(address) => {
                let bare = address.strip_prefix('[').and_then(|a| a.strip_suffix(']'));
                let parsed = bare.unwrap_or(address).parse::<IpAddr>();
                Some(parsed.map_err(|_| format!("`{address}` in `{text}` is not an IP address"))?)
            }
        };
        let port_of = |p: &str| match p.parse::<u16>() {
            Ok(port) if port > 0 => Ok(port),
            _ => Err(format!("`{p}` in `{text}` is not a port (1 to 65535)")),
        };
        if stack.is_empty() {
            return Err(usage());
        }
        Ok(Self {
            host,
            host_port: port_of(host_port)?,
            stack: stack.to_owned(),
            port: port_of(port)?,
            transport,
        })
    }
}

impl fmt::Display for Publish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host {
            Some(IpAddr::V6(v6)) => write!(f, "[{v6}]:")?,
            Some(v4) => write!(f, "{v4}:")?,
            None => {}
        }
        write!(f, "{}:{}:{}/{}", self.host_port, self.stack, self.port, self.transport.name())
    }
}

/// A published port's host socket, listening (TCP) or bound (UDP).
#[derive(Debug)]
pub struct Listener {
    /// What was asked.
    pub publish: Publish,
    /// The host's address it listens on.
    pub address: SocketAddr,
    /// The socket, non-blocking and close-on-exec.
    pub socket: OwnedFd,
}

impl Publish {
    /// Opens the host's sockets of this forward: on its address, or on the
    /// wildcard address of each family. Fails with a line that says what to do.
    pub fn listen(&self) -> Result<Vec<Listener>, String> {
        let addresses = match self.host {
            Some(host) => vec![host],
            None => vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED), IpAddr::V6(Ipv6Addr::UNSPECIFIED)],
        };
        addresses
            .into_iter()
            .map(|ip| {
                let address = SocketAddr::new(ip, self.host_port);
                let socket = open(address, self.transport)
                    .map_err(|e| format!("cannot publish {self}: {address}: {}", describe(e)))?;
                Ok(Listener { publish: self.clone(), address, socket })
            })
            .collect()
    }
}

/// What went wrong binding a published port, and what to do.
fn describe(e: Errno) -> String {
    match e {
        Errno::EADDRINUSE => "the port is taken; publish another one".to_owned(),
        Errno::EACCES => "ports below 1024 need root; publish a higher one".to_owned(),
        Errno::EADDRNOTAVAIL => "the host has no such address".to_owned(),
        e => e.desc().to_owned(),
    }
}

/// A non-blocking host socket of `transport` bound to `address` (listening,
/// for TCP); an IPv6 one takes IPv6 alone.
fn open(address: SocketAddr, transport: Transport) -> Result<OwnedFd, Errno> {
    let family = if address.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    let kind = match transport {
        Transport::Tcp => libc::SOCK_STREAM,
        Transport::Udp => libc::SOCK_DGRAM,
    };
    // SAFETY: socket takes plain integers and returns a new descriptor or -1.
    let fd = unsafe { libc::socket(family, kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: socket returned a new descriptor that nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    if address.is_ipv6() {
        socket::setsockopt(&socket, sockopt::Ipv6V6Only, &true)?;
    }
    if transport == Transport::Tcp {
        socket::setsockopt(&socket, sockopt::ReuseAddr, &true)?;
    }
    socket::bind(socket.as_raw_fd(), &SockaddrStorage::from(address))?;
    if transport == Transport::Tcp {
        socket::listen(&socket, Backlog::new(128).unwrap_or(Backlog::MAXCONN))?;
    }
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_read_and_print_back() {
        for text in ["8080:lwip1:80/tcp", "127.0.0.1:5353:lwip1:53/udp", "[::1]:8443:lwip0:443/tcp"]
        {
            assert_eq!(text.parse::<Publish>().unwrap().to_string(), text);
        }
        let short: Publish = "8080:lwip1:80".parse().unwrap();
        assert_eq!((short.host, short.transport), (None, Transport::Tcp));
        for bad in [
            "8080:lwip1",
            "8080:lwip1:80/sctp",
            "0:lwip1:80",
            "8080::80",
            "x:8080:lwip1:80",
            "8080:lwip1:99999",
        ] {
            assert!(bad.parse::<Publish>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_taken_port_is_a_clear_error() {
        let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let publish: Publish = format!("127.0.0.1:{port}:lwip1:53/udp").parse().unwrap();
        let error = publish.listen().unwrap_err();
        assert!(error.contains("the port is taken"), "{error}");
    }
}
