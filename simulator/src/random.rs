//! Seeded helpers: random identifiers, seed mixing, Poisson draws.

use rand::Rng;
use rand::rngs::StdRng;

pub(crate) fn rand_upper_alnum(rng: &mut StdRng, n: usize) -> String {
    const CH: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    (0..n)
        .map(|_| CH[rng.gen_range(0..CH.len())] as char)
        .collect()
}

pub(crate) fn rand_alnum(rng: &mut StdRng, n: usize) -> String {
    const CH: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..n)
        .map(|_| CH[rng.gen_range(0..CH.len())] as char)
        .collect()
}

pub(crate) fn rand_hex(rng: &mut StdRng, n: usize) -> String {
    const CH: &[u8] = b"0123456789abcdef";
    (0..n).map(|_| CH[rng.gen_range(0..16)] as char).collect()
}

pub(crate) fn uuid_from(rng: &mut StdRng) -> String {
    uuid::Builder::from_random_bytes(rng.r#gen::<[u8; 16]>())
        .into_uuid()
        .hyphenated()
        .to_string()
}

pub(crate) fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

pub(crate) fn poisson(rng: &mut StdRng, lambda: f64) -> u32 {
    if lambda <= 0.0 {
        return 0;
    }
    if lambda < 30.0 {
        let l = (-lambda).exp();
        let mut k = 0u32;
        let mut p = 1.0;
        loop {
            p *= rng.r#gen::<f64>();
            if p <= l {
                return k;
            }
            k += 1;
        }
    }
    // Normal approximation (Box-Muller).
    let u1: f64 = rng.r#gen::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.r#gen();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (lambda + lambda.sqrt() * z).round().max(0.0) as u32
}
