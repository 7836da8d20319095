//! Strict check of a DynamoDB (or DynamoDB Streams) request body against the API's request
//! shapes, so the gateway and DynamoDB can never read one body two ways.
//!
//! The shapes are generated from botocore (`model/dynamodb.json`, `model/dynamodbstreams.json`)
//! and parsed once. [`check`] walks the body with serde, streaming, and never builds a tree of
//! it: the body is hostile, up to 16 MiB, and checked before the caller is authenticated. What
//! it keeps is bounded by the input: one bit per member of each open structure, the keys of
//! each open map (their text plus 8 bytes each: about 20 MiB for a 16 MiB map of short keys)
//! and the path to the current value. Nesting is bounded by `serde_json`'s recursion limit (128).
//!
//! Refused:
//! - a body that is not one JSON object (an empty or all-whitespace body counts as `{}`), or
//!   has trailing data; a duplicate key at any depth (after escapes are decoded); a member a
//!   structure does not define; a value of the wrong JSON type (all
//!   [`GatewayError::Serialization`]);
//! - a missing required member, a list or map longer than its `max`, and an `AttributeValue`
//!   without exactly one data type ([`GatewayError::Validation`], in DynamoDB's words).
//!
//! A structure member whose value is `null` counts as absent, as DynamoDB does (AWS SDKs never
//! send one). A `null` list element or map value is a type error: no SDK sends one either, and
//! refusing it leaves nothing for DynamoDB to interpret. Strings are not checked against their
//! length, pattern or enum: DynamoDB does that itself. Serialization errors win over validation
//! errors, as DynamoDB deserializes the whole body before validating it: a validation error is
//! remembered and only returned once the whole body has been read.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::GatewayError;

/// Which API a target belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// DynamoDB (`DynamoDB_20120810.*`).
    DynamoDb,
    /// DynamoDB Streams (`DynamoDBStreams_20120810.*`).
    Streams,
}

/// How much of a hostile value is echoed back in an error message.
const ECHO_LEN: usize = 256;

/// How much of a hostile map key is echoed in a member path.
const KEY_ECHO_LEN: usize = 64;

/// The most members a structure may have: which ones were seen is kept in a `u128`.
const MAX_MEMBERS: usize = 128;

static DYNAMODB: LazyLock<Result<Model, String>> =
    LazyLock::new(|| Model::parse(include_str!("../model/dynamodb.json")));

static STREAMS: LazyLock<Result<Model, String>> =
    LazyLock::new(|| Model::parse(include_str!("../model/dynamodbstreams.json")));

/// Checks `body` against the input shape of `operation` (`GetItem`, without the target
/// prefix) of `api`. Never panics, whatever the input.
///
/// # Errors
///
/// [`GatewayError::UnknownOperation`] for an operation the model does not define,
/// [`GatewayError::Serialization`] for a body that does not match the operation's input shape
/// (see the module documentation), and [`GatewayError::Validation`] for a missing required
/// member, a list or map over its maximum length, or an `AttributeValue` without exactly one
/// data type.
pub fn check(api: Api, operation: &str, body: &[u8]) -> Result<(), GatewayError> {
    let model = match api {
        Api::DynamoDb => &*DYNAMODB,
        Api::Streams => &*STREAMS,
    };
    check_with(model, operation, body)
}

/// [`check`] against a given (possibly broken) model.
fn check_with(
    model: &Result<Model, String>,
    operation: &str,
    body: &[u8],
) -> Result<(), GatewayError> {
    let model = model.as_ref().map_err(|e| {
        GatewayError::Serialization(format!("the request model is unusable: {}", clip(e)))
    })?;
    let input = model
        .input(operation)
        .ok_or_else(|| GatewayError::UnknownOperation(clip(operation)))?;
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let ctx = Ctx {
        model,
        pending: Cell::new(None),
    };
    let seed = Value {
        ctx: &ctx,
        shape: input,
        path: Path::Root,
        nullable: false,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    seed.deserialize(&mut de)
        .and_then(|_| de.end())
        .map_err(|e| GatewayError::Serialization(clip(&e.to_string())))?;
    ctx.pending.take().map_or(Ok(()), Err)
}

// ---------------------------------------------------------------------------------------------
// The model: shapes indexed by number, members and operations sorted by name.

#[derive(Debug)]
struct Model {
    shapes: Vec<Shape>,
    /// Operation name and input shape, sorted by name.
    operations: Vec<(Box<str>, usize)>,
    /// The shape named `AttributeValue`, which must have exactly one member set.
    attribute_value: Option<usize>,
}

#[derive(Debug)]
struct Shape {
    name: Box<str>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Structure {
        /// Member name and shape, sorted by name; at most [`MAX_MEMBERS`].
        members: Vec<(Box<str>, usize)>,
        /// Indexes into `members`, in the model's order (the order DynamoDB reports them).
        required: Vec<usize>,
    },
    List {
        member: usize,
        max: Option<u64>,
    },
    Map {
        value: usize,
        max: Option<u64>,
    },
    String,
    /// A table, index or backup name: DynamoDB's pattern `[a-zA-Z0-9_.-]+` and length bounds,
    /// the one string constraint checked here (a name ends up in an ARN and in other
    /// upstreams' parsers; everything else DynamoDB validates itself).
    Name {
        min: u64,
        max: u64,
    },
    Blob,
    Boolean,
    Integer,
    Long,
    Double,
    Timestamp,
}

/// The generated model file, as written.
#[derive(Deserialize)]
struct RawModel {
    operations: BTreeMap<String, Option<String>>,
    shapes: BTreeMap<String, RawShape>,
}

#[derive(Deserialize)]
struct RawShape {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    members: BTreeMap<String, String>,
    #[serde(default)]
    required: Vec<String>,
    member: Option<String>,
    key: Option<String>,
    value: Option<String>,
    max: Option<serde_json::Number>,
    min: Option<serde_json::Number>,
    pattern: Option<String>,
}

/// The pattern the model gives DynamoDB's names.
const NAME_PATTERN: &str = "[a-zA-Z0-9_.-]+";

impl Model {
    /// Parses a generated model, checking that every shape it refers to exists.
    fn parse(text: &str) -> Result<Self, String> {
        let raw: RawModel = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let names: Vec<&str> = raw.shapes.keys().map(String::as_str).collect();
        let index = |name: &str| {
            names
                .binary_search(&name)
                .map_err(|_| format!("unknown shape {name:?}"))
        };
        let mut shapes = Vec::with_capacity(raw.shapes.len().saturating_add(1));
        for (name, shape) in &raw.shapes {
            let kind = match shape.kind.as_str() {
                "structure" => {
                    if shape.members.len() > MAX_MEMBERS {
                        return Err(format!("shape {name:?} has too many members"));
                    }
                    let members = shape
                        .members
                        .iter()
                        .map(|(member, target)| Ok((member.as_str().into(), index(target)?)))
                        .collect::<Result<Vec<(Box<str>, usize)>, String>>()?;
                    let required = shape
                        .required
                        .iter()
                        .map(|r| {
                            members
                                .binary_search_by(|(m, _)| (**m).cmp(r.as_str()))
                                .map_err(|_| format!("shape {name:?} requires unknown {r:?}"))
                        })
                        .collect::<Result<Vec<usize>, String>>()?;
                    Kind::Structure { members, required }
                }
                "list" => Kind::List {
                    member: index(field(name, "member", shape.member.as_ref())?)?,
                    max: limit(name, shape.max.as_ref())?,
                },
                "map" => {
                    let key = field(name, "key", shape.key.as_ref())?;
                    if raw.shapes.get(key).map(|k| k.kind.as_str()) != Some("string") {
                        return Err(format!("shape {name:?} has a key that is not a string"));
                    }
                    Kind::Map {
                        value: index(field(name, "value", shape.value.as_ref())?)?,
                        max: limit(name, shape.max.as_ref())?,
                    }
                }
                "string" if shape.pattern.as_deref() == Some(NAME_PATTERN) => Kind::Name {
                    min: limit(name, shape.min.as_ref())?.unwrap_or(1),
                    max: limit(name, shape.max.as_ref())?.unwrap_or(u64::MAX),
                },
                "string" => Kind::String,
                "blob" => Kind::Blob,
                "boolean" => Kind::Boolean,
                "integer" => Kind::Integer,
                "long" => Kind::Long,
                "double" => Kind::Double,
                "timestamp" => Kind::Timestamp,
                other => return Err(format!("shape {name:?} has unknown type {other:?}")),
            };
            shapes.push(Shape {
                name: name.as_str().into(),
                kind,
            });
        }
        let is_structure = |shapes: &[Shape], i: usize| {
            matches!(shapes.get(i).map(|s| &s.kind), Some(Kind::Structure { .. }))
        };
        let attribute_value = names.binary_search(&"AttributeValue").ok();
        if let Some(i) = attribute_value
            && !is_structure(&shapes, i)
        {
            return Err("AttributeValue is not a structure".to_owned());
        }
        // An operation without input takes an empty structure.
        let mut empty = None;
        let mut operations = Vec::with_capacity(raw.operations.len());
        for (operation, input) in &raw.operations {
            let shape = match input {
                Some(input) => {
                    let i = index(input)?;
                    if !is_structure(&shapes, i) {
                        return Err(format!("input of {operation:?} is not a structure"));
                    }
                    i
                }
                None => *empty.get_or_insert_with(|| {
                    shapes.push(Shape {
                        name: format!("{operation}Input").into(),
                        kind: Kind::Structure {
                            members: Vec::new(),
                            required: Vec::new(),
                        },
                    });
                    shapes.len().saturating_sub(1)
                }),
            };
            operations.push((operation.as_str().into(), shape));
        }
        Ok(Model {
            shapes,
            operations,
            attribute_value,
        })
    }

    /// The input shape of `operation`.
    fn input(&self, operation: &str) -> Option<usize> {
        let i = self
            .operations
            .binary_search_by(|(name, _)| (**name).cmp(operation))
            .ok()?;
        self.operations.get(i).map(|&(_, shape)| shape)
    }
}

/// A field a list or map shape must have.
fn field<'r>(shape: &str, field: &str, value: Option<&'r String>) -> Result<&'r str, String> {
    value
        .map(String::as_str)
        .ok_or_else(|| format!("shape {shape:?} has no {field:?}"))
}

/// A list or map's `max`, a count.
fn limit(shape: &str, max: Option<&serde_json::Number>) -> Result<Option<u64>, String> {
    max.map(|n| {
        n.as_u64()
            .ok_or_else(|| format!("shape {shape:?} has a max that is not a count"))
    })
    .transpose()
}

// ---------------------------------------------------------------------------------------------
// The check: a `DeserializeSeed` per value, carrying its shape and path.

/// What one check shares: the model and the first validation error met, returned only once
/// the whole body has been read without a serialization error.
struct Ctx<'m> {
    model: &'m Model,
    pending: Cell<Option<GatewayError>>,
}

impl Ctx<'_> {
    /// Remembers a validation error unless one is already remembered.
    fn defer(&self, error: impl FnOnce() -> GatewayError) {
        let first = self.pending.take().unwrap_or_else(error);
        self.pending.set(Some(first));
    }
}

/// Where a value is in the body, as a linked list on the stack: rendered (DynamoDB-style,
/// `transactItems.1.member.put.tableName`) only for an error.
#[derive(Clone, Copy)]
enum Path<'p> {
    Root,
    Member(&'p Path<'p>, &'p str),
    Index(&'p Path<'p>, usize),
    Key(&'p Path<'p>, &'p str),
}

impl Path<'_> {
    /// How an error names this value: `'key.a'`, or the body itself.
    fn describe(&self) -> String {
        match self {
            Path::Root => "the top level".to_owned(),
            _ => format!("'{self}'"),
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut segments = Vec::new();
        let mut at = self;
        loop {
            match at {
                Path::Root => break,
                Path::Member(parent, _) | Path::Index(parent, _) | Path::Key(parent, _) => {
                    segments.push(at);
                    at = parent;
                }
            }
        }
        let mut rendered = String::new();
        for (i, segment) in segments.iter().rev().enumerate() {
            if i > 0 {
                rendered.push('.');
            }
            match segment {
                Path::Root => {}
                Path::Member(_, name) => {
                    let mut chars = name.chars();
                    if let Some(first) = chars.next() {
                        rendered.extend(first.to_lowercase());
                        rendered.push_str(chars.as_str());
                    }
                }
                Path::Index(_, index) => {
                    rendered.push_str(&index.saturating_add(1).to_string());
                    rendered.push_str(".member");
                }
                Path::Key(_, key) => {
                    rendered.push_str(&clip_to(key, KEY_ECHO_LEN));
                    rendered.push_str(".member");
                }
            }
        }
        f.write_str(&clip_tail(&rendered))
    }
}

/// One value of `shape` at `path`. Deserializes to whether it was present (not `null`).
struct Value<'c, 'p> {
    ctx: &'c Ctx<'c>,
    shape: usize,
    path: Path<'p>,
    /// Whether `null` counts as absent (a structure member) rather than a type error.
    nullable: bool,
}

impl<'c> Value<'c, '_> {
    fn shape<E: serde::de::Error>(&self) -> Result<&'c Shape, E> {
        self.ctx
            .model
            .shapes
            .get(self.shape)
            .ok_or_else(|| E::custom("the request model refers to a missing shape"))
    }

    /// A value of the wrong JSON type.
    fn mismatch<E: serde::de::Error>(&self, found: &str) -> E {
        match self.shape::<E>() {
            Ok(shape) => E::custom(format_args!(
                "Expected {} at {}, found {found}",
                Expected(shape),
                self.path.describe()
            )),
            Err(e) => e,
        }
    }

    fn structure<'de, A: MapAccess<'de>>(
        &self,
        shape: &'c Shape,
        members: &'c [(Box<str>, usize)],
        required: &[usize],
        mut map: A,
    ) -> Result<bool, A::Error> {
        let mut seen = 0u128;
        let mut present = 0u128;
        while let Some(key) = map.next_key_seed(Key)? {
            let (i, (name, member)) = members
                .binary_search_by(|(m, _)| (**m).cmp(&*key))
                .ok()
                .and_then(|i| Some((i, members.get(i)?)))
                .ok_or_else(|| {
                    A::Error::custom(format_args!(
                        "Unexpected member \"{}\" in {}",
                        clip(&key),
                        shape.name
                    ))
                })?;
            let bit = bit(i);
            if seen & bit != 0 {
                return Err(A::Error::custom(format_args!(
                    "Duplicate member \"{name}\" in {}",
                    shape.name
                )));
            }
            seen |= bit;
            let value = Value {
                ctx: self.ctx,
                shape: *member,
                path: Path::Member(&self.path, name),
                nullable: true,
            };
            if map.next_value_seed(value)? {
                present |= bit;
            }
        }
        if let Some(name) = required
            .iter()
            .find(|&&i| present & bit(i) == 0)
            .and_then(|&i| members.get(i))
            .map(|(name, _)| name)
        {
            self.ctx
                .defer(|| not_null(&Path::Member(&self.path, name).to_string()));
        }
        if self.ctx.model.attribute_value == Some(self.shape) {
            match present.count_ones() {
                1 => {}
                0 => self.ctx.defer(|| invalid(EMPTY_ATTRIBUTE_VALUE)),
                _ => self.ctx.defer(|| invalid(AMBIGUOUS_ATTRIBUTE_VALUE)),
            }
        }
        Ok(true)
    }

    fn map<'de, A: MapAccess<'de>>(
        &self,
        shape: &Shape,
        value: usize,
        max: Option<u64>,
        mut map: A,
    ) -> Result<bool, A::Error> {
        let mut keys = Keys::default();
        while let Some(key) = map.next_key_seed(Key)? {
            if max.is_some_and(|max| u64::try_from(keys.len()).map_or(true, |n| n >= max)) {
                // Past the maximum: the rest is only read to find the end of the map.
                self.ctx.defer(|| too_long(&self.path, max));
                map.next_value::<IgnoredAny>()?;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                return Ok(true);
            }
            map.next_value_seed(Value {
                ctx: self.ctx,
                shape: value,
                path: Path::Key(&self.path, &key),
                nullable: false,
            })?;
            keys.push(&key).map_err(A::Error::custom)?;
        }
        if let Some(key) = keys.duplicate() {
            return Err(A::Error::custom(format_args!(
                "Duplicate key \"{}\" in {}",
                clip(key),
                shape.name
            )));
        }
        Ok(true)
    }

    fn list<'de, A: SeqAccess<'de>>(
        &self,
        member: usize,
        max: Option<u64>,
        mut seq: A,
    ) -> Result<bool, A::Error> {
        let mut index = 0usize;
        loop {
            if max.is_some_and(|max| u64::try_from(index).map_or(true, |n| n >= max)) {
                // Past the maximum: the rest is only read to find the end of the list.
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    self.ctx.defer(|| too_long(&self.path, max));
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                }
                return Ok(true);
            }
            let element = Value {
                ctx: self.ctx,
                shape: member,
                path: Path::Index(&self.path, index),
                nullable: false,
            };
            if seq.next_element_seed(element)?.is_none() {
                return Ok(true);
            }
            index = index.saturating_add(1);
        }
    }
}

impl<'de> DeserializeSeed<'de> for Value<'_, '_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Value<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ctx.model.shapes.get(self.shape) {
            Some(shape) => write!(f, "{}", Expected(shape)),
            None => f.write_str("a value"),
        }
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<bool, E> {
        if self.nullable {
            Ok(false)
        } else {
            Err(self.mismatch("null"))
        }
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<bool, E> {
        match self.shape()?.kind {
            Kind::Boolean => Ok(true),
            _ => Err(self.mismatch("a boolean")),
        }
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<bool, E> {
        match self.shape()?.kind {
            Kind::Integer if i32::try_from(v).is_err() => {
                Err(self.mismatch("an integer out of range"))
            }
            Kind::Integer | Kind::Long | Kind::Double | Kind::Timestamp => Ok(true),
            _ => Err(self.mismatch("a number")),
        }
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<bool, E> {
        match self.shape()?.kind {
            Kind::Integer if i32::try_from(v).is_err() => {
                Err(self.mismatch("an integer out of range"))
            }
            Kind::Long if i64::try_from(v).is_err() => {
                Err(self.mismatch("an integer out of range"))
            }
            Kind::Integer | Kind::Long | Kind::Double | Kind::Timestamp => Ok(true),
            _ => Err(self.mismatch("a number")),
        }
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<bool, E> {
        match self.shape()?.kind {
            Kind::Double | Kind::Timestamp => Ok(true),
            Kind::Integer | Kind::Long => Err(self.mismatch("a number that is not an integer")),
            _ => Err(self.mismatch("a number")),
        }
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<bool, E> {
        match self.shape()?.kind {
            Kind::String | Kind::Blob | Kind::Timestamp => Ok(true),
            Kind::Name { min, max } => {
                let len = u64::try_from(value.len()).unwrap_or(u64::MAX);
                let rule = if !value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
                {
                    Some(format!(
                        "Member must satisfy regular expression pattern: {NAME_PATTERN}"
                    ))
                } else if len < min {
                    Some(format!(
                        "Member must have length greater than or equal to {min}"
                    ))
                } else if len > max {
                    Some(format!(
                        "Member must have length less than or equal to {max}"
                    ))
                } else {
                    None
                };
                if let Some(rule) = rule {
                    self.ctx.defer(|| {
                        GatewayError::Validation(format!(
                            "1 validation error detected: Value '{}' at '{}' failed to \
                             satisfy constraint: {rule}",
                            clip(value),
                            self.path
                        ))
                    });
                }
                Ok(true)
            }
            _ => Err(self.mismatch("a string")),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        match self.shape()?.kind {
            Kind::List { member, max } => self.list(member, max, seq),
            _ => Err(self.mismatch("an array")),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        let shape = self.shape()?;
        match &shape.kind {
            Kind::Structure { members, required } => self.structure(shape, members, required, map),
            Kind::Map { value, max } => self.map(shape, *value, *max, map),
            _ => Err(self.mismatch("an object")),
        }
    }
}

/// An object key, borrowed from the body unless it contains an escape.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// The keys of one map, to find a duplicate: copied into one buffer, and sorted and compared
/// once the map has been read. That costs 8 bytes per key beside the keys' text, where a hash
/// set of strings costs several times the body when a hostile map has millions of short keys.
#[derive(Default)]
struct Keys {
    text: String,
    /// Start and length of each key in `text`.
    spans: Vec<(u32, u32)>,
}

impl Keys {
    fn len(&self) -> usize {
        self.spans.len()
    }

    fn push(&mut self, key: &str) -> Result<(), &'static str> {
        let start = u32::try_from(self.text.len()).map_err(|_| "map keys too large")?;
        let len = u32::try_from(key.len()).map_err(|_| "map key too large")?;
        self.text.push_str(key);
        self.spans.push((start, len));
        Ok(())
    }

    /// A key that occurs more than once.
    fn duplicate(&mut self) -> Option<&str> {
        fn span(text: &str, (start, len): (u32, u32)) -> &str {
            let start = start as usize;
            text.get(start..start.saturating_add(len as usize))
                .unwrap_or_default()
        }
        let text = self.text.as_str();
        self.spans
            .sort_unstable_by(|&a, &b| span(text, a).cmp(span(text, b)));
        self.spans.windows(2).find_map(|pair| match *pair {
            [a, b] if span(text, a) == span(text, b) => Some(span(text, a)),
            _ => None,
        })
    }
}

/// What a shape expects, for a type error: `structure GetItemInput`, `a string`, ….
struct Expected<'s>(&'s Shape);

impl fmt::Display for Expected<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.0.name;
        match self.0.kind {
            Kind::Structure { .. } => write!(f, "structure {name} (an object)"),
            Kind::List { .. } => write!(f, "list {name} (an array)"),
            Kind::Map { .. } => write!(f, "map {name} (an object)"),
            Kind::String | Kind::Name { .. } => f.write_str("a string"),
            Kind::Blob => f.write_str("a blob (a base64 string)"),
            Kind::Boolean => f.write_str("a boolean"),
            Kind::Integer => f.write_str("an integer"),
            Kind::Long => f.write_str("a long integer"),
            Kind::Double => f.write_str("a number"),
            Kind::Timestamp => f.write_str("a timestamp (a number or a string)"),
        }
    }
}

/// The bit of member `i` of a structure (`i` is below [`MAX_MEMBERS`]).
fn bit(i: usize) -> u128 {
    u32::try_from(i)
        .ok()
        .and_then(|i| 1u128.checked_shl(i))
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Errors, with DynamoDB's wording.

fn not_null(member: &str) -> GatewayError {
    GatewayError::Validation(format!(
        "1 validation error detected: Value null at '{member}' failed to satisfy constraint: \
         Member must not be null"
    ))
}

fn too_long(path: &Path<'_>, max: Option<u64>) -> GatewayError {
    GatewayError::Validation(format!(
        "1 validation error detected: Value at '{path}' failed to satisfy constraint: Member \
         must have length less than or equal to {}",
        max.unwrap_or_default()
    ))
}

const EMPTY_ATTRIBUTE_VALUE: &str =
    "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes";

const AMBIGUOUS_ATTRIBUTE_VALUE: &str = "Supplied AttributeValue has more than one datatypes set, \
     must contain exactly one of the supported datatypes";

fn invalid(reason: &str) -> GatewayError {
    GatewayError::Validation(format!(
        "One or more parameter values were invalid: {reason}"
    ))
}

/// The first [`ECHO_LEN`] characters of a hostile value, for an error message.
fn clip(value: &str) -> String {
    clip_to(value, ECHO_LEN)
}

fn clip_to(value: &str, len: usize) -> String {
    match value.char_indices().nth(len) {
        Some((end, _)) => format!("{}...", value.get(..end).unwrap_or_default()),
        None => value.to_owned(),
    }
}

/// The last [`ECHO_LEN`] characters of a path, which name the member at fault.
fn clip_tail(value: &str) -> Cow<'_, str> {
    match value.char_indices().nth_back(ECHO_LEN) {
        Some((start, c)) => Cow::Owned(format!(
            "...{}",
            value
                .get(start.saturating_add(c.len_utf8())..)
                .unwrap_or_default()
        )),
        None => Cow::Borrowed(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value as Json, json};

    fn ddb(op: &str, body: &str) -> Result<(), GatewayError> {
        check(Api::DynamoDb, op, body.as_bytes())
    }

    fn ser(result: Result<(), GatewayError>) -> String {
        match result {
            Err(GatewayError::Serialization(m)) => m,
            other => panic!("expected a serialization error, got {other:?}"),
        }
    }

    fn val(result: Result<(), GatewayError>) -> String {
        match result {
            Err(GatewayError::Validation(m)) => m,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    const GET: &str = r#"{"TableName":"Music","Key":{"Artist":{"S":"No One You Know"}}}"#;

    // --- the model ---

    #[test]
    fn embedded_models_parse_and_every_referenced_shape_exists() {
        for (text, model) in [
            (include_str!("../model/dynamodb.json"), &*DYNAMODB),
            (include_str!("../model/dynamodbstreams.json"), &*STREAMS),
        ] {
            let model = model.as_ref().unwrap();
            // Independently of `Model::parse`: every name the file refers to is a shape.
            let raw: Json = serde_json::from_str(text).unwrap();
            let shapes = raw["shapes"].as_object().unwrap();
            let mut refs: Vec<&str> = raw["operations"]
                .as_object()
                .unwrap()
                .values()
                .filter_map(Json::as_str)
                .collect();
            for shape in shapes.values() {
                for field in ["member", "key", "value"] {
                    refs.extend(shape[field].as_str());
                }
                if let Some(members) = shape["members"].as_object() {
                    refs.extend(members.values().filter_map(Json::as_str));
                }
            }
            for name in refs {
                assert!(shapes.contains_key(name), "{name} is not defined");
            }
            assert_eq!(
                model.operations.len(),
                raw["operations"].as_object().unwrap().len()
            );
        }
        let ddb = DYNAMODB.as_ref().unwrap();
        assert!(ddb.attribute_value.is_some());
        for op in crate::dynamodb::DYNAMODB_OPERATIONS {
            assert!(ddb.input(op).is_some(), "{op} is not in the model");
        }
        let streams = STREAMS.as_ref().unwrap();
        for op in crate::dynamodb::STREAMS_OPERATIONS {
            assert!(streams.input(op).is_some(), "{op} is not in the model");
        }
    }

    #[test]
    fn a_broken_model_is_an_error_for_every_check_not_a_panic() {
        let broken = [
            "",
            "{}",
            r#"{"operations":{"Op":"Missing"},"shapes":{}}"#,
            r#"{"operations":{"Op":"S"},"shapes":{"S":{"type":"string"}}}"#,
            r#"{"operations":{},"shapes":{"S":{"type":"structure","members":{"A":"X"}}}}"#,
            r#"{"operations":{},"shapes":{"S":{"type":"structure","required":["A"]}}}"#,
            r#"{"operations":{},"shapes":{"L":{"type":"list"}}}"#,
            r#"{"operations":{},"shapes":{"L":{"type":"list","member":"L","max":-1}}}"#,
            r#"{"operations":{},"shapes":{"M":{"type":"map","key":"M","value":"M"}}}"#,
            r#"{"operations":{},"shapes":{"X":{"type":"float"}}}"#,
        ];
        for text in broken {
            let model = Model::parse(text);
            assert!(model.is_err(), "{text}");
            ser(check_with(&model, "Op", b"{}"));
        }
    }

    #[test]
    fn an_operation_without_input_takes_an_empty_object() {
        let model = Model::parse(r#"{"operations":{"Op":null},"shapes":{}}"#);
        check_with(&model, "Op", b" {} ").unwrap();
        let m = ser(check_with(&model, "Op", br#"{"A":1}"#));
        assert!(m.contains(r#"Unexpected member "A" in OpInput"#), "{m}");
    }

    #[test]
    fn unknown_operations_are_refused() {
        assert!(matches!(
            ddb("GetRecords", "{}"),
            Err(GatewayError::UnknownOperation(_))
        ));
        assert!(matches!(
            check(Api::Streams, "GetItem", b"{}"),
            Err(GatewayError::UnknownOperation(_))
        ));
        assert!(matches!(
            ddb(&"x".repeat(10_000), "{}"),
            Err(GatewayError::UnknownOperation(m)) if m.len() < 300
        ));
    }

    // --- rule 1: one JSON object ---

    #[test]
    fn valid_bodies_pass() {
        ddb("GetItem", GET).unwrap();
        ddb("ListTables", "").unwrap();
        ddb("ListTables", " \n\t\r ").unwrap();
        ddb(
            "ListTables",
            r#"{"Limit":10,"ExclusiveStartTableName":"abc"}"#,
        )
        .unwrap();
        ddb(
            "PutItem",
            r##"{"TableName":"T","Item":{"a":{"S":"x"},"b":{"N":"1"},"c":{"B":"AA=="},
                "d":{"SS":["x"]},"e":{"NS":["1"]},"f":{"BS":["AA=="]},"g":{"NULL":true},
                "h":{"BOOL":false},"i":{"L":[{"S":"x"},{"M":{"j":{"N":"2"}}}]},
                "k":{"M":{}}},"ConditionExpression":"attribute_not_exists(a)",
                "ExpressionAttributeNames":{"#a":"a"},"ReturnValues":"ALL_OLD"}"##,
        )
        .unwrap();
        check(
            Api::Streams,
            "GetShardIterator",
            br#"{"StreamArn":"arn","ShardId":"s","ShardIteratorType":"AT_TIMESTAMP","Timestamp":1.5e9}"#,
        )
        .unwrap();
        check(Api::Streams, "ListStreams", b"").unwrap();
    }

    #[test]
    fn the_body_must_be_one_object() {
        for body in [
            "[]",
            "null",
            "1",
            "\"x\"",
            "true",
            "{",
            "{}}",
            "{} {}",
            "{}x",
            "\u{feff}{}",
        ] {
            ser(ddb("ListTables", body));
        }
        ser(check(
            Api::DynamoDb,
            "ListTables",
            b"{\"ExclusiveStartTableName\":\"\xff\"}",
        ));
        ddb("ListTables", " {} \n").unwrap();
        let m = ser(ddb("ListTables", "[]"));
        assert!(m.contains("structure ListTablesInput"), "{m}");
    }

    #[test]
    fn trailing_data_is_refused() {
        let m = ser(ddb("GetItem", &format!("{GET} {{}}")));
        assert!(m.contains("trailing"), "{m}");
        ser(ddb("GetItem", &format!("{GET},")));
    }

    // --- rule 2: duplicates ---

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        let bodies = [
            r#"{"TableName":"a","TableName":"b","Key":{}}"#,
            r#"{"TableName":"a","Table\u004eame":"b","Key":{}}"#,
            r#"{"TableName":null,"TableName":"b","Key":{}}"#,
            r#"{"TableName":"T","Key":{"a":{"S":"x"},"a":{"S":"y"}}}"#,
            r#"{"TableName":"T","Key":{"a":{"S":"x"},"\u0061":{"S":"y"}}}"#,
            r#"{"TableName":"T","Key":{"a":{"S":"x","S":"y"}}}"#,
            r#"{"TableName":"T","Key":{"a":{"M":{"b":{"S":"x"},"b":{"N":"1"}}}}}"#,
            r#"{"TableName":"T","Key":{"a":{"L":[{"M":{"b":{"S":"x"},"b":{"N":"1"}}}]}}}"#,
        ];
        for body in bodies {
            let m = ser(ddb("GetItem", body));
            assert!(m.contains("Duplicate"), "{body}: {m}");
        }
        let puts = [
            r#"{"TableName":"T","Item":{"k":{"S":"x"},"k":{"S":"y"}}}"#,
            r#"{"TableName":"T","Item":{},"ExpressionAttributeValues":{":v":{"S":"x"},":v":{"S":"y"}}}"#,
            r##"{"TableName":"T","Item":{},"ExpressionAttributeNames":{"#n":"a","#n":"b"}}"##,
        ];
        for body in puts {
            let m = ser(ddb("PutItem", body));
            assert!(m.contains("Duplicate"), "{body}: {m}");
        }
        // In a large map too, wherever the duplicate is.
        let names = (0..10_000)
            .map(|i| format!(r##""#{i}":"a""##))
            .collect::<Vec<_>>()
            .join(",");
        let body = |extra: &str| {
            format!(
                r#"{{"TableName":"T","Key":{{}},"ExpressionAttributeNames":{{{names}{extra}}}}}"#
            )
        };
        ddb("GetItem", &body("")).unwrap();
        let m = ser(ddb("GetItem", &body(r##","#5000":"b""##)));
        assert!(
            m.contains(r##"Duplicate key "#5000" in ExpressionAttributeNameMap"##),
            "{m}"
        );
        // Keys that differ only by case are distinct.
        ddb(
            "GetItem",
            r#"{"TableName":"T","Key":{"a":{"S":"x"},"A":{"S":"y"}}}"#,
        )
        .unwrap();
    }

    // --- rule 3: unknown members ---

    #[test]
    fn unknown_members_are_refused_at_any_depth() {
        let m = ser(ddb("GetItem", r#"{"TableName":"T","Key":{},"X":1}"#));
        assert!(
            m.starts_with(r#"Unexpected member "X" in GetItemInput"#),
            "{m}"
        );
        let m = ser(ddb("GetItem", r#"{"tableName":"T","Key":{}}"#));
        assert!(m.contains(r#""tableName" in GetItemInput"#), "{m}");
        let m = ser(ddb("GetItem", r#"{"TableName":"T","Key":{"a":{"s":"x"}}}"#));
        assert!(
            m.contains(r#"Unexpected member "s" in AttributeValue"#),
            "{m}"
        );
        let m = ser(ddb(
            "TransactWriteItems",
            r#"{"TransactItems":[{"Put":{"TableName":"T","Item":{},"Key":{}}}]}"#,
        ));
        assert!(m.contains(r#"Unexpected member "Key" in Put"#), "{m}");
        // An unknown member is refused even when its value is null.
        ser(ddb("GetItem", r#"{"TableName":"T","Key":{},"X":null}"#));
    }

    #[test]
    fn hostile_text_in_messages_is_clipped() {
        let long = "x".repeat(100_000);
        let m = ser(ddb("GetItem", &format!(r#"{{"{long}":1}}"#)));
        assert!(m.len() < 400, "{}", m.len());
        let m = ser(ddb(
            "GetItem",
            &format!(r#"{{"TableName":"T","Key":{{"{long}":1}}}}"#),
        ));
        assert!(m.len() < 600, "{}", m.len());
        let m = ser(ddb(
            "GetItem",
            &format!(r#"{{"TableName":1,"Key":{{}},"Z{long}":1}}"#),
        ));
        assert!(m.len() < 400, "{}", m.len());
        let m = val(ddb(
            "BatchWriteItem",
            &format!(r#"{{"RequestItems":{{"{long}":[{{"PutRequest":{{}}}}]}}}}"#),
        ));
        assert!(
            m.len() < 500 && m.contains(".member.putRequest.item'"),
            "{m}"
        );
    }

    // --- rule 4: types ---

    #[test]
    fn type_mismatches_are_refused() {
        let cases = [
            ("GetItem", r#"{"TableName":1,"Key":{}}"#, "a string"),
            ("GetItem", r#"{"TableName":"T","Key":[]}"#, "map Key"),
            (
                "GetItem",
                r#"{"TableName":"T","Key":{},"ConsistentRead":"true"}"#,
                "a boolean",
            ),
            (
                "GetItem",
                r#"{"TableName":"T","Key":{},"ConsistentRead":1}"#,
                "a boolean",
            ),
            (
                "GetItem",
                r#"{"TableName":"T","Key":{},"AttributesToGet":"a"}"#,
                "list",
            ),
            (
                "GetItem",
                r#"{"TableName":"T","Key":{},"AttributesToGet":{}}"#,
                "list",
            ),
            (
                "GetItem",
                r#"{"TableName":"T","Key":{},"AttributesToGet":[1]}"#,
                "a string",
            ),
            (
                "GetItem",
                r#"{"TableName":"T","Key":{},"AttributesToGet":[null]}"#,
                "null",
            ),
            ("GetItem", r#"{"TableName":"T","Key":{"a":null}}"#, "null"),
            (
                "GetItem",
                r#"{"TableName":"T","Key":{"a":[]}}"#,
                "structure AttributeValue",
            ),
            (
                "GetItem",
                r#"{"TableName":"T","Key":{"a":{"N":1}}}"#,
                "a string",
            ),
            (
                "GetItem",
                r#"{"TableName":"T","Key":{"a":{"B":[1]}}}"#,
                "a blob",
            ),
            (
                "GetItem",
                r#"{"TableName":"T","Key":{"a":{"NULL":"true"}}}"#,
                "a boolean",
            ),
            (
                "GetItem",
                r#"{"TableName":"T","Key":{"a":{"L":{}}}}"#,
                "list",
            ),
            (
                "GetItem",
                r#"{"TableName":"T","Key":{"a":{"M":[]}}}"#,
                "map",
            ),
            ("Query", r#"{"TableName":"T","Limit":"1"}"#, "an integer"),
            (
                "Query",
                r#"{"TableName":"T","Limit":1.0}"#,
                "not an integer",
            ),
            (
                "Query",
                r#"{"TableName":"T","Limit":1e2}"#,
                "not an integer",
            ),
            (
                "Query",
                r#"{"TableName":"T","Limit":2147483648}"#,
                "out of range",
            ),
            (
                "Query",
                r#"{"TableName":"T","Limit":-2147483649}"#,
                "out of range",
            ),
            ("Query", r#"{"TableName":"T","Limit":true}"#, "an integer"),
            (
                "ExportTableToPointInTime",
                r#"{"TableArn":"a","S3Bucket":"b","ExportTime":true}"#,
                "a timestamp",
            ),
            (
                "ExportTableToPointInTime",
                r#"{"TableArn":"a","S3Bucket":"b","ExportTime":{}}"#,
                "a timestamp",
            ),
        ];
        for (op, body, expected) in cases {
            let m = ser(ddb(op, body));
            assert!(m.contains(expected), "{body}: {m}");
        }
        let m = ser(ddb("GetItem", r#"{"TableName":"T","Key":{"a":{"N":1}}}"#));
        assert!(m.contains("at 'key.a.member.n'"), "{m}");
    }

    #[test]
    fn numbers_of_each_kind() {
        ddb("Query", r#"{"TableName":"T","Limit":2147483647}"#).unwrap();
        ddb("Query", r#"{"TableName":"T","Limit":-5}"#).unwrap(); // ranges are DynamoDB's
        let units = |v: &str| {
            format!(r#"{{"TableName":"T","OnDemandThroughput":{{"MaxReadRequestUnits":{v}}}}}"#)
        };
        ddb("UpdateTable", &units("9223372036854775807")).unwrap();
        ddb("UpdateTable", &units("-9223372036854775808")).unwrap();
        ser(ddb("UpdateTable", &units("9223372036854775808")));
        ser(ddb("UpdateTable", &units("1.5")));
        let ts = |v: &str| format!(r#"{{"TableArn":"a","S3Bucket":"b","ExportTime":{v}}}"#);
        for v in [
            "1",
            "-1",
            "1.5",
            "1e9",
            "18446744073709551615",
            "\"2024-01-01T00:00:00Z\"",
        ] {
            ddb("ExportTableToPointInTime", &ts(v)).unwrap();
        }
        ser(ddb("ExportTableToPointInTime", &ts("1e999")));
    }

    #[test]
    fn doubles_accept_any_number() {
        let model = Model::parse(
            r#"{"operations":{"Op":"In"},"shapes":{"In":{"type":"structure","members":{"D":"D"}},"D":{"type":"double"}}}"#,
        );
        for v in ["1", "-1", "1.5", "1e300", "18446744073709551615"] {
            check_with(&model, "Op", format!(r#"{{"D":{v}}}"#).as_bytes()).unwrap();
        }
        ser(check_with(&model, "Op", br#"{"D":"1"}"#));
    }

    #[test]
    fn null_members_are_absent() {
        ddb(
            "ListTables",
            r#"{"Limit":null,"ExclusiveStartTableName":null}"#,
        )
        .unwrap();
        ddb(
            "GetItem",
            r#"{"TableName":"T","Key":{},"ConsistentRead":null}"#,
        )
        .unwrap();
        let m = val(ddb("GetItem", r#"{"TableName":null,"Key":{}}"#));
        assert!(m.contains("'tableName'"), "{m}");
        ddb(
            "GetItem",
            r#"{"TableName":"T","Key":{"a":{"S":"x","N":null}}}"#,
        )
        .unwrap();
    }

    // --- rule 5: required members ---

    #[test]
    fn missing_required_members_are_validation_errors() {
        assert_eq!(
            val(ddb("GetItem", r#"{"Key":{}}"#)),
            "1 validation error detected: Value null at 'tableName' failed to satisfy \
             constraint: Member must not be null"
        );
        // Reported in the model's order.
        let m = val(ddb("GetItem", ""));
        assert!(m.contains("'tableName'"), "{m}");
        let m = val(ddb("GetItem", r#"{"TableName":"T"}"#));
        assert!(m.contains("'key'"), "{m}");
        let m = val(ddb(
            "TransactWriteItems",
            r#"{"TransactItems":[{"Put":{"TableName":"T","Item":{}}},{"Put":{"Item":{}}}]}"#,
        ));
        assert!(
            m.contains("Value null at 'transactItems.2.member.put.tableName'"),
            "{m}"
        );
        let m = val(ddb("BatchGetItem", r#"{"RequestItems":{"T":{}}}"#));
        assert!(m.contains("'requestItems.T.member.keys'"), "{m}");
        let m = val(check(Api::Streams, "GetRecords", b"{}"));
        assert!(m.contains("'shardIterator'"), "{m}");
    }

    #[test]
    fn serialization_errors_win_over_validation_errors() {
        ser(ddb("GetItem", r#"{"Key":{}} x"#));
        ser(ddb("GetItem", r#"{"Key":{"a":{}},"X":1}"#));
        ser(ddb("GetItem", r#"{"Key":{"a":{}},"Key":{}}"#));
        let items = vec![r#"{"Put":{}}"#; 101].join(",");
        ser(ddb(
            "TransactWriteItems",
            &format!(r#"{{"TransactItems":[{items}]"#),
        ));
    }

    // --- rule 6: list and map lengths ---

    #[test]
    fn lists_over_their_maximum_are_validation_errors() {
        let get = r#"{"Get":{"TableName":"T","Key":{}}}"#;
        let items = |n: usize| vec![get; n].join(",");
        ddb(
            "TransactGetItems",
            &format!(r#"{{"TransactItems":[{}]}}"#, items(100)),
        )
        .unwrap();
        let m = val(ddb(
            "TransactGetItems",
            &format!(r#"{{"TransactItems":[{}]}}"#, items(101)),
        ));
        assert_eq!(
            m,
            "1 validation error detected: Value at 'transactItems' failed to satisfy \
             constraint: Member must have length less than or equal to 100"
        );
        // Past the maximum elements are not checked, only read; the body must still parse.
        let m = val(ddb(
            "TransactGetItems",
            &format!(r#"{{"TransactItems":[{},{{"X":1}},[],7]}}"#, items(100)),
        ));
        assert!(m.contains("less than or equal to 100"), "{m}");
        ser(ddb(
            "TransactGetItems",
            &format!(r#"{{"TransactItems":[{},1 2]}}"#, items(100)),
        ));
        // A huge list is refused without being kept.
        let many = vec!["1"; 1_000_000].join(",");
        val(ddb(
            "TransactGetItems",
            &format!(r#"{{"TransactItems":[{}, {many}]}}"#, items(100)),
        ));
        // Lists without a maximum are unbounded (AttributesToGet has only a minimum).
        let names = vec![r#""a""#; 1000].join(",");
        ddb(
            "GetItem",
            &format!(r#"{{"TableName":"T","Key":{{}},"AttributesToGet":[{names}]}}"#),
        )
        .unwrap();
    }

    #[test]
    fn maps_over_their_maximum_are_validation_errors() {
        let tables = |n: usize| {
            (0..n)
                .map(|i| format!(r#""T{i:03}":{{"Keys":[{{}}]}}"#))
                .collect::<Vec<_>>()
                .join(",")
        };
        ddb(
            "BatchGetItem",
            &format!(r#"{{"RequestItems":{{{}}}}}"#, tables(100)),
        )
        .unwrap();
        let m = val(ddb(
            "BatchGetItem",
            &format!(r#"{{"RequestItems":{{{}}}}}"#, tables(101)),
        ));
        assert!(
            m.contains(
                "at 'requestItems' failed to satisfy constraint: Member must have length less \
                 than or equal to 100"
            ),
            "{m}"
        );
    }

    // --- rule 7: AttributeValue ---

    #[test]
    fn an_attribute_value_has_exactly_one_data_type() {
        let m = val(ddb("GetItem", r#"{"TableName":"T","Key":{"a":{}}}"#));
        assert_eq!(
            m,
            "One or more parameter values were invalid: Supplied AttributeValue is empty, must \
             contain exactly one of the supported datatypes"
        );
        let m = val(ddb(
            "GetItem",
            r#"{"TableName":"T","Key":{"a":{"S":null}}}"#,
        ));
        assert!(m.contains("is empty"), "{m}");
        let m = val(ddb(
            "GetItem",
            r#"{"TableName":"T","Key":{"a":{"S":"x","N":"1"}}}"#,
        ));
        assert_eq!(
            m,
            "One or more parameter values were invalid: Supplied AttributeValue has more than \
             one datatypes set, must contain exactly one of the supported datatypes"
        );
        let m = val(ddb(
            "PutItem",
            r#"{"TableName":"T","Item":{"a":{"L":[{"S":"x"},{"NULL":true,"BOOL":true}]}}}"#,
        ));
        assert!(m.contains("more than one"), "{m}");
        let m = val(ddb(
            "Query",
            r#"{"TableName":"T","ExpressionAttributeValues":{":v":{"M":{"x":{}}}}}"#,
        ));
        assert!(m.contains("is empty"), "{m}");
    }

    // --- rule 8: depth ---

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let depth = 10_000;
        let mut body = String::from(r#"{"TableName":"T","Item":{"a":"#);
        for _ in 0..depth {
            body.push_str(r#"{"M":{"a":"#);
        }
        body.push_str(r#"{"S":"x"}"#);
        for _ in 0..depth {
            body.push_str("}}");
        }
        body.push_str("}}");
        let m = ser(ddb("PutItem", &body));
        assert!(m.contains("recursion limit"), "{m}");
        let lists = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        ser(ddb(
            "PutItem",
            &format!(r#"{{"TableName":"T","Item":{{}},"X":{lists}}}"#),
        ));
        ser(ddb(
            "PutItem",
            &format!(r#"{{"TableName":"T","Item":{{"a":{{"L":{lists}}}}}}}"#),
        ));
    }

    // --- properties ---

    fn attribute_value() -> impl Strategy<Value = Json> {
        let name = "[a-zA-Z0-9_:#. \\PC]{0,8}";
        let leaf = prop_oneof![
            "\\PC{0,8}".prop_map(|s| json!({ "S": s })),
            any::<i64>().prop_map(|n| json!({ "N": n.to_string() })),
            "[A-Za-z0-9+/]{0,8}".prop_map(|b| json!({ "B": b })),
            proptest::collection::vec("\\PC{0,4}", 1..4).prop_map(|v| json!({ "SS": v })),
            proptest::collection::vec(any::<u32>().prop_map(|n| n.to_string()), 1..4)
                .prop_map(|v| json!({ "NS": v })),
            proptest::collection::vec("[A-Za-z0-9]{0,4}", 1..4).prop_map(|v| json!({ "BS": v })),
            Just(json!({ "NULL": true })),
            any::<bool>().prop_map(|b| json!({ "BOOL": b })),
        ];
        leaf.prop_recursive(4, 32, 4, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(|v| json!({ "L": v })),
                proptest::collection::btree_map(name, inner, 0..4).prop_map(|m| json!({ "M": m })),
            ]
        })
    }

    fn item() -> impl Strategy<Value = Json> {
        proptest::collection::btree_map("\\PC{0,8}", attribute_value(), 0..6)
            .prop_map(|m| Json::Object(m.into_iter().collect()))
    }

    fn valid_request() -> impl Strategy<Value = (&'static str, Json)> {
        let table = "[a-zA-Z0-9_.-]{3,20}";
        let names = || {
            proptest::collection::btree_map("#[a-z]{1,4}", "[a-z]{1,8}", 1..4)
                .prop_map(|m| Json::Object(m.into_iter().map(|(k, v)| (k, json!(v))).collect()))
        };
        let values = || {
            proptest::collection::btree_map(":[a-z]{1,4}", attribute_value(), 1..4)
                .prop_map(|m| Json::Object(m.into_iter().collect()))
        };
        prop_oneof![
            (
                table,
                item(),
                any::<Option<bool>>(),
                proptest::option::of(names())
            )
                .prop_map(|(t, key, consistent, names)| {
                    let mut body = json!({ "TableName": t, "Key": key });
                    if let Some(c) = consistent {
                        body["ConsistentRead"] = json!(c);
                    }
                    if let Some(n) = names {
                        body["ProjectionExpression"] = json!("#a");
                        body["ExpressionAttributeNames"] = n;
                    }
                    ("GetItem", body)
                }),
            (table, item(), proptest::option::of(values())).prop_map(|(t, item, values)| {
                let mut body = json!({ "TableName": t, "Item": item, "ReturnValues": "ALL_OLD" });
                if let Some(v) = values {
                    body["ConditionExpression"] = json!("a = :a");
                    body["ExpressionAttributeValues"] = v;
                }
                ("PutItem", body)
            }),
            (
                table,
                values(),
                any::<Option<i32>>(),
                any::<bool>(),
                proptest::option::of(item())
            )
                .prop_map(|(t, values, limit, forward, start)| {
                    let mut body = json!({
                        "TableName": t,
                        "KeyConditionExpression": "pk = :a",
                        "ExpressionAttributeValues": values,
                        "ScanIndexForward": forward,
                    });
                    if let Some(l) = limit {
                        body["Limit"] = json!(l);
                    }
                    if let Some(s) = start {
                        body["ExclusiveStartKey"] = s;
                    }
                    ("Query", body)
                }),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            op in prop_oneof![
                prop::sample::select(vec!["GetItem", "PutItem", "Query", "GetRecords"])
                    .prop_map(str::to_owned),
                "\\PC{0,12}",
            ],
            body in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let _ = check(Api::DynamoDb, &op, &body);
            let _ = check(Api::Streams, &op, &body);
        }

        #[test]
        fn valid_requests_pass((op, body) in valid_request()) {
            let bytes = serde_json::to_vec(&body).unwrap();
            prop_assert_eq!(check(Api::DynamoDb, op, &bytes), Ok(()), "{}", body);
        }

        #[test]
        fn mangled_valid_requests_never_panic(
            (op, body) in valid_request(),
            cut in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut bytes = serde_json::to_vec(&body).unwrap();
            let at = cut.index(bytes.len());
            bytes[at] = byte;
            let _ = check(Api::DynamoDb, op, &bytes);
            bytes.truncate(at);
            let _ = check(Api::DynamoDb, op, &bytes);
        }
    }

    #[test]
    fn names_follow_dynamodbs_pattern_and_length() {
        for body in [
            r#"{"ExclusiveStartTableName":"zzz&Action=Scan&"}"#,
            r#"{"ExclusiveStartTableName":"ab"}"#,
        ] {
            assert!(
                matches!(
                    check(Api::DynamoDb, "ListTables", body.as_bytes()),
                    Err(GatewayError::Validation(m)) if m.contains("exclusiveStartTableName")
                ),
                "{body}"
            );
        }
        check(
            Api::DynamoDb,
            "ListTables",
            br#"{"ExclusiveStartTableName":"my.table-1_x"}"#,
        )
        .unwrap();
        let long = format!(r#"{{"TableName":"t","IndexName":"{}"}}"#, "i".repeat(256));
        assert!(matches!(
            check(Api::DynamoDb, "Query", long.as_bytes()),
            Err(GatewayError::Validation(_))
        ));
    }
}
