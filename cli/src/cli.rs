//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use callback_guard::providers::registry::NAMES;
use callback_guard::providers::vobiz::voice::Family;
use clap::builder::PossibleValuesParser;
use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

use crate::util::parse_duration;

/// Signs and sends callbacks exactly as their providers do (Vobiz's, and every other scheme
/// callback-guard verifies), to smoke-test a deployment of callback-guard or any callback
/// endpoint.
///
/// Prints one line per request sent. Exit status: 0 when every request got an HTTP
/// response (with --expect: the expected status), 1 when one did not, 2 on a usage error.
#[derive(Debug, Parser)]
#[command(name = "callback-guard", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// A voice callback (answer, hangup, ...): X-Vobiz-Signature-V3/-V2/-MA-V3/-MA-V2 with
    /// their nonces; the signature covers origin + path (+ nonce), never the body.
    Voice(VoiceArgs),
    /// A WhatsApp webhook: JSON envelope, X-Webhook-Signature = hex HMAC of the body.
    Whatsapp(WhatsappArgs),
    /// A sub-account KYC webhook: X-Vobiz-Signature: sha256=<hex HMAC of the body>, keyed
    /// with the parent account token.
    Kyc(KycArgs),
    /// Any scheme's callback, signed as its provider does by the signer next to the
    /// filter's verifier: `--scheme` names it as a route does (every scheme the filter
    /// verifies).
    Webhook(WebhookArgs),
    /// Checks plugin configurations offline with the filter's own parser: a plugin
    /// configuration, or every callback-guard filter in an Envoy YAML (bootstrap, LDS or
    /// ECDS resources), an Istio EnvoyFilter or WasmPlugin. Exit status 0 when every file
    /// holds one and all are valid, 1 otherwise.
    Check(CheckArgs),
    /// Seals a key for a configuration that may be shown (`"sealed": "cgs1.…"`): reads the
    /// secret from standard input (one trailing newline dropped), prints it sealed under
    /// the sealing key in the environment. The filter opens it with the same variable.
    Seal(SealArgs),
}

#[derive(Debug, Args)]
pub struct SealArgs {
    /// The environment variable holding the sealing key (standard base64 of 32 bytes),
    /// named by the configuration's `sealing_key.env`.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "CALLBACK_GUARD_SEALING_KEY"
    )]
    pub key_env: String,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The files (YAML or JSON, several documents each).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// The plugin's root_id (a WasmPlugin's pluginName) in Envoy's configuration.
    #[arg(long, default_value = "callback_guard")]
    pub root_id: String,

    /// A variable's value as the VM would see it, to check its form too [default: this
    /// process's environment, else an example of the form the route takes].
    #[arg(long, value_name = "NAME=VALUE")]
    pub env: Vec<String>,
}

/// The earlier names `webhook --provider` took, each a scheme's alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Provider {
    StandardWebhooks,
    Svix,
    Stripe,
    Github,
    Slack,
    Twilio,
    Shopify,
    Meta,
}

impl Provider {
    /// The scheme it names.
    pub fn scheme(self) -> &'static str {
        match self {
            Provider::StandardWebhooks => "standard_webhooks",
            Provider::Svix => "svix",
            Provider::Stripe => "stripe",
            Provider::Github => "github",
            Provider::Slack => "slack",
            Provider::Twilio => "twilio",
            Provider::Shopify => "shopify",
            Provider::Meta => "meta",
        }
    }
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["scheme", "provider"])))]
#[command(group(ArgGroup::new("signing_key").required(true).multiple(true).args(["secret", "private_key"])))]
pub struct WebhookArgs {
    /// The scheme to sign as, by the name a route's `scheme` gives it.
    #[arg(long, value_name = "SCHEME", value_parser = PossibleValuesParser::new(NAMES))]
    pub scheme: Option<String>,

    /// The same by an earlier name: standard-webhooks, svix, stripe, github, slack, twilio,
    /// shopify or meta.
    #[arg(long, value_enum, hide_possible_values = true)]
    pub provider: Option<Provider>,

    /// The route's secret, as its `keys` hold it (the Standard Webhooks family: whsec_...;
    /// Stripe: the whole whsec_ string; Twilio and Vobiz: the Auth Token).
    #[arg(long, env = "WEBHOOK_SECRET", hide_env_values = true)]
    pub secret: Option<String>,

    /// The provider's private key, for the public-key schemes: Discord, 64 hex digits of
    /// the Ed25519 seed; SendGrid, 64 hex digits of the P-256 scalar or a PKCS#8 key (PEM
    /// or base64 DER); the Standard Webhooks family (v1a), whsk_ and base64 of the seed.
    #[arg(long, env = "WEBHOOK_PRIVATE_KEY", hide_env_values = true)]
    pub private_key: Option<String>,

    /// Sign and send exactly this body (the signer adds what the provider adds: Mailgun's
    /// signature block) [default: an event of the provider's, with a fresh id: a JSON
    /// object, an array for HubSpot and SendGrid, a form for Twilio and Vobiz voice].
    #[arg(long)]
    pub body: Option<String>,

    /// The delivery id, nonce or token, as the provider writes it [default: a fresh one].
    #[arg(long)]
    pub id: Option<String>,

    /// Sign this long before now, for providers that sign a time (e.g. 10m, to be refused
    /// as stale).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, group = "when")]
    pub age: Option<Duration>,

    /// Sign this long after now (e.g. 10m, to be refused as future).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, group = "when")]
    pub ahead: Option<Duration>,

    /// For the schemes that sign the URL (vobiz_voice, plivo, twilio, square, hubspot, a
    /// generic_hmac that signs it): the scheme://authority the provider calls, the
    /// route's public_origin, when it differs from the --url's [default: the --url's, as
    /// written].
    #[arg(
        long,
        visible_alias = "public-origin",
        value_name = "SCHEME://AUTHORITY"
    )]
    pub origin: Option<String>,

    /// generic_hmac: the route's `generic` block, as JSON.
    #[arg(long, value_name = "JSON")]
    pub generic: Option<String>,

    /// static_token, basic_auth: the route's `token` block, as JSON (static_token needs
    /// its `header`).
    #[arg(long, value_name = "JSON")]
    pub token: Option<String>,

    /// google_pubsub: the audience the token is issued for, the route's jwt.audience
    /// [default: the --url without its query, Pub/Sub's default]. Tokens are signed with
    /// the demo's key, which only the demo's jwt_authn trusts.
    #[arg(long, value_name = "AUDIENCE")]
    pub audience: Option<String>,

    #[command(flatten)]
    pub common: Common,
}

/// Whose header names a voice callback carries: Vobiz signs exactly as Plivo does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Brand {
    Vobiz,
    Plivo,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub struct Common {
    /// Where to send the callback (http:// or https://; a query is kept).
    #[arg(long, value_name = "URL")]
    pub url: String,

    /// Trust only the CA certificate(s) in this PEM file (e.g. .run/tls/cert.pem of the
    /// demo) instead of the built-in web roots.
    #[arg(long, value_name = "PEM")]
    pub cacert: Option<PathBuf>,

    /// Do not verify the server's TLS certificate.
    #[arg(long, short = 'k')]
    pub insecure: bool,

    /// After the first request, send the identical request N more times.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub replay: u32,

    /// After the genuine request (and its --replay copies), send one copy altered in this
    /// part, still carrying the genuine request's signature headers.
    #[arg(long, value_enum, value_name = "PART")]
    pub tamper: Option<Tamper>,

    /// Wait this long before each request after the first (500ms, 2s, 10m, 1h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub delay: Option<Duration>,

    /// Extra header, repeatable. Replaces a generated header of the same name; 'Name:'
    /// with no value removes it. A repeated X-... name is sent repeatedly (e.g. to test
    /// duplicate signature headers); another repeated name keeps its last value.
    #[arg(
        long = "header",
        short = 'H',
        value_name = "NAME: VALUE",
        value_parser = parse_header
    )]
    pub headers: Vec<(String, String)>,

    /// Status each response must have. With several, the i-th request must get the i-th
    /// status and the last one applies to every further request (e.g. 200,409 with
    /// --tamper).
    #[arg(long, value_name = "STATUS[,STATUS...]", value_parser = parse_expect)]
    pub expect: Option<Expect>,

    /// Print the exact signed string(s), headers and body of each request; send nothing.
    /// Tokens and secrets are never printed.
    #[arg(long)]
    pub dry_run: bool,

    /// Give up on a request after this long.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("keys").required(true).multiple(true).args(["token", "parent_token"])))]
pub struct VoiceArgs {
    /// The (sub-)account auth token: signs V3 and V2.
    #[arg(long, env = "VOBIZ_AUTH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// The parent (main) account auth token: signs MA-V3 and MA-V2.
    #[arg(long, env = "VOBIZ_PARENT_AUTH_TOKEN", hide_env_values = true)]
    pub parent_token: Option<String>,

    /// Signature families to send [default: v3, plus ma_v3 with --parent-token].
    #[arg(long, value_name = "v3,ma_v3,v2,ma_v2", value_delimiter = ',', value_parser = parse_family)]
    pub families: Vec<Family>,

    /// The V3 message: the Vobiz docs' origin+path+"."+nonce, or the official SDK's URL
    /// with sorted query and POST parameters. V2 families always use the docs'.
    #[arg(long, value_enum, default_value_t = Construction::Docs)]
    pub construction: Construction,

    /// POST sends the form as the body; GET appends it to the query, as Vobiz does.
    #[arg(long, value_enum, default_value_t = Method::Post, ignore_case = true)]
    pub method: Method,

    /// The form parameters, url-encoded, sent as is [default: a realistic StartApp answer
    /// request with a fresh CallUUID].
    #[arg(long, value_name = "FORM")]
    pub form: Option<String>,

    /// The V3 nonce, and the V2 one unless --nonce-v2 [default: fresh random 20 digits,
    /// different for V3 and V2].
    #[arg(long, value_parser = parse_nonce)]
    pub nonce: Option<String>,

    /// The V2 nonce.
    #[arg(long, value_parser = parse_nonce)]
    pub nonce_v2: Option<String>,

    /// The scheme://authority registered with Vobiz, when it differs from the --url's
    /// (a load balancer, tunnel or test port in front) [default: the --url's, as written].
    #[arg(long, value_name = "SCHEME://AUTHORITY")]
    pub origin: Option<String>,

    /// X-Vobiz-* or X-Plivo-* signature headers (the signing is the same).
    #[arg(long, value_enum, default_value_t = Brand::Vobiz)]
    pub brand: Brand,

    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct WhatsappArgs {
    /// The webhook subscription's shared secret.
    #[arg(long, env = "VOBIZ_WHATSAPP_SECRET", hide_env_values = true)]
    pub secret: String,

    /// The envelope's event_id [default: a fresh UUID].
    #[arg(long)]
    pub event_id: Option<String>,

    /// The envelope's event_type, also sent as X-Webhook-Event.
    #[arg(long, default_value = "message.inbound")]
    pub event_type: String,

    /// The envelope's account_id.
    #[arg(long, default_value = "MA_SIMULATOR")]
    pub account_id: String,

    /// The envelope's occurred_at, used verbatim [default: now].
    #[arg(long, value_name = "RFC3339", group = "when")]
    pub occurred_at: Option<String>,

    /// occurred_at this long before now (e.g. 2h, to be refused as stale).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, group = "when")]
    pub age: Option<Duration>,

    /// occurred_at this long after now (e.g. 10m, to be refused as future).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, group = "when")]
    pub ahead: Option<Duration>,

    /// The envelope's payload, JSON, used verbatim [default: an inbound text message].
    #[arg(long, value_name = "JSON")]
    pub payload: Option<String>,

    /// Sign and send exactly this body instead of building an envelope.
    #[arg(long, conflicts_with_all = ["event_id", "account_id", "when", "payload"])]
    pub body: Option<String>,

    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct KycArgs {
    /// The parent (main) account auth token.
    #[arg(long, env = "VOBIZ_PARENT_AUTH_TOKEN", hide_env_values = true)]
    pub parent_token: String,

    /// The body's event.
    #[arg(long, default_value = "kyc.completed")]
    pub event: String,

    /// Sign and send exactly this body instead of {"event","timestamp","session_id"}.
    #[arg(long, conflicts_with = "event")]
    pub body: Option<String>,

    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Tamper {
    /// Another body (a form field or JSON member added).
    Body,
    /// Another query (tampered=1 added).
    Query,
    /// Another path ("-tampered" appended).
    Path,
    /// Another signature (one bit flipped, still well-formed).
    Signature,
    /// Another nonce (fresh random digits; voice only).
    Nonce,
}

impl Tamper {
    pub fn name(self) -> &'static str {
        match self {
            Tamper::Body => "body",
            Tamper::Query => "query",
            Tamper::Path => "path",
            Tamper::Signature => "signature",
            Tamper::Nonce => "nonce",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Construction {
    Docs,
    Sdk,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    #[value(name = "POST")]
    Post,
    #[value(name = "GET")]
    Get,
}

/// Expected statuses, in request order; the last repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect(pub Vec<u16>);

impl Expect {
    /// The status request `index` (0-based) must get.
    pub fn status(&self, index: usize) -> Option<u16> {
        self.0.get(index).or(self.0.last()).copied()
    }
}

fn parse_expect(text: &str) -> Result<Expect, String> {
    text.split(',')
        .map(|s| match s.trim().parse::<u16>() {
            Ok(status) if (100..=599).contains(&status) => Ok(status),
            _ => Err(format!("{s:?} is not an HTTP status (100 to 599)")),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Expect)
}

fn parse_family(text: &str) -> Result<Family, String> {
    Family::ALL
        .into_iter()
        .find(|family| family.name().eq_ignore_ascii_case(text.trim()))
        .ok_or_else(|| format!("{text:?} is not one of v3, ma_v3, v2, ma_v2"))
}

/// Any visible ASCII, as the filter accepts; Vobiz sends 20 digits.
fn parse_nonce(text: &str) -> Result<String, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("a nonce is visible ASCII without spaces (Vobiz sends 20 digits)".into());
    }
    Ok(text.to_string())
}

/// `Name: value` (curl's syntax); the value may be empty.
fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not 'Name: value'"))?;
    let name = name.trim();
    let valid_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid_name {
        return Err(format!("{name:?} is not a header name"));
    }
    Ok((name.to_string(), value.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("vobiz-sim").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn voice_options() {
        let cli = parse(&[
            "voice",
            "--url",
            "https://127.0.0.1:9000/vobiz/answer",
            "--token",
            "t",
            "--parent-token",
            "p",
            "--families",
            "v3,MA_V3,v2",
            "--construction",
            "sdk",
            "--method",
            "get",
            "--form",
            "a=1",
            "--nonce",
            "123",
            "--origin",
            "https://127.0.0.1:8443",
            "--replay",
            "2",
            "--tamper",
            "body",
            "--delay",
            "500ms",
            "-H",
            "x-test-id: abc",
            "--header",
            "X-Empty:",
            "--expect",
            "200,409",
            "--dry-run",
            "--cacert",
            "cert.pem",
        ])
        .unwrap();
        let Command::Voice(v) = cli.command else {
            panic!("not voice")
        };
        assert_eq!(v.families, [Family::V3, Family::MaV3, Family::V2]);
        assert_eq!(v.construction, Construction::Sdk);
        assert_eq!(v.method, Method::Get);
        assert_eq!(v.nonce.as_deref(), Some("123"));
        assert_eq!(v.origin.as_deref(), Some("https://127.0.0.1:8443"));
        let c = v.common;
        assert_eq!(c.replay, 2);
        assert_eq!(c.tamper, Some(Tamper::Body));
        assert_eq!(c.delay, Some(Duration::from_millis(500)));
        assert_eq!(
            c.headers,
            [
                ("x-test-id".to_string(), "abc".to_string()),
                ("X-Empty".to_string(), String::new())
            ]
        );
        assert_eq!(c.expect, Some(Expect(vec![200, 409])));
        assert!(c.dry_run && !c.insecure);
        assert_eq!(c.cacert, Some(PathBuf::from("cert.pem")));
        assert_eq!(c.timeout, Duration::from_secs(10));
    }

    #[test]
    fn voice_needs_a_token_and_a_url() {
        // Only when the environment does not provide one.
        if std::env::var_os("VOBIZ_AUTH_TOKEN").is_none()
            && std::env::var_os("VOBIZ_PARENT_AUTH_TOKEN").is_none()
        {
            assert!(parse(&["voice", "--url", "https://x/"]).is_err());
        }
        assert!(parse(&["voice", "--token", "t"]).is_err());
        assert!(parse(&["voice", "--url", "https://x/", "--parent-token", "p"]).is_ok());
    }

    #[test]
    fn bad_values_are_usage_errors() {
        let base = ["voice", "--url", "https://x/", "--token", "t"];
        for extra in [
            &["--families", "v1"][..],
            &["--families", "v3,"],
            &["--construction", "either"],
            &["--method", "PUT"],
            &["--nonce", "has space"],
            &["--nonce", ""],
            &["--tamper", "everything"],
            &["--delay", "5"],
            &["--header", "no colon"],
            &["--header", ": value"],
            &["--header", "bad name: v"],
            &["--expect", "200,abc"],
            &["--expect", "99"],
            &["--replay", "-1"],
            &["--origin"],
        ] {
            let args: Vec<&str> = base.iter().chain(extra).copied().collect();
            assert!(parse(&args).is_err(), "{extra:?}");
        }
    }

    #[test]
    fn whatsapp_time_options_exclude_each_other() {
        let base = ["whatsapp", "--url", "https://x/w", "--secret", "s"];
        let ok: Vec<&str> = base.iter().chain(&["--age", "2h"]).copied().collect();
        let Command::Whatsapp(w) = parse(&ok).unwrap().command else {
            panic!("not whatsapp")
        };
        assert_eq!(w.age, Some(Duration::from_secs(7200)));
        for extra in [
            &["--age", "2h", "--ahead", "1m"][..],
            &["--occurred-at", "2026-03-25T10:00:00Z", "--age", "1s"],
            &["--body", "{}", "--event-id", "e"],
            &["--body", "{}", "--age", "1s"],
        ] {
            let args: Vec<&str> = base.iter().chain(extra).copied().collect();
            assert!(parse(&args).is_err(), "{extra:?}");
        }
    }

    #[test]
    fn kyc_options() {
        let cli = parse(&[
            "kyc",
            "--url",
            "https://x/kyc/e",
            "--parent-token",
            "p",
            "--event",
            "kyc.failed",
        ])
        .unwrap();
        let Command::Kyc(k) = cli.command else {
            panic!("not kyc")
        };
        assert_eq!(k.event, "kyc.failed");
        assert!(parse(&[
            "kyc",
            "--url",
            "https://x/",
            "--parent-token",
            "p",
            "--origin",
            "https://y"
        ])
        .is_err());
    }

    #[test]
    fn expectations_repeat_the_last_status() {
        let expect = parse_expect("200, 409").unwrap();
        assert_eq!(
            (0..4).map(|i| expect.status(i)).collect::<Vec<_>>(),
            [Some(200), Some(409), Some(409), Some(409)]
        );
    }
}
