//! The fleet-wide replay store: etcd, reached by Envoy HTTP callouts through its gRPC API
//! (`api: grpc`, see `grpc.rs`) or its HTTP/JSON gateway (`api: json`, see `json.rs`). Pure
//! protocol, no proxy-wasm: what to send, and what etcd's answers mean in the replay model
//! of [`crate::replay`] (the same [`Record`], [`judge`](crate::replay::judge) and
//! [`settled`](crate::replay::settled) rules as the shared-data cache, applied to one etcd key per
//! id instead of a slot of entries).
//!
//! # Keys, values, leases
//!
//! * Key: `{key_prefix}{route}/{id}`, the 16-byte replay id in unpadded base64url (22
//!   characters), e.g. `/callback-guard/vobiz-voice/q83vEjRWeJq83vEjRWeJqw`.
//! * Value: [`VALUE_SIZE`] = 34 bytes: a format byte, the 16-byte fingerprint, `expires_at`
//!   and `deadline` (u32 little-endian unix seconds), the state byte and the 8-byte claim
//!   token of the reservation that wrote it (random, one per reservation).
//! * Expiry is logical (`expires_at`, exactly `window` after first sight, as in the cache)
//!   and physical (an etcd lease deletes the key later). Leases are shared per time bucket:
//!   an id first seen at `t` is attached to the lease of bucket `t / lease_bucket`, whose
//!   TTL, counted from its grant, covers the bucket's end + the window + [`CLOCK_SLACK_SECS`].
//!   The lease id is derived from the key prefix, route, window, bucket length and bucket
//!   index, so every replica computes the same one: etcd's LeaseGrant with an explicit id
//!   creates it once, and "lease already exists" means it is there to use. A reservation
//!   optimistically puts with that lease and grants it only when etcd says it is missing.
//!
//! # One reservation
//!
//! A transaction "if the key was never created, put our in-flight claim (with the bucket's
//! lease), else read it" answers most requests in one round trip, atomically for the whole
//! fleet. When the key exists, the record it holds is judged like a cache entry: another
//! fingerprint is tampering, delivered is a duplicate, a live claim is in flight; a failed
//! or lapsed claim (or a logically expired record the lease has not removed yet) is taken
//! over by a second transaction that puts only if the key's `mod_revision` is still the one
//! read. Settling compares `mod_revision` with the revision of our own claim, and, if
//! someone else re-claimed the id meanwhile, settles their in-flight claim with the same
//! fingerprint, exactly as the cache would. Every put keeps the key's lease except a first
//! sight, which takes the current bucket's.
//!
//! # Writes whose answer never came
//!
//! A transaction etcd did not answer in time may still be applied later (a stalled leader's
//! queue, the next leader). The claim token tells a reservation its own claim when it sends
//! again and reads it back; and a reservation the filter gives up on is resolved
//! ([`ResolveOp`]): each unanswered write is fenced (a first sight by creating the key as a
//! failed delivery, so the late create fails its comparison; a takeover by rewriting the
//! value it compared against, so the late one finds another revision), and a claim of ours
//! that did land is marked failed. The provider's retry then takes it over at once instead
//! of meeting `409 in_flight` until `in_flight_timeout`.
//!
//! # One raft entry for many
//!
//! Over gRPC, independent transactions on distinct keys go to etcd as one transaction of
//! nested ones ([`callout`]): the settles waiting in a worker ride on the next
//! reservation it sends, so a callback costs etcd about one proposal, not two.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::{Answer, Api, Callout, Claim, Link, OnError, Step, StoreError, Stored};
use crate::replay::{Record, State, Timing};

mod grpc;
mod json;
mod ops;
mod seam;
mod settings;
pub use super::{RoundTrip, Settled};
pub use grpc::GrpcResponse;
pub use json::Response;
pub use ops::{Followup, ReserveOp, ResolveOp, SettleOp};
pub use settings::KIND;

/// Bytes of one stored value: format, fingerprint, expires_at, deadline, state, claim.
pub const VALUE_SIZE: usize = 1 + 16 + 4 + 4 + 1 + 8;
/// Leading byte of every value; a new layout needs a new key prefix as well.
const VALUE_FORMAT: u8 = 2;
/// How far two replicas' clocks may disagree before a key could leave etcd (by its lease)
/// earlier than the window that the replica which wrote it promised.
pub const CLOCK_SLACK_SECS: u32 = 300;
/// Transactions per reservation, settle or resolve before giving up: each extra one means
/// another writer changed the key between our read and our write.
const MAX_TRANSACTIONS: u8 = 4;
/// Most transactions nested in one (etcd's `--max-txn-ops` default is 128).
pub const MAX_BATCH: usize = 64;
/// etcd's error messages (`rpctypes.ErrLeaseNotFound`, `ErrLeaseExist`).
const LEASE_NOT_FOUND: &str = "requested lease not found";
const LEASE_EXISTS: &str = "lease already exists";

/// A route's etcd store, compiled from its configuration.
#[derive(Debug, Clone)]
pub struct Etcd {
    /// The Envoy cluster the callouts go to, and their `:authority`.
    link: Link,
    /// Budget for one reservation (all its round trips), and for each try of a settle.
    pub timeout_ms: u32,
    /// Callouts a reservation may spend its budget on, each given an equal share, so that
    /// a member that does not answer leaves time to ask another.
    pub attempts: u8,
    pub on_error: OnError,
    pub api: Api,
    /// `{key_prefix}{route}/`.
    scope: String,
    timing: Timing,
    lease_bucket_secs: u32,
    /// Everything a lease id depends on besides the bucket index.
    lease_seed: [u8; 32],
}

/// The lease a first sight at some moment is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    pub ttl_secs: u64,
}

/// One conditional write: if `compare` holds, put `value` on `key`, else read `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    key: String,
    compare: Compare,
    value: [u8; VALUE_SIZE],
    lease: PutLease,
}

impl Txn {
    pub fn key(&self) -> &str {
        &self.key
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    /// `create_revision == 0`: the key does not exist.
    NeverCreated,
    /// The key is still at this revision: nobody wrote it since we read it.
    ModRevision(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PutLease {
    Attach(i64),
    /// Keep whatever lease the (existing) key has.
    Keep,
}

/// What an operation asks etcd next, in no API yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Txn(Txn),
    Grant(Lease),
}

impl Request {
    /// What it asks, in `api`'s encoding: the gateway's JSON, or the unframed protobuf.
    pub fn step(&self, api: Api) -> Step {
        match (self, api) {
            (Request::Txn(txn), Api::Json) => json::txn_step(txn),
            (Request::Txn(txn), Api::Grpc) => Step {
                path: grpc::TXN_PATH,
                message: grpc::txn_request(txn),
            },
            (Request::Grant(lease), Api::Json) => json::grant_step(*lease),
            (Request::Grant(lease), Api::Grpc) => Step {
                path: grpc::GRANT_PATH,
                message: grpc::lease_grant(lease.id, lease.ttl_secs),
            },
        }
    }

    /// The request alone on the wire, in `api`.
    pub fn call(&self, api: Api) -> Callout {
        callout(api, &[self.step(api)])
    }

    pub fn txn(&self) -> Option<&Txn> {
        match self {
            Request::Txn(txn) => Some(txn),
            Request::Grant(_) => None,
        }
    }
}

/// The callout carrying `steps` in `api`: always a POST, of a JSON body to the gateway or
/// of a framed protobuf message to the gRPC API. Several transactions (at most
/// [`MAX_BATCH`], on distinct keys, over gRPC) go as one: a transaction whose only branch
/// is each of them, nested, so etcd applies them in one raft entry and answers each (read
/// the answer with [`Answered::batch`]). The gateway takes one request per call.
pub fn callout(api: Api, steps: &[Step]) -> Callout {
    match (api, steps) {
        (Api::Grpc, [_, _, ..]) => {
            let messages: Vec<&[u8]> = steps.iter().map(|step| step.message.as_slice()).collect();
            Callout {
                path: grpc::TXN_PATH,
                content_type: grpc::CONTENT_TYPE,
                body: grpc::framed(&grpc::nest(&messages)),
            }
        }
        (Api::Grpc, steps) => Callout {
            path: steps.first().map_or(grpc::TXN_PATH, |step| step.path),
            content_type: grpc::CONTENT_TYPE,
            body: grpc::framed(steps.first().map_or(&[], |step| &step.message)),
        },
        (Api::Json, steps) => Callout {
            path: steps.first().map_or(json::TXN_PATH, |step| step.path),
            content_type: "application/json",
            body: steps
                .first()
                .map(|step| step.message.clone())
                .unwrap_or_default(),
        },
    }
}

/// A callout's answer, read in `api`.
fn answered(api: Api, response: &super::Response) -> Answered<'_> {
    match api {
        Api::Json => Answered::Json(Response {
            status: response.status,
            body: &response.body,
        }),
        Api::Grpc => Answered::Grpc(GrpcResponse {
            http_status: response.status,
            grpc_status: response.grpc_status,
            message: &response.grpc_message,
            body: &response.body,
        }),
    }
}

/// An answer from etcd, in the route's API.
#[derive(Debug, Clone, Copy)]
pub enum Answered<'a> {
    Json(Response<'a>),
    Grpc(GrpcResponse<'a>),
}

impl Answered<'_> {
    /// How the round trip went, for the store metrics.
    pub fn round_trip(self) -> RoundTrip {
        match self {
            Answered::Json(response) => json::round_trip(response),
            Answered::Grpc(response) => grpc::round_trip(response),
        }
    }

    /// The answer to one transaction.
    pub fn txn(self) -> TxnResult {
        match self {
            Answered::Json(response) => json::parse_txn(response),
            Answered::Grpc(response) => grpc::txn_result(response),
        }
    }

    /// The answer to a lease grant: granted, or there already.
    pub fn grant(self) -> Result<(), StoreError> {
        match self {
            Answered::Json(response) => json::grant_result(response),
            Answered::Grpc(response) => grpc::grant_result(response),
        }
    }

    /// The answers to the `count` transactions of a batched [`callout`] (one alone is sent
    /// plainly, so read as [`txn`](Self::txn)): each its own, or, when the call as a whole
    /// failed, that failure for each.
    pub fn batch(self, count: usize) -> Vec<TxnResult> {
        match (self, count) {
            (answer, 1) => vec![answer.txn()],
            (Answered::Grpc(response), _) => grpc::batch_results(response, count),
            (Answered::Json(_), _) => {
                vec![
                    Err(Failure::Etcd(StoreError::Malformed(
                        "a batch over the JSON gateway"
                    )));
                    count
                ]
            }
        }
    }
}

/// The next step of an operation: send this request, or here is the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress<T> {
    Send(Request),
    Done(Result<T, StoreError>),
}

impl Etcd {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cluster: String,
        authority: String,
        key_prefix: &str,
        route: &str,
        timing: Timing,
        timeout_ms: u32,
        on_error: OnError,
        lease_bucket_secs: u32,
    ) -> Self {
        let mut seed = Sha256::new();
        for part in [
            b"cg1/etcd-lease".as_slice(),
            key_prefix.as_bytes(),
            route.as_bytes(),
            &timing.window_secs.to_le_bytes(),
            &lease_bucket_secs.to_le_bytes(),
        ] {
            seed.update((part.len() as u64).to_le_bytes());
            seed.update(part);
        }
        Etcd {
            link: Link {
                cluster,
                authority,
                grpc: false,
            },
            timeout_ms,
            attempts: 1,
            on_error,
            api: Api::Json,
            scope: format!("{key_prefix}{route}/"),
            timing,
            lease_bucket_secs: lease_bucket_secs.max(1),
            lease_seed: seed.finalize().into(),
        }
    }

    /// The same store, reached through `api`.
    pub fn with_api(self, api: Api) -> Self {
        let link = Link {
            grpc: api == Api::Grpc,
            ..self.link
        };
        Etcd { api, link, ..self }
    }

    /// The same store, a reservation's budget split over `attempts` callouts (at least 1).
    pub fn with_attempts(self, attempts: u8) -> Self {
        Etcd {
            attempts: attempts.max(1),
            ..self
        }
    }

    /// The etcd key of a replay id.
    pub fn key(&self, id: &[u8; 16]) -> String {
        format!("{}{}", self.scope, URL_SAFE_NO_PAD.encode(id))
    }

    /// The lease a first sight at `now` is attached to: the one of `now`'s bucket, living
    /// until the bucket's end + the window + the clock slack (counted from `now`, which is
    /// when it is granted if it is new).
    pub fn lease(&self, now: u32) -> Lease {
        let bucket = u64::from(now / self.lease_bucket_secs);
        let bucket_end = (bucket + 1) * u64::from(self.lease_bucket_secs);
        let ttl_secs = bucket_end - u64::from(now)
            + u64::from(self.timing.window_secs)
            + u64::from(CLOCK_SLACK_SECS);
        let mut hasher = Sha256::new();
        hasher.update(self.lease_seed);
        hasher.update(bucket.to_le_bytes());
        let digest: [u8; 32] = hasher.finalize().into();
        let [a, b, c, d, e, f, g, h, ..] = digest;
        // etcd lease ids are int64; 0 asks etcd to pick one. Keep them positive, non-zero.
        let id = (u64::from_le_bytes([a, b, c, d, e, f, g, h]) >> 1).max(1);
        Lease {
            id: i64::try_from(id).unwrap_or(i64::MAX),
            ttl_secs,
        }
    }
}

pub fn encode_value(stored: &Stored) -> [u8; VALUE_SIZE] {
    let record = &stored.record;
    let mut out = [0u8; VALUE_SIZE];
    out[0] = VALUE_FORMAT;
    out[1..17].copy_from_slice(&record.fingerprint);
    out[17..21].copy_from_slice(&record.expires_at.to_le_bytes());
    out[21..25].copy_from_slice(&record.deadline.to_le_bytes());
    out[25] = record.state as u8;
    out[26..34].copy_from_slice(&stored.claim.to_le_bytes());
    out
}

/// Fails closed on anything but the exact layout.
pub fn decode_value(value: &[u8]) -> Result<Stored, StoreError> {
    let bytes: &[u8; VALUE_SIZE] = value.try_into().map_err(|_| StoreError::Corrupt)?;
    let (format, rest) = bytes.split_first().ok_or(StoreError::Corrupt)?;
    let (fingerprint, rest) = rest.split_first_chunk::<16>().ok_or(StoreError::Corrupt)?;
    let (expires_at, rest) = rest.split_first_chunk::<4>().ok_or(StoreError::Corrupt)?;
    let (deadline, rest) = rest.split_first_chunk::<4>().ok_or(StoreError::Corrupt)?;
    let (state, rest) = rest.split_first().ok_or(StoreError::Corrupt)?;
    let (&claim, true) = (
        rest.try_into().map_err(|_| StoreError::Corrupt)?,
        *format == VALUE_FORMAT,
    ) else {
        return Err(StoreError::Corrupt);
    };
    Ok(Stored {
        record: Record {
            fingerprint: *fingerprint,
            expires_at: u32::from_le_bytes(*expires_at),
            deadline: u32::from_le_bytes(*deadline),
            state: State::from_byte(*state).map_err(|_| StoreError::Corrupt)?,
        },
        claim: u64::from_le_bytes(claim),
    })
}

// ---- answers, in no API ----

/// A parsed transaction reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnReply {
    pub(crate) succeeded: bool,
    /// The store revision after the transaction: our put's `mod_revision` when it succeeded.
    pub(crate) revision: i64,
    /// The key as read by the failure branch, if it exists.
    pub(crate) kv: Option<Kv>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv {
    pub(crate) value: Vec<u8>,
    pub(crate) mod_revision: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The put named a lease etcd does not have: nothing was written.
    LeaseNotFound,
    Etcd(StoreError),
}

pub type TxnResult = Result<TxnReply, Failure>;

#[cfg(test)]
mod tests;
