//! Stage `check`: the resolved program typed against its declared schema.
//!
//! Takes a [`ResolvedProgram`]; gives a [`CheckedProgram`]: the schema as a
//! [`DataSchema`] for the loaders plus back-references and keys, every param
//! with its type, every rule with its statements, and side tables keyed by
//! [`ExprId`] that say what each name and field access refers to and what
//! type each expression has.
//!
//! **Invariants:** `check` never reads data. It reports every error of the
//! program, not only the first: an expression whose type is unknown after an
//! error gets [`Type::Unknown`], which is compatible with everything, so one
//! mistake is reported once.

pub mod lint;

use miette::{Diagnostic, SourceSpan};
use rustc_hash::FxHashMap;
use thiserror::Error;

use crate::ast::{
    BinaryOp, CollectionDecl, Expr, ExprId, ExprKind, FieldKind, Ident, Stmt, TemplatePart,
    TypeExpr, TypeKind, UnaryOp,
};
use crate::data::{CollectionSchema, DataSchema, EnumSchema, FieldSchema, FieldType, ScalarType};
use crate::diag::{self, Severity};
use crate::resolve::{ParamOrigin, ResolvedProgram};
use crate::source::{SourceMap, SourceText, Span};

/// The type of an expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Type {
    /// Integer.
    Int,
    /// Float.
    Number,
    /// Boolean.
    Bool,
    /// String.
    String,
    /// Date.
    Date,
    /// A variant of an enum.
    Enum(u32),
    /// One record of a collection.
    Row(u32),
    /// Records of a collection.
    Rows(u32),
    /// A list.
    List(Box<Type>),
    /// A map.
    Map(Box<Type>, Box<Type>),
    /// The `null` literal.
    Null,
    /// Unknown after an error; compatible with everything.
    Unknown,
}

impl Type {
    fn is_numeric(&self) -> bool {
        matches!(self, Type::Int | Type::Number | Type::Null | Type::Unknown)
    }

    fn is_bool(&self) -> bool {
        matches!(self, Type::Bool | Type::Null | Type::Unknown)
    }
}

/// What a field of a record refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Member {
    /// Stored field `field` of collection `coll`.
    Field {
        /// Collection.
        coll: u32,
        /// Field index.
        field: u32,
    },
    /// The records of `source` whose field `field` names this record.
    Backref {
        /// Collection holding the reference.
        source: u32,
        /// The referencing field.
        field: u32,
        /// Whether that field is a list of references.
        list: bool,
    },
}

/// What a name refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRes {
    /// A `for`, `let` or `as` binding.
    Local(u32),
    /// A field of the element of an enclosing `where` without `as`.
    Implicit {
        /// The element's slot.
        slot: u32,
        /// The field.
        member: Member,
    },
    /// A param of the enclosing policy or one it extends.
    Param {
        /// Policy index.
        policy: u32,
        /// Param index within the policy.
        param: u32,
    },
    /// A whole collection.
    Collection(u32),
    /// An enum variant.
    Variant(u32, u16),
}

/// What a `.field` expression does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read a member of one record.
    Member(Member),
    /// Read a stored field of every record of a set: a list.
    Project {
        /// Collection.
        coll: u32,
        /// Field.
        field: u32,
    },
}

/// Built-in functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Builtin {
    /// `count(xs)`
    Count,
    /// `sum(xs)`
    Sum,
    /// `min(xs)`
    Min,
    /// `max(xs)`
    Max,
    /// `avg(xs)`
    Avg,
    /// `any(xs)`: a non-empty set, or a list with a `true`.
    Any,
    /// `all(xs)`: a list of booleans all `true`.
    All,
    /// `distinct(xs)`
    Distinct,
    /// `join(xs, sep)`
    Join,
    /// `len(s)`
    Len,
    /// `percent(x)`: `0.0312` → `"3.12%"`.
    Percent,
    /// `starts_with(s, prefix)`
    StartsWith,
    /// `ends_with(s, suffix)`
    EndsWith,
    /// `contains(s, part)`
    Contains,
    /// `date("YYYY-MM-DD")`
    Date,
    /// `year(d)`
    Year,
    /// `abs(x)`
    Abs,
    /// `round(x, digits)`
    Round,
    /// `starts_with_any(s, prefixes)`
    StartsWithAny,
}

const BUILTINS: &[(&str, Builtin, usize, usize)] = &[
    ("count", Builtin::Count, 1, 1),
    ("sum", Builtin::Sum, 1, 1),
    ("min", Builtin::Min, 1, 1),
    ("max", Builtin::Max, 1, 1),
    ("avg", Builtin::Avg, 1, 1),
    ("any", Builtin::Any, 1, 1),
    ("all", Builtin::All, 1, 1),
    ("distinct", Builtin::Distinct, 1, 1),
    ("join", Builtin::Join, 1, 2),
    ("len", Builtin::Len, 1, 1),
    ("percent", Builtin::Percent, 1, 1),
    ("starts_with", Builtin::StartsWith, 2, 2),
    ("ends_with", Builtin::EndsWith, 2, 2),
    ("contains", Builtin::Contains, 2, 2),
    ("date", Builtin::Date, 1, 1),
    ("year", Builtin::Year, 1, 1),
    ("abs", Builtin::Abs, 1, 1),
    ("round", Builtin::Round, 1, 2),
    ("starts_with_any", Builtin::StartsWithAny, 2, 2),
];

/// Extra facts about a collection that the loaders do not need.
#[derive(Clone, Debug)]
pub struct CollectionInfo {
    /// Title from the schema.
    pub title: Option<String>,
    /// Key fields (several for a composite key).
    pub key_fields: Vec<u32>,
    /// Back-references: name, source collection, field, whether a list.
    pub backrefs: Vec<(String, Member)>,
    /// The readable path: label and expression (element in slot 0); an
    /// entry without a label is a reference expanded to its target's path.
    pub path: Vec<(Option<String>, Expr)>,
}

/// The checked schema.
#[derive(Clone, Debug)]
pub struct CheckedSchema {
    /// What the loaders need.
    pub data: DataSchema,
    /// Keys and back-references, parallel to `data.collections`.
    pub collections: Vec<CollectionInfo>,
}

/// A param with its type and value.
#[derive(Clone, Debug)]
pub struct CheckedParam {
    /// Name.
    pub name: String,
    /// Type.
    pub ty: Type,
    /// The value in force: the override if any, else the default.
    pub value: Expr,
    /// Where the value came from.
    pub origin: ParamOrigin,
}

/// A checked rule.
#[derive(Clone, Debug)]
pub struct CheckedRule {
    /// `policy.rule`
    pub id: String,
    /// Title.
    pub title: String,
    /// Severity.
    pub severity: Severity,
    /// The quantified collection and the slot of its variable; `None` for a
    /// dataset-level rule.
    pub entity: Option<(u32, u32)>,
    /// The `for` source (a collection, usually with `where`).
    pub source: Option<Expr>,
    /// `let` bindings: slot and value.
    pub lets: Vec<(u32, String, Expr)>,
    /// `require` conditions.
    pub requires: Vec<Expr>,
    /// The message; `None` uses the title.
    pub message: Option<Expr>,
    /// Number of slots the rule's bindings need.
    pub n_slots: u32,
    /// The declaration.
    pub span: Span,
    /// The rule's name within its policy.
    pub name: String,
    /// The params the rule reads: (policy, param).
    pub params_used: Vec<(u32, u32)>,
}

/// A checked policy.
#[derive(Clone, Debug)]
pub struct CheckedPolicy {
    /// Name.
    pub name: String,
    /// Title.
    pub title: Option<String>,
    /// The prefix of its rule ids (the name unless `prefix` says otherwise).
    pub prefix: String,
    /// Source citations.
    pub sources: Vec<String>,
    /// Params.
    pub params: Vec<CheckedParam>,
    /// Rules.
    pub rules: Vec<CheckedRule>,
    /// Parent policy.
    pub parent: Option<usize>,
    /// `scope` entries: collection and the expression placing its records
    /// (checked with the record's fields in scope, element in slot 0).
    pub scope: Vec<(u32, Expr)>,
    /// The `scope` param (policy, param) the entries are tested against.
    pub scope_param: Option<(u32, u32)>,
    /// First day in effect (days since 1970-01-01).
    pub effective_from: Option<i32>,
    /// Last day in effect.
    pub effective_until: Option<i32>,
}

/// What a function is made of.
#[derive(Clone, Debug)]
pub enum FnBody {
    /// Written in the language: the body over slots `0..n_params` and more.
    Bangfu {
        /// The body.
        body: Expr,
        /// Slots the body needs.
        n_slots: u32,
    },
    /// Written in rhai.
    Script {
        /// Index into `CheckedProgram::scripts`.
        script: u32,
    },
}

/// A checked function.
#[derive(Clone, Debug)]
pub struct CheckedFunction {
    /// Name.
    pub name: String,
    /// Parameter names and types.
    pub params: Vec<(String, Type)>,
    /// Result type.
    pub ret: Type,
    /// The body.
    pub body: FnBody,
    /// The declaration's name, for diagnostics.
    pub span: Span,
}

/// The checked program and its side tables.
#[derive(Clone, Debug)]
pub struct CheckedProgram {
    /// The schema.
    pub schema: CheckedSchema,
    /// Policies, in resolve order.
    pub policies: Vec<CheckedPolicy>,
    /// Type of every expression.
    pub types: FxHashMap<ExprId, Type>,
    /// What every name refers to.
    pub names: FxHashMap<ExprId, NameRes>,
    /// What every `.field` does.
    pub accesses: FxHashMap<ExprId, Access>,
    /// The slot of the element of every `where`.
    pub binders: FxHashMap<ExprId, u32>,
    /// The builtin of every call.
    pub calls: FxHashMap<ExprId, Builtin>,
    /// Functions written in the language or in rhai.
    pub functions: Vec<CheckedFunction>,
    /// The function of every call of one.
    pub fn_calls: FxHashMap<ExprId, u32>,
    /// rhai scripts.
    pub scripts: Vec<crate::resolve::ResolvedScript>,
}

/// Every problem the check stage can report.
#[derive(Debug, Error, Diagnostic)]
pub enum CheckError {
    /// Unknown field.
    #[error("unknown field `{field}` on `{collection}`")]
    #[diagnostic(code(E0301), help("{help}"))]
    UnknownField {
        /// The file.
        #[source_code]
        src: SourceText,
        /// The field name.
        #[label("not a field of `{collection}`")]
        span: SourceSpan,
        /// Collection.
        collection: String,
        /// Field.
        field: String,
        /// Did-you-mean.
        help: String,
    },
    /// Unknown collection.
    #[error("unknown collection `{name}`")]
    #[diagnostic(code(E0302), help("{help}"))]
    UnknownCollection {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("no collection has this name")]
        span: SourceSpan,
        /// Name.
        name: String,
        /// Did-you-mean.
        help: String,
    },
    /// Unknown name.
    #[error("unknown name `{name}`")]
    #[diagnostic(code(E0303), help("{help}"))]
    UnknownName {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("not a binding, field, param, collection or enum variant")]
        span: SourceSpan,
        /// Name.
        name: String,
        /// Did-you-mean.
        help: String,
    },
    /// Wrong type.
    #[error("{message}")]
    #[diagnostic(code(E0304), help("{help}"))]
    TypeMismatch {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("{label}")]
        span: SourceSpan,
        /// What is wrong.
        message: String,
        /// Short label.
        label: String,
        /// How to fix it.
        help: String,
    },
    /// Unknown function.
    #[error("unknown function `{name}`")]
    #[diagnostic(code(E0305), help("{help}"))]
    UnknownFunction {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("no such function")]
        span: SourceSpan,
        /// Name.
        name: String,
        /// Did-you-mean.
        help: String,
    },
    /// Wrong number of arguments.
    #[error("`{name}` takes {expected}, got {found}")]
    #[diagnostic(code(E0306), help("see docs/language.md for the built-in functions"))]
    WrongArity {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("called here")]
        span: SourceSpan,
        /// Function.
        name: String,
        /// Expected count, in words.
        expected: String,
        /// Found count.
        found: usize,
    },
    /// Unknown type.
    #[error("unknown type `{name}`")]
    #[diagnostic(code(E0307), help("{help}"))]
    UnknownType {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("not a type")]
        span: SourceSpan,
        /// Name.
        name: String,
        /// Did-you-mean.
        help: String,
    },
    /// A bad key declaration.
    #[error("invalid key `{name}` for collection `{collection}`")]
    #[diagnostic(code(E0308), help("{help}"))]
    InvalidKey {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("here")]
        span: SourceSpan,
        /// Collection.
        collection: String,
        /// Key.
        name: String,
        /// How to fix it.
        help: String,
    },
    /// A bad severity.
    #[error("unknown severity `{name}`")]
    #[diagnostic(code(E0309), help("write `error`, `warning` or `info`"))]
    InvalidSeverity {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("not a severity")]
        span: SourceSpan,
        /// Name.
        name: String,
    },
    /// A rule with missing or misplaced statements.
    #[error("{message}")]
    #[diagnostic(code(E0310), help("{help}"))]
    MalformedRule {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("here")]
        span: SourceSpan,
        /// What is wrong.
        message: String,
        /// How to fix it.
        help: String,
    },
    /// A param value that is not a constant.
    #[error("the value of param `{name}` is not a constant")]
    #[diagnostic(
        code(E0311),
        help("write a literal: a number, a string, a list `[…]` or a map `{{k: v}}`")
    )]
    NonConstantParam {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("not a constant")]
        span: SourceSpan,
        /// Param.
        name: String,
    },
    /// A function that calls itself, directly or through others.
    #[error("function `{name}` calls itself through `{chain}`")]
    #[diagnostic(
        code(E0330),
        help("bangfu functions are not recursive: aggregate over a collection instead")
    )]
    RecursiveFunction {
        /// The file.
        #[source_code]
        src: SourceText,
        /// The function.
        #[label("recursive")]
        span: SourceSpan,
        /// Name.
        name: String,
        /// The cycle.
        chain: String,
    },
    /// A `scope` block without a `scope` param.
    #[error("policy `{policy}` has a `scope` block but no `scope` param")]
    #[diagnostic(
        code(E0331),
        help(
            "declare `param scope: list<string> = [\"PREFIX\"]`: the code prefixes the policy applies to"
        )
    )]
    ScopeWithoutParam {
        /// The file.
        #[source_code]
        src: SourceText,
        /// The policy name.
        #[label("here")]
        span: SourceSpan,
        /// Policy.
        policy: String,
    },
    /// A bad date in `effective`.
    #[error("`{value}` is not a valid date")]
    #[diagnostic(code(E0332), help("write dates as \"YYYY-MM-DD\""))]
    InvalidDate {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("not YYYY-MM-DD")]
        span: SourceSpan,
        /// The text.
        value: String,
    },
    /// A function named like a builtin.
    #[error("function `{name}` has the name of a built-in function")]
    #[diagnostic(code(E0333), help("rename the function"))]
    ShadowedBuiltin {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("built-in name")]
        span: SourceSpan,
        /// Name.
        name: String,
    },
    /// A rhai function returning a type scripts cannot give.
    #[error("a rhai function cannot return {found}")]
    #[diagnostic(
        code(E0336),
        help(
            "return `int`, `number`, `bool`, `string` or a `list` of those, and convert in the policy"
        )
    )]
    UnsupportedScriptType {
        /// The file.
        #[source_code]
        src: SourceText,
        /// The type.
        #[label("not exchanged with scripts")]
        span: SourceSpan,
        /// The type's name.
        found: String,
    },
    /// A map literal with a part that is not a constant.
    #[error("a map literal is a table of constants")]
    #[diagnostic(
        code(E0335),
        help(
            "write literal keys and values; compute per-record values with `if … then … else` instead"
        )
    )]
    NonConstantMap {
        /// The file.
        #[source_code]
        src: SourceText,
        /// The part.
        #[label("not a constant")]
        span: SourceSpan,
    },
    /// A variant written twice.
    #[error("variant `{name}` appears twice in enum `{enum_name}`")]
    #[diagnostic(
        code(E0334),
        help("each variant of an enum is written once; remove the repetition")
    )]
    DuplicateVariant {
        /// The file.
        #[source_code]
        src: SourceText,
        /// The repetition.
        #[label("again")]
        span: SourceSpan,
        /// Enum.
        enum_name: String,
        /// Variant.
        name: String,
    },
    /// A variant of several enums.
    #[error("`{name}` is a variant of several enums ({enums})")]
    #[diagnostic(
        code(E0312),
        help("compare it with a field of the enum you mean, e.g. `x.kind == {name}`")
    )]
    AmbiguousVariant {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("which enum?")]
        span: SourceSpan,
        /// Name.
        name: String,
        /// Candidates.
        enums: String,
    },
}

enum Scope {
    Local { name: String, slot: u32, ty: Type },
    Implicit { slot: u32, coll: u32 },
}

struct Checker<'a> {
    schema: &'a CheckedSchema,
    sources: &'a SourceMap,
    errors: Vec<CheckError>,
    types: FxHashMap<ExprId, Type>,
    names: FxHashMap<ExprId, NameRes>,
    accesses: FxHashMap<ExprId, Access>,
    binders: FxHashMap<ExprId, u32>,
    calls: FxHashMap<ExprId, Builtin>,
    scopes: Vec<Scope>,
    params: Vec<(String, Type, NameRes)>,
    n_slots: u32,
    function_index: Vec<(String, u32)>,
    function_sigs: Vec<(Vec<Type>, Type)>,
    fn_calls: FxHashMap<ExprId, u32>,
}

/// Checks a resolved program.
pub fn check(
    program: &ResolvedProgram,
    sources: &SourceMap,
) -> Result<CheckedProgram, Vec<CheckError>> {
    let (schema, mut errors) = check_schema(program, sources);
    let mut checker = Checker {
        schema: &schema,
        sources,
        errors: Vec::new(),
        types: FxHashMap::default(),
        names: FxHashMap::default(),
        accesses: FxHashMap::default(),
        binders: FxHashMap::default(),
        calls: FxHashMap::default(),
        scopes: Vec::new(),
        params: Vec::new(),
        n_slots: 0,
        function_index: Vec::new(),
        function_sigs: Vec::new(),
        fn_calls: FxHashMap::default(),
    };
    // Functions: signatures first, so calls anywhere can be checked.
    let mut function_decls: Vec<FunctionDecl<'_>> = Vec::new();
    let mut path_steps: Vec<Vec<(Option<String>, Expr)>> = Vec::new();
    for decl in &program.functions {
        let (params, ret) = checker.signature(&decl.params, &decl.ret);
        function_decls.push((
            decl.name.name.clone(),
            params,
            ret,
            FnBody::Bangfu {
                body: decl.body.clone(),
                n_slots: 0,
            },
            decl.name.span,
            Some(&decl.body),
        ));
    }
    for (script_idx, script) in program.scripts.iter().enumerate() {
        for decl in &script.decl.functions {
            let (params, ret) = checker.signature(&decl.params, &decl.ret);
            // Scripts exchange numbers, booleans, strings and lists of them.
            fn scriptable(ty: &Type) -> bool {
                match ty {
                    Type::Int | Type::Number | Type::Bool | Type::String | Type::Unknown => true,
                    Type::List(item) => scriptable(item),
                    _ => false,
                }
            }
            if !scriptable(&ret) {
                let name = checker.type_name(&ret);
                checker.errors.push(CheckError::UnsupportedScriptType {
                    src: checker.src(decl.ret.span),
                    span: decl.ret.span.into(),
                    found: name,
                });
            }
            function_decls.push((
                decl.name.name.clone(),
                params,
                ret,
                FnBody::Script {
                    script: script_idx as u32,
                },
                decl.name.span,
                None,
            ));
        }
    }
    for (idx, (name, params, ret, _, span, _)) in function_decls.iter().enumerate() {
        if BUILTINS.iter().any(|(builtin, ..)| builtin == name) {
            checker.errors.push(CheckError::ShadowedBuiltin {
                src: checker.src(*span),
                span: (*span).into(),
                name: name.clone(),
            });
        }
        checker.function_index.push((name.clone(), idx as u32));
        checker
            .function_sigs
            .push((params.iter().map(|(_, t)| t.clone()).collect(), ret.clone()));
    }
    let mut functions = Vec::new();
    let mut callees: Vec<Vec<u32>> = Vec::new();
    for (name, params, ret, mut body, span, body_expr) in function_decls {
        let mut called = Vec::new();
        if let Some(body_expr) = body_expr {
            checker.scopes.clear();
            checker.params.clear();
            checker.n_slots = 0;
            for (param_name, param_ty) in &params {
                let slot = checker.new_slot();
                checker.scopes.push(Scope::Local {
                    name: param_name.clone(),
                    slot,
                    ty: param_ty.clone(),
                });
            }
            let before: Vec<ExprId> = checker.fn_calls.keys().copied().collect();
            let found = checker.expr(body_expr, Some(&ret));
            checker.expect_type(
                body_expr,
                &found,
                &ret,
                &format!(
                    "function `{name}` is declared to return `{}`",
                    checker.type_name(&ret)
                ),
            );
            walk(body_expr, &mut |e| {
                if !before.contains(&e.id)
                    && let Some(callee) = checker.fn_calls.get(&e.id)
                {
                    called.push(*callee);
                }
            });
            body = FnBody::Bangfu {
                body: body_expr.clone(),
                n_slots: checker.n_slots,
            };
        }
        callees.push(called);
        functions.push(CheckedFunction {
            name,
            params,
            ret,
            body,
            span,
        });
    }
    for (idx, function) in functions.iter().enumerate() {
        if let Some(chain) = call_cycle(idx as u32, &callees) {
            let chain = chain
                .iter()
                .map(|f| functions[*f as usize].name.clone())
                .collect::<Vec<_>>()
                .join(" → ");
            checker.errors.push(CheckError::RecursiveFunction {
                src: checker.src(function.span),
                span: function.span.into(),
                name: function.name.clone(),
                chain,
            });
        }
    }

    // Readable paths, checked with the record's fields in scope.
    for (coll, collection) in program.collections.iter().enumerate() {
        let mut steps = Vec::new();
        for (label, expr) in &collection.path {
            checker.scopes.clear();
            checker.params.clear();
            checker.n_slots = 1;
            checker.scopes.push(Scope::Implicit {
                slot: 0,
                coll: coll as u32,
            });
            let ty = checker.expr(expr, None);
            if label.is_none() && !matches!(ty, Type::Row(_) | Type::Unknown) {
                let name = checker.type_name(&ty);
                checker.mismatch(expr.span, format!("an unlabelled path step must be a reference, found {name}"), format!("this is {name}"), "write `label: expr` for a value, or name a `ref` field to include its record's path".into());
            }
            steps.push((label.as_ref().map(|l| l.name.clone()), expr.clone()));
        }
        path_steps.push(steps);
    }

    // Params of every policy, so children see their parents' params.
    let mut all_params: Vec<Vec<CheckedParam>> = Vec::new();
    for resolved in &program.policies {
        let decl = &resolved.decl;
        checker.params.clear();
        let mut params = Vec::new();
        for (param_idx, param) in decl.params.iter().enumerate() {
            let ty = checker.type_of_decl(&param.ty);
            let (value, origin) = match resolved
                .overrides
                .iter()
                .find(|(idx, _, _)| *idx == param_idx)
            {
                Some((_, value, origin)) => (value.clone(), origin.clone()),
                None => (param.default.clone(), ParamOrigin::Default),
            };
            checker.scopes.clear();
            // A params file has no bare names or dates: its strings stand
            // for enum variants and dates where the param's type says so.
            let value = coerce_strings(value, &ty, &schema.data);
            checker.check_constant(&param.name.name, &value);
            let found = checker.expr(&value, Some(&ty));
            let context = format!(
                "param `{}` is declared `{}`",
                param.name.name,
                checker.type_name(&ty)
            );
            checker.expect_type(&value, &found, &ty, &context);
            params.push(CheckedParam {
                name: param.name.name.clone(),
                ty,
                value,
                origin,
            });
        }
        all_params.push(params);
    }
    let mut policies = Vec::new();
    for (policy_idx, resolved) in program.policies.iter().enumerate() {
        let decl = &resolved.decl;
        let default_severity = decl
            .severity
            .as_ref()
            .map_or(Severity::Error, |ident| checker.severity(ident));
        // Own params first, then each ancestor's (a child may shadow).
        checker.params.clear();
        let mut current = Some(policy_idx);
        let mut steps = 0;
        while let Some(idx) = current {
            for (param_idx, param) in all_params[idx].iter().enumerate() {
                if !checker
                    .params
                    .iter()
                    .any(|(name, _, _)| *name == param.name)
                {
                    checker.params.push((
                        param.name.clone(),
                        param.ty.clone(),
                        NameRes::Param {
                            policy: idx as u32,
                            param: param_idx as u32,
                        },
                    ));
                }
            }
            current = program.policies[idx].parent;
            steps += 1;
            if steps > program.policies.len() {
                break;
            }
        }
        let mut scope = Vec::new();
        let scope_param = checker
            .params
            .iter()
            .find(|(name, _, _)| name == "scope")
            .and_then(|(_, _, res)| match res {
                NameRes::Param { policy, param } => Some((*policy, *param)),
                _ => None,
            });
        if !decl.scope.is_empty() && scope_param.is_none() {
            checker.errors.push(CheckError::ScopeWithoutParam {
                src: checker.src(decl.name.span),
                span: decl.name.span.into(),
                policy: decl.name.name.clone(),
            });
        }
        for (collection, expr) in &decl.scope {
            let Some(coll) = schema.data.collection_index(&collection.name) else {
                checker.unknown_collection(&collection.name, collection.span);
                continue;
            };
            checker.scopes.clear();
            checker.n_slots = 1;
            checker.scopes.push(Scope::Implicit {
                slot: 0,
                coll: coll as u32,
            });
            let found = checker.expr(expr, Some(&Type::String));
            checker.expect_type(
                expr,
                &found,
                &Type::String,
                "a scope entry gives the code that the `scope` prefixes are matched against",
            );
            scope.push((coll as u32, expr.clone()));
        }
        let mut date = |value: &Option<(String, Span)>| {
            let (text, span) = value.as_ref()?;
            let parsed = crate::data::parse_date(text);
            if parsed.is_none() {
                checker.errors.push(CheckError::InvalidDate {
                    src: checker.src(*span),
                    span: (*span).into(),
                    value: text.clone(),
                });
            }
            parsed
        };
        let effective_from = date(&decl.effective_from);
        let effective_until = date(&decl.effective_until);
        let mut rules: Vec<CheckedRule> = Vec::new();
        for rule in &decl.rules {
            let mut checked = checker.rule(
                &decl.prefix.as_ref().unwrap_or(&decl.name).name,
                rule,
                default_severity,
            );
            // The params it reads, so a what-if session re-evaluates only
            // the rules a changed param can affect.
            let mut used: Vec<(u32, u32)> = Vec::new();
            let exprs = checked
                .source
                .iter()
                .chain(checked.lets.iter().map(|(_, _, e)| e))
                .chain(checked.requires.iter())
                .chain(checked.message.iter());
            for expr in exprs {
                walk(expr, &mut |e| {
                    if let Some(NameRes::Param { policy, param }) = checker.names.get(&e.id)
                        && !used.contains(&(*policy, *param))
                    {
                        used.push((*policy, *param));
                    }
                });
            }
            if let Some(scope_id) = scope_param
                && checked
                    .entity
                    .is_some_and(|(coll, _)| scope.iter().any(|(c, _)| *c == coll))
                && !used.contains(&scope_id)
            {
                used.push(scope_id);
            }
            checked.params_used = used;
            rules.push(checked);
        }
        policies.push(CheckedPolicy {
            prefix: decl.prefix.as_ref().unwrap_or(&decl.name).name.clone(),
            name: decl.name.name.clone(),
            title: decl.title.clone(),
            sources: decl.sources.clone(),
            params: all_params[policy_idx].clone(),
            rules,
            parent: resolved.parent,
            scope,
            scope_param,
            effective_from,
            effective_until,
        });
    }
    errors.append(&mut checker.errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let Checker {
        types,
        names,
        accesses,
        binders,
        calls,
        fn_calls,
        ..
    } = checker;
    let mut schema = schema;
    for (info, steps) in schema.collections.iter_mut().zip(path_steps) {
        info.path = steps;
    }
    Ok(CheckedProgram {
        schema,
        policies,
        types,
        names,
        accesses,
        binders,
        calls,
        functions,
        fn_calls,
        scripts: program.scripts.clone(),
    })
}

/// A function being checked: name, params, result, body, span, and the
/// body expression for functions written in the language.
type FunctionDecl<'a> = (
    String,
    Vec<(String, Type)>,
    Type,
    FnBody,
    Span,
    Option<&'a Expr>,
);

/// `"variant"` → `variant` where an enum is expected, `"2020-01-01"` →
/// `date("2020-01-01")` where a date is, inside lists and map values too.
fn coerce_strings(expr: Expr, ty: &Type, data: &DataSchema) -> Expr {
    match (expr.kind, ty) {
        (ExprKind::Str(text), Type::Enum(idx))
            if data
                .enums
                .get(*idx as usize)
                .is_some_and(|e| e.variants.contains(&text)) =>
        {
            Expr {
                kind: ExprKind::Name(text),
                ..expr
            }
        }
        (ExprKind::Str(text), Type::Date) if crate::data::parse_date(&text).is_some() => {
            let arg = Expr {
                id: expr.id,
                span: expr.span,
                kind: ExprKind::Str(text),
            };
            Expr {
                kind: ExprKind::Call(
                    Ident {
                        name: "date".into(),
                        span: expr.span,
                    },
                    vec![arg],
                ),
                ..expr
            }
        }
        (ExprKind::List(elems), Type::List(item)) => Expr {
            kind: ExprKind::List(
                elems
                    .into_iter()
                    .map(|elem| crate::ast::ListElem {
                        value: coerce_strings(elem.value, item, data),
                        condition: elem.condition,
                    })
                    .collect(),
            ),
            ..expr
        },
        (ExprKind::Map(entries), Type::Map(key, value)) => Expr {
            kind: ExprKind::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (coerce_strings(k, key, data), coerce_strings(v, value, data)))
                    .collect(),
            ),
            ..expr
        },
        (kind, _) => Expr { kind, ..expr },
    }
}

/// The functions `start` reaches back to itself through, if it does.
fn call_cycle(start: u32, callees: &[Vec<u32>]) -> Option<Vec<u32>> {
    let mut stack = vec![(start, vec![start])];
    let mut seen = vec![false; callees.len()];
    while let Some((node, path)) = stack.pop() {
        for next in callees.get(node as usize).into_iter().flatten() {
            if *next == start {
                let mut cycle = path.clone();
                cycle.push(start);
                return Some(cycle);
            }
            if !seen[*next as usize] {
                seen[*next as usize] = true;
                let mut longer = path.clone();
                longer.push(*next);
                stack.push((*next, longer));
            }
        }
    }
    None
}

fn src_of(sources: &SourceMap, span: Span) -> SourceText {
    sources.get(span.src).clone()
}

const SCALARS: &[&str] = &["int", "number", "bool", "string", "date"];

fn check_schema(
    program: &ResolvedProgram,
    sources: &SourceMap,
) -> (CheckedSchema, Vec<CheckError>) {
    let mut errors = Vec::new();
    let mut data = DataSchema::default();
    for enum_decl in &program.enums {
        data.enums.push(EnumSchema {
            name: enum_decl.name.name.clone(),
            variants: enum_decl.variants.iter().map(|v| v.name.clone()).collect(),
        });
    }
    let coll_names: Vec<&str> = program
        .collections
        .iter()
        .map(|c| c.name.name.as_str())
        .collect();
    let mut infos = Vec::new();
    for collection in &program.collections {
        let mut fields = Vec::new();
        for field in &collection.fields {
            let FieldKind::Stored(ty) = &field.kind else {
                continue;
            };
            let field_ty = data_field_type(
                &mut data,
                &coll_names,
                collection,
                &field.name,
                ty,
                sources,
                &mut errors,
            );
            fields.push(FieldSchema {
                name: field.name.name.clone(),
                ty: field_ty,
                optional: ty.optional,
                keep: false,
                shown: false,
            });
        }
        data.collections.push(CollectionSchema {
            name: collection.name.name.clone(),
            key: None,
            fields,
        });
    }
    for (coll_idx, collection) in program.collections.iter().enumerate() {
        let mut key_fields = Vec::new();
        for key in &collection.key {
            match data.collections[coll_idx].field_index(&key.name) {
                Some(field) => key_fields.push(field as u32),
                None => errors.push(CheckError::InvalidKey {
                    src: src_of(sources, key.span),
                    span: key.span.into(),
                    collection: collection.name.name.clone(),
                    name: key.name.clone(),
                    help: diag::help_did_you_mean(
                        &key.name,
                        "field",
                        data.collections[coll_idx]
                            .fields
                            .iter()
                            .map(|f| f.name.as_str()),
                    ),
                }),
            }
        }
        if let [single] = key_fields.as_slice() {
            let field = &data.collections[coll_idx].fields[*single as usize];
            if field.ty != FieldType::Scalar(ScalarType::String) || field.optional {
                errors.push(CheckError::InvalidKey {
                    src: src_of(sources, collection.key[0].span),
                    span: collection.key[0].span.into(),
                    collection: collection.name.name.clone(),
                    name: field.name.clone(),
                    help: "a single key must be a required `string` field; use a composite key `key (a, b)` for other fields".into(),
                });
            } else {
                data.collections[coll_idx].key = Some(*single as usize);
            }
        }
        let mut backrefs = Vec::new();
        for field in &collection.fields {
            let FieldKind::Backref {
                collection: source_name,
                field: source_field,
            } = &field.kind
            else {
                continue;
            };
            let Some(source) = data.collection_index(&source_name.name) else {
                errors.push(CheckError::UnknownCollection {
                    src: src_of(sources, source_name.span),
                    span: source_name.span.into(),
                    name: source_name.name.clone(),
                    help: diag::help_did_you_mean(
                        &source_name.name,
                        "collection",
                        coll_names.iter().copied(),
                    ),
                });
                continue;
            };
            let source_schema = &data.collections[source];
            let Some(field_idx) = source_schema.field_index(&source_field.name) else {
                errors.push(CheckError::UnknownField {
                    src: src_of(sources, source_field.span),
                    span: source_field.span.into(),
                    collection: source_name.name.clone(),
                    field: source_field.name.clone(),
                    help: diag::help_did_you_mean(
                        &source_field.name,
                        "field",
                        source_schema.fields.iter().map(|f| f.name.as_str()),
                    ),
                });
                continue;
            };
            let list = match source_schema.fields[field_idx].ty {
                FieldType::Scalar(ScalarType::Ref(target)) if target as usize == coll_idx => false,
                FieldType::List(ScalarType::Ref(target)) if target as usize == coll_idx => true,
                other => {
                    errors.push(CheckError::TypeMismatch {
                        src: src_of(sources, source_field.span),
                        span: source_field.span.into(),
                        message: format!(
                            "`{}.{}` does not refer to `{}`",
                            source_name.name, source_field.name, collection.name.name
                        ),
                        label: format!("this field is {}", data.field_type_name(other)),
                        help: format!(
                            "a backref names a field declared `ref {0}` or `list<ref {0}>`",
                            collection.name.name
                        ),
                    });
                    continue;
                }
            };
            backrefs.push((
                field.name.name.clone(),
                Member::Backref {
                    source: source as u32,
                    field: field_idx as u32,
                    list,
                },
            ));
        }
        infos.push(CollectionInfo {
            path: Vec::new(),
            title: collection.title.clone(),
            key_fields,
            backrefs,
        });
    }
    // A reference is resolved by its target's single string key.
    for collection in &program.collections {
        for field in &collection.fields {
            let FieldKind::Stored(ty) = &field.kind else {
                continue;
            };
            let target = match &ty.kind {
                TypeKind::Ref(target) => target,
                TypeKind::List(inner) => match &inner.kind {
                    TypeKind::Ref(target) => target,
                    _ => continue,
                },
                _ => continue,
            };
            if let Some(target_idx) = data.collection_index(&target.name)
                && data.collections[target_idx].key.is_none()
            {
                errors.push(CheckError::InvalidKey {
                    src: src_of(sources, target.span),
                    span: target.span.into(),
                    collection: target.name.clone(),
                    name: format!("{}.{}", collection.name.name, field.name.name),
                    help: format!("a `ref` names a record by its key: give `{}` a single `string` key (`key id`)", target.name),
                });
            }
        }
    }
    // Named enums and the inline ones of fields.
    let inline_enums = program.collections.iter().flat_map(|collection| {
        collection
            .fields
            .iter()
            .filter_map(move |field| match &field.kind {
                FieldKind::Stored(TypeExpr {
                    kind: TypeKind::Enum(variants),
                    ..
                }) => Some((
                    format!("{}.{}", collection.name.name, field.name.name),
                    variants,
                )),
                _ => None,
            })
    });
    for (enum_name, variants) in program
        .enums
        .iter()
        .map(|e| (e.name.name.clone(), &e.variants))
        .chain(inline_enums)
    {
        let mut seen: Vec<&str> = Vec::new();
        for variant in variants {
            if seen.contains(&variant.name.as_str()) {
                errors.push(CheckError::DuplicateVariant {
                    src: src_of(sources, variant.span),
                    span: variant.span.into(),
                    enum_name: enum_name.clone(),
                    name: variant.name.clone(),
                });
            }
            seen.push(&variant.name);
        }
    }
    (
        CheckedSchema {
            data,
            collections: infos,
        },
        errors,
    )
}

fn data_field_type(
    data: &mut DataSchema,
    coll_names: &[&str],
    collection: &CollectionDecl,
    field: &Ident,
    ty: &TypeExpr,
    sources: &SourceMap,
    errors: &mut Vec<CheckError>,
) -> FieldType {
    match &ty.kind {
        TypeKind::List(inner) => FieldType::List(data_scalar_type(
            data, coll_names, collection, field, inner, sources, errors,
        )),
        _ => FieldType::Scalar(data_scalar_type(
            data, coll_names, collection, field, ty, sources, errors,
        )),
    }
}

fn data_scalar_type(
    data: &mut DataSchema,
    coll_names: &[&str],
    collection: &CollectionDecl,
    field: &Ident,
    ty: &TypeExpr,
    sources: &SourceMap,
    errors: &mut Vec<CheckError>,
) -> ScalarType {
    match &ty.kind {
        TypeKind::Named(name) => match name.name.as_str() {
            "int" => ScalarType::Int,
            "number" => ScalarType::Number,
            "bool" => ScalarType::Bool,
            "string" => ScalarType::String,
            "date" => ScalarType::Date,
            other => match data.enums.iter().position(|e| e.name == other) {
                Some(idx) => ScalarType::Enum(idx as u32),
                None => {
                    let candidates: Vec<&str> = SCALARS
                        .iter()
                        .copied()
                        .chain(data.enums.iter().map(|e| e.name.as_str()))
                        .collect();
                    errors.push(CheckError::UnknownType {
                        src: src_of(sources, name.span),
                        span: name.span.into(),
                        name: other.to_string(),
                        help: diag::help_did_you_mean(other, "type", candidates),
                    });
                    ScalarType::String
                }
            },
        },
        TypeKind::Ref(target) => match coll_names.iter().position(|c| *c == target.name) {
            Some(idx) => ScalarType::Ref(idx as u32),
            None => {
                errors.push(CheckError::UnknownCollection {
                    src: src_of(sources, target.span),
                    span: target.span.into(),
                    name: target.name.clone(),
                    help: diag::help_did_you_mean(
                        &target.name,
                        "collection",
                        coll_names.iter().copied(),
                    ),
                });
                ScalarType::String
            }
        },
        TypeKind::Enum(variants) => {
            data.enums.push(EnumSchema {
                name: format!("{}.{}", collection.name.name, field.name),
                variants: variants.iter().map(|v| v.name.clone()).collect(),
            });
            ScalarType::Enum(data.enums.len() as u32 - 1)
        }
        TypeKind::List(_) | TypeKind::Map(..) => {
            errors.push(CheckError::UnknownType {
                src: src_of(sources, ty.span),
                span: ty.span.into(),
                name: "nested list or map".into(),
                help: "a stored field is a scalar, a `ref`, an enum or a `list` of one of those"
                    .into(),
            });
            ScalarType::String
        }
    }
}

impl Checker<'_> {
    fn src(&self, span: Span) -> SourceText {
        src_of(self.sources, span)
    }

    /// The parameter names and types and the result type of a function.
    fn signature(
        &mut self,
        params: &[crate::ast::FnParam],
        ret: &TypeExpr,
    ) -> (Vec<(String, Type)>, Type) {
        let params = params
            .iter()
            .map(|p| (p.name.name.clone(), self.type_of_decl(&p.ty)))
            .collect();
        (params, self.type_of_decl(ret))
    }

    fn severity(&mut self, ident: &Ident) -> Severity {
        Severity::parse(&ident.name).unwrap_or_else(|| {
            self.errors.push(CheckError::InvalidSeverity {
                src: self.src(ident.span),
                span: ident.span.into(),
                name: ident.name.clone(),
            });
            Severity::Error
        })
    }

    fn type_name(&self, ty: &Type) -> String {
        let data = &self.schema.data;
        match ty {
            Type::Int => "int".into(),
            Type::Number => "number".into(),
            Type::Bool => "bool".into(),
            Type::String => "string".into(),
            Type::Date => "date".into(),
            Type::Enum(idx) => format!("enum `{}`", data.enums[*idx as usize].name),
            Type::Row(idx) => format!("a record of `{}`", data.collections[*idx as usize].name),
            Type::Rows(idx) => format!("records of `{}`", data.collections[*idx as usize].name),
            Type::List(inner) => format!("list<{}>", self.type_name(inner)),
            Type::Map(key, value) => {
                format!("map<{}, {}>", self.type_name(key), self.type_name(value))
            }
            Type::Null => "null".into(),
            Type::Unknown => "unknown".into(),
        }
    }

    fn type_of_decl(&mut self, ty: &TypeExpr) -> Type {
        match &ty.kind {
            TypeKind::Named(name) => match name.name.as_str() {
                "int" => Type::Int,
                "number" => Type::Number,
                "bool" => Type::Bool,
                "string" => Type::String,
                "date" => Type::Date,
                other => match self.schema.data.enums.iter().position(|e| e.name == other) {
                    Some(idx) => Type::Enum(idx as u32),
                    None => {
                        let candidates: Vec<&str> = SCALARS
                            .iter()
                            .copied()
                            .chain(["list", "map", "ref"])
                            .chain(self.schema.data.enums.iter().map(|e| e.name.as_str()))
                            .collect();
                        let help = diag::help_did_you_mean(other, "type", candidates);
                        self.errors.push(CheckError::UnknownType {
                            src: self.src(name.span),
                            span: name.span.into(),
                            name: other.to_string(),
                            help,
                        });
                        Type::Unknown
                    }
                },
            },
            TypeKind::List(inner) => Type::List(Box::new(self.type_of_decl(inner))),
            TypeKind::Map(key, value) => Type::Map(
                Box::new(self.type_of_decl(key)),
                Box::new(self.type_of_decl(value)),
            ),
            TypeKind::Ref(target) => match self.schema.data.collection_index(&target.name) {
                Some(idx) => Type::Row(idx as u32),
                None => {
                    self.unknown_collection(&target.name, target.span);
                    Type::Unknown
                }
            },
            TypeKind::Enum(_) => {
                self.errors.push(CheckError::UnknownType {
                    src: self.src(ty.span),
                    span: ty.span.into(),
                    name: "inline enum".into(),
                    help: "declare the enum in the schema (`enum name { … }`) and use its name"
                        .into(),
                });
                Type::Unknown
            }
        }
    }

    fn unknown_collection(&mut self, name: &str, span: Span) {
        let help = diag::help_did_you_mean(
            name,
            "collection",
            self.schema.data.collections.iter().map(|c| c.name.as_str()),
        );
        self.errors.push(CheckError::UnknownCollection {
            src: self.src(span),
            span: span.into(),
            name: name.to_string(),
            help,
        });
    }

    /// Reports unless `expr` is a constant the compiler can fold: a
    /// literal, `-literal`, `date("…")`, an enum variant, or a list or map of
    /// constants.
    fn check_constant(&mut self, param: &str, expr: &Expr) {
        if let Some(span) = self.non_constant(expr) {
            self.errors.push(CheckError::NonConstantParam {
                src: self.src(span),
                span: span.into(),
                name: param.to_string(),
            });
        }
    }

    /// The span of the first part of `expr` that is not a constant.
    fn non_constant(&self, expr: &Expr) -> Option<Span> {
        match &expr.kind {
            ExprKind::Int(_)
            | ExprKind::Number(_)
            | ExprKind::Str(_)
            | ExprKind::Bool(_)
            | ExprKind::Null => None,
            ExprKind::Name(name)
                if self
                    .schema
                    .data
                    .enums
                    .iter()
                    .any(|en| en.variants.iter().any(|v| v == name)) =>
            {
                None
            }
            ExprKind::Unary(UnaryOp::Neg, operand)
                if matches!(operand.kind, ExprKind::Int(_) | ExprKind::Number(_)) =>
            {
                None
            }
            ExprKind::Call(name, args)
                if name.name == "date"
                    && matches!(
                        args.as_slice(),
                        [Expr {
                            kind: ExprKind::Str(_),
                            ..
                        }]
                    ) =>
            {
                None
            }
            ExprKind::List(elems) => elems.iter().find_map(|elem| {
                if elem.condition.is_some() {
                    Some(elem.value.span)
                } else {
                    self.non_constant(&elem.value)
                }
            }),
            ExprKind::Map(entries) => entries.iter().find_map(|(key, value)| {
                self.non_constant(key).or_else(|| self.non_constant(value))
            }),
            _ => Some(expr.span),
        }
    }

    fn mismatch(&mut self, span: Span, message: String, label: String, help: String) {
        self.errors.push(CheckError::TypeMismatch {
            src: self.src(span),
            span: span.into(),
            message,
            label,
            help,
        });
    }

    /// Reports unless `found` fits `expected`.
    fn expect_type(&mut self, expr: &Expr, found: &Type, expected: &Type, context: &str) {
        if !self.fits(found, expected) {
            let found_name = self.type_name(found);
            let expected_name = self.type_name(expected);
            self.mismatch(
                expr.span,
                format!("expected {expected_name}, found {found_name}"),
                format!("this is {found_name}"),
                format!("{context}; write a value of type {expected_name}"),
            );
        }
    }

    fn fits(&self, found: &Type, expected: &Type) -> bool {
        match (found, expected) {
            (Type::Unknown | Type::Null, _) | (_, Type::Unknown) => true,
            (Type::Int, Type::Number) => true,
            (Type::List(a), Type::List(b)) => self.fits(a, b),
            (Type::Map(ka, va), Type::Map(kb, vb)) => self.fits(ka, kb) && self.fits(va, vb),
            (Type::String, Type::Row(coll)) | (Type::Row(coll), Type::String) => {
                self.has_string_key(*coll)
            }
            _ => found == expected,
        }
    }

    fn has_string_key(&self, coll: u32) -> bool {
        self.schema.data.collections[coll as usize].key.is_some()
    }

    fn unify(&self, a: &Type, b: &Type) -> Option<Type> {
        match (a, b) {
            (Type::Unknown, other)
            | (other, Type::Unknown)
            | (Type::Null, other)
            | (other, Type::Null) => Some(other.clone()),
            (Type::Int, Type::Number) | (Type::Number, Type::Int) => Some(Type::Number),
            (Type::List(x), Type::List(y)) => self.unify(x, y).map(|t| Type::List(Box::new(t))),
            _ if a == b => Some(a.clone()),
            _ => None,
        }
    }

    fn new_slot(&mut self) -> u32 {
        self.n_slots += 1;
        self.n_slots - 1
    }

    fn rule(
        &mut self,
        policy: &str,
        rule: &crate::ast::RuleDecl,
        default_severity: Severity,
    ) -> CheckedRule {
        self.scopes.clear();
        self.n_slots = 0;
        let mut entity = None;
        let mut source = None;
        let mut lets = Vec::new();
        let mut requires = Vec::new();
        let mut message = None;
        let mut severity = default_severity;
        for (idx, stmt) in rule.stmts.iter().enumerate() {
            match stmt {
                Stmt::For { var, source: expr } => {
                    if idx != 0 || entity.is_some() {
                        let help = "a rule has at most one `for`, and it comes first".to_string();
                        self.errors.push(CheckError::MalformedRule {
                            src: self.src(var.span),
                            span: var.span.into(),
                            message: "misplaced `for`".into(),
                            help,
                        });
                        continue;
                    }
                    let slot = self.new_slot();
                    let coll = self.for_source(var, slot, expr);
                    if let Some(coll) = coll {
                        entity = Some((coll, slot));
                    }
                    self.scopes.push(Scope::Local {
                        name: var.name.clone(),
                        slot,
                        ty: coll.map_or(Type::Unknown, Type::Row),
                    });
                    source = Some(expr.clone());
                }
                Stmt::Let { name, value } => {
                    let ty = self.expr(value, None);
                    let slot = self.new_slot();
                    self.scopes.push(Scope::Local {
                        name: name.name.clone(),
                        slot,
                        ty,
                    });
                    lets.push((slot, name.name.clone(), value.clone()));
                }
                Stmt::Require(expr) => {
                    let ty = self.expr(expr, Some(&Type::Bool));
                    self.expect_type(expr, &ty, &Type::Bool, "`require` takes a condition");
                    requires.push(expr.clone());
                }
                Stmt::Message(expr) => {
                    if message.is_some() {
                        self.errors.push(CheckError::MalformedRule {
                            src: self.src(expr.span),
                            span: expr.span.into(),
                            message: "a rule has one `message`".into(),
                            help: "remove one of the messages".into(),
                        });
                    }
                    self.expr(expr, None);
                    message = Some(expr.clone());
                }
                Stmt::Severity(ident) => severity = self.severity(ident),
            }
        }
        if requires.is_empty() {
            self.errors.push(CheckError::MalformedRule {
                src: self.src(rule.name.span),
                span: rule.name.span.into(),
                message: format!("rule `{}` has no `require`", rule.name.name),
                help: "add `require CONDITION`: the condition every entity must meet".into(),
            });
        }
        CheckedRule {
            id: format!("{policy}.{}", rule.name.name),
            title: rule.title.clone().unwrap_or_else(|| rule.name.name.clone()),
            severity,
            entity,
            source,
            lets,
            requires,
            message,
            n_slots: self.n_slots,
            span: rule.span,
            name: rule.name.name.clone(),
            params_used: Vec::new(),
        }
    }

    /// Checks `for VAR in SOURCE`; returns the quantified collection.
    fn for_source(&mut self, var: &Ident, slot: u32, expr: &Expr) -> Option<u32> {
        let (base, binder, condition) = match &expr.kind {
            ExprKind::Where {
                source,
                binder,
                condition,
            } => (source.as_ref(), binder.as_ref(), Some(condition.as_ref())),
            _ => (expr, None, None),
        };
        let base_ty = self.expr(base, None);
        let coll = match base_ty {
            Type::Rows(coll) => Some(coll),
            Type::Unknown => None,
            other => {
                let name = self.type_name(&other);
                self.mismatch(
                    base.span,
                    format!("`for` needs a collection, found {name}"),
                    format!("this is {name}"),
                    "quantify over a collection: `for x in NAME where …`".into(),
                );
                None
            }
        };
        if let Some(condition) = condition {
            self.binders.insert(expr.id, slot);
            // `for p in xs as q where …` names the element twice; both work.
            if let Some(binder) = binder {
                self.scopes.push(Scope::Local {
                    name: binder.name.clone(),
                    slot,
                    ty: coll.map_or(Type::Unknown, Type::Row),
                });
            }
            self.scopes.push(Scope::Local {
                name: var.name.clone(),
                slot,
                ty: coll.map_or(Type::Unknown, Type::Row),
            });
            let ty = self.expr(condition, Some(&Type::Bool));
            self.expect_type(condition, &ty, &Type::Bool, "`where` takes a condition");
            self.scopes.pop();
            self.types
                .insert(expr.id, coll.map_or(Type::Unknown, Type::Rows));
        }
        coll
    }

    fn member(&self, coll: u32, name: &str) -> Option<(Member, Type)> {
        let schema = &self.schema.data.collections[coll as usize];
        if let Some(field) = schema.field_index(name) {
            let ty = match schema.fields[field].ty {
                FieldType::Scalar(scalar) => scalar_type(scalar),
                FieldType::List(scalar) => Type::List(Box::new(scalar_type(scalar))),
            };
            return Some((
                Member::Field {
                    coll,
                    field: field as u32,
                },
                ty,
            ));
        }
        let info = &self.schema.collections[coll as usize];
        info.backrefs
            .iter()
            .find(|(backref, _)| backref == name)
            .map(|(_, member)| {
                let Member::Backref { source, .. } = member else {
                    return (*member, Type::Unknown);
                };
                (*member, Type::Rows(*source))
            })
    }

    fn member_names(&self, coll: u32) -> Vec<&str> {
        let schema = &self.schema.data.collections[coll as usize];
        schema
            .fields
            .iter()
            .map(|f| f.name.as_str())
            .chain(
                self.schema.collections[coll as usize]
                    .backrefs
                    .iter()
                    .map(|(n, _)| n.as_str()),
            )
            .collect()
    }

    fn record(&mut self, expr: &Expr, ty: Type) -> Type {
        self.types.insert(expr.id, ty.clone());
        ty
    }

    fn expr(&mut self, expr: &Expr, expected: Option<&Type>) -> Type {
        let ty = self.expr_inner(expr, expected);
        self.record(expr, ty)
    }

    fn expr_inner(&mut self, expr: &Expr, expected: Option<&Type>) -> Type {
        match &expr.kind {
            ExprKind::Int(_) => Type::Int,
            ExprKind::Number(_) => Type::Number,
            ExprKind::Str(_) => Type::String,
            ExprKind::Template(parts) => {
                for part in parts {
                    if let TemplatePart::Expr(inner) = part {
                        self.expr(inner, None);
                    }
                }
                Type::String
            }
            ExprKind::Bool(_) => Type::Bool,
            ExprKind::Null => Type::Null,
            ExprKind::Name(name) => self.name(expr, name, expected),
            ExprKind::Field(base, field) => {
                let base_ty = self.expr(base, None);
                self.field(expr, &base_ty, field)
            }
            ExprKind::Index(base, index) => {
                let base_ty = self.expr(base, None);
                match base_ty {
                    Type::Map(key, value) => {
                        let index_ty = self.expr(index, Some(&key));
                        self.expect_type(
                            index,
                            &index_ty,
                            &key,
                            "a map is indexed by its key type",
                        );
                        *value
                    }
                    Type::List(item) => {
                        let index_ty = self.expr(index, Some(&Type::Int));
                        self.expect_type(
                            index,
                            &index_ty,
                            &Type::Int,
                            "a list is indexed by position",
                        );
                        *item
                    }
                    Type::Unknown | Type::Null => {
                        self.expr(index, None);
                        Type::Unknown
                    }
                    other => {
                        self.expr(index, None);
                        let name = self.type_name(&other);
                        self.mismatch(
                            base.span,
                            format!("cannot index {name}"),
                            format!("this is {name}"),
                            "only maps and lists can be indexed with `[…]`".into(),
                        );
                        Type::Unknown
                    }
                }
            }
            ExprKind::Call(name, args) => self.call(expr, name, args),
            ExprKind::List(elems) => {
                let item_expected = match expected {
                    Some(Type::List(item)) => Some(item.as_ref().clone()),
                    _ => None,
                };
                let mut item_ty = Type::Null;
                for elem in elems {
                    let ty = self.expr(&elem.value, item_expected.as_ref());
                    match self.unify(&item_ty, &ty) {
                        Some(unified) => item_ty = unified,
                        None => {
                            let (a, b) = (self.type_name(&item_ty), self.type_name(&ty));
                            self.mismatch(
                                elem.value.span,
                                format!("list elements have different types: {a} and {b}"),
                                format!("this is {b}"),
                                "every element of a list has the same type".into(),
                            );
                        }
                    }
                    if let Some(condition) = &elem.condition {
                        let cond_ty = self.expr(condition, Some(&Type::Bool));
                        self.expect_type(
                            condition,
                            &cond_ty,
                            &Type::Bool,
                            "`if` in a list takes a condition",
                        );
                    }
                }
                Type::List(Box::new(item_ty))
            }
            ExprKind::Map(entries) => {
                // Map literals are tables folded at compile time.
                if let Some(span) = self.non_constant(expr) {
                    self.errors.push(CheckError::NonConstantMap {
                        src: self.src(span),
                        span: span.into(),
                    });
                }
                let (key_expected, value_expected) = match expected {
                    Some(Type::Map(key, value)) => {
                        (Some(key.as_ref().clone()), Some(value.as_ref().clone()))
                    }
                    _ => (None, None),
                };
                let mut key_ty = Type::Null;
                let mut value_ty = Type::Null;
                for (key, value) in entries {
                    let k = self.expr(key, key_expected.as_ref());
                    let v = self.expr(value, value_expected.as_ref());
                    match self.unify(&key_ty, &k) {
                        Some(t) => key_ty = t,
                        None => self.mismatch(
                            key.span,
                            "map keys have different types".into(),
                            "here".into(),
                            "every key of a map has the same type".into(),
                        ),
                    }
                    match self.unify(&value_ty, &v) {
                        Some(t) => value_ty = t,
                        None => self.mismatch(
                            value.span,
                            "map values have different types".into(),
                            "here".into(),
                            "every value of a map has the same type".into(),
                        ),
                    }
                }
                Type::Map(Box::new(key_ty), Box::new(value_ty))
            }
            ExprKind::Unary(UnaryOp::Not, operand) => {
                let ty = self.expr(operand, Some(&Type::Bool));
                self.expect_type(operand, &ty, &Type::Bool, "`not` takes a condition");
                Type::Bool
            }
            ExprKind::Unary(UnaryOp::Neg, operand) => {
                let ty = self.expr(operand, None);
                if !ty.is_numeric() {
                    let name = self.type_name(&ty);
                    self.mismatch(
                        operand.span,
                        format!("cannot negate {name}"),
                        format!("this is {name}"),
                        "`-` takes a number".into(),
                    );
                    return Type::Unknown;
                }
                ty
            }
            ExprKind::Binary(op, left, right) => self.binary(expr, *op, left, right),
            ExprKind::Where {
                source,
                binder,
                condition,
            } => {
                let source_ty = self.expr(source, None);
                let slot = self.new_slot();
                self.binders.insert(expr.id, slot);
                let (element, result) = match &source_ty {
                    Type::Rows(coll) => (Type::Row(*coll), source_ty.clone()),
                    Type::List(item) => (item.as_ref().clone(), source_ty.clone()),
                    Type::Unknown | Type::Null => (Type::Unknown, Type::Unknown),
                    other => {
                        let name = self.type_name(other);
                        self.mismatch(
                            source.span,
                            format!("`where` filters a collection or a list, found {name}"),
                            format!("this is {name}"),
                            "write `COLLECTION where CONDITION`".into(),
                        );
                        (Type::Unknown, Type::Unknown)
                    }
                };
                match (binder, &element) {
                    (Some(binder), _) => self.scopes.push(Scope::Local {
                        name: binder.name.clone(),
                        slot,
                        ty: element.clone(),
                    }),
                    (None, Type::Row(coll)) => {
                        self.scopes.push(Scope::Implicit { slot, coll: *coll })
                    }
                    (None, _) => self.scopes.push(Scope::Local {
                        name: "it".into(),
                        slot,
                        ty: element.clone(),
                    }),
                }
                let cond_ty = self.expr(condition, Some(&Type::Bool));
                self.expect_type(
                    condition,
                    &cond_ty,
                    &Type::Bool,
                    "`where` takes a condition",
                );
                self.scopes.pop();
                result
            }
            ExprKind::If(condition, then, otherwise) => {
                let cond_ty = self.expr(condition, Some(&Type::Bool));
                self.expect_type(condition, &cond_ty, &Type::Bool, "`if` takes a condition");
                let a = self.expr(then, expected);
                let b = self.expr(otherwise, expected);
                match self.unify(&a, &b) {
                    Some(ty) => ty,
                    None => {
                        let (an, bn) = (self.type_name(&a), self.type_name(&b));
                        self.mismatch(
                            otherwise.span,
                            format!("`if` branches have different types: {an} and {bn}"),
                            format!("this is {bn}"),
                            "both branches must give the same type".into(),
                        );
                        Type::Unknown
                    }
                }
            }
        }
    }

    fn name(&mut self, expr: &Expr, name: &str, expected: Option<&Type>) -> Type {
        for scope_idx in (0..self.scopes.len()).rev() {
            match &self.scopes[scope_idx] {
                Scope::Local {
                    name: local,
                    slot,
                    ty,
                } if local == name => {
                    let (slot, ty) = (*slot, ty.clone());
                    self.names.insert(expr.id, NameRes::Local(slot));
                    return ty;
                }
                Scope::Implicit { slot, coll } => {
                    let (slot, coll) = (*slot, *coll);
                    if let Some((member, ty)) = self.member(coll, name) {
                        self.names
                            .insert(expr.id, NameRes::Implicit { slot, member });
                        return ty;
                    }
                }
                Scope::Local { .. } => {}
            }
        }
        if let Some((_, ty, res)) = self.params.iter().find(|(param, _, _)| param == name) {
            let (ty, res) = (ty.clone(), *res);
            self.names.insert(expr.id, res);
            return ty;
        }
        if let Some(coll) = self.schema.data.collection_index(name) {
            self.names.insert(expr.id, NameRes::Collection(coll as u32));
            return Type::Rows(coll as u32);
        }
        // An enum variant: the expected type picks the enum when several have it.
        let expected_enum = match expected {
            Some(Type::Enum(idx)) => Some(*idx),
            Some(Type::List(item)) => match item.as_ref() {
                Type::Enum(idx) => Some(*idx),
                _ => None,
            },
            _ => None,
        };
        if let Some(enum_idx) = expected_enum
            && let Some(variant) = self.schema.data.enums[enum_idx as usize]
                .variants
                .iter()
                .position(|v| v == name)
        {
            self.names
                .insert(expr.id, NameRes::Variant(enum_idx, variant as u16));
            return Type::Enum(enum_idx);
        }
        let owners: Vec<(usize, usize)> = self
            .schema
            .data
            .enums
            .iter()
            .enumerate()
            .filter_map(|(idx, e)| e.variants.iter().position(|v| v == name).map(|v| (idx, v)))
            .collect();
        match owners.as_slice() {
            [(enum_idx, variant)] => {
                self.names
                    .insert(expr.id, NameRes::Variant(*enum_idx as u32, *variant as u16));
                Type::Enum(*enum_idx as u32)
            }
            [] => {
                let mut candidates: Vec<String> = Vec::new();
                for scope in &self.scopes {
                    match scope {
                        Scope::Local { name, .. } => candidates.push(name.clone()),
                        Scope::Implicit { coll, .. } => candidates
                            .extend(self.member_names(*coll).into_iter().map(String::from)),
                    }
                }
                candidates.extend(self.params.iter().map(|(n, _, _)| n.clone()));
                candidates.extend(self.schema.data.collections.iter().map(|c| c.name.clone()));
                if let Some(enum_idx) = expected_enum {
                    candidates.extend(
                        self.schema.data.enums[enum_idx as usize]
                            .variants
                            .iter()
                            .cloned(),
                    );
                }
                let help = match diag::did_you_mean(name, candidates.iter().map(String::as_str)) {
                    Some(candidate) => format!("did you mean `{candidate}`?"),
                    None => {
                        "bind it with `let`, declare a `param`, or check the spelling".to_string()
                    }
                };
                self.errors.push(CheckError::UnknownName {
                    src: self.src(expr.span),
                    span: expr.span.into(),
                    name: name.to_string(),
                    help,
                });
                Type::Unknown
            }
            several => {
                let enums = several
                    .iter()
                    .map(|(idx, _)| format!("`{}`", self.schema.data.enums[*idx].name))
                    .collect::<Vec<_>>()
                    .join(", ");
                self.errors.push(CheckError::AmbiguousVariant {
                    src: self.src(expr.span),
                    span: expr.span.into(),
                    name: name.to_string(),
                    enums,
                });
                Type::Unknown
            }
        }
    }

    fn field(&mut self, expr: &Expr, base_ty: &Type, field: &Ident) -> Type {
        match base_ty {
            Type::Row(coll) => match self.member(*coll, &field.name) {
                Some((member, ty)) => {
                    self.accesses.insert(expr.id, Access::Member(member));
                    ty
                }
                None => {
                    self.unknown_field(*coll, field);
                    Type::Unknown
                }
            },
            Type::Rows(coll) => match self.member(*coll, &field.name) {
                Some((
                    Member::Field {
                        coll,
                        field: field_idx,
                    },
                    ty,
                )) if !matches!(ty, Type::List(_)) => {
                    self.accesses.insert(
                        expr.id,
                        Access::Project {
                            coll,
                            field: field_idx,
                        },
                    );
                    Type::List(Box::new(ty))
                }
                Some(_) => {
                    self.mismatch(
                        field.span,
                        format!("cannot project `{}` of a set of records", field.name),
                        "a list or backref field".into(),
                        "project scalar fields only: `(xs where …).field`".into(),
                    );
                    Type::Unknown
                }
                None => {
                    self.unknown_field(*coll, field);
                    Type::Unknown
                }
            },
            Type::Unknown | Type::Null => Type::Unknown,
            other => {
                let name = self.type_name(other);
                self.mismatch(
                    field.span,
                    format!("`.{}` on {name}, which has no fields", field.name),
                    format!("the value is {name}"),
                    "fields are read from records: `x.field`".into(),
                );
                Type::Unknown
            }
        }
    }

    fn unknown_field(&mut self, coll: u32, field: &Ident) {
        let collection = self.schema.data.collections[coll as usize].name.clone();
        let help = diag::help_did_you_mean(&field.name, "field", self.member_names(coll));
        self.errors.push(CheckError::UnknownField {
            src: self.src(field.span),
            span: field.span.into(),
            collection,
            field: field.name.clone(),
            help,
        });
    }

    fn binary(&mut self, expr: &Expr, op: BinaryOp, left: &Expr, right: &Expr) -> Type {
        match op {
            BinaryOp::And | BinaryOp::Or => {
                for side in [left, right] {
                    let ty = self.expr(side, Some(&Type::Bool));
                    self.expect_type(
                        side,
                        &ty,
                        &Type::Bool,
                        &format!("`{}` combines conditions", op.as_str()),
                    );
                }
                Type::Bool
            }
            BinaryOp::Coalesce => {
                let a = self.expr(left, None);
                let b = self.expr(right, Some(&a));
                self.unify(&a, &b).unwrap_or_else(|| {
                    let (an, bn) = (self.type_name(&a), self.type_name(&b));
                    self.mismatch(
                        right.span,
                        format!("`??` sides have different types: {an} and {bn}"),
                        format!("this is {bn}"),
                        "the fallback must have the type of the value".into(),
                    );
                    Type::Unknown
                })
            }
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => {
                let a = self.expr(left, None);
                let b = self.expr(right, None);
                if op == BinaryOp::Add && (a == Type::String || b == Type::String) {
                    return Type::String;
                }
                for (side, ty) in [(left, &a), (right, &b)] {
                    if !ty.is_numeric() {
                        let name = self.type_name(ty);
                        self.mismatch(
                            side.span,
                            format!("`{}` needs numbers, found {name}", op.as_str()),
                            format!("this is {name}"),
                            "arithmetic works on `int` and `number`".into(),
                        );
                        return Type::Unknown;
                    }
                }
                match (op, &a, &b) {
                    (BinaryOp::Div, _, _) => Type::Number,
                    (_, Type::Int, Type::Int) => Type::Int,
                    _ => Type::Number,
                }
            }
            BinaryOp::Eq
            | BinaryOp::Ne
            | BinaryOp::Lt
            | BinaryOp::Le
            | BinaryOp::Gt
            | BinaryOp::Ge => {
                // Check the side that is not a bare name first, so a bare
                // variant on the other side knows its enum.
                let (a, b) = if matches!(left.kind, ExprKind::Name(_))
                    && !matches!(right.kind, ExprKind::Name(_))
                {
                    let b = self.expr(right, None);
                    let a = self.expr(left, Some(&b));
                    (a, b)
                } else {
                    let a = self.expr(left, None);
                    let b = self.expr(right, Some(&a));
                    (a, b)
                };
                let comparable = self.fits(&a, &b) || self.fits(&b, &a);
                let ordered = matches!(op, BinaryOp::Eq | BinaryOp::Ne)
                    || matches!(
                        (&a, &b),
                        (
                            Type::Int
                                | Type::Number
                                | Type::String
                                | Type::Date
                                | Type::Enum(_)
                                | Type::Null
                                | Type::Unknown,
                            _
                        )
                    );
                if !comparable || !ordered {
                    let (an, bn) = (self.type_name(&a), self.type_name(&b));
                    let help = if matches!(
                        (&a, &b),
                        (Type::String, Type::Int | Type::Number)
                            | (Type::Int | Type::Number, Type::String)
                    ) {
                        "strings compare with strings and numbers with numbers: quote the number (`\"20\"`) or compare a numeric field".to_string()
                    } else {
                        "compare values of the same type".to_string()
                    };
                    self.mismatch(
                        expr.span,
                        format!("cannot compare {an} with {bn} using `{}`", op.as_str()),
                        format!("{an} {} {bn}", op.as_str()),
                        help,
                    );
                }
                Type::Bool
            }
            BinaryOp::In | BinaryOp::NotIn => {
                // A list literal on the right takes its element type from the
                // left (`c.role in [agri_tech, work_team]` picks the enum).
                let (a, b) = if matches!(right.kind, ExprKind::List(_)) {
                    let a = self.expr(left, None);
                    let b = self.expr(right, Some(&Type::List(Box::new(a.clone()))));
                    (a, b)
                } else {
                    let b = self.expr(right, None);
                    let element_expected = match &b {
                        Type::List(item) => Some(item.as_ref().clone()),
                        Type::Rows(coll) => Some(Type::Row(*coll)),
                        Type::Map(key, _) => Some(key.as_ref().clone()),
                        _ => None,
                    };
                    (self.expr(left, element_expected.as_ref()), b)
                };
                let element_expected = match &b {
                    Type::List(item) => Some(item.as_ref().clone()),
                    Type::Rows(coll) => Some(Type::Row(*coll)),
                    Type::Map(key, _) => Some(key.as_ref().clone()),
                    _ => None,
                };
                let ok = match (&b, &element_expected) {
                    (Type::String, _) => matches!(a, Type::String | Type::Null | Type::Unknown),
                    (Type::Unknown, _) => true,
                    (_, Some(element)) => self.fits(&a, element) || self.fits(element, &a),
                    _ => false,
                };
                if !ok {
                    let (an, bn) = (self.type_name(&a), self.type_name(&b));
                    self.mismatch(expr.span, format!("cannot test whether {an} is in {bn}"), format!("{an} in {bn}"), "`in` tests membership in a list, a set of records, a map's keys, or a substring".into());
                }
                Type::Bool
            }
        }
    }

    fn call(&mut self, expr: &Expr, name: &Ident, args: &[Expr]) -> Type {
        if let Some((_, function)) = self
            .function_index
            .iter()
            .find(|(n, _)| *n == name.name)
            .cloned()
        {
            self.fn_calls.insert(expr.id, function);
            let (param_types, ret) = self.function_sigs[function as usize].clone();
            if args.len() != param_types.len() {
                let n = param_types.len();
                self.errors.push(CheckError::WrongArity {
                    src: self.src(expr.span),
                    span: expr.span.into(),
                    name: name.name.clone(),
                    expected: format!("{n} argument{}", if n == 1 { "" } else { "s" }),
                    found: args.len(),
                });
            }
            for (arg, param_ty) in args
                .iter()
                .zip(param_types.iter().chain(std::iter::repeat(&Type::Unknown)))
            {
                let found = self.expr(arg, Some(param_ty));
                self.expect_type(
                    arg,
                    &found,
                    param_ty,
                    &format!("`{}` takes {} here", name.name, self.type_name(param_ty)),
                );
            }
            return ret;
        }
        let Some((_, builtin, min, max)) = BUILTINS.iter().find(|(n, ..)| *n == name.name).copied()
        else {
            for arg in args {
                self.expr(arg, None);
            }
            let candidates: Vec<&str> = BUILTINS
                .iter()
                .map(|(n, ..)| *n)
                .chain(self.function_index.iter().map(|(n, _)| n.as_str()))
                .collect();
            let help = diag::help_did_you_mean(&name.name, "function", candidates);
            self.errors.push(CheckError::UnknownFunction {
                src: self.src(name.span),
                span: name.span.into(),
                name: name.name.clone(),
                help,
            });
            return Type::Unknown;
        };
        self.calls.insert(expr.id, builtin);
        if args.len() < min || args.len() > max {
            let expected = if min == max {
                format!("{min} argument{}", if min == 1 { "" } else { "s" })
            } else {
                format!("{min} to {max} arguments")
            };
            self.errors.push(CheckError::WrongArity {
                src: self.src(expr.span),
                span: expr.span.into(),
                name: name.name.clone(),
                expected,
                found: args.len(),
            });
            for arg in args {
                self.expr(arg, None);
            }
            return Type::Unknown;
        }
        let types: Vec<Type> = args.iter().map(|arg| self.expr(arg, None)).collect();
        let first = &types[0];
        let bad = |checker: &mut Self, what: &str| {
            let found = checker.type_name(first);
            checker.mismatch(
                args[0].span,
                format!("`{}` takes {what}, found {found}", name.name),
                format!("this is {found}"),
                format!("pass {what}"),
            );
            Type::Unknown
        };
        match builtin {
            Builtin::Count => match first {
                Type::Rows(_) | Type::List(_) | Type::Unknown | Type::Null => Type::Int,
                _ => bad(self, "a collection or a list"),
            },
            Builtin::Sum | Builtin::Min | Builtin::Max | Builtin::Avg => match first {
                Type::List(item) if item.is_numeric() => match (builtin, item.as_ref()) {
                    (Builtin::Avg, _) => Type::Number,
                    (_, Type::Int) => Type::Int,
                    _ => Type::Number,
                },
                Type::List(item)
                    if matches!(builtin, Builtin::Min | Builtin::Max)
                        && matches!(item.as_ref(), Type::String | Type::Date) =>
                {
                    item.as_ref().clone()
                }
                Type::Unknown | Type::Null => Type::Unknown,
                _ => bad(
                    self,
                    "a list of numbers (project a field: `(xs where …).field`)",
                ),
            },
            Builtin::Any => match first {
                Type::Rows(_) | Type::Unknown | Type::Null => Type::Bool,
                Type::List(item) if item.is_bool() => Type::Bool,
                _ => bad(self, "a collection or a list of booleans"),
            },
            Builtin::All => match first {
                Type::List(item) if item.is_bool() => Type::Bool,
                Type::Unknown | Type::Null => Type::Bool,
                _ => bad(self, "a list of booleans"),
            },
            Builtin::Distinct => match first {
                Type::List(_) | Type::Rows(_) | Type::Unknown | Type::Null => first.clone(),
                _ => bad(self, "a list"),
            },
            Builtin::Join => match first {
                Type::List(_) | Type::Rows(_) | Type::Unknown | Type::Null => {
                    if let Some(sep) = types.get(1) {
                        self.expect_type(&args[1], sep, &Type::String, "the separator is a string");
                    }
                    Type::String
                }
                _ => bad(self, "a list"),
            },
            Builtin::Len => match first {
                Type::String | Type::List(_) | Type::Rows(_) | Type::Unknown | Type::Null => {
                    Type::Int
                }
                _ => bad(self, "a string or a list"),
            },
            Builtin::Percent | Builtin::Abs => {
                if !first.is_numeric() {
                    return bad(self, "a number");
                }
                if builtin == Builtin::Percent {
                    Type::String
                } else {
                    first.clone()
                }
            }
            Builtin::Round => {
                if !first.is_numeric() {
                    return bad(self, "a number");
                }
                if let Some(digits) = types.get(1) {
                    self.expect_type(
                        &args[1],
                        digits,
                        &Type::Int,
                        "the number of digits is an int",
                    );
                }
                Type::Number
            }
            Builtin::StartsWithAny => {
                self.expect_type(
                    &args[0],
                    first,
                    &Type::String,
                    "`starts_with_any` tests a string",
                );
                let list = Type::List(Box::new(Type::String));
                self.expect_type(
                    &args[1],
                    &types[1],
                    &list,
                    "`starts_with_any` takes a list of prefixes",
                );
                Type::Bool
            }
            Builtin::StartsWith | Builtin::EndsWith | Builtin::Contains => {
                for (arg, ty) in args.iter().zip(&types) {
                    self.expect_type(arg, ty, &Type::String, "string functions take strings");
                }
                Type::Bool
            }
            Builtin::Date => {
                self.expect_type(
                    &args[0],
                    first,
                    &Type::String,
                    "`date` reads a \"YYYY-MM-DD\" string",
                );
                if let ExprKind::Str(text) = &args[0].kind
                    && crate::data::parse_date(text).is_none()
                {
                    self.mismatch(
                        args[0].span,
                        format!("`{text}` is not a valid date"),
                        "not YYYY-MM-DD".into(),
                        "write dates as \"YYYY-MM-DD\"".into(),
                    );
                }
                Type::Date
            }
            Builtin::Year => {
                self.expect_type(&args[0], first, &Type::Date, "`year` takes a date");
                Type::Int
            }
        }
    }
}

fn scalar_type(scalar: ScalarType) -> Type {
    match scalar {
        ScalarType::Int => Type::Int,
        ScalarType::Number => Type::Number,
        ScalarType::Bool => Type::Bool,
        ScalarType::String => Type::String,
        ScalarType::Date => Type::Date,
        ScalarType::Enum(idx) => Type::Enum(idx),
        ScalarType::Ref(coll) => Type::Row(coll),
    }
}

/// Calls `visit` on `expr` and every expression inside it.
pub fn walk(expr: &Expr, visit: &mut dyn FnMut(&Expr)) {
    visit(expr);
    match &expr.kind {
        ExprKind::Template(parts) => {
            for part in parts {
                if let TemplatePart::Expr(inner) = part {
                    walk(inner, visit);
                }
            }
        }
        ExprKind::Field(base, _) => walk(base, visit),
        ExprKind::Index(base, index) => {
            walk(base, visit);
            walk(index, visit);
        }
        ExprKind::Call(_, args) => args.iter().for_each(|arg| walk(arg, visit)),
        ExprKind::List(elems) => {
            for elem in elems {
                walk(&elem.value, visit);
                if let Some(condition) = &elem.condition {
                    walk(condition, visit);
                }
            }
        }
        ExprKind::Map(entries) => {
            for (key, value) in entries {
                walk(key, visit);
                walk(value, visit);
            }
        }
        ExprKind::Unary(_, operand) => walk(operand, visit),
        ExprKind::Binary(_, left, right) => {
            walk(left, visit);
            walk(right, visit);
        }
        ExprKind::Where {
            source, condition, ..
        } => {
            walk(source, visit);
            walk(condition, visit);
        }
        ExprKind::If(condition, then, otherwise) => {
            walk(condition, visit);
            walk(then, visit);
            walk(otherwise, visit);
        }
        ExprKind::Int(_)
        | ExprKind::Number(_)
        | ExprKind::Str(_)
        | ExprKind::Bool(_)
        | ExprKind::Null
        | ExprKind::Name(_) => {}
    }
}
