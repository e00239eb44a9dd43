//! `bangfu test`.

use std::path::PathBuf;

use clap::Args;

use super::{EXIT_ERROR, EXIT_OK, EXIT_VIOLATIONS, read_policies_with_tests, report_errors};
use crate::policytest::run_test;
use crate::program;

/// Arguments of `bangfu test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Policy files or directories holding `test` blocks (usually in
    /// `*_test.bangfu` files next to the policies); default: the bundled
    /// policies and their tests.
    pub paths: Vec<PathBuf>,
    /// Only tests whose name contains this text.
    #[arg(long)]
    pub filter: Option<String>,
}

/// Runs `bangfu test`; exit 1 when a test fails.
pub fn run(args: &TestArgs) -> u8 {
    let files = match read_policies_with_tests(&args.paths) {
        Ok(files) => files,
        Err(error) => {
            report_errors(vec![error]);
            return EXIT_ERROR;
        }
    };
    let frontend = match program::compile(&files, &[]) {
        Ok(frontend) => frontend,
        Err(errors) => {
            report_errors(errors);
            return EXIT_ERROR;
        }
    };
    let tests: Vec<_> = frontend
        .tests
        .iter()
        .filter(|case| {
            args.filter
                .as_ref()
                .is_none_or(|f| case.decl.name.name.contains(f.as_str()))
        })
        .collect();
    println!(
        "running {} test{}",
        tests.len(),
        if tests.len() == 1 { "" } else { "s" }
    );
    let mut failed = Vec::new();
    let mut n_passed = 0;
    for case in &tests {
        let outcome = run_test(&files, case);
        if outcome.passed() {
            println!("test {} ... ok", outcome.name);
            n_passed += 1;
        } else {
            println!("test {} ... FAILED", outcome.name);
            failed.push(outcome);
        }
    }
    for outcome in &failed {
        println!();
        println!("---- {} ----", outcome.name);
        if let Some(title) = &outcome.title {
            println!("{title}");
        }
        for (rule, key) in &outcome.missing {
            println!("- expected {rule} \"{key}\" (not reported)");
        }
        for (rule, key) in &outcome.unexpected {
            println!("+ reported {rule} \"{key}\" (not expected)");
        }
        for problem in &outcome.problems {
            println!("! {problem}");
        }
        if !outcome.errors.is_empty() {
            println!("the test could not run:");
        }
    }
    for outcome in failed.iter_mut() {
        report_errors(std::mem::take(&mut outcome.errors));
    }
    println!();
    println!(
        "test result: {}. {n_passed} passed, {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len()
    );
    if failed.is_empty() {
        EXIT_OK
    } else {
        EXIT_VIOLATIONS
    }
}
