//! The awsQuery request: a form-encoded body (or query string) of `Action`, `Version` and
//! parameters, with `Name.member.N` lists and `Name.member.N.Field` structures.

use std::collections::BTreeMap;

use crate::WireError;

/// The largest request body accepted (larger is answered 413).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The largest body of a request that is not (yet) known to be signed by a known key: enough
/// for an unsigned `AssumeRoleWithWebIdentity` with its longest token, policy and policy ARNs.
pub const MAX_UNSIGNED_BODY_BYTES: usize = 64 * 1024;

/// The most parameters a request may carry.
const MAX_PARAMS: usize = 2000;

/// A decoded awsQuery request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRequest {
    action: String,
    version: String,
    params: BTreeMap<String, String>,
}

fn validation(message: String) -> WireError {
    WireError::validation(message)
}

/// A list index: `1`, `2`, … (no sign, no leading zero, so `01` cannot shadow `1`).
fn member_index(key: &str, index: &str) -> Result<u32, WireError> {
    let canonical =
        !index.is_empty() && !index.starts_with('0') && index.bytes().all(|b| b.is_ascii_digit());
    canonical
        .then(|| index.parse::<u32>().ok())
        .flatten()
        .ok_or_else(|| validation(format!("{key} is not a list member")))
}

impl QueryRequest {
    /// Decodes a form body (`+` is a space, `%XX` escapes). A parameter given twice is an
    /// error rather than a silent choice.
    pub fn parse(form: &[u8]) -> Result<Self, WireError> {
        let mut params = BTreeMap::new();
        for (i, (name, value)) in form_urlencoded::parse(form).enumerate() {
            if i >= MAX_PARAMS {
                return Err(validation(format!(
                    "a request has at most {MAX_PARAMS} parameters"
                )));
            }
            if params
                .insert(name.to_string(), value.into_owned())
                .is_some()
            {
                return Err(WireError::new(
                    "InvalidParameterCombination",
                    400,
                    format!("parameter {name} appears more than once"),
                ));
            }
        }
        let action = params
            .remove("Action")
            .ok_or_else(|| WireError::new("MissingAction", 400, "Missing Action".to_owned()))?;
        let version = params.remove("Version").unwrap_or_default();
        Ok(Self {
            action,
            version,
            params,
        })
    }

    /// `Action`.
    pub fn action(&self) -> &str {
        &self.action
    }

    /// `Version` (empty when absent).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// A parameter, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// Removes the signature parameters of a presigned request from view.
    pub fn without_auth_params(mut self) -> Self {
        self.params.retain(|k, _| !k.starts_with("X-Amz-"));
        self
    }

    /// `Name.member.1`, `Name.member.2`, … in order; an empty list is sent as `Name=`.
    pub fn list(&self, name: &str) -> Result<Vec<String>, WireError> {
        let prefix = format!("{name}.member.");
        let mut items: Vec<(u32, &String)> = Vec::new();
        for (key, value) in self.params.range(prefix.clone()..) {
            let Some(index) = key.strip_prefix(&prefix) else {
                break;
            };
            if index.contains('.') {
                continue;
            }
            items.push((member_index(key, index)?, value));
        }
        items.sort_by_key(|(n, _)| *n);
        Ok(items.into_iter().map(|(_, v)| v.clone()).collect())
    }

    /// `Name.member.N.Field` structures, as maps from field to value, in member order.
    pub fn structs(&self, name: &str) -> Result<Vec<BTreeMap<String, String>>, WireError> {
        let prefix = format!("{name}.member.");
        let mut members: BTreeMap<u32, BTreeMap<String, String>> = BTreeMap::new();
        for (key, value) in self.params.range(prefix.clone()..) {
            let Some(rest) = key.strip_prefix(&prefix) else {
                break;
            };
            let Some((index, field)) = rest.split_once('.') else {
                continue;
            };
            let n = member_index(key, index)?;
            members
                .entry(n)
                .or_default()
                .insert(field.to_owned(), value.clone());
        }
        Ok(members.into_values().collect())
    }

    /// `Tags.member.N.Key` / `.Value` pairs.
    pub fn tags(&self, name: &str) -> Result<Vec<(String, String)>, WireError> {
        self.structs(name)?
            .into_iter()
            .map(|mut m| {
                let key = m
                    .remove("Key")
                    .ok_or_else(|| validation(format!("{name}: a tag needs a Key")))?;
                Ok((key, m.remove("Value").unwrap_or_default()))
            })
            .collect()
    }
}

const TAG_PATTERN_KEY: &str = "[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+";
const TAG_PATTERN_VALUE: &str = "[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*";

/// `\p{L}`, `\p{Z}`, `\p{N}` or one of `_.:/=+-@`.
fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric() || (c.is_whitespace() && !c.is_control()) || "_.:/=+-@".contains(c)
}

/// Collects constraint violations and reports them as AWS does:
/// `2 validation errors detected: Value '…' at 'roleName' failed to satisfy constraint: …; …`.
#[derive(Debug, Default)]
pub struct Validation {
    errors: Vec<String>,
}

/// The model's member name in messages: `RoleSessionName` → `roleSessionName`.
fn member(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

fn shown(value: &str) -> String {
    let short: String = value.chars().take(100).collect();
    format!("'{short}'")
}

impl Validation {
    /// A fresh collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// A required parameter.
    pub fn required<'a>(&mut self, request: &'a QueryRequest, name: &str) -> &'a str {
        match request.get(name) {
            Some(v) => v,
            None => {
                self.errors.push(format!(
                    "Value null at '{}' failed to satisfy constraint: Member must not be null",
                    member(name)
                ));
                ""
            }
        }
    }

    /// Length between `min` and `max` characters.
    pub fn length(&mut self, name: &str, value: &str, min: usize, max: usize) {
        let len = value.chars().count();
        if len < min {
            self.errors.push(format!(
                "Value {} at '{}' failed to satisfy constraint: Member must have length greater than or equal to {min}",
                shown(value),
                member(name)
            ));
        } else if len > max {
            self.errors.push(format!(
                "Value {} at '{}' failed to satisfy constraint: Member must have length less than or equal to {max}",
                shown(value),
                member(name)
            ));
        }
    }

    /// Every character satisfies `allowed`; `pattern` is the model's regular expression.
    pub fn pattern(
        &mut self,
        name: &str,
        value: &str,
        pattern: &str,
        allowed: impl Fn(char) -> bool,
    ) {
        if !value.chars().all(allowed) {
            self.errors.push(format!(
                "Value {} at '{}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}",
                shown(value),
                member(name)
            ));
        }
    }

    /// An integer parameter within a range.
    pub fn integer(
        &mut self,
        request: &QueryRequest,
        name: &str,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        let text = request.get(name)?;
        match text.parse::<i64>() {
            Ok(v) if v < min => {
                self.errors.push(format!(
                    "Value '{v}' at '{}' failed to satisfy constraint: Member must have value greater than or equal to {min}",
                    member(name)
                ));
                None
            }
            Ok(v) if v > max => {
                self.errors.push(format!(
                    "Value '{v}' at '{}' failed to satisfy constraint: Member must have value less than or equal to {max}",
                    member(name)
                ));
                None
            }
            Ok(v) => Some(v),
            Err(_) => {
                self.errors.push(format!(
                    "Value {} at '{}' failed to satisfy constraint: Member must be a number",
                    shown(text),
                    member(name)
                ));
                None
            }
        }
    }

    /// A boolean parameter (`true`/`false`).
    pub fn boolean(&mut self, request: &QueryRequest, name: &str) -> Option<bool> {
        match request.get(name)? {
            "true" => Some(true),
            "false" => Some(false),
            other => {
                self.errors.push(format!(
                    "Value {} at '{}' failed to satisfy constraint: Member must be true or false",
                    shown(other),
                    member(name)
                ));
                None
            }
        }
    }

    /// One of `allowed`.
    pub fn one_of(&mut self, name: &str, value: &str, allowed: &[&str]) {
        if !allowed.contains(&value) {
            self.errors.push(format!(
                "Value {} at '{}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                shown(value),
                member(name),
                allowed.join(", ")
            ));
        }
    }

    /// Tags as the model allows them: at most 50; keys 1–128 and values 0–256 characters of
    /// `[\p{L}\p{Z}\p{N}_.:/=+\-@]`.
    pub fn tags(&mut self, name: &str, tags: &[(String, String)]) {
        if tags.len() > 50 {
            self.errors.push(format!(
                "Value at '{}' failed to satisfy constraint: Member must have length less than or equal to 50",
                member(name)
            ));
        }
        for (key, value) in tags {
            self.tag_key(&format!("{name}.member.Key"), key);
            self.length(&format!("{name}.member.Value"), value, 0, 256);
            self.pattern(
                &format!("{name}.member.Value"),
                value,
                TAG_PATTERN_VALUE,
                is_tag_char,
            );
        }
    }

    /// A tag key (1–128 characters of the tag alphabet).
    pub fn tag_key(&mut self, name: &str, key: &str) {
        self.length(name, key, 1, 128);
        self.pattern(name, key, TAG_PATTERN_KEY, is_tag_char);
    }

    /// A free-form violation.
    pub fn fail(&mut self, message: String) {
        self.errors.push(message);
    }

    /// The `ValidationError` for everything collected, if anything was.
    pub fn finish(self) -> Result<(), WireError> {
        match self.errors.len() {
            0 => Ok(()),
            n => Err(validation(format!(
                "{n} validation error{} detected: {}",
                if n == 1 { "" } else { "s" },
                self.errors.join("; ")
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_forms_lists_and_structs() {
        let body = b"Action=CreateRole&Version=2010-05-08&RoleName=r1&Path=%2F&Description=a+b%2Bc&Tags.member.1.Key=k1&Tags.member.1.Value=v1&Tags.member.2.Key=k2&Tags.member.2.Value=v+2&ClientIDList.member.2=b&ClientIDList.member.1=a&ClientIDList.member.10=c";
        let q = QueryRequest::parse(body).unwrap();
        assert_eq!(q.action(), "CreateRole");
        assert_eq!(q.version(), "2010-05-08");
        assert_eq!(q.get("Path"), Some("/"));
        assert_eq!(q.get("Description"), Some("a b+c"));
        assert_eq!(
            q.tags("Tags").unwrap(),
            [("k1".into(), "v1".into()), ("k2".into(), "v 2".into())]
        );
        assert_eq!(q.list("ClientIDList").unwrap(), ["a", "b", "c"]);
        assert!(q.list("Missing").unwrap().is_empty());
    }

    #[test]
    fn refuses_repeats_and_missing_action() {
        assert_eq!(
            QueryRequest::parse(b"Version=1").unwrap_err().code,
            "MissingAction"
        );
        assert_eq!(
            QueryRequest::parse(b"Action=A&Action=B").unwrap_err().code,
            "InvalidParameterCombination"
        );
        let shadow = QueryRequest::parse(b"Action=A&L.member.1=a&L.member.01=b").unwrap();
        assert_eq!(shadow.list("L").unwrap_err().code, "ValidationError");
        let signed = QueryRequest::parse(b"Action=A&T.member.+1.Key=k").unwrap();
        assert_eq!(signed.tags("T").unwrap_err().code, "ValidationError");
        assert!(
            QueryRequest::parse(b"Action=A&L.member.x=1")
                .unwrap()
                .list("L")
                .is_err()
        );
    }

    #[test]
    fn validation_messages() {
        let q = QueryRequest::parse(
            b"Action=AssumeRole&RoleSessionName=my session&DurationSeconds=100",
        )
        .unwrap();
        let mut v = Validation::new();
        let arn = v.required(&q, "RoleArn");
        assert_eq!(arn, "");
        let name = q.get("RoleSessionName").unwrap();
        v.pattern("RoleSessionName", name, "[\\w+=,.@-]*", |c| {
            c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
        });
        v.integer(&q, "DurationSeconds", 900, 43200);
        let err = v.finish().unwrap_err();
        assert_eq!(err.code, "ValidationError");
        assert_eq!(err.status, 400);
        assert_eq!(
            err.message,
            "3 validation errors detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null; Value 'my session' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*; Value '100' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #[test]
            fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
                if let Ok(q) = QueryRequest::parse(&body) {
                    let _ = q.list("A");
                    let _ = q.structs("A");
                    let _ = q.tags("A");
                }
            }

            #[test]
            fn encoded_parameters_round_trip(
                action in "[A-Za-z]{1,30}",
                params in proptest::collection::btree_map("[A-Za-z.0-9]{1,20}", ".{0,40}", 0..10),
            ) {
                let mut form = form_urlencoded::Serializer::new(String::new());
                form.append_pair("Action", &action);
                for (k, v) in &params {
                    if k != "Action" && k != "Version" {
                        form.append_pair(k, v);
                    }
                }
                let q = QueryRequest::parse(form.finish().as_bytes()).unwrap();
                prop_assert_eq!(q.action(), action.as_str());
                for (k, v) in &params {
                    if k != "Action" && k != "Version" {
                        prop_assert_eq!(q.get(k), Some(v.as_str()));
                    }
                }
            }

            #[test]
            fn lists_come_back_in_member_order(values in proptest::collection::vec("[a-z]{0,8}", 1..30)) {
                let mut form = form_urlencoded::Serializer::new(String::new());
                form.append_pair("Action", "X");
                // Send the members in reverse to show the order comes from the index.
                for (i, v) in values.iter().enumerate().rev() {
                    form.append_pair(&format!("L.member.{}", i + 1), v);
                }
                let q = QueryRequest::parse(form.finish().as_bytes()).unwrap();
                prop_assert_eq!(q.list("L").unwrap(), values);
            }
        }
    }
}
