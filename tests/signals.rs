//! Signals behave as without netvm: a command that stops itself stays stopped until
//! SIGCONT and then goes on; SIGTERM and SIGUSR1 sent to netvm reach the command,
//! whose handler runs, or, once the command has ended, the processes it left; a
//! command killed with SIGKILL in the middle of a trapped call makes netvm end with
//! 137 (with and without `--trace`).

mod common;

use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use common::{DEADLINE, Session, User, netvm_as, python, run, send};

/// A netvm session running `cmd` as the invoker.
fn session(netvm_args: &[&str], cmd: &[&str]) -> Session {
    let mut args = netvm_args.to_vec();
    args.push("--");
    args.extend_from_slice(cmd);
    Session::spawn(netvm_as(User::Invoker, &args))
}

/// The state letter of `/proc/PID/stat` (`T` stopped, `t` stopped by the tracer).
fn state_of(pid: Pid) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// Polls until `pid` is in one of `states`; fails at the deadline.
fn wait_for_state(pid: Pid, states: &[char]) {
    let start = Instant::now();
    while !state_of(pid).is_some_and(|s| states.contains(&s)) {
        assert!(start.elapsed() < DEADLINE, "{pid} never reached {states:?}: {:?}", state_of(pid));
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_stopped_command_resumes_on_sigcont() {
    let mut session = session(&["run"], &["sh", "-c", "echo $$; kill -STOP $$; echo resumed"]);
    let pid = Pid::from_raw(session.next_line().parse().expect("the shell's pid"));
    wait_for_state(pid, &['T', 't']);
    // A SIGCONT that lands while the stop is still being delivered is lost, so
    // repeat it until the command has gone on and ended.
    let start = Instant::now();
    while !session.has_ended() {
        assert!(start.elapsed() < DEADLINE, "the command never resumed");
        let _ = nix::sys::signal::kill(pid, Signal::SIGCONT);
        thread::sleep(Duration::from_millis(20));
    }
    let out = session.finish();
    out.assert_code(0);
    assert_eq!(out.stdout, format!("{pid}\nresumed\n"), "{out}");
}

#[test]
fn signals_sent_to_netvm_reach_the_command() {
    for (signal, name) in [(Signal::SIGTERM, "TERM"), (Signal::SIGUSR1, "USR1")] {
        let script = format!(
            "trap 'echo got-{name}; exit 3' {name}; echo ready; while :; do sleep 0.1; done"
        );
        let mut session = session(&["run"], &["sh", "-c", &script]);
        assert_eq!(session.next_line(), "ready");
        send(session.pid(), signal);
        let out = session.finish();
        out.assert_code(3);
        assert_eq!(out.stdout, format!("ready\ngot-{name}\n"), "{out}");
    }
}

#[test]
fn sigterm_reaches_what_the_command_left_running() {
    // The shell exits at once; its background subshell keeps the session going, and
    // says it is ready once the shell is gone ($$ is the shell's pid; it exists until
    // netvm reaps it).
    let script = "(trap 'echo got-TERM; exit 4' TERM; while kill -0 $$ 2>/dev/null; do sleep 0.05; done; \
        echo ready; while :; do sleep 0.1; done) & exit 0";
    let mut session = session(&["run"], &["sh", "-c", script]);
    assert_eq!(session.next_line(), "ready");
    send(session.pid(), Signal::SIGTERM);
    let out = session.finish();
    out.assert_code(0); // the command's own status, not the subshell's
    assert_eq!(out.stdout, "ready\ngot-TERM\n", "{out}");
}

#[test]
fn a_command_killed_while_blocked_in_accept_gives_137() {
    // accept is trapped even on AF_UNIX sockets; with --trace netvm also waits for
    // the call's exit stop, which never comes.
    let script = r#"
import os, socket
s = socket.socket(socket.AF_UNIX)
s.bind("\0netvm-test-accept-%d" % os.getpid())
s.listen()
print(os.getpid(), flush=True)
s.accept()
print("accept returned")
"#;
    for netvm_args in [&["run"][..], &["run", "--trace"]] {
        let mut session = session(netvm_args, &[python(), "-c", script]);
        let pid = Pid::from_raw(session.next_line().parse().expect("python's pid"));
        // Wait until python sleeps in accept, then kill it from outside.
        wait_for_state(pid, &['S']);
        send(pid, Signal::SIGKILL);
        let out = session.finish();
        out.assert_code(137);
        assert!(!out.stdout.contains("accept returned"), "{out}");
    }
}

/// Real-time signals (SIGRTMIN and up; glibc itself uses the first two for thread
/// cancellation and set*id across threads) reach the command's handler. Before,
/// their delivery stop could not be decoded and the command hung forever.
#[test]
fn a_real_time_signal_reaches_the_commands_handler() {
    let script = "import signal, os\n\
        got = []\n\
        for n in (signal.SIGRTMIN, signal.SIGRTMIN + 5, signal.SIGRTMAX):\n\
        \x20   signal.signal(n, lambda s, f: got.append(s - signal.SIGRTMIN))\n\
        \x20   os.kill(os.getpid(), n)\n\
        print(got)";
    let out = run(netvm_as(User::Invoker, &["run", "--", python(), "-c", script]));
    out.assert_code(0);
    assert_eq!(out.stdout, "[0, 5, 30]\n", "{out}");
}
