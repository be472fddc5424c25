//! The tracer: runs a command under ptrace and turns the kernel's stops into calls on
//! a [`Handler`].
//!
//! It knows ptrace, seccomp and tracee memory, and nothing of networks. It follows
//! every thread and process the command creates (fork, vfork, clone, exec chains,
//! daemons), passes signals on as the kernel would have delivered them, keeps
//! job-control stops working, and reports each trapped system call, typed (in the
//! vocabulary of [`crate::syscall`]), to the handler, which decides whether the
//! kernel runs it, or what it returns instead.
//!
//! Calls that need no more than the process's memory can arrive as seccomp
//! notifications instead of ptrace stops ([`notify`]); the handler sees both the
//! same way, as a [`SyscallStop`], and [`SyscallStop::is_notified`] says which.
//!
//! All ptrace requests come from the thread that attached, so the tracer is driven
//! by one thread: call [`Tracer::serve`] whenever `SIGCHLD` may have arrived, the
//! [notification fd](Tracer::notification_fd) is readable, or a
//! [retry](Tracer::next_retry) is due.

pub mod arch;
mod credentials;
pub mod fds;
pub mod filter;
pub mod launch;
pub mod memory;
pub mod notify;
mod setup;
pub mod window;

use std::cell::Cell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::ptrace::{self, Event, Options};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

pub use arch::Registers;
pub use memory::TraceeMemory;

use crate::syscall::Syscall;
use notify::{Notification, Notifier, Reply};
use setup::WindowSetup;
use window::{Inputs, Room, Slot, Windows};

/// How long a call put off with [`Resume::Retry`] waits before it is presented
/// again.
const RETRY_PAUSE: Duration = Duration::from_micros(200);
/// The most notifications one [`Tracer::serve`] takes.
const NOTIFICATION_BATCH: usize = 32;
/// How long a new thread waits for its creator's event before the tracer looks
/// whether its creator is gone (see [`Tracer::adopt_orphans`]): the event comes
/// within microseconds unless the creator was killed.
const ORPHAN_AFTER: Duration = Duration::from_millis(100);

/// What a handler wants to happen once it has seen a trapped call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Let the call run (or return the result set with [`SyscallStop::skip`]).
    Run,
    /// Let the call run and stop again when it returns: the handler's
    /// [`Handler::syscall_exit`] sees the result and may change it. Not for
    /// notified calls.
    RunToExit,
    /// Not yet: the thread waits a moment (the supervisor's other work goes on)
    /// and then makes the call again, which the handler sees as a new one.
    Retry,
}

/// A thread stopped at a trapped system call (entry or exit).
pub struct SyscallStop {
    /// The stopped thread.
    pub tid: Pid,
    /// Its process (thread group).
    pub process: Pid,
    call: Syscall,
    regs: Registers,
    dirty: bool,
    /// The arguments as the thread passed them, once a handler rewrote any.
    original_args: Option<[u64; 6]>,
    restarting: bool,
    /// The call arrived as a notification: the thread's registers are out of reach.
    notified: bool,
    /// The thread's room in its process's scratch window.
    room: Room,
    /// The slot of `room` that [`scratch`](Self::scratch) handed out.
    used: Cell<Option<Slot>>,
    /// The descriptor the call returns (see [`return_new_fd`](Self::return_new_fd)).
    gift: Option<Gift>,
}

/// A descriptor a call returns in the process: a copy of the supervisor's.
struct Gift {
    fd: OwnedFd,
    cloexec: bool,
}

impl SyscallStop {
    fn new(
        tid: Pid,
        process: Pid,
        call: Syscall,
        regs: Registers,
        original_args: Option<[u64; 6]>,
    ) -> Self {
        Self {
            tid,
            process,
            call,
            regs,
            dirty: false,
            original_args,
            restarting: false,
            notified: false,
            room: Room::default(),
            used: Cell::new(None),
            gift: None,
        }
    }

    /// Whether the call arrived as a seccomp notification: the handler may read and
    /// write memory and [`skip`](Self::skip) the call, or let it run unchanged, but
    /// nothing that needs the thread's registers (scratch space, rewritten
    /// arguments, [`Resume::RunToExit`]).
    pub fn is_notified(&self) -> bool {
        self.notified
    }

    /// What [`skip`](Self::skip) made the call return, if it was skipped.
    fn answer(&self) -> Option<i64> {
        (self.dirty && self.regs.syscall_number() == -1).then(|| self.regs.return_value())
    }

    /// A handler bug, caught by the tests: a module must not ask for notification of
    /// a call it handles with the thread's registers.
    fn assert_stopped(&self, what: &str) {
        debug_assert!(!self.notified, "{what} needs a stopped thread, not a notified call");
    }

    /// The decoded call.
    pub fn call(&self) -> Syscall {
        self.call
    }

    /// The raw call number.
    pub fn number(&self) -> i64 {
        self.regs.syscall_number()
    }

    /// The memory of the stopped process.
    pub fn memory(&self) -> TraceeMemory {
        TraceeMemory::new(self.tid)
    }

    /// At entry: do not run the call; the tracee sees `result` (a value or `-errno`).
    pub fn skip(&mut self, result: i64) {
        self.regs.skip_syscall(result);
        self.dirty = true;
    }

    /// Room for `len` bytes of rewritten arguments in the tracee, the thread's own
    /// until the call returns: a slot of the process's scratch window (see
    /// [`window`]), never the thread's stack. Returns the address (page aligned),
    /// or `ENOMEM` if the process has no window or none is free.
    pub fn scratch(&self, len: usize) -> Result<u64, Errno> {
        self.assert_stopped("scratch space");
        let place = self.room.for_len(len).ok_or(Errno::ENOMEM)?;
        self.used.set(Some(place.slot));
        Ok(place.address)
    }

    /// Puts `bytes` where the kernel will read them for this call, and no other
    /// thread can change them first: the sealed half of the thread's slot (see
    /// [`window`]). Returns their address in the tracee. Where the process has no
    /// sealed half because there are no seccomp notifications (`--trace`, a kernel
    /// before 5.19), they go to the plain one, which the program could race;
    /// where its set-up failed or was tampered with, the call fails (`ENOMEM`).
    ///
    /// Shares the slot with [`scratch`](Self::scratch): a handler that needs both
    /// keeps them apart with `offset`.
    pub fn put_sealed(&self, bytes: &[u8], offset: usize) -> Result<u64, Errno> {
        self.assert_stopped("sealed space");
        let place = self.room.for_len(offset + bytes.len()).ok_or(Errno::ENOMEM)?;
        self.used.set(Some(place.slot));
        match place.inputs {
            Inputs::Sealed(sealed) => {
                sealed.write_at(offset, bytes);
                Ok(sealed.tracee + offset as u64)
            }
            Inputs::Plain => {
                let at = place.address + offset as u64;
                self.memory().write_bytes(at, bytes).map(|()| at)
            }
            Inputs::Refused => Err(Errno::ENOMEM),
        }
    }

    /// Puts a copy of message header `header` where the kernel will read it (see
    /// [`put_sealed`](Self::put_sealed)), pointed at a copy of `name` put there too
    /// when one is given. Returns the header's address and the name's.
    pub fn put_sealed_header(
        &self,
        mut header: libc::msghdr,
        name: Option<&[u8]>,
    ) -> Result<(u64, Option<u64>), Errno> {
        /// Where the name goes: after the header.
        const NAME_AT: usize = size_of::<libc::msghdr>().next_multiple_of(16);
        let name_at = match name {
            Some(name) => {
                let at = self.put_sealed(name, NAME_AT)?;
                header.msg_name = at as *mut libc::c_void;
                header.msg_namelen = name.len() as u32;
                Some(at)
            }
            None => None,
        };
        Ok((self.put_sealed(&memory::msghdr_bytes(&header), 0)?, name_at))
    }

    /// At entry: replace the call with `call`, re-encoded from its typed form (a
    /// changed argument, or another call altogether); the seccomp filter does not
    /// stop the replacement again, and the thread's own argument registers are put
    /// back at the exit. [`call`](Self::call) stays the call as the program made it.
    pub fn rewrite(&mut self, call: Syscall) {
        let (number, args) = call.encode();
        if number != self.regs.syscall_number() {
            self.set_number(number);
        }
        let current = self.regs.syscall_args();
        for (index, value) in args.into_iter().enumerate() {
            if current[index] != value {
                self.set_arg(index, value);
            }
        }
    }

    /// At entry: replace the call's number, keeping its arguments.
    fn set_number(&mut self, number: i64) {
        self.assert_stopped("replacing a call");
        self.regs.set_syscall_number(number);
        self.dirty = true;
    }

    /// At entry: replace argument `index` before the kernel runs the call.
    ///
    /// The `syscall` instruction preserves the argument registers, and compiled code
    /// relies on that; so the tracer takes the call's exit stop and puts the
    /// thread's own values back (after [`Handler::syscall_exit`]).
    fn set_arg(&mut self, index: usize, value: u64) {
        self.assert_stopped("rewriting arguments");
        self.original_args.get_or_insert(self.regs.syscall_args());
        self.regs.set_syscall_arg(index, value);
        self.dirty = true;
    }

    /// Puts back the arguments the thread passed, if a handler rewrote them.
    fn restore_args(&mut self) {
        if let Some(args) = self.original_args.take() {
            for (index, value) in args.into_iter().enumerate() {
                self.regs.set_syscall_arg(index, value);
            }
            self.dirty = true;
        }
    }

    /// At exit: what the call returned (a value or `-errno`).
    pub fn result(&self) -> i64 {
        self.regs.return_value()
    }

    /// At exit: the descriptor the call returned, if it succeeded.
    pub fn returned_fd(&self) -> Option<i32> {
        i32::try_from(self.result()).ok().filter(|&fd| fd >= 0)
    }

    /// At exit: change what the tracee sees returned.
    pub fn set_result(&mut self, result: i64) {
        self.regs.set_return_value(result);
        self.dirty = true;
    }

    /// At exit of a `sendmsg` that stood for a `sendmmsg` of the message array at
    /// `msgvec` (its first message only): returns what that `sendmmsg` returns,
    /// one message sent with its length written back, as the kernel would.
    pub fn finish_as_first_message(&mut self, msgvec: u64) {
        let sent = self.result();
        if sent < 0 {
            return;
        }
        let at = msgvec + std::mem::offset_of!(libc::mmsghdr, msg_len) as u64;
        match self.memory().write(at, &(sent as u32)) {
            Ok(()) => self.set_result(1),
            Err(e) => self.set_result(-(e as i64)),
        }
    }

    /// At exit: make the thread run the same call again (with any arguments changed
    /// by [`set_arg`](Self::set_arg)) when it resumes; it stops at the seccomp filter
    /// again like any new call. This lets a handler run a different call first (by
    /// rewriting the entry) and then the original.
    pub fn restart(&mut self, number: i64) {
        self.regs.restart_syscall(number);
        self.dirty = true;
        self.restarting = true;
    }

    /// At exit: whether [`restart`](Self::restart) was called, so the call has no
    /// result yet (it runs again).
    pub fn is_restarting(&self) -> bool {
        self.restarting
    }

    /// The notified call returns a new descriptor of the process, a copy of `fd`
    /// (close-on-exec if `cloexec`), rather than run; the handler answers
    /// [`Resume::Run`]. Descriptors go in only through the notifier
    /// (`SECCOMP_IOCTL_NOTIF_ADDFD`): `EOPNOTSUPP` for a call that stopped
    /// instead (a process without a notifier: `--trace`, a kernel before 5.19).
    pub fn return_new_fd(&mut self, fd: OwnedFd, cloexec: bool) -> Result<(), Errno> {
        if !self.can_return_new_fd() {
            return Err(Errno::EOPNOTSUPP);
        }
        self.gift = Some(Gift { fd, cloexec });
        Ok(())
    }

    /// The descriptor [`return_new_fd`](Self::return_new_fd) is to give, lent
    /// until the call returns it.
    pub fn new_fd(&self) -> Option<BorrowedFd<'_>> {
        self.gift.as_ref().map(|gift| gift.fd.as_fd())
    }

    /// Whether [`return_new_fd`](Self::return_new_fd) can give this call's
    /// process a descriptor: asked before making one is worth it.
    pub fn can_return_new_fd(&self) -> bool {
        self.notified
    }

    /// The calling thread's file system user and group ids: whose the files it
    /// makes are.
    pub fn file_system_ids(&self) -> Result<(u32, u32), Errno> {
        credentials::file_system_ids(self.tid, self.process)
    }

    /// Copies fd `fd` of the stopped process into the supervisor (`pidfd_getfd`). The
    /// copy refers to the same open file; drop it promptly, or the tracee's `close`
    /// can never release the object.
    pub fn copy_fd(&self, fd: i32) -> Result<std::os::fd::OwnedFd, Errno> {
        fds::copy_fd(self.tid, self.process, fd)
    }

    fn flush(&self) -> nix::Result<()> {
        if self.dirty { self.regs.write(self.tid) } else { Ok(()) }
    }
}

/// The tracer's client: whoever gives trapped calls their meaning.
pub trait Handler {
    /// A trapped call is about to run.
    fn syscall_entry(&mut self, stop: &mut SyscallStop) -> Resume;
    /// A call the handler asked to see return has returned.
    fn syscall_exit(&mut self, stop: &mut SyscallStop);
    /// A new process appeared: the launched command itself (`parent` is `None`), or a
    /// child made by fork, vfork or clone without `CLONE_THREAD`. New threads are not
    /// reported: they belong to their process.
    fn process_started(&mut self, process: Pid, parent: Option<Pid>);
    /// A process ended (its last thread is gone).
    fn process_ended(&mut self, process: Pid);
    /// A thread ended (reported before its process's end, if it was the last).
    fn thread_ended(&mut self, tid: Pid);
}

/// The ptrace options every tracee gets.
pub fn trace_options() -> Options {
    Options::PTRACE_O_TRACESYSGOOD
        | Options::PTRACE_O_TRACEFORK
        | Options::PTRACE_O_TRACEVFORK
        | Options::PTRACE_O_TRACECLONE
        | Options::PTRACE_O_TRACEEXEC
        | Options::PTRACE_O_TRACESECCOMP
        | Options::PTRACE_O_EXITKILL
}

/// What the tracer remembers of one traced thread.
struct Thread {
    process: Pid,
    /// The call whose exit stop is awaited.
    awaiting_exit: Option<AwaitedExit>,
}

/// A call a thread is running, whose exit the tracer must see.
struct AwaitedExit {
    call: Syscall,
    /// Its arguments as the thread passed them, if they were rewritten.
    original_args: Option<[u64; 6]>,
    /// Something runs before the call, which then runs again.
    first: Option<Interlude>,
}

/// What a thread is made to do before its call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Interlude {
    /// Wait a moment: the call (this number) was put off ([`Resume::Retry`]).
    Pause(i64),
    /// Set up its process's scratch window (see [`setup`]; the call is kept there).
    SetUp,
}

/// The notified side of the tracer.
struct Notifications {
    notifier: Notifier,
    /// The call numbers the notifier filter claims.
    calls: BTreeSet<i64>,
    /// Calls put off with [`Resume::Retry`], with when to present them again.
    deferred: Vec<(Instant, Notification)>,
}

/// The set of traced threads and the state machine that drives them.
pub struct Tracer {
    root: Pid,
    threads: HashMap<Pid, Thread>,
    /// New threads that stopped before their creator's event told us about them,
    /// with when: they stay stopped until it does, so no call of theirs arrives
    /// unattributed (or until their creator is found gone, see
    /// [`adopt_orphans`](Self::adopt_orphans)).
    unannounced: HashMap<Pid, Instant>,
    /// The process that ended last: the creator of a new one whose creator was
    /// killed before telling us of it.
    last_ended: Option<Pid>,
    /// New threads announced by their creator's event, whose first stop is pending,
    /// with the creator's process.
    announced: HashMap<Pid, Pid>,
    root_status: Option<i32>,
    /// Stop netvm itself when the command stops (interactive job control).
    mirror_stops: bool,
    /// Every address space's scratch window.
    windows: Windows,
    /// Threads setting up their process's window, in place of their call.
    setups: HashMap<Pid, WindowSetup>,
    /// Threads whose set-up failed, for their call's next presentation.
    set_up_failed: HashSet<Pid>,
    notifications: Option<Notifications>,
}

impl Tracer {
    /// Starts following `root`, a process [`launch::spawn`] started, whose notifier
    /// filter (if it has one) sends `notified` calls to `listener`. The handler hears
    /// of it before any of its calls.
    pub fn new(
        root: Pid,
        listener: Option<OwnedFd>,
        notified: BTreeSet<i64>,
        handler: &mut dyn Handler,
    ) -> Self {
        handler.process_started(root, None);
        let mut threads = HashMap::new();
        threads.insert(root, Thread { process: root, awaiting_exit: None });
        Self {
            root,
            threads,
            unannounced: HashMap::new(),
            last_ended: None,
            announced: HashMap::new(),
            root_status: None,
            mirror_stops: in_foreground_of_terminal(),
            windows: Windows::default(),
            setups: HashMap::new(),
            set_up_failed: HashSet::new(),
            notifications: listener.map(|listener| Notifications {
                notifier: Notifier::new(listener),
                calls: notified,
                deferred: Vec::new(),
            }),
        }
    }

    /// The fd that turns readable when a notified call waits.
    pub fn notification_fd(&self) -> Option<RawFd> {
        self.notifications.as_ref().map(|n| n.notifier.fd())
    }

    /// When the earliest call put off with [`Resume::Retry`] is due, or the
    /// earliest check for an orphan ([`adopt_orphans`](Self::adopt_orphans)).
    pub fn next_retry(&self) -> Option<Instant> {
        let retries =
            self.notifications.iter().flat_map(|n| n.deferred.iter().map(|(due, _)| *due));
        let orphans = self.unannounced.values().map(|&since| since + ORPHAN_AFTER);
        retries.chain(orphans).min()
    }

    /// Handles every pending stop, exit and notification, and every retry that is
    /// due, without blocking; says how many there were.
    pub fn serve(&mut self, handler: &mut dyn Handler) -> usize {
        let handled = self.reap(handler) + self.serve_notifications(handler);
        self.adopt_orphans(handler);
        handled
    }

    /// Takes in the new processes whose creator ended before its fork event told
    /// of them (a `SIGKILL` cancels the event), or they would stay stopped for
    /// ever: those still unannounced after [`ORPHAN_AFTER`] whose parent is no
    /// traced process any more (the kernel handed them to a reaper). Their
    /// creator is taken to be the process that ended last, whose stack they keep.
    fn adopt_orphans(&mut self, handler: &mut dyn Handler) {
        let now = Instant::now();
        let due: Vec<Pid> = self
            .unannounced
            .iter()
            .filter(|&(_, &since)| now >= since + ORPHAN_AFTER)
            .map(|(&tid, _)| tid)
            .collect();
        for tid in due {
            self.unannounced.insert(tid, now);
            let Some(creator) = self.last_ended else { continue };
            let parent = parent_of(tid);
            let traced = |p: Pid| self.threads.values().any(|t| t.process == p);
            if leads_thread_group(tid)
                && parent.is_some_and(|p| !traced(p) && p != nix::unistd::getpid())
            {
                self.unannounced.remove(&tid);
                self.adopt(tid, creator, handler);
                resume(tid);
            }
        }
    }

    fn serve_notifications(&mut self, handler: &mut dyn Handler) -> usize {
        let Some(notifications) = &mut self.notifications else {
            return 0;
        };
        let now = Instant::now();
        let (due, later) =
            std::mem::take(&mut notifications.deferred).into_iter().partition(|(t, _)| *t <= now);
        notifications.deferred = later;
        let mut handled = 0;
        for (_, notification) in due {
            // A call interrupted, or whose thread an exec ended, is no longer waiting;
            // its thread id may already name another program.
            if self.notifications.as_ref().is_some_and(|n| n.notifier.is_waiting(notification.id)) {
                self.on_notification(notification, handler);
                handled += 1;
            }
        }
        // A bounded batch: ptrace stops, signals and the network get their turn even
        // while threads keep calling.
        while handled < NOTIFICATION_BATCH
            && let Some(notification) =
                self.notifications.as_ref().and_then(|n| n.notifier.receive())
        {
            self.on_notification(notification, handler);
            handled += 1;
        }
        handled
    }

    fn on_notification(&mut self, notification: Notification, handler: &mut dyn Handler) {
        let tid = notification.tid;
        let process = match self.threads.get(&tid) {
            Some(thread) => thread.process,
            None => thread_group_of(tid).unwrap_or(tid),
        };
        let (number, args) = (notification.number, notification.args);
        if let Some(setup) = self.setups.get_mut(&tid)
            && setup.is_installing(number, &args)
            && let Some(notifications) = &self.notifications
        {
            let installed = setup
                .take_memfd()
                .ok_or(Errno::EBADF)
                .and_then(|fd| notifications.notifier.add_fd(notification.id, fd.as_raw_fd()));
            let answer = installed.map_or_else(|e| -(e as i64), i64::from);
            return notifications.notifier.reply(notification.id, Reply::Return(answer));
        }
        let call = Syscall::decode(number, args);
        let regs = Registers::of_notified_call(number, args);
        let mut stop =
            SyscallStop { notified: true, ..SyscallStop::new(tid, process, call, regs, None) };
        let resumption = handler.syscall_entry(&mut stop);
        if let Some(gift) = stop.gift.take() {
            return self.give(notification.id, gift);
        }
        let Some(notifications) = &mut self.notifications else { return };
        let reply = match (resumption, stop.answer()) {
            (Resume::Retry, _) => {
                notifications.deferred.push((Instant::now() + RETRY_PAUSE, notification));
                return;
            }
            (_, Some(result)) => Reply::Return(result),
            (Resume::Run, None) => Reply::Continue,
            (Resume::RunToExit, None) => {
                log::error!("{} cannot be followed to its exit: it was notified", call.name());
                Reply::Continue
            }
        };
        notifications.notifier.reply(notification.id, reply);
    }

    /// Answers notified call `id` with a new descriptor, a copy of the gift's.
    fn give(&self, id: u64, gift: Gift) {
        let Some(notifications) = &self.notifications else { return };
        let notifier = &notifications.notifier;
        if let Err(e) = notifier.add_fd_as_result(id, gift.fd.as_raw_fd(), gift.cloexec) {
            notifier.reply(id, Reply::Return(-(e as i64)));
        }
    }

    /// Whether every traced thread is gone.
    pub fn is_finished(&self) -> bool {
        self.threads.is_empty() && self.unannounced.is_empty() && self.announced.is_empty()
    }

    /// The launched command's exit status (128+N if signal N killed it), once known.
    pub fn root_status(&self) -> Option<i32> {
        self.root_status
    }

    /// The launched command's pid.
    pub fn root(&self) -> Pid {
        self.root
    }

    /// Every traced process, for passing on a signal.
    pub fn processes(&self) -> impl Iterator<Item = Pid> + '_ {
        let mut seen = HashSet::new();
        self.threads.values().map(|t| t.process).filter(move |p| seen.insert(*p))
    }

    /// Handles every stop and exit that is pending, without blocking, and says
    /// how many there were.
    fn reap(&mut self, handler: &mut dyn Handler) -> usize {
        let mut handled = 0;
        loop {
            let mut raw = 0;
            // SAFETY: waitpid writes the status into the live local.
            let tid = unsafe { libc::waitpid(-1, &mut raw, libc::__WALL | libc::WNOHANG) };
            match tid {
                0 => return handled,
                -1 if Errno::last() == Errno::EINTR => continue,
                -1 if Errno::last() == Errno::ECHILD => return handled,
                -1 => {
                    log::error!("waitpid: {}", Errno::last());
                    return handled;
                }
                _ => {}
            }
            let tid = Pid::from_raw(tid);
            handled += 1;
            match WaitStatus::from_raw(tid, raw) {
                Ok(status) => self.on_status(status, handler),
                // A real-time signal (SIGRTMIN and up), which nix's Signal cannot
                // name: about to be delivered, or the thread's end.
                Err(_) if libc::WIFSTOPPED(raw) => self.on_signal(tid, libc::WSTOPSIG(raw)),
                Err(_) if libc::WIFSIGNALED(raw) => {
                    self.on_thread_gone(tid, 128 + libc::WTERMSIG(raw), handler)
                }
                Err(e) => log::error!("waitpid: status {raw:#x} of {tid}: {e}"),
            }
        }
    }

    fn on_status(&mut self, status: WaitStatus, handler: &mut dyn Handler) {
        log::trace!("{status:?}");
        match status {
            WaitStatus::Exited(tid, code) => self.on_thread_gone(tid, code, handler),
            WaitStatus::Signaled(tid, signal, _) => {
                self.on_thread_gone(tid, 128 + signal as i32, handler)
            }
            WaitStatus::PtraceEvent(tid, _, event)
                if event == Event::PTRACE_EVENT_SECCOMP as i32 =>
            {
                self.on_seccomp(tid, handler)
            }
            WaitStatus::PtraceSyscall(tid) => self.on_syscall_exit(tid, handler),
            WaitStatus::PtraceEvent(tid, _, event)
                if [
                    Event::PTRACE_EVENT_FORK,
                    Event::PTRACE_EVENT_VFORK,
                    Event::PTRACE_EVENT_CLONE,
                ]
                .iter()
                .any(|e| *e as i32 == event) =>
            {
                self.on_new_thread_event(tid, handler)
            }
            WaitStatus::PtraceEvent(tid, _, event) if event == Event::PTRACE_EVENT_EXEC as i32 => {
                self.on_exec(tid, handler)
            }
            WaitStatus::PtraceEvent(tid, signal, event)
                if event == Event::PTRACE_EVENT_STOP as i32 =>
            {
                self.on_event_stop(tid, signal, handler)
            }
            WaitStatus::PtraceEvent(tid, _, _) => resume(tid),
            // A signal is about to be delivered: deliver it.
            WaitStatus::Stopped(tid, signal) => {
                if self.threads.contains_key(&tid) {
                    self.on_signal(tid, signal as i32)
                } else {
                    // Only a not-yet-announced new thread can be unknown here.
                    self.on_first_stop(tid, handler)
                }
            }
            WaitStatus::Continued(_) | WaitStatus::StillAlive => {}
        }
    }

    /// Signal `signal` is about to be delivered to `tid`: deliver it, or, during a
    /// window set-up, keep it for the end (a handler would run on the set-up's
    /// registers). A number, not a `Signal`: real-time signals have none there.
    fn on_signal(&mut self, tid: Pid, signal: i32) {
        if let Some(setup) = self.setups.get_mut(&tid) {
            setup.deferred.push(signal);
            return ignore_esrch(ptrace::syscall(tid, None));
        }
        self.restart_interrupted(tid);
        resume_with(tid, signal);
    }

    /// Drops the calls of threads `tids` put off for a retry: they are gone.
    fn forget_retries(&mut self, tids: &[Pid]) {
        if let Some(notifications) = &mut self.notifications {
            notifications.deferred.retain(|(_, n)| !tids.contains(&n.tid));
        }
    }

    /// At a signal-delivery stop: see [`notify::restart_interrupted`].
    fn restart_interrupted(&self, tid: Pid) {
        let Some(notifications) = &self.notifications else { return };
        if let Ok(mut regs) = Registers::read(tid)
            && notify::restart_interrupted(&mut regs, |nr| notifications.calls.contains(&nr))
        {
            ignore_esrch(regs.write(tid));
        }
    }

    fn on_thread_gone(&mut self, tid: Pid, status: i32, handler: &mut dyn Handler) {
        fds::forget_thread(tid);
        self.unannounced.remove(&tid);
        self.setups.remove(&tid);
        self.set_up_failed.remove(&tid);
        self.forget_retries(&[tid]);
        if self.announced.remove(&tid).is_some() {
            return;
        }
        let Some(thread) = self.threads.remove(&tid) else {
            return;
        };
        if tid == self.root {
            self.root_status = Some(status);
        }
        handler.thread_ended(tid);
        self.windows.release(thread.process, tid);
        // The leader's exit is reported after all its threads': the process is gone.
        if tid == thread.process {
            self.windows.leave(thread.process);
            self.last_ended = Some(thread.process);
            handler.process_ended(thread.process);
        }
    }

    fn on_seccomp(&mut self, tid: Pid, handler: &mut dyn Handler) {
        let Some(process) = self.threads.get(&tid).map(|t| t.process) else {
            return resume(tid);
        };
        let regs = match Registers::read(tid) {
            Ok(regs) => regs,
            Err(_) => return, // killed meanwhile: its exit will be reported
        };
        let call = Syscall::decode(regs.syscall_number(), regs.syscall_args());
        let args = regs.syscall_args();
        let mut stop = SyscallStop::new(tid, process, call, regs, None);
        let notified = self.can_install_fds();
        // One thread of a process sets its window up; the others wait for it. A
        // thread whose set-up just failed makes its call without (see `setup`).
        let busy = self.is_setting_up(process);
        let setup = (!busy && !self.set_up_failed.remove(&tid))
            .then(|| WindowSetup::plan(&self.windows, process, notified, stop.number(), args))
            .flatten();
        let first = if busy {
            Some(pause_instead(&mut stop))
        } else if let Some(setup) = setup {
            // The process's first trapped call: its window first, then the call.
            let (number, args) = setup.call();
            stop.set_number(number);
            for (index, value) in args.into_iter().enumerate() {
                stop.set_arg(index, value);
            }
            self.setups.insert(tid, setup);
            Some(Interlude::SetUp)
        } else {
            stop.room = self.windows.room(process, tid);
            let resumption = handler.syscall_entry(&mut stop);
            if let Some(slot) = stop.used.get() {
                self.windows.hold(process, tid, slot);
            }
            let first = (resumption == Resume::Retry).then(|| pause_instead(&mut stop));
            if resumption == Resume::Run && first.is_none() && stop.original_args.is_none() {
                self.windows.release(process, tid);
                let _ = stop.flush();
                return resume(tid);
            }
            first
        };
        if stop.flush().is_err() {
            return;
        }
        if let Some(thread) = self.threads.get_mut(&tid) {
            let original_args = stop.original_args;
            thread.awaiting_exit = Some(AwaitedExit { call, original_args, first });
        }
        ignore_esrch(ptrace::syscall(tid, None));
    }

    fn on_syscall_exit(&mut self, tid: Pid, handler: &mut dyn Handler) {
        let Some(thread) = self.threads.get_mut(&tid) else {
            return resume(tid);
        };
        let Some(AwaitedExit { call, original_args, first }) = thread.awaiting_exit.take() else {
            return resume(tid);
        };
        let process = thread.process;
        if let Ok(regs) = Registers::read(tid) {
            if first == Some(Interlude::SetUp) {
                return self.on_setup_exit(tid, process, regs, call, original_args);
            }
            let mut stop = SyscallStop::new(tid, process, call, regs, original_args);
            match first {
                Some(Interlude::Pause(number)) => stop.restart(number),
                _ => {
                    stop.room = self.windows.room(process, tid);
                    handler.syscall_exit(&mut stop);
                }
            }
            stop.restore_args();
            if stop.flush().is_err() {
                return;
            }
        }
        // The call is over (or starts again, and is seen anew).
        self.windows.release(process, tid);
        resume(tid)
    }

    /// Whether a thread of `process` is setting its window up.
    fn is_setting_up(&self, process: Pid) -> bool {
        self.setups
            .keys()
            .any(|t| self.threads.get(t).is_some_and(|thread| thread.process == process))
    }

    /// Whether the notifier can answer a set-up's call with a descriptor (see
    /// [`setup`]): only through a call the notifier filter sends here.
    fn can_install_fds(&self) -> bool {
        self.notifications.as_ref().is_some_and(|n| n.calls.contains(&libc::SYS_getsockname))
    }

    /// A call of a window set-up returned (see [`setup`]): the next one, or the
    /// thread's own call again.
    fn on_setup_exit(
        &mut self,
        tid: Pid,
        process: Pid,
        mut regs: Registers,
        call: Syscall,
        original_args: Option<[u64; 6]>,
    ) {
        let Some(mut setup) = self.setups.remove(&tid) else { return resume(tid) };
        // At the next call's entry nothing is to be done: its exit is the news.
        let at_entry = is_at_syscall_entry(tid);
        if at_entry
            || setup.advance(regs.return_value(), &mut self.windows, process, |at| {
                setup::mapping_at(process, at)
            })
        {
            if !at_entry {
                let (number, args) = setup.call();
                regs.restart_as(number, args);
                if regs.write(tid).is_err() {
                    return;
                }
            }
            self.setups.insert(tid, setup);
            if let Some(thread) = self.threads.get_mut(&tid) {
                let first = Some(Interlude::SetUp);
                thread.awaiting_exit = Some(AwaitedExit { call, original_args, first });
            }
            return ignore_esrch(ptrace::syscall(tid, None));
        }
        // Done: the thread makes its own call again, and sees what came meanwhile.
        if self.windows.needs_mapping(process)
            || (self.can_install_fds() && self.windows.needs_sealing(process))
        {
            self.set_up_failed.insert(tid);
        }
        regs.restart_as(setup.number, setup.args);
        if regs.write(tid).is_err() {
            return;
        }
        for signal in setup.deferred {
            // SAFETY: tgkill takes plain integers.
            unsafe { libc::syscall(libc::SYS_tgkill, process.as_raw(), tid.as_raw(), signal) };
        }
        resume(tid)
    }

    /// A fork, vfork or clone event: the creator tells us the new thread's id.
    fn on_new_thread_event(&mut self, creator: Pid, handler: &mut dyn Handler) {
        let creator_process = self.threads.get(&creator).map(|t| t.process);
        if let (Ok(raw), Some(creator_process)) = (ptrace::getevent(creator), creator_process) {
            let child = Pid::from_raw(raw as i32);
            if self.unannounced.remove(&child).is_some() {
                self.adopt(child, creator_process, handler);
                resume(child);
            } else if !self.threads.contains_key(&child) && kill(child, None).is_ok() {
                // (A child killed before this event was reaped already; waiting for
                // its first stop would wait forever.)
                self.announced.insert(child, creator_process);
            }
        }
        resume(creator)
    }

    /// The first stop of a thread made by a traced one.
    fn on_first_stop(&mut self, tid: Pid, handler: &mut dyn Handler) {
        if let Some(creator_process) = self.announced.remove(&tid) {
            self.adopt(tid, creator_process, handler);
            resume(tid);
        } else {
            self.unannounced.insert(tid, Instant::now());
        }
    }

    /// Records a new thread of `creator`'s making and, if it starts a new process
    /// (rather than joining the creator's), tells the handler.
    fn adopt(&mut self, tid: Pid, creator: Pid, handler: &mut dyn Handler) {
        // A new thread joins its creator's process (`CLONE_THREAD`), or leads
        // a new one.
        let process = if leads_thread_group(tid) { tid } else { creator };
        if process == tid {
            self.windows.forked(creator, tid, shares_memory(creator, tid));
            handler.process_started(tid, Some(creator));
        }
        self.threads.insert(tid, Thread { process, awaiting_exit: None });
    }

    fn on_exec(&mut self, tid: Pid, handler: &mut dyn Handler) {
        // A non-leader thread that execs takes over the leader's id: its old id, and
        // the old leader (who may have been inside a call), are never reported again.
        if let Ok(former) = ptrace::getevent(tid) {
            let former = Pid::from_raw(former as i32);
            // The old leader's call put off for a retry died with it.
            self.forget_retries(&[former, tid]);
            self.setups.remove(&former);
            self.setups.remove(&tid);
            if former != tid {
                fds::forget_thread(former);
                self.threads.remove(&former);
                handler.thread_ended(former);
                handler.thread_ended(tid);
            }
        }
        if let Some(thread) = self.threads.get_mut(&tid) {
            thread.awaiting_exit = None;
            // A new program, a new address space: its window is made anew if needed.
            let process = thread.process;
            self.windows.leave(process);
        }
        if matches!(Registers::read(tid), Ok(regs) if !regs.is_native_mode()) {
            eprintln!(
                "netvm: process {tid} executed a 32-bit program; netvm runs {} programs only, \
                 so it was killed",
                std::env::consts::ARCH
            );
            let _ = kill(tid, Signal::SIGKILL);
        }
        resume(tid)
    }

    /// `PTRACE_EVENT_STOP`: a new thread's first stop, a group-stop, or an interrupt.
    fn on_event_stop(&mut self, tid: Pid, signal: Signal, handler: &mut dyn Handler) {
        if !self.threads.contains_key(&tid) {
            return self.on_first_stop(tid, handler);
        }
        let is_group_stop =
            matches!(signal, Signal::SIGSTOP | Signal::SIGTSTP | Signal::SIGTTIN | Signal::SIGTTOU);
        if !is_group_stop {
            return resume(tid);
        }
        // Stay stopped, but let the kernel wake the thread on SIGCONT.
        // SAFETY: PTRACE_LISTEN takes no pointers; `tid` is a thread we trace.
        let _ = unsafe { libc::ptrace(libc::PTRACE_LISTEN, tid.as_raw(), 0, 0) };
        if tid == self.root && self.mirror_stops {
            // Show the shell a stopped job, as it would see the command itself stop;
            // when the shell continues us, continue the command too.
            let _ = kill(nix::unistd::getpid(), Signal::SIGSTOP);
            let _ = kill(self.root, Signal::SIGCONT);
        }
    }
}

/// Replaces a call put off with [`Resume::Retry`] by a pause of [`RETRY_PAUSE`]
/// (`nanosleep`, its time in scratch space; `poll` of nothing for a millisecond if
/// that space cannot be written).
fn pause_instead(stop: &mut SyscallStop) -> Interlude {
    let number = stop.number();
    let pause = libc::timespec { tv_sec: 0, tv_nsec: RETRY_PAUSE.as_nanos() as i64 };
    let at = stop.scratch(size_of::<libc::timespec>());
    if let Ok(at) = at
        && stop.memory().write(at, &pause).is_ok()
    {
        stop.set_number(libc::SYS_nanosleep);
        stop.set_arg(0, at);
        stop.set_arg(1, 0);
    } else {
        stop.set_number(libc::SYS_poll);
        stop.set_arg(0, 0);
        stop.set_arg(1, 0);
        stop.set_arg(2, 1);
    }
    Interlude::Pause(number)
}

/// Whether `tid`, in a syscall stop, is entering its call (rather than leaving).
fn is_at_syscall_entry(tid: Pid) -> bool {
    // SAFETY: ptrace_syscall_info is plain data, filled by the kernel up to the
    // size passed.
    let mut info: libc::ptrace_syscall_info = unsafe { std::mem::zeroed() };
    // SAFETY: GET_SYSCALL_INFO writes at most `size_of(info)` bytes into `info`.
    let got = unsafe {
        libc::ptrace(
            libc::PTRACE_GET_SYSCALL_INFO,
            tid.as_raw(),
            size_of::<libc::ptrace_syscall_info>(),
            &mut info,
        )
    };
    got > 0 && info.op == libc::PTRACE_SYSCALL_INFO_ENTRY
}

/// Whether `child` runs in `parent`'s address space (`CLONE_VM`: vfork,
/// posix_spawn) rather than in a copy of it.
fn shares_memory(parent: Pid, child: Pid) -> bool {
    const KCMP_VM: libc::c_int = 1;
    // SAFETY: kcmp takes two pids, a type and two unused indices; no pointers.
    let order =
        unsafe { libc::syscall(libc::SYS_kcmp, parent.as_raw(), child.as_raw(), KCMP_VM, 0, 0) };
    order == 0
}

/// Resumes a stopped thread, delivering `signal` (a number: real-time signals
/// have no `Signal`), 0 for none. A thread killed meanwhile (ESRCH) is not an
/// error: its death is reported by waitpid.
fn resume_with(tid: Pid, signal: i32) {
    // SAFETY: PTRACE_CONT takes the signal to deliver as a number; no pointers.
    let resumed = unsafe { libc::ptrace(libc::PTRACE_CONT, tid.as_raw(), 0, signal) };
    ignore_esrch(if resumed == 0 { Ok(()) } else { Err(Errno::last()) });
}

/// Resumes a stopped thread.
fn resume(tid: Pid) {
    resume_with(tid, 0);
}

fn ignore_esrch(result: nix::Result<()>) {
    if let Err(e) = result
        && e != Errno::ESRCH
    {
        log::warn!("ptrace: {e}");
    }
}

/// Whether thread `tid` leads its thread group (is a process's first thread):
/// `tgkill(tid, tid, 0)` finds it only then. Cheaper than reading
/// `/proc/TID/status`, which a fork would pay for otherwise; read only if the
/// kernel will not say (a permission check that fails).
fn leads_thread_group(tid: Pid) -> bool {
    // SAFETY: tgkill with signal 0 only checks that the thread exists in the group.
    match unsafe { libc::syscall(libc::SYS_tgkill, tid.as_raw(), tid.as_raw(), 0) } {
        0 => true,
        _ if Errno::last() == Errno::ESRCH => false,
        _ => thread_group_of(tid) == Some(tid),
    }
}

/// The parent of process `pid`, as `/proc` tells (`None` once it is gone).
fn parent_of(pid: Pid) -> Option<Pid> {
    pid_in_status(pid, "PPid:")
}

/// The process a thread belongs to (`None` once it is gone).
pub fn thread_group_of(tid: Pid) -> Option<Pid> {
    pid_in_status(tid, "Tgid:")
}

/// The pid that `/proc/TID/status` gives after `key` (`None` once it is gone).
fn pid_in_status(tid: Pid, key: &str) -> Option<Pid> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix(key))?;
    line.trim().parse().ok().map(Pid::from_raw)
}

/// Whether netvm runs as the foreground job of a terminal, where a shell expects
/// `Ctrl-Z` to stop it.
fn in_foreground_of_terminal() -> bool {
    let stdin = std::io::stdin();
    nix::unistd::tcgetpgrp(&stdin).is_ok_and(|pgrp| pgrp == nix::unistd::getpgrp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_processs_first_thread_leads_its_group() {
        assert!(leads_thread_group(nix::unistd::getpid()));
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let live = std::thread::spawn(move || {
            tx.send(nix::unistd::gettid()).expect("the test listens");
            done_rx.recv().ok();
        });
        let tid = rx.recv().expect("the thread sent its id");
        assert!(!leads_thread_group(tid), "thread {tid} counted as a process");
        done_tx.send(()).expect("the thread waits");
        live.join().expect("the thread ended");
    }
}
