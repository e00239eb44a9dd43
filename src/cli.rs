//! Stage `cli`: arguments, files, terminal and exit codes.
//!
//! Takes argv; runs a subcommand; gives an [`ExitCode`]: 0 when no
//! violation of severity error was found, 1 when some were, 2 on a usage,
//! policy or data error.
//!
//! **Invariant:** only `cli` knows argv, the terminal and exit codes; the
//! library below it never prints.

pub mod check;
pub mod explain;
pub mod fmt;
pub mod lint;
pub mod params_file;
pub mod repl;
pub mod rules;
pub mod test;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use miette::{Diagnostic, SourceSpan};
use thiserror::Error;

use crate::PolicyFile;
use crate::render::Format;
use crate::source::SourceText;

/// Exit code: no violation at error severity.
pub const EXIT_OK: u8 = 0;
/// Exit code: violations at error severity.
pub const EXIT_VIOLATIONS: u8 = 1;
/// Exit code: a usage, policy or data error.
pub const EXIT_ERROR: u8 = 2;

/// bangfu: check structured data against declarative policies.
#[derive(Debug, Parser)]
#[command(name = "bangfu", version, about, long_about = None)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a dataset against policies and report violations.
    ///
    /// Exit status: 0 when no violation of severity error is found, 1 when
    /// some are, 2 on a usage, policy or data error.
    Check(check::CheckArgs),
    /// Lay policy files out the canonical way, keeping every comment.
    ///
    /// Exit status: 0 when every file is formatted, 1 with `--check` when
    /// some file is not (a diff is printed), 2 when a file does not parse.
    Fmt(fmt::FmtArgs),
    /// Run the static checks of policy files alone, without data.
    ///
    /// Exit status: 0 without errors (warnings are printed), 1 with
    /// `--deny-warnings` and warnings, 2 with errors.
    Lint(lint::LintArgs),
    /// Explain one violation: the values that decided it, as a tree that
    /// follows the condition, and the smallest change that would fix it.
    ///
    /// Exit status: 1 when the entity violates the rule, 0 when it does not,
    /// 2 on an error.
    Explain(explain::ExplainArgs),
    /// A what-if session: load once, change params, see violations appear
    /// and disappear, ask why. Reads commands from a terminal (line editing,
    /// history, completion) or, scripted, from stdin or `--eval`.
    Repl(repl::ReplArgs),
    /// List every rule: id, title, policy, severity, params and source.
    Rules(rules::RulesArgs),
    /// Run the policy tests (`test` blocks) and report like `cargo test`.
    ///
    /// Exit status: 0 when every test passes, 1 when one fails, 2 when the
    /// policies or tests cannot be read.
    Test(test::TestArgs),
}

/// The policies and param overrides of the commands that evaluate
/// (`explain`, `repl`).
#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    /// A policy file or directory (repeatable); default: the bundled policies.
    #[arg(short = 'p', long = "policy", value_name = "PATH")]
    pub policies: Vec<PathBuf>,
    /// Override a param: `POLICY.NAME=VALUE`, VALUE a bangfu literal (repeatable).
    #[arg(long = "param", value_name = "POLICY.NAME=VALUE")]
    pub params: Vec<String>,
    /// Override params from a YAML file (`POLICY: {NAME: VALUE}`); `--param` wins.
    #[arg(long = "params", value_name = "FILE")]
    pub params_file: Option<PathBuf>,
}

impl PolicyArgs {
    /// The policy files and the overrides, or the exit code after the
    /// diagnostics were printed.
    pub fn load(&self) -> Result<(Vec<PolicyFile>, Vec<crate::ParamArg>), u8> {
        let files = read_policies(&self.policies).map_err(|error| {
            report_errors(vec![error]);
            EXIT_ERROR
        })?;
        let params = check::param_args(self.params_file.as_ref(), &self.params)?;
        Ok((files, params))
    }
}

/// `--format` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Readable text grouped by rule, with source snippets and counts.
    Human,
    /// One JSON document with the violations and a summary.
    Json,
    /// One JSON object per violation per line.
    Jsonl,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
    /// JUnit XML: a test suite per policy, a test case per rule.
    Junit,
    /// GitHub Actions annotations (workflow commands).
    Github,
    /// The issue ledger as CSV (UTF-8 with BOM).
    Csv,
    /// The issue ledger as an Excel workbook; needs `--output`.
    Xlsx,
}

impl FormatArg {
    /// The renderer's format.
    pub fn format(self) -> Format {
        match self {
            FormatArg::Human => Format::Human,
            FormatArg::Json => Format::Json,
            FormatArg::Jsonl => Format::Jsonl,
            FormatArg::Sarif => Format::Sarif,
            FormatArg::Junit => Format::Junit,
            FormatArg::Github => Format::Github,
            FormatArg::Csv => Format::Csv,
            FormatArg::Xlsx => Format::Xlsx,
        }
    }

    /// The name as written on the command line.
    pub fn name(self) -> String {
        self.to_possible_value()
            .map_or_else(String::new, |value| value.get_name().to_string())
    }
}

/// `--color` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    /// Colour when writing to a terminal and `NO_COLOR` is unset.
    Auto,
    /// Always colour, even into a file or a pipe.
    Always,
    /// Never colour.
    Never,
}

/// `--fail-on` values: the least severity that makes the exit status 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailOnArg {
    /// Exit 1 when a violation of severity error exists.
    Error,
    /// Exit 1 when a violation of severity warning or error exists.
    Warning,
    /// Exit 0 whatever was found (errors in policies or data still exit 2).
    Never,
}

/// Errors of the command line itself.
#[derive(Debug, Error, Diagnostic)]
pub enum CliError {
    /// A policy path that cannot be read.
    #[error("cannot read policy path `{path}`: {reason}")]
    #[diagnostic(
        code(E0901),
        help(
            "pass a `.bangfu` file or a directory holding some; without `-p` the bundled policies are used"
        )
    )]
    UnreadablePolicy {
        /// Path.
        path: String,
        /// Why.
        reason: String,
    },
    /// A bad `--rule` glob.
    #[error("invalid --rule pattern `{pattern}`: {reason}")]
    #[diagnostic(
        code(E0902),
        help("patterns are globs over rule ids, e.g. `three_one.*` or `*.helper`")
    )]
    InvalidRulePattern {
        /// Pattern.
        pattern: String,
        /// Why.
        reason: String,
    },
    /// A `--param` that is not `POLICY.NAME=VALUE`.
    #[error("invalid --param `{arg}`")]
    #[diagnostic(
        code(E0903),
        help(
            "write `--param POLICY.NAME=VALUE`, e.g. `--param three_one.threshold=15`; VALUE is a literal such as 15, 0.05, \"text\" or [\"51\"]"
        )
    )]
    InvalidParam {
        /// The argument.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("expected POLICY.NAME=VALUE")]
        span: SourceSpan,
        /// The argument.
        arg: String,
    },
    /// A binary format with nowhere to go.
    #[error("`--format {format}` writes a binary file and needs `--output FILE`")]
    #[diagnostic(
        code(E0905),
        help("add `--output report.{format}`, or pick a text format such as `--format csv`")
    )]
    MissingOutput {
        /// The format's name.
        format: String,
    },
    /// The output file cannot be created or written.
    #[error("cannot write the output to `{path}`: {reason}")]
    #[diagnostic(
        code(E0906),
        help("check that the directory exists and is writable, or pass another `--output` path")
    )]
    UnwritableOutput {
        /// The output path, or `standard output`.
        path: String,
        /// Why.
        reason: String,
    },
    /// `--output` names a file this run reads.
    #[error("`--output {path}` would overwrite an input of this run")]
    #[diagnostic(
        code(E0907),
        help("write the report to another file, e.g. `--output report.{extension}`")
    )]
    OutputOverwritesInput {
        /// The output path.
        path: String,
        /// An extension for the suggested name.
        extension: String,
    },
    /// `bangfu explain` names a key no entity has.
    #[error("no record of `{entity}` has the key `{key}`")]
    #[diagnostic(
        code(E0943),
        help(
            "check the key; `bangfu check DATA --rule RULE --format jsonl` lists the keys that violate the rule"
        )
    )]
    UnknownKey {
        /// The key.
        key: String,
        /// The rule's collection.
        entity: String,
    },
    /// A bad `--as-of`.
    #[error("invalid --as-of `{value}`")]
    #[diagnostic(
        code(E0942),
        help("write the date as YYYY-MM-DD, e.g. --as-of 2020-06-30")
    )]
    InvalidAsOf {
        /// The text.
        value: String,
    },
    /// A `--rule` that selects nothing.
    #[error("no rule id matches --rule `{pattern}`")]
    #[diagnostic(code(E0904), help("{help}"))]
    NoMatchingRule {
        /// Pattern.
        pattern: String,
        /// Did-you-mean or the list of ids.
        help: String,
    },
}

/// Runs the command line; returns the process exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    install_report_handler();
    let code = match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Fmt(args) => fmt::run(&args),
        Command::Lint(args) => lint::run(&args),
        Command::Rules(args) => rules::run(&args),
        Command::Repl(args) => repl::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Test(args) => test::run(&args),
    };
    ExitCode::from(code)
}

/// Diagnostics: coloured on a terminal, plain otherwise, at a fixed width so
/// CI logs and snapshots do not depend on the terminal.
fn install_report_handler() {
    use std::io::IsTerminal;
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = miette::set_hook(Box::new(move |_| {
        let theme = if color {
            miette::GraphicalTheme::unicode()
        } else {
            miette::GraphicalTheme::unicode_nocolor()
        };
        Box::new(
            miette::MietteHandlerOpts::new()
                .graphical_theme(theme)
                .terminal_links(false)
                .width(100)
                .build(),
        )
    }));
}

/// Prints diagnostics to stderr, with a count when there are several.
pub fn report_errors<E: Diagnostic + Send + Sync + 'static>(errors: Vec<E>) {
    let n_errors = errors
        .iter()
        .filter(|e| e.severity().is_none_or(|s| s == miette::Severity::Error))
        .count();
    let n_warnings = errors.len() - n_errors;
    for error in errors {
        eprintln!("{:?}", miette::Report::new(error));
    }
    if n_errors > 1 {
        eprintln!("{n_errors} errors");
    }
    if n_warnings > 1 {
        eprintln!("{n_warnings} warnings");
    }
}

/// Prints warnings to stderr, with their count.
pub fn report_warnings<E: Diagnostic + Send + Sync + 'static>(warnings: Vec<E>) {
    let n_warnings = warnings.len();
    for warning in warnings {
        eprintln!("{:?}", miette::Report::new(warning));
    }
    if n_warnings > 1 {
        eprintln!("{n_warnings} warnings");
    }
}

/// Reads the policy files at `paths` (files, or directories searched for
/// `*.bangfu`), or the bundled policies when `paths` is empty.
pub fn read_policies(paths: &[PathBuf]) -> Result<Vec<PolicyFile>, CliError> {
    if paths.is_empty() {
        return Ok(crate::bundled_policies());
    }
    let mut files = Vec::new();
    for path in paths {
        let unreadable = |reason: String| CliError::UnreadablePolicy {
            path: path.display().to_string(),
            reason,
        };
        if path.is_dir() {
            let mut found = Vec::new();
            collect_policy_files(path, &mut found).map_err(|e| unreadable(e.to_string()))?;
            if found.is_empty() {
                return Err(unreadable("the directory holds no `.bangfu` file".into()));
            }
            found.sort();
            for file in found {
                let text = std::fs::read_to_string(&file).map_err(|e| unreadable(e.to_string()))?;
                files.push(PolicyFile::from_disk(&file, text));
            }
        } else {
            let text = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
            files.push(PolicyFile::from_disk(path, text));
        }
    }
    Ok(files)
}

/// Like [`read_policies`], with `*_test.bangfu` files included.
pub fn read_policies_with_tests(paths: &[PathBuf]) -> Result<Vec<PolicyFile>, CliError> {
    if paths.is_empty() {
        return Ok(crate::bundled_policy_files_with_tests());
    }
    let mut files = read_policies(paths)?;
    for path in paths.iter().filter(|p| p.is_dir()) {
        let mut found = Vec::new();
        collect_test_files(path, &mut found).map_err(|e| CliError::UnreadablePolicy {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        found.sort();
        for file in found {
            let text = std::fs::read_to_string(&file).map_err(|e| CliError::UnreadablePolicy {
                path: file.display().to_string(),
                reason: e.to_string(),
            })?;
            files.push(PolicyFile::from_disk(&file, text));
        }
    }
    Ok(files)
}

fn collect_test_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_test_files(&path, out)?;
        } else if path.to_string_lossy().ends_with("_test.bangfu") {
            out.push(path);
        }
    }
    Ok(())
}

fn collect_policy_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_policy_files(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "bangfu")
            && !path.to_string_lossy().ends_with("_test.bangfu")
        {
            out.push(path);
        }
    }
    Ok(())
}
