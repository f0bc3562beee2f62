//! Google Cloud Pub/Sub push: an OIDC token (RS256 under Google's rotating keys) in
//! `Authorization`, which **Envoy's own `jwt_authn` filter verifies** before this one (it
//! fetches and caches Google's JWKS); this scheme then reads the payload `jwt_authn` left
//! in the request's dynamic metadata, which no client can set, and checks what Google says
//! to check: the issuer, the audience, the service account (`email`, `email_verified`)
//! and the token's times.
//!
//! | reads | identity | time | body | the fingerprint also binds |
//! | --- | --- | --- | --- | --- |
//! | `filter_metadata["envoy.filters.http.jwt_authn"][<jwt.metadata_key>]`: `iss` (`https://accounts.google.com` or `accounts.google.com`), `aud` (`jwt.audience`, exactly), `email` (a key), `email_verified` (true), `iat`, `exp` (`iat` + at most one hour) | the token's `iss`, `aud`, `email`, `iat`, `exp` and the body's `subscription` and `message.messageId` (digits) | `iat`, an hour and a minute by default (Google's tokens live an hour and are reused for many pushes) | a wrapped push message (a JSON object) | method, path, query, content type **and the body** |
//!
//! The route's keys are the service accounts the subscription pushes as (not secrets:
//! names). **The token does not cover the body**: a token is reused for an hour of pushes,
//! so whoever captures one can send any body under it until it expires. What the filter
//! promises is that the request carries a token Google issued to this account for this
//! audience, that it is fresh, and that each body is delivered once under it; not that
//! the body is one Google sent (and such a holder can take likely next message ids first
//! under that token, so that the genuine pushes with them wait for Google's next token).
//! Pub/Sub retries a failed push with the same body (under the same token within its
//! hour): a retry of a delivery the application did not take goes through, as any
//! provider's retry does; a second body under a message id the token delivered already is
//! `replay_tampered`.

#[cfg(any(test, feature = "sign"))]
use base64::Engine;
use serde::Deserialize;

use crate::keys::Key;
use crate::providers::entry::{remembering, Entry, Field, Problem, Secret, Settings};
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{Covered, KeyMaterial, Outgoing, Role, Signer, Signing};
use crate::providers::{
    key_names, malformed, AtHeaders, Body, Checks, Media, Prior, Provider, Signed, Time, Verified,
};
use crate::request::RequestHead;
use crate::timestamp::{Edges, Freshness, Stamp};
use crate::verdict::{Reason, Rejection};

pub const SCHEME: &str = "google_pubsub";

/// Where `jwt_authn` leaves what it verified.
pub const NAMESPACE: &str = "envoy.filters.http.jwt_authn";

/// `payload_in_metadata`'s key when the route says none: Istio's (1.21 and later).
const DEFAULT_METADATA_KEY: &str = "payload";

/// Google's issuer, and the legacy form its tokens may still carry.
const ISSUERS: [&[u8]; 2] = [b"https://accounts.google.com", b"accounts.google.com"];

/// Google's ID tokens expire an hour after they are issued.
const LIFETIME_SECS: i64 = 3600;

/// A token is reused for pushes until it expires: its lifetime, with the minute of clock
/// skew `jwt_authn` allows by default either side.
pub const WINDOW: Freshness = Freshness {
    max_age_secs: 3660,
    max_future_secs: 60,
    required: true,
    edges: Edges::Exact,
};

/// The longest claim accepted (service accounts' addresses are well under it).
const MAX_CLAIM_BYTES: usize = 512;

pub const ENTRY: Entry = signs!(
    Entry::new(SCHEME, compile)
        .reading(&[Field::Jwt])
        .secret(Secret::Identifier),
    SIGNER
);

/// The route's `jwt` block.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    /// The audience the subscription's token is issued for, exactly: by default Pub/Sub's
    /// push endpoint URL.
    audience: Option<String>,
    /// `jwt_authn`'s `payload_in_metadata` for the provider that verifies these tokens.
    metadata_key: Option<String>,
}

#[derive(Debug)]
pub struct PubSub {
    /// The service accounts accepted: each key's identifier is one's address.
    accounts: Vec<Key>,
    audience: String,
    metadata_key: String,
}

fn compile(settings: Settings) -> Result<Box<dyn Provider>, Problem> {
    let raw = settings.jwt.unwrap_or_default();
    let audience = raw
        .audience
        .filter(|audience| !audience.is_empty())
        .ok_or_else(|| {
            Problem::new(
                "jwt.audience",
                "is required for scheme google_pubsub: the audience the subscription's token is issued for (by default its push endpoint URL)",
            )
        })?;
    if audience.len() > MAX_CLAIM_BYTES || !audience.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Problem::new(
            "jwt.audience",
            format!("is not 1 to {MAX_CLAIM_BYTES} visible ASCII characters"),
        ));
    }
    let metadata_key = raw
        .metadata_key
        .unwrap_or_else(|| DEFAULT_METADATA_KEY.to_string());
    if metadata_key.is_empty() || !metadata_key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Problem::new(
            "jwt.metadata_key",
            "is not jwt_authn's payload_in_metadata (visible ASCII)",
        ));
    }
    for (i, key) in settings.keys.iter().enumerate() {
        if !is_account(key.identifier().unwrap_or_default()) {
            return Err(Problem::new(
                format!("keys[{i}]"),
                "is not a service account's address in lowercase (as push@my-project.iam.gserviceaccount.com)",
            ));
        }
    }
    remembering(
        SCHEME,
        settings.replay,
        "the token does not cover the body, and the replay memory is what keeps a captured token from delivering a body twice",
    )?;
    Ok(Box::new(PubSub {
        accounts: settings.keys,
        audience,
        metadata_key,
    }))
}

/// `local@domain`, lowercase, as Google writes service accounts' addresses.
fn is_account(text: &str) -> bool {
    let allowed = |part: &str, extra: &[u8]| {
        !part.is_empty()
            && part.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b"-.".contains(&b)
                    || extra.contains(&b)
            })
    };
    text.len() <= MAX_CLAIM_BYTES
        && text
            .split_once('@')
            .is_some_and(|(local, domain)| allowed(local, b"_+") && allowed(domain, b""))
}

/// The verified token's claims this scheme reads.
struct Token {
    iss: Vec<u8>,
    aud: Vec<u8>,
    email: Vec<u8>,
    iat: i64,
    exp: i64,
}

impl Token {
    /// What the replay memory knows a delivery by: the token's claims, the subscription
    /// and the message's id under them (the fingerprint binds the rest of the body): a retry
    /// is the same delivery, another body under a captured token's message id is tampering,
    /// and one message pushed by two subscriptions of its topic is two deliveries.
    fn identity(&self, body: &[u8]) -> Result<Signed, Rejection> {
        let push = Push::of(body)?;
        let (iat, exp) = (self.iat.to_string(), self.exp.to_string());
        Ok(Signed::over(
            SCHEME,
            &[
                &self.iss,
                &self.aud,
                &self.email,
                iat.as_bytes(),
                exp.as_bytes(),
                push.subscription.as_bytes(),
                push.message_id.as_bytes(),
            ],
            body,
        ))
    }
}

impl Push {
    /// A wrapped push message's `subscription` (`projects/<project>/subscriptions/<name>`)
    /// and `message.messageId` (1 to 64 digits without a leading zero, as Pub/Sub writes
    /// them), read so that no application's parser can read others: no member twice,
    /// `message_id` (Pub/Sub sends both) the same id, and no other member an application
    /// could take for one of them (`MessageId`, `message-id`, Go's `meſſageId`: the names
    /// case-insensitive decoders match).
    fn of(body: &[u8]) -> Result<Push, Rejection> {
        serde_json::from_slice(body).map_err(|e| {
            let what = if e.is_data() {
                e.to_string()
                    .split(" at line ")
                    .next()
                    .unwrap_or_default()
                    .to_string()
            } else {
                "is not JSON".to_string()
            };
            Rejection::new(
                Reason::MalformedBody,
                format!("body is not a wrapped push message: {what}"),
            )
        })
    }
}

/// `projects/<project>/subscriptions/<name>`, as Pub/Sub names a subscription.
fn is_subscription(name: &str) -> bool {
    let mut parts = name.split('/');
    let named = |part: Option<&str>| {
        part.is_some_and(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~%+:".contains(&b))
        })
    };
    name.len() <= MAX_CLAIM_BYTES
        && parts.next() == Some("projects")
        && named(parts.next())
        && parts.next() == Some("subscriptions")
        && named(parts.next())
        && parts.next().is_none()
}

/// A member name as a case-insensitive decoder compares it: folded, without `_` or `-`.
fn folded(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '-'))
        .map(|c| match c {
            '\u{17f}' => 's',
            '\u{212a}' => 'k',
            c => c,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// The push's subscription and message id (see [`Push::of`]).
struct Push {
    subscription: String,
    message_id: String,
}

/// Its `message` (see [`message_id`]).
struct Message(String);

impl<'de> Deserialize<'de> for Push {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Push;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Push, A::Error> {
                use serde::de::Error;
                let (mut message, mut subscription) = (None, None);
                while let Some(name) = map.next_key::<String>()? {
                    match name.as_str() {
                        "message" if message.is_none() => {
                            message = Some(map.next_value::<Message>()?.0)
                        }
                        "subscription" if subscription.is_none() => {
                            subscription = Some(map.next_value::<String>()?)
                        }
                        _ if matches!(folded(&name).as_str(), "message" | "subscription") => {
                            return Err(A::Error::custom(
                                "a second member named like message or subscription",
                            ))
                        }
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                let message = message.ok_or_else(|| A::Error::custom("no message"))?;
                let subscription = subscription
                    .filter(|name| is_subscription(name))
                    .ok_or_else(|| {
                        A::Error::custom("no subscription projects/<project>/subscriptions/<name>")
                    })?;
                Ok(Push {
                    message_id: message,
                    subscription,
                })
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Message;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Message, A::Error> {
                use serde::de::Error;
                let (mut id, mut snake) = (None, None);
                while let Some(name) = map.next_key::<String>()? {
                    match name.as_str() {
                        "messageId" if id.is_none() => id = Some(map.next_value::<String>()?),
                        "message_id" if snake.is_none() => {
                            snake = Some(map.next_value::<String>()?)
                        }
                        _ if folded(&name) == "messageid" => {
                            return Err(A::Error::custom(
                                "a second member named like message.messageId",
                            ))
                        }
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                let id = id.ok_or_else(|| A::Error::custom("no message.messageId"))?;
                let digits = (1..=64).contains(&id.len())
                    && id.bytes().all(|b| b.is_ascii_digit())
                    && (id == "0" || !id.starts_with('0'));
                if !digits {
                    return Err(A::Error::custom(
                        "message.messageId is not 1 to 64 digits without a leading zero",
                    ));
                }
                if snake.is_some_and(|snake| snake != id) {
                    return Err(A::Error::custom(
                        "message.message_id is not message.messageId",
                    ));
                }
                Ok(Message(id))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

fn claim_refused(name: &str, what: &str) -> Rejection {
    Rejection::new(
        Reason::SignatureMismatch,
        format!("the token's {name} {what}"),
    )
}

impl PubSub {
    /// One claim of the payload `jwt_authn` verified, at most [`MAX_CLAIM_BYTES`].
    fn claim(&self, head: &RequestHead, name: &str) -> Result<Vec<u8>, Rejection> {
        let value = head
            .metadata(NAMESPACE, &self.metadata_key, name)
            .ok_or_else(|| malformed(format!("the token has no {name}")))?;
        if value.len() > MAX_CLAIM_BYTES {
            return Err(malformed(format!("the token's {name} is too long")));
        }
        Ok(value)
    }

    /// A numeric claim as whole unix seconds (a JSON number is a double in the payload).
    fn seconds(&self, head: &RequestHead, name: &str) -> Result<i64, Rejection> {
        let value = self.claim(head, name)?;
        let number = <[u8; 8]>::try_from(value.as_slice())
            .map(f64::from_le_bytes)
            .ok()
            .filter(|n| n.fract() == 0.0 && (0.0..1e12).contains(n))
            .ok_or_else(|| malformed(format!("the token's {name} is not unix seconds")))?;
        Ok(number as i64)
    }

    /// The account whose verified token the request carries, and the token; refused unless
    /// `jwt_authn` verified one and it says what Google's tokens for this route say.
    fn read(&self, head: &RequestHead) -> Result<(&Key, Token), Rejection> {
        // Present only once jwt_authn verified the token's signature (its library requires
        // a string iss).
        let Some(iss) = head.metadata(NAMESPACE, &self.metadata_key, "iss") else {
            return Err(Rejection::new(
                Reason::MissingSignature,
                format!(
                    "no token verified by jwt_authn (no {NAMESPACE} metadata {}): Authorization is missing, or jwt_authn does not run before this filter on this route",
                    self.metadata_key
                ),
            ));
        };
        if !ISSUERS.contains(&iss.as_slice()) {
            return Err(claim_refused("iss", "is not Google's"));
        }
        let aud = self.claim(head, "aud")?;
        if aud != self.audience.as_bytes() {
            return Err(claim_refused("aud", "is not this route's jwt.audience"));
        }
        let email = self.claim(head, "email")?;
        let account = self
            .accounts
            .iter()
            .find(|key| key.identifier().map(str::as_bytes) == Some(email.as_slice()))
            .ok_or_else(|| claim_refused("email", "is not one of the route's service accounts"))?;
        if self.claim(head, "email_verified")? != [1] {
            return Err(claim_refused("email_verified", "is not true"));
        }
        let (iat, exp) = (self.seconds(head, "iat")?, self.seconds(head, "exp")?);
        if exp <= iat || exp - iat > LIFETIME_SECS {
            return Err(malformed(
                "the token's exp is not within an hour after its iat, as Google's are",
            ));
        }
        let token = Token {
            iss,
            aud,
            email,
            iat,
            exp,
        };
        Ok((account, token))
    }
}

impl Provider for PubSub {
    fn time(&self) -> Time {
        Time::Signed(WINDOW)
    }

    fn at_headers(&self, head: &RequestHead, _checks: &Checks) -> Result<AtHeaders<'_>, Rejection> {
        let (account, _) = self.read(head)?;
        Ok(AtHeaders::Verified {
            scheme: SCHEME,
            key: &account.name,
        })
    }

    fn at_body<'p>(
        &'p self,
        head: &RequestHead,
        body: &Body,
        _checks: &Checks,
    ) -> Result<Verified<'p>, Rejection> {
        // The claims again (jwt_authn verified them already): the identity needs them.
        let (account, token) = self.read(head)?;
        if let Some(Prior::Verified(_, name)) = body.prior {
            debug_assert_eq!(name, account.name);
        }
        Ok(Verified {
            scheme: SCHEME,
            key: &account.name,
            signed: token.identity(body.bytes)?,
            time: Some(Stamp::secs(token.iat)),
        })
    }

    fn schemes(&self) -> Vec<(&'static str, Vec<&str>)> {
        vec![(SCHEME, key_names(&self.accounts))]
    }

    fn media(&self) -> Media {
        Media::JSON_OBJECT
    }
}

#[cfg(any(test, feature = "sign"))]
pub const SIGNER: Signer = Signer { sign, example };

/// The demo's token-signing key, and its JWKS (what the demo's `jwt_authn` trusts in place
/// of Google's): the simulator pushes as Pub/Sub with it.
#[cfg(any(test, feature = "sign"))]
const DEMO_KEY: &str = include_str!("demo-key.pem");
#[cfg(any(test, feature = "sign"))]
pub const DEMO_JWKS: &str = include_str!("demo-jwks.json");
#[cfg(any(test, feature = "sign"))]
const DEMO_KEY_ID: &str = "callback-guard-demo";

/// A push message, wrapped as Pub/Sub wraps it.
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    // Sixteen digits, as Pub/Sub's, never with a leading zero.
    let id = format!("1{}", crate::providers::sign::digits(&signing.random, 15));
    let (date, time) = crate::providers::sign::civil(signing.now);
    let data = crate::providers::sign::base64(r#"{"order":42,"note":"café"}"#.as_bytes());
    let published = format!("{date}T{time}.000Z");
    let message = serde_json::json!({"attributes": {"kind": "order"}, "data": data,
        "messageId": id, "message_id": id, "publishTime": published, "publish_time": published});
    // The subscription first: a byte changed near the end (a tamper) falls in the message.
    format!(
        r#"{{"subscription":"projects/callback-guard-demo/subscriptions/orders","message":{message}}}"#
    )
    .into_bytes()
}

/// What Pub/Sub sends: a token for the route's audience (by default the request's URL,
/// as Pub/Sub's) issued to the key's service account, signed with the demo's key, issued at the signing time.
#[cfg(any(test, feature = "sign"))]
fn sign(signing: &Signing, out: &mut Outgoing) -> Result<(), String> {
    let KeyMaterial::Secret(account) = signing.key else {
        return Err("google_pubsub: the key is the service account, not a private key".into());
    };
    let audience = match signing.audience {
        Some(audience) => audience.to_string(),
        None => out.url.split('?').next().unwrap_or_default().to_string(),
    };
    let encode = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let header = serde_json::json!({"alg": "RS256", "kid": DEMO_KEY_ID, "typ": "JWT"});
    let payload = serde_json::json!({"aud": audience, "azp": "113774264463038321964",
        "email": account, "email_verified": true, "exp": signing.now + LIFETIME_SECS,
        "iat": signing.now, "iss": "https://accounts.google.com", "sub": "113774264463038321964"});
    let signed = format!(
        "{}.{}",
        encode(header.to_string().as_bytes()),
        encode(payload.to_string().as_bytes())
    );
    let signature = crate::providers::sign::rsa_sign(
        DEMO_KEY,
        crate::remote_key::RsaHash::Sha256,
        signed.as_bytes(),
    )?;
    let token = format!("{signed}.{}", encode(&signature));
    out.set("content-type", "application/json", Role::Plain);
    out.set(
        "authorization",
        format!("Bearer {token}"),
        Role::Signature {
            at: "Bearer ".len() + signed.len() + 1,
        },
    );
    out.signed.push(Covered {
        what: "token",
        parent: false,
        message: signed.into_bytes(),
    });
    Ok(())
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
