//! What every service operation shares, whatever its domain: the caller's [`Guard`] (what it
//! may touch), the error type the API maps to problem responses, and JSON merge patches
//! (RFC 7396) over a record's input form.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::registry::{Invalid, Station};
use crate::store::StoreError;

/// Why a service operation (registry, duties, and what comes after) failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    #[error("{0}")]
    Invalid(Invalid),
    #[error("{field}: {message}")]
    Conflict { field: String, message: String },
    /// The record is within the caller's reach, but this change is not theirs to make.
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Invalid> for ServiceError {
    fn from(e: Invalid) -> Self {
        ServiceError::Invalid(e)
    }
}

/// What the caller may touch. Checked on the record before and after a change, so nobody
/// moves a record out of, or into, a place they do not cover.
pub trait Guard: Sync {
    /// May the caller read and write persons in this community?
    fn community(&self, code: &str) -> bool;
    /// May the caller read and write regions at or below this code?
    fn region(&self, code: &str) -> bool;
    /// May the caller read and write this station and its volunteers?
    fn station(&self, station: &Station) -> bool;
}

/// The guard of an administrator.
pub struct Everything;

impl Guard for Everything {
    fn community(&self, _: &str) -> bool {
        true
    }
    fn region(&self, _: &str) -> bool {
        true
    }
    fn station(&self, _: &Station) -> bool {
        true
    }
}

pub(crate) fn not_found(kind: &'static str, id: impl ToString) -> ServiceError {
    ServiceError::NotFound {
        kind,
        id: id.to_string(),
    }
}

/// What a caller learns when a resident ID it sends is already registered: the record's id when
/// the record is within its reach (`visible`), otherwise one sentence that names nothing — no
/// id, no place — so the registry cannot be probed for people outside the caller's area.
pub fn resident_id_taken(kind: &str, visible: Option<u64>) -> String {
    match visible {
        Some(id) => format!("this resident ID is already registered ({kind} {id})"),
        None => "this resident ID cannot be registered here; ask the county civil-affairs \
                 bureau (民政局) to check the registry"
            .to_owned(),
    }
}

/// Applies an RFC 7396 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(fields) => {
            if !target.is_object() {
                *target = Value::Object(serde_json::Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in fields {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Deserialises a JSON value, naming the field that did not fit.
pub fn from_json<T: DeserializeOwned>(value: Value) -> Result<T, Invalid> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { String::new() } else { path };
        Invalid::one(field, e.into_inner().to_string())
    })
}

/// The input form `current` with a merge patch applied, checked by deserialising it again.
pub fn patched<I: serde::Serialize + DeserializeOwned>(
    current: &I,
    patch: &Value,
) -> Result<I, Invalid> {
    let mut value = serde_json::to_value(current).unwrap_or(Value::Null);
    merge_patch(&mut value, patch);
    from_json(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::GeoPoint;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut doc, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}}));
        merge_patch(&mut doc, &json!({"c": [1]}));
        assert_eq!(doc, json!({"a": "z", "c": [1]}));
    }

    #[test]
    fn json_errors_name_the_field() {
        let e = from_json::<GeoPoint>(json!({"lat": "north", "lon": 1.0})).err();
        assert_eq!(e.map(|e| e.0[0].field.clone()).as_deref(), Some("lat"));
    }
}
