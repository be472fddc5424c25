//! What `netvm status` shows: a session's stacks, each with its processes,
//! interfaces, routes and sockets, and its uplinks with their published ports
//! and flows.
//!
//! The supervisor fills a [`StatusReport`] and sends it over the control channel
//! (see [`super::control`]) as JSON; `netvm status` prints it with [`render`], in the
//! manner of `ip -br addr`, `ip route` and `ss -tunap`, or as the JSON itself.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// A session's state, as `netvm status` reports it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusReport {
    /// The supervisor's pid (the session's `netvm run`).
    pub supervisor: i32,
    /// Every mounted stack, in the configuration's order.
    pub stacks: Vec<StackStatus>,
    /// Every uplink, in the configuration's order.
    #[serde(default)]
    pub uplinks: Vec<UplinkStatus>,
}

/// One uplink: where it is, what it publishes, and the flows it carries.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct UplinkStatus {
    /// Its name (`[[vunet.uplink]]`).
    pub name: String,
    /// The switch it is plugged into.
    pub switch: String,
    /// Its addresses, `ADDRESS/PREFIX`.
    pub addresses: Vec<String>,
    /// Its DNS addresses, each with the host's nameserver it leads to:
    /// `10.0.2.3 -> 127.0.0.53`.
    #[serde(default)]
    pub dns: Vec<String>,
    /// Its published ports: `0.0.0.0:8080 -> 10.0.0.3:80/tcp`.
    #[serde(default)]
    pub published: Vec<String>,
    /// The flows open.
    #[serde(default)]
    pub flows: Vec<FlowStatus>,
}

/// One flow through an uplink.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct FlowStatus {
    /// Its number in the session (as the audit log numbers it).
    pub id: u64,
    /// `tcp`, `udp` or `icmp`.
    pub proto: String,
    /// `out`, or `in` by a published port.
    pub direction: String,
    /// The stack it comes from or goes to, if known.
    pub stack: Option<String>,
    /// Who started it and whom it reaches: for `out`, the stack's end and its
    /// destination; for `in`, the client and the stack's end.
    pub src: String,
    /// See `src`.
    pub dst: String,
    /// Payload bytes from the stack out to the host's side.
    pub bytes_out: u64,
    /// Payload bytes from the host's side into the stack.
    pub bytes_in: u64,
    /// Seconds since it started.
    pub age_s: u64,
}

/// One mounted stack.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct StackStatus {
    /// The stack's name (`--stack NAME`).
    pub name: String,
    /// Its kind (`smoltcp`, `none`, `host`, ...).
    pub kind: String,
    /// The processes on this stack.
    pub processes: Vec<i32>,
    /// Its network interfaces (none for kinds that have no interfaces of their own).
    #[serde(default)]
    pub interfaces: Vec<InterfaceStatus>,
    /// Its routing table.
    #[serde(default)]
    pub routes: Vec<RouteStatus>,
    /// Its sockets.
    #[serde(default)]
    pub sockets: Vec<SocketStatus>,
    /// Its UDP counters, for kinds that keep them.
    #[serde(default)]
    pub udp: Option<UdpCounters>,
}

/// What a stack counted of the UDP datagrams that crossed its network side, as
/// Linux counts them (`/proc/net/snmp`, `netstat -su`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UdpCounters {
    /// Datagrams delivered to a socket (`InDatagrams`).
    pub in_datagrams: u64,
    /// Datagrams sent (`OutDatagrams`).
    pub out_datagrams: u64,
    /// Datagrams for a port nobody had bound (`NoPorts`).
    pub no_ports: u64,
    /// Datagrams dropped because the receiving socket was full (`RcvbufErrors`).
    pub rcvbuf_errors: u64,
}

/// One network interface of a stack.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct InterfaceStatus {
    /// The interface's name (`lo`, `eth0`).
    pub name: String,
    /// Its hardware address (`02:00:00:00:00:02`), if it has one.
    #[serde(default)]
    pub mac: Option<String>,
    /// Its MTU, if it has one.
    #[serde(default)]
    pub mtu: Option<usize>,
    /// The switch (or other link) it is plugged into, if any.
    #[serde(default)]
    pub switch: Option<String>,
    /// Its addresses with their prefix lengths: `10.0.0.2/24`.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Its traffic counters, if the stack counts.
    #[serde(default)]
    pub counters: Option<Counters>,
    /// Whether it is administratively up, if the stack says.
    #[serde(default)]
    pub up: Option<bool>,
}

/// An interface's traffic counters: its link's, as the network counts them.
pub use super::network::Counters;

/// One route of a stack's routing table.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteStatus {
    /// The destination: `10.0.0.0/24`, or `default`.
    pub to: String,
    /// The gateway, if the route has one.
    #[serde(default)]
    pub via: Option<String>,
    /// The interface, if the route names one.
    #[serde(default)]
    pub interface: Option<String>,
}

/// One socket of a stack, as `ss` shows it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct SocketStatus {
    /// `tcp`, `udp`, `icmp` or `raw`.
    pub proto: String,
    /// The state as `ss` prints it: `LISTEN`, `ESTAB`, `UNCONN`, `SYN-SENT`,
    /// `CLOSE-WAIT`, ...
    pub state: String,
    /// The local address as `ss` prints it: `10.0.0.2:8080`, `[::]:80`, `*:*`.
    pub local: String,
    /// The peer address, in the same form.
    pub peer: String,
    /// The processes holding the socket open.
    #[serde(default)]
    pub pids: Vec<i32>,
    /// The kernel inode of the socket (of its carrier, for a virtual socket).
    #[serde(default)]
    pub inode: u64,
}

/// `report` as text for a person: for each stack a header line (name, kind,
/// processes), then its interfaces (as `ip -br addr`, with counters), routes (as
/// `ip route`) and sockets (as `ss -tunap`). Sections a stack has nothing in are
/// left out. Processes are named from `/proc/PID/comm` where readable.
pub fn render(report: &StatusReport) -> String {
    render_with(report, &process_name)
}

/// [`render`], naming each process with `name` instead of `/proc`.
pub fn render_with(report: &StatusReport, name: &dyn Fn(i32) -> Option<String>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "session of netvm supervisor {}", report.supervisor);
    if report.stacks.is_empty() {
        out.push_str("no stacks mounted\n");
    }
    for stack in &report.stacks {
        out.push('\n');
        render_stack(&mut out, stack, name);
    }
    for uplink in &report.uplinks {
        out.push('\n');
        render_uplink(&mut out, uplink);
    }
    out
}

/// An uplink: a header line, its DNS addresses, published ports and flows.
fn render_uplink(out: &mut String, uplink: &UplinkStatus) {
    let addresses = uplink.addresses.join(" ");
    let _ = writeln!(out, "uplink {} (switch {}): {addresses}", uplink.name, uplink.switch);
    if !uplink.dns.is_empty() {
        let _ = writeln!(out, "  dns: {}", uplink.dns.join(", "));
    }
    if !uplink.published.is_empty() {
        out.push_str("  published:\n");
        for publish in &uplink.published {
            let _ = writeln!(out, "    {publish}");
        }
    }
    if uplink.flows.is_empty() {
        return;
    }
    out.push_str("  flows:\n");
    let header = ["Proto", "Dir", "Stack", "Source", "Destination", "Out", "In", "Age"];
    let mut rows = vec![header.map(str::to_owned)];
    for flow in &uplink.flows {
        rows.push([
            flow.proto.clone(),
            flow.direction.clone(),
            flow.stack.clone().unwrap_or_else(|| "-".to_owned()),
            flow.src.clone(),
            flow.dst.clone(),
            flow.bytes_out.to_string(),
            flow.bytes_in.to_string(),
            format!("{}s", flow.age_s),
        ]);
    }
    write_table(out, &rows);
}

fn render_stack(out: &mut String, stack: &StackStatus, name: &dyn Fn(i32) -> Option<String>) {
    let processes = match stack.processes.len() {
        0 => "no processes".to_owned(),
        n => {
            let list: Vec<String> =
                stack.processes.iter().map(|&p| describe_pid(p, name)).collect();
            format!("{n} process{}: {}", if n == 1 { "" } else { "es" }, list.join(", "))
        }
    };
    let _ = writeln!(out, "stack {} ({}), {processes}", stack.name, stack.kind);

    if !stack.interfaces.is_empty() {
        out.push_str("  interfaces:\n");
        let width = stack.interfaces.iter().map(|i| i.name.len()).max().unwrap_or(0).max(6);
        for iface in &stack.interfaces {
            render_interface(out, iface, width);
        }
    }

    if !stack.routes.is_empty() {
        out.push_str("  routes:\n");
        for route in &stack.routes {
            let mut line = route.to.clone();
            if let Some(via) = &route.via {
                let _ = write!(line, " via {via}");
            }
            if let Some(dev) = &route.interface {
                let _ = write!(line, " dev {dev}");
            }
            let _ = writeln!(out, "    {line}");
        }
    }

    if let Some(udp) = &stack.udp {
        let _ = writeln!(
            out,
            "  udp: {} in, {} out, {} to no port, {} dropped (receive buffer full)",
            udp.in_datagrams, udp.out_datagrams, udp.no_ports, udp.rcvbuf_errors
        );
    }

    if !stack.sockets.is_empty() {
        render_sockets(out, &stack.sockets, name);
    }
}

/// The sockets of a stack, as `ss -tunap` lists them.
fn render_sockets(
    out: &mut String,
    sockets: &[SocketStatus],
    name: &dyn Fn(i32) -> Option<String>,
) {
    out.push_str("  sockets:\n");
    let mut rows = vec![[
        "Netid".to_owned(),
        "State".to_owned(),
        "Local Address:Port".to_owned(),
        "Peer Address:Port".to_owned(),
        "Process".to_owned(),
    ]];
    for socket in sockets {
        let users: Vec<String> = socket
            .pids
            .iter()
            .map(|&p| match name(p) {
                Some(comm) => format!("(\"{comm}\",pid={p})"),
                None => format!("(pid={p})"),
            })
            .collect();
        let process =
            if users.is_empty() { String::new() } else { format!("users:({})", users.join(",")) };
        rows.push([
            socket.proto.clone(),
            socket.state.clone(),
            socket.local.clone(),
            socket.peer.clone(),
            process,
        ]);
    }
    write_table(out, &rows);
}

/// `rows` as a table indented by four spaces, each column but the last as wide
/// as its widest cell.
fn write_table<const N: usize>(out: &mut String, rows: &[[String; N]]) {
    let widths: Vec<usize> =
        (0..N - 1).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    for row in rows {
        let mut line = String::from("    ");
        for (cell, width) in row.iter().zip(&widths) {
            let _ = write!(line, "{cell:<width$} ");
        }
        line.push_str(&row[N - 1]);
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

fn render_interface(out: &mut String, iface: &InterfaceStatus, width: usize) {
    let mut line = format!("    {:<width$} ", iface.name);
    line.push_str(if iface.addresses.is_empty() { "-" } else { "" });
    line.push_str(&iface.addresses.join(" "));
    let mut details = Vec::new();
    if iface.up == Some(false) {
        details.push("DOWN".to_owned());
    }
    if let Some(mac) = &iface.mac {
        details.push(format!("mac {mac}"));
    }
    if let Some(mtu) = iface.mtu {
        details.push(format!("mtu {mtu}"));
    }
    if let Some(switch) = &iface.switch {
        details.push(format!("switch {switch}"));
    }
    if !details.is_empty() {
        let _ = write!(line, "  {}", details.join(" "));
    }
    let _ = writeln!(out, "{line}");
    if let Some(c) = &iface.counters {
        let _ = writeln!(
            out,
            "    {:<width$} rx {} packets {} bytes, tx {} packets {} bytes, dropped {}",
            "", c.rx_packets, c.rx_bytes, c.tx_packets, c.tx_bytes, c.dropped
        );
    }
}

fn describe_pid(pid: i32, name: &dyn Fn(i32) -> Option<String>) -> String {
    match name(pid) {
        Some(comm) => format!("{pid} ({comm})"),
        None => pid.to_string(),
    }
}

/// The command name of process `pid`, from `/proc/PID/comm`.
pub fn process_name(pid: i32) -> Option<String> {
    if pid <= 0 {
        return None;
    }
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    let comm = comm.trim_end_matches('\n');
    (!comm.is_empty()).then(|| comm.to_owned())
}

/// Which of `pids` hold each of the sockets `inodes` open: scans the links in
/// `/proc/PID/fd/` for `socket:[INODE]`. Every inode asked for has an entry, empty
/// if no process of `pids` holds it; each list is sorted, without repeats.
/// Processes that have ended or whose descriptors cannot be read are skipped.
pub fn owners(inodes: &[u64], pids: &[i32]) -> HashMap<u64, Vec<i32>> {
    let wanted: HashSet<u64> = inodes.iter().copied().collect();
    let mut found: HashMap<u64, Vec<i32>> = inodes.iter().map(|&i| (i, Vec::new())).collect();
    let mut seen_pids = HashSet::new();
    for &pid in pids {
        if pid <= 0 || !seen_pids.insert(pid) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(target) = std::fs::read_link(entry.path()) else {
                continue;
            };
            let Some(inode) = socket_inode(target.as_os_str().as_encoded_bytes()) else {
                continue;
            };
            if wanted.contains(&inode) {
                let holders = found.entry(inode).or_default();
                if !holders.contains(&pid) {
                    holders.push(pid);
                }
            }
        }
    }
    for holders in found.values_mut() {
        holders.sort_unstable();
    }
    found
}

/// The inode in a descriptor link `socket:[INODE]`.
fn socket_inode(link: &[u8]) -> Option<u64> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;

    fn sample() -> StatusReport {
        StatusReport {
            uplinks: Vec::new(),
            supervisor: 4242,
            stacks: vec![
                StackStatus {
                    name: "lwip0".into(),
                    kind: "smoltcp".into(),
                    processes: vec![100, 101],
                    interfaces: vec![
                        InterfaceStatus {
                            name: "lo".into(),
                            mtu: Some(65536),
                            addresses: vec!["127.0.0.1/8".into(), "::1/128".into()],
                            ..Default::default()
                        },
                        InterfaceStatus {
                            name: "eth0".into(),
                            mac: Some("02:00:00:00:00:02".into()),
                            mtu: Some(1500),
                            switch: Some("sw0".into()),
                            addresses: vec!["10.0.0.2/24".into()],
                            counters: Some(Counters {
                                rx_packets: 3,
                                rx_bytes: 180,
                                tx_packets: 4,
                                tx_bytes: 240,
                                dropped: 1,
                            }),
                            up: Some(true),
                        },
                    ],
                    routes: vec![
                        RouteStatus {
                            to: "10.0.0.0/24".into(),
                            via: None,
                            interface: Some("eth0".into()),
                        },
                        RouteStatus {
                            to: "default".into(),
                            via: Some("10.0.0.1".into()),
                            interface: Some("eth0".into()),
                        },
                    ],
                    sockets: vec![
                        SocketStatus {
                            proto: "tcp".into(),
                            state: "LISTEN".into(),
                            local: "0.0.0.0:8080".into(),
                            peer: "0.0.0.0:*".into(),
                            pids: vec![100],
                            inode: 7,
                        },
                        SocketStatus {
                            proto: "udp".into(),
                            state: "UNCONN".into(),
                            local: "[::]:53".into(),
                            peer: "*:*".into(),
                            pids: vec![100, 101],
                            inode: 8,
                        },
                    ],
                    udp: Some(UdpCounters {
                        in_datagrams: 5,
                        out_datagrams: 6,
                        no_ports: 1,
                        rcvbuf_errors: 2,
                    }),
                },
                StackStatus { name: "none".into(), kind: "none".into(), ..Default::default() },
            ],
        }
    }

    fn names(pid: i32) -> Option<String> {
        (pid == 100).then(|| "python3".to_owned())
    }

    #[test]
    fn renders_like_ip_and_ss() {
        let text = render_with(&sample(), &names);
        let expected = "\
session of netvm supervisor 4242

stack lwip0 (smoltcp), 2 processes: 100 (python3), 101
  interfaces:
    lo     127.0.0.1/8 ::1/128  mtu 65536
    eth0   10.0.0.2/24  mac 02:00:00:00:00:02 mtu 1500 switch sw0
           rx 3 packets 180 bytes, tx 4 packets 240 bytes, dropped 1
  routes:
    10.0.0.0/24 dev eth0
    default via 10.0.0.1 dev eth0
  udp: 5 in, 6 out, 1 to no port, 2 dropped (receive buffer full)
  sockets:
    Netid State  Local Address:Port Peer Address:Port Process
    tcp   LISTEN 0.0.0.0:8080       0.0.0.0:*         users:((\"python3\",pid=100))
    udp   UNCONN [::]:53            *:*               users:((\"python3\",pid=100),(pid=101))

stack none (none), no processes
";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn renders_an_empty_report() {
        let text = render_with(&StatusReport { supervisor: 1, ..Default::default() }, &|_| None);
        assert_eq!(text, "session of netvm supervisor 1\nno stacks mounted\n");
    }

    #[test]
    fn an_interface_without_addresses_shows_a_dash() {
        let mut report = sample();
        report.stacks[0].interfaces[0].addresses.clear();
        let text = render_with(&report, &|_| None);
        assert!(text.contains("\n    lo     -  mtu 65536\n"), "{text}");
    }

    #[test]
    fn the_json_form_round_trips_and_tolerates_missing_lists() {
        let report = sample();
        let json = serde_json::to_string(&report).unwrap();
        assert_eq!(serde_json::from_str::<StatusReport>(&json).unwrap(), report);
        let minimal = r#"{"supervisor":5,"stacks":[{"name":"n","kind":"none","processes":[]}]}"#;
        let parsed: StatusReport = serde_json::from_str(minimal).unwrap();
        assert_eq!(
            parsed.stacks[0],
            StackStatus { name: "n".into(), kind: "none".into(), ..Default::default() }
        );
    }

    #[test]
    fn process_names_come_from_proc() {
        let own = process_name(std::process::id() as i32).unwrap();
        assert!(!own.is_empty() && !own.ends_with('\n'));
        assert_eq!(process_name(0), None);
        assert_eq!(process_name(-3), None);
    }

    #[test]
    fn parses_socket_links() {
        assert_eq!(socket_inode(b"socket:[12345]"), Some(12345));
        assert_eq!(socket_inode(b"pipe:[12345]"), None);
        assert_eq!(socket_inode(b"socket:[x]"), None);
        assert_eq!(socket_inode(b"/dev/null"), None);
    }

    #[test]
    fn finds_the_owners_of_our_own_sockets() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let inode = |s: &std::os::unix::net::UnixStream| {
            std::fs::metadata(format!("/proc/self/fd/{}", s.as_raw_fd())).unwrap().ino()
        };
        let (ia, ib) = (inode(&a), inode(&b));
        let me = std::process::id() as i32;
        let nobody_holds = u64::MAX;
        let found = owners(&[ia, ib, nobody_holds], &[me, me, 0, -1, i32::MAX]);
        assert_eq!(found.len(), 3);
        assert_eq!(found[&ia], [me]);
        assert_eq!(found[&ib], [me]);
        assert_eq!(found[&nobody_holds], Vec::<i32>::new());
        drop(b);
        assert_eq!(owners(&[ib], &[me])[&ib], Vec::<i32>::new());
    }
}
