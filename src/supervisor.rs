//! The supervisor's event loop: one thread that is both the tracer and the loop
//! serving everything else.
//!
//! ptrace requests must come from the thread that attached, so the loop never hands
//! tracees to other threads. `SIGCHLD` and the signals netvm passes on to the command
//! are blocked and read from a signalfd registered with mio; each wake-up drains every
//! pending ptrace stop. Notified calls wake it through the notification fd.

use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use crate::modules::Dispatcher;
use crate::tracer::launch::{self, Command, LaunchError};
use crate::tracer::{Tracer, filter, trace_options};

/// Stays awake for the tracees' next stop while that pays off.
///
/// A tracee just resumed is often back within microseconds (a loop of socket
/// calls), and waiting for it awake is far cheaper than sleeping: on a VM an idle
/// vCPU halts, and each wake-up costs tens of microseconds (measured: a trapped
/// call went from about 105 to 40-75 us). The window grows while stops keep
/// arriving in it and shrinks when one passes empty, so a program that traps
/// rarely costs at most a few microseconds of spinning per stop.
///
/// While it spins, the modules' own work (a frame between stacks, a peer's close)
/// is served as soon as their sources turn ready: the network must not wait
/// while the loop waits for stops. (Measured: with a few stops in quick
/// succession the window grows to its longest, and a close across two stacks then
/// took 400 us to reach the peer instead of 70; nginx with a connection per
/// request across two stacks served 1,958 requests a second instead of 1,204.)
///
/// Between looks it yields the CPU (`sched_yield`): where the supervisor shares
/// its CPU with the tracee it waits for, spinning only keeps that tracee from
/// running, and with nothing else runnable the yield returns at once. (Measured:
/// a connect/accept/close cycle pinned to one CPU, 110 -> 84 us; nginx keep-alive
/// with `tcp_nopush on` in one stack, about 14,500 -> 20,600 requests a second.)
struct Spinner {
    window: Duration,
}

impl Spinner {
    const MIN: Duration = Duration::from_micros(5);
    const MAX: Duration = Duration::from_micros(300);
    /// The longest stretch without a look at signals and other events.
    const SLICE: Duration = Duration::from_millis(1);

    /// Reaps stops as they come until a window passes without one (false), or a
    /// slice has gone by with stops still coming (true: a burst goes on); serves
    /// the modules whenever their sources (`module_events`) turn ready meanwhile.
    fn spin(
        &mut self,
        tracer: &mut Tracer,
        dispatcher: &mut Dispatcher,
        module_events: &mut Waiter,
    ) -> bool {
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
            if tracer.serve(dispatcher) > 0 {
                caught = true;
                self.window = (self.window * 2).min(Self::MAX);
                deadline = Instant::now() + self.window;
            } else if module_events.ready_now() {
                dispatcher.service(Instant::now());
            } else {
                // SAFETY: sched_yield takes nothing.
                unsafe { libc::sched_yield() };
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
    let rules = dispatcher.trap_rules();
    let program = filter::build(&rules).map_err(|e| setup("filter", &e))?;
    // `--trace` shows every call's result, which only a ptrace stop lets it see.
    let notifier = if dispatcher.follows_every_call() {
        None
    } else {
        filter::build_notifier(&rules).map_err(|e| setup("notifier filter", &e))?
    };

    let mut handled = SigSet::empty();
    HANDLED.iter().for_each(|&s| handled.add(s));
    let mut original_mask = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&handled), Some(&mut original_mask))
        .map_err(|e| setup("sigprocmask", &e))?;
    let signals = SignalFd::with_flags(&handled, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| setup("signalfd", &e))?;

    let filters = launch::Filters { main: &program, notifier: notifier.as_ref() };
    let launched = launch::spawn(command, filters, trace_options(), &original_mask)?;
    // Only now: a child forked from a non-dumpable process could not be traced
    // from inside the session's user namespace.
    crate::sandbox::make_non_dumpable();
    // The command keeps the limit it was given; the supervisor, which holds
    // descriptors for many programs' sockets, takes all it may.
    raise_descriptor_limit();
    let notified = filter::notified_calls(&rules);
    let mut tracer = Tracer::new(launched.pid, launched.listener, notified, &mut dispatcher);
    let module_fds: Vec<RawFd> = dispatcher.event_fds().into_iter().map(|(_, fd)| fd).collect();
    let mut waiter = Waiter::new(
        [signals.as_raw_fd()]
            .into_iter()
            .chain(tracer.notification_fd())
            .chain(module_fds.iter().copied()),
    );
    let mut module_events = Waiter::new(module_fds.into_iter());
    let mut spinner = Spinner::default();
    loop {
        // Signals first: a SIGCHLD that arrives after this drain stays pending and
        // wakes the poll below, so no stop reaped later can be missed.
        while let Ok(Some(info)) = signals.read_signal() {
            if let Ok(signal) = Signal::try_from(info.ssi_signo as i32) {
                pass_on(signal, info.ssi_code, &tracer);
            }
        }
        let in_burst = tracer.serve(&mut dispatcher) > 0
            && spinner.spin(&mut tracer, &mut dispatcher, &mut module_events);
        if tracer.is_finished() {
            break;
        }
        // The modules' own work (packets between stacks, say) runs after every
        // batch of stops, and whenever its sources or deadlines call for it.
        let deadline =
            [dispatcher.service(Instant::now()), tracer.next_retry()].into_iter().flatten().min();
        if in_burst {
            continue;
        }
        waiter.wait(deadline.map(|d| d.saturating_duration_since(Instant::now())));
    }
    // No exit status means the root vanished without a report: treat as killed.
    Ok(tracer.root_status().unwrap_or(128 + Signal::SIGKILL as i32))
}

/// Sleeps until one of a fixed set of fds is readable.
///
/// This is `ppoll(2)` rather than epoll on purpose: a notified call wakes the
/// supervisor with the kernel's hint to run it on the caller's CPU
/// (`SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`), and `poll` passes that hint on where
/// epoll drops it. On this project's VMs the difference is a wake-up of a halted
/// vCPU per call, tens of microseconds.
struct Waiter {
    fds: Vec<libc::pollfd>,
}

impl Waiter {
    fn new(fds: impl Iterator<Item = RawFd>) -> Self {
        Self { fds: fds.map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect() }
    }

    /// Whether any of the fds is readable now.
    fn ready_now(&mut self) -> bool {
        let fds = &mut self.fds;
        // SAFETY: `fds` is a live array of its length; no timeout, no mask.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as _, 0) };
        n > 0
    }

    /// Waits for readability or `timeout` (forever if `None`), or a signal.
    fn wait(&mut self, timeout: Option<Duration>) {
        let fds = &mut self.fds;
        let timespec = timeout.map(|t| libc::timespec {
            tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: i64::from(t.subsec_nanos()),
        });
        let timeout_ptr = timespec.as_ref().map_or(std::ptr::null(), std::ptr::from_ref);
        // SAFETY: `fds` is a live array of its length; the timeout is null or a live
        // timespec; no signal mask is passed.
        let n =
            unsafe { libc::ppoll(fds.as_mut_ptr(), fds.len() as _, timeout_ptr, std::ptr::null()) };
        if n < 0 && Errno::last() != Errno::EINTR {
            log::error!("poll: {}", Errno::last());
        }
    }
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

/// Makes the allocator map large blocks afresh and give them back when freed.
///
/// glibc raises its mapping threshold each time a mapped block is freed, after
/// which blocks of a smoltcp socket's size (hundreds of KiB) come from the heap:
/// zeroing them touches every page, and freeing them keeps the pages. A program
/// that opens and closes many sockets would leave the supervisor that large. A
/// fixed threshold keeps every such block a mapping of its own: its pages cost
/// only once data passes through them, and go back to the system when freed.
/// Called first thing, before the stacks allocate their buffers.
pub fn return_freed_memory() {
    /// Blocks from this size on are mappings of their own.
    const MAPPED_FROM: libc::c_int = 128 * 1024;
    // SAFETY: mallopt only changes the allocator's tunables; netvm is
    // single-threaded when it starts.
    if unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MAPPED_FROM) } != 1 {
        log::info!("cannot set the allocator's mapping threshold");
    }
}

/// Raises the supervisor's soft limit on open descriptors to its hard limit: it
/// holds descriptors for the sockets of every program of the session, and its
/// running out must not fail a program's call.
fn raise_descriptor_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                log::info!("cannot raise the descriptor limit from {soft} to {hard}: {e}");
            }
        }
        Ok(_) => {}
        Err(e) => log::info!("cannot read the descriptor limit: {e}"),
    }
}
