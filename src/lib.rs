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
//! - [`modules::vunet`]: the network module. Kinds of network stack plug into it
//!   through one registry line ([`modules::vunet::kind`]); every mounted stack is
//!   an independent instance; its network is switches and the plugs on them.
//! - [`fdtable`]: which kernel sockets are virtual and who owns them, by kernel
//!   identity rather than fd number.
//!
//! [`config`] finds and parses `modules.toml`, and knows no module: each module
//! reads its own table (`modules::Config`); [`sandbox`] puts the session in namespaces of
//! its own, so that the kernel holds its boundary; [`supervisor`] is the
//! single-threaded event loop that ties the tracer to the modules.
//! `ARCHITECTURE.md` follows a `connect` and a packet through the layers.

#![warn(missing_docs)]

pub mod config;
pub mod fdtable;
pub mod modules;
pub mod sandbox;
pub mod supervisor;
pub mod syscall;
pub mod tracer;
