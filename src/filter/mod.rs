//! The proxy-wasm glue: translates Envoy callbacks into calls on the pure core, and the
//! core's verdicts into replies, metrics, filter state and log lines. Host failures become
//! rejections or log lines, never panics.

mod body;
mod host;
mod lane;
mod outbox;

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, Status};

use crate::host_calls::{count, HostCall};
use crate::shared_data::HostStore;
use body::Hashing;
use callback_guard::config;
use callback_guard::guard::{self, Accepted, Pending, Prior, Reserved, Step};
use callback_guard::metrics::RouteMetrics;
use callback_guard::policy::{Mode, Policy, Route};
use callback_guard::providers::Reply;
use callback_guard::remote_key::Fetch;
use callback_guard::replay::Outcome;
use callback_guard::request::{Header, HeaderMap, RequestHead};
use callback_guard::store::{
    self, Answer, FleetStore, OnError, Progress, Reserve, Response, RoundTrip, Share, StoreError,
};
use callback_guard::verdict::{Reason, Rejection};
use host::{Connection, Metadata};
use lane::Lane;
use outbox::{Job, Outbox};

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Filter state key: `%FILTER_STATE(wasm.callback_guard:PLAIN)%` in an access log.
const VERDICT_PROPERTY: &str = "callback_guard";
/// Where the bench's counting build answers its host-call counts.
#[cfg(feature = "count-host-calls")]
const HOST_CALLS_PATH: &[u8] = b"/__callback_guard/host_calls";

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    std::panic::set_hook(Box::new(|panic| {
        // A trap fails the stream closed; make sure the reason reaches Envoy's log.
        let _ = hostcalls::log(LogLevel::Critical, &format!("callback-guard panicked: {panic}"));
    }));
    proxy_wasm::set_root_context(|context_id| {
        let lane = Rc::new(RefCell::new(Lane::default()));
        lane.borrow_mut().set_root(context_id);
        Box::new(GuardRoot {
            plugin: None,
            outbox: Rc::default(),
            lane,
            next_sample: Instant::now(),
        })
    });
}}

/// The configured policy and, route by route, its metrics and its verdicts.
struct Plugin {
    policy: Policy,
    metrics: Vec<RouteMetrics<Option<u32>>>,
    /// Route by route, the access-log verdict of each scheme and key it accepts, written
    /// once here rather than formatted for every request.
    verdicts: Vec<Vec<(&'static str, String, String)>>,
}

/// The access-log verdict of a request that verified: `retry` after a failed delivery, a
/// `repeat` of a delivered one (its provider repeats itself).
fn verified_verdict(route: &str, scheme: &str, key: &str, retry: bool, repeat: bool) -> String {
    let retry = if retry { " retry=true" } else { "" };
    let repeat = if repeat { " repeat=true" } else { "" };
    format!("verified route={route} scheme={scheme} key={key}{retry}{repeat}")
}

impl Plugin {
    /// A route's verdict for `scheme` and `key` on first delivery.
    fn verdict(&self, route: &Route, scheme: &str, key: &str) -> Option<&str> {
        let route = route_index(&self.policy, route);
        let at = self.verdict_index(route, scheme, key)?;
        Some(self.verdicts.get(route)?.get(at)?.2.as_str())
    }

    /// Where `scheme` and `key` are among the verdicts of the route at `route`.
    fn verdict_index(&self, route: usize, scheme: &str, key: &str) -> Option<usize> {
        let verdicts = self.verdicts.get(route)?;
        verdicts
            .iter()
            .position(|(s, k, _)| *s == scheme && k == key)
    }

    fn metrics(&self, route: &Route) -> Option<&RouteMetrics<Option<u32>>> {
        self.metrics.get(route_index(&self.policy, route))
    }

    /// A route's fleet-wide store, by index.
    fn fleet(&self, route: usize) -> Option<(&Route, &dyn FleetStore)> {
        let route = self.policy.routes.get(route)?;
        Some((route, route.replay.as_ref()?.fleet.as_deref()?))
    }

    /// Reads the answer to a callout sent to the route's fleet-wide store at `sent`, and
    /// counts the round trip.
    fn store_answer(
        &self,
        route: &Route,
        store: &dyn FleetStore,
        sent: Instant,
        sizes: (usize, usize, usize),
    ) -> Response {
        let response = host::store_response(store.link(), sizes);
        self.round_trip(route, store.round_trip(&response), sent.elapsed());
        response
    }

    /// Counts one round trip to a route's fleet-wide store and its latency.
    fn round_trip(&self, route: &Route, result: RoundTrip, took: Duration) {
        let Some(store) = self.metrics(route).and_then(|m| m.store.as_ref()) else {
            return;
        };
        host::increment(match result {
            RoundTrip::Ok => store.ok,
            RoundTrip::Error => store.error,
            RoundTrip::Timeout => store.timeout,
        });
        host::record(
            store.round_trip_us,
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
        );
    }
}

struct GuardRoot {
    plugin: Option<Rc<Plugin>>,
    outbox: Rc<RefCell<Outbox>>,
    lane: Rc<RefCell<Lane>>,
    /// When the replay occupancy gauges are next sampled.
    next_sample: Instant,
}

/// How often each VM samples its routes' replay occupancy into the gauges: cheap (a few
/// hundred shared-data reads), frequent enough for an alert to fire long before a cache
/// fills, whose window is minutes to days.
const OCCUPANCY_PERIOD: Duration = Duration::from_secs(10);

impl Plugin {
    /// The tick period while no store is owed anything: the occupancy sampling, where a
    /// route has replay memory to sample.
    fn idle_tick_ms(&self) -> u32 {
        let sampled = self
            .policy
            .routes
            .iter()
            .any(|route| route.replay.is_some());
        if sampled {
            u32::try_from(OCCUPANCY_PERIOD.as_millis()).unwrap_or(u32::MAX)
        } else {
            0
        }
    }

    /// Records each route's replay occupancy in its gauge.
    fn sample_occupancy(&self) {
        let (now, _) = host::clock();
        let now = u32::try_from(now.unix_secs()).unwrap_or(u32::MAX);
        for (route, metrics) in self.policy.routes.iter().zip(&self.metrics) {
            let (Some(replay), Some(gauges)) = (&route.replay, &metrics.replay) else {
                continue;
            };
            match replay.cache.occupancy_percent(&HostStore, now) {
                Ok(percent) => host::record(gauges.occupancy_percent, u64::from(percent)),
                Err(problem) => warn!(
                    "callback-guard: route={} cannot sample replay occupancy: {problem}",
                    route.name
                ),
            }
        }
    }
}

impl GuardRoot {
    /// Sends the reservations waiting in the lane, each as a leader, while callouts may go.
    fn launch_waiting(&self) {
        let root = self.lane.borrow().root();
        loop {
            let next = self.lane.borrow_mut().next_leader();
            let Some(next) = next else { return };
            lane::as_context(root, &next, GuardRequest::resend);
        }
    }
}

impl Context for GuardRoot {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        num_trailers: usize,
    ) {
        self.lane.borrow_mut().running_root();
        let mut outbox = self.outbox.borrow_mut();
        let Some((jobs, sent)) = outbox.take_in_flight(token) else {
            drop(outbox);
            // A reservation the root sent for a request that waited: its answer.
            let owner = self.lane.borrow_mut().came_back(token);
            if let Some(owner) = owner {
                let root = self.lane.borrow().root();
                lane::as_context(root, &owner, |request| {
                    request.on_http_call_response(token, num_headers, body_size, num_trailers);
                });
            }
            self.launch_waiting();
            return;
        };
        let Some(plugin) = jobs.first().map(|job| job.plugin.clone()) else {
            return;
        };
        let Some((route, store)) = jobs.first().and_then(|job| plugin.fleet(job.route)) else {
            return;
        };
        let sizes = (num_headers, body_size, num_trailers);
        let response = plugin.store_answer(route, store, sent, sizes);
        for (job, progress) in outbox::progress(store, jobs, &response) {
            outbox.answered(job, progress);
        }
        if outbox.drained() {
            let _ = hostcalls::done();
        }
    }

    /// Envoy is done with this VM (a configuration change, or shutting down): what is
    /// still owed to the stores goes now, and Envoy waits for it a few seconds at most.
    fn on_done(&mut self) -> bool {
        self.outbox.borrow_mut().drain()
    }
}

impl RootContext for GuardRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        proxy_wasm::set_log_level(host::log_level());
        let bytes = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(status) => {
                error!("callback-guard: cannot read the plugin configuration: {status:?}");
                return false;
            }
        };
        match config::parse(&bytes, &|name| std::env::var(name).ok()) {
            Ok(policy) => {
                for warning in &policy.warnings {
                    warn!("callback-guard: configuration: {warning}");
                }
                let routes: Vec<_> = policy
                    .routes
                    .iter()
                    .map(|r| format!("{}={}{}", r.name, r.path_prefix.as_str(), shadow_note(r)))
                    .collect();
                info!("callback-guard {VERSION}: protecting {}", routes.join(", "));
                let metrics = policy
                    .routes
                    .iter()
                    .map(|route| RouteMetrics::define(route, host::define_metric))
                    .collect();
                let verdicts = policy
                    .routes
                    .iter()
                    .map(|route| {
                        let schemes = route.provider.schemes();
                        let each = schemes.into_iter().flat_map(|(scheme, keys)| {
                            keys.into_iter().map(move |key| {
                                let verdict =
                                    verified_verdict(&route.name, scheme, key, false, false);
                                (scheme, key.to_string(), verdict)
                            })
                        });
                        each.collect()
                    })
                    .collect();
                let plugin = Rc::new(Plugin {
                    policy,
                    metrics,
                    verdicts,
                });
                self.outbox.borrow_mut().set_tick(plugin.idle_tick_ms());
                self.plugin = Some(plugin);
                true
            }
            Err(problem) => {
                error!("callback-guard: invalid configuration: {problem}");
                false
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let request = Rc::new_cyclic(|me| {
            RefCell::new(GuardRequest {
                id: context_id,
                me: me.clone(),
                plugin: self.plugin.clone(),
                outbox: self.outbox.clone(),
                lane: self.lane.clone(),
                state: State::Idle,
                unsure: None,
                spent: Duration::ZERO,
            })
        });
        Some(Box::new(RequestContext(request)))
    }

    fn on_tick(&mut self) {
        self.lane.borrow_mut().running_root();
        self.launch_waiting();
        let idle_ms = self
            .plugin
            .as_ref()
            .map_or(0, |plugin| plugin.idle_tick_ms());
        {
            let mut outbox = self.outbox.borrow_mut();
            outbox.send_due();
            let next = outbox.next_tick_ms(idle_ms);
            outbox.set_tick(next);
            if outbox.drained() {
                let _ = hostcalls::done();
            }
        }
        let Some(plugin) = self.plugin.clone() else {
            return;
        };
        if Instant::now() >= self.next_sample && idle_ms > 0 {
            self.next_sample = Instant::now() + OCCUPANCY_PERIOD;
            plugin.sample_occupancy();
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// What a shadow-mode route's verdicts begin with: it records them, and forwards instead.
fn shadow_prefix(route: &Route) -> &'static str {
    match route.mode {
        Mode::Shadow => "shadow-",
        Mode::Enforce => "",
    }
}

fn shadow_note(route: &Route) -> &'static str {
    match route.mode {
        Mode::Shadow => " (shadow)",
        Mode::Enforce => "",
    }
}

/// A request as Envoy holds it. Its state is shared so that another request's callout
/// can carry this one's reservation and hand it the answer (see [`lane`]).
struct RequestContext(Rc<RefCell<GuardRequest>>);

impl RequestContext {
    /// The request, with its context noted as the one whose callback runs.
    fn enter(&self) -> std::cell::RefMut<'_, GuardRequest> {
        let request = self.0.borrow_mut();
        request.lane.borrow_mut().running(request.id);
        request
    }
}

impl Context for RequestContext {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, trailers: usize) {
        self.enter()
            .on_http_call_response(token, headers, body, trailers);
    }
}

impl HttpContext for RequestContext {
    fn on_http_request_headers(&mut self, headers: usize, end_of_stream: bool) -> Action {
        self.enter().on_http_request_headers(headers, end_of_stream)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.enter().on_http_request_body(body_size, end_of_stream)
    }

    fn on_http_request_trailers(&mut self, trailers: usize) -> Action {
        self.enter().on_http_request_trailers(trailers)
    }

    fn on_http_response_headers(&mut self, headers: usize, end_of_stream: bool) -> Action {
        self.enter()
            .on_http_response_headers(headers, end_of_stream)
    }

    fn on_log(&mut self) {
        self.enter().on_log();
    }
}

struct GuardRequest {
    /// This request's context, to act as it when another request hands it an answer.
    id: u32,
    me: Weak<RefCell<GuardRequest>>,
    plugin: Option<Rc<Plugin>>,
    outbox: Rc<RefCell<Outbox>>,
    lane: Rc<RefCell<Lane>>,
    state: State,
    /// A reservation given up on whose writes may still land, when the route fails open
    /// and forwarded anyway: resolved to the delivery's outcome at the settle.
    unsure: Option<(usize, Box<dyn Reserve>)>,
    /// The filter's own time on this request, for the verification-time histogram.
    spent: Duration,
}

/// Where one request stands. Routes are referenced by index into the shared policy.
enum State {
    /// Not protected, rejected, or forwarded with nothing left to do.
    Idle,
    /// Waiting for the complete body; the headers are kept to finish the verdict, with
    /// the scheme and key that verified at the headers, if one did (by its place in the
    /// route's verdicts, which name both).
    AwaitingBody {
        route: usize,
        headers: HeaderMap,
        prior: Option<usize>,
        /// The body so far and its MACs, where the scheme signs the raw body alone.
        hashing: Option<Hashing>,
    },
    /// Verified; paused until the store answers the reservation (callout `token`), or the
    /// route's timeout, counted from the first call, runs out.
    Reserving(Box<Reserving>),
    /// Forwarded with a replay reservation to settle when the upstream answers.
    Reserved { route: usize, reserved: Reserved },
    /// Paused while the key the body names is fetched (callout `token`); the body is kept
    /// to judge again with it.
    Fetching(Box<Fetching>),
    /// Paused while the provider's endpoint check is confirmed to the provider (callout
    /// `token`: SNS's `SubscribeURL`), to answer it once that answers.
    Confirming(Box<Confirming>),
}

struct Confirming {
    route: usize,
    reply: Reply,
    reserved: Option<Reserved>,
    /// The request's id, for the verdict's log line.
    request_id: Vec<Header>,
    token: u32,
}

struct Fetching {
    route: usize,
    headers: HeaderMap,
    body: Vec<u8>,
    fetch: Fetch,
    token: u32,
}

/// A reservation on its way to the route's fleet-wide store.
struct Reserving {
    route: usize,
    headers: HeaderMap,
    pending: Pending,
    op: Box<dyn Reserve>,
    /// The callout this request sent, if it sent one; `None` while it waits in the lane
    /// or rides on another's.
    token: Option<u32>,
    sent: Instant,
    deadline: Instant,
    /// Callouts the reservation may still send again after one failed.
    retries: u8,
    /// Settles and resolutions that went along in the same callout.
    riders: Vec<Job>,
    /// Other requests' reservations that went along, answered after this one's.
    followers: Vec<Rc<RefCell<GuardRequest>>>,
}

impl Context for GuardRequest {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        num_trailers: usize,
    ) {
        if matches!(&self.state, State::Fetching(f) if f.token == token) {
            return self.on_fetched(num_headers, body_size);
        }
        if matches!(&self.state, State::Confirming(c) if c.token == token) {
            return self.on_confirmed(num_headers, body_size);
        }
        if !matches!(&self.state, State::Reserving(r) if r.token == Some(token)) {
            return;
        }
        let State::Reserving(reserving) = std::mem::replace(&mut self.state, State::Idle) else {
            return;
        };
        self.lane.borrow_mut().came_back(token);
        let mut reserving = *reserving;
        let riders = std::mem::take(&mut reserving.riders);
        let followers = std::mem::take(&mut reserving.followers);
        // Both always exist in this state; should they not, the paused request must still end.
        let Some(plugin) = self.plugin.clone() else {
            self.outbox.borrow_mut().put_back(riders);
            self.hand_over(followers, |_| None);
            host::send_json(503, &Rejection::new(Reason::NotConfigured, "").body());
            return;
        };
        let Some((route, store)) = plugin.fleet(reserving.route) else {
            self.outbox.borrow_mut().put_back(riders);
            self.hand_over(followers, |_| None);
            host::send_json(
                503,
                &Rejection::new(Reason::ReplayStoreUnavailable, "").body(),
            );
            return;
        };
        let sizes = (num_headers, body_size, num_trailers);
        let response = plugin.store_answer(route, store, reserving.sent, sizes);
        let (progress, riders, replies) = if riders.is_empty() && followers.is_empty() {
            (reserving.op.on_answer(&response), Vec::new(), Vec::new())
        } else {
            // Shares in the callout's order: this one's, its followers', the riders'.
            let mut shares = store
                .split(&response, 1 + followers.len() + riders.len())
                .into_iter();
            let progress = reply_progress(&mut *reserving.op, shares.next());
            let theirs: Vec<Share> = shares.by_ref().take(followers.len()).collect();
            (progress, outbox::riders_progress(riders, shares), theirs)
        };
        {
            let mut outbox = self.outbox.borrow_mut();
            for (job, progress) in riders {
                outbox.answered(job, progress);
            }
        }
        self.advance(&plugin, route, store, reserving, progress);
        let mut replies = replies.into_iter();
        self.hand_over(followers, |_| replies.next());
        self.wake_root();
    }
}

impl HttpContext for GuardRequest {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        let started = Instant::now();
        let Some(plugin) = self.plugin.clone() else {
            // Envoy refuses a plugin whose configuration failed, so this is unreachable in
            // practice; if it ever happens, nothing passes.
            error!("callback-guard: request before a valid configuration; refusing");
            host::send_json(503, &Rejection::new(Reason::NotConfigured, "").body());
            return Action::Pause;
        };
        let Some(headers) = host::request_headers() else {
            return fail_closed("cannot read request headers");
        };
        let head = RequestHead::from_map(&headers).attested(&Metadata);
        #[cfg(feature = "count-host-calls")]
        if head.first(":path") == Some(HOST_CALLS_PATH) {
            host::send_json(200, &crate::host_calls::totals_json());
            return Action::Pause;
        }
        for copy in plugin.policy.verdict_header_copies(&head) {
            count(HostCall::RequestHeaderSet);
            let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, copy, None);
        }
        let (step, prior) = guard::on_headers_verified(&plugin.policy, &head, &Connection);
        self.spent += started.elapsed();
        match step {
            Step::NeedBody(route) => {
                let index = route_index(&plugin.policy, route);
                let prior = match prior {
                    Some(Prior::Verified(scheme, key)) => plugin.verdict_index(index, scheme, key),
                    Some(Prior::Hashed(_) | Prior::Fetched(_)) | None => None,
                };
                let hashing = route
                    .provider
                    .streamed_mac(&head)
                    .map(|streamed| Hashing::new(&streamed));
                self.state = State::AwaitingBody {
                    route: index,
                    headers,
                    prior,
                    hashing,
                };
                if end_of_stream {
                    return self.finish(&plugin, 0);
                }
                if plugin.policy.hold_headers {
                    Action::Pause
                } else {
                    // Without allow_on_headers_stop_iteration the headers must go on now;
                    // a body-dependent rejection will reset the upstream request instead.
                    Action::Continue
                }
            }
            // Only a body step reserves; should that ever change, nothing passes unreserved.
            step => self.take(&plugin, &head, step),
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let State::AwaitingBody { route, .. } = self.state else {
            return Action::Continue;
        };
        let Some(plugin) = self.plugin.clone() else {
            return Action::Continue;
        };
        let Some(route) = plugin.policy.routes.get(route) else {
            return Action::Continue;
        };
        if body_size > route.max_body_bytes as usize {
            // Refused without copying the oversized body into the VM.
            let State::AwaitingBody { headers, .. } =
                std::mem::replace(&mut self.state, State::Idle)
            else {
                return Action::Continue;
            };
            let rejection = guard::too_large(route);
            return self.reject(&plugin, route, &RequestHead::from_map(&headers), &rejection);
        }
        if !end_of_stream {
            // Envoy keeps buffering; the next call sees the whole body so far.
            if let State::AwaitingBody {
                hashing: Some(hashing),
                ..
            } = &mut self.state
            {
                let started = Instant::now();
                if let Err(status) = hashing.take_in(body_size) {
                    return fail_closed(&format!("cannot read the request body: {status:?}"));
                }
                self.spent += started.elapsed();
            }
            return Action::Pause;
        }
        self.finish(&plugin, body_size)
    }

    fn on_http_request_trailers(&mut self, _trailers: usize) -> Action {
        // With trailers the body callback never sees end_of_stream: finish here.
        if !matches!(self.state, State::AwaitingBody { .. }) {
            return Action::Continue;
        }
        let Some(plugin) = self.plugin.clone() else {
            return Action::Continue;
        };
        self.finish(&plugin, usize::MAX)
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if let State::Reserved { .. } = self.state {
            count(HostCall::ResponseHeader);
            let status = hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, ":status");
            let delivered = matches!(status, Ok(Some(s)) if s.first() == Some(&b'2'));
            self.settle(if delivered {
                Outcome::Delivered
            } else {
                Outcome::Failed
            });
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        // Ended while the store was asked (the client went away): the answer will never come
        // here, so what rode along waits again and the reservation is resolved.
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Reserving(reserving) => {
                let Reserving {
                    route,
                    mut op,
                    token,
                    riders,
                    followers,
                    ..
                } = *reserving;
                self.outbox.borrow_mut().put_back(riders);
                op.abandon();
                self.unsure = Some((route, op));
                self.resolve_unsure(Outcome::Failed);
                // Its callout's answer will not reach it: those that went along ask again.
                if let Some(token) = token {
                    self.lane.borrow_mut().abandoned(token);
                }
                self.hand_over(followers, |_| None);
                self.wake_root();
            }
            // Reset or timeout before any response headers: the delivery failed.
            reserved @ State::Reserved { .. } => {
                self.state = reserved;
                self.settle(Outcome::Failed);
            }
            _ => {}
        }
    }
}

impl GuardRequest {
    /// Judges the complete body, `size` bytes (`usize::MAX`: all there is).
    fn finish(&mut self, plugin: &Plugin, size: usize) -> Action {
        let started = Instant::now();
        let State::AwaitingBody {
            route,
            headers,
            prior,
            hashing,
        } = std::mem::replace(&mut self.state, State::Idle)
        else {
            return Action::Continue;
        };
        let verified = prior.and_then(|at| plugin.verdicts.get(route)?.get(at));
        let Some(route) = plugin.policy.routes.get(route) else {
            return Action::Continue;
        };
        let head = RequestHead::from_map(&headers).attested(&Metadata);
        let hashed = match hashing {
            Some(mut hashing) => match hashing.take_in(size) {
                Ok(()) => Some(hashing.finish()),
                Err(status) => {
                    return fail_closed(&format!("cannot read the request body: {status:?}"))
                }
            },
            None => None,
        };
        // A body whose MAC did not verify is refused without being read into the VM.
        if let Some(step) = hashed
            .as_ref()
            .and_then(|hashed| guard::on_hashed(route, &head, hashed))
        {
            self.spent += started.elapsed();
            return self.take(plugin, &head, step);
        }
        let read = match &hashed {
            Some(hashed) => body::read_hashed(hashed),
            None => body::read_whole(size).map(Some),
        };
        let body = match read {
            Ok(Some(body)) => body,
            Ok(None) => return fail_closed("the request body changed while it was hashed"),
            Err(status) => {
                return fail_closed(&format!("cannot read the request body: {status:?}"))
            }
        };
        let (now, nanos) = host::clock();
        let prior = match (verified, &hashed) {
            (Some((scheme, key, _)), _) => Some(Prior::Verified(scheme, key)),
            (None, Some(hashed)) => Some(Prior::Hashed(hashed)),
            (None, None) => None,
        };
        let step = guard::on_body_verified(route, &head, &body, prior, now, &HostStore, nanos | 1);
        self.spent += started.elapsed();
        match step {
            Step::Reserve(route, pending) => self.reserve(plugin, route, headers, pending),
            Step::Fetch(route, fetch) => self.fetch(plugin, route, headers, body, fetch),
            step => self.take(plugin, &head, step),
        }
    }

    /// Fetches the key the body names through the route's cluster; the request stays
    /// paused until it answers (`on_fetched`) or the fetch's timeout runs out.
    fn fetch(
        &mut self,
        plugin: &Plugin,
        route: &Route,
        headers: HeaderMap,
        body: Vec<u8>,
        fetch: Fetch,
    ) -> Action {
        let timeout = Duration::from_millis(u64::from(fetch.timeout_ms));
        match host::fetch(&fetch.cluster, &fetch.authority, &fetch.path, timeout) {
            Ok(token) => {
                self.state = State::Fetching(Box::new(Fetching {
                    route: route_index(&plugin.policy, route),
                    headers,
                    body,
                    fetch,
                    token,
                }));
                Action::Pause
            }
            Err(status) => {
                let rejection = callout_refused(&fetch.cluster, status);
                self.reject(plugin, route, &RequestHead::from_map(&headers), &rejection)
            }
        }
    }

    /// The fetched key: kept for every worker, then the body judged with it, or refused
    /// (503) without one.
    fn on_fetched(&mut self, num_headers: usize, body_size: usize) {
        let State::Fetching(fetching) = std::mem::replace(&mut self.state, State::Idle) else {
            return;
        };
        let Fetching {
            route,
            headers,
            body,
            fetch,
            ..
        } = *fetching;
        let Some(plugin) = self.plugin.clone() else {
            host::send_json(503, &Rejection::new(Reason::NotConfigured, "").body());
            return;
        };
        let Some(route) = plugin.policy.routes.get(route) else {
            host::send_json(503, &Rejection::new(Reason::NotConfigured, "").body());
            return;
        };
        let started = Instant::now();
        let head = RequestHead::from_map(&headers).attested(&Metadata);
        let (status, answer) = host::call_response(num_headers, body_size);
        let (now, nanos) = host::clock();
        let action = match guard::keep_fetched(&fetch, status, &answer, now, &HostStore) {
            Ok(key) => {
                let prior = Some(Prior::Fetched(&key));
                let step =
                    guard::on_body_verified(route, &head, &body, prior, now, &HostStore, nanos | 1);
                self.spent += started.elapsed();
                match step {
                    Step::Reserve(route, pending) => self.reserve(&plugin, route, headers, pending),
                    step => self.take(&plugin, &head, step),
                }
            }
            Err(rejection) => self.reject(&plugin, route, &head, &rejection),
        };
        if let Action::Continue = action {
            if !host::resume_request() {
                error!("callback-guard: cannot resume a request after its key was fetched");
            }
        }
    }

    /// Carries out a verdict: forward, refuse, or answer an endpoint check (and settle its
    /// reservation as delivered, since the edge delivered it). Reservations are asked for
    /// where the request's headers can be kept, never here.
    fn take(&mut self, plugin: &Plugin, head: &RequestHead, step: Step) -> Action {
        match step {
            Step::Forward(accepted) => self.forward(plugin, head, accepted),
            Step::Reject(route, rejection) => self.reject(plugin, route, head, &rejection),
            Step::Reply(route, reply, reserved)
                if reply.confirm.is_some() && route.mode == Mode::Enforce =>
            {
                self.confirm(plugin, route, head, reply, reserved)
            }
            Step::Reply(route, reply, reserved) => {
                let action = self.reply(plugin, route, head, &reply);
                if let Some(reserved) = reserved {
                    self.hold(plugin, route, reserved);
                    // Shadow mode forwards the check: its response settles it.
                    if route.mode == Mode::Enforce {
                        self.settle(Outcome::Delivered);
                    }
                }
                action
            }
            Step::Reserve(route, _) => {
                let rejection =
                    Rejection::new(Reason::ReplayStoreUnavailable, "reserve without headers");
                self.reject(plugin, route, head, &rejection)
            }
            Step::Fetch(route, _) => {
                let rejection = Rejection::new(Reason::KeyUnavailable, "fetch without a body");
                self.reject(plugin, route, head, &rejection)
            }
            Step::Unprotected | Step::NeedBody(_) => Action::Continue,
        }
    }

    /// Makes the GET a reply waits for (SNS's `SubscribeURL`) through the route's cluster;
    /// the request stays paused until it answers (`on_confirmed`) or its timeout runs out.
    fn confirm(
        &mut self,
        plugin: &Plugin,
        route: &Route,
        head: &RequestHead,
        reply: Reply,
        reserved: Option<Reserved>,
    ) -> Action {
        let Some(confirm) = &reply.confirm else {
            return Action::Continue;
        };
        let timeout = Duration::from_millis(u64::from(confirm.timeout_ms));
        match host::fetch(&confirm.cluster, &confirm.authority, &confirm.path, timeout) {
            Ok(token) => {
                self.state = State::Confirming(Box::new(Confirming {
                    route: route_index(&plugin.policy, route),
                    reply,
                    reserved,
                    request_id: vec![("x-request-id".into(), head.request_id().into_bytes())],
                    token,
                }));
                Action::Pause
            }
            Err(status) => {
                let rejection = callout_refused(&confirm.cluster, status);
                self.unconfirmed(plugin, route, head, reserved, &rejection)
            }
        }
    }

    /// The provider's answer to the confirmation: the reply if 200 (the check delivered),
    /// else 503 (failed: the provider's retry may try again).
    fn on_confirmed(&mut self, num_headers: usize, body_size: usize) {
        let State::Confirming(confirming) = std::mem::replace(&mut self.state, State::Idle) else {
            return;
        };
        let Confirming {
            route,
            reply,
            reserved,
            request_id,
            ..
        } = *confirming;
        let (Some(plugin), head) = (self.plugin.clone(), RequestHead::new(&request_id)) else {
            host::send_json(503, &Rejection::new(Reason::NotConfigured, "").body());
            return;
        };
        let Some(route) = plugin.policy.routes.get(route) else {
            host::send_json(503, &Rejection::new(Reason::NotConfigured, "").body());
            return;
        };
        let (status, _) = host::call_response(num_headers, body_size);
        if status != Some(200) {
            let url = reply
                .confirm
                .as_ref()
                .map_or("", |confirm| confirm.url.as_str());
            let rejection = Rejection::new(
                Reason::KeyUnavailable,
                format!("the confirmation {url} answered {status:?}, not 200"),
            );
            self.unconfirmed(&plugin, route, &head, reserved, &rejection);
            return;
        }
        self.reply(&plugin, route, &head, &reply);
        if let Some(reserved) = reserved {
            self.hold(&plugin, route, reserved);
            self.settle(Outcome::Delivered);
        }
    }

    /// A confirmation that could not be made: refused, its reservation failed so that the
    /// provider's retry is judged afresh.
    fn unconfirmed(
        &mut self,
        plugin: &Plugin,
        route: &Route,
        head: &RequestHead,
        reserved: Option<Reserved>,
        rejection: &Rejection,
    ) -> Action {
        let action = self.reject(plugin, route, head, rejection);
        if let Some(reserved) = reserved {
            self.hold(plugin, route, reserved);
            self.settle(Outcome::Failed);
        }
        action
    }

    /// Keeps a reservation of `route` to settle ([`Self::settle`], or the response's status).
    fn hold(&mut self, plugin: &Plugin, route: &Route, reserved: Reserved) {
        self.state = State::Reserved {
            route: route_index(&plugin.policy, route),
            reserved,
        };
    }

    /// Asks the route's fleet-wide store to reserve the id; the request stays paused until it
    /// answers (on_http_call_response) or the timeout runs out (the callout's own).
    fn reserve(
        &mut self,
        plugin: &Plugin,
        route: &Route,
        headers: HeaderMap,
        pending: Pending,
    ) -> Action {
        let index = route_index(&plugin.policy, route);
        let Some((_, store)) = plugin.fleet(index) else {
            return self.conclude(
                plugin,
                route,
                headers,
                pending,
                Err(StoreError::Unavailable(
                    "route has no fleet-wide store".into(),
                )),
            );
        };
        let now = Instant::now();
        let op = store.begin_reserve(
            &pending.id,
            &pending.fingerprint,
            pending.now,
            host::random_u64(),
        );
        let reserving = Reserving {
            route: index,
            headers,
            pending,
            op,
            token: None,
            sent: now,
            deadline: now + Duration::from_millis(u64::from(store.timeout_ms())),
            retries: store.attempts().saturating_sub(1),
            riders: Vec::new(),
            followers: Vec::new(),
        };
        self.send_reservation(plugin, route, store, reserving)
    }

    /// Sends a reservation's request (its first, its next, or the same again after an
    /// error) with its share of what is left of the budget, carrying waiting settles and
    /// other requests' waiting reservations where the store batches; the request then waits
    /// in `Reserving`. While another reservation of this VM is out, it waits in the lane
    /// for it to come back instead. Gives up when no time is left or Envoy refuses the
    /// callout.
    fn send_reservation(
        &mut self,
        plugin: &Plugin,
        route: &Route,
        store: &dyn FleetStore,
        mut reserving: Reserving,
    ) -> Action {
        let now = Instant::now();
        let left = reserving.deadline.saturating_duration_since(now);
        if left < Duration::from_millis(1) {
            plugin.round_trip(route, RoundTrip::Timeout, Duration::ZERO);
            return self.give_up(plugin, route, reserving, StoreError::Timeout);
        }
        reserving.token = None;
        if !self.lane.borrow().may_send(self.id, store) {
            self.state = State::Reserving(Box::new(reserving));
            self.lane.borrow_mut().wait(self.me.clone());
            self.wake_root();
            return Action::Pause;
        }
        let attempt = Duration::from_millis(u64::from(store.attempt_timeout_ms()));
        let timeout = left.min(attempt);
        let batch = store.max_batch();
        let (followers, riders) = if batch > 1 && reserving.op.nests() {
            let mut keys = vec![reserving.op.key().to_string()];
            // Only followers with time for the whole callout: it never outlasts theirs.
            let followers =
                self.lane
                    .borrow_mut()
                    .followers(store, &mut keys, now + timeout, batch / 2);
            let room = batch.saturating_sub(1 + followers.len());
            let riders = self.outbox.borrow_mut().riders(store, &keys, room);
            (followers, riders)
        } else {
            (Vec::new(), Vec::new())
        };
        let (followers, theirs): (Vec<_>, Vec<store::Step>) = followers.into_iter().unzip();
        // Answers are shared out by position: this one's, the followers', the riders'.
        let mut steps = Vec::with_capacity(1 + theirs.len() + riders.len());
        steps.push(reserving.op.step());
        steps.extend(theirs);
        steps.extend(riders.iter().map(|job| job.op.step()));
        let callout = store.callout(&steps);
        match host::dispatch(store.link(), &callout, timeout) {
            Ok(token) => {
                self.lane.borrow_mut().sent(token, self.me.clone());
                reserving.token = Some(token);
                reserving.sent = Instant::now();
                reserving.riders = riders;
                reserving.followers = followers;
                self.state = State::Reserving(Box::new(reserving));
                Action::Pause
            }
            Err(status) => {
                self.outbox.borrow_mut().put_back(riders);
                self.hand_over(followers, |_| None);
                plugin.round_trip(route, RoundTrip::Error, Duration::ZERO);
                let problem = StoreError::Unavailable(format!(
                    "Envoy refused the callout to cluster {}: {status:?}",
                    store.link().cluster
                ));
                self.give_up(plugin, route, reserving, problem)
            }
        }
    }

    /// Where a reservation goes after an answer (to its own callout, or its reply in
    /// another's): the next step, the same again while the budget lasts, or the verdict.
    fn advance(
        &mut self,
        plugin: &Plugin,
        route: &Route,
        store: &dyn FleetStore,
        mut reserving: Reserving,
        progress: Progress<Answer>,
    ) {
        let action = match progress {
            // The next step, or the same request again (to another member, as Envoy's
            // balancing picks) while the budget lasts.
            Progress::Send => self.send_reservation(plugin, route, store, reserving),
            Progress::Done(Err(_)) if reserving.retries > 0 => {
                reserving.retries -= 1;
                self.send_reservation(plugin, route, store, reserving)
            }
            Progress::Done(Err(error)) => self.give_up(plugin, route, reserving, error),
            Progress::Done(Ok(answer)) => {
                let Reserving {
                    headers, pending, ..
                } = reserving;
                self.conclude(plugin, route, headers, pending, Ok(answer))
            }
        };
        if let Action::Continue = action {
            if !host::resume_request() {
                error!("callback-guard: cannot resume a request after its reservation");
            }
        }
    }

    /// Hands each follower its share of the answer (`None`: the callout carrying it never
    /// answered, so its write may or may not have landed), under the follower's own
    /// context.
    fn hand_over(
        &self,
        followers: Vec<Rc<RefCell<GuardRequest>>>,
        mut share: impl FnMut(usize) -> Option<Share>,
    ) {
        for (i, follower) in followers.iter().enumerate() {
            let share = share(i);
            lane::as_context(self.id, follower, |theirs| theirs.on_reply(share));
        }
    }

    /// The share of the answer to this request's reservation, carried by another
    /// request's callout.
    fn on_reply(&mut self, share: Option<Share>) {
        let Some((plugin, mut reserving)) = self.take_waiting() else {
            return;
        };
        let Some((route, store)) = plugin.fleet(reserving.route) else {
            return;
        };
        let progress = reply_progress(&mut *reserving.op, share);
        self.advance(&plugin, route, store, reserving, progress);
    }

    /// Sends this waiting reservation: the callout it waited for came back.
    fn resend(&mut self) {
        let Some((plugin, reserving)) = self.take_waiting() else {
            return;
        };
        let Some((route, store)) = plugin.fleet(reserving.route) else {
            return;
        };
        self.advance(&plugin, route, store, reserving, Progress::Send);
    }

    /// The reservation of a request that waits without a callout of its own; a request
    /// that can no longer wait (no plugin or store: unreachable) is answered 503.
    fn take_waiting(&mut self) -> Option<(Rc<Plugin>, Reserving)> {
        if !matches!(&self.state, State::Reserving(r) if r.token.is_none()) {
            return None;
        }
        let State::Reserving(reserving) = std::mem::replace(&mut self.state, State::Idle) else {
            return None;
        };
        match self.plugin.clone() {
            Some(plugin) if plugin.fleet(reserving.route).is_some() => Some((plugin, *reserving)),
            _ => {
                host::send_json(
                    503,
                    &Rejection::new(Reason::ReplayStoreUnavailable, "").body(),
                );
                None
            }
        }
    }

    /// Asks the root for a tick soon when waiting reservations could go now.
    fn wake_root(&self) {
        if self.lane.borrow().launchable() {
            self.outbox.borrow_mut().wake();
        }
    }

    /// The reservation failed for good: the request is judged without the store (refused, or
    /// forwarded on this Envoy's memory where the route fails open), and whatever it may
    /// have written is resolved: failed now, or the delivery's outcome at the settle.
    fn give_up(
        &mut self,
        plugin: &Plugin,
        route: &Route,
        reserving: Reserving,
        problem: StoreError,
    ) -> Action {
        let Reserving {
            route: index,
            headers,
            pending,
            op,
            ..
        } = reserving;
        self.unsure = Some((index, op));
        let action = self.conclude(plugin, route, headers, pending, Err(problem));
        // Not forwarded (refused, or failing closed): nothing was delivered.
        let forwarded = matches!(self.state, State::Reserved { .. });
        let fails_open = plugin
            .fleet(index)
            .is_some_and(|(_, store)| store.on_error() == OnError::FailOpen);
        if !(forwarded && fails_open) {
            self.resolve_unsure(Outcome::Failed);
        }
        action
    }

    /// Queues the resolution of a reservation given up on, if it left writes unanswered.
    fn resolve_unsure(&mut self, outcome: Outcome) {
        let (Some((index, op)), Some(plugin)) = (self.unsure.take(), self.plugin.clone()) else {
            return;
        };
        let Some((_, store)) = plugin.fleet(index) else {
            return;
        };
        if let Some(resolve) = op.resolve(outcome) {
            let for_up_to = Duration::from_secs(u64::from(store.timing().inflight_secs));
            let job = Job::new(plugin.clone(), index, resolve, for_up_to);
            self.outbox.borrow_mut().queue(job);
        }
    }

    /// The verdict once the store answered or failed.
    fn conclude(
        &mut self,
        plugin: &Plugin,
        route: &Route,
        headers: HeaderMap,
        pending: Pending,
        answer: Result<Answer, StoreError>,
    ) -> Action {
        let started = Instant::now();
        let head = RequestHead::from_map(&headers);
        if let Err(problem) = &answer {
            let kind = route.replay.as_ref().and_then(|r| r.fleet.as_deref());
            warn!(
                "callback-guard: route={} replay store {}: {problem} request_id={}",
                route.name,
                kind.map_or("?", |store| store.kind()),
                head.request_id()
            );
        }
        let (_, nanos) = host::clock();
        let step = guard::on_reservation(route, pending, answer, &HostStore, nanos | 1);
        self.spent += started.elapsed();
        self.take(plugin, &head, step)
    }

    fn forward(&mut self, plugin: &Plugin, head: &RequestHead, accepted: Accepted) -> Action {
        let route = accepted.route;
        let retry = accepted.reserved.is_some_and(|r| r.retry);
        let verdict = match plugin.verdict(route, accepted.scheme, accepted.key) {
            Some(verdict) if !retry && !accepted.repeat => Cow::Borrowed(verdict),
            _ => Cow::Owned(verified_verdict(
                &route.name,
                accepted.scheme,
                accepted.key,
                retry,
                accepted.repeat,
            )),
        };
        debug!("callback-guard: {verdict} request_id={}", head.request_id());
        if let Some(metrics) = plugin.metrics(route) {
            host::increment(metrics.accepted(accepted.scheme, accepted.key).flatten());
            if retry {
                host::increment(metrics.retries);
            }
            if accepted.reserved.is_some_and(|r| r.fail_open) {
                host::increment(metrics.store.as_ref().and_then(|s| s.fail_open));
            }
            if accepted.reserved.is_some_and(|r| r.forgot) {
                host::increment(metrics.replay.as_ref().and_then(|r| r.forgotten));
            }
        }
        self.record(plugin, route, &verdict);
        if let Some(name) = &plugin.policy.upstream_header {
            count(HostCall::RequestHeaderSet);
            let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(&verdict));
        }
        if let Some(reserved) = accepted.reserved {
            self.hold(plugin, route, reserved);
        }
        Action::Continue
    }

    fn reject(
        &mut self,
        plugin: &Plugin,
        route: &Route,
        head: &RequestHead,
        rejection: &Rejection,
    ) -> Action {
        let rejection = &route.refusal(rejection);
        let shadow = route.mode == Mode::Shadow;
        let verdict = format!(
            "{}rejected route={} status={} reason={}",
            shadow_prefix(route),
            route.name,
            rejection.status(),
            rejection.reason.code()
        );
        // Debug-quoted: a detail may quote the request, and a quote or separator of its own
        // must not end the field and write another.
        warn!(
            "callback-guard: {verdict} detail={:?} request_id={}",
            rejection.detail,
            head.request_id()
        );
        if let Some(metrics) = plugin.metrics(route) {
            host::increment(metrics.rejected(rejection.reason).flatten());
            if shadow {
                host::increment(metrics.shadow_forwarded);
            }
        }
        self.record(plugin, route, &verdict);
        if shadow {
            return Action::Continue;
        }
        host::send_json(u32::from(rejection.status()), &rejection.body());
        Action::Pause
    }

    /// Answers a provider's endpoint check that verified; a shadow-mode route forwards it
    /// to the application, which answered it before the filter was there.
    fn reply(
        &mut self,
        plugin: &Plugin,
        route: &Route,
        head: &RequestHead,
        reply: &Reply,
    ) -> Action {
        let shadow = route.mode == Mode::Shadow;
        let verdict = format!(
            "{}answered route={} handshake={}",
            shadow_prefix(route),
            route.name,
            reply.handshake
        );
        info!("callback-guard: {verdict} request_id={}", head.request_id());
        if let Some(metrics) = plugin.metrics(route) {
            host::increment(metrics.handshakes);
        }
        self.record(plugin, route, &verdict);
        if shadow {
            return Action::Continue;
        }
        host::send(200, reply.content_type, &reply.body);
        Action::Pause
    }

    /// The verdict for the access log, and the filter's time for the histogram.
    fn record(&mut self, plugin: &Plugin, route: &Route, verdict: &str) {
        count(HostCall::PropertySet);
        let _ = hostcalls::set_property(vec![VERDICT_PROPERTY], Some(verdict.as_bytes()));
        if let Some(metrics) = plugin.metrics(route) {
            let micros = u64::try_from(self.spent.as_micros()).unwrap_or(u64::MAX);
            host::record(metrics.verify_us, micros);
        }
    }

    fn settle(&mut self, outcome: Outcome) {
        let State::Reserved { route, reserved } = std::mem::replace(&mut self.state, State::Idle)
        else {
            return;
        };
        let Some(plugin) = &self.plugin else { return };
        let index = route;
        let Some(route) = plugin.policy.routes.get(route) else {
            return;
        };
        let Some(replay) = &route.replay else { return };
        if let Some(metrics) = plugin.metrics(route) {
            host::increment(match outcome {
                Outcome::Delivered => metrics.delivered,
                Outcome::Failed => metrics.failed,
            });
        }
        let (now, _) = host::clock();
        let now = u32::try_from(now.unix_secs()).unwrap_or(u32::MAX);
        if let Err(problem) = replay.cache.settle(
            &HostStore,
            &reserved.id,
            &reserved.fingerprint,
            outcome,
            now,
        ) {
            // The entry stays in flight until its deadline lapses; the retry then passes.
            warn!(
                "callback-guard: route={} cannot settle a delivery: {problem}",
                route.name
            );
        }
        if let (Some(claim), Some(store)) = (reserved.remote, replay.fleet.as_deref()) {
            if let Some(op) = store.begin_settle(&reserved.id, claim, outcome, now) {
                // Retried for as long as the claim could matter to a retry elsewhere.
                let for_up_to = Duration::from_secs(u64::from(store.timing().inflight_secs));
                let job = Job::new(plugin.clone(), index, op, for_up_to);
                self.outbox.borrow_mut().queue(job);
            }
        }
        self.resolve_unsure(outcome);
    }
}

/// What a reservation's share of a callout's answer comes to; without one (the callout
/// carrying it never answered) its write may or may not have landed.
fn reply_progress(op: &mut dyn Reserve, share: Option<Share>) -> Progress<Answer> {
    match share {
        Some(share) => op.on_share(share),
        None => {
            op.abandon();
            Progress::Done(Err(StoreError::Unavailable(
                "the callout that carried it did not answer".into(),
            )))
        }
    }
}

/// A key callout Envoy would not start (most often: the cluster is not declared).
fn callout_refused(cluster: &str, status: Status) -> Rejection {
    Rejection::new(
        Reason::KeyUnavailable,
        format!("Envoy refused the callout to cluster {cluster} (is it declared?): {status:?}"),
    )
}

fn route_index(policy: &Policy, route: &Route) -> usize {
    policy
        .routes
        .iter()
        .position(|r| std::ptr::eq(r, route))
        .unwrap_or(usize::MAX)
}

fn fail_closed(what: &str) -> Action {
    error!("callback-guard: {what}; refusing");
    host::send_json(503, &Rejection::new(Reason::HostError, "").body());
    Action::Pause
}
