//! Scratch windows: memory of netvm's own in each traced process, where handlers
//! put the arguments they rewrite a call with (a carrier's name, copies of message
//! headers) and where the kernel leaves what netvm translates at the call's exit.
//!
//! Nothing goes below a thread's stack pointer: small thread stacks, signal
//! stacks and Go's goroutine stacks live there, and a large call (`sendmmsg` with
//! 1024 entries) would run past their guard pages. Instead, the first time a
//! process stops at a trapped call, the tracer has that thread map a window
//! first (an anonymous, never-reserved mapping; see [`Tracer`](super::Tracer))
//! and then makes the call again. Each thread that needs room gets a slot of
//! [`SMALL`] bytes (or [`LARGE`] for calls that need more) in its process's
//! window, its own while it lives.
//!
//! What a handler gives the kernel to read (a name, a copied address it checked)
//! goes to the window's **sealed** half instead, when it has one: a memfd mapped
//! shared and read-only in the process, sealed against new writable mappings
//! (`F_SEAL_FUTURE_WRITE`, which also keeps `/proc/PID/mem` out: a shared mapping
//! has no private copy to force a write into), and `mseal`ed against unmapping
//! and `mprotect`. Only the supervisor writes it, through a mapping of its own. So
//! what netvm checked or wrote is what the kernel reads: no other thread can
//! change it in between. The kernel's own writes (a received address, a message
//! length) go to the plain half.
//!
//! A window belongs to the processes that have it mapped: a child made with
//! `CLONE_VM` (`vfork`, `posix_spawn`) shares its parent's, slots and all. A child
//! made by `fork` has it at the same address (a copy of the plain half, the very
//! same sealed half), but only as it was at the moment of the fork, which may
//! have fallen in the middle of its parent's set-up: the child's first trapped
//! call seals and checks what it inherited before it shares the parent's slots,
//! and sets up a window of its own if that fails. `execve` drops the window.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// A slot for most calls: a socket name, a header, a short timespec.
pub const SMALL: usize = 4096;
/// A slot for the largest: `sendmmsg` and `recvmmsg` with `UIO_MAXIOV` (1024)
/// entries, each with a copied header and a socket name.
pub const LARGE: usize = 256 * 1024;
/// Small slots per window: calls of one address space in flight at once with
/// room of their own (a thread blocked in `recvfrom` holds one).
const SMALL_SLOTS: usize = 1024;
/// Large slots per window.
const LARGE_SLOTS: usize = 16;
/// The size of a window (address space only: its pages are touched on use).
pub const SIZE: usize = SMALL * SMALL_SLOTS + LARGE * LARGE_SLOTS;

/// A slot: its size class and index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    large: bool,
    index: usize,
}

/// The supervisor's side of a window's sealed half: its writable mapping of the
/// memfd the process maps read-only.
#[derive(Debug)]
pub struct SealedMemory {
    local: *mut u8,
    /// The memfd's inode: how the process's mapping of it is recognised.
    pub inode: u64,
}

impl SealedMemory {
    /// A new sealed memfd of [`SIZE`] bytes, mapped writable here; with the fd to
    /// hand to the process (drop it once the process has its own).
    pub fn new() -> Result<(Self, OwnedFd), Errno> {
        // SAFETY: memfd_create takes a NUL-terminated name and flags.
        let fd = unsafe {
            libc::memfd_create(
                c"netvm-window".as_ptr(),
                libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
            )
        };
        if fd < 0 {
            return Err(Errno::last());
        }
        // SAFETY: memfd_create returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        nix::unistd::ftruncate(&fd, SIZE as i64)?;
        // SAFETY: maps the whole memfd shared; the result is checked.
        let local = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if local == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        let inode = nix::sys::stat::fstat(&fd)?.st_ino;
        let memory = Self { local: local.cast(), inode };
        // From now on nobody maps it writable or writes it but through `local`.
        let seals =
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_FUTURE_WRITE | libc::F_SEAL_SEAL;
        // SAFETY: F_ADD_SEALS takes an integer.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return Err(Errno::last());
        }
        Ok((memory, fd))
    }
}

impl Drop for SealedMemory {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in `new`, which nothing uses any more.
        unsafe { libc::munmap(self.local.cast(), SIZE) };
    }
}

/// A window's sealed half.
#[derive(Debug)]
enum Sealed {
    /// Not mapped yet.
    Missing,
    /// Mapped at `tracee` in the process.
    Mapped { memory: SealedMemory, tracee: u64 },
    /// Not to be had without seccomp notifications: inputs go to the plain half.
    Unavailable,
    /// Failed or tampered with: calls that need it fail (with `ENOMEM`), rather
    /// than fall back to memory the program can change.
    Refused,
}

/// A window a `fork` child inherited (see [`Windows::inherited`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inheritance {
    /// The plain half's address.
    pub plain: u64,
    /// The sealed half's address and its memfd's inode, if the window has one.
    pub sealed: Option<(u64, u64)>,
}

/// How a window's sealed half came out (see [`Windows::sealed`]).
#[derive(Debug)]
pub enum SealOutcome {
    /// Mapped at this address in the process.
    Mapped(SealedMemory, u64),
    /// There are no notifications to install it with.
    NoNotifications,
    /// Its set-up failed, or the process swapped something else in.
    Refused,
}

/// Where a slot's inputs go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inputs {
    /// The sealed half.
    Sealed(SealedPlace),
    /// The plain half (no notifications).
    Plain,
    /// Nowhere.
    Refused,
}

/// One address space's window.
#[derive(Debug)]
struct Window {
    base: u64,
    sealed: Sealed,
    /// The slot each thread holds for the call it is in.
    held: HashMap<Pid, Slot>,
    free_small: Vec<usize>,
    free_large: Vec<usize>,
}

impl Window {
    fn new(base: u64) -> Self {
        Self {
            base,
            sealed: Sealed::Missing,
            held: HashMap::new(),
            free_small: (0..SMALL_SLOTS).rev().collect(),
            free_large: (0..LARGE_SLOTS).rev().collect(),
        }
    }

    fn place(&self, slot: Slot) -> Place {
        let offset =
            if slot.large { SMALL * SMALL_SLOTS + slot.index * LARGE } else { slot.index * SMALL };
        let inputs = match &self.sealed {
            Sealed::Mapped { memory, tracee } => Inputs::Sealed(SealedPlace {
                local: memory.local,
                offset,
                tracee: tracee + offset as u64,
            }),
            Sealed::Unavailable => Inputs::Plain,
            // Not there yet (a set-up failed for now) or tampered with: never
            // memory the program can change instead.
            Sealed::Missing | Sealed::Refused => Inputs::Refused,
        };
        Place { slot, address: self.base + offset as u64, inputs }
    }
}

/// A slot's sealed half, as the supervisor writes it and the process sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealedPlace {
    local: *mut u8,
    offset: usize,
    /// Its address in the process.
    pub tracee: u64,
}

impl SealedPlace {
    /// Writes `bytes` `at` bytes into the slot's sealed half.
    ///
    /// The place must come from a [`Room`] of the stop being handled: the window
    /// lives at least that long.
    pub fn write_at(&self, at: usize, bytes: &[u8]) {
        let start = self.offset + at;
        assert!(start + bytes.len() <= SIZE, "a write past the window");
        // SAFETY: `local` maps SIZE bytes while the window lives, which is past
        // the stop this place was handed out for; the range was checked; only this
        // (single-threaded) supervisor writes there.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.local.add(start), bytes.len())
        };
    }
}

/// A slot a thread may use: where it is in the process, plain and sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    /// Which slot.
    pub slot: Slot,
    /// Its plain half in the process.
    pub address: u64,
    /// Where its inputs go.
    pub inputs: Inputs,
}

/// Where a process stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Its window (an index into [`Windows::windows`]).
    Mapped(usize),
    /// Its parent's window, inherited by `fork`, not yet checked.
    Inherited(usize),
}

/// The room a thread stopped at a call may use: the slot it holds, or else the
/// next free ones (which it holds only once it uses one: see [`Windows::hold`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Room {
    /// A small slot.
    pub small: Option<Place>,
    /// A large slot.
    pub large: Option<Place>,
}

impl Room {
    /// The slot for `len` bytes, if there is one.
    pub fn for_len(&self, len: usize) -> Option<Place> {
        match len {
            0..=SMALL => self.small,
            _ if len <= LARGE => self.large,
            _ => None,
        }
    }
}

/// The windows of every traced address space.
#[derive(Debug, Default)]
pub struct Windows {
    windows: Vec<Option<Window>>,
    processes: HashMap<Pid, State>,
}

impl Windows {
    /// Whether `process` still needs its window mapped before a trapped call.
    pub fn needs_mapping(&self, process: Pid) -> bool {
        !self.processes.contains_key(&process)
    }

    /// Whether `process` has its window's plain half but not yet its sealed one.
    pub fn needs_sealing(&self, process: Pid) -> bool {
        let Some(&State::Mapped(index)) = self.processes.get(&process) else { return false };
        matches!(self.windows[index].as_ref().map(|w| &w.sealed), Some(Sealed::Missing))
    }

    /// What `process` inherited from its parent, not yet checked: where the plain
    /// half is, and the sealed half (address and inode) if the window has one.
    pub fn inherited(&self, process: Pid) -> Option<Inheritance> {
        let &State::Inherited(index) = self.processes.get(&process)? else { return None };
        let window = self.windows[index].as_ref()?;
        let sealed = match &window.sealed {
            Sealed::Mapped { memory, tracee } => Some((*tracee, memory.inode)),
            _ => None,
        };
        Some(Inheritance { plain: window.base, sealed })
    }

    /// `process`'s inherited window checked out: it shares it with its parent.
    pub fn adopt(&mut self, process: Pid) {
        if let Some(&State::Inherited(index)) = self.processes.get(&process) {
            self.processes.insert(process, State::Mapped(index));
        }
    }

    /// Records how `process`'s sealed half came out.
    pub fn sealed(&mut self, process: Pid, outcome: SealOutcome) {
        if let Some(window) = self.window(process) {
            window.sealed = match outcome {
                SealOutcome::Mapped(memory, tracee) => Sealed::Mapped { memory, tracee },
                SealOutcome::NoNotifications => Sealed::Unavailable,
                SealOutcome::Refused => Sealed::Refused,
            };
        }
    }

    /// Records the window the kernel mapped for `process` at `base`.
    pub fn mapped(&mut self, process: Pid, base: u64) {
        self.windows.push(Some(Window::new(base)));
        self.processes.insert(process, State::Mapped(self.windows.len() - 1));
    }

    fn window(&mut self, process: Pid) -> Option<&mut Window> {
        let &State::Mapped(index) = self.processes.get(&process)? else { return None };
        self.windows[index].as_mut()
    }

    /// The room `tid` of `process` may use in the call it stopped at.
    pub fn room(&mut self, process: Pid, tid: Pid) -> Room {
        let Some(window) = self.window(process) else { return Room::default() };
        let with = |slot: Slot| Some(window.place(slot));
        match window.held.get(&tid) {
            Some(&slot) if slot.large => Room { small: None, large: with(slot) },
            Some(&slot) => Room { small: with(slot), large: None },
            None => Room {
                small: window
                    .free_small
                    .last()
                    .and_then(|&index| with(Slot { large: false, index })),
                large: window
                    .free_large
                    .last()
                    .and_then(|&index| with(Slot { large: true, index })),
            },
        }
    }

    /// `tid` used `slot` of its [`Room`]: it holds it until [`release`](Self::release).
    pub fn hold(&mut self, process: Pid, tid: Pid, slot: Slot) {
        let Some(window) = self.window(process) else { return };
        if window.held.get(&tid) == Some(&slot) {
            return;
        }
        let free = if slot.large { &mut window.free_large } else { &mut window.free_small };
        if let Some(at) = free.iter().rposition(|&i| i == slot.index) {
            free.remove(at);
            window.held.insert(tid, slot);
        }
    }

    /// `tid`'s call is over: its slot is free again.
    pub fn release(&mut self, process: Pid, tid: Pid) {
        let Some(window) = self.window(process) else { return };
        if let Some(slot) = window.held.remove(&tid) {
            let free = if slot.large { &mut window.free_large } else { &mut window.free_small };
            free.push(slot.index);
        }
    }

    /// A new process: `child` of `parent`, in the same address space if
    /// `shares_memory` (`CLONE_VM`): it shares the window. A copy of the address
    /// space gets a window of its own.
    pub fn forked(&mut self, parent: Pid, child: Pid, shares_memory: bool) {
        let Some(&State::Mapped(index)) = self.processes.get(&parent) else { return };
        let complete = self.windows[index]
            .as_ref()
            .is_some_and(|w| matches!(w.sealed, Sealed::Mapped { .. } | Sealed::Unavailable));
        let state = match (shares_memory, complete) {
            (true, _) => State::Mapped(index),
            (false, true) => State::Inherited(index),
            (false, false) => return,
        };
        self.processes.insert(child, state);
    }

    /// `process` executed a new program, or ended: its address space is gone
    /// (its window too, once no process is left in it).
    pub fn leave(&mut self, process: Pid) {
        if let Some(State::Mapped(index) | State::Inherited(index)) =
            self.processes.remove(&process)
            && !self
                .processes
                .values()
                .any(|s| matches!(s, State::Mapped(i) | State::Inherited(i) if *i == index))
        {
            self.windows[index] = None;
            while matches!(self.windows.last(), Some(None)) {
                self.windows.pop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u64 = 0x7f00_0000_0000;

    fn pid(n: i32) -> Pid {
        Pid::from_raw(n)
    }

    /// Takes room for `len` bytes for `tid`, as a handler would.
    fn take(windows: &mut Windows, process: i32, tid: i32, len: usize) -> Option<u64> {
        let place = windows.room(pid(process), pid(tid)).for_len(len)?;
        windows.hold(pid(process), pid(tid), place.slot);
        Some(place.address)
    }

    #[test]
    fn a_thread_holds_its_slot_for_its_call_only() {
        let mut windows = Windows::default();
        assert!(windows.needs_mapping(pid(10)));
        assert_eq!(take(&mut windows, 10, 10, 16), None);
        windows.mapped(pid(10), BASE);
        assert!(!windows.needs_mapping(pid(10)));
        assert_eq!(take(&mut windows, 10, 10, 16), Some(BASE));
        assert_eq!(take(&mut windows, 10, 10, 16), Some(BASE), "its own, at the exit too");
        assert_eq!(take(&mut windows, 10, 11, SMALL), Some(BASE + SMALL as u64));
        let large = take(&mut windows, 10, 12, SMALL + 1).unwrap();
        assert_eq!(large, BASE + (SMALL * SMALL_SLOTS) as u64);
        assert_eq!(take(&mut windows, 10, 13, LARGE + 1), None);
        // Looking is not holding.
        assert_eq!(
            windows.room(pid(10), pid(14)).small.map(|p| p.address),
            Some(BASE + 2 * SMALL as u64)
        );
        windows.release(pid(10), pid(10));
        assert_eq!(take(&mut windows, 10, 15, 16), Some(BASE));
    }

    #[test]
    fn the_sealed_half_is_written_here_and_read_there() {
        let mut windows = Windows::default();
        windows.mapped(pid(1), BASE);
        assert!(windows.needs_sealing(pid(1)));
        assert_eq!(windows.room(pid(1), pid(1)).small.unwrap().inputs, Inputs::Refused);
        let (memory, fd) = SealedMemory::new().unwrap();
        // Sealed: nobody else maps it writable, nor writes it.
        // SAFETY: a shared writable mapping of the fd, which must fail.
        let writable = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        assert_eq!(writable, libc::MAP_FAILED);
        assert_eq!(nix::unistd::write(&fd, b"x"), Err(Errno::EPERM));
        // SAFETY: a read-only shared mapping of the fd, as the process makes.
        let seen = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                SIZE,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        assert_ne!(seen, libc::MAP_FAILED);
        let tracee = seen as u64;
        windows.sealed(pid(1), SealOutcome::Mapped(memory, tracee));
        assert!(!windows.needs_sealing(pid(1)));
        let place = windows.room(pid(1), pid(1)).small.unwrap();
        let Inputs::Sealed(sealed) = place.inputs else { panic!("not sealed") };
        assert_eq!(sealed.tracee, tracee);
        sealed.write_at(0, b"name");
        // SAFETY: reads 4 bytes of the live read-only mapping.
        assert_eq!(unsafe { std::slice::from_raw_parts(seen.cast::<u8>(), 4) }, b"name");
        windows.forked(pid(1), pid(2), true);
        assert!(!windows.needs_sealing(pid(2)));
        windows.leave(pid(1));
        windows.leave(pid(2));
        // SAFETY: unmaps the mapping made above.
        unsafe { libc::munmap(seen, SIZE) };
    }

    #[test]
    fn slots_run_out_and_no_window_has_no_room() {
        let mut windows = Windows::default();
        windows.mapped(pid(1), BASE);
        for tid in 0..LARGE_SLOTS as i32 {
            assert!(take(&mut windows, 1, 1000 + tid, LARGE).is_some());
        }
        assert_eq!(take(&mut windows, 1, 1, LARGE), None);
        assert!(take(&mut windows, 1, 1, 8).is_some(), "small slots remain");
        // No window: no room.
        assert_eq!(take(&mut windows, 2, 2, 8), None);
    }

    #[test]
    fn a_vfork_child_shares_its_parents_window_until_it_executes() {
        let mut windows = Windows::default();
        windows.mapped(pid(1), BASE);
        assert_eq!(take(&mut windows, 1, 1, 8), Some(BASE));
        windows.forked(pid(1), pid(3), false);
        assert!(windows.needs_mapping(pid(3)), "a half-made window is not passed on");
        windows.forked(pid(1), pid(2), true);
        // One set of slots: the parent's thread keeps its own.
        assert_eq!(take(&mut windows, 2, 2, 8), Some(BASE + SMALL as u64));
        windows.leave(pid(2));
        assert!(windows.needs_mapping(pid(2)));
        assert_eq!(take(&mut windows, 1, 1, 8), Some(BASE));
        windows.leave(pid(1));
        assert!(windows.windows.is_empty());
        // A process never mapped passes nothing on.
        windows.forked(pid(7), pid(8), true);
        assert!(windows.needs_mapping(pid(8)));
    }
}
