//! Bad command lines and configurations make netvm fail with status 125 and a clear
//! message (an unknown option named, the file and line for a broken configuration),
//! never a panic; options after the command are the command's; `--help` and
//! `--version` exit 0; the default stack and a configuration's named stacks are the
//! ones commands run on.

mod common;

use common::{
    HttpServer, Listener, PY_TRY_INET_SOCKET, TempDir, User, assert_inet_socket_refused, curl,
    netvm_as, path_str, python, run, run_netvm, run_netvm_cmd,
};

#[test]
fn an_unknown_option_gives_125() {
    for (args, option) in [
        (&["--bogus", "run", "--", "true"][..], "--bogus"),
        (&["run", "--stak", "none", "--", "true"], "--stak"),
        (&["run", "--stack", "none", "-x", "true"], "-x"),
        (&["stacks", "--bogus"], "--bogus"),
    ] {
        let out = run_netvm(args);
        out.assert_code(125).assert_stderr_has(&format!("'{option}'"));
        assert!(!out.stderr.contains("command not found"), "{out}");
    }
}

#[test]
fn options_after_the_command_are_the_commands() {
    let out =
        run_netvm(&["run", "--stack", "none", "sh", "-c", "echo \"$@\"", "sh", "--stack", "-x"]);
    out.assert_code(0);
    assert_eq!(out.stdout, "--stack -x\n", "{out}");
}

#[test]
fn help_and_version_exit_zero() {
    let out = run_netvm(&["--help"]);
    out.assert_code(0);
    assert!(out.stdout.contains("run"), "{out}");
    let out = run_netvm(&["--version"]);
    out.assert_code(0);
    assert!(out.stdout.starts_with("netvm "), "{out}");
}

#[test]
fn an_unknown_subcommand_gives_125() {
    run_netvm(&["launch", "--", "true"]).assert_code(125).assert_stderr_has("launch");
}

/// The stacks `netvm stacks` lists for the configuration in use (the built-in one,
/// unless the machine has /etc/netvm/modules.toml), and the one it marks as the
/// default.
fn configured_stacks() -> (Vec<String>, String) {
    let out = run_netvm(&["stacks"]);
    out.assert_code(0);
    let mut lines = out.stdout.lines();
    assert!(lines.next().is_some_and(|l| l.starts_with("configuration: ")), "{out}");
    let rows: Vec<Vec<&str>> =
        lines.take_while(|l| l.starts_with("  ")).map(|l| l.split_whitespace().collect()).collect();
    let names = rows.iter().map(|row| row[0].to_owned()).collect();
    let defaults: Vec<&Vec<&str>> =
        rows.iter().filter(|row| row.last() == Some(&"(default)")).collect();
    assert_eq!(defaults.len(), 1, "one stack should be marked as the default\n{out}");
    (names, defaults[0][0].to_owned())
}

#[test]
fn an_unknown_stack_gives_125_and_lists_the_mounted_ones() {
    let (names, _) = configured_stacks();
    run_netvm(&["run", "--stack", "nosuch", "--", "true"])
        .assert_code(125)
        .assert_stderr_has("no stack named `nosuch`")
        .assert_stderr_has(&format!("mounts {}", names.join(", ")));
}

#[test]
fn the_default_stack_is_the_one_stacks_marks() {
    let (_, default) = configured_stacks();
    let out = run_netvm(&["run", "--trace", "--", python(), "-c", PY_TRY_INET_SOCKET]);
    out.assert_code(0);
    let trace = out.trace();
    let socket = trace.iter().find(|l| l.call == "socket").expect("a socket line");
    assert_eq!(socket.by, default, "{out}");
}

#[test]
fn an_unwritable_trace_file_gives_125() {
    run_netvm(&["run", "--trace=/nonexistent/netvm/trace.log", "--", "true"])
        .assert_code(125)
        .assert_stderr_has("/nonexistent/netvm/trace.log");
}

#[test]
fn a_missing_configuration_file_gives_125() {
    run_netvm(&["run", "--config", "/nonexistent/netvm.toml", "--", "true"])
        .assert_code(125)
        .assert_stderr_has("/nonexistent/netvm.toml");
}

/// Runs `true` with a configuration file holding `text` and checks that netvm
/// refuses it with `FILE:LINE:` and `reason`.
fn assert_refused(text: &str, line: usize, reason: &str) {
    let dir = TempDir::new("config");
    let file = dir.write("modules.toml", text.as_bytes(), 0o644);
    let out = run_netvm(&["run", "--config", path_str(&file), "--", "true"]);
    out.assert_code(125)
        .assert_stderr_has(&format!("{}:{line}:", file.display()))
        .assert_stderr_has(reason);
}

#[test]
fn a_configuration_with_a_syntax_error_gives_file_and_line() {
    assert_refused("[vunet]\ndefault = \"none\"\n[[vunet.stack]\nname = \"x\"\n", 3, "expected");
}

#[test]
fn a_configuration_with_an_unknown_kind_gives_file_and_line() {
    let text = "[vunet]\ndefault = \"a\"\n\n[[vunet.stack]]\nname = \"a\"\nkind = \"lwip\"\n";
    assert_refused(text, 6, "lwip");
}

#[test]
fn a_configuration_with_a_misspelt_field_gives_file_and_line() {
    let text = "[vunet]\ndefault = \"a\"\n[[vunet.stack]]\nname = \"a\"\nkidn = \"none\"\n";
    assert_refused(text, 5, "kidn");
    assert_refused("[vunet]\ndefualt = \"none\"\n", 2, "defualt");
}

#[test]
fn netvm_config_names_the_configuration() {
    let dir = TempDir::new("config-env");
    let file = dir.write("broken.toml", b"[vunet\n", 0o644);
    let mut command = netvm_as(User::Invoker, &["run", "--", "true"]);
    command.env("NETVM_CONFIG", &file);
    run(command).assert_code(125).assert_stderr_has(&format!("{}:1:", file.display()));
    // An empty NETVM_CONFIG is ignored: the built-in configuration is used.
    let mut command = netvm_as(User::Invoker, &["run", "--", "true"]);
    command.env("NETVM_CONFIG", "");
    run(command).assert_code(0);
}

/// A configuration with switch `sw0` and stack `a`, whose one interface is open
/// (line 9 is its first key).
const NETWORK_HEAD: &str = "[vunet]\ndefault = \"a\"\n[[vunet.switch]]\nname = \"sw0\"\n\
    [[vunet.stack]]\nname = \"a\"\nkind = \"smoltcp\"\n[[vunet.stack.interface]]\n";

#[test]
fn a_configuration_with_a_broken_network_gives_file_and_line() {
    let unknown_switch = format!("{NETWORK_HEAD}switch = \"sw9\"\n");
    assert_refused(
        &unknown_switch,
        9,
        "no switch named `sw9`; declare it with [[vunet.switch]] name = \"sw9\"",
    );
    let bad_route = format!(
        "{NETWORK_HEAD}switch = \"sw0\"\naddresses = [\"10.0.0.2/24\"]\n\
         [[vunet.stack.route]]\nto = \"10.1.2.0/16\"\nvia = \"10.0.0.1\"\n"
    );
    assert_refused(&bad_route, 12, "Invalid prefix for given prefix length");
    let far_gateway = format!(
        "{NETWORK_HEAD}switch = \"sw0\"\naddresses = [\"10.0.0.2/24\"]\n\
         [[vunet.stack.route]]\nto = \"default\"\nvia = \"10.9.0.1\"\n"
    );
    assert_refused(&far_gateway, 13, "gateway 10.9.0.1 is on none of stack `a`'s subnets");

    // `netvm stacks` refuses it the same way.
    let dir = TempDir::new("config-network");
    let file = dir.write("modules.toml", unknown_switch.as_bytes(), 0o644);
    run_netvm(&["stacks", "--config", path_str(&file)])
        .assert_code(125)
        .assert_stderr_has(&format!("{}:9: no switch named `sw9`", file.display()));
}

#[test]
fn a_configuration_with_a_network_is_accepted() {
    let text = format!(
        "{NETWORK_HEAD}switch = \"sw0\"\naddresses = [\"10.0.0.2/24\", \"fd00::2/64\"]\n\
         capture = \"a.pcap\"\n\
         [[vunet.stack.route]]\nto = \"default\"\nvia = \"10.0.0.1\"\n\
         [[vunet.router]]\nname = \"gw\"\n[[vunet.router.interface]]\nswitch = \"sw0\"\n\
         addresses = [\"10.0.0.1/24\", \"fd00::1/64\"]\n"
    );
    let dir = TempDir::new("config-network-ok");
    let file = dir.write("modules.toml", text.as_bytes(), 0o644);
    let out = run_netvm(&["stacks", "--config", path_str(&file)]);
    out.assert_code(0);
    assert!(out.stdout.contains("smoltcp"), "{out}");
}

const TWO_STACKS: &str = "[vunet]\ndefault = \"quiet\"\n\
    [[vunet.stack]]\nname = \"quiet\"\nkind = \"none\"\n\
    [[vunet.stack]]\nname = \"real\"\nkind = \"host\"\n";

#[test]
fn a_configurations_named_stacks_are_used() {
    let dir = TempDir::new("config-stacks");
    let file = dir.write("modules.toml", TWO_STACKS.as_bytes(), 0o644);
    let config = path_str(&file);

    let listener = Listener::new();
    let out = run_netvm_cmd(
        User::Invoker,
        &["run", "--trace", "--config", config],
        &curl(&listener.url()),
    );
    assert_ne!(out.code(), 0, "curl succeeded on the default stack `quiet`\n{out}");
    assert_inet_socket_refused(&out.trace(), "quiet");
    listener.assert_no_connection();

    let server = HttpServer::start();
    let out = run_netvm_cmd(
        User::Invoker,
        &["run", "--config", config, "--stack", "real"],
        &curl(&server.url()),
    );
    out.assert_code(0);
    assert_eq!(server.finish(), 1);

    run_netvm(&["run", "--config", config, "--stack", "nosuch", "--", "true"])
        .assert_code(125)
        .assert_stderr_has("mounts quiet, real");
}

#[test]
fn stacks_lists_the_configurations_stacks() {
    let dir = TempDir::new("config-list");
    let file = dir.write("modules.toml", TWO_STACKS.as_bytes(), 0o644);
    let out = run_netvm(&["stacks", "--config", path_str(&file)]);
    out.assert_code(0);
    let lines: Vec<Vec<&str>> =
        out.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert!(lines.contains(&vec!["quiet", "none", "(default)"]), "{out}");
    assert!(lines.contains(&vec!["real", "host"]), "{out}");
}

/// Found by the uplink's benchmark: `netvm stacks | head -1` panicked ("failed
/// printing to stdout: Broken pipe"); a reader that has what it wanted ends
/// the listing quietly, as for `netvm status`.
#[test]
fn stacks_into_a_closed_pipe_ends_quietly() {
    let mut command = common::netvm_as(common::User::Invoker, &["stacks"]);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    command.stdout(writer).stderr(std::process::Stdio::piped());
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
}
