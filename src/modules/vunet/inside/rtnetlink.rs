//! Answers `NETLINK_ROUTE` requests from an [`Inside`] snapshot, as Linux would.
//!
//! For now a dump is answered empty and every other request with the error Linux
//! gives a request it does not serve (`EOPNOTSUPP`), so that no program waits for
//! an answer that never comes.

use super::Inside;

/// `sizeof(struct nlmsghdr)`.
const HEADER: usize = 16;
/// `NLMSG_ERROR`.
const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`.
const NLMSG_DONE: u16 = 3;
/// `NLM_F_REQUEST`.
const NLM_F_REQUEST: u16 = 1;
/// `NLM_F_MULTI`.
const NLM_F_MULTI: u16 = 2;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
const NLM_F_DUMP: u16 = 0x300;

/// Answers the netlink messages in `request`, one datagram a program's socket with
/// port id `port` sent, from `inside`: the datagrams to deliver to it, in order.
pub fn respond(inside: &Inside, port: u32, request: &[u8]) -> Vec<Vec<u8>> {
    let _ = inside;
    let mut answers = Vec::new();
    let mut rest = request;
    while rest.len() >= HEADER {
        let len = u32::from_ne_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        if len < HEADER || len > rest.len() {
            break;
        }
        let flags = u16::from_ne_bytes([rest[6], rest[7]]);
        if flags & NLM_F_REQUEST != 0 && flags & NLM_F_DUMP == NLM_F_DUMP {
            answers.push(message(
                NLMSG_DONE,
                NLM_F_MULTI,
                port,
                &rest[..HEADER],
                &0i32.to_ne_bytes(),
            ));
        } else if flags & NLM_F_REQUEST != 0 {
            let mut payload = (-libc::EOPNOTSUPP).to_ne_bytes().to_vec();
            payload.extend_from_slice(&rest[..HEADER]);
            answers.push(message(NLMSG_ERROR, 0, port, &rest[..HEADER], &payload));
        }
        rest = &rest[len.next_multiple_of(4).min(rest.len())..];
    }
    answers
}

/// A message of `kind` with `flags` and `payload`, answering the request whose
/// header is `request`.
fn message(kind: u16, flags: u16, port: u32, request: &[u8], payload: &[u8]) -> Vec<u8> {
    let len = (HEADER + payload.len()) as u32;
    let mut message = Vec::with_capacity(len as usize);
    message.extend_from_slice(&len.to_ne_bytes());
    message.extend_from_slice(&kind.to_ne_bytes());
    message.extend_from_slice(&flags.to_ne_bytes());
    message.extend_from_slice(&request[8..12]); // the request's sequence number
    message.extend_from_slice(&port.to_ne_bytes());
    message.extend_from_slice(payload);
    message
}
