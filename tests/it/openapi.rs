//! The OpenAPI documents against the code: each port serves its own, every route the routers
//! declare is documented, and every documented operation reaches a handler. Schemathesis
//! (`.ci/schemathesis`, run by CI) checks the answers against the schemas.

use std::collections::BTreeSet;

use serde_json::Value;

use order_listener::domain::envelope::Dialect;

use crate::helpers::{
    ADMIN_TOKEN, TestApp, onap_lifecycle, spawn_app, spawn_app_with, spawn_app_with_file,
};

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
        if piece.starts_with("&format!(\"{path}") {
            // A dialect's listener at one of its base paths: see `mounted_listener_routes`.
            continue;
        }
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

/// The listener routes the public router mounts by default: each dialect's at each of its base
/// paths, with and without a trailing slash.
fn mounted_listener_routes() -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for dialect in Dialect::ALL {
        for base in dialect.default_base_paths() {
            let listeners: Vec<String> = if dialect == Dialect::Onap {
                vec![format!("{base}/listener")]
            } else {
                dialect
                    .event_types()
                    .iter()
                    .filter_map(|kind| kind.path_name())
                    .map(|name| format!("{base}/listener/{name}"))
                    .collect()
            };
            for path in listeners {
                routes.insert(("POST".to_owned(), format!("{path}/")));
                routes.insert(("POST".to_owned(), path));
            }
        }
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

/// The public port's document and the admin port's.
async fn documents(app: &TestApp) -> (Value, Value) {
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
    (public, admin)
}

#[tokio::test]
async fn each_port_documents_exactly_the_routes_it_declares() {
    let app = spawn_app().await;
    let (public, admin) = documents(&app).await;

    let mut public_declared = declared_routes("mod.rs");
    public_declared.extend(mounted_listener_routes());
    assert_eq!(documented_routes(&public), public_declared);
    assert!(
        public_declared.contains(&(
            "POST".to_owned(),
            "/mefApi/legato/serviceOrderingManagement/v6/listener/serviceOrderItemStateChangeEvent"
                .to_owned()
        )),
        "the MEF spelling of the hub example is mounted"
    );
    // The admin router merges the reconciliation routes (`reconcile.rs`).
    let mut admin_declared = declared_routes("admin.rs");
    admin_declared.extend(declared_routes("reconcile.rs"));
    admin_declared.retain(|(_, path)| !path.starts_with("/console"));
    assert_eq!(documented_routes(&admin), admin_declared);
    assert!(
        admin_declared.contains(&("GET".to_owned(), "/api/v1/stream".to_owned())),
        "the check read the admin router"
    );
    assert!(
        admin_declared.contains(&("GET".to_owned(), "/api/v1/suspects".to_owned())),
        "the check read the reconciliation routes"
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
async fn every_documented_listener_path_is_routed() {
    // An empty body reaches the listener's parser: 400, in the path's dialect.
    let app = spawn_app().await;
    let public = fetch(
        &app.client,
        format!("{}/externalapi/listener/v1/openapi.json", app.public_base),
    )
    .await;
    for (method, path) in documented_routes(&public) {
        if method != "POST" {
            continue;
        }
        let response = app
            .post_raw_to(
                &format!("{}{path}", app.public_base),
                "",
                Some("application/json"),
            )
            .await;
        assert_eq!(response.status().as_u16(), 400, "POST {path}");
        let body: Value = response.json().await.unwrap();
        let expected = if path.starts_with("/mefApi/") {
            Value::from("invalidBody")
        } else if path.starts_with("/tmf-api/") {
            Value::from("21")
        } else {
            Value::from(21)
        };
        assert_eq!(body["code"], expected, "POST {path}: {body}");
    }
}

#[tokio::test]
async fn the_public_document_follows_the_configuration() {
    let app = spawn_app_with_file(
        "base_path = \"/hooks/onap\"\naccept_service_inventory_events = true\n\
         [dialects.tmf641-v5]\nenabled = false\n[dialects.mef-legato-v6]\nbase_path = \"/mef6\"\n",
    )
    .await;
    let document = fetch(
        &app.client,
        format!("{}/hooks/onap/openapi.json", app.public_base),
    )
    .await;
    assert!(document["paths"]["/hooks/onap/listener"]["post"].is_object());
    assert!(document["paths"]["/externalapi/listener/v1/listener"].is_null());
    assert!(
        document["paths"]["/tmf-api/serviceOrdering/v4/listener/serviceOrderCreateEvent"]
            .is_object()
    );
    assert!(
        document["paths"]["/tmf-api/serviceOrdering/v5/listener/serviceOrderCreateEvent"].is_null()
    );
    assert!(document["paths"]["/mef6/listener/serviceOrderCreateEvent"]["post"].is_object());
    assert!(
        document["paths"]["/mefApi/legato/serviceOrderingNotification/v6/listener/serviceOrderCreateEvent"]
            .is_null()
    );
    // What the document says is what the router does.
    let turned_off = app
        .post_raw_to(
            &format!(
                "{}/tmf-api/serviceOrdering/v5/listener/serviceOrderCreateEvent",
                app.public_base
            ),
            "{}",
            Some("application/json"),
        )
        .await;
    assert_eq!(turned_off.status().as_u16(), 404);
    let moved = app
        .post_raw_to(
            &format!("{}/mef6/listener/serviceOrderCreateEvent", app.public_base),
            "{}",
            Some("application/json"),
        )
        .await;
    assert_eq!(moved.status().as_u16(), 400);
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

#[tokio::test]
async fn each_document_names_the_address_it_is_served_at() {
    let app = spawn_app().await;
    let (public, admin) = documents(&app).await;
    assert!(app.public_base.starts_with("http://127.0.0.1:"));
    assert_eq!(public["servers"][0]["url"], app.public_base.as_str());
    assert_eq!(admin["servers"][0]["url"], app.admin_base.as_str());
    for document in [&public, &admin] {
        assert_eq!(document["servers"].as_array().unwrap().len(), 1);
    }

    // Behind a proxy, the admin document names the URL clients reach it at, as the Location
    // header of a 201 does.
    let proxied = spawn_app_with(|config| {
        config.admin_public_url = Some("https://listener-admin.example.net".to_owned());
    })
    .await;
    let admin = fetch(
        &proxied.client,
        format!("{}/api/v1/openapi.json", proxied.admin_base),
    )
    .await;
    assert_eq!(
        admin["servers"][0]["url"],
        "https://listener-admin.example.net"
    );
    let created = onap_lifecycle("SO-servers", 1).remove(0);
    let response = proxied.post(&created).await;
    assert_eq!(response.status().as_u16(), 201);
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("https://listener-admin.example.net/api/v1/events/"),
        "{:?}",
        response.headers()
    );
}
