//! `cluster transfer-leader N`, `cluster remove-node N` and `cluster
//! add-node`: operator membership changes of a running cluster (issue 16, the node half is
//! `continuum_node::membership`).
//!
//! Every change is a [`MembershipCommand`] signed with `keys/operator.key`
//! against the configuration index the leader's `/status` shows
//! (`raft.membership.conf_index`), sent to the leader through the client
//! protocol ([`Client::change_membership`]). The leader answers `Ok` once
//! the change committed and applied there (a leadership transfer: once it
//! started), or a typed refusal whose text is printed as the error (exit 1).
//! A refusal that only means "not yet" (`LeaderNotReady`,
//! `TransferInProgress`) is retried with the same command until the
//! `--timeout`; every other one ends the command at once, so a command made
//! against a configuration that another change has replaced since is never
//! re-signed behind the operator's back (`StaleConfiguration`, exit 1).
//!
//! `remove-node N`: if N leads, leadership goes first to the other voter
//! whose log matches the leader's furthest, and the command waits for it to
//! lead; then `RemoveVoter N` (or `RemoveLearner N`), recorded in
//! `cluster.json` (`removed_at`, so `cluster up` no longer boots N) once the
//! leader reports it applied; then it waits a little for N's own `/status`
//! to say `removed` and stops N's QEMU through the supervisor (unless
//! `--keep-running`).
//!
//! `add-node`: the fabric's node set is fixed when the cluster comes up
//! (`fabric_ports` is the highest member id), so a node can only be added
//! if `cluster init --spare K` made it: its key and config (`join = true`,
//! the boot members as contacts) exist from the start, `cluster up` gives
//! it a fabric port but does not boot it, and no boot configuration lists
//! it. `add-node` takes the lowest spare, boots it through the supervisor
//! (`{"cmd":"start"}`), sends `AddLearner` with its address and key and
//! `promote`, clears `spare` in cluster.json once the leader applied it,
//! and waits until the leader's `/status` lists it as a voter (the leader
//! promotes it once it holds the commit index), printing both times.

use crate::error::CliError;
use crate::layout::{write_json_atomically, Layout, RunState};
use crate::status::{gather, NodeView};
use crate::supervisor::{control, ControlRequest};
use continuum_harness::client::{
    unix_ms, validity_for_window, Client, MembershipRefusal, ReplyBody,
};
use continuum_harness::plan::ClusterFacts;
use continuum_harness::NodeId;
use continuum_node::membership::{MembershipChange, MembershipCommand, SignedMembership};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Longest validity of a membership command: it is signed just before it
/// is sent, so a minute covers any retry (and the genesis window caps it).
const COMMAND_VALIDITY_MS: u64 = 60_000;
/// Between two looks at the nodes' `/status` while waiting.
const POLL: Duration = Duration::from_millis(300);
/// How long `remove-node` waits for the removed node to report its removal
/// before stopping it anyway.
const REMOVAL_NOTICE: Duration = Duration::from_secs(10);

/// The configuration a node's `/status` reports (`raft.membership`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conf {
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    /// Index of the entry that set the configuration in effect (0: boot).
    pub conf_index: u64,
    /// Index of the configuration change this node applied last.
    pub applied_conf_index: u64,
    /// This node's own view: `voter`, `learner`, `joining` or `removed`.
    pub state: String,
}

fn ids(value: &Value) -> Option<Vec<NodeId>> {
    value.as_array()?.iter().map(Value::as_u64).collect()
}

impl Conf {
    /// From one node's `/status` document; `None` if it has no (valid)
    /// `raft.membership` section.
    pub fn of(status: &Value) -> Option<Conf> {
        let m = &status["raft"]["membership"];
        Some(Conf {
            voters: ids(&m["voters"])?,
            learners: ids(&m["learners"])?,
            conf_index: m["conf_index"].as_u64()?,
            applied_conf_index: m["applied_conf_index"].as_u64()?,
            state: m["state"].as_str()?.to_owned(),
        })
    }
}

/// The node that leads, with its `/status`: among the nodes that say they
/// lead, the one of the highest term (a deposed leader that has not heard
/// of the new term yet still says so).
pub fn current_leader(views: &[NodeView]) -> Option<(NodeId, Value)> {
    views
        .iter()
        .filter_map(|v| {
            let status = v.status.as_ref().ok()?;
            let raft = &status["raft"];
            if raft["role"] != "leader" {
                return None;
            }
            Some((raft["term"].as_u64().unwrap_or(0), v.run.id, status.clone()))
        })
        .max_by_key(|(term, _, _)| *term)
        .map(|(_, id, status)| (id, status))
}

/// The voter (not `leaving`) whose log the leader's `/status` shows
/// matching furthest: where leadership goes before `leaving` is removed.
pub fn transfer_target(leader_status: &Value, conf: &Conf, leaving: NodeId) -> Option<NodeId> {
    let matched = |id: NodeId| {
        leader_status["raft"]["peers"]
            .as_array()
            .and_then(|peers| peers.iter().find(|p| p["id"].as_u64() == Some(id)))
            .and_then(|p| p["match_index"].as_u64())
            .unwrap_or(0)
    };
    conf.voters
        .iter()
        .copied()
        .filter(|&id| id != leaving)
        // Highest match index; the lowest id among equals (deterministic).
        .max_by_key(|&id| (matched(id), std::cmp::Reverse(id)))
}

/// Signs `change` of `node` against configuration `conf_index`.
pub fn sign(
    facts: &ClusterFacts,
    operator: &SigningKey,
    change: MembershipChange,
    node: NodeId,
    conf_index: u64,
) -> Vec<u8> {
    let validity = COMMAND_VALIDITY_MS.min(validity_for_window(facts.dedup_window_ms));
    let command = MembershipCommand {
        change,
        node,
        conf_index,
        expires_at: unix_ms() + validity,
    };
    let signature = operator
        .sign(&command.signing_message(u128::from(facts.cluster_id)))
        .to_bytes();
    SignedMembership { command, signature }.encode()
}

/// What a change is called in messages.
fn describe(change: &MembershipChange, node: NodeId) -> String {
    match change {
        MembershipChange::AddLearner { .. } => format!("addition of node {node} as a learner"),
        MembershipChange::PromoteLearner => format!("promotion of node {node}"),
        MembershipChange::RemoveVoter => format!("removal of voter {node}"),
        MembershipChange::RemoveLearner => format!("removal of learner {node}"),
        MembershipChange::TransferLeader => format!("leadership transfer to node {node}"),
    }
}

/// The one-line error of a refusal.
pub fn refusal_error(
    what: &str,
    by: NodeId,
    reason: MembershipRefusal,
    signed_against: u64,
    conf_index: u64,
) -> CliError {
    let mut text = format!("node {by} (leader) refused the {what}: {reason}");
    if reason == MembershipRefusal::StaleConfiguration {
        text.push_str(&format!(
            " (the command was made against configuration index {signed_against}, the leader's is {conf_index}: another change happened meanwhile; look at `cluster status` and run the command again)"
        ));
    }
    CliError::Rejected(text)
}

/// Signs and sends one change; retries "not yet" refusals until
/// `deadline`. Returns the leader's log index of it (a transfer: the
/// leader's last index when it started).
fn submit(
    client: &mut Client,
    facts: &ClusterFacts,
    operator: &SigningKey,
    change: MembershipChange,
    node: NodeId,
    conf_index: u64,
    deadline: Instant,
) -> Result<u64, CliError> {
    let what = describe(&change, node);
    loop {
        let bytes = sign(facts, operator, change, node, conf_index);
        match client.change_membership(bytes)? {
            (_, ReplyBody::Ok { index, .. }) => return Ok(index),
            (
                by,
                ReplyBody::MembershipRefused {
                    reason,
                    conf_index: now,
                },
            ) => {
                if reason.is_transient()
                    && matches!(
                        reason,
                        MembershipRefusal::LeaderNotReady | MembershipRefusal::TransferInProgress
                    )
                    && Instant::now() + POLL < deadline
                {
                    std::thread::sleep(POLL);
                    continue;
                }
                return Err(refusal_error(&what, by, reason, conf_index, now));
            }
            (by, other) => {
                return Err(CliError::Other(format!(
                    "node {by} answered the {what} with {other:?}"
                )))
            }
        }
    }
}

/// Waits until some node leads; returns it, its `/status` and configuration.
fn wait_leader(state: &RunState, deadline: Instant) -> Result<(NodeId, Value, Conf), CliError> {
    loop {
        let views = gather(state);
        if let Some((id, status)) = current_leader(&views) {
            let conf = Conf::of(&status).ok_or_else(|| {
                CliError::Other(format!(
                    "node {id}'s /status has no membership section: its kernel image predates membership changes (rebuild with qemu/build.sh)"
                ))
            })?;
            return Ok((id, status, conf));
        }
        if Instant::now() >= deadline {
            return Err(CliError::Other(
                "no node leads (no quorum?): see `continuum cluster status`".into(),
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// Hands leadership to voter `target` and waits until it leads. Returns
/// the node that led before (`None`: `target` already led).
fn transfer(
    state: &RunState,
    client: &mut Client,
    facts: &ClusterFacts,
    operator: &SigningKey,
    target: NodeId,
    deadline: Instant,
) -> Result<Option<NodeId>, CliError> {
    let (leader, _, conf) = wait_leader(state, deadline)?;
    if leader == target {
        return Ok(None);
    }
    if !conf.voters.contains(&target) {
        return Err(CliError::Rejected(format!(
            "node {target} is not a voter (voters {:?}, learners {:?}): only a voter can lead",
            conf.voters, conf.learners
        )));
    }
    submit(
        client,
        facts,
        operator,
        MembershipChange::TransferLeader,
        target,
        conf.conf_index,
        deadline,
    )?;
    loop {
        let views = gather(state);
        let now = current_leader(&views).map(|(id, _)| id);
        if now == Some(target) {
            return Ok(Some(leader));
        }
        if Instant::now() >= deadline {
            return Err(CliError::Other(format!(
                "leadership did not move to node {target} in time; the leader is {}",
                now.map_or("unknown".into(), |id| format!("node {id}"))
            )));
        }
        std::thread::sleep(POLL);
    }
}

/// A member of cluster.json that was not removed, or why not.
fn check_member(facts: &ClusterFacts, layout: &Layout, node: NodeId) -> Result<(), CliError> {
    match facts.member(node) {
        None => Err(CliError::Rejected(format!(
            "node {node} is not a member of the cluster in {} (members {:?})",
            layout.dir.display(),
            facts.member_ids()
        ))),
        Some(m) => match m.removed_at {
            Some(index) => Err(CliError::Rejected(format!(
                "node {node} was removed from the cluster (at index {index})"
            ))),
            None => Ok(()),
        },
    }
}

/// `cluster transfer-leader N`.
pub fn transfer_leader(
    layout: &Layout,
    target: NodeId,
    timeout: Duration,
    json: bool,
) -> Result<(), CliError> {
    let facts = layout.facts()?;
    check_member(&facts, layout, target)?;
    let operator = layout.operator_key(&facts)?;
    let (mut client, _) = crate::ledger::connect(layout, timeout)?;
    let state = layout.running_state()?;
    let started = Instant::now();
    let before = transfer(
        &state,
        &mut client,
        &facts,
        &operator,
        target,
        started + timeout,
    )?;
    let ms = started.elapsed().as_millis();
    if json {
        println!(
            "{}",
            json!({"leader": target, "previous_leader": before, "elapsed_ms": ms})
        );
    } else {
        match before {
            None => println!("node {target} already leads"),
            Some(old) => println!("node {target} leads now (was node {old}; {ms} ms)"),
        }
    }
    Ok(())
}

/// `cluster remove-node N`.
pub fn remove_node(
    layout: &Layout,
    node: NodeId,
    keep_running: bool,
    timeout: Duration,
    json: bool,
) -> Result<(), CliError> {
    let mut facts = layout.facts()?;
    check_member(&facts, layout, node)?;
    let operator = layout.operator_key(&facts)?;
    let (mut client, _) = crate::ledger::connect(layout, timeout)?;
    let state = layout.running_state()?;
    let started = Instant::now();
    let deadline = started + timeout;
    let (mut leader, leader_status, mut conf) = wait_leader(&state, deadline)?;
    let change = if conf.voters.contains(&node) {
        MembershipChange::RemoveVoter
    } else if conf.learners.contains(&node) {
        MembershipChange::RemoveLearner
    } else {
        return Err(CliError::Rejected(format!(
            "node {node} is not in the configuration in effect at leader {leader} (voters {:?}, learners {:?}, configuration index {}){}",
            conf.voters,
            conf.learners,
            conf.conf_index,
            if facts.member(node).is_some_and(|m| m.spare) {
                ": it is a spare that was never added"
            } else {
                ": if an earlier remove-node of it ended with an unknown outcome, that removal applied"
            }
        )));
    };
    let mut transferred = None;
    if leader == node {
        let target = transfer_target(&leader_status, &conf, node).ok_or_else(|| {
            CliError::Rejected(format!(
                "node {node} is the only voter: the last voter cannot be removed"
            ))
        })?;
        if !json {
            println!("node {node} leads: handing leadership to node {target} first");
        }
        transfer(&state, &mut client, &facts, &operator, target, deadline)?;
        transferred = Some(target);
        (leader, _, conf) = wait_leader(&state, deadline)?;
    }
    let index = submit(
        &mut client,
        &facts,
        &operator,
        change,
        node,
        conf.conf_index,
        deadline,
    )?;
    record_member(layout, &mut facts, node, |m| m.removed_at = Some(index))?;
    // Give it a moment to learn of its removal (the leader keeps sending
    // it the log until the change commits; it may have it already).
    let notice_until = Instant::now() + REMOVAL_NOTICE;
    let mut noticed = false;
    let running = state
        .nodes
        .iter()
        .any(|n| n.id == node && n.state == "running");
    if running {
        loop {
            let views = gather(&state);
            noticed = views
                .iter()
                .filter(|v| v.run.id == node)
                .filter_map(|v| v.status.as_ref().ok().and_then(Conf::of))
                .any(|c| c.state == "removed");
            if noticed || Instant::now() >= notice_until {
                break;
            }
            std::thread::sleep(POLL);
        }
    }
    let stopped = if keep_running || !running {
        false
    } else {
        control(&state, &ControlRequest::Kill { node })?;
        true
    };
    let (_, _, after) = wait_leader(&state, Instant::now() + Duration::from_secs(5)).unwrap_or((
        leader,
        Value::Null,
        conf.clone(),
    ));
    let ms = started.elapsed().as_millis();
    if json {
        println!(
            "{}",
            json!({
                "removed": node,
                "index": index,
                "leader": leader,
                "transferred_to": transferred,
                "noticed": noticed,
                "stopped": stopped,
                "voters": after.voters,
                "learners": after.learners,
                "conf_index": after.conf_index,
                "elapsed_ms": ms,
            })
        );
    } else {
        println!(
            "node {node} removed at index {index} (leader node {leader}); voters now {:?}, learners {:?}",
            after.voters, after.learners
        );
        println!(
            "node {node} {}; {}",
            if noticed {
                "reports its removal"
            } else if running {
                "did not report its removal in time (the others refuse it anyway)"
            } else {
                "was not running"
            },
            if stopped {
                "its QEMU is stopped"
            } else if keep_running && running {
                "its QEMU keeps running (--keep-running): stop it with `cluster down` or `nemesis kill`"
            } else {
                "nothing to stop"
            }
        );
    }
    Ok(())
}

/// The spare `add-node` takes next: the lowest id made by `cluster init
/// --spare` that was neither added nor removed.
/// Edits member `node` in `cluster.json` and writes it back.
fn record_member(
    layout: &Layout,
    facts: &mut ClusterFacts,
    node: NodeId,
    edit: impl FnOnce(&mut continuum_harness::plan::MemberFacts),
) -> Result<(), CliError> {
    if let Some(member) = facts.members.iter_mut().find(|m| m.id == node) {
        edit(member);
    }
    write_json_atomically(&layout.facts_path(), facts)
}

pub fn next_spare(facts: &ClusterFacts) -> Option<NodeId> {
    facts
        .members
        .iter()
        .filter(|m| m.spare && m.removed_at.is_none())
        .map(|m| m.id)
        .min()
}

/// `cluster add-node`: boots the next spare, adds it as a learner that the
/// leader promotes once it has caught up, and waits until it votes.
pub fn add_node(layout: &Layout, timeout: Duration, json: bool) -> Result<(), CliError> {
    let mut facts = layout.facts()?;
    let node = next_spare(&facts).ok_or_else(|| {
        CliError::Rejected(format!(
            "no spare node left in {}: add-node boots a spare made by `cluster init --spare K` (the fabric's ports are fixed when the cluster comes up)",
            layout.dir.display()
        ))
    })?;
    let member = facts.member(node).expect("next_spare is a member").clone();
    let node_key = continuum_harness::plan::parse_hex32(&member.public_key).ok_or_else(|| {
        CliError::Other(format!(
            "{}: node {node}'s public key is not 64 hex digits",
            layout.facts_path().display()
        ))
    })?;
    let operator = layout.operator_key(&facts)?;
    let (mut client, _) = crate::ledger::connect(layout, timeout)?;
    let state = layout.running_state()?;
    if !state.nodes.iter().any(|n| n.id == node) {
        return Err(CliError::Other(format!(
            "the running cluster has no slot for spare node {node} (it came up before the spare existed): restart it with `cluster down` and `cluster up`"
        )));
    }
    let started = Instant::now();
    let deadline = started + timeout;
    let (_, _, conf) = wait_leader(&state, deadline)?;
    if conf.voters.contains(&node) || conf.learners.contains(&node) {
        return Err(CliError::Rejected(format!(
            "node {node} is already in the configuration (voters {:?}, learners {:?})",
            conf.voters, conf.learners
        )));
    }
    // Boot it first: it waits, not voting, for the leader to reach it.
    if let Err(e) = control(&state, &ControlRequest::Start { node }) {
        if !e.to_string().contains("already running") {
            return Err(e);
        }
    }
    if !json {
        println!("node {node} booting (spare); adding it as a learner");
    }
    let change = MembershipChange::AddLearner {
        lan_ip: member.lan_ip,
        node_key,
        promote: true,
    };
    let index = submit(
        &mut client,
        &facts,
        &operator,
        change,
        node,
        conf.conf_index,
        deadline,
    )?;
    let learner_ms = started.elapsed().as_millis();
    record_member(layout, &mut facts, node, |m| m.spare = false)?;
    // The leader promotes it once it holds the commit index.
    let (leader, status) = loop {
        let views = gather(&state);
        if let Some((leader, status)) = current_leader(&views) {
            if Conf::of(&status).is_some_and(|c| c.voters.contains(&node)) {
                break (leader, status);
            }
        }
        if Instant::now() >= deadline {
            return Err(CliError::Other(format!(
                "node {node} was added as a learner at index {index} but is not a voter after {} s; see `cluster status` (its match index against the commit index) and its console; raise --timeout for a large ledger",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(POLL);
    };
    let voting_ms = started.elapsed().as_millis();
    let conf = Conf::of(&status).expect("checked above");
    let raft = &status["raft"];
    let (commit, snapshot_bytes) = (raft["commit"].as_u64(), raft["snapshot_bytes"].as_u64());
    if json {
        println!(
            "{}",
            json!({
                "added": node,
                "index": index,
                "leader": leader,
                "learner_ms": learner_ms,
                "voting_ms": voting_ms,
                "voters": conf.voters,
                "learners": conf.learners,
                "conf_index": conf.conf_index,
                "commit": commit,
                "snapshot_bytes": snapshot_bytes,
            })
        );
    } else {
        println!(
            "node {node} added as a learner at index {index} ({learner_ms} ms) and voting after {voting_ms} ms (ledger: commit index {}, snapshot {} bytes); voters now {:?}",
            commit.unwrap_or(0),
            snapshot_bytes.unwrap_or(0),
            conf.voters
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::tests::view;
    use continuum_harness::plan::ClusterPlan;

    fn status(role: &str, term: u64, voters: &[u64], peers: &[(u64, u64)]) -> Value {
        let peers: Vec<Value> = peers
            .iter()
            .map(|&(id, m)| json!({"id": id, "match_index": m}))
            .collect();
        json!({"raft": {"role": role, "term": term, "peers": peers, "membership": {
            "voters": voters, "learners": [4], "conf_index": 7, "applied_conf_index": 7,
            "voting": true, "state": "voter"}}})
    }

    #[test]
    fn the_configuration_comes_from_status_and_a_bad_section_is_none() {
        let s = status("leader", 2, &[1, 2, 3], &[]);
        let conf = Conf::of(&s).unwrap();
        assert_eq!(conf.voters, [1, 2, 3]);
        assert_eq!(conf.learners, [4]);
        assert_eq!(conf.conf_index, 7);
        assert_eq!(conf.state, "voter");
        assert_eq!(Conf::of(&json!({"raft": {}})), None);
        assert_eq!(
            Conf::of(&json!({"raft": {"membership": {"voters": ["x"]}}})),
            None
        );
    }

    #[test]
    fn the_leader_of_the_highest_term_wins_and_the_best_follower_is_the_target() {
        let views = [
            view(1, Ok(status("leader", 2, &[1, 2, 3], &[]))),
            view(2, Ok(status("leader", 3, &[1, 2, 3], &[(1, 9), (3, 12)]))),
            view(3, Err("paused".into())),
        ];
        let (id, s) = current_leader(&views).unwrap();
        assert_eq!(id, 2);
        let conf = Conf::of(&s).unwrap();
        assert_eq!(transfer_target(&s, &conf, 2), Some(3));
        // Equal match: the lowest id; the leaving node is never the target.
        let s = status("leader", 3, &[1, 2, 3], &[(1, 12), (3, 12)]);
        assert_eq!(transfer_target(&s, &conf, 2), Some(1));
        assert_eq!(transfer_target(&s, &conf, 1), Some(3));
        let alone = Conf {
            voters: vec![2],
            ..conf
        };
        assert_eq!(transfer_target(&s, &alone, 2), None);
        assert!(current_leader(&views[2..]).is_none());
    }

    #[test]
    fn commands_are_signed_for_this_cluster_against_the_given_index() {
        let plan = ClusterPlan::from_seed(3, 3).unwrap();
        let facts = plan.facts();
        let bytes = sign(&facts, &plan.operator, MembershipChange::RemoveVoter, 2, 11);
        let signed = SignedMembership::decode(&bytes).unwrap();
        assert_eq!(signed.command.node, 2);
        assert_eq!(signed.command.conf_index, 11);
        assert_eq!(signed.command.change, MembershipChange::RemoveVoter);
        let ahead = signed.command.expires_at.saturating_sub(unix_ms());
        assert!(ahead > 50_000 && ahead <= COMMAND_VALIDITY_MS, "{ahead}");
        let message = signed.command.signing_message(u128::from(facts.cluster_id));
        let signature = ed25519_dalek::Signature::from_bytes(&signed.signature);
        plan.operator
            .verifying_key()
            .verify_strict(&message, &signature)
            .unwrap();
        let other = signed
            .command
            .signing_message(u128::from(facts.cluster_id) + 1);
        assert!(plan
            .operator
            .verifying_key()
            .verify_strict(&other, &signature)
            .is_err());
    }

    #[test]
    fn add_node_takes_the_lowest_spare_not_added_or_removed() {
        let mut plan = ClusterPlan::from_seed(3, 6).unwrap();
        plan.spares = vec![4, 5, 6];
        let mut facts = plan.facts();
        assert_eq!(next_spare(&facts), Some(4));
        facts.members[3].spare = false; // added
        facts.members[4].removed_at = Some(30); // added, then removed
        assert_eq!(next_spare(&facts), Some(6));
        facts.members[5].spare = false;
        assert_eq!(next_spare(&facts), None);
        assert_eq!(
            next_spare(&ClusterPlan::from_seed(3, 3).unwrap().facts()),
            None
        );
    }

    #[test]
    fn refusals_are_one_line_with_the_core_text() {
        for reason in [
            MembershipRefusal::WouldLoseQuorum,
            MembershipRefusal::ChangeInProgress,
            MembershipRefusal::RemoveLeader,
            MembershipRefusal::StaleConfiguration,
        ] {
            let e = refusal_error("removal of voter 2", 1, reason, 4, 9);
            let text = e.to_string();
            assert!(!text.contains('\n'), "{text}");
            assert!(text.contains(&reason.to_string()), "{text}");
            assert!(text.starts_with("node 1 (leader) refused the removal of voter 2: "));
            assert_eq!(e.exit_code(), 1);
        }
        let stale = refusal_error("x", 1, MembershipRefusal::StaleConfiguration, 4, 9).to_string();
        assert!(
            stale.contains("index 4") && stale.contains("is 9"),
            "{stale}"
        );
    }
}
