//! Sending the plan: each notification to every subscriber whose query selects it, at the
//! path the dialect's seller uses for that subscriber's callback, with the plan's duplicates,
//! reordering, malformed bodies and bursts; and what came back.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Semaphore;

use super::faults::{Delivery, Plan};
use super::model::SimEvent;
use super::payload::malformed;
use super::seller_api::SellerBook;
use crate::domain::envelope::Dialect;
use crate::hub::Hub;
use crate::hub::dialect::notification_url;
use crate::hub::query::HubQuery;
use crate::outbound::{Credentials, authorize};

/// What was delivered to whom, and what came back.
#[derive(Debug, Default, Serialize)]
pub(super) struct Delivered {
    /// Answers by status (`error` for transport failures).
    pub statuses: BTreeMap<String, u64>,
    /// Malformed bodies that got the expected 4xx.
    pub malformed_refused: u64,
    /// Malformed bodies that got something else.
    pub malformed_accepted: u64,
    /// Notifications acknowledged with a success status other than the dialect's (201 for
    /// ONAP and TMF641 v4, 204 for TMF641 v5 and MEF).
    pub wrong_success_status: u64,
}

/// The success status the dialect's listener answers.
fn success_status(dialect: Dialect) -> u16 {
    if dialect.echoes_body() { 201 } else { 204 }
}

/// Who gets the notifications and how.
pub(super) struct Sending<'a> {
    pub http: &'a reqwest::Client,
    pub dialect: Dialect,
    pub subscribers: &'a [Hub],
    pub credentials: Option<&'a Credentials>,
    pub concurrency: usize,
    /// The seller's orders, advanced to each notification as it goes out.
    pub book: &'a SellerBook,
}

/// Sends the plan; returns what came back and, per notification, whether any subscriber
/// acknowledged it (any 2xx: a seller takes it as delivered).
pub(super) async fn deliver(
    sending: &Sending<'_>,
    events: &[SimEvent],
    plan: &Plan,
) -> anyhow::Result<(Delivered, Vec<bool>)> {
    let dialect = sending.dialect;
    let queries: Vec<HubQuery> = sending
        .subscribers
        .iter()
        .map(|hub| HubQuery::parse(dialect, &hub.query))
        .collect();
    let concurrency = sending.concurrency;
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut delivered = Delivered::default();
    let mut accepted = vec![false; events.len()];
    let progress =
        indicatif::ProgressBar::new(plan.groups.iter().map(Vec::len).sum::<usize>() as u64);
    for group in &plan.groups {
        // A burst ignores the concurrency bound: everything in it goes at once.
        let burst = group.len() > 1;
        let mut sending_now = tokio::task::JoinSet::new();
        for delivery in group {
            let (event, body, expect_refusal) = match *delivery {
                Delivery::Event { index, .. } => (index, events[index].body.to_string(), false),
                Delivery::Malformed { index, variant } => (
                    index,
                    malformed(dialect, variant, &events[index].body),
                    true,
                ),
            };
            sending.book.advance_through(event);
            let notification = &events[event];
            for (hub, query) in sending.subscribers.iter().zip(&queries) {
                if !expect_refusal
                    && !query.matches(notification.event_type, &notification.body["event"])
                {
                    continue;
                }
                let permit = if burst {
                    None
                } else {
                    Some(slots.clone().acquire_owned().await?)
                };
                let url = notification_url(dialect, &hub.callback, notification.event_type);
                let request = authorize(
                    sending
                        .http
                        .post(url)
                        .header(
                            reqwest::header::CONTENT_TYPE,
                            "application/json;charset=utf-8",
                        )
                        .body(body.clone()),
                    sending.credentials,
                );
                sending_now.spawn(async move {
                    let _permit = permit;
                    let status = request
                        .send()
                        .await
                        .map(|response| response.status().as_u16())
                        .ok();
                    (event, expect_refusal, status)
                });
            }
            if !burst {
                // Keep the plan's order for single deliveries, up to the concurrency bound.
                while sending_now.len() >= concurrency {
                    if let Some(joined) = sending_now.join_next().await {
                        record(dialect, joined?, &mut delivered, &mut accepted);
                    }
                }
            }
        }
        while let Some(joined) = sending_now.join_next().await {
            record(dialect, joined?, &mut delivered, &mut accepted);
        }
        progress.inc(group.len() as u64);
    }
    progress.finish_and_clear();
    Ok((delivered, accepted))
}

fn record(
    dialect: Dialect,
    outcome: (usize, bool, Option<u16>),
    delivered: &mut Delivered,
    accepted: &mut [bool],
) {
    let (event, malformed, status) = outcome;
    let key = status.map_or_else(|| "error".to_owned(), |status| status.to_string());
    *delivered.statuses.entry(key).or_default() += 1;
    match (malformed, status) {
        (true, Some(400..=499)) => delivered.malformed_refused += 1,
        (true, _) => delivered.malformed_accepted += 1,
        (false, Some(status @ 200..=299)) => {
            accepted[event] = true;
            if status != success_status(dialect) {
                delivered.wrong_success_status += 1;
            }
        }
        (false, _) => {}
    }
}
