//! No command but `fmt` without `--check` changes a file: a snapshot of a
//! directory (every path, its bytes, size and modification time) is taken
//! before and after each command, and must not differ. Files are copied to
//! a temporary directory first, so a bug cannot damage the repository.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

type Snapshot = BTreeMap<PathBuf, (u64, Option<SystemTime>, u64)>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// FNV-1a, enough to tell two versions of a file apart.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn snapshot(dir: &Path, out: &mut Snapshot) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            snapshot(&path, out);
            continue;
        }
        let bytes = std::fs::read(&path).unwrap_or_default();
        let modified = entry.metadata().ok().and_then(|m| m.modified().ok());
        out.insert(path, (checksum(&bytes), modified, bytes.len() as u64));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::create_dir_all(to);
    for entry in std::fs::read_dir(from).into_iter().flatten().flatten() {
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            let _ = std::fs::copy(&path, &target);
        }
    }
}

fn bangfu(dir: &Path, args: &[&str]) -> i32 {
    Command::new(env!("CARGO_BIN_EXE_bangfu"))
        .args(args)
        .current_dir(dir)
        .output()
        .ok()
        .and_then(|o| o.status.code())
        .unwrap_or(-1)
}

#[test]
fn check_lint_and_fmt_check_change_no_file() {
    let Ok(temp) = tempfile::tempdir() else {
        panic!("no temporary directory");
    };
    let dir = temp.path();
    copy_dir(&root().join("policies"), &dir.join("policies"));
    copy_dir(&root().join("examples/sample"), &dir.join("sample"));
    copy_dir(&root().join("tests/ui"), &dir.join("ui"));
    let mut before = Snapshot::new();
    snapshot(dir, &mut before);
    assert!(
        before.len() > 20,
        "the copy is incomplete: {} files",
        before.len()
    );
    let commands: &[(&[&str], i32)] = &[
        (&["check", "sample/ledger.json", "-p", "policies"], 1),
        (&["check", "sample/ledger.yaml", "-p", "policies"], 1),
        (
            &["check", "sample/csv", "-p", "policies", "--format", "jsonl"],
            1,
        ),
        (
            &[
                "check",
                "sample/ledger.json",
                "-p",
                "policies",
                "--strict-refs",
            ],
            2,
        ),
        (
            &[
                "check",
                "ui/data/many-errors.json",
                "-p",
                "ui/schema.bangfu",
                "-p",
                "ui/data/policy.bangfu",
            ],
            2,
        ),
        (
            &[
                "check",
                "-p",
                "ui/schema.bangfu",
                "-p",
                "ui/syntax/syntax-error-several.bangfu",
            ],
            2,
        ),
        (&["lint", "policies"], 0),
        (
            &[
                "lint",
                "ui/schema.bangfu",
                "ui/check/unguarded-optional.bangfu",
            ],
            0,
        ),
        (
            &["lint", "ui/schema.bangfu", "ui/syntax/syntax-error.bangfu"],
            2,
        ),
        (&["fmt", "--check", "policies"], 0),
        (
            &[
                "fmt",
                "--check",
                "ui/fmt/unformatted.bangfu",
                "ui/fmt/formatted.bangfu",
            ],
            1,
        ),
        (&["fmt", "--check", "ui/syntax/syntax-error.bangfu"], 2),
    ];
    for (args, expected) in commands {
        let code = bangfu(dir, args);
        assert_eq!(code, *expected, "bangfu {}", args.join(" "));
        let mut after = Snapshot::new();
        snapshot(dir, &mut after);
        assert!(before == after, "bangfu {} changed files", args.join(" "));
    }
}

#[test]
fn fmt_rewrites_only_the_files_that_change() {
    let Ok(temp) = tempfile::tempdir() else {
        panic!("no temporary directory");
    };
    let dir = temp.path();
    copy_dir(&root().join("tests/ui/fmt"), dir);
    copy_dir(&root().join("tests/ui/syntax"), &dir.join("broken"));
    let mut before = Snapshot::new();
    snapshot(dir, &mut before);
    assert_eq!(bangfu(dir, &["fmt", "."]), 2, "a broken file is an error");
    let mut after = Snapshot::new();
    snapshot(dir, &mut after);
    let changed: Vec<String> = before
        .iter()
        .filter(|(path, state)| after.get(*path) != Some(state))
        .map(|(path, _)| {
            path.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string()
        })
        .collect();
    assert_eq!(changed, ["unformatted.bangfu"]);
    assert_eq!(after.len(), before.len(), "fmt left a file behind");
    assert_eq!(bangfu(dir, &["fmt", "--check", "unformatted.bangfu"]), 0);
}
