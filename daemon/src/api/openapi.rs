//! The OpenAPI document as served: utoipa's document of the handlers' annotations, with the
//! conventions every route shares applied in one place, so no annotation can forget them:
//! - error responses are `application/problem+json` (RFC 9457);
//! - 400 (bad query, path or JSON), 401 (no or unknown token), 403 (outside the token's scope),
//!   404 (a templated path whose record is not there or not the caller's), 413/415/422 (a
//!   request body too large, of the wrong type, or with wrong fields) are documented on every
//!   operation where they can happen;
//! - a PATCH body is a JSON merge patch of its record's input form: a `…Patch` schema derived
//!   from the `…Input` schema (nothing required, `null` removes), under both
//!   `application/merge-patch+json` and `application/json`.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};
use utoipa::OpenApi;

const PROBLEM: &str = "application/problem+json";

/// The document `GET /v1/openapi.json` serves (built once).
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(super::ApiDoc::openapi()).unwrap_or(Value::Null);
        apply_conventions(&mut doc);
        doc
    })
}

fn problem_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { PROBLEM: { "schema": { "$ref": "#/components/schemas/Problem" } } }
    })
}

/// Applies the shared conventions to a document utoipa produced.
pub fn apply_conventions(doc: &mut Value) {
    let mut patches: Vec<String> = Vec::new();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let templated = path.contains('{');
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                let Some(op) = op.as_object_mut() else {
                    continue;
                };
                if method == "patch"
                    && let Some(input) = merge_patch_of(op)
                {
                    let name = input.trim_end_matches("Input").to_owned() + "Patch";
                    op.insert(
                            "requestBody".into(),
                            json!({
                                "description": format!("A JSON merge patch (RFC 7396) of {input}: send only what changes; null removes an optional field."),
                                "required": true,
                                "content": {
                                    "application/merge-patch+json": { "schema": { "$ref": format!("#/components/schemas/{name}") } },
                                    "application/json": { "schema": { "$ref": format!("#/components/schemas/{name}") } },
                                }
                            }),
                        );
                    patches.push(input);
                }
                add_error_responses(op, templated);
            }
        }
    }
    unsigned_widths(doc);
    let closed = closed_schemas(doc);
    if let Some(schemas) = doc.pointer_mut("/components/schemas") {
        merge_tagged_variants(schemas, &closed);
    }
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for input in patches {
            if let Some(schema) = schemas.get(&input).cloned() {
                let name = input.trim_end_matches("Input").to_owned() + "Patch";
                schemas.insert(name, patch_schema(schema, &input));
            }
        }
    }
}

/// utoipa publishes `u32` as `int32` (at most 2^31 - 1) with `minimum: 0`; the wire takes
/// every u32. Such integers are published as int64 with their real maximum.
fn unsigned_widths(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if o.get("format").and_then(Value::as_str) == Some("int32")
                && o.get("minimum").and_then(Value::as_f64) == Some(0.0)
            {
                o.insert("format".into(), Value::from("int64"));
                o.entry("maximum").or_insert(Value::from(u32::MAX));
            }
            o.values_mut().for_each(unsigned_widths);
        }
        Value::Array(items) => items.iter_mut().for_each(unsigned_widths),
        _ => {}
    }
}

/// The schemas that refuse unknown fields (`additionalProperties: false`), by name.
fn closed_schemas(doc: &Value) -> Map<String, Value> {
    doc.pointer("/components/schemas")
        .and_then(Value::as_object)
        .map(|all| {
            all.iter()
                .filter(|(_, s)| s.get("additionalProperties") == Some(&Value::Bool(false)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// A variant of an internally tagged enum comes out as `allOf: [{$ref: X}, {the tag}]`; when X
/// refuses unknown fields, nothing satisfies both (the tag is unknown to X). Such an `allOf` is
/// merged into one object: X's fields and the tag, still closed — what the wire really carries.
fn merge_tagged_variants(v: &mut Value, closed: &Map<String, Value>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::Array(parts)) = o.get("allOf") {
                let mut merged: Option<Map<String, Value>> = None;
                let mut ok = true;
                for part in parts {
                    let target = match part.get("$ref").and_then(Value::as_str) {
                        Some(r) => match closed.get(r.rsplit('/').next().unwrap_or("")) {
                            Some(s) => s,
                            None => {
                                ok = false;
                                break;
                            }
                        },
                        None => part,
                    };
                    let m = merged.get_or_insert_with(|| {
                        let mut m = Map::new();
                        m.insert("type".into(), Value::from("object"));
                        m.insert("properties".into(), Value::Object(Map::new()));
                        m.insert("required".into(), Value::Array(Vec::new()));
                        m.insert("additionalProperties".into(), Value::Bool(false));
                        m
                    });
                    if let Some(props) = target.get("properties").and_then(Value::as_object)
                        && let Some(Value::Object(into)) = m.get_mut("properties")
                    {
                        into.extend(props.clone());
                    }
                    if let Some(req) = target.get("required").and_then(Value::as_array)
                        && let Some(Value::Array(into)) = m.get_mut("required")
                    {
                        into.extend(req.iter().cloned());
                    }
                    if let Some(d) = target.get("description") {
                        m.entry("description").or_insert_with(|| d.clone());
                    }
                }
                if ok && let Some(m) = merged {
                    *v = Value::Object(m);
                    return;
                }
            }
            for (_, child) in o.iter_mut() {
                merge_tagged_variants(child, closed);
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|c| merge_tagged_variants(c, closed)),
        _ => {}
    }
}

/// The input schema a PATCH's annotation names ("JSON merge patch (RFC 7396) of XInput").
fn merge_patch_of(op: &Map<String, Value>) -> Option<String> {
    let d = op.get("requestBody")?.get("description")?.as_str()?;
    let name = d.rsplit(" of ").next()?.trim();
    name.ends_with("Input").then(|| name.to_owned())
}

/// `schema` with nothing required and every property also accepting `null` (which removes it).
fn patch_schema(mut schema: Value, input: &str) -> Value {
    if let Some(o) = schema.as_object_mut() {
        o.remove("required");
        o.insert(
            "description".into(),
            Value::String(format!(
                "A JSON merge patch (RFC 7396) of {input}: any subset of its fields; null removes an optional field."
            )),
        );
        if let Some(props) = o.get_mut("properties").and_then(Value::as_object_mut) {
            for (_, p) in props.iter_mut() {
                let inner = std::mem::take(p);
                *p = json!({ "anyOf": [ { "type": "null" }, inner ] });
            }
        }
    }
    schema
}

fn add_error_responses(op: &mut Map<String, Value>, templated: bool) {
    let public = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().all(|r| r.as_object().is_some_and(Map::is_empty)));
    let has_params = op
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|p| !p.is_empty());
    let body_types: Vec<String> = op
        .get("requestBody")
        .and_then(|b| b.get("content"))
        .and_then(Value::as_object)
        .map(|c| c.keys().cloned().collect())
        .unwrap_or_default();
    let json_body = body_types.iter().any(|t| t.ends_with("json"));
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    // Problem bodies are problem+json, whatever the annotation said.
    for (_, r) in responses.iter_mut() {
        let Some(content) = r.get_mut("content").and_then(Value::as_object_mut) else {
            continue;
        };
        let is_problem = content
            .get("application/json")
            .and_then(|c| c.pointer("/schema/$ref"))
            .and_then(Value::as_str)
            .is_some_and(|s| s.ends_with("/Problem"));
        if is_problem && let Some(c) = content.remove("application/json") {
            content.insert(PROBLEM.into(), c);
        }
    }
    let mut add = |status: &str, why: &str| {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| problem_response(why));
        if let Some(r) = responses.get_mut(status)
            && r.get("content").is_none()
        {
            *r = problem_response(r.get("description").and_then(Value::as_str).unwrap_or(why));
        }
    };
    if has_params || !body_types.is_empty() {
        add(
            "400",
            "A query or path parameter, or the body's JSON, is malformed; `errors` names it",
        );
    }
    if !public {
        add(
            "401",
            "No bearer token, or one that is unknown, revoked or belongs to a deactivated record",
        );
        add("403", "The token's scope does not allow this");
    }
    if templated {
        add(
            "404",
            "Not found, or outside the token's scope (the two answer alike)",
        );
    }
    if !body_types.is_empty() {
        add("413", "The body is larger than this route accepts");
    }
    if json_body {
        add("415", "The body is not sent as JSON");
        add("422", "Fields of the body are invalid; `errors` names each");
    }
}
