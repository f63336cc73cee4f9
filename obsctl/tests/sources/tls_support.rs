//! A private PKI made in the test with rcgen (a CA, a server certificate for 127.0.0.1 and
//! localhost, a client certificate), written as PEM files, and an HTTPS server on 127.0.0.1:0
//! (hyper over tokio-rustls, optionally requiring a client certificate) that records what it
//! was asked and answers what the test's handler says; plus a way to run the obsctl binary with
//! a bounded time and none of the credential variables of the caller's environment.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::helpers::{Reply, Seen};

/// Environment variables obsctl reads as flag values: removed so the caller's cannot leak in.
pub const CREDENTIAL_VARS: [&str; 13] = [
    "METRICS_AUTH",
    "METRICS_TOKEN",
    "PROMETHEUS_AUTH",
    "PROMETHEUS_TOKEN",
    "PROMETHEUS_TENANT",
    "LOKI_AUTH",
    "LOKI_TOKEN",
    "LOKI_TENANT",
    "TEMPO_AUTH",
    "TEMPO_TOKEN",
    "TEMPO_TENANT",
    "GRAFANA_AUTH",
    "GRAFANA_TOKEN",
];

/// The test's PKI, as PEM files in a temporary directory.
pub struct Pki {
    /// Holds the files.
    pub dir: tempfile::TempDir,
    /// The CA that signed the server and client certificates.
    pub ca: PathBuf,
    /// The client certificate.
    pub client_cert: PathBuf,
    /// The client certificate's key.
    pub client_key: PathBuf,
    ca_der: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: Vec<u8>,
}

impl Pki {
    /// A fresh CA, a server certificate for 127.0.0.1 and localhost, a client certificate.
    pub fn new() -> Self {
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "obsctl test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).expect("the CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().expect("a server key");
        let mut server =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .expect("server params");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server.signed_by(&server_key, &issuer).expect("server cert");

        let client_key = KeyPair::generate().expect("a client key");
        let mut client = CertificateParams::new(Vec::<String>::new()).expect("client params");
        client
            .distinguished_name
            .push(DnType::CommonName, "obsctl test client");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client.signed_by(&client_key, &issuer).expect("client cert");

        let dir = tempfile::tempdir().expect("a temp dir");
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("a PEM file is written");
            path
        };
        Self {
            ca: write("ca.pem", &ca_cert.pem()),
            client_cert: write("client.pem", &client_cert.pem()),
            client_key: write("client.key", &client_key.serialize_pem()),
            ca_der: ca_cert.der().clone(),
            server_chain: vec![server_cert.der().clone()],
            server_key: server_key.serialize_der(),
            dir,
        }
    }

    fn server_config(&self, client_auth: bool) -> rustls::ServerConfig {
        let provider = obsctl::tls::provider();
        // A server that requires a client certificate speaks TLS 1.2 here: there its refusal is
        // part of the handshake, while TLS 1.3 sends it after the client already counts the
        // handshake done, and whether the client then reads the alert or only a closed
        // connection is a race (which made the refusal tests flaky).
        let versions: &[&rustls::SupportedProtocolVersion] = if client_auth {
            &[&rustls::version::TLS12]
        } else {
            rustls::DEFAULT_VERSIONS
        };
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .expect("TLS versions");
        let builder = if client_auth {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.ca_der.clone()).expect("the CA is a root");
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .expect("a client verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()));
        builder
            .with_single_cert(self.server_chain.clone(), key)
            .expect("the server certificate")
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// An HTTPS server on 127.0.0.1:0; stops when dropped.
pub struct HttpsServer {
    /// Where it listens.
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl HttpsServer {
    /// Serves `handler` over TLS with `pki`'s server certificate; with `client_auth`, only to
    /// clients that present a certificate `pki`'s CA signed.
    pub async fn start(
        pki: &Pki,
        client_auth: bool,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let acceptor = TlsAcceptor::from(Arc::new(pki.server_config(client_auth)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = Arc::new(handler);
        let task = tokio::spawn(accept_loop(listener, acceptor, handler, Arc::clone(&seen)));
        Self { addr, seen, task }
    }

    /// `https://127.0.0.1:PORT` (the certificate names 127.0.0.1).
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen lock").clone()
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    handler: Handler,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    while let Ok((stream, _)) = listener.accept().await {
        let (acceptor, handler, seen) = (acceptor.clone(), Arc::clone(&handler), Arc::clone(&seen));
        tokio::spawn(async move {
            // A refused handshake (no client certificate, an unknown CA) just ends this task.
            let Ok(stream) = acceptor.accept(stream).await else {
                return;
            };
            let service = service_fn(move |request: Request<Incoming>| {
                let (handler, seen) = (Arc::clone(&handler), Arc::clone(&seen));
                async move { Ok::<_, Infallible>(answer(&request, &handler, &seen).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    request: &Request<Incoming>,
    handler: &Handler,
    seen: &Mutex<Vec<Seen>>,
) -> Response<Full<Bytes>> {
    let uri = request.uri();
    let request = Seen {
        path: uri.path().to_owned(),
        query: url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect(),
        headers: request
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
    };
    seen.lock().expect("seen lock").push(request.clone());
    let reply = handler(&request);
    tokio::time::sleep(reply.delay).await;
    let mut response = Response::builder().status(reply.status);
    if let Some(content_type) = &reply.content_type {
        response = response.header("content-type", content_type);
    }
    response
        .body(Full::new(Bytes::from(reply.body)))
        .expect("a valid response")
}

/// Runs the obsctl binary in `dir` with `args` and `env`, within 30 s, without the caller's
/// credential variables.
pub async fn obsctl(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_obsctl"));
    command.args(args).current_dir(dir).kill_on_drop(true);
    for var in CREDENTIAL_VARS {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("obsctl ends within 30 s")
        .expect("obsctl starts")
}

/// stdout and stderr of a run, as text.
pub fn said(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
