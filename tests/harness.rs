//! The test harness's own guard: a test that cannot run here reports itself
//! `SKIPPED` and passes, unless `NETVM_TESTS_REQUIRE_ALL` is set (as CI sets it),
//! in which case it fails. Without this, a CI run that lost root or a package
//! would stay green while checking less.
//!
//! The decision is checked with the variable's value passed in; the whole path
//! (the variable read from the environment, the line printed, the panic) by
//! running one always-skipping test in a child of this very test binary, so that
//! no test changes the environment of the threads running the others.

mod common;

use std::ffi::OsStr;
use std::process::{Command, Output};

use common::{REQUIRE_ALL, WhenMissing, skip};

/// Why [`a_test_that_always_skips`] skips.
const REASON: &str = "needs what no machine has";

#[test]
fn only_an_unset_empty_or_zero_variable_lets_tests_skip() {
    let decide = |value: Option<&str>| WhenMissing::from_env_value(value.map(OsStr::new));
    assert_eq!(decide(None), WhenMissing::Skip);
    assert_eq!(decide(Some("")), WhenMissing::Skip);
    assert_eq!(decide(Some("0")), WhenMissing::Skip);
    assert_eq!(decide(Some("1")), WhenMissing::Fail);
    assert_eq!(decide(Some("yes")), WhenMissing::Fail, "a misspelt value must still enforce");
}

/// The skipping test, run only by [`run_the_skipping_test`] through `--ignored`.
#[test]
#[ignore = "run by skip_reports_or_fails_as_the_environment_says, in a child process"]
fn a_test_that_always_skips() {
    skip(REASON)
}

/// Runs [`a_test_that_always_skips`] alone in a child of this test binary, with
/// [`REQUIRE_ALL`] set to `require_all` (or unset).
fn run_the_skipping_test(require_all: Option<&str>) -> Output {
    let mut command = Command::new(std::env::current_exe().expect("this test binary"));
    command
        .args(["--ignored", "--exact", "a_test_that_always_skips", "--test-threads=1"])
        .env_remove(REQUIRE_ALL);
    if let Some(value) = require_all {
        command.env(REQUIRE_ALL, value);
    }
    command.output().expect("run this test binary again")
}

#[test]
fn skip_reports_or_fails_as_the_environment_says() {
    let skipped = run_the_skipping_test(None);
    let stderr = String::from_utf8_lossy(&skipped.stderr);
    assert!(skipped.status.success(), "a skip failed the test: {skipped:?}");
    assert!(
        stderr.lines().any(|l| l == format!("SKIPPED a_test_that_always_skips: {REASON}")),
        "no SKIPPED line on standard error: {skipped:?}"
    );

    let required = run_the_skipping_test(Some("1"));
    let stdout = String::from_utf8_lossy(&required.stdout);
    assert!(!required.status.success(), "{REQUIRE_ALL}=1 let a test skip: {required:?}");
    assert!(
        stdout.contains(&format!("a_test_that_always_skips cannot run here ({REASON})")),
        "the failure does not say what was missing: {required:?}"
    );
    assert!(
        !String::from_utf8_lossy(&required.stderr).contains("SKIPPED"),
        "a test reported skipped although {REQUIRE_ALL}=1: {required:?}"
    );
}
