//! One HTTP client per router, with the TLS policy the user chose. Routers serve self-signed
//! certificates issued to names that are not their LAN address, so besides normal
//! verification there is "insecure" (accept any certificate, logged as a warning by the caller)
//! and pinning: accept exactly the certificate whose SHA-256 fingerprint is configured.

use std::sync::Arc;
use std::time::Duration;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

/// How a router's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsPolicy {
    /// Normal verification against the system roots.
    Verify,
    /// Any certificate (self-signed routers); the traffic is encrypted but not authenticated.
    Insecure,
    /// Only the certificate with this SHA-256 fingerprint.
    Pinned([u8; 32]),
}

#[derive(Debug, thiserror::Error)]
pub enum HttpSetupError {
    #[error("`{0}` is not a SHA-256 fingerprint (64 hex digits, colons allowed)")]
    Fingerprint(String),
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
    #[error("HTTP client setup failed: {0}")]
    Client(#[from] reqwest::Error),
}

impl TlsPolicy {
    /// Parses `AB:CD:…` or `abcd…` (what `openssl x509 -fingerprint -sha256` prints).
    pub fn pinned(fingerprint: &str) -> Result<Self, HttpSetupError> {
        let hex: String = fingerprint
            .chars()
            .filter(|c| *c != ':' && !c.is_whitespace())
            .collect();
        let bad = || HttpSetupError::Fingerprint(fingerprint.to_owned());
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).map_err(|_| bad())?;
        }
        Ok(Self::Pinned(out))
    }
}

/// SHA-256 of a certificate's DER, the form pinning compares.
pub fn fingerprint(cert: &[u8]) -> [u8; 32] {
    Sha256::digest(cert).into()
}

pub fn build_client(policy: &TlsPolicy, timeout: Duration) -> Result<reqwest::Client, HttpSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder =
        rustls::ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let config = match policy {
        TlsPolicy::Verify => builder.with_root_certificates(system_roots()).with_no_client_auth(),
        TlsPolicy::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Verifier {
                pin: None,
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
        TlsPolicy::Pinned(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Verifier {
                pin: Some(*pin),
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
    };
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .http1_only()
        .build()?)
}

/// The system's CA store, read once per process: parsing ~150 certificates costs tens of
/// milliseconds, and every router source (and every config `check-config` builds) needs it.
fn system_roots() -> Arc<rustls::RootCertStore> {
    static ROOTS: std::sync::OnceLock<Arc<rustls::RootCertStore>> = std::sync::OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            Arc::new(roots)
        })
        .clone()
}

/// Skips chain and name checks (routers have neither), but still checks that the server owns
/// the key it presents, and, when pinned, that it is exactly the expected certificate.
#[derive(Debug)]
struct Verifier {
    pin: Option<[u8; 32]>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.pin {
            Some(pin) if fingerprint(end_entity) != pin => Err(rustls::Error::General(
                "the router's certificate does not match the pinned tls_fingerprint".into(),
            )),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A transport error in the user's terms, without the URL (which may hold a session token):
/// `timeout_text` when it timed out, else `connect_text` or `other_text` with the innermost
/// cause (`…: Connection refused (os error 111)`).
pub fn describe_error(
    e: &reqwest::Error,
    timeout_text: impl FnOnce() -> String,
    connect_text: &str,
    other_text: &str,
) -> String {
    if e.is_timeout() {
        return timeout_text();
    }
    let mut detail = if e.is_connect() { connect_text } else { other_text }.to_owned();
    let mut source = std::error::Error::source(e);
    let mut innermost = None;
    while let Some(s) = source {
        innermost = Some(s.to_string());
        source = s.source();
    }
    if let Some(inner) = innermost {
        detail.push_str(": ");
        detail.push_str(&inner);
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fingerprints_in_common_spellings() {
        let hex = "AB".repeat(32);
        let colons: String = (0..32).map(|_| "ab").collect::<Vec<_>>().join(":");
        assert_eq!(TlsPolicy::pinned(&hex).unwrap(), TlsPolicy::Pinned([0xab; 32]));
        assert_eq!(TlsPolicy::pinned(&colons).unwrap(), TlsPolicy::Pinned([0xab; 32]));
        assert!(TlsPolicy::pinned("abcd").is_err());
        assert!(TlsPolicy::pinned(&"zz".repeat(32)).is_err());
    }
}
