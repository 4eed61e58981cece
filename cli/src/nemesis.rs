//! `nemesis`: faults on purpose. Network faults (partitions, isolation,
//! loss) go to the fabric's control socket; process faults (kill, restart,
//! pause, resume) to the supervisor, which owns the QEMU processes.

use crate::args::{NemesisCommand, Shape};
use crate::error::CliError;
use crate::layout::{Layout, RunState};
use crate::supervisor::{control, ControlRequest};
use continuum_fabric::{ControlClient, LinkFaults, Request};
use continuum_harness::cluster::{shape_bridge, shape_halves, shape_ring};
use serde_json::json;

fn check_node(state: &RunState, node: u8) -> Result<(), CliError> {
    if state.nodes.iter().any(|n| n.id == node) {
        Ok(())
    } else {
        let ids: Vec<u8> = state.nodes.iter().map(|n| n.id).collect();
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

/// Runs one nemesis command and says what it did.
pub fn run(layout: &Layout, command: &NemesisCommand, json: bool) -> Result<(), CliError> {
    let state = layout.running_state()?;
    let ids: Vec<u8> = state.nodes.iter().map(|n| n.id).collect();
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
            let wire = groups
                .iter()
                .map(|g| g.iter().map(|&n| u16::from(n)).collect())
                .collect();
            fabric(&state, &Request::Partition { groups: wire })?;
            let text: Vec<String> = groups
                .iter()
                .map(|g| g.iter().map(u8::to_string).collect::<Vec<_>>().join(","))
                .collect();
            format!(
                "partitioned: {} (a node talks only to nodes of a group it is in)",
                text.join(" / ")
            )
        }
        NemesisCommand::Isolate { node } => {
            check_node(&state, *node)?;
            fabric(
                &state,
                &Request::Isolate {
                    node: u16::from(*node),
                },
            )?;
            format!("node {node} isolated")
        }
        NemesisCommand::Heal => {
            fabric(&state, &Request::Reset)?;
            "healed: no partitions, no packet loss".into()
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
        NemesisCommand::Loss { percent, from, to } => {
            let faults = LinkFaults {
                drop: percent / 100.0,
                ..LinkFaults::default()
            };
            match (from, to) {
                (Some(from), Some(to)) => {
                    check_node(&state, *from)?;
                    check_node(&state, *to)?;
                    if from == to {
                        return Err(CliError::Other("--from and --to name the same node".into()));
                    }
                    fabric(
                        &state,
                        &Request::link(u16::from(*from), u16::from(*to), &faults),
                    )?;
                    format!("dropping {percent}% of frames from node {from} to node {to}")
                }
                _ => {
                    fabric(
                        &state,
                        &Request::links(&faults),
                    )?;
                    format!("dropping {percent}% of frames on every link")
                }
            }
        }
    };
    if json {
        println!("{}", json!({"ok": true, "message": done}));
    } else {
        println!("{done}");
    }
    Ok(())
}
