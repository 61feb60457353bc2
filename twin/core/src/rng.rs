//! Seeded, platform-independent random streams (ChaCha8), one per consumer so that
//! adding a consumer never shifts another's sequence.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

/// A deterministic random stream.
#[derive(Debug, Clone)]
pub struct SimRng(ChaCha8Rng);

impl SimRng {
    /// Stream `stream` of run seed `seed`.
    pub fn new(seed: u64, stream: &str) -> Self {
        // FNV-1a of the stream name, mixed with the seed: stable across platforms and
        // Rust versions (unlike std's hasher).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in stream.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(h);
        Self(rng)
    }

    /// Standard normal sample.
    pub fn normal(&mut self) -> f64 {
        StandardNormal.sample(&mut self.0)
    }

    /// Uniform sample in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}
