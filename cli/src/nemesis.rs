//! `nemesis`: faults on purpose. Network faults (partitions, isolation,
//! loss, delay and jitter, duplication, corruption, replay) go to the
//! fabric's control socket — the per-link ones change only their own field
//! of each link's plan, so faults combine; process faults (kill, restart,
//! pause, resume) and clock steps (`skew`, typed into the node's serial
//! shell) to the supervisor, which owns the QEMU processes.

use crate::args::{NemesisCommand, Shape};
use crate::error::CliError;
use crate::layout::{Layout, RunState};
use crate::supervisor::{control, ControlRequest};
use continuum_fabric::control::edit_links as fabric_edit_links;
use continuum_fabric::{ControlClient, LinkFaults, Request};
use continuum_harness::cluster::{shape_bridge, shape_halves, shape_ring};
use continuum_harness::NodeId;
use serde_json::json;

fn check_node(state: &RunState, node: NodeId) -> Result<(), CliError> {
    if state.nodes.iter().any(|n| n.id == node) {
        Ok(())
    } else {
        let ids: Vec<NodeId> = state.nodes.iter().map(|n| n.id).collect();
        Err(CliError::Other(format!(
            "node {node} is not in this cluster (nodes {ids:?})"
        )))
    }
}

fn fabric(state: &RunState, request: &Request) -> Result<(), CliError> {
    let mut client = ControlClient::connect(&state.fabric_control)
        .map_err(|e| CliError::NotRunning(format!("the fabric does not answer: {e}")))?;
    client
        .request(request)
        .map(|_| ())
        .map_err(|e| CliError::Other(format!("the fabric refused: {e}")))
}

/// Changes one aspect of the fault plan of link `from → to`, or of every
/// link, keeping the rest of each plan; returns "on ..." for the message.
fn edit_links(
    state: &RunState,
    from: Option<NodeId>,
    to: Option<NodeId>,
    edit: impl Fn(&mut LinkFaults),
) -> Result<String, CliError> {
    let only = match (from, to) {
        (Some(from), Some(to)) => {
            check_node(state, from)?;
            check_node(state, to)?;
            if from == to {
                return Err(CliError::Other("--from and --to name the same node".into()));
            }
            Some((from, to))
        }
        _ => None,
    };
    let mut client = ControlClient::connect(&state.fabric_control)
        .map_err(|e| CliError::NotRunning(format!("the fabric does not answer: {e}")))?;
    fabric_edit_links(
        |r| {
            client
                .request(r)
                .map_err(|e| format!("the fabric refused: {e}"))
        },
        |a, b| only.is_none_or(|link| link == (a, b)),
        edit,
    )
    .map_err(CliError::Other)?;
    Ok(match only {
        Some((a, b)) => format!("from node {a} to node {b}"),
        None => "on every link".into(),
    })
}

/// How long `skew` waits for the node's `/status` to show its step.
const SKEW_CONFIRM: std::time::Duration = std::time::Duration::from_secs(10);

fn wall_step(state: &RunState, node: NodeId) -> Result<i64, String> {
    let port = state
        .nodes
        .iter()
        .find(|n| n.id == node)
        .map(|n| n.status_port)
        .ok_or("no such node")?;
    let page = continuum_harness::http_get_timeout(port, "/status", crate::status::STATUS_TIMEOUT)?;
    let status: serde_json::Value = serde_json::from_str(&page).map_err(|e| e.to_string())?;
    status["clock"]["wall_step_ms"]
        .as_i64()
        .ok_or_else(|| "its /status has no clock.wall_step_ms".to_string())
}

/// Steps node `node`'s wall clock by `ms` through its shell and waits
/// until its `/status` shows the new total (the shell polls COM1).
fn skew(state: &RunState, node: NodeId, ms: i64) -> Result<String, CliError> {
    let before = wall_step(state, node)
        .map_err(|e| CliError::Other(format!("node {node} does not answer /status: {e}")))?;
    control(state, &ControlRequest::Skew { node, ms })?;
    let deadline = std::time::Instant::now() + SKEW_CONFIRM;
    loop {
        let now = wall_step(state, node);
        if now.as_ref().is_ok_and(|&t| t == before + ms) {
            return Ok(format!(
                "node {node}'s wall clock stepped by {ms} ms, now {} ms off its RTC (peers refuse its HLC stamps beyond the 500 ms max offset: raft.peers[].skew_rejections on their /status)",
                before + ms
            ));
        }
        if std::time::Instant::now() >= deadline {
            return Err(CliError::Other(format!(
                "node {node} did not take the step within {} s (its /status says {now:?} ms off, expected {}); see its console",
                SKEW_CONFIRM.as_secs(),
                before + ms
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Runs one nemesis command and says what it did.
pub fn run(layout: &Layout, command: &NemesisCommand, json: bool) -> Result<(), CliError> {
    let state = layout.running_state()?;
    let ids: Vec<NodeId> = state.nodes.iter().map(|n| n.id).collect();
    let done = match command {
        NemesisCommand::Partition { groups, shape } => {
            let groups = match (groups, shape) {
                (Some(groups), _) => groups.0.clone(),
                (None, Some(Shape::Halves)) => shape_halves(&ids),
                (None, Some(Shape::Ring)) => shape_ring(&ids),
                (None, Some(Shape::Bridge)) => shape_bridge(&ids),
                (None, None) => return Err(CliError::Other("give --groups or --shape".into())),
            };
            for &node in groups.iter().flatten() {
                check_node(&state, node)?;
            }
            fabric(
                &state,
                &Request::Partition {
                    groups: groups.clone(),
                },
            )?;
            let text: Vec<String> = groups
                .iter()
                .map(|g| {
                    g.iter()
                        .map(NodeId::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .collect();
            format!(
                "partitioned: {} (a node talks only to nodes of a group it is in)",
                text.join(" / ")
            )
        }
        NemesisCommand::Isolate { node } => {
            check_node(&state, *node)?;
            fabric(&state, &Request::Isolate { node: *node })?;
            format!("node {node} isolated")
        }
        NemesisCommand::Heal => {
            fabric(&state, &Request::Reset)?;
            "healed: no partitions, no link faults (loss, delay, duplication, corruption, replay)"
                .into()
        }
        NemesisCommand::Kill { node } => {
            check_node(&state, *node)?;
            control(&state, &ControlRequest::Kill { node: *node })?;
            format!("node {node} killed (SIGKILL)")
        }
        NemesisCommand::Restart { node } => {
            check_node(&state, *node)?;
            control(&state, &ControlRequest::Restart { node: *node })?;
            format!("node {node} restarted on its disk")
        }
        NemesisCommand::Pause { node } => {
            check_node(&state, *node)?;
            control(&state, &ControlRequest::Pause { node: *node })?;
            format!("node {node} paused")
        }
        NemesisCommand::Resume { node } => {
            check_node(&state, *node)?;
            control(&state, &ControlRequest::Resume { node: *node })?;
            format!("node {node} resumed")
        }
        NemesisCommand::Skew { node, ms } => {
            check_node(&state, *node)?;
            skew(&state, *node, *ms)?
        }
        NemesisCommand::Loss { percent, from, to } => {
            let scope = edit_links(&state, *from, *to, |f| f.drop = percent / 100.0)?;
            format!("dropping {percent}% of frames {scope}")
        }
        NemesisCommand::Delay {
            ms,
            jitter,
            from,
            to,
        } => {
            let scope = edit_links(&state, *from, *to, |f| {
                f.delay_ms = *ms;
                f.jitter_ms = *jitter;
            })?;
            if *ms == 0 && *jitter == 0 {
                format!("no added delay {scope}")
            } else {
                format!("delaying frames {ms} ms + 0..={jitter} ms of jitter {scope}")
            }
        }
        NemesisCommand::Duplicate(p) => {
            let scope = edit_links(&state, p.from, p.to, |f| f.dup = p.percent / 100.0)?;
            format!("duplicating {}% of frames {scope}", p.percent)
        }
        NemesisCommand::Corrupt(p) => {
            let scope = edit_links(&state, p.from, p.to, |f| f.corrupt = p.percent / 100.0)?;
            format!(
                "corrupting {}% of peer (UDP) frames {scope}; receivers count them in /status peer_messages.forged",
                p.percent
            )
        }
        NemesisCommand::Replay(p) => {
            let scope = edit_links(&state, p.from, p.to, |f| f.replay = p.percent / 100.0)?;
            format!(
                "replaying an earlier frame along with {}% of frames {scope}",
                p.percent
            )
        }
    };
    if json {
        println!("{}", json!({"ok": true, "message": done}));
    } else {
        println!("{done}");
    }
    Ok(())
}
