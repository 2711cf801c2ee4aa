//! The object-store operations the tier is built from, each with its failure cases settled:
//! create-only PUTs (whose outcome may be unknown), bounded GETs, manifest listing, and the
//! manifest commit that both claims and ships go through.
//!
//! What must hold: a manifest is never overwritten (every PUT is `PutMode::Create`); a PUT
//! that failed in a way that may hide a success (a timeout, a retried request that found
//! its own earlier write) is settled by reading the key back, never by assuming either way.

use crate::error::{Error, Result};
use crate::keys;
use crate::manifest::{Manifest, MAX_MANIFEST_BYTES};
use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::{GetOptions, GetResult, ObjectStore, PutMode, PutOptions, PutPayload};

/// How many times a manifest PUT whose outcome stayed unknown (it failed, and reading the key
/// back found nothing) is sent again, with the same bytes, before giving up.
const UNKNOWN_OUTCOME_RETRIES: usize = 3;

/// What a create-only PUT did.
pub(crate) enum Created {
    /// The object is ours.
    Yes,
    /// An object was already there (maybe our own earlier attempt): read it to know.
    AlreadyExists,
    /// The PUT failed; it may still have been applied.
    Unknown(object_store::Error),
}

/// PUTs `bytes` at `key` only if nothing is there (If-None-Match: *).
pub(crate) async fn put_create(store: &dyn ObjectStore, key: &Path, bytes: Bytes) -> Created {
    let opts = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    match store.put_opts(key, PutPayload::from(bytes), opts).await {
        Ok(_) => Created::Yes,
        Err(object_store::Error::AlreadyExists { .. }) => Created::AlreadyExists,
        Err(e) => Created::Unknown(e),
    }
}

/// Reads `key` whole, refusing an object longer than `max_len` before reading it (and, from
/// a store that sends more than it said, once the body passes `max_len`).
/// `Ok(None)` when there is no such object.
pub(crate) async fn get_bounded(
    store: &dyn ObjectStore,
    key: &Path,
    max_len: u64,
) -> Result<Option<Bytes>> {
    let result = match store.get_opts(key, GetOptions::default()).await {
        Ok(r) => r,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(Error::store("get", key, e)),
    };
    if result.meta.size > max_len {
        return Err(Error::corruption(
            key,
            format!(
                "{} bytes, more than the {max_len} expected",
                result.meta.size
            ),
        ));
    }
    read_body(result, key, max_len).await.map(Some)
}

/// Reads a GET's body, refusing it as soon as it passes `max_len`: what a store sends, not
/// what it says it sends, bounds the memory a read takes.
pub(crate) async fn read_body(result: GetResult, key: &Path, max_len: u64) -> Result<Bytes> {
    let mut body = result.into_stream();
    let mut pieces: Vec<Bytes> = Vec::new();
    let mut len = 0u64;
    while let Some(piece) = body
        .try_next()
        .await
        .map_err(|e| Error::store("get", key, e))?
    {
        len = len.saturating_add(piece.len() as u64);
        if len > max_len {
            return Err(Error::corruption(
                key,
                format!("more than the {max_len} bytes expected"),
            ));
        }
        pieces.push(piece);
    }
    Ok(match pieces.len() {
        0 => Bytes::new(),
        1 => pieces.swap_remove(0),
        _ => {
            // `len` bytes were received: at most `max_len`.
            let mut whole = bytes::BytesMut::with_capacity(len as usize);
            pieces.iter().for_each(|p| whole.extend_from_slice(p));
            whole.freeze()
        }
    })
}

/// The manifests under `prefix` (id and listing entry), ascending by id; with `after`, only
/// those above that id (the LIST starts after its key where the store supports it).
pub(crate) async fn manifest_listing(
    store: &dyn ObjectStore,
    prefix: &Path,
    after: Option<u64>,
) -> Result<Vec<(u64, object_store::ObjectMeta)>> {
    let dir = keys::manifest_dir(prefix);
    let listed = match after {
        Some(id) => store.list_with_offset(Some(&dir), &keys::manifest_key(prefix, id)),
        None => store.list(Some(&dir)),
    };
    let metas: Vec<_> = listed
        .try_collect()
        .await
        .map_err(|e| Error::store("list", &dir, e))?;
    let mut listing: Vec<_> = metas
        .into_iter()
        .filter(|m| keys::directly_in(&dir, &m.location))
        .filter_map(|m| keys::parse_manifest_id(&m.location).map(|id| (id, m)))
        .filter(|(id, _)| after.is_none_or(|after| *id > after))
        .collect();
    listing.sort_unstable_by_key(|(id, _)| *id);
    Ok(listing)
}

/// Whether any manifest with an id above `id` exists under `prefix` (one LIST).
pub(crate) async fn any_manifest_after(
    store: &dyn ObjectStore,
    prefix: &Path,
    id: u64,
) -> Result<bool> {
    Ok(!manifest_listing(store, prefix, Some(id)).await?.is_empty())
}

/// Reads and checks manifest `id`; `Ok(None)` when there is none.
pub(crate) async fn read_manifest(
    store: &dyn ObjectStore,
    prefix: &Path,
    id: u64,
) -> Result<Option<Manifest>> {
    let key = keys::manifest_key(prefix, id);
    match get_bounded(store, &key, MAX_MANIFEST_BYTES).await? {
        Some(bytes) => Manifest::decode(&bytes, &key, prefix, id).map(Some),
        None => Ok(None),
    }
}

/// How many times [`latest_manifest`] lists again when the newest manifest it listed is gone.
const RELIST_ATTEMPTS: usize = 8;

/// The newest manifest under `prefix` (highest id), `None` when there is none.
///
/// The newest manifest is never deleted, but one listed as the newest may be by the time it
/// is read: a newer one was committed meanwhile and the owner pruned the older
/// ([`crate::Tier::collect_orphans`]). The listing is then taken again.
///
/// # Errors
/// Store errors; [`Error::Corruption`] for a newest manifest that does not decode (an older
/// one is never used instead: it would hand the log to a stale owner).
pub async fn latest_manifest(store: &dyn ObjectStore, prefix: &Path) -> Result<Option<Manifest>> {
    let mut gone: Option<u64> = None;
    for _ in 0..RELIST_ATTEMPTS {
        let newest = manifest_listing(store, prefix, None)
            .await?
            .pop()
            .map(|(id, _)| id);
        // Pruning never deletes the newest manifest: one listed as the newest may only be
        // gone if a newer one exists, so a listing that shows nothing newer than the id
        // found gone means a manifest was deleted outside the rules (an operator, a
        // lifecycle rule). An older one is never used instead.
        if let (Some(gone), true) = (gone, newest.is_none_or(|id| Some(id) <= gone)) {
            return Err(Error::Conflict {
                key: keys::manifest_key(prefix, gone).to_string(),
                reason: "the newest manifest is gone and none follows it: manifests are only \
                         deleted below a newer one"
                    .into(),
            });
        }
        let Some(id) = newest else {
            return Ok(None);
        };
        match read_manifest(store, prefix, id).await? {
            Some(m) => return Ok(Some(m)),
            None => gone = Some(id),
        }
    }
    Err(Error::Conflict {
        key: keys::manifest_key(prefix, gone.unwrap_or_default()).to_string(),
        reason: format!(
            "the newest manifest listed was gone when read, {RELIST_ATTEMPTS} times in a row"
        ),
    })
}

/// What became of a manifest commit.
pub(crate) enum Commit {
    /// Our manifest is stored at its id.
    Done,
    /// A manifest of our own (same epoch and nonce) but other contents holds the id: an
    /// earlier attempt whose outcome was unknown at the time. It is the newest we wrote.
    OwnEarlier(Manifest),
    /// Another writer's manifest holds the id.
    Taken(Manifest),
}

/// Writes `manifest` at its id, create-only, settling an unknown outcome by reading the id
/// back and comparing the writer's nonce.
pub(crate) async fn commit_manifest(
    store: &dyn ObjectStore,
    prefix: &Path,
    manifest: &Manifest,
) -> Result<Commit> {
    let key = keys::manifest_key(prefix, manifest.manifest_id);
    let bytes = manifest.encode(&key)?;
    let mut last_error = None;
    for _ in 0..=UNKNOWN_OUTCOME_RETRIES {
        let outcome = put_create(store, &key, bytes.clone()).await;
        if let Created::Yes = outcome {
            return Ok(Commit::Done);
        }
        // Either an object is there (ours from an earlier attempt or a retried request, or
        // another writer's), or the PUT failed in a way that may hide a success: only what
        // the key holds now says which.
        match read_manifest(store, prefix, manifest.manifest_id).await {
            Ok(Some(found))
                if found.writer_nonce == manifest.writer_nonce
                    && found.writer_epoch == manifest.writer_epoch =>
            {
                return Ok(if found == *manifest {
                    Commit::Done
                } else {
                    Commit::OwnEarlier(found)
                });
            }
            Ok(Some(found)) => return Ok(Commit::Taken(found)),
            Ok(None) => match outcome {
                Created::Unknown(e) => last_error = Some(Error::store("put", &key, e)),
                // The id was taken, then freed: its writer pruned it below a newer manifest
                // of its own (`orphans.rs`), so another writer holds the log.
                _ if any_manifest_after(store, prefix, manifest.manifest_id).await? => {
                    return match latest_manifest(store, prefix).await? {
                        Some(newest) => Ok(Commit::Taken(newest)),
                        None => Err(Error::Conflict {
                            key: key.to_string(),
                            reason: "the manifests listed a moment ago are gone".into(),
                        }),
                    };
                }
                _ => {
                    return Err(Error::Conflict {
                        key: key.to_string(),
                        reason: "the store reported the manifest exists, then that it does not"
                            .into(),
                    })
                }
            },
            // Neither the PUT nor the read back settled it: the caller keeps its last known
            // manifest, and its next commit at this id finds out.
            Err(read_error) => {
                return Err(match outcome {
                    Created::Unknown(e) => Error::store("put", &key, e),
                    _ => read_error,
                })
            }
        }
    }
    Err(last_error.unwrap_or_else(|| Error::Conflict {
        key: key.to_string(),
        reason: "manifest commit gave up".into(),
    }))
}

/// Uploads an immutable object (a segment or a checkpoint): create-only; when the key is
/// taken (our own earlier attempt), the object there must have the same length and CRC.
pub(crate) async fn upload_immutable(
    store: &dyn ObjectStore,
    key: &Path,
    bytes: Bytes,
    crc32: u32,
) -> Result<()> {
    let outcome = put_create(store, key, bytes.clone()).await;
    let error = match outcome {
        Created::Yes => return Ok(()),
        Created::AlreadyExists => None,
        Created::Unknown(e) => Some(e),
    };
    match get_bounded(store, key, bytes.len() as u64).await {
        Ok(Some(found)) if found.len() == bytes.len() && crc32fast::hash(&found) == crc32 => Ok(()),
        Ok(Some(_)) | Err(Error::Corruption { .. }) => Err(Error::Conflict {
            key: key.to_string(),
            reason: "an object with other contents is already there".into(),
        }),
        Ok(None) => Err(match error {
            Some(e) => Error::store("put", key, e),
            None => Error::Conflict {
                key: key.to_string(),
                reason: "the store reported the object exists, then that it does not".into(),
            },
        }),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use futures_util::StreamExt;

    /// A GET result that says it holds `said` bytes and sends `pieces` (then, with
    /// `endless`, never stops).
    fn result(said: u64, pieces: Vec<&'static [u8]>, endless: bool) -> GetResult {
        let sent = futures_util::stream::iter(pieces.into_iter().map(|p| Ok(Bytes::from(p))));
        let stream = if endless {
            sent.chain(futures_util::stream::repeat_with(|| {
                Ok(Bytes::from_static(&[7u8; 4096]))
            }))
            .boxed()
        } else {
            sent.boxed()
        };
        GetResult {
            payload: object_store::GetResultPayload::Stream(stream),
            meta: object_store::ObjectMeta {
                location: Path::from("k"),
                last_modified: Default::default(),
                size: said,
                e_tag: None,
                version: None,
            },
            range: 0..said,
            attributes: Default::default(),
            extensions: Default::default(),
        }
    }

    #[tokio::test]
    async fn a_body_is_read_whole_within_its_bound_and_refused_past_it() {
        let key = Path::from("k");
        let whole = read_body(result(6, vec![b"ab", b"cd", b"ef"], false), &key, 6)
            .await
            .unwrap();
        assert_eq!(whole.as_ref(), b"abcdef");
        let one = read_body(result(3, vec![b"abc"], false), &key, 3)
            .await
            .unwrap();
        assert_eq!(one.as_ref(), b"abc");
        let e = read_body(result(3, vec![b"ab", b"cd"], false), &key, 3)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Corruption { .. }), "{e}");
    }

    /// A store that sends more than it said (here: without end) is cut off at the bound; it
    /// used to be read to its end before the length was checked.
    #[tokio::test]
    async fn a_store_that_never_stops_sending_is_cut_off_at_the_bound() {
        let key = Path::from("k");
        let read = read_body(result(64, vec![b"header"], true), &key, 64);
        let e = tokio::time::timeout(std::time::Duration::from_secs(10), read)
            .await
            .expect("the read stops at its bound")
            .unwrap_err();
        assert!(matches!(e, Error::Corruption { .. }), "{e}");
    }
}
