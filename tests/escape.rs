//! The escape suite: a program under `netvm run` attacks the walls around it, and
//! every attack must fail. Each test is one family of attacks, run as the invoking
//! user and as an unprivileged one, on the `none` stack and on the default smoltcp
//! stack `lwip0` where the stack matters:
//!
//! - leaving the tracer's sight or the network namespace (`CLONE_UNTRACED`,
//!   `clone3`, `CLONE_NEWNET`): refused, and the refusals are traced;
//! - reaching the supervisor (ptrace, process memory, kcmp, pidfds,
//!   `/proc/PID/mem`) or a host process of the same user, whose socket would take
//!   the program onto the host's network: refused;
//! - using host sockets inherited from the launcher: closed at launch, or with
//!   `--keep-sockets` kept but fenced, every trapped call on them refused;
//! - the SIOC* ioctls: they neither list nor change the host's interfaces (the
//!   changing part runs in a network namespace the test makes, as root);
//! - naming carriers (the abstract `AF_UNIX` names behind virtual sockets)
//!   directly: another stack's, another session's, or a session's from outside it
//!   as another local user, who can neither see, reach nor squat them;
//! - racing netvm's check of an address against the kernel's read of it;
//! - trapped calls made with little stack left: no byte outside netvm's own
//!   mapping may change.
//!
//! Every attack's outcome is printed by a C probe (`tests/probes/escape_*.c`) one
//! line per attempt, and the tests compare exact lines; listeners of the test
//! (on 127.0.0.1, or a victim inside a session) must record nothing. All traffic
//! stays on loopback, inside netvm's virtual networks, or in a network namespace
//! the test makes.

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    Listener, NETVM, Output, Session, TempDir, USERS, User, command_as, compile_probe, is_root,
    netvm_as, path_str, python, run, run_netvm_as, run_netvm_cmd, skip,
};

/// The launch stacks every attack is tried on: no network, and the default smoltcp
/// stack.
const STACKS: [&str; 2] = ["none", "lwip0"];

/// How long a test waits for a file another process writes.
const FILE_WAIT: Duration = Duration::from_secs(20);

/// A temporary directory every user may write in (victims and outsiders running
/// as `nobody` leave files there).
fn shared_dir(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    dir
}

/// Waits until `path` exists, failing (with the session's output) if `session`
/// ends first or the file does not come within [`FILE_WAIT`].
fn await_file(path: &Path, mut session: Session) -> Session {
    let start = Instant::now();
    while !path.exists() {
        if session.has_ended() {
            panic!("the session ended before writing {}\n{}", path.display(), session.finish());
        }
        assert!(start.elapsed() < FILE_WAIT, "no {} within {FILE_WAIT:?}", path.display());
        thread::sleep(Duration::from_millis(10));
    }
    session
}

/// Runs `command` (a netvm session) and fails if it has not ended after `limit`:
/// dropping the session kills netvm, whose tracees die with it.
fn run_within(command: Command, limit: Duration) -> Output {
    let mut session = Session::spawn(command);
    let start = Instant::now();
    while !session.has_ended() {
        assert!(start.elapsed() < limit, "the run did not end within {limit:?}: killed");
        thread::sleep(Duration::from_millis(10));
    }
    session.finish()
}

/// A Python launcher run as `user`: it runs `prelude` (which prepares fds, with
/// `os`, `socket` and `sys` imported), then execs `program ARGS...` in its place,
/// which inherits what the prelude left open.
fn launched(user: User, prelude: &str, program: &str, args: &[&str]) -> Command {
    let script =
        format!("import os, socket, sys\n{prelude}\nos.execv(sys.argv[1], sys.argv[1:])\n");
    let mut command = command_as(user, python());
    command.args(["-c", &script, program]).args(args);
    command
}

/// [`launched`] for `netvm ARGS...`, which sees the built-in configuration, as
/// with [`netvm_as`].
fn launched_netvm(user: User, prelude: &str, args: &[&str]) -> Command {
    let mut command = launched(user, prelude, NETVM, args);
    command
        .env_remove("NETVM_CONFIG")
        .env_remove("NETVM_LOG")
        .env("XDG_CONFIG_HOME", "/nonexistent/netvm-tests");
    command
}

/// Asserts that `output` ended with 0 and printed exactly `expected`.
fn assert_stdout(output: &Output, expected: &str, context: &str) {
    assert_eq!(output.stdout, expected, "{context}: unexpected probe output\n{output}");
    output.assert_code(0);
}

/// A UDP socket of the test on 127.0.0.1, for proving that no datagram came.
struct UdpSink(UdpSocket);

impl UdpSink {
    fn new() -> Self {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind udp 127.0.0.1:0");
        socket.set_nonblocking(true).expect("set_nonblocking");
        Self(socket)
    }

    fn port(&self) -> u16 {
        self.0.local_addr().expect("local_addr").port()
    }

    fn assert_nothing_received(&self) {
        let mut buf = [0u8; 64];
        match self.0.recv_from(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok((_, from)) => panic!("the UDP sink got a datagram from {from}"),
            Err(e) => panic!("recv_from: {e}"),
        }
    }
}

// --- Process creation --------------------------------------------------------

const CLONE_REFUSED: &str = "\
clone_untraced: EPERM
clone_vfork_untraced: EPERM
clone_wrapper_untraced: EPERM
clone3: ENOSYS
clone3_untraced: ENOSYS
unshare_net: EPERM
unshare_user_net: EPERM
clone_newnet: EPERM
clone_newuser_newnet: EPERM
";

/// A child the tracer may not follow (CLONE_UNTRACED, by raw clone, vfork-style
/// clone and glibc's clone), clone3 (whose flags live in memory) and a new network
/// namespace (by unshare or clone, with or without a new user namespace) are
/// refused, and `--trace` shows the refused clone and unshare with EPERM.
#[test]
fn untraced_children_clone3_and_new_network_namespaces_are_refused() {
    let probe = compile_probe("escape_clone");
    for user in USERS {
        for stack in STACKS {
            let out =
                run_netvm_as(user, &["run", "--trace", "--stack", stack, "--", path_str(&probe)]);
            assert_stdout(&out, CLONE_REFUSED, &format!("{user:?} on {stack}"));
            let trace = out.trace();
            for call in ["clone", "unshare"] {
                assert!(
                    trace.iter().any(|l| l.call == call && l.result.starts_with("-1 EPERM")),
                    "{user:?} on {stack}: no `{call}(...) = -1 EPERM` in the trace\n{out}"
                );
            }
        }
    }
}

// --- Other processes ---------------------------------------------------------

/// The launcher's prelude that leaves a pidfd of its own process, which becomes
/// netvm (the supervisor), at fd 7.
const PIDFD_OF_SELF_AT_7: &str = "os.dup2(os.pidfd_open(os.getpid()), 7)";

/// The supervisor (the TracerPid the program sees) cannot be attached, read,
/// written, compared with kcmp, opened as a pidfd, robbed of an fd through a pidfd
/// the program inherited, or have its /proc/PID/mem opened; and the session goes
/// on to end normally.
#[test]
fn the_supervisor_is_out_of_the_programs_reach() {
    let probe = compile_probe("escape_reach");
    for user in USERS {
        for stack in STACKS {
            let args = ["run", "--stack", stack, "--", path_str(&probe), "supervisor", "7"];
            let out = run(launched_netvm(user, PIDFD_OF_SELF_AT_7, &args));
            let context = format!("{user:?} on {stack}");
            // Opening the memory of a process one may not ptrace says EACCES.
            let stdout = out.stdout.replace("open_mem: EPERM", "open_mem: EACCES");
            let expected = "tracer: found\nopen_mem: EACCES\nptrace_attach: EPERM\n\
                ptrace_seize: EPERM\nprocess_vm_readv: EPERM\nprocess_vm_writev: EPERM\n\
                kcmp: EPERM\npidfd_open: EPERM\npidfd_getfd: EPERM\n";
            assert_eq!(stdout, expected, "{context}: the supervisor was reached\n{out}");
            out.assert_code(0);
        }
    }
}

/// A host process of the test's, as `user`: it holds an unconnected TCP socket at
/// fd 5 and prints its pid.
const SOCKET_HOLDER: &str = "import os, socket, time\n\
    s = socket.socket(); os.dup2(s.fileno(), 5)\n\
    print(os.getpid(), flush=True)\n\
    time.sleep(120)\n";

/// A host process of the same user, outside netvm, cannot be attached, read,
/// written, compared, or opened as a pidfd; and the TCP socket it holds cannot be
/// taken with pidfd_getfd (even through a pidfd of it the program inherited), so it
/// cannot carry the program to a listener on the host's 127.0.0.1. Nor by a
/// program that made itself non-dumpable, which closes its `/proc/PID/fdinfo`
/// (where netvm reads whose pidfd it holds) to a supervisor not run by root:
/// with `--filter-only`, where no user namespace separates the program from
/// the host process, netvm's refusal is all that stands in the way.
#[test]
fn a_host_process_of_the_same_user_and_its_socket_are_out_of_reach() {
    let probe = compile_probe("escape_reach");
    let variants = USERS
        .into_iter()
        .flat_map(|user| STACKS.into_iter().map(move |stack| (user, stack, "host")))
        .chain(USERS.into_iter().map(|user| (user, STACKS[1], "host-nondumpable")));
    for (user, stack, mode) in variants {
        let mut holder = command_as(user, python());
        holder.args(["-c", SOCKET_HOLDER]);
        let mut holder = Session::spawn(holder);
        let pid = holder.next_line();
        let listener = Listener::new();
        let port = listener.port().to_string();
        let prelude = format!("os.dup2(os.pidfd_open({pid}), 7)");
        let mut args = vec!["run", "--stack", stack];
        if mode != "host" {
            args.push("--filter-only");
        }
        args.extend(["--", path_str(&probe), mode, &pid, "7", "5", &port]);
        let out = run(launched_netvm(user, &prelude, &args));
        let expected = "ptrace_attach: EPERM\nptrace_seize: EPERM\nprocess_vm_readv: EPERM\n\
            process_vm_writev: EPERM\nkcmp: EPERM\npidfd_open: EPERM\npidfd_getfd: EPERM\n\
            stolen_connect: no socket\n";
        assert_stdout(&out, expected, &format!("{user:?} on {stack}, {mode}"));
        listener.assert_no_connection();
        assert!(!holder.has_ended(), "the host process ended\n{}", holder.finish());
    }
}

// --- Inherited sockets ---------------------------------------------------------

/// The launcher's prelude: a socket as standard input (an AF_UNIX socketpair's
/// end), an unconnected TCP socket at fd 5 and a UDP one at fd 6, all of the host.
/// (`os.dup2` of an fd onto itself does nothing, hence the explicit
/// `set_inheritable`.)
const HOST_SOCKETS_AT_5_AND_6: &str = "a, b = socket.socketpair(); os.dup2(a.fileno(), 0)\n\
    t = socket.socket(); os.dup2(t.fileno(), 5); os.set_inheritable(5, True)\n\
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
    os.dup2(u.fileno(), 6); os.set_inheritable(6, True)";

/// Host sockets the launcher leaves open (fd 3 and up) are closed at launch, while
/// standard input, output and error stay (standard input being a socket too). With
/// `--keep-sockets` they stay, but bind, connect, sendto, sendmsg and sendmmsg on
/// them are refused with EPERM. Either way the test's TCP listener and UDP socket
/// on 127.0.0.1 receive nothing.
#[test]
fn inherited_host_sockets_are_closed_or_fenced() {
    let probe = compile_probe("escape_inherited");
    let std_fds = "fd0: open\nfd1: open\nfd2: open\n";
    for user in USERS {
        // Natively the probe has the sockets (and uses them, on throwaway ports).
        let (listener, sink) = (Listener::new(), UdpSink::new());
        let ports = [listener.port().to_string(), sink.port().to_string()];
        let args = ["5", "6", &ports[0], &ports[1]];
        let native = run(launched(user, HOST_SOCKETS_AT_5_AND_6, path_str(&probe), &args));
        let inherited = format!("{std_fds}fd5: open\nfd6: open\n");
        assert!(native.stdout.starts_with(&inherited), "natively: not inherited\n{native}");
        for stack in STACKS {
            for keep in [false, true] {
                let (listener, sink) = (Listener::new(), UdpSink::new());
                let (tcp, udp) = (listener.port().to_string(), sink.port().to_string());
                let mut args = vec!["run", "--stack", stack];
                if keep {
                    args.push("--keep-sockets");
                }
                args.extend(["--", path_str(&probe), "5", "6", &tcp, &udp]);
                let out = run(launched_netvm(user, HOST_SOCKETS_AT_5_AND_6, &args));
                let expected = if keep {
                    format!(
                        "{std_fds}fd5: open\nfd6: open\ntcp_bind: EPERM\ntcp_connect: EPERM\n\
                         udp_bind: EPERM\nudp_sendto: EPERM\nudp_sendmsg: EPERM\n\
                         udp_sendmmsg: EPERM\n"
                    )
                } else {
                    format!("{std_fds}fd5: EBADF\nfd6: EBADF\n")
                };
                let context = format!("{user:?} on {stack}, keep-sockets {keep}");
                assert_stdout(&out, &expected, &context);
                listener.assert_no_connection();
                sink.assert_nothing_received();
            }
        }
    }
}

// --- Interfaces ----------------------------------------------------------------

/// The `NAME ADDRESS` interfaces a `escape_ifconf list` run printed (both
/// families), `lo` left out.
fn listed_interfaces(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_, entry)| entry.to_owned()))
        .filter(|entry| entry.contains(' ') && !entry.starts_with("lo "))
        .collect()
}

/// SIOCGIFCONF, on an AF_UNIX socket and on an AF_INET one, lists none of the
/// host's interfaces (by name and address, as a native run lists them) but `lo`.
#[test]
fn sioc_ioctls_list_no_host_interface() {
    let probe = compile_probe("escape_ifconf");
    for user in USERS {
        let mut native = command_as(user, &probe);
        native.arg("list");
        let native = run(native);
        native.assert_code(0);
        let host = listed_interfaces(&native.stdout);
        assert!(!host.is_empty(), "the host lists no interface but lo: nothing could leak");
        for stack in STACKS {
            let out =
                run_netvm_as(user, &["run", "--stack", stack, "--", path_str(&probe), "list"]);
            out.assert_code(0);
            let leaked: Vec<_> =
                listed_interfaces(&out.stdout).into_iter().filter(|i| host.contains(i)).collect();
            assert!(leaked.is_empty(), "{user:?} on {stack}: host interfaces {leaked:?}\n{out}");
        }
    }
}

/// As root, in a network namespace the test makes with an interface `nvtest0` (up,
/// MTU 1400, 198.51.100.1/32): inside netvm, SIOCSIFFLAGS clearing IFF_UP and
/// SIOCSIFMTU on `nvtest0` fail through either socket, afterwards it is still up
/// with MTU 1400, and SIOCGIFCONF did not list it.
#[test]
fn sioc_ioctls_cannot_change_an_interface() {
    if !is_root() {
        return skip("needs root to make a network namespace with an interface");
    }
    let probe = compile_probe("escape_ifconf");
    let probe = path_str(&probe);
    for user in USERS {
        for stack in STACKS {
            let as_user = if user == User::Unprivileged {
                "setpriv --reuid=65534 --regid=65534 --clear-groups"
            } else {
                ""
            };
            let netvm = format!("{as_user} '{NETVM}' run --stack {stack} -- '{probe}'");
            let script = format!(
                "(ip link add nvtest0 type dummy 2>/dev/null || ip link add nvtest0 type bridge) \
                 && ip link set nvtest0 mtu 1400 up && ip addr add 198.51.100.1/32 dev nvtest0 \
                 || exit 3\n\
                 {netvm} list; {netvm} set nvtest0\n\
                 ip -o link show nvtest0\n"
            );
            let mut command = command_as(User::Invoker, "unshare");
            command
                .args(["-n", "sh", "-c", &script])
                .env_remove("NETVM_CONFIG")
                .env_remove("NETVM_LOG")
                .env("XDG_CONFIG_HOME", "/nonexistent/netvm-tests");
            let out = run(command);
            let context = format!("{user:?} on {stack}");
            assert_eq!(out.code(), 0, "{context}: cannot set up the namespace\n{out}");
            for family in ["unix", "inet"] {
                for change in ["down", "mtu"] {
                    let ok = format!("{family}_{change}: ok");
                    assert!(!out.stdout.lines().any(|l| l == ok), "{context}: {ok}\n{out}");
                }
            }
            let link = out.stdout.lines().last().unwrap_or_default();
            let flags = link.split_once('<').and_then(|(_, r)| r.split_once('>')).map(|f| f.0);
            assert!(
                flags.is_some_and(|f| f.split(',').any(|f| f == "UP")),
                "{context}: nvtest0 is no longer up: {link}\n{out}"
            );
            assert!(link.contains(" mtu 1400 "), "{context}: nvtest0's MTU changed: {link}\n{out}");
            assert!(
                !listed_interfaces(&out.stdout).iter().any(|i| i.starts_with("nvtest0 ")),
                "{context}: SIOCGIFCONF lists the namespace's nvtest0\n{out}"
            );
        }
    }
}

// --- Carriers ------------------------------------------------------------------

/// The victim, run on stack `lwip1` (10.0.0.3): a TCP listener on :7777 and a UDP
/// socket on :7778. It finds its carriers' abstract names in its own
/// /proc/net/unix (by the sockets' inodes) and writes them, in hex, to DIR/names;
/// then it counts every connection and datagram that reaches either socket until
/// DIR/done exists, and prints "victim: connections=N datagrams=M". Once DIR/phase2
/// exists it also binds a new TCP listener and UDP socket (:7780, :7781), talks to
/// each from a new client of its stack, and prints "phase2: ok" (or what failed).
const VICTIM: &str = r#"
import os, select, socket, sys
d, addr = sys.argv[1], sys.argv[2]
tcp = socket.socket(); tcp.bind((addr, 7777)); tcp.listen(64)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind((addr, 7778))
inodes = [os.fstat(s.fileno()).st_ino for s in (tcp, udp)]
names = {}
for line in open("/proc/net/unix", "rb").read().split(b"\n")[1:]:
    f = line.split()
    if len(f) >= 8 and int(f[6]) in inodes:
        names[int(f[6])] = f[7][1:]
with open(os.path.join(d, "names.tmp"), "w") as out:
    out.write("".join(names[i].hex() + "\n" for i in inodes))
os.rename(os.path.join(d, "names.tmp"), os.path.join(d, "names"))

def phase2():
    try:
        l = socket.socket(); l.bind((addr, 7780)); l.listen(8)
        c = socket.create_connection((addr, 7780), timeout=5); s = l.accept()[0]
        c.sendall(b"hi"); assert s.recv(2) == b"hi", "no TCP data"
        u1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u1.bind((addr, 7781))
        u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u2.sendto(b"yo", (addr, 7781))
        u1.settimeout(5); assert u1.recv(2) == b"yo", "no UDP data"
        print("phase2: ok", flush=True)
    except Exception as e:
        print("phase2:", type(e).__name__, e, flush=True)

conns = dgrams = 0
phase2_done = False
while not os.path.exists(os.path.join(d, "done")):
    if not phase2_done and os.path.exists(os.path.join(d, "phase2")):
        phase2(); phase2_done = True
    ready = select.select([tcp, udp], [], [], 0.02)[0]
    if tcp in ready:
        conns += 1
        try: tcp.accept()[0].close()
        except OSError: pass
    if udp in ready:
        dgrams += 1
        try: udp.recvfrom(64)
        except OSError: pass
print(f"victim: connections={conns} datagrams={dgrams}", flush=True)
"#;

/// What the victim prints when nothing reached it.
const UNTOUCHED: &str = "victim: connections=0 datagrams=0";

/// A shared directory holding the victim's script, `victim.py`.
fn victim_dir(tag: &str) -> (TempDir, PathBuf) {
    let dir = shared_dir(tag);
    let script = dir.write("victim.py", VICTIM.as_bytes(), 0o644);
    (dir, script)
}

/// A session of its own around the victim, as `user`, on `lwip1`; returned once
/// the victim has written its names.
fn victim_session(user: User, dir: &Path, victim: &Path) -> Session {
    let (victim, d) = (path_str(victim), path_str(dir));
    let args = ["run", "--stack", "lwip1", "--", python(), victim, d, "10.0.0.3"];
    await_file(&dir.join("names"), Session::spawn(netvm_as(user, &args)))
}

/// `sh -c SCRIPT` as a command line.
fn sh(script: String) -> [String; 3] {
    ["sh".into(), "-c".into(), script]
}

/// A session script: the victim on `lwip1` in the background, `attack` once its
/// names are in DIR/names, then the victim's end.
fn victim_script(dir: &Path, victim: &Path, attack: &str) -> String {
    let (d, py) = (dir.display(), python());
    format!(
        "'{NETVM}' stack lwip1 -- {py} '{victim}' '{d}' 10.0.0.3 &\n\
         i=0; until [ -e '{d}/names' ]; do\n\
         i=$((i+1)); [ $i -lt 1000 ] || {{ echo 'no victim names' >&2; exit 3; }}; sleep 0.02\n\
         done\n\
         {attack}\n\
         touch '{d}/done'; wait\n",
        victim = victim.display()
    )
}

/// A program's own AF_UNIX sockets that name another stack's carriers (read from
/// /proc/net/unix inside the session) are refused: connect, sendto, sendmsg and
/// sendmmsg with ECONNREFUSED, bind with EADDRINUSE; and the victim on `lwip1`
/// records nothing.
#[test]
fn a_native_unix_socket_cannot_name_another_stacks_carrier() {
    let probe = compile_probe("escape_carrier");
    for user in USERS {
        for stack in STACKS {
            let (dir, victim) = victim_dir("carrier");
            let names = dir.path().join("names");
            let attack = format!("'{}' '{}' bind", path_str(&probe), names.display());
            let script = victim_script(dir.path(), &victim, &attack);
            let out = run_netvm_cmd(user, &["run", "--stack", stack], &sh(script));
            let expected = format!(
                "stream_connect: ECONNREFUSED\ndgram_connect: ECONNREFUSED\n\
                 dgram_sendto: ECONNREFUSED\ndgram_sendmsg: ECONNREFUSED\n\
                 dgram_sendmmsg: ECONNREFUSED\nstream_bind: EADDRINUSE\ndgram_bind: EADDRINUSE\n\
                 {UNTOUCHED}\n"
            );
            assert_stdout(&out, &expected, &format!("{user:?} on {stack}"));
        }
    }
}

/// A program in one session that names the carriers of another session running at
/// the same time (handed over in a file) reaches nothing: every attempt is refused
/// and the other session's victim records nothing.
#[test]
fn a_session_cannot_reach_another_sessions_carriers() {
    let probe = compile_probe("escape_carrier");
    for user in USERS {
        for stack in STACKS {
            let (dir, victim) = victim_dir("other-session");
            let names = dir.path().join("names");
            let session_b = victim_session(user, dir.path(), &victim);
            let out = run_netvm_as(
                user,
                &["run", "--stack", stack, "--", path_str(&probe), path_str(&names)],
            );
            std::fs::write(dir.path().join("done"), "").expect("touch done");
            let b = session_b.finish();
            let context = format!("{user:?} on {stack}");
            let expected = "stream_connect: ECONNREFUSED\ndgram_connect: ECONNREFUSED\n\
                dgram_sendto: ECONNREFUSED\ndgram_sendmsg: ECONNREFUSED\n\
                dgram_sendmmsg: ECONNREFUSED\n";
            assert_stdout(&out, expected, &context);
            assert_stdout(&b, &format!("{UNTOUCHED}\n"), &format!("{context}: session B"));
        }
    }
}

/// The outsider: a host process outside every session. It reads a session's
/// carrier names from DIR/names and prints whether the host's /proc/net/unix lists
/// any ("listed: yes|no"), tries a stream connect and a datagram sendto to them,
/// binds (squats) the next 64 names of the victim's stack in both socket types
/// ("squatted: N"), and holds them until DIR/done exists.
const OUTSIDER: &str = r#"
import errno, os, socket, sys, time
d = sys.argv[1]
names = [bytes.fromhex(l) for l in open(os.path.join(d, "names")).read().split()]
table = open("/proc/net/unix", "rb").read()
print("listed:", "yes" if any(b"@" + n in table for n in names) else "no")
def attempt(what, call):
    try:
        call(); print(what + ": ok")
    except OSError as e:
        print(what + ":", errno.errorcode[e.errno])
attempt("stream_connect", lambda: socket.socket(socket.AF_UNIX).connect(b"\0" + names[0]))
attempt("dgram_sendto", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        .sendto(b"x", socket.MSG_DONTWAIT, b"\0" + names[1]))
alphabet = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"
def counter(name):
    n = 0
    for c in name[7:]: n = n * 64 + alphabet.index(c)
    return n
def name(n):
    digits = bytearray()
    for _ in range(6): digits.insert(0, alphabet[n % 64]); n //= 64
    return names[0][:7] + bytes(digits)
held = []
first = max(counter(n) for n in names) + 1
for n in range(first, first + 64):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_UNIX, kind)
        try:
            s.bind(b"\0" + name(n)); held.append(s)
        except OSError:
            s.close()
print("squatted:", len(held), flush=True)
while not os.path.exists(os.path.join(d, "done")): time.sleep(0.02)
"#;

/// As root: `nobody`, outside every session, does not find a session's carrier
/// names in the host's /proc/net/unix, gets ECONNREFUSED naming them (read inside
/// the session), and squatting the names the session would hand out next does not
/// keep its later binds, connections and datagrams from working; the session's
/// victim records nothing.
#[test]
fn another_local_user_cannot_see_reach_or_squat_a_sessions_carriers() {
    if !is_root() {
        return skip("needs root to run the outsider as another user");
    }
    for user in USERS {
        let (dir, victim) = victim_dir("outsider");
        let d = path_str(dir.path());
        let outsider_py = dir.write("outsider.py", OUTSIDER.as_bytes(), 0o644);
        let mut session = victim_session(user, dir.path(), &victim);
        let mut outsider = command_as(User::Unprivileged, python());
        outsider.args([path_str(&outsider_py), d]);
        let mut outsider = Session::spawn(outsider);
        let seen: Vec<String> = (0..4).map(|_| outsider.next_line()).collect();
        std::fs::write(dir.path().join("phase2"), "").expect("touch phase2");
        let phase2 = session.next_line();
        std::fs::write(dir.path().join("done"), "").expect("touch done");
        let (session, outsider) = (session.finish(), outsider.finish());
        let context = format!("a session of {user:?}");
        let refused = ["stream_connect: ECONNREFUSED", "dgram_sendto: ECONNREFUSED"];
        let expected = [&["listed: no"][..], &refused, &["squatted: 128"]].concat();
        assert_eq!(seen, expected, "{context}: the outsider saw or reached it\n{outsider}");
        assert_eq!(phase2, "phase2: ok", "{context}: squatted names broke it\n{session}");
        // The session's standard output holds the line read above, then the victim's.
        assert_stdout(&session, &format!("{phase2}\n{UNTOUCHED}\n"), &context);
    }
}

/// One line of `escape_race`: "PHASE: swaps=S calls=N reached=R" as (S, N, R).
fn race_counts(line: &str, phase: &str) -> Option<(u64, u64, u64)> {
    let rest = line.strip_prefix(phase)?.strip_prefix(": ")?;
    let mut numbers = rest.split(' ').map(|f| f.split_once('=').and_then(|(_, n)| n.parse().ok()));
    Some((numbers.next()??, numbers.next()??, numbers.next()??))
}

/// "A stress run of the connect/sendto address race (two threads, 100,000 swaps)
/// never reaches another stack or session": one thread calls connect, then sendto,
/// on a native AF_UNIX socket while another flips the address buffer between a
/// harmless name and the carrier of another stack's UDP socket. Nothing gets
/// through, and the victim records nothing.
#[test]
fn the_address_race_never_reaches_another_stack() {
    let probe = compile_probe("escape_race");
    for user in USERS {
        let (dir, victim) = victim_dir("race");
        let names = dir.path().join("names");
        let attack = format!("'{}' '{}'", path_str(&probe), names.display());
        let script = victim_script(dir.path(), &victim, &attack);
        let out = run_netvm_cmd(user, &["run"], &sh(script));
        out.assert_code(0);
        let lines: Vec<&str> = out.stdout.lines().collect();
        for (line, phase) in lines.iter().zip(["connect", "sendto"]) {
            let (swaps, calls, reached) = race_counts(line, phase)
                .unwrap_or_else(|| panic!("{user:?}: no {phase} counts\n{out}"));
            assert!(swaps > 0 && calls >= 100, "{user:?}: the {phase} race hardly ran\n{out}");
            assert_eq!(
                reached, 0,
                "{user:?}: {phase} reached the other stack {reached} times\n{out}"
            );
        }
        assert_eq!(lines.get(2), Some(&UNTOUCHED), "{user:?}: the victim was reached\n{out}");
    }
}

/// A session with an `echo` stack `e` and a smoltcp stack `s`.
const ECHO_AND_SMOLTCP: &str = "[vunet]\ndefault = \"e\"\n\
    [[vunet.stack]]\nname = \"e\"\nkind = \"echo\"\n\
    [[vunet.stack]]\nname = \"s\"\nkind = \"smoltcp\"\naddresses = [\"10.0.0.2/24\"]\n";

/// "A stack claims only the socket its call made": while one thread makes TCP
/// sockets, another puts a kept host UDP socket at the number the next one gets
/// (`dup2`). Had a stack claimed the host socket as its own, calls on it would
/// skip the fence every host socket gets: on the `echo` stack, which leaves
/// sends to the kernel, a datagram reached the test's UDP socket on the host.
/// Each swap is seen, and nothing is sent. The probe runs until it has won the
/// race a few times (a slow machine may need many thousand sockets).
#[test]
fn a_stack_claims_only_the_socket_its_call_made() {
    let probe = compile_probe("escape_claim_race");
    let dir = TempDir::new("claim-race");
    let config = dir.write("modules.toml", ECHO_AND_SMOLTCP.as_bytes(), 0o644);
    for user in USERS {
        for stack in ["e", "s"] {
            let sink = UdpSink::new();
            let port = sink.port().to_string();
            let args = [
                "run",
                "--config",
                path_str(&config),
                "--stack",
                stack,
                "--keep-sockets",
                "--",
                path_str(&probe),
                "6",
                &port,
                "200000",
            ];
            let out = run(launched_netvm(user, HOST_SOCKETS_AT_5_AND_6, &args));
            let context = format!("{user:?} on {stack}");
            assert_stdout(&out, "swapped: 1\nsent: 0\n", &context);
            sink.assert_nothing_received();
        }
    }
}

/// "What a netlink sendmsg sends to is what netvm checked": while one thread sends
/// on a netlink socket with no name, another flips the header's name to an
/// `AF_UNIX` socket of the program's. The netlink socket's carrier is an
/// `AF_UNIX` socket: had the kernel read the program's header, some datagrams
/// would have gone there (a stand-in for another stack's carrier). None do.
#[test]
fn a_netlink_send_goes_where_netvm_checked() {
    let probe = compile_probe("escape_netlink_race");
    for user in USERS {
        let out = run(netvm_as(user, &["run", "--", path_str(&probe), "5000"]));
        assert_stdout(&out, "reached: 0\n", &format!("{user:?}"));
    }
}

// --- Small stacks ----------------------------------------------------------------

/// A transcript with the `sendmmsg` counts left out (see
/// [`calls_with_little_stack_left_behave_as_natively`]).
fn without_send_counts(transcript: &str) -> String {
    transcript.lines().filter(|l| !l.contains(" sendmmsg: ")).map(|l| format!("{l}\n")).collect()
}

/// "Calls with little stack left (a thread with a 16 KiB stack, a signal handler on
/// a small sigaltstack) behave exactly as natively, for every trapped call,
/// including the mmsg calls with 1024 entries; no byte outside netvm's own mapping
/// changes": on `lwip0` the probe's transcript (results, addresses reported, and
/// the canaries below both stacks) equals the native one, whose canaries are
/// intact, but for one carrier difference: a datagram carrier whose receiver is
/// full pushes back on the sender (its 1024-message `sendmmsg` stops short)
/// where UDP drops what the receiver has no room for.
#[test]
fn calls_with_little_stack_left_behave_as_natively() {
    let probe = compile_probe("escape_smallstack");
    for user in USERS {
        let native = run(command_as(user, &probe));
        native.assert_code(0);
        for context in ["thread", "handler"] {
            let intact = format!("{context} canary: intact");
            assert!(
                native.stdout.lines().any(|l| l == intact),
                "natively: no {intact:?}\n{native}"
            );
        }
        let out = run_within(
            netvm_as(user, &["run", "--stack", "lwip0", "--", path_str(&probe)]),
            Duration::from_secs(20),
        );
        assert_eq!(
            without_send_counts(&out.stdout),
            without_send_counts(&native.stdout),
            "{user:?}: differs from the native run\n{out}"
        );
        for context in ["thread", "handler"] {
            let sent = out
                .stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{context} sendmmsg: ")))
                .and_then(|n| n.parse::<u32>().ok());
            assert!(sent.is_some_and(|n| n > 16), "{user:?} {context}: sendmmsg {sent:?}\n{out}");
        }
        out.assert_code(0);
    }
}
