//! TLS for both kinds of connection this crate opens, as libpq does it: `sslmode`,
//! `sslrootcert`, `sslcert`/`sslkey`, over rustls (with ring: no C toolchain beyond gcc).
//!
//! The SQL sessions (tokio-postgres) and the walsender connection (spoken by hand in
//! [`replication`](crate::replication)) share one piece: the same certificate checks, and
//! the same `tls-server-end-point` channel binding for SCRAM-SHA-256-PLUS (RFC 5929: a hash
//! of the server's certificate, with the hash its signature uses). That is why the
//! tokio-postgres adapter is written here rather than taken from `tokio-postgres-rustls`:
//! the walsender needs the binding too, and that crate does not expose it.
//!
//! What each mode checks, as libpq:
//! - `disable`: no TLS.
//! - `allow`, `prefer`: TLS when the server offers it, no certificate check; plaintext
//!   otherwise. (`allow` is read as `prefer`: it tries TLS first, never less safe.)
//! - `require`: TLS or nothing; the chain is checked only when a root certificate file
//!   exists (`sslrootcert`, or `~/.postgresql/root.crt`), as libpq does.
//! - `verify-ca`: TLS, the chain checked against the roots.
//! - `verify-full`: TLS, the chain and the host name checked.
//!
//! `sslrootcert=system` uses the operating system's trusted roots.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::config::{PgConfig, SslMode};
use crate::error::{Error, Result};

/// How a connection's TLS is set up: the rustls configuration for its mode and files, and
/// the name the server's certificate is checked against.
#[derive(Clone)]
pub struct Tls {
    connector: TlsConnector,
    server_name: ServerName<'static>,
    /// What the certificate check is, for preflight's report.
    pub verification: &'static str,
}

impl Tls {
    /// The TLS of `config`; `None` under `sslmode=disable`. Fails when a certificate or key
    /// file named (or needed) cannot be read, naming the file.
    pub fn of(config: &PgConfig) -> Result<Option<Tls>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = match (config.sslmode, root_file(config)) {
            (SslMode::Disable, _) => return Ok(None),
            (SslMode::Allow | SslMode::Prefer, _) | (SslMode::Require, None) => None,
            (SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull, Some(path)) => {
                Some(load_roots(&path)?)
            }
            (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
                return Err(Error::Tls(format!(
                    "sslmode={} needs root certificates: set sslrootcert (a PEM file, or \
                     `system`), or put them in ~/.postgresql/root.crt",
                    config.sslmode.name()
                )));
            }
        };
        let name = config.sslmode == SslMode::VerifyFull;
        let verification = match (&roots, name) {
            (None, _) => "encrypted, the server's certificate not checked",
            (Some(_), false) => "encrypted, the certificate's chain checked (not the host name)",
            (Some(_), true) => "encrypted, the certificate's chain and host name checked",
        };
        let chain = match roots {
            None => None,
            Some(roots) => Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| Error::Tls(format!("the root certificates: {e}")))?,
            ),
        };
        let verifier = Arc::new(CertificateCheck {
            chain,
            name,
            algorithms: provider.signature_verification_algorithms,
        });
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let client = match (&config.tls_files.cert, &config.tls_files.key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| file_error("sslcert", cert, e))?;
                let key =
                    PrivateKeyDer::from_pem_file(key).map_err(|e| file_error("sslkey", key, e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| Error::Tls(format!("sslcert and sslkey: {e}")))?
            }
            _ => {
                return Err(Error::Tls(
                    "sslcert and sslkey go together: set both or neither".into(),
                ));
            }
        };
        let server_name = ServerName::try_from(config.host.clone()).map_err(|_| {
            Error::Tls(format!(
                "`{}` is not a host name TLS can check",
                config.host
            ))
        })?;
        Ok(Some(Tls {
            connector: TlsConnector::from(Arc::new(client)),
            server_name,
            verification,
        }))
    }

    /// The TLS handshake over `stream`, once the server has accepted an SSLRequest.
    pub async fn handshake<S>(&self, stream: S) -> io::Result<TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.connector
            .connect(self.server_name.clone(), stream)
            .await
    }
}

/// The root certificates' file: `sslrootcert`, else libpq's default
/// `~/.postgresql/root.crt` when it exists.
fn root_file(config: &PgConfig) -> Option<PathBuf> {
    config.tls_files.root_cert.clone().or_else(|| {
        let home = std::env::var_os("HOME")?;
        Some(Path::new(&home).join(".postgresql/root.crt")).filter(|path| path.exists())
    })
}

fn load_roots(path: &Path) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    if path == Path::new("system") {
        let found = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(found.certs);
        if roots.is_empty() {
            return Err(Error::Tls(
                "sslrootcert=system: the system has no trusted root certificates".into(),
            ));
        }
        return Ok(roots);
    }
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| file_error("sslrootcert", path, e))?;
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| Error::Tls(format!("sslrootcert {}: {e}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(Error::Tls(format!(
            "sslrootcert {}: no certificate in the file",
            path.display()
        )));
    }
    Ok(roots)
}

fn file_error(parameter: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Tls(format!("{parameter} {}: {e}", path.display()))
}

/// The `tls-server-end-point` channel binding of a session: the server certificate's hash,
/// with SHA-256 in place of MD5 and SHA-1 (RFC 5929 §4.1). `None` when the signature
/// names no hash (Ed25519, RSA-PSS), where SCRAM goes on without channel binding, as libpq.
pub fn end_point_binding<S>(stream: &TlsStream<S>) -> Option<Vec<u8>> {
    let certificate = stream.get_ref().1.peer_certificates()?.first()?;
    let algorithm = match signature_algorithm(certificate)? {
        MD5_RSA | SHA1_RSA | SHA256_RSA | SHA1_ECDSA | SHA256_ECDSA => &ring::digest::SHA256,
        SHA384_RSA | SHA384_ECDSA => &ring::digest::SHA384,
        SHA512_RSA | SHA512_ECDSA => &ring::digest::SHA512,
        _ => return None,
    };
    Some(
        ring::digest::digest(algorithm, certificate)
            .as_ref()
            .to_vec(),
    )
}

// The DER content of the signature algorithms' object identifiers.
const MD5_RSA: &[u8] = &[42, 134, 72, 134, 247, 13, 1, 1, 4];
const SHA1_RSA: &[u8] = &[42, 134, 72, 134, 247, 13, 1, 1, 5];
const SHA256_RSA: &[u8] = &[42, 134, 72, 134, 247, 13, 1, 1, 11];
const SHA384_RSA: &[u8] = &[42, 134, 72, 134, 247, 13, 1, 1, 12];
const SHA512_RSA: &[u8] = &[42, 134, 72, 134, 247, 13, 1, 1, 13];
const SHA1_ECDSA: &[u8] = &[42, 134, 72, 206, 61, 4, 1];
const SHA256_ECDSA: &[u8] = &[42, 134, 72, 206, 61, 4, 3, 2];
const SHA384_ECDSA: &[u8] = &[42, 134, 72, 206, 61, 4, 3, 3];
const SHA512_ECDSA: &[u8] = &[42, 134, 72, 206, 61, 4, 3, 4];

/// The object identifier of a certificate's `signatureAlgorithm`: `Certificate ::=
/// SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm SEQUENCE { algorithm OID, … }, … }`.
/// Three DER headers read by hand: a certificate parser would compile an ASN.1 framework
/// for this one field (rustls has already checked the certificate itself).
fn signature_algorithm(der: &[u8]) -> Option<&[u8]> {
    let (certificate, _) = element(der, 0x30)?;
    let (_, after_tbs) = element(certificate, 0x30)?;
    let (algorithm, _) = element(after_tbs, 0x30)?;
    Some(element(algorithm, 0x06)?.0)
}

/// A DER element with tag `tag` at the start of `input`: its content, and what follows it.
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        let bytes = usize::from(first & 0x7f);
        if bytes == 0 || bytes > 4 || rest.len() < bytes {
            return None;
        }
        let (length, after) = rest.split_at(bytes);
        rest = after;
        length.iter().fold(0, |n, b| (n << 8) | usize::from(*b))
    };
    (rest.len() >= length).then(|| rest.split_at(length))
}

/// The server certificate check of a mode. Whatever the check, the handshake must be
/// signed by the certificate's key, so the channel binding means what it says.
#[derive(Debug)]
struct CertificateCheck {
    /// The chain up to the roots; `None` (`prefer`, `require` without roots): unchecked.
    chain: Option<Arc<WebPkiServerVerifier>>,
    /// Whether the certificate must also name the host (`verify-full`). WebPKI checks the
    /// name only once the chain has verified, so ignoring its name error keeps the chain's.
    name: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for CertificateCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.name => Ok(ServerCertVerified::assertion()),
            other => other,
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

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// tokio-postgres' side: [`Tls`] as its `MakeTlsConnect`, for the SQL sessions.
#[derive(Clone)]
pub struct SessionTls(pub Option<Tls>);

impl<S> tokio_postgres::tls::MakeTlsConnect<S> for SessionTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = SessionStream<S>;
    type TlsConnect = SessionTls;
    type Error = io::Error;

    fn make_tls_connect(&mut self, _host: &str) -> io::Result<SessionTls> {
        Ok(self.clone())
    }
}

impl<S> tokio_postgres::tls::TlsConnect<S> for SessionTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = SessionStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<SessionStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let tls = self.0.ok_or_else(|| io::Error::other("sslmode=disable"))?;
            tls.handshake(stream).await.map(SessionStream)
        })
    }
}

/// A SQL session's TLS stream, which tells tokio-postgres its channel binding.
pub struct SessionStream<S>(TlsStream<S>);

impl<S> tokio_postgres::tls::TlsStream for SessionStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn channel_binding(&self) -> tokio_postgres::tls::ChannelBinding {
        end_point_binding(&self.0).map_or_else(
            tokio_postgres::tls::ChannelBinding::none,
            tokio_postgres::tls::ChannelBinding::tls_server_end_point,
        )
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for SessionStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for SessionStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_headers_find_the_signature_algorithm_and_refuse_truncation() {
        // SEQUENCE { SEQUENCE { INTEGER 1 }, SEQUENCE { OID 1.2.840.10045.4.3.2 }, … }
        let mut der = vec![
            0x30, 0x11, 0x30, 0x03, 0x02, 0x01, 0x01, 0x30, 0x0a, 0x06, 0x08,
        ];
        der.extend_from_slice(SHA256_ECDSA);
        assert_eq!(signature_algorithm(&der), Some(SHA256_ECDSA));
        for cut in 0..der.len() {
            assert_eq!(signature_algorithm(&der[..cut]), None, "cut at {cut}");
        }
        // Long-form lengths: 0x81 0x11 is 17 as well.
        let mut long = vec![0x30, 0x81, 0x11];
        long.extend_from_slice(&der[2..]);
        assert_eq!(signature_algorithm(&long), Some(SHA256_ECDSA));
        assert_eq!(element(&[0x30, 0x80], 0x30), None, "indefinite length");
        assert_eq!(element(&[0x31, 0x00], 0x30), None, "another tag");
    }
}
