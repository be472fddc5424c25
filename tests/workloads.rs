//! Real workloads run to completion under netvm with the right results: many
//! threads making sockets at once, hundreds of short fork/exec'd processes,
//! posix_spawn, a daemon that outlives its parent (netvm waits for it), and the
//! static busybox binary.

mod common;

use common::{TempDir, path_str, python, run_netvm};

#[test]
fn sixteen_python_threads_make_sockets_concurrently() {
    let script = r#"
import errno, socket, threading
THREADS, ROUNDS = 16, 10
lock = threading.Lock()
counts = {"refused": 0, "other": 0, "pairs": 0}
start = threading.Barrier(THREADS)
def work():
    start.wait()
    for _ in range(ROUNDS):
        try:
            socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
            kind = "other"
        except OSError as e:
            kind = "refused" if e.errno == errno.EAFNOSUPPORT else "other"
        a, b = socket.socketpair()
        a.sendall(b"x")
        paired = b.recv(1) == b"x"
        a.close(); b.close()
        with lock:
            counts[kind] += 1
            counts["pairs"] += paired
threads = [threading.Thread(target=work) for _ in range(THREADS)]
for t in threads: t.start()
for t in threads: t.join()
print(counts["refused"], counts["other"], counts["pairs"])
"#;
    let out = run_netvm(&["run", "--stack", "none", "--", python(), "-c", script]);
    out.assert_code(0);
    assert_eq!(out.stdout, "160 0 160\n", "{out}");
}

#[test]
fn hundreds_of_short_processes_run_in_a_shell_loop() {
    // Each $(expr ...) forks a subshell that execs expr: 300 fork+exec in a row,
    // each of whose answers the next one needs.
    let script = "n=0; while [ $n -lt 300 ]; do n=$(expr $n + 1); done; echo $n";
    let out = run_netvm(&["run", "--", "sh", "-c", script]);
    out.assert_code(0);
    assert_eq!(out.stdout, "300\n", "{out}");
}

#[test]
fn posix_spawn_returns_the_childs_status() {
    let script = r#"
import os, sys
pid = os.posix_spawnp("sh", ["sh", "-c", "exit 5"], os.environ)
_, status = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(status)
# A spawned child is on the same stack: its network socket is refused too.
probe = "import socket\ntry:\n socket.socket()\nexcept OSError as e:\n raise SystemExit(e.errno)"
pid = os.posix_spawn(sys.executable, ["python3", "-c", probe], os.environ)
_, status = os.waitpid(pid, 0)
print(code, os.waitstatus_to_exitcode(status))
sys.exit(code + 1)
"#;
    let out = run_netvm(&["run", "--stack", "none", "--", python(), "-c", script]);
    out.assert_code(6);
    assert_eq!(out.stdout, format!("5 {}\n", libc::EAFNOSUPPORT), "{out}");
}

#[test]
fn netvm_waits_for_a_daemon_that_outlives_the_command() {
    let dir = TempDir::new("daemon");
    let done = dir.path().join("done");
    // The command exits at once; its grandchild, in a new session with its standard
    // streams on /dev/null, writes the file a little later. Tracees die with netvm,
    // so the file exists when netvm returns only if netvm waited for the daemon.
    let script = r#"
import os, sys, time
if os.fork():
    os._exit(0)
os.setsid()
if os.fork():
    os._exit(0)
null = os.open("/dev/null", os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
time.sleep(0.5)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("daemon %d done" % os.getpid())
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
"#;
    let out = run_netvm(&["run", "--", python(), "-c", script, path_str(&done)]);
    out.assert_code(0);
    let text = std::fs::read_to_string(&done)
        .unwrap_or_else(|e| panic!("the daemon's file is missing when netvm returned: {e}\n{out}"));
    assert!(text.starts_with("daemon ") && text.ends_with(" done"), "{text:?}");
}

#[test]
fn the_static_busybox_binary_runs() {
    let out = run_netvm(&[
        "run",
        "--",
        "/usr/bin/busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4; do busybox echo line$i; done | busybox wc -l; exit 3",
    ]);
    out.assert_code(3);
    assert_eq!(out.stdout.trim(), "4", "{out}");
}

/// Tens of thousands of trapped calls back to back, from two threads at once: the
/// supervisor's loop alternates spinning, reading signals and sleeping, and a
/// stop it failed to notice would leave the program stopped forever (a run past
/// the deadline fails the test).
#[test]
fn back_to_back_trapped_calls_never_stall() {
    let script = r#"
import socket, threading
def hammer(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0))
    for _ in range(n):
        s.getsockname()
threads = [threading.Thread(target=hammer, args=(8000,)) for _ in range(2)]
[t.start() for t in threads]; [t.join() for t in threads]
print("done")
"#;
    for _ in 0..3 {
        let output = run_netvm(&["run", "--", python(), "-c", script]);
        output.assert_code(0);
        assert_eq!(output.stdout, "done\n");
    }
}

/// A thread that is not the leader execs while the leader sits in a trapped
/// call (accept). The kernel reports neither the leader's end nor the exec'ing
/// thread's old id, so what netvm kept for the leader's call must go at the exec.
/// The new program's first trapped call returns as many bytes as the number of an
/// inherited socket, which a stale finish of that accept would take for a new
/// connection's fd and overwrite that socket's record.
#[test]
fn exec_from_a_thread_while_another_is_inside_a_call() {
    let after_exec = "import socket, sys
fd, expected = int(sys.argv[1]), sys.argv[2]
c = socket.socket(fileno=fd)
c.sendto(b'x' * fd, ('127.0.0.1', 1))
print('same' if repr(c.getsockname()) == expected else 'changed')";
    let script = format!(
        r#"import os, socket, threading, time
parked = socket.socket(); parked.bind(("127.0.0.1", 0)); parked.listen(1)
server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(1)
c = socket.create_connection(server.getsockname()); a, _ = server.accept()
os.set_inheritable(c.fileno(), True); os.set_inheritable(a.fileno(), True)
def later():
    time.sleep(0.3)
    os.execv({py:?}, [{py:?}, "-c", {after:?}, str(c.fileno()), repr(c.getsockname())])
threading.Thread(target=later).start()
parked.accept()
"#,
        py = python(),
        after = after_exec,
    );
    let output = run_netvm(&["run", "--", python(), "-c", &script]);
    output.assert_code(0);
    assert_eq!(output.stdout, "same\n", "{output}");
}

/// Prints the soft and hard descriptor limits of this process and of its parent
/// (the supervisor), from `/proc`.
const LIMITS: &str = "import os\n\
    def nofile(pid):\n    \
    line = next(l for l in open(f'/proc/{pid}/limits') if l.startswith('Max open files'))\n    \
    return line.split()[3:5]\n\
    print(*nofile(os.getpid()), *nofile(os.getppid()))\n";

/// The supervisor holds descriptors for every program's sockets: it raises its
/// own soft limit to the hard one, while the command keeps the limit it was
/// given (`select` and friends depend on it).
#[test]
fn the_supervisor_takes_every_descriptor_it_may_and_the_command_keeps_its_limit() {
    let mut command = std::process::Command::new("sh");
    let script =
        format!("ulimit -S -n 1024; exec '{}' run -- {} -c \"$0\"", common::NETVM, python());
    command.args(["-c", &script, LIMITS]);
    let output = common::run(command);
    output.assert_code(0);
    let fields: Vec<&str> = output.stdout.split_whitespace().collect();
    assert_eq!(fields.len(), 4, "{output}");
    let (own_soft, own_hard, supervisor_soft, supervisor_hard) =
        (fields[0], fields[1], fields[2], fields[3]);
    assert_eq!(own_soft, "1024", "{output}");
    assert_eq!(supervisor_soft, supervisor_hard, "{output}");
    assert_eq!(own_hard, supervisor_hard, "{output}");
}
