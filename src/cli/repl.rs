//! `bangfu repl`: the what-if session on a terminal, or scripted.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use super::{EXIT_ERROR, EXIT_OK, report_errors};
use crate::repl::Session;

/// Arguments of `bangfu repl`.
#[derive(Debug, Args)]
pub struct ReplArgs {
    /// The dataset (as for `bangfu check`), loaded once.
    pub data: PathBuf,
    /// Policies and param overrides.
    #[command(flatten)]
    pub policy: super::PolicyArgs,
    /// Run this command and exit (repeatable; in order).
    #[arg(long = "eval", value_name = "COMMAND")]
    pub eval: Vec<String>,
    /// Print how long loading and each command took, on stderr.
    #[arg(long)]
    pub timing: bool,
}

struct ReplHelper {
    words: Vec<String>,
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos]
            .rfind(|c: char| c.is_whitespace() || "()[],=".contains(c))
            .map_or(0, |i| i + 1);
        let prefix = &line[start..pos];
        if prefix.is_empty() {
            return Ok((pos, Vec::new()));
        }
        let candidates = self
            .words
            .iter()
            .filter(|w| w.starts_with(prefix))
            .take(200)
            .map(|w| Pair {
                display: w.clone(),
                replacement: w.clone(),
            })
            .collect();
        Ok((start, candidates))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}
impl Highlighter for ReplHelper {}
impl Validator for ReplHelper {}
impl Helper for ReplHelper {}

fn history_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("BANGFU_HISTORY") {
        return Some(PathBuf::from(path));
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state"))
        })?;
    Some(base.join("bangfu").join("history"))
}

/// Runs `bangfu repl`.
pub fn run(args: &ReplArgs) -> u8 {
    let (files, params) = match args.policy.load() {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let started = std::time::Instant::now();
    let timing = args.timing;
    let timed = |what: &str, since: std::time::Instant| {
        if timing {
            eprintln!("[{what}: {:.3} s]", since.elapsed().as_secs_f64());
        }
    };
    let mut session = match Session::load(files, &args.data, params) {
        Ok(session) => session,
        Err(errors) => {
            report_errors(errors);
            return EXIT_ERROR;
        }
    };
    timed("load", started);
    let stdout = std::io::stdout();
    if !args.eval.is_empty() {
        for command in &args.eval {
            let started = std::time::Instant::now();
            let result = session.execute(command);
            timed(command, started);
            let mut out = stdout.lock();
            let _ = writeln!(out, "> {command}");
            let _ = write!(out, "{result}");
        }
        return EXIT_OK;
    }
    println!(
        "bangfu repl: {} rules, {} violations; :help for commands",
        session.plan().rules.len(),
        session.violations().len()
    );
    if !std::io::stdin().is_terminal() {
        // Scripted: one command per line, echoed so the transcript reads.
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if matches!(line.trim(), ":quit" | ":q") {
                break;
            }
            let started = std::time::Instant::now();
            let result = session.execute(&line);
            timed(&line, started);
            let mut out = stdout.lock();
            let _ = writeln!(out, "> {line}");
            let _ = write!(out, "{result}");
        }
        return EXIT_OK;
    }
    let mut editor: Editor<ReplHelper, rustyline::history::DefaultHistory> = match Editor::new() {
        Ok(editor) => editor,
        Err(error) => {
            eprintln!("error: cannot start line editing: {error}");
            return EXIT_ERROR;
        }
    };
    editor.set_helper(Some(ReplHelper {
        words: session.completions(),
    }));
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    loop {
        match editor.readline("bangfu> ") {
            Ok(line) => {
                if matches!(line.trim(), ":quit" | ":q") {
                    break;
                }
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                let started = std::time::Instant::now();
                print!("{}", session.execute(&line));
                timed(line.trim(), started);
                let _ = std::io::stdout().flush();
                editor.set_helper(Some(ReplHelper {
                    words: session.completions(),
                }));
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(error) => {
                eprintln!("error: {error}");
                break;
            }
        }
    }
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.save_history(path);
    }
    EXIT_OK
}
