//! Every diagnostic code has one entry in the documentation: a heading
//! `## CODE name` in one of `docs/*.md` (`errors.md` holds most; pages such
//! as `errors-lint.md` continue it), and no code has two.

use bangfu::diag::CODES;

#[test]
fn every_code_has_a_docs_entry() {
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let mut headings = Vec::new();
    for entry in std::fs::read_dir(&docs).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "md") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            headings.extend(
                text.lines()
                    .filter_map(|line| line.strip_prefix("## "))
                    .map(|h| h.trim().to_string()),
            );
        }
    }
    let missing: Vec<String> = CODES
        .iter()
        .map(|info| format!("{} {}", info.code, info.name))
        .filter(|heading| !headings.contains(heading))
        .collect();
    assert!(
        missing.is_empty(),
        "codes without a `## CODE name` heading in docs/*.md: {missing:?}"
    );
    let mut twice: Vec<&String> = headings
        .iter()
        .filter(|heading| CODES.iter().any(|info| heading.starts_with(info.code)))
        .filter(|heading| headings.iter().filter(|other| other == heading).count() > 1)
        .collect();
    twice.dedup();
    assert!(
        twice.is_empty(),
        "codes documented twice in docs/*.md: {twice:?}"
    );
}
