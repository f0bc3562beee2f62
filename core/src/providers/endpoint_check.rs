//! The endpoint checks a provider sends before (or between) deliveries that carry no
//! signature, answered at the headers: a route's `endpoint_check` (in a `generic` or
//! `token` block), when `answer_handshakes` is on.
//!
//! | kind | request | answer (200) | providers |
//! | --- | --- | --- | --- |
//! | `query_echo` | `param` in the query | its value, `text/plain` | Dropbox (`challenge`), Microsoft Graph (`POST ?validationToken=`) |
//! | `header_echo` | `header` present | its value, `text/plain`, or `{"<json_field>": value}` | Worldline, Okta (`x-okta-verification-challenge` → `verification`) |
//! | `crc` | `param` in the query | `{"<field>": "<prefix>" base64(HMAC(key, value))}` | Twitter/X (`crc_token` → `response_token`, `sha256=`) |
//! | `ok` | any `GET` or `HEAD` | nothing | URL probes (Mandrill's `HEAD`) |
//!
//! The echoed value is 1 to [`MAX_ECHO_BYTES`] printable ASCII characters (Microsoft
//! Graph's tokens have spaces), answered `text/plain` with `nosniff`. A CRC token is more: the answer is a MAC under the route's
//! key over bytes the caller chose, so it is refused unless made only of the characters of
//! a token (letters, digits, `-_=+/.`), which no JSON body can be; and a `crc` check is
//! allowed only where the signature covers the body alone and the body is JSON (see
//! [`Check::needs_json_body`]).

use base64::Engine;
use serde::Deserialize;

use crate::keys::{Algorithm, Key};
use crate::providers::generic::header_name;
use crate::providers::{form_pairs, query_param, Reply};
use crate::request::{Lookup, RequestHead};
use crate::verdict::{Reason, Rejection};

/// An `endpoint_check` block.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Raw {
    QueryEcho {
        param: String,
        #[serde(default)]
        method: Option<String>,
    },
    HeaderEcho {
        header: String,
        #[serde(default)]
        json_field: Option<String>,
        #[serde(default)]
        method: Option<String>,
    },
    Crc {
        param: String,
        field: String,
        #[serde(default)]
        prefix: String,
        #[serde(default)]
        method: Option<String>,
    },
    Ok {
        #[serde(default)]
        method: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The request method it answers (uppercase).
    pub method: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    QueryEcho {
        param: String,
    },
    HeaderEcho {
        header: String,
        json_field: Option<String>,
    },
    Crc {
        param: String,
        field: String,
        prefix: String,
    },
    Ok,
}

/// Compiles a block; problems are `(field under endpoint_check, problem)`.
pub fn compile(raw: Raw) -> Result<Check, (String, String)> {
    let header = |name: &str| {
        header_name(name).map_err(|problem| ("header".to_string(), problem.to_string()))
    };
    let (method, kind) = match raw {
        Raw::QueryEcho { param, method } => (method, Kind::QueryEcho { param }),
        Raw::HeaderEcho {
            header: name,
            json_field,
            method,
        } => (
            method,
            Kind::HeaderEcho {
                header: header(&name)?,
                json_field,
            },
        ),
        Raw::Crc {
            param,
            field,
            prefix,
            method,
        } => (
            method,
            Kind::Crc {
                param,
                field,
                prefix,
            },
        ),
        Raw::Ok { method } => (method, Kind::Ok),
    };
    if let Kind::QueryEcho { param } | Kind::Crc { param, .. } = &kind {
        if param.is_empty() {
            return Err(("param".into(), "names no query parameter".into()));
        }
    }
    let method = method.unwrap_or_else(|| "GET".to_string());
    // An `ok` answers every request of its method unverified: never the delivery method.
    if kind == Kind::Ok && method != "GET" {
        return Err((
            "method".into(),
            "an ok check answers every request of its method unread: only GET (and HEAD)".into(),
        ));
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err((
            "method".into(),
            "must be an HTTP method in capitals (GET, POST, ...)".into(),
        ));
    }
    Ok(Check { method, kind })
}

/// Longest value echoed: Microsoft Graph's tokens, the longest, are about 200 characters.
pub const MAX_ECHO_BYTES: usize = 512;

/// A value the edge may echo, naming `what` when it is not 1 to [`MAX_ECHO_BYTES`]
/// printable ASCII characters.
fn echoable<'v>(value: &'v [u8], what: &str) -> Result<&'v str, Rejection> {
    let printable = |b: &u8| (b' '..=b'~').contains(b);
    match std::str::from_utf8(value) {
        Ok(text)
            if !text.is_empty() && text.len() <= MAX_ECHO_BYTES && value.iter().all(printable) =>
        {
            Ok(text)
        }
        _ => Err(Rejection::new(
            Reason::MalformedHeader,
            format!("{what} is not 1 to {MAX_ECHO_BYTES} printable ASCII characters"),
        )),
    }
}

/// A CRC token: what a provider sends (Twitter's are base64), never a JSON document.
fn token_like(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_=+/.".contains(&b))
}

impl Check {
    /// Whether the check answers a MAC over bytes the caller chose: then the scheme must
    /// sign the JSON body alone, which no answer can be.
    pub fn needs_json_body(&self) -> bool {
        matches!(self.kind, Kind::Crc { .. })
    }

    /// The answer to `head`, when it is this check; `None` for every other request. `key`
    /// is the route's first key (a CRC answer: list the current key first while rotating),
    /// `algorithm` its MAC's hash.
    pub fn answer(
        &self,
        head: &RequestHead,
        key: Option<&Key>,
        algorithm: Algorithm,
    ) -> Result<Option<Reply>, Rejection> {
        let method = head.first(":method").unwrap_or_default();
        let head_of_get = self.method == "GET" && method == b"HEAD";
        if method != self.method.as_bytes() && !head_of_get {
            return Ok(None);
        }
        match &self.kind {
            Kind::Ok => Ok(Some(Reply::text("ok", b""))),
            Kind::QueryEcho { param } => {
                Ok(query(head, param)?.map(|value| Reply::text("query_echo", value.as_bytes())))
            }
            Kind::HeaderEcho { header, json_field } => {
                let value = match head.lookup(header) {
                    Lookup::Missing => return Ok(None),
                    Lookup::Duplicate => {
                        return Err(Rejection::new(
                            Reason::DuplicateHeader,
                            format!("{header} appears more than once"),
                        ))
                    }
                    Lookup::One(value) => value,
                };
                let text = echoable(value, header)?;
                Ok(Some(match json_field {
                    Some(field) => Reply::json("header_echo", &[(field, text)]),
                    None => Reply::text("header_echo", text.as_bytes()),
                }))
            }
            Kind::Crc {
                param,
                field,
                prefix,
            } => {
                let Some(token) = query(head, param)? else {
                    return Ok(None);
                };
                if !token_like(&token) {
                    return Err(Rejection::new(
                        Reason::MalformedHeader,
                        format!("query parameter {param} is not a token (letters, digits, -_=+/.)"),
                    ));
                }
                let Some(key) = key else {
                    return Ok(None);
                };
                let mac = key.mac_with(algorithm, &[token.as_bytes()]);
                let response = format!(
                    "{prefix}{}",
                    base64::engine::general_purpose::STANDARD.encode(mac)
                );
                Ok(Some(Reply::json("crc", &[(field, &response)])))
            }
        }
    }
}

/// Query parameter `name`, decoded, once and [echoable]; `None` when absent.
fn query(head: &RequestHead, name: &str) -> Result<Option<String>, Rejection> {
    let pairs = form_pairs(head.query(), Reason::MalformedHeader, "the query")?;
    match query_param(&pairs, name)? {
        None => Ok(None),
        Some(value) => {
            let what = format!("query parameter {name}");
            Ok(Some(echoable(value.as_bytes(), &what)?.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::test_key;
    use crate::request::Header;

    fn check(block: &str) -> Check {
        compile(serde_json::from_str(block).unwrap()).unwrap()
    }

    fn ask(
        check: &Check,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Option<Reply>, Reason> {
        let mut head: Vec<Header> = vec![
            (":method".into(), method.as_bytes().to_vec()),
            (":path".into(), path.as_bytes().to_vec()),
        ];
        head.extend(
            headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())),
        );
        let key = test_key("k", "consumer-secret");
        check
            .answer(&RequestHead::new(&head), Some(&key), Algorithm::Sha256)
            .map_err(|e| e.reason)
    }

    #[test]
    fn a_query_challenge_is_echoed_as_plain_text_decoded() {
        let dropbox = check(r#"{"kind": "query_echo", "param": "challenge"}"#);
        let reply = ask(&dropbox, "GET", "/hook?challenge=a%2Bb", &[])
            .unwrap()
            .unwrap();
        assert_eq!(
            (reply.content_type, reply.body),
            ("text/plain", b"a+b".to_vec())
        );
        assert_eq!(ask(&dropbox, "GET", "/hook", &[]), Ok(None));
        assert_eq!(ask(&dropbox, "POST", "/hook?challenge=x", &[]), Ok(None));
        for path in [
            "/hook?challenge=",
            "/hook?challenge=%0Ax",
            "/hook?challenge=%C3%A9",
            "/hook?challenge=a&challenge=b",
        ] {
            assert!(ask(&dropbox, "GET", path, &[]).is_err(), "{path}");
        }
        let graph =
            check(r#"{"kind": "query_echo", "param": "validationToken", "method": "POST"}"#);
        let reply = ask(
            &graph,
            "POST",
            "/n?validationToken=Validation%3A+Testing",
            &[],
        )
        .unwrap()
        .unwrap();
        assert_eq!(reply.body, b"Validation: Testing".to_vec());
        assert!(ask(&graph, "GET", "/n?validationToken=x", &[])
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_header_challenge_is_echoed_as_text_or_in_json() {
        let okta = check(
            r#"{"kind": "header_echo", "header": "X-Okta-Verification-Challenge", "json_field": "verification"}"#,
        );
        let reply = ask(
            &okta,
            "GET",
            "/o",
            &[("x-okta-verification-challenge", "abc\"1")],
        )
        .unwrap()
        .unwrap();
        assert_eq!(reply.body, br#"{"verification":"abc\"1"}"#.to_vec());
        let worldline =
            check(r#"{"kind": "header_echo", "header": "X-GCS-Webhooks-Endpoint-Verification"}"#);
        let reply = ask(
            &worldline,
            "GET",
            "/w",
            &[("x-gcs-webhooks-endpoint-verification", "v1")],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (reply.content_type, reply.body),
            ("text/plain", b"v1".to_vec())
        );
        assert_eq!(ask(&worldline, "GET", "/w", &[]), Ok(None));
    }

    /// Twitter's documented construction: base64 HMAC-SHA256 of the token under the
    /// consumer secret, `sha256=` before it.
    #[test]
    fn a_crc_is_answered_with_the_mac_of_a_token_and_nothing_else() {
        let twitter = check(
            r#"{"kind": "crc", "param": "crc_token", "field": "response_token", "prefix": "sha256="}"#,
        );
        let reply = ask(&twitter, "GET", "/t?crc_token=Y3JjLXRva2Vu", &[])
            .unwrap()
            .unwrap();
        let mac = test_key("k", "consumer-secret").mac(&[b"Y3JjLXRva2Vu"]);
        let expected = format!(
            r#"{{"response_token":"sha256={}"}}"#,
            base64::engine::general_purpose::STANDARD.encode(mac)
        );
        assert_eq!(String::from_utf8(reply.body).unwrap(), expected);
        // A JSON body to have signed is never a token.
        for forged in ["%7B%22a%22%3A1%7D", "%5B1%5D", "a%20b", "a%22b"] {
            let path = format!("/t?crc_token={forged}");
            assert_eq!(
                ask(&twitter, "GET", &path, &[]),
                Err(Reason::MalformedHeader),
                "{forged}"
            );
        }
    }

    #[test]
    fn ok_answers_get_and_head() {
        let probe = check(r#"{"kind": "ok"}"#);
        assert!(ask(&probe, "GET", "/p", &[]).unwrap().is_some());
        assert!(ask(&probe, "HEAD", "/p", &[]).unwrap().is_some());
        assert_eq!(ask(&probe, "POST", "/p", &[]), Ok(None));
    }

    #[test]
    fn a_block_names_what_is_wrong_with_it() {
        let problem = |block: &str| compile(serde_json::from_str(block).unwrap()).unwrap_err().0;
        assert_eq!(problem(r#"{"kind": "query_echo", "param": ""}"#), "param");
        assert_eq!(problem(r#"{"kind": "ok", "method": "get"}"#), "method");
        assert_eq!(problem(r#"{"kind": "ok", "method": "POST"}"#), "method");
        assert_eq!(
            problem(r#"{"kind": "header_echo", "header": "a b"}"#),
            "header"
        );
        assert!(serde_json::from_str::<Raw>(r#"{"kind": "ok", "param": "x"}"#).is_err());
    }
}
