//! The workers' loop (`SDLAB_ROLE=worker`): take orders from the queue, ship them, mark them
//! fulfilled, ack. Several workers run it at once, each as its own consumer of the group.

use crate::fulfilment::Fulfilment;
use crate::queue::{Entry, OrderQueue};
use sdlab_kit::Db;
use std::time::Duration;
use tokio::task::JoinSet;

/// What a worker works with.
pub struct Worker {
    pub db: Db,
    pub fulfilment: Fulfilment,
    /// Acks and claims.
    pub queue: OrderQueue,
    /// The blocking reads.
    pub reader: OrderQueue,
    /// This worker's name in the consumer group, e.g. `worker-1`: the same after a restart,
    /// so what it had pending is its own again.
    pub consumer: String,
}

/// Runs until the process stops. A failed round (Redis or PostgreSQL away) is logged and
/// retried: a worker that gives up leaves its orders to the others, or to nobody.
pub async fn run(worker: Worker) {
    tracing::info!(consumer = %worker.consumer, "worker started");
    loop {
        if let Err(e) = round(&worker).await {
            tracing::error!("worker round failed: {e}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// One batch: entries other workers left pending first (SOLUTION (retries)), else new ones;
/// all shipped concurrently.
async fn round(worker: &Worker) -> Result<(), sdlab_kit::CacheError> {
    let mut batch = worker.queue.claim_stale(&worker.consumer).await?;
    if batch.is_empty() {
        batch = worker.reader.read_new(&worker.consumer).await?;
    }
    let mut shipping = JoinSet::new();
    for entry in batch {
        let (db, fulfilment, queue) = (
            worker.db.clone(),
            worker.fulfilment.clone(),
            worker.queue.clone(),
        );
        shipping.spawn(async move { handle(&db, &fulfilment, &queue, entry).await });
    }
    while shipping.join_next().await.is_some() {}
    Ok(())
}

/// Ships one order and acks its entry; an order that fails stays pending and is retried.
async fn handle(db: &Db, fulfilment: &Fulfilment, queue: &OrderQueue, entry: Entry) {
    let Some(order) = entry.order else {
        tracing::error!(id = %entry.id, "an entry without a readable order: dropped");
        let _ = queue.done(&entry.id).await;
        return;
    };
    // SOLUTION (idempotent effect): a redelivered entry whose order is already fulfilled (a
    // worker died between the UPDATE and the ack) is only acked.
    let status: Result<Option<String>, _> =
        sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
            .bind(order.order_id)
            .fetch_optional(db.pool())
            .await;
    match status {
        Ok(Some(s)) if s == "fulfilled" => {
            let _ = queue.done(&entry.id).await;
            return;
        }
        Ok(_) => {}
        Err(e) => {
            tracing::error!(order_id = order.order_id, "read the order: {e}");
            return;
        }
    }
    if let Err(e) = fulfilment.ship(&order).await {
        // Not acked: it stays pending, and is claimed again after CLAIM_AFTER.
        tracing::error!(order_id = order.order_id, "{}", e.0);
        return;
    }
    let fulfilled =
        sqlx::query("UPDATE orders SET status = 'fulfilled', fulfilled_at = now() WHERE id = $1")
            .bind(order.order_id)
            .execute(db.pool())
            .await;
    if let Err(e) = fulfilled {
        tracing::error!(order_id = order.order_id, "mark fulfilled: {e}");
        return;
    }
    // SOLUTION (ack after the work): only now is the entry done. Acking when it was read
    // would lose it whenever this process dies in between.
    if let Err(e) = queue.done(&entry.id).await {
        tracing::error!(id = %entry.id, "ack: {e}");
    }
}
