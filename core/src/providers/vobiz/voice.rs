//! Vobiz voice callback signatures (V2, V3 and their main-account variants).
//!
//! `V2 = base64(HMAC-SHA256(token, baseURL ‖ nonceV2))`,
//! `V3 = base64(HMAC-SHA256(token, baseURL ‖ "." ‖ nonceV3))`, where `baseURL` is the
//! public origin registered with Vobiz followed by the request path up to the first `?`.
//! The MA variants use the parent account token and the same nonce headers. V1 (SHA-1,
//! undocumented input) is never accepted.

use base64::Engine;

use crate::keys::{macs_equal, Key};
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{self, Covered, Outgoing, Role};
#[cfg(any(test, feature = "sign"))]
use crate::providers::vobiz::sdk_v3;
use crate::providers::Signed;
use crate::request::{Lookup, RequestHead};
use crate::verdict::{Reason, Rejection};

/// Longest signature header accepted: room for 8 comma-separated signatures.
pub const MAX_SIGNATURE_HEADER_BYTES: usize = 512;
/// Most signatures one header may list (token rotation needs two or three).
pub const MAX_SIGNATURES_PER_HEADER: usize = 8;
/// A nonce is exactly this many ASCII digits, as Vobiz and Plivo send it (and document
/// it). Nothing else is accepted: the nonce ends the signed message, so a nonce that could
/// hold a `.` or a `/` would let a captured signature sign another path
/// (`/answer.php` + `N` = `/answer` + `.php.N` under V3; `/answer/` + `N` = `/answer` +
/// `/N`, and every V3 message a V2 one, under V2).
pub const NONCE_DIGITS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    V3,
    V2,
    MaV3,
    MaV2,
}

impl Family {
    pub const ALL: [Family; 4] = [Family::V3, Family::V2, Family::MaV3, Family::MaV2];

    pub fn name(self) -> &'static str {
        match self {
            Family::V3 => "v3",
            Family::V2 => "v2",
            Family::MaV3 => "ma_v3",
            Family::MaV2 => "ma_v2",
        }
    }

    /// Vobiz's signature header of this family.
    pub fn signature_header(self) -> &'static str {
        Brand::Vobiz.signature_header(self)
    }

    /// Vobiz's nonce header of this family.
    pub fn nonce_header(self) -> &'static str {
        Brand::Vobiz.nonce_header(self)
    }

    /// The bytes between base URL and nonce: V3 puts a dot there, V2 nothing.
    fn separator(self) -> &'static [u8] {
        match self {
            Family::V3 | Family::MaV3 => b".",
            Family::V2 | Family::MaV2 => b"",
        }
    }

    pub fn uses_parent_key(self) -> bool {
        matches!(self, Family::MaV3 | Family::MaV2)
    }

    /// The scheme name of this family's docs (`v3`) or SDK (`v3_sdk`) construction.
    pub fn scheme(self, sdk: bool) -> &'static str {
        match (self, sdk) {
            (Family::V3, true) => "v3_sdk",
            (Family::MaV3, true) => "ma_v3_sdk",
            (family, _) => family.name(),
        }
    }

    /// V3 families share the V3 nonce (and, in the SDK, the second construction).
    pub fn is_v3(self) -> bool {
        matches!(self, Family::V3 | Family::MaV3)
    }

    /// The family of the message signed, whoever's key signed it: V3 and MA-V3 sign the
    /// same message (with the same nonce), so a request verified by either is one delivery.
    pub fn message_family(self) -> &'static str {
        if self.is_v3() {
            "vobiz_voice_v3"
        } else {
            "vobiz_voice_v2"
        }
    }

    /// The bytes this family's signature covers, to be concatenated in order: what the
    /// verifier MACs and what a sender (`vobiz-sim`) signs. `origin` is used only by the
    /// docs' construction; the SDK's `url` already starts with it.
    pub fn signed_parts<'a>(
        self,
        origin: &'a [u8],
        message: Message<'a>,
        nonce: &'a [u8],
    ) -> [&'a [u8]; 4] {
        match message {
            Message::Docs { path } => [origin, path, self.separator(), nonce],
            Message::Sdk { url } => [url, b"", b".", nonce],
        }
    }
}

/// Whose headers carry the signatures: Vobiz signs exactly as Plivo does, under its own
/// header names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Brand {
    #[default]
    Vobiz,
    Plivo,
}

impl Brand {
    pub fn signature_header(self, family: Family) -> &'static str {
        match (self, family) {
            (Brand::Vobiz, Family::V3) => "x-vobiz-signature-v3",
            (Brand::Vobiz, Family::V2) => "x-vobiz-signature-v2",
            (Brand::Vobiz, Family::MaV3) => "x-vobiz-signature-ma-v3",
            (Brand::Vobiz, Family::MaV2) => "x-vobiz-signature-ma-v2",
            (Brand::Plivo, Family::V3) => "x-plivo-signature-v3",
            (Brand::Plivo, Family::V2) => "x-plivo-signature-v2",
            (Brand::Plivo, Family::MaV3) => "x-plivo-signature-ma-v3",
            (Brand::Plivo, Family::MaV2) => "x-plivo-signature-ma-v2",
        }
    }

    /// MA variants re-use the V2/V3 nonce headers.
    pub fn nonce_header(self, family: Family) -> &'static str {
        match (self, family.is_v3()) {
            (Brand::Vobiz, true) => "x-vobiz-signature-v3-nonce",
            (Brand::Vobiz, false) => "x-vobiz-signature-v2-nonce",
            (Brand::Plivo, true) => "x-plivo-signature-v3-nonce",
            (Brand::Plivo, false) => "x-plivo-signature-v2-nonce",
        }
    }
}

/// Which V3 message a route accepts: the docs' `baseURL.nonce`, the official SDK's
/// Plivo-style URL with sorted query and POST parameters, or either.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum V3Construction {
    Docs,
    Sdk,
    #[default]
    Either,
}

/// A route's voice policy: which families it accepts and with which keys.
#[derive(Debug, Clone)]
pub struct VoiceScheme {
    pub brand: Brand,
    /// `scheme://authority` exactly as registered with Vobiz: the start of every base URL.
    pub origin: String,
    pub families: Vec<Family>,
    pub v3: V3Construction,
    pub keys: Vec<Key>,
    pub parent_keys: Vec<Key>,
}

/// What verified: enough for logs and metrics, and the message the replay memory knows it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<'k> {
    pub family: Family,
    /// The V3 message was the official SDK's (sorted parameters), not the docs' base URL.
    pub sdk: bool,
    pub key: &'k str,
    pub signed: Signed,
}

impl Verified<'_> {
    /// `v3`, `ma_v3_sdk`, ...: the scheme that matched, for logs and metrics.
    pub fn scheme(&self) -> &'static str {
        self.family.scheme(self.sdk)
    }
}

/// The message a signature is checked against, past the parts every family shares.
#[derive(Debug, Clone, Copy)]
pub enum Message<'a> {
    /// The docs: `origin ‖ path ‖ separator ‖ nonce` (V2 and V3).
    Docs { path: &'a [u8] },
    /// The official SDK's V3: `url ‖ "." ‖ nonce`, where `url` carries sorted parameters.
    Sdk { url: &'a [u8] },
}

/// The well-formed signature/nonce pairs of one request, for the families a route accepts.
#[derive(Debug)]
pub struct Pairs<'r> {
    found: Vec<Pair<'r>>,
    malformed: Option<Rejection>,
}

#[derive(Debug)]
struct Pair<'r> {
    family: Family,
    signatures: Signatures,
    nonce: &'r [u8],
}

impl Pairs<'_> {
    pub fn has_v3(&self) -> bool {
        self.found.iter().any(|p| p.family.is_v3())
    }

    /// The docs' message each pair was checked against, for diagnosing a mismatch behind a
    /// proxy. Origin, path and nonce are not secret; the key is never part of it.
    pub fn docs_messages(&self, origin: &str, path: &[u8]) -> String {
        self.found
            .iter()
            .map(|pair| {
                let mut message = origin.as_bytes().to_vec();
                message.extend_from_slice(path);
                message.extend_from_slice(pair.family.separator());
                message.extend_from_slice(pair.nonce);
                format!("{}=\"{}\"", pair.family.name(), message.escape_ascii())
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Why nothing verified: a malformed pair is more telling than a mismatch.
    pub fn failure(&self) -> Rejection {
        self.malformed
            .clone()
            .unwrap_or_else(|| Rejection::new(Reason::SignatureMismatch, "no signature verified"))
    }
}

impl VoiceScheme {
    pub fn keys_for(&self, family: Family) -> &[Key] {
        if family.uses_parent_key() {
            &self.parent_keys
        } else {
            &self.keys
        }
    }

    /// Reads every accepted family's pair. Fails on a duplicated header, and when no pair
    /// is complete and well-formed (malformed wins over missing).
    pub fn read_pairs<'r>(&self, head: &RequestHead<'r>) -> Result<Pairs<'r>, Rejection> {
        let mut pairs = Pairs {
            found: Vec::with_capacity(self.families.len()),
            malformed: None,
        };
        for &family in &self.families {
            match read_pair(head, family, self.brand)? {
                Some(Ok((signatures, nonce))) => pairs.found.push(Pair {
                    family,
                    signatures,
                    nonce,
                }),
                Some(Err(rejection)) => {
                    pairs.malformed.get_or_insert(rejection);
                }
                None => {}
            }
        }
        if pairs.found.is_empty() {
            return Err(pairs.malformed.unwrap_or_else(|| {
                Rejection::new(
                    Reason::MissingSignature,
                    "no signature and nonce header pair of an accepted family",
                )
            }));
        }
        Ok(pairs)
    }

    /// The family and signed message of a request whose docs' signature verified as
    /// `scheme` (at the headers, so its headers are well-formed): only the nonce is read
    /// again.
    pub fn verified_message(&self, head: &RequestHead, scheme: &str) -> Option<(Family, Signed)> {
        let family = *self.families.iter().find(|f| f.scheme(false) == scheme)?;
        let name = self.brand.nonce_header(family);
        let nonce = parse_nonce(name, single(head, name).ok()??).ok()?;
        let message = Message::Docs {
            path: head.path_without_query(),
        };
        let parts = family.signed_parts(self.origin.as_bytes(), message, nonce);
        Some((family, Signed::over(family.message_family(), &parts, b"")))
    }

    /// Every scheme (family and construction) this route can accept, for metrics.
    pub fn schemes(&self) -> Vec<(&'static str, &[Key])> {
        let mut schemes = Vec::new();
        for &family in &self.families {
            for sdk in [false, true] {
                let message = if sdk {
                    Message::Sdk { url: b"" }
                } else {
                    Message::Docs { path: b"" }
                };
                if self.allows(family, message) {
                    schemes.push((family.scheme(sdk), self.keys_for(family)));
                }
            }
        }
        schemes
    }

    /// Whether `message` is a construction this route accepts for `family`: V2 has only
    /// the docs' message; V3 whichever `v3_construction` allows.
    fn allows(&self, family: Family, message: Message) -> bool {
        match (message, family.is_v3(), self.v3) {
            (Message::Docs { .. }, false, _) => true,
            (Message::Sdk { .. }, false, _) => false,
            (Message::Docs { .. }, true, construction) => construction != V3Construction::Sdk,
            (Message::Sdk { .. }, true, construction) => construction != V3Construction::Docs,
        }
    }

    /// The first pair that verifies under any of its family's keys against `message`, among
    /// the constructions the route accepts.
    pub fn check(&self, pairs: &Pairs, message: Message) -> Option<Verified<'_>> {
        let origin = self.origin.as_bytes();
        let sdk = matches!(message, Message::Sdk { .. });
        for pair in &pairs.found {
            let (family, nonce) = (pair.family, pair.nonce);
            if !self.allows(family, message) {
                continue;
            }
            let parts = family.signed_parts(origin, message, nonce);
            for key in self.keys_for(family) {
                let expected = key.mac(&parts);
                if pair.signatures.iter().any(|s| macs_equal(&expected, s)) {
                    return Some(Verified {
                        family,
                        sdk,
                        key: &key.name,
                        // The body is never among the parts: the SDK's V3 signs the decoded
                        // parameters, not the raw bytes.
                        signed: Signed::over(family.message_family(), &parts, b""),
                    });
                }
            }
        }
        None
    }

    /// The docs' construction alone: what a route needs when it has nothing else to check.
    pub fn verify(&self, head: &RequestHead) -> Result<Verified<'_>, Rejection> {
        let pairs = self.read_pairs(head)?;
        let path = head.path_without_query();
        self.check(&pairs, Message::Docs { path })
            .ok_or_else(|| pairs.failure())
    }
}

/// What signs a voice callback as Vobiz (or Plivo) sends it: the header names, the
/// families with their keys and nonces, and the V3 message.
#[cfg(any(test, feature = "sign"))]
#[derive(Debug, Clone, Copy)]
#[cfg(any(test, feature = "sign"))]
pub struct Sender<'a> {
    pub brand: Brand,
    /// `scheme://authority` as registered with the provider: the start of every message.
    pub origin: &'a str,
    /// In header order; one listed twice is signed once.
    pub families: &'a [Family],
    /// V3 as the official SDK signs it (the URL with sorted parameters), not the docs'
    /// base URL. V2 families always sign the docs' message.
    pub sdk: bool,
    /// The (sub-)account token, for V3 and V2.
    pub key: Option<&'a Key>,
    /// The parent account token, for MA-V3 and MA-V2.
    pub parent_key: Option<&'a Key>,
    pub nonce_v3: &'a str,
    pub nonce_v2: &'a str,
}

#[cfg(any(test, feature = "sign"))]
impl Sender<'_> {
    /// Adds each family's signature and nonce headers (with the content type of a form
    /// POST and Vobiz's user agent), each signature over the very parts the verifier MACs.
    pub fn sign(&self, out: &mut Outgoing) -> Result<(), String> {
        let path_and_query = out.path_and_query();
        let path = path_and_query.split('?').next().unwrap_or_default();
        let sdk_url = match self.sdk {
            true => {
                let method = sdk_v3::Method::from_bytes(out.method.as_bytes())
                    .ok_or("the SDK construction signs only GET and POST")?;
                let params = match method {
                    sdk_v3::Method::Post => {
                        crate::form::parse(&out.body, crate::form::MAX_PAIRS)
                            .map_err(|e| format!("the form has more than {} parameters", e.limit))?
                    }
                    sdk_v3::Method::Get => Vec::new(),
                };
                let url = sdk_v3::signed_url(
                    method,
                    self.origin.as_bytes(),
                    path_and_query.as_bytes(),
                    &params,
                )
                .map_err(|rejection| {
                    format!(
                        "the SDK construction cannot sign this: {}",
                        rejection.detail
                    )
                })?;
                Some(url)
            }
            false => None,
        };
        if out.method == "POST" {
            out.default_header("content-type", "application/x-www-form-urlencoded");
        }
        out.default_header("user-agent", "Vobiz");
        let mut nonce_headers: Vec<&str> = Vec::new();
        for (i, &family) in self.families.iter().enumerate() {
            if self.families[..i].contains(&family) {
                continue;
            }
            let parent = family.uses_parent_key();
            let key = match parent {
                true => self.parent_key,
                false => self.key,
            };
            let key = key.ok_or_else(|| {
                let token = if parent { "parent account" } else { "account" };
                format!("{} needs the {token} token", family.name())
            })?;
            let nonce = if family.is_v3() {
                self.nonce_v3
            } else {
                self.nonce_v2
            };
            let message = match (&sdk_url, family.is_v3()) {
                (Some(url), true) => Message::Sdk { url },
                _ => Message::Docs {
                    path: path.as_bytes(),
                },
            };
            let parts = family.signed_parts(self.origin.as_bytes(), message, nonce.as_bytes());
            out.push(
                self.brand.signature_header(family),
                sign::base64(&key.mac(&parts)),
                Role::Signature { at: 0 },
            );
            out.signed.push(Covered {
                what: family.name(),
                parent,
                message: parts.concat(),
            });
            let nonce_header = self.brand.nonce_header(family);
            if !nonce_headers.contains(&nonce_header) {
                nonce_headers.push(nonce_header);
                out.push(nonce_header, nonce, Role::Nonce);
            }
        }
        Ok(())
    }
}

/// A realistic answer-URL request body, as captured from real Vobiz traffic: a StartApp
/// of call `call_uuid` whose session started at `secs` and `micros`.
#[cfg(any(test, feature = "sign"))]
pub fn example_form(call_uuid: &str, secs: i64, micros: u32) -> String {
    let (date, time) = sign::civil(secs);
    let session_start = format!("{date}+{}.{micros:06}", time.replace(':', "%3A"));
    format!(
        "BillRate=0&CallStatus=ringing&CallUUID={call_uuid}&CallerName=%2B919876543210&CountryCode=\
         &Direction=inbound&Event=StartApp&From=919876543210&ParentAuthID=MA_SIMULATOR\
         &RouteType=&STIRAttestation=Not+Applicable&STIRVerification=Not+Applicable\
         &SessionStart={session_start}&To=918071387000"
    )
}

type Signatures = Vec<[u8; 32]>;

/// Reads one family's signature list and nonce. `Ok(None)`: the pair is incomplete.
/// `Err`: a header is duplicated (fatal). `Ok(Some(Err))`: present but malformed.
#[allow(clippy::type_complexity)]
fn read_pair<'r>(
    head: &RequestHead<'r>,
    family: Family,
    brand: Brand,
) -> Result<Option<Result<(Signatures, &'r [u8]), Rejection>>, Rejection> {
    let (signature_header, nonce_header) =
        (brand.signature_header(family), brand.nonce_header(family));
    let signature = match single(head, signature_header)? {
        Some(value) => value,
        None => return Ok(None),
    };
    let nonce = match single(head, nonce_header)? {
        Some(value) => value,
        None => return Ok(None),
    };
    Ok(Some(parse_nonce(nonce_header, nonce).and_then(|nonce| {
        Ok((parse_signatures(signature_header, signature, brand)?, nonce))
    })))
}

fn single<'r>(head: &RequestHead<'r>, name: &'static str) -> Result<Option<&'r [u8]>, Rejection> {
    match head.lookup(name) {
        Lookup::Missing => Ok(None),
        Lookup::One(value) => Ok(Some(value)),
        Lookup::Duplicate => Err(Rejection::new(
            Reason::DuplicateHeader,
            format!("{name} appears more than once"),
        )),
    }
}

fn parse_nonce<'r>(name: &str, nonce: &'r [u8]) -> Result<&'r [u8], Rejection> {
    if nonce.len() != NONCE_DIGITS || !nonce.iter().all(u8::is_ascii_digit) {
        return Err(malformed(format!(
            "{name}: not {NONCE_DIGITS} ASCII digits"
        )));
    }
    Ok(nonce)
}

/// A comma-separated list of base64 signatures, each exactly 32 bytes once decoded. Plivo's
/// SDK splits on the comma alone (`a, b` does not verify there), so Plivo's are taken as
/// exactly; Vobiz documents no list, and spaces around its items are tolerated.
fn parse_signatures(name: &str, value: &[u8], brand: Brand) -> Result<Signatures, Rejection> {
    if value.len() > MAX_SIGNATURE_HEADER_BYTES {
        return Err(malformed(format!(
            "{name}: longer than {MAX_SIGNATURE_HEADER_BYTES} bytes"
        )));
    }
    let mut signatures = Vec::with_capacity(2);
    for item in value.split(|&b| b == b',') {
        if signatures.len() == MAX_SIGNATURES_PER_HEADER {
            return Err(malformed(format!(
                "{name}: more than {MAX_SIGNATURES_PER_HEADER} signatures"
            )));
        }
        let item = match brand {
            Brand::Vobiz => item.trim_ascii(),
            Brand::Plivo => item,
        };
        let mut decoded = [0u8; 32];
        match base64::engine::general_purpose::STANDARD.decode_slice(item, &mut decoded) {
            Ok(32) => signatures.push(decoded),
            _ => {
                return Err(malformed(format!(
                    "{name}: not a base64-encoded 32-byte HMAC-SHA256"
                )))
            }
        }
    }
    Ok(signatures)
}

fn malformed(detail: String) -> Rejection {
    Rejection::new(Reason::MalformedHeader, detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::test_key;
    use crate::providers::sign::Outgoing;
    use crate::request::headers;

    const ORIGIN: &[u8] = b"https://example.com";
    const NONCE_V2: &str = "12345678901234567890";
    const NONCE_V3: &str = "09876543210987654321";
    // Spec section 2.7, rows 1-4.
    const V2: &str = "gEPZQ2HmngRWdcHbKGv/eaCNsEC9k9MAaOeKkXAco8A=";
    const V3: &str = "hcnUcstlkOnYpO6mUNMBs51VJnZ5p6T+dE1Ov5NShuk=";
    const MA_V2: &str = "suV3aWrsKa4Ssu5qEabZt2jITzfRpH4NY/2Ve/uR+bg=";
    const MA_V3: &str = "0mwQB92O6388f6zutntqJI/DfTZzMrfd8sWxo+OKs6o=";

    fn scheme() -> VoiceScheme {
        VoiceScheme {
            brand: Brand::Vobiz,
            origin: "https://example.com".to_string(),
            v3: V3Construction::Either,
            families: Family::ALL.to_vec(),
            keys: vec![test_key("own", "test_auth_token")],
            parent_keys: vec![test_key("parent", "test_parent_token")],
        }
    }

    fn verify(
        scheme: &VoiceScheme,
        origin: &[u8],
        pairs: &[(&str, &str)],
    ) -> Result<(Family, String), Rejection> {
        let h = headers(pairs);
        let head = RequestHead::new(&h);
        let scheme = VoiceScheme {
            brand: Brand::Vobiz,
            origin: String::from_utf8(origin.to_vec()).unwrap(),
            ..scheme.clone()
        };
        scheme.verify(&head).map(|v| (v.family, v.key.to_string()))
    }

    fn only(family: Family) -> VoiceScheme {
        VoiceScheme {
            families: vec![family],
            ..scheme()
        }
    }

    #[test]
    fn spec_vectors_1_to_4_verify_with_their_own_key() {
        let path = (":path", "/vobiz/answer");
        let cases = [
            (
                Family::V2,
                V2,
                "x-vobiz-signature-v2-nonce",
                NONCE_V2,
                "own",
            ),
            (
                Family::V3,
                V3,
                "x-vobiz-signature-v3-nonce",
                NONCE_V3,
                "own",
            ),
            (
                Family::MaV2,
                MA_V2,
                "x-vobiz-signature-v2-nonce",
                NONCE_V2,
                "parent",
            ),
            (
                Family::MaV3,
                MA_V3,
                "x-vobiz-signature-v3-nonce",
                NONCE_V3,
                "parent",
            ),
        ];
        for (family, sig, nonce_header, nonce, key) in cases {
            let pairs = [
                path,
                (family.signature_header(), sig),
                (nonce_header, nonce),
            ];
            assert_eq!(
                verify(&only(family), ORIGIN, &pairs),
                Ok((family, key.to_string())),
                "{family:?}"
            );
        }
    }

    /// The signer's headers for `families` over `path`, with both spec nonces.
    fn signed(families: &[Family], sdk: bool, url: &str, body: &str, nonce_v3: &str) -> Outgoing {
        let (own, parent) = (
            test_key("own", "test_auth_token"),
            test_key("parent", "test_parent_token"),
        );
        let mut out = Outgoing::new("POST", url, body.as_bytes().to_vec());
        Sender {
            brand: Brand::Vobiz,
            origin: "https://example.com",
            families,
            sdk,
            key: Some(&own),
            parent_key: Some(&parent),
            nonce_v3,
            nonce_v2: NONCE_V2,
        }
        .sign(&mut out)
        .unwrap();
        out
    }

    #[test]
    fn the_signer_reproduces_spec_vectors_1_to_4_and_its_output_verifies() {
        let out = signed(
            &Family::ALL,
            false,
            "https://127.0.0.1:9/vobiz/answer?x=1",
            "a=1",
            NONCE_V3,
        );
        for (family, signature) in [
            (Family::V2, V2),
            (Family::V3, V3),
            (Family::MaV2, MA_V2),
            (Family::MaV3, MA_V3),
        ] {
            assert_eq!(out.header(family.signature_header()), Some(signature));
            let head = out.head();
            let scheme = only(family);
            let verified = scheme.verify(&RequestHead::new(&head)).unwrap();
            assert_eq!(verified.family, family);
        }
        let names: Vec<&str> = out.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "content-type",
                "user-agent",
                "x-vobiz-signature-v3",
                "x-vobiz-signature-v3-nonce",
                "x-vobiz-signature-v2",
                "x-vobiz-signature-v2-nonce",
                "x-vobiz-signature-ma-v3",
                "x-vobiz-signature-ma-v2"
            ]
        );
        assert_eq!(
            out.signed[1].message,
            b"https://example.com/vobiz/answer12345678901234567890"
        );
        // The SDK's V3 (spec 6.2's first row) verifies only with its parameters.
        let sdk = signed(
            &[Family::V3],
            true,
            "https://example.com/answer",
            "To=14155550100&From=14155550123&CallUUID=abc",
            "05429567804466091622",
        );
        assert_eq!(
            sdk.header("x-vobiz-signature-v3"),
            Some("x6sWqj1bWCTFPaPgeo9CQQ6Wb1uhdE93JZ8NwCC/2Ic=")
        );
        assert_eq!(
            sdk.signed[0].message,
            b"https://example.com/answer?CallUUIDabcFrom14155550123To14155550100.05429567804466091622"
        );
        use crate::providers::sign::testing::{changed_body, judge};
        let v3 = VoiceScheme {
            families: vec![Family::V3],
            ..scheme()
        };
        assert_eq!(judge(&v3, &sdk), Ok(("v3_sdk/own".into(), None)));
        assert_eq!(
            judge(&v3, &changed_body(&sdk)),
            Err(Reason::SignatureMismatch)
        );
    }

    #[test]
    fn query_string_is_not_signed() {
        let pairs = [
            (":path", "/vobiz/answer?CallId=42&x=y"),
            ("x-vobiz-signature-v3", V3),
            ("x-vobiz-signature-v3-nonce", NONCE_V3),
        ];
        assert!(verify(&scheme(), ORIGIN, &pairs).is_ok());
    }

    /// Spec rows 5-8: each normalisation changes the MAC; each verifies only with the
    /// exact origin and path it was made for.
    #[test]
    fn spec_vectors_5_to_8_pin_origin_and_path_bytes() {
        let rows = [
            (
                "https://example.com",
                "/vobiz/answer/",
                "/E8tviQI0nZ9RXQc+5iNcv+0rZsae82baORpraBujXc=",
            ),
            (
                "https://example.com:443",
                "/vobiz/answer",
                "xcITTU0grOhL5qfUbqFnijTCQxT9EuLdvUH8aVKRtAg=",
            ),
            (
                "http://example.com",
                "/vobiz/answer",
                "HiRqnaYc6r+l3jai8Ib/yUC1/FPkII5+7YF/vRFMOk0=",
            ),
            (
                "https://example.com:8443",
                "/vobiz/answer",
                "ySsBpcmDp08Lqe0OjF7gguEv/17v6lpiQmn+SgAhblk=",
            ),
        ];
        for (origin, path, sig) in rows {
            let pairs = [
                (":path", path),
                ("x-vobiz-signature-v3", sig),
                ("x-vobiz-signature-v3-nonce", NONCE_V3),
            ];
            assert!(
                verify(&scheme(), origin.as_bytes(), &pairs).is_ok(),
                "{origin}{path}"
            );
            let err = verify(
                &scheme(),
                ORIGIN,
                &[(":path", "/vobiz/answer"), pairs[1], pairs[2]],
            );
            assert_eq!(
                err.unwrap_err().reason,
                Reason::SignatureMismatch,
                "{origin}{path}"
            );
        }
    }

    #[test]
    fn trailing_slash_wrong_key_and_wrong_nonce_do_not_verify() {
        let good = [
            (":path", "/vobiz/answer"),
            ("x-vobiz-signature-v3", V3),
            ("x-vobiz-signature-v3-nonce", NONCE_V3),
        ];
        let mut slash = good;
        slash[0] = (":path", "/vobiz/answer/");
        let mut nonce = good;
        nonce[2] = ("x-vobiz-signature-v3-nonce", "09876543210987654320");
        for pairs in [slash, nonce] {
            assert_eq!(
                verify(&scheme(), ORIGIN, &pairs).unwrap_err().reason,
                Reason::SignatureMismatch
            );
        }
        let wrong_key = VoiceScheme {
            keys: vec![test_key("old", "another_token")],
            ..scheme()
        };
        assert_eq!(
            verify(&wrong_key, ORIGIN, &good).unwrap_err().reason,
            Reason::SignatureMismatch
        );
    }

    #[test]
    fn own_signature_does_not_verify_with_the_parent_key_alone() {
        let pairs = [
            (":path", "/vobiz/answer"),
            ("x-vobiz-signature-ma-v3", V3),
            ("x-vobiz-signature-v3-nonce", NONCE_V3),
        ];
        assert_eq!(
            verify(&scheme(), ORIGIN, &pairs).unwrap_err().reason,
            Reason::SignatureMismatch
        );
    }

    #[test]
    fn any_listed_signature_and_any_key_may_match() {
        let rotated = VoiceScheme {
            keys: vec![
                test_key("new", "next_token"),
                test_key("current", "test_auth_token"),
            ],
            ..scheme()
        };
        let list = format!("{}, {V3}", "A".repeat(43) + "=");
        let pairs = [
            (":path", "/vobiz/answer"),
            ("x-vobiz-signature-v3", list.as_str()),
            ("x-vobiz-signature-v3-nonce", NONCE_V3),
        ];
        assert_eq!(
            verify(&rotated, ORIGIN, &pairs),
            Ok((Family::V3, "current".to_string()))
        );
    }

    #[test]
    fn unaccepted_families_are_ignored() {
        let pairs = [
            (":path", "/vobiz/answer"),
            ("x-vobiz-signature-v2", V2),
            ("x-vobiz-signature-v2-nonce", NONCE_V2),
        ];
        assert_eq!(
            verify(&only(Family::V3), ORIGIN, &pairs)
                .unwrap_err()
                .reason,
            Reason::MissingSignature
        );
    }

    #[test]
    fn v1_alone_is_missing() {
        let pairs = [
            (":path", "/vobiz/answer"),
            ("x-vobiz-signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        ];
        assert_eq!(
            verify(&scheme(), ORIGIN, &pairs).unwrap_err().reason,
            Reason::MissingSignature
        );
    }

    #[test]
    fn signature_without_nonce_is_missing() {
        let pairs = [(":path", "/vobiz/answer"), ("x-vobiz-signature-v3", V3)];
        assert_eq!(
            verify(&scheme(), ORIGIN, &pairs).unwrap_err().reason,
            Reason::MissingSignature
        );
    }

    #[test]
    fn malformed_values_are_400_not_403() {
        let long = "A".repeat(MAX_SIGNATURE_HEADER_BYTES + 1);
        let many = [V3; MAX_SIGNATURES_PER_HEADER + 1].join(",");
        for (sig, nonce) in [
            ("not base64!!", NONCE_V3),
            ("AAAA", NONCE_V3),    // base64 but 3 bytes
            (&V3[..43], NONCE_V3), // missing padding
            (long.as_str(), NONCE_V3),
            (many.as_str(), NONCE_V3),
            (V3, "has space"),
            (V3, ""),
            // Exactly 20 digits: nothing that lets a signed string be cut another way.
            (V3, "0987654321098765432"),
            (V3, "098765432109876543210"),
            (V3, "php.09876543210987654321"),
            (V3, "/0987654321098765432"),
            (V3, "0987654321098765432a"),
        ] {
            let pairs = [
                (":path", "/vobiz/answer"),
                ("x-vobiz-signature-v3", sig),
                ("x-vobiz-signature-v3-nonce", nonce),
            ];
            assert_eq!(
                verify(&scheme(), ORIGIN, &pairs).unwrap_err().reason,
                Reason::MalformedHeader,
                "{sig} / {nonce}"
            );
        }
    }

    #[test]
    fn non_utf8_values_are_malformed_and_never_panic() {
        let h = vec![
            (":path".to_string(), b"/vobiz/answer".to_vec()),
            ("x-vobiz-signature-v3".to_string(), b"\xff\xfe\x80".to_vec()),
            (
                "x-vobiz-signature-v3-nonce".to_string(),
                NONCE_V3.as_bytes().to_vec(),
            ),
        ];
        let err = scheme().verify(&RequestHead::new(&h)).unwrap_err();
        assert_eq!(err.reason, Reason::MalformedHeader);
        let h = vec![
            (":path".to_string(), b"/vobiz/answer".to_vec()),
            ("x-vobiz-signature-v3".to_string(), V3.as_bytes().to_vec()),
            (
                "x-vobiz-signature-v3-nonce".to_string(),
                b"1234\xc3\x28".to_vec(),
            ),
        ];
        let err = scheme().verify(&RequestHead::new(&h)).unwrap_err();
        assert_eq!(err.reason, Reason::MalformedHeader);
    }

    #[test]
    fn a_valid_pair_wins_over_a_malformed_one() {
        let pairs = [
            (":path", "/vobiz/answer"),
            ("x-vobiz-signature-v2", "garbage"),
            ("x-vobiz-signature-v2-nonce", NONCE_V2),
            ("x-vobiz-signature-v3", V3),
            ("x-vobiz-signature-v3-nonce", NONCE_V3),
        ];
        assert!(verify(&scheme(), ORIGIN, &pairs).is_ok());
    }

    #[test]
    fn duplicated_signature_or_nonce_headers_are_refused() {
        let base = [
            (":path", "/vobiz/answer"),
            ("x-vobiz-signature-v3", V3),
            ("x-vobiz-signature-v3-nonce", NONCE_V3),
        ];
        for extra in [
            ("x-vobiz-signature-v3", V3),
            ("X-Vobiz-Signature-V3-Nonce", "1"),
        ] {
            let mut pairs = base.to_vec();
            pairs.push(extra);
            assert_eq!(
                verify(&scheme(), ORIGIN, &pairs).unwrap_err().reason,
                Reason::DuplicateHeader
            );
        }
    }
}
