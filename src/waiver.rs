//! Waivers: documented exceptions for one rule and one entity.
//!
//! A waiver file is a dataset with one collection, `waivers`, in any format
//! the data loaders read (YAML, JSON, or a directory with `waivers.csv`), so
//! it gets the same diagnostics with file, line and column:
//!
//! ```yaml
//! waivers:
//!   - rule: some_policy.some_rule
//!     key: "R-001"
//!     reason: the record is being corrected upstream
//!     approved_by: a reviewer
//!     expires: 2027-06-30
//! ```
//!
//! A waiver in force marks the matching violation as waived: it is still
//! reported, and does not count for the exit code. An expired waiver no
//! longer waives and is reported as a warning, as is a waiver that matches
//! no violation (stale).
//!
//! **Invariant:** waivers never hide a violation; they annotate it.

use std::path::Path;

use miette::{Diagnostic, SourceSpan};
use serde::Serialize;
use thiserror::Error;

use crate::data::{
    self, CollectionSchema, ColumnData, DataSchema, Dataset, FieldSchema, FieldType, ScalarType,
};
use crate::explain::Violation;
use crate::source::SourceText;

/// A waiver as loaded.
#[derive(Clone, Debug, Serialize)]
pub struct Waiver {
    /// Rule id.
    pub rule: String,
    /// Entity key.
    pub key: String,
    /// Why the exception is allowed.
    pub reason: String,
    /// Who approved it.
    pub approved_by: String,
    /// Last day it applies, `YYYY-MM-DD`.
    pub expires: String,
    #[serde(skip)]
    expires_day: i32,
    #[serde(skip)]
    position: Option<(SourceText, usize)>,
}

/// Warnings about waivers.
#[derive(Debug, Error, Diagnostic)]
pub enum WaiverWarning {
    /// The waiver has expired.
    #[error("waiver for `{rule}` on `{key}` expired on {expires}; the violation counts again")]
    #[diagnostic(
        code(W0701),
        severity(Warning),
        help(
            "renew the waiver with a new `expires` date if the exception still holds, or remove it"
        )
    )]
    Expired {
        /// The waiver file.
        #[source_code]
        src: SourceText,
        /// The waiver.
        #[label("expired waiver")]
        span: SourceSpan,
        /// Rule.
        rule: String,
        /// Key.
        key: String,
        /// Date.
        expires: String,
    },
    /// The waiver matches no violation.
    #[error("waiver for `{rule}` on `{key}` matches no violation")]
    #[diagnostic(
        code(W0702),
        severity(Warning),
        help(
            "the violation is gone or the rule id or key is misspelled; remove the waiver or correct it"
        )
    )]
    Stale {
        /// The waiver file.
        #[source_code]
        src: SourceText,
        /// The waiver.
        #[label("stale waiver")]
        span: SourceSpan,
        /// Rule.
        rule: String,
        /// Key.
        key: String,
    },
}

/// The schema of a waiver file.
pub fn waiver_schema() -> DataSchema {
    let field = |name: &str, ty: ScalarType| FieldSchema {
        name: name.to_string(),
        ty: FieldType::Scalar(ty),
        optional: false,
        keep: true,
        shown: false,
    };
    DataSchema {
        collections: vec![CollectionSchema {
            name: "waivers".into(),
            key: None,
            fields: vec![
                field("rule", ScalarType::String),
                field("key", ScalarType::String),
                field("reason", ScalarType::String),
                field("approved_by", ScalarType::String),
                field("expires", ScalarType::Date),
            ],
        }],
        enums: Vec::new(),
    }
}

/// Loads a waiver file.
pub fn load(path: &Path) -> Result<Vec<Waiver>, Vec<data::DataError>> {
    let schema = waiver_schema();
    let dataset = data::load(path, &schema)?;
    Ok(from_dataset(&dataset))
}

fn from_dataset(dataset: &Dataset) -> Vec<Waiver> {
    let Some(collection) = dataset.collections.first() else {
        return Vec::new();
    };
    let text = |field: usize, row: usize| match &collection.columns[field].data {
        ColumnData::Str(values) => values
            .get(row)
            .map(|sym| dataset.interner.resolve(sym).to_string())
            .unwrap_or_default(),
        _ => String::new(),
    };
    let source = collection.source.map(|id| dataset.sources.get(id).clone());
    (0..collection.len)
        .map(|row| {
            let expires_day = match &collection.columns[4].data {
                ColumnData::Date(values) => values.get(row).copied().unwrap_or(0),
                _ => 0,
            };
            Waiver {
                rule: text(0, row),
                key: text(1, row),
                reason: text(2, row),
                approved_by: text(3, row),
                expires: data::format_date(expires_day),
                expires_day,
                position: source
                    .clone()
                    .map(|src| (src, collection.positions.get(row).unwrap_or(0) as usize)),
            }
        })
        .collect()
}

/// Marks the violations that waivers in force on `as_of` cover; returns
/// the warnings about expired and stale waivers.
pub fn apply(waivers: &[Waiver], violations: &mut [Violation], as_of: i32) -> Vec<WaiverWarning> {
    let mut matcher = Matcher::new(waivers, as_of);
    matcher.mark(violations);
    matcher.warnings()
}

/// [`apply`] over violations that come a window at a time (a streamed
/// report): a waiver is stale only if no window matched it.
pub struct Matcher<'w> {
    waivers: &'w [Waiver],
    as_of: i32,
    matched: Vec<bool>,
}

impl<'w> Matcher<'w> {
    /// A matcher of `waivers`, in force on day `as_of`.
    pub fn new(waivers: &'w [Waiver], as_of: i32) -> Matcher<'w> {
        Matcher {
            waivers,
            as_of,
            matched: vec![false; waivers.len()],
        }
    }

    /// Marks the violations of one window that waivers in force cover.
    pub fn mark(&mut self, violations: &mut [Violation]) {
        let matched = self.mark_batch(violations);
        self.note(&matched);
    }

    /// Marks the violations of one batch that waivers in force cover, and
    /// returns the waivers that matched one (by index), for
    /// [`Matcher::note`]: batches can be marked side by side.
    pub fn mark_batch(&self, violations: &mut [Violation]) -> Vec<usize> {
        let mut matched = Vec::new();
        for (idx, waiver) in self.waivers.iter().enumerate() {
            for violation in violations
                .iter_mut()
                .filter(|v| *v.rule == *waiver.rule && v.key == waiver.key)
            {
                if matched.last() != Some(&idx) {
                    matched.push(idx);
                }
                if waiver.expires_day >= self.as_of {
                    violation.waiver = Some(waiver.clone());
                }
            }
        }
        matched
    }

    /// Records that the waivers `matched` (indexes, from
    /// [`Matcher::mark_batch`]) matched a violation.
    pub fn note(&mut self, matched: &[usize]) {
        for idx in matched {
            self.matched[*idx] = true;
        }
    }

    /// The warnings about expired waivers and waivers no violation matched.
    pub fn warnings(self) -> Vec<WaiverWarning> {
        let mut warnings = Vec::new();
        for (waiver, matched) in self.waivers.iter().zip(self.matched) {
            let (src, offset) = waiver
                .position
                .clone()
                .unwrap_or_else(|| (SourceText::from_string("waivers", ""), 0));
            let span = SourceSpan::new(offset.into(), 1);
            if waiver.expires_day < self.as_of {
                warnings.push(WaiverWarning::Expired {
                    src,
                    span,
                    rule: waiver.rule.clone(),
                    key: waiver.key.clone(),
                    expires: waiver.expires.clone(),
                });
            } else if !matched {
                warnings.push(WaiverWarning::Stale {
                    src,
                    span,
                    rule: waiver.rule.clone(),
                    key: waiver.key.clone(),
                });
            }
        }
        warnings
    }
}

/// Builds a waiver in memory (policy tests).
pub fn waiver(
    rule: &str,
    key: &str,
    reason: &str,
    approved_by: &str,
    expires: &str,
) -> Option<Waiver> {
    let expires_day = data::parse_date(expires)?;
    Some(Waiver {
        rule: rule.into(),
        key: key.into(),
        reason: reason.into(),
        approved_by: approved_by.into(),
        expires: expires.into(),
        expires_day,
        position: None,
    })
}

/// Today, in days since 1970-01-01 (UTC).
pub fn today() -> i32 {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    (seconds / 86_400) as i32
}
