//! etcd's `replay.store` settings: which fields it reads, their defaults and limits.

use super::Etcd;
use crate::store::{Built, Kind, Scope, Settings};

pub const KIND: Kind = Kind {
    name: "etcd",
    reads: &[
        "cluster",
        "authority",
        "key_prefix",
        "timeout",
        "on_error",
        "lease_bucket",
        "api",
        "attempts",
    ],
    compile,
};

const DEFAULT_KEY_PREFIX: &str = "/callback-guard/";
/// A round trip to etcd on a healthy cluster takes a few milliseconds; a quarter second
/// rides out a slow fsync without holding callbacks long.
const DEFAULT_TIMEOUT_MS: u32 = 250;
const MAX_TIMEOUT_MS: u32 = 30_000;
/// 25 leases live at a time for a 24 h window; keys outlive their window by at most this.
const DEFAULT_LEASE_BUCKET_SECS: u32 = 3600;
/// Two callouts of half the budget each: a member that does not answer (stopped, cut off)
/// leaves time to ask another before the provider is answered 503.
const DEFAULT_ATTEMPTS: u8 = 2;
const MAX_ATTEMPTS: u8 = 4;

fn compile(raw: Settings, scope: &Scope) -> Built {
    let refuse = |field, problem: &str| Err((field, problem.to_string()));
    // Printable, no spaces: these go into Envoy's callout headers and etcd keys verbatim.
    let visible = |text: &str, max: usize| {
        !text.is_empty() && text.len() <= max && text.bytes().all(|b| b.is_ascii_graphic())
    };
    let Some(cluster) = raw.cluster else {
        return refuse("cluster", "is required for type etcd");
    };
    if !visible(&cluster, 255) {
        return refuse(
            "cluster",
            "must be the name of an Envoy cluster: 1-255 visible ASCII characters",
        );
    }
    let authority = raw.authority.unwrap_or_else(|| cluster.clone());
    if !visible(&authority, 255) || authority.contains('/') {
        return refuse(
            "authority",
            "must be host[:port]: 1-255 visible ASCII characters without '/'",
        );
    }
    let key_prefix = raw
        .key_prefix
        .unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_string());
    if !visible(&key_prefix, 128) || !key_prefix.ends_with('/') {
        return refuse(
            "key_prefix",
            "must be 1-128 visible ASCII characters ending with '/'",
        );
    }
    let timeout_ms = raw.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if timeout_ms == 0 || timeout_ms > MAX_TIMEOUT_MS {
        return refuse("timeout", "must be between 1ms and 30s");
    }
    let lease_bucket = raw.lease_bucket_secs.unwrap_or(DEFAULT_LEASE_BUCKET_SECS);
    if lease_bucket == 0 {
        return refuse("lease_bucket", "must be at least 1s");
    }
    let attempts = raw.attempts.unwrap_or(DEFAULT_ATTEMPTS);
    if !(1..=MAX_ATTEMPTS).contains(&attempts) {
        return Err((
            "attempts",
            format!("must be 1 to {MAX_ATTEMPTS} (callouts sharing the timeout)"),
        ));
    }
    Ok(Box::new(
        Etcd::new(
            cluster,
            authority,
            &key_prefix,
            scope.route,
            scope.timing,
            timeout_ms,
            raw.on_error.unwrap_or_default(),
            lease_bucket,
        )
        .with_api(raw.api.unwrap_or_default())
        .with_attempts(attempts),
    ))
}
