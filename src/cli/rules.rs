//! `bangfu rules`.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::{EXIT_ERROR, EXIT_OK, read_policies, report_errors};
use crate::compile_policies;

/// Arguments of `bangfu rules`.
#[derive(Debug, Args)]
pub struct RulesArgs {
    /// A policy file or directory (repeatable); default: the bundled policies.
    #[arg(short = 'p', long = "policy", value_name = "PATH")]
    pub policies: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: RulesFormat,
}

/// Formats of `bangfu rules`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RulesFormat {
    /// A readable list.
    Human,
    /// A JSON array.
    Json,
}

#[derive(Serialize)]
struct RuleInfo<'a> {
    id: &'a str,
    title: &'a str,
    policy: &'a str,
    policy_title: Option<&'a str>,
    severity: &'a str,
    entity: &'a str,
    params: Vec<ParamInfo>,
    sources: &'a [String],
    /// Policies that extend this rule's policy (and so inherit the rule).
    inherited_by: Vec<&'a str>,
}

#[derive(Serialize)]
struct ParamInfo {
    name: String,
    default: String,
}

/// Runs `bangfu rules`.
pub fn run(args: &RulesArgs) -> u8 {
    let files = match read_policies(&args.policies) {
        Ok(files) => files,
        Err(error) => {
            report_errors(vec![error]);
            return EXIT_ERROR;
        }
    };
    let plan = match compile_policies(&files, &[]) {
        Ok(plan) => plan,
        Err(errors) => {
            report_errors(errors);
            return EXIT_ERROR;
        }
    };
    let infos: Vec<RuleInfo> = plan
        .rules
        .iter()
        .map(|rule| {
            let policy = &plan.policies[rule.policy];
            RuleInfo {
                id: &rule.id,
                title: &rule.title,
                policy: &policy.name,
                policy_title: policy.title.as_deref(),
                severity: rule.severity.as_str(),
                entity: rule.entity.map_or("dataset", |coll| {
                    plan.schema.data.collections[coll as usize].name.as_str()
                }),
                params: plan
                    .params_in_scope(rule.policy)
                    .into_iter()
                    .map(|p| ParamInfo {
                        name: p.name.clone(),
                        default: crate::value::literal(&p.value, &plan.schema.data.enums),
                    })
                    .collect(),
                sources: &policy.sources,
                inherited_by: plan
                    .policies
                    .iter()
                    .enumerate()
                    .filter(|(idx, _)| plan.extends(*idx, rule.policy))
                    .map(|(_, p)| p.name.as_str())
                    .collect(),
            }
        })
        .collect();
    match args.format {
        RulesFormat::Json => match serde_json::to_string_pretty(&infos) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("error: {error}");
                return EXIT_ERROR;
            }
        },
        RulesFormat::Human => {
            for info in &infos {
                println!(
                    "{}  [{}] {} — {}",
                    info.id, info.severity, info.entity, info.title
                );
                if !info.params.is_empty() {
                    println!(
                        "    params: {}",
                        info.params
                            .iter()
                            .map(|p| format!("{} = {}", p.name, p.default))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                if !info.inherited_by.is_empty() {
                    println!("    inherited by: {}", info.inherited_by.join(", "));
                }
                for source in info.sources {
                    println!("    source: {source}");
                }
            }
            println!("{} rules", infos.len());
        }
    }
    EXIT_OK
}
