//! Property test: `runnable_spec` never panics, whatever tree it is given. Trees are
//! built from the keys a runnable uses and values that exercise every parser
//! (ports, paths, durations, sizes, modes, templates, scripts, cycles).

use std::collections::BTreeMap;

use monk_scripting::arrow::StubHost;
use monk_scripting::monkscript::runtime::runnable_spec;
use monk_scripting::tree::Tree;
use proptest::prelude::*;

const KEYS: &[&str] = &[
    "defines",
    "variables",
    "containers",
    "services",
    "files",
    "web",
    "db",
    "image",
    "image-tag",
    "ports",
    "paths",
    "environment",
    "bash",
    "cmd",
    "command",
    "entrypoint",
    "restart",
    "memory",
    "shm-size",
    "cpuquota",
    "stop-grace-period",
    "stop-signal",
    "ulimits",
    "labels",
    "privileged",
    "cap-add",
    "user",
    "workdir",
    "resources",
    "requests",
    "cpu",
    "container",
    "port",
    "host-port",
    "publish",
    "protocol",
    "path",
    "mode",
    "contents",
    "raw",
    "type",
    "value",
    "env",
    "required",
    "a",
    "b",
    "a_b",
];

const TEXTS: &[&str] = &[
    "nginx",
    "nginx:1.2",
    "x@sha256:ab",
    "80",
    "8080:80/udp",
    "1.2.3.4:1:2",
    "[::1]:5:5",
    "/a:/b:ro",
    "blobs://x:/y",
    "a:b",
    "30s",
    "1m30s",
    "512Mi",
    "1.5g",
    "0644",
    "644",
    "on-failure:2",
    "unless-stopped",
    "K=V",
    "=",
    "true",
    "int",
    "bool",
    "string",
    "<- $a",
    "<- $b 1 add",
    "<- $a_b",
    "<- `${a}:${b}`",
    "<- secret(\"s\")",
    "<- 1 0 div",
    "<- [1, 2]",
    "<- nil",
    "<- (",
    "{{ v \"a\" }}",
    "{{ if v \"b\" }}x{{ end }}",
    "{{ end",
    "{{ .Env.X }}",
    "nginx -g 'daemon off;'",
    "'open",
    "",
    "-",
    "web",
    "db",
    "custom",
];

fn leaf() -> impl Strategy<Value = Tree> {
    prop_oneof![
        Just(Tree::Null),
        any::<bool>().prop_map(Tree::Bool),
        prop_oneof![any::<i64>(), -2i64..70_000].prop_map(Tree::Int),
        Just(Tree::Float("0.5".into())),
        prop::sample::select(TEXTS).prop_map(|t| Tree::Str(t.to_string())),
    ]
}

fn tree() -> impl Strategy<Value = Tree> {
    leaf().prop_recursive(5, 60, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Tree::Seq),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..7).prop_map(|entries| {
                let mut unique: Vec<(String, Tree)> = Vec::new();
                for (k, v) in entries {
                    if !unique.iter().any(|(seen, _)| seen == k) {
                        unique.push((k.to_string(), v));
                    }
                }
                Tree::Map(unique)
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn runnable_spec_never_panics(
        definition in tree(),
        overrides in prop::collection::btree_map(
            prop::sample::select(KEYS).prop_map(str::to_string),
            prop::sample::select(TEXTS).prop_map(str::to_string),
            0..3,
        ),
    ) {
        let overrides: BTreeMap<String, String> = overrides;
        let _ = runnable_spec("ns/x", &definition, &overrides, &mut StubHost);
    }
}
