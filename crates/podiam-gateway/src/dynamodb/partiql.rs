//! PartiQL: just enough to find the one table (or index) a statement touches, refusing anything
//! that could be read two ways.
//!
//! `ExecuteStatement`, `BatchExecuteStatement` and `ExecuteTransaction` name their table only
//! inside the statement text; the gateway reads the few statement forms it can attribute with
//! certainty and refuses every other one.

use super::Scope;
use super::names::{check_name, index_arn};
use super::validation::{length_constraint, validation};
use crate::GatewayError;

/// Longest PartiQL statement DynamoDB accepts.
const MAX_STATEMENT_LEN: usize = 8192;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token<'a> {
    /// An unquoted word: keyword, bare identifier or number.
    Word(&'a str),
    /// A double-quoted identifier, unescaped.
    Quoted(String),
    /// A single-quoted string literal (its text is irrelevant here).
    Text,
    /// Any other ASCII character.
    Punct(char),
}

/// Splits a statement into tokens, or `None` if it holds anything this reader does not fully
/// understand: comments, backslashes, Ion literals (backticks), non-ASCII outside quotes, or an
/// unterminated quote.
fn tokenize(statement: &str) -> Option<Vec<Token<'_>>> {
    let mut tokens = Vec::new();
    let mut chars = statement.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {}
            '\'' | '"' => {
                let mut text = String::new();
                loop {
                    match chars.next()? {
                        (_, q) if q == c => {
                            if chars.peek().map(|&(_, n)| n) == Some(c) {
                                chars.next();
                                text.push(c);
                            } else {
                                break;
                            }
                        }
                        (_, other) => text.push(other),
                    }
                }
                tokens.push(if c == '"' {
                    Token::Quoted(text)
                } else {
                    Token::Text
                });
            }
            c if c.is_ascii_alphanumeric() || c == '_' => {
                let mut end = start + 1;
                while let Some(&(i, n)) = chars.peek() {
                    if n.is_ascii_alphanumeric() || n == '_' || n == '$' {
                        end = i + 1;
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Word(statement.get(start..end)?));
            }
            '\\' | '`' => return None,
            '-' if chars.peek().map(|&(_, n)| n) == Some('-') => return None,
            '/' if chars.peek().map(|&(_, n)| n) == Some('*') => return None,
            c if c.is_ascii() && !c.is_ascii_control() => tokens.push(Token::Punct(c)),
            _ => return None,
        }
    }
    Some(tokens)
}

/// Words that start a statement or name its table; each statement form allows exactly its own.
const STATEMENT_WORDS: &[&str] = &[
    "SELECT", "INSERT", "UPDATE", "DELETE", "FROM", "INTO", "EXISTS",
];

fn is_word(token: Option<&Token<'_>>, word: &str) -> bool {
    matches!(token, Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
}

/// A table or index identifier: bare or double-quoted.
fn identifier<'t>(token: Option<&'t Token<'_>>) -> Option<&'t str> {
    match token? {
        Token::Word(w) => Some(w),
        Token::Quoted(q) => Some(q),
        Token::Text | Token::Punct(_) => None,
    }
}

/// The PartiQL action a statement needs and the table (or, for a `SELECT` from
/// `"Table"."Index"`, the index) it touches. `EXISTS(SELECT …)`, a condition check, is only
/// allowed in transactions.
pub(super) fn partiql(
    scope: &Scope<'_>,
    statement: &str,
    in_transaction: bool,
) -> Result<(&'static str, String), GatewayError> {
    let malformed = |why: &str| {
        validation(format!(
            "Statement wasn't well formed, can't be processed: {why}"
        ))
    };
    if statement.is_empty() {
        return Err(length_constraint(
            "statement",
            "Member must have length greater than or equal to 1",
        ));
    }
    if statement.len() > MAX_STATEMENT_LEN {
        return Err(length_constraint(
            "statement",
            &format!("Member must have length less than or equal to {MAX_STATEMENT_LEN}"),
        ));
    }
    let tokens = tokenize(statement).ok_or_else(|| {
        malformed("comments, backslashes, Ion literals and unterminated quotes are not accepted")
    })?;
    let words: Vec<&str> = tokens
        .iter()
        .filter_map(|t| match t {
            Token::Word(w) => STATEMENT_WORDS
                .iter()
                .find(|k| w.eq_ignore_ascii_case(k))
                .copied(),
            _ => None,
        })
        .collect();
    let at = |i: usize| tokens.get(i);
    let table_at = |i: usize| -> Result<String, GatewayError> {
        let name = identifier(at(i)).ok_or_else(|| malformed("expected a table name"))?;
        check_name("statement", name)?;
        Ok(scope.table(name))
    };
    match words.as_slice() {
        ["SELECT", "FROM"] if is_word(at(0), "SELECT") => {
            Ok(("PartiQLSelect", select_source(scope, &tokens)?))
        }
        ["EXISTS", "SELECT", "FROM"]
            if in_transaction
                && is_word(at(0), "EXISTS")
                && at(1) == Some(&Token::Punct('('))
                && is_word(at(2), "SELECT")
                && tokens.last() == Some(&Token::Punct(')')) =>
        {
            let inner = tokens
                .get(2..tokens.len().saturating_sub(1))
                .ok_or_else(|| malformed("expected EXISTS(SELECT ...)"))?;
            Ok(("PartiQLSelect", select_source(scope, inner)?))
        }
        ["INSERT", "INTO"]
            if is_word(at(0), "INSERT") && is_word(at(1), "INTO") && is_word(at(3), "VALUE") =>
        {
            Ok(("PartiQLInsert", table_at(2)?))
        }
        ["UPDATE"] if is_word(at(0), "UPDATE") && matches!(at(2), Some(Token::Word(_))) => {
            Ok(("PartiQLUpdate", table_at(1)?))
        }
        ["DELETE", "FROM"]
            if is_word(at(0), "DELETE")
                && is_word(at(1), "FROM")
                && matches!(at(3), None | Some(Token::Word(_))) =>
        {
            Ok(("PartiQLDelete", table_at(2)?))
        }
        _ => Err(malformed(
            "the gateway reads only SELECT ... FROM, INSERT INTO ... VALUE, UPDATE ... SET/REMOVE \
             and DELETE FROM statements on one table",
        )),
    }
}

/// The table or index after the single `FROM` of a `SELECT` (tokens start at `SELECT`).
fn select_source(scope: &Scope<'_>, tokens: &[Token<'_>]) -> Result<String, GatewayError> {
    let malformed = || {
        validation(
            "Statement wasn't well formed, can't be processed: expected FROM \"Table\" or \
             FROM \"Table\".\"Index\""
                .to_owned(),
        )
    };
    let from = tokens
        .iter()
        .position(|t| is_word(Some(t), "FROM"))
        .ok_or_else(malformed)?;
    let name = identifier(tokens.get(from + 1)).ok_or_else(malformed)?;
    check_name("statement", name)?;
    let table = scope.table(name);
    let (resource, next) = if tokens.get(from + 2) == Some(&Token::Punct('.')) {
        let index = identifier(tokens.get(from + 3)).ok_or_else(malformed)?;
        (index_arn(&table, "statement", index)?, from + 4)
    } else {
        (table, from + 2)
    };
    match tokens.get(next) {
        None | Some(Token::Word(_)) => Ok(resource),
        Some(_) => Err(malformed()),
    }
}

#[cfg(test)]
mod tests {
    use crate::GatewayError;
    use crate::dynamodb::Authorization;
    use crate::dynamodb::fixtures::{auths, is_validation, pair, pairs, table};

    fn statement(sql: &str) -> Result<Vec<Authorization>, GatewayError> {
        auths(
            "ExecuteStatement",
            &serde_json::json!({ "Statement": sql }).to_string(),
        )
    }

    fn statement_pairs(sql: &str) -> Vec<(String, String)> {
        statement(sql)
            .unwrap()
            .into_iter()
            .map(|a| (a.action, a.resource))
            .collect()
    }

    #[test]
    fn partiql_statements() {
        assert_eq!(
            statement_pairs(r#"SELECT * FROM "Music" WHERE Artist = 'Acme'"#),
            [pair("dynamodb:PartiQLSelect", &table("Music"))]
        );
        assert_eq!(
            statement_pairs(r#"select "from", 'FROM' from Music where a = ?"#),
            [pair("dynamodb:PartiQLSelect", &table("Music"))]
        );
        assert_eq!(
            statement_pairs(r#"SELECT * FROM "Music"."ByYear" WHERE y = 1999"#),
            [pair(
                "dynamodb:PartiQLSelect",
                &format!("{}/index/ByYear", table("Music"))
            )]
        );
        assert_eq!(
            statement_pairs(r#"INSERT INTO "my.table-1" VALUE {'pk': 'a', 'FROM': 'x'}"#),
            [pair("dynamodb:PartiQLInsert", &table("my.table-1"))]
        );
        assert_eq!(
            statement_pairs(r#"UPDATE "Music" SET AwardsWon = 1 WHERE Artist = 'it''s'"#),
            [pair("dynamodb:PartiQLUpdate", &table("Music"))]
        );
        assert_eq!(
            statement_pairs(r#"DELETE FROM Music WHERE Artist = 'Acme' RETURNING ALL OLD *"#),
            [pair("dynamodb:PartiQLDelete", &table("Music"))]
        );
    }

    #[test]
    fn partiql_refuses_what_it_cannot_read() {
        for sql in [
            "",
            "SELECT * FROM",
            r#"SELECT * FROM "Music", "Books""#,
            r#"SELECT * FROM "Music" WHERE a IN (SELECT * FROM "Books")"#,
            r#"SELECT * FROM "x/*""#,
            r#"SELECT * FROM "a:b""#,
            r#"SELECT * FROM "Mu""sic""#,
            r#"SELECT * FROM "Music"."ByYear"."More""#,
            r#"SELECT * FROM "Music -- comment"#,
            r#"SELECT * FROM "Music" -- FROM "Books""#,
            r#"SELECT * FROM /* c */ "Music""#,
            r#"SELECT * FROM "Music" WHERE a = 'it\'s'"#,
            r#"SELECT * FROM "Music" WHERE a = `{a: 1}`"#,
            "SELECT * FROM \u{a0}\"Music\"",
            r#"SELECT * FROM "arn:aws:dynamodb:eu-central-1:111122223333:table/Music""#,
            r#"EXISTS(SELECT * FROM "Music" WHERE a = 1)"#,
            r#"INSERT INTO "Music"."ByYear" VALUE {'a': 1}"#,
            r#"INSERT INTO "Music" SELECT * FROM "Books""#,
            r#"UPDATE "Music""#,
            r#"DELETE "Music""#,
            r#"DROP TABLE "Music""#,
            r#"'SELECT' * FROM "Music""#,
        ] {
            assert!(is_validation(statement(sql)), "{sql:?}");
        }
        let long = format!(r#"SELECT * FROM "Music" WHERE a = '{}'"#, "x".repeat(8192));
        assert!(is_validation(statement(&long)));
        assert!(is_validation(auths("ExecuteStatement", "{}")));
    }

    #[test]
    fn partiql_batches_and_transactions() {
        let body = serde_json::json!({ "Statements": [
            { "Statement": "SELECT * FROM \"Music\" WHERE a = ?", "Parameters": [{"S": "x"}] },
            { "Statement": "INSERT INTO \"Books\" VALUE {'a': ?}" },
            { "Statement": "SELECT * FROM \"Music\" WHERE a = ?" },
        ]})
        .to_string();
        assert_eq!(
            pairs("BatchExecuteStatement", &body),
            [
                pair("dynamodb:PartiQLSelect", &table("Music")),
                pair("dynamodb:PartiQLInsert", &table("Books")),
            ]
        );
        let body = serde_json::json!({ "TransactStatements": [
            { "Statement": "EXISTS(SELECT * FROM \"Music\" WHERE a = 1 AND b = 2)" },
            { "Statement": "UPDATE \"Books\" SET n = n + 1 WHERE a = 1" },
            { "Statement": "DELETE FROM \"Carts\" WHERE a = 1" },
        ]})
        .to_string();
        assert_eq!(
            pairs("ExecuteTransaction", &body),
            [
                pair("dynamodb:PartiQLSelect", &table("Music")),
                pair("dynamodb:PartiQLUpdate", &table("Books")),
                pair("dynamodb:PartiQLDelete", &table("Carts")),
            ]
        );
        let bad = serde_json::json!({ "TransactStatements": [
            { "Statement": "UPDATE \"Books\" SET n = 1 WHERE a = 1" },
            { "Statement": "SELECT * FROM \"x/*\"" },
        ]})
        .to_string();
        assert!(is_validation(auths("ExecuteTransaction", &bad)));
        let too_many = serde_json::json!({
            "Statements": vec![serde_json::json!({"Statement": "SELECT * FROM \"Music\""}); 26]
        })
        .to_string();
        assert!(is_validation(auths("BatchExecuteStatement", &too_many)));
    }
}
