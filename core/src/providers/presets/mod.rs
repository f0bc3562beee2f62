//! Providers whose HMAC scheme the generic engine expresses: each preset is the `generic`
//! block a user would write (see the README), so one engine verifies them all, plus the
//! endpoint check a few of them send.
//!
//! | preset | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- | --- |
//! | razorpay | body | none | JSON object | `X-Razorpay-Event-Id` |
//! | paddle | `ts` item ‖ `:` ‖ body (re-signed per attempt; no other list entries) | `ts` item, ±5 s (the SDK's) | JSON object | |
//! | square | notification URL ‖ body | none | JSON object | `square-environment` |
//! | hubspot | method ‖ URL (HubSpot's escapes decoded) ‖ body ‖ timestamp | timestamp header (ms), 5 min, at the SDK's edge (floored, strict) | JSON array | |
//! | linear | body | `webhookTimestamp` body field (ms), ±60 s (the SDK's) | JSON object | `Linear-Event` |
//! | zoom | `v0:` ‖ timestamp ‖ `:` ‖ body | timestamp header, ±5 min | JSON object | |
//! | pagerduty | body | none | JSON object | `X-Webhook-Subscription` |
//! | intercom | body (HMAC-SHA1) | none | JSON object | |
//! | twitch | message id ‖ timestamp ‖ body | timestamp (RFC 3339), 10 min past (Twitch's advice), 5 min ahead | JSON object | message type, subscription type and version |

use serde_json::{json, Value};

use crate::keys::Key;
use crate::providers::entry::{Entry, Field, Problem, Settings};
use crate::providers::generic::{self, Generic};
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{self, Outgoing, Signer, Signing};
use crate::providers::{hex, json_challenge, json_with, Provider, Reply};
use crate::request::{Lookup, RequestHead};
use crate::verdict::{Reason, Rejection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Razorpay,
    Paddle,
    Square,
    HubSpot,
    Linear,
    Zoom,
    PagerDuty,
    Intercom,
    Twitch,
}

fn built(preset: Preset, settings: Settings) -> Result<Box<dyn Provider>, Problem> {
    let scheme = preset.compile(settings.public_origin, settings.keys);
    Ok(Box::new(scheme.map_err(generic::problem)?))
}

/// The presets whose message signs the URL read the route's `public_origin`.
const SIGNS_URL: &[Field] = &[Field::PublicOrigin];

/// A preset's signer: the generic engine's, over the preset's description.
#[cfg(any(test, feature = "sign"))]
macro_rules! signer {
    ($preset:expr) => {
        Signer {
            sign: |signing, out| $preset.sign(signing, out),
            example: |signing| $preset.example(signing),
        }
    };
}

pub const RAZORPAY: Entry = signs!(
    Entry::new(Preset::Razorpay.name(), |s| built(Preset::Razorpay, s)),
    signer!(Preset::Razorpay)
);
pub const PADDLE: Entry = signs!(
    Entry::new(Preset::Paddle.name(), |s| built(Preset::Paddle, s)),
    signer!(Preset::Paddle)
);
pub const SQUARE: Entry = signs!(
    Entry::new(Preset::Square.name(), |s| built(Preset::Square, s)).reading(SIGNS_URL),
    signer!(Preset::Square)
);
pub const HUBSPOT: Entry = signs!(
    Entry::new(Preset::HubSpot.name(), |s| built(Preset::HubSpot, s)).reading(SIGNS_URL),
    signer!(Preset::HubSpot)
);
pub const LINEAR: Entry = signs!(
    Entry::new(Preset::Linear.name(), |s| built(Preset::Linear, s)),
    signer!(Preset::Linear)
);
pub const ZOOM: Entry = signs!(
    Entry::new(Preset::Zoom.name(), |s| built(Preset::Zoom, s)),
    signer!(Preset::Zoom)
);
pub const PAGERDUTY: Entry = signs!(
    Entry::new(Preset::PagerDuty.name(), |s| built(Preset::PagerDuty, s)),
    signer!(Preset::PagerDuty)
);
pub const INTERCOM: Entry = signs!(
    Entry::new(Preset::Intercom.name(), |s| built(Preset::Intercom, s)),
    signer!(Preset::Intercom)
);
pub const TWITCH: Entry = signs!(
    Entry::new(Preset::Twitch.name(), |s| built(Preset::Twitch, s)),
    signer!(Preset::Twitch)
);

/// HubSpot's docs list these escapes as decoded in the URI it signs.
const HUBSPOT_UNESCAPED: &str = ":/?@!$'()*,;";

impl Preset {
    pub const ALL: [Preset; 9] = [
        Preset::Razorpay,
        Preset::Paddle,
        Preset::Square,
        Preset::HubSpot,
        Preset::Linear,
        Preset::Zoom,
        Preset::PagerDuty,
        Preset::Intercom,
        Preset::Twitch,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Preset::Razorpay => "razorpay",
            Preset::Paddle => "paddle",
            Preset::Square => "square",
            Preset::HubSpot => "hubspot",
            Preset::Linear => "linear",
            Preset::Zoom => "zoom",
            Preset::PagerDuty => "pagerduty",
            Preset::Intercom => "intercom",
            Preset::Twitch => "twitch",
        }
    }

    /// The preset as a `generic` block.
    pub fn description(self) -> Value {
        let body_hex = |header: &str, prefix: &str| {
            json!({
                "signature": {"header": header, "prefix": prefix},
                "encoding": "hex",
                "message": ["body"],
                "body": "json_object",
            })
        };
        match self {
            Preset::Razorpay => {
                let mut description = body_hex("X-Razorpay-Signature", "");
                description["dispatch_headers"] = json!(["X-Razorpay-Event-Id"]);
                description
            }
            Preset::Paddle => json!({
                "signature": {"header": "Paddle-Signature",
                              "list": {"separator": ";", "entry": "key=value", "label": "h1", "strict": true}},
                "encoding": "hex",
                "message": [{"item": "ts"}, {"literal": ":"}, "body"],
                "timestamp": {"item": "ts", "format": "seconds", "max_age_secs": 5, "max_future_secs": 5},
                "body": "json_object",
            }),
            Preset::Square => json!({
                "signature": {"header": "X-Square-Hmacsha256-Signature"},
                "encoding": "base64",
                "message": ["url", "body"],
                "dispatch_headers": ["square-environment"],
                "body": "json_object",
            }),
            Preset::HubSpot => json!({
                "signature": {"header": "X-HubSpot-Signature-v3"},
                "encoding": "base64",
                "message": ["method", {"url_unescaping": HUBSPOT_UNESCAPED}, "body",
                            {"header": "X-HubSpot-Request-Timestamp"}],
                "timestamp": {"header": "X-HubSpot-Request-Timestamp", "format": "milliseconds",
                              "edges": "floored_time_strict_age"},
                "body": "json_array",
            }),
            Preset::Linear => json!({
                "signature": {"header": "Linear-Signature"},
                "encoding": "hex",
                "message": ["body"],
                "timestamp": {"body_field": "webhookTimestamp", "format": "milliseconds",
                              "max_age_secs": 60, "max_future_secs": 60},
                "dispatch_headers": ["Linear-Event"],
                "body": "json_object",
            }),
            Preset::Zoom => json!({
                "signature": {"header": "x-zm-signature", "prefix": "v0="},
                "encoding": "hex",
                "message": [{"literal": "v0:"}, {"header": "x-zm-request-timestamp"},
                            {"literal": ":"}, "body"],
                "timestamp": {"header": "x-zm-request-timestamp", "format": "seconds"},
                "body": "json_object",
            }),
            Preset::PagerDuty => json!({
                "signature": {"header": "X-PagerDuty-Signature",
                              "list": {"separator": ",", "trim": true, "entry": "key=value", "label": "v1"}},
                "encoding": "hex",
                "message": ["body"],
                "dispatch_headers": ["X-Webhook-Subscription"],
                "body": "json_object",
            }),
            Preset::Intercom => {
                let mut description = body_hex("X-Hub-Signature", "sha1=");
                description["algorithm"] = json!("sha1");
                description
            }
            Preset::Twitch => json!({
                "signature": {"header": "Twitch-Eventsub-Message-Signature", "prefix": "sha256="},
                "encoding": "hex",
                "message": [{"header": "Twitch-Eventsub-Message-Id"},
                            {"header": "Twitch-Eventsub-Message-Timestamp"}, "body"],
                "timestamp": {"header": "Twitch-Eventsub-Message-Timestamp", "format": "rfc3339",
                              "max_age_secs": 600, "max_future_secs": 300},
                "dispatch_headers": ["Twitch-Eventsub-Message-Type", "Twitch-Eventsub-Subscription-Type",
                                     "Twitch-Eventsub-Subscription-Version"],
                "body": "json_object",
            }),
        }
    }

    /// Whether the message signs the URL (and so needs the public origin).
    #[cfg(any(test, feature = "sign"))]
    pub fn signs_url(self) -> bool {
        matches!(self, Preset::Square | Preset::HubSpot)
    }

    /// What the provider sends: the unsigned headers an application dispatches on, then
    /// the generic engine's signature over the preset's description.
    #[cfg(any(test, feature = "sign"))]
    pub fn sign(self, signing: &Signing, out: &mut Outgoing) -> Result<(), String> {
        let secret = signing.secret(self.name())?;
        let origin = self.signs_url().then(|| signing.origin_of(out));
        let scheme = self
            .compile(origin, vec![sign::key(secret.as_bytes())?])
            .map_err(|(field, problem)| format!("{field}: {problem}"))?;
        let id = signing.id_or_uuid();
        let headers: &[(&str, &str)] = match self {
            Preset::Razorpay => &[("x-razorpay-event-id", &id)],
            Preset::Square => &[("square-environment", "Sandbox")],
            Preset::Linear => &[("linear-event", "Issue"), ("linear-delivery", &id)],
            Preset::PagerDuty => &[("x-webhook-subscription", &id)],
            Preset::Twitch => &[
                ("twitch-eventsub-message-type", "notification"),
                ("twitch-eventsub-subscription-type", "channel.follow"),
                ("twitch-eventsub-subscription-version", "2"),
            ],
            Preset::Paddle | Preset::HubSpot | Preset::Zoom | Preset::Intercom => &[],
        };
        for (name, value) in headers {
            out.default_header(name, *value);
        }
        scheme.sign(signing, out)
    }

    /// An event of the provider's, of its media (HubSpot posts an array of them).
    #[cfg(any(test, feature = "sign"))]
    pub fn example(self, signing: &Signing) -> Vec<u8> {
        let id = sign::uuid(&signing.random);
        let short = sign::base62(&signing.random, 14);
        let (now, at) = (signing.now, sign::rfc3339(signing.now));
        let millis = i128::from(now) * 1000;
        match self {
            Preset::Razorpay => format!(
                r#"{{"entity":"event","account_id":"acc_{short}","event":"payment.captured","contains":["payment"],"payload":{{"payment":{{"entity":{{"id":"pay_{short}","amount":1000}}}}}},"created_at":{now}}}"#
            ),
            Preset::Paddle => format!(
                r#"{{"event_id":"evt_{short}","event_type":"transaction.completed","occurred_at":"{at}","notification_id":"ntf_{short}","data":{{"id":"txn_{short}"}}}}"#
            ),
            Preset::Square => format!(
                r#"{{"merchant_id":"M{short}","type":"payment.created","event_id":"{id}","created_at":"{at}","data":{{"type":"payment","id":"{short}"}}}}"#
            ),
            Preset::HubSpot => format!(
                r#"[{{"eventId":{},"subscriptionType":"contact.creation","portalId":62515,"occurredAt":{millis},"objectId":123}}]"#,
                sign::number(&signing.random, 10)
            ),
            Preset::Linear => format!(
                r#"{{"action":"create","type":"Issue","data":{{"id":"{id}","title":"Simulated"}},"webhookId":"{id}"}}"#
            ),
            Preset::Zoom => format!(
                r#"{{"event":"meeting.started","payload":{{"account_id":"{short}","object":{{"id":"{}"}}}},"event_ts":{millis}}}"#,
                sign::digits(&signing.random, 11)
            ),
            Preset::PagerDuty => format!(
                r#"{{"event":{{"id":"{short}","event_type":"incident.triggered","occurred_at":"{at}","data":{{"id":"P{short}","type":"incident"}}}}}}"#
            ),
            Preset::Intercom => format!(
                r#"{{"type":"notification_event","topic":"conversation.user.created","id":"notif_{id}","created_at":{now},"data":{{"item":{{}}}}}}"#
            ),
            Preset::Twitch => format!(
                r#"{{"subscription":{{"id":"{id}","type":"channel.follow","version":"2","status":"enabled"}},"event":{{"user_id":"1337","broadcaster_user_id":"1"}}}}"#
            ),
        }
        .into_bytes()
    }

    /// The preset's endpoint check, answered at the edge once the request verified.
    fn handshake(self) -> Option<generic::Handshake> {
        match self {
            Preset::Zoom => Some(zoom_url_validation),
            Preset::Twitch => Some(twitch_callback_verification),
            _ => None,
        }
    }

    /// The preset's scheme for a route; errors are `(field, problem)` as
    /// [`generic::compile`]'s, and only `public_origin` can be wrong.
    pub fn compile(
        self,
        origin: Option<String>,
        keys: Vec<Key>,
    ) -> Result<Generic, (String, String)> {
        let raw: generic::Raw = serde_json::from_value(self.description()).map_err(|e| {
            (
                "scheme".to_string(),
                format!("preset {} is invalid: {e}", self.name()),
            )
        })?;
        let mut scheme = generic::compile(raw, self.name(), origin, keys)?;
        scheme.handshake = self.handshake();
        Ok(scheme)
    }
}

/// Zoom's `endpoint.url_validation`: `{"plainToken", "encryptedToken": hex
/// HMAC(plainToken)}`.
fn zoom_url_validation(
    _head: &RequestHead,
    body: &[u8],
    key: Option<&Key>,
) -> Result<Option<Reply>, Rejection> {
    let Some(event) = json_with(body, b"endpoint.url_validation") else {
        return Ok(None);
    };
    if event.get("event").and_then(Value::as_str) != Some("endpoint.url_validation") {
        return Ok(None);
    }
    let plain = json_challenge(event.get("payload").and_then(|p| p.get("plainToken")))?;
    let Some(key) = key else {
        return Ok(None);
    };
    let encrypted = hex(&key.mac(&[plain.as_bytes()]));
    Ok(Some(Reply::json(
        "url_validation",
        &[("plainToken", plain), ("encryptedToken", &encrypted)],
    )))
}

/// Twitch's `Twitch-Eventsub-Message-Type: webhook_callback_verification`: the challenge,
/// as plain text.
fn twitch_callback_verification(
    head: &RequestHead,
    body: &[u8],
    _key: Option<&Key>,
) -> Result<Option<Reply>, Rejection> {
    // The message type is not signed: a challenge is answered only when the header and
    // the signed body agree, and a header that claims one without it is refused rather
    // than forwarded under a false type.
    match head.lookup("twitch-eventsub-message-type") {
        Lookup::One(b"webhook_callback_verification") => {}
        Lookup::Duplicate => {
            return Err(Rejection::new(
                Reason::DuplicateHeader,
                "twitch-eventsub-message-type appears more than once",
            ))
        }
        _ => return Ok(None),
    }
    let event = json_with(body, b"\"challenge\"").unwrap_or_default();
    let challenge = json_challenge(event.get("challenge"))?;
    Ok(Some(Reply::text(
        "callback_verification",
        challenge.as_bytes(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::test_key;
    use crate::providers::{Body, Checks, Provider};
    use crate::request::headers;

    const BODY_B: &str = "{\"id\":\"evt_1\",\"amount\":100,\"note\":\"caf\u{e9}\"}";

    fn judge(
        preset: Preset,
        secret: &str,
        origin: Option<&str>,
        h: &[(&str, &str)],
        body: &str,
    ) -> Result<Option<i64>, Reason> {
        let scheme = preset
            .compile(origin.map(str::to_string), vec![test_key("k", secret)])
            .unwrap();
        let h = headers(h);
        let head = RequestHead::new(&h);
        scheme
            .at_headers(&head, &Checks::default())
            .map_err(|r| r.reason)?;
        scheme
            .at_body(&head, &Body::whole(body.as_bytes()), &Checks::default())
            .map(|v| v.time.map(crate::timestamp::Stamp::unix_secs))
            .map_err(|r| r.reason)
    }

    #[test]
    fn every_preset_compiles() {
        for preset in Preset::ALL {
            let origin = matches!(preset, Preset::Square | Preset::HubSpot)
                .then(|| "https://example.com".to_string());
            let scheme = preset.compile(origin, vec![test_key("k", "s")]);
            assert!(scheme.is_ok(), "{preset:?}: {scheme:?}");
        }
        let needs_origin = Preset::Square.compile(None, vec![]).unwrap_err();
        assert_eq!(needs_origin.0, "public_origin");
    }

    #[test]
    fn a_preset_reads_public_origin_exactly_when_it_signs_the_url() {
        for preset in Preset::ALL {
            let entry = crate::providers::registry::find(preset.name()).unwrap();
            let signs_url = preset.compile(None, vec![test_key("k", "s")]).is_err();
            assert_eq!(entry.reads(Field::PublicOrigin), signs_url, "{preset:?}");
        }
    }

    /// Preset, secret, public origin, headers, body, the signed time.
    type Vector = (
        Preset,
        &'static str,
        Option<&'static str>,
        Vec<(&'static str, &'static str)>,
        &'static str,
        Option<i64>,
    );

    // providers.md §4, rows 10, 11, 14, 15, 16, 18, 19, 20, 23: each provider's vector.
    fn vectors() -> Vec<Vector> {
        vec![
            (Preset::Razorpay, "razorpay_webhook_secret", None,
             vec![("x-razorpay-signature", "be67cd7d7c76048d32a679655d24c3d8380874be0dabb8646b08c1bc327502f5")], BODY_B, None),
            (Preset::Paddle, "pdl_ntfset_01gkpjp8bkm3tm53kdgkx6sms7_6h3qd3uFSi9YCD3OLYAShQI90XTI5vEI", None,
             vec![("paddle-signature", "ts=1700000000;h1=0000000000000000000000000000000000000000000000000000000000000000;h1=84b000dabe14d98c2d10b3459ee8c2bbe239a96fedf5227e7e7a3a5df1d1ef31")], BODY_B, Some(1_700_000_000)),
            (Preset::Square, "square_signature_key", Some("https://example.com"),
             vec![(":path", "/webhooks/square"), ("x-square-hmacsha256-signature", "vSybr0KyA670B1h+aKvQ0c+YMUhEdr/fjHmQtweWbe0=")], BODY_B, None),
            (Preset::HubSpot, "hubspot_client_secret", Some("https://example.com"),
             vec![(":method", "POST"), (":path", "/webhooks/hubspot?x=1"), ("x-hubspot-request-timestamp", "1700000000000"), ("x-hubspot-signature-v3", "gWAooEDd1oGb+YYdxpVVJXp+eWeMqs6cCvoKjLYkfuQ=")], BODY_B, Some(1_700_000_000)),
            (Preset::Linear, "lin_wh_test_secret", None,
             vec![("linear-signature", "55f36b7055b0e54d757b27a7ce6b16363c8f1f74867848956b7a5b4e63a8ffef")],
             r#"{"action":"create","type":"Issue","webhookTimestamp":1700000000000,"webhookId":"wh_1"}"#, Some(1_700_000_000)),
            (Preset::Zoom, "zoom_secret_token", None,
             vec![("x-zm-request-timestamp", "1700000000"), ("x-zm-signature", "v0=c497b1c90522c8f17a26f96a1f6c4a597b481e9194c92bbab4a8fd37ef38f6ea")],
             r#"{"event":"meeting.started","payload":{},"event_ts":1700000000000}"#, Some(1_700_000_000)),
            (Preset::PagerDuty, "pd_webhook_secret", None,
             vec![("x-pagerduty-signature", "v1=0000000000000000000000000000000000000000000000000000000000000000, v1=46c68f382e1cbfead7368cf8a74a450b42063342fd218919e0cf6770f09187b0")], BODY_B, None),
            (Preset::Intercom, "intercom_client_secret", None,
             vec![("x-hub-signature", "sha1=1dc926c0a6390cb4c588b131f747524b8389d373")], BODY_B, None),
            (Preset::Twitch, "twitch_secret_10_to_100_chars", None,
             vec![("twitch-eventsub-message-id", "e76c6bd4-55c9-4987-8304-da1588d8988b"), ("twitch-eventsub-message-timestamp", "2023-11-14T22:13:20.123456789Z"), ("twitch-eventsub-message-signature", "sha256=f2a8eb3f8ade53b1412b565cfb943df4933f6dab6f694e5154b8fe08e5be84ef")], BODY_B, Some(1_700_000_000)),
        ]
    }

    #[test]
    fn the_reference_vectors_verify_and_one_changed_byte_does_not() {
        for (preset, secret, origin, h, body, time) in vectors() {
            assert_eq!(
                judge(preset, secret, origin, &h, body),
                Ok(time),
                "{preset:?}"
            );
            let changed = body.replacen('1', "2", 1);
            assert_eq!(
                judge(preset, secret, origin, &h, &changed),
                Err(Reason::SignatureMismatch),
                "{preset:?}"
            );
            assert_eq!(
                judge(preset, "other", origin, &h, body),
                Err(Reason::SignatureMismatch),
                "{preset:?}"
            );
        }
    }

    /// Each vector's inputs, signed: the vector's signature, byte for byte; and the
    /// examples, signed, verify while a changed body does not.
    #[test]
    fn the_signers_reproduce_the_reference_vectors_and_their_output_verifies() {
        use crate::providers::sign::testing::{changed_body, judge};
        use crate::providers::sign::{KeyMaterial, Role};
        for (preset, secret, origin, h, body, time) in vectors() {
            let origin_or = origin.unwrap_or("https://example.com");
            let path = h
                .iter()
                .find(|(n, _)| *n == ":path")
                .map_or("/", |(_, v)| *v);
            let mut out = Outgoing::new(
                "POST",
                &format!("{origin_or}{path}"),
                body.as_bytes().to_vec(),
            );
            let signature = preset.description()["signature"]["header"]
                .as_str()
                .unwrap()
                .to_ascii_lowercase();
            // Twitch's time has nanoseconds: the headers given are signed as they are.
            for (name, value) in &h {
                if !name.starts_with(':') && *name != signature && preset == Preset::Twitch {
                    out.push(name, *value, Role::Plain);
                }
            }
            let signing = Signing::new(KeyMaterial::Secret(secret), time.unwrap_or(0));
            preset.sign(&signing, &mut out).unwrap();
            let expected = h.iter().find(|(n, _)| *n == signature).unwrap().1;
            let got = out.header(&signature).unwrap();
            let Some(Role::Signature { at }) = out
                .headers
                .iter()
                .find(|header| header.name == signature)
                .map(|header| header.role)
            else {
                panic!("{preset:?}: no signature header")
            };
            // Paddle's and PagerDuty's vectors list a wrong signature before the right one.
            let listed = matches!(preset, Preset::Paddle | Preset::PagerDuty);
            assert!(expected.ends_with(&got[at..]), "{preset:?}: {got}");
            assert!(listed || expected == got, "{preset:?}: {got}");
            assert!(expected.starts_with(&got[..at]), "{preset:?}: {got}");

            let scheme = preset
                .compile(origin.map(str::to_string), vec![test_key("k", secret)])
                .unwrap();
            let now = 1_700_000_000;
            let mut example = Outgoing::new(
                "POST",
                &format!("{origin_or}/hook?x=1"),
                preset.example(&Signing::new(KeyMaterial::Secret(secret), now)),
            );
            preset
                .sign(
                    &Signing::new(KeyMaterial::Secret(secret), now),
                    &mut example,
                )
                .unwrap();
            let verified = Ok((format!("{}/k", preset.name()), time.map(|_| now)));
            assert_eq!(judge(&scheme, &example), verified, "{preset:?}");
            assert_eq!(
                judge(&scheme, &changed_body(&example)),
                Err(Reason::SignatureMismatch),
                "{preset:?}"
            );
            let media = scheme.media();
            let parsed: Value = serde_json::from_slice(&example.body).unwrap();
            assert_eq!(
                parsed.is_array(),
                media.json == Some(crate::providers::Json::Array)
            );
        }
    }

    #[test]
    fn hubspot_signs_its_listed_escapes_decoded() {
        // HubSpot signs `...?a=b:c` when it calls `...?a=b%3Ac`; `%26` stays as sent.
        let secret = "hubspot_client_secret";
        let sign = |uri: &str| {
            use base64::Engine;
            let mac =
                test_key("k", secret).mac(&[b"POST", uri.as_bytes(), b"{}", b"1700000000000"]);
            base64::engine::general_purpose::STANDARD.encode(mac)
        };
        let check = |path: &str, signature: &str| {
            let h = [
                (":method", "POST"),
                (":path", path),
                ("x-hubspot-request-timestamp", "1700000000000"),
                ("x-hubspot-signature-v3", signature),
            ];
            judge(
                Preset::HubSpot,
                secret,
                Some("https://example.com"),
                &h,
                "{}",
            )
        };
        let decoded = sign("https://example.com/h?a=b:c&d=%26");
        assert!(check("/h?a=b%3Ac&d=%26", &decoded).is_ok());
        assert!(check("/h?a=b:c&d=%26", &decoded).is_ok());
        assert_eq!(
            check("/h?a=b:c&d=&", &decoded),
            Err(Reason::SignatureMismatch)
        );
    }

    #[test]
    fn zoom_url_validation_is_answered_with_the_hmac_of_its_token() {
        // §4 row 16b.
        let key = test_key("k", "zoom_secret_token");
        let h = headers(&[]);
        let head = RequestHead::new(&h);
        let body = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1700000000000,"event":"endpoint.url_validation"}"#;
        let reply = zoom_url_validation(&head, body, Some(&key))
            .unwrap()
            .unwrap();
        let reply: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(
            reply,
            json!({"plainToken": "qgg8vlvZRS6UYooatFL8Aw",
            "encryptedToken": "bd48235863f4a6323ccc4963c594908b7c97f88b4a6a95278f4f093690b12726"})
        );
        let other = br#"{"event":"meeting.started","payload":{"plainToken":"x"}}"#;
        assert_eq!(zoom_url_validation(&head, other, Some(&key)).unwrap(), None);
        let empty = br#"{"event":"endpoint.url_validation","payload":{}}"#;
        assert_eq!(
            zoom_url_validation(&head, empty, Some(&key))
                .unwrap_err()
                .reason,
            Reason::MalformedBody
        );
    }

    #[test]
    fn twitch_answers_a_challenge_only_when_header_and_body_agree() {
        let verify = |kind: &[(&str, &str)], body: &[u8]| {
            let h = headers(kind);
            twitch_callback_verification(&RequestHead::new(&h), body, None)
        };
        let kind = [(
            "twitch-eventsub-message-type",
            "webhook_callback_verification",
        )];
        let body = br#"{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{}}"#;
        let reply = verify(&kind, body).unwrap().unwrap();
        assert_eq!(
            (reply.content_type, reply.body.as_slice()),
            ("text/plain", &b"pogchamp-kappa-360noscope-vohiyo"[..])
        );
        assert_eq!(
            verify(&[("twitch-eventsub-message-type", "notification")], body).unwrap(),
            None
        );
        assert_eq!(
            verify(&kind, br#"{"subscription":{}}"#).unwrap_err().reason,
            Reason::MalformedBody
        );
        let twice = [kind[0], kind[0]];
        assert_eq!(
            verify(&twice, body).unwrap_err().reason,
            Reason::DuplicateHeader
        );
    }
}
