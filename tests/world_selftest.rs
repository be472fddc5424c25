//! The fake internet of `common::world` checked natively, without netvm: what a
//! host in H reaches through its routes (web by name and address, DNS, ping, echo),
//! the stub resolver, captures, the layout of the two namespaces, and that a
//! dropped world leaves nothing behind. The uplink's tests trust all of it.

mod common;

use std::path::Path;
use std::process::Command;

use common::world::{
    ECHO_PORT, HOST_V4, INTERNET_V4, INTERNET_V6, LINK, STUB_RESOLVER, WEB_NAME, World,
    needs_program,
};
use common::{Output, Session, curl, run};

/// Runs `script` with `sh -c` in H, failing the test unless it succeeds; its
/// standard output.
fn sh_in_host(world: &World, script: &str) -> String {
    let output = run(world.in_host("sh", ["-c", script]));
    output.assert_code(0);
    output.stdout
}

/// Runs `program args...` in H, failing the test unless it succeeds.
fn in_host(world: &World, program: &str, args: &[&str]) -> Output {
    let output = run(world.in_host(program, args));
    output.assert_code(0);
    output
}

/// `dig +short` of `args` (a name, a type, `@server`) in H, as one line per answer.
fn dig_short(world: &World, args: &[&str]) -> String {
    let mut all = vec!["+short", "+time=2", "+tries=1"];
    all.extend_from_slice(args);
    in_host(world, "dig", &all).stdout
}

#[test]
fn curl_by_name_gets_the_index_over_either_family_through_the_worlds_dns() {
    let Some(world) = World::new() else { return };
    let url = format!("http://{WEB_NAME}/");
    for family in [None, Some("-4"), Some("-6")] {
        let mut args = curl(&url);
        args.extend(family.map(String::from));
        args.push("-f".into());
        let output = run(world.in_host(&args[0], &args[1..]));
        output.assert_code(0);
        assert_eq!(output.stdout, world.index_body(), "{family:?}\n{output}");
    }
}

#[test]
fn the_big_file_over_ipv6_has_its_sha256() {
    let size = 32 << 20;
    let Some(world) = World::with_big_file(size) else { return };
    let url = format!("http://[{INTERNET_V6}]/big");
    let printed = sh_in_host(&world, &format!("curl -sSf --max-time 20 '{url}' | sha256sum"));
    assert_eq!(printed.split_whitespace().next(), Some(world.big_sha256()), "{printed}");
    assert_eq!(world.big_size(), size);
}

#[test]
fn the_worlds_dns_server_answers_a_and_aaaa_and_nxdomain_for_other_test_names() {
    let Some(world) = World::new() else { return };
    if needs_program("dig", "bind9-dnsutils").is_none() {
        return;
    }
    let server = format!("@{INTERNET_V4}");
    assert_eq!(dig_short(&world, &[WEB_NAME, "AAAA", &server]), format!("{INTERNET_V6}\n"));
    assert_eq!(
        dig_short(&world, &[WEB_NAME, "A", &format!("@{INTERNET_V6}")]),
        format!("{INTERNET_V4}\n")
    );
    let other = in_host(&world, "dig", &["+time=2", "+tries=1", "nothing.test", &server]);
    assert!(other.stdout.contains("status: NXDOMAIN"), "{other}");
}

#[test]
fn w_answers_ping_over_either_family() {
    let Some(world) = World::new() else { return };
    for address in [INTERNET_V4, INTERNET_V6] {
        let output = in_host(&world, "ping", &["-c1", "-W2", address]);
        assert!(output.stdout.contains("1 received"), "{address}\n{output}");
    }
}

#[test]
fn the_echo_servers_send_back_what_they_get_over_udp_and_tcp() {
    let Some(world) = World::new() else { return };
    let v6 = format!("[{INTERNET_V6}]");
    let clients: Vec<(String, Session)> =
        [("UDP4", INTERNET_V4), ("UDP6", &v6), ("TCP4", INTERNET_V4), ("TCP6", &v6)]
            .into_iter()
            .map(|(kind, address)| {
                let message = format!("hello over {kind}");
                // socat waits its -t after sending before it gives up on an answer:
                // the clients run at once, so that the test waits it once.
                let script = format!("echo '{message}' | socat -t2 - {kind}:{address}:{ECHO_PORT}");
                (message, Session::spawn(world.in_host("sh", ["-c", &script])))
            })
            .collect();
    for (message, client) in clients {
        let output = client.finish();
        output.assert_code(0);
        assert_eq!(output.stdout, format!("{message}\n"), "{output}");
    }
}

#[test]
fn the_stub_resolver_answers_on_127_0_0_53_and_serves_hs_resolv_conf_while_it_runs() {
    let Some(world) = World::new() else { return };
    if needs_program("dig", "bind9-dnsutils").is_none() {
        return;
    }
    let resolv_conf = || in_host(&world, "cat", &["/etc/resolv.conf"]).stdout;
    assert_eq!(resolv_conf(), format!("nameserver {INTERNET_V4}\n"));
    {
        let _stub = world.start_stub_resolver();
        assert_eq!(resolv_conf(), format!("nameserver {STUB_RESOLVER}\n"));
        assert_eq!(
            dig_short(&world, &[WEB_NAME, &format!("@{STUB_RESOLVER}")]),
            format!("{INTERNET_V4}\n")
        );
        // And through resolv.conf, as any program resolves.
        let output = in_host(&world, "getent", &["ahostsv4", WEB_NAME]);
        assert!(output.stdout.starts_with(INTERNET_V4), "{output}");
    }
    assert_eq!(resolv_conf(), format!("nameserver {INTERNET_V4}\n"));
    let refused =
        run(world.in_host("dig", ["+time=1", "+tries=1", WEB_NAME, &format!("@{STUB_RESOLVER}")]));
    assert_ne!(refused.code(), 0, "the stub still answers after its drop\n{refused}");
}

#[test]
fn a_capture_sees_the_http_exchange_and_nothing_that_did_not_happen() {
    let Some(world) = World::new() else { return };
    let capture = world.start_capture();
    let args = curl(&format!("http://{INTERNET_V4}/"));
    let output = run(world.in_host(&args[0], &args[1..]));
    output.assert_code(0);
    let http = capture.read("tcp port 80");
    let flags = |flag: &str| http.lines().filter(|l| l.contains(&format!("Flags [{flag}"))).count();
    assert!(
        http.contains(&format!("{HOST_V4}.")) && http.contains(&format!("> {INTERNET_V4}.80:")),
        "{http}"
    );
    assert!(flags("S") >= 1 && flags("F") >= 2, "no whole connection (SYN, two FINs) in:\n{http}");
    assert_eq!(capture.read(&format!("udp port {ECHO_PORT} or host 198.51.100.1")), "");
    let file = capture.stop();
    assert!(file.metadata().is_ok_and(|m| m.len() > 0), "{}", file.display());
}

#[test]
fn h_reaches_only_w_and_w_reaches_only_h() {
    let Some(world) = World::new() else { return };
    let route_get = |ns: &str, to: &str| {
        let mut command = Command::new("ip");
        command.args(["-n", ns, "route", "get", to]);
        run(command)
    };
    let via_w = route_get(world.host_ns(), "198.51.100.1");
    via_w.assert_code(0);
    assert!(via_w.stdout.contains(&format!("via {INTERNET_V4} dev {LINK}")), "{via_w}");
    let v6 = route_get(world.host_ns(), "2001:db8:ffff::1");
    assert!(v6.stdout.contains(&format!("via {INTERNET_V6} dev {LINK}")), "{v6}");
    for to in ["198.51.100.1", "2001:db8:ffff::1"] {
        let nowhere = route_get(world.internet_ns(), to);
        assert_ne!(nowhere.code(), 0, "W has a route to {to}\n{nowhere}");
        assert!(nowhere.stderr.contains("unreachable"), "{nowhere}");
    }
}

#[test]
fn a_dropped_world_leaves_no_namespace_process_or_file() {
    let Some(world) = World::new() else { return };
    let (host, internet) = (world.host_ns().to_owned(), world.internet_ns().to_owned());
    let etc = Path::new("/etc/netns").join(&host);
    assert!(etc.join("resolv.conf").exists());
    let pids = run({
        let mut command = Command::new("ip");
        command.args(["netns", "pids", &internet]);
        command
    })
    .stdout;
    assert_eq!(pids.lines().count(), 3, "web, DNS and echo servers: {pids}");
    let other = World::new().expect("a second world");
    assert_ne!(other.host_ns(), host);
    drop(world);
    let namespaces =
        String::from_utf8(Command::new("ip").args(["netns", "list"]).output().expect("ip").stdout)
            .expect("UTF-8");
    for ns in [&host, &internet] {
        assert!(!namespaces.lines().any(|l| l.split_whitespace().next() == Some(ns)), "{ns} left");
    }
    assert!(!etc.exists(), "{} left", etc.display());
    for pid in pids.lines() {
        assert!(!Path::new("/proc").join(pid).exists(), "server {pid} left running");
    }
    // The other world is untouched.
    let args = curl(&format!("http://{WEB_NAME}/"));
    let output = run(other.in_host(&args[0], &args[1..]));
    assert_eq!(output.stdout, other.index_body(), "{output}");
}
