//! One signature, one delivery: for every scheme, a genuine request, and every other
//! request that carries the same signed bytes (the signed message re-split between the
//! request's parts, a signature relabelled, the unsigned parts changed), judged through
//! the guard as the filter judges. Each other request is refused, or is the same delivery
//! in the replay memory: the same replay id, and once the genuine one is delivered,
//! refused as a duplicate or as tampering.
//!
//! The re-splits are enumerated from each scheme's message template, so the property holds
//! by the seam (the identity is the whole signed message; the fingerprint binds how it
//! splits), not by each provider's format checks: the generic scheme's lax routes, whose
//! parts no format constrains, show it. Requests are signed here, independently of the
//! crate. `PROPTEST_CASES=500 cargo test --test one_delivery` runs more.

use callback_guard::config;
use callback_guard::guard::{self, Step};
use callback_guard::policy::Policy;
use callback_guard::replay::Outcome;
use callback_guard::request::{Header, RequestHead};
use callback_guard::testing::MemoryStore;
use callback_guard::timestamp::Stamp;
use callback_guard::verdict::Reason;
use proptest::prelude::*;
use serde_json::{json, Value};

#[path = "../../tests/support/sign.rs"]
mod sign;
#[path = "../../tests/support/tls.rs"]
mod tls;

use sign::{base64, ed25519, hex, mac, mac_sha1, p256_key, p256_spki};
use tls::Tls;

/// 2026-03-25T10:00:00Z.
const NOW: i64 = 1_774_432_800;
const ORIGIN: &str = "https://cb.example";
const ORIGIN_BYTES: &[u8] = ORIGIN.as_bytes();
const SECRET: &[u8] = b"the-route-secret";
const WHSEC: &str = "whsec_dGhlLXJvdXRlLXNlY3JldA==";
const PARENT: &[u8] = b"the-parent-token";
/// At most this many re-splits of one message are judged.
const MAX_SPLITS: usize = 4000;

// ---- requests and verdicts ----

#[derive(Debug, Clone, PartialEq, Eq)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Request {
    fn post(path: &str, content_type: &str) -> Self {
        Request {
            method: "POST".into(),
            path: path.into(),
            headers: vec![("content-type".into(), content_type.as_bytes().to_vec())],
            body: Vec::new(),
        }
    }

    fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.set(name, value.into());
        self
    }

    fn set(&mut self, name: &str, value: Vec<u8>) {
        match self.headers.iter_mut().find(|(k, _)| k == name) {
            Some(header) => header.1 = value,
            None => self.headers.push((name.into(), value)),
        }
    }

    fn get(&self, name: &str) -> &[u8] {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map_or(&[][..], |(_, v)| v.as_slice())
    }

    fn head(&self) -> Vec<Header> {
        let mut head: Vec<Header> = vec![
            (":method".into(), self.method.clone().into_bytes()),
            (":path".into(), self.path.clone().into_bytes()),
            (":authority".into(), b"cb.example".to_vec()),
        ];
        head.extend(self.headers.iter().cloned());
        head
    }

    /// What an HTTP client could send and Envoy pass on: a path, header values without
    /// control characters.
    fn sendable(&self) -> bool {
        let path = self.path.as_bytes();
        path.first() == Some(&b'/')
            && path.iter().all(u8::is_ascii_graphic)
            && self.headers.iter().all(|(_, v)| {
                v.iter()
                    .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80)
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Forwarded {
        id: [u8; 16],
        fingerprint: [u8; 16],
    },
    /// Delivered again, unreserved: an identical repeat where the provider repeats itself.
    Repeated,
    Replied,
    Refused(Reason),
    /// Outside every protected route: the application gets nothing there it could not be
    /// sent without any signature.
    Unprotected,
}

/// Both steps as the filter takes them; a forwarded request settled as delivered.
fn judge(policy: &Policy, request: &Request, store: &MemoryStore) -> Verdict {
    judge_settled(policy, request, store, Outcome::Delivered)
}

/// [`judge`], a forwarded request settled as `outcome`.
fn judge_settled(
    policy: &Policy,
    request: &Request,
    store: &MemoryStore,
    outcome: Outcome,
) -> Verdict {
    let head = request.head();
    let head = RequestHead::new(&head);
    let now = Stamp::secs(NOW);
    let step = match guard::on_headers_verified(policy, &head, &Tls) {
        (Step::NeedBody(route), prior) => {
            guard::on_body_verified(route, &head, &request.body, prior, now, store, 7)
        }
        (step, _) => step,
    };
    match step {
        Step::Forward(accepted) => match accepted.reserved {
            Some(reserved) => {
                let Some(replay) = accepted.route.replay.as_ref() else {
                    unreachable!("reserved, so replay is on")
                };
                let settled = replay.cache.settle(
                    store,
                    &reserved.id,
                    &reserved.fingerprint,
                    outcome,
                    NOW as u32,
                );
                assert!(settled.is_ok());
                Verdict::Forwarded {
                    id: reserved.id,
                    fingerprint: reserved.fingerprint,
                }
            }
            None if accepted.repeat => Verdict::Repeated,
            None => unreachable!("a route with replay forwarded unreserved: {accepted:?}"),
        },
        Step::Reply(..) => Verdict::Replied,
        Step::Reject(_, rejection) => Verdict::Refused(rejection.reason),
        Step::Unprotected => Verdict::Unprotected,
        other => unreachable!("unexpected step {other:?}"),
    }
}

// ---- the schemes: routes, genuine requests, message templates ----

/// Where a variable part of a signed message lives in the request.
#[derive(Debug, Clone, Copy)]
enum Loc {
    /// `:path` before the `?`.
    Path,
    /// The whole `:path`.
    Full,
    Header(&'static str),
    /// A `key=value` item of a header's list (Stripe's `t`, Paddle's `ts`).
    Item(&'static str, &'static str, u8),
    Body,
    /// A string field of the body's `signature` object (Mailgun).
    Mailgun(&'static str),
}

#[derive(Debug, Clone, Copy)]
enum Seg {
    Lit(&'static [u8]),
    Var(Loc),
}

/// One scheme's route, how its genuine request is made, and its message template.
struct Scheme {
    name: &'static str,
    route: Value,
    template: &'static [Seg],
    /// Headers its applications dispatch on, to change one.
    dispatch: Option<&'static str>,
    sign: fn(&Input) -> Request,
}

/// What varies from one genuine request to the next.
#[derive(Debug, Clone)]
struct Input {
    /// A path segment under the route's prefix.
    tail: String,
    /// Text inside the JSON or form body.
    text: String,
    /// 20 digits.
    nonce: String,
    /// An id (message id, token).
    id: String,
}

fn route(name: &str, scheme: &str, extra: Value) -> Value {
    let mut route = json!({"name": name, "path_prefix": format!("/{name}/"), "scheme": scheme,
                           "keys": [{"name": "k", "value": String::from_utf8_lossy(SECRET)}]});
    for (k, v) in extra.as_object().into_iter().flatten() {
        route[k] = v.clone();
    }
    route
}

fn json_body(input: &Input) -> Vec<u8> {
    json!({"id": input.id, "text": input.text})
        .to_string()
        .into_bytes()
}

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

fn hmac_hex(parts: &[&[u8]]) -> String {
    hex(&mac(SECRET, parts))
}

fn whsec_key() -> Vec<u8> {
    SECRET.to_vec()
}

fn path(scheme: &str, input: &Input) -> String {
    format!("/{scheme}/{}", input.tail)
}

fn standard(names: [&'static str; 3], scheme: &str, input: &Input) -> Request {
    let body = json_body(input);
    let now = NOW.to_string();
    let signature = base64(&mac(
        &whsec_key(),
        &[input.id.as_bytes(), b".", now.as_bytes(), b".", &body],
    ));
    Request {
        body,
        ..Request::post(&path(scheme, input), JSON)
            .header(names[0], input.id.as_bytes())
            .header(names[1], now)
            .header(names[2], format!("v1,{signature}"))
    }
}

const SVIX_NAMES: [&str; 3] = ["svix-id", "svix-timestamp", "svix-signature"];

fn schemes() -> Vec<Scheme> {
    use Loc::*;
    use Seg::*;
    vec![
        Scheme {
            name: "vobiz",
            route: route(
                "vobiz",
                "vobiz_voice",
                json!({"public_origin": ORIGIN,
                "parent_keys": [{"name": "parent", "value": String::from_utf8_lossy(PARENT)}]}),
            ),
            template: &[
                Lit(ORIGIN_BYTES),
                Var(Path),
                Lit(b"."),
                Var(Header("x-vobiz-signature-v3-nonce")),
            ],
            dispatch: None,
            sign: |input| {
                let path = path("vobiz", input);
                let message = format!("{ORIGIN}{path}.{}", input.nonce);
                Request {
                    body: format!("CallUUID={}&Digits={}", input.id, form_text(&input.text))
                        .into_bytes(),
                    ..Request::post(&path, FORM)
                        .header(
                            "x-vobiz-signature-v3",
                            base64(&mac(SECRET, &[message.as_bytes()])),
                        )
                        .header(
                            "x-vobiz-signature-ma-v3",
                            base64(&mac(PARENT, &[message.as_bytes()])),
                        )
                        .header("x-vobiz-signature-v3-nonce", input.nonce.as_bytes())
                }
            },
        },
        Scheme {
            name: "vobizv2",
            route: route(
                "vobizv2",
                "vobiz_voice",
                json!({"public_origin": ORIGIN, "accept": ["v2"]}),
            ),
            template: &[
                Lit(ORIGIN_BYTES),
                Var(Path),
                Var(Header("x-vobiz-signature-v2-nonce")),
            ],
            dispatch: None,
            sign: |input| {
                let path = path("vobizv2", input);
                let message = format!("{ORIGIN}{path}{}", input.nonce);
                Request {
                    body: format!("CallUUID={}", input.id).into_bytes(),
                    ..Request::post(&path, FORM)
                        .header(
                            "x-vobiz-signature-v2",
                            base64(&mac(SECRET, &[message.as_bytes()])),
                        )
                        .header("x-vobiz-signature-v2-nonce", input.nonce.as_bytes())
                }
            },
        },
        Scheme {
            name: "sw",
            route: route(
                "sw",
                "standard_webhooks",
                json!({"keys": [{"name": "k", "value": WHSEC}]}),
            ),
            template: &[
                Var(Header("webhook-id")),
                Lit(b"."),
                Var(Header("webhook-timestamp")),
                Lit(b"."),
                Var(Body),
            ],
            dispatch: None,
            sign: |input| {
                standard(
                    ["webhook-id", "webhook-timestamp", "webhook-signature"],
                    "sw",
                    input,
                )
            },
        },
        Scheme {
            name: "svix",
            route: route(
                "svix",
                "svix",
                json!({"keys": [{"name": "k", "value": WHSEC}]}),
            ),
            template: &[
                Var(Header("svix-id")),
                Lit(b"."),
                Var(Header("svix-timestamp")),
                Lit(b"."),
                Var(Body),
            ],
            dispatch: None,
            sign: |input| standard(SVIX_NAMES, "svix", input),
        },
        Scheme {
            name: "resend",
            route: route(
                "resend",
                "resend",
                json!({"keys": [{"name": "k", "value": WHSEC}]}),
            ),
            template: &[
                Var(Header("svix-id")),
                Lit(b"."),
                Var(Header("svix-timestamp")),
                Lit(b"."),
                Var(Body),
            ],
            dispatch: None,
            sign: |input| standard(SVIX_NAMES, "resend", input),
        },
        Scheme {
            name: "stripe",
            route: route("stripe", "stripe", json!({})),
            template: &[
                Var(Item("stripe-signature", "t", b',')),
                Lit(b"."),
                Var(Body),
            ],
            dispatch: None,
            sign: |input| {
                let body = json_body(input);
                let now = NOW.to_string();
                let header = format!("t={now},v1={}", hmac_hex(&[now.as_bytes(), b".", &body]));
                Request {
                    body,
                    ..Request::post(&path("stripe", input), JSON).header("stripe-signature", header)
                }
            },
        },
        Scheme {
            name: "slack",
            route: route("slack", "slack", json!({})),
            template: &[
                Lit(b"v0:"),
                Var(Header("x-slack-request-timestamp")),
                Lit(b":"),
                Var(Body),
            ],
            dispatch: None,
            sign: |input| {
                timed_v0(
                    "slack",
                    ["x-slack-request-timestamp", "x-slack-signature"],
                    input,
                )
            },
        },
        Scheme {
            name: "zoom",
            route: route("zoom", "zoom", json!({})),
            template: &[
                Lit(b"v0:"),
                Var(Header("x-zm-request-timestamp")),
                Lit(b":"),
                Var(Body),
            ],
            dispatch: None,
            sign: |input| timed_v0("zoom", ["x-zm-request-timestamp", "x-zm-signature"], input),
        },
        Scheme {
            name: "paddle",
            route: route("paddle", "paddle", json!({})),
            template: &[
                Var(Item("paddle-signature", "ts", b';')),
                Lit(b":"),
                Var(Body),
            ],
            dispatch: None,
            sign: |input| {
                let body = json_body(input);
                let now = NOW.to_string();
                let header = format!("ts={now};h1={}", hmac_hex(&[now.as_bytes(), b":", &body]));
                Request {
                    body,
                    ..Request::post(&path("paddle", input), JSON).header("paddle-signature", header)
                }
            },
        },
        Scheme {
            name: "twitch",
            route: route("twitch", "twitch", json!({})),
            template: &[
                Var(Header("twitch-eventsub-message-id")),
                Var(Header("twitch-eventsub-message-timestamp")),
                Var(Body),
            ],
            dispatch: Some("twitch-eventsub-message-type"),
            sign: |input| {
                let body = json_body(input);
                let stamp = "2026-03-25T10:00:00.5Z";
                let signature = hmac_hex(&[input.id.as_bytes(), stamp.as_bytes(), &body]);
                Request {
                    body,
                    ..Request::post(&path("twitch", input), JSON)
                        .header("twitch-eventsub-message-id", input.id.as_bytes())
                        .header("twitch-eventsub-message-timestamp", stamp)
                        .header("twitch-eventsub-message-type", "notification")
                        .header(
                            "twitch-eventsub-message-signature",
                            format!("sha256={signature}"),
                        )
                }
            },
        },
        Scheme {
            name: "discord",
            route: route(
                "discord",
                "discord",
                json!({"keys": null, "public_keys": [{"name": "k",
                "value": hex(ed25519(SECRET).verifying_key().as_bytes())}]}),
            ),
            template: &[Var(Header("x-signature-timestamp")), Var(Body)],
            dispatch: None,
            sign: |input| {
                use ed25519_dalek::Signer;
                let body = json!({"type": 2, "id": input.id, "data": {"name": input.text}})
                    .to_string()
                    .into_bytes();
                let now = NOW.to_string();
                let signature = ed25519(SECRET).sign(&[now.as_bytes(), &body].concat());
                Request {
                    body,
                    ..Request::post(&path("discord", input), JSON)
                        .header("x-signature-timestamp", now)
                        .header("x-signature-ed25519", hex(&signature.to_bytes()))
                }
            },
        },
        Scheme {
            name: "sendgrid",
            route: route(
                "sendgrid",
                "sendgrid",
                json!({"keys": null, "public_keys": [{"name": "k", "value": p256_spki(SECRET)}]}),
            ),
            template: &[
                Var(Header("x-twilio-email-event-webhook-timestamp")),
                Var(Body),
            ],
            dispatch: None,
            sign: |input| {
                use p256::ecdsa::signature::Signer;
                let body = format!("[{}]", String::from_utf8_lossy(&json_body(input))).into_bytes();
                let now = NOW.to_string();
                let signature: p256::ecdsa::Signature =
                    p256_key(SECRET).sign(&[now.as_bytes(), &body].concat());
                Request {
                    body,
                    ..Request::post(&path("sendgrid", input), JSON)
                        .header("x-twilio-email-event-webhook-timestamp", now)
                        .header(
                            "x-twilio-email-event-webhook-signature",
                            base64(signature.to_der().as_bytes()),
                        )
                }
            },
        },
        Scheme {
            name: "square",
            route: route("square", "square", json!({"public_origin": ORIGIN})),
            template: &[Lit(ORIGIN_BYTES), Var(Full), Var(Body)],
            dispatch: Some("square-environment"),
            sign: |input| {
                let body = json_body(input);
                let path = format!("{}?s=1", path("square", input));
                let signature = base64(&mac(SECRET, &[ORIGIN.as_bytes(), path.as_bytes(), &body]));
                Request {
                    body,
                    ..Request::post(&path, JSON)
                        .header("x-square-hmacsha256-signature", signature)
                        .header("square-environment", "Production")
                }
            },
        },
        Scheme {
            name: "hubspot",
            route: route("hubspot", "hubspot", json!({"public_origin": ORIGIN})),
            template: &[
                Lit(b"POST"),
                Lit(ORIGIN_BYTES),
                Var(Full),
                Var(Body),
                Var(Header("x-hubspot-request-timestamp")),
            ],
            dispatch: None,
            sign: |input| {
                let body = format!("[{}]", String::from_utf8_lossy(&json_body(input))).into_bytes();
                let path = format!("{}?portal=1", path("hubspot", input));
                let millis = (NOW * 1000).to_string();
                let message = [
                    b"POST",
                    ORIGIN.as_bytes(),
                    path.as_bytes(),
                    &body,
                    millis.as_bytes(),
                ]
                .concat();
                Request {
                    body,
                    ..Request::post(&path, JSON)
                        .header("x-hubspot-signature-v3", base64(&mac(SECRET, &[&message])))
                        .header("x-hubspot-request-timestamp", millis)
                }
            },
        },
        Scheme {
            name: "mailgun",
            route: route("mailgun", "mailgun", json!({})),
            template: &[Var(Mailgun("timestamp")), Var(Mailgun("token"))],
            dispatch: None,
            sign: |input| {
                let now = NOW.to_string();
                let token = format!("{:0>50}", input.id);
                let signature = hmac_hex(&[now.as_bytes(), token.as_bytes()]);
                let body = json!({"signature": {"timestamp": now, "token": token, "signature": signature},
                                  "event-data": {"event": "delivered", "text": input.text}});
                Request {
                    body: body.to_string().into_bytes(),
                    ..Request::post(&path("mailgun", input), JSON)
                }
            },
        },
        Scheme {
            name: "github",
            route: route("github", "github", json!({})),
            template: &[Var(Body)],
            dispatch: Some("x-github-event"),
            sign: |input| {
                let body = json_body(input);
                Request::post(&path("github", input), JSON)
                    .header(
                        "x-hub-signature-256",
                        format!("sha256={}", hmac_hex(&[&body])),
                    )
                    .header("x-github-event", "push")
                    .header("x-github-delivery", input.id.as_bytes())
                    .with_body(body)
            },
        },
        Scheme {
            name: "shopify",
            route: route("shopify", "shopify", json!({})),
            template: &[Var(Body)],
            dispatch: Some("x-shopify-topic"),
            sign: |input| {
                let body = json_body(input);
                Request::post(&path("shopify", input), JSON)
                    .header("x-shopify-hmac-sha256", base64(&mac(SECRET, &[&body])))
                    .header("x-shopify-topic", "orders/create")
                    .header("x-shopify-shop-domain", "shop.example")
                    .with_body(body)
            },
        },
        Scheme {
            name: "clerk",
            route: route(
                "clerk",
                "clerk",
                json!({"keys": [{"name": "k", "value": WHSEC}]}),
            ),
            template: &[
                Var(Header("svix-id")),
                Lit(b"."),
                Var(Header("svix-timestamp")),
                Lit(b"."),
                Var(Body),
            ],
            dispatch: None,
            sign: |input| standard(SVIX_NAMES, "clerk", input),
        },
        Scheme {
            name: "meta",
            route: route("meta", "meta", json!({})),
            template: &[Var(Body)],
            dispatch: None,
            sign: |input| body_hex("meta", "x-hub-signature-256", "sha256=", input),
        },
        Scheme {
            name: "razorpay",
            route: route("razorpay", "razorpay", json!({})),
            template: &[Var(Body)],
            dispatch: Some("x-razorpay-event-id"),
            sign: |input| {
                body_hex("razorpay", "x-razorpay-signature", "", input)
                    .header("x-razorpay-event-id", input.id.as_bytes())
            },
        },
        Scheme {
            name: "pagerduty",
            route: route("pagerduty", "pagerduty", json!({})),
            template: &[Var(Body)],
            dispatch: Some("x-webhook-subscription"),
            sign: |input| {
                body_hex("pagerduty", "x-pagerduty-signature", "v1=", input)
                    .header("x-webhook-subscription", "P1")
            },
        },
        Scheme {
            name: "intercom",
            route: route("intercom", "intercom", json!({})),
            template: &[Var(Body)],
            dispatch: None,
            sign: |input| {
                let body = json_body(input);
                let signature = format!("sha1={}", hex(&mac_sha1(SECRET, &[&body])));
                Request::post(&path("intercom", input), JSON)
                    .header("x-hub-signature", signature)
                    .with_body(body)
            },
        },
        Scheme {
            name: "linear",
            route: route("linear", "linear", json!({})),
            template: &[Var(Body)],
            dispatch: Some("linear-event"),
            sign: |input| {
                let body = json!({"type": "Issue", "id": input.id, "text": input.text,
                                  "webhookTimestamp": NOW * 1000})
                .to_string()
                .into_bytes();
                Request::post(&path("linear", input), JSON)
                    .header("linear-signature", hmac_hex(&[&body]))
                    .header("linear-event", "Issue")
                    .with_body(body)
            },
        },
        Scheme {
            name: "generic",
            route: route(
                "generic",
                "generic_hmac",
                json!({"generic": {"signature": {"header": "X-Hub-Signature-256", "prefix": "sha256="},
                                   "encoding": "hex", "message": ["body"]}}),
            ),
            template: &[Var(Body)],
            dispatch: None,
            sign: |input| body_hex("generic", "x-hub-signature-256", "sha256=", input),
        },
        Scheme {
            name: "plivo",
            route: route("plivo", "plivo", json!({"public_origin": ORIGIN})),
            // The SDK's V3 renders the parameters sorted, name then value: no template reads
            // them back; `unsigned_changes` re-cuts them instead.
            template: &[],
            dispatch: None,
            sign: |input| {
                let path = path("plivo", input);
                let body = format!("CallUUID={}&Digits={}", input.id, form_text(&input.text));
                let url = format!("{ORIGIN}{path}?CallUUID{}Digits{}", input.id, input.text);
                let message = format!("{url}.{}", input.nonce);
                Request::post(&path, FORM)
                    .header(
                        "x-plivo-signature-v3",
                        base64(&mac(SECRET, &[message.as_bytes()])),
                    )
                    .header("x-plivo-signature-v3-nonce", input.nonce.as_bytes())
                    .with_body(body.into_bytes())
            },
        },
        Scheme {
            name: "kyc",
            route: route("kyc", "vobiz_kyc", json!({})),
            template: &[Var(Body)],
            dispatch: None,
            sign: |input| {
                let body = json_body(input);
                Request::post(&path("kyc", input), JSON)
                    .header(
                        "x-vobiz-signature",
                        format!("sha256={}", hmac_hex(&[&body])),
                    )
                    .with_body(body)
            },
        },
        Scheme {
            name: "whatsapp",
            route: route("whatsapp", "vobiz_whatsapp", json!({})),
            template: &[Var(Body)],
            dispatch: Some("x-webhook-event"),
            sign: |input| {
                let body = json!({"event_id": input.id, "event_type": "message.inbound",
                                  "occurred_at": "2026-03-25T10:00:00Z", "payload": {"text": input.text}})
                .to_string()
                .into_bytes();
                Request::post(&path("whatsapp", input), JSON)
                    .header("x-webhook-signature", hmac_hex(&[&body]))
                    .header("x-webhook-event", "message.inbound")
                    .with_body(body)
            },
        },
        Scheme {
            name: "twilio",
            route: route("twilio", "twilio", json!({"public_origin": ORIGIN})),
            // The parameters are rendered sorted, name then value, with nothing between:
            // no template reads them back; `unsigned_changes` re-cuts them instead.
            template: &[],
            dispatch: None,
            sign: |input| {
                let path = format!("{}?x=1", path("twilio", input));
                let body = format!("CallSid={}&Digits={}", input.id, form_text(&input.text));
                let rendered = format!("CallSid{}Digits{}", input.id, input.text);
                let signature = base64(&mac_sha1(
                    SECRET,
                    &[ORIGIN.as_bytes(), path.as_bytes(), rendered.as_bytes()],
                ));
                Request::post(&path, FORM)
                    .header("x-twilio-signature", signature)
                    .with_body(body.into_bytes())
            },
        },
        // The generic scheme, its parts constrained by no format: only the seam holds.
        Scheme {
            name: "lax-url",
            route: route(
                "lax-url",
                "generic_hmac",
                json!({"public_origin": ORIGIN, "generic": {
                "signature": {"header": "x-sig"}, "encoding": "hex", "message": ["url", "body"]}}),
            ),
            template: &[Lit(ORIGIN_BYTES), Var(Full), Var(Body)],
            dispatch: None,
            sign: |input| {
                let path = path("lax-url", input);
                let body = input.text.clone().into_bytes();
                Request::post(&path, "text/plain")
                    .header(
                        "x-sig",
                        hmac_hex(&[ORIGIN.as_bytes(), path.as_bytes(), &body]),
                    )
                    .with_body(body)
            },
        },
        Scheme {
            name: "lax-dots",
            route: route(
                "lax-dots",
                "generic_hmac",
                json!({"generic": {
                "signature": {"header": "x-sig"}, "encoding": "hex",
                "message": [{"header": "x-id"}, {"literal": "."}, {"header": "x-ts"}, {"literal": "."}, "body"]}}),
            ),
            template: &[
                Var(Header("x-id")),
                Lit(b"."),
                Var(Header("x-ts")),
                Lit(b"."),
                Var(Body),
            ],
            dispatch: None,
            sign: |input| {
                let id = format!("{}.{}", input.id, input.nonce);
                let body = format!("{}.{}", input.nonce, input.text).into_bytes();
                let ts = input.nonce[..10].to_string();
                Request::post(&path("lax-dots", input), "text/plain")
                    .header("x-id", id.as_bytes())
                    .header("x-ts", ts.as_bytes())
                    .header(
                        "x-sig",
                        hmac_hex(&[id.as_bytes(), b".", ts.as_bytes(), b".", &body]),
                    )
                    .with_body(body)
            },
        },
        Scheme {
            name: "lax-run",
            route: route(
                "lax-run",
                "generic_hmac",
                json!({"generic": {
                "signature": {"header": "x-sig"}, "encoding": "hex",
                "message": [{"header": "x-a"}, {"header": "x-b"}, "body"]}}),
            ),
            template: &[Var(Header("x-a")), Var(Header("x-b")), Var(Body)],
            dispatch: None,
            sign: |input| {
                let (a, b) = (input.id.clone(), input.nonce.clone());
                let body = input.text.clone().into_bytes();
                Request::post(&path("lax-run", input), "text/plain")
                    .header("x-a", a.as_bytes())
                    .header("x-b", b.as_bytes())
                    .header("x-sig", hmac_hex(&[a.as_bytes(), b.as_bytes(), &body]))
                    .with_body(body)
            },
        },
    ]
}

impl Request {
    fn with_body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }
}

/// A JSON body signed by a hex HMAC in `header`, after `prefix`.
fn body_hex(scheme: &str, header: &str, prefix: &str, input: &Input) -> Request {
    let body = json_body(input);
    Request::post(&path(scheme, input), JSON)
        .header(header, format!("{prefix}{}", hmac_hex(&[&body])))
        .with_body(body)
}

fn timed_v0(scheme: &str, names: [&str; 2], input: &Input) -> Request {
    let body = json_body(input);
    let now = NOW.to_string();
    let signature = format!("v0={}", hmac_hex(&[b"v0:", now.as_bytes(), b":", &body]));
    Request::post(&path(scheme, input), JSON)
        .header(names[0], now)
        .header(names[1], signature)
        .with_body(body)
}

/// `text` as a form value: letters and digits as they are, the rest escaped.
fn form_text(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---- re-splitting a signed message ----

/// The bytes each template part takes in `request`; `None` where the template does not
/// describe it (a value the scheme derives, such as Twilio's rendered parameters).
fn parts(template: &[Seg], request: &Request) -> Option<Vec<Vec<u8>>> {
    template
        .iter()
        .map(|seg| match seg {
            Seg::Lit(bytes) => Some(bytes.to_vec()),
            Seg::Var(loc) => read(*loc, request),
        })
        .collect()
}

fn read(loc: Loc, request: &Request) -> Option<Vec<u8>> {
    let path = request.path.as_bytes();
    Some(match loc {
        Loc::Path => path[..path.iter().position(|&b| b == b'?').unwrap_or(path.len())].to_vec(),
        Loc::Full => path.to_vec(),
        Loc::Header(name) => request.get(name).to_vec(),
        Loc::Item(name, key, separator) => request
            .get(name)
            .split(|&b| b == separator)
            .find_map(|item| item.strip_prefix(format!("{key}=").as_bytes()))?
            .to_vec(),
        Loc::Body => request.body.clone(),
        Loc::Mailgun(field) => {
            let body: Value = serde_json::from_slice(&request.body).ok()?;
            body["signature"][field].as_str()?.as_bytes().to_vec()
        }
    })
}

/// `request` with `loc` holding `value`.
fn write(loc: Loc, request: &mut Request, value: &[u8]) -> Option<()> {
    let text = || String::from_utf8(value.to_vec()).ok();
    match loc {
        Loc::Path => {
            let query = request
                .path
                .find('?')
                .map(|q| request.path[q..].to_string());
            request.path = text()? + &query.unwrap_or_default();
        }
        Loc::Full => request.path = text()?,
        Loc::Header(name) => request.set(name, value.to_vec()),
        Loc::Item(name, key, separator) => {
            let separator = char::from(separator);
            let old = String::from_utf8(request.get(name).to_vec()).ok()?;
            let items: Vec<String> = old
                .split(separator)
                .map(|item| match item.strip_prefix(&format!("{key}=")) {
                    Some(_) => format!("{key}={}", String::from_utf8_lossy(value)),
                    None => item.to_string(),
                })
                .collect();
            request.set(name, items.join(&separator.to_string()).into_bytes());
        }
        Loc::Body => request.body = value.to_vec(),
        Loc::Mailgun(field) => {
            let mut body: Value = serde_json::from_slice(&request.body).ok()?;
            body["signature"][field] = Value::from(text()?);
            request.body = body.to_string().into_bytes();
        }
    }
    Some(())
}

/// Every other way to cut `message` into the template's parts: literals where their bytes
/// are, variable parts of any length (a bounded number of ways).
fn splits(template: &[Seg], message: &[u8]) -> Vec<Vec<Vec<u8>>> {
    fn walk(template: &[Seg], rest: &[u8], taken: &mut Vec<Vec<u8>>, out: &mut Vec<Vec<Vec<u8>>>) {
        if out.len() >= MAX_SPLITS {
            return;
        }
        let Some((seg, more)) = template.split_first() else {
            if rest.is_empty() {
                out.push(taken.clone());
            }
            return;
        };
        match seg {
            Seg::Lit(bytes) => {
                if let Some(after) = rest.strip_prefix(*bytes) {
                    taken.push(bytes.to_vec());
                    walk(more, after, taken, out);
                    taken.pop();
                }
            }
            Seg::Var(_) if more.is_empty() => {
                taken.push(rest.to_vec());
                walk(more, &[], taken, out);
                taken.pop();
            }
            Seg::Var(_) => {
                for cut in 0..=rest.len() {
                    taken.push(rest[..cut].to_vec());
                    walk(more, &rest[cut..], taken, out);
                    taken.pop();
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(template, message, &mut Vec::new(), &mut out);
    out
}

/// The requests carrying `genuine`'s signed message, re-split.
fn resplit(scheme: &Scheme, genuine: &Request) -> Vec<Request> {
    let Some(original) = parts(scheme.template, genuine).filter(|parts| !parts.is_empty()) else {
        return Vec::new();
    };
    let message = original.concat();
    splits(scheme.template, &message)
        .into_iter()
        .filter(|split| *split != original)
        .filter_map(|split| {
            let mut request = genuine.clone();
            for (seg, value) in scheme.template.iter().zip(&split) {
                if let Seg::Var(loc) = seg {
                    write(*loc, &mut request, value)?;
                }
            }
            (request.sendable() && request != *genuine).then_some(request)
        })
        .collect()
}

/// The same signed bytes with the request's unsigned parts changed, and Twilio's parameters
/// re-cut (its signature renders them sorted, name then value, with nothing between).
fn unsigned_changes(scheme: &Scheme, genuine: &Request) -> Vec<Request> {
    let mut out = Vec::new();
    let mut change = |f: &dyn Fn(&mut Request)| {
        let mut request = genuine.clone();
        f(&mut request);
        if request != *genuine {
            out.push(request);
        }
    };
    change(&|r| r.method = "PUT".into());
    change(&|r| {
        r.path.push_str(if r.path.contains('?') {
            "&copy=1"
        } else {
            "?copy=1"
        })
    });
    change(&|r| {
        let content_type = String::from_utf8_lossy(r.get("content-type")).into_owned();
        r.set(
            "content-type",
            format!("{content_type}; charset=utf-8").into_bytes(),
        );
    });
    change(&|r| r.set("content-type", b"text/plain".to_vec()));
    change(&|r| r.set("content-encoding", b"gzip".to_vec()));
    if let Some(name) = scheme.dispatch {
        change(&|r| r.set(name, b"revocation".to_vec()));
    }
    if matches!(scheme.name, "twilio" | "plivo") {
        // `Name=X&Digits=Y` renders `NameXDigitsY`; so do `Name=XDigitsY` and
        // `Name=XD&igits=Y` (still sorted), with other raw bytes.
        let body = String::from_utf8_lossy(&genuine.body).into_owned();
        if let Some((first, digits)) = body.split_once("&Digits=") {
            change(&|r| r.body = format!("{first}Digits{digits}").into_bytes());
            change(&|r| r.body = format!("{first}D&igits={digits}").into_bytes());
        }
    }
    out
}

fn policy() -> Policy {
    let routes: Vec<Value> = schemes()
        .into_iter()
        .map(|s| {
            let mut route = s.route;
            if route.get("keys") == Some(&Value::Null) {
                route.as_object_mut().map(|r| r.remove("keys"));
            }
            route
        })
        .collect();
    let parsed = config::parse(json!({"routes": routes}).to_string().as_bytes(), &|_| None);
    match parsed {
        Ok(policy) => policy,
        Err(error) => unreachable!("the test routes are valid: {error}"),
    }
}

fn input() -> impl Strategy<Value = Input> {
    (
        "[a-z0-9_-][a-z0-9._-]{0,5}",
        "[ -~]{0,12}",
        "[0-9]{20}",
        "[A-Za-z0-9]{1,8}",
    )
        .prop_map(|(tail, text, nonce, id)| Input {
            tail,
            text: text.replace(['"', '\\'], ""),
            nonce,
            id,
        })
}

/// The property, for one scheme and one genuine request.
fn one_delivery(policy: &Policy, scheme: &Scheme, input: &Input) -> Result<usize, TestCaseError> {
    let genuine = (scheme.sign)(input);
    let fresh = MemoryStore::default();
    let Verdict::Forwarded { id, fingerprint } = judge(policy, &genuine, &fresh) else {
        return Err(TestCaseError::fail(format!(
            "{}: the genuine request was not delivered: {:?} {genuine:?}",
            scheme.name,
            judge(policy, &genuine, &MemoryStore::default())
        )));
    };
    let mut others = resplit(scheme, &genuine);
    others.extend(unsigned_changes(scheme, &genuine));
    let mut verified = 0;
    // Where the genuine one failed: refused requests write nothing, so one store serves.
    let failed = MemoryStore::default();
    judge_settled(policy, &genuine, &failed, Outcome::Failed);
    for other in &others {
        // After the genuine one failed, it is not the provider's retry.
        match judge(policy, other, &failed) {
            Verdict::Refused(_) | Verdict::Unprotected => {}
            verdict => prop_assert!(
                false,
                "{}: {:?} as a retry: {:?}",
                scheme.name,
                verdict,
                other
            ),
        }
        // Alone, it is the genuine request's delivery, or refused.
        match judge(policy, other, &MemoryStore::default()) {
            Verdict::Forwarded { id: other_id, .. } => {
                prop_assert_eq!(
                    other_id,
                    id,
                    "{}: another identity for {:?}",
                    scheme.name,
                    other
                );
                verified += 1;
            }
            Verdict::Refused(_) | Verdict::Unprotected => {}
            verdict => prop_assert!(false, "{}: {:?} for {:?}", scheme.name, verdict, other),
        }
        // After the genuine one was delivered, it is never delivered.
        match judge(policy, other, &fresh) {
            Verdict::Refused(_) | Verdict::Unprotected => {}
            verdict => prop_assert!(
                false,
                "{}: {:?} after delivery: {:?}",
                scheme.name,
                verdict,
                other
            ),
        }
    }
    // The genuine request again: answered as delivered (delivered again where the
    // provider repeats itself), its identity and fingerprint the same.
    let again = judge(policy, &genuine, &fresh);
    let expected = match scheme.name {
        "twilio" => Verdict::Repeated,
        _ => Verdict::Refused(Reason::AlreadyDelivered),
    };
    prop_assert_eq!(again, expected, "{}", scheme.name);
    prop_assert_eq!(
        judge(policy, &genuine, &MemoryStore::default()),
        Verdict::Forwarded { id, fingerprint },
        "{}: the same identity and fingerprint each time",
        scheme.name
    );
    Ok(verified)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(24), ..ProptestConfig::default() })]

    #[test]
    fn every_other_request_under_one_signature_is_the_same_delivery_or_refused(input in input()) {
        let policy = policy();
        for scheme in schemes() {
            one_delivery(&policy, &scheme, &input)?;
        }
    }
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// The lax routes' re-splits verify (their parts have no format): the property is not
/// vacuous, and holds by the identity and fingerprint alone.
#[test]
fn lax_re_splits_verify_and_are_one_delivery() {
    let policy = policy();
    let input = Input {
        tail: "e.v".into(),
        text: "a.b".into(),
        nonce: "12345678901234567890".into(),
        id: "i.d".into(),
    };
    for name in ["lax-url", "lax-dots", "lax-run"] {
        let scheme = schemes()
            .into_iter()
            .find(|s| s.name == name)
            .expect("a lax scheme");
        let verified = one_delivery(&policy, &scheme, &input).expect("one delivery");
        assert!(verified > 0, "{name}: no re-split verified");
    }
}

/// Voice V3 re-split as the review did it: `/x.php` and nonce `N` against `/x` and nonce
/// `php.N`; V2 relabelled: a V3 MAC is a V2 one for nonce `.N`.
#[test]
fn voice_re_splits_and_relabels_are_refused() {
    let policy = policy();
    let input = Input {
        tail: "answer.php".into(),
        text: "1".into(),
        nonce: "12345678901234567890".into(),
        id: "c1".into(),
    };
    let genuine = (schemes()[0].sign)(&input);
    let mut split = genuine.clone();
    split.path = "/vobiz/answer".into();
    split.set(
        "x-vobiz-signature-v3-nonce",
        b"php.12345678901234567890".to_vec(),
    );
    assert_eq!(
        judge(&policy, &split, &MemoryStore::default()),
        Verdict::Refused(Reason::MalformedHeader)
    );
    // The V3 capture's MAC under the V2 headers of a V2 route on the same origin.
    let v2_policy = config::parse(
        json!({"routes": [route("vobiz", "vobiz_voice", json!({"public_origin": ORIGIN, "accept": ["v2"]}))]})
            .to_string()
            .as_bytes(),
        &|_| None,
    )
    .expect("a V2 route");
    let mut relabelled = genuine.clone();
    relabelled
        .headers
        .retain(|(k, _)| !k.starts_with("x-vobiz"));
    relabelled.set(
        "x-vobiz-signature-v2",
        genuine.get("x-vobiz-signature-v3").to_vec(),
    );
    relabelled.set(
        "x-vobiz-signature-v2-nonce",
        format!(".{}", input.nonce).into_bytes(),
    );
    assert_eq!(
        judge(&v2_policy, &relabelled, &MemoryStore::default()),
        Verdict::Refused(Reason::MalformedHeader)
    );
}

/// One genuine request per scheme, and the replay id and fingerprint it is remembered by, as
/// the release before the workspace (42a53a7) computed them: replicas of two versions
/// sharing one etcd agree on what was delivered only if these never change.
const PREVIOUS_RELEASE: &[(&str, &str, &str)] = &[
    (
        "vobiz",
        "74388d964dc9be49fdd1d830ae254a3e",
        "774ce6bb85587dff690cd17d8d436189",
    ),
    (
        "vobizv2",
        "852c1d1760907ead4c52ae9f38b08a84",
        "84fb6378a6c2e3d1f8b778772953c07d",
    ),
    (
        "sw",
        "20183b1451a8bb1fed5307f8ead4313b",
        "cff52a72e31c5a29475ac853676ef9de",
    ),
    (
        "svix",
        "b568b032d7a9e677714511d94230cbaf",
        "5b22ccecb261321560fdfbfc117f1724",
    ),
    (
        "resend",
        "15b447bd0712bb65589aef8fbe99f19b",
        "fbf7b54f322c54c3b3731da166b88979",
    ),
    (
        "stripe",
        "f6cc0dfd30d3cf769188c3d7b6891462",
        "2d32a4436fcbe97243a6494e88c76a8f",
    ),
    (
        "slack",
        "209ec8e3274455403d99027a1ad60ea2",
        "d46b18469f9ffd89c0e4ecf1a6c35d37",
    ),
    (
        "zoom",
        "bcf00c42e872a668f152c55f6fad553c",
        "86b34e891595e88ed9ee411fea009f42",
    ),
    (
        "paddle",
        "d287b7dc470d665bc3ddb1ba51270592",
        "07ce06ba1b55e4f55d93bc85d50b4c70",
    ),
    (
        "twitch",
        "a4d8ea84c399d491506d5bdd9cca884b",
        "fa66c9e69505133c7e6d82767122ebde",
    ),
    (
        "discord",
        "1d7de3a89bcdd399e1b4c3d6c59f31a5",
        "abb2bb8f7c2fb719a1b24700cb97e852",
    ),
    (
        "sendgrid",
        "7c7aea8a6af041833a9aa1d0121e7894",
        "dfa9b885d599b8b1cad328bc93db9ac8",
    ),
    (
        "square",
        "a33155a7e73b48d8b4a7ab0914f7fb52",
        "be134c415373ad640f6de70488ed68af",
    ),
    (
        "hubspot",
        "a1a10f3a689319477ae3686727f64085",
        "ed0ac79984ce0d3ef507b5035dda2973",
    ),
    (
        "mailgun",
        "505d24af8c7c729d58460aa80e43ae0e",
        "4b77393ca6a8523559f59118dbe952e6",
    ),
    (
        "github",
        "e2bece943aacd71d41ff959ea746987c",
        "e911bb00128f38d8adbbb54001125818",
    ),
    (
        "shopify",
        "f724f5e16f892c6f5074500926e7e196",
        "a98ca096e54dcec640c93c351497d673",
    ),
    (
        "clerk",
        "8de3e30784b0ababb2afac2c9a6885e3",
        "f532c4a25be737a290c211bb0d8c19e8",
    ),
    (
        "meta",
        "486a8cbbcc585bb579011724dd7f9d07",
        "6a45c814c75b8012a88a5a7937fe1529",
    ),
    (
        "razorpay",
        "377caddb7b1737d339e871e2336e0713",
        "7c91ca00a777b57a8192161a20de688e",
    ),
    (
        "pagerduty",
        "c424ebc8fb80ef855938801063977ee9",
        "87321da399e60c5bdc0f997c4e20abfd",
    ),
    (
        "intercom",
        "b292c0e9644946c5f44bc923e7e62bcc",
        "82be26a1d90f233711d671a07d2a75cc",
    ),
    (
        "linear",
        "22c98468396ba99c0f803dec89dd43e4",
        "2fffcff2ec78aa16424cf7316edaae5d",
    ),
    (
        "generic",
        "fd844eaec075e3b2b1ca4350ccb72c99",
        "5f9648bf4a99d6d020465a79a006801b",
    ),
    (
        "plivo",
        "ed7b14bd199391e0d52e8411839d9841",
        "bf10e488d843aa532cd3bf1e38335e32",
    ),
    (
        "kyc",
        "d4720175129b227a00f8851a33949c90",
        "5b2cfd178af31cd0292ab42a61c24e08",
    ),
    (
        "whatsapp",
        "1bbe058bdd746710b1c116b5b377e8b5",
        "5b0729a4ce5f1bcdf9990ce5f6393393",
    ),
    (
        "twilio",
        "51af77e780f512c3e2cfd601cb1550d7",
        "76f205f6918613ea3832cc88766a98b4",
    ),
    (
        "lax-url",
        "15b1893970bcbb71dad1d33b7938eac9",
        "cef6e4cb6cd17e821d6d1bb5fda90328",
    ),
    (
        "lax-dots",
        "4f3356aacf5a4e68b7f05c1f118f0eec",
        "564de92fa453d5f778abf540a274be06",
    ),
    (
        "lax-run",
        "79800718ef43c09adb0adb58270e7f7f",
        "57ee115d946ffe514ef1f13fca5542c9",
    ),
];

#[test]
fn replay_ids_and_fingerprints_are_those_of_the_previous_release() {
    let policy = policy();
    let input = Input {
        tail: "a-1".into(),
        text: "caf\u{e9} & co".into(),
        nonce: "12345678901234567890".into(),
        id: "Msg2Kz".into(),
    };
    let computed: Vec<(&str, String, String)> = schemes()
        .iter()
        .filter_map(|scheme| {
            match judge(&policy, &(scheme.sign)(&input), &MemoryStore::default()) {
                Verdict::Forwarded { id, fingerprint } => {
                    Some((scheme.name, hex(&id), hex(&fingerprint)))
                }
                _ => None,
            }
        })
        .collect();
    if std::env::var_os("PRINT_GOLDEN").is_some() {
        for (name, id, fingerprint) in &computed {
            println!("    ({name:?}, {id:?}, {fingerprint:?}),");
        }
    }
    let expected: Vec<(&str, String, String)> = PREVIOUS_RELEASE
        .iter()
        .map(|(name, id, fingerprint)| (*name, id.to_string(), fingerprint.to_string()))
        .collect();
    assert_eq!(computed, expected);
}
