//! [`PlainKind`]: a kind of stack with no keys and no state, whose stacks answer
//! every `socket` the same way (`none` refuses them, `host` lets the kernel make
//! them). Such stacks can always be chosen at launch, configured or not.

use std::rc::Rc;

use crate::config::{Fault, Table};
use crate::modules::{Disposition, Handled};
use crate::tracer::SyscallStop;

use super::kind::{KindConfig, Mount, StackKind};
use super::stack::{Claims, SetupError, Stack};

/// A kind whose stacks are a name and one answer to `socket`.
pub struct PlainKind {
    /// The kind's name.
    pub name: &'static str,
    /// What its stacks are, for `netvm stacks`.
    pub summary: &'static str,
    /// What `socket` and `socketpair` get on its stacks.
    pub create: Disposition,
    /// Whether its stacks are the host's own network.
    pub passes_host_network: bool,
}

impl StackKind for PlainKind {
    fn name(&self) -> &'static str {
        self.name
    }

    fn summary(&self) -> &'static str {
        self.summary
    }

    fn unconfigured(&self) -> Option<Box<dyn KindConfig>> {
        Some(Box::new(PlainConfig { kind: self.name, create: self.create }))
    }

    fn passes_host_network(&self) -> bool {
        self.passes_host_network
    }

    fn configure(&self, _table: &Table) -> Result<Box<dyn KindConfig>, Fault> {
        // `name` and `kind` only, read already.
        Ok(Box::new(PlainConfig { kind: self.name, create: self.create }))
    }
}

/// A plain stack's configuration: its kind's answer.
#[derive(Debug)]
struct PlainConfig {
    kind: &'static str,
    create: Disposition,
}

impl KindConfig for PlainConfig {
    fn mount(&self, mount: &mut Mount) -> Result<Box<dyn Stack>, SetupError> {
        Ok(Box::new(PlainStack { name: mount.name.into(), kind: self.kind, create: self.create }))
    }
}

/// A mounted plain stack.
struct PlainStack {
    name: Rc<str>,
    kind: &'static str,
    create: Disposition,
}

impl Stack for PlainStack {
    fn name(&self) -> &Rc<str> {
        &self.name
    }

    fn kind(&self) -> &'static str {
        self.kind
    }

    fn create(&mut self, _stop: &mut SyscallStop, _claims: &mut Claims) -> Handled {
        Ok(self.create)
    }
}
