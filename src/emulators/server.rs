//! A small HTTP or HTTPS server on 127.0.0.1 for an emulator's axum router. HTTPS uses a fresh
//! self-signed certificate issued to a name that is not the address, like a router's.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A running emulator endpoint; stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    pub tls: bool,
    /// DER of the HTTPS certificate, so tests can pin it.
    pub certificate: Option<Vec<u8>>,
    stop: CancellationToken,
}

impl Server {
    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }

    /// Stops accepting connections; a stopped router is "down" until served again.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A self-signed server certificate, kept so that an emulator restarted on the same port
/// presents the same certificate (tests pin it).
#[derive(Clone)]
pub struct TlsIdentity {
    acceptor: tokio_rustls::TlsAcceptor,
    pub certificate: Vec<u8>,
}

impl TlsIdentity {
    pub fn self_signed() -> std::io::Result<Self> {
        let (acceptor, certificate) = self_signed_acceptor().map_err(std::io::Error::other)?;
        Ok(Self { acceptor, certificate })
    }
}

/// Serves `router` on 127.0.0.1:`port` (0 = any free port), over HTTPS with a fresh
/// self-signed certificate when `tls`.
pub async fn serve(router: axum::Router, port: u16, tls: bool) -> std::io::Result<Server> {
    let identity = if tls { Some(TlsIdentity::self_signed()?) } else { None };
    serve_with(router, port, identity).await
}

/// [`serve`] with a given certificate.
pub async fn serve_with(router: axum::Router, port: u16, identity: Option<TlsIdentity>) -> std::io::Result<Server> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    let tls = identity.is_some();
    let (acceptor, certificate) = match identity {
        Some(id) => (Some(id.acceptor), Some(id.certificate)),
        None => (None, None),
    };
    let token = stop.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                _ = token.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(_) => continue,
                },
            };
            let service = TowerToHyperService::new(router.clone());
            let acceptor = acceptor.clone();
            let token = token.clone();
            tokio::spawn(async move {
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let serve = async {
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(tls) = acceptor.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = token.cancelled() => {}
                }
            });
        }
    });
    Ok(Server {
        addr,
        tls,
        certificate,
        stop,
    })
}

fn self_signed_acceptor() -> Result<(tokio_rustls::TlsAcceptor, Vec<u8>), Box<dyn std::error::Error + Send + Sync>> {
    let key = rcgen::KeyPair::generate()?;
    let params = rcgen::CertificateParams::new(vec!["router.asus.com".to_owned()])?;
    let cert = params.self_signed(&key)?;
    let der = cert.der().to_vec();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| e.to_string())?,
        )?;
    Ok((tokio_rustls::TlsAcceptor::from(Arc::new(config)), der))
}
