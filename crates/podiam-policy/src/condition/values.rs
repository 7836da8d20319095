//! Typed readings of condition values, shared by policy values and request values.

use std::net::IpAddr;

use base64::Engine as _;
use ipnet::IpNet;
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::{Date, OffsetDateTime, PrimitiveDateTime};

/// A decimal number; `inf`, `NaN` and hexadecimal are not numbers in IAM.
pub(crate) fn parse_number(text: &str) -> Option<f64> {
    let plausible = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
        && text.bytes().any(|b| b.is_ascii_digit());
    if !plausible {
        return None;
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A point in time as nanoseconds since the Unix epoch. Accepts epoch seconds (`1714564800`),
/// ISO-8601 date-times with or without offset, fractional seconds or seconds
/// (`2024-05-01T12:00:00Z`, `2024-05-01T12:00Z`, `2024-05-01T12:00:00.5+02:00`), and dates
/// (`2024-05-01`, midnight UTC). A date-time without an offset is read as UTC.
pub(crate) fn parse_date(text: &str) -> Option<i128> {
    if text.len() > 64 {
        return None;
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let seconds: i64 = text.parse().ok()?;
        return i128::from(seconds).checked_mul(1_000_000_000);
    }
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(text, &Iso8601::PARSING))
        .or_else(|_| PrimitiveDateTime::parse(text, &Iso8601::PARSING).map(|t| t.assume_utc()))
        .or_else(|_| Date::parse(text, &Iso8601::PARSING).map(|d| d.midnight().assume_utc()))
        .ok()?;
    Some(parsed.unix_timestamp_nanos())
}

/// `true` or `false`, in any case.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Base64 (standard alphabet, padded) to bytes.
pub(crate) fn parse_binary(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// A CIDR block; a bare address means that one address.
pub(crate) fn parse_network(text: &str) -> Option<IpNet> {
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

/// A request's IP address (IPv4 or IPv6).
pub(crate) fn parse_address(text: &str) -> Option<IpAddr> {
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number("10"), Some(10.0));
        assert_eq!(parse_number("-1.5"), Some(-1.5));
        assert_eq!(parse_number("1e3"), Some(1000.0));
        for bad in ["", "inf", "NaN", "0x10", "1 ", "abc", "-", "."] {
            assert_eq!(parse_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates() {
        let noon = 1_714_564_800i128 * 1_000_000_000; // 2024-05-01T12:00:00Z
        assert_eq!(parse_date("2024-05-01T12:00:00Z"), Some(noon));
        assert_eq!(parse_date("1714564800"), Some(noon));
        assert_eq!(parse_date("2024-05-01T14:00:00+02:00"), Some(noon));
        assert_eq!(parse_date("2024-05-01T12:00:00.000Z"), Some(noon));
        assert_eq!(parse_date("2024-05-01T12:00:00"), Some(noon));
        assert_eq!(parse_date("2024-05-01T12:00Z"), Some(noon));
        assert_eq!(
            parse_date("2024-05-01"),
            Some(noon - 12 * 3600 * 1_000_000_000)
        );
        for bad in [
            "",
            "yesterday",
            "2024-13-01",
            "2024-05-01T25:00:00Z",
            "12:00",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn networks() {
        let net = parse_network("10.0.0.0/8").unwrap();
        assert!(net.contains(&parse_address("10.1.2.3").unwrap()));
        assert!(!net.contains(&parse_address("11.1.2.3").unwrap()));
        let single = parse_network("192.0.2.7").unwrap();
        assert!(single.contains(&parse_address("192.0.2.7").unwrap()));
        let v6 = parse_network("2001:db8::/32").unwrap();
        assert!(v6.contains(&parse_address("2001:db8::1").unwrap()));
        assert!(!v6.contains(&parse_address("10.1.2.3").unwrap()));
        assert!(parse_network("10.0.0.0/33").is_none());
    }

    #[test]
    fn booleans_and_binary() {
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("false"), Some(false));
        assert_eq!(parse_bool("yes"), None);
        assert_eq!(parse_binary("QmluYXJ5"), Some(b"Binary".to_vec()));
        assert_eq!(parse_binary("not base64!"), None);
    }
}
