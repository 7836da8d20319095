//! The HTTP envelope of a DynamoDB request, checked before its body is read.
//!
//! DynamoDB's JSON protocol is `POST /` with one `X-Amz-Target` and a JSON body. Upstreams
//! differ in what else they read (moto also takes an operation from an `Action` query or form
//! parameter, or an `Action` header), so the gateway accepts only that shape and forwards a
//! request it builds itself. A query string is refused outright: besides naming another
//! operation, a presigned URL carries the caller's credentials, which must never reach the
//! upstream.

use std::borrow::Cow;

use crate::GatewayError;
use crate::dynamodb::{clip, operation_of};

/// The one content type of DynamoDB's protocol, which the gateway also forwards.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// The parts of a request the envelope check reads.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// The query string, when the request line had a `?` (even with nothing after it).
    pub query: Option<&'a str>,
}

/// Checks the envelope and returns the request's one `X-Amz-Target`. `headers` are the
/// request's headers as `(lower-case name, value)`.
///
/// # Errors
///
/// [`GatewayError::UnknownOperation`] for a method other than `POST`, no or several
/// `X-Amz-Target`s, or a target this crate does not map; [`GatewayError::Validation`] for a
/// path other than `/`, a query string or an `Action` header; [`GatewayError::Serialization`]
/// for a content type other than [`CONTENT_TYPE`] or a content encoding.
pub fn target<'h>(
    envelope: Envelope<'_>,
    headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
) -> Result<&'h str, GatewayError> {
    if envelope.method != "POST" {
        return Err(GatewayError::UnknownOperation(format!(
            "DynamoDB requests are POSTs, not {}",
            clip(envelope.method)
        )));
    }
    if envelope.path != "/" {
        return Err(GatewayError::Validation(format!(
            "DynamoDB requests are sent to the path /, not {}",
            clip(envelope.path)
        )));
    }
    if envelope.query.is_some() {
        return Err(GatewayError::Validation(
            "The gateway accepts no query string: DynamoDB requests carry their operation in \
             X-Amz-Target and their signature in the Authorization header (query-string \
             signatures are refused, so credentials never travel in a URL)"
                .to_owned(),
        ));
    }
    let mut target = None;
    let mut content_type = None;
    for (name, value) in headers {
        match name {
            "x-amz-target" => {
                if target.is_some() {
                    return Err(GatewayError::UnknownOperation(
                        "A request has exactly one X-Amz-Target header".to_owned(),
                    ));
                }
                target = Some(value);
            }
            "action" => {
                return Err(GatewayError::Validation(
                    "DynamoDB requests name their operation in X-Amz-Target only; an Action \
                     header is refused"
                        .to_owned(),
                ));
            }
            "content-type" => {
                if content_type.is_some() {
                    return Err(GatewayError::Serialization(
                        "A request has one Content-Type header".to_owned(),
                    ));
                }
                content_type = Some(value);
            }
            "content-encoding" if !value.eq_ignore_ascii_case(b"identity") => {
                return Err(GatewayError::Serialization(
                    "DynamoDB request bodies are not encoded (Content-Encoding)".to_owned(),
                ));
            }
            _ => {}
        }
    }
    if !content_type.is_some_and(|v| v.eq_ignore_ascii_case(CONTENT_TYPE.as_bytes())) {
        return Err(GatewayError::Serialization(format!(
            "DynamoDB requests have the Content-Type {CONTENT_TYPE}"
        )));
    }
    let target = target
        .and_then(|t| std::str::from_utf8(t).ok())
        .ok_or_else(|| {
            GatewayError::UnknownOperation(
                "A request has exactly one X-Amz-Target header".to_owned(),
            )
        })?;
    operation_of(target)?;
    Ok(target)
}

/// The body as the gateway forwards it: the same JSON value, with each `&` written `\u0026`.
/// In a body that parsed as JSON a `&` can only be inside a string, so nothing changes for a
/// JSON reader; an upstream that also reads the body as an HTML form (moto does, and then takes
/// an `Action` from it) finds no field separator to start a field of the client's choosing.
/// The body grows by five bytes per `&`, after the caller was authorized.
pub fn form_safe(body: &[u8]) -> Cow<'_, [u8]> {
    let ampersands = body.iter().filter(|&&b| b == b'&').count();
    if ampersands == 0 {
        return Cow::Borrowed(body);
    }
    let mut out = Vec::with_capacity(body.len().saturating_add(ampersands.saturating_mul(5)));
    for &byte in body {
        if byte == b'&' {
            out.extend_from_slice(b"\\u0026");
        } else {
            out.push(byte);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: &str = "DynamoDB_20120810.GetItem";

    fn check(
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: &[(&'static str, &'static str)],
    ) -> Result<String, GatewayError> {
        target(
            Envelope {
                method,
                path,
                query,
            },
            headers.iter().map(|(n, v)| (*n, v.as_bytes())),
        )
        .map(str::to_owned)
    }

    fn json(target: &'static str) -> Vec<(&'static str, &'static str)> {
        vec![("content-type", CONTENT_TYPE), ("x-amz-target", target)]
    }

    #[test]
    fn the_protocol_passes() {
        assert_eq!(check("POST", "/", None, &json(GET)).unwrap(), GET);
        let mut headers = json(GET);
        headers.push(("content-encoding", "identity"));
        headers[0].1 = "Application/X-Amz-Json-1.0";
        assert_eq!(check("POST", "/", None, &headers).unwrap(), GET);
    }

    #[test]
    fn anything_else_is_refused() {
        let refused = |method, path, query, headers: &[(&'static str, &'static str)]| {
            check(method, path, query, headers).unwrap_err()
        };
        assert!(matches!(
            refused("GET", "/", None, &json(GET)),
            GatewayError::UnknownOperation(_)
        ));
        assert!(matches!(
            refused("POST", "/x", None, &json(GET)),
            GatewayError::Validation(_)
        ));
        for query in [
            "",
            "Action=Scan",
            "X-Amz-Signature=abc&X-Amz-Credential=AKIA",
        ] {
            assert!(matches!(
                refused("POST", "/", Some(query), &json(GET)),
                GatewayError::Validation(_)
            ));
        }
        let mut two = json("DynamoDB_20120810.ListTables");
        two.push(("x-amz-target", "DynamoDB_20120810.Scan"));
        assert!(matches!(
            refused("POST", "/", None, &two),
            GatewayError::UnknownOperation(_)
        ));
        let mut action = json("DynamoDB_20120810.ListTables");
        action.push(("action", "DeleteTable"));
        assert!(matches!(
            refused("POST", "/", None, &action),
            GatewayError::Validation(_)
        ));
        assert!(matches!(
            refused("POST", "/", None, &[("content-type", CONTENT_TYPE)]),
            GatewayError::UnknownOperation(_)
        ));
        assert!(matches!(
            refused("POST", "/", None, &[("x-amz-target", GET)]),
            GatewayError::Serialization(_)
        ));
        for content_type in [
            "application/x-www-form-urlencoded",
            "application/x-amz-json-1.1",
            "application/x-amz-json-1.0; charset=utf-8",
        ] {
            assert!(matches!(
                refused(
                    "POST",
                    "/",
                    None,
                    &[("content-type", content_type), ("x-amz-target", GET)]
                ),
                GatewayError::Serialization(_)
            ));
        }
        let mut gzip = json(GET);
        gzip.push(("content-encoding", "gzip"));
        assert!(matches!(
            refused("POST", "/", None, &gzip),
            GatewayError::Serialization(_)
        ));
        assert!(matches!(
            refused("POST", "/", None, &json("DynamoDB_20120810.Nope")),
            GatewayError::UnknownOperation(_)
        ));
    }

    #[test]
    fn forwarded_bodies_have_no_form_separator_and_the_same_value() {
        let body = br#"{"TableName":"t","Item":{"a":{"S":"x&Action=DeleteTable&y"}}}"#;
        let safe = form_safe(body);
        assert!(!safe.contains(&b'&'));
        let before: serde_json::Value = serde_json::from_slice(body).unwrap();
        let after: serde_json::Value = serde_json::from_slice(&safe).unwrap();
        assert_eq!(before, after);
        assert!(matches!(form_safe(b"{}"), Cow::Borrowed(_)));
    }

    proptest::proptest! {
        #[test]
        fn any_json_keeps_its_value(value in proptest::arbitrary::any::<(String, Vec<String>)>()) {
            let body = serde_json::to_vec(&value).unwrap();
            let safe = form_safe(&body);
            proptest::prop_assert!(!safe.contains(&b'&'));
            let back: (String, Vec<String>) = serde_json::from_slice(&safe).unwrap();
            proptest::prop_assert_eq!(back, value);
        }
    }
}
