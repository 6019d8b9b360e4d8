//! The events page: the latest events, newest first, filtered by type, each with its body
//! pretty-printed and a link to the body as received.

use std::fmt::Write;

use axum::extract::{OriginalUri, Query, State};
use axum::http::HeaderMap;
use bytes::Bytes;
use serde::Deserialize;

use super::{PageResult, Reader, chosen, failed, invalid, ok, pretty, reader};
use crate::domain::envelope::EventType;
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
    let records = app
        .store
        .events(EventFilter {
            event_type,
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
    Ok(ok(render_events(&reader, event_type, &events)))
}

/// The events page: the filter form with `selected` chosen, and `events` with their bodies
/// (`None` when the body is gone, pruned since the list was read).
pub(super) fn render_events(
    reader: &Reader,
    selected: Option<EventType>,
    events: &[(EventRecord, Option<Bytes>)],
) -> String {
    let count = events.len();
    let mut content = format!(
        r#"<form method="get" action="/console/events" class="filters" role="search" aria-label="Filter events">
<div><label for="type">Event type</label><select id="type" name="type">{options}</select></div>
<div><button type="submit">Filter</button> <a href="/console/events">Clear</a></div>
</form>
<section id="events-live" data-live aria-label="Latest events">
<p class="count">The latest {count} event{plural}, newest first. Expand one for its raw JSON.</p>
<div class="scroll"><table id="events-table">
<caption class="visually-hidden">Latest events</caption>
<thead><tr><th scope="col">#</th><th scope="col">Received</th><th scope="col">Type</th><th scope="col">Order</th><th scope="col">Event</th><th scope="col">Client</th></tr></thead>
<tbody>"#,
        options = select_options(
            "any type",
            EventType::ALL.map(EventType::as_str),
            selected.map(EventType::as_str),
        ),
        plural = if count == 1 { "" } else { "s" },
    );
    for (record, body) in events {
        let _ = write!(
            content,
            r#"<tr data-event-id="{id}"><td>{sequence}</td><td>{received}</td><td>{kind}</td><td>{order}</td><td><details id="raw-{sequence}"><summary><code>{id}</code></summary><pre>{body}</pre><p><a href="/api/v1/events/{href}?raw=true">Raw body as received</a></p></details></td><td>{client}</td></tr>"#,
            id = esc(record.event_id.as_str()),
            sequence = record.sequence,
            received = time(record.received_at),
            kind = esc(record.event_type.as_str()),
            order = order_link(record.order_id.as_ref()),
            href = esc(&path_segment(record.event_id.as_str())),
            body = esc(&body.as_deref().map(pretty).unwrap_or_default()),
            client = esc(record.client.as_deref().unwrap_or("—")),
        );
    }
    if events.is_empty() {
        content.push_str(r#"<tr><td colspan="6">No events yet.</td></tr>"#);
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
            sequence,
            event_id: event_id.parse().unwrap(),
            event_type: EventType::ServiceOrderCreation,
            event_date: "2024-01-01T00:00:00Z".parse().unwrap(),
            order_id: order.map(|order| order.parse().unwrap()),
            received_at: Utc::now(),
            sender: None,
            client: Some("<b>client</b>".to_owned()),
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
        let page = render_events(&Reader::at(7), None, &events);
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
        let page = render_events(&Reader::at(7), None, &events);
        assert!(!page.contains("<script>"));
        assert!(!page.contains("<b>client"));
        assert!(page.contains("&lt;b&gt;client&lt;/b&gt;"));
        assert!(page.contains(r#"<tr data-event-id="&lt;script&gt;">"#));
    }

    #[test]
    fn no_events_says_so_and_the_chosen_type_stays_selected() {
        let page = render_events(&Reader::at(7), Some(EventType::ServiceRemove), &[]);
        assert!(page.contains("No events yet."));
        assert!(page.contains("The latest 0 events"));
        assert!(page.contains(&format!(
            r#"<option value="{0}" selected>{0}</option>"#,
            EventType::ServiceRemove.as_str()
        )));
    }
}
