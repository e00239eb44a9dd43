//! The static checks of a set of policy files, every stage reporting all it
//! can: what `bangfu lint` runs alone and `bangfu check` runs before data.
//!
//! Takes policy files and `--param` overrides; gives an [`Analysis`]: the
//! compiled [`Frontend`] when there is no error, every error, and every
//! warning. The work is done by [`crate::program`], which follows imports;
//! this module says how far it goes after an error:
//!
//! - Syntax: every file is parsed, and each file reports all its syntax
//!   errors ([`crate::syntax::recover`]). The files that parsed go on to the
//!   later stages, but their diagnostics that a broken file could have caused
//!   (an unknown name, collection, type, function or policy, a missing
//!   schema) are left out: the definition may be in the file that did not
//!   parse. Everything else they report is shown.
//! - Imports, scripts and `--param` values that cannot be read stop the run
//!   after the syntax stage, with all such errors.
//! - Resolve and check each report every error they find; a stage runs only
//!   when the one before it succeeded, since it needs that stage's output.
//! - The lint checks ([`crate::check::lint`]) run when `check` succeeded.
//!
//! **Invariant:** nothing here prints; the CLI does.

use miette::Diagnostic;

use crate::program::{Frontend, front_end};
use crate::source::SourceText;
use crate::syntax::SyntaxError;
use crate::{Error, ParamArg, PolicyFile};

/// What the static checks found.
#[derive(Debug, Default)]
pub struct Analysis {
    /// The compiled program, when there is no error.
    pub frontend: Option<Frontend>,
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
    /// When no file (given or imported) declares a `schema`, check against
    /// the bundled schema (the bundled files that declare schemas and no
    /// policies).
    pub bundled_schema_fallback: bool,
}

/// Codes a file that failed to parse may have caused in the other files.
/// (A field cannot be: a collection is declared once, so an unknown field
/// of a known collection is the author's mistake wherever the rest is.)
const KNOCK_ON_CODES: &[&str] = &["E0202", "E0203", "E0302", "E0303", "E0305", "E0307"];

/// Runs the static checks.
pub fn analyze(files: &[PolicyFile], params: &[ParamArg], options: Options) -> Analysis {
    let mut analysis = Analysis::default();
    analysis.frontend = front_end(files, params, options, &mut analysis);
    if !analysis.errors.is_empty() {
        analysis.frontend = None;
    }
    analysis
}

/// Whether a diagnostic may be caused by a definition in a file that did
/// not parse.
pub(crate) fn is_knock_on(error: &Error) -> bool {
    error
        .code()
        .is_some_and(|code| KNOCK_ON_CODES.contains(&code.to_string().as_str()))
}

/// Every syntax error of a file whose lowering failed with `first`.
pub(crate) fn all_syntax_errors(text: &SourceText, first: SyntaxError) -> Vec<Error> {
    let all = match first {
        SyntaxError::Grammar { .. } => crate::syntax::recover::syntax_errors(text),
        other => vec![other],
    };
    all.into_iter().map(Error::from).collect()
}
