//! Host calls the SDK would panic on, wrapped to fail softly, and the host's side of
//! the core's `Downstream` trait.

use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

use log::error;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, Status};

use crate::host_calls::{count, HostCall};
use callback_guard::guard::Downstream;
use callback_guard::metrics::Kind;
use callback_guard::net;
use callback_guard::request::{Attested, HeaderMap};
use callback_guard::store::{Callout, Link, Response};
use callback_guard::timestamp::Stamp;

// The SDK's metric wrappers panic on any status they do not expect (a host without
// metrics, a bad id). Metrics must never take the VM down, so call the ABI directly.
#[allow(clashing_extern_declarations)]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_define_metric(kind: u32, name: *const u8, name_size: usize, id: *mut u32) -> u32;
    fn proxy_increment_metric(id: u32, offset: i64) -> u32;
    fn proxy_record_metric(id: u32, value: u64) -> u32;
    fn proxy_get_log_level(level: *mut u32) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key: *const u8,
        key_size: usize,
        value: *mut *mut u8,
        value_size: *mut usize,
    ) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_get_header_map_pairs(map_type: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
}

// The ABI's MapType, BufferType and StreamType values used below.
const HTTP_REQUEST_HEADERS: u32 = 0;
const HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
const HTTP_CALL_RESPONSE_TRAILERS: u32 = 7;
const HTTP_CALL_RESPONSE_BODY: u32 = 4;
const STREAM_HTTP_REQUEST: u32 = 0;

const STATUS_OK: u32 = 0;

/// Defines a metric; `None` (logged once per metric) if the host refuses.
pub fn define_metric(kind: Kind, name: &str) -> Option<u32> {
    // The ABI's MetricType: 0 counter, 1 gauge, 2 histogram.
    let kind = match kind {
        Kind::Counter => 0,
        Kind::Gauge => 1,
        Kind::Histogram => 2,
    };
    let mut id = 0;
    // SAFETY: name points to name.len() valid bytes; id is a valid out-pointer.
    let status = unsafe { proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) };
    if status == STATUS_OK {
        Some(id)
    } else {
        error!("callback-guard: cannot define metric {name} (status {status}); it will not be reported");
        None
    }
}

pub fn increment(id: Option<u32>) {
    if let Some(id) = id {
        count(HostCall::MetricIncrement);
        // SAFETY: plain values; a failure only loses one count.
        unsafe { proxy_increment_metric(id, 1) };
    }
}

pub fn record(id: Option<u32>, value: u64) {
    if let Some(id) = id {
        count(HostCall::MetricRecord);
        // SAFETY: plain values; a failure only loses one sample.
        unsafe { proxy_record_metric(id, value) };
    }
}

/// Envoy's log level for this plugin, so `debug!` lines cost nothing (no formatting, no
/// host call) unless Envoy would print them. Read at configuration time.
pub fn log_level() -> LogLevel {
    let mut level = 0;
    // SAFETY: level is a valid out-pointer.
    let status = unsafe { proxy_get_log_level(&mut level) };
    match (status, level) {
        (STATUS_OK, 0) => LogLevel::Trace,
        (STATUS_OK, 1) => LogLevel::Debug,
        (STATUS_OK, 3) => LogLevel::Warn,
        (STATUS_OK, 4) => LogLevel::Error,
        (STATUS_OK, 5) => LogLevel::Critical,
        _ => LogLevel::Info,
    }
}

pub fn send_json(status: u32, body: &str) {
    send(status, "application/json", body.as_bytes());
}

/// A local reply; `nosniff` because a handshake's reply echoes what the request carried.
pub fn send(status: u32, content_type: &str, body: &[u8]) {
    let headers = vec![
        ("content-type", content_type),
        ("cache-control", "no-store"),
        ("x-content-type-options", "nosniff"),
    ];
    count(HostCall::LocalReply);
    if let Err(status) = hostcalls::send_http_response(status, headers, Some(body)) {
        error!("callback-guard: cannot send the local reply: {status:?}");
    }
}

/// `size` bytes of the request body from `start` (fewer if there are fewer).
pub fn read_body_from(start: usize, size: usize) -> Result<Vec<u8>, Status> {
    count(HostCall::Body);
    hostcalls::get_buffer(BufferType::HttpRequestBody, start, size).map(Option::unwrap_or_default)
}

/// Envoy's wall clock, to the nanosecond, and its sub-second nanoseconds as cheap entropy
/// for the replay store's create-if-absent CAS value.
pub fn clock() -> (Stamp, u32) {
    count(HostCall::Clock);
    let now = hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();
    (
        Stamp::nanos(i128::try_from(now.as_nanos()).unwrap_or(i128::MAX)),
        now.subsec_nanos(),
    )
}

/// The downstream connection, as Envoy's properties describe it.
pub struct Connection;

impl Downstream for Connection {
    /// Envoy exposes the negotiated TLS version only on TLS connections.
    fn tls(&self) -> bool {
        count(HostCall::PropertyGet);
        matches!(
            hostcalls::get_property(vec!["connection", "tls_version"]),
            Ok(Some(version)) if !version.is_empty()
        )
    }

    fn peer(&self) -> Option<IpAddr> {
        count(HostCall::PropertyGet);
        match hostcalls::get_property(vec!["source", "address"]) {
            Ok(Some(address)) => net::parse_socket_address(&address),
            _ => None,
        }
    }
}

/// The request's dynamic metadata, as the filters before this one left it.
pub struct Metadata;

impl Attested for Metadata {
    fn metadata(&self, namespace: &str, key: &str, name: &str) -> Option<Vec<u8>> {
        count(HostCall::PropertyGet);
        // A null is a serialisation failure, never a panic: nothing, as if absent.
        hostcalls::get_property(vec!["metadata", "filter_metadata", namespace, key, name])
            .ok()
            .flatten()
    }
}

/// Sends one callout to a fleet-wide store through its Envoy cluster. The answer arrives
/// in `on_http_call_response` of the context that called this.
pub fn dispatch(link: &Link, callout: &Callout, timeout: Duration) -> Result<u32, Status> {
    let mut headers = vec![
        (":method", "POST"),
        (":path", callout.path),
        (":authority", link.authority.as_str()),
        ("content-type", callout.content_type),
    ];
    if link.grpc {
        headers.push(("te", "trailers"));
    }
    call(&link.cluster, headers, Some(&callout.body), timeout)
}

/// A GET of `path` from `authority` through `cluster` (a key the request names). The
/// answer arrives in `on_http_call_response` of the context that called this.
pub fn fetch(cluster: &str, authority: &str, path: &str, timeout: Duration) -> Result<u32, Status> {
    let headers = vec![
        (":method", "GET"),
        (":path", path),
        (":authority", authority),
        ("accept", "application/x-pem-file, */*"),
    ];
    call(cluster, headers, None, timeout)
}

/// One callout through `cluster`, counted.
fn call(
    cluster: &str,
    headers: Vec<(&str, &str)>,
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<u32, Status> {
    // A zero timeout would mean "none" to Envoy: never hang a request.
    let timeout = timeout.max(Duration::from_millis(1));
    count(HostCall::Callout);
    hostcalls::dispatch_http_call(cluster, headers, body, vec![], timeout)
}

/// A store's answer to a callout over `link`, as `on_http_call_response` announced it.
pub fn store_response(
    link: &Link,
    (num_headers, body_size, num_trailers): (usize, usize, usize),
) -> Response {
    let (status, body) = call_response(num_headers, body_size);
    let (grpc_status, grpc_message) = match (link.grpc, status) {
        (true, Some(_)) => grpc_status(num_trailers),
        _ => (None, String::new()),
    };
    Response {
        status,
        grpc_status,
        grpc_message,
        body,
    }
}

/// A callout's answer: its `:status` (`None` when the callout failed without one, e.g.
/// a reset) and its body. Read through the ABI directly: the SDK's getters panic on
/// statuses a failed callout can produce.
pub fn call_response(num_headers: usize, body_size: usize) -> (Option<u16>, Vec<u8>) {
    if num_headers == 0 {
        return (None, Vec::new());
    }
    count(HostCall::CalloutResponse);
    let status = call_header(HTTP_CALL_RESPONSE_HEADERS, ":status")
        .and_then(|status| std::str::from_utf8(&status).ok()?.parse().ok());
    let body = if body_size == 0 {
        Vec::new()
    } else {
        host_bytes(|data, size| {
            // SAFETY: data and size are out-pointers.
            unsafe { proxy_get_buffer_bytes(HTTP_CALL_RESPONSE_BODY, 0, body_size, data, size) }
        })
        .unwrap_or_default()
    };
    (status, body)
}

/// A gRPC callout's `grpc-status` and `grpc-message`: in its trailers, or in its headers
/// when the store answered with headers alone (an error).
fn grpc_status(num_trailers: usize) -> (Option<u32>, String) {
    let map = if num_trailers > 0 {
        HTTP_CALL_RESPONSE_TRAILERS
    } else {
        HTTP_CALL_RESPONSE_HEADERS
    };
    let status = call_header(map, "grpc-status")
        .and_then(|status| std::str::from_utf8(&status).ok()?.parse().ok());
    let message = call_header(map, "grpc-message").unwrap_or_default();
    (status, String::from_utf8_lossy(&message).into_owned())
}

/// One header of a callout's answer (`map`: its headers or its trailers).
fn call_header(map: u32, name: &str) -> Option<Vec<u8>> {
    host_bytes(|data, size| {
        // SAFETY: name points to name.len() valid bytes; data and size are out-pointers.
        unsafe { proxy_get_header_map_value(map, name.as_ptr(), name.len(), data, size) }
    })
}

/// Bytes the host returns in memory it allocated through the SDK's
/// `proxy_on_memory_allocate` (a boxed slice of exactly `size` bytes); `None` on any
/// non-Ok status.
fn host_bytes(call: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> Option<Vec<u8>> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    if call(&mut data, &mut size) != STATUS_OK {
        return None;
    }
    if data.is_null() {
        return Some(Vec::new());
    }
    // SAFETY: on Ok the host handed over `size` bytes at `data`, allocated by the module's
    // own allocator export for exactly that size, as the SDK's getters assume too.
    Some(unsafe { Vec::from_raw_parts(data, size, size) })
}

/// The request's headers as one buffer (see [`HeaderMap`]); `None` if the host refuses
/// or hands over a malformed map.
pub fn request_headers() -> Option<HeaderMap> {
    count(HostCall::RequestHeaders);
    let bytes = host_bytes(|data, size| {
        // SAFETY: data and size are out-pointers.
        unsafe { proxy_get_header_map_pairs(HTTP_REQUEST_HEADERS, data, size) }
    })?;
    HeaderMap::parse(bytes)
}

/// Lets a request paused for a callout go on. False if Envoy refused.
pub fn resume_request() -> bool {
    // SAFETY: plain value.
    unsafe { proxy_continue_stream(STREAM_HTTP_REQUEST) == STATUS_OK }
}

/// Sets the tick period of the root context this context belongs to (0 stops it).
pub fn set_tick(milliseconds: u32) -> bool {
    // SAFETY: plain value.
    unsafe { proxy_set_tick_period_milliseconds(milliseconds) == STATUS_OK }
}

#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    fn random_get(buf: *mut u8, buf_len: usize) -> u16;
}

/// Eight random bytes from the host (WASI `random_get`): a reservation's claim token.
/// Should the host refuse, the clock stands in: the token only has to differ from other
/// reservations' of the same id.
pub fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // SAFETY: bytes is a valid buffer of its length.
    if unsafe { random_get(bytes.as_mut_ptr(), bytes.len()) } == 0 {
        return u64::from_le_bytes(bytes);
    }
    let (now, nanos) = clock();
    (now.unix_secs() as u64).rotate_left(32) ^ u64::from(nanos)
}
