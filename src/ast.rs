//! Stage `ast`: the pest parse tree lowered into a typed AST with spans.
//!
//! Takes the pairs of [`crate::syntax`]; gives a [`File`] of schemas and
//! policies. Every expression carries a dense [`ExprId`] so later stages keep
//! their results (types, resolved names) in side tables instead of patching
//! the tree.
//!
//! **Invariant:** the AST is a plain value; nothing here resolves a name or
//! knows a type. Lowering errors (bad literals) are [`SyntaxError`]s.

use pest::iterators::Pair;

use crate::source::{SourceId, SourceText, Span};
use crate::syntax::{self, Rule, SyntaxError};

/// Dense index of an expression, unique within one program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExprId(pub u32);

/// A name with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    /// The name.
    pub name: String,
    /// Where it is written.
    pub span: Span,
}

/// One parsed file.
#[derive(Clone, Debug, Default)]
pub struct File {
    /// `import "path"` declarations.
    pub imports: Vec<Import>,
    /// Schemas, in file order.
    pub schemas: Vec<Schema>,
    /// Policies, in file order.
    pub policies: Vec<Policy>,
    /// Functions written in the language.
    pub functions: Vec<FnDecl>,
    /// Functions written in rhai, by script file.
    pub scripts: Vec<ScriptDecl>,
    /// Policy tests.
    pub tests: Vec<TestDecl>,
}

/// `import "path"`
#[derive(Clone, Debug)]
pub struct Import {
    /// The path as written.
    pub path: String,
    /// Where.
    pub span: Span,
}

/// A parameter of a function.
#[derive(Clone, Debug)]
pub struct FnParam {
    /// Name.
    pub name: Ident,
    /// Type.
    pub ty: TypeExpr,
}

/// `fn NAME(params) -> TYPE = BODY`
#[derive(Clone, Debug)]
pub struct FnDecl {
    /// Doc comment.
    pub doc: String,
    /// Name.
    pub name: Ident,
    /// Parameters.
    pub params: Vec<FnParam>,
    /// Result type.
    pub ret: TypeExpr,
    /// Body.
    pub body: Expr,
}

/// `script "file.rhai" { fn NAME(params) -> TYPE … }`
#[derive(Clone, Debug)]
pub struct ScriptDecl {
    /// Doc comment.
    pub doc: String,
    /// Path of the rhai file, relative to the declaring file.
    pub path: String,
    /// Where the path is written.
    pub path_span: Span,
    /// The functions the script provides, with their signatures.
    pub functions: Vec<ScriptFn>,
}

/// A function signature in a `script` block.
#[derive(Clone, Debug)]
pub struct ScriptFn {
    /// Doc comment.
    pub doc: String,
    /// Name.
    pub name: Ident,
    /// Parameters.
    pub params: Vec<FnParam>,
    /// Result type.
    pub ret: TypeExpr,
}

/// A record literal in test data: `{ field: value, … }`.
#[derive(Clone, Debug)]
pub struct Record {
    /// Fields, in order.
    pub fields: Vec<(Ident, Expr)>,
    /// Where.
    pub span: Span,
}

/// The data of a policy test.
#[derive(Clone, Debug)]
pub enum TestData {
    /// `data { collection [ {…}, … ] … }`
    Inline(Vec<(Ident, Vec<Record>)>),
    /// `data "file.json"`, relative to the test file.
    File(String, Span),
}

/// An expected violation: `policy.rule "key"`.
#[derive(Clone, Debug)]
pub struct Expected {
    /// Rule id.
    pub rule: String,
    /// Entity key.
    pub key: String,
    /// Where.
    pub span: Span,
}

/// `test NAME "title" { … }`
#[derive(Clone, Debug)]
pub struct TestDecl {
    /// Doc comment.
    pub doc: String,
    /// Name.
    pub name: Ident,
    /// Title.
    pub title: Option<String>,
    /// Rule id globs the test looks at (all rules when empty).
    pub rules: Vec<String>,
    /// Param overrides: policy, param, value.
    pub params: Vec<(Ident, Ident, Expr)>,
    /// The data.
    pub data: Option<TestData>,
    /// Expected violations (exactly these).
    pub expect: Vec<Expected>,
    /// Whether an `expect` block was written.
    pub has_expect: bool,
    /// Waivers in force.
    pub waivers: Vec<Record>,
    /// The date the test runs as of.
    pub as_of: Option<(String, Span)>,
    /// Whole declaration.
    pub span: Span,
}

/// `schema NAME { collection … enum … }`
#[derive(Clone, Debug)]
pub struct Schema {
    /// Doc comment.
    pub doc: String,
    /// Optional name.
    pub name: Option<Ident>,
    /// Collections.
    pub collections: Vec<CollectionDecl>,
    /// Named enums.
    pub enums: Vec<EnumDecl>,
    /// Whole declaration.
    pub span: Span,
}

/// `enum NAME { a, b }`
#[derive(Clone, Debug)]
pub struct EnumDecl {
    /// Doc comment.
    pub doc: String,
    /// Name.
    pub name: Ident,
    /// Variants.
    pub variants: Vec<Ident>,
}

/// `collection NAME key FIELD "title" { fields }`
#[derive(Clone, Debug)]
pub struct CollectionDecl {
    /// Doc comment.
    pub doc: String,
    /// Name.
    pub name: Ident,
    /// Key fields (one, several for a composite key, or none).
    pub key: Vec<Ident>,
    /// Title.
    pub title: Option<String>,
    /// Fields and back-references.
    pub fields: Vec<FieldDecl>,
    /// `path { label: expr, ref_field, … }`: how a record is shown as a
    /// readable path, outermost step first; an unlabelled reference expands
    /// to the referenced record's path.
    pub path: Vec<(Option<Ident>, Expr)>,
}

/// `NAME: TYPE` or `NAME: backref COLLECTION.FIELD`
#[derive(Clone, Debug)]
pub struct FieldDecl {
    /// Doc comment.
    pub doc: String,
    /// Name.
    pub name: Ident,
    /// Type or back-reference.
    pub kind: FieldKind,
    /// Title.
    pub title: Option<String>,
}

/// What a field declaration declares.
#[derive(Clone, Debug)]
pub enum FieldKind {
    /// A stored field.
    Stored(TypeExpr),
    /// The records of `collection` whose `field` names this record.
    Backref {
        /// Collection.
        collection: Ident,
        /// Field of that collection.
        field: Ident,
    },
}

/// A type as written.
#[derive(Clone, Debug)]
pub struct TypeExpr {
    /// The type.
    pub kind: TypeKind,
    /// `T?`
    pub optional: bool,
    /// Where.
    pub span: Span,
}

/// The shapes of types.
#[derive(Clone, Debug)]
pub enum TypeKind {
    /// `int`, `string`, or a named enum.
    Named(Ident),
    /// `list<T>`
    List(Box<TypeExpr>),
    /// `map<K, V>`
    Map(Box<TypeExpr>, Box<TypeExpr>),
    /// `ref COLLECTION`
    Ref(Ident),
    /// `enum { a, b }`
    Enum(Vec<Ident>),
}

/// `policy NAME "title" extends PARENT { … }`
#[derive(Clone, Debug)]
pub struct Policy {
    /// Doc comment.
    pub doc: String,
    /// Name.
    pub name: Ident,
    /// Title.
    pub title: Option<String>,
    /// Parent policy.
    pub extends: Option<Ident>,
    /// `source "…"` citations.
    pub sources: Vec<String>,
    /// Params.
    pub params: Vec<Param>,
    /// Rules.
    pub rules: Vec<RuleDecl>,
    /// Default severity of its rules.
    pub severity: Option<Ident>,
    /// `prefix NAME`: rule ids are `NAME.rule` instead of `POLICY.rule`.
    pub prefix: Option<Ident>,
    /// `effective from "DATE"`.
    pub effective_from: Option<(String, Span)>,
    /// `effective until "DATE"`.
    pub effective_until: Option<(String, Span)>,
    /// `scope { collection: expr, … }`: how each collection's records are
    /// placed for the policy's `scope` param.
    pub scope: Vec<(Ident, Expr)>,
    /// Whole declaration.
    pub span: Span,
}

/// `param NAME: TYPE = DEFAULT`
#[derive(Clone, Debug)]
pub struct Param {
    /// Doc comment.
    pub doc: String,
    /// Name.
    pub name: Ident,
    /// Declared type.
    pub ty: TypeExpr,
    /// Default value.
    pub default: Expr,
}

/// `rule ID "title" { statements }`
#[derive(Clone, Debug)]
pub struct RuleDecl {
    /// Doc comment.
    pub doc: String,
    /// Id within the policy.
    pub name: Ident,
    /// Title.
    pub title: Option<String>,
    /// Statements in order.
    pub stmts: Vec<Stmt>,
    /// Whole declaration.
    pub span: Span,
}

/// A statement of a rule.
#[derive(Clone, Debug)]
pub enum Stmt {
    /// `for VAR in EXPR`
    For {
        /// Binding.
        var: Ident,
        /// Collection, usually with `where`.
        source: Expr,
    },
    /// `let NAME = EXPR`
    Let {
        /// Binding.
        name: Ident,
        /// Value.
        value: Expr,
    },
    /// `require EXPR`
    Require(Expr),
    /// `message EXPR`
    Message(Expr),
    /// `severity LEVEL`
    Severity(Ident),
}

/// An expression with its id and span.
#[derive(Clone, Debug)]
pub struct Expr {
    /// Side-table key.
    pub id: ExprId,
    /// Where.
    pub span: Span,
    /// What.
    pub kind: ExprKind,
}

/// Unary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    /// `not`
    Not,
    /// `-`
    Neg,
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Rem,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `in`
    In,
    /// `not in`
    NotIn,
    /// `and`
    And,
    /// `or`
    Or,
    /// `??`
    Coalesce,
}

impl BinaryOp {
    /// Whether it compares two values (`==`, `!=`, `<`, `<=`, `>`, `>=`).
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge
        )
    }

    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::In => "in",
            BinaryOp::NotIn => "not in",
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
            BinaryOp::Coalesce => "??",
        }
    }
}

/// A piece of a string template.
#[derive(Clone, Debug)]
pub enum TemplatePart {
    /// Literal text.
    Text(String),
    /// `{expr}`
    Expr(Expr),
}

/// An element of a list literal: `value` or `value if condition`.
#[derive(Clone, Debug)]
pub struct ListElem {
    /// The value.
    pub value: Expr,
    /// Kept only when this holds.
    pub condition: Option<Expr>,
}

/// The shapes of expressions.
#[derive(Clone, Debug)]
pub enum ExprKind {
    /// Integer literal.
    Int(i64),
    /// Number literal.
    Number(f64),
    /// String without interpolation.
    Str(String),
    /// String with `{expr}` parts.
    Template(Vec<TemplatePart>),
    /// `true` / `false`.
    Bool(bool),
    /// `null`
    Null,
    /// A name: binding, implicit field, param, collection or enum variant.
    Name(String),
    /// `base.field`
    Field(Box<Expr>, Ident),
    /// `base[index]`
    Index(Box<Expr>, Box<Expr>),
    /// `name(args)`
    Call(Ident, Vec<Expr>),
    /// `[a, b if c]`
    List(Vec<ListElem>),
    /// `{k: v}`
    Map(Vec<(Expr, Expr)>),
    /// `not x`, `-x`
    Unary(UnaryOp, Box<Expr>),
    /// `a op b`
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `source as binder where condition`
    Where {
        /// The collection filtered.
        source: Box<Expr>,
        /// Explicit binder; without one, the element's fields are in scope.
        binder: Option<Ident>,
        /// The filter.
        condition: Box<Expr>,
    },
    /// `if c then a else b`
    If(Box<Expr>, Box<Expr>, Box<Expr>),
}

/// Allocates expression ids across every file of a program.
#[derive(Debug, Default)]
pub struct Lowerer {
    next_id: u32,
}

impl Lowerer {
    /// A lowerer whose ids start at 0.
    pub fn new() -> Lowerer {
        Lowerer::default()
    }

    /// Parses and lowers one file.
    pub fn lower_file(&mut self, src_id: SourceId, src: &SourceText) -> Result<File, SyntaxError> {
        let mut pairs = syntax::parse_file(src)?;
        let mut file = File::default();
        let ctx = Ctx { src_id, src };
        let Some(file_pair) = pairs.next() else {
            return Ok(file);
        };
        for item in file_pair.into_inner() {
            match item.as_rule() {
                Rule::import_decl => {
                    if let Some(string) = item.into_inner().find(|p| p.as_rule() == Rule::string) {
                        file.imports.push(Import {
                            path: ctx.plain_string(&string)?,
                            span: ctx.span(&string),
                        });
                    }
                }
                Rule::schema_decl => file.schemas.push(self.schema(&ctx, item)?),
                Rule::policy_decl => file.policies.push(self.policy(&ctx, item)?),
                Rule::fn_decl => file.functions.push(self.fn_decl(&ctx, item)?),
                Rule::script_decl => file.scripts.push(self.script_decl(&ctx, item)?),
                Rule::test_decl => file.tests.push(self.test_decl(&ctx, item)?),
                _ => {}
            }
        }
        Ok(file)
    }

    /// Parses and lowers a lone expression.
    pub fn lower_expr(&mut self, src_id: SourceId, src: &SourceText) -> Result<Expr, SyntaxError> {
        let mut pairs = syntax::parse_expr(src)?;
        let ctx = Ctx { src_id, src };
        let expr_pair = pairs.next().and_then(|p| p.into_inner().next());
        match expr_pair {
            Some(pair) => self.expr(&ctx, pair),
            None => {
                Err(ctx.literal_error(Span::new(src_id, 0, 0), "empty expression", "write a value"))
            }
        }
    }

    fn next_id(&mut self) -> ExprId {
        self.next_id += 1;
        ExprId(self.next_id - 1)
    }

    fn schema(&mut self, ctx: &Ctx, pair: Pair<Rule>) -> Result<Schema, SyntaxError> {
        let span = ctx.span(&pair);
        let mut schema = Schema {
            doc: String::new(),
            name: None,
            collections: Vec::new(),
            enums: Vec::new(),
            span,
        };
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::doc => push_doc(&mut schema.doc, &child),
                Rule::ident => schema.name = Some(ctx.ident(&child)),
                Rule::collection_decl => schema.collections.push(self.collection(ctx, child)?),
                Rule::enum_decl => schema.enums.push(self.enum_decl(ctx, child)),
                _ => {}
            }
        }
        Ok(schema)
    }

    fn enum_decl(&mut self, ctx: &Ctx, pair: Pair<Rule>) -> EnumDecl {
        let mut doc = String::new();
        let mut name = None;
        let mut variants = Vec::new();
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::doc => push_doc(&mut doc, &child),
                Rule::ident => name = Some(ctx.ident(&child)),
                Rule::ident_list => variants = child.into_inner().map(|p| ctx.ident(&p)).collect(),
                _ => {}
            }
        }
        EnumDecl {
            doc,
            name: name.unwrap_or_else(|| ctx.missing_ident()),
            variants,
        }
    }

    fn collection(&mut self, ctx: &Ctx, pair: Pair<Rule>) -> Result<CollectionDecl, SyntaxError> {
        let mut decl = CollectionDecl {
            doc: String::new(),
            name: ctx.missing_ident(),
            key: Vec::new(),
            title: None,
            fields: Vec::new(),
            path: Vec::new(),
        };
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::doc => push_doc(&mut decl.doc, &child),
                Rule::ident => decl.name = ctx.ident(&child),
                Rule::key_clause => {
                    decl.key = child
                        .into_inner()
                        .filter(|p| p.as_rule() == Rule::ident)
                        .map(|p| ctx.ident(&p))
                        .collect()
                }
                Rule::string => decl.title = Some(ctx.plain_string(&child)?),
                Rule::field_decl => decl.fields.push(self.field(ctx, child)?),
                Rule::path_decl => {
                    for entry in child
                        .into_inner()
                        .filter(|p| p.as_rule() == Rule::path_entry)
                    {
                        let mut label = None;
                        let mut value = None;
                        for part in entry.into_inner() {
                            match part.as_rule() {
                                Rule::ident => label = Some(ctx.ident(&part)),
                                Rule::expr => value = Some(self.expr(ctx, part)?),
                                _ => {}
                            }
                        }
                        if let Some(value) = value {
                            decl.path.push((label, value));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(decl)
    }

    fn field(&mut self, ctx: &Ctx, pair: Pair<Rule>) -> Result<FieldDecl, SyntaxError> {
        let mut doc = String::new();
        let mut name = None;
        let mut kind = None;
        let mut title = None;
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::doc => push_doc(&mut doc, &child),
                Rule::ident => name = Some(ctx.ident(&child)),
                Rule::backref => {
                    let mut idents = child
                        .into_inner()
                        .filter(|p| p.as_rule() == Rule::ident)
                        .map(|p| ctx.ident(&p));
                    let collection = idents.next().unwrap_or_else(|| ctx.missing_ident());
                    let field = idents.next().unwrap_or_else(|| ctx.missing_ident());
                    kind = Some(FieldKind::Backref { collection, field });
                }
                Rule::type_expr => kind = Some(FieldKind::Stored(self.type_expr(ctx, child))),
                Rule::string => title = Some(ctx.plain_string(&child)?),
                _ => {}
            }
        }
        let name = name.unwrap_or_else(|| ctx.missing_ident());
        let kind = kind.unwrap_or(FieldKind::Stored(TypeExpr {
            kind: TypeKind::Named(ctx.missing_ident()),
            optional: false,
            span: name.span,
        }));
        Ok(FieldDecl {
            doc,
            name,
            kind,
            title,
        })
    }

    fn type_expr(&mut self, ctx: &Ctx, pair: Pair<Rule>) -> TypeExpr {
        let span = ctx.span(&pair);
        let mut optional = false;
        let mut kind = TypeKind::Named(ctx.missing_ident());
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::optional => optional = true,
                Rule::named_type => {
                    kind = TypeKind::Named(
                        child
                            .into_inner()
                            .next()
                            .map_or_else(|| ctx.missing_ident(), |p| ctx.ident(&p)),
                    )
                }
                Rule::ref_type => {
                    kind = TypeKind::Ref(
                        child
                            .into_inner()
                            .find(|p| p.as_rule() == Rule::ident)
                            .map_or_else(|| ctx.missing_ident(), |p| ctx.ident(&p)),
                    )
                }
                Rule::list_type => {
                    let inner = child.into_inner().find(|p| p.as_rule() == Rule::type_expr);
                    kind = TypeKind::List(Box::new(inner.map_or_else(
                        || Self::missing_type(ctx, span),
                        |p| self.type_expr(ctx, p),
                    )));
                }
                Rule::map_type => {
                    let mut inner = child
                        .into_inner()
                        .filter(|p| p.as_rule() == Rule::type_expr);
                    let key = inner
                        .next()
                        .map_or_else(|| Self::missing_type(ctx, span), |p| self.type_expr(ctx, p));
                    let value = inner
                        .next()
                        .map_or_else(|| Self::missing_type(ctx, span), |p| self.type_expr(ctx, p));
                    kind = TypeKind::Map(Box::new(key), Box::new(value));
                }
                Rule::inline_enum => {
                    let variants = child
                        .into_inner()
                        .find(|p| p.as_rule() == Rule::ident_list)
                        .map(|list| list.into_inner().map(|p| ctx.ident(&p)).collect())
                        .unwrap_or_default();
                    kind = TypeKind::Enum(variants);
                }
                _ => {}
            }
        }
        TypeExpr {
            kind,
            optional,
            span,
        }
    }

    fn missing_type(ctx: &Ctx, span: Span) -> TypeExpr {
        TypeExpr {
            kind: TypeKind::Named(ctx.missing_ident()),
            optional: false,
            span,
        }
    }

    fn policy(&mut self, ctx: &Ctx, pair: Pair<Rule>) -> Result<Policy, SyntaxError> {
        let span = ctx.span(&pair);
        let mut policy = Policy {
            doc: String::new(),
            name: ctx.missing_ident(),
            title: None,
            extends: None,
            sources: Vec::new(),
            params: Vec::new(),
            rules: Vec::new(),
            severity: None,
            prefix: None,
            effective_from: None,
            effective_until: None,
            scope: Vec::new(),
            span,
        };
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::doc => push_doc(&mut policy.doc, &child),
                Rule::ident => policy.name = ctx.ident(&child),
                Rule::string => policy.title = Some(ctx.plain_string(&child)?),
                Rule::extends_clause => {
                    policy.extends = child
                        .into_inner()
                        .find(|p| p.as_rule() == Rule::ident)
                        .map(|p| ctx.ident(&p))
                }
                Rule::source_decl => {
                    if let Some(string) = child.into_inner().find(|p| p.as_rule() == Rule::string) {
                        policy.sources.push(ctx.plain_string(&string)?);
                    }
                }
                Rule::param_decl => policy.params.push(self.param(ctx, child)?),
                Rule::rule_decl => policy.rules.push(self.rule(ctx, child)?),
                Rule::severity_stmt => {
                    policy.severity = child
                        .into_inner()
                        .find(|p| p.as_rule() == Rule::ident)
                        .map(|p| ctx.ident(&p))
                }
                Rule::prefix_decl => {
                    policy.prefix = child
                        .into_inner()
                        .find(|p| p.as_rule() == Rule::ident)
                        .map(|p| ctx.ident(&p));
                }
                Rule::effective_decl => {
                    for part in child.into_inner() {
                        let is_from = part.as_rule() == Rule::effective_from;
                        if let Some(string) =
                            part.into_inner().find(|p| p.as_rule() == Rule::string)
                        {
                            let value = Some((ctx.plain_string(&string)?, ctx.span(&string)));
                            if is_from {
                                policy.effective_from = value;
                            } else {
                                policy.effective_until = value;
                            }
                        }
                    }
                }
                Rule::scope_decl => {
                    for entry in child
                        .into_inner()
                        .filter(|p| p.as_rule() == Rule::scope_entry)
                    {
                        let mut parts = entry.into_inner();
                        let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
                            continue;
                        };
                        policy
                            .scope
                            .push((ctx.ident(&name), self.expr(ctx, value)?));
                    }
                }
                _ => {}
            }
        }
        Ok(policy)
    }

    fn param(&mut self, ctx: &Ctx, pair: Pair<Rule>) -> Result<Param, SyntaxError> {
        let span = ctx.span(&pair);
        let mut doc = String::new();
        let mut name = None;
        let mut ty = None;
        let mut default = None;
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::doc => push_doc(&mut doc, &child),
                Rule::ident => name = Some(ctx.ident(&child)),
                Rule::type_expr => ty = Some(self.type_expr(ctx, child)),
                Rule::expr => default = Some(self.expr(ctx, child)?),
                _ => {}
            }
        }
        let default = match default {
            Some(expr) => expr,
            None => Expr {
                id: self.next_id(),
                span,
                kind: ExprKind::Null,
            },
        };
        Ok(Param {
            doc,
            name: name.unwrap_or_else(|| ctx.missing_ident()),
            ty: ty.unwrap_or_else(|| Self::missing_type(ctx, span)),
            default,
        })
    }

    fn fn_params(&mut self, ctx: &Ctx, pair: Pair<Rule>) -> Vec<FnParam> {
        let mut params = Vec::new();
        for param in pair.into_inner().filter(|p| p.as_rule() == Rule::fn_param) {
            let span = ctx.span(&param);
            let mut name = None;
            let mut ty = None;
            for part in param.into_inner() {
                match part.as_rule() {
                    Rule::ident => name = Some(ctx.ident(&part)),
                    Rule::type_expr => ty = Some(self.type_expr(ctx, part)),
                    _ => {}
                }
            }
            params.push(FnParam {
                name: name.unwrap_or_else(|| ctx.missing_ident()),
                ty: ty.unwrap_or_else(|| Self::missing_type(ctx, span)),
            });
        }
        params
    }

    fn fn_decl(&mut self, ctx: &Ctx, pair: Pair<Rule>) -> Result<FnDecl, SyntaxError> {
        let span = ctx.span(&pair);
        let mut doc = String::new();
        let mut name = None;
        let mut params = Vec::new();
        let mut ret = None;
        let mut body = None;
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::doc => push_doc(&mut doc, &child),
                Rule::ident => name = Some(ctx.ident(&child)),
                Rule::fn_params => params = self.fn_params(ctx, child),
                Rule::type_expr => ret = Some(self.type_expr(ctx, child)),
                Rule::expr => body = Some(self.expr(ctx, child)?),
                _ => {}
            }
        }
        let body = match body {
            Some(body) => body,
            None => self.mk(span, ExprKind::Null),
        };
        Ok(FnDecl {
            doc,
            name: name.unwrap_or_else(|| ctx.missing_ident()),
            params,
            ret: ret.unwrap_or_else(|| Self::missing_type(ctx, span)),
            body,
        })
    }

    fn script_decl(&mut self, ctx: &Ctx, pair: Pair<Rule>) -> Result<ScriptDecl, SyntaxError> {
        let span = ctx.span(&pair);
        let mut decl = ScriptDecl {
            doc: String::new(),
            path: String::new(),
            path_span: span,
            functions: Vec::new(),
        };
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::doc => push_doc(&mut decl.doc, &child),
                Rule::string => {
                    decl.path = ctx.plain_string(&child)?;
                    decl.path_span = ctx.span(&child);
                }
                Rule::script_fn => {
                    let fn_span = ctx.span(&child);
                    let mut doc = String::new();
                    let mut name = None;
                    let mut params = Vec::new();
                    let mut ret = None;
                    for part in child.into_inner() {
                        match part.as_rule() {
                            Rule::doc => push_doc(&mut doc, &part),
                            Rule::ident => name = Some(ctx.ident(&part)),
                            Rule::fn_params => params = self.fn_params(ctx, part),
                            Rule::type_expr => ret = Some(self.type_expr(ctx, part)),
                            _ => {}
                        }
                    }
                    decl.functions.push(ScriptFn {
                        doc,
                        name: name.unwrap_or_else(|| ctx.missing_ident()),
                        params,
                        ret: ret.unwrap_or_else(|| Self::missing_type(ctx, fn_span)),
                    });
                }
                _ => {}
            }
        }
        Ok(decl)
    }

    fn record(&mut self, ctx: &Ctx, pair: Pair<Rule>) -> Result<Record, SyntaxError> {
        let span = ctx.span(&pair);
        let mut fields = Vec::new();
        for field in pair
            .into_inner()
            .filter(|p| p.as_rule() == Rule::record_field)
        {
            let mut parts = field.into_inner();
            let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
                continue;
            };
            fields.push((ctx.ident(&name), self.expr(ctx, value)?));
        }
        Ok(Record { fields, span })
    }

    fn test_decl(&mut self, ctx: &Ctx, pair: Pair<Rule>) -> Result<TestDecl, SyntaxError> {
        let span = ctx.span(&pair);
        let mut test = TestDecl {
            doc: String::new(),
            name: ctx.missing_ident(),
            title: None,
            rules: Vec::new(),
            params: Vec::new(),
            data: None,
            expect: Vec::new(),
            has_expect: false,
            waivers: Vec::new(),
            as_of: None,
            span,
        };
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::doc => push_doc(&mut test.doc, &child),
                Rule::ident => test.name = ctx.ident(&child),
                Rule::string => test.title = Some(ctx.plain_string(&child)?),
                Rule::test_rules => {
                    for string in child.into_inner().filter(|p| p.as_rule() == Rule::string) {
                        test.rules.push(ctx.plain_string(&string)?);
                    }
                }
                Rule::test_param => {
                    let mut idents = Vec::new();
                    let mut value = None;
                    for part in child.into_inner() {
                        match part.as_rule() {
                            Rule::ident => idents.push(ctx.ident(&part)),
                            Rule::expr => value = Some(self.expr(ctx, part)?),
                            _ => {}
                        }
                    }
                    if let ([policy, param], Some(value)) = (idents.as_slice(), value) {
                        test.params.push((policy.clone(), param.clone(), value));
                    }
                }
                Rule::test_data => {
                    let mut collections = Vec::new();
                    for collection in child
                        .into_inner()
                        .filter(|p| p.as_rule() == Rule::data_collection)
                    {
                        let mut name = None;
                        let mut records = Vec::new();
                        for part in collection.into_inner() {
                            match part.as_rule() {
                                Rule::ident => name = Some(ctx.ident(&part)),
                                Rule::record => records.push(self.record(ctx, part)?),
                                _ => {}
                            }
                        }
                        if let Some(name) = name {
                            collections.push((name, records));
                        }
                    }
                    test.data = Some(TestData::Inline(collections));
                }
                Rule::test_data_file => {
                    if let Some(string) = child.into_inner().find(|p| p.as_rule() == Rule::string) {
                        test.data = Some(TestData::File(
                            ctx.plain_string(&string)?,
                            ctx.span(&string),
                        ));
                    }
                }
                Rule::test_expect => {
                    test.has_expect = true;
                    for expected in child.into_inner().filter(|p| p.as_rule() == Rule::expected) {
                        let expected_span = ctx.span(&expected);
                        let mut idents = Vec::new();
                        let mut key = String::new();
                        for part in expected.into_inner() {
                            match part.as_rule() {
                                Rule::ident => idents.push(part.as_str().to_string()),
                                Rule::string => key = ctx.plain_string(&part)?,
                                _ => {}
                            }
                        }
                        test.expect.push(Expected {
                            rule: idents.join("."),
                            key,
                            span: expected_span,
                        });
                    }
                }
                Rule::test_waiver => {
                    if let Some(record) = child.into_inner().find(|p| p.as_rule() == Rule::record) {
                        test.waivers.push(self.record(ctx, record)?);
                    }
                }
                Rule::test_as_of => {
                    if let Some(string) = child.into_inner().find(|p| p.as_rule() == Rule::string) {
                        test.as_of = Some((ctx.plain_string(&string)?, ctx.span(&string)));
                    }
                }
                _ => {}
            }
        }
        Ok(test)
    }

    fn rule(&mut self, ctx: &Ctx, pair: Pair<Rule>) -> Result<RuleDecl, SyntaxError> {
        let span = ctx.span(&pair);
        let mut rule = RuleDecl {
            doc: String::new(),
            name: ctx.missing_ident(),
            title: None,
            stmts: Vec::new(),
            span,
        };
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::doc => push_doc(&mut rule.doc, &child),
                Rule::ident => rule.name = ctx.ident(&child),
                Rule::string => rule.title = Some(ctx.plain_string(&child)?),
                Rule::for_stmt => {
                    let mut var = None;
                    let mut source = None;
                    for part in child.into_inner() {
                        match part.as_rule() {
                            Rule::ident => var = Some(ctx.ident(&part)),
                            Rule::expr => source = Some(self.expr(ctx, part)?),
                            _ => {}
                        }
                    }
                    if let (Some(var), Some(source)) = (var, source) {
                        rule.stmts.push(Stmt::For { var, source });
                    }
                }
                Rule::let_stmt => {
                    let mut name = None;
                    let mut value = None;
                    for part in child.into_inner() {
                        match part.as_rule() {
                            Rule::ident => name = Some(ctx.ident(&part)),
                            Rule::expr => value = Some(self.expr(ctx, part)?),
                            _ => {}
                        }
                    }
                    if let (Some(name), Some(value)) = (name, value) {
                        rule.stmts.push(Stmt::Let { name, value });
                    }
                }
                Rule::require_stmt | Rule::message_stmt => {
                    let is_require = child.as_rule() == Rule::require_stmt;
                    if let Some(part) = child.into_inner().find(|p| p.as_rule() == Rule::expr) {
                        let expr = self.expr(ctx, part)?;
                        rule.stmts.push(if is_require {
                            Stmt::Require(expr)
                        } else {
                            Stmt::Message(expr)
                        });
                    }
                }
                Rule::severity_stmt => {
                    if let Some(part) = child.into_inner().find(|p| p.as_rule() == Rule::ident) {
                        rule.stmts.push(Stmt::Severity(ctx.ident(&part)));
                    }
                }
                _ => {}
            }
        }
        Ok(rule)
    }

    fn mk(&mut self, span: Span, kind: ExprKind) -> Expr {
        Expr {
            id: self.next_id(),
            span,
            kind,
        }
    }

    fn expr(&mut self, ctx: &Ctx, pair: Pair<Rule>) -> Result<Expr, SyntaxError> {
        let span = ctx.span(&pair);
        match pair.as_rule() {
            Rule::expr | Rule::paren => {
                let inner = pair.into_inner().find(|p| p.as_rule() != Rule::kw_if);
                match inner {
                    Some(inner) => self.expr(ctx, inner),
                    None => Ok(self.mk(span, ExprKind::Null)),
                }
            }
            Rule::if_expr => {
                let mut parts = Vec::new();
                for child in pair.into_inner() {
                    if child.as_rule() == Rule::expr {
                        parts.push(self.expr(ctx, child)?);
                    }
                }
                let mut parts = parts.into_iter();
                let (Some(c), Some(a), Some(b)) = (parts.next(), parts.next(), parts.next()) else {
                    return Ok(self.mk(span, ExprKind::Null));
                };
                Ok(self.mk(span, ExprKind::If(Box::new(c), Box::new(a), Box::new(b))))
            }
            Rule::where_expr => {
                let mut source = None;
                let mut binder = None;
                let mut condition = None;
                for child in pair.into_inner() {
                    match child.as_rule() {
                        Rule::as_clause => {
                            binder = child
                                .into_inner()
                                .find(|p| p.as_rule() == Rule::ident)
                                .map(|p| ctx.ident(&p))
                        }
                        Rule::kw_where => {}
                        _ if source.is_none() => source = Some(self.expr(ctx, child)?),
                        _ => condition = Some(self.expr(ctx, child)?),
                    }
                }
                let source = source.unwrap_or_else(|| self.mk(span, ExprKind::Null));
                match condition {
                    None => Ok(source),
                    Some(condition) => Ok(self.mk(
                        span,
                        ExprKind::Where {
                            source: Box::new(source),
                            binder,
                            condition: Box::new(condition),
                        },
                    )),
                }
            }
            Rule::coalesce
            | Rule::or_expr
            | Rule::and_expr
            | Rule::add_expr
            | Rule::mul_expr
            | Rule::cmp_expr => self.binary_chain(ctx, pair),
            Rule::not_expr => {
                let mut children = pair.into_inner();
                let Some(first) = children.next() else {
                    return Ok(self.mk(span, ExprKind::Null));
                };
                if first.as_rule() == Rule::not_op {
                    let operand = match children.next() {
                        Some(operand) => self.expr(ctx, operand)?,
                        None => self.mk(span, ExprKind::Null),
                    };
                    Ok(self.mk(span, ExprKind::Unary(UnaryOp::Not, Box::new(operand))))
                } else {
                    self.expr(ctx, first)
                }
            }
            Rule::unary => {
                let mut negations = 0;
                let mut operand = None;
                for child in pair.into_inner() {
                    if child.as_rule() == Rule::neg {
                        negations += 1;
                    } else {
                        operand = Some(self.expr(ctx, child)?);
                    }
                }
                let mut expr = operand.unwrap_or_else(|| self.mk(span, ExprKind::Null));
                // Fold `-literal` so `-3` is a literal, not an operation.
                for _ in 0..negations {
                    expr = match expr.kind {
                        ExprKind::Int(value) => Expr {
                            kind: ExprKind::Int(value.wrapping_neg()),
                            span,
                            ..expr
                        },
                        ExprKind::Number(value) => Expr {
                            kind: ExprKind::Number(-value),
                            span,
                            ..expr
                        },
                        _ => self.mk(span, ExprKind::Unary(UnaryOp::Neg, Box::new(expr))),
                    };
                }
                Ok(expr)
            }
            Rule::postfix => {
                let mut children = pair.into_inner();
                let Some(first) = children.next() else {
                    return Ok(self.mk(span, ExprKind::Null));
                };
                let mut expr = self.expr(ctx, first)?;
                for child in children {
                    let whole = expr.span.to(ctx.span(&child));
                    expr = match child.as_rule() {
                        Rule::field_access => {
                            let field = child
                                .into_inner()
                                .find(|p| p.as_rule() == Rule::ident)
                                .map_or_else(|| ctx.missing_ident(), |p| ctx.ident(&p));
                            self.mk(whole, ExprKind::Field(Box::new(expr), field))
                        }
                        Rule::index => {
                            let index = match child.into_inner().next() {
                                Some(index) => self.expr(ctx, index)?,
                                None => self.mk(whole, ExprKind::Null),
                            };
                            self.mk(whole, ExprKind::Index(Box::new(expr), Box::new(index)))
                        }
                        _ => expr,
                    };
                }
                Ok(expr)
            }
            Rule::number => self.number(ctx, &pair),
            Rule::string => {
                let parts = self.template(ctx, pair)?;
                Ok(match parts.as_slice() {
                    [] => self.mk(span, ExprKind::Str(String::new())),
                    [TemplatePart::Text(text)] => self.mk(span, ExprKind::Str(text.clone())),
                    _ => self.mk(span, ExprKind::Template(parts)),
                })
            }
            Rule::kw_true => Ok(self.mk(span, ExprKind::Bool(true))),
            Rule::kw_false => Ok(self.mk(span, ExprKind::Bool(false))),
            Rule::kw_null => Ok(self.mk(span, ExprKind::Null)),
            Rule::ident => Ok(self.mk(span, ExprKind::Name(pair.as_str().to_string()))),
            Rule::call => {
                let mut name = None;
                let mut args = Vec::new();
                for child in pair.into_inner() {
                    match child.as_rule() {
                        Rule::ident => name = Some(ctx.ident(&child)),
                        _ => args.push(self.expr(ctx, child)?),
                    }
                }
                Ok(self.mk(
                    span,
                    ExprKind::Call(name.unwrap_or_else(|| ctx.missing_ident()), args),
                ))
            }
            Rule::list_lit => {
                let mut elems = Vec::new();
                for child in pair.into_inner() {
                    let mut parts = child.into_inner().filter(|p| p.as_rule() != Rule::kw_if);
                    let value = match parts.next() {
                        Some(value) => self.expr(ctx, value)?,
                        None => continue,
                    };
                    let condition = match parts.next() {
                        Some(condition) => Some(self.expr(ctx, condition)?),
                        None => None,
                    };
                    elems.push(ListElem { value, condition });
                }
                Ok(self.mk(span, ExprKind::List(elems)))
            }
            Rule::map_lit => {
                let mut entries = Vec::new();
                for entry in pair.into_inner() {
                    let mut parts = entry.into_inner();
                    let (Some(key), Some(value)) = (parts.next(), parts.next()) else {
                        continue;
                    };
                    entries.push((self.expr(ctx, key)?, self.expr(ctx, value)?));
                }
                Ok(self.mk(span, ExprKind::Map(entries)))
            }
            _ => {
                let inner = pair.into_inner().next();
                match inner {
                    Some(inner) => self.expr(ctx, inner),
                    None => Ok(self.mk(span, ExprKind::Null)),
                }
            }
        }
    }

    fn binary_chain(&mut self, ctx: &Ctx, pair: Pair<Rule>) -> Result<Expr, SyntaxError> {
        let rule = pair.as_rule();
        let mut children = pair.into_inner();
        let Some(first) = children.next() else {
            return Ok(self.mk(ctx.whole(), ExprKind::Null));
        };
        let mut left = self.expr(ctx, first)?;
        while let Some(op_pair) = children.next() {
            let op = match (rule, op_pair.as_rule(), op_pair.as_str()) {
                (Rule::coalesce, _, _) => {
                    // `??` is a literal token, so the next pair is already the operand.
                    let right = self.expr(ctx, op_pair)?;
                    let span = left.span.to(right.span);
                    left = self.mk(
                        span,
                        ExprKind::Binary(BinaryOp::Coalesce, Box::new(left), Box::new(right)),
                    );
                    continue;
                }
                (Rule::or_expr, _, _) => BinaryOp::Or,
                (Rule::and_expr, _, _) => BinaryOp::And,
                (_, _, "+") => BinaryOp::Add,
                (_, _, "-") => BinaryOp::Sub,
                (_, _, "*") => BinaryOp::Mul,
                (_, _, "/") => BinaryOp::Div,
                (_, _, "%") => BinaryOp::Rem,
                (_, _, "==") => BinaryOp::Eq,
                (_, _, "!=") => BinaryOp::Ne,
                (_, _, "<") => BinaryOp::Lt,
                (_, _, "<=") => BinaryOp::Le,
                (_, _, ">") => BinaryOp::Gt,
                (_, _, ">=") => BinaryOp::Ge,
                (_, _, "in") => BinaryOp::In,
                _ => BinaryOp::NotIn,
            };
            let Some(right_pair) = children.next() else {
                break;
            };
            let right = self.expr(ctx, right_pair)?;
            let span = left.span.to(right.span);
            left = self.mk(span, ExprKind::Binary(op, Box::new(left), Box::new(right)));
        }
        Ok(left)
    }

    fn number(&mut self, ctx: &Ctx, pair: &Pair<Rule>) -> Result<Expr, SyntaxError> {
        let span = ctx.span(pair);
        let text: String = pair.as_str().chars().filter(|c| *c != '_').collect();
        if text.contains('.') {
            match text.parse::<f64>() {
                Ok(value) => Ok(self.mk(span, ExprKind::Number(value))),
                Err(_) => Err(ctx.literal_error(
                    span,
                    &format!("`{}` is not a number", pair.as_str()),
                    "write digits with at most one `.`",
                )),
            }
        } else {
            match text.parse::<i64>() {
                Ok(value) => Ok(self.mk(span, ExprKind::Int(value))),
                Err(_) => Err(ctx.literal_error(
                    span,
                    &format!("`{}` does not fit in a 64-bit integer", pair.as_str()),
                    "integers range up to 9223372036854775807; write a decimal point for a number",
                )),
            }
        }
    }

    fn template(&mut self, ctx: &Ctx, pair: Pair<Rule>) -> Result<Vec<TemplatePart>, SyntaxError> {
        let mut parts: Vec<TemplatePart> = Vec::new();
        let push_text = |parts: &mut Vec<TemplatePart>, text: &str| match parts.last_mut() {
            Some(TemplatePart::Text(last)) => last.push_str(text),
            _ => parts.push(TemplatePart::Text(text.to_string())),
        };
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::str_text => push_text(&mut parts, child.as_str()),
                Rule::str_escape => {
                    let unescaped = match child.as_str() {
                        "{{" => "{",
                        "}}" => "}",
                        "\\n" => "\n",
                        "\\t" => "\t",
                        "\\\"" => "\"",
                        "\\\\" => "\\",
                        other => {
                            return Err(ctx.literal_error(
                                ctx.span(&child),
                                &format!("unknown escape `{other}`"),
                                "the escapes are \\n, \\t, \\\", \\\\, {{ and }}",
                            ));
                        }
                    };
                    push_text(&mut parts, unescaped);
                }
                Rule::interp => {
                    if let Some(inner) = child.into_inner().next() {
                        parts.push(TemplatePart::Expr(self.expr(ctx, inner)?));
                    }
                }
                _ => {}
            }
        }
        Ok(parts)
    }
}

struct Ctx<'a> {
    src_id: SourceId,
    src: &'a SourceText,
}

impl Ctx<'_> {
    fn span(&self, pair: &Pair<Rule>) -> Span {
        let span = pair.as_span();
        Span::new(self.src_id, span.start(), span.end())
    }

    fn whole(&self) -> Span {
        Span::new(self.src_id, 0, 0)
    }

    fn ident(&self, pair: &Pair<Rule>) -> Ident {
        Ident {
            name: pair.as_str().to_string(),
            span: self.span(pair),
        }
    }

    fn missing_ident(&self) -> Ident {
        Ident {
            name: String::new(),
            span: self.whole(),
        }
    }

    fn plain_string(&self, pair: &Pair<Rule>) -> Result<String, SyntaxError> {
        let mut text = String::new();
        for child in pair.clone().into_inner() {
            match child.as_rule() {
                Rule::str_text => text.push_str(child.as_str()),
                Rule::str_escape => text.push_str(match child.as_str() {
                    "{{" => "{",
                    "}}" => "}",
                    "\\t" => "\t",
                    "\\n" => "\n",
                    "\\\"" => "\"",
                    "\\\\" => "\\",
                    _ => "",
                }),
                _ => {
                    return Err(self.literal_error(
                        self.span(&child),
                        "interpolation is only allowed in messages and expressions",
                        "write `{{` for a literal brace",
                    ));
                }
            }
        }
        Ok(text)
    }

    fn literal_error(&self, span: Span, message: &str, help: &str) -> SyntaxError {
        SyntaxError::InvalidLiteral {
            src: self.src.clone(),
            span: span.into(),
            message: message.to_string(),
            help: help.to_string(),
        }
    }
}

fn push_doc(doc: &mut String, pair: &Pair<Rule>) {
    let text = pair.as_str().trim_start_matches("///");
    let text = text.strip_prefix(' ').unwrap_or(text);
    if !doc.is_empty() {
        doc.push('\n');
    }
    doc.push_str(text.trim_end());
}
