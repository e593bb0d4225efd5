//! The capture task: every few seconds it takes the money of the orders authorized since its
//! last run, one provider call per account, and marks them captured.

use crate::models::DueCapture;
use crate::payments::{PaymentError, Payments};
use sdlab_kit::{AppError, Db};
use sqlx::Connection;
use std::fmt;
use std::time::{Duration, Instant};
use tokio::time::MissedTickBehavior;

/// How often the task runs: captured money shows on accounts within seconds.
const EVERY: Duration = Duration::from_secs(2);

/// Runs for as long as the service does. A failed run is logged and retried at the next one.
pub async fn run(db: Db, payments: Payments) {
    let mut every = tokio::time::interval(EVERY);
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let started = Instant::now();
        match capture_due(&db, &payments).await {
            Ok(0) => {}
            Ok(accounts) => tracing::info!(
                "captured {accounts} accounts in {} ms",
                started.elapsed().as_millis()
            ),
            Err(e) => tracing::warn!("capture failed, retrying at the next run: {e}"),
        }
    }
}

/// One run: what is due, then each account on its own.
///
/// SOLUTION (capture): no transaction is open while the provider is called. The first version
/// did all of it in one transaction, so each account's row stayed locked (by its UPDATE) until
/// the last provider call of the run had answered, and every order for those accounts (the
/// busiest ones) waited on the lock: pg_stat_activity showed them with wait_event_type 'Lock'
/// and the JSON logs showed the slow POST /orders lines right after each run started.
async fn capture_due(db: &Db, payments: &Payments) -> Result<usize, CaptureError> {
    let due: Vec<DueCapture> = {
        let mut conn = db.conn().await?;
        sqlx::query_as(
            "SELECT account_id, sum(amount_cents)::bigint AS amount_cents, array_agg(id) AS order_ids
             FROM orders WHERE status = 'placed'
             GROUP BY account_id ORDER BY account_id",
        )
        .fetch_all(&mut *conn)
        .await?
    };
    let mut captured = 0;
    for account in &due {
        // The provider first. If it fails, nothing changed here and the orders are still
        // 'placed': the next run tries again (the capture key makes a repeat harmless).
        if let Err(e) = payments.capture(account).await {
            tracing::warn!(
                account_id = account.account_id,
                "capture refused, retrying at the next run: {e}"
            );
            continue;
        }
        // Then one short transaction per account: the row lock lasts two statements.
        let mut conn = db.conn().await?;
        let mut tx = conn.begin().await?;
        sqlx::query(
            "UPDATE orders SET status = 'captured', captured_at = now() WHERE id = ANY($1)",
        )
        .bind(&account.order_ids)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE accounts SET open_cents = open_cents - $2,
                                 captured_cents = captured_cents + $2
             WHERE id = $1",
        )
        .bind(account.account_id)
        .bind(account.amount_cents)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        captured += 1;
    }
    Ok(captured)
}

/// Why a run failed: the database or the provider.
#[derive(Debug)]
pub enum CaptureError {
    Db(AppError),
    Payments(PaymentError),
}

impl From<AppError> for CaptureError {
    fn from(e: AppError) -> Self {
        CaptureError::Db(e)
    }
}

impl From<sqlx::Error> for CaptureError {
    fn from(e: sqlx::Error) -> Self {
        CaptureError::Db(AppError::from(e))
    }
}

impl From<PaymentError> for CaptureError {
    fn from(e: PaymentError) -> Self {
        CaptureError::Payments(e)
    }
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::Db(e) => write!(f, "{e}"),
            CaptureError::Payments(e) => write!(f, "{e}"),
        }
    }
}
