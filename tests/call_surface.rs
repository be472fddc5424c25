//! The randomized call surface: `tests/probes/call_surface.c` makes thousands
//! of socket calls with good and bad arguments from a fixed seed, natively (a
//! fresh network namespace with the stack's addresses on its loopback, as the
//! differential suite's) and under netvm, and the two transcripts are compared
//! call by call: what each call returned, `ok` or its errno.
//!
//! Every mismatch is counted, and the classes (call, Linux's answer, netvm's)
//! are printed. The count must not grow past [`CEILING`]; the goal is at most
//! 1% of the calls (issue "Linux to the last errno"). Much of what is left is
//! the carrier's (a send or a receive without an address on an unconnected
//! TCP socket runs natively on an `AF_UNIX` socket), option handling, and the
//! divergence one different answer causes in the calls after it.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{compile_probe, is_root, path_str, run};

/// The seed and how many calls.
const SEED: &str = "1";
const CALLS: usize = 3000;
/// The most mismatches allowed (measured: 175 of 3,000 on 2026-12-07, kernel
/// 6.18, then 144 the same day once setsockopt's length checks and IPv6 UDP's
/// IPv4 destinations answered as Linux, and 132 with RFC 2292's IPv6 options
/// and `IPV6_ADDRFORM`; lower it as differences close).
const CEILING: usize = 140;

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
    let calls = CALLS.to_string();
    let mut native = Command::new("unshare");
    native.arg(if is_root() { "-n" } else { "-rn" });
    native.args(["sh", "-c", NATIVE_SETUP]).arg(&probe).args([SEED, &calls]);
    let native = run(native);
    native.assert_code(0);

    let dir = common::TempDir::new("call-surface");
    let config = dir.write("modules.toml", CONFIG.as_bytes(), 0o644);
    let mut netvm = Command::new(common::NETVM);
    netvm.args(["run", "--config", path_str(&config), "--"]).arg(&probe).args([SEED, &calls]);
    let netvm = run(netvm);
    netvm.assert_code(0);

    let (ours, theirs): (Vec<&str>, Vec<&str>) =
        (netvm.stdout.lines().collect(), native.stdout.lines().collect());
    assert_eq!(theirs.len(), CALLS, "the native run stopped early\n{native}");
    assert_eq!(ours.len(), CALLS, "the netvm run stopped early\n{netvm}");
    let mut classes: BTreeMap<String, usize> = BTreeMap::new();
    for (linux, netvm) in theirs.iter().zip(&ours).filter(|(a, b)| a != b) {
        let call = linux.split_whitespace().nth(1).unwrap_or("?");
        let answer = |line: &str| line.rsplit(' ').next().unwrap_or("?").to_owned();
        *classes
            .entry(format!("{call}: Linux {} / netvm {}", answer(linux), answer(netvm)))
            .or_default() += 1;
    }
    let mismatches: usize = classes.values().sum();
    let mut report = format!(
        "{mismatches} of {CALLS} calls answered otherwise than Linux ({:.1}%):\n",
        mismatches as f64 * 100.0 / CALLS as f64
    );
    let mut by_count: Vec<_> = classes.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1));
    for (class, count) in by_count {
        report += &format!("{count:>5}  {class}\n");
    }
    println!("{report}");
    assert!(mismatches <= CEILING, "more mismatches than the ceiling ({CEILING}): {report}");
}
