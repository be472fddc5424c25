//! The control channel (`vunet::control`) on its own: a `ControlSocket` served by a
//! thread of this test, which plays the supervisor (under its own pid, since
//! clients check who listens, or under a made-up pid no real process can have),
//! and clients in this process or in a `netvm status` child. Plus what `netvm stack`
//! and `netvm status` do when there is no session to talk to.

mod common;

use std::io::ErrorKind;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr};
use nix::unistd::Pid;

use common::{NETVM, Output, netvm_as, run, run_netvm, skip};
use netvm::modules::vunet::control::{self, ControlSocket, Reply, Request};
use netvm::modules::vunet::status::{SocketStatus, StackStatus, StatusReport};

/// A supervisor pid for this test alone: far above any real pid (the kernel's
/// limit is 2^22), and different for each test and each test process.
fn fake_supervisor() -> Pid {
    static NEXT: AtomicI32 = AtomicI32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    Pid::from_raw(1_000_000_000 + (std::process::id() % 1_000_000) as i32 * 100 + n)
}

/// This test process as a supervisor: one test at a time (there is one name per
/// pid), while the guard lives.
fn as_supervisor() -> (Pid, MutexGuard<'static, ()>) {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    (Pid::from_raw(std::process::id() as i32), guard)
}

/// Whether `fd` becomes readable within `timeout`.
fn readable(fd: RawFd, timeout: Duration) -> bool {
    let mut pollfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: polls one live pollfd.
    let n = unsafe { libc::poll(&mut pollfd, 1, timeout.as_millis() as i32) };
    n == 1
}

type Handler = Box<dyn FnMut(Request, Pid) -> Reply + Send>;

/// A control socket served by a thread, as the supervisor's loop would: wait for
/// the socket's descriptor to be readable, then `serve`.
struct Server {
    supervisor: Pid,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<ControlSocket>>,
}

impl Server {
    fn start(supervisor: Pid, mut handler: Handler) -> Self {
        let mut socket = ControlSocket::bind(supervisor).expect("bind the control socket");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                if readable(socket.as_raw_fd(), Duration::from_millis(20)) {
                    socket.serve(&mut handler);
                }
            }
            socket
        });
        Self { supervisor, stop, thread: Some(thread) }
    }

    /// Stops serving and hands the socket back.
    fn finish(mut self) -> ControlSocket {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().expect("server thread")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A report with `sockets` sockets on one stack.
fn report(supervisor: Pid, sockets: usize) -> StatusReport {
    let socket = |i: usize| SocketStatus {
        proto: "tcp".into(),
        state: "ESTAB".into(),
        local: format!("10.0.0.2:{}", 1024 + i % 60000),
        peer: "10.0.0.3:80".into(),
        pids: vec![100 + i as i32],
        inode: i as u64,
    };
    StatusReport {
        supervisor: supervisor.as_raw(),
        stacks: vec![
            StackStatus {
                name: "lwip0".into(),
                kind: "smoltcp".into(),
                processes: vec![100, 101],
                sockets: (0..sockets).map(socket).collect(),
                ..Default::default()
            },
            StackStatus { name: "none".into(), kind: "none".into(), ..Default::default() },
        ],
        uplinks: Vec::new(),
    }
}

/// A client socket connected to `supervisor`'s control socket, that has sent nothing.
fn connect(supervisor: Pid) -> OwnedFd {
    let fd = socket::socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None)
        .unwrap();
    let name = control::socket_name(supervisor);
    let address = UnixAddr::new_abstract(name.as_bytes()).unwrap();
    socket::connect(fd.as_raw_fd(), &address).expect("connect to the control socket");
    fd
}

/// Reads a whole reply on `fd`: the messages up to the end of the connection.
fn read_reply(fd: &OwnedFd) -> Reply {
    let timeout = nix::sys::time::TimeVal::new(10, 0);
    socket::setsockopt(fd, socket::sockopt::ReceiveTimeout, &timeout).unwrap();
    let mut reply = Vec::new();
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        match socket::recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) => panic!("recv: {e} (after {} bytes)", reply.len()),
        }
    }
    serde_json::from_slice(&reply).expect("a reply in JSON")
}

#[test]
fn a_request_gets_its_reply_and_the_handler_learns_who_sent_it() {
    let (supervisor, _one) = as_supervisor();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = asked.clone();
    let server = Server::start(
        supervisor,
        Box::new(move |request, pid| {
            log.lock().unwrap().push((request.clone(), pid));
            match request {
                Request::UseStack { name } if name == "lwip1" => Reply::Ok,
                Request::UseStack { name } => Reply::error(format!("no stack named `{name}`")),
                Request::Status => Reply::Status { report: report(Pid::from_raw(7), 2) },
            }
        }),
    );
    let me = Pid::from_raw(std::process::id() as i32);

    let use_lwip1 = Request::UseStack { name: "lwip1".into() };
    assert_eq!(control::request(server.supervisor, &use_lwip1).unwrap(), Reply::Ok);
    let use_nope = Request::UseStack { name: "nope".into() };
    assert_eq!(
        control::request(server.supervisor, &use_nope).unwrap(),
        Reply::error("no stack named `nope`")
    );
    assert_eq!(
        control::request(server.supervisor, &Request::Status).unwrap(),
        Reply::Status { report: report(Pid::from_raw(7), 2) }
    );
    assert_eq!(
        *asked.lock().unwrap(),
        [(use_lwip1, me), (use_nope, me), (Request::Status, me)],
        "the handler gets each request with the sender's pid"
    );
    assert_eq!(server.finish().pending(), 0, "every connection is closed once answered");
}

#[test]
fn a_request_that_is_not_valid_is_answered_with_an_error() {
    let called = Arc::new(AtomicBool::new(false));
    let flag = called.clone();
    let server = Server::start(
        fake_supervisor(),
        Box::new(move |_, _| {
            flag.store(true, Ordering::Relaxed);
            Reply::Ok
        }),
    );
    for garbage in [&b"not json at all"[..], b"{\"request\":\"reboot\"}", b"[1,2,3]", b"\xff\xfe"] {
        let client = connect(server.supervisor);
        socket::send(client.as_raw_fd(), garbage, MsgFlags::empty()).unwrap();
        match read_reply(&client) {
            Reply::Error { message } => {
                assert!(message.starts_with("not a valid request"), "{message}")
            }
            other => panic!("{:?} got {other:?}", String::from_utf8_lossy(garbage)),
        }
    }
    // One too long for the server to read whole.
    let client = connect(server.supervisor);
    socket::send(client.as_raw_fd(), &vec![b' '; 100_000], MsgFlags::empty()).unwrap();
    assert!(
        matches!(read_reply(&client), Reply::Error { message } if message.contains("too long"))
    );
    drop(server);
    assert!(!called.load(Ordering::Relaxed), "the handler saw an invalid request");
}

#[test]
fn a_client_that_sends_nothing_blocks_nobody() {
    let (supervisor, _one) = as_supervisor();
    let mut socket = ControlSocket::bind(supervisor).unwrap();
    let mut answered = Vec::new();
    let mut handle = |request: Request, pid: Pid| {
        answered.push((request, pid));
        Reply::Ok
    };

    let silent = connect(supervisor);
    assert!(readable(socket.as_raw_fd(), Duration::from_secs(5)), "no wake-up for a new client");
    let start = Instant::now();
    socket.serve(&mut handle);
    assert!(start.elapsed() < Duration::from_secs(1), "serve waited for the silent client");
    assert_eq!(socket.pending(), 1, "the silent client is kept for later");
    assert!(
        !readable(socket.as_raw_fd(), Duration::ZERO),
        "the descriptor stays readable with nothing to do: a level-triggered loop would spin"
    );

    // Others are served meanwhile (a client thread, since `request` waits).
    let client = thread::spawn(move || control::request(supervisor, &Request::Status));
    while !client.is_finished() {
        if readable(socket.as_raw_fd(), Duration::from_millis(20)) {
            socket.serve(&mut handle);
        }
    }
    assert_eq!(client.join().unwrap().unwrap(), Reply::Ok);
    assert_eq!(socket.pending(), 1);

    // The silent client speaks at last (as a traced one does once its sendmsg stop
    // is let through): the descriptor wakes the loop, and it is answered.
    let request = serde_json::to_vec(&Request::UseStack { name: "none".into() }).unwrap();
    socket::send(silent.as_raw_fd(), &request, MsgFlags::empty()).unwrap();
    assert!(readable(socket.as_raw_fd(), Duration::from_secs(5)), "no wake-up for the request");
    socket.serve(&mut handle);
    assert_eq!(read_reply(&silent), Reply::Ok);
    assert_eq!(socket.pending(), 0);
    let me = Pid::from_raw(std::process::id() as i32);
    assert_eq!(answered, [(Request::Status, me), (Request::UseStack { name: "none".into() }, me)]);

    // A client that gives up before sending is forgotten.
    drop(connect(supervisor));
    assert!(readable(socket.as_raw_fd(), Duration::from_secs(5)));
    socket.serve(|_, _| panic!("no request was sent"));
    assert_eq!(socket.pending(), 0, "a client that hung up is still kept");
}

#[test]
fn a_large_report_arrives_whole() {
    let supervisor_report = report(Pid::from_raw(1), 20_000);
    let sent = supervisor_report.clone();
    let (supervisor, _one) = as_supervisor();
    let server =
        Server::start(supervisor, Box::new(move |_, _| Reply::Status { report: sent.clone() }));
    let size = serde_json::to_vec(&Reply::Status { report: supervisor_report.clone() }).unwrap();
    assert!(size.len() > 1_000_000, "the report is only {} bytes", size.len());
    assert_eq!(
        control::request(server.supervisor, &Request::Status).unwrap(),
        Reply::Status { report: supervisor_report }
    );
}

#[test]
fn a_control_socket_is_listed_while_it_listens_and_its_name_is_its_own() {
    let supervisor = fake_supervisor();
    assert!(!control::sessions().contains(&supervisor));
    let socket = ControlSocket::bind(supervisor).unwrap();
    assert!(control::sessions().contains(&supervisor), "{:?}", control::sessions());
    let table = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    assert!(table.contains(&format!("@netvm-{supervisor}.ctl")));
    let taken = ControlSocket::bind(supervisor).err().expect("a second bind to the same name");
    assert_eq!(taken.kind(), ErrorKind::AddrInUse);
    drop(socket);
    assert!(!control::sessions().contains(&supervisor));
}

#[test]
fn a_request_to_no_session_is_refused_and_a_silent_session_times_out() {
    let nobody = fake_supervisor();
    let refused = control::request(nobody, &Request::Status).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused, "{refused}");

    let (supervisor, _one) = as_supervisor();
    let _never_served = ControlSocket::bind(supervisor).unwrap();
    let start = Instant::now();
    let late = control::request(supervisor, &Request::Status).unwrap_err();
    assert_eq!(late.kind(), ErrorKind::TimedOut, "{late}");
    let waited = start.elapsed();
    assert!(waited >= control::TIMEOUT - Duration::from_millis(100), "gave up after {waited:?}");
    assert!(waited < control::TIMEOUT + Duration::from_secs(3), "waited {waited:?}");
}

#[test]
fn netvm_status_prints_a_sessions_report_and_names_the_asker() {
    let (supervisor, _one) = as_supervisor();
    let askers = Arc::new(Mutex::new(Vec::new()));
    let log = askers.clone();
    let server = Server::start(
        supervisor,
        Box::new(move |request, pid| {
            log.lock().unwrap().push(pid);
            assert_eq!(request, Request::Status);
            Reply::Status { report: report(Pid::from_raw(4242), 1) }
        }),
    );
    let session = server.supervisor.to_string();

    let child = |args: &[&str]| {
        let mut command = netvm_as(common::User::Invoker, args);
        command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        let child = command.spawn().expect("start netvm status");
        let pid = child.id() as i32;
        let out = child.wait_with_output().unwrap();
        (pid, out)
    };

    let (pid, out) = child(&["status", "--session", &session, "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let printed: StatusReport = serde_json::from_str(&stdout).expect("the JSON report");
    assert_eq!(printed, report(Pid::from_raw(4242), 1));
    assert_eq!(askers.lock().unwrap().last(), Some(&Pid::from_raw(pid)), "not the client's pid");

    let (_, out) = child(&["status", "--session", &session]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.starts_with("session of netvm supervisor 4242\n"), "{stdout}");
    assert!(stdout.contains("stack lwip0 (smoltcp), 2 processes"), "{stdout}");
    assert!(stdout.contains("Netid State Local Address:Port"), "{stdout}");
    assert!(stdout.contains("tcp   ESTAB 10.0.0.2:1024"), "{stdout}");
    assert!(stdout.contains("stack none (none), no processes"), "{stdout}");
}

#[test]
fn netvm_status_reports_the_sessions_error() {
    let (supervisor, _one) = as_supervisor();
    let server =
        Server::start(supervisor, Box::new(|_, _| Reply::error("status is not served yet")));
    run_netvm(&["status", "--session", &server.supervisor.to_string()])
        .assert_code(125)
        .assert_stderr_has("netvm: status is not served yet");
}

#[test]
fn a_control_socket_held_by_another_process_is_not_asked() {
    let called = Arc::new(AtomicBool::new(false));
    let flag = called.clone();
    let impostor = Server::start(
        fake_supervisor(),
        Box::new(move |_, _| {
            flag.store(true, Ordering::Relaxed);
            Reply::Ok
        }),
    );
    let refused = control::request(impostor.supervisor, &Request::Status).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::PermissionDenied, "{refused}");
    let me = std::process::id();
    assert!(refused.to_string().contains(&format!("held by process {me}")), "{refused}");
    run_netvm(&["status", "--session", &impostor.supervisor.to_string()])
        .assert_code(125)
        .assert_stderr_has("not by the supervisor");
    drop(impostor);
    assert!(!called.load(Ordering::Relaxed), "a request reached the impostor");
}

#[test]
fn netvm_status_with_a_pid_that_is_no_session_fails_with_125() {
    let nobody = fake_supervisor().to_string();
    run_netvm(&["status", "--session", &nobody])
        .assert_code(125)
        .assert_stderr_has(&format!("no netvm session with supervisor PID {nobody}"));
}

#[test]
fn netvm_stack_outside_a_session_fails_with_125() {
    let out = run_netvm(&["stack", "lwip1", "--", "true"]);
    out.assert_code(125).assert_stderr_has(
        "netvm stack: not inside a netvm session; start one with `netvm run -- CMD`",
    );
    assert_eq!(out.stdout, "");
    // Not even a command that does not exist is looked for.
    run_netvm(&["stack", "lwip1", "--", "no-such-command-netvm-test"])
        .assert_code(125)
        .assert_stderr_has("not inside a netvm session");
}

/// Runs `netvm ARGS...` in a network namespace of its own, where no session (of
/// this test or any other) can be seen; `None`, with the test [`skip`]ped, if
/// namespaces are not available.
fn run_netvm_alone(args: &[&str]) -> Option<Output> {
    let works = Command::new("unshare").args(["-rn", "true"]).output();
    if !works.is_ok_and(|o| o.status.success()) {
        skip("needs `unshare -rn` (user and network namespaces)");
        return None;
    }
    let mut command = Command::new("unshare");
    command
        .args(["-rn", "--", NETVM])
        .args(args)
        .env_remove("NETVM_CONFIG")
        .env_remove("NETVM_LOG")
        .env("XDG_CONFIG_HOME", "/nonexistent/netvm-tests")
        .stdin(std::process::Stdio::null())
        .current_dir("/");
    Some(run(command))
}

#[test]
fn netvm_status_with_no_session_running_fails_with_125() {
    let Some(out) = run_netvm_alone(&["status"]) else { return };
    out.assert_code(125)
        .assert_stderr_has("no netvm session is running (start one with `netvm run -- CMD`)");
    let Some(out) = run_netvm_alone(&["status", "--json"]) else { return };
    out.assert_code(125).assert_stderr_has("no netvm session is running");
    assert_eq!(out.stdout, "");
}
