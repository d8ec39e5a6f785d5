//! The OpenAPI document is the API: every reply a test gets through the harness is checked
//! against the document the daemon serves — the route and method are documented, the status is
//! one the operation lists, the content type is the listed one, and the body fits the schema.
//! A small JSON Schema checker (the subset utoipa emits: `$ref`, `type`, `properties`,
//! `required`, `additionalProperties`, `items`, `enum`, `oneOf`/`anyOf`/`allOf`, bounds).

use serde_json::Value;

fn document() -> &'static Value {
    linli::api::openapi::document()
}

/// The operation documented for `method` on a concrete `path` (query removed), with the
/// template it matched; `None` when no documented path matches.
fn operation(method: &str, path: &str) -> Option<(String, Option<&'static Value>)> {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    let paths = document().get("paths")?.as_object()?;
    // A literal segment beats a parameter (`/duties/{id}/preview` before `/duties/{id}/{x}`).
    let mut best: Option<(usize, &String, &Value)> = None;
    for (template, item) in paths {
        let t: Vec<&str> = template.split('/').collect();
        if t.len() != segments.len() {
            continue;
        }
        let mut literal = 0;
        let fits = t.iter().zip(&segments).all(|(a, b)| {
            if a.starts_with('{') {
                !b.is_empty()
            } else {
                literal += 1;
                a == b
            }
        });
        if fits && best.is_none_or(|(l, _, _)| literal > l) {
            best = Some((literal, template, item));
        }
    }
    let (_, template, item) = best?;
    Some((template.clone(), item.get(method.to_ascii_lowercase())))
}

/// Checks one reply; panics naming the route and what did not match.
pub fn check(method: &str, path: &str, status: u16, content_type: &str, body: &Value) {
    let Some((template, op)) = operation(method, path) else {
        // Not a documented route: the daemon must answer 404 (problem+json).
        assert!(
            status == 404 || path.starts_with("/metrics") || path.starts_with("/v1/openapi"),
            "{method} {path}: undocumented route answered {status}"
        );
        return;
    };
    let Some(op) = op else {
        assert_eq!(
            status, 405,
            "{method} {path}: the document has no {method} on {template}"
        );
        return;
    };
    let where_ = format!("{method} {template} → {status}");
    let responses = op["responses"].as_object().unwrap();
    let response = responses
        .get(&status.to_string())
        .or_else(|| responses.get("default"))
        .unwrap_or_else(|| {
            panic!(
                "{where_}: status not documented (documented: {:?}); body {body}",
                responses.keys().collect::<Vec<_>>()
            )
        });
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        return;
    };
    let mime = content_type.split(';').next().unwrap_or("").trim();
    let Some(media) = content.get(mime) else {
        if content_type.is_empty() && body.as_str() == Some("") {
            return;
        }
        panic!(
            "{where_}: content type {content_type:?} not documented (documented: {:?})",
            content.keys().collect::<Vec<_>>()
        );
    };
    if !mime.ends_with("json") {
        return;
    }
    if let Some(schema) = media.get("schema") {
        let mut errors = Vec::new();
        validate(schema, body, "$", &mut errors);
        assert!(
            errors.is_empty(),
            "{where_}: the body does not fit the document:\n  {}\nbody: {}",
            errors.join("\n  "),
            truncate(body)
        );
    }
}

fn truncate(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 2000 {
        format!("{}…", &s[..s.floor_char_boundary(2000)])
    } else {
        s
    }
}

fn resolve(schema: &Value) -> &Value {
    let mut s = schema;
    while let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap();
        s = document()
            .pointer(&format!("/components/schemas/{name}"))
            .unwrap_or_else(|| panic!("the document refers to a missing schema {r}"));
    }
    s
}

fn type_fits(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => true,
    }
}

/// Errors of `v` against `schema`, each with its JSON path.
pub fn validate(schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let s = resolve(schema);
    if s.as_bool() == Some(true) || s.as_object().is_some_and(|o| o.is_empty()) {
        return;
    }
    if let Some(t) = s.get("type") {
        let ok = match t {
            Value::String(t) => type_fits(t, v),
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(|t| type_fits(t, v)),
            _ => true,
        };
        if !ok {
            errors.push(format!("{at}: expected type {t}, got {}", short(v)));
            return;
        }
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        errors.push(format!(
            "{at}: {} is not one of {}",
            short(v),
            Value::Array(e.clone())
        ));
    }
    if let Some(c) = s.get("const")
        && c != v
    {
        errors.push(format!("{at}: {} is not {c}", short(v)));
    }
    for (key, check) in [("oneOf", 1usize), ("anyOf", 0)] {
        if let Some(options) = s.get(key).and_then(Value::as_array) {
            let fitting = options
                .iter()
                .filter(|o| {
                    let mut e = Vec::new();
                    validate(o, v, at, &mut e);
                    e.is_empty()
                })
                .count();
            let ok = if check == 1 {
                fitting == 1
            } else {
                fitting >= 1
            };
            if !ok {
                let mut detail = Vec::new();
                for o in options {
                    validate(o, v, at, &mut detail);
                }
                errors.push(format!(
                    "{at}: {key} matched {fitting} of {} options ({})",
                    options.len(),
                    detail.join("; ")
                ));
            }
        }
    }
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        for o in all {
            validate(o, v, at, errors);
        }
    }
    match v {
        Value::Object(o) => {
            let props = s.get("properties").and_then(Value::as_object);
            if let Some(req) = s.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if !o.contains_key(r) {
                        errors.push(format!("{at}: required field {r} is missing"));
                    }
                }
            }
            for (k, val) in o {
                match props.and_then(|p| p.get(k)) {
                    Some(ps) => validate(ps, val, &format!("{at}.{k}"), errors),
                    None => match s.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            errors.push(format!("{at}: field {k} is not in the schema"))
                        }
                        Some(extra @ Value::Object(_)) => {
                            validate(extra, val, &format!("{at}.{k}"), errors)
                        }
                        _ => {}
                    },
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = s.get("items") {
                for (i, x) in items.iter().enumerate() {
                    validate(item, x, &format!("{at}[{i}]"), errors);
                }
            }
            if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
                && items.len() as u64 > max
            {
                errors.push(format!("{at}: {} items, at most {max}", items.len()));
            }
        }
        Value::String(text) => {
            let n = text.chars().count() as u64;
            if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
                && n > max
            {
                errors.push(format!("{at}: {n} characters, at most {max}"));
            }
            if let Some(min) = s.get("minLength").and_then(Value::as_u64)
                && n < min
            {
                errors.push(format!("{at}: {n} characters, at least {min}"));
            }
            if s.get("format").and_then(Value::as_str) == Some("date-time")
                && chrono::DateTime::parse_from_rfc3339(text).is_err()
            {
                errors.push(format!("{at}: {text:?} is not an RFC 3339 date-time"));
            }
        }
        Value::Number(n) => {
            if let (Some(min), Some(x)) = (s.get("minimum").and_then(Value::as_f64), n.as_f64())
                && x < min
            {
                errors.push(format!("{at}: {x} is below the minimum {min}"));
            }
            if let (Some(max), Some(x)) = (s.get("maximum").and_then(Value::as_f64), n.as_f64())
                && x > max
            {
                errors.push(format!("{at}: {x} is above the maximum {max}"));
            }
        }
        _ => {}
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 80 {
        format!("{}…", &s[..s.floor_char_boundary(80)])
    } else {
        s
    }
}

#[test]
fn every_templated_path_declares_its_parameters_and_every_schema_it_names_exists() {
    let doc = document();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let names: Vec<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        for (method, op) in item.as_object().unwrap() {
            let declared: Vec<&str> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .filter_map(|p| p["name"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            for n in &names {
                assert!(
                    declared.contains(n),
                    "{method} {path} does not declare its path parameter {n}"
                );
            }
            for (status, r) in op["responses"].as_object().unwrap() {
                let problem_as_json = r
                    .pointer("/content/application~1json/schema/$ref")
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.ends_with("/Problem"));
                assert!(
                    !problem_as_json,
                    "{method} {path} {status} documents a problem as application/json"
                );
            }
        }
    }
    // Every $ref points at a schema that exists, and no two types share a name silently (the
    // plugin interface's occurrence is PluginOccurrence).
    let text = doc.to_string();
    for r in text.split("\"$ref\":\"").skip(1) {
        let name = r.split('"').next().unwrap().rsplit('/').next().unwrap();
        assert!(
            doc.pointer(&format!("/components/schemas/{name}"))
                .is_some(),
            "missing schema {name}"
        );
    }
    assert!(
        doc.pointer("/components/schemas/PluginOccurrence")
            .is_some()
    );
    // The registry's enums are published as the wire spells them.
    assert_eq!(
        doc.pointer("/components/schemas/Category/enum/0"),
        Some(&Value::from("special_difficulty_elder"))
    );
    for name in ["ElderCircumstance", "DisabilityType"] {
        let values = doc[&"components"]["schemas"][name]["enum"]
            .as_array()
            .unwrap();
        assert!(
            values.iter().all(|v| {
                let v = v.as_str().unwrap();
                v.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            }),
            "{name}: {values:?}"
        );
    }
}

#[test]
fn the_checker_catches_what_does_not_fit() {
    let mut e = Vec::new();
    let person = serde_json::json!({"$ref": "#/components/schemas/Person"});
    validate(&person, &serde_json::json!({"id": "x"}), "$", &mut e);
    assert!(e.iter().any(|m| m.contains("$.id: expected type")), "{e:?}");
    assert!(e.iter().any(|m| m.contains("required field name")), "{e:?}");
    let mut e = Vec::new();
    let cat = serde_json::json!({"$ref": "#/components/schemas/Category"});
    validate(&cat, &Value::from("SpecialDifficultyElder"), "$", &mut e);
    assert_eq!(e.len(), 1, "{e:?}");
    // A tagged variant is satisfiable: the tag and the variant's fields, nothing else.
    let target = serde_json::json!({"$ref": "#/components/schemas/Target"});
    let person = serde_json::json!({"type": "person", "id": 1, "community": "620802001001",
        "age": 82, "gender": "female"});
    let mut e = Vec::new();
    validate(&target, &person, "$", &mut e);
    assert!(e.is_empty(), "{e:?}");
    let mut wrong = person.clone();
    wrong["colour"] = "red".into();
    validate(&target, &wrong, "$", &mut e);
    assert!(!e.is_empty());
}
