//! The suspects page: the orders that look incomplete because a notification was probably lost
//! (`domain::suspect`), each with its reasons, filtered by reason, in order id order a page at a
//! time, in a table that follows the stream. A legend says what each reason means and the
//! stale thresholds in force.

use std::fmt::Write;

use axum::extract::{OriginalUri, Query, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{PageResult, Reader, chosen, failed, invalid, ok, reader};
use crate::domain::envelope::OrderId;
use crate::domain::suspect::{Reason, Reasons, StaleAfter};
use crate::http::AppState;
use crate::http::console::html::{
    Nav, duration, esc, path_segment, reason_flags, select_options, state_badge, time,
};
use crate::http::error::ApiError;
use crate::store::{SuspectFilter, SuspectOrder};

/// Rows shown on one page.
const PAGE_SIZE: usize = 200;

/// `GET /console/suspects` parameters: the filter form's field and the page.
#[derive(Debug, Default, Deserialize)]
pub(super) struct SuspectsQuery {
    reason: Option<String>,
    after: Option<String>,
}

/// The filter and page, parsed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct SuspectsFilter {
    /// Only orders suspect for this reason.
    pub reason: Option<Reason>,
    /// Only orders whose id sorts after this one.
    pub after: Option<OrderId>,
}

impl TryFrom<SuspectsQuery> for SuspectsFilter {
    type Error = ApiError;

    fn try_from(query: SuspectsQuery) -> Result<Self, Self::Error> {
        Ok(SuspectsFilter {
            reason: chosen(query.reason.as_deref())
                .map(|text| text.parse::<Reason>().map_err(|why| invalid("reason", why)))
                .transpose()?,
            after: chosen(query.after.as_deref())
                .map(|text| {
                    text.parse::<OrderId>()
                        .map_err(|why| invalid("after", format!("is not an order id: {why}")))
                })
                .transpose()?,
        })
    }
}

/// `GET /console/suspects`.
pub(super) async fn show(
    State(app): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<SuspectsQuery>,
) -> PageResult {
    let reader = reader(&app, &headers, &uri).await?;
    let filter = SuspectsFilter::try_from(query).map_err(failed)?;
    let now = Utc::now();
    let suspects = app
        .store
        .suspects(SuspectFilter {
            reasons: filter
                .reason
                .map_or(Reasons::NONE, |reason| Reasons::NONE.with(reason)),
            stale_after: app.reconcile.stale_after,
            now,
            after: filter.after.clone(),
            limit: PAGE_SIZE,
        })
        .await
        .map_err(failed)?;
    Ok(ok(render_suspects(
        &reader,
        &SuspectsView {
            filter: &filter,
            suspects: &suspects,
            now,
            stale_after: &app.reconcile.stale_after,
        },
    )))
}

/// What the suspects page shows.
#[derive(Debug)]
pub(super) struct SuspectsView<'a> {
    /// The filter the orders match, shown in the form.
    pub filter: &'a SuspectsFilter,
    /// The page of suspect orders, in order id order.
    pub suspects: &'a [SuspectOrder],
    /// When the page is read: ages count from here.
    pub now: DateTime<Utc>,
    /// The stale thresholds, for the legend.
    pub stale_after: &'a StaleAfter,
}

/// The suspects page.
pub(super) fn render_suspects(reader: &Reader, view: &SuspectsView<'_>) -> String {
    let filter = view.filter;
    let mut content = format!(
        r#"<form method="get" action="/console/suspects" class="filters" role="search" aria-label="Filter suspect orders">
<div><label for="reason">Reason</label><select id="reason" name="reason">{options}</select></div>
<div><button type="submit">Filter</button> <a href="/console/suspects">Clear</a></div>
</form>
"#,
        options = select_options(
            "any reason",
            Reason::ALL.map(Reason::as_str),
            filter.reason.map(Reason::as_str),
        ),
    );
    content.push_str(&legend(view.stale_after));
    let count = view.suspects.len();
    let _ = write!(
        content,
        r#"<section id="suspects-live" data-live aria-labelledby="suspects-count">
<p id="suspects-count" class="count">{count} suspect order{plural}{from}</p>
<div class="scroll"><table id="suspects-table">
<caption class="visually-hidden">Suspect orders, by order id</caption>
<thead><tr><th scope="col">Order</th><th scope="col">externalId</th><th scope="col">State</th><th scope="col">Why</th><th scope="col">Last event</th><th scope="col">Events</th></tr></thead>
<tbody>"#,
        plural = if count == 1 { "" } else { "s" },
        from = filter
            .after
            .as_ref()
            .map(|after| format!(", after {}", esc(after.as_str())))
            .unwrap_or_default(),
    );
    for suspect in view.suspects {
        let order = &suspect.order;
        let last = order.last_event_date.as_datetime();
        let _ = write!(
            content,
            r#"<tr data-order-id="{id}"><th scope="row"><a href="/console/orders/{href}">{id}</a></th><td>{external}</td><td>{badge}</td><td>{reasons}</td><td>{last} <span class="muted">({ago} ago)</span></td><td>{events}</td></tr>"#,
            id = esc(order.id.as_str()),
            href = esc(&path_segment(order.id.as_str())),
            external = esc(order.external_id.as_deref().unwrap_or("—")),
            badge = state_badge(order.state),
            reasons = reason_flags(suspect.reasons),
            last = time(last),
            ago = duration(view.now - last),
            events = order.event_count,
        );
    }
    if view.suspects.is_empty() {
        content.push_str(r#"<tr><td colspan="6">No order is suspect.</td></tr>"#);
    }
    content.push_str("</tbody></table></div>");
    if let Some(last) = view.suspects.last().filter(|_| count == PAGE_SIZE) {
        let mut next = format!(
            "/console/suspects?after={}",
            path_segment(last.order.id.as_str())
        );
        if let Some(reason) = filter.reason {
            let _ = write!(next, "&reason={}", reason.as_str());
        }
        let _ = write!(
            content,
            r#"<p><a href="{}" rel="next">Next page →</a></p>"#,
            esc(&next)
        );
    }
    content.push_str("</section>");
    reader.stream_page("Suspect orders", Nav::Suspects, &content)
}

/// What each reason means, with the stale thresholds in force.
fn legend(stale_after: &StaleAfter) -> String {
    let thresholds = StaleAfter::OPEN_STATES
        .into_iter()
        .map(|state| {
            let after = stale_after.after(state).map_or_else(
                || "never".to_owned(),
                |after| humantime::format_duration(after).to_string(),
            );
            format!("{} {}", state.as_str(), esc(&after))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut legend =
        String::from(r#"<details class="legend"><summary>What the reasons mean</summary><dl>"#);
    for reason in Reason::ALL {
        let _ = write!(
            legend,
            "<div><dt>{}</dt><dd>{}{}</dd></div>",
            reason.as_str(),
            esc(reason.describe()),
            if reason == Reason::Stale {
                format!(" (thresholds: {thresholds})")
            } else {
                String::new()
            }
        );
    }
    legend.push_str("</dl></details>");
    legend
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::TimeDelta;

    use super::*;
    use crate::domain::state::State as OrderState;
    use crate::store::OrderSummary;

    fn suspect(id: &str, reasons: &[Reason], now: DateTime<Utc>) -> SuspectOrder {
        SuspectOrder {
            order: OrderSummary {
                id: id.parse().unwrap(),
                state: Some(OrderState::InProgress),
                external_id: Some("ext-1".to_owned()),
                item_count: 1,
                anomaly_count: 0,
                event_count: 4,
                last_event_date: (now - TimeDelta::hours(30)).into(),
                updated_at: now,
            },
            reasons: reasons.iter().copied().collect(),
        }
    }

    fn render(filter: &SuspectsFilter, suspects: &[SuspectOrder], now: DateTime<Utc>) -> String {
        render_suspects(
            &Reader::at(5),
            &SuspectsView {
                filter,
                suspects,
                now,
                stale_after: &StaleAfter::default(),
            },
        )
    }

    #[test]
    fn each_order_shows_its_reasons_and_links_to_its_page() {
        let now = Utc::now();
        let suspects = [
            suspect("SO-1", &[Reason::Stale, Reason::MissedTransition], now),
            suspect("SO-2", &[Reason::CreationMissing], now),
        ];
        let page = render(&SuspectsFilter::default(), &suspects, now);
        let row = &page[page.find(r#"<tr data-order-id="SO-1""#).unwrap()..];
        let row = &row[..row.find("</tr>").unwrap()];
        assert!(row.contains(r#"href="/console/orders/SO%2D1""#));
        assert!(row.contains(r#"data-reason="stale""#));
        assert!(row.contains(r#"data-reason="missedTransition""#));
        assert!(!row.contains("creationMissing"));
        assert!(row.contains("(1 d 6 h ago)"));
        assert!(page.contains(r#"<p id="suspects-count" class="count">2 suspect orders</p>"#));
        assert!(page.contains(r#"aria-current="page">Suspects"#));
        assert!(page.contains(r#"data-stream-since="5""#));
        assert!(page.contains("inProgress 1day"), "the legend's thresholds");
        assert!(!page.contains("Next page"));
    }

    #[test]
    fn a_full_page_links_to_the_next_with_its_filter() {
        let now = Utc::now();
        let suspects: Vec<SuspectOrder> = (0..PAGE_SIZE)
            .map(|index| suspect(&format!("SO-{index:03}"), &[Reason::Stale], now))
            .collect();
        let filter = SuspectsFilter {
            reason: Some(Reason::Stale),
            after: None,
        };
        let page = render(&filter, &suspects, now);
        assert!(
            page.contains(
                r#"<a href="/console/suspects?after=SO%2D199&amp;reason=stale" rel="next">"#
            ),
            "{page}"
        );
        assert!(page.contains(r#"<option value="stale" selected>stale</option>"#));
    }

    #[test]
    fn hostile_ids_are_escaped_and_no_suspect_says_so() {
        let now = Utc::now();
        let mut hostile = suspect("<script>x</script>", &[Reason::OutOfStep], now);
        hostile.order.external_id = Some(r#""><img src=x>"#.to_owned());
        let page = render(&SuspectsFilter::default(), &[hostile], now);
        assert!(!page.contains("<script>x"));
        assert!(!page.contains("<img"));
        assert!(page.contains("&lt;script&gt;x&lt;/script&gt;"));
        let empty = render(&SuspectsFilter::default(), &[], now);
        assert!(empty.contains("No order is suspect."));
    }

    #[test]
    fn the_form_parses_and_a_bad_reason_is_refused() {
        let filter = SuspectsFilter::try_from(SuspectsQuery {
            reason: Some("outOfStep".to_owned()),
            after: Some(String::new()),
        })
        .unwrap();
        assert_eq!(
            filter,
            SuspectsFilter {
                reason: Some(Reason::OutOfStep),
                after: None,
            }
        );
        let refused = SuspectsFilter::try_from(SuspectsQuery {
            reason: Some("bored".to_owned()),
            after: None,
        })
        .unwrap_err();
        assert!(
            matches!(refused, ApiError::InvalidQuery { name: "reason", .. }),
            "{refused:?}"
        );
    }
}
