//! `cluster status` and `watch`: every node's `GET /status`, fetched in
//! parallel with a short timeout (a paused node must not hold up the
//! table), shown as one row per node.

use crate::layout::{Layout, NodeRun, RunState};
use serde_json::{json, Value};
use std::time::Duration;

/// How long one node's `/status` may take before its row says so.
pub const STATUS_TIMEOUT: Duration = Duration::from_millis(800);

/// One node as the supervisor and the node itself see it.
#[derive(Clone, Debug)]
pub struct NodeView {
    pub run: NodeRun,
    /// The node's `/status`, or why it could not be read.
    pub status: Result<Value, String>,
}

/// Reads every node's `/status` at once.
pub fn gather(state: &RunState) -> Vec<NodeView> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = state
            .nodes
            .iter()
            .map(|node| {
                scope.spawn(move || {
                    let status = match node.state.as_str() {
                        "down" => Err("not running".to_owned()),
                        // Its CPUs are stopped: it cannot answer.
                        "paused" => Err("paused".to_owned()),
                        _ => continuum_harness::http_get_timeout(
                            node.status_port,
                            "/status",
                            STATUS_TIMEOUT,
                        )
                        .map_err(|e| {
                            if e.contains("os error 11") || e.contains("timed out") {
                                format!("no answer in {} ms", STATUS_TIMEOUT.as_millis())
                            } else {
                                e
                            }
                        })
                        .and_then(|body| {
                            serde_json::from_str(&body).map_err(|e| format!("bad JSON: {e}"))
                        }),
                    };
                    NodeView {
                        run: node.clone(),
                        status,
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("status thread panicked"))
            .collect()
    })
}

/// The leader most nodes agree on, if any node leads.
pub fn leader(views: &[NodeView]) -> Option<u64> {
    views.iter().find_map(|v| {
        let raft = &v.status.as_ref().ok()?["raft"];
        (raft["role"] == "leader")
            .then(|| raft["leader"].as_u64())
            .flatten()
    })
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The table `cluster status` and `watch` print: per node its process
/// state, Raft role, term and leader, commit and applied index, the log's
/// first index and the snapshot index (compaction at work), and the
/// receipt-chain head.
pub fn table(views: &[NodeView]) -> String {
    const HEADER: [&str; 9] = [
        "node", "process", "role", "term", "leader", "commit", "applied", "first", "snapshot",
    ];
    let row = |cells: [String; 9], head: &str| {
        format!(
            "{:<5} {:<8} {:<14} {:>5} {:>6} {:>7} {:>7} {:>7} {:>8}  {head}\n",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            cells[5],
            cells[6],
            cells[7],
            cells[8]
        )
    };
    let mut out = row(HEADER.map(String::from), "chain head");
    for view in views {
        let (id, process) = (view.run.id.to_string(), view.run.state.to_string());
        let dash = || String::from("-");
        let (cells, head) = match &view.status {
            Ok(status) if status["raft"].is_object() => {
                let raft = &status["raft"];
                let hash = raft["chain_head"]["hash"].as_str().unwrap_or("");
                let leader = match raft["leader"].as_u64() {
                    Some(0) | None => dash(),
                    Some(id) => id.to_string(),
                };
                (
                    [
                        id,
                        process,
                        // A learner, joiner or removed node says so
                        // instead of its Raft role (a follower).
                        match raft["membership"]["state"].as_str() {
                            Some(m @ ("learner" | "joining" | "removed")) => m.to_owned(),
                            _ => cell(&raft["role"]),
                        },
                        cell(&raft["term"]),
                        leader,
                        cell(&raft["commit"]),
                        cell(&raft["applied"]),
                        cell(&raft["first_index"]),
                        cell(&raft["snapshot_index"]),
                    ],
                    format!(
                        "{} {}",
                        cell(&raft["chain_head"]["index"]),
                        &hash[..hash.len().min(16)]
                    ),
                )
            }
            Ok(_) => only_role(id, process, "no consensus (see console)".into()),
            Err(why) => only_role(id, process, format!("({why})")),
        };
        out.push_str(&row(cells, &head));
    }
    out
}

/// A table row with only the node, its process state and `role` (no Raft
/// fields to show), and no chain head.
fn only_role(id: String, process: String, role: String) -> ([String; 9], String) {
    let mut cells: [String; 9] = core::array::from_fn(|_| String::from("-"));
    cells[0] = id;
    cells[1] = process;
    cells[2] = role;
    (cells, String::from("-"))
}

/// `cluster status`.
pub fn status(layout: &Layout, json: bool) -> Result<(), crate::error::CliError> {
    let facts = layout.facts()?;
    let state = layout.running_state()?;
    let mut views = gather(&state);
    for view in &mut views {
        // `remove-node` stopped it: say why it is down.
        if view.run.state == "down" && !facts.is_active_member(view.run.id) {
            view.run.state = "removed".into();
        }
    }
    if json {
        let nodes: Vec<Value> = views
            .iter()
            .map(|v| {
                json!({
                    "id": v.run.id,
                    "process": v.run.state,
                    "pid": v.run.pid,
                    "status_port": v.run.status_port,
                    "client_port": v.run.client_port,
                    "console": v.run.console,
                    "status": v.status.as_ref().ok(),
                    "status_error": v.status.as_ref().err(),
                })
            })
            .collect();
        println!(
            "{}",
            json!({
                "cluster_id": state.cluster_id,
                "supervisor_pid": state.supervisor_pid,
                "leader": leader(&views),
                "configuration": crate::members::current_leader(&views)
                    .and_then(|(_, s)| Some(s["raft"]["membership"].clone()).filter(|m| m.is_object())),
                "nodes": nodes,
            })
        );
    } else {
        println!(
            "cluster {} (supervisor pid {}), leader: {}",
            state.cluster_id,
            state.supervisor_pid,
            leader(&views).map_or("none".into(), |l| format!("node {l}"))
        );
        print!("{}", table(&views));
        print!("{}", configuration(&views));
    }
    Ok(())
}

/// The configuration lines of `cluster status`: voters, learners and the
/// configuration index as the leader (else the first node that answers)
/// reports them, and each learner's match index against the commit index.
pub fn configuration(views: &[NodeView]) -> String {
    let from = crate::members::current_leader(views).or_else(|| {
        views
            .iter()
            .find_map(|v| Some((v.run.id, v.status.as_ref().ok()?.clone())))
    });
    let Some((id, status)) = from else {
        return "configuration: unknown (no node answers)\n".into();
    };
    let Some(conf) = crate::members::Conf::of(&status) else {
        return format!("configuration: node {id} does not report it (kernel image without membership changes?)\n");
    };
    let list = |ids: &[u64]| {
        if ids.is_empty() {
            "none".to_owned()
        } else {
            ids.iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let pending = if conf.applied_conf_index != conf.conf_index {
        format!(" (not applied yet; applied: {})", conf.applied_conf_index)
    } else {
        String::new()
    };
    let mut out = format!(
        "configuration (as node {id} reports it): voters {}; learners {}; configuration index {}{pending}\n",
        list(&conf.voters),
        list(&conf.learners),
        conf.conf_index
    );
    let commit = status["raft"]["commit"].as_u64().unwrap_or(0);
    for learner in &conf.learners {
        let matched = status["raft"]["peers"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["id"].as_u64() == Some(*learner)))
            .and_then(|p| p["match_index"].as_u64());
        out.push_str(&format!(
            "  learner {learner}: match index {} of commit {commit}\n",
            matched.map_or("-".into(), |m| m.to_string())
        ));
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A running node's view with `status` (shared with `members.rs`).
    pub(crate) fn view(id: continuum_harness::NodeId, status: Result<Value, String>) -> NodeView {
        NodeView {
            run: NodeRun {
                id,
                state: "running".into(),
                pid: Some(1),
                status_port: 1,
                client_port: 2,
                console: "c".into(),
                disk: "d".into(),
                last_exit: None,
            },
            status,
        }
    }

    #[test]
    fn the_table_shows_raft_fields_and_why_a_node_is_missing() {
        let leader_status = json!({"raft": {"role": "leader", "term": 3, "leader": 1, "commit": 9,
            "applied": 9, "first_index": 5, "snapshot_index": 4,
            "chain_head": {"index": 9, "hash": "00112233445566778899aabbccddeeff00"}}});
        let views = [
            view(1, Ok(leader_status)),
            view(2, Ok(json!({"raft": null}))),
            view(3, Err("connection refused".into())),
        ];
        assert_eq!(leader(&views), Some(1));
        let text = table(&views);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].contains("leader") && lines[1].contains("9 0011223344556677"),
            "{text}"
        );
        assert!(!lines[1].contains("8899"), "hash shortened: {text}");
        assert!(
            lines[0].contains("first") && lines[0].contains("snapshot"),
            "{text}"
        );
        let cells: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(&cells[5..9], ["9", "9", "5", "4"], "{text}");
        assert!(lines[2].contains("no consensus"), "{text}");
        assert!(lines[3].contains("(connection refused)"), "{text}");
        assert_eq!(leader(&views[1..]), None);
    }

    #[test]
    fn the_configuration_and_membership_states_are_shown() {
        let member = |role: &str, state: &str| {
            json!({"raft": {"role": role, "term": 4, "leader": 1, "commit": 20, "applied": 20,
                "peers": [{"id": 4, "match_index": 17}],
                "membership": {"voters": [1, 2], "learners": [4], "conf_index": 19,
                    "applied_conf_index": 18, "voting": state == "voter", "state": state}}})
        };
        let views = [
            view(1, Ok(member("leader", "voter"))),
            view(3, Ok(member("follower", "removed"))),
            view(4, Ok(member("follower", "learner"))),
        ];
        let text = table(&views);
        let roles: Vec<&str> = text
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().nth(2).unwrap())
            .collect();
        assert_eq!(roles, ["leader", "removed", "learner"], "{text}");
        let conf = configuration(&views);
        assert!(
            conf.contains(
                "voters 1, 2; learners 4; configuration index 19 (not applied yet; applied: 18)"
            ),
            "{conf}"
        );
        assert!(
            conf.contains("learner 4: match index 17 of commit 20"),
            "{conf}"
        );
        let none = configuration(&[view(1, Err("paused".into()))]);
        assert!(none.contains("no node answers"), "{none}");
        let old = configuration(&[view(1, Ok(json!({"raft": {"role": "leader"}})))]);
        assert!(old.contains("does not report it"), "{old}");
    }
}
