//! Partitions as sets of blocked directed links.
//!
//! Any shape is expressed as *groups*: a link a → b is open iff some group
//! contains both a and b. A node in no group is isolated. Groups may overlap,
//! which is what makes the interesting shapes expressible:
//!
//! | shape (5 nodes)            | groups                                   |
//! |----------------------------|------------------------------------------|
//! | isolate 3                  | `[[1,2,4,5]]`                            |
//! | halves / minority          | `[[1,2],[3,4,5]]`                        |
//! | bridge (3 sees both sides) | `[[1,2,3],[3,4,5]]`                      |
//! | ring (each sees a different majority) | `[[1,2],[2,3],[3,4],[4,5],[5,1]]` |
//!
//! One-way faults (a hears b but not the reverse) use `block` on a single
//! directed link.

use continuum_base::NodeId;
use std::collections::BTreeSet;

/// A directed link (from port, to port); ports are node ids, 1-based.
pub type Link = (NodeId, NodeId);

/// The blocked links of the partition given by `groups` over ports 1..=nodes.
pub fn blocked_by_groups(nodes: NodeId, groups: &[Vec<NodeId>]) -> Result<BTreeSet<Link>, String> {
    for group in groups {
        if group.is_empty() {
            return Err("a partition group is empty".to_string());
        }
        for &node in group {
            check_node(nodes, node)?;
        }
    }
    let mut blocked = BTreeSet::new();
    for a in 1..=nodes {
        for b in 1..=nodes {
            if a != b && !groups.iter().any(|g| g.contains(&a) && g.contains(&b)) {
                blocked.insert((a, b));
            }
        }
    }
    Ok(blocked)
}

/// All links into and out of `node`.
pub fn isolating(nodes: NodeId, node: NodeId) -> Result<BTreeSet<Link>, String> {
    check_node(nodes, node)?;
    let mut blocked = BTreeSet::new();
    for other in (1..=nodes).filter(|&o| o != node) {
        blocked.insert((node, other));
        blocked.insert((other, node));
    }
    Ok(blocked)
}

/// Ring groups over `nodes` ports: each node linked only to its two ring
/// neighbours. With 5 nodes every node sees 3 (itself and two neighbours), a
/// majority, and no two nodes see the same majority.
pub fn ring_groups(nodes: NodeId) -> Vec<Vec<NodeId>> {
    (0..nodes)
        .map(|i| vec![i + 1, (i + 1) % nodes + 1])
        .collect()
}

/// Fails unless `node` is a port of a fabric with `nodes` ports.
pub fn check_node(nodes: NodeId, node: NodeId) -> Result<(), String> {
    if node == 0 || node > nodes {
        Err(format!("node {node} is not a port (ports are 1..={nodes})"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_block_only_crossing_links() {
        let blocked = blocked_by_groups(5, &[vec![1, 2], vec![3, 4, 5]]).unwrap();
        assert!(blocked.contains(&(1, 3)) && blocked.contains(&(3, 1)));
        assert!(!blocked.contains(&(1, 2)) && !blocked.contains(&(4, 5)));
        assert_eq!(blocked.len(), 2 * 2 * 3);
    }

    #[test]
    fn bridge_node_sees_both_sides() {
        let blocked = blocked_by_groups(5, &[vec![1, 2, 3], vec![3, 4, 5]]).unwrap();
        assert!(!blocked.contains(&(3, 1)) && !blocked.contains(&(3, 5)));
        assert!(blocked.contains(&(1, 5)) && blocked.contains(&(4, 2)));
    }

    #[test]
    fn ring_gives_each_node_a_different_majority() {
        let groups = ring_groups(5);
        let blocked = blocked_by_groups(5, &groups).unwrap();
        let mut views = BTreeSet::new();
        for a in 1..=5 as NodeId {
            let view: Vec<NodeId> = (1..=5)
                .filter(|&b| b == a || !blocked.contains(&(a, b)))
                .collect();
            assert!(view.len() >= 3, "node {a} sees {view:?}");
            views.insert(view);
        }
        assert_eq!(views.len(), 5);
    }

    #[test]
    fn unlisted_nodes_are_isolated_and_bad_ids_refused() {
        let blocked = blocked_by_groups(3, &[vec![1, 2]]).unwrap();
        assert_eq!(blocked, isolating(3, 3).unwrap());
        assert!(blocked_by_groups(3, &[vec![1, 4]]).is_err());
        assert!(blocked_by_groups(3, &[vec![]]).is_err());
        assert!(isolating(3, 0).is_err());
    }
}
