//! What `monk load` accepts, a peer accepts: every corpus file that loads without
//! errors, proposed as `monk load` proposes it, passes the peer's own check
//! (`monkscript::stored::check_proposed`), and a definition broken after loading does
//! not.

mod common;

use monk_scripting::monkscript::cli::load_definitions;
use monk_scripting::monkscript::stored::{check_proposed, Proposed};
use monk_scripting::tree::Tree;

#[test]
fn every_loadable_corpus_file_passes_the_peer_side_check() {
    let Some(root) = common::corpus_root("every_loadable_corpus_file_passes_the_peer_side_check")
    else {
        return;
    };
    let mut files = Vec::new();
    common::yaml_files(&root, &mut files);
    let (mut checked, mut refused) = (0, Vec::new());
    for file in files {
        let Ok((definitions, _)) = load_definitions(std::slice::from_ref(&file)) else {
            continue;
        };
        if definitions.is_empty() {
            continue;
        }
        let proposed: Vec<Proposed<'_>> = definitions
            .iter()
            .map(|d| Proposed {
                path: &d.path,
                kind: &d.kind,
                definition: &d.definition,
            })
            .collect();
        let errors = check_proposed(&proposed);
        checked += 1;
        if !errors.is_empty() {
            refused.push(format!("{}: {}", file.display(), errors[0]));
        }
    }
    assert!(checked > 1000, "only {checked} corpus files loaded");
    assert!(
        refused.is_empty(),
        "{} of {checked} loadable files refused by the peer:\n{}",
        refused.len(),
        refused[..refused.len().min(20)].join("\n")
    );
}

#[test]
fn a_definition_that_monk_load_would_refuse_is_refused() {
    let good = Tree::Map(vec![
        ("defines".into(), Tree::Str("runnable".into())),
        (
            "containers".into(),
            Tree::Map(vec![(
                "main".into(),
                Tree::Map(vec![("image".into(), Tree::Str("busybox".into()))]),
            )]),
        ),
    ]);
    let ok = [Proposed {
        path: "ns/web",
        kind: "runnable",
        definition: &good,
    }];
    assert!(check_proposed(&ok).is_empty(), "{:?}", check_proposed(&ok));
    let wrong_type = Tree::Map(vec![
        ("defines".into(), Tree::Str("runnable".into())),
        ("containers".into(), Tree::Str("all of them".into())),
    ]);
    let errors = check_proposed(&[Proposed {
        path: "ns/web",
        kind: "runnable",
        definition: &wrong_type,
    }]);
    assert!(!errors.is_empty(), "a section of the wrong type is refused");
    let wrong_kind = check_proposed(&[Proposed {
        path: "ns/web",
        kind: "group",
        definition: &good,
    }]);
    assert!(
        wrong_kind
            .iter()
            .any(|d| d.message.contains("proposed as a group")),
        "{wrong_kind:?}"
    );
    let bad_path = check_proposed(&[Proposed {
        path: "no-namespace",
        kind: "runnable",
        definition: &good,
    }]);
    assert!(!bad_path.is_empty());
    let bad_name = check_proposed(&[Proposed {
        path: "ns/Bad Name",
        kind: "runnable",
        definition: &good,
    }]);
    assert!(!bad_name.is_empty(), "a name monk load refuses is refused");
}
