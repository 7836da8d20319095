//! The canonical request (SigV4 task 1).

use std::fmt::Write as _;

use http::HeaderMap;

/// RFC 3986 unreserved characters, which SigV4 never encodes.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Percent-encodes `bytes` as SigV4 does: everything but unreserved characters (and `/` when
/// `keep_slash`), as upper-case `%XX`.
pub fn encode_component(bytes: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` sequences; anything else (including `+` and a stray `%`) stays as it is.
pub(crate) fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex_value),
                bytes.get(i + 2).copied().and_then(hex_value),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}

/// How a trailing `.` or `..` segment is treated: RFC 3986 (and the AWS SDK for Rust) keeps a
/// trailing slash (`/a/.` is `/a/`); botocore drops it (`/a`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DotStyle {
    Rfc3986,
    Botocore,
}

/// Dot-segment removal (RFC 3986 §5.2.4), also collapsing runs of `/` as AWS does.
fn remove_dot_segments(path: &str, style: DotStyle) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(path.len());
    if path.starts_with('/') {
        out.push('/');
    }
    out.push_str(&segments.join("/"));
    let last = path.rsplit('/').next().unwrap_or_default();
    let dot_end = style == DotStyle::Rfc3986 && matches!(last, "." | "..");
    if (path.ends_with('/') || dot_end) && !segments.is_empty() {
        out.push('/');
    }
    out
}

/// True when the two dot styles can disagree on `path`.
pub(crate) fn has_trailing_dot_segment(path: &str) -> bool {
    matches!(path.rsplit('/').next(), Some("." | ".."))
}

/// The canonical URI of a raw request path (as received, percent-encoded). With `normalize`
/// (every service but S3) dot segments and repeated slashes are removed and the path is
/// encoded again, so `%20` becomes `%2520`. Without it (S3) the path is encoded exactly once.
pub fn canonical_uri(raw_path: &str, normalize: bool) -> String {
    canonical_uri_styled(raw_path, normalize, DotStyle::Rfc3986)
}

pub(crate) fn canonical_uri_styled(raw_path: &str, normalize: bool, style: DotStyle) -> String {
    let path = if normalize {
        let cleaned = remove_dot_segments(raw_path, style);
        encode_component(cleaned.as_bytes(), true)
    } else {
        encode_component(&percent_decode(raw_path), true)
    };
    if path.is_empty() {
        "/".to_owned()
    } else {
        path
    }
}

/// The canonical query string of a raw query (without `?`): each name and value decoded and
/// encoded again, sorted by name then value. `exclude` names a parameter left out (the
/// signature of a presigned request).
pub fn canonical_query(raw_query: &str, exclude: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode(name);
            if exclude.is_some_and(|x| x.as_bytes() == name.as_slice()) {
                return None;
            }
            Some((
                encode_component(&name, false),
                encode_component(&percent_decode(value), false),
            ))
        })
        .collect();
    pairs.sort();
    let mut out = String::with_capacity(raw_query.len());
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// The canonical headers block: for each signed name, every value of that header, trimmed
/// with inner whitespace runs collapsed, joined by `,`. Fails with the first signed header the
/// request lacks.
pub(crate) fn canonical_headers<'a, S: AsRef<str>>(
    headers: &HeaderMap,
    signed: &'a [S],
) -> Result<String, &'a str> {
    let mut out = String::new();
    for name in signed {
        let name = name.as_ref();
        let mut values = headers.get_all(name).iter().peekable();
        if values.peek().is_none() {
            return Err(name);
        }
        out.push_str(name);
        out.push(':');
        for (i, value) in values.enumerate() {
            if i > 0 {
                out.push(',');
            }
            let text = String::from_utf8_lossy(value.as_bytes());
            for (j, word) in text.split_whitespace().enumerate() {
                if j > 0 {
                    out.push(' ');
                }
                out.push_str(word);
            }
        }
        out.push('\n');
    }
    Ok(out)
}

/// A canonical request with the signed-headers line it ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalRequest {
    /// The full canonical request text.
    pub text: String,
}

impl CanonicalRequest {
    /// Assembles the six lines.
    pub fn new(
        method: &str,
        canonical_uri: &str,
        canonical_query: &str,
        canonical_headers: &str,
        signed_headers: &str,
        payload_hash: &str,
    ) -> Self {
        let text = format!(
            "{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}"
        );
        Self { text }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(canonical_uri("", true), "/");
        assert_eq!(canonical_uri("/", true), "/");
        assert_eq!(canonical_uri("//example//", true), "/example/");
        assert_eq!(canonical_uri("/example1/example2/../..", true), "/");
        assert_eq!(canonical_uri("/./example/.", true), "/example/");
        assert_eq!(
            canonical_uri_styled("/./example/.", true, DotStyle::Botocore),
            "/example"
        );
        assert_eq!(canonical_uri("/a/..", true), "/");
        assert_eq!(
            canonical_uri("/clusters/my%20cluster%2Fx", true),
            "/clusters/my%2520cluster%252Fx"
        );
        assert_eq!(
            canonical_uri("/example/$delete", true),
            "/example/%24delete"
        );
        assert_eq!(canonical_uri("/my%20key", false), "/my%20key");
    }

    #[test]
    fn queries() {
        assert_eq!(canonical_query("", None), "");
        assert_eq!(canonical_query("b=2&a=1&a=0", None), "a=0&a=1&b=2");
        assert_eq!(canonical_query("k", None), "k=");
        assert_eq!(canonical_query("x=a+b", None), "x=a%2Bb");
        assert_eq!(canonical_query("x=a%20b", None), "x=a%20b");
        assert_eq!(canonical_query("%E1%88%B4=bar", None), "%E1%88%B4=bar");
        assert_eq!(
            canonical_query("a=1&X-Amz-Signature=abc", Some("X-Amz-Signature")),
            "a=1"
        );
        assert_eq!(canonical_query("a=%zz", None), "a=%25zz");
    }
}
