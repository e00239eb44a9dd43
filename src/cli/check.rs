//! `bangfu check`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use globset::{Glob, GlobSet, GlobSetBuilder};
use miette::SourceSpan;

use super::{
    CliError, EXIT_ERROR, EXIT_OK, EXIT_VIOLATIONS, FormatArg, params_file, read_policies,
    report_errors, report_warnings,
};
use crate::analyze::{Options, analyze};
use crate::compile::Plan;
use crate::diag::{self, Severity};
use crate::render::{self, Format};
use crate::source::SourceText;
use crate::{ParamArg, data, evaluate, load_data, waiver};

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
    /// Only rules whose id matches this glob, e.g. `three_one.*` (repeatable).
    /// A policy's pattern also selects the rules it inherits.
    #[arg(long = "rule", value_name = "PATTERN")]
    pub rules: Vec<String>,
    /// Override a param: `POLICY.NAME=VALUE`, VALUE a bangfu literal (repeatable).
    #[arg(long = "param", value_name = "POLICY.NAME=VALUE")]
    pub params: Vec<String>,
    /// Override params from a YAML file (`POLICY: {NAME: VALUE}`); `--param` wins.
    #[arg(long = "params", value_name = "FILE")]
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

/// Runs `bangfu check`; returns the exit code.
pub fn run(args: &CheckArgs) -> u8 {
    match run_inner(args) {
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

fn run_inner(args: &CheckArgs) -> Result<u8, u8> {
    let files = read_policies(&args.policies).map_err(|error| fail(vec![error]))?;
    let params = param_args(args.params_file.as_ref(), &args.params)?;
    let as_of = as_of_day(args.as_of.as_ref())?;
    let analysis = analyze(&files, &params, Options::default());
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
            eprintln!(
                "skipped policy `{}`: in effect {} to {}, not on {} ({} rules)",
                policy.name,
                range(policy.effective_from),
                range(policy.effective_until),
                crate::data::format_date(as_of),
                plan.rules.iter().filter(|r| r.policy == idx).count()
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
    let data = if args.strict_refs {
        // Every reference must be loaded to be checked, read or not.
        let mut schema = plan.schema.data.clone();
        data::refs::keep_ref_fields(&mut schema);
        let data = data::load(data_path, &schema).map_err(fail)?;
        let dangling = data::refs::dangling_refs(&schema, &data);
        if !dangling.is_empty() {
            return Err(fail(dangling));
        }
        data
    } else {
        load_data(data_path, &plan).map_err(fail)?
    };
    let selected = |rule_idx: usize| {
        let rule = &plan.rules[rule_idx];
        plan.policies[rule.policy].in_effect(as_of)
            && selection.as_ref().is_none_or(|set| {
                plan.rule_aliases(rule_idx)
                    .iter()
                    .any(|alias| set.is_match(alias))
            })
    };
    let chosen: std::collections::HashSet<&str> = (0..plan.rules.len())
        .filter(|idx| selected(*idx))
        .map(|idx| plan.rules[idx].id.as_str())
        .collect();
    let mut evaluation = evaluate(&plan, &data, &|rule| chosen.contains(rule.id.as_str()));
    let warnings = waiver::apply(&waivers, &mut evaluation.violations, as_of);
    let format = match args.format {
        FormatArg::Human => Format::Human,
        FormatArg::Json => Format::Json,
        FormatArg::Jsonl => Format::Jsonl,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = render::render(
        format,
        &evaluation.violations,
        &evaluation.summary,
        &mut out,
    )
    .and_then(|()| out.flush());
    if let Err(error) = written
        && error.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write the output: {error}");
        return Err(EXIT_ERROR);
    }
    if !warnings.is_empty() {
        report_errors(warnings);
    }
    if !evaluation.errors.is_empty() {
        return Err(fail(evaluation.errors));
    }
    let failing = evaluation
        .violations
        .iter()
        .any(|v| v.severity == Severity::Error && !v.is_waived());
    Ok(if failing { EXIT_VIOLATIONS } else { EXIT_OK })
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
