//! An order's page: its summary, why it is suspect (each finding with the event that shows
//! it), the timeline of the order's state and of each item's, with the time between states and
//! each unexpected transition flagged, and every event's JSON.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::extract::{OriginalUri, Path, State};
use axum::http::HeaderMap;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::{PageResult, Reader, failed, ok, pretty, reader};
use crate::domain::envelope::{EventId, OrderId};
use crate::domain::projection::{AnomalySubject, ServiceOrder};
use crate::domain::state::State as OrderState;
use crate::domain::suspect::{self, Finding, Reasons};
use crate::http::AppState;
use crate::http::console::html::{
    Layout, Live, Nav, duration, esc, page, reason_flags, state_badge, time,
};
use crate::http::error::ApiError;

/// The most events whose bodies an order page loads.
const ORDER_BODIES_LIMIT: usize = 500;

/// `GET /console/orders/{order_id}`.
pub(super) async fn show(
    State(app): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(order_id): Path<String>,
) -> PageResult {
    let reader = reader(&app, &headers, &uri).await?;
    let missing = || failed(ApiError::NotFound(format!("/console/orders/{order_id}")));
    let id: OrderId = order_id.parse().map_err(|_| missing())?;
    let order = app
        .store
        .order(&id)
        .await
        .map_err(failed)?
        .ok_or_else(missing)?;
    let mut bodies = BTreeMap::new();
    for entry in order.timeline.iter().rev().take(ORDER_BODIES_LIMIT) {
        if let Some((record, body)) = app.store.event(&entry.event_id).await.map_err(failed)? {
            bodies.insert(
                entry.event_id.clone(),
                Received {
                    received_at: record.received_at,
                    body,
                },
            );
        }
    }
    let findings = suspect::findings(&order, Utc::now(), &app.reconcile.stale_after);
    Ok(ok(render_order(&reader, &order, &findings, &bodies)))
}

/// An event of the order as the listener received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Received {
    /// When the listener received it.
    pub received_at: DateTime<Utc>,
    /// Its body as received.
    pub body: Bytes,
}

/// One row of a state timeline: when, which state, and how long after the previous state.
struct Step<'a> {
    at: DateTime<Utc>,
    state: OrderState,
    event_id: &'a EventId,
    anomaly: Option<(OrderState, OrderState)>,
}

fn timeline_table(
    caption: &str,
    steps: &[Step<'_>],
    event_anchor: &BTreeMap<&EventId, usize>,
) -> String {
    let mut table = format!(
        r#"<table class="timeline"><caption>{}</caption>
<thead><tr><th scope="col">eventDate</th><th scope="col">State</th><th scope="col">After previous</th><th scope="col">Event</th></tr></thead><tbody>"#,
        esc(caption)
    );
    let mut previous: Option<DateTime<Utc>> = None;
    for step in steps {
        let after = previous.map_or_else(|| "—".to_owned(), |before| duration(step.at - before));
        previous = Some(step.at);
        let (class, note) = match step.anomaly {
            Some((from, to)) => (
                r#" class="anomaly""#,
                format!(
                    r#" <strong class="flag anomaly">⚠ unexpected: {} → {}</strong>"#,
                    from.as_str(),
                    to.as_str()
                ),
            ),
            None => ("", String::new()),
        };
        let event = match event_anchor.get(step.event_id) {
            Some(index) => format!(
                r##"<a href="#event-{index}">{}</a>"##,
                esc(step.event_id.as_str())
            ),
            None => esc(step.event_id.as_str()),
        };
        let _ = write!(
            table,
            "<tr{class}><td>{}</td><td>{}{note}</td><td>{after}</td><td>{event}</td></tr>",
            time(step.at),
            state_badge(Some(step.state)),
        );
    }
    if steps.is_empty() {
        table.push_str(r#"<tr><td colspan="4">No state given yet.</td></tr>"#);
    }
    table.push_str("</tbody></table>");
    table
}

/// An order's page: its summary, why it is suspect, its timeline and each item's, and every
/// event's JSON.
pub(super) fn render_order(
    reader: &Reader,
    order: &ServiceOrder,
    findings: &[Finding],
    bodies: &BTreeMap<EventId, Received>,
) -> String {
    let mut content = String::from(r#"<p><a href="/console/orders">← All orders</a></p>"#);
    summary(&mut content, order, findings);
    suspicions(&mut content, order, findings);
    timelines(&mut content, order);
    event_list(&mut content, order, bodies);
    content.push_str("</section>");
    let title = format!("Service order {}", order.id.as_str());
    page(
        &Layout {
            title: &title,
            nav: Nav::Orders,
            csrf: &reader.csrf,
            live: Live::Order {
                since: reader.since,
                order_id: order.id.as_str(),
            },
        },
        &content,
    )
}

/// The start of the page's live part: what is known of the order.
fn summary(content: &mut String, order: &ServiceOrder, findings: &[Finding]) {
    let _ = write!(
        content,
        r#"<section id="order-live" data-live aria-label="Order details">
<dl class="summary">
<div><dt>Order id</dt><dd id="order-id">{id}</dd></div>
<div><dt>State</dt><dd>{state}</dd></div>
<div><dt>externalId</dt><dd>{external}</dd></div>
<div><dt>orderDate</dt><dd>{order_date}</dd></div>
<div><dt>completionDateTime</dt><dd>{completion}</dd></div>
<div><dt>Last event</dt><dd>{last}</dd></div>
<div><dt>Events</dt><dd>{events}</dd></div>
<div><dt>Anomalies</dt><dd>{anomalies}</dd></div>
<div><dt>Suspect</dt><dd id="order-suspect">{suspect}</dd></div>
</dl>
"#,
        id = esc(order.id.as_str()),
        state = state_badge(order.state),
        external = esc(order.external_id.as_deref().unwrap_or("—")),
        order_date = esc(order.order_date.as_deref().unwrap_or("—")),
        completion = esc(order.completion_date_time.as_deref().unwrap_or("—")),
        last = time(order.last_event_date.as_datetime()),
        events = order.timeline.len(),
        anomalies = if order.anomalies.is_empty() {
            "none".to_owned()
        } else {
            format!(
                r#"<span class="flag anomaly">⚠ {}</span>"#,
                order.anomalies.len()
            )
        },
        suspect = if findings.is_empty() {
            "no".to_owned()
        } else {
            reason_flags(findings.iter().map(Finding::reason).collect::<Reasons>())
        },
    );
}

/// Why the order is suspect: each finding, with the event that shows it linked.
fn suspicions(content: &mut String, order: &ServiceOrder, findings: &[Finding]) {
    if findings.is_empty() {
        return;
    }
    let anchor = |event_id: &EventId| {
        order
            .timeline
            .iter()
            .position(|entry| &entry.event_id == event_id)
            .map_or_else(
                || esc(event_id.as_str()),
                |index| {
                    format!(
                        r##"<a href="#event-{index}">{}</a>"##,
                        esc(event_id.as_str())
                    )
                },
            )
    };
    content.push_str(r#"<h2>Why it is suspect</h2><ul class="suspects">"#);
    for finding in findings {
        let what = match finding {
            Finding::Stale {
                state,
                last_event_date,
                stale_after_seconds,
            } => format!(
                "{} since {}, longer than {}: its next notification was probably lost",
                state.as_str(),
                time(last_event_date.as_datetime()),
                esc(&humantime::format_duration(std::time::Duration::from_secs(
                    *stale_after_seconds
                ))
                .to_string())
            ),
            Finding::MissedTransition {
                event_id,
                subject,
                from,
                to,
                ..
            } => format!(
                "{} went from {} to {} at {}: the notifications in between were lost",
                match subject {
                    AnomalySubject::Order => "the order".to_owned(),
                    AnomalySubject::Item { item_id } => format!("item {}", esc(item_id)),
                },
                from.as_str(),
                to.as_str(),
                anchor(event_id)
            ),
            Finding::ItemNotFinal {
                item_id,
                state,
                order_state,
            } => format!(
                "item {} is still {} although the order is {}",
                esc(item_id),
                state.as_str(),
                order_state.as_str()
            ),
            Finding::CreationMissing { first_event_id, .. } => format!(
                "its creation was never received; the first event is {}",
                anchor(first_event_id)
            ),
            Finding::OutOfStep {
                event_id,
                state,
                item_ids,
                ..
            } => format!(
                "{} gives the order {} but item(s) {} a state that is not final",
                anchor(event_id),
                state.as_str(),
                esc(&item_ids.join(", "))
            ),
        };
        let _ = write!(
            content,
            r#"<li data-reason="{reason}">{flag} {what}</li>"#,
            reason = finding.reason().as_str(),
            flag = reason_flags(Reasons::NONE.with(finding.reason())),
        );
    }
    content.push_str("</ul>");
}

/// The order's timeline and each item's, each step linked to its event.
fn timelines(content: &mut String, order: &ServiceOrder) {
    let anchors: BTreeMap<&EventId, usize> = order
        .timeline
        .iter()
        .enumerate()
        .map(|(index, entry)| (&entry.event_id, index))
        .collect();
    let anomaly_of = |event_id: &EventId, item: Option<&str>| {
        order.anomalies.iter().find_map(|anomaly| {
            let subject_matches = match (&anomaly.subject, item) {
                (AnomalySubject::Order, None) => true,
                (AnomalySubject::Item { item_id }, Some(item)) => item_id == item,
                _ => false,
            };
            (subject_matches && &anomaly.event_id == event_id).then_some((anomaly.from, anomaly.to))
        })
    };
    let order_steps: Vec<Step<'_>> = order
        .order_track()
        .map(|(entry, state)| Step {
            at: entry.event_date.as_datetime(),
            state,
            event_id: &entry.event_id,
            anomaly: anomaly_of(&entry.event_id, None),
        })
        .collect();
    content.push_str(r#"<h2>Timeline of the order</h2>"#);
    content.push_str(&timeline_table(
        "The order's state at each event, by eventDate",
        &order_steps,
        &anchors,
    ));
    content.push_str(r#"<h2>Items</h2>"#);
    for item in &order.items {
        let steps: Vec<Step<'_>> = order
            .item_track(&item.id)
            .map(|(entry, state)| Step {
                at: entry.event_date.as_datetime(),
                state,
                event_id: &entry.event_id,
                anomaly: anomaly_of(&entry.event_id, Some(&item.id)),
            })
            .collect();
        let _ = write!(
            content,
            r#"<h3>Item {} {}{}</h3>"#,
            esc(&item.id),
            state_badge(item.state),
            item.action
                .as_deref()
                .map(|action| format!(r#" <span class="muted">({})</span>"#, esc(action)))
                .unwrap_or_default()
        );
        content.push_str(&timeline_table(
            &format!("Item {}: its state at each event", item.id),
            &steps,
            &anchors,
        ));
    }
    if order.items.is_empty() {
        content.push_str("<p>No items known.</p>");
    }
}

/// Every event of the order, with its JSON when it was loaded.
fn event_list(content: &mut String, order: &ServiceOrder, bodies: &BTreeMap<EventId, Received>) {
    content.push_str(r#"<h2>Events</h2><ol class="events">"#);
    for (index, entry) in order.timeline.iter().enumerate() {
        let anomalous = order
            .anomalies
            .iter()
            .any(|anomaly| anomaly.event_id == entry.event_id);
        let (received, body) = match bodies.get(&entry.event_id) {
            Some(found) => (
                format!(" · received {}", time(found.received_at)),
                pretty(&found.body),
            ),
            None => (String::new(), "(body not loaded)".to_owned()),
        };
        let _ = write!(
            content,
            r#"<li id="event-{index}" data-event-id="{id}"{class}><details id="event-details-{index}"><summary>{date} · {kind} · <code>{id}</code>{received}{flag}</summary><pre>{body}</pre></details></li>"#,
            id = esc(entry.event_id.as_str()),
            class = if anomalous { r#" class="anomaly""# } else { "" },
            date = time(entry.event_date.as_datetime()),
            kind = esc(entry.event_type.as_str()),
            flag = match (anomalous, entry.source.is_synthesized()) {
                (true, _) => r#" <strong class="flag anomaly">⚠ anomaly</strong>"#,
                (false, true) => {
                    r#" <strong class="flag repaired" title="synthesized by the listener from the seller's Service Ordering API">↻ repaired from the seller's API</strong>"#
                }
                (false, false) => "",
            },
            body = esc(&body),
        );
    }
    content.push_str("</ol>");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::domain::envelope::{EventType, ItemFact, OrderFacts};
    use crate::domain::projection::{TimelineEntry, project};
    use crate::domain::state::State::{Completed, Held, InProgress};

    /// An event of order o-1.
    fn entry(event_id: &str, date: &str, state: OrderState, items: Vec<ItemFact>) -> TimelineEntry {
        TimelineEntry {
            source: crate::domain::envelope::Source::Seller,
            event_id: event_id.parse().unwrap(),
            event_date: date.parse().unwrap(),
            event_type: EventType::ServiceOrderStateChange,
            dialect: crate::domain::envelope::Dialect::Onap,
            facts: OrderFacts {
                order_id: "o-1".parse().unwrap(),
                state: Some(state),
                external_id: Some("<ext>".to_owned()),
                order_date: None,
                completion_date_time: None,
                items,
            },
        }
    }

    fn order_o1(timeline: Vec<TimelineEntry>) -> ServiceOrder {
        project("o-1".parse().unwrap(), timeline).unwrap()
    }

    /// An order that went from completed back to inProgress, with one item.
    fn order_with_an_anomaly() -> ServiceOrder {
        let item = |state| {
            vec![ItemFact {
                id: "<item>".to_owned(),
                state: Some(state),
                action: Some("add".to_owned()),
            }]
        };
        order_o1(vec![
            entry("e-1", "2024-01-01T00:00:00Z", Completed, item(Completed)),
            entry("e-2", "2024-01-01T00:01:30Z", InProgress, Vec::new()),
        ])
    }

    #[test]
    fn an_unexpected_transition_is_flagged_on_its_row_and_its_event() {
        let order = order_with_an_anomaly();
        let page = render_order(&Reader::at(3), &order, &[], &BTreeMap::new());
        assert!(page.contains("⚠ unexpected: completed → inProgress"));
        assert!(page.contains(r#"<li id="event-1" data-event-id="e-2" class="anomaly">"#));
        assert!(page.contains(r##"<a href="#event-0">e-1</a>"##));
        assert!(
            page.contains("<td>1 min 30 s</td>"),
            "the time between the states"
        );
        assert!(page.contains(r#"<span class="flag anomaly">⚠ 1</span>"#));
        assert!(page.contains(r#"data-order-id="o-1""#));
        assert!(page.contains(r#"data-stream-since="3""#));
    }

    #[test]
    fn each_reason_the_order_is_suspect_is_shown_with_the_event_that_shows_it() {
        let order = order_with_an_anomaly();
        let findings = [
            Finding::CreationMissing {
                first_event_id: "e-1".parse().unwrap(),
                first_event_date: order.timeline[0].event_date,
            },
            Finding::ItemNotFinal {
                item_id: "<item>".to_owned(),
                state: InProgress,
                order_state: Completed,
            },
            Finding::Stale {
                state: InProgress,
                last_event_date: order.last_event_date,
                stale_after_seconds: 86_400,
            },
        ];
        let page = render_order(&Reader::at(3), &order, &findings, &BTreeMap::new());
        assert!(page.contains("<h2>Why it is suspect</h2>"));
        let suspect = &page[page.find(r#"<dd id="order-suspect">"#).unwrap()..];
        let suspect = &suspect[..suspect.find("</dd>").unwrap()];
        for reason in ["creationMissing", "itemNotFinal", "stale"] {
            assert!(
                suspect.contains(&format!(r#"data-reason="{reason}""#)),
                "{suspect}"
            );
        }
        assert!(page.contains(
            r##"its creation was never received; the first event is <a href="#event-0">e-1</a>"##
        ));
        assert!(
            page.contains("item &lt;item&gt; is still inProgress although the order is completed")
        );
        assert!(page.contains("longer than 1day"));
        let quiet = render_order(&Reader::at(3), &order, &[], &BTreeMap::new());
        assert!(quiet.contains(r#"<dd id="order-suspect">no</dd>"#));
        assert!(!quiet.contains("Why it is suspect"));
    }

    #[test]
    fn a_repair_is_flagged_in_the_event_list() {
        let mut repaired = entry(
            "reconciled:o-1:ab",
            "2024-01-01T00:02:00Z",
            Completed,
            Vec::new(),
        );
        repaired.source = crate::domain::envelope::Source::Reconciled;
        let order = order_o1(vec![
            entry("e-1", "2024-01-01T00:00:00Z", InProgress, Vec::new()),
            repaired,
        ]);
        let page = render_order(&Reader::at(3), &order, &[], &BTreeMap::new());
        assert_eq!(
            page.matches("repaired from the seller's API").count(),
            1,
            "{page}"
        );
        let plain = render_order(
            &Reader::at(3),
            &order_with_an_anomaly(),
            &[],
            &BTreeMap::new(),
        );
        assert!(!plain.contains("repaired from the seller"));
    }

    #[test]
    fn item_ids_external_ids_and_bodies_are_escaped() {
        let order = order_with_an_anomaly();
        let bodies = BTreeMap::from([(
            "e-1".parse().unwrap(),
            Received {
                received_at: Utc::now(),
                body: Bytes::from_static(br#"{"note":"</pre><script>alert(1)</script>"}"#),
            },
        )]);
        let page = render_order(&Reader::at(3), &order, &[], &bodies);
        assert!(!page.contains("<script>"));
        assert!(!page.contains("<item>"));
        assert!(page.contains("Item &lt;item&gt;"));
        assert!(page.contains("<dd>&lt;ext&gt;</dd>"));
        assert!(page.contains("&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(
            page.contains("(body not loaded)"),
            "e-2's body was not loaded"
        );
    }

    #[test]
    fn an_order_without_items_or_states_says_so() {
        let mut entry = entry("e-9", "2024-01-01T00:00:00Z", Held, Vec::new());
        entry.facts.state = None;
        let order = order_o1(vec![entry]);
        let page = render_order(&Reader::at(3), &order, &[], &BTreeMap::new());
        assert!(page.contains("No items known."));
        assert!(page.contains("No state given yet."));
        assert!(page.contains(r#"<span class="badge state-none" data-state="">unknown</span>"#));
    }
}
