//! `dashboard [--port P]`: a live page for the running cluster on
//! 127.0.0.1 only. Plain HTML/JS/SVG compiled into the binary
//! (`dashboard.html`, no CDN, no internet).
//!
//! A poller thread reads every node's `/status` and `/trace?recent`, the
//! leader's `/metrics` and the fabric's stats once a second
//! ([`POLL_INTERVAL`]) and keeps: the latest view (with the newest
//! transfer ids the nodes took, to click), a bounded series of samples
//! ([`MAX_SAMPLES`]: committed transfers/s from the growth of
//! `applied_commands`, and the leader's commit latency percentiles from
//! its `stage_applied_seconds` histogram) and a bounded timeline
//! ([`MAX_EVENTS`]) of what changed between two polls:
//! elections (term or leader changes), snapshots (`snapshots_taken`),
//! processes going down, paused or back, and fabric faults (links blocked,
//! link plans set or cleared — what `nemesis` and `chaos` do). The page
//! polls `GET /api/state` (JSON) and draws it.
//!
//! Latency: the leader's `stage_applied_seconds` (its proposal to its
//! apply: append, the followers' writes and acks, commit, apply), which
//! every write has. `stage_replied_seconds` exists only for writes whose
//! client asked the leader itself (a follower's reply is not timed by the
//! leader), so it stays flat when the client talks to a follower.
//!
//! Trace view: clicking a transfer id asks `GET /api/trace?transfer=<id>`,
//! which gathers, checks and draws the trace with `continuum trace`'s code
//! ([`crate::trace`]) and answers its JSON with the SVG inline.

use crate::error::CliError;
use crate::layout::Layout;
use crate::status;
use continuum_fabric::control::link_plans;
use continuum_fabric::{ControlClient, Request};
use continuum_harness::NodeId;
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The page, embedded at build time.
const PAGE: &str = include_str!("dashboard.html");
/// How often the nodes are polled.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Samples kept for the plots (5 minutes at one a second).
pub const MAX_SAMPLES: usize = 300;
/// Timeline events kept.
pub const MAX_EVENTS: usize = 200;
/// Simultaneous page connections served; more are refused.
pub const MAX_CONNECTIONS: usize = 16;
/// Longest request head read from a browser.
const MAX_REQUEST_BYTES: u64 = 8 * 1024;
/// How long a browser may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Previous {
    term: BTreeMap<NodeId, u64>,
    leader: Option<u64>,
    snapshots: BTreeMap<NodeId, u64>,
    process: BTreeMap<NodeId, String>,
    blocked: usize,
    faulty: BTreeMap<(NodeId, NodeId), String>,
    applied: Option<(Instant, u64)>,
    buckets: Option<(NodeId, Vec<(f64, f64)>)>,
}

struct Dash {
    started: Instant,
    view: Value,
    samples: VecDeque<Value>,
    events: VecDeque<Value>,
    previous: Previous,
}

impl Dash {
    fn event(&mut self, kind: &str, text: String) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        let t_ms = self.started.elapsed().as_millis() as u64;
        self.events
            .push_back(json!({"t_ms": t_ms, "kind": kind, "text": text}));
    }
}

/// `(upper bound, cumulative count)` of histogram `name` in a Prometheus
/// text page, in page order.
pub fn histogram_buckets(page: &str, name: &str) -> Vec<(f64, f64)> {
    let prefix = format!("continuum_{name}_bucket{{");
    page.lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            let count = l.rsplit(' ').next()?.parse().ok()?;
            Some((bound, count))
        })
        .collect()
}

/// The `p` (0-1) quantile's bucket bound of the observations between two
/// readings of one histogram, if there were any.
pub fn delta_quantile(before: &[(f64, f64)], after: &[(f64, f64)], p: f64) -> Option<f64> {
    if before.len() != after.len() {
        return None;
    }
    let deltas: Vec<(f64, f64)> = after
        .iter()
        .zip(before)
        .map(|(a, b)| (a.0, (a.1 - b.1).max(0.0)))
        .collect();
    let total = deltas.last()?.1;
    if total <= 0.0 {
        return None;
    }
    deltas
        .iter()
        .find(|(_, cumulative)| *cumulative >= p * total)
        .map(|(bound, _)| *bound)
}

fn poll(layout: &Layout, dash: &Mutex<Dash>) {
    let state = match layout.running_state() {
        Ok(state) => state,
        Err(e) => {
            let mut d = dash.lock().unwrap_or_else(|p| p.into_inner());
            d.view = json!({"error": e.to_string()});
            return;
        }
    };
    let views = status::gather(&state);
    let leader = status::leader(&views);
    let metrics = leader.and_then(|l| {
        let node = state.nodes.iter().find(|n| n.id == l)?;
        continuum_harness::http_get_timeout(node.status_port, "/metrics", status::STATUS_TIMEOUT)
            .ok()
            .map(|page| (node.id, page))
    });
    let recent = recent_transfers(&state);
    let fabric = ControlClient::connect(&state.fabric_control)
        .and_then(|mut c| c.request(&Request::Stats))
        .ok()
        .map(|mut reply| reply["stats"].take());
    let now = Instant::now();
    let mut d = dash.lock().unwrap_or_else(|p| p.into_inner());
    let t_ms = d.started.elapsed().as_millis() as u64;

    // Timeline: what changed since the last poll.
    for v in &views {
        let id = v.run.id;
        let before = d.previous.process.insert(id, v.run.state.clone());
        if before.as_ref().is_some_and(|b| *b != v.run.state) {
            d.event("process", format!("node {id} is {}", v.run.state));
        }
        let Ok(s) = &v.status else { continue };
        let raft = &s["raft"];
        if let Some(term) = raft["term"].as_u64() {
            if let Some(old) = d.previous.term.insert(id, term) {
                if term > old && raft["role"] == "leader" {
                    d.event("election", format!("node {id} leads term {term}"));
                }
            }
        }
        if let Some(taken) = raft["counters"]["snapshots_taken"].as_u64() {
            if let Some(old) = d.previous.snapshots.insert(id, taken) {
                if taken > old {
                    let index = raft["snapshot_index"].as_u64().unwrap_or(0);
                    d.event("snapshot", format!("node {id} snapshot at index {index}"));
                }
            }
        }
    }
    if leader != d.previous.leader {
        if leader.is_none() {
            d.event("election", "no leader".into());
        }
        d.previous.leader = leader;
    }
    let mut fabric_view = Value::Null;
    if let Some(stats) = &fabric {
        let blocked = stats["blocked"].as_array().map_or(0, Vec::len);
        if blocked != d.previous.blocked {
            let text = if blocked == 0 {
                "partitions healed".to_string()
            } else {
                format!("{blocked} directed links blocked")
            };
            d.event("fault", text);
            d.previous.blocked = blocked;
        }
        let mut faulty = BTreeMap::new();
        for (a, b, faults) in link_plans(stats).unwrap_or_default() {
            if !faults.is_clean() {
                faulty.insert((a, b), serde_json::to_string(&faults).unwrap_or_default());
            }
        }
        if faulty != d.previous.faulty {
            let text = if faulty.is_empty() {
                "link faults cleared".to_string()
            } else {
                let (link, plan) = faulty.iter().next().map_or(((0, 0), ""), |(l, p)| (*l, p));
                format!(
                    "link faults on {} links (e.g. {}→{}: {plan})",
                    faulty.len(),
                    link.0,
                    link.1
                )
            };
            d.event("fault", text);
            d.previous.faulty = faulty.clone();
        }
        fabric_view = json!({
            "blocked": stats["blocked"],
            "faulty_links": faulty.iter().map(|((a, b), plan)| json!({"from": a, "to": b, "plan": plan})).collect::<Vec<_>>(),
        });
    }

    // Plots: transfers/s from applied_commands, latency from the histogram.
    let applied = views
        .iter()
        .filter_map(|v| v.status.as_ref().ok()?["raft"]["counters"]["applied_commands"].as_u64())
        .max();
    let tps = match (applied, d.previous.applied) {
        (Some(now_applied), Some((then, before))) if now_applied >= before => {
            let secs = now.duration_since(then).as_secs_f64();
            (secs > 0.0).then(|| (now_applied - before) as f64 / secs)
        }
        _ => None,
    };
    if let Some(a) = applied {
        d.previous.applied = Some((now, a));
    }
    let (mut p50, mut p99) = (None, None);
    if let Some((node, page)) = &metrics {
        let buckets = histogram_buckets(page, LATENCY_HISTOGRAM);
        if let Some((was, old)) = &d.previous.buckets {
            if was == node {
                p50 = delta_quantile(old, &buckets, 0.5).filter(|v| v.is_finite());
                p99 = delta_quantile(old, &buckets, 0.99).filter(|v| v.is_finite());
            }
        }
        d.previous.buckets = Some((*node, buckets));
    }
    if d.samples.len() >= MAX_SAMPLES {
        d.samples.pop_front();
    }
    d.samples.push_back(json!({
        "t_ms": t_ms,
        "applied": applied,
        "tps": tps,
        "commit_p50_ms": p50.map(|s| s * 1e3),
        "commit_p99_ms": p99.map(|s| s * 1e3),
    }));
    let nodes: Vec<Value> = views
        .iter()
        .map(|v| match &v.status {
            Ok(s) => json!({"id": v.run.id, "process": v.run.state, "status": s}),
            Err(e) => json!({"id": v.run.id, "process": v.run.state, "error": e}),
        })
        .collect();
    d.view = json!({
        "cluster_id": state.cluster_id,
        "leader": leader,
        "nodes": nodes,
        "fabric": fabric_view,
        "recent_transfers": recent,
    });
}

/// The histogram the latency plot reads (module doc).
const LATENCY_HISTOGRAM: &str = "stage_applied_seconds";

/// The newest transfer ids the running nodes took requests for (each
/// node's `/trace?recent`), newest node answer first, without repeats,
/// as decimal strings (how `transfer` prints them).
fn recent_transfers(state: &crate::layout::RunState) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for node in state.nodes.iter().filter(|n| n.state == "running") {
        let Ok(page) = continuum_harness::http_get_timeout(
            node.status_port,
            "/trace?recent",
            status::STATUS_TIMEOUT,
        ) else {
            continue;
        };
        let Ok(answer) = serde_json::from_str::<Value>(&page) else {
            continue;
        };
        for hex in answer["recent"].as_array().into_iter().flatten() {
            if let Some(id) = hex.as_str().and_then(|h| u128::from_str_radix(h, 16).ok()) {
                let id = id.to_string();
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
    }
    ids.truncate(continuum_node::trace::MAX_RECENT);
    ids
}

/// `GET /api/trace?transfer=<decimal id>`: the gathered, checked trace
/// with its drawing, or a 400 for a bad id.
fn trace_answer(layout: &Layout, query: &str) -> (&'static str, String) {
    let id = query
        .strip_prefix("transfer=")
        .and_then(|t| crate::args::parse_u128(t).ok());
    let Some(transfer) = id else {
        return (
            "400 Bad Request",
            json!({"error": format!("expected ?transfer=<decimal id>, got `{query}`")}).to_string(),
        );
    };
    match layout.running_state() {
        Ok(state) => {
            let gathered = crate::trace::gather(&state, transfer);
            let report = continuum_node::trace::check(&gathered.events);
            (
                "200 OK",
                crate::trace::trace_json(&gathered, &report, true).to_string(),
            )
        }
        Err(e) => (
            "503 Service Unavailable",
            json!({"error": e.to_string()}).to_string(),
        ),
    }
}

fn state_json(dash: &Mutex<Dash>) -> String {
    let d = dash.lock().unwrap_or_else(|p| p.into_inner());
    json!({
        "t_ms": d.started.elapsed().as_millis() as u64,
        "view": d.view,
        "samples": d.samples,
        "events": d.events,
    })
    .to_string()
}

fn respond(stream: &mut TcpStream, status: &str, kind: &str, body: &str) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // The browser may have gone; nothing to do then.
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
}

fn serve(mut stream: TcpStream, dash: &Mutex<Dash>, layout: &Layout) {
    let _ = stream.set_read_timeout(Some(REQUEST_TIMEOUT));
    let Ok(reader) = stream.try_clone() else {
        return;
    };
    let mut line = String::new();
    if BufReader::new(std::io::Read::take(reader, MAX_REQUEST_BYTES))
        .read_line(&mut line)
        .is_err()
    {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" {
        respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n",
        );
        return;
    }
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    match path {
        "/" | "/index.html" => respond(&mut stream, "200 OK", "text/html; charset=utf-8", PAGE),
        "/api/trace" => {
            let (status, body) = trace_answer(layout, query);
            respond(&mut stream, status, "application/json", &body)
        }
        "/api/state" => {
            let body = state_json(dash);
            respond(&mut stream, "200 OK", "application/json", &body)
        }
        _ => respond(&mut stream, "404 Not Found", "text/plain", "not found\n"),
    }
}

/// Serves the dashboard until Ctrl-C.
pub fn run(layout: &Layout, port: u16, json_out: bool) -> Result<(), CliError> {
    layout.running_state()?;
    let listener = TcpListener::bind(("127.0.0.1", port))
        .map_err(CliError::io(format!("cannot listen on 127.0.0.1:{port}")))?;
    let addr = listener
        .local_addr()
        .map_err(CliError::io("cannot read the dashboard's address"))?;
    listener
        .set_nonblocking(true)
        .map_err(CliError::io("cannot configure the dashboard socket"))?;
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&stop))
        .map_err(CliError::io("cannot handle Ctrl-C"))?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop))
        .map_err(CliError::io("cannot handle SIGTERM"))?;
    let dash = Arc::new(Mutex::new(Dash {
        started: Instant::now(),
        view: Value::Null,
        samples: VecDeque::new(),
        events: VecDeque::new(),
        previous: Previous::default(),
    }));
    let url = format!("http://{addr}/");
    if json_out {
        println!("{}", json!({"url": url}));
    } else {
        println!("dashboard: {url} (127.0.0.1 only; Ctrl-C stops)");
    }
    let poller = {
        let (dash, stop, layout) = (Arc::clone(&dash), Arc::clone(&stop), layout.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                poll(&layout, &dash);
                let rest = POLL_INTERVAL.saturating_sub(started.elapsed());
                let until = Instant::now() + rest;
                while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        })
    };
    let active = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let _ = stream.set_nonblocking(false);
                if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                    respond(
                        &mut stream,
                        "503 Service Unavailable",
                        "text/plain",
                        "busy\n",
                    );
                    continue;
                }
                active.fetch_add(1, Ordering::Relaxed);
                let (dash, active, layout) =
                    (Arc::clone(&dash), Arc::clone(&active), layout.clone());
                std::thread::spawn(move || {
                    serve(stream, &dash, &layout);
                    active.fetch_sub(1, Ordering::Relaxed);
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => eprintln!("continuum: dashboard: {e}"),
        }
    }
    let _ = poller.join();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE_A: &str = "continuum_drive_seconds_bucket{node=\"1\",le=\"0.001\"} 10\ncontinuum_drive_seconds_bucket{node=\"1\",le=\"0.01\"} 20\ncontinuum_drive_seconds_bucket{node=\"1\",le=\"+Inf\"} 20\ncontinuum_other_bucket{node=\"1\",le=\"1\"} 5\n";
    const PAGE_B: &str = "continuum_drive_seconds_bucket{node=\"1\",le=\"0.001\"} 10\ncontinuum_drive_seconds_bucket{node=\"1\",le=\"0.01\"} 119\ncontinuum_drive_seconds_bucket{node=\"1\",le=\"+Inf\"} 120\n";

    #[test]
    fn buckets_parse_and_quantiles_come_from_the_interval() {
        let a = histogram_buckets(PAGE_A, "drive_seconds");
        assert_eq!(a, vec![(0.001, 10.0), (0.01, 20.0), (f64::INFINITY, 20.0)]);
        let b = histogram_buckets(PAGE_B, "drive_seconds");
        // 100 new observations: 99 in (0.001, 0.01], one above.
        assert_eq!(delta_quantile(&a, &b, 0.5), Some(0.01));
        assert_eq!(delta_quantile(&a, &b, 0.999), Some(f64::INFINITY));
        assert_eq!(delta_quantile(&b, &b, 0.5), None, "no new observations");
        assert_eq!(delta_quantile(&a[..2], &b, 0.5), None);
        assert!(histogram_buckets("garbage{le=\"x\"} y", "drive_seconds").is_empty());
    }

    #[test]
    fn the_page_is_self_contained_and_has_the_trace_view() {
        assert!(
            !PAGE.contains("http://") && !PAGE.contains("https://"),
            "no external URL"
        );
        for id in [
            "nodes",
            "tps-plot",
            "latency-plot",
            "timeline",
            "trace",
            "trace-list",
            "trace-view",
        ] {
            assert!(PAGE.contains(&format!("id=\"{id}\"")), "no #{id}");
        }
        assert!(!PAGE.contains("NOT IMPLEMENTED"));
        assert!(PAGE.contains("/api/trace?transfer="));
        assert!(PAGE.contains("commit_p99_ms") && !PAGE.contains("drive_p"));
    }

    #[test]
    fn a_bad_trace_query_is_a_400() {
        let layout = Layout::new(std::path::Path::new("/nonexistent-continuum"));
        for query in ["", "transfer=", "transfer=abc", "id=5"] {
            let (status, body) = trace_answer(&layout, query);
            assert_eq!(status, "400 Bad Request", "{query}");
            assert!(body.contains("expected ?transfer=<decimal id>"), "{body}");
        }
        let (status, _) = trace_answer(&layout, "transfer=5");
        assert_eq!(status, "503 Service Unavailable");
    }
}
