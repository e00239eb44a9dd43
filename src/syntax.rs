//! Stage `syntax`: policy text → pest parse tree.
//!
//! Takes the text of one `.bangfu` file; gives the pest pairs of the grammar
//! in `grammar/bangfu.pest`, or a [`SyntaxError`] at the first position the
//! grammar cannot continue from, with what it expected there in words.
//!
//! **Invariant:** `syntax` knows no schema, no types and no data.

use miette::{Diagnostic, SourceSpan};
use pest::Parser as _;
use pest::iterators::Pairs;
use pest_derive::Parser;
use thiserror::Error;

use crate::source::SourceText;

pub mod recover;

mod generated {
    #![expect(
        missing_docs,
        reason = "the rule enum is generated from grammar/bangfu.pest, documented there"
    )]
    use super::Parser;

    /// The pest parser generated from `grammar/bangfu.pest`.
    #[derive(Parser)]
    #[grammar = "../grammar/bangfu.pest"]
    pub struct BangfuParser;
}

pub use generated::{BangfuParser, Rule};

/// Every problem the syntax stage (and lowering into the AST) can report.
#[derive(Debug, Error, Diagnostic)]
pub enum SyntaxError {
    /// The text does not follow the grammar.
    #[error("syntax error: {message}")]
    #[diagnostic(code(E0101), help("{help}"))]
    Grammar {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where parsing stopped.
        #[label("{label}")]
        span: SourceSpan,
        /// What went wrong.
        message: String,
        /// Short label.
        label: String,
        /// How to fix it.
        help: String,
    },
    /// A literal that cannot be read.
    #[error("invalid literal: {message}")]
    #[diagnostic(code(E0102), help("{help}"))]
    InvalidLiteral {
        /// The file.
        #[source_code]
        src: SourceText,
        /// The literal.
        #[label("here")]
        span: SourceSpan,
        /// What is wrong.
        message: String,
        /// How to fix it.
        help: String,
    },
    /// Brackets nested deeper than the parser's stack allows.
    #[error("nesting too deep: more than {limit} brackets open at once")]
    #[diagnostic(
        code(E0103),
        help("name the inner parts with `let` (or a `fn`) instead of nesting them")
    )]
    TooDeep {
        /// The file.
        #[source_code]
        src: SourceText,
        /// The bracket that opens one level too many.
        #[label("level {}", limit + 1)]
        span: SourceSpan,
        /// The most brackets that may be open at once.
        limit: usize,
    },
}

/// The most brackets (`(`, `[`, `{`) that may be open at once. The parser
/// and every stage after it recurse once per level; this bound keeps them
/// well inside the main thread's stack (an 8 MiB stack overflowed between
/// 300 and 500 levels).
pub const MAX_NESTING: usize = 64;

/// [`SyntaxError::TooDeep`] at the first bracket past [`MAX_NESTING`],
/// outside strings and comments.
fn check_nesting(src: &SourceText, text: &str) -> Result<(), SyntaxError> {
    let bytes = text.as_bytes();
    let (mut depth, mut at) = (0usize, 0usize);
    while at < bytes.len() {
        match bytes[at] {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(SyntaxError::TooDeep {
                        src: src.clone(),
                        span: SourceSpan::new(at.into(), 1),
                        limit: MAX_NESTING,
                    });
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'"' => {
                // To the closing quote; a backslash escapes the next byte.
                at += 1;
                while at < bytes.len() && bytes[at] != b'"' {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if bytes.get(at + 1) == Some(&b'/') => {
                at = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |end| at + end);
            }
            _ => {}
        }
        at += 1;
    }
    Ok(())
}

/// Parses a whole file.
pub fn parse_file(src: &SourceText) -> Result<Pairs<'_, Rule>, SyntaxError> {
    parse_rule(src, Rule::file)
}

/// Parses a lone expression (a `--param` value, a REPL line).
pub fn parse_expr(src: &SourceText) -> Result<Pairs<'_, Rule>, SyntaxError> {
    parse_rule(src, Rule::expr_only)
}

fn parse_rule(src: &SourceText, rule: Rule) -> Result<Pairs<'_, Rule>, SyntaxError> {
    let Some(text) = src.text() else {
        let valid_up_to = std::str::from_utf8(src.bytes())
            .err()
            .map_or(0, |e| e.valid_up_to());
        return Err(SyntaxError::Grammar {
            src: src.clone(),
            span: SourceSpan::new(valid_up_to.into(), 0),
            message: format!("the file is not valid UTF-8 (byte {valid_up_to})"),
            label: "invalid UTF-8 starts here".into(),
            help: "save the policy file as UTF-8".into(),
        });
    };
    check_nesting(src, text)?;
    BangfuParser::parse(rule, text).map_err(|error| grammar_error(src, text, error))
}

fn grammar_error(src: &SourceText, text: &str, error: pest::error::Error<Rule>) -> SyntaxError {
    let (start, end) = match error.location {
        pest::error::InputLocation::Pos(pos) => (pos, pos),
        pest::error::InputLocation::Span((start, end)) => (start, end),
    };
    let (positives, negatives) = match &error.variant {
        pest::error::ErrorVariant::ParsingError {
            positives,
            negatives,
        } => (positives.clone(), negatives.clone()),
        pest::error::ErrorVariant::CustomError { .. } => (Vec::new(), Vec::new()),
    };
    let mut expected: Vec<&str> = positives
        .iter()
        .filter_map(|rule| describe(*rule))
        .collect();
    expected.sort_unstable();
    expected.dedup();
    let found = found_at(text, start);
    let message = if expected.is_empty() {
        format!("unexpected {found}")
    } else {
        format!("expected {}, found {found}", join_or(&expected))
    };
    let label = if negatives.contains(&Rule::keyword) || found_is_keyword(text, start) {
        "a keyword cannot be used as a name here".to_string()
    } else if expected.is_empty() {
        "unexpected here".to_string()
    } else {
        format!("expected {}", join_or(&expected))
    };
    let help = help_for(&expected, text, start);
    // Point at the token that stopped the parser, not at a zero-width gap.
    let token_len = token_at(text, start)
        .len()
        .max(1)
        .min(text.len().saturating_sub(start))
        .max(usize::from(start < text.len()));
    SyntaxError::Grammar {
        src: src.clone(),
        span: SourceSpan::new(start.into(), (end - start).max(token_len)),
        message,
        label,
        help,
    }
}

fn token_at(text: &str, pos: usize) -> &str {
    let rest = text.get(pos..).unwrap_or("");
    let rest = rest.trim_start_matches([' ', '\t']);
    let first = rest.chars().next();
    match first {
        None => "",
        Some(c) if c.is_alphanumeric() || c == '_' => {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        }
        Some(c) => &rest[..c.len_utf8()],
    }
}

fn found_at(text: &str, pos: usize) -> String {
    match token_at(text, pos) {
        "" => "end of file".to_string(),
        "\n" | "\r" => "end of line".to_string(),
        token => format!("`{token}`"),
    }
}

fn found_is_keyword(text: &str, pos: usize) -> bool {
    matches!(
        token_at(text, pos),
        "and"
            | "or"
            | "not"
            | "in"
            | "where"
            | "as"
            | "if"
            | "then"
            | "else"
            | "true"
            | "false"
            | "null"
            | "let"
            | "require"
            | "message"
            | "severity"
            | "for"
    )
}

fn join_or(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

fn help_for(expected: &[&str], text: &str, pos: usize) -> String {
    let token = token_at(text, pos);
    if found_is_keyword(text, pos) {
        return format!("`{token}` is a keyword; rename the binding or field (e.g. `{token}_`)");
    }
    if token == "=" && expected.iter().any(|e| e.contains("operator")) {
        return "compare with `==`; a single `=` only appears in `let` and `param`".into();
    }
    if token == "&" || token == "|" {
        return "write `and` / `or` for boolean logic".into();
    }
    if token == "!" {
        return "write `not` for negation, `!=` for inequality".into();
    }
    if expected.contains(&"`}`") {
        return "a block closes with `}`: check that every `{` has its `}`".into();
    }
    if expected.contains(&"an expression") {
        return "write a value here: a name, a number, a string, a call or a parenthesised expression".into();
    }
    if expected.contains(&"a rule statement") || expected.contains(&"a policy item") {
        return "a policy holds `source`, `param`, `rule` and `severity`; a rule holds `for`, `let`, `require`, `message` and `severity`".into();
    }
    "see docs/language.md for the grammar".into()
}

/// A human name for what a grammar rule expects, or `None` for rules that
/// are not worth naming in a message.
fn describe(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::EOI => "end of file",
        Rule::ident => "a name",
        Rule::string => "a string",
        Rule::number => "a number",
        Rule::expr
        | Rule::where_expr
        | Rule::coalesce
        | Rule::or_expr
        | Rule::and_expr
        | Rule::not_expr
        | Rule::cmp_expr
        | Rule::add_expr
        | Rule::mul_expr
        | Rule::unary
        | Rule::postfix
        | Rule::call
        | Rule::paren
        | Rule::list_lit
        | Rule::map_lit
        | Rule::if_expr
        | Rule::list_elem => "an expression",
        Rule::cmp_op | Rule::add_op | Rule::mul_op | Rule::not_in => "an operator",
        Rule::field_access | Rule::index => "an operator",
        Rule::type_expr
        | Rule::list_type
        | Rule::map_type
        | Rule::ref_type
        | Rule::inline_enum
        | Rule::named_type => "a type",
        Rule::schema_decl | Rule::policy_decl | Rule::kw_schema | Rule::kw_policy => {
            "`schema` or `policy`"
        }
        Rule::collection_decl | Rule::enum_decl | Rule::kw_collection => "`collection` or `enum`",
        Rule::field_decl => "a field",
        Rule::source_decl
        | Rule::param_decl
        | Rule::rule_decl
        | Rule::kw_source
        | Rule::kw_param
        | Rule::kw_rule => "a policy item",
        Rule::for_stmt
        | Rule::let_stmt
        | Rule::require_stmt
        | Rule::message_stmt
        | Rule::severity_stmt
        | Rule::kw_for
        | Rule::kw_let
        | Rule::kw_require
        | Rule::kw_message
        | Rule::kw_severity => "a rule statement",
        Rule::kw_in => "`in`",
        Rule::kw_then => "`then`",
        Rule::kw_else => "`else`",
        Rule::kw_where => "`where`",
        Rule::kw_and | Rule::kw_or => "an operator",
        Rule::optional => "`?`",
        Rule::doc => "a doc comment",
        Rule::key_clause | Rule::kw_key => "`key`",
        Rule::extends_clause | Rule::kw_extends => "`extends`",
        Rule::backref | Rule::kw_backref => "`backref`",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<(), String> {
        let src = SourceText::from_string("t.bangfu", text);
        parse_file(&src).map(|_| ()).map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_unicode_names_and_templates() {
        let text = "policy 政策 \"标题\" {\n  param 门槛: int = 20 // comment\n  rule r {\n    for v in 组 where v.人数 >= 门槛\n    require count(v.成员 where 角色 == 组长) == 1\n    message \"组{v.名}有{{括号}}\"\n  }\n}\n";
        assert_eq!(check(text), Ok(()));
    }

    #[test]
    fn reports_what_was_expected() {
        let error = check("policy p { rule r { require a = 1 } }")
            .err()
            .unwrap_or_default();
        assert!(error.contains("expected"), "{error}");
    }
}
