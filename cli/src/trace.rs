//! `trace <transfer id> [--json] [--svg out.svg]`: one transfer's causal
//! history, gathered from every node's `GET /trace` and merged.
//!
//! Each node answers with the events of its trace ring that belong to the
//! transfer's write (`continuum_node::trace`: request at the contact node,
//! forward, proposal at the leader, append and ack per follower, commit,
//! apply on every replica with its receipt-chain head, reply). A node that
//! never saw the request nor applied the transfer cannot resolve it by id;
//! it is asked again with the log index another node reported. The events
//! are merged in Lamport order and the causality check
//! (`continuum_node::trace::check`) runs over them: every program-order
//! and send → receive edge must strictly increase both Lamport and HLC.
//! Violations are printed and make the command fail (exit 1); so does a
//! transfer no node knows.
//!
//! `--svg` writes a Lamport diagram: one lane per node (and one for the
//! client), events as dots in merged order, messages as arrows from send
//! to receive. Plain SVG, no scripts, no external references. The
//! dashboard's trace view shows the same drawing ([`trace_json`]).

use crate::error::CliError;
use crate::layout::{Layout, RunState};
use crate::status::STATUS_TIMEOUT;
use continuum_harness::NodeId;
use continuum_node::trace::{check, CheckReport, Event, Key, Kind, Stamp};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

/// One transfer's trace, as gathered from the nodes.
#[derive(Clone, Debug, Default)]
pub struct Gathered {
    /// The transfer asked about.
    pub transfer: u128,
    /// Its write, as the best-informed node resolved it.
    pub key: Option<Key>,
    /// Every node's events, in merged (Lamport, node, seq) order.
    pub events: Vec<Event>,
    /// Nodes that could not be asked, or answered more than fits one page.
    pub notes: Vec<String>,
}

fn field(v: &Value, name: &str) -> u64 {
    v[name].as_u64().unwrap_or(0)
}

fn hex_u128(v: &Value) -> Result<u128, String> {
    match v.as_str() {
        None => Ok(0),
        Some(text) => u128::from_str_radix(text, 16).map_err(|_| format!("bad hex id `{text}`")),
    }
}

fn hex_32(text: &str) -> Result<[u8; 32], String> {
    let bad = || format!("bad chain head `{text}`");
    if text.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// One event of a node's `/trace` JSON.
pub fn parse_event(v: &Value) -> Result<Event, String> {
    let name = v["kind"].as_str().ok_or("event without a kind")?;
    let kind = Kind::from_name(name).ok_or_else(|| format!("unknown event kind `{name}`"))?;
    let carried = match (v["msg_lamport"].as_u64(), v["msg_hlc"].as_u64()) {
        (Some(l), Some(h)) => Some((l, h)),
        _ => None,
    };
    Ok(Event {
        node: field(v, "node"),
        seq: field(v, "seq"),
        kind,
        at: Stamp {
            lamport: field(v, "lamport"),
            hlc: field(v, "hlc"),
            local_us: field(v, "local_us"),
        },
        peer: field(v, "peer"),
        carried,
        origin: field(v, "origin"),
        request_tag: field(v, "request_tag"),
        first: field(v, "first"),
        last: field(v, "last"),
        term: field(v, "term"),
        entry_hlc: field(v, "entry_hlc"),
        transfer: hex_u128(&v["transfer"])?,
        head: v["head"].as_str().map(hex_32).transpose()?,
    })
}

/// A node's whole `/trace` answer: its key (if it resolved the transfer),
/// its events, and whether it had more than one answer holds.
pub fn parse_answer(v: &Value) -> Result<(Option<Key>, Vec<Event>, bool), String> {
    let key = match &v["key"] {
        Value::Null => None,
        k => Some(Key {
            origin: field(k, "origin"),
            request_tag: field(k, "request_tag"),
            index: field(k, "index"),
            term: field(k, "term"),
        }),
    };
    let events = v["events"]
        .as_array()
        .ok_or("answer without events")?
        .iter()
        .map(parse_event)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((key, events, v["truncated"].as_bool().unwrap_or(false)))
}

/// Asks one node; `Err` says why it could not answer.
fn ask(port: u16, transfer: u128, index: Option<u64>) -> Result<Value, String> {
    let mut path = format!("/trace?transfer={transfer:x}");
    if let Some(index) = index {
        let _ = write!(path, "&index={index}");
    }
    let body = continuum_harness::http_get_timeout(port, &path, STATUS_TIMEOUT * 3)?;
    serde_json::from_str(&body).map_err(|e| format!("bad JSON: {e}"))
}

/// Gathers `transfer`'s events from every running node (module doc).
pub fn gather(state: &RunState, transfer: u128) -> Gathered {
    let ask_all = |index: Option<u64>, which: &[NodeId]| -> Vec<(NodeId, Result<Value, String>)> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = state
                .nodes
                .iter()
                .filter(|n| which.contains(&n.id))
                .map(|n| {
                    scope.spawn(move || {
                        let answer = match n.state.as_str() {
                            "running" => ask(n.status_port, transfer, index),
                            other => Err(format!("not asked: {other}")),
                        };
                        (n.id, answer)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("trace thread panicked"))
                .collect()
        })
    };
    let all: Vec<NodeId> = state.nodes.iter().map(|n| n.id).collect();
    let mut answers = ask_all(None, &all);
    let parsed = |a: &Result<Value, String>| a.as_ref().ok().and_then(|v| parse_answer(v).ok());
    // The best key: one with an index, from the node that knows the most.
    let key = answers
        .iter()
        .filter_map(|(_, a)| parsed(a)?.0)
        .max_by_key(|k| (k.index != 0, k.origin != 0, k.term));
    if let Some(index) = key.map(|k| k.index).filter(|&i| i != 0) {
        let again: Vec<NodeId> = answers
            .iter()
            .filter(|(_, a)| parsed(a).is_some_and(|(k, _, _)| k.is_none_or(|k| k.index != index)))
            .map(|(id, _)| *id)
            .collect();
        for (id, answer) in ask_all(Some(index), &again) {
            if let Some(slot) = answers.iter_mut().find(|(n, _)| *n == id) {
                slot.1 = answer;
            }
        }
    }
    let mut gathered = Gathered {
        transfer,
        key,
        ..Gathered::default()
    };
    for (id, answer) in answers {
        match answer.and_then(|v| parse_answer(&v)) {
            Ok((_, events, truncated)) => {
                if truncated {
                    gathered
                        .notes
                        .push(format!("node {id}: more events than one answer holds"));
                }
                gathered.events.extend(events);
            }
            Err(why) => gathered.notes.push(format!("node {id}: {why}")),
        }
    }
    gathered
        .events
        .sort_by_key(|e| (e.at.lamport, e.node, e.seq));
    gathered
}

fn nodes_with(events: &[Event], kind: Kind) -> Vec<u64> {
    let set: BTreeSet<u64> = events
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.node)
        .collect();
    set.into_iter().collect()
}

fn list(nodes: &[u64]) -> String {
    if nodes.is_empty() {
        return "none".into();
    }
    nodes
        .iter()
        .map(|n| format!("n{n}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The path of the write through the cluster, hop by hop: (hop, the nodes
/// it was seen on). An empty list is a hop the trace does not show.
pub fn path(events: &[Event]) -> Vec<(&'static str, Vec<u64>)> {
    vec![
        ("request at contact", nodes_with(events, Kind::Request)),
        ("forwarded by", nodes_with(events, Kind::ForwardSent)),
        ("proposed by leader", nodes_with(events, Kind::Proposed)),
        ("appended on", nodes_with(events, Kind::AppendReceived)),
        ("acked by", {
            let set: BTreeSet<u64> = events
                .iter()
                .filter(|e| e.kind == Kind::AckReceived)
                .map(|e| e.peer)
                .collect();
            set.into_iter().collect()
        }),
        ("committed on", nodes_with(events, Kind::Committed)),
        ("applied on", nodes_with(events, Kind::Applied)),
        ("replied by", nodes_with(events, Kind::Replied)),
    ]
}

/// Whether every replica that applied the entry has the same receipt-chain
/// head after it (`None`: no apply in the trace).
pub fn heads_agree(events: &[Event]) -> Option<bool> {
    let heads: BTreeSet<[u8; 32]> = events
        .iter()
        .filter(|e| e.kind == Kind::Applied)
        .filter_map(|e| e.head)
        .collect();
    (!heads.is_empty()).then_some(heads.len() == 1)
}

fn hlc_text(hlc: u64) -> String {
    format!("{}.{}", hlc >> 16, hlc & 0xffff)
}

fn describe(e: &Event) -> String {
    match e.kind {
        Kind::Request => format!("request from client (request tag {:#x})", e.request_tag),
        Kind::ForwardSent => format!("forward → n{}", e.peer),
        Kind::ForwardReceived => format!("forward ← n{}", e.peer),
        Kind::Proposed => format!(
            "proposed at index {} term {} (entry HLC {})",
            e.first,
            e.term,
            hlc_text(e.entry_hlc)
        ),
        Kind::AppendSent => format!("append {}..={} → n{}", e.first, e.last, e.peer),
        Kind::AppendReceived => format!("append {}..={} ← n{}", e.first, e.last, e.peer),
        Kind::AckSent => format!("ack up to {} → n{}", e.last, e.peer),
        Kind::AckReceived => format!("ack up to {} ← n{}", e.last, e.peer),
        Kind::Committed => format!("committed {}..={}", e.first, e.last),
        Kind::Applied => format!(
            "applied index {} (chain head {})",
            e.first,
            e.head
                .map_or("?".into(), |h| continuum_harness::plan::hex(&h))
        ),
        Kind::Replied => format!("reply Ok sent to client (index {})", e.first),
    }
}

/// The text the command prints.
pub fn render_text(g: &Gathered, report: &CheckReport) -> String {
    let mut out = String::new();
    let _ = match g.key {
        Some(k) => writeln!(
            out,
            "transfer {}: write of node {} (request tag {:#x}), log index {}, term {}",
            g.transfer, k.origin, k.request_tag, k.index, k.term
        ),
        None => writeln!(out, "transfer {}: no node knows it", g.transfer),
    };
    let _ = writeln!(
        out,
        "{:>8}  {:>18}  {:>4}  {:>12}  event",
        "lamport", "hlc (ms.logical)", "node", "local ms"
    );
    for e in &g.events {
        let _ = writeln!(
            out,
            "{:>8}  {:>18}  {:>4}  {:>12.3}  {}",
            e.at.lamport,
            hlc_text(e.at.hlc),
            format!("n{}", e.node),
            e.at.local_us as f64 / 1e3,
            describe(e)
        );
    }
    let hops: Vec<String> = path(&g.events)
        .into_iter()
        .map(|(hop, nodes)| format!("{hop} {}", list(&nodes)))
        .collect();
    let _ = writeln!(out, "path: client → {} → client", hops.join(" → "));
    match heads_agree(&g.events) {
        Some(true) => {
            let _ = writeln!(out, "receipt-chain heads after the entry: all equal");
        }
        Some(false) => {
            let _ = writeln!(out, "receipt-chain heads after the entry: DIFFER");
        }
        None => {}
    }
    let _ = writeln!(
        out,
        "causality: {} program-order and {} message edges checked ({} sends paired), {} violations",
        report.program_edges,
        report.message_edges,
        report.pairs.len(),
        report.violations.len()
    );
    for v in &report.violations {
        let _ = writeln!(out, "VIOLATION: {v}");
    }
    for note in &g.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

fn event_json(e: &Event) -> Value {
    json!({
        "node": e.node, "seq": e.seq, "kind": e.kind.name(),
        "lamport": e.at.lamport, "hlc": e.at.hlc, "local_us": e.at.local_us,
        "peer": e.peer, "msg_lamport": e.carried.map(|c| c.0), "msg_hlc": e.carried.map(|c| c.1),
        "origin": e.origin, "request_tag": e.request_tag, "first": e.first, "last": e.last, "term": e.term,
        "entry_hlc": e.entry_hlc, "head": e.head.map(|h| continuum_harness::plan::hex(&h)),
        "text": describe(e),
    })
}

/// The whole trace as JSON (`--json`, and the dashboard's trace view,
/// which also gets the drawing).
pub fn trace_json(g: &Gathered, report: &CheckReport, with_svg: bool) -> Value {
    let path: Vec<Value> = path(&g.events)
        .into_iter()
        .map(|(hop, nodes)| json!({"hop": hop, "nodes": nodes}))
        .collect();
    json!({
        "transfer": g.transfer.to_string(),
        "key": g.key.map(|k| json!({"origin": k.origin, "request_tag": k.request_tag, "index": k.index, "term": k.term})),
        "events": g.events.iter().map(event_json).collect::<Vec<_>>(),
        "path": path,
        "heads_agree": heads_agree(&g.events),
        "check": {
            "program_edges": report.program_edges,
            "message_edges": report.message_edges,
            "paired": report.pairs.len(),
            "violations": report.violations.iter().map(ToString::to_string).collect::<Vec<_>>(),
        },
        "notes": g.notes,
        "svg": with_svg.then(|| render_svg(g, report)),
    })
}

/// Lane geometry of the drawing.
const LANE_GAP: usize = 70;
const COLUMN: usize = 46;
const LEFT: usize = 70;
const TOP: usize = 40;

/// The Lamport diagram (module doc) as a standalone SVG document.
pub fn render_svg(g: &Gathered, report: &CheckReport) -> String {
    let nodes: Vec<u64> = g
        .events
        .iter()
        .map(|e| e.node)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // Lane 0 is the client.
    let lane_of = |node: u64| nodes.iter().position(|&n| n == node).map_or(0, |i| i + 1);
    let y = |lane: usize| TOP + lane * LANE_GAP;
    let x = |rank: usize| LEFT + COLUMN + rank * COLUMN;
    let width = x(g.events.len()) + COLUMN;
    let height = y(nodes.len()) + 60;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"monospace\" font-size=\"11\">\
<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#333\"/></marker></defs>\
<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
<text x=\"10\" y=\"18\" font-size=\"13\">transfer {} — Lamport diagram ({} events, {} violations)</text>",
        g.transfer,
        g.events.len(),
        report.violations.len()
    );
    let lanes = std::iter::once("client".to_string()).chain(nodes.iter().map(|n| format!("n{n}")));
    for (lane, name) in lanes.enumerate() {
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#bbb\"/><text x=\"10\" y=\"{2}\">{name}</text>",
            y(lane),
            width - 10,
            y(lane) + 4
        );
    }
    let arrow = |s: &mut String, (x1, y1): (usize, usize), (x2, y2): (usize, usize), dash: bool| {
        let _ = write!(
            s,
            "<line x1=\"{x1}\" y1=\"{y1}\" x2=\"{x2}\" y2=\"{y2}\" stroke=\"#333\" marker-end=\"url(#arrow)\"{}/>",
            if dash { " stroke-dasharray=\"4 3\"" } else { "" }
        );
    };
    let bad: BTreeSet<(u64, u64)> = report.violations.iter().map(|v| v.to).collect();
    for &(send, receive) in &report.pairs {
        let (a, b) = (&g.events[send], &g.events[receive]);
        arrow(
            &mut s,
            (x(send), y(lane_of(a.node))),
            (x(receive), y(lane_of(b.node))),
            false,
        );
    }
    for (rank, e) in g.events.iter().enumerate() {
        let (ex, ey) = (x(rank), y(lane_of(e.node)));
        // The client's messages carry no clocks: dashed.
        match e.kind {
            Kind::Request => arrow(&mut s, (ex - COLUMN / 2, y(0)), (ex, ey), true),
            Kind::Replied => arrow(&mut s, (ex, ey), (ex + COLUMN / 2, y(0)), true),
            _ => {}
        }
        let colour = if bad.contains(&(e.node, e.seq)) {
            "#d00"
        } else if e.kind.is_send() {
            "#1565c0"
        } else {
            "#2e7d32"
        };
        let label = match e.kind {
            Kind::Proposed | Kind::Applied | Kind::Committed => {
                format!("{} {}", e.kind.name(), e.first)
            }
            kind => kind.name().to_string(),
        };
        let _ = write!(
            s,
            "<circle cx=\"{ex}\" cy=\"{ey}\" r=\"4\" fill=\"{colour}\"><title>n{} #{} {}: lamport {} hlc {}</title></circle>\
<text x=\"{ex}\" y=\"{}\" transform=\"rotate(-30 {ex} {})\">{label}</text>\
<text x=\"{ex}\" y=\"{}\" text-anchor=\"middle\" fill=\"#666\" font-size=\"9\">{}</text>",
            e.node,
            e.seq,
            describe(e),
            e.at.lamport,
            hlc_text(e.at.hlc),
            ey - 8,
            ey - 8,
            ey + 16,
            e.at.lamport
        );
    }
    s.push_str("</svg>\n");
    s
}

/// `continuum trace`.
pub fn run(
    layout: &Layout,
    transfer: u128,
    svg: Option<&Path>,
    json_out: bool,
) -> Result<(), CliError> {
    let state = layout.running_state()?;
    let gathered = gather(&state, transfer);
    if gathered.events.is_empty() {
        return Err(CliError::Other(format!(
            "no node has trace events of transfer {transfer} (never submitted, or older than every node's trace ring){}",
            gathered
                .notes
                .iter()
                .map(|n| format!("; {n}"))
                .collect::<String>()
        )));
    }
    let report = check(&gathered.events);
    if let Some(path) = svg {
        std::fs::write(path, render_svg(&gathered, &report))
            .map_err(CliError::io_path("write", path))?;
    }
    if json_out {
        println!("{}", trace_json(&gathered, &report, false));
    } else {
        print!("{}", render_text(&gathered, &report));
        if let Some(path) = svg {
            println!("diagram: {}", path.display());
        }
    }
    if report.violations.is_empty() {
        Ok(())
    } else {
        Err(CliError::Other(format!(
            "the trace of transfer {transfer} breaks causality on {} edges (listed above)",
            report.violations.len()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(node: u64, seq: u64, kind: Kind, lamport: u64, hlc: u64) -> Event {
        Event {
            node,
            seq,
            kind,
            at: Stamp {
                lamport,
                hlc,
                local_us: 1000 * seq,
            },
            peer: 0,
            carried: None,
            origin: 2,
            request_tag: 7,
            first: 5,
            last: 5,
            term: 3,
            entry_hlc: 0,
            transfer: 0,
            head: None,
        }
    }

    fn sample() -> Gathered {
        let mut send = event(1, 2, Kind::AppendSent, 10, 100);
        send.peer = 3;
        send.carried = Some((10, 100));
        let mut receive = event(3, 1, Kind::AppendReceived, 11, 101);
        receive.peer = 1;
        receive.carried = Some((10, 100));
        let mut applied = event(3, 2, Kind::Applied, 12, 102);
        applied.head = Some([0xab; 32]);
        Gathered {
            transfer: 42,
            key: Some(Key {
                origin: 2,
                request_tag: 7,
                index: 5,
                term: 3,
            }),
            events: vec![event(1, 1, Kind::Proposed, 9, 99), send, receive, applied],
            notes: vec![],
        }
    }

    #[test]
    fn the_node_json_parses_back_into_the_same_events() {
        use continuum_node::trace::{write_answer, Answer};
        let g = sample();
        let mut text = String::new();
        write_answer(
            &mut text,
            &Answer {
                node: 3,
                transfer: 42,
                key: g.key,
                held: 4,
                dropped: 0,
                events: &g.events,
                truncated: true,
            },
        )
        .unwrap();
        let (key, events, truncated) = parse_answer(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(key, g.key);
        assert_eq!(events, g.events);
        assert!(truncated);
        let bad = json!({"key": null, "events": [{"kind": "teleported"}]});
        assert!(parse_answer(&bad).unwrap_err().contains("teleported"));
    }

    #[test]
    fn text_and_svg_show_the_hops_and_the_check() {
        let g = sample();
        let report = check(&g.events);
        assert!(report.violations.is_empty());
        let text = render_text(&g, &report);
        assert!(text.contains("append 5..=5 → n3"), "{text}");
        assert!(text.contains("appended on n3"), "{text}");
        assert!(text.contains("1 message edges checked (1 sends paired), 0 violations"));
        let svg = render_svg(&g, &report);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("marker-end").count(), 1, "one message arrow");
        assert!(svg.contains(">client</text>") && svg.contains(">n3</text>"));
        assert!(!svg.contains("<script"));
    }

    #[test]
    fn a_violation_is_printed_and_drawn_red() {
        let mut g = sample();
        g.events[2].at.hlc = 50; // the receive reads below its send
        let report = check(&g.events);
        assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
        assert!(render_text(&g, &report).contains("VIOLATION: message edge node 1 #2 -> node 3 #1"));
        assert!(render_svg(&g, &report).contains("#d00"));
        let j = trace_json(&g, &report, true);
        assert_eq!(j["check"]["violations"].as_array().unwrap().len(), 1);
        assert!(j["svg"].as_str().unwrap().starts_with("<svg"));
    }
}
