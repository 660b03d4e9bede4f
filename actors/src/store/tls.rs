//! TLS to PostgreSQL (rustls), in libpq's terms, read from `database.url`:
//! `sslmode` = `disable`, `prefer` (the default: TLS when the server offers
//! it), `require` (TLS, unverified unless `sslrootcert` is given, then as
//! `verify-ca`), `verify-ca` (the chain against the CA), `verify-full` (the
//! chain and the host name); `sslrootcert` = a PEM file of CA certificates
//! (without it, verification uses the Mozilla roots).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::Socket;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::error::StoreError;
use crate::secret::ConnUrl;
use crate::tls::provider;

/// What a connection to PostgreSQL streams over: TCP, TLS when negotiated.
pub type PgStream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Encrypt, trust any certificate (libpq's `prefer`/`require`).
    Nothing,
    /// The certificate chains to a trusted CA, whatever host it names.
    Chain,
    /// The chain, and the certificate names the host connected to.
    ChainAndHost,
}

/// `database.url` as tokio-postgres takes it, and how to connect.
pub struct PgTarget {
    pub config: tokio_postgres::Config,
    pub tls: MakeRustlsConnect,
}

/// Splits libpq's TLS parameters off the URL (tokio-postgres knows only
/// disable/prefer/require and no `sslrootcert`) and builds the connector.
pub fn target(url: &ConnUrl) -> Result<PgTarget, StoreError> {
    let (rest, sslmode, rootcert) = split_tls_params(url.expose());
    let mut config: tokio_postgres::Config =
        rest.parse().map_err(|e: tokio_postgres::Error| StoreError::InvalidUrl(e.to_string()))?;
    let (mode, verify) = match sslmode.as_deref() {
        None | Some("prefer") | Some("allow") => (SslMode::Prefer, Verify::Nothing),
        Some("disable") => (SslMode::Disable, Verify::Nothing),
        Some("require") if rootcert.is_some() => (SslMode::Require, Verify::Chain),
        Some("require") => (SslMode::Require, Verify::Nothing),
        Some("verify-ca") => (SslMode::Require, Verify::Chain),
        Some("verify-full") => (SslMode::Require, Verify::ChainAndHost),
        Some(other) => return Err(StoreError::InvalidUrl(format!("unknown sslmode {other:?}"))),
    };
    config.ssl_mode(mode);
    let roots =
        crate::tls::root_store(rootcert.as_deref()).map_err(|e| StoreError::InvalidUrl(format!("sslrootcert {e}")))?;
    Ok(PgTarget { config, tls: MakeRustlsConnect::new(client_config(verify, roots)) })
}

/// Connects one dedicated session (the job listener, the presence lock).
pub async fn connect(
    url: &ConnUrl,
) -> Result<(tokio_postgres::Client, tokio_postgres::Connection<Socket, PgStream>), StoreError> {
    let PgTarget { config, tls } = target(url)?;
    Ok(config.connect(tls).await?)
}

fn split_tls_params(url: &str) -> (String, Option<String>, Option<String>) {
    let Some((base, query)) = url.split_once('?') else { return (url.to_owned(), None, None) };
    let (mut sslmode, mut rootcert, mut kept) = (None, None, Vec::new());
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "sslmode" => sslmode = Some(value.into_owned()),
            "sslrootcert" => rootcert = Some(value.into_owned()),
            _ => kept.push((key.into_owned(), value.into_owned())),
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", url::form_urlencoded::Serializer::new(String::new()).extend_pairs(kept).finish())
    };
    (rest, sslmode, rootcert)
}

fn client_config(verify: Verify, roots: RootCertStore) -> ClientConfig {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3");
    let webpki =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider()).build().expect("roots were checked");
    let verifier: Arc<dyn ServerCertVerifier> = match verify {
        Verify::ChainAndHost => webpki,
        Verify::Chain => Arc::new(Relaxed { chain: Some(webpki), provider: provider() }),
        Verify::Nothing => Arc::new(Relaxed { chain: None, provider: provider() }),
    };
    builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth()
}

/// Less than webpki's whole check: `verify-ca` (the chain against the CA,
/// not the host name) with `chain`, or without it `prefer`/`require` with
/// no CA (any certificate passes, as with libpq). The handshake signatures
/// are always checked.
#[derive(Debug)]
struct Relaxed {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Relaxed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_tls_parameters_are_split_off_and_the_rest_kept() {
        let (rest, mode, root) = split_tls_params(
            "postgres://u:p@db:5432/aisha?sslmode=verify-full&application_name=x&sslrootcert=%2Fca.pem",
        );
        assert_eq!(
            (rest.as_str(), mode.as_deref(), root.as_deref()),
            ("postgres://u:p@db:5432/aisha?application_name=x", Some("verify-full"), Some("/ca.pem"))
        );
        assert_eq!(split_tls_params("postgres://db/aisha").0, "postgres://db/aisha");
    }

    #[test]
    fn an_unknown_sslmode_or_a_missing_ca_file_is_a_config_error() {
        assert!(target(&ConnUrl::new("postgres://db/aisha?sslmode=sometimes")).is_err());
        assert!(target(&ConnUrl::new("postgres://db/aisha?sslmode=verify-full&sslrootcert=/nonexistent.pem")).is_err());
        assert!(target(&ConnUrl::new("postgres://db/aisha?sslmode=verify-full")).is_ok(), "the Mozilla roots");
    }
}
