//! TLS 1.3 on every connection, through rustls on the ring provider, without tonic's
//! own TLS: the server's certificate and the CA it checks client certificates against
//! change at run time (a peer has neither until it creates or joins a cluster), and a
//! joining peer must pin the CA by fingerprint. So the server takes connections from
//! [`incoming`] (a handshake per connection, off the accept loop, with the client
//! certificate's peer id in [`ConnInfo`]) and clients dial through a [`Dialer`].
//!
//! Servers ask for a client certificate but do not require one: peers show theirs,
//! users authenticate with a bearer credential instead (see `access`), and joining
//! peers with their join token. A client without TLS gets nothing but a failed
//! handshake.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tonic::codegen::http::Uri;
use tonic::transport::server::Connected;
use tracing::debug;

use super::pki::{fingerprint, peer_of, PEER_SERVER_NAME};
use monk_statemachine::PeerId;

/// Longest a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the gRPC server to take them.
const ACCEPTED_QUEUE_MAX: usize = 64;
/// The ALPN protocol every connection speaks.
const ALPN_H2: &[u8] = b"h2";

/// A TLS set-up failed (a certificate or key that does not load).
#[derive(Debug, thiserror::Error)]
#[error("TLS: {0}")]
pub struct TlsError(pub String);

fn tls_error(e: impl fmt::Display) -> TlsError {
    TlsError(e.to_string())
}

/// The one crypto provider: ring.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain and its key, ready to present.
pub fn certified_key(chain_pem: &[&str], key_pem: &str) -> Result<Arc<CertifiedKey>, TlsError> {
    let mut chain = Vec::new();
    for pem in chain_pem {
        chain.push(CertificateDer::from_pem_slice(pem.as_bytes()).map_err(tls_error)?);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(tls_error)?;
    let key = rustls::crypto::ring::sign::any_supported_type(&key).map_err(tls_error)?;
    Ok(Arc::new(CertifiedKey::new(chain, key)))
}

/// The handshake-signature methods every verifier here shares: checked with the
/// provider's algorithms (`self.provider`), whatever the verifier decides about the
/// certificate itself.
macro_rules! handshake_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    };
}

/// What the server shows and whom it trusts, swapped when the peer creates or joins a
/// cluster (see `super::Trust`).
pub trait ServerMaterial: Send + Sync + fmt::Debug {
    /// The chain and key to present now.
    fn current_key(&self) -> Option<Arc<CertifiedKey>>;
    /// The verifier of client certificates now (`None`: no cluster, no CA yet).
    fn client_verifier(&self) -> Option<Arc<dyn ClientCertVerifier>>;
}

#[derive(Debug)]
struct Resolver(Arc<dyn ServerMaterial>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.current_key()
    }
}

/// Checks client certificates against the cluster CA of the moment; a client without
/// one passes here and is judged by its credential.
#[derive(Debug)]
struct ClientVerifier {
    material: Arc<dyn ServerMaterial>,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self.material.client_verifier() {
            Some(verifier) => verifier.verify_client_cert(end_entity, intermediates, now),
            None => Err(rustls::Error::General(
                "this peer has no cluster yet, so it trusts no peer certificate".into(),
            )),
        }
    }

    handshake_signatures!();
}

/// A verifier of client certificates issued by the CA `ca_der`.
pub fn ca_client_verifier(
    ca_der: &CertificateDer<'static>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.add(ca_der.clone()).map_err(tls_error)?;
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .allow_unauthenticated()
        .build()
        .map_err(tls_error)
}

/// The server side: TLS 1.3 only, h2, certificate and client CA from `material`.
pub fn server_config(material: Arc<dyn ServerMaterial>) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let mut config = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .with_client_cert_verifier(Arc::new(ClientVerifier {
            material: material.clone(),
            provider,
        }))
        .with_cert_resolver(Arc::new(Resolver(material)));
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// Who is on the other end of a server connection, as the handshake established it.
#[derive(Clone, Debug, Default)]
pub struct ConnInfo {
    pub remote: Option<SocketAddr>,
    /// This end's address of the connection.
    pub local: Option<SocketAddr>,
    /// The member named by a client certificate the cluster CA issued.
    pub peer: Option<PeerId>,
    /// The uid of a caller on the peer's Unix socket (`socket.rs`); `None` on TCP.
    pub socket_uid: Option<u32>,
}

/// One accepted connection and who is on the other end: a handshaken TLS stream
/// ([`TlsConn`]), or a stream on the peer's Unix socket (`socket.rs`).
pub struct Conn<S> {
    pub(crate) stream: S,
    pub(crate) info: ConnInfo,
}

/// One accepted, handshaken TLS connection.
pub type TlsConn = Conn<tokio_rustls::server::TlsStream<TcpStream>>;

impl ConnInfo {
    /// Whether the caller is on this machine: it came over loopback, or from the very
    /// address it connected to (`monk --addr 10.0.0.5:44001` run on 10.0.0.5).
    pub fn from_this_machine(&self) -> bool {
        match (self.remote, self.local) {
            (Some(remote), _) if remote.ip().is_loopback() => true,
            (Some(remote), Some(local)) => remote.ip() == local.ip(),
            _ => false,
        }
    }
}

impl<S: Send + Sync + 'static> Connected for Conn<S> {
    type ConnectInfo = ConnInfo;
    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Conn<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Conn<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Connections accepted on `listener` and handshaken with `config`, each handshake in
/// its own task (bounded by [`HANDSHAKE_TIMEOUT`]) so a slow or hostile client holds
/// up no one. Ends, closing the listener, when the receiver is dropped.
pub fn incoming(
    listener: TcpListener,
    config: Arc<ServerConfig>,
) -> tokio_stream::wrappers::ReceiverStream<Result<TlsConn, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(ACCEPTED_QUEUE_MAX);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let (tcp, remote) = tokio::select! {
                _ = tx.closed() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        debug!("accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let local = tcp.local_addr().ok();
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
                let stream = match handshake.await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => return debug!(%remote, "TLS handshake failed: {e}"),
                    Err(_) => return debug!(%remote, "TLS handshake timed out"),
                };
                let peer = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(peer_of);
                let info = ConnInfo {
                    socket_uid: None,
                    remote: Some(remote),
                    local,
                    peer,
                };
                let _ = tx.send(Ok(TlsConn { stream, info })).await;
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// How a client reaches peers: the TLS client configuration (whom it trusts, which
/// certificate it shows) and the bearer credential it sends, if any.
#[derive(Clone)]
pub struct Dialer {
    config: Arc<ClientConfig>,
    credential: Option<String>,
}

impl fmt::Debug for Dialer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dialer")
            .field(
                "credential",
                &self.credential.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

fn client_builder() -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>, TlsError>
{
    ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)
}

/// A root store holding only the CA `ca_pem`.
fn roots(ca_pem: &str) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).map_err(tls_error)?)
        .map_err(tls_error)?;
    Ok(roots)
}

fn finish(mut config: ClientConfig, credential: Option<String>) -> Dialer {
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Dialer {
        config: Arc::new(config),
        credential,
    }
}

impl Dialer {
    /// A user (or a peer without a certificate yet) that trusts the CA `ca_pem` and
    /// authenticates with `credential` (none: anonymous).
    pub fn trusting(ca_pem: &str, credential: Option<String>) -> Result<Dialer, TlsError> {
        let config = client_builder()?
            .with_root_certificates(roots(ca_pem)?)
            .with_no_client_auth();
        Ok(finish(config, credential))
    }

    /// A member: trusts the CA and shows its own certificate chain.
    pub fn member(ca_pem: &str, key: Arc<CertifiedKey>) -> Result<Dialer, TlsError> {
        let config = client_builder()?
            .with_root_certificates(roots(ca_pem)?)
            .with_client_cert_resolver(Arc::new(AlwaysKey(key)));
        Ok(finish(config, None))
    }

    /// A joining peer: trusts a server only if its chain carries a CA certificate with
    /// SHA-256 `ca_fingerprint` (from the join token) and the server's certificate was
    /// issued by it. No trust on first use.
    pub fn pinned(ca_fingerprint: &str) -> Result<Dialer, TlsError> {
        let config = client_builder()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedCa {
                fingerprint: ca_fingerprint.to_ascii_lowercase(),
                provider: provider(),
            }))
            .with_no_client_auth();
        Ok(finish(config, None))
    }

    /// Verifies nothing about the server: only for the first contact with a peer that
    /// has no cluster yet (`monk cluster new`, `monk cluster join` on the local peer),
    /// when there is no CA to check against; the server only allows those calls from
    /// its own machine.
    pub fn unverified(credential: Option<String>) -> Result<Dialer, TlsError> {
        let config = client_builder()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer {
                provider: provider(),
            }))
            .with_no_client_auth();
        Ok(finish(config, credential))
    }

    /// The bearer credential sent with every request.
    pub fn credential(&self) -> Option<&str> {
        self.credential.as_deref()
    }

    /// A channel to `address` (`host:port`), connected now.
    pub async fn channel(
        &self,
        address: &str,
        timeout: Duration,
    ) -> Result<tonic::transport::Channel, String> {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| format!("bad address {address}: {e}"))?
            .connect_timeout(timeout);
        endpoint
            .connect_with_connector(Connector {
                config: self.config.clone(),
            })
            .await
            .map_err(|e| {
                let mut message = format!("cannot connect to {address}: {e}");
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    message.push_str(&format!(": {s}"));
                    source = s.source();
                }
                message
            })
    }
}

#[derive(Debug)]
struct AlwaysKey(Arc<CertifiedKey>);

impl rustls::client::ResolvesClientCert for AlwaysKey {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

/// Opens TCP to the URI's host and port and runs the TLS handshake, naming the server
/// [`PEER_SERVER_NAME`] whatever its address.
#[derive(Clone)]
struct Connector {
    config: Arc<ClientConfig>,
}

type Connecting = Pin<
    Box<
        dyn Future<
                Output = Result<
                    hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<TcpStream>>,
                    std::io::Error,
                >,
            > + Send,
    >,
>;

impl tower::Service<Uri> for Connector {
    type Response = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Connecting {
        let config = self.config.clone();
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or_else(|| std::io::Error::other(format!("no host in {uri}")))?;
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let port = uri
                .port_u16()
                .ok_or_else(|| std::io::Error::other(format!("no port in {uri}")))?;
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let name = ServerName::try_from(PEER_SERVER_NAME)
                .map_err(std::io::Error::other)?
                .to_owned();
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            Ok(hyper_util::rt::TokioIo::new(tls))
        })
    }
}

/// Accepts a server whose chain holds the pinned CA and was issued by it.
#[derive(Debug)]
struct PinnedCa {
    fingerprint: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates
            .iter()
            .find(|c| fingerprint(c) == self.fingerprint)
            .ok_or_else(|| {
                rustls::Error::General(format!(
                    "the peer's certificate is not from the cluster CA the join token names ({}…)",
                    &self.fingerprint[..self.fingerprint.len().min(16)]
                ))
            })?;
        let mut roots = RootCertStore::empty();
        roots
            .add(ca.clone().into_owned())
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            self.provider.clone(),
        )
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
        verifier.verify_server_cert(end_entity, &[], server_name, ocsp_response, now)
    }

    handshake_signatures!();
}

/// Accepts any server certificate (still checking the handshake signature).
#[derive(Debug)]
struct AnyServer {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AnyServer {
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

    handshake_signatures!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_is_loopback_or_the_address_called() {
        let info = |remote: &str, local: &str| ConnInfo {
            socket_uid: None,
            remote: Some(remote.parse().unwrap()),
            local: Some(local.parse().unwrap()),
            peer: None,
        };
        assert!(info("127.0.0.1:5000", "127.0.0.1:44001").from_this_machine());
        assert!(info("[::1]:5000", "[::1]:44001").from_this_machine());
        assert!(info("10.0.0.5:5000", "10.0.0.5:44001").from_this_machine());
        assert!(!info("10.0.0.6:5000", "10.0.0.5:44001").from_this_machine());
        assert!(!ConnInfo::default().from_this_machine());
    }
}
