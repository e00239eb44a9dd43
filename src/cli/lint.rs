//! `bangfu lint`.

use std::path::PathBuf;

use clap::Args;

use super::{EXIT_ERROR, EXIT_OK, EXIT_VIOLATIONS, read_policies, report_errors, report_warnings};
use crate::analyze::{Options, analyze};

/// Arguments of `bangfu lint`.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// Policy files, or directories searched for `*.bangfu`; default: the
    /// bundled policies. When none of them declares a `schema`, the bundled
    /// schema is used.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Exit 1 when there are warnings (and no error).
    #[arg(long)]
    pub deny_warnings: bool,
}

/// Runs `bangfu lint`; returns the exit code: 0 when there is no error (and,
/// with `--deny-warnings`, no warning), 1 when there are only warnings and
/// `--deny-warnings` is given, 2 when there are errors.
pub fn run(args: &LintArgs) -> u8 {
    let files = match read_policies(&args.paths) {
        Ok(files) => files,
        Err(error) => {
            report_errors(vec![error]);
            return EXIT_ERROR;
        }
    };
    let options = Options {
        bundled_schema_fallback: true,
    };
    let analysis = analyze(&files, &[], options);
    for note in &analysis.notes {
        eprintln!("note: {note}");
    }
    let n_warnings = analysis.warnings.len();
    let n_errors = analysis.errors.len();
    report_warnings(analysis.warnings);
    report_errors(analysis.errors);
    if n_errors > 0 {
        return EXIT_ERROR;
    }
    eprintln!(
        "lint: {} file{} ok, {n_warnings} warning{}",
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        if n_warnings == 1 { "" } else { "s" }
    );
    if args.deny_warnings && n_warnings > 0 {
        EXIT_VIOLATIONS
    } else {
        EXIT_OK
    }
}
