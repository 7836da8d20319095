//! awsQuery responses: `<{Op}Response><{Op}Result>…</{Op}Result><ResponseMetadata>…`, with
//! the `Result` element first (the Rust SDK requires it), `member` list items, ISO-8601 `Z`
//! timestamps and URL-encoded policy documents.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use quick_xml::escape::escape;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::WireError;

/// STS's XML namespace.
pub const STS_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// IAM's XML namespace.
pub const IAM_NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// What RFC 3986 leaves unencoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A policy document as IAM returns it: RFC 3986 percent-encoded (`%20` for a space).
pub fn policy_document(text: &str) -> String {
    utf8_percent_encode(text, UNRESERVED).to_string()
}

/// `2024-05-01T12:00:00Z`.
pub fn iso8601(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default()
}

/// A small XML writer for response bodies.
#[derive(Debug, Default)]
pub struct Xml {
    out: String,
}

impl Xml {
    /// An empty body.
    pub fn new() -> Self {
        Self::default()
    }

    /// `<name>`
    pub fn open(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// `</name>`
    pub fn close(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// `<name>escaped text</name>`
    pub fn text(&mut self, name: &str, value: &str) -> &mut Self {
        self.open(name);
        self.out.push_str(&escape(value));
        self.close(name)
    }

    /// `<name>text</name>` when `value` is present.
    pub fn optional(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        if let Some(value) = value {
            self.text(name, value);
        }
        self
    }

    /// A timestamp element.
    pub fn time(&mut self, name: &str, at: OffsetDateTime) -> &mut Self {
        self.text(name, &iso8601(at))
    }

    /// `<name><member>…</member>…</name>`, one member per item, filled by `each`.
    pub fn members<T>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = T>,
        mut each: impl FnMut(&mut Self, T),
    ) -> &mut Self {
        self.open(name);
        for item in items {
            self.open("member");
            each(self, item);
            self.close("member");
        }
        self.close(name)
    }

    /// A list of plain strings as members.
    pub fn string_members<'a>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = &'a str>,
    ) -> &mut Self {
        self.open(name);
        for item in items {
            self.text("member", item);
        }
        self.close(name)
    }

    /// `<Tags><member><Key/><Value/></member>…</Tags>`.
    pub fn tags<'a>(
        &mut self,
        name: &str,
        tags: impl IntoIterator<Item = &'a (String, String)>,
    ) -> &mut Self {
        self.members(name, tags, |x, (k, v)| {
            x.text("Key", k).text("Value", v);
        })
    }

    /// The body so far.
    pub fn into_string(self) -> String {
        self.out
    }
}

/// A success envelope for `action`, with `result` written inside `<{action}Result>` (when the
/// operation has output).
pub fn query_response(
    action: &str,
    namespace: &str,
    request_id: &str,
    result: Option<Xml>,
) -> String {
    let mut xml = Xml::new();
    xml.out
        .push_str(&format!("<{action}Response xmlns=\"{namespace}\">"));
    if let Some(result) = result {
        xml.out.push_str(&format!("<{action}Result>"));
        xml.out.push_str(&result.out);
        xml.out.push_str(&format!("</{action}Result>"));
    }
    xml.open("ResponseMetadata")
        .text("RequestId", request_id)
        .close("ResponseMetadata");
    xml.out.push_str(&format!("</{action}Response>"));
    xml.out
}

/// The awsQuery error body.
pub fn query_error(namespace: &str, error: &WireError, request_id: &str) -> String {
    let mut xml = Xml::new();
    xml.out
        .push_str(&format!("<ErrorResponse xmlns=\"{namespace}\">"));
    xml.open("Error")
        .text("Type", error.fault())
        .text("Code", error.code)
        .text("Message", &error.message)
        .close("Error")
        .text("RequestId", request_id);
    xml.out.push_str("</ErrorResponse>");
    xml.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_puts_the_result_first() {
        let mut result = Xml::new();
        result
            .text("UserId", "AROA:s")
            .text("Account", "123456789012");
        let body = query_response("GetCallerIdentity", STS_NAMESPACE, "rid", Some(result));
        assert_eq!(
            body,
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><UserId>AROA:s</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
        );
        let empty = query_response("DeleteRole", IAM_NAMESPACE, "r", None);
        assert!(
            empty.starts_with("<DeleteRoleResponse xmlns=") && !empty.contains("DeleteRoleResult")
        );
    }

    #[test]
    fn escapes_and_encodes() {
        let mut x = Xml::new();
        x.text("Message", "a<b & \"c\"");
        assert_eq!(
            x.into_string(),
            "<Message>a&lt;b &amp; &quot;c&quot;</Message>"
        );
        assert_eq!(
            policy_document("{\"A\": \"b c/d\"}"),
            "%7B%22A%22%3A%20%22b%20c%2Fd%22%7D"
        );
        let t = OffsetDateTime::from_unix_timestamp(1_714_564_800).unwrap();
        assert_eq!(iso8601(t), "2024-05-01T12:00:00Z");
    }

    #[test]
    fn error_body() {
        let e = WireError::new(
            "NoSuchEntity",
            404,
            "The role with name missing cannot be found.",
        );
        assert_eq!(
            query_error(IAM_NAMESPACE, &e, "rid"),
            "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>The role with name missing cannot be found.</Message></Error><RequestId>rid</RequestId></ErrorResponse>"
        );
    }
}
