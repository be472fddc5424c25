//! The `netvm` command line.

use std::ffi::{CString, OsString};
use std::fmt::Write as _;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use nix::unistd::Pid;

use netvm::config::{self, Origin};
use netvm::modules::boundary::Boundary;
use netvm::modules::trace::TraceLog;
use netvm::modules::vunet::control::{self, Reply, Request};
use netvm::modules::vunet::uplink::AuditLog;
use netvm::modules::vunet::uplink::forward::Publish;
use netvm::modules::vunet::uplink::policy::{Rule, Verdict};
use netvm::modules::vunet::{self, Vunet, status};
use netvm::modules::{Config, Dispatcher, Module};
use netvm::sandbox::{self, Fence};
use netvm::supervisor;
use netvm::tracer::launch::Command;

/// Exit status for netvm's own failures (bad usage, bad configuration), as `env`
/// and `timeout` use it; 126 and 127 keep the shell's meaning.
const OWN_FAILURE: u8 = 125;

#[derive(Parser)]
#[command(
    name = "netvm",
    version,
    about = "Run unmodified programs with their network virtualized",
    long_about = "netvm runs unmodified Linux programs under ptrace with their network \
        virtualized. Only socket calls stop in netvm; reads, writes and readiness run in \
        the kernel at native speed. Each mounted stack is an independent network: its own \
        sockets, ports and addresses.",
    after_help = "Examples:\n  \
        netvm run -- curl http://example.org/      run curl on the default stack\n  \
        netvm run --stack none -- ./untrusted      no network at all\n  \
        netvm run --trace -- nc -l 8080            show every socket call\n  \
        netvm stacks                               list the stacks you can choose\n  \
        netvm stack none -- ./untrusted            (inside a session) move to stack `none`\n  \
        netvm status                               show a session's stacks and sockets"
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Run a command (and everything it starts) on a virtual network stack.
    #[command(after_help = "Exit status: the command's own, 128+N if signal N killed it, \
        125 if netvm itself failed, 126 if the command cannot run, 127 if it is not found.")]
    Run(Box<RunArgs>),
    /// List the stacks the configuration mounts, and where it was read from.
    Stacks {
        /// Read this configuration instead of the usual places.
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Inside a session: move to another of its stacks and run a command there.
    #[command(
        long_about = "Inside a netvm session: move this process to the session's stack \
            NAME, then execute CMD in its place (as `exec` does), so CMD and everything it \
            starts run on NAME. The stack must be one the session mounts (see `netvm \
            status`). Outside a session there is nothing to move: use `netvm run --stack \
            NAME -- CMD`.",
        after_help = "Examples, in a shell started with `netvm run -- bash`:\n  \
            netvm stack none -- ./untrusted         run ./untrusted with no network\n  \
            netvm stack lwip1 -- nc -l 8080         a server on the session's stack lwip1\n  \
            exec netvm stack lwip1 -- bash          move the shell itself to lwip1\n\n\
            Exit status: the command's own (netvm stack becomes the command), 125 if \
            netvm failed (not inside a session, no such stack), 126 if the command \
            cannot run, 127 if it is not found."
    )]
    Stack(StackArgs),
    /// Show a session's stacks: their processes, interfaces, routes and sockets.
    #[command(
        long_about = "Show the state of a running netvm session: each mounted stack with \
            its processes, its interfaces and addresses (as `ip -br addr`, with \
            counters), its routes (as `ip route`) and its sockets (as `ss -tunap`). \
            Inside a session, that session; outside, the one given with --session, or \
            the only one running.",
        after_help = "Examples:\n  \
            netvm status                            the session (if only one runs)\n  \
            netvm status --session 4242             the session of `netvm run` pid 4242\n  \
            netvm status --json | jq '.stacks[].sockets'\n\n\
            Exit status: 0, or 125 if no session could be asked (none running, \
            several and no --session, no answer)."
    )]
    Status(StatusArgs),
}

#[derive(clap::Args)]
struct StackArgs {
    /// The stack to move to: one the session mounts.
    #[arg(value_name = "NAME")]
    name: String,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    command: Vec<OsString>,
}

#[derive(clap::Args)]
struct StatusArgs {
    /// Print the report as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// The session to ask, by the pid of its `netvm run` (its supervisor). Without
    /// it: the calling process's own session, or else the only one running.
    #[arg(long, value_name = "PID", value_parser = clap::value_parser!(i32).range(1..))]
    session: Option<i32>,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The stack to run the command on [default: the configuration's `default`].
    /// `none` (no network) and `host` (the real network) always exist.
    #[arg(short, long, value_name = "NAME")]
    stack: Option<String>,
    /// Read this configuration instead of $NETVM_CONFIG, ~/.config/netvm/modules.toml,
    /// /etc/netvm/modules.toml or the built-in one.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log every intercepted call, decoded, with its result and the stack that
    /// answered: to standard error, or to FILE.
    #[arg(long, value_name = "FILE", num_args = 0..=1, require_equals = true,
          default_missing_value = "-")]
    trace: Option<PathBuf>,
    /// Keep the sockets netvm inherits (beyond standard input, output and error)
    /// open in the command. By default they are closed: a host socket would be a
    /// way to the host's network. A kept one still serves reads and writes, but
    /// every call netvm traps on it (connect, bind, sendto, ...) fails with EPERM.
    #[arg(long)]
    keep_sockets: bool,
    /// Run without the private user and network namespaces, fenced by the seccomp
    /// filter alone: for hosts where user namespaces are not allowed. A call netvm
    /// does not trap then reaches the host's network, and other local users can
    /// see and reach the session's sockets.
    #[arg(long)]
    filter_only: bool,
    /// Capture every link of the session's virtual network into DIR, one pcap file
    /// per link (`lwip0-eth0.pcap`, `gw-sw0.pcap`, ...), for `tcpdump -r` or
    /// Wireshark.
    #[arg(long, value_name = "DIR")]
    pcap: Option<PathBuf>,
    /// Run without the configuration's uplinks (the built-in one's is `host`): the
    /// session's stacks reach nothing beyond the session, and routes through an
    /// uplink lead nowhere ("network unreachable").
    #[arg(long, env = "NETVM_NO_UPLINK", value_parser = clap::builder::FalseyValueParser::new())]
    no_uplink: bool,
    /// Let flows matching SPEC leave through the uplink. SPEC is
    /// PROTO[:PORT[-PORT]][@PREFIX] with PROTO tcp, udp, icmp or all:
    /// `--allow tcp:443 --allow udp:53@192.0.2.0/24 --deny all`. The rules of
    /// --allow, --deny and --drop are tried in the order given, before every
    /// stack's own (`egress` in modules.toml); the first that matches decides, and
    /// a flow none matches is allowed.
    #[arg(long, value_name = "SPEC", value_parser = rule_parser(Verdict::Allow))]
    allow: Vec<Rule>,
    /// Refuse flows matching SPEC at once, as a firewall's REJECT does: TCP
    /// connect fails with ECONNREFUSED, UDP and ping get "port unreachable".
    #[arg(long, value_name = "SPEC", value_parser = rule_parser(Verdict::Deny))]
    deny: Vec<Rule>,
    /// Drop flows matching SPEC: nothing answers (a connect times out).
    #[arg(long, value_name = "SPEC", value_parser = rule_parser(Verdict::Drop))]
    drop: Vec<Rule>,
    /// Publish a port of the host's to a stack's: [HOSTADDR:]HOSTPORT:STACK:PORT[/tcp|/udp],
    /// like `-p 8080:lwip1:80` (every host address, both families) or
    /// `-p 127.0.0.1:5353:lwip1:53/udp`. The service sees each client's real
    /// address; a client on the host's loopback appears as the uplink's
    /// (10.0.2.2 in the built-in network).
    #[arg(short, long, value_name = "FORWARD")]
    publish: Vec<Publish>,
    /// Let ADDR lead to the host's own loopback: a connection or datagram to
    /// ADDR goes to 127.0.0.1 (::1 for an IPv6 ADDR) on the host, same port, as
    /// pasta's option of this name. ADDR must be routed to the uplink, like its
    /// own address (`--map-host-loopback 10.0.2.2`). Without it, the host's
    /// loopback is out of reach.
    #[arg(long, value_name = "ADDR")]
    map_host_loopback: Vec<std::net::IpAddr>,
    /// Write a JSON line for every flow that tries to leave through the uplink
    /// (time, stack, protocol, source, destination, verdict, rule; and bytes when
    /// it closes) to FILE, or to standard error for `-`.
    #[arg(long, value_name = "FILE")]
    audit: Option<PathBuf>,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    command: Vec<OsString>,
}

/// A parser of `--allow`, `--deny` or `--drop`'s SPEC into a rule of `verdict`.
fn rule_parser(verdict: Verdict) -> impl Fn(&str) -> Result<Rule, String> + Clone {
    move |spec| Rule::new(verdict, spec)
}

/// The egress rules of `run`'s command line, in the order they were given
/// across `--allow`, `--deny` and `--drop`.
fn rules_in_order(run: &clap::ArgMatches) -> Vec<Rule> {
    let mut rules: Vec<(usize, Rule)> = ["allow", "deny", "drop"]
        .into_iter()
        .filter_map(|flag| Some(run.indices_of(flag)?.zip(run.get_many::<Rule>(flag)?.cloned())))
        .flatten()
        .collect();
    rules.sort_by_key(|(index, _)| *index);
    rules.into_iter().map(|(_, rule)| rule).collect()
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::new().filter_or("NETVM_LOG", "warn"))
        .format_target(false)
        .init();
    let parsed = Cli::command().try_get_matches().and_then(|m| Ok((Cli::from_arg_matches(&m)?, m)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(OWN_FAILURE) } else { ExitCode::SUCCESS };
        }
    };
    let status = match cli.command {
        Commands::Run(args) => {
            let rules = matches.subcommand_matches("run").map(rules_in_order).unwrap_or_default();
            run(*args, rules)
        }
        Commands::Stacks { config } => stacks(config),
        Commands::Stack(args) => stack(args),
        Commands::Status(args) => status(args),
    };
    match status {
        Ok(code) => ExitCode::from(code),
        Err((code, message)) => {
            eprintln!("netvm: {message}");
            ExitCode::from(code)
        }
    }
}

type Outcome = Result<u8, (u8, String)>;

fn own_failure(e: impl std::fmt::Display) -> (u8, String) {
    (OWN_FAILURE, e.to_string())
}

fn load_config(flag: Option<&std::path::Path>) -> Result<(Origin, Config), (u8, String)> {
    let origin = config::locate(flag);
    let config = config::load(&origin, Config::read).map_err(own_failure)?;
    Ok((origin, config))
}

fn run(args: RunArgs, egress: Vec<Rule>) -> Outcome {
    supervisor::return_freed_memory();
    if !args.keep_sockets {
        sandbox::close_inherited_sockets();
    }
    let (_, mut config) = load_config(args.config.as_deref())?;
    let mut publish = config.vunet.published();
    if args.no_uplink {
        config.vunet.without_uplinks();
    }
    publish.extend(args.publish.iter().cloned());
    // The host's ports are taken here, in the host's namespace: a taken port
    // fails the start, and root may publish one below 1024.
    let mut listeners = Vec::new();
    for forward in &publish {
        listeners.extend(forward.listen().map_err(own_failure)?);
    }
    let launch_stack = args.stack.as_deref().unwrap_or(config.vunet.default.get_ref());
    let fence = if config.vunet.kind_of(launch_stack).is_some_and(|k| k.passes_host_network()) {
        Fence::HostNetwork
    } else if args.filter_only {
        Fence::FilterOnly
    } else {
        Fence::Namespaces
    };
    let entered = match fence {
        Fence::Namespaces => {
            // A name another local user took first costs only `netvm status` from
            // outside the session.
            let outside = control::listening_socket(nix::unistd::getpid())
                .inspect_err(|e| {
                    log::warn!(
                        "`netvm status` from outside this session will not answer (its name \
                         is taken: {e})"
                    )
                })
                .ok();
            Some(sandbox::enter(outside).map_err(own_failure)?)
        }
        Fence::FilterOnly | Fence::HostNetwork => None,
    };
    let mut vunet = Vunet::with_captures(&config.vunet, Some(launch_stack), args.pcap.clone())
        .map_err(own_failure)?;
    vunet.fence(fence, entered);
    let audit = match &args.audit {
        Some(path) => Some(AuditLog::create(path).map_err(|e| {
            let why = match e.raw_os_error() {
                Some(libc::ENXIO) => "nobody reads that FIFO; start its reader first".to_owned(),
                _ => e.to_string(),
            };
            own_failure(format!("cannot write the audit log to {}: {why}", path.display()))
        })?),
        None => None,
    };
    vunet.egress(egress, audit, args.map_host_loopback.clone());
    vunet.publish(listeners).map_err(own_failure)?;
    let trace = match args.trace.as_deref() {
        None => None,
        Some(path) if path.as_os_str() == "-" => Some(TraceLog::stderr()),
        Some(path) => Some(TraceLog::file(path).map_err(|e| {
            own_failure(format!("cannot write the trace to {}: {e}", path.display()))
        })?),
    };
    let (program, program_args) = args.command.split_first().expect("clap requires CMD");
    let command = Command::resolve(program, program_args)
        .map_err(|e| (e.exit_status() as u8, e.to_string()))?;
    let modules: Vec<Box<dyn Module>> = vec![Box::new(vunet), Box::new(Boundary::default())];
    let status = supervisor::run(&command, Dispatcher::new(modules, trace))
        .map_err(|e| (e.exit_status() as u8, e.to_string()))?;
    Ok(status as u8)
}

fn stacks(config: Option<PathBuf>) -> Outcome {
    let (origin, config) = load_config(config.as_deref())?;
    let vunet = Vunet::new(&config.vunet, None).map_err(own_failure)?;
    let mut text = format!("configuration: {origin}\n");
    let default = config.vunet.default.get_ref();
    for (name, kind, _) in vunet.stacks() {
        let marker = if name == default { "  (default)" } else { "" };
        let _ = writeln!(text, "  {name:<16} {kind}{marker}");
    }
    text.push_str("addresses:\n");
    for (name, _, addresses) in vunet.stacks() {
        if !addresses.is_empty() {
            let _ = writeln!(text, "  {name:<16} {}", addresses.join(", "));
        }
    }
    let always: Vec<&str> =
        vunet::KINDS.iter().filter(|k| k.unconfigured().is_some()).map(|k| k.name()).collect();
    let _ = writeln!(text, "always available at launch: {}", always.join(", "));
    text.push_str("stack kinds:\n");
    for kind in vunet::KINDS.iter() {
        let _ = writeln!(text, "  {:<16} {}", kind.name(), kind.summary());
    }
    print_out(&text)
}

/// Writes `text` to standard output. A reader that went away (`netvm status |
/// head`) has what it wanted: that is no failure.
fn print_out(text: &str) -> Outcome {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(own_failure(format!("cannot write to standard output: {e}"))),
    }
}

/// `netvm stack NAME -- CMD`: asks the session to move this process to stack NAME,
/// then becomes CMD.
fn stack(args: StackArgs) -> Outcome {
    let Some(session) = control::session_of_self() else {
        eprintln!("netvm stack: not inside a netvm session; start one with `netvm run -- CMD`");
        return Ok(OWN_FAILURE);
    };
    let (program, program_args) = args.command.split_first().expect("clap requires CMD");
    // Found and checked first: a command that cannot run moves nothing.
    let command = Command::resolve(program, program_args)
        .map_err(|e| (e.exit_status() as u8, e.to_string()))?;
    match ask(session, &Request::UseStack { name: args.name })? {
        Reply::Ok => {}
        Reply::Error { message } => return Err(own_failure(message)),
        Reply::Status { .. } => return Err(own_failure(unexpected_reply(session))),
    }
    let argv = args
        .command
        .iter()
        .map(|arg| CString::new(arg.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| (126, format!("{}: argument contains a NUL byte", program.display())))?;
    // Rust ignores SIGPIPE in its own programs; the command gets the default back,
    // as a shell would give it. The signal mask and everything else pass unchanged.
    // SAFETY: setting a signal's disposition to the default has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let error = nix::unistd::execv(command.path(), &argv).unwrap_err();
    let code = if error == nix::errno::Errno::ENOENT { 127 } else { 126 };
    Err((code, format!("{}: {}", command.path().to_string_lossy(), error.desc())))
}

/// `netvm status`: asks a session for its report and prints it.
fn status(args: StatusArgs) -> Outcome {
    let session = match args.session {
        Some(pid) => Pid::from_raw(pid),
        None => match control::session_of_self() {
            Some(own) => own,
            None => only_session()?,
        },
    };
    let report = match ask(session, &Request::Status)? {
        Reply::Status { report } => report,
        Reply::Error { message } => return Err(own_failure(message)),
        Reply::Ok => return Err(own_failure(unexpected_reply(session))),
    };
    let text = if args.json {
        let mut json = serde_json::to_string_pretty(&report).map_err(own_failure)?;
        json.push('\n');
        json
    } else {
        status::render(&report)
    };
    print_out(&text)
}

/// The one session running, for `netvm status` outside any session.
fn only_session() -> Result<Pid, (u8, String)> {
    match control::sessions()[..] {
        [] => Err(own_failure("no netvm session is running (start one with `netvm run -- CMD`)")),
        [only] => Ok(only),
        ref several => {
            let pids: Vec<String> = several.iter().map(ToString::to_string).collect();
            Err(own_failure(format!(
                "{} netvm sessions are running, with supervisor PIDs {}: choose one with \
                 `netvm status --session PID`",
                several.len(),
                pids.join(", ")
            )))
        }
    }
}

/// Sends `request` to `session`, turning failures into messages.
fn ask(session: Pid, request: &Request) -> Result<Reply, (u8, String)> {
    control::request(session, request).map_err(|e| {
        own_failure(match e.kind() {
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound => format!(
                "no netvm session with supervisor PID {session} (running sessions: {})",
                match control::sessions().as_slice() {
                    [] => "none".to_owned(),
                    pids => pids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
                }
            ),
            std::io::ErrorKind::TimedOut => format!(
                "the netvm session with supervisor PID {session} did not answer within {} s",
                control::TIMEOUT.as_secs()
            ),
            _ => format!("cannot reach the netvm session with supervisor PID {session}: {e}"),
        })
    })
}

fn unexpected_reply(session: Pid) -> String {
    format!("the netvm session with supervisor PID {session} gave an unexpected reply")
}
