//! The egress policy: which flows may leave the session through an uplink.
//!
//! A rule is `VERDICT PROTO[:PORT[-PORT]][@PREFIX]`: `allow tcp:443`,
//! `deny udp:53@192.0.2.0/24`, `drop all`, `allow icmp@2001:db8::/32`. `all`
//! matches every protocol (and then takes no port). The verdicts:
//! - `allow`: the flow goes out;
//! - `deny`: it is refused at once, as a Linux firewall's `REJECT` refuses it:
//!   TCP with a reset (`ECONNREFUSED`), UDP and ping with "port unreachable";
//! - `drop`: nothing answers (a connect times out).
//!
//! The session's rules (`netvm run --allow/--deny/--drop`, in command-line
//! order) are tried first, then those of the stack the flow comes from
//! (`egress` in its `[[vunet.stack]]` table); the first that matches decides,
//! and a flow no rule matches is allowed. The session's rules bind every stack,
//! since a process may move to another stack (`netvm stack`). The check is made
//! once per flow, where it starts (a SYN, the first datagram to a destination,
//! the first echo), before anything is sent to the host's network.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use crate::modules::vunet::cidr::Cidr;

/// What becomes of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It goes out.
    Allow,
    /// It is refused at once, as `REJECT` refuses it.
    Deny,
    /// Nothing answers it.
    Drop,
}

impl Verdict {
    /// `allow`, `deny` or `drop`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Drop => "drop",
        }
    }
}

/// The protocols a rule can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP echo (ping), of either version.
    Icmp,
}

impl Protocol {
    /// `tcp`, `udp` or `icmp`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Icmp => "icmp",
        }
    }
}

/// One rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// What becomes of the flows it matches.
    pub verdict: Verdict,
    /// `None`: every protocol.
    protocol: Option<Protocol>,
    /// The destination ports, inclusive; `None`: every port.
    ports: Option<(u16, u16)>,
    /// The destination prefix; `None`: everywhere.
    prefix: Option<Cidr>,
}

impl Rule {
    /// A rule with `verdict` for what `spec` (`PROTO[:PORTS][@PREFIX]`) names.
    pub fn new(verdict: Verdict, spec: &str) -> Result<Self, String> {
        let (what, prefix) = match spec.split_once('@') {
            Some((what, prefix)) => (what, Some(Cidr::parse(prefix)?.network())),
            None => (spec, None),
        };
        let (protocol, ports) = match what.split_once(':') {
            Some((protocol, ports)) => (protocol, Some(parse_ports(ports)?)),
            None => (what, None),
        };
        let protocol = match protocol {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            "icmp" | "ping" => Some(Protocol::Icmp),
            "all" | "" if ports.is_none() => None,
            "all" | "" => return Err(format!("`{spec}`: ports need a protocol, tcp or udp")),
            other => {
                return Err(format!(
                    "`{spec}`: unknown protocol `{other}` (give tcp, udp, icmp or all)"
                ));
            }
        };
        if protocol == Some(Protocol::Icmp) && ports.is_some() {
            return Err(format!("`{spec}`: icmp has no ports"));
        }
        Ok(Self { verdict, protocol, ports, prefix })
    }

    /// Whether the rule matches a flow of `protocol` to `destination` (a ping's
    /// port is 0).
    fn matches(&self, protocol: Protocol, destination: SocketAddr) -> bool {
        self.protocol.is_none_or(|p| p == protocol)
            && self.ports.is_none_or(|(low, high)| (low..=high).contains(&destination.port()))
            && self.prefix.is_none_or(|prefix| prefix.contains(destination.ip()))
    }
}

impl FromStr for Rule {
    type Err = String;

    /// `VERDICT SPEC`, as modules.toml writes a rule.
    fn from_str(text: &str) -> Result<Self, String> {
        let (verdict, spec) = text.trim().split_once(char::is_whitespace).unwrap_or((text, ""));
        let verdict = match verdict {
            "allow" => Verdict::Allow,
            "deny" => Verdict::Deny,
            "drop" => Verdict::Drop,
            _ => return Err(format!("`{text}`: a rule starts with allow, deny or drop")),
        };
        Self::new(verdict, spec.trim())
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verdict.name(), self.protocol.map_or("all", Protocol::name))?;
        match self.ports {
            Some((low, high)) if low == high => write!(f, ":{low}")?,
            Some((low, high)) => write!(f, ":{low}-{high}")?,
            None => {}
        }
        match self.prefix {
            Some(prefix) => write!(f, "@{}/{}", prefix.ip, prefix.prefix),
            None => Ok(()),
        }
    }
}

/// `PORT` or `LOW-HIGH`.
fn parse_ports(text: &str) -> Result<(u16, u16), String> {
    let port = |p: &str| {
        p.parse::<u16>().map_err(|_| format!("`{text}` is not a port or a range of ports"))
    };
    let (low, high) = match text.split_once('-') {
        Some((low, high)) => (port(low)?, port(high)?),
        None => (port(text)?, port(text)?),
    };
    if low > high {
        return Err(format!("`{text}`: the range is upside down"));
    }
    Ok((low, high))
}

/// The rules of a session and of its stacks.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// The session's own rules, tried first.
    pub session: Vec<Rule>,
    /// Each stack's name and rules, by the stack's addresses.
    pub stacks: Vec<(String, Vec<IpAddr>, Vec<Rule>)>,
}

/// What the policy says of one flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// What becomes of the flow.
    pub verdict: Verdict,
    /// The rule that decided, if one did.
    pub rule: Option<String>,
    /// The stack the flow comes from, if its source address is a stack's.
    pub stack: Option<String>,
}

impl Policy {
    /// The name of the stack `source` is an address of, if any.
    pub fn stack_of(&self, source: IpAddr) -> Option<String> {
        let stack = self.stacks.iter().find(|(_, addresses, _)| addresses.contains(&source));
        stack.map(|(name, _, _)| name.clone())
    }

    /// The decision on a flow of `protocol` from `source` to `destination`.
    pub fn decide(&self, protocol: Protocol, source: IpAddr, destination: SocketAddr) -> Decision {
        let stack = self.stacks.iter().find(|(_, addresses, _)| addresses.contains(&source));
        let stack_rules = stack.map_or(&[][..], |(_, _, rules)| &rules[..]);
        let rule =
            self.session.iter().chain(stack_rules).find(|r| r.matches(protocol, destination));
        Decision {
            verdict: rule.map_or(Verdict::Allow, |r| r.verdict),
            rule: rule.map(Rule::to_string),
            stack: stack.map(|(name, _, _)| name.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> Rule {
        text.parse().unwrap()
    }

    #[test]
    fn rules_read_and_print_back() {
        for text in
            ["allow tcp:443", "deny udp:53-54@192.0.2.0/24", "drop all", "allow icmp@2001:db8::/32"]
        {
            assert_eq!(rule(text).to_string(), text);
        }
        assert_eq!(rule("allow ping").to_string(), "allow icmp");
        assert_eq!(rule("deny all@10.1.2.3/16").to_string(), "deny all@10.1.0.0/16");
        for bad in [
            "permit tcp",
            "allow tcp:http",
            "allow all:80",
            "allow icmp:8",
            "allow tcp:9-1",
            "deny sctp",
            "allow tcp@10.0.0.0/33",
        ] {
            assert!(bad.parse::<Rule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_first_matching_rule_decides_session_first_then_the_stack() {
        let lwip0: IpAddr = "10.0.0.2".parse().unwrap();
        let policy = Policy {
            session: vec![rule("allow tcp:443"), rule("deny udp:53")],
            stacks: vec![("lwip0".into(), vec![lwip0], vec![rule("drop tcp"), rule("allow all")])],
        };
        let to = |text: &str| text.parse::<SocketAddr>().unwrap();
        let decide = |protocol, source: IpAddr, destination| {
            let decision = policy.decide(protocol, source, to(destination));
            (decision.verdict, decision.rule, decision.stack)
        };
        let https = decide(Protocol::Tcp, lwip0, "192.0.2.2:443");
        assert_eq!(https, (Verdict::Allow, Some("allow tcp:443".into()), Some("lwip0".into())));
        assert_eq!(decide(Protocol::Tcp, lwip0, "192.0.2.2:80").0, Verdict::Drop);
        assert_eq!(decide(Protocol::Udp, lwip0, "192.0.2.2:53").0, Verdict::Deny);
        assert_eq!(decide(Protocol::Icmp, lwip0, "192.0.2.2:0").0, Verdict::Allow);
        let stranger = decide(Protocol::Tcp, "10.0.0.9".parse().unwrap(), "192.0.2.2:80");
        assert_eq!(stranger, (Verdict::Allow, None, None));
    }
}
