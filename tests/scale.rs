//! A session holds up when it is large: a thousand stacks in one configuration,
//! bursts of connections across stacks, thousands of sockets that come and go.
//! (How fast, and at what memory cost, is measured in `bench/scale.sh`, not
//! here.)

mod common;

use common::{NETVM, TempDir, USERS, netvm_as, path_str, python, run, session};

/// A configuration of `stacks` smoltcp stacks spread over `switches` switches,
/// joined by one router: stack `hN` on switch `swS` has an address of
/// 10.S.0.0/16 and its default route through the router (10.S.0.1).
fn many_stacks(stacks: usize, switches: usize) -> (String, Vec<String>) {
    let mut file = String::from("[vunet]\ndefault = \"h0\"\n");
    for s in 0..switches {
        file += &format!("[[vunet.switch]]\nname = \"sw{s}\"\n");
    }
    file += "[[vunet.router]]\nname = \"gw\"\n";
    for s in 0..switches {
        file += &format!(
            "[[vunet.router.interface]]\nswitch = \"sw{s}\"\naddresses = [\"10.{s}.0.1/16\"]\n"
        );
    }
    let mut addresses = Vec::new();
    for i in 0..stacks {
        let s = i * switches / stacks;
        let address = format!("10.{s}.{}.{}", (i + 2) / 250, (i + 2) % 250 + 1);
        file += &format!(
            "[[vunet.stack]]\nname = \"h{i}\"\nkind = \"smoltcp\"\n\
             [[vunet.stack.interface]]\nswitch = \"sw{s}\"\naddresses = [\"{address}/16\"]\n\
             [[vunet.stack.route]]\nto = \"default\"\nvia = \"10.{s}.0.1\"\n"
        );
        addresses.push(address);
    }
    (file, addresses)
}

#[test]
fn a_thousand_stacks_start_and_the_first_pings_the_last() {
    let dir = TempDir::new("thousand");
    let (file, addresses) = many_stacks(1000, 4);
    let config = dir.write("modules.toml", file.as_bytes(), 0o644);
    let last = addresses.last().expect("stacks");
    for user in USERS {
        let args = ["run", "-c", path_str(&config), "--stack", "h0", "--"];
        let ping = ["ping", "-c", "2", "-i", "0.2", "-W", "2", last];
        let output = run(netvm_as(user, &[&args[..], &ping[..]].concat()));
        output.assert_code(0);
        assert!(
            output.stdout.contains("2 packets transmitted, 2 received"),
            "h0 did not reach h999 ({last})\n{output}"
        );
        // And a stack in the middle reaches the first, on another switch.
        let args = ["run", "-c", path_str(&config), "--stack", "h500", "--"];
        let ping = ["ping", "-c", "1", "-W", "2", &addresses[0]];
        run(netvm_as(user, &[&args[..], &ping[..]].concat())).assert_code(0);
    }
}

#[test]
fn stacks_256_apart_on_one_switch_have_their_own_mac_addresses() {
    // Stack numbers that agree in their low byte once made the same default MAC
    // address: the switch then sent h0's frames to h256.
    let dir = TempDir::new("macs");
    let (file, addresses) = many_stacks(300, 1);
    let config = dir.write("modules.toml", file.as_bytes(), 0o644);
    let args = ["run", "-c", path_str(&config), "--stack", "h0", "--"];
    let ping = ["ping", "-c", "2", "-i", "0.2", "-W", "2", &addresses[256]];
    let output = run(netvm_as(USERS[0], &[&args[..], &ping[..]].concat()));
    output.assert_code(0);
    assert!(output.stdout.contains("2 received"), "{output}");
}

/// A listener on lwip1 with a backlog of 4,096 that accepts nothing until
/// CONNECTIONS clients on lwip0 have all connected at once (non-blocking
/// connects, then a wait for each): Linux queues them all, none is refused.
const BURST: &str = r#"
import errno, os, select, socket, subprocess, sys, time
CONNECTIONS = 300
if sys.argv[1:] == ["serve"]:
    s = socket.socket()
    s.bind(("10.0.0.3", 7100))
    s.listen(4096)
    print("listening", flush=True)
    sys.stdin.readline()
    taken = 0
    s.settimeout(5)
    try:
        while taken < CONNECTIONS:
            s.accept()[0].close()
            taken += 1
    except socket.timeout:
        pass
    print(taken, flush=True)
    sys.exit(0)
server = subprocess.Popen([os.environ["N"], "stack", "lwip1", "--", sys.executable, __file__, "serve"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
assert server.stdout.readline() == "listening\n"
clients = []
for _ in range(CONNECTIONS):
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect(("10.0.0.3", 7100))
    except BlockingIOError:
        pass
    clients.append(c)
outcomes = {}
deadline = time.time() + 20
for c in clients:
    select.select([], [c], [], max(0, deadline - time.time()))
    error = c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    outcomes[errno.errorcode.get(error, "OK")] = outcomes.get(errno.errorcode.get(error, "OK"), 0) + 1
server.stdin.write("go\n"); server.stdin.flush()
print(sorted(outcomes.items()), server.stdout.readline().strip())
"#;

#[test]
fn a_burst_of_connections_across_stacks_is_queued_not_refused() {
    let dir = TempDir::new("burst");
    let script = dir.write("burst.py", BURST.as_bytes(), 0o644);
    for user in USERS {
        let output = session(user, &format!("export N; {} {}", python(), path_str(&script)));
        output.assert_code(0);
        assert_eq!(output.stdout, "[('OK', 300)] 300\n", "{output}");
    }
}

/// Thousands of sockets opened and closed in a row, by many processes in turn:
/// the session goes on answering (nothing leaks into a limit).
#[test]
fn thousands_of_connections_across_stacks_come_and_go() {
    let script = r#"
import os, socket, subprocess, sys
server = subprocess.Popen([os.environ["N"], "stack", "lwip1", "--", sys.executable, "-c", '''
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.0.0.3", 7101)); s.listen(128); print("up", flush=True)
while True:
    c = s.accept()[0]
    data = c.recv(16)
    if data == b"stop": break
    c.sendall(data); c.close()
'''], stdout=subprocess.PIPE, text=True)
assert server.stdout.readline() == "up\n"
answered = 0
for i in range(2000):
    c = socket.create_connection(("10.0.0.3", 7101))
    c.sendall(b"ping")
    answered += c.recv(16) == b"ping"
    c.close()
socket.create_connection(("10.0.0.3", 7101)).sendall(b"stop")
server.wait()
print(answered)
"#;
    let dir = TempDir::new("come-and-go");
    let script = dir.write("churn.py", script.as_bytes(), 0o644);
    let output = session(USERS[0], &format!("export N; {} {}", python(), path_str(&script)));
    output.assert_code(0);
    assert_eq!(output.stdout, "2000\n", "{output}");
}

#[test]
fn datagrams_a_full_receiver_drops_are_counted_as_linux_counts_them() {
    // A receiver on lwip1 that never reads, 2,000 datagrams from lwip0: what
    // does not fit is dropped at the receiver, and `netvm status` counts every
    // datagram either as delivered or as dropped (RcvbufErrors), none lost on
    // the way.
    let script = r#"
"$N" stack lwip1 -- python3 -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.0.0.3", 7200))
print("bound", flush=True); time.sleep(4)' | { read bound; echo "$bound"; cat; } &
until "$N" status | grep -q "10.0.0.3:7200"; do sleep 0.05; done
python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(2000): s.sendto(b"x" * 100, ("10.0.0.3", 7200))'
sleep 1
"$N" status --json | python3 -c '
import json, sys
for stack in json.load(sys.stdin)["stacks"][:2]:
    udp = stack["udp"]
    print(stack["name"], udp["out_datagrams"], udp["in_datagrams"] + udp["rcvbuf_errors"], udp["rcvbuf_errors"] > 0)'
wait
"#;
    for user in USERS {
        let output = session(user, script);
        output.assert_code(0);
        assert_eq!(output.stdout, "bound\nlwip0 2000 0 False\nlwip1 0 2000 True\n", "{output}");
    }
}

/// Servers, a greedy client and a modest one, for
/// [`one_process_cannot_spend_the_supervisors_descriptors_for_another`].
const GREEDY: &str = r#"
import errno, os, resource, selectors, socket, subprocess, sys, time
if sys.argv[1:2] == ["serve"]:
    port = int(sys.argv[2])
    s = socket.socket(); s.bind(("10.0.0.3", port)); s.listen(1024); s.setblocking(False)
    chosen = selectors.DefaultSelector(); chosen.register(s, selectors.EVENT_READ)
    print("up", flush=True)
    while True:
        for key, _ in chosen.select():
            if key.fileobj is s:
                try:
                    c = s.accept()[0]
                    chosen.register(c, selectors.EVENT_READ)
                except OSError:
                    pass
                continue
            data = key.fileobj.recv(64)
            if data:
                key.fileobj.sendall(data)
            else:
                chosen.unregister(key.fileobj); key.fileobj.close()
servers = [subprocess.Popen([os.environ["N"], "stack", "lwip1", "--", sys.executable, __file__, "serve", str(port)],
                            stdout=subprocess.PIPE, text=True) for port in (7300, 7301)]
for server in servers:
    assert server.stdout.readline() == "up\n"

# A process at its own descriptor limit.
own = subprocess.Popen([sys.executable, "-c", """
import resource, socket, time
resource.setrlimit(resource.RLIMIT_NOFILE, (24, 24))
held = []
try:
    while True: held.append(socket.socket())
except OSError as e:
    print(e.errno, flush=True)
time.sleep(30)
"""], stdout=subprocess.PIPE, text=True)
print("own limit:", errno.errorcode[int(own.stdout.readline())])

# A process that connects until it is refused.
greedy = []
while True:
    try:
        greedy.append(socket.create_connection(("10.0.0.3", 7300), timeout=5))
    except OSError as e:
        print("greedy refused:", errno.errorcode.get(e.errno, e), len(greedy) > 50)
        break

# A third process still connects, talks, and sends datagrams.
third = subprocess.run([sys.executable, "-c", """
import socket
fine = 0
for i in range(20):
    c = socket.create_connection(("10.0.0.3", 7301), timeout=5)
    c.sendall(b"hi"); fine += c.recv(2) == b"hi"
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.connect(("10.0.0.3", 9)); u.send(b"x")
print(fine)
"""], capture_output=True, text=True)
print("third:", third.stdout.strip(), third.stderr.strip()[-200:])
own.kill()
for server in servers:
    server.kill()
"#;

#[test]
fn one_process_cannot_spend_the_supervisors_descriptors_for_another() {
    // The supervisor may open 512 descriptors: a quarter of what it keeps for
    // programs is one process's share.
    let dir = TempDir::new("greedy");
    let script = dir.write("greedy.py", GREEDY.as_bytes(), 0o644);
    for user in USERS {
        let mut command = common::command_as(user, "sh");
        let inner = format!("export N='{NETVM}'; exec {} {}", python(), path_str(&script));
        let outer = format!("ulimit -n 512; exec '{NETVM}' run -- sh -c \"$0\"");
        command.args(["-c", &outer, &inner]);
        let output = run(command);
        output.assert_code(0);
        assert_eq!(
            output.stdout, "own limit: EMFILE\ngreedy refused: ENOBUFS True\nthird: 20 \n",
            "{output}"
        );
    }
}
