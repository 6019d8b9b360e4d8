//! Waiting without sleeps standing in for sync: polling a condition under [`PATIENCE`], or
//! waking on the store's outbox announcements.

use std::time::Duration;

use order_listener::store::Store;

/// How long a test waits for something that should happen at once.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `probe` until it gives a value, or fails the test after [`PATIENCE`].
pub(crate) async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `probe` whenever the store announces an outbox change (a delivery recorded, a lease
/// taken), until it gives a value, or fails the test after [`PATIENCE`] without one.
pub(crate) async fn when_outbox_changes<T>(
    store: &Store,
    what: &str,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let mut outbox = store
        .commits()
        .expect("the store announces its commits")
        .outbox;
    loop {
        outbox.borrow_and_update();
        if let Some(value) = probe().await {
            return value;
        }
        tokio::time::timeout(PATIENCE, outbox.changed())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .expect("the store runs");
    }
}
