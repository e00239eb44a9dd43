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
    CliError, ColorArg, EXIT_ERROR, EXIT_OK, EXIT_VIOLATIONS, FailOnArg, FormatArg, params_file,
    read_policies, report_errors, report_warnings,
};
use crate::analyze::{Options as AnalyzeOptions, analyze};
use crate::compile::Plan;
use crate::diag::{self, Severity};
use crate::explain::Location;
use crate::render::{self, Format, Options, Report, RuleInfo, Snippets, ToolInfo};
use crate::source::SourceText;
use crate::{ParamArg, data, waiver};

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
    /// A policy's pattern also selects the rules it inherits.
    #[arg(long = "rule", value_name = "PATTERN")]
    pub rules: Vec<String>,
    /// Override a param: `POLICY.NAME=VALUE`, VALUE a bangfu literal (repeatable).
    #[arg(long = "param", value_name = "POLICY.NAME=VALUE")]
    pub params: Vec<String>,
    /// Override params from a YAML file (`POLICY: {NAME: VALUE}`); `--param` wins.
    /// A scenario saved by `bangfu repl` (`:save FILE`) is read the same way.
    #[arg(long = "params", visible_alias = "scenario", value_name = "FILE")]
    pub params_file: Option<PathBuf>,
    /// Waivers: a YAML, JSON or CSV dataset with a `waivers` collection
    /// (rule, key, reason, approved_by, expires).
    #[arg(long, value_name = "FILE")]
    pub waivers: Option<PathBuf>,
    /// Evaluate as of this date (YYYY-MM-DD): policies not in effect are
    /// skipped and waivers expire relative to it. Default: today.
    #[arg(long = "as-of", value_name = "DATE")]
    pub as_of: Option<String>,
    /// Say which policies were skipped and why.
    #[arg(short, long)]
    pub verbose: bool,
    /// Report references whose key names no record (E0515) instead of
    /// reading them as null.
    #[arg(long)]
    pub strict_refs: bool,
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
    let format = args.format.format();
    if format.is_binary() && args.output.is_none() {
        return fail(vec![CliError::MissingOutput {
            format: args.format.name(),
        }]);
    }
    match run_inner(args, format, Instant::now()) {
        Ok(code) => code,
        Err(code) => code,
    }
}

fn fail<E: miette::Diagnostic + Send + Sync + 'static>(errors: Vec<E>) -> u8 {
    report_errors(errors);
    EXIT_ERROR
}

/// The params of `--params FILE` then `--param`, in that order so the
/// command line wins.
pub fn param_args(file: Option<&PathBuf>, args: &[String]) -> Result<Vec<ParamArg>, u8> {
    let mut params = match file {
        Some(path) => params_file::read(path).map_err(|error| fail(vec![error]))?,
        None => Vec::new(),
    };
    for arg in args {
        match ParamArg::parse(arg) {
            Some(param) => params.push(param),
            None => {
                let src = SourceText::from_string("--param", arg.as_str());
                return Err(fail(vec![CliError::InvalidParam {
                    src,
                    span: SourceSpan::new(0.into(), arg.len()),
                    arg: arg.clone(),
                }]));
            }
        }
    }
    Ok(params)
}

/// `--as-of` as days since 1970-01-01; today without it.
pub fn as_of_day(as_of: Option<&String>) -> Result<i32, u8> {
    match as_of {
        None => Ok(waiver::today()),
        Some(text) => crate::data::parse_date(text).ok_or_else(|| {
            fail(vec![CliError::InvalidAsOf {
                value: text.clone(),
            }])
        }),
    }
}

fn run_inner(args: &CheckArgs, format: Format, started: Instant) -> Result<u8, u8> {
    let files = read_policies(&args.policies).map_err(|error| fail(vec![error]))?;
    let params = param_args(args.params_file.as_ref(), &args.params)?;
    let as_of = as_of_day(args.as_of.as_ref())?;
    let analysis = analyze(&files, &params, AnalyzeOptions::default());
    report_warnings(analysis.warnings);
    let plan = match analysis.frontend {
        Some(frontend) if analysis.errors.is_empty() => frontend.plan,
        _ => return Err(fail(analysis.errors)),
    };
    let selection = rule_selection(&args.rules, &plan).map_err(|error| fail(vec![error]))?;
    let waivers = match &args.waivers {
        Some(path) => waiver::load(path).map_err(fail)?,
        None => Vec::new(),
    };
    for (idx, policy) in plan.policies.iter().enumerate() {
        if !policy.in_effect(as_of) && args.verbose {
            let range =
                |day: Option<i32>| day.map_or_else(|| "…".to_string(), crate::data::format_date);
            let n_rules = plan.rules.iter().filter(|r| r.policy == idx).count();
            eprintln!(
                "skipped policy `{}`: in effect {} to {}, not on {} ({n_rules} rule{})",
                policy.name,
                range(policy.effective_from),
                range(policy.effective_until),
                crate::data::format_date(as_of),
                if n_rules == 1 { "" } else { "s" }
            );
        }
    }
    let Some(data_path) = &args.data else {
        let n = plan.policies.len();
        let n_rules = plan.rules.len();
        eprintln!(
            "policies ok: {n} polic{}, {n_rules} rule{} (no data given)",
            if n == 1 { "y" } else { "ies" },
            if n_rules == 1 { "" } else { "s" }
        );
        return Ok(EXIT_OK);
    };
    // Compiling is quick; loading and evaluating a large ledger is what the
    // spinner is for. It is cleared before anything else goes to stderr.
    let progress = Progress::new();
    let clear_and_fail = |code: u8| {
        progress.clear();
        code
    };
    progress.stage(format!(
        "loading {}{}",
        data_path.display(),
        size_text(data_path)
    ));
    let selected = |rule_idx: usize| {
        let rule = &plan.rules[rule_idx];
        plan.policies[rule.policy].in_effect(as_of)
            && selection.as_ref().is_none_or(|set| {
                plan.rule_aliases(rule_idx)
                    .iter()
                    .any(|alias| set.is_match(alias))
            })
    };
    // A scenario saved by `bangfu repl` may change records too.
    let edits = match &args.params_file {
        Some(path) => params_file::read_edits(path).map_err(|error| {
            progress.clear();
            fail(vec![error])
        })?,
        None => Vec::new(),
    };
    // Only the fields the chosen rules read are stored; a scenario's edits
    // may name any field, so with edits every field the plan reads is.
    let schema = if edits.is_empty() {
        plan.data_schema_for(&selected)
    } else {
        plan.schema.data.clone()
    };
    let data = if args.strict_refs {
        // Every reference must be loaded to be checked, read or not.
        let mut schema = schema;
        data::refs::keep_ref_fields(&mut schema);
        let data = data::load(data_path, &schema).map_err(|errors| {
            progress.clear();
            fail(errors)
        })?;
        let dangling = data::refs::dangling_refs(&schema, &data);
        if !dangling.is_empty() {
            progress.clear();
            return Err(fail(dangling));
        }
        data
    } else {
        data::load(data_path, &schema).map_err(|errors| {
            progress.clear();
            fail(errors)
        })?
    };
    let mut data = data;
    if let Some(path) = &args.params_file
        && let Err(message) = crate::repl::replay_changes(&mut data, &plan.schema.data, &edits)
    {
        progress.clear();
        return Err(fail(vec![params_file::ParamsFileError::Unreadable {
            path: path.display().to_string(),
            reason: message,
        }]));
    }
    if let Some(output) = &args.output {
        let inputs = data
            .sources
            .iter()
            .chain(plan.sources.iter())
            .map(|(_, text)| Path::new(text.name()));
        let waiver_file = args.waivers.iter().map(PathBuf::as_path);
        let params_file = args.params_file.iter().map(PathBuf::as_path);
        if let Some(error) = overwritten_input(
            output,
            inputs.chain(waiver_file).chain(params_file),
            args.format,
        ) {
            return Err(clear_and_fail(fail(vec![error])));
        }
    }
    let chosen: std::collections::HashSet<&str> = (0..plan.rules.len())
        .filter(|idx| selected(*idx))
        .map(|idx| plan.rules[idx].id.as_str())
        .collect();
    progress.stage(format!("evaluating {} rules", chosen.len()));
    let selected_rule = |rule: &crate::compile::RulePlan| chosen.contains(rule.id.as_str());
    let mut pending = crate::evaluate_pending(
        &plan,
        &data,
        &selected_rule,
        crate::EvalOptions {
            explain: true,
            cache: None,
            interpret: false,
        },
    );
    // The spinner shares the terminal with stdout: it goes before the
    // report is written there, and stays while a file is written.
    match &args.output {
        Some(output) => progress.stage(format!("writing {}", output.display())),
        None => progress.clear(),
    }
    let limit = args.max_violations;
    let threshold = match args.fail_on {
        FailOnArg::Error => Some(Severity::Error),
        FailOnArg::Warning => Some(Severity::Warning),
        FailOnArg::Never => None,
    };
    // A waived violation is reported but never fails the run.
    let fails = |violation: &crate::Violation| {
        threshold.is_some_and(|least| violation.severity >= least && !violation.is_waived())
    };
    let mut matcher = waiver::Matcher::new(&waivers, as_of);
    let summary = std::mem::take(&mut pending.summary);
    let errors = std::mem::take(&mut pending.errors);
    let total = pending.len();
    let n_shown = limit.map_or(total, |n| n.min(total));
    let (written, tally) = if format == Format::Jsonl {
        // JSON Lines are explained, written and dropped a window at a
        // time: the violations never all sit in memory beside the data.
        let mut tally = Tally::default();
        let mut waivers_matched = Vec::new();
        let written = write_report(args.output.as_deref(), &mut |out| {
            let _timing = data::Timing::start("explain and write (windows)");
            // Each batch is explained, marked, counted, serialised and
            // dropped on one worker thread; only its bytes come back here.
            let batch = |first: usize, mut violations: Vec<crate::Violation>| {
                let matched = matcher.mark_batch(&mut violations);
                let mut counts = Tally::default();
                counts.add(&violations, &fails);
                let shown = n_shown.saturating_sub(first).min(violations.len());
                let mut bytes = Vec::with_capacity(shown * 1536);
                let lines = render::jsonl::lines(&violations[..shown], &mut bytes);
                (lines.map(|()| bytes), counts, matched)
            };
            let mut start = 0;
            while start < total {
                let end = (start + STREAM_WINDOW).min(total);
                // Past `--max-violations`, only what waivers and the exit
                // status need.
                let batches =
                    pending.explain_batches(start..end, STREAM_BATCH, start < n_shown, &batch);
                for (bytes, counts, matched) in batches {
                    out.write_all(&bytes?)?;
                    tally.waived += counts.waived;
                    tally.failing |= counts.failing;
                    waivers_matched.extend(matched);
                }
                start = end;
            }
            Ok(())
        });
        matcher.note(&waivers_matched);
        // The process ends next: the kernel takes the records back faster
        // than handing back each allocation would.
        std::mem::forget(pending);
        std::mem::forget(data);
        (written, tally)
    } else {
        let mut violations = pending.explain(0..total);
        matcher.mark(&mut violations);
        let mut tally = Tally::default();
        tally.add(&violations, &fails);
        let rules = rule_infos(&plan, &selected_rule);
        // Only the human format quotes source lines; the others need no scan.
        let snippets = if format == Format::Human {
            Snippets::collect(&violations[..n_shown], &[&data.sources, &plan.sources])
        } else {
            Snippets::new()
        };
        // Nothing reads the records after this: their memory goes back
        // before the report is written (the columns are a few large blocks,
        // quick to free).
        drop(pending);
        drop(data);
        let tool = ToolInfo::default();
        let report = Report {
            violations: &violations,
            limit,
            summary: &summary,
            rules: &rules,
            snippets: &snippets,
            tool: &tool,
        };
        let options = Options {
            color: use_color(args.color, args.output.is_some()),
        };
        let written = {
            let _timing = data::Timing::start("render");
            write_report(args.output.as_deref(), &mut |out| {
                render::render(format, &report, options, out)
            })
        };
        // The process ends next: handing the violations (millions of small
        // allocations on a national ledger) back one by one would only cost
        // time; the kernel takes the memory back at exit.
        std::mem::forget(violations);
        (written, tally)
    };
    progress.clear();
    written.map_err(|error| fail(vec![error]))?;
    if format != Format::Human || args.output.is_some() {
        let omitted = total - n_shown;
        eprintln!(
            "{}",
            summary_line(&summary, tally.waived, omitted, limit, started.elapsed())
        );
    }
    let warnings = matcher.warnings();
    if !warnings.is_empty() {
        report_errors(warnings);
    }
    if !errors.is_empty() {
        return Err(fail(errors));
    }
    Ok(if tally.failing {
        EXIT_VIOLATIONS
    } else {
        EXIT_OK
    })
}

/// Violations explained and written at a time by a streamed report: enough
/// to keep both cores busy, few enough (a few MiB) to add little to the
/// memory the records hold.
const STREAM_WINDOW: usize = 8192;

/// Violations a worker thread explains and serialises in one task.
const STREAM_BATCH: usize = 256;

/// What the violations written add up to.
#[derive(Default)]
struct Tally {
    /// Violations a waiver in force covers.
    waived: usize,
    /// Whether one fails the run (`--fail-on`).
    failing: bool,
}

impl Tally {
    fn add(&mut self, violations: &[crate::Violation], fails: &dyn Fn(&crate::Violation) -> bool) {
        self.waived += violations.iter().filter(|v| v.is_waived()).count();
        self.failing = self.failing || violations.iter().any(fails);
    }
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
                    file: source.name().into(),
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

/// Writes the report with `write` into `output` (created only now, after
/// everything succeeded) or stdout. A closed stdout pipe (`| head`) is not
/// an error.
fn write_report(
    output: Option<&Path>,
    write: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), CliError> {
    match output {
        Some(path) => {
            let unwritable = |error: std::io::Error| CliError::UnwritableOutput {
                path: path.display().to_string(),
                reason: error.to_string(),
            };
            let file = std::fs::File::create(path).map_err(unwritable)?;
            let mut out = std::io::BufWriter::new(file);
            write(&mut out)
                .and_then(|()| out.flush())
                .map_err(unwritable)
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            match write(&mut out).and_then(|()| out.flush()) {
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

/// how many are waived, what a limit left out, and the time taken.
fn summary_line(
    summary: &crate::Summary,
    n_waived: usize,
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
    if n_waived > 0 {
        line.push_str(&format!(", {n_waived} waived"));
    }
    if let (true, Some(limit)) = (omitted > 0, limit) {
        line.push_str(&format!(", {omitted} not shown (--max-violations {limit})"));
    }
    line.push_str(&format!(" in {:.2} s", elapsed.as_secs_f64()));
    line
}

/// The glob set of `--rule` patterns, or `None` for all rules. A pattern
/// matching no rule id is an error: a typo must not silently check nothing.
pub fn rule_selection(patterns: &[String], plan: &Plan) -> Result<Option<GlobSet>, CliError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let ids: Vec<String> = (0..plan.rules.len())
        .flat_map(|idx| plan.rule_aliases(idx))
        .collect();
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = Glob::new(pattern).map_err(|error| CliError::InvalidRulePattern {
            pattern: pattern.clone(),
            reason: error.kind().to_string(),
        })?;
        let single = glob.compile_matcher();
        if !ids.iter().any(|id| single.is_match(id)) {
            let help = diag::help_did_you_mean(pattern, "rule id", ids.iter().map(String::as_str));
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
