//! Which hosts a connector may reach. Without a configured list (`BUNKER_CONNECTOR_HOSTS`), any
//! public address; loopback, private, link-local and other non-public addresses only when listed.
//! With a list, only what it names. A host name is resolved once, here, and the connection goes
//! to the address checked (a second lookup could answer differently).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ipnet::IpNet;

/// One entry of the allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    /// A host name (lower case): whatever it resolves to.
    Name(String),
    /// An address or network.
    Net(IpNet),
}

/// The hosts connectors may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPolicy {
    listed: Option<Vec<Rule>>,
}

/// Why a host was not reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a host name or address.
    Malformed,
    /// The allow-list does not admit it.
    NotAllowed,
    /// The name did not resolve (or not in time).
    Unresolved,
}

impl Refusal {
    /// A message for the client (naming no host).
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Malformed => "dbhost is not a host name or address",
            Refusal::NotAllowed => "The connector's host is not allowed",
            Refusal::Unresolved => "The connector's host name did not resolve",
        }
    }
}

impl HostPolicy {
    /// Public addresses only (the default).
    pub fn public_only() -> HostPolicy {
        HostPolicy { listed: None }
    }

    /// A comma-separated list of host names, addresses and networks (`10.0.0.0/8`).
    pub fn parse(text: &str) -> Result<HostPolicy, String> {
        let mut rules = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let rule = if let Ok(net) = entry.parse::<IpNet>() {
                Rule::Net(net)
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                Rule::Net(IpNet::from(ip))
            } else if is_host_name(entry) {
                Rule::Name(entry.to_ascii_lowercase())
            } else {
                return Err(format!("BUNKER_CONNECTOR_HOSTS: {entry:?} is not a host name, address or network"));
            };
            rules.push(rule);
        }
        Ok(HostPolicy { listed: Some(rules) })
    }

    /// The address to connect to for `host`, if the policy admits it; a name is resolved within
    /// `within`.
    pub async fn admit(&self, host: &str, within: Duration) -> Result<IpAddr, Refusal> {
        let host = normalised(host);
        if let Ok(ip) = host.parse::<IpAddr>() {
            return if self.admits(&host, ip) { Ok(ip) } else { Err(Refusal::NotAllowed) };
        }
        if !is_host_name(&host) {
            return Err(Refusal::Malformed);
        }
        if let Some(rules) = &self.listed {
            // A name the list does not hold and no network could admit: refused without a lookup.
            let named = rules.iter().any(|rule| *rule == Rule::Name(host.clone()));
            if !named && !rules.iter().any(|rule| matches!(rule, Rule::Net(_))) {
                return Err(Refusal::NotAllowed);
            }
        }
        let lookup = tokio::net::lookup_host((host.as_str(), 0));
        let addresses: Vec<IpAddr> = match tokio::time::timeout(within, lookup).await {
            Ok(Ok(found)) => found.map(|addr| addr.ip()).collect(),
            _ => return Err(Refusal::Unresolved),
        };
        // Every address must be admitted, or a name with one public and one private address
        // would reach the private one on some connections.
        match addresses.first() {
            None => Err(Refusal::Unresolved),
            Some(_) if !addresses.iter().all(|ip| self.admits(&host, *ip)) => Err(Refusal::NotAllowed),
            Some(first) => Ok(*first),
        }
    }

    fn admits(&self, host: &str, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match &self.listed {
            None => is_public(ip),
            Some(rules) => rules.iter().any(|rule| match rule {
                Rule::Name(name) => name == host,
                Rule::Net(net) => net.contains(&ip),
            }),
        }
    }
}

/// A host as given: an address (IPv6 possibly in brackets) or a host name, any letter case.
fn normalised(host: &str) -> String {
    let host = host.trim();
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    host.to_ascii_lowercase()
}

/// Whether `host` is an address or a host name at all (what a connector may store).
pub fn well_formed(host: &str) -> bool {
    let host = normalised(host);
    host.parse::<IpAddr>().is_ok() || is_host_name(&host)
}

/// An IPv4 address mapped into IPv6 is judged as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Routable on the public internet: not loopback, private, link-local, shared (CGNAT),
/// unspecified, broadcast, multicast, documentation or unique-local.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 192 && b == 88 && ip.octets()[2] == 99)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    let embedded = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    match segments {
        // NAT64 (64:ff9b::/96) and IPv4-compatible (::/96) addresses reach the IPv4 address they
        // carry; 6to4 (2002::/16) the one in bits 16 to 48.
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] | [0, 0, 0, 0, 0, 0, high, low]
            if !ip.is_unspecified() && !ip.is_loopback() =>
        {
            is_public_v4(embedded(high, low))
        }
        [0x2002, high, low, ..] => is_public_v4(embedded(high, low)),
        [first, second, ..] => {
            !(ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                || (first == 0x2001 && second == 0x0db8)
                // Teredo, local-use NAT64, ORCHID and other special-purpose 2001::/23 blocks.
                || (first == 0x2001 && second < 0x0200)
                || (first == 0x64 && second == 0xff9b)
                || first == 0x0100
                || first == 0)
        }
    }
}

/// Letters, digits, dots and hyphens, at most 253 characters.
fn is_host_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && !text.starts_with(['.', '-'])
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Duration = Duration::from_secs(2);

    #[tokio::test]
    async fn without_a_list_only_public_addresses_pass() {
        let policy = HostPolicy::public_only();
        assert_eq!(policy.admit("8.8.8.8", NOW).await, Ok("8.8.8.8".parse().expect("test value")));
        for public in ["64:ff9b::808:808", "2002:808:808::1", "2606:4700::1111"] {
            assert!(policy.admit(public, NOW).await.is_ok(), "{public}");
        }
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.5",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "[::1]",
        ] {
            assert_eq!(policy.admit(private, NOW).await, Err(Refusal::NotAllowed), "{private}");
        }
        assert_eq!(policy.admit("localhost", NOW).await, Err(Refusal::NotAllowed));
        // Other spellings of loopback are names to the parser: the lookup's answer is judged.
        for spelled in ["2130706433", "0x7f.1", "localhost.", "LOCALHOST"] {
            assert!(policy.admit(spelled, NOW).await.is_err(), "{spelled}");
        }
    }

    #[tokio::test]
    async fn a_list_admits_what_it_names_and_nothing_else() {
        let policy = HostPolicy::parse("127.0.0.1, 10.0.0.0/8, db.internal").expect("test value");
        assert!(policy.admit("127.0.0.1", NOW).await.is_ok());
        assert!(policy.admit("10.9.9.9", NOW).await.is_ok());
        assert_eq!(policy.admit("192.168.1.1", NOW).await, Err(Refusal::NotAllowed));
        assert_eq!(policy.admit("8.8.8.8", NOW).await, Err(Refusal::NotAllowed));
        let names_only = HostPolicy::parse("db.internal").expect("test value");
        assert_eq!(names_only.admit("evil.example", NOW).await, Err(Refusal::NotAllowed));
    }

    #[tokio::test]
    async fn malformed_hosts_are_refused() {
        let policy = HostPolicy::public_only();
        for bad in ["", "a b", "host/path", "user@host", "-x", "a".repeat(300).as_str(), "x;DROP"] {
            assert_eq!(policy.admit(bad, NOW).await, Err(Refusal::Malformed), "{bad:?}");
        }
        assert!(HostPolicy::parse("10.0.0.0/8, not a host").is_err());
    }
}
