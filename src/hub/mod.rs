//! The seller side of subscriptions: each dialect's Hub API (`dialect`), a client for it, and
//! the query rules of the hubs. The simulator serves the same API.

pub(crate) mod client;
pub(crate) mod dialect;
pub(crate) mod query;

use serde::{Deserialize, Serialize};

/// A subscription as the hub stores it (ONAP's `Hub`, TMF641 and MEF's `EventSubscription`,
/// TMF641 v5's `Hub`), reduced to what every dialect has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hub {
    /// The hub's id for it.
    pub id: String,
    /// Where notifications are POSTed (TMF641 and MEF sellers add a path to it).
    pub callback: String,
    /// Which notifications; empty when the subscription has no query.
    #[serde(default)]
    pub query: String,
}
