//! Partition shapes over a list of node ids (as groups for
//! [`crate::cluster::Cluster::partition`]: a link is open iff a group holds
//! both ends) and packet-loss plans.

use crate::NodeId;

use continuum_fabric::LinkFaults;

/// A link plan that drops `percent` % of frames.
pub fn loss_faults(percent: f64) -> Result<LinkFaults, String> {
    if !(0.0..=100.0).contains(&percent) {
        return Err(format!("loss must be 0 to 100 percent, got {percent}"));
    }
    Ok(LinkFaults {
        drop: percent / 100.0,
        ..LinkFaults::default()
    })
}

/// Halves: the first `n / 2` nodes against the rest.
pub fn shape_halves(ids: &[NodeId]) -> Vec<Vec<NodeId>> {
    let (low, high) = ids.split_at(ids.len() / 2);
    vec![low.to_vec(), high.to_vec()]
}

/// Ring: each node with its successor (and so with both neighbours).
pub fn shape_ring(ids: &[NodeId]) -> Vec<Vec<NodeId>> {
    (0..ids.len())
        .map(|i| vec![ids[i], ids[(i + 1) % ids.len()]])
        .collect()
}

/// Bridge: the lower half plus the middle node, and the middle node plus
/// the upper half; only the middle node sees everyone.
pub fn shape_bridge(ids: &[NodeId]) -> Vec<Vec<NodeId>> {
    let middle = ids.len() / 2;
    vec![ids[..=middle].to_vec(), ids[middle..].to_vec()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_over_three_and_five_nodes() {
        assert_eq!(shape_halves(&[1, 2, 3]), vec![vec![1], vec![2, 3]]);
        assert_eq!(
            shape_halves(&[1, 2, 3, 4, 5]),
            vec![vec![1, 2], vec![3, 4, 5]]
        );
        assert_eq!(
            shape_ring(&[1, 2, 3, 4, 5]),
            vec![vec![1, 2], vec![2, 3], vec![3, 4], vec![4, 5], vec![5, 1]]
        );
        assert_eq!(
            shape_bridge(&[1, 2, 3, 4, 5]),
            vec![vec![1, 2, 3], vec![3, 4, 5]]
        );
        assert_eq!(shape_bridge(&[1, 2, 3]), vec![vec![1, 2], vec![2, 3]]);
    }

    #[test]
    fn loss_is_a_drop_probability() {
        assert_eq!(loss_faults(25.0).unwrap().drop, 0.25);
        assert!(loss_faults(100.5).is_err());
        assert!(loss_faults(-1.0).is_err());
    }
}
