//! Forgetting closed sockets: a carrier is an `AF_UNIX` socket, so the virtual
//! sockets still alive are those `/proc/net/unix` lists.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::Vunet;
use super::stack::{give_back_freed_memory, shrink_idle};
use crate::fdtable::SocketId;

/// How many finished calls pass between sweeps of closed sockets.
const SWEEP_EVERY: u32 = 256;
/// The longest time between sweeps while sockets are open.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The inodes of every `AF_UNIX` socket of this network namespace.
fn live_unix_sockets() -> std::io::Result<HashSet<SocketId>> {
    // Bytes, not text: abstract names (carriers' among them) are printed raw.
    let table = std::fs::read("/proc/net/unix")?;
    Ok(parse_unix_inodes(&table))
}

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
    /// Drops the virtual sockets whose last reference closed. A carrier is an
    /// `AF_UNIX` socket, so `/proc/net/unix` lists every one still alive.
    /// Counts a finished call, and sweeps every [`SWEEP_EVERY`] of them.
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

    fn sweep(&mut self) {
        self.finished_since_sweep = 0;
        self.last_sweep = Instant::now();
        let Ok(alive) = live_unix_sockets() else {
            return;
        };
        let dead: Vec<SocketId> =
            self.sockets.iter().map(|(id, _)| id).filter(|id| !alive.contains(id)).collect();
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
        assert!(live_unix_sockets().unwrap().contains(&id));
    }
}
