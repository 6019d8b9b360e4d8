//! Reconciliation (issue 14): an order the suspect rules point at (`domain::suspect`) is fetched
//! from its seller's Service Ordering API and compared with the projection
//! (`domain::reconcile::compare`); where the seller's order differs, the listener appends a
//! **synthesized** event that carries it (`domain::envelope::reconciled`), through the same
//! append as a seller's event: it folds, it is forwarded, it shows in the timeline, marked
//! `source: reconciled`. A stored event is never changed or removed.
//!
//! [`Reconciler::check`] is one order's check, shared by `order-listener reconcile` and by
//! `serve`'s sweep ([`sweep`]), which adds the schedule, a request budget per seller API and
//! the backoff after failures. Requests go through the `seller-api` sink's client
//! (`forward::seller_api::Seller`): its credentials, TLS and timeout, no redirects.

pub(crate) mod sweep;

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::json;

use crate::config::seller_apis::SellerApi;
use crate::domain::envelope::reconciled::{Synthesis, synthesize};
use crate::domain::envelope::{Dialect, EventDate, EventId, OrderFacts, OrderId, Source};
use crate::domain::projection::ServiceOrder;
use crate::domain::reconcile::{Difference, compare};
use crate::domain::suspect::Reasons;
use crate::forward::seller_api::{Seller, choose};
use crate::metrics::Metrics;
use crate::store::{Appended, NewEvent, Store, StoreError};

/// What one check found and did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub(crate) enum Outcome {
    /// The seller's order and the projection agree.
    Matched,
    /// They differed; the synthesized event is stored.
    #[serde(rename_all = "camelCase")]
    Repaired {
        /// Its eventId.
        event_id: EventId,
        /// Its place in receipt order.
        sequence: i64,
        /// What it changed.
        difference: Difference,
    },
    /// They differ; a dry run stores nothing.
    Differs {
        /// What differs.
        difference: Difference,
    },
    /// The seller API has no such order (404).
    NotFound,
    /// No seller API serves the order's dialect.
    #[serde(rename_all = "camelCase")]
    NoSellerApi {
        /// The order's dialect.
        dialect: Dialect,
    },
    /// The seller API or the store failed; the order is checked again later.
    #[serde(rename_all = "camelCase")]
    Failed {
        /// What went wrong (never a secret, never a URL).
        error: String,
        /// Whether the seller API did not answer at all, or answered an error: the sweep
        /// then backs off from that seller API.
        seller_failed: bool,
    },
}

impl Outcome {
    /// The `outcome` label of `order_listener_reconcile_checks_total`, and the CLI's word.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Outcome::Matched => "matched",
            Outcome::Repaired { .. } => "repaired",
            Outcome::Differs { .. } => "differs",
            Outcome::NotFound => "not_found",
            Outcome::NoSellerApi { .. } => "no_seller_api",
            Outcome::Failed { .. } => "failed",
        }
    }
}

/// One order's check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Check {
    /// The order.
    pub(crate) order_id: OrderId,
    /// The seller API asked, if any.
    pub(crate) seller_api: Option<String>,
    /// Why the order was checked.
    pub(crate) reasons: Reasons,
    /// What was found and done.
    #[serde(flatten)]
    pub(crate) outcome: Outcome,
}

/// Checks orders against their sellers' APIs.
pub(crate) struct Reconciler {
    sellers: Vec<Seller>,
    store: Store,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("sellers", &self.sellers.len())
            .finish_non_exhaustive()
    }
}

impl Reconciler {
    /// A reconciler over the configured seller APIs (nothing is connected yet).
    pub(crate) fn new(
        apis: &[SellerApi],
        store: Store,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Reconciler> {
        let sellers = apis
            .iter()
            .map(Seller::new)
            .collect::<anyhow::Result<_>>()?;
        Ok(Reconciler {
            sellers,
            store,
            metrics,
        })
    }

    /// Whether any seller API is configured.
    pub(crate) fn has_sellers(&self) -> bool {
        !self.sellers.is_empty()
    }

    /// The names of the seller APIs, in configuration order.
    pub(crate) fn seller_names(&self) -> Vec<String> {
        self.sellers
            .iter()
            .map(|seller| seller.api().name.clone())
            .collect()
    }

    /// The index of the seller API that serves `dialect`'s orders.
    fn seller_of(&self, dialect: Dialect, order_id: &OrderId) -> Option<usize> {
        let (chosen, _) = choose(&self.sellers, Seller::api, dialect, None, order_id.as_str())?;
        self.sellers
            .iter()
            .position(|seller| std::ptr::eq(seller, chosen))
    }

    /// The order as projected, and the dialect to ask its seller in: its newest seller event's;
    /// for an order without events, the first seller API's first dialect.
    async fn projected(
        &self,
        order_id: &OrderId,
    ) -> Result<(Option<ServiceOrder>, Option<Dialect>), StoreError> {
        let order = self.store.order(order_id).await?;
        let dialect = order
            .as_ref()
            .and_then(|order| {
                order
                    .timeline
                    .iter()
                    .rev()
                    .find(|entry| entry.source == Source::Seller)
                    .map(|entry| entry.dialect)
            })
            .or_else(|| {
                self.sellers
                    .first()
                    .and_then(|seller| seller.api().dialects.first().copied())
            });
        Ok((order, dialect))
    }

    /// Which seller API `order_id` is asked at: its index, or `None` when none serves it. With
    /// one seller API, that one, without reading the order (its check says if it serves none).
    pub(crate) async fn route(&self, order_id: &OrderId) -> Result<Option<usize>, StoreError> {
        if self.sellers.len() == 1 {
            return Ok(Some(0));
        }
        let (_, dialect) = self.projected(order_id).await?;
        Ok(dialect.and_then(|dialect| self.seller_of(dialect, order_id)))
    }

    /// Checks `order_id`, suspect for `reasons`: fetches it from its seller API, compares, and
    /// unless `dry_run`, appends the synthesized event when they differ.
    pub(crate) async fn check(&self, order_id: &OrderId, reasons: Reasons, dry_run: bool) -> Check {
        let (seller_api, outcome) = match self.projected(order_id).await {
            Err(error) => (None, failed(&error, false)),
            Ok((projected, dialect)) => {
                let seller = dialect.and_then(|dialect| self.seller_of(dialect, order_id));
                match (seller, dialect) {
                    (Some(index), Some(dialect)) => {
                        let seller = &self.sellers[index];
                        let outcome = self
                            .fetch_and_compare(
                                seller, order_id, projected, dialect, reasons, dry_run,
                            )
                            .await;
                        (Some(seller.api().name.clone()), outcome)
                    }
                    (_, dialect) => (
                        None,
                        Outcome::NoSellerApi {
                            dialect: dialect.unwrap_or_default(),
                        },
                    ),
                }
            }
        };
        if !dry_run {
            self.metrics
                .reconcile_check(seller_api.as_deref().unwrap_or(""), outcome.label());
        }
        Check {
            order_id: order_id.clone(),
            seller_api,
            reasons,
            outcome,
        }
    }

    async fn fetch_and_compare(
        &self,
        seller: &Seller,
        order_id: &OrderId,
        projected: Option<ServiceOrder>,
        dialect: Dialect,
        reasons: Reasons,
        dry_run: bool,
    ) -> Outcome {
        // The seller's answer shows the order at this instant or later.
        let fetched_at = Utc::now();
        let (answer, facts) = match seller.fetch_order(order_id).await {
            Ok(fetched) => fetched,
            Err(error) if error.is_not_found() => return Outcome::NotFound,
            Err(error) => return failed(&error, true),
        };
        let fetched = Fetched {
            answer: &answer,
            facts: &facts,
            at: fetched_at,
        };
        self.repair(
            seller.api(),
            dialect,
            projected.as_ref(),
            fetched,
            reasons,
            dry_run,
        )
        .await
    }

    /// Lists the orders of the seller API at `index`, page by page (each page one request,
    /// within `budget` when given), and records a synthesized creation for each order the listener has no
    /// event of. Orders it knows are left to the suspect checks: a listing may be older than an
    /// event that arrived meanwhile. `Err` when a page cannot be had.
    pub(crate) async fn list(
        &self,
        index: usize,
        dry_run: bool,
        budget: Option<&governor::DefaultDirectRateLimiter>,
    ) -> Result<Vec<Check>, Outcome> {
        const PAGE: usize = 100;
        const MAX_PAGES: usize = 10_000;
        let seller = &self.sellers[index];
        let api = seller.api();
        let Some(dialect) = api.dialects.first().copied() else {
            return Ok(Vec::new());
        };
        let mut checks = Vec::new();
        for page in 0..MAX_PAGES {
            if let Some(budget) = budget {
                budget.until_ready().await;
            }
            let fetched_at = Utc::now();
            let listed = seller
                .list_orders(page * PAGE, PAGE)
                .await
                .map_err(|error| failed(&error, true))?;
            for (text, facts) in &listed {
                let known = match self.store.order(&facts.order_id).await {
                    Ok(order) => order.is_some(),
                    Err(error) => return Err(failed(&error, false)),
                };
                if known {
                    continue;
                }
                let outcome = self
                    .repair(
                        api,
                        dialect,
                        None,
                        Fetched {
                            answer: text,
                            facts,
                            at: fetched_at,
                        },
                        Reasons::NONE,
                        dry_run,
                    )
                    .await;
                if !dry_run {
                    self.metrics.reconcile_check(&api.name, outcome.label());
                }
                checks.push(Check {
                    order_id: facts.order_id.clone(),
                    seller_api: Some(api.name.clone()),
                    reasons: Reasons::NONE,
                    outcome,
                });
            }
            if listed.len() < PAGE {
                break;
            }
        }
        Ok(checks)
    }

    /// The indexes of the seller APIs that list their orders.
    pub(crate) fn listing_sellers(&self) -> Vec<usize> {
        (0..self.sellers.len())
            .filter(|index| self.sellers[*index].api().list_orders)
            .collect()
    }

    /// Compares the seller's order (`fetched`) with `projected` and appends the synthesized
    /// event when they differ (and this is not a `dry_run`).
    async fn repair(
        &self,
        api: &SellerApi,
        dialect: Dialect,
        projected: Option<&ServiceOrder>,
        fetched: Fetched<'_>,
        reasons: Reasons,
        dry_run: bool,
    ) -> Outcome {
        let Fetched {
            answer,
            facts,
            at: fetched_at,
        } = fetched;
        let difference = compare(projected, facts);
        if difference.is_empty() {
            return Outcome::Matched;
        }
        if dry_run {
            return Outcome::Differs { difference };
        }
        // When the order was asked for, and after every event already applied: a seller's event
        // that comes later with an earlier date still folds before this one, and one the seller
        // sent after it answered folds after.
        let after_newest =
            projected.map(|order| order.last_event_date.as_datetime() + TimeDelta::milliseconds(1));
        let event_date =
            EventDate::from(after_newest.map_or(fetched_at, |after| after.max(fetched_at)));
        let newest_event = projected
            .and_then(|order| order.timeline.last())
            .map(|entry| &entry.event_id);
        let synthesis = Synthesis {
            dialect,
            order: facts,
            fetched: answer,
            creation: projected.is_none(),
            newest_event,
            event_date,
            reconciliation: json!({
                "sellerApi": api.name,
                "suspect": reasons,
                "fetchedAt": EventDate::from(fetched_at).to_string(),
                "difference": difference,
            }),
        };
        let notification = match synthesize(&synthesis) {
            Ok(notification) => notification,
            Err(error) => {
                return Outcome::Failed {
                    error: format!("the seller's order cannot be recorded: {error}"),
                    seller_failed: false,
                };
            }
        };
        let event_id = notification.event_id.clone();
        let appended = self
            .store
            .append(NewEvent {
                notification,
                received_at: Utc::now(),
                sender: None,
                client: None,
                trace_context: None,
            })
            .await;
        match appended {
            Ok(Appended::Stored { sequence } | Appended::Duplicate { sequence, .. }) => {
                tracing::info!(
                    order_id = %facts.order_id,
                    seller_api = %api.name,
                    %event_id,
                    "reconciled: {}",
                    difference.summary()
                );
                Outcome::Repaired {
                    event_id,
                    sequence,
                    difference,
                }
            }
            // Another reconciler (the CLI and `serve` at once) stored the same repair.
            Err(StoreError::Conflict { .. }) => Outcome::Matched,
            Err(error) => failed(&error, false),
        }
    }
}

fn failed(error: &(dyn std::error::Error + 'static), seller_failed: bool) -> Outcome {
    Outcome::Failed {
        error: crate::telemetry::error_chain(error),
        seller_failed,
    }
}

/// A seller's order as its API answered.
#[derive(Clone, Copy)]
struct Fetched<'a> {
    /// The answer's body.
    answer: &'a [u8],
    /// The order read from it.
    facts: &'a OrderFacts,
    /// When it was asked for: the answer shows the order at this instant or later.
    at: DateTime<Utc>,
}
