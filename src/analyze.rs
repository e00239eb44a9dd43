//! The static checks of a set of policy files, every stage reporting all it
//! can: what `bangfu lint` runs alone and `bangfu check` runs before data.
//!
//! Takes policy files and `--param` overrides; gives an [`Analysis`]: the
//! [`Plan`] when there is no error, every error, and every warning.
//!
//! How far it goes after an error:
//!
//! - Syntax: every file is parsed, and each file reports all its syntax
//!   errors ([`crate::syntax::recover`]). The files that parsed go on to the
//!   later stages, but their diagnostics that a broken file could have caused
//!   (an unknown name, collection, type, function or policy, a missing
//!   schema) are left out: the definition may be in the file that did not
//!   parse. Everything else they report is shown.
//! - Resolve and check each report every error they find; a stage runs only
//!   when the one before it succeeded, since it needs that stage's output.
//! - The lint checks ([`crate::check::lint`]) run when `check` succeeded.
//!
//! **Invariant:** nothing here prints or reads files; the CLI does.

use miette::Diagnostic;

use crate::{Error, ParamArg, Plan, PolicyFile, ast, check, compile, resolve, source};

/// What the static checks found.
#[derive(Debug, Default)]
pub struct Analysis {
    /// The compiled plan, when there is no error.
    pub plan: Option<Plan>,
    /// Errors, in stage order then file order.
    pub errors: Vec<Error>,
    /// Warnings.
    pub warnings: Vec<Error>,
    /// Notes for the user (e.g. that the bundled schema was used).
    pub notes: Vec<String>,
}

/// How [`analyze`] treats its input.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// When no given file declares a `schema`, check against the bundled
    /// schema (the bundled files that declare schemas and no policies).
    pub bundled_schema_fallback: bool,
}

/// Codes a file that failed to parse may have caused in the other files.
/// (A field cannot be: a collection is declared once, so an unknown field
/// of a known collection is the author's mistake wherever the rest is.)
const KNOCK_ON_CODES: &[&str] = &["E0202", "E0203", "E0302", "E0303", "E0305", "E0307"];

/// Runs the static checks.
pub fn analyze(files: &[PolicyFile], params: &[ParamArg], options: Options) -> Analysis {
    let mut analysis = Analysis::default();
    let mut sources = source::SourceMap::new();
    let mut lowerer = ast::Lowerer::new();
    let mut asts = Vec::new();
    let mut broken_files = false;
    for file in files {
        let text = source::SourceText::from_string(file.name.as_str(), file.text.as_str());
        let id = sources.add(text.clone());
        match lowerer.lower_file(id, &text) {
            Ok(ast) => asts.push(ast),
            Err(error) => {
                broken_files = true;
                let all = match error {
                    crate::syntax::SyntaxError::Grammar { .. } => {
                        crate::syntax::recover::syntax_errors(&text)
                    }
                    other => vec![other],
                };
                analysis.errors.extend(all.into_iter().map(Error::from));
            }
        }
    }
    if options.bundled_schema_fallback
        && !broken_files
        && asts.iter().all(|file| file.schemas.is_empty())
    {
        for bundled in crate::bundled_policies() {
            let text = source::SourceText::from_string(bundled.name.as_str(), bundled.text);
            let id = sources.add(text.clone());
            if let Ok(ast) = lowerer.lower_file(id, &text)
                && !ast.schemas.is_empty()
                && ast.policies.is_empty()
            {
                analysis.notes.push(format!(
                    "no schema among the given files: checked against the bundled schema `{}`",
                    bundled.name
                ));
                asts.push(ast);
            }
        }
    }
    let mut overrides = Vec::new();
    for param in params {
        let whole = source::SourceText::from_string("--param", param.arg.as_str());
        let whole_id = sources.add(whole);
        let value_text = source::SourceText::from_string(
            format!(
                "--param {}",
                &param.arg[..param.value.start.saturating_sub(1)]
            ),
            &param.arg[param.value.clone()],
        );
        let value_id = sources.add(value_text.clone());
        let ident = |range: &std::ops::Range<usize>| ast::Ident {
            name: param.arg[range.clone()].to_string(),
            span: source::Span::new(whole_id, range.start, range.end),
        };
        match lowerer.lower_expr(value_id, &value_text) {
            Ok(value) => overrides.push(resolve::ParamOverride {
                policy: ident(&param.policy),
                param: ident(&param.param),
                value,
            }),
            Err(error) => analysis.errors.push(error.into()),
        }
    }
    let keep = |error: &Error| {
        !broken_files
            || error
                .code()
                .is_none_or(|code| !KNOCK_ON_CODES.contains(&code.to_string().as_str()))
    };
    let resolved = match resolve::resolve(asts, overrides, &sources) {
        Ok(resolved) => resolved,
        Err(errors) => {
            analysis
                .errors
                .extend(errors.into_iter().map(Error::from).filter(keep));
            return analysis;
        }
    };
    let checked = match check::check(&resolved, &sources) {
        Ok(checked) => checked,
        Err(errors) => {
            analysis
                .errors
                .extend(errors.into_iter().map(Error::from).filter(keep));
            return analysis;
        }
    };
    for found in check::lint::lint(&resolved, &checked, &sources) {
        if found.is_warning() {
            analysis.warnings.push(found.into());
        } else {
            analysis.errors.push(found.into());
        }
    }
    match compile::compile(&checked, &sources) {
        Ok(plan) if analysis.errors.is_empty() => analysis.plan = Some(plan),
        Ok(_) => {}
        Err(errors) => analysis.errors.extend(errors.into_iter().map(Error::from)),
    }
    analysis
}
