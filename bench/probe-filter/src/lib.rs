//! Answers any request with how long, in nanoseconds, each building block of
//! callback-guard's request path takes inside this Envoy's V8: the host calls it makes and
//! the hashing it does. `make bench` asks a few times (V8 compiles hot code in tiers) and
//! reports the last answer.
//!
//! `POST /body` answers what reading that request's body from Envoy costs; `POST /core`
//! with the bench's WhatsApp envelope (an `EVENT_ID` slot) answers what callback-guard's
//! own steps cost on the bench's two workloads (see `core.rs`).
//!
//! `/layout?layout=current|previous&entries=N&fill=F` instead fills a replay cache sized
//! for N entries with F * N fresh nonces in this Envoy's shared data, in callback-guard's
//! current layout or the previous one (slots of 32 holding 32), and answers how many were
//! refused and the mean time of a reservation; `make bench` reads Envoy's allocation
//! counter around it.

mod core;

use std::hint::black_box;
use std::time::{Duration, Instant};

use callback_guard::public_key::{PublicKey, Written};
use callback_guard::replay::{self, Layout, ReplayCache, Reservation, Timing};
use callback_guard_filter::shared_data::HostStore;
use hmac::{Hmac, Mac};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType, MetricType};
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
        Some(Box::new(Probe { core: false }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Probe {
    /// `POST /core`: the body is the WhatsApp envelope to time callback-guard's steps with.
    core: bool,
}

impl Context for Probe {}

impl HttpContext for Probe {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        let path = hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, ":path")
            .ok()
            .flatten()
            .unwrap_or_default();
        if path == b"/body" || path == b"/core" {
            self.core = path == b"/core";
            // Answered once the whole body is in (on_http_request_body).
            return Action::Pause;
        }
        if let Some(query) = path.strip_prefix(b"/layout?") {
            let body = fill_cache(&String::from_utf8_lossy(query));
            let _ = hostcalls::send_http_response(200, vec![], Some(body.as_bytes()));
            return Action::Pause;
        }
        let body = json(&timings());
        let _ = hostcalls::send_http_response(200, vec![], Some(body.as_bytes()));
        Action::Pause
    }

    /// `POST /body`: what reading a request body of this size costs (`request_body_<bytes>`).
    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        let body = if self.core {
            let envelope = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, size)
                .ok()
                .flatten()
                .unwrap_or_default();
            let now = hostcalls::get_current_time()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |t| t.as_secs() as i64);
            json(&core::timings(now, &envelope))
        } else {
            let ns = time(|| hostcalls::get_buffer(BufferType::HttpRequestBody, 0, size));
            format!("{{\"request_body_{size}\":{ns}}}")
        };
        let _ = hostcalls::send_http_response(200, vec![], Some(body.as_bytes()));
        Action::Pause
    }
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map_type: u32, data: *mut *mut u8, size: *mut usize) -> u32;
}

/// The request's header map as one buffer, as callback-guard reads it (without the SDK's
/// two allocations per header).
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

fn json(timings: &[(&str, u64)]) -> String {
    let fields: Vec<_> = timings
        .iter()
        .map(|(name, ns)| format!("\"{name}\":{ns}"))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// Mean time of one call of `f`, in nanoseconds.
fn time<T>(f: impl FnMut() -> T) -> u64 {
    time_n(ROUNDS, f)
}

/// The same over `rounds` calls, for the building blocks that take milliseconds.
fn time_n<T>(rounds: u32, mut f: impl FnMut() -> T) -> u64 {
    let start = Instant::now();
    for _ in 0..rounds {
        black_box(f());
    }
    let total: Duration = start.elapsed();
    u64::try_from(total.as_nanos() / u128::from(rounds)).unwrap_or(u64::MAX)
}

// providers.md §4 rows 12 and 13: a Discord PING and a SendGrid event batch, as signed.
const DISCORD_KEY: &str = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
const DISCORD_SIG: &str = "c1098e97d711377f30225d53d94b89d43537f92e5b3afaddc590781b1f9f9d4b2eeab335d370be3b9a090bc61a85b86448bc140dcd195f1569c2bff181257607";
const SENDGRID_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAERxw+dYxJBChbun5TEY7Q9SSt6wdX0lvS+Oew1236cUzdUg96yoqLkXrMN/Ud6PDJu+OthYOC5wLcJaEtCfeoWA==";
const SENDGRID_SIG: [u8; 72] = [
    0x30, 0x46, 0x02, 0x21, 0x00, 0x8e, 0x1a, 0xdb, 0x34, 0xcd, 0xe6, 0x7a, 0x5b, 0x8f, 0x22, 0x6c,
    0x0e, 0xd4, 0x43, 0x52, 0x3a, 0x6a, 0xd8, 0xfc, 0xe6, 0xe5, 0x41, 0x47, 0x83, 0xd8, 0x0a, 0xab,
    0x74, 0xe0, 0x71, 0x6f, 0x11, 0x02, 0x21, 0x00, 0xed, 0xb4, 0xb2, 0xf8, 0xcd, 0xa8, 0xca, 0x54,
    0x41, 0x52, 0x20, 0x68, 0xdd, 0x8e, 0x52, 0x2d, 0xe5, 0xd5, 0xd4, 0x09, 0x93, 0xca, 0x3c, 0xa5,
    0xa8, 0x51, 0x36, 0x1b, 0x77, 0x16, 0x9c, 0x17,
];
const SENDGRID_BODY: &[u8] = b"[{\"email\":\"example@test.com\",\"event\":\"processed\",\"sg_event_id\":\"rbtnWrG1DVDGGGFHFyun0A==\",\"timestamp\":1700000000}]\r\n";

/// Rounds for a signature verification: thousands of times an HMAC's cost.
const VERIFY_ROUNDS: u32 = 50;

/// One public-key verification of each kind, checked to succeed before it is timed.
fn public_key_timings() -> Vec<(&'static str, u64)> {
    let discord = PublicKey::parse("d", DISCORD_KEY, Written::Ed25519Hex);
    let sendgrid = PublicKey::parse("s", SENDGRID_KEY, Written::P256SpkiBase64);
    // A vector that no longer verifies is reported, not timed.
    let failed = vec![("public_key_vectors_failed", 1)];
    let (Some(discord), Some(sendgrid)) = (discord, sendgrid) else {
        return failed;
    };
    let signature: Vec<u8> = (0..64)
        .filter_map(|i| u8::from_str_radix(DISCORD_SIG.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    let ping = b"1700000000{\"type\":1}";
    let batch = [&b"1700000000"[..], SENDGRID_BODY].concat();
    if !discord.verifies(ping, &signature) || !sendgrid.verifies(&batch, &SENDGRID_SIG) {
        return failed;
    }
    vec![
        (
            "ed25519_verify_discord_ping",
            time_n(VERIFY_ROUNDS, || discord.verifies(ping, &signature)),
        ),
        (
            "ecdsa_p256_verify_sendgrid_batch",
            time_n(VERIFY_ROUNDS, || sendgrid.verifies(&batch, &SENDGRID_SIG)),
        ),
    ]
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
        ("request_headers_pairs", time(request_header_pairs)),
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
        // The filter's own identity of a signed message: a second pass over a signed body.
        ("blake3_16_kib", time(|| blake3::hash(&body))),
    ]
    .into_iter()
    .chain(public_key_timings())
    .collect()
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
    // One request's fingerprint for all: the layout, not the digests, is what is priced.
    let fingerprint = [7u8; 16];
    let (mut refused, mut failed) = (0u32, 0u32);
    let start = Instant::now();
    for n in 0..count {
        let mut message = [0u8; 32];
        message[..4].copy_from_slice(&n.to_le_bytes());
        let id = replay::replay_id(prefix.as_bytes(), b"probe", &message);
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
