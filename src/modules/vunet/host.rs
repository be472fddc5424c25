//! The `host` kind: the host kernel's own network, passed through.
//!
//! Sockets are created and used by the kernel exactly as without netvm, so a session
//! can give one process the real network while the others stay virtual. Only the
//! launching user can choose it (`netvm run --stack host`, or a stack of this kind in
//! the configuration they wrote); a traced process never reaches it by itself, and
//! a session launched on it keeps the host's namespaces.

use super::plain::PlainKind;
use crate::modules::Disposition;

/// The `host` kind.
pub static KIND: PlainKind = PlainKind {
    name: "host",
    summary: "the host's own network, passed through",
    create: Disposition::Kernel,
    passes_host_network: true,
};
