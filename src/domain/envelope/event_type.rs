//! [`EventType`]: the kinds of notification the Listener API knows, by their wire names. No IO.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kind of notification (`eventType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// A service order was created; ONAP sends it once, in state `acknowledged`.
    ServiceOrderCreation,
    /// A service order changed state; ONAP sends it only for `completed` and `failed`.
    ServiceOrderStateChange,
    /// One item of a service order changed state; `event.orderItem` holds that item.
    ServiceOrderItemStateChange,
    /// Service inventory: a service was created. Stored and forwarded, not projected.
    ServiceCreation,
    /// Service inventory: a service attribute changed. Stored and forwarded, not projected.
    ServiceAttributeValueChange,
    /// Service inventory: a service was removed. Stored and forwarded, not projected.
    ServiceRemove,
}

impl EventType {
    /// Every event type: the three of the Listener API, then the service-inventory ones.
    pub const ALL: [EventType; 6] = [
        EventType::ServiceOrderCreation,
        EventType::ServiceOrderStateChange,
        EventType::ServiceOrderItemStateChange,
        EventType::ServiceCreation,
        EventType::ServiceAttributeValueChange,
        EventType::ServiceRemove,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ServiceOrderCreation => "ServiceOrderCreationNotification",
            EventType::ServiceOrderStateChange => "ServiceOrderStateChangeNotification",
            EventType::ServiceOrderItemStateChange => "ServiceOrderItemStateChangeNotification",
            EventType::ServiceCreation => "ServiceCreationNotification",
            EventType::ServiceAttributeValueChange => "ServiceAttributeValueChangeNotification",
            EventType::ServiceRemove => "ServiceRemoveNotification",
        }
    }

    /// Whether the event is about a service order, and so is projected.
    pub fn is_service_order(self) -> bool {
        matches!(
            self,
            EventType::ServiceOrderCreation
                | EventType::ServiceOrderStateChange
                | EventType::ServiceOrderItemStateChange
        )
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| format!("`{text}` is not an event type"))
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
