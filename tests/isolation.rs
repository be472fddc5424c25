//! A virtual socket is reachable only through its stack. Its carrier is an
//! `AF_UNIX` socket bound to an abstract name that `/proc/net/unix` lists inside
//! the session, so a traced process could try to connect to that name directly,
//! past its stack; netvm refuses it. Outside the session, in the host's network
//! namespace, the name does not exist at all.

mod common;

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};

use common::{Session, User, netvm_as, python};

/// The carrier names that listen (`__SO_ACCEPTCON` in the flags column) in a
/// `/proc/net/unix` table: `nv...` without the `@`.
fn listening_carrier_names(table: &[u8]) -> Vec<Vec<u8>> {
    table
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let fields: Vec<&[u8]> = line.split(|&b| b == b' ').filter(|f| !f.is_empty()).collect();
            let [_, _, _, flags, _, _, _, path] = fields[..] else { return None };
            (flags == b"00010000" && path.len() == 14 && path.starts_with(b"@nv"))
                .then(|| path[1..].to_vec())
        })
        .collect()
}

#[test]
fn a_carrier_cannot_be_reached_past_its_stack() {
    // Inside the session: the prober reads the names of listening carriers from
    // /proc/net/unix (so they are real) and connects to each with a socket of its
    // own; then reaches the same listener through its stack.
    let script = format!(
        r#"{py} -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 7777)); s.listen(8)
print("ready", flush=True)
while True: s.accept()[0].close()
' &
until grep -q "^ *[0-9a-f]*: [0-9]* [0-9]* 00010000 0001 01 *[0-9]* @nv" /proc/net/unix; do sleep 0.05; done
{py} -c '
import socket, errno
names = []
for line in open("/proc/net/unix").read().splitlines()[1:]:
    f = line.split()
    if len(f) == 8 and f[3] == "00010000" and f[7].startswith("@nv"):
        names.append(f[7][1:].encode())
print("listening carriers:", "some" if names else "none")
for name in names:
    u = socket.socket(socket.AF_UNIX)
    try:
        u.connect(b"\0" + name); print("direct: connected")
    except OSError as e:
        print("direct:", errno.errorcode[e.errno])
t = socket.create_connection(("127.0.0.1", 7777)); print("virtual: connected")
'
kill $!"#,
        py = python(),
    );
    let mut session = Session::spawn(netvm_as(User::Invoker, &["run", "--", "sh", "-c", &script]));
    assert_eq!(session.next_line(), "ready");
    assert_eq!(session.next_line(), "listening carriers: some");
    // From outside, the session's own table lists the carrier, but the host's
    // namespace has no such name: nothing outside can reach it.
    let inner = std::fs::read(format!("/proc/{}/net/unix", session.pid())).expect("the table");
    let names = listening_carrier_names(&inner);
    assert!(!names.is_empty(), "no listening carrier in the session's table");
    let host = std::fs::read("/proc/net/unix").expect("/proc/net/unix");
    assert!(listening_carrier_names(&host).iter().all(|n| !names.contains(n)));
    for name in &names {
        let addr = SocketAddr::from_abstract_name(name).expect("abstract name");
        assert!(UnixStream::connect_addr(&addr).is_err(), "reached {name:?} from the host");
    }
    for _ in &names {
        assert_eq!(session.next_line(), "direct: ECONNREFUSED");
    }
    assert_eq!(session.next_line(), "virtual: connected");
    session.finish().assert_code(0);
}

/// A host socket the launching process passes down (an unconnected TCP socket at
/// fd 5) is closed at launch; kept with `--keep-sockets`, with or without the
/// namespaces, every call netvm traps on it is refused. The host listener it aims
/// at records nothing.
#[test]
fn an_inherited_host_socket_reaches_nothing() {
    let listener = common::Listener::new();
    let launcher = format!(
        r#"
import os, socket, subprocess, sys
s = socket.socket()
os.dup2(s.fileno(), 5)
prog = """
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
addr = bytes([2, 0]) + ({port}).to_bytes(2, "big") + bytes([127, 0, 0, 1]) + bytes(8)
r = libc.connect(5, addr, 16)
print("connect:", "ok" if r == 0 else errno.errorcode[ctypes.get_errno()])
"""
for extra in ([], ["--keep-sockets"], ["--keep-sockets", "--filter-only"]):
    out = subprocess.run(["{netvm}", "run", *extra, "--", "{py}", "-c", prog],
                         pass_fds=[5], capture_output=True, text=True)
    print(" ".join(extra) or "default", out.stdout.strip(), flush=True)
"#,
        port = listener.port(),
        netvm = common::NETVM,
        py = python(),
    );
    let mut command = std::process::Command::new(python());
    command.args(["-c", &launcher]).env_remove("NETVM_CONFIG");
    let out = common::run(command);
    out.assert_code(0);
    assert_eq!(
        out.stdout,
        "default connect: EBADF\n--keep-sockets connect: EPERM\n\
         --keep-sockets --filter-only connect: EPERM\n",
        "{out}"
    );
    listener.assert_no_connection();
}

/// A `sendmmsg` whose entry naming another stack's carrier is followed by one the
/// kernel cannot read (it sends the first, then stops) is refused all the same:
/// the carrier's datagram socket on `lwip1` receives nothing.
#[test]
fn a_sendmmsg_cut_short_does_not_reach_a_carrier() {
    let probe = common::compile_probe("sendmmsg_edge");
    let script = format!(
        r#"{netvm} stack lwip1 -- {py} -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 5000)); s.settimeout(1)
print("ready", flush=True)
try: print("received:", s.recv(100).decode(), flush=True)
except OSError: print("received nothing", flush=True)
' &
until grep -q " 0002 01 *[0-9]* @nv" /proc/net/unix; do sleep 0.05; done
name=$(awk '$5 == "0002" && $NF ~ /^@nv/ {{print substr($NF, 2)}}' /proc/net/unix | head -1)
{probe} "$name"
wait"#,
        netvm = common::NETVM,
        py = python(),
        probe = common::path_str(&probe),
    );
    let out = common::run(netvm_as(User::Invoker, &["run", "--", "sh", "-c", &script]));
    out.assert_code(0);
    assert_eq!(
        out.stdout, "ready\nsendmmsg before an unmapped entry: ECONNREFUSED\nreceived nothing\n",
        "{out}"
    );
}

/// Standard output that is a socket of the host (as socat's `EXEC:` or inetd give
/// it) stays usable: only calls that could act on a network are refused on it.
#[test]
fn a_host_socket_as_standard_output_serves_its_reads_and_writes() {
    let launcher = format!(
        r#"
import socket, subprocess
ours, theirs = socket.socketpair()
prog = """
import os, socket
s = socket.socket(fileno=os.dup(1))
s.sendmsg([("type %d\\n" % s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)).encode()])
try:
    s.bind(b"\\0netvm-test-name"); print("bind: ok", flush=True)
except OSError as e:
    print("bind:", e.errno, flush=True)
"""
out = subprocess.run(["{netvm}", "run", "--", "{py}", "-c", prog], stdout=theirs)
theirs.close()
print(ours.makefile().read(), end="")
"#,
        netvm = common::NETVM,
        py = python(),
    );
    let mut command = std::process::Command::new(python());
    command.args(["-c", &launcher]);
    let out = common::run(command);
    out.assert_code(0);
    assert_eq!(out.stdout, "type 1\nbind: 1\n", "{out}");
}

/// What netvm writes for the kernel to read (a carrier's name, a copied address it
/// checked) lies in the sealed half of its scratch window: the program can
/// neither store to it, nor make it writable, unmap or replace it, nor write it
/// through /proc/self/mem; dropping its pages brings them back unchanged.
#[test]
fn the_sealed_window_cannot_be_changed_by_the_program() {
    let probe = common::compile_probe("sealed_window");
    for user in common::USERS {
        let out = common::run(netvm_as(user, &["run", "--", common::path_str(&probe)]));
        out.assert_code(0);
        assert_eq!(
            out.stdout,
            "window: found\nstore: SIGSEGV\nmprotect: EACCES\nmunmap: EPERM\nmmap_fixed: EPERM\n\
             proc_mem: EIO\nmadvise_dontneed: kept\n",
            "{user:?}\n{out}"
        );
    }
}

/// The scratch window's set-up holds under pressure: signals that interrupt it
/// (before, the sealed half was given up for good, and the program's later
/// native AF_UNIX calls failed with ENOMEM), and threads of a new process making
/// their first trapped call together (before, each set one up and the supervisor
/// kept the losers' mappings: 256 MB of address space after 50 runs).
#[test]
fn the_window_set_up_survives_signals_and_racing_threads() {
    let probe = common::compile_probe("window_setup");
    for _ in 0..3 {
        let out = common::run(netvm_as(
            User::Invoker,
            &["run", "--", common::path_str(&probe), "signals"],
        ));
        out.assert_code(0);
        assert_eq!(out.stdout, "socket: ok\nsendto: ECONNREFUSED\n", "{out}");
    }
    let out =
        common::run(netvm_as(User::Invoker, &["run", "--", common::path_str(&probe), "threads"]));
    out.assert_code(0);
    let growth: i64 = out
        .stdout
        .strip_prefix("growth: ")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no growth line\n{out}"));
    // A window's sealed half is 8 MiB of the supervisor's address space: none may
    // outlive its process.
    assert!(growth < 8 * 1024, "the supervisor grew {growth} kB\n{out}");
}
