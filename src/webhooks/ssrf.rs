//! Where a webhook may be sent (docs/api.md decision 2, §6.4): never to this machine, a private network or a
//! cloud metadata service. Checked at registration and again at every delivery, after resolution; the delivery
//! connects only to the addresses this check returned, so a name cannot resolve to a public address for the
//! check and to a private one for the connection.

use async_trait::async_trait;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Names refused whatever they resolve to.
const BLOCKED_NAMES: [&str; 4] = [
    "localhost",
    "metadata",
    "metadata.google.internal",
    "169.254.169.254",
];

/// The longest a name may take to resolve (a registration waits for it).
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a destination was refused; the text is the 422 `detail` (docs/api.md §6.4's reason strings).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Blocked {
    #[error("URL must have a hostname")]
    NoHost,
    #[error("Hostname '{0}' is blocked (internal/metadata endpoint)")]
    Name(String),
    #[error("IP address {0} is in a blocked range")]
    Address(IpAddr),
    #[error("Hostname '{0}' resolves to blocked IP {1}")]
    ResolvesTo(String, IpAddr),
    #[error("Hostname '{0}' does not resolve: {1}")]
    Unresolvable(String, String),
}

/// Resolves a name to addresses; the system resolver in production, a fixed table in tests.
#[async_trait]
pub trait Resolver: Send + Sync {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>>;
}

/// The operating system's resolver (`getaddrinfo`).
pub struct SystemResolver;

#[async_trait]
impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
}

/// The destination check, with the operator's named exceptions (`HANDOFFRAIL_ALLOWED_WEBHOOK_HOSTS`).
#[derive(Clone)]
pub struct Guard {
    allowed_hosts: Arc<HashSet<String>>,
    resolver: Arc<dyn Resolver>,
}

impl Guard {
    pub fn new(allowed_hosts: &[String], resolver: Arc<dyn Resolver>) -> Self {
        Self {
            allowed_hosts: Arc::new(
                allowed_hosts
                    .iter()
                    .map(|host| normalise(host))
                    .filter(|host| !host.is_empty())
                    .collect(),
            ),
            resolver,
        }
    }

    pub fn system(allowed_hosts: &[String]) -> Self {
        Self::new(allowed_hosts, Arc::new(SystemResolver))
    }

    /// The addresses `url` may be reached at, all of them checked; an allowed host is resolved but not
    /// checked. A name that does not resolve is refused (a delivery to it could not be checked).
    pub async fn destinations(&self, url: &url::Url) -> Result<Vec<SocketAddr>, Blocked> {
        let host = url.host_str().ok_or(Blocked::NoHost)?;
        self.check(host, url.port_or_known_default().unwrap_or(80))
            .await
    }

    /// [`Self::destinations`] of a host name or address literal.
    pub async fn check(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Blocked> {
        let name = normalise(host);
        if name.is_empty() {
            return Err(Blocked::NoHost);
        }
        let allowed = self.allowed_hosts.contains(&name);
        if let Ok(ip) = name.parse::<IpAddr>() {
            if !allowed && is_blocked(ip) {
                return Err(Blocked::Address(ip));
            }
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        if !allowed && BLOCKED_NAMES.contains(&name.as_str()) {
            return Err(Blocked::Name(name));
        }
        let addresses = tokio::time::timeout(RESOLVE_TIMEOUT, self.resolver.resolve(&name, port))
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("resolution timed out")))
            .map_err(|error| Blocked::Unresolvable(name.clone(), error.to_string()))?;
        if addresses.is_empty() {
            return Err(Blocked::Unresolvable(name, "no addresses".into()));
        }
        if !allowed {
            if let Some(bad) = addresses.iter().find(|address| is_blocked(address.ip())) {
                return Err(Blocked::ResolvesTo(name, bad.ip()));
            }
        }
        Ok(addresses)
    }
}

/// Lower case, without a trailing dot or IPv6 brackets, so `LOCALHOST.` and `[::1]` match their entries.
fn normalise(host: &str) -> String {
    host.trim()
        .trim_end_matches('.')
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

/// Whether `ip` is this machine, a private or shared network, link-local (metadata services) or unroutable.
pub fn is_blocked(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_blocked_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(mapped) => is_blocked_v4(mapped),
            None => is_blocked_v6(ip),
        },
    }
}

fn is_blocked_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24, and benchmarking, 198.18.0.0/15.
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240
}

fn is_blocked_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique local fc00::/7 and link-local fe80::/10.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        // IPv4-compatible (deprecated) ::a.b.c.d and NAT64 64:ff9b::/96 reach IPv4 addresses.
        || (ip.segments()[..6] == [0; 6])
        || (ip.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] && {
            let [.., c, d] = ip.segments();
            is_blocked_v4(Ipv4Addr::new((c >> 8) as u8, c as u8, (d >> 8) as u8, d as u8))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Table(Vec<IpAddr>);

    #[async_trait]
    impl Resolver for Table {
        async fn resolve(&self, _: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
            Ok(self.0.iter().map(|ip| SocketAddr::new(*ip, port)).collect())
        }
    }

    fn guard(allowed: &[&str], answers: &[&str]) -> Guard {
        let answers = answers.iter().map(|ip| ip.parse().unwrap()).collect();
        let allowed: Vec<String> = allowed.iter().map(|host| host.to_string()).collect();
        Guard::new(&allowed, Arc::new(Table(answers)))
    }

    async fn check(guard: &Guard, url: &str) -> Result<Vec<SocketAddr>, Blocked> {
        guard.destinations(&url::Url::parse(url).unwrap()).await
    }

    #[tokio::test]
    async fn internal_destinations_are_refused() {
        let guard = guard(&[], &["93.184.216.34"]);
        for url in [
            "http://127.0.0.1/",
            "http://127.9.9.9:8080/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://100.127.255.254/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::]/",
            "http://[64:ff9b::a00:1]/",
        ] {
            assert!(
                matches!(check(&guard, url).await, Err(Blocked::Address(_))),
                "{url} passed"
            );
        }
        for url in [
            "http://localhost/",
            "http://LOCALHOST./",
            "http://metadata.google.internal/",
            "http://metadata/",
        ] {
            assert!(
                matches!(check(&guard, url).await, Err(Blocked::Name(_))),
                "{url} passed"
            );
        }
    }

    #[tokio::test]
    async fn a_name_is_judged_by_every_address_it_resolves_to() {
        let rebinding = guard(&[], &["93.184.216.34", "127.0.0.1"]);
        assert_eq!(
            check(&rebinding, "https://hooks.example.com/x").await,
            Err(Blocked::ResolvesTo(
                "hooks.example.com".into(),
                "127.0.0.1".parse().unwrap()
            ))
        );
        let public = guard(&[], &["93.184.216.34"]);
        assert_eq!(
            check(&public, "https://hooks.example.com/x").await,
            Ok(vec!["93.184.216.34:443".parse().unwrap()])
        );
        assert_eq!(
            check(&public, "http://100.128.0.1:9000/").await,
            Ok(vec!["100.128.0.1:9000".parse().unwrap()])
        );
    }

    #[tokio::test]
    async fn named_exceptions_override_the_ranges() {
        let guard = guard(&["127.0.0.1", "Receiver.Internal"], &["10.0.0.7"]);
        assert_eq!(
            check(&guard, "http://127.0.0.1:3000/hook").await,
            Ok(vec!["127.0.0.1:3000".parse().unwrap()])
        );
        assert_eq!(
            check(&guard, "http://receiver.internal/hook").await,
            Ok(vec!["10.0.0.7:80".parse().unwrap()])
        );
        assert!(check(&guard, "http://10.0.0.7/").await.is_err());
    }

    #[tokio::test]
    async fn unresolvable_names_are_refused() {
        let guard = guard(&[], &[]);
        assert!(matches!(
            check(&guard, "https://nowhere.invalid/").await,
            Err(Blocked::Unresolvable(..))
        ));
    }
}
