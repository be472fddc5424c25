//! netvm's CPU while its program waits: after a burst of calls that the
//! supervisor spins for (`Spinner` in `src/supervisor.rs`), a program that only
//! sleeps costs it nothing.

mod common;

use std::time::Duration;

use nix::unistd::Pid;

use common::{Session, User, netvm_as, python};

/// The CPU time, in clock ticks, that the threads of process `pid` have used
/// (`utime + stime` of each `/proc/PID/task/*/stat`).
fn ticks_of(pid: Pid) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the supervisor's tasks");
    tasks
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.ok()?.path().join("stat")).ok()?;
            // Fields from the state on: utime and stime are the 12th and 13th.
            let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split(' ').collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}

#[test]
fn after_a_burst_of_calls_the_supervisor_sleeps_while_its_program_does() {
    let program = "import socket, time\n\
                   for _ in range(300): socket.socket().close()\n\
                   print('burst', flush=True)\n\
                   time.sleep(1.5)\n\
                   print('slept', flush=True)\n";
    let mut session =
        Session::spawn(netvm_as(User::Invoker, &["run", "--", python(), "-c", program]));
    assert_eq!(session.next_line(), "burst");
    let supervisor = session.pid();
    // Past the spin for the next stop (under 1 ms).
    std::thread::sleep(Duration::from_millis(200));
    let before = ticks_of(supervisor);
    std::thread::sleep(Duration::from_millis(1000));
    // A loop that never slept would spend about 100 ticks here.
    let spent = ticks_of(supervisor) - before;
    assert!(spent <= 5, "the supervisor spent {spent} ticks while its program slept");
    assert_eq!(session.next_line(), "slept");
    session.finish().assert_code(0);
}
