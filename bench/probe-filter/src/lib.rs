//! Answers any request with how long, in nanoseconds, each building block of
//! callback-guard's request path takes inside this Envoy's V8: the host calls it makes and
//! the hashing it does. `make bench` asks a few times (V8 compiles hot code in tiers) and
//! reports the last answer.
//!
//! `/layout?layout=current|previous&entries=N&fill=F` instead fills a replay cache sized
//! for N entries with F * N fresh nonces in this Envoy's shared data, in callback-guard's
//! current layout or the previous one (slots of 32 holding 32), and answers how many were
//! refused and the mean time of a reservation; `make bench` reads Envoy's allocation
//! counter around it.

use std::hint::black_box;
use std::time::{Duration, Instant};

use callback_guard::replay::{self, Layout, Reservation, ReplayCache, Timing};
use callback_guard::shared_data::HostStore;
use hmac::{Hmac, Mac};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, MapType, MetricType};
use sha2::{Digest, Sha256};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| Box::new(Root));
}}

const ROUNDS: u32 = 2000;
/// One replay-cache key of callback-guard: 32 entries of 41 bytes.
const CACHE_KEY_BYTES: usize = 32 * 41;

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Probe))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Probe;

impl Context for Probe {}

impl HttpContext for Probe {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        let path = hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, ":path")
            .ok()
            .flatten()
            .unwrap_or_default();
        if let Some(query) = path.strip_prefix(b"/layout?") {
            let body = fill_cache(&String::from_utf8_lossy(query));
            let _ = hostcalls::send_http_response(200, vec![], Some(body.as_bytes()));
            return Action::Pause;
        }
        let report = timings()
            .iter()
            .map(|(name, ns)| format!("\"{name}\":{ns}"))
            .collect::<Vec<_>>()
            .join(",");
        let body = format!("{{{report}}}");
        let _ = hostcalls::send_http_response(200, vec![], Some(body.as_bytes()));
        Action::Pause
    }
}

/// Mean time of one call of `f`, in nanoseconds.
fn time<T>(mut f: impl FnMut() -> T) -> u64 {
    let start = Instant::now();
    for _ in 0..ROUNDS {
        black_box(f());
    }
    let total: Duration = start.elapsed();
    u64::try_from(total.as_nanos() / u128::from(ROUNDS)).unwrap_or(u64::MAX)
}

fn timings() -> Vec<(&'static str, u64)> {
    let metric = hostcalls::define_metric(MetricType::Counter, "probe.counter").unwrap_or(0);
    let histogram = hostcalls::define_metric(MetricType::Histogram, "probe.histogram").unwrap_or(0);
    let cache_key = vec![7u8; CACHE_KEY_BYTES];
    let _ = hostcalls::set_shared_data("probe/cache-key", Some(&cache_key), None);
    let key = Hmac::<Sha256>::new_from_slice(b"an auth token of 40 characters..........").ok();
    let base_string = b"https://callbacks.example.com/vobiz/answer.00000000000000000042";
    let body = vec![b'x'; 16 * 1024];
    vec![
        ("clock_monotonic", time(Instant::now)),
        ("clock_wall", time(hostcalls::get_current_time)),
        (
            "counter_increment",
            time(|| hostcalls::increment_metric(metric, 1)),
        ),
        (
            "histogram_record",
            time(|| hostcalls::record_metric(histogram, 5)),
        ),
        (
            "request_headers_all",
            time(|| hostcalls::get_map_bytes(MapType::HttpRequestHeaders)),
        ),
        (
            "request_header_one",
            time(|| hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, "user-agent")),
        ),
        (
            "property_get_source_address",
            time(|| hostcalls::get_property(vec!["source", "address"])),
        ),
        (
            "property_set_filter_state",
            time(|| {
                hostcalls::set_property(
                    vec!["callback_guard"],
                    Some(b"verified route=voice scheme=v3 key=bench"),
                )
            }),
        ),
        (
            "shared_data_get_cache_key",
            time(|| hostcalls::get_shared_data("probe/cache-key")),
        ),
        (
            "shared_data_set_cache_key",
            time(|| hostcalls::set_shared_data("probe/cache-key", Some(&cache_key), None)),
        ),
        (
            "hmac_sha256_voice_base_string",
            time(|| {
                key.clone().map(|mut mac| {
                    mac.update(base_string);
                    mac.finalize().into_bytes()
                })
            }),
        ),
        ("sha256_16_kib", time(|| Sha256::digest(&body))),
    ]
}

/// Fills a replay cache as the query says; the answer is JSON.
fn fill_cache(query: &str) -> String {
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_default()
    };
    let entries: u32 = param("entries").parse().unwrap_or(100_000);
    let fill: f64 = param("fill").parse().unwrap_or(0.9);
    let layout = match param("layout") {
        "previous" => Layout {
            slots: entries.div_ceil(32),
            slot_capacity: 32,
        },
        _ => Layout::for_entries(entries),
    };
    let timing = Timing {
        window_secs: 86_400,
        inflight_secs: 30,
    };
    let prefix = format!("probe/{}/", param("layout"));
    let cache = ReplayCache::with_layout(&prefix, entries, layout, timing);
    let count = (f64::from(entries) * fill) as u32;
    let now = 1_800_000_000;
    let fingerprint = replay::fingerprint(b"POST", b"/vobiz/answer", b"");
    let (mut refused, mut failed) = (0u32, 0u32);
    let start = Instant::now();
    for n in 0..count {
        let id = replay::replay_id(prefix.as_bytes(), &n.to_le_bytes());
        match cache.reserve(&HostStore, &id, &fingerprint, now, n | 1) {
            Ok((Reservation::Full, _)) => refused += 1,
            Ok(_) => {}
            Err(_) => failed += 1,
        }
    }
    let ns = start.elapsed().as_nanos() / u128::from(count.max(1));
    format!(
        "{{\"reservations\":{count},\"refused\":{refused},\"failed\":{failed},\"ns_per_reservation\":{ns},\"slots\":{}}}",
        layout.slots
    )
}
