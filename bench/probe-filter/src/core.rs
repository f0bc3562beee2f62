//! `/core`: what callback-guard's own code costs inside this Envoy's V8, step by step, for
//! the bench's two workloads: the headers step, the body step (signature, envelope,
//! replay reservation in this Envoy's shared data) and the settle. Host calls inside those
//! steps (shared data, clocks) are included; the bench prices them apart.

use std::cell::Cell;
use std::time::Instant;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use callback_guard::config;
use callback_guard::guard::{self, Downstream, Step};
use callback_guard::providers::vobiz::whatsapp;
use callback_guard::replay::Outcome;
use callback_guard::request::{Header, RequestHead};
use callback_guard::timestamp::Stamp;
use callback_guard_filter::shared_data::HostStore;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const ROUNDS: usize = 2000;
const ORIGIN: &str = "https://callbacks.example.com";
const CONFIG: &str = r#"{"routes": [
  {"name": "voice", "path_prefix": "/vobiz/", "public_origin": "https://callbacks.example.com",
   "allow_plain_http": true, "keys": [{"name": "bench", "env": "TOKEN"}],
   "replay": {"max_entries": 1000000}},
  {"name": "whatsapp", "path_prefix": "/whatsapp/", "scheme": "vobiz_whatsapp",
   "allow_plain_http": true, "keys": [{"name": "bench", "env": "SECRET"}],
   "replay": {"max_entries": 1000000}, "max_body_bytes": 65536}]}"#;
const TOKEN: &str = "bench-auth-token";
const SECRET: &str = "bench-whatsapp-secret";

thread_local! {
    /// Every call of `/core` signs new nonces, so each reservation is a first sight.
    static SERIAL: Cell<u64> = const { Cell::new(0) };
}

struct Plain;

impl Downstream for Plain {
    fn tls(&self) -> bool {
        false
    }
    fn peer(&self) -> Option<std::net::IpAddr> {
        None
    }
}

fn header(name: &str, value: &str) -> Header {
    (name.to_string(), value.as_bytes().to_vec())
}

/// Headers as Envoy hands them to the filter for one of the bench's requests.
fn request(path: &str, signature: Vec<Header>, length: usize, content_type: &str) -> Vec<Header> {
    let mut headers = vec![
        header(":authority", "127.0.0.1:10000"),
        header(":path", path),
        header(":method", "POST"),
        header(":scheme", "http"),
        header("content-type", content_type),
        header("content-length", &length.to_string()),
        header("x-forwarded-proto", "http"),
        header("x-request-id", "5b1f0c7e-1111-2222-3333-444455556666"),
    ];
    headers.extend(signature);
    headers
}

fn mac(key: &str, message: &[u8]) -> Vec<u8> {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.as_bytes()) else {
        return Vec::new();
    };
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Mean nanoseconds of `f` over every item, each used once.
fn each<T, R>(items: &[T], mut f: impl FnMut(&T) -> R) -> u64 {
    let start = Instant::now();
    for item in items {
        std::hint::black_box(f(item));
    }
    u64::try_from(start.elapsed().as_nanos() / items.len().max(1) as u128).unwrap_or(u64::MAX)
}

pub fn timings(now: i64, whatsapp_body: &[u8]) -> Vec<(&'static str, u64)> {
    let env = |name: &str| match name {
        "TOKEN" => Some(TOKEN.to_string()),
        "SECRET" => Some(SECRET.to_string()),
        _ => None,
    };
    let Ok(policy) = config::parse(CONFIG.as_bytes(), &env) else {
        return vec![("core_config_failed", 1)];
    };
    let serial = SERIAL.with(|s| {
        let first = s.get();
        s.set(first + ROUNDS as u64);
        first
    });
    let voice: Vec<Vec<Header>> = (serial..serial + ROUNDS as u64)
        .map(|n| {
            let nonce = format!("{n:020}");
            let base = format!("{ORIGIN}/vobiz/answer.{nonce}");
            let signature = vec![
                header(
                    "x-vobiz-signature-v3",
                    &STANDARD.encode(mac(TOKEN, base.as_bytes())),
                ),
                header("x-vobiz-signature-v3-nonce", &nonce),
            ];
            request(
                "/vobiz/answer",
                signature,
                29,
                "application/x-www-form-urlencoded",
            )
        })
        .collect();
    let (prefix, suffix) = match whatsapp_body.windows(8).position(|w| w == b"EVENT_ID") {
        Some(at) => (&whatsapp_body[..at], &whatsapp_body[at + 8..]),
        None => return vec![("core_whatsapp_template_failed", 1)],
    };
    let whatsapp: Vec<(Vec<Header>, Vec<u8>)> = (serial..serial + ROUNDS as u64 / 4)
        .map(|n| {
            let body = [prefix, format!("p{n:07}").as_bytes(), suffix].concat();
            let hex: String = mac(SECRET, &body)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let headers = request(
                "/whatsapp/events",
                vec![header("x-webhook-signature", &hex)],
                body.len(),
                "application/json",
            );
            (headers, body)
        })
        .collect();
    let voice_body: &[u8] = b"CallUUID=bench&Event=StartApp";
    let mut out = Vec::new();
    for (kind, requests) in [
        (
            "voice",
            voice
                .iter()
                .map(|h| (h.clone(), voice_body.to_vec()))
                .collect::<Vec<_>>(),
        ),
        ("whatsapp", whatsapp),
    ] {
        let mut priors = Vec::with_capacity(requests.len());
        let headers_ns = each(&requests, |r| {
            let (step, prior) =
                guard::on_headers_verified(&policy, &RequestHead::new(&r.0), &Plain);
            priors.push(prior);
            matches!(step, Step::NeedBody(_))
        });
        let Some(route) = policy.routes.iter().find(|route| route.name == kind) else {
            return vec![("core_route_missing", 1)];
        };
        let mut reserved = Vec::with_capacity(requests.len());
        let judged: Vec<_> = requests.iter().zip(priors).collect();
        let body_ns = each(&judged, |(r, prior)| {
            let head = RequestHead::new(&r.0);
            if let Step::Forward(accepted) =
                guard::on_body_verified(route, &head, &r.1, *prior, Stamp::secs(now), &HostStore, 7)
            {
                reserved.extend(accepted.reserved);
            }
        });
        if reserved.len() != requests.len() {
            return vec![(
                "core_not_forwarded",
                (requests.len() - reserved.len()) as u64,
            )];
        }
        let Some(replay) = &route.replay else {
            return vec![("core_route_without_replay", 1)];
        };
        let settle_ns = each(&reserved, |r| {
            replay
                .cache
                .settle(
                    &HostStore,
                    &r.id,
                    &r.fingerprint,
                    Outcome::Delivered,
                    now as u32,
                )
                .is_ok()
        });
        let names: [&'static str; 3] = if kind == "voice" {
            [
                "core_voice_on_headers",
                "core_voice_on_body",
                "core_voice_settle",
            ]
        } else {
            [
                "core_whatsapp_on_headers",
                "core_whatsapp_on_body",
                "core_whatsapp_settle",
            ]
        };
        out.extend(names.into_iter().zip([headers_ns, body_ns, settle_ns]));
    }
    let body = [prefix, b"p0000000", suffix].concat();
    out.push((
        "core_whatsapp_envelope_16_kib",
        each(&[(); 200], |_| whatsapp::parse_event(&body).is_ok()),
    ));
    out
}
