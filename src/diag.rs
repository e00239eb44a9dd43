//! The diagnostic code registry and the helpers every stage shares.
//!
//! Each stage owns its error enum (`SyntaxError`, `ResolveError`,
//! `CheckError`, `CompileError`, `DataError`, `EvalError`, `CliError`); this
//! module holds the one table of stable codes those enums use, and the one
//! did-you-mean matcher.
//!
//! **Invariant:** a code, once released, never changes meaning; a retired
//! number stays reserved. `docs/errors.md` has one entry per row of [`CODES`]
//! and a test keeps the two in step.

/// Default severity of a diagnostic or a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational.
    Info,
    /// Reported, but does not fail a run by default.
    Warning,
    /// Fails the run.
    Error,
}

impl Severity {
    /// The lowercase name used in policies and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    /// Parses `error`, `warning` or `info`.
    pub fn parse(text: &str) -> Option<Severity> {
        match text {
            "error" => Some(Severity::Error),
            "warning" => Some(Severity::Warning),
            "info" => Some(Severity::Info),
            _ => None,
        }
    }
}

/// One row of the code table.
#[derive(Clone, Copy, Debug)]
pub struct CodeInfo {
    /// Stable code, e.g. `E0301`.
    pub code: &'static str,
    /// Kebab-case name of the problem.
    pub name: &'static str,
    /// Stage that reports it.
    pub stage: &'static str,
    /// One-line summary.
    pub summary: &'static str,
}

macro_rules! codes {
    ($($code:literal $name:literal $stage:literal $summary:literal;)*) => {
        /// Every diagnostic code bangfu can report.
        pub const CODES: &[CodeInfo] = &[$(CodeInfo { code: $code, name: $name, stage: $stage, summary: $summary }),*];
    };
}

codes! {
    "E0101" "syntax-error" "syntax" "the policy text does not follow the grammar";
    "E0102" "invalid-literal" "syntax" "a number, date or string literal cannot be read";
    "E0103" "nesting-too-deep" "syntax" "brackets are nested more than 64 levels deep";
    "E0201" "duplicate-definition" "resolve" "a collection, enum, policy, rule or param is defined twice";
    "E0202" "missing-schema" "resolve" "the policies declare no schema";
    "E0203" "unknown-policy" "resolve" "a param override or rule names a policy that does not exist";
    "E0204" "unknown-param" "resolve" "a param override names a param the policy does not declare";
    "E0206" "import-not-found" "resolve" "an `import` names a file that does not exist";
    "E0207" "import-cycle" "resolve" "policy files import each other in a cycle";
    "E0208" "script-not-found" "resolve" "a `script` block names a rhai file that cannot be read";
    "E0209" "extends-cycle" "resolve" "policies extend each other in a cycle";
    "E0301" "unknown-field" "check" "a field access names a field the collection does not declare";
    "E0302" "unknown-collection" "check" "a name is used as a collection but no collection has it";
    "E0303" "unknown-name" "check" "a name is neither a binding, a field, a param nor an enum variant";
    "E0304" "type-mismatch" "check" "an operand or argument has the wrong type";
    "E0305" "unknown-function" "check" "a call names a function that does not exist";
    "E0306" "wrong-arity" "check" "a function is called with the wrong number of arguments";
    "E0307" "unknown-type" "check" "a field or param declares a type that does not exist";
    "E0308" "invalid-key" "check" "a collection's key is not one of its fields, or a single key is not a string";
    "E0309" "invalid-severity" "check" "a severity is not `error`, `warning` or `info`";
    "E0310" "malformed-rule" "check" "a rule's statements are missing, repeated or out of order";
    "E0311" "non-constant-param" "check" "a param's default or override is not a constant";
    "E0312" "ambiguous-variant" "check" "a bare name is a variant of several enums";
    "E0313" "constant-require" "check" "a `require` reads no record, so it holds for every entity or for none";
    "W0350" "unused-param" "check" "a param is read by no rule of its policy";
    "W0351" "unguarded-optional" "check" "a field is read through an optional reference without a null check";
    "W0352" "unused-let" "check" "a `let` binding is read nowhere";
    "E0330" "recursive-function" "check" "a function calls itself, directly or through others";
    "E0331" "scope-without-param" "check" "a policy has a `scope` block but no `scope` param";
    "E0332" "invalid-policy-date" "check" "an `effective` date is not a valid YYYY-MM-DD date";
    "E0333" "shadowed-builtin" "check" "a function has the name of a built-in function";
    "E0334" "duplicate-variant" "check" "an enum lists the same variant twice";
    "E0335" "non-constant-map" "check" "a map literal has a key or value that is not a constant";
    "E0336" "unsupported-script-type" "check" "a rhai function declares a parameter or result type scripts cannot exchange";
    "E0501" "malformed-json" "data" "the JSON text is not well formed";
    "E0502" "malformed-yaml" "data" "the YAML text is not well formed";
    "E0503" "malformed-csv" "data" "a CSV file cannot be read, or a row has the wrong number of cells";
    "E0504" "wrong-type" "data" "a value does not have the type the schema declares";
    "E0505" "duplicate-key" "data" "two records of a collection have the same key";
    "E0506" "missing-field" "data" "a record lacks a field the schema declares as required";
    "E0507" "unknown-data-field" "data" "a record has a field the schema does not declare";
    "E0508" "unknown-data-collection" "data" "the data holds a collection the schema does not declare";
    "E0509" "number-out-of-range" "data" "an integer does not fit in 64 bits";
    "E0510" "invalid-date" "data" "a date is not a valid YYYY-MM-DD date";
    "E0511" "unknown-variant" "data" "a value is not one of the enum's variants";
    "E0512" "unreadable-data" "data" "a data file or directory cannot be read";
    "E0513" "duplicate-data-field" "data" "a record gives the same field twice";
    "E0514" "duplicate-data-collection" "data" "the data gives the same collection twice";
    "E0515" "dangling-reference" "data" "with --strict-refs: a reference names no record of its collection";
    "E0401" "unsupported-for-source" "compile" "a `for` ranges over something other than a collection";
    "E0402" "script-syntax" "compile" "a rhai script does not compile";
    "E0601" "division-by-zero" "eval" "a division by zero while evaluating a rule";
    "E0650" "script-failed" "eval" "a rhai function failed, exceeded a limit, or returned the wrong type";
    "W0701" "expired-waiver" "waiver" "a waiver's expiry date has passed; it no longer waives";
    "W0702" "stale-waiver" "waiver" "a waiver matches no violation";
    "E0901" "unreadable-policy" "cli" "a policy file or directory cannot be read";
    "E0902" "invalid-rule-pattern" "cli" "a --rule pattern is not a valid glob";
    "E0903" "invalid-param-override" "cli" "a --param argument is not POLICY.NAME=VALUE";
    "E0904" "no-matching-rule" "cli" "no rule id matches a --rule pattern";
    "E0905" "missing-output" "cli" "a binary --format (xlsx) is asked for without --output FILE";
    "E0906" "unwritable-output" "cli" "the --output file (or standard output) cannot be written";
    "E0907" "output-overwrites-input" "cli" "--output names a data or policy file the run reads";
    "E0940" "unreadable-params-file" "cli" "a --params file cannot be read or is not YAML";
    "E0941" "malformed-params-file" "cli" "a --params file is not a mapping of policies to params";
    "E0942" "invalid-as-of" "cli" "--as-of is not a YYYY-MM-DD date";
    "E0943" "unknown-key" "cli" "`bangfu explain` names a key that no record of the rule's collection has";
}

/// Looks a code up in [`CODES`].
pub fn code_info(code: &str) -> Option<&'static CodeInfo> {
    CODES.iter().find(|info| info.code == code)
}

/// The candidate closest to `name`, if it is close enough to be a likely typo.
///
/// This is the one did-you-mean matcher; every stage calls it so suggestions
/// behave the same everywhere. Distance is Damerau-Levenshtein over
/// characters, bounded by a third of the name's length (at least 1), so
/// Chinese identifiers and short names are handled alike.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|candidate| *candidate != name)
        .map(|candidate| (strsim::damerau_levenshtein(name, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, candidate)| (*distance, *candidate))
        .map(|(_, candidate)| candidate)
}

/// The plural of a noun of the messages (`policy` → `policies`).
fn plural(noun: &str) -> String {
    match noun.strip_suffix('y') {
        Some(stem) if !stem.ends_with(['a', 'e', 'o', 'u']) => format!("{stem}ies"),
        _ => format!("{noun}s"),
    }
}

/// A `help` line that suggests `candidate`, or lists what exists.
pub fn help_did_you_mean<'a>(
    name: &str,
    what: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
) -> String {
    match did_you_mean(name, candidates.clone()) {
        Some(candidate) => format!("did you mean `{candidate}`?"),
        None => {
            let mut all: Vec<&str> = candidates.into_iter().collect();
            all.sort_unstable();
            all.dedup();
            if all.is_empty() {
                format!("no {what} is declared here")
            } else if all.len() <= 12 {
                format!(
                    "the {} are: {}",
                    plural(what),
                    all.iter()
                        .map(|name| format!("`{name}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else {
                format!(
                    "there are {} {}; check the spelling",
                    all.len(),
                    plural(what)
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("helpr", ["helper", "head", "members"]),
            Some("helper")
        );
        assert_eq!(did_you_mean("zzz", ["helper", "head"]), None);
        assert_eq!(did_you_mean("人口数", ["人口", "收入"]), Some("人口"));
    }

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for info in CODES {
            assert!(seen.insert(info.code), "duplicate code {}", info.code);
            assert_eq!(info.code.len(), 5, "{}", info.code);
            assert!(
                info.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-'),
                "{}",
                info.name
            );
        }
    }
}
