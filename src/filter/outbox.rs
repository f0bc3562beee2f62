//! What this VM still owes etcd once requests have ended: settles of delivered or failed
//! claims, and the resolution of reservations it gave up on. A callout's answer goes back
//! to the context that dispatched it, and a request's context is gone soon after its
//! response, so requests queue these here; the root context sends them on its tick and
//! follows up. Each is retried with backoff until it lands or its time is up; over gRPC
//! they go as one transaction per tick, and ride on a reservation going to etcd anyway.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use log::{debug, warn};

use super::{host, Plugin};
use callback_guard::store::etcd::{
    self, Answered, Api, Etcd, Followup, Progress, Request, Settled, Txn, TxnResult,
};
use callback_guard::store::FleetError;

/// How long a new job waits for a reservation to take it along before the tick sends it.
pub const RIDE_WAIT: Duration = Duration::from_millis(5);
/// Backoff after a failed try: doubling from the first to the last.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const LAST_BACKOFF: Duration = Duration::from_secs(2);
/// Jobs waiting or in flight beyond this are dropped (counted as store errors): their
/// claims then lapse after `in_flight_timeout`, when a retry can take them over.
const MAX_JOBS: usize = 10_000;
/// How long a draining VM waits for its jobs before it lets Envoy go on.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

pub struct Job {
    pub plugin: Rc<Plugin>,
    pub route: usize,
    pub op: Followup,
    /// Not sent by the tick before this (backoff, or a moment to ride on a reservation).
    due: Instant,
    /// Given up after this.
    until: Instant,
    backoff: Duration,
    tries: u32,
}

impl Job {
    /// A job for `op` on the route at `route`, tried until `for_up_to` from now.
    pub fn new(plugin: Rc<Plugin>, route: usize, op: Followup, for_up_to: Duration) -> Self {
        let now = Instant::now();
        Job {
            plugin,
            route,
            op,
            due: now + RIDE_WAIT,
            until: now + for_up_to,
            backoff: FIRST_BACKOFF,
            tries: 0,
        }
    }

    fn etcd(&self) -> Option<(&callback_guard::policy::Route, &Etcd)> {
        self.plugin.etcd(self.route)
    }

    fn route_name(&self) -> &str {
        self.etcd().map_or("?", |(route, _)| route.name.as_str())
    }
}

#[derive(Default)]
pub struct Outbox {
    waiting: Vec<Job>,
    in_flight: HashMap<u32, (Vec<Job>, Instant)>,
    /// The tick period last asked of the host.
    tick_ms: u32,
    /// Set once Envoy asked this VM to finish (`on_done`): until when it may take.
    draining: Option<Instant>,
}

impl Outbox {
    pub fn queue(&mut self, job: Job) {
        if self.waiting.len() + self.in_flight.len() >= MAX_JOBS {
            if let Some((route, _)) = job.etcd() {
                job.plugin
                    .round_trip(route, etcd::RoundTrip::Error, Duration::ZERO);
            }
            warn!(
                "callback-guard: route={} too many etcd jobs pending; cannot {}",
                job.route_name(),
                job.op.what()
            );
            return;
        }
        self.waiting.push(job);
        self.tick_within(RIDE_WAIT);
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.in_flight.is_empty()
    }

    /// Up to `room` waiting transactions a reservation to `etcd` (over gRPC, on `keys`)
    /// can carry: same cluster, each on a key of its own.
    pub fn riders(&mut self, etcd: &Etcd, keys: &[String], room: usize) -> Vec<Job> {
        let mut keys = keys.to_vec();
        let mut taken = Vec::new();
        let mut kept = Vec::with_capacity(self.waiting.len());
        for job in self.waiting.drain(..) {
            let fits = taken.len() < room
                && job
                    .etcd()
                    .is_some_and(|(_, theirs)| theirs.same_cluster(etcd))
                && job
                    .op
                    .request()
                    .txn()
                    .is_some_and(|txn| !keys.iter().any(|k| k == txn.key()));
            if fits {
                keys.push(job.op.key().to_string());
                taken.push(job);
            } else {
                kept.push(job);
            }
        }
        self.waiting = kept;
        taken
    }

    /// Jobs a reservation took along and never got an answer for (it failed to send, or
    /// its request ended first): waiting again, as they were.
    pub fn put_back(&mut self, jobs: Vec<Job>) {
        self.waiting.extend(jobs);
        self.tick_within(RIDE_WAIT);
    }

    /// What a job's try came to.
    pub fn answered(&mut self, mut job: Job, progress: Progress<Settled>) {
        let now = Instant::now();
        job.tries += 1;
        match progress {
            // The next step of it, at once.
            Progress::Send(_) => {
                job.due = now;
                self.waiting.push(job);
                self.tick_within(Duration::ZERO);
            }
            Progress::Done(Ok(_)) => {}
            Progress::Done(Err(problem))
                if now >= job.until || self.draining.is_some_and(|end| now >= end) =>
            {
                warn!(
                "callback-guard: route={} cannot {} in etcd after {} tries, giving up: {problem}",
                job.route_name(),
                job.op.what(),
                job.tries
            )
            }
            Progress::Done(Err(problem)) => {
                let log = format!(
                    "callback-guard: route={} cannot {} in etcd yet (try {}): {problem}; trying again",
                    job.route_name(),
                    job.op.what(),
                    job.tries
                );
                if job.tries == 1 {
                    warn!("{log}");
                } else {
                    debug!("{log}");
                }
                job.due = now + job.backoff;
                job.backoff = (job.backoff * 2).min(LAST_BACKOFF);
                self.waiting.push(job);
                self.tick_within(FIRST_BACKOFF);
            }
        }
    }

    /// The tick: sends every job that is due (all of them while draining), batched per
    /// cluster where the API allows.
    pub fn send_due(&mut self) {
        let now = Instant::now();
        let draining = self.draining.is_some();
        let (due, later): (Vec<Job>, Vec<Job>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|job| draining || job.due <= now);
        self.waiting = later;
        for batch in batches(due) {
            self.send(batch);
        }
    }

    fn send(&mut self, jobs: Vec<Job>) {
        let Some(first) = jobs.first() else { return };
        let Some((route, etcd)) = first.etcd() else {
            return;
        };
        let requests: Vec<Request> = jobs.iter().map(|job| job.op.request()).collect();
        let call = match requests.as_slice() {
            [one] => one.call(etcd.api),
            many => {
                let txns: Vec<&Txn> = many.iter().filter_map(Request::txn).collect();
                etcd::batch_call(&txns)
            }
        };
        let timeout = Duration::from_millis(u64::from(etcd.timeout_ms));
        match host::dispatch(etcd, &call, timeout) {
            Ok(token) => {
                self.in_flight.insert(token, (jobs, Instant::now()));
            }
            Err(status) => {
                first
                    .plugin
                    .round_trip(route, etcd::RoundTrip::Error, Duration::ZERO);
                let problem = FleetError::Unavailable(format!(
                    "Envoy refused the callout to cluster {}: {status:?}",
                    etcd.cluster
                ));
                for job in jobs {
                    self.answered(job, Progress::Done(Err(problem.clone())));
                }
            }
        }
    }

    /// The jobs of a callout the tick sent, if `token` is one, and when it went.
    pub fn take_in_flight(&mut self, token: u32) -> Option<(Vec<Job>, Instant)> {
        self.in_flight.remove(&token)
    }

    /// Envoy asks this VM to finish: every job goes now. `true` when there is nothing to
    /// wait for.
    pub fn drain(&mut self) -> bool {
        if self.is_empty() {
            return true;
        }
        self.draining = Some(Instant::now() + DRAIN_LIMIT);
        self.tick_within(Duration::ZERO);
        false
    }

    /// Whether a draining VM may now let Envoy go on: nothing left, or out of time.
    pub fn drained(&self) -> bool {
        self.draining
            .is_some_and(|end| self.is_empty() || Instant::now() >= end)
    }

    /// The tick period the jobs need: soon for the next one due, else `idle_ms`.
    pub fn next_tick_ms(&self, idle_ms: u32) -> u32 {
        let now = Instant::now();
        match self.waiting.iter().map(|job| job.due).min() {
            Some(_) if self.draining.is_some() => 1,
            Some(due) => {
                let wait = due.saturating_duration_since(now).as_millis();
                u32::try_from(wait).unwrap_or(u32::MAX).clamp(1, 50)
            }
            // Answers come by callback; only a draining VM must notice the time limit.
            None if self.draining.is_some() => 50,
            None => idle_ms,
        }
    }

    /// Sets the host's tick period to `ms` (0: none) unless it already is.
    pub fn set_tick(&mut self, ms: u32) {
        if self.tick_ms != ms && host::set_tick(ms) {
            self.tick_ms = ms;
        }
    }

    /// A tick as soon as the host gives one (for the lane's waiting reservations).
    pub fn wake(&mut self) {
        self.tick_within(Duration::ZERO);
    }

    /// Makes sure the tick comes within `wait`.
    fn tick_within(&mut self, wait: Duration) {
        let ms = u32::try_from(wait.as_millis()).unwrap_or(u32::MAX).max(1);
        if self.tick_ms == 0 || self.tick_ms > ms {
            self.set_tick(ms);
        }
    }
}

/// What each job of one callout comes to, given its answer: alone, or one of a batch.
pub fn progress(jobs: Vec<Job>, answer: Answered) -> Vec<(Job, Progress<Settled>)> {
    let count = jobs.len();
    if count == 1 {
        return jobs
            .into_iter()
            .map(|mut job| {
                let progress = job.op.on_answer(answer);
                (job, progress)
            })
            .collect();
    }
    riders_progress(jobs, answer.batch(count))
}

/// What each job that rode on a reservation comes to, given its reply in the batch.
pub fn riders_progress(jobs: Vec<Job>, replies: Vec<TxnResult>) -> Vec<(Job, Progress<Settled>)> {
    jobs.into_iter()
        .zip(replies)
        .map(|(mut job, reply)| {
            let progress = job.op.on_reply(reply);
            (job, progress)
        })
        .collect()
}

/// Due jobs grouped into callouts: transactions to one cluster over gRPC, on distinct
/// keys, up to [`etcd::MAX_BATCH`] per call; everything else alone.
fn batches(jobs: Vec<Job>) -> Vec<Vec<Job>> {
    let mut out: Vec<Vec<Job>> = Vec::new();
    for job in jobs {
        let batchable = job.etcd().is_some_and(|(_, etcd)| etcd.api == Api::Grpc)
            && job.op.request().txn().is_some();
        let open = out.iter_mut().find(|batch| {
            batchable
                && batch.len() < etcd::MAX_BATCH
                && batch.iter().all(|other| {
                    other.op.request().txn().is_some()
                        && other.op.key() != job.op.key()
                        && match (other.etcd(), job.etcd()) {
                            (Some((_, a)), Some((_, b))) => a.same_cluster(b),
                            _ => false,
                        }
                })
        });
        match open {
            Some(batch) => batch.push(job),
            None => out.push(vec![job]),
        }
    }
    out
}
