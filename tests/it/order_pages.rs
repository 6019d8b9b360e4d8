//! The order list a page at a time: `Store::orders` from an `OrderCursor`, on both backends
//! (the store contract's), and `GET /api/v1/service-orders` with `limit` and `cursor`, most
//! recently changed first, walked to its end while orders change.

use std::collections::BTreeMap;

use order_listener::domain::state::State;
use order_listener::store::{OrderCursor, OrderFilter, Store};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::store_contract::{backends, new_event, open, tamper};

/// Walks the list `filter` selects in pages of `size`, each from the last one's cursor.
async fn walk(store: &Store, filter: OrderFilter, size: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = filter.after.clone();
    loop {
        let page = store
            .orders(OrderFilter {
                after,
                limit: size,
                ..filter.clone()
            })
            .await
            .unwrap();
        ids.extend(page.iter().map(|order| order.id.as_str().to_owned()));
        match page.last() {
            Some(last) if page.len() == size => after = Some(OrderCursor::after(last)),
            _ => return ids,
        }
        assert!(ids.len() <= 100, "the walk ends: {ids:?}");
    }
}

#[tokio::test]
async fn pages_of_the_order_list_join_into_the_whole_list_ties_included() {
    for backend in backends().await {
        let store = open(&backend, Vec::new()).await;
        let ids = [
            "SO-a", "SO-b", "SO-c", "SO-d", "SO-e", "SO-f", "SO-g", "SO-9", "SO-10",
        ];
        for id in ids {
            store
                .append(new_event(&onap_creation(&format!("{id}-created"), id, 1)))
                .await
                .unwrap();
        }
        for event in onap_lifecycle("SO-done", 1) {
            store.append(new_event(&event)).await.unwrap();
        }
        // Orders changed in one commit batch share their instant: ties, set here.
        for (id, at) in [
            ("SO-a", 1_000_000),
            ("SO-b", 1_000_000),
            ("SO-c", 1_000_000),
            ("SO-d", 1_000_000),
            ("SO-e", 1_000_000),
            ("SO-f", 2_000_000),
            ("SO-9", 2_000_000),
            ("SO-10", 2_000_000),
            ("SO-g", 500_000),
            ("SO-done", 1_000_000),
        ] {
            let sql = format!("UPDATE service_orders SET updated_at_us = {at} WHERE id = '{id}'");
            tamper(&backend, &sql, &sql).await;
        }
        let expected = [
            "SO-10", "SO-9", "SO-f", "SO-a", "SO-b", "SO-c", "SO-d", "SO-done", "SO-e", "SO-g",
        ];
        let all = walk(&store, OrderFilter::default(), 100).await;
        assert_eq!(all, expected, "{}: newest first, then by id", backend.name);
        for size in [1, 2, 3, 4] {
            let walked = walk(&store, OrderFilter::default(), size).await;
            assert_eq!(walked, expected, "{}: pages of {size}", backend.name);
        }
        let acknowledged = OrderFilter {
            state: Some(State::Acknowledged),
            ..OrderFilter::default()
        };
        let walked = walk(&store, acknowledged, 2).await;
        let mut without_done = expected.to_vec();
        without_done.retain(|id| *id != "SO-done");
        assert_eq!(walked, without_done, "{}: with a filter", backend.name);

        // Orders created or changed during a walk go to the head: the rest of the walk lists
        // every order left alone once, and neither of those.
        let first = store
            .orders(OrderFilter {
                limit: 4,
                ..OrderFilter::default()
            })
            .await
            .unwrap();
        let rest = OrderFilter {
            after: first.last().map(OrderCursor::after),
            ..OrderFilter::default()
        };
        store
            .append(new_event(&onap_creation("SO-new-created", "SO-new", 1)))
            .await
            .unwrap();
        let mut changed = onap_creation("SO-g-again", "SO-g", 1);
        changed["eventType"] = json!("ServiceOrderStateChangeNotification");
        changed["eventDate"] = json!(onap_date(60));
        changed["event"]["state"] = json!("inProgress");
        store.append(new_event(&changed)).await.unwrap();
        let later = walk(&store, rest, 2).await;
        assert_eq!(
            later,
            ["SO-b", "SO-c", "SO-d", "SO-done", "SO-e"],
            "{}: SO-g changed and SO-new came during the walk",
            backend.name
        );
        store.close().await;
    }
}

/// The ids of a page's orders, in the page's order.
fn order_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {page}"))
        .iter()
        .map(|order| order["id"].as_str().unwrap().to_owned())
        .collect()
}

/// `query` with `cursor`, percent-encoded as any client encodes a query value.
fn with_cursor(query: &str, cursor: &str) -> String {
    let encoded: String = form_urlencoded::byte_serialize(cursor.as_bytes()).collect();
    format!("{query}&cursor={encoded}")
}

#[tokio::test]
async fn the_order_list_is_walked_a_page_at_a_time_and_lists_each_unchanged_order_once() {
    let app = spawn_app().await;
    // Ids that need encoding in a query, to show that the cursor survives it.
    let orders = ["SO-1", "SO 2", "SO&3", "SO+4", "SO/5", "SO#6", "SO-7"];
    for order in orders {
        let created = onap_creation(&format!("{order}-created"), order, 1);
        assert_eq!(app.post(&created).await.status().as_u16(), 201);
    }
    let (status, everything) = app.admin_get("/api/v1/service-orders?limit=1000").await;
    assert_eq!(status, 200, "{everything}");
    assert_eq!(everything["nextCursor"], Value::Null, "one page holds all");
    let newest_first = order_ids(&everything);
    assert_eq!(newest_first.len(), orders.len());

    // Pages of 2 give the same list, each order once.
    let mut seen = Vec::new();
    let mut query = "/api/v1/service-orders?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let (status, page) = app.admin_get(&query).await;
        assert_eq!(status, 200, "{query}: {page}");
        let ids = order_ids(&page);
        assert!(ids.len() <= 2, "{page}");
        seen.extend(ids);
        pages += 1;
        match page["nextCursor"].as_str() {
            Some(cursor) => query = with_cursor("/api/v1/service-orders?limit=2", cursor),
            None => break,
        }
        assert!(pages <= orders.len(), "the walk ends");
    }
    assert_eq!(seen, newest_first);

    // Orders that change during a walk move to its head: an order listed already is not
    // listed again, a new order is not listed, and each order left alone is listed once.
    let (_, first) = app.admin_get("/api/v1/service-orders?limit=3").await;
    let listed = order_ids(&first);
    let changed = listed[2].clone();
    let cursor = first["nextCursor"].as_str().expect("more pages").to_owned();
    let mut state_change = onap_creation("SO-changed-again", &changed, 1);
    state_change["eventType"] = json!("ServiceOrderStateChangeNotification");
    state_change["eventDate"] = json!(onap_date(50));
    state_change["event"]["state"] = json!("inProgress");
    assert_eq!(app.post(&state_change).await.status().as_u16(), 201);
    let late = onap_creation("SO-late-created", "SO-late", 1);
    assert_eq!(app.post(&late).await.status().as_u16(), 201);
    let mut walked: BTreeMap<String, usize> = BTreeMap::new();
    for id in &listed {
        *walked.entry(id.clone()).or_default() += 1;
    }
    let mut query = with_cursor("/api/v1/service-orders?limit=3", &cursor);
    loop {
        let (status, page) = app.admin_get(&query).await;
        assert_eq!(status, 200, "{page}");
        for id in order_ids(&page) {
            *walked.entry(id).or_default() += 1;
        }
        match page["nextCursor"].as_str() {
            Some(cursor) => query = with_cursor("/api/v1/service-orders?limit=3", cursor),
            None => break,
        }
    }
    let expected: BTreeMap<String, usize> = orders
        .iter()
        .map(|order| ((*order).to_owned(), 1))
        .collect();
    assert_eq!(walked, expected, "{changed} was changed during the walk");

    // The cursor composes with the filters.
    let (_, acknowledged) = app
        .admin_get("/api/v1/service-orders?state=acknowledged&limit=4")
        .await;
    let cursor = acknowledged["nextCursor"].as_str().expect("a full page");
    let (status, rest) = app
        .admin_get(&with_cursor(
            "/api/v1/service-orders?state=acknowledged&limit=4",
            cursor,
        ))
        .await;
    assert_eq!(status, 200, "{rest}");
    assert!(
        !order_ids(&rest).contains(&changed),
        "{changed} is inProgress: {rest}"
    );
    assert_eq!(order_ids(&acknowledged).len() + order_ids(&rest).len(), 7);
}

#[tokio::test]
async fn a_cursor_that_no_page_gave_is_refused_with_400_28() {
    let app = spawn_app().await;
    for cursor in [
        "x",
        "12",
        "-SO-1",
        "12-",
        "1.5-SO-1",
        "99999999999999999999-SO-1",
        "%E2%80%8B12-SO-1",
    ] {
        let path = format!("/api/v1/service-orders?cursor={cursor}");
        let (status, body) = app.admin_get(&path).await;
        assert_eq!((status, &body["code"]), (400, &json!(28)), "{path}: {body}");
        assert_eq!(body["referenceError"], "query:cursor", "{path}");
        assert!(
            body["message"].as_str().unwrap().contains("nextCursor"),
            "{body}"
        );
    }
}
