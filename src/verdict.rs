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
}

impl Reason {
    pub fn status(self) -> u16 {
        match self {
            Reason::MissingSignature => 401,
            Reason::MalformedHeader | Reason::DuplicateHeader => 400,
            Reason::SignatureMismatch | Reason::TlsRequired => 403,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Reason::MissingSignature => "missing_signature",
            Reason::MalformedHeader => "malformed_header",
            Reason::DuplicateHeader => "duplicate_header",
            Reason::SignatureMismatch => "signature_mismatch",
            Reason::TlsRequired => "tls_required",
        }
    }

    fn error(self) -> &'static str {
        match self.status() {
            400 => "bad_request",
            401 => "unauthorized",
            _ => "forbidden",
        }
    }
}

/// A refusal: the reason the sender sees, and a detail for the operator's log only.
/// Details name headers and problems, never header values or secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: Reason,
    pub detail: Cow<'static, str>,
}

impl Rejection {
    pub fn new(reason: Reason, detail: impl Into<Cow<'static, str>>) -> Self {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }

    pub fn status(&self) -> u16 {
        self.reason.status()
    }

    /// The local reply body: `{"error": "...", "reason": "..."}`. Both parts are fixed
    /// identifiers, so no escaping is needed.
    pub fn body(&self) -> String {
        format!(
            r#"{{"error":"{}","reason":"{}"}}"#,
            self.reason.error(),
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
    }

    #[test]
    fn body_is_valid_json_with_error_and_reason() {
        let r = Rejection::new(Reason::SignatureMismatch, "x");
        let v: serde_json::Value = serde_json::from_str(&r.body()).unwrap();
        assert_eq!(v["error"], "forbidden");
        assert_eq!(v["reason"], "signature_mismatch");
    }
}
