//! Finding the `//` comments of a policy file.
//!
//! The grammar's `COMMENT` is silent, so comments are not in the parse tree.
//! They are found again by scanning the text outside the few leaf tokens that
//! may contain `//` as plain text: string text, string escapes and `///` doc
//! comments (which the tree does hold). Outside those, `//` can only start a
//! comment: the division operator is a `/` never followed by another `/`.

use pest::iterators::Pair;

use crate::syntax::Rule;

/// One `//` comment: its byte range (without the line break) and its text
/// with trailing whitespace removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    /// First byte (the first `/`).
    pub start: usize,
    /// One past the last byte of the line's text.
    pub end: usize,
    /// `// …`, trailing whitespace trimmed.
    pub text: String,
}

/// Every `//` comment of `text`, in order, given the parse tree of the
/// whole file.
pub fn comments(text: &str, file: Pair<'_, Rule>) -> Vec<Comment> {
    let mut opaque = Vec::new();
    collect_opaque(file, &mut opaque);
    opaque.sort_unstable();
    scan(text, &opaque)
}

fn collect_opaque(pair: Pair<'_, Rule>, out: &mut Vec<(usize, usize)>) {
    match pair.as_rule() {
        Rule::doc | Rule::str_text | Rule::str_escape => {
            let span = pair.as_span();
            out.push((span.start(), span.end()));
        }
        _ => {
            for child in pair.into_inner() {
                collect_opaque(child, out);
            }
        }
    }
}

/// Scans `text` for `//` outside the sorted, disjoint `opaque` ranges.
fn scan(text: &str, opaque: &[(usize, usize)]) -> Vec<Comment> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut opaque_idx = 0;
    let mut pos = 0;
    while pos + 1 < bytes.len() {
        while opaque_idx < opaque.len() && opaque[opaque_idx].1 <= pos {
            opaque_idx += 1;
        }
        if let Some(&(start, end)) = opaque.get(opaque_idx)
            && start <= pos
        {
            pos = end;
            continue;
        }
        if bytes[pos] == b'/' && bytes[pos + 1] == b'/' {
            let end = memchr::memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |n| pos + n);
            found.push(Comment {
                start: pos,
                end,
                text: text[pos..end].trim_end().to_string(),
            });
            pos = end;
        } else {
            pos += 1;
        }
    }
    found
}

/// The texts of every `//` comment and `///` doc comment of a file, in
/// order, trailing whitespace trimmed: what `fmt` must keep.
pub fn all_comment_texts(text: &str, file: Pair<'_, Rule>) -> Vec<String> {
    let mut docs = Vec::new();
    collect_docs(file.clone(), &mut docs);
    let mut all: Vec<(usize, String)> = comments(text, file)
        .into_iter()
        .map(|c| (c.start, c.text))
        .chain(docs)
        .collect();
    all.sort();
    all.into_iter().map(|(_, text)| text).collect()
}

fn collect_docs(pair: Pair<'_, Rule>, out: &mut Vec<(usize, String)>) {
    if pair.as_rule() == Rule::doc {
        out.push((pair.as_span().start(), pair.as_str().trim_end().to_string()));
        return;
    }
    for child in pair.into_inner() {
        collect_docs(child, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceText;

    fn texts(text: &str) -> Vec<String> {
        let src = SourceText::from_string("t.bangfu", text);
        let mut pairs = match crate::syntax::parse_file(&src) {
            Ok(pairs) => pairs,
            Err(error) => return vec![format!("{error}")],
        };
        match pairs.next() {
            Some(file) => all_comment_texts(text, file),
            None => Vec::new(),
        }
    }

    #[test]
    fn finds_comments_but_not_slashes_in_strings_or_docs() {
        let text = "// a\n/// doc\npolicy p \"x // not\" { // b\n  rule r { require 1 / 2 > 0 // c\n message \"{1 // d\n} //e\" }\n}\n";
        assert_eq!(
            texts(text),
            ["// a", "/// doc", "// b", "// c", "// d"].map(String::from)
        );
    }

    #[test]
    fn four_slashes_are_a_comment() {
        assert_eq!(texts("//// x\n"), ["//// x"].map(String::from));
    }
}
