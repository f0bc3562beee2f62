//! etcd's HTTP/JSON gateway: the transaction and lease grant as the gateway's JSON, and
//! what it answers. Keys and values are base64, as its JSON wants bytes.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Deserializer};

use super::{
    Compare, Failure, Kv, Lease, PutLease, RoundTrip, StoreError, Txn, TxnReply, TxnResult,
    LEASE_EXISTS, LEASE_NOT_FOUND,
};
use crate::store::Step;

pub(super) const TXN_PATH: &str = "/v3/kv/txn";
const GRANT_PATH: &str = "/v3/lease/grant";

/// What came back from a callout: the HTTP status (`None` when the callout failed without
/// a response, e.g. a reset) and the body.
#[derive(Debug, Clone, Copy)]
pub struct Response<'a> {
    pub status: Option<u16>,
    pub body: &'a [u8],
}

/// "If `compare`, put `value`, else read the key". Every part is base64 or digits: nothing
/// to escape.
pub(super) fn txn_step(txn: &Txn) -> Step {
    let key = STANDARD.encode(&txn.key);
    let value = STANDARD.encode(txn.value);
    let compare = match txn.compare {
        Compare::NeverCreated => {
            format!(r#"{{"target":"CREATE","key":"{key}","create_revision":"0"}}"#)
        }
        Compare::ModRevision(revision) => {
            format!(r#"{{"target":"MOD","key":"{key}","mod_revision":"{revision}"}}"#)
        }
    };
    let lease = match txn.lease {
        PutLease::Attach(id) => format!(r#""lease":"{id}""#),
        PutLease::Keep => r#""ignore_lease":true"#.to_string(),
    };
    Step {
        path: TXN_PATH,
        message: format!(
            r#"{{"compare":[{compare}],"success":[{{"request_put":{{"key":"{key}","value":"{value}",{lease}}}}}],"failure":[{{"request_range":{{"key":"{key}"}}}}]}}"#
        )
        .into_bytes(),
    }
}

pub(super) fn grant_step(lease: Lease) -> Step {
    Step {
        path: GRANT_PATH,
        message: format!(r#"{{"ID":"{}","TTL":"{}"}}"#, lease.id, lease.ttl_secs).into_bytes(),
    }
}

/// How one callout went, for the store metrics: any answer etcd gives on purpose is `Ok`.
pub(super) fn round_trip(response: Response) -> RoundTrip {
    match response.status {
        Some(200) => RoundTrip::Ok,
        Some(504) => RoundTrip::Timeout,
        Some(_) => match error_message(response.body) {
            Some(message)
                if message.contains(LEASE_NOT_FOUND) || message.contains(LEASE_EXISTS) =>
            {
                RoundTrip::Ok
            }
            _ => RoundTrip::Error,
        },
        None => RoundTrip::Error,
    }
}

#[derive(Deserialize)]
struct TxnBody {
    header: Option<HeaderBody>,
    #[serde(default)]
    succeeded: bool,
    #[serde(default)]
    responses: Vec<ResponseOpBody>,
}

#[derive(Deserialize)]
struct HeaderBody {
    #[serde(default, deserialize_with = "int64")]
    revision: i64,
}

#[derive(Deserialize)]
struct ResponseOpBody {
    #[serde(default, alias = "responseRange")]
    response_range: Option<RangeBody>,
}

#[derive(Deserialize)]
struct RangeBody {
    #[serde(default)]
    kvs: Vec<KvBody>,
}

#[derive(Deserialize)]
struct KvBody {
    #[serde(default)]
    value: String,
    #[serde(default, alias = "modRevision", deserialize_with = "int64")]
    mod_revision: i64,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// The gateway writes int64 fields as JSON strings; accept numbers too.
fn int64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    struct Int64;
    impl serde::de::Visitor<'_> for Int64 {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an int64 as a string or number")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(E::custom)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<i64, E> {
            v.parse().map_err(E::custom)
        }
    }
    deserializer.deserialize_any(Int64)
}

/// etcd's error text in a non-200 answer, if it is one of its JSON errors.
fn error_message(body: &[u8]) -> Option<String> {
    let error: ErrorBody = serde_json::from_slice(body).ok()?;
    error.error.or(error.message)
}

/// A failed callout or an etcd error, in words for the log (bounded, escaped).
fn unavailable(response: Response) -> StoreError {
    let Some(status) = response.status else {
        return StoreError::Unavailable("no response (connection failed or reset)".into());
    };
    if status == 504 {
        return StoreError::Timeout;
    }
    let text = match error_message(response.body) {
        Some(message) => message.escape_default().to_string(),
        None => response.body[..response.body.len().min(120)]
            .escape_ascii()
            .to_string(),
    };
    let text: String = text.chars().take(160).collect();
    StoreError::Unavailable(format!("HTTP {status}: {text}"))
}

pub(super) fn parse_txn(response: Response) -> TxnResult {
    if response.status != Some(200) {
        return match error_message(response.body) {
            Some(message) if message.contains(LEASE_NOT_FOUND) => Err(Failure::LeaseNotFound),
            _ => Err(Failure::Etcd(unavailable(response))),
        };
    }
    let body: TxnBody = serde_json::from_slice(response.body)
        .map_err(|_| Failure::Etcd(StoreError::Malformed("transaction reply is not JSON")))?;
    let revision = body
        .header
        .map(|h| h.revision)
        .filter(|&r| r > 0)
        .ok_or(Failure::Etcd(StoreError::Malformed(
            "transaction reply without a revision",
        )))?;
    let kv = match body
        .responses
        .into_iter()
        .next()
        .and_then(|r| r.response_range)
    {
        Some(range) => match range.kvs.into_iter().next() {
            Some(kv) => {
                let value = STANDARD
                    .decode(kv.value)
                    .map_err(|_| Failure::Etcd(StoreError::Malformed("value is not base64")))?;
                if kv.mod_revision <= 0 {
                    return Err(Failure::Etcd(StoreError::Malformed(
                        "key without a mod_revision",
                    )));
                }
                Some(Kv {
                    value,
                    mod_revision: kv.mod_revision,
                })
            }
            None => None,
        },
        None if body.succeeded => None,
        None => {
            return Err(Failure::Etcd(StoreError::Malformed(
                "failed transaction without its range",
            )))
        }
    };
    Ok(TxnReply {
        succeeded: body.succeeded,
        revision,
        kv,
    })
}

/// A grant succeeded, or the lease is already there (granted by another replica).
pub(super) fn grant_result(response: Response) -> Result<(), StoreError> {
    match response.status {
        Some(200) => Ok(()),
        _ => match error_message(response.body) {
            Some(message) if message.contains(LEASE_EXISTS) => Ok(()),
            _ => Err(unavailable(response)),
        },
    }
}
