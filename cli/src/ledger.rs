//! The commands that talk to the ledger: `account create`, `transfer`,
//! `balance`, `outcome` and `cluster wait`. Each builds a [`Client`] of
//! the running cluster's nodes, signs with a key from `<dir>/keys`, and
//! turns the bank's outcome into a sentence (or a JSON object) and an exit
//! code: a rejected command is an error naming the reason the bank gave.

use crate::error::CliError;
use crate::layout::Layout;
use continuum_bank::{AccountFlags, Outcome};
use continuum_harness::client::{
    default_expires_at, Client, ClientError, Endpoint, Position, RetryPolicy, TransferAnswer,
};
use continuum_harness::plan::{hex, random_bytes, ClusterFacts};
use serde_json::{json, Value};
use std::time::Duration;

/// A client of the running cluster in `layout`.
pub fn connect(layout: &Layout, timeout: Duration) -> Result<(Client, ClusterFacts), CliError> {
    let facts = layout.facts()?;
    let state = layout.running_state()?;
    if state.cluster_id != facts.cluster_id {
        return Err(CliError::Other(format!(
            "{} describes cluster {} but cluster {} is running there",
            layout.facts_path().display(),
            facts.cluster_id,
            state.cluster_id
        )));
    }
    let endpoints = state
        .nodes
        .iter()
        .map(|n| Endpoint {
            node: n.id,
            addr: ([127, 0, 0, 1], n.client_port).into(),
        })
        .collect();
    let client = Client::new(facts.cluster_id, endpoints)?
        .with_policy(RetryPolicy {
            deadline: timeout,
            ..RetryPolicy::default()
        })
        .with_window(facts.dedup_window_ms);
    Ok((client, facts))
}

fn position_json(p: &Position) -> Value {
    json!({
        "node": p.node,
        "index": p.index,
        "term": p.term,
        "hlc": p.hlc,
        "chain_hash": hex(&p.chain_hash),
    })
}

fn via(p: &Position) -> String {
    format!("index {}, term {}, node {}", p.index, p.term, p.node)
}

/// `account create --id N`.
pub fn create_account(
    layout: &Layout,
    id: u128,
    timeout: Duration,
    json: bool,
) -> Result<(), CliError> {
    let facts = layout.facts()?;
    if id == facts.reserve_account {
        return Err(CliError::Rejected(format!(
            "account {id} is the reserve account: it exists from genesis and the operator key owns it"
        )));
    }
    let operator = layout.operator_key(&facts)?;
    // Connect first: no key file is made for a cluster that is not up.
    let (mut client, _) = connect(layout, timeout)?;
    let (owner, key_path, created) = layout.account_key_for_create(id)?;
    let (outcome, committed) = client
        .create_account(&operator, id, &owner.verifying_key(), AccountFlags::empty())
        .map_err(|e| unknown_or(e, &format!("account {id} may or may not have been created; running the same command again is safe")))?;
    let p = committed.position;
    if json {
        println!(
            "{}",
            json!({
                "account": id,
                "outcome": outcome.to_string(),
                "outcome_code": outcome.code(),
                "key_file": key_path,
                "key_created": created,
                "owner_key": hex(owner.verifying_key().as_bytes()),
                "position": position_json(&p),
                "attempts": committed.attempts,
            })
        );
    }
    match outcome {
        Outcome::Ok | Outcome::Exists => {
            if !json {
                let what = if outcome == Outcome::Ok {
                    "created"
                } else {
                    "already exists with this owner key"
                };
                println!(
                    "account {id} {what} ({}); owner key {}",
                    via(&p),
                    key_path.display()
                );
            }
            Ok(())
        }
        Outcome::ExistsWithDifferentFields => Err(CliError::Rejected(format!(
            "account {id} already exists with a different owner key (not the one in {})",
            key_path.display()
        ))),
        Outcome::BadSignature => Err(CliError::Rejected(format!(
            "bad signature: the nodes do not accept {} as this cluster's operator key",
            layout.operator_key_path().display()
        ))),
        other => Err(CliError::Rejected(format!(
            "account {id} was not created: {other}"
        ))),
    }
}

/// Keeps "outcome unknown" distinct from other client errors.
fn unknown_or(error: ClientError, what: &str) -> CliError {
    match error {
        ClientError::OutcomeUnknown { .. }
        | ClientError::Unreachable {
            maybe_applied: true,
            ..
        } => CliError::OutcomeUnknown(format!("{error}; {what}")),
        other => CliError::Client(other),
    }
}

/// The arguments of `transfer`.
pub struct TransferRequest {
    pub from: u128,
    pub to: u128,
    pub amount: u64,
    pub id: Option<u128>,
    /// Cluster HLC ms; default now + the client's default validity.
    pub expires_at: Option<u64>,
}

/// `transfer --from A --to B --amount X [--id ID] [--expires-at MS]`.
pub fn transfer(
    layout: &Layout,
    request: TransferRequest,
    timeout: Duration,
    json: bool,
) -> Result<(), CliError> {
    let TransferRequest {
        from,
        to,
        amount,
        id,
        expires_at,
    } = request;
    let expires_at = expires_at.unwrap_or_else(default_expires_at);
    let facts = layout.facts()?;
    let (key, key_path) = layout.signing_key(&facts, from)?;
    let id = match id {
        Some(id) => id,
        // Random but short enough to type back into `outcome`.
        None => u128::from(
            u64::from_le_bytes(
                random_bytes::<8>().map_err(CliError::io("cannot read /dev/urandom"))?,
            )
            .max(1),
        ),
    };
    let (client, _) = connect(layout, timeout)?;
    // Session = transfer id, seq 1, and a fixed expiry: a re-run with the
    // same id and expiry signs the same bytes, so it gets the first answer
    // back (from the dedup window) even when it was a rejection.
    let mut client = client.with_session(id, 1).with_expires_at(expires_at);
    let result = client.transfer(&key, id, from, to, amount).map_err(|e| {
        unknown_or(
            e,
            &format!(
                "check with `continuum --dir {} outcome {id}`, or run the same transfer again with --id {id} --expires-at {expires_at} (it cannot apply twice)",
                layout.dir.display()
            ),
        )
    })?;
    let p = result.committed.position;
    if json {
        println!(
            "{}",
            json!({
                "transfer_id": id,
                "from": from,
                "to": to,
                "amount": amount,
                "expires_at": expires_at,
                "outcome": result.outcome.to_string(),
                "outcome_code": result.outcome.code(),
                "applied_at": result.applied_at,
                "position": position_json(&p),
                "attempts": result.committed.attempts,
            })
        );
    }
    let rejected = |why: String| Err(CliError::Rejected(format!("transfer {id} rejected: {why}")));
    match result.outcome {
        Outcome::Ok => {
            if !json {
                println!(
                    "transfer {id}: ok, {amount} moved from {from} to {to} ({})",
                    via(&p)
                );
            }
            Ok(())
        }
        Outcome::Exists => {
            if !json {
                println!(
                    "transfer {id}: already applied at index {} (same id and fields; nothing moved again)",
                    result.applied_at.map_or("?".into(), |i| i.to_string())
                );
            }
            Ok(())
        }
        Outcome::InsufficientFunds => rejected(format!("insufficient funds in account {from}")),
        Outcome::NoSuchDebitAccount => Err(CliError::UnknownAccount(from)),
        Outcome::NoSuchCreditAccount => Err(CliError::UnknownAccount(to)),
        Outcome::BadSignature => rejected(format!(
            "bad signature: the key in {} is not the owner key of account {from}",
            key_path.display()
        )),
        Outcome::ExistsWithDifferentFields => {
            rejected(format!("id {id} was already used by a different transfer"))
        }
        other => rejected(other.to_string()),
    }
}

/// `balance <account>`.
pub fn balance(
    layout: &Layout,
    account: u128,
    timeout: Duration,
    json: bool,
) -> Result<(), CliError> {
    let (mut client, _) = connect(layout, timeout)?;
    let read = client.balance(account)?;
    let p = read.position;
    if json {
        println!(
            "{}",
            json!({"account": account, "exists": read.value.is_some(), "balance": read.value, "position": position_json(&p)})
        );
    }
    match read.value {
        Some(balance) => {
            if !json {
                println!(
                    "account {account}: {balance} (read at index {} from node {})",
                    p.index, p.node
                );
            }
            Ok(())
        }
        None => Err(CliError::UnknownAccount(account)),
    }
}

/// `outcome <transfer id> [--expires-at MS]`.
pub fn outcome(
    layout: &Layout,
    transfer_id: u128,
    expires_at: Option<u64>,
    timeout: Duration,
    json: bool,
) -> Result<(), CliError> {
    let (mut client, _) = connect(layout, timeout)?;
    let read = client.outcome(transfer_id)?;
    let p = read.position;
    if json {
        let (state, index, outcome, log_time_ms) = match read.value {
            TransferAnswer::Applied { index } => ("applied", Some(index), None, None),
            TransferAnswer::Rejected {
                index,
                outcome_code,
            } => ("rejected", Some(index), Some(outcome_code), None),
            TransferAnswer::NotDecided { log_time_ms } => {
                if expires_at.is_some_and(|e| read.value.expired(e)) {
                    ("expired", None, None, Some(log_time_ms))
                } else {
                    ("not_decided", None, None, Some(log_time_ms))
                }
            }
        };
        println!(
            "{}",
            json!({"transfer_id": transfer_id, "state": state, "applied": read.value.applied_at().is_some(), "applied_at": read.value.applied_at(), "decided_at": index, "outcome_code": outcome, "log_time_ms": log_time_ms, "position": position_json(&p)})
        );
        return Ok(());
    }
    match read.value {
        TransferAnswer::Applied { index } => {
            println!("transfer {transfer_id}: applied at index {index}")
        }
        TransferAnswer::Rejected {
            index,
            outcome_code,
        } => {
            let why = Outcome::from_unit_code(outcome_code)
                .map_or_else(|| format!("outcome code {outcome_code}"), |o| o.to_string());
            println!("transfer {transfer_id}: rejected at index {index}: {why} (it can never apply)")
        }
        TransferAnswer::NotDecided { log_time_ms } => match expires_at {
            Some(e) if read.value.expired(e) => println!(
                "transfer {transfer_id}: expired from the dedup window (log time {log_time_ms} ms is past its expires_at {e}): it did not apply and never can"
            ),
            Some(e) => println!(
                "transfer {transfer_id}: not applied yet (as of index {}, log time {log_time_ms} ms); it may still apply until {e}",
                p.index
            ),
            None => println!(
                "transfer {transfer_id}: no decision in the dedup window (as of index {}, log time {log_time_ms} ms): if its expires_at is below {log_time_ms} it expired from the dedup window and can never apply; otherwise it was not submitted or not yet applied",
                p.index
            ),
        },
    }
    Ok(())
}

/// `cluster wait`: until a linearizable read succeeds.
pub fn wait(layout: &Layout, timeout: Duration, json: bool) -> Result<(), CliError> {
    let (mut client, facts) = connect(layout, timeout)?;
    let started = std::time::Instant::now();
    let head = client.chain_head()?;
    let p = head.position;
    if json {
        println!(
            "{}",
            json!({"cluster_id": facts.cluster_id, "waited_ms": started.elapsed().as_millis() as u64, "position": position_json(&p)})
        );
    } else {
        println!(
            "cluster {} serves requests: node {} answered a linearizable read at index {}, term {} (waited {:.1} s)",
            facts.cluster_id,
            p.node,
            p.index,
            p.term,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
