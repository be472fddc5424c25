//! A tiny fake internet for the tests of netvm's NAT uplink.
//!
//! netvm's uplink sends a stack's traffic out through the host it runs on. To test
//! that without the real internet (absent in CI, and never the same twice), a
//! [`World`] builds two network namespaces joined by a veth:
//!
//! ```text
//!   H (the host netvm runs on)                    W (the internet)
//!   192.0.2.1/24, 2001:db8::1/64   eth0 --- eth0   192.0.2.2/24, 2001:db8::2/64
//!   default routes via W                           web (80), DNS (53), echo (7)
//!   resolv.conf: nameserver 192.0.2.2
//! ```
//!
//! H has no way off the machine but W, and W has no route anywhere but H's link,
//! so whatever reaches W's servers went through H's routes. W answers ICMP with its
//! kernel and runs a web server (an index page and a file of random bytes), a DNS
//! server knowing `web.test`, and a TCP and UDP echo server; [`World::start_capture`]
//! records W's side of the link with tcpdump.
//!
//! Like [`super::on_two_linux_hosts`], a world needs root for `ip netns` and calls
//! [`skip`] without it (or without dnsmasq); names carry the test binary's pid and a
//! counter, so worlds of parallel tests and binaries never meet. Dropping a world
//! kills what it started (by pid and process group, never by name) and removes its
//! namespaces, its `/etc/netns` directory and its files.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::marker::PhantomData;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use super::{
    NETVM, NO_UPLINK, PRELUDE, Session, TempDir, User, is_root, path_str, python, run, skip,
};

/// H's address on its link to W.
pub const HOST_V4: &str = "192.0.2.1";
/// H's IPv6 address on its link to W.
pub const HOST_V6: &str = "2001:db8::1";
/// W's address: H's IPv4 gateway, and where W's servers listen.
pub const INTERNET_V4: &str = "192.0.2.2";
/// W's IPv6 address: H's IPv6 gateway, and where W's servers listen.
pub const INTERNET_V6: &str = "2001:db8::2";
/// The name W's DNS server resolves to [`INTERNET_V4`] and [`INTERNET_V6`].
pub const WEB_NAME: &str = "web.test";
/// The port of W's TCP and UDP echo servers.
pub const ECHO_PORT: u16 = 7;
/// The name of the veth's end in each namespace.
pub const LINK: &str = "eth0";
/// The address of the stub resolver [`World::start_stub_resolver`] runs in H.
pub const STUB_RESOLVER: &str = "127.0.0.53";

/// What `http://web.test/` serves.
const INDEX_BODY: &str =
    "<!doctype html>\n<title>web.test</title>\n<p>Hello from the fake internet.\n";
/// The size of `http://web.test/big` unless the test asks for another.
const DEFAULT_BIG_SIZE: u64 = 1 << 20;
/// How long a server may take to listen, or tcpdump to start.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often readiness is polled.
const POLL: Duration = Duration::from_millis(20);

/// W's TCP and UDP echo servers on [`ECHO_PORT`], each one socket taking IPv4 and
/// IPv6; UDP echoes datagrams up to 65,535 bytes (socketserver's default is 8,192).
const ECHO_SERVER: &str = r#"
import socket, socketserver, threading

class DualStack:
    address_family = socket.AF_INET6
    allow_reuse_address = True
    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

class Udp(DualStack, socketserver.UDPServer):
    max_packet_size = 65535

class Tcp(DualStack, socketserver.ThreadingTCPServer):
    daemon_threads = True

class EchoDatagram(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        sock.sendto(data, self.client_address)

class EchoStream(socketserver.BaseRequestHandler):
    def handle(self):
        while chunk := self.request.recv(65536):
            self.request.sendall(chunk)

udp = Udp(("::", 7), EchoDatagram)
threading.Thread(target=udp.serve_forever, daemon=True).start()
Tcp(("::", 7), EchoStream).serve_forever()
"#;

/// The path of `program` (searched in `PATH`, then in the `sbin` directories root's
/// `PATH` has but another's may lack), or `None` after [`skip`] names `package`.
pub fn needs_program(program: &str, package: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let sbin = ["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from);
    let found =
        std::env::split_paths(&path).chain(sbin).map(|dir| dir.join(program)).find(|file| {
            file.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        });
    if found.is_none() {
        skip(&format!("needs {program} ({package})"));
    }
    found
}

/// Two network namespaces making a fake internet: H, where netvm is to run, and W,
/// the internet, with its servers running (see the module's documentation).
/// Everything goes on drop.
pub struct World {
    host: String,
    internet: String,
    /// `/etc/netns/<H>`, whose files `ip netns exec` mounts over `/etc`'s.
    etc: PathBuf,
    /// The web root, the servers' logs and the captures.
    dir: TempDir,
    big_size: u64,
    big_sha256: OnceLock<String>,
    /// Numbers the captures' files.
    captures: AtomicUsize,
    servers: Vec<Daemon>,
    /// The DNS servers' program.
    dnsmasq: PathBuf,
}

impl World {
    /// A world whose `http://web.test/big` has 1 MiB; `None` (after [`skip`]) where
    /// it cannot be built: not root, or no dnsmasq.
    pub fn new() -> Option<Self> {
        Self::with_big_file(DEFAULT_BIG_SIZE)
    }

    /// A world whose `http://web.test/big` has `big_size` random bytes; `None` (after
    /// [`skip`]) where it cannot be built: not root, or no dnsmasq.
    pub fn with_big_file(big_size: u64) -> Option<Self> {
        if !is_root() {
            skip("the fake internet needs root (ip netns)");
            return None;
        }
        let dnsmasq = needs_program("dnsmasq", "dnsmasq-base")?;
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let host = format!("nvw-h-{pid}-{n}");
        // Built in place, so that a failure half-way drops (and undoes) what was done.
        let mut world = Self {
            etc: Path::new("/etc/netns").join(&host),
            internet: format!("nvw-w-{pid}-{n}"),
            host,
            dir: TempDir::new("world"),
            big_size,
            big_sha256: OnceLock::new(),
            captures: AtomicUsize::new(0),
            servers: Vec::new(),
            dnsmasq,
        };
        world.build_network();
        world.write_etc();
        world.fill_web_root();
        world.start_servers();
        Some(world)
    }

    /// The name of H, the namespace netvm is to run in.
    pub fn host_ns(&self) -> &str {
        &self.host
    }

    /// The name of W, the namespace of the internet's servers.
    pub fn internet_ns(&self) -> &str {
        &self.internet
    }

    /// A command running `program args...` in H (`ip netns exec`, which mounts H's
    /// `resolv.conf` over `/etc/resolv.conf`), with no standard input unless the
    /// caller gives one.
    pub fn in_host<S: AsRef<OsStr>>(
        &self,
        program: impl AsRef<OsStr>,
        args: impl IntoIterator<Item = S>,
    ) -> Command {
        in_namespace(&self.host, program, args)
    }

    /// A command running `program args...` in W, as [`World::in_host`] does in H.
    pub fn in_internet<S: AsRef<OsStr>>(
        &self,
        program: impl AsRef<OsStr>,
        args: impl IntoIterator<Item = S>,
    ) -> Command {
        in_namespace(&self.internet, program, args)
    }

    /// What `http://web.test/` (`/index.html`) serves.
    pub fn index_body(&self) -> &'static str {
        INDEX_BODY
    }

    /// The size of `http://web.test/big` in bytes.
    pub fn big_size(&self) -> u64 {
        self.big_size
    }

    /// The SHA-256 of `http://web.test/big`, in lowercase hex as `sha256sum`
    /// prints it (computed at the first call).
    pub fn big_sha256(&self) -> &str {
        self.big_sha256.get_or_init(|| {
            let mut command = Command::new("sha256sum");
            command.arg(self.dir.path().join("www/big"));
            let output = run(command);
            output.assert_code(0);
            output.stdout.split_whitespace().next().expect("sha256sum prints a digest").to_owned()
        })
    }

    /// Starts recording W's end of the link (`tcpdump -i eth0 -n -U -w FILE` in W),
    /// returning once tcpdump says it is listening.
    pub fn start_capture(&self) -> Capture<'_> {
        let n = self.captures.fetch_add(1, Ordering::Relaxed);
        // `.pcap`: AppArmor's tcpdump profile lets it write files so named.
        let file = self.dir.path().join(format!("capture-{n}.pcap"));
        // `-Z root`: tcpdump would otherwise open the file as user tcpdump, who may
        // not write here; `--immediate-mode`: each packet is read as it comes, so
        // that what happened before `stop` is in the file.
        let args =
            ["-i", LINK, "-n", "-U", "--immediate-mode", "-Z", "root", "-w", path_str(&file)];
        let log = self.log(&format!("capture-{n}"));
        let mut tcpdump = Daemon::spawn(&self.internet, "tcpdump", "tcpdump", args, &log);
        wait_until("tcpdump to listen", &mut [&mut tcpdump], || {
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            if said.contains("listening on") { Ok(()) } else { Err(format!("it said {said:?}")) }
        });
        Capture { _world: PhantomData, file, tcpdump: Mutex::new(Some(tcpdump)) }
    }

    /// A session of netvm's built-in configuration, with its uplink, started
    /// in H by `user` with `netvm run` options `run_args` (netvm itself run by
    /// `prefix`, like `prlimit ...`, if given), running `script` with `sh -c`
    /// (`$N` is netvm, and [`PRELUDE`]'s functions are defined); left running.
    pub fn netvm_session(
        &self,
        prefix: &[&str],
        user: User,
        run_args: &[&str],
        script: &str,
    ) -> Session {
        let script = format!("N='{NETVM}'\n{PRELUDE}\n{script}");
        let mut args: Vec<&str> = prefix.to_vec();
        if user == User::Unprivileged && is_root() {
            args.extend(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
        }
        args.extend([NETVM, "run"]);
        args.extend(run_args);
        args.extend(["--", "sh", "-c", &script]);
        let mut command = self.in_host(args[0], &args[1..]);
        command.env_remove(NO_UPLINK.0).env_remove("NETVM_CONFIG").current_dir("/");
        Session::spawn(command)
    }

    /// Lets every group of H open ping sockets, as a desktop distribution does
    /// (a fresh namespace lets none: `net.ipv4.ping_group_range` is "1 0").
    pub fn allow_ping_sockets(&self) {
        let range = "net.ipv4.ping_group_range=0 2147483647";
        run(self.in_host("sysctl", ["-qw", range])).assert_code(0);
    }

    /// Starts a caching-free stub resolver on [`STUB_RESOLVER`] in H (dnsmasq, as
    /// systemd-resolved's 127.0.0.53 is on many hosts), forwarding to W's DNS server,
    /// and points H's `resolv.conf` to it; dropping the stub undoes both.
    pub fn start_stub_resolver(&self) -> StubResolver<'_> {
        let args =
            dnsmasq_args(STUB_RESOLVER, &[&format!("--server={INTERNET_V4}"), "--cache-size=0"]);
        let mut daemon =
            Daemon::spawn(&self.host, "the stub resolver", &self.dnsmasq, args, &self.log("stub"));
        let udp = format!("{STUB_RESOLVER}:53");
        wait_until("the stub resolver to listen", &mut [&mut daemon], || {
            missing_listeners(&self.host, &[("udp", &udp), ("tcp", &udp)])
        });
        self.write_resolv_conf(STUB_RESOLVER).expect("point H's resolv.conf to the stub");
        StubResolver { world: self, _daemon: daemon }
    }

    /// Makes both namespaces, the veth between them, their addresses and H's routes.
    fn build_network(&self) {
        let (h, w) = (self.host.as_str(), self.internet.as_str());
        // Left by a killed test binary that had the same pid: no live one can have it.
        for ns in [h, w] {
            let _ = Command::new("ip").args(["netns", "del", ns]).stderr(Stdio::null()).status();
        }
        ip(&["netns", "add", h]);
        ip(&["netns", "add", w]);
        ip(&["link", "add", LINK, "netns", h, "type", "veth", "peer", "name", LINK, "netns", w]);
        for ns in [h, w] {
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&["-n", ns, "link", "set", LINK, "up"]);
        }
        for (ns, v4, v6) in [(h, HOST_V4, HOST_V6), (w, INTERNET_V4, INTERNET_V6)] {
            ip(&["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", LINK]);
            ip(&["-n", ns, "addr", "add", &format!("{v6}/64"), "dev", LINK, "nodad"]);
        }
        ip(&["-n", h, "route", "add", "default", "via", INTERNET_V4]);
        ip(&["-n", h, "-6", "route", "add", "default", "via", INTERNET_V6]);
    }

    /// Writes H's `/etc/netns` files: `resolv.conf` naming W's DNS server and, where
    /// the host has an `nsswitch.conf`, a copy of it looking names up in
    /// `/etc/hosts` and DNS only, so that no NSS module (systemd-resolved's,
    /// mDNS) answers from outside H.
    fn write_etc(&self) {
        let _ = std::fs::remove_dir_all(&self.etc);
        std::fs::create_dir_all(&self.etc)
            .unwrap_or_else(|e| panic!("mkdir {}: {e}", self.etc.display()));
        self.write_resolv_conf(INTERNET_V4).expect("write H's resolv.conf");
        if let Ok(nsswitch) = std::fs::read_to_string("/etc/nsswitch.conf") {
            let hosts = |line: &str| line.trim_start().starts_with("hosts:");
            let mut ours: String = nsswitch
                .lines()
                .filter(|line| !hosts(line))
                .map(|line| format!("{line}\n"))
                .collect();
            ours.push_str("hosts: files dns\n");
            write_file(&self.etc.join("nsswitch.conf"), &ours);
        }
    }

    /// Points H's `resolv.conf` to `nameserver`, rewriting the file in place so that
    /// processes already running in H (which mounted it) see the change.
    fn write_resolv_conf(&self, nameserver: &str) -> std::io::Result<()> {
        std::fs::write(self.etc.join("resolv.conf"), format!("nameserver {nameserver}\n"))
    }

    /// Writes the web server's `index.html` and `big` (random bytes).
    fn fill_web_root(&self) {
        let www = self.dir.path().join("www");
        std::fs::create_dir(&www).expect("mkdir www");
        write_file(&www.join("index.html"), INDEX_BODY);
        let mut random = File::open("/dev/urandom").expect("open /dev/urandom").take(self.big_size);
        let mut big = File::create(www.join("big")).expect("create big");
        let copied = std::io::copy(&mut random, &mut big).expect("write big");
        assert_eq!(copied, self.big_size, "/dev/urandom ran short");
    }

    /// Starts W's web, DNS and echo servers and waits until each listens.
    fn start_servers(&mut self) {
        let www = self.dir.path().join("www");
        let web_args = ["-m", "http.server", "80", "--bind", "::", "--directory", path_str(&www)];
        let web =
            Daemon::spawn(&self.internet, "the web server", python(), web_args, &self.log("web"));
        let host_record = format!("--host-record={WEB_NAME},{INTERNET_V4},{INTERNET_V6}");
        let dns_args = dnsmasq_args(
            &format!("{INTERNET_V4},{INTERNET_V6}"),
            &[&host_record, "--local=/test/"],
        );
        let dns = Daemon::spawn(
            &self.internet,
            "the DNS server",
            &self.dnsmasq,
            dns_args,
            &self.log("dns"),
        );
        let echo_args = ["-c", ECHO_SERVER];
        let echo = Daemon::spawn(
            &self.internet,
            "the echo server",
            python(),
            echo_args,
            &self.log("echo"),
        );
        self.servers = vec![web, dns, echo];
        let (dns_v4, dns_v6) = (format!("{INTERNET_V4}:53"), format!("[{INTERNET_V6}]:53"));
        let echo = format!("*:{ECHO_PORT}");
        // `*`: one socket taking IPv4 and IPv6 (`[::]` would be IPv6 only).
        let expected = [
            ("tcp", "*:80"),
            ("udp", dns_v4.as_str()),
            ("tcp", &dns_v4),
            ("udp", &dns_v6),
            ("tcp", &dns_v6),
            ("udp", &echo),
            ("tcp", &echo),
        ];
        let internet = self.internet.clone();
        let mut servers: Vec<&mut Daemon> = self.servers.iter_mut().collect();
        wait_until("the internet's servers to listen", &mut servers, || {
            missing_listeners(&internet, &expected)
        });
    }

    /// The log file of the process called `name`.
    fn log(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // The servers first: a namespace lives on while a process is in it.
        self.servers.clear();
        for ns in [&self.host, &self.internet] {
            let _ = Command::new("ip").args(["netns", "del", ns]).stderr(Stdio::null()).status();
        }
        let _ = std::fs::remove_dir_all(&self.etc);
        // The temporary directory goes with its field.
    }
}

/// A tcpdump recording W's end of the link, from [`World::start_capture`].
pub struct Capture<'w> {
    /// The file lives in the world's directory: the capture must not outlive it.
    _world: PhantomData<&'w World>,
    file: PathBuf,
    /// `None` once stopped.
    tcpdump: Mutex<Option<Daemon>>,
}

impl Capture<'_> {
    /// Stops recording and returns the pcap file, which lasts as long as the world.
    pub fn stop(self) -> PathBuf {
        self.finish();
        self.file.clone()
    }

    /// What `tcpdump -r FILE -n FILTER` prints of the capture (one line a packet),
    /// stopping the capture first if it still runs; `""` as the filter reads all.
    pub fn read(&self, filter: &str) -> String {
        self.finish();
        read_pcap(&self.file, filter)
    }

    /// Stops tcpdump once what it has been given stops growing the file (tcpdump
    /// drops what it has not read when interrupted), and waits for it to end.
    fn finish(&self) {
        let mut tcpdump = self.tcpdump.lock().unwrap_or_else(|e| e.into_inner());
        let Some(mut daemon) = tcpdump.take() else { return };
        let size = || self.file.metadata().map(|m| m.len()).unwrap_or(0);
        let (start, mut last, mut since) = (Instant::now(), size(), Instant::now());
        while since.elapsed() < Duration::from_millis(100)
            && start.elapsed() < Duration::from_secs(2)
        {
            thread::sleep(Duration::from_millis(10));
            let now = size();
            if now != last {
                (last, since) = (now, Instant::now());
            }
        }
        daemon.interrupt_and_wait();
    }
}

/// What `tcpdump -r FILE -n FILTER` prints of the capture `file`, as from
/// [`Capture::stop`]; `""` as the filter reads all.
pub fn read_pcap(file: &Path, filter: &str) -> String {
    let mut command = Command::new("tcpdump");
    command.arg("-r").arg(file).arg("-n");
    if !filter.is_empty() {
        command.arg(filter);
    }
    let output = run(command);
    output.assert_code(0);
    output.stdout
}

/// The stub resolver of [`World::start_stub_resolver`]; dropping it stops it and
/// points H's `resolv.conf` back to W's DNS server.
pub struct StubResolver<'w> {
    world: &'w World,
    _daemon: Daemon,
}

impl Drop for StubResolver<'_> {
    fn drop(&mut self) {
        // Ignoring a failure: a panic in a drop during a panic would abort the tests.
        let _ = self.world.write_resolv_conf(INTERNET_V4);
    }
}

/// A server or tcpdump a world started in one of its namespaces: the leader of its
/// own process group (`ip netns exec` executes the program, keeping the pid), its
/// output in a log file. Dropping it kills the group.
struct Daemon {
    what: String,
    child: Child,
    log: PathBuf,
    /// Whether the child has been waited for, after which its pid is no longer ours.
    reaped: bool,
}

impl Daemon {
    /// Starts `program args...` in `namespace` as `what` (for messages), its output
    /// going to `log`.
    fn spawn<S: AsRef<OsStr>>(
        namespace: &str,
        what: &str,
        program: impl AsRef<OsStr>,
        args: impl IntoIterator<Item = S>,
        log: &Path,
    ) -> Self {
        let out = File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let err = out.try_clone().expect("dup the log");
        let mut command = in_namespace(namespace, program, args);
        command.stdout(out).stderr(err).process_group(0);
        let child =
            command.spawn().unwrap_or_else(|e| panic!("cannot start {what} ({command:?}): {e}"));
        Self { what: what.to_owned(), child, log: log.to_owned(), reaped: false }
    }

    /// Fails the test if the process has ended.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            self.reaped = true;
            panic!(
                "{} ended ({status}) before it was ready; its output:\n{}",
                self.what,
                self.output()
            );
        }
    }

    /// What the process has printed so far.
    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGINT (after which tcpdump writes out what it has and ends) and waits
    /// for the process, killing its group if it takes long.
    fn interrupt_and_wait(&mut self) {
        let _ = kill(self.pid(), Signal::SIGINT);
        let start = Instant::now();
        while start.elapsed() < READY_TIMEOUT {
            if self.child.try_wait().expect("try_wait").is_some() {
                self.reaped = true;
                return;
            }
            thread::sleep(Duration::from_millis(5));
        }
        self.kill_group();
    }

    /// Kills the process's group and waits for the process.
    fn kill_group(&mut self) {
        if self.reaped {
            return;
        }
        // Before the wait: until then the (perhaps dead) leader keeps its pid, so
        // the group cannot be another's.
        let _ = killpg(self.pid(), Signal::SIGKILL);
        let _ = self.child.wait();
        self.reaped = true;
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// A command running `program args...` in `namespace`, with no standard input.
fn in_namespace<S: AsRef<OsStr>>(
    namespace: &str,
    program: impl AsRef<OsStr>,
    args: impl IntoIterator<Item = S>,
) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", namespace]).arg(program).args(args).stdin(Stdio::null());
    command
}

/// Runs `ip args...`, failing the test if it fails.
fn ip(args: &[&str]) {
    let output = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        output.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Writes `contents` to `file`, failing the test if it cannot.
fn write_file(file: &Path, contents: &str) {
    std::fs::write(file, contents).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
}

/// dnsmasq's arguments for a DNS server on `addresses` (comma-separated) with
/// `extra` arguments, touching none of the host's files: no configuration file,
/// `/etc/hosts` or `resolv.conf` read, no pid file written, no syslog. In the
/// foreground (`--no-daemon`, which also keeps root: no user to change to), its
/// log (queries included) on standard error.
fn dnsmasq_args(addresses: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--no-daemon",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--pid-file=",
        "--log-facility=-",
        "--log-queries",
        "--bind-interfaces",
    ]
    .map(String::from)
    .to_vec();
    args.push(format!("--listen-address={addresses}"));
    args.extend(extra.iter().map(|arg| arg.to_string()));
    args
}

/// `Ok` when `ss` shows, in `namespace`, a socket for each `(netid, local address)`
/// of `expected` (as `ss -Hlntu` prints them: `tcp`, `*:80`); otherwise what is
/// missing and what `ss` showed.
fn missing_listeners(namespace: &str, expected: &[(&str, &str)]) -> Result<(), String> {
    let output = Command::new("ss").args(["-N", namespace, "-Hlntu"]).output().expect("run ss");
    let text = String::from_utf8_lossy(&output.stdout);
    let listening: Vec<(&str, String)> = text
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            Some((*fields.first()?, without_device(fields.get(4)?)))
        })
        .collect();
    let missing: Vec<String> = expected
        .iter()
        .filter(|(netid, local)| !listening.iter().any(|(n, l)| n == netid && l == local))
        .map(|(netid, local)| format!("{netid} {local}"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("not listening: {}; ss -lntu shows:\n{text}", missing.join(", ")))
    }
}

/// `ADDRESS:PORT` from ss's `ADDRESS%DEVICE:PORT`, for sockets bound to a device.
fn without_device(local: &str) -> String {
    match (local.find('%'), local.rfind(':')) {
        (Some(percent), Some(colon)) if percent < colon => {
            format!("{}{}", &local[..percent], &local[colon..])
        }
        _ => local.to_owned(),
    }
}

/// Polls `ready` until it is `Ok`, failing the test after [`READY_TIMEOUT`] (with
/// what `ready` last said) or as soon as one of `daemons` ends (with its output).
fn wait_until(
    what: &str,
    daemons: &mut [&mut Daemon],
    mut ready: impl FnMut() -> Result<(), String>,
) {
    let start = Instant::now();
    loop {
        for daemon in daemons.iter_mut() {
            daemon.assert_running();
        }
        let why_not = match ready() {
            Ok(()) => return,
            Err(why_not) => why_not,
        };
        if start.elapsed() > READY_TIMEOUT {
            let outputs: String = daemons
                .iter()
                .map(|daemon| format!("--- {}:\n{}", daemon.what, daemon.output()))
                .collect();
            panic!("gave up waiting {READY_TIMEOUT:?} for {what}: {why_not}\n{outputs}");
        }
        thread::sleep(POLL);
    }
}
