//! Unmodified programs talk to each other over the default `smoltcp` stack
//! (`lwip0`), and nothing they do reaches the host's network.
//!
//! Each test runs one `netvm run -- sh -c SCRIPT` session in which servers and
//! clients (python3's http.server, curl, nc, socat, iperf3, an asyncio echo server)
//! find each other on the stack's own loopback. A virtual port is the stack's alone,
//! so the tests use fixed ports; where a host listener sits on the very same port,
//! it must see no connection.

mod common;

use common::{Listener, Output, Session, TempDir, USERS, User, netvm_as, python, run};

/// Runs `script` with `sh -c` in a session on the default stack as `user`.
fn session(user: User, script: &str) -> Output {
    run(netvm_as(user, &["run", "--", "sh", "-c", script]))
}

/// Asserts that every line of `expected` appears in the session's standard output.
fn assert_lines(output: &Output, expected: &[&str]) {
    output.assert_code(0);
    for line in expected {
        assert!(output.stdout.lines().any(|l| l == *line), "no line {line:?}\n{output}");
    }
}

#[test]
fn http_server_and_curl_over_ipv4_and_ipv6() {
    for user in USERS {
        // The host listener holds the same port number the session serves on.
        let host = Listener::new();
        let port = host.port();
        let script = format!(
            "{py} -m http.server {port} --bind 127.0.0.1 >/dev/null 2>&1 & v4=$!
             {py} -m http.server {port} --bind ::1 >/dev/null 2>&1 & v6=$!
             for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:{port}/ && break; sleep 0.1; done
             for i in $(seq 50); do curl -s -o /dev/null http://[::1]:{port}/ && break; sleep 0.1; done
             curl -sS -o /dev/null -w 'v4 %{{http_code}}\\n' http://127.0.0.1:{port}/
             curl -sS -o /dev/null -w 'v6 %{{http_code}}\\n' 'http://[::1]:{port}/'
             kill $v4 $v6",
            py = python()
        );
        assert_lines(&session(user, &script), &["v4 200", "v6 200"]);
        host.assert_no_connection();
    }
}

#[test]
fn nc_both_directions_with_half_close() {
    let script = "
        nc -l 9000 > /tmp/netvm-nc-$$ & server=$!
        until printf 'to server\\n' | nc -N 127.0.0.1 9000 2>/dev/null; do sleep 0.1; done
        wait $server; cat /tmp/netvm-nc-$$; rm -f /tmp/netvm-nc-$$
        (sleep 0.3; printf 'to client\\n') | nc -N -l 9001 & server=$!
        until nc -d 127.0.0.1 9001 2>/dev/null; do sleep 0.1; done
        wait $server";
    for user in USERS {
        assert_lines(&session(user, script), &["to server", "to client"]);
    }
}

#[test]
fn socat_over_tcp_and_udp_with_replies() {
    let script = "
        socat -u TCP-LISTEN:9100 STDOUT & server=$!
        until echo 'socat tcp' | socat -u STDIN TCP:127.0.0.1:9100 2>/dev/null; do sleep 0.1; done
        wait $server
        socat UDP-RECVFROM:9300 EXEC:'tr a-z A-Z' & sleep 0.3
        echo 'udp request' | socat -t 2 - UDP:127.0.0.1:9300
        socat UDP6-RECVFROM:9301 EXEC:'tr a-z A-Z' & sleep 0.3
        echo 'udp6 request' | socat -t 2 - UDP6:[::1]:9301
        wait";
    for user in USERS {
        assert_lines(&session(user, script), &["socat tcp", "UDP REQUEST", "UDP6 REQUEST"]);
    }
}

#[test]
fn iperf3_tcp_and_udp_on_one_stack() {
    for user in USERS {
        let script = "
            iperf3 -s -1 -p 5201 >/dev/null & sleep 0.5
            iperf3 -c 127.0.0.1 -p 5201 -t 1 | grep -q receiver && echo tcp-ok
            iperf3 -s -1 -p 5202 >/dev/null & sleep 0.5
            iperf3 -u -b 100M -c 127.0.0.1 -p 5202 -t 1 | grep -q receiver && echo udp-ok
            wait";
        assert_lines(&session(user, script), &["tcp-ok", "udp-ok"]);
    }
}

#[test]
fn asyncio_echo_server_with_many_concurrent_clients() {
    let dir = TempDir::new("asyncio");
    let program = dir.write(
        "echo.py",
        br#"import asyncio
async def handle(r, w):
    while data := await r.read(1024):
        w.write(data); await w.drain()
    w.close()
async def client(i):
    r, w = await asyncio.open_connection("127.0.0.1", 7000)
    msg = f"client {i}\n".encode()
    w.write(msg); await w.drain()
    ok = await r.readexactly(len(msg)) == msg
    w.close(); await w.wait_closed()
    return ok
async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", 7000)
    results = await asyncio.gather(*(client(i) for i in range(300)))
    print("echoed", sum(results), "of", len(results))
    srv.close(); await srv.wait_closed()
asyncio.run(main())
"#,
        0o644,
    );
    for user in USERS {
        let output = run(netvm_as(user, &["run", "--", python(), common::path_str(&program)]));
        assert_lines(&output, &["echoed 300 of 300"]);
    }
}

/// The ports a host socket listens on (`/proc/net/tcp*` state 0A) or is bound to
/// for UDP.
fn host_ports() -> Vec<u16> {
    let mut ports = Vec::new();
    for (file, listening_only) in [("tcp", true), ("tcp6", true), ("udp", false), ("udp6", false)] {
        let table = std::fs::read_to_string(format!("/proc/net/{file}")).unwrap_or_default();
        for line in table.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if listening_only && fields.get(3) != Some(&"0A") {
                continue;
            }
            let port = fields.get(1).and_then(|local| local.rsplit(':').next());
            if let Some(port) = port.and_then(|p| u16::from_str_radix(p, 16).ok()) {
                ports.push(port);
            }
        }
    }
    ports
}

#[test]
fn the_host_kernel_sees_none_of_the_sessions_sockets() {
    let host = Listener::new();
    let port = host.port();
    let dir = TempDir::new("flag");
    let flag = dir.path().join("checked");
    let script = format!(
        "{py} -m http.server 18080 --bind 127.0.0.1 >/dev/null 2>&1 & web=$!
         socat -u UDP-RECV:18081 STDOUT >/dev/null & udp=$!
         {py} -c 'import socket,sys; s=socket.socket(); s.connect((\"127.0.0.1\", {port}))' 2>/dev/null \
           && echo reached-port || echo refused-port
         until curl -s -o /dev/null http://127.0.0.1:18080/; do sleep 0.1; done
                  echo ready
         until [ -e {flag} ]; do sleep 0.05; done
         kill $web $udp",
        py = python(),
        flag = flag.display()
    );
    let mut session = Session::spawn(netvm_as(User::Invoker, &["run", "--", "sh", "-c", &script]));
    assert_eq!(session.next_line(), "refused-port", "a virtual connect to {port} went somewhere");
    assert_eq!(session.next_line(), "ready");
    let ports = host_ports();
    for virtual_port in [18080, 18081] {
        assert!(!ports.contains(&virtual_port), "the host has a socket on port {virtual_port}");
    }
    std::fs::write(&flag, b"").expect("flag");
    let output = session.finish();
    output.assert_code(0);
    host.assert_no_connection();
}
