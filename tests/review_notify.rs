//! Review of socket() and socketpair() delivered as seccomp user notifications
//! (the supervisor makes the carrier and gives it with
//! `SECCOMP_IOCTL_NOTIF_ADDFD`), attacked as a hostile program and a careless
//! user would, against Linux.
//!
//! `FOUND:` tests failed on the code reviewed, each until its fix (each says what
//! Linux does and what netvm did); those marked "pre-existing" failed on the
//! parent commit too (and under `--trace`). `GUARD:` tests held from the start
//! and would fail if the property they check broke. One FOUND race is left,
//! ignored with its reason (man/netvm.1 LIMITATIONS).

mod common;

use std::time::{Duration, Instant};

use common::{Output, Session, User, compile_probe, is_root, netvm_as, path_str, run, skip};

/// The probe, `tests/probes/review_notify_probe.c`.
fn probe() -> String {
    path_str(&compile_probe("review_notify_probe")).to_owned()
}

/// Runs the probe natively as `user`.
fn native(user: User, args: &[&str]) -> Output {
    let mut command = common::command_as(user, probe());
    command.args(args);
    run(command)
}

/// Runs the probe under netvm (`extra` options, such as `--trace=/dev/null`) as `user`.
fn netvm(user: User, extra: &[&str], args: &[&str]) -> Output {
    let probe = probe();
    let mut cmd = vec!["run", "--stack", "lwip0"];
    cmd.extend_from_slice(extra);
    cmd.push("--");
    cmd.push(&probe);
    cmd.extend_from_slice(args);
    run(netvm_as(user, &cmd))
}

/// The output's lines that start with one of `keys`.
fn lines_of(out: &Output, keys: &[&str]) -> Vec<String> {
    out.stdout
        .lines()
        .filter(|l| keys.iter().any(|k| l.starts_with(k)))
        .map(str::to_owned)
        .collect()
}

/// Asserts the lines starting with `keys` read the same natively and under netvm.
fn assert_lines_alike(native: &Output, netvm: &Output, keys: &[&str]) {
    let (n, v) = (lines_of(native, keys), lines_of(netvm, keys));
    assert!(!n.is_empty(), "the native reference printed none of {keys:?}\n{native}");
    assert_eq!(v, n, "netvm differs from Linux\n--- native\n{native}\n--- netvm\n{netvm}");
}

/// Lines of `probe table` whose differences are a choice: IPPROTO_MPTCP refused
/// as by a kernel without MPTCP.
const TABLE_KNOWN: [&str; 1] = ["inet mptcp"];

/// GUARD: socket() of every kind, with SOCK_NONBLOCK / SOCK_CLOEXEC, bad flags,
/// types, protocols and families, the upper halves of int arguments set, and
/// socketpair's EFAULT vectors, give what Linux gives: the same result, errno,
/// lowest fd, O_RDWR, non-blocking and close-on-exec flags, type, domain,
/// protocol, owner and mode; as root and as an unprivileged user, with the
/// notifier and with `--trace`.
#[test]
fn guard_socket_results_flags_and_owners_match_linux() {
    for user in [User::Invoker, User::Unprivileged] {
        let native = native(user, &["table"]);
        native.assert_code(0);
        let keys: Vec<&str> = native
            .stdout
            .lines()
            .filter_map(|l| l.split(" = ").next())
            .filter(|k| !TABLE_KNOWN.contains(k))
            .collect();
        assert!(keys.len() >= 30, "too few lines\n{native}");
        for extra in [&[][..], &["--trace=/dev/null"][..]] {
            let out = netvm(user, extra, &["table"]);
            out.assert_code(0);
            let with_eq: Vec<String> = keys.iter().map(|k| format!("{k} = ")).collect();
            let with_eq: Vec<&str> = with_eq.iter().map(String::as_str).collect();
            assert_lines_alike(&native, &out, &with_eq);
        }
    }
}

/// FOUND: a program that opens and closes netlink sockets quickly (a library
/// probing for rtnetlink, a monitoring loop) gets ENFILE after 1024 of them.
/// Linux: all 3000 succeed (and did under netvm before the change, and still do
/// under `--trace`). netvm: "Too many open files in system" at the 1025th, until
/// the once-a-second sweep. The notified socket() answers without going through
/// `finish`, so `sweep_after_call` never counts it, and the closed records stay
/// in `NetlinkSockets::sockets`, whose MAX_SOCKETS (1024) check counts them.
#[test]
fn found_netlink_sockets_opened_and_closed_quickly_run_into_enfile() {
    let program = "import socket\nn = 0\ntry:\n    for i in range(3000):\n        \
                   socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close(); n += 1\n    \
                   print('made', n)\nexcept OSError as e:\n    print('failed after', n, e)\n";
    let python = common::python();
    let out =
        run(netvm_as(User::Invoker, &["run", "--stack", "lwip0", "--", python, "-c", program]));
    out.assert_code(0);
    assert_eq!(out.stdout.trim(), "made 3000", "Linux makes all 3000\n{out}");
}

/// FOUND: with RLIMIT_NOFILE exhausted, socket(AF_NETLINK) must fail with EMFILE
/// every time, and succeed as soon as an fd is freed. netvm: each refused give
/// (ADDFD fails with EMFILE in the program) leaves the netlink record and its
/// server end behind (made and adopted before the give), so after 1024 tries
/// the answer turns to ENFILE, and stays ENFILE even once an fd is free (until
/// the next sweep); meanwhile the supervisor holds 1024 more descriptors.
#[test]
fn found_emfile_netlink_leaves_records_that_turn_into_enfile() {
    let native = native(User::Invoker, &["emfile", "3000"]);
    native.assert_code(0);
    let out = netvm(User::Invoker, &[], &["emfile", "3000"]);
    out.assert_code(0);
    assert_lines_alike(&native, &out, &["netlink:", "freed one, netlink"]);
}

/// GUARD: with RLIMIT_NOFILE exhausted, socket() of AF_INET and AF_INET6 fails
/// with EMFILE (the program's limit, not the supervisor's), bad arguments still
/// give EINVAL / EAFNOSUPPORT first, and one freed fd is enough again; with the
/// notifier and with `--trace`, as root and unprivileged.
#[test]
fn guard_emfile_for_inet_sockets_as_linux() {
    let keys = [
        "inet stream:",
        "inet6 dgram:",
        "inet bad proto:",
        "inet bad flag:",
        "appletalk:",
        "freed one, inet",
    ];
    for user in [User::Invoker, User::Unprivileged] {
        let native = native(user, &["emfile", "2000"]);
        native.assert_code(0);
        for extra in [&[][..], &["--trace=/dev/null"][..]] {
            let out = netvm(user, extra, &["emfile", "2000"]);
            out.assert_code(0);
            assert_lines_alike(&native, &out, &keys);
        }
    }
}

/// FOUND (pre-existing): Linux's socketpair reserves the two descriptors first,
/// so with the fd table full (or one slot free) socketpair(AF_INET) fails with
/// EMFILE; netvm answers EOPNOTSUPP.
#[test]
fn found_socketpair_inet_with_a_full_fd_table_is_emfile() {
    let native = native(User::Invoker, &["emfile", "10"]);
    native.assert_code(0);
    let out = netvm(User::Invoker, &[], &["emfile", "10"]);
    assert_lines_alike(&native, &out, &["socketpair inet full", "socketpair inet one free"]);
}

/// FOUND (pre-existing): Linux's socketpair writes the two descriptor numbers
/// into the vector before the family refuses (sv reads 3,4 after EOPNOTSUPP);
/// netvm leaves the vector as it was (it writes back what it read). And
/// socketpair(AF_NETLINK) is EOPNOTSUPP on Linux, EAFNOSUPPORT under netvm.
#[test]
fn found_socketpair_failures_differ_from_linux() {
    let native = native(User::Invoker, &["table"]);
    let out = netvm(User::Invoker, &[], &["table"]);
    assert_lines_alike(
        &native,
        &out,
        &["socketpair inet =", "socketpair inet6 =", "socketpair netlink ="],
    );
}

/// FOUND (pre-existing): socket(AF_NETLINK, SOCK_RAW | 0x1000, ...) is EINVAL on
/// Linux (`__sys_socket` judges the flags first); netvm says ESOCKTNOSUPPORT
/// (`NetlinkSockets::create` masks only the two known flags off and judges the
/// type).
#[test]
fn found_netlink_socket_with_unknown_flags_is_einval() {
    let native = native(User::Invoker, &["table"]);
    let out = netvm(User::Invoker, &[], &["table"]);
    assert_lines_alike(&native, &out, &["netlink badflag ="]);
}

/// GUARD: a root session whose program drops to nobody (setpriv) gets sockets
/// owned by nobody, as Linux's fsuid/fsgid would make them; and a thread that
/// changed only its own fsuid/fsgid (setfsuid) gets its own ids on its sockets,
/// while its process's other threads keep theirs.
#[test]
fn guard_new_sockets_belong_to_the_calling_threads_file_system_ids() {
    if !is_root() {
        return skip("dropping to another user needs root");
    }
    let probe = probe();
    let out = run(netvm_as(
        User::Invoker,
        &[
            "run",
            "--stack",
            "lwip0",
            "--",
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            &probe,
            "owner",
        ],
    ));
    out.assert_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    for line in lines {
        assert!(line.contains("uid=65534 gid=65534"), "{line}\n{out}");
    }
    let program = "import ctypes, os, socket, threading\nlibc = ctypes.CDLL(None)\n\
        def ids(s):\n    st = os.fstat(s.fileno()); return (st.st_uid, st.st_gid)\n\
        def thread():\n    libc.setfsuid(1234); libc.setfsgid(4321)\n    \
        print('thread', ids(socket.socket()), ids(socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)))\n\
        t = threading.Thread(target=thread); t.start(); t.join()\n\
        print('main', ids(socket.socket()))\n";
    let python = common::python();
    let out =
        run(netvm_as(User::Invoker, &["run", "--stack", "lwip0", "--", python, "-c", program]));
    out.assert_code(0);
    assert_eq!(out.stdout, "thread (1234, 4321) (1234, 4321)\nmain (0, 0)\n", "{out}");
}

/// GUARD: SIGALRM every 200 us, with and without SA_RESTART, never makes socket()
/// fail (Linux's never gives EINTR): the notification interrupted before the
/// supervisor received it restarts; and socket() still makes progress.
#[test]
fn guard_signals_never_interrupt_socket() {
    for restart in ["0", "1"] {
        let probe = probe();
        let mut command = netvm_as(
            User::Invoker,
            &["run", "--stack", "lwip0", "--", &probe, "signals", "2", restart],
        );
        command.env("INTERVAL_US", "200");
        let out = run(command);
        out.assert_code(0);
        let line = out.stdout.lines().next().unwrap_or_default().to_owned();
        assert!(line.contains("eintr=0 other=0"), "SA_RESTART={restart}: {line}\n{out}");
        let made: u64 = line
            .strip_prefix("made=")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(made > 100, "SA_RESTART={restart}: socket() starved: {line}\n{out}");
    }
}

/// FOUND (pre-existing, also before the change): getsockname() on the AF_INET
/// socket a thread just made, while other threads close and dup2 over fd
/// numbers, answers with the AF_UNIX carrier's own name. Linux: never AF_UNIX
/// (there is none in the program). netvm resolves the fd, finds it closed or not
/// a socket, lets the call continue in the kernel, and by then the number is
/// another thread's new carrier: the check and the use race.
#[test]
#[ignore = "left: a descriptor renumbered between netvm's look and the kernel's use \
            (man/netvm.1 LIMITATIONS, the dup2 item)"]
fn found_getsockname_racing_close_shows_a_carrier() {
    let native = native(User::Invoker, &["race", "2"]);
    assert!(native.stdout.contains(" unix=0"), "the native reference broke\n{native}");
    let out = netvm(User::Invoker, &[], &["race", "3"]);
    out.assert_code(0);
    assert!(out.stdout.contains("errors=0 "), "socket() failed\n{out}");
    assert!(out.stdout.contains(" unix=0"), "a carrier's AF_UNIX name leaked\n{out}");
}

/// The number of descriptors process `pid` has open.
fn open_fds(pid: nix::unistd::Pid) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Runs `sh -c SCRIPT` under netvm as the invoker, returns netvm's descriptor
/// count when the script prints `start` and when it prints `end`.
fn supervisor_fds_around(script: &str) -> (usize, usize, Output) {
    let mut session = Session::spawn({
        let mut command =
            netvm_as(User::Invoker, &["run", "--stack", "lwip0", "--", "sh", "-c", script]);
        command.env("PROBE", probe());
        command
    });
    let pid = session.pid();
    assert_eq!(session.next_line(), "start");
    let before = open_fds(pid);
    loop {
        if session.next_line() == "end" {
            break;
        }
    }
    let after = open_fds(pid);
    (before, after, session.finish())
}

/// GUARD: processes SIGKILLed while their threads' socket() calls (AF_INET and
/// netlink) are pending leave the supervisor no descriptor behind, and the
/// session goes on making sockets.
#[test]
fn guard_killed_socket_makers_leave_nothing_behind() {
    assert_supervisor_fds_kept("killer 200", "killer done fd=3");
}

/// GUARD: 60000 sockets made and closed leave netvm's descriptors and memory
/// where they were.
#[test]
fn guard_a_flood_of_sockets_leaves_the_supervisor_bounded() {
    assert_supervisor_fds_kept("flood 60000", "flood done");
}

/// Runs the probe with `args` in a session, and asserts that it printed `done`
/// and that the supervisor holds (almost) no more descriptors 2.5 s later than
/// before.
fn assert_supervisor_fds_kept(args: &str, done: &str) {
    if !is_root() {
        return skip("reading netvm's /proc/PID/fd needs root (it is not dumpable)");
    }
    let script = format!("echo start; \"$PROBE\" {args}; sleep 2.5; echo end");
    let (before, after, out) = supervisor_fds_around(&script);
    out.assert_code(0);
    assert!(out.stdout.contains(done), "{out}");
    assert!(before > 0 && after <= before + 4, "netvm's fds grew from {before} to {after}\n{out}");
}

/// FOUND (pre-existing, not of this change): a process SIGKILLed while its
/// threads fork leaves a child that stays stopped forever, and the session never
/// ends. Linux: the probe ends and so does the command. netvm: the child's first
/// stop came before its creator's fork event, which the SIGKILL cancelled, so it
/// waits in `Tracer::unannounced` for an event that never comes (its
/// /proc/PID/status: `t (tracing stop)`, PPid 1, SIGTERM pending).
#[test]
fn found_a_process_killed_while_forking_leaves_the_session_hanging() {
    let native = native(User::Invoker, &["forkkill", "300"]);
    native.assert_code(0);
    let probe = probe();
    let mut child =
        netvm_as(User::Invoker, &["run", "--stack", "lwip0", "--", &probe, "forkkill", "300"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start netvm");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if start.elapsed() > Duration::from_secs(40) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let status = status.expect("the session still runs 40 s after the probe: a child hangs");
    assert!(status.success(), "{status}");
}
