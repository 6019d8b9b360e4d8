//! The sinks page: each sink's outbox (`http::outbox::sink_overview`, as the admin API shows
//! it) and its newest dead letters, each with a Retry form; and that form's handler, which
//! queues the dead letter again through `http::outbox::retry_dead_letter` and comes back here
//! with what it did.

use std::fmt::Write;

use axum::extract::{Form, OriginalUri, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use super::{PageResult, failed, ok};
use crate::http::AppState;
use crate::http::console::html::{Layout, Live, Nav, esc, order_link, page, time};
use crate::http::console::respond::{
    CsrfForm, forbidden, from_this_console, see_other, session_or_login, url_query_value,
};
use crate::http::outbox::{self, Retry, SinkOverview};
use crate::store::Delivery;

/// Dead letters shown per sink.
const DEAD_LETTERS_LIMIT: usize = 50;

/// `GET /console/sinks` parameters: what the last retry did.
#[derive(Debug, Default, Deserialize)]
pub(super) struct SinksQuery {
    /// The delivery that was queued again.
    pub retried: Option<String>,
    /// The delivery that was not a dead letter (any more).
    pub missing: Option<String>,
}

/// A sink as the page shows it: its outbox and its newest dead letters.
#[derive(Debug, Clone)]
pub(super) struct SinkPanel {
    /// The outbox.
    pub sink: SinkOverview,
    /// Its newest dead letters, at most [`DEAD_LETTERS_LIMIT`].
    pub dead_letters: Vec<Delivery>,
}

/// `GET /console/sinks`.
pub(super) async fn show(
    State(app): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<SinksQuery>,
) -> PageResult {
    let session = session_or_login(&app, &headers, &uri)?;
    let mut panels = Vec::new();
    for sink in outbox::sink_overview(&app).await.map_err(failed)? {
        let dead_letters = if sink.status.dead > 0 {
            app.store
                .dead_letters(Some(&sink.status.name), None, DEAD_LETTERS_LIMIT)
                .await
                .map_err(failed)?
        } else {
            Vec::new()
        };
        panels.push(SinkPanel { sink, dead_letters });
    }
    Ok(ok(render_sinks(&session.csrf, &query, &panels)))
}

/// `POST /console/dead-letters/{id}/retry`: queues one dead letter again, then shows the sinks
/// page with what it did.
pub(super) async fn retry_dead_letter(
    State(app): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, Response> {
    let session = session_or_login(&app, &headers, &uri)?;
    if !from_this_console(&headers, &session, &form) {
        return Err(forbidden(
            "retry refused: the form did not come from this console",
        ));
    }
    let outcome = match id.parse::<i64>() {
        Ok(row) => outbox::retry_dead_letter(&app.store, row)
            .await
            .map_err(failed)?,
        Err(_) => Retry::NotADeadLetter,
    };
    let id = url_query_value(&id);
    Ok(match outcome {
        Retry::Queued => {
            tracing::info!(delivery = %id, "console: dead letter queued again");
            see_other(&format!("/console/sinks?retried={id}"))
        }
        Retry::NotADeadLetter => see_other(&format!("/console/sinks?missing={id}")),
    })
}

/// The sinks page: what the last retry did, every sink's outbox, and the dead letters of each
/// sink that has some, each with a Retry form that carries `csrf`.
pub(super) fn render_sinks(csrf: &str, last_retry: &SinksQuery, panels: &[SinkPanel]) -> String {
    let mut content = String::new();
    if let Some(id) = &last_retry.retried {
        let _ = write!(
            content,
            r#"<p class="notice" role="status" id="retry-result">Delivery {} is queued again.</p>"#,
            esc(id)
        );
    }
    if let Some(id) = &last_retry.missing {
        let _ = write!(
            content,
            r#"<p class="error" role="alert" id="retry-result">Delivery {} is not a dead letter (any more).</p>"#,
            esc(id)
        );
    }
    content.push_str(
        r#"<section id="sinks-live" data-live aria-labelledby="outboxes">
<h2 id="outboxes">Outboxes</h2>
<div class="scroll"><table id="sinks-table">
<caption class="visually-hidden">Each sink's outbox</caption>
<thead><tr><th scope="col">Sink</th><th scope="col">Outbox depth (pending)</th><th scope="col">Failing</th><th scope="col">Delivered</th><th scope="col">Dead letters</th><th scope="col">Oldest pending</th><th scope="col">Status</th></tr></thead><tbody>"#,
    );
    for SinkPanel { sink, .. } in panels {
        let status = &sink.status;
        let state = match &status.disabled {
            Some((at, reason)) => format!(
                r#"<span class="flag anomaly">disabled {} ({})</span>"#,
                time(*at),
                esc(reason)
            ),
            None if !sink.configured => "not configured".to_owned(),
            None => "enabled".to_owned(),
        };
        let _ = write!(
            content,
            r#"<tr data-sink="{name}"><th scope="row">{name}</th><td>{pending}</td><td>{failing}</td><td>{delivered}</td><td>{dead}</td><td>{oldest}</td><td>{state}</td></tr>"#,
            name = esc(status.name.as_str()),
            pending = status.pending,
            failing = status.failing,
            delivered = status.delivered,
            dead = status.dead,
            oldest = status
                .oldest_pending_at
                .map(time)
                .unwrap_or_else(|| "—".into()),
        );
    }
    if panels.is_empty() {
        content.push_str(r#"<tr><td colspan="7">No sink is configured ([sinks.NAME] in the configuration).</td></tr>"#);
    }
    content.push_str("</tbody></table></div>");
    for panel in panels.iter().filter(|panel| panel.sink.status.dead > 0) {
        dead_letters(&mut content, csrf, panel);
    }
    content.push_str("</section>");
    page(
        &Layout {
            title: "Sinks",
            nav: Nav::Sinks,
            csrf,
            live: Live::Poll,
        },
        &content,
    )
}

/// One sink's dead letters, each with a Retry form, and how to retry them all when there are
/// more than shown.
fn dead_letters(content: &mut String, csrf: &str, panel: &SinkPanel) {
    let status = &panel.sink.status;
    let letters = &panel.dead_letters;
    let _ = write!(
        content,
        r#"<h2>Dead letters of {name}</h2>
<div class="scroll"><table class="dead-letters" data-sink="{name}">
<caption class="visually-hidden">Dead letters of {name}, newest first</caption>
<thead><tr><th scope="col">Delivery</th><th scope="col">Event</th><th scope="col">Type</th><th scope="col">Order</th><th scope="col">Attempts</th><th scope="col">Last error</th><th scope="col">Queued</th><th scope="col">Action</th></tr></thead><tbody>"#,
        name = esc(status.name.as_str()),
    );
    for letter in letters {
        let _ = write!(
            content,
            r#"<tr data-delivery-id="{id}" data-event-id="{event}"><td>{id}</td><td><code>{event}</code></td><td>{kind}</td><td>{order}</td><td>{attempts}</td><td>{error}</td><td>{queued}</td><td><form method="post" action="/console/dead-letters/{id}/retry"><input type="hidden" name="csrf" value="{csrf}"><button type="submit" aria-label="Retry delivery {id} of event {event}">Retry</button></form></td></tr>"#,
            id = letter.id,
            event = esc(letter.event_id.as_str()),
            kind = esc(letter.event_type.as_str()),
            order = order_link(letter.order_id.as_ref()),
            attempts = letter.attempts,
            error = esc(letter.last_error.as_deref().unwrap_or("—")),
            queued = time(letter.created_at),
            csrf = esc(csrf),
        );
    }
    content.push_str("</tbody></table></div>");
    if status.dead > letters.len() as u64 {
        let _ = write!(
            content,
            r#"<p class="hint">The newest {} of {}; <code>order-listener dead-letters retry --sink {}</code> retries them all.</p>"#,
            letters.len(),
            status.dead,
            esc(status.name.as_str())
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use bytes::Bytes;
    use chrono::Utc;

    use super::*;
    use crate::domain::envelope::EventType;
    use crate::store::SinkStatus;

    fn panel(name: &str, dead: u64, configured: bool, letters: Vec<Delivery>) -> SinkPanel {
        SinkPanel {
            sink: SinkOverview {
                status: SinkStatus {
                    name: name.parse().unwrap(),
                    pending: 4,
                    delivered: 10,
                    dead,
                    failing: 1,
                    oldest_pending_at: None,
                    disabled: None,
                },
                configured,
            },
            dead_letters: letters,
        }
    }

    fn letter(id: i64, error: &str) -> Delivery {
        Delivery {
            source: crate::domain::envelope::Source::Seller,
            id,
            sink: "hooks".parse().unwrap(),
            sequence: id,
            event_id: format!("event-{id}").parse().unwrap(),
            event_type: EventType::ServiceOrderStateChange,
            event_date: "2024-01-01T00:00:00Z".parse().unwrap(),
            order_id: Some("o-1".parse().unwrap()),
            state: crate::store::DeliveryState::Dead,
            attempts: 7,
            created_at: Utc::now(),
            next_attempt_at: Utc::now(),
            last_error: Some(error.to_owned()),
            body: Bytes::new(),
            trace_context: None,
            dialect: crate::domain::envelope::Dialect::Onap,
        }
    }

    #[test]
    fn each_dead_letter_has_a_retry_form_that_carries_the_csrf_token() {
        let panels = [panel("hooks", 1, true, vec![letter(42, "HTTP 500")])];
        let page = render_sinks("the-csrf-token", &SinksQuery::default(), &panels);
        assert!(page.contains(
            r#"<form method="post" action="/console/dead-letters/42/retry"><input type="hidden" name="csrf" value="the-csrf-token"><button type="submit" aria-label="Retry delivery 42 of event event-42">Retry</button></form>"#
        ));
        assert!(page.contains("<h2>Dead letters of hooks</h2>"));
        assert!(page.contains(r#"<a href="/console/orders/o%2D1">o-1</a>"#));
        assert!(
            !page.contains("retries them all"),
            "every dead letter is shown"
        );
        assert!(page.contains(r#"data-poll="5000""#));
    }

    #[test]
    fn hostile_errors_names_and_retry_notices_are_escaped() {
        let mut hostile = panel(
            "hooks",
            3,
            false,
            vec![letter(1, "<script>alert(1)</script>")],
        );
        hostile.sink.status.disabled = Some((Utc::now(), "<b>410</b>".to_owned()));
        let last_retry = SinksQuery {
            retried: Some("<i>1</i>".to_owned()),
            missing: Some("\"><script>".to_owned()),
        };
        let page = render_sinks(r#"a"b"#, &last_retry, &[hostile]);
        assert!(!page.contains("<script>"));
        assert!(!page.contains("<b>410"));
        assert!(!page.contains("<i>1"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("(&lt;b&gt;410&lt;/b&gt;)"));
        assert!(page.contains(r#"value="a&quot;b""#));
        assert!(page.contains("Delivery &lt;i&gt;1&lt;/i&gt; is queued again."));
        assert!(page.contains("Delivery &quot;&gt;&lt;script&gt; is not a dead letter"));
        assert!(page.contains("The newest 1 of 3;"));
    }

    #[test]
    fn no_sinks_says_how_to_configure_one() {
        let page = render_sinks("csrf", &SinksQuery::default(), &[]);
        assert!(page.contains("No sink is configured ([sinks.NAME] in the configuration)."));
        assert!(!page.contains("retry-result"), "no retry, no notice");
        assert!(!page.contains("Dead letters of"));
    }

    #[test]
    fn a_sink_is_shown_enabled_or_not_configured() {
        let panels = [
            panel("kept", 0, true, Vec::new()),
            panel("dropped", 0, false, Vec::new()),
        ];
        let page = render_sinks("csrf", &SinksQuery::default(), &panels);
        assert!(page.contains(
            r#"<tr data-sink="kept"><th scope="row">kept</th><td>4</td><td>1</td><td>10</td><td>0</td><td>—</td><td>enabled</td></tr>"#
        ));
        assert!(page.contains("<td>not configured</td>"));
        assert!(
            !page.contains("Dead letters of"),
            "no dead letters, no table"
        );
    }
}
