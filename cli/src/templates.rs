//! Reading MonkScript files for `monk load`: each file's top-level entities become
//! definitions stored under `namespace/name`, exactly as written.

use std::path::Path;

use monk_scripting::tree::Tree;
use monk_statemachine::LoadedTemplate;

/// Reads one YAML file into the definitions it declares.
pub fn read_file(path: &Path) -> Result<Vec<LoadedTemplate>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let tree: Tree =
        serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let Tree::Map(entries) = tree else {
        return Err(format!(
            "{}:1:1: error: expected a map with `namespace:` and definitions",
            path.display()
        ));
    };
    let namespace = entries
        .iter()
        .find(|(k, _)| k == "namespace")
        .and_then(|(_, v)| v.as_str())
        .ok_or_else(|| format!("{}:1:1: error: missing `namespace:`", path.display()))?
        .trim_start_matches('/')
        .to_string();
    Ok(entries
        .into_iter()
        .filter(|(k, _)| k != "namespace")
        .map(|(name, definition)| {
            let kind = definition
                .get("defines")
                .and_then(Tree::as_str)
                .unwrap_or("abstract")
                .to_string();
            LoadedTemplate {
                path: format!("{namespace}/{name}"),
                kind,
                definition,
            }
        })
        .collect())
}
