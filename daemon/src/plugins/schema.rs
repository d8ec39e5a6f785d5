//! Plugin configuration schemas: the part of JSON Schema a configuration needs, checked by the
//! host when a configuration is set, when a version is deployed and by `linlid plugin check`.
//!
//! Understood: `type` (one or a list), `properties`, `required`, `additionalProperties` (a
//! boolean or a schema), `enum`, `const`, `minimum`, `maximum`, `exclusiveMinimum`,
//! `exclusiveMaximum`, `multipleOf`, `minLength`, `maxLength`, `items`, `minItems`,
//! `maxItems`, `uniqueItems`, and the annotations `title`, `description`, `default`,
//! `examples`, `$schema`, `$id`. A schema using any other keyword is refused when the plugin
//! is deployed, so nothing a plugin declares is silently left unchecked.

use serde_json::{Map, Value};

const KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "items",
    "minItems",
    "maxItems",
    "uniqueItems",
    "title",
    "description",
    "default",
    "examples",
    "$schema",
    "$id",
];

const TYPES: &[&str] = &[
    "object", "array", "string", "number", "integer", "boolean", "null",
];

/// Checks that a schema uses only what the host understands, naming the first problem by its
/// path in the schema (`properties.window.minimum`).
pub fn check_schema(schema: &Value) -> Result<(), String> {
    check_at(schema, "", 0)
}

fn check_at(schema: &Value, at: &str, depth: usize) -> Result<(), String> {
    let here = |k: &str| {
        if at.is_empty() {
            k.to_owned()
        } else {
            format!("{at}.{k}")
        }
    };
    if depth > 16 {
        return Err(format!("{at}: nested more than 16 levels deep"));
    }
    let Value::Object(m) = schema else {
        return Err(format!(
            "{}: a schema is a JSON object",
            if at.is_empty() { "config-schema" } else { at }
        ));
    };
    for (k, v) in m {
        if !KEYWORDS.contains(&k.as_str()) {
            return Err(format!(
                "{}: the host does not understand the keyword {k:?} (it understands: {})",
                here(k),
                KEYWORDS.join(", ")
            ));
        }
        match k.as_str() {
            "type" => {
                let names: Vec<&Value> = match v {
                    Value::Array(a) => a.iter().collect(),
                    other => vec![other],
                };
                if names.is_empty() {
                    return Err(format!("{}: names at least one type", here(k)));
                }
                for n in names {
                    if !n.as_str().is_some_and(|t| TYPES.contains(&t)) {
                        return Err(format!(
                            "{}: {n} is not a type ({})",
                            here(k),
                            TYPES.join(", ")
                        ));
                    }
                }
            }
            "properties" => {
                let Value::Object(props) = v else {
                    return Err(format!("{}: an object of schemas", here(k)));
                };
                for (name, p) in props {
                    check_at(p, &format!("{}.{name}", here(k)), depth + 1)?;
                }
            }
            "additionalProperties" | "items" if !v.is_boolean() => {
                check_at(v, &here(k), depth + 1)?;
            }
            "required" if !v.as_array().is_some_and(|a| a.iter().all(Value::is_string)) => {
                return Err(format!("{}: a list of property names", here(k)));
            }
            "enum" if !v.is_array() => return Err(format!("{}: a list of values", here(k))),
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum"
                if !v.as_f64().is_some_and(f64::is_finite) =>
            {
                return Err(format!("{}: a number", here(k)));
            }
            "multipleOf" if !v.as_f64().is_some_and(|m| m.is_finite() && m >= 1e-9) => {
                return Err(format!("{}: a number above 0", here(k)));
            }
            "uniqueItems" if !v.is_boolean() => {
                return Err(format!("{}: true or false", here(k)));
            }
            "minLength" | "maxLength" | "minItems" | "maxItems" if !v.is_u64() => {
                return Err(format!("{}: a whole number", here(k)));
            }
            _ => {}
        }
    }
    Ok(())
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_type(v: &Value, t: &str) -> bool {
    match t {
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        other => type_of(v) == other,
    }
}

/// Checks a configuration against a schema; the error names the field (`config.window`) and
/// says what it must be.
pub fn validate(schema: &Value, value: &Value) -> Result<(), String> {
    validate_at(schema, value, "config")
}

fn validate_at(schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    let Value::Object(s) = schema else {
        return Ok(());
    };
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            other => other.as_str().into_iter().collect(),
        };
        if !types.is_empty() && !types.iter().any(|t| is_type(v, t)) {
            return Err(format!(
                "{at} must be {} (it is {})",
                types.join(" or "),
                type_of(v)
            ));
        }
    }
    if let Some(Value::Array(allowed)) = s.get("enum")
        && !allowed.contains(v)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        return Err(format!(
            "{at} must be one of {} (it is {v})",
            list.join(", ")
        ));
    }
    if let Some(c) = s.get("const")
        && c != v
    {
        return Err(format!("{at} must be {c} (it is {v})"));
    }
    if let Some(x) = v.as_f64() {
        let bound = |k: &str| s.get(k).and_then(Value::as_f64);
        if let Some(m) = bound("minimum")
            && x < m
        {
            return Err(format!("{at} must be at least {m} (it is {v})"));
        }
        if let Some(m) = bound("maximum")
            && x > m
        {
            return Err(format!("{at} must be at most {m} (it is {v})"));
        }
        if let Some(m) = bound("exclusiveMinimum")
            && x <= m
        {
            return Err(format!("{at} must be above {m} (it is {v})"));
        }
        if let Some(m) = bound("exclusiveMaximum")
            && x >= m
        {
            return Err(format!("{at} must be below {m} (it is {v})"));
        }
        if let Some(m) = bound("multipleOf").filter(|m| *m > 0.0)
            && ((x / m) - (x / m).round()).abs() > 1e-9
        {
            return Err(format!("{at} must be a multiple of {m} (it is {v})"));
        }
    }
    if let Some(text) = v.as_str() {
        let n = text.chars().count() as u64;
        if let Some(m) = s.get("minLength").and_then(Value::as_u64)
            && n < m
        {
            return Err(format!("{at} must be at least {m} characters"));
        }
        if let Some(m) = s.get("maxLength").and_then(Value::as_u64)
            && n > m
        {
            return Err(format!("{at} must be at most {m} characters"));
        }
    }
    if let Some(items) = v.as_array() {
        let n = items.len() as u64;
        if let Some(m) = s.get("minItems").and_then(Value::as_u64)
            && n < m
        {
            return Err(format!("{at} must have at least {m} entries"));
        }
        if let Some(m) = s.get("maxItems").and_then(Value::as_u64)
            && n > m
        {
            return Err(format!("{at} must have at most {m} entries"));
        }
        if s.get("uniqueItems") == Some(&Value::Bool(true)) {
            for (i, x) in items.iter().enumerate() {
                if items[..i].contains(x) {
                    return Err(format!("{at}[{i}] repeats an earlier entry"));
                }
            }
        }
        if s.get("items") == Some(&Value::Bool(false)) && !items.is_empty() {
            return Err(format!("{at} must be an empty list"));
        }
        if let Some(item_schema) = s.get("items").filter(|i| i.is_object()) {
            for (i, x) in items.iter().enumerate() {
                validate_at(item_schema, x, &format!("{at}[{i}]"))?;
            }
        }
    }
    if let Some(obj) = v.as_object() {
        validate_object(s, obj, at)?;
    }
    Ok(())
}

fn validate_object(
    s: &Map<String, Value>,
    obj: &Map<String, Value>,
    at: &str,
) -> Result<(), String> {
    let props = s.get("properties").and_then(Value::as_object);
    if let Some(Value::Array(required)) = s.get("required") {
        for r in required.iter().filter_map(Value::as_str) {
            if !obj.contains_key(r) {
                return Err(format!("{at}.{r} is required"));
            }
        }
    }
    for (k, x) in obj {
        match props.and_then(|p| p.get(k)) {
            Some(p) => validate_at(p, x, &format!("{at}.{k}"))?,
            None => match s.get("additionalProperties") {
                Some(Value::Bool(false)) => {
                    let known: Vec<&str> = props
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    return Err(format!(
                        "{at}.{k} is not a setting of this plugin (its settings: {})",
                        known.join(", ")
                    ));
                }
                Some(extra @ Value::Object(_)) => validate_at(extra, x, &format!("{at}.{k}"))?,
                _ => {}
            },
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "window_days": {"type": "integer", "minimum": 1, "maximum": 31,
                                "description": "days a visit stays open"},
                "mode": {"enum": ["strict", "lenient"]},
                "skills": {"type": "array", "items": {"type": "string"}, "maxItems": 3}
            },
            "required": ["window_days"]
        })
    }

    #[test]
    fn configurations_are_checked_naming_the_field() {
        let s = schema();
        assert!(check_schema(&s).is_ok());
        assert!(validate(&s, &json!({"window_days": 14, "mode": "strict"})).is_ok());
        let e = validate(&s, &json!({"window_days": 45})).unwrap_err();
        assert_eq!(e, "config.window_days must be at most 31 (it is 45)");
        let e = validate(&s, &json!({"window_days": "ten"})).unwrap_err();
        assert!(e.starts_with("config.window_days must be integer"), "{e}");
        let e = validate(&s, &json!({})).unwrap_err();
        assert_eq!(e, "config.window_days is required");
        let e = validate(&s, &json!({"window_days": 3, "window": 45})).unwrap_err();
        assert!(
            e.starts_with("config.window is not a setting of this plugin"),
            "{e}"
        );
        let e = validate(&s, &json!({"window_days": 3, "mode": "loose"})).unwrap_err();
        assert!(e.contains("config.mode must be one of"), "{e}");
        let e = validate(&s, &json!({"window_days": 3, "skills": ["a", 1]})).unwrap_err();
        assert!(e.starts_with("config.skills[1] must be string"), "{e}");
        assert!(
            validate(&s, &json!({"window_days": 3.0})).is_ok(),
            "3.0 is an integer"
        );
    }

    #[test]
    fn schemas_with_keywords_the_host_does_not_know_are_refused() {
        let e = check_schema(&json!({"type": "object", "properties": {"a": {"pattern": "x"}}}))
            .unwrap_err();
        assert!(
            e.starts_with("properties.a.pattern: the host does not understand"),
            "{e}"
        );
        assert!(check_schema(&json!({"type": "thing"})).is_err());
        assert!(check_schema(&json!("object")).is_err());
        assert!(check_schema(&json!({"properties": {"a": {"minimum": "1"}}})).is_err());
        assert!(check_schema(&json!({"type": []})).is_err());
        // A schema nested past 16 levels is refused, not walked.
        let mut deep = json!({"type": "object"});
        for _ in 0..40 {
            deep = json!({"type": "object", "properties": {"a": deep}});
        }
        let e = check_schema(&deep).unwrap_err();
        assert!(e.contains("nested more than 16 levels"), "{e}");
        assert!(check_schema(&json!({"multipleOf": 0})).is_err());
        assert!(check_schema(&json!({"uniqueItems": "yes"})).is_err());
        let no_items = json!({"type": "array", "items": false});
        assert!(check_schema(&no_items).is_ok());
        assert!(validate(&no_items, &json!([1])).is_err());
    }
}
