//! What a provider module exports so that a route can name its scheme: an [`Entry`] (its
//! name, the route fields it reads, how its keys are decoded, how it builds itself) and
//! the [`Settings`] the parser hands its `compile`. The list of entries is
//! [`registry`](super::registry); nothing here knows any provider.

use crate::keys::Key;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::Signer;
use crate::providers::vobiz::voice::{Family, V3Construction};
use crate::providers::{generic, token, Provider};
use crate::public_key::{PublicKey, Written};

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
    /// What the provider sends, signed by the code next to its verifier: for the command
    /// line and the tests only (feature `sign`), so that the filter's module links no
    /// signer.
    #[cfg(any(test, feature = "sign"))]
    pub sign: Option<Signer>,
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
            #[cfg(any(test, feature = "sign"))]
            sign: None,
        }
    }

    /// The scheme's signer (feature `sign`).
    #[cfg(any(test, feature = "sign"))]
    pub const fn signs(self, signer: Signer) -> Entry {
        Entry {
            sign: Some(signer),
            ..self
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
#[derive(Debug, Clone, Copy)]
pub enum Secret {
    /// The text itself.
    Text,
    /// `whsec_<base64>`: the decoded bytes (Stripe, in contrast, keys with the whole
    /// string).
    Whsec,
    /// As the route's `generic.key` says.
    Generic,
    /// `user:password`, HTTP Basic credentials (the text itself).
    Credentials,
    /// Standard base64 of the key bytes (Microsoft Teams' security token, Brex's secrets).
    Base64,
    /// Not a secret but a name the provider signs (PayPal's webhook id): the text itself,
    /// kept ([`Key::identifier`]).
    Identifier,
    /// The text itself, in the only form the provider issues (`check`; `form` names it in
    /// the error): Contentful's 64 characters. `example` is the `n`th key of that form.
    Written {
        check: fn(&str) -> bool,
        form: &'static str,
        example: fn(usize) -> String,
    },
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
    /// How a static credential is presented (`static_token`, `basic_auth`).
    Token,
    /// `freshness.require`: only where the time is unsigned, so that a callback may lack it.
    FreshnessRequire,
    /// Where signing certificates are fetched from (`sns`, `paypal`).
    Certificate,
    /// The token `jwt_authn` verified, and what it must say (`google_pubsub`).
    Jwt,
}

impl Field {
    pub const ALL: [Field; 11] = [
        Field::PublicOrigin,
        Field::ParentKeys,
        Field::PublicKeys,
        Field::Accept,
        Field::V3Construction,
        Field::Generic,
        Field::VerifyToken,
        Field::Token,
        Field::FreshnessRequire,
        Field::Certificate,
        Field::Jwt,
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
            Field::Token => "token",
            Field::FreshnessRequire => "freshness.require",
            Field::Certificate => "certificate",
            Field::Jwt => "jwt",
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
    /// A static credential's `token` block.
    pub token: Option<token::Raw>,
    /// Where signing certificates come from.
    pub certificate: Option<crate::remote_key::Raw>,
    /// What the token `jwt_authn` verified must say.
    pub jwt: Option<crate::providers::google_pubsub::Raw>,
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

/// Refuses a route of `scheme` without replay memory where the memory is what binds what
/// the scheme's credential leaves open (`why`: the body, unsigned or signed only weakly).
pub fn remembering(scheme: &str, replay: bool, why: &str) -> Result<(), Problem> {
    if replay {
        return Ok(());
    }
    Err(Problem::new(
        "replay.enabled",
        format!("must stay true for scheme {scheme}: {why}"),
    ))
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
