//! Property tests: inheritance resolution is deterministic and idempotent, the merge
//! rules hold on random trees, and no input makes the parser or validator panic.

use std::collections::BTreeMap;

use monk_scripting::monkscript::manifest;
use monk_scripting::monkscript::resolve::{merge, resolve};
use monk_scripting::monkscript::syntax::parse;
use monk_scripting::monkscript::validate::check_text;
use monk_scripting::tree::Tree;
use proptest::prelude::*;

fn scalar() -> impl Strategy<Value = Tree> {
    prop_oneof![
        Just(Tree::Null),
        any::<bool>().prop_map(Tree::Bool),
        (-1000i64..1000).prop_map(Tree::Int),
        "[a-z][a-z -]{0,8}".prop_map(Tree::Str),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,4}",
        Just("connections[override]".to_string()),
        Just("connections".to_string()),
        Just("depends[override]".to_string()),
        Just("affinity".to_string()),
    ]
}

fn tree() -> impl Strategy<Value = Tree> {
    scalar().prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Tree::Seq),
            prop::collection::vec((key(), inner), 0..6).prop_map(|entries| {
                let mut unique: Vec<(String, Tree)> = Vec::new();
                for (k, v) in entries {
                    if !unique.iter().any(|(seen, _)| *seen == k) {
                        unique.push((k, v));
                    }
                }
                Tree::Map(unique)
            }),
        ]
    })
}

fn definition() -> impl Strategy<Value = Tree> {
    prop::collection::vec((key(), tree()), 0..6).prop_map(|entries| {
        let mut unique: Vec<(String, Tree)> = Vec::new();
        for (k, v) in entries {
            if k != "inherits" && !unique.iter().any(|(seen, _)| *seen == k) {
                unique.push((k, v));
            }
        }
        Tree::Map(unique)
    })
}

fn with_inherits(tree: &Tree, parent: &str) -> Tree {
    let Tree::Map(entries) = tree else {
        return tree.clone();
    };
    let mut entries = entries.clone();
    entries.insert(0, ("inherits".into(), Tree::Str(parent.into())));
    Tree::Map(entries)
}

/// A store holding a chain `ns/d0 <- ns/d1 <- … <- ns/dN` (each inheriting the previous).
fn chain_store(definitions: &[Tree]) -> BTreeMap<String, Tree> {
    let mut store = BTreeMap::new();
    for (i, definition) in definitions.iter().enumerate() {
        let tree = if i == 0 {
            definition.clone()
        } else {
            with_inherits(definition, &format!("./d{}", i - 1))
        };
        store.insert(format!("ns/d{i}"), tree);
    }
    store
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn resolution_is_deterministic_and_idempotent(definitions in prop::collection::vec(definition(), 1..5)) {
        let store = chain_store(&definitions);
        let last = format!("ns/d{}", definitions.len() - 1);
        let once = resolve(&last, &|p| store.get(p)).expect("chain resolves");
        let again = resolve(&last, &|p| store.get(p)).expect("chain resolves");
        prop_assert_eq!(&once, &again);
        prop_assert!(once.get("inherits").is_none());
        let mut resolved_store = BTreeMap::new();
        resolved_store.insert("ns/resolved".to_string(), once.clone());
        let twice = resolve("ns/resolved", &|p| resolved_store.get(p)).expect("resolves");
        prop_assert_eq!(once, twice);
    }

    #[test]
    fn merging_is_idempotent(tree in definition()) {
        let resolved = {
            let mut store = BTreeMap::new();
            store.insert("ns/x".to_string(), tree);
            resolve("ns/x", &|p| store.get(p)).expect("resolves")
        };
        // Merging removes duplicate list items, so the first self-merge may shorten lists;
        // after that, merging again changes nothing.
        let once = merge(&resolved, &resolved);
        prop_assert_eq!(merge(&once, &resolved), once.clone());
        prop_assert_eq!(merge(&once, &once), once);
    }

    #[test]
    fn child_scalars_win_and_parent_keys_survive(parent in definition(), child in definition()) {
        let merged = merge(&parent, &child);
        let (Tree::Map(parent_entries), Tree::Map(child_entries)) = (&parent, &child) else { return Ok(()) };
        for (k, v) in child_entries {
            let is_scalar = !matches!(v, Tree::Map(_) | Tree::Seq(_));
            if is_scalar && !k.ends_with("[override]") && !child_entries.iter().any(|(o, _)| *o == format!("{k}[override]")) {
                prop_assert_eq!(merged.get(k), Some(v));
            }
        }
        for (k, _) in parent_entries {
            let base = k.trim_end_matches("[override]");
            let removed = child_entries.iter().any(|(o, v)| *o == format!("{base}[override]") && *v == Tree::Null);
            if !removed && !k.ends_with("[override]") {
                prop_assert!(merged.get(base).is_some(), "parent key {} lost", base);
            }
        }
    }

    #[test]
    fn yaml_written_by_a_serializer_reads_back_the_same(tree in tree()) {
        let text = serde_saphyr::to_string(&tree).expect("serializes");
        let parsed = parse(&text).map_err(|e| TestCaseError::fail(format!("{e:?} in {text:?}")))?;
        let back = parsed.documents.first().map(|d| d.to_tree()).unwrap_or(Tree::Null);
        prop_assert_eq!(back, tree);
    }

    #[test]
    fn manifest_lines_never_panic_and_keep_positions(text in "[A-Za-z_:#./ \t\n0-9-]{0,300}") {
        let (directives, diagnostics) = manifest::parse("MANIFEST", &text);
        for d in &directives {
            prop_assert!(manifest::DIRECTIVES.contains(&d.name.as_str()));
            prop_assert!(d.pos.line >= 1 && d.pos.col >= 1);
        }
        for d in &diagnostics {
            prop_assert!(d.line >= 1 && d.column >= 1 && d.is_error());
        }
    }

    #[test]
    fn random_text_never_panics(text in "[a-z:\\-\\[\\]{}<`'\"#&*!|>%@ \n\t0-9.,$]{0,200}") {
        let checked = check_text("random.yaml", &text);
        for d in &checked.diagnostics {
            prop_assert!(d.line >= 1 && d.column >= 1);
        }
    }

    #[test]
    fn random_yaml_shaped_text_never_panics(lines in prop::collection::vec(
        ("[ ]{0,6}", prop_oneof![Just("- "), Just(""), Just("? ")], "[a-z_\\[\\]<-]{1,10}", prop_oneof![Just(": "), Just(":"), Just(" ")], "[a-z0-9<\\-`${}\"' ]{0,12}"),
        0..30,
    )) {
        let mut text = String::from("namespace: fuzz\n");
        for (indent, marker, k, sep, v) in lines {
            text.push_str(&format!("{indent}{marker}{k}{sep}{v}\n"));
        }
        let checked = check_text("random.yaml", &text);
        for d in &checked.diagnostics {
            prop_assert!(d.line >= 1 && d.column >= 1 && !d.message.is_empty(), "{}", d);
        }
        let has_errors = checked.diagnostics.iter().any(|d| d.is_error());
        prop_assert!(has_errors || checked.files.len() == 1, "a clean document yields its model");
    }
}
