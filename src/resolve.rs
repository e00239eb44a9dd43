//! Stage `resolve`: the files of a program put together.
//!
//! Takes the ASTs of every policy file and the `--param` overrides; gives a
//! [`ResolvedProgram`]: one schema (collections and enums from every `schema`
//! block), the policies by name with their parents known, and each override
//! attached to the param it names. Duplicate definitions, unknown policies
//! and params, and `extends` cycles are reported here, all of them at once.
//!
//! **Invariant:** `resolve` looks at names only; it knows no types and no data.

use miette::{Diagnostic, SourceSpan};
use thiserror::Error;

use crate::ast::{CollectionDecl, EnumDecl, Expr, File, Ident, Policy};
use crate::diag;
use crate::source::{SourceMap, SourceText, Span};

/// Where a param's value came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamOrigin {
    /// The default in the policy.
    Default,
    /// A `--params` file.
    File,
    /// `--param` on the command line.
    Cli,
}

impl ParamOrigin {
    /// `default`, `file` or `cli`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ParamOrigin::Default => "default",
            ParamOrigin::File => "file",
            ParamOrigin::Cli => "cli",
        }
    }
}

/// A `--param POLICY.NAME=VALUE` override, parsed.
#[derive(Clone, Debug)]
pub struct ParamOverride {
    /// Policy name, as written.
    pub policy: Ident,
    /// Param name, as written.
    pub param: Ident,
    /// The value, parsed as an expression.
    pub value: Expr,
    /// Where the override came from.
    pub origin: ParamOrigin,
}

/// A `script` block with the source id of its rhai file.
#[derive(Clone, Debug)]
pub struct ResolvedScript {
    /// The declaration.
    pub decl: crate::ast::ScriptDecl,
    /// The rhai file's text in the source map.
    pub source: crate::source::SourceId,
}

/// The program after resolution.
#[derive(Clone, Debug, Default)]
pub struct ResolvedProgram {
    /// Collections of every schema block, in order.
    pub collections: Vec<CollectionDecl>,
    /// Named enums of every schema block.
    pub enums: Vec<EnumDecl>,
    /// Policies in file order.
    pub policies: Vec<ResolvedPolicy>,
    /// Functions written in the language.
    pub functions: Vec<crate::ast::FnDecl>,
    /// rhai scripts and the functions they provide.
    pub scripts: Vec<ResolvedScript>,
}

/// A policy with its resolved parent and overrides.
#[derive(Clone, Debug)]
pub struct ResolvedPolicy {
    /// The declaration.
    pub decl: Policy,
    /// Index of the parent in `ResolvedProgram::policies`.
    pub parent: Option<usize>,
    /// Overrides, by param index.
    pub overrides: Vec<(usize, Expr, ParamOrigin)>,
}

/// Every problem the resolve stage can report.
#[derive(Debug, Error, Diagnostic)]
pub enum ResolveError {
    /// A name defined twice.
    #[error("{what} `{name}` is defined twice")]
    #[diagnostic(code(E0201), help("rename or remove one of the two definitions"))]
    DuplicateDefinition {
        /// The file.
        #[source_code]
        src: SourceText,
        /// The second definition.
        #[label("defined again here")]
        span: SourceSpan,
        /// What kind of thing.
        what: &'static str,
        /// Its name.
        name: String,
    },
    /// No schema at all.
    #[error("the policies declare no schema")]
    #[diagnostic(
        code(E0202),
        help(
            "pass the file with the `schema` block too, e.g. `-p policies/ledger.bangfu`, or add a `schema {{ collection … }}` block"
        )
    )]
    MissingSchema,
    /// An unknown policy in an override or `extends`.
    #[error("unknown policy `{name}`")]
    #[diagnostic(code(E0203), help("{help}"))]
    UnknownPolicy {
        /// Where it is named.
        #[source_code]
        src: SourceText,
        /// The name.
        #[label("no policy has this name")]
        span: SourceSpan,
        /// The name.
        name: String,
        /// Did-you-mean.
        help: String,
    },
    /// An unknown param in an override.
    #[error("policy `{policy}` has no param `{name}`")]
    #[diagnostic(code(E0204), help("{help}"))]
    UnknownParam {
        /// Where it is named.
        #[source_code]
        src: SourceText,
        /// The name.
        #[label("not a param of `{policy}`")]
        span: SourceSpan,
        /// The policy.
        policy: String,
        /// The name.
        name: String,
        /// Did-you-mean.
        help: String,
    },
    /// An import that names no file.
    #[error("cannot import `{path}`: {reason}")]
    #[diagnostic(code(E0206), help("{help}"))]
    ImportNotFound {
        /// The importing file.
        #[source_code]
        src: SourceText,
        /// The path.
        #[label("imported here")]
        span: SourceSpan,
        /// The path.
        path: String,
        /// Why.
        reason: String,
        /// How to fix it.
        help: String,
    },
    /// Files that import each other.
    #[error("import cycle: {chain}")]
    #[diagnostic(
        code(E0207),
        help("remove one of the imports; a file that both need can be imported by each")
    )]
    ImportCycle {
        /// The file.
        #[source_code]
        src: SourceText,
        /// The import closing the cycle.
        #[label("this import closes the cycle")]
        span: SourceSpan,
        /// The cycle.
        chain: String,
    },
    /// A script file that cannot be read.
    #[error("cannot read script `{path}`: {reason}")]
    #[diagnostic(
        code(E0208),
        help("the path is relative to the policy file that declares the script")
    )]
    ScriptNotFound {
        /// The declaring file.
        #[source_code]
        src: SourceText,
        /// The path.
        #[label("declared here")]
        span: SourceSpan,
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
    /// An `extends` cycle.
    #[error("policy `{name}` extends itself through `{chain}`")]
    #[diagnostic(code(E0209), help("remove one `extends` so the chain ends"))]
    ExtendsCycle {
        /// The file.
        #[source_code]
        src: SourceText,
        /// The `extends` clause.
        #[label("this `extends` closes the cycle")]
        span: SourceSpan,
        /// The policy.
        name: String,
        /// The cycle.
        chain: String,
    },
}

fn error_src(sources: &SourceMap, span: Span) -> SourceText {
    sources.get(span.src).clone()
}

/// Puts the files of a program together.
pub fn resolve(
    files: Vec<File>,
    scripts: Vec<ResolvedScript>,
    overrides: Vec<ParamOverride>,
    sources: &SourceMap,
) -> Result<ResolvedProgram, Vec<ResolveError>> {
    let mut errors = Vec::new();
    let mut program = ResolvedProgram::default();
    let mut function_names: Vec<String> = Vec::new();
    let function_duplicate = |ident: &Ident| ResolveError::DuplicateDefinition {
        src: error_src(sources, ident.span),
        span: ident.span.into(),
        what: "function",
        name: ident.name.clone(),
    };
    for file in &files {
        for function in &file.functions {
            if function_names.contains(&function.name.name) {
                errors.push(function_duplicate(&function.name));
            } else {
                function_names.push(function.name.name.clone());
                program.functions.push(function.clone());
            }
        }
    }
    for script in scripts {
        for function in &script.decl.functions {
            if function_names.contains(&function.name.name) {
                errors.push(function_duplicate(&function.name));
            } else {
                function_names.push(function.name.name.clone());
            }
        }
        program.scripts.push(script);
    }
    let mut policies: Vec<Policy> = Vec::new();
    let duplicate = |what: &'static str, ident: &Ident| ResolveError::DuplicateDefinition {
        src: error_src(sources, ident.span),
        span: ident.span.into(),
        what,
        name: ident.name.clone(),
    };
    let mut any_schema = false;
    for file in files {
        for schema in file.schemas {
            any_schema = true;
            for collection in schema.collections {
                if program
                    .collections
                    .iter()
                    .any(|c| c.name.name == collection.name.name)
                {
                    errors.push(duplicate("collection", &collection.name));
                } else {
                    let mut seen: Vec<&str> = Vec::new();
                    for field in &collection.fields {
                        if seen.contains(&field.name.name.as_str()) {
                            errors.push(duplicate("field", &field.name));
                        }
                        seen.push(&field.name.name);
                    }
                    program.collections.push(collection);
                }
            }
            for enum_decl in schema.enums {
                if program
                    .enums
                    .iter()
                    .any(|e| e.name.name == enum_decl.name.name)
                {
                    errors.push(duplicate("enum", &enum_decl.name));
                } else {
                    program.enums.push(enum_decl);
                }
            }
        }
        for policy in file.policies {
            if policies.iter().any(|p| p.name.name == policy.name.name) {
                errors.push(duplicate("policy", &policy.name));
                continue;
            }
            let mut rule_names: Vec<&str> = Vec::new();
            for rule in &policy.rules {
                if rule_names.contains(&rule.name.name.as_str()) {
                    errors.push(duplicate("rule", &rule.name));
                }
                rule_names.push(&rule.name.name);
            }
            let mut param_names: Vec<&str> = Vec::new();
            for param in &policy.params {
                if param_names.contains(&param.name.name.as_str()) {
                    errors.push(duplicate("param", &param.name));
                }
                param_names.push(&param.name.name);
            }
            policies.push(policy);
        }
    }
    if !any_schema {
        errors.push(ResolveError::MissingSchema);
    }
    let policy_names: Vec<String> = policies.iter().map(|p| p.name.name.clone()).collect();
    let unknown_policy = |ident: &Ident| ResolveError::UnknownPolicy {
        src: error_src(sources, ident.span),
        span: ident.span.into(),
        name: ident.name.clone(),
        help: diag::help_did_you_mean(
            &ident.name,
            "policy",
            policy_names.iter().map(String::as_str),
        ),
    };

    // Parents: resolve names and reject cycles.
    let parent_of: Vec<Option<usize>> = policies
        .iter()
        .map(|policy| {
            policy.extends.as_ref().and_then(|parent| {
                let found = policy_names.iter().position(|name| *name == parent.name);
                if found.is_none() {
                    errors.push(unknown_policy(parent));
                }
                found
            })
        })
        .collect();
    for (idx, policy) in policies.iter().enumerate() {
        let mut chain = vec![policy.name.name.clone()];
        let mut current = parent_of[idx];
        let mut steps = 0;
        while let Some(parent) = current {
            chain.push(policies[parent].name.name.clone());
            if parent == idx {
                if let Some(extends) = &policy.extends {
                    errors.push(ResolveError::ExtendsCycle {
                        src: error_src(sources, extends.span),
                        span: extends.span.into(),
                        name: policy.name.name.clone(),
                        chain: chain.join(" → "),
                    });
                }
                break;
            }
            steps += 1;
            if steps > policies.len() {
                break;
            }
            current = parent_of[parent];
        }
    }

    let mut resolved: Vec<ResolvedPolicy> = policies
        .into_iter()
        .zip(parent_of)
        .map(|(decl, parent)| ResolvedPolicy {
            decl,
            parent,
            overrides: Vec::new(),
        })
        .collect();
    for param_override in overrides {
        let Some(policy_idx) = policy_names
            .iter()
            .position(|name| *name == param_override.policy.name)
        else {
            errors.push(unknown_policy(&param_override.policy));
            continue;
        };
        // A param inherited through `extends` belongs to the ancestor that
        // declares it; say which, rather than only that it is unknown here.
        let declared_by = {
            let mut current = resolved[policy_idx].parent;
            let mut found = None;
            for _ in 0..resolved.len() {
                let Some(idx) = current else { break };
                if resolved[idx]
                    .decl
                    .params
                    .iter()
                    .any(|p| p.name.name == param_override.param.name)
                {
                    found = Some(resolved[idx].decl.name.name.clone());
                    break;
                }
                current = resolved[idx].parent;
            }
            found
        };
        let policy = &mut resolved[policy_idx];
        let Some(param_idx) = policy
            .decl
            .params
            .iter()
            .position(|p| p.name.name == param_override.param.name)
        else {
            let help = match declared_by {
                Some(ancestor) => format!(
                    "`{}` is declared by `{ancestor}`, which `{}` extends: write `{ancestor}.{}` (the value applies to both policies)",
                    param_override.param.name, policy.decl.name.name, param_override.param.name
                ),
                None => diag::help_did_you_mean(
                    &param_override.param.name,
                    "param",
                    policy.decl.params.iter().map(|p| p.name.name.as_str()),
                ),
            };
            errors.push(ResolveError::UnknownParam {
                src: error_src(sources, param_override.param.span),
                span: param_override.param.span.into(),
                policy: policy.decl.name.name.clone(),
                name: param_override.param.name.clone(),
                help,
            });
            continue;
        };
        // A later override wins: files are applied before the command line.
        policy.overrides.retain(|(idx, _, _)| *idx != param_idx);
        policy
            .overrides
            .push((param_idx, param_override.value, param_override.origin));
    }
    program.policies = resolved;
    if errors.is_empty() {
        Ok(program)
    } else {
        Err(errors)
    }
}
