//! An abortive close (`SO_LINGER` {1, 0}) across the network sends a reset, as
//! a Linux host's does, whichever side closes so (the one that connected or
//! the one that accepted), and a plain close a FIN: the capture of the link
//! shows them. A program under netvm on the other end still reads end of file
//! (its carrier cannot be reset; see man/netvm.1, LIMITATIONS), where two
//! Linux hosts' would read `ECONNRESET`.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

mod common;

use common::{TempDir, USERS, path_str, python, run, session_with};

/// On the other host: accepts two connections on port 9912; closes the first
/// abortively (SO_LINGER {1, 0}) and reads from the second until it ends.
const SERVER: &str = r#"
import socket, struct, os
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9912)); s.listen(); s.settimeout(10)
first, _ = s.accept()
first.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
first.close()
second, _ = s.accept()
second.settimeout(10)
try:
    os.write(1, b"server reads %r\n" % second.recv(10))
except OSError as e:
    os.write(1, b"server reads %s\n" % __import__("errno").errorcode[e.errno].encode())
"#;

/// Here: connects twice; reads from the first until it ends, closes the
/// second abortively.
const CLIENT: &str = r#"
import socket, struct, os, time, sys
# The server resets this one at once: under load, before this connect has
# returned (it said ECONNREFUSED, where Linux's connect succeeds once the
# handshake is done and the reset is the socket's to report).
first = socket.create_connection((sys.argv[1], 9912))
first.settimeout(10)
try:
    os.write(1, b"client reads %r\n" % first.recv(10))
except OSError as e:
    os.write(1, b"client reads %s\n" % __import__("errno").errorcode[e.errno].encode())
second = socket.create_connection((sys.argv[1], 9912))
time.sleep(0.2)
second.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
second.close()
time.sleep(0.5)
"#;

#[test]
fn an_abortive_close_sends_a_reset_across_the_network() {
    for user in USERS {
        let dir = TempDir::new("abortive-close");
        // The session's user writes the capture.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        let server = dir.write("server.py", SERVER.as_bytes(), 0o644);
        let client = dir.write("client.py", CLIENT.as_bytes(), 0o644);
        let script = format!(
            "\"$N\" stack lwip1 -- {py} {server} & listening tcp 9912 || exit 1\n\
             {py} {client} 10.0.0.3; wait",
            py = python(),
            server = path_str(&server),
            client = path_str(&client),
        );
        let output = session_with(user, &["--pcap", path_str(dir.path())], &script);
        output.assert_code(0);
        let mut tcpdump = Command::new("tcpdump");
        tcpdump.args(["-nr", path_str(&dir.path().join("lwip0-eth0.pcap")), "tcp port 9912"]);
        let seen = run(tcpdump).stdout;
        let resets = |from: &str| {
            seen.lines()
                .filter(|l| l.contains(&format!("IP {from}")) && l.contains("Flags [R"))
                .count()
        };
        assert!(resets("10.0.0.3.9912 >") >= 1, "{user:?}: the server's reset\n{seen}\n{output}");
        assert!(resets("10.0.0.2.") >= 1, "{user:?}: the client's reset\n{seen}\n{output}");
    }
}
