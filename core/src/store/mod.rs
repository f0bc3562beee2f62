//! The fleet-wide replay store, behind one seam: the verdict (`guard.rs`) and the metrics
//! know a store only by [`FleetStore`] and the decisions below, in the replay model of
//! [`crate::replay`]; each store's protocol is its own module. Today: [`etcd`].
//!
//! A route without one keeps its replay memory in this Envoy's shared data alone.

use std::any::Any;
use std::fmt;

use serde::Deserialize;

use crate::replay::{Record, Reservation, State};

pub mod etcd;

/// A fleet-wide replay store as the verdict and the metrics see it. The glue drives its
/// callouts through the store's own module.
pub trait FleetStore: Any + Send + Sync {
    /// The `replay.store.type` it is configured by.
    fn kind(&self) -> &'static str;

    /// What to do when it cannot decide.
    fn on_error(&self) -> OnError;
}

/// A store by its type: no vtable carries a `Debug` of every store's settings into the
/// module.
impl fmt::Debug for dyn FleetStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
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

/// Why the fleet-wide store could not decide. Handled by the route's [`OnError`] policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetError {
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

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FleetError::Timeout => f.write_str("etcd did not answer within the timeout"),
            FleetError::Unavailable(detail) => write!(f, "etcd unavailable: {detail}"),
            FleetError::Malformed(what) => write!(f, "etcd answer malformed: {what}"),
            FleetError::Corrupt => f.write_str("etcd holds a value this format cannot read"),
            FleetError::Contention => f.write_str("etcd key contended; transactions exhausted"),
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
