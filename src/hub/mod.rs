//! The seller side of subscriptions: the Hub API's types, a client for it, and the query rules
//! of ONAP's hub. The simulator serves the same API.

pub(crate) mod client;
pub(crate) mod query;

use serde::{Deserialize, Serialize};

/// The Hub API's base path.
pub(crate) const BASE_PATH: &str = "/nbi/api/v4";

/// A subscription request (`HubIn`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HubIn {
    /// Where notifications are POSTed: the listener's URL.
    pub callback: String,
    /// Which notifications, as `key=value[,value]&key=value`.
    pub query: String,
}

/// A subscription as the hub stores it (`Hub`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hub {
    /// The hub's id for it.
    pub id: String,
    /// Where notifications are POSTed.
    pub callback: String,
    /// Which notifications.
    pub query: String,
}
