//! The supervisor stays healthy under socket churn: thousands of virtual sockets
//! opened and closed and processes killed in the middle of a call leave it with the
//! same open files and no growing memory.

mod common;

use common::{User, netvm_as, python, run};

/// Reads `label: before after` from the probe's output.
fn figures(stdout: &str, label: &str) -> (i64, i64) {
    let line =
        stdout.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no {label}"));
    let numbers: Vec<i64> =
        line[label.len()..].split_whitespace().map(|n| n.parse().expect("a number")).collect();
    (numbers[0], numbers[1])
}

#[test]
fn socket_churn_leaks_neither_fds_nor_memory() {
    let probe = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/probes/soak.py");
    let mut command = netvm_as(User::Invoker, &["run", "--", python(), probe]);
    command.env("ROUNDS", "1500");
    let output = run(command);
    output.assert_code(0);
    let (fds_before, fds_after) = figures(&output.stdout, "supervisor fds before/after:");
    assert_eq!(fds_before, fds_after, "the supervisor leaked fds\n{output}");
    let (rss_before, rss_after) = figures(&output.stdout, "supervisor RSS kB before/after:");
    // 1500 rounds make 6000 sockets; keeping one record each would be megabytes
    // (anonymous and shared memory: pages of the binary run for the first time
    // are no leak).
    assert!(
        rss_after - rss_before < 1024,
        "the supervisor grew {} kB\n{output}",
        rss_after - rss_before
    );
}
