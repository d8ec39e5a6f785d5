//! Request extractors whose every rejection is a problem+json naming what was wrong: the JSON
//! body ([`Body`]), a raw upload ([`Upload`]), the query string ([`Query`]) and path parameters
//! ([`Path`]). Handlers use these, never axum's own, so no 4xx answers in plain text.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::problem::ApiError;
use crate::registry::FieldError;

/// A body over the route's limit (or a broken upload).
fn bytes_rejection(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "the request body is larger than this route accepts (see the API limits in the \
             config, [api] and [plugins].max_component_mib)",
        )
    } else {
        ApiError::bad_request(format!("cannot read the request body: {}", e.body_text()))
    }
}

/// Is the request's content type `expected`, or (for JSON) any `+json` type?
fn content_type_is(parts: &axum::http::HeaderMap, json: bool, expected: &str) -> bool {
    let Some(ct) = parts
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == expected || (json && mime.starts_with("application/") && mime.ends_with("+json"))
}

/// A JSON body (`application/json`, or `application/merge-patch+json` for a PATCH) whose errors
/// come back as problem+json naming the field.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        if !content_type_is(req.headers(), true, "application/json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(bytes_rejection)?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request(format!(
                "the body is not valid JSON: {e} (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        if !value.is_object() {
            return Err(ApiError::invalid(vec![FieldError {
                field: String::new(),
                message: "the body must be a JSON object".into(),
            }]));
        }
        let mut value = value;
        integral_numbers(&mut value);
        crate::service::from_json(value)
            .map(Body)
            .map_err(|e| ApiError::invalid(e.0))
    }
}

/// JSON Schema counts `7.0` as an integer: numbers with nothing after the point become whole
/// numbers before the body meets typed fields.
fn integral_numbers(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < 9.0e15
            {
                // Exact below 2^53: no rounding.
                #[allow(clippy::cast_possible_truncation)]
                let i = f as i64;
                *v = serde_json::Value::from(i);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

/// A raw body (a CSV file, a component), within the route's limit.
pub struct Upload(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Upload {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(Upload)
            .map_err(bytes_rejection)
    }
}

/// A query string; an unknown key, a missing one or a bad value answers 400 naming it.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                let field = e.path().to_string();
                let message = e.into_inner().to_string();
                let field = if field == "." { String::new() } else { field };
                query_error(field, message)
            })
    }
}

/// A bad query parameter: 400, naming it.
pub fn query_error(field: impl Into<String>, message: impl Into<String>) -> ApiError {
    let field = field.into();
    let message = message.into();
    ApiError {
        status: StatusCode::BAD_REQUEST,
        kind: "bad-parameter",
        detail: if field.is_empty() {
            format!("query: {message}")
        } else {
            format!("query parameter {field}: {message}")
        },
        errors: vec![FieldError { field, message }],
    }
}

/// Path parameters; a value that does not parse answers 400 naming the parameter.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        use axum::extract::path::ErrorKind;
        // The names and raw values, to name the parameter when the error does not.
        let raw: Vec<(String, String)> =
            axum::extract::RawPathParams::from_request_parts(parts, state)
                .await
                .map(|r| {
                    r.iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect()
                })
                .unwrap_or_default();
        let name_of = |value: &str| {
            raw.iter()
                .find(|(_, v)| v == value)
                .map(|(k, _)| k.clone())
                .unwrap_or_default()
        };
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let (field, message) = match e.kind() {
                    ErrorKind::ParseErrorAtKey {
                        key,
                        value,
                        expected_type,
                    } => (
                        key.clone(),
                        format!("{value:?} is not a valid {}", plain_type(expected_type)),
                    ),
                    ErrorKind::ParseErrorAtIndex {
                        index,
                        value,
                        expected_type,
                    } => (
                        raw.get(*index)
                            .map_or_else(|| index.to_string(), |(k, _)| k.clone()),
                        format!("{value:?} is not a valid {}", plain_type(expected_type)),
                    ),
                    ErrorKind::ParseError {
                        value,
                        expected_type,
                    } => (
                        name_of(value),
                        format!("{value:?} is not a valid {}", plain_type(expected_type)),
                    ),
                    other => (String::new(), other.to_string()),
                };
                Err(ApiError {
                    status: StatusCode::BAD_REQUEST,
                    kind: "bad-parameter",
                    detail: if field.is_empty() {
                        format!("path: {message}")
                    } else {
                        format!("path parameter {field}: {message}")
                    },
                    errors: vec![FieldError { field, message }],
                })
            }
            Err(other) => Err(ApiError::bad_request(other.body_text())),
        }
    }
}

/// `u64` → "whole number", for people reading the error.
fn plain_type(t: &str) -> &'static str {
    match t {
        "u64" | "u32" | "u16" | "u8" | "usize" => "whole number (0 or more)",
        "i64" | "i32" => "whole number",
        _ => "value",
    }
}
