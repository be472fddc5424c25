//! netvm: a ptrace-based partial virtual machine for networking.
//!
//! netvm runs unmodified Linux programs with their network virtualized, in the line
//! of VirtualSquare's vuos. The layers, each knowing only the one below:
//!
//! - [`syscall`]: the vocabulary. The calls netvm traps as types, decoded from and
//!   encoded into raw arguments, socket addresses as Linux lays them out, and how
//!   each call reads in the `--trace` log: Linux ABI, no ptrace.
//! - [`tracer`]: ptrace, seccomp and tracee memory. It launches the command with a
//!   filter that stops only the calls modules claim, follows every process and
//!   thread, and hands each trapped call, decoded, to a handler.
//! - [`modules`]: the handler. It routes each trapped call to the module that
//!   claimed it and writes the `--trace` log.
//! - [`modules::vunet`]: the network module, whose submodules are kinds of network
//!   stack; every mounted stack is an independent instance.
//! - [`fdtable`]: which kernel sockets are virtual and who owns them, by kernel
//!   identity rather than fd number.
//!
//! [`config`] reads `modules.toml`; [`sandbox`] puts the session in namespaces of
//! its own, so that the kernel holds its boundary; [`supervisor`] is the
//! single-threaded event loop that ties the tracer to the modules.

#![warn(missing_docs)]

pub mod config;
pub mod fdtable;
pub mod modules;
pub mod sandbox;
pub mod supervisor;
pub mod syscall;
pub mod tracer;
