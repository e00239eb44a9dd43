//! The what-if session behind `bangfu repl`: load once, change params (and
//! records), see which violations appear and disappear, ask why.
//!
//! Takes policy files, a dataset path and param overrides; gives a
//! [`Session`] that executes one command line at a time and returns the text
//! to show. The terminal (line editing, history, completion) lives in
//! `cli/repl.rs`; this module never prints, so scripted sessions and tests
//! drive it directly.
//!
//! **Invariants:** the data file is never written; every change is in
//! memory and undoable. After `:set`, only the rules that can read the
//! param are evaluated again; the others keep their violations.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use miette::Diagnostic;

use crate::compile::{PExpr, Plan};
use crate::data::Dataset;
use crate::data::edit::OwnedCell;
use crate::explain::Violation;
use crate::program::{ParamArg, PolicyFile};
use crate::{Error, compile_policies};

/// Lines of `+`/`-` shown per diff before the rest is counted.
const DIFF_LINES: usize = 20;

/// One undoable change.
#[derive(Clone, Debug)]
enum Undo {
    /// A param change: `POLICY.NAME` and its previous override, if any.
    Param(String, Option<String>),
    /// A record change: collection, the change's undo, and its text.
    Record(usize, RecordUndo),
}

/// How to take back a record change.
#[derive(Clone, Debug)]
enum RecordUndo {
    /// Set field `field` of row `row` back to the value.
    Edit(usize, usize, OwnedCell),
    /// Put the record back at row `row`.
    Delete(usize, Vec<OwnedCell>),
    /// Remove the record added at row `row`.
    Add(usize),
}

/// A what-if session.
pub struct Session {
    files: Vec<PolicyFile>,
    data_path: PathBuf,
    base_params: Vec<ParamArg>,
    /// `POLICY.NAME` → value text, in the order set.
    overrides: Vec<(String, String)>,
    plan: Plan,
    data: Dataset,
    violations: Vec<Violation>,
    initial: Vec<Violation>,
    undo: Vec<Undo>,
    /// Indexes over the data, kept across re-evaluations.
    cache: crate::eval::IndexCache,
    /// Record changes in force, in order, as written (for `:save`).
    changes: Vec<String>,
    /// The schema the data was loaded with (every field kept).
    schema: crate::data::DataSchema,
}

/// Whether rule `rule_idx` reads param `policy.param`.
fn reads_param(plan: &Plan, rule_idx: usize, policy: &str, param: &str) -> bool {
    plan.rules[rule_idx].params_used.iter().any(|(p, q)| {
        plan.policies.get(*p as usize).is_some_and(|info| {
            info.name == policy
                && info
                    .params
                    .get(*q as usize)
                    .is_some_and(|value| value.name == param)
        })
    })
}

/// Whether rule `rule_idx` can see a change to the records of `coll`: it
/// reads that collection, or a collection whose references point into it
/// (a removed record leaves them dangling).
fn touches(plan: &Plan, rule_idx: usize, coll: usize) -> bool {
    let schema = &plan.schema.data;
    let mut colls = vec![coll as u32];
    for (idx, collection) in schema.collections.iter().enumerate() {
        let refers = collection.fields.iter().any(|f| matches!(f.ty, crate::data::FieldType::Scalar(crate::data::ScalarType::Ref(t)) | crate::data::FieldType::List(crate::data::ScalarType::Ref(t)) if t as usize == coll));
        if refers && !colls.contains(&(idx as u32)) {
            colls.push(idx as u32);
        }
    }
    let rule = &plan.rules[rule_idx];
    if rule.entity.is_some_and(|c| colls.contains(&c)) {
        return true;
    }
    fn reads(plan: &Plan, expr: &PExpr, colls: &[u32], depth: usize) -> bool {
        let own = match expr {
            PExpr::Field { coll, .. } | PExpr::Project { coll, .. } | PExpr::Scan(coll) => {
                colls.contains(coll)
            }
            PExpr::Lookup { index, .. } => plan
                .indexes
                .get(*index as usize)
                .is_some_and(|spec| colls.contains(&spec.coll)),
            PExpr::Invariant(idx) => {
                depth < 16
                    && plan
                        .invariants
                        .get(*idx as usize)
                        .is_some_and(|e| reads(plan, e, colls, depth + 1))
            }
            PExpr::CallFn { func, .. } => {
                depth < 16
                    && matches!(plan.functions.get(*func as usize).map(|f| &f.kind), Some(crate::compile::FnKind::Bangfu { body, .. }) if reads(plan, body, colls, depth + 1))
            }
            _ => false,
        };
        let mut children = false;
        expr.for_each_child(&mut |child| children |= reads(plan, child, colls, depth));
        own || children
    }
    rule.filter
        .iter()
        .chain(rule.lets.iter().map(|(_, e)| e))
        .chain(rule.requires.iter().map(|(e, _)| e))
        .chain(rule.message.iter())
        .any(|e| reads(plan, e, &colls, 0))
}

/// A literal of the session as a value to store.
fn owned_cell(expr: &crate::ast::Expr) -> Option<OwnedCell> {
    use crate::ast::{ExprKind, UnaryOp};
    Some(match &expr.kind {
        ExprKind::Null => OwnedCell::Null,
        ExprKind::Bool(b) => OwnedCell::Bool(*b),
        ExprKind::Int(i) => OwnedCell::Int(*i),
        ExprKind::Number(n) => OwnedCell::Number(*n),
        ExprKind::Str(text) | ExprKind::Name(text) => OwnedCell::Str(text.clone()),
        ExprKind::Unary(UnaryOp::Neg, inner) => match owned_cell(inner)? {
            OwnedCell::Int(i) => OwnedCell::Int(-i),
            OwnedCell::Number(n) => OwnedCell::Number(-n),
            _ => return None,
        },
        ExprKind::List(items) => OwnedCell::List(
            items
                .iter()
                .map(|item| owned_cell(&item.value))
                .collect::<Option<Vec<_>>>()?,
        ),
        _ => return None,
    })
}

fn parse_literal(text: &str) -> Result<crate::ast::Expr, String> {
    let source = crate::source::SourceText::from_string("<repl>", text);
    crate::ast::Lowerer::new()
        .lower_expr(crate::source::SourceId(0), &source)
        .map_err(|error| format!("{:?}\n", miette::Report::new(error)))
}

/// Applies `:edit`, `:delete` or `:add` (`command`, then its arguments) to
/// `data`; gives the collection changed and how to undo it, or the reason
/// it was refused. `bangfu check --scenario` replays saved changes with it.
fn apply_change(
    data: &mut crate::data::Dataset,
    schema: &crate::data::DataSchema,
    command: &str,
    args: &str,
) -> Result<(usize, RecordUndo), String> {
    let (collection, rest) = args
        .split_once(char::is_whitespace)
        .map_or((args, ""), |(c, r)| (c, r.trim()));
    let Some(coll) = schema.collection_index(collection) else {
        let names: Vec<&str> = schema.collections.iter().map(|c| c.name.as_str()).collect();
        return Err(format!(
            "unknown collection `{collection}`; {}\n",
            crate::diag::help_did_you_mean(collection, "collection", names)
        ));
    };
    let undo = match command {
        "add" => {
            let expr = parse_literal(rest)?;
            let crate::ast::ExprKind::Map(entries) = &expr.kind else {
                return Err("usage: :add COLLECTION {field: value, …}\n".into());
            };
            let fields = &schema.collections[coll].fields;
            let mut record = vec![OwnedCell::Null; fields.len()];
            for (key, value) in entries {
                let name = match &key.kind {
                    crate::ast::ExprKind::Name(name) | crate::ast::ExprKind::Str(name) => {
                        name.clone()
                    }
                    _ => return Err("field names are written bare: {code: \"…\"}\n".into()),
                };
                let Some(field) = schema.collections[coll].field_index(&name) else {
                    return Err(format!(
                        "`{collection}` has no field `{name}`; {}\n",
                        crate::diag::help_did_you_mean(
                            &name,
                            "field",
                            fields.iter().map(|f| f.name.as_str())
                        )
                    ));
                };
                match owned_cell(value) {
                    Some(cell) => record[field] = cell,
                    None => return Err(format!("the value of `{name}` is not a literal\n")),
                }
            }
            if let Some(key_field) = schema.collections[coll].key
                && let OwnedCell::Str(key) = &record[key_field]
                && data.find_row(coll, key).is_some()
            {
                return Err(format!(
                    "`{collection}` already has a record with the key `{key}`\n"
                ));
            }
            let row = data.collections[coll].len;
            if let Err(error) = data.insert_row(schema, coll, row, &record) {
                return Err(format!("cannot add: {}\n", cell_error_text(&error)));
            }
            RecordUndo::Add(row)
        }
        _ => {
            let (key, rest) = rest
                .split_once(char::is_whitespace)
                .map_or((rest, ""), |(k, r)| (k.trim_matches('"'), r.trim()));
            let Some(row) = data.find_row(coll, key) else {
                return Err(format!("no record of `{collection}` has the key `{key}`\n"));
            };
            if command == "delete" {
                RecordUndo::Delete(row, data.remove_row(schema, coll, row))
            } else {
                let Some((field_name, value_text)) =
                    rest.split_once('=').map(|(f, v)| (f.trim(), v.trim()))
                else {
                    return Err("usage: :edit COLLECTION KEY FIELD = VALUE\n".into());
                };
                let Some(field) = schema.collections[coll].field_index(field_name) else {
                    let fields = &schema.collections[coll].fields;
                    return Err(format!(
                        "`{collection}` has no field `{field_name}`; {}\n",
                        crate::diag::help_did_you_mean(
                            field_name,
                            "field",
                            fields.iter().map(|f| f.name.as_str())
                        )
                    ));
                };
                let value = match parse_literal(value_text).map(|expr| owned_cell(&expr)) {
                    Ok(Some(value)) => value,
                    Ok(None) => return Err("the value is not a literal\n".into()),
                    Err(error) => return Err(error),
                };
                match data.set_cell(schema, coll, row, field, &value) {
                    Ok(old) => RecordUndo::Edit(row, field, old),
                    Err(error) => {
                        return Err(format!(
                            "cannot set `{field_name}`: {}\n",
                            cell_error_text(&error)
                        ));
                    }
                }
            }
        }
    };
    Ok((coll, undo))
}

fn cell_error_text(error: &crate::data::CellError) -> String {
    use crate::data::CellError;
    match error {
        CellError::WrongType { expected, found } => format!("expected {expected}, found {found}"),
        CellError::NullNotAllowed { expected } => format!("a value is required ({expected})"),
        CellError::InvalidDate(text) => format!("`{text}` is not a YYYY-MM-DD date"),
        CellError::UnknownVariant { value, variants } => {
            format!("`{value}` is not one of {}", variants.join(", "))
        }
        CellError::OutOfRange(text) => format!("{text} does not fit in a 64-bit integer"),
        CellError::Duplicate => "the field is given twice".into(),
        #[allow(unreachable_patterns)]
        other => format!("{other:?}"),
    }
}

/// Replays record changes saved by `:save` (`:edit …`, `:delete …`,
/// `:add …` lines) on freshly loaded data.
pub fn replay_changes(
    data: &mut crate::data::Dataset,
    schema: &crate::data::DataSchema,
    lines: &[String],
) -> Result<(), String> {
    for line in lines {
        let line = line.trim();
        let (command, args) = line
            .split_once(char::is_whitespace)
            .map_or((line, ""), |(c, a)| (c, a.trim()));
        let command = command.trim_start_matches(':');
        if !matches!(command, "edit" | "delete" | "add") {
            return Err(format!("`{line}` is not a record change"));
        }
        apply_change(data, schema, command, args)
            .map_err(|message| format!("`{line}`: {}", message.trim_end()))?;
    }
    Ok(())
}

/// Renders diagnostics as text (for the session's output).
fn render_errors(errors: Vec<Error>) -> String {
    let mut out = String::new();
    for error in errors {
        let _ = writeln!(out, "{:?}", miette::Report::new(error));
    }
    out
}

fn key_of(violation: &Violation) -> (String, String) {
    (violation.rule.to_string(), violation.key.clone())
}

/// The commands, for `:help` and completion.
pub const COMMANDS: &[(&str, &str)] = &[
    (
        ":violations",
        ":violations [RULE-GLOB] [--in TEXT]   current violations (TEXT: a key prefix or a path step)",
    ),
    (
        ":set",
        ":set POLICY.PARAM VALUE               change a param; prints the violations that appear (+) and disappear (-)",
    ),
    (
        ":why",
        ":why RULE KEY                         explain one violation",
    ),
    (
        ":edit",
        ":edit COLLECTION KEY FIELD = VALUE    change a field of a record, in memory only; prints the diff",
    ),
    (
        ":delete",
        ":delete COLLECTION KEY                remove a record, in memory only; prints the diff",
    ),
    (
        ":add",
        ":add COLLECTION {field: value, …}     add a record, in memory only; prints the diff",
    ),
    (
        ":undo",
        ":undo                                 undo the last change",
    ),
    (
        ":reset",
        ":reset                                undo every change",
    ),
    (
        ":diff",
        ":diff                                 violations changed since load",
    ),
    (
        ":params",
        ":params                               params in force and where they came from",
    ),
    (
        ":save",
        ":save FILE                            write the scenario; `bangfu check DATA --scenario FILE` reproduces it",
    ),
    (":help", ":help                                 this list"),
    (
        ":quit",
        ":quit                                 leave (also Ctrl-D)",
    ),
];

impl Session {
    /// Compiles the policies, loads the data (every field, so expressions
    /// may read any) and evaluates every rule.
    pub fn load(
        files: Vec<PolicyFile>,
        data_path: &Path,
        base_params: Vec<ParamArg>,
    ) -> Result<Session, Vec<Error>> {
        let plan = compile_policies(&files, &base_params)?;
        let mut schema = plan.schema.data.clone();
        for collection in &mut schema.collections {
            for field in &mut collection.fields {
                field.keep = true;
            }
        }
        let cache = crate::eval::IndexCache::new();
        let data = crate::data::load(data_path, &schema)
            .map_err(|errors| errors.into_iter().map(Error::from).collect::<Vec<_>>())?;
        let evaluation = crate::evaluate_with(
            &plan,
            &data,
            &|_| true,
            crate::EvalOptions {
                explain: false,
                cache: Some(cache.clone()),
                interpret: false,
            },
        );
        if !evaluation.errors.is_empty() {
            return Err(evaluation.errors);
        }
        let violations = evaluation.violations;
        Ok(Session {
            files,
            data_path: data_path.to_path_buf(),
            base_params,
            overrides: Vec::new(),
            plan,
            initial: violations.clone(),
            violations,
            data,
            undo: Vec::new(),
            cache,
            changes: Vec::new(),
            schema,
        })
    }

    /// The plan in force.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The data.
    pub fn data(&self) -> &Dataset {
        &self.data
    }

    /// The current violations.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Words the terminal completes: commands, rule ids, params, collections,
    /// fields and the keys of current violations.
    pub fn completions(&self) -> Vec<String> {
        let mut words: BTreeSet<String> =
            COMMANDS.iter().map(|(name, _)| name.to_string()).collect();
        words.extend(self.plan.rules.iter().map(|rule| rule.id.clone()));
        for policy in &self.plan.policies {
            words.extend(
                policy
                    .params
                    .iter()
                    .map(|param| format!("{}.{}", policy.name, param.name)),
            );
        }
        for collection in &self.plan.schema.data.collections {
            words.insert(collection.name.clone());
            words.extend(collection.fields.iter().map(|field| field.name.clone()));
        }
        words.extend(self.violations.iter().take(10_000).map(|v| v.key.clone()));
        words.into_iter().collect()
    }

    /// Executes one line and returns what to show.
    pub fn execute(&mut self, line: &str) -> String {
        let line = line.trim();
        if line.is_empty() || line.starts_with("//") {
            return String::new();
        }
        let (command, rest) = line
            .split_once(char::is_whitespace)
            .map_or((line, ""), |(c, r)| (c, r.trim()));
        match command {
            ":help" | ":h" => COMMANDS
                .iter()
                .map(|(_, help)| format!("{help}\n"))
                .collect(),
            ":violations" | ":v" => self.list(rest),
            ":set" => self.set(rest),
            ":why" => self.why(rest),
            ":edit" => self.record_command("edit", rest),
            ":delete" => self.record_command("delete", rest),
            ":add" => self.record_command("add", rest),
            ":undo" => self.undo_last(),
            ":reset" => self.reset(),
            ":diff" => diff(&self.initial, &self.violations),
            ":params" => self.params(),
            ":save" => self.save(rest),
            _ if command.starts_with(':') => {
                let names: Vec<&str> = COMMANDS.iter().map(|(name, _)| *name).collect();
                match crate::diag::did_you_mean(command, names) {
                    Some(name) => format!("unknown command `{command}`; did you mean `{name}`?\n"),
                    None => format!("unknown command `{command}`; :help lists the commands\n"),
                }
            }
            _ => self.expression(line),
        }
    }

    fn list(&self, args: &str) -> String {
        let mut pattern = None;
        let mut within = None;
        let mut words = args.split_whitespace();
        while let Some(word) = words.next() {
            match word {
                "--in" => within = words.next(),
                other => pattern = Some(other),
            }
        }
        let glob = match pattern.map(globset::Glob::new) {
            Some(Ok(glob)) => Some(glob.compile_matcher()),
            Some(Err(error)) => return format!("invalid rule pattern: {error}\n"),
            None => None,
        };
        let selected: Vec<&Violation> = self
            .violations
            .iter()
            .filter(|v| glob.as_ref().is_none_or(|g| g.is_match(&*v.rule)))
            .filter(|v| {
                within.is_none_or(|text| {
                    v.key.starts_with(text) || v.path.iter().any(|step| step.value == text)
                })
            })
            .collect();
        let mut out = String::new();
        for violation in selected.iter().take(50) {
            let _ = writeln!(
                out,
                "{} {}: {}",
                violation.rule, violation.key, violation.message
            );
        }
        if selected.len() > 50 {
            let _ = writeln!(out, "… and {} more", selected.len() - 50);
        }
        let _ = writeln!(
            out,
            "{} violation{}",
            selected.len(),
            if selected.len() == 1 { "" } else { "s" }
        );
        out
    }

    fn params(&self) -> String {
        let mut out = String::new();
        for policy in &self.plan.policies {
            for param in &policy.params {
                let _ = writeln!(
                    out,
                    "{}.{} = {} ({})",
                    policy.name,
                    param.name,
                    crate::value::literal(&param.value, &self.plan.schema.data.enums),
                    param.origin.as_str()
                );
            }
        }
        out
    }

    fn param_args(&self) -> Vec<ParamArg> {
        let mut params = self.base_params.clone();
        params.extend(
            self.overrides
                .iter()
                .filter_map(|(name, value)| ParamArg::parse(&format!("{name}={value}"))),
        );
        params
    }

    /// Recompiles with the current overrides and re-evaluates the rules for
    /// which `affected` holds; the other rules keep their violations.
    fn reevaluate(&mut self, affected: &dyn Fn(&Plan, usize) -> bool) -> Result<(), Vec<Error>> {
        let plan = compile_policies(&self.files, &self.param_args())?;
        let chosen: BTreeSet<String> = (0..plan.rules.len())
            .filter(|idx| affected(&plan, *idx))
            .map(|idx| plan.rules[idx].id.clone())
            .collect();
        let evaluation = crate::evaluate_with(
            &plan,
            &self.data,
            &|rule| chosen.contains(&rule.id),
            crate::EvalOptions {
                explain: false,
                cache: Some(self.cache.clone()),
                interpret: false,
            },
        );
        if !evaluation.errors.is_empty() {
            return Err(evaluation.errors);
        }
        let mut violations: Vec<Violation> = self
            .violations
            .iter()
            .filter(|v| !chosen.contains(&*v.rule))
            .cloned()
            .collect();
        violations.extend(evaluation.violations);
        let order: BTreeMap<&str, usize> = plan
            .rules
            .iter()
            .enumerate()
            .map(|(idx, rule)| (rule.id.as_str(), idx))
            .collect();
        violations.sort_by(|a, b| {
            order
                .get(&*a.rule)
                .cmp(&order.get(&*b.rule))
                .then_with(|| a.key.cmp(&b.key))
        });
        self.violations = violations;
        self.plan = plan;
        Ok(())
    }

    fn set(&mut self, args: &str) -> String {
        let Some((name, value)) = args
            .split_once(char::is_whitespace)
            .map(|(n, v)| (n.trim(), v.trim()))
        else {
            return "usage: :set POLICY.PARAM VALUE (VALUE a bangfu literal, e.g. 15 or [\"51\"])\n".into();
        };
        if ParamArg::parse(&format!("{name}={value}")).is_none() {
            return format!("`{name}` is not POLICY.PARAM\n");
        }
        let previous = self
            .overrides
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone());
        self.overrides.retain(|(n, _)| n != name);
        self.overrides.push((name.to_string(), value.to_string()));
        let before = self.violations.clone();
        let (policy_name, param_name) = name
            .split_once('.')
            .map(|(p, q)| (p.to_string(), q.to_string()))
            .unwrap_or_default();
        let affected = move |plan: &Plan, rule_idx: usize| {
            reads_param(plan, rule_idx, &policy_name, &param_name)
        };
        match self.reevaluate(&affected) {
            Ok(()) => {
                self.undo.push(Undo::Param(name.to_string(), previous));
                diff(&before, &self.violations)
            }
            Err(errors) => {
                self.overrides.retain(|(n, _)| n != name);
                if let Some(previous) = previous {
                    self.overrides.push((name.to_string(), previous));
                }
                render_errors(errors)
            }
        }
    }

    fn undo_last(&mut self) -> String {
        let Some(entry) = self.undo.pop() else {
            return "nothing to undo\n".into();
        };
        let before = self.violations.clone();
        let (policy_name, param_name) = match &entry {
            Undo::Param(name, _) => name
                .split_once('.')
                .map(|(p, q)| (p.to_string(), q.to_string()))
                .unwrap_or_default(),
            Undo::Record(coll, undo) => {
                let coll = *coll;
                match undo {
                    RecordUndo::Edit(row, field, old) => {
                        let _ = self.data.set_cell(&self.schema, coll, *row, *field, old);
                    }
                    RecordUndo::Delete(row, record) => {
                        let _ = self.data.insert_row(&self.schema, coll, *row, record);
                    }
                    RecordUndo::Add(row) => {
                        self.data.remove_row(&self.schema, coll, *row);
                    }
                }
                self.changes.pop();
                self.cache.clear();
                return match self.reevaluate(&|plan, rule_idx| touches(plan, rule_idx, coll)) {
                    Ok(()) => diff(&before, &self.violations),
                    Err(errors) => render_errors(errors),
                };
            }
        };
        match entry {
            Undo::Record(..) => {}
            Undo::Param(name, previous) => {
                self.overrides.retain(|(n, _)| *n != name);
                if let Some(previous) = previous {
                    self.overrides.push((name, previous));
                }
            }
        }
        match self
            .reevaluate(&|plan, rule_idx| reads_param(plan, rule_idx, &policy_name, &param_name))
        {
            Ok(()) => diff(&before, &self.violations),
            Err(errors) => render_errors(errors),
        }
    }

    fn reset(&mut self) -> String {
        let before = self.violations.clone();
        // Every change is taken back, newest first, so record changes undo
        // against the rows they were made on.
        while !self.undo.is_empty() {
            let _ = self.undo_last();
        }
        self.overrides.clear();
        match self.reevaluate(&|_, _| true) {
            Ok(()) => diff(&before, &self.violations),
            Err(errors) => render_errors(errors),
        }
    }

    /// `:edit`, `:delete` and `:add`: change the records in memory, then
    /// re-evaluate the rules that can see the change.
    fn record_command(&mut self, command: &str, args: &str) -> String {
        let (coll, undo) = match apply_change(&mut self.data, &self.schema, command, args) {
            Ok(applied) => applied,
            Err(message) => return message,
        };
        self.undo.push(Undo::Record(coll, undo));
        self.changes.push(format!(":{command} {args}"));
        self.cache.clear();
        let before = self.violations.clone();
        match self.reevaluate(&|plan, rule_idx| touches(plan, rule_idx, coll)) {
            Ok(()) => diff(&before, &self.violations),
            Err(errors) => render_errors(errors),
        }
    }

    fn why(&self, args: &str) -> String {
        let mut words = args.split_whitespace();
        let (Some(rule), Some(key)) = (words.next(), words.next()) else {
            return "usage: :why RULE KEY\n".into();
        };
        match crate::explain_violation(&self.plan, &self.data, rule, key) {
            Ok(Some(explanation)) => {
                let mut out = String::new();
                let violation = &explanation.violation;
                let _ = writeln!(
                    out,
                    "{} {} — {}",
                    violation.rule, violation.key, violation.message
                );
                if let Some(filter) = &explanation.filter {
                    let _ = writeln!(out, "  applies because:");
                    crate::explain::render_tree(filter, 2, &mut out);
                }
                let _ = writeln!(out, "  fails:");
                crate::explain::render_tree(&explanation.condition, 2, &mut out);
                if let Some(suggestion) = &violation.suggestion {
                    let _ = writeln!(out, "  to fix: {suggestion}");
                }
                out
            }
            Ok(None) => format!("{rule} holds for `{key}` (or no such rule or key)\n"),
            Err(errors) => render_errors(errors),
        }
    }

    /// Evaluates an expression over the data: a dataset-level rule in a
    /// policy of its own, compiled with the program.
    fn expression(&self, text: &str) -> String {
        let wrapper = format!(
            "policy __repl {{\n  rule value {{\n    let value = (\n{text}\n)\n    require false\n  }}\n}}\n"
        );
        let mut files = self.files.clone();
        files.push(PolicyFile::new("<repl>", wrapper));
        let plan = match compile_policies(&files, &self.param_args()) {
            Ok(plan) => plan,
            Err(errors) => return render_errors(errors),
        };
        let Some(rule_idx) = plan.rules.iter().position(|r| r.id == "__repl.value") else {
            return String::new();
        };
        let evaluator =
            crate::eval::Evaluator::with_cache(&plan, &self.data, Some(self.cache.clone()));
        let (outcomes, errors) = evaluator.run(&|rule| rule.id == "__repl.value");
        if !errors.is_empty() {
            return render_errors(errors.into_iter().map(Error::from).collect());
        }
        let Some(outcome) = outcomes.first() else {
            return String::new();
        };
        let slot = plan.rules[rule_idx]
            .lets
            .first()
            .map_or(0, |(slot, _)| *slot as usize);
        let value = outcome
            .env
            .get(slot)
            .cloned()
            .unwrap_or(crate::value::Value::Null);
        format!("{}\n", crate::explain::show(&evaluator, &value))
    }

    fn save(&self, path: &str) -> String {
        if path.is_empty() {
            return "usage: :save FILE\n".into();
        }
        let mut by_policy: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        for (name, value) in &self.overrides {
            if let Some((policy, param)) = name.split_once('.') {
                by_policy.entry(policy).or_default().push((param, value));
            }
        }
        let mut text = format!(
            "# bangfu scenario for {}\n# reproduce: bangfu check {} --scenario {path}\nparams:\n",
            self.data_path.display(),
            self.data_path.display()
        );
        if by_policy.is_empty() {
            text.push_str("  {}\n");
        }
        for (policy, params) in by_policy {
            let _ = writeln!(text, "  {policy}:");
            for (param, value) in params {
                let _ = writeln!(text, "    {param}: {}", yaml_value(value));
            }
        }
        if !self.changes.is_empty() {
            text.push_str("edits:\n");
            for change in &self.changes {
                let _ = writeln!(text, "  - {change:?}");
            }
        }
        match std::fs::write(path, text) {
            Ok(()) => {
                let n = self.overrides.len() + self.changes.len();
                format!(
                    "saved {n} change{} to {path}\n",
                    if n == 1 { "" } else { "s" }
                )
            }
            Err(error) => format!("cannot write {path}: {error}\n"),
        }
    }
}

/// A bangfu literal as YAML (flow style), so a scenario file reads back
/// through `--params`.
fn yaml_value(literal: &str) -> String {
    // bangfu literals (numbers, "strings", [lists], {maps}, true/false/null)
    // are valid YAML flow scalars and collections, except `{{`/`}}` escapes.
    literal.replace("{{", "{").replace("}}", "}")
}

/// The violations that appeared (`+`) and disappeared (`-`) from `before`
/// to `after`, with counts per rule.
pub fn diff(before: &[Violation], after: &[Violation]) -> String {
    let old: BTreeSet<(String, String)> = before.iter().map(key_of).collect();
    let new: BTreeSet<(String, String)> = after.iter().map(key_of).collect();
    let appeared: Vec<&Violation> = after.iter().filter(|v| !old.contains(&key_of(v))).collect();
    let gone: Vec<&Violation> = before
        .iter()
        .filter(|v| !new.contains(&key_of(v)))
        .collect();
    let mut out = String::new();
    let mut per_rule: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for v in &appeared {
        per_rule.entry(&v.rule).or_default().0 += 1;
    }
    for v in &gone {
        per_rule.entry(&v.rule).or_default().1 += 1;
    }
    for (rule, (plus, minus)) in &per_rule {
        let _ = writeln!(out, "{rule}: +{plus} -{minus}");
    }
    for v in appeared.iter().take(DIFF_LINES) {
        let _ = writeln!(out, "+ {} {}: {}", v.rule, v.key, v.message);
    }
    if appeared.len() > DIFF_LINES {
        let _ = writeln!(out, "+ … {} more", appeared.len() - DIFF_LINES);
    }
    for v in gone.iter().take(DIFF_LINES) {
        let _ = writeln!(out, "- {} {}: {}", v.rule, v.key, v.message);
    }
    if gone.len() > DIFF_LINES {
        let _ = writeln!(out, "- … {} more", gone.len() - DIFF_LINES);
    }
    let _ = writeln!(
        out,
        "{} appeared, {} disappeared, {} now",
        appeared.len(),
        gone.len(),
        after.len()
    );
    out
}

/// Errors of the session as diagnostics (re-exported for the CLI).
pub fn error_text<E: Diagnostic + Send + Sync + 'static>(error: E) -> String {
    format!("{:?}", miette::Report::new(error))
}
