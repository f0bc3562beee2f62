//! The proxy-wasm glue: translates Envoy callbacks into calls on the pure core. Host
//! failures become rejections or log lines, never panics.

use std::rc::Rc;
use std::time::UNIX_EPOCH;

use log::{debug, error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, Status};

use crate::config;
use crate::guard::{self, Accepted, Reserved, Step};
use crate::policy::{Policy, Route};
use crate::replay::{Outcome, SharedStore, StoreError};
use crate::request::{Header, RequestHead};
use crate::verdict::Rejection;

const VERSION: &str = env!("CARGO_PKG_VERSION");

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    std::panic::set_hook(Box::new(|panic| {
        // A trap fails the stream closed; make sure the reason reaches Envoy's log.
        let _ = hostcalls::log(LogLevel::Critical, &format!("callback-guard panicked: {panic}"));
    }));
    proxy_wasm::set_root_context(|_| Box::new(GuardRoot { policy: None }));
}}

struct GuardRoot {
    policy: Option<Rc<Policy>>,
}

impl Context for GuardRoot {}

impl RootContext for GuardRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(status) => {
                error!("callback-guard: cannot read the plugin configuration: {status:?}");
                return false;
            }
        };
        match config::parse(&bytes, &|name| std::env::var(name).ok()) {
            Ok(policy) => {
                let routes: Vec<_> = policy
                    .routes
                    .iter()
                    .map(|r| format!("{}={}", r.name, r.path_prefix))
                    .collect();
                info!("callback-guard {VERSION}: protecting {}", routes.join(", "));
                self.policy = Some(Rc::new(policy));
                true
            }
            Err(problem) => {
                error!("callback-guard: invalid configuration: {problem}");
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(GuardRequest {
            policy: self.policy.clone(),
            state: State::Idle,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct GuardRequest {
    policy: Option<Rc<Policy>>,
    state: State,
}

/// Where one request stands. Routes are referenced by index into the shared policy.
enum State {
    /// Not protected, rejected, or forwarded with nothing left to do.
    Idle,
    /// Waiting for the complete body; the headers are kept to finish the verdict.
    AwaitingBody { route: usize, headers: Vec<Header> },
    /// Forwarded with a replay reservation to settle when the upstream answers.
    Reserved { route: usize, reserved: Reserved },
}

impl Context for GuardRequest {}

impl HttpContext for GuardRequest {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        let Some(policy) = self.policy.clone() else {
            // Envoy refuses a plugin whose configuration failed, so this is unreachable in
            // practice; if it ever happens, nothing passes.
            error!("callback-guard: request before a valid configuration; refusing");
            send_json(503, r#"{"error":"unavailable","reason":"not_configured"}"#);
            return Action::Pause;
        };
        let headers = match hostcalls::get_map_bytes(MapType::HttpRequestHeaders) {
            Ok(headers) => headers,
            Err(status) => return fail_closed("cannot read request headers", status),
        };
        let head = RequestHead::new(&headers);
        match guard::on_headers(&policy, &head, downstream_tls) {
            Step::Unprotected => Action::Continue,
            Step::NeedBody(route) => {
                let index = route_index(&policy, route);
                self.state = State::AwaitingBody {
                    route: index,
                    headers,
                };
                if end_of_stream {
                    return self.finish(&policy, Vec::new());
                }
                if policy.hold_headers {
                    Action::Pause
                } else {
                    // Without allow_on_headers_stop_iteration the headers must go on now;
                    // a body-dependent rejection will reset the upstream request instead.
                    Action::Continue
                }
            }
            Step::Forward(accepted) => self.forward(&policy, accepted),
            Step::Reject(route, rejection) => reject(route, &head, &rejection),
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let State::AwaitingBody { route, .. } = self.state else {
            return Action::Continue;
        };
        let Some(policy) = self.policy.clone() else {
            return Action::Continue;
        };
        let Some(route) = policy.routes.get(route) else {
            return Action::Continue;
        };
        if body_size > route.max_body_bytes as usize {
            // Refused without copying the oversized body into the VM.
            let State::AwaitingBody { headers, .. } =
                std::mem::replace(&mut self.state, State::Idle)
            else {
                return Action::Continue;
            };
            return reject(route, &RequestHead::new(&headers), &guard::too_large(route));
        }
        if !end_of_stream {
            // Envoy keeps buffering; the next call sees the whole body so far.
            return Action::Pause;
        }
        match read_body(body_size) {
            Ok(body) => self.finish(&policy, body),
            Err(status) => fail_closed("cannot read the request body", status),
        }
    }

    fn on_http_request_trailers(&mut self, _trailers: usize) -> Action {
        // With trailers the body callback never sees end_of_stream: finish here.
        if !matches!(self.state, State::AwaitingBody { .. }) {
            return Action::Continue;
        }
        let Some(policy) = self.policy.clone() else {
            return Action::Continue;
        };
        match read_body(usize::MAX) {
            Ok(body) => self.finish(&policy, body),
            Err(status) => fail_closed("cannot read the request body", status),
        }
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if let State::Reserved { .. } = self.state {
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
        // Reset or timeout before any response headers: the delivery failed.
        self.settle(Outcome::Failed);
    }
}

impl GuardRequest {
    fn finish(&mut self, policy: &Policy, body: Vec<u8>) -> Action {
        let State::AwaitingBody { route, headers } =
            std::mem::replace(&mut self.state, State::Idle)
        else {
            return Action::Continue;
        };
        let Some(route) = policy.routes.get(route) else {
            return Action::Continue;
        };
        let head = RequestHead::new(&headers);
        let (now, nanos) = clock();
        match guard::on_body(route, &head, &body, now, &HostStore, nanos | 1) {
            Step::Forward(accepted) => self.forward(policy, accepted),
            Step::Reject(route, rejection) => reject(route, &head, &rejection),
            // on_body only forwards or rejects.
            Step::Unprotected | Step::NeedBody(_) => Action::Continue,
        }
    }

    fn forward(&mut self, policy: &Policy, accepted: Accepted) -> Action {
        debug!(
            "callback-guard: accepted route={} scheme={} key={} retry={}",
            accepted.route.name,
            accepted.scheme,
            accepted.key,
            accepted.reserved.is_some_and(|r| r.retry)
        );
        if let Some(reserved) = accepted.reserved {
            self.state = State::Reserved {
                route: route_index(policy, accepted.route),
                reserved,
            };
        }
        Action::Continue
    }

    fn settle(&mut self, outcome: Outcome) {
        let State::Reserved { route, reserved } = std::mem::replace(&mut self.state, State::Idle)
        else {
            return;
        };
        let Some(policy) = &self.policy else { return };
        let Some((route, replay)) = policy
            .routes
            .get(route)
            .and_then(|r| r.replay.as_ref().map(|replay| (r, replay)))
        else {
            return;
        };
        let (now, _) = clock();
        let now = u32::try_from(now).unwrap_or(u32::MAX);
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
    }
}

fn route_index(policy: &Policy, route: &Route) -> usize {
    policy
        .routes
        .iter()
        .position(|r| std::ptr::eq(r, route))
        .unwrap_or(usize::MAX)
}

fn reject(route: &Route, head: &RequestHead, rejection: &Rejection) -> Action {
    warn!(
        "callback-guard: rejected route={} status={} reason={} detail=\"{}\" request_id={}",
        route.name,
        rejection.status(),
        rejection.reason.code(),
        rejection.detail,
        head.request_id()
    );
    send_json(u32::from(rejection.status()), &rejection.body());
    Action::Pause
}

fn fail_closed(what: &str, status: Status) -> Action {
    error!("callback-guard: {what}: {status:?}; refusing");
    send_json(503, r#"{"error":"unavailable","reason":"host_error"}"#);
    Action::Pause
}

fn send_json(status: u32, body: &str) {
    let headers = vec![
        ("content-type", "application/json"),
        ("cache-control", "no-store"),
    ];
    if let Err(status) = hostcalls::send_http_response(status, headers, Some(body.as_bytes())) {
        error!("callback-guard: cannot send the local reply: {status:?}");
    }
}

fn read_body(size: usize) -> Result<Vec<u8>, Status> {
    hostcalls::get_buffer(BufferType::HttpRequestBody, 0, size).map(Option::unwrap_or_default)
}

/// Whether the downstream connection is TLS: Envoy exposes the negotiated version only then.
fn downstream_tls() -> bool {
    matches!(
        hostcalls::get_property(vec!["connection", "tls_version"]),
        Ok(Some(version)) if !version.is_empty()
    )
}

/// Envoy's wall clock: unix seconds, and the sub-second nanoseconds as cheap entropy for
/// the replay store's create-if-absent CAS value.
fn clock() -> (i64, u32) {
    let now = hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();
    (
        i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
        now.subsec_nanos(),
    )
}

/// Envoy shared data, shared by every worker thread of this Envoy process.
struct HostStore;

impl SharedStore for HostStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        match hostcalls::get_shared_data(key) {
            Ok((Some(value), Some(cas))) => Ok(Some((value, cas))),
            Ok(_) => Ok(None),
            Err(_) => Err(StoreError::Host),
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<bool, StoreError> {
        match hostcalls::set_shared_data(key, Some(value), Some(cas)) {
            Ok(()) => Ok(true),
            Err(Status::CasMismatch) => Ok(false),
            Err(_) => Err(StoreError::Host),
        }
    }
}
