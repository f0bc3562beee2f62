//! AWS SNS over HTTP(S) (and what publishes through it: SES, S3 events, CloudWatch
//! alarms): a JSON body signed with RSA PKCS#1 v1.5 under the certificate its
//! `SigningCertURL` names, fetched by the filter (see [`crate::remote_key`]).
//!
//! | signed | key | time | identity | the fingerprint also binds |
//! | --- | --- | --- | --- | --- |
//! | `Name\nValue\n` of `Message`, `MessageId`, `Subject` (if present), `Timestamp`, `TopicArn`, `Type`; for confirmations `Message`, `MessageId`, `SubscribeURL`, `Timestamp`, `Token`, `TopicArn`, `Type` | SHA-1 (`SignatureVersion` 1) or SHA-256 (2) with the RSA key of the certificate at `SigningCertURL`, fetched only from an allowed host | `Timestamp`, one hour by default (SNS's retries keep it) | the whole signed string | the body (`MessageAttributes` and `UnsubscribeURL` are unsigned) and the `x-amz-sns-*` headers |
//!
//! The route's keys are the topic ARNs it accepts (`arn:aws:sns:<region>:<account>:<name>`):
//! a message of any other topic is refused before its certificate is fetched, as is any
//! field not in SNS's exact format, and `x-amz-sns-message-type`, `-message-id` and
//! `-topic-arn` must say what the signed body says. A `SubscriptionConfirmation` verifies
//! like a notification and goes to the application, which confirms it; or, where the
//! route's `certificate.confirm_subscriptions` says so, the filter confirms it itself (a GET
//! of its signed `SubscribeURL` through the route's cluster) and answers SNS, and the
//! application never sees it.

#[cfg(any(test, feature = "sign"))]
use base64::Engine;
use serde::Deserialize;

use crate::keys::Key;
use crate::providers::entry::{Entry, Field, Problem, Settings};
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{Covered, KeyMaterial, Outgoing, Role, Signer, Signing};
use crate::providers::{
    key_names, mismatch, shaped, AtHeaders, Body, Checks, Media, Prior, Provider, Reply, Signed,
    Time, Verified, UUID,
};
use crate::remote_key::{self, Fetch, RsaHash, Shape, Source};
use crate::request::{Lookup, RequestHead};
use crate::timestamp::{self, Edges, Freshness, Stamp};
use crate::verdict::{Reason, Rejection};

pub const SCHEME: &str = "sns";

/// SNS's certificates: on its regions' hosts, in every partition, under SNS's file names.
const CERTIFICATES: Shape = Shape {
    hosts: &["sns.*.amazonaws.com", "sns.*.amazonaws.com.cn"],
    path: is_certificate_path,
    subjects: |_| &[],
};

/// SNS's own retries keep a message's `Timestamp`: its default HTTP policy retries for a
/// minute, and a topic's policy can stretch them to an hour.
pub const WINDOW: Freshness = Freshness {
    max_age_secs: 3_600,
    max_future_secs: 300,
    required: true,
    edges: Edges::Exact,
};

/// The headers SNS sends next to the body, which an application dispatches on.
const HEADERS: [&str; 4] = [
    "x-amz-sns-message-type",
    "x-amz-sns-message-id",
    "x-amz-sns-topic-arn",
    "x-amz-sns-subscription-arn",
];

pub const ENTRY: Entry = signs!(
    Entry::new(SCHEME, compile).reading(&[Field::Certificate]),
    SIGNER
);

#[derive(Debug)]
pub struct Sns {
    /// The topics accepted: each key's secret is a topic ARN.
    topics: Vec<Key>,
    source: Source,
}

fn compile(settings: Settings) -> Result<Box<dyn Provider>, Problem> {
    let source = Source::compile(
        Field::Certificate.name(),
        settings.certificate,
        &CERTIFICATES,
    )?;
    Ok(Box::new(Sns {
        topics: settings.keys,
        source,
    }))
}

/// An SNS message as its JSON body holds it: nothing else may be in it, and no member twice.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Message {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "MessageId")]
    message_id: String,
    #[serde(rename = "TopicArn")]
    topic_arn: String,
    #[serde(rename = "Subject", default, deserialize_with = "present")]
    subject: Option<String>,
    #[serde(rename = "Message")]
    message: String,
    #[serde(rename = "Timestamp")]
    timestamp: String,
    #[serde(rename = "SignatureVersion")]
    signature_version: String,
    /// Optional here only so that its absence is named as such.
    #[serde(rename = "Signature", default, deserialize_with = "present")]
    signature: Option<String>,
    #[serde(rename = "SigningCertURL")]
    signing_cert_url: String,
    #[serde(rename = "SubscribeURL", default, deserialize_with = "present")]
    subscribe_url: Option<String>,
    #[serde(rename = "Token", default, deserialize_with = "present")]
    token: Option<String>,
    #[serde(rename = "UnsubscribeURL", default, deserialize_with = "present")]
    _unsubscribe_url: Option<String>,
    #[serde(rename = "MessageAttributes", default, deserialize_with = "present")]
    _message_attributes: Option<serde_json::Map<String, serde_json::Value>>,
}

/// An optional member, when present, of its type: never `null`, which SNS does not send
/// and which would read as absent here but as a value to the application.
fn present<'de, D, T>(member: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(member).map(Some)
}

/// A message whose every part is in SNS's format, of one of the route's topics.
struct Delivery<'p> {
    message: Message,
    topic: &'p Key,
    fetch: Fetch,
    hash: RsaHash,
    signature: Vec<u8>,
    time: Stamp,
}

impl Message {
    /// The signed string's parts, `Name\n` and `Value\n` in turn, as SNS builds it.
    fn signed_parts(&self) -> Vec<&[u8]> {
        let mut fields: Vec<(&str, &str)> =
            vec![("Message", &self.message), ("MessageId", &self.message_id)];
        match (&self.subscribe_url, &self.token) {
            (Some(url), Some(token)) => {
                fields.push(("SubscribeURL", url));
                fields.extend([("Timestamp", self.timestamp.as_str()), ("Token", token)]);
            }
            _ => {
                if let Some(subject) = &self.subject {
                    fields.push(("Subject", subject));
                }
                fields.push(("Timestamp", &self.timestamp));
            }
        }
        fields.extend([("TopicArn", self.topic_arn.as_str()), ("Type", &self.kind)]);
        fields
            .into_iter()
            .flat_map(|(name, value)| [name.as_bytes(), b"\n", value.as_bytes(), b"\n"])
            .collect()
    }
}

impl Sns {
    /// Reads and checks everything but the signature: done before any certificate is
    /// fetched, so that a forgery costs no I/O unless it names one of the route's topics in
    /// SNS's exact format.
    fn read(&self, head: &RequestHead, body: &[u8]) -> Result<Delivery<'_>, Rejection> {
        // A struct would also be read from an array of its members' values.
        if body.trim_ascii_start().first() != Some(&b'{') {
            return Err(body_error("not an SNS message: not a JSON object"));
        }
        let message: Message = serde_json::from_slice(body).map_err(|error| {
            Rejection::new(
                Reason::MalformedBody,
                format!("not an SNS message: {error}"),
            )
        })?;
        let Some(signature) = &message.signature else {
            return Err(Rejection::new(
                Reason::MissingSignature,
                "the SNS message has no Signature",
            ));
        };
        let confirmation = match message.kind.as_str() {
            "Notification" => false,
            "SubscriptionConfirmation" | "UnsubscribeConfirmation" => true,
            _ => return Err(body_error("Type is not an SNS message type")),
        };
        match (confirmation, &message.subscribe_url, &message.token) {
            (false, None, None) => {}
            (true, Some(url), Some(token)) if message.subject.is_none() => {
                check_subscribe_url(url)?;
                if token.is_empty()
                    || token.len() > 2048
                    || !token.bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    return Err(body_error("Token is not SNS's"));
                }
            }
            _ => {
                return Err(body_error(
                    "SubscribeURL, Token and Subject do not fit Type",
                ))
            }
        }
        if !shaped(message.message_id.as_bytes(), UUID) {
            return Err(body_error("MessageId is not a lowercase UUID"));
        }
        // The signed string's only free field comes first: one holding a field boundary of
        // its own could be re-split into another message under the same signature.
        if message.message.contains("\nMessageId\n") {
            return Err(body_error("Message holds an SNS field boundary"));
        }
        if let Some(subject) = &message.subject {
            if subject.is_empty() || subject.len() > 100 || subject.chars().any(char::is_control) {
                return Err(body_error("Subject is not one SNS sends"));
            }
        }
        let time = timestamp_of(&message.timestamp)?;
        check_topic_arn(&message.topic_arn)?;
        let topic = self
            .topics
            .iter()
            .find(|topic| topic.is_secret(message.topic_arn.as_bytes()))
            .ok_or_else(|| mismatch("TopicArn (not one of the route's topics)"))?;
        let hash = match message.signature_version.as_str() {
            "1" => RsaHash::Sha1,
            "2" => RsaHash::Sha256,
            _ => return Err(body_error("SignatureVersion is neither 1 nor 2")),
        };
        let signature = remote_key::rsa_signature(signature.as_bytes())
            .ok_or_else(|| body_error("Signature is not base64 of an RSA signature"))?;
        // SNS sends all three: an application may dispatch on them rather than the body.
        for (header, value) in [
            ("x-amz-sns-message-type", &message.kind),
            ("x-amz-sns-message-id", &message.message_id),
            ("x-amz-sns-topic-arn", &message.topic_arn),
        ] {
            match head.lookup(header) {
                Lookup::One(given) if given == value.as_bytes() => {}
                Lookup::Duplicate => {
                    return Err(Rejection::new(
                        Reason::DuplicateHeader,
                        format!("{header} appears more than once"),
                    ))
                }
                _ => {
                    return Err(Rejection::new(
                        Reason::MalformedHeader,
                        format!("{header} does not say what the signed body says"),
                    ))
                }
            }
        }
        let fetch = self.source.locate(message.signing_cert_url.as_bytes())?;
        if !is_sns_region_host(&fetch.authority) {
            return Err(body_error("SigningCertURL's host is not an SNS region's"));
        }
        Ok(Delivery {
            message,
            topic,
            fetch,
            hash,
            signature,
            time,
        })
    }
}

/// `/SimpleNotificationService-<32 lowercase hex digits>.pem`: the only names SNS's
/// certificates have, so that a forgery cannot make the filter fetch a file of its choosing.
fn is_certificate_path(path: &str) -> bool {
    path.strip_prefix("/SimpleNotificationService-")
        .and_then(|name| name.strip_suffix(".pem"))
        .is_some_and(|hex| shaped(hex.as_bytes(), &[b'x'; 32]))
}

/// Whether an `sns.<label>.amazonaws.com[.cn]` host's label is a region's
/// (`us-east-1`, `us-gov-west-1`, `cn-north-1`): never an S3 bucket's legacy endpoint
/// (`sns.s3-us-west-2.amazonaws.com` is the bucket `sns`).
fn is_sns_region_host(host: &str) -> bool {
    let labels: Vec<&str> = host.split('.').collect();
    let region = match labels.as_slice() {
        ["sns", region, "amazonaws", "com"] | ["sns", region, "amazonaws", "com", "cn"] => region,
        // A host the operator allowed by name, not SNS's pattern.
        _ => return true,
    };
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

fn body_error(what: &str) -> Rejection {
    Rejection::new(Reason::MalformedBody, what.to_string())
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, exactly as SNS writes it.
fn timestamp_of(text: &str) -> Result<Stamp, Rejection> {
    let bytes = text.as_bytes();
    shaped(bytes, b"9999-99-99T99:99:99.999Z")
        .then(|| timestamp::parse_rfc3339_stamp(bytes))
        .flatten()
        .ok_or_else(|| body_error("Timestamp is not SNS's YYYY-MM-DDTHH:MM:SS.mmmZ"))
}

/// `arn:<partition>:sns:<region>:<12 digits>:<topic name>`.
fn check_topic_arn(arn: &str) -> Result<(), Rejection> {
    let parts: Vec<&str> = arn.split(':').collect();
    let word = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    let name = |part: &str| {
        (1..=256).contains(&part.len())
            && part
                .strip_suffix(".fifo")
                .unwrap_or(part)
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    match parts.as_slice() {
        ["arn", partition, "sns", region, account, topic]
            if word(partition)
                && word(region)
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && name(topic) =>
        {
            Ok(())
        }
        _ => Err(body_error("TopicArn is not an SNS topic ARN")),
    }
}

/// `https://sns.<region>.amazonaws.com/?Action=ConfirmSubscription&...`: where the
/// application will send its confirmation.
fn check_subscribe_url(url: &str) -> Result<(), Rejection> {
    let host = url
        .strip_prefix("https://")
        .and_then(|rest| rest.split_once("/?Action=ConfirmSubscription&"))
        .map(|(host, _)| host);
    let allowed = host.is_some_and(|host| {
        let labels: Vec<&str> = host.split('.').collect();
        matches!(
            labels.as_slice(),
            ["sns", _, "amazonaws", "com"] | ["sns", _, "amazonaws", "com", "cn"]
        )
    });
    match allowed && url.len() <= 2048 && url.bytes().all(|b| b.is_ascii_graphic()) {
        true => Ok(()),
        false => Err(body_error("SubscribeURL is not an SNS confirmation URL")),
    }
}

impl Provider for Sns {
    fn time(&self) -> Time {
        Time::Signed(WINDOW)
    }

    fn at_headers(&self, head: &RequestHead, _checks: &Checks) -> Result<AtHeaders<'_>, Rejection> {
        match head.lookup("x-amz-sns-message-type") {
            Lookup::Missing => Err(Rejection::new(
                Reason::MissingSignature,
                "x-amz-sns-message-type is missing (raw message delivery carries no signature)",
            )),
            Lookup::Duplicate => Err(Rejection::new(
                Reason::DuplicateHeader,
                "x-amz-sns-message-type appears more than once",
            )),
            Lookup::One(_) => Ok(AtHeaders::NeedBody),
        }
    }

    fn remote_key(
        &self,
        head: &RequestHead,
        body: &[u8],
    ) -> Result<Option<(Fetch, Stamp)>, Rejection> {
        let delivery = self.read(head, body)?;
        Ok(Some((delivery.fetch, delivery.time)))
    }

    fn at_body<'p>(
        &'p self,
        head: &RequestHead,
        body: &Body,
        _checks: &Checks,
    ) -> Result<Verified<'p>, Rejection> {
        let delivery = self.read(head, body.bytes)?;
        let Some(Prior::Fetched(key)) = body.prior else {
            return Err(Rejection::new(
                Reason::KeyUnavailable,
                "the signing certificate was not fetched",
            ));
        };
        let parts = delivery.message.signed_parts();
        let message = parts.concat();
        if !remote_key::rsa_verifies(key, delivery.hash, &message, &delivery.signature) {
            return Err(mismatch("Signature"));
        }
        Ok(Verified {
            scheme: SCHEME,
            key: &delivery.topic.name,
            signed: Signed::over(SCHEME, &parts, body.bytes),
            time: Some(delivery.time),
        })
    }

    fn schemes(&self) -> Vec<(&'static str, Vec<&str>)> {
        vec![(SCHEME, key_names(&self.topics))]
    }

    /// A verified `SubscriptionConfirmation`, where the route confirms them: the GET of its
    /// `SubscribeURL` (signed, on one of the route's hosts), then SNS answered.
    fn handshake(
        &self,
        head: &RequestHead,
        body: &[u8],
        _key: &str,
    ) -> Result<Option<Reply>, Rejection> {
        if !self.source.confirms {
            return Ok(None);
        }
        let message = self.read(head, body)?.message;
        let (Some(url), "SubscriptionConfirmation") =
            (&message.subscribe_url, message.kind.as_str())
        else {
            return Ok(None);
        };
        let confirm = self.source.call(url)?;
        let mut reply = Reply::json("subscription_confirmation", &[("result", "confirmed")]);
        reply.confirm = Some(confirm);
        Ok(Some(reply))
    }

    fn media(&self) -> Media {
        Media::JSON_OBJECT_OR_TEXT
    }

    fn dispatch_headers(&self) -> Vec<&str> {
        HEADERS.to_vec()
    }

    fn parses_body(&self) -> bool {
        true
    }
}

#[cfg(any(test, feature = "sign"))]
pub const SIGNER: Signer = Signer { sign, example };

/// The demo's signing certificate and its private key: the simulator signs as SNS with
/// it, and the demo's certificate server serves it (nothing of AWS's).
#[cfg(any(test, feature = "sign"))]
pub const DEMO_CERTIFICATE: &str = include_str!("demo-certificate.pem");
#[cfg(any(test, feature = "sign"))]
const DEMO_KEY: &str = include_str!("demo-key.pem");
/// The name the demo's certificate is served under, on any region's SNS host.
#[cfg(any(test, feature = "sign"))]
pub const DEMO_CERTIFICATE_FILE: &str =
    "SimpleNotificationService-3011a86d709cb093a778a7e29ababe5d.pem";

/// A notification of the route's topic (the key's text), unsigned.
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    let KeyMaterial::Secret(topic) = signing.key else {
        return Vec::new();
    };
    let event = crate::providers::presets::event(signing);
    serde_json::json!({"Type": "Notification", "TopicArn": topic,
        "Message": String::from_utf8_lossy(&event)})
    .to_string()
    .into_bytes()
}

/// What SNS sends: the message with its `MessageId`, `Timestamp` and signature members,
/// signed with the demo's key, whose certificate the URL names on the topic's region's
/// host.
#[cfg(any(test, feature = "sign"))]
fn sign(signing: &Signing, out: &mut Outgoing) -> Result<(), String> {
    let KeyMaterial::Secret(topic) = signing.key else {
        return Err("sns: the key is the topic ARN, not a private key".into());
    };
    let mut fields: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&out.body)
        .map_err(|e| format!("the body is not a JSON object: {e}"))?;
    let text = |fields: &serde_json::Map<String, serde_json::Value>, name: &str| {
        fields
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let topic_arn = text(&fields, "TopicArn").unwrap_or_else(|| topic.to_string());
    let region = topic_arn
        .split(':')
        .nth(3)
        .unwrap_or("us-east-1")
        .to_string();
    let id = signing.id_or_uuid();
    let (date, time) = crate::providers::sign::civil(signing.now);
    let stamp = format!("{date}T{time}.000Z");
    let defaults = [
        ("Type", "Notification".to_string()),
        ("MessageId", id),
        ("TopicArn", topic_arn),
        ("Timestamp", stamp),
        ("SignatureVersion", "1".to_string()),
        (
            "SigningCertURL",
            format!("https://sns.{region}.amazonaws.com/{DEMO_CERTIFICATE_FILE}"),
        ),
    ];
    for (name, value) in defaults {
        fields.entry(name).or_insert(value.into());
    }
    let message: Message = serde_json::from_value(serde_json::Value::Object({
        let mut unsigned = fields.clone();
        unsigned.insert("Signature".into(), "".into());
        unsigned
    }))
    .map_err(|e| format!("not an SNS message: {e}"))?;
    let signed = message.signed_parts().concat();
    let hash = match message.signature_version.as_str() {
        "2" => RsaHash::Sha256,
        _ => RsaHash::Sha1,
    };
    let signature = crate::providers::sign::rsa_sign(DEMO_KEY, hash, &signed)?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(signature);
    fields.insert("Signature".into(), encoded.clone().into());
    // SNS's own member order.
    let order = [
        "Type",
        "MessageId",
        "Token",
        "TopicArn",
        "Subject",
        "Message",
        "SubscribeURL",
        "Timestamp",
        "SignatureVersion",
        "Signature",
        "SigningCertURL",
        "UnsubscribeURL",
        "MessageAttributes",
    ];
    let members: Vec<String> = order
        .iter()
        .filter_map(|name| {
            Some(format!(
                "{}:{}",
                serde_json::Value::from(*name),
                fields.get(*name)?
            ))
        })
        .collect();
    out.body = format!("{{{}}}", members.join(",")).into_bytes();
    out.body_signature = out
        .body
        .windows(encoded.len())
        .position(|window| window == encoded.as_bytes());
    out.set("content-type", "text/plain; charset=UTF-8", Role::Plain);
    out.set("x-amz-sns-message-type", message.kind.clone(), Role::Plain);
    out.set(
        "x-amz-sns-message-id",
        message.message_id.clone(),
        Role::Plain,
    );
    out.set(
        "x-amz-sns-topic-arn",
        message.topic_arn.clone(),
        Role::Plain,
    );
    out.signed.push(Covered {
        what: "message",
        parent: false,
        message: signed,
    });
    Ok(())
}

#[cfg(test)]
mod tests;
