//! `modules.toml`: where it is, reading it, and its faults as one-line errors.
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
//!
//! What the file may say belongs to the modules (`crate::modules::Config` reads
//! it; the `[vunet]` table hands each `[[vunet.stack]]` table to the kind of stack
//! it names). This module knows none of it: it finds the file, bounds its size,
//! parses it into [`Table`]s that keep every value's place in the text, hands the
//! top one to the reader it is given, and turns a [`Fault`] (a place and a reason)
//! into a [`ConfigError`] with a line number.
//! `man -l man/modules.toml.5` documents every key.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The built-in configuration.
pub const BUILT_IN: &str = include_str!("../../modules.toml");

/// Where the configuration came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A file.
    File(PathBuf),
    /// The built-in default.
    BuiltIn,
}

impl Origin {
    /// The directory relative paths in the file are relative to: the file's own, or
    /// the current directory (the empty path) for the built-in configuration.
    pub fn base_dir(&self) -> PathBuf {
        match self {
            Self::File(path) => path.parent().map(Path::to_owned).unwrap_or_default(),
            Self::BuiltIn => PathBuf::new(),
        }
    }
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

/// What is wrong with a configuration, and where in its text (a byte range).
pub type Fault = (Range<usize>, String);

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

/// Reads the configuration at `origin` with `read`, which checks what it reads.
pub fn load<T>(
    origin: &Origin,
    read: impl FnOnce(&Table) -> Result<T, Fault>,
) -> Result<T, ConfigError> {
    let text = match origin {
        Origin::BuiltIn => BUILT_IN.to_owned(),
        Origin::File(path) => read_capped(path).map_err(|message| ConfigError {
            origin: origin.clone(),
            line: None,
            message,
        })?,
    };
    parse(&text, origin, read)
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

/// Parses configuration `text`, which came from `origin`, and reads its top table
/// with `read`.
pub fn parse<T>(
    text: &str,
    origin: &Origin,
    read: impl FnOnce(&Table) -> Result<T, Fault>,
) -> Result<T, ConfigError> {
    let error = |(span, message): Fault| ConfigError {
        origin: origin.clone(),
        line: Some(line_of(text, span.start)),
        message,
    };
    let root = DeTable::parse(text).map_err(|e| error(toml_fault(&e)))?;
    let root = Table { text, table: root, base_dir: origin.base_dir() };
    read(&root).map_err(error)
}

/// A toml error as a fault (at the start of the text if it has no place).
fn toml_fault(e: &toml::de::Error) -> Fault {
    (e.span().unwrap_or(0..0), e.message().trim().to_owned())
}

/// Whether `name` can name a stack, switch or router (it appears in traces, paths
/// and command lines).
pub fn is_valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// The 1-based line of byte `offset` of `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

/// One table of the file, with the place of every key and value in its text: what a
/// module (or a stack kind) reads its own keys from.
#[derive(Clone)]
pub struct Table<'a> {
    text: &'a str,
    table: Spanned<DeTable<'a>>,
    base_dir: PathBuf,
}

impl<'a> Table<'a> {
    /// Deserializes the table as a `T` (whose `Spanned` fields keep their places);
    /// a fault says where the table is wrong.
    pub fn read<T: DeserializeOwned>(&self) -> Result<T, Fault> {
        T::deserialize(toml::de::Deserializer::from(self.table.clone())).map_err(|e| toml_fault(&e))
    }

    /// The sub-table under `key`, if there is one.
    pub fn table(&self, key: &str) -> Option<Table<'a>> {
        let value = self.table.get_ref().get(key)?;
        self.sub(value)
    }

    /// The tables of the array of tables under `key` (`[[key]]`), in file order;
    /// values that are not tables are left out (reading says why).
    pub fn tables(&self, key: &str) -> Vec<Table<'a>> {
        match self.table.get_ref().get(key).map(Spanned::get_ref) {
            Some(DeValue::Array(array)) => array.iter().filter_map(|v| self.sub(v)).collect(),
            _ => Vec::new(),
        }
    }

    fn sub(&self, value: &Spanned<DeValue<'a>>) -> Option<Table<'a>> {
        let DeValue::Table(table) = value.get_ref() else { return None };
        let table = Spanned::new(value.span(), table.clone());
        Some(Table { text: self.text, table, base_dir: self.base_dir.clone() })
    }

    /// The table's keys, each with its place, in file order.
    pub fn keys(&self) -> Vec<(&str, Range<usize>)> {
        let mut keys: Vec<_> = self
            .table
            .get_ref()
            .iter()
            .map(|(key, _)| (key.get_ref().as_ref(), key.span()))
            .collect();
        keys.sort_by_key(|(_, span)| span.start);
        keys
    }

    /// Where the value under `key` is, and, if it is an array, its first element
    /// (for a table in an array of tables: the value of `field` in it, if given).
    pub fn first_place(&self, key: &str, field: Option<&str>) -> Option<Range<usize>> {
        let value = self.table.get_ref().get(key)?;
        let first = match value.get_ref() {
            DeValue::Array(array) => array.iter().next().unwrap_or(value),
            _ => value,
        };
        let inner = field.and_then(|f| match first.get_ref() {
            DeValue::Table(t) => t.get(f).map(Spanned::span),
            _ => None,
        });
        Some(inner.unwrap_or_else(|| first.span()))
    }

    /// Whether the value under `key` is an empty array (`addresses = []`).
    pub fn is_empty_array(&self, key: &str) -> bool {
        let value = self.table.get_ref().get(key).map(Spanned::get_ref);
        matches!(value, Some(DeValue::Array(array)) if array.iter().next().is_none())
    }

    /// Where the table itself is.
    pub fn span(&self) -> Range<usize> {
        self.table.span()
    }

    /// The 1-based line of byte `offset` of the file.
    pub fn line(&self, offset: usize) -> usize {
        line_of(self.text, offset)
    }

    /// The directory relative paths in the file are relative to.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a file whose top table holds `[vunet]` and nothing else.
    fn vunet_only(table: &Table) -> Result<(), Fault> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Top {
            #[allow(dead_code)]
            vunet: serde::de::IgnoredAny,
        }
        table.read::<Top>().map(drop)
    }

    #[test]
    fn huge_files_are_refused_without_reading_them_whole() {
        let err = load(&Origin::File("/dev/zero".into()), vunet_only).unwrap_err();
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
        let err = load(&origin, vunet_only).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/nonexistent/netvm.toml: cannot read: No such file or directory"
        );
    }

    #[test]
    fn unknown_top_level_tables_and_syntax_are_refused_with_their_line() {
        let err = parse("[vunet]\n[vnet]\n", &Origin::BuiltIn, vunet_only).unwrap_err();
        assert_eq!(err.line, Some(2), "{err}");
        assert!(err.message.starts_with("unknown field `vnet`"), "{err}");
        let err = parse("[vunet\n", &Origin::BuiltIn, vunet_only).unwrap_err();
        assert_eq!(err.line, Some(1), "{err}");
    }
}
