//! On the `host` stack a command has the real network: curl and the static busybox
//! reach a listener the test runs on 127.0.0.1 and get its answer. A `netvm run
//! --stack host` nested inside a `none` session cannot start, so it cannot reach
//! that listener either.

mod common;

use common::{HTTP_BODY, HttpServer, Listener, NETVM, User, busybox_wget, curl, run_netvm_cmd};

/// Runs `client(url)` on `host` and checks that it got the answer of the listener
/// at `url`, which served exactly one connection.
fn assert_fetches_from_host(client: impl Fn(&str) -> Vec<String>) {
    let server = HttpServer::start();
    let out = run_netvm_cmd(User::Invoker, &["run", "--stack", "host"], &client(&server.url()));
    out.assert_code(0);
    assert_eq!(out.stdout, HTTP_BODY, "{out}");
    assert_eq!(server.finish(), 1, "the listener should have served one connection");
}

#[test]
fn curl_reaches_a_host_listener() {
    assert_fetches_from_host(curl);
}

#[test]
fn static_busybox_reaches_a_host_listener() {
    assert_fetches_from_host(busybox_wget);
}

#[test]
fn a_nested_host_session_inside_none_cannot_reach_the_host() {
    let listener = Listener::new();
    // The shell reports the inner netvm's status, then goes on: the session survives.
    let shell = ["sh", "-c", "\"$@\"; echo inner=$?", "sh"];
    let nested = [NETVM, "run", "--stack", "host", "--"];
    let mut cmd: Vec<String> = shell.iter().chain(&nested).map(|a| a.to_string()).collect();
    cmd.extend(curl(&listener.url()));
    let out = run_netvm_cmd(User::Invoker, &["run", "--stack", "none"], &cmd);
    out.assert_code(0).assert_stderr_has("cannot trace the command");
    assert_eq!(out.stdout, "inner=125\n", "{out}");
    listener.assert_no_connection();
}
