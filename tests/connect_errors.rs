//! Connecting to what is not there, across stacks, as on two Linux hosts: an
//! absent host is "no route to host" (after the neighbour's resolution fails),
//! a closed port on another host and on the router is "connection refused", and
//! a non-blocking connect in progress polls neither writable nor readable until
//! the handshake ends, and then as Linux polls a failed connect.
//!
//! The clients (Python, curl, Go) run on lwip0 (10.0.0.2), with lwip1
//! (10.0.0.3) and the router (10.0.0.1) on its switch; as root, the same
//! clients also run in a network namespace at 10.0.0.2 whose veth leads to
//! another at 10.0.0.3, and both must print the same lines.

mod common;

use std::process::Command;

use common::{TempDir, USERS, path_str, python, run, session, skip};

/// Python's and curl's attempts, one line each, timings left out.
const CLIENTS: &str = r#"
for target in 10.0.0.9:80 10.0.0.3:81; do
    host=${target%:*}; port=${target#*:}
    PY -c '
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=8)
    print("python: connected")
except OSError as e:
    print("python:", e)
' "$host" "$port"
    curl -sS --connect-timeout 8 "http://$target/" 2>&1 | sed -E 's/after [0-9]+ ms/after N ms/'
done
"#;

/// A non-blocking connect to the absent host, polled at once: Linux reports
/// nothing until the handshake fails, then `POLLOUT | POLLERR | POLLHUP`.
const POLLED: &str = r#"
import errno, select, socket
s = socket.socket(); s.setblocking(False)
print("connect:", errno.errorcode[s.connect_ex(("10.0.0.9", 80))])
p = select.poll(); p.register(s, select.POLLIN | select.POLLOUT)
print("at once:", p.poll(100))
print("at the end:", p.poll(8000), errno.errorcode[s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)])
"#;

/// The same attempts in Go, built by [`go_client`].
const GO_CLIENT: &str = r#"package main

import (
	"fmt"
	"net"
	"time"
)

func main() {
	for _, target := range []string{"10.0.0.9:80", "10.0.0.3:81", "10.0.0.1:80", "[fd00::1]:80"} {
		_, err := net.DialTimeout("tcp", target, 8*time.Second)
		fmt.Println("go:", err)
	}
}
"#;

const EXPECTED: &str = "python: [Errno 113] No route to host\n\
    curl: (7) Failed to connect to 10.0.0.9 port 80 after N ms: Couldn't connect to server\n\
    python: [Errno 111] Connection refused\n\
    curl: (7) Failed to connect to 10.0.0.3 port 81 after N ms: Couldn't connect to server\n";

const EXPECTED_POLLED: &str =
    "connect: EINPROGRESS\nat once: []\nat the end: [(3, 29)] EHOSTUNREACH\n";

fn clients() -> String {
    CLIENTS.replace("PY", python())
}

#[test]
fn python_and_curl_meet_an_absent_host_and_a_closed_port_as_on_linux() {
    for user in USERS {
        let output = session(user, &clients());
        output.assert_code(0);
        assert_eq!(output.stdout, EXPECTED, "{user:?}\n{output}");
    }
    if let Some(native) = on_linux_hosts(&clients()) {
        assert_eq!(native, EXPECTED, "Linux itself says otherwise");
    }
}

#[test]
fn a_non_blocking_connect_in_progress_polls_nothing_until_it_fails() {
    let dir = TempDir::new("polled");
    let script = dir.write("polled.py", POLLED.as_bytes(), 0o644);
    let command = format!("{} {}", python(), path_str(&script));
    for user in USERS {
        let output = session(user, &command);
        output.assert_code(0);
        assert_eq!(output.stdout, EXPECTED_POLLED, "{user:?}\n{output}");
    }
    if let Some(native) = on_linux_hosts(&command) {
        assert_eq!(native, EXPECTED_POLLED, "Linux itself says otherwise");
    }
}

#[test]
fn go_meets_an_absent_host_a_closed_port_and_the_router_as_on_linux() {
    let Some((_dir, binary)) = go_client() else { return };
    let expected = "go: dial tcp 10.0.0.9:80: connect: no route to host\n\
        go: dial tcp 10.0.0.3:81: connect: connection refused\n\
        go: dial tcp 10.0.0.1:80: connect: connection refused\n\
        go: dial tcp [fd00::1]:80: connect: connection refused\n";
    for user in USERS {
        let output = session(user, &binary);
        output.assert_code(0);
        assert_eq!(output.stdout, expected, "{user:?}\n{output}");
    }
}

/// The Go client, built in a directory that lives as long as the first value.
fn go_client() -> Option<(TempDir, String)> {
    if Command::new("go").arg("version").output().is_err() {
        skip("needs go (golang-go)");
        return None;
    }
    let dir = TempDir::new("go-connect");
    let source = dir.write("main.go", GO_CLIENT.as_bytes(), 0o644);
    let binary = dir.path().join("connect");
    let mut command = Command::new("go");
    command.arg("build").arg("-o").arg(&binary).arg(&source);
    command.env("HOME", dir.path()).env("GOCACHE", dir.path().join("cache"));
    run(command).assert_code(0);
    let binary = path_str(&binary).to_owned();
    Some((dir, binary))
}

/// What `script` prints on two Linux hosts joined by a veth (see
/// [`common::on_two_linux_hosts`]), if they can be made.
fn on_linux_hosts(script: &str) -> Option<String> {
    let output = common::on_two_linux_hosts(script)?;
    output.assert_code(0);
    Some(output.stdout)
}

/// Connecting to a network the router has no route for: the router answers
/// the SYN with "net unreachable", and the connect fails with `ENETUNREACH`
/// at once, as Linux's does (`tcp_v4_err`, `tcp_v6_err`), blocking or not.
/// It waited for its 3-second timeout and said `EHOSTUNREACH`.
const UNROUTED: &str = r#"
import errno, select, socket
for host in ("10.9.9.9", "fd09::9"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        socket.socket(family).connect((host, 80)); print("connected")
    except OSError as e:
        print(host, "blocking:", errno.errorcode[e.errno])
    s = socket.socket(family); s.setblocking(False)
    print(host, "non-blocking:", errno.errorcode.get(s.connect_ex((host, 80))))
    p = select.poll(); p.register(s, select.POLLOUT); p.poll(8000)
    print(host, "SO_ERROR:", errno.errorcode[s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)])
"#;

#[test]
fn a_connect_the_router_answers_net_unreachable_fails_at_once_with_enetunreach() {
    let expected = "10.9.9.9 blocking: ENETUNREACH\n10.9.9.9 non-blocking: EINPROGRESS\n\
        10.9.9.9 SO_ERROR: ENETUNREACH\nfd09::9 blocking: ENETUNREACH\n\
        fd09::9 non-blocking: EINPROGRESS\nfd09::9 SO_ERROR: ENETUNREACH\n";
    let command = format!("{} -c '{UNROUTED}'", python());
    for user in USERS {
        let output = session(user, &command);
        output.assert_code(0);
        assert_eq!(output.stdout, expected, "{user:?}\n{output}");
    }
}
