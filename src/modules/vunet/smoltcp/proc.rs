//! What `/proc` tells of a traced process that its virtual sockets depend on:
//! its capabilities, and the file status flags of its descriptors; and the
//! supervisor's own capabilities, cut to a process's while the kernel judges
//! something on its behalf.

use nix::unistd::Pid;

/// The capability bit that allows binding ports below 1024 (linux/capability.h).
const CAP_NET_BIND_SERVICE: u32 = 10;

/// The capability bit that allows network administration (linux/capability.h).
pub(super) const CAP_NET_ADMIN: u32 = 12;

/// The capability bit that allows raw sockets (linux/capability.h).
pub(in crate::modules::vunet) const CAP_NET_RAW: u32 = 13;

/// Whether thread `task` may bind ports below 1024 (`CAP_NET_BIND_SERVICE`).
pub(super) fn can_bind_service(task: Pid) -> bool {
    has_capability(task, CAP_NET_BIND_SERVICE)
}

/// Whether thread `task` (or a process, by its main thread) has capability
/// `bit` in its effective set.
pub(in crate::modules::vunet) fn has_capability(task: Pid, bit: u32) -> bool {
    effective_capabilities(task) & (1 << bit) != 0
}

/// The effective capabilities of thread `task` over the session's network
/// (none if they cannot be read): its effective set, if it is in the
/// supervisor's user namespace. A thread in a user namespace of its own has
/// its capabilities there, and none over the namespace the stacks' network
/// belongs to (Linux checks `ns_capable` against that namespace's owner).
pub(super) fn effective_capabilities(task: Pid) -> u64 {
    let user_namespace = |of: &str| std::fs::read_link(format!("/proc/{of}/ns/user")).ok();
    let theirs = user_namespace(&task.to_string());
    if theirs.is_none() || theirs != user_namespace("self") {
        return 0;
    }
    std::fs::read_to_string(format!("/proc/{task}/status"))
        .ok()
        .and_then(|status| {
            let caps = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
            u64::from_str_radix(caps.trim(), 16).ok()
        })
        .unwrap_or(0)
}

/// Whether `process` holds socket `socket` by one of its descriptors (from
/// `/proc`'s fd links): a closed socket, or a process that is gone, holds it
/// no more. A process that made itself non-dumpable hides its fds from the
/// supervisor: it is taken to hold the socket until it ends.
pub(super) fn holds_socket(process: Pid, socket: u64) -> bool {
    let wanted = format!("socket:[{socket}]");
    let fds = match std::fs::read_dir(format!("/proc/{process}/fd")) {
        Ok(fds) => fds,
        Err(e) => return e.kind() == std::io::ErrorKind::PermissionDenied,
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == wanted.as_str())
    })
}

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets, as two 32-bit halves.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// The header of `capget`/`capset` (linux/capability.h).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// One 32-bit half of each capability set (linux/capability.h).
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The calling thread's capability sets.
fn own_capabilities() -> Option<[CapData; 2]> {
    let mut header = CapHeader { version: CAPABILITY_VERSION_3, pid: 0 };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget fills two CapData for version 3, from a live header.
    let done = unsafe { libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) };
    (done == 0).then_some(data)
}

/// Sets the calling thread's capability sets.
fn set_own_capabilities(data: &[CapData; 2]) -> bool {
    let mut header = CapHeader { version: CAPABILITY_VERSION_3, pid: 0 };
    // SAFETY: capset reads two CapData for version 3, from a live header.
    unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) == 0 }
}

/// Runs `work` with the calling thread's effective capabilities cut to those
/// of thread `thread` (capabilities are a thread's own), so that what the
/// kernel checks (`ns_capable`) it checks as if `thread` asked; then restores
/// them (lowering the effective set keeps the permitted one, from which it is
/// raised again).
pub(super) fn as_capable_as<R>(thread: Pid, work: impl FnOnce() -> R) -> R {
    with_effective(effective_capabilities(thread), work)
}

/// Runs `work` with the calling thread's effective capabilities cut to
/// `theirs` (see [`as_capable_as`]).
pub(super) fn with_effective<R>(theirs: u64, work: impl FnOnce() -> R) -> R {
    let Some(ours) = own_capabilities() else { return work() };
    let mut cut = ours;
    cut[0].effective &= theirs as u32;
    cut[1].effective &= (theirs >> 32) as u32;
    if cut == ours || !set_own_capabilities(&cut) {
        return work();
    }
    let result = work();
    if !set_own_capabilities(&ours) {
        log::warn!("the supervisor could not restore its capabilities");
    }
    result
}
