//! Each dialect's Hub API, as a buyer and the simulator both need it: where the hub lives, the
//! subscription it takes and gives back, the query that selects every event, and where the
//! seller then POSTs an event for a callback. The client (`hub::client`) and the simulator's
//! hub (`simulate::hub_server`) both read these, so that they cannot drift apart. No IO.
//!
//! - ONAP: `POST /nbi/api/v4/hub` `{callback, query}` → 201 `{id, callback, query}`; `GET /hub`,
//!   `GET` and `DELETE /hub/{id}`. The seller POSTs every event to the callback as it is.
//! - TMF641 v4: `POST /tmf-api/serviceOrdering/v4/hub` EventSubscriptionInput `{callback,
//!   query}` → 201 EventSubscription `{id, callback, query}`; `DELETE /hub/{id}` → 204.
//! - TMF641 v5: the same base with v5, `{"@type": "Hub", callback, query}` (Hub_FVO) → 201 Hub;
//!   `GET /hub/{id}` → 200; `DELETE` → 204.
//! - MEF LSO Legato v5 and v6: `POST /mefApi/legato/serviceOrderingManagement/v5|v6/hub`
//!   `{callback, query}` → 201 EventSubscription; `GET` and `DELETE /hub/{id}`. The seller
//!   *appends* the notification API's base path and the resource path to the callback, so the
//!   callback is the listener's root URL.
//!
//! Neither TMF641 nor MEF defines `GET /hub` (a list); ONAP does.
//!
//! Where a TMF641 seller sends an event is not written in the swagger: one listener path per
//! event and a callback per subscription only fit if the seller appends `/listener/{eventName}`
//! to the callback, as MEF (built on TMF641) spells out. A callback that already ends in
//! `/listener` gets only the event name.

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use serde_json::{Value, json};

use crate::domain::envelope::{Dialect, EventType, Family};

/// The path of the seller's Management API, under which it serves its hub (and its orders).
pub(crate) fn base_path(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Onap => "/nbi/api/v4",
        Dialect::Tmf641V4 => "/tmf-api/serviceOrdering/v4",
        Dialect::Tmf641V5 => "/tmf-api/serviceOrdering/v5",
        Dialect::MefLegatoV5 => "/mefApi/legato/serviceOrderingManagement/v5",
        Dialect::MefLegatoV6 => "/mefApi/legato/serviceOrderingManagement/v6",
    }
}

/// One line per dialect, for `--help`.
fn description(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Onap => {
            "ONAP External API (NBI): hub at /nbi/api/v4/hub, {callback, query}; the seller POSTs \
             every event to the callback itself"
        }
        Dialect::Tmf641V4 => {
            "TMF641 v4: hub at /tmf-api/serviceOrdering/v4/hub, EventSubscriptionInput {callback, \
             query}; the seller POSTs to {callback}/listener/{eventName}"
        }
        Dialect::Tmf641V5 => {
            "TMF641 v5: hub at /tmf-api/serviceOrdering/v5/hub, {\"@type\": \"Hub\", callback, \
             query}; the seller POSTs to {callback}/listener/{eventName}"
        }
        Dialect::MefLegatoV5 => {
            "MEF LSO Legato v5: hub at /mefApi/legato/serviceOrderingManagement/v5/hub, \
             {callback, query}; the seller appends \
             /mefApi/legato/serviceOrderingNotification/v5/listener/{eventName} to the callback"
        }
        Dialect::MefLegatoV6 => {
            "MEF LSO Legato v6 (Mplify 99.1): as v5 with v6 in the paths; its events add the \
             order's or item's state to the reference"
        }
    }
}

/// The `--dialect` flag's parser: the five names, each explained in `--help`.
pub(crate) fn dialect_parser() -> impl TypedValueParser<Value = Dialect> {
    PossibleValuesParser::new(
        Dialect::ALL.map(|dialect| PossibleValue::new(dialect.as_str()).help(description(dialect))),
    )
    .try_map(|name: String| name.parse::<Dialect>())
}

/// `eventType` as the dialect writes it: the TM Forum's name in TMF641 and ONAP, lower camel
/// case in MEF.
pub(crate) fn wire_event_type(dialect: Dialect, kind: EventType) -> String {
    match dialect.family() {
        Family::Mef => kind.path_name().unwrap_or_else(|| kind.as_str().to_owned()),
        Family::Onap | Family::Tmf => kind.as_str().to_owned(),
    }
}

/// The query that selects every service-order event the dialect sends.
pub(crate) fn default_query(dialect: Dialect) -> String {
    let names: Vec<String> = dialect
        .event_types()
        .iter()
        .map(|kind| wire_event_type(dialect, *kind))
        .collect();
    format!("eventType={}", names.join(","))
}

/// The body of `POST /hub`.
pub(crate) fn subscription_request(dialect: Dialect, callback: &str, query: &str) -> Value {
    match dialect {
        Dialect::Tmf641V5 => json!({"@type": "Hub", "callback": callback, "query": query}),
        _ => json!({"callback": callback, "query": query}),
    }
}

/// A subscription request, read as the dialect's hub reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubscriptionRequest {
    /// Where the seller sends the events, before it adds any path.
    pub callback: String,
    /// Which events; empty when the request has none.
    pub query: String,
}

/// Reads the body of `POST /hub` the way the dialect's hub does, or says what is wrong with it.
/// ONAP needs both fields; TMF641 and MEF only the callback; TMF641 v5 also `@type: Hub`.
pub(crate) fn read_subscription(
    dialect: Dialect,
    body: &[u8],
) -> Result<SubscriptionRequest, String> {
    let shape = match dialect {
        Dialect::Onap => "{\"callback\": URL, \"query\": \"eventType=…\"}",
        Dialect::Tmf641V5 => "{\"@type\": \"Hub\", \"callback\": URL, \"query\": \"eventType=…\"}",
        _ => "{\"callback\": URL, \"query\": \"eventType=…\"} (query optional)",
    };
    let wrong = |why: &str| format!("{why}; the body must be {shape}");
    let value: Value = serde_json::from_slice(body).map_err(|_| wrong("the body is not JSON"))?;
    let callback = value
        .get("callback")
        .and_then(Value::as_str)
        .ok_or_else(|| wrong("callback is missing"))?;
    let query = match value.get("query") {
        Some(Value::String(query)) => query.clone(),
        None | Some(Value::Null) if dialect != Dialect::Onap => String::new(),
        _ => return Err(wrong("query must be a string")),
    };
    if dialect == Dialect::Tmf641V5 && value.get("@type").and_then(Value::as_str) != Some("Hub") {
        return Err(wrong("@type must be \"Hub\""));
    }
    if reqwest::Url::parse(callback).is_err() {
        return Err(wrong("callback must be an absolute URL"));
    }
    Ok(SubscriptionRequest {
        callback: callback.to_owned(),
        query,
    })
}

/// A stored subscription as the dialect's hub answers it; `href` is where it can be read.
pub(crate) fn subscription_answer(
    dialect: Dialect,
    id: &str,
    callback: &str,
    query: &str,
    href: &str,
) -> Value {
    match dialect {
        Dialect::Tmf641V5 => json!({
            "@type": "Hub", "id": id, "href": href, "callback": callback, "query": query
        }),
        _ => json!({"id": id, "callback": callback, "query": query}),
    }
}

/// Where the seller POSTs an event of type `kind` for a subscription with this callback.
pub(crate) fn notification_url(dialect: Dialect, callback: &str, kind: EventType) -> String {
    let name = kind.path_name().unwrap_or_default();
    let root = callback.trim_end_matches('/');
    match dialect.family() {
        Family::Onap => callback.to_owned(),
        Family::Tmf if root.ends_with("/listener") => format!("{root}/{name}"),
        Family::Tmf => format!("{root}/listener/{name}"),
        Family::Mef => format!("{root}{}/listener/{name}", dialect.default_base_paths()[0]),
    }
}

/// The event a callback note shows as its example.
const EXAMPLE: EventType = EventType::ServiceOrderStateChangeEvent;

/// What a buyer must know about the callback it registers, beyond its own URL; `None` for
/// ONAP, which POSTs to the callback as it is.
pub(crate) fn callback_note(dialect: Dialect, callback: &str) -> Option<String> {
    let example = notification_url(dialect, callback, EXAMPLE);
    match dialect.family() {
        Family::Onap => None,
        Family::Tmf => Some(format!(
            "a {dialect} seller POSTs each event to the callback followed by \
             /listener/{{eventName}}, e.g. {example}; register the listener's base URL \
             (…{base})",
            base = dialect.default_base_paths()[0]
        )),
        Family::Mef => Some(format!(
            "a MEF seller appends the base path and the resource path to the callback \
             ({base}/listener/{{eventName}}), e.g. {example}; so the callback to register is the \
             listener's root URL (scheme, host and port)",
            base = dialect.default_base_paths()[0]
        )),
    }
}

/// Ways a callback will not reach the listener, in plain words.
pub(crate) fn callback_warnings(dialect: Dialect, callback: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    let path = reqwest::Url::parse(callback)
        .map(|url| url.path().to_owned())
        .unwrap_or_default();
    match dialect.family() {
        Family::Onap => {}
        Family::Tmf => {
            if dialect
                .event_types()
                .iter()
                .filter_map(|kind| kind.path_name())
                .any(|name| path.trim_end_matches('/').ends_with(&format!("/{name}")))
            {
                warnings.push(format!(
                    "the callback already names an event; the seller adds /listener/{{eventName}} \
                     itself, so events would go to {}; register the base URL instead",
                    notification_url(dialect, callback, EXAMPLE)
                ));
            }
        }
        Family::Mef => {
            if path.contains("/mefApi/") || path.contains("/listener") {
                warnings.push(format!(
                    "the callback already has a listener path; the MEF seller appends {}/listener/\
                     {{eventName}} to it, so events would go to {}; register the listener's root \
                     URL instead",
                    dialect.default_base_paths()[0],
                    notification_url(dialect, callback, EXAMPLE)
                ));
            }
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_seller_adds_its_own_path_to_the_callback() {
        let kind = EventType::ServiceOrderItemStateChangeEvent;
        assert_eq!(
            notification_url(Dialect::MefLegatoV6, "https://bus.example/root/", kind),
            "https://bus.example/root/mefApi/legato/serviceOrderingNotification/v6/listener/\
             serviceOrderItemStateChangeEvent"
        );
        let kind = EventType::ServiceOrderMilestoneEvent;
        for callback in [
            "https://b.example/tmf-api/serviceOrdering/v4",
            "https://b.example/tmf-api/serviceOrdering/v4/listener/",
        ] {
            assert_eq!(
                notification_url(Dialect::Tmf641V4, callback, kind),
                "https://b.example/tmf-api/serviceOrdering/v4/listener/serviceOrderMilestoneEvent"
            );
        }
        assert_eq!(
            notification_url(
                Dialect::Onap,
                "https://b.example/x/listener",
                EventType::ServiceOrderCreation
            ),
            "https://b.example/x/listener"
        );
    }

    #[test]
    fn subscriptions_are_shaped_per_dialect_and_read_back() {
        let body = subscription_request(Dialect::Tmf641V5, "https://b.example/v5", "");
        assert_eq!(body["@type"], "Hub");
        let text = body.to_string();
        assert!(read_subscription(Dialect::Tmf641V5, text.as_bytes()).is_ok());
        let without_type = json!({"callback": "https://b.example/v5"}).to_string();
        assert!(
            read_subscription(Dialect::Tmf641V5, without_type.as_bytes())
                .unwrap_err()
                .contains("@type")
        );
        // MEF and TMF v4 take a callback alone; ONAP wants its query.
        let read = read_subscription(Dialect::MefLegatoV5, without_type.as_bytes()).unwrap();
        assert_eq!(read.query, "");
        assert!(read_subscription(Dialect::Onap, without_type.as_bytes()).is_err());
        let relative = json!({"callback": "/listener", "query": ""}).to_string();
        assert!(read_subscription(Dialect::Tmf641V4, relative.as_bytes()).is_err());
    }

    #[test]
    fn the_default_query_names_every_event_in_the_dialects_spelling() {
        assert_eq!(
            default_query(Dialect::MefLegatoV6),
            "eventType=serviceOrderCreateEvent,serviceOrderStateChangeEvent,\
             serviceOrderInformationRequiredEvent,serviceOrderItemStateChangeEvent"
        );
        assert!(default_query(Dialect::Tmf641V4).contains(",ServiceOrderJeopardyEvent,"));
        assert_eq!(
            default_query(Dialect::Onap),
            "eventType=ServiceOrderCreationNotification,ServiceOrderStateChangeNotification,\
             ServiceOrderItemStateChangeNotification"
        );
    }

    #[test]
    fn callbacks_that_would_double_a_path_are_named() {
        assert!(callback_warnings(Dialect::MefLegatoV6, "https://b.example:8443").is_empty());
        let doubled = callback_warnings(
            Dialect::MefLegatoV6,
            "https://b.example/mefApi/legato/serviceOrderingNotification/v6/listener",
        );
        assert!(doubled[0].contains("root URL"), "{doubled:?}");
        assert!(
            callback_warnings(
                Dialect::Tmf641V4,
                "https://b.example/tmf-api/serviceOrdering/v4"
            )
            .is_empty()
        );
        assert_eq!(
            callback_warnings(
                Dialect::Tmf641V4,
                "https://b.example/tmf-api/serviceOrdering/v4/listener/serviceOrderCreateEvent"
            )
            .len(),
            1
        );
        assert!(callback_note(Dialect::Onap, "https://b.example/l").is_none());
        assert!(
            callback_note(Dialect::MefLegatoV5, "https://b.example")
                .unwrap()
                .contains("root URL")
        );
    }
}
