//! The IAM operations, by entity. Callers authorize first; these enforce IAM's own rules.

mod policies;
mod providers;
mod roles;
mod users;

pub use policies::PolicyScope;
pub use roles::{NewRole, ROLE_USE_INTERVAL, RoleUpdate};
pub use users::NewUser;

use podiam_policy::{PolicyType, parse_as};

use crate::IamError;

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paged<T> {
    /// The items.
    pub items: Vec<T>,
    /// Where the next page starts (`Marker`), when there is one.
    pub marker: Option<String>,
}

/// One page of `map`'s entries that `keep`, after `marker`: the start is found in the map, so
/// a page costs what it holds, not the entries before it (paging through 100,000 roles cloned
/// every earlier key for each page before).
pub(crate) fn paginate_map<V, T>(
    map: &std::collections::BTreeMap<String, V>,
    marker: Option<&str>,
    max: usize,
    keep: impl Fn(&V) -> bool,
    item: impl Fn(&V) -> T,
) -> Paged<T> {
    use std::ops::Bound::{Excluded, Unbounded};
    let max = max.clamp(1, 1000);
    let after = marker.map_or(Unbounded, Excluded);
    let mut kept = map
        .range::<str, _>((after, Unbounded))
        .filter(|(_, value)| keep(value));
    let mut items = Vec::new();
    let mut last = None;
    for (key, value) in kept.by_ref().take(max) {
        last = Some(key);
        items.push(item(value));
    }
    let more = kept.next().is_some();
    Paged {
        items,
        marker: if more { last.cloned() } else { None },
    }
}

/// Pages through `(sort key, item)` pairs in sort order.
pub(crate) fn paginate<T>(
    items: impl Iterator<Item = (String, T)>,
    marker: Option<&str>,
    max: usize,
) -> Paged<T> {
    let max = max.clamp(1, 1000);
    let mut out = Vec::new();
    let mut last = None;
    let mut more = false;
    for (key, item) in items.filter(|(k, _)| marker.is_none_or(|m| k.as_str() > m)) {
        if out.len() == max {
            more = true;
            break;
        }
        last = Some(key);
        out.push(item);
    }
    Paged {
        items: out,
        marker: if more { last } else { None },
    }
}

/// `/` or `/segment/…/`, printable ASCII, at most 512 characters.
pub(crate) fn check_path(path: &str) -> Result<(), IamError> {
    let valid = path.len() <= 512
        && path.starts_with('/')
        && path.ends_with('/')
        && path.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if valid {
        Ok(())
    } else {
        Err(IamError::InvalidInput(format!(
            "The specified value for path is invalid. It must begin and end with / and contain only printable characters: {path}"
        )))
    }
}

/// IAM's tag rules: at most 50, unique keys, no `aws:` prefix.
pub(crate) fn check_tags(tags: &[(String, String)]) -> Result<(), IamError> {
    if tags.len() > 50 {
        return Err(IamError::LimitExceeded(
            "The number of tags has reached the maximum limit.".to_owned(),
        ));
    }
    let tag_char = |c: char| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
    for (i, (key, value)) in tags.iter().enumerate() {
        if key.is_empty() || key.chars().count() > 128 || !key.chars().all(tag_char) {
            return Err(IamError::InvalidInput(format!(
                "The tag key {key:?} is not valid: 1-128 letters, digits, spaces and _.:/=+-@"
            )));
        }
        if value.chars().count() > 256 || !value.chars().all(tag_char) {
            return Err(IamError::InvalidInput(format!(
                "The value of tag {key:?} is not valid: up to 256 letters, digits, spaces and _.:/=+-@"
            )));
        }
        if key.to_lowercase().starts_with("aws:") {
            return Err(IamError::InvalidInput(
                "Tag keys starting with 'aws:' are reserved for AWS use.".to_owned(),
            ));
        }
        if tags
            .iter()
            .take(i)
            .any(|(k, _)| k.eq_ignore_ascii_case(key))
        {
            return Err(IamError::InvalidInput(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive."
                    .to_owned(),
            ));
        }
    }
    Ok(())
}

/// Merges `new` tags into `tags` (same key, case-insensitively, is replaced).
pub(crate) fn merge_tags(tags: &mut Vec<(String, String)>, new: &[(String, String)]) {
    for (k, v) in new {
        tags.retain(|(existing, _)| !existing.eq_ignore_ascii_case(k));
        tags.push((k.clone(), v.clone()));
    }
}

/// Parses and checks a document as a policy of `kind`.
pub(crate) fn check_policy(text: &str, kind: PolicyType) -> Result<(), IamError> {
    parse_as(text, kind).map(|_| ()).map_err(IamError::from)
}

/// IAM's names: 1-64 (or `max`) characters of letters, digits and `+=,.@_-`.
pub(crate) fn check_name(what: &str, name: &str, max: usize) -> Result<(), IamError> {
    let valid = (1..=max).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if valid {
        Ok(())
    } else {
        Err(IamError::InvalidInput(format!(
            "The specified value for {what} is invalid: {name:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn map_pages_cover_every_kept_entry_once_in_order() {
        let map: BTreeMap<String, u32> = (0..250).map(|i| (format!("k{i:03}"), i)).collect();
        let even = |v: &u32| v.is_multiple_of(2);
        let mut seen = Vec::new();
        let mut marker: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = paginate_map(&map, marker.as_deref(), 40, even, |v| *v);
            pages += 1;
            assert!(page.items.len() <= 40);
            seen.extend(page.items);
            match page.marker {
                Some(m) => marker = Some(m),
                None => break,
            }
        }
        assert_eq!(
            seen,
            (0..250)
                .filter(|i: &u32| i.is_multiple_of(2))
                .collect::<Vec<_>>()
        );
        assert_eq!(pages, 4, "125 entries in pages of 40");
        // A full last page says there is no more only when nothing is left.
        let exact = paginate_map(&map, Some("k169"), 40, even, |v| *v);
        assert_eq!(exact.items.len(), 40);
        assert_eq!(exact.marker, None);
        // A marker whose key is gone (deleted meanwhile) resumes after it.
        let gone = paginate_map(&map, Some("k100x"), 2, |_| true, |v| *v);
        assert_eq!(gone.items, [101, 102]);
        assert_eq!(gone.marker.as_deref(), Some("k102"));
        // The page size is IAM's: 1 to 1000.
        assert_eq!(paginate_map(&map, None, 0, |_| true, |v| *v).items, [0]);
    }
}
