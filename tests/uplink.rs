//! The uplink of the built-in network, from inside a fake internet
//! (`common::world`): netvm runs in namespace H, whose only route leads to W,
//! where a web server, a DNS server and echo servers answer. Programs on
//! `lwip0` and `lwip1` reach them unmodified, by name, over IPv4 and IPv6, as
//! root and unprivileged; the host's own loopback stays out of reach; refusals
//! come back with the errno the host got.

mod common;

use common::world::{ECHO_PORT, INTERNET_V4, INTERNET_V6, WEB_NAME, World};
use common::{NETVM, NO_UPLINK, Output, PRELUDE, USERS, User, is_root, python, run};

/// Runs `script` with `sh -c` in a session of the built-in configuration,
/// started in H by `user` (`$N` is netvm).
fn session_in_host(world: &World, user: User, script: &str) -> Output {
    let script = format!("N='{NETVM}'\n{PRELUDE}\n{script}");
    let mut args: Vec<&str> = Vec::new();
    if user == User::Unprivileged && is_root() {
        args.extend(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
    }
    args.extend([NETVM, "run", "--", "sh", "-c", &script]);
    let mut command = world.in_host(args[0], &args[1..]);
    command.env_remove(NO_UPLINK.0).env_remove("NETVM_CONFIG").current_dir("/");
    run(command)
}

/// Lets every group of H open ping sockets, as a desktop distribution does.
fn allow_ping_sockets(world: &World) {
    let range = "net.ipv4.ping_group_range=0 2147483647";
    run(world.in_host("sysctl", ["-qw", range])).assert_code(0);
}

/// `prefix` on each stack: nothing on lwip0, `$N stack lwip1 --` on lwip1.
const ON_EACH_STACK: [(&str, &str); 2] = [("lwip0", ""), ("lwip1", "\"$N\" stack lwip1 -- ")];

#[test]
fn curl_dig_ping_and_udp_reach_the_internet_from_each_stack_as_each_user() {
    let Some(world) = World::new() else { return };
    allow_ping_sockets(&world);
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
