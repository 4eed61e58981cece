//! The command line (clap derive). Parsing only: every value that clap can
//! check (ranges, numbers, group syntax) is checked here, so a command
//! starts with arguments that make sense.

use clap::{Args, Parser, Subcommand, ValueEnum};
use continuum_harness::{NodeId, MAX_NODE_ID};
use std::path::PathBuf;

/// Run a local Continuum cluster in QEMU, move money on it, and break it on purpose.
#[derive(Parser, Debug)]
#[command(name = "continuum", version, propagate_version = true)]
pub struct Cli {
    /// The cluster directory (cluster.json, node configs, keys/, run/).
    #[arg(
        long,
        global = true,
        env = "CONTINUUM_DIR",
        default_value = "continuum-cluster"
    )]
    pub dir: PathBuf,
    /// Print results as JSON (one object) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// How long a request to the cluster may take, retries included (seconds).
    #[arg(long, global = true, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create, start, stop and inspect the local cluster.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Accounts of the ledger.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Move money: signed with the debited account's key from <dir>/keys.
    Transfer(TransferArgs),
    /// The balance of an account (a linearizable read).
    Balance {
        /// Account id.
        #[arg(value_parser = parse_u128)]
        account: u128,
    },
    /// Whether a transfer applied or was rejected, and at which log index;
    /// with --expires-at, also whether it expired from the dedup window.
    Outcome {
        /// Transfer id (as printed by `transfer`).
        #[arg(value_parser = parse_u128)]
        transfer_id: u128,
        /// The transfer's expires_at (as printed by `transfer --json`): if
        /// the cluster has no decision and its log time is past it, the
        /// transfer expired from the dedup window and can never apply.
        #[arg(long)]
        expires_at: Option<u64>,
    },
    /// A live table of the nodes (role, term, leader, commit/applied, chain head), every second until Ctrl-C.
    Watch {
        /// Stop after this many refreshes (default: until Ctrl-C).
        #[arg(long)]
        count: Option<u64>,
    },
    /// Load the running cluster: open and fund accounts, run transfers in a
    /// closed loop, report transfers/s, commit latency, CPU per transfer and
    /// the floor measured in the same run.
    Bench {
        /// Concurrent clients, each with one transfer in flight (1-64).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
        clients: u64,
        /// Transfers to commit (1-50000).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=50_000))]
        transfers: u64,
        /// Accounts to open and move money between (2-1024; default 2 per client).
        #[arg(long, value_parser = clap::value_parser!(u64).range(2..=1024))]
        accounts: Option<u64>,
    },
    /// Inject faults: partitions, loss, delay, duplication, corruption, replay, crashes, pauses.
    #[command(subcommand)]
    Nemesis(NemesisCommand),
    /// A continuous seeded run of every fault (partitions, kill, pause,
    /// loss, delay, duplication, corruption, replay, clock skew, disk
    /// faults) with a client load; per fault its recovery time and whether
    /// the invariants held, then a summary.
    Chaos {
        /// How long to keep injecting faults (seconds, 1-86400).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        duration: u64,
        /// Seed of the schedule (default: random, printed).
        #[arg(long)]
        seed: Option<u64>,
        /// Load clients, each with one transfer in flight (1-16).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=16))]
        clients: u64,
        /// Which faults: all, or classic (partitions, kill, pause, loss).
        #[arg(long, default_value = "all")]
        faults: FaultSet,
    },
    /// A live web page of the cluster on 127.0.0.1: nodes, plots, timeline.
    Dashboard {
        /// TCP port on 127.0.0.1 (0: any free port, printed).
        #[arg(long, default_value_t = 7070)]
        port: u16,
    },
    /// The causal history of one transfer, gathered from every node's
    /// trace ring, with the causality check (exit 1 on a violation).
    Trace {
        /// Transfer id (as printed by `transfer`).
        #[arg(value_parser = parse_u128)]
        transfer_id: u128,
        /// Also draw it as a Lamport diagram (SVG) into this file.
        #[arg(long)]
        svg: Option<std::path::PathBuf>,
    },
}

/// The fault kinds `chaos` draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FaultSet {
    All,
    Classic,
}

/// `cluster init`: what the new cluster is made of.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(NodeId).range(1..=9))]
    pub nodes: NodeId,
    /// INSECURE, for tests only: derive every key and the cluster id
    /// from SEED (reproducible clusters). Anyone can recover the seed
    /// from the public cluster id and then holds every key; `cluster up`
    /// warns on every start. Default: random keys.
    #[arg(long = "insecure-test-keys", value_name = "SEED")]
    pub insecure_test_keys: Option<u64>,
    /// Money in the reserve account at genesis.
    #[arg(long, default_value_t = continuum_harness::plan::DEFAULT_SUPPLY, value_parser = clap::value_parser!(u64).range(1..))]
    pub supply: u64,
    /// Raft election timeout base (ms); 1000 suits TCG emulation.
    #[arg(long, default_value_t = continuum_harness::plan::DEFAULT_ELECTION_MS, value_parser = clap::value_parser!(u32).range(100..=60_000))]
    pub election_ms: u32,
    /// Raft heartbeat interval (ms), at most a third of the election timeout.
    #[arg(long, default_value_t = continuum_harness::plan::DEFAULT_HEARTBEAT_MS, value_parser = clap::value_parser!(u32).range(10..=10_000))]
    pub heartbeat_ms: u32,
    /// Node heap (MiB); the bank's table limits (accounts, dedup window
    /// ids, sessions) are sized for it on every node. 512 allows 1.3 M
    /// accounts; the VM gets 192 MiB more than this.
    #[arg(long, default_value_t = continuum_harness::plan::DEFAULT_HEAP_MIB, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub heap_mib: u32,
    /// Longest validity (ms of log time) a signed transfer may ask for;
    /// its id is remembered that long (genesis).
    #[arg(long, default_value_t = continuum_harness::plan::DEFAULT_DEDUP_WINDOW_MS, value_parser = clap::value_parser!(u64).range(10_000..=86_400_000))]
    pub dedup_window_ms: u64,
    /// Also make K spare nodes (ids after the --nodes ones, at most 9 in
    /// all) for `cluster add-node`: keys and configs (`join = true`) are
    /// written now, the fabric has their ports from `cluster up` on, but
    /// they are not booted and not in the boot configuration.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(NodeId).range(0..=8))]
    pub spare: NodeId,
    /// Applied entries between two ledger snapshots; each one releases the
    /// log before it and its disk space.
    #[arg(long, default_value_t = continuum_harness::plan::DEFAULT_SNAPSHOT_ENTRIES, value_parser = clap::value_parser!(u64).range(10..=10_000_000))]
    pub snapshot_entries: u64,
}

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Generate a new cluster: ids, node keys, operator key, genesis.
    Init(InitArgs),
    /// Start the fabric and one QEMU per node (in the background unless --foreground).
    Up {
        /// Boot nodes 1..=N only (default: every member).
        #[arg(long, value_parser = clap::value_parser!(NodeId).range(1..=9))]
        nodes: Option<NodeId>,
        /// Stay in the foreground; Ctrl-C stops everything.
        #[arg(long)]
        foreground: bool,
        /// Directory with continuum-bios.img (built by qemu/build.sh).
        #[arg(long, env = "CONTINUUM_IMAGES")]
        images: Option<PathBuf>,
        /// Size of each node's disk image, created on first start (MiB, sparse).
        #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(16..=65_536))]
        disk_mib: u64,
        /// Controller each node's disk sits behind: virtio, nvme or ahci. A
        /// member's `"disk"` in cluster.json overrides it for that node.
        #[arg(long, default_value = "virtio")]
        disk: continuum_harness::DiskKind,
    },
    /// Stop the cluster started by `up` (disks are kept).
    Down,
    /// Every node: process, role, term, leader, commit/applied, chain head.
    Status,
    /// Wait until the cluster serves a linearizable read (a leader with a quorum).
    Wait,
    /// Hand Raft leadership to voter N (signed with the operator key) and
    /// wait until it leads.
    TransferLeader {
        /// The voter that should lead.
        #[arg(value_parser = clap::value_parser!(NodeId).range(1..=255))]
        node: NodeId,
    },
    /// Boot the next spare node (`cluster init --spare K`), add it as a
    /// learner (signed with the operator key) and wait until the leader
    /// has promoted it to voter; prints the time it took.
    AddNode,
    /// Remove node N from the configuration (transferring leadership first
    /// if it leads), record it removed in cluster.json and stop its QEMU.
    RemoveNode {
        /// The node to remove.
        #[arg(value_parser = clap::value_parser!(NodeId).range(1..=255))]
        node: NodeId,
        /// Leave the removed node's QEMU running (to look at its console
        /// and /status); `cluster down` stops it with the rest.
        #[arg(long)]
        keep_running: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Open an account (signed by the operator key); its owner key is
    /// generated into <dir>/keys/account-<id>.key.
    Create {
        /// Account id.
        #[arg(long, value_parser = parse_u128)]
        id: u128,
    },
}

#[derive(Args, Debug)]
pub struct TransferArgs {
    /// Debited account (its key must be in <dir>/keys).
    #[arg(long, value_parser = parse_u128)]
    pub from: u128,
    /// Credited account.
    #[arg(long, value_parser = parse_u128)]
    pub to: u128,
    /// Amount to move.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub amount: u64,
    /// Transfer id (default: random). Re-running with the same id and
    /// fields never moves the money twice.
    #[arg(long, value_parser = parse_u128)]
    pub id: Option<u128>,
    /// When the transfer stops being valid, in cluster HLC milliseconds
    /// since the Unix epoch (default: now + 9.5 min, inside the cluster's
    /// 10-minute maximum window). Applied later it is refused `expired`,
    /// and after it the cluster forgets the id. To re-run a transfer whose
    /// outcome is unknown, pass the same --id and --expires-at (printed).
    #[arg(long)]
    pub expires_at: Option<u64>,
}

#[derive(Subcommand, Debug)]
pub enum NemesisCommand {
    /// Replace the partitions: nodes talk only within a group.
    Partition {
        /// Groups of node ids, e.g. `1,2/3` (groups may overlap: `1,2,3/3,4,5`).
        #[arg(long, value_parser = parse_groups, conflicts_with = "shape", required_unless_present = "shape")]
        groups: Option<Groups>,
        /// A named shape over all nodes.
        #[arg(long)]
        shape: Option<Shape>,
    },
    /// Cut every link of one node.
    Isolate {
        #[arg(value_parser = clap::value_parser!(NodeId).range(1..=MAX_NODE_ID))]
        node: NodeId,
    },
    /// Remove all partitions and every link fault (loss, delay, duplication, corruption, replay).
    Heal,
    /// kill -9 a node's QEMU (a crash).
    Kill {
        #[arg(value_parser = clap::value_parser!(NodeId).range(1..=MAX_NODE_ID))]
        node: NodeId,
    },
    /// kill -9 a node (if running), then boot it again on the same disk.
    Restart {
        #[arg(value_parser = clap::value_parser!(NodeId).range(1..=MAX_NODE_ID))]
        node: NodeId,
    },
    /// Freeze a node's CPUs (QMP stop).
    Pause {
        #[arg(value_parser = clap::value_parser!(NodeId).range(1..=MAX_NODE_ID))]
        node: NodeId,
    },
    /// Unfreeze a paused node (QMP cont).
    Resume {
        #[arg(value_parser = clap::value_parser!(NodeId).range(1..=MAX_NODE_ID))]
        node: NodeId,
    },
    /// Step a running node's wall clock by D ms (either way) off its RTC,
    /// through its serial shell (`clock step D`); the steps add up.
    Skew {
        /// The node.
        #[arg(long, value_parser = clap::value_parser!(NodeId).range(1..=MAX_NODE_ID))]
        node: NodeId,
        /// Milliseconds to step by (negative: back), at most a day.
        #[arg(long, allow_hyphen_values = true, value_parser = clap::value_parser!(i64).range(-86_400_000..=86_400_000))]
        ms: i64,
    },
    /// Delay frames on every link, or on one directed link (`--ms 0
    /// --jitter 0` clears it; other faults of the link stay).
    Delay {
        /// Fixed delay added to every frame (0-60000 ms).
        #[arg(long, value_parser = clap::value_parser!(u64).range(0..=60_000))]
        ms: u64,
        /// Extra random delay, uniform in 0..=J ms per frame (seeded).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=60_000))]
        jitter: u64,
        /// Only frames from this node...
        #[arg(long, requires = "to", value_parser = clap::value_parser!(NodeId).range(1..=MAX_NODE_ID))]
        from: Option<NodeId>,
        /// ...to this node.
        #[arg(long, requires = "from", value_parser = clap::value_parser!(NodeId).range(1..=MAX_NODE_ID))]
        to: Option<NodeId>,
    },
    /// Deliver a percentage of frames twice (0 clears it).
    Duplicate(LinkPercent),
    /// Rewrite a byte of a percentage of peer (UDP) frames behind a valid
    /// checksum: the receiving node must reject them (`peer_messages.forged`).
    Corrupt(LinkPercent),
    /// Send one of a link's last 16 frames again along with a percentage of
    /// frames: the receiving node must reject the replays.
    Replay(LinkPercent),
    /// Drop a percentage of frames on every link, or on one directed link.
    Loss {
        /// 0 to 100 (0 removes the loss).
        #[arg(long, value_parser = parse_percent)]
        percent: f64,
        /// Only frames from this node...
        #[arg(long, requires = "to", value_parser = clap::value_parser!(NodeId).range(1..=MAX_NODE_ID))]
        from: Option<NodeId>,
        /// ...to this node.
        #[arg(long, requires = "from", value_parser = clap::value_parser!(NodeId).range(1..=MAX_NODE_ID))]
        to: Option<NodeId>,
    },
}

/// A percentage of frames on every link, or on one directed link.
#[derive(Args, Debug)]
pub struct LinkPercent {
    /// 0 to 100 (0 removes the fault).
    #[arg(long, value_parser = parse_percent)]
    pub percent: f64,
    /// Only frames from this node...
    #[arg(long, requires = "to", value_parser = clap::value_parser!(NodeId).range(1..=MAX_NODE_ID))]
    pub from: Option<NodeId>,
    /// ...to this node.
    #[arg(long, requires = "from", value_parser = clap::value_parser!(NodeId).range(1..=MAX_NODE_ID))]
    pub to: Option<NodeId>,
}

/// Named partition shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shape {
    /// The lower half of the nodes against the rest.
    Halves,
    /// Each node sees only its two ring neighbours.
    Ring,
    /// Two halves that both see the middle node.
    Bridge,
}

/// A decimal u128 (account and transfer ids).
pub fn parse_u128(text: &str) -> Result<u128, String> {
    text.parse::<u128>()
        .map_err(|_| format!("`{text}` is not an id (a whole number from 0 to 2^128-1)"))
}

/// Partition groups of node ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Groups(pub Vec<Vec<NodeId>>);

/// `1,2/3` → [[1,2],[3]].
pub fn parse_groups(text: &str) -> Result<Groups, String> {
    text.split('/')
        .map(|group| {
            if group.trim().is_empty() {
                return Err(format!("empty group in `{text}` (expected e.g. 1,2/3)"));
            }
            group
                .split(',')
                .map(|id| match id.trim().parse::<NodeId>() {
                    Ok(id) if (1..=MAX_NODE_ID).contains(&id) => Ok(id),
                    _ => Err(format!(
                        "`{id}` in `{text}` is not a node id (1..=255; expected e.g. 1,2/3)"
                    )),
                })
                .collect()
        })
        .collect::<Result<_, _>>()
        .map(Groups)
}

/// A percentage 0..=100.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("`{text}` is not a percentage from 0 to 100")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("continuum").chain(args.iter().copied()))
    }

    fn error(args: &[&str]) -> String {
        parse(args).unwrap_err().to_string()
    }

    #[test]
    fn outcome_and_transfer_take_an_expiry() {
        let cli = parse(&["--dir", "x", "outcome", "5", "--expires-at", "9"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Outcome {
                transfer_id: 5,
                expires_at: Some(9)
            }
        ));
        let cli = parse(&[
            "--dir",
            "x",
            "transfer",
            "--from",
            "1",
            "--to",
            "2",
            "--amount",
            "3",
            "--expires-at",
            "77",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Transfer(t) if t.expires_at == Some(77)));
    }

    #[test]
    fn bench_takes_its_defaults_and_refuses_out_of_range_values() {
        let cli = parse(&["bench"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Bench {
                clients: 1,
                transfers: 1000,
                accounts: None
            }
        ));
        let cli = parse(&[
            "bench",
            "--clients",
            "8",
            "--transfers",
            "50",
            "--accounts",
            "4",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Bench {
                clients: 8,
                transfers: 50,
                accounts: Some(4)
            }
        ));
        for bad in [
            &["bench", "--clients", "0"][..],
            &["bench", "--clients", "65"],
            &["bench", "--transfers", "0"],
            &["bench", "--transfers", "50001"],
            &["bench", "--accounts", "1"],
            &["bench", "--clients", "many"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn commands_parse_with_global_options_anywhere() {
        let cli = parse(&[
            "transfer", "--from", "10", "--to", "11", "--amount", "250", "--dir", "d", "--json",
        ])
        .unwrap();
        assert_eq!(cli.dir, PathBuf::from("d"));
        assert!(cli.json);
        match cli.command {
            Command::Transfer(t) => {
                assert_eq!(
                    (t.from, t.to, t.amount, t.id, t.expires_at),
                    (10, 11, 250, None, None)
                )
            }
            other => panic!("{other:?}"),
        }
        let cli = parse(&[
            "--dir",
            "x",
            "cluster",
            "init",
            "--nodes",
            "5",
            "--insecure-test-keys",
            "42",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Cluster(ClusterCommand::Init(InitArgs {
                nodes: 5,
                insecure_test_keys: Some(42),
                ..
            }))
        ));
        // The old spelling is gone: seeded keys must be asked for by name.
        assert!(parse(&["cluster", "init", "--seed", "42"]).is_err());
        let cli = parse(&["balance", "340282366920938463463374607431768211455"]).unwrap();
        assert!(matches!(cli.command, Command::Balance { account } if account == u128::MAX));
        let cli = parse(&["nemesis", "partition", "--groups", "1,2/3"]).unwrap();
        match cli.command {
            Command::Nemesis(NemesisCommand::Partition { groups, shape }) => {
                assert_eq!(groups, Some(Groups(vec![vec![1, 2], vec![3]])));
                assert_eq!(shape, None);
            }
            other => panic!("{other:?}"),
        }
        let cli = parse(&[
            "nemesis",
            "loss",
            "--percent",
            "12.5",
            "--from",
            "1",
            "--to",
            "2",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Nemesis(NemesisCommand::Loss { percent, from: Some(1), to: Some(2) }) if percent == 12.5
        ));
    }

    #[test]
    fn link_faults_parse_and_refuse_out_of_range_values() {
        let cli = parse(&["nemesis", "delay", "--ms", "50", "--jitter", "20"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Nemesis(NemesisCommand::Delay {
                ms: 50,
                jitter: 20,
                from: None,
                to: None
            })
        ));
        let cli = parse(&["nemesis", "delay", "--ms", "0", "--from", "2", "--to", "3"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Nemesis(NemesisCommand::Delay {
                ms: 0,
                jitter: 0,
                from: Some(2),
                to: Some(3)
            })
        ));
        let cli = parse(&["nemesis", "corrupt", "--percent", "5"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Nemesis(NemesisCommand::Corrupt(LinkPercent { percent, from: None, to: None })) if percent == 5.0
        ));
        for bad in [
            &["nemesis", "delay"][..],
            &["nemesis", "delay", "--ms", "60001"],
            &["nemesis", "delay", "--ms", "5", "--from", "1"],
            &["nemesis", "duplicate", "--percent", "101"],
            &["nemesis", "replay", "--percent", "-1"],
            &[
                "nemesis",
                "corrupt",
                "--percent",
                "5",
                "--to",
                "0",
                "--from",
                "1",
            ],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn bad_arguments_are_refused_with_a_reason() {
        assert!(error(&["transfer", "--from", "10", "--to", "11", "--amount", "0"]).contains("0"));
        assert!(
            error(&["transfer", "--from", "ten", "--to", "11", "--amount", "5"])
                .contains("`ten` is not an id")
        );
        assert!(error(&["transfer", "--from", "1", "--to", "2"]).contains("--amount"));
        assert!(error(&["cluster", "init", "--nodes", "10"]).contains("10"));
        assert!(error(&["nemesis", "partition", "--groups", "1,,2"]).contains("is not a node id"));
        assert!(error(&["nemesis", "partition", "--groups", "1/"]).contains("empty group"));
        assert!(error(&["nemesis", "partition", "--groups", "0/1"]).contains("`0`"));
        assert_eq!(
            parse(&["nemesis", "partition"]).unwrap_err().kind(),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            parse(&["nemesis", "partition", "--groups", "1/2", "--shape", "ring"])
                .unwrap_err()
                .kind(),
            ErrorKind::ArgumentConflict
        );
        assert!(error(&["nemesis", "loss", "--percent", "101"]).contains("percentage"));
        assert_eq!(
            parse(&["nemesis", "loss", "--percent", "5", "--from", "1"])
                .unwrap_err()
                .kind(),
            ErrorKind::MissingRequiredArgument
        );
        assert!(error(&["nemesis", "kill", "0"]).contains("0"));
        assert_eq!(
            parse(&["frobnicate"]).unwrap_err().kind(),
            ErrorKind::InvalidSubcommand
        );
        assert!(error(&["--timeout", "0", "cluster", "status"]).contains("0"));
    }

    #[test]
    fn cluster_up_takes_a_disk_kind() {
        use continuum_harness::DiskKind;
        let disk = |args: &[&str]| match parse(args).unwrap().command {
            Command::Cluster(ClusterCommand::Up { disk, .. }) => disk,
            other => panic!("{other:?}"),
        };
        assert_eq!(disk(&["cluster", "up"]), DiskKind::Virtio);
        assert_eq!(disk(&["cluster", "up", "--disk", "nvme"]), DiskKind::Nvme);
        assert_eq!(disk(&["cluster", "up", "--disk", "ahci"]), DiskKind::Ahci);
        assert!(error(&["cluster", "up", "--disk", "scsi"])
            .contains("unknown disk kind `scsi` (expected virtio, nvme or ahci)"));
    }

    #[test]
    fn group_syntax() {
        assert_eq!(parse_groups("1,2/3").unwrap().0, vec![vec![1, 2], vec![3]]);
        assert_eq!(
            parse_groups("1,2,3/3,4,5").unwrap().0,
            vec![vec![1, 2, 3], vec![3, 4, 5]]
        );
        assert_eq!(parse_groups(" 1 , 2 ").unwrap().0, vec![vec![1, 2]]);
        assert!(parse_groups("").is_err());
        assert!(parse_groups("256").is_err());
        assert!(parse_groups("255").is_ok());
        assert!(parse_groups("a/b").is_err());
    }

    /// Node-id arguments stop at the largest node id, as groups do.
    #[test]
    fn node_ids_above_the_largest_are_refused() {
        use clap::Parser;
        for args in [
            &["continuum", "nemesis", "kill", "256"][..],
            &["continuum", "nemesis", "skew", "--node", "256", "--ms", "5"][..],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
        assert!(Cli::try_parse_from(["continuum", "nemesis", "kill", "255"]).is_ok());
        assert!(Cli::try_parse_from([
            "continuum",
            "nemesis",
            "skew",
            "--node",
            "255",
            "--ms",
            "5"
        ])
        .is_ok());
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
