//! Plugin configuration: the JSON in the Wasm filter's `configuration`, parsed strictly and
//! validated into a [`Policy`]. Every error names the field and the problem.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::Deserialize;

use crate::keys::Key;
use crate::net::Cidr;
use crate::path_view::Prefix;
use crate::policy::{host_name, Mode, OnDuplicate, Policy, Replay, Route, Selection, Transport};
use crate::providers::entry::{Entry, Field, Secret, Settings};
use crate::providers::registry;
use crate::providers::standard_webhooks;
use crate::providers::vobiz::voice::{Family, V3Construction};
use crate::providers::{generic, token, Time};
use crate::public_key::{PublicKey, Written};
use crate::replay::{ReplayCache, Timing, WhenFull};
use crate::sealed::SealingKey;
use crate::store::registry::KINDS;
use crate::store::{self, Api, FleetStore, Kind, OnError, Scope};
use crate::timestamp::{Edges, Freshness};
use crate::verdict::Reason;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

fn error(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        problem: problem.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    routes: Vec<RawRoute>,
    #[serde(default)]
    upstream_header: Option<String>,
    /// Mirrors the Envoy `PluginConfig` flag of the same name, which the filter cannot read.
    #[serde(default = "default_true")]
    allow_on_headers_stop_iteration: bool,
    #[serde(default)]
    sealing_key: Option<RawSealingKey>,
}

/// Where the key that opens `sealed` keys is: an environment variable, never inline (the
/// point of sealing is a configuration that shows no secret).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSealingKey {
    env: String,
}

fn default_true() -> bool {
    true
}

/// A route's `scheme`: the registry's entry of that name.
#[derive(Clone, Copy)]
struct SchemeName(&'static Entry);

impl<'de> Deserialize<'de> for SchemeName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        registry::find(&name)
            .map(SchemeName)
            .ok_or_else(|| serde::de::Error::unknown_variant(&name, &registry::NAMES))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    name: String,
    path_prefix: String,
    #[serde(default)]
    host: Option<String>,
    #[serde(default = "default_scheme")]
    scheme: SchemeName,
    #[serde(default)]
    public_origin: Option<String>,
    #[serde(default)]
    keys: Vec<RawKey>,
    #[serde(default)]
    parent_keys: Vec<RawKey>,
    /// Public keys, for the schemes signed with the provider's private key.
    #[serde(default)]
    public_keys: Vec<RawKey>,
    #[serde(default)]
    accept: Option<Vec<Family>>,
    #[serde(default)]
    v3_construction: Option<V3Construction>,
    #[serde(default)]
    allow_plain_http: bool,
    #[serde(default)]
    trust_x_forwarded_proto: bool,
    #[serde(default)]
    replay: RawReplay,
    #[serde(default)]
    freshness: Option<RawFreshness>,
    #[serde(default = "default_max_body_bytes")]
    max_body_bytes: u32,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    trusted_proxies: Vec<String>,
    #[serde(default)]
    allowed_sources: Vec<String>,
    #[serde(default)]
    debug_signed_string: bool,
    /// The generic HMAC scheme's description (`scheme: generic_hmac` only).
    #[serde(default)]
    generic: Option<generic::Raw>,
    #[serde(default = "default_true")]
    answer_handshakes: bool,
    /// Meta's subscription-check token (`scheme: meta` only).
    #[serde(default)]
    verify_token: Option<RawKey>,
    /// How a static credential is presented (`static_token`, `basic_auth`).
    #[serde(default)]
    token: Option<token::Raw>,
    /// Where signing certificates are fetched from (`scheme: sns` or `paypal` only).
    #[serde(default)]
    certificate: Option<crate::remote_key::Raw>,
    /// The token an Envoy filter before this one verified (`scheme: google_pubsub` only).
    #[serde(default)]
    jwt: Option<crate::providers::google_pubsub::Raw>,
    /// The status of a refusal, by reason code, where the provider insists on another.
    #[serde(default)]
    refusal_status: BTreeMap<String, u16>,
}

fn default_scheme() -> SchemeName {
    SchemeName(&crate::providers::vobiz::VOICE)
}

/// Vobiz callbacks are small forms or JSON envelopes; 128 KiB leaves ample room.
fn default_max_body_bytes() -> u32 {
    128 * 1024
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReplay {
    #[serde(default = "default_true")]
    enabled: bool,
    #[serde(default = "default_window")]
    window: Duration,
    #[serde(default = "default_max_entries")]
    max_entries: u32,
    #[serde(default = "default_in_flight_timeout")]
    in_flight_timeout: Duration,
    /// The default depends on the scheme: `deliver` where the provider repeats itself.
    #[serde(default)]
    on_duplicate: Option<OnDuplicate>,
    #[serde(default)]
    when_full: WhenFull,
    #[serde(default)]
    store: Option<RawStore>,
}

impl Default for RawReplay {
    fn default() -> Self {
        RawReplay {
            enabled: true,
            window: default_window(),
            max_entries: default_max_entries(),
            in_flight_timeout: default_in_flight_timeout(),
            on_duplicate: None,
            when_full: WhenFull::default(),
            store: None,
        }
    }
}

/// `replay.store`: flat, so that every error names its field (a tagged enum would hide
/// the field behind the tag).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    #[serde(rename = "type")]
    kind: StoreKind,
    #[serde(default)]
    cluster: Option<String>,
    #[serde(default)]
    authority: Option<String>,
    #[serde(default)]
    key_prefix: Option<String>,
    #[serde(default)]
    timeout: Option<Millis>,
    #[serde(default)]
    on_error: Option<OnError>,
    #[serde(default)]
    lease_bucket: Option<Duration>,
    #[serde(default)]
    api: Option<Api>,
    #[serde(default)]
    attempts: Option<u8>,
}

/// `replay.store.type`: `shared_data` (`None`), or a fleet-wide store of [`KINDS`].
struct StoreKind(Option<&'static Kind>);

/// Every store type, for the error that names an unknown one.
const STORE_TYPES: [&str; KINDS.len() + 1] = {
    let mut names = ["shared_data"; KINDS.len() + 1];
    let mut i = 0;
    while i < KINDS.len() {
        names[i + 1] = KINDS[i].name;
        i += 1;
    }
    names
};

impl<'de> Deserialize<'de> for StoreKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        if name == STORE_TYPES[0] {
            return Ok(StoreKind(None));
        }
        match KINDS.iter().find(|kind| kind.name == name) {
            Some(kind) => Ok(StoreKind(Some(kind))),
            None => Err(serde::de::Error::unknown_variant(&name, &STORE_TYPES)),
        }
    }
}

fn default_window() -> Duration {
    Duration(24 * 3600)
}

/// About 5 MB of shared data.
fn default_max_entries() -> u32 {
    100_000
}

/// Vobiz waits a few seconds for an answer and Envoy's route timeout defaults to 15 s; a
/// claim older than this belongs to an attempt that was lost.
fn default_in_flight_timeout() -> Duration {
    Duration(30)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFreshness {
    max_age: Duration,
    #[serde(default = "default_max_future_skew")]
    max_future_skew: Duration,
    #[serde(default)]
    require: Option<bool>,
}

fn default_max_future_skew() -> Duration {
    Duration(300)
}

/// A duration written as a whole number with a unit: `30s`, `5m`, `24h`, `7d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Duration(u32);

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_duration(&text).map(Duration).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid duration {text:?}: use a whole number followed by s, m, h or d (e.g. \"24h\")"
            ))
        })
    }
}

/// A duration that may also be given in milliseconds: `250ms`, `1s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Millis(u32);

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_millis(&text).map(Millis).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid duration {text:?}: use a whole number followed by ms, s, m or h (e.g. \"250ms\")"
            ))
        })
    }
}

fn parse_millis(text: &str) -> Option<u32> {
    match text.strip_suffix("ms") {
        Some(number) if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) => {
            number.parse().ok()
        }
        Some(_) => None,
        None => parse_duration(text)?.checked_mul(1000),
    }
}

fn parse_duration(text: &str) -> Option<u32> {
    let split = text.len().checked_sub(1)?;
    // Checked: a multi-byte last character has no char boundary one byte from the end.
    let (number, unit) = text.split_at_checked(split)?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return None,
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    number.parse::<u32>().ok()?.checked_mul(scale)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    env: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    sealed: Option<String>,
}

/// Where keys' text comes from: the VM's environment, and the sealing key (from it too)
/// that opens `sealed` keys.
struct Sources<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    sealing: Option<SealingKey>,
}

/// A parser's message with each string value it quotes (`invalid type: string "…"`) left
/// out: the value may be a secret written where an object belongs (`"keys": ["token"]`),
/// and the message is logged. Field and variant names, in backquotes, stay.
fn without_strings(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find("string \"") {
        out.push_str(&rest[..start]);
        out.push_str("a string");
        let quoted = &rest[start + "string \"".len()..];
        // The value is written as Rust's Debug writes it: `\"` and `\\` escaped.
        let mut escaped = false;
        let end = quoted.char_indices().find(|&(_, c)| {
            let closes = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            closes
        });
        rest = end.map_or("", |(i, _)| &quoted[i + 1..]);
    }
    out.push_str(rest);
    out
}

/// Parses and validates the plugin configuration. `env` looks up the VM's environment
/// variables (those passed with `vm_config.environment_variables`).
pub fn parse(bytes: &[u8], env: &dyn Fn(&str) -> Option<String>) -> Result<Policy, ConfigError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let raw: RawConfig = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        // `.` is the document itself; an empty path, an unknown field named "".
        let field = if path == "." || path.is_empty() {
            "configuration".to_string()
        } else {
            path
        };
        error(field, without_strings(&e.into_inner().to_string()))
    })?;
    if raw.routes.is_empty() {
        return Err(error("routes", "must list at least one protected route"));
    }
    let hold_headers = raw.allow_on_headers_stop_iteration;
    let sources = Sources {
        env,
        sealing: raw
            .sealing_key
            .map(|key| sealing_key(&key, env))
            .transpose()?,
    };
    if let Some(name) = &raw.upstream_header {
        let token = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
        if name.is_empty() || !name.bytes().all(token) {
            return Err(error(
                "upstream_header",
                "must be a lowercase header name of [a-z0-9-]",
            ));
        }
    }
    let mut names = HashSet::new();
    let mut warnings = Vec::new();
    let mut secrets = Vec::new();
    let routes = raw
        .routes
        .into_iter()
        .enumerate()
        .map(|(i, route)| {
            let field = format!("routes[{i}]");
            if !names.insert(route.name.clone()) {
                return Err(error(
                    format!("{field}.name"),
                    format!("duplicate route name {:?}", route.name),
                ));
            }
            if route.generic.as_ref().is_some_and(generic::Raw::names_an_id) {
                warnings.push(format!(
                    "{field}.generic.id is no longer read: the replay identity is always the whole signed message"
                ));
            }
            let scheme = route.scheme.0.scheme;
            let (route, keys) = compile_route(&field, route, &sources)?;
            secrets.extend(keys.into_iter().map(|(at, key)| ((at, i), scheme, key)));
            Ok(route)
        })
        .collect::<Result<Vec<Route>, _>>()?;
    let pairs: Vec<_> = shared_pairs(&secrets).collect();
    check_mac_oracles(&routes, &pairs)?;
    warnings.extend(shared_secrets(&routes, &pairs));
    Ok(Policy {
        selection: Selection::of(&routes),
        routes,
        hold_headers,
        upstream_header: raw.upstream_header,
        warnings,
    })
}

/// Where a route's secret is: the field that configured it, and the route's index.
type SecretAt = (String, usize);

/// The secrets of one route, each with the field that configured it.
fn named_secrets(field: &str, keys: &[Key]) -> Vec<(String, Key)> {
    keys.iter()
        .enumerate()
        .map(|(i, key)| (format!("{field}[{i}]"), key.clone()))
        .collect()
}

/// A route's secret: where it is configured, its route's scheme, its key.
type RouteSecret<'s> = (SecretAt, &'s str, Key);

/// Two routes' secrets that sign alike.
type SharedPair<'a, 's> = (&'a RouteSecret<'s>, &'a RouteSecret<'s>);

/// Every pair of one secret on two routes, each pair compared once.
fn shared_pairs<'a, 's>(
    secrets: &'a [RouteSecret<'s>],
) -> impl Iterator<Item = SharedPair<'a, 's>> {
    secrets.iter().enumerate().flat_map(move |(i, a)| {
        secrets[i + 1..]
            .iter()
            .filter(move |b| a.0 .1 != b.0 .1 && a.2.same_secret(&b.2))
            .map(move |b| (a, b))
    })
}

/// A route that answers anyone with a MAC under its key (X's CRC) holds that key alone:
/// on another route, an answer could be the signature of a message there.
fn check_mac_oracles(routes: &[Route], pairs: &[SharedPair]) -> Result<(), ConfigError> {
    for (((field, route), ..), ((other_field, other_route), ..)) in pairs {
        let oracle = [*route, *other_route]
            .into_iter()
            .find(|&r| routes[r].provider.answers_with_macs());
        if let Some(oracle) = oracle {
            return Err(error(
                other_field.clone(),
                format!(
                    "is the secret of {field} too, and route {} answers anyone with a MAC under it (its CRC check): give each route its own secret",
                    routes[oracle].name
                ),
            ));
        }
    }
    Ok(())
}

/// One secret on two routes: a signature made for one could verify the other, where a
/// body or message of one scheme can be read as the other's (KYC and voice share the
/// parent token by design: KYC takes only JSON objects, which no voice base string is),
/// and each route remembers its deliveries apart.
fn shared_secrets(routes: &[Route], pairs: &[SharedPair]) -> Vec<String> {
    pairs
        .iter()
        .map(|(((field, route), scheme, _), ((other_field, other_route), other_scheme, _))| {
            format!(
                "{field} (route {}, scheme {scheme}) and {other_field} (route {}, scheme {other_scheme}) are the same secret: a signature for one route could verify on the other; give each its own secret where the provider allows",
                routes[*route].name, routes[*other_route].name,
            )
        })
        .collect()
}

/// The route, and its secrets with the fields that configured them (for
/// [`shared_secrets`]). What is the same for every scheme is compiled here; the rest by
/// the scheme's own entry in the registry.
fn compile_route(
    field: &str,
    raw: RawRoute,
    sources: &Sources,
) -> Result<(Route, Vec<(String, Key)>), ConfigError> {
    let at = |name: &str| format!("{field}.{name}");
    check_identifier(&at("name"), &raw.name)?;
    let path_prefix =
        Prefix::new(&raw.path_prefix).map_err(|problem| error(at("path_prefix"), problem))?;
    let host = match &raw.host {
        Some(host) => Some(compile_host(&at("host"), host)?),
        None => None,
    };
    let transport = match (raw.allow_plain_http, raw.trust_x_forwarded_proto) {
        (false, false) => Transport::RequireTls,
        (false, true) => Transport::TrustForwardedProto,
        (true, false) => Transport::AllowPlainHttp,
        (true, true) => {
            return Err(error(
                at("trust_x_forwarded_proto"),
                "has no effect when allow_plain_http is true; set only one",
            ))
        }
    };
    if raw.max_body_bytes == 0 {
        return Err(error(at("max_body_bytes"), "must be at least 1"));
    }
    let entry = raw.scheme.0;
    let given = [
        (Field::PublicOrigin, raw.public_origin.is_some()),
        (Field::ParentKeys, !raw.parent_keys.is_empty()),
        (Field::PublicKeys, !raw.public_keys.is_empty()),
        (Field::Accept, raw.accept.is_some()),
        (Field::V3Construction, raw.v3_construction.is_some()),
        (Field::Generic, raw.generic.is_some()),
        (Field::VerifyToken, raw.verify_token.is_some()),
        (Field::Token, raw.token.is_some()),
        (Field::Certificate, raw.certificate.is_some()),
        (Field::Jwt, raw.jwt.is_some()),
    ];
    if let Some((unread, _)) = given.iter().find(|(f, set)| *set && !entry.reads(*f)) {
        return Err(error(at(unread.name()), registry::not_read(*unread)));
    }
    let mut key_names = HashSet::new();
    let secret = |name: String, secret: &str| {
        let bytes = match (entry.secret, raw.generic.as_ref()) {
            (Secret::Whsec, _) => standard_webhooks::secret_bytes(secret).ok_or_else(|| {
                format!(
                    "is not whsec_ followed by base64, as {} secrets are",
                    entry.scheme
                )
            })?,
            (Secret::Generic, Some(generic)) => generic
                .key
                .bytes(secret)
                .ok_or("is not written as generic.key describes")?,
            (Secret::Base64, _) => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(secret)
                    .ok()
                    .filter(|bytes| !bytes.is_empty())
                    .ok_or_else(|| format!("is not base64, as {} keys are", entry.scheme))?
            }
            (Secret::Credentials, _)
                if secret.split_once(':').is_none_or(|(_, pw)| pw.is_empty()) =>
            {
                return Err(
                    "is not user:password with a password, as Basic credentials are".to_string(),
                )
            }
            (Secret::Written { check, form, .. }, _) if !check(secret) => {
                return Err(format!("is not {form}"))
            }
            (
                Secret::Text
                | Secret::Generic
                | Secret::Credentials
                | Secret::Identifier
                | Secret::Written { .. },
                _,
            ) => secret.as_bytes().to_vec(),
        };
        let key = Key::new(name, &bytes).map_err(|_| "is unusable".to_string())?;
        Ok(match entry.secret {
            Secret::Identifier => key.identifying(secret),
            _ => key,
        })
    };
    let keys = compile_keys(
        &at("keys"),
        raw.keys,
        "key",
        &mut key_names,
        sources,
        &secret,
    )?;
    let parent_keys = compile_keys(
        &at("parent_keys"),
        raw.parent_keys,
        "parent",
        &mut key_names,
        sources,
        &secret,
    )?;
    let mut secrets = named_secrets(&at("keys"), &keys);
    secrets.extend(named_secrets(&at("parent_keys"), &parent_keys));
    let public_keys = match entry.public_keys {
        None => Vec::new(),
        Some(written) => compile_keys(
            &at("public_keys"),
            raw.public_keys,
            "public",
            &mut key_names,
            sources,
            &|name, text| {
                PublicKey::parse(name, text, written)
                    .ok_or_else(|| format!("is not {}", written.describe()))
            },
        )?,
    };
    let verify_token = match &raw.verify_token {
        Some(token) => Some(
            key_text(&at("verify_token"), token, sources)?
                .0
                .into_bytes(),
        ),
        None => None,
    };
    let raw_on_duplicate = raw.replay.on_duplicate;
    let replay = compile_replay(&at("replay"), &raw.name, raw.replay)?;
    if !entry.reads(Field::ParentKeys) {
        check_keys_given(&at, entry, &keys, &public_keys)?;
    }
    if let Some(origin) = &raw.public_origin {
        check_origin(&at("public_origin"), origin, transport)?;
    }
    let settings = Settings {
        keys,
        parent_keys,
        public_keys,
        public_origin: raw.public_origin,
        accept: raw.accept,
        v3_construction: raw.v3_construction,
        generic: raw.generic,
        verify_token,
        token: raw.token,
        certificate: raw.certificate,
        jwt: raw.jwt,
        replay: replay.is_some(),
        answer_handshakes: raw.answer_handshakes,
    };
    let provider = (entry.compile)(settings).map_err(|e| error(at(&e.field), e.problem))?;
    // A provider that repeats itself: an identical request is not a replay by itself.
    let replay = replay.map(|replay| match (raw_on_duplicate, provider.repeats()) {
        (None, true) => Replay {
            on_duplicate: OnDuplicate::Deliver,
            ..replay
        },
        _ => replay,
    });
    let mut bound_headers = vec!["content-type".to_string(), "content-encoding".to_string()];
    for name in provider.dispatch_headers() {
        let name = name.to_ascii_lowercase();
        if !bound_headers.contains(&name) {
            bound_headers.push(name);
        }
    }
    let freshness = compile_freshness(
        &at("freshness"),
        raw.freshness,
        provider.time(),
        entry,
        replay.as_ref(),
    )?;
    // The route's statuses first: they override the provider's.
    let mut refusal_status = compile_refusal_status(&at("refusal_status"), raw.refusal_status)?;
    for &(reason, status) in provider.refusal_status() {
        if !refusal_status.iter().any(|(given, _)| *given == reason) {
            refusal_status.push((reason, status));
        }
    }
    let trusted_proxies = compile_cidrs(&at("trusted_proxies"), &raw.trusted_proxies)?;
    let allowed_sources = compile_cidrs(&at("allowed_sources"), &raw.allowed_sources)?;
    if !trusted_proxies.is_empty()
        && transport != Transport::TrustForwardedProto
        && allowed_sources.is_empty()
    {
        return Err(error(
            at("trusted_proxies"),
            "has no effect without trust_x_forwarded_proto or allowed_sources",
        ));
    }

    let route = Route {
        name: raw.name,
        path_prefix,
        host,
        transport,
        provider,
        scheme: entry.scheme,
        replay,
        freshness,
        max_body_bytes: raw.max_body_bytes,
        mode: raw.mode,
        trusted_proxies,
        allowed_sources,
        debug_signed_string: raw.debug_signed_string,
        answer_handshakes: raw.answer_handshakes,
        bound_headers,
        refusal_status,
    };
    Ok((route, secrets))
}

/// `refusal_status`: reason codes, each with a status from 400 to 599. `already_delivered`
/// is not a refusal (its 200 stops the provider's retries), so it cannot be changed.
fn compile_refusal_status(
    field: &str,
    raw: BTreeMap<String, u16>,
) -> Result<Vec<(Reason, u16)>, ConfigError> {
    raw.into_iter()
        .map(|(code, status)| {
            let at = format!("{field}.{code}");
            let reason = Reason::ALL
                .into_iter()
                .filter(|reason| *reason != Reason::AlreadyDelivered)
                .find(|reason| reason.code() == code)
                .ok_or_else(|| {
                    error(
                        at.clone(),
                        "is not the code of a refusal (missing_signature, signature_mismatch, stale, ...: README, \"What each status means\")",
                    )
                })?;
            if !(400..=599).contains(&status) {
                return Err(error(at, "must be a status from 400 to 599"));
            }
            Ok((reason, status))
        })
        .collect()
}

/// Every scheme but voice's (whose keys come in two lists) needs a key of the kind it
/// verifies with.
fn check_keys_given(
    at: &dyn Fn(&str) -> String,
    entry: &Entry,
    keys: &[Key],
    public_keys: &[PublicKey],
) -> Result<(), ConfigError> {
    match (entry.public_keys, keys.is_empty(), public_keys.is_empty()) {
        (Some(Written::Ed25519Whpk), true, true) => Err(error(
            at("keys"),
            "at least one key (whsec_ secret) or public key (whpk_, in public_keys) is required",
        )),
        (Some(Written::Ed25519Whpk), ..) => Ok(()),
        (Some(written), false, _) => Err(error(
            at("keys"),
            format!(
                "scheme {} signs with the provider's private key: give its public key ({}) in public_keys",
                entry.scheme,
                written.describe()
            ),
        )),
        (Some(_), true, true) => Err(error(at("public_keys"), "at least one public key is required")),
        (None, true, _) => Err(error(at("keys"), "at least one key is required")),
        (Some(_), true, false) | (None, false, _) => Ok(()),
    }
}

fn compile_cidrs(field: &str, raw: &[String]) -> Result<Vec<Cidr>, ConfigError> {
    raw.iter()
        .enumerate()
        .map(|(i, text)| {
            Cidr::parse(text).ok_or_else(|| {
                error(
                    format!("{field}[{i}]"),
                    format!("{text:?} is not an IP address or CIDR block like 10.0.0.0/8"),
                )
            })
        })
        .collect()
}

fn compile_replay(field: &str, route: &str, raw: RawReplay) -> Result<Option<Replay>, ConfigError> {
    if !raw.enabled {
        return Ok(None);
    }
    if raw.window.0 == 0 {
        return Err(error(format!("{field}.window"), "must be at least 1s"));
    }
    if raw.max_entries == 0 {
        return Err(error(format!("{field}.max_entries"), "must be at least 1"));
    }
    if raw.in_flight_timeout.0 == 0 || raw.in_flight_timeout.0 > raw.window.0 {
        return Err(error(
            format!("{field}.in_flight_timeout"),
            "must be between 1s and the replay window",
        ));
    }
    // The layout version is part of the key prefix ("cg2": slots of 24 holding 64), the
    // slot count is added by the cache: caches of another layout or size never read each
    // other's slots, also while two filter versions share an Envoy during a rollout.
    let prefix = format!("cg2/{route}/");
    let cache = ReplayCache::new(
        &prefix,
        raw.max_entries,
        raw.window.0,
        raw.in_flight_timeout.0,
    )
    .when_full(raw.when_full);
    let fleet = match raw.store {
        Some(store) => compile_store(&format!("{field}.store"), route, store, cache.timing())?,
        None => None,
    };
    Ok(Some(Replay {
        cache,
        on_duplicate: raw.on_duplicate.unwrap_or_default(),
        fleet,
    }))
}

fn compile_store(
    field: &str,
    route: &str,
    raw: RawStore,
    timing: Timing,
) -> Result<Option<Box<dyn FleetStore>>, ConfigError> {
    let at = |name: &str| format!("{field}.{name}");
    let set = [
        ("cluster", raw.cluster.is_some()),
        ("authority", raw.authority.is_some()),
        ("key_prefix", raw.key_prefix.is_some()),
        ("timeout", raw.timeout.is_some()),
        ("on_error", raw.on_error.is_some()),
        ("lease_bucket", raw.lease_bucket.is_some()),
        ("api", raw.api.is_some()),
        ("attempts", raw.attempts.is_some()),
    ];
    let reads = |kind: Option<&Kind>, name: &str| kind.is_some_and(|k| k.reads.contains(&name));
    if let Some((name, _)) = set
        .iter()
        .find(|(name, set)| *set && !reads(raw.kind.0, name))
    {
        let readers: Vec<&str> = KINDS
            .iter()
            .filter(|kind| reads(Some(kind), name))
            .map(|kind| kind.name)
            .collect();
        return Err(error(
            at(name),
            format!("applies only to type {}", readers.join(" or ")),
        ));
    }
    let Some(kind) = raw.kind.0 else {
        return Ok(None);
    };
    let settings = store::Settings {
        cluster: raw.cluster,
        authority: raw.authority,
        key_prefix: raw.key_prefix,
        timeout_ms: raw.timeout.map(|t| t.0),
        on_error: raw.on_error,
        lease_bucket_secs: raw.lease_bucket.map(|b| b.0),
        api: raw.api,
        attempts: raw.attempts,
    };
    let scope = Scope { route, timing };
    (kind.compile)(settings, &scope)
        .map(Some)
        .map_err(|(name, problem)| error(at(name), problem))
}

/// A scheme's signed time is checked by default with its SDK's window (WhatsApp's
/// `occurred_at`, Stripe's `t`); the voice `timestamp` parameter is unsigned, so checking
/// it is opt-in; KYC has no usable timestamp.
fn compile_freshness(
    field: &str,
    raw: Option<RawFreshness>,
    time: Time,
    entry: &Entry,
    replay: Option<&Replay>,
) -> Result<Option<Freshness>, ConfigError> {
    let edges = match time {
        Time::Signed(default) => default.edges,
        Time::Unsigned | Time::None => Edges::Exact,
    };
    let raw = match (raw, time) {
        (Some(_), Time::None) => {
            return Err(error(
                field,
                format!(
                    "is not available for scheme {}: it signs no time",
                    entry.scheme
                ),
            ))
        }
        (None, Time::Signed(default)) => RawFreshness {
            max_age: Duration(default.max_age_secs),
            max_future_skew: Duration(default.max_future_secs),
            require: None,
        },
        (None, _) => return Ok(None),
        (Some(raw), _) => raw,
    };
    if raw.max_age.0 == 0 {
        return Err(error(format!("{field}.max_age"), "must be at least 1s"));
    }
    let required = match (time, raw.require) {
        (_, Some(_)) if !entry.reads(Field::FreshnessRequire) => {
            return Err(error(
                format!("{field}.require"),
                registry::not_read(Field::FreshnessRequire),
            ))
        }
        (Time::Unsigned, require) => require.unwrap_or(false),
        (_, _) => true,
    };
    // A delivery must be remembered for as long as it counts as fresh, or it could be
    // replayed after the cache forgot it but before it went stale.
    if let (Some(replay), Time::Signed(_)) = (replay, time) {
        let fresh_for = u64::from(raw.max_age.0) + u64::from(raw.max_future_skew.0);
        if u64::from(replay.cache.window_secs()) < fresh_for {
            return Err(error(
                format!("{field}.max_age"),
                "max_age + max_future_skew must not exceed replay.window",
            ));
        }
    }
    Ok(Some(Freshness {
        max_age_secs: raw.max_age.0,
        max_future_secs: raw.max_future_skew.0,
        required,
        edges,
    }))
}

/// Route and key names end up in logs and metric names (where dots separate parts), so
/// keep them to a safe alphabet.
fn check_identifier(field: &str, name: &str) -> Result<(), ConfigError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(error(
            field,
            format!("{name:?} must be 1-64 characters of [A-Za-z0-9_-]"),
        ))
    }
}

/// The host name a route is restricted to, as requests are compared with it (see
/// [`host_name`]): a port is accepted but plays no part, since applications route on names.
fn compile_host(field: &str, host: &str) -> Result<String, ConfigError> {
    match host_name(host.as_bytes()) {
        Some(name) if host.trim() == host => Ok(String::from_utf8_lossy(name).to_ascii_lowercase()),
        _ => Err(error(field, "must be a host name, optionally with :port")),
    }
}

/// `scheme://authority`, exactly as registered with Vobiz; the MAC covers these bytes.
fn check_origin(field: &str, origin: &str, transport: Transport) -> Result<(), ConfigError> {
    let (scheme, authority) = match origin.split_once("://") {
        Some(parts) => parts,
        None => return Err(error(field, "must look like https://host[:port]")),
    };
    if scheme != "https" && scheme != "http" {
        return Err(error(field, "scheme must be lowercase https or http"));
    }
    if authority.is_empty()
        || authority
            .bytes()
            .any(|b| !b.is_ascii_graphic() || matches!(b, b'/' | b'?' | b'#' | b'@'))
    {
        return Err(error(
            field,
            "must be scheme://host[:port] with no path, query, fragment, userinfo or trailing slash",
        ));
    }
    if scheme == "http" && transport == Transport::RequireTls {
        return Err(error(
            field,
            "is http:// but the route requires TLS; set allow_plain_http: true if Vobiz really calls this origin over plain HTTP",
        ));
    }
    Ok(())
}

/// The text of an environment variable the configuration names at `field`.
fn env_text(
    field: String,
    var: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    env(var).ok_or_else(|| {
        error(
            field,
            format!(
                "environment variable {var:?} is not set in the VM (list it in vm_config.environment_variables)"
            ),
        )
    })
}

fn sealing_key(
    raw: &RawSealingKey,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<SealingKey, ConfigError> {
    let text = env_text("sealing_key.env".into(), &raw.env, env)?;
    SealingKey::from_text(&text).map_err(|problem| {
        error(
            "sealing_key.env",
            format!("environment variable {:?} {problem}", raw.env),
        )
    })
}

/// Where a key's text comes from: `env`, `value` or `sealed`, exactly one, and the text as
/// given (not empty, no surrounding whitespace: a pasted newline is a different key). Also
/// returns the source, for errors that must not print the text.
fn key_text(field: &str, key: &RawKey, sources: &Sources) -> Result<(String, String), ConfigError> {
    let (text, source) = match (&key.env, &key.value, &key.sealed) {
        (Some(var), None, None) => (
            env_text(format!("{field}.env"), var, sources.env)?,
            var.clone(),
        ),
        (None, Some(value), None) => (value.clone(), "value".to_string()),
        (None, None, Some(sealed)) => {
            let Some(sealing) = &sources.sealing else {
                return Err(error(
                    format!("{field}.sealed"),
                    "needs the configuration's sealing_key (the environment variable that opens it)",
                ));
            };
            let text = sealing
                .open(sealed)
                .map_err(|problem| error(format!("{field}.sealed"), problem))?;
            (text, "sealed".to_string())
        }
        _ => return Err(error(field, "give exactly one of env, value or sealed")),
    };
    if text.is_empty() {
        return Err(error(field, format!("key from {source} is empty")));
    }
    if text.trim() != text {
        return Err(error(
            field,
            format!("key from {source} has leading or trailing whitespace"),
        ));
    }
    Ok((text, source))
}

/// A list of keys (`keys`, `parent_keys`, `public_keys`), each named uniquely within the
/// route and made ready by `make`, whose error says what the text is not.
fn compile_keys<T>(
    field: &str,
    raw: Vec<RawKey>,
    default_prefix: &str,
    names: &mut HashSet<String>,
    sources: &Sources,
    make: &dyn Fn(String, &str) -> Result<T, String>,
) -> Result<Vec<T>, ConfigError> {
    raw.into_iter()
        .enumerate()
        .map(|(i, key)| {
            let field = format!("{field}[{i}]");
            let (text, source) = key_text(&field, &key, sources)?;
            let name = key.name.unwrap_or_else(|| format!("{default_prefix}{i}"));
            check_identifier(&format!("{field}.name"), &name)?;
            if !names.insert(name.clone()) {
                return Err(error(
                    format!("{field}.name"),
                    format!("duplicate key name {name:?}"),
                ));
            }
            make(name, &text)
                .map_err(|problem| error(&field, format!("key from {source} {problem}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Route;
    use crate::providers::asymmetric::Asymmetric;
    use crate::providers::body_mac::BodySigned;
    use crate::providers::meta::Meta;
    use crate::providers::twilio::Twilio;
    use crate::providers::vobiz::voice::{Brand, VoiceScheme};
    use crate::providers::vobiz::WhatsApp;
    use crate::store::etcd::Etcd;
    use crate::timestamp::FIVE_MINUTES;
    use crate::verdict::Rejection;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("test_auth_token".into()),
            "PARENT" => Some("test_parent_token".into()),
            "EMPTY" => Some(String::new()),
            "NEWLINE" => Some("token\n".into()),
            "SEALING" => Some(SEALING.into()),
            "SHORT_SEALING" => Some("c2hvcnQ=".into()),
            _ => None,
        }
    }

    const SEALING: &str = "q0Zvj1w0s9VbXr8dJm7f3GgYtH2uKc5LxN4pWzAaBeE=";

    fn sealed(secret: &str) -> String {
        SealingKey::from_text(SEALING)
            .unwrap()
            .seal(secret, [3; crate::sealed::NONCE_BYTES])
            .unwrap()
    }

    /// A KYC route (one key, any text) whose keys and top-level fields are `extra`'s.
    fn kyc(keys: serde_json::Value, top: serde_json::Value) -> Result<Policy, ConfigError> {
        let mut config = serde_json::json!({"routes": [{"name": "kyc", "path_prefix": "/kyc/",
            "scheme": "vobiz_kyc", "keys": keys}]});
        for (k, v) in top.as_object().unwrap() {
            config[k] = v.clone();
        }
        parse_json(config)
    }

    #[test]
    fn a_sealed_key_is_the_secret_it_seals() {
        let policy = kyc(
            serde_json::json!([{"name": "sealed", "sealed": sealed("test_parent_token")}]),
            serde_json::json!({"sealing_key": {"env": "SEALING"}}),
        )
        .unwrap();
        assert_eq!(policy.routes[0].provider.schemes()[0].1, ["sealed"]);
        let sources = Sources {
            env: &env,
            sealing: Some(SealingKey::from_text(SEALING).unwrap()),
        };
        let raw = RawKey {
            name: None,
            env: None,
            value: None,
            sealed: Some(sealed("test_parent_token")),
        };
        let (text, source) = key_text("k", &raw, &sources).unwrap();
        assert_eq!(
            (text.as_str(), source.as_str()),
            ("test_parent_token", "sealed")
        );
    }

    #[test]
    fn a_sealed_key_that_cannot_be_opened_is_named() {
        let key = serde_json::json!([{"sealed": sealed("test_parent_token")}]);
        let with = |sealing: serde_json::Value| {
            kyc(key.clone(), serde_json::json!({"sealing_key": sealing}))
        };
        let cases = [
            (
                kyc(key.clone(), serde_json::json!({})),
                "routes[0].keys[0].sealed: needs the configuration's sealing_key",
            ),
            (
                with(serde_json::json!({"env": "NOPE"})),
                "sealing_key.env: environment variable \"NOPE\" is not set in the VM",
            ),
            (
                with(serde_json::json!({"env": "SHORT_SEALING"})),
                "sealing_key.env: environment variable \"SHORT_SEALING\" is not base64 of 32 bytes",
            ),
            (
                with(serde_json::json!({"value": SEALING})),
                "sealing_key.value: unknown field `value`",
            ),
            (
                kyc(
                    serde_json::json!([{"sealed": "cgs1.AAAA"}]),
                    serde_json::json!({"sealing_key": {"env": "SEALING"}}),
                ),
                "routes[0].keys[0].sealed: is not cgs1. followed by base64url",
            ),
            (
                kyc(
                    serde_json::json!([{"sealed": SealingKey::from_text("CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=").unwrap().seal("x", [1; 24]).unwrap()}]),
                    serde_json::json!({"sealing_key": {"env": "SEALING"}}),
                ),
                "routes[0].keys[0].sealed: does not open with the sealing key",
            ),
            (
                kyc(
                    serde_json::json!([{"sealed": sealed(" padded")}]),
                    serde_json::json!({"sealing_key": {"env": "SEALING"}}),
                ),
                "routes[0].keys[0]: key from sealed has leading or trailing whitespace",
            ),
            (
                kyc(
                    serde_json::json!([{"env": "PARENT", "sealed": sealed("x")}]),
                    serde_json::json!({"sealing_key": {"env": "SEALING"}}),
                ),
                "routes[0].keys[0]: give exactly one of env, value or sealed",
            ),
        ];
        for (result, expected) in cases {
            let message = result.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                message.starts_with(expected),
                "{message:?} does not start with {expected:?}"
            );
            assert!(!message.contains("test_parent_token"), "{message}");
        }
    }

    fn parse_json(json: serde_json::Value) -> Result<Policy, ConfigError> {
        parse(json.to_string().as_bytes(), &env)
    }

    fn route(extra: serde_json::Value) -> serde_json::Value {
        let mut route = serde_json::json!({
            "name": "voice",
            "path_prefix": "/vobiz/",
            "public_origin": "https://example.com",
            "keys": [{"name": "primary", "env": "TOKEN"}],
            "parent_keys": [{"env": "PARENT"}],
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                route.as_object_mut().unwrap().remove(k);
            } else {
                route[k] = v.clone();
            }
        }
        serde_json::json!({ "routes": [route] })
    }

    fn err(extra: serde_json::Value) -> String {
        parse_json(route(extra)).unwrap_err().to_string()
    }

    fn voice(route: &Route) -> &VoiceScheme {
        match route.provider_as() {
            Some(voice) => voice,
            None => panic!("not a voice route: {:?}", route.provider),
        }
    }

    #[test]
    fn a_full_route_compiles_with_protective_defaults() {
        let policy = parse_json(route(serde_json::json!({}))).unwrap();
        assert!(policy.hold_headers);
        let r = &policy.routes[0];
        assert_eq!(r.transport, Transport::RequireTls);
        // Replay protection is on, so only the V3 families (one nonce) are accepted.
        assert_eq!(voice(r).families, vec![Family::V3, Family::MaV3]);
        assert_eq!(voice(r).v3, V3Construction::Either);
        assert_eq!(voice(r).keys[0].name, "primary");
        assert_eq!(voice(r).parent_keys[0].name, "parent0");
        let replay = r.replay.as_ref().unwrap();
        assert_eq!(replay.cache.window_secs(), 24 * 3600);
        assert_eq!(replay.cache.slots(), 100_000_u32.div_ceil(24));
        assert_eq!(replay.on_duplicate, OnDuplicate::Ok);
        assert_eq!(r.freshness, None);
        assert_eq!(r.max_body_bytes, 128 * 1024);
    }

    #[test]
    fn default_families_follow_the_keys_given() {
        let policy = parse_json(route(serde_json::json!({"keys": null}))).unwrap();
        assert_eq!(voice(&policy.routes[0]).families, vec![Family::MaV3]);
        let no_replay = serde_json::json!({"replay": {"enabled": false}});
        let policy = parse_json(route(no_replay)).unwrap();
        assert_eq!(voice(&policy.routes[0]).families, Family::ALL.to_vec());
        assert!(policy.routes[0].replay.is_none());
    }

    #[test]
    fn v2_families_with_replay_when_asked() {
        let policy = parse_json(route(serde_json::json!({"accept": ["v2", "ma_v2"]}))).unwrap();
        assert_eq!(
            voice(&policy.routes[0]).families,
            vec![Family::V2, Family::MaV2]
        );
    }

    /// A route of `scheme` with one key from `value` and no voice fields.
    fn provider(
        scheme: &str,
        secret: &str,
        extra: serde_json::Value,
    ) -> Result<Policy, ConfigError> {
        let mut route = serde_json::json!({
            "name": "p", "path_prefix": "/p/", "scheme": scheme,
            "keys": [{"name": "k", "value": secret}],
        });
        for (k, v) in extra.as_object().unwrap() {
            route[k] = v.clone();
        }
        parse_json(serde_json::json!({ "routes": [route] }))
    }

    /// Where the replay memory is what binds the body (signed weakly or not at all), a
    /// route cannot switch it off; elsewhere it can.
    #[test]
    fn replay_stays_on_where_it_binds_what_the_credential_leaves_open() {
        let off = serde_json::json!({"replay": {"enabled": false}});
        let header = serde_json::json!({"replay": {"enabled": false}, "token": {"header": "X-T"}});
        for (scheme, secret, extra) in [
            ("mailgun", "key", &off),
            ("static_token", "t", &header),
            ("basic_auth", "u:p", &off),
            ("gitlab", "t", &off),
            ("telegram", "t", &off),
            ("okta", "t", &off),
            ("paypal", "4JH86294D6297924G", &off),
        ] {
            let message = provider(scheme, secret, extra.clone())
                .unwrap_err()
                .to_string();
            let expected =
                format!("routes[0].replay.enabled: must stay true for scheme {scheme}: ");
            assert!(message.starts_with(&expected), "{message}");
        }
        assert!(provider("stripe", "whsec_x", off.clone()).is_ok());
        assert!(provider("github", "s", off).is_ok());
    }

    #[test]
    fn every_provider_compiles_with_its_freshness_default() {
        let whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let timed = Some(Freshness {
            max_age_secs: 300,
            max_future_secs: 300,
            required: true,
            edges: Edges::Exact,
        });
        // The window ends where each flavour's own SDK ends it.
        let edged = |edges| timed.map(|freshness| Freshness { edges, ..freshness });
        let window = |max_age_secs, max_future_secs| {
            Some(Freshness {
                max_age_secs,
                max_future_secs,
                required: true,
                edges: Edges::Exact,
            })
        };
        for (scheme, secret, freshness) in [
            ("standard_webhooks", whsec, timed),
            ("svix", whsec, timed),
            ("clerk", whsec, timed),
            ("resend", whsec, edged(Edges::FlooredClock)),
            ("stripe", "whsec_anything", timed),
            ("slack", "s", timed),
            ("github", "s", None),
            ("shopify", "s", None),
            ("meta", "s", None),
            ("mailgun", "s", window(900, 300)),
            ("razorpay", "s", None),
            ("paddle", "s", window(5, 5)),
            ("square", "s", None),
            ("hubspot", "s", edged(Edges::FlooredTimeStrictAge)),
            ("linear", "s", window(60, 60)),
            ("zoom", "s", timed),
            ("pagerduty", "s", None),
            ("intercom", "s", None),
            ("twitch", "s", window(600, 300)),
        ] {
            let origin = match scheme {
                "square" | "hubspot" => serde_json::json!({"public_origin": "https://a.example"}),
                _ => serde_json::json!({}),
            };
            let policy = provider(scheme, secret, origin).unwrap();
            let route = &policy.routes[0];
            assert_eq!(route.freshness, freshness, "{scheme}");
            assert!(
                route.replay.is_some(),
                "{scheme}: replay protection on by default"
            );
            let (name, keys) = &route.provider.schemes()[0];
            assert_eq!((*name, keys.as_slice()), (scheme, ["k"].as_slice()));
        }
        let twilio = provider(
            "twilio",
            "t",
            serde_json::json!({"public_origin": "https://a.example"}),
        );
        assert!(twilio.unwrap().routes[0].provider_as::<Twilio>().is_some());
        let plivo = parse_json(route(serde_json::json!({"scheme": "plivo"}))).unwrap();
        assert_eq!(voice(&plivo.routes[0]).brand, Brand::Plivo);
    }

    #[test]
    fn provider_errors_name_the_field_and_why() {
        let message = |result: Result<Policy, ConfigError>| result.unwrap_err().to_string();
        assert!(
            message(provider("svix", "not base64!", serde_json::json!({})))
                .starts_with("routes[0].keys[0]: key from value is not whsec_ followed by base64")
        );
        assert!(message(provider("twilio", "t", serde_json::json!({})))
            .starts_with("routes[0].public_origin: is required for scheme twilio"));
        assert!(message(provider(
            "github",
            "s",
            serde_json::json!({"public_origin": "https://a"})
        ))
        .starts_with(
            "routes[0].public_origin: applies only to the schemes that sign the URL (vobiz_voice, plivo, twilio"
        ));
        assert!(message(provider(
            "github",
            "s",
            serde_json::json!({"freshness": {"max_age": "5m"}})
        ))
        .starts_with("routes[0].freshness: is not available for scheme github: it signs no time"));
        assert!(message(provider(
            "stripe",
            "s",
            serde_json::json!({"freshness": {"max_age": "2d"}})
        ))
        .starts_with(
            "routes[0].freshness.max_age: max_age + max_future_skew must not exceed replay.window"
        ));
        assert!(message(provider(
            "slack",
            "s",
            serde_json::json!({"freshness": {"max_age": "1m", "require": true}})
        ))
        .starts_with("routes[0].freshness.require: applies only to scheme vobiz_voice or plivo"));
        let narrowed = provider(
            "stripe",
            "s",
            serde_json::json!({"freshness": {"max_age": "1m", "max_future_skew": "10s"}}),
        );
        assert_eq!(
            narrowed.unwrap().routes[0].freshness,
            Some(Freshness {
                max_age_secs: 60,
                max_future_secs: 10,
                required: true,
                edges: Edges::Exact,
            })
        );
    }

    #[test]
    fn public_key_schemes_take_public_keys_and_say_how_they_are_written() {
        let discord_key = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
        let route = |scheme: &str, extra: serde_json::Value| {
            let mut route =
                serde_json::json!({"name": "p", "path_prefix": "/p/", "scheme": scheme});
            for (k, v) in extra.as_object().unwrap() {
                route[k] = v.clone();
            }
            parse_json(serde_json::json!({ "routes": [route] }))
        };
        let message = |result: Result<Policy, ConfigError>| result.unwrap_err().to_string();
        let policy = route(
            "discord",
            serde_json::json!({"public_keys": [{"name": "app", "value": discord_key}]}),
        )
        .unwrap();
        let r = &policy.routes[0];
        assert!(r.provider_as::<Asymmetric>().is_some());
        assert_eq!(r.freshness, Some(FIVE_MINUTES));
        assert_eq!(r.key_name("app"), Some("app"));
        assert!(r.answer_handshakes);
        for (scheme, extra, expected) in [
            ("discord", serde_json::json!({}), "routes[0].public_keys: at least one public key is required"),
            ("discord", serde_json::json!({"public_keys": [{"value": "abc"}]}), "routes[0].public_keys[0]: key from value is not 64 hex digits of an Ed25519 public key"),
            ("discord", serde_json::json!({"keys": [{"value": "s"}]}), "routes[0].keys: scheme discord signs with the provider's private key: give its public key (64 hex digits of an Ed25519 public key) in public_keys"),
            ("sendgrid", serde_json::json!({"public_keys": [{"value": discord_key}]}), "routes[0].public_keys[0]: key from value is not base64 of a P-256 public key's SubjectPublicKeyInfo (DER)"),
            ("svix", serde_json::json!({"public_keys": [{"value": discord_key}]}), "routes[0].public_keys[0]: key from value is not whpk_ followed by base64 of an Ed25519 public key"),
            ("svix", serde_json::json!({}), "routes[0].keys: at least one key (whsec_ secret) or public key (whpk_, in public_keys) is required"),
            ("github", serde_json::json!({"keys": [{"value": "s"}], "public_keys": [{"value": "k"}]}), "routes[0].public_keys: applies only to scheme standard_webhooks, svix, clerk, resend, discord, sendgrid or telnyx"),
            ("discord", serde_json::json!({"public_keys": [{"name": "a", "value": discord_key}, {"name": "a", "value": discord_key}]}), "routes[0].public_keys[1].name: duplicate key name \"a\""),
        ] {
            assert!(message(route(scheme, extra.clone())).starts_with(expected), "{scheme} {extra}: {}", message(route(scheme, extra.clone())));
        }
        // Standard Webhooks takes secrets, public keys, or both.
        let whpk = "whpk_A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";
        let both = route("standard_webhooks", serde_json::json!({"keys": [{"name": "s", "value": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}], "public_keys": [{"name": "p", "value": whpk}]})).unwrap();
        let (_, names) = &both.routes[0].provider.schemes()[0];
        assert_eq!(names, &["s", "p"]);
    }

    #[test]
    fn a_route_answers_refusals_under_the_statuses_it_gives_them() {
        let statuses =
            serde_json::json!({"refusal_status": {"signature_mismatch": 401, "stale": 410}});
        let policy = provider("github", "s", statuses).unwrap();
        let route = &policy.routes[0];
        let refused = |reason| route.refusal(&Rejection::new(reason, "x")).status();
        assert_eq!(refused(Reason::SignatureMismatch), 401);
        assert_eq!(refused(Reason::Stale), 410);
        assert_eq!(refused(Reason::MissingSignature), 401);
        assert_eq!(refused(Reason::MalformedHeader), 400);
        let body = route
            .refusal(&Rejection::new(Reason::SignatureMismatch, "x"))
            .body();
        assert_eq!(
            body,
            r#"{"error":"unauthorized","reason":"signature_mismatch"}"#
        );
        let message = |statuses| {
            provider(
                "github",
                "s",
                serde_json::json!({"refusal_status": statuses}),
            )
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            message(serde_json::json!({"stale": 200})),
            "routes[0].refusal_status.stale: must be a status from 400 to 599"
        );
        for code in ["nope", "already_delivered"] {
            assert!(
                message(serde_json::json!({code: 401})).starts_with(&format!(
                    "routes[0].refusal_status.{code}: is not the code of a refusal"
                ))
            );
        }
    }

    #[test]
    fn a_route_that_answers_with_macs_holds_its_key_alone() {
        let document = serde_json::json!({"routes": [
            {"name": "x", "path_prefix": "/x/", "scheme": "twitter", "keys": [{"value": "shared"}]},
            {"name": "g", "path_prefix": "/g/", "scheme": "github", "keys": [{"value": "shared"}]},
        ]});
        let message = parse_json(document).unwrap_err().to_string();
        assert!(
            message.starts_with("routes[1].keys[0]: is the secret of routes[0].keys[0] too, and route x answers anyone with a MAC under it"),
            "{message}"
        );
        let apart = serde_json::json!({"routes": [
            {"name": "x", "path_prefix": "/x/", "scheme": "twitter", "keys": [{"value": "one"}]},
            {"name": "g", "path_prefix": "/g/", "scheme": "github", "keys": [{"value": "other"}]},
        ]});
        assert!(parse_json(apart).is_ok());
    }

    #[test]
    fn static_credentials_name_what_is_wrong_with_them() {
        let message = |result: Result<Policy, ConfigError>| result.unwrap_err().to_string();
        assert_eq!(
            message(provider("basic_auth", "no-colon", serde_json::json!({}))),
            "routes[0].keys[0]: key from value is not user:password with a password, as Basic credentials are"
        );
        assert!(provider("basic_auth", "hooks:", serde_json::json!({})).is_err());
        assert!(provider("basic_auth", "hooks:pw", serde_json::json!({})).is_ok());
        assert_eq!(
            message(provider("static_token", "t", serde_json::json!({}))),
            "routes[0].token.header: is required for scheme static_token"
        );
        let unknown = message(provider(
            "static_token",
            "t",
            serde_json::json!({"token": {"header": "X-T", "nope": 1}}),
        ));
        assert!(unknown.contains("unknown field `nope`"), "{unknown}");
        assert!(message(provider(
            "gitlab",
            "t",
            serde_json::json!({"token": {"header": "X-T"}})
        ))
        .starts_with("routes[0].token: applies only to scheme static_token or basic_auth"));
    }

    #[test]
    fn meta_takes_a_verify_token_and_no_other_scheme_does() {
        let meta = |extra: serde_json::Value| provider("meta", "s", extra);
        let token = serde_json::json!({"verify_token": {"value": "t"}});
        assert!(matches!(
            meta(token.clone()).unwrap().routes[0].provider_as::<Meta>(),
            Some(m) if m.verify_token.as_deref() == Some(&b"t"[..])
        ));
        let message = |result: Result<Policy, ConfigError>| result.unwrap_err().to_string();
        assert!(message(provider("github", "s", token.clone()))
            .starts_with("routes[0].verify_token: applies only to scheme meta"));
        assert!(message(meta(serde_json::json!({"verify_token": {"value": "t"}, "answer_handshakes": false})))
            .starts_with("routes[0].verify_token: answers Meta's subscription check, which answer_handshakes: false turns off"));
        assert!(
            message(meta(serde_json::json!({"verify_token": {"env": "NOPE"}}))).starts_with(
                "routes[0].verify_token.env: environment variable \"NOPE\" is not set"
            )
        );
        assert!(
            message(meta(serde_json::json!({"verify_token": {"value": " t"}}))).starts_with(
                "routes[0].verify_token: key from value has leading or trailing whitespace"
            )
        );
    }

    #[test]
    fn replay_and_freshness_settings() {
        let policy = parse_json(route(serde_json::json!({
            "replay": {"window": "10m", "max_entries": 64, "in_flight_timeout": "5s", "on_duplicate": "reject"},
            "freshness": {"max_age": "2m", "require": true},
            "max_body_bytes": 1000,
        })))
        .unwrap();
        let r = &policy.routes[0];
        let replay = r.replay.as_ref().unwrap();
        assert_eq!((replay.cache.window_secs(), replay.cache.slots()), (600, 3));
        assert_eq!(replay.on_duplicate, OnDuplicate::Reject);
        assert_eq!(
            r.freshness,
            Some(Freshness {
                max_age_secs: 120,
                max_future_secs: 300,
                required: true,
                edges: Edges::Exact,
            })
        );
        assert_eq!(r.max_body_bytes, 1000);
    }

    #[test]
    fn body_signed_schemes() {
        let whatsapp = serde_json::json!({"routes": [{
            "name": "wa", "path_prefix": "/wa/", "scheme": "vobiz_whatsapp",
            "keys": [{"env": "TOKEN"}]}]});
        let policy = parse_json(whatsapp).unwrap();
        let r = &policy.routes[0];
        assert!(r.provider_as::<WhatsApp>().is_some());
        // occurred_at is signed, so freshness is on by default and required.
        assert_eq!(
            r.freshness,
            Some(Freshness {
                max_age_secs: 3600,
                max_future_secs: 300,
                required: true,
                edges: Edges::Exact,
            })
        );
        let kyc = serde_json::json!({"routes": [{
            "name": "kyc", "path_prefix": "/kyc/", "scheme": "vobiz_kyc",
            "keys": [{"env": "PARENT"}]}]});
        let policy = parse_json(kyc).unwrap();
        assert!(
            matches!(policy.routes[0].provider_as::<BodySigned>(), Some(kyc) if kyc.scheme == "kyc")
        );
        assert_eq!(policy.routes[0].freshness, None);
    }

    #[test]
    fn headers_stop_iteration_can_be_declared_absent() {
        let mut json = route(serde_json::json!({}));
        json["allow_on_headers_stop_iteration"] = false.into();
        assert!(!parse_json(json).unwrap().hold_headers);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(30));
        assert_eq!(parse_duration("5m"), Some(300));
        assert_eq!(parse_duration("24h"), Some(86400));
        assert_eq!(parse_duration("7d"), Some(604800));
        for bad in [
            "",
            "s",
            "10",
            "1.5h",
            "-1s",
            "+1s",
            "1 h",
            "10ms",
            "99999999999d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    /// Found by `fuzz/run.sh` (target `config`): a duration ending in a multi-byte character
    /// panicked in `split_at`; an unknown field named "" was reported with an empty field.
    #[test]
    fn fuzz_regressions_multibyte_duration_and_empty_field_name() {
        for bad in ["5\u{e9}", "1\u{552}", "\u{e9}", "24h\u{1F600}"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        let message = err(serde_json::json!({"replay": {"window": "1\u{552}"}}));
        assert!(
            message.starts_with("routes[0].replay.window: invalid duration"),
            "{message}"
        );
        let e = parse(br#"{"": 1}"#, &env).unwrap_err();
        assert_eq!(e.field, "configuration");
        assert!(e.problem.starts_with("unknown field ``"), "{e}");
    }

    #[test]
    fn errors_name_the_field_and_the_problem() {
        let wa = |extra: serde_json::Value| {
            let mut r = serde_json::json!({"scheme": "vobiz_whatsapp", "public_origin": null,
                "parent_keys": null, "keys": [{"env": "TOKEN"}]});
            for (k, v) in extra.as_object().unwrap() {
                r[k] = v.clone();
            }
            r
        };
        let cases = [
            (serde_json::json!({"accept": ["v3", "v2"]}), "routes[0].accept: with replay protection, accept either V3 families"),
            (serde_json::json!({"replay": {"window": "24"}}), "routes[0].replay.window: invalid duration \"24\""),
            (serde_json::json!({"replay": {"window": "0s"}}), "routes[0].replay.window: must be at least 1s"),
            (serde_json::json!({"replay": {"max_entries": 0}}), "routes[0].replay.max_entries: must be at least 1"),
            (serde_json::json!({"replay": {"window": "10s", "in_flight_timeout": "1m"}}), "routes[0].replay.in_flight_timeout: must be between"),
            (serde_json::json!({"replay": {"on_duplicate": "maybe"}}), "routes[0].replay.on_duplicate: unknown variant `maybe`"),
            (serde_json::json!({"replay": {"enable": true}}), "routes[0].replay.enable: unknown field"),
            (serde_json::json!({"v3_construction": "plivo"}), "routes[0].v3_construction: unknown variant `plivo`"),
            (serde_json::json!({"freshness": {}}), "routes[0].freshness: missing field `max_age`"),
            (serde_json::json!({"freshness": {"max_age": "0s"}}), "routes[0].freshness.max_age: must be at least 1s"),
            (serde_json::json!({"max_body_bytes": 0}), "routes[0].max_body_bytes: must be at least 1"),
            (serde_json::json!({"scheme": "carrier_pigeon"}), "routes[0].scheme: unknown variant `carrier_pigeon`"),
            (wa(serde_json::json!({"public_origin": "https://x"})), "routes[0].public_origin: applies only to the schemes that sign the URL"),
            (wa(serde_json::json!({"accept": ["v3"]})), "routes[0].accept: applies only to scheme vobiz_voice"),
            (wa(serde_json::json!({"keys": []})), "routes[0].keys: at least one key is required"),
            (wa(serde_json::json!({"freshness": {"max_age": "1h", "require": false}})), "routes[0].freshness.require: applies only to scheme vobiz_voice"),
            (wa(serde_json::json!({"freshness": {"max_age": "2d"}})), "routes[0].freshness.max_age: max_age + max_future_skew must not exceed replay.window"),
            (serde_json::json!({"scheme": "vobiz_kyc", "public_origin": null, "parent_keys": null, "freshness": {"max_age": "1h"}}), "routes[0].freshness: is not available for scheme vobiz_kyc"),
            (serde_json::json!({"public_origin": null}), "routes[0].public_origin: is required for scheme vobiz_voice"),
            (
                serde_json::json!({"kyes": []}),
                "routes[0].kyes: unknown field `kyes`",
            ),
            (
                serde_json::json!({"keys": [{"env": "NOPE"}]}),
                "routes[0].keys[0].env: environment variable \"NOPE\" is not set",
            ),
            (
                serde_json::json!({"keys": [{"env": "EMPTY"}]}),
                "routes[0].keys[0]: key from EMPTY is empty",
            ),
            (
                serde_json::json!({"keys": [{"value": ""}]}),
                "routes[0].keys[0]: key from value is empty",
            ),
            (
                serde_json::json!({"keys": [{"env": "NEWLINE"}]}),
                "routes[0].keys[0]: key from NEWLINE has leading or trailing whitespace",
            ),
            (
                serde_json::json!({"keys": [{"env": "TOKEN", "value": "x"}]}),
                "routes[0].keys[0]: give exactly one of env, value or sealed",
            ),
            (
                serde_json::json!({"keys": [{"name": "parent0", "value": "x"}]}),
                "routes[0].parent_keys[0].name: duplicate key name",
            ),
            (
                serde_json::json!({"keys": [], "parent_keys": []}),
                "routes[0].keys: no keys configured",
            ),
            (
                serde_json::json!({"accept": ["v4"]}),
                "routes[0].accept[0]: unknown variant `v4`",
            ),
            (
                serde_json::json!({"accept": []}),
                "routes[0].accept: must list at least one",
            ),
            (
                serde_json::json!({"accept": ["v3", "v3"]}),
                "routes[0].accept: v3 is listed twice",
            ),
            (
                serde_json::json!({"keys": null, "accept": ["v3"]}),
                "routes[0].accept: v3 needs keys",
            ),
            (
                serde_json::json!({"public_origin": "https://example.com/"}),
                "routes[0].public_origin: must be scheme://host[:port]",
            ),
            (
                serde_json::json!({"public_origin": "https://u:p@example.com"}),
                "routes[0].public_origin: must be scheme://host[:port]",
            ),
            (
                serde_json::json!({"public_origin": "HTTPS://example.com"}),
                "routes[0].public_origin: scheme must be lowercase",
            ),
            (
                serde_json::json!({"public_origin": "example.com"}),
                "routes[0].public_origin: must look like",
            ),
            (
                serde_json::json!({"public_origin": "http://example.com"}),
                "routes[0].public_origin: is http:// but the route requires TLS",
            ),
            (
                serde_json::json!({"allow_plain_http": true, "trust_x_forwarded_proto": true}),
                "routes[0].trust_x_forwarded_proto: has no effect",
            ),
            (
                serde_json::json!({"path_prefix": "vobiz"}),
                "routes[0].path_prefix: must start with '/'",
            ),
            (
                serde_json::json!({"path_prefix": "/v?x"}),
                "routes[0].path_prefix: must be a path",
            ),
            (
                serde_json::json!({"path_prefix": "/vobiz%2Fx/"}),
                "routes[0].path_prefix: must be canonical",
            ),
            (
                serde_json::json!({"path_prefix": "/vobiz/../x/"}),
                "routes[0].path_prefix: must be canonical",
            ),
            (
                serde_json::json!({"host": "."}),
                "routes[0].host: must be a host name",
            ),
            (
                serde_json::json!({"host": "example.com:8:43"}),
                "routes[0].host: must be a host name",
            ),
            (
                serde_json::json!({"host": "user@example.com"}),
                "routes[0].host: must be a host name",
            ),
            (
                serde_json::json!({"name": "has space"}),
                "routes[0].name: \"has space\" must be",
            ),
            (
                serde_json::json!({"host": ""}),
                "routes[0].host: must be a host name",
            ),
            (
                serde_json::json!({"allow_plain_http": "yes"}),
                "routes[0].allow_plain_http: invalid type",
            ),
            (store(serde_json::json!({"type": "redis"})), "routes[0].replay.store.type: unknown variant `redis`"),
            (store(serde_json::json!({})), "routes[0].replay.store: missing field `type`"),
            (store(serde_json::json!({"type": "etcd", "clusters": "x"})), "routes[0].replay.store.clusters: unknown field"),
            (store(serde_json::json!({"type": "etcd"})), "routes[0].replay.store.cluster: is required for type etcd"),
            (store(serde_json::json!({"type": "shared_data", "timeout": "1s"})), "routes[0].replay.store.timeout: applies only to type etcd"),
            (etcd(serde_json::json!({"cluster": "has space"})), "routes[0].replay.store.cluster: must be the name of an Envoy cluster"),
            (etcd(serde_json::json!({"cluster": ""})), "routes[0].replay.store.cluster: must be the name of an Envoy cluster"),
            (etcd(serde_json::json!({"authority": "etcd/v3"})), "routes[0].replay.store.authority: must be host[:port]"),
            (etcd(serde_json::json!({"key_prefix": "/cg"})), "routes[0].replay.store.key_prefix: must be 1-128 visible ASCII characters ending with '/'"),
            (etcd(serde_json::json!({"key_prefix": ""})), "routes[0].replay.store.key_prefix: must be 1-128"),
            (etcd(serde_json::json!({"timeout": "0ms"})), "routes[0].replay.store.timeout: must be between 1ms and 30s"),
            (etcd(serde_json::json!({"timeout": "31s"})), "routes[0].replay.store.timeout: must be between 1ms and 30s"),
            (etcd(serde_json::json!({"timeout": "250"})), "routes[0].replay.store.timeout: invalid duration \"250\""),
            (etcd(serde_json::json!({"on_error": "maybe"})), "routes[0].replay.store.on_error: unknown variant `maybe`"),
            (etcd(serde_json::json!({"lease_bucket": "0s"})), "routes[0].replay.store.lease_bucket: must be at least 1s"),
            (etcd(serde_json::json!({"lease_bucket": "500ms"})), "routes[0].replay.store.lease_bucket: invalid duration"),
            (etcd(serde_json::json!({"attempts": 0})), "routes[0].replay.store.attempts: must be 1 to 4"),
            (etcd(serde_json::json!({"attempts": 5})), "routes[0].replay.store.attempts: must be 1 to 4"),
            (store(serde_json::json!({"type": "shared_data", "attempts": 2})), "routes[0].replay.store.attempts: applies only to type etcd"),
        ];
        for (extra, expected) in cases {
            let message = err(extra.clone());
            assert!(
                message.starts_with(expected),
                "{extra}: got {message:?}, want {expected:?}"
            );
        }
    }

    /// A route whose replay store is `store`.
    fn store(store: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"replay": {"store": store}})
    }

    /// A route with an etcd store, `extra` merged into the store.
    fn etcd(extra: serde_json::Value) -> serde_json::Value {
        let mut raw = serde_json::json!({"type": "etcd", "cluster": "etcd_cluster"});
        for (k, v) in extra.as_object().unwrap() {
            raw[k] = v.clone();
        }
        store(raw)
    }

    fn etcd_of(policy: &Policy) -> &Etcd {
        let fleet = policy.routes[0].replay.as_ref().unwrap().fleet.as_deref();
        match fleet.and_then(|fleet| (fleet as &dyn std::any::Any).downcast_ref()) {
            Some(etcd) => etcd,
            None => panic!("not an etcd store"),
        }
    }

    #[test]
    fn every_store_field_is_refused_by_the_types_that_do_not_read_it() {
        let value = |name: &str| match name {
            "timeout" | "lease_bucket" => serde_json::json!("1s"),
            "attempts" => serde_json::json!(2),
            "on_error" => serde_json::json!("fail_open"),
            "api" => serde_json::json!("grpc"),
            _ => serde_json::json!("x"),
        };
        for name in KINDS.iter().flat_map(|kind| kind.reads.iter()) {
            let readers: Vec<&str> = KINDS
                .iter()
                .filter(|kind| kind.reads.contains(name))
                .map(|kind| kind.name)
                .collect();
            let mut raw = serde_json::json!({"type": "shared_data"});
            raw[name] = value(name);
            assert_eq!(
                err(store(raw)),
                format!(
                    "routes[0].replay.store.{name}: applies only to type {}",
                    readers.join(" or ")
                )
            );
        }
        let unknown = err(store(serde_json::json!({"type": "redis"})));
        assert!(
            unknown.starts_with(
                "routes[0].replay.store.type: unknown variant `redis`, expected `shared_data` or `etcd` at"
            ),
            "{unknown}"
        );
    }

    #[test]
    fn the_replay_store_is_shared_data_unless_etcd_is_configured() {
        for raw in [
            serde_json::json!({}),
            store(serde_json::json!({"type": "shared_data"})),
        ] {
            let policy = parse_json(route(raw)).unwrap();
            let replay = policy.routes[0].replay.as_ref().unwrap();
            assert!(replay.fleet.is_none());
        }
    }

    #[test]
    fn the_etcd_api_is_the_json_gateway_unless_grpc_is_chosen() {
        let api = |extra| etcd_of(&parse_json(route(etcd(extra))).unwrap()).api;
        assert_eq!(api(serde_json::json!({})), Api::Json);
        assert_eq!(api(serde_json::json!({"api": "grpc"})), Api::Grpc);
        assert_eq!(api(serde_json::json!({"api": "json"})), Api::Json);
        let wrong = parse_json(route(etcd(serde_json::json!({"api": "rest"})))).unwrap_err();
        assert!(wrong
            .to_string()
            .contains("routes[0].replay.store.api: unknown variant `rest`"));
        let store = serde_json::json!({"type": "shared_data", "api": "grpc"});
        let wrong = parse_json(route(serde_json::json!({"replay": {"store": store}})));
        assert!(wrong
            .unwrap_err()
            .to_string()
            .contains("routes[0].replay.store.api: applies only to type etcd"));
    }

    #[test]
    fn etcd_store_defaults_and_settings() {
        let policy = parse_json(route(etcd(serde_json::json!({})))).unwrap();
        let e = etcd_of(&policy);
        assert_eq!(e.link().cluster, "etcd_cluster");
        assert_eq!(
            e.link().authority,
            "etcd_cluster",
            "defaults to the cluster name"
        );
        assert_eq!(e.timeout_ms, 250);
        assert_eq!((e.attempts, e.attempt_timeout_ms()), (2, 125));
        assert_eq!(e.on_error, OnError::FailClosed);
        assert!(e.key(&[0; 16]).starts_with("/callback-guard/voice/"));
        // One-hour buckets over the default 24 h window.
        let start_of_hour = 1_774_432_800;
        assert_eq!(e.lease(start_of_hour).ttl_secs, 3600 + 86_400 + 300);
        // The local first level stays, sized and timed like the shared-data store.
        let replay = policy.routes[0].replay.as_ref().unwrap();
        assert_eq!(replay.cache.slots(), 100_000_u32.div_ceil(24));

        let policy = parse_json(route(etcd(serde_json::json!({
            "authority": "etcd.internal:2379",
            "key_prefix": "/edge/cg/",
            "timeout": "1s",
            "on_error": "fail_open",
            "lease_bucket": "10m",
            "attempts": 3,
        }))))
        .unwrap();
        let e = etcd_of(&policy);
        assert_eq!(e.link().authority, "etcd.internal:2379");
        assert_eq!(e.timeout_ms, 1000);
        assert_eq!((e.attempts, e.attempt_timeout_ms()), (3, 333));
        assert_eq!(e.on_error, OnError::FailOpen);
        assert!(e.key(&[0; 16]).starts_with("/edge/cg/voice/"));
        assert_eq!(e.lease(start_of_hour).ttl_secs, 600 + 86_400 + 300);
        // Istio-style cluster names are accepted as they are.
        let istio = etcd(
            serde_json::json!({"cluster": "outbound|2379||etcd.db.svc.cluster.local",
            "authority": "etcd.db.svc.cluster.local"}),
        );
        assert!(parse_json(route(istio)).is_ok());
    }

    #[test]
    fn store_timeouts_take_milliseconds() {
        assert_eq!(parse_millis("250ms"), Some(250));
        assert_eq!(parse_millis("1s"), Some(1000));
        assert_eq!(parse_millis("2m"), Some(120_000));
        for bad in [
            "",
            "ms",
            "1.5ms",
            "-1ms",
            "10",
            "1 ms",
            "9999999h",
            "99999999999ms",
        ] {
            assert_eq!(parse_millis(bad), None, "{bad}");
        }
    }

    #[test]
    fn document_level_errors() {
        let e = |json: &str| parse(json.as_bytes(), &env).unwrap_err().to_string();
        assert!(e("").starts_with("configuration: EOF"), "{}", e(""));
        assert!(e("{}").starts_with("configuration: missing field `routes`"));
        assert!(e(r#"{"routes": []}"#).starts_with("routes: must list at least one"));
        assert!(e(r#"{"routes": [], "x": 1}"#).starts_with("x: unknown field `x`"));
        let two = route(serde_json::json!({}));
        let dup = serde_json::json!({"routes": [two["routes"][0], two["routes"][0]]});
        assert!(parse_json(dup)
            .unwrap_err()
            .to_string()
            .starts_with("routes[1].name: duplicate route name"));
    }

    #[test]
    fn secrets_never_appear_in_errors() {
        let message = err(serde_json::json!({"keys": [{"value": " leaky-secret "}]}));
        assert!(!message.contains("leaky"), "{message}");
        // A secret written where an object belongs: the parser would quote it.
        for (extra, top) in [
            (
                serde_json::json!({"keys": ["leaky \"quoted\" secret"]}),
                serde_json::json!({}),
            ),
            (
                serde_json::json!({"verify_token": "leaky-token"}),
                serde_json::json!({}),
            ),
            (
                serde_json::json!({}),
                serde_json::json!({"sealing_key": "leaky-sealing-key="}),
            ),
        ] {
            let mut config = route(extra);
            for (name, value) in top.as_object().unwrap() {
                config[name] = value.clone();
            }
            let message = parse_json(config).unwrap_err().to_string();
            assert!(!message.contains("leaky"), "{message}");
            assert!(
                message.contains("invalid type: a string, expected"),
                "{message}"
            );
        }
        assert_eq!(
            without_strings(r#"invalid type: string "a\"b\\", expected x at line 1"#),
            "invalid type: a string, expected x at line 1"
        );
    }

    #[test]
    fn plivo_verifies_only_what_its_sdk_verifies() {
        let origin = serde_json::json!({"public_origin": "https://a.example"});
        let plivo = provider("plivo", "t", origin.clone()).unwrap();
        assert_eq!(voice(&plivo.routes[0]).v3, V3Construction::Sdk);
        for construction in ["docs", "either"] {
            let mut extra = origin.clone();
            extra["v3_construction"] = construction.into();
            assert_eq!(
                provider("plivo", "t", extra).unwrap_err().to_string(),
                "routes[0].v3_construction: must be sdk for scheme plivo: Plivo signs V3 only as its SDK does"
            );
        }
    }

    #[test]
    fn one_secret_on_two_routes_is_a_warning_naming_both() {
        let policy = parse_json(serde_json::json!({"routes": [
            {"name": "voice", "path_prefix": "/v/", "public_origin": "https://a.example",
             "parent_keys": [{"name": "parent", "value": "shared"}]},
            {"name": "kyc", "path_prefix": "/k/", "scheme": "vobiz_kyc",
             "keys": [{"name": "k", "value": "shared"}]},
            {"name": "gh", "path_prefix": "/g/", "scheme": "github",
             "keys": [{"name": "k", "value": "another"}]},
        ]}))
        .unwrap();
        assert_eq!(
            policy.warnings,
            ["routes[0].parent_keys[0] (route voice, scheme vobiz_voice) and routes[1].keys[0] (route kyc, scheme vobiz_kyc) are the same secret: a signature for one route could verify on the other; give each its own secret where the provider allows"]
        );
        // Nothing of the secret itself is said.
        assert!(!policy.warnings[0].contains("shared"));
    }

    #[test]
    fn a_generic_id_still_loads_with_a_warning() {
        let generic = serde_json::json!({"signature": {"header": "x-sig"}, "encoding": "hex",
                                         "message": ["body"], "id": {"body": true}});
        let policy = parse_json(serde_json::json!({"routes": [
            {"name": "g", "path_prefix": "/g/", "scheme": "generic_hmac", "generic": generic,
             "keys": [{"value": "k"}]}]}))
        .unwrap();
        assert_eq!(
            policy.warnings,
            ["routes[0].generic.id is no longer read: the replay identity is always the whole signed message"]
        );
    }

    #[test]
    fn a_route_host_is_a_name_servers_read_alike() {
        let host = |host: &str| parse_json(route(serde_json::json!({"host": host})));
        assert_eq!(
            host("Example.COM:8443").unwrap().routes[0].host.as_deref(),
            Some("example.com")
        );
        for bad in [
            "user@example.com",
            "example.com:1:2",
            "exa mple.com",
            " example.com",
            "ex%41.com",
        ] {
            assert_eq!(
                host(bad).unwrap_err().to_string(),
                "routes[0].host: must be a host name, optionally with :port",
                "{bad}"
            );
        }
    }
}
