//! Finding the non-zero bytes in long runs of zeros, a word at a time.
//!
//! After a crash the last segment can hold up to a whole segment of zeros past its data (a
//! prepared segment arrives zeroed throughout), and recovery must look through all of them:
//! for stray bytes after the end of data, and for a later record that proves damage. Byte by
//! byte that is ~1 s of CPU per 128 MiB; these OR whole blocks together (which the compiler
//! turns into vector instructions) and only look at single bytes in a block that has one set.

/// Bytes OR-ed together per step.
const BLOCK: usize = 64;

/// True when any byte of `block` is not zero.
fn any_set(block: &[u8]) -> bool {
    block.iter().fold(0u8, |acc, &b| acc | b) != 0
}

/// The index of the first non-zero byte of `bytes`.
pub(crate) fn first_nonzero(bytes: &[u8]) -> Option<usize> {
    let mut blocks = bytes.chunks_exact(BLOCK);
    let mut base = 0;
    for block in &mut blocks {
        if any_set(block) {
            return block.iter().position(|&b| b != 0).map(|p| base + p);
        }
        base += BLOCK;
    }
    let rest = blocks.remainder();
    rest.iter().position(|&b| b != 0).map(|p| base + p)
}

/// The index of the last non-zero byte of `bytes`. Searched front to back, like
/// `first_nonzero`: a map of a file read backwards faults in one page at a time, without
/// read-ahead (measured: the search took longer than the look-ahead's whole forward pass).
pub fn last_nonzero(bytes: &[u8]) -> Option<usize> {
    let mut last_set_block = None;
    let mut blocks = bytes.chunks_exact(BLOCK);
    for (i, block) in (&mut blocks).enumerate() {
        if any_set(block) {
            last_set_block = Some(i * BLOCK);
        }
    }
    let full = bytes.len() - blocks.remainder().len();
    if let Some(p) = blocks.remainder().iter().rposition(|&b| b != 0) {
        return Some(full + p);
    }
    let start = last_set_block?;
    bytes[start..start + BLOCK]
        .iter()
        .rposition(|&b| b != 0)
        .map(|p| start + p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Against the byte-by-byte answer, on sparse buffers of every length around the
        /// block size (the non-zero bytes land in blocks, remainders and block edges).
        #[test]
        fn agree_with_a_byte_by_byte_search(
            len in 0usize..600,
            set in proptest::collection::vec((0usize..600, 1u8..=255), 0..4),
        ) {
            let mut bytes = vec![0u8; len];
            for (at, b) in set {
                if at < len {
                    bytes[at] = b;
                }
            }
            prop_assert_eq!(first_nonzero(&bytes), bytes.iter().position(|&b| b != 0));
            prop_assert_eq!(last_nonzero(&bytes), bytes.iter().rposition(|&b| b != 0));
        }
    }

    proptest! {
        /// Review of 7a9be22: dense and sparse buffers, any content, lengths to a few blocks.
        #[test]
        fn review_agree_on_any_bytes(
            bytes in proptest::collection::vec(prop_oneof![9 => Just(0u8), 1 => any::<u8>()], 0..1200),
            cut in 0usize..1200,
        ) {
            for b in [&bytes[..], &bytes[cut.min(bytes.len())..], &bytes[..cut.min(bytes.len())]] {
                prop_assert_eq!(first_nonzero(b), b.iter().position(|&x| x != 0));
                prop_assert_eq!(last_nonzero(b), b.iter().rposition(|&x| x != 0));
            }
        }
    }

    #[test]
    fn review_every_single_byte_position() {
        for len in 0..=260usize {
            assert_eq!(first_nonzero(&vec![0u8; len]), None);
            assert_eq!(last_nonzero(&vec![0u8; len]), None);
            for a in 0..len {
                for bpos in a..len {
                    let mut v = vec![0u8; len];
                    v[a] = 1;
                    v[bpos] = 0x80;
                    assert_eq!(first_nonzero(&v), Some(a), "len {len} a {a} b {bpos}");
                    assert_eq!(last_nonzero(&v), Some(bpos), "len {len} a {a} b {bpos}");
                }
            }
        }
    }
}
