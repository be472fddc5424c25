//! The supervisor's descriptors, shared between the session's processes.
//!
//! A connection across the network costs the supervisor descriptors of its own:
//! its end of the connection's carrier (and a gate while it connects), a
//! connected datagram socket's private end, the stand-in a listener's arrival
//! is handed over with. Unbounded, one process could take them all, and then
//! another process's connect would fail with the supervisor's `EMFILE`: an error
//! it did not cause. So a process may hold at most its share of them (a
//! quarter of what the supervisor may open, unless `modules.toml` says
//! otherwise), a reserve always stays for the supervisor's own work (accepting,
//! probing names, the control socket), and a call that would go beyond fails
//! in the process that made it with `ENOBUFS`, as Linux fails a socket call it
//! has no buffer space for.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use nix::errno::Errno;
use nix::unistd::Pid;

/// The least the supervisor keeps for its own work.
const MIN_RESERVE: usize = 64;

/// The budget, shared by every stack of a session.
pub type SharedBudget = Rc<RefCell<Budget>>;

/// Who a descriptor is held for: a process, or the session (a listener's
/// arrivals, which whoever connected caused).
pub type Holder = Option<Pid>;

/// The holder of the uplinks' host sockets: they take at most one process's
/// share, so that flows out of the session can never make another process's
/// call fail (pid 0 is no process of a session's).
pub const UPLINKS: Holder = Some(Pid::from_raw(0));

/// How many supervisor descriptors each process holds, and may hold.
#[derive(Debug)]
pub struct Budget {
    /// The share of each process, as configured (`None`: a quarter of what is
    /// available), settled on first use, once the supervisor raised its limit.
    configured: Option<usize>,
    /// (what all may hold together, what one process may hold), once settled.
    limits: Option<(usize, usize)>,
    held: HashMap<Holder, usize>,
    total: usize,
}

impl Budget {
    /// A budget that lets each process hold `per_process` descriptors (`None`:
    /// a quarter of what the supervisor may open).
    pub fn new(per_process: Option<usize>) -> Self {
        Self { configured: per_process, limits: None, held: HashMap::new(), total: 0 }
    }

    /// A budget for a supervisor that may open `limit` descriptors.
    #[cfg(test)]
    pub fn with_limit(limit: usize, per_process: Option<usize>) -> Self {
        let mut budget = Self::new(per_process);
        budget.settle(limit);
        budget
    }

    /// Fixes the limits for a supervisor that may open `limit` descriptors.
    fn settle(&mut self, limit: usize) {
        let reserve = (limit / 16).max(MIN_RESERVE);
        let available = limit.saturating_sub(reserve);
        let share = self.configured.unwrap_or(available / 4).min(available);
        self.limits = Some((available, share));
    }

    /// Takes one descriptor for `holder`, or fails with `ENOBUFS` if that would
    /// go beyond its share or into the reserve.
    pub fn take(&mut self, holder: Holder) -> Result<(), Errno> {
        let (available, share) = match self.limits {
            Some(limits) => limits,
            None => {
                self.settle(open_limit());
                self.limits.expect("settled")
            }
        };
        let held = self.held.get(&holder).copied().unwrap_or(0);
        if self.total >= available || (holder.is_some() && held >= share) {
            // Refused, it leaves no entry behind.
            return Err(Errno::ENOBUFS);
        }
        self.held.insert(holder, held + 1);
        self.total += 1;
        Ok(())
    }

    /// Gives back one descriptor `holder` took.
    pub fn give(&mut self, holder: Holder) {
        if let Some(held) = self.held.get_mut(&holder) {
            *held -= 1;
            self.total -= 1;
            if *held == 0 {
                self.held.remove(&holder);
            }
        }
    }
}

/// How many descriptors the supervisor may open now.
fn open_limit() -> usize {
    use nix::sys::resource::{Resource, getrlimit};
    getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_beyond_its_share_is_refused_and_others_are_not() {
        // 1024 descriptors: 64 reserved, 960 for all, 240 for each process.
        let mut budget = Budget::with_limit(1024, None);
        let (greedy, other) = (Some(Pid::from_raw(10)), Some(Pid::from_raw(11)));
        for _ in 0..240 {
            budget.take(greedy).unwrap();
        }
        assert_eq!(budget.take(greedy), Err(Errno::ENOBUFS));
        budget.take(other).unwrap();
        budget.give(greedy);
        budget.take(greedy).unwrap();
    }

    #[test]
    fn the_reserve_is_never_taken() {
        let mut budget = Budget::with_limit(200, Some(1000));
        for _ in 0..136 {
            budget.take(None).unwrap();
        }
        assert_eq!(budget.take(None), Err(Errno::ENOBUFS));
        assert_eq!(budget.take(Some(Pid::from_raw(3))), Err(Errno::ENOBUFS));
        budget.give(None);
        budget.take(Some(Pid::from_raw(3))).unwrap();
    }

    #[test]
    fn giving_back_what_was_never_taken_changes_nothing() {
        let mut budget = Budget::with_limit(1024, Some(1));
        budget.give(Some(Pid::from_raw(5)));
        budget.take(Some(Pid::from_raw(5))).unwrap();
        assert_eq!(budget.take(Some(Pid::from_raw(5))), Err(Errno::ENOBUFS));
    }
}
