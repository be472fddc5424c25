//! `modules.toml`: which modules a session loads and which stacks it mounts.
//!
//! netvm reads the first of these that exists:
//! 1. the file given with `--config FILE`;
//! 2. the file named by the environment variable `NETVM_CONFIG`;
//! 3. `$XDG_CONFIG_HOME/netvm/modules.toml` (default `~/.config/netvm/modules.toml`);
//! 4. `/etc/netvm/modules.toml`;
//! 5. the built-in default, which is the `modules.toml` at the top of the source tree.
//!
//! A file that is not valid is refused with its line and the reason; netvm never
//! falls back to another configuration behind the user's back.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

/// Stack names that exist at launch whatever the configuration says.
pub const ALWAYS_AVAILABLE: [&str; 2] = ["none", "host"];
/// Stack kinds that take `addresses`.
const ADDRESSED_KINDS: [&str; 1] = ["smoltcp"];

/// The built-in configuration.
pub const BUILT_IN: &str = include_str!("../modules.toml");

/// The whole configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The network module.
    pub vunet: VunetConfig,
}

/// The `[vunet]` table: the network module and its stacks.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VunetConfig {
    /// The stack a command runs on when `--stack` is not given.
    pub default: Spanned<String>,
    /// The mounted stacks, as `[[vunet.stack]]` tables.
    #[serde(default, rename = "stack")]
    pub stacks: Vec<StackConfig>,
}

/// One `[[vunet.stack]]`: a mounted stack instance.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackConfig {
    /// What processes and `--stack` call it.
    pub name: Spanned<String>,
    /// Which vunet submodule implements it.
    pub kind: Spanned<String>,
    /// The stack's own addresses besides loopback (`smoltcp` stacks), as
    /// `ADDRESS/PREFIX` or a bare address.
    #[serde(default)]
    pub addresses: Vec<Spanned<String>>,
}

impl StackConfig {
    /// The configured addresses (checked when the file was read).
    pub fn ips(&self) -> Vec<std::net::IpAddr> {
        self.addresses.iter().filter_map(|a| parse_address(a.get_ref()).ok()).collect()
    }
}

/// Parses `10.0.0.2/24`, `fd00::2/64` or a bare address; the prefix is checked but,
/// until interfaces and routes exist, only the address is used.
fn parse_address(text: &str) -> Result<std::net::IpAddr, String> {
    let (ip, prefix) = text.split_once('/').map_or((text, None), |(ip, p)| (ip, Some(p)));
    let ip: std::net::IpAddr =
        ip.parse().map_err(|_| format!("`{text}` is not an IP address (like 10.0.0.2/24)"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if let Some(prefix) = prefix {
        match prefix.parse::<u8>() {
            Ok(p) if p <= max => {}
            _ => return Err(format!("`{text}`: the prefix length must be 0 to {max}")),
        }
    }
    if ip.is_unspecified() || ip.is_multicast() {
        return Err(format!("`{text}` cannot be a host's address"));
    }
    Ok(ip)
}

/// Where the configuration came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A file.
    File(PathBuf),
    /// The built-in default.
    BuiltIn,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::BuiltIn => f.write_str("(built-in modules.toml)"),
        }
    }
}

/// A configuration that cannot be used: where, and why.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the configuration came from.
    pub origin: Origin,
    /// 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// What is wrong, as one sentence.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.origin, self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Finds the configuration to use, following the order in the module docs.
pub fn locate(flag: Option<&Path>) -> Origin {
    if let Some(path) = flag {
        return Origin::File(path.to_owned());
    }
    if let Some(path) = std::env::var_os("NETVM_CONFIG").filter(|p| !p.is_empty()) {
        return Origin::File(path.into());
    }
    let user_dir = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".config")));
    let candidates = user_dir
        .map(|dir| dir.join("netvm/modules.toml"))
        .into_iter()
        .chain(std::iter::once(PathBuf::from("/etc/netvm/modules.toml")));
    for path in candidates {
        if path.is_file() {
            return Origin::File(path);
        }
    }
    Origin::BuiltIn
}

/// Reads and checks the configuration at `origin`; `kinds` are the stack kinds
/// this netvm knows.
pub fn load(origin: &Origin, kinds: &[&str]) -> Result<Config, ConfigError> {
    let text = match origin {
        Origin::BuiltIn => BUILT_IN.to_owned(),
        Origin::File(path) => read_capped(path).map_err(|message| ConfigError {
            origin: origin.clone(),
            line: None,
            message,
        })?,
    };
    parse(&text, origin, kinds)
}

/// The largest configuration netvm reads: far above any real one, and small enough
/// that `--config /dev/zero` is an error rather than an exhausted memory.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

fn read_capped(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let reason = |e: std::io::Error| {
        format!("cannot read: {}", e.to_string().split(" (os error").next().unwrap_or(""))
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text))
        .map_err(reason)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!(
            "larger than {} KiB: not a netvm configuration",
            MAX_CONFIG_BYTES / 1024
        ));
    }
    Ok(text)
}

/// Parses and checks configuration `text`.
pub fn parse(text: &str, origin: &Origin, kinds: &[&str]) -> Result<Config, ConfigError> {
    let error = |span: Option<std::ops::Range<usize>>, message: String| ConfigError {
        origin: origin.clone(),
        line: span.map(|s| line_of(text, s.start)),
        message,
    };
    let config: Config =
        toml::from_str(text).map_err(|e| error(e.span(), e.message().trim().to_owned()))?;

    // Two places are kept for `none` and `host`, which launch can add.
    let room = crate::modules::vunet::smoltcp::MAX_STACKS - ALWAYS_AVAILABLE.len();
    if let Some(extra) = config.vunet.stacks.get(room) {
        let why = format!("at most {room} stacks can be mounted in one session");
        return Err(error(Some(extra.name.span()), why));
    }
    let mut names = HashSet::new();
    for stack in &config.vunet.stacks {
        let name = stack.name.get_ref();
        if !is_valid_name(name) {
            return Err(error(
                Some(stack.name.span()),
                format!("stack name `{name}` must be 1 to 32 letters, digits, `-`, `_` or `.`"),
            ));
        }
        if !names.insert(name.as_str()) {
            return Err(error(Some(stack.name.span()), format!("stack `{name}` is defined twice")));
        }
        for address in &stack.addresses {
            parse_address(address.get_ref()).map_err(|why| error(Some(address.span()), why))?;
        }
        if let Some(first) = stack.addresses.first() {
            if !ADDRESSED_KINDS.contains(&stack.kind.get_ref().as_str()) {
                let why = format!("a `{}` stack has no addresses of its own", stack.kind.get_ref());
                return Err(error(Some(first.span()), why));
            }
        }
        if !kinds.contains(&stack.kind.get_ref().as_str()) {
            return Err(error(
                Some(stack.kind.span()),
                format!(
                    "unknown stack kind `{}` (known kinds: {})",
                    stack.kind.get_ref(),
                    kinds.join(", ")
                ),
            ));
        }
    }
    let default = config.vunet.default.get_ref();
    if !names.contains(default.as_str()) && !ALWAYS_AVAILABLE.contains(&default.as_str()) {
        let mounted = if names.is_empty() {
            "no stack is defined".to_owned()
        } else {
            let mut list: Vec<_> = names.into_iter().collect();
            list.sort();
            format!("defined stacks: {}", list.join(", "))
        };
        return Err(error(
            Some(config.vunet.default.span()),
            format!("default stack `{default}` is not defined ({mounted})"),
        ));
    }
    Ok(config)
}

/// Whether `name` can name a stack (it appears in traces, paths and command lines).
pub fn is_valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: &[&str] = &["none", "host"];

    fn parse_err(text: &str) -> String {
        parse(text, &Origin::File("m.toml".into()), KINDS).unwrap_err().to_string()
    }

    #[test]
    fn the_built_in_configuration_is_valid() {
        let kinds = crate::modules::vunet::kind_names();
        let config = load(&Origin::BuiltIn, &kinds).unwrap();
        assert!(!config.vunet.stacks.is_empty());
    }

    #[test]
    fn a_minimal_file() {
        let text = "[vunet]\ndefault = \"n\"\n[[vunet.stack]]\nname = \"n\"\nkind = \"none\"\n";
        let config = parse(text, &Origin::BuiltIn, KINDS).unwrap();
        assert_eq!(config.vunet.stacks[0].kind.get_ref(), "none");
    }

    #[test]
    fn errors_name_the_line_and_the_reason() {
        let unknown_kind =
            "[vunet]\ndefault = \"a\"\n[[vunet.stack]]\nname = \"a\"\nkind = \"lwip\"\n";
        assert_eq!(
            parse_err(unknown_kind),
            "m.toml:5: unknown stack kind `lwip` (known kinds: none, host)"
        );
        let twice = "[vunet]\ndefault = \"a\"\n[[vunet.stack]]\nname = \"a\"\nkind = \"none\"\n\
                     [[vunet.stack]]\nname = \"a\"\nkind = \"host\"\n";
        assert_eq!(parse_err(twice), "m.toml:7: stack `a` is defined twice");
        let no_default =
            "[vunet]\ndefault = \"x\"\n[[vunet.stack]]\nname = \"a\"\nkind = \"none\"\n";
        assert_eq!(
            parse_err(no_default),
            "m.toml:2: default stack `x` is not defined (defined stacks: a)"
        );
        let bad_name =
            "[vunet]\ndefault = \"a b\"\n[[vunet.stack]]\nname = \"a b\"\nkind = \"none\"\n";
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
    }

    #[test]
    fn always_available_stacks_can_be_the_default_unlisted() {
        let text = "[vunet]\ndefault = \"none\"\n";
        assert!(parse(text, &Origin::BuiltIn, KINDS).is_ok());
    }

    #[test]
    fn only_addressed_kinds_take_addresses() {
        let text = "[vunet]\ndefault = \"a\"\n[[vunet.stack]]\nname = \"a\"\nkind = \"none\"\n\
                    addresses = [\"10.0.0.2/24\"]\n";
        assert_eq!(parse_err(text), "m.toml:6: a `none` stack has no addresses of its own");
        let bad = "[vunet]\ndefault = \"a\"\n[[vunet.stack]]\nname = \"a\"\nkind = \"none\"\n\
                   addresses = [\"10.0.0.2/33\"]\n";
        assert!(parse_err(bad).contains("prefix length must be 0 to 32"), "{}", parse_err(bad));
    }

    #[test]
    fn a_session_mounts_at_most_62_stacks() {
        let mut text = String::from("[vunet]\ndefault = \"s0\"\n");
        for i in 0..63 {
            text.push_str(&format!("[[vunet.stack]]\nname = \"s{i}\"\nkind = \"none\"\n"));
        }
        let message = parse_err(&text);
        assert!(message.ends_with("at most 62 stacks can be mounted in one session"), "{message}");
    }

    #[test]
    fn huge_files_are_refused_without_reading_them_whole() {
        let err = load(&Origin::File("/dev/zero".into()), KINDS).unwrap_err();
        assert!(err.to_string().contains("larger than 1024 KiB"), "{err}");
    }

    #[test]
    fn an_explicit_file_wins() {
        let path = Path::new("/some/where.toml");
        assert_eq!(locate(Some(path)), Origin::File(path.to_owned()));
    }

    #[test]
    fn a_missing_file_is_an_error_not_a_fallback() {
        let origin = Origin::File("/nonexistent/netvm.toml".into());
        let err = load(&origin, KINDS).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/nonexistent/netvm.toml: cannot read: No such file or directory"
        );
    }
}
