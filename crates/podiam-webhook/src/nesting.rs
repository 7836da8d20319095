//! A linear look at how deeply a YAML or JSON text nests its flow collections, before a parser
//! sees it. libyaml (under `serde_yaml_ng`) tracks a possible key per open flow level and
//! re-checks them all at each token, so deeply nested `[[[…` or `{a: {a: …` costs time
//! quadratic in the input, and its depth limit applies only after scanning. This pass is one
//! walk over the bytes.

/// The deepest flow nesting a manifest may have (Kubernetes objects need a handful).
pub const MAX_NESTING: usize = 64;

/// Refuses a text whose `[`/`{` nesting exceeds `max`, counting outside quoted scalars and
/// comments. It over-counts brackets inside plain and block scalars, which only makes it
/// stricter.
pub fn check_nesting(text: &str, max: usize) -> Result<(), String> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    let mut line = 1usize;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\n' => line += 1,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Err(format!(
                        "nested more than {max} levels deep (line {line}); refused before parsing"
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'#' if i == 0 || bytes.get(i - 1).is_some_and(u8::is_ascii_whitespace) => {
                while bytes.get(i + 1).is_some_and(|&c| c != b'\n') {
                    i += 1;
                }
            }
            b'"' => {
                i += 1;
                while let Some(&c) = bytes.get(i) {
                    match c {
                        b'\\' => i += 1,
                        b'"' => break,
                        b'\n' => line += 1,
                        _ => {}
                    }
                    i += 1;
                }
            }
            b'\'' if i == 0 || !bytes.get(i - 1).is_some_and(u8::is_ascii_alphanumeric) => {
                i += 1;
                while let Some(&c) = bytes.get(i) {
                    match c {
                        // `''` is an escaped quote inside a single-quoted scalar.
                        b'\'' if bytes.get(i + 1) == Some(&b'\'') => i += 1,
                        b'\'' => break,
                        b'\n' => line += 1,
                        _ => {}
                    }
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_manifests_pass() {
        let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {app: \"a[b\"}}\nspec:\n  containers:\n  - name: c  # a comment with [[[[\n    args: ['[', \"{\", 'it''s']\n    command: [sh, -c, \"echo {}\"]\n";
        assert_eq!(check_nesting(pod, 3), Ok(()));
        let json = r#"{"spec":{"containers":[{"env":[{"name":"A","value":"[[[["}]}]}}"#;
        assert_eq!(check_nesting(json, 6), Ok(()));
        assert!(check_nesting(json, 5).is_err());
    }

    #[test]
    fn deep_flow_nesting_is_refused_wherever_it_is() {
        for text in [
            format!("a: {}{}", "[".repeat(65), "]".repeat(65)),
            format!("a: {}1{}", "{a: ".repeat(65), "}".repeat(65)),
            format!("{{\"a\":{}{}}}", "[".repeat(70), "]".repeat(70)),
            // Unclosed: still counted.
            "[".repeat(1_000_000),
        ] {
            let refused = check_nesting(&text, MAX_NESTING);
            assert!(refused.is_err(), "{}", text.get(..40).unwrap_or_default());
        }
        // Quoted brackets and comments are not nesting.
        let quoted = format!(
            "a: \"{}\"\nb: '{}'\n# {}\n",
            "[".repeat(500),
            "{".repeat(500),
            "[".repeat(500)
        );
        assert_eq!(check_nesting(&quoted, MAX_NESTING), Ok(()));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "[\\[\\]{}\"'#\\\\a \n]{0,400}") {
            let _ = check_nesting(&text, 8);
        }
    }
}
