//! TLS for every HTTPS connection obsctl opens: the sources' reqwest client and the load
//! generator's own hyper connections share one [`TlsConfig`], read and checked before any socket
//! opens, and one `rustls` client configuration made from it.
//!
//! Trust: the system's roots (rustls-native-certs), or Mozilla's (webpki-roots) on a machine
//! without any, plus every certificate of `--cacert FILE` (a private CA). `--insecure` skips
//! verification of the server's certificate (signatures are still checked, so the connection is
//! still encrypted, but anyone in the middle can pose as the server). `--cert FILE --key FILE`
//! present a client certificate to servers that require one (mutual TLS).
//!
//! The crypto provider is `ring`, chosen explicitly, so that no process-wide default is needed.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// A PEM file given to obsctl, and where it was named (a flag, or a key of obsctl.toml), so
/// that an error can point at both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemFile {
    /// The file.
    pub path: PathBuf,
    /// Where it was given: `--cacert`, `obsctl.toml [tls] cacert`, ...
    pub origin: String,
}

impl PemFile {
    /// `path`, as given by `origin`.
    pub fn new(path: impl Into<PathBuf>, origin: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            origin: origin.into(),
        }
    }
}

/// The TLS settings as given, before any file is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file of CA certificates to trust besides the system's (it may hold several).
    pub cacert: Option<PemFile>,
    /// PEM client certificate (chain) for servers that require one.
    pub cert: Option<PemFile>,
    /// PEM private key of the client certificate (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PemFile>,
    /// Do not verify the server's certificate.
    pub insecure: bool,
}

/// Why the TLS settings cannot be used. Every variant names the flag (or file key) and the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("{origin} {path}: cannot read the file: {error}")]
    Read {
        /// Where the file was named.
        origin: String,
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The file is not PEM of the kind expected, or a PEM block in it is malformed.
    #[error("{origin} {path}: {reason}")]
    Pem {
        /// Where the file was named.
        origin: String,
        /// The file.
        path: PathBuf,
        /// What is wrong, never quoting the file's content.
        reason: String,
    },
    /// Only one of the client certificate and its key was given.
    #[error(
        "{given} given without {missing}: a client certificate needs both --cert FILE and --key FILE"
    )]
    HalfIdentity {
        /// The one given.
        given: String,
        /// The one missing.
        missing: String,
    },
    /// rustls refused the settings (e.g. a key that does not match the certificate).
    #[error("{context}: {error}")]
    Rustls {
        /// What was being set up, naming the files.
        context: String,
        /// rustls's reason.
        error: rustls::Error,
    },
}

/// The client certificate and its key.
struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// Checked TLS settings: the files are read and parsed, the key matches the certificate.
/// Cheap to clone; the system's roots are loaded once per process, when first needed.
#[derive(Clone, Default)]
pub struct TlsConfig {
    extra_roots: Vec<CertificateDer<'static>>,
    identity: Option<Arc<Identity>>,
    insecure: bool,
    options: TlsOptions,
}

impl fmt::Debug for TlsConfig {
    /// Names the files, never prints key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = |file: &Option<PemFile>| file.as_ref().map(|f| f.path.display().to_string());
        f.debug_struct("TlsConfig")
            .field("cacert", &path(&self.options.cacert))
            .field("extra_roots", &self.extra_roots.len())
            .field("cert", &path(&self.options.cert))
            .field("key", &self.identity.as_ref().map(|_| "***"))
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl TlsConfig {
    /// Reads and checks the files of `options`; nothing is connected.
    pub fn load(options: &TlsOptions) -> Result<Self, TlsError> {
        let extra_roots = match &options.cacert {
            Some(file) => read_roots(file)?,
            None => Vec::new(),
        };
        let identity = match (&options.cert, &options.key) {
            (Some(cert), Some(key)) => Some(Arc::new(read_identity(cert, key)?)),
            (None, None) => None,
            (Some(cert), None) => return Err(half(cert, "--key FILE")),
            (None, Some(key)) => return Err(half(key, "--cert FILE")),
        };
        let config = Self {
            extra_roots,
            identity,
            insecure: options.insecure,
            options: options.clone(),
        };
        if config.identity.is_some() {
            // Builds the client side once with the identity: a key that does not fit fails here.
            config.client_config()?;
        }
        Ok(config)
    }

    /// Whether server certificates go unverified (`--insecure`).
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    /// The settings as given (file paths and origins), e.g. to configure another program alike.
    pub fn options(&self) -> &TlsOptions {
        &self.options
    }

    /// A rustls client configuration for these settings, offering HTTP/1.1 only (neither
    /// obsctl's load client nor its reqwest build speaks HTTP/2).
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let provider = provider();
        let rustls_error = |context: &str| {
            let context = context.to_owned();
            move |error| TlsError::Rustls { context, error }
        };
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(rustls_error("TLS protocol versions"))?;
        let builder = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
        } else {
            builder.with_root_certificates(self.roots())
        };
        let mut config = match &self.identity {
            Some(identity) => {
                let files = format!(
                    "--cert/--key {} {}",
                    display(&self.options.cert),
                    display(&self.options.key)
                );
                builder
                    .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
                    .map_err(rustls_error(&files))?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    fn roots(&self) -> Arc<RootCertStore> {
        if self.extra_roots.is_empty() {
            return Arc::clone(default_roots());
        }
        let mut roots = (**default_roots()).clone();
        // Each was accepted by a root store when the file was read.
        roots.add_parsable_certificates(self.extra_roots.iter().cloned());
        Arc::new(roots)
    }
}

fn display(file: &Option<PemFile>) -> String {
    file.as_ref()
        .map(|f| f.path.display().to_string())
        .unwrap_or_default()
}

fn half(given: &PemFile, missing: &str) -> TlsError {
    TlsError::HalfIdentity {
        given: format!("{} {}", given.origin, given.path.display()),
        missing: missing.to_owned(),
    }
}

/// The crypto provider every configuration uses (the test servers use it too): *ring*, which
/// builds with nothing but a C compiler. rustls 0.23.48 deprecates it for lacking post-quantum
/// key exchange; aws-lc-rs, which has it, needs a heavier native build on every machine and CI.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())))
}

/// The system's trusted roots, or Mozilla's when the system has none (a bare container).
fn default_roots() -> &'static Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if roots.is_empty() {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        Arc::new(roots)
    })
}

fn read(file: &PemFile) -> Result<Vec<u8>, TlsError> {
    std::fs::read(&file.path).map_err(|error| TlsError::Read {
        origin: file.origin.clone(),
        path: file.path.clone(),
        error,
    })
}

fn pem_error(file: &PemFile, reason: impl Into<String>) -> TlsError {
    TlsError::Pem {
        origin: file.origin.clone(),
        path: file.path.clone(),
        reason: reason.into(),
    }
}

/// What is wrong with a PEM file, without quoting its content (it may be a key).
fn pem_reason(error: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error;
    match error {
        Error::MissingSectionEnd { .. } => "malformed PEM: a block has no END line".to_owned(),
        Error::IllegalSectionStart { .. } => "malformed PEM: a malformed BEGIN line".to_owned(),
        Error::Base64Decode(_) => "malformed PEM: a block is not valid base64".to_owned(),
        Error::Io(e) => format!("cannot read the file: {e}"),
        Error::NoItemsFound => "no PEM block of the expected kind".to_owned(),
        Error::SectionTooLarge => "malformed PEM: a block is too large".to_owned(),
        _ => "malformed PEM".to_owned(),
    }
}

/// Every certificate of a PEM file; none, or one a root store refuses, is an error.
fn read_certificates(file: &PemFile) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(file)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(file, pem_reason(&e)))?;
    if certs.is_empty() {
        return Err(pem_error(
            file,
            "no certificate in it (expected PEM blocks `-----BEGIN CERTIFICATE-----`)",
        ));
    }
    Ok(certs)
}

fn read_roots(file: &PemFile) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = read_certificates(file)?;
    let mut store = RootCertStore::empty();
    for (index, cert) in certs.iter().enumerate() {
        store.add(cert.clone()).map_err(|e| {
            pem_error(
                file,
                format!(
                    "certificate {} is not a usable CA certificate: {e}",
                    index + 1
                ),
            )
        })?;
    }
    Ok(certs)
}

fn read_identity(cert: &PemFile, key: &PemFile) -> Result<Identity, TlsError> {
    let chain = read_certificates(cert)?;
    let bytes = read(key)?;
    let key_der = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => pem_error(
            key,
            "no private key in it (expected a PEM `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block)",
        ),
        other => pem_error(key, pem_reason(&other)),
    })?;
    Ok(Identity {
        chain,
        key: key_der,
    })
}

/// `--insecure`: accepts any server certificate, still checking the handshake's signatures.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl NoVerification {
    fn algorithms(&self) -> &WebPkiSupportedAlgorithms {
        &self.0.signature_verification_algorithms
    }
}

impl ServerCertVerifier for NoVerification {
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, self.algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, self.algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms().supported_schemes()
    }
}

/// The TLS failure inside `error`'s chain, said the way a user can act on it: what rustls
/// found, and which flag fixes it. `None` when the failure is not a TLS one.
pub fn describe(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let found = find_rustls(error, 0)?;
    Some(match hint(found) {
        Some(hint) => format!("{found}: {hint}"),
        None => found.to_string(),
    })
}

/// The first `rustls::Error` in the chain, looking inside `io::Error`s (whose `source()` skips
/// the error they wrap).
fn find_rustls<'a>(
    error: &'a (dyn std::error::Error + 'static),
    depth: usize,
) -> Option<&'a rustls::Error> {
    if depth > 16 {
        return None;
    }
    if let Some(found) = error.downcast_ref::<rustls::Error>() {
        return Some(found);
    }
    if let Some(inner) = error
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
        && let Some(found) = find_rustls(inner, depth + 1)
    {
        return Some(found);
    }
    find_rustls(error.source()?, depth + 1)
}

fn hint(error: &rustls::Error) -> Option<&'static str> {
    use rustls::{AlertDescription as Alert, CertificateError as Cert, Error};
    Some(match error {
        Error::InvalidCertificate(Cert::UnknownIssuer) => {
            "the server's certificate is not signed by a trusted CA: pass --cacert FILE with the CA that signed it (or --insecure to skip verification)"
        }
        Error::InvalidCertificate(Cert::NotValidForName | Cert::NotValidForNameContext { .. }) => {
            "the server's certificate does not name this host: use a host name it lists (or --insecure)"
        }
        Error::InvalidCertificate(
            Cert::Expired
            | Cert::ExpiredContext { .. }
            | Cert::NotValidYet
            | Cert::NotValidYetContext { .. },
        ) => {
            "the server's certificate is outside its validity dates (check it, and this machine's clock)"
        }
        Error::InvalidCertificate(_) => {
            "the server's certificate cannot be verified: pass --cacert FILE with its CA (or --insecure)"
        }
        Error::AlertReceived(Alert::CertificateRequired) => {
            "the server requires a client certificate: pass --cert FILE --key FILE"
        }
        Error::AlertReceived(
            Alert::BadCertificate
            | Alert::UnknownCA
            | Alert::CertificateUnknown
            | Alert::UnsupportedCertificate,
        ) => "the server refused the client certificate (--cert/--key), or needs one",
        Error::InvalidMessage(_) => "the server did not answer in TLS: is it an http:// endpoint?",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_without_a_certificate_is_named() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let key = dir.path().join("client.key");
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .expect("written");
        let error = TlsConfig::load(&TlsOptions {
            key: Some(PemFile::new(&key, "--key")),
            ..TlsOptions::default()
        })
        .expect_err("half an identity");
        assert!(error.to_string().starts_with("--key "), "{error}");
        assert!(error.to_string().contains("--cert FILE"), "{error}");
    }

    #[test]
    fn a_cacert_that_is_not_pem_is_named_with_its_flag() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate\n").expect("written");
        let error = TlsConfig::load(&TlsOptions {
            cacert: Some(PemFile::new(&ca, "--cacert")),
            ..TlsOptions::default()
        })
        .expect_err("no certificate");
        let text = error.to_string();
        assert!(
            text.starts_with(&format!("--cacert {}", ca.display())),
            "{text}"
        );
        assert!(text.contains("no certificate"), "{text}");
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let config = TlsConfig::default();
        let text = format!("{config:?}");
        assert!(text.contains("insecure: false"), "{text}");
    }
}
