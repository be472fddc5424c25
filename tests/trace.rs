//! `--trace` logs each intercepted call decoded, with its result and who answered:
//! on `none`, curl's `socket(AF_INET, ...)` refused with EAFNOSUPPORT by `none`; on
//! `host`, its socket made by `host` and its `connect` on that socket to `{AF_INET,
//! 127.0.0.1:PORT}` (answered by `kernel`, as man/netvm.1 documents for sockets of
//! the `host` kind); lines carry the calling process's pid; `--trace=FILE` writes
//! the log to FILE instead of standard error; with 16 threads making calls at once,
//! every call of every thread is logged, under the thread's id.

mod common;

use common::{
    EAFNOSUPPORT_RESULT, HttpServer, Listener, PY_TRY_INET_SOCKET, TempDir, TraceLine, User,
    assert_inet_socket_refused, curl, path_str, python, run_netvm, run_netvm_cmd,
};

#[test]
fn none_shows_curls_refused_inet_socket() {
    let listener = Listener::new();
    let out = run_netvm_cmd(
        User::Invoker,
        &["run", "--trace", "--stack", "none"],
        &curl(&listener.url()),
    );
    assert_ne!(out.code(), 0, "{out}");
    assert_inet_socket_refused(&out.trace(), "none");
    listener.assert_no_connection();
}

#[test]
fn trace_lines_carry_the_callers_pid() {
    let script = format!("import os\nprint(os.getpid(), flush=True)\n{PY_TRY_INET_SOCKET}");
    let out = run_netvm(&["run", "--trace", "--stack", "none", "--", python(), "-c", &script]);
    out.assert_code(0);
    let pid: i32 = out.stdout.trim().parse().expect("the pid python printed");
    let trace = out.trace();
    assert_inet_socket_refused(&trace, "none");
    let socket = trace.iter().find(|l| l.call == "socket").expect("a socket line");
    assert_eq!(socket.pid, pid, "{out}");
}

#[test]
fn every_call_of_every_thread_is_traced() {
    let script = r#"
import socket, threading
start = threading.Barrier(16)
def work():
    start.wait()
    for _ in range(50):
        try:
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        except OSError:
            pass
threads = [threading.Thread(target=work) for _ in range(16)]
for t in threads: t.start()
for t in threads: t.join()
"#;
    let out = run_netvm(&["run", "--trace", "--stack", "none", "--", python(), "-c", script]);
    out.assert_code(0);
    let mut per_thread = std::collections::HashMap::new();
    for line in out.trace().iter().filter(|l| l.call == "socket") {
        assert_eq!(line.by, "none", "{line:?}");
        assert!(line.args.starts_with("AF_INET, SOCK_DGRAM"), "{line:?}");
        assert_eq!(line.result, EAFNOSUPPORT_RESULT, "{line:?}");
        *per_thread.entry(line.pid).or_insert(0) += 1;
    }
    let mut counts: Vec<i32> = per_thread.into_values().collect();
    counts.sort();
    assert_eq!(counts, [50; 16], "socket lines per thread id");
}

/// The trace of curl fetching from a host listener on the `host` stack, and the
/// listener's port.
fn host_curl_trace() -> (Vec<TraceLine>, u16) {
    let server = HttpServer::start();
    let out =
        run_netvm_cmd(User::Invoker, &["run", "--trace", "--stack", "host"], &curl(&server.url()));
    out.assert_code(0);
    let port = server.port();
    assert_eq!(server.finish(), 1);
    (out.trace(), port)
}

#[test]
fn host_shows_curls_socket_and_decoded_connect() {
    let (trace, port) = host_curl_trace();
    let socket = trace
        .iter()
        .find(|l| l.call == "socket" && l.args.starts_with("AF_INET, SOCK_STREAM"))
        .unwrap_or_else(|| panic!("no socket(AF_INET, SOCK_STREAM...) in {trace:#?}"));
    assert_eq!(socket.by, "host", "{socket:?}");
    let fd: i32 = socket.result.parse().unwrap_or_else(|_| panic!("socket failed: {socket:?}"));
    let connect = trace
        .iter()
        .find(|l| {
            l.call == "connect" && l.args == format!("{fd}, {{AF_INET, 127.0.0.1:{port}}}, 16")
        })
        .unwrap_or_else(|| {
            panic!("no connect({fd}, {{AF_INET, 127.0.0.1:{port}}}, 16) in {trace:#?}")
        });
    // man/netvm.1: a call on a socket of the `host` kind is answered by the kernel.
    assert_eq!(connect.by, "kernel", "{connect:?}");
}

#[test]
fn trace_to_a_file_leaves_stderr_alone() {
    let dir = TempDir::new("trace-file");
    let file = dir.path().join("trace.log");
    let listener = Listener::new();
    let trace_flag = format!("--trace={}", path_str(&file));
    let out = run_netvm_cmd(
        User::Invoker,
        &["run", "--stack", "none", &trace_flag],
        &curl(&listener.url()),
    );
    assert_ne!(out.code(), 0, "{out}");
    assert!(out.trace().is_empty(), "trace lines on stderr despite --trace=FILE\n{out}");
    let logged = std::fs::read_to_string(&file).expect("the trace file");
    assert_inet_socket_refused(&common::parse_trace(&logged), "none");
    listener.assert_no_connection();
}
