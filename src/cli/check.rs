//! `bangfu check`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use globset::{Glob, GlobSet, GlobSetBuilder};
use miette::SourceSpan;

use super::{
    CliError, EXIT_ERROR, EXIT_OK, EXIT_VIOLATIONS, FormatArg, read_policies, report_errors,
    report_warnings,
};
use crate::analyze::{Options, analyze};
use crate::data;
use crate::diag::{self, Severity};
use crate::render::{self, Format};
use crate::source::SourceText;
use crate::{ParamArg, evaluate, load_data};

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
    #[arg(long = "rule", value_name = "PATTERN")]
    pub rules: Vec<String>,
    /// Override a param: `POLICY.NAME=VALUE`, VALUE a bangfu literal (repeatable).
    #[arg(long = "param", value_name = "POLICY.NAME=VALUE")]
    pub params: Vec<String>,
    /// Report references whose key names no record (E0515) instead of
    /// reading them as null.
    #[arg(long)]
    pub strict_refs: bool,
}

/// Runs `bangfu check`; returns the exit code.
pub fn run(args: &CheckArgs) -> u8 {
    let files = match read_policies(&args.policies) {
        Ok(files) => files,
        Err(error) => {
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
                report_errors(vec![CliError::InvalidParam {
                    src,
                    span: SourceSpan::new(0.into(), arg.len()),
                    arg: arg.clone(),
                }]);
                return EXIT_ERROR;
            }
        }
    }
    let analysis = analyze(&files, &params, Options::default());
    report_warnings(analysis.warnings);
    let plan = match analysis.plan {
        Some(plan) if analysis.errors.is_empty() => plan,
        _ => {
            report_errors(analysis.errors);
            return EXIT_ERROR;
        }
    };
    let selection = match rule_selection(&args.rules, plan.rules.iter().map(|r| r.id.as_str())) {
        Ok(selection) => selection,
        Err(error) => {
            report_errors(vec![error]);
            return EXIT_ERROR;
        }
    };
    let Some(data_path) = &args.data else {
        eprintln!(
            "policies ok: {} polic{}, {} rule{} (no data given)",
            plan.policies.len(),
            if plan.policies.len() == 1 { "y" } else { "ies" },
            plan.rules.len(),
            if plan.rules.len() == 1 { "" } else { "s" }
        );
        return EXIT_OK;
    };
    let data = if args.strict_refs {
        let mut schema = plan.schema.data.clone();
        data::refs::keep_ref_fields(&mut schema);
        match data::load(data_path, &schema) {
            Ok(data) => {
                let dangling = data::refs::dangling_refs(&schema, &data);
                if !dangling.is_empty() {
                    report_errors(dangling);
                    return EXIT_ERROR;
                }
                data
            }
            Err(errors) => {
                report_errors(errors);
                return EXIT_ERROR;
            }
        }
    } else {
        match load_data(data_path, &plan) {
            Ok(data) => data,
            Err(errors) => {
                report_errors(errors);
                return EXIT_ERROR;
            }
        }
    };
    let selected = |rule: &crate::compile::RulePlan| {
        selection.as_ref().is_none_or(|set| set.is_match(&rule.id))
    };
    let evaluation = evaluate(&plan, &data, &selected);
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
        return EXIT_ERROR;
    }
    if !evaluation.errors.is_empty() {
        report_errors(evaluation.errors);
        return EXIT_ERROR;
    }
    if evaluation
        .violations
        .iter()
        .any(|v| v.severity == Severity::Error)
    {
        EXIT_VIOLATIONS
    } else {
        EXIT_OK
    }
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
