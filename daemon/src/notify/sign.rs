//! Signatures: Standard Webhooks (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with
//! `whsec_…` secrets) and DingTalk robots (`timestamp` and `sign` query parameters).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// A new webhook secret: `whsec_` and 32 random bytes in base64.
pub fn new_webhook_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// The key bytes of a `whsec_…` secret, or `None` when it is not one.
pub fn webhook_key(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix("whsec_")?).ok()
}

/// The `webhook-signature` header: one `v1,<signature>` per secret, space-separated (during a
/// rotation both the new and the old secret sign).
pub fn webhook_signature<'a>(
    secrets: impl IntoIterator<Item = &'a str>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    secrets
        .into_iter()
        .filter_map(webhook_key)
        .map(|key| format!("v1,{}", STANDARD.encode(hmac(&key, &signed))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// DingTalk's `sign` for `timestamp` (Unix ms): base64 of HMAC-SHA256 over
/// `"{timestamp}\n{secret}"` keyed by the secret (URL-encode it into the query).
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    let message = format!("{timestamp_ms}\n{secret}");
    STANDARD.encode(hmac(secret.as_bytes(), message.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks specification's own example.
    #[test]
    fn the_specification_example_signs_alike() {
        let sig = webhook_signature(
            ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_are_whsec_and_random() {
        let a = new_webhook_secret();
        assert!(a.starts_with("whsec_"));
        assert_eq!(webhook_key(&a).map(|k| k.len()), Some(32));
        assert_ne!(a, new_webhook_secret());
        assert_eq!(webhook_key("not-a-secret"), None);
    }
}
