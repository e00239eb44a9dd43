//! Shared by the Criterion benchmarks: the data they run on.
//!
//! A county-scale ledger (5.6 MB JSON, 1.9 MB CSV) generated once into a
//! temporary directory with `../shared/bench/gen_dataset.py` (set
//! `BENCH_DIR` to its folder) when Python and the generator are there;
//! otherwise the small sample ledger of `examples/sample`, so the benches
//! always run. Nothing large is committed.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the benchmark ledger lives: a JSON file and a CSV directory.
#[allow(dead_code, reason = "each bench uses the formats it needs")]
pub struct Ledger {
    /// `ledger.json`.
    pub json: PathBuf,
    /// The directory of CSV files.
    pub csv: PathBuf,
    /// What it is, for the benchmark names.
    pub label: &'static str,
    _dir: Option<tempfile::TempDir>,
}

/// The county ledger if it can be generated, else the sample ledger.
pub fn ledger() -> Ledger {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bench = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/bench"));
    let generator = bench.join("gen_dataset.py");
    if generator.exists()
        && let Ok(dir) = tempfile::tempdir()
    {
        let json = dir.path().join("ledger.json");
        let csv = dir.path().join("ledger-csv");
        let made = |format: &str, out: &Path| {
            Command::new("python3")
                .arg(&generator)
                .args([
                    "--scale", "county", "--seed", "1", "--format", format, "--quiet", "--out",
                ])
                .arg(out)
                .status()
                .is_ok_and(|status| status.success())
        };
        if made("json", &json) && made("csv", &csv) {
            return Ledger {
                json,
                csv,
                label: "county",
                _dir: Some(dir),
            };
        }
    }
    Ledger {
        json: root.join("examples/sample/ledger.json"),
        csv: root.join("examples/sample/csv"),
        label: "sample",
        _dir: None,
    }
}

/// The bundled policies, compiled.
pub fn plan() -> bangfu::Plan {
    match bangfu::compile_policies(&bangfu::bundled_policies(), &[]) {
        Ok(plan) => plan,
        Err(errors) => panic!(
            "the bundled policies do not compile: {} errors",
            errors.len()
        ),
    }
}
