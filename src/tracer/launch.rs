//! Starting the command: finding it, checking it can run, and starting it traced.
//!
//! The child is seized before it runs a single instruction of the command: it forks,
//! waits on a pipe until the parent has `PTRACE_SEIZE`d it, installs the seccomp
//! filter (with `PR_SET_NO_NEW_PRIVS`, which lets unprivileged users install filters)
//! and only then execs. No signals are involved, so no stop needs untangling.
//!
//! With a notifier filter, the child installs it second and reports its listener's
//! fd number on another pipe; the parent copies the listener out (`pidfd_getfd`)
//! and opens the gate once more, and the child closes its own copy before exec, so
//! the command never holds the fd that answers its calls.

use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use goblin::elf::{Elf, header};
use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork, pipe2};
use seccompiler::BpfProgram;

use super::arch::ELF_MACHINE_NATIVE;

/// Why the command could not be started. Each maps to the exit status a shell would
/// give, so that `netvm run` is a drop-in prefix in scripts.
#[derive(Debug)]
pub enum LaunchError {
    /// Not found on `PATH` (or no such file): status 127.
    NotFound(OsString),
    /// Found but not runnable: not executable, a directory, a foreign binary: status 126.
    CannotExecute(PathBuf, String),
    /// Tracing could not start (for example, netvm is itself traced): status 125.
    Trace(String),
}

impl LaunchError {
    /// The exit status netvm ends with.
    pub fn exit_status(&self) -> i32 {
        match self {
            Self::NotFound(_) => 127,
            Self::CannotExecute(..) => 126,
            Self::Trace(_) => 125,
        }
    }
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound(name) => write!(f, "{}: command not found", name.to_string_lossy()),
            Self::CannotExecute(path, why) => write!(f, "{}: {why}", path.display()),
            Self::Trace(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for LaunchError {}

/// A resolved command line, ready to exec.
#[derive(Debug)]
pub struct Command {
    path: CString,
    argv: Vec<CString>,
}

impl Command {
    /// Resolves `program` as `execvp` would (a name with a slash is a path, any other
    /// name is looked up on `PATH`), and checks that it is something netvm can run.
    pub fn resolve(program: &OsStr, args: &[OsString]) -> Result<Self, LaunchError> {
        let path = find_program(program)?;
        check_runnable(&path)?;
        let cstring = |s: &OsStr| {
            CString::new(s.as_bytes()).map_err(|_| {
                LaunchError::CannotExecute(path.clone(), "argument contains a NUL byte".into())
            })
        };
        let argv = std::iter::once(program)
            .chain(args.iter().map(OsString::as_os_str))
            .map(cstring)
            .collect::<Result<_, _>>()?;
        Ok(Self { path: cstring(path.as_os_str())?, argv })
    }

    /// The program's path, as it will be executed.
    pub fn path(&self) -> &std::ffi::CStr {
        &self.path
    }
}

fn find_program(program: &OsStr) -> Result<PathBuf, LaunchError> {
    let not_found = || LaunchError::NotFound(program.to_owned());
    if program.is_empty() {
        return Err(not_found());
    }
    if program.as_bytes().contains(&b'/') {
        let path = PathBuf::from(program);
        return if path.exists() { Ok(path) } else { Err(not_found()) };
    }
    let search = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    // Like execvp: the first executable regular file wins; a match that is not
    // executable is remembered in case nothing better turns up.
    let mut first_match = None;
    for dir in std::env::split_paths(&search) {
        let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
        let candidate = dir.join(program);
        let Ok(meta) = candidate.metadata() else {
            continue;
        };
        if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
            return Ok(candidate);
        }
        first_match.get_or_insert(candidate);
    }
    first_match.ok_or_else(not_found)
}

/// Refuses directories, non-executable files and ELF programs for another ABI, whose
/// system calls would bypass the native filter.
fn check_runnable(path: &Path) -> Result<(), LaunchError> {
    let refuse = |why: &str| Err(LaunchError::CannotExecute(path.to_owned(), why.to_owned()));
    let meta = match path.metadata() {
        Ok(meta) => meta,
        Err(e) => return refuse(&io_reason(&e)),
    };
    if meta.is_dir() {
        return refuse("Is a directory");
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return refuse("Permission denied");
    }
    let mut head = [0u8; 64];
    let len = match std::fs::File::open(path).and_then(|mut f| read_up_to(&mut f, &mut head)) {
        Ok(len) => len,
        Err(e) => return refuse(&io_reason(&e)),
    };
    match elf_abi_problem(&head[..len]) {
        Some(why) => refuse(&why),
        None => Ok(()),
    }
}

fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    // "Permission denied (os error 13)" -> "Permission denied", as a shell says it.
    text.split(" (os error").next().unwrap_or(&text).to_owned()
}

/// For an ELF image, why netvm cannot run it (`None` if it can, or if it is no ELF:
/// scripts and other formats are left to the kernel).
pub fn elf_abi_problem(head: &[u8]) -> Option<String> {
    if !head.starts_with(header::ELFMAG) {
        return None;
    }
    let reason = |what: &str| {
        Some(format!(
            "{what}; netvm runs {} programs only (their system calls would take another ABI)",
            std::env::consts::ARCH
        ))
    };
    if head.len() < header::SIZEOF_IDENT {
        return reason("a truncated ELF file");
    }
    if head[header::EI_CLASS] != header::ELFCLASS64 {
        return reason("a 32-bit ELF program");
    }
    match Elf::parse_header(head) {
        Ok(h) if h.e_machine == ELF_MACHINE_NATIVE => None,
        Ok(h) => reason(&format!("an ELF program for {}", header::machine_to_str(h.e_machine))),
        Err(_) => reason("a malformed ELF file"),
    }
}

/// The filters a launched command gets.
pub struct Filters<'a> {
    /// The main filter (`SECCOMP_RET_TRACE` for trapped calls).
    pub main: &'a BpfProgram,
    /// The notifier filter, if calls are to arrive as notifications.
    pub notifier: Option<&'a BpfProgram>,
}

/// A started command.
pub struct Launched {
    /// Its pid.
    pub pid: Pid,
    /// The notifier filter's listener, if it was installed. Without one (a kernel
    /// before 5.19), the main filter traps those calls instead.
    pub listener: Option<OwnedFd>,
}

/// Starts `command` seized with `options`, the filters installed and the signal mask
/// `child_mask` (the launcher's own blocks some signals it reads from a signalfd).
pub fn spawn(
    command: &Command,
    filters: Filters,
    options: ptrace::Options,
    child_mask: &SigSet,
) -> Result<Launched, LaunchError> {
    let trace_error = |what: &str, e: Errno| LaunchError::Trace(format!("{what}: {}", e.desc()));
    let (gate_read, gate_write) =
        pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| trace_error("pipe", e))?;
    let (report_read, report_write) =
        pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| trace_error("pipe", e))?;
    let notifier = filters.notifier.map(|program| libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    });
    let child_filters = ChildFilters { main: filters.main, notifier: notifier.as_ref() };
    // The argument vector is built before forking: the child allocates nothing.
    let mut argv: Vec<*const libc::c_char> = command.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());

    // The child starts with every signal blocked and unblocks them just before exec:
    // once seized, a signal would stop it in a delivery stop, and the launcher,
    // waiting on the pipes, would never resume it.
    let mut own_mask = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), Some(&mut own_mask))
        .map_err(|e| trace_error("sigprocmask", e))?;
    // SAFETY: the supervisor is single-threaded when it launches, and the child only
    // calls async-signal-safe functions before exec (see `exec_child`).
    let forked = unsafe { fork() };
    if !matches!(forked, Ok(ForkResult::Child)) {
        let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&own_mask), None);
    }
    match forked.map_err(|e| trace_error("fork", e))? {
        ForkResult::Child => {
            drop(gate_write);
            drop(report_read);
            exec_child(gate_read, report_write, command, &argv, child_filters, child_mask)
        }
        ForkResult::Parent { child } => {
            drop(gate_read);
            drop(report_write);
            if let Err(e) = ptrace::seize(child, options) {
                let _ = kill(child, Signal::SIGKILL);
                let _ = waitpid(child, None);
                let hint = if e == Errno::EPERM {
                    " (is netvm itself being traced? Inside a netvm session the session's \
                     tracer already follows every new process)"
                } else {
                    ""
                };
                return Err(LaunchError::Trace(format!(
                    "cannot trace the command: {}{hint}",
                    e.desc()
                )));
            }
            // Open the gate: the child may now install its filters.
            let _ = nix::unistd::write(&gate_write, b"g");
            let listener = match notifier {
                Some(_) => take_listener(child, report_read, &gate_write)?,
                None => None,
            };
            Ok(Launched { pid: child, listener })
        }
    }
}

/// Reads the listener's fd number from the child, copies the listener, and lets the
/// child go on to exec.
fn take_listener(
    child: Pid,
    report: OwnedFd,
    gate: &OwnedFd,
) -> Result<Option<OwnedFd>, LaunchError> {
    let mut number = [0u8; 4];
    let fail = |why: String| {
        let _ = kill(child, Signal::SIGKILL);
        LaunchError::Trace(why)
    };
    if std::fs::File::from(report).read_exact(&mut number).is_err() {
        // The child died before it could report (its own message says why).
        return Err(fail("the command's process ended before it started".into()));
    }
    let number = i32::from_ne_bytes(number);
    let listener = if number >= 0 {
        let copy = super::fds::copy_fd(child, child, number).map_err(|e| {
            fail(format!("cannot take the seccomp notification listener: {}", e.desc()))
        })?;
        Some(copy)
    } else {
        log::info!(
            "no seccomp notifications ({}): every trapped call takes a ptrace stop",
            Errno::from_raw(-number).desc()
        );
        None
    };
    let _ = nix::unistd::write(gate, b"g");
    Ok(listener)
}

/// The child's view of [`Filters`], made before forking.
struct ChildFilters<'a> {
    main: &'a BpfProgram,
    notifier: Option<&'a libc::sock_fprog>,
}

/// The child's side: wait for the tracer, filter, exec. Never returns.
fn exec_child(
    gate: OwnedFd,
    report: OwnedFd,
    command: &Command,
    argv: &[*const libc::c_char],
    filters: ChildFilters,
    child_mask: &SigSet,
) -> ! {
    let die = |msg: &[u8], status: i32| -> ! {
        // SAFETY: write(2) and _exit(2) are async-signal-safe; `msg` is a live slice.
        unsafe {
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::_exit(status)
        }
    };
    let wait_at_gate = || {
        let mut byte = [0u8; 1];
        loop {
            // SAFETY: reads one byte into a live local buffer.
            let n = unsafe { libc::read(gate.as_raw_fd(), byte.as_mut_ptr().cast(), 1) };
            match n {
                1 => break,
                -1 if Errno::last() == Errno::EINTR => continue,
                // The launcher gave up on us (it could not trace): leave quietly.
                _ => die(b"", 125),
            }
        }
    };
    wait_at_gate();
    // Rust's runtime ignores SIGPIPE in netvm, and an ignored signal stays ignored
    // across exec: give the command the default a shell would.
    // SAFETY: signal(2) is async-signal-safe; SIG_DFL is a valid disposition.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    if seccompiler::apply_filter(filters.main).is_err() {
        die(b"netvm: cannot install the seccomp filter\n", 125);
    }
    if let Some(notifier) = filters.notifier {
        let listener = super::notify::install(notifier);
        let number = listener.to_ne_bytes();
        // SAFETY: writes four bytes from a live local; the pipe holds far more.
        if unsafe { libc::write(report.as_raw_fd(), number.as_ptr().cast(), 4) } != 4 {
            die(b"netvm: cannot report the notification listener\n", 125);
        }
        // The launcher has its copy once the gate opens again.
        wait_at_gate();
        if listener >= 0 {
            // SAFETY: closes the fd seccomp just gave us, which nothing else uses.
            unsafe { libc::close(listener) };
        }
    }
    drop(report);
    // Signals that came meanwhile are delivered now, to a tracer that listens.
    if sigprocmask(SigmaskHow::SIG_SETMASK, Some(child_mask), None).is_err() {
        die(b"netvm: cannot restore the signal mask\n", 125);
    }
    // SAFETY: `path` is a NUL-terminated string and `argv` a NULL-terminated array of
    // them, all alive until exec replaces this image; `environ` is the process's own.
    unsafe {
        libc::execv(command.path.as_ptr(), argv.as_ptr());
    }
    // exec failed after the checks passed (a race, or ENOEXEC of an odd file).
    let status = if Errno::last() == Errno::ENOENT { 127 } else { 126 };
    die(b"netvm: cannot execute the command\n", status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_commands_like_execvp() {
        let sh = Command::resolve(OsStr::new("sh"), &[]).unwrap();
        assert!(sh.path().to_bytes().ends_with(b"/sh"));
        let missing = Command::resolve(OsStr::new("no-such-command-netvm"), &[]).unwrap_err();
        assert_eq!(missing.exit_status(), 127);
        assert_eq!(missing.to_string(), "no-such-command-netvm: command not found");
        let empty = Command::resolve(OsStr::new(""), &[]).unwrap_err();
        assert_eq!(empty.exit_status(), 127);
    }

    #[test]
    fn refuses_what_cannot_run() {
        let dir = Command::resolve(OsStr::new("/"), &[]).unwrap_err();
        assert_eq!(dir.exit_status(), 126);
        assert!(dir.to_string().contains("Is a directory"));
        let not_exec = Command::resolve(OsStr::new("/etc/passwd"), &[]).unwrap_err();
        assert_eq!(not_exec.exit_status(), 126);
        assert!(not_exec.to_string().contains("Permission denied"));
    }

    fn elf_head(class: u8, machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(header::ELFMAG);
        h[header::EI_CLASS] = class;
        h[header::EI_DATA] = header::ELFDATA2LSB;
        h[header::EI_VERSION] = 1;
        h[18..20].copy_from_slice(&machine.to_le_bytes());
        h
    }

    #[test]
    fn judges_elf_abis() {
        assert_eq!(elf_abi_problem(b"#!/bin/sh\n"), None);
        assert_eq!(elf_abi_problem(&elf_head(header::ELFCLASS64, ELF_MACHINE_NATIVE)), None);
        let i386 = elf_abi_problem(&elf_head(header::ELFCLASS32, header::EM_386)).unwrap();
        assert!(i386.contains("32-bit"), "{i386}");
        let arm = elf_abi_problem(&elf_head(header::ELFCLASS64, header::EM_AARCH64)).unwrap();
        assert!(arm.contains("AARCH64") || arm.contains("aarch64"), "{arm}");
        assert!(elf_abi_problem(b"\x7fELF").is_some());
        let own = std::fs::read("/proc/self/exe").unwrap();
        assert_eq!(elf_abi_problem(&own[..64]), None);
    }
}
