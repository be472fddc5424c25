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
//! [`SLOT`] bytes in its process's window, its own while it lives.
//!
//! A window belongs to an address space, not to a process: a child made by
//! `fork` has a copy at the same address (its slots start free), one made with
//! `CLONE_VM` (`vfork`, `posix_spawn`) shares its parent's, and `execve` drops
//! it.

use std::collections::HashMap;

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

/// One address space's window.
#[derive(Debug)]
struct Window {
    base: u64,
    /// The slot each thread holds for the call it is in.
    held: HashMap<Pid, Slot>,
    free_small: Vec<usize>,
    free_large: Vec<usize>,
}

impl Window {
    fn new(base: u64) -> Self {
        Self {
            base,
            held: HashMap::new(),
            free_small: (0..SMALL_SLOTS).rev().collect(),
            free_large: (0..LARGE_SLOTS).rev().collect(),
        }
    }

    fn address(&self, slot: Slot) -> u64 {
        let offset =
            if slot.large { SMALL * SMALL_SLOTS + slot.index * LARGE } else { slot.index * SMALL };
        self.base + offset as u64
    }
}

/// Where a process stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Its window (an index into [`Windows::windows`]).
    Mapped(usize),
    /// The kernel refused the mapping: calls that need room fail.
    Refused,
}

/// The room a thread stopped at a call may use: the slot it holds, or else the
/// next free ones (which it holds only once it uses one: see [`Windows::hold`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Room {
    /// A small slot: its address and identity.
    pub small: Option<(u64, Slot)>,
    /// A large slot.
    pub large: Option<(u64, Slot)>,
}

impl Room {
    /// The slot for `len` bytes, if there is one.
    pub fn for_len(&self, len: usize) -> Option<(u64, Slot)> {
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

    /// Records the window the kernel mapped for `process` at `base`, or its
    /// refusal (`base` is `None`).
    pub fn mapped(&mut self, process: Pid, base: Option<u64>) {
        let state = match base {
            Some(base) => {
                self.windows.push(Some(Window::new(base)));
                State::Mapped(self.windows.len() - 1)
            }
            None => State::Refused,
        };
        self.processes.insert(process, state);
    }

    fn window(&mut self, process: Pid) -> Option<&mut Window> {
        let &State::Mapped(index) = self.processes.get(&process)? else { return None };
        self.windows[index].as_mut()
    }

    /// The room `tid` of `process` may use in the call it stopped at.
    pub fn room(&mut self, process: Pid, tid: Pid) -> Room {
        let Some(window) = self.window(process) else { return Room::default() };
        let with = |slot: Slot| Some((window.address(slot), slot));
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
    /// `shares_memory` (`CLONE_VM`), else in a copy of it.
    pub fn forked(&mut self, parent: Pid, child: Pid, shares_memory: bool) {
        let state = match self.processes.get(&parent) {
            Some(&State::Mapped(index)) if !shares_memory => {
                let Some(base) = self.windows[index].as_ref().map(|w| w.base) else { return };
                self.windows.push(Some(Window::new(base)));
                State::Mapped(self.windows.len() - 1)
            }
            Some(&state) => state,
            None => return,
        };
        self.processes.insert(child, state);
    }

    /// `process` executed a new program, or ended: its address space is gone
    /// (its window too, once no process is left in it).
    pub fn leave(&mut self, process: Pid) {
        if let Some(State::Mapped(index)) = self.processes.remove(&process)
            && !self.processes.values().any(|s| *s == State::Mapped(index))
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
        let (address, slot) = windows.room(pid(process), pid(tid)).for_len(len)?;
        windows.hold(pid(process), pid(tid), slot);
        Some(address)
    }

    #[test]
    fn a_thread_holds_its_slot_for_its_call_only() {
        let mut windows = Windows::default();
        assert!(windows.needs_mapping(pid(10)));
        assert_eq!(take(&mut windows, 10, 10, 16), None);
        windows.mapped(pid(10), Some(BASE));
        assert!(!windows.needs_mapping(pid(10)));
        assert_eq!(take(&mut windows, 10, 10, 16), Some(BASE));
        assert_eq!(take(&mut windows, 10, 10, 16), Some(BASE), "its own, at the exit too");
        assert_eq!(take(&mut windows, 10, 11, SMALL), Some(BASE + SMALL as u64));
        let large = take(&mut windows, 10, 12, SMALL + 1).unwrap();
        assert_eq!(large, BASE + (SMALL * SMALL_SLOTS) as u64);
        assert_eq!(take(&mut windows, 10, 13, LARGE + 1), None);
        // Looking is not holding.
        assert_eq!(
            windows.room(pid(10), pid(14)).small.map(|(a, _)| a),
            Some(BASE + 2 * SMALL as u64)
        );
        windows.release(pid(10), pid(10));
        assert_eq!(take(&mut windows, 10, 15, 16), Some(BASE));
    }

    #[test]
    fn slots_run_out_and_a_refusal_is_remembered() {
        let mut windows = Windows::default();
        windows.mapped(pid(1), Some(BASE));
        for tid in 0..LARGE_SLOTS as i32 {
            assert!(take(&mut windows, 1, 1000 + tid, LARGE).is_some());
        }
        assert_eq!(take(&mut windows, 1, 1, LARGE), None);
        assert!(take(&mut windows, 1, 1, 8).is_some(), "small slots remain");
        windows.mapped(pid(2), None);
        assert!(!windows.needs_mapping(pid(2)));
        assert_eq!(take(&mut windows, 2, 2, 8), None);
    }

    #[test]
    fn a_fork_copies_the_window_and_a_vfork_shares_it() {
        let mut windows = Windows::default();
        windows.mapped(pid(1), Some(BASE));
        assert_eq!(take(&mut windows, 1, 1, 8), Some(BASE));
        windows.forked(pid(1), pid(2), false);
        // The copy is at the same address, its slots free.
        assert_eq!(take(&mut windows, 2, 2, 8), Some(BASE));
        windows.forked(pid(1), pid(3), true);
        // The shared one: the parent's thread keeps its slot.
        assert_eq!(take(&mut windows, 3, 3, 8), Some(BASE + SMALL as u64));
        windows.leave(pid(3));
        assert!(windows.needs_mapping(pid(3)));
        assert_eq!(take(&mut windows, 1, 1, 8), Some(BASE));
        windows.leave(pid(1));
        windows.leave(pid(2));
        assert!(windows.windows.is_empty());
        // A process never mapped passes nothing on.
        windows.forked(pid(7), pid(8), false);
        assert!(windows.needs_mapping(pid(8)));
    }
}
