//! Reading the authorization: the `Authorization` header, presigned query parameters, dates.

use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::SigV4Error;

/// `YYYYMMDD'T'HHMMSS'Z'`.
pub const AMZ_DATE_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");

const HTTP_DATE_FORMAT: &[BorrowedFormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// Parses an `X-Amz-Date` value.
pub fn parse_amz_date(text: &str) -> Option<OffsetDateTime> {
    if text.len() != 16 {
        return None;
    }
    PrimitiveDateTime::parse(text, AMZ_DATE_FORMAT)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// Formats an `X-Amz-Date` value.
pub fn format_amz_date(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(AMZ_DATE_FORMAT)
        .unwrap_or_default()
}

/// Parses an HTTP `Date` header (IMF-fixdate).
pub(crate) fn parse_http_date(text: &str) -> Option<OffsetDateTime> {
    PrimitiveDateTime::parse(text, HTTP_DATE_FORMAT)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// `AKID/YYYYMMDD/region/service/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Credential {
    pub(crate) access_key_id: String,
    pub(crate) date: String,
    pub(crate) region: String,
    pub(crate) service: String,
    pub(crate) terminator: String,
}

impl Credential {
    pub(crate) fn parse(text: &str) -> Result<Self, SigV4Error> {
        let mut parts = text.split('/');
        match (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) {
            (
                Some(access_key_id),
                Some(date),
                Some(region),
                Some(service),
                Some(terminator),
                None,
            ) if !access_key_id.is_empty() => Ok(Self {
                access_key_id: access_key_id.to_owned(),
                date: date.to_owned(),
                region: region.to_owned(),
                service: service.to_owned(),
                terminator: terminator.to_owned(),
            }),
            _ => Err(SigV4Error::IncompleteSignature(format!(
                "Credential should be KEY/YYYYMMDD/REGION/SERVICE/aws4_request, not {:?}",
                text.chars().take(128).collect::<String>()
            ))),
        }
    }

    /// The scope: `YYYYMMDD/region/service/aws4_request`.
    pub(crate) fn scope(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.date, self.region, self.service, self.terminator
        )
    }
}

/// The three parts of an authorization, wherever they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authorization {
    pub(crate) credential: Credential,
    pub(crate) signed_headers: Vec<String>,
    pub(crate) signed_headers_text: String,
    pub(crate) signature: String,
}

impl Authorization {
    /// Reads the three parts from their text.
    pub(crate) fn from_parts(
        credential: &str,
        signed: &str,
        signature_text: &str,
    ) -> Result<Self, SigV4Error> {
        Ok(Self {
            credential: Credential::parse(credential)?,
            signed_headers: signed_headers(signed)?,
            signed_headers_text: signed.to_owned(),
            signature: signature(signature_text)?.to_owned(),
        })
    }
}

/// The largest `Authorization` header read.
const MAX_AUTHORIZATION_LEN: usize = 8192;

/// The most headers a request may sign.
const MAX_SIGNED_HEADERS: usize = 64;

pub(crate) fn signed_headers(text: &str) -> Result<Vec<String>, SigV4Error> {
    let names: Vec<String> = text.split(';').map(str::to_owned).collect();
    let valid = names.len() <= MAX_SIGNED_HEADERS
        && names.iter().all(|n| {
            !n.is_empty()
                && n.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.!#$%&'*+^`|~".contains(&b)
                })
        });
    if !valid {
        return Err(SigV4Error::IncompleteSignature(
            "SignedHeaders must be lower-case header names separated by ';'".to_owned(),
        ));
    }
    Ok(names)
}

pub(crate) fn signature(text: &str) -> Result<&str, SigV4Error> {
    if text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(text)
    } else {
        Err(SigV4Error::IncompleteSignature(
            "Signature must be 64 lower-case hexadecimal characters".to_owned(),
        ))
    }
}

/// Parses `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`, accepting `,` or `, `
/// between parts and any order.
pub(crate) fn authorization_header(value: &str) -> Result<Authorization, SigV4Error> {
    let value = value.trim();
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Err(SigV4Error::IncompleteSignature(
            "the Authorization header is too long".to_owned(),
        ));
    }
    let Some(rest) = value
        .strip_prefix(crate::ALGORITHM)
        .filter(|r| r.is_empty() || r.starts_with(' '))
    else {
        let algorithm = value.split_whitespace().next().unwrap_or_default();
        return Err(SigV4Error::IncompleteSignature(format!(
            "Unsupported AWS 'algorithm': '{}'. Only AWS4-HMAC-SHA256 is supported.",
            algorithm.chars().take(64).collect::<String>()
        )));
    };
    let (mut credential, mut headers, mut signature_value) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((name, value)) = part.split_once('=') else {
            return Err(SigV4Error::IncompleteSignature(format!(
                "Authorization header part {:?} is not name=value",
                part.chars().take(64).collect::<String>()
            )));
        };
        let slot = match name {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut headers,
            "Signature" => &mut signature_value,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(SigV4Error::IncompleteSignature(format!(
                "{name} appears twice"
            )));
        }
    }
    let missing: Vec<&str> = [
        (credential.is_none(), "Credential"),
        (headers.is_none(), "SignedHeaders"),
        (signature_value.is_none(), "Signature"),
    ]
    .into_iter()
    .filter(|(absent, _)| *absent)
    .map(|(_, name)| name)
    .collect();
    match (credential, headers, signature_value) {
        (Some(c), Some(h), Some(s)) => Authorization::from_parts(c, h, s),
        _ => Err(SigV4Error::IncompleteSignature(
            missing
                .iter()
                .map(|name| format!("Authorization header requires '{name}' parameter."))
                .collect::<Vec<_>>()
                .join(" "),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

    #[test]
    fn parses_both_separators_and_any_order() {
        let a = authorization_header(GOOD).unwrap();
        assert_eq!(a.credential.access_key_id, "AKIDEXAMPLE");
        assert_eq!(a.credential.scope(), "20150830/us-east-1/iam/aws4_request");
        assert_eq!(a.signed_headers, ["content-type", "host", "x-amz-date"]);
        let compact = GOOD.replace(", ", ",");
        assert_eq!(authorization_header(&compact).unwrap(), a);
        let reordered = "AWS4-HMAC-SHA256 Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7, SignedHeaders=content-type;host;x-amz-date, Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request";
        assert_eq!(authorization_header(reordered).unwrap(), a);
    }

    #[test]
    fn incomplete_forms() {
        let cases = [
            ("AWS4-HMAC-SHA256", "requires 'Credential'"),
            (
                "AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/iam/aws4_request",
                "requires 'SignedHeaders' parameter. Authorization header requires 'Signature'",
            ),
            ("AWS AKIDEXAMPLE:sig", "Unsupported AWS 'algorithm': 'AWS'"),
            ("AWS4-HMAC-SHA256Credential=x", "Unsupported"),
            (
                "AWS4-HMAC-SHA256 Credential=A/b/c, SignedHeaders=host, Signature=00",
                "Credential should be",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=A/b/c/d/e, SignedHeaders=Host, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
                "SignedHeaders must be",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=A/b/c/d/e, SignedHeaders=host, Signature=XYZ",
                "Signature must be",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=A/b/c/d/e, Credential=A/b/c/d/e, SignedHeaders=host, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
                "appears twice",
            ),
        ];
        for (value, expected) in cases {
            let err = authorization_header(value).unwrap_err();
            assert!(
                matches!(&err, SigV4Error::IncompleteSignature(m) if m.contains(expected)),
                "{value}: {err:?}"
            );
        }
    }

    #[test]
    fn dates() {
        let t = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(t.unix_timestamp(), 1_440_938_160);
        assert_eq!(format_amz_date(t), "20150830T123600Z");
        for bad in [
            "20150830T123600",
            "2015-08-30T12:36:00Z",
            "20151330T123600Z",
            "",
            "20150830T123600Zx",
        ] {
            assert!(parse_amz_date(bad).is_none(), "{bad}");
        }
        assert_eq!(parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT"), Some(t));
    }
}
