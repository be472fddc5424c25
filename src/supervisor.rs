//! The supervisor's event loop: one thread that is both the tracer and the loop
//! serving everything else.
//!
//! ptrace requests must come from the thread that attached, so the loop never hands
//! tracees to other threads. `SIGCHLD` and the signals netvm passes on to the command
//! are blocked and read from a signalfd registered with mio; each wake-up drains every
//! pending ptrace stop.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use crate::modules::Dispatcher;
use crate::tracer::launch::{self, Command, LaunchError};
use crate::tracer::{Tracer, filter, trace_options};

const SIGNALS: Token = Token(0);

/// Stays awake for the tracees' next stop while that pays off.
///
/// A tracee just resumed is often back within microseconds (a loop of socket
/// calls), and waiting for it awake is far cheaper than sleeping: on a VM an idle
/// vCPU halts, and each wake-up costs tens of microseconds (measured: a trapped
/// call went from about 105 to 40-75 us). The window grows while stops keep
/// arriving in it and shrinks when one passes empty, so a program that traps
/// rarely costs at most a few microseconds of spinning per stop.
struct Spinner {
    window: Duration,
}

impl Spinner {
    const MIN: Duration = Duration::from_micros(5);
    const MAX: Duration = Duration::from_micros(300);
    /// The longest stretch without a look at signals and other events.
    const SLICE: Duration = Duration::from_millis(1);

    /// Reaps stops as they come until a window passes without one (false), or a
    /// slice has gone by with stops still coming (true: a burst goes on).
    fn spin(&mut self, tracer: &mut Tracer, dispatcher: &mut Dispatcher) -> bool {
        let start = Instant::now();
        let mut deadline = start + self.window;
        let mut caught = false;
        loop {
            let now = Instant::now();
            if now >= deadline || tracer.is_finished() {
                self.window = (self.window / 2).max(Self::MIN);
                return false;
            }
            if now - start >= Self::SLICE {
                return caught;
            }
            if tracer.reap(dispatcher) > 0 {
                caught = true;
                self.window = (self.window * 2).min(Self::MAX);
                deadline = Instant::now() + self.window;
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

impl Default for Spinner {
    fn default() -> Self {
        Self { window: Self::MIN }
    }
}

/// Signals netvm reads itself instead of letting them act on it:
/// - `SIGCHLD`: a tracee stopped or ended;
/// - `SIGINT`, `SIGQUIT`, `SIGTSTP`, `SIGHUP`: a terminal sends these to the whole
///   foreground job, the command included, so netvm lets the command decide and
///   follows it; sent to netvm alone (by `kill`), they are passed on to the command;
/// - `SIGTERM`, `SIGUSR1`, `SIGUSR2`: passed on to the command;
/// - `SIGTTIN`, `SIGTTOU`: a `--trace` on the terminal must not stop netvm when the
///   command has put itself in the foreground.
const HANDLED: [Signal; 10] = [
    Signal::SIGCHLD,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTSTP,
    Signal::SIGHUP,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
];

/// `si_code` of a signal the kernel sent (a terminal's `Ctrl-C`, say).
const SI_KERNEL: i32 = 0x80;

/// Runs `command` under `dispatcher`'s modules until every traced process is gone,
/// and returns the exit status netvm should end with.
pub fn run(command: &Command, mut dispatcher: Dispatcher) -> Result<i32, LaunchError> {
    let setup = |what: &str, e: &dyn std::fmt::Display| LaunchError::Trace(format!("{what}: {e}"));
    let program = filter::build(&dispatcher.trap_rules()).map_err(|e| setup("filter", &e))?;

    let mut handled = SigSet::empty();
    HANDLED.iter().for_each(|&s| handled.add(s));
    let mut original_mask = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&handled), Some(&mut original_mask))
        .map_err(|e| setup("sigprocmask", &e))?;
    let signals = SignalFd::with_flags(&handled, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| setup("signalfd", &e))?;
    let mut poll = Poll::new().map_err(|e| setup("epoll", &e))?;
    poll.registry()
        .register(&mut SourceFd(&signals.as_raw_fd()), SIGNALS, Interest::READABLE)
        .map_err(|e| setup("epoll", &e))?;

    for (index, fd) in dispatcher.event_fds() {
        poll.registry()
            .register(&mut SourceFd(&fd), Token(1 + index), Interest::READABLE)
            .map_err(|e| setup("epoll", &e))?;
    }

    let root = launch::spawn(command, &program, trace_options(), &original_mask)?;
    let mut tracer = Tracer::new(root, &mut dispatcher);
    let mut events = Events::with_capacity(16);
    let mut spinner = Spinner::default();
    loop {
        // Signals first: a SIGCHLD that arrives after this drain stays pending and
        // wakes the poll below, so no stop reaped later can be missed.
        while let Ok(Some(info)) = signals.read_signal() {
            if let Ok(signal) = Signal::try_from(info.ssi_signo as i32) {
                pass_on(signal, info.ssi_code, &tracer);
            }
        }
        let in_burst =
            tracer.reap(&mut dispatcher) > 0 && spinner.spin(&mut tracer, &mut dispatcher);
        if tracer.is_finished() {
            break;
        }
        // The modules' own work (packets between stacks, say) runs after every
        // batch of stops, and whenever its sources or deadlines call for it.
        let deadline = dispatcher.service(Instant::now());
        if in_burst {
            continue;
        }
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                log::error!("poll: {e}");
            }
            continue;
        }
    }
    // No exit status means the root vanished without a report: treat as killed.
    Ok(tracer.root_status().unwrap_or(128 + Signal::SIGKILL as i32))
}

/// Passes a signal netvm received on to the command, unless the command got it too.
fn pass_on(signal: Signal, code: i32, tracer: &Tracer) {
    let from_terminal = code == SI_KERNEL;
    if matches!(signal, Signal::SIGCHLD | Signal::SIGTTIN | Signal::SIGTTOU) || from_terminal {
        return;
    }
    let root_alive = tracer.processes().any(|p| p == tracer.root());
    let targets: Vec<Pid> =
        if root_alive { vec![tracer.root()] } else { tracer.processes().collect() };
    for pid in targets {
        let _ = kill(pid, signal);
    }
}
