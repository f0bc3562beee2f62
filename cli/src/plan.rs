//! Builds the requests to send, signed with the filter's own signing code, and renders
//! them for `--dry-run`.

use base64::Engine;
use callback_guard::form;
use callback_guard::keys::Key;
use callback_guard::providers::vobiz::sdk_v3;
use callback_guard::providers::vobiz::voice::{Brand, Family, Message};
use callback_guard::providers::vobiz::{kyc, whatsapp};
use callback_guard::providers::{github, shopify, slack, standard_webhooks, stripe, twilio};
use callback_guard::timestamp;

use crate::cli::{
    self, Common, Construction, KycArgs, Method, Provider, Tamper, VoiceArgs, WebhookArgs,
    WhatsappArgs,
};
use crate::util;

pub type Error = String;

/// `scheme://authority`, path and query of a URL, as written (the fragment, never sent,
/// is dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub origin: String,
    pub path: String,
    pub query: Option<String>,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, Error> {
        let scheme_end = url
            .find("://")
            .filter(|&i| {
                let scheme = &url[..i];
                scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
            })
            .ok_or_else(|| format!("{url:?} is not an http:// or https:// URL"))?;
        let rest = &url[scheme_end + 3..];
        let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if authority_len == 0 {
            return Err(format!("{url:?} has no host"));
        }
        // Path and query as the HTTP client will send them (it percent-encodes what must
        // be, and resolves dot segments), so that what is signed is what is sent.
        let parsed = url::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
        Ok(Target {
            origin: url[..scheme_end + 3 + authority_len].to_string(),
            path: parsed.path().to_string(),
            query: parsed.query().map(str::to_string),
        })
    }

    /// The request target as sent on the request line: path and query.
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(query) => format!("{}?{query}", self.path),
            None => self.path.clone(),
        }
    }

    pub fn url(&self) -> String {
        format!("{}{}", self.origin, self.path_and_query())
    }

    fn add_query(&mut self, params: &str) {
        self.query = Some(match self.query.take() {
            Some(query) if !query.is_empty() => format!("{query}&{params}"),
            _ => params.to_string(),
        });
    }
}

/// What a header is, so that `--tamper` can alter the right ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Plain,
    /// Carries `mac`, rendered as `format` says.
    Signature {
        mac: Vec<u8>,
        format: Format,
    },
    Nonce,
}

/// How a MAC is written into its header, after a fixed prefix (`sha256=`, `v1,`,
/// `t=<time>,v1=`, or nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    Base64 { prefix: String },
    Hex { prefix: String },
}

impl Format {
    fn base64() -> Format {
        Format::Base64 {
            prefix: String::new(),
        }
    }

    fn hex(prefix: &str) -> Format {
        Format::Hex {
            prefix: prefix.to_string(),
        }
    }

    fn render(&self, mac: &[u8]) -> String {
        match self {
            Format::Base64 { prefix } => {
                format!(
                    "{prefix}{}",
                    base64::engine::general_purpose::STANDARD.encode(mac)
                )
            }
            Format::Hex { prefix } => format!("{prefix}{}", util::hex(mac)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
    pub role: Role,
}

/// A header name as Vobiz spells it on the wire: `x-vobiz-signature-ma-v3` is
/// `X-Vobiz-Signature-MA-V3`.
fn wire_name(lowercase: &str) -> String {
    lowercase
        .split('-')
        .map(|word| match word {
            "ma" => "MA".to_string(),
            word => {
                let mut chars = word.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

impl Header {
    fn plain(name: &str, value: impl Into<String>) -> Header {
        Header {
            name: wire_name(name),
            value: value.into(),
            role: Role::Plain,
        }
    }

    fn signature(name: &str, mac: &[u8], format: Format) -> Header {
        Header {
            name: wire_name(name),
            value: format.render(mac),
            role: Role::Signature {
                mac: mac.to_vec(),
                format,
            },
        }
    }
}

/// One signed message, for `--dry-run`: what was MACed and under which option's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// `v3`, `ma_v3`, ... or `body`.
    pub what: &'static str,
    /// The option that holds the key (never the key itself).
    pub key: &'static str,
    /// The exact MAC input.
    pub message: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: &'static str,
    pub target: Target,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
    pub signed: Vec<Signed>,
    /// How this request came about: the genuine one, a replay, or a tampered copy.
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Genuine,
    Replay,
    Tampered(Tamper),
}

impl Request {
    pub fn label(&self) -> String {
        match self.kind {
            Kind::Genuine => String::new(),
            Kind::Replay => " (replay)".to_string(),
            Kind::Tampered(part) => format!(" (tampered {})", part.name()),
        }
    }

    pub fn is_json(&self) -> bool {
        self.body.first() == Some(&b'{')
    }
}

/// The genuine request, its `--replay` copies and the `--tamper`ed copy, in sending order.
pub fn sequence(genuine: Request, common: &Common) -> Result<Vec<Request>, Error> {
    let genuine = apply_headers(genuine, &common.headers);
    let mut all = vec![genuine.clone()];
    for _ in 0..common.replay {
        all.push(Request {
            kind: Kind::Replay,
            ..genuine.clone()
        });
    }
    if let Some(part) = common.tamper {
        all.push(tamper(&genuine, part)?);
    }
    Ok(all)
}

/// `--header`: replaces every generated header of the same name, or adds it; an empty
/// value only removes. Repeated X- headers are all sent.
fn apply_headers(mut request: Request, extra: &[(String, String)]) -> Request {
    let mut replaced: Vec<&str> = Vec::new();
    for (name, _) in extra {
        if !replaced.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            request
                .headers
                .retain(|h| !h.name.eq_ignore_ascii_case(name));
            replaced.push(name);
        }
    }
    for (name, value) in extra {
        // The HTTP client repeats only X- headers; another name keeps its last value.
        if !name.to_ascii_lowercase().starts_with("x-") {
            request
                .headers
                .retain(|h| !h.name.eq_ignore_ascii_case(name));
        }
        if !value.is_empty() {
            request.headers.push(Header {
                name: name.clone(),
                value: value.clone(),
                role: Role::Plain,
            });
        }
    }
    request
}

/// A copy of `genuine` altered in `part`, with the genuine signature headers (except when
/// the signature itself is the part altered).
pub fn tamper(genuine: &Request, part: Tamper) -> Result<Request, Error> {
    let mut request = Request {
        kind: Kind::Tampered(part),
        signed: Vec::new(),
        ..genuine.clone()
    };
    match part {
        Tamper::Body if request.method == "GET" => {
            return Err(
                "--tamper body: a GET callback has no body (its parameters are in the query); \
                 use --tamper query"
                    .into(),
            )
        }
        Tamper::Body if request.is_json() && request.body.ends_with(b"}") => {
            request.body.pop();
            let empty = request.body.trim_ascii() == b"{";
            let member = if empty {
                "\"tampered\":true}"
            } else {
                ",\"tampered\":true}"
            };
            request.body.extend_from_slice(member.as_bytes());
        }
        Tamper::Body => {
            if !request.body.is_empty() {
                request.body.push(b'&');
            }
            request.body.extend_from_slice(b"Tampered=1");
        }
        Tamper::Query => request.target.add_query("tampered=1"),
        Tamper::Path => {
            let suffix = if request.target.path.ends_with('/') {
                "tampered"
            } else {
                "-tampered"
            };
            request.target.path.push_str(suffix);
        }
        Tamper::Signature => {
            let mut found = false;
            for header in &mut request.headers {
                if let Role::Signature { mac, format } = &mut header.role {
                    mac[0] ^= 1;
                    header.value = format.render(mac);
                    found = true;
                }
            }
            if !found {
                return Err("--tamper signature: no signature header left to alter".into());
            }
        }
        Tamper::Nonce => {
            let mut found = false;
            for header in &mut request.headers {
                if header.role == Role::Nonce {
                    header.value = util::new_nonce()?;
                    found = true;
                }
            }
            if !found {
                return Err("--tamper nonce: only voice callbacks carry a nonce \
                            (a webhook's event id is in the signed body: use --tamper body)"
                    .into());
            }
        }
    }
    Ok(request)
}

fn key(name: &str, secret: &str) -> Result<Key, Error> {
    Key::new(name, secret.as_bytes()).map_err(|_| format!("{name}: unusable key"))
}

/// A realistic answer-URL request body, as captured from real Vobiz traffic.
pub fn default_voice_form() -> Result<String, Error> {
    let (secs, micros) = util::now();
    let (date, time) = util::civil(secs);
    let session_start = format!("{date}+{}.{micros:06}", time.replace(':', "%3A"));
    Ok(format!(
        "BillRate=0&CallStatus=ringing&CallUUID={}&CallerName=%2B919876543210&CountryCode=\
         &Direction=inbound&Event=StartApp&From=919876543210&ParentAuthID=MA_SIMULATOR\
         &RouteType=&STIRAttestation=Not+Applicable&STIRVerification=Not+Applicable\
         &SessionStart={session_start}&To=918071387000",
        util::new_uuid()?
    ))
}

pub fn voice(args: &VoiceArgs) -> Result<Request, Error> {
    let mut target = Target::parse(&args.common.url).map_err(|e| format!("--url {e}"))?;
    let origin = match &args.origin {
        Some(origin) => {
            let parsed = Target::parse(origin).map_err(|e| format!("--origin {e}"))?;
            if parsed.origin != *origin {
                return Err(format!(
                    "--origin {origin:?} is scheme://authority only, without path or query"
                ));
            }
            parsed.origin
        }
        None => target.origin.clone(),
    };
    let families = if args.families.is_empty() {
        let mut families = Vec::new();
        if args.token.is_some() {
            families.push(Family::V3);
        }
        if args.parent_token.is_some() {
            families.push(Family::MaV3);
        }
        families
    } else {
        args.families.clone()
    };
    let own = args
        .token
        .as_deref()
        .map(|t| key("--token", t))
        .transpose()?;
    let parent = args
        .parent_token
        .as_deref()
        .map(|t| key("--parent-token", t))
        .transpose()?;

    let form = match &args.form {
        Some(form) => form.clone(),
        None => default_voice_form()?,
    };
    let (method, sdk_method, body) = match args.method {
        Method::Post => ("POST", sdk_v3::Method::Post, form.into_bytes()),
        Method::Get => {
            if !form.is_empty() {
                target.add_query(&form);
            }
            ("GET", sdk_v3::Method::Get, Vec::new())
        }
    };

    let nonce_v3 = match &args.nonce {
        Some(nonce) => nonce.clone(),
        None => util::new_nonce()?,
    };
    let nonce_v2 = match (&args.nonce_v2, &args.nonce) {
        (Some(nonce), _) | (None, Some(nonce)) => nonce.clone(),
        (None, None) => util::new_nonce()?,
    };
    let sdk_url = if args.construction == Construction::Sdk {
        let params = form::parse(&body, form::MAX_PAIRS)
            .map_err(|e| format!("--form has more than {} parameters", e.limit))?;
        let url = sdk_v3::signed_url(
            sdk_method,
            origin.as_bytes(),
            target.path_and_query().as_bytes(),
            &params,
        )
        .map_err(|rejection| {
            format!(
                "the SDK construction cannot sign this: {}",
                rejection.detail
            )
        })?;
        Some(url)
    } else {
        None
    };

    let mut headers = Vec::new();
    if method == "POST" {
        headers.push(Header::plain(
            "content-type",
            "application/x-www-form-urlencoded",
        ));
    }
    headers.push(Header::plain("user-agent", "Vobiz"));
    let mut signed = Vec::new();
    let mut nonce_headers: Vec<&str> = Vec::new();
    for (i, &family) in families.iter().enumerate() {
        if families[..i].contains(&family) {
            continue; // listed twice: one header
        }
        let (key, option) = match (family.uses_parent_key(), &own, &parent) {
            (false, Some(key), _) => (key, "--token"),
            (true, _, Some(key)) => (key, "--parent-token"),
            (false, None, _) => return Err(format!("--families {}: needs --token", family.name())),
            (true, _, None) => {
                return Err(format!(
                    "--families {}: needs --parent-token",
                    family.name()
                ))
            }
        };
        let nonce = if family.is_v3() { &nonce_v3 } else { &nonce_v2 };
        let message = match (&sdk_url, family.is_v3()) {
            (Some(url), true) => Message::Sdk { url },
            _ => Message::Docs {
                path: target.path.as_bytes(),
            },
        };
        let parts = family.signed_parts(origin.as_bytes(), message, nonce.as_bytes());
        let brand = match args.brand {
            cli::Brand::Vobiz => Brand::Vobiz,
            cli::Brand::Plivo => Brand::Plivo,
        };
        headers.push(Header::signature(
            brand.signature_header(family),
            &key.mac(&parts),
            Format::base64(),
        ));
        signed.push(Signed {
            what: family.name(),
            key: option,
            message: parts.concat(),
        });
        let nonce_header = brand.nonce_header(family);
        if !nonce_headers.contains(&nonce_header) {
            nonce_headers.push(nonce_header);
            headers.push(Header {
                name: wire_name(nonce_header),
                value: nonce.clone(),
                role: Role::Nonce,
            });
        }
    }
    Ok(Request {
        method,
        target,
        headers,
        body,
        signed,
        kind: Kind::Genuine,
    })
}

/// A JSON string literal.
fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

pub fn whatsapp(args: &WhatsappArgs) -> Result<Request, Error> {
    let target = Target::parse(&args.common.url).map_err(|e| format!("--url {e}"))?;
    let body = match &args.body {
        Some(body) => body.clone(),
        None => {
            let occurred_at = match (&args.occurred_at, args.age, args.ahead) {
                (Some(text), _, _) => {
                    if timestamp::parse_rfc3339(text.as_bytes()).is_none() {
                        return Err(format!(
                            "--occurred-at {text:?} is not an RFC 3339 date-time"
                        ));
                    }
                    text.clone()
                }
                (None, age, ahead) => {
                    let now = util::now().0;
                    let seconds = |d: std::time::Duration| {
                        i64::try_from(d.as_secs()).map_err(|_| "duration too large".to_string())
                    };
                    let shift = match (age, ahead) {
                        (Some(age), _) => -seconds(age)?,
                        (None, Some(ahead)) => seconds(ahead)?,
                        (None, None) => 0,
                    };
                    util::rfc3339(now + shift)
                }
            };
            let payload = match &args.payload {
                Some(payload) => {
                    serde_json::from_str::<serde::de::IgnoredAny>(payload)
                        .map_err(|e| format!("--payload is not JSON: {e}"))?;
                    payload.clone()
                }
                None => r#"{"from":"919876543210","type":"text","text":{"body":"Hello from vobiz-sim"}}"#
                    .to_string(),
            };
            let event_id = match &args.event_id {
                Some(id) => id.clone(),
                None => util::new_uuid()?,
            };
            format!(
                "{{\"event_id\":{},\"event_type\":{},\"account_id\":{},\"occurred_at\":{},\"payload\":{}}}",
                json_string(&event_id),
                json_string(&args.event_type),
                json_string(&args.account_id),
                json_string(&occurred_at),
                payload
            )
        }
    };
    let key = key("--secret", &args.secret)?;
    let body = body.into_bytes();
    let headers = vec![
        Header::plain("content-type", "application/json"),
        Header::plain("user-agent", "Vobiz"),
        Header::signature(whatsapp::SCHEME.header, &key.mac(&[&body]), Format::hex("")),
        Header::plain("x-webhook-event", args.event_type.as_str()),
    ];
    Ok(Request {
        method: "POST",
        target,
        headers,
        signed: vec![Signed {
            what: "body",
            key: "--secret",
            message: body.clone(),
        }],
        body,
        kind: Kind::Genuine,
    })
}

pub fn kyc(args: &KycArgs) -> Result<Request, Error> {
    let target = Target::parse(&args.common.url).map_err(|e| format!("--url {e}"))?;
    let body = match &args.body {
        Some(body) => body.clone(),
        None => format!(
            "{{\"event\":{},\"timestamp\":{},\"session_id\":{}}}",
            json_string(&args.event),
            json_string(&util::rfc3339(util::now().0)),
            json_string(&util::new_uuid()?)
        ),
    };
    let key = key("--parent-token", &args.parent_token)?;
    let body = body.into_bytes();
    let prefix = match kyc::SCHEME.prefix {
        b"sha256=" => "sha256=",
        _ => return Err("unexpected KYC signature prefix".into()),
    };
    let headers = vec![
        Header::plain("content-type", "application/json"),
        Header::plain("user-agent", "Vobiz"),
        Header::signature(kyc::SCHEME.header, &key.mac(&[&body]), Format::hex(prefix)),
    ];
    Ok(Request {
        method: "POST",
        target,
        headers,
        signed: vec![Signed {
            what: "body",
            key: "--parent-token",
            message: body.clone(),
        }],
        body,
        kind: Kind::Genuine,
    })
}

/// `--dry-run`: each request exactly as it would be sent, and what its signatures cover.
pub fn render(requests: &[Request]) -> String {
    let mut out = String::new();
    for (i, request) in requests.iter().enumerate() {
        let n = i + 1;
        out.push_str(&format!(
            "#{n} {} {}{}\n",
            request.method,
            request.target.url(),
            request.label()
        ));
        if request.kind == Kind::Replay {
            out.push_str("identical to #1\n\n");
            continue;
        }
        for signed in &request.signed {
            if signed.what == "body" {
                out.push_str(&format!(
                    "signed body ({}): the {} body bytes below\n",
                    signed.key,
                    signed.message.len()
                ));
            } else {
                out.push_str(&format!(
                    "signed {} ({}): {}\n",
                    signed.what,
                    signed.key,
                    String::from_utf8_lossy(&signed.message)
                ));
            }
        }
        if let Kind::Tampered(_) = request.kind {
            out.push_str("signature headers of #1, not re-signed\n");
        }
        for header in &request.headers {
            out.push_str(&format!("{}: {}\n", header.name, header.value));
        }
        out.push('\n');
        if !request.body.is_empty() {
            out.push_str(&String::from_utf8_lossy(&request.body));
            out.push_str("\n\n");
        }
    }
    out
}

/// Another provider's webhook, signed with the filter's own key handling and MACs.
pub fn webhook(args: &WebhookArgs) -> Result<Request, Error> {
    let target = Target::parse(&args.common.url).map_err(|e| format!("--url {e}"))?;
    let now = util::now().0;
    let at = match (args.age, args.ahead) {
        (Some(age), _) => now - age.as_secs() as i64,
        (_, Some(ahead)) => now + ahead.as_secs() as i64,
        _ => now,
    }
    .to_string();
    let id = util::new_uuid()?;
    let body = match (&args.body, args.provider) {
        (Some(body), _) => body.clone(),
        (None, Provider::Twilio) => format!(
            "CallSid=CA{}&CallStatus=completed&From=%2B14155550123&To=%2B14155550100",
            id.replace('-', "")
        ),
        (None, _) => format!("{{\"id\":\"evt_{id}\",\"type\":\"simulated\"}}"),
    }
    .into_bytes();
    let secret = match args.provider {
        Provider::StandardWebhooks | Provider::Svix => {
            standard_webhooks::secret_bytes(&args.secret)
                .ok_or("--secret: not whsec_ followed by base64")?
        }
        _ => args.secret.as_bytes().to_vec(),
    };
    let key = Key::new("--secret", &secret).map_err(|_| "--secret: unusable key")?;
    let json = Header::plain("content-type", "application/json");
    let (message, headers): (Vec<u8>, Vec<Header>) = match args.provider {
        Provider::StandardWebhooks | Provider::Svix => {
            let names = if args.provider == Provider::Svix {
                standard_webhooks::SVIX
            } else {
                standard_webhooks::STANDARD
            };
            let id = format!("msg_{}", id.replace('-', ""));
            let message = [id.as_bytes(), b".", at.as_bytes(), b".", &body].concat();
            let mac = key.mac(&[&message]);
            let headers = vec![
                json,
                Header::plain(names.id, id),
                Header::plain(names.timestamp, at.clone()),
                Header::signature(
                    names.signature,
                    &mac,
                    Format::Base64 {
                        prefix: "v1,".into(),
                    },
                ),
            ];
            (message, headers)
        }
        Provider::Stripe => {
            let message = [at.as_bytes(), b".", &body].concat();
            let prefix = format!("t={at},v1=");
            let header = Header::signature(
                stripe::HEADER,
                &key.mac(&[&message]),
                Format::Hex { prefix },
            );
            (message, vec![json, header])
        }
        Provider::Github | Provider::Meta => {
            let header = Header::signature(
                github::SCHEME.header,
                &key.mac(&[&body]),
                Format::hex("sha256="),
            );
            (body.clone(), vec![json, header])
        }
        Provider::Slack => {
            let message = [b"v0:", at.as_bytes(), b":", &body].concat();
            let headers = vec![
                json,
                Header::plain(slack::TIMESTAMP, at.clone()),
                Header::signature(
                    slack::SIGNATURE.header,
                    &key.mac(&[&message]),
                    Format::hex("v0="),
                ),
            ];
            (message, headers)
        }
        Provider::Shopify => {
            let header = Header::signature(shopify::HEADER, &key.mac(&[&body]), Format::base64());
            (body.clone(), vec![json, header])
        }
        Provider::Twilio => {
            let origin = args.origin.as_deref().unwrap_or(&target.origin);
            let mut params = form::parse(&body, form::MAX_PAIRS)
                .map_err(|e| format!("--body has more than {} parameters", e.limit))?;
            params.sort();
            params.dedup();
            let mut message = format!("{origin}{}", target.path_and_query()).into_bytes();
            for (name, value) in params {
                message.extend_from_slice(name.as_bytes());
                message.extend_from_slice(value.as_bytes());
            }
            let headers = vec![
                Header::plain("content-type", "application/x-www-form-urlencoded"),
                Header::signature(twilio::HEADER, &key.mac_sha1(&[&message]), Format::base64()),
            ];
            (message, headers)
        }
    };
    Ok(Request {
        method: "POST",
        target,
        headers,
        signed: vec![Signed {
            what: "message",
            key: "--secret",
            message,
        }],
        body,
        kind: Kind::Genuine,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    const V2: &str = "gEPZQ2HmngRWdcHbKGv/eaCNsEC9k9MAaOeKkXAco8A=";
    const V3: &str = "hcnUcstlkOnYpO6mUNMBs51VJnZ5p6T+dE1Ov5NShuk=";
    const MA_V2: &str = "suV3aWrsKa4Ssu5qEabZt2jITzfRpH4NY/2Ve/uR+bg=";
    const MA_V3: &str = "0mwQB92O6388f6zutntqJI/DfTZzMrfd8sWxo+OKs6o=";
    const NONCE_V2: &str = "12345678901234567890";
    const NONCE_V3: &str = "09876543210987654321";
    const WA_BODY: &str = r#"{"event_id":"f4c1a0d2-3b6e-4a9c-8e2f-0a1b2c3d4e5f","event_type":"message.inbound","account_id":"MA_XXXXXXXX","occurred_at":"2026-03-25T10:00:00Z","payload":{}}"#;
    const WA_SIGNATURE: &str = "6c82a2dbcf397903ffaea500dffa3b4875fe6388361c8ea1c590354868bc48b1";

    /// Parses a command line and plans its requests.
    fn plan(args: &[&str]) -> Result<Vec<Request>, Error> {
        let cli = Cli::try_parse_from(std::iter::once("vobiz-sim").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        match &cli.command {
            Command::Voice(a) => sequence(voice(a)?, &a.common),
            Command::Whatsapp(a) => sequence(whatsapp(a)?, &a.common),
            Command::Kyc(a) => sequence(kyc(a)?, &a.common),
            Command::Webhook(a) => sequence(webhook(a)?, &a.common),
        }
    }

    #[test]
    fn webhooks_are_signed_as_each_provider_signs() {
        // providers.md §4 rows 4a (GitHub's documented example), 8 (Shopify), 9 (Meta).
        let body = "{\"id\":\"evt_1\",\"amount\":100,\"note\":\"caf\u{e9}\"}";
        let url = ["--url", "https://example.com/hooks"];
        let github = one(&[
            "webhook",
            "--provider",
            "github",
            "--secret",
            "It's a Secret to Everybody",
            "--body",
            "Hello, World!",
            url[0],
            url[1],
        ]);
        assert_eq!(
            header(&github, "x-hub-signature-256"),
            Some("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
        );
        let shopify = one(&[
            "webhook",
            "--provider",
            "shopify",
            "--secret",
            "shpss_test_secret",
            "--body",
            body,
            url[0],
            url[1],
        ]);
        assert_eq!(
            header(&shopify, "x-shopify-hmac-sha256"),
            Some("vyJXvnxmcYLmvLnBYoI+3OnOQBYMbSXzEjNKQ25TjlI=")
        );
        let meta = one(&[
            "webhook",
            "--provider",
            "meta",
            "--secret",
            "meta_app_secret",
            "--body",
            body,
            url[0],
            url[1],
        ]);
        assert_eq!(
            header(&meta, "x-hub-signature-256"),
            Some("sha256=fb2913d025c55f38fed276b302bded22bd44582f995eddfd3b646eabaf4f8a42")
        );
        // Row 6a: Twilio's documented example, URL and sorted parameters.
        let form = "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";
        let twilio = one(&[
            "webhook",
            "--provider",
            "twilio",
            "--secret",
            "12345",
            "--body",
            form,
            "--url",
            "https://mycompany.com/myapp.php?foo=1&bar=2",
        ]);
        assert_eq!(
            header(&twilio, "x-twilio-signature"),
            Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
        );
        let svix = one(&[
            "webhook",
            "--provider",
            "svix",
            "--secret",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            url[0],
            url[1],
        ]);
        assert!(header(&svix, "svix-signature").unwrap().starts_with("v1,"));
        assert!(plan(&[
            "webhook",
            "--provider",
            "svix",
            "--secret",
            "whsec_!",
            url[0],
            url[1]
        ])
        .is_err());
    }

    fn one(args: &[&str]) -> Request {
        let mut all = plan(args).unwrap();
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    fn header<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
        let mut found = request
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name));
        let first = found.next().map(|h| h.value.as_str());
        assert!(found.next().is_none(), "{name} twice");
        first
    }

    fn voice_args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["voice", "--url", url, "--token", "test_auth_token"];
        args.extend_from_slice(extra);
        args
    }

    #[test]
    fn target_parsing_keeps_what_was_written() {
        let t = Target::parse("https://Example.com:443/a/b?x=1&y#frag").unwrap();
        assert_eq!(t.origin, "https://Example.com:443");
        assert_eq!(t.path, "/a/b");
        assert_eq!(t.query.as_deref(), Some("x=1&y"));
        assert_eq!(t.url(), "https://Example.com:443/a/b?x=1&y");
        let t = Target::parse("http://h?q").unwrap();
        assert_eq!((t.path.as_str(), t.query.as_deref()), ("/", Some("q")));
        for bad in [
            "ftp://h/",
            "https:/h",
            "https:///x",
            "h/x",
            "",
            "https://h:port/",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    /// The path is signed as the HTTP client sends it, not as typed.
    #[test]
    fn target_path_is_what_goes_on_the_wire() {
        let t = Target::parse("https://h/vobiz/x/../answer a?q=a b").unwrap();
        assert_eq!(t.path_and_query(), "/vobiz/answer%20a?q=a%20b");
        let r = one(&voice_args(
            "https://example.com/vobiz/./answer",
            &["--nonce", NONCE_V3],
        ));
        assert_eq!(header(&r, "x-vobiz-signature-v3"), Some(V3));
    }

    #[test]
    fn header_names_are_spelled_as_vobiz_does() {
        assert_eq!(
            wire_name("x-vobiz-signature-ma-v3"),
            "X-Vobiz-Signature-MA-V3"
        );
        assert_eq!(
            wire_name("x-vobiz-signature-v2-nonce"),
            "X-Vobiz-Signature-V2-Nonce"
        );
        assert_eq!(wire_name("x-webhook-signature"), "X-Webhook-Signature");
        assert_eq!(wire_name("content-type"), "Content-Type");
    }

    /// Spec 2.7 row 2, in full: the dry-run shows the exact message, headers and body.
    #[test]
    fn dry_run_of_spec_vector_v3() {
        let requests = plan(&voice_args(
            "https://example.com/vobiz/answer",
            &[
                "--nonce",
                NONCE_V3,
                "--form",
                "CallUUID=abc&Event=StartApp",
                "--dry-run",
            ],
        ))
        .unwrap();
        assert_eq!(
            render(&requests),
            "#1 POST https://example.com/vobiz/answer\n\
             signed v3 (--token): https://example.com/vobiz/answer.09876543210987654321\n\
             Content-Type: application/x-www-form-urlencoded\n\
             User-Agent: Vobiz\n\
             X-Vobiz-Signature-V3: hcnUcstlkOnYpO6mUNMBs51VJnZ5p6T+dE1Ov5NShuk=\n\
             X-Vobiz-Signature-V3-Nonce: 09876543210987654321\n\
             \n\
             CallUUID=abc&Event=StartApp\n\n"
        );
        assert!(!render(&requests).contains("test_auth_token"));
    }

    /// Spec 2.7 rows 1-4: all four families, each with its key and nonce header.
    #[test]
    fn spec_vectors_all_families() {
        let r = one(&[
            "voice",
            "--url",
            "https://example.com/vobiz/answer",
            "--token",
            "test_auth_token",
            "--parent-token",
            "test_parent_token",
            "--families",
            "v3,ma_v3,v2,ma_v2",
            "--nonce",
            NONCE_V3,
            "--nonce-v2",
            NONCE_V2,
        ]);
        assert_eq!(header(&r, "x-vobiz-signature-v3"), Some(V3));
        assert_eq!(header(&r, "x-vobiz-signature-ma-v3"), Some(MA_V3));
        assert_eq!(header(&r, "x-vobiz-signature-v2"), Some(V2));
        assert_eq!(header(&r, "x-vobiz-signature-ma-v2"), Some(MA_V2));
        assert_eq!(header(&r, "x-vobiz-signature-v3-nonce"), Some(NONCE_V3));
        assert_eq!(header(&r, "x-vobiz-signature-v2-nonce"), Some(NONCE_V2));
        let signed: Vec<_> = r.signed.iter().map(|s| (s.what, s.key)).collect();
        assert_eq!(
            signed,
            [
                ("v3", "--token"),
                ("ma_v3", "--parent-token"),
                ("v2", "--token"),
                ("ma_v2", "--parent-token")
            ]
        );
        assert_eq!(
            r.signed[2].message,
            b"https://example.com/vobiz/answer12345678901234567890"
        );
    }

    #[test]
    fn default_families_follow_the_tokens() {
        let r = one(&[
            "voice",
            "--url",
            "https://example.com/vobiz/answer",
            "--token",
            "test_auth_token",
            "--parent-token",
            "test_parent_token",
            "--nonce",
            NONCE_V3,
        ]);
        let names: Vec<_> = r.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Content-Type",
                "User-Agent",
                "X-Vobiz-Signature-V3",
                "X-Vobiz-Signature-V3-Nonce",
                "X-Vobiz-Signature-MA-V3"
            ]
        );
        assert_eq!(header(&r, "x-vobiz-signature-ma-v3"), Some(MA_V3));
        let only_parent = one(&[
            "voice",
            "--url",
            "https://example.com/vobiz/answer",
            "--parent-token",
            "test_parent_token",
            "--nonce",
            NONCE_V3,
            "--families",
            "ma_v3",
        ]);
        assert_eq!(header(&only_parent, "x-vobiz-signature-ma-v3"), Some(MA_V3));
        assert_eq!(header(&only_parent, "x-vobiz-signature-v3"), None);
    }

    #[test]
    fn a_family_without_its_token_is_an_error() {
        let err = plan(&voice_args(
            "https://example.com/vobiz/answer",
            &["--families", "v3,ma_v2"],
        ))
        .unwrap_err();
        assert!(err.contains("ma_v2: needs --parent-token"), "{err}");
    }

    #[test]
    fn origin_overrides_the_url_and_the_query_is_not_signed() {
        for url in [
            "https://127.0.0.1:9999/vobiz/answer",
            "https://127.0.0.1:9999/vobiz/answer?CallId=42&x=y",
        ] {
            let r = one(&voice_args(
                url,
                &["--origin", "https://example.com", "--nonce", NONCE_V3],
            ));
            assert_eq!(header(&r, "x-vobiz-signature-v3"), Some(V3), "{url}");
            assert_eq!(r.target.origin, "https://127.0.0.1:9999");
        }
        // Without --origin the URL's origin is signed as written (spec row 6).
        let r = one(&voice_args(
            "https://example.com:443/vobiz/answer",
            &["--nonce", NONCE_V3],
        ));
        assert_eq!(
            header(&r, "x-vobiz-signature-v3"),
            Some("xcITTU0grOhL5qfUbqFnijTCQxT9EuLdvUH8aVKRtAg=")
        );
        for bad in [
            "https://example.com/",
            "https://example.com?x",
            "example.com",
        ] {
            let err = plan(&voice_args("https://h/x", &["--origin", bad])).unwrap_err();
            assert!(err.contains("--origin"), "{bad}: {err}");
        }
    }

    /// Spec 6.2, the SDK-verified rows.
    #[test]
    fn sdk_construction_spec_vectors() {
        let nonce = "05429567804466091622";
        let cases = [
            (
                "POST",
                "https://example.com/answer",
                "To=14155550100&From=14155550123&CallUUID=abc",
                "https://example.com/answer?CallUUIDabcFrom14155550123To14155550100.05429567804466091622",
                "x6sWqj1bWCTFPaPgeo9CQQ6Wb1uhdE93JZ8NwCC/2Ic=",
            ),
            (
                "POST",
                "https://example.com/answer?x=1",
                "To=14155550100&From=14155550123",
                "https://example.com/answer?x=1.From14155550123To14155550100.05429567804466091622",
                "pW2UyDAinxVNoa1RJzYT5kEVbaA5D/ya6LXL7zbcs/0=",
            ),
            (
                "GET",
                "https://example.com/answer?x=1",
                "b=2",
                "https://example.com/answer?b=2&x=1.05429567804466091622",
                "je3zowRjK6+SLfEBmX0mWtQCwR9Pq5vFg0b8wJdAZu0=",
            ),
            (
                "POST",
                "https://example.com/answer",
                "",
                "https://example.com/answer.05429567804466091622",
                "yXSTe95YFaLmki98KQ5GoA7MRlneNDrkLpQaVNPF0ko=",
            ),
        ];
        for (method, url, form, message, signature) in cases {
            let r = one(&voice_args(
                url,
                &[
                    "--construction",
                    "sdk",
                    "--method",
                    method,
                    "--form",
                    form,
                    "--nonce",
                    nonce,
                ],
            ));
            assert_eq!(r.signed[0].message, message.as_bytes(), "{url} {form}");
            assert_eq!(header(&r, "x-vobiz-signature-v3"), Some(signature));
        }
    }

    #[test]
    fn get_moves_the_form_into_the_query() {
        let r = one(&voice_args(
            "https://example.com/vobiz/answer?x=1",
            &[
                "--method",
                "GET",
                "--form",
                "Event=Hangup&CallUUID=c",
                "--nonce",
                NONCE_V3,
            ],
        ));
        assert_eq!(r.method, "GET");
        assert!(r.body.is_empty());
        assert_eq!(
            r.target.path_and_query(),
            "/vobiz/answer?x=1&Event=Hangup&CallUUID=c"
        );
        assert_eq!(header(&r, "content-type"), None);
        // The docs' V3 does not cover the query.
        assert_eq!(header(&r, "x-vobiz-signature-v3"), Some(V3));
    }

    #[test]
    fn sdk_v2_families_use_the_docs_message() {
        let r = one(&voice_args(
            "https://example.com/vobiz/answer",
            &[
                "--construction",
                "sdk",
                "--families",
                "v2",
                "--nonce",
                NONCE_V2,
                "--form",
                "a=1",
            ],
        ));
        assert_eq!(header(&r, "x-vobiz-signature-v2"), Some(V2));
    }

    #[test]
    fn default_form_is_a_realistic_start_app() {
        let r = one(&voice_args("https://example.com/vobiz/answer", &[]));
        let params = form::parse(&r.body, form::MAX_PAIRS).unwrap();
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("Event"), Some("StartApp"));
        assert_eq!(get("Direction"), Some("inbound"));
        assert_eq!(get("CallUUID").map(str::len), Some(36));
        assert!(timestamp::parse_assume_utc(get("SessionStart").unwrap().as_bytes()).is_some());
        let nonce = header(&r, "x-vobiz-signature-v3-nonce").unwrap();
        assert!(nonce.len() == 20 && nonce.bytes().all(|b| b.is_ascii_digit()));
        let again = one(&voice_args("https://example.com/vobiz/answer", &[]));
        assert_ne!(r.body, again.body);
        assert_ne!(header(&again, "x-vobiz-signature-v3-nonce"), Some(nonce));
    }

    #[test]
    fn whatsapp_spec_vector() {
        let r = one(&[
            "whatsapp",
            "--url",
            "https://example.com/whatsapp/events",
            "--secret",
            "your-shared-secret",
            "--event-id",
            "f4c1a0d2-3b6e-4a9c-8e2f-0a1b2c3d4e5f",
            "--account-id",
            "MA_XXXXXXXX",
            "--occurred-at",
            "2026-03-25T10:00:00Z",
            "--payload",
            "{}",
        ]);
        assert_eq!(r.body, WA_BODY.as_bytes());
        assert_eq!(r.body.len(), 159);
        assert_eq!(header(&r, "x-webhook-signature"), Some(WA_SIGNATURE));
        assert_eq!(header(&r, "x-webhook-event"), Some("message.inbound"));
        assert_eq!(header(&r, "content-type"), Some("application/json"));
        let rendered = render(&[r]);
        assert!(rendered.contains("signed body (--secret): the 159 body bytes below\n"));
        assert!(rendered.ends_with(&format!("\n\n{WA_BODY}\n\n")));
        assert!(!rendered.contains("your-shared-secret"));
        // The same body given verbatim.
        let r = one(&[
            "whatsapp",
            "--url",
            "https://example.com/w",
            "--secret",
            "your-shared-secret",
            "--body",
            WA_BODY,
        ]);
        assert_eq!(header(&r, "x-webhook-signature"), Some(WA_SIGNATURE));
    }

    #[test]
    fn whatsapp_envelope_is_fresh_or_shifted() {
        let base = ["whatsapp", "--url", "https://x/w", "--secret", "s"];
        let occurred = |extra: &[&str]| {
            let args: Vec<&str> = base.iter().chain(extra).copied().collect();
            let r = one(&args);
            let event = whatsapp::parse_event(&r.body).unwrap();
            assert_eq!(event.event_id.len(), 36);
            event.occurred_at - util::now().0
        };
        assert!(occurred(&[]).abs() <= 2);
        assert!((occurred(&["--age", "2h"]) + 7200).abs() <= 2);
        assert!((occurred(&["--ahead", "10m"]) - 600).abs() <= 2);
        let args: Vec<&str> = base
            .iter()
            .chain(&["--occurred-at", "yesterday"])
            .copied()
            .collect();
        assert!(plan(&args).unwrap_err().contains("RFC 3339"));
        let args: Vec<&str> = base
            .iter()
            .chain(&["--payload", "{oops"])
            .copied()
            .collect();
        assert!(plan(&args).unwrap_err().contains("--payload"));
    }

    #[test]
    fn kyc_spec_vector() {
        let r = one(&[
            "kyc",
            "--url",
            "https://example.com/kyc/events",
            "--parent-token",
            "test_parent_token",
            "--body",
            r#"{"event":"kyc.completed"}"#,
        ]);
        assert_eq!(
            header(&r, "x-vobiz-signature"),
            Some("sha256=265cd474f955da2f32c6e2af7d7ed9e4778730b0f8877fbba6379553af763cdc")
        );
        let generated = one(&["kyc", "--url", "https://x/kyc/e", "--parent-token", "p"]);
        let body: serde_json::Value = serde_json::from_slice(&generated.body).unwrap();
        assert_eq!(body["event"], "kyc.completed");
        assert!(timestamp::parse_rfc3339(body["timestamp"].as_str().unwrap().as_bytes()).is_some());
    }

    #[test]
    fn replay_and_tamper_sequence() {
        let all = plan(&voice_args(
            "https://example.com/vobiz/answer",
            &[
                "--nonce", NONCE_V3, "--form", "a=1", "--replay", "2", "--tamper", "body",
            ],
        ))
        .unwrap();
        let kinds: Vec<_> = all.iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::Genuine,
                Kind::Replay,
                Kind::Replay,
                Kind::Tampered(Tamper::Body)
            ]
        );
        assert_eq!(all[1].headers, all[0].headers);
        assert_eq!(all[2].body, all[0].body);
        assert_eq!(all[3].body, b"a=1&Tampered=1");
        assert_eq!(all[3].headers, all[0].headers);
        let rendered = render(&all);
        assert!(rendered
            .contains("#2 POST https://example.com/vobiz/answer (replay)\nidentical to #1\n"));
        assert!(rendered.contains("#4 POST https://example.com/vobiz/answer (tampered body)\nsignature headers of #1, not re-signed\n"));
    }

    #[test]
    fn each_tamper_changes_only_its_part() {
        let genuine = one(&voice_args(
            "https://example.com/vobiz/answer?x=1",
            &["--nonce", NONCE_V3, "--form", "a=1"],
        ));
        let t = |part| tamper(&genuine, part).unwrap();

        let query = t(Tamper::Query);
        assert_eq!(
            query.target.path_and_query(),
            "/vobiz/answer?x=1&tampered=1"
        );
        assert_eq!(
            (&query.headers, &query.body),
            (&genuine.headers, &genuine.body)
        );

        let path = t(Tamper::Path);
        assert_eq!(path.target.path_and_query(), "/vobiz/answer-tampered?x=1");
        assert_eq!(path.headers, genuine.headers);

        let signature = t(Tamper::Signature);
        let value = header(&signature, "x-vobiz-signature-v3").unwrap();
        assert_ne!(value, V3);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value)
            .unwrap();
        assert_eq!(decoded.len(), 32);
        assert_eq!(
            header(&signature, "x-vobiz-signature-v3-nonce"),
            Some(NONCE_V3)
        );
        assert_eq!(
            (&signature.target, &signature.body),
            (&genuine.target, &genuine.body)
        );

        let nonce = t(Tamper::Nonce);
        let value = header(&nonce, "x-vobiz-signature-v3-nonce").unwrap();
        assert_ne!(value, NONCE_V3);
        assert_eq!(value.len(), 20);
        assert_eq!(header(&nonce, "x-vobiz-signature-v3"), Some(V3));

        let get = one(&voice_args("https://example.com/v", &["--method", "GET"]));
        assert!(tamper(&get, Tamper::Body)
            .unwrap_err()
            .contains("--tamper query"));
    }

    #[test]
    fn webhook_tampering() {
        let r = one(&[
            "whatsapp",
            "--url",
            "https://example.com/whatsapp/events",
            "--secret",
            "your-shared-secret",
            "--body",
            WA_BODY,
        ]);
        let body = tamper(&r, Tamper::Body).unwrap();
        assert_eq!(
            body.body,
            format!("{},\"tampered\":true}}", &WA_BODY[..WA_BODY.len() - 1]).as_bytes()
        );
        serde_json::from_slice::<serde_json::Value>(&body.body).unwrap();
        let signature = tamper(&r, Tamper::Signature).unwrap();
        let value = header(&signature, "x-webhook-signature").unwrap();
        assert_eq!(value.len(), 64);
        assert_ne!(value, WA_SIGNATURE);
        assert!(tamper(&r, Tamper::Nonce)
            .unwrap_err()
            .contains("--tamper body"));

        let kyc = one(&[
            "kyc",
            "--url",
            "https://x/kyc/e",
            "--parent-token",
            "p",
            "--body",
            "{}",
        ]);
        assert_eq!(
            tamper(&kyc, Tamper::Body).unwrap().body,
            br#"{"tampered":true}"#
        );
        let value = tamper(&kyc, Tamper::Signature).unwrap();
        assert!(header(&value, "x-vobiz-signature")
            .unwrap()
            .starts_with("sha256="));
    }

    #[test]
    fn extra_headers_replace_add_and_remove() {
        let r = one(&voice_args(
            "https://example.com/vobiz/answer",
            &[
                "--nonce",
                NONCE_V3,
                "-H",
                "User-Agent: one",
                "-H",
                "User-Agent: curl/8",
                "-H",
                "x-test-id: 1",
                "-H",
                "x-test-id: 2",
                "-H",
                "X-Vobiz-Signature-V3-Nonce:",
            ],
        ));
        let headers: Vec<_> = r
            .headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .collect();
        assert_eq!(
            headers,
            [
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("X-Vobiz-Signature-V3", V3),
                ("User-Agent", "curl/8"),
                ("x-test-id", "1"),
                ("x-test-id", "2"),
            ]
        );
    }
}
