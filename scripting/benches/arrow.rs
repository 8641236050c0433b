//! Evaluations per second of typical corpus scripts: each script is parsed
//! once and evaluated many times, as the node does with stored definitions.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use monk_scripting::arrow::{eval, parse, StubHost, Value, VarMap};

const SCRIPTS: &[(&str, &str)] = &[
    ("add", "<- $port 1 add"),
    ("variable", "<- $image-tag"),
    ("default", r#"<- $image-tag default("latest")"#),
    (
        "template",
        "<- `postgres://${user}:${password}@${host}:${port}/${db}`",
    ),
    (
        "concat-all",
        r#"<- "jdbc:postgresql://" $host ":" $port "/" $db concat-all"#,
    ),
    ("ternary", r#"<- $debug ? "debug" : "info""#),
    (
        "host-chain",
        r#"<- connection-target("db") entity-state get-member("address")"#,
    ),
    (
        "split-join",
        r#"<- connection-hostname("db") split(".dns.podman") join("")"#,
    ),
    ("map", "<- [1, 2, 3, 4] map(<-{ 1 add })"),
];

fn vars() -> VarMap {
    let mut vars = VarMap::new();
    for (name, value) in [
        ("port", Value::Int(5432)),
        ("image-tag", Value::str("")),
        ("user", Value::str("app")),
        ("password", Value::str("secret")),
        ("host", Value::str("db.local")),
        ("db", Value::str("main")),
        ("debug", Value::Bool(true)),
    ] {
        vars.insert(name.to_string(), value);
    }
    vars
}

fn evaluate(c: &mut Criterion) {
    let vars = vars();
    let mut group = c.benchmark_group("arrow-eval");
    group.throughput(Throughput::Elements(1));
    for (name, text) in SCRIPTS {
        let script = parse(text).expect("bench scripts parse");
        group.bench_function(*name, |b| {
            b.iter(|| eval(black_box(&script), &vars, &mut StubHost))
        });
    }
    group.finish();
    let mut group = c.benchmark_group("arrow-parse");
    group.throughput(Throughput::Elements(1));
    for (name, text) in SCRIPTS {
        group.bench_function(*name, |b| b.iter(|| parse(black_box(text))));
    }
    group.finish();
}

criterion_group!(benches, evaluate);
criterion_main!(benches);
