//! `ss` inside a stack (issue 13, `NETLINK_SOCK_DIAG`): it lists that stack's
//! sockets, never the host's, as Linux lists them in a network namespace with
//! the same addresses and the same sockets; `ss -p` finds the owning processes.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::{USERS, User, is_root, run, run_netvm_cmd, skip};

/// Makes a TCP listener on 10.0.0.2:8000 with one connection accepted (5 bytes
/// unread at the server's end), a UDP socket bound to :5353 and one connected to it, and a
/// dual-stack listener on [::]:8080 with backlog 3; then runs `ss` with each
/// argument string, printing `$ ss ARGS` before each output, and its own pid.
const SOCKETS_THEN_SS: &str = "import os, socket, subprocess, sys\n\
    l = socket.socket(); l.bind(('10.0.0.2', 8000)); l.listen(5)\n\
    c = socket.create_connection(('10.0.0.2', 8000)); a, _ = l.accept()\n\
    c.send(b'hello')\n\
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', 5353))\n\
    u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u2.connect(('10.0.0.2', 5353))\n\
    l6 = socket.socket(socket.AF_INET6); l6.bind(('::', 8080)); l6.listen(3)\n\
    print('pid', os.getpid())\n\
    for args in sys.argv[1:]:\n    \
    done = subprocess.run(['ss'] + args.split(), capture_output=True, text=True)\n    \
    print('$ ss', args, done.returncode)\n    \
    print(done.stdout, end='')\n";

/// The `ss` invocations compared.
const CASES: [&str; 5] = ["-tan", "-uan", "-tuan", "-tan sport = :8000", "-tan dst 10.0.0.0/8"];

/// Runs [`SOCKETS_THEN_SS`] on lwip0 (10.0.0.2/24 on eth0) as `user`.
fn under_netvm(user: User, cases: &[&str]) -> String {
    let mut cmd = vec!["python3".to_string(), "-c".into(), SOCKETS_THEN_SS.into()];
    cmd.extend(cases.iter().map(|c| c.to_string()));
    let out = run_netvm_cmd(user, &["run"], &cmd);
    out.assert_code(0);
    out.stdout
}

/// Runs [`SOCKETS_THEN_SS`] in a new network namespace with lwip0's addresses.
fn in_namespace(cases: &[&str]) -> String {
    let setup = "set -e; ip link set lo up; ip link add eth0 type veth peer name peer0; \
        ip link set eth0 up; ip link set peer0 up; ip addr add 10.0.0.2/24 dev eth0; \
        ip addr add fd00::2/64 dev eth0 nodad; exec python3 -c \"$SCRIPT\" \"$@\"";
    let mut command = Command::new("unshare");
    command.args(["-n", "sh", "-c", setup, "sh"]).args(cases).env("SCRIPT", SOCKETS_THEN_SS);
    let out = run(command);
    out.assert_code(0);
    out.stdout
}

/// The ports the script chose; any other is an ephemeral one.
const CHOSEN_PORTS: [&str; 3] = ["8000", "5353", "8080"];

/// An `ss` output made comparable, with the fields that must differ left out:
/// - ephemeral ports, which each side picks itself (Linux at random);
/// - the order of the lines after the header: Linux walks its hash tables, a
///   stack lists by port;
/// - column widths (whitespace), which follow the longest address shown.
fn comparable(output: &str) -> Vec<(String, BTreeSet<String>)> {
    let mut sections = Vec::new();
    for section in output.split("$ ss ").skip(1) {
        let mut lines = section.lines();
        let title = lines.next().unwrap_or_default().to_string();
        let rows = lines
            .map(|line| {
                let words = line.split_whitespace().map(|word| match word.rsplit_once(':') {
                    Some((host, port))
                        if port.chars().all(|c| c.is_ascii_digit())
                            && !CHOSEN_PORTS.contains(&port) =>
                    {
                        format!("{host}:EPHEMERAL")
                    }
                    _ => word.to_string(),
                });
                words.collect::<Vec<_>>().join(" ")
            })
            .collect();
        sections.push((title, rows));
    }
    sections
}

#[test]
fn ss_lists_the_stacks_sockets_as_a_namespace_configured_alike() {
    if !is_root() {
        return skip("needs root for a network namespace");
    }
    let native = comparable(&in_namespace(&CASES));
    assert_eq!(native.len(), CASES.len(), "{native:?}");
    for user in USERS {
        let stack = comparable(&under_netvm(user, &CASES));
        for ((title, netvm_rows), (_, native_rows)) in stack.iter().zip(&native) {
            assert_eq!(netvm_rows, native_rows, "{user:?}: ss {title}");
        }
    }
}

#[test]
fn ss_shows_states_queues_and_owning_processes() {
    for user in USERS {
        let out = under_netvm(user, &["-tlnp", "-tanp", "-tane"]);
        let pid = out.lines().next().and_then(|l| l.strip_prefix("pid ")).expect("the pid");
        let owner = format!("users:((\"python3\",pid={pid},fd=3))");
        let listener =
            out.lines().find(|l| l.contains("10.0.0.2:8000 ") && l.starts_with("LISTEN"));
        let listener = listener.expect("the listener");
        // Recv-Q 0 (accepted already), Send-Q 5 (the backlog).
        assert!(listener.split_whitespace().take(3).eq(["LISTEN", "0", "5"]), "{listener}");
        assert!(listener.contains(&owner), "{user:?}: {out}");
        // The server's end has the client's 5 bytes unread.
        let served = out.lines().find(|l| l.starts_with("ESTAB") && l.contains("10.0.0.2:8000 "));
        assert!(served.expect("the server's end").split_whitespace().nth(1) == Some("5"), "{out}");
        // The owner's uid, as `ss -e` shows it.
        let uid = if user == User::Unprivileged && is_root() { 65534 } else { own_uid() };
        let extended = out.split("$ ss -tane").nth(1).expect("ss -tane ran");
        assert!(extended.contains(&format!("uid:{uid} ")) || uid == 0, "{user:?}: {extended}");
    }
}

fn own_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[test]
fn nothing_of_the_host_shows() {
    // A listener of the host's, which no stack has.
    let host = std::net::TcpListener::bind("127.0.0.1:0").expect("a host listener");
    let port = host.local_addr().unwrap().port();
    for user in USERS {
        let out = under_netvm(user, &["-tan", "-uan", "-a"]);
        assert!(!out.contains(&format!(":{port} ")), "{user:?}: {out}");
        assert!(out.contains("$ ss -a 0"), "ss -a succeeds: {out}");
        let tan = out.split("$ ss ").nth(1).unwrap_or_default();
        assert_eq!(tan.lines().count(), 1 + 5, "the header and the stack's five: {tan}");
    }
}
