//! The line parser. It never allocates and never panics: the kernel runs it
//! before the heap exists, on bytes that came from outside.

use crate::{
    Config, DiskPin, FormatPolicy, Ipv4Cidr, LogLevel, Mode, Peer, DEDUP_WINDOW_MS_RANGE,
    ELECTION_MS_RANGE, HEAP_MIB_RANGE, HEARTBEAT_MS_RANGE, LEDGER_HEAP_MIB_RANGE, MAX_CONFIG_BYTES,
    MAX_PEERS, MAX_SERIAL_BYTES, SNAPSHOT_ENTRIES_RANGE,
};
use continuum_base::{NodeId, MAX_NODE_ID};
use core::fmt;

/// Why a configuration was refused, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line number, or 0 when the error concerns the whole file.
    pub line: usize,
    /// What is wrong with it.
    pub kind: ConfigErrorKind,
}

/// What is wrong with a configuration file or one of its lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// The file is larger than [`MAX_CONFIG_BYTES`].
    TooLarge {
        /// Its length in bytes.
        len: usize,
    },
    /// The file is not UTF-8.
    NotUtf8,
    /// A line that is neither blank, a comment, nor `key = value`.
    MissingEquals,
    /// A key this kernel does not know.
    UnknownKey,
    /// A key given twice.
    DuplicateKey,
    /// More than [`MAX_PEERS`] `peer` lines.
    TooManyPeers,
    /// A `peer` line repeats a node id, or names this node's own id.
    BadPeerId,
    /// A value that does not parse for its key; the str says what is expected.
    BadValue {
        /// What the key accepts, in words.
        expected: &'static str,
    },
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
                f.write_str("unknown key (known: node_id, cluster_id, heap_mib, log_level, mode, unsafe_no_flush, disk, format, ...)")
            }
            ConfigErrorKind::DuplicateKey => f.write_str("key given more than once"),
            ConfigErrorKind::TooManyPeers => write!(f, "more than {MAX_PEERS} peers"),
            ConfigErrorKind::BadPeerId => {
                f.write_str("peer id repeats another peer's or this node's id")
            }
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
    let mut seen = 0u32;
    let mut peer_count = 0;
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
                config.node_id = match value.parse::<NodeId>() {
                    Ok(id) if (1..=MAX_NODE_ID).contains(&id) => id,
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
                    "net-bench" => Mode::NetBench,
                    "net-bench-raw" => Mode::NetBenchRaw,
                    "wal-exercise" => Mode::WalExercise,
                    "wal-bench" => Mode::WalBench,
                    _ => {
                        return Err(err(bad(
                            "node, selftest, selftest-page-fault, net-bench, net-bench-raw, wal-exercise or wal-bench",
                        )))
                    }
                };
                4
            }
            "secret_key" => {
                config.secret_key = Some(hex32(value).ok_or(err(bad("64 hex digits")))?);
                5
            }
            "lan_ip" => {
                config.lan_ip =
                    Some(cidr(value).ok_or(err(bad("an IPv4 address/prefix like 10.7.0.1/24")))?);
                6
            }
            "client_ip" => {
                config.client_ip =
                    cidr(value).ok_or(err(bad("an IPv4 address/prefix like 10.0.2.15/24")))?;
                7
            }
            "client_gateway" => {
                config.client_gateway = ipv4(value).ok_or(err(bad("an IPv4 address")))?;
                8
            }
            "peer_port" => {
                config.peer_port = port(value).ok_or(err(bad("a port from 1 to 65535")))?;
                9
            }
            "status_port" => {
                config.status_port = port(value).ok_or(err(bad("a port from 1 to 65535")))?;
                10
            }
            "client_port" => {
                config.client_port = port(value).ok_or(err(bad("a port from 1 to 65535")))?;
                11
            }
            "peer" => {
                let peer = peer(value).ok_or(err(bad(
                    "`<id 1..=255> <lan ip> <public key: 64 hex digits>`",
                )))?;
                if peer_count == MAX_PEERS {
                    return Err(err(ConfigErrorKind::TooManyPeers));
                }
                if config.peers().any(|p| p.id == peer.id) {
                    return Err(err(ConfigErrorKind::BadPeerId));
                }
                config.peers[peer_count] = Some(peer);
                peer_count += 1;
                continue; // may repeat
            }
            "unsafe_no_flush" => {
                config.unsafe_no_flush = match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err(err(bad("true or false"))),
                };
                12
            }
            "operator_key" => {
                config.operator_key =
                    Some(hex32(value).ok_or(err(bad("an Ed25519 public key: 64 hex digits")))?);
                13
            }
            "reserve_account" => {
                config.reserve_account = match value.parse::<u128>() {
                    Ok(id) if id != 0 => id,
                    _ => return Err(err(bad("a non-zero account id (unsigned 128-bit integer)"))),
                };
                14
            }
            "supply" => {
                config.supply = match value.parse::<u64>() {
                    Ok(supply) if supply != 0 => supply,
                    _ => return Err(err(bad("a non-zero unsigned 64-bit integer"))),
                };
                15
            }
            "election_ms" => {
                config.election_ms = match value.parse::<u32>() {
                    Ok(ms) if ELECTION_MS_RANGE.contains(&ms) => ms,
                    _ => return Err(err(bad("milliseconds from 100 to 60000"))),
                };
                16
            }
            "heartbeat_ms" => {
                config.heartbeat_ms = match value.parse::<u32>() {
                    Ok(ms) if HEARTBEAT_MS_RANGE.contains(&ms) => ms,
                    _ => return Err(err(bad("milliseconds from 10 to 10000"))),
                };
                17
            }
            "disk" => {
                config.disk = disk_pin(value).ok_or(err(bad(
                    "nvme:<serial>, ahci:<port 0..=31> or virtio:<index 0..=255>",
                )))?;
                18
            }
            "format" => {
                config.format = match value {
                    "blank-only" => FormatPolicy::BlankOnly,
                    "this-disk" => FormatPolicy::ThisDisk,
                    _ => return Err(err(bad("blank-only or this-disk"))),
                };
                19
            }
            "ledger_heap_mib" => {
                config.ledger_heap_mib = match value.parse::<u32>() {
                    Ok(mib) if LEDGER_HEAP_MIB_RANGE.contains(&mib) => mib,
                    _ => return Err(err(bad("an integer from 1 to 1024"))),
                };
                20
            }
            "dedup_window_ms" => {
                config.dedup_window_ms = match value.parse::<u64>() {
                    Ok(ms) if DEDUP_WINDOW_MS_RANGE.contains(&ms) => ms,
                    _ => return Err(err(bad("milliseconds from 10000 to 86400000 (one day)"))),
                };
                21
            }
            "snapshot_entries" => {
                config.snapshot_entries = match value.parse::<u64>() {
                    Ok(n) if SNAPSHOT_ENTRIES_RANGE.contains(&n) => n,
                    _ => return Err(err(bad("an entry count from 10 to 10000000"))),
                };
                22
            }
            "join" => {
                config.join = match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err(err(bad("true or false"))),
                };
                23
            }
            _ => return Err(err(ConfigErrorKind::UnknownKey)),
        };
        if seen & (1 << bit) != 0 {
            return Err(err(ConfigErrorKind::DuplicateKey));
        }
        seen |= 1 << bit;
    }
    if config.peers().any(|p| p.id == config.node_id) {
        return Err(whole(ConfigErrorKind::BadPeerId));
    }
    if config.heartbeat_ms.saturating_mul(3) > config.election_ms {
        return Err(whole(bad(
            "heartbeat_ms at most a third of election_ms (a leader must be heard several times per election timeout)",
        )));
    }
    if config.heap_mib < config.ledger_heap_mib {
        return Err(whole(bad(
            "heap_mib at least ledger_heap_mib (the bank's tables, sized for ledger_heap_mib, live in the heap)",
        )));
    }
    if config.format == FormatPolicy::ThisDisk && config.disk == DiskPin::Any {
        return Err(whole(bad(
            "`disk = nvme:<serial> | ahci:<port> | virtio:<n>` with `format = this-disk` (it formats the disk named there, and only that one)",
        )));
    }
    Ok(config)
}

fn disk_pin(text: &str) -> Option<DiskPin> {
    let (kind, unit) = text.split_once(':')?;
    match kind {
        "virtio" => Some(DiskPin::Virtio {
            index: number(unit)?,
        }),
        "ahci" => match number(unit)? {
            port @ 0..=31 => Some(DiskPin::Ahci { port }),
            _ => None,
        },
        "nvme" => {
            let bytes = unit.as_bytes();
            if bytes.is_empty()
                || bytes.len() > MAX_SERIAL_BYTES
                || !bytes.iter().all(|b| b.is_ascii_graphic())
            {
                return None;
            }
            let mut serial = [0u8; MAX_SERIAL_BYTES];
            serial[..bytes.len()].copy_from_slice(bytes);
            Some(DiskPin::Nvme {
                serial,
                len: bytes.len() as u8,
            })
        }
        _ => None,
    }
}

/// A decimal `u8` in one spelling (no sign, no leading zeros).
fn number(text: &str) -> Option<u8> {
    let ok = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text.len() == 1 || !text.starts_with('0'));
    ok.then(|| text.parse().ok()).flatten()
}

fn ipv4(text: &str) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = text.split('.');
    for byte in out.iter_mut() {
        let part = parts.next()?;
        // No leading zeros, signs or blanks: one spelling per address.
        if part.is_empty() || part.len() > 3 || (part.len() > 1 && part.starts_with('0')) {
            return None;
        }
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *byte = part.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}

fn cidr(text: &str) -> Option<Ipv4Cidr> {
    let (address, prefix) = text.split_once('/')?;
    let prefix_len: u8 = prefix.parse().ok()?;
    (1..=32).contains(&prefix_len).then_some(())?;
    Some(Ipv4Cidr {
        address: ipv4(address)?,
        prefix_len,
    })
}

fn port(text: &str) -> Option<u16> {
    text.parse::<u16>().ok().filter(|&p| p != 0)
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = nibble(bytes[2 * i])? << 4 | nibble(bytes[2 * i + 1])?;
    }
    Some(out)
}

fn peer(text: &str) -> Option<Peer> {
    let mut fields = text.split_whitespace();
    let id: NodeId = fields
        .next()?
        .parse()
        .ok()
        .filter(|id| (1..=MAX_NODE_ID).contains(id))?;
    let lan_ip = ipv4(fields.next()?)?;
    let public_key = hex32(fields.next()?)?;
    fields.next().is_none().then_some(Peer {
        id,
        lan_ip,
        public_key,
    })
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
            b"node_id = 3\ncluster_id=77 # trailing comment\n heap_mib = 32\nlog_level = debug\nmode = selftest\nledger_heap_mib = 16\n",
        )
        .unwrap();
        assert_eq!(
            config,
            Config {
                node_id: 3,
                cluster_id: 77,
                heap_mib: 32,
                ledger_heap_mib: 16,
                log_level: LogLevel::Debug,
                mode: Mode::SelfTest,
                ..Config::default()
            }
        );
    }

    #[test]
    fn genesis_and_raft_timing_parse() {
        let text = concat!(
            "operator_key = d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\n",
            "reserve_account = 340282366920938463463374607431768211455\nsupply = 5000\nelection_ms = 300\nheartbeat_ms = 50\nclient_port = 9000\nunsafe_no_flush = true\n"
        );
        let config = parse(text.as_bytes()).unwrap();
        assert_eq!(config.operator_key.unwrap()[0], 0xd7);
        assert_eq!(config.reserve_account, u128::MAX);
        assert_eq!(config.supply, 5000);
        assert_eq!((config.election_ms, config.heartbeat_ms), (300, 50));
        assert_eq!(config.client_port, 9000);
        assert!(config.unsafe_no_flush);
    }

    #[test]
    fn ledger_limits_window_and_snapshots_parse() {
        let config = parse(
            b"heap_mib = 512\nledger_heap_mib = 512\ndedup_window_ms = 15000\nsnapshot_entries = 200\n",
        )
        .unwrap();
        assert_eq!(config.ledger_heap_mib, 512);
        assert_eq!(config.dedup_window_ms, 15000);
        assert_eq!(config.snapshot_entries, 200);
        let defaults = Config::default();
        assert!(defaults.heap_mib >= defaults.ledger_heap_mib);
    }

    #[test]
    fn join_parses_and_defaults_to_false() {
        assert!(!parse(b"").unwrap().join);
        assert!(parse(b"join = true\n").unwrap().join);
        assert!(parse(b"join = yes\n").is_err());
        assert!(parse(b"join = true\njoin = false\n").is_err());
    }

    #[test]
    fn bad_genesis_and_timing_are_refused() {
        for text in [
            "reserve_account = 0",
            "supply = 0",
            "supply = -1",
            "operator_key = 12",
            "election_ms = 99",
            "heartbeat_ms = 5",
            "election_ms = 200\nheartbeat_ms = 100",
            "ledger_heap_mib = 0",
            "ledger_heap_mib = 128",
            "heap_mib = 32",
            "heap_mib = 256\nledger_heap_mib = 1025",
            "dedup_window_ms = 9999",
            "dedup_window_ms = 86400001",
            "snapshot_entries = 9",
            "snapshot_entries = 0",
            "snapshot_entries = 10000001",
        ] {
            assert!(parse(text.as_bytes()).is_err(), "{text} accepted");
        }
    }

    #[test]
    fn disk_pins_and_format_policy_parse() {
        let config = parse(b"disk = nvme:S3EV-NX0K.12\nformat = this-disk\n").unwrap();
        assert_eq!(config.disk.nvme_serial(), Some("S3EV-NX0K.12"));
        assert_eq!(config.format, FormatPolicy::ThisDisk);
        assert_eq!(
            parse(b"disk = ahci:31").unwrap().disk,
            DiskPin::Ahci { port: 31 }
        );
        assert_eq!(
            parse(b"disk = virtio:0").unwrap().disk,
            DiskPin::Virtio { index: 0 }
        );
        let defaults = parse(b"").unwrap();
        assert_eq!(
            (defaults.disk, defaults.format),
            (DiskPin::Any, FormatPolicy::BlankOnly)
        );
        for bad_pin in [
            "disk = ahci:32",
            "disk = ahci:01",
            "disk = virtio:-1",
            "disk = nvme:",
            "disk = nvme:123456789012345678901",
            "disk = sata:0",
            "disk = nvme",
        ] {
            assert!(
                matches!(
                    parse(bad_pin.as_bytes()).unwrap_err().kind,
                    ConfigErrorKind::BadValue { .. }
                ),
                "{bad_pin}"
            );
        }
        assert!(matches!(
            parse(b"format = always").unwrap_err().kind,
            ConfigErrorKind::BadValue { .. }
        ));
        // this-disk without naming the disk would format whatever is first.
        let error = parse(b"format = this-disk\n").unwrap_err();
        assert_eq!(error.line, 0);
        assert!(matches!(error.kind, ConfigErrorKind::BadValue { .. }));
        assert_eq!(
            parse(b"disk = ahci:0\ndisk = ahci:1\n").unwrap_err().kind,
            ConfigErrorKind::DuplicateKey
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
    fn network_keys_parse() {
        let key = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
        let text = std::format!(
            "node_id = 1\nsecret_key = {key}\nlan_ip = 10.7.0.1/24\npeer = 2 10.7.0.2 {key}\npeer = 3 10.7.0.3 {key}\nclient_ip = 192.168.1.9/16\nclient_gateway = 192.168.1.1\npeer_port = 7100\nstatus_port = 80\n"
        );
        extern crate std;
        let config = parse(text.as_bytes()).unwrap();
        assert_eq!(config.secret_key.unwrap()[0], 0x9d);
        assert_eq!(
            config.lan_ip,
            Some(Ipv4Cidr {
                address: [10, 7, 0, 1],
                prefix_len: 24
            })
        );
        let peers: std::vec::Vec<_> = config.peers().map(|p| (p.id, p.lan_ip)).collect();
        assert_eq!(peers, [(2, [10, 7, 0, 2]), (3, [10, 7, 0, 3])]);
        assert_eq!(config.client_ip.address, [192, 168, 1, 9]);
        assert_eq!(config.client_gateway, [192, 168, 1, 1]);
        assert_eq!((config.peer_port, config.status_port), (7100, 80));
    }

    #[test]
    fn network_keys_are_checked() {
        let key = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
        for bad_line in [
            "secret_key = 9d61",
            "secret_key = zz61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "lan_ip = 10.7.0.1",
            "lan_ip = 10.7.0.01/24",
            "lan_ip = 10.7.0.256/24",
            "lan_ip = 10.7.0.1/33",
            "client_gateway = 10.0.2",
            "peer_port = 0",
            "peer = 0 10.7.0.2 9d61",
        ] {
            let e = parse(bad_line.as_bytes()).unwrap_err();
            assert!(
                matches!(e.kind, ConfigErrorKind::BadValue { .. }),
                "{bad_line}: {e:?}"
            );
        }
        extern crate std;
        let dup = std::format!("peer = 2 10.7.0.2 {key}\npeer = 2 10.7.0.3 {key}");
        assert_eq!(
            parse(dup.as_bytes()).unwrap_err().kind,
            ConfigErrorKind::BadPeerId
        );
        let own = std::format!("node_id = 2\npeer = 2 10.7.0.2 {key}");
        assert_eq!(
            parse(own.as_bytes()).unwrap_err().kind,
            ConfigErrorKind::BadPeerId
        );
        let many: std::string::String = (2..=10)
            .map(|id| std::format!("peer = {id} 10.7.0.{id} {key}\n"))
            .collect();
        assert_eq!(
            parse(many.as_bytes()).unwrap_err().kind,
            ConfigErrorKind::TooManyPeers
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
