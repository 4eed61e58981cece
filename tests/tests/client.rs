//! The cluster client against fake nodes on loopback (no QEMU): each fake
//! node is a UDP server thread speaking the real client wire format; the
//! "leader" runs a real `continuum_bank::Ledger`. Followers redirect or say
//! `Unavailable`, replies get dropped or delayed, the leader can stall
//! (`Timeout`), and the client must still end with the truth: one
//! application per transfer id, the right outcome, and a clear error when
//! the truth is unknown.

use continuum_bank::{AccountFlags, GenesisConfig, Ledger, Limits, Outcome};
use continuum_harness::client::{Client, ClientError, Endpoint, RetryPolicy};
use continuum_harness::plan::derived_key;
use continuum_net::client::{
    encode_balance_answer, encode_transfer_answer, ClientReply, ClientRequest, ReplyBody,
    ReplyError, RequestOp, TransferAnswer,
};
use ed25519_dalek::SigningKey;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const CLUSTER: u64 = 99;
const SUPPLY: u64 = 1_000_000;

/// How a fake node treats requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Applies writes to the ledger and serves reads.
    Leader,
    /// Answers `Redirect` naming this node.
    RedirectTo(u64),
    /// Answers `Unavailable`.
    Unavailable,
    /// Answers `Timeout` to writes (never commits), `Unavailable` to reads.
    Stalled,
    /// Never answers.
    Mute,
}

struct Shared {
    ledger: Ledger,
    index: u64,
    /// Leader: Ok replies to writes still to be dropped (applied, not answered).
    drop_write_replies: u32,
    /// Leader: delay before answering a write.
    write_delay: Duration,
    /// Submits applied (each is one log entry).
    applied_entries: u64,
}

struct FakeCluster {
    shared: Arc<Mutex<Shared>>,
    endpoints: Vec<Endpoint>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

fn operator() -> SigningKey {
    derived_key("fake", "operator", 0)
}

fn owner(account: u128) -> SigningKey {
    derived_key("fake", "owner", account as u8)
}

impl FakeCluster {
    fn start(roles: &[Role]) -> FakeCluster {
        let ledger = Ledger::genesis(GenesisConfig {
            cluster_id: u128::from(CLUSTER),
            operator_key: operator().verifying_key().to_bytes(),
            reserve_account: 1,
            supply: SUPPLY,
            limits: Limits::default(),
            max_expiry_window_ms: continuum_bank::DEFAULT_MAX_EXPIRY_WINDOW_MS,
        })
        .unwrap();
        let shared = Arc::new(Mutex::new(Shared {
            ledger,
            index: 0,
            drop_write_replies: 0,
            write_delay: Duration::ZERO,
            applied_entries: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let mut endpoints = Vec::new();
        let mut threads = Vec::new();
        for (i, &role) in roles.iter().enumerate() {
            let node = i as u64 + 1;
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            endpoints.push(Endpoint {
                node,
                addr: socket.local_addr().unwrap(),
            });
            let shared = shared.clone();
            let stop = stop.clone();
            threads.push(std::thread::spawn(move || {
                serve(node, role, socket, shared, stop)
            }));
        }
        FakeCluster {
            shared,
            endpoints,
            stop,
            threads,
        }
    }

    fn client(&self, deadline: Duration) -> Client {
        Client::new(CLUSTER, self.endpoints.clone())
            .unwrap()
            .with_policy(RetryPolicy {
                write_attempt: Duration::from_millis(300),
                read_attempt: Duration::from_millis(300),
                deadline,
                initial_backoff: Duration::from_millis(5),
                max_backoff: Duration::from_millis(50),
            })
    }

    fn balance(&self, account: u128) -> Option<u64> {
        self.shared.lock().unwrap().ledger.balance(account)
    }
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn reply(node: u64, request: &ClientRequest, body: ReplyBody) -> Vec<u8> {
    ClientReply {
        cluster_id: request.cluster_id,
        node,
        request_id: request.request_id,
        body,
    }
    .encode()
    .unwrap()
}

fn serve(
    node: u64,
    role: Role,
    socket: UdpSocket,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
) {
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let Ok((len, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let Ok(request) = ClientRequest::decode(&buf[..len]) else {
            continue;
        };
        let write = matches!(request.op, RequestOp::Submit { .. });
        let body = match role {
            Role::Mute => continue,
            Role::RedirectTo(leader) => ReplyBody::Redirect {
                leader_hint: Some(leader),
            },
            Role::Unavailable => ReplyBody::Error(ReplyError::Unavailable),
            Role::Stalled if write => ReplyBody::Error(ReplyError::Timeout),
            Role::Stalled => ReplyBody::Error(ReplyError::Unavailable),
            Role::Leader => {
                let mut state = shared.lock().unwrap();
                if request.cluster_id != CLUSTER {
                    ReplyBody::Error(ReplyError::BadRequest)
                } else {
                    match leader_answer(&mut state, &request.op) {
                        None => ReplyBody::Error(ReplyError::BadRequest),
                        Some(body) => {
                            if write && state.drop_write_replies > 0 {
                                state.drop_write_replies -= 1;
                                continue;
                            }
                            let delay = if write {
                                state.write_delay
                            } else {
                                Duration::ZERO
                            };
                            drop(state);
                            if !delay.is_zero() {
                                let socket = socket.try_clone().unwrap();
                                let bytes = reply(node, &request, body);
                                std::thread::spawn(move || {
                                    std::thread::sleep(delay);
                                    let _ = socket.send_to(&bytes, from);
                                });
                                continue;
                            }
                            body
                        }
                    }
                }
            }
        };
        let _ = socket.send_to(&reply(node, &request, body), from);
    }
}

/// The leader's answer, or `None` for bytes that are not a bank entry.
fn leader_answer(state: &mut Shared, op: &RequestOp) -> Option<ReplyBody> {
    let mut answer = Vec::new();
    match op {
        RequestOp::Submit { entry: command } => {
            continuum_bank::Entry::decode(command).ok()?;
            state.index += 1;
            state.applied_entries += 1;
            // Log time: this host's clock, like a real leader's HLC.
            let now = continuum_harness::client::unix_ms();
            let result = state.ledger.apply(state.index, now, command);
            for outcome in &result.outcomes {
                outcome.encode_into(&mut answer);
            }
        }
        RequestOp::QueryBalance { account } => {
            encode_balance_answer(state.ledger.balance(*account), &mut answer)
        }
        RequestOp::QueryOutcome { transfer_id } => {
            let known = match state.ledger.transfer_outcome(*transfer_id) {
                Some(d) if d.applied() => TransferAnswer::Applied { index: d.index },
                Some(d) => TransferAnswer::Rejected {
                    index: d.index,
                    outcome_code: d.outcome.code(),
                },
                None => TransferAnswer::NotDecided {
                    log_time_ms: state.ledger.log_time_ms(),
                },
            };
            encode_transfer_answer(&known, &mut answer)
        }
        RequestOp::QueryChainHead => {}
        // This fake leader has no membership.
        RequestOp::ChangeMembership { .. } => return None,
    }
    Some(ReplyBody::Ok {
        index: state.index,
        term: 3,
        hlc: 0,
        chain_hash: state.ledger.chain_head().1,
        outcome: answer,
    })
}

fn open_accounts(client: &mut Client, ids: &[u128]) {
    for &id in ids {
        let (outcome, _) = client
            .create_account(
                &operator(),
                id,
                &owner(id).verifying_key(),
                AccountFlags::empty(),
            )
            .unwrap();
        assert_eq!(outcome, Outcome::Ok, "account {id}");
    }
}

#[test]
fn redirects_are_followed_and_outcomes_come_back_typed() {
    // Node 1 redirects to node 3, node 2 is unavailable, node 3 leads.
    let fake = FakeCluster::start(&[Role::RedirectTo(3), Role::Unavailable, Role::Leader]);
    let mut client = fake.client(Duration::from_secs(5));
    open_accounts(&mut client, &[10, 11]);
    let funded = client.transfer(&operator(), 500, 1, 10, 700).unwrap();
    assert_eq!(funded.outcome, Outcome::Ok);
    assert_eq!(funded.applied_at, Some(funded.committed.position.index));
    assert_eq!(funded.committed.position.node, 3);

    let moved = client.transfer(&owner(10), 501, 10, 11, 200).unwrap();
    assert_eq!(moved.outcome, Outcome::Ok);
    let broke = client.transfer(&owner(10), 502, 10, 11, 10_000).unwrap();
    assert_eq!(broke.outcome, Outcome::InsufficientFunds);
    assert_eq!(broke.applied_at, None);
    let forged = client.transfer(&owner(11), 503, 10, 11, 1).unwrap();
    assert_eq!(forged.outcome, Outcome::BadSignature);
    let nowhere = client.transfer(&owner(10), 504, 10, 12, 1).unwrap();
    assert_eq!(nowhere.outcome, Outcome::NoSuchCreditAccount);

    let balance = client.balance(10).unwrap();
    assert_eq!(balance.value, Some(500));
    assert_eq!(balance.position.node, 3);
    assert_eq!(client.balance(11).unwrap().value, Some(200));
    assert_eq!(client.balance(12).unwrap().value, None);
    assert_eq!(
        client.outcome(501).unwrap().value.applied_at(),
        Some(moved.committed.position.index)
    );
    assert_eq!(client.outcome(502).unwrap().value.applied_at(), None);
    let head = client.chain_head().unwrap();
    assert_eq!(
        head.position.chain_hash,
        fake.shared.lock().unwrap().ledger.chain_head().1
    );
}

#[test]
fn a_lost_reply_is_retried_and_the_transfer_applies_once() {
    let fake = FakeCluster::start(&[Role::Leader, Role::RedirectTo(1), Role::Unavailable]);
    let mut client = fake.client(Duration::from_secs(5));
    open_accounts(&mut client, &[10]);
    let entries_before = fake.shared.lock().unwrap().applied_entries;
    // The first two answers are lost after the leader applied the transfer.
    fake.shared.lock().unwrap().drop_write_replies = 2;
    let result = client.transfer(&operator(), 900, 1, 10, 42).unwrap();
    assert!(result.committed.attempts >= 3, "{result:?}");
    // The retry found the transfer already applied: same id, same fields.
    assert_eq!(result.outcome, Outcome::Exists);
    let first_index = entries_before + 1;
    assert_eq!(result.applied_at, Some(first_index));
    assert_eq!(fake.balance(10), Some(42), "applied exactly once");
    assert_eq!(fake.balance(1), Some(SUPPLY - 42));
}

#[test]
fn a_late_answer_to_an_earlier_attempt_is_taken() {
    let fake = FakeCluster::start(&[Role::Leader, Role::Mute]);
    let mut client = fake.client(Duration::from_secs(5));
    open_accounts(&mut client, &[10]);
    // Longer than one attempt (300 ms): the client moves on to the mute
    // node, and the first attempt's answer arrives meanwhile.
    fake.shared.lock().unwrap().write_delay = Duration::from_millis(450);
    let result = client.transfer(&operator(), 77, 1, 10, 5).unwrap();
    assert_eq!(result.outcome, Outcome::Ok);
    assert!(result.committed.attempts >= 2, "{result:?}");
    assert_eq!(fake.balance(10), Some(5));
}

#[test]
fn a_stalled_cluster_gives_outcome_unknown_not_failure() {
    let fake = FakeCluster::start(&[Role::Stalled, Role::Stalled, Role::Stalled]);
    let mut client = fake.client(Duration::from_millis(800));
    let error = client.transfer(&operator(), 1, 1, 10, 5).unwrap_err();
    assert!(
        matches!(error, ClientError::OutcomeUnknown { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("query it"), "{error}");
    // Reads are never "unknown": they just were not served.
    let error = client.balance(1).unwrap_err();
    assert!(
        matches!(error, ClientError::Unavailable { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("unavailable"), "{error}");
}

#[test]
fn a_write_nobody_answers_may_have_applied() {
    let fake = FakeCluster::start(&[Role::Mute, Role::Mute]);
    let mut client = fake.client(Duration::from_millis(700));
    let error = client.transfer(&operator(), 1, 1, 10, 5).unwrap_err();
    match &error {
        ClientError::Unreachable {
            tried,
            refused,
            maybe_applied,
            ..
        } => {
            assert_eq!(tried.len(), 2);
            assert!(refused.is_empty(), "the ports are open, just silent");
            assert!(*maybe_applied);
        }
        other => panic!("{other:?}"),
    }
    let text = error.to_string();
    for endpoint in &fake.endpoints {
        assert!(text.contains(&endpoint.addr.to_string()), "{text}");
    }
}

#[test]
fn bad_requests_are_not_retried() {
    let fake = FakeCluster::start(&[Role::Leader]);
    let mut client = fake.client(Duration::from_secs(5));
    let error = client.submit(b"not a bank entry").unwrap_err();
    assert!(
        matches!(error, ClientError::BadRequest { node: 1 }),
        "{error:?}"
    );
    assert_eq!(fake.shared.lock().unwrap().applied_entries, 0);
    // A client of another cluster is refused the same way.
    let mut stranger = Client::new(CLUSTER + 1, fake.endpoints.clone()).unwrap();
    assert!(matches!(
        stranger.balance(1).unwrap_err(),
        ClientError::BadRequest { node: 1 }
    ));
    let oversized = vec![1u8; 5000];
    assert!(matches!(
        client.submit(&oversized).unwrap_err(),
        ClientError::Encode(_)
    ));
}
