//! The host a request was addressed to. The agent and IMDS answer only requests addressed to
//! their own link-local addresses, which a page in a browser cannot make (DNS rebinding); a
//! request that could be read two ways is refused.

use http::header::HOST;
use http::{HeaderMap, Uri};

/// The host of the request's one `Host` header, without port or IPv6 brackets. Refused: no
/// `Host`, several, an absolute-form target (`GET http://…`), user information, or a port that
/// is not a number up to 65535.
pub fn addressed_host(uri: &Uri, headers: &HeaderMap) -> Result<String, &'static str> {
    if uri.scheme().is_some() || uri.authority().is_some() {
        return Err("the request target is in absolute form");
    }
    let mut values = headers.get_all(HOST).iter();
    let value = match (values.next(), values.next()) {
        (Some(value), None) => value,
        (None, _) => return Err("the request has no Host header"),
        (Some(_), Some(_)) => return Err("the request has more than one Host header"),
    };
    let text = value
        .to_str()
        .map_err(|_| "the Host header is not visible ASCII")?;
    let authority: http::uri::Authority = text
        .parse()
        .map_err(|_| "the Host header is not host[:port]")?;
    if authority.as_str().contains('@') {
        return Err("the Host header carries user information");
    }
    let host = authority.host();
    // What follows the host must be nothing, or `:` and a port number (http's parser quietly
    // drops a port that does not fit in 16 bits).
    let rest = authority.as_str().get(host.len()..).unwrap_or_default();
    if let Some(port) = rest.strip_prefix(':') {
        if port.is_empty()
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u16>().is_err()
        {
            return Err("the Host header's port is not a port number");
        }
    } else if !rest.is_empty() {
        return Err("the Host header is not host[:port]");
    }
    // A bracketed host must be an IPv6 address: http's parser lets `[:]` or `[v1.x]` through.
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(inner) if inner.parse::<std::net::Ipv6Addr>().is_ok() => inner,
        Some(_) => return Err("the Host header's bracketed host is not an IPv6 address"),
        None => host,
    };
    Ok(host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn host(target: &str, values: &[&str]) -> Result<String, &'static str> {
        let uri: Uri = target.parse().unwrap_or_default();
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(
                HOST,
                HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("x")),
            );
        }
        addressed_host(&uri, &headers)
    }

    #[test]
    fn one_host_in_origin_form() {
        for (value, expected) in [
            ("169.254.170.23", "169.254.170.23"),
            ("169.254.170.23:80", "169.254.170.23"),
            ("[fd00:ec2::23]:80", "fd00:ec2::23"),
            ("[fd00:ec2::23]", "fd00:ec2::23"),
            ("LOCALHOST:4601", "localhost"),
            ("evil.example", "evil.example"),
        ] {
            assert_eq!(
                host("/v1/credentials", &[value]),
                Ok(expected.to_owned()),
                "{value}"
            );
        }
    }

    #[test]
    fn anything_ambiguous_is_refused() {
        assert!(host("/v1/credentials", &[]).is_err());
        assert!(host("/v1/credentials", &["169.254.170.23", "evil.example"]).is_err());
        assert!(host("/v1/credentials", &["169.254.170.23", "169.254.170.23"]).is_err());
        assert!(host("http://169.254.170.23/v1/credentials", &["169.254.170.23"]).is_err());
        assert!(host("/v1/credentials", &["169.254.170.23:99999"]).is_err());
        assert!(host("/v1/credentials", &["169.254.170.23:"]).is_err());
        assert!(host("/v1/credentials", &["169.254.170.23:8x"]).is_err());
        assert!(host("/v1/credentials", &["fd00:ec2::23"]).is_err());
        assert!(host("/v1/credentials", &["user@169.254.170.23"]).is_err());
        assert!(host("/v1/credentials", &["169.254.170.23/x"]).is_err());
        assert!(host("/v1/credentials", &["[:]"]).is_err());
        assert!(host("/v1/credentials", &["[:]:80"]).is_err());
        assert!(host("/v1/credentials", &["[v1.x]"]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_a_host_it_returns_has_no_port_or_brackets(
            value in "[a-zA-Z0-9.:\\[\\]@/ -]{0,40}",
            target in "(/v1/credentials|http://x/y|\\*)",
        ) {
            if let Ok(found) = host(&target, &[&value]) {
                proptest::prop_assert!(!found.contains(['[', ']', '/', '@', ' ']));
                proptest::prop_assert!(!found.contains(':') || found.matches(':').count() >= 2);
            }
        }
    }
}
