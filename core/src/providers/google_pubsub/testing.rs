//! `jwt_authn` as the unit tests stand in for it: the payload of the request's bearer
//! token, decoded but not verified (verifying is `jwt_authn`'s part), and each claim
//! serialised as Envoy's host serialises dynamic metadata.

use base64::Engine;
use serde_json::Value;

use super::NAMESPACE;
use crate::request::{Attested, RequestHead};

/// The payload `jwt_authn` would leave under `payload_in_metadata: <key>`; none for a
/// request without a bearer token.
pub struct Decoded {
    key: String,
    payload: serde_json::Map<String, Value>,
}

impl Decoded {
    pub fn of(head: &RequestHead, key: &str) -> Decoded {
        let payload = head
            .first("authorization")
            .and_then(|value| value.strip_prefix(b"Bearer "))
            .and_then(|token| token.split(|&b| b == b'.').nth(1))
            .and_then(|part| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(part)
                    .ok()
            })
            .and_then(|json| serde_json::from_slice(&json).ok())
            .unwrap_or_default();
        Decoded::payload(key, payload)
    }

    pub fn payload(key: &str, payload: serde_json::Map<String, Value>) -> Decoded {
        Decoded {
            key: key.to_string(),
            payload,
        }
    }
}

/// A value as `serializeValue` writes it (Envoy's `context.cc`).
fn serialised(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::Null => None,
        Value::String(text) if text.is_empty() => None,
        Value::String(text) => Some(text.clone().into_bytes()),
        Value::Number(number) => Some(number.as_f64()?.to_le_bytes().to_vec()),
        Value::Bool(flag) => Some(vec![u8::from(*flag)]),
        // A list: pairs of each element and an empty value.
        Value::Array(items) => {
            let items: Vec<Vec<u8>> = items.iter().map(serialised).collect::<Option<_>>()?;
            let mut out = (items.len() as u32).to_le_bytes().to_vec();
            for item in &items {
                out.extend((item.len() as u32).to_le_bytes());
                out.extend(0u32.to_le_bytes());
            }
            for item in &items {
                out.extend(item);
                out.extend([0, 0]);
            }
            Some(out)
        }
        Value::Object(_) => None,
    }
}

impl Attested for Decoded {
    fn metadata(&self, namespace: &str, key: &str, name: &str) -> Option<Vec<u8>> {
        if namespace != NAMESPACE || key != self.key {
            return None;
        }
        serialised(self.payload.get(name)?)
    }
}
