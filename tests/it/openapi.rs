//! The OpenAPI documents against the code: each port serves its own, every route the routers
//! declare is documented, and every documented operation reaches a handler. Schemathesis
//! (`.ci/schemathesis`, run by CI) checks the answers against the schemas.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::{ADMIN_TOKEN, spawn_app, spawn_app_with};

/// `/api/v1/events/{event_id}` and `/api/v1/events/{eventId}` are the same route.
fn shape(path: &str) -> String {
    let mut shaped = String::new();
    let mut in_parameter = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_parameter = true;
                shaped.push_str("{}");
            }
            '}' => in_parameter = false,
            _ if in_parameter => {}
            _ => shaped.push(c),
        }
    }
    shaped
}

/// The routes the source declares with `.route(…)` in `src/http/{file}`, as (METHOD, shape),
/// with the public router's `{base}` as the default base path. The console's pages are not part
/// of the API.
fn declared_routes(file: &str) -> BTreeSet<(String, String)> {
    let source =
        std::fs::read_to_string(format!("{}/src/http/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let compact: String = source.split_whitespace().collect();
    let mut routes = BTreeSet::new();
    for piece in compact.split(".route(").skip(1) {
        let (path, rest) = if let Some(rest) = piece.strip_prefix("&format!(\"{base}") {
            let end = rest.find('"').unwrap();
            (
                format!("/externalapi/listener/v1{}", &rest[..end]),
                &rest[end..],
            )
        } else if let Some(rest) = piece.strip_prefix('"') {
            let end = rest.find('"').unwrap();
            (rest[..end].to_owned(), &rest[end..])
        } else {
            panic!("a route in {file} whose path this test cannot read: {piece:.60}");
        };
        let method = rest
            .trim_start_matches(['"', ')', ','])
            .split('(')
            .next()
            .unwrap()
            .to_uppercase();
        routes.insert((method, shape(&path)));
    }
    routes
}

fn documented_routes(document: &Value) -> BTreeSet<(String, String)> {
    document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.to_uppercase(), shape(path)))
        })
        .collect()
}

async fn fetch(client: &reqwest::Client, url: String) -> Value {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/json;charset=utf-8"
    );
    response.json().await.unwrap()
}

#[tokio::test]
async fn each_port_documents_exactly_the_routes_it_declares() {
    let app = spawn_app().await;
    let public = fetch(
        &app.client,
        format!("{}/externalapi/listener/v1/openapi.json", app.public_base),
    )
    .await;
    let admin = fetch(
        &app.client,
        format!("{}/api/v1/openapi.json", app.admin_base),
    )
    .await;

    assert_eq!(documented_routes(&public), declared_routes("mod.rs"));
    let mut admin_declared = declared_routes("admin.rs");
    admin_declared.retain(|(_, path)| !path.starts_with("/console"));
    assert_eq!(documented_routes(&admin), admin_declared);
    assert!(
        admin_declared.contains(&("GET".to_owned(), "/api/v1/stream".to_owned())),
        "the check read the admin router"
    );
}

#[tokio::test]
async fn every_documented_admin_path_is_routed() {
    // A routed path answers a method it does not serve with 405; a path no route has, with 404.
    let app = spawn_app().await;
    let admin = fetch(
        &app.client,
        format!("{}/api/v1/openapi.json", app.admin_base),
    )
    .await;
    let paths: BTreeSet<String> = documented_routes(&admin)
        .into_iter()
        .map(|(_, path)| path)
        .collect();
    for path in paths {
        let url = format!("{}{}", app.admin_base, path.replace("{}", "1"));
        let response = app
            .client
            .delete(&url)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 405, "DELETE {path}");
    }
    let unknown = app
        .client
        .delete(format!("{}/api/v1/nothing-here", app.admin_base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
}

#[tokio::test]
async fn the_public_document_follows_the_configuration() {
    let app = spawn_app_with(|config| {
        config.base_path = "/hooks/onap".to_owned();
        config.parse.accept_service_inventory = true;
    })
    .await;
    let document = fetch(
        &app.client,
        format!("{}/hooks/onap/openapi.json", app.public_base),
    )
    .await;
    assert!(document["paths"]["/hooks/onap/listener"]["post"].is_object());
    assert!(document["paths"]["/externalapi/listener/v1/listener"].is_null());
    let kinds = document["components"]["schemas"]["EventType"]["enum"]
        .as_array()
        .unwrap();
    assert!(kinds.contains(&Value::from("ServiceRemoveNotification")));

    let default = spawn_app().await;
    let document = fetch(
        &default.client,
        format!(
            "{}/externalapi/listener/v1/openapi.json",
            default.public_base
        ),
    )
    .await;
    let kinds = document["components"]["schemas"]["EventType"]["enum"]
        .as_array()
        .unwrap();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    assert!(!kinds.contains(&Value::from("ServiceRemoveNotification")));
}
