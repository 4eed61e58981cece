//! The causal trace of a client write (issue #19): a bounded per-node
//! ring of stamped events, the query that picks one transfer's events out
//! of it, and the causality check over the events of all nodes.
//!
//! ## What is recorded
//! Per client write, on the nodes it touches:
//!
//! | event | where | fields |
//! |---|---|---|
//! | `request` | contact node, on receipt | origin (itself), request tag, first transfer id in the entry |
//! | `forward_sent` / `forward_received` | contact → leader | origin, request_tag, peer |
//! | `proposed` | leader | origin, request_tag, entry index, term, the entry's HLC |
//! | `append_sent` / `append_received` | leader ↔ each follower | first..=last index carried, term, peer |
//! | `ack_sent` / `ack_received` | follower ↔ leader | the acknowledged match index, term, peer |
//! | `committed` | every node, as its commit index advances | first..=last newly committed index |
//! | `applied` | every replica | index, term, origin, request_tag, receipt-chain head after it |
//! | `replied` | contact node | origin, request_tag, index (an `Ok` reply handed to the network) |
//!
//! Every event carries the node, its position in the node's program order
//! (`seq`), and the node's clocks *at* the event ([`Stamp`]: Lamport, HLC,
//! local monotonic µs). A message event also carries the stamp of the
//! envelope that moved it (`carried`): a send's own stamp is the
//! envelope's, a receive's is the clock after merging it, so a send and its
//! receive pair up by (sender, carried stamp).
//!
//! Only messages that move a write are recorded: forwards, AppendEntries
//! carrying entries, and successful AppendResponses that advance what the
//! follower acknowledged (per peer and direction, so heartbeat answers do
//! not flood the ring). Votes, heartbeats, pings and chain checks are not.
//!
//! ## Bounds
//! The ring keeps the last [`TRACE_EVENTS`] events (2048 of 176 bytes:
//! 352 KiB per node); older ones are dropped and counted. At ~10
//! events per write on a leader that is the last ~200 writes; a follower
//! keeps more. One query answer holds at most [`MAX_TRACE_ANSWER`] events.
//!
//! ## Who stamps
//! This module owns no clock. The node reports its local events through a
//! sink the caller installs ([`crate::Node::set_trace_sink`]); the caller
//! stamps them with its clocks (a Lamport tick, an HLC reading, monotonic
//! time) and records them with [`TraceRing::local`]. The caller that wraps
//! bodies in envelopes records sends ([`TraceRing::sent`]) with the
//! envelope's stamp and receipts ([`TraceRing::received`]) with the stamp
//! it carried and the merged clocks. The kernel and the node simulator
//! (`node/tests/cluster.rs`) do the same with `continuum-clock`.
//!
//! ## The causality check
//! [`check`] takes the merged events of every node and verifies every
//! happens-before edge it can see: program order on a node (by `seq`) and
//! send → receive (the carried stamp against the receive's stamp, whether
//! or not the send is still in the sender's ring). Every edge must strictly
//! increase **both** Lamport and HLC. A violation is returned, not mended:
//! an HLC that refused a peer's stamp as too far ahead (max-offset) stamps
//! the receive below the send, and that shows here.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::fmt::{self, Write};

use crate::wire::Body;
use continuum_raft::MessageBody;

/// Events one node's ring keeps; older ones are dropped (and counted).
pub const TRACE_EVENTS: usize = 2048;
/// Most events one query answers with (the first ones in program order).
pub const MAX_TRACE_ANSWER: usize = 64;
/// Most transfer ids a `recent` query lists (newest first).
pub const MAX_RECENT: usize = 16;

/// A node's clocks at one event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    /// Lamport clock.
    pub lamport: u64,
    /// Packed HLC (48-bit ms ‖ 16-bit logical).
    pub hlc: u64,
    /// Local monotonic time, µs since the node booted.
    pub local_us: u64,
}

/// What happened (see the module doc's table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A client write arrived at its contact node.
    Request,
    /// The contact node forwarded it to the leader.
    ForwardSent,
    /// The leader received the forward.
    ForwardReceived,
    /// The leader appended it to its log.
    Proposed,
    /// AppendEntries carrying entries, sent by the leader.
    AppendSent,
    /// The same, received by a follower.
    AppendReceived,
    /// A follower acknowledged entries up to an index.
    AckSent,
    /// The leader received that acknowledgement.
    AckReceived,
    /// The node's commit index advanced.
    Committed,
    /// The node applied an entry to its ledger.
    Applied,
    /// The contact node handed the client's `Ok` reply to the network.
    Replied,
}

const KINDS: [(Kind, &str); 11] = [
    (Kind::Request, "request"),
    (Kind::ForwardSent, "forward_sent"),
    (Kind::ForwardReceived, "forward_received"),
    (Kind::Proposed, "proposed"),
    (Kind::AppendSent, "append_sent"),
    (Kind::AppendReceived, "append_received"),
    (Kind::AckSent, "ack_sent"),
    (Kind::AckReceived, "ack_received"),
    (Kind::Committed, "committed"),
    (Kind::Applied, "applied"),
    (Kind::Replied, "replied"),
];

impl Kind {
    /// The name in the JSON answer.
    pub fn name(self) -> &'static str {
        KINDS
            .iter()
            .find(|(k, _)| *k == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }

    /// The kind a JSON name stands for.
    pub fn from_name(name: &str) -> Option<Kind> {
        KINDS.iter().find(|(_, n)| *n == name).map(|(k, _)| *k)
    }

    /// The send a receive of this kind pairs with.
    pub fn send_of(self) -> Option<Kind> {
        match self {
            Kind::ForwardReceived => Some(Kind::ForwardSent),
            Kind::AppendReceived => Some(Kind::AppendSent),
            Kind::AckReceived => Some(Kind::AckSent),
            _ => None,
        }
    }

    /// Whether this is the sending side of a message.
    pub fn is_send(self) -> bool {
        matches!(self, Kind::ForwardSent | Kind::AppendSent | Kind::AckSent)
    }
}

/// One recorded event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The node it happened on.
    pub node: u64,
    /// Its place in that node's program order (from 1, never reused).
    pub seq: u64,
    /// What happened.
    pub kind: Kind,
    /// The node's clocks at the event.
    pub at: Stamp,
    /// The other end of a message event (0 for a local event).
    pub peer: u64,
    /// The envelope's (Lamport, HLC) for a message event.
    pub carried: Option<(u64, u64)>,
    /// The node that took the client's request (0: not known here).
    pub origin: u64,
    /// Its request tag.
    pub request_tag: u64,
    /// First entry index concerned (0: none).
    pub first: u64,
    /// Last entry index concerned (an ack's match index).
    pub last: u64,
    /// Raft term (of the message, or the entry).
    pub term: u64,
    /// `proposed`: the HLC the leader stamped into the entry.
    pub entry_hlc: u64,
    /// `request`: the first transfer id in the entry (0: none).
    pub transfer: u128,
    /// `applied`: the receipt-chain head after the entry.
    pub head: Option<[u8; 32]>,
}

impl Event {
    fn blank(kind: Kind) -> Event {
        Event {
            node: 0,
            seq: 0,
            kind,
            at: Stamp::default(),
            peer: 0,
            carried: None,
            origin: 0,
            request_tag: 0,
            first: 0,
            last: 0,
            term: 0,
            entry_hlc: 0,
            transfer: 0,
            head: None,
        }
    }
}

/// A local event as the node reports it to its sink (unstamped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Local {
    /// A client write arrived here.
    Request {
        /// This node.
        origin: u64,
        /// The request tag it got.
        request_tag: u64,
        /// The first transfer id in its entry (0: none).
        transfer: u128,
    },
    /// This leader appended a write to its log.
    Proposed {
        /// Its origin.
        origin: u64,
        /// Its request tag.
        request_tag: u64,
        /// The log index.
        index: u64,
        /// The term.
        term: u64,
        /// The HLC stamped into the entry.
        hlc: u64,
    },
    /// The commit index advanced over `first..=last`.
    Committed {
        /// First newly committed index.
        first: u64,
        /// Last newly committed index.
        last: u64,
    },
    /// An entry was applied.
    Applied {
        /// Its index.
        index: u64,
        /// Its term.
        term: u64,
        /// Its origin (0: no header).
        origin: u64,
        /// Its request tag.
        request_tag: u64,
        /// The receipt-chain head after it.
        head: [u8; 32],
    },
    /// An `Ok` reply to the client was handed over.
    Replied {
        /// Its origin (this node).
        origin: u64,
        /// Its request tag.
        request_tag: u64,
        /// The entry's index.
        index: u64,
    },
}

/// Where the node reports local events: `(node id, event)`. The caller
/// stamps and records them; see the module doc.
pub type TraceSink = fn(u64, Local);

/// What identifies one write across the nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Key {
    /// Its origin (0: unknown).
    pub origin: u64,
    /// Its request tag.
    pub request_tag: u64,
    /// Its log index (0: unknown).
    pub index: u64,
    /// The term it was proposed in (0: unknown).
    pub term: u64,
}

/// One node's bounded trace ring.
#[derive(Clone, Debug)]
pub struct TraceRing {
    node: u64,
    events: VecDeque<Event>,
    next_seq: u64,
    /// Highest (term, index) acknowledged per (peer, sent-by-us): only an
    /// ack that advances it is recorded. At most two per peer.
    acks: BTreeMap<(u64, bool), (u64, u64)>,
    /// Events dropped from the front.
    dropped: u64,
}

impl TraceRing {
    /// An empty ring for `node`.
    pub fn new(node: u64) -> TraceRing {
        TraceRing {
            node,
            events: VecDeque::new(),
            next_seq: 1,
            acks: BTreeMap::new(),
            dropped: 0,
        }
    }

    /// Events held now.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Events dropped because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Every event held, oldest first.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter()
    }

    fn push(&mut self, mut event: Event) {
        event.node = self.node;
        event.seq = self.next_seq;
        self.next_seq += 1;
        if self.events.len() == TRACE_EVENTS {
            self.events.pop_front();
            self.dropped += 1;
        }
        self.events.push_back(event);
    }

    /// Records a local event the node reported, stamped `at`.
    pub fn local(&mut self, local: Local, at: Stamp) {
        let event = match local {
            Local::Request {
                origin,
                request_tag,
                transfer,
            } => Event {
                origin,
                request_tag,
                transfer,
                ..Event::blank(Kind::Request)
            },
            Local::Proposed {
                origin,
                request_tag,
                index,
                term,
                hlc,
            } => Event {
                origin,
                request_tag,
                first: index,
                last: index,
                term,
                entry_hlc: hlc,
                ..Event::blank(Kind::Proposed)
            },
            Local::Committed { first, last } => Event {
                first,
                last,
                ..Event::blank(Kind::Committed)
            },
            Local::Applied {
                index,
                term,
                origin,
                request_tag,
                head,
            } => Event {
                origin,
                request_tag,
                first: index,
                last: index,
                term,
                head: Some(head),
                ..Event::blank(Kind::Applied)
            },
            Local::Replied {
                origin,
                request_tag,
                index,
            } => Event {
                origin,
                request_tag,
                first: index,
                last: index,
                ..Event::blank(Kind::Replied)
            },
        };
        self.push(Event { at, ..event });
    }

    /// The event a message body makes, if it is one the trace keeps
    /// (`sent`: we are its sender). `None` for everything else, and for an
    /// ack that does not advance what this peer acknowledged.
    fn message(&mut self, peer: u64, body: &Body, sent: bool) -> Option<Event> {
        let (forward, append, ack) = if sent {
            (Kind::ForwardSent, Kind::AppendSent, Kind::AckSent)
        } else {
            (
                Kind::ForwardReceived,
                Kind::AppendReceived,
                Kind::AckReceived,
            )
        };
        match body {
            Body::Forward {
                origin,
                request_tag,
                ..
            } => Some(Event {
                origin: *origin,
                request_tag: *request_tag,
                ..Event::blank(forward)
            }),
            Body::Raft(message) => match &message.body {
                MessageBody::Append { entries, .. } => {
                    let (first, last) = (entries.first()?.index, entries.last()?.index);
                    Some(Event {
                        first,
                        last,
                        term: message.term,
                        ..Event::blank(append)
                    })
                }
                MessageBody::AppendResponse {
                    reject: false,
                    index,
                    ..
                } => {
                    let seen = self.acks.entry((peer, sent)).or_insert((0, 0));
                    if (message.term, *index) <= *seen {
                        return None;
                    }
                    *seen = (message.term, *index);
                    Some(Event {
                        last: *index,
                        term: message.term,
                        ..Event::blank(ack)
                    })
                }
                _ => None,
            },
            Body::ChainCheck { .. } | Body::ForwardRefused { .. } => None,
        }
    }

    /// Records `body` sent to `to` in an envelope stamped `at` (the
    /// envelope's own Lamport and HLC), if the trace keeps it.
    pub fn sent(&mut self, to: u64, body: &Body, at: Stamp) {
        if let Some(event) = self.message(to, body, true) {
            self.push(Event {
                peer: to,
                at,
                carried: Some((at.lamport, at.hlc)),
                ..event
            });
        }
    }

    /// Records `body` received from `from` in an envelope stamped
    /// `carried` (Lamport, HLC); `at` is this node's clocks after merging
    /// it (or, if the HLC refused the remote stamp, its own reading).
    pub fn received(&mut self, from: u64, body: &Body, carried: (u64, u64), at: Stamp) {
        if let Some(event) = self.message(from, body, false) {
            self.push(Event {
                peer: from,
                at,
                carried: Some(carried),
                ..event
            });
        }
    }

    /// The write `transfer` belongs to, as far as this node can tell:
    /// from its `request` event (it was the contact node), else from the
    /// entry at `index` (the index the ledger applied it at, or the one
    /// another node reported) by its `applied` or `proposed` event.
    pub fn resolve(&self, transfer: u128, index: Option<u64>) -> Option<Key> {
        let by_request = self
            .events
            .iter()
            .rev()
            .find(|e| e.kind == Kind::Request && e.transfer == transfer && transfer != 0)
            .map(|e| (e.origin, e.request_tag));
        let by_index = |pick: &dyn Fn(&Event) -> bool| {
            self.events
                .iter()
                .rev()
                .find(|e| matches!(e.kind, Kind::Applied | Kind::Proposed) && pick(e))
                .map(|e| Key {
                    origin: e.origin,
                    request_tag: e.request_tag,
                    index: e.first,
                    term: e.term,
                })
        };
        match (by_request, index) {
            (Some((origin, request_tag)), _) => {
                let entry = by_index(&|e| e.origin == origin && e.request_tag == request_tag);
                Some(entry.unwrap_or(Key {
                    origin,
                    request_tag,
                    index: index.unwrap_or(0),
                    term: 0,
                }))
            }
            (None, Some(index)) if index > 0 => {
                Some(by_index(&|e| e.first == index).unwrap_or(Key {
                    index,
                    ..Key::default()
                }))
            }
            _ => None,
        }
    }

    /// This node's events of the write `key`, in program order, at most
    /// [`MAX_TRACE_ANSWER`]; and whether more matched.
    pub fn select(&self, key: &Key) -> (Vec<Event>, bool) {
        let mut out = Vec::new();
        let mut acks_seen: Vec<(Kind, u64)> = Vec::new();
        let mut more = false;
        for e in &self.events {
            let by_request =
                key.origin != 0 && e.origin == key.origin && e.request_tag == key.request_tag;
            let in_term = e.term >= key.term;
            let covers = key.index != 0 && e.first <= key.index && key.index <= e.last;
            let keep = match e.kind {
                Kind::Request | Kind::ForwardSent | Kind::ForwardReceived | Kind::Replied => {
                    by_request
                }
                Kind::Proposed | Kind::Applied => {
                    by_request || (key.origin == 0 && covers && in_term)
                }
                Kind::AppendSent | Kind::AppendReceived => covers && in_term,
                Kind::Committed => covers,
                // The first ack per peer covering the index is the one
                // that acknowledged it (acks are kept only as they advance).
                Kind::AckSent | Kind::AckReceived => {
                    let first = key.index != 0
                        && e.last >= key.index
                        && in_term
                        && !acks_seen.contains(&(e.kind, e.peer));
                    if first {
                        acks_seen.push((e.kind, e.peer));
                    }
                    first
                }
            };
            if keep {
                if out.len() == MAX_TRACE_ANSWER {
                    more = true;
                    break;
                }
                out.push(*e);
            }
        }
        (out, more)
    }

    /// The transfer ids of the newest client requests this node took
    /// (distinct, newest first, at most [`MAX_RECENT`]).
    pub fn recent(&self) -> Vec<u128> {
        let mut out: Vec<u128> = Vec::new();
        for e in self.events.iter().rev() {
            if e.kind == Kind::Request && e.transfer != 0 && !out.contains(&e.transfer) {
                out.push(e.transfer);
                if out.len() == MAX_RECENT {
                    break;
                }
            }
        }
        out
    }

    /// The `/trace?recent` answer: `{"node":N,"recent":["<hex>",...]}`.
    pub fn write_recent(&self, out: &mut impl Write) -> fmt::Result {
        write!(out, "{{\"node\":{},\"recent\":[", self.node)?;
        for (i, id) in self.recent().iter().enumerate() {
            write!(out, "{}\"{id:x}\"", if i > 0 { "," } else { "" })?;
        }
        out.write_str("]}")
    }

    /// The answer to a parsed `/trace` query: [`TraceRing::answer`] or
    /// [`TraceRing::write_recent`]. `applied_at` is where this node's
    /// ledger applied the transfer, if it did.
    pub fn respond(
        &self,
        out: &mut impl Write,
        query: Query,
        applied_at: Option<u64>,
    ) -> fmt::Result {
        match query {
            Query::Transfer { transfer, index } => self.answer(out, transfer, index.or(applied_at)),
            Query::Recent => self.write_recent(out),
        }
    }

    /// The `/trace` answer for `transfer` (see [`write_answer`]).
    pub fn answer(&self, out: &mut impl Write, transfer: u128, index: Option<u64>) -> fmt::Result {
        let key = self.resolve(transfer, index);
        let (events, more) = key.map_or((Vec::new(), false), |k| self.select(&k));
        write_answer(
            out,
            &Answer {
                node: self.node,
                transfer,
                key,
                held: self.events.len(),
                dropped: self.dropped,
                events: &events,
                truncated: more,
            },
        )
    }
}

/// One node's answer to a trace query.
pub struct Answer<'a> {
    /// The answering node.
    pub node: u64,
    /// The transfer asked about.
    pub transfer: u128,
    /// What it resolved to (`None`: this node knows nothing of it).
    pub key: Option<Key>,
    /// Events in the ring.
    pub held: usize,
    /// Events the ring dropped over its life.
    pub dropped: u64,
    /// The transfer's events.
    pub events: &'a [Event],
    /// More events matched than [`MAX_TRACE_ANSWER`].
    pub truncated: bool,
}

/// Writes a node's answer as one JSON object: `node`, `transfer` (hex),
/// `key` (`origin`, `request_tag`, `index`, `term`, or `null`), `ring`
/// (`capacity`, `held`, `dropped`), `truncated`, and `events`: objects with
/// `node`, `seq`, `kind`, `lamport`, `hlc`, `local_us`, and where they
/// apply `peer`, `msg_lamport`, `msg_hlc`, `origin`, `request_tag`, `first`,
/// `last`, `term`, `entry_hlc`, `transfer`, `head` (hex). Every value is a
/// number, a boolean, or hex we wrote ourselves (no escaping needed).
pub fn write_answer(out: &mut impl Write, a: &Answer<'_>) -> fmt::Result {
    write!(
        out,
        "{{\"node\":{},\"transfer\":\"{:x}\",\"key\":",
        a.node, a.transfer
    )?;
    match a.key {
        Some(k) => write!(
            out,
            "{{\"origin\":{},\"request_tag\":{},\"index\":{},\"term\":{}}}",
            k.origin, k.request_tag, k.index, k.term
        )?,
        None => out.write_str("null")?,
    }
    write!(
        out,
        ",\"ring\":{{\"capacity\":{TRACE_EVENTS},\"held\":{},\"dropped\":{}}},\"truncated\":{},\"events\":[",
        a.held, a.dropped, a.truncated
    )?;
    for (i, e) in a.events.iter().enumerate() {
        if i > 0 {
            out.write_char(',')?;
        }
        write_event(out, e)?;
    }
    out.write_str("]}")
}

fn write_event(out: &mut impl Write, e: &Event) -> fmt::Result {
    write!(
        out,
        "{{\"node\":{},\"seq\":{},\"kind\":\"{}\",\"lamport\":{},\"hlc\":{},\"local_us\":{}",
        e.node,
        e.seq,
        e.kind.name(),
        e.at.lamport,
        e.at.hlc,
        e.at.local_us
    )?;
    if e.peer != 0 {
        write!(out, ",\"peer\":{}", e.peer)?;
    }
    if let Some((lamport, hlc)) = e.carried {
        write!(out, ",\"msg_lamport\":{lamport},\"msg_hlc\":{hlc}")?;
    }
    if e.origin != 0 {
        write!(
            out,
            ",\"origin\":{},\"request_tag\":{}",
            e.origin, e.request_tag
        )?;
    }
    if e.last != 0 {
        write!(out, ",\"first\":{},\"last\":{}", e.first, e.last)?;
    }
    if e.term != 0 {
        write!(out, ",\"term\":{}", e.term)?;
    }
    if e.entry_hlc != 0 {
        write!(out, ",\"entry_hlc\":{}", e.entry_hlc)?;
    }
    if e.transfer != 0 {
        write!(out, ",\"transfer\":\"{:x}\"", e.transfer)?;
    }
    if let Some(head) = &e.head {
        write!(out, ",\"head\":\"{}\"", crate::Hex(head))?;
    }
    out.write_char('}')
}

/// A parsed `/trace` query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Query {
    /// `transfer=<hex>[&index=<n>]`: one transfer's events.
    Transfer {
        /// The transfer id.
        transfer: u128,
        /// The entry index, when the asker knows it from another node.
        index: Option<u64>,
    },
    /// `recent`: the newest transfer ids this node took requests for.
    Recent,
}

impl Query {
    /// The transfer asked about (`None` for `recent`).
    pub fn transfer(&self) -> Option<u128> {
        match self {
            Query::Transfer { transfer, .. } => Some(*transfer),
            Query::Recent => None,
        }
    }
}

/// Why a `/trace` query is refused (a `400` with this text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryError {
    /// No `transfer=` parameter.
    MissingTransfer,
    /// `transfer` is not 1 to 32 hex digits, or is zero.
    BadTransfer,
    /// `index` is not a decimal u64.
    BadIndex,
    /// A parameter this endpoint does not know, or one given twice.
    UnknownParameter,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueryError::MissingTransfer => "missing transfer=<hex id> (try GET /trace?transfer=2a)",
            QueryError::BadTransfer => "transfer must be a non-zero id of 1 to 32 hex digits",
            QueryError::BadIndex => "index must be a decimal log index",
            QueryError::UnknownParameter => {
                "unknown or repeated parameter (only transfer=<hex> and index=<n>, or recent alone)"
            }
        })
    }
}

/// Parses the query part of a `/trace` target (the bytes after `?`, or
/// none): `transfer=<1..=32 hex digits>` and optionally `index=<decimal>`,
/// or `recent` alone.
pub fn parse_query(query: &[u8]) -> Result<Query, QueryError> {
    if query == b"recent" {
        return Ok(Query::Recent);
    }
    let mut transfer = None;
    let mut index = None;
    for pair in query.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let mut parts = pair.splitn(2, |&b| b == b'=');
        let name = parts.next().unwrap_or(&[]);
        let value = parts.next();
        match (name, value) {
            (b"transfer", Some(v)) if transfer.is_none() => {
                transfer = Some(parse_hex(v).ok_or(QueryError::BadTransfer)?)
            }
            (b"index", Some(v)) if index.is_none() => {
                index = Some(parse_decimal(v).ok_or(QueryError::BadIndex)?)
            }
            _ => return Err(QueryError::UnknownParameter),
        }
    }
    Ok(Query::Transfer {
        transfer: transfer.ok_or(QueryError::MissingTransfer)?,
        index,
    })
}

fn parse_hex(text: &[u8]) -> Option<u128> {
    if text.is_empty() || text.len() > 32 {
        return None;
    }
    let mut value = 0u128;
    for &c in text {
        value = value << 4 | char::from(c).to_digit(16)? as u128;
    }
    (value != 0).then_some(value)
}

fn parse_decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 20 {
        return None;
    }
    let mut value = 0u64;
    for &c in text {
        value = value
            .checked_mul(10)?
            .checked_add(char::from(c).to_digit(10)? as u64)?;
    }
    Some(value)
}

/// Which happens-before edge a [`Violation`] is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    /// Two consecutive events on one node (program order).
    Program,
    /// A message: the envelope's stamp → its receive event.
    Message,
}

/// A happens-before edge whose timestamps do not strictly increase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Program order or message.
    pub edge: Edge,
    /// The earlier event: (node, seq); for a message, the sender and the
    /// seq of its send event (0 if it is no longer in the trace).
    pub from: (u64, u64),
    /// The later event: (node, seq).
    pub to: (u64, u64),
    /// Lamport before → after.
    pub lamport: (u64, u64),
    /// HLC before → after.
    pub hlc: (u64, u64),
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.edge {
            Edge::Program => "program order",
            Edge::Message => "message",
        };
        write!(
            f,
            "{what} edge node {} #{} -> node {} #{}: lamport {} -> {}, hlc {} -> {} (both must strictly increase)",
            self.from.0, self.from.1, self.to.0, self.to.1, self.lamport.0, self.lamport.1, self.hlc.0, self.hlc.1
        )
    }
}

/// What [`check`] looked at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Program-order edges checked.
    pub program_edges: usize,
    /// Message edges checked (every receive event).
    pub message_edges: usize,
    /// Receives whose send event is in the trace: (send, receive), as
    /// indexes into the checked slice.
    pub pairs: Vec<(usize, usize)>,
    /// Edges that broke the rule.
    pub violations: Vec<Violation>,
}

/// The causality check (module doc): every program-order edge and every
/// message edge among `events` (any order, any number of nodes) must
/// strictly increase both Lamport and HLC.
pub fn check(events: &[Event]) -> CheckReport {
    let mut report = CheckReport::default();
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| (events[i].node, events[i].seq));
    for pair in order.windows(2) {
        let (a, b) = (&events[pair[0]], &events[pair[1]]);
        if a.node != b.node {
            continue;
        }
        report.program_edges += 1;
        if !(a.at.lamport < b.at.lamport && a.at.hlc < b.at.hlc) {
            report.violations.push(Violation {
                edge: Edge::Program,
                from: (a.node, a.seq),
                to: (b.node, b.seq),
                lamport: (a.at.lamport, b.at.lamport),
                hlc: (a.at.hlc, b.at.hlc),
            });
        }
    }
    for (r, receive) in events.iter().enumerate() {
        let (Some(send_kind), Some((lamport, hlc))) = (receive.kind.send_of(), receive.carried)
        else {
            continue;
        };
        report.message_edges += 1;
        let send = events.iter().position(|s| {
            s.kind == send_kind && s.node == receive.peer && s.carried == receive.carried
        });
        if let Some(s) = send {
            report.pairs.push((s, r));
        }
        if !(lamport < receive.at.lamport && hlc < receive.at.hlc) {
            report.violations.push(Violation {
                edge: Edge::Message,
                from: (receive.peer, send.map_or(0, |s| events[s].seq)),
                to: (receive.node, receive.seq),
                lamport: (lamport, receive.at.lamport),
                hlc: (hlc, receive.at.hlc),
            });
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;
    use continuum_raft::{Entry, EntryKind, Message};

    fn stamp(lamport: u64, hlc: u64) -> Stamp {
        Stamp {
            lamport,
            hlc,
            local_us: lamport * 10,
        }
    }

    fn append(from: u64, to: u64, term: u64, indexes: &[u64]) -> Body {
        Body::Raft(Message {
            from,
            to,
            term,
            body: MessageBody::Append {
                prev_log_index: indexes[0] - 1,
                prev_log_term: term,
                leader_commit: 0,
                entries: indexes
                    .iter()
                    .map(|&index| Entry {
                        index,
                        term,
                        kind: EntryKind::Normal,
                        chain_hash: [0; 32],
                        data: vec![1],
                    })
                    .collect(),
            },
        })
    }

    fn ack(from: u64, to: u64, term: u64, index: u64) -> Body {
        Body::Raft(Message {
            from,
            to,
            term,
            body: MessageBody::AppendResponse {
                reject: false,
                index,
                reject_hint: 0,
                hint_term: 0,
            },
        })
    }

    /// A write from contact 2 through leader 1 to follower 3, as the
    /// kernel records it on each node.
    fn three_rings() -> [TraceRing; 3] {
        let (mut r1, mut r2, mut r3) = (TraceRing::new(1), TraceRing::new(2), TraceRing::new(3));
        let forward = Body::Forward {
            origin: 2,
            request_tag: 77,
            entry: vec![1],
            admitted: true,
        };
        r2.local(
            Local::Request {
                origin: 2,
                request_tag: 77,
                transfer: 0x2a,
            },
            stamp(1, 100),
        );
        r2.sent(1, &forward, stamp(2, 101));
        r1.received(2, &forward, (2, 101), stamp(3, 102));
        r1.local(
            Local::Proposed {
                origin: 2,
                request_tag: 77,
                index: 5,
                term: 4,
                hlc: 102,
            },
            stamp(4, 103),
        );
        r1.sent(2, &append(1, 2, 4, &[5]), stamp(5, 104));
        r1.sent(3, &append(1, 3, 4, &[5]), stamp(6, 105));
        r3.received(1, &append(1, 3, 4, &[5]), (6, 105), stamp(7, 106));
        r3.sent(1, &ack(3, 1, 4, 5), stamp(8, 107));
        // A repeated ack of the same index is not recorded again.
        r3.sent(1, &ack(3, 1, 4, 5), stamp(9, 108));
        r1.received(3, &ack(3, 1, 4, 5), (8, 107), stamp(10, 109));
        r1.local(Local::Committed { first: 5, last: 5 }, stamp(11, 110));
        r1.local(
            Local::Applied {
                index: 5,
                term: 4,
                origin: 2,
                request_tag: 77,
                head: [9; 32],
            },
            stamp(12, 111),
        );
        r2.received(1, &append(1, 2, 4, &[5]), (5, 104), stamp(13, 112));
        r2.local(
            Local::Applied {
                index: 5,
                term: 4,
                origin: 2,
                request_tag: 77,
                head: [9; 32],
            },
            stamp(14, 113),
        );
        r2.local(
            Local::Replied {
                origin: 2,
                request_tag: 77,
                index: 5,
            },
            stamp(15, 114),
        );
        [r1, r2, r3]
    }

    #[test]
    fn the_contact_resolves_by_transfer_and_a_follower_by_index() {
        let [r1, r2, r3] = three_rings();
        let key = r2.resolve(0x2a, None).unwrap();
        assert_eq!(
            key,
            Key {
                origin: 2,
                request_tag: 77,
                index: 5,
                term: 4
            }
        );
        assert_eq!(r1.resolve(0x2a, Some(5)), Some(key));
        // Node 3 never applied it: it knows the index only.
        assert_eq!(r3.resolve(0x2a, None), None);
        let on_3 = r3.resolve(0x2a, Some(5)).unwrap();
        assert_eq!(on_3.index, 5);
        let (events, more) = r3.select(&on_3);
        assert!(!more);
        let kinds: Vec<Kind> = events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [Kind::AppendReceived, Kind::AckSent]);
    }

    #[test]
    fn the_merged_trace_has_every_hop_and_passes_the_check() {
        let rings = three_rings();
        let mut all = Vec::new();
        for ring in &rings {
            let key = ring.resolve(0x2a, Some(5)).unwrap();
            all.extend(ring.select(&key).0);
        }
        let kinds: Vec<Kind> = all.iter().map(|e| e.kind).collect();
        for kind in KINDS.iter().map(|(k, _)| *k) {
            assert!(kinds.contains(&kind), "{kind:?} missing from {kinds:?}");
        }
        assert_eq!(kinds.iter().filter(|k| **k == Kind::AckSent).count(), 1);
        let report = check(&all);
        assert!(report.violations.is_empty(), "{:?}", report.violations);
        assert_eq!(report.message_edges, 4);
        assert_eq!(report.pairs.len(), 4);
        assert!(report.program_edges >= 8);
    }

    #[test]
    fn a_receive_below_its_send_is_a_violation() {
        let mut r1 = TraceRing::new(1);
        let mut r3 = TraceRing::new(3);
        r1.sent(3, &append(1, 3, 2, &[1]), stamp(10, 500));
        // An HLC that refused the stamp as too far ahead reads lower.
        r3.received(1, &append(1, 3, 2, &[1]), (10, 500), stamp(11, 400));
        let all: Vec<Event> = r1.events().chain(r3.events()).copied().collect();
        let report = check(&all);
        assert_eq!(report.violations.len(), 1);
        let v = report.violations[0];
        assert_eq!(v.edge, Edge::Message);
        assert_eq!((v.from, v.to), ((1, 1), (3, 1)));
        assert_eq!(v.hlc, (500, 400));
        // Program order: an equal Lamport on one node is one too.
        let mut r2 = TraceRing::new(2);
        r2.local(Local::Committed { first: 1, last: 1 }, stamp(5, 5));
        r2.local(Local::Committed { first: 2, last: 2 }, stamp(5, 6));
        let report = check(&r2.events().copied().collect::<Vec<_>>());
        assert_eq!(report.violations.len(), 1);
        assert_eq!(report.violations[0].edge, Edge::Program);
    }

    #[test]
    fn the_ring_is_bounded_and_counts_what_it_drops() {
        let mut ring = TraceRing::new(1);
        for i in 0..(TRACE_EVENTS as u64 + 10) {
            ring.local(
                Local::Committed {
                    first: i + 1,
                    last: i + 1,
                },
                stamp(i + 1, i + 1),
            );
        }
        assert_eq!(ring.len(), TRACE_EVENTS);
        assert_eq!(ring.dropped(), 10);
        assert_eq!(ring.events().next().unwrap().seq, 11);
    }

    #[test]
    fn an_answer_is_bounded_and_says_so() {
        let mut ring = TraceRing::new(1);
        for i in 0..(MAX_TRACE_ANSWER as u64 + 5) {
            ring.sent(2, &append(1, 2, 1, &[1, 2, 3]), stamp(i + 1, i + 1));
        }
        let (events, more) = ring.select(&Key {
            index: 2,
            ..Key::default()
        });
        assert_eq!(events.len(), MAX_TRACE_ANSWER);
        assert!(more);
    }

    #[test]
    fn the_answer_is_json_with_every_field() {
        let [_, r2, _] = three_rings();
        let mut out = String::new();
        r2.answer(&mut out, 0x2a, None).unwrap();
        assert!(out.starts_with("{\"node\":2,\"transfer\":\"2a\",\"key\":{\"origin\":2,\"request_tag\":77,\"index\":5,\"term\":4},\"ring\":{\"capacity\":2048,"), "{out}");
        assert!(out.contains("\"kind\":\"forward_sent\",\"lamport\":2,\"hlc\":101,\"local_us\":20,\"peer\":1,\"msg_lamport\":2,\"msg_hlc\":101,\"origin\":2,\"request_tag\":77}"), "{out}");
        assert!(
            out.contains(&alloc::format!("\"head\":\"{}\"", "09".repeat(32))),
            "{out}"
        );
        let mut recent = String::new();
        r2.respond(&mut recent, Query::Recent, None).unwrap();
        assert_eq!(recent, "{\"node\":2,\"recent\":[\"2a\"]}");
        let mut unknown = String::new();
        r2.answer(&mut unknown, 0x99, None).unwrap();
        assert!(unknown.contains("\"key\":null") && unknown.ends_with("\"events\":[]}"));
    }

    #[test]
    fn queries_parse_strictly() {
        assert_eq!(
            parse_query(b"transfer=2A"),
            Ok(Query::Transfer {
                transfer: 0x2a,
                index: None
            })
        );
        assert_eq!(
            parse_query(b"transfer=ff&index=12"),
            Ok(Query::Transfer {
                transfer: 0xff,
                index: Some(12)
            })
        );
        assert_eq!(parse_query(b"recent"), Ok(Query::Recent));
        assert_eq!(
            parse_query(b"recent&transfer=1"),
            Err(QueryError::UnknownParameter)
        );
        assert_eq!(parse_query(b""), Err(QueryError::MissingTransfer));
        assert_eq!(parse_query(b"index=3"), Err(QueryError::MissingTransfer));
        assert_eq!(parse_query(b"transfer="), Err(QueryError::BadTransfer));
        assert_eq!(parse_query(b"transfer=0"), Err(QueryError::BadTransfer));
        assert_eq!(parse_query(b"transfer=xyz"), Err(QueryError::BadTransfer));
        assert_eq!(parse_query(b"t"), Err(QueryError::UnknownParameter));
        let long = alloc::format!("transfer={}", "f".repeat(33));
        assert_eq!(parse_query(long.as_bytes()), Err(QueryError::BadTransfer));
        assert_eq!(
            parse_query(b"transfer=1&index=-1"),
            Err(QueryError::BadIndex)
        );
        assert_eq!(
            parse_query(b"transfer=1&index=99999999999999999999"),
            Err(QueryError::BadIndex)
        );
        assert_eq!(
            parse_query(b"transfer=1&transfer=2"),
            Err(QueryError::UnknownParameter)
        );
        assert_eq!(
            parse_query(b"transfer=1&x=2"),
            Err(QueryError::UnknownParameter)
        );
    }
}
