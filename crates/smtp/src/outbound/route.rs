//! Where mail for a domain goes next: the hosts of its SMTP route (or the `ALL` route) in the
//! order given, otherwise its MX hosts by preference (RFC 5321 5.1), the domain's own address
//! when it has no MX, and nowhere when it publishes a null MX (RFC 7505).
//!
//! DNS goes through hickory-resolver with the system's `/etc/resolv.conf`, built on first use so
//! that a gateway delivering only by routes never needs DNS. Routes to address literals skip DNS
//! altogether.

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::LookupIpStrategy;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::RData;
use postern_config::DeliverySettings;
use tokio::sync::OnceCell;

/// The SMTP port of MX hosts.
const SMTP_PORT: u16 = 25;

/// Addresses tried for one delivery at most, over all hosts: enough for several MX hosts with
/// an IPv4 and an IPv6 address each, few enough that a broken destination does not hold a
/// connection slot for long.
const MAX_ADDRESSES: usize = 10;

/// One address to connect to, with the host name it was found under (the TLS server name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    pub name: String,
    pub address: SocketAddr,
}

/// What the domain's routing says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextHops {
    /// Addresses to try in order.
    Hosts(Vec<NextHop>),
    /// The domain accepts no mail (null MX): its recipients bounce.
    NullMx,
}

/// Why no next hop was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// DNS did not answer, or answered with a server failure: try again later.
    #[error("{0}")]
    Temporary(String),
    /// The domain does not exist: its recipients bounce.
    #[error("{0}")]
    NoSuchDomain(String),
}

/// The MX answer of a domain, ordered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxHosts {
    /// Exchange names, most preferred first.
    Hosts(Vec<String>),
    /// Only `MX 0 .`: the domain accepts no mail.
    Null,
}

/// The DNS resolver, made on first use from `/etc/resolv.conf`.
#[derive(Debug, Default)]
pub struct Dns {
    resolver: OnceCell<Result<TokioResolver, String>>,
}

impl Dns {
    async fn resolver(&self) -> Result<&TokioResolver, RouteError> {
        let made = self
            .resolver
            .get_or_init(|| async {
                let mut builder = TokioResolver::builder_tokio()
                    .map_err(|e| format!("cannot read the DNS configuration: {e}"))?;
                // An appliance's network is more often IPv4-only than IPv6-only.
                builder.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
                builder
                    .build()
                    .map_err(|e| format!("cannot start the DNS resolver: {e}"))
            })
            .await;
        made.as_ref().map_err(|e| RouteError::Temporary(e.clone()))
    }

    /// The MX hosts of `domain`; `Ok(None)` when it has no MX record (but exists).
    async fn mx(&self, domain: &str) -> Result<Option<MxHosts>, RouteError> {
        let resolver = self.resolver().await?;
        match resolver.mx_lookup(fqdn(domain)).await {
            Ok(lookup) => {
                let records = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
                        _ => None,
                    })
                    .collect::<Vec<_>>();
                Ok(order_mx(records))
            }
            Err(e) if e.is_nx_domain() => Err(RouteError::NoSuchDomain(format!(
                "DNS Hard Error looking up {domain} (MX):  NXDomain"
            ))),
            Err(e) if e.is_no_records_found() => Ok(None),
            Err(e) => Err(temporary(domain, "MX", &e)),
        }
    }

    /// The addresses of `host`; empty when it has none.
    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, RouteError> {
        let resolver = self.resolver().await?;
        match resolver.lookup_ip(fqdn(host)).await {
            Ok(ips) => Ok(ips.iter().collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(temporary(host, "A", &e)),
        }
    }
}

/// The next hops for mail to `domain` (lower case, or an address literal such as
/// `[192.0.2.1]`).
pub async fn next_hops(
    settings: &DeliverySettings,
    dns: &Dns,
    domain: &str,
) -> Result<NextHops, RouteError> {
    if let Some(hosts) = settings.route(domain) {
        let hosts = hosts.iter().map(|h| (h.host().to_owned(), h.port()));
        return resolve(dns, hosts, domain).await.map(NextHops::Hosts);
    }
    if let Some(ip) = address_literal(domain) {
        return Ok(NextHops::Hosts(vec![NextHop {
            name: ip.to_string(),
            address: SocketAddr::new(ip, SMTP_PORT),
        }]));
    }
    let hosts = match dns.mx(domain).await? {
        Some(MxHosts::Null) => return Ok(NextHops::NullMx),
        Some(MxHosts::Hosts(hosts)) => hosts,
        // No MX: the domain itself is the implicit MX (RFC 5321 5.1).
        None => vec![domain.to_owned()],
    };
    let hops = resolve(dns, hosts.into_iter().map(|h| (h, SMTP_PORT)), domain).await?;
    Ok(NextHops::Hosts(hops))
}

/// Addresses of each host in order. A host without an address is skipped; when no host has
/// one, the failure to blame is a temporary one.
async fn resolve(
    dns: &Dns,
    hosts: impl Iterator<Item = (String, u16)>,
    domain: &str,
) -> Result<Vec<NextHop>, RouteError> {
    let mut hops = Vec::new();
    let mut failure = None;
    for (name, port) in hosts {
        if hops.len() >= MAX_ADDRESSES {
            break;
        }
        let ips = match name.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => match dns.addresses(&name).await {
                Ok(ips) => ips,
                Err(e) => {
                    failure = Some(e);
                    continue;
                }
            },
        };
        for ip in ips.into_iter().take(MAX_ADDRESSES - hops.len()) {
            hops.push(NextHop {
                name: name.clone(),
                address: SocketAddr::new(ip, port),
            });
        }
    }
    if hops.is_empty() {
        return Err(failure.unwrap_or_else(|| {
            RouteError::Temporary(format!("no address found for the mail hosts of {domain}"))
        }));
    }
    Ok(hops)
}

/// Orders MX records by preference, keeping the order DNS gave among equals (resolvers rotate
/// them, which spreads the load). `MX 0 .` alone is a null MX; a `.` among real exchanges is
/// ignored. `None` when there is no record at all.
pub fn order_mx(mut records: Vec<(u16, String)>) -> Option<MxHosts> {
    if records.is_empty() {
        return None;
    }
    let is_root = |name: &str| name.is_empty() || name == ".";
    if records.iter().all(|(_, name)| is_root(name)) {
        return Some(MxHosts::Null);
    }
    records.retain(|(_, name)| !is_root(name));
    records.sort_by_key(|&(preference, _)| preference);
    let mut hosts: Vec<String> = Vec::with_capacity(records.len());
    for (_, name) in records {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if !hosts.contains(&name) {
            hosts.push(name);
        }
    }
    Some(MxHosts::Hosts(hosts))
}

/// The address of a domain written as an address literal: `[192.0.2.1]`, `[IPv6:2001:db8::1]`.
pub fn address_literal(domain: &str) -> Option<IpAddr> {
    let inner = domain.strip_prefix('[')?.strip_suffix(']')?;
    match inner.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => inner[5..]
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(IpAddr::V6),
        _ => inner.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4),
    }
}

/// `example.com.`: a name the resolver does not extend with the search domains.
fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}

fn temporary(name: &str, kind: &str, e: &NetError) -> RouteError {
    RouteError::Temporary(format!(
        "DNS Temporary Failure looking up {name} ({kind}): {e}"
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use postern_config::{DomainPattern, RouteHost};

    use super::*;

    fn mx(records: &[(u16, &str)]) -> Option<MxHosts> {
        order_mx(records.iter().map(|&(p, n)| (p, n.to_owned())).collect())
    }

    #[test]
    fn mx_hosts_are_tried_by_preference_equals_in_dns_order() {
        assert_eq!(
            mx(&[
                (20, "mx3.example.com."),
                (10, "MX1.example.com."),
                (20, "mx2.example.com."),
                (5, "mx0.example.com."),
                (10, "mx1.example.com."),
            ]),
            Some(MxHosts::Hosts(vec![
                "mx0.example.com".to_owned(),
                "mx1.example.com".to_owned(),
                "mx3.example.com".to_owned(),
                "mx2.example.com".to_owned(),
            ]))
        );
    }

    #[test]
    fn a_null_mx_accepts_no_mail() {
        assert_eq!(mx(&[(0, ".")]), Some(MxHosts::Null));
        assert_eq!(mx(&[(0, "")]), Some(MxHosts::Null));
        // A "." beside real exchanges is a mistake of the domain, not a null MX.
        assert_eq!(
            mx(&[(0, "."), (10, "mx.example.com.")]),
            Some(MxHosts::Hosts(vec!["mx.example.com".to_owned()]))
        );
        assert_eq!(mx(&[]), None);
    }

    #[test]
    fn address_literals() {
        assert_eq!(
            address_literal("[192.0.2.1]"),
            Some("192.0.2.1".parse().unwrap())
        );
        assert_eq!(
            address_literal("[IPv6:2001:db8::1]"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(address_literal("example.com"), None);
        assert_eq!(address_literal("[2001:db8::1]"), None);
        assert_eq!(address_literal("[example.com]"), None);
    }

    #[tokio::test]
    async fn routes_to_addresses_need_no_dns() {
        let settings = DeliverySettings {
            routes: BTreeMap::from([
                (
                    DomainPattern::new("example.test").unwrap(),
                    vec![
                        RouteHost::new("127.0.0.1:2526").unwrap(),
                        RouteHost::new("[::1]:2527").unwrap(),
                    ],
                ),
                (
                    DomainPattern::new("ALL").unwrap(),
                    vec![RouteHost::new("127.0.0.2").unwrap()],
                ),
            ]),
            ..DeliverySettings::factory()
        };
        // A resolver that was never made: any lookup would fail the test by needing it.
        let dns = Dns::default();
        assert_eq!(
            next_hops(&settings, &dns, "example.test").await,
            Ok(NextHops::Hosts(vec![
                NextHop {
                    name: "127.0.0.1".to_owned(),
                    address: "127.0.0.1:2526".parse().unwrap(),
                },
                NextHop {
                    name: "::1".to_owned(),
                    address: "[::1]:2527".parse().unwrap(),
                },
            ]))
        );
        assert_eq!(
            next_hops(&settings, &dns, "other.test").await,
            Ok(NextHops::Hosts(vec![NextHop {
                name: "127.0.0.2".to_owned(),
                address: "127.0.0.2:25".parse().unwrap(),
            }]))
        );
        assert!(dns.resolver.get().is_none());
        let direct = DeliverySettings::factory();
        assert_eq!(
            next_hops(&direct, &dns, "[127.0.0.3]").await,
            Ok(NextHops::Hosts(vec![NextHop {
                name: "127.0.0.3".to_owned(),
                address: "127.0.0.3:25".parse().unwrap(),
            }]))
        );
        assert!(dns.resolver.get().is_none());
    }
}
