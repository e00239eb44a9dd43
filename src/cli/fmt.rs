//! `bangfu fmt`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use super::{EXIT_ERROR, EXIT_OK, EXIT_VIOLATIONS, read_policies_with_tests, report_errors};
use crate::source::SourceText;

/// Arguments of `bangfu fmt`.
#[derive(Debug, Args)]
pub struct FmtArgs {
    /// Policy files, or directories searched for `*.bangfu` (policy tests,
    /// `*_test.bangfu`, included).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Write nothing: print a diff of what would change, and exit 1 if
    /// anything would.
    #[arg(long)]
    pub check: bool,
}

/// Runs `bangfu fmt`; returns the exit code: 0 when every file is (now)
/// formatted, 1 with `--check` when some file is not, 2 when a file cannot
/// be read, parsed or written (the other files are still formatted).
pub fn run(args: &FmtArgs) -> u8 {
    let files = match read_policies_with_tests(&args.paths) {
        Ok(files) => files,
        Err(error) => {
            report_errors(vec![error]);
            return EXIT_ERROR;
        }
    };
    let mut errors = Vec::new();
    let mut n_changed = 0;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for file in &files {
        let src = SourceText::from_string(file.name.as_str(), file.text.as_str());
        let formatted = match crate::fmt::format(&src) {
            Ok(text) => text,
            Err(error) => {
                errors.push(crate::Error::from(error));
                continue;
            }
        };
        if formatted == file.text {
            continue;
        }
        n_changed += 1;
        if args.check {
            let diff = similar::TextDiff::from_lines(&file.text, &formatted);
            let _ = write!(
                out,
                "{}",
                diff.unified_diff()
                    .context_radius(3)
                    .header(&file.name, &file.name)
            );
        } else if let Err(error) = write_in_place(Path::new(&file.name), &formatted) {
            eprintln!("error: cannot write `{}`: {error}", file.name);
            return EXIT_ERROR;
        }
    }
    let _ = out.flush();
    let n_errors = errors.len();
    report_errors(errors);
    let (verb, plural) = match (args.check, n_changed == 1) {
        (true, true) => ("would be reformatted", "file"),
        (true, false) => ("would be reformatted", "files"),
        (false, true) => ("reformatted", "file"),
        (false, false) => ("reformatted", "files"),
    };
    let not_parsed = if n_errors > 0 {
        format!(", {n_errors} not formatted (errors above)")
    } else {
        String::new()
    };
    eprintln!(
        "{n_changed} {plural} {verb}, {} already formatted{not_parsed}",
        files.len() - n_changed - n_errors
    );
    if n_errors > 0 {
        EXIT_ERROR
    } else if args.check && n_changed > 0 {
        EXIT_VIOLATIONS
    } else {
        EXIT_OK
    }
}

/// Replaces the file's text: writes a sibling file, then renames it over the
/// original, so an interrupted run leaves the old text or the new one,
/// never half of each. The original's permissions are kept.
fn write_in_place(path: &Path, text: &str) -> std::io::Result<()> {
    let permissions = std::fs::metadata(path)?.permissions();
    let mut temp_name = path.file_name().unwrap_or_default().to_os_string();
    temp_name.push(".bangfu-fmt.tmp");
    let temp = path.with_file_name(temp_name);
    std::fs::write(&temp, text)?;
    std::fs::set_permissions(&temp, permissions)?;
    std::fs::rename(&temp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}
