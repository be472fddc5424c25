//! Helpers shared by the integration tests: running netvm (as the invoking user or
//! as an unprivileged one) with a deadline, compiling the C probes, loopback
//! listeners the tests own, and parsing the `--trace` log.
//!
//! Every run fails the test if netvm's standard error mentions a panic.

#![allow(dead_code)]

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub mod namespace;
pub mod world;

/// How long any one child may run before the test gives up on it. Generous: it only
/// turns a hang into a failure.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The `netvm` binary under test.
pub const NETVM: &str = env!("CARGO_BIN_EXE_netvm");

/// `errno` of "Function not implemented", as the probes print it.
pub const ENOSYS: i32 = 38;

/// Who runs a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum User {
    /// Whoever runs the tests.
    Invoker,
    /// An unprivileged user: `nobody` (65534) when the tests run as root, else the
    /// invoker, who is unprivileged already.
    Unprivileged,
}

/// Both users, for tests that must hold for each.
pub const USERS: [User; 2] = [User::Invoker, User::Unprivileged];

/// Whether the tests run as root (as CI does): some attacks and some checks
/// need it, and [`skip`] when they cannot run.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The environment variable that turns every [`skip`] into a failure. CI sets it to
/// `1` (`.ci/run`): it runs as root with every package installed, so a test that
/// would skip there has silently stopped checking what it exists to check.
pub const REQUIRE_ALL: &str = "NETVM_TESTS_REQUIRE_ALL";

/// What a test does when the machine lacks something it needs (root, a tool, a
/// kernel feature).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenMissing {
    /// Report the test skipped and let it pass: a developer's unprivileged run.
    Skip,
    /// Fail the test: [`REQUIRE_ALL`] is set.
    Fail,
}

impl WhenMissing {
    /// The decision for `require_all`, the value of [`REQUIRE_ALL`] (`None` when it
    /// is not set). Unset, empty or `0` lets tests skip; any other value (`1`, but
    /// also a misspelt `yes`) does not, so a typo errs on the side of checking.
    pub fn from_env_value(require_all: Option<&OsStr>) -> Self {
        match require_all {
            Some(value) if !value.is_empty() && value != "0" => Self::Fail,
            _ => Self::Skip,
        }
    }
}

/// Reports that the running test cannot check (all or part of) what it exists
/// to check on this machine, for `reason` (such as "needs root"): it prints
/// `SKIPPED <test>: <reason>` and returns, and the caller returns (`return
/// skip("needs root");`) or leaves out the part that needed it. With
/// [`REQUIRE_ALL`] set it panics instead, naming the test and what was missing.
///
/// The line goes to the process's standard error directly, not through
/// `eprintln!`, which the test harness captures and shows only for failures.
#[track_caller]
pub fn skip(reason: &str) {
    let current = thread::current();
    let test = current.name().unwrap_or("an unnamed test");
    match WhenMissing::from_env_value(std::env::var_os(REQUIRE_ALL).as_deref()) {
        WhenMissing::Skip => {
            let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {reason}");
        }
        WhenMissing::Fail => {
            panic!("{test} cannot run here ({reason}), and {REQUIRE_ALL} forbids skipping it")
        }
    }
}

/// What keeps a test's sessions off the host's network: netvm leaves the
/// configuration's uplinks out (as `--no-uplink`) where this is set. Tests of
/// the uplink run netvm inside network namespaces of their own
/// (`common::world`) and remove it.
pub const NO_UPLINK: (&str, &str) = ("NETVM_NO_UPLINK", "1");

/// One stack, lwip0, with the addresses of the namespace a differential test
/// runs its native side in (10.0.0.2/24, fd00::2/64 on the loopback's side).
pub const ONE_STACK_CONFIG: &str = r#"[vunet]
default = "lwip0"
[[vunet.stack]]
name = "lwip0"
kind = "smoltcp"
addresses = ["10.0.0.2/24", "fd00::2/64"]
"#;

/// A command running `program` as `user`, with no standard input and `/` as its
/// working directory (readable by anyone). Sessions it starts have no uplink
/// ([`NO_UPLINK`]).
pub fn command_as(user: User, program: impl AsRef<OsStr>) -> Command {
    let mut command = if user == User::Unprivileged && is_root() {
        let mut setpriv = Command::new("setpriv");
        setpriv.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).arg(program);
        setpriv
    } else {
        Command::new(program)
    };
    command.stdin(Stdio::null()).current_dir("/").env(NO_UPLINK.0, NO_UPLINK.1);
    command
}

/// A `netvm` command line run as `user`. The configuration is the built-in one
/// (unless the test passes `--config`): the invoker's own files and `NETVM_CONFIG`
/// are kept out of the way.
pub fn netvm_as(user: User, args: &[&str]) -> Command {
    let mut command = command_as(user, NETVM);
    command
        .args(args)
        .env_remove("NETVM_CONFIG")
        .env_remove("NETVM_LOG")
        .env("XDG_CONFIG_HOME", "/nonexistent/netvm-tests");
    command
}

/// Runs `netvm ARGS...` as the invoker and waits for it.
pub fn run_netvm(args: &[&str]) -> Output {
    run(netvm_as(User::Invoker, args))
}

/// Runs `netvm ARGS...` as `user` and waits for it.
pub fn run_netvm_as(user: User, args: &[&str]) -> Output {
    run(netvm_as(user, args))
}

/// Runs `command` to its end (within [`DEADLINE`]).
pub fn run(command: Command) -> Output {
    Session::spawn(command).finish()
}

/// What a finished run produced.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The exit status. netvm reports a killed command as 128+N, so netvm itself
    /// ending by a signal is a failure.
    pub fn code(&self) -> i32 {
        match self.status.code() {
            Some(code) => code,
            None => panic!("killed by signal {:?}\n{self}", self.status.signal()),
        }
    }

    /// Asserts the exit status, showing the whole output if it differs.
    pub fn assert_code(&self, expected: i32) -> &Self {
        assert_eq!(self.code(), expected, "unexpected exit status\n{self}");
        self
    }

    /// Asserts that standard error contains `text`.
    pub fn assert_stderr_has(&self, text: &str) -> &Self {
        assert!(self.stderr.contains(text), "stderr lacks {text:?}\n{self}");
        self
    }

    /// The `--trace` lines on standard error.
    pub fn trace(&self) -> Vec<TraceLine> {
        parse_trace(&self.stderr)
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "status: {}\n--- stdout\n{}--- stderr\n{}", self.status, self.stdout, self.stderr)
    }
}

/// A running child whose standard output can be read line by line while it runs.
pub struct Session {
    child: Child,
    lines: Receiver<String>,
    stdout: Vec<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Session {
    /// Starts `command` with its standard output and error captured.
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let (sender, lines) = mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().expect("piped stderr");
        let stderr = thread::spawn(move || {
            let mut text = Vec::new();
            let _ = err.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        });
        Self { child, lines, stdout: Vec::new(), stderr: Some(stderr) }
    }

    /// The child's pid (netvm's, for a netvm session).
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Waits for the next standard output line, failing the test at the deadline or
    /// if the output ends first.
    pub fn next_line(&mut self) -> String {
        match self.lines.recv_timeout(DEADLINE) {
            Ok(line) => {
                self.stdout.push(line.clone());
                line
            }
            Err(RecvTimeoutError::Timeout) => {
                let _ = self.child.kill();
                panic!("no output line within {DEADLINE:?}; got so far: {:?}", self.stdout)
            }
            Err(RecvTimeoutError::Disconnected) => panic!("output ended early\n{}", self.collect()),
        }
    }

    /// Whether the child has ended.
    pub fn has_ended(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_some()
    }

    /// Waits for the child to end (killing it and failing at the deadline), then for
    /// its output to end.
    pub fn finish(mut self) -> Output {
        self.collect()
    }

    fn collect(&mut self) -> Output {
        let status = wait_with_deadline(&mut self.child);
        self.stdout.extend(self.lines.iter());
        let stderr =
            self.stderr.take().map(|t| t.join().expect("stderr reader")).unwrap_or_default();
        let stdout = self.stdout.iter().map(|l| format!("{l}\n")).collect();
        let output = Output { status, stdout, stderr };
        assert!(!output.stderr.contains("panicked"), "netvm panicked\n{output}");
        output
    }
}

impl Drop for Session {
    /// A test that fails half-way must not leave its session running: killing
    /// netvm kills every process it traces (PTRACE_O_EXITKILL).
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn wait_with_deadline(child: &mut Child) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child {} still running after {DEADLINE:?}: killed", child.id());
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `signal` to `pid`, failing the test if it cannot be sent.
pub fn send(pid: Pid, signal: Signal) {
    kill(pid, signal).unwrap_or_else(|e| panic!("kill({pid}, {signal}): {e}"));
}

/// A system Python 3 that any user can run (a per-user install, such as pyenv's
/// under /root, is out of the unprivileged user's reach).
pub fn python() -> &'static str {
    ["/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("a system python3")
}

/// A directory under the system temporary directory, mode 0755 so that the
/// unprivileged user can read and run what is in it; removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("netvm-test-{}-{n}-{tag}", std::process::id()));
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` to the file `name` in this directory with `mode`.
    pub fn write(&self, name: &str, contents: &[u8], mode: u32) -> PathBuf {
        let path = self.path.join(name);
        std::fs::write(&path, contents).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Where compiled probes go: one directory per test binary, removed at exit.
fn probe_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        extern "C" fn remove_probe_dir() {
            if let Some(dir) = DIR.get() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        let dir = TempDir::new("probes");
        let path = dir.path().to_owned();
        std::mem::forget(dir); // removed by the exit handler instead
        // SAFETY: registers a plain function with no arguments to run at exit.
        unsafe { libc::atexit(remove_probe_dir) };
        path
    })
}

/// Compiles `tests/probes/NAME.c` (once per test binary) and returns the program,
/// which any user can run.
pub fn compile_probe(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let source =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/probes").join(format!("{name}.c"));
    let out = probe_dir().join(name);
    let result = std::process::Command::new("cc")
        .arg("-O1")
        .arg("-o")
        .arg(&out)
        .arg(&source)
        .output()
        .expect("run cc");
    assert!(
        result.status.success(),
        "cc {}: {}",
        source.display(),
        String::from_utf8_lossy(&result.stderr)
    );
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    built.insert(name.to_owned(), out.clone());
    out
}

/// A path as a `&str`, for argument lists.
pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// A TCP listener on 127.0.0.1 with an OS-chosen port, that never accepts by
/// itself: for proving that nothing connected.
pub struct Listener {
    inner: TcpListener,
}

impl Listener {
    pub fn new() -> Self {
        let inner = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        Self { inner }
    }

    pub fn port(&self) -> u16 {
        self.inner.local_addr().expect("local_addr").port()
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port())
    }

    /// Asserts that no connection is waiting. Call it after the client has ended: a
    /// connection it made would be queued by then.
    pub fn assert_no_connection(&self) {
        self.inner.set_nonblocking(true).expect("set_nonblocking");
        match self.inner.accept() {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Ok((_, peer)) => panic!("the listener got a connection from {peer}"),
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// What [`HttpServer`] answers every request with.
pub const HTTP_BODY: &str = "hello from the test listener\n";

/// A minimal HTTP server on 127.0.0.1 (OS-chosen port), run by a thread that
/// answers every connection with [`HTTP_BODY`] and counts them.
pub struct HttpServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<usize>,
}

impl HttpServer {
    pub fn start() -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("set_nonblocking");
        let port = listener.local_addr().expect("local_addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = thread::spawn(move || {
            let mut served = 0;
            let start = Instant::now();
            while start.elapsed() < DEADLINE {
                match listener.accept() {
                    Ok((stream, _)) => {
                        serve_one(stream);
                        served += 1;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        if stopped.load(Ordering::Relaxed) {
                            break;
                        }
                        thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
            served
        });
        Self { port, stop, thread }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Stops the server (serving any connection already queued) and returns how
    /// many connections it served.
    pub fn finish(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("server thread")
    }
}

fn serve_one(mut stream: TcpStream) {
    stream.set_nonblocking(false).expect("set_nonblocking");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("set_read_timeout");
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let response = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{HTTP_BODY}",
        HTTP_BODY.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

/// curl's arguments to fetch `url` quietly, failing on errors, never waiting long.
pub fn curl(url: &str) -> Vec<String> {
    ["curl", "-sS", "--max-time", "20", "--noproxy", "*", url].map(String::from).to_vec()
}

/// The static busybox's wget's arguments to fetch `url` to standard output.
pub fn busybox_wget(url: &str) -> Vec<String> {
    ["/usr/bin/busybox", "wget", "-q", "-O", "-", url].map(String::from).to_vec()
}

/// A Python program that tries to make an AF_INET socket and goes on whatever
/// happens.
pub const PY_TRY_INET_SOCKET: &str =
    "import socket\ntry:\n    socket.socket(socket.AF_INET)\nexcept OSError:\n    pass\n";

/// Runs `netvm ARGS... -- CMD...` as `user`, with the command given as owned
/// strings.
pub fn run_netvm_cmd(user: User, netvm_args: &[&str], cmd: &[String]) -> Output {
    let mut args: Vec<&str> = netvm_args.to_vec();
    args.push("--");
    args.extend(cmd.iter().map(String::as_str));
    run_netvm_as(user, &args)
}

/// One line of the `--trace` log: `[PID BY] CALL(ARGS) = RESULT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceLine {
    pub pid: i32,
    pub by: String,
    pub call: String,
    pub args: String,
    pub result: String,
}

/// The trace lines in `text`; other lines (the command's own output) are skipped.
pub fn parse_trace(text: &str) -> Vec<TraceLine> {
    text.lines().filter_map(parse_trace_line).collect()
}

fn parse_trace_line(line: &str) -> Option<TraceLine> {
    let rest = line.strip_prefix('[')?;
    let (head, rest) = rest.split_once("] ")?;
    let (pid, by) = head.split_once(' ')?;
    let (call, rest) = rest.split_once('(')?;
    let (args, result) = rest.rsplit_once(") = ")?;
    Some(TraceLine {
        pid: pid.parse().ok()?,
        by: by.to_owned(),
        call: call.to_owned(),
        args: args.to_owned(),
        result: result.to_owned(),
    })
}

/// The error result the trace shows for `EAFNOSUPPORT`.
pub const EAFNOSUPPORT_RESULT: &str = "-1 EAFNOSUPPORT (Address family not supported by protocol)";

/// Asserts that `trace` has a `socket(AF_INET, ...)` refused by stack `stack`.
pub fn assert_inet_socket_refused(trace: &[TraceLine], stack: &str) {
    assert!(
        trace.iter().any(|l| l.by == stack
            && l.call == "socket"
            && l.args.starts_with("AF_INET, SOCK_STREAM")
            && l.result == EAFNOSUPPORT_RESULT),
        "no refused socket(AF_INET, SOCK_STREAM...) by `{stack}` in the trace: {trace:#?}"
    );
}

/// What every session script starts with: `$N`, the netvm binary under test, and
/// `listening PROTO PORT`, which waits (up to 5 s) until `netvm status` shows a
/// socket of PROTO (`tcp` or `udp`) listening or bound on PORT on some stack.
///
/// Clients wait for their server this way rather than retrying until they get
/// through: a connect that comes too early must fail, and whether it does is the
/// business of other tests.
pub const PRELUDE: &str = r#"
listening() {
    for i in $(seq 100); do
        "$N" status | grep -Eq "^ *$1 +(LISTEN|UNCONN) +[^ ]*:$2 " && return 0
        sleep 0.05
    done
    echo "nothing listens on $1 port $2" >&2
    return 1
}
"#;

/// Runs `script` with `sh -c` in a session (built-in configuration, default stack
/// `lwip0`) as `user`, with `$N` and `listening` of [`PRELUDE`].
pub fn session(user: User, script: &str) -> Output {
    session_with(user, &[], script)
}

/// As [`session`], with `netvm run` options before the command.
pub fn session_with(user: User, run_args: &[&str], script: &str) -> Output {
    let script = format!("N='{NETVM}'\n{PRELUDE}\n{script}");
    let mut args = vec!["run"];
    args.extend_from_slice(run_args);
    args.extend_from_slice(&["--", "sh", "-c", &script]);
    run(netvm_as(user, &args))
}

/// Asserts that standard output has the line `line`.
pub fn assert_line(output: &Output, line: &str) {
    assert!(output.stdout.lines().any(|l| l == line), "no line {line:?}\n{output}");
}

/// What `script` does in a network namespace at 10.0.0.2/24 and fd00::2/64
/// whose veth (MTU 1500) leads to another at 10.0.0.3/24 and fd00::3/64, where
/// `on_b CMD...` runs CMD and `listening PROTO PORT` waits for a listener, as
/// `netvm stack lwip1` and [`PRELUDE`] do in a session; `None` where
/// namespaces cannot be made (not root).
pub fn on_two_linux_hosts(script: &str) -> Option<Output> {
    if !is_root() {
        skip("the Linux reference needs root (ip netns)");
        return None;
    }
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let (a, b) = (
        format!("nvln-a-{}-{n}", std::process::id()),
        format!("nvln-b-{}-{n}", std::process::id()),
    );
    let functions = format!(
        "on_b() {{ ip netns exec {b} \"$@\"; }}\n\
         listening() {{\n\
             for i in $(seq 100); do\n\
                 [ -n \"$(ip netns exec {b} ss -Hln -A \"$1\" \"sport = :$2\")\" ] && return 0\n\
                 sleep 0.05\n\
             done\n\
             echo \"nothing listens on $1 port $2\" >&2; return 1\n\
         }}\n"
    );
    let setup = format!(
        "set -e; ip netns add {a}; ip netns add {b}; \
         ip link add eth0 netns {a} mtu 1500 type veth peer name eth0 netns {b} mtu 1500; \
         for ns in {a} {b}; do ip -n $ns link set lo up; ip -n $ns link set eth0 up; done; \
         ip -n {a} addr add 10.0.0.2/24 dev eth0; ip -n {a} addr add fd00::2/64 dev eth0 nodad; \
         ip -n {b} addr add 10.0.0.3/24 dev eth0; ip -n {b} addr add fd00::3/64 dev eth0 nodad; \
         set +e; ip netns exec {a} sh -c \"$0\"; status=$?; \
         ip netns del {a}; ip netns del {b}; exit $status"
    );
    let mut command = Command::new("sh");
    command.args(["-c", &setup, &format!("{functions}{script}")]);
    let output = run(command);
    // Whatever happened, the namespaces go.
    let _ = Command::new("ip").args(["netns", "del", &a]).output();
    let _ = Command::new("ip").args(["netns", "del", &b]).output();
    Some(output)
}

/// Stack `a` on switch `near` and stack `b` on switch `far`, joined by the router
/// `gw`, whose port on `far` has an MTU of 1280:
///
/// ```text
///   a 10.1.0.2 --- near --- 10.1.0.1 gw 10.2.0.1 --- far (MTU 1280) --- 10.2.0.2 b
///     fd01::2                fd01::1    fd02::1                          fd02::2
/// ```
///
/// `far_stack_mtu` is b's interface MTU (`None`: 1500, more than the hop, as a careless
/// configuration or a real narrow hop has it).
pub fn narrow_hop(far_stack_mtu: Option<u32>) -> String {
    let far_mtu = far_stack_mtu.map(|mtu| format!("mtu = {mtu}\n")).unwrap_or_default();
    NARROW_HOP.replace("FAR_MTU", &far_mtu)
}

/// The configuration of [`narrow_hop`], with `FAR_MTU` for b's MTU line.
const NARROW_HOP: &str = r#"
[vunet]
default = "a"

[[vunet.switch]]
name = "near"

[[vunet.switch]]
name = "far"

[[vunet.router]]
name = "gw"

[[vunet.router.interface]]
switch = "near"
addresses = ["10.1.0.1/24", "fd01::1/64"]

[[vunet.router.interface]]
switch = "far"
addresses = ["10.2.0.1/24", "fd02::1/64"]
mtu = 1280

[[vunet.stack]]
name = "a"
kind = "smoltcp"

[[vunet.stack.interface]]
switch = "near"
addresses = ["10.1.0.2/24", "fd01::2/64"]

[[vunet.stack.route]]
to = "default"
via = "10.1.0.1"

[[vunet.stack.route]]
to = "::/0"
via = "fd01::1"

[[vunet.stack]]
name = "b"
kind = "smoltcp"

[[vunet.stack.interface]]
switch = "far"
addresses = ["10.2.0.2/24", "fd02::2/64"]
FAR_MTU
[[vunet.stack.route]]
to = "default"
via = "10.2.0.1"

[[vunet.stack.route]]
to = "::/0"
via = "fd02::1"
"#;

/// Makes the process non-dumpable if its first argument is 1, and prints the
/// outcome of calls with `run`.
pub const NON_DUMPABLE_PRELUDE: &str = r#"
import ctypes, errno, os, resource, socket, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
if sys.argv[1] == "1":
    assert libc.prctl(4, 0, 0, 0, 0) == 0  # PR_SET_DUMPABLE, 0
def run(what, f):
    try:
        r = f(); print(what, "ok" if r is None else r)
    except OSError as e:
        print(what, errno.errorcode.get(e.errno, e.errno))
def raw(what, r):
    print(what, r if r >= 0 else errno.errorcode.get(ctypes.get_errno()))
"#;

/// Binds, listens, connects and accepts.
pub const SOCKET_CALLS: &str = r#"
l = socket.socket()
run("bind", lambda: l.bind(("127.0.0.1", 7000)))
run("listen", lambda: l.listen(4))
c = socket.socket(); c.setblocking(False)
run("non-blocking connect to a closed port", lambda: c.connect(("127.0.0.1", 7001)))
c2 = socket.socket()
run("connect", lambda: c2.connect(("127.0.0.1", 7000)))
run("accept", lambda: l.accept() and None)
"#;
