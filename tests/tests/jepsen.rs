//! A Jepsen-style run against a real 3-node cluster: five client threads
//! send random transfers and balance reads for 60 s through random nodes
//! while the seeded chaos schedule (`continuum_harness::chaos`, the same
//! code as `continuum chaos`) cycles through partitions (halves, ring,
//! bridge), kill -9 and restart, pause and resume, packet loss, delay,
//! duplication, corruption, replay, clock-skewed reboots and disk-fault
//! reboots (`CONTINUUM_JEPSEN_FAULTS=classic`: the first six only), timing
//! each recovery and checking the status invariants. Afterwards the
//! history is checked (`continuum_harness::checker`): conservation, no
//! impossible balance, every acknowledged transfer applied exactly once, no
//! failed or unknown transfer applied twice, and linearizability.
//!
//! `CONTINUUM_JEPSEN_SEED` replays a nemesis schedule and client choices
//! (timing still varies); `CONTINUUM_JEPSEN_SECS` changes the run length.
//! On failure the seed, the history (`History::load` re-checks it) and the
//! nemesis log are saved under `target/jepsen/<seed>/`.

use continuum_bank::{AccountFlags, Outcome};
use continuum_harness::bank::signed_transfer;
use continuum_harness::chaos::{self, Kinds, Schedule};
use continuum_harness::checker::{
    self, AppliedTransfer, Call, Fail, OpResult, Options, Recorder, Value,
};
use continuum_harness::client::{Client, ClientError, RetryPolicy};
use continuum_harness::cluster::{Cluster, LaunchSpec};
use continuum_harness::plan::{derived_key, ClusterPlan};
use continuum_harness::workspace_root;
use continuum_raft::SplitMix64;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NAME: &str = "jepsen3";
const ACCOUNTS: [u128; 5] = [10, 11, 12, 13, 14];
const OPENING_BALANCE: u64 = 1_000;
const CLIENTS: usize = 5;
const WAIT: Duration = Duration::from_secs(180);
/// Longest wait for the cluster to commit again after a fault is undone.
const RECOVERY: Duration = Duration::from_secs(60);

/// Every transfer a client attempted: id -> (from, to, amount).
type Attempted = BTreeMap<u128, (u128, u128, u64)>;

fn owner(account: u128) -> ed25519_dalek::SigningKey {
    derived_key(NAME, "owner", account as u8)
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn client_thread(
    process: usize,
    seed: u64,
    mut client: Client,
    cluster_id: u64,
    recorder: Arc<Recorder>,
    stop: Arc<AtomicBool>,
    sent: Arc<Mutex<Attempted>>,
) {
    let mut rng = SplitMix64::new(seed ^ ((process as u64 + 1) * 0x1234_5678));
    let mut next_id = (process as u128 + 1) << 64;
    while !stop.load(Ordering::Relaxed) {
        if rng.gen_range(0, 3) == 0 {
            let account = ACCOUNTS[rng.gen_range(0, ACCOUNTS.len() as u64) as usize];
            let invocation = recorder.invoke(process, Call::ReadBalance { account });
            let result = match client.balance(account) {
                Ok(read) => OpResult::Ok(Value::Balance(read.value.unwrap_or(0))),
                Err(_) => OpResult::Unknown,
            };
            recorder.complete(invocation, result);
            continue;
        }
        let from = ACCOUNTS[rng.gen_range(0, ACCOUNTS.len() as u64) as usize];
        let to = loop {
            let to = ACCOUNTS[rng.gen_range(0, ACCOUNTS.len() as u64) as usize];
            if to != from {
                break to;
            }
        };
        let amount = 1 + rng.gen_range(0, 400);
        next_id += 1;
        let id = next_id;
        sent.lock().unwrap().insert(id, (from, to, amount));
        let entry = signed_transfer(&owner(from), cluster_id, id, from, to, amount);
        let invocation = recorder.invoke(
            process,
            Call::Transfer {
                id,
                from,
                to,
                amount,
            },
        );
        let result = match client.submit(&entry) {
            Ok(committed) => match committed.outcomes.as_slice() {
                [Outcome::Ok] | [Outcome::Exists] => OpResult::Ok(Value::Transferred),
                [Outcome::InsufficientFunds] => OpResult::Fail(Fail::InsufficientFunds),
                other => panic!("transfer {id}: unexpected outcome {other:?}"),
            },
            Err(ClientError::Encode(e)) => panic!("transfer {id}: {e}"),
            // Timeouts, unreachable nodes: the effect is unknown.
            Err(_) => OpResult::Unknown,
        };
        recorder.complete(invocation, result);
    }
}

/// The last console lines of every node, for failure messages.
fn consoles(cluster: &Cluster) -> String {
    let mut out = String::new();
    for id in 1..=3 {
        let text = cluster
            .console_path(id)
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(40)..];
        out.push_str(&format!(
            "--- node {id} (last {} lines) ---\n{}\n",
            tail.len(),
            tail.join("\n")
        ));
    }
    out
}

#[test]
fn jepsen_bank_under_partitions_crashes_pauses_and_loss() {
    let seed = env_u64("CONTINUUM_JEPSEN_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let run_for = Duration::from_secs(env_u64("CONTINUUM_JEPSEN_SECS").unwrap_or(60));
    eprintln!("jepsen: seed {seed} (replay with CONTINUUM_JEPSEN_SEED={seed}), {run_for:?}");

    let plan = ClusterPlan::for_test(NAME, 7, &[1, 2, 3]).unwrap();
    let dir = std::env::temp_dir().join(format!("ctm-{NAME}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut spec = LaunchSpec::from_plan(NAME, &plan, &dir, 64).unwrap();
    spec.remove_dir_on_drop = true;
    let mut cluster = Cluster::launch(spec).unwrap();
    cluster.wait_leader(WAIT).unwrap();

    // Open and fund the accounts (before the history starts).
    let mut setup = cluster.client().unwrap();
    for (i, &account) in ACCOUNTS.iter().enumerate() {
        let (outcome, _) = setup
            .create_account(
                &plan.operator,
                account,
                &owner(account).verifying_key(),
                AccountFlags::empty(),
            )
            .unwrap();
        assert!(matches!(outcome, Outcome::Ok | Outcome::Exists));
        let funded = setup
            .transfer(
                &plan.operator,
                1_000 + i as u128,
                plan.reserve_account,
                account,
                OPENING_BALANCE,
            )
            .unwrap();
        assert!(matches!(funded.outcome, Outcome::Ok | Outcome::Exists));
    }
    let initial: BTreeMap<u128, u64> = ACCOUNTS.iter().map(|&a| (a, OPENING_BALANCE)).collect();

    let recorder = Arc::new(Recorder::new());
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(Mutex::new(BTreeMap::new()));
    // Short attempts: a client that waits out a fault records `Unknown`
    // and moves on, which is what exercises the checker.
    let policy = RetryPolicy {
        deadline: Duration::from_secs(8),
        ..RetryPolicy::default()
    };
    let clients: Vec<_> = (0..CLIENTS)
        .map(|process| {
            let client = cluster.client().unwrap().with_policy(policy);
            let (recorder, stop, sent) = (recorder.clone(), stop.clone(), sent.clone());
            let cluster_id = plan.cluster_id;
            std::thread::spawn(move || {
                client_thread(process, seed, client, cluster_id, recorder, stop, sent)
            })
        })
        .collect();

    // The nemesis: the chaos schedule (`continuum chaos` runs the same
    // code): a fault for 3-6 s, undone, recovery timed, then 2-4 s of calm.
    let kinds = match std::env::var("CONTINUUM_JEPSEN_FAULTS").as_deref() {
        Ok("classic") => Kinds {
            classic: true,
            link: false,
            clock: false,
            disk: false,
        },
        _ => Kinds::ALL,
    };
    let mut schedule = Schedule::new(seed, &[1, 2, 3], kinds).unwrap();
    let mut log = Vec::new();
    let results = chaos::run(
        &mut cluster,
        &mut schedule,
        3,
        run_for,
        RECOVERY,
        &mut |r| {
            log.push(format!(
                "{:>6.1}s {} (held {} ms): recovered {}, invariants {}{}",
                r.at_s,
                r.fault,
                r.held_ms,
                r.recovery_ms
                    .map_or("NOT within the timeout".into(), |ms| format!("in {ms} ms")),
                if r.violations.is_empty() {
                    "held"
                } else {
                    "VIOLATED"
                },
                if r.errors.is_empty() {
                    String::new()
                } else {
                    format!(" nemesis errors: {:?}", r.errors)
                }
            ))
        },
    );
    let summary = chaos::summarize(seed, &results);
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("a client thread panicked");
    }

    // Quiet cluster: fetch where every attempted transfer applied.
    if let Err(e) = cluster.wait_leader(WAIT) {
        panic!("no leader after the run: {e}\n{}", consoles(&cluster));
    }
    let mut reader = cluster.client().unwrap().with_policy(RetryPolicy {
        deadline: Duration::from_secs(120),
        ..RetryPolicy::default()
    });
    let sent = sent.lock().unwrap().clone();
    let mut applied = Vec::new();
    for (&id, &(from, to, amount)) in &sent {
        let answer = reader
            .outcome(id)
            .unwrap_or_else(|e| panic!("outcome of transfer {id}: {e:?}\n{}", consoles(&cluster)));
        if let Some(index) = answer.value.applied_at() {
            applied.push(AppliedTransfer {
                id,
                from,
                to,
                amount,
                index,
            });
        }
    }
    let history = Arc::try_unwrap(recorder)
        .unwrap_or_else(|_| panic!("clients still hold the recorder"))
        .into_history(initial, Some(applied));
    let ops = history.ops.len();
    let acked = history
        .ops
        .iter()
        .filter(|op| matches!(op.result, OpResult::Ok(Value::Transferred)))
        .count();
    let unknown = history
        .ops
        .iter()
        .filter(|op| op.result == OpResult::Unknown)
        .count();
    let report = checker::check(&history, &Options::default()).expect("a well-formed history");
    eprintln!(
        "jepsen: {ops} ops, {acked} acknowledged transfers, {unknown} unknown; nemesis:\n{}\n{report}",
        log.join("\n")
    );
    eprintln!(
        "jepsen: chaos summary: {}",
        serde_json::to_string(&summary).unwrap()
    );
    let violations: Vec<&String> = results.iter().flat_map(|r| &r.violations).collect();
    let nemesis_errors: Vec<&String> = results.iter().flat_map(|r| &r.errors).collect();
    assert!(
        violations.is_empty(),
        "status invariants violated: {violations:?}\n{}",
        consoles(&cluster)
    );
    assert!(
        nemesis_errors.is_empty(),
        "nemesis errors: {nemesis_errors:?}"
    );
    let valid = report.is_valid();
    if !valid {
        let out = workspace_root().join(format!("target/jepsen/{seed}"));
        std::fs::create_dir_all(&out).unwrap();
        history.save(&out.join("history.json")).unwrap();
        std::fs::write(out.join("nemesis.log"), log.join("\n")).unwrap();
        std::fs::write(out.join("seed"), seed.to_string()).unwrap();
        panic!(
            "history check failed (saved in {}):\n{report}",
            out.display()
        );
    }
    assert!(acked > 0, "no transfer was acknowledged in {run_for:?}");
    // Every replica ends with the same chain head.
    let heads: Vec<String> = (1..=3)
        .map(|id| {
            let deadline = Instant::now() + WAIT;
            loop {
                let status = cluster.status(id);
                if let Ok(s) = &status {
                    let applied = s["raft"]["applied"].as_u64().unwrap_or(0);
                    let commit = s["raft"]["commit"].as_u64().unwrap_or(u64::MAX);
                    if applied == commit && applied > 0 {
                        break s["raft"]["chain_head"]["hash"].to_string();
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "node {id} never caught up: {status:?}"
                );
                std::thread::sleep(Duration::from_millis(300));
            }
        })
        .collect();
    let _ = reader.chain_head();
    assert!(
        heads.windows(2).all(|w| w[0] == w[1]) || {
            // A node may still be one entry behind its peers' last write;
            // give the cluster a moment and compare again.
            std::thread::sleep(Duration::from_secs(3));
            let again: Vec<String> = (1..=3)
                .map(|id| cluster.status(id).unwrap()["raft"]["chain_head"]["hash"].to_string())
                .collect();
            again.windows(2).all(|w| w[0] == w[1])
        },
        "replicas disagree on the receipt chain: {heads:?}"
    );
}
