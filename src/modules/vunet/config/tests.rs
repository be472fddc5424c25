//! The `[vunet]` table's tests: what is accepted, resolved, and refused where.

use std::net::IpAddr;
use std::path::PathBuf;

use super::*;
use crate::config::{BUILT_IN, Origin, line_of};
use crate::modules::Config;
use crate::modules::vunet::cidr::Cidr;
use interface::DEFAULT_MTU;

/// Parses `text`, from `origin`, as `modules.toml`.
fn parse(text: &str, origin: &Origin) -> Result<Config, crate::config::ConfigError> {
    crate::config::parse(text, origin, Config::read)
}

/// Reads the configuration at `origin`.
fn load(origin: &Origin) -> Result<Config, crate::config::ConfigError> {
    crate::config::load(origin, Config::read)
}

fn parse_err(text: &str) -> String {
    parse(text, &Origin::File("m.toml".into())).unwrap_err().to_string()
}

fn parse_ok(text: &str) -> VunetConfig {
    match parse(text, &Origin::File("conf/m.toml".into())) {
        Ok(config) => config.vunet,
        Err(e) => panic!("{e}\n{text}"),
    }
}

/// Checks that `text` is refused on the line holding `at` (its first
/// occurrence) with a message containing `reason`.
#[track_caller]
fn assert_refused(text: &str, at: &str, reason: &str) {
    refused_on(text, line_of(text, text.find(at).expect("`at` is in the text")), reason);
}

/// Like [`assert_refused`], on the line of the last occurrence of `at`.
#[track_caller]
fn assert_refused_last(text: &str, at: &str, reason: &str) {
    refused_on(text, line_of(text, text.rfind(at).expect("`at` is in the text")), reason);
}

#[track_caller]
fn refused_on(text: &str, line: usize, reason: &str) {
    let message = parse_err(text);
    let prefix = format!("m.toml:{line}: ");
    assert!(message.starts_with(&prefix), "expected line {line}: {message}\n{text}");
    assert!(message.contains(reason), "expected `{reason}`: {message}");
    assert!(!message.contains('\n'), "one line: {message}");
}

/// A configuration with switches `sw0` and `sw1` and a stack `a`, then `rest`.
fn net(rest: &str) -> String {
    format!(
        "[vunet]\ndefault = \"a\"\n[[vunet.switch]]\nname = \"sw0\"\n\
         [[vunet.switch]]\nname = \"sw1\"\n{rest}"
    )
}

/// Stack `a` on sw0 with `addresses` and the interface keys `extra`, then `rest`.
fn stack_a(addresses: &str, extra: &str, rest: &str) -> String {
    net(&format!(
        "[[vunet.stack]]\nname = \"a\"\nkind = \"smoltcp\"\n\
         [[vunet.stack.interface]]\nswitch = \"sw0\"\naddresses = [{addresses}]\n{extra}{rest}"
    ))
}

fn cidr(text: &str) -> Cidr {
    Cidr::parse(text).unwrap()
}

#[test]
fn the_built_in_configuration_is_valid() {
    let config = load(&Origin::BuiltIn).unwrap();
    assert!(!config.vunet.stacks.is_empty());
}

#[test]
fn the_built_in_network() {
    let vunet = load(&Origin::BuiltIn).unwrap().vunet;
    assert_eq!(vunet.default.get_ref(), "lwip0");
    assert_eq!(vunet.switch_names(), ["sw0", "up0"]);
    let interface = |index: u8, switch: &str, addresses: [&str; 2], role: u8| InterfaceSpec {
        name: format!("eth{index}"),
        switch: Some(switch.into()),
        mac: [0x02, 0x6e, 0x76, role, 0, index],
        mtu: 1500,
        addresses: addresses.map(cidr).into(),
        capture: None,
    };
    let gw = vec![
        interface(0, "sw0", ["10.0.0.1/24", "fd00::1/64"], 0xff),
        interface(1, "up0", ["10.0.2.1/24", "fd00:0:0:2::1/64"], 0xff),
    ];
    let defaults = vec![
        RouteSpec { to: cidr("0.0.0.0/0"), via: "10.0.2.2".parse().unwrap() },
        RouteSpec { to: cidr("::/0"), via: "fd00:0:0:2::2".parse().unwrap() },
    ];
    assert_eq!(
        vunet.routers(),
        [RouterSpec { name: "gw".into(), interfaces: gw.clone(), routes: defaults }]
    );
    let host = interface(0, "up0", ["10.0.2.2/24", "fd00:0:0:2::2/64"], 0xfe);
    let dns = vec!["10.0.2.3".parse().unwrap(), "fd00:0:0:2::3".parse().unwrap()];
    assert_eq!(vunet.uplinks(), [UplinkSpec { name: "host".into(), interface: host, dns }]);
    let mut isolated = load(&Origin::BuiltIn).unwrap().vunet;
    isolated.without_uplinks();
    assert!(isolated.uplinks().is_empty());
    assert_eq!(
        isolated.routers(),
        [RouterSpec { name: "gw".into(), interfaces: gw, routes: vec![] }]
    );
    let names: Vec<_> = vunet.stacks.iter().map(|s| s.name.get_ref().as_str()).collect();
    assert_eq!(names, ["lwip0", "lwip1", "none"]);
    for (s, host) in [(0, 2), (1, 3)] {
        let stack = &vunet.stacks[s];
        let eth0 = InterfaceSpec {
            name: "eth0".into(),
            switch: Some("sw0".into()),
            mac: [0x02, 0x6e, 0x76, 0, s as u8, 0],
            mtu: 1500,
            addresses: vec![cidr(&format!("10.0.0.{host}/24")), cidr(&format!("fd00::{host}/64"))],
            capture: None,
        };
        assert_eq!(stack.interfaces(s), [eth0]);
        let routes = [
            RouteSpec { to: cidr("0.0.0.0/0"), via: "10.0.0.1".parse().unwrap() },
            RouteSpec { to: cidr("::/0"), via: "fd00::1".parse().unwrap() },
        ];
        assert_eq!(stack.routes(), routes);
        let ips: Vec<IpAddr> =
            [format!("10.0.0.{host}"), format!("fd00::{host}")].map(|a| a.parse().unwrap()).into();
        assert_eq!(stack.ips(), ips);
    }
    assert!(vunet.stacks[2].interfaces(2).is_empty());
    assert!(vunet.stacks[2].routes().is_empty());
}

/// The complete configurations in `man/modules.toml.5` are valid, and the first
/// is the built-in one without its comments.
#[test]
fn the_manual_examples_are_valid() {
    let page = include_str!("../../../../man/modules.toml.5");
    let examples: Vec<String> = page
        .split(".EX\n")
        .skip(1)
        .filter_map(|block| block.split_once(".EE").map(|(example, _)| example))
        .filter(|example| example.starts_with("[vunet]"))
        .map(|example| example.replace("\\-", "-"))
        .collect();
    assert!(examples.len() >= 3, "{examples:?}");
    for example in &examples {
        if let Err(e) = parse(example, &Origin::File("man.toml".into())) {
            panic!("{e}\n{example}");
        }
    }
    let lines = |text: &str| -> Vec<String> {
        text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect()
    };
    assert_eq!(lines(&examples[0]), lines(BUILT_IN));
}

#[test]
fn a_minimal_file() {
    let text = "[vunet]\ndefault = \"n\"\n[[vunet.stack]]\nname = \"n\"\nkind = \"none\"\n";
    let config = parse(text, &Origin::BuiltIn).unwrap();
    assert_eq!(config.vunet.stacks[0].kind.get_ref(), "none");
    assert!(config.vunet.switch_names().is_empty());
    assert!(config.vunet.routers().is_empty());
}

#[test]
fn errors_name_the_line_and_the_reason() {
    let unknown_kind = "[vunet]\ndefault = \"a\"\n[[vunet.stack]]\nname = \"a\"\nkind = \"lwip\"\n";
    assert_eq!(
        parse_err(unknown_kind),
        "m.toml:5: unknown stack kind `lwip` (known kinds: none, host, smoltcp, echo)"
    );
    let twice = "[vunet]\ndefault = \"a\"\n[[vunet.stack]]\nname = \"a\"\nkind = \"none\"\n\
                 [[vunet.stack]]\nname = \"a\"\nkind = \"host\"\n";
    assert_eq!(
        parse_err(twice),
        "m.toml:7: stack `a` is defined twice (first on line 4); rename one"
    );
    let no_default = "[vunet]\ndefault = \"x\"\n[[vunet.stack]]\nname = \"a\"\nkind = \"none\"\n";
    assert_eq!(
        parse_err(no_default),
        "m.toml:2: default stack `x` is not defined (defined stacks: a)"
    );
    let bad_name = "[vunet]\ndefault = \"a b\"\n[[vunet.stack]]\nname = \"a b\"\nkind = \"none\"\n";
    assert!(parse_err(bad_name).starts_with("m.toml:4: stack name `a b` must be"));
}

#[test]
fn syntax_and_typos_are_refused_with_their_line() {
    let typo = "[vunet]\ndefault = \"a\"\n[[vunet.stack]]\nname = \"a\"\nkidn = \"none\"\n";
    let message = parse_err(typo);
    assert!(message.starts_with("m.toml:5: unknown field `kidn`"), "{message}");
    let syntax = "[vunet\n";
    assert!(parse_err(syntax).starts_with("m.toml:1: "), "{}", parse_err(syntax));
    let missing = "[vunet]\n";
    assert!(parse_err(missing).contains("missing field `default`"), "{}", parse_err(missing));
    assert_refused(&stack_a("", "adresses = []\n", ""), "adresses", "unknown field `adresses`");
    assert_refused(&net("[[vunet.switch]]\nnmae = \"x\"\n"), "nmae", "unknown field `nmae`");
    let route = stack_a("\"10.0.0.2/24\"", "", "[[vunet.stack.route]]\nto = \"default\"\n");
    assert_refused(&route, "[[vunet.stack.route]]", "missing field `via`");
    assert_refused(&stack_a("", "mtu = \"big\"\n", ""), "mtu", "expected i64");
}

/// Found by review: what the file gets wrong is told, not panicked on; empty lists
/// of another kind's keys stay harmless; faults are told in file order.
#[test]
fn review_findings_on_the_new_reader() {
    for vunet in ["vunet = 3", "vunet = \"x\"", "vunet = []", "[[vunet]]"] {
        assert_refused(vunet, vunet, "invalid type");
    }
    let head = "[vunet]\ndefault = \"a\"\n[[vunet.stack]]\nname = \"a\"\nkind = \"none\"\n";
    parse_ok(&format!("{head}addresses = []\ninterface = []\nroute = []\n"));
    let bad_name_then_bad_kind = "[vunet]\ndefault = \"a\"\n[[vunet.stack]]\nname = \"a b\"\n\
        kind = \"none\"\n[[vunet.stack]]\nname = \"c\"\nkind = \"lwip\"\n";
    assert_refused(bad_name_then_bad_kind, "a b", "stack name `a b` must be");
    let twice_then_bad_kind = format!("{head}[[vunet.stack]]\nname = \"a\"\nkind = \"lwip\"\n");
    assert_refused_last(&twice_then_bad_kind, "name = \"a\"", "stack `a` is defined twice");
    let echo = format!(
        "{head}[[vunet.stack]]\nname = \"e\"\nkind = \"echo\"\naddresses = [\"10.0.0.2\"]\n"
    );
    assert_refused(&echo, "addresses = [\"10", "an `echo` stack has no addresses of its own");
    let typo = format!("{head}bannr = \"x\"\n");
    let message = parse_err(&typo);
    assert!(message.ends_with("unknown field `bannr`, expected `name` or `kind`"), "{message}");
}

#[test]
fn stacks_are_tables() {
    let text = "[vunet]\ndefault = \"none\"\nstack = [1]\n";
    assert_refused(text, "stack = ", "invalid type: integer `1`, expected a map");
    let text = "[vunet]\ndefault = \"none\"\n[[vunet.stack]]\nname = 5\nkind = \"none\"\n";
    assert_refused(text, "name = 5", "invalid type: integer `5`, expected a string");
}

#[test]
fn always_available_stacks_can_be_the_default_unlisted() {
    let text = "[vunet]\ndefault = \"none\"\n";
    assert!(parse(text, &Origin::BuiltIn).is_ok());
}

#[test]
fn only_smoltcp_stacks_take_addresses_interfaces_and_routes() {
    let head = "[vunet]\ndefault = \"a\"\n[[vunet.switch]]\nname = \"sw0\"\n\
                [[vunet.stack]]\nname = \"a\"\nkind = \"none\"\n";
    let text = format!("{head}addresses = [\"10.0.0.2/24\"]\n");
    assert_eq!(
        parse_err(&text),
        "m.toml:8: a `none` stack has no addresses of its own; only smoltcp stacks take \
         `addresses`"
    );
    let text = format!("{head}[[vunet.stack.interface]]\nswitch = \"sw0\"\n");
    assert_refused(&text, "[[vunet.stack.interface]]", "a `none` stack has no interfaces");
    let text = format!("{head}[[vunet.stack.route]]\nto = \"default\"\nvia = \"10.0.0.1\"\n");
    assert_refused(&text, "to = ", "a `none` stack has no routes");
    let bad = "[vunet]\ndefault = \"a\"\n[[vunet.stack]]\nname = \"a\"\nkind = \"smoltcp\"\n\
               addresses = [\"10.0.0.2/33\"]\n";
    assert_refused(bad, "addresses", "prefix length must be 0 to 32");
}

#[test]
fn stack_level_addresses_are_one_unplugged_eth0() {
    let text = "[vunet]\ndefault = \"a\"\n[[vunet.stack]]\nname = \"n\"\nkind = \"none\"\n\
                [[vunet.stack]]\nname = \"a\"\nkind = \"smoltcp\"\n\
                addresses = [\"10.0.0.2/24\", \"fd00::2\"]\n";
    let vunet = parse_ok(text);
    let eth0 = InterfaceSpec {
        name: "eth0".into(),
        switch: None,
        mac: [0x02, 0x6e, 0x76, 0, 1, 0],
        mtu: DEFAULT_MTU,
        addresses: vec![cidr("10.0.0.2/24"), cidr("fd00::2/128")],
        capture: None,
    };
    assert_eq!(vunet.stacks[1].interfaces(1), [eth0]);
    assert_eq!(
        vunet.stacks[1].ips(),
        ["10.0.0.2".parse::<IpAddr>().unwrap(), "fd00::2".parse().unwrap()]
    );
    let both = stack_a("", "", "")
        .replace("kind = \"smoltcp\"\n", "kind = \"smoltcp\"\naddresses = [\"10.0.0.9/24\"]\n");
    assert_refused(&both, "10.0.0.9", "give either `addresses` or [[vunet.stack.interface]]");
}

#[test]
fn addresses_bare_or_with_a_prefix() {
    assert_eq!(Cidr::parse("10.0.0.2").unwrap(), cidr("10.0.0.2/32"));
    assert_eq!(Cidr::parse("fd00::2").unwrap(), cidr("fd00::2/128"));
    for (bad, why) in [
        ("10.0.0.2/", "prefix length must be 0 to 32"),
        ("10.0.0.2/+4", "prefix length must be 0 to 32"),
        ("fd00::2/129", "prefix length must be 0 to 128"),
        ("10.0.0", "is not an IP address"),
        ("0.0.0.0/8", "the unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("127.0.0.2/8", "a loopback address"),
        ("::1", "a loopback address"),
        ("255.255.255.255", "the broadcast address"),
    ] {
        let text = stack_a(&format!("\"{bad}\""), "", "");
        assert_refused(&text, bad, why);
    }
    let twice = stack_a("\"10.0.0.2/24\", \"10.0.0.2/16\"", "", "");
    assert_refused(&twice, "10.0.0.2/24", "address 10.0.0.2 is given twice on this interface");
}

#[test]
fn names_are_unique() {
    let switches = format!("{}[[vunet.switch]]\nname = \"sw0\"\n", stack_a("", "", ""));
    let message = parse_err(&switches);
    assert!(
        message.ends_with("switch `sw0` is defined twice (first on line 4); rename one"),
        "{message}"
    );
    let bad_switch = stack_a("", "", "[[vunet.switch]]\nname = \"s w\"\n");
    assert_refused(&bad_switch, "s w", "switch name `s w` must be");

    let router = "[[vunet.router]]\nname = \"gw\"\n\
                  [[vunet.router.interface]]\nswitch = \"sw0\"\naddresses = [\"10.0.0.1/24\"]\n";
    let routers = stack_a(
        "\"10.0.0.2/24\"",
        "",
        &format!("{router}{}", router.replace("10.0.0.1", "10.0.1.1").replace("sw0", "sw1")),
    );
    assert_refused_last(&routers, "name = \"gw\"", "router `gw` is defined twice");
    let same_as_stack = stack_a("\"10.0.0.2/24\"", "", &router.replace("gw", "a"));
    assert_refused_last(&same_as_stack, "name = \"a\"", "`a` is already a stack's name");

    let two_eth1 = stack_a("\"10.0.0.2/24\"", "name = \"eth1\"\n", "[[vunet.stack.interface]]\n");
    assert_refused_last(
        &two_eth1,
        "[[vunet.stack.interface]]",
        "stack `a` has two interfaces named `eth1` (the other on line 10); give this one another name",
    );
    let explicit = stack_a("", "name = \"x\"\n", "[[vunet.stack.interface]]\nname = \"x\"\n");
    let message = parse_err(&explicit);
    assert!(message.starts_with("m.toml:15: stack `a` has two interfaces named `x`"), "{message}");
    for bad in ["lo", "a-very-long-interface", "e th0", ""] {
        let text = stack_a("", &format!("name = \"{bad}\"\n"), "");
        assert_refused_last(&text, "name = \"", "must be 1 to 15 letters");
    }
}

#[test]
fn interfaces_plug_into_declared_switches() {
    let text = stack_a("", "", "").replace("switch = \"sw0\"", "switch = \"sw9\"");
    let message = parse_err(&text);
    assert_eq!(
        message,
        "m.toml:11: no switch named `sw9`; declare it with [[vunet.switch]] name = \"sw9\""
    );
}

#[test]
fn interfaces_resolve_with_their_defaults_and_given_values() {
    let text = net("[[vunet.stack]]\nname = \"n\"\nkind = \"none\"\n\
         [[vunet.stack]]\nname = \"z\"\nkind = \"smoltcp\"\n\
         [[vunet.stack]]\nname = \"a\"\nkind = \"smoltcp\"\n\
         [[vunet.stack.interface]]\nswitch = \"sw0\"\naddresses = [\"10.0.0.2/24\"]\n\
         [[vunet.stack.interface]]\nname = \"up\"\nswitch = \"sw1\"\nmac = \"02:AA:bb:cc:dd:ee\"\n\
         mtu = 9000\naddresses = [\"10.1.0.2/24\", \"fd01::2/64\"]\ncapture = \"up.pcap\"\n\
         [[vunet.stack.interface]]\naddresses = [\"192.168.7.7/24\"]\nmtu = 576\n\
         [[vunet.stack.route]]\nto = \"10.8.0.0/16\"\nvia = \"10.1.0.1\"\n\
         [[vunet.stack.route]]\nto = \"fd09::/48\"\nvia = \"fd01::1\"\n\
         [[vunet.stack.route]]\nto = \"10.9.9.9\"\nvia = \"192.168.7.1\"\n");
    let vunet = parse_ok(&text);
    let a = &vunet.stacks[2];
    let interfaces = a.interfaces(2);
    let names: Vec<_> = interfaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["eth0", "up", "eth2"]);
    assert_eq!(interfaces[0].mac, [0x02, 0x6e, 0x76, 0, 2, 0]);
    assert_eq!(interfaces[1].mac, [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee]);
    assert_eq!(interfaces[2].mac, [0x02, 0x6e, 0x76, 0, 2, 2]);
    assert_eq!(interfaces.iter().map(|i| i.mtu).collect::<Vec<_>>(), [1500, 9000, 576]);
    assert_eq!(interfaces[1].switch.as_deref(), Some("sw1"));
    assert_eq!(interfaces[2].switch, None);
    assert_eq!(interfaces[1].capture, Some(PathBuf::from("conf/up.pcap")));
    assert_eq!(interfaces[0].capture, None);
    assert_eq!(
        a.routes(),
        [
            RouteSpec { to: cidr("10.8.0.0/16"), via: "10.1.0.1".parse().unwrap() },
            RouteSpec { to: cidr("fd09::/48"), via: "fd01::1".parse().unwrap() },
            RouteSpec { to: cidr("10.9.9.9/32"), via: "192.168.7.1".parse().unwrap() },
        ]
    );
    assert_eq!(a.ips().len(), 4);
    assert!(vunet.stacks[1].interfaces(1).is_empty());
}

#[test]
fn macs_are_unicast_and_unique() {
    for (bad, why) in [
        ("02:6e:76:0:0:1", "is not a MAC address"),
        ("02-6e-76-00-00-01", "is not a MAC address"),
        ("02:6e:76:00:00:01:02", "is not a MAC address"),
        ("02:6e:76:00:00:0g", "is not a MAC address"),
        ("01:00:5e:00:00:01", "is a multicast MAC address"),
        ("ff:ff:ff:ff:ff:ff", "is a multicast MAC address"),
        ("00:00:00:00:00:00", "cannot be an interface's MAC address"),
    ] {
        let text = stack_a("", &format!("mac = \"{bad}\"\n"), "");
        assert_refused(&text, "mac = ", why);
    }
    let twice = stack_a(
        "",
        "mac = \"02:00:00:00:00:01\"\n",
        "[[vunet.stack.interface]]\nmac = \"02:00:00:00:00:01\"\n",
    );
    assert_refused_last(
        &twice,
        "mac = ",
        "MAC address 02:00:00:00:00:01 is already used by stack `a` interface eth0 (line 10); give \
         this interface another mac",
    );
    // An explicit MAC that is another interface's default, after or before it.
    let router = "[[vunet.router]]\nname = \"gw\"\n[[vunet.router.interface]]\nswitch = \"sw0\"\n\
                  addresses = [\"10.0.0.1/24\"]\n";
    let after = stack_a("", "", &format!("{router}mac = \"02:6e:76:00:00:00\"\n"));
    assert_refused(
        &after,
        "mac = ",
        "MAC address 02:6e:76:00:00:00 is already used by stack `a` interface eth0",
    );
    let before = format!(
        "{}[[vunet.stack]]\nname = \"b\"\nkind = \"smoltcp\"\n[[vunet.stack.interface]]\n",
        stack_a("", "mac = \"02:6e:76:00:01:00\"\n", "")
    );
    assert_refused_last(
        &before,
        "[[vunet.stack.interface]]",
        "this interface's default MAC address 02:6e:76:00:01:00 is already used by stack `a` interface eth0",
    );
}

#[test]
fn an_address_belongs_to_one_party() {
    let b = |keys: &str| {
        format!(
            "[[vunet.stack]]\nname = \"b\"\nkind = \"smoltcp\"\n[[vunet.stack.interface]]\n{keys}"
        )
    };
    let shared =
        stack_a("\"10.0.0.2/24\"", "", &b("switch = \"sw1\"\naddresses = [\"10.0.0.2/24\"]\n"));
    assert_refused_last(
        &shared,
        "10.0.0.2/24",
        "address 10.0.0.2 is already used by stack `a` interface eth0 (line 10)",
    );
    let router = "[[vunet.router]]\nname = \"gw\"\n[[vunet.router.interface]]\nswitch = \"sw1\"\n\
                  addresses = [\"fd00::2/64\"]\n";
    let with_router = stack_a("\"fd00::2/64\"", "", router);
    assert_refused_last(&with_router, "fd00::2/64", "already used by stack `a`");
    let one_stack =
        stack_a("\"10.0.0.2/24\"", "", "[[vunet.stack.interface]]\naddresses = [\"10.0.0.2/8\"]\n");
    assert_refused(
        &one_stack,
        "10.0.0.2/8",
        "address 10.0.0.2 is already used by stack `a` interface eth0",
    );
    // Unplugged interfaces of different stacks never meet: they may share one.
    parse_ok(&stack_a("\"10.0.0.2/24\"", "", &b("addresses = [\"10.0.0.2/24\"]\n")));
    let unplugged_twice = "[vunet]\ndefault = \"a\"\n\
        [[vunet.stack]]\nname = \"a\"\nkind = \"smoltcp\"\naddresses = [\"10.0.0.2/24\"]\n\
        [[vunet.stack]]\nname = \"b\"\nkind = \"smoltcp\"\naddresses = [\"10.0.0.2/24\"]\n";
    parse_ok(unplugged_twice);
}

#[test]
fn mtus_are_in_range() {
    for bad in ["575", "65536", "-1", "0", "99999999999"] {
        let text = stack_a("\"10.0.0.2/24\"", &format!("mtu = {bad}\n"), "");
        assert_refused(
            &text,
            "mtu",
            &format!("mtu {bad} is out of range: give one from 576 to 65535"),
        );
    }
    parse_ok(&stack_a("\"10.0.0.2/24\"", "mtu = 576\n", ""));
    parse_ok(&stack_a("\"10.0.0.2/24\"", "mtu = 65535\n", ""));
    parse_ok(&stack_a("\"fd00::2/64\"", "mtu = 1280\n", ""));
    let small = stack_a("\"10.0.0.2/24\", \"fd00::2/64\"", "mtu = 1279\n", "");
    assert_refused(
        &small,
        "mtu",
        "mtu 1279 is below 1280, the least IPv6 allows, and this interface has the IPv6 address fd00::2/64",
    );
}

#[test]
fn routes_are_checked() {
    let route = |to: &str, via: &str| {
        stack_a(
            "\"10.0.0.2/24\", \"fd00::2/64\"",
            "",
            &format!("[[vunet.stack.route]]\nto = \"{to}\"\nvia = \"{via}\"\n"),
        )
    };
    parse_ok(&route("default", "10.0.0.1"));
    parse_ok(&route("0.0.0.0/0", "10.0.0.1"));
    parse_ok(&route("fd01::/64", "fd00::1"));
    assert_refused(
        &route("10.1.0.1/16", "10.0.0.1"),
        "to = ",
        "`10.1.0.1/16`: Invalid prefix for given prefix length (host bits are set); write 10.1.0.0/16",
    );
    assert_refused(&route("fd01::1/64", "fd00::1"), "to = ", "write fd01::/64");
    assert_refused(&route("everywhere", "10.0.0.1"), "to = ", "give \"default\" or a prefix");
    assert_refused(&route("10.1.0.0/40", "10.0.0.1"), "to = ", "prefix length must be 0 to 32");
    assert_refused(&route("default", "10.0.0.1/24"), "via = ", "without a prefix length");
    assert_refused(&route("default", "gateway"), "via = ", "is not an IP address");
    assert_refused(&route("default", "0.0.0.0"), "via = ", "cannot be a gateway");
    assert_refused(
        &route("default", "10.9.0.1"),
        "via = ",
        "gateway 10.9.0.1 is on none of stack `a`'s subnets (10.0.0.0/24); a gateway must be on \
         the subnet of one of its interfaces",
    );
    assert_refused(
        &route("10.1.0.0/16", "fd00::1"),
        "via = ",
        "gateway fd00::1 is IPv6 but 10.1.0.0/16 is IPv4",
    );
    assert_refused(
        &route("default", "10.0.0.2"),
        "via = ",
        "gateway 10.0.0.2 is stack `a`'s own address",
    );
    let v4_only = stack_a(
        "\"10.0.0.2/24\"",
        "",
        "[[vunet.stack.route]]\nto = \"default\"\nvia = \"fd00::1\"\n",
    );
    assert_refused(
        &v4_only,
        "via = ",
        "stack `a` has no IPv6 address, so gateway fd00::1 is out of its reach",
    );
    let twice = stack_a(
        "\"10.0.0.2/24\", \"fd00::2/64\"",
        "",
        "[[vunet.stack.route]]\nto = \"default\"\nvia = \"10.0.0.1\"\n\
         [[vunet.stack.route]]\nto = \"default\"\nvia = \"fd00::1\"\n\
         [[vunet.stack.route]]\nto = \"0.0.0.0/0\"\nvia = \"10.0.0.9\"\n",
    );
    assert_refused(
        &twice,
        "0.0.0.0/0",
        "a route to default (IPv4) is already given on line 14; keep one",
    );
    // A gateway on an unplugged interface's subnet counts.
    let unplugged = "[vunet]\ndefault = \"a\"\n\
        [[vunet.stack]]\nname = \"a\"\nkind = \"smoltcp\"\naddresses = [\"10.0.0.2/24\"]\n\
        [[vunet.stack.route]]\nto = \"default\"\nvia = \"10.0.0.1\"\n";
    assert_eq!(parse_ok(unplugged).stacks[0].routes().len(), 1);
}

#[test]
fn smoltcp_capacities_are_limits() {
    let addresses = |n: usize| -> String {
        (1..=n).map(|i| format!("\"10.0.{i}.2/24\"")).collect::<Vec<_>>().join(", ")
    };
    parse_ok(&stack_a(&addresses(31), "", ""));
    assert_refused(
        &stack_a(&addresses(32), "", ""),
        "addresses",
        "more than 31 addresses on one interface, the most smoltcp holds",
    );
    let routes = |n: usize| {
        let routes: String = (1..=n)
            .map(|i| {
                let to = format!("10.{}.{}.0/24", 1 + i / 256, i % 256);
                format!("[[vunet.stack.route]]\nto = \"{to}\"\nvia = \"10.0.0.1\"\n")
            })
            .collect();
        stack_a("\"10.0.0.2/24\"", "", &routes)
    };
    assert_eq!(parse_ok(&routes(256)).stacks[0].routes().len(), 256);
    assert_refused(&routes(257), "10.2.1.0", "stack `a` has more than 256 routes");
    let interfaces = "[[vunet.stack.interface]]\n".repeat(16);
    assert_refused_last(
        &stack_a("", "", &interfaces),
        "[[vunet.stack.interface]]",
        "stack `a` has more than 16 interfaces",
    );
}

#[test]
fn routers_need_switches_and_addresses() {
    let router = |keys: &str| {
        stack_a(
            "\"10.0.0.2/24\"",
            "",
            &format!("[[vunet.router]]\nname = \"gw\"\n[[vunet.router.interface]]\n{keys}"),
        )
    };
    assert_refused(
        &router("addresses = [\"10.0.0.1/24\"]\n"),
        "[[vunet.router.interface]]",
        "a router interface needs a switch: add switch = \"NAME\"",
    );
    assert_refused(
        &router("switch = \"sw0\"\n"),
        "[[vunet.router.interface]]",
        "a router interface needs addresses",
    );
    assert_refused(
        &router("switch = \"sw7\"\naddresses = [\"10.0.0.1/24\"]\n"),
        "sw7",
        "no switch named `sw7`",
    );
    let lonely = stack_a("\"10.0.0.2/24\"", "", "[[vunet.router]]\nname = \"gw\"\n");
    assert_refused(&lonely, "name = \"gw\"", "router `gw` has no interface");
    let two = router(
        "switch = \"sw0\"\naddresses = [\"10.0.0.1/24\"]\ncapture = \"gw0.pcap\"\n\
         [[vunet.router.interface]]\nswitch = \"sw1\"\naddresses = [\"10.1.0.1/24\", \"fd01::1/64\"]\n\
         name = \"wan\"\nmac = \"02:00:00:00:00:09\"\n",
    );
    let routers = parse_ok(&two).routers();
    assert_eq!(routers.len(), 1);
    let gw = &routers[0];
    assert_eq!(gw.interfaces[0].name, "eth0");
    assert_eq!(gw.interfaces[0].mac, [0x02, 0x6e, 0x76, 0xff, 0, 0]);
    assert_eq!(gw.interfaces[0].capture, Some(PathBuf::from("conf/gw0.pcap")));
    assert_eq!(gw.interfaces[1].name, "wan");
    assert_eq!(gw.interfaces[1].switch.as_deref(), Some("sw1"));
    assert_eq!(gw.interfaces[1].mac, [0x02, 0, 0, 0, 0, 9]);
    assert_eq!(gw.interfaces[1].addresses, [cidr("10.1.0.1/24"), cidr("fd01::1/64")]);
    // The second router's default MACs.
    let second = format!(
        "{two}[[vunet.router]]\nname = \"gw2\"\n[[vunet.router.interface]]\nswitch = \"sw1\"\n\
         addresses = [\"10.1.0.254/24\"]\n"
    );
    assert_eq!(parse_ok(&second).routers()[1].interfaces[0].mac, [0x02, 0x6e, 0x76, 0xff, 1, 0]);
}

#[test]
fn captures_are_files_of_their_own_relative_to_the_configuration() {
    let with =
        |capture: &str| stack_a("\"10.0.0.2/24\"", &format!("capture = \"{capture}\"\n"), "");
    let spec = |text: &str, origin: &Origin| {
        parse(text, origin).unwrap().vunet.stacks[0].interfaces(0)[0].capture.clone()
    };
    let file = Origin::File("/etc/netvm/modules.toml".into());
    assert_eq!(spec(&with("a.pcap"), &file), Some(PathBuf::from("/etc/netvm/a.pcap")));
    assert_eq!(spec(&with("/tmp/a.pcap"), &file), Some(PathBuf::from("/tmp/a.pcap")));
    let bare = Origin::File("modules.toml".into());
    assert_eq!(spec(&with("a.pcap"), &bare), Some(PathBuf::from("a.pcap")));
    assert_eq!(spec(&with("d/a.pcap"), &Origin::BuiltIn), Some(PathBuf::from("d/a.pcap")));
    assert_refused(&with(""), "capture", "capture needs a file name");
    let unplugged = with("a.pcap").replace("switch = \"sw0\"\n", "");
    assert_refused(&unplugged, "capture", "an interface with no switch has no link to capture");
    let twice = stack_a(
        "\"10.0.0.2/24\"",
        "capture = \"a.pcap\"\n",
        "[[vunet.stack.interface]]\nswitch = \"sw1\"\ncapture = \"./../conf/a.pcap\"\n\
         [[vunet.stack.interface]]\nswitch = \"sw1\"\ncapture = \"a.pcap\"\n",
    );
    assert_refused_last(
        &twice,
        "capture = ",
        "capture file `a.pcap` is already used by stack `a` interface eth0 (line 10); give each link \
         its own file",
    );
}

#[test]
fn a_session_mounts_at_most_4094_stacks() {
    let mut text = String::from("[vunet]\ndefault = \"s0\"\n");
    for i in 0..4094 {
        text.push_str(&format!("[[vunet.stack]]\nname = \"s{i}\"\nkind = \"none\"\n"));
    }
    parse_ok(&text);
    text.push_str("[[vunet.stack]]\nname = \"s4094\"\nkind = \"none\"\n");
    let message = parse_err(&text);
    assert!(message.ends_with("at most 4094 stacks can be mounted in one session"), "{message}");
}

#[test]
fn a_router_takes_static_routes_through_gateways_on_its_subnets() {
    let router = |routes: &str| {
        stack_a(
            "\"10.0.0.2/24\"",
            "",
            &format!(
                "[[vunet.router]]\nname = \"gw\"\n\
                 [[vunet.router.interface]]\nswitch = \"sw0\"\naddresses = [\"10.0.0.1/24\"]\n\
                 [[vunet.router.interface]]\nswitch = \"sw1\"\n\
                 addresses = [\"10.0.2.1/24\", \"fd02::1/64\"]\n{routes}"
            ),
        )
    };
    let routes = "[[vunet.router.route]]\nto = \"default\"\nvia = \"10.0.2.2\"\n\
                  [[vunet.router.route]]\nto = \"::/0\"\nvia = \"fd02::2\"\n\
                  [[vunet.router.route]]\nto = \"10.8.0.0/16\"\nvia = \"10.0.0.9\"\n";
    let vunet = parse_ok(&router(routes));
    let spec = |to: &str, via: &str| RouteSpec { to: cidr(to), via: via.parse().unwrap() };
    assert_eq!(
        vunet.routers()[0].routes,
        [spec("0.0.0.0/0", "10.0.2.2"), spec("::/0", "fd02::2"), spec("10.8.0.0/16", "10.0.0.9")]
    );
    // A router's gateway is checked as a stack's.
    let far = router("[[vunet.router.route]]\nto = \"default\"\nvia = \"192.168.1.1\"\n");
    assert_refused(
        &far,
        "via = ",
        "gateway 192.168.1.1 is on none of router `gw`'s subnets (10.0.0.0/24, 10.0.2.0/24)",
    );
    let own = router("[[vunet.router.route]]\nto = \"default\"\nvia = \"10.0.2.1\"\n");
    assert_refused(&own, "via = ", "gateway 10.0.2.1 is router `gw`'s own address");
    let twice = router(&format!(
        "{routes}[[vunet.router.route]]\nto = \"0.0.0.0/0\"\nvia = \"10.0.0.3\"\n"
    ));
    assert_refused_last(&twice, "to = \"0.0.0.0/0\"", "a route to default (IPv4) is already given");
}

#[test]
fn a_router_takes_at_most_256_routes() {
    let routes: String = (0..257)
        .map(|i| {
            format!(
                "[[vunet.router.route]]\nto = \"10.{}.{}.0/24\"\nvia = \"10.0.0.9\"\n",
                i / 256 + 100,
                i % 256
            )
        })
        .collect();
    let text = stack_a(
        "\"10.0.0.2/24\"",
        "",
        &format!(
            "[[vunet.router]]\nname = \"gw\"\n\
             [[vunet.router.interface]]\nswitch = \"sw0\"\naddresses = [\"10.0.0.1/24\"]\n{routes}"
        ),
    );
    assert_refused(&text, "to = \"10.101.0.0/24\"", "router `gw` has more than 256 routes");
}

#[test]
fn an_uplink_is_checked_as_every_device_on_the_network() {
    let uplink = |keys: &str| stack_a("\"10.0.0.2/24\"", "", &format!("[[vunet.uplink]]\n{keys}"));
    let fine = uplink("name = \"out\"\nswitch = \"sw1\"\naddresses = [\"10.0.2.2/24\"]\n");
    let config = parse(&fine, &Origin::File("m.toml".into())).unwrap().vunet;
    let spec = &config.uplinks()[0];
    assert_eq!((spec.name.as_str(), spec.interface.mac), ("out", [0x02, 0x6e, 0x76, 0xfe, 0, 0]));
    assert_refused(
        &uplink("name = \"a\"\nswitch = \"sw1\"\naddresses = [\"10.0.2.2/24\"]\n"),
        "name = \"a\"\nswitch",
        "`a` is already a stack's name",
    );
    assert_refused(
        &uplink("name = \"out\"\nswitch = \"sw9\"\naddresses = [\"10.0.2.2/24\"]\n"),
        "\"sw9\"",
        "no switch named `sw9`",
    );
    assert_refused_last(
        &uplink("name = \"out\"\nswitch = \"sw0\"\naddresses = [\"10.0.0.2/24\"]\n"),
        "\"10.0.0.2/24\"",
        "10.0.0.2",
    );
    assert_refused(&uplink("name = \"out\"\naddresses = [\"10.0.2.2/24\"]\n"), "\"out\"", "switch");
    assert_refused(&uplink("name = \"out\"\nswitch = \"sw1\"\n"), "\"out\"", "addresses");
    assert_refused(&uplink("name = \"out\"\nswtich = \"sw1\"\n"), "swtich", "unknown field");
    let off_link = fine.replace("name = \"out\"\n", "name = \"out\"\ndns = [\"10.9.2.3\"]\n");
    assert_refused(&off_link, "\"10.9.2.3\"", "must be one address on the uplink's subnets");
    let published = fine.replace("name = \"out\"\n", "name = \"out\"\npublish = [\"8080:a:80\"]\n");
    let config = parse(&published, &Origin::File("m.toml".into())).unwrap().vunet;
    assert_eq!(
        config.published().iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        ["8080:a:80/tcp"]
    );
    let bad = published.replace("8080:a:80", "8080:a");
    assert_refused(&bad, "publish", "is not a forward");
}

#[test]
fn a_stacks_egress_rules_are_read_in_order_and_checked() {
    let text = stack_a("\"10.0.0.2/24\"", "", "");
    let text = text.replace(
        "kind = \"smoltcp\"\n",
        "kind = \"smoltcp\"\negress = [\"allow tcp:443\", \"deny all\"]\n",
    );
    let config = parse(&text, &Origin::File("m.toml".into())).unwrap().vunet;
    let rules: Vec<String> = config.stacks[0].egress().iter().map(|r| r.to_string()).collect();
    assert_eq!(rules, ["allow tcp:443", "deny all"]);
    let bad = text.replace("deny all", "deny tcp:https");
    assert_refused(&bad, "egress", "`https` is not a port");
}
