//! The fabric's own small PRNG: the workspace's SplitMix64
//! ([`continuum_base::SplitMix64`], Steele, Lea, Flood 2014) to expand
//! seeds, xoshiro256** (Blackman & Vigna 2018) for draws. Own code so a
//! seed replays identically whatever crate versions are in the lock file.

use continuum_base::{NodeId, SplitMix64};

/// xoshiro256** generator.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose stream depends only on `seed`.
    pub fn new(seed: u64) -> Rng {
        let mut expand = SplitMix64::new(seed);
        let s = [
            expand.next_u64(),
            expand.next_u64(),
            expand.next_u64(),
            expand.next_u64(),
        ];
        Rng { s }
    }

    /// The generator of directed link `from → to` under the fabric `seed`.
    pub fn for_link(seed: u64, from: NodeId, to: NodeId) -> Rng {
        let link = seed ^ (from << 32 | to);
        Rng::new(SplitMix64::new(link).next_u64())
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, bound] (inclusive); `bound == 0` gives 0.
    pub fn up_to(&mut self, bound: u64) -> u64 {
        if bound == u64::MAX {
            return self.next_u64();
        }
        self.next_u64() % (bound + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_different_links_differ() {
        let a: Vec<u64> = (0..8)
            .map(|_| 0)
            .scan(Rng::for_link(5, 1, 2), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..8)
            .map(|_| 0)
            .scan(Rng::for_link(5, 1, 2), |r, _| Some(r.next_u64()))
            .collect();
        let c: Vec<u64> = (0..8)
            .map(|_| 0)
            .scan(Rng::for_link(5, 2, 1), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn f64_is_in_unit_interval_and_roughly_uniform() {
        let mut rng = Rng::new(1);
        let n = 100_000;
        let mut below_quarter = 0;
        for _ in 0..n {
            let x = rng.next_f64();
            assert!((0.0..1.0).contains(&x));
            if x < 0.25 {
                below_quarter += 1;
            }
        }
        let share = below_quarter as f64 / n as f64;
        assert!((share - 0.25).abs() < 0.01, "share {share}");
    }
}
