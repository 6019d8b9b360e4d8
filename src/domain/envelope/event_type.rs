//! [`EventType`]: the kinds of notification the listener knows, by their wire names: ONAP's
//! `…Notification` types, and the TM Forum's `…Event` types that TMF641 v4/v5 and MEF LSO
//! Legato sellers send. No IO.

use std::str::FromStr;

/// The kind of notification (`eventType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// ONAP: a service order was created; sent once, in state `acknowledged`.
    ServiceOrderCreation,
    /// ONAP: a service order changed state; sent only for `completed` and `failed`.
    ServiceOrderStateChange,
    /// ONAP: one item of a service order changed state; `event.orderItem` holds that item.
    ServiceOrderItemStateChange,
    /// Service inventory: a service was created. Stored and forwarded, not projected.
    ServiceCreation,
    /// Service inventory: a service attribute changed. Stored and forwarded, not projected.
    ServiceAttributeValueChange,
    /// Service inventory: a service was removed. Stored and forwarded, not projected.
    ServiceRemove,
    /// TMF641 and MEF: a service order was created.
    ServiceOrderCreateEvent,
    /// TMF641: attributes of a service order changed.
    ServiceOrderAttributeValueChangeEvent,
    /// TMF641 and MEF: a service order changed state.
    ServiceOrderStateChangeEvent,
    /// TMF641: a service order was deleted.
    ServiceOrderDeleteEvent,
    /// TMF641 and MEF: the seller needs information from the buyer.
    ServiceOrderInformationRequiredEvent,
    /// TMF641: a service order reached a milestone.
    ServiceOrderMilestoneEvent,
    /// TMF641: a service order is in jeopardy.
    ServiceOrderJeopardyEvent,
    /// MEF: one item of a service order changed state (`orderItemId`).
    ServiceOrderItemStateChangeEvent,
    /// TMF641: the buyer's request to cancel an order was created.
    CancelServiceOrderCreateEvent,
    /// TMF641: a cancellation request changed state (a TaskStateType).
    CancelServiceOrderStateChangeEvent,
    /// TMF641: the seller needs information about a cancellation request.
    CancelServiceOrderInformationRequiredEvent,
}

/// What an event type does to an order's projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The order's creation.
    Creation,
    /// A change of one or more items' states.
    ItemStateChange,
    /// A change of the order's state.
    StateChange,
    /// Anything else about the order: it joins the timeline, and any state it carries counts.
    Other,
    /// Not about a service order (service inventory): stored and forwarded, not projected.
    NotAnOrder,
}

impl EventType {
    /// Every event type: ONAP's three, the service-inventory ones, then the TM Forum's.
    pub const ALL: [EventType; 17] = [
        EventType::ServiceOrderCreation,
        EventType::ServiceOrderStateChange,
        EventType::ServiceOrderItemStateChange,
        EventType::ServiceCreation,
        EventType::ServiceAttributeValueChange,
        EventType::ServiceRemove,
        EventType::ServiceOrderCreateEvent,
        EventType::ServiceOrderAttributeValueChangeEvent,
        EventType::ServiceOrderStateChangeEvent,
        EventType::ServiceOrderDeleteEvent,
        EventType::ServiceOrderInformationRequiredEvent,
        EventType::ServiceOrderMilestoneEvent,
        EventType::ServiceOrderJeopardyEvent,
        EventType::ServiceOrderItemStateChangeEvent,
        EventType::CancelServiceOrderCreateEvent,
        EventType::CancelServiceOrderStateChangeEvent,
        EventType::CancelServiceOrderInformationRequiredEvent,
    ];

    /// The wire name, as stored: ONAP's, or the TM Forum's (`ServiceOrderStateChangeEvent`),
    /// which MEF writes in lower camel case.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ServiceOrderCreation => "ServiceOrderCreationNotification",
            EventType::ServiceOrderStateChange => "ServiceOrderStateChangeNotification",
            EventType::ServiceOrderItemStateChange => "ServiceOrderItemStateChangeNotification",
            EventType::ServiceCreation => "ServiceCreationNotification",
            EventType::ServiceAttributeValueChange => "ServiceAttributeValueChangeNotification",
            EventType::ServiceRemove => "ServiceRemoveNotification",
            EventType::ServiceOrderCreateEvent => "ServiceOrderCreateEvent",
            EventType::ServiceOrderAttributeValueChangeEvent => {
                "ServiceOrderAttributeValueChangeEvent"
            }
            EventType::ServiceOrderStateChangeEvent => "ServiceOrderStateChangeEvent",
            EventType::ServiceOrderDeleteEvent => "ServiceOrderDeleteEvent",
            EventType::ServiceOrderInformationRequiredEvent => {
                "ServiceOrderInformationRequiredEvent"
            }
            EventType::ServiceOrderMilestoneEvent => "ServiceOrderMilestoneEvent",
            EventType::ServiceOrderJeopardyEvent => "ServiceOrderJeopardyEvent",
            EventType::ServiceOrderItemStateChangeEvent => "ServiceOrderItemStateChangeEvent",
            EventType::CancelServiceOrderCreateEvent => "CancelServiceOrderCreateEvent",
            EventType::CancelServiceOrderStateChangeEvent => "CancelServiceOrderStateChangeEvent",
            EventType::CancelServiceOrderInformationRequiredEvent => {
                "CancelServiceOrderInformationRequiredEvent"
            }
        }
    }

    /// The name in a listener path (`/listener/serviceOrderStateChangeEvent`), which is also
    /// MEF's `eventType`: the TM Forum name in lower camel case. `None` for ONAP's types,
    /// which share one path.
    pub fn path_name(self) -> Option<String> {
        let name = self.as_str();
        name.ends_with("Event").then(|| {
            let mut chars = name.chars();
            let first = chars.next().map(|c| c.to_ascii_lowercase());
            first.into_iter().chain(chars).collect()
        })
    }

    /// What the event does to its order's projection.
    pub fn role(self) -> Role {
        match self {
            EventType::ServiceOrderCreation | EventType::ServiceOrderCreateEvent => Role::Creation,
            EventType::ServiceOrderItemStateChange
            | EventType::ServiceOrderItemStateChangeEvent => Role::ItemStateChange,
            EventType::ServiceOrderStateChange | EventType::ServiceOrderStateChangeEvent => {
                Role::StateChange
            }
            EventType::ServiceCreation
            | EventType::ServiceAttributeValueChange
            | EventType::ServiceRemove => Role::NotAnOrder,
            _ => Role::Other,
        }
    }

    /// Whether the event is about a service order, and so is projected.
    pub fn is_service_order(self) -> bool {
        self.role() != Role::NotAnOrder
    }
}

impl FromStr for EventType {
    type Err = String;

    /// The wire name, or for the TM Forum's types also the lower-camel-case name of their
    /// path (and of MEF's `eventType`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text || kind.path_name().as_deref() == Some(text))
            .ok_or_else(|| format!("`{text}` is not an event type"))
    }
}

by_name!(EventType);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_reads_back_from_its_wire_name_and_its_path_name() {
        crate::domain::envelope::assert_names_read_back(
            EventType::ALL,
            "serviceOrderCreationNotification",
            "is not an event type",
        );
        for kind in EventType::ALL {
            if let Some(path) = kind.path_name() {
                assert_eq!(path.parse::<EventType>(), Ok(kind));
                assert!(path.starts_with(|c: char| c.is_ascii_lowercase()), "{path}");
            }
        }
        assert_eq!(
            EventType::ServiceOrderStateChangeEvent
                .path_name()
                .as_deref(),
            Some("serviceOrderStateChangeEvent")
        );
        assert_eq!(EventType::ServiceOrderCreation.path_name(), None);
    }
}
