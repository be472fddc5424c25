//! Reading a request's attributes as the kernel reads them: after its family
//! header (`nlmsg_parse`), each checked against a policy (`struct nla_policy`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::NLA_TYPE_MASK;

use super::Errno;
use crate::modules::vunet::inside::netlink::{HEADER_LEN, Message, align};

/// The length of an attribute header (`NLA_HDRLEN`).
const ATTRIBUTE_HEADER_LEN: usize = 4;

/// How the kernel's policy checks one attribute's value, for the attribute types a
/// request here may carry (`NLA_UNSPEC`, `NLA_U32`, `NLA_STRING`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Policy {
    /// Not checked.
    Any,
    /// At least this many bytes (`NLA_U8` to `NLA_U64`, `.len` of `NLA_UNSPEC`).
    AtLeast(usize),
    /// At most this many bytes (`NLA_BINARY`).
    AtMost(usize),
    /// A string of 1 to `max` characters, a final NUL not counted (`NLA_STRING`).
    String {
        /// Its longest length.
        max: usize,
    },
    /// Nested attributes: empty or at least one attribute header (`NLA_NESTED`).
    Nested,
    /// Refused whatever its value (`NLA_REJECT`).
    Reject,
}

impl Policy {
    /// The errno the kernel's `validate_nla` gives `value`, if it fails.
    fn check(self, value: &[u8]) -> Result<(), Errno> {
        let fits = match self {
            Policy::Any => true,
            Policy::AtLeast(min) => value.len() >= min,
            Policy::AtMost(max) => value.len() <= max,
            Policy::String { max } => {
                let text = value.strip_suffix(&[0]).unwrap_or(value);
                !value.is_empty() && text.len() <= max
            }
            Policy::Nested => value.is_empty() || value.len() >= ATTRIBUTE_HEADER_LEN,
            Policy::Reject => return Err(libc::EINVAL),
        };
        if fits { Ok(()) } else { Err(libc::ERANGE) }
    }
}

/// The policy of one family's attributes: the highest type it knows, and how each
/// is checked.
#[derive(Clone, Copy)]
pub(super) struct Policies {
    /// The highest attribute type (`IFLA_MAX`, `IFA_MAX`, ...).
    pub max_kind: u16,
    /// How an attribute of a type up to `max_kind` is checked.
    pub of: fn(u16) -> Policy,
}

/// The attributes of a message, as `nla_parse` keeps them: the last of each type.
#[derive(Debug, Default)]
pub(super) struct Attributes<'a> {
    found: Vec<(u16, &'a [u8])>,
}

impl<'a> Attributes<'a> {
    /// The value of the last attribute of type `kind`.
    pub fn get(&self, kind: u16) -> Option<&'a [u8]> {
        self.found.iter().rev().find(|(found, _)| *found == kind).map(|(_, value)| *value)
    }

    /// The value of attribute `kind` as a native-endian `u32` (policies have
    /// checked its length).
    pub fn u32(&self, kind: u16) -> Option<u32> {
        let value = self.get(kind)?;
        Some(u32::from_ne_bytes(value.get(..4)?.try_into().ok()?))
    }

    /// The value of string attribute `kind`, up to its first NUL (`nla_strscpy`).
    pub fn string(&self, kind: u16) -> Option<&'a [u8]> {
        let value = self.get(kind)?;
        Some(value.split(|&byte| byte == 0).next().unwrap_or(value))
    }

    /// The address attribute `kind` holds, of the length of an IPv6 address if
    /// `ipv6`, else of an IPv4 one (longer is cut, as `nla_get_in_addr` reads);
    /// `EINVAL` if it is shorter.
    pub fn ip(&self, kind: u16, ipv6: bool) -> Result<Option<IpAddr>, Errno> {
        let Some(bytes) = self.get(kind) else { return Ok(None) };
        let len = if ipv6 { 16 } else { 4 };
        ip_of(bytes.get(..len).ok_or(libc::EINVAL)?).map(Some).ok_or(libc::EINVAL)
    }

    /// The types present, each once.
    pub fn kinds(&self) -> impl Iterator<Item = u16> + '_ {
        let mut kinds: Vec<u16> = self.found.iter().map(|(kind, _)| *kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        kinds.into_iter()
    }

    /// Whether no attribute was found.
    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }
}

/// The address `bytes` hold: IPv4 for 4 of them, IPv6 for 16.
pub(super) fn ip_of(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

/// The unspecified address of IPv6 if `ipv6`, else of IPv4: what a request
/// without a destination means.
pub(super) fn unspecified(ipv6: bool) -> IpAddr {
    if ipv6 { Ipv6Addr::UNSPECIFIED.into() } else { Ipv4Addr::UNSPECIFIED.into() }
}

/// Parses the attributes that follow a family header of `header_len` bytes, as
/// `nlmsg_parse_deprecated` does (`strict`: `nlmsg_parse_deprecated_strict`,
/// which also refuses unknown types and trailing bytes). A payload shorter than
/// the family header is `EINVAL`.
pub(super) fn parse<'a>(
    message: &Message<'a>,
    header_len: usize,
    policies: Policies,
    strict: bool,
) -> Result<Attributes<'a>, Errno> {
    let payload = &message.bytes[HEADER_LEN..];
    if payload.len() < header_len {
        return Err(libc::EINVAL);
    }
    let area = payload.get(align(header_len)..).unwrap_or_default();
    parse_area(area, policies, strict)
}

/// Parses the attributes in `area` (`__nla_parse`).
pub(super) fn parse_area(
    area: &[u8],
    policies: Policies,
    strict: bool,
) -> Result<Attributes<'_>, Errno> {
    let mut attributes = Attributes::default();
    let mut rest = area;
    while let Some((kind, value, len)) = next_attribute(rest) {
        let kind = kind & NLA_TYPE_MASK;
        if kind == 0 || kind > policies.max_kind {
            if strict {
                return Err(libc::EINVAL);
            }
        } else {
            (policies.of)(kind).check(value)?;
            attributes.found.push((kind, value));
        }
        rest = rest.get(align(len)..).unwrap_or_default();
    }
    if strict && !rest.is_empty() {
        return Err(libc::EINVAL);
    }
    Ok(attributes)
}

/// The attribute `rest` starts with, if it holds a whole one (`nla_ok`): its type,
/// its value and its length.
fn next_attribute(rest: &[u8]) -> Option<(u16, &[u8], usize)> {
    let len = usize::from(u16::from_ne_bytes(rest.get(..2)?.try_into().ok()?));
    let kind = u16::from_ne_bytes(rest.get(2..4)?.try_into().ok()?);
    if len < ATTRIBUTE_HEADER_LEN || len > rest.len() {
        return None;
    }
    Some((kind, &rest[ATTRIBUTE_HEADER_LEN..len], len))
}
