//! The `none` kind: no network at all.
//!
//! Every socket of a network family fails with `EAFNOSUPPORT`, as on a kernel built
//! without networking; `AF_UNIX` sockets (never trapped) keep working, so local
//! IPC, X11 and D-Bus do.

use super::plain::PlainKind;
use crate::modules::Disposition;

/// The `none` kind.
pub static KIND: PlainKind = PlainKind {
    name: "none",
    summary: "no network: network sockets fail with EAFNOSUPPORT",
    create: Disposition::Return(-(libc::EAFNOSUPPORT as i64)),
    passes_host_network: false,
};
