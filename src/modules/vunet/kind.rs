//! The seam where kinds of stack plug in: a kind reads its own keys of a
//! `[[vunet.stack]]` table ([`StackKind::configure`]), and the configuration it made
//! mounts a [`Stack`] instance ([`KindConfig::mount`]).
//!
//! vunet, the configuration and the command line know no kind by name: they go
//! through a [`Registry`], [`super::KINDS`], which the one line
//! `stack_kinds!(...)` in `vunet/mod.rs` writes.
//!
//! # Adding a kind
//!
//! 1. A new module folder under `src/modules/vunet/` (see `echo/` for a small
//!    one) with a `pub static KIND` implementing [`StackKind`], a configuration
//!    type implementing [`KindConfig`], and a stack type implementing [`Stack`].
//! 2. Its name in the `stack_kinds!` line.
//!
//! A kind whose stacks are hosts on the session's virtual network reads the common
//! host keys (`addresses`, `[[vunet.stack.interface]]`, `[[vunet.stack.route]]`)
//! with [`HostSection`](super::config::HostSection), and plugs its interfaces in
//! with [`Mount::plug`].

use std::collections::HashMap;
use std::fmt;

use super::budget::SharedBudget;
use super::config::{InterfaceSpec, NetworkConfig};
use super::network::{LinkId, Network, SwitchId};
use super::stack::{SetupError, Stack};
use crate::config::{Fault, Table};

/// A kind of stack: what `kind = "NAME"` in a `[[vunet.stack]]` table names.
pub trait StackKind: Sync {
    /// The name written in `kind = "..."`.
    fn name(&self) -> &'static str;
    /// What its stacks are, in one line, for `netvm stacks`.
    fn summary(&self) -> &'static str;
    /// The keys of a `[[vunet.stack]]` table this kind reads besides `name` and
    /// `kind`: a stack of another kind given one of them is told which kinds take it.
    fn keys(&self) -> &'static [Key] {
        &[]
    }
    /// The configuration of a stack of this kind that no file declares, if it can
    /// be mounted so (`none` and `host` can always be chosen at launch, under the
    /// kind's own name).
    fn unconfigured(&self) -> Option<Box<dyn KindConfig>> {
        None
    }
    /// Whether its stacks are the host's own network, passed through: a session on
    /// one keeps the host's namespaces.
    fn passes_host_network(&self) -> bool {
        false
    }
    /// Reads and checks the kind's keys of one `[[vunet.stack]]` table (whose `name`
    /// and `kind` are read already, and which holds no other kind's keys).
    fn configure(&self, table: &Table) -> Result<Box<dyn KindConfig>, Fault>;
}

/// A key of a `[[vunet.stack]]` table that a kind reads, as messages name it.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    /// The key (`addresses`; `interface` for `[[vunet.stack.interface]]` tables).
    pub key: &'static str,
    /// What a stack without it lacks: "a `none` stack has no {lacks}".
    pub lacks: &'static str,
    /// How the file writes it: "only KIND stacks take {written}".
    pub written: &'static str,
    /// For an array of tables, the field of its first table a message points at
    /// (the table's header otherwise).
    pub point_at: Option<&'static str>,
}

/// One stack's configuration, read and checked by its kind.
pub trait KindConfig: fmt::Debug {
    /// Its interfaces and routes on the session's network, if it is a host on it:
    /// they are checked with every other party's (names, addresses, MACs, captures).
    fn network(&self) -> Option<&NetworkConfig> {
        None
    }
    /// Mounts the stack.
    fn mount(&self, mount: &mut Mount) -> Result<Box<dyn Stack>, SetupError>;
}

/// What a kind's configuration is mounted with: the stack's place in the session,
/// and the session's network to plug into.
pub struct Mount<'a> {
    /// The stack's name.
    pub name: &'a str,
    /// The stack's position among the session's stacks (below
    /// [`MAX_STACKS`](super::stack::MAX_STACKS)); stacks use it to stay apart (default MACs, names of
    /// their own objects).
    pub index: usize,
    /// The switches, routers and links between the stacks.
    pub network: &'a mut Network,
    /// The declared switches, by name.
    pub switches: &'a HashMap<String, SwitchId>,
    /// Where the stack registers event sources of its own.
    pub registry: &'a mio::Registry,
    /// The supervisor's descriptors, shared by the session's processes.
    pub budget: &'a SharedBudget,
}

impl Mount<'_> {
    /// Plugs interface `spec` into its switch: its link, and the switch's name;
    /// `None` for an unplugged interface.
    pub fn plug(&mut self, spec: &InterfaceSpec) -> Result<Option<(LinkId, String)>, SetupError> {
        let Some((switch_name, &switch)) =
            spec.switch.as_ref().and_then(|s| self.switches.get_key_value(s))
        else {
            return Ok(None);
        };
        let link_name = format!("{}/{}", self.name, spec.name);
        let link = self
            .network
            .attach(switch, &link_name, spec.capture.as_deref())
            .map_err(|e| SetupError(format!("link {link_name}: {e}")))?;
        Ok(Some((link, switch_name.clone())))
    }
}

/// The kinds of stack a netvm is built with, in the order `netvm stacks` lists
/// them.
pub struct Registry(pub &'static [&'static dyn StackKind]);

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter().map(|kind| kind.name())).finish()
    }
}

impl Registry {
    /// Every kind.
    pub fn iter(&self) -> impl Iterator<Item = &'static dyn StackKind> + '_ {
        self.0.iter().copied()
    }

    /// The kind called `name`, if there is one.
    pub fn find(&self, name: &str) -> Option<&'static dyn StackKind> {
        self.iter().find(|kind| kind.name() == name)
    }

    /// The kind called `name` if its stacks can be mounted unconfigured, under the
    /// kind's own name (see [`StackKind::unconfigured`]).
    pub fn unconfigured(&self, name: &str) -> Option<&'static dyn StackKind> {
        self.find(name).filter(|kind| kind.unconfigured().is_some())
    }
}

/// Declares the kinds of stack this netvm is built with: each is a submodule of
/// `vunet` with a `pub static KIND`. Writes the submodules and [`super::KINDS`].
macro_rules! stack_kinds {
    ($($kind:ident),+ $(,)?) => {
        $(pub mod $kind;)+
        /// Every kind of stack this netvm can mount.
        pub static KINDS: kind::Registry = kind::Registry(&[$(&$kind::KIND),+]);
    };
}
pub(super) use stack_kinds;
