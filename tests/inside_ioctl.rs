//! Interface ioctls change a stack as they change Linux (issue 13): `ifconfig`,
//! `route` and `arp` (net-tools, which configure through ioctls) run unmodified
//! inside a stack and leave it as a network namespace configured alike is left,
//! bogus calls get the kernel's errnos, and a change takes effect at once.

mod common;

use std::process::Command;

use common::namespace::{
    NAMESPACE_LIKE_LWIP0, assert_script_reads_alike, monitored_alike, monitored_entries, on_lwip0,
};
use common::{USERS, User, assert_line, is_root, run, session, skip};

/// Configures through ioctls alone: aliases, netmasks, broadcasts, MTU and
/// hardware address with `ifconfig`, routes with `route`, neighbours with `arp`.
const CONFIGURED_WITH_NET_TOOLS: &str = "set -e
    ifconfig eth0:1 10.0.0.9 netmask 255.255.255.0 up
    ifconfig eth0:2 10.1.0.2
    ifconfig eth0:2 netmask 255.255.0.0
    ifconfig eth0:2 broadcast 10.1.255.254
    ifconfig eth0:3 10.0.0.51 up
    ifconfig eth0:1 down
    ifconfig eth0 mtu 1400
    ifconfig eth0 hw ether 02:6e:76:00:00:09
    route add -net 10.9.0.0 netmask 255.255.255.0 gw 10.0.0.1
    route add -net 10.8.0.0 netmask 255.255.255.0 gw 10.0.0.1 metric 5
    route add -net 10.8.0.0 netmask 255.255.255.0 gw 10.0.0.3 metric 5
    route del -net 10.8.0.0 netmask 255.255.255.0 gw 10.0.0.1
    route del default
    route add default gw 10.0.0.1
    route -6 add fd09::/64 gw fd00::1
    arp -s 10.0.0.77 02:00:00:00:00:77
    arp -s 10.0.0.78 02:00:00:00:00:78
    arp -d 10.0.0.78";

#[test]
fn ifconfig_route_and_arp_change_the_stack_as_a_namespace() {
    if !is_root() {
        return skip("needs root for a network namespace");
    }
    assert_script_reads_alike(CONFIGURED_WITH_NET_TOOLS);
    // Down and up again: the link loses its IPv6 addresses and its routes.
    assert_script_reads_alike("set -e; ifconfig eth0 down; ifconfig eth0 up; settle");
}

/// Makes interface ioctls as a program would, with good and bogus arguments,
/// and prints each one's outcome: `ok` or the errno's name.
const IOCTLS: &str = r#"import socket, struct, errno, ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
def call(s, request, arg):
    buf = arg if isinstance(arg, int) else ctypes.create_string_buffer(bytes(arg), len(arg))
    if libc.ioctl(s.fileno(), request, buf) == 0:
        return 'ok ' + (buf.raw[:24].hex() if request == 0x8954 else '')
    return errno.errorcode[ctypes.get_errno()]
inet, inet6, unix = socket.socket(), socket.socket(socket.AF_INET6), socket.socket(socket.AF_UNIX)
def ifreq(name, union=b''):
    return struct.pack('16s24s', name, union)
def sin(ip, family=socket.AF_INET):
    return struct.pack('H2x4s8x', family, socket.inet_aton(ip))
def hw(mac, family=1):
    return struct.pack('H6s8x', family, mac)
def i32(v):
    return struct.pack('i', v)
name = ctypes.create_string_buffer(b'wlan9')
def rtentry(dst, mask, gw=None, flags=0x1, dev=0, dst_family=2, mask_family=2):
    gateway = sin(gw) if gw else bytes(16)
    return struct.pack('Q16s16s16sHh4xQQh6xQQQH6x', 0, sin(dst, dst_family), gateway,
                       sin(mask, mask_family), flags, 0, 0, 0, 0, dev, 0, 0, 0)
def rtmsg(dst, length, gw=None, index=0):
    flags = 0x1 | (0x2 if gw else 0)
    return struct.pack('16s16s16sIHHIxxxxQIi', socket.inet_pton(socket.AF_INET6, dst), bytes(16),
                       socket.inet_pton(socket.AF_INET6, gw or '::'), 0, length, 0, 1, 0, flags, index)
def arpreq(ip, flags=0x6, dev=b'', pa_family=2, ha_family=1):
    return struct.pack('16s16si16s16s', sin(ip, pa_family), hw(b'\x02\0\0\0\0\x77', ha_family),
                       flags, bytes(16), dev)
SIOCADDRT, SIOCDELRT = 0x890B, 0x890C
SIOCSIFFLAGS, SIOCSIFADDR, SIOCSIFBRDADDR, SIOCSIFNETMASK = 0x8914, 0x8916, 0x891a, 0x891c
SIOCSIFMTU, SIOCSIFHWADDR, SIOCSIFTXQLEN, SIOCGIFADDR = 0x8922, 0x8924, 0x8943, 0x8915
SIOCDARP, SIOCGARP, SIOCSARP = 0x8953, 0x8954, 0x8955
calls = [
    ('alias', inet, SIOCSIFADDR, ifreq(b'eth0:5', sin('172.16.0.5'))),
    ('alias netmask', inet, SIOCSIFNETMASK, ifreq(b'eth0:5', sin('255.255.255.0'))),
    ('txqlen', inet, SIOCSIFTXQLEN, ifreq(b'eth0', i32(500))),
    ('route', inet, SIOCADDRT, rtentry('10.7.0.0', '255.255.0.0', '10.0.0.1', 0x3)),
    ('route again', inet, SIOCADDRT, rtentry('10.7.0.0', '255.255.0.0', '10.0.0.1', 0x3)),
    ('route6', inet6, SIOCADDRT, rtmsg('fd07::', 48, 'fd00::1', 2)),
    ('arp', inet, SIOCSARP, arpreq('10.0.0.79')),
    ('arp get', inet, SIOCGARP, arpreq('10.0.0.79', 0, b'eth0')),
    ('flags unknown', inet, SIOCSIFFLAGS, ifreq(b'wlan9', i32(1))),
    ('flags alias unknown', inet, SIOCSIFFLAGS, ifreq(b'eth0:7', i32(0))),
    ('flags bad pointer', inet, SIOCSIFFLAGS, 8),
    ('addr family', inet, SIOCSIFADDR, ifreq(b'wlan9', sin('10.0.0.9', 10))),
    ('addr unknown', inet, SIOCSIFADDR, ifreq(b'wlan9', sin('10.0.0.9'))),
    ('addr multicast', inet, SIOCSIFADDR, ifreq(b'eth0:7', sin('224.0.0.9'))),
    ('addr on unix', unix, SIOCSIFADDR, ifreq(b'eth0', sin('10.0.0.9'))),
    ('get addr on unix', unix, SIOCGIFADDR, ifreq(b'eth0')),
    ('get addr on inet6', inet6, SIOCGIFADDR, ifreq(b'eth0')),
    ('addr bad pointer', inet, SIOCSIFADDR, 8),
    ('netmask holes', inet, SIOCSIFNETMASK, ifreq(b'eth0', sin('255.0.255.0'))),
    ('netmask no label', inet, SIOCSIFNETMASK, ifreq(b'eth0:7', sin('255.255.0.0'))),
    ('netmask family', inet, SIOCSIFNETMASK, ifreq(b'eth0', sin('255.255.0.0', 0))),
    ('broadcast no label', inet, SIOCSIFBRDADDR, ifreq(b'eth0:7', sin('10.0.0.255'))),
    ('mtu small', inet, SIOCSIFMTU, ifreq(b'eth0', i32(20))),
    ('mtu large', inet, SIOCSIFMTU, ifreq(b'eth0', i32(70000))),
    ('mtu negative', unix, SIOCSIFMTU, ifreq(b'eth0', i32(-1))),
    ('mtu unknown', unix, SIOCSIFMTU, ifreq(b'wlan9', i32(1400))),
    ('hwaddr family', inet, SIOCSIFHWADDR, ifreq(b'eth0', hw(b'\x02\0\0\0\0\x09', 2))),
    ('hwaddr multicast', inet, SIOCSIFHWADDR, ifreq(b'eth0', hw(b'\x01\0\0\0\0\x09'))),
    ('txqlen negative', inet, SIOCSIFTXQLEN, ifreq(b'eth0', i32(-1))),
    ('txqlen unknown', inet, SIOCSIFTXQLEN, ifreq(b'wlan9', i32(10))),
    ('route on unix', unix, SIOCADDRT, rtentry('10.9.0.0', '255.255.255.0', '10.0.0.1')),
    ('route family', inet, SIOCADDRT, rtentry('10.9.0.0', '255.255.255.0', '10.0.0.1', dst_family=0)),
    ('route mask family', inet, SIOCADDRT, rtentry('10.9.0.0', '255.255.255.0', '10.0.0.1', mask_family=0)),
    ('route mask holes', inet, SIOCADDRT, rtentry('10.9.0.0', '255.0.255.0', '10.0.0.1', 0x3)),
    ('route host bits', inet, SIOCADDRT, rtentry('10.9.0.1', '255.255.255.0', '10.0.0.1', 0x3)),
    ('route bad pointer', inet, SIOCADDRT, 8),
    ('route bad dev pointer', inet, SIOCADDRT, rtentry('10.9.0.0', '255.255.255.0', '10.0.0.1', 0x3, dev=8)),
    ('route unknown dev', inet, SIOCADDRT, rtentry('10.9.0.0', '255.255.255.0', '10.0.0.1', 0x3, dev=ctypes.addressof(name))),
    ('route off-link gateway', inet, SIOCADDRT, rtentry('10.9.0.0', '255.255.255.0', '10.5.0.1', 0x3)),
    ('route no gateway', inet, SIOCADDRT, rtentry('10.9.0.0', '255.255.255.0', None, 0x3)),
    ('route nowhere', inet, SIOCADDRT, rtentry('10.9.0.0', '255.255.255.0')),
    ('route del missing', inet, SIOCDELRT, rtentry('10.6.0.0', '255.255.255.0')),
    ('route6 long prefix', inet6, SIOCADDRT, rtmsg('fd09::', 129, 'fd00::1')),
    ('route6 nowhere', inet6, SIOCADDRT, rtmsg('fd09::', 64)),
    ('route6 unknown index', inet6, SIOCADDRT, rtmsg('fd09::', 64, 'fd00::1', index=9)),
    ('route6 off-link gateway', inet6, SIOCADDRT, rtmsg('fd09::', 64, 'fd07::1')),
    ('route6 del missing', inet6, SIOCDELRT, rtmsg('fd06::', 64)),
    ('route6 bad pointer', inet6, SIOCADDRT, 8),
    ('arp on inet6', inet6, SIOCSARP, arpreq('10.0.0.77')),
    ('arp family', inet, SIOCSARP, arpreq('10.0.0.77', pa_family=10)),
    ('arp netmask', inet, SIOCSARP, arpreq('10.0.0.77', flags=0x26)),
    ('arp unknown dev', inet, SIOCSARP, arpreq('10.0.0.77', dev=b'wlan9')),
    ('arp hw family', inet, SIOCSARP, arpreq('10.0.0.77', dev=b'eth0', ha_family=2)),
    ('arp off-link', inet, SIOCSARP, arpreq('10.5.0.77')),
    ('arp incomplete', inet, SIOCSARP, arpreq('10.0.0.78', flags=0)),
    ('arp get no dev', inet, SIOCGARP, arpreq('10.0.0.77')),
    ('arp get missing', inet, SIOCGARP, arpreq('10.0.0.77', dev=b'eth0')),
    ('arp del missing', inet, SIOCDARP, arpreq('10.0.0.77')),
    ('arp bad pointer', inet, SIOCSARP, 8),
]
for label, s, request, arg in calls:
    print(label + ':', call(s, request, arg))
"#;

/// The same ioctls, good and bogus, answer alike in a namespace like lwip0 and
/// on lwip0, and leave both alike.
#[test]
fn ioctls_answer_with_the_kernels_errnos() {
    if !is_root() {
        return skip("needs root for a network namespace");
    }
    let script = "python3 -c \"$IOCTLS\"";
    let native = run({
        let mut command = Command::new("unshare");
        command.env("IOCTLS", IOCTLS);
        command.args(["-n", "sh", "-c", NAMESPACE_LIKE_LWIP0, "sh", script]);
        command
    });
    native.assert_code(0);
    let under_netvm = on_lwip0(User::Invoker, &["python3", "-c", IOCTLS]);
    assert!(native.stdout.contains("route again: EEXIST"), "{native}");
    assert_eq!(under_netvm, native.stdout);
    assert_script_reads_alike(&format!(
        "python3 -c '{}' >/dev/null",
        IOCTLS.replace('\'', "'\\''")
    ));
}

/// An alias made with `ifconfig` answers another stack's pings at once, shows
/// in `netvm status`, and stops answering once taken down. As root and as an
/// unprivileged user: the session's own user is its stacks' administrator.
#[test]
fn an_alias_made_with_ifconfig_answers_pings() {
    for user in USERS {
        let output = session(
            user,
            r#"
            ping_from_lwip1() { "$N" stack lwip1 -- ping -c 1 -W 1 10.0.0.51 >/dev/null 2>&1; }
            ping_from_lwip1 || echo "before: no reply from .51"
            ifconfig eth0:1 10.0.0.51 netmask 255.255.255.0 up
            ping_from_lwip1 && echo "alias: .51 replies"
            "$N" status | grep -q "eth0 .*10.0.0.51/24" && echo "status shows .51"
            ifconfig eth0:1 down
            ping_from_lwip1 || echo "alias down: no reply from .51"
            "#,
        );
        output.assert_code(0);
        for line in [
            "before: no reply from .51",
            "alias: .51 replies",
            "status shows .51",
            "alias down: no reply from .51",
        ] {
            assert_line(&output, line);
        }
    }
}

/// Watches `ip monitor` while net-tools change the stack, and prints what it
/// saw between two marks: changes of eth0's MTU to 1500 (once the monitor is
/// seen to listen) and to 1280 (once it has seen the rest).
const MONITORED: &str = r#"set -e
ip monitor link address route neigh > "$1" &
monitor=$!
until grep -q "mtu 1450" "$1"; do ifconfig eth0 mtu 1450; ifconfig eth0 mtu 1451; sleep 0.05; done
ifconfig eth0 mtu 1500
ifconfig eth0:1 10.0.0.51 netmask 255.255.255.0 up
ifconfig eth0:2 10.1.0.2
route add -net 10.9.0.0 netmask 255.255.255.0 gw 10.0.0.1
arp -s 10.0.0.77 02:00:00:00:00:77
route del -net 10.9.0.0 netmask 255.255.255.0
ifconfig eth0:1 down
arp -d 10.0.0.77
ifconfig eth0 mtu 1280
until grep -q "mtu 1280" "$1"; do sleep 0.05; done
kill $monitor
sed -n '/mtu 1500/,/mtu 1280/p' "$1" | sed 's/@peer0//'"#;

/// `ip monitor` sees what an ioctl changes as it sees a netlink request's
/// changes, as on Linux.
#[test]
fn ip_monitor_sees_ioctl_changes_as_on_linux() {
    if !is_root() {
        return skip("needs root for a network namespace");
    }
    let (under_netvm, native) = monitored_alike(MONITORED);
    assert!(native.contains("Deleted 10.0.0.77"), "{native}");
    assert_eq!(monitored_entries(&under_netvm), monitored_entries(&native));
}
