//! Differential tests: Linux is the specification.
//!
//! Every case in `tests/differential/` is a Python program that exercises the
//! socket API (socket, bind, listen, accept, connect, shutdown, the send and
//! receive calls with their flags, socket options, ioctl, poll/select/epoll,
//! fork, dup and SCM_RIGHTS) and prints one line per observation: return values,
//! errno names, poll masks, bytes, and addresses with their unpredictable parts
//! (ephemeral ports, fd numbers) reduced to what is predictable about them.
//!
//! Each case runs twice: natively, against the host kernel in a fresh network
//! namespace whose loopback also carries the stack's addresses (`10.0.0.2/24`,
//! `fd00::2/64`) and whose ping sockets are open to every group (as netvm's
//! are), and under netvm on a `smoltcp` stack with those addresses. A
//! test passes when both transcripts are identical line for line, which proves
//! that for everything the case observes, a program cannot tell netvm's virtual
//! network from the kernel's own. The native run must also exit 0 and print
//! something: a case that fails natively is a broken case, not a netvm bug.
//!
//! A case marked `differs` is a documented difference of the design itself
//! (its doc comment starts `carrier:`): the call runs natively on the
//! program's `AF_UNIX` carrier (see `src/modules/vunet/smoltcp/mod.rs`), which
//! cannot behave as a TCP/IP socket there. Its differences from Linux are
//! recorded line by line in `tests/differential/CASE.difference` and asserted,
//! so that a change either way shows; man/netvm.1 lists them under
//! LIMITATIONS. Those observations are kept in cases of their own
//! (`carrier_*` or whole cases), so that everything else is enforced as equal.
//! Cases marked `#[ignore = "netvm differs: ..."]` are gaps still to close;
//! `cargo test --test differential -- --ignored` shows their diffs.

mod common;

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{is_root, skip};

/// How long one run of a case may take before it is killed.
const DEADLINE: Duration = Duration::from_secs(60);

/// The stack the netvm runs use: the addresses match the native namespace's.
const CONFIG: &str = common::ONE_STACK_CONFIG;

/// Sets up the native namespace, then runs `python3 CASE`: its loopback carries
/// the stack's addresses, and ping sockets are open to every group, as on netvm's
/// virtual hosts (`net.ipv4.ping_group_range` is per namespace; in a user
/// namespace only the mapped group can be named).
const NATIVE_SETUP: &str = "{ sysctl -qw net.ipv4.ping_group_range='0 2147483647' 2>/dev/null || \
     sysctl -qw net.ipv4.ping_group_range=\"$(id -g) $(id -g)\"; } && \
     ip link set lo up && ip addr add 10.0.0.2/24 dev lo && \
     ip -6 addr add fd00::2/64 dev lo nodad && exec \"$0\" \"$1\"";

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("differential")
}

/// What one run of a case produced.
struct Run {
    /// `None` if the run was killed at the deadline.
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn describe_status(&self) -> String {
        match self.status {
            None => format!("killed after {}s", DEADLINE.as_secs()),
            Some(s) => match (s.code(), s.signal()) {
                (Some(code), _) => format!("exit {code}"),
                (None, Some(sig)) => format!("killed by signal {sig}"),
                _ => format!("{s}"),
            },
        }
    }

    fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// A started run: the child (leader of its own process group) and the threads
/// draining its output.
struct Started {
    child: Child,
    out: JoinHandle<String>,
    err: JoinHandle<String>,
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn start(mut command: Command) -> Started {
    command
        .current_dir(cases_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONIOENCODING", "utf-8")
        .env_remove("NETVM_CONFIG")
        .env_remove("NETVM_LOG")
        .process_group(0);
    let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let out = drain(child.stdout.take().expect("piped stdout"));
    let err = drain(child.stderr.take().expect("piped stderr"));
    Started { child, out, err }
}

/// Waits for a started run, killing its whole process group at the deadline.
fn finish(mut started: Started, since: Instant) -> Run {
    let status = loop {
        match started.child.try_wait().expect("waitpid") {
            Some(status) => break Some(status),
            None if since.elapsed() >= DEADLINE => {
                let group = started.child.id() as i32;
                // SAFETY: signalling the process group this test created and leads.
                unsafe { libc::kill(-group, libc::SIGKILL) };
                let _ = started.child.wait();
                break None;
            }
            None => thread::sleep(Duration::from_millis(10)),
        }
    };
    if status.is_some() {
        // Anything the case left behind in its group goes too, so the pipes close.
        // SAFETY: as above; the group may already be gone (ESRCH is harmless).
        unsafe { libc::kill(-(started.child.id() as i32), libc::SIGKILL) };
    }
    Run {
        status,
        stdout: started.out.join().unwrap_or_default(),
        stderr: started.err.join().unwrap_or_default(),
    }
}

fn native_command(case: &Path) -> Command {
    let mut command = Command::new("unshare");
    // Root gets a network namespace; anyone else a user namespace around it.
    command.arg(if is_root() { "-n" } else { "-rn" });
    command.args(["sh", "-c", NATIVE_SETUP, "python3"]).arg(case);
    command
}

fn netvm_command(config: &Path, case: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_netvm"));
    command.arg("run").arg("--config").arg(config).args(["--", "python3"]).arg(case);
    command
}

/// A configuration file that lives as long as the test.
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(case: &str) -> Self {
        let path = std::env::temp_dir()
            .join(format!("netvm-differential-{}-{case}.toml", std::process::id()));
        std::fs::write(&path, CONFIG).expect("write the netvm configuration");
        Self(path)
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn show_run(label: &str, run: &Run) -> String {
    format!(
        "--- {label}: {}\n--- {label} stdout\n{}--- {label} stderr\n{}",
        run.describe_status(),
        run.stdout,
        run.stderr
    )
}

/// The lines where two transcripts differ, as a readable report.
fn differences(case: &str, native: &str, netvm: &str) -> Vec<String> {
    let a: Vec<&str> = native.lines().collect();
    let b: Vec<&str> = netvm.lines().collect();
    let mut report = Vec::new();
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i).copied(), b.get(i).copied());
        if x != y {
            report.push(format!(
                "{case}.py line {}:\n    native: {}\n    netvm:  {}",
                i + 1,
                x.unwrap_or("<no line>"),
                y.unwrap_or("<no line>")
            ));
        }
    }
    report
}

/// Runs case `name` natively and under netvm and compares the transcripts.
fn check(name: &str, flags: Flags) {
    if flags.root_only && !is_root() {
        return skip("needs root: the case compares what root may do");
    }
    let case = cases_dir().join(format!("{name}.py"));
    assert!(case.is_file(), "no case file {}", case.display());
    let config = TempConfig::new(name);

    // The two worlds share nothing, so both runs go at once.
    let since = Instant::now();
    let native = start(native_command(&case));
    let virt = start(netvm_command(&config.0, &case));
    let native = finish(native, since);
    let virt = finish(virt, since);

    assert!(
        native.succeeded() && !native.stdout.trim().is_empty(),
        "{name}: the native baseline is broken (it must exit 0 and print observations)\n{}",
        show_run("native", &native)
    );
    assert!(
        !virt.stderr.contains("panicked"),
        "{name}: netvm panicked\n{}",
        show_run("netvm", &virt)
    );
    let diffs = differences(name, &native.stdout, &virt.stdout);
    if flags.differs {
        return check_documented(name, &diffs.join("\n"), &virt);
    }
    if !diffs.is_empty() || !virt.succeeded() {
        const SHOWN: usize = 60;
        let more = diffs.len().saturating_sub(SHOWN);
        panic!(
            "{name}: netvm differs from Linux ({} of {} lines differ; netvm: {})\n{}{}\n--- netvm stderr\n{}",
            diffs.len(),
            native.stdout.lines().count(),
            virt.describe_status(),
            diffs[..diffs.len().min(SHOWN)].join("\n"),
            if more > 0 { format!("\n... and {more} more") } else { String::new() },
            virt.stderr
        );
    }
}

/// How a case is checked: `root_only` runs only as root; `differs` marks a
/// documented difference of the carrier (see the module docs): the case's
/// differences from Linux must be exactly those recorded in
/// `tests/differential/CASE.difference`, so that any change shows.
#[derive(Clone, Copy, Default)]
struct Flags {
    root_only: bool,
    differs: bool,
}

impl Flags {
    fn of(names: &[&str]) -> Self {
        let mut flags = Self::default();
        for name in names {
            match *name {
                "root_only" => flags.root_only = true,
                "differs" => flags.differs = true,
                other => panic!("unknown case flag {other}"),
            }
        }
        flags
    }
}

/// Asserts that case `name`'s differences from Linux, `diffs`, are the ones
/// recorded in its `.difference` file. `NETVM_RECORD_DIFFERENCES=1` writes
/// the file instead (review the diff before committing it).
fn check_documented(name: &str, diffs: &str, virt: &Run) {
    let path = cases_dir().join(format!("{name}.difference"));
    if std::env::var_os("NETVM_RECORD_DIFFERENCES").is_some() {
        std::fs::write(&path, format!("{diffs}\n")).expect("write the .difference file");
        return;
    }
    let recorded = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(virt.succeeded(), "{name}: netvm failed ({})\n{}", virt.describe_status(), virt.stderr);
    assert!(!diffs.is_empty(), "{name}: netvm now answers as Linux: make it an ordinary case");
    assert_eq!(
        recorded.trim_end(),
        diffs,
        "{name}: the difference from Linux changed (recorded in {}; \
         NETVM_RECORD_DIFFERENCES=1 records the new one)",
        path.display()
    );
}

macro_rules! cases {
    ($($(#[$attr:meta])* $name:ident $(($($flag:ident),+))?,)*) => {
        /// Every case this file runs.
        const CASES: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            $(#[$attr])*
            fn $name() {
                check(stringify!($name), Flags::of(&[$($(stringify!($flag)),+)?]));
            }
        )*
    };
}

cases! {
    accept4_flags,
    accept_edges,
    accept_names,
    accept_not_listening,
    accept_timeout,
    addresses_raw,
    argument_order,
    bind,
    bind_ephemeral,
    bind_freebind,
    bind_loopback_net,
    bind_port_range,
    bind_special,
    bind_twice,
    bind_v4mapped,
    bind_v6only_port,
    /// carrier: a closed listener's carrier still listens (polls 0, Linux: POLLOUT|POLLHUP) and its waiting connection ends without a reset (Linux: ECONNRESET)
    carrier_listener_closed(differs),
    /// carrier: send() without an address runs natively on the AF_UNIX carrier, which says ENOTCONN (Linux: EDESTADDRREQ)
    carrier_send_unaddressed(differs),
    /// carrier: a plain recv() runs natively, and the carrier can only hold ECONNRESET (Linux: ECONNREFUSED after a port unreachable)
    carrier_udp_refused_recv(differs),
    /// carrier: AF_UNSPEC does not abort a connected socket (no reset for the peer, connecting again is EISCONN)
    carrier_unspec_connected(differs),
    closed_state,
    connect,
    connect_again,
    connect_listener_just_closed,
    connect_refused_nonblocking,
    #[ignore = "netvm differs: connecting a TCP socket to its own bound address is ECONNREFUSED (Linux: a simultaneous open connects it to itself)"]
    connect_self,
    connect_unspec_tcp,
    dontwait,
    epoll_et_arrivals,
    fionread_udp,
    fork_dup_scm,
    implicit_bind_edges,
    interrupted_answers,
    interrupts,
    ioctl,
    ioctl_outq,
    listen_accept,
    listen_backlog,
    #[ignore = "netvm differs: a listener with backlog 0 and one queued connection completes a second client's connect (Linux: the SYN is dropped, the connect stays in progress)"]
    listen_backlog_full,
    opt_bindtodevice,
    opt_bool,
    opt_inherit_socket,
    opt_ip_char,
    opt_keepalive,
    opt_kinds,
    opt_linger,
    opt_multicast,
    opt_peercred,
    opt_priority,
    opt_priority_tos,
    opt_rcvbuf,
    /// carrier: poll and select run natively, and an AF_UNIX stream reports readable below SO_RCVLOWAT
    opt_rcvlowat(differs),
    opt_short_len,
    opt_sndbuf,
    opt_sndtimeo_send,
    opt_tclass,
    opt_timeo,
    /// carrier: send() on a connected UDP socket runs natively, datagram by datagram: UDP_CORK is kept but cannot join them
    opt_udp_cork(differs),
    opt_udp_level,
    /// carrier: the program's close reaches the peer's AF_UNIX carrier as a full close: POLLHUP at once and EPIPE on the next send (Linux: only a FIN; the first send goes, the reset comes back)
    peer_close(differs),
    ping_bound,
    ping_disconnect,
    raw_icmp6_destinations(root_only),
    ping_echo,
    ping_errors,
    ping_recvttl,
    poll_listener,
    poll_listener_et,
    poll_pair,
    poll_shutdown_wr,
    readiness,
    /// carrier: an AF_UNIX socket polls POLLWRBAND with POLLOUT (TCP does not)
    readiness_bits(differs),
    readv_writev,
    reset,
    /// carrier: close with SO_LINGER {1, 0} runs natively and an AF_UNIX close cannot send a reset (Linux: the peer gets ECONNRESET and POLLERR)
    reset_linger(differs),
    reuse,
    select_many,
    sendfile_tcp,
    shutdown,
    shutdown_other,
    sigpipe,
    socket_create,
    socket_privilege(root_only),
    socket_raw(root_only),
    sockname_fresh,
    sockopt,
    sockopt_details,
    stream_data,
    tcp_full_buffer,
    tcp_info_state,
    tcp_oob,
    tcp_peek,
    /// carrier: recv(MSG_TRUNC) runs natively and an AF_UNIX stream copies the bytes (Linux TCP discards them without copying)
    tcp_trunc(differs),
    tcp_waitall,
    /// carrier: closes run natively, so netvm cannot tell which side closed first; no TIME_WAIT, the port can be bound again at once
    time_wait(differs),
    udp,
    udp_addressing,
    udp_broadcast,
    udp_closed_port,
    udp_connect_self,
    udp_connected_filter,
    udp_connected_sendto,
    udp_disconnect_bound,
    udp_mapped_addresses,
    udp_mmsg,
    udp_mmsg_counts,
    udp_msg_oob,
    udp_origdstaddr,
    udp_pktinfo,
    udp_recv_ttl_tos,
    udp_sendmsg,
    udp_sendto_family,
    udp_silent,
    udp_size_limit,
    udp_trunc_peek,
    udp_unreachable,
    udp_zero_length,
    /// carrier: recv/send on an unconnected TCP socket run natively: AF_UNIX says EINVAL/ENOTCONN (Linux: ENOTCONN/EPIPE with SIGPIPE)
    unconnected_io(differs),
    v4mapped,
}

#[test]
fn every_case_file_has_a_test() {
    let mut files: Vec<String> = std::fs::read_dir(cases_dir())
        .expect("read tests/differential")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".py")?;
            (stem != "lib").then(|| stem.to_string())
        })
        .collect();
    files.sort();
    let mut listed: Vec<String> = CASES.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed, "tests/differential/*.py and the cases! list disagree");
}
