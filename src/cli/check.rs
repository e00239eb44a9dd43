//! `bangfu check`: compile the policies, load the data, evaluate, render
//! in the chosen format to stdout or `--output`, and turn what was found
//! into an exit code (`--fail-on`).
//!
//! stdout carries only the report, so machine formats stay parseable; a
//! one-line summary goes to stderr for every format but human on stdout
//! (which prints its own), and a progress spinner goes to stderr only when
//! stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use globset::{Glob, GlobSet, GlobSetBuilder};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use miette::SourceSpan;

use super::{
    CliError, ColorArg, EXIT_ERROR, EXIT_OK, EXIT_VIOLATIONS, FailOnArg, FormatArg, read_policies,
    report_errors,
};
use crate::compile::Plan;
use crate::diag::{self, Severity};
use crate::explain::{Location, Summary};
use crate::render::{self, Format, Options, Report, RuleInfo, Snippets, ToolInfo};
use crate::source::SourceText;
use crate::{ParamArg, compile_policies, evaluate, load_data};

/// Arguments of `bangfu check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The dataset: a .json, .yaml or .yml file, or a directory of CSV files.
    /// Without it, only the policies are checked.
    pub data: Option<PathBuf>,
    /// A policy file or directory (repeatable); default: the bundled policies.
    #[arg(short = 'p', long = "policy", value_name = "PATH")]
    pub policies: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: FormatArg,
    /// Write the report to FILE instead of standard output (required for xlsx).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Colour the human format: auto (on a terminal, unless NO_COLOR is set),
    /// always or never.
    #[arg(long, value_enum, default_value = "auto", value_name = "WHEN")]
    pub color: ColorArg,
    /// Exit 1 when a violation at or above this severity exists; `never`
    /// always exits 0 (policy and data errors still exit 2).
    #[arg(long, value_enum, default_value = "error", value_name = "SEVERITY")]
    pub fail_on: FailOnArg,
    /// Show at most N violations; the summary and the exit status still count
    /// them all.
    #[arg(long, value_name = "N")]
    pub max_violations: Option<usize>,
    /// Only rules whose id matches this glob, e.g. `three_one.*` (repeatable).
    #[arg(long = "rule", value_name = "PATTERN")]
    pub rules: Vec<String>,
    /// Override a param: `POLICY.NAME=VALUE`, VALUE a bangfu literal (repeatable).
    #[arg(long = "param", value_name = "POLICY.NAME=VALUE")]
    pub params: Vec<String>,
}

/// A spinner on stderr naming the current stage, drawn only when stderr is
/// a terminal; otherwise every call does nothing.
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new() -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress { bar: Some(bar) }
    }

    fn stage(&self, message: String) {
        if let Some(bar) = &self.bar {
            bar.set_message(message);
        }
    }

    /// Removes the spinner so later stderr lines are not drawn over.
    fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Runs `bangfu check`; returns the exit code.
pub fn run(args: &CheckArgs) -> u8 {
    let started = Instant::now();
    let format = args.format.format();
    if format.is_binary() && args.output.is_none() {
        report_errors(vec![CliError::MissingOutput {
            format: args.format.name(),
        }]);
        return EXIT_ERROR;
    }
    let progress = Progress::new();
    let code = run_with(args, format, started, &progress);
    progress.clear();
    code
}

fn run_with(args: &CheckArgs, format: Format, started: Instant, progress: &Progress) -> u8 {
    progress.stage("reading policies".into());
    let files = match read_policies(&args.policies) {
        Ok(files) => files,
        Err(error) => {
            progress.clear();
            report_errors(vec![error]);
            return EXIT_ERROR;
        }
    };
    let mut params = Vec::new();
    for arg in &args.params {
        match ParamArg::parse(arg) {
            Some(param) => params.push(param),
            None => {
                let src = SourceText::from_string("--param", arg.as_str());
                progress.clear();
                report_errors(vec![CliError::InvalidParam {
                    src,
                    span: SourceSpan::new(0.into(), arg.len()),
                    arg: arg.clone(),
                }]);
                return EXIT_ERROR;
            }
        }
    }
    progress.stage(format!("compiling {} policy files", files.len()));
    let plan = match compile_policies(&files, &params) {
        Ok(plan) => plan,
        Err(errors) => {
            progress.clear();
            report_errors(errors);
            return EXIT_ERROR;
        }
    };
    let selection = match rule_selection(&args.rules, plan.rules.iter().map(|r| r.id.as_str())) {
        Ok(selection) => selection,
        Err(error) => {
            progress.clear();
            report_errors(vec![error]);
            return EXIT_ERROR;
        }
    };
    let Some(data_path) = &args.data else {
        progress.clear();
        eprintln!(
            "policies ok: {} polic{}, {} rules (no data given)",
            plan.policies.len(),
            if plan.policies.len() == 1 { "y" } else { "ies" },
            plan.rules.len()
        );
        return EXIT_OK;
    };
    progress.stage(format!(
        "loading {}{}",
        data_path.display(),
        size_text(data_path)
    ));
    let data = match load_data(data_path, &plan) {
        Ok(data) => data,
        Err(errors) => {
            progress.clear();
            report_errors(errors);
            return EXIT_ERROR;
        }
    };
    if let Some(output) = &args.output {
        let inputs = data
            .sources
            .iter()
            .chain(plan.sources.iter())
            .map(|(_, text)| Path::new(text.name()));
        if let Some(error) = overwritten_input(output, inputs, args.format) {
            progress.clear();
            report_errors(vec![error]);
            return EXIT_ERROR;
        }
    }
    let selected = |rule: &crate::compile::RulePlan| {
        selection.as_ref().is_none_or(|set| set.is_match(&rule.id))
    };
    let n_selected = plan.rules.iter().filter(|rule| selected(rule)).count();
    progress.stage(format!("evaluating {n_selected} rules"));
    let evaluation = evaluate(&plan, &data, &selected);

    // The spinner shares the terminal with stdout: it goes before the
    // report is written there, and stays while a file is written.
    match &args.output {
        Some(output) => progress.stage(format!("writing {}", output.display())),
        None => progress.clear(),
    }
    let rules = rule_infos(&plan, &selected);
    let limit = args.max_violations;
    let shown = &evaluation.violations[..limit.map_or(evaluation.violations.len(), |n| {
        n.min(evaluation.violations.len())
    })];
    // Only the human format quotes source lines; the others need no scan.
    let snippets = if format == Format::Human {
        Snippets::collect(shown, &[&data.sources, &plan.sources])
    } else {
        Snippets::new()
    };
    let tool = ToolInfo::default();
    let report = Report {
        violations: &evaluation.violations,
        limit,
        summary: &evaluation.summary,
        rules: &rules,
        snippets: &snippets,
        tool: &tool,
    };
    let options = Options {
        color: use_color(args.color, args.output.is_some()),
    };
    if let Err(error) = write_report(format, &report, options, args.output.as_deref()) {
        progress.clear();
        report_errors(vec![error]);
        return EXIT_ERROR;
    }
    progress.clear();
    if format != Format::Human || args.output.is_some() {
        eprintln!(
            "{}",
            summary_line(
                &evaluation.summary,
                report.omitted(),
                limit,
                started.elapsed()
            )
        );
    }
    if !evaluation.errors.is_empty() {
        report_errors(evaluation.errors);
        return EXIT_ERROR;
    }
    let threshold = match args.fail_on {
        FailOnArg::Error => Some(Severity::Error),
        FailOnArg::Warning => Some(Severity::Warning),
        FailOnArg::Never => None,
    };
    let failing = threshold.is_some_and(|least| {
        evaluation
            .violations
            .iter()
            .any(|violation| violation.severity >= least)
    });
    if failing { EXIT_VIOLATIONS } else { EXIT_OK }
}

/// ` (12.3 MiB)` for a file, `` for anything else.
fn size_text(path: &Path) -> String {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {
            format!(" ({})", indicatif::BinaryBytes(meta.len()))
        }
        _ => String::new(),
    }
}

/// Colour only the human format, and only when asked or when stdout is a
/// terminal that wants colour (anstream reads `NO_COLOR`, `CLICOLOR` and
/// `TERM`).
fn use_color(color: ColorArg, to_file: bool) -> bool {
    match color {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => {
            !to_file
                && anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never
        }
    }
}

/// The rules that ran, for renderers that list passing rules too.
fn rule_infos(plan: &Plan, selected: &dyn Fn(&crate::compile::RulePlan) -> bool) -> Vec<RuleInfo> {
    plan.rules
        .iter()
        .filter(|rule| selected(rule))
        .map(|rule| {
            let policy = &plan.policies[rule.policy];
            let source = plan.sources.get(rule.span.src);
            let (line, column) = source.line_col(rule.span.start as usize);
            RuleInfo {
                id: rule.id.clone(),
                title: rule.title.clone(),
                policy: policy.name.clone(),
                severity: rule.severity,
                sources: policy.sources.clone(),
                location: Location {
                    file: source.name().to_string(),
                    line,
                    column,
                    row: None,
                },
            }
        })
        .collect()
}

/// E0907 when `output` is one of `inputs` (the data files and policy files
/// read): a report must never replace the ledger it checked.
fn overwritten_input<'a>(
    output: &Path,
    mut inputs: impl Iterator<Item = &'a Path>,
    format: FormatArg,
) -> Option<CliError> {
    // A file that does not exist yet cannot be an input.
    let output_real = std::fs::canonicalize(output).ok()?;
    inputs
        .any(|input| std::fs::canonicalize(input).is_ok_and(|real| real == output_real))
        .then(|| CliError::OutputOverwritesInput {
            path: output.display().to_string(),
            extension: match format {
                FormatArg::Human => "txt".to_string(),
                other => other.name(),
            },
        })
}

/// Renders into `output` (created only now, after everything succeeded) or
/// stdout. A closed stdout pipe (`| head`) is not an error.
fn write_report(
    format: Format,
    report: &Report<'_>,
    options: Options,
    output: Option<&Path>,
) -> Result<(), CliError> {
    match output {
        Some(path) => {
            let unwritable = |error: std::io::Error| CliError::UnwritableOutput {
                path: path.display().to_string(),
                reason: error.to_string(),
            };
            let file = std::fs::File::create(path).map_err(unwritable)?;
            let mut out = std::io::BufWriter::new(file);
            render::render(format, report, options, &mut out)
                .and_then(|()| out.flush())
                .map_err(unwritable)
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            match render::render(format, report, options, &mut out).and_then(|()| out.flush()) {
                Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(CliError::UnwritableOutput {
                        path: "standard output".into(),
                        reason: error.to_string(),
                    })
                }
                _ => Ok(()),
            }
        }
    }
}

/// The one-line summary for stderr: records, rules, violations by severity,
/// what a limit left out, and the time taken.
fn summary_line(
    summary: &Summary,
    omitted: usize,
    limit: Option<usize>,
    elapsed: Duration,
) -> String {
    let mut line = format!(
        "bangfu: {}, {}, {} ({} error, {} warning, {} info)",
        render::plural(summary.records, "record"),
        render::plural(summary.rules, "rule"),
        render::plural(summary.violations, "violation"),
        summary.errors,
        summary.warnings,
        summary.infos
    );
    if let (true, Some(limit)) = (omitted > 0, limit) {
        line.push_str(&format!(", {omitted} not shown (--max-violations {limit})"));
    }
    line.push_str(&format!(" in {:.2} s", elapsed.as_secs_f64()));
    line
}

/// The glob set of `--rule` patterns, or `None` for all rules. A pattern
/// matching no rule id is an error: a typo must not silently check nothing.
fn rule_selection<'a>(
    patterns: &[String],
    ids: impl Iterator<Item = &'a str> + Clone,
) -> Result<Option<GlobSet>, CliError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = Glob::new(pattern).map_err(|error| CliError::InvalidRulePattern {
            pattern: pattern.clone(),
            reason: error.kind().to_string(),
        })?;
        let single = glob.compile_matcher();
        if !ids.clone().any(|id| single.is_match(id)) {
            let help = diag::help_did_you_mean(pattern, "rule id", ids.clone());
            return Err(CliError::NoMatchingRule {
                pattern: pattern.clone(),
                help,
            });
        }
        builder.add(glob);
    }
    builder
        .build()
        .map(Some)
        .map_err(|error| CliError::InvalidRulePattern {
            pattern: patterns.join(" "),
            reason: error.to_string(),
        })
}
