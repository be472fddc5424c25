//! Raw sockets of IP protocols besides ICMP, for root, as between two Linux
//! hosts: an `IPPROTO_RAW` socket on lwip0 sends a UDP packet whose IP header
//! it wrote itself (`IP_HDRINCL`), and on lwip1 both a UDP socket and a raw
//! UDP socket receive it (the raw one with the IP header). Names, protocol
//! numbers and the header the host completes are printed on both sides.

mod common;

use common::{TempDir, User, is_root, on_two_linux_hosts, path_str, python, session, skip};

/// On lwip1: a raw UDP socket and a UDP socket on port 9797; prints what
/// each receives of the datagram to 9797.
const RECEIVER: &str = r#"
import socket, struct, os
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
raw.settimeout(10)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("0.0.0.0", 9797)); udp.settimeout(10)
data, frm = udp.recvfrom(100)
lines = ["udp %s from %s" % (data.decode(), frm[0])]
while True:
    packet, frm = raw.recvfrom(2000)
    ihl = (packet[0] & 15) * 4
    sport, dport, length = struct.unpack("!HHH", packet[ihl:ihl + 6])
    if dport != 9797:
        continue
    total = struct.unpack("!H", packet[2:4])[0]
    lines.append("raw protocol %d from %s (%s) to %s, %d bytes, ports %d -> %d, %s"
                 % (packet[9], socket.inet_ntoa(packet[12:16]), frm[0],
                    socket.inet_ntoa(packet[16:20]), total, sport, dport,
                    packet[ihl + 8:].decode()))
    break
lines.append("raw name %s %d, SO_PROTOCOL %d" % (raw.getsockname() + (
    raw.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL),)))
os.write(1, ("\n".join(lines) + "\n").encode())
"#;

/// On lwip0: an IPPROTO_RAW socket (IP_HDRINCL from the start) sends an
/// IPv4/UDP packet to lwip1, port 9797, with its total length and header
/// checksum left 0 for the host to fill in.
const SENDER: &str = r#"
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
print("hdrincl %d, SO_PROTOCOL %d" % (s.getsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL),
                                      s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL)))
src, dst = socket.inet_aton("10.0.0.2"), socket.inet_aton("10.0.0.3")
payload = b"crafted"
length = 8 + len(payload)
def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff
pseudo = src + dst + struct.pack("!BBH", 0, 17, length)
header = struct.pack("!HHHH", 4242, 9797, length, 0)
udp = struct.pack("!HHHH", 4242, 9797, length, checksum(pseudo + header + payload)) + payload
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 0, 0x1234, 0, 64, 17, 0, src, dst)
s.sendto(ip + udp, ("10.0.0.3", 0))
"#;

const EXPECTED: &str = "hdrincl 1, SO_PROTOCOL 255\n\
    udp crafted from 10.0.0.2\n\
    raw protocol 17 from 10.0.0.2 (10.0.0.2) to 10.0.0.3, 35 bytes, ports 4242 -> 9797, crafted\n\
    raw name 0.0.0.0 17, SO_PROTOCOL 17\n";

#[test]
fn a_packet_a_raw_socket_wrote_reaches_udp_and_raw_sockets_of_another_host() {
    if !is_root() {
        return skip("raw sockets need root");
    }
    let dir = TempDir::new("raw-sockets");
    let receiver = dir.write("receiver.py", RECEIVER.as_bytes(), 0o644);
    let sender = dir.write("sender.py", SENDER.as_bytes(), 0o644);
    let script = format!(
        "on_b {py} {receiver} & listening udp 9797 || exit 1\n{py} {sender}; wait",
        py = python(),
        receiver = path_str(&receiver),
        sender = path_str(&sender),
    );
    let output =
        session(User::Invoker, &format!("on_b() {{ \"$N\" stack lwip1 -- \"$@\"; }}\n{script}"));
    output.assert_code(0);
    assert_eq!(output.stdout, EXPECTED, "\n{output}");
    if let Some(native) = on_two_linux_hosts(&script) {
        native.assert_code(0);
        assert_eq!(native.stdout, EXPECTED, "Linux itself says otherwise\n{native}");
    }
}
