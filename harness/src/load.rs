//! A closed-loop load generator over the harness [`Client`], and the
//! measurements around it: what `continuum bench` runs.
//!
//! * [`open_accounts`]: fresh accounts with random owner keys, each funded
//!   from the reserve so no transfer of the run can be refused for funds.
//! * [`closed_loop`]: `clients` threads, each with its own [`Client`] and
//!   one transfer in flight; transfers are handed out one at a time from a
//!   shared counter, so every client stays busy until the end. Transfer
//!   `k` moves 1 unit from account `k mod K` to `(k + 1) mod K`, signed by
//!   the debited account's owner. Latency is client-observed: from the
//!   call (signing included, ~tens of µs on the host) to its committed
//!   answer, retries included. `Exists` (an earlier attempt of the same
//!   call committed) counts as committed.
//! * [`client_round_trips`]: the client↔node round trip with no consensus
//!   in it: a `Submit` of [`UNDECODABLE_COMMAND`], which a node refuses
//!   `BadRequest` at once (it cannot decode it; nothing is verified,
//!   logged or replicated).
//! * [`metric`] reads one series of a node's `/metrics`; [`cpu_ticks`] a
//!   process's CPU time from `/proc/<pid>/stat`.

use crate::client::{Client, ClientError};
use continuum_bank::{AccountFlags, Outcome};
use ed25519_dalek::SigningKey;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Most client threads of one run.
pub const MAX_CLIENTS: u64 = 64;
/// Most transfers of one run: the kernel's ledger holds 131,072 transfers,
/// and runs on one cluster add up.
pub const MAX_TRANSFERS: u64 = 50_000;
/// Most accounts a run opens.
pub const MAX_ACCOUNTS: u64 = 1_024;
/// USER_HZ: the unit of `utime`/`stime` in `/proc/<pid>/stat` (fixed at
/// 100 by the Linux ABI on x86, whatever the kernel's own tick rate).
pub const USER_HZ: u64 = 100;

/// A command no bank entry decodes from (an unsupported entry version): the
/// client sends it (it is not empty), every node refuses it `BadRequest`.
pub const UNDECODABLE_COMMAND: [u8; 1] = [0xff];

/// One committed transfer as its client saw it.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub latency: Duration,
    /// The node that answered.
    pub node: u64,
    /// Answered `Exists`: an earlier attempt of this call committed.
    pub retried: bool,
}

/// A finished closed-loop run.
#[derive(Debug)]
pub struct LoadRun {
    pub samples: Vec<Sample>,
    /// From the start of the run to the last answer.
    pub elapsed: Duration,
}

impl LoadRun {
    pub fn transfers_per_s(&self) -> f64 {
        self.samples.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Latencies, sorted.
    pub fn latencies(&self) -> Vec<Duration> {
        let mut all: Vec<Duration> = self.samples.iter().map(|s| s.latency).collect();
        all.sort();
        all
    }
}

/// The `p`-th percentile (0..=100) of `sorted` (nearest rank); zero if empty.
pub fn percentile(sorted: &[Duration], p: u32) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (sorted.len() * p as usize).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// An account of the run: its id and its owner's key.
#[derive(Clone)]
pub struct Account {
    pub id: u128,
    pub owner: SigningKey,
}

/// Creates `count` accounts with random owners at ids `first..`, and funds
/// each with `funding` units from `reserve` (owned by `operator`).
pub fn open_accounts(
    client: &mut Client,
    operator: &SigningKey,
    reserve: u128,
    first: u128,
    count: u64,
    funding: u64,
    transfer_ids: u128,
) -> Result<Vec<Account>, String> {
    let mut accounts = Vec::new();
    for i in 0..u128::from(count) {
        let id = first + i;
        let owner = SigningKey::from_bytes(
            &crate::plan::random_bytes::<32>().map_err(|e| format!("random key: {e}"))?,
        );
        let (outcome, _) = client
            .create_account(operator, id, &owner.verifying_key(), AccountFlags::empty())
            .map_err(|e| format!("create account {id}: {e}"))?;
        if outcome != Outcome::Ok {
            return Err(format!("create account {id}: {outcome:?}"));
        }
        let funded = client
            .transfer(operator, transfer_ids + i, reserve, id, funding)
            .map_err(|e| format!("fund account {id}: {e}"))?;
        if !matches!(funded.outcome, Outcome::Ok | Outcome::Exists) {
            return Err(format!("fund account {id}: {:?}", funded.outcome));
        }
        accounts.push(Account { id, owner });
    }
    Ok(accounts)
}

/// Runs `transfers` transfers over `clients` (one thread each) between
/// `accounts` (see the module docs); transfer `k` gets id `id_base + k`.
/// `progress` is called from the calling thread about every
/// `progress_every` with the number committed so far; an error from it
/// ends the run at once with that error (the client threads are left to
/// finish their call and are not waited for).
pub fn closed_loop(
    clients: Vec<Client>,
    accounts: &[Account],
    transfers: u64,
    id_base: u128,
    progress_every: Duration,
    mut progress: impl FnMut(u64) -> Result<(), String>,
) -> Result<LoadRun, String> {
    if accounts.len() < 2 {
        return Err(format!(
            "a run needs 2 accounts or more, got {}",
            accounts.len()
        ));
    }
    let ticket = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let accounts: Arc<Vec<Account>> = Arc::new(accounts.to_vec());
    let start = Arc::new(Barrier::new(clients.len() + 1));
    let threads: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            let (ticket, done, accounts, start) = (
                ticket.clone(),
                done.clone(),
                accounts.clone(),
                start.clone(),
            );
            std::thread::spawn(move || -> Result<(Vec<Sample>, Instant), String> {
                let mut samples = Vec::new();
                start.wait();
                loop {
                    let k = ticket.fetch_add(1, Ordering::Relaxed);
                    if k >= transfers {
                        return Ok((samples, Instant::now()));
                    }
                    let n = accounts.len() as u64;
                    let from = &accounts[(k % n) as usize];
                    let to = &accounts[((k + 1) % n) as usize];
                    let id = id_base + u128::from(k);
                    let sent = Instant::now();
                    let result = client
                        .transfer(&from.owner, id, from.id, to.id, 1)
                        .map_err(|e| format!("transfer {id}: {e}"))?;
                    let latency = sent.elapsed();
                    if !matches!(result.outcome, Outcome::Ok | Outcome::Exists) {
                        return Err(format!(
                            "transfer {id} ({} -> {}): {:?}",
                            from.id, to.id, result.outcome
                        ));
                    }
                    samples.push(Sample {
                        latency,
                        node: result.committed.position.node,
                        retried: result.outcome == Outcome::Exists,
                    });
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    let mut next_progress = began + progress_every;
    while !threads.iter().all(|t| t.is_finished()) {
        std::thread::sleep(Duration::from_millis(20));
        if Instant::now() >= next_progress {
            progress(done.load(Ordering::Relaxed))?;
            next_progress += progress_every;
        }
    }
    let mut samples = Vec::new();
    let mut last = began;
    for thread in threads {
        let (mut mine, finished) = thread
            .join()
            .map_err(|_| String::from("a client thread panicked"))??;
        samples.append(&mut mine);
        last = last.max(finished);
    }
    Ok(LoadRun {
        samples,
        elapsed: last - began,
    })
}

/// `count` client↔node round trips through `client` (see the module docs),
/// sorted; each must be answered `BadRequest`.
pub fn client_round_trips(client: &mut Client, count: u32) -> Result<Vec<Duration>, String> {
    let mut trips = Vec::new();
    for _ in 0..count {
        let sent = Instant::now();
        match client.submit(&UNDECODABLE_COMMAND) {
            Err(ClientError::BadRequest { .. }) => trips.push(sent.elapsed()),
            other => return Err(format!("an undecodable submit was answered {other:?}")),
        }
    }
    trips.sort();
    Ok(trips)
}

/// The value of series `name` (exact name, any labels) in a `/metrics`
/// body; `None` if absent or not a number.
pub fn metric(body: &str, name: &str) -> Option<f64> {
    body.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let rest = rest.strip_prefix('{').map_or(Some(rest), |labels| {
            labels.split_once('}').map(|(_, value)| value)
        })?;
        rest.trim().parse().ok()
    })
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`), or `unknown`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// CPU time (user + system, in [`USER_HZ`] ticks) process `pid` has used,
/// all its threads included.
pub fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // Fields after the parenthesised command: state is field 3, utime 14, stime 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| format!("/proc/{pid}/stat: no command field"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Result<u64, String> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("/proc/{pid}/stat: no field {n}"))
    };
    Ok(field(14)? + field(15)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 50), Duration::from_millis(50));
        assert_eq!(percentile(&sorted, 99), Duration::from_millis(99));
        assert_eq!(percentile(&sorted, 100), Duration::from_millis(100));
        assert_eq!(percentile(&sorted[..1], 99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50), Duration::ZERO);
    }

    #[test]
    fn metric_finds_a_series_with_or_without_labels() {
        let body = "# HELP x\ncontinuum_flush_seconds_sum{node=\"1\"} 0.002500\n\
                    continuum_flush_seconds_count{node=\"1\"} 5\nplain 7\n";
        assert_eq!(metric(body, "continuum_flush_seconds_sum"), Some(0.0025));
        assert_eq!(metric(body, "continuum_flush_seconds_count"), Some(5.0));
        assert_eq!(metric(body, "plain"), Some(7.0));
        assert_eq!(metric(body, "continuum_flush_seconds"), None);
        assert_eq!(metric(body, "absent"), None);
    }

    #[test]
    fn cpu_ticks_of_this_process_grow() {
        let before = cpu_ticks(std::process::id()).unwrap();
        let started = Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(100) {
            x = x.wrapping_mul(31).wrapping_add(1);
        }
        std::hint::black_box(x);
        assert!(cpu_ticks(std::process::id()).unwrap() > before);
        assert!(cpu_ticks(u32::MAX).is_err());
    }
}
