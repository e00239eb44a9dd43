//! Criterion benchmarks of the evaluator on a loaded ledger: building the
//! plan's indexes and invariants, running every bundled rule (compiled, and
//! on the interpreter alone), and the whole
//! evaluation with explanations. Run with `cargo bench --bench evaluator`.

use criterion::{Criterion, criterion_group, criterion_main};

mod common;

fn evaluator(c: &mut Criterion) {
    let ledger = common::ledger();
    let plan = common::plan();
    let data = match bangfu::load_data(&ledger.json, &plan) {
        Ok(data) => data,
        Err(errors) => panic!(
            "the benchmark ledger does not load: {} errors",
            errors.len()
        ),
    };
    let mut group = c.benchmark_group(format!("eval/{}", ledger.label));
    group.sample_size(20);
    group.bench_function("indexes and invariants", |b| {
        b.iter(|| bangfu::eval::Evaluator::new(&plan, &data).key_text(0, 0))
    });
    let evaluator = bangfu::eval::Evaluator::new(&plan, &data);
    group.bench_function("rules", |b| b.iter(|| evaluator.run(&|_| true).0.len()));
    // The same rules on the tree-walking interpreter alone: the gap is what
    // compiling each rule to closures (src/eval/fast.rs) gives.
    let interpreter = bangfu::eval::Evaluator::new(&plan, &data).interpreted();
    group.bench_function("rules, interpreted", |b| {
        b.iter(|| interpreter.run(&|_| true).0.len())
    });
    group.bench_function("evaluate and explain", |b| {
        b.iter(|| bangfu::evaluate(&plan, &data, &|_| true).violations.len())
    });
    group.finish();
}

criterion_group!(benches, evaluator);
criterion_main!(benches);
