//! Sizes in configuration files: a number of bytes, or a readable string (`"128 MiB"`,
//! parsed by `bytesize`). Written back as a string when the size is a whole number of KiB,
//! MiB or GiB, else as a number.

use serde::{de, Deserialize, Deserializer, Serializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum Written {
    Bytes(u64),
    Readable(String),
}

fn parse<E: de::Error>(written: Written) -> Result<u64, E> {
    match written {
        Written::Bytes(n) => Ok(n),
        Written::Readable(s) => s
            .parse::<bytesize::ByteSize>()
            .map(|b| b.as_u64())
            .map_err(|e| E::custom(format!("size {s:?}: {e}"))),
    }
}

pub(crate) fn serialize<S: Serializer>(bytes: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    for (unit, name) in [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")] {
        if *bytes != 0 && bytes.is_multiple_of(unit) {
            return serializer.serialize_str(&format!("{} {name}", bytes / unit));
        }
    }
    serializer.serialize_u64(*bytes)
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    parse(Written::deserialize(deserializer)?)
}

/// The same for an optional size of at most 4 GiB - 1 (`null` or absent: `None`).
pub(crate) mod optional_u32 {
    use super::Written;
    use serde::{de, Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        bytes: &Option<u32>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => super::serialize(&u64::from(*b), serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<u32>, D::Error> {
        let Some(written) = Option::<Written>::deserialize(deserializer)? else {
            return Ok(None);
        };
        let bytes = super::parse::<D::Error>(written)?;
        u32::try_from(bytes)
            .map(Some)
            .map_err(|_| de::Error::custom(format!("{bytes} bytes is more than 4 GiB - 1")))
    }
}

/// The same for an optional size (`null` or absent: `None`).
pub(crate) mod optional_u64 {
    use super::Written;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        bytes: &Option<u64>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => super::serialize(b, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<u64>, D::Error> {
        match Option::<Written>::deserialize(deserializer)? {
            Some(written) => super::parse::<D::Error>(written).map(Some),
            None => Ok(None),
        }
    }
}
