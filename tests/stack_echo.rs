//! The toy `echo` kind (src/modules/vunet/echo/), which shows that a kind plugs in
//! through its own folder and the registry line alone: its own key in
//! modules.toml, its own mount, its own answers. Every TCP connection a program on
//! an echo stack makes, to any address, reaches the echo service.

mod common;

use common::{TempDir, User, python, run_netvm_as, run_netvm_cmd};

/// A configuration whose default stack `e` is of kind echo, with a banner.
const ECHO: &str = "[vunet]\ndefault = \"e\"\n\
    [[vunet.stack]]\nname = \"e\"\nkind = \"echo\"\nbanner = \"hello from e\\n\"\n\
    [[vunet.stack]]\nname = \"n\"\nkind = \"none\"\n";

/// Connects to `address`, sends a line and prints what came back (banner first).
const CLIENT: &str = "import socket, sys\n\
    s = socket.create_connection((sys.argv[1], 7))\n\
    s.sendall(b'ping\\n')\n\
    got = b''\n\
    while got.count(b'\\n') < 2:\n    got += s.recv(100)\n\
    print(got.decode(), end='')\n";

#[test]
fn any_connection_on_an_echo_stack_is_echoed_after_the_banner() {
    let dir = TempDir::new("echo");
    let config = dir.write("modules.toml", ECHO.as_bytes(), 0o644);
    let config = config.to_str().unwrap();
    for user in [User::Invoker, User::Unprivileged] {
        for address in ["192.0.2.7", "::1"] {
            let cmd: Vec<String> =
                [python(), "-c", CLIENT, address].iter().map(|s| s.to_string()).collect();
            let out = run_netvm_cmd(user, &["run", "--config", config], &cmd);
            out.assert_code(0);
            assert_eq!(out.stdout, "hello from e\nping\n", "{address}: {out}");
        }
    }
}

/// Binds, listens and asks for interfaces on a socket of the echo stack: each
/// would reach past the toy (an `AF_UNIX` name of anyone's, the kernel's
/// interfaces), so each is refused.
const REACH_PAST: &str = "import socket, errno, fcntl\n\
    s = socket.socket()\n\
    def attempt(what, call):\n    try:\n        call(); print(what, 'ok')\n    \
    except OSError as e:\n        print(what, errno.errorcode[e.errno])\n\
    attempt('bind', lambda: s.bind(('0.0.0.0', 80)))\n\
    attempt('listen', lambda: s.listen())\n\
    attempt('ioctl', lambda: fcntl.ioctl(s, 0x8912, bytes(40)))\n";

#[test]
fn what_the_toy_does_not_serve_is_refused() {
    let dir = TempDir::new("echo-refused");
    let config = dir.write("modules.toml", ECHO.as_bytes(), 0o644);
    let cmd: Vec<String> = [python(), "-c", REACH_PAST].iter().map(|s| s.to_string()).collect();
    let out = run_netvm_cmd(User::Invoker, &["run", "--config", config.to_str().unwrap()], &cmd);
    out.assert_code(0);
    assert_eq!(out.stdout, "bind ENOTSUP\nlisten ENOTSUP\nioctl ENOTSUP\n", "{out}");
}

/// Sends 1 MB from one thread while the main one reads the echo back: the service
/// holds back what the client has not read yet instead of dropping it.
const BIG: &str = "import socket, threading\n\
    s = socket.create_connection(('10.9.9.9', 7))\n\
    data = bytes(range(256)) * 4096\n\
    threading.Thread(target=lambda: s.sendall(data)).start()\n\
    got = b''\n\
    while len(got) < len(b'hello from e\\n') + len(data):\n    \
    chunk = s.recv(65536)\n    if not chunk: break\n    got += chunk\n\
    print(got == b'hello from e\\n' + data, len(got))\n";

/// Opens 100 connections at once and counts those the service answers: it holds
/// at most 64 (each costs the supervisor an fd), and closes the others at once.
const MANY: &str = "import socket\n\
    conns = [socket.create_connection(('10.9.9.9', 7)) for _ in range(100)]\n\
    served = sum(1 for c in conns if c.recv(100).startswith(b'hello'))\n\
    print('served', served)\n";

/// Found by review: a client that sends much and reads late lost its echo (the
/// connection was reset), and each connection cost the supervisor an fd without
/// bound.
#[test]
fn the_service_is_bounded_and_loses_nothing() {
    let dir = TempDir::new("echo-bounds");
    let config = dir.write("modules.toml", ECHO.as_bytes(), 0o644);
    let config = config.to_str().unwrap();
    for (script, expected) in [(BIG, "True 1048589\n"), (MANY, "served 64\n")] {
        let cmd: Vec<String> = [python(), "-c", script].iter().map(|s| s.to_string()).collect();
        let out = run_netvm_cmd(User::Invoker, &["run", "--config", config], &cmd);
        out.assert_code(0);
        assert_eq!(out.stdout, expected, "{out}");
    }
    let long = ECHO.replace("hello from e\\n", &"x".repeat(4097));
    let config = dir.write("long.toml", long.as_bytes(), 0o644);
    let out = run_netvm_as(User::Invoker, &["stacks", "--config", config.to_str().unwrap()]);
    out.assert_code(125).assert_stderr_has("a banner is at most 4096 bytes");
}

#[test]
fn the_echo_kind_owns_its_key_and_is_listed() {
    let dir = TempDir::new("echo-keys");
    let stray = ECHO.replace("kind = \"none\"\n", "kind = \"none\"\nbanner = \"x\"\n");
    let config = dir.write("stray.toml", stray.as_bytes(), 0o644);
    let out = run_netvm_as(User::Invoker, &["stacks", "--config", config.to_str().unwrap()]);
    out.assert_code(125)
        .assert_stderr_has("a `none` stack has no banner; only echo stacks take `banner`");
    let config = dir.write("modules.toml", ECHO.as_bytes(), 0o644);
    let out = run_netvm_as(User::Invoker, &["stacks", "--config", config.to_str().unwrap()]);
    out.assert_code(0);
    assert!(out.stdout.contains("  e                echo  (default)\n"), "{out}");
    assert!(out.stdout.contains("  echo             a toy: every TCP connection"), "{out}");
}
