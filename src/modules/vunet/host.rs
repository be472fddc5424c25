//! The `host` submodule: the host kernel's own network, passed through.
//!
//! Sockets are created and used by the kernel exactly as without netvm, so a session
//! can give one process the real network while the others stay virtual. Only the
//! launching user can choose it (`netvm run --stack host`, or a stack of this kind in
//! the configuration they wrote); a traced process never reaches it by itself.

use std::rc::Rc;

use crate::modules::Disposition;
use crate::tracer::SyscallStop;

use super::Stack;

/// A mounted `host` stack.
pub struct HostStack {
    name: Rc<str>,
}

impl HostStack {
    /// The submodule's kind, as written in `modules.toml`.
    pub const KIND: &'static str = "host";

    /// Mounts a `host` stack called `name`.
    pub fn mount(name: &str) -> Self {
        Self { name: name.into() }
    }
}

impl Stack for HostStack {
    fn name(&self) -> &Rc<str> {
        &self.name
    }

    fn kind(&self) -> &'static str {
        Self::KIND
    }

    fn create(&mut self, _stop: &mut SyscallStop) -> Disposition {
        Disposition::Kernel
    }
}
