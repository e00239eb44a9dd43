//! An AST with spans and expression ids left out, for comparing programs by
//! structure: `parse(fmt(x))` must equal `parse(x)` up to where things are
//! written.

use crate::ast::{File, Lowerer};
use crate::source::{SourceId, SourceText};
use crate::syntax::SyntaxError;

/// The structure of a parsed file as text, without spans or expression ids.
///
/// It is the `Debug` rendering of the AST with every `Span { … }` replaced by
/// `Span` and every `ExprId(n)` by `ExprId`, so a field added to the AST
/// later is compared without this function changing.
pub fn ast_shape(file: &File) -> String {
    strip(&format!("{file:?}"))
}

/// Parses `text` and gives its [`ast_shape`].
pub fn shape_of(text: &str) -> Result<String, SyntaxError> {
    let src = SourceText::from_string("<input>", text);
    let file = Lowerer::new().lower_file(SourceId(0), &src)?;
    Ok(ast_shape(&file))
}

fn strip(debug: &str) -> String {
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug;
    loop {
        let span_at = rest.find("Span { src: SourceId(");
        let id_at = rest.find("ExprId(");
        let (at, is_span) = match (span_at, id_at) {
            (Some(s), Some(i)) if s < i => (s, true),
            (Some(s), None) => (s, true),
            (_, Some(i)) => (i, false),
            (None, None) => break,
        };
        out.push_str(&rest[..at]);
        let (word, closer) = if is_span {
            ("Span", '}')
        } else {
            ("ExprId", ')')
        };
        out.push_str(word);
        rest = &rest[at..];
        rest = match rest.find(closer) {
            Some(end) => &rest[end + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_ids_do_not_matter() {
        let a = shape_of("policy p { rule r { require 1 + 2 > x } }");
        let b = shape_of("policy   p {\n  rule r {\n    require 1+2>x\n  }\n}\n");
        assert!(a.is_ok());
        assert_eq!(a.ok(), b.ok());
    }

    #[test]
    fn structure_does() {
        let a = shape_of("policy p { rule r { require (1 + 2) * 3 > x } }");
        let b = shape_of("policy p { rule r { require 1 + 2 * 3 > x } }");
        assert_ne!(a.ok(), b.ok());
    }
}
