//! Bytes from the operating system's CSPRNG (`getrandom`), the one source of
//! every code, token, salt, nonce and secret latchkey makes.

/// Fills `buf` from the OS. If the OS cannot give random bytes, no secret
/// can be made safely: the process stops rather than make a weak one.
#[allow(clippy::panic)] // The one place a failure has no safe answer.
pub fn fill(buf: &mut [u8]) {
    if let Err(error) = getrandom::fill(buf) {
        panic!("the operating system's random number generator failed: {error}");
    }
}

/// `N` random bytes.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    fill(&mut out);
    out
}

/// A uniform integer in `0..bound` (rejection sampling, no modulo bias).
pub fn below(bound: u32) -> u32 {
    let bound = bound.max(1);
    // The largest multiple of `bound` that fits in a u32.
    let zone = u32::MAX - (u32::MAX % bound + 1) % bound;
    loop {
        let n = u32::from_le_bytes(bytes::<4>());
        if n <= zone {
            return n % bound;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn below_stays_below_its_bound_and_reaches_both_ends() {
        let draws: Vec<u32> = (0..2000).map(|_| super::below(3)).collect();
        assert!(draws.iter().all(|n| *n < 3));
        assert!(draws.contains(&0) && draws.contains(&2));
    }
}
