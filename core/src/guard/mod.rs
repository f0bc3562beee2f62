//! The verdict on one request, in two steps: its headers, then, where the route needs it,
//! its complete body.

use std::net::IpAddr;

use crate::form;
use crate::net;
use crate::path_view::Features;
use crate::policy::{OnDuplicate, Policy, Protection, Replay, Route, Transport};
use crate::providers::{
    AtHeaders, Body, Checks, ContentType, Hashed, Json, Media, Reply, Signed, Verified,
};
use crate::remote_key::{self, Fetch};
use crate::replay::{self, Digest16, Outcome, Reservation, SharedStore};
use crate::request::{Lookup, RequestHead};
use crate::store::{Answer, Claim, OnError, StoreError};
use crate::timestamp::{self, Stamp};
use crate::verdict::{Reason, Rejection};

#[derive(Debug)]
pub enum Step<'p> {
    /// No route protects this request.
    Unprotected,
    /// The verdict needs the complete body: call [`on_body`] with it.
    NeedBody(&'p Route),
    /// Verified, and unknown to this Envoy's memory: the route's fleet-wide store must
    /// reserve the id. Ask it (see [`crate::store::etcd`]), then call [`on_reservation`].
    Reserve(&'p Route, Pending),
    Forward(Accepted<'p>),
    Reject(&'p Route, Rejection),
    /// The provider's endpoint check: answered here, never forwarded. Where the route
    /// remembers deliveries, it was reserved like any delivery: settle it delivered once
    /// answered, so that its signed bytes cannot come again as another request.
    Reply(&'p Route, Reply, Option<Reserved>),
    /// The key the request names is not in this Envoy's memory: fetch it, keep it
    /// ([`keep_fetched`]) and judge the body again with it ([`Prior::Fetched`]).
    Fetch(&'p Route, Fetch),
}

/// A verified request waiting for the fleet-wide store's reservation. Owned, so the filter
/// can keep it while the request is paused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub scheme: &'static str,
    /// The name of the key that verified.
    pub key: String,
    pub id: [u8; 16],
    pub fingerprint: [u8; 16],
    /// Unix seconds when the body was judged.
    pub now: u32,
    /// The reply, when the request is a provider's endpoint check.
    pub reply: Option<Reply>,
}

/// A request that may go to the upstream.
#[derive(Debug)]
pub struct Accepted<'p> {
    pub route: &'p Route,
    /// The scheme that matched: `v3`, `ma_v3_sdk`, `whatsapp`, ...
    pub scheme: &'static str,
    pub key: &'p str,
    /// The replay reservation to settle once the upstream answers.
    pub reserved: Option<Reserved>,
    /// A repeat of a delivered request, delivered again because the route's provider sends
    /// identical requests itself (`on_duplicate: deliver`).
    pub repeat: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserved {
    pub id: [u8; 16],
    pub fingerprint: [u8; 16],
    /// An earlier delivery of the same request failed: this is the provider's retry.
    pub retry: bool,
    /// The claim in the fleet-wide store, to settle there as well as locally.
    pub remote: Option<Claim>,
    /// The fleet-wide store failed and the route fails open: reserved locally only.
    pub fail_open: bool,
    /// The slot was full: its oldest delivered entry was forgotten to make room.
    pub forgot: bool,
}

/// What the host knows about the downstream connection. Asked only when a route needs to
/// know, since each answer costs a host call.
pub trait Downstream {
    fn tls(&self) -> bool;
    fn peer(&self) -> Option<IpAddr>;
}

/// Judges what the headers alone can: route, source, transport, size and signature headers.
pub fn on_headers<'p>(
    policy: &'p Policy,
    head: &RequestHead,
    downstream: &dyn Downstream,
) -> Step<'p> {
    on_headers_verified(policy, head, downstream).0
}

/// What is known of a request before its body step judges it, so that nothing is
/// verified or hashed twice.
pub use crate::providers::Prior;

/// [`on_headers`], with what it verified when the route needs the body anyway (a voice
/// signature on a replay-protected route): [`on_body_verified`] takes it, so that the
/// signature is not verified twice.
pub fn on_headers_verified<'p>(
    policy: &'p Policy,
    head: &RequestHead,
    downstream: &dyn Downstream,
) -> (Step<'p>, Option<Prior<'p>>) {
    let route = match policy.protection(head) {
        Protection::None => return (Step::Unprotected, None),
        Protection::Noncanonical(route, features) => {
            return (Step::Reject(route, noncanonical(route, features)), None)
        }
        Protection::Route(route) => route,
    };
    match judge_headers(route, head, downstream) {
        Ok(judged) => judged,
        Err(rejection) => (Step::Reject(route, rejection), None),
    }
}

fn judge_headers<'p>(
    route: &'p Route,
    head: &RequestHead,
    downstream: &dyn Downstream,
) -> Result<(Step<'p>, Option<Prior<'p>>), Rejection> {
    check_source(route, head, downstream)?;
    check_transport(route, head, downstream)?;
    check_declared_length(route, head)?;
    let provider = route.provider.as_ref();
    check_declared_media(provider.media(), head)?;
    let checks = checks(route);
    Ok(match provider.at_headers(head, &checks)? {
        AtHeaders::Verified { scheme, key } if !route.needs_body() => {
            let accepted = Accepted {
                route,
                scheme,
                key,
                reserved: None,
                repeat: false,
            };
            (Step::Forward(accepted), None)
        }
        AtHeaders::Verified { scheme, key } => {
            (Step::NeedBody(route), Some(Prior::Verified(scheme, key)))
        }
        AtHeaders::NeedBody => (Step::NeedBody(route), None),
        AtHeaders::Reply(reply) => (Step::Reply(route, reply, None), None),
    })
}

/// The route settings a scheme's verdict depends on.
fn checks(route: &Route) -> Checks {
    Checks {
        explain: route.debug_signed_string,
        freshness: route.freshness,
    }
}

/// Judges a request whose route needed the body, once the body is complete: signatures
/// over the body, freshness, then the replay reservation.
pub fn on_body<'p>(
    route: &'p Route,
    head: &RequestHead,
    body: &[u8],
    now: Stamp,
    store: &dyn SharedStore,
    create_cas: u32,
) -> Step<'p> {
    on_body_verified(route, head, body, None, now, store, create_cas)
}

/// [`on_body`] with what is known before the body step ([`Prior`]): what the headers step
/// verified ([`on_headers_verified`]), or the body's MACs computed as it arrived.
pub fn on_body_verified<'p>(
    route: &'p Route,
    head: &RequestHead,
    body: &[u8],
    prior: Option<Prior>,
    now: Stamp,
    store: &dyn SharedStore,
    create_cas: u32,
) -> Step<'p> {
    match judge_body(route, head, body, prior, now, store, create_cas) {
        Ok(Judged::Accepted(accepted)) => Step::Forward(accepted),
        Ok(Judged::Pending(pending)) => Step::Reserve(route, pending),
        Ok(Judged::Reply(reply, reserved)) => Step::Reply(route, reply, reserved),
        Ok(Judged::Fetch(fetch)) => Step::Fetch(route, fetch),
        Err(rejection) => Step::Reject(route, rejection),
    }
}

/// What the streamed hashes alone decide, before the filter reads a body it has not
/// verified: `Some` refusal, in the order [`on_body`] judges (size, type, signature), when
/// the body is too large, of a type its provider never sends, or its MAC cannot verify.
pub fn on_hashed<'p>(route: &'p Route, head: &RequestHead, hashed: &Hashed) -> Option<Step<'p>> {
    let provider = route.provider.as_ref();
    let refusal = if hashed.body_len > route.max_body_bytes as usize {
        too_large(route)
    } else {
        check_media(provider.media(), head, hashed.body_len == 0)
            .and_then(|_| provider.check_hashed(head, hashed))
            .err()?
    };
    Some(Step::Reject(route, refusal))
}

enum Judged<'p> {
    Accepted(Accepted<'p>),
    Pending(Pending),
    Reply(Reply, Option<Reserved>),
    Fetch(Fetch),
}

fn judge_body<'p>(
    route: &'p Route,
    head: &RequestHead,
    body: &[u8],
    prior: Option<Prior>,
    now: Stamp,
    store: &dyn SharedStore,
    create_cas: u32,
) -> Result<Judged<'p>, Rejection> {
    if body.len() > route.max_body_bytes as usize {
        return Err(too_large(route));
    }
    let provider = route.provider.as_ref();
    let media = provider.media();
    let content_type = check_media(media, head, body.is_empty())?;
    let checks = checks(route);
    // A key the network holds: in this Envoy's memory, or fetched first. What can be refused
    // without it (format, topic, freshness) is refused before any fetch.
    if !matches!(prior, Some(Prior::Fetched(_))) {
        if let Some((fetch, time)) = provider.remote_key(head, body)? {
            check_freshness(route, time, now)?;
            let value = store.get(&fetch.cache_key()).ok().flatten();
            return match value
                .as_ref()
                .and_then(|(v, _)| remote_key::kept(v, unix(now)))
            {
                Some(key) => {
                    let prior = Some(Prior::Fetched(key));
                    judge_body(route, head, body, prior, now, store, create_cas)
                }
                // Never fetched, or its day is up (or its certificate expired).
                None => {
                    fetch.spend(store, unix(now))?;
                    Ok(Judged::Fetch(fetch))
                }
            };
        }
    }
    if let Some(time) = provider.time_before_verifying(head) {
        check_freshness(route, time, now)?;
    }
    let verified = provider.at_body(head, &Body { bytes: body, prior }, &checks)?;
    // Only a body whose signature verified is parsed: a forgery costs one MAC.
    if !provider.parses_body() {
        check_body(media, content_type, body)?;
    }
    if let Some(time) = verified.time {
        check_freshness(route, time, now)?;
    }
    let reply = match route.answer_handshakes {
        true => provider.handshake(head, body, verified.key)?,
        false => None,
    };
    let Verified {
        scheme,
        key,
        signed,
        ..
    } = verified;
    let Some(replay) = &route.replay else {
        return Ok(match reply {
            Some(reply) => Judged::Reply(reply, None),
            None => Judged::Accepted(Accepted {
                route,
                scheme,
                key,
                reserved: None,
                repeat: false,
            }),
        });
    };
    let id = replay::replay_id(
        route.name.as_bytes(),
        signed.family().as_bytes(),
        signed.digest(),
    );
    let fingerprint = fingerprint(route, head, body, &signed);
    let now = u32::try_from(now.unix_secs()).unwrap_or(u32::MAX);
    let reserved = match &replay.fleet {
        None => reserve_locally(replay, store, &id, &fingerprint, now, create_cas)?,
        // This Envoy's memory answers what it can (a repeat it saw, tampering with a
        // fingerprint it knows); the fleet-wide store decides the rest. Local memory is
        // only a cache in front: when it fails, the fleet-wide store decides alone.
        Some(_) => match replay.cache.peek(store, &id, &fingerprint, now) {
            Ok(Some(refusal)) => Err(refusal),
            Ok(None) | Err(_) => {
                return Ok(Judged::Pending(Pending {
                    scheme,
                    key: key.to_string(),
                    id,
                    fingerprint,
                    now,
                    reply,
                }))
            }
        },
    };
    let verdict = Verdict {
        route,
        scheme,
        key,
        reply,
    };
    verdict.settled(replay, reserved, store, now)
}

fn check_freshness(route: &Route, time: Stamp, now: Stamp) -> Result<(), Rejection> {
    match route.freshness {
        Some(freshness) => timestamp::check_fresh(
            time,
            now,
            u64::from(freshness.max_age_secs),
            u64::from(freshness.max_future_secs),
            freshness.edges,
        ),
        None => Ok(()),
    }
}

/// What a [`Step::Fetch`] brought back (its status and body), kept in this Envoy's memory
/// for every worker: the key to judge the body with, or why there is none (503: the
/// provider retries).
pub fn keep_fetched(
    fetch: &Fetch,
    status: Option<u16>,
    body: &[u8],
    now: Stamp,
    store: &dyn SharedStore,
) -> Result<Vec<u8>, Rejection> {
    let unavailable = |why: String| {
        Rejection::new(
            Reason::KeyUnavailable,
            format!(
                "certificate {} through cluster {}: {why}",
                fetch.url, fetch.cluster
            ),
        )
    };
    match status {
        Some(200) => {}
        Some(status) => return Err(unavailable(format!("answered {status}"))),
        None => {
            return Err(unavailable(
                "no answer (reset, timeout or no cluster)".into(),
            ))
        }
    }
    let value = remote_key::keep(body, unix(now), fetch.subjects)
        .map_err(|why| unavailable(format!("the answer {why}")))?;
    // Unconditional: every worker that fetched the same URL keeps the same key.
    let _ = store.set(&fetch.cache_key(), &value, 0);
    let key = remote_key::kept(&value, unix(now)).ok_or_else(|| unavailable("expired".into()))?;
    Ok(key.to_vec())
}

fn unix(now: Stamp) -> u64 {
    u64::try_from(now.unix_secs()).unwrap_or(0)
}

/// A verified request the replay memory has answered for.
struct Verdict<'p> {
    route: &'p Route,
    scheme: &'static str,
    key: &'p str,
    reply: Option<Reply>,
}

impl<'p> Verdict<'p> {
    /// Forward (or answer the endpoint check), or refuse as the route says. An endpoint
    /// check answered here is delivered the moment it is answered: its reservation is
    /// settled so in this Envoy's memory now (the filter publishes it to a fleet-wide store).
    fn settled(
        self,
        replay: &Replay,
        reserved: Result<Reserved, Reservation>,
        store: &dyn SharedStore,
        now: u32,
    ) -> Result<Judged<'p>, Rejection> {
        let Verdict {
            route,
            scheme,
            key,
            reply,
        } = self;
        match (reserved, reply) {
            // Confirmed to the provider first: in flight until the filter has its answer.
            (Ok(reserved), Some(reply)) if reply.confirm.is_some() => {
                Ok(Judged::Reply(reply, Some(reserved)))
            }
            (Ok(reserved), Some(reply)) => {
                let settled = replay.cache.settle(
                    store,
                    &reserved.id,
                    &reserved.fingerprint,
                    Outcome::Delivered,
                    now,
                );
                settled.map_err(|error| {
                    Rejection::new(Reason::ReplayStoreUnavailable, error.to_string())
                })?;
                Ok(Judged::Reply(reply, Some(reserved)))
            }
            (Ok(reserved), None) => Ok(Judged::Accepted(Accepted {
                route,
                scheme,
                key,
                reserved: Some(reserved),
                repeat: false,
            })),
            // An endpoint check answered before: the same answer again (the provider may
            // not have received it); the application never sees either. What it confirmed
            // to the provider (SNS's subscription) is not confirmed again.
            (Err(Reservation::Duplicate), Some(reply)) => Ok(Judged::Reply(
                Reply {
                    confirm: None,
                    ..reply
                },
                None,
            )),
            (Err(Reservation::Duplicate | Reservation::InFlight), None)
                if replay.on_duplicate == OnDuplicate::Deliver =>
            {
                Ok(Judged::Accepted(Accepted {
                    route,
                    scheme,
                    key,
                    reserved: None,
                    repeat: true,
                }))
            }
            (Err(refusal), _) => Err(replay_refusal(refusal, replay.on_duplicate)),
        }
    }
}

/// The reservation in this Envoy's memory (shared data): reserved, or what the memory
/// found instead; a store failure is a refusal of its own (503).
fn reserve_locally(
    replay: &Replay,
    store: &dyn SharedStore,
    id: &[u8; 16],
    fingerprint: &[u8; 16],
    now: u32,
    create_cas: u32,
) -> Result<Result<Reserved, Reservation>, Rejection> {
    let (retry, forgot) = match replay
        .cache
        .reserve(store, id, fingerprint, now, create_cas)
    {
        Ok((Reservation::Fresh, forgot)) => (false, forgot),
        Ok((Reservation::Retry, _)) => (true, false),
        Ok((refusal, _)) => return Ok(Err(refusal)),
        Err(error) => {
            return Err(Rejection::new(
                Reason::ReplayStoreUnavailable,
                error.to_string(),
            ))
        }
    };
    Ok(Ok(Reserved {
        id: *id,
        fingerprint: *fingerprint,
        retry,
        remote: None,
        fail_open: false,
        forgot,
    }))
}

/// The verdict on a [`Step::Reserve`] request once the fleet-wide store answered, or
/// failed (including its timeout). Its answer is remembered locally, so repeats reaching
/// this Envoy need not ask again; a failure is handled by the route's `on_error` policy:
/// fail closed (503), or fail open, judged by this Envoy's memory alone.
pub fn on_reservation<'p>(
    route: &'p Route,
    pending: Pending,
    answer: Result<Answer, StoreError>,
    store: &dyn SharedStore,
    create_cas: u32,
) -> Step<'p> {
    let Some(replay) = &route.replay else {
        return Step::Reject(
            route,
            Rejection::new(Reason::ReplayStoreUnavailable, "route has no replay store"),
        );
    };
    let on_error = replay
        .fleet
        .as_ref()
        .map_or(OnError::FailClosed, |fleet| fleet.on_error());
    let Pending {
        scheme,
        key,
        id,
        fingerprint,
        now,
        reply,
    } = pending;
    let reserved = match answer {
        Ok(answer) => {
            // Best effort: a full or failing local slot only costs later round trips.
            let _ = replay
                .cache
                .remember(store, &id, answer.local_record(), now, create_cas);
            match answer.reservation {
                Reservation::Fresh | Reservation::Retry => Ok(Ok(Reserved {
                    id,
                    fingerprint,
                    retry: answer.reservation == Reservation::Retry,
                    remote: answer.claim(),
                    fail_open: false,
                    forgot: false,
                })),
                refusal => Ok(Err(refusal)),
            }
        }
        Err(error) => match on_error {
            OnError::FailClosed => Err(Rejection::new(
                Reason::ReplayStoreUnavailable,
                error.to_string(),
            )),
            OnError::FailOpen => reserve_locally(replay, store, &id, &fingerprint, now, create_cas)
                .map(|reserved| {
                    reserved.map(|reserved| Reserved {
                        fail_open: true,
                        ..reserved
                    })
                }),
        },
    };
    let verdict = Verdict {
        route,
        scheme,
        // Always found: the name came from this route's keys.
        key: route.key_name(&key).unwrap_or("unknown"),
        reply,
    };
    let judged = reserved.and_then(|reserved| verdict.settled(replay, reserved, store, now));
    match judged {
        Ok(Judged::Accepted(accepted)) => Step::Forward(accepted),
        Ok(Judged::Reply(reply, reserved)) => Step::Reply(route, reply, reserved),
        // settled_verdict never asks for a reservation or a key.
        Ok(Judged::Pending(_) | Judged::Fetch(_)) => Step::Reject(
            route,
            Rejection::new(Reason::ReplayStoreUnavailable, "unexpected reservation"),
        ),
        Err(rejection) => Step::Reject(route, rejection),
    }
}

/// Everything the application reads of the request that the identity (the whole signed
/// message) does not fix already: method, path and query, the headers it dispatches on (and
/// its `Content-Type` and `Content-Encoding`), how the signed message splits into the
/// request's parts, and the body unless it is signed whole. A captured delivery that comes
/// back with any of them changed has the same identity and another fingerprint: tampering,
/// also when it claims to be the provider's retry after a failed delivery.
fn fingerprint(route: &Route, head: &RequestHead, body: &[u8], signed: &Signed) -> [u8; 16] {
    let mut fingerprint = Digest16::new("cg3/fingerprint");
    fingerprint.part(head.first(":method").unwrap_or_default());
    fingerprint.part(head.first(":path").unwrap_or_default());
    // Each bound header present, by name, with all its values (absent ones add nothing).
    for name in &route.bound_headers {
        let count = head.all(name).count();
        if count > 0 {
            fingerprint.part(name.as_bytes());
            fingerprint.number(count as u64);
            for value in head.all(name) {
                fingerprint.part(value);
            }
        }
    }
    fingerprint.number(signed.split().len() as u64);
    for &length in signed.split() {
        fingerprint.number(length as u64);
    }
    fingerprint.part(if signed.covers_body() { b"" } else { body });
    fingerprint.finish()
}

fn replay_refusal(reservation: Reservation, on_duplicate: OnDuplicate) -> Rejection {
    let (reason, detail) = match reservation {
        Reservation::Duplicate => match on_duplicate {
            OnDuplicate::Ok | OnDuplicate::Deliver => (
                Reason::AlreadyDelivered,
                "already delivered; answered locally",
            ),
            OnDuplicate::Reject => (Reason::Duplicate, "already delivered"),
        },
        Reservation::InFlight => (Reason::InFlight, "an earlier delivery is still in flight"),
        Reservation::Tampered => (
            Reason::ReplayTampered,
            "signed message seen before in another request (method, path, query, dispatch headers, content type or body)",
        ),
        Reservation::Full => (
            Reason::ReplayCacheFull,
            "replay cache slot full of live entries (when_full: refuse, or none delivered to forget)",
        ),
        Reservation::Fresh | Reservation::Retry => {
            (Reason::ReplayStoreUnavailable, "unexpected reservation")
        }
    };
    Rejection::new(reason, detail)
}

/// Names the spelling and the prefix it reaches; the path itself is in the access log.
fn noncanonical(route: &Route, features: Features) -> Rejection {
    Rejection::new(
        Reason::NoncanonicalPath,
        format!(
            "path reaches prefix {} only as some servers read it ({}); protected paths must be sent canonically",
            route.path_prefix.as_str(),
            features.names()
        ),
    )
}

pub fn too_large(route: &Route) -> Rejection {
    Rejection::new(
        Reason::BodyTooLarge,
        format!("body exceeds max_body_bytes={}", route.max_body_bytes),
    )
}

/// `Content-Encoding` other than `identity`: the application (or a filter after this one)
/// would decode the bytes the signature covers into others.
fn encoded(head: &RequestHead) -> bool {
    head.all("content-encoding")
        .any(|value| !value.trim_ascii().eq_ignore_ascii_case(b"identity"))
}

fn unsupported(detail: String) -> Rejection {
    Rejection::new(Reason::UnsupportedMediaType, detail)
}

/// What can be refused at the headers of a route whose provider sends only some media: an
/// encoded body, or a `Content-Type` it never sends (absent only when the body is declared
/// empty or not declared at all: the body step decides then).
fn check_declared_media(media: Media, head: &RequestHead) -> Result<(), Rejection> {
    if !media.restricts() {
        return Ok(());
    }
    if encoded(head) {
        return Err(unsupported(
            "the body has a Content-Encoding; the provider sends none".to_string(),
        ));
    }
    let declared_empty = head.first("content-length").map(<[u8]>::trim_ascii) == Some(b"0");
    let content_type = ContentType::of(head);
    if content_type == ContentType::Absent || media.admits(content_type, declared_empty) {
        return Ok(());
    }
    Err(wrong_type(media, content_type))
}

fn wrong_type(media: Media, content_type: ContentType) -> Rejection {
    let expected = [
        (media.json.is_some(), "application/json"),
        (media.form, "application/x-www-form-urlencoded"),
        (media.text, "text/plain"),
    ]
    .iter()
    .filter(|(sent, _)| *sent)
    .map(|(_, name)| *name)
    .collect::<Vec<_>>()
    .join(" or ");
    let got = match content_type {
        ContentType::Absent => "no Content-Type",
        ContentType::Json => "application/json",
        ContentType::Form => "application/x-www-form-urlencoded",
        ContentType::Text => "text/plain",
        ContentType::Other => "another Content-Type (or a charset other than UTF-8)",
    };
    unsupported(format!(
        "the body has {got}; the provider sends {expected} (UTF-8)"
    ))
}

/// The body's type, once the whole body is here (`empty` or not): refused unless the
/// provider sends it.
fn check_media(media: Media, head: &RequestHead, empty: bool) -> Result<ContentType, Rejection> {
    let content_type = ContentType::of(head);
    if !media.restricts() {
        return Ok(content_type);
    }
    if encoded(head) || !media.admits(content_type, empty) {
        return Err(wrong_type(media, content_type));
    }
    Ok(content_type)
}

/// A verified body is what its type says, as the application's parser will read it: a
/// JSON document (UTF-8, of the top-level kind the provider sends), or a form that parses.
pub(crate) fn check_body(
    media: Media,
    content_type: ContentType,
    body: &[u8],
) -> Result<(), Rejection> {
    let malformed = |detail: &str| Rejection::new(Reason::MalformedBody, detail.to_string());
    match (content_type, media.json) {
        (ContentType::Json | ContentType::Text, Some(kind)) => {
            // serde_json skips an ignored string without checking its UTF-8: check it all.
            let text = std::str::from_utf8(body).map_err(|_| malformed("body is not UTF-8"))?;
            serde_json::from_str::<serde::de::IgnoredAny>(text)
                .map_err(|_| malformed("body is not JSON"))?;
            let top = text.trim_start().as_bytes().first();
            let fits = match kind {
                Json::Object => top == Some(&b'{'),
                Json::Array => top == Some(&b'['),
                Json::Either => matches!(top, Some(b'{' | b'[')),
            };
            if !fits {
                return Err(malformed(match kind {
                    Json::Object => "body is not a JSON object",
                    Json::Array => "body is not a JSON array",
                    Json::Either => "body is not a JSON object or array",
                }));
            }
            Ok(())
        }
        (ContentType::Form, _) if media.form => form::parse(body, form::MAX_PAIRS)
            .map(|_| ())
            .map_err(|e| malformed(&format!("form body has more than {} parameters", e.limit))),
        _ => Ok(()),
    }
}

/// Refuses early, before any buffering, a body whose declared length is over the limit.
fn check_declared_length(route: &Route, head: &RequestHead) -> Result<(), Rejection> {
    let declared = head
        .first("content-length")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > u64::from(route.max_body_bytes) => Err(too_large(route)),
        _ => Ok(()),
    }
}

/// Routes with `allowed_sources` accept callbacks only from there: the peer, or the client
/// a trusted proxy forwarded for.
fn check_source(
    route: &Route,
    head: &RequestHead,
    downstream: &dyn Downstream,
) -> Result<(), Rejection> {
    if route.allowed_sources.is_empty() {
        return Ok(());
    }
    let client = downstream.peer().and_then(|peer| {
        let forwarded = match head.lookup("x-forwarded-for") {
            Lookup::One(value) => Some(value),
            Lookup::Missing | Lookup::Duplicate => None,
        };
        net::client_address(peer, forwarded, &route.trusted_proxies)
    });
    match client {
        Some(address) if net::any_contains(&route.allowed_sources, address) => Ok(()),
        Some(address) => Err(Rejection::new(
            Reason::SourceNotAllowed,
            format!("source {address} is not in allowed_sources"),
        )),
        None => Err(Rejection::new(
            Reason::SourceNotAllowed,
            "source address unknown behind the trusted proxies",
        )),
    }
}

fn check_transport(
    route: &Route,
    head: &RequestHead,
    downstream: &dyn Downstream,
) -> Result<(), Rejection> {
    let secure = match route.transport {
        Transport::AllowPlainHttp => true,
        Transport::RequireTls => downstream.tls(),
        // A trusted proxy terminated TLS and said so; anything but exactly one
        // `x-forwarded-proto: https` from a trusted peer is not TLS.
        Transport::TrustForwardedProto => {
            downstream.tls()
                || (matches!(
                    head.lookup("x-forwarded-proto"),
                    Lookup::One(proto) if proto.eq_ignore_ascii_case(b"https")
                ) && from_trusted_proxy(route, downstream))
        }
    };
    if secure {
        Ok(())
    } else {
        Err(Rejection::new(
            Reason::TlsRequired,
            "callback arrived over plain HTTP",
        ))
    }
}

/// Without `trusted_proxies`, every peer is trusted (the operator vouches for the network).
fn from_trusted_proxy(route: &Route, downstream: &dyn Downstream) -> bool {
    route.trusted_proxies.is_empty()
        || downstream
            .peer()
            .is_some_and(|peer| net::any_contains(&route.trusted_proxies, peer))
}

#[cfg(test)]
pub(crate) mod tests;
