//! `Math.random` and k6's `randomSeed`, natively. QuickJS seeds its own
//! generator from the clock, in microseconds, when a context is made: VUs
//! started in the same microsecond would draw the same numbers, and
//! `randomSeed` had nothing to set. This one is seeded from the host's
//! randomness on a VU's first draw, or by the script with `randomSeed`.

use std::cell::Cell;

thread_local! {
    /// xorshift64* state; 0 until the first draw or `randomSeed`.
    static STATE: Cell<u64> = const { Cell::new(0) };
}

/// Forgets the state, so the next draw seeds afresh (a new VU).
pub fn reset() {
    STATE.set(0);
}

/// `randomSeed(n)`: the same `n` gives the same sequence.
pub fn seed(n: f64) {
    STATE.set(splitmix(n as i64 as u64));
}

/// `Math.random()`: uniform in [0, 1), 53 bits.
pub fn next() -> f64 {
    let mut x = STATE.get();
    if x == 0 {
        x = splitmix(loadtest_sdk::vu::random());
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    STATE.set(x);
    (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
}

/// Spreads a seed over all bits; never 0, which xorshift cannot leave.
fn splitmix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_its_own_sequence_within_the_unit_interval() {
        seed(42.0);
        let a: Vec<f64> = (0..100).map(|_| next()).collect();
        seed(42.0);
        let b: Vec<f64> = (0..100).map(|_| next()).collect();
        seed(43.0);
        let c: Vec<f64> = (0..100).map(|_| next()).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.iter().chain(&c).all(|x| (0.0..1.0).contains(x)));
        seed(0.0);
        assert_ne!(next(), next());
    }
}
