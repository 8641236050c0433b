//! Fuzzes the MonkScript front end: any bytes are read as YAML, validated, and every
//! definition that parses is resolved. Nothing may panic, and every diagnostic must
//! carry a real position.
#![no_main]

use libfuzzer_sys::fuzz_target;
use monk_scripting::monkscript::resolve::resolve;
use monk_scripting::monkscript::validate::check_text;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let checked = check_text("fuzz.yaml", text);
    for d in &checked.diagnostics {
        assert!(d.line >= 1 && d.column >= 1, "diagnostic without position: {d}");
    }
    let store: std::collections::BTreeMap<String, _> = checked
        .files
        .iter()
        .flat_map(|f| f.definitions.iter().map(|d| (d.path.clone(), d.node.to_tree())))
        .collect();
    for path in store.keys() {
        let _ = resolve(path, &|p| store.get(p));
    }
});
