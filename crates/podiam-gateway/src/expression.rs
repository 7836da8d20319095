//! DynamoDB expressions, read for the IAM condition keys they determine.
//!
//! IAM evaluates `dynamodb:Attributes` (the top-level attribute names a request reads, writes or
//! evaluates) and `dynamodb:LeadingKeys` (the partition-key values a request touches). Both hide
//! inside the request's expressions: `ProjectionExpression`, `ConditionExpression`,
//! `FilterExpression`, `KeyConditionExpression` and `UpdateExpression`. This module tokenizes
//! and parses them with DynamoDB's grammar (Developer Guide, "Expressions"):
//!
//! - a path is `name` or `#placeholder`, followed by any number of `.name`, `.#placeholder` and
//!   `[N]`; only its first element is a top-level attribute, and a `#placeholder` is resolved
//!   through the request's `ExpressionAttributeNames` ([`Names`]);
//! - a value is a `:placeholder` (resolved through `ExpressionAttributeValues`, which only the
//!   key condition needs, and which the caller does with [`key_condition_partition_value`]'s
//!   answer);
//! - keywords (`AND`, `OR`, `NOT`, `BETWEEN`, `IN`, `SET`, `REMOVE`, `ADD`, `DELETE`) and
//!   function names are case-insensitive.
//!
//! The input is hostile, so what cannot be read with certainty is an error (and the gateway
//! denies the request), never a guess:
//! - an expression longer than DynamoDB's 4 KiB limit ([`MAX_EXPRESSION_LEN`]) is refused before
//!   it is read, nesting (parentheses, `NOT`, function calls) deeper than [`MAX_DEPTH`] is
//!   refused, so the recursive-descent parser's stack is bounded, and an update expression with
//!   more than DynamoDB's [`MAX_UPDATE_OPERATORS`] operators and functions is refused;
//! - a bare name that is one of the grammar's keywords or function names (`and`, `size`,
//!   `list_append`, …) is refused wherever a name is expected (DynamoDB reserves most of them;
//!   the client can always use a `#placeholder`), so that no token can be read both as a name
//!   and as grammar;
//! - an unresolved `#placeholder`, an unknown function, a character outside the grammar and any
//!   syntax error are refused.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::GatewayError;

/// DynamoDB's limit on the length of an expression string, in bytes.
pub const MAX_EXPRESSION_LEN: usize = 4096;

/// How deeply parentheses, `NOT`s and function calls may nest.
pub const MAX_DEPTH: usize = 64;

/// DynamoDB's limit on the operators (`+`, `-`) and functions in one update expression.
pub const MAX_UPDATE_OPERATORS: usize = 300;

/// DynamoDB's limit on the operands of one `IN`.
const MAX_IN_OPERANDS: usize = 100;

/// How much of the hostile text an error message echoes, in characters.
const ECHO_LEN: usize = 64;

/// Resolves `#name` placeholders; `names` is the request's `ExpressionAttributeNames`.
pub trait Names {
    /// The attribute name `placeholder` (including its leading `#`) stands for.
    fn name(&self, placeholder: &str) -> Option<&str>;
}

impl<S: std::hash::BuildHasher> Names for HashMap<String, String, S> {
    fn name(&self, placeholder: &str) -> Option<&str> {
        self.get(placeholder).map(String::as_str)
    }
}

impl Names for BTreeMap<String, String> {
    fn name(&self, placeholder: &str) -> Option<&str> {
        self.get(placeholder).map(String::as_str)
    }
}

/// Top-level attribute names read by a `ProjectionExpression`.
pub fn projection_attributes(
    expr: &str,
    names: &dyn Names,
) -> Result<BTreeSet<String>, GatewayError> {
    let mut parser = Parser::new(expr, names, Member::Projection)?;
    loop {
        parser.path()?;
        if !parser.eat(Tok::Comma) {
            break;
        }
    }
    parser.finish()?;
    Ok(parser.attributes)
}

/// Top-level attribute names a condition, filter or key-condition expression evaluates. Errors
/// are worded as for a `ConditionExpression`.
pub fn condition_attributes(
    expr: &str,
    names: &dyn Names,
) -> Result<BTreeSet<String>, GatewayError> {
    Ok(parse_condition(expr, names, Member::Condition)?.1)
}

/// [`condition_attributes`] for a `FilterExpression`, with errors worded for one.
pub fn filter_attributes(expr: &str, names: &dyn Names) -> Result<BTreeSet<String>, GatewayError> {
    Ok(parse_condition(expr, names, Member::Filter)?.1)
}

/// [`condition_attributes`] for a `KeyConditionExpression`, with errors worded for one.
pub fn key_condition_attributes(
    expr: &str,
    names: &dyn Names,
) -> Result<BTreeSet<String>, GatewayError> {
    Ok(parse_condition(expr, names, Member::KeyCondition)?.1)
}

/// Top-level attribute names an `UpdateExpression` writes or reads (targets and operands).
pub fn update_attributes(expr: &str, names: &dyn Names) -> Result<BTreeSet<String>, GatewayError> {
    let mut parser = Parser::new(expr, names, Member::Update)?;
    parser.update()?;
    parser.finish()?;
    Ok(parser.attributes)
}

/// For a `KeyConditionExpression`: the `:placeholder` compared with `=` to the top-level
/// attribute `partition_key` (no sub-path), as `pk = :v` or `:v = pk`, either as the whole
/// expression or as one operand of a top-level `AND` whose other operand is one sort-key
/// condition (`=`, `<`, `<=`, `>`, `>=`, `BETWEEN` or `begins_with` on a top-level attribute
/// and values). Returns the placeholder, e.g. `":v"`.
///
/// Errors if the expression is not of that shape: if it uses `OR`, `NOT` or `IN`, has more than
/// two conditions, compares the partition key more than once or in any other way, or does not
/// compare it at all.
pub fn key_condition_partition_value(
    expr: &str,
    names: &dyn Names,
    partition_key: &str,
) -> Result<String, GatewayError> {
    let member = Member::KeyCondition;
    let (cond, _) = parse_condition(expr, names, member)?;
    let mut conjuncts = Vec::new();
    flatten_and(&cond, &mut conjuncts);
    for conjunct in &conjuncts {
        match conjunct {
            Cond::Or(_) => {
                return Err(member.invalid("Invalid operator used: OR"));
            }
            Cond::Not(_) => {
                return Err(member.invalid("Invalid operator used: NOT"));
            }
            Cond::In(..) => {
                return Err(member.invalid("Invalid operator used: IN"));
            }
            Cond::And(_) | Cond::Compare(..) | Cond::Between(..) | Cond::Func(..) => {}
        }
    }
    if conjuncts.len() > 2 {
        return Err(
            member.invalid("KeyConditionExpressions must only contain one condition per key")
        );
    }
    let mentions: usize = conjuncts.iter().map(|c| c.mentions(partition_key)).sum();
    if mentions == 0 {
        return Err(member.invalid(&format!(
            "Query condition missed key schema element: {}",
            echo(partition_key)
        )));
    }
    if mentions > 1 {
        return Err(
            member.invalid("KeyConditionExpressions must only contain one condition per key")
        );
    }
    let mut value = None;
    for conjunct in &conjuncts {
        if let Some(v) = partition_equality(conjunct, partition_key) {
            value = Some(v.to_owned());
        } else if conjunct.mentions(partition_key) > 0 || !is_sort_key_condition(conjunct) {
            return Err(member.invalid("Query key condition not supported"));
        }
    }
    value.ok_or_else(|| member.invalid("Query key condition not supported"))
}

// ---------------------------------------------------------------------------------------------
// Key conditions.

fn flatten_and<'c>(cond: &'c Cond, out: &mut Vec<&'c Cond>) {
    match cond {
        // Depth is bounded by the parser's `MAX_DEPTH`: an `And` inside an `And` needs parentheses.
        Cond::And(items) => items.iter().for_each(|c| flatten_and(c, out)),
        other => out.push(other),
    }
}

/// `pk = :v` or `:v = pk`, with `pk` the whole path.
fn partition_equality<'c>(cond: &'c Cond, partition_key: &str) -> Option<&'c str> {
    match cond {
        Cond::Compare(Operand::Path(p), Cmp::Eq, Operand::Value(v))
        | Cond::Compare(Operand::Value(v), Cmp::Eq, Operand::Path(p))
            if p.top == partition_key && !p.nested =>
        {
            Some(v)
        }
        _ => None,
    }
}

/// A condition DynamoDB accepts on a sort key: a comparison other than `<>`, `BETWEEN` or
/// `begins_with`, on a top-level attribute and values.
fn is_sort_key_condition(cond: &Cond) -> bool {
    let key = |o: &Operand| matches!(o, Operand::Path(p) if !p.nested);
    let value = |o: &Operand| matches!(o, Operand::Value(_));
    match cond {
        Cond::Compare(a, cmp, b) => {
            *cmp != Cmp::Ne && ((key(a) && value(b)) || (value(a) && key(b)))
        }
        Cond::Between(a, lo, hi) => key(a) && value(lo) && value(hi),
        Cond::Func(Func::BeginsWith, args) => {
            matches!(args.as_slice(), [a, b] if key(a) && value(b))
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Syntax tree (conditions only: the other expressions are only ever asked for attributes).

#[derive(Debug, Clone, PartialEq, Eq)]
struct Path {
    /// The first element, resolved: the top-level attribute.
    top: String,
    /// Whether `.name` or `[N]` elements follow.
    nested: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Operand {
    Path(Path),
    Value(String),
    Size(Path),
}

impl Operand {
    fn mentions(&self, attribute: &str) -> usize {
        match self {
            Self::Path(p) | Self::Size(p) => usize::from(p.top == attribute),
            Self::Value(_) => 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    AttributeExists,
    AttributeNotExists,
    AttributeType,
    BeginsWith,
    Contains,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Cond {
    Compare(Operand, Cmp, Operand),
    Between(Operand, Operand, Operand),
    In(Operand, Vec<Operand>),
    Func(Func, Vec<Operand>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
}

impl Cond {
    /// How many paths (including `size(path)`) start with `attribute`.
    fn mentions(&self, attribute: &str) -> usize {
        match self {
            Self::Compare(a, _, b) => a.mentions(attribute) + b.mentions(attribute),
            Self::Between(a, b, c) => {
                a.mentions(attribute) + b.mentions(attribute) + c.mentions(attribute)
            }
            Self::In(a, list) => {
                a.mentions(attribute) + list.iter().map(|o| o.mentions(attribute)).sum::<usize>()
            }
            Self::Func(_, args) => args.iter().map(|o| o.mentions(attribute)).sum(),
            Self::And(items) | Self::Or(items) => items.iter().map(|c| c.mentions(attribute)).sum(),
            Self::Not(c) => c.mentions(attribute),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    Projection,
    Condition,
    Filter,
    KeyCondition,
    Update,
}

impl Member {
    fn name(self) -> &'static str {
        match self {
            Self::Projection => "ProjectionExpression",
            Self::Condition => "ConditionExpression",
            Self::Filter => "FilterExpression",
            Self::KeyCondition => "KeyConditionExpression",
            Self::Update => "UpdateExpression",
        }
    }

    fn invalid(self, detail: &str) -> GatewayError {
        GatewayError::Validation(format!("Invalid {}: {detail}", self.name()))
    }
}

/// A hostile text for an error message: escaped, so that it cannot break the message (quotes,
/// newlines, control characters), and cut to at most [`ECHO_LEN`] characters once escaped.
fn echo(text: &str) -> String {
    let mut out = String::new();
    let mut shown = 0;
    for c in text.chars() {
        let escaped = c.escape_debug();
        let len = escaped.len();
        if shown + len > ECHO_LEN {
            out.push_str("...");
            break;
        }
        out.extend(escaped);
        shown += len;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Tokenizer.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    /// `[A-Za-z][A-Za-z0-9_]*`: a name, keyword or function name.
    Ident(&'a str),
    /// `#[A-Za-z0-9_]+`, with its `#`.
    Name(&'a str),
    /// `:[A-Za-z0-9_]+`, with its `:`.
    Value(&'a str),
    /// `[0-9]+`: only valid as a list index.
    Number(&'a str),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    tok: Tok<'a>,
    start: usize,
    end: usize,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn tokenize(expr: &str, member: Member) -> Result<Vec<Token<'_>>, GatewayError> {
    let bytes = expr.as_bytes();
    let word_end = |from: usize| {
        let mut i = from;
        while bytes.get(i).copied().is_some_and(is_word_byte) {
            i += 1;
        }
        i
    };
    let slice = |start: usize, end: usize| {
        expr.get(start..end)
            .ok_or_else(|| member.invalid("Syntax error; invalid character"))
    };
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let next = bytes.get(i + 1).copied();
        let (tok, end) = match b {
            b'a'..=b'z' | b'A'..=b'Z' => {
                let end = word_end(i);
                (Tok::Ident(slice(start, end)?), end)
            }
            b'0'..=b'9' => {
                let mut end = i;
                while bytes.get(end).is_some_and(u8::is_ascii_digit) {
                    end += 1;
                }
                (Tok::Number(slice(start, end)?), end)
            }
            b'#' | b':' => {
                let end = word_end(i + 1);
                if end == i + 1 {
                    return Err(member.invalid(&format!(
                        "Syntax error; token: \"{}\", near: \"{}\"",
                        char::from(b),
                        echo(expr.get(start..).unwrap_or_default())
                    )));
                }
                let text = slice(start, end)?;
                let tok = if b == b'#' {
                    Tok::Name(text)
                } else {
                    Tok::Value(text)
                };
                (tok, end)
            }
            b'<' if next == Some(b'>') => (Tok::Ne, i + 2),
            b'<' if next == Some(b'=') => (Tok::Le, i + 2),
            b'>' if next == Some(b'=') => (Tok::Ge, i + 2),
            b'<' => (Tok::Lt, i + 1),
            b'>' => (Tok::Gt, i + 1),
            b'=' => (Tok::Eq, i + 1),
            b'(' => (Tok::LParen, i + 1),
            b')' => (Tok::RParen, i + 1),
            b'[' => (Tok::LBracket, i + 1),
            b']' => (Tok::RBracket, i + 1),
            b',' => (Tok::Comma, i + 1),
            b'.' => (Tok::Dot, i + 1),
            b'+' => (Tok::Plus, i + 1),
            b'-' => (Tok::Minus, i + 1),
            _ => {
                let shown = expr.get(start..).and_then(|s| s.chars().next());
                return Err(member.invalid(&format!(
                    "Invalid character; character: \"{}\", near: \"{}\"",
                    shown
                        .map(|c| c.escape_debug().to_string())
                        .unwrap_or_default(),
                    echo(expr.get(start..).unwrap_or_default())
                )));
            }
        };
        tokens.push(Token { tok, start, end });
        i = end;
    }
    Ok(tokens)
}

// ---------------------------------------------------------------------------------------------
// Parser.

/// Words that are grammar, never a bare name: keywords and function names.
const RESERVED: &[&str] = &[
    "AND",
    "OR",
    "NOT",
    "BETWEEN",
    "IN",
    "SET",
    "REMOVE",
    "ADD",
    "DELETE",
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
    "size",
    "if_not_exists",
    "list_append",
];

fn is_keyword(tok: Tok<'_>, keyword: &str) -> bool {
    matches!(tok, Tok::Ident(word) if word.eq_ignore_ascii_case(keyword))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clause {
    Set,
    Remove,
    Add,
    Delete,
}

impl Clause {
    fn of(tok: Tok<'_>) -> Option<Self> {
        [
            ("SET", Self::Set),
            ("REMOVE", Self::Remove),
            ("ADD", Self::Add),
            ("DELETE", Self::Delete),
        ]
        .into_iter()
        .find(|(word, _)| is_keyword(tok, word))
        .map(|(_, clause)| clause)
    }

    fn keyword(self) -> &'static str {
        match self {
            Self::Set => "SET",
            Self::Remove => "REMOVE",
            Self::Add => "ADD",
            Self::Delete => "DELETE",
        }
    }
}

fn parse_condition(
    expr: &str,
    names: &dyn Names,
    member: Member,
) -> Result<(Cond, BTreeSet<String>), GatewayError> {
    let mut parser = Parser::new(expr, names, member)?;
    let cond = parser.or()?;
    parser.finish()?;
    Ok((cond, parser.attributes))
}

/// The only item of `items`, or all of them joined by `join`.
fn one_or(mut items: Vec<Cond>, join: fn(Vec<Cond>) -> Cond) -> Cond {
    match (items.pop(), items.is_empty()) {
        (Some(only), true) => only,
        (Some(last), false) => {
            items.push(last);
            join(items)
        }
        (None, _) => join(items),
    }
}

struct Parser<'a, 'n> {
    expr: &'a str,
    tokens: Vec<Token<'a>>,
    pos: usize,
    names: &'n dyn Names,
    member: Member,
    depth: usize,
    operators: usize,
    attributes: BTreeSet<String>,
}

impl<'a, 'n> Parser<'a, 'n> {
    fn new(expr: &'a str, names: &'n dyn Names, member: Member) -> Result<Self, GatewayError> {
        if expr.len() > MAX_EXPRESSION_LEN {
            return Err(member.invalid(&format!(
                "Expression size has exceeded the maximum allowed size; size: {}, limit: \
                 {MAX_EXPRESSION_LEN}",
                expr.len()
            )));
        }
        let tokens = tokenize(expr, member)?;
        if tokens.is_empty() {
            return Err(member.invalid("The expression can not be empty;"));
        }
        Ok(Self {
            expr,
            tokens,
            pos: 0,
            names,
            member,
            depth: 0,
            operators: 0,
            attributes: BTreeSet::new(),
        })
    }

    // --- Token stream ---

    fn peek(&self) -> Option<Tok<'a>> {
        self.tokens.get(self.pos).map(|t| t.tok)
    }

    fn peek2(&self) -> Option<Tok<'a>> {
        self.tokens.get(self.pos + 1).map(|t| t.tok)
    }

    fn bump(&mut self) {
        self.pos += 1;
    }

    fn eat(&mut self, tok: Tok<'_>) -> bool {
        if self.peek() == Some(tok) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        if self.peek().is_some_and(|t| is_keyword(t, keyword)) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: Tok<'_>) -> Result<(), GatewayError> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(self.syntax())
        }
    }

    fn finish(&self) -> Result<(), GatewayError> {
        if self.pos < self.tokens.len() {
            Err(self.syntax())
        } else {
            Ok(())
        }
    }

    /// A syntax error at the current token, DynamoDB style.
    fn syntax(&self) -> GatewayError {
        let near_start = self
            .pos
            .checked_sub(1)
            .and_then(|p| self.tokens.get(p))
            .map_or(0, |t| t.start);
        let (token, near_end) = match self.tokens.get(self.pos) {
            Some(t) => (self.expr.get(t.start..t.end).unwrap_or_default(), t.end),
            None => ("<EOF>", self.expr.len()),
        };
        let near = self.expr.get(near_start..near_end).unwrap_or_default();
        self.member.invalid(&format!(
            "Syntax error; token: \"{}\", near: \"{}\"",
            echo(token),
            echo(near)
        ))
    }

    fn enter(&mut self) -> Result<(), GatewayError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.member.invalid(&format!(
                "The expression is nested too deeply; limit: {MAX_DEPTH}"
            )));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn operator(&mut self) -> Result<(), GatewayError> {
        self.operators += 1;
        if self.operators > MAX_UPDATE_OPERATORS {
            return Err(self.member.invalid(&format!(
                "The expression contains too many operators and functions; limit: \
                 {MAX_UPDATE_OPERATORS}"
            )));
        }
        Ok(())
    }

    // --- Paths and operands ---

    /// One path element (a bare name or a `#placeholder`), resolved.
    fn element(&mut self) -> Result<String, GatewayError> {
        match self.peek() {
            Some(Tok::Ident(word)) => {
                if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word)) {
                    return Err(self.member.invalid(&format!(
                        "Attribute name is a reserved keyword; reserved keyword: {}",
                        echo(word)
                    )));
                }
                self.bump();
                Ok(word.to_owned())
            }
            Some(Tok::Name(placeholder)) => {
                let Some(name) = self.names.name(placeholder) else {
                    return Err(self.member.invalid(&format!(
                        "An expression attribute name used in the document path is not \
                         defined; attribute name: {}",
                        echo(placeholder)
                    )));
                };
                if name.is_empty() {
                    return Err(self.member.invalid(&format!(
                        "ExpressionAttributeNames contains invalid value: Empty attribute name \
                         for key {}",
                        echo(placeholder)
                    )));
                }
                self.bump();
                Ok(name.to_owned())
            }
            _ => Err(self.syntax()),
        }
    }

    /// A document path; records its top-level attribute.
    fn path(&mut self) -> Result<Path, GatewayError> {
        let top = self.element()?;
        let mut nested = false;
        loop {
            if self.eat(Tok::Dot) {
                self.element()?;
            } else if self.eat(Tok::LBracket) {
                match self.peek() {
                    Some(Tok::Number(_)) => self.bump(),
                    _ => return Err(self.syntax()),
                }
                self.expect(Tok::RBracket)?;
            } else {
                break;
            }
            nested = true;
        }
        self.attributes.insert(top.clone());
        Ok(Path { top, nested })
    }

    fn value(&mut self) -> Result<String, GatewayError> {
        match self.peek() {
            Some(Tok::Value(v)) => {
                self.bump();
                Ok(v.to_owned())
            }
            _ => Err(self.syntax()),
        }
    }

    /// The function named by the current token, if it is a call (`name(`).
    fn call(&self) -> Option<&'a str> {
        match (self.peek(), self.peek2()) {
            (Some(Tok::Ident(word)), Some(Tok::LParen)) => Some(word),
            _ => None,
        }
    }

    fn unknown_function(&self, word: &str) -> GatewayError {
        self.member
            .invalid(&format!("Invalid function name; function: {}", echo(word)))
    }

    /// An operand of a condition: a path, a `:value` or `size(path)`.
    fn operand(&mut self) -> Result<Operand, GatewayError> {
        if let Some(word) = self.call() {
            if !word.eq_ignore_ascii_case("size") {
                return Err(self.unknown_function(word));
            }
            self.bump();
            self.bump();
            let path = self.path()?;
            self.expect(Tok::RParen)?;
            return Ok(Operand::Size(path));
        }
        match self.peek() {
            Some(Tok::Value(_)) => Ok(Operand::Value(self.value()?)),
            _ => Ok(Operand::Path(self.path()?)),
        }
    }

    // --- Conditions ---

    fn or(&mut self) -> Result<Cond, GatewayError> {
        let mut items = vec![self.and()?];
        while self.eat_keyword("OR") {
            items.push(self.and()?);
        }
        Ok(one_or(items, Cond::Or))
    }

    fn and(&mut self) -> Result<Cond, GatewayError> {
        let mut items = vec![self.not()?];
        while self.eat_keyword("AND") {
            items.push(self.not()?);
        }
        Ok(one_or(items, Cond::And))
    }

    fn not(&mut self) -> Result<Cond, GatewayError> {
        if self.eat_keyword("NOT") {
            self.enter()?;
            let cond = self.not()?;
            self.leave();
            return Ok(Cond::Not(Box::new(cond)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Cond, GatewayError> {
        if self.eat(Tok::LParen) {
            self.enter()?;
            let cond = self.or()?;
            self.expect(Tok::RParen)?;
            self.leave();
            return Ok(cond);
        }
        if let Some(word) = self.call() {
            let func = [
                ("attribute_exists", Func::AttributeExists),
                ("attribute_not_exists", Func::AttributeNotExists),
                ("attribute_type", Func::AttributeType),
                ("begins_with", Func::BeginsWith),
                ("contains", Func::Contains),
            ]
            .into_iter()
            .find(|(name, _)| word.eq_ignore_ascii_case(name))
            .map(|(_, func)| func);
            if let Some(func) = func {
                self.bump();
                self.bump();
                let path = Operand::Path(self.path()?);
                let args = match func {
                    Func::AttributeExists | Func::AttributeNotExists => vec![path],
                    Func::AttributeType => {
                        self.expect(Tok::Comma)?;
                        vec![path, Operand::Value(self.value()?)]
                    }
                    Func::BeginsWith | Func::Contains => {
                        self.expect(Tok::Comma)?;
                        vec![path, self.operand()?]
                    }
                };
                self.expect(Tok::RParen)?;
                return Ok(Cond::Func(func, args));
            }
            // `size(path)` is an operand; anything else is refused by `operand`.
        }
        let left = self.operand()?;
        let cmp = match self.peek() {
            Some(Tok::Eq) => Some(Cmp::Eq),
            Some(Tok::Ne) => Some(Cmp::Ne),
            Some(Tok::Lt) => Some(Cmp::Lt),
            Some(Tok::Le) => Some(Cmp::Le),
            Some(Tok::Gt) => Some(Cmp::Gt),
            Some(Tok::Ge) => Some(Cmp::Ge),
            _ => None,
        };
        if let Some(cmp) = cmp {
            self.bump();
            let right = self.operand()?;
            return Ok(Cond::Compare(left, cmp, right));
        }
        if self.eat_keyword("BETWEEN") {
            let low = self.operand()?;
            if !self.eat_keyword("AND") {
                return Err(self.syntax());
            }
            let high = self.operand()?;
            return Ok(Cond::Between(left, low, high));
        }
        if self.eat_keyword("IN") {
            self.expect(Tok::LParen)?;
            let mut list = vec![self.operand()?];
            while self.eat(Tok::Comma) {
                if list.len() >= MAX_IN_OPERANDS {
                    return Err(self.member.invalid(&format!(
                        "The IN operator is provided with too many operands; limit: \
                         {MAX_IN_OPERANDS}"
                    )));
                }
                list.push(self.operand()?);
            }
            self.expect(Tok::RParen)?;
            return Ok(Cond::In(left, list));
        }
        Err(self.syntax())
    }

    // --- Update expressions ---

    fn update(&mut self) -> Result<(), GatewayError> {
        let mut seen: Vec<Clause> = Vec::new();
        while let Some(tok) = self.peek() {
            let Some(clause) = Clause::of(tok) else {
                return Err(self.syntax());
            };
            if seen.contains(&clause) {
                return Err(self.member.invalid(&format!(
                    "The \"{}\" section can only be used once in an update expression;",
                    clause.keyword()
                )));
            }
            seen.push(clause);
            self.bump();
            loop {
                self.path()?;
                match clause {
                    Clause::Set => {
                        self.expect(Tok::Eq)?;
                        self.update_value()?;
                    }
                    Clause::Remove => {}
                    Clause::Add | Clause::Delete => {
                        self.value()?;
                    }
                }
                if !self.eat(Tok::Comma) {
                    break;
                }
            }
        }
        Ok(())
    }

    /// `operand`, `operand + operand`, `operand - operand` (chains allowed, as DynamoDB does).
    fn update_value(&mut self) -> Result<(), GatewayError> {
        self.update_operand()?;
        while self.eat(Tok::Plus) || self.eat(Tok::Minus) {
            self.operator()?;
            self.update_operand()?;
        }
        Ok(())
    }

    /// A path, a `:value`, `if_not_exists(path, value)` or `list_append(value, value)`.
    fn update_operand(&mut self) -> Result<(), GatewayError> {
        if let Some(word) = self.call() {
            let if_not_exists = word.eq_ignore_ascii_case("if_not_exists");
            if !if_not_exists && !word.eq_ignore_ascii_case("list_append") {
                return Err(self.unknown_function(word));
            }
            self.operator()?;
            self.enter()?;
            self.bump();
            self.bump();
            if if_not_exists {
                self.path()?;
            } else {
                self.update_value()?;
            }
            self.expect(Tok::Comma)?;
            self.update_value()?;
            self.expect(Tok::RParen)?;
            self.leave();
            return Ok(());
        }
        match self.peek() {
            Some(Tok::Value(_)) => self.value().map(drop),
            _ => self.path().map(drop),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    /// An expression, its `ExpressionAttributeNames`, and the attributes it names.
    type Case = (
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static [&'static str],
    );

    fn none() -> HashMap<String, String> {
        HashMap::new()
    }

    fn message(r: Result<impl std::fmt::Debug, GatewayError>) -> String {
        match r {
            Err(GatewayError::Validation(m)) => m,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    // --- Projection ---

    #[test]
    fn projection_from_the_docs() {
        assert_eq!(
            projection_attributes(
                "Description, RelatedItems[0], ProductReviews.FiveStar",
                &none()
            ),
            Ok(set(&["Description", "ProductReviews", "RelatedItems"]))
        );
        assert_eq!(
            projection_attributes("Title, Price, Color", &none()),
            Ok(set(&["Color", "Price", "Title"]))
        );
        let n = names(&[
            ("#pr", "ProductReviews"),
            ("#ri", "RelatedItems"),
            ("#c", "Comment"),
        ]);
        assert_eq!(
            projection_attributes("#pr.FiveStar, #ri[0][1].#c, Id", &n),
            Ok(set(&["Id", "ProductReviews", "RelatedItems"]))
        );
        // A placeholder's value is one name, dots and all.
        let n = names(&[("#d", "a.b[0]")]);
        assert_eq!(projection_attributes("#d", &n), Ok(set(&["a.b[0]"])));
        // Whitespace anywhere between tokens.
        assert_eq!(
            projection_attributes("  a . b [ 3 ] ,\n\tc ", &none()),
            Ok(set(&["a", "c"]))
        );
        let b = BTreeMap::from([("#x".to_owned(), "X".to_owned())]);
        assert_eq!(projection_attributes("#x", &b), Ok(set(&["X"])));
    }

    #[test]
    fn projection_refusals() {
        for expr in [
            "",
            "   ",
            "a,",
            ",a",
            "a,,b",
            "a.",
            "a..b",
            "a[",
            "a[]",
            "a[x]",
            "a[-1]",
            "a[1",
            "a]",
            "[0]",
            "a b",
            "a.1b",
            "1a",
            "_a",
            "a-b",
            "a = :v",
            ":v",
            "#",
            "a.#",
            "size",
            "SIZE(a)",
            "and",
            "a.Between",
            "a, IN",
            "é",
            "a\u{00a0}b",
            "a;b",
            "a\"b",
            "attribute_exists",
            "list_append",
        ] {
            assert!(
                matches!(
                    projection_attributes(expr, &none()),
                    Err(GatewayError::Validation(_))
                ),
                "{expr:?} must be refused"
            );
        }
        let m = message(projection_attributes("a, #missing", &none()));
        assert!(m.starts_with("Invalid ProjectionExpression: "), "{m}");
        assert!(m.contains("#missing"), "{m}");
        let m = message(projection_attributes("a.#missing", &none()));
        assert!(m.contains("#missing"), "{m}");
        let m = message(projection_attributes("#e", &names(&[("#e", "")])));
        assert!(m.contains("Empty attribute name"), "{m}");
        let m = message(projection_attributes("a b", &none()));
        assert_eq!(
            m,
            "Invalid ProjectionExpression: Syntax error; token: \"b\", near: \"a b\""
        );
        let m = message(projection_attributes("a,", &none()));
        assert!(m.contains("<EOF>"), "{m}");
        let m = message(projection_attributes("a.And", &none()));
        assert!(m.contains("reserved keyword: And"), "{m}");
        // Words DynamoDB reserves but the grammar does not use are left to DynamoDB.
        assert_eq!(
            projection_attributes("Select", &none()),
            Ok(set(&["Select"]))
        );
    }

    // --- Conditions ---

    #[test]
    fn conditions_from_the_docs() {
        let cases: &[Case] = &[
            (
                "#yr = :yyyy and title between :letter1 and :letter2",
                &[("#yr", "year")],
                &["title", "year"],
            ),
            (
                "ProductCategory IN (:cat1, :cat2) and Price between :lo and :hi",
                &[],
                &["Price", "ProductCategory"],
            ),
            ("attribute_not_exists(Id)", &[], &["Id"]),
            (
                "attribute_exists(#pr.FiveStar)",
                &[("#pr", "ProductReviews")],
                &["ProductReviews"],
            ),
            ("size(Brand) <= :v", &[], &["Brand"]),
            ("size(VideoClip) > :v_sub", &[], &["VideoClip"]),
            (
                "attribute_type(ProductReviews.FiveStar, :v_sub)",
                &[],
                &["ProductReviews"],
            ),
            (
                "begins_with(Pictures.FrontView, :v_sub)",
                &[],
                &["Pictures"],
            ),
            ("contains(Brand, :v_sub)", &[], &["Brand"]),
            ("contains(Color, :c)", &[], &["Color"]),
            ("size(Color) < :v", &[], &["Color"]),
            ("Price > :limit", &[], &["Price"]),
            (
                "ProductCategory IN (:cat1, :cat2)",
                &[],
                &["ProductCategory"],
            ),
            ("Price between :lo and :hi", &[], &["Price"]),
            (
                "attribute_not_exists(Price) AND attribute_not_exists(Id)",
                &[],
                &["Id", "Price"],
            ),
            (
                "(ProductCategory IN (:cat1, :cat2)) and (Price between :lo and :hi)",
                &[],
                &["Price", "ProductCategory"],
            ),
            ("Id = :id AND #pk = :pk", &[("#pk", "PK")], &["Id", "PK"]),
            (
                "Artist = :a and SongTitle > :t",
                &[],
                &["Artist", "SongTitle"],
            ),
            (
                "ForumName = :name and begins_with(Subject, :sub)",
                &[],
                &["ForumName", "Subject"],
            ),
            ("NOT (a = :v) OR b <> c", &[], &["a", "b", "c"]),
            ("not a = :v or not not b = :w", &[], &["a", "b"]),
            (
                "a = :v AND b = :w OR c = :x AND d = :y",
                &[],
                &["a", "b", "c", "d"],
            ),
            ("Price <= size(Tags[0].x)", &[], &["Price", "Tags"]),
            (":v = a", &[], &["a"]),
            ("a IN (b, :v, c.d)", &[], &["a", "b", "c"]),
            ("contains(a, b.c)", &[], &["a", "b"]),
            ("contains(a, size(b))", &[], &["a", "b"]),
            (
                "AtTrIbUtE_ExIsTs(a) aNd B bEtWeEn :x AnD :y",
                &[],
                &["B", "a"],
            ),
            (
                "a>=:v and b<:w and c<=:x and d>:y",
                &[],
                &["a", "b", "c", "d"],
            ),
            ("((((a = :v))))", &[], &["a"]),
        ];
        for (expr, pairs, expected) in cases {
            assert_eq!(
                condition_attributes(expr, &names(pairs)),
                Ok(set(expected)),
                "{expr}"
            );
        }
    }

    #[test]
    fn condition_refusals() {
        for expr in [
            "",
            "a",
            "a =",
            "= :v",
            "a = :v and",
            "a = :v or",
            "not",
            "(a = :v",
            "a = :v)",
            "((a = :v)",
            "()",
            "a = :v b = :w",
            "a == :v",
            "a != :v",
            "a => :v",
            "a = :v && b = :w",
            "a between :x",
            "a between :x or :y",
            "a between :x and",
            "a in :x",
            "a in ()",
            "a in (:x,)",
            "a in (:x :y)",
            "attribute_exists()",
            "attribute_exists(:v)",
            "attribute_exists(a, b)",
            "attribute_exists a",
            "attribute_exists(a) = :v",
            "attribute_type(a, b)",
            "attribute_type(a)",
            "begins_with(:v, a)",
            "size(a)",
            "size(:v) = :w",
            "size(a, b) = :v",
            "foo(a) = :v",
            "if_not_exists(a, :v) = :w",
            "list_append(a, :v) = :w",
            "and = :v",
            "a.or = :v",
            "size = :v",
            "contains = :v",
            "#missing = :v",
            "a = #missing",
            "a = 1",
            "a = 'x'",
            "a = \"x\"",
            "a = :",
            "a = :v-1",
            "a + :v = :w",
            "a[0 = :v",
            "a = :v; DROP TABLE",
            "a = :v\0",
        ] {
            let r = condition_attributes(expr, &none());
            assert!(
                matches!(r, Err(GatewayError::Validation(_))),
                "{expr:?} must be refused: {r:?}"
            );
        }
        let m = message(condition_attributes("a = :v AND (b = :w", &none()));
        assert!(
            m.starts_with("Invalid ConditionExpression: Syntax error"),
            "{m}"
        );
        let m = message(filter_attributes("#x = :v", &none()));
        assert!(m.starts_with("Invalid FilterExpression: "), "{m}");
        assert!(m.contains("#x"), "{m}");
        let m = message(key_condition_attributes("foo(a) = :v", &none()));
        assert_eq!(
            m,
            "Invalid KeyConditionExpression: Invalid function name; function: foo"
        );
    }

    // --- Key conditions ---

    #[test]
    fn partition_value() {
        let n = names(&[("#p", "pk"), ("#s", "sk"), ("#yr", "year")]);
        for (expr, expected) in [
            ("pk = :v", ":v"),
            (":v = pk", ":v"),
            ("#p = :v", ":v"),
            ("pk = :v AND sk = :s", ":v"),
            ("sk = :s and pk = :v", ":v"),
            ("pk = :v AND sk BETWEEN :a AND :b", ":v"),
            ("pk = :v AND sk > :s", ":v"),
            ("pk = :v AND :s >= sk", ":v"),
            ("pk = :v AND begins_with(#s, :prefix)", ":v"),
            ("(pk = :v) AND (sk < :s)", ":v"),
            ("(pk = :v AND sk <= :s)", ":v"),
            ("((pk = :v))", ":v"),
        ] {
            assert_eq!(
                key_condition_partition_value(expr, &n, "pk"),
                Ok(expected.to_owned()),
                "{expr}"
            );
        }
        // The docs' own example, with `year` the partition key.
        assert_eq!(
            key_condition_partition_value(
                "#yr = :yyyy and title between :letter1 and :letter2",
                &n,
                "year"
            ),
            Ok(":yyyy".to_owned())
        );
    }

    #[test]
    fn partition_value_refusals() {
        let n = names(&[("#p", "pk"), ("#s", "sk")]);
        for (expr, why) in [
            ("pk = :a OR pk = :b", "OR"),
            ("pk = :a OR sk = :b", "OR"),
            ("(pk = :a) OR (pk = :b)", "OR"),
            ("NOT pk = :a", "NOT"),
            ("pk = :a AND NOT sk = :b", "NOT"),
            ("pk IN (:a, :b)", "IN"),
            ("pk = :a AND sk IN (:a, :b)", "IN"),
            ("pk = :a AND pk = :b", "one condition per key"),
            ("pk = :a AND #p = :b", "one condition per key"),
            ("pk = :a AND sk = :b AND x = :c", "one condition per key"),
            ("pk = :a AND (sk = :b AND x = :c)", "one condition per key"),
            ("pk = pk", "one condition per key"),
            ("pk = :a AND size(pk) > :b", "one condition per key"),
            ("pk > :v", "not supported"),
            ("pk <> :v", "not supported"),
            ("pk BETWEEN :a AND :b", "not supported"),
            ("begins_with(pk, :a)", "not supported"),
            ("attribute_exists(pk)", "not supported"),
            ("size(pk) = :v", "not supported"),
            ("pk.x = :v", "not supported"),
            ("pk[0] = :v", "not supported"),
            ("pk = sk", "not supported"),
            ("pk = :v AND sk <> :s", "not supported"),
            ("pk = :v AND sk = other", "not supported"),
            ("pk = :v AND sk.x = :s", "not supported"),
            ("pk = :v AND attribute_exists(sk)", "not supported"),
            ("pk = :v AND contains(sk, :s)", "not supported"),
            ("pk = :v AND sk BETWEEN :a AND other", "not supported"),
            ("a.pk = :v", "missed key schema element: pk"),
            ("sk = :v", "missed key schema element: pk"),
            ("PK = :v", "missed key schema element: pk"),
            ("#s = :v", "missed key schema element: pk"),
            ("", "empty"),
            ("pk = :v AND", "Syntax error"),
            ("pk = :v)", "Syntax error"),
            ("#missing = :v", "not defined"),
        ] {
            let m = message(key_condition_partition_value(expr, &n, "pk"));
            assert!(
                m.starts_with("Invalid KeyConditionExpression: "),
                "{expr}: {m}"
            );
            assert!(m.contains(why), "{expr}: {m}");
        }
    }

    // --- Updates ---

    #[test]
    fn updates_from_the_docs() {
        let cases: &[Case] = &[
            (
                "SET Price = Price - :p REMOVE InStock",
                &[],
                &["InStock", "Price"],
            ),
            (
                "SET #pr.FiveStar = list_append(#pr.FiveStar, :r)",
                &[("#pr", "ProductReviews")],
                &["ProductReviews"],
            ),
            ("ADD Color :c", &[], &["Color"]),
            ("DELETE Color :p", &[], &["Color"]),
            ("ADD QuantityOnHand :q", &[], &["QuantityOnHand"]),
            (
                "SET ProductCategory = :c, Price = :p",
                &[],
                &["Price", "ProductCategory"],
            ),
            (
                "SET RelatedItems[1] = :ri, #pr.ThreeStar = :r3, #pr.OneStar = :r1",
                &[("#pr", "ProductReviews")],
                &["ProductReviews", "RelatedItems"],
            ),
            ("SET Price = if_not_exists(Price, :p)", &[], &["Price"]),
            (
                "SET #ri = list_append(:vals, #ri)",
                &[("#ri", "RelatedItems")],
                &["RelatedItems"],
            ),
            (
                "SET #ri = list_append(if_not_exists(#ri, :empty), :vals)",
                &[("#ri", "RelatedItems")],
                &["RelatedItems"],
            ),
            (
                "REMOVE Brand, InStock, QuantityOnHand",
                &[],
                &["Brand", "InStock", "QuantityOnHand"],
            ),
            (
                "REMOVE RelatedItems[1], RelatedItems[2]",
                &[],
                &["RelatedItems"],
            ),
            ("SET a = :v1 + :v2 + :v3", &[], &["a"]),
            ("SET a = b + c - d", &[], &["a", "b", "c", "d"]),
            ("SET a = if_not_exists(b, c) + :one", &[], &["a", "b", "c"]),
            (
                "remove a set b = :v delete c :d add d :e",
                &[],
                &["a", "b", "c", "d"],
            ),
            (
                "SET a=:v,b=c REMOVE d,e.f[0]",
                &[],
                &["a", "b", "c", "d", "e"],
            ),
            ("set Set1 = :v", &[], &["Set1"]),
        ];
        for (expr, pairs, expected) in cases {
            assert_eq!(
                update_attributes(expr, &names(pairs)),
                Ok(set(expected)),
                "{expr}"
            );
        }
    }

    #[test]
    fn update_refusals() {
        for expr in [
            "",
            "Price = :p",
            "SET",
            "SET a",
            "SET a =",
            "SET a = :v,",
            "SET a = :v, REMOVE b",
            "SET a = :v SET b = :w",
            "set a = :v SET b = :w",
            "REMOVE a REMOVE b",
            "SET a = :v + ",
            "SET a = + :v",
            "SET a = :v * :w",
            "SET a = (b)",
            "SET a = size(b)",
            "SET a = foo(b)",
            "SET a = if_not_exists(:v, :w)",
            "SET a = if_not_exists(b)",
            "SET a = list_append(b)",
            "SET a = list_append(b, c, d)",
            "SET :v = a",
            "SET a.b[x] = :v",
            "SET remove = :v",
            "SET a = remove",
            "SET a = :v REMOVE",
            "REMOVE :v",
            "REMOVE a = :v",
            "ADD a",
            "ADD a b",
            "ADD a :v :w",
            "DELETE a",
            "DELETE a, :v",
            "UPDATE a = :v",
            "SET #missing = :v",
            "SET a = #missing",
            "SET a = :v WHERE b = :c",
        ] {
            let r = update_attributes(expr, &none());
            assert!(
                matches!(r, Err(GatewayError::Validation(_))),
                "{expr:?} must be refused: {r:?}"
            );
        }
        let m = message(update_attributes("SET a = :v set b = :w", &none()));
        assert!(m.starts_with("Invalid UpdateExpression: "), "{m}");
        assert!(m.contains("SET"), "{m}");
    }

    // --- Bounds ---

    #[test]
    fn length_is_bounded() {
        let long = format!("a{}", ",a".repeat(2560)); // 5 KiB
        assert!(long.len() > MAX_EXPRESSION_LEN);
        let m = message(projection_attributes(&long, &none()));
        assert!(m.contains("maximum allowed size"), "{m}");
        let long = format!("a = :v{}", " ".repeat(MAX_EXPRESSION_LEN));
        assert!(condition_attributes(&long, &none()).is_err());
        // Just under the limit is fine.
        let fits = format!("a{}", ",a".repeat((MAX_EXPRESSION_LEN - 1) / 2));
        assert!(fits.len() <= MAX_EXPRESSION_LEN);
        assert_eq!(projection_attributes(&fits, &none()), Ok(set(&["a"])));
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = |n: usize| format!("{}a = :v{}", "(".repeat(n), ")".repeat(n));
        // 10,000 levels: refused (by length) without touching the stack.
        assert!(condition_attributes(&deep(10_000), &none()).is_err());
        // Under the length limit but far too deep.
        let m = message(condition_attributes(&deep(2_000), &none()));
        assert!(m.contains("nested too deeply"), "{m}");
        let m = message(condition_attributes(
            &format!("{}(", "(".repeat(4_000)),
            &none(),
        ));
        assert!(m.contains("nested too deeply"), "{m}");
        let m = message(condition_attributes(
            &format!("{}a = :v", "NOT ".repeat(1_000)),
            &none(),
        ));
        assert!(m.contains("nested too deeply"), "{m}");
        // At the limit: accepted.
        assert_eq!(
            condition_attributes(&deep(MAX_DEPTH), &none()),
            Ok(set(&["a"]))
        );
        assert!(condition_attributes(&deep(MAX_DEPTH + 1), &none()).is_err());
        let nested =
            |n: usize| format!("SET a = {}b{}", "list_append(".repeat(n), ", :v)".repeat(n));
        assert_eq!(
            update_attributes(&nested(MAX_DEPTH), &none()),
            Ok(set(&["a", "b"]))
        );
        let m = message(update_attributes(&nested(200), &none()));
        assert!(m.contains("nested too deeply"), "{m}");
        let m = message(update_attributes(
            &format!("SET a = :v{}", " + :v".repeat(301)),
            &none(),
        ));
        assert!(m.contains("too many operators"), "{m}");
        assert!(update_attributes(&format!("SET a = :v{}", " + :v".repeat(300)), &none()).is_ok());
        let list = |n: usize| {
            let items: Vec<String> = (0..n).map(|i| format!(":v{i}")).collect();
            format!("a IN ({})", items.join(","))
        };
        assert!(condition_attributes(&list(100), &none()).is_ok());
        assert!(condition_attributes(&list(101), &none()).is_err());
        // Long but flat chains are fine (the tree is n-ary, not 1,000 levels deep).
        let chain = format!("a = :v{}", " OR a = :v".repeat(300));
        assert_eq!(condition_attributes(&chain, &none()), Ok(set(&["a"])));
    }

    #[test]
    fn messages_are_short_and_escaped() {
        let hostile = format!("a \"\n{}", "x".repeat(3000));
        let m = message(projection_attributes(&hostile, &none()));
        assert!(m.len() <= 300, "{} chars: {m}", m.len());
        assert!(!m.contains('\n'), "{m}");
        let m = message(projection_attributes(
            &format!("#{}", "y".repeat(3000)),
            &none(),
        ));
        assert!(m.len() <= 300, "{} chars: {m}", m.len());
        let m = message(condition_attributes("a = :v \u{202e}", &none()));
        assert!(m.contains("Invalid character"), "{m}");
        assert!(m.contains("\\u{202e}"), "{m}");
        assert!(m.len() <= 300, "{m}");
        // Escaping cannot blow the message up: a control character takes up to ten bytes escaped.
        let controls = format!("a {}", "\u{1}".repeat(1000));
        let m = message(projection_attributes(&controls, &none()));
        assert!(m.len() <= 300, "{} chars: {m}", m.len());
        let m = message(projection_attributes(
            &format!("a b{}", "\u{1}".repeat(1000)),
            &none(),
        ));
        assert!(m.len() <= 300, "{} chars: {m}", m.len());
        assert!(!m.chars().any(char::is_control), "{m}");
    }

    // --- Never panic ---

    /// Runs every entry point; errors must be validation errors with short messages.
    fn all(expr: &str) {
        let n = names(&[("#a", "A"), ("#b", "b.c"), ("#p", "pk")]);
        let errors = [
            projection_attributes(expr, &n).err(),
            condition_attributes(expr, &n).err(),
            update_attributes(expr, &n).err(),
            key_condition_partition_value(expr, &n, "pk").err(),
        ];
        for error in errors.into_iter().flatten() {
            let GatewayError::Validation(m) = error else {
                panic!("not a validation error: {error:?}");
            };
            assert!(m.len() <= 300, "{} chars: {m}", m.len());
        }
    }

    fn vocabulary() -> impl Strategy<Value = String> {
        let words = proptest::sample::select(vec![
            "a",
            "pk",
            "sk",
            "#a",
            "#b",
            "#p",
            "#zz",
            ":v",
            ":w",
            "(",
            ")",
            "[",
            "]",
            "0",
            "12",
            ",",
            ".",
            "=",
            "<>",
            "<",
            "<=",
            ">",
            ">=",
            "+",
            "-",
            "AND",
            "or",
            "NOT",
            "between",
            "IN",
            "SET",
            "remove",
            "ADD",
            "DELETE",
            "size",
            "attribute_exists",
            "attribute_not_exists",
            "attribute_type",
            "begins_with",
            "contains",
            "if_not_exists",
            "list_append",
            " ",
        ]);
        proptest::collection::vec(words, 0..60).prop_map(|w| w.join(" "))
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(expr in any::<String>()) {
            all(&expr);
        }

        #[test]
        fn grammar_soup_never_panics(expr in "[a-z#:()\\[\\]0-9 ,.=<>+_-]{0,80}") {
            all(&expr);
        }

        #[test]
        fn token_soup_never_panics(expr in vocabulary()) {
            all(&expr);
        }

        #[test]
        fn attributes_are_the_named_tops(
            tops in proptest::collection::vec("[a-z][a-z0-9_]{0,6}", 1..8),
        ) {
            let tops: Vec<String> = tops
                .into_iter()
                .filter(|t| !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(t)))
                .collect();
            prop_assume!(!tops.is_empty());
            let projection = tops.iter().map(|t| format!("{t}.x[1]")).collect::<Vec<_>>().join(", ");
            let expected: BTreeSet<String> = tops.iter().cloned().collect();
            prop_assert_eq!(projection_attributes(&projection, &none()), Ok(expected.clone()));
            let condition = tops.iter().map(|t| format!("{t} = :v")).collect::<Vec<_>>().join(" AND ");
            prop_assert_eq!(condition_attributes(&condition, &none()), Ok(expected));
        }
    }
}
