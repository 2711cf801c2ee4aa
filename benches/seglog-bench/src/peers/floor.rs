//! The physical floor: one preallocated file, `write` + `fdatasync` per append under a mutex.
//! No group commit, no format: what a durable append costs the disk at the least.

use super::Peer;
use anyhow::Result;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;

const PREALLOCATED_BYTES: u64 = 1 << 30;

struct Floor {
    file: File,
    offset: Mutex<u64>,
}

pub fn open(dir: &Path) -> Result<Box<dyn Peer>> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.join("floor.dat"))?;
    rustix::fs::fallocate(
        &file,
        rustix::fs::FallocateFlags::empty(),
        0,
        PREALLOCATED_BYTES,
    )?;
    file.sync_all()?;
    Ok(Box::new(Floor {
        file,
        offset: Mutex::new(0),
    }))
}

impl Peer for Floor {
    fn append(&self, _execution: u64, payload: &[u8]) -> Result<()> {
        let mut offset = self
            .offset
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned mutex"))?;
        let at = *offset % (PREALLOCATED_BYTES - payload.len() as u64);
        self.file.write_all_at(payload, at)?;
        self.file.sync_data()?;
        *offset = at + payload.len() as u64;
        Ok(())
    }

    fn append_batch(&self, execution: u64, payloads: &[&[u8]]) -> Result<()> {
        // The floor's batch: one write of the concatenation, one fdatasync.
        self.append(execution, &payloads.concat())
    }
}
