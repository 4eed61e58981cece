//! The switch core: MAC learning, forwarding, and the per-link fault plan.
//!
//! It is a pure state machine over explicit time (microseconds since the
//! fabric started): `ingress` takes a frame from a port and schedules copies
//! on outgoing links, `pop_due` hands out the copies whose time has come.
//! The runtime (`runtime.rs`) only moves datagrams and time in and out, so
//! every forwarding and fault decision is unit-testable and, for a seed,
//! reproducible.
//!
//! Forwarding (IEEE 802.1D §7.7/§7.8, minus spanning tree): learn the source
//! MAC's port; send a unicast frame to the learned port, flood group and
//! unknown-destination frames to every other port; never send a frame back
//! to its ingress port.

use continuum_base::NodeId;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::Serialize;

use crate::ethernet::{self, Mac, MAX_FRAME_BYTES, MIN_FRAME_BYTES};
use crate::faults::{LinkFaults, REPLAY_HISTORY_FRAMES};
use crate::mangle;
use crate::rng::Rng;
use crate::topology::{self, Link};

/// Most ports (nodes) one fabric serves.
pub const MAX_PORTS: NodeId = 64;
/// Most MAC addresses learned; beyond it new sources are not learned and
/// frames to them are flooded (correct, just less efficient).
pub const MAX_MAC_ENTRIES: usize = 4096;
/// Most frames in flight (delayed or held) at once; more are dropped and
/// counted as `overflow` so a large delay cannot exhaust memory.
pub const MAX_PENDING_FRAMES: usize = 65_536;
/// Salt of the second per-link generator (`corrupt`, `replay`).
const MANGLE_SALT: u64 = 0x6d61_6e67_6c65_2121;

/// Counters of one directed link.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LinkStats {
    /// Frames handed to the destination port (duplicates included).
    pub forwarded: u64,
    /// Frames dropped by the link's `drop` probability.
    pub dropped: u64,
    /// Frames dropped because the link is blocked by a partition.
    pub blocked: u64,
    /// Extra copies made by `dup`.
    pub duplicated: u64,
    /// Frames given a non-zero delay.
    pub delayed: u64,
    /// Frames held back by `reorder`.
    pub reordered: u64,
    /// Frames dropped because [`MAX_PENDING_FRAMES`] were in flight.
    pub overflow: u64,
    /// Frames whose UDP payload `corrupt` rewrote.
    pub corrupted: u64,
    /// Earlier frames sent again by `replay`.
    pub replayed: u64,
}

/// Counters of one port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PortStats {
    /// Frames received from the port's VM.
    pub received: u64,
    /// Frames injected through the control interface as if from this port.
    pub injected: u64,
    /// Datagrams too short or too long to be Ethernet frames.
    pub malformed: u64,
    /// Frames flooded (group or unknown destination).
    pub flooded: u64,
    /// Unicast frames whose destination is on the ingress port (not sent).
    pub filtered: u64,
    /// Frames written to the VM's socket (filled in by the runtime).
    pub egress_sent: u64,
    /// Frames the VM's socket refused (VM not running, or socket error).
    pub egress_errors: u64,
    /// Frames dropped because the port's egress queue was full.
    pub egress_queue_full: u64,
}

/// One copy of a frame due on a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub from: NodeId,
    pub to: NodeId,
    pub frame: Vec<u8>,
}

struct LinkState {
    faults: LinkFaults,
    rng: Rng,
    /// Draws of `corrupt` and `replay` (a second stream, so adding them left
    /// the first stream's fates for a seed unchanged).
    mangle_rng: Rng,
    /// The last frames sent on the link, kept only while `replay` is on.
    history: VecDeque<Vec<u8>>,
    stats: LinkStats,
    /// Pending key of the frame held back by `reorder`, if any.
    held: Option<(u64, u64)>,
}

/// A serializable snapshot of every counter and the current plan.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Stats {
    pub links: Vec<LinkEntry>,
    pub ports: Vec<PortEntry>,
    pub blocked: Vec<Link>,
    pub pending: usize,
    pub learned_macs: Vec<(String, NodeId)>,
}

/// Counters and plan of one directed link in a [`Stats`] snapshot.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LinkEntry {
    pub from: NodeId,
    pub to: NodeId,
    #[serde(flatten)]
    pub stats: LinkStats,
    pub faults: LinkFaults,
}

/// Counters of one port in a [`Stats`] snapshot.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PortEntry {
    pub port: NodeId,
    #[serde(flatten)]
    pub stats: PortStats,
}

/// The switch state machine (see the module docs).
pub struct Switch {
    nodes: NodeId,
    seed: u64,
    macs: BTreeMap<Mac, NodeId>,
    links: BTreeMap<Link, LinkState>,
    blocked: BTreeSet<Link>,
    /// Frames in flight keyed by (due time µs, scheduling order).
    pending: BTreeMap<(u64, u64), Delivery>,
    next_order: u64,
    ports: Vec<PortStats>,
}

impl Switch {
    /// A switch with ports 1..=nodes and no faults.
    pub fn new(nodes: NodeId, seed: u64) -> Result<Switch, String> {
        if nodes == 0 || nodes > MAX_PORTS {
            return Err(format!("nodes must be in 1..={MAX_PORTS}, got {nodes}"));
        }
        let mut links = BTreeMap::new();
        for from in 1..=nodes {
            for to in (1..=nodes).filter(|&t| t != from) {
                links.insert(
                    (from, to),
                    LinkState {
                        faults: LinkFaults::default(),
                        rng: Rng::for_link(seed, from, to),
                        mangle_rng: Rng::for_link(seed ^ MANGLE_SALT, from, to),
                        history: VecDeque::new(),
                        stats: LinkStats::default(),
                        held: None,
                    },
                );
            }
        }
        Ok(Switch {
            nodes,
            seed,
            macs: BTreeMap::new(),
            links,
            blocked: BTreeSet::new(),
            pending: BTreeMap::new(),
            next_order: 0,
            ports: vec![PortStats::default(); nodes as usize],
        })
    }

    pub fn nodes(&self) -> NodeId {
        self.nodes
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Takes a frame that arrived on `port` at `now_us`. `injected` frames
    /// (control `inject`) are forwarded like received ones but do not teach
    /// the MAC table, so an injected forgery cannot hijack a victim's entry.
    pub fn ingress(&mut self, now_us: u64, port: NodeId, frame: &[u8], injected: bool) {
        let Some(port_stats) = self.ports.get_mut((port as usize).wrapping_sub(1)) else {
            return;
        };
        if injected {
            port_stats.injected += 1;
        } else {
            port_stats.received += 1;
        }
        if frame.len() < MIN_FRAME_BYTES || frame.len() > MAX_FRAME_BYTES {
            port_stats.malformed += 1;
            return;
        }
        let (Some(dst), Some(src)) = (ethernet::destination(frame), ethernet::source(frame)) else {
            port_stats.malformed += 1;
            return;
        };
        let learnable = !injected && !ethernet::is_group(&src);
        if learnable && (self.macs.len() < MAX_MAC_ENTRIES || self.macs.contains_key(&src)) {
            self.macs.insert(src, port);
        }
        let known = if ethernet::is_group(&dst) {
            None
        } else {
            self.macs.get(&dst).copied()
        };
        match known {
            Some(to) if to == port => port_stats.filtered += 1,
            Some(to) => self.send_on_link(now_us, port, to, frame),
            None => {
                port_stats.flooded += 1;
                for to in (1..=self.nodes).filter(|&t| t != port) {
                    self.send_on_link(now_us, port, to, frame);
                }
            }
        }
    }

    /// Applies link `from → to`'s partition state and fault plan to a frame.
    fn send_on_link(&mut self, now_us: u64, from: NodeId, to: NodeId, frame: &[u8]) {
        let blocked = self.blocked.contains(&(from, to));
        let Some(link) = self.links.get_mut(&(from, to)) else {
            return;
        };
        if blocked {
            link.stats.blocked += 1;
            return;
        }
        // Fixed draw order per frame keeps each link's stream reproducible.
        let drop_draw = link.rng.next_f64();
        let dup_draw = link.rng.next_f64();
        let reorder_draw = link.rng.next_f64();
        let jitter_us = link.rng.up_to(link.faults.jitter_ms * 1000);
        let corrupt_draw = link.mangle_rng.next_f64();
        let corrupt_position = link.mangle_rng.next_u64();
        let corrupt_mask = 1 + link.mangle_rng.up_to(254) as u8;
        let replay_draw = link.mangle_rng.next_f64();
        let replay_pick = link.mangle_rng.next_u64();
        if drop_draw < link.faults.drop {
            link.stats.dropped += 1;
            return;
        }
        let delay_us = link.faults.delay_ms * 1000 + jitter_us;
        if delay_us > 0 {
            link.stats.delayed += 1;
        }
        let due = now_us + delay_us;
        let copies = if dup_draw < link.faults.dup { 2 } else { 1 };
        let mut bytes = frame.to_vec();
        if corrupt_draw < link.faults.corrupt
            && mangle::corrupt_udp_payload(&mut bytes, corrupt_position, corrupt_mask)
        {
            link.stats.corrupted += 1;
        }
        let replayed = if replay_draw < link.faults.replay && !link.history.is_empty() {
            let pick = (replay_pick % link.history.len() as u64) as usize;
            link.history.get(pick).cloned()
        } else {
            None
        };
        if link.faults.replay > 0.0 {
            if link.history.len() >= REPLAY_HISTORY_FRAMES {
                link.history.pop_front();
            }
            link.history.push_back(bytes.clone());
        }
        let delivery = Delivery {
            from,
            to,
            frame: bytes,
        };
        if let Some(old) = replayed {
            if self.pending.len() >= MAX_PENDING_FRAMES {
                link.stats.overflow += 1;
            } else {
                link.stats.replayed += 1;
                let replay = Delivery {
                    from,
                    to,
                    frame: old,
                };
                self.pending.insert((due, self.next_order), replay);
                self.next_order += 1;
            }
        }
        if link.held.is_none() && reorder_draw < link.faults.reorder {
            if self.pending.len() >= MAX_PENDING_FRAMES {
                link.stats.overflow += 1;
                return;
            }
            let key = (due + link.faults.hold_us(), self.next_order);
            self.next_order += 1;
            link.held = Some(key);
            link.stats.reordered += 1;
            self.pending.insert(key, delivery);
            return;
        }
        for copy in 0..copies {
            if self.pending.len() >= MAX_PENDING_FRAMES {
                link.stats.overflow += 1;
                return;
            }
            if copy == 1 {
                link.stats.duplicated += 1;
            }
            self.pending
                .insert((due, self.next_order), delivery.clone());
            self.next_order += 1;
        }
        // Release a held frame right behind this one: the two swap places.
        if let Some(key) = link.held.take() {
            if let Some(held) = self.pending.remove(&key) {
                self.pending.insert((due, self.next_order), held);
                self.next_order += 1;
            }
        }
    }

    /// When the earliest frame in flight is due, if any.
    pub fn next_due(&self) -> Option<u64> {
        self.pending.keys().next().map(|&(due, _)| due)
    }

    /// Hands out the next frame due at or before `now_us`. A frame whose link
    /// became blocked while it was in flight is dropped (counted `blocked`).
    pub fn pop_due(&mut self, now_us: u64) -> Option<Delivery> {
        loop {
            let (&key, _) = self.pending.iter().next()?;
            if key.0 > now_us {
                return None;
            }
            let delivery = self.pending.remove(&key)?;
            let blocked = self.blocked.contains(&(delivery.from, delivery.to));
            let link = self.links.get_mut(&(delivery.from, delivery.to))?;
            if link.held == Some(key) {
                link.held = None;
            }
            if blocked {
                link.stats.blocked += 1;
                continue;
            }
            link.stats.forwarded += 1;
            return Some(delivery);
        }
    }

    /// Replaces the fault plan of link `from → to`.
    pub fn set_link(&mut self, from: NodeId, to: NodeId, faults: LinkFaults) -> Result<(), String> {
        faults.validate()?;
        topology::check_node(self.nodes, from)?;
        topology::check_node(self.nodes, to)?;
        let link = self
            .links
            .get_mut(&(from, to))
            .ok_or_else(|| format!("no link from {from} to itself"))?;
        if faults.replay == 0.0 {
            link.history.clear();
        }
        link.faults = faults;
        Ok(())
    }

    /// Replaces the fault plan of every link.
    pub fn set_all_links(&mut self, faults: LinkFaults) -> Result<(), String> {
        faults.validate()?;
        for link in self.links.values_mut() {
            if faults.replay == 0.0 {
                link.history.clear();
            }
            link.faults = faults.clone();
        }
        Ok(())
    }

    /// Replaces the blocked set with the partition given by `groups`.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) -> Result<(), String> {
        self.blocked = topology::blocked_by_groups(self.nodes, groups)?;
        Ok(())
    }

    /// Additionally blocks every link into and out of `node`.
    pub fn isolate(&mut self, node: NodeId) -> Result<(), String> {
        let links = topology::isolating(self.nodes, node)?;
        self.blocked.extend(links);
        Ok(())
    }

    /// Blocks (or unblocks) the single directed link `from → to`.
    pub fn set_blocked(&mut self, from: NodeId, to: NodeId, blocked: bool) -> Result<(), String> {
        topology::check_node(self.nodes, from)?;
        topology::check_node(self.nodes, to)?;
        if from == to {
            return Err(format!("no link from {from} to itself"));
        }
        if blocked {
            self.blocked.insert((from, to));
        } else {
            self.blocked.remove(&(from, to));
        }
        Ok(())
    }

    /// Removes every partition (fault plans stay).
    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// Removes every partition and every fault plan (counters stay).
    pub fn reset(&mut self) {
        self.blocked.clear();
        for link in self.links.values_mut() {
            link.faults = LinkFaults::default();
            link.history.clear();
        }
    }

    /// The currently blocked links.
    pub fn blocked(&self) -> &BTreeSet<Link> {
        &self.blocked
    }

    /// Counters of one link.
    pub fn link_stats(&self, from: NodeId, to: NodeId) -> Option<&LinkStats> {
        self.links.get(&(from, to)).map(|l| &l.stats)
    }

    /// Counters of one port.
    pub fn port_stats(&self, port: NodeId) -> Option<&PortStats> {
        self.ports.get((port as usize).wrapping_sub(1))
    }

    /// Snapshot of every counter and the plan.
    pub fn stats(&self) -> Stats {
        Stats {
            links: self
                .links
                .iter()
                .map(|(&(from, to), link)| LinkEntry {
                    from,
                    to,
                    stats: link.stats.clone(),
                    faults: link.faults.clone(),
                })
                .collect(),
            ports: self
                .ports
                .iter()
                .enumerate()
                .map(|(i, stats)| PortEntry {
                    port: i as NodeId + 1,
                    stats: stats.clone(),
                })
                .collect(),
            blocked: self.blocked.iter().copied().collect(),
            pending: self.pending.len(),
            learned_macs: self
                .macs
                .iter()
                .map(|(mac, port)| (ethernet::format_mac(mac), *port))
                .collect(),
        }
    }
}
