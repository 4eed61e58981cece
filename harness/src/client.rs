//! A client of a Continuum cluster: the client wire protocol
//! (`continuum_net::client`) over UDP, with the retry rules that make it
//! safe to use against a cluster that loses packets, nodes and leaders.
//!
//! ## Contract with the nodes (net/src/client.rs, node/src/lib.rs)
//! * Any node takes a `Submit`; a follower forwards it to the leader. The
//!   answer comes after commit *and* apply: `Ok` with the entry's position
//!   and one bank outcome per command.
//! * `Redirect{leader_hint}`, `Error(Unavailable | Busy)`: not proposed by
//!   this attempt; try again (the hinted node first).
//! * `Error(Timeout)` or no answer at all: the command may or may not have
//!   applied. Retrying is safe because the bank decides a transfer id at
//!   most once inside its dedup window (a retry of an applied transfer
//!   answers `Exists`, of a rejected one its first rejection) and after the
//!   signed `expires_at` any replay is `Expired`. If retries run out, the caller gets
//!   [`ClientError::OutcomeUnknown`] ("query it"), never a false failure.
//! * `Error(BadRequest)`: the node will never take these bytes (wrong
//!   cluster id, undecodable command, or a transfer from an account no
//!   node knows); not retried.
//! * `Error(BadSignature)`: a signature in the command does not verify
//!   against the key the node knows for its signer; refused before the log,
//!   not retried.
//! * Queries (`QueryBalance`, `QueryOutcome`, `QueryChainHead`) are
//!   linearizable reads (ReadIndex) and may go to any node.
//!
//! ## Mechanics
//! One UDP socket per node, *connected*, so a node whose port is closed
//! (its QEMU is gone) is reported by the host at once (`ECONNREFUSED`)
//! instead of costing an attempt timeout. Every attempt gets a fresh
//! request id; a reply to *any* attempt of the current call is accepted,
//! so the answer to a first attempt that arrives after a retry is not lost.
//! Between unsuccessful attempts the client backs off exponentially
//! ([`RetryPolicy`]) and moves to the next node, except after a redirect
//! with a hint, which is followed at once.

use continuum_bank::{
    AccountFlags, CreateAccount, Entry, Outcome, Transfer, DEFAULT_MAX_EXPIRY_WINDOW_MS,
};
/// The answer of [`Client::outcome`].
pub use continuum_net::client::TransferAnswer;
use continuum_net::client::{
    decode_balance_answer, decode_transfer_answer, ClientReply, ClientRequest, ReplyError,
    RequestOp, MAX_SUBMIT_BYTES,
};
/// What [`Client::change_membership`] answers, and why a change is refused.
pub use continuum_net::client::{MembershipRefusal, ReplyBody};
use ed25519_dalek::{SigningKey, VerifyingKey};
use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Largest datagram a node sends (a reply fits one Ethernet frame).
const MAX_REPLY_BYTES: usize = 2048;
/// How long the receive loop sleeps when no socket has a datagram.
const POLL_INTERVAL: Duration = Duration::from_millis(1);
/// Consecutive redirects followed without backing off (a leader change in
/// progress can bounce a request between two nodes).
const MAX_FREE_REDIRECTS: u32 = 3;

/// One node's client address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub node: u64,
    pub addr: SocketAddr,
}

/// How hard a call tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How long one write attempt waits for its answer before the next
    /// attempt. Default 3 s: a commit under TCG takes tens of ms; a node
    /// gives up on a write itself after `max(4 × election, 3 s)` and
    /// answers `Timeout`.
    pub write_attempt: Duration,
    /// How long one read attempt waits. Default 2 s.
    pub read_attempt: Duration,
    /// Total patience of one call, across attempts and nodes. Default 30 s:
    /// enough for a leader election under TCG after a crash.
    pub deadline: Duration,
    /// First pause after an unsuccessful attempt; doubles up to
    /// `max_backoff`. Default 50 ms.
    pub initial_backoff: Duration,
    /// Default 1 s.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            write_attempt: Duration::from_secs(3),
            read_attempt: Duration::from_secs(2),
            deadline: Duration::from_secs(30),
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
        }
    }
}

/// Where in the log an answer was produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// The node that answered.
    pub node: u64,
    /// Submit: the entry that carried the command; query: the applied index
    /// the read was served at.
    pub index: u64,
    pub term: u64,
    /// Hybrid logical clock timestamp (packed).
    pub hlc: u64,
    /// The bank's receipt-chain head after `index`.
    pub chain_hash: [u8; 32],
}

/// A committed and applied submit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    pub position: Position,
    /// One outcome per command of the entry, in order.
    pub outcomes: Vec<Outcome>,
    /// Attempts sent for this call (1 if the first was answered).
    pub attempts: u32,
}

/// A linearizable read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Read<T> {
    pub position: Position,
    pub value: T,
}

/// The result of one transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferResult {
    pub transfer: Transfer,
    /// The bank's outcome for this submit. `Exists` means the same transfer
    /// had already applied (an earlier attempt of this call, or an earlier
    /// call with the same id); see `applied_at`.
    pub outcome: Outcome,
    pub committed: Committed,
    /// For `Ok`: the entry index that applied it; for `Exists`: the index of
    /// the earlier application (queried). `None` otherwise.
    pub applied_at: Option<u64>,
}

/// Why a call failed.
#[derive(Debug)]
pub enum ClientError {
    /// No node answered anything within the deadline.
    Unreachable {
        tried: Vec<SocketAddr>,
        /// Nodes whose port the host reported closed (no process behind it).
        refused: Vec<SocketAddr>,
        waited: Duration,
        /// A write was sent at least once, so it may still apply.
        maybe_applied: bool,
    },
    /// Nodes answered, but none could serve the request in time (no
    /// leader, no quorum, overloaded); a write was never proposed.
    Unavailable { last: String, waited: Duration },
    /// A write was sent and may have applied, but no answer confirmed it
    /// within the deadline. Retry with the same ids or query the outcome.
    OutcomeUnknown { last: String, waited: Duration },
    /// A node refused the request as malformed (not retried).
    BadRequest { node: u64 },
    /// A node refused the command: a signature does not verify (not retried).
    BadSignature { node: u64 },
    /// The request cannot be encoded (e.g. too many commands for a datagram).
    Encode(String),
    /// A node answered something that breaks the protocol.
    Protocol(String),
    /// A local socket error.
    Io(std::io::Error),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |addrs: &[SocketAddr]| {
            addrs
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            ClientError::Unreachable {
                tried,
                refused,
                waited,
                maybe_applied,
            } => {
                write!(
                    f,
                    "no node answered within {:.1} s (tried UDP {})",
                    waited.as_secs_f64(),
                    list(tried)
                )?;
                if !refused.is_empty() {
                    write!(f, "; nothing listens on {}", list(refused))?;
                }
                if *maybe_applied {
                    write!(
                        f,
                        "; if a node received the request it may still apply: query it"
                    )?;
                }
                Ok(())
            }
            ClientError::Unavailable { last, waited } => write!(
                f,
                "the cluster could not serve the request within {:.1} s (last answer: {last}); no leader or no quorum?",
                waited.as_secs_f64()
            ),
            ClientError::OutcomeUnknown { last, waited } => write!(
                f,
                "outcome unknown: the request was sent but not confirmed within {:.1} s (last answer: {last}); it may still apply: query it",
                waited.as_secs_f64()
            ),
            ClientError::BadRequest { node } => write!(
                f,
                "node {node} refused the request as malformed (wrong cluster id, or a command it cannot decode)"
            ),
            ClientError::BadSignature { node } => write!(
                f,
                "node {node} refused the command: a signature does not verify (wrong key for the debited account, or not the operator key for an account creation)"
            ),
            ClientError::Encode(why) => write!(f, "cannot encode the request: {why}"),
            ClientError::Protocol(why) => write!(f, "protocol error: {why}"),
            ClientError::Io(e) => write!(f, "client socket: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// What one attempt ended with.
enum Answer {
    Ok(u64, ReplyBody),
    Redirect(Option<u64>),
    Retry(String),
    Timeout,
    Bad(u64),
    BadSignature(u64),
    Silent,
}

/// A cluster client. Not thread-safe; one per thread.
/// Allowance for this host's clock being ahead of the cluster's HLC: the
/// default validity is the genesis window minus this, so a command signed
/// "now + validity" is not refused `ExpiryTooFar`.
pub const EXPIRY_SKEW_MARGIN_MS: u64 = 30_000;
/// How long a command this client signs stays valid by default (the
/// default genesis window, 10 min, minus [`EXPIRY_SKEW_MARGIN_MS`]).
pub const DEFAULT_VALIDITY_MS: u64 = DEFAULT_MAX_EXPIRY_WINDOW_MS - EXPIRY_SKEW_MARGIN_MS;

/// Milliseconds since the Unix epoch on this host (the unit of the
/// cluster's HLC).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The `expires_at` a command signed now gets by default.
pub fn default_expires_at() -> u64 {
    unix_ms() + DEFAULT_VALIDITY_MS
}

/// Smallest allowance for this host's clock being ahead of the cluster's
/// HLC. A node's wall clock starts from its RTC, which counts whole
/// seconds (half a second of error either way), plus its boot's drift.
pub const MIN_EXPIRY_SKEW_MARGIN_MS: u64 = 5_000;

/// How long a command may stay valid in a cluster whose genesis window is
/// `window_ms`: the window minus a clock-skew margin (1/20 of it, at least
/// [`MIN_EXPIRY_SKEW_MARGIN_MS`] and at most [`EXPIRY_SKEW_MARGIN_MS`]),
/// never below 1 ms.
pub fn validity_for_window(window_ms: u64) -> u64 {
    let margin = (window_ms / 20).clamp(MIN_EXPIRY_SKEW_MARGIN_MS, EXPIRY_SKEW_MARGIN_MS);
    window_ms.saturating_sub(margin).max(1)
}

pub struct Client {
    cluster_id: u64,
    endpoints: Vec<Endpoint>,
    sockets: Vec<UdpSocket>,
    policy: RetryPolicy,
    /// Header sender id of our requests (random).
    client_id: u64,
    next_request: u64,
    /// Bank session (`Transfer::client`) and its next sequence number.
    session: u128,
    next_seq: u64,
    /// `expires_at` of every command this client signs; `None`: each gets
    /// now + `validity_ms` when it is signed.
    expires_at: Option<u64>,
    /// Validity of a command signed now ([`DEFAULT_VALIDITY_MS`] unless
    /// [`Client::with_window`] says the cluster's window).
    validity_ms: u64,
    /// Index of the endpoint to try first (the last one that answered Ok).
    preferred: usize,
}

impl Client {
    /// A client of cluster `cluster_id` whose nodes listen on `endpoints`,
    /// with a random bank session.
    pub fn new(cluster_id: u64, endpoints: Vec<Endpoint>) -> Result<Client, ClientError> {
        if endpoints.is_empty() {
            return Err(ClientError::Encode("no node endpoints given".into()));
        }
        let random = crate::plan::random_bytes::<32>().map_err(ClientError::Io)?;
        let word = |i: usize| u64::from_le_bytes(random[i..i + 8].try_into().expect("8 bytes"));
        let mut sockets = Vec::with_capacity(endpoints.len());
        for endpoint in &endpoints {
            let local: SocketAddr = if endpoint.addr.ip().is_loopback() {
                "127.0.0.1:0".parse().expect("literal")
            } else {
                "0.0.0.0:0".parse().expect("literal")
            };
            let socket = UdpSocket::bind(local).map_err(ClientError::Io)?;
            socket.connect(endpoint.addr).map_err(ClientError::Io)?;
            socket.set_nonblocking(true).map_err(ClientError::Io)?;
            sockets.push(socket);
        }
        Ok(Client {
            cluster_id,
            endpoints,
            sockets,
            policy: RetryPolicy::default(),
            client_id: word(0),
            next_request: word(8) >> 1,
            session: u128::from(word(16)) << 64 | u128::from(word(24)),
            next_seq: 1,
            expires_at: None,
            validity_ms: DEFAULT_VALIDITY_MS,
            preferred: 0,
        })
    }

    /// Replaces the retry policy.
    pub fn with_policy(mut self, policy: RetryPolicy) -> Client {
        self.policy = policy;
        self
    }

    /// Uses bank session `session` with its next sequence number `next_seq`
    /// for the transfers of this client (e.g. session = transfer id, seq 1
    /// for a one-shot CLI call, so a re-run gets the first answer back).
    pub fn with_session(mut self, session: u128, next_seq: u64) -> Client {
        self.session = session;
        self.next_seq = next_seq;
        self
    }

    /// Signs every command with this `expires_at` (cluster HLC ms) instead
    /// of "now + [`DEFAULT_VALIDITY_MS`]": re-running a one-shot CLI call
    /// with the same id and expiry re-sends the same signed bytes, so it
    /// gets the first answer back rather than `ExistsWithDifferentFields`.
    pub fn with_expires_at(mut self, expires_at: u64) -> Client {
        self.expires_at = Some(expires_at);
        self
    }

    /// Signs each command valid for [`validity_for_window`]`(window_ms)`,
    /// the cluster's genesis `dedup_window_ms` (a longer validity would be
    /// refused `ExpiryTooFar`).
    pub fn with_window(mut self, window_ms: u64) -> Client {
        self.validity_ms = validity_for_window(window_ms);
        self
    }

    fn next_expires_at(&self) -> u64 {
        self.expires_at
            .unwrap_or_else(|| unix_ms() + self.validity_ms)
    }

    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    /// Submits an encoded bank entry (`Entry::encode`) and waits for its
    /// outcomes.
    pub fn submit(&mut self, entry: &[u8]) -> Result<Committed, ClientError> {
        if entry.len() > MAX_SUBMIT_BYTES {
            return Err(ClientError::Encode(format!(
                "entry of {} bytes; one datagram carries at most {MAX_SUBMIT_BYTES}",
                entry.len()
            )));
        }
        let (node, body, attempts) = self.call(
            RequestOp::Submit {
                entry: entry.to_vec(),
            },
            true,
        )?;
        let (position, outcome) = position(node, body)?;
        let outcomes =
            Outcome::decode_all(&outcome).map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(Committed {
            position,
            outcomes,
            attempts,
        })
    }

    /// Submits a single signed command and returns its one outcome.
    fn submit_one(
        &mut self,
        command: continuum_bank::SignedCommand,
    ) -> Result<(Outcome, Committed), ClientError> {
        let committed = self.submit(&Entry::single(command).encode())?;
        match committed.outcomes.as_slice() {
            [outcome] => Ok((*outcome, committed)),
            other => Err(ClientError::Protocol(format!(
                "{} outcomes for one command",
                other.len()
            ))),
        }
    }

    /// Opens account `id` owned by `owner`, signed by the `operator` key.
    /// `Exists` means the account is already there with this owner.
    pub fn create_account(
        &mut self,
        operator: &SigningKey,
        id: u128,
        owner: &VerifyingKey,
        flags: AccountFlags,
    ) -> Result<(Outcome, Committed), ClientError> {
        let command = CreateAccount {
            id,
            owner: owner.to_bytes(),
            flags,
            expires_at: self.next_expires_at(),
        }
        .sign(operator, u128::from(self.cluster_id));
        self.submit_one(command)
    }

    /// Moves `amount` from `from` to `to` under transfer id `id`, signed by
    /// `owner` (the key of `from`), in this client's session.
    pub fn transfer(
        &mut self,
        owner: &SigningKey,
        id: u128,
        from: u128,
        to: u128,
        amount: u64,
    ) -> Result<TransferResult, ClientError> {
        let transfer = Transfer {
            id,
            from,
            to,
            amount,
            client: self.session,
            seq: self.next_seq,
            expires_at: self.next_expires_at(),
        };
        self.next_seq += 1;
        let (outcome, committed) =
            self.submit_one(transfer.sign(owner, u128::from(self.cluster_id)))?;
        let applied_at = match outcome {
            Outcome::Ok => Some(committed.position.index),
            Outcome::Exists => self.outcome(id)?.value.applied_at(),
            _ => None,
        };
        Ok(TransferResult {
            transfer,
            outcome,
            committed,
            applied_at,
        })
    }

    /// Balance of `account` (`None`: no such account).
    pub fn balance(&mut self, account: u128) -> Result<Read<Option<u64>>, ClientError> {
        let (node, body, _) = self.call(RequestOp::QueryBalance { account }, false)?;
        let (position, answer) = position(node, body)?;
        let value = decode_balance_answer(&answer)
            .map_err(|e| ClientError::Protocol(format!("balance answer: {e:?}")))?;
        Ok(Read { position, value })
    }

    /// What the cluster knows about transfer `transfer_id`: applied or
    /// rejected (and by which entry) while it is inside its dedup window,
    /// else "not decided as of log time T" — expired from the dedup window
    /// if its `expires_at` is below T ([`TransferAnswer::expired`]).
    pub fn outcome(&mut self, transfer_id: u128) -> Result<Read<TransferAnswer>, ClientError> {
        let (node, body, _) = self.call(RequestOp::QueryOutcome { transfer_id }, false)?;
        let (position, answer) = position(node, body)?;
        let value = decode_transfer_answer(&answer)
            .map_err(|e| ClientError::Protocol(format!("outcome answer: {e:?}")))?;
        Ok(Read { position, value })
    }

    /// The applied chain head (a linearizable read: proves a leader with a
    /// quorum exists).
    pub fn chain_head(&mut self) -> Result<Read<()>, ClientError> {
        let (node, body, _) = self.call(RequestOp::QueryChainHead, false)?;
        let (position, _) = position(node, body)?;
        Ok(Read {
            position,
            value: (),
        })
    }

    /// Sends an operator-signed membership command
    /// (`continuum_node::membership`) to the leader, following redirects.
    /// Returns the leader's answer: `Ok` (the change committed and applied
    /// there, at that index) or `MembershipRefused` (nothing appended).
    pub fn change_membership(&mut self, command: Vec<u8>) -> Result<(u64, ReplyBody), ClientError> {
        let (node, body, _) = self.call(RequestOp::ChangeMembership { command }, true)?;
        Ok((node, body))
    }

    /// Runs one call to completion: attempts across nodes until an `Ok`, a
    /// `BadRequest` or the deadline. Returns the answering node, the body
    /// and the number of attempts.
    fn call(&mut self, op: RequestOp, write: bool) -> Result<(u64, ReplyBody, u32), ClientError> {
        let started = Instant::now();
        let deadline = started + self.policy.deadline;
        let attempt_wait = if write {
            self.policy.write_attempt
        } else {
            self.policy.read_attempt
        };
        let mut ids = BTreeSet::new();
        let mut target = self.preferred;
        let mut backoff = self.policy.initial_backoff;
        let mut attempts = 0u32;
        let mut free_redirects = 0u32;
        let mut answered = false;
        let mut maybe_applied = false;
        let mut last = String::from("none");
        // Nodes whose port refused since our last send to them (fast path),
        // and nodes that refused at some point and never answered (report).
        let mut refused = BTreeSet::new();
        let mut closed = BTreeSet::new();
        loop {
            let request_id = self.next_request;
            self.next_request = self.next_request.wrapping_add(1);
            ids.insert(request_id);
            let bytes = ClientRequest {
                cluster_id: self.cluster_id,
                client_id: self.client_id,
                request_id,
                op: op.clone(),
            }
            .encode()
            .map_err(|e| ClientError::Encode(format!("{e:?}")))?;
            attempts += 1;
            let sent = match self.sockets[target].send(&bytes) {
                Ok(_) => true,
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => false,
                Err(e) => return Err(ClientError::Io(e)),
            };
            if sent && write {
                maybe_applied = true;
            }
            if sent {
                // A mark from an earlier refusal is stale once a send goes
                // through; a closed port refuses again within microseconds.
                refused.remove(&target);
            }
            let answer = if sent {
                let until = (Instant::now() + attempt_wait).min(deadline);
                self.receive(&ids, target, until, &mut refused, &mut closed)?
            } else {
                refused.insert(target);
                closed.insert(target);
                Answer::Silent
            };
            let mut follow = None;
            match answer {
                Answer::Ok(node, body) => {
                    if let Some(i) = self.endpoints.iter().position(|e| e.node == node) {
                        self.preferred = i;
                    }
                    return Ok((node, body, attempts));
                }
                Answer::Bad(node) => return Err(ClientError::BadRequest { node }),
                Answer::BadSignature(node) => return Err(ClientError::BadSignature { node }),
                Answer::Redirect(hint) => {
                    answered = true;
                    last = format!(
                        "redirect to {}",
                        hint.map_or("an unknown leader".into(), |h| format!("node {h}"))
                    );
                    follow = hint.and_then(|h| self.endpoints.iter().position(|e| e.node == h));
                }
                Answer::Retry(why) => {
                    answered = true;
                    last = why;
                }
                Answer::Timeout => {
                    answered = true;
                    last = "timed out".into();
                }
                Answer::Silent => {}
            }
            if Instant::now() >= deadline {
                let waited = started.elapsed();
                if !answered {
                    let addr = |i: &usize| self.endpoints[*i].addr;
                    return Err(ClientError::Unreachable {
                        tried: self.endpoints.iter().map(|e| e.addr).collect(),
                        refused: closed.iter().map(addr).collect(),
                        waited,
                        maybe_applied,
                    });
                }
                return Err(if maybe_applied {
                    ClientError::OutcomeUnknown { last, waited }
                } else {
                    ClientError::Unavailable { last, waited }
                });
            }
            match follow {
                Some(i) if free_redirects < MAX_FREE_REDIRECTS && i != target => {
                    free_redirects += 1;
                    target = i;
                }
                _ => {
                    free_redirects = 0;
                    target = (target + 1) % self.endpoints.len();
                    let pause = backoff.min(deadline.saturating_duration_since(Instant::now()));
                    std::thread::sleep(pause);
                    backoff = (backoff * 2).min(self.policy.max_backoff);
                }
            }
        }
    }

    /// Waits until `until` for a reply to any of `ids` on any socket; gives
    /// up early when the port of `target` (this attempt's node) is closed.
    fn receive(
        &mut self,
        ids: &BTreeSet<u64>,
        target: usize,
        until: Instant,
        refused: &mut BTreeSet<usize>,
        closed: &mut BTreeSet<usize>,
    ) -> Result<Answer, ClientError> {
        let mut buf = [0u8; MAX_REPLY_BYTES];
        loop {
            for (i, socket) in self.sockets.iter().enumerate() {
                loop {
                    match socket.recv(&mut buf) {
                        Ok(len) => {
                            refused.remove(&i);
                            closed.remove(&i);
                            let Ok(reply) = ClientReply::decode(&buf[..len]) else {
                                continue; // not a reply: ignore it
                            };
                            if reply.cluster_id != self.cluster_id
                                || !ids.contains(&reply.request_id)
                            {
                                continue; // another cluster's, or a finished call's
                            }
                            return Ok(match reply.body {
                                // A refused membership command is an answer:
                                // the caller decides whether to retry it.
                                ReplyBody::Ok { .. } | ReplyBody::MembershipRefused { .. } => {
                                    Answer::Ok(reply.node, reply.body)
                                }
                                ReplyBody::Redirect { leader_hint } => {
                                    Answer::Redirect(leader_hint)
                                }
                                ReplyBody::Error(ReplyError::BadRequest) => Answer::Bad(reply.node),
                                ReplyBody::Error(ReplyError::BadSignature) => {
                                    Answer::BadSignature(reply.node)
                                }
                                ReplyBody::Error(ReplyError::Timeout) => Answer::Timeout,
                                ReplyBody::Error(e) => {
                                    Answer::Retry(format!("{e} from node {}", reply.node))
                                }
                            });
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                            refused.insert(i);
                            closed.insert(i);
                            break;
                        }
                        Err(e) => return Err(ClientError::Io(e)),
                    }
                }
            }
            // Nothing listens there: waiting cannot help this attempt (a
            // late answer to an earlier one is still taken by the next).
            if refused.contains(&target) || Instant::now() >= until {
                return Ok(Answer::Silent);
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

fn position(node: u64, body: ReplyBody) -> Result<(Position, Vec<u8>), ClientError> {
    match body {
        ReplyBody::Ok {
            index,
            term,
            hlc,
            chain_hash,
            outcome,
        } => Ok((
            Position {
                node,
                index,
                term,
                hlc,
                chain_hash,
            },
            outcome,
        )),
        other => Err(ClientError::Protocol(format!("expected Ok, got {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_leaves_a_skew_margin_inside_the_window() {
        assert_eq!(
            validity_for_window(DEFAULT_MAX_EXPIRY_WINDOW_MS),
            DEFAULT_VALIDITY_MS
        );
        assert_eq!(validity_for_window(10_000), 5_000);
        assert_eq!(validity_for_window(200_000), 190_000);
        assert_eq!(validity_for_window(3_000), 1);
        assert_eq!(
            validity_for_window(86_400_000),
            86_400_000 - EXPIRY_SKEW_MARGIN_MS
        );
    }

    #[test]
    fn unreachable_names_the_ports_quickly() {
        // Bind and drop: nothing listens on these ports any more.
        let addrs: Vec<SocketAddr> = (0..2)
            .map(|_| {
                UdpSocket::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
            })
            .collect();
        let endpoints = addrs
            .iter()
            .enumerate()
            .map(|(i, &addr)| Endpoint {
                node: i as u64 + 1,
                addr,
            })
            .collect();
        let mut client = Client::new(7, endpoints).unwrap().with_policy(RetryPolicy {
            deadline: Duration::from_secs(1),
            ..RetryPolicy::default()
        });
        let started = Instant::now();
        let error = client.balance(5).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3));
        let text = error.to_string();
        for addr in &addrs {
            assert!(text.contains(&addr.to_string()), "{text}");
        }
        assert!(
            matches!(error, ClientError::Unreachable { maybe_applied: false, ref refused, .. } if refused.len() == 2),
            "{error:?}"
        );
    }
}
