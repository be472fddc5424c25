//! The randomized call surface: `tests/probes/call_surface.c` makes thousands
//! of socket calls with good and bad arguments from a fixed seed, natively (a
//! fresh network namespace with the stack's addresses on its loopback, as the
//! differential suite's) and under netvm, and the two transcripts are compared
//! call by call: what each call returned, `ok` or its errno.
//!
//! Every mismatch is counted, and the classes (call, Linux's answer, netvm's)
//! are printed. Calls that run natively on a carrier (a send or receive
//! without an address, `FIONREAD`, `FIONBIO`) answer as the carrier, an
//! `AF_UNIX` socket, answers; the differences the carrier is known to make are
//! named in [`CARRIER_CLASSES`] with their reasons (the smoltcp kind keeps the
//! carrier by the project's decision; see man/netvm.1, LIMITATIONS). Every
//! other mismatch counts against the goal: at most 1% of the calls (issue
//! "Linux to the last errno"), and never more than [`CEILING`].

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{compile_probe, is_root, path_str, run};

/// The seeds and how many calls each.
const SEEDS: [&str; 3] = ["1", "2", "3"];
const CALLS: usize = 3000;
/// The most mismatches outside the carrier's classes allowed in one seed's
/// run; 1% of the calls is the goal. Measured with every class counted, seed
/// 1, kernel 6.18: 175 of 3,000 on 2026-12-07, then 132 once setsockopt's
/// length checks, IPv6 UDP's IPv4 destinations and RFC 2292's options
/// answered as Linux. Then, outside the carrier's classes: seed 1 none,
/// seed 2 18, seed 3 9, once the kernel answered the options netvm does not
/// model, closed sockets' data calls answered in Linux's order, and raw
/// sockets took every protocol. Lower it as differences close.
const CEILING: usize = 24;

/// The carrier's known differences: (call, Linux's answer, netvm's answer,
/// why). Only calls that run natively on the carrier may fall in one.
const CARRIER_CLASSES: &[(&str, &str, &str, &str)] = &[
    (
        "recvfrom",
        "ENOTCONN",
        "EINVAL",
        "an unconnected AF_UNIX stream refuses a receive with EINVAL",
    ),
    (
        "recvfrom",
        "ok",
        "EINVAL",
        "a TCP socket whose connect failed reads end of file; the carrier is an unconnected AF_UNIX stream",
    ),
    ("recvfrom", "EAGAIN", "EINVAL", "a closed listener's carrier still listens"),
    (
        "recvfrom",
        "EAGAIN",
        "EOPNOTSUPP",
        "AF_UNIX datagrams have no MSG_OOB; UDP finds nothing to read",
    ),
    ("recvfrom", "ECONNREFUSED", "ECONNRESET", "a refused connect is a reset carrier"),
    ("sendto", "EPIPE", "ENOTCONN", "an unconnected AF_UNIX stream refuses a send with ENOTCONN"),
    ("sendto", "EPIPE", "EOPNOTSUPP", "an unconnected AF_UNIX stream refuses MSG_OOB first"),
    ("sendto", "ECONNREFUSED", "EPIPE", "a refused connect is a reset carrier"),
    ("sendto", "EDESTADDRREQ", "ENOTCONN", "an unconnected AF_UNIX datagram socket says ENOTCONN"),
    ("sendto", "EDESTADDRREQ", "EFAULT", "AF_UNIX copies a datagram before it looks for a peer"),
    ("sendto", "EDESTADDRREQ", "EOPNOTSUPP", "AF_UNIX datagrams refuse MSG_OOB first"),
    (
        "ioctl",
        "ok",
        "EINVAL",
        "a closed listener's carrier still listens, and FIONREAD refuses a listener",
    ),
];

/// The native namespace's set-up, as the differential suite's.
const NATIVE_SETUP: &str = "{ sysctl -qw net.ipv4.ping_group_range='0 2147483647' 2>/dev/null || \
     sysctl -qw net.ipv4.ping_group_range=\"$(id -g) $(id -g)\"; } && \
     ip link set lo up && ip addr add 10.0.0.2/24 dev lo && \
     ip -6 addr add fd00::2/64 dev lo nodad && exec \"$0\" \"$1\" \"$2\"";

/// A stack with the same addresses.
const CONFIG: &str = "[vunet]\ndefault = \"lwip0\"\n[[vunet.stack]]\nname = \"lwip0\"\n\
    kind = \"smoltcp\"\naddresses = [\"10.0.0.2/24\", \"fd00::2/64\"]\n";

#[test]
fn random_calls_answer_as_linux_answers_them() {
    let probe = compile_probe("call_surface");
    let dir = common::TempDir::new("call-surface");
    let config = dir.write("modules.toml", CONFIG.as_bytes(), 0o644);
    let mut failures = Vec::new();
    for seed in SEEDS {
        let calls = CALLS.to_string();
        let mut native = Command::new("unshare");
        native.arg(if is_root() { "-n" } else { "-rn" });
        native.args(["sh", "-c", NATIVE_SETUP]).arg(&probe).args([seed, &calls]);
        let native = run(native);
        native.assert_code(0);
        let mut netvm = Command::new(common::NETVM);
        netvm.args(["run", "--config", path_str(&config), "--"]).arg(&probe).args([seed, &calls]);
        let netvm = run(netvm);
        netvm.assert_code(0);

        let (ours, theirs): (Vec<&str>, Vec<&str>) =
            (netvm.stdout.lines().collect(), native.stdout.lines().collect());
        assert_eq!(theirs.len(), CALLS, "the native run stopped early\n{native}");
        assert_eq!(ours.len(), CALLS, "the netvm run stopped early\n{netvm}");
        let (carrier, others) = classify(&theirs, &ours);
        let count = |classes: &BTreeMap<String, usize>| classes.values().sum::<usize>();
        let report = format!(
            "seed {seed}: {} of {CALLS} calls answered otherwise than Linux ({:.2}%), and {} \
             more in the carrier's known classes:\n{}{}",
            count(&others),
            count(&others) as f64 * 100.0 / CALLS as f64,
            count(&carrier),
            listing("", &others),
            listing("carrier: ", &carrier),
        );
        println!("{report}");
        if count(&others) > CEILING {
            failures.push(report);
        }
    }
    assert!(failures.is_empty(), "more mismatches than the ceiling ({CEILING}):\n{failures:#?}");
}

/// The mismatched calls of two transcripts, by class (call, Linux's answer,
/// netvm's), split into the carrier's known classes and the rest.
fn classify(linux: &[&str], netvm: &[&str]) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let (mut carrier, mut others) = (BTreeMap::new(), BTreeMap::new());
    for (theirs, ours) in linux.iter().zip(netvm).filter(|(a, b)| a != b) {
        let words: Vec<&str> = theirs.split_whitespace().collect();
        let call = words.get(1).copied().unwrap_or("?");
        let answer = |line: &str| line.rsplit(' ').next().unwrap_or("?").to_owned();
        let (linux_answer, netvm_answer) = (answer(theirs), answer(ours));
        let same_call =
            ours.rsplit_once(' ').map(|(c, _)| c) == theirs.rsplit_once(' ').map(|(c, _)| c);
        let known = CARRIER_CLASSES
            .iter()
            .find(|(c, l, n, _)| *c == call && *l == linux_answer && *n == netvm_answer);
        let class = format!("{call}: Linux {linux_answer} / netvm {netvm_answer}");
        match known {
            Some((_, _, _, why)) if same_call && runs_on_carrier(&words) => {
                *carrier.entry(format!("{class} ({why})")).or_default() += 1;
            }
            _ => *others.entry(class).or_default() += 1,
        }
    }
    (carrier, others)
}

/// Whether the probe's call (its line's words) runs natively, on the carrier:
/// a receive or send without an address, `FIONREAD` or `FIONBIO`.
fn runs_on_carrier(words: &[&str]) -> bool {
    match words.get(1).copied() {
        Some("recvfrom") => words.contains(&"k2"),
        Some("sendto") => words.contains(&"a-"),
        Some("ioctl") => words.contains(&"r0") || words.contains(&"r2"),
        _ => false,
    }
}

/// The classes, most frequent first, one per line.
fn listing(prefix: &str, classes: &BTreeMap<String, usize>) -> String {
    let mut by_count: Vec<_> = classes.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1));
    by_count.iter().map(|(class, count)| format!("{count:>5}  {prefix}{class}\n")).collect()
}
