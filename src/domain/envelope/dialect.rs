//! [`Dialect`]: the ways sellers send the same service-order notifications. Each dialect names
//! its listener paths, the event types it sends and how it refers to its orders. Its parser is
//! `envelope::<dialect>`, its error shape and reply are `http::dialect`. No IO.

use std::str::FromStr;

use super::event_type::EventType;

/// A seller's way of sending notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Dialect {
    /// ONAP External API (NBI): one `POST …/listener`, `{eventId, eventDate, eventType, event}`,
    /// 201 with the body echoed, ErrorRepresentation with numbered codes.
    #[default]
    Onap,
    /// TMF641 v4: `POST …/listener/{eventName}`, `eventTime`, `event.serviceOrder`, 201.
    Tmf641V4,
    /// TMF641 v5: as v4, with `@type` required and a 204 reply.
    Tmf641V5,
    /// MEF LSO Legato v5 (MEF 99): reference-only payloads `{id, href}`, 204, string codes.
    MefLegatoV5,
    /// MEF LSO Legato v6 (Mplify 99.1): as v5, with `state` (and `orderItemId`) added.
    MefLegatoV6,
}

/// Which error shape and envelope rules a dialect follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// ONAP's ErrorRepresentation, numbered codes.
    Onap,
    /// TM Forum's `Error`, codes as strings.
    Tmf,
    /// MEF's `Error`, string codes such as `invalidBody`.
    Mef,
}

/// The ten listener events of TMF641 v4 and v5.
const TMF_EVENTS: [EventType; 10] = [
    EventType::ServiceOrderCreateEvent,
    EventType::ServiceOrderAttributeValueChangeEvent,
    EventType::ServiceOrderStateChangeEvent,
    EventType::ServiceOrderDeleteEvent,
    EventType::ServiceOrderInformationRequiredEvent,
    EventType::ServiceOrderMilestoneEvent,
    EventType::ServiceOrderJeopardyEvent,
    EventType::CancelServiceOrderCreateEvent,
    EventType::CancelServiceOrderStateChangeEvent,
    EventType::CancelServiceOrderInformationRequiredEvent,
];

/// The four listener events of MEF LSO Legato.
const MEF_EVENTS: [EventType; 4] = [
    EventType::ServiceOrderCreateEvent,
    EventType::ServiceOrderStateChangeEvent,
    EventType::ServiceOrderInformationRequiredEvent,
    EventType::ServiceOrderItemStateChangeEvent,
];

/// ONAP's three service-order notifications.
const ONAP_EVENTS: [EventType; 3] = [
    EventType::ServiceOrderCreation,
    EventType::ServiceOrderStateChange,
    EventType::ServiceOrderItemStateChange,
];

impl Dialect {
    /// Every dialect.
    pub const ALL: [Dialect; 5] = [
        Dialect::Onap,
        Dialect::Tmf641V4,
        Dialect::Tmf641V5,
        Dialect::MefLegatoV5,
        Dialect::MefLegatoV6,
    ];

    /// Its name in the config, the CLI, the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Onap => "onap",
            Dialect::Tmf641V4 => "tmf641-v4",
            Dialect::Tmf641V5 => "tmf641-v5",
            Dialect::MefLegatoV5 => "mef-legato-v5",
            Dialect::MefLegatoV6 => "mef-legato-v6",
        }
    }

    /// Its error shape and envelope rules.
    pub fn family(self) -> Family {
        match self {
            Dialect::Onap => Family::Onap,
            Dialect::Tmf641V4 | Dialect::Tmf641V5 => Family::Tmf,
            Dialect::MefLegatoV5 | Dialect::MefLegatoV6 => Family::Mef,
        }
    }

    /// The base paths its listeners are mounted under by default; the first is the one the
    /// spec names. MEF's v5 hub example writes `serviceOrderingManagement`, so that spelling
    /// is mounted too.
    pub fn default_base_paths(self) -> &'static [&'static str] {
        match self {
            Dialect::Onap => &["/externalapi/listener/v1"],
            Dialect::Tmf641V4 => &["/tmf-api/serviceOrdering/v4"],
            Dialect::Tmf641V5 => &["/tmf-api/serviceOrdering/v5"],
            Dialect::MefLegatoV5 => &[
                "/mefApi/legato/serviceOrderingNotification/v5",
                "/mefApi/legato/serviceOrderingManagement/v5",
            ],
            Dialect::MefLegatoV6 => &[
                "/mefApi/legato/serviceOrderingNotification/v6",
                "/mefApi/legato/serviceOrderingManagement/v6",
            ],
        }
    }

    /// The service-order event types it sends. ONAP's share one path; the others have a path
    /// each, named by [`EventType::path_name`].
    pub fn event_types(self) -> &'static [EventType] {
        match self.family() {
            Family::Onap => &ONAP_EVENTS,
            Family::Tmf => &TMF_EVENTS,
            Family::Mef => &MEF_EVENTS,
        }
    }

    /// Whether its events carry only a reference to the order (`{id, href}`), so that the
    /// order itself must be fetched from the seller.
    pub fn is_reference_only(self) -> bool {
        self.family() == Family::Mef
    }

    /// Whether its events say the states they change (all but MEF v5, whose references carry
    /// none).
    pub fn carries_states(self) -> bool {
        self != Dialect::MefLegatoV5
    }

    /// Whether it answers a stored event with 201 and the body (ONAP, TMF641 v4), rather than
    /// 204 and no body.
    pub fn echoes_body(self) -> bool {
        matches!(self, Dialect::Onap | Dialect::Tmf641V4)
    }

    /// The event type named by `name` in one of its listener paths.
    pub fn event_at_path(self, name: &str) -> Option<EventType> {
        self.event_types()
            .iter()
            .copied()
            .find(|kind| kind.path_name().as_deref() == Some(name))
    }
}

impl FromStr for Dialect {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Dialect::ALL
            .into_iter()
            .find(|dialect| dialect.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "`{text}` is not a dialect; expected one of {}",
                    Dialect::ALL.map(Dialect::as_str).join(", ")
                )
            })
    }
}

by_name!(Dialect);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back() {
        crate::domain::envelope::assert_names_read_back(Dialect::ALL, "tmf641", "mef-legato-v6");
    }

    #[test]
    fn each_path_names_one_of_the_dialects_events() {
        assert_eq!(Dialect::Tmf641V4.event_types().len(), 10);
        assert_eq!(Dialect::MefLegatoV6.event_types().len(), 4);
        assert_eq!(
            Dialect::MefLegatoV5.event_at_path("serviceOrderItemStateChangeEvent"),
            Some(EventType::ServiceOrderItemStateChangeEvent)
        );
        assert_eq!(
            Dialect::Tmf641V5.event_at_path("serviceOrderItemStateChangeEvent"),
            None,
            "TMF641 has no item event"
        );
        assert_eq!(
            Dialect::Tmf641V4.event_at_path("ServiceOrderStateChangeEvent"),
            None,
            "paths are lower camel case"
        );
    }
}
