//! Callback URLs and which network addresses Herald may deliver to.
//!
//! `TargetUrl::parse` rejects what can never be a webhook target (other schemes, userinfo, fragments,
//! oversized URLs, literal private addresses). Names are checked again at delivery time, after DNS, by
//! [`AddressPolicy::allows`] on every resolved address: the check here alone cannot stop a name that
//! resolves to a private address.
//!
//! A stored URL is read back with [`TargetUrl::from_stored`], which does not depend on the runtime
//! address policy: a policy can change between saving and reading (and differs between `herald dev`
//! and Lambda), and a record must stay readable. The policy is applied again when sending.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Deserializer, Serialize};
use url::{Host, Url};

const MAX_URL_LEN: usize = 2048;

/// Why a callback URL was refused. Messages are written for the person who typed the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetUrlError {
    #[error("the URL is not valid: {0}")]
    Malformed(String),
    #[error("the URL must start with https://")]
    SchemeNotAllowed,
    #[error("the URL must start with https:// (or http:// while plain http is allowed)")]
    SchemeNotHttp,
    #[error("the URL must not contain a user name or password; use auth_token or headers instead")]
    UserInfo,
    #[error("the URL must not contain a #fragment")]
    Fragment,
    #[error("the URL is longer than 2048 characters")]
    TooLong,
    #[error("the URL points to a private, loopback or otherwise non-public address")]
    PrivateAddress,
}

/// Which targets are allowed. Production: https and public addresses only. `herald dev` and explicit
/// configuration may allow plain http and private/loopback addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddressPolicy {
    pub allow_http: bool,
    pub allow_private: bool,
}

impl AddressPolicy {
    pub const PRODUCTION: Self = Self {
        allow_http: false,
        allow_private: false,
    };
    pub const DEVELOPMENT: Self = Self {
        allow_http: true,
        allow_private: true,
    };

    /// Whether Herald may connect to `ip`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allow_private || is_public(ip)
    }
}

/// A parsed, checked callback URL.
#[derive(Clone, PartialEq, Eq)]
pub struct TargetUrl(Url);

impl TargetUrl {
    pub fn parse(input: &str, policy: AddressPolicy) -> Result<Self, TargetUrlError> {
        if input.len() > MAX_URL_LEN {
            return Err(TargetUrlError::TooLong);
        }
        let target = Self::parse_any_length(input, policy)?;
        // Parsing percent-encodes (`é` becomes `%C3%A9`): the URL kept and sent is the encoded one,
        // and it must fit too.
        if target.as_str().len() > MAX_URL_LEN {
            return Err(TargetUrlError::TooLong);
        }
        Ok(target)
    }

    fn parse_any_length(input: &str, policy: AddressPolicy) -> Result<Self, TargetUrlError> {
        let url = Url::parse(input.trim()).map_err(|e| TargetUrlError::Malformed(e.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" if policy.allow_http => {}
            _ if policy.allow_http => return Err(TargetUrlError::SchemeNotHttp),
            _ => return Err(TargetUrlError::SchemeNotAllowed),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(TargetUrlError::UserInfo);
        }
        if url.fragment().is_some() {
            return Err(TargetUrlError::Fragment);
        }
        match url.host() {
            None => return Err(TargetUrlError::Malformed("the URL has no host".into())),
            Some(Host::Ipv4(ip)) if !policy.allows(IpAddr::V4(ip)) => {
                return Err(TargetUrlError::PrivateAddress)
            }
            Some(Host::Ipv6(ip)) if !policy.allows(IpAddr::V6(ip)) => {
                return Err(TargetUrlError::PrivateAddress)
            }
            Some(Host::Domain(d)) if !policy.allow_private && is_local_name(d) => {
                return Err(TargetUrlError::PrivateAddress)
            }
            _ => {}
        }
        Ok(Self(url))
    }

    /// A URL read back from storage: checked when it was saved, so it is parsed under the most
    /// permissive policy (http and private addresses allowed; other schemes, userinfo and fragments
    /// still refused). Delivery checks it against the current policy before every send.
    /// Nor does it depend on the length rule: a URL saved before its encoded length was checked
    /// stays readable.
    pub fn from_stored(input: &str) -> Result<Self, TargetUrlError> {
        Self::parse_any_length(input, AddressPolicy::DEVELOPMENT)
    }

    /// The URL exactly as checked, so a sender need not parse it a second time.
    pub fn as_url(&self) -> &Url {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The literal IP of the host, when the URL names one.
    pub fn ip_literal(&self) -> Option<IpAddr> {
        match self.0.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        }
    }
}

impl fmt::Display for TargetUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl fmt::Debug for TargetUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TargetUrl({})", self.0)
    }
}

impl Serialize for TargetUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for TargetUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::from_stored(&s).map_err(serde::de::Error::custom)
    }
}

fn is_local_name(domain: &str) -> bool {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    d == "localhost"
        || d.ends_with(".localhost")
        || d.ends_with(".local")
        || d.ends_with(".internal")
        || d == "metadata.google.internal"
}

/// Whether `ip` is a globally routable unicast address. Everything else — private, loopback,
/// link-local (and so cloud metadata at 169.254.169.254), CGNAT, ULA, multicast, documentation,
/// benchmarking, reserved — is refused, including IPv4 hidden in IPv6 (mapped, compatible, NAT64,
/// 6to4, Teredo).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

const BLOCKED_V4: &[(u32, u8)] = &[
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network"
    (0x0A00_0000, 8),  // 10.0.0.0/8
    (0x6440_0000, 10), // 100.64.0.0/10 CGNAT
    (0x7F00_0000, 8),  // 127.0.0.0/8 loopback
    (0xA9FE_0000, 16), // 169.254.0.0/16 link-local, cloud metadata
    (0xAC10_0000, 12), // 172.16.0.0/12
    (0xC000_0000, 24), // 192.0.0.0/24 IETF protocol assignments
    (0xC000_0200, 24), // 192.0.2.0/24 TEST-NET-1
    (0xC058_6300, 24), // 192.88.99.0/24 6to4 relay anycast
    (0xC0A8_0000, 16), // 192.168.0.0/16
    (0xC612_0000, 15), // 198.18.0.0/15 benchmarking
    (0xC633_6400, 24), // 198.51.100.0/24 TEST-NET-2
    (0xCB00_7100, 24), // 203.0.113.0/24 TEST-NET-3
    (0xE000_0000, 4),  // 224.0.0.0/4 multicast
    (0xF000_0000, 4),  // 240.0.0.0/4 reserved, broadcast
];

fn is_public_v4(ip: Ipv4Addr) -> bool {
    !BLOCKED_V4
        .iter()
        .any(|&(net, len)| Ipv4Net::new(Ipv4Addr::from(net), len).is_ok_and(|n| n.contains(&ip)))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    // IPv4 inside IPv6: judge the embedded IPv4 address (and refuse the translation forms outright
    // when they hide a non-public address).
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    if seg[0..6] == [0, 0, 0, 0, 0, 0] {
        // ::/96 IPv4-compatible (deprecated), ::1 loopback, :: unspecified
        return false;
    }
    if seg[0] == 0x0064 && seg[1] == 0xff9b {
        // 64:ff9b::/96 well-known NAT64 and 64:ff9b:1::/48 local-use NAT64
        let v4 = Ipv4Addr::new(
            (seg[6] >> 8) as u8,
            seg[6] as u8,
            (seg[7] >> 8) as u8,
            seg[7] as u8,
        );
        return seg[2] != 1 && is_public_v4(v4);
    }
    if seg[0] == 0x2002 {
        // 6to4 embeds an IPv4 address in bits 16..48
        let v4 = Ipv4Addr::new(
            (seg[1] >> 8) as u8,
            seg[1] as u8,
            (seg[2] >> 8) as u8,
            seg[2] as u8,
        );
        return is_public_v4(v4);
    }
    const BLOCKED_V6: &[(u128, u8)] = &[
        (0x0100_0000_0000_0000_0000_0000_0000_0000, 64), // discard-only
        (0x2001_0000_0000_0000_0000_0000_0000_0000, 32), // Teredo
        (0x2001_0002_0000_0000_0000_0000_0000_0000, 48), // benchmarking
        (0x2001_0db8_0000_0000_0000_0000_0000_0000, 32), // documentation
        (0x2001_0010_0000_0000_0000_0000_0000_0000, 28), // ORCHID
        (0x3fff_0000_0000_0000_0000_0000_0000_0000, 20), // documentation (2024)
        (0x5f00_0000_0000_0000_0000_0000_0000_0000, 16), // SRv6 SIDs
        (0xfc00_0000_0000_0000_0000_0000_0000_0000, 7),  // unique local
        (0xfe80_0000_0000_0000_0000_0000_0000_0000, 10), // link-local
        (0xfec0_0000_0000_0000_0000_0000_0000_0000, 10), // site-local (deprecated)
        (0xff00_0000_0000_0000_0000_0000_0000_0000, 8),  // multicast
    ];
    // Only global unicast (2000::/3) is public at all.
    if seg[0] & 0xe000 != 0x2000 {
        return false;
    }
    !BLOCKED_V6
        .iter()
        .any(|&(net, len)| Ipv6Net::new(Ipv6Addr::from(net), len).is_ok_and(|n| n.contains(&ip)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROD: AddressPolicy = AddressPolicy::PRODUCTION;

    #[test]
    fn https_public_urls_are_accepted() {
        let u = TargetUrl::parse("https://hooks.example.com/in?x=1", PROD).unwrap();
        assert_eq!(u.as_str(), "https://hooks.example.com/in?x=1");
    }

    #[test]
    fn other_schemes_are_refused() {
        for bad in [
            "ftp://example.com/x",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "http://example.com/",
        ] {
            assert_eq!(
                TargetUrl::parse(bad, PROD),
                Err(TargetUrlError::SchemeNotAllowed),
                "{bad}"
            );
        }
        assert!(TargetUrl::parse("http://example.com/", AddressPolicy::DEVELOPMENT).is_ok());
        assert_eq!(
            TargetUrl::parse("ftp://example.com/", AddressPolicy::DEVELOPMENT),
            Err(TargetUrlError::SchemeNotHttp)
        );
    }

    #[test]
    fn userinfo_fragments_and_junk_are_refused() {
        assert_eq!(
            TargetUrl::parse("https://u:p@example.com/", PROD),
            Err(TargetUrlError::UserInfo)
        );
        assert_eq!(
            TargetUrl::parse("https://u@example.com/", PROD),
            Err(TargetUrlError::UserInfo)
        );
        assert_eq!(
            TargetUrl::parse("https://example.com/#x", PROD),
            Err(TargetUrlError::Fragment)
        );
        assert!(matches!(
            TargetUrl::parse("not a url", PROD),
            Err(TargetUrlError::Malformed(_))
        ));
        let long = format!("https://example.com/{}", "a".repeat(3000));
        assert_eq!(TargetUrl::parse(&long, PROD), Err(TargetUrlError::TooLong));
    }

    #[test]
    fn the_length_limit_holds_for_the_encoded_url_that_is_kept() {
        // 2,020 bytes typed, 6,020 once percent-encoded.
        let typed = format!("https://example.com/{}", "é".repeat(1000));
        assert!(typed.len() <= 2048);
        assert_eq!(TargetUrl::parse(&typed, PROD), Err(TargetUrlError::TooLong));
        let fits = format!("https://example.com/{}", "é".repeat(338));
        let kept = TargetUrl::parse(&fits, PROD).unwrap();
        assert!(kept.as_str().len() <= 2048);
        // What was kept before the rule stays readable.
        let encoded = format!("https://example.com/{}", "%C3%A9".repeat(1000));
        assert_eq!(TargetUrl::from_stored(&encoded).unwrap().as_str(), encoded);
    }

    #[test]
    fn private_literals_and_local_names_are_refused_in_production() {
        for bad in [
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://169.254.169.254/latest",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://localhost/",
            "https://a.localhost/",
            "https://0x7f000001/",
            "https://2130706433/",
            "https://[fd00::1]/",
            "https://100.64.0.1/",
        ] {
            assert_eq!(
                TargetUrl::parse(bad, PROD),
                Err(TargetUrlError::PrivateAddress),
                "{bad}"
            );
        }
        assert!(TargetUrl::parse("http://127.0.0.1:9/", AddressPolicy::DEVELOPMENT).is_ok());
    }

    #[test]
    fn stored_urls_read_back_whatever_the_policy_and_serialize_as_the_same_string() {
        // Saved by `herald dev` (http, loopback), read where production rules apply.
        let json = r#""http://127.0.0.1:9/hook?x=1""#;
        let url: TargetUrl = serde_json::from_str(json).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9/hook?x=1");
        assert_eq!(serde_json::to_string(&url).unwrap(), json);
        // Never a target under any policy: unreadable.
        assert!(serde_json::from_str::<TargetUrl>(r#""ftp://example.com/""#).is_err());
        assert!(TargetUrl::from_stored("https://u:p@example.com/").is_err());
    }

    #[test]
    fn address_classification() {
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ];
        for ip in public {
            assert!(is_public(ip.parse().unwrap()), "{ip} should be public");
        }
        let private = [
            "0.0.0.0",
            "10.0.0.1",
            "100.100.0.1",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "192.0.2.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::808:808",
            "2002:a00:1::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "fec0::1",
            "fd00:ec2::254",
        ];
        for ip in private {
            assert!(!is_public(ip.parse().unwrap()), "{ip} should not be public");
        }
    }
}
