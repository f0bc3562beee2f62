//! Every scheme a route can name, each built by its own provider module: the parser looks
//! the route's `scheme` up here, decodes the route's keys as the entry says, refuses the
//! scheme-specific fields the entry does not read (the error lists, from this table, the
//! schemes that do), and hands the rest to the entry's `compile`.
//!
//! Adding a provider: its module exports an [`Entry`], and [`ALL`] gets one line.

use crate::keys::Key;
use crate::providers::vobiz::voice::{Family, V3Construction};
use crate::providers::{
    asymmetric, generic, github, mailgun, meta, presets, shopify, slack, standard_webhooks, stripe,
    twilio, vobiz, Provider,
};
use crate::public_key::{PublicKey, Written};

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
    &mailgun::ENTRY,
    &presets::RAZORPAY,
    &presets::PADDLE,
    &presets::SQUARE,
    &presets::HUBSPOT,
    &presets::LINEAR,
    &presets::ZOOM,
    &presets::PAGERDUTY,
    &presets::INTERCOM,
    &presets::TWITCH,
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

/// One scheme: its name, what of a route it reads and how it builds itself.
pub struct Entry {
    /// The route's `scheme` value.
    pub scheme: &'static str,
    /// The scheme-specific route fields it reads (every scheme reads `keys`).
    pub reads: &'static [Field],
    /// How a secret's text becomes key bytes.
    pub secret: Secret,
    /// How its `public_keys` are written, for the schemes signed with the provider's
    /// private key ([`Field::PublicKeys`]).
    pub public_keys: Option<Written>,
    /// The scheme on the seam, from what the route configured.
    pub compile: fn(Settings) -> Result<Box<dyn Provider>, Problem>,
}

impl Entry {
    /// A scheme of `keys` alone, each secret's text its key.
    pub const fn new(
        scheme: &'static str,
        compile: fn(Settings) -> Result<Box<dyn Provider>, Problem>,
    ) -> Entry {
        Entry {
            scheme,
            reads: &[],
            secret: Secret::Text,
            public_keys: None,
            compile,
        }
    }

    pub const fn reading(self, reads: &'static [Field]) -> Entry {
        Entry { reads, ..self }
    }

    pub const fn secret(self, secret: Secret) -> Entry {
        Entry { secret, ..self }
    }

    pub const fn public_keys(self, written: Written) -> Entry {
        Entry {
            public_keys: Some(written),
            ..self
        }
    }

    pub fn reads(&self, field: Field) -> bool {
        match field {
            Field::PublicKeys => self.public_keys.is_some(),
            _ => self.reads.contains(&field),
        }
    }
}

/// How a configured secret becomes key bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    /// The text itself.
    Text,
    /// `whsec_<base64>`: the decoded bytes (Stripe, in contrast, keys with the whole
    /// string).
    Whsec,
    /// As the route's `generic.key` says.
    Generic,
}

/// A route field only some schemes read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    PublicOrigin,
    ParentKeys,
    PublicKeys,
    Accept,
    V3Construction,
    Generic,
    VerifyToken,
    /// `freshness.require`: only where the time is unsigned, so that a callback may lack it.
    FreshnessRequire,
}

impl Field {
    pub const ALL: [Field; 8] = [
        Field::PublicOrigin,
        Field::ParentKeys,
        Field::PublicKeys,
        Field::Accept,
        Field::V3Construction,
        Field::Generic,
        Field::VerifyToken,
        Field::FreshnessRequire,
    ];

    /// The field's path under the route.
    pub fn name(self) -> &'static str {
        match self {
            Field::PublicOrigin => "public_origin",
            Field::ParentKeys => "parent_keys",
            Field::PublicKeys => "public_keys",
            Field::Accept => "accept",
            Field::V3Construction => "v3_construction",
            Field::Generic => "generic",
            Field::VerifyToken => "verify_token",
            Field::FreshnessRequire => "freshness.require",
        }
    }

    /// The problem with setting it on a scheme that does not read it: the schemes that do,
    /// from [`ALL`], so that no list can fall behind.
    pub fn not_read(self) -> String {
        let readers: Vec<&str> = ALL
            .iter()
            .filter(|entry| entry.reads(self))
            .map(|entry| entry.scheme)
            .collect();
        let or = match readers.split_last() {
            Some((last, [])) => last.to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        match self {
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
            Field::FreshnessRequire => {
                format!("applies only to scheme {or} (a signed time is always required)")
            }
            Field::ParentKeys | Field::Accept | Field::V3Construction => {
                format!("applies only to scheme {or}")
            }
        }
    }
}

/// What a route configured for its scheme, read and checked by the parser: the keys
/// decoded as the entry says, a `public_origin` shaped `scheme://authority`, and only the
/// fields the entry reads (the others are refused before `compile`).
#[derive(Debug, Default)]
pub struct Settings {
    pub keys: Vec<Key>,
    pub parent_keys: Vec<Key>,
    pub public_keys: Vec<PublicKey>,
    pub public_origin: Option<String>,
    pub accept: Option<Vec<Family>>,
    pub v3_construction: Option<V3Construction>,
    pub generic: Option<generic::Raw>,
    /// Meta's subscription-check token, its text.
    pub verify_token: Option<Vec<u8>>,
    /// Whether the route remembers deliveries (voice accepts other families without).
    pub replay: bool,
    pub answer_handshakes: bool,
}

/// A compile error: the field under the route (`public_origin`, `generic.message`) and
/// what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub problem: String,
}

impl Problem {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Problem {
        Problem {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// `public_origin`, for a scheme that cannot do without it.
pub fn required_origin(scheme: &str, origin: Option<String>) -> Result<String, Problem> {
    origin.ok_or_else(|| {
        Problem::new(
            Field::PublicOrigin.name(),
            format!("is required for scheme {scheme}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_names_are_unique() {
        let names = NAMES;
        for (i, name) in names.iter().enumerate() {
            assert!(!names[..i].contains(name), "{name} twice");
        }
    }

    const ED25519: &str = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
    const P256: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAERxw+dYxJBChbun5TEY7Q9SSt6wdX0lvS+Oew1236cUzdUg96yoqLkXrMN/Ud6PDJu+OthYOC5wLcJaEtCfeoWA==";

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
                Field::FreshnessRequire,
                "freshness",
                serde_json::json!({"max_age": "1h", "require": true}),
            ),
        ];
        assert!(values.iter().map(|(field, ..)| *field).eq(Field::ALL));
        for entry in ALL {
            let secret = match entry.secret {
                Secret::Whsec => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                Secret::Text | Secret::Generic => "s",
            };
            for (field, name, value) in &values {
                let mut route = serde_json::json!({
                    "name": "r", "path_prefix": "/r/", "scheme": entry.scheme,
                });
                match entry.public_keys {
                    Some(Written::Ed25519Hex) => {
                        route["public_keys"] = serde_json::json!([{"value": ED25519}])
                    }
                    Some(Written::P256SpkiBase64) => {
                        route["public_keys"] = serde_json::json!([{"value": P256}])
                    }
                    Some(Written::Ed25519Whpk) | None => {
                        route["keys"] = serde_json::json!([{"value": secret}])
                    }
                }
                // What the scheme cannot do without, so that only the field tested is wrong.
                if entry.reads(Field::PublicOrigin) {
                    route["public_origin"] = "https://a.example".into();
                }
                if entry.reads(Field::Generic) {
                    route["generic"] = values[5].2.clone();
                }
                route[*name] = value.clone();
                let document = serde_json::json!({"routes": [route]}).to_string();
                let message = match crate::config::parse(document.as_bytes(), &|_| None) {
                    Ok(_) => String::new(),
                    Err(e) => e.to_string(),
                };
                let refused = format!("routes[0].{}: {}", field.name(), field.not_read());
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

    #[test]
    fn the_lists_in_errors_come_from_the_entries() {
        assert_eq!(
            Field::PublicKeys.not_read(),
            "applies only to scheme standard_webhooks, svix, clerk, resend, discord or sendgrid (the schemes with public-key signatures)"
        );
        assert_eq!(
            Field::ParentKeys.not_read(),
            "applies only to scheme vobiz_voice or plivo"
        );
        assert_eq!(
            Field::VerifyToken.not_read(),
            "applies only to scheme meta (its GET subscription check)"
        );
    }
}
