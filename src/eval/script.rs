//! The rhai sandbox for functions written in rhai.
//!
//! Scripts get no file, network or module access (no module resolver, no
//! `eval`), and bounded resources: operations, call depth, expression depth,
//! string, array and map sizes, and one second of wall time per call. A
//! function that exceeds a limit is disabled for the rest of the run, so a
//! script that loops costs at most one second, not one second per entity.
//!
//! **Invariant:** a script can only compute a value from its arguments.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rhai::{AST, Dynamic, Engine, Scope};

use crate::check::Type;
use crate::compile::Plan;
use crate::value::{Resolver, Value};

/// Operations one call may run.
pub const MAX_OPERATIONS: u64 = 1_000_000;
/// Wall time one call may take.
pub const MAX_WALL: Duration = Duration::from_secs(1);

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// A sandboxed rhai engine for the sandbox's limits.
pub fn sandboxed_engine() -> Engine {
    let mut engine = Engine::new();
    engine.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    engine.disable_symbol("eval");
    engine.set_max_operations(MAX_OPERATIONS);
    engine.set_max_call_levels(32);
    engine.set_max_expr_depths(64, 32);
    engine.set_max_string_size(65_536);
    engine.set_max_array_size(10_000);
    engine.set_max_map_size(10_000);
    engine.set_max_modules(0);
    engine.on_print(|_| {});
    engine.on_debug(|_, _, _| {});
    engine.on_progress(|operations| {
        if operations % 4096 != 0 {
            return None;
        }
        let late = DEADLINE.with(|deadline| deadline.get().is_some_and(|d| Instant::now() > d));
        late.then(|| Dynamic::from("time limit of one second exceeded"))
    });
    engine
}

/// Compiles a script; the error text names the line and column.
pub fn compile_script(engine: &Engine, text: &str) -> Result<AST, (String, usize, usize)> {
    engine.compile(text).map_err(|error| {
        let position = error.position();
        (
            error.err_type().to_string(),
            position.line().unwrap_or(1),
            position.position().unwrap_or(1),
        )
    })
}

/// The compiled scripts of a plan.
pub struct ScriptHost {
    engine: Engine,
    asts: Vec<Option<AST>>,
    disabled: Vec<AtomicBool>,
}

impl ScriptHost {
    /// Compiles every script of `plan` (the compile stage has already
    /// reported syntax errors; a script that fails here makes its functions
    /// fail at each call).
    pub fn new(plan: &Plan) -> ScriptHost {
        let engine = sandboxed_engine();
        let asts = plan
            .scripts
            .iter()
            .map(|script| {
                plan.sources
                    .get(script.source)
                    .text()
                    .and_then(|text| compile_script(&engine, text).ok())
            })
            .collect();
        let disabled = plan
            .functions
            .iter()
            .map(|_| AtomicBool::new(false))
            .collect();
        ScriptHost {
            engine,
            asts,
            disabled,
        }
    }

    /// Calls function `func` (of `plan.functions`) from script `script`.
    pub fn call(
        &self,
        plan: &Plan,
        func: usize,
        script: usize,
        args: &[Value],
        resolver: &dyn Resolver,
    ) -> Result<Value, String> {
        let function = &plan.functions[func];
        if self.disabled[func].load(Ordering::Relaxed) {
            return Err("disabled after exceeding a limit earlier in this run".into());
        }
        let Some(ast) = self.asts.get(script).and_then(Option::as_ref) else {
            return Err("the script does not compile".into());
        };
        let dynamic_args: Vec<Dynamic> = args.iter().map(|arg| to_dynamic(arg, resolver)).collect();
        DEADLINE.with(|deadline| deadline.set(Some(Instant::now() + MAX_WALL)));
        let result =
            self.engine
                .call_fn::<Dynamic>(&mut Scope::new(), ast, &function.name, dynamic_args);
        DEADLINE.with(|deadline| deadline.set(None));
        match result {
            Ok(value) => from_dynamic(value, &function.ret).ok_or_else(|| {
                format!(
                    "returned a value that is not `{}`",
                    type_word(&function.ret)
                )
            }),
            Err(error) => {
                let limit = matches!(
                    *error,
                    rhai::EvalAltResult::ErrorTooManyOperations(..)
                        | rhai::EvalAltResult::ErrorTerminated(..)
                        | rhai::EvalAltResult::ErrorStackOverflow(..)
                        | rhai::EvalAltResult::ErrorDataTooLarge(..)
                );
                if limit {
                    self.disabled[func].store(true, Ordering::Relaxed);
                }
                Err(error.to_string())
            }
        }
    }
}

fn type_word(ty: &Type) -> &'static str {
    match ty {
        Type::Int => "int",
        Type::Number => "number",
        Type::Bool => "bool",
        Type::String => "string",
        Type::List(_) => "list",
        _ => "value",
    }
}

fn to_dynamic(value: &Value, resolver: &dyn Resolver) -> Dynamic {
    match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Int(i) => Dynamic::from_int(*i),
        Value::Number(n) => Dynamic::from_float(*n),
        Value::List(items) => Dynamic::from_array(
            items
                .iter()
                .map(|item| to_dynamic(item, resolver))
                .collect(),
        ),
        Value::Rows(coll, rows) => Dynamic::from_array(
            rows.iter()
                .map(|row| Dynamic::from(resolver.row_key(*coll, row)))
                .collect(),
        ),
        other => Dynamic::from(other.to_display(resolver)),
    }
}

fn from_dynamic(value: Dynamic, ty: &Type) -> Option<Value> {
    if value.is_unit() {
        return Some(Value::Null);
    }
    match ty {
        Type::Int => value.as_int().ok().map(Value::Int),
        Type::Number => value
            .as_float()
            .ok()
            .or_else(|| value.as_int().ok().map(|i| i as f64))
            .map(Value::Number),
        Type::Bool => value.as_bool().ok().map(Value::Bool),
        Type::String => value
            .into_immutable_string()
            .ok()
            .map(|s| Value::Text(s.as_str().into())),
        Type::List(item) => {
            let array = value.into_array().ok()?;
            let items: Option<Vec<Value>> = array
                .into_iter()
                .map(|element| from_dynamic(element, item))
                .collect();
            items.map(|items| Value::List(items.into()))
        }
        _ => None,
    }
}
