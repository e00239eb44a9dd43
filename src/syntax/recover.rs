//! Every syntax error of a file, not only the first.
//!
//! pest stops at the first position the grammar cannot continue from. To
//! report more, [`syntax_errors`] resynchronises after each error at the next
//! line that starts with a declaration keyword (`schema`, `policy`, `rule`,
//! `collection`, `enum`, `param`, `import`, `fn`, `script`, `test`), parses
//! that one declaration alone with its grammar rule, and reports its first
//! error, if any. A declaration that
//! parses alone is skipped whole. Errors are thus reported at most once per
//! declaration, and never for a declaration that is well formed on its own,
//! so a missing `}` gives one error, not one per later rule.

use pest::Parser as _;

use super::{BangfuParser, Rule, SyntaxError, grammar_error, parse_file};
use crate::source::SourceText;

/// At most this many syntax errors are reported per file.
pub const MAX_SYNTAX_ERRORS: usize = 20;

/// Every syntax error of the file (empty when it parses).
pub fn syntax_errors(src: &SourceText) -> Vec<SyntaxError> {
    let Some(text) = src.text() else {
        return parse_file(src).err().into_iter().collect();
    };
    if let Err(error) = super::check_nesting(src, text) {
        return vec![error];
    }
    let first = match BangfuParser::parse(Rule::file, text) {
        Ok(_) => return Vec::new(),
        Err(error) => error,
    };
    let mut from = error_start(&first.location);
    let mut reported = vec![from];
    let mut errors = vec![grammar_error(src, text, first)];
    while errors.len() < MAX_SYNTAX_ERRORS {
        let Some((at, rules)) = next_declaration(text, from) else {
            break;
        };
        // The declaration parses when some rule for its keyword parses
        // further than every other rule failed (`fn f() -> int = 1 +` is a
        // broken function, not a script function followed by junk). A
        // declaration is parsed as a prefix: what follows its end is looked
        // at only from the next declaration keyword on.
        let mut consumed: Option<usize> = None;
        let mut failed: Option<(usize, pest::error::Error<Rule>)> = None;
        for rule in rules {
            match BangfuParser::parse(*rule, &text[at..]) {
                Ok(mut pairs) => {
                    let end = pairs.next().map_or(0, |pair| pair.as_span().end());
                    consumed = Some(consumed.map_or(end, |c| c.max(end)));
                }
                Err(error) => {
                    let pos = error_start(&error.location);
                    if failed.as_ref().is_none_or(|(p, _)| pos > *p) {
                        failed = Some((pos, error));
                    }
                }
            }
        }
        let parsed = match (consumed, failed) {
            (Some(end), Some((pos, _))) if end >= pos => Ok(end),
            (Some(end), None) => Ok(end),
            (_, Some((_, error))) => Err(Some(error)),
            (None, None) => Err(None),
        };
        match parsed {
            Ok(consumed) => {
                from = at + consumed.max(1);
            }
            Err(None) => from = at + 1,
            Err(Some(mut error)) => {
                error.location = match error.location {
                    pest::error::InputLocation::Pos(pos) => {
                        pest::error::InputLocation::Pos(pos + at)
                    }
                    pest::error::InputLocation::Span((start, end)) => {
                        pest::error::InputLocation::Span((start + at, end + at))
                    }
                };
                let start = error_start(&error.location);
                if !reported.contains(&start) {
                    reported.push(start);
                    errors.push(grammar_error(src, text, error));
                }
                from = start.max(at + 1);
            }
        }
    }
    errors
}

fn error_start(location: &pest::error::InputLocation) -> usize {
    match location {
        pest::error::InputLocation::Pos(pos) => *pos,
        pest::error::InputLocation::Span((start, _)) => *start,
    }
}

/// The first declaration keyword at or after `from` that starts a line
/// (after indentation) and is followed by a name, with the grammar rules a
/// declaration starting with it may follow.
fn next_declaration(text: &str, from: usize) -> Option<(usize, &'static [Rule])> {
    const KEYWORDS: &[(&str, &[Rule])] = &[
        ("schema", &[Rule::schema_decl]),
        ("policy", &[Rule::policy_decl]),
        ("rule", &[Rule::rule_decl]),
        ("collection", &[Rule::collection_decl]),
        ("enum", &[Rule::enum_decl]),
        ("param", &[Rule::param_decl, Rule::test_param]),
        ("import", &[Rule::import_decl]),
        ("fn", &[Rule::fn_decl, Rule::script_fn]),
        ("script", &[Rule::script_decl]),
        ("test", &[Rule::test_decl]),
        ("path", &[Rule::path_decl]),
        ("prefix", &[Rule::prefix_decl]),
    ];
    let mut line_start = text.get(..from)?.rfind('\n').map_or(0, |n| n + 1);
    while line_start < text.len() {
        let line_end = text[line_start..]
            .find('\n')
            .map_or(text.len(), |n| line_start + n);
        let line = &text[line_start..line_end];
        let indent = line.len() - line.trim_start().len();
        let at = line_start + indent;
        if at >= from {
            let rest = &line[indent..];
            for (keyword, rule) in KEYWORDS {
                if let Some(after) = rest.strip_prefix(keyword)
                    && after.starts_with([' ', '\t'])
                    && !after.trim_start().starts_with(':')
                {
                    return Some((at, rule));
                }
            }
        }
        line_start = line_end + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of_errors(text: &str) -> Vec<usize> {
        let src = SourceText::from_string("t.bangfu", text);
        syntax_errors(&src)
            .iter()
            .map(|error| match error {
                SyntaxError::Grammar { span, .. }
                | SyntaxError::InvalidLiteral { span, .. }
                | SyntaxError::TooDeep { span, .. } => src.line_col(span.offset()).0,
            })
            .collect()
    }

    #[test]
    fn reports_one_error_per_broken_rule() {
        let text = "policy p {\n  rule a {\n    require x = 1\n  }\n  rule b {\n    require y\n  }\n  rule c {\n    require z &\n  }\n}\n";
        assert_eq!(lines_of_errors(text), vec![3, 9]);
    }

    #[test]
    fn a_missing_brace_is_one_error() {
        let text = "policy p {\n  rule a {\n    require x\n  rule b {\n    require y\n  }\n}\n";
        assert_eq!(lines_of_errors(text).len(), 1);
    }

    #[test]
    fn a_field_named_like_a_keyword_is_no_sync_point() {
        let text = "schema {\n  collection c key id {\n    id: string\n    param: int =\n  }\n}\n";
        assert_eq!(lines_of_errors(text), vec![4]);
    }

    #[test]
    fn functions_in_scripts_and_test_params_are_declarations_too() {
        let text = "script \"s.rhai\" {\n  fn a() -> int\n}\ntest t {\n  param p.x = 1\n  rules \"a\" \"b\"\n}\npolicy p {\n  rule r { require x = 1 }\n}\nfn f( -> int = 1\n";
        assert_eq!(lines_of_errors(text), vec![6, 9, 11]);
    }

    #[test]
    fn a_good_file_has_none() {
        assert!(lines_of_errors("policy p { rule a { require true } }").is_empty());
    }
}
