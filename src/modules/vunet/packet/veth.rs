//! The veth pair that mirrors one interface of a stack, made with one
//! `RTM_NEWLINK` to the kernel of the session's namespace.
//!
//! A veth pair needs no privilege beyond the namespace's own (a tap would need
//! `/dev/net/tun`, which is root's on most hosts). Both ends are made up and
//! without ARP; the namespaces they are made in have IPv6 off by default (see
//! [`IPV6_DEFAULT`](super::namespace::IPV6_DEFAULT)), so the kernel never sends a
//! frame of its own on either.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};

/// What the mirror device of one stack interface looks like: what the stack
/// shows of that interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Device {
    /// Its index (the stack's: 2 for the first interface).
    pub index: u32,
    /// Its name (`eth0`).
    pub name: String,
    /// Its hardware address.
    pub mac: [u8; 6],
    /// Its MTU.
    pub mtu: u32,
    /// Administratively up.
    pub up: bool,
}

/// Makes the pair, both ends up: `device` in the namespace `inner` (a
/// descriptor of it), and its peer, named `outer`, in the caller's.
pub(super) fn make_pair(device: &Device, inner: &OwnedFd, outer: &str) -> io::Result<()> {
    let mut peer = LinkMessage::default();
    // The peer cannot be brought up with its making (veth_open: no peer yet), so
    // it is brought up after.
    peer.header.flags = LinkFlags::Noarp;
    peer.header.change_mask = LinkFlags::Noarp;
    peer.attributes = vec![LinkAttribute::IfName(outer.into()), LinkAttribute::Mtu(device.mtu)];
    let mut link = LinkMessage::default();
    link.header.index = device.index;
    link.header.flags =
        if device.up { LinkFlags::Up } else { LinkFlags::empty() } | LinkFlags::Noarp;
    link.header.change_mask = LinkFlags::Up | LinkFlags::Noarp;
    link.attributes = vec![
        LinkAttribute::IfName(device.name.clone()),
        LinkAttribute::Address(device.mac.to_vec()),
        LinkAttribute::Mtu(device.mtu),
        LinkAttribute::NetNsFd(inner.as_raw_fd()),
        LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]),
    ];
    let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    request(RouteNetlinkMessage::NewLink(link), flags)?;
    let mut up = LinkMessage::default();
    up.header.flags = LinkFlags::Up;
    up.header.change_mask = LinkFlags::Up;
    up.attributes = vec![LinkAttribute::IfName(outer.into())];
    request(RouteNetlinkMessage::NewLink(up), NLM_F_REQUEST | NLM_F_ACK)
}

/// Gives the device at `device.index` of the caller's namespace `device`'s
/// hardware address, MTU and state.
pub(super) fn set_link(device: &Device) -> io::Result<()> {
    let mut link = LinkMessage::default();
    link.header.index = device.index;
    link.header.flags = if device.up { LinkFlags::Up } else { LinkFlags::empty() };
    link.header.change_mask = LinkFlags::Up;
    link.attributes =
        vec![LinkAttribute::Address(device.mac.to_vec()), LinkAttribute::Mtu(device.mtu)];
    request(RouteNetlinkMessage::NewLink(link), NLM_F_REQUEST | NLM_F_ACK)
}

/// Sends `body` to the kernel's rtnetlink and waits for its acknowledgement.
fn request(body: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = 1;
    let mut message = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(body));
    message.finalize();
    let mut bytes = vec![0; message.buffer_len()];
    message.serialize(&mut bytes);
    // SAFETY: socket takes plain integers and returns a new descriptor or -1.
    let fd = unsafe {
        libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE)
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just made and nothing else owns it.
    let socket = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: sockaddr_nl is plain data; all zero but the family is the kernel's address.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as u16;
    let len = size_of::<libc::sockaddr_nl>() as libc::socklen_t;
    // SAFETY: connect reads `len` bytes of the live address.
    if unsafe { libc::connect(socket.as_raw_fd(), (&raw const kernel).cast(), len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    nix::unistd::write(&socket, &bytes)?;
    let mut answer = [0u8; 4096];
    let len = nix::unistd::read(&socket, &mut answer)?;
    let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&answer[..len])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    match reply.payload {
        NetlinkPayload::Error(error) => match error.code {
            Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
            None => Ok(()),
        },
        _ => Err(io::Error::new(io::ErrorKind::InvalidData, "rtnetlink: no acknowledgement")),
    }
}
