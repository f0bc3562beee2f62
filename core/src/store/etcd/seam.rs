//! etcd on the store seam: the glue drives its operations through [`FleetStore`] and
//! [`Op`], each in the route's API, and never sees a transaction.

use super::{
    answered, callout, Api, Etcd, Failure, Followup, Progress, ReserveOp, TxnResult, MAX_BATCH,
};
use crate::replay::{Outcome, Timing};
use crate::store::{
    self, Answer, Callout, Claim, FleetStore, Link, OnError, Op, Reserve, Response, RoundTrip,
    Settled, Share, Step, StoreError,
};

impl FleetStore for Etcd {
    fn kind(&self) -> &'static str {
        "etcd"
    }

    fn on_error(&self) -> OnError {
        self.on_error
    }

    fn link(&self) -> &Link {
        &self.link
    }

    fn timeout_ms(&self) -> u32 {
        self.timeout_ms
    }

    fn attempts(&self) -> u8 {
        self.attempts
    }

    fn timing(&self) -> Timing {
        self.timing
    }

    /// Over gRPC, transactions nest; the gateway takes one per call.
    fn max_batch(&self) -> usize {
        match self.api {
            Api::Grpc => MAX_BATCH,
            Api::Json => 1,
        }
    }

    fn begin_reserve(
        &self,
        id: &[u8; 16],
        fingerprint: &[u8; 16],
        now: u32,
        claim: u64,
    ) -> Box<dyn Reserve> {
        Box::new(self.reserve(id, fingerprint, now, claim))
    }

    fn begin_settle(
        &self,
        id: &[u8; 16],
        claim: Claim,
        outcome: Outcome,
        now: u32,
    ) -> Option<Box<dyn store::Followup>> {
        let op = self.settle(id, claim, outcome, now)?;
        Some(Box::new(Followup::Settle(op)))
    }

    fn callout(&self, steps: &[Step]) -> Callout {
        callout(self.api, steps)
    }

    fn round_trip(&self, response: &Response) -> RoundTrip {
        answered(self.api, response).round_trip()
    }

    fn split(&self, response: &Response, count: usize) -> Vec<Share> {
        let replies = answered(self.api, response).batch(count);
        replies
            .into_iter()
            .map(|reply| Share(Box::new(reply)))
            .collect()
    }
}

/// The seam's progress, from an operation's (which names its next request).
fn next<T>(progress: Progress<T>) -> store::Progress<T> {
    match progress {
        Progress::Send(_) => store::Progress::Send,
        Progress::Done(result) => store::Progress::Done(result),
    }
}

/// The reply a share holds (made by [`Etcd::split`](FleetStore::split)).
fn reply(share: Share) -> TxnResult {
    match share.0.downcast::<TxnResult>() {
        Ok(reply) => *reply,
        Err(_) => Err(Failure::Etcd(StoreError::Malformed(
            "a share of another store's answer",
        ))),
    }
}

impl Op<Answer> for ReserveOp {
    fn key(&self) -> &str {
        ReserveOp::key(self)
    }

    fn step(&self) -> Step {
        self.request().step(self.api)
    }

    fn nests(&self) -> bool {
        // Transactions nest, over gRPC.
        self.api == Api::Grpc && self.sends_txn()
    }

    fn on_answer(&mut self, response: &Response) -> store::Progress<Answer> {
        next(ReserveOp::on_answer(self, answered(self.api, response)))
    }

    fn on_share(&mut self, share: Share) -> store::Progress<Answer> {
        next(self.on_reply(reply(share)))
    }
}

impl Reserve for ReserveOp {
    fn abandon(&mut self) {
        ReserveOp::abandon(self);
    }

    fn resolve(&self, outcome: Outcome) -> Option<Box<dyn store::Followup>> {
        let op = ReserveOp::resolve(self, outcome)?;
        Some(Box::new(Followup::Resolve(op)))
    }
}

impl Op<Settled> for Followup {
    fn key(&self) -> &str {
        Followup::key(self)
    }

    fn step(&self) -> Step {
        self.request().step(self.api())
    }

    fn nests(&self) -> bool {
        self.api() == Api::Grpc && self.sends_txn()
    }

    fn on_answer(&mut self, response: &Response) -> store::Progress<Settled> {
        let api = self.api();
        next(Followup::on_answer(self, answered(api, response)))
    }

    fn on_share(&mut self, share: Share) -> store::Progress<Settled> {
        next(self.on_reply(reply(share)))
    }
}

impl store::Followup for Followup {
    fn what(&self) -> &'static str {
        Followup::what(self)
    }
}
