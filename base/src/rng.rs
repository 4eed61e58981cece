//! The workspace's one small deterministic PRNG: SplitMix64 (Steele, Lea,
//! Flood 2014, "Fast splittable pseudorandom number generators").
//!
//! Raft spreads election timeouts with it, the snapshot chunker's gear
//! table is made from it at compile time (`const fn`), the fabric expands
//! its seeds with it, the simulators and the crash-injecting `MemDisk`
//! flip their coins with it. Seedable and dependency-free, so a seed
//! replays identically whatever crate versions the lock file holds. Not
//! cryptographic.

/// SplitMix64 generator.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// Generator seeded with `seed` (any value, including 0, is fine).
    pub const fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// Next 64 random bits.
    pub const fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform value in `[lo, hi)`; returns `lo` when the range is empty.
    pub fn gen_range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        // Lemire's multiply-shift: bias is < 2^-64 * span, irrelevant here.
        let span = hi - lo;
        lo + ((u128::from(self.next_u64()) * u128::from(span)) >> 64) as u64
    }

    /// True with probability `pct` percent (0..=100).
    pub fn chance(&mut self, pct: u64) -> bool {
        self.gen_range(0, 100) < pct
    }
}

#[cfg(test)]
mod tests {
    use super::SplitMix64;

    #[test]
    fn same_seed_same_sequence_and_ranges_hold() {
        let (mut a, mut b) = (SplitMix64::new(42), SplitMix64::new(42));
        for _ in 0..1000 {
            let x = a.gen_range(15, 30);
            assert_eq!(x, b.gen_range(15, 30));
            assert!((15..30).contains(&x));
        }
        assert_eq!(SplitMix64::new(1).gen_range(5, 5), 5);
        assert_ne!(SplitMix64::new(1).next_u64(), SplitMix64::new(2).next_u64());
    }

    #[test]
    fn matches_the_published_sequence() {
        // First outputs for seed 0 (the reference C implementation).
        let mut g = SplitMix64::new(0);
        assert_eq!(g.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(g.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }
}
