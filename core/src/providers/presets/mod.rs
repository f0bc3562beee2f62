//! Providers whose HMAC scheme the generic engine expresses: each preset is the `generic`
//! block a user would write (see the README), so one engine verifies them all, plus the
//! endpoint check a few of them send.
//!
//! A preset is one file: its [`Preset`] (name, `generic` block as JSON, whether it signs
//! the URL and so reads `public_origin`, endpoint check), its `ENTRY`, what its signer adds
//! beside the engine's signature and its example event, its reference vector and tests;
//! its module doc says what it signs, its time, its body and the dispatch headers bound.
//! Adding one: its file, its `pub mod` below, its `VECTOR` in the tests' `VECTORS`, its
//! line in the [registry](super::registry). Here: what they share, compiling a description
//! into a [`Generic`] scheme (with the preset's endpoint check) and the signer's glue.

pub mod aftership;
pub mod alchemy;
pub mod autodesk;
pub mod bolt;
pub mod box_com;
pub mod brex;
pub mod buildkite;
pub mod calendly;
pub mod castle;
pub mod chargify;
pub mod circleci;
pub mod clearbit;
pub mod coinbase;
pub mod docusign;
pub mod dropbox;
pub mod frameio;
pub mod go1;
pub mod heroku;
pub mod hubspot;
pub mod intercom;
pub mod jira;
pub mod launch_darkly;
pub mod linear;
pub mod mailchimp;
pub mod microsoft_teams;
pub mod modern_treasury;
pub mod mongodb;
pub mod mux;
pub mod orb;
pub mod paddle;
pub mod pagerduty;
pub mod pinwheel;
pub mod pusher;
pub mod razorpay;
pub mod sentry;
pub mod signal_sciences;
pub mod sonatype;
pub mod square;
pub mod terraform;
pub mod tiktok;
pub mod trendmicro_conformity;
pub mod twitch;
pub mod twitter;
pub mod typeform;
pub mod webex;
pub mod worldline;
pub mod xero;
pub mod zendesk;
pub mod zoom;

use crate::keys::Key;
use crate::providers::entry::{Field, Problem, Secret, Settings};
use crate::providers::generic::{self, Generic};
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{self, Outgoing, Signing};
use crate::providers::Provider;
use crate::verdict::Reason;

/// A provider the generic engine verifies: its scheme's name and its `generic` block.
#[derive(Clone, Copy)]
pub struct Preset {
    pub name: &'static str,
    /// The preset as a `generic` block, JSON.
    pub description: &'static str,
    /// Whether the message signs the URL (and so needs the public origin).
    pub signs_url: bool,
    /// The endpoint check, answered at the edge once the request verified.
    pub handshake: Option<generic::Handshake>,
    /// The statuses the provider insists on for some refusals.
    pub refusal_status: &'static [(Reason, u16)],
    /// How a route's secrets become key bytes: as the description's `key` says (tested).
    pub secret: Secret,
}

/// A preset is written as its name (the tests' messages).
impl std::fmt::Debug for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// The presets whose message signs the URL read the route's `public_origin`.
const SIGNS_URL: &[Field] = &[Field::PublicOrigin];

impl Preset {
    /// The preset `name`, described by `description`: no URL signed, no endpoint check.
    pub const fn new(name: &'static str, description: &'static str) -> Preset {
        Preset {
            name,
            description,
            signs_url: false,
            handshake: None,
            refusal_status: &[],
            secret: Secret::Text,
        }
    }

    /// Its secrets are base64 of the key bytes.
    pub const fn keyed_base64(self) -> Preset {
        Preset {
            secret: Secret::Base64,
            ..self
        }
    }

    /// Its secrets are written only as `secret` says.
    pub const fn keyed(self, secret: Secret) -> Preset {
        Preset { secret, ..self }
    }

    /// Its message signs the URL.
    pub const fn signing_the_url(self) -> Preset {
        Preset {
            signs_url: true,
            ..self
        }
    }

    /// The statuses its provider insists on for some refusals.
    pub const fn refusing(self, refusal_status: &'static [(Reason, u16)]) -> Preset {
        Preset {
            refusal_status,
            ..self
        }
    }

    /// Its endpoint check.
    pub const fn answering(self, handshake: generic::Handshake) -> Preset {
        Preset {
            handshake: Some(handshake),
            ..self
        }
    }

    /// The route fields its entry reads.
    pub const fn reads(&self) -> &'static [Field] {
        if self.signs_url {
            SIGNS_URL
        } else {
            &[]
        }
    }

    /// The preset's scheme for a route; errors are `(field, problem)` as
    /// [`generic::compile`]'s, and only `public_origin` can be wrong.
    pub fn compile(
        &self,
        origin: Option<String>,
        keys: Vec<Key>,
    ) -> Result<Generic, (String, String)> {
        let raw: generic::Raw = serde_json::from_str(self.description).map_err(|e| {
            (
                "scheme".to_string(),
                format!("preset {} is invalid: {e}", self.name),
            )
        })?;
        let mut scheme = generic::compile(raw, self.name, origin, keys)?;
        scheme.handshake = self.handshake;
        scheme.refusal_status = self.refusal_status;
        Ok(scheme)
    }

    /// A secret's key bytes, as the description's `key` decodes it.
    #[cfg(any(test, feature = "sign"))]
    fn key_bytes(&self, secret: &str) -> Result<Vec<u8>, String> {
        let raw: generic::Raw = serde_json::from_str(self.description)
            .map_err(|e| format!("preset {} is invalid: {e}", self.name))?;
        raw.key
            .bytes(secret)
            .ok_or_else(|| format!("the secret is not written as {} keys are", self.name))
    }

    /// The entry's `compile`.
    fn build(&self, settings: Settings) -> Result<Box<dyn Provider>, Problem> {
        let scheme = self.compile(settings.public_origin, settings.keys);
        let mut scheme = scheme.map_err(generic::problem)?;
        scheme.answering(settings.answer_handshakes);
        Ok(Box::new(scheme))
    }

    /// What the provider sends: the unsigned headers an application dispatches on (what
    /// `headers` adds, given the delivery's id), then the generic engine's signature over
    /// the preset's description.
    #[cfg(any(test, feature = "sign"))]
    fn sign(
        &self,
        signing: &Signing,
        out: &mut Outgoing,
        headers: fn(&mut Outgoing, &str),
    ) -> Result<(), String> {
        let secret = signing.secret(self.name)?;
        let origin = self.signs_url.then(|| signing.origin_of(out));
        let scheme = self
            .compile(origin, vec![sign::key(&self.key_bytes(secret)?)?])
            .map_err(|(field, problem)| format!("{field}: {problem}"))?;
        let id = signing.id_or_uuid();
        headers(out, &id);
        scheme.sign(signing, out)
    }
}

/// A JSON event of the random bytes: what the presets whose provider sends any JSON object
/// send by default (their signer adds the time where the body carries it).
#[cfg(any(test, feature = "sign"))]
pub fn event(signing: &Signing) -> Vec<u8> {
    format!(
        r#"{{"id":"{}","type":"event.created","created_at":{},"data":{{"note":"café"}}}}"#,
        signing.uuid(),
        signing.now
    )
    .into_bytes()
}

/// A form event of the random bytes, for the presets whose provider posts forms.
#[cfg(any(test, feature = "sign"))]
pub fn form_event(signing: &Signing) -> Vec<u8> {
    format!(
        "id={}&event=test&payload%5Bnote%5D=caf%C3%A9",
        sign::digits(&signing.random, 9)
    )
    .into_bytes()
}

/// A preset's [`Entry`](crate::providers::entry::Entry): its scheme compiled from its
/// description, reading `public_origin` where it signs the URL; its signer (feature
/// `sign`) adds the unsigned headers `$headers` writes (none if not given) and the engine's
/// signature, and sends `$example` when the caller has no body.
macro_rules! entry {
    ($preset:expr, $example:expr) => {
        entry!($preset, $example, |_, _| {})
    };
    ($preset:expr, $example:expr, $headers:expr) => {
        signs!(
            $crate::providers::entry::Entry::new($preset.name, |settings| {
                $preset.build(settings)
            })
            .reading($preset.reads())
            .secret($preset.secret),
            $crate::providers::sign::Signer {
                sign: |signing, out| $preset.sign(signing, out, $headers),
                example: $example,
            }
        )
    };
}
use entry;

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::keys::test_key;
    use crate::providers::registry;
    use crate::providers::sign::Signer;
    use crate::providers::{Body, Checks};
    use crate::request::{headers, RequestHead};
    use crate::verdict::Reason;

    pub(super) const BODY_B: &str = "{\"id\":\"evt_1\",\"amount\":100,\"note\":\"caf\u{e9}\"}";

    /// A preset's reference vector: its secret, public origin, headers, body and the
    /// signed time.
    #[derive(Clone, Copy)]
    pub(super) struct Vector {
        pub preset: &'static Preset,
        pub secret: &'static str,
        pub origin: Option<&'static str>,
        pub headers: &'static [(&'static str, &'static str)],
        pub body: &'static str,
        pub time: Option<i64>,
        /// Whether the signer signs the vector's headers as they are given, instead of
        /// making its own.
        pub given: bool,
    }

    impl Vector {
        pub const fn new(
            preset: &'static Preset,
            secret: &'static str,
            headers: &'static [(&'static str, &'static str)],
            body: &'static str,
        ) -> Vector {
            Vector {
                preset,
                secret,
                origin: None,
                headers,
                body,
                time: None,
                given: false,
            }
        }

        /// Signed for `origin` (a preset that signs the URL).
        pub const fn from(self, origin: &'static str) -> Vector {
            Vector {
                origin: Some(origin),
                ..self
            }
        }

        /// Signed at `time` (unix seconds).
        pub const fn at(self, time: i64) -> Vector {
            Vector {
                time: Some(time),
                ..self
            }
        }

        /// Its headers signed as they are given.
        pub const fn given(self) -> Vector {
            Vector {
                given: true,
                ..self
            }
        }

        /// What the tests take apart.
        pub fn parts(&self) -> Parts {
            (
                self.preset,
                self.secret,
                self.origin,
                self.headers,
                self.body,
                self.time,
            )
        }
    }

    /// Preset, secret, public origin, headers, body, the signed time.
    type Parts = (
        &'static Preset,
        &'static str,
        Option<&'static str>,
        &'static [(&'static str, &'static str)],
        &'static str,
        Option<i64>,
    );

    // providers.md §4, rows 10, 11, 14, 15, 16, 18, 19, 20, 23: each provider's vector, in
    // the registry's order.
    const VECTORS: [&Vector; 49] = [
        &zendesk::VECTOR,
        &razorpay::VECTOR,
        &paddle::VECTOR,
        &square::VECTOR,
        &hubspot::VECTOR,
        &linear::VECTOR,
        &zoom::VECTOR,
        &pagerduty::VECTOR,
        &intercom::VECTOR,
        &twitch::VECTOR,
        &xero::VECTOR,
        &dropbox::VECTOR,
        &twitter::VECTOR,
        &box_com::VECTOR,
        &docusign::VECTOR,
        &worldline::VECTOR,
        &typeform::VECTOR,
        &sentry::VECTOR,
        &buildkite::VECTOR,
        &circleci::VECTOR,
        &mux::VECTOR,
        &frameio::VECTOR,
        &heroku::VECTOR,
        &launch_darkly::VECTOR,
        &terraform::VECTOR,
        &webex::VECTOR,
        &tiktok::VECTOR,
        &mailchimp::VECTOR,
        &modern_treasury::VECTOR,
        &mongodb::VECTOR,
        &orb::VECTOR,
        &pinwheel::VECTOR,
        &pusher::VECTOR,
        &sonatype::VECTOR,
        &alchemy::VECTOR,
        &autodesk::VECTOR,
        &aftership::VECTOR,
        &castle::VECTOR,
        &chargify::VECTOR,
        &clearbit::VECTOR,
        &jira::VECTOR,
        &microsoft_teams::VECTOR,
        &signal_sciences::VECTOR,
        &trendmicro_conformity::VECTOR,
        &go1::VECTOR,
        &bolt::VECTOR,
        &brex::VECTOR,
        &coinbase::VECTOR,
        &calendly::VECTOR,
    ];

    /// What the preset's scheme says of a request: the signed time, or why it refused.
    pub(super) fn judge(
        preset: &Preset,
        secret: &str,
        origin: Option<&str>,
        h: &[(&str, &str)],
        body: &str,
    ) -> Result<Option<i64>, Reason> {
        let scheme = preset
            .compile(origin.map(str::to_string), vec![key(preset, secret)])
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

    /// The preset's key of `secret`, decoded as its description says (a wrong secret that
    /// cannot be decoded: its text).
    fn key(preset: &Preset, secret: &str) -> crate::keys::Key {
        let bytes = preset
            .key_bytes(secret)
            .unwrap_or_else(|_| secret.as_bytes().to_vec());
        crate::keys::Key::new("k", &bytes).unwrap()
    }

    /// A route of each preset decodes its secrets as the preset's description says.
    #[test]
    fn a_route_decodes_its_secrets_as_its_preset_describes() {
        let secret = "c2VjcmV0LWtleQ==";
        for preset in VECTORS.map(|vector| vector.preset) {
            let mut route = serde_json::json!({"name": "r", "path_prefix": "/r/",
                "scheme": preset.name, "keys": [{"name": "k", "value": secret}]});
            if preset.signs_url {
                route["public_origin"] = "https://example.com".into();
            }
            let document = serde_json::json!({"routes": [route]}).to_string();
            let policy = crate::config::parse(document.as_bytes(), &|_| None).unwrap();
            let scheme = policy.routes[0].provider_as::<Generic>().unwrap();
            assert!(
                scheme.keys[0].same_secret(&key(preset, secret)),
                "{preset:?}"
            );
        }
    }

    /// The preset's signer, from its entry in the registry.
    fn signer(preset: &Preset) -> Signer {
        registry::find(preset.name)
            .and_then(|entry| entry.sign)
            .unwrap()
    }

    #[test]
    fn every_preset_compiles() {
        for preset in VECTORS.map(|vector| vector.preset) {
            let origin = preset.signs_url.then(|| "https://example.com".to_string());
            let scheme = preset.compile(origin, vec![test_key("k", "s")]);
            assert!(scheme.is_ok(), "{preset:?}: {scheme:?}");
        }
        let needs_origin = square::PRESET.compile(None, vec![]).unwrap_err();
        assert_eq!(needs_origin.0, "public_origin");
    }

    #[test]
    fn a_preset_reads_public_origin_exactly_when_it_signs_the_url() {
        for preset in VECTORS.map(|vector| vector.preset) {
            let entry = registry::find(preset.name).unwrap();
            let signs_url = preset.compile(None, vec![test_key("k", "s")]).is_err();
            assert_eq!(entry.reads(Field::PublicOrigin), signs_url, "{preset:?}");
        }
    }

    #[test]
    fn the_reference_vectors_verify_and_one_changed_byte_does_not() {
        for (preset, secret, origin, h, body, time) in VECTORS.map(Vector::parts) {
            assert_eq!(
                judge(preset, secret, origin, h, body),
                Ok(time),
                "{preset:?}"
            );
            // Its last letter or digit changed: the body stays JSON of its kind.
            let at = body.rfind(|c: char| c.is_ascii_alphanumeric()).unwrap();
            let other = match body.as_bytes()[at] {
                b'9' => '0',
                b'z' | b'Z' => 'a',
                c => char::from(c + 1),
            };
            let changed = format!("{}{other}{}", &body[..at], &body[at + 1..]);
            assert_eq!(
                judge(preset, secret, origin, h, &changed),
                Err(Reason::SignatureMismatch),
                "{preset:?}"
            );
            assert_eq!(
                judge(preset, "other", origin, h, body),
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
        for vector in VECTORS {
            let (preset, secret, origin, h, body, time) = vector.parts();
            let signer = signer(preset);
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
            let description: Value = serde_json::from_str(preset.description).unwrap();
            let signature = description["signature"]["header"]
                .as_str()
                .unwrap()
                .to_ascii_lowercase();
            for (name, value) in h {
                if !name.starts_with(':') && *name != signature && vector.given {
                    out.push(name, *value, Role::Plain);
                }
            }
            let signing = Signing::new(KeyMaterial::Secret(secret), time.unwrap_or(0));
            (signer.sign)(&signing, &mut out).unwrap();
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
            // The presets that list signatures (Paddle, PagerDuty): their vectors list a
            // wrong one before the right one.
            let listed = description["signature"].get("list").is_some();
            assert!(expected.ends_with(&got[at..]), "{preset:?}: {got}");
            assert!(listed || expected == got, "{preset:?}: {got}");
            assert!(expected.starts_with(&got[..at]), "{preset:?}: {got}");

            let scheme = preset
                .compile(origin.map(str::to_string), vec![key(preset, secret)])
                .unwrap();
            let now = 1_700_000_000;
            let mut example = Outgoing::new(
                "POST",
                &format!("{origin_or}/hook?x=1"),
                (signer.example)(&Signing::new(KeyMaterial::Secret(secret), now)),
            );
            (signer.sign)(
                &Signing::new(KeyMaterial::Secret(secret), now),
                &mut example,
            )
            .unwrap();
            let verified = Ok((format!("{}/k", preset.name), time.map(|_| now)));
            assert_eq!(judge(&scheme, &example), verified, "{preset:?}");
            assert_eq!(
                judge(&scheme, &changed_body(&example)),
                Err(Reason::SignatureMismatch),
                "{preset:?}"
            );
            let media = scheme.media();
            if media.json.is_some() {
                let parsed: Value = serde_json::from_slice(&example.body).unwrap();
                assert_eq!(
                    parsed.is_array(),
                    media.json == Some(crate::providers::Json::Array)
                );
            }
        }
    }
}
