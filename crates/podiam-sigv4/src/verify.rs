//! Verifying a signed request.

use std::time::Duration;

use http::HeaderMap;
use podiam_crypto::{Secret, constant_time_eq, sha256_hex};
use time::OffsetDateTime;

use crate::canonical::{
    CanonicalRequest, DotStyle, canonical_headers, canonical_query, canonical_uri_styled,
    has_trailing_dot_segment,
};
use crate::parse::{self, Authorization, Credential};
use crate::{ALGORITHM, LookupError, SigV4Error, UNSIGNED_PAYLOAD, signing_key, string_to_sign};

/// How far a request's date may be from the server's clock.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// The longest a presigned request may live (7 days).
pub const MAX_PRESIGN_EXPIRY: u64 = 7 * 24 * 3600;

/// Which regions a credential scope may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Regions {
    /// Any region (clients sign with their configured region when the endpoint is custom).
    Any,
    /// Only these.
    Only(Vec<String>),
}

/// A request as it arrived: the raw path and query (percent-encoded as on the wire), the
/// headers, and the body.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The path as received, without the query.
    pub path: &'a str,
    /// The query string as received, without `?` (empty when there is none).
    pub query: &'a str,
    /// The headers as received.
    pub headers: &'a HeaderMap,
    /// The body as received.
    pub body: &'a [u8],
}

/// Finds the secret for an access key id.
pub trait SecretLookup {
    /// What the lookup knows about the caller (a user, a session, …).
    type Identity;

    /// The secret of `access_key_id` and who it belongs to. `session_token` is the request's
    /// `X-Amz-Security-Token`, if any.
    fn lookup(
        &self,
        access_key_id: &str,
        session_token: Option<&str>,
    ) -> Result<(Secret<String>, Self::Identity), LookupError>;
}

/// A request whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<I> {
    /// Who signed it.
    pub identity: I,
    /// The access key id that signed.
    pub access_key_id: String,
    /// The region of the credential scope.
    pub region: String,
    /// The signing time.
    pub signed_at: OffsetDateTime,
    /// True for a presigned (query-string) request.
    pub presigned: bool,
}

/// The canonical request of `request` for the given `SignedHeaders` and payload hash (the
/// same computation the verifier makes; public for tests and diagnostics). `normalize` is true
/// for every service but S3; `presigned` leaves `X-Amz-Signature` out of the query.
pub fn canonical_request_for(
    request: &SignedRequest<'_>,
    signed_headers: &str,
    payload_hash: &str,
    normalize: bool,
    presigned: bool,
) -> Result<CanonicalRequest, SigV4Error> {
    styled_canonical_request(
        request,
        signed_headers,
        payload_hash,
        normalize,
        presigned,
        DotStyle::Rfc3986,
    )
}

fn styled_canonical_request(
    request: &SignedRequest<'_>,
    signed_headers: &str,
    payload_hash: &str,
    normalize: bool,
    presigned: bool,
    style: DotStyle,
) -> Result<CanonicalRequest, SigV4Error> {
    let names = parse::signed_headers(signed_headers)?;
    let headers = canonical_headers(request.headers, &names).map_err(|missing| {
        SigV4Error::SignatureDoesNotMatch(format!(
            "the signed header {missing:?} is not in the request"
        ))
    })?;
    Ok(CanonicalRequest::new(
        request.method,
        &canonical_uri_styled(request.path, normalize, style),
        &canonical_query(request.query, presigned.then_some("X-Amz-Signature")),
        &headers,
        signed_headers,
        payload_hash,
    ))
}

/// Verifies SigV4 for one service.
#[derive(Debug, Clone)]
pub struct Verifier {
    service: String,
    regions: Regions,
    allow_unsigned_payload: bool,
}

/// Everything read from the request before any secret is involved.
struct Parts {
    auth: Authorization,
    amz_date: String,
    signed_at: OffsetDateTime,
    session_token: Option<String>,
    payload_hash: String,
    presign_expires: Option<u64>,
}

fn single_header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, SigV4Error> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(v), None) => v.to_str().map(Some).map_err(|_| {
            SigV4Error::IncompleteSignature(format!("the {name} header is not visible ASCII"))
        }),
        (Some(_), Some(_)) => Err(SigV4Error::IncompleteSignature(format!(
            "the {name} header appears more than once"
        ))),
    }
}

/// The decoded value of a query parameter that must appear at most once.
fn query_param(query: &str, name: &str) -> Result<Option<String>, SigV4Error> {
    let mut found = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == name {
            if found.is_some() {
                return Err(SigV4Error::IncompleteSignature(format!(
                    "{name} appears more than once"
                )));
            }
            found = Some(decode_param(value));
        }
    }
    Ok(found)
}

fn decode_param(value: &str) -> String {
    String::from_utf8_lossy(&crate::canonical::percent_decode(value)).into_owned()
}

impl Verifier {
    /// A verifier for the signing name `service` (`sts`, `iam`, `eks`, `eks-auth`, …),
    /// accepting any region.
    pub fn new(service: &str) -> Self {
        Self {
            service: service.to_owned(),
            regions: Regions::Any,
            allow_unsigned_payload: service == "s3",
        }
    }

    /// Restricts the regions a credential scope may name.
    #[must_use]
    pub fn regions(mut self, regions: Regions) -> Self {
        self.regions = regions;
        self
    }

    /// Whether `x-amz-content-sha256: UNSIGNED-PAYLOAD` is accepted.
    #[must_use]
    pub fn allow_unsigned_payload(mut self, allow: bool) -> Self {
        self.allow_unsigned_payload = allow;
        self
    }

    fn is_s3(&self) -> bool {
        self.service == "s3"
    }

    /// Verifies `request` at `now`, finding the secret through `lookup`.
    pub fn verify<L: SecretLookup>(
        &self,
        request: &SignedRequest<'_>,
        lookup: &L,
        now: OffsetDateTime,
    ) -> Result<Verified<L::Identity>, SigV4Error> {
        self.verify_inner(request, None, lookup, now)
    }

    /// Verifies a request whose body is not at hand, only its SHA-256 (lowercase hex): what a
    /// proxy asks the server to check for it. `request.body` is ignored.
    pub fn verify_digest<L: SecretLookup>(
        &self,
        request: &SignedRequest<'_>,
        body_sha256: &str,
        lookup: &L,
        now: OffsetDateTime,
    ) -> Result<Verified<L::Identity>, SigV4Error> {
        let well_formed = body_sha256.len() == 64
            && body_sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return Err(SigV4Error::IncompleteSignature(
                "The payload digest is not a lowercase hex SHA-256.".to_owned(),
            ));
        }
        self.verify_inner(request, Some(body_sha256), lookup, now)
    }

    /// Everything but the signature itself, before the body is read: the header or query
    /// parameters parse, the scope and time are right, and `lookup` knows the key (for a
    /// session key, its token opens). A server calls this to decide whether reading a large
    /// body is worth it; [`Self::verify`] must still follow.
    pub fn precheck<L: SecretLookup>(
        &self,
        request: &SignedRequest<'_>,
        lookup: &L,
        now: OffsetDateTime,
    ) -> Result<L::Identity, SigV4Error> {
        let parts = self.checked_parts(request, None, now)?;
        let (_, identity) = lookup.lookup(
            &parts.auth.credential.access_key_id,
            parts.session_token.as_deref(),
        )?;
        Ok(identity)
    }

    /// The signature's parts, checked for everything that needs no secret. `body_hash` is
    /// `None` before the body is read (a claimed `x-amz-content-sha256` is then not compared).
    fn checked_parts(
        &self,
        request: &SignedRequest<'_>,
        body_hash: Option<String>,
        now: OffsetDateTime,
    ) -> Result<Parts, SigV4Error> {
        let header = single_header(request.headers, "authorization")?;
        let presigned = query_param(request.query, "X-Amz-Algorithm")?;
        let parts = match (header, presigned) {
            (None, None) => return Err(SigV4Error::MissingAuthenticationToken),
            (Some(_), Some(_)) => {
                return Err(SigV4Error::IncompleteSignature(
                    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified".to_owned(),
                ));
            }
            (Some(value), None) => self.header_parts(value, request, body_hash)?,
            (None, Some(algorithm)) => self.presigned_parts(&algorithm, request, body_hash)?,
        };
        let auth = &parts.auth;
        self.check_scope(&auth.credential, &parts.amz_date)?;
        if !auth.signed_headers.iter().any(|h| h == "host") {
            return Err(SigV4Error::SignatureDoesNotMatch(
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
                    .to_owned(),
            ));
        }
        check_time(&parts, now)?;
        Ok(parts)
    }

    fn verify_inner<L: SecretLookup>(
        &self,
        request: &SignedRequest<'_>,
        digest: Option<&str>,
        lookup: &L,
        now: OffsetDateTime,
    ) -> Result<Verified<L::Identity>, SigV4Error> {
        let body_hash = digest.map_or_else(|| sha256_hex(request.body), str::to_owned);
        let parts = self.checked_parts(request, Some(body_hash), now)?;
        let auth = &parts.auth;

        let (secret, identity) = lookup.lookup(
            &auth.credential.access_key_id,
            parts.session_token.as_deref(),
        )?;

        let key = signing_key(
            secret.expose(),
            &auth.credential.date,
            &auth.credential.region,
            &auth.credential.service,
        );
        // A path ending in `.` or `..` canonicalizes differently in botocore and in the AWS
        // SDKs that follow RFC 3986; either signer's form is accepted.
        let styles: &[DotStyle] = if !self.is_s3() && has_trailing_dot_segment(request.path) {
            &[DotStyle::Rfc3986, DotStyle::Botocore]
        } else {
            &[DotStyle::Rfc3986]
        };
        let mut matched = false;
        for &style in styles {
            let canonical = styled_canonical_request(
                request,
                &auth.signed_headers_text,
                &parts.payload_hash,
                !self.is_s3(),
                parts.presign_expires.is_some(),
                style,
            )?;
            let to_sign =
                string_to_sign(&parts.amz_date, &auth.credential.scope(), &canonical.text);
            let expected = hex::encode(key.sign(to_sign.as_bytes()));
            matched |= constant_time_eq(expected.as_bytes(), auth.signature.as_bytes());
        }
        if !matched {
            return Err(SigV4Error::mismatch());
        }
        Ok(Verified {
            identity,
            access_key_id: auth.credential.access_key_id.clone(),
            region: auth.credential.region.clone(),
            signed_at: parts.signed_at,
            presigned: parts.presign_expires.is_some(),
        })
    }

    fn header_parts(
        &self,
        value: &str,
        request: &SignedRequest<'_>,
        computed: Option<String>,
    ) -> Result<Parts, SigV4Error> {
        let auth = parse::authorization_header(value)?;
        let (amz_date, signed_at) = match single_header(request.headers, "x-amz-date")? {
            Some(text) => (
                text.to_owned(),
                parse::parse_amz_date(text).ok_or_else(|| {
                    SigV4Error::IncompleteSignature(format!(
                        "X-Amz-Date {text:?} is not YYYYMMDDTHHMMSSZ"
                    ))
                })?,
            ),
            None => {
                let text = single_header(request.headers, "date")?.ok_or_else(|| {
                    SigV4Error::IncompleteSignature(
                        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".to_owned(),
                    )
                })?;
                let at = parse::parse_http_date(text).ok_or_else(|| {
                    SigV4Error::IncompleteSignature(format!("Date {text:?} is not an HTTP date"))
                })?;
                (crate::format_amz_date(at), at)
            }
        };
        let session_token =
            single_header(request.headers, "x-amz-security-token")?.map(str::to_owned);
        let payload_hash = match (
            single_header(request.headers, "x-amz-content-sha256")?,
            computed,
        ) {
            (None, computed) => computed.unwrap_or_default(),
            (Some(UNSIGNED_PAYLOAD), _) if self.allow_unsigned_payload => {
                UNSIGNED_PAYLOAD.to_owned()
            }
            (Some(claimed), None) => claimed.to_owned(),
            (Some(claimed), Some(computed)) if claimed == computed => computed,
            (Some(_), Some(_)) => {
                return Err(SigV4Error::SignatureDoesNotMatch(
                    "The provided 'x-amz-content-sha256' header does not match what was computed."
                        .to_owned(),
                ));
            }
        };
        Ok(Parts {
            auth,
            amz_date,
            signed_at,
            session_token,
            payload_hash,
            presign_expires: None,
        })
    }

    fn presigned_parts(
        &self,
        algorithm: &str,
        request: &SignedRequest<'_>,
        computed: Option<String>,
    ) -> Result<Parts, SigV4Error> {
        if algorithm != ALGORITHM {
            return Err(SigV4Error::IncompleteSignature(format!(
                "X-Amz-Algorithm only supports \"{ALGORITHM}\""
            )));
        }
        let required = |name: &str| -> Result<String, SigV4Error> {
            query_param(request.query, name)?.ok_or_else(|| {
                SigV4Error::IncompleteSignature(format!(
                    "AWS query-string parameters must include '{name}'"
                ))
            })
        };
        let credential = required("X-Amz-Credential")?;
        let amz_date = required("X-Amz-Date")?;
        let expires = required("X-Amz-Expires")?;
        let signed = required("X-Amz-SignedHeaders")?;
        let signature = required("X-Amz-Signature")?;
        let expires: u64 = expires
            .parse()
            .ok()
            .filter(|e| (1..=MAX_PRESIGN_EXPIRY).contains(e))
            .ok_or_else(|| {
                SigV4Error::IncompleteSignature(format!(
                    "X-Amz-Expires must be a number of seconds from 1 to {MAX_PRESIGN_EXPIRY}"
                ))
            })?;
        let signed_at = parse::parse_amz_date(&amz_date).ok_or_else(|| {
            SigV4Error::IncompleteSignature(format!(
                "X-Amz-Date {amz_date:?} is not YYYYMMDDTHHMMSSZ"
            ))
        })?;
        let auth = Authorization::from_parts(&credential, &signed, &signature)?;
        Ok(Parts {
            auth,
            amz_date,
            signed_at,
            session_token: query_param(request.query, "X-Amz-Security-Token")?,
            payload_hash: if self.is_s3() {
                UNSIGNED_PAYLOAD.to_owned()
            } else {
                computed.unwrap_or_default()
            },
            presign_expires: Some(expires),
        })
    }

    fn check_scope(&self, credential: &Credential, amz_date: &str) -> Result<(), SigV4Error> {
        if amz_date.get(..8) != Some(credential.date.as_str()) {
            return Err(SigV4Error::SignatureDoesNotMatch(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{amz_date}'.",
                credential.date,
                amz_date.get(..8).unwrap_or_default()
            )));
        }
        if credential.service != self.service {
            return Err(SigV4Error::SignatureDoesNotMatch(format!(
                "Credential should be scoped to correct service: '{}'. ",
                self.service
            )));
        }
        let region_ok = !credential.region.is_empty()
            && match &self.regions {
                Regions::Any => credential
                    .region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                Regions::Only(allowed) => allowed.contains(&credential.region),
            };
        if !region_ok {
            return Err(SigV4Error::SignatureDoesNotMatch(
                "Credential should be scoped to a valid region. ".to_owned(),
            ));
        }
        if credential.terminator != "aws4_request" {
            return Err(SigV4Error::SignatureDoesNotMatch(
                "Credential should be scoped with a valid terminator: 'aws4_request'. ".to_owned(),
            ));
        }
        Ok(())
    }
}

fn check_time(parts: &Parts, now: OffsetDateTime) -> Result<(), SigV4Error> {
    let skew = time::Duration::try_from(MAX_SKEW).unwrap_or(time::Duration::minutes(15));
    let signed = parts.signed_at;
    let fmt = |t: OffsetDateTime| crate::format_amz_date(t);
    if signed > now + skew {
        return Err(SigV4Error::RequestExpired(format!(
            "Signature not yet current: {} is still later than {} ({} + 15 min.)",
            fmt(signed),
            fmt(now + skew),
            fmt(now)
        )));
    }
    match parts.presign_expires {
        None if signed < now - skew => Err(SigV4Error::RequestExpired(format!(
            "Signature expired: {} is now earlier than {} ({} - 15 min.)",
            fmt(signed),
            fmt(now - skew),
            fmt(now)
        ))),
        Some(expires) => {
            let seconds = i64::try_from(expires).unwrap_or(i64::MAX);
            let until = signed + time::Duration::seconds(seconds);
            if now > until {
                Err(SigV4Error::SignatureExpired(format!(
                    "Request has expired: signed {} for {expires} s, now {}",
                    fmt(signed),
                    fmt(now)
                )))
            } else {
                Ok(())
            }
        }
        None => Ok(()),
    }
}
