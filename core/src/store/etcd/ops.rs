//! The three operations on one etcd key, each a small state machine the filter drives:
//! send [`request`](ReserveOp::request), feed back the answer, until it is done. The
//! filter may send a request again after an error (it is the same transaction, and the
//! claim token recognises our own write when it reads it back).

use super::{
    decode_value, encode_value, Answer, Answered, Api, Claim, Compare, Etcd, Failure, Kv, Lease,
    Progress, PutLease, Request, Settled, StoreError, Stored, Txn, TxnResult, MAX_TRANSACTIONS,
    VALUE_SIZE,
};
use crate::replay::{self, Outcome, Record, Reservation, State, Timing};

impl Etcd {
    /// Starts reserving `id` for a request with `fingerprint` at `now`, under `claim`, a
    /// token no other reservation uses (random): send [`ReserveOp::request`], feed each
    /// answer back.
    pub fn reserve(
        &self,
        id: &[u8; 16],
        fingerprint: &[u8; 16],
        now: u32,
        claim: u64,
    ) -> ReserveOp {
        let fresh = self.timing.first_sight(fingerprint, now);
        ReserveOp {
            api: self.api,
            key: self.key(id),
            fingerprint: *fingerprint,
            now,
            timing: self.timing,
            lease: self.lease(now),
            claim,
            granted: false,
            transactions: 1,
            awaiting: Awaiting::Txn(Write::Create(fresh)),
            unanswered: Vec::new(),
        }
    }

    /// Starts settling our claim on `id`: the request ended with `outcome` at `now`.
    /// `None` when the claim is not in flight (nothing to settle).
    pub fn settle(
        &self,
        id: &[u8; 16],
        claim: Claim,
        outcome: Outcome,
        now: u32,
    ) -> Option<SettleOp> {
        let record = replay::settled(
            &claim.stored.record,
            &claim.stored.record.fingerprint,
            outcome,
        )?;
        Some(SettleOp {
            api: self.api,
            key: self.key(id),
            fingerprint: claim.stored.record.fingerprint,
            outcome,
            now,
            transactions: 1,
            pending: Txn {
                key: self.key(id),
                compare: Compare::ModRevision(claim.revision),
                value: encode_value(&Stored {
                    record,
                    ..claim.stored
                }),
                lease: PutLease::Keep,
            },
        })
    }
}

/// What a pending transaction writes if its comparison holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// A first sight on a key that was never created (or was deleted by its lease).
    Create(Record),
    /// A first sight over a logically expired record (`previous`) at this revision: new
    /// bucket lease.
    Renew {
        record: Record,
        revision: i64,
        previous: [u8; VALUE_SIZE],
    },
    /// A retry's claim over a failed or lapsed one (`previous`) at this revision: the
    /// lease stays.
    Reclaim {
        record: Record,
        revision: i64,
        previous: [u8; VALUE_SIZE],
    },
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

    fn txn(&self, key: &str, claim: u64, lease: Lease) -> Txn {
        let (compare, lease) = match *self {
            Write::Create(_) => (Compare::NeverCreated, PutLease::Attach(lease.id)),
            Write::Renew { revision, .. } => {
                (Compare::ModRevision(revision), PutLease::Attach(lease.id))
            }
            Write::Reclaim { revision, .. } => (Compare::ModRevision(revision), PutLease::Keep),
        };
        Txn {
            key: key.to_string(),
            compare,
            value: encode_value(&Stored {
                record: self.record(),
                claim,
            }),
            lease,
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
    /// The API its requests go in.
    pub(super) api: Api,
    key: String,
    fingerprint: [u8; 16],
    now: u32,
    timing: Timing,
    lease: Lease,
    claim: u64,
    granted: bool,
    transactions: u8,
    awaiting: Awaiting,
    /// Writes sent that etcd never answered: any may still be applied, until a later
    /// answer shows it cannot be.
    unanswered: Vec<Write>,
}

impl ReserveOp {
    /// What to send now: first, next, or again after an error.
    pub fn request(&self) -> Request {
        match self.awaiting {
            Awaiting::Txn(write) => Request::Txn(write.txn(&self.key, self.claim, self.lease)),
            Awaiting::Grant(_) => Request::Grant(self.lease),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether what it sends now is a transaction (not a lease grant).
    pub(super) fn sends_txn(&self) -> bool {
        matches!(self.awaiting, Awaiting::Txn(_))
    }

    /// Feeds the answer to the last request, in the route's API.
    pub fn on_answer(&mut self, answer: Answered) -> Progress<Answer> {
        match self.awaiting {
            Awaiting::Grant(write) => self.granted(write, answer.grant()),
            Awaiting::Txn(_) => self.on_reply(answer.txn()),
        }
    }

    /// Feeds the answer to the last transaction (alone, or one of a batch).
    pub fn on_reply(&mut self, reply: TxnResult) -> Progress<Answer> {
        let Awaiting::Txn(write) = self.awaiting else {
            return Progress::Done(Err(StoreError::Malformed(
                "a transaction answer to a grant",
            )));
        };
        match reply {
            Ok(reply) => {
                // An answer: none of our earlier writes can land any more (each compared
                // against what this one found, or created what it finds).
                self.unanswered.clear();
                if reply.succeeded {
                    return self.claimed(write.record(), write.reservation(), reply.revision);
                }
                self.decide(reply.kv)
            }
            // Refused as a whole: nothing was written.
            Err(Failure::LeaseNotFound) if !self.granted => {
                self.awaiting = Awaiting::Grant(write);
                Progress::Send(Request::Grant(self.lease))
            }
            Err(Failure::LeaseNotFound) => Progress::Done(Err(StoreError::Unavailable(
                "the lease was not found even after granting it".into(),
            ))),
            Err(Failure::Etcd(error)) => {
                if !self.unanswered.contains(&write) {
                    self.unanswered.push(write);
                }
                Progress::Done(Err(error))
            }
        }
    }

    fn granted(&mut self, write: Write, result: Result<(), StoreError>) -> Progress<Answer> {
        match result {
            Ok(()) => {
                self.granted = true;
                self.awaiting = Awaiting::Txn(write);
                Progress::Send(self.request())
            }
            Err(error) => Progress::Done(Err(error)),
        }
    }

    fn claimed(&self, record: Record, reservation: Reservation, revision: i64) -> Progress<Answer> {
        Progress::Done(Ok(Answer {
            reservation,
            stored: Stored {
                record,
                claim: self.claim,
            },
            revision,
        }))
    }

    /// The key exists (or existed): our own claim, sent before and applied, or a record
    /// to judge like a cache entry.
    fn decide(&mut self, kv: Option<Kv>) -> Progress<Answer> {
        let write = match kv {
            // Gone between our comparison and now (its lease expired): create it.
            None => Write::Create(self.timing.first_sight(&self.fingerprint, self.now)),
            Some(kv) => {
                let stored = match decode_value(&kv.value) {
                    Ok(stored) => stored,
                    Err(error) => return Progress::Done(Err(error)),
                };
                let record = stored.record;
                if stored.claim == self.claim && record.state == State::InFlight {
                    let reservation = match self.awaiting {
                        Awaiting::Txn(write) | Awaiting::Grant(write)
                            if write.record() == record =>
                        {
                            write.reservation()
                        }
                        _ => Reservation::Fresh,
                    };
                    return self.claimed(record, reservation, kv.mod_revision);
                }
                if !record.live(self.now) {
                    Write::Renew {
                        record: self.timing.first_sight(&self.fingerprint, self.now),
                        revision: kv.mod_revision,
                        previous: encode_value(&stored),
                    }
                } else {
                    match replay::judge(&record, &self.fingerprint, self.now) {
                        Reservation::Retry => Write::Reclaim {
                            record: self.timing.reclaim(&record, self.now),
                            revision: kv.mod_revision,
                            previous: encode_value(&stored),
                        },
                        refusal => {
                            return Progress::Done(Ok(Answer {
                                reservation: refusal,
                                stored,
                                revision: kv.mod_revision,
                            }))
                        }
                    }
                }
            }
        };
        if self.transactions >= MAX_TRANSACTIONS {
            return Progress::Done(Err(StoreError::Contention));
        }
        self.transactions += 1;
        self.awaiting = Awaiting::Txn(write);
        Progress::Send(self.request())
    }

    /// The answer to the last request will not come (the request's context ended first):
    /// its write, if it was one, may still be applied.
    pub fn abandon(&mut self) {
        if let Awaiting::Txn(write) = self.awaiting {
            if !self.unanswered.contains(&write) {
                self.unanswered.push(write);
            }
        }
    }

    /// When the filter gives up on this reservation: what resolves the writes etcd never
    /// answered (any of which may still be applied) to `outcome`: `Failed` for a request
    /// refused, the delivery's outcome for one forwarded anyway (`on_error: fail_open`).
    /// `None` when every write was answered.
    pub fn resolve(&self, outcome: Outcome) -> Option<ResolveOp> {
        let (&first, rest) = self.unanswered.split_first()?;
        Some(ResolveOp {
            api: self.api,
            key: self.key.clone(),
            claim: self.claim,
            state: settled_state(outcome),
            lease: self.lease,
            granted: false,
            transactions: 1,
            step: Step::Fence(first),
            fences: rest.to_vec(),
        })
    }
}

fn settled_state(outcome: Outcome) -> State {
    match outcome {
        Outcome::Delivered => State::Delivered,
        Outcome::Failed => State::Failed,
    }
}

/// A settle in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettleOp {
    pub(super) api: Api,
    key: String,
    fingerprint: [u8; 16],
    outcome: Outcome,
    now: u32,
    transactions: u8,
    pending: Txn,
}

impl SettleOp {
    pub fn request(&self) -> Request {
        Request::Txn(self.pending.clone())
    }

    pub fn on_reply(&mut self, reply: TxnResult) -> Progress<Settled> {
        let reply = match reply {
            Ok(reply) => reply,
            Err(Failure::Etcd(error)) => return Progress::Done(Err(error)),
            // Settles never attach a lease.
            Err(Failure::LeaseNotFound) => {
                return Progress::Done(Err(StoreError::Malformed("lease error on a settle")))
            }
        };
        if reply.succeeded {
            return Progress::Done(Ok(Settled::Written));
        }
        let Some(kv) = reply.kv else {
            return Progress::Done(Ok(Settled::Unchanged));
        };
        let stored = match decode_value(&kv.value) {
            Ok(stored) => stored,
            Err(error) => return Progress::Done(Err(error)),
        };
        // Re-claimed since ours (our claim lapsed): settle the in-flight claim of the same
        // request, as the cache does; anything else stays as it is.
        match replay::settled(&stored.record, &self.fingerprint, self.outcome) {
            Some(record) if stored.record.live(self.now) => {
                if self.transactions >= MAX_TRANSACTIONS {
                    return Progress::Done(Err(StoreError::Contention));
                }
                self.transactions += 1;
                self.pending = Txn {
                    key: self.key.clone(),
                    compare: Compare::ModRevision(kv.mod_revision),
                    value: encode_value(&Stored { record, ..stored }),
                    lease: PutLease::Keep,
                };
                Progress::Send(self.request())
            }
            _ => Progress::Done(Ok(Settled::Unchanged)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Making sure this write can no longer be applied.
    Fence(Write),
    /// Granting the bucket's lease for a fence that creates the key.
    Grant(Write),
    /// Our claim was applied and is at this revision: settle it.
    Mark { revision: i64, stored: Stored },
}

/// Resolving a reservation the filter gave up on (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveOp {
    pub(super) api: Api,
    key: String,
    claim: u64,
    /// What our claim becomes.
    state: State,
    lease: Lease,
    granted: bool,
    transactions: u8,
    step: Step,
    /// Further unanswered writes to fence.
    fences: Vec<Write>,
}

impl ResolveOp {
    pub fn request(&self) -> Request {
        match self.step {
            Step::Fence(write) => Request::Txn(self.fence(write)),
            Step::Grant(_) => Request::Grant(self.lease),
            Step::Mark { revision, stored } => Request::Txn(Txn {
                key: self.key.clone(),
                compare: Compare::ModRevision(revision),
                value: encode_value(&Stored {
                    record: Record {
                        state: self.state,
                        ..stored.record
                    },
                    ..stored
                }),
                lease: PutLease::Keep,
            }),
        }
    }

    /// A first sight is fenced by creating the key as our claim settled (its comparison
    /// then fails); a takeover by writing back the value it compared against (its revision
    /// then moves on).
    fn fence(&self, write: Write) -> Txn {
        match write {
            Write::Create(record) => Txn {
                key: self.key.clone(),
                compare: Compare::NeverCreated,
                value: encode_value(&Stored {
                    record: Record {
                        state: self.state,
                        ..record
                    },
                    claim: self.claim,
                }),
                lease: PutLease::Attach(self.lease.id),
            },
            Write::Renew {
                revision, previous, ..
            }
            | Write::Reclaim {
                revision, previous, ..
            } => Txn {
                key: self.key.clone(),
                compare: Compare::ModRevision(revision),
                value: previous,
                lease: PutLease::Keep,
            },
        }
    }

    pub fn on_answer(&mut self, answer: Answered) -> Progress<Settled> {
        match self.step {
            Step::Grant(write) => match answer.grant() {
                Ok(()) => {
                    self.granted = true;
                    self.step = Step::Fence(write);
                    Progress::Send(self.request())
                }
                Err(error) => Progress::Done(Err(error)),
            },
            _ => self.on_reply(answer.txn()),
        }
    }

    pub fn on_reply(&mut self, reply: TxnResult) -> Progress<Settled> {
        let reply = match (reply, self.step) {
            (Ok(reply), _) => reply,
            (Err(Failure::LeaseNotFound), Step::Fence(write)) if !self.granted => {
                self.step = Step::Grant(write);
                return Progress::Send(self.request());
            }
            (Err(Failure::LeaseNotFound), _) => {
                return Progress::Done(Err(StoreError::Unavailable(
                    "the lease was not found even after granting it".into(),
                )))
            }
            (Err(Failure::Etcd(error)), _) => return Progress::Done(Err(error)),
        };
        let marked = matches!(self.step, Step::Mark { .. });
        if reply.succeeded {
            return if marked {
                Progress::Done(Ok(Settled::Written))
            } else {
                self.next_fence()
            };
        }
        let stored = match reply
            .kv
            .map(|kv| (decode_value(&kv.value), kv.mod_revision))
        {
            Some((Ok(stored), revision))
                if stored.claim == self.claim && stored.record.state == State::InFlight =>
            {
                (stored, revision)
            }
            Some((Err(error), _)) => return Progress::Done(Err(error)),
            // Not ours (or ours, settled): this write can no longer be applied.
            _ => return self.next_fence(),
        };
        if self.transactions >= MAX_TRANSACTIONS {
            return Progress::Done(Err(StoreError::Contention));
        }
        self.transactions += 1;
        self.step = Step::Mark {
            revision: stored.1,
            stored: stored.0,
        };
        Progress::Send(self.request())
    }

    fn next_fence(&mut self) -> Progress<Settled> {
        if self.fences.is_empty() {
            return Progress::Done(Ok(Settled::Unchanged));
        }
        self.step = Step::Fence(self.fences.remove(0));
        Progress::Send(self.request())
    }
}

/// What the filter still owes etcd once a request has ended: a settle, or the resolution
/// of a reservation it gave up on. Both are retried until they land.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followup {
    Settle(SettleOp),
    Resolve(ResolveOp),
}

impl Followup {
    pub fn request(&self) -> Request {
        match self {
            Followup::Settle(op) => op.request(),
            Followup::Resolve(op) => op.request(),
        }
    }

    pub fn key(&self) -> &str {
        match self {
            Followup::Settle(op) => &op.key,
            Followup::Resolve(op) => &op.key,
        }
    }

    /// Whether what it sends now is a transaction (not a lease grant).
    pub(super) fn sends_txn(&self) -> bool {
        match self {
            Followup::Settle(_) => true,
            Followup::Resolve(op) => !matches!(op.step, Step::Grant(_)),
        }
    }

    pub(super) fn api(&self) -> Api {
        match self {
            Followup::Settle(op) => op.api,
            Followup::Resolve(op) => op.api,
        }
    }

    /// For the log: what this is.
    pub fn what(&self) -> &'static str {
        match self {
            Followup::Settle(_) => "settle a delivery",
            Followup::Resolve(_) => "release a reservation it gave up on",
        }
    }

    pub fn on_answer(&mut self, answer: Answered) -> Progress<Settled> {
        match self {
            Followup::Settle(op) => op.on_reply(answer.txn()),
            Followup::Resolve(op) => op.on_answer(answer),
        }
    }

    pub fn on_reply(&mut self, reply: TxnResult) -> Progress<Settled> {
        match self {
            Followup::Settle(op) => op.on_reply(reply),
            Followup::Resolve(op) => op.on_reply(reply),
        }
    }
}
