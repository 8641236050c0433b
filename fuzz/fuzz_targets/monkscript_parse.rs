//! Fuzzes the MonkScript front end: any bytes are read as YAML, validated, every
//! definition is resolved, read into its typed struct, and cross-checked. Nothing may
//! panic, and every diagnostic must carry a real position.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use monk_scripting::monkscript::references::reference_diagnostics;
use monk_scripting::monkscript::resolve::resolve;
use monk_scripting::monkscript::typed::TypedDefinition;
use monk_scripting::monkscript::validate::check_text;
use monk_scripting::tree::Tree;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let checked = check_text("fuzz.yaml", text);
    let store: BTreeMap<String, Tree> = checked
        .files
        .iter()
        .flat_map(|f| f.definitions.iter().map(|d| (d.path.clone(), d.node.to_tree())))
        .collect();
    for path in store.keys() {
        if let Ok(resolved) = resolve(path, &|p| store.get(p)) {
            let _typed = TypedDefinition::from_tree(path, &resolved);
        }
    }
    let candidates: Vec<&str> = store.keys().map(String::as_str).collect();
    let references = reference_diagnostics(&checked.files, &|p| store.get(p), &candidates);
    for d in checked.diagnostics.iter().chain(references.iter()) {
        assert!(d.line >= 1 && d.column >= 1, "diagnostic without position: {d}");
    }
});
