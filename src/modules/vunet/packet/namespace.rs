//! A network namespace of the supervisor's own, for one stack's packet devices.
//!
//! The supervisor stays in the session's namespace; a namespace is made, and
//! sockets are made in it, by a short-lived thread that enters it (network
//! namespaces are per thread), so a failure can never leave the supervisor in
//! the wrong one.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, MetadataExt};

/// The IPv6 switch every device made in a namespace starts with: off, so that
/// the kernel never speaks on a mirror device (no link-local address, DAD,
/// router solicitation or MLD report).
pub(super) const IPV6_DEFAULT: &str = "/proc/sys/net/ipv6/conf/default/disable_ipv6";

/// A network namespace, held open by a descriptor of it.
pub(super) struct NetNamespace {
    fd: OwnedFd,
    inode: u64,
    /// Its `/proc/net/packet`, opened inside it: read again from the start, it
    /// lists the namespace's packet sockets as they are then.
    packet_table: File,
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
                    let file = File::open("/proc/thread-self/ns/net")?;
                    let inode = file.metadata()?.ino();
                    let packet_table = File::open("/proc/thread-self/net/packet")?;
                    Ok(Self { fd: file.into(), inode, packet_table })
                })
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))
        })
    }

    /// The namespace's inode (what `SIOCGSKNS` on its sockets names).
    pub(super) fn inode(&self) -> u64 {
        self.inode
    }

    /// The inodes of the namespace's packet sockets, whoever holds them.
    pub(super) fn packet_sockets(&self) -> io::Result<Vec<u64>> {
        let mut table = vec![0; 4096];
        let mut len = 0;
        loop {
            let read = self.packet_table.read_at(&mut table[len..], len as u64)?;
            if read == 0 {
                break;
            }
            len += read;
            if len == table.len() {
                table.resize(len * 2, 0);
            }
        }
        Ok(parse_packet_inodes(&String::from_utf8_lossy(&table[..len])))
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

/// The inode column of `/proc/net/packet`
/// (`sk RefCnt Type Proto Iface R Rmem User Inode`).
fn parse_packet_inodes(table: &str) -> Vec<u64> {
    table.lines().skip(1).filter_map(|line| line.split_whitespace().nth(8)?.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packet_table_gives_inodes() {
        let table = "sk               RefCnt Type Proto  Iface R Rmem   User   Inode\n\
            ffff8a0c0b5d8000 3      3    0003   2     1 0      0      105921\n\
            ffff8a0c0b5d9000 3      2    0000   0     0 0      0      105925\n";
        assert_eq!(parse_packet_inodes(table), [105921, 105925]);
    }

    #[test]
    fn a_new_namespace_lists_the_packet_sockets_made_in_it() {
        // Unprivileged test runs cannot make namespaces: nothing to check then.
        let Ok(namespace) = NetNamespace::new() else { return };
        assert_eq!(namespace.packet_sockets().unwrap(), [0u64; 0]);
        let socket = namespace.run(|| super::super::packet_socket(libc::SOCK_RAW, 0)).unwrap();
        let inode = File::from(socket.try_clone().unwrap()).metadata().unwrap().ino();
        assert_eq!(namespace.packet_sockets().unwrap(), [inode]);
        drop(socket);
        // A child another test forks meanwhile may hold a copy for a moment.
        let gone = (0..200).any(|_| {
            let left = namespace.packet_sockets().unwrap();
            left.is_empty() || {
                std::thread::sleep(std::time::Duration::from_millis(10));
                false
            }
        });
        assert!(gone, "{:?}", namespace.packet_sockets());
    }
}
