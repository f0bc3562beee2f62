//! The fleet-wide replay store, behind one seam: the verdict (`guard.rs`), the glue that
//! sends its callouts and the metrics know a store only by [`FleetStore`] and the
//! store-neutral callouts, answers and decisions below, in the replay model of
//! [`crate::replay`]; each store's protocol is its own module. Today: [`etcd`].
//!
//! A route without one keeps its replay memory in this Envoy's shared data alone.
//!
//! # How the glue drives a store
//!
//! A reservation ([`FleetStore::begin_reserve`]) and the settles and resolutions owed once
//! a request ended ([`FleetStore::begin_settle`], [`Reserve::resolve`]) are operations
//! ([`Op`]): the glue sends each one's [`Step`] in a [`Callout`] the store builds, hands the
//! [`Response`] back, and sends again until the operation is done. Where the store allows
//! ([`FleetStore::max_batch`]), operations on distinct keys to one [`Link`] share a callout,
//! and the store splits its answer into each one's [`Share`].

use std::any::Any;
use std::fmt;

use serde::Deserialize;

use crate::replay::{Outcome, Record, Reservation, State, Timing};

pub mod etcd;
pub mod registry;

/// A fleet-wide store as the configuration knows it.
pub struct Kind {
    /// Its `replay.store.type`.
    pub name: &'static str,
    /// The `replay.store` fields it reads; the parser refuses the others, naming the types
    /// that read them.
    pub reads: &'static [&'static str],
    /// Builds the route's store; an error names the field (one of `reads`) and why.
    pub compile: fn(Settings, &Scope) -> Built,
}

/// A route's store, or what is wrong with its settings: the `replay.store` field, and why.
pub type Built = Result<Box<dyn FleetStore>, (&'static str, String)>;

/// The `replay.store` fields, as the route's configuration set them (`None`: left to the
/// store's default). Each store reads the ones its [`Kind`] lists.
#[derive(Debug, Default)]
pub struct Settings {
    pub cluster: Option<String>,
    pub authority: Option<String>,
    pub key_prefix: Option<String>,
    pub timeout_ms: Option<u32>,
    pub on_error: Option<OnError>,
    pub lease_bucket_secs: Option<u32>,
    pub api: Option<Api>,
    pub attempts: Option<u8>,
}

/// What a route's store is for: the route (its name scopes the store's keys) and the
/// replay timing its records follow.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub route: &'a str,
    pub timing: Timing,
}

/// A fleet-wide replay store as the verdict, the glue and the metrics see it.
pub trait FleetStore: Any + Send + Sync {
    /// The `replay.store.type` it is configured by.
    fn kind(&self) -> &'static str;

    /// What to do when it cannot decide.
    fn on_error(&self) -> OnError;

    /// Where its callouts go.
    fn link(&self) -> &Link;

    /// Budget for one reservation (all its round trips), and for each try of a settle.
    fn timeout_ms(&self) -> u32;

    /// Callouts a reservation may spend its budget on, each given an equal share, so that
    /// a member that does not answer leaves time to ask another.
    fn attempts(&self) -> u8;

    /// How long one callout of a reservation may take: its equal share of the budget.
    fn attempt_timeout_ms(&self) -> u32 {
        (self.timeout_ms() / u32::from(self.attempts().max(1))).max(1)
    }

    /// The replay timing its records follow (a settle is retried for `inflight_secs`).
    fn timing(&self) -> Timing;

    /// Most operations one callout may carry; 1: each goes alone.
    fn max_batch(&self) -> usize;

    /// Starts reserving `id` for a request with `fingerprint` at `now`, under `claim`, a
    /// token no other reservation uses (random).
    fn begin_reserve(
        &self,
        id: &[u8; 16],
        fingerprint: &[u8; 16],
        now: u32,
        claim: u64,
    ) -> Box<dyn Reserve>;

    /// Starts settling our claim on `id`: the request ended with `outcome` at `now`.
    /// `None` when there is nothing to settle.
    fn begin_settle(
        &self,
        id: &[u8; 16],
        claim: Claim,
        outcome: Outcome,
        now: u32,
    ) -> Option<Box<dyn Followup>>;

    /// The callout carrying `steps`: one alone, or several that [`Op::nests`] (at most
    /// [`max_batch`](Self::max_batch), on distinct keys).
    fn callout(&self, steps: &[Step]) -> Callout;

    /// How a round trip went, for the store metrics.
    fn round_trip(&self, response: &Response) -> RoundTrip;

    /// Each operation's share of the answer to a callout that carried `count` of them,
    /// in the order of the callout's steps.
    fn split(&self, response: &Response, count: usize) -> Vec<Share>;
}

/// A store by its type: no vtable carries a `Debug` of every store's settings into the
/// module.
impl fmt::Debug for dyn FleetStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

/// Where a store's callouts go: operations of two routes with the same link can share a
/// callout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The Envoy cluster.
    pub cluster: String,
    /// `:authority` of the callouts.
    pub authority: String,
    /// A gRPC call: `te: trailers`, and its status in the answer's trailers (or headers).
    pub grpc: bool,
}

/// One HTTP request to a store: a POST of `body` to `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callout {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// A store's answer to a callout, as Envoy hands it over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// `:status`; `None` when the callout failed without a response (e.g. a reset).
    pub status: Option<u16>,
    /// `grpc-status` and `grpc-message`, for a [`Link::grpc`] call.
    pub grpc_status: Option<u32>,
    pub grpc_message: String,
    pub body: Vec<u8>,
}

/// What an operation asks its store next, in the store's own encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub path: &'static str,
    pub message: Vec<u8>,
}

/// An operation's share of the answer to a callout that carried several: made and read
/// by its store alone.
pub struct Share(pub(crate) Box<dyn Any>);

/// The next step of an operation: send its [`Op::step`] (again), or here is the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress<T> {
    Send,
    Done(Result<T, StoreError>),
}

/// One operation on one key of a store, driven by the glue.
pub trait Op<T> {
    /// The key it writes: one callout never carries two operations on one key.
    fn key(&self) -> &str;

    /// What to send now: first, next, or again after an error.
    fn step(&self) -> Step;

    /// Whether its step can share a callout with others.
    fn nests(&self) -> bool;

    /// The answer to a callout that carried its step alone.
    fn on_answer(&mut self, response: &Response) -> Progress<T>;

    /// Its share of the answer to a callout that carried several.
    fn on_share(&mut self, share: Share) -> Progress<T>;
}

/// A reservation in progress.
pub trait Reserve: Op<Answer> {
    /// The answer to its last step will not come (the callout went unanswered, or the
    /// request ended first): its write, if it was one, may still be applied.
    fn abandon(&mut self);

    /// When the glue gives up on it: what resolves the writes the store never answered
    /// to `outcome` (`Failed` for a request refused, the delivery's outcome for one
    /// forwarded anyway). `None` when every write was answered.
    fn resolve(&self, outcome: Outcome) -> Option<Box<dyn Followup>>;
}

/// What the glue still owes a store once a request has ended: a settle, or the
/// resolution of a reservation it gave up on; retried until it lands.
pub trait Followup: Op<Settled> {
    /// For the log: what this is.
    fn what(&self) -> &'static str;
}

/// How a settle or a resolve ended (all are fine: neither ever fails a request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Written,
    /// Nothing to write any more: delivered or settled by another, re-claimed with another
    /// fingerprint, expired or gone, or a write of ours that can no longer land.
    Unchanged,
}

/// How one round trip went, for the store metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundTrip {
    /// The store answered (including the refusals its protocol expects).
    Ok,
    Error,
    /// No answer within the timeout.
    Timeout,
}

/// How the glue talks to a store over HTTP (`replay.store.api`): its JSON API (for etcd,
/// the gateway's `/v3/kv/txn`, over any HTTP version) or its gRPC API (the cluster must
/// speak HTTP/2; for etcd, half its CPU per call, and transactions batched into one). Both
/// read and write the same keys and values, so replicas using either share one store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    #[default]
    Json,
    Grpc,
}

/// What a route does when its fleet-wide store is slow, down or answers nonsense.
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

/// What the fleet-wide store holds for one id: the replay model's record, and the claim
/// token of the reservation that wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub record: Record,
    pub claim: u64,
}

/// Why a replay store could not decide: this Envoy's shared data (every error fails
/// closed, 503), or a fleet-wide store (handled by the route's [`OnError`] policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A shared-data call failed or broke its contract.
    Host,
    /// No answer within the route's timeout.
    Timeout,
    /// The callout failed, or the store answered with an error.
    Unavailable(String),
    /// The store's answer is not what its protocol sends.
    Malformed(&'static str),
    /// A stored value this format cannot read.
    Corrupt,
    /// Other writers kept changing it between our reads and writes; retries exhausted.
    Contention,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Host => f.write_str("shared data call failed"),
            StoreError::Timeout => f.write_str("no answer within the timeout"),
            StoreError::Unavailable(detail) => write!(f, "unavailable: {detail}"),
            StoreError::Malformed(what) => write!(f, "answer malformed: {what}"),
            StoreError::Corrupt => f.write_str("holds a value this format cannot read"),
            StoreError::Contention => f.write_str("contended; retries exhausted"),
        }
    }
}

/// An id claimed in the fleet-wide store by this request: what settling it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// The store's version of the id after our claim was written (etcd's `mod_revision`).
    pub revision: i64,
    pub stored: Stored,
}

/// The fleet-wide store's decision on a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// `Fresh` or `Retry` (claimed), `Tampered`, `Duplicate` or `InFlight` (refused).
    pub reservation: Reservation,
    /// What the key now holds: our claim, or what refused us.
    pub stored: Stored,
    /// Its version in the store.
    pub revision: i64,
}

impl Answer {
    /// Our claim, if the request may go on.
    pub fn claim(&self) -> Option<Claim> {
        matches!(self.reservation, Reservation::Fresh | Reservation::Retry).then_some(Claim {
            revision: self.revision,
            stored: self.stored,
        })
    }

    /// What the local first level may remember of this answer. Our own claim and a
    /// delivered record are facts this Envoy can answer from; someone else's claim (in
    /// flight or failed) is remembered as failed: its fingerprint still catches tampering
    /// locally, while an identical request asks etcd again, which alone knows how the other
    /// replica's delivery ends.
    pub fn local_record(&self) -> Record {
        let record = self.stored.record;
        match (self.reservation, record.state) {
            (Reservation::Fresh | Reservation::Retry, _) | (_, State::Delivered) => record,
            _ => Record {
                state: State::Failed,
                ..record
            },
        }
    }
}
