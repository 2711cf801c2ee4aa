//! SQLite (rusqlite, bundled): WAL journal, `synchronous=FULL`, table (execution, seq,
//! payload) with primary key (execution, seq), one transaction per append. SQLite has one
//! writer at a time, so the connection sits behind a mutex.

use super::Peer;
use anyhow::Result;
use rusqlite::{params, Connection};
use std::path::Path;
use std::sync::Mutex;

struct Sqlite {
    conn: Mutex<Connection>,
}

pub fn open(dir: &Path) -> Result<Box<dyn Peer>> {
    let conn = Connection::open(dir.join("events.sqlite"))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE events (execution TEXT NOT NULL, seq INTEGER NOT NULL, payload BLOB NOT NULL,
         PRIMARY KEY (execution, seq)) WITHOUT ROWID;",
    )?;
    Ok(Box::new(Sqlite {
        conn: Mutex::new(conn),
    }))
}

impl Sqlite {
    fn insert(&self, execution: u64, payloads: &[&[u8]]) -> Result<()> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned mutex"))?;
        let tx = conn.transaction()?;
        let exec = format!("exec-{execution:06}");
        let next: i64 = tx.query_row(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE execution = ?1",
            params![exec],
            |r| r.get(0),
        )?;
        for (i, p) in payloads.iter().enumerate() {
            tx.execute(
                "INSERT INTO events (execution, seq, payload) VALUES (?1, ?2, ?3)",
                params![exec, next + i as i64, p],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

impl Peer for Sqlite {
    fn append(&self, execution: u64, payload: &[u8]) -> Result<()> {
        self.insert(execution, &[payload])
    }

    fn append_batch(&self, execution: u64, payloads: &[&[u8]]) -> Result<()> {
        self.insert(execution, payloads)
    }
}
