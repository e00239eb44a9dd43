//! `fmt`: the one canonical layout of a policy file.
//!
//! Takes the text of a `.bangfu` file; gives the same program laid out the
//! canonical way, or the file's [`SyntaxError`] when it does not parse.
//! The layout: two-space indentation, one statement per line, one space
//! around binary operators and after commas and colons, a blank line between
//! top-level items and around rules, at most one blank line elsewhere (kept
//! where the author left one), no trailing whitespace, one final newline.
//! A list, map or enum wider than [`MAX_WIDTH`] columns, or holding a
//! comment, is broken one element per line with a trailing comma; the
//! records of a policy test's data are a table, one record per line, each
//! on one line however long. An empty block is `{}`. Strings
//! (messages included) are kept as written, however long; only the
//! expressions interpolated in them are laid out.
//!
//! Every `//` comment and `///` doc comment is kept. Comments are not in the
//! parse tree (the grammar's `COMMENT` is silent, and stays so: the parser
//! is shared), so [`comments`] finds them in the text between tokens, and the
//! writer puts each one back before the first token that followed it in the
//! source: a comment that ended a line still ends one, a comment on its own
//! line stays on its own line. A comment between two tokens of an expression
//! breaks the expression there, and the rest of it hangs four spaces deeper.
//!
//! **Invariants:** `fmt(fmt(x)) == fmt(x)`; `fmt(x)` parses to the same AST
//! as `x` up to spans and ids ([`normalize::ast_shape`]); the comment and doc
//! texts of `fmt(x)` are those of `x`, in the same order. `fmt` knows no
//! schema, no types and no data; it never writes a file (the CLI does).

pub mod comments;
pub mod normalize;

use pest::iterators::Pair;

use crate::source::SourceText;
use crate::syntax::{self, Rule, SyntaxError};
use comments::Comment;

/// Lists, maps and enums wider than this many columns are broken one
/// element per line.
pub const MAX_WIDTH: usize = 100;

/// Formats a policy file.
pub fn format(src: &SourceText) -> Result<String, SyntaxError> {
    let mut pairs = syntax::parse_file(src)?;
    let text = src.text().unwrap_or_default();
    let Some(file) = pairs.next() else {
        return Ok(String::new());
    };
    let found = comments::comments(text, file.clone());
    let mut writer = Writer::new(text, found, MAX_WIDTH);
    writer.file(file);
    Ok(writer.finish())
}

/// Formats text (for tests and tools that have no file name).
pub fn format_str(text: &str) -> Result<String, SyntaxError> {
    format(&SourceText::from_string("<input>", text))
}

/// How blank lines between the children of a block are decided.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Blank {
    /// Always one blank line between two children (top-level items).
    Always,
    /// One blank line where the source has at least one.
    Preserve,
    /// Always around `rule` declarations, preserved elsewhere (policy bodies).
    AroundRules,
}

struct Writer<'s> {
    src: &'s str,
    comments: Vec<Comment>,
    next_comment: usize,
    out: String,
    indent: usize,
    at_line_start: bool,
    /// Source offset just past the last token or comment written.
    last_end: usize,
    /// Inside a statement's expression: line breaks hang deeper, and blank
    /// lines are not kept.
    in_expr: bool,
    /// A new line now would continue a statement (4 more spaces).
    hanging: bool,
    /// The current line is such a continuation.
    line_hangs: bool,
    /// Inside a string's interpolation: lists are never broken.
    in_string: usize,
    /// Inside a test data record: a record is a row and stays on one line.
    in_record: usize,
    /// End offset of the statement being written (its closing bracket is
    /// the byte before it).
    src_end_of_statement: usize,
    max_width: usize,
}

impl<'s> Writer<'s> {
    fn new(src: &'s str, comments: Vec<Comment>, max_width: usize) -> Writer<'s> {
        Writer {
            src,
            comments,
            next_comment: 0,
            out: String::new(),
            indent: 0,
            at_line_start: true,
            last_end: 0,
            in_expr: false,
            hanging: false,
            line_hangs: false,
            in_string: 0,
            in_record: 0,
            src_end_of_statement: 0,
            max_width,
        }
    }

    fn finish(mut self) -> String {
        self.flush(self.src.len(), false);
        self.ensure_newline();
        while self.out.ends_with("\n\n") {
            self.out.pop();
        }
        if self.out == "\n" {
            self.out.clear();
        }
        self.out
    }

    // ------------------------------------------------------------ output

    fn write_indent(&mut self) {
        let n = self.indent * 2 + if self.hanging { 4 } else { 0 };
        self.out.extend(std::iter::repeat_n(' ', n));
        self.line_hangs = self.hanging;
        self.at_line_start = false;
    }

    fn trim_trailing_spaces(&mut self) {
        let kept = self.out.trim_end_matches([' ', '\t']).len();
        self.out.truncate(kept);
    }

    fn newline(&mut self) {
        self.trim_trailing_spaces();
        self.out.push('\n');
        self.at_line_start = true;
    }

    fn ensure_newline(&mut self) {
        if !self.at_line_start {
            self.newline();
        }
    }

    fn blank_line(&mut self) {
        self.ensure_newline();
        if !self.out.is_empty() && !self.out.ends_with("\n\n") && !self.out.ends_with("{\n") {
            self.out.push('\n');
        }
    }

    fn space(&mut self) {
        if !self.at_line_start && !self.out.ends_with(' ') {
            self.out.push(' ');
        }
    }

    /// Writes a token found at `start..end` of the source, after the
    /// comments before it.
    fn token(&mut self, text: &str, start: usize, end: usize) {
        self.flush(start, false);
        if self.at_line_start {
            self.write_indent();
        }
        self.out.push_str(text);
        self.last_end = self.last_end.max(end);
        if self.in_expr {
            self.hanging = true;
        }
    }

    /// Writes punctuation whose exact source position is not tracked
    /// (`{`, `:`, `=`, `,`, `??`); comments before it come after it.
    fn punct(&mut self, text: &str) {
        if self.at_line_start {
            self.write_indent();
        }
        self.out.push_str(text);
        if self.in_expr {
            self.hanging = true;
        }
    }

    fn pair_token(&mut self, pair: &Pair<'_, Rule>) {
        let span = pair.as_span();
        self.token(pair.as_str(), span.start(), span.end());
    }

    /// Writes the comments that start before `pos`. With `trailing_only`,
    /// only those on the line of the last token.
    fn flush(&mut self, pos: usize, trailing_only: bool) {
        while let Some(comment) = self.comments.get(self.next_comment) {
            if comment.start >= pos {
                break;
            }
            let gap = &self.src[self.last_end.min(comment.start)..comment.start];
            let same_line = !gap.contains('\n') && !self.at_line_start && !self.out.is_empty();
            if trailing_only && !same_line {
                break;
            }
            let text = comment.text.clone();
            let end = comment.end;
            if same_line {
                self.trim_trailing_spaces();
                self.out.push(' ');
            } else {
                self.ensure_newline();
                if !self.in_expr && gap.matches('\n').count() >= 2 {
                    self.blank_line();
                }
                self.write_indent();
            }
            self.out.push_str(&text);
            self.newline();
            self.last_end = end;
            self.next_comment += 1;
        }
    }

    fn has_comment_in(&self, start: usize, end: usize) -> bool {
        self.comments[self.next_comment..]
            .iter()
            .take_while(|c| c.start < end)
            .any(|c| c.start >= start)
    }

    fn column(&self) -> usize {
        if self.at_line_start {
            return self.indent * 2 + if self.hanging { 4 } else { 0 };
        }
        let line_start = self.out.rfind('\n').map_or(0, |n| n + 1);
        self.out[line_start..].chars().count()
    }

    /// The width of `pair` laid out on one line, without comments.
    fn flat_width(&self, pair: &Pair<'_, Rule>) -> usize {
        let mut scratch = Writer::new(self.src, Vec::new(), usize::MAX);
        scratch.in_expr = true;
        scratch.at_line_start = false;
        scratch.node(pair.clone());
        scratch.out.chars().count()
    }

    // ------------------------------------------------------------ items

    fn file(&mut self, file: Pair<'_, Rule>) {
        let items: Vec<Pair<'_, Rule>> = file
            .into_inner()
            .filter(|p| p.as_rule() != Rule::EOI)
            .collect();
        self.children(items, Blank::Always);
    }

    /// Writes the children of a block, one per line.
    fn children(&mut self, children: Vec<Pair<'_, Rule>>, blank: Blank) {
        let mut previous: Option<Rule> = None;
        for child in children {
            let start = child.as_span().start();
            self.flush(start, true);
            if let Some(previous) = previous {
                let rule_next = previous == Rule::rule_decl || child.as_rule() == Rule::rule_decl;
                if blank == Blank::Always || (blank == Blank::AroundRules && rule_next) {
                    self.blank_line();
                }
            }
            self.flush(start, false);
            self.ensure_newline();
            if !self.out.is_empty() && self.last_end <= start {
                let gap = &self.src[self.last_end..start];
                if gap.matches('\n').count() >= 2 {
                    self.blank_line();
                }
            }
            previous = Some(child.as_rule());
            self.hanging = false;
            self.statement(child);
            self.hanging = false;
        }
    }

    /// Writes `{`, the children, and `}` (at `close`, the `}`'s offset).
    fn block(&mut self, children: Vec<Pair<'_, Rule>>, close: usize, blank: Blank) {
        self.space();
        if children.is_empty() && !self.has_comment_in(self.last_end, close) {
            self.punct("{");
            self.token("}", close, close + 1);
            return;
        }
        self.punct("{");
        self.indent += 1;
        self.children(children, blank);
        self.flush(close, false);
        self.ensure_newline();
        self.indent -= 1;
        self.token("}", close, close + 1);
    }

    fn docs(&mut self, docs: &[Pair<'_, Rule>]) {
        for doc in docs {
            self.ensure_newline();
            let span = doc.as_span();
            self.token(doc.as_str().trim_end(), span.start(), span.end());
            self.newline();
        }
    }

    /// One item, declaration or statement, on its own line(s).
    fn statement(&mut self, pair: Pair<'_, Rule>) {
        let rule = pair.as_rule();
        let (start, end) = (pair.as_span().start(), pair.as_span().end());
        let (docs, rest): (Vec<_>, Vec<_>) =
            pair.into_inner().partition(|p| p.as_rule() == Rule::doc);
        self.docs(&docs);
        match rule {
            Rule::schema_decl
            | Rule::policy_decl
            | Rule::rule_decl
            | Rule::collection_decl
            | Rule::script_decl
            | Rule::test_decl
            | Rule::test_data
            | Rule::test_expect => {
                // The header is the keyword, names, title and clauses
                // before `{`; everything else is the body, so a body item
                // the grammar gains later is laid out one per line (verbatim
                // if this writer does not know it) and never lands before
                // the `{`.
                let is_body = |r: Rule| {
                    !matches!(
                        r,
                        Rule::kw_schema
                            | Rule::kw_policy
                            | Rule::kw_rule
                            | Rule::kw_collection
                            | Rule::kw_script
                            | Rule::kw_test
                            | Rule::kw_data
                            | Rule::kw_expect
                            | Rule::ident
                            | Rule::string
                            | Rule::key_clause
                            | Rule::extends_clause
                    )
                };
                let (body, header): (Vec<_>, Vec<_>) =
                    rest.into_iter().partition(|p| is_body(p.as_rule()));
                for (idx, part) in header.into_iter().enumerate() {
                    if idx > 0 {
                        self.space();
                    }
                    self.node(part);
                }
                let blank = match rule {
                    Rule::schema_decl => Blank::Always,
                    Rule::policy_decl => Blank::AroundRules,
                    _ => Blank::Preserve,
                };
                self.block(body, end - 1, blank);
            }
            Rule::enum_decl => {
                let mut parts = rest.into_iter();
                for part in parts.by_ref() {
                    let is_list = part.as_rule() == Rule::ident_list;
                    if is_list {
                        self.space();
                        self.ident_list(part, end - 1);
                        break;
                    }
                    if part.as_rule() != Rule::kw_enum {
                        self.space();
                    }
                    self.node(part);
                }
            }
            Rule::import_decl
            | Rule::prefix_decl
            | Rule::fn_decl
            | Rule::script_fn
            | Rule::field_decl
            | Rule::param_decl
            | Rule::source_decl
            | Rule::severity_stmt
            | Rule::effective_decl
            | Rule::scope_decl
            | Rule::path_decl
            | Rule::for_stmt
            | Rule::let_stmt
            | Rule::require_stmt
            | Rule::message_stmt
            | Rule::test_rules
            | Rule::test_param
            | Rule::test_data_file
            | Rule::test_waiver
            | Rule::test_as_of
            | Rule::data_collection
            | Rule::expected => {
                self.in_expr = true;
                self.hanging = false;
                self.src_end_of_statement = end;
                self.simple_statement(rule, rest);
                self.in_expr = false;
                self.hanging = false;
            }
            // A declaration this formatter does not know (the grammar grew):
            // kept exactly as written, comments included.
            _ => self.verbatim(start, end),
        }
    }

    /// Writes `start..end` of the source as it is, with the comments in it.
    fn verbatim(&mut self, start: usize, end: usize) {
        self.flush(start, false);
        if self.at_line_start {
            self.write_indent();
        }
        self.out.push_str(&self.src[start..end]);
        while self
            .comments
            .get(self.next_comment)
            .is_some_and(|c| c.start < end)
        {
            self.next_comment += 1;
        }
        self.last_end = self.last_end.max(end);
        if self.in_expr {
            self.hanging = true;
        }
    }

    fn simple_statement(&mut self, rule: Rule, parts: Vec<Pair<'_, Rule>>) {
        match rule {
            Rule::field_decl => {
                let mut parts = parts.into_iter();
                if let Some(name) = parts.next() {
                    self.node(name);
                }
                self.punct(":");
                for part in parts {
                    self.space();
                    self.node(part);
                }
            }
            Rule::fn_decl | Rule::script_fn => {
                for part in parts {
                    match part.as_rule() {
                        Rule::kw_fn => self.node(part),
                        Rule::fn_params => {
                            self.punct("(");
                            self.comma_list(part.into_inner().collect());
                            self.punct(")");
                        }
                        Rule::type_expr => {
                            self.space();
                            self.punct("->");
                            self.space();
                            self.node(part);
                        }
                        Rule::expr => {
                            self.space();
                            self.punct("=");
                            self.space();
                            self.node(part);
                        }
                        _ => {
                            self.space();
                            self.node(part);
                        }
                    }
                }
            }
            Rule::test_param | Rule::expected => {
                let mut idents = 0;
                for part in parts {
                    match part.as_rule() {
                        Rule::ident => {
                            match idents {
                                0 if rule == Rule::test_param => self.space(),
                                0 => {}
                                _ => self.punct("."),
                            }
                            idents += 1;
                            self.node(part);
                        }
                        Rule::expr => {
                            self.space();
                            self.punct("=");
                            self.space();
                            self.node(part);
                        }
                        _ => {
                            if idents > 0 {
                                self.space();
                            }
                            self.node(part);
                        }
                    }
                }
            }
            Rule::test_rules => {
                let mut parts = parts.into_iter();
                if let Some(kw) = parts.next() {
                    self.node(kw);
                }
                self.space();
                self.comma_list(parts.collect());
            }
            Rule::scope_decl | Rule::path_decl => {
                let mut parts = parts.into_iter();
                if let Some(kw) = parts.next() {
                    self.node(kw);
                }
                self.space();
                let (start, end) = (self.last_end, self.src_end_of_statement);
                self.punct("{");
                self.sequence(parts.collect(), start, end, "}", true);
            }
            Rule::data_collection => {
                let mut parts = parts.into_iter();
                if let Some(name) = parts.next() {
                    self.node(name);
                }
                self.space();
                let end = self.src_end_of_statement;
                self.punct("[");
                // A table: one record per line, whatever their width.
                let records: Vec<_> = parts.collect();
                if records.is_empty() {
                    self.token("]", end - 1, end);
                } else {
                    self.broken(records, end - 1, "]");
                }
            }
            Rule::param_decl | Rule::let_stmt => {
                for part in parts {
                    match part.as_rule() {
                        Rule::type_expr => {
                            self.punct(":");
                            self.space();
                            self.node(part);
                        }
                        Rule::expr => {
                            self.space();
                            self.punct("=");
                            self.space();
                            self.node(part);
                        }
                        _ => {
                            self.space();
                            self.node(part);
                        }
                    }
                }
            }
            _ => {
                for (idx, part) in parts.into_iter().enumerate() {
                    if idx > 0 {
                        self.space();
                    }
                    self.node(part);
                }
            }
        }
    }

    // ------------------------------------------------------------ nodes

    /// Writes one node of a header, type or expression, on the current line.
    fn node(&mut self, pair: Pair<'_, Rule>) {
        let span = pair.as_span();
        let (start, end) = (span.start(), span.end());
        match pair.as_rule() {
            Rule::string => self.string(pair),
            Rule::key_clause => {
                let mut parts = pair.into_inner();
                if let Some(kw) = parts.next() {
                    self.pair_token(&kw);
                }
                let keys: Vec<_> = parts.collect();
                self.space();
                if keys.len() == 1 {
                    self.node(keys[0].clone());
                } else {
                    self.punct("(");
                    self.comma_list(keys);
                    self.token(")", end - 1, end);
                }
            }
            Rule::backref => {
                let mut parts = pair.into_inner();
                if let Some(kw) = parts.next() {
                    self.pair_token(&kw);
                    self.space();
                }
                if let Some(collection) = parts.next() {
                    self.pair_token(&collection);
                }
                self.punct(".");
                if let Some(field) = parts.next() {
                    self.pair_token(&field);
                }
            }
            Rule::list_type | Rule::map_type => {
                let mut parts = pair.into_inner();
                if let Some(kw) = parts.next() {
                    self.pair_token(&kw);
                }
                self.punct("<");
                self.comma_list(parts.collect());
                self.token(">", end - 1, end);
            }
            Rule::inline_enum => {
                let mut parts = pair.into_inner();
                if let Some(kw) = parts.next() {
                    self.pair_token(&kw);
                }
                if let Some(list) = parts.next() {
                    self.space();
                    self.ident_list(list, end - 1);
                }
            }
            Rule::if_expr
            | Rule::where_expr
            | Rule::as_clause
            | Rule::or_expr
            | Rule::and_expr
            | Rule::cmp_expr
            | Rule::add_expr
            | Rule::mul_expr
            | Rule::not_expr
            | Rule::not_in
            | Rule::list_elem
            | Rule::extends_clause
            | Rule::ref_type
            | Rule::effective_from
            | Rule::effective_until
            | Rule::type_expr => {
                let is_type = pair.as_rule() == Rule::type_expr;
                for (idx, part) in pair.into_inner().enumerate() {
                    if idx > 0 && !(is_type && part.as_rule() == Rule::optional) {
                        self.space();
                    }
                    self.node(part);
                }
            }
            Rule::coalesce => {
                for (idx, part) in pair.into_inner().enumerate() {
                    if idx > 0 {
                        self.space();
                        self.punct("??");
                        self.space();
                    }
                    self.node(part);
                }
            }
            Rule::cmp_op | Rule::not_op => {
                let mut inner = pair.clone().into_inner().peekable();
                if inner.peek().is_some() {
                    for part in inner {
                        self.node(part);
                    }
                } else {
                    self.pair_token(&pair);
                }
            }
            Rule::expr | Rule::named_type | Rule::unary | Rule::postfix => {
                for part in pair.into_inner() {
                    self.node(part);
                }
            }
            Rule::field_access => {
                self.token(".", start, start + 1);
                for part in pair.into_inner() {
                    self.node(part);
                }
            }
            Rule::index => {
                self.token("[", start, start + 1);
                for part in pair.into_inner() {
                    self.node(part);
                }
                self.token("]", end - 1, end);
            }
            Rule::paren => {
                self.token("(", start, start + 1);
                for part in pair.into_inner() {
                    self.node(part);
                }
                self.token(")", end - 1, end);
            }
            Rule::call => {
                let mut parts = pair.into_inner();
                if let Some(name) = parts.next() {
                    self.pair_token(&name);
                }
                self.punct("(");
                self.comma_list(parts.collect());
                self.token(")", end - 1, end);
            }
            Rule::list_lit => {
                self.token("[", start, start + 1);
                self.sequence(pair.into_inner().collect(), start, end, "]", false);
            }
            Rule::map_lit => {
                self.token("{", start, start + 1);
                self.sequence(pair.into_inner().collect(), start, end, "}", false);
            }
            Rule::record => {
                self.token("{", start, start + 1);
                self.in_record += 1;
                self.sequence(pair.into_inner().collect(), start, end, "}", false);
                self.in_record -= 1;
            }
            Rule::fn_param => {
                let mut parts = pair.into_inner();
                if let Some(name) = parts.next() {
                    self.node(name);
                }
                self.punct(":");
                if let Some(ty) = parts.next() {
                    self.space();
                    self.node(ty);
                }
            }
            Rule::path_entry => {
                let parts: Vec<_> = pair.into_inner().collect();
                if let [label, value] = parts.as_slice() {
                    self.node(label.clone());
                    self.punct(":");
                    self.space();
                    self.node(value.clone());
                } else {
                    for part in parts {
                        self.node(part);
                    }
                }
            }
            Rule::map_entry | Rule::scope_entry | Rule::record_field => {
                let mut parts = pair.into_inner();
                if let Some(key) = parts.next() {
                    self.node(key);
                }
                self.punct(":");
                if let Some(value) = parts.next() {
                    self.space();
                    self.node(value);
                }
            }
            _ if pair.clone().into_inner().next().is_none() => self.pair_token(&pair),
            // A node this formatter does not know (the grammar grew): kept
            // exactly as written, comments included.
            _ => self.verbatim(start, end),
        }
    }

    /// `a, b, c` on the current line.
    fn comma_list(&mut self, items: Vec<Pair<'_, Rule>>) {
        for (idx, item) in items.into_iter().enumerate() {
            if idx > 0 {
                self.punct(",");
                self.space();
            }
            self.node(item);
        }
    }

    /// `{ a, b }` of an enum, flat or broken; `close` is the `}`'s offset.
    fn ident_list(&mut self, list: Pair<'_, Rule>, close: usize) {
        let start = list.as_span().start();
        self.punct("{");
        let items: Vec<_> = list.into_inner().collect();
        if items.is_empty() {
            self.flush(close, false);
            self.token("}", close, close + 1);
            return;
        }
        let was_in_expr = self.in_expr;
        self.in_expr = true;
        let flat: usize = items.iter().map(|i| i.as_str().chars().count() + 2).sum();
        let broken = self.has_comment_in(start, close)
            || (self.in_string == 0 && self.column() + flat + 2 > self.max_width);
        if broken {
            self.broken(items, close, "}");
        } else {
            self.space();
            self.comma_list(items);
            self.space();
            self.token("}", close, close + 1);
        }
        self.in_expr = was_in_expr;
    }

    /// The elements of a list or map literal after its opening bracket:
    /// flat, or one per line when too wide or commented.
    fn sequence(
        &mut self,
        items: Vec<Pair<'_, Rule>>,
        start: usize,
        end: usize,
        close: &str,
        spaced: bool,
    ) {
        let close_at = end - 1;
        if items.is_empty() {
            self.token(close, close_at, end);
            return;
        }
        let breakable = self.in_string == 0 && self.in_record == 0 && self.max_width != usize::MAX;
        let broken = breakable && {
            let width = self.column() + self.flat_width_of(&items);
            self.has_comment_in(start, close_at) || width > self.max_width
        };
        if broken {
            self.broken(items, close_at, close);
        } else {
            if spaced {
                self.space();
            }
            self.comma_list(items);
            if spaced {
                self.space();
            }
            self.token(close, close_at, end);
        }
    }

    /// The width of `items` laid out on one line with their separators.
    fn flat_width_of(&self, items: &[Pair<'_, Rule>]) -> usize {
        items.iter().map(|item| self.flat_width(item) + 2).sum()
    }

    /// One element per line, each followed by a comma, then the closer.
    fn broken(&mut self, items: Vec<Pair<'_, Rule>>, close_at: usize, close: &str) {
        let extra = if self.line_hangs { 2 } else { 0 };
        self.indent += 1 + extra;
        for item in items {
            let start = item.as_span().start();
            self.flush(start, true);
            self.ensure_newline();
            self.hanging = false;
            self.node(item);
            self.punct(",");
        }
        self.flush(close_at, true);
        self.flush(close_at, false);
        self.ensure_newline();
        self.indent -= 1;
        self.hanging = false;
        self.token(close, close_at, close_at + 1);
        self.indent -= extra;
        self.hanging = self.in_expr;
    }

    /// A string: text and escapes as written, interpolations laid out.
    fn string(&mut self, pair: Pair<'_, Rule>) {
        let span = pair.as_span();
        self.token("\"", span.start(), span.start() + 1);
        self.in_string += 1;
        for part in pair.into_inner() {
            let part_span = part.as_span();
            match part.as_rule() {
                Rule::interp => {
                    self.token("{", part_span.start(), part_span.start() + 1);
                    if let Some(inner) = part.into_inner().next() {
                        if inner.as_str().starts_with('{') {
                            self.out.push(' ');
                        }
                        let was_in_expr = self.in_expr;
                        self.in_expr = true;
                        self.node(inner);
                        self.in_expr = was_in_expr;
                    }
                    self.token("}", part_span.end() - 1, part_span.end());
                }
                _ => {
                    if self.at_line_start {
                        self.write_indent();
                    }
                    self.out.push_str(part.as_str());
                    self.last_end = part_span.end();
                }
            }
        }
        self.in_string -= 1;
        self.token("\"", span.end() - 1, span.end());
    }
}

#[cfg(test)]
mod tests;
