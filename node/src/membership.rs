//! Membership in the node: the operator-signed command that changes it, the
//! directory of members (ids, LAN addresses, public keys) that follows the
//! log, and what a snapshot carries of it (issue 16; the Raft half is
//! `continuum_raft::membership`).
//!
//! # The command
//!
//! A change of membership is an operator decision, authenticated like
//! account creation: a [`MembershipCommand`] signed by the genesis
//! operator key. It names the change (add a learner, promote a learner,
//! remove a voter or a learner, or hand leadership over), the node, and
//! for an addition the new member's LAN address and Ed25519 public key
//! and whether the leader should promote it once it has caught up. It also
//! carries:
//!
//! * `conf_index`: the index of the configuration the change is made
//!   against (`Raft::conf_index`, shown by `/status`). The leader proposes
//!   it only if that is still the configuration in effect, and every node
//!   applies it only if it is the configuration it applied last. So a
//!   captured command can never apply twice (the index moves on with every
//!   change) and two operators racing each other cannot both win.
//! * `expires_at`: cluster HLC milliseconds after which it no longer
//!   applies, at most the genesis `max_expiry_window_ms` ahead (the bank's
//!   rule for every signed command).
//!
//! Signed message: [`MEMBER_SIGNING_DOMAIN`] ‖ cluster id (16, LE) ‖ body.
//! Body ([`MEMBERSHIP_BODY_LEN`] bytes, fixed-width, big-endian):
//! `kind u8 | node u64 | lan_ip [4] | node_key [32] | flags u8 | conf_index
//! u64 | expires_at u64`. Fields a kind does not use are zero, and bit 0
//! of `flags` (promote when caught up) is the only flag, for additions
//! only, so every command has one encoding. On the wire: body ‖ signature.
//!
//! # Checked twice, like every signed command
//!
//! The leader checks a command at admission ([`check`]): signature,
//! expiry against the HLC it stamps on the entry, configuration index, and
//! for an addition a usable key, a non-zero address and no member already
//! using either. Only then does it propose `ConfChange { kind, node,
//! context }`, `context` = [`EntryHeader`] (origin, tag, that HLC) ‖
//! [`ConfContext`]. Every node checks the same again when the entry
//! commits ([`check_committed`]), against the same HLC and the
//! configuration it applied last, so the verdict is the same everywhere.
//! Raft has already acted on the entry (in effect on append), so a
//! committed change that fails the check is not "refused": it means the log
//! holds a change the operator did not sign, and the node halts loudly
//! (`NodeError::Membership`) rather than follow it.
//!
//! # Promotion
//!
//! An addition asks to be promoted once caught up (the CLI always does):
//! the leader then proposes `PromoteLearner` itself as soon as Raft
//! accepts it (the learner holds the commit index; `LearnerBehind`
//! otherwise), with [`ConfContext::Promotion`] and no signature: the
//! operator authorized it with the addition, whose flag the directory
//! keeps (and snapshots carry) so every node can check it at apply.
//!
//! # The directory
//!
//! [`Directory`]: for every member, its LAN address, public key and
//! whether it waits for automatic promotion, as of the last applied
//! configuration entry (whose index it records). It starts from the boot
//! facts (the members `cluster init` wrote into the config, or for a
//! joining node the members it was told to contact), is replaced by a
//! snapshot's, and follows committed changes: an addition enters it, a
//! removal leaves it. Peer authentication keys follow it
//! (`Node::peer_directory`), plus the member an appended but uncommitted
//! addition brings (so the leader's first append to a new learner is
//! already authenticated).
//!
//! # In a snapshot
//!
//! The node's snapshot data is [`SNAPSHOT_SECTION_MAGIC`] ‖ the directory
//! ‖ the bank ledger's snapshot ([`split_snapshot`]); data without the
//! section (written before membership changes) is the ledger alone, with
//! the boot directory.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

use continuum_bank::OwnerKey;
use continuum_raft::{ConfChangeError, ConfChangeKind, ConfState, NodeId, TransferError};

use crate::wire::{EntryHeader, WireError};

/// Domain-separation tag of a signed membership command.
pub const MEMBER_SIGNING_DOMAIN: &[u8; 16] = b"continuum-memb/1";
/// Body length of a [`MembershipCommand`].
pub const MEMBERSHIP_BODY_LEN: usize = 1 + 8 + 4 + 32 + 1 + 8 + 8;
/// Length of a signed command: body and Ed25519 signature.
pub const SIGNED_MEMBERSHIP_LEN: usize = MEMBERSHIP_BODY_LEN + 64;
/// Most members (voters and learners) a cluster may have: what a stored
/// snapshot header can list (`continuum_storage::MAX_SNAPSHOT_MEMBERS`).
pub const MAX_MEMBERS: usize = continuum_storage::MAX_SNAPSHOT_MEMBERS;
/// First bytes of node snapshot data that carries the directory.
pub const SNAPSHOT_SECTION_MAGIC: &[u8; 8] = b"CNDIR001";
/// Bytes of one directory member in a snapshot: id, address, key, flags.
const MEMBER_RECORD_LEN: usize = 8 + 4 + 32 + 1;
const FLAG_PROMOTE: u8 = 1;

/// What a membership command asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipChange {
    /// Add `node` as a learner.
    AddLearner {
        /// Its LAN address.
        lan_ip: [u8; 4],
        /// Its Ed25519 public key.
        node_key: [u8; 32],
        /// Let the leader promote it to voter once it has caught up.
        promote: bool,
    },
    /// Make learner `node` a voter.
    PromoteLearner,
    /// Remove voter `node` (not the leader: transfer leadership first).
    RemoveVoter,
    /// Remove learner `node`.
    RemoveLearner,
    /// Hand leadership to voter `node` (not a log entry).
    TransferLeader,
}

impl MembershipChange {
    fn tag(&self) -> u8 {
        match self {
            MembershipChange::AddLearner { .. } => 1,
            MembershipChange::PromoteLearner => 2,
            MembershipChange::RemoveVoter => 3,
            MembershipChange::RemoveLearner => 4,
            MembershipChange::TransferLeader => 5,
        }
    }

    /// The Raft change it makes (`None`: a leadership transfer).
    pub fn conf_change_kind(&self) -> Option<ConfChangeKind> {
        Some(match self {
            MembershipChange::AddLearner { .. } => ConfChangeKind::AddLearner,
            MembershipChange::PromoteLearner => ConfChangeKind::PromoteLearner,
            MembershipChange::RemoveVoter => ConfChangeKind::RemoveVoter,
            MembershipChange::RemoveLearner => ConfChangeKind::RemoveLearner,
            MembershipChange::TransferLeader => return None,
        })
    }
}

/// An operator's membership command (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MembershipCommand {
    /// What.
    pub change: MembershipChange,
    /// Which node (non-zero).
    pub node: NodeId,
    /// The configuration index the change is made against.
    pub conf_index: u64,
    /// Cluster HLC milliseconds after which it no longer applies.
    pub expires_at: u64,
}

/// A command and the operator's signature over it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedMembership {
    /// The command.
    pub command: MembershipCommand,
    /// Ed25519 signature of [`MembershipCommand::signing_message`].
    pub signature: [u8; 64],
}

/// Why bytes are not a membership command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipDecodeError {
    /// Not [`SIGNED_MEMBERSHIP_LEN`] bytes.
    Length(usize),
    /// An unknown kind.
    UnknownKind(u8),
    /// Node id zero, or a field the kind does not use is not zero.
    NonCanonical,
}

impl fmt::Display for MembershipDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MembershipDecodeError::Length(n) => write!(
                f,
                "membership command of {n} bytes, expected {SIGNED_MEMBERSHIP_LEN}"
            ),
            MembershipDecodeError::UnknownKind(k) => write!(f, "unknown membership change {k}"),
            MembershipDecodeError::NonCanonical => {
                f.write_str("membership command with node 0 or a stray field")
            }
        }
    }
}

impl MembershipCommand {
    /// The fixed-width body.
    pub fn encode_body(&self) -> [u8; MEMBERSHIP_BODY_LEN] {
        let mut b = [0u8; MEMBERSHIP_BODY_LEN];
        b[0] = self.change.tag();
        b[1..9].copy_from_slice(&self.node.to_be_bytes());
        if let MembershipChange::AddLearner {
            lan_ip,
            node_key,
            promote,
        } = self.change
        {
            b[9..13].copy_from_slice(&lan_ip);
            b[13..45].copy_from_slice(&node_key);
            b[45] = if promote { FLAG_PROMOTE } else { 0 };
        }
        b[46..54].copy_from_slice(&self.conf_index.to_be_bytes());
        b[54..62].copy_from_slice(&self.expires_at.to_be_bytes());
        b
    }

    /// `MEMBER_SIGNING_DOMAIN ‖ cluster_id ‖ body`: what the operator signs.
    pub fn signing_message(&self, cluster_id: u128) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + 16 + MEMBERSHIP_BODY_LEN);
        out.extend_from_slice(MEMBER_SIGNING_DOMAIN);
        out.extend_from_slice(&cluster_id.to_le_bytes());
        out.extend_from_slice(&self.encode_body());
        out
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(v)
}

impl SignedMembership {
    /// Body ‖ signature.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SIGNED_MEMBERSHIP_LEN);
        out.extend_from_slice(&self.command.encode_body());
        out.extend_from_slice(&self.signature);
        out
    }

    /// Inverse of [`SignedMembership::encode`]; total and canonical.
    pub fn decode(bytes: &[u8]) -> Result<SignedMembership, MembershipDecodeError> {
        if bytes.len() != SIGNED_MEMBERSHIP_LEN {
            return Err(MembershipDecodeError::Length(bytes.len()));
        }
        let b = &bytes[..MEMBERSHIP_BODY_LEN];
        let node = u64_at(b, 1);
        let mut lan_ip = [0u8; 4];
        lan_ip.copy_from_slice(&b[9..13]);
        let mut node_key = [0u8; 32];
        node_key.copy_from_slice(&b[13..45]);
        let flags = b[45];
        let unused_zero = lan_ip == [0; 4] && node_key == [0; 32] && flags == 0;
        let change = match b[0] {
            1 if flags & !FLAG_PROMOTE == 0 => MembershipChange::AddLearner {
                lan_ip,
                node_key,
                promote: flags == FLAG_PROMOTE,
            },
            1 => return Err(MembershipDecodeError::NonCanonical),
            2 if unused_zero => MembershipChange::PromoteLearner,
            3 if unused_zero => MembershipChange::RemoveVoter,
            4 if unused_zero => MembershipChange::RemoveLearner,
            5 if unused_zero => MembershipChange::TransferLeader,
            2..=5 => return Err(MembershipDecodeError::NonCanonical),
            other => return Err(MembershipDecodeError::UnknownKind(other)),
        };
        if node == 0 {
            return Err(MembershipDecodeError::NonCanonical);
        }
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&bytes[MEMBERSHIP_BODY_LEN..]);
        Ok(SignedMembership {
            command: MembershipCommand {
                change,
                node,
                conf_index: u64_at(b, 46),
                expires_at: u64_at(b, 54),
            },
            signature,
        })
    }
}

/// One member as the directory knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its LAN address (peer datagrams go there).
    pub lan_ip: [u8; 4],
    /// Its Ed25519 public key (peer authentication keys derive from it).
    pub node_key: [u8; 32],
    /// Added as a learner to be promoted once caught up, not yet promoted.
    pub promote: bool,
}

/// Every member's address and key, as of the last applied configuration
/// entry (see the module doc). At most [`MAX_MEMBERS`] members.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directory {
    /// Members by id (for a joining node before it applied anything: the
    /// members it was told to contact).
    pub members: BTreeMap<NodeId, Member>,
    /// The configuration applied last (Raft's, as of `conf_index`).
    pub conf: ConfState,
    /// Index of the configuration entry applied last (0: boot facts).
    pub conf_index: u64,
}

/// Why the directory section of a snapshot did not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirectoryDecodeError;

impl fmt::Display for DirectoryDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the snapshot's member directory is malformed")
    }
}

impl Directory {
    /// The boot directory: `members` as (id, address, key), under the boot
    /// configuration `conf`.
    pub fn from_boot(members: &[(NodeId, [u8; 4], [u8; 32])], conf: ConfState) -> Directory {
        Directory {
            conf,
            members: members
                .iter()
                .map(|&(id, lan_ip, node_key)| {
                    (
                        id,
                        Member {
                            lan_ip,
                            node_key,
                            promote: false,
                        },
                    )
                })
                .collect(),
            conf_index: 0,
        }
    }

    /// A committed change at `index` (checked by [`check_committed`]) that
    /// made configuration `conf`.
    pub fn apply(&mut self, index: u64, node: NodeId, change: &MembershipChange, conf: &ConfState) {
        match *change {
            MembershipChange::AddLearner {
                lan_ip,
                node_key,
                promote,
            } => {
                self.members.insert(
                    node,
                    Member {
                        lan_ip,
                        node_key,
                        promote,
                    },
                );
            }
            MembershipChange::PromoteLearner => {
                if let Some(member) = self.members.get_mut(&node) {
                    member.promote = false;
                }
            }
            MembershipChange::RemoveVoter | MembershipChange::RemoveLearner => {
                self.members.remove(&node);
            }
            MembershipChange::TransferLeader => return,
        }
        self.conf = conf.clone();
        self.conf_index = index;
    }

    /// Appends the snapshot section (magic, count, members, index).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(SNAPSHOT_SECTION_MAGIC);
        out.push(self.members.len() as u8);
        for (id, m) in &self.members {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&m.lan_ip);
            out.extend_from_slice(&m.node_key);
            out.push(if m.promote { FLAG_PROMOTE } else { 0 });
        }
        out.extend_from_slice(&self.conf_index.to_be_bytes());
    }

    /// Decodes a section after its magic; returns it and the rest.
    fn decode(bytes: &[u8]) -> Result<(Directory, &[u8]), DirectoryDecodeError> {
        let (&count, rest) = bytes.split_first().ok_or(DirectoryDecodeError)?;
        let count = count as usize;
        let need = count * MEMBER_RECORD_LEN + 8;
        if count > MAX_MEMBERS || rest.len() < need {
            return Err(DirectoryDecodeError);
        }
        let mut members = BTreeMap::new();
        let mut last = 0;
        for record in rest[..count * MEMBER_RECORD_LEN].chunks_exact(MEMBER_RECORD_LEN) {
            let id = u64_at(record, 0);
            let flags = record[44];
            // Ascending, non-zero ids; known flags only: one encoding.
            if id <= last || flags & !FLAG_PROMOTE != 0 {
                return Err(DirectoryDecodeError);
            }
            last = id;
            let mut lan_ip = [0u8; 4];
            lan_ip.copy_from_slice(&record[8..12]);
            let mut node_key = [0u8; 32];
            node_key.copy_from_slice(&record[12..44]);
            members.insert(
                id,
                Member {
                    lan_ip,
                    node_key,
                    promote: flags == FLAG_PROMOTE,
                },
            );
        }
        let conf_index = u64_at(rest, count * MEMBER_RECORD_LEN);
        Ok((
            Directory {
                members,
                // The snapshot's metadata carries the configuration.
                conf: ConfState::default(),
                conf_index,
            },
            &rest[need..],
        ))
    }
}

/// The node's snapshot data: the directory section, then the ledger.
pub fn join_snapshot(directory: &Directory, ledger: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + MEMBER_RECORD_LEN * MAX_MEMBERS + ledger.len());
    directory.encode_into(&mut out);
    out.extend_from_slice(ledger);
    out
}

/// Splits node snapshot data into its directory (`None`: data written
/// before the section existed) and the ledger's bytes.
pub fn split_snapshot(data: &[u8]) -> Result<(Option<Directory>, &[u8]), DirectoryDecodeError> {
    match data.strip_prefix(SNAPSHOT_SECTION_MAGIC.as_slice()) {
        Some(rest) => {
            let (directory, ledger) = Directory::decode(rest)?;
            Ok((Some(directory), ledger))
        }
        None => Ok((None, data)),
    }
}

/// What follows the entry header in a configuration entry's context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfContext {
    /// An operator's signed command.
    Signed(SignedMembership),
    /// The leader's promotion of a learner added with `promote` set.
    Promotion,
}

impl ConfContext {
    /// `1 ‖ signed command` or `2`.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            ConfContext::Signed(signed) => {
                let mut out = Vec::with_capacity(1 + SIGNED_MEMBERSHIP_LEN);
                out.push(1);
                out.extend_from_slice(&signed.encode());
                out
            }
            ConfContext::Promotion => alloc::vec![2],
        }
    }

    /// Decodes a configuration entry's context: header, then this.
    pub fn decode(context: &[u8]) -> Result<(EntryHeader, ConfContext), MembershipFault> {
        let (header, rest) = EntryHeader::unwrap(context).map_err(MembershipFault::Header)?;
        match rest.split_first() {
            Some((1, signed)) => SignedMembership::decode(signed)
                .map(|s| (header, ConfContext::Signed(s)))
                .map_err(MembershipFault::Decode),
            Some((2, [])) => Ok((header, ConfContext::Promotion)),
            _ => Err(MembershipFault::UnknownContext),
        }
    }
}

/// Why a membership command is refused at admission. The client gets the
/// matching `continuum_net::client::MembershipRefusal`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The operator's signature does not verify.
    BadSignature,
    /// Past its `expires_at`.
    Expired,
    /// `expires_at` further ahead than the genesis expiry window.
    ExpiryTooFar,
    /// Made against another configuration than the one in effect.
    StaleConfiguration {
        /// The configuration index in effect.
        current: u64,
    },
    /// An addition's key is not a usable Ed25519 key, its address is zero,
    /// or another member already has that key or address.
    BadMember,
    /// The cluster would exceed [`MAX_MEMBERS`].
    TooManyMembers,
    /// Raft refused the change.
    Raft(ConfChangeError),
    /// Raft refused the leadership transfer.
    Transfer(TransferError),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::BadSignature => f.write_str("the operator signature does not verify"),
            Refusal::Expired => f.write_str("the command has expired"),
            Refusal::ExpiryTooFar => f.write_str("the command's expiry is too far ahead"),
            Refusal::StaleConfiguration { current } => write!(
                f,
                "made against another configuration; the configuration index is now {current}"
            ),
            Refusal::BadMember => f.write_str(
                "the new member's key or address is invalid or already used by a member",
            ),
            Refusal::TooManyMembers => write!(f, "the cluster would exceed {MAX_MEMBERS} members"),
            Refusal::Raft(e) => write!(f, "{e}"),
            Refusal::Transfer(e) => write!(f, "{e}"),
        }
    }
}

/// What the checks need to know about the cluster.
pub struct CheckContext<'a> {
    /// The cluster id the operator signed for.
    pub cluster_id: u128,
    /// The genesis operator key.
    pub operator: &'a OwnerKey,
    /// The genesis expiry window.
    pub max_expiry_window_ms: u64,
    /// Log time of the entry (the HLC the leader stamps on it), in ms.
    pub log_time_ms: u64,
    /// The configuration the change is made against (the one applied
    /// last), with its members' addresses and keys.
    pub directory: &'a Directory,
}

/// The checks a signed command passes before it is proposed, and again
/// when it commits (see the module doc). Raft checks the rest (membership
/// kind, leader, quorum) when proposing.
pub fn check(signed: &SignedMembership, ctx: &CheckContext<'_>) -> Result<(), Refusal> {
    let command = &signed.command;
    let message = command.signing_message(ctx.cluster_id);
    if !ctx.operator.verify(&message, &signed.signature) {
        return Err(Refusal::BadSignature);
    }
    if command.expires_at < ctx.log_time_ms {
        return Err(Refusal::Expired);
    }
    if command.expires_at - ctx.log_time_ms > ctx.max_expiry_window_ms {
        return Err(Refusal::ExpiryTooFar);
    }
    let directory = ctx.directory;
    if command.conf_index != directory.conf_index {
        return Err(Refusal::StaleConfiguration {
            current: directory.conf_index,
        });
    }
    if let MembershipChange::AddLearner {
        lan_ip, node_key, ..
    } = command.change
    {
        let conf = &directory.conf;
        if conf.voters.len() + conf.learners.len() >= MAX_MEMBERS {
            return Err(Refusal::TooManyMembers);
        }
        let taken = directory.members.iter().any(|(id, m)| {
            *id != command.node
                && conf.is_member(*id)
                && (m.lan_ip == lan_ip || m.node_key == node_key)
        });
        if OwnerKey::parse(&node_key).is_none() || lan_ip == [0; 4] || taken {
            return Err(Refusal::BadMember);
        }
    }
    Ok(())
}

/// Why a committed configuration entry cannot be followed: the node halts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipFault {
    /// The context's entry header is malformed.
    Header(WireError),
    /// The context is neither a signed command nor a promotion.
    UnknownContext,
    /// The signed command does not decode.
    Decode(MembershipDecodeError),
    /// The signed command does not name the change Raft made.
    Mismatch,
    /// The signed command fails its checks.
    Refused(Refusal),
    /// A promotion of a node not added with `promote`.
    UnauthorizedPromotion,
}

impl fmt::Display for MembershipFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MembershipFault::Header(e) => write!(f, "entry header: {e}"),
            MembershipFault::UnknownContext => f.write_str("unknown context"),
            MembershipFault::Decode(e) => write!(f, "{e}"),
            MembershipFault::Mismatch => {
                f.write_str("the signed command names another change than the entry")
            }
            MembershipFault::Refused(r) => write!(f, "{r}"),
            MembershipFault::UnauthorizedPromotion => {
                f.write_str("promotion of a learner not added for promotion")
            }
        }
    }
}

/// Checks a committed configuration entry's context against the change
/// Raft made (`kind`, `node`) and the configuration applied before it;
/// `ctx_at(hlc)` builds the checks' context for the entry's HLC. Returns
/// the entry header and the change for the directory.
pub fn check_committed<'a>(
    kind: ConfChangeKind,
    node: NodeId,
    context: &[u8],
    ctx_at: impl FnOnce(u64) -> CheckContext<'a>,
) -> Result<(EntryHeader, MembershipChange), MembershipFault> {
    let (header, conf_context) = ConfContext::decode(context)?;
    let hlc_ms = continuum_clock::HlcTimestamp::from_packed(header.hlc).millis();
    let ctx = ctx_at(hlc_ms);
    match conf_context {
        ConfContext::Signed(signed) => {
            let c = &signed.command;
            if c.node != node || c.change.conf_change_kind() != Some(kind) {
                return Err(MembershipFault::Mismatch);
            }
            check(&signed, &ctx).map_err(MembershipFault::Refused)?;
            Ok((header, c.change))
        }
        ConfContext::Promotion => {
            let directory = ctx.directory;
            let promotable = directory.conf.is_learner(node)
                && directory.members.get(&node).is_some_and(|m| m.promote);
            if kind != ConfChangeKind::PromoteLearner || !promotable {
                return Err(MembershipFault::UnauthorizedPromotion);
            }
            Ok((header, MembershipChange::PromoteLearner))
        }
    }
}
