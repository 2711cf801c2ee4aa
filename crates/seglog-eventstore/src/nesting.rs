//! How deeply a MessagePack value nests arrays and maps, found by walking its bytes with a
//! stack of open containers (no recursion, so no depth can overflow the walker's stack).
//!
//! An event's payload is caller-given JSON (`serde_json::Value`), which nests as deep as the
//! caller likes, while decoding it back recurses once per level. The codec refuses, at append,
//! an event deeper than the reads will decode: an acknowledged event must read back, and one
//! unreadable record would fail every global read whose window holds it.

use rmp::Marker;
use smallvec::{smallvec, SmallVec};

/// Open containers [`check`] tracks without allocating.
const INLINE_DEPTH: usize = 16;

/// Why [`check`] refused a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NestingError {
    /// Arrays and maps nest deeper than allowed.
    #[error("arrays and objects nest more than {max} levels deep")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// The bytes are not one whole MessagePack value.
    #[error("not a whole MessagePack value")]
    Malformed,
}

/// Checks that `bytes` hold one MessagePack value whose arrays and maps nest at most `max`
/// levels deep (a scalar is 0 levels, `[1]` is 1, `[[1]]` is 2).
///
/// # Errors
/// [`NestingError::TooDeep`], or [`NestingError::Malformed`] for bytes that end early or use
/// the reserved marker.
pub(crate) fn check(bytes: &[u8], max: usize) -> Result<(), NestingError> {
    let mut reader = Reader { bytes, pos: 0 };
    // Items still to read in each open container; the first entry is the top-level value.
    // An event nests a few levels (the envelope, then its payload), so the stack lives on
    // the thread's stack and takes no allocation per append unless a value nests deeper.
    let mut left: SmallVec<[u64; INLINE_DEPTH]> = smallvec![1];
    while let Some(top) = left.last_mut() {
        if *top == 0 {
            left.pop();
            continue;
        }
        *top -= 1;
        if let Some(items) = reader.value_head()? {
            if left.len() > max {
                return Err(NestingError::TooDeep { max });
            }
            left.push(items);
        }
    }
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    /// Reads one value's marker and skips its own bytes; for an array or a map, returns how
    /// many values it holds (a map's keys and values both count).
    fn value_head(&mut self) -> Result<Option<u64>, NestingError> {
        let marker = Marker::from_u8(self.uint(1)? as u8);
        let skip = match marker {
            Marker::FixArray(n) => return Ok(Some(u64::from(n))),
            Marker::Array16 => return self.uint(2).map(Some),
            Marker::Array32 => return self.uint(4).map(Some),
            Marker::FixMap(n) => return Ok(Some(2 * u64::from(n))),
            Marker::Map16 => return self.uint(2).map(|n| Some(2 * n)),
            Marker::Map32 => return self.uint(4).map(|n| Some(2 * n)),
            Marker::FixPos(_) | Marker::FixNeg(_) | Marker::Null | Marker::True | Marker::False => {
                0
            }
            Marker::U8 | Marker::I8 => 1,
            Marker::U16 | Marker::I16 => 2,
            Marker::U32 | Marker::I32 | Marker::F32 => 4,
            Marker::U64 | Marker::I64 | Marker::F64 => 8,
            Marker::FixStr(n) => u64::from(n),
            Marker::Str8 | Marker::Bin8 => self.uint(1)?,
            Marker::Str16 | Marker::Bin16 => self.uint(2)?,
            Marker::Str32 | Marker::Bin32 => self.uint(4)?,
            // An extension: its type byte, then its data.
            Marker::FixExt1 => 2,
            Marker::FixExt2 => 3,
            Marker::FixExt4 => 5,
            Marker::FixExt8 => 9,
            Marker::FixExt16 => 17,
            Marker::Ext8 => self.uint(1)? + 1,
            Marker::Ext16 => self.uint(2)? + 1,
            Marker::Ext32 => self.uint(4)? + 1,
            Marker::Reserved => return Err(NestingError::Malformed),
        };
        self.skip(skip)?;
        Ok(None)
    }

    /// A big-endian unsigned integer of `width` bytes.
    fn uint(&mut self, width: usize) -> Result<u64, NestingError> {
        let end = self.pos.checked_add(width).ok_or(NestingError::Malformed)?;
        let bytes = self
            .bytes
            .get(self.pos..end)
            .ok_or(NestingError::Malformed)?;
        self.pos = end;
        Ok(bytes.iter().fold(0, |n, &b| (n << 8) | u64::from(b)))
    }

    fn skip(&mut self, len: u64) -> Result<(), NestingError> {
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| self.pos.checked_add(len))
            .filter(|&end| end <= self.bytes.len())
            .ok_or(NestingError::Malformed)?;
        self.pos = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::{json, Value};

    fn nested(depth: usize) -> Value {
        (0..depth).fold(json!(1), |v, _| json!([v]))
    }

    fn depth_ok(value: &Value, max: usize) -> Result<(), NestingError> {
        check(&rmp_serde::to_vec_named(value).unwrap(), max)
    }

    #[test]
    fn counts_arrays_and_maps_and_nothing_else() {
        assert_eq!(depth_ok(&json!("x".repeat(70_000)), 0), Ok(()));
        assert_eq!(depth_ok(&json!([]), 1), Ok(()));
        assert_eq!(
            depth_ok(&json!([]), 0),
            Err(NestingError::TooDeep { max: 0 })
        );
        assert_eq!(depth_ok(&nested(5), 5), Ok(()));
        assert_eq!(
            depth_ok(&nested(6), 5),
            Err(NestingError::TooDeep { max: 5 })
        );
        // Maps count once per level, keys and values both walked.
        let deep_map = (0..4).fold(
            json!(null),
            |v, i| json!({ format!("k{i}"): v, "n": [1.5, -3, u64::MAX, "s"] }),
        );
        // Four maps, the innermost holding an array: five levels.
        assert_eq!(depth_ok(&deep_map, 5), Ok(()));
        assert_eq!(
            depth_ok(&deep_map, 4),
            Err(NestingError::TooDeep { max: 4 })
        );
    }

    #[test]
    fn depths_past_the_inline_stack_count_the_same() {
        for depth in [
            INLINE_DEPTH - 1,
            INLINE_DEPTH,
            INLINE_DEPTH + 1,
            3 * INLINE_DEPTH,
        ] {
            assert_eq!(depth_ok(&nested(depth), depth), Ok(()), "{depth}");
            assert_eq!(
                depth_ok(&nested(depth + 1), depth),
                Err(NestingError::TooDeep { max: depth }),
                "{depth}"
            );
        }
    }

    #[test]
    fn the_deepest_of_siblings_counts() {
        let v = json!([[1, 2], [[3]], 4, { "a": [[[5]]] }]);
        // The array, the map, then three arrays.
        assert_eq!(depth_ok(&v, 5), Ok(()));
        assert_eq!(depth_ok(&v, 4), Err(NestingError::TooDeep { max: 4 }));
    }

    #[test]
    fn extensions_and_binary_are_skipped_whole() {
        // [bin8 of 3 bytes, fixext4, ext8 of 2 bytes, 7]
        let bytes = [
            0x94, 0xc4, 3, 9, 9, 9, 0xd6, 1, 0, 0, 0, 0, 0xc7, 2, 5, 0x91, 0x91, 7,
        ];
        assert_eq!(check(&bytes, 1), Ok(()));
    }

    #[test]
    fn bytes_that_end_early_are_malformed() {
        let whole = rmp_serde::to_vec_named(&json!({ "a": [1, "bc"] })).unwrap();
        for cut in 0..whole.len() {
            assert_eq!(
                check(&whole[..cut], 10),
                Err(NestingError::Malformed),
                "{cut}"
            );
        }
        // A length field far past the end never allocates or reads out of bounds.
        assert_eq!(
            check(&[0xdd, 0xff, 0xff, 0xff, 0xff], 10),
            Err(NestingError::Malformed)
        );
        assert_eq!(
            check(&[0xdb, 0xff, 0xff, 0xff, 0xff], 10),
            Err(NestingError::Malformed)
        );
        assert_eq!(check(&[0xc1], 10), Err(NestingError::Malformed));
    }
}
