//! A virtual socket is reachable only through its stack. Its carrier is an
//! `AF_UNIX` socket bound to an abstract name that `/proc/net/unix` lists, so a
//! traced process could try to connect to that name directly, past its stack; netvm
//! refuses it.
//!
//! The test proves the name is real: from outside netvm (where nothing is refused)
//! it finds the exact name of a session's listener by connecting to it, then hands
//! that name to a process inside the session.

mod common;

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};

use common::{Session, TempDir, User, netvm_as, python};

/// Abstract names in `/proc/net/unix` that look like netvm carriers (`@nv...`;
/// netvm's names are printable, so the listing shows them exactly, after the `@`).
fn listed_carrier_names() -> Vec<Vec<u8>> {
    let table = std::fs::read("/proc/net/unix").expect("/proc/net/unix");
    table
        .split(|&b| b == b'\n')
        .filter_map(|line| line.split(|&b| b == b' ').rfind(|f| !f.is_empty()))
        .filter(|path| path.len() == 14 && path.starts_with(b"@nv"))
        .map(|path| path[1..].to_vec())
        .collect()
}

/// The exact abstract name of a listening carrier, found by connecting to it.
fn reachable_carrier_name() -> Vec<u8> {
    for name in listed_carrier_names() {
        let addr = SocketAddr::from_abstract_name(&name).expect("abstract name");
        if UnixStream::connect_addr(&addr).is_ok() {
            return name;
        }
    }
    panic!("no listening carrier found in /proc/net/unix")
}

#[test]
fn a_carrier_cannot_be_reached_past_its_stack() {
    let dir = TempDir::new("isolation");
    let handoff = dir.path().join("name");
    let script = format!(
        r#"{py} -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 7777)); s.listen(8)
print("ready", flush=True)
while True: s.accept()[0].close()
' &
until [ -s {handoff} ]; do sleep 0.05; done
{py} -c '
import socket, errno
name = bytes.fromhex(open("{handoff}").read())
u = socket.socket(socket.AF_UNIX)
try:
    u.connect(b"\0" + name); print("direct: connected")
except OSError as e:
    print("direct:", errno.errorcode[e.errno])
t = socket.create_connection(("127.0.0.1", 7777)); print("virtual: connected")
'
kill $!"#,
        py = python(),
        handoff = handoff.display()
    );
    let mut session = Session::spawn(netvm_as(User::Invoker, &["run", "--", "sh", "-c", &script]));
    assert_eq!(session.next_line(), "ready");
    let name = reachable_carrier_name();
    let hex: String = name.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&handoff, hex).expect("hand the name over");
    assert_eq!(session.next_line(), "direct: ECONNREFUSED");
    assert_eq!(session.next_line(), "virtual: connected");
    session.finish().assert_code(0);
}
