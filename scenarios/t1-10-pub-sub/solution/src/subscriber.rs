//! A subscriber's loop (`SDLAB_ROLE=worker`; worker 1 is billing, 2 email, 3 analytics): read
//! the topic through its own consumer group, handle each event in the stream's order, ack.

use crate::subscribers::{deliver, Notify};
use crate::topic::{Entry, Topic};
use sdlab_kit::Db;
use std::time::Duration;

/// What a subscriber works with.
pub struct Subscriber {
    pub db: Db,
    pub notify: Notify,
    pub topic: Topic,
    /// `billing`, `email` or `analytics`: its group's name and its consumer name, the same
    /// after a restart, so what it had pending is its own again.
    pub name: &'static str,
}

/// Runs until the process stops. A failed round (Redis or PostgreSQL away) is logged and
/// retried from the pending entries: nothing read is skipped.
pub async fn run(sub: Subscriber) {
    tracing::info!(subscriber = sub.name, "subscriber started");
    // SOLUTION (catch up): first what this subscriber was given and never acked (it died
    // holding it), then the new entries its group has not seen: all that was published
    // while it was down.
    let mut pending = true;
    loop {
        if let Err(e) = sub.topic.subscribe(sub.name).await {
            tracing::error!(subscriber = sub.name, "subscribe: {e}");
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        match round(&sub, pending).await {
            Ok(0) if pending => pending = false,
            Ok(_) => {}
            Err(e) => {
                tracing::error!(subscriber = sub.name, "round failed: {e}");
                pending = true;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// One batch, handled one event after the other: an account's events in their order.
async fn round(sub: &Subscriber, pending: bool) -> Result<usize, String> {
    let batch = sub
        .topic
        .read(sub.name, pending)
        .await
        .map_err(|e| e.to_string())?;
    let n = batch.len();
    for entry in batch {
        handle(sub, entry).await?;
    }
    Ok(n)
}

/// Handles one event and acks it. A failure stops the batch (the next events of the account
/// must not overtake this one): the round starts again from the pending entries.
async fn handle(sub: &Subscriber, entry: Entry) -> Result<(), String> {
    if let Some(event) = &entry.event {
        // SOLUTION (exactly once): an entry handled before it was acked (the process died in
        // between) comes back; it is only acked then, not handled twice.
        let done: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM deliveries WHERE subscriber = $1 AND event_id = $2)",
        )
        .bind(sub.name)
        .bind(event.event_id)
        .fetch_one(sub.db.pool())
        .await
        .map_err(|e| e.to_string())?;
        if !done {
            deliver(&sub.db, &sub.notify, sub.name, event)
                .await
                .map_err(|e| e.0)?;
        }
    } else {
        tracing::error!(id = %entry.id, "an entry without a readable event: skipped");
    }
    // SOLUTION (ack after the work): only now is the entry done for this subscriber.
    sub.topic
        .ack(sub.name, &entry.id)
        .await
        .map_err(|e| e.to_string())
}
