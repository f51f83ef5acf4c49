//! Where a registry may send this client next: bearer realms, redirects and upload locations.
//!
//! A registry names URLs the client then requests: the token server of a `Bearer` challenge, a
//! redirect target, the `Location` of a blob upload. A hostile registry can name an internal
//! service (the cloud metadata endpoint at `169.254.169.254`, the controller's own loopback, a
//! pod on the private network) and make the controller fetch it, with the registry's credentials
//! or with the object's data. go-containerregistry's rules, followed here (its
//! `validateRealmURL`, `checkRedirectSSRF` and `nextLocation`):
//!
//! - an IP literal that is loopback, private (RFC 1918, `fc00::/7`), link-local or unspecified
//!   is refused unless it is the registry's own host; like it, host names are not resolved
//!   (DNS-based tricks are out of scope), but `localhost` counts as loopback;
//! - a bearer realm must be `https`, or `http` only when the registry itself was reached over
//!   plain HTTP.
//!
//! One deliberate relaxation: a registry that is itself internal may name internal addresses of
//! the same kind (a loopback registry a loopback token server, a registry on the private network
//! a private token server or blob store), as development and on-premises setups do; it gains
//! nothing it could not reach already. go-containerregistry only allows the registry's own host.

use std::net::IpAddr;

use url::Url;

/// The kinds of internal addresses, compared to let an internal registry name its own kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Internal {
    /// `127.0.0.0/8`, `::1`, `localhost`.
    Loopback,
    /// RFC 1918 and `fc00::/7`.
    Private,
    /// `169.254.0.0/16`, `fe80::/10`, link-local multicast.
    LinkLocal,
    /// `0.0.0.0`, `::`.
    Unspecified,
}

/// The internal kind of `host` (a URL host, IPv6 in brackets or not), `None` for a public IP
/// literal or any host name other than `localhost`.
pub(crate) fn internal(host: &str) -> Option<Internal> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.eq_ignore_ascii_case("localhost") || bare.to_ascii_lowercase().ends_with(".localhost") {
        return Some(Internal::Loopback);
    }
    let ip: IpAddr = bare.parse().ok()?;
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            if v4.is_loopback() {
                Some(Internal::Loopback)
            } else if v4.is_private() {
                Some(Internal::Private)
            } else if v4.is_link_local() || (v4.octets()[..3] == [224, 0, 0]) {
                Some(Internal::LinkLocal)
            } else if v4.is_unspecified() {
                Some(Internal::Unspecified)
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some(Internal::Loopback)
            } else if first & 0xfe00 == 0xfc00 {
                Some(Internal::Private)
            } else if first & 0xffc0 == 0xfe80 || first == 0xff02 {
                Some(Internal::LinkLocal)
            } else if v6.is_unspecified() {
                Some(Internal::Unspecified)
            } else {
                None
            }
        }
    }
}

/// Whether a request that started at `from` may go on to `to` (a redirect, an upload
/// `Location`): the same host name, or a host that is not internal (unless `from` is internal
/// of the same kind).
///
/// # Errors
///
/// The refusal, in go-containerregistry's words.
pub(crate) fn check_hop(from: &Url, to: &Url) -> Result<(), String> {
    let (from_host, to_host) = (from.host_str().unwrap_or(""), to.host_str().unwrap_or(""));
    if from_host.eq_ignore_ascii_case(to_host) {
        return Ok(());
    }
    match internal(to_host) {
        Some(kind) if internal(from_host) != Some(kind) => Err(format!(
            "SSRF protection: redirect from {from_host:?} to private/link-local host {to_host:?} denied"
        )),
        _ => Ok(()),
    }
}

/// Whether the bearer `realm` may receive the credentials of the registry at `registry`
/// (`scheme://host[:port]/`, the scheme the ping succeeded with).
///
/// # Errors
///
/// The refusal, in go-containerregistry's words (`realm scheme "http" not allowed for a secure
/// registry; use https`, `realm host "10.0.0.1" is a private or link-local address`).
pub(crate) fn check_realm(realm: &Url, registry: &Url) -> Result<(), String> {
    match realm.scheme() {
        "https" => {}
        "http" if registry.scheme() == "http" => {}
        "http" => {
            return Err(
                "realm scheme \"http\" not allowed for a secure registry; use https".to_string(),
            );
        }
        other => {
            return Err(format!(
                "realm scheme {other:?} not allowed; must be https (or http for insecure registries)"
            ));
        }
    }
    let host = realm.host_str().unwrap_or("");
    let registry_host = registry.host_str().unwrap_or("");
    if host.eq_ignore_ascii_case(registry_host)
        && realm.port_or_known_default() == registry.port_or_known_default()
    {
        return Ok(());
    }
    match internal(host) {
        Some(kind) if internal(registry_host) != Some(kind) => {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            Err(format!(
                "realm host {bare:?} is a private or link-local address"
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn internal_addresses_are_classified_as_go_does() {
        for (host, want) in [
            ("127.0.0.1", Some(Internal::Loopback)),
            ("127.8.9.10", Some(Internal::Loopback)),
            ("[::1]", Some(Internal::Loopback)),
            ("localhost", Some(Internal::Loopback)),
            ("10.1.2.3", Some(Internal::Private)),
            ("172.16.0.1", Some(Internal::Private)),
            ("192.168.1.1", Some(Internal::Private)),
            ("[fd00::2]", Some(Internal::Private)),
            ("169.254.169.254", Some(Internal::LinkLocal)),
            ("[fe80::1]", Some(Internal::LinkLocal)),
            ("224.0.0.251", Some(Internal::LinkLocal)),
            ("0.0.0.0", Some(Internal::Unspecified)),
            ("[::ffff:169.254.169.254]", Some(Internal::LinkLocal)),
            ("192.0.2.2", None),
            ("8.8.8.8", None),
            ("172.32.0.1", None),
            ("registry.example", None),
            ("10.example", None),
        ] {
            assert_eq!(internal(host), want, "{host}");
        }
    }

    #[test]
    fn realms_follow_go_containerregistrys_rules() {
        let https = url("https://registry.example/");
        let http = url("http://registry.example/");
        for (realm, registry, ok) in [
            ("https://auth.example/token", &https, true),
            ("http://auth.example/token", &https, false),
            ("http://auth.example/token", &http, true),
            ("ftp://auth.example/token", &http, false),
            ("https://169.254.169.254/latest/meta-data", &https, false),
            ("https://10.0.0.1/token", &https, false),
            ("https://127.0.0.1:8080/token", &https, false),
            ("https://localhost/token", &https, false),
            ("https://[::1]/token", &https, false),
            ("https://registry.example/token", &https, true),
        ] {
            assert_eq!(
                check_realm(&url(realm), registry).is_ok(),
                ok,
                "{realm} for {registry}"
            );
        }
        // The registry's own host and port, internal or not.
        let own = url("https://10.0.0.1:5000/");
        assert!(check_realm(&url("https://10.0.0.1:5000/token"), &own).is_ok());
        // An internal registry may name internal realms of its own kind only.
        let loopback = url("http://127.0.0.1:5000/");
        assert!(check_realm(&url("http://127.0.0.1:5001/token"), &loopback).is_ok());
        assert!(check_realm(&url("http://localhost:5001/token"), &loopback).is_ok());
        assert!(check_realm(&url("http://169.254.169.254/token"), &loopback).is_err());
        assert!(check_realm(&url("http://10.0.0.1/token"), &loopback).is_err());
        assert_eq!(
            check_realm(&url("https://10.0.0.1/token"), &https),
            Err(r#"realm host "10.0.0.1" is a private or link-local address"#.to_string())
        );
    }

    #[test]
    fn hops_stay_on_the_host_or_go_public() {
        let reg = url("https://registry.example/v2/a/blobs/x");
        assert!(check_hop(&reg, &url("https://registry.example:444/other")).is_ok());
        assert!(check_hop(&reg, &url("https://storage.example/blob?sig=1")).is_ok());
        assert!(check_hop(&reg, &url("http://169.254.169.254/latest")).is_err());
        assert!(check_hop(&reg, &url("http://127.0.0.1:9090/")).is_err());
        let local = url("http://127.0.0.1:5000/v2/");
        assert!(check_hop(&local, &url("http://127.0.0.1:6000/x")).is_ok());
        assert!(check_hop(&local, &url("http://10.0.0.1/x")).is_err());
    }
}
