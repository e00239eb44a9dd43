//! `bangfu explain`.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, EXIT_ERROR, EXIT_OK, EXIT_VIOLATIONS, report_errors};
use crate::explain::TreeNode;
use crate::{compile_policies, explain_violation, load_data};

/// Arguments of `bangfu explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The rule id, e.g. `three_one.first_secretary`.
    pub rule: String,
    /// The key of the entity that violates the rule.
    pub key: String,
    /// The dataset (as for `bangfu check`).
    pub data: PathBuf,
    /// Policies and param overrides.
    #[command(flatten)]
    pub policy: super::PolicyArgs,
    /// Print the explanation as JSON.
    #[arg(long)]
    pub json: bool,
}

fn tree_text(node: &TreeNode) -> String {
    let mut out = String::new();
    crate::explain::render_tree(node, 2, &mut out);
    out
}

/// Runs `bangfu explain`: 1 when the entity violates the rule (and the
/// explanation is printed), 0 when it does not, 2 on errors.
pub fn run(args: &ExplainArgs) -> u8 {
    let (files, params) = match args.policy.load() {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let plan = match compile_policies(&files, &params) {
        Ok(plan) => plan,
        Err(errors) => {
            report_errors(errors);
            return EXIT_ERROR;
        }
    };
    if !plan.rules.iter().any(|rule| rule.id == args.rule) {
        let help = crate::diag::help_did_you_mean(
            &args.rule,
            "rule id",
            plan.rules.iter().map(|r| r.id.as_str()),
        );
        report_errors(vec![CliError::NoMatchingRule {
            pattern: args.rule.clone(),
            help,
        }]);
        return EXIT_ERROR;
    }
    let data = match load_data(&args.data, &plan) {
        Ok(data) => data,
        Err(errors) => {
            report_errors(errors);
            return EXIT_ERROR;
        }
    };
    if !crate::entity_exists(&plan, &data, &args.rule, &args.key) {
        let entity = plan
            .rules
            .iter()
            .find(|r| r.id == args.rule)
            .and_then(|r| r.entity)
            .map_or("dataset".to_string(), |c| {
                plan.schema.data.collections[c as usize].name.clone()
            });
        report_errors(vec![CliError::UnknownKey {
            key: args.key.clone(),
            entity,
        }]);
        return EXIT_ERROR;
    }
    let explanation = match explain_violation(&plan, &data, &args.rule, &args.key) {
        Ok(explanation) => explanation,
        Err(errors) => {
            report_errors(errors);
            return EXIT_ERROR;
        }
    };
    let Some(explanation) = explanation else {
        println!(
            "{} holds for `{}`: no violation to explain",
            args.rule, args.key
        );
        return EXIT_OK;
    };
    if args.json {
        match serde_json::to_string_pretty(&explanation) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("error: {error}");
                return EXIT_ERROR;
            }
        }
        return EXIT_VIOLATIONS;
    }
    let violation = &explanation.violation;
    println!(
        "{} {} — {}",
        violation.severity.as_str(),
        violation.rule,
        violation.title
    );
    println!(
        "  {} {}{}",
        violation.entity,
        violation.key,
        if violation.path.is_empty() {
            String::new()
        } else {
            format!(
                "  ({})",
                violation
                    .path
                    .iter()
                    .map(|s| s.value.as_str())
                    .collect::<Vec<_>>()
                    .join("/")
            )
        }
    );
    println!("  {}", violation.message);
    if let Some(location) = &violation.location {
        println!(
            "  data:   {}:{}:{}",
            location.file, location.line, location.column
        );
    }
    println!(
        "  policy: {}:{}:{}",
        violation.policy_location.file,
        violation.policy_location.line,
        violation.policy_location.column
    );
    for source in violation.sources.iter() {
        println!("  source: {source}");
    }
    if let Some(filter) = &explanation.filter {
        println!("  applies because:");
        print!("{}", tree_text(filter));
    }
    println!("  fails:");
    print!("{}", tree_text(&explanation.condition));
    if !violation.params.is_empty() {
        println!(
            "  params: {}",
            violation
                .params
                .iter()
                .map(|p| format!("{} = {} ({})", p.name, p.value, p.origin))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(suggestion) = &violation.suggestion {
        println!("  to fix: {suggestion}");
    }
    EXIT_VIOLATIONS
}
