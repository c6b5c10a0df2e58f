//! Running a 5-node intent through a plan against joining the same 5 futures by hand, in the
//! same run. The nodes are trivial (ready on first poll), so the difference is the plan's own
//! cost: boxing and joining the node futures, checking each output against its contract,
//! merging the fields, the per-node reports and the missing-field lists.
//!
//! `cargo bench -p tollgate --bench plan -- --warm-up-time 2 --measurement-time 5`
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

mod common;

use common::poll_ready;
use criterion::{Criterion, criterion_group, criterion_main};
use tollgate::breaker::Registry;
use tollgate::plan::{Contracts, IntentSpec, NodeSpec, Outputs, Plan};

const FIELDS: [&str; 5] = ["f0", "f1", "f2", "f3", "f4"];

/// A trivial node: one field, ready at once.
async fn node(i: usize) -> Result<Outputs<u64>, ()> {
    Ok(Outputs::one(FIELDS[i], black_box(i as u64)))
}

fn plan(with_policies: bool, registry: &Registry) -> Plan<(), u64, ()> {
    let mut contracts = Contracts::new();
    for (i, field) in FIELDS.iter().enumerate() {
        let mut spec = NodeSpec::new(format!("n{i}")).outputs([*field]);
        if with_policies {
            spec = spec
                .timeout(Duration::from_secs(5))
                .breaker(format!("n{i}"));
        }
        contracts = contracts.node(spec);
    }
    let contracts = contracts.intent(IntentSpec::new("all").required(FIELDS));
    let mut builder = Plan::builder(contracts);
    for i in 0..FIELDS.len() {
        builder = builder.node(format!("n{i}"), move |_| node(i));
    }
    builder.build_in(registry).unwrap()
}

fn fan_out(c: &mut Criterion) {
    // Timeouts need a runtime's timer; entering it is enough, the futures are polled here.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _entered = rt.enter();
    let registry = Registry::new();
    let bare = plan(false, &registry);
    let guarded = plan(true, &registry);

    let mut g = c.benchmark_group("plan_5_nodes");
    g.bench_function("hand_joined", |b| {
        b.iter(|| {
            poll_ready(async {
                let out = tokio::join!(node(0), node(1), node(2), node(3), node(4));
                black_box(out)
            })
        })
    });
    g.bench_function("hand_joined_and_merged", |b| {
        b.iter(|| {
            poll_ready(async {
                let out = tokio::join!(node(0), node(1), node(2), node(3), node(4));
                let mut fields = BTreeMap::new();
                for outputs in [out.0, out.1, out.2, out.3, out.4].into_iter().flatten() {
                    for (field, value) in outputs.iter() {
                        fields.insert(field.to_owned(), *value);
                    }
                }
                black_box(fields)
            })
        })
    });
    g.bench_function("plan", |b| {
        b.iter(|| black_box(poll_ready(bare.run("all", ())).unwrap()))
    });
    g.bench_function("plan_timeout_and_breaker", |b| {
        b.iter(|| black_box(poll_ready(guarded.run("all", ())).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, fan_out);
criterion_main!(benches);
