//! The netlink protocol every family answered here shares (rtnetlink,
//! `sock_diag`): a datagram cut into messages (`netlink_rcv_skb`), answers
//! addressed to the asker, acknowledgements and errors (`netlink_ack`), and dumps
//! packed into datagrams, the rest waiting while the program reads
//! (`netlink_dump`).

use std::num::NonZeroI32;

use netlink_packet_core::{
    DoneMessage, Emitable, ErrorMessage, NLM_F_ACK, NLM_F_CAPPED, NLM_F_DUMP_FILTERED,
    NLM_F_MULTIPART, NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    NetlinkSerializable, Parseable,
};
use netlink_packet_route::RouteNetlinkMessage;

use super::Errno;

/// The length of a netlink message header (`NLMSG_HDRLEN`).
pub(super) const HEADER_LEN: usize = 16;
/// Control messages (`NLMSG_NOOP` to `NLMSG_OVERRUN`) are below this type
/// (`NLMSG_MIN_TYPE`).
const NLMSG_MIN_TYPE: u16 = 0x10;
/// The largest datagram a dump fills (`NLMSG_GOODSIZE`: a page less the
/// `skb_shared_info`); a single message larger than this goes alone.
pub(super) const DUMP_DATAGRAM_SIZE: usize = 3776;

/// `len` rounded up to netlink's 4-byte alignment (`NLMSG_ALIGN`, `NLA_ALIGN`).
pub(super) fn align(len: usize) -> usize {
    len.next_multiple_of(4)
}

/// One message of a request datagram: its header and its bytes (header included,
/// `nlmsg_len` of them).
pub(super) struct Message<'a> {
    /// Where it starts in its datagram.
    pub at: usize,
    /// Its header.
    pub header: NetlinkHeader,
    /// The whole message as the program sent it.
    pub bytes: &'a [u8],
}

impl<'a> Message<'a> {
    /// What follows the header.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..]
    }

    /// The address family its family header starts with (`rtgen_family`); the
    /// caller has checked that the payload is not empty.
    pub fn family(&self) -> u8 {
        self.payload()[0]
    }

    /// Whether its flags include `flag`.
    pub fn has_flag(&self, flag: u16) -> bool {
        self.header.flags & flag != 0
    }

    /// Whether it is a request (`NLM_F_REQUEST`, not a control message): only
    /// requests are handled; the rest is only acknowledged.
    pub fn is_request(&self) -> bool {
        self.has_flag(NLM_F_REQUEST) && self.header.message_type >= NLMSG_MIN_TYPE
    }
}

/// The messages of `datagram`, in order, as `netlink_rcv_skb` takes them: it
/// stops at the first message shorter than its header or running past the end.
pub(super) fn messages(datagram: &[u8]) -> impl Iterator<Item = Message<'_>> {
    let mut rest = datagram;
    let mut at = 0;
    std::iter::from_fn(move || {
        if rest.len() < HEADER_LEN {
            return None;
        }
        let header = NetlinkHeader::parse(&NetlinkBuffer::new(&rest)).ok()?;
        let len = header.length as usize;
        if len < HEADER_LEN || len > rest.len() {
            rest = &[];
            return None;
        }
        let message = Message { at, header, bytes: &rest[..len] };
        let next = align(len).min(rest.len());
        rest = &rest[next..];
        at += next;
        Some(message)
    })
}

/// Where the answers to one request message go: the asking socket's port, under
/// the request's sequence number.
#[derive(Clone, Copy, Debug)]
pub(super) struct Addressee {
    /// The asking socket's port id.
    pub port: u32,
    /// The request's sequence number.
    pub sequence: u32,
}

impl Addressee {
    /// A message to the asker with `flags` carrying `payload`, serialized.
    pub fn message<I: NetlinkSerializable>(
        &self,
        flags: u16,
        payload: NetlinkPayload<I>,
    ) -> Vec<u8> {
        let mut message = NetlinkMessage::new(self.header(flags), payload);
        message.finalize();
        let mut bytes = vec![0; message.buffer_len()];
        message.serialize(&mut bytes);
        bytes
    }

    /// A single (not multipart) answer carrying `body`.
    pub fn reply<I: NetlinkSerializable>(&self, body: I) -> Vec<u8> {
        self.message(0, NetlinkPayload::InnerMessage(body))
    }

    /// A message of type `kind` with `flags` whose payload is `payload`, already
    /// serialized.
    pub fn raw(&self, kind: u16, flags: u16, payload: &[u8]) -> Vec<u8> {
        let mut header = self.header(flags);
        header.length = (HEADER_LEN + payload.len()) as u32;
        header.message_type = kind;
        let mut bytes = vec![0; HEADER_LEN];
        header.emit(&mut bytes);
        bytes.extend_from_slice(payload);
        bytes
    }

    /// The header of a message to the asker with `flags`.
    fn header(&self, flags: u16) -> NetlinkHeader {
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.sequence;
        header.port_number = self.port;
        header
    }
}

/// A dump's answer before it is packed into datagrams.
pub(super) struct Dump {
    to: Addressee,
    /// The flags of its messages: `NLM_F_MULTI`, and `NLM_F_DUMP_FILTERED` when a
    /// filter applied.
    pub message_flags: u16,
    /// The flags of its `NLMSG_DONE` (`NLM_F_DUMP_FILTERED` only when the request
    /// set a filter, while route messages carry it whenever checked strictly).
    pub done_flags: u16,
    messages: Vec<Vec<u8>>,
    /// The errno its `NLMSG_DONE` reports, or 0.
    errno: Errno,
}

impl Dump {
    /// An empty dump to `to`.
    pub fn new(to: Addressee) -> Self {
        Dump {
            to,
            message_flags: NLM_F_MULTIPART,
            done_flags: NLM_F_MULTIPART,
            messages: Vec::new(),
            errno: 0,
        }
    }

    /// A dump that fails with `errno` before answering anything.
    pub fn failed(to: Addressee, errno: Errno) -> Self {
        Dump { errno, ..Dump::new(to) }
    }

    /// Marks the dump as filtered by the request (`NLM_F_DUMP_FILTERED`), its
    /// messages and its end.
    pub fn filtered(mut self) -> Self {
        self.message_flags |= NLM_F_DUMP_FILTERED;
        self.done_flags |= NLM_F_DUMP_FILTERED;
        self
    }

    /// Adds a message carrying `body`.
    pub fn add(&mut self, body: impl NetlinkSerializable) {
        let message = self.to.message(self.message_flags, NetlinkPayload::InnerMessage(body));
        self.messages.push(message);
    }

    /// Adds a message of type `kind` whose payload is `payload`, serialized.
    pub fn add_raw(&mut self, kind: u16, payload: &[u8]) {
        self.messages.push(self.to.raw(kind, self.message_flags, payload));
    }

    /// Ends the dump with `errno`, dropping what it had gathered.
    pub fn fail(&mut self, errno: Errno) {
        self.messages.clear();
        self.errno = errno;
    }

    /// Its datagrams: messages packed greedily, then `NLMSG_DONE`, in a datagram of
    /// its own when `done_apart` and the dump said anything.
    pub fn into_datagrams(self, done_apart: bool) -> Vec<Vec<u8>> {
        let mut done = DoneMessage::default();
        done.code = -self.errno;
        let done =
            self.to.message::<RouteNetlinkMessage>(self.done_flags, NetlinkPayload::Done(done));
        let mut datagrams: Vec<Vec<u8>> = Vec::new();
        for message in self.messages {
            match datagrams.last_mut() {
                Some(last) if last.len() + message.len() <= DUMP_DATAGRAM_SIZE => {
                    last.extend(message)
                }
                _ => datagrams.push(message),
            }
        }
        match datagrams.last_mut() {
            Some(last) if !done_apart && last.len() + done.len() <= DUMP_DATAGRAM_SIZE => {
                last.extend(done)
            }
            _ => datagrams.push(done),
        }
        datagrams
    }
}

/// How a request message was handled.
pub(super) enum Handled {
    /// Answered (or not), then to be acknowledged with this errno (0: success).
    Acknowledge(Errno),
    /// A dump started: dumps are not acknowledged.
    Dumping,
}

/// What one datagram's messages are answered with so far, and what a running
/// dump has yet to produce.
#[derive(Default)]
pub(super) struct Replies {
    /// The datagrams delivered, in order.
    pub delivered: Vec<Vec<u8>>,
    /// The datagrams a running dump has yet to produce: while it runs, another
    /// dump is refused (`EBUSY`).
    running_dump: Vec<Vec<u8>>,
}

impl Replies {
    /// Ends the answering of `message` (to `to`) as `netlink_rcv_skb` does: an
    /// error is always reported, a success only if it asked (`NLM_F_ACK`), a
    /// dump never.
    pub fn conclude(&mut self, message: &Message, to: Addressee, handled: Handled) {
        if let Handled::Acknowledge(errno) = handled
            && (errno != 0 || message.has_flag(NLM_F_ACK))
        {
            self.delivered.push(acknowledgement(message, to, errno));
        }
    }

    /// Whether a dump runs: another is `EBUSY`, before its request is read on.
    pub fn dumping(&self) -> bool {
        !self.running_dump.is_empty()
    }

    /// Starts a dump of `datagrams` (`netlink_dump_start`): its first goes out
    /// now, the rest as the program reads.
    pub fn start_dump(&mut self, datagrams: Vec<Vec<u8>>) -> Handled {
        let mut datagrams = datagrams.into_iter();
        self.delivered.extend(datagrams.next());
        self.running_dump = datagrams.collect();
        Handled::Dumping
    }

    /// All the datagrams: what a running dump has left comes as the program reads
    /// on, after the answers to all of the datagram's messages.
    pub fn finish(mut self) -> Vec<Vec<u8>> {
        self.delivered.extend(self.running_dump);
        self.delivered
    }
}

/// The `NLMSG_ERROR` answering `message` with `errno` (`netlink_ack`): an error
/// carries the whole request, an acknowledgement (`errno` 0) only its header.
fn acknowledgement(message: &Message, to: Addressee, errno: Errno) -> Vec<u8> {
    let bytes = message.bytes;
    let (flags, echoed) =
        if errno == 0 { (NLM_F_CAPPED, &bytes[..HEADER_LEN]) } else { (0, bytes) };
    let mut error = ErrorMessage::default();
    error.code = NonZeroI32::new(-errno);
    error.header = echoed.to_vec();
    error.header.resize(align(echoed.len()), 0);
    to.message::<RouteNetlinkMessage>(flags, NetlinkPayload::Error(error))
}
