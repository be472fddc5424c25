//! The `none` submodule: no network at all.
//!
//! Every socket of a network family fails with `EAFNOSUPPORT`, as on a kernel built
//! without networking; `AF_UNIX` sockets (never trapped) keep working, so local
//! IPC, X11 and D-Bus do.

use std::rc::Rc;

use crate::modules::Disposition;
use crate::tracer::SyscallStop;

use super::Stack;

/// A mounted `none` stack.
pub struct NoneStack {
    name: Rc<str>,
}

impl NoneStack {
    /// The submodule's kind, as written in `modules.toml`.
    pub const KIND: &'static str = "none";

    /// Mounts a `none` stack called `name`.
    pub fn mount(name: &str) -> Self {
        Self { name: name.into() }
    }
}

impl Stack for NoneStack {
    fn name(&self) -> &Rc<str> {
        &self.name
    }

    fn kind(&self) -> &'static str {
        Self::KIND
    }

    fn create(&mut self, _stop: &mut SyscallStop) -> Disposition {
        Disposition::Return(-i64::from(libc::EAFNOSUPPORT))
    }
}
