//! The seccomp guard closes the ways around the socket filter on every stack, for
//! the invoking user and for an unprivileged one: `io_uring_setup` and an i386
//! `int $0x80` socketcall fail with ENOSYS under netvm where the same probes
//! succeed natively, while an i386 `exit` still ends the process. The unprivileged
//! user's commands really run unprivileged, with no_new_privs set.

mod common;

use common::{ENOSYS, USERS, User, command_as, compile_probe, path_str, run, run_netvm_as};

/// The stacks the guard is checked on: it does not depend on the stack.
const STACKS: [&str; 2] = ["none", "host"];

/// The standard output of `probe ARGS...` run natively as `user`.
fn native(user: User, probe: &str, args: &[&str]) -> String {
    let mut native = command_as(user, compile_probe(probe));
    native.args(args);
    let out = run(native);
    out.assert_code(0);
    out.stdout
}

/// The standard output of `probe ARGS...` run as `user` on `stack`.
fn under_netvm(user: User, stack: &str, probe: &str, args: &[&str]) -> String {
    let program = compile_probe(probe);
    let mut netvm_args = vec!["run", "--stack", stack, "--", path_str(&program)];
    netvm_args.extend_from_slice(args);
    let out = run_netvm_as(user, &netvm_args);
    out.assert_code(0);
    out.stdout
}

#[test]
fn the_unprivileged_user_runs_unprivileged_under_no_new_privs() {
    let script = "id -u; grep NoNewPrivs: /proc/self/status";
    let out =
        run_netvm_as(User::Unprivileged, &["run", "--stack", "none", "--", "sh", "-c", script]);
    out.assert_code(0);
    let mut lines = out.stdout.lines();
    let uid: u32 = lines.next().and_then(|l| l.parse().ok()).expect("a uid");
    assert_ne!(uid, 0, "the unprivileged runs are root's\n{out}");
    assert_eq!(
        lines.next().map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["NoNewPrivs:", "1"])
    );
}

#[test]
fn io_uring_setup_fails_with_enosys() {
    let enosys = format!("errno={ENOSYS}\n");
    for user in USERS {
        let native = native(user, "io_uring_setup", &[]);
        assert_ne!(native, enosys, "io_uring is missing natively: the test would prove nothing");
        for stack in STACKS {
            let netvm = under_netvm(user, stack, "io_uring_setup", &[]);
            assert_eq!(netvm, enosys, "{user:?} on {stack}: io_uring_setup was not refused");
        }
    }
}

/// The value an `int80 socketcall` run printed.
fn socketcall_result(stdout: &str) -> i64 {
    stdout
        .trim()
        .strip_prefix("ret=")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected probe output {stdout:?}"))
}

#[test]
fn i386_socketcall_fails_with_enosys() {
    for user in USERS {
        let native = native(user, "int80", &["socketcall"]);
        assert!(socketcall_result(&native) >= 0, "natively: {native:?}");
        for stack in STACKS {
            let netvm = under_netvm(user, stack, "int80", &["socketcall"]);
            assert_eq!(socketcall_result(&netvm), -i64::from(ENOSYS), "{user:?} on {stack}");
        }
    }
}

#[test]
fn i386_exit_still_works() {
    let probe = compile_probe("int80");
    for user in USERS {
        run_netvm_as(user, &["run", "--stack", "none", "--", path_str(&probe), "exit", "42"])
            .assert_code(42);
    }
}
