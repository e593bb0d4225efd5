//! SOLUTION (routing): where each read goes. Reads go to the replica, which takes them off
//! the primary's CPU, except a member's reads right after their own write: the replica
//! applies the primary's changes a moment later (streaming, then the apply delay), so a
//! member who just recorded an expense would not see it there.
//!
//! After a write the service asks the primary where its WAL ends (`pg_current_wal_lsn()`,
//! after the commit, so the position covers it) and keeps that position for the member. A
//! read of that member goes to the replica once the replica has replayed up to it
//! (`pg_last_wal_replay_lsn()`), and to the primary until then. Exact: no guess of how
//! long the lag is, and only the few reads that need the primary go there.
//!
//! The positions live in this process's memory, which is right for one instance. With
//! several, a member's next read may land on another instance: the position would travel
//! with the member instead (in the session, or a cookie) or live in a store all share.

use sdlab_kit::{AppError, Db};
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, Postgres};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Chooses the server for each read. Cloning it clones the Arcs inside.
#[derive(Clone)]
pub struct Reads {
    primary: Db,
    replica: Db,
    /// Per member, the WAL position their last write ended at, until the replica has it.
    pending: Arc<Mutex<HashMap<i64, u64>>>,
    /// The furthest the replica was seen to have replayed, so most checks need no query.
    replayed: Arc<AtomicU64>,
}

impl Reads {
    pub fn new(primary: Db, replica: Db) -> Reads {
        Reads {
            primary,
            replica,
            pending: Arc::default(),
            replayed: Arc::default(),
        }
    }

    /// A connection for a read of `user_id`'s data that shows every write they made.
    pub async fn conn(&self, user_id: i64) -> Result<PoolConnection<Postgres>, AppError> {
        let waiting_for = self.pending().get(&user_id).copied();
        if let Some(lsn) = waiting_for {
            if !self.replica_has(lsn).await {
                return self.primary.conn().await;
            }
            let mut pending = self.pending();
            // A newer write may have raised the position meanwhile: keep that one.
            if pending.get(&user_id).is_some_and(|&p| p <= lsn) {
                pending.remove(&user_id);
            }
        }
        self.replica.conn().await
    }

    /// Records that `user_id` just wrote, on `conn` (a primary connection, after the
    /// commit).
    pub async fn wrote(&self, user_id: i64, conn: &mut PgConnection) -> Result<(), AppError> {
        let lsn: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
            .fetch_one(conn)
            .await?;
        let lsn = parse_lsn(&lsn)
            .ok_or_else(|| sqlx::Error::Protocol(format!("unreadable WAL position {lsn:?}")))?;
        let mut pending = self.pending();
        let at = pending.entry(user_id).or_insert(lsn);
        *at = (*at).max(lsn);
        Ok(())
    }

    /// Whether the replica has replayed the WAL up to `lsn`. Any doubt (the replica does not
    /// answer) says no: the read then goes to the primary, slower but right.
    async fn replica_has(&self, lsn: u64) -> bool {
        if self.replayed.load(Ordering::Relaxed) >= lsn {
            return true;
        }
        let asked: Result<Option<String>, sqlx::Error> =
            sqlx::query_scalar("SELECT pg_last_wal_replay_lsn()::text")
                .fetch_one(self.replica.pool())
                .await;
        match asked.ok().flatten().as_deref().and_then(parse_lsn) {
            Some(replayed) => {
                self.replayed.fetch_max(replayed, Ordering::Relaxed);
                replayed >= lsn
            }
            None => false,
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<i64, u64>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A WAL position as PostgreSQL prints it, `16/B374D848`, as one number that orders the
/// same way.
fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    Some((u64::from_str_radix(high, 16).ok()? << 32) | u64::from_str_radix(low, 16).ok()?)
}
