//! A token issuer's URL in one canonical form, so that one issuer cannot be registered or reached
//! under several spellings (`HTTPS://Host:443//id/x/` is `https://host/id/x`).

use std::fmt;
use std::str::FromStr;

use crate::TypesError;

/// The longest issuer URL accepted (IAM's limit on an OIDC provider URL).
pub const MAX_ISSUER_URL: usize = 255;

/// An `http(s)://host[:port][/path]` issuer URL: scheme and host in lower case, no default
/// port, no empty path segment and no trailing `/`. The path keeps its case. User information,
/// a query, a fragment, `.` or `..` segments, percent-escapes, backslashes and whitespace are
/// refused rather than interpreted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IssuerUrl {
    https: bool,
    /// `host[:port]/path`: how IAM names the provider (its ARN's resource and the condition
    /// keys' prefix).
    key: String,
}

fn invalid(value: &str, reason: &'static str) -> TypesError {
    TypesError::InvalidIssuerUrl {
        value: value.chars().take(300).collect(),
        reason,
    }
}

impl FromStr for IssuerUrl {
    type Err = TypesError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() > MAX_ISSUER_URL {
            return Err(invalid(text, "longer than 255 characters"));
        }
        if !text.is_ascii() || text.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(invalid(text, "only visible ASCII is allowed"));
        }
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| invalid(text, "must start with https://"))?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => return Err(invalid(text, "the scheme must be https or http")),
        };
        if rest.contains(['?', '#', '@', '\\', '%']) {
            return Err(invalid(
                text,
                "no user information, query, fragment, backslash or percent-escape",
            ));
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let authority = canonical_authority(authority, https)
            .ok_or_else(|| invalid(text, "the host[:port] is not valid"))?;
        let mut key = authority;
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            if segment == "." || segment == ".." {
                return Err(invalid(text, "no . or .. path segments"));
            }
            key.push('/');
            key.push_str(segment);
        }
        Ok(Self { https, key })
    }
}

/// `host[:port]` in lower case without the scheme's default port; `None` if malformed.
fn canonical_authority(authority: &str, https: bool) -> Option<String> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (inside, after) = v6.split_once(']')?;
        inside.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (format!("[{}]", inside.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        let valid_host = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
            && !host.starts_with('.')
            && !host.contains("..");
        if !valid_host {
            return None;
        }
        (host.trim_end_matches('.').to_ascii_lowercase(), port)
    };
    let default = if https { 443 } else { 80 };
    match port {
        None => Some(host),
        Some(port) => {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let number: u16 = port.parse().ok()?;
            if number == 0 {
                None
            } else if number == default {
                Some(host)
            } else {
                Some(format!("{host}:{number}"))
            }
        }
    }
}

impl IssuerUrl {
    /// `host[:port]/path`, without the scheme: how IAM names the provider.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether the scheme is `https`.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// The host, without port (IPv6 in brackets).
    pub fn host(&self) -> &str {
        let authority = self.key.split('/').next().unwrap_or_default();
        match authority.find(']') {
            Some(end) if authority.starts_with('[') => authority.get(..=end).unwrap_or(authority),
            _ => authority.split(':').next().unwrap_or(authority),
        }
    }

    /// `scheme://host[:port]`: the origin documents of this issuer must be served from.
    pub fn origin(&self) -> String {
        let authority = self.key.split('/').next().unwrap_or_default();
        format!("{}://{authority}", self.scheme())
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }
}

impl fmt::Display for IssuerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme(), self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(text: &str) -> String {
        text.parse::<IssuerUrl>()
            .map(|u| u.to_string())
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn spellings_of_one_issuer_are_one_url() {
        let expected = "https://oidc.example.com/id/ABC";
        for spelling in [
            "https://oidc.example.com/id/ABC",
            "HTTPS://OIDC.Example.COM/id/ABC",
            "https://oidc.example.com:443/id/ABC",
            "https://oidc.example.com//id//ABC",
            "https://oidc.example.com/id/ABC/",
            "https://oidc.example.com/id/ABC//",
            "https://oidc.example.com./id/ABC",
        ] {
            assert_eq!(canonical(spelling), expected, "{spelling}");
        }
        // The path keeps its case; another port is another issuer.
        assert_eq!(
            canonical("https://oidc.example.com/id/abc"),
            "https://oidc.example.com/id/abc"
        );
        assert_eq!(
            canonical("https://oidc.example.com:8443/id/ABC"),
            "https://oidc.example.com:8443/id/ABC"
        );
        assert_eq!(canonical("http://127.0.0.1:80/x"), "http://127.0.0.1/x");
        assert_eq!(
            canonical("http://[::1]:4599/oidc"),
            "http://[::1]:4599/oidc"
        );
        assert_eq!(canonical("https://host"), "https://host");
    }

    #[test]
    fn ambiguous_or_hostile_urls_are_refused() {
        for bad in [
            "oidc.example.com/id/x",
            "ftp://oidc.example.com/",
            "https://user@oidc.example.com/",
            "https://oidc.example.com/id/x?y=1",
            "https://oidc.example.com/id/x#f",
            "https://oidc.example.com/id/%41",
            "https://oidc.example.com/id/../x",
            "https://oidc.example.com/./x",
            "https://oidc.example.com\\@evil/",
            "https:///id/x",
            "https://oidc.example.com:/x",
            "https://oidc.example.com:0/x",
            "https://oidc.example.com:99999/x",
            "https://oidc example.com/x",
            "https://oïdc.example.com/x",
            "https://[::1/x",
            "https://[zz::1]/x",
        ] {
            assert!(bad.parse::<IssuerUrl>().is_err(), "{bad}");
        }
        let long = format!("https://h/{}", "a".repeat(300));
        assert!(long.parse::<IssuerUrl>().is_err());
    }

    #[test]
    fn key_origin_and_host() {
        let url: IssuerUrl = "https://OIDC.example.com:443/id/X"
            .parse()
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(url.key(), "oidc.example.com/id/X");
        assert_eq!(url.origin(), "https://oidc.example.com");
        assert_eq!(url.host(), "oidc.example.com");
        let v6: IssuerUrl = "http://[::1]:9/x"
            .parse()
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(v6.host(), "[::1]");
        assert_eq!(v6.origin(), "http://[::1]:9");
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics_and_the_canonical_form_is_a_fixed_point(
            text in "(https?|HTTPS|ftp)://[a-zA-Z0-9.:/@%?#\\[\\]_-]{0,60}"
        ) {
            if let Ok(url) = text.parse::<IssuerUrl>() {
                let again: IssuerUrl = url.to_string().parse().unwrap_or_else(|e| unreachable!("{e}"));
                proptest::prop_assert_eq!(&again, &url);
                proptest::prop_assert_eq!(again.to_string(), url.to_string());
            }
        }
    }
}
