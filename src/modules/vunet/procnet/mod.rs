//! `/proc/net` as a stack's programs read it: `route -n`, `ifconfig`'s counters
//! and IPv6 addresses, `arp -n` show the stack, not the session's empty network
//! namespace.
//!
//! `/proc/net` is `/proc/self/net`, which the kernel fills from the reading
//! process's network namespace; the programs of every stack share the session's.
//! So each program gets its stack's directory mounted over its own
//! `/proc/PID/net` in the session's mount namespace (see the sandbox), as it
//! starts or moves to another stack: two system calls, made before it runs on.
//! The directories live in a tmpfs of the supervisor's that is mounted nowhere
//! else. Each holds the files [`files`] writes from the stack's [`Inside`]
//! (rewritten when it changes; the counters at most once a second), and for
//! every other entry of the session's `/proc/net` a link into `.real`, the
//! session's own, mounted there: `unix`, `netlink`, `tcp` and the rest read as
//! before.

mod files;

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::unistd::Pid;

use super::StackId;
use super::inside::Inside;
use super::inside::rtnetlink::main_ipv4_routes;

/// How often the counters in a stack's `dev` are rewritten, at most.
const COUNTERS_INTERVAL: Duration = Duration::from_secs(1);

/// Flags of the mount API (`linux/mount.h`) the `libc` crate does not name.
mod api {
    pub const FSOPEN_CLOEXEC: libc::c_uint = 1;
    pub const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    pub const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    pub const OPEN_TREE_CLONE: libc::c_uint = 1;
    pub const AT_RECURSIVE: libc::c_uint = 0x8000;
    pub const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
}

/// The stacks' `/proc/net` directories, and the programs they are mounted for.
pub struct ProcNet {
    /// The tmpfs the directories live in, mounted nowhere.
    tmpfs: OwnedFd,
    /// What each stack's files last held.
    written: HashMap<StackId, HashMap<&'static str, String>>,
    /// The processes with a stack's directory mounted, and which.
    mounted: HashMap<Pid, StackId>,
    /// When counters were last rewritten.
    counted: Option<Instant>,
    /// The stacks that show nothing of themselves.
    blind: std::collections::HashSet<StackId>,
}

impl ProcNet {
    /// An empty set of directories, if this kernel and the session's mount
    /// namespace allow them (Linux 5.2's mount API, a mount namespace of the
    /// session's own).
    pub fn new() -> io::Result<Self> {
        // SAFETY: fsopen takes a NUL-terminated name and flags, and returns a
        // new descriptor or -1.
        let context =
            fd(unsafe { libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), api::FSOPEN_CLOEXEC) })?;
        // SAFETY: fsconfig on the live context; the command takes no key or value.
        let created = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                context.as_raw_fd(),
                api::FSCONFIG_CMD_CREATE,
                std::ptr::null::<libc::c_char>(),
                std::ptr::null::<libc::c_void>(),
                0,
            )
        };
        if created < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fsmount of the live, created context; returns a new descriptor.
        let tmpfs = fd(unsafe {
            libc::syscall(libc::SYS_fsmount, context.as_raw_fd(), api::FSMOUNT_CLOEXEC, 0)
        })?;
        let (written, mounted) = (HashMap::new(), HashMap::new());
        Ok(Self { tmpfs, written, mounted, counted: None, blind: Default::default() })
    }

    /// Mounts stack `stack`'s directory over process `process`'s `/proc/PID/net`;
    /// `inside` tells what the stack shows, asked the first time only (`None`
    /// for a stack that shows nothing of itself, whose programs read the
    /// session's own).
    pub fn attach(
        &mut self,
        process: Pid,
        stack: StackId,
        inside: impl FnOnce() -> Option<Inside>,
    ) {
        let target = format!("/proc/{process}/net");
        if self.mounted.remove(&process).is_some() {
            let path = CString::new(target.clone()).expect("no NUL in a path of digits");
            // SAFETY: umount2 reads the live path.
            unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        }
        if self.blind.contains(&stack) {
            return;
        }
        if !self.written.contains_key(&stack) {
            let Some(inside) = inside() else {
                self.blind.insert(stack);
                return;
            };
            if let Err(e) = self.directory(stack, &inside) {
                return log::debug!("no /proc/net of stack {stack}: {e}");
            }
        }
        let attached = self.mount(stack, &target);
        match attached {
            Ok(()) => drop(self.mounted.insert(process, stack)),
            Err(e) => log::debug!("no /proc/net of its stack for process {process}: {e}"),
        }
    }

    /// Process `process` ended: its mount went with its `/proc/PID`.
    pub fn forget(&mut self, process: Pid) {
        self.mounted.remove(&process);
    }

    /// Rewrites stack `stack`'s files from `inside`, its counters (`dev`) too
    /// if `counters`, as far as they changed.
    pub fn refresh(&mut self, stack: StackId, inside: &Inside, counters: bool) {
        if !self.written.contains_key(&stack) {
            return;
        }
        let routes = main_ipv4_routes(inside);
        for name in files::NAMES {
            if name == "dev" && !counters {
                continue;
            }
            let contents = files::contents(name, inside, &routes);
            if let Err(e) = self.write(stack, name, contents) {
                log::debug!("stack {stack}: /proc/net/{name}: {e}");
            }
        }
    }

    /// The stacks whose counters are due to be rewritten at `now` (those some
    /// process has mounted, once every [`COUNTERS_INTERVAL`]), counted as
    /// rewritten.
    pub fn counters_due(&mut self, now: Instant) -> Vec<StackId> {
        if self.counted.is_some_and(|at| now < at + COUNTERS_INTERVAL) {
            return Vec::new();
        }
        self.counted = Some(now);
        let mut stacks: Vec<StackId> = self.mounted.values().copied().collect();
        stacks.sort_unstable();
        stacks.dedup();
        stacks
    }

    /// Makes stack `stack`'s directory, the first time: its files, the
    /// session's `/proc/net` mounted at `.real`, and links to what it holds.
    fn directory(&mut self, stack: StackId, inside: &Inside) -> io::Result<()> {
        let dir = format!("s{stack}");
        make_directory(&self.tmpfs, &dir)?;
        make_directory(&self.tmpfs, &format!("{dir}/.real"))?;
        let real = open_tree(libc::AT_FDCWD, "/proc/self/net", api::OPEN_TREE_CLONE)?;
        move_mount(&real, self.tmpfs.as_raw_fd(), &format!("{dir}/.real"))?;
        for entry in std::fs::read_dir("/proc/self/net")? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if !files::NAMES.contains(&name.as_str()) {
                symlink(&format!(".real/{name}"), &self.tmpfs, &format!("{dir}/{name}"))?;
            }
        }
        self.written.insert(stack, HashMap::new());
        self.refresh(stack, inside, true);
        Ok(())
    }

    /// Shows `contents` at `target`, a file, to the session's processes: a file
    /// `name` of the tmpfs, mounted over it (the session's `resolv.conf`, see
    /// `uplink::dns`).
    pub fn mount_file(&self, name: &str, contents: &str, target: &str) -> io::Result<()> {
        let file = open_at(&self.tmpfs, name, libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC)?;
        nix::unistd::write(&file, contents.as_bytes())?;
        let tree = open_tree(self.tmpfs.as_raw_fd(), name, api::OPEN_TREE_CLONE)?;
        move_mount(&tree, libc::AT_FDCWD, target)
    }

    /// Mounts stack `stack`'s directory (with `.real` in it) at `target`.
    fn mount(&self, stack: StackId, target: &str) -> io::Result<()> {
        let flags = api::OPEN_TREE_CLONE | api::AT_RECURSIVE;
        let tree = open_tree(self.tmpfs.as_raw_fd(), &format!("s{stack}"), flags)?;
        move_mount(&tree, libc::AT_FDCWD, target)
    }

    /// Writes `contents` as stack `stack`'s file `name` if it changed, replacing
    /// the file whole (a reader sees the old one or the new one).
    fn write(&mut self, stack: StackId, name: &'static str, contents: String) -> io::Result<()> {
        let written = self.written.entry(stack).or_default();
        if written.get(name) == Some(&contents) {
            return Ok(());
        }
        let (fresh, path) = (format!("s{stack}/.{name}.new"), format!("s{stack}/{name}"));
        let file = open_at(&self.tmpfs, &fresh, libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC)?;
        nix::unistd::write(&file, contents.as_bytes())?;
        rename_at(&self.tmpfs, &fresh, &path)?;
        written.insert(name, contents);
        Ok(())
    }
}

/// A new descriptor from a system call's result, or its error.
fn fd(result: libc::c_long) -> io::Result<OwnedFd> {
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the call just returned this descriptor, which nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(result as RawFd) })
}

/// `path` as a C string.
fn c_path(path: &str) -> io::Result<CString> {
    CString::new(path).map_err(io::Error::other)
}

/// `open_tree(dir, path, flags)`, close-on-exec.
fn open_tree(dir: RawFd, path: &str, flags: libc::c_uint) -> io::Result<OwnedFd> {
    let path = c_path(path)?;
    // SAFETY: open_tree reads the live path and returns a new descriptor or -1.
    fd(unsafe {
        libc::syscall(libc::SYS_open_tree, dir, path.as_ptr(), flags | libc::O_CLOEXEC as u32)
    })
}

/// `move_mount` of the tree `tree` onto `path` under the directory `dir`.
fn move_mount(tree: &OwnedFd, dir: RawFd, path: &str) -> io::Result<()> {
    let (empty, path) = (c_path("")?, c_path(path)?);
    // SAFETY: move_mount reads the live paths; the descriptors are live.
    let moved = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            dir,
            path.as_ptr(),
            api::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if moved < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// `mkdirat(dir, path, 0755)`.
fn make_directory(dir: &OwnedFd, path: &str) -> io::Result<()> {
    let path = c_path(path)?;
    // SAFETY: mkdirat reads the live path.
    if unsafe { libc::mkdirat(dir.as_raw_fd(), path.as_ptr(), 0o755) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `symlinkat(target, dir, path)`.
fn symlink(target: &str, dir: &OwnedFd, path: &str) -> io::Result<()> {
    let (target, path) = (c_path(target)?, c_path(path)?);
    // SAFETY: symlinkat reads the live strings.
    if unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), path.as_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `openat(dir, path, flags, 0444)`.
fn open_at(dir: &OwnedFd, path: &str, flags: libc::c_int) -> io::Result<OwnedFd> {
    let path = c_path(path)?;
    // SAFETY: openat reads the live path and returns a new descriptor or -1.
    let opened =
        unsafe { libc::openat(dir.as_raw_fd(), path.as_ptr(), flags | libc::O_CLOEXEC, 0o444) };
    fd(opened as libc::c_long)
}

/// `renameat(dir, from, dir, to)`.
fn rename_at(dir: &OwnedFd, from: &str, to: &str) -> io::Result<()> {
    let (from, to) = (c_path(from)?, c_path(to)?);
    // SAFETY: renameat reads the live paths.
    if unsafe { libc::renameat(dir.as_raw_fd(), from.as_ptr(), dir.as_raw_fd(), to.as_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
