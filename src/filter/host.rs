//! Host calls the SDK would panic on, wrapped to fail softly, and the host's implementations
//! of the core's traits (shared-data store, downstream connection).

use std::net::IpAddr;
use std::time::UNIX_EPOCH;

use log::error;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, Status};

use crate::guard::Downstream;
use crate::metrics::Kind;
use crate::net;
use crate::replay::{SharedStore, StoreError};

// The SDK's metric wrappers panic on any status they do not expect (a host without
// metrics, a bad id). Metrics must never take the VM down, so call the ABI directly.
#[allow(clashing_extern_declarations)]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_define_metric(kind: u32, name: *const u8, name_size: usize, id: *mut u32) -> u32;
    fn proxy_increment_metric(id: u32, offset: i64) -> u32;
    fn proxy_record_metric(id: u32, value: u64) -> u32;
    fn proxy_get_log_level(level: *mut u32) -> u32;
}

const STATUS_OK: u32 = 0;

/// Defines a metric; `None` (logged once per metric) if the host refuses.
pub fn define_metric(kind: Kind, name: &str) -> Option<u32> {
    // The ABI's MetricType: 0 counter, 1 gauge, 2 histogram.
    let kind = match kind {
        Kind::Counter => 0,
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
        // SAFETY: plain values; a failure only loses one count.
        unsafe { proxy_increment_metric(id, 1) };
    }
}

pub fn record(id: Option<u32>, value: u64) {
    if let Some(id) = id {
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
    let headers = vec![
        ("content-type", "application/json"),
        ("cache-control", "no-store"),
    ];
    if let Err(status) = hostcalls::send_http_response(status, headers, Some(body.as_bytes())) {
        error!("callback-guard: cannot send the local reply: {status:?}");
    }
}

pub fn read_body(size: usize) -> Result<Vec<u8>, Status> {
    hostcalls::get_buffer(BufferType::HttpRequestBody, 0, size).map(Option::unwrap_or_default)
}

/// Envoy's wall clock: unix seconds, and the sub-second nanoseconds as cheap entropy for
/// the replay store's create-if-absent CAS value.
pub fn clock() -> (i64, u32) {
    let now = hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();
    (
        i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
        now.subsec_nanos(),
    )
}

/// The downstream connection, as Envoy's properties describe it.
pub struct Connection;

impl Downstream for Connection {
    /// Envoy exposes the negotiated TLS version only on TLS connections.
    fn tls(&self) -> bool {
        matches!(
            hostcalls::get_property(vec!["connection", "tls_version"]),
            Ok(Some(version)) if !version.is_empty()
        )
    }

    fn peer(&self) -> Option<IpAddr> {
        match hostcalls::get_property(vec!["source", "address"]) {
            Ok(Some(address)) => net::parse_socket_address(&address),
            _ => None,
        }
    }
}

/// Envoy shared data, shared by every worker thread of this Envoy process.
pub struct HostStore;

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
