//! Every socket option number 0..79 at the IP, IPv6, TCP and UDP levels, on
//! fresh TCP and UDP sockets of both families, answers under netvm as it does
//! natively: `getsockopt` with an `int`'s room and a byte's, `setsockopt` of
//! 0, 1, 2 and of one byte, and `getsockopt` after a set
//! (`tests/probes/option_surface.c`). Options netvm models answer from its
//! own records; the rest from a kernel socket of the same kind (`shadow.rs`),
//! but only as far as the program's own capabilities reach: the unprivileged
//! run checks that the supervisor's do not leak.

mod common;

use common::{USERS, command_as, compile_probe, netvm_as, run};

#[test]
fn every_option_answers_as_linux_answers_it() {
    let probe = compile_probe("option_surface");
    for user in USERS {
        let native = run(command_as(user, &probe));
        native.assert_code(0);
        let mut under_netvm = netvm_as(user, &["run", "--"]);
        under_netvm.arg(&probe);
        let netvm = run(under_netvm);
        netvm.assert_code(0);
        let (theirs, ours): (Vec<&str>, Vec<&str>) =
            (native.stdout.lines().collect(), netvm.stdout.lines().collect());
        assert_eq!(theirs.len(), ours.len(), "{user:?}: the runs differ in length\n{netvm}");
        assert!(theirs.len() > 1000, "{user:?}: the probe printed too little\n{native}");
        let differences: Vec<String> = theirs
            .iter()
            .zip(&ours)
            .filter(|(linux, netvm)| linux != netvm)
            .map(|(linux, netvm)| format!("  Linux: {linux}\n  netvm: {netvm}"))
            .collect();
        assert!(
            differences.is_empty(),
            "{user:?}: {} options answered otherwise than Linux:\n{}",
            differences.len(),
            differences.join("\n")
        );
    }
}
