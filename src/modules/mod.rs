//! Modules, and the dispatch of trapped calls to them.
//!
//! A module virtualizes a family of system calls (as in vuos: `vunet` the socket
//! API; others could follow). It says which calls it wants to see as seccomp
//! [`TrapRule`]s, and answers each one that stops with a [`Disposition`]. The
//! [`Dispatcher`] is the tracer's [`Handler`]: it builds the filter from every
//! module's rules, routes each call to the module that claimed it, and writes the
//! `--trace` log.

pub mod boundary;
pub mod trace;
pub mod vunet;

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::Instant;

use nix::errno::Errno;
use nix::unistd::Pid;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::config::{Fault, Table};
use crate::syscall::Syscall;
use crate::tracer::filter::TrapRule;
use crate::tracer::{Handler, Resume, SyscallStop, TraceeMemory};
use trace::TraceLog;

/// The configuration of the modules a session loads: `modules.toml` read with
/// [`Config::read`].
#[derive(Debug)]
pub struct Config {
    /// The network module's `[vunet]` table.
    pub vunet: vunet::config::VunetConfig,
}

impl Config {
    /// Reads the top table of `modules.toml`: one table per module, none other.
    pub fn read(top: &Table) -> Result<Self, Fault> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Modules {
            #[allow(dead_code)]
            vunet: std::collections::HashMap<String, IgnoredAny>,
        }
        top.read::<Modules>()?;
        let vunet =
            top.table("vunet").ok_or_else(|| (top.span(), "[vunet] is not a table".into()))?;
        let vunet = vunet::config::VunetConfig::read(&vunet, &vunet::KINDS)?;
        Ok(Self { vunet })
    }
}

/// How a module answers a trapped call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// The kernel runs the call as the tracee made it.
    Kernel,
    /// The call does not run; the tracee sees this (a value or `-errno`).
    Return(i64),
    /// The kernel runs the call (perhaps with rewritten arguments), then the module's
    /// [`Module::finish`] sees the result. Not for notified calls.
    KernelThenFinish,
    /// Not yet: the module is waiting on its own work (the network) and wants to
    /// see the call again in a moment, as if made anew.
    Retry,
}

/// What a handler makes of a call: a [`Disposition`], or the errno the call fails
/// with (so that handlers can use `?`).
pub type Handled = Result<Disposition, Errno>;

impl Disposition {
    /// The disposition of a handled call: an error is the call's `-errno`.
    pub fn of(handled: Handled) -> Self {
        handled.unwrap_or_else(|e| Self::Return(-(e as i64)))
    }
}

/// A module's answer, with who gave it (shown in the trace: a stack's name, or
/// `kernel` for calls on objects no module virtualizes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Who answered: a stack's name, or `kernel`.
    pub by: Rc<str>,
    /// What happens to the call.
    pub disposition: Disposition,
}

/// A module of netvm: a family of virtualized system calls.
pub trait Module {
    /// The module's name, as in `modules.toml`.
    fn name(&self) -> &'static str;
    /// The calls this module wants to see. A call whose handling never needs more
    /// than [`Disposition::Return`], [`Disposition::Kernel`] or
    /// [`Disposition::Retry`], and no registers, may ask to be
    /// [notified](TrapRule::notified): it costs less.
    fn trap_rules(&self) -> Vec<TrapRule>;
    /// Answers a trapped call at its entry.
    fn handle(&mut self, stop: &mut SyscallStop) -> Answer;
    /// Completes a call answered with [`Disposition::KernelThenFinish`].
    fn finish(&mut self, stop: &mut SyscallStop) {
        let _ = stop;
    }
    /// Renders the call's arguments for the trace, reading the tracee's memory as
    /// needed; `result` is known (a value or `-errno`), so output arguments can be
    /// shown when the call succeeded.
    fn describe(&self, memory: &TraceeMemory, call: &Syscall, result: i64) -> String;
    /// A process appeared: the launched command (`parent` is `None`) or a child.
    fn process_started(&mut self, process: Pid, parent: Option<Pid>);
    /// A process ended.
    fn process_ended(&mut self, process: Pid);
    /// A thread ended: forget anything kept per thread.
    fn thread_ended(&mut self, tid: Pid) {
        let _ = tid;
    }
    /// A file descriptor the supervisor's loop watches for this module (a module
    /// with work of its own, such as moving packets, keeps its sources behind it):
    /// when it is readable, the loop calls [`Module::service`].
    fn event_fd(&self) -> Option<RawFd> {
        None
    }
    /// Does the module's own work: after its event fd turned readable, when the
    /// deadline it last gave has passed, and after each batch of trapped calls.
    /// Returns when it next needs to run if nothing else happens.
    fn service(&mut self, now: Instant) -> Option<Instant> {
        let _ = now;
        None
    }
}

/// Routes trapped calls to modules; the tracer's [`Handler`].
pub struct Dispatcher {
    modules: Vec<Box<dyn Module>>,
    /// Which module claimed each call number.
    owners: HashMap<i64, usize>,
    trace: Option<TraceLog>,
    /// Calls in flight to their exit stop: (module, who answered, whether the module
    /// itself wants the exit).
    in_flight: HashMap<Pid, (usize, Rc<str>, bool)>,
}

impl Dispatcher {
    /// A dispatcher over `modules`. Two modules may not claim the same call.
    pub fn new(modules: Vec<Box<dyn Module>>, trace: Option<TraceLog>) -> Self {
        let mut owners = HashMap::new();
        for (index, module) in modules.iter().enumerate() {
            for rule in module.trap_rules() {
                let previous = owners.insert(rule.syscall, index);
                assert!(
                    previous.is_none_or(|p| p == index),
                    "modules {} and {} both claim system call {}",
                    modules[previous.unwrap_or(0)].name(),
                    module.name(),
                    rule.syscall
                );
            }
        }
        Self { modules, owners, trace, in_flight: HashMap::new() }
    }

    /// Every module's trap rules, for the seccomp filter.
    pub fn trap_rules(&self) -> Vec<TrapRule> {
        self.modules.iter().flat_map(|m| m.trap_rules()).collect()
    }

    /// Whether every call is to be followed to its exit (for `--trace`), which
    /// notified calls cannot be.
    pub fn follows_every_call(&self) -> bool {
        self.trace.is_some()
    }

    /// The modules' event fds, each with the module's index.
    pub fn event_fds(&self) -> Vec<(usize, RawFd)> {
        self.modules.iter().enumerate().filter_map(|(i, m)| Some((i, m.event_fd()?))).collect()
    }

    /// Lets every module do its own work; returns the earliest deadline any gave.
    pub fn service(&mut self, now: Instant) -> Option<Instant> {
        self.modules.iter_mut().filter_map(|m| m.service(now)).min()
    }

    fn log(&mut self, module: usize, by: &str, stop: &SyscallStop, result: i64) {
        if let Some(trace) = &mut self.trace {
            let call = stop.call();
            let args = self.modules[module].describe(&stop.memory(), &call, result);
            trace.line(stop.tid, by, call.name(), &args, result);
        }
    }
}

impl Handler for Dispatcher {
    fn syscall_entry(&mut self, stop: &mut SyscallStop) -> Resume {
        let Some(&module) = self.owners.get(&stop.number()) else {
            // Trapped but claimed by nobody: cannot happen with a filter built from
            // the same rules; let the kernel have it.
            return Resume::Run;
        };
        let Answer { by, disposition } = self.modules[module].handle(stop);
        match disposition {
            Disposition::Return(result) => {
                stop.skip(result);
                self.log(module, &by, stop, result);
                Resume::Run
            }
            Disposition::Retry => Resume::Retry,
            Disposition::Kernel if self.trace.is_none() => Resume::Run,
            Disposition::Kernel | Disposition::KernelThenFinish if stop.is_notified() => {
                debug_assert!(false, "{} by {by}: a notified call has no exit", stop.call().name());
                Resume::Run
            }
            Disposition::Kernel | Disposition::KernelThenFinish => {
                let wants_finish = disposition == Disposition::KernelThenFinish;
                self.in_flight.insert(stop.tid, (module, by, wants_finish));
                Resume::RunToExit
            }
        }
    }

    fn syscall_exit(&mut self, stop: &mut SyscallStop) {
        let Some((module, by, wants_finish)) = self.in_flight.remove(&stop.tid) else {
            return;
        };
        if wants_finish {
            self.modules[module].finish(stop);
        }
        // A call the module restarts is logged when it finally returns.
        if !stop.is_restarting() {
            self.log(module, &by, stop, stop.result());
        }
    }

    fn process_started(&mut self, process: Pid, parent: Option<Pid>) {
        for module in &mut self.modules {
            module.process_started(process, parent);
        }
    }

    fn process_ended(&mut self, process: Pid) {
        for module in &mut self.modules {
            module.process_ended(process);
        }
    }

    fn thread_ended(&mut self, tid: Pid) {
        // A thread killed inside a call never reaches its exit stop.
        self.in_flight.remove(&tid);
        for module in &mut self.modules {
            module.thread_ended(tid);
        }
    }
}
