//! The uplink of the built-in network, from inside a fake internet
//! (`common::world`): netvm runs in namespace H, whose only route leads to W,
//! where a web server, a DNS server and echo servers answer. Programs on
//! `lwip0` and `lwip1` reach them unmodified, by name, over IPv4 and IPv6, as
//! root and unprivileged; the host's own loopback stays out of reach; refusals
//! come back with the errno the host got.

mod common;

use common::world::{ECHO_PORT, HOST_V4, HOST_V6, INTERNET_V4, INTERNET_V6, WEB_NAME, World};
use common::{NETVM, NO_UPLINK, Output, USERS, User, python, run};

/// Runs `script` with `sh -c` in a session of the built-in configuration,
/// started in H by `user` (`$N` is netvm).
fn session_in_host(world: &World, user: User, script: &str) -> Output {
    session_in_host_with(world, user, &[], script)
}

/// As [`session_in_host`], with `netvm run` options `run_args`.
fn session_in_host_with(world: &World, user: User, run_args: &[&str], script: &str) -> Output {
    world.netvm_session(&[], user, run_args, script).finish()
}

/// `prefix` on each stack: nothing on lwip0, `$N stack lwip1 --` on lwip1.
const ON_EACH_STACK: [(&str, &str); 2] = [("lwip0", ""), ("lwip1", "\"$N\" stack lwip1 -- ")];

#[test]
fn curl_dig_ping_and_udp_reach_the_internet_from_each_stack_as_each_user() {
    let Some(world) = World::new() else { return };
    world.allow_ping_sockets();
    for user in USERS {
        for (stack, on) in ON_EACH_STACK {
            let script = format!(
                "set -e
                 {on}curl -sSf --max-time 10 http://{WEB_NAME}/
                 {on}curl -sSf --max-time 10 -6 http://{WEB_NAME}/
                 {on}dig +short +time=2 +tries=2 {WEB_NAME} A
                 {on}dig +short +time=2 +tries=2 {WEB_NAME} AAAA
                 {on}ping -c1 -W5 {INTERNET_V4} | grep -c ' bytes from {INTERNET_V4}'
                 {on}ping -c1 -W5 {INTERNET_V6} | grep -c ' bytes from {INTERNET_V6}'
                 echo udp4-$$ | {on}socat -t5 - UDP:{INTERNET_V4}:{ECHO_PORT}
                 echo udp6-$$ | {on}socat -t5 - UDP6:[{INTERNET_V6}]:{ECHO_PORT}"
            );
            let output = session_in_host(&world, user, &script);
            output.assert_code(0);
            let twice = world.index_body().repeat(2);
            let rest = output.stdout.strip_prefix(&twice);
            let rest: Vec<&str> = rest.unwrap_or_default().lines().collect();
            let summary = format!("{user:?} on {stack}\n{output}");
            assert_eq!(rest.get(..4), Some(&[INTERNET_V4, INTERNET_V6, "1", "1"][..]), "{summary}");
            let echoed = |tag: &str| rest.iter().any(|l| l.starts_with(tag) && l.len() > tag.len());
            assert!(echoed("udp4-") && echoed("udp6-"), "{summary}");
        }
    }
}

#[test]
fn a_large_download_arrives_whole_over_either_family() {
    let size = 100 << 20;
    let Some(world) = World::with_big_file(size) else { return };
    for (user, stack, url) in [
        (User::Invoker, ON_EACH_STACK[1].1, format!("http://{INTERNET_V4}/big")),
        (User::Unprivileged, ON_EACH_STACK[0].1, format!("http://[{INTERNET_V6}]/big")),
    ] {
        let script = format!("{stack}curl -sSf --max-time 50 '{url}' | sha256sum");
        let output = session_in_host(&world, user, &script);
        output.assert_code(0);
        let sum = output.stdout.split_whitespace().next();
        assert_eq!(sum, Some(world.big_sha256()), "{user:?} {url}\n{output}");
    }
}

/// What a probe prints for `connect` to each of `targets` (`ADDRESS PORT`):
/// `ok`, or the errno's name.
const CONNECT_PROBE: &str = r#"
import errno, socket, sys
for target in sys.argv[1:]:
    host, port = target.rsplit(" ", 1)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(15)
    try:
        s.connect((host, int(port)))
        print("ok")
    except OSError as e:
        print(errno.errorcode.get(e.errno, e))
    s.close()
"#;

#[test]
fn refusals_come_back_with_the_errno_the_host_got() {
    let Some(world) = World::new() else { return };
    // A service on H's loopback, which the uplink must not reach: natively it
    // answers (the positive control).
    let mut server = world.in_host(python(), ["-m", "http.server", "--bind", "127.0.0.1", "8123"]);
    let mut server = server.spawn().unwrap();
    let native = run(world.in_host("sh", ["-c", "for i in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:8123/ && echo up && exit; sleep 0.1; done"]));
    let targets = [
        format!("{INTERNET_V4} 80"),
        format!("{INTERNET_V4} 81"),
        format!("{INTERNET_V6} 81"),
        "127.0.0.1 8123".to_owned(),
        "10.0.2.2 8123".to_owned(),
        // On H's link, where nobody answers ARP: the host's connect fails.
        "192.0.2.99 80".to_owned(),
    ];
    let quoted: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    let script =
        format!("{} -c '{}' {}", python(), CONNECT_PROBE.replace('\'', "'\\''"), quoted.join(" "));
    let output = session_in_host(&world, User::Unprivileged, &script);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(native.stdout.trim(), "up", "{native}");
    output.assert_code(0);
    let printed: Vec<&str> = output.stdout.lines().collect();
    let expected =
        ["ok", "ECONNREFUSED", "ECONNREFUSED", "ECONNREFUSED", "ECONNREFUSED", "EHOSTUNREACH"];
    assert_eq!(printed, expected, "{targets:?}\n{output}");
}

#[test]
fn without_the_uplink_nothing_leaves_the_session() {
    let Some(world) = World::new() else { return };
    let capture = world.start_capture();
    let script = format!("curl -sS --max-time 5 http://{INTERNET_V4}/; ping -c1 -W2 {INTERNET_V4}");
    let mut args = vec!["run", "--no-uplink", "--", "sh", "-c", &script];
    args.insert(0, NETVM);
    let mut command = world.in_host(args[0], &args[1..]);
    command.env_remove(NO_UPLINK.0);
    let output = run(command);
    assert!(output.stderr.contains("Couldn't connect"), "{output}");
    assert!(output.stdout.contains("Net Unreachable"), "{output}");
    assert_eq!(capture.read(&format!("host {INTERNET_V4}")), "", "{output}");
}

/// What the policy probe prints: `connect` to TCP port 443 (its errno and how
/// long it took, in whole tenths of a second), and the `SO_ERROR` a connected
/// UDP socket holds after a send to port 5353.
const POLICY_PROBE: &str = r#"
import errno, socket, sys, time
host = sys.argv[1]
family = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM); s.settimeout(2)
start = time.monotonic()
try:
    s.connect((host, 443)); print("tcp ok")
except socket.timeout:
    print("tcp timeout")
except OSError as e:
    print("tcp", errno.errorcode[e.errno], int((time.monotonic() - start) * 10))
u = socket.socket(family, socket.SOCK_DGRAM); u.connect((host, 5353)); u.send(b"?")
time.sleep(0.5)
print("udp", errno.errorcode.get(u.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), 0))
"#;

#[test]
fn the_egress_policy_refuses_at_once_drops_silently_and_logs_every_flow() {
    let Some(world) = World::new() else { return };
    world.allow_ping_sockets();
    let dir = common::TempDir::new("uplink-audit");
    // The unprivileged session writes the log.
    let writable = std::os::unix::fs::PermissionsExt::from_mode(0o777);
    std::fs::set_permissions(dir.path(), writable).unwrap();
    let audit = dir.path().join("audit.jsonl");
    let capture = world.start_capture();
    let probe = format!("{} -c '{}'", python(), POLICY_PROBE.replace('\'', "'\\''"));
    for (verdict, host) in [("--deny", INTERNET_V4), ("--drop", INTERNET_V6)] {
        let script = format!(
            "curl -sSf --max-time 10 http://{WEB_NAME}/ >/dev/null && echo web ok
             {probe} {host}
             ping -c1 -W1 {host} >/dev/null 2>&1 || echo ping refused"
        );
        let args = [
            "--allow",
            "tcp:80",
            "--allow",
            "udp:53",
            verdict,
            "all",
            "--audit",
            common::path_str(&audit),
        ];
        let output = session_in_host_with(&world, User::Unprivileged, &args, &script);
        output.assert_code(0);
        let expected = match verdict {
            "--deny" => "web ok\ntcp ECONNREFUSED 0\nudp ECONNREFUSED\nping refused\n",
            _ => "web ok\ntcp timeout\nudp 0\nping refused\n",
        };
        assert_eq!(output.stdout, expected, "{verdict}\n{output}");
    }
    // Nothing refused reached the internet; what was allowed did (the
    // capture worked).
    let refused = "tcp port 443 or udp port 5353 or icmp or (icmp6 and ip6[40] == 128)";
    assert_eq!(capture.read(refused), "");
    assert!(capture.read("tcp port 80").contains(" > 192.0.2.2.80: Flags [S]"));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let has = |event: &str, proto: &str, dst: &str, rule: &str| {
        lines.iter().any(|l| {
            l["event"] == event
                && l["proto"] == proto
                && l["dst"] == dst
                && l["rule"] == rule
                && l["stack"] == "lwip0"
        })
    };
    let web = format!("{INTERNET_V4}:80");
    assert!(has("open", "tcp", &web, "allow tcp:80"), "{lines:#?}");
    let closed = lines.iter().find(|l| l["event"] == "close" && l["dst"] == web.as_str());
    assert!(closed.is_some_and(|l| l["bytes_in"].as_u64() > Some(0)), "{lines:#?}");
    assert!(has("deny", "tcp", &format!("{INTERNET_V4}:443"), "deny all"), "{lines:#?}");
    // Each line names the process that opened the flow.
    let by = |dst: &str| lines.iter().find(|l| l["dst"] == dst).map(|l| l["comm"].clone());
    assert_eq!(by(&web), Some("curl".into()), "{lines:#?}");
    let python = std::path::Path::new(python()).file_name().unwrap().to_str().unwrap();
    assert_eq!(by(&format!("{INTERNET_V4}:443")), Some(python[..python.len().min(15)].into()));
    assert!(has("deny", "udp", &format!("{INTERNET_V4}:5353"), "deny all"), "{lines:#?}");
    assert!(has("deny", "icmp", INTERNET_V4, "deny all"), "{lines:#?}");
    assert!(has("drop", "tcp", &format!("[{INTERNET_V6}]:443"), "drop all"), "{lines:#?}");
    assert!(has("drop", "icmp", INTERNET_V6, "drop all"), "{lines:#?}");
}

#[test]
fn published_ports_reach_a_stack_with_the_clients_real_address() {
    let Some(world) = World::new() else { return };
    let dir = common::TempDir::new("uplink-publish");
    let writable = std::os::unix::fs::PermissionsExt::from_mode(0o777);
    std::fs::set_permissions(dir.path(), writable).unwrap();
    let log = dir.path().join("http.log");
    // The clients run once the session's services listen, and the session
    // ends when they are done (the test removes the file).
    let done = dir.path().join("running");
    let script = format!(
        "\"$N\" stack lwip1 -- {python} -m http.server 8000 --bind :: 2>'{log}' & web=$!
         \"$N\" stack lwip1 -- socat UDP6-RECVFROM:7007,fork EXEC:cat & echo=$!
         trap 'kill $web $echo' EXIT
         listening tcp 8000 && listening udp 7007 || exit 1
         touch '{done}'
         while [ -e '{done}' ]; do sleep 0.1; done",
        python = python(),
        log = log.display(),
        done = done.display(),
    );
    let args = ["-p", "8080:lwip1:8000", "-p", "8081:lwip1:7007/udp"];
    let mut session = world.netvm_session(&[], User::Unprivileged, &args, &script);
    for _ in 0..200 {
        if done.exists() || session.has_ended() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let fetch = |command: std::process::Command| run(command).stdout.trim().to_owned();
    let curl = |url: &str| {
        ["-sS", "-m", "5", "-g", "-o", "/dev/null", "-w", "%{http_code}", url].map(String::from)
    };
    let from_internet_v4 =
        fetch(world.in_internet("curl", curl(&format!("http://{HOST_V4}:8080/"))));
    let from_internet_v6 =
        fetch(world.in_internet("curl", curl(&format!("http://[{HOST_V6}]:8080/"))));
    let from_host_loopback = fetch(world.in_host("curl", curl("http://127.0.0.1:8080/")));
    let mut echo =
        world.in_internet("sh", ["-c", &format!("echo over-udp | socat -t2 - UDP:{HOST_V4}:8081")]);
    echo.stdin(std::process::Stdio::null());
    let echoed = fetch(echo);
    let _ = std::fs::remove_file(&done);
    let output = session.finish();
    assert_eq!(
        [from_internet_v4.as_str(), &from_internet_v6, &from_host_loopback, &echoed],
        ["200", "200", "200", "over-udp"],
        "{output}"
    );
    // Each request came from where the client was: W's addresses, and the
    // host's loopback as the uplink's address.
    let served = std::fs::read_to_string(&log).unwrap();
    let clients: Vec<&str> = served.lines().filter_map(|l| l.split(" - - ").next()).collect();
    assert_eq!(
        clients,
        [&format!("::ffff:{INTERNET_V4}")[..], INTERNET_V6, "::ffff:10.0.2.2"],
        "{served}"
    );
}

#[test]
fn a_taken_port_or_no_uplink_fails_the_start_with_a_message() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let forward = format!("127.0.0.1:{port}:lwip1:80");
    // (The harness runs sessions without the uplink: the port is taken
    // before that matters.)
    let output = common::run_netvm(&["run", "-p", &forward, "--", "true"]);
    output.assert_code(125);
    let taken = format!("cannot publish {forward}/tcp: 127.0.0.1:{port}: the port is taken");
    output.assert_stderr_has(&taken);
    drop(holder);
    let output = common::run_netvm(&["run", "--no-uplink", "-p", &forward, "--", "true"]);
    output.assert_code(125);
    output.assert_stderr_has("published ports need an uplink");
    let unknown = format!("127.0.0.1:{port}:nosuch:80");
    let output = common::run_netvm(&["run", "-p", &unknown, "--", "true"]);
    output.assert_code(125);
    output.assert_stderr_has("published ports need an uplink");
}

#[test]
fn a_stub_resolver_on_the_hosts_loopback_answers_through_the_uplink() {
    let Some(world) = World::new() else { return };
    let _stub = world.start_stub_resolver();
    for user in USERS {
        // The session reads the uplink's DNS addresses where the host's
        // resolv.conf names 127.0.0.53; both reach the stub, over UDP and TCP.
        let script = format!(
            "set -e
             grep '^nameserver' /etc/resolv.conf
             curl -sSf --max-time 10 http://{WEB_NAME}/ >/dev/null && echo web ok
             \"$N\" stack lwip1 -- dig +short +tcp +time=2 +tries=1 {WEB_NAME} AAAA
             dig +short +time=2 +tries=1 @fd00:0:0:2::3 {WEB_NAME} A"
        );
        let output = session_in_host(&world, user, &script);
        output.assert_code(0);
        let expected = format!(
            "nameserver 10.0.2.3\nnameserver fd00:0:0:2::3\nweb ok\n{INTERNET_V6}\n{INTERNET_V4}\n"
        );
        assert_eq!(output.stdout, expected, "{user:?}\n{output}");
    }
    // The host's own file is untouched.
    let host = run(world.in_host("cat", ["/etc/resolv.conf"])).stdout;
    assert!(host.contains("nameserver 127.0.0.53"), "{host}");
}

#[test]
fn the_hosts_loopback_is_reached_only_through_a_mapped_address() {
    let Some(world) = World::new() else { return };
    let mut server = world.in_host(python(), ["-m", "http.server", "--bind", "127.0.0.1", "8124"]);
    let mut server = server.spawn().unwrap();
    let up = "for i in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:8124/ && exit; sleep 0.1; done; exit 1";
    run(world.in_host("sh", ["-c", up])).assert_code(0);
    let fetch = "curl -sS --max-time 5 -o /dev/null -w '%{http_code}\\n' http://10.0.2.2:8124/";
    let mapped = session_in_host_with(
        &world,
        User::Unprivileged,
        &["--map-host-loopback", "10.0.2.2"],
        fetch,
    );
    let unmapped = session_in_host(&world, User::Unprivileged, fetch);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(mapped.stdout, "200\n", "{mapped}");
    assert_eq!(unmapped.stdout, "000\n", "{unmapped}");
}

#[test]
fn status_shows_the_uplink_its_published_ports_and_its_flows() {
    let Some(world) = World::with_big_file(8 << 20) else { return };
    // A slow download keeps a flow open while status is asked.
    let script = format!(
        "curl -sS --limit-rate 1M -o /dev/null http://{INTERNET_V4}/big & sleep 1
         \"$N\" status --json; kill $!"
    );
    let output =
        session_in_host_with(&world, User::Unprivileged, &["-p", "18080:lwip1:80"], &script);
    let report: serde_json::Value = serde_json::from_str(&output.stdout).expect("JSON");
    let uplink = &report["uplinks"][0];
    assert_eq!(uplink["name"], "host", "{output}");
    assert_eq!(uplink["switch"], "up0");
    assert_eq!(uplink["addresses"], serde_json::json!(["10.0.2.2/24", "fd00:0:0:2::2/64"]));
    let published = uplink["published"].as_array().unwrap();
    assert!(published.contains(&"0.0.0.0:18080 -> 10.0.0.3:80/tcp".into()), "{published:?}");
    let flows = uplink["flows"].as_array().unwrap();
    let download = flows.iter().find(|f| f["dst"] == format!("{INTERNET_V4}:80").as_str());
    let download = download.unwrap_or_else(|| panic!("no flow to the web server: {flows:?}"));
    assert_eq!(
        (&download["proto"], &download["direction"], &download["stack"]),
        (&"tcp".into(), &"out".into(), &"lwip0".into())
    );
    assert!(download["bytes_in"].as_u64() > Some(0), "{download}");
}

#[test]
fn an_uplink_carries_at_most_4096_flows_and_refuses_the_next() {
    let Some(world) = World::new() else { return };
    let dir = common::TempDir::new("uplink-limit");
    let writable = std::os::unix::fs::PermissionsExt::from_mode(0o777);
    std::fs::set_permissions(dir.path(), writable).unwrap();
    let audit = dir.path().join("audit.jsonl");
    // One UDP socket, 4,100 destinations: each is a flow (and costs the
    // supervisor its state), though all share one host socket. (Paced, and
    // each destination sent to twice, in two rounds: a datagram lost on a
    // loaded machine would miscount (CI once saw 4,049 flows opened), and a
    // second datagram to an open flow opens none, to a refused one is refused
    // without a new audit line.)
    let script = format!(
        "{} -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
import time
for round in range(2):
    for port in range(20000, 24100):
        s.sendto(b\"x\", (\"{INTERNET_V4}\", port))
        if port % 100 == 0: time.sleep(0.01)'",
        python()
    );
    let args = ["--audit", common::path_str(&audit)];
    session_in_host_with(&world, User::Unprivileged, &args, &script).assert_code(0);
    let log = std::fs::read_to_string(&audit).unwrap();
    let opened = log.lines().filter(|l| l.contains(r#""event":"open""#)).count();
    let refused: Vec<&str> =
        log.lines().filter(|l| l.contains("too many flows open (4096)")).collect();
    assert_eq!((opened, refused.len()), (4096, 4), "{}", refused.join("\n"));
}

/// Found by review: `--audit` naming a FIFO nobody reads held the session's
/// start for good; it fails at once with what to do.
#[test]
fn an_audit_fifo_nobody_reads_fails_the_start_at_once() {
    let dir = common::TempDir::new("uplink-fifo");
    let fifo = dir.path().join("audit");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let output = common::run_netvm(&["run", "--audit", common::path_str(&fifo), "--", "true"]);
    output.assert_code(125);
    output.assert_stderr_has("nobody reads that FIFO; start its reader first");
}
