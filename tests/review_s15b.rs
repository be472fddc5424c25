//! Review of ea74083 and 9c6e400: a non-dumpable program's fds resolved through a
//! `pidfd_getfd` copy (`FdTable::resolve`), a dial's owner whose fds cannot be
//! listed taken to hold them (`smoltcp/proc.rs`), the boundary's `setns` and
//! `pidfd_getfd` judged from the supervisor's own copy (`modules/boundary.rs`),
//! and kept pidfds capped by the descriptor limit (`tracer/fds.rs`), attacked as
//! a hostile program and a careless user would.
//!
//! `FOUND:` tests fail on the code reviewed (each says what Linux does and what
//! netvm did); `GUARD:` tests hold and would fail if the property they check
//! broke.

mod common;

use common::{
    NETVM, NON_DUMPABLE_PRELUDE, Output, SOCKET_CALLS, USERS, User, python, run, run_netvm_cmd,
};

/// Runs a Python program under netvm (built-in configuration) with `netvm_args`
/// before `--`, as `user`.
fn netvm_python(user: User, netvm_args: &[&str], program: &str, args: &[&str]) -> Output {
    let mut cmd: Vec<String> = vec![python().into(), "-c".into(), program.into()];
    cmd.extend(args.iter().map(|a| (*a).to_owned()));
    run_netvm_cmd(user, netvm_args, &cmd)
}

/// Runs a Python program natively as `user`.
fn native_python(user: User, program: &str, args: &[&str]) -> Output {
    let mut command = common::command_as(user, python());
    command.args(["-c", program]).args(args);
    run(command)
}

/// Runs a Python program under netvm as `user` with the supervisor's (and the
/// program's) descriptor limit set to `limit`.
fn netvm_python_with_limit(user: User, limit: u32, program: &str, arg: &str) -> Output {
    let mut command = common::command_as(user, "sh");
    let outer = format!("ulimit -n {limit}; exec '{NETVM}' run -- {} -c \"$0\" \"$1\"", python());
    command.args(["-c", &outer, program, arg]).env_remove("NETVM_CONFIG");
    run(command)
}

/// socketpair(AF_INET), with room and with a full descriptor table.
const SOCKETPAIR: &str = r#"
run("socketpair inet", lambda: socket.socketpair(socket.AF_INET, socket.SOCK_STREAM) and None)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
held = []
try:
    while True: held.append(os.open("/dev/null", os.O_RDONLY))
except OSError: pass
run("full table socketpair inet", lambda: socket.socketpair(socket.AF_INET) and None)
run("full table socketpair unix", lambda: socket.socketpair() and None)
"#;

/// FOUND: `socketpair(AF_INET)` in a non-dumpable program run by an unprivileged
/// user. Linux (and netvm for the dumpable program): EOPNOTSUPP, and EMFILE with
/// a full table. netvm: ESRCH both times: `smoltcp/create.rs` asks
/// `fdtable::lowest_free`, which lists `/proc/TID/fd` (EACCES for a
/// non-dumpable process; no fallback as in `FdTable::resolve`) and maps every
/// error to ESRCH.
#[test]
fn found_a_non_dumpable_programs_socketpair_says_esrch() {
    let program = format!("{NON_DUMPABLE_PRELUDE}{SOCKETPAIR}");
    let expected = "socketpair inet ENOTSUP\nfull table socketpair inet EMFILE\n\
                    full table socketpair unix EMFILE\n";
    for dumpable in ["0", "1"] {
        let output = netvm_python(User::Unprivileged, &["run"], &program, &[dumpable]);
        output.assert_code(0);
        assert_eq!(output.stdout, expected, "non-dumpable: {dumpable}\n{output}");
    }
}

/// Sockets of every kind, dups and closes, in a non-dumpable program.
const KINDS: &str = r#"
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
run("udp bind", lambda: u.bind(("127.0.0.1", 7002)))
v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
run("udp sendto", lambda: v.sendto(b"x", ("127.0.0.1", 7002)))
run("udp recvfrom", lambda: u.recvfrom(10)[0])
d = os.dup(u.fileno())
run("dup getsockname", lambda: socket.socket(fileno=d).getsockname())
run("close", lambda: u.close())
run("closed fd getsockname", lambda: socket.socket(fileno=u.fileno() if u.fileno() >= 0 else 99).getsockname())
run("not a socket", lambda: socket.socket(fileno=os.open("/dev/null", os.O_RDONLY)) and None)
n = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
run("netlink bind", lambda: n.bind((0, 0)))
run("if_nametoindex", lambda: socket.if_nametoindex("eth0"))
run("unix socketpair", lambda: socket.socketpair() and None)
l = socket.socket(); l.bind(("127.0.0.1", 7000)); l.listen(4)
c = socket.create_connection(("127.0.0.1", 7000), timeout=5)
a, peer = l.accept()
c.sendall(b"hi")
run("tcp echo", lambda: (a.recv(2), peer == c.getsockname()))
child = subprocess.Popen([sys.executable, "-c", "import socket, os, time\ns = socket.socket(); os.dup2(s.fileno(), 5)\nprint('r', flush=True)\ntime.sleep(30)"], stdout=subprocess.PIPE)
child.stdout.readline()
pidfd = os.pidfd_open(child.pid)
r = libc.syscall(438, pidfd, 5, 0)
raw("pidfd_getfd of a child", min(r, 0))
if r >= 0:
    run("bind the child's socket", lambda: socket.socket(fileno=r).bind(("127.0.0.1", 0)))
raw("pidfd_getfd closed fd", libc.syscall(438, pidfd, 99, 0))
raw("pidfd_getfd not a pidfd", libc.syscall(438, 1, 5, 0))
raw("pidfd_getfd no fd", libc.syscall(438, 99, 5, 0))
child.kill(); child.wait()
"#;

/// GUARD: a non-dumpable program run by an unprivileged user (no
/// `--filter-only`) uses UDP, TCP, dups, netlink, ioctls and `pidfd_getfd` on a
/// child of its own as the same program left dumpable does (and as Linux).
#[test]
fn guard_a_non_dumpable_program_uses_sockets_of_every_kind() {
    let program = format!("{NON_DUMPABLE_PRELUDE}{KINDS}");
    let dumpable = netvm_python(User::Unprivileged, &["run"], &program, &["0"]);
    dumpable.assert_code(0);
    assert!(
        dumpable.stdout.contains("tcp echo (b'hi', True)\npidfd_getfd of a child 0\n")
            && dumpable.stdout.contains("bind the child's socket ok\n")
            && dumpable.stdout.contains("pidfd_getfd closed fd EBADF\n"),
        "{dumpable}"
    );
    let non_dumpable = netvm_python(User::Unprivileged, &["run"], &program, &["1"]);
    non_dumpable.assert_code(0);
    assert_eq!(
        non_dumpable.stdout, dumpable.stdout,
        "--- dumpable\n{dumpable}\n--- non-dumpable\n{non_dumpable}"
    );
}

/// FOUND: with `--filter-only`, a non-dumpable program run by an unprivileged
/// user cannot use its sockets. Linux (and netvm for the dumpable program): bind,
/// listen, connect, accept ok, EINPROGRESS. netvm: bind EPERM, listen EINVAL,
/// connects EPERM, accept EINVAL (and "tampered with its sealed window"): with no
/// user namespace the supervisor has no CAP_SYS_PTRACE, so the fallback of
/// ea74083 (`FdTable::resolve`'s `stop.copy_fd`, a `pidfd_getfd`) is refused
/// like the `/proc` read, as is `process_vm_readv` of the window.
#[test]
#[ignore = "netvm differs (man netvm LIMITATIONS): under --filter-only, a non-dumpable program of a user other than root cannot use virtual sockets: the supervisor may neither copy its fds nor read its memory"]
fn found_filter_only_a_non_dumpable_program_cannot_use_its_sockets() {
    let program = format!("{NON_DUMPABLE_PRELUDE}{SOCKET_CALLS}");
    let expected = "bind ok\nlisten ok\nnon-blocking connect to a closed port EINPROGRESS\n\
                    connect ok\naccept ok\n";
    for dumpable in ["0", "1"] {
        let args = ["run", "--filter-only"];
        let output = netvm_python(User::Unprivileged, &args, &program, &[dumpable]);
        output.assert_code(0);
        assert_eq!(output.stdout, expected, "non-dumpable: {dumpable}\n{output}");
    }
}

/// `pidfd_getfd` on a child's pidfd and on bad descriptors, and `setns` on bad
/// descriptors.
const PIDFD_GETFD: &str = r#"
child = subprocess.Popen([sys.executable, "-c", "import socket, os, time\ns = socket.socket(); os.dup2(s.fileno(), 5)\nprint('r', flush=True)\ntime.sleep(30)"], stdout=subprocess.PIPE)
child.stdout.readline()
pidfd = os.pidfd_open(child.pid)
raw("pidfd_getfd of a child", min(libc.syscall(438, pidfd, 5, 0), 0))
raw("pidfd_getfd closed fd", libc.syscall(438, pidfd, 99, 0))
raw("pidfd_getfd not a pidfd", libc.syscall(438, 1, 5, 0))
raw("pidfd_getfd no fd", libc.syscall(438, 99, 5, 0))
raw("setns no fd", libc.setns(99, 0))
raw("setns regular file", libc.setns(os.open("/etc/hostname", os.O_RDONLY), 0))
child.kill(); child.wait()
"#;

/// FOUND: with `--filter-only`, a non-dumpable program run by an unprivileged
/// user may not take an fd from its own child, and bad descriptors say EPERM.
/// Linux (and netvm without `--filter-only`, or for the dumpable program):
/// `pidfd_getfd` of the child ok, EBADF for a closed fd, a non-pidfd and no fd;
/// `setns` EBADF and EINVAL. netvm: EPERM for all six: `boundary.rs`'s
/// `read_proc` falls back to `stop.copy_fd`, which the supervisor (no
/// CAP_SYS_PTRACE without a user namespace) is refused too, and any error but
/// EBADF/ENOENT is refused; even an fd number that is not open is judged so,
/// since `/proc/TID/fdinfo/N` says EACCES before ENOENT.
#[test]
#[ignore = "netvm differs (man netvm LIMITATIONS): under --filter-only, a non-dumpable program of a user other than root gets EPERM from pidfd_getfd and setns, whose targets the supervisor may not look at"]
fn found_filter_only_a_non_dumpable_program_cannot_take_its_childs_fd() {
    pidfd_getfd_and_setns_as_on_linux(&[(&["run", "--filter-only"], "1")]);
}

/// GUARD: `pidfd_getfd` and `setns` as on Linux (see the test above) for a
/// program run by an unprivileged user, dumpable or not, and with
/// `--filter-only` when dumpable.
#[test]
fn guard_pidfd_getfd_and_setns_of_a_non_dumpable_program() {
    pidfd_getfd_and_setns_as_on_linux(&[
        (&["run"], "0"),
        (&["run"], "1"),
        (&["run", "--filter-only"], "0"),
    ]);
}

/// Runs [`PIDFD_GETFD`] natively and under netvm with each of `runs` (netvm's
/// arguments, and "1" to make the program non-dumpable), and requires Linux's
/// answers.
fn pidfd_getfd_and_setns_as_on_linux(runs: &[(&[&str], &str)]) {
    let program = format!("{NON_DUMPABLE_PRELUDE}{PIDFD_GETFD}");
    let expected = "pidfd_getfd of a child 0\npidfd_getfd closed fd EBADF\n\
                    pidfd_getfd not a pidfd EBADF\npidfd_getfd no fd EBADF\n\
                    setns no fd EBADF\nsetns regular file EINVAL\n";
    let native = native_python(User::Unprivileged, &program, &["1"]);
    native.assert_code(0);
    assert_eq!(native.stdout, expected, "natively\n{native}");
    for &(mode, dumpable) in runs {
        let output = netvm_python(User::Unprivileged, mode, &program, &[dumpable]);
        output.assert_code(0);
        assert_eq!(output.stdout, expected, "{mode:?}, non-dumpable: {dumpable}\n{output}");
    }
}

/// Runs the netvm command line of its arguments with a pidfd of a host process
/// (which holds a TCP socket at fd 5) at fd 7.
const WITH_OUTSIDE_PIDFD: &str = r#"
import os, subprocess, sys
holder = subprocess.Popen([sys.executable, "-c", "import socket, os, time\ns = socket.socket(); os.dup2(s.fileno(), 5)\nprint('r', flush=True)\ntime.sleep(60)"], stdout=subprocess.PIPE)
holder.stdout.readline()
os.dup2(os.pidfd_open(holder.pid), 7)
subprocess.run(sys.argv[1:], pass_fds=(7,))
holder.kill()
"#;

/// Takes fd 5 of the process whose pidfd is fd 7, after making itself
/// non-dumpable.
const TAKE_OUTSIDE: &str = r#"
raw("pidfd_getfd of a host process", libc.syscall(438, 7, 5, 0))
raw("setns to a host process", libc.setns(7, 0x40000000))
"#;

/// GUARD: a non-dumpable program, with or without `--filter-only`, as root and
/// as an unprivileged user, holding an inherited pidfd of a host process of the
/// same user, can neither take that process's socket nor join its namespaces:
/// EPERM for both.
#[test]
fn guard_a_non_dumpable_program_cannot_reach_a_host_process() {
    let program = format!("{NON_DUMPABLE_PRELUDE}{TAKE_OUTSIDE}");
    for user in USERS {
        for filter_only in [false, true] {
            let mut command = common::command_as(user, python());
            command.args(["-c", WITH_OUTSIDE_PIDFD, NETVM, "run"]);
            if filter_only {
                command.arg("--filter-only");
            }
            command.args(["--", python(), "-c", &program, "1"]).env_remove("NETVM_CONFIG");
            let output = run(command);
            output.assert_code(0);
            assert_eq!(
                output.stdout,
                "pidfd_getfd of a host process EPERM\nsetns to a host process EPERM\n",
                "{user:?}, filter-only {filter_only}\n{output}"
            );
        }
    }
}

/// Non-blocking connects to a silent address of the network (nobody answers its
/// ARP), each closed at once.
const CLOSED_CONNECTS: &str = r#"
import collections, ctypes, errno, socket, sys
if sys.argv[1] == "1":
    assert ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0) == 0
res = collections.Counter()
for i in range(300):
    c = socket.socket(); c.setblocking(False)
    res[errno.errorcode.get(c.connect_ex(("10.0.0.99", 80)), "ok")] += 1
    c.close()
print(sorted(res.items()))
"#;

/// FOUND: a non-dumpable program run by an unprivileged user that starts and
/// closes non-blocking connects runs out of its share of the supervisor's
/// descriptors. Linux (and netvm for the dumpable program): 300 times
/// EINPROGRESS. netvm (limit 512, a share of 112): 112 EINPROGRESS, then
/// ENOBUFS: `smoltcp/proc.rs` `holds_socket` says a process whose
/// `/proc/PID/fd` is EACCES holds every socket, so
/// `net.rs::drop_abandoned_dials` never frees the closed connects' descriptors
/// (nor does the SYN retry end them: they live until the program ends or the
/// retries run out).
#[test]
#[ignore = "netvm differs (man netvm LIMITATIONS): a non-dumpable program's closed non-blocking connects to a host that never answers keep its descriptors until their SYN retries end"]
fn found_closed_connects_of_a_non_dumpable_program_spend_its_share() {
    for dumpable in ["0", "1"] {
        let output = netvm_python_with_limit(User::Unprivileged, 512, CLOSED_CONNECTS, dumpable);
        output.assert_code(0);
        assert_eq!(output.stdout, "[('EINPROGRESS', 300)]\n", "non-dumpable: {dumpable}\n{output}");
    }
}

/// Connections, echoes and datagrams while another thread toggles the
/// process's dumpability as fast as it can.
const TOGGLING: &str = r#"
import ctypes, errno, socket, threading
libc = ctypes.CDLL(None, use_errno=True)
stop = threading.Event()
def toggle():
    while not stop.is_set():
        libc.prctl(4, 0, 0, 0, 0); libc.prctl(4, 1, 0, 0, 0)
t = threading.Thread(target=toggle); t.start()
errs = {}
l = socket.socket(); l.bind(("127.0.0.1", 7000)); l.listen(64)
ok = 0
for i in range(300):
    try:
        c = socket.create_connection(("127.0.0.1", 7000), timeout=5)
        a, peer = l.accept()
        c.sendall(b"hi"); assert a.recv(2) == b"hi"
        assert peer == c.getsockname() and a.getpeername() == c.getsockname()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
        u.sendto(b"x", u.getsockname()); assert u.recv(1) == b"x"
        c.close(); a.close(); u.close()
        ok += 1
    except OSError as e:
        k = errno.errorcode.get(e.errno, e.errno); errs[k] = errs.get(k, 0) + 1
stop.set(); t.join()
print("ok", ok, "errors", errs)
"#;

/// GUARD: a program run by an unprivileged user whose dumpability another thread
/// toggles during its calls (each `/proc` read may be refused or not, and the
/// copy made either way) connects, accepts, echoes and sends datagrams 300 times
/// without an error.
#[test]
fn guard_dumpability_toggled_during_calls() {
    let output = netvm_python(User::Unprivileged, &["run"], TOGGLING, &[]);
    output.assert_code(0);
    assert_eq!(output.stdout, "ok 300 errors {}\n", "{output}");
}

/// `setns` on descriptors that are no namespace, and `pidfd_getfd` through a
/// pidfd of a child that has ended and been reaped.
const ODD_TARGETS: &str = r#"
raw("setns pipe", libc.setns(os.pipe()[0], 0))
unix = socket.socket(socket.AF_UNIX)
raw("setns socket", libc.setns(unix.fileno(), 0))
child = subprocess.Popen([sys.executable, "-c", "pass"])
pidfd = os.pidfd_open(child.pid)
child.wait()
raw("pidfd_getfd of a reaped child", libc.syscall(438, pidfd, 0, 0))
"#;

/// FOUND (older than these commits): `setns` on a pipe or a socket, and
/// `pidfd_getfd` through the pidfd of a reaped child, dumpable or not, with or
/// without `--filter-only`. Linux: EINVAL, EINVAL, ESRCH. netvm: EPERM for all
/// three: `boundary.rs` `answer_setns` takes any `KIND:[N]` link (`pipe:[..]`,
/// `socket:[..]`) for a namespace of a kind no session process has joined, and
/// `pidfd_target` reads `Pid: -1` from the dead process's pidfd, which
/// `is_inside` rejects.
#[test]
fn found_setns_on_a_pipe_and_pidfd_getfd_of_a_reaped_child_say_eperm() {
    let program = format!("{NON_DUMPABLE_PRELUDE}{ODD_TARGETS}");
    let expected = "setns pipe EINVAL\nsetns socket EINVAL\npidfd_getfd of a reaped child ESRCH\n";
    let native = native_python(User::Unprivileged, &program, &["0"]);
    native.assert_code(0);
    assert_eq!(native.stdout, expected, "natively\n{native}");
    let output = netvm_python(User::Unprivileged, &["run"], &program, &["0"]);
    output.assert_code(0);
    assert_eq!(output.stdout, expected, "{output}");
}
