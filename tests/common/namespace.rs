//! A stack and a network namespace configured alike (as lwip0): running the
//! same commands in both and comparing what `ip -j` shows afterwards.

use std::process::Command;

use super::{User, run, run_netvm_cmd};

/// Runs `cmd` on the default stack `lwip0` (10.0.0.2/24 and fd00::2/64 on eth0,
/// 02:6e:76:00:00:00, on switch sw0 with the router at .1) as `user`.
pub fn on_lwip0(user: User, cmd: &[&str]) -> String {
    let cmd: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
    let out = run_netvm_cmd(user, &["run"], &cmd);
    out.assert_code(0);
    out.stdout
}

/// The shell function `settle`, for scripts run in a namespace like lwip0 and
/// on lwip0 alike: it waits until the link-local address a link coming up gets
/// is there, no longer tentative, with its local route (Linux adds them a moment
/// after the link's carrier is seen; a stack at once).
macro_rules! settle_function {
    () => {
        "settle() { until ip -6 addr show dev eth0 | grep -q fe80 && \
            [ -z \"$(ip -6 addr show tentative)\" ] && \
            ip -6 route show table local | grep -q 'local fe80'; do sleep 0.02; done; }\n"
    };
}

/// [`settle_function`] as a string.
pub const SETTLE: &str = settle_function!();

/// Sets up a network namespace like lwip0 (a veth `eth0` with its MAC, MTU,
/// addresses and default routes, and the link-local address Linux gives it
/// without duplicate address detection, which the stack does not do), waits for
/// the addresses to settle (see [`SETTLE`]), then runs the script in `$1`.
pub const NAMESPACE_LIKE_LWIP0: &str = concat!(
    settle_function!(),
    "set -e; ip link set lo up; \
    ip link add eth0 index 2 address 02:6e:76:00:00:00 type veth peer name peer0 index 3; \
    sysctl -qw net.ipv6.conf.eth0.accept_dad=0; \
    ip link set eth0 up; ip link set peer0 up; \
    ip addr add 10.0.0.2/24 brd + dev eth0; ip addr add fd00::2/64 dev eth0 nodad; \
    ip route add default via 10.0.0.1; ip -6 route add default via fd00::1; \
    settle; eval \"$1\""
);

/// Fields a namespace and the stack give differently, by design.
pub fn comparable(json: &str) -> serde_json::Value {
    let mut value: serde_json::Value = serde_json::from_str(json).expect("ip -j prints JSON");
    // The veth's peer, which only the namespace has, and its routes.
    if let Some(entries) = value.as_array_mut() {
        let peer =
            |e: &serde_json::Value, key| e.get(key).and_then(|n| n.as_str()) == Some("peer0");
        entries.retain(|e| !peer(e, "ifname") && !peer(e, "dev"));
    }
    for entry in value.as_array_mut().into_iter().flatten() {
        let object = entry.as_object_mut().expect("an object per entry");
        // The veth's peer (the stack's eth0 is plugged into a switch), and the
        // veth's queueing and link details.
        for field in ["link", "link_index", "qdisc", "group", "txqlen", "linkdown"] {
            object.remove(field);
        }
        for info in object.get_mut("addr_info").and_then(|a| a.as_array_mut()).into_iter().flatten()
        {
            // The namespace's address skips duplicate address detection, which
            // the stack does not do at all.
            let info = info.as_object_mut().expect("an object per address");
            info.remove("nodad");
        }
    }
    value
}

/// What a script run in a namespace like lwip0 and on lwip0 must show alike:
/// `ip -j` with each of these arguments.
pub const VIEWS: [&str; 6] = [
    "addr show",
    "link show",
    "route show table all",
    "-6 route show table all",
    "neigh show",
    "rule show",
];

/// Runs `script` (which may call [`SETTLE`]'s `settle`) then prints each of
/// [`VIEWS`] as `ip -j` gives it, one per line.
pub fn script_then_views(script: &str) -> String {
    let views: Vec<String> = VIEWS.iter().map(|args| format!("ip -j {args}")).collect();
    format!("{SETTLE}{script}\n{}", views.join("\n"))
}

/// Runs `script` in a namespace like lwip0 and on lwip0, and compares what
/// `ip -j` shows after it, view by view.
pub fn assert_script_reads_alike(script: &str) {
    let script = script_then_views(script);
    let native = run({
        let mut command = Command::new("unshare");
        command.args(["-n", "sh", "-c", NAMESPACE_LIKE_LWIP0, "sh", &script]);
        command
    });
    native.assert_code(0);
    let under_netvm = on_lwip0(User::Invoker, &["sh", "-c", &script]);
    let (netvm_lines, native_lines): (Vec<&str>, Vec<&str>) =
        (under_netvm.lines().collect(), native.stdout.lines().collect());
    assert_eq!(netvm_lines.len(), VIEWS.len(), "{script}:\n{under_netvm}");
    assert_eq!(native_lines.len(), VIEWS.len(), "{script}:\n{native}");
    for (view, (ours, linux)) in VIEWS.iter().zip(netvm_lines.into_iter().zip(native_lines)) {
        assert_eq!(
            comparable(ours),
            comparable(linux),
            "after:\n{script}\nip -j {view}:\nnetvm:  {ours}\nnative: {linux}"
        );
    }
}

/// Runs `script`, which watches `ip monitor` into the file `$1` and prints what
/// it saw, on lwip0 and in a namespace like lwip0: what each printed (netvm's,
/// then the namespace's).
pub fn monitored_alike(script: &str) -> (String, String) {
    let dir = super::TempDir::new("monitor");
    let (ours, theirs) = (dir.path().join("netvm"), dir.path().join("native"));
    let native = run({
        let mut command = Command::new("unshare");
        let watched = format!("sh -c \"$MONITORED\" sh '{}'", theirs.display());
        command.env("MONITORED", script);
        command.args(["-n", "sh", "-c", NAMESPACE_LIKE_LWIP0, "sh", &watched]);
        command
    });
    native.assert_code(0);
    let under_netvm =
        on_lwip0(User::Invoker, &["sh", "-c", script, "sh", &ours.display().to_string()]);
    (under_netvm, native.stdout)
}

/// What `ip monitor` printed, entry by entry (a line and the indented lines
/// under it), sorted: the order of the notifications one change sends differs.
/// Left out: IPv6's passing `tentative` state, the multicast neighbour entries
/// of its listener reports (`NOARP`), and the veth's peer (the stack does none
/// of these); the `nodad` of the namespace's own address.
pub fn monitored_entries(text: &str) -> Vec<String> {
    let mut entries: Vec<String> = Vec::new();
    for line in text.replace(" nodad", "").lines() {
        match entries.last_mut() {
            Some(entry) if line.starts_with(' ') => entry.push_str(line),
            _ => entries.push(line.to_owned()),
        }
    }
    let unlike = |entry: &String| ["tentative", "NOARP", "peer0"].iter().any(|w| entry.contains(w));
    entries.retain(|entry| !unlike(entry));
    entries.sort();
    entries
}
