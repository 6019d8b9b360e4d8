//! Prometheus metrics, all named `order_listener_*`, served as text on the admin port at
//! `/metrics`. One [`Metrics`] per running app (no global registry), shared by the handlers, the
//! store's writer and the delivery workers.

use std::time::Duration;

/// What happened to one delivery attempt, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// The sink took it.
    Delivered,
    /// It failed and will be tried again.
    Failed,
    /// It failed past the horizon and is now a dead letter.
    Dead,
}

/// The app's metrics.
#[derive(Debug, Default)]
pub struct Metrics {}

impl Metrics {
    /// A fresh set of metrics.
    pub fn new() -> Self {
        Metrics {}
    }

    /// A Listener API request finished with `status`; `event_type` when the body named one.
    pub fn request(&self, event_type: Option<&str>, status: u16) {
        let _ = (event_type, status);
    }

    /// A caller was refused with this 401/403 code (40–42, 50–53).
    pub fn auth_failure(&self, code: u16) {
        let _ = code;
    }

    /// A commit of `size` appends took `elapsed`.
    pub fn commit(&self, size: usize, elapsed: Duration) {
        let _ = (size, elapsed);
    }

    /// A delivery attempt to `sink` ended so, after `elapsed`.
    pub fn delivery(&self, sink: &str, result: AttemptResult, elapsed: Duration) {
        let _ = (sink, result, elapsed);
    }

    /// The broker said a published message was a duplicate it already had.
    pub fn duplicate(&self, sink: &str) {
        let _ = sink;
    }
}
