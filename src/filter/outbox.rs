//! What this VM still owes the fleet-wide stores once requests have ended: settles of
//! delivered or failed claims, and the resolution of reservations it gave up on. A
//! callout's answer goes back to the context that dispatched it, and a request's context
//! is gone soon after its response, so requests queue these here; the root context sends
//! them on its tick and follows up. Each is retried with backoff until it lands or its
//! time is up; where the store batches (etcd over gRPC) they go as one callout per tick,
//! and ride on a reservation going to the store anyway.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use log::{debug, warn};

use super::{host, Plugin};
use callback_guard::policy::Route;
use callback_guard::store::{
    FleetStore, Followup, Progress, Response, RoundTrip, Settled, Share, Step, StoreError,
};

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
    pub op: Box<dyn Followup>,
    /// Not sent by the tick before this (backoff, or a moment to ride on a reservation).
    due: Instant,
    /// Given up after this.
    until: Instant,
    backoff: Duration,
    tries: u32,
}

impl Job {
    /// A job for `op` on the route at `route`, tried until `for_up_to` from now.
    pub fn new(
        plugin: Rc<Plugin>,
        route: usize,
        op: Box<dyn Followup>,
        for_up_to: Duration,
    ) -> Self {
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

    fn store(&self) -> Option<(&Route, &dyn FleetStore)> {
        self.plugin.fleet(self.route)
    }

    /// The route and the store, for the log.
    fn names(&self) -> (&str, &str) {
        self.store().map_or(("?", "?"), |(route, store)| {
            (route.name.as_str(), store.kind())
        })
    }

    /// Whether it can share a callout to `store` with others on `keys` (and is not on one
    /// of them).
    fn nests_with(&self, store: &dyn FleetStore, keys: &[String]) -> bool {
        self.store()
            .is_some_and(|(_, theirs)| theirs.link() == store.link())
            && self.op.nests()
            && !keys.iter().any(|key| key == self.op.key())
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
            if let Some((route, _)) = job.store() {
                job.plugin
                    .round_trip(route, RoundTrip::Error, Duration::ZERO);
            }
            let (route, store) = job.names();
            warn!(
                "callback-guard: route={route} too many {store} jobs pending; cannot {}",
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

    /// Up to `room` waiting jobs a reservation to `store` on `keys` can carry: same link,
    /// each on a key of its own.
    pub fn riders(&mut self, store: &dyn FleetStore, keys: &[String], room: usize) -> Vec<Job> {
        let mut keys = keys.to_vec();
        let mut taken = Vec::new();
        let mut kept = Vec::with_capacity(self.waiting.len());
        for job in self.waiting.drain(..) {
            if taken.len() < room && job.nests_with(store, &keys) {
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
            Progress::Send => {
                job.due = now;
                self.waiting.push(job);
                self.tick_within(Duration::ZERO);
            }
            Progress::Done(Ok(_)) => {}
            Progress::Done(Err(problem))
                if now >= job.until || self.draining.is_some_and(|end| now >= end) =>
            {
                let (route, store) = job.names();
                warn!(
                    "callback-guard: route={route} cannot {} in {store} after {} tries, giving up: {problem}",
                    job.op.what(),
                    job.tries
                )
            }
            Progress::Done(Err(problem)) => {
                let (route, store) = job.names();
                let log = format!(
                    "callback-guard: route={route} cannot {} in {store} yet (try {}): {problem}; trying again",
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
    /// link where the store allows.
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
        let Some((route, store)) = first.store() else {
            return;
        };
        let steps: Vec<Step> = jobs.iter().map(|job| job.op.step()).collect();
        let callout = store.callout(&steps);
        let timeout = Duration::from_millis(u64::from(store.timeout_ms()));
        match host::dispatch(store.link(), &callout, timeout) {
            Ok(token) => {
                self.in_flight.insert(token, (jobs, Instant::now()));
            }
            Err(status) => {
                first
                    .plugin
                    .round_trip(route, RoundTrip::Error, Duration::ZERO);
                let problem = StoreError::Unavailable(format!(
                    "Envoy refused the callout to cluster {}: {status:?}",
                    store.link().cluster
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

/// What each job of one callout to `store` comes to, given its answer: alone, or one of
/// a batch.
pub fn progress(
    store: &dyn FleetStore,
    jobs: Vec<Job>,
    response: &Response,
) -> Vec<(Job, Progress<Settled>)> {
    if jobs.len() == 1 {
        let answer = |mut job: Job| {
            let progress = job.op.on_answer(response);
            (job, progress)
        };
        return jobs.into_iter().map(answer).collect();
    }
    let shares = store.split(response, jobs.len());
    riders_progress(jobs, shares)
}

/// What each job that shared a callout comes to, given its share of the answer, in order.
pub fn riders_progress(
    jobs: Vec<Job>,
    shares: impl IntoIterator<Item = Share>,
) -> Vec<(Job, Progress<Settled>)> {
    let mut shares = shares.into_iter();
    jobs.into_iter()
        .map(|mut job| {
            let progress = match shares.next() {
                Some(share) => job.op.on_share(share),
                None => Progress::Done(Err(StoreError::Malformed("no answer for it in a batch"))),
            };
            (job, progress)
        })
        .collect()
}

/// Due jobs grouped into callouts: on one link, on distinct keys, up to the store's
/// [`max_batch`](FleetStore::max_batch) per call where it batches; everything else alone.
fn batches(jobs: Vec<Job>) -> Vec<Vec<Job>> {
    let mut out: Vec<Vec<Job>> = Vec::new();
    for job in jobs {
        // A job that nests joins a batch on its store's link, short of the store's size,
        // where no other job is on its key.
        let store = job
            .store()
            .filter(|_| job.op.nests())
            .map(|(_, store)| store);
        let open = store.and_then(|store| {
            out.iter_mut().find(|batch| {
                batch.len() < store.max_batch()
                    && batch
                        .iter()
                        .all(|other| other.nests_with(store, &[]) && other.op.key() != job.op.key())
            })
        });
        match open {
            Some(batch) => batch.push(job),
            None => out.push(vec![job]),
        }
    }
    out
}
