//! The events page: the latest events, newest first, filtered by dialect and type, each with
//! its dialect, its body pretty-printed and a link to the body as received.

use std::fmt::Write;

use axum::extract::{OriginalUri, Query, State};
use axum::http::HeaderMap;
use bytes::Bytes;
use serde::Deserialize;

use super::{PageResult, Reader, chosen, failed, invalid, ok, pretty, reader};
use crate::domain::envelope::{Dialect, EventType};
use crate::http::AppState;
use crate::http::console::html::{Nav, esc, order_link, path_segment, select_options, time};
use crate::store::{EventFilter, EventRecord};

/// Events shown, with their bodies.
const EVENTS_LIMIT: usize = 100;

/// `GET /console/events` parameters.
#[derive(Debug, Default, Deserialize)]
pub(super) struct EventsQuery {
    #[serde(rename = "type")]
    event_type: Option<String>,
    dialect: Option<String>,
}

/// What the page's filter form has chosen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Chosen {
    /// Only events of this type.
    pub event_type: Option<EventType>,
    /// Only events sent in this dialect.
    pub dialect: Option<Dialect>,
}

/// `GET /console/events`.
pub(super) async fn show(
    State(app): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<EventsQuery>,
) -> PageResult {
    let reader = reader(&app, &headers, &uri).await?;
    let event_type = chosen(query.event_type.as_deref())
        .map(|text| {
            text.parse::<EventType>()
                .map_err(|problem| invalid("type", problem))
        })
        .transpose()
        .map_err(failed)?;
    let dialect = chosen(query.dialect.as_deref())
        .map(|text| {
            text.parse::<Dialect>()
                .map_err(|problem| invalid("dialect", problem))
        })
        .transpose()
        .map_err(failed)?;
    let records = app
        .store
        .events(EventFilter {
            event_type,
            dialect,
            limit: EVENTS_LIMIT,
            ..EventFilter::default()
        })
        .await
        .map_err(failed)?;
    let mut events = Vec::with_capacity(records.len());
    for record in records {
        let body = app
            .store
            .event(&record.event_id)
            .await
            .map_err(failed)?
            .map(|(_, body)| body);
        events.push((record, body));
    }
    let filter = Chosen {
        event_type,
        dialect,
    };
    Ok(ok(render_events(&reader, filter, &events)))
}

/// The events page: the filter form with `chosen` selected, and `events` with their bodies
/// (`None` when the body is gone, pruned since the list was read).
pub(super) fn render_events(
    reader: &Reader,
    chosen: Chosen,
    events: &[(EventRecord, Option<Bytes>)],
) -> String {
    let count = events.len();
    let mut content = format!(
        r#"<form method="get" action="/console/events" class="filters" role="search" aria-label="Filter events">
<div><label for="dialect">Dialect</label><select id="dialect" name="dialect">{dialects}</select></div>
<div><label for="type">Event type</label><select id="type" name="type">{options}</select></div>
<div><button type="submit">Filter</button> <a href="/console/events">Clear</a></div>
</form>
<section id="events-live" data-live aria-label="Latest events">
<p class="count">The latest {count} event{plural}, newest first. Expand one for its raw JSON.</p>
<div class="scroll"><table id="events-table">
<caption class="visually-hidden">Latest events</caption>
<thead><tr><th scope="col">#</th><th scope="col">Received</th><th scope="col">Dialect</th><th scope="col">Type</th><th scope="col">Order</th><th scope="col">Event</th><th scope="col">Client</th></tr></thead>
<tbody>"#,
        dialects = select_options(
            "any dialect",
            Dialect::ALL.map(Dialect::as_str),
            chosen.dialect.map(Dialect::as_str),
        ),
        options = select_options(
            "any type",
            EventType::ALL.map(EventType::as_str),
            chosen.event_type.map(EventType::as_str),
        ),
        plural = if count == 1 { "" } else { "s" },
    );
    for (record, body) in events {
        let _ = write!(
            content,
            r#"<tr data-event-id="{id}"><td>{sequence}</td><td>{received}</td><td>{dialect}</td><td>{kind}</td><td>{order}</td><td><details id="raw-{sequence}"><summary><code>{id}</code></summary><pre>{body}</pre><p><a href="/api/v1/events/{href}?raw=true">Raw body as received</a></p></details></td><td>{client}</td></tr>"#,
            id = esc(record.event_id.as_str()),
            sequence = record.sequence,
            received = time(record.received_at),
            dialect = record.dialect,
            kind = esc(record.event_type.as_str()),
            order = order_link(record.order_id.as_ref()),
            href = esc(&path_segment(record.event_id.as_str())),
            body = esc(&body.as_deref().map(pretty).unwrap_or_default()),
            client = esc(record.client.as_deref().unwrap_or("—")),
        );
    }
    if events.is_empty() {
        content.push_str(r#"<tr><td colspan="7">No events yet.</td></tr>"#);
    }
    content.push_str("</tbody></table></div></section>");
    reader.stream_page("Events", Nav::Events, &content)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::Utc;

    use super::*;

    fn record(sequence: i64, event_id: &str, order: Option<&str>) -> EventRecord {
        EventRecord {
            source: crate::domain::envelope::Source::Seller,
            sequence,
            event_id: event_id.parse().unwrap(),
            event_type: EventType::ServiceOrderCreation,
            event_date: "2024-01-01T00:00:00Z".parse().unwrap(),
            order_id: order.map(|order| order.parse().unwrap()),
            received_at: Utc::now(),
            sender: None,
            client: Some("<b>client</b>".to_owned()),
            dialect: Dialect::Onap,
            reference: None,
        }
    }

    #[test]
    fn each_event_shows_its_pretty_body_its_order_and_its_raw_link() {
        let events = [
            (
                record(2, "e 2", Some("o-1")),
                Some(Bytes::from_static(br#"{"event":{"id":"o-1"}}"#)),
            ),
            (record(1, "e-1", None), None),
        ];
        let page = render_events(&Reader::at(7), Chosen::default(), &events);
        assert!(page.contains("The latest 2 events, newest first."));
        assert!(page.contains(r#"<a href="/console/orders/o%2D1">o-1</a>"#));
        assert!(page.contains(r#"href="/api/v1/events/e%202?raw=true""#));
        assert!(page.contains("{\n  &quot;event&quot;: {\n    &quot;id&quot;: &quot;o-1&quot;"));
        assert!(
            page.contains(r#"<details id="raw-1"><summary><code>e-1</code></summary><pre></pre>"#)
        );
        assert!(page.contains(r#"data-stream-since="7""#));
    }

    #[test]
    fn hostile_values_are_escaped() {
        let events = [(
            record(1, "<script>", None),
            Some(Bytes::from_static(b"</pre><script>alert(1)</script>")),
        )];
        let page = render_events(&Reader::at(7), Chosen::default(), &events);
        assert!(!page.contains("<script>"));
        assert!(!page.contains("<b>client"));
        assert!(page.contains("&lt;b&gt;client&lt;/b&gt;"));
        assert!(page.contains(r#"<tr data-event-id="&lt;script&gt;">"#));
    }

    #[test]
    fn no_events_says_so_and_the_chosen_type_stays_selected() {
        let chosen = Chosen {
            event_type: Some(EventType::ServiceRemove),
            dialect: None,
        };
        let page = render_events(&Reader::at(7), chosen, &[]);
        assert!(page.contains("No events yet."));
        assert!(page.contains("The latest 0 events"));
        assert!(page.contains(&format!(
            r#"<option value="{0}" selected>{0}</option>"#,
            EventType::ServiceRemove.as_str()
        )));
    }

    #[test]
    fn each_event_shows_its_dialect_and_the_chosen_dialect_stays_selected() {
        let mut tmf = record(3, "tmf-1", Some("SO-9"));
        tmf.dialect = Dialect::Tmf641V4;
        tmf.event_type = EventType::ServiceOrderStateChangeEvent;
        let events = [(tmf, None), (record(2, "e-2", None), None)];
        let chosen = Chosen {
            event_type: None,
            dialect: Some(Dialect::Tmf641V4),
        };
        let page = render_events(&Reader::at(7), chosen, &events);
        assert!(page.contains(r#"<th scope="col">Dialect</th>"#));
        assert!(page.contains("<td>tmf641-v4</td><td>ServiceOrderStateChangeEvent</td>"));
        assert!(page.contains("<td>onap</td><td>ServiceOrderCreationNotification</td>"));
        assert!(page.contains(
            r#"<select id="dialect" name="dialect"><option value="">any dialect</option>"#
        ));
        assert!(page.contains(r#"<option value="tmf641-v4" selected>tmf641-v4</option>"#));
        assert!(page.contains(r#"<option value="mef-legato-v6">mef-legato-v6</option>"#));
        assert_eq!(page.matches(" selected>").count(), 1, "no type is chosen");
    }
}
