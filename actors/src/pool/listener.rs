//! A dedicated connection that LISTENs for new jobs. It reconnects with
//! backoff on its own; after every (re)connect it reports `None`, since
//! notifications sent while it was away are lost and the pool should look.
//! Notifications this process sent itself are passed over: its workers heard
//! those wakeups when they were named (`Db::on_wake`).

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::AsyncMessage;

use crate::backoff::Backoff;
use crate::jobs::queue::CHANNEL;
use crate::store::{tls, Db, StoreError};

const RECONNECT: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));

/// Calls `wake(Some(kind))` per notification not sent by `db` itself, and
/// `wake(None)` after each connect.
pub fn spawn(db: Db, wake: impl Fn(Option<String>) + Send + Sync + 'static) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut attempt = 0u32;
        loop {
            match listen_once(&db, &wake).await {
                Ok(()) => attempt = 0,
                Err(e) => {
                    let delay = RECONNECT.delay(attempt);
                    attempt = attempt.saturating_add(1);
                    tracing::warn!(host = %db.host(), error = %crate::error::chain(&e), retry_in = ?delay, "job listener disconnected");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    })
}

async fn listen_once(db: &Db, wake: &(impl Fn(Option<String>) + Sync)) -> Result<(), StoreError> {
    let (client, mut connection) = tls::connect(db.url()).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let pump = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(Ok((n.process_id(), n.payload().to_owned()))).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    wake(None);
    let result = loop {
        match rx.recv().await {
            Some(Ok((sender, _))) if db.sent_here(sender) => {}
            Some(Ok((_, kind))) => wake(Some(kind)),
            Some(Err(e)) => break Err(e.into()),
            None => break Ok(()),
        }
    };
    pump.abort();
    drop(client);
    result
}
