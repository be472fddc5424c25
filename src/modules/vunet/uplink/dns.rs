//! DNS through the uplink, whatever nameserver the host's `/etc/resolv.conf`
//! names.
//!
//! A nameserver on the host's network is reached as any destination is. One on
//! the host's own loopback (a stub resolver such as systemd-resolved's
//! 127.0.0.53) is not: in a stack, 127.0.0.53 is the stack's own loopback. So
//! an uplink has DNS addresses of its own (`dns` in `[[vunet.uplink]]`, 10.0.2.3
//! in the built-in network): what is sent to port 53 there goes to the host's
//! nameserver of that family, loopback or not, from the host's side. And the
//! session's programs read a `resolv.conf` in which each loopback nameserver
//! is replaced by those addresses: a file of the supervisor's, mounted over
//! `/etc/resolv.conf` in the session's mount namespace only (the host's file is
//! untouched).

use std::net::IpAddr;

/// The port DNS is relayed on.
pub const PORT: u16 = 53;
/// Where the host's resolver configuration is.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The nameservers `resolv.conf` names, in order.
pub fn nameservers(resolv_conf: &str) -> Vec<IpAddr> {
    resolv_conf
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            // A scoped address (fe80::1%eth0) keeps its address only.
            words.next()?.split('%').next()?.parse().ok()
        })
        .collect()
}

/// Each of the uplink's DNS addresses `dns` with the host's nameserver it leads
/// to: the first the host's `resolv.conf` names of its family, else for an
/// IPv6 address the first IPv4 one (as an IPv4-mapped address, which an IPv6
/// socket reaches). An address with none is left out (nothing answers there).
pub fn relays(dns: &[IpAddr]) -> Vec<(IpAddr, IpAddr)> {
    let host = std::fs::read_to_string(RESOLV_CONF).unwrap_or_default();
    relays_to(dns, &nameservers(&host))
}

/// [`relays`] to the nameservers `servers`.
fn relays_to(dns: &[IpAddr], servers: &[IpAddr]) -> Vec<(IpAddr, IpAddr)> {
    dns.iter()
        .filter_map(|&relay| {
            let same = servers.iter().find(|s| s.is_ipv4() == relay.is_ipv4());
            let server = match (same, relay) {
                (Some(server), _) => *server,
                (None, IpAddr::V6(_)) => match servers.first()? {
                    IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
                    IpAddr::V6(_) => return None,
                },
                (None, IpAddr::V4(_)) => return None,
            };
            Some((relay, server))
        })
        .collect()
}

/// `resolv_conf` with each loopback nameserver replaced by the uplink's DNS
/// addresses `relays`; `None` if it names no loopback nameserver (or there
/// is no relay to put instead).
pub fn rewrite(resolv_conf: &str, relays: &[IpAddr]) -> Option<String> {
    if relays.is_empty() || !nameservers(resolv_conf).iter().any(IpAddr::is_loopback) {
        return None;
    }
    let mut rewritten = String::new();
    let mut relayed = false;
    for line in resolv_conf.lines() {
        let loopback = nameservers(line).first().is_some_and(IpAddr::is_loopback);
        match loopback {
            true if !relayed => {
                relayed = true;
                rewritten
                    .push_str("# netvm: the host's loopback nameservers, through the uplink\n");
                for relay in relays {
                    rewritten.push_str(&format!("nameserver {relay}\n"));
                }
            }
            true => {}
            false => {
                rewritten.push_str(line);
                rewritten.push('\n');
            }
        }
    }
    Some(rewritten)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_nameservers_give_way_to_the_uplinks() {
        let stub = "# generated\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch example\n";
        let relays: Vec<IpAddr> =
            vec!["10.0.2.3".parse().unwrap(), "fd00:0:0:2::3".parse().unwrap()];
        let rewritten = rewrite(stub, &relays).unwrap();
        assert_eq!(nameservers(&rewritten), relays);
        assert!(rewritten.contains("options edns0 trust-ad\nsearch example\n"), "{rewritten}");
        let remote = "nameserver 192.0.2.2\nnameserver fe80::1%eth0\n";
        assert_eq!(rewrite(remote, &relays), None);
        assert_eq!(
            nameservers(remote),
            ["192.0.2.2".parse::<IpAddr>().unwrap(), "fe80::1".parse().unwrap()]
        );
        let stub_only = relays_to(&relays, &nameservers(stub));
        let mapped: IpAddr = "::ffff:127.0.0.53".parse().unwrap();
        assert_eq!(stub_only, [(relays[0], "127.0.0.53".parse().unwrap()), (relays[1], mapped)]);
        let v6_only = relays_to(&relays, &["::1".parse().unwrap()]);
        assert_eq!(v6_only, [(relays[1], "::1".parse().unwrap())]);
        let mixed = "nameserver 127.0.0.53\nnameserver ::1\nnameserver 192.0.2.2\n";
        let servers = nameservers(&rewrite(mixed, &relays).unwrap());
        assert_eq!(servers, [relays[0], relays[1], "192.0.2.2".parse().unwrap()]);
    }
}
