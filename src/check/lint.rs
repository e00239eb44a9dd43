//! Checks that need a typed program: constant `require`s (an error) and
//! warnings about params and `let`s never used and about navigation through
//! an optional reference without a null check.
//!
//! Takes the [`ResolvedProgram`] (for declarations and spans) and the
//! [`CheckedProgram`] of the same run (for what each name and field access
//! refers to); gives [`LintError`]s, each an error or a warning by its code.
//!
//! **Invariant:** these checks never change the checked program or its
//! plan; they run after `check` succeeded and only report.
//!
//! ## Navigation through an optional reference (W0351)
//!
//! `x.opt.field`, where `opt` is a field declared `ref C?`, is null whenever
//! `x.opt` is. In a decision that silently flips outcomes: `x.opt.age > 18`
//! fails the record, `x.opt.name != "a"` passes it. The rule, flow-sensitive
//! but syntactic, treats a navigation through the optional path `P` (`x.opt`,
//! or a bare `opt` inside a `where`) as handled when:
//!
//! - it is inside the left operand of `??`, or an operand of `== null` /
//!   `!= null`;
//! - a conjunct `P != null` holds where it is evaluated: in the left operand
//!   of an enclosing `and`, the condition of an enclosing `if` (then branch),
//!   the rule's `for … where` condition, or an earlier `require` of the rule
//!   (later `require`s run only when earlier ones held);
//! - a disjunct `P == null` is false where it is evaluated: the left operand
//!   of an enclosing `or`, or the condition of an enclosing `if` (else branch).
//!
//! A check of a longer path (`x.opt.next != null`) also covers `x.opt`.
//! Messages are not checked (a null there prints as text, it decides
//! nothing), and a `let` bound to an optional record (`let o = x.opt`) is not
//! followed: the rule stays simple and never warns about a guarded access.

use miette::{Diagnostic, SourceSpan};
use thiserror::Error;

use super::{CheckedProgram, Member, NameRes, walk};
use crate::ast::{BinaryOp, Expr, ExprKind, Stmt};
use crate::data::{FieldType, ScalarType};
use crate::resolve::ResolvedProgram;
use crate::source::{SourceMap, SourceText, Span};

/// What the checks of this module report.
#[derive(Debug, Error, Diagnostic)]
pub enum LintError {
    /// A `require` that reads no record: it holds for every entity or for none.
    ///
    /// `rule r { for p in people  require 1 > 2 }` triggers it. The literal
    /// `false` does not: `for x in C where COND  require false` is the idiom
    /// for "every match is a violation".
    #[error("this `require` does not depend on the data")]
    #[diagnostic(
        code(E0313),
        help(
            "a constant condition fails every entity or none; compare a field of the `for` variable, e.g. `require x.age >= limit`"
        )
    )]
    ConstantRequire {
        /// The file.
        #[source_code]
        src: SourceText,
        /// The condition.
        #[label("reads no record, only literals and params")]
        span: SourceSpan,
    },
    /// A param that no rule of its policy reads.
    ///
    /// `policy p { param n: int = 3  rule r { … } }` without `n` in `r`.
    /// A param read by a policy that extends its own counts as used, and so
    /// does the `scope` param of a policy with a `scope` block.
    #[error("param `{name}` is never used")]
    #[diagnostic(
        code(W0350),
        severity(Warning),
        help("use it in a rule, or remove it: a `--param` override of it changes nothing")
    )]
    UnusedParam {
        /// The file.
        #[source_code]
        src: SourceText,
        /// The param's name.
        #[label("declared here, read by no rule")]
        span: SourceSpan,
        /// Its name.
        name: String,
    },
    /// A navigation through an optional reference with no null check.
    ///
    /// `require p.team.label == "a"` with `team: ref teams?`.
    #[error("`{path}` may be null, and then `{path}.{field}` is null too")]
    #[diagnostic(
        code(W0351),
        severity(Warning),
        help(
            "check it first (`{path} != null and …`, or in the `for … where`), or give a fallback: `{path}.{field} ?? VALUE`"
        )
    )]
    UnguardedOptional {
        /// The file.
        #[source_code]
        src: SourceText,
        /// The navigation.
        #[label("`{path}` is an optional reference")]
        span: SourceSpan,
        /// The optional path.
        path: String,
        /// The field read through it.
        field: String,
    },
    /// A `let` that nothing reads.
    ///
    /// `let n = count(x.members)` with no `n` after it.
    #[error("`let {name}` is never used")]
    #[diagnostic(
        code(W0352),
        severity(Warning),
        help("use it in a `require` or the `message`, or remove it")
    )]
    UnusedLet {
        /// The file.
        #[source_code]
        src: SourceText,
        /// The binding.
        #[label("bound here, read nowhere")]
        span: SourceSpan,
        /// Its name.
        name: String,
    },
}

impl LintError {
    /// Whether this is a warning (it does not fail a run by itself).
    pub fn is_warning(&self) -> bool {
        !matches!(self, LintError::ConstantRequire { .. })
    }
}

/// Runs every check of this module.
pub fn lint(
    program: &ResolvedProgram,
    checked: &CheckedProgram,
    sources: &SourceMap,
) -> Vec<LintError> {
    let linter = Linter { checked, sources };
    let mut found = Vec::new();
    for (policy_idx, resolved) in program.policies.iter().enumerate() {
        let Some(checked_policy) = checked.policies.get(policy_idx) else {
            continue;
        };
        let decl = &resolved.decl;
        // A param is read by a rule or a `scope` entry of its policy or of
        // one extending it (resolution says which policy's param a name is).
        for (param_idx, param) in decl.params.iter().enumerate() {
            let me = NameRes::Param {
                policy: policy_idx as u32,
                param: param_idx as u32,
            };
            if checked_policy.scope_param == Some((policy_idx as u32, param_idx as u32)) {
                continue;
            }
            let used = checked.policies.iter().any(|policy| {
                policy
                    .rules
                    .iter()
                    .flat_map(rule_exprs)
                    .chain(policy.scope.iter().map(|(_, expr)| expr))
                    .any(|expr| linter.any_name(expr, |res| res == me))
            });
            if !used {
                found.push(LintError::UnusedParam {
                    src: linter.src(param.name.span),
                    span: param.name.span.into(),
                    name: param.name.name.clone(),
                });
            }
        }
        for (rule, checked_rule) in decl.rules.iter().zip(&checked_policy.rules) {
            linter.rule(rule, checked_rule, &mut found);
        }
    }
    found
}

fn rule_exprs(rule: &super::CheckedRule) -> impl Iterator<Item = &Expr> {
    rule.source
        .iter()
        .chain(rule.lets.iter().map(|(_, _, value)| value))
        .chain(rule.requires.iter())
        .chain(rule.message.iter())
}

struct Linter<'a> {
    checked: &'a CheckedProgram,
    sources: &'a SourceMap,
}

impl Linter<'_> {
    fn src(&self, span: Span) -> SourceText {
        self.sources.get(span.src).clone()
    }

    fn any_name(&self, expr: &Expr, pred: impl Fn(NameRes) -> bool) -> bool {
        let mut hit = false;
        walk(expr, &mut |e| {
            if !hit
                && matches!(e.kind, ExprKind::Name(_))
                && let Some(res) = self.checked.names.get(&e.id)
            {
                hit = pred(*res);
            }
        });
        hit
    }

    fn rule(
        &self,
        rule: &crate::ast::RuleDecl,
        checked_rule: &super::CheckedRule,
        found: &mut Vec<LintError>,
    ) {
        // Unused lets, by slot.
        for (slot, name, value) in &checked_rule.lets {
            let used = rule_exprs(checked_rule)
                .any(|expr| self.any_name(expr, |res| res == NameRes::Local(*slot)));
            if !used {
                let span = rule
                    .stmts
                    .iter()
                    .find_map(|stmt| match stmt {
                        Stmt::Let {
                            name: ident,
                            value: v,
                        } if v.id == value.id => Some(ident.span),
                        _ => None,
                    })
                    .unwrap_or(value.span);
                found.push(LintError::UnusedLet {
                    src: self.src(span),
                    span: span.into(),
                    name: name.clone(),
                });
            }
        }
        // Constant requires. The literal `false` is the explicit "every
        // entity is a violation" (`for x in C where COND  require false`
        // flags every match; tools such as the REPL wrap a value in such a
        // rule), so only other constants are mistakes.
        for require in &checked_rule.requires {
            if matches!(require.kind, ExprKind::Bool(false)) {
                continue;
            }
            let reads_data = self.any_name(require, |res| {
                matches!(
                    res,
                    NameRes::Local(_) | NameRes::Implicit { .. } | NameRes::Collection(_)
                )
            });
            if !reads_data {
                found.push(LintError::ConstantRequire {
                    src: self.src(require.span),
                    span: require.span.into(),
                });
            }
        }
        // Optional navigation.
        let mut guards = Vec::new();
        if let Some(source) = &checked_rule.source {
            self.navigation(source, &[], false, found);
            if let ExprKind::Where { condition, .. } = &source.kind {
                self.conjuncts_not_null(condition, &mut guards);
            }
        }
        for (_, _, value) in &checked_rule.lets {
            self.navigation(value, &guards, false, found);
        }
        for require in &checked_rule.requires {
            self.navigation(require, &guards, false, found);
            self.conjuncts_not_null(require, &mut guards);
        }
    }

    /// Whether `expr` is a field declared `ref C?`, read from one record.
    fn is_optional_ref(&self, expr: &Expr) -> bool {
        let member = match &expr.kind {
            ExprKind::Field(..) => match self.checked.accesses.get(&expr.id) {
                Some(super::Access::Member(member)) => *member,
                _ => return false,
            },
            ExprKind::Name(_) => match self.checked.names.get(&expr.id) {
                Some(NameRes::Implicit { member, .. }) => *member,
                _ => return false,
            },
            _ => return false,
        };
        let Member::Field { coll, field } = member else {
            return false;
        };
        let field = &self.checked.schema.data.collections[coll as usize].fields[field as usize];
        field.optional && matches!(field.ty, FieldType::Scalar(ScalarType::Ref(_)))
    }

    /// `P` of `P != null` conjuncts of `expr` (an `and` tree).
    fn conjuncts_not_null(&self, expr: &Expr, out: &mut Vec<String>) {
        match &expr.kind {
            ExprKind::Binary(BinaryOp::And, left, right) => {
                self.conjuncts_not_null(left, out);
                self.conjuncts_not_null(right, out);
            }
            ExprKind::Binary(BinaryOp::Ne, left, right) => {
                out.extend(null_test_path(left, right));
            }
            _ => {}
        }
    }

    /// `P` of `P == null` disjuncts of `expr` (an `or` tree).
    fn disjuncts_null(&self, expr: &Expr, out: &mut Vec<String>) {
        match &expr.kind {
            ExprKind::Binary(BinaryOp::Or, left, right) => {
                self.disjuncts_null(left, out);
                self.disjuncts_null(right, out);
            }
            ExprKind::Binary(BinaryOp::Eq, left, right) => {
                out.extend(null_test_path(left, right));
            }
            _ => {}
        }
    }

    fn navigation(
        &self,
        expr: &Expr,
        guards: &[String],
        handled: bool,
        found: &mut Vec<LintError>,
    ) {
        let with =
            |extra: Vec<String>| -> Vec<String> { guards.iter().cloned().chain(extra).collect() };
        match &expr.kind {
            ExprKind::Binary(BinaryOp::And, left, right) => {
                self.navigation(left, guards, handled, found);
                let mut extra = Vec::new();
                self.conjuncts_not_null(left, &mut extra);
                self.navigation(right, &with(extra), handled, found);
            }
            ExprKind::Binary(BinaryOp::Or, left, right) => {
                self.navigation(left, guards, handled, found);
                let mut extra = Vec::new();
                self.disjuncts_null(left, &mut extra);
                self.navigation(right, &with(extra), handled, found);
            }
            ExprKind::If(condition, then, otherwise) => {
                self.navigation(condition, guards, handled, found);
                let mut when_true = Vec::new();
                self.conjuncts_not_null(condition, &mut when_true);
                self.navigation(then, &with(when_true), handled, found);
                let mut when_false = Vec::new();
                self.disjuncts_null(condition, &mut when_false);
                self.navigation(otherwise, &with(when_false), handled, found);
            }
            ExprKind::Binary(BinaryOp::Coalesce, left, right) => {
                self.navigation(left, guards, true, found);
                self.navigation(right, guards, handled, found);
            }
            ExprKind::Binary(BinaryOp::Eq | BinaryOp::Ne, left, right)
                if matches!(left.kind, ExprKind::Null) || matches!(right.kind, ExprKind::Null) =>
            {
                self.navigation(left, guards, true, found);
                self.navigation(right, guards, true, found);
            }
            ExprKind::Field(base, field) => {
                if !handled
                    && self.is_optional_ref(base)
                    && let Some(path) = path_key(base)
                {
                    let guarded = guards
                        .iter()
                        .any(|g| *g == path || g.starts_with(&format!("{path}.")));
                    if !guarded {
                        found.push(LintError::UnguardedOptional {
                            src: self.src(expr.span),
                            span: expr.span.into(),
                            path,
                            field: field.name.clone(),
                        });
                    }
                }
                self.navigation(base, guards, handled, found);
            }
            _ => {
                // Every other expression: visit its direct children.
                let mut children = Vec::new();
                direct_children(expr, &mut children);
                for child in children {
                    self.navigation(child, guards, handled, found);
                }
            }
        }
    }
}

/// `P` when one side of a null test is the path `P` and the other `null`.
fn null_test_path(left: &Expr, right: &Expr) -> Option<String> {
    match (&left.kind, &right.kind) {
        (_, ExprKind::Null) => path_key(left),
        (ExprKind::Null, _) => path_key(right),
        _ => None,
    }
}

/// `a.b.c` for a chain of field accesses on a name.
fn path_key(expr: &Expr) -> Option<String> {
    match &expr.kind {
        ExprKind::Name(name) => Some(name.clone()),
        ExprKind::Field(base, field) => Some(format!("{}.{}", path_key(base)?, field.name)),
        _ => None,
    }
}

fn direct_children<'e>(expr: &'e Expr, out: &mut Vec<&'e Expr>) {
    match &expr.kind {
        ExprKind::Template(parts) => {
            for part in parts {
                if let crate::ast::TemplatePart::Expr(inner) = part {
                    out.push(inner);
                }
            }
        }
        ExprKind::Field(base, _) => out.push(base),
        ExprKind::Index(base, index) => {
            out.push(base);
            out.push(index);
        }
        ExprKind::Call(_, args) => out.extend(args.iter()),
        ExprKind::List(elems) => {
            for elem in elems {
                out.push(&elem.value);
                out.extend(elem.condition.iter());
            }
        }
        ExprKind::Map(entries) => {
            for (key, value) in entries {
                out.push(key);
                out.push(value);
            }
        }
        ExprKind::Unary(_, operand) => out.push(operand),
        ExprKind::Binary(_, left, right) => {
            out.push(left);
            out.push(right);
        }
        ExprKind::Where {
            source, condition, ..
        } => {
            out.push(source);
            out.push(condition);
        }
        ExprKind::If(condition, then, otherwise) => {
            out.push(condition);
            out.push(then);
            out.push(otherwise);
        }
        ExprKind::Int(_)
        | ExprKind::Number(_)
        | ExprKind::Str(_)
        | ExprKind::Bool(_)
        | ExprKind::Null
        | ExprKind::Name(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use miette::Diagnostic;

    use crate::analyze::{Options, analyze};
    use crate::{Error, PolicyFile};

    const SCHEMA: &str = "schema { collection people key id { id: string  age: int  boss: ref people?  team: ref teams? } collection teams key id { id: string  lead: ref people?  size: int } }";

    /// The codes of every error and warning for a policy, in order.
    fn check(policy: &str) -> Vec<String> {
        let files = [
            PolicyFile::new("schema.bangfu", SCHEMA),
            PolicyFile::new("p.bangfu", policy),
        ];
        let analysis = analyze(&files, &[], Options::default());
        let code = |e: &Error| e.code().map(|c| c.to_string()).unwrap_or_default();
        analysis
            .errors
            .iter()
            .chain(&analysis.warnings)
            .map(code)
            .collect()
    }

    fn rule(body: &str) -> Vec<String> {
        check(&format!("policy p {{ rule r {{ {body} }} }}"))
    }

    #[test]
    fn navigation_without_a_check_warns() {
        assert_eq!(rule("for x in people  require x.boss.age > 3"), ["W0351"]);
        assert_eq!(
            rule("for x in people  require x.team.lead.age > 3"),
            ["W0351", "W0351"]
        );
        assert_eq!(
            rule("for x in people  require count(people where team.size > 1) > 0"),
            ["W0351"]
        );
        assert_eq!(
            rule("for x in people  require x.boss.age > 3 or x.boss == null"),
            ["W0351"]
        );
    }

    #[test]
    fn checked_navigation_does_not_warn() {
        for body in [
            "for x in people where x.boss != null  require x.boss.age > 3",
            "for x in people  require x.boss != null and x.boss.age > 3",
            "for x in people  require x.boss == null or x.boss.age > 3",
            "for x in people  require x.boss != null  require x.boss.age > 3",
            "for x in people  require (x.boss.age ?? 0) > 3",
            "for x in people  require x.boss.age == null",
            "for x in people  require if x.boss != null then x.boss.age > 3 else true",
            "for x in people  require if x.boss == null then true else x.boss.age > 3",
            "for x in people  require x.team.lead != null and x.team.lead.age > 3",
            "for x in people  require count(people where team != null and team.size > 1) > 0",
            "for x in people  require x.age > 3  message \"{x.boss.age}\"",
        ] {
            assert_eq!(rule(body), Vec::<String>::new(), "{body}");
        }
    }

    #[test]
    fn a_constant_require_is_an_error() {
        assert_eq!(rule("for x in people  require 1 > 2"), ["E0313"]);
        assert_eq!(
            check("policy p { param n: int = 3  rule r { for x in people  require n > 2 } }"),
            ["E0313"]
        );
        assert!(rule("require count(people) > 2").is_empty());
        assert!(rule("for x in people where x.age > 3  require false").is_empty());
        assert!(rule("for x in people  require false").is_empty());
        assert_eq!(rule("for x in people  require not true"), ["E0313"]);
        assert_eq!(
            rule("for x in people where x.age > 3  require true"),
            ["E0313"]
        );
        assert!(rule("for x in people  let a = x.age  require a > 2").is_empty());
    }

    #[test]
    fn unused_params_and_lets_warn() {
        assert_eq!(
            check(
                "policy p { param n: int = 3  param m: int = 4  rule r { for x in people  require x.age > m } }"
            ),
            ["W0350"]
        );
        assert_eq!(
            rule("for x in people  let a = x.age  let b = a + 1  require a > 2"),
            ["W0352"]
        );
        assert!(
            rule("for x in people  let a = x.age  require x.age > 2  message \"{a}\"").is_empty()
        );
    }

    #[test]
    fn a_for_without_where_is_fine() {
        assert!(rule("for x in people  require x.age > 2").is_empty());
    }
}
