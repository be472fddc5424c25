//! A hostile program inside a stack, against packet sockets, interface ioctls and
//! `sock_diag` (issue 13, second review): it gets the kernel's errno, and never
//! makes the supervisor spend much more than it spends itself.

mod common;

use common::{User, is_root, netvm_as, python, run, skip};

/// Asks for `count` packet sockets, printing the errno of each refusal.
fn packet_sockets(count: u32) -> String {
    format!(
        "import socket\n\
         for i in range({count}):\n    \
         try:\n        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)\n    \
         except OSError as e:\n        print(e.errno)\n"
    )
}

#[test]
fn packet_sockets_under_trace_are_refused_with_one_warning() {
    if !is_root() {
        return skip("needs root: a packet socket needs CAP_NET_RAW in the session");
    }
    let script = packet_sockets(20);
    let output =
        run(netvm_as(User::Invoker, &["run", "--trace=/dev/null", "--", python(), "-c", &script]));
    output.assert_code(0);
    assert_eq!(output.stdout, "97\n".repeat(20), "{output}");
    // Each refusal logged a warning: a program could fill the session's
    // terminal, or log, with as many lines as it made calls.
    let warnings = output.stderr.matches("need seccomp notifications").count();
    assert_eq!(warnings, 1, "{output}");
}
