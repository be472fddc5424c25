//! netvm's CPU while its programs make socket calls in quick succession and while
//! they wait: after a burst of calls, threads of the supervisor's with the
//! `SCHED_IDLE` policy keep the other CPUs awake for a moment
//! (`src/supervisor/awake.rs`), and once the program only sleeps, the whole
//! supervisor uses no CPU.

mod common;

use std::time::Duration;

use nix::unistd::Pid;

use common::{Session, User, netvm_as, python};

/// `SCHED_IDLE` as `/proc/PID/task/TID/stat` shows a thread's policy.
const SCHED_IDLE: u32 = 5;

/// A thread of the supervisor's: its name, policy and CPU time in clock ticks.
struct ThreadStat {
    name: String,
    policy: u32,
    ticks: u64,
}

/// The threads of process `pid`, from `/proc/PID/task/*/stat`.
fn threads_of(pid: Pid) -> Vec<ThreadStat> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the supervisor's tasks");
    tasks
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.ok()?.path().join("stat")).ok()?;
            let (head, tail) = stat.rsplit_once(") ")?;
            let name = head.split_once(" (")?.1.to_owned();
            // Fields from the state on: utime and stime are the 12th and 13th,
            // the policy the 39th.
            let fields: Vec<&str> = tail.split(' ').collect();
            let number = |i: usize| fields.get(i)?.parse::<u64>().ok();
            let ticks = number(11)? + number(12)?;
            Some(ThreadStat { name, policy: number(38)? as u32, ticks })
        })
        .collect()
}

#[test]
fn after_a_burst_of_calls_idle_pollers_run_and_then_the_supervisor_sleeps() {
    let program = "import socket, sys, time\n\
                   for _ in range(300): socket.socket().close()\n\
                   print('burst', flush=True)\n\
                   time.sleep(1.5)\n\
                   print('slept', flush=True)\n";
    let mut session =
        Session::spawn(netvm_as(User::Invoker, &["run", "--", python(), "-c", program]));
    assert_eq!(session.next_line(), "burst");
    let supervisor = session.pid();
    // Past the pollers' lingering (2 ms) and the supervisor's spin (under 1 ms).
    std::thread::sleep(Duration::from_millis(200));
    let before = threads_of(supervisor);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pollers: Vec<&ThreadStat> =
        before.iter().filter(|t| t.name.starts_with("netvm-poll")).collect();
    assert_eq!(pollers.len(), (cpus - 1).min(3), "one poller per other CPU, at most 3");
    assert!(pollers.iter().all(|t| t.policy == SCHED_IDLE), "pollers run at SCHED_IDLE");
    std::thread::sleep(Duration::from_millis(1000));
    let after = threads_of(supervisor);
    let total = |threads: &[ThreadStat]| threads.iter().map(|t| t.ticks).sum::<u64>();
    // A poller or a loop that never slept would spend about 100 ticks here.
    let spent = total(&after) - total(&before);
    assert!(spent <= 5, "the supervisor spent {spent} ticks while its program slept");
    assert_eq!(session.next_line(), "slept");
    session.finish().assert_code(0);
}
