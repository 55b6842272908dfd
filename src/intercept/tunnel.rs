//! CONNECT: the agent asks for a tunnel to `host:port`. With MITM (the default) the proxy answers 200, terminates
//! TLS with a leaf certificate for the host signed by its CA, and serves the requests inside the tunnel through
//! the same phases as plain ones, as the caller who opened it. With `--no-mitm` it splices bytes blindly and
//! records nothing. Tunnels outlive the CONNECT's own connection, so the interceptor tracks them: at shutdown
//! an intercepted tunnel finishes the request in flight and closes, a blind one is given the drain period.

use super::destination::Leg;
use super::error::ProxyError;
use super::exchange::{self, ProxyBody, ProxyCaller};
use super::Interceptor;
use crate::listener::Watched;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::upgrade::Upgraded;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;

pub async fn connect(
    interceptor: Arc<Interceptor>,
    mut request: Request<Incoming>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let caller = exchange::identify_caller(&interceptor, &mut request, false).await?;
    let authority = request
        .uri()
        .authority()
        .filter(|authority| authority.port_u16().is_some())
        .map(|authority| authority.as_str().to_string())
        .ok_or_else(|| {
            ProxyError::downstream(
                StatusCode::BAD_REQUEST,
                "CONNECT needs host:port (authority-form)",
            )
        })?;
    let upgrade = hyper::upgrade::on(&mut request);
    let mitm = interceptor.ca.clone();
    let tunnels = interceptor.tunnels.clone();
    tunnels.spawn(async move {
        let upgraded = match upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(%error, source = "downstream", "CONNECT upgrade failed");
                return;
            }
        };
        match mitm {
            Some(_) => intercept(interceptor, upgraded, authority, caller).await,
            None => splice(interceptor, upgraded, authority).await,
        }
    });
    Ok(Response::new(ProxyBody::Right(
        http_body_util::Full::default(),
    )))
}

/// Terminates the agent's TLS and proxies every request inside the tunnel.
async fn intercept(
    interceptor: Arc<Interceptor>,
    upgraded: Upgraded,
    authority: String,
    caller: ProxyCaller,
) {
    let Some(ca) = interceptor.ca.clone() else {
        return;
    };
    let host = authority
        .rsplit_once(':')
        .map_or(authority.as_str(), |(host, _)| host);
    let config = match ca.server_config(host) {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(%error, host, source = "internal", "minting a leaf certificate failed");
            return;
        }
    };
    let limits = interceptor.options.connections;
    let agent = Watched::new(TokioIo::new(upgraded), limits.idle_timeout);
    let handshake = tokio_rustls::TlsAcceptor::from(config).accept(agent);
    let tls = match tokio::time::timeout(limits.tls_handshake_timeout, handshake).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::info!(%error, host, source = "downstream", "TLS handshake with the agent failed (does it trust the HandoffRail CA?)");
            return;
        }
        Err(_) => {
            tracing::info!(
                host,
                source = "downstream",
                "TLS handshake with the agent timed out"
            );
            return;
        }
    };
    let stopping = interceptor.stopping.clone();
    let service = service_fn(move |request: Request<Incoming>| {
        let interceptor = interceptor.clone();
        let leg = Leg::Tunnel(authority.clone());
        let caller = caller.clone();
        async move {
            Ok::<_, Infallible>(exchange::proxy(interceptor, request, leg, Some(caller)).await)
        }
    });
    let connection = limits.http1().serve_connection(TokioIo::new(tls), service);
    let mut connection = std::pin::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        () = stopping.cancelled() => {
            // Shutdown: the request in flight finishes, then the tunnel closes.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = ended {
        tracing::debug!(%error, source = "downstream", "tunnel connection ended");
    }
}

/// `--no-mitm`: bytes both ways, nothing recorded.
async fn splice(interceptor: Arc<Interceptor>, upgraded: Upgraded, authority: String) {
    let connect = tokio::net::TcpStream::connect(authority.as_str());
    let mut upstream =
        match tokio::time::timeout(interceptor.options.upstream_timeout, connect).await {
            Ok(Ok(upstream)) => upstream,
            Ok(Err(error)) => {
                tracing::info!(%error, authority, source = "upstream", "tunnel upstream refused");
                return;
            }
            Err(_) => {
                tracing::info!(authority, source = "upstream", "tunnel upstream timed out");
                return;
            }
        };
    // Bytes either way move through the agent's side, so its watch sees all traffic of the tunnel.
    let mut agent = Watched::new(
        TokioIo::new(upgraded),
        interceptor.options.connections.idle_timeout,
    );
    if let Err(error) = tokio::io::copy_bidirectional(&mut agent, &mut upstream).await {
        tracing::debug!(%error, authority, "tunnel ended");
    }
}
