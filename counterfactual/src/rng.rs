//! Deterministic randomness for the pipeline (FashionShift, mask and donor draws), implemented here
//! so that generated data and counterfactuals never change
//! with the algorithms of an external crate (the `rand` crate reserves the right to change its
//! default generators between versions).
//!
//! - [`SplitMix64`] (Steele, Lea & Flood, "Fast splittable pseudorandom number generators",
//!   OOPSLA 2014; constants as in Vigna's public-domain reference `splitmix64.c`) is the generator:
//!   64-bit state, passes BigCrush, and is trivially seekable by key.
//! - [`mix64`] is SplitMix64's output finaliser, used as a hash to derive independent streams from
//!   keys such as `(seed, split, index)`, and as the lattice hash of the value noise.
//! - [`fnv1a64`] (Fowler–Noll–Vo 1a, 64-bit offset basis and prime from the FNV specification)
//!   turns split names into stream keys, so the key of a split never depends on list order.

/// SplitMix64's state increment: 2^64 / φ, the golden ratio (from `splitmix64.c`).
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output finaliser (a variant of MurmurHash3's `fmix64`, constants from
/// `splitmix64.c`): a bijective avalanche mix of 64 bits.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes a sequence of keys into one 64-bit value (each key is absorbed by one SplitMix64 step).
pub fn hash_keys(keys: &[u64]) -> u64 {
    keys.iter().fold(0x6A09_E667_F3BC_C908, |h, &k| {
        mix64(h.wrapping_add(GOLDEN_GAMMA) ^ k)
    })
    // 0x6A09E667F3BCC908: fractional bits of sqrt(2) (the SHA-512 IV[0]), an arbitrary non-zero start.
}

/// FNV-1a 64-bit hash of a string (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
pub fn fnv1a64(s: &str) -> u64 {
    s.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// The SplitMix64 generator with a few sampling helpers.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose stream is a pure function of `keys`.
    pub fn from_keys(keys: &[u64]) -> Self {
        Self {
            state: hash_keys(keys),
        }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }

    /// Uniform in `[0, 1)` with 53 bits of precision (the top 53 bits, as in Vigna's `to_double`).
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    #[inline]
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in `0..n` (`n > 0`), by Lemire's multiply-shift; the bias is below
    /// `n / 2^64`, far below anything this benchmark could measure.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform integer in `lo..=hi`.
    #[inline]
    pub fn range_inclusive(&mut self, lo: u32, hi: u32) -> u32 {
        debug_assert!(lo <= hi);
        lo + self.below(u64::from(hi - lo) + 1) as u32
    }

    /// `true` with probability `p`.
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// A seeded bijection of `0..n` (an affine permutation `i -> (a*i + b) mod n` with `gcd(a, n) = 1`),
/// used to pick which garments of a pool a split shows: cheap, stateless and exactly a permutation.
#[derive(Clone, Copy, Debug)]
pub struct AffinePermutation {
    n: u64,
    a: u64,
    b: u64,
}

impl AffinePermutation {
    /// The permutation of `0..n` (`n > 0`) keyed by `key`.
    pub fn new(n: u64, key: u64) -> Self {
        assert!(n > 0, "AffinePermutation over an empty range");
        let mut rng = SplitMix64::from_keys(&[key, n]);
        let mut a = 1 + rng.below(n); // 1..=n; bumped to the next unit of Z_n below
        while gcd(a % n, n) != 1 && n > 1 {
            a += 1;
        }
        Self {
            n,
            a: a % n,
            b: rng.below(n),
        }
    }

    /// The image of `i` (taken modulo `n`).
    pub fn apply(&self, i: u64) -> u64 {
        ((u128::from(self.a) * u128::from(i % self.n) + u128::from(self.b)) % u128::from(self.n))
            as u64
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_reference_vector() {
        // First outputs of splitmix64.c seeded with 1234567 (published test vector, e.g. in the
        // xoshiro authors' and Java's SplittableRandom test suites).
        let mut r = SplitMix64 { state: 1_234_567 };
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn streams_depend_on_every_key() {
        let a = SplitMix64::from_keys(&[1, 2, 3]).next_u64();
        assert_eq!(a, SplitMix64::from_keys(&[1, 2, 3]).next_u64());
        assert_ne!(a, SplitMix64::from_keys(&[1, 2, 4]).next_u64());
        assert_ne!(a, SplitMix64::from_keys(&[0, 2, 3]).next_u64());
        assert_ne!(a, SplitMix64::from_keys(&[2, 1, 3]).next_u64());
    }

    #[test]
    fn helpers_stay_in_range() {
        let mut r = SplitMix64::from_keys(&[7]);
        for _ in 0..10_000 {
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
            assert!(r.below(10) < 10);
            assert!((3..=5).contains(&r.range_inclusive(3, 5)));
        }
    }

    #[test]
    fn affine_permutation_is_a_bijection() {
        for n in [1u64, 2, 10, 12, 36_000, 2_500] {
            for key in 0..3 {
                let p = AffinePermutation::new(n, key);
                let mut seen = vec![false; n as usize];
                for i in 0..n {
                    let j = p.apply(i) as usize;
                    assert!(!seen[j], "n={n} key={key}: {j} hit twice");
                    seen[j] = true;
                }
            }
        }
    }

    #[test]
    fn fnv_known_value() {
        // FNV-1a 64 of "a" from the FNV test suite.
        assert_eq!(fnv1a64("a"), 0xAF63_DC4C_8601_EC8C);
    }
}
