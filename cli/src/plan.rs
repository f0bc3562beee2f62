//! Builds the requests to send, each signed by its scheme's signer in the core (the code
//! next to the verifier: `callback_guard::providers::sign`), and renders them for
//! `--dry-run`. Nothing here signs: it shapes requests and alters copies.

use callback_guard::keys::Key;
use callback_guard::providers::entry::Entry;
use callback_guard::providers::registry;
use callback_guard::providers::sign::{KeyMaterial, Outgoing, Role, Signing};
use callback_guard::providers::vobiz::voice::{self, Brand, Family};
use callback_guard::providers::vobiz::{self, kyc, whatsapp};
use callback_guard::timestamp;

use crate::cli::{
    self, Common, Construction, KycArgs, Method, Tamper, VoiceArgs, WebhookArgs, WhatsappArgs,
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

/// `--origin`: `scheme://authority` alone.
fn origin_option(origin: &str) -> Result<String, Error> {
    let parsed = Target::parse(origin).map_err(|e| format!("--origin {e}"))?;
    if parsed.origin != origin {
        return Err(format!(
            "--origin {origin:?} is scheme://authority only, without path or query"
        ));
    }
    Ok(parsed.origin)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
    /// What the header is to the scheme, as its signer said: `--tamper` alters the
    /// signature or nonce ones.
    pub role: Role,
}

/// A header name as providers spell it on the wire: `x-vobiz-signature-ma-v3` is
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

/// One signed message, for `--dry-run`: what was signed and under which option's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// `v3`, `ma_v3`, ..., `body` or `message`.
    pub what: &'static str,
    /// The option that holds the key (never the key itself).
    pub key: &'static str,
    /// The exact signed bytes.
    pub message: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: &'static str,
    pub target: Target,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
    /// Where the body carries the signature (Mailgun), for `--tamper signature`.
    pub body_signature: Option<usize>,
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

    /// What the signer made, as it will be sent; `key` names the option holding the key
    /// of each signature (by whether the parent account's key signed it).
    fn signed(out: Outgoing, key: impl Fn(bool) -> &'static str) -> Result<Request, Error> {
        let method = match out.method.as_str() {
            "POST" => "POST",
            "GET" => "GET",
            other => return Err(format!("cannot send a {other} request")),
        };
        Ok(Request {
            method,
            target: Target::parse(&out.url)?,
            headers: out
                .headers
                .into_iter()
                .map(|h| Header {
                    name: wire_name(&h.name),
                    value: h.value,
                    role: h.role,
                })
                .collect(),
            body: out.body,
            body_signature: out.body_signature,
            signed: out
                .signed
                .into_iter()
                .map(|covered| Signed {
                    what: covered.what,
                    key: key(covered.parent),
                    message: covered.message,
                })
                .collect(),
            kind: Kind::Genuine,
        })
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

/// An encoded signature's character replaced by another of its alphabet (a hex digit by a
/// hex digit), so that the copy is still well-formed but signs nothing.
fn altered(c: u8) -> u8 {
    match c {
        b'0' => b'1',
        c if c.is_ascii_hexdigit() => b'0',
        _ => b'A',
    }
}

/// A copy of `genuine` altered in `part`, with the genuine signature headers (except when
/// the signature itself is the part altered).
pub fn tamper(genuine: &Request, part: Tamper) -> Result<Request, Error> {
    let mut request = Request {
        kind: Kind::Tampered(part),
        signed: Vec::new(),
        ..genuine.clone()
    };
    let body = &mut request.body;
    let trimmed = body.trim_ascii_end().len();
    match part {
        Tamper::Body if request.method == "GET" => {
            return Err(
                "--tamper body: a GET callback has no body (its parameters are in the query); \
                 use --tamper query"
                    .into(),
            )
        }
        // A JSON object gets a member, an array an element: still JSON of its kind.
        Tamper::Body if body.first() == Some(&b'{') && body[..trimmed].ends_with(b"}") => {
            let empty = body[..trimmed - 1].trim_ascii() == b"{";
            let member = if empty {
                "\"tampered\":true"
            } else {
                ",\"tampered\":true"
            };
            body.splice(trimmed - 1..trimmed - 1, member.bytes());
        }
        Tamper::Body if body.first() == Some(&b'[') && body[..trimmed].ends_with(b"]") => {
            let empty = body[..trimmed - 1].trim_ascii() == b"[";
            let element = if empty {
                "{\"tampered\":true}"
            } else {
                ",{\"tampered\":true}"
            };
            body.splice(trimmed - 1..trimmed - 1, element.bytes());
        }
        Tamper::Body => {
            if !body.is_empty() {
                body.push(b'&');
            }
            body.extend_from_slice(b"Tampered=1");
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
                if let Role::Signature { at } = header.role {
                    let mut value = std::mem::take(&mut header.value).into_bytes();
                    if let Some(c) = value.get_mut(at) {
                        *c = altered(*c);
                        found = true;
                    }
                    header.value = String::from_utf8_lossy(&value).into_owned();
                }
            }
            if let Some(c) = request.body_signature.and_then(|at| body.get_mut(at)) {
                *c = altered(*c);
                found = true;
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

/// A realistic answer-URL request body (the core's example) with a fresh CallUUID.
pub fn default_voice_form() -> Result<String, Error> {
    let (secs, micros) = util::now();
    Ok(voice::example_form(&util::new_uuid()?, secs, micros))
}

pub fn voice(args: &VoiceArgs) -> Result<Request, Error> {
    let mut target = Target::parse(&args.common.url).map_err(|e| format!("--url {e}"))?;
    let origin = match &args.origin {
        Some(origin) => origin_option(origin)?,
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
    for family in &families {
        match (family.uses_parent_key(), &own, &parent) {
            (false, None, _) => return Err(format!("--families {}: needs --token", family.name())),
            (true, _, None) => {
                return Err(format!(
                    "--families {}: needs --parent-token",
                    family.name()
                ))
            }
            _ => {}
        }
    }

    let form = match &args.form {
        Some(form) => form.clone(),
        None => default_voice_form()?,
    };
    let (method, body) = match args.method {
        Method::Post => ("POST", form.into_bytes()),
        Method::Get => {
            if !form.is_empty() {
                target.add_query(&form);
            }
            ("GET", Vec::new())
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
    let mut out = Outgoing::new(method, &target.url(), body);
    voice::Sender {
        brand: match args.brand {
            cli::Brand::Vobiz => Brand::Vobiz,
            cli::Brand::Plivo => Brand::Plivo,
        },
        origin: &origin,
        families: &families,
        sdk: args.construction == Construction::Sdk,
        key: own.as_ref(),
        parent_key: parent.as_ref(),
        nonce_v3: &nonce_v3,
        nonce_v2: &nonce_v2,
    }
    .sign(&mut out)?;
    Request::signed(
        out,
        |parent| {
            if parent {
                "--parent-token"
            } else {
                "--token"
            }
        },
    )
}

/// `--age` / `--ahead` applied to now, in unix seconds.
fn shifted(
    age: Option<std::time::Duration>,
    ahead: Option<std::time::Duration>,
) -> Result<i64, Error> {
    let seconds = |d: std::time::Duration| {
        i64::try_from(d.as_secs()).map_err(|_| "duration too large".to_string())
    };
    let now = util::now().0;
    Ok(match (age, ahead) {
        (Some(age), _) => now - seconds(age)?,
        (None, Some(ahead)) => now + seconds(ahead)?,
        (None, None) => now,
    })
}

/// A signing at `now`, with fresh random bytes for the ids the signer makes.
fn signing(key: KeyMaterial<'_>, now: i64) -> Result<Signing<'_>, Error> {
    let mut signing = Signing::new(key, now);
    signing.random = util::random_bytes::<32>()?;
    Ok(signing)
}

/// `out` signed by the signer of the scheme `entry`.
fn sign_as(entry: &Entry, signing: &Signing, out: &mut Outgoing) -> Result<(), Error> {
    let signer = entry
        .sign
        .ok_or_else(|| format!("no signer for scheme {}", entry.scheme))?;
    (signer.sign)(signing, out)
}

pub fn whatsapp(args: &WhatsappArgs) -> Result<Request, Error> {
    let target = Target::parse(&args.common.url).map_err(|e| format!("--url {e}"))?;
    let body = match &args.body {
        Some(body) => body.clone(),
        None => {
            let occurred_at = match &args.occurred_at {
                Some(text) => {
                    if timestamp::parse_rfc3339(text.as_bytes()).is_none() {
                        return Err(format!(
                            "--occurred-at {text:?} is not an RFC 3339 date-time"
                        ));
                    }
                    text.clone()
                }
                None => util::rfc3339(shifted(args.age, args.ahead)?),
            };
            let payload = match &args.payload {
                Some(payload) => {
                    serde_json::from_str::<serde::de::IgnoredAny>(payload)
                        .map_err(|e| format!("--payload is not JSON: {e}"))?;
                    payload.clone()
                }
                None => whatsapp::DEFAULT_PAYLOAD.to_string(),
            };
            let event_id = match &args.event_id {
                Some(id) => id.clone(),
                None => util::new_uuid()?,
            };
            whatsapp::envelope(
                &event_id,
                &args.event_type,
                &args.account_id,
                &occurred_at,
                &payload,
            )
        }
    };
    let signing = signing(KeyMaterial::Secret(&args.secret), util::now().0)?;
    let mut out = Outgoing::new("POST", &target.url(), body.into_bytes());
    sign_as(&vobiz::WHATSAPP, &signing, &mut out)?;
    out.default_header("x-webhook-event", args.event_type.as_str());
    Request::signed(out, |_| "--secret")
}

pub fn kyc(args: &KycArgs) -> Result<Request, Error> {
    let target = Target::parse(&args.common.url).map_err(|e| format!("--url {e}"))?;
    let now = util::now().0;
    let body = match &args.body {
        Some(body) => body.clone(),
        None => kyc::example(&args.event, now, &util::new_uuid()?),
    };
    let signing = signing(KeyMaterial::Secret(&args.parent_token), now)?;
    let mut out = Outgoing::new("POST", &target.url(), body.into_bytes());
    sign_as(&vobiz::KYC, &signing, &mut out)?;
    Request::signed(out, |_| "--parent-token")
}

/// Any scheme's webhook, signed by the registry's signer of the scheme.
pub fn webhook(args: &WebhookArgs) -> Result<Request, Error> {
    let target = Target::parse(&args.common.url).map_err(|e| format!("--url {e}"))?;
    let scheme = match (&args.scheme, args.provider) {
        (Some(scheme), _) => scheme.as_str(),
        (None, Some(provider)) => provider.scheme(),
        (None, None) => return Err("give --scheme".into()),
    };
    let signer = registry::find(scheme)
        .and_then(|entry| entry.sign)
        .ok_or_else(|| {
            format!(
                "--scheme {scheme:?} is not one of {}",
                registry::NAMES.join(", ")
            )
        })?;
    let (key, option) = match (&args.private_key, &args.secret) {
        (Some(private), _) => (KeyMaterial::Private(private), "--private-key"),
        (None, Some(secret)) => (KeyMaterial::Secret(secret), "--secret"),
        (None, None) => return Err("give --secret or --private-key".into()),
    };
    let origin = args.origin.as_deref().map(origin_option).transpose()?;
    let mut signing = signing(key, shifted(args.age, args.ahead)?)?;
    signing.id = args.id.as_deref();
    signing.origin = origin.as_deref();
    signing.generic = args.generic.as_deref();
    signing.token = args.token.as_deref();
    signing.audience = args.audience.as_deref();
    let body = match &args.body {
        Some(body) => body.clone().into_bytes(),
        None => (signer.example)(&signing),
    };
    let mut out = Outgoing::new("POST", &target.url(), body);
    (signer.sign)(&signing, &mut out).map_err(|e| format!("{scheme}: {e}"))?;
    Request::signed(out, |_| option)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use base64::Engine;
    use callback_guard::form;
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
            Command::Check(_) | Command::Seal(_) => Err("plans no requests".into()),
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

    /// Every scheme of the registry signs with `webhook --scheme`, from defaults alone
    /// (the example body, fresh ids, now); a tampered copy changes its part.
    #[test]
    fn webhook_signs_every_scheme_of_the_registry() {
        let seed = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
        let scalar = "1234567890abcdef".repeat(4);
        let generic = r#"{"signature":{"header":"X-Hub-Signature-256","prefix":"sha256="},"encoding":"hex","message":["body"]}"#;
        for name in callback_guard::providers::registry::NAMES {
            let mut args = vec![
                "webhook",
                "--scheme",
                name,
                "--url",
                "https://127.0.0.1:9/hook?x=1",
            ];
            match name {
                "discord" | "telnyx" => args.extend(["--private-key", seed]),
                "sendgrid" => args.extend(["--private-key", &scalar]),
                "standard_webhooks" | "svix" | "clerk" | "resend" => {
                    args.extend(["--secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
                }
                // Their secrets are base64, as their consoles show them.
                "microsoft_teams" | "brex" => args.extend(["--secret", "c2VjcmV0"]),
                _ => args.extend(["--secret", "s"]),
            }
            if name == "generic_hmac" {
                args.extend(["--generic", generic]);
            }
            if name == "static_token" {
                args.extend(["--token", r#"{"header":"X-Token"}"#]);
            }
            args.extend([
                "--origin",
                "https://a.example",
                "--replay",
                "1",
                "--tamper",
                "body",
            ]);
            let all = plan(&args).unwrap_or_else(|e| panic!("{name}: {e}"));
            let [genuine, replay, tampered] = &all[..] else {
                panic!("{name}: {all:?}")
            };
            // A static credential signs nothing; every other scheme says what it signed.
            let credential =
                ["static_token", "basic_auth", "gitlab", "telegram", "okta"].contains(&name);
            assert_eq!(genuine.signed.is_empty(), credential, "{name}");
            assert!(
                genuine
                    .headers
                    .iter()
                    .any(|h| matches!(h.role, Role::Signature { .. }))
                    || genuine.body_signature.is_some(),
                "{name}"
            );
            assert_eq!(replay.headers, genuine.headers, "{name}");
            assert_ne!(tampered.body, genuine.body, "{name}");
            let signature = tamper(genuine, Tamper::Signature).unwrap();
            assert_ne!(
                (&signature.headers, &signature.body),
                (&genuine.headers, &genuine.body),
                "{name}"
            );
            // JSON stays JSON of its kind when tampered.
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&genuine.body) {
                let changed: serde_json::Value = serde_json::from_slice(&tampered.body).unwrap();
                assert_eq!(value.is_array(), changed.is_array(), "{name}");
            }
        }
        let mut both = vec![
            "webhook",
            "--scheme",
            "discord",
            "--url",
            "https://h/d",
            "--secret",
            "s",
        ];
        assert!(plan(&both).unwrap_err().contains("private key"));
        both[2] = "no_such_scheme";
        assert!(plan(&both).is_err());
        let generic = [
            "webhook",
            "--scheme",
            "generic_hmac",
            "--url",
            "https://h/g",
            "--secret",
            "s",
        ];
        assert!(plan(&generic).unwrap_err().contains("generic block"));
    }

    /// The dry run names the private key's option, never the key.
    #[test]
    fn webhook_dry_run_hides_the_key() {
        let seed = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
        let requests = plan(&[
            "webhook",
            "--scheme",
            "discord",
            "--url",
            "https://h/d",
            "--private-key",
            seed,
            "--body",
            r#"{"type":2}"#,
            "--dry-run",
        ])
        .unwrap();
        let rendered = render(&requests);
        assert!(
            rendered.contains("signed message (--private-key): "),
            "{rendered}"
        );
        assert!(rendered.contains("X-Signature-Ed25519: "), "{rendered}");
        assert!(!rendered.contains(seed));
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
