//! What `/proc` tells of a traced process that its virtual sockets depend on:
//! its capabilities, and the file status flags of its descriptors.

use nix::unistd::Pid;

/// The capability bit that allows binding ports below 1024 (linux/capability.h).
const CAP_NET_BIND_SERVICE: u32 = 10;

/// The capability bit that allows raw sockets (linux/capability.h).
pub(in crate::modules::vunet) const CAP_NET_RAW: u32 = 13;

/// Whether `process` may bind ports below 1024 (`CAP_NET_BIND_SERVICE`).
pub(super) fn can_bind_service(process: Pid) -> bool {
    has_capability(process, CAP_NET_BIND_SERVICE)
}

/// Whether `process` has capability `bit` in its effective set.
pub(in crate::modules::vunet) fn has_capability(process: Pid, bit: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{process}/status"))
        .ok()
        .and_then(|status| {
            let caps = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
            u64::from_str_radix(caps.trim(), 16).ok()
        })
        .is_some_and(|caps| caps & (1 << bit) != 0)
}

/// Whether fd `fd` of thread `tid` has `O_NONBLOCK` set (from `/proc`'s fdinfo).
pub(super) fn is_nonblocking(tid: Pid, fd: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{tid}/fdinfo/{fd}"))
        .ok()
        .and_then(|info| {
            let flags = info.lines().find_map(|l| l.strip_prefix("flags:"))?;
            i64::from_str_radix(flags.trim(), 8).ok()
        })
        .is_some_and(|flags| flags & i64::from(libc::O_NONBLOCK) != 0)
}
