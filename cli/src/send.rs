//! Sends the planned requests and reports one line per request.

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use ureq::Agent;

use crate::cli::{Common, Expect};
use crate::plan::{Error, Request};

/// Longest response body shown on a result line, in characters.
const SHOWN_BODY_CHARS: usize = 200;
/// Most response body bytes read.
const READ_BODY_BYTES: u64 = 1 << 20;

/// An HTTP/1.1 client that follows no redirect and reports every status as a response.
pub fn agent(common: &Common) -> Result<Agent, Error> {
    let mut builder = ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(common.timeout);
    if let Some(tls) = tls_config(common)? {
        builder = builder.tls_config(Arc::new(tls));
    }
    Ok(builder.build())
}

/// The TLS configuration for `--cacert` or `--insecure`; `None`: ureq's own (web roots).
fn tls_config(common: &Common) -> Result<Option<ClientConfig>, Error> {
    let provider = Arc::new(ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = if common.insecure {
        Arc::new(AnyCertificate(provider.clone()))
    } else if let Some(path) = &common.cacert {
        let shown = path.display();
        let pem = std::fs::read(path).map_err(|e| format!("--cacert {shown}: {e}"))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("--cacert {shown}: {e}"))?;
        if certs.is_empty() {
            return Err(format!("--cacert {shown}: no PEM certificate in it"));
        }
        let mut roots = RootCertStore::empty();
        for cert in &certs {
            roots
                .add(cert.clone())
                .map_err(|e| format!("--cacert {shown}: {e}"))?;
        }
        let chains = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| format!("--cacert {shown}: {e}"))?;
        Arc::new(TrustedFile { certs, chains })
    } else {
        return Ok(None);
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Some(config))
}

/// `--cacert`: a chain to one of the file's certificates, or, as curl and OpenSSL accept,
/// exactly one of them presented by the server itself. A self-signed certificate made by
/// `openssl req -x509` (the demo's, the tests') is marked as a CA, which WebPKI refuses to
/// see as a server certificate; trusting the identical certificate is what the file says.
/// The name is checked either way.
#[derive(Debug)]
struct TrustedFile {
    certs: Vec<CertificateDer<'static>>,
    chains: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for TrustedFile {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.chains.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verdict {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::Other(_) | CertificateError::UnknownIssuer,
            )) if self.certs.iter().any(|c| c.as_ref() == end_entity.as_ref()) => {
                let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&parsed, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            verdict => verdict,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chains.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chains.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chains.supported_verify_schemes()
    }
}

/// `--insecure`: any certificate; the handshake signatures are still checked.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The status and body of a response.
fn send(agent: &Agent, request: &Request) -> Result<(u16, Vec<u8>), String> {
    let mut call = agent.request(request.method, &request.target.url());
    for header in &request.headers {
        call = call.set(&header.name, &header.value);
    }
    let result = if request.method == "GET" && request.body.is_empty() {
        call.call()
    } else {
        call.send_bytes(&request.body)
    };
    let response = match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response,
        Err(ureq::Error::Transport(error)) => return Err(error.to_string()),
    };
    let status = response.status();
    let mut body = Vec::new();
    if let Err(e) = response
        .into_reader()
        .take(READ_BODY_BYTES)
        .read_to_end(&mut body)
    {
        body = format!("<body unreadable: {e}>").into_bytes();
    }
    Ok((status, body))
}

/// Sends every request in order, printing a line for each. True when each got a response
/// with the expected status (any status without `--expect`).
pub fn run(agent: &Agent, requests: &[Request], common: &Common) -> bool {
    let mut all_ok = true;
    let stdout = std::io::stdout();
    for (i, request) in requests.iter().enumerate() {
        if i > 0 {
            if let Some(delay) = common.delay {
                std::thread::sleep(delay);
            }
        }
        let result = send(agent, request);
        let (line, ok) = report(i, request, &result, common.expect.as_ref());
        all_ok &= ok;
        let mut out = stdout.lock();
        // A closed stdout (e.g. `| head`) must not stop the remaining requests.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
    all_ok
}

/// `#1 POST https://host/path -> 200 {"result":...}` and whether it met the expectation.
pub fn report(
    index: usize,
    request: &Request,
    result: &Result<(u16, Vec<u8>), String>,
    expect: Option<&Expect>,
) -> (String, bool) {
    let head = format!(
        "#{} {} {}{}",
        index + 1,
        request.method,
        request.target.url(),
        request.label()
    );
    match result {
        Err(error) => (format!("{head} -> error: {error}"), false),
        Ok((status, body)) => {
            let expected = expect.and_then(|e| e.status(index));
            let (ok, note) = match expected {
                Some(want) if want != *status => (false, format!(" (expected {want})")),
                _ => (true, String::new()),
            };
            let body = one_line(body);
            let sep = if body.is_empty() { "" } else { " " };
            (format!("{head} -> {status}{note}{sep}{body}"), ok)
        }
    }
}

/// A response body on one line: JSON without its layout whitespace, anything else with
/// control characters as spaces; cut to [`SHOWN_BODY_CHARS`].
fn one_line(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let flat: String = if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
        compact_json(text)
    } else {
        let spaced: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        spaced.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    match flat.char_indices().nth(SHOWN_BODY_CHARS) {
        Some((cut, _)) => format!("{}...", &flat[..cut]),
        None => flat,
    }
}

/// Valid JSON without the whitespace between tokens, member order kept.
fn compact_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if !c.is_whitespace() {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Kind, Target};

    fn request(kind: Kind) -> Request {
        Request {
            method: "POST",
            target: Target::parse("https://127.0.0.1:8443/vobiz/answer").unwrap(),
            headers: Vec::new(),
            body: Vec::new(),
            body_signature: None,
            signed: Vec::new(),
            kind,
        }
    }

    #[test]
    fn result_lines() {
        let ok = Ok((
            200,
            br#"{"result": "duplicate",
            "reason": "already_delivered"}"#
                .to_vec(),
        ));
        assert_eq!(
            report(1, &request(Kind::Replay), &ok, None),
            (
                r#"#2 POST https://127.0.0.1:8443/vobiz/answer (replay) -> 200 {"result":"duplicate","reason":"already_delivered"}"#
                    .to_string(),
                true
            )
        );
        let expect = Expect(vec![200, 409]);
        let (line, good) = report(0, &request(Kind::Genuine), &ok, Some(&expect));
        assert!(good, "{line}");
        let (line, good) = report(2, &request(Kind::Genuine), &ok, Some(&expect));
        assert!(!good);
        assert!(line.contains("-> 200 (expected 409) {"), "{line}");
        let (line, good) = report(0, &request(Kind::Genuine), &Err("refused".into()), None);
        assert_eq!(
            (line.as_str(), good),
            (
                "#1 POST https://127.0.0.1:8443/vobiz/answer -> error: refused",
                false
            )
        );
        let (line, _) = report(0, &request(Kind::Genuine), &Ok((204, Vec::new())), None);
        assert!(line.ends_with("-> 204"), "{line}");
    }

    #[test]
    fn bodies_are_shown_on_one_short_line() {
        assert_eq!(one_line(b"<p>a\r\n  b</p>\n"), "<p>a b</p>");
        assert_eq!(
            one_line(b"{\n  \"a b\": \"x \\\" y\",\n  \"c\": [1, 2]\n}"),
            r#"{"a b":"x \" y","c":[1,2]}"#
        );
        let long = "\u{e9}".repeat(300);
        let shown = one_line(long.as_bytes());
        assert_eq!(shown.chars().count(), SHOWN_BODY_CHARS + 3);
        assert!(shown.ends_with("..."));
        assert_eq!(one_line(b"\xff\xfe"), "\u{fffd}\u{fffd}");
    }
}
