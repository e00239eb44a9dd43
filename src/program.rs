//! The front end put together: policy files and everything they import,
//! parsed and run through resolve → check → compile.
//!
//! Takes [`PolicyFile`]s (from disk or bundled in the binary) and param
//! overrides; follows `import` declarations and `script` blocks to the files
//! they name; gives a [`Plan`] plus the policy tests found in the files, or
//! every error of every stage that could run.
//!
//! **Invariant:** this is the only place that reads policy-side files
//! (imports, rhai scripts) other than the CLI; the stages below it receive
//! text.

use std::path::{Component, Path, PathBuf};

use crate::ast::{self, Lowerer, TestDecl};
use crate::compile::{self, Plan};
use crate::resolve::{self, ParamOrigin, ParamOverride, ResolveError, ResolvedScript};
use crate::source::{SourceId, SourceMap, SourceText, Span};
use crate::{Error, analyze, check};

/// Where a policy file lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileOrigin {
    /// On disk, at this path.
    Disk(PathBuf),
    /// Bundled in the binary, under this name (`policies/…`).
    Bundled,
}

/// A policy file: its name (for diagnostics), text and origin.
#[derive(Clone, Debug)]
pub struct PolicyFile {
    /// Name shown in diagnostics.
    pub name: String,
    /// Text.
    pub text: String,
    /// Where imports are resolved from.
    pub origin: FileOrigin,
}

impl PolicyFile {
    /// A policy file held in memory (imports resolve against the bundled
    /// policies only).
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> PolicyFile {
        PolicyFile {
            name: name.into(),
            text: text.into(),
            origin: FileOrigin::Bundled,
        }
    }

    /// A policy file read from `path`.
    pub fn from_disk(path: &Path, text: impl Into<String>) -> PolicyFile {
        PolicyFile {
            name: path.display().to_string(),
            text: text.into(),
            origin: FileOrigin::Disk(path.to_path_buf()),
        }
    }
}

/// A `--param` override as written: `POLICY.NAME` and the value's text.
#[derive(Clone, Debug)]
pub struct ParamArg {
    /// The whole argument, for diagnostics.
    pub arg: String,
    /// Byte range of the policy name in `arg`.
    pub policy: std::ops::Range<usize>,
    /// Byte range of the param name in `arg`.
    pub param: std::ops::Range<usize>,
    /// Byte range of the value in `arg`.
    pub value: std::ops::Range<usize>,
    /// Where it came from.
    pub origin: ParamOrigin,
}

impl ParamArg {
    /// Splits `POLICY.NAME=VALUE`; `None` when the shape is wrong.
    pub fn parse(arg: &str) -> Option<ParamArg> {
        let eq = arg.find('=')?;
        let dot = arg[..eq].find('.')?;
        if dot == 0 || dot + 1 == eq {
            return None;
        }
        Some(ParamArg {
            arg: arg.to_string(),
            policy: 0..dot,
            param: dot + 1..eq,
            value: eq + 1..arg.len(),
            origin: ParamOrigin::Cli,
        })
    }
}

/// A policy test with the file it came from.
#[derive(Clone, Debug)]
pub struct TestCase {
    /// The declaration.
    pub decl: TestDecl,
    /// The file, for data paths relative to it.
    pub origin: FileOrigin,
    /// The file's name.
    pub file: String,
}

/// The compiled program and the tests its files hold.
#[derive(Debug)]
pub struct Frontend {
    /// The plan.
    pub plan: Plan,
    /// Policy tests, in file order.
    pub tests: Vec<TestCase>,
}

/// Normalises `a/b/../c` to `a/c` without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Where an import or script path points.
enum Target {
    Disk(PathBuf),
    Bundled(String),
}

fn target_of(importer: &PolicyFile, path: &str) -> Target {
    if let Some(name) = path.strip_prefix("bundled:") {
        return Target::Bundled(format!("policies/{}", name.trim_start_matches('/')));
    }
    match &importer.origin {
        FileOrigin::Disk(file) => Target::Disk(normalize(
            &file.parent().unwrap_or(Path::new(".")).join(path),
        )),
        FileOrigin::Bundled => {
            let dir = Path::new(&importer.name)
                .parent()
                .unwrap_or(Path::new(""))
                .to_path_buf();
            Target::Bundled(
                normalize(&dir.join(path))
                    .to_string_lossy()
                    .replace('\\', "/"),
            )
        }
    }
}

fn file_key(file: &PolicyFile) -> String {
    match &file.origin {
        FileOrigin::Disk(path) => std::fs::canonicalize(path)
            .unwrap_or_else(|_| normalize(path))
            .display()
            .to_string(),
        FileOrigin::Bundled => format!("bundled:{}", file.name),
    }
}

struct Loaded {
    file: PolicyFile,
    id: SourceId,
    ast: Option<ast::File>,
    /// Indexes of the files it imports, with the import's span.
    imports: Vec<(usize, Span)>,
}

/// Parses `files` and everything they import; compiles with `params`.
pub fn compile(files: &[PolicyFile], params: &[ParamArg]) -> Result<Frontend, Vec<Error>> {
    let analysis = analyze::analyze(files, params, analyze::Options::default());
    match analysis.frontend {
        Some(frontend) if analysis.errors.is_empty() => Ok(frontend),
        _ => Err(analysis.errors),
    }
}

/// The front end with every stage reporting all it can, into `out`: the
/// body of [`analyze::analyze`], which documents how far it goes after an
/// error. Gives the [`Frontend`] when there is no error.
pub(crate) fn front_end(
    files: &[PolicyFile],
    params: &[ParamArg],
    options: analyze::Options,
    out: &mut analyze::Analysis,
) -> Option<Frontend> {
    let mut broken = false;
    let mut syntax_errors: Vec<Error> = Vec::new();
    let mut sources = SourceMap::new();
    let mut lowerer = Lowerer::new();
    let mut errors: Vec<Error> = Vec::new();
    let mut loaded: Vec<Loaded> = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    let mut queue: Vec<PolicyFile> = files.to_vec();
    let mut queue_idx = 0;
    let mut pending_edges: Vec<(usize, String, Span)> = Vec::new();
    // Breadth-first over files and their imports, each file once.
    while queue_idx < queue.len() {
        let file = queue[queue_idx].clone();
        queue_idx += 1;
        let key = file_key(&file);
        if keys.contains(&key) {
            continue;
        }
        keys.push(key);
        let text = SourceText::from_string(file.name.as_str(), file.text.as_str());
        let id = sources.add(text.clone());
        let ast = match lowerer.lower_file(id, &text) {
            Ok(ast) => Some(ast),
            Err(error) => {
                broken = true;
                syntax_errors.extend(analyze::all_syntax_errors(&text, error));
                None
            }
        };
        let file_idx = loaded.len();
        if let Some(ast) = &ast {
            for import in &ast.imports {
                match read_target(&file, &import.path) {
                    Ok(imported) => {
                        pending_edges.push((file_idx, file_key(&imported), import.span));
                        queue.push(imported);
                    }
                    Err(reason) => errors.push(Error::Resolve(ResolveError::ImportNotFound {
                        src: text.clone(),
                        span: import.span.into(),
                        path: import.path.clone(),
                        reason,
                        help: "an import path is relative to the importing file; `bundled:ledger.bangfu` names a bundled policy file".into(),
                    })),
                }
            }
        }
        loaded.push(Loaded {
            file,
            id,
            ast,
            imports: Vec::new(),
        });
    }
    for (from, key, span) in pending_edges {
        if let Some(to) = keys.iter().position(|k| *k == key) {
            loaded[from].imports.push((to, span));
        }
    }
    if let Some(error) = import_cycle(&loaded, &sources) {
        errors.push(Error::Resolve(error));
    }
    let declares_schema =
        |entry: &Loaded| entry.ast.as_ref().is_some_and(|a| !a.schemas.is_empty());
    if options.bundled_schema_fallback && !broken && !loaded.iter().any(declares_schema) {
        for bundled in crate::bundled_policies() {
            let text = SourceText::from_string(bundled.name.as_str(), bundled.text.as_str());
            let id = sources.add(text.clone());
            if let Ok(ast) = lowerer.lower_file(id, &text)
                && !ast.schemas.is_empty()
                && ast.policies.is_empty()
            {
                out.notes.push(format!(
                    "no schema among the given files: checked against the bundled schema `{}`",
                    bundled.name
                ));
                loaded.push(Loaded {
                    file: bundled,
                    id,
                    ast: Some(ast),
                    imports: Vec::new(),
                });
            }
        }
    }

    // rhai scripts named by `script` blocks.
    let mut scripts = Vec::new();
    for entry in &loaded {
        let Some(ast) = &entry.ast else { continue };
        for decl in &ast.scripts {
            match read_text(&entry.file, &decl.path) {
                Ok((name, text)) => {
                    let source = sources.add(SourceText::from_string(name, text));
                    scripts.push(ResolvedScript {
                        decl: decl.clone(),
                        source,
                    });
                }
                Err(reason) => errors.push(Error::Resolve(ResolveError::ScriptNotFound {
                    src: sources.get(entry.id).clone(),
                    span: decl.path_span.into(),
                    path: decl.path.clone(),
                    reason,
                })),
            }
        }
    }

    let mut overrides = Vec::new();
    for param in params {
        let whole = SourceText::from_string(
            if param.origin == ParamOrigin::File {
                "--params"
            } else {
                "--param"
            },
            param.arg.as_str(),
        );
        let whole_id = sources.add(whole);
        let value_text = SourceText::from_string(
            format!(
                "--param {}",
                &param.arg[..param.value.start.saturating_sub(1)]
            ),
            &param.arg[param.value.clone()],
        );
        let value_id = sources.add(value_text.clone());
        let ident = |range: &std::ops::Range<usize>| ast::Ident {
            name: param.arg[range.clone()].to_string(),
            span: Span::new(whole_id, range.start, range.end),
        };
        match lowerer.lower_expr(value_id, &value_text) {
            Ok(value) => overrides.push(ParamOverride {
                policy: ident(&param.policy),
                param: ident(&param.param),
                value,
                origin: param.origin.clone(),
            }),
            Err(error) => errors.push(error.into()),
        }
    }
    out.errors.append(&mut syntax_errors);
    if !errors.is_empty() {
        out.errors.append(&mut errors);
        return None;
    }
    let mut tests = Vec::new();
    let mut asts = Vec::new();
    for entry in loaded {
        if let Some(mut ast) = entry.ast {
            for decl in std::mem::take(&mut ast.tests) {
                tests.push(TestCase {
                    decl,
                    origin: entry.file.origin.clone(),
                    file: entry.file.name.clone(),
                });
            }
            asts.push(ast);
        }
    }
    let keep = |error: &Error| !broken || !analyze::is_knock_on(error);
    let resolved = match resolve::resolve(asts, scripts, overrides, &sources) {
        Ok(resolved) => resolved,
        Err(errors) => {
            out.errors
                .extend(errors.into_iter().map(Error::from).filter(keep));
            return None;
        }
    };
    let checked = match check::check(&resolved, &sources) {
        Ok(checked) => checked,
        Err(errors) => {
            out.errors
                .extend(errors.into_iter().map(Error::from).filter(keep));
            return None;
        }
    };
    for found in check::lint::lint(&resolved, &checked, &sources) {
        if found.is_warning() {
            out.warnings.push(found.into());
        } else {
            out.errors.push(found.into());
        }
    }
    match compile::compile(&checked, &sources) {
        Ok(plan) if out.errors.is_empty() => Some(Frontend { plan, tests }),
        Ok(_) => None,
        Err(errors) => {
            out.errors.extend(errors.into_iter().map(Error::from));
            None
        }
    }
}

fn read_target(importer: &PolicyFile, path: &str) -> Result<PolicyFile, String> {
    match target_of(importer, path) {
        Target::Disk(path) => std::fs::read_to_string(&path)
            .map(|text| PolicyFile::from_disk(&path, text))
            .map_err(|e| e.to_string()),
        Target::Bundled(name) => crate::bundled_policies()
            .into_iter()
            .find(|f| f.name == name)
            .ok_or_else(|| format!("no bundled file `{name}`")),
    }
}

fn read_text(importer: &PolicyFile, path: &str) -> Result<(String, String), String> {
    match target_of(importer, path) {
        Target::Disk(path) => std::fs::read_to_string(&path)
            .map(|text| (path.display().to_string(), text))
            .map_err(|e| e.to_string()),
        Target::Bundled(name) => crate::bundled_file(&name)
            .map(|text| (name.clone(), text.to_string()))
            .ok_or_else(|| format!("no bundled file `{name}`")),
    }
}

/// The first import cycle, if any, as a diagnostic at the import closing it.
fn import_cycle(loaded: &[Loaded], sources: &SourceMap) -> Option<ResolveError> {
    // 0 unvisited, 1 on the stack, 2 done.
    fn visit(
        node: usize,
        loaded: &[Loaded],
        state: &mut [u8],
        stack: &mut Vec<usize>,
    ) -> Option<(usize, Span, Vec<usize>)> {
        state[node] = 1;
        stack.push(node);
        for (next, span) in &loaded[node].imports {
            match state[*next] {
                1 => {
                    let start = stack.iter().position(|n| n == next).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(*next);
                    return Some((node, *span, cycle));
                }
                0 => {
                    if let Some(found) = visit(*next, loaded, state, stack) {
                        return Some(found);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state[node] = 2;
        None
    }
    let mut state = vec![0u8; loaded.len()];
    for node in 0..loaded.len() {
        if state[node] == 0
            && let Some((from, span, cycle)) = visit(node, loaded, &mut state, &mut Vec::new())
        {
            let chain = cycle
                .iter()
                .map(|idx| loaded[*idx].file.name.clone())
                .collect::<Vec<_>>()
                .join(" → ");
            return Some(ResolveError::ImportCycle {
                src: sources.get(loaded[from].id).clone(),
                span: span.into(),
                chain,
            });
        }
    }
    None
}
