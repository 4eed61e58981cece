//! The line parser. It never allocates and never panics: the kernel runs it
//! before the heap exists, on bytes that came from outside.

use crate::{Config, LogLevel, Mode, HEAP_MIB_RANGE, MAX_CONFIG_BYTES};
use core::fmt;

/// Why a configuration was refused, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line number, or 0 when the error concerns the whole file.
    pub line: usize,
    pub kind: ConfigErrorKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// The file is larger than [`MAX_CONFIG_BYTES`].
    TooLarge { len: usize },
    /// The file is not UTF-8.
    NotUtf8,
    /// A line that is neither blank, a comment, nor `key = value`.
    MissingEquals,
    /// A key this kernel does not know.
    UnknownKey,
    /// A key given twice.
    DuplicateKey,
    /// A value that does not parse for its key; the str says what is expected.
    BadValue { expected: &'static str },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "config line {}: ", self.line)?;
        } else {
            f.write_str("config: ")?;
        }
        match self.kind {
            ConfigErrorKind::TooLarge { len } => write!(
                f,
                "file is {len} bytes, more than the {MAX_CONFIG_BYTES} accepted"
            ),
            ConfigErrorKind::NotUtf8 => f.write_str("file is not UTF-8 text"),
            ConfigErrorKind::MissingEquals => f.write_str("expected `key = value`"),
            ConfigErrorKind::UnknownKey => {
                f.write_str("unknown key (known: node_id, cluster_id, heap_mib, log_level, mode, unsafe_no_flush)")
            }
            ConfigErrorKind::DuplicateKey => f.write_str("key given more than once"),
            ConfigErrorKind::BadValue { expected } => write!(f, "bad value, expected {expected}"),
        }
    }
}

pub(crate) fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
    let whole = |kind| ConfigError { line: 0, kind };
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(whole(ConfigErrorKind::TooLarge { len: bytes.len() }));
    }
    let text = core::str::from_utf8(bytes).map_err(|_| whole(ConfigErrorKind::NotUtf8))?;

    let mut config = Config::default();
    // One bit per key: set once seen, so duplicates are caught.
    let mut seen = 0u8;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |kind| ConfigError { line, kind };
        let content = match raw.find('#') {
            Some(at) => &raw[..at],
            None => raw,
        }
        .trim();
        if content.is_empty() {
            continue;
        }
        let (key, value) = content
            .split_once('=')
            .ok_or(err(ConfigErrorKind::MissingEquals))?;
        let (key, value) = (key.trim(), value.trim());
        let bit = match key {
            "node_id" => {
                config.node_id = match value.parse::<u8>() {
                    Ok(id) if id >= 1 => id,
                    _ => return Err(err(bad("an integer from 1 to 255"))),
                };
                0
            }
            "cluster_id" => {
                config.cluster_id = value
                    .parse::<u64>()
                    .map_err(|_| err(bad("an unsigned 64-bit integer")))?;
                1
            }
            "heap_mib" => {
                config.heap_mib = match value.parse::<u32>() {
                    Ok(mib) if HEAP_MIB_RANGE.contains(&mib) => mib,
                    _ => return Err(err(bad("an integer from 1 to 1024"))),
                };
                2
            }
            "log_level" => {
                config.log_level = match value {
                    "error" => LogLevel::Error,
                    "warn" => LogLevel::Warn,
                    "info" => LogLevel::Info,
                    "debug" => LogLevel::Debug,
                    "trace" => LogLevel::Trace,
                    _ => return Err(err(bad("error, warn, info, debug or trace"))),
                };
                3
            }
            "mode" => {
                config.mode = match value {
                    "node" => Mode::Node,
                    "selftest" => Mode::SelfTest,
                    "selftest-page-fault" => Mode::SelfTestPageFault,
                    "wal-exercise" => Mode::WalExercise,
                    "wal-bench" => Mode::WalBench,
                    _ => {
                        return Err(err(bad(
                            "node, selftest, selftest-page-fault, wal-exercise or wal-bench",
                        )))
                    }
                };
                4
            }
            "unsafe_no_flush" => {
                config.unsafe_no_flush = match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err(err(bad("true or false"))),
                };
                5
            }
            _ => return Err(err(ConfigErrorKind::UnknownKey)),
        };
        if seen & (1 << bit) != 0 {
            return Err(err(ConfigErrorKind::DuplicateKey));
        }
        seen |= 1 << bit;
    }
    Ok(config)
}

fn bad(expected: &'static str) -> ConfigErrorKind {
    ConfigErrorKind::BadValue { expected }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(parse(b"").unwrap(), Config::default());
        assert_eq!(
            parse(b"\n  # only a comment\n\n").unwrap(),
            Config::default()
        );
    }

    #[test]
    fn every_key_parses() {
        let config = parse(
            b"node_id = 3\ncluster_id=77 # trailing comment\n heap_mib = 32\nlog_level = debug\nmode = selftest\n",
        )
        .unwrap();
        assert_eq!(
            config,
            Config {
                node_id: 3,
                cluster_id: 77,
                heap_mib: 32,
                log_level: LogLevel::Debug,
                mode: Mode::SelfTest,
                unsafe_no_flush: false,
            }
        );
    }

    #[test]
    fn storage_modes_and_unsafe_no_flush_parse() {
        let config = parse(b"mode = wal-exercise\nunsafe_no_flush = true\n").unwrap();
        assert_eq!(config.mode, Mode::WalExercise);
        assert!(config.unsafe_no_flush);
        assert_eq!(parse(b"mode = wal-bench").unwrap().mode, Mode::WalBench);
        assert!(!parse(b"").unwrap().unsafe_no_flush);
        assert_eq!(
            parse(b"unsafe_no_flush = yes").unwrap_err().kind,
            bad("true or false")
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse(b"node_id = 1\n\nheap_mib = 0\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(matches!(e.kind, ConfigErrorKind::BadValue { .. }));
        assert_eq!(
            parse(b"node_id 1").unwrap_err().kind,
            ConfigErrorKind::MissingEquals
        );
        assert_eq!(
            parse(b"nodeid = 1").unwrap_err().kind,
            ConfigErrorKind::UnknownKey
        );
        assert_eq!(
            parse(b"node_id = 1\nnode_id = 2").unwrap_err(),
            ConfigError {
                line: 2,
                kind: ConfigErrorKind::DuplicateKey
            }
        );
        assert_eq!(parse(b"node_id = 0").unwrap_err().line, 1);
        assert_eq!(parse(b"node_id = 256").unwrap_err().line, 1);
        assert_eq!(parse(b"mode = fast").unwrap_err().line, 1);
        assert_eq!(
            parse(&[0xff, 0xfe]).unwrap_err().kind,
            ConfigErrorKind::NotUtf8
        );
        let big = [b'#'; MAX_CONFIG_BYTES + 1];
        assert_eq!(
            parse(&big).unwrap_err().kind,
            ConfigErrorKind::TooLarge {
                len: MAX_CONFIG_BYTES + 1
            }
        );
    }

    #[test]
    fn error_messages_are_readable() {
        extern crate std;
        use std::string::ToString;
        let e = parse(b"heap_mib = lots").unwrap_err();
        assert_eq!(
            e.to_string(),
            "config line 1: bad value, expected an integer from 1 to 1024"
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic sweep; the property is "returns", whatever it returns.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut buf = [0u8; 96];
        let alphabet = b"node_id=cluster_mhapLOG 0123456789#\n\r=\xff";
        for _ in 0..20_000 {
            for b in buf.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = alphabet[(state % alphabet.len() as u64) as usize];
            }
            let len = (state % buf.len() as u64) as usize;
            let _ = parse(&buf[..len]);
        }
    }
}
