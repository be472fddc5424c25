//! Forgetting closed sockets: a carrier is an `AF_UNIX` socket, so the virtual
//! sockets still alive are those `/proc/net/unix` lists.
//!
//! Not every one, though, while sockets close or get names. The kernel writes
//! the listing a page at a time, and each read finds its place again by hash
//! bucket and rank within the bucket: a socket already listed that closes (or
//! is bound to a name, which moves it to another bucket) before the next read
//! moves the sockets after it in its bucket up one rank, and the one that
//! moves into the place already read is left out. Forgotten alive, a socket
//! lost its record: a connect under way across the network was given up (its
//! gate closed, and the program's first write failed with EPIPE), a listener
//! stopped listening on the network, a bound UDP port was closed, calls on the
//! socket were answered as on a plain `AF_UNIX` socket.
//!
//! So a socket is taken for closed only when a second listing, whose pages
//! begin half a page off the first's, leaves it out too: a live one would have
//! to stand where a page begins in both, and lose its place there twice.

use std::collections::HashSet;
use std::io::Read;
use std::time::{Duration, Instant};

use super::Vunet;
use super::stack::{give_back_freed_memory, shrink_idle};
use crate::fdtable::SocketId;
use crate::modules::Disposition;

/// How many finished calls pass between sweeps of closed sockets.
const SWEEP_EVERY: u32 = 256;
/// The longest time between sweeps while sockets are open.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The inodes of every `AF_UNIX` socket of this network namespace, as one
/// listing shows them (see the module docs): read `first` bytes first, then a
/// page and more at a time (the kernel gives at most a page a read).
fn live_unix_sockets(first: usize) -> std::io::Result<HashSet<SocketId>> {
    // Bytes, not text: abstract names (carriers' among them) are printed raw.
    let mut file = std::fs::File::open("/proc/net/unix")?;
    let mut table = Vec::new();
    let mut chunk = vec![0u8; WHOLE_PAGES];
    let mut want = first.min(chunk.len());
    loop {
        let n = file.read(&mut chunk[..want])?;
        if n == 0 {
            return Ok(parse_unix_inodes(&table));
        }
        table.extend_from_slice(&chunk[..n]);
        want = chunk.len();
    }
}

/// The size of a first listing's first read: whole pages from the start.
const WHOLE_PAGES: usize = 64 * 1024;
/// The size of a second listing's first read: half a page, so that its pages
/// begin where the first listing's are halfway through.
const HALF_PAGE: usize = 2048;

/// The inode column of `/proc/net/unix`
/// (`Num RefCount Protocol Flags Type St Inode [Path]`).
fn parse_unix_inodes(table: &[u8]) -> HashSet<SocketId> {
    table
        .split(|&b| b == b'\n')
        .skip(1)
        .filter_map(|line| {
            let inode = line.split(|b| b.is_ascii_whitespace()).filter(|f| !f.is_empty()).nth(6)?;
            std::str::from_utf8(inode).ok()?.parse().ok()
        })
        .map(SocketId)
        .collect()
}

impl Vunet {
    /// Drops the virtual sockets whose last reference closed: those two
    /// listings of `/proc/net/unix` leave out (see the module docs). Counts a
    /// finished call, and sweeps every [`SWEEP_EVERY`] of them.
    pub(super) fn sweep_after_call(&mut self) {
        self.finished_since_sweep += 1;
        if self.finished_since_sweep >= SWEEP_EVERY {
            self.sweep();
        }
    }

    /// Sweeps if [`SWEEP_INTERVAL`] has passed with sockets open; returns when the
    /// next sweep is due (none while no socket is open): a listener closed on one
    /// stack must stop answering the network soon, even if no call comes.
    pub(super) fn sweep_if_due(&mut self, now: Instant) -> Option<Instant> {
        if !self.sockets.is_empty() && now >= self.last_sweep + SWEEP_INTERVAL {
            self.sweep();
        }
        (!self.sockets.is_empty()).then_some(self.last_sweep + SWEEP_INTERVAL)
    }

    /// Counts a call that [`finish`](crate::modules::Module::finish) will not
    /// see (it has no exit: answered at its entry, or notified) as finished.
    pub(super) fn count_unfinished(&mut self, disposition: Disposition) {
        if disposition != Disposition::KernelThenFinish {
            self.sweep_after_call();
        }
    }

    /// Drops the virtual sockets whose last reference closed (see
    /// [`sweep_after_call`](Self::sweep_after_call)), now.
    pub(super) fn sweep(&mut self) {
        self.finished_since_sweep = 0;
        self.last_sweep = Instant::now();
        let Ok(alive) = live_unix_sockets(WHOLE_PAGES) else {
            return;
        };
        let mut dead: Vec<SocketId> =
            self.sockets.iter().map(|(id, _)| id).filter(|id| !alive.contains(id)).collect();
        if !dead.is_empty() {
            // What the first listing left out, the second must leave out too.
            let Ok(again) = live_unix_sockets(HALF_PAGE) else {
                return;
            };
            dead.retain(|id| !again.contains(id));
        }
        for id in &dead {
            self.sockets.remove(*id);
        }
        // Verdicts on sockets of other kinds or namespaces are simply taken again.
        self.foreign.retain(|id, _| alive.contains(id));
        for stack in &mut self.stacks {
            stack.forget(&dead);
        }
        for (_, poked) in &mut self.rounds {
            *poked = true;
        }
        self.netlink.forget(&dead);
        if !dead.is_empty() {
            self.sockets.shrink_idle();
            shrink_idle(&mut self.foreign);
            give_back_freed_memory();
        }
        log::debug!("sweep: {} virtual sockets alive, {} closed", self.sockets.len(), dead.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_socket_list_survives_binary_names() {
        let table = b"Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000: 00000002 00000000 00010000 0001 01 14323 /tmp/x\n\
            0000: 00000002 00000000 00010000 0001 01 777 @nv\xff\x00\x01\n\
            0000: 00000003 00000000 00000000 0001 03  1173\n";
        let inodes = parse_unix_inodes(table);
        assert_eq!(inodes, [14323, 777, 1173].map(SocketId).into_iter().collect());
    }

    #[test]
    fn sweeping_finds_our_own_sockets() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let crate::fdtable::FdTarget::Socket(id) =
            crate::fdtable::resolve(nix::unistd::gettid(), std::os::fd::AsRawFd::as_raw_fd(&a))
                .unwrap()
        else {
            panic!("not a socket")
        };
        assert!(live_unix_sockets(WHOLE_PAGES).unwrap().contains(&id));
        assert!(live_unix_sockets(HALF_PAGE).unwrap().contains(&id));
    }
}
