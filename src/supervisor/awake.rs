//! Keeps idle CPUs awake while the programs trap in quick succession.
//!
//! Each ptrace stop ends with the supervisor waking the stopped thread, and each
//! notified call with it waking the caller. When that thread's CPU has gone idle,
//! the wake-up must bring it out of its idle state first: on a VM whose idle vCPUs
//! halt, that is an exit to the host and a host wake-up, tens of microseconds
//! (measured here: a bare ptrace stop is 9 us with tracer and tracee on one CPU and
//! 50 us across two). Bare-metal CPUs in deep idle states pay the same kind of
//! cost.
//!
//! So, for a short while after each stop, threads of the supervisor's with the
//! `SCHED_IDLE` policy poll on the other CPUs: a CPU running only such a thread
//! counts as idle to the scheduler, which places a woken program there and lets
//! it preempt the poller at once, and is not halted, so waking onto it costs no
//! exit. The pollers never compete with a program for a CPU (`SCHED_IDLE` runs
//! only where nothing else would), and they sleep as soon as the stops stop: a
//! program that traps rarely keeps them asleep. Where `SCHED_IDLE` cannot be had,
//! nobody polls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How long the pollers go on after the last stop.
const LINGER: Duration = Duration::from_millis(2);

/// The most CPUs kept awake, whatever the machine's size: the programs of a
/// session that traps in bursts rarely run on more at once.
const MOST_POLLERS: usize = 3;

/// Threads that poll the CPUs the supervisor does not run on, while told to.
pub(super) struct Pollers {
    shared: Arc<Shared>,
    /// The pollers, detached: each ends once told to.
    threads: Vec<Thread>,
    /// When the pollers were started, the origin of `Shared::until`.
    epoch: Instant,
}

/// What the supervisor and its pollers share.
struct Shared {
    /// Nanoseconds from `Pollers::epoch` until which to poll.
    until: AtomicU64,
    /// Whether some poller is parked (asleep) or about to be.
    parked: AtomicBool,
    quit: AtomicBool,
}

impl Pollers {
    /// Pollers for the machine's CPUs but one (the supervisor's), at most
    /// [`MOST_POLLERS`]. They start asleep.
    ///
    /// Must be called with the signals the supervisor reads blocked: the threads
    /// inherit the mask, and a signal must not be delivered to them.
    pub(super) fn start() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_count(cpus.saturating_sub(1).min(MOST_POLLERS))
    }

    fn with_count(count: usize) -> Self {
        let shared = Arc::new(Shared {
            until: AtomicU64::new(0),
            parked: AtomicBool::new(false),
            quit: AtomicBool::new(false),
        });
        let epoch = Instant::now();
        let threads = (0..count)
            .filter_map(|i| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("netvm-poll{i}"))
                    .stack_size(64 * 1024)
                    .spawn(move || poll(&shared, epoch))
                    .inspect_err(|e| log::info!("no CPU poller: {e}"))
                    .ok()
                    .map(|handle| handle.thread().clone())
            })
            .collect();
        Self { shared, threads, epoch }
    }

    /// A stop was just served: the pollers poll (again) until [`LINGER`] from now.
    pub(super) fn stirred(&self, now: Instant) {
        if self.threads.is_empty() {
            return;
        }
        let until = (now + LINGER).saturating_duration_since(self.epoch).as_nanos() as u64;
        self.shared.until.store(until, Ordering::SeqCst);
        // A poller parks only after it set `parked` and then found `until` passed
        // (both sequentially consistent): it saw the new deadline, or this sees it
        // parked and wakes it.
        if self.shared.parked.swap(false, Ordering::SeqCst) {
            self.threads.iter().for_each(Thread::unpark);
        }
    }
}

impl Drop for Pollers {
    /// Tells the pollers to end, without waiting for them: at `SCHED_IDLE` on a
    /// busy CPU a poller may take a while to be scheduled and see it, and the
    /// supervisor, which drops them as it ends, must not wait for that.
    fn drop(&mut self) {
        self.shared.quit.store(true, Ordering::SeqCst);
        self.threads.iter().for_each(Thread::unpark);
    }
}

/// A poller's life: sleep, and poll while `shared.until` lies ahead.
fn poll(shared: &Shared, epoch: Instant) {
    if !lower_to_idle_policy() {
        log::info!("no CPU poller: SCHED_IDLE refused: {}", std::io::Error::last_os_error());
        return;
    }
    while !shared.quit.load(Ordering::SeqCst) {
        let now = epoch.elapsed().as_nanos() as u64;
        if now < shared.until.load(Ordering::SeqCst) {
            for _ in 0..64 {
                std::hint::spin_loop();
            }
            continue;
        }
        shared.parked.store(true, Ordering::SeqCst);
        if epoch.elapsed().as_nanos() as u64 >= shared.until.load(Ordering::SeqCst) {
            std::thread::park();
        }
    }
}

/// Gives the calling thread the `SCHED_IDLE` policy; false if refused.
fn lower_to_idle_policy() -> bool {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a live sched_param; pid 0 names the calling thread, and
    // lowering one's own policy to SCHED_IDLE needs no privilege.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The policy of thread `tid`.
    fn policy_of(tid: libc::pid_t) -> libc::c_int {
        // SAFETY: sched_getscheduler only reads a thread's policy.
        unsafe { libc::sched_getscheduler(tid) }
    }

    /// The CPU time thread `tid` of this process has used, in clock ticks, and its
    /// state letter (`R` runnable, `S` asleep), from `/proc/self/task/TID/stat`.
    fn ticks_and_state(tid: libc::pid_t) -> (u64, char) {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
        let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
        let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        (ticks, fields[0].chars().next().unwrap())
    }

    /// The ids of this process's threads named `netvm-poll*`.
    fn poller_tids() -> Vec<libc::pid_t> {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|tid: &libc::pid_t| {
                std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"))
                    .is_ok_and(|c| c.starts_with("netvm-poll"))
            })
            .collect()
    }

    #[test]
    fn pollers_run_at_idle_policy_and_sleep_when_not_stirred() {
        let pollers = Pollers::with_count(1);
        let tids = poller_tids();
        assert_eq!(tids.len(), 1, "one poller thread");
        let tid = tids[0];
        // Stirred, it polls: runnable (running only where nothing else would).
        let start = Instant::now();
        let mut seen_polling = false;
        while !seen_polling && start.elapsed() < Duration::from_secs(5) {
            pollers.stirred(Instant::now());
            std::thread::sleep(Duration::from_micros(200));
            seen_polling = ticks_and_state(tid).1 == 'R';
        }
        assert!(seen_polling, "a stirred poller polls");
        assert_eq!(policy_of(tid), libc::SCHED_IDLE);
        // Left alone, it sleeps and uses no CPU.
        std::thread::sleep(LINGER * 5);
        let (asleep, state) = ticks_and_state(tid);
        assert_eq!(state, 'S', "a poller left alone sleeps");
        std::thread::sleep(Duration::from_millis(300));
        assert!(ticks_and_state(tid).0 <= asleep + 1, "a sleeping poller uses no CPU");
        drop(pollers);
        let start = Instant::now();
        while !poller_tids().is_empty() {
            assert!(start.elapsed() < Duration::from_secs(10), "dropped pollers end");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
