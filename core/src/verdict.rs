//! Why a request is refused, and how that is said to the sender and to the log.

use std::borrow::Cow;

/// A stable, machine-readable rejection reason. Each maps to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No complete signature/nonce pair of an accepted family is present.
    MissingSignature,
    /// A signature or nonce header is not what Vobiz sends (encoding, length, charset).
    MalformedHeader,
    /// A header the verdict depends on appears more than once.
    DuplicateHeader,
    /// Well-formed signatures were present and none verified.
    SignatureMismatch,
    /// The callback arrived over plain HTTP on a route that requires TLS.
    TlsRequired,
    /// A body the scheme must read (signed fields, form parameters) cannot be parsed, or
    /// once its signature verified, is not what its `Content-Type` says (a JSON object, a
    /// form).
    MalformedBody,
    /// The body's `Content-Type` (or `Content-Encoding`) is not one the route's provider
    /// sends: the application would parse the signed bytes as something else.
    UnsupportedMediaType,
    /// An authentic request whose signed time is older than the route's window: a replay
    /// or a delivery delayed past usefulness.
    Stale,
    /// An authentic request whose signed time is further ahead than clock skew explains.
    Future,
    /// The route checks the voice `timestamp` parameter, requires it, and it is absent.
    MissingTimestamp,
    /// The body is larger than the route's `max_body_bytes`.
    BodyTooLarge,
    /// A nonce (or event id) seen before with a different method, path or body: a replay
    /// with altered content.
    ReplayTampered,
    /// An exact repeat of a delivered callback, refused (`on_duplicate: reject`).
    Duplicate,
    /// An exact repeat of a delivered callback, answered 200 without delivering it again
    /// (`on_duplicate: ok`).
    AlreadyDelivered,
    /// An exact repeat while the first delivery is still in flight: the sender retries later.
    InFlight,
    /// The replay cache has no room for a new nonce; nothing live is ever evicted.
    ReplayCacheFull,
    /// The replay store failed or stayed contended: the nonce cannot be reserved.
    ReplayStoreUnavailable,
    /// The callback's source address is not in the route's `allowed_sources`.
    SourceNotAllowed,
    /// The path (or host-restricted route) is reached only through a spelling that servers
    /// read differently: escaped slashes, dot segments, `;` parameters, letter case, ...
    /// Providers call canonical URLs, so this is never a genuine callback.
    NoncanonicalPath,
    /// The plugin has no valid configuration (Envoy should have refused it): nothing passes.
    NotConfigured,
    /// Envoy refused to hand over the request's headers or body: nothing passes.
    HostError,
    /// The key the request names (SNS's signing certificate) could not be fetched: the
    /// provider retries.
    KeyUnavailable,
}

impl Reason {
    /// Every reason, for metrics that exist (at zero) before the first rejection.
    pub const ALL: [Reason; 22] = [
        Reason::MissingSignature,
        Reason::MalformedHeader,
        Reason::DuplicateHeader,
        Reason::SignatureMismatch,
        Reason::TlsRequired,
        Reason::MalformedBody,
        Reason::UnsupportedMediaType,
        Reason::Stale,
        Reason::Future,
        Reason::MissingTimestamp,
        Reason::BodyTooLarge,
        Reason::ReplayTampered,
        Reason::Duplicate,
        Reason::AlreadyDelivered,
        Reason::InFlight,
        Reason::ReplayCacheFull,
        Reason::ReplayStoreUnavailable,
        Reason::SourceNotAllowed,
        Reason::NoncanonicalPath,
        Reason::NotConfigured,
        Reason::HostError,
        Reason::KeyUnavailable,
    ];

    pub fn status(self) -> u16 {
        match self {
            Reason::MissingSignature => 401,
            Reason::MalformedHeader
            | Reason::DuplicateHeader
            | Reason::MalformedBody
            | Reason::NoncanonicalPath => 400,
            // Stale and future requests are well-formed and signed, but refused by policy:
            // resending the same bytes cannot succeed, so they are forbidden, not bad
            // requests, and not 401 (no credential would change the answer).
            Reason::SignatureMismatch
            | Reason::TlsRequired
            | Reason::Stale
            | Reason::Future
            | Reason::SourceNotAllowed => 403,
            Reason::MissingTimestamp => 400,
            Reason::BodyTooLarge => 413,
            Reason::UnsupportedMediaType => 415,
            Reason::ReplayTampered | Reason::Duplicate | Reason::InFlight => 409,
            Reason::AlreadyDelivered => 200,
            Reason::ReplayCacheFull
            | Reason::ReplayStoreUnavailable
            | Reason::NotConfigured
            | Reason::HostError
            | Reason::KeyUnavailable => 503,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Reason::MissingSignature => "missing_signature",
            Reason::MalformedHeader => "malformed_header",
            Reason::DuplicateHeader => "duplicate_header",
            Reason::SignatureMismatch => "signature_mismatch",
            Reason::TlsRequired => "tls_required",
            Reason::MalformedBody => "malformed_body",
            Reason::UnsupportedMediaType => "unsupported_media_type",
            Reason::Stale => "stale",
            Reason::Future => "future",
            Reason::MissingTimestamp => "missing_timestamp",
            Reason::BodyTooLarge => "body_too_large",
            Reason::ReplayTampered => "replay_tampered",
            Reason::Duplicate => "duplicate",
            Reason::AlreadyDelivered => "already_delivered",
            Reason::InFlight => "in_flight",
            Reason::ReplayCacheFull => "replay_cache_full",
            Reason::ReplayStoreUnavailable => "replay_store_unavailable",
            Reason::SourceNotAllowed => "source_not_allowed",
            Reason::NoncanonicalPath => "noncanonical_path",
            Reason::NotConfigured => "not_configured",
            Reason::HostError => "host_error",
            Reason::KeyUnavailable => "key_unavailable",
        }
    }
}

/// The `error` word of a local reply with this status.
fn error_word(status: u16) -> &'static str {
    match status {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        409 => "conflict",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        // A status a route's refusal_status chose.
        404 => "not_found",
        422 => "unprocessable",
        429 => "too_many_requests",
        _ if status < 500 => "rejected",
        _ => "unavailable",
    }
}

/// A refusal: the reason the sender sees, and a detail for the operator's log only.
/// Details name headers and problems, never header values or secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: Reason,
    pub detail: Cow<'static, str>,
    /// The reason's status, unless the provider requires another ([`Self::with_status`]).
    status: u16,
}

impl Rejection {
    /// A refusal for `reason`; control characters in `detail` (which may quote the
    /// request, as a JSON parser's error quotes a member's name) are escaped, since details
    /// go to log lines.
    pub fn new(reason: Reason, detail: impl Into<Cow<'static, str>>) -> Self {
        let detail = detail.into();
        let detail = match detail.chars().any(char::is_control) {
            false => detail,
            true => detail
                .chars()
                .map(|c| match c.is_control() {
                    true => c.escape_debug().to_string(),
                    false => c.to_string(),
                })
                .collect::<String>()
                .into(),
        };
        Rejection {
            reason,
            detail,
            status: reason.status(),
        }
    }

    /// The same refusal under the status a provider insists on (Discord checks that a bad
    /// signature is answered 401).
    pub fn with_status(self, status: u16) -> Self {
        Rejection { status, ..self }
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// The local reply body: `{"error": "...", "reason": "..."}`, or for the one local
    /// success, `{"result": "duplicate", "reason": "already_delivered"}`. Both parts are
    /// fixed identifiers, so no escaping is needed.
    pub fn body(&self) -> String {
        if self.status() < 400 {
            return format!(
                r#"{{"result":"duplicate","reason":"{}"}}"#,
                self.reason.code()
            );
        }
        format!(
            r#"{{"error":"{}","reason":"{}"}}"#,
            error_word(self.status),
            self.reason.code()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_contract() {
        assert_eq!(Reason::MissingSignature.status(), 401);
        assert_eq!(Reason::MalformedHeader.status(), 400);
        assert_eq!(Reason::DuplicateHeader.status(), 400);
        assert_eq!(Reason::SignatureMismatch.status(), 403);
        assert_eq!(Reason::TlsRequired.status(), 403);
        assert_eq!(Reason::MalformedBody.status(), 400);
        assert_eq!(Reason::Stale.status(), 403);
        assert_eq!(Reason::Future.status(), 403);
    }

    #[test]
    fn new_reasons_have_stable_codes() {
        assert_eq!(Reason::MalformedBody.code(), "malformed_body");
        assert_eq!(Reason::Stale.code(), "stale");
        assert_eq!(Reason::Future.code(), "future");
        let v: serde_json::Value =
            serde_json::from_str(&Rejection::new(Reason::Stale, "x").body()).unwrap();
        assert_eq!(v["error"], "forbidden");
        assert_eq!(v["reason"], "stale");
    }

    #[test]
    fn all_lists_every_reason_once_with_a_unique_code() {
        let codes: std::collections::HashSet<_> = Reason::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(codes.len(), Reason::ALL.len());
    }

    #[test]
    fn body_is_valid_json_with_error_and_reason() {
        let r = Rejection::new(Reason::SignatureMismatch, "x");
        let v: serde_json::Value = serde_json::from_str(&r.body()).unwrap();
        assert_eq!(v["error"], "forbidden");
        assert_eq!(v["reason"], "signature_mismatch");
    }

    #[test]
    fn control_characters_in_a_detail_are_escaped_for_the_log() {
        let r = Rejection::new(
            Reason::MalformedBody,
            "unknown field `Me\u{7f}ss\nage\u{1b}[31m`",
        );
        assert_eq!(r.detail, "unknown field `Me\\u{7f}ss\\nage\\u{1b}[31m`");
        assert!(matches!(
            Rejection::new(Reason::Stale, "plain").detail,
            Cow::Borrowed("plain")
        ));
    }
}
