//! The OpenAPI documents, one per port: `docs/openapi/public.json` (the Listener API and health)
//! and `docs/openapi/admin.json` (the admin API, health, metrics). Each is rendered once, on the
//! first request for it, for the running configuration: its `servers` names the listener that
//! serves it (the public one's scheme and bound address; the admin one's `admin_public_url`, or
//! its bound address), the public document's paths follow the listener's base path and its
//! `EventType` enum lists only the event types the parser accepts.
//!
//! The documents cannot drift from the code unnoticed: `tests/it/openapi.rs` checks that every
//! route the routers declare is documented and every documented operation is routed, and CI runs
//! schemathesis against both ports (`.ci/schemathesis`). This module does no IO.

use bytes::Bytes;
use serde_json::{Value, json};

use crate::config::listeners::Mount;
use crate::domain::envelope::{Dialect, EventType, ParseOptions};

mod dialects;

/// The public port's document as written, for the default base path.
pub(crate) const PUBLIC: &str = include_str!("../../docs/openapi/public.json");

/// The admin port's document.
pub(crate) const ADMIN: &str = include_str!("../../docs/openapi/admin.json");

/// The base path the public document is written for.
pub(crate) const SPEC_BASE_PATH: &str = "/externalapi/listener/v1";

/// The public port's document for the listeners of `mounts` (ONAP's document at `base_path`)
/// that parse with `parse`, served at `server` (`https://127.0.0.1:8443`).
pub(crate) fn public(
    base_path: &str,
    mounts: &[Mount],
    parse: ParseOptions,
    server: &str,
) -> Bytes {
    // The document is a constant of this crate, checked by the tests: it always reads.
    let mut document: Value = serde_json::from_str(PUBLIC).unwrap_or(Value::Null);
    serve_at(
        &mut document,
        server,
        "This listener: the scheme and address it is bound to.",
    );
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        let renamed: serde_json::Map<String, Value> = std::mem::take(paths)
            .into_iter()
            .map(|(path, item)| match path.strip_prefix(SPEC_BASE_PATH) {
                Some(rest) => (format!("{base_path}{rest}"), item),
                None => (path, item),
            })
            .collect();
        *paths = renamed;
    }
    // The trailing-slash spelling of the listener path is served too (see `public_router`).
    let listener = format!("{base_path}/listener");
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut)
        && let Some(mut item) = paths.get(&listener).cloned()
    {
        item["post"]["operationId"] = json!("listenerTrailingSlash");
        item["post"]["summary"] =
            json!("The same endpoint, for callbacks registered with a trailing slash");
        paths.insert(format!("{listener}/"), item);
    }
    let onap_paths: Vec<&str> = mounts
        .iter()
        .filter(|mount| mount.dialect == Dialect::Onap)
        .flat_map(|mount| mount.base_paths.iter().map(String::as_str))
        .collect();
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        let onap: Vec<(String, Value)> = [listener.clone(), format!("{listener}/")]
            .into_iter()
            .filter_map(|path| paths.remove(&path).map(|item| (path, item)))
            .collect();
        // ONAP's listener at each of its base paths (none when it is turned off).
        for base in &onap_paths {
            for (path, item) in &onap {
                let rest = path.strip_prefix(base_path).unwrap_or(path);
                paths.insert(format!("{base}{rest}"), item.clone());
            }
        }
        for mount in mounts.iter().filter(|mount| mount.dialect != Dialect::Onap) {
            for (alias, base) in mount.base_paths.iter().enumerate() {
                dialects::add_paths(paths, mount.dialect, base, alias);
            }
        }
    }
    if let Some(schemas) = document
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        dialects::add_schemas(schemas);
    }
    let accepted: Vec<&str> = EventType::ALL
        .into_iter()
        .filter(|kind| {
            Dialect::Onap.event_types().contains(kind)
                || (!kind.is_service_order() && parse.accept_service_inventory)
        })
        .map(EventType::as_str)
        .collect();
    if let Some(event_type) = document.pointer_mut("/components/schemas/EventType") {
        event_type["enum"] = json!(accepted);
        event_type["description"] = json!(if parse.accept_service_inventory {
            "The Listener API's three service-order events, and the service-inventory events \
             (`accept_service_inventory_events = true`): those are stored and forwarded, not \
             projected."
        } else {
            "The Listener API's three service-order events. The service-inventory events are \
             refused (400, code 24) unless `accept_service_inventory_events = true`."
        });
    }
    if !parse.accept_service_inventory
        && let Some(variants) = document
            .pointer_mut("/components/schemas/Listener/oneOf")
            .and_then(Value::as_array_mut)
    {
        variants.retain(|variant| variant["$ref"] != INVENTORY_VARIANT);
    }
    Bytes::from(serde_json::to_vec(&document).unwrap_or_default())
}

/// The `Listener` variant of the service-inventory events, left out unless they are accepted.
const INVENTORY_VARIANT: &str = "#/components/schemas/ServiceInventoryNotification";

/// The admin port's document, served at `server` (`admin_public_url`, or
/// `http://` and the admin listener's bound address).
pub(crate) fn admin(server: &str) -> Bytes {
    // The document is a constant of this crate, checked by the tests: it always reads.
    let mut document: Value = serde_json::from_str(ADMIN).unwrap_or(Value::Null);
    serve_at(
        &mut document,
        server,
        "This admin listener: admin_public_url, or the address it is bound to.",
    );
    Bytes::from(serde_json::to_vec(&document).unwrap_or_default())
}

/// Names `url` as the one server of `document`, in place of the default address it is written
/// with: clients (and schemathesis) resolve the paths against it.
fn serve_at(document: &mut Value, url: &str, description: &str) {
    document["servers"] = json!([{ "url": url, "description": description }]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the tests' documents say they are served.
    const SERVER: &str = "http://127.0.0.1:18080";

    fn public(base: &str, mounts: &[Mount], parse: ParseOptions) -> Bytes {
        super::public(base, mounts, parse, SERVER)
    }

    fn mounts(base: &str) -> Vec<Mount> {
        crate::config::listeners::check(base, &Default::default()).unwrap()
    }

    fn read(bytes: &Bytes) -> Value {
        serde_json::from_slice(bytes).expect("the document is JSON")
    }

    #[test]
    fn both_documents_read_and_name_their_port() {
        let public = read(&public(
            SPEC_BASE_PATH,
            &mounts(SPEC_BASE_PATH),
            ParseOptions::default(),
        ));
        let admin = read(&admin("https://listener-admin.example.net"));
        assert!(public["openapi"].as_str().unwrap_or("").starts_with("3."));
        assert!(public["paths"]["/api/v1/events"].is_null());
        assert!(admin["paths"][format!("{SPEC_BASE_PATH}/listener")].is_null());
        assert!(admin["paths"]["/api/v1/events"].is_object());
        assert_eq!(
            public["servers"],
            json!([{"url": SERVER, "description": "This listener: the scheme and address it is bound to."}])
        );
        assert_eq!(
            admin["servers"][0]["url"],
            "https://listener-admin.example.net"
        );
        assert_eq!(admin["servers"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn the_public_paths_follow_the_base_path() {
        let document = read(&public(
            "/hooks/onap",
            &mounts("/hooks/onap"),
            ParseOptions::default(),
        ));
        assert!(document["paths"]["/hooks/onap/listener"].is_object());
        assert!(document["paths"]["/hooks/onap/listener/"]["post"].is_object());
        assert!(document["paths"]["/hooks/onap/openapi.json"].is_object());
        assert!(document["paths"][format!("{SPEC_BASE_PATH}/listener")].is_null());
        assert!(document["paths"]["/healthz"].is_object());
    }

    #[test]
    fn the_event_type_enum_follows_the_parser() {
        let names = |parse| {
            read(&public(SPEC_BASE_PATH, &mounts(SPEC_BASE_PATH), parse))["components"]["schemas"]["EventType"]["enum"]
                .as_array()
                .expect("an enum")
                .len()
        };
        let variants = |parse| {
            read(&public(SPEC_BASE_PATH, &mounts(SPEC_BASE_PATH), parse))["components"]["schemas"]["Listener"]["oneOf"]
                .as_array()
                .expect("variants")
                .len()
        };
        assert_eq!(names(ParseOptions::default()), 3);
        assert_eq!(variants(ParseOptions::default()), 3);
        assert_eq!(
            variants(ParseOptions {
                accept_service_inventory: true,
                ..ParseOptions::default()
            }),
            4
        );
        assert_eq!(
            names(ParseOptions {
                accept_service_inventory: true,
                ..ParseOptions::default()
            }),
            6
        );
    }

    #[test]
    fn every_mounted_dialect_has_a_path_per_event_and_its_answers() {
        let document = read(&public(
            SPEC_BASE_PATH,
            &mounts(SPEC_BASE_PATH),
            ParseOptions::default(),
        ));
        let paths = &document["paths"];
        let v4 =
            &paths["/tmf-api/serviceOrdering/v4/listener/serviceOrderStateChangeEvent"]["post"];
        assert!(v4["responses"]["201"].is_object());
        assert!(v4["responses"]["409"].is_object());
        let v5 =
            &paths["/tmf-api/serviceOrdering/v5/listener/cancelServiceOrderCreateEvent/"]["post"];
        assert!(v5["responses"]["204"].is_object());
        for base in ["serviceOrderingNotification", "serviceOrderingManagement"] {
            let mef = &paths
                [format!("/mefApi/legato/{base}/v6/listener/serviceOrderItemStateChangeEvent")]["post"];
            assert_eq!(
                mef["responses"]["400"]["content"]["application/json;charset=utf-8"]["schema"]["$ref"],
                "#/components/schemas/MefError"
            );
        }
        assert!(paths["/mefApi/legato/serviceOrderingNotification/v5/listener/serviceOrderMilestoneEvent"].is_null());
        let operations: Vec<&str> = paths
            .as_object()
            .unwrap()
            .values()
            .filter_map(|item| item["post"]["operationId"].as_str())
            .collect();
        let unique: std::collections::BTreeSet<&str> = operations.iter().copied().collect();
        assert_eq!(unique.len(), operations.len(), "operationIds are unique");
    }

    #[test]
    fn a_dialect_turned_off_is_not_documented() {
        let only_mef: Vec<Mount> = mounts(SPEC_BASE_PATH)
            .into_iter()
            .filter(|mount| mount.dialect == Dialect::MefLegatoV5)
            .collect();
        let document = read(&public(SPEC_BASE_PATH, &only_mef, ParseOptions::default()));
        let paths: Vec<&String> = document["paths"].as_object().unwrap().keys().collect();
        assert!(
            paths.iter().all(
                |path| path.starts_with("/mefApi/") || !path.contains("/listener/serviceOrder")
            ),
            "{paths:?}"
        );
        assert!(document["paths"][format!("{SPEC_BASE_PATH}/listener")].is_null());
        assert!(document["paths"][format!("{SPEC_BASE_PATH}/openapi.json")].is_object());
    }
}
