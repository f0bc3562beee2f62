//! Every scheme a route can name, each built by its own provider module: the parser looks
//! the route's `scheme` up here, decodes the route's keys as the entry says, refuses the
//! scheme-specific fields the entry does not read (the error lists, from this table, the
//! schemes that do), and hands the rest to the entry's `compile`.
//!
//! Adding a provider: its module exports an [`Entry`], and [`ALL`] gets one line.

use crate::providers::entry::{Entry, Field};
use crate::providers::{
    asymmetric, bitbucket, contentful, generic, github, google_pubsub, hygraph, mailgun, meta,
    paypal, presets, shopify, slack, sns, standard_webhooks, stripe, token, twilio, vobiz,
};

/// Every scheme, in the order error messages list them.
pub const ALL: &[&Entry] = &[
    &vobiz::VOICE,
    &vobiz::PLIVO,
    &vobiz::WHATSAPP,
    &vobiz::KYC,
    &standard_webhooks::STANDARD_ENTRY,
    &standard_webhooks::SVIX_ENTRY,
    &standard_webhooks::CLERK_ENTRY,
    &standard_webhooks::RESEND_ENTRY,
    &stripe::ENTRY,
    &github::ENTRY,
    &slack::ENTRY,
    &twilio::ENTRY,
    &shopify::ENTRY,
    &meta::ENTRY,
    &generic::ENTRY,
    &asymmetric::DISCORD_ENTRY,
    &asymmetric::SENDGRID_ENTRY,
    &asymmetric::TELNYX_ENTRY,
    &mailgun::ENTRY,
    &sns::ENTRY,
    &paypal::ENTRY,
    &google_pubsub::ENTRY,
    &contentful::ENTRY,
    &hygraph::ENTRY,
    &presets::razorpay::ENTRY,
    &presets::paddle::ENTRY,
    &presets::square::ENTRY,
    &presets::hubspot::ENTRY,
    &presets::linear::ENTRY,
    &presets::zoom::ENTRY,
    &presets::pagerduty::ENTRY,
    &presets::intercom::ENTRY,
    &presets::twitch::ENTRY,
    &presets::xero::ENTRY,
    &presets::dropbox::ENTRY,
    &presets::twitter::ENTRY,
    &presets::box_com::ENTRY,
    &presets::docusign::ENTRY,
    &presets::worldline::ENTRY,
    &presets::typeform::ENTRY,
    &presets::zendesk::ENTRY,
    &presets::sentry::ENTRY,
    &presets::buildkite::ENTRY,
    &presets::circleci::ENTRY,
    &presets::mux::ENTRY,
    &presets::frameio::ENTRY,
    &presets::heroku::ENTRY,
    &presets::launch_darkly::ENTRY,
    &presets::terraform::ENTRY,
    &presets::webex::ENTRY,
    &presets::tiktok::ENTRY,
    &presets::mailchimp::ENTRY,
    &presets::modern_treasury::ENTRY,
    &presets::mongodb::ENTRY,
    &presets::orb::ENTRY,
    &presets::pinwheel::ENTRY,
    &presets::pusher::ENTRY,
    &presets::sonatype::ENTRY,
    &presets::alchemy::ENTRY,
    &presets::autodesk::ENTRY,
    &presets::aftership::ENTRY,
    &presets::castle::ENTRY,
    &presets::chargify::ENTRY,
    &presets::clearbit::ENTRY,
    &presets::jira::ENTRY,
    &presets::microsoft_teams::ENTRY,
    &presets::signal_sciences::ENTRY,
    &presets::trendmicro_conformity::ENTRY,
    &presets::go1::ENTRY,
    &presets::bolt::ENTRY,
    &presets::brex::ENTRY,
    &presets::coinbase::ENTRY,
    &presets::calendly::ENTRY,
    &bitbucket::ENTRY,
    &token::STATIC_ENTRY,
    &token::BASIC_ENTRY,
    &token::gitlab::ENTRY,
    &token::telegram::ENTRY,
    &token::okta::ENTRY,
];

/// The entry of the scheme named `scheme`.
pub fn find(scheme: &str) -> Option<&'static Entry> {
    ALL.iter().copied().find(|entry| entry.scheme == scheme)
}

/// Every scheme name, for the error that names an unknown one.
pub const NAMES: [&str; ALL.len()] = {
    let mut names = [""; ALL.len()];
    let mut i = 0;
    while i < ALL.len() {
        names[i] = ALL[i].scheme;
        i += 1;
    }
    names
};

/// The problem with setting `field` on a scheme that does not read it: the schemes that
/// do, from [`ALL`], so that no list can fall behind.
pub fn not_read(field: Field) -> String {
    let readers: Vec<&str> = ALL
        .iter()
        .filter(|entry| entry.reads(field))
        .map(|entry| entry.scheme)
        .collect();
    let or = match readers.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    match field {
        Field::PublicOrigin => format!(
            "applies only to the schemes that sign the URL ({})",
            readers.join(", ")
        ),
        Field::PublicKeys => {
            format!("applies only to scheme {or} (the schemes with public-key signatures)")
        }
        Field::Generic => {
            format!("applies only to scheme {or} (its description of the signature)")
        }
        Field::VerifyToken => {
            format!("applies only to scheme {or} (its GET subscription check)")
        }
        Field::Token => {
            format!("applies only to scheme {or} (how its static credential is presented)")
        }
        Field::FreshnessRequire => {
            format!("applies only to scheme {or} (a signed time is always required)")
        }
        Field::Certificate => {
            format!("applies only to scheme {or} (where its signing certificates are fetched)")
        }
        Field::Jwt => {
            format!("applies only to scheme {or} (what the token jwt_authn verified must say)")
        }
        Field::ParentKeys | Field::Accept | Field::V3Construction => {
            format!("applies only to scheme {or}")
        }
    }
}

/// A route's key field, for [`example_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyField {
    /// `keys` and `parent_keys`.
    Keys,
    PublicKeys,
    VerifyToken,
}

/// The Ed25519 public key of the seed 0, 1, ..., 31, in hex (Discord's writing).
pub const EXAMPLE_ED25519: &str =
    "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
/// The same key, in base64 (Telnyx's writing).
pub const EXAMPLE_ED25519_BASE64: &str = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";
/// A P-256 public key, base64 of its SubjectPublicKeyInfo (SendGrid's writing).
pub const EXAMPLE_P256: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAERxw+dYxJBChbun5TEY7Q9SSt6wdX0lvS+Oew1236cUzdUg96yoqLkXrMN/Ud6PDJu+OthYOC5wLcJaEtCfeoWA==";

/// The `n`th key written as `entry`'s routes take it in `field`, for checking a
/// configuration whose secrets are not at hand (`callback-guard check`): the form is right,
/// the key is no one's, and no two `n` give one key (the parser refuses a secret shared
/// where a route answers with MACs under it).
pub fn example_key(entry: &Entry, field: KeyField, n: usize) -> String {
    use crate::providers::entry::Secret;
    use crate::public_key::Written;
    use base64::Engine;
    let base64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    match (field, entry.public_keys) {
        (KeyField::VerifyToken, _) => format!("example-verify-token-{n}"),
        (KeyField::PublicKeys, Some(Written::Ed25519Hex)) => EXAMPLE_ED25519.to_string(),
        (KeyField::PublicKeys, Some(Written::Ed25519Base64)) => EXAMPLE_ED25519_BASE64.to_string(),
        (KeyField::PublicKeys, Some(Written::P256SpkiBase64)) => EXAMPLE_P256.to_string(),
        (KeyField::PublicKeys, Some(Written::Ed25519Whpk) | None) => {
            format!("whpk_{EXAMPLE_ED25519_BASE64}")
        }
        (KeyField::Keys, _) => match entry.secret {
            Secret::Whsec => format!(
                "whsec_{}",
                base64(format!("example-secret-{n:016}").as_bytes())
            ),
            Secret::Credentials => format!("example:password-{n}"),
            Secret::Base64 => base64(format!("example-key-{n}").as_bytes()),
            Secret::Identifier if entry.reads(Field::Jwt) => {
                format!("push{n}@example.iam.gserviceaccount.com")
            }
            Secret::Identifier => format!("EXAMPLE{n:010}"),
            Secret::Written { example, .. } => example(n),
            // SNS's keys are its topics.
            Secret::Text if entry.reads(Field::Certificate) => {
                format!("arn:aws:sns:us-east-1:123456789012:example-{n}")
            }
            // Text, hex and base64 alike, as a generic block's `key` may write it.
            Secret::Text | Secret::Generic => format!("{n:08x}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::public_key::Written;

    #[test]
    fn scheme_names_are_unique() {
        let names = NAMES;
        for (i, name) in names.iter().enumerate() {
            assert!(!names[..i].contains(name), "{name} twice");
        }
    }

    use super::{
        EXAMPLE_ED25519 as ED25519, EXAMPLE_ED25519_BASE64 as ED25519_BASE64, EXAMPLE_P256 as P256,
    };

    /// A scheme-specific field on a scheme that does not read it is refused, naming the
    /// schemes that do; on one that reads it, it is never refused that way.
    #[test]
    fn every_scheme_refuses_exactly_the_fields_it_does_not_read() {
        let generic = serde_json::json!({"signature": {"header": "x-sig"}, "encoding": "hex", "message": ["url", "body"]});
        let values = [
            (
                Field::PublicOrigin,
                "public_origin",
                serde_json::json!("https://a.example"),
            ),
            (
                Field::ParentKeys,
                "parent_keys",
                serde_json::json!([{"value": "p"}]),
            ),
            (
                Field::PublicKeys,
                "public_keys",
                serde_json::json!([{"value": "k"}]),
            ),
            (Field::Accept, "accept", serde_json::json!(["v3"])),
            (
                Field::V3Construction,
                "v3_construction",
                serde_json::json!("sdk"),
            ),
            (Field::Generic, "generic", generic),
            (
                Field::VerifyToken,
                "verify_token",
                serde_json::json!({"value": "t"}),
            ),
            (
                Field::Token,
                "token",
                serde_json::json!({"header": "X-Token"}),
            ),
            (
                Field::FreshnessRequire,
                "freshness",
                serde_json::json!({"max_age": "1h", "require": true}),
            ),
            (
                Field::Certificate,
                "certificate",
                serde_json::json!({"cluster": "c"}),
            ),
            (
                Field::Jwt,
                "jwt",
                serde_json::json!({"audience": "https://a.example/r/"}),
            ),
        ];
        assert!(values.iter().map(|(field, ..)| *field).eq(Field::ALL));
        for entry in ALL {
            let mut base = serde_json::json!({
                "name": "r", "path_prefix": "/r/", "scheme": entry.scheme,
            });
            match entry.public_keys {
                Some(Written::Ed25519Whpk) | None => {
                    base["keys"] =
                        serde_json::json!([{"value": example_key(entry, KeyField::Keys, 0)}])
                }
                Some(_) => {
                    let key = example_key(entry, KeyField::PublicKeys, 0);
                    base["public_keys"] = serde_json::json!([{ "value": key }])
                }
            }
            // What the scheme cannot do without, so that only the field tested is wrong.
            if entry.reads(Field::PublicOrigin) {
                base["public_origin"] = "https://a.example".into();
            }
            if entry.reads(Field::Generic) {
                base["generic"] = values[5].2.clone();
            }
            if entry.scheme == "static_token" {
                base["token"] = values[7].2.clone();
            }
            if entry.reads(Field::Certificate) {
                base["certificate"] = values[9].2.clone();
            }
            if entry.reads(Field::Jwt) {
                base["jwt"] = values[10].2.clone();
            }
            // With its example keys, the route is valid as it is.
            let document = serde_json::json!({"routes": [base]}).to_string();
            if let Err(e) = crate::config::parse(document.as_bytes(), &|_| None) {
                panic!("{} with its example keys: {e}", entry.scheme);
            }
            for (field, name, value) in &values {
                let mut route = base.clone();
                route[*name] = value.clone();
                let document = serde_json::json!({"routes": [route]}).to_string();
                let message = match crate::config::parse(document.as_bytes(), &|_| None) {
                    Ok(_) => String::new(),
                    Err(e) => e.to_string(),
                };
                let refused = format!("routes[0].{}: {}", field.name(), not_read(*field));
                let no_time = message.ends_with("it signs no time");
                assert_eq!(
                    message.starts_with(&refused) || (no_time && *field == Field::FreshnessRequire),
                    !entry.reads(*field),
                    "{} with {name}: {message}",
                    entry.scheme
                );
            }
        }
    }

    struct Tls;

    impl crate::guard::Downstream for Tls {
        fn tls(&self) -> bool {
            true
        }

        fn peer(&self) -> Option<std::net::IpAddr> {
            None
        }
    }

    /// Every scheme has a signer, and what it signs a route of that scheme (configured as
    /// a route would be, sent to another address than the public origin) delivers once:
    /// the same request again is not delivered as new (but for Twilio, which repeats
    /// itself), and a copy with another body is refused.
    #[test]
    fn every_scheme_signs_what_its_route_delivers_once() {
        use crate::guard::{self, Step};
        use crate::providers::sign::testing::changed_body;
        use crate::providers::sign::{KeyMaterial, Outgoing, Signing};
        use crate::request::RequestHead;
        use crate::testing::MemoryStore;
        const NOW: i64 = 1_774_432_800;
        let seed = crate::providers::hex(&(0..32).collect::<Vec<u8>>());
        let scalar = "1234567890abcdef".repeat(4);
        // A generic scheme that signs a time, the URL and the body.
        let generic = serde_json::json!({"signature": {"header": "X-Sig", "list": {"separator": ",", "entry": "key=value", "label": "v1"}},
            "encoding": "base64", "message": [{"item": "t"}, {"literal": "."}, "url", "body"],
            "timestamp": {"item": "t", "format": "seconds"}, "body": "json_object"});
        let block = generic.to_string();
        // Ids and example bodies made from random bytes of every kind.
        let randoms = [
            [0; 32],
            [0x5a; 32],
            [0xff; 32],
            *b"0123456789abcdefghijklmnopqrstuv",
        ];
        for (entry, random) in ALL
            .iter()
            .flat_map(|entry| randoms.map(|random| (entry, random)))
        {
            let signer = entry
                .sign
                .unwrap_or_else(|| panic!("{} has no signer", entry.scheme));
            let mut route =
                serde_json::json!({"name": "r", "path_prefix": "/r/", "scheme": entry.scheme});
            // A key of the scheme's form, as a route would hold it.
            let secret = example_key(entry, KeyField::Keys, 7);
            let secret = secret.as_str();
            let key = match entry.public_keys {
                Some(Written::Ed25519Hex) => {
                    route["public_keys"] = serde_json::json!([{"value": ED25519}]);
                    KeyMaterial::Private(&seed)
                }
                Some(Written::Ed25519Base64) => {
                    route["public_keys"] = serde_json::json!([{"value": ED25519_BASE64}]);
                    KeyMaterial::Private(&seed)
                }
                Some(Written::P256SpkiBase64) => {
                    route["public_keys"] = serde_json::json!([{"value": P256}]);
                    KeyMaterial::Private(&scalar)
                }
                Some(Written::Ed25519Whpk) | None => {
                    route["keys"] = serde_json::json!([{"value": secret}]);
                    KeyMaterial::Secret(secret)
                }
            };
            let mut signing = Signing::new(key, NOW);
            signing.random = random;
            if entry.reads(Field::PublicOrigin) {
                route["public_origin"] = "https://a.example".into();
                signing.origin = Some("https://a.example");
            }
            if entry.reads(Field::Generic) {
                route["generic"] = generic.clone();
                signing.generic = Some(&block);
            }
            // A static credential with its delivery's id in a header, so that a changed body
            // is the same delivery tampered with.
            let token = match entry.scheme {
                "static_token" => serde_json::json!({"header": "X-Token",
                    "delivery_id": ["X-Delivery"], "dispatch_headers": ["X-Event"], "body": "json_object"}),
                _ => serde_json::json!({"delivery_id": ["X-Delivery"]}),
            }
            .to_string();
            if entry.reads(Field::Token) {
                route["token"] = serde_json::from_str(&token).unwrap();
                signing.token = Some(&token);
            }
            if entry.reads(Field::Certificate) {
                route["certificate"] = serde_json::json!({"cluster": "certificates"});
            }
            // Pub/Sub's audience: by default the push endpoint's URL.
            if entry.reads(Field::Jwt) {
                route["jwt"] = serde_json::json!({"audience": "https://127.0.0.1:9/r/hook"});
            }
            let document = serde_json::json!({"routes": [route]}).to_string();
            let policy = crate::config::parse(document.as_bytes(), &|_| None)
                .unwrap_or_else(|e| panic!("{}: {e}", entry.scheme));
            let mut out = Outgoing::new(
                "POST",
                "https://127.0.0.1:9/r/hook?x=1",
                (signer.example)(&signing),
            );
            (signer.sign)(&signing, &mut out).unwrap_or_else(|e| panic!("{}: {e}", entry.scheme));
            let store = MemoryStore::new();
            let send = |out: &Outgoing| {
                let head = out.head();
                let head = RequestHead::new(&head);
                // What jwt_authn would have verified of a bearer token.
                let decoded = google_pubsub::testing::Decoded::of(&head, "payload");
                let head = head.attested(&decoded);
                let step = match guard::on_headers(&policy, &head, &Tls) {
                    Step::NeedBody(route) => guard::on_body(
                        route,
                        &head,
                        &out.body,
                        crate::timestamp::Stamp::secs(NOW),
                        &store,
                        7,
                    ),
                    step => step,
                };
                // The certificate the demo's server serves.
                let kept;
                let step = match step {
                    Step::Fetch(route, fetch) => {
                        let certificate = match entry.scheme {
                            paypal::SCHEME => paypal::DEMO_CERTIFICATE,
                            _ => sns::DEMO_CERTIFICATE,
                        }
                        .as_bytes();
                        let now = crate::timestamp::Stamp::secs(NOW);
                        kept = guard::keep_fetched(&fetch, Some(200), certificate, now, &store)
                            .unwrap();
                        let prior = Some(crate::providers::Prior::Fetched(&kept));
                        guard::on_body_verified(route, &head, &out.body, prior, now, &store, 7)
                    }
                    step => step,
                };
                match step {
                    Step::Forward(accepted) => {
                        if let (Some(reserved), Some(replay)) =
                            (&accepted.reserved, &accepted.route.replay)
                        {
                            replay
                                .cache
                                .settle(
                                    &store,
                                    &reserved.id,
                                    &reserved.fingerprint,
                                    crate::replay::Outcome::Delivered,
                                    NOW as u32,
                                )
                                .unwrap();
                        }
                        Ok(accepted.repeat)
                    }
                    Step::Reject(_, rejection) => Err(rejection.reason),
                    other => panic!("{}: {other:?}", entry.scheme),
                }
            };
            let scheme = entry.scheme;
            assert_eq!(
                send(&out),
                Ok(false),
                "{scheme}: {}",
                String::from_utf8_lossy(&out.body)
            );
            let again = send(&out);
            if scheme == "twilio" {
                assert_eq!(again, Ok(true), "{scheme}");
            } else {
                assert_eq!(
                    again,
                    Err(crate::verdict::Reason::AlreadyDelivered),
                    "{scheme}"
                );
            }
            assert!(send(&changed_body(&out)).is_err(), "{scheme}");
        }
    }

    #[test]
    fn the_lists_in_errors_come_from_the_entries() {
        assert_eq!(
            not_read(Field::PublicKeys),
            "applies only to scheme standard_webhooks, svix, clerk, resend, discord, sendgrid or telnyx (the schemes with public-key signatures)"
        );
        assert_eq!(
            not_read(Field::ParentKeys),
            "applies only to scheme vobiz_voice or plivo"
        );
        assert_eq!(
            not_read(Field::VerifyToken),
            "applies only to scheme meta (its GET subscription check)"
        );
    }
}
