//! On a `none` stack a command has no network: curl and the static busybox cannot
//! reach a listener on the host's 127.0.0.1 (which sees no connection), network
//! sockets fail with EAFNOSUPPORT, and AF_UNIX sockets keep working. This holds for
//! `--stack none` and for a `none` stack that a configuration makes the default,
//! for the invoking user and for an unprivileged one.

mod common;

use common::{Listener, TempDir, USERS, busybox_wget, curl, path_str, python, run_netvm_cmd};

/// The ways to put a command on a `none` stack: by name, and as the default of a
/// configuration (whose stack is called `offline`).
struct NoneStacks {
    _dir: TempDir,
    config: String,
}

impl NoneStacks {
    fn new() -> Self {
        let dir = TempDir::new("none-config");
        let text = "[vunet]\ndefault = \"offline\"\n\
            [[vunet.stack]]\nname = \"offline\"\nkind = \"none\"\n";
        let config = path_str(&dir.write("modules.toml", text.as_bytes(), 0o644)).to_owned();
        Self { _dir: dir, config }
    }

    /// `netvm run` argument lists, one per way.
    fn runs(&self) -> [Vec<&str>; 2] {
        [vec!["run", "--stack", "none"], vec!["run", "--config", &self.config]]
    }
}

/// Runs `client(url)` on every `none` stack as every user, and checks that it
/// fails and that the listener at `url` never sees a connection.
fn assert_cannot_reach_host(client: impl Fn(&str) -> Vec<String>) {
    let stacks = NoneStacks::new();
    for user in USERS {
        for run in stacks.runs() {
            let listener = Listener::new();
            let out = run_netvm_cmd(user, &run, &client(&listener.url()));
            assert_ne!(out.code(), 0, "the client succeeded ({user:?}, {run:?})\n{out}");
            listener.assert_no_connection();
        }
    }
}

#[test]
fn curl_cannot_reach_a_host_listener() {
    assert_cannot_reach_host(curl);
}

#[test]
fn static_busybox_cannot_reach_a_host_listener() {
    // A static binary makes its socket calls without any libc netvm could know.
    assert_cannot_reach_host(busybox_wget);
}

#[test]
fn unix_socketpairs_work_while_network_sockets_are_refused() {
    let script = r#"
import errno, socket
a, b = socket.socketpair()
a.sendall(b"ping")
print(b.recv(4).decode())
for family, kind in [(socket.AF_INET, socket.SOCK_STREAM), (socket.AF_INET6, socket.SOCK_DGRAM)]:
    try:
        socket.socket(family, kind)
        print("socket made")
    except OSError as e:
        print(errno.errorcode[e.errno])
"#;
    let stacks = NoneStacks::new();
    for user in USERS {
        for run in stacks.runs() {
            let cmd = [python(), "-c", script].map(String::from);
            let out = run_netvm_cmd(user, &run, &cmd);
            out.assert_code(0);
            assert_eq!(out.stdout, "ping\nEAFNOSUPPORT\nEAFNOSUPPORT\n", "{user:?} {run:?}\n{out}");
        }
    }
}
