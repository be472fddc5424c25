//! The `netvm` command line.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use netvm::config::{self, Config, Origin};
use netvm::modules::trace::TraceLog;
use netvm::modules::vunet::{self, Vunet};
use netvm::modules::{Dispatcher, Module};
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
        netvm stacks                               list the stacks you can choose"
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
    Run(RunArgs),
    /// List the stacks the configuration mounts, and where it was read from.
    Stacks {
        /// Read this configuration instead of the usual places.
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
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
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    command: Vec<OsString>,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::new().filter_or("NETVM_LOG", "warn"))
        .format_target(false)
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(OWN_FAILURE) } else { ExitCode::SUCCESS };
        }
    };
    let status = match cli.command {
        Commands::Run(args) => run(args),
        Commands::Stacks { config } => stacks(config),
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
    let config = config::load(&origin, &vunet::kind_names()).map_err(own_failure)?;
    Ok((origin, config))
}

fn run(args: RunArgs) -> Outcome {
    let (_, config) = load_config(args.config.as_deref())?;
    let vunet = Vunet::new(&config.vunet, args.stack.as_deref()).map_err(own_failure)?;
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
    let modules: Vec<Box<dyn Module>> = vec![Box::new(vunet)];
    let status = supervisor::run(&command, Dispatcher::new(modules, trace))
        .map_err(|e| (e.exit_status() as u8, e.to_string()))?;
    Ok(status as u8)
}

fn stacks(config: Option<PathBuf>) -> Outcome {
    let (origin, config) = load_config(config.as_deref())?;
    let vunet = Vunet::new(&config.vunet, None).map_err(own_failure)?;
    println!("configuration: {origin}");
    let default = config.vunet.default.get_ref();
    for (name, kind, _) in vunet.stacks() {
        let marker = if name == default { "  (default)" } else { "" };
        println!("  {name:<16} {kind}{marker}");
    }
    println!("addresses:");
    for (name, kind, addresses) in vunet.stacks() {
        if kind == vunet::smoltcp::SmoltcpStack::KIND {
            let mut own: Vec<String> = vec!["127.0.0.0/8".into(), "::1".into()];
            own.extend(addresses.iter().map(ToString::to_string));
            println!("  {name:<16} {}", own.join(", "));
        }
    }
    println!("always available at launch: none, host");
    println!("stack kinds:");
    for (kind, what) in vunet::KINDS {
        println!("  {kind:<16} {what}");
    }
    Ok(0)
}
