//! The verdict on one request, in two steps: its headers, then, where the route needs it,
//! its complete body.

use std::borrow::Cow;

use crate::form;
use crate::policy::{OnDuplicate, Policy, Route, Scheme, Transport};
use crate::replay::{self, Reservation, SharedStore};
use crate::request::RequestHead;
use crate::timestamp;
use crate::verdict::{Reason, Rejection};
use crate::vobiz::voice::{Message, V3Construction, Verified, VoiceScheme};
use crate::vobiz::{kyc, sdk_v3, whatsapp};

#[derive(Debug)]
pub enum Step<'p> {
    /// No route protects this request.
    Unprotected,
    /// The verdict needs the complete body: call [`on_body`] with it.
    NeedBody(&'p Route),
    Forward(Accepted<'p>),
    Reject(&'p Route, Rejection),
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserved {
    pub id: [u8; 16],
    pub fingerprint: [u8; 16],
    /// An earlier delivery of the same request failed: this is the provider's retry.
    pub retry: bool,
}

/// Judges what the headers alone can: route, transport, size and signature headers.
/// `downstream_tls` is asked only when the route needs to know, since it costs a host call.
pub fn on_headers<'p>(
    policy: &'p Policy,
    head: &RequestHead,
    downstream_tls: impl FnOnce() -> bool,
) -> Step<'p> {
    let path = head.path_without_query();
    let authority = head.first(":authority").unwrap_or_default();
    let Some(route) = policy.route_for(path, authority) else {
        return Step::Unprotected;
    };
    match judge_headers(route, head, downstream_tls) {
        Ok(step) => step,
        Err(rejection) => Step::Reject(route, rejection),
    }
}

fn judge_headers<'p>(
    route: &'p Route,
    head: &RequestHead,
    downstream_tls: impl FnOnce() -> bool,
) -> Result<Step<'p>, Rejection> {
    check_transport(route.transport, head, downstream_tls)?;
    check_declared_length(route, head)?;
    match &route.scheme {
        Scheme::Voice(voice) => {
            let pairs = voice.read_pairs(head)?;
            let sdk_possible = voice.v3 != V3Construction::Docs && pairs.has_v3();
            let docs = (voice.v3 != V3Construction::Sdk)
                .then(|| {
                    voice.check(
                        &pairs,
                        Message::Docs {
                            path: head.path_without_query(),
                        },
                    )
                })
                .flatten();
            match docs {
                Some(verified) if !route.needs_body() && !sdk_possible => {
                    Ok(Step::Forward(accepted(route, &verified, None)))
                }
                None if !sdk_possible => Err(pairs.failure()),
                _ => Ok(Step::NeedBody(route)),
            }
        }
        Scheme::WhatsApp { .. } => {
            whatsapp::SCHEME.signature(head)?;
            Ok(Step::NeedBody(route))
        }
        Scheme::Kyc { .. } => {
            kyc::SCHEME.signature(head)?;
            Ok(Step::NeedBody(route))
        }
    }
}

fn accepted<'p>(
    route: &'p Route,
    verified: &Verified<'p, '_>,
    reserved: Option<Reserved>,
) -> Accepted<'p> {
    Accepted {
        route,
        scheme: verified.scheme(),
        key: verified.key,
        reserved,
    }
}

/// Judges a request whose route needed the body, once the body is complete: signatures
/// over the body, freshness, then the replay reservation.
pub fn on_body<'p>(
    route: &'p Route,
    head: &RequestHead,
    body: &[u8],
    now: i64,
    store: &dyn SharedStore,
    create_cas: u32,
) -> Step<'p> {
    match judge_body(route, head, body, now, store, create_cas) {
        Ok(accepted) => Step::Forward(accepted),
        Err(rejection) => Step::Reject(route, rejection),
    }
}

fn judge_body<'p>(
    route: &'p Route,
    head: &RequestHead,
    body: &[u8],
    now: i64,
    store: &dyn SharedStore,
    create_cas: u32,
) -> Result<Accepted<'p>, Rejection> {
    if body.len() > route.max_body_bytes as usize {
        return Err(too_large(route));
    }
    // What verified, the identity a replay would repeat, and the signed time if any.
    let (scheme, key, identity, signed_time): (_, _, Cow<[u8]>, _) = match &route.scheme {
        Scheme::Voice(voice) => {
            let verified = verify_voice(voice, head, body)?;
            let time = match route.freshness {
                Some(freshness) => voice_timestamp(head, body, freshness.required)?,
                None => None,
            };
            (
                verified.scheme(),
                verified.key,
                Cow::Owned(verified.nonce.to_vec()),
                time,
            )
        }
        Scheme::WhatsApp { keys } => {
            let verified = whatsapp::verify(keys, head, body)?;
            let whatsapp::Event {
                event_id,
                occurred_at,
            } = verified.event;
            (
                "whatsapp",
                verified.key,
                Cow::Owned(event_id.into_bytes()),
                Some(occurred_at),
            )
        }
        // No delivery id is signed: the body itself is the identity, so only an exact
        // repeat matches, and it is a duplicate or a retry, never tampering.
        Scheme::Kyc { keys } => (
            "kyc",
            kyc::verify(keys, head, body)?,
            Cow::Borrowed(body),
            None,
        ),
    };
    if let (Some(freshness), Some(time)) = (route.freshness, signed_time) {
        timestamp::check_fresh(
            time,
            now,
            u64::from(freshness.max_age_secs),
            u64::from(freshness.max_future_secs),
        )?;
    }
    let reserved = match &route.replay {
        Some(replay) => {
            let id = replay::replay_id(route.name.as_bytes(), &identity);
            let method = head.first(":method").unwrap_or_default();
            let path = head.first(":path").unwrap_or_default();
            let fingerprint = replay::fingerprint(method, path, body);
            let now = u32::try_from(now).unwrap_or(u32::MAX);
            let retry = match replay
                .cache
                .reserve(store, &id, &fingerprint, now, create_cas)
            {
                Ok(Reservation::Fresh) => false,
                Ok(Reservation::Retry) => true,
                Ok(refusal) => return Err(replay_refusal(refusal, replay.on_duplicate)),
                Err(error) => {
                    return Err(Rejection::new(
                        Reason::ReplayStoreUnavailable,
                        error.to_string(),
                    ))
                }
            };
            Some(Reserved {
                id,
                fingerprint,
                retry,
            })
        }
        None => None,
    };
    Ok(Accepted {
        route,
        scheme,
        key,
        reserved,
    })
}

/// The docs' V3/V2 where allowed, else the SDK's V3 over the request's parameters.
fn verify_voice<'p, 'r>(
    voice: &'p VoiceScheme,
    head: &RequestHead<'r>,
    body: &[u8],
) -> Result<Verified<'p, 'r>, Rejection> {
    let pairs = voice.read_pairs(head)?;
    if voice.v3 != V3Construction::Sdk {
        if let Some(verified) = voice.check(
            &pairs,
            Message::Docs {
                path: head.path_without_query(),
            },
        ) {
            return Ok(verified);
        }
    }
    if voice.v3 != V3Construction::Docs && pairs.has_v3() {
        let method = head.first(":method").and_then(sdk_v3::Method::from_bytes);
        if let Some(method) = method {
            let params = match method {
                sdk_v3::Method::Post => form_params(body)?,
                sdk_v3::Method::Get => Vec::new(),
            };
            let path = head.first(":path").unwrap_or_default();
            let url = sdk_v3::signed_url(method, voice.origin.as_bytes(), path, &params)?;
            if let Some(verified) = voice.check(&pairs, Message::Sdk { url: &url }) {
                return Ok(verified);
            }
        }
    }
    Err(pairs.failure())
}

fn form_params(body: &[u8]) -> Result<Vec<(String, String)>, Rejection> {
    form::parse(body, form::MAX_PAIRS).map_err(|e| {
        Rejection::new(
            Reason::MalformedBody,
            format!("form body has more than {} parameters", e.limit),
        )
    })
}

/// The voice `timestamp` parameter (body for POST, query for GET). Unsigned, so only a
/// sanity check: an absent one passes unless the route requires it.
fn voice_timestamp(
    head: &RequestHead,
    body: &[u8],
    required: bool,
) -> Result<Option<i64>, Rejection> {
    let path = head.first(":path").unwrap_or_default();
    let query = path
        .iter()
        .position(|&b| b == b'?')
        .map_or(&[][..], |q| &path[q + 1..]);
    let source = if head.first(":method") == Some(b"GET") {
        query
    } else {
        body
    };
    let params = form_params(source)?;
    match params.iter().find(|(name, _)| name == "timestamp") {
        Some((_, value)) => timestamp::parse_assume_utc(value.as_bytes())
            .map(Some)
            .ok_or_else(|| {
                Rejection::new(
                    Reason::MalformedBody,
                    "timestamp is not an ISO 8601 date-time",
                )
            }),
        None if required => Err(Rejection::new(
            Reason::MissingTimestamp,
            "no timestamp parameter",
        )),
        None => Ok(None),
    }
}

fn replay_refusal(reservation: Reservation, on_duplicate: OnDuplicate) -> Rejection {
    let (reason, detail) = match reservation {
        Reservation::Duplicate => match on_duplicate {
            OnDuplicate::Ok => (
                Reason::AlreadyDelivered,
                "already delivered; answered locally",
            ),
            OnDuplicate::Reject => (Reason::Duplicate, "already delivered"),
        },
        Reservation::InFlight => (Reason::InFlight, "an earlier delivery is still in flight"),
        Reservation::Tampered => (
            Reason::ReplayTampered,
            "nonce seen before with a different method, path or body",
        ),
        Reservation::Full => (
            Reason::ReplayCacheFull,
            "replay cache slot full of live entries",
        ),
        Reservation::Fresh | Reservation::Retry => {
            (Reason::ReplayStoreUnavailable, "unexpected reservation")
        }
    };
    Rejection::new(reason, detail)
}

pub fn too_large(route: &Route) -> Rejection {
    Rejection::new(
        Reason::BodyTooLarge,
        format!("body exceeds max_body_bytes={}", route.max_body_bytes),
    )
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

fn check_transport(
    transport: Transport,
    head: &RequestHead,
    downstream_tls: impl FnOnce() -> bool,
) -> Result<(), Rejection> {
    let secure = match transport {
        Transport::AllowPlainHttp => true,
        Transport::RequireTls => downstream_tls(),
        // A trusted proxy terminated TLS and said so; anything but exactly `https` is not TLS.
        Transport::TrustForwardedProto => {
            downstream_tls()
                || head
                    .first("x-forwarded-proto")
                    .is_some_and(|proto| proto.eq_ignore_ascii_case(b"https"))
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
