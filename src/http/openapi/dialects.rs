//! The public document's part for the TM Forum's and MEF's listeners: a path per event type and
//! base path, with a request schema exactly as strict as that dialect's parser
//! (`domain::envelope::tmf` and `mef`), its success answer, and its error shape. No IO.

use serde_json::{Map, Value, json};

use crate::domain::envelope::{Dialect, EventType, Family, Role};
use crate::domain::state::State;

/// Adds the operations of `dialect`'s listeners under `base`, its `alias`-th base path (0 for
/// the first), to `paths`.
pub(super) fn add_paths(
    paths: &mut Map<String, Value>,
    dialect: Dialect,
    base: &str,
    alias: usize,
) {
    for kind in dialect.event_types() {
        let Some(name) = kind.path_name() else {
            continue;
        };
        let mut operation = operation(dialect, *kind, &name);
        if alias > 0 {
            let id = format!(
                "{}_alias{alias}",
                operation["operationId"].as_str().unwrap_or_default()
            );
            operation["operationId"] = json!(id);
        }
        let path = format!("{base}/listener/{name}");
        let mut trailing = operation.clone();
        trailing["operationId"] = json!(format!(
            "{}TrailingSlash",
            operation["operationId"].as_str().unwrap_or_default()
        ));
        trailing["summary"] =
            json!("The same endpoint, for callbacks registered with a trailing slash");
        paths.insert(path.clone(), json!({ "post": operation }));
        paths.insert(format!("{path}/"), json!({ "post": trailing }));
    }
}

/// The error schemas the dialects' operations refer to.
pub(super) fn add_schemas(schemas: &mut Map<String, Value>) {
    schemas.insert(
        "TmfError".into(),
        json!({
            "type": "object",
            "description": "TMF641's `Error`. `code` is the listener's numbered code as a string (the same numbers as ONAP's ErrorRepresentation); `status` is the HTTP status as a string.",
            "required": ["code", "reason"],
            "properties": {
                "code": {"type": "string"},
                "reason": {"type": "string"},
                "message": {"type": "string"},
                "status": {"type": "string"},
                "referenceError": {"type": "string"},
                "@type": {"type": "string", "enum": ["Error"]}
            }
        }),
    );
    schemas.insert(
        "MefError".into(),
        json!({
            "type": "object",
            "description": "MEF LSO Legato's `Error` with its string code. The spec lists 400, 401, 403, 408 (v5) and 500; the listener also answers 404 `notFound`, 405 `methodNotAllowed`, 413 `invalidBody` and 503 `serviceUnavailable` (retry after `Retry-After`).",
            "required": ["code", "reason"],
            "properties": {
                "code": {"type": "string", "enum": [
                    "invalidBody", "invalidQuery", "missingCredentials", "invalidCredentials",
                    "accessDenied", "forbiddenRequester", "tooManyUsers", "notFound",
                    "methodNotAllowed", "timeOut", "internalError", "serviceUnavailable"
                ]},
                "reason": {"type": "string", "maxLength": 255},
                "message": {"type": "string"},
                "referenceError": {"type": "string"}
            }
        }),
    );
}

fn operation(dialect: Dialect, kind: EventType, name: &str) -> Value {
    let family = dialect.family();
    let request = match family {
        Family::Mef => mef_request(dialect, kind, name),
        Family::Tmf | Family::Onap => tmf_request(dialect, kind, name),
    };
    let error = match family {
        Family::Mef => "#/components/schemas/MefError",
        Family::Tmf | Family::Onap => "#/components/schemas/TmfError",
    };
    let error_answer = |description: &str| {
        json!({
            "description": description,
            "content": {"application/json;charset=utf-8": {"schema": {"$ref": error}}}
        })
    };
    let mut responses = Map::new();
    if dialect.echoes_body() {
        responses.insert(
            "201".into(),
            json!({
                "description": "Notified: the event is committed. The body is the event as stored.",
                "headers": {"Location": {"description": "The stored event on the admin API.", "schema": {"type": "string"}}},
                "content": {"application/json;charset=utf-8": {"schema": request.clone()}}
            }),
        );
    } else {
        responses.insert(
            "204".into(),
            json!({"description": "No Content: the event is committed."}),
        );
    }
    let body_errors = match family {
        Family::Mef => {
            "Bad Request (`invalidBody`): the body is empty, not JSON, misses or mistypes a field, names another event type than the path, lacks the order id or (v6) the state, or reuses a stored eventId with another payload."
        }
        Family::Tmf | Family::Onap => {
            "Bad Request: codes 21–26 as in ONAP's listener, and 61–64 (no order id, no state in a state change, an unknown state). An eventType or @type that names another event than the path is code 24."
        }
    };
    responses.insert("400".into(), error_answer(body_errors));
    responses.insert(
        "401".into(),
        error_answer("Unauthorized: missing, invalid or expired credentials."),
    );
    responses.insert("403".into(), error_answer("Forbidden: a disabled client, a forbidden source, an event type the client may not send, or too many requests."));
    responses.insert(
        "404".into(),
        error_answer("Not Found: no such listener path."),
    );
    responses.insert(
        "408".into(),
        error_answer("Request Timeout: the body took too long to arrive."),
    );
    if family == Family::Tmf {
        responses.insert("409".into(), error_answer("Conflict (code 60): the eventId is stored with another payload; the stored event is kept."));
    }
    responses.insert("413".into(), error_answer("Payload Too Large."));
    responses.insert(
        "500".into(),
        error_answer("Internal Server Error: the event was not stored; retry it."),
    );
    responses.insert("503".into(), error_answer("Service Unavailable: storage unavailable or the listener overloaded; nothing was stored. Retry after `Retry-After`."));
    let success = if dialect.echoes_body() {
        "201 with the event"
    } else {
        "204"
    };
    json!({
        "tags": [dialect.as_str()],
        "operationId": format!("{}_{}", dialect.as_str().replace('-', "_"), name),
        "summary": format!("Receive a {} ({dialect})", kind.as_str()),
        "description": format!(
            "The {dialect} seller POSTs one {} here. The answer, {success}, is sent only after the event is committed. A resend of the same eventId with the same payload answers the same and stores nothing new.",
            kind.as_str()
        ),
        "security": [{"apiKey": []}, {}],
        "requestBody": {
            "required": true,
            "content": {
                "application/json;charset=utf-8": {"schema": request.clone()},
                "application/json": {"schema": request}
            }
        },
        "responses": responses
    })
}

/// The id rule of the listener: 1 to 256 characters, no control characters.
fn identifier(description: &str) -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": 256,
        "pattern": "^[^\\u0000-\\u001F\\u007F-\\u009F]+$",
        "description": description
    })
}

/// An event's date: an RFC 3339 date-time, or whole epoch milliseconds.
fn date() -> Value {
    json!({
        "description": "When the event happened: an RFC 3339 date-time, or whole milliseconds since 1970-01-01T00:00:00Z.",
        "oneOf": [
            {"type": "string", "format": "date-time"},
            {"type": "integer", "minimum": 100_000_000_000_i64, "maximum": 253402300799999_i64}
        ]
    })
}

/// A date, or null (ignored).
fn nullable_date() -> Value {
    json!({"allOf": [date()], "nullable": true})
}

/// A state, or null where the parser takes null.
fn state(nullable: bool) -> Value {
    if nullable {
        json!({"allOf": [{"$ref": "#/components/schemas/StateType"}], "nullable": true})
    } else {
        json!({"$ref": "#/components/schemas/StateType"})
    }
}

/// Either spelling of the event type the path names.
fn type_names(kind: EventType, nullable: bool) -> Value {
    let mut names = vec![json!(kind.as_str())];
    names.extend(kind.path_name().map(Value::from));
    if nullable {
        names.push(Value::Null);
    }
    json!({"type": "string", "nullable": nullable, "enum": names,
           "description": "When given, the event type of the path."})
}

fn tmf_request(dialect: Dialect, kind: EventType, name: &str) -> Value {
    let order = json!({
        "type": "object",
        "additionalProperties": true,
        "required": if kind.role() == Role::StateChange { json!(["id", "state"]) } else { json!(["id"]) },
        "properties": {
            "id": identifier("The service order's id."),
            "state": state(kind.role() != Role::StateChange),
            "serviceOrderItem": {
                "type": "array",
                "nullable": true,
                "description": "The order's items. An entry that is not an object, or has no string `id`, is kept in the body but not followed.",
                "items": {"properties": {"state": state(true)}}
            }
        }
    });
    let event = if kind.as_str().starts_with("Cancel") {
        json!({
            "type": "object",
            "required": ["cancelServiceOrder"],
            "properties": {"cancelServiceOrder": {
                "type": "object",
                "required": ["serviceOrder"],
                "properties": {"serviceOrder": {
                    "type": "object",
                    "required": ["id"],
                    "properties": {"id": identifier("The id of the order to cancel.")}
                }}
            }}
        })
    } else {
        json!({
            "type": "object",
            "description": "The order, in `serviceOrder` (v5 generated code writes `ServiceOrder`, taken too).",
            "anyOf": [{"required": ["serviceOrder"]}, {"required": ["ServiceOrder"]}],
            "properties": {"serviceOrder": order.clone(), "ServiceOrder": order}
        })
    };
    let mut required = vec!["event"];
    if dialect == Dialect::Tmf641V5 {
        required.insert(0, "@type");
    }
    json!({
        "type": "object",
        "title": format!("{} ({dialect})", kind.as_str()),
        "description": format!("Posted to …/listener/{name}. Without an eventId, the key is `sha256:` and the SHA-256 of the body's JSON with sorted keys. The date is the first given of eventTime, timeOccurred and timeOcurred."),
        "additionalProperties": true,
        "required": required,
        "anyOf": (["eventTime", "timeOccurred", "timeOcurred"].map(|name| json!({
            "required": [name],
            "properties": {name: date()}
        }))),
        "properties": {
            "eventId": {"allOf": [identifier("The key for deduplication.")], "nullable": true},
            "eventTime": nullable_date(),
            "timeOccurred": nullable_date(),
            "timeOcurred": nullable_date(),
            "eventType": type_names(kind, true),
            "@type": type_names(kind, dialect != Dialect::Tmf641V5),
            "event": event
        }
    })
}

fn mef_request(dialect: Dialect, kind: EventType, name: &str) -> Value {
    let v6 = dialect == Dialect::MefLegatoV6;
    let mut required = vec!["id"];
    let mut properties = json!({
        "id": identifier("The service order's id."),
        "href": {"description": "Where the seller serves the order; kept, and used to fetch it."}
    });
    let changes_state = matches!(kind.role(), Role::StateChange | Role::ItemStateChange);
    let states = if kind.role() == Role::ItemStateChange {
        State::MEF_ITEM
    } else {
        &State::MEF_ORDER[..]
    };
    let nullable = !(v6 && changes_state);
    let mut names: Vec<Value> = states.iter().map(|state| json!(state.as_str())).collect();
    if nullable {
        // OpenAPI 3.0: a nullable enum lists null among its values.
        names.push(Value::Null);
    }
    properties["state"] = json!({
        "type": "string",
        "enum": names,
        "nullable": nullable,
        "description": "MEF's states: TMF641's without the cancellation states (and, for an item, without partial)."
    });
    if v6 && changes_state {
        required.push("state");
    }
    if kind.role() == Role::ItemStateChange {
        properties["orderItemId"] =
            json!({"type": "string", "minLength": 1, "description": "The changed item's id."});
        required.push("orderItemId");
    }
    json!({
        "type": "object",
        "title": format!("{name} ({dialect})"),
        "description": format!("Posted to …/listener/{name}: a reference to the order, which the listener fetches from the seller."),
        "additionalProperties": true,
        "required": ["eventId", "eventTime", "eventType", "event"],
        "properties": {
            "eventId": identifier("The key for deduplication."),
            "eventTime": date(),
            "eventType": {"type": "string", "enum": [name]},
            "event": {
                "type": "object",
                "additionalProperties": true,
                "required": required,
                "properties": properties
            }
        }
    })
}
