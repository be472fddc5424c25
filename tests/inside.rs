//! The network seen from inside a stack (issue 13, first slice: reading it).
//!
//! `ip`, `hostname -I` and Python's `if_nameindex` run unmodified on a smoltcp
//! stack and see that stack: its loopback and its interfaces, addresses and
//! routes, never the host's. And the stack's view reads as a Linux host
//! configured alike reads it: a network namespace with the same interfaces,
//! addresses and routes gives the same `ip -j addr` and `ip -j route`, field by
//! field, but for those the test lists with a reason.

mod common;

use std::process::Command;

use common::namespace::{
    NAMESPACE_LIKE_LWIP0, assert_script_reads_alike, monitored_alike, monitored_entries, on_lwip0,
};
use common::{NETVM, USERS, User, is_root, run, skip};

/// The lines of `ip -o addr` (`INDEX: NAME FAMILY ADDRESS/PREFIX ...`) reduced to
/// name, family and address.
fn addresses(ip_o_addr: &str) -> Vec<String> {
    ip_o_addr
        .lines()
        .map(|line| line.split_whitespace().skip(1).take(3).collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn ip_and_the_c_library_list_the_stacks_interfaces_and_addresses() {
    for user in USERS {
        let listed = addresses(&on_lwip0(user, &["ip", "-o", "addr"]));
        assert_eq!(listed, LWIP0, "{user:?}");
        let link = on_lwip0(user, &["ip", "-o", "link", "show", "eth0"]);
        assert!(link.starts_with("2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500"), "{link}");
        assert!(link.contains("link/ether 02:6e:76:00:00:00 brd ff:ff:ff:ff:ff:ff"), "{link}");
        assert_eq!(on_lwip0(user, &["hostname", "-I"]).trim(), "10.0.0.2 fd00::2");
        let names = "import socket; print(socket.if_nameindex())";
        assert_eq!(on_lwip0(user, &["python3", "-c", names]), "[(1, 'lo'), (2, 'eth0')]\n");
    }
}

/// Asks for eth0's index, flags and address with interface ioctls on an
/// `AF_INET` socket and on an `AF_UNIX` one (any socket will do for the
/// device's requests, as on Linux; an address is only `AF_INET`'s to give), and
/// for an interface the stack lacks.
const IOCTLS: &str = "import socket, fcntl, struct\n\
    for s in (socket.socket(), socket.socket(socket.AF_UNIX)):\n    \
    req = struct.pack('16s24x', b'eth0')\n    \
    try:\n        addr = socket.inet_ntoa(fcntl.ioctl(s, 0x8915, req)[20:24])\n    \
    except OSError as e:\n        addr = e.errno == 25\n    \
    flags = struct.unpack_from('H', fcntl.ioctl(s, 0x8913, req), 16)[0]\n    \
    print(socket.if_nametoindex('eth0'), hex(flags), addr)\n\
    try:\n    fcntl.ioctl(socket.socket(), 0x8933, struct.pack('16s24x', b'wlan9'))\n\
    except OSError as e:\n    print(e.errno == 19)\n";

#[test]
fn interface_ioctls_answer_for_the_stack() {
    for user in USERS {
        let out = on_lwip0(user, &["python3", "-c", IOCTLS]);
        assert_eq!(out, "2 0x1043 10.0.0.2\n2 0x1043 True\nTrue\n", "{user:?}");
        let ifconfig = on_lwip0(user, &["ifconfig", "eth0"]);
        assert!(ifconfig.starts_with("eth0: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 1500"));
        assert!(ifconfig.contains("inet 10.0.0.2  netmask 255.255.255.0  broadcast 10.0.0.255"));
        assert!(ifconfig.contains("ether 02:6e:76:00:00:00  txqueuelen 1000"), "{ifconfig}");
    }
}

#[test]
fn ip_route_shows_the_stacks_routes() {
    let routes = on_lwip0(User::Invoker, &["ip", "route"]);
    assert_eq!(
        routes,
        "default via 10.0.0.1 dev eth0 \n\
         10.0.0.0/24 dev eth0 proto kernel scope link src 10.0.0.2 \n"
    );
    let v6 = on_lwip0(User::Invoker, &["ip", "-6", "route"]);
    assert!(v6.contains("fd00::/64 dev eth0 proto kernel metric 256"), "{v6}");
    assert!(v6.contains("default via fd00::1 dev eth0 metric 1024"), "{v6}");
}

/// Sends 100,000 link dumps on a non-blocking netlink socket without reading the
/// answers, and measures the supervisor (its parent) meanwhile: it stops reading
/// requests while answers wait, so the sender is pushed back (EAGAIN) and the
/// supervisor's memory stays put.
const FLOOD: &str = "import socket, struct, os\n\
    sup = os.getppid()\n\
    def rss():\n    \
    status = dict(l.split(':', 1) for l in open(f'/proc/{sup}/status') if ':' in l)\n    \
    return sum(int(status[k].split()[0]) for k in ('RssAnon', 'RssShmem'))\n\
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, 0)\n\
    s.bind((0, 0))\n\
    req = struct.pack('=IHHII', 32, 18, 0x301, 1, 0) + bytes(16)\n\
    before, blocked = rss(), 0\n\
    for i in range(100000):\n    \
    try: s.send(req)\n    \
    except BlockingIOError: blocked += 1\n\
    grew = rss() - before\n\
    print('pushed back:', blocked > 0, 'grew under 4 MB:', grew < 4096, grew)\n";

#[test]
fn a_netlink_flood_is_pushed_back() {
    let out = on_lwip0(User::Invoker, &["python3", "-c", FLOOD]);
    assert!(out.starts_with("pushed back: True grew under 4 MB: True"), "{out}");
}

/// Sends 3,000 random and mangled netlink datagrams (seeded), reading whatever
/// comes back, then asks for the links: the supervisor is still there and still
/// answers.
const FUZZ: &str = "import socket, struct, random, select\n\
    random.seed(13)\n\
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, 0)\n\
    s.bind((0, 0))\n\
    dump = struct.pack('=IHHII', 32, 18, 0x301, 1, 0) + bytes(16)\n\
    def drain():\n    \
    while True:\n        \
    try: s.recv(65536)\n        \
    except BlockingIOError: return\n\
    for i in range(3000):\n    \
    if i % 2: msg = bytes(random.randrange(256) for _ in range(random.randrange(64)))\n    \
    else:\n        \
    msg = bytearray(dump + bytes(random.randrange(40)))\n        \
    for _ in range(random.randrange(1, 6)): msg[random.randrange(len(msg))] = random.randrange(256)\n    \
    try: s.send(bytes(msg))\n    \
    except OSError: pass\n    \
    drain()\n\
    select.select([], [], [], 0.2); drain()\n\
    s.setblocking(True); s.send(struct.pack('=IHHII', 32, 18, 0x301, 777, 0) + bytes(16))\n\
    names, done = [], False\n\
    while not done:\n    \
    data = s.recv(65536); off = 0\n    \
    while off + 16 <= len(data):\n        \
    length, kind, flags, seq = struct.unpack_from('=IHHI', data, off)\n        \
    if seq == 777 and kind == 3: done = True\n        \
    if seq == 777 and kind == 16: names.append(kind)\n        \
    off += max((length + 3) & ~3, 16)\n\
    print('links after the fuzz:', len(names))\n";

#[test]
fn random_netlink_messages_leave_the_supervisor_serving() {
    let out = on_lwip0(User::Invoker, &["python3", "-c", FUZZ]);
    assert_eq!(out, "links after the fuzz: 2\n");
}

/// Found by review: the names of netlink carriers and their server ends were
/// predictable and free to take, so a program could squat the next server end's
/// name and feed another program's netlink socket fake answers "from the
/// kernel". Now no program may bind or send to such a name; a victim on another
/// stack receives nothing it did not ask for.
const SQUAT: &str = "import socket, errno, os, time\n\
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
    try: s.bind(b'\\0netvm-nl-0000000000000000'); print('bound')\n\
    except OSError as e: print('bind', errno.errorcode[e.errno])\n\
    for _ in range(200):\n    \
    names = [l.split()[-1] for l in open('/proc/net/unix') if 'netvm-nl-' in l]\n    \
    if names: break\n    \
    time.sleep(0.05)\n\
    sent = 0\n\
    for name in names:\n    \
    try: s.sendto(b'fake', b'\\0' + name[1:].encode()); sent += 1\n    \
    except OSError: pass\n\
    print('names', len(names) > 0, 'sent', sent)\n\
    open(os.environ['DONE'], 'w').close()\n";

/// A program on lwip1 whose netlink socket waits for the attack to end, then
/// reads whatever is there.
const VICTIM: &str = "import socket, time, os\n\
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, 0)\n\
    s.bind((0, 0))\n\
    for _ in range(400):\n    \
    if os.path.exists(os.environ['DONE']): break\n    \
    time.sleep(0.05)\n\
    try: print('victim got', s.recv(100))\n\
    except BlockingIOError: print('victim got nothing')\n";

#[test]
fn no_program_can_take_or_feed_a_netlink_sockets_carrier() {
    for user in USERS {
        let dir = common::TempDir::new("squat");
        let writable = std::os::unix::fs::PermissionsExt::from_mode(0o777);
        std::fs::set_permissions(dir.path(), writable).expect("chmod");
        let done = dir.path().join("done");
        let script =
            format!("{NETVM} stack lwip1 -- python3 -c \"$VICTIM\" & python3 -c \"$SQUAT\"; wait");
        let mut command = common::netvm_as(user, &["run", "--", "sh", "-c", &script]);
        command.env("VICTIM", VICTIM).env("SQUAT", SQUAT).env("DONE", &done);
        let out = run(command);
        out.assert_code(0);
        assert!(out.stdout.contains("bind EADDRINUSE\nnames True sent 0\n"), "{user:?}: {out}");
        assert!(out.stdout.contains("victim got nothing"), "{user:?}: {out}");
    }
}

/// Found by review: one datagram of 1,800 link requests made the supervisor
/// hold 2.6 MB of answers for each socket that did not read them. Now what one
/// request's answers hold is bounded, and the next request waits for them.
const AMPLIFY: &str = "import socket, struct, os\n\
    sup = os.getppid()\n\
    def rss():\n    \
    status = dict(l.split(':', 1) for l in open(f'/proc/{sup}/status') if ':' in l)\n    \
    return sum(int(status[k].split()[0]) for k in ('RssAnon', 'RssShmem'))\n\
    get = struct.pack('=IHHII', 32, 18, 0x5, 1, 0) + struct.pack('=BxHiII', 0, 0, 2, 0, 0)\n\
    before = rss()\n\
    socks = []\n\
    for i in range(50):\n    \
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, 0)\n    \
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)\n    \
    s.send(get * 1800); socks.append(s)\n\
    import time; time.sleep(0.5)\n\
    print('grew under 32 MB:', rss() - before < 32768)\n";

#[test]
fn one_datagram_cannot_make_the_supervisor_hold_much() {
    let out = on_lwip0(User::Invoker, &["python3", "-c", AMPLIFY]);
    assert_eq!(out, "grew under 32 MB: True\n");
}

/// The host's own addresses, as `ip -o addr` lists them natively.
fn host_addresses() -> Vec<String> {
    let out = Command::new("ip").args(["-o", "addr"]).output().expect("ip");
    addresses(&String::from_utf8_lossy(&out.stdout))
}

/// What lwip0 has, as [`addresses`] reduces `ip -o addr`.
const LWIP0: [&str; 5] = [
    "lo inet 127.0.0.1/8",
    "lo inet6 ::1/128",
    "eth0 inet 10.0.0.2/24",
    "eth0 inet6 fd00::2/64",
    "eth0 inet6 fe80::6e:76ff:fe00:0/64",
];

/// `ip addr` inside lists the stack's addresses and no other (the host's are
/// others, but for any the host happens to share with lwip0), and changes made
/// inside (an address, a link down and up, a route) change nothing on the host.
#[test]
fn nothing_of_the_host_shows_and_nothing_changes() {
    let before = host_addresses();
    for user in USERS {
        assert_eq!(addresses(&on_lwip0(user, &["ip", "-o", "addr"])), LWIP0, "{user:?}");
        let changes = "set -e; ip addr add 10.9.9.9/24 dev eth0; ip link set lo down; \
            ip link set lo up; ip link set eth0 mtu 1400; ip route add 10.8.0.0/16 via 10.9.9.1; \
            ip -o addr show eth0";
        let changed = on_lwip0(user, &["sh", "-c", changes]);
        assert!(changed.contains("inet 10.9.9.9/24"), "{user:?}: {changed}");
    }
    assert_eq!(host_addresses(), before);
}

#[test]
fn the_stack_reads_as_a_namespace_configured_alike() {
    if !is_root() {
        return skip("needs root for a network namespace");
    }
    assert_script_reads_alike("true");
}

/// Addresses, routes, link settings and neighbours added, replaced and deleted
/// by `ip`, as a user would: the stack ends as Linux would.
#[test]
fn the_stack_changes_as_a_namespace_does() {
    if !is_root() {
        return skip("needs root for a network namespace");
    }
    assert_script_reads_alike(
        "set -e
        ip addr add 10.0.0.50/24 dev eth0
        ip addr add 10.1.0.2/16 brd + dev eth0
        ip addr add 10.1.0.3/16 dev eth0 label eth0:9
        ip addr add fd01::2/64 dev eth0
        ip addr add 224.0.0.5/24 dev eth0
        ip addr add 255.255.255.255/32 dev eth0
        ip addr del 10.0.0.50/24 dev eth0
        ip link set eth0 mtu 1400
        ip link set eth0 address 02:6e:76:00:00:09
        ip route add 10.9.0.0/24 via 10.1.0.1
        ip route add 10.8.0.0/24 via 10.1.0.1 metric 5
        ip route append 10.8.0.0/24 via 10.1.0.7 metric 5
        ip -6 route add fd09::/64 via fd01::1
        ip route replace 10.9.0.0/24 via 10.1.0.3
        ip route del 10.8.0.0/24 via 10.1.0.1
        ip neigh add 10.1.0.77 lladdr 02:00:00:00:00:77 dev eth0
        ip neigh add fd01::77 lladdr 02:00:00:00:00:78 dev eth0
        ip neigh replace 10.1.0.78 lladdr 02:00:00:00:00:79 dev eth0
        ip neigh del 10.1.0.77 dev eth0",
    );
}

/// A link taken down loses its IPv6 addresses and every route through it, keeps
/// its IPv4 addresses; brought up, it gets a link-local address from its
/// (changed) hardware address; a deleted primary address takes its secondaries.
#[test]
fn a_link_down_and_up_and_a_primary_deleted_end_as_on_linux() {
    if !is_root() {
        return skip("needs root for a network namespace");
    }
    assert_script_reads_alike(
        "set -e
        ip route add 10.9.0.0/24 via 10.0.0.1
        ip addr add 10.0.0.60/24 dev eth0
        ip link set eth0 down
        ip link set eth0 address 02:6e:76:00:00:0a
        ip link set eth0 up
        settle
        ip addr del 10.0.0.2/24 dev eth0",
    );
    assert_script_reads_alike("ip link set eth0 down");
}

/// Watches `ip monitor` while `ip` changes the stack, and prints what it saw
/// between two marks: changes of eth0's MTU to 1500 (once the monitor is seen
/// to listen) and to 1280 (once it has seen the rest).
const MONITORED: &str = r#"set -e
ip monitor link address route neigh > "$1" &
monitor=$!
until grep -q "mtu 1450" "$1"; do ip link set eth0 mtu 1450; ip link set eth0 mtu 1451; sleep 0.05; done
ip link set eth0 mtu 1500
ip addr add 10.0.0.50/24 dev eth0
ip addr add fd01::2/64 dev eth0
ip route add 10.9.0.0/24 via 10.0.0.1
ip neigh add 10.0.0.77 lladdr 02:00:00:00:00:77 dev eth0
ip route del 10.9.0.0/24
ip addr del 10.0.0.2/24 dev eth0
ip link set eth0 down
ip link set eth0 mtu 1280
until grep -q "mtu 1280" "$1"; do sleep 0.05; done
kill $monitor
sed -n '/mtu 1500/,/mtu 1280/p' "$1" | sed 's/@peer0//'"#;

/// `ip monitor` inside a stack sees what it would see on Linux: each address,
/// route (the kernel's own too), neighbour and link change, as it happens.
#[test]
fn ip_monitor_sees_changes_as_on_linux() {
    if !is_root() {
        return skip("needs root for a network namespace");
    }
    let (under_netvm, native) = monitored_alike(MONITORED);
    assert!(native.contains("Deleted local 10.0.0.50"), "{native}");
    assert_eq!(monitored_entries(&under_netvm), monitored_entries(&native));
}

/// `ip route get` looks a destination up in the stack's routes as Linux does:
/// on-link, through the gateway, local (its own addresses, all of loopback's
/// subnet), broadcast, multicast, IPv6, with a source given or a link named.
const ROUTE_GETS: &str = "get() { ip route get \"$@\" 2>&1 || true; }; \
    for d in 10.0.0.3 8.8.8.8 10.0.0.2 127.0.0.1 127.5.5.5 10.0.0.255 224.0.0.1 fd00::3 ::1 \
        fd09::1 fd00::2; do get $d; done; \
    get 255.255.255.255; get 0.0.0.0; get 10.0.0.3 from 1.2.3.4; get 10.0.0.3 from 127.0.0.9; \
    get 10.0.0.3 from 10.0.0.2; get 10.0.0.3 oif eth0; get 10.0.0.3 oif lo; \
    ip route del default; get 8.8.8.8; \
    ip link set eth0 down; get 10.0.0.3; get 10.0.0.2";

#[test]
fn ip_route_get_looks_up_as_linux_does() {
    if !is_root() {
        return skip("needs root for a network namespace");
    }
    let native = run({
        let mut command = Command::new("unshare");
        command.args(["-n", "sh", "-c", NAMESPACE_LIKE_LWIP0, "sh", ROUTE_GETS]);
        command
    });
    native.assert_code(0);
    assert!(native.stdout.contains("8.8.8.8 via 10.0.0.1 dev eth0 src 10.0.0.2"), "{native}");
    let under_netvm = on_lwip0(User::Invoker, &["sh", "-c", ROUTE_GETS]);
    assert_eq!(under_netvm, native.stdout);
}

/// A socket binds to the stack's own interfaces by name and index
/// (`SO_BINDTODEVICE`, `SO_BINDTOIFINDEX`), as `arping` and `ping -I` do.
const BIND_TO_DEVICE: &str = "import socket\n\
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'eth0')\n\
    print(s.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16))\n\
    s.setsockopt(socket.SOL_SOCKET, 62, 1)\n\
    print(s.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16))\n\
    try: s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'wlan7')\n\
    except OSError as e: print(e.errno == 19)\n";

#[test]
fn sockets_bind_to_the_stacks_interfaces() {
    for user in USERS {
        let out = on_lwip0(user, &["python3", "-c", BIND_TO_DEVICE]);
        assert_eq!(out, "b'eth0\\x00'\nb'lo\\x00'\nTrue\n", "{user:?}");
    }
}

/// A Go program listing the interfaces and addresses (`net.Interfaces`, which
/// reads rtnetlink as `ip` does).
const GO_INTERFACES: &str = "package main\n\
    import (\"fmt\"; \"net\")\n\
    func main() {\n\
    \tifaces, err := net.Interfaces()\n\
    \tif err != nil { fmt.Println(\"error:\", err); return }\n\
    \tfor _, i := range ifaces { addrs, _ := i.Addrs(); fmt.Println(i.Index, i.Name, i.MTU, i.HardwareAddr, i.Flags, addrs) }\n\
    \tall, err := net.InterfaceAddrs()\n\
    \tfmt.Println(all, err)\n\
    }\n";

#[test]
fn go_lists_the_stacks_interfaces() {
    if Command::new("go").arg("version").output().is_err() {
        return skip("needs go (golang-go)");
    }
    let dir = common::TempDir::new("go");
    let source = dir.write("main.go", GO_INTERFACES.as_bytes(), 0o644);
    let binary = dir.path().join("interfaces");
    let build = run({
        let mut command = Command::new("go");
        command.arg("build").arg("-o").arg(&binary).arg(&source);
        command.env("HOME", dir.path()).env("GOCACHE", dir.path().join("cache"));
        command
    });
    build.assert_code(0);
    for user in USERS {
        let out = on_lwip0(user, &[binary.to_str().expect("a UTF-8 path")]);
        assert_eq!(
            out,
            "1 lo 65536  up|loopback [127.0.0.1/8 ::1/128]\n\
             2 eth0 1500 02:6e:76:00:00:00 up|broadcast|multicast \
             [10.0.0.2/24 fd00::2/64 fe80::6e:76ff:fe00:0/64]\n\
             [127.0.0.1/8 10.0.0.2/24 ::1/128 fd00::2/64 fe80::6e:76ff:fe00:0/64] <nil>\n",
            "{user:?}"
        );
    }
}

/// glibc's `getifaddrs`, called through ctypes: each interface's addresses and
/// its link entry.
const GETIFADDRS: &str = "import ctypes, socket
libc = ctypes.CDLL(None)
class sockaddr(ctypes.Structure):
    _fields_ = [(\"family\", ctypes.c_ushort), (\"data\", ctypes.c_ubyte * 14)]
class ifaddrs(ctypes.Structure): pass
ifaddrs._fields_ = [(\"next\", ctypes.POINTER(ifaddrs)), (\"name\", ctypes.c_char_p), (\"flags\", ctypes.c_uint), (\"addr\", ctypes.POINTER(sockaddr)), (\"netmask\", ctypes.POINTER(sockaddr))]
p = ctypes.POINTER(ifaddrs)()
assert libc.getifaddrs(ctypes.byref(p)) == 0
out = []
while p:
    e = p.contents
    fam = e.addr.contents.family if e.addr else 0
    if fam == socket.AF_INET:
        out.append((e.name.decode(), socket.inet_ntop(socket.AF_INET, bytes(e.addr.contents.data[2:6]))))
    elif fam == socket.AF_INET6:
        raw = ctypes.string_at(ctypes.addressof(e.addr.contents), 28)
        out.append((e.name.decode(), socket.inet_ntop(socket.AF_INET6, raw[8:24])))
    elif fam == socket.AF_PACKET:
        out.append((e.name.decode(), \"link\"))
    p = e.next
print(sorted(out))
";

#[test]
fn getifaddrs_lists_the_stacks_addresses() {
    for user in USERS {
        let out = on_lwip0(user, &["python3", "-c", GETIFADDRS]);
        assert_eq!(
            out,
            "[('eth0', '10.0.0.2'), ('eth0', 'fd00::2'), ('eth0', 'fe80::6e:76ff:fe00:0'), \
             ('eth0', 'link'), ('lo', '127.0.0.1'), ('lo', '::1'), ('lo', 'link')]\n",
            "{user:?}"
        );
    }
}
