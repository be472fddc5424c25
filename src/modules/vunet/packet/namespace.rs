//! A network namespace of the supervisor's own, for one stack's packet devices.
//!
//! The supervisor stays in the session's namespace; a namespace is made, and
//! sockets are made in it, by a short-lived thread that enters it (network
//! namespaces are per thread), so a failure can never leave the supervisor in
//! the wrong one.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

/// The IPv6 switch every device made in a namespace starts with: off, so that
/// the kernel never speaks on a mirror device (no link-local address, DAD,
/// router solicitation or MLD report).
pub(super) const IPV6_DEFAULT: &str = "/proc/sys/net/ipv6/conf/default/disable_ipv6";

/// A network namespace, held open by a descriptor of it.
pub(super) struct NetNamespace {
    fd: OwnedFd,
    inode: u64,
}

impl NetNamespace {
    /// A new, empty namespace (its `lo`, down, at index 1) where no device made
    /// later gets IPv6.
    pub(super) fn new() -> io::Result<Self> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    // SAFETY: unshare changes only this thread's network namespace.
                    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    std::fs::write(IPV6_DEFAULT, "1")?;
                    let file = std::fs::File::open("/proc/thread-self/ns/net")?;
                    let inode = file.metadata()?.ino();
                    Ok(Self { fd: file.into(), inode })
                })
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))
        })
    }

    /// The namespace's inode (what `SIOCGSKNS` on its sockets names).
    pub(super) fn inode(&self) -> u64 {
        self.inode
    }

    /// The descriptor of the namespace (`IFLA_NET_NS_FD`).
    pub(super) fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Runs `work` on a thread inside the namespace: the sockets it makes are
    /// the namespace's.
    pub(super) fn run<T: Send>(
        &self,
        work: impl FnOnce() -> io::Result<T> + Send,
    ) -> io::Result<T> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    // SAFETY: setns reads a live namespace descriptor and changes only
                    // this thread's network namespace.
                    if unsafe { libc::setns(self.fd.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    work()
                })
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))
        })
    }
}
