//! The floor of one callback, measured in place: the host calls callback-guard makes for
//! it, counted by its `count-host-calls` build and passed here as the configuration, in
//! the same callbacks, plus the one hash its signature needs, and none of its own code.
//! `make bench` runs it as setup (g) next to callback-guard (b): b - g is what the
//! filter's own code costs under load, where caches are cold, unlike the probe's loops.
//!
//! Configuration: `{"calls": {"request_headers": 1, "shared_data_get": 2, ...}, "hash":
//! "hmac" | "sha256"}` (`hmac`: of a voice base string; `sha256`: one pass over the body).
//! Shared data: half the gets and sets (rounded up) at the body, as a reservation; the
//! rest after the response headers, as a settle; each a get, then a CAS set of one key of
//! five replay entries among 4096.

use std::cell::Cell;
use std::collections::HashMap;

use hmac::{Hmac, Mac};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType, MetricType};
use sha2::{Digest, Sha256};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| Box::new(Root { floor: None, mac: None }));
}}

#[derive(serde::Deserialize)]
struct Config {
    calls: HashMap<String, f64>,
    hash: String,
}

/// Calls of each kind per callback.
#[derive(Clone, Copy, Default)]
struct Floor {
    request_headers: u32,
    body: u32,
    response_header: u32,
    shared_data_get: u32,
    shared_data_set: u32,
    property_set: u32,
    clock: u32,
    metric_increment: u32,
    metric_record: u32,
    sha256_body: bool,
    counter: u32,
    histogram: u32,
}

struct Root {
    floor: Option<Floor>,
    /// Keyed once, as callback-guard keys its HMACs at configuration time.
    mac: Option<Hmac<Sha256>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _: usize) -> bool {
        let Some(Ok(config)) = self
            .get_plugin_configuration()
            .map(|bytes| serde_json::from_slice::<Config>(&bytes))
        else {
            return false;
        };
        self.mac = Hmac::<Sha256>::new_from_slice(b"bench-auth-token").ok();
        let n = |name: &str| config.calls.get(name).map_or(0, |n| n.round() as u32);
        self.floor = Some(Floor {
            request_headers: n("request_headers"),
            body: n("body"),
            response_header: n("response_header"),
            shared_data_get: n("shared_data_get"),
            shared_data_set: n("shared_data_set"),
            property_set: n("property_set"),
            clock: n("clock"),
            metric_increment: n("metric_increment"),
            metric_record: n("metric_record"),
            sha256_body: config.hash == "sha256",
            counter: hostcalls::define_metric(MetricType::Counter, "floor.counter").unwrap_or(0),
            histogram: hostcalls::define_metric(MetricType::Histogram, "floor.histogram")
                .unwrap_or(0),
        });
        true
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request {
            floor: self.floor.unwrap_or_default(),
            mac: self.mac.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Request {
    floor: Floor,
    mac: Option<Hmac<Sha256>>,
}

impl Context for Request {}

thread_local! {
    static SERIAL: Cell<u32> = const { Cell::new(0) };
}

/// Five entries of callback-guard's replay slot (41 bytes each).
const SLOT_BYTES: usize = 5 * 41;

/// A get, then a CAS set of the same key, as a reservation or a settle does.
fn get_and_set(gets: u32, sets: u32) {
    let key = format!("floor/{}", SERIAL.with(|s| s.get()) % 4096);
    let mut found = (None, None);
    for _ in 0..gets {
        found = hostcalls::get_shared_data(&key).unwrap_or_default();
    }
    let value = found.0.unwrap_or_else(|| vec![7; SLOT_BYTES]);
    for _ in 0..sets {
        let _ = hostcalls::set_shared_data(&key, Some(&value), found.1);
    }
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map_type: u32, data: *mut *mut u8, size: *mut usize) -> u32;
}

/// The request's header map as one buffer, as callback-guard reads it.
fn request_header_pairs() -> Vec<u8> {
    let (mut data, mut size) = (std::ptr::null_mut(), 0);
    // SAFETY: out-pointers; on success the host hands over `size` bytes it allocated
    // through this module's allocator, as the SDK's own getters assume.
    unsafe {
        if proxy_get_header_map_pairs(0, &mut data, &mut size) != 0 || data.is_null() {
            return Vec::new();
        }
        Vec::from_raw_parts(data, size, size)
    }
}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _: usize, end_of_stream: bool) -> Action {
        for _ in 0..self.floor.request_headers {
            std::hint::black_box(request_header_pairs());
        }
        if end_of_stream {
            Action::Continue
        } else {
            Action::Pause
        }
    }

    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        let floor = self.floor;
        let mut body = Vec::new();
        for _ in 0..floor.body {
            body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, size)
                .ok()
                .flatten()
                .unwrap_or_default();
        }
        if floor.sha256_body {
            std::hint::black_box(Sha256::digest(&body));
        } else if let Some(mut mac) = self.mac.take() {
            mac.update(b"https://callbacks.example.com/vobiz/answer.00000000000000000042");
            std::hint::black_box(mac.finalize());
        }
        SERIAL.with(|s| s.set(s.get().wrapping_add(1)));
        if floor.clock > 0 {
            let _ = hostcalls::get_current_time();
        }
        get_and_set(
            floor.shared_data_get.div_ceil(2),
            floor.shared_data_set.div_ceil(2),
        );
        for _ in 0..floor.property_set {
            let _ = hostcalls::set_property(
                vec!["floor"],
                Some(b"verified route=voice scheme=v3 key=bench"),
            );
        }
        for _ in 0..floor.metric_increment {
            let _ = hostcalls::increment_metric(floor.counter, 1);
        }
        for _ in 0..floor.metric_record {
            let _ = hostcalls::record_metric(floor.histogram, 5);
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        let floor = self.floor;
        for _ in 0..floor.response_header {
            let _ = hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, ":status");
        }
        for _ in 1..floor.clock {
            let _ = hostcalls::get_current_time();
        }
        get_and_set(floor.shared_data_get / 2, floor.shared_data_set / 2);
        Action::Continue
    }
}
