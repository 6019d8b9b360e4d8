//! The metrics' names, labels and values as `/metrics` prints them.

use super::*;

/// The value of the sample `series` (name and labels exactly as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

#[test]
fn fresh_metrics_render_an_openmetrics_document_with_its_histograms_at_zero() {
    let text = Metrics::new().render(None);
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(
        sample(&text, "order_listener_commit_batch_size_count"),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "order_listener_commit_seconds_count"),
        Some(0.0)
    );
    assert!(
        text.contains("# TYPE order_listener_commit_batch_size histogram"),
        "{text}"
    );
}

#[test]
fn requests_are_counted_by_event_type_and_status() {
    let metrics = Metrics::new();
    metrics.request(Some("ServiceOrderCreationNotification"), 201);
    metrics.request(Some("ServiceOrderCreationNotification"), 201);
    metrics.request(None, 400);
    let text = metrics.render(None);
    assert_eq!(
        sample(
            &text,
            r#"order_listener_requests_total{event_type="ServiceOrderCreationNotification",status="201"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"order_listener_requests_total{event_type="unknown",status="400"}"#
        ),
        Some(1.0)
    );
}

#[test]
fn commits_and_deliveries_fill_their_histograms_and_counters() {
    let metrics = Metrics::new();
    metrics.commit(3, Duration::from_millis(2));
    metrics.delivery("hooks", AttemptResult::Failed, Duration::from_millis(30));
    metrics.delivery("hooks", AttemptResult::Delivered, Duration::from_millis(10));
    metrics.duplicate("hooks");
    metrics.auth_failure(41);
    metrics.fetch("acme", FetchOutcome::NotFound);
    metrics.fetch("acme", FetchOutcome::NotFound);
    let text = metrics.render(None);
    assert_eq!(
        sample(
            &text,
            r#"order_listener_seller_fetches_total{seller="acme",outcome="not_found"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, "order_listener_commit_batch_size_sum"),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"order_listener_commit_batch_size_bucket{le="4.0"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"order_listener_delivery_attempts_total{sink="hooks",result="failed"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"order_listener_delivery_seconds_count{sink="hooks"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"order_listener_delivery_duplicates_total{sink="hooks"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"order_listener_auth_failures_total{code="41"}"#),
        Some(1.0)
    );
}

#[test]
fn the_snapshot_reads_answers_refusals_and_the_commit_percentile_from_the_rendering() {
    let metrics = Metrics::new();
    assert_eq!(metrics.snapshot().commit_p99_seconds, None);
    metrics.request(Some("ServiceOrderCreationNotification"), 201);
    metrics.request(Some("ServiceOrderStateChangeNotification"), 201);
    metrics.request(None, 400);
    metrics.auth_failure(41);
    metrics.auth_failure(41);
    for _ in 0..99 {
        metrics.commit(1, Duration::from_micros(200));
    }
    metrics.commit(1, Duration::from_millis(3));
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.answers_by_status.get(&201), Some(&2));
    assert_eq!(snapshot.answers_by_status.get(&400), Some(&1));
    assert_eq!(snapshot.refusals_by_code.get(&41), Some(&2));
    assert_eq!(snapshot.commits, 100);
    // 99 of 100 commits fall in the first bucket (at most 0.25 ms).
    assert_eq!(snapshot.commit_p99_seconds, Some(0.00025));
}

#[test]
fn outbox_gauges_come_from_the_sink_statuses_given_at_render() {
    let status = OutboxGauges {
        sink: "hooks".into(),
        pending: 7,
        dead: 2,
    };
    let text = Metrics::new().render(Some(&[status]));
    assert_eq!(
        sample(&text, r#"order_listener_outbox_pending{sink="hooks"}"#),
        Some(7.0)
    );
    assert_eq!(
        sample(&text, r#"order_listener_dead_letters{sink="hooks"}"#),
        Some(2.0)
    );
    assert_eq!(text.matches("# EOF").count(), 1, "{text}");
}

#[test]
fn suspect_gauges_come_from_the_counts_given_at_render() {
    let suspects = [
        SuspectGauge {
            reason: "stale",
            orders: 3,
        },
        SuspectGauge {
            reason: "outOfStep",
            orders: 0,
        },
    ];
    let metrics = Metrics::new();
    let text = metrics.render_with(None, Some(&suspects));
    assert_eq!(
        sample(&text, r#"order_listener_orders_suspect{reason="stale"}"#),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"order_listener_orders_suspect{reason="outOfStep"}"#
        ),
        Some(0.0),
        "a reason without suspects is still a series"
    );
    assert!(!metrics.render(None).contains("orders_suspect"));
    assert_eq!(text.matches("# EOF").count(), 1, "{text}");
}
