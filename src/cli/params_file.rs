//! `--params FILE` and `--scenario FILE`: param overrides from a YAML file
//! (a scenario saved by `bangfu repl` keeps them under `params:`).
//!
//! ```yaml
//! three_one:
//!   threshold: 15
//! six_plus_one:
//!   scope: ["51"]
//! ```
//!
//! Each value becomes a bangfu literal and goes through the same checks as
//! `--param` (unknown policy or param with did-you-mean, type), recorded as
//! coming from the file.

use std::path::Path;

use miette::{Diagnostic, SourceSpan};
use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use thiserror::Error;

use crate::ParamArg;
use crate::resolve::ParamOrigin;
use crate::source::SourceText;

/// A params file that cannot be used.
#[derive(Debug, Error, Diagnostic)]
pub enum ParamsFileError {
    /// Not readable or not YAML.
    #[error("cannot read params file `{path}`: {reason}")]
    #[diagnostic(
        code(E0940),
        help(
            "a params file is YAML: a mapping of policy names to mappings of param names to values"
        )
    )]
    Unreadable {
        /// Path.
        path: String,
        /// Why.
        reason: String,
    },
    /// The wrong shape.
    #[error("params file: {message}")]
    #[diagnostic(
        code(E0941),
        help(
            "write `POLICY: {{PARAM: VALUE}}`; values are numbers, strings, booleans, lists or maps"
        )
    )]
    Shape {
        /// The file.
        #[source_code]
        src: SourceText,
        /// Where.
        #[label("here")]
        span: SourceSpan,
        /// What is wrong.
        message: String,
    },
}

fn offset(src: &SourceText, node: &MarkedYaml) -> SourceSpan {
    let start = node.span.start;
    SourceSpan::new(src.offset_of(start.line(), start.col()).into(), 1)
}

fn scalar_literal(scalar: &Scalar) -> String {
    match scalar {
        Scalar::Null => "null".into(),
        Scalar::Boolean(b) => b.to_string(),
        Scalar::Integer(i) => i.to_string(),
        Scalar::FloatingPoint(f) => {
            let value = f.into_inner();
            if value.fract() == 0.0 && value.is_finite() {
                format!("{value:.1}")
            } else {
                value.to_string()
            }
        }
        Scalar::String(text) => quote(text),
    }
}

/// A bangfu string literal for `text`.
pub fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '{' => out.push_str("{{"),
            '}' => out.push_str("}}"),
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

fn literal(src: &SourceText, node: &MarkedYaml) -> Result<String, ParamsFileError> {
    match &node.data {
        YamlData::Value(scalar) => Ok(scalar_literal(scalar)),
        YamlData::Representation(text, _, _) => {
            Ok(scalar_literal(&Scalar::parse_from_cow(text.clone())))
        }
        YamlData::Sequence(items) => Ok(format!(
            "[{}]",
            items
                .iter()
                .map(|item| literal(src, item))
                .collect::<Result<Vec<_>, _>>()?
                .join(", ")
        )),
        YamlData::Mapping(entries) => {
            let mut parts = Vec::new();
            for (key, value) in entries {
                parts.push(format!("{}: {}", literal(src, key)?, literal(src, value)?));
            }
            Ok(format!("{{{}}}", parts.join(", ")))
        }
        _ => Err(ParamsFileError::Shape {
            src: src.clone(),
            span: offset(src, node),
            message: "anchors, aliases and tags are not supported".into(),
        }),
    }
}

fn name(src: &SourceText, node: &MarkedYaml) -> Result<String, ParamsFileError> {
    match &node.data {
        YamlData::Value(Scalar::String(text)) => Ok(text.to_string()),
        YamlData::Representation(text, _, _) => Ok(text.to_string()),
        _ => Err(ParamsFileError::Shape {
            src: src.clone(),
            span: offset(src, node),
            message: "expected a name".into(),
        }),
    }
}

/// Reads the overrides of a params file.
pub fn read(path: &Path) -> Result<Vec<ParamArg>, ParamsFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| ParamsFileError::Unreadable {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let src = SourceText::from_string(path.display().to_string(), text.as_str());
    let docs = MarkedYaml::load_from_str(&text).map_err(|e| ParamsFileError::Unreadable {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut args = Vec::new();
    let Some(doc) = docs.first() else {
        return Ok(args);
    };
    // A scenario saved by the REPL keeps its params under `params:`.
    let doc = match &doc.data {
        YamlData::Mapping(entries) => entries
            .iter()
            .find(|(key, _)| matches!(&key.data, YamlData::Value(Scalar::String(name)) if name == "params"))
            .map_or(doc, |(_, value)| value),
        _ => doc,
    };
    if let YamlData::Mapping(entries) = &doc.data
        && entries.is_empty()
    {
        return Ok(args);
    }
    let YamlData::Mapping(policies) = &doc.data else {
        return Err(ParamsFileError::Shape {
            src: src.clone(),
            span: offset(&src, doc),
            message: "the top level is not a mapping of policy names".into(),
        });
    };
    for (policy, params) in policies {
        let policy_name = name(&src, policy)?;
        let YamlData::Mapping(params) = &params.data else {
            return Err(ParamsFileError::Shape {
                src: src.clone(),
                span: offset(&src, params),
                message: format!("`{policy_name}` does not map param names to values"),
            });
        };
        for (param, value) in params {
            let param_name = name(&src, param)?;
            let value_text = literal(&src, value)?;
            let arg = format!("{policy_name}.{param_name}={value_text}");
            if let Some(mut parsed) = ParamArg::parse(&arg) {
                parsed.origin = ParamOrigin::File;
                args.push(parsed);
            }
        }
    }
    Ok(args)
}

/// The record changes of a scenario saved by `bangfu repl` (`edits:`, one
/// REPL command per entry); empty for a plain params file.
pub fn read_edits(path: &Path) -> Result<Vec<String>, ParamsFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| ParamsFileError::Unreadable {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let docs = MarkedYaml::load_from_str(&text).map_err(|e| ParamsFileError::Unreadable {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let Some(YamlData::Mapping(entries)) = docs.first().map(|d| &d.data) else {
        return Ok(Vec::new());
    };
    let Some((_, edits)) = entries.iter().find(
        |(key, _)| matches!(&key.data, YamlData::Value(Scalar::String(name)) if name == "edits"),
    ) else {
        return Ok(Vec::new());
    };
    let YamlData::Sequence(items) = &edits.data else {
        return Ok(Vec::new());
    };
    Ok(items
        .iter()
        .filter_map(|item| match &item.data {
            YamlData::Value(Scalar::String(text)) => Some(text.to_string()),
            _ => None,
        })
        .collect())
}
