//! Keys a request names and the network holds (SNS's `SigningCertURL`, PayPal's
//! `PAYPAL-CERT-URL`): where the filter may fetch one from, checked before any I/O, and what
//! it keeps of what it fetched.
//!
//! The URL comes from the attacker as much as from the provider, so it is accepted only
//! in one shape (`https://<host><path>`, the host matching an allow-listed pattern, the path
//! one the provider serves certificates at, no port, user, query or fragment) and fetched
//! only through the Envoy cluster the operator declared, whose upstream TLS validates the
//! host. What is kept (in Envoy's shared data, for every worker, under the cluster and the
//! URL) is the certificate's RSA public key, as SubjectPublicKeyInfo DER, until a day has
//! passed or the certificate expires.

use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey};
use rsa::signature::Verifier;
use rsa::traits::PublicKeyParts;
use rsa::RsaPublicKey;
use serde::Deserialize;
use x509_cert::der::{DecodePem, Encode};

use crate::providers::entry::Problem;
use crate::replay::SharedStore;
use crate::verdict::{Reason, Rejection};

/// The longest URL looked at: SNS's are about 100 bytes.
const MAX_URL: usize = 512;
/// The smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;
/// The shared-data keys of fetched keys start with this; the cluster and the URL follow.
const CACHE_PREFIX: &str = "callback_guard.key.";
/// And the count of a cluster's fetches this minute, this; the cluster follows.
const BUDGET_PREFIX: &str = "callback_guard.fetches.";
/// How long a fetched key is trusted before it is fetched again (at most until its
/// certificate expires): a certificate the provider revoked stops verifying within a day.
const KEEP_SECS: u64 = 24 * 3600;

/// A route's `certificate` block, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    /// The Envoy cluster certificates are fetched through.
    cluster: String,
    /// Host patterns a certificate URL may name; `*` stands for one DNS label.
    #[serde(default)]
    hosts: Option<Vec<String>>,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u32,
    #[serde(default = "default_fetches_per_minute")]
    fetches_per_minute: u32,
    /// Whether the filter confirms SNS subscriptions itself (`sns` only).
    #[serde(default)]
    confirm_subscriptions: bool,
}

fn default_timeout_ms() -> u32 {
    2_000
}

/// A provider signs with a few certificates a year: a minute's worth of fetches beyond this
/// is forgeries naming fresh ones.
fn default_fetches_per_minute() -> u32 {
    10
}

/// Where a route's certificates may come from.
#[derive(Debug, Clone)]
pub struct Source {
    cluster: String,
    hosts: Vec<String>,
    timeout_ms: u32,
    fetches_per_minute: u32,
    /// Whether the route asked the filter to confirm subscriptions itself.
    pub confirms: bool,
    shape: &'static Shape,
}

/// What a provider's certificate URLs and certificates look like.
#[derive(Debug)]
pub struct Shape {
    /// The host patterns a route allows unless it lists its own.
    pub hosts: &'static [&'static str],
    /// Whether a URL's path (from its `/`) is one the provider serves certificates at
    /// (SNS's `/SimpleNotificationService-<32 hex>.pem`), so that a forgery cannot name a
    /// fresh file, and cost a fetch, at will.
    pub path: fn(&str) -> bool,
    /// The subject common names the provider's certificates on a host have; empty: any.
    pub subjects: fn(&str) -> &'static [&'static str],
}

/// One certificate to fetch: a GET of `path` from `authority` through `cluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    pub url: String,
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub timeout_ms: u32,
    /// The subject names the certificate may have ([`Shape::subjects`]).
    pub subjects: &'static [&'static str],
    /// How many fetches the cluster may start in a minute, in this Envoy.
    pub fetches_per_minute: u32,
}

impl Fetch {
    /// Its key in Envoy's shared data: the cluster's too, so that what one route's cluster
    /// answered never verifies another route's messages (a URL holds no space).
    pub fn cache_key(&self) -> String {
        format!("{CACHE_PREFIX}{} {}", self.cluster, self.url)
    }

    /// Counts this fetch against its cluster's minute (for every worker: in shared data),
    /// or refuses it when the minute's are spent: a forgery naming a fresh certificate
    /// costs a fetch, and a flood of them must not become one of requests to the provider.
    /// Keys already kept are unaffected, so genuine deliveries go on.
    pub fn spend(&self, store: &dyn SharedStore, now: u64) -> Result<(), Rejection> {
        let key = format!("{BUDGET_PREFIX}{}", self.cluster);
        let minute = now / 60;
        // A few tries: another worker may count at the same moment.
        for _ in 0..4 {
            let (value, cas) = store.get(&key).ok().flatten().unwrap_or_default();
            let spent = match value.split_first_chunk::<8>() {
                Some((at, count)) if u64::from_be_bytes(*at) == minute => {
                    count.try_into().map_or(0, u32::from_be_bytes)
                }
                _ => 0,
            };
            if spent >= self.fetches_per_minute {
                return Err(Rejection::new(
                    Reason::KeyUnavailable,
                    format!(
                        "cluster {} started its {} certificate fetches this minute",
                        self.cluster, self.fetches_per_minute
                    ),
                ));
            }
            let next = [&minute.to_be_bytes()[..], &(spent + 1).to_be_bytes()].concat();
            if let Ok(true) = store.set(&key, &next, cas) {
                return Ok(());
            }
        }
        Err(Rejection::new(
            Reason::KeyUnavailable,
            format!("cluster {}'s fetch count could not be kept", self.cluster),
        ))
    }
}

impl Source {
    /// The route's `certificate` block under `field`, for certificates of `shape`.
    pub fn compile(
        field: &str,
        raw: Option<Raw>,
        shape: &'static Shape,
    ) -> Result<Source, Problem> {
        let raw = raw.ok_or_else(|| {
            Problem::new(
                field,
                "is required: the Envoy cluster certificates are fetched through (cluster)",
            )
        })?;
        if raw.cluster.is_empty() {
            return Err(Problem::new(
                format!("{field}.cluster"),
                "must name an Envoy cluster",
            ));
        }
        if !(1..=60_000).contains(&raw.timeout_ms) {
            return Err(Problem::new(
                format!("{field}.timeout_ms"),
                "must be from 1 to 60000",
            ));
        }
        if !(1..=10_000).contains(&raw.fetches_per_minute) {
            return Err(Problem::new(
                format!("{field}.fetches_per_minute"),
                "must be from 1 to 10000",
            ));
        }
        let hosts = match raw.hosts {
            Some(hosts) => hosts,
            None => shape.hosts.iter().map(|host| host.to_string()).collect(),
        };
        if hosts.is_empty() {
            return Err(Problem::new(
                format!("{field}.hosts"),
                "must allow at least one host",
            ));
        }
        for (i, host) in hosts.iter().enumerate() {
            let labels: Vec<&str> = host.split('.').collect();
            let fixed = labels.iter().filter(|label| **label != "*").count();
            if labels.iter().any(|label| *label != "*" && !is_label(label)) || fixed < 2 {
                return Err(Problem::new(
                    format!("{field}.hosts[{i}]"),
                    format!("{host:?} is not a lowercase host name whose labels may be *, with at least two fixed labels"),
                ));
            }
        }
        Ok(Source {
            cluster: raw.cluster,
            hosts,
            timeout_ms: raw.timeout_ms,
            fetches_per_minute: raw.fetches_per_minute,
            confirms: raw.confirm_subscriptions,
            shape,
        })
    }

    /// Where `url` may be fetched from, or why it may not: refused before any I/O.
    pub fn locate(&self, url: &[u8]) -> Result<Fetch, Rejection> {
        let refuse = |why: &str| {
            Rejection::new(
                Reason::MalformedBody,
                format!("certificate URL {why}: https://<allowed host><the provider's path> only"),
            )
        };
        if url.len() > MAX_URL {
            return Err(refuse("is too long"));
        }
        let url = std::str::from_utf8(url).map_err(|_| refuse("is not UTF-8"))?;
        let (host, path) = https_parts(url).map_err(refuse)?;
        if !host.split('.').all(is_label) {
            return Err(refuse("has a host that is not a lowercase DNS name"));
        }
        if !self.hosts.iter().any(|pattern| host_matches(pattern, host)) {
            return Err(Rejection::new(
                Reason::MalformedBody,
                format!("certificate host {host:?} is not one the route allows"),
            ));
        }
        // Segments of letters, digits, `-`, `_` and inner dots: nothing a server decodes,
        // normalises or reads as a query, whatever the provider's rule admits.
        let plain = path.split('/').skip(1).all(|segment| {
            !segment.is_empty()
                && !segment.starts_with('.')
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        });
        if !plain {
            return Err(refuse("has a path that is not plain segments"));
        }
        if !(self.shape.path)(path) {
            return Err(refuse("names a file the provider does not serve"));
        }
        Ok(Fetch {
            url: url.to_string(),
            cluster: self.cluster.clone(),
            authority: host.to_string(),
            path: path.to_string(),
            timeout_ms: self.timeout_ms,
            subjects: (self.shape.subjects)(host),
            fetches_per_minute: self.fetches_per_minute,
        })
    }
}

impl Source {
    /// A GET of `url`, a URL the provider signed (SNS's `SubscribeURL`), through the
    /// route's cluster: its host must be one the route allows, its path and query printable.
    pub fn call(&self, url: &str) -> Result<Fetch, Rejection> {
        let refuse = |why: &str| Rejection::new(Reason::MalformedBody, format!("URL {why}"));
        let (host, path) = https_parts(url).map_err(refuse)?;
        if !self.hosts.iter().any(|pattern| host_matches(pattern, host)) {
            return Err(refuse("names a host the route does not allow"));
        }
        if url.len() > 2048 || !path.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(refuse("has a path that is too long or not printable"));
        }
        Ok(Fetch {
            url: url.to_string(),
            cluster: self.cluster.clone(),
            authority: host.to_string(),
            path: path.to_string(),
            timeout_ms: self.timeout_ms,
            subjects: &[],
            fetches_per_minute: self.fetches_per_minute,
        })
    }
}

/// An `https://` URL's host and path (from its `/`), or why it has none.
fn https_parts(url: &str) -> Result<(&str, &str), &'static str> {
    let rest = url.strip_prefix("https://").ok_or("is not https")?;
    rest.find('/')
        .map(|slash| rest.split_at(slash))
        .ok_or("has no path")
}

/// A DNS label as certificate hosts are written: lowercase letters, digits and inner
/// hyphens.
fn is_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// Whether `host` is `pattern`, each `*` one label.
fn host_matches(pattern: &str, host: &str) -> bool {
    let (mut pattern, mut host) = (pattern.split('.'), host.split('.'));
    loop {
        match (pattern.next(), host.next()) {
            (None, None) => return true,
            (Some("*"), Some(_)) => {}
            (Some(fixed), Some(label)) if fixed == label => {}
            _ => return false,
        }
    }
}

/// What is kept of a PEM certificate fetched at `now` (unix seconds), the first of the
/// answer's (a chain's leaf): until when it is trusted (8 bytes, big-endian unix seconds),
/// then its RSA public key as SubjectPublicKeyInfo DER. Refused if it expired, or if its
/// subject's common name is not one of `subjects` (unless that is empty).
pub fn keep(pem: &[u8], now: u64, subjects: &[&str]) -> Result<Vec<u8>, String> {
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let first = pem
        .windows(END.len())
        .position(|window| window == END)
        .map_or(pem, |at| &pem[..at + END.len()]);
    let certificate = x509_cert::Certificate::from_pem(first)
        .map_err(|error| format!("is not a PEM X.509 certificate: {error}"))?;
    if !subjects.is_empty() {
        let names = common_names(&certificate);
        if !names.iter().any(|name| subjects.contains(&name.as_str())) {
            return Err(format!(
                "is a certificate of {names:?}, not of {subjects:?}"
            ));
        }
    }
    let not_after = certificate
        .tbs_certificate
        .validity
        .not_after
        .to_unix_duration()
        .as_secs();
    if not_after <= now {
        return Err(format!("is a certificate that expired at {not_after}"));
    }
    let until = not_after.min(now.saturating_add(KEEP_SECS));
    let key = certificate_key(&certificate)?;
    Ok([&until.to_be_bytes()[..], &key].concat())
}

/// The key in what [`keep`] made, unless its time is up at `now`.
pub fn kept(value: &[u8], now: u64) -> Option<&[u8]> {
    let (until, key) = value.split_first_chunk::<8>()?;
    (now < u64::from_be_bytes(*until)).then_some(key)
}

/// The common names of a certificate's subject, those written as UTF-8 or printable strings.
fn common_names(certificate: &x509_cert::Certificate) -> Vec<String> {
    use x509_cert::der::asn1::{PrintableStringRef, Utf8StringRef};
    let common_name = x509_cert::der::oid::db::rfc4519::CN;
    certificate
        .tbs_certificate
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|attribute| attribute.oid == common_name)
        .filter_map(|attribute| {
            let value = &attribute.value;
            Utf8StringRef::try_from(value)
                .map(|text| text.as_str().to_string())
                .or_else(|_| {
                    PrintableStringRef::try_from(value).map(|text| text.as_str().to_string())
                })
                .ok()
        })
        .collect()
}

/// The RSA public key of a certificate, as SubjectPublicKeyInfo DER.
fn certificate_key(certificate: &x509_cert::Certificate) -> Result<Vec<u8>, String> {
    let spki = certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|error| format!("has an unreadable public key: {error}"))?;
    let key = RsaPublicKey::from_public_key_der(&spki)
        .map_err(|_| "does not hold an RSA public key".to_string())?;
    let bits = key.n().bits();
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "holds an RSA key of {bits} bits, under {MIN_RSA_BITS}"
        ));
    }
    key.to_public_key_der()
        .map(|der| der.as_bytes().to_vec())
        .map_err(|error| format!("has an unusable public key: {error}"))
}

/// The digest an RSA PKCS#1 v1.5 signature is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaHash {
    Sha1,
    Sha256,
}

/// An RSA signature as SNS and PayPal send it: standard base64 of 256 to 1024 bytes
/// (2048- to 8192-bit keys).
pub fn rsa_signature(text: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()
        .filter(|signature| (256..=1024).contains(&signature.len()))
}

/// Whether `signature` is an RSA PKCS#1 v1.5 signature over `message` under the key
/// `spki` (as [`kept`] returns it).
pub fn rsa_verifies(spki: &[u8], hash: RsaHash, message: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = RsaPublicKey::from_public_key_der(spki) else {
        return false;
    };
    let Ok(signature) = Signature::try_from(signature) else {
        return false;
    };
    match hash {
        RsaHash::Sha1 => VerifyingKey::<sha1::Sha1>::new(key)
            .verify(message, &signature)
            .is_ok(),
        RsaHash::Sha256 => VerifyingKey::<sha2::Sha256>::new(key)
            .verify(message, &signature)
            .is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One `/<name>.pem`.
    const PEM_FILES: Shape = Shape {
        hosts: &["sns.*.amazonaws.com"],
        path: |path| {
            path.strip_prefix('/')
                .and_then(|file| file.strip_suffix(".pem"))
                .is_some_and(|name| !name.is_empty() && !name.contains('/'))
        },
        subjects: |_| &[],
    };

    fn source() -> Source {
        let raw: Raw = serde_json::from_value(serde_json::json!({"cluster": "certs"})).unwrap();
        Source::compile("certificate", Some(raw), &PEM_FILES).unwrap()
    }

    #[test]
    fn only_https_pem_files_on_allowed_hosts_are_fetched() {
        let sns = source();
        let fetch = sns
            .locate(b"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-01d088a6f77103d0fe307c0069e40ed6.pem")
            .unwrap();
        assert_eq!(fetch.authority, "sns.us-east-1.amazonaws.com");
        assert_eq!(
            fetch.path,
            "/SimpleNotificationService-01d088a6f77103d0fe307c0069e40ed6.pem"
        );
        assert_eq!(fetch.cluster, "certs");
        assert_eq!(
            fetch.cache_key(),
            format!("callback_guard.key.certs {}", fetch.url)
        );
        for url in [
            "http://sns.us-east-1.amazonaws.com/a.pem",
            "https://sns.us-east-1.amazonaws.com.evil.example/a.pem",
            "https://evil.example/sns.us-east-1.amazonaws.com/a.pem",
            "https://sns.amazonaws.com/a.pem",
            "https://sns.a.b.amazonaws.com/a.pem",
            "https://sns.us-east-1.amazonaws.com:8443/a.pem",
            "https://user@sns.us-east-1.amazonaws.com/a.pem",
            "https://SNS.us-east-1.amazonaws.com/a.pem",
            "https://sns.us-east-1.amazonaws.com/a.pem?x=1",
            "https://sns.us-east-1.amazonaws.com/a.pem#x",
            "https://sns.us-east-1.amazonaws.com/../a.pem",
            "https://sns.us-east-1.amazonaws.com/x/a.pem",
            "https://sns.us-east-1.amazonaws.com/a.crt",
            "https://sns.us-east-1.amazonaws.com/.pem",
            "https://sns.us-east-1.amazonaws.com",
            "https://sns.us-east-1.amazonaws.com/a%2fb.pem",
            "https://sns.us-east-1.amazonaws.com/.a.pem",
            "https://sns.us-east-1.amazonaws.com//a.pem",
            "https://sns.us-east-1.amazonaws.com/a;b.pem",
        ] {
            assert!(sns.locate(url.as_bytes()).is_err(), "{url}");
        }
        assert!(sns.locate(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn a_bad_certificate_block_names_its_field() {
        let compile = |raw: serde_json::Value| {
            let raw: Raw = serde_json::from_value(raw).unwrap();
            Source::compile("certificate", Some(raw), &PEM_FILES).unwrap_err()
        };
        assert_eq!(
            compile(serde_json::json!({"cluster": ""})).field,
            "certificate.cluster"
        );
        assert_eq!(
            compile(serde_json::json!({"cluster": "c", "timeout_ms": 0})).field,
            "certificate.timeout_ms"
        );
        assert_eq!(
            compile(serde_json::json!({"cluster": "c", "hosts": ["*.*"]})).field,
            "certificate.hosts[0]"
        );
        assert_eq!(
            compile(serde_json::json!({"cluster": "c", "hosts": []})).field,
            "certificate.hosts"
        );
        let missing = Source::compile("certificate", None, &PEM_FILES).unwrap_err();
        assert_eq!(missing.field, "certificate");
    }

    #[test]
    fn what_is_not_an_rsa_certificate_is_refused() {
        assert!(keep(b"not a certificate", 0, &[]).is_err());
        assert!(!rsa_verifies(b"not a key", RsaHash::Sha1, b"m", b"s"));
    }

    #[test]
    fn a_cluster_starts_at_most_its_fetches_a_minute_for_every_worker() {
        let raw: Raw = serde_json::from_value(
            serde_json::json!({"cluster": "certs", "fetches_per_minute": 3}),
        )
        .unwrap();
        let source = Source::compile("certificate", Some(raw), &PEM_FILES).unwrap();
        let fetch = |n: u32| {
            source
                .locate(format!("https://sns.us-east-1.amazonaws.com/{n}.pem").as_bytes())
                .unwrap()
        };
        let store = crate::testing::MemoryStore::new();
        let minute = 2_000_000_040;
        for n in 0..3 {
            fetch(n).spend(&store, minute + u64::from(n)).unwrap();
        }
        let spent = fetch(3).spend(&store, minute + 19).unwrap_err();
        assert_eq!(spent.reason, Reason::KeyUnavailable);
        assert!(
            spent.detail.contains("its 3 certificate fetches"),
            "{}",
            spent.detail
        );
        // Another cluster has its own; the next minute starts again.
        let other: Raw = serde_json::from_value(serde_json::json!({"cluster": "other"})).unwrap();
        let other = Source::compile("certificate", Some(other), &PEM_FILES).unwrap();
        let url = b"https://sns.us-east-1.amazonaws.com/a.pem";
        other.locate(url).unwrap().spend(&store, minute).unwrap();
        fetch(4).spend(&store, minute + 60).unwrap();
        let bad: Raw =
            serde_json::from_value(serde_json::json!({"cluster": "c", "fetches_per_minute": 0}))
                .unwrap();
        let problem = Source::compile("certificate", Some(bad), &PEM_FILES).unwrap_err();
        assert_eq!(problem.field, "certificate.fetches_per_minute");
    }

    #[test]
    fn a_kept_key_is_trusted_for_a_day_and_never_past_its_certificate() {
        let pem = include_bytes!("providers/sns/demo-certificate.pem");
        let now = 2_000_000_000;
        let value = keep(pem, now, &[]).unwrap();
        let key = kept(&value, now).unwrap();
        assert!(!key.is_empty());
        assert_eq!(kept(&value, now + KEEP_SECS - 1), Some(key));
        assert_eq!(kept(&value, now + KEEP_SECS), None);
        assert_eq!(kept(b"short", now), None);
        // The demo certificate expires in 2126.
        let not_after = 4_949_845_319;
        let late = keep(pem, not_after - 10, &[]).unwrap();
        assert_eq!(kept(&late, not_after - 1), Some(key));
        assert_eq!(kept(&late, not_after), None);
        assert!(keep(pem, not_after, &[]).unwrap_err().contains("expired"));
    }

    #[test]
    fn only_the_first_certificate_counts_and_only_under_the_names_allowed() {
        let pem = include_str!("providers/sns/demo-certificate.pem");
        let other = include_str!("providers/sns/other-certificate.pem");
        let now = 2_000_000_000;
        let chain = format!("{pem}{other}");
        assert_eq!(
            keep(chain.as_bytes(), now, &[]),
            keep(pem.as_bytes(), now, &[])
        );
        let crlf = pem.replace('\n', "\r\n");
        assert_eq!(
            keep(crlf.as_bytes(), now, &[]),
            keep(pem.as_bytes(), now, &[])
        );
        let refused = keep(
            pem.as_bytes(),
            now,
            &["messageverificationcerts.paypal.com"],
        );
        assert!(refused.unwrap_err().contains("not of"));
        assert!(keep(pem.as_bytes(), now, &["sns.amazonaws.com"]).is_ok());
    }
}
