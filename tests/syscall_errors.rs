//! Socket calls with bad pointers and lengths (connect to address 8, getsockname
//! with a bad length pointer, sendmsg of a bad header, ...) get the same errors
//! under netvm as natively, EFAULT mostly, on `none` (AF_UNIX) and `host` (AF_UNIX
//! and AF_INET), with and without `--trace` (which reads the bad pointers to
//! describe the calls): the supervisor neither crashes nor changes the answers.

mod common;

use common::{User, command_as, compile_probe, path_str, run, run_netvm};

/// The `bad_pointers` probe's report for `family`, natively.
fn native_report(family: &str) -> String {
    let mut command = command_as(User::Invoker, compile_probe("bad_pointers"));
    command.arg(family);
    let out = run(command);
    out.assert_code(0);
    assert!(out.stdout.contains("connect_bad_addr=EFAULT"), "{out}");
    out.stdout
}

fn assert_same_as_native(stack: &str, family: &str) {
    let native = native_report(family);
    let probe = compile_probe("bad_pointers");
    for trace in [None, Some("--trace")] {
        let mut args = vec!["run", "--stack", stack];
        args.extend(trace);
        args.extend(["--", path_str(&probe), family]);
        let out = run_netvm(&args);
        out.assert_code(0);
        assert_eq!(out.stdout, native, "{stack}/{family}/{trace:?} differs from native\n{out}");
    }
}

#[test]
fn unix_sockets_on_none_fail_as_natively() {
    assert_same_as_native("none", "unix");
}

#[test]
fn unix_sockets_on_host_fail_as_natively() {
    assert_same_as_native("host", "unix");
}

#[test]
fn inet_sockets_on_host_fail_as_natively() {
    assert_same_as_native("host", "inet");
}
