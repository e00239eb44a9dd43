//! Criterion benchmarks of the loaders: the JSON and CSV ledgers loaded
//! for the bundled policies (only the fields they read are kept), and the
//! bundled policies compiled (start-up). Run with `cargo bench --bench loader`.

use criterion::{Criterion, criterion_group, criterion_main};

mod common;

fn loaders(c: &mut Criterion) {
    let ledger = common::ledger();
    let plan = common::plan();
    let mut group = c.benchmark_group(format!("load/{}", ledger.label));
    group.sample_size(20);
    group.bench_function("json", |b| {
        b.iter(|| bangfu::load_data(&ledger.json, &plan).map(|data| data.collections.len()))
    });
    group.bench_function("csv", |b| {
        b.iter(|| bangfu::load_data(&ledger.csv, &plan).map(|data| data.collections.len()))
    });
    group.finish();
    c.bench_function("compile bundled policies", |b| {
        b.iter(|| bangfu::compile_policies(&bangfu::bundled_policies(), &[]).map(|p| p.rules.len()))
    });
}

criterion_group!(benches, loaders);
criterion_main!(benches);
