//! A handle to a file of the simulated file system.

use super::{apply, errno, write_into, FaultKind, Inode, Op, Pending, State, PAGE};
use crate::io::{FileIdentity, SegmentFile};
use bytes::Bytes;
use parking_lot::Mutex;
use std::io;
use std::sync::Arc;

/// A handle to a simulated file.
#[derive(Debug)]
pub struct SimFile {
    pub(super) state: Arc<Mutex<State>>,
    pub(super) inode: u64,
    pub(super) writable: bool,
    /// The inode's `writeback_errors` this handle has reported (Linux keeps this cursor per
    /// open file description: a failure is reported once to each).
    pub(super) errors_seen: std::sync::atomic::AtomicU64,
}

impl SimFile {
    fn mutate(
        &self,
        op: Op,
        f: impl FnOnce(&mut Inode, Option<FaultKind>) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut st = self.state.lock();
        if !self.writable && !st.powered_off {
            return Err(io::ErrorKind::PermissionDenied.into());
        }
        let fault = st.begin(op)?;
        let inode = st.inode(self.inode)?;
        f(inode, fault)
    }
}

impl SegmentFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut st = self.state.lock();
        st.check_on()?;
        let inode = st.inode(self.inode)?;
        let start = (offset as usize).min(inode.data.len());
        let n = buf.len().min(inode.data.len() - start);
        buf[..n].copy_from_slice(&inode.data[start..start + n]);
        Ok(n)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if buf.is_empty() {
            // Like std's `write_all_at` (and `pwritev`, which `StdFile` gives no empty
            // part): nothing to write is no system call, so no size change and no point for
            // a fault or a power cut to land (review 119).
            return Ok(());
        }
        self.mutate(Op::Write, |inode, fault| {
            let (bytes, result) = match fault {
                None => (buf, Ok(())),
                Some(FaultKind::ShortWrite) => {
                    (&buf[..buf.len() / 2], Err(errno(FaultKind::ShortWrite)))
                }
                Some(kind) => (&buf[..0], Err(errno(kind))),
            };
            write_into(&mut inode.data, offset, bytes);
            inode.queue(Pending::Write {
                offset,
                bytes: bytes.to_vec(),
            });
            result
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        // Like fdatasync(2), it writes back what was dirty when it began: a change made while
        // it is in flight (its latency) stays unsynced.
        let (latency, dirty_through) = {
            let mut st = self.state.lock();
            st.syncs_started += 1;
            let latency = st.next_sync_latency();
            (latency, st.inode(self.inode).map_or(u64::MAX, |i| i.queued))
        };
        if !latency.is_zero() {
            std::thread::sleep(latency);
        }
        self.mutate(Op::SyncData, |inode, fault| {
            use std::sync::atomic::Ordering;
            let pending = inode.take_queued_before(dirty_through);
            if fault.is_some() {
                inode.writeback_errors += 1;
            }
            // A failure since this handle last looked is reported now, even when another
            // handle's sync met it (and this one found nothing left to write).
            let unseen = self
                .errors_seen
                .swap(inode.writeback_errors, Ordering::Relaxed)
                < inode.writeback_errors;
            if fault.is_none() && unseen {
                for p in &pending {
                    inode.persist(p);
                }
                return Err(errno(FaultKind::Eio));
            }
            if let Some(kind) = fault {
                // Like Linux after a failed writeback: the pages are marked clean, so no later
                // sync writes them; their contents stay in the page cache (`data`) for anyone
                // who reads the file, but not on the disk (`durable`).
                for p in &pending {
                    if let Pending::Write { offset, bytes } = p {
                        inode
                            .failed_pages
                            .extend(Inode::pages(*offset, bytes.len()));
                    }
                }
                return Err(errno(kind));
            }
            for p in &pending {
                inode.persist(p);
            }
            Ok(())
        })
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.mutate(Op::SetLen, |inode, fault| {
            if let Some(kind) = fault {
                return Err(errno(kind));
            }
            inode.failed_pages.retain(|&p| p * PAGE < len);
            inode.data.resize(len as usize, 0);
            inode.queue(Pending::SetLen(len));
            Ok(())
        })
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        self.mutate(Op::Allocate, |inode, fault| {
            if let Some(kind) = fault {
                return Err(errno(kind));
            }
            if (inode.data.len() as u64) < len {
                inode.data.resize(len as usize, 0);
                inode.queue(Pending::SetLen(len));
            }
            Ok(())
        })
    }

    fn len(&self) -> io::Result<u64> {
        let mut st = self.state.lock();
        st.check_on()?;
        Ok(st.inode(self.inode)?.data.len() as u64)
    }

    /// As `SimFs::identity` names a file: its inode.
    fn identity(&self) -> io::Result<FileIdentity> {
        let mut st = self.state.lock();
        st.check_on()?;
        st.inode(self.inode)?;
        Ok(FileIdentity {
            device: 0,
            inode: self.inode,
        })
    }

    fn evict(&self, offset: u64, len: u64) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check_on()?;
        let inode = st.inode(self.inode)?;
        // What the disk holds, with the dirty (unsynced) changes on top: those pages stay.
        let mut disk_and_dirty = inode.durable.clone();
        disk_and_dirty.resize(inode.data.len(), 0);
        for p in &inode.unsynced {
            apply(&mut disk_and_dirty, p);
        }
        disk_and_dirty.resize(inode.data.len(), 0);
        // As `POSIX_FADV_DONTNEED` (mm/fadvise.c): whole pages only. The first page is the
        // caller's (`StdFs::evict` widens the start to it); the page holding the range's last
        // byte goes only if that byte ends the page or the file.
        let file_len = inode.data.len() as u64;
        if len == 0 || file_len == 0 {
            return Ok(());
        }
        let first = offset / PAGE;
        let last_byte = offset.saturating_add(len - 1);
        let ends_page = last_byte % PAGE == PAGE - 1 || last_byte == file_len - 1;
        let end = match last_byte / PAGE {
            last if ends_page => last + 1,
            last => last,
        }
        .min(file_len.div_ceil(PAGE));
        let mut dropped = 0;
        for page in first..end {
            let start = (page * PAGE) as usize;
            let stop = (((page + 1) * PAGE) as usize).min(inode.data.len());
            inode.data[start..stop].copy_from_slice(&disk_and_dirty[start..stop]);
            inode.failed_pages.remove(&page);
            dropped += (stop - start) as u64;
        }
        st.evicted_bytes += dropped;
        Ok(())
    }

    fn map(&self) -> io::Result<Bytes> {
        let mut st = self.state.lock();
        st.check_on()?;
        Ok(Bytes::copy_from_slice(&st.inode(self.inode)?.data))
    }
}
