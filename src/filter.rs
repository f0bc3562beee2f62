//! The proxy-wasm glue: translates Envoy callbacks into calls on the pure core. Host
//! failures become rejections or log lines, never panics.

use std::rc::Rc;

use log::{debug, error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType};

use crate::config;
use crate::guard::{self, Decision};
use crate::policy::Policy;
use crate::request::RequestHead;
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
        let bytes = match hostcalls::get_buffer(
            proxy_wasm::types::BufferType::PluginConfiguration,
            0,
            usize::MAX,
        ) {
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
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct GuardRequest {
    policy: Option<Rc<Policy>>,
}

impl Context for GuardRequest {}

impl HttpContext for GuardRequest {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let Some(policy) = self.policy.clone() else {
            // Envoy refuses a plugin whose configuration failed, so this is unreachable in
            // practice; if it ever happens, nothing passes.
            error!("callback-guard: request before a valid configuration; refusing");
            send_json(503, r#"{"error":"unavailable","reason":"not_configured"}"#);
            return Action::Pause;
        };
        let headers = match hostcalls::get_map_bytes(MapType::HttpRequestHeaders) {
            Ok(headers) => headers,
            Err(status) => {
                error!("callback-guard: cannot read request headers: {status:?}");
                send_json(503, r#"{"error":"unavailable","reason":"host_error"}"#);
                return Action::Pause;
            }
        };
        let head = RequestHead::new(&headers);
        match guard::evaluate(&policy, &head, downstream_tls) {
            Decision::Unprotected => Action::Continue,
            Decision::Accept { route, verified } => {
                debug!(
                    "callback-guard: accepted route={} scheme={} key={}",
                    route.name,
                    verified.family.name(),
                    verified.key
                );
                Action::Continue
            }
            Decision::Reject { route, rejection } => {
                reject(&route.name, &head, &rejection);
                Action::Pause
            }
        }
    }
}

fn reject(route: &str, head: &RequestHead, rejection: &Rejection) {
    warn!(
        "callback-guard: rejected route={route} status={} reason={} detail=\"{}\" request_id={}",
        rejection.status(),
        rejection.reason.code(),
        rejection.detail,
        head.request_id()
    );
    send_json(u32::from(rejection.status()), &rejection.body());
}

fn send_json(status: u32, body: &str) {
    let headers = [
        ("content-type", "application/json"),
        ("cache-control", "no-store"),
    ];
    if let Err(status) =
        hostcalls::send_http_response(status, headers.to_vec(), Some(body.as_bytes()))
    {
        error!("callback-guard: cannot send the local reply: {status:?}");
    }
}

/// Whether the downstream connection is TLS: Envoy exposes the negotiated version only then.
fn downstream_tls() -> bool {
    matches!(
        hostcalls::get_property(vec!["connection", "tls_version"]),
        Ok(Some(version)) if !version.is_empty()
    )
}
