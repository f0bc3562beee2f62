//! The fleet-wide replay store: etcd, reached by Envoy HTTP callouts through its gRPC API
//! (`api: grpc`, see [`grpc`]) or its HTTP/JSON gateway (`api: json`). Pure protocol, no
//! proxy-wasm: what to send, and what etcd's answers mean in the
//! replay model of [`crate::replay`] (the same [`Record`], [`judge`](replay::judge) and
//! [`settled`](replay::settled) rules as the shared-data cache, applied to one etcd key per
//! id instead of a slot of entries).
//!
//! # Keys, values, leases
//!
//! * Key: `{key_prefix}{route}/{id}`, the 16-byte replay id in unpadded base64url (22
//!   characters), e.g. `/callback-guard/vobiz-voice/q83vEjRWeJq83vEjRWeJqw`.
//! * Value: [`VALUE_SIZE`] = 26 bytes: a format byte, the 16-byte fingerprint, `expires_at`
//!   and `deadline` (u32 little-endian unix seconds) and the state byte.
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

use std::fmt;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};

use crate::replay::{self, Outcome, Record, Reservation, State, Timing};

mod grpc;
pub use grpc::GrpcResponse;

/// Bytes of one stored value: format, fingerprint, expires_at, deadline, state.
pub const VALUE_SIZE: usize = 1 + 16 + 4 + 4 + 1;
/// Leading byte of every value; a new layout needs a new key prefix as well.
const VALUE_FORMAT: u8 = 1;
/// How far two replicas' clocks may disagree before a key could leave etcd (by its lease)
/// earlier than the window that the replica which wrote it promised.
pub const CLOCK_SLACK_SECS: u32 = 300;
/// Transactions per reservation or settle before giving up: each extra one means another
/// writer changed the key between our read and our write.
const MAX_TRANSACTIONS: u8 = 4;
const TXN_PATH: &str = "/v3/kv/txn";
const GRANT_PATH: &str = "/v3/lease/grant";
/// etcd's error messages (`rpctypes.ErrLeaseNotFound`, `ErrLeaseExist`).
const LEASE_NOT_FOUND: &str = "requested lease not found";
const LEASE_EXISTS: &str = "lease already exists";

/// How the filter talks to etcd. Both read and write the same keys and values, so replicas
/// using either share one store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// etcd's HTTP/JSON gateway (`/v3/kv/txn`), over any HTTP version.
    #[default]
    Json,
    /// etcd's gRPC API: the cluster must speak HTTP/2. Half etcd's CPU per call.
    Grpc,
}

/// What a route does when etcd is slow, down or answers nonsense.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// 503 `replay_store_unavailable`: nothing passes unreserved.
    #[default]
    FailClosed,
    /// Forward, judged by this Envoy's own memory alone (as the shared-data store would),
    /// and count it in `callback_guard_store_fail_open`.
    FailOpen,
}

/// A route's etcd store, compiled from its configuration.
#[derive(Debug, Clone)]
pub struct Etcd {
    /// The Envoy cluster the callouts go to.
    pub cluster: String,
    /// `:authority` of the callouts.
    pub authority: String,
    /// Budget for one reservation (all its round trips), and for one settle.
    pub timeout_ms: u32,
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

/// One HTTP request to etcd: always a POST, of a JSON body to the gateway or of a framed
/// protobuf message to the gRPC API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub path: &'static str,
    /// The gateway's JSON request; empty for gRPC.
    pub body: String,
    /// The gRPC request, length-prefixed; empty for the gateway.
    pub message: Vec<u8>,
}

impl Call {
    /// What goes on the wire, and its content type.
    pub fn payload(&self) -> (&[u8], &'static str) {
        if self.message.is_empty() {
            (self.body.as_bytes(), "application/json")
        } else {
            (&self.message, "application/grpc")
        }
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
            Answered::Json(response) => round_trip(response),
            Answered::Grpc(response) => grpc::round_trip(response),
        }
    }
}

/// What came back from a callout: the HTTP status (`None` when the callout failed without
/// a response, e.g. a reset) and the body.
#[derive(Debug, Clone, Copy)]
pub struct Response<'a> {
    pub status: Option<u16>,
    pub body: &'a [u8],
}

/// How one round trip went, for the store metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundTrip {
    /// etcd answered (including the lease answers the protocol expects).
    Ok,
    Error,
    /// No answer within the timeout (Envoy's 504 for a timed-out callout, or etcd's own).
    Timeout,
}

/// Why etcd could not decide. Handled by the route's [`OnError`] policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtcdError {
    /// No answer within the route's timeout.
    Timeout,
    /// The callout failed, or etcd answered with an error.
    Unavailable(String),
    /// etcd's answer is not what its gateway sends.
    Malformed(&'static str),
    /// A stored value this format cannot read.
    Corrupt,
    /// Other writers kept changing the key between our reads and writes.
    Contention,
}

impl fmt::Display for EtcdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EtcdError::Timeout => f.write_str("etcd did not answer within the timeout"),
            EtcdError::Unavailable(detail) => write!(f, "etcd unavailable: {detail}"),
            EtcdError::Malformed(what) => write!(f, "etcd answer malformed: {what}"),
            EtcdError::Corrupt => f.write_str("etcd holds a value this format cannot read"),
            EtcdError::Contention => f.write_str("etcd key contended; transactions exhausted"),
        }
    }
}

/// The next step of an operation: send this call, or here is the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress<T> {
    Call(Call),
    Done(Result<T, EtcdError>),
}

/// An id claimed in etcd by this request: what settling it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// The key's `mod_revision` after our claim was written.
    pub revision: i64,
    pub record: Record,
}

/// etcd's decision on a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// `Fresh` or `Retry` (claimed), `Tampered`, `Duplicate` or `InFlight` (refused).
    pub reservation: Reservation,
    /// The record now in etcd: our claim, or what refused us.
    pub record: Record,
    /// Its `mod_revision`.
    pub revision: i64,
}

impl Answer {
    /// Our claim, if the request may go on.
    pub fn claim(&self) -> Option<Claim> {
        matches!(self.reservation, Reservation::Fresh | Reservation::Retry).then_some(Claim {
            revision: self.revision,
            record: self.record,
        })
    }

    /// What the local first level may remember of this answer. Our own claim and a
    /// delivered record are facts this Envoy can answer from; someone else's claim (in
    /// flight or failed) is remembered as failed: its fingerprint still catches tampering
    /// locally, while an identical request asks etcd again, which alone knows how the other
    /// replica's delivery ends.
    pub fn local_record(&self) -> Record {
        match (self.reservation, self.record.state) {
            (Reservation::Fresh | Reservation::Retry, _) | (_, State::Delivered) => self.record,
            _ => Record {
                state: State::Failed,
                ..self.record
            },
        }
    }
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
            cluster,
            authority,
            timeout_ms,
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
        Etcd { api, ..self }
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

    /// Starts reserving `id` for a request with `fingerprint` at `now`: send the call, feed
    /// each response to [`ReserveOp::on_response`].
    pub fn reserve(&self, id: &[u8; 16], fingerprint: &[u8; 16], now: u32) -> (ReserveOp, Call) {
        let fresh = self.timing.first_sight(fingerprint, now);
        let mut op = ReserveOp {
            api: self.api,
            key: self.key(id),
            fingerprint: *fingerprint,
            now,
            timing: self.timing,
            lease: self.lease(now),
            granted: false,
            transactions: 0,
            pending: Awaiting::Txn(Write::Create(fresh)),
        };
        let call = op.txn(Write::Create(fresh));
        (op, call)
    }

    /// Starts settling our claim on `id`: the request ended with `outcome` at `now`.
    pub fn settle(
        &self,
        id: &[u8; 16],
        claim: Claim,
        outcome: Outcome,
        now: u32,
    ) -> Option<(SettleOp, Call)> {
        let record = replay::settled(&claim.record, &claim.record.fingerprint, outcome)?;
        let mut op = SettleOp {
            api: self.api,
            key: self.key(id),
            fingerprint: claim.record.fingerprint,
            outcome,
            now,
            transactions: 0,
        };
        let call = op.txn(claim.revision, &record);
        Some((op, call))
    }
}

/// What a pending transaction writes if its comparison holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// A first sight on a key that was never created (or was deleted by its lease).
    Create(Record),
    /// A first sight over a logically expired record at this revision: new bucket lease.
    Renew { record: Record, revision: i64 },
    /// A retry's claim over a failed or lapsed one at this revision: the lease stays.
    Reclaim { record: Record, revision: i64 },
}

impl Write {
    fn record(&self) -> Record {
        match *self {
            Write::Create(record) | Write::Renew { record, .. } | Write::Reclaim { record, .. } => {
                record
            }
        }
    }

    fn reservation(&self) -> Reservation {
        match self {
            Write::Create(_) | Write::Renew { .. } => Reservation::Fresh,
            Write::Reclaim { .. } => Reservation::Retry,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    Txn(Write),
    /// Granting the bucket's lease; then this write is sent again.
    Grant(Write),
}

/// A reservation in progress (owned, so the filter can keep it across callbacks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveOp {
    api: Api,
    key: String,
    fingerprint: [u8; 16],
    now: u32,
    timing: Timing,
    lease: Lease,
    granted: bool,
    transactions: u8,
    pending: Awaiting,
}

impl ReserveOp {
    fn txn(&mut self, write: Write) -> Call {
        self.transactions += 1;
        self.pending = Awaiting::Txn(write);
        let value = encode_value(&write.record());
        let (compare, lease) = match write {
            Write::Create(_) => (Compare::NeverCreated, PutLease::Attach(self.lease.id)),
            Write::Renew { revision, .. } => (
                Compare::ModRevision(revision),
                PutLease::Attach(self.lease.id),
            ),
            Write::Reclaim { revision, .. } => (Compare::ModRevision(revision), PutLease::Keep),
        };
        txn_call(self.api, &self.key, compare, &value, lease)
    }

    /// Feeds the answer to the last call, in the route's API.
    pub fn on_answer(&mut self, answer: Answered) -> Progress<Answer> {
        match answer {
            Answered::Json(response) => self.on_response(response),
            Answered::Grpc(response) => match self.pending {
                Awaiting::Grant(write) => self.granted(write, grpc::grant_result(response)),
                Awaiting::Txn(write) => self.replied(write, grpc::txn_result(response)),
            },
        }
    }

    /// Feeds the gateway's response to the last call.
    pub fn on_response(&mut self, response: Response) -> Progress<Answer> {
        match self.pending {
            Awaiting::Grant(write) => self.granted(write, grant_result(response)),
            Awaiting::Txn(write) => self.replied(write, parse_txn(response)),
        }
    }

    fn granted(&mut self, write: Write, result: Result<(), EtcdError>) -> Progress<Answer> {
        match result {
            Ok(()) => {
                self.granted = true;
                self.transactions -= 1; // the same transaction again, not a new attempt
                Progress::Call(self.txn(write))
            }
            Err(error) => Progress::Done(Err(error)),
        }
    }

    fn replied(&mut self, write: Write, reply: Result<TxnReply, Failure>) -> Progress<Answer> {
        match reply {
            Ok(reply) if reply.succeeded => Progress::Done(Ok(Answer {
                reservation: write.reservation(),
                record: write.record(),
                revision: reply.revision,
            })),
            Ok(reply) => self.decide(reply.kv),
            Err(Failure::LeaseNotFound) if !self.granted => {
                self.pending = Awaiting::Grant(write);
                Progress::Call(grant_call(self.api, self.lease))
            }
            Err(Failure::LeaseNotFound) => Progress::Done(Err(EtcdError::Unavailable(
                "the lease was not found even after granting it".into(),
            ))),
            Err(Failure::Etcd(error)) => Progress::Done(Err(error)),
        }
    }

    /// The key exists (or existed): judge what it holds, like a cache entry.
    fn decide(&mut self, kv: Option<Kv>) -> Progress<Answer> {
        let write = match kv {
            // Gone between our comparison and now (its lease expired): create it.
            None => Write::Create(self.timing.first_sight(&self.fingerprint, self.now)),
            Some(kv) => {
                let record = match decode_value(&kv.value) {
                    Ok(record) => record,
                    Err(error) => return Progress::Done(Err(error)),
                };
                if !record.live(self.now) {
                    Write::Renew {
                        record: self.timing.first_sight(&self.fingerprint, self.now),
                        revision: kv.mod_revision,
                    }
                } else {
                    match replay::judge(&record, &self.fingerprint, self.now) {
                        Reservation::Retry => Write::Reclaim {
                            record: self.timing.reclaim(&record, self.now),
                            revision: kv.mod_revision,
                        },
                        refusal => {
                            return Progress::Done(Ok(Answer {
                                reservation: refusal,
                                record,
                                revision: kv.mod_revision,
                            }))
                        }
                    }
                }
            }
        };
        if self.transactions >= MAX_TRANSACTIONS {
            return Progress::Done(Err(EtcdError::Contention));
        }
        Progress::Call(self.txn(write))
    }
}

/// How a settle ended (all are fine: a settle never fails a request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Written,
    /// Nothing to settle any more: delivered or settled by another, re-claimed with another
    /// fingerprint, expired or gone.
    Unchanged,
}

/// A settle in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettleOp {
    api: Api,
    key: String,
    fingerprint: [u8; 16],
    outcome: Outcome,
    now: u32,
    transactions: u8,
}

impl SettleOp {
    fn txn(&mut self, revision: i64, record: &Record) -> Call {
        self.transactions += 1;
        txn_call(
            self.api,
            &self.key,
            Compare::ModRevision(revision),
            &encode_value(record),
            PutLease::Keep,
        )
    }

    /// Feeds the answer to the last call, in the route's API.
    pub fn on_answer(&mut self, answer: Answered) -> Progress<Settled> {
        match answer {
            Answered::Json(response) => self.on_response(response),
            Answered::Grpc(response) => self.replied(grpc::txn_result(response)),
        }
    }

    /// Feeds the gateway's response to the last call.
    pub fn on_response(&mut self, response: Response) -> Progress<Settled> {
        self.replied(parse_txn(response))
    }

    fn replied(&mut self, reply: Result<TxnReply, Failure>) -> Progress<Settled> {
        let reply = match reply {
            Ok(reply) => reply,
            Err(Failure::Etcd(error)) => return Progress::Done(Err(error)),
            // Settles never attach a lease.
            Err(Failure::LeaseNotFound) => {
                return Progress::Done(Err(EtcdError::Malformed("lease error on a settle")))
            }
        };
        if reply.succeeded {
            return Progress::Done(Ok(Settled::Written));
        }
        let Some(kv) = reply.kv else {
            return Progress::Done(Ok(Settled::Unchanged));
        };
        let record = match decode_value(&kv.value) {
            Ok(record) => record,
            Err(error) => return Progress::Done(Err(error)),
        };
        // Re-claimed since ours (our claim lapsed): settle the in-flight claim of the same
        // request, as the cache does; anything else stays as it is.
        match replay::settled(&record, &self.fingerprint, self.outcome) {
            Some(settled) if record.live(self.now) => {
                if self.transactions >= MAX_TRANSACTIONS {
                    return Progress::Done(Err(EtcdError::Contention));
                }
                Progress::Call(self.txn(kv.mod_revision, &settled))
            }
            _ => Progress::Done(Ok(Settled::Unchanged)),
        }
    }
}

/// How one callout went, for the store metrics: any answer etcd gives on purpose is `Ok`.
pub fn round_trip(response: Response) -> RoundTrip {
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

pub fn encode_value(record: &Record) -> [u8; VALUE_SIZE] {
    let mut out = [0u8; VALUE_SIZE];
    out[0] = VALUE_FORMAT;
    out[1..17].copy_from_slice(&record.fingerprint);
    out[17..21].copy_from_slice(&record.expires_at.to_le_bytes());
    out[21..25].copy_from_slice(&record.deadline.to_le_bytes());
    out[25] = record.state as u8;
    out
}

/// Fails closed on anything but the exact layout.
pub fn decode_value(value: &[u8]) -> Result<Record, EtcdError> {
    let bytes: &[u8; VALUE_SIZE] = value.try_into().map_err(|_| EtcdError::Corrupt)?;
    let (format, rest) = bytes.split_first().ok_or(EtcdError::Corrupt)?;
    let (fingerprint, rest) = rest.split_first_chunk::<16>().ok_or(EtcdError::Corrupt)?;
    let (expires_at, rest) = rest.split_first_chunk::<4>().ok_or(EtcdError::Corrupt)?;
    let (deadline, rest) = rest.split_first_chunk::<4>().ok_or(EtcdError::Corrupt)?;
    let (&[state], true) = (rest, *format == VALUE_FORMAT) else {
        return Err(EtcdError::Corrupt);
    };
    Ok(Record {
        fingerprint: *fingerprint,
        expires_at: u32::from_le_bytes(*expires_at),
        deadline: u32::from_le_bytes(*deadline),
        state: State::from_byte(state).map_err(|_| EtcdError::Corrupt)?,
    })
}

enum Compare {
    /// `create_revision == 0`: the key does not exist.
    NeverCreated,
    /// The key is still at this revision: nobody wrote it since we read it.
    ModRevision(i64),
}

enum PutLease {
    Attach(i64),
    /// Keep whatever lease the (existing) key has.
    Keep,
}

/// "If `compare`, put `value`, else read the key", in `api`.
fn txn_call(api: Api, key: &str, compare: Compare, value: &[u8], lease: PutLease) -> Call {
    match api {
        Api::Json => json_txn_call(
            &STANDARD.encode(key),
            compare,
            &STANDARD.encode(value),
            lease,
        ),
        Api::Grpc => Call {
            path: grpc::TXN_PATH,
            body: String::new(),
            message: grpc::txn(key.as_bytes(), &compare, value, &lease),
        },
    }
}

/// [`txn_call`] for the gateway, with key and value base64 as its JSON wants bytes. Every
/// part is base64 or digits: nothing to escape.
fn json_txn_call(key: &str, compare: Compare, value: &str, lease: PutLease) -> Call {
    let compare = match compare {
        Compare::NeverCreated => {
            format!(r#"{{"target":"CREATE","key":"{key}","create_revision":"0"}}"#)
        }
        Compare::ModRevision(revision) => {
            format!(r#"{{"target":"MOD","key":"{key}","mod_revision":"{revision}"}}"#)
        }
    };
    let lease = match lease {
        PutLease::Attach(id) => format!(r#""lease":"{id}""#),
        PutLease::Keep => r#""ignore_lease":true"#.to_string(),
    };
    Call {
        path: TXN_PATH,
        body: format!(
            r#"{{"compare":[{compare}],"success":[{{"request_put":{{"key":"{key}","value":"{value}",{lease}}}}}],"failure":[{{"request_range":{{"key":"{key}"}}}}]}}"#
        ),
        message: Vec::new(),
    }
}

fn grant_call(api: Api, lease: Lease) -> Call {
    match api {
        Api::Json => Call {
            path: GRANT_PATH,
            body: format!(r#"{{"ID":"{}","TTL":"{}"}}"#, lease.id, lease.ttl_secs),
            message: Vec::new(),
        },
        Api::Grpc => Call {
            path: grpc::GRANT_PATH,
            body: String::new(),
            message: grpc::lease_grant(lease.id, lease.ttl_secs),
        },
    }
}

// ---- responses ----

/// A parsed transaction reply.
struct TxnReply {
    succeeded: bool,
    /// The store revision after the transaction: our put's `mod_revision` when it succeeded.
    revision: i64,
    /// The key as read by the failure branch, if it exists.
    kv: Option<Kv>,
}

struct Kv {
    value: Vec<u8>,
    mod_revision: i64,
}

enum Failure {
    LeaseNotFound,
    Etcd(EtcdError),
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
fn unavailable(response: Response) -> EtcdError {
    let Some(status) = response.status else {
        return EtcdError::Unavailable("no response (connection failed or reset)".into());
    };
    if status == 504 {
        return EtcdError::Timeout;
    }
    let text = match error_message(response.body) {
        Some(message) => message.escape_default().to_string(),
        None => response.body[..response.body.len().min(120)]
            .escape_ascii()
            .to_string(),
    };
    let text: String = text.chars().take(160).collect();
    EtcdError::Unavailable(format!("HTTP {status}: {text}"))
}

fn parse_txn(response: Response) -> Result<TxnReply, Failure> {
    if response.status != Some(200) {
        return match error_message(response.body) {
            Some(message) if message.contains(LEASE_NOT_FOUND) => Err(Failure::LeaseNotFound),
            _ => Err(Failure::Etcd(unavailable(response))),
        };
    }
    let body: TxnBody = serde_json::from_slice(response.body)
        .map_err(|_| Failure::Etcd(EtcdError::Malformed("transaction reply is not JSON")))?;
    let revision = body
        .header
        .map(|h| h.revision)
        .filter(|&r| r > 0)
        .ok_or(Failure::Etcd(EtcdError::Malformed(
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
                    .map_err(|_| Failure::Etcd(EtcdError::Malformed("value is not base64")))?;
                if kv.mod_revision <= 0 {
                    return Err(Failure::Etcd(EtcdError::Malformed(
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
            return Err(Failure::Etcd(EtcdError::Malformed(
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
fn grant_result(response: Response) -> Result<(), EtcdError> {
    match response.status {
        Some(200) => Ok(()),
        _ => match error_message(response.body) {
            Some(message) if message.contains(LEASE_EXISTS) => Ok(()),
            _ => Err(unavailable(response)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const T0: u32 = 1_774_432_800; // 2026-03-25T10:00:00Z, a whole hour
    const WINDOW: u32 = 86_400;
    const INFLIGHT: u32 = 30;
    const HOUR: u32 = 3600;
    const TIMING: Timing = Timing {
        window_secs: WINDOW,
        inflight_secs: INFLIGHT,
    };

    fn etcd() -> Etcd {
        Etcd::new(
            "etcd".into(),
            "etcd".into(),
            "/callback-guard/",
            "vobiz-voice",
            TIMING,
            250,
            OnError::FailClosed,
            HOUR,
        )
    }

    fn id(n: u8) -> [u8; 16] {
        [n; 16]
    }

    fn fp(c: char) -> [u8; 16] {
        [c as u8; 16]
    }

    fn json(call: &Call) -> Value {
        serde_json::from_str(&call.body).unwrap()
    }

    fn b64(bytes: &[u8]) -> String {
        STANDARD.encode(bytes)
    }

    fn ok(body: &str) -> Response<'_> {
        Response {
            status: Some(200),
            body: body.as_bytes(),
        }
    }

    fn status(code: u16, body: &str) -> Response<'_> {
        Response {
            status: Some(code),
            body: body.as_bytes(),
        }
    }

    // Recorded from etcd 3.4.23 (Debian's etcd-server), the gateway's exact shapes.
    const HEADER: &str = r#""header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"REV","raft_term":"2"}"#;

    fn succeeded(revision: i64) -> String {
        format!(
            r#"{{{},"succeeded":true,"responses":[{{"response_put":{{"header":{{"revision":"{revision}"}}}}}}]}}"#,
            HEADER.replace("REV", &revision.to_string())
        )
    }

    fn failed_with(key: &str, value: &[u8], mod_revision: i64) -> String {
        format!(
            r#"{{{},"responses":[{{"response_range":{{"header":{{"revision":"40"}},"kvs":[{{"key":"{}","create_revision":"2","mod_revision":"{mod_revision}","version":"1","value":"{}","lease":"12345"}}],"count":"1"}}}}]}}"#,
            HEADER.replace("REV", "40"),
            b64(key.as_bytes()),
            b64(value)
        )
    }

    fn failed_empty() -> String {
        format!(
            r#"{{{},"responses":[{{"response_range":{{"header":{{"revision":"40"}}}}}}]}}"#,
            HEADER.replace("REV", "40")
        )
    }

    const LEASE_MISSING: &str = r#"{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}"#;
    const LEASE_THERE: &str = r#"{"error":"etcdserver: lease already exists","message":"etcdserver: lease already exists","code":9}"#;

    fn record(c: char, state: State, at: u32) -> Record {
        Record {
            fingerprint: fp(c),
            expires_at: at + WINDOW,
            deadline: at + INFLIGHT,
            state,
        }
    }

    fn answer(progress: Progress<Answer>) -> Answer {
        match progress {
            Progress::Done(Ok(answer)) => answer,
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    fn call<T: fmt::Debug>(progress: Progress<T>) -> Call {
        match progress {
            Progress::Call(call) => call,
            other => panic!("expected a call, got {other:?}"),
        }
    }

    fn error<T: fmt::Debug>(progress: Progress<T>) -> EtcdError {
        match progress {
            Progress::Done(Err(error)) => error,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn keys_are_prefix_route_and_base64url_id() {
        let key = etcd().key(&[0xfb; 16]);
        assert_eq!(key, "/callback-guard/vobiz-voice/-_v7-_v7-_v7-_v7-_v7-w");
        assert_eq!(key.len(), "/callback-guard/vobiz-voice/".len() + 22);
    }

    #[test]
    fn values_are_26_bytes_and_decode_strictly() {
        let r = record('a', State::Failed, T0);
        let bytes = encode_value(&r);
        assert_eq!(bytes.len(), 26);
        assert_eq!(bytes[0], 1);
        assert_eq!(&bytes[1..17], &fp('a'));
        assert_eq!(bytes[25], 2);
        assert_eq!(decode_value(&bytes), Ok(r));
        let mut bad_state = bytes;
        bad_state[25] = 3;
        let mut bad_format = bytes;
        bad_format[0] = 2;
        for bad in [
            &bytes[..25],
            &[bytes.as_slice(), b"x"].concat(),
            &bad_state,
            &bad_format,
            b"",
        ] {
            assert_eq!(decode_value(bad), Err(EtcdError::Corrupt), "{bad:?}");
        }
    }

    #[test]
    fn leases_are_shared_per_bucket_and_outlive_the_window() {
        let e = etcd();
        let first = e.lease(T0);
        let last = e.lease(T0 + HOUR - 1);
        assert_eq!(first.id, last.id, "one lease for the whole hour");
        assert_ne!(first.id, e.lease(T0 + HOUR).id, "the next hour has its own");
        assert!(first.id > 0);
        // Granted at the start of the bucket it lives a bucket + window + slack; an id
        // first seen at the end of the bucket still has its whole window.
        assert_eq!(first.ttl_secs, u64::from(HOUR + WINDOW + CLOCK_SLACK_SECS));
        assert_eq!(last.ttl_secs, u64::from(1 + WINDOW + CLOCK_SLACK_SECS));
        // A replica whose clock is up to the slack ahead granted it: ids first seen at the
        // bucket's end by this replica still live their window.
        let early = e.lease(T0 + CLOCK_SLACK_SECS);
        let expires = u64::from(T0) + early.ttl_secs; // granted at real time T0
        assert!(expires >= u64::from(T0 + HOUR + WINDOW));
        // The id depends on everything that changes what a key needs.
        let other = |prefix: &str, route: &str, window: u32, bucket: u32| {
            let timing = Timing {
                window_secs: window,
                inflight_secs: INFLIGHT,
            };
            Etcd::new(
                "c".into(),
                "c".into(),
                prefix,
                route,
                timing,
                1,
                OnError::FailOpen,
                bucket,
            )
            .lease(T0)
            .id
        };
        let base = other("/callback-guard/", "vobiz-voice", WINDOW, HOUR);
        assert_eq!(base, first.id, "cluster, timeout and policy do not matter");
        assert_ne!(base, other("/other/", "vobiz-voice", WINDOW, HOUR));
        assert_ne!(base, other("/callback-guard/", "kyc", WINDOW, HOUR));
        assert_ne!(
            base,
            other("/callback-guard/", "vobiz-voice", WINDOW + 1, HOUR)
        );
        assert_ne!(
            base,
            other("/callback-guard/", "vobiz-voice", WINDOW, 2 * HOUR)
        );
    }

    #[test]
    fn first_sight_is_one_transaction_with_the_bucket_lease() {
        let e = etcd();
        let (mut op, first) = e.reserve(&id(1), &fp('a'), T0 + 10);
        assert_eq!(first.path, "/v3/kv/txn");
        let key = b64(e.key(&id(1)).as_bytes());
        let fresh = TIMING.first_sight(&fp('a'), T0 + 10);
        let lease = e.lease(T0 + 10).id.to_string();
        assert_eq!(
            json(&first),
            serde_json::json!({
                "compare": [{"target": "CREATE", "key": key, "create_revision": "0"}],
                "success": [{"request_put": {"key": key, "value": b64(&encode_value(&fresh)), "lease": lease}}],
                "failure": [{"request_range": {"key": key}}],
            })
        );
        let a = answer(op.on_response(ok(&succeeded(41))));
        assert_eq!(a.reservation, Reservation::Fresh);
        assert_eq!(a.record, fresh);
        assert_eq!(
            a.claim(),
            Some(Claim {
                revision: 41,
                record: fresh
            })
        );
        assert_eq!(a.local_record(), fresh);
    }

    #[test]
    fn a_missing_lease_is_granted_then_the_transaction_resent() {
        let e = etcd();
        let (mut op, first) = e.reserve(&id(1), &fp('a'), T0);
        let grant = call(op.on_response(status(404, LEASE_MISSING)));
        assert_eq!(grant.path, "/v3/lease/grant");
        let lease = e.lease(T0);
        assert_eq!(
            json(&grant),
            serde_json::json!({"ID": lease.id.to_string(), "TTL": lease.ttl_secs.to_string()})
        );
        // Granted by us, or already by another replica: both mean "use it".
        for granted in [
            ok(r#"{"header":{"revision":"3"},"ID":"5","TTL":"100"}"#),
            status(412, LEASE_THERE),
        ] {
            let mut op = op.clone();
            assert_eq!(call(op.on_response(granted)), first);
            assert_eq!(
                answer(op.on_response(ok(&succeeded(7)))).reservation,
                Reservation::Fresh
            );
        }
        // Still missing after a grant: give up rather than loop.
        let mut op2 = op.clone();
        call(op2.on_response(status(412, LEASE_THERE)));
        assert!(matches!(
            error(op2.on_response(status(404, LEASE_MISSING))),
            EtcdError::Unavailable(_)
        ));
        // A failed grant is a store error.
        assert!(matches!(
            error(op.on_response(status(503, "no healthy upstream"))),
            EtcdError::Unavailable(d) if d == "HTTP 503: no healthy upstream"
        ));
    }

    #[test]
    fn existing_keys_are_judged_like_cache_entries() {
        let e = etcd();
        let key = e.key(&id(1));
        let cases = [
            (record('b', State::Delivered, T0), Reservation::Tampered),
            (record('b', State::InFlight, T0), Reservation::Tampered),
            (record('a', State::Delivered, T0), Reservation::Duplicate),
            (record('a', State::InFlight, T0), Reservation::InFlight),
        ];
        for (stored, expected) in cases {
            let (mut op, _) = e.reserve(&id(1), &fp('a'), T0 + 5);
            let a = answer(op.on_response(ok(&failed_with(&key, &encode_value(&stored), 9))));
            assert_eq!((a.reservation, a.record, a.revision), (expected, stored, 9));
            assert_eq!(a.claim(), None);
        }
    }

    #[test]
    fn the_local_record_marks_someone_elses_claim_as_ask_again() {
        let theirs = |reservation, state| Answer {
            reservation,
            record: record('b', state, T0),
            revision: 3,
        };
        let local = |a: Answer| a.local_record().state;
        assert_eq!(
            local(theirs(Reservation::Tampered, State::Delivered)),
            State::Delivered
        );
        assert_eq!(
            local(theirs(Reservation::Duplicate, State::Delivered)),
            State::Delivered
        );
        assert_eq!(
            local(theirs(Reservation::Tampered, State::InFlight)),
            State::Failed
        );
        assert_eq!(
            local(theirs(Reservation::InFlight, State::InFlight)),
            State::Failed
        );
        assert_eq!(
            local(theirs(Reservation::Tampered, State::Failed)),
            State::Failed
        );
        let ours = Answer {
            reservation: Reservation::Retry,
            record: record('a', State::InFlight, T0),
            revision: 4,
        };
        assert_eq!(ours.local_record(), ours.record);
        assert_eq!(
            theirs(Reservation::Tampered, State::InFlight)
                .local_record()
                .fingerprint,
            fp('b')
        );
    }

    #[test]
    fn a_failed_or_lapsed_claim_is_taken_over_keeping_lease_and_expiry() {
        let e = etcd();
        let key = e.key(&id(1));
        for stored in [
            record('a', State::Failed, T0),
            record('a', State::InFlight, T0 - INFLIGHT),
        ] {
            let now = T0 + 5;
            let (mut op, _) = e.reserve(&id(1), &fp('a'), now);
            let takeover = call(op.on_response(ok(&failed_with(&key, &encode_value(&stored), 9))));
            let claim = TIMING.reclaim(&stored, now);
            assert_eq!(claim.expires_at, stored.expires_at);
            assert_eq!(claim.deadline, now + INFLIGHT);
            let k = b64(key.as_bytes());
            assert_eq!(
                json(&takeover),
                serde_json::json!({
                    "compare": [{"target": "MOD", "key": k, "mod_revision": "9"}],
                    "success": [{"request_put": {"key": k, "value": b64(&encode_value(&claim)), "ignore_lease": true}}],
                    "failure": [{"request_range": {"key": k}}],
                })
            );
            let a = answer(op.on_response(ok(&succeeded(12))));
            assert_eq!(a.reservation, Reservation::Retry);
            assert_eq!(
                a.claim(),
                Some(Claim {
                    revision: 12,
                    record: claim
                })
            );
        }
    }

    #[test]
    fn a_logically_expired_record_is_a_first_sight_with_the_new_lease() {
        let e = etcd();
        let key = e.key(&id(1));
        let old = record('b', State::Delivered, T0);
        let now = T0 + WINDOW;
        let (mut op, _) = e.reserve(&id(1), &fp('a'), now);
        let renew = call(op.on_response(ok(&failed_with(&key, &encode_value(&old), 9))));
        let body = json(&renew);
        assert_eq!(body["compare"][0]["mod_revision"], "9");
        assert_eq!(
            body["success"][0]["request_put"]["lease"],
            e.lease(now).id.to_string()
        );
        let a = answer(op.on_response(ok(&succeeded(13))));
        assert_eq!(a.reservation, Reservation::Fresh);
        assert_eq!(a.record, TIMING.first_sight(&fp('a'), now));
        // Its lease may be missing too: granted, then the renewal is resent.
        let (mut op, _) = e.reserve(&id(1), &fp('a'), now);
        let renew = call(op.on_response(ok(&failed_with(&key, &encode_value(&old), 9))));
        call(op.on_response(status(404, LEASE_MISSING)));
        assert_eq!(call(op.on_response(ok("{}"))), renew);
    }

    #[test]
    fn races_between_replicas_resolve_by_revision() {
        let e = etcd();
        let key = e.key(&id(1));
        let now = T0 + 100;
        let failed = record('a', State::Failed, T0);
        let (mut op, _) = e.reserve(&id(1), &fp('a'), now);
        call(op.on_response(ok(&failed_with(&key, &encode_value(&failed), 9))));
        // Another replica's retry claimed it first: ours now sees their live claim.
        let theirs = TIMING.reclaim(&failed, now);
        let a = answer(op.on_response(ok(&failed_with(&key, &encode_value(&theirs), 10))));
        assert_eq!(a.reservation, Reservation::InFlight);
        // The key vanished (its lease ended) between comparison and read: create it.
        let (mut op, _) = e.reserve(&id(1), &fp('a'), now);
        let create = call(op.on_response(ok(&failed_empty())));
        assert_eq!(json(&create)["compare"][0]["target"], "CREATE");
        assert_eq!(
            answer(op.on_response(ok(&succeeded(11)))).reservation,
            Reservation::Fresh
        );
    }

    #[test]
    fn endless_contention_gives_up() {
        let e = etcd();
        let key = e.key(&id(1));
        let (mut op, _) = e.reserve(&id(1), &fp('a'), T0 + 100);
        let failed = encode_value(&record('a', State::Failed, T0));
        for revision in 1..MAX_TRANSACTIONS {
            call(op.on_response(ok(&failed_with(&key, &failed, i64::from(revision)))));
        }
        assert_eq!(
            error(op.on_response(ok(&failed_with(&key, &failed, 99)))),
            EtcdError::Contention
        );
    }

    #[test]
    fn bad_answers_are_store_errors_never_panics() {
        let e = etcd();
        let key = e.key(&id(1));
        let garbage = [
            (ok("not json"), "not JSON"),
            (ok("{}"), "without a revision"),
            (ok(r#"{"header":{"revision":"x"}}"#), "not JSON"),
            (ok(r#"{"header":{"revision":"5"}}"#), "without its range"),
            (
                ok(
                    r#"{"header":{"revision":"5"},"responses":[{"response_range":{"kvs":[{"value":"%%%","mod_revision":"3"}]}}]}"#,
                ),
                "not base64",
            ),
            (
                ok(
                    r#"{"header":{"revision":"5"},"responses":[{"response_range":{"kvs":[{"value":""}]}}]}"#,
                ),
                "without a mod_revision",
            ),
        ];
        for (response, what) in garbage {
            let (mut op, _) = e.reserve(&id(1), &fp('a'), T0);
            match error(op.on_response(response)) {
                EtcdError::Malformed(detail) => assert!(detail.contains(what), "{detail}"),
                other => panic!("{what}: {other:?}"),
            }
        }
        let (mut op, _) = e.reserve(&id(1), &fp('a'), T0);
        assert_eq!(
            error(op.on_response(ok(&failed_with(&key, b"short", 3)))),
            EtcdError::Corrupt
        );
        let (mut op, _) = e.reserve(&id(1), &fp('a'), T0);
        assert_eq!(
            error(op.on_response(status(504, "upstream request timeout"))),
            EtcdError::Timeout
        );
        let (mut op, _) = e.reserve(&id(1), &fp('a'), T0);
        let reset = Response {
            status: None,
            body: b"",
        };
        assert!(matches!(
            error(op.on_response(reset)),
            EtcdError::Unavailable(_)
        ));
        let (mut op, _) = e.reserve(&id(1), &fp('a'), T0);
        let unavailable = r#"{"error":"etcdserver: request timed out","code":14}"#;
        assert_eq!(
            error(op.on_response(status(503, unavailable))),
            EtcdError::Unavailable("HTTP 503: etcdserver: request timed out".into())
        );
        // Envoy's own text replies are quoted, bounded and escaped.
        let (mut op, _) = e.reserve(&id(1), &fp('a'), T0);
        let long = format!("upstream connect error\n{}", "x".repeat(500));
        match error(op.on_response(status(503, &long))) {
            EtcdError::Unavailable(detail) => {
                assert!(
                    detail.starts_with("HTTP 503: upstream connect error\\n"),
                    "{detail}"
                );
                assert!(detail.len() < 200);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn round_trips_are_classified_for_metrics() {
        assert_eq!(round_trip(ok("{}")), RoundTrip::Ok);
        assert_eq!(round_trip(status(404, LEASE_MISSING)), RoundTrip::Ok);
        assert_eq!(round_trip(status(412, LEASE_THERE)), RoundTrip::Ok);
        assert_eq!(round_trip(status(504, "")), RoundTrip::Timeout);
        assert_eq!(
            round_trip(status(503, "no healthy upstream")),
            RoundTrip::Error
        );
        assert_eq!(
            round_trip(status(400, r#"{"error":"x"}"#)),
            RoundTrip::Error
        );
        assert_eq!(
            round_trip(Response {
                status: None,
                body: b""
            }),
            RoundTrip::Error
        );
    }

    fn claim(c: char, at: u32, revision: i64) -> Claim {
        Claim {
            revision,
            record: TIMING.first_sight(&fp(c), at),
        }
    }

    #[test]
    fn settling_our_claim_compares_its_revision_and_keeps_the_lease() {
        let e = etcd();
        let k = b64(e.key(&id(1)).as_bytes());
        for (outcome, state) in [
            (Outcome::Delivered, State::Delivered),
            (Outcome::Failed, State::Failed),
        ] {
            let ours = claim('a', T0, 41);
            let (mut op, first) = e.settle(&id(1), ours, outcome, T0 + 1).unwrap();
            let settled = Record {
                state,
                ..ours.record
            };
            assert_eq!(
                json(&first),
                serde_json::json!({
                    "compare": [{"target": "MOD", "key": k, "mod_revision": "41"}],
                    "success": [{"request_put": {"key": k, "value": b64(&encode_value(&settled)), "ignore_lease": true}}],
                    "failure": [{"request_range": {"key": k}}],
                })
            );
            assert_eq!(
                op.on_response(ok(&succeeded(42))),
                Progress::Done(Ok(Settled::Written))
            );
        }
        // Only in-flight claims are settled.
        let settled = Claim {
            record: Record {
                state: State::Delivered,
                ..claim('a', T0, 1).record
            },
            ..claim('a', T0, 1)
        };
        assert!(e.settle(&id(1), settled, Outcome::Failed, T0).is_none());
    }

    #[test]
    fn a_settle_after_a_takeover_settles_the_same_requests_claim() {
        let e = etcd();
        let key = e.key(&id(1));
        let ours = claim('a', T0, 41);
        // Our claim lapsed and a retry re-claimed it (same fingerprint): settle that.
        let theirs = TIMING.reclaim(&ours.record, T0 + INFLIGHT + 1);
        let (mut op, _) = e
            .settle(&id(1), ours, Outcome::Delivered, T0 + INFLIGHT + 2)
            .unwrap();
        let again = call(op.on_response(ok(&failed_with(&key, &encode_value(&theirs), 50))));
        let body = json(&again);
        assert_eq!(body["compare"][0]["mod_revision"], "50");
        let expected = Record {
            state: State::Delivered,
            ..theirs
        };
        assert_eq!(
            body["success"][0]["request_put"]["value"],
            b64(&encode_value(&expected))
        );
        assert_eq!(
            op.on_response(ok(&succeeded(51))),
            Progress::Done(Ok(Settled::Written))
        );
        // Settled by the other already, re-claimed by another request, gone or expired:
        // nothing to do.
        let now = T0 + INFLIGHT + 2;
        for stored in [
            Record {
                state: State::Failed,
                ..theirs
            },
            Record {
                fingerprint: fp('b'),
                ..theirs
            },
            Record {
                expires_at: now,
                ..theirs
            },
        ] {
            let (mut op, _) = e.settle(&id(1), ours, Outcome::Delivered, now).unwrap();
            assert_eq!(
                op.on_response(ok(&failed_with(&key, &encode_value(&stored), 50))),
                Progress::Done(Ok(Settled::Unchanged)),
                "{stored:?}"
            );
        }
        let (mut op, _) = e.settle(&id(1), ours, Outcome::Delivered, now).unwrap();
        assert_eq!(
            op.on_response(ok(&failed_empty())),
            Progress::Done(Ok(Settled::Unchanged))
        );
        let (mut op, _) = e.settle(&id(1), ours, Outcome::Delivered, now).unwrap();
        assert!(matches!(
            op.on_response(status(503, "no healthy upstream")),
            Progress::Done(Err(EtcdError::Unavailable(_)))
        ));
    }

    #[test]
    fn numbers_are_accepted_where_the_gateway_writes_strings() {
        let e = etcd();
        let (mut op, _) = e.reserve(&id(1), &fp('a'), T0);
        let body = r#"{"header":{"revision":77},"succeeded":true}"#;
        assert_eq!(answer(op.on_response(ok(body))).revision, 77);
    }
}
