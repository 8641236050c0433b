//! The catalog as the API shows it, read from the applied state: the rows of `monk
//! list` (loaded definitions and the Hub's visible ones), of `monk hub list`, and
//! `monk hub info`. Pure functions of the state.

use monk_statemachine::{HubSource, Origin, State};

use crate::views::{HubDefinitionRow, HubKitRow, HubTemplateView, TemplateRow, LOCAL_REPOSITORY};

/// `monk list`: every loaded definition, then every Hub definition that lookups use
/// (not hidden by a loaded namespace nor held first by another source), by path.
pub fn template_rows(state: &State) -> Vec<TemplateRow> {
    let mut rows: Vec<TemplateRow> = state
        .templates()
        .values()
        .map(|t| TemplateRow {
            path: t.path.clone(),
            kind: t.kind.clone(),
            generation: t.generation,
            loaded_at_index: t.loaded_at_index,
            repository: LOCAL_REPOSITORY.into(),
            version: None,
        })
        .collect();
    for (name, source) in state.hub() {
        for (path, template) in &source.templates {
            if !used_from(state, path, name) {
                continue;
            }
            let kit = source.kits.get(&template.kit);
            rows.push(TemplateRow {
                path: path.clone(),
                kind: template.kind.clone(),
                generation: 0,
                loaded_at_index: kit.map_or(0, |k| k.published_at_index),
                repository: name.clone(),
                version: kit.and_then(|k| k.meta.version.clone()),
            });
        }
    }
    rows.sort_by(|a, b| a.path.cmp(&b.path).then(a.repository.cmp(&b.repository)));
    rows
}

/// Whether lookups of `path` use source `name`'s definition.
fn used_from(state: &State, path: &str, name: &str) -> bool {
    matches!(
        state.definition_with_origin(path),
        Some((_, _, Origin::Hub { source, .. })) if source == name
    )
}

/// `monk hub list`: every kit of every source.
pub fn kit_rows(state: &State) -> Vec<HubKitRow> {
    let mut rows = Vec::new();
    for (name, source) in state.hub() {
        for (kit_name, kit) in &source.kits {
            let definitions = kit
                .paths
                .iter()
                .filter_map(|path| {
                    let template = source.templates.get(path)?;
                    Some(HubDefinitionRow {
                        path: path.clone(),
                        kind: template.kind.clone(),
                        shadowed: !used_from(state, path, name),
                    })
                })
                .collect();
            rows.push(HubKitRow {
                source: name.clone(),
                commit: source.commit.clone(),
                kit: kit_name.clone(),
                meta: kit.meta.clone(),
                digest: kit.digest.clone(),
                published_at_index: kit.published_at_index,
                definitions,
            });
        }
    }
    rows
}

/// `monk hub info PATH`: the Hub definition at `path` (the one lookups use, else the
/// first source's), or `None` when no source holds it.
pub fn template_view(state: &State, path: &str) -> Option<HubTemplateView> {
    let (name, source): (&String, &HubSource) = state
        .hub()
        .iter()
        .find(|(name, _)| used_from(state, path, name))
        .or_else(|| {
            state
                .hub()
                .iter()
                .find(|(_, s)| s.templates.contains_key(path))
        })?;
    let template = source.templates.get(path)?;
    let kit = source.kits.get(&template.kit)?;
    let shadowed_by = match state.definition_with_origin(path) {
        Some((_, _, Origin::Local)) | None => Some(LOCAL_REPOSITORY.to_string()),
        Some((_, _, Origin::Hub { source, .. })) if source != name => Some(source.to_string()),
        Some(_) => None,
    };
    Some(HubTemplateView {
        path: path.into(),
        kind: template.kind.clone(),
        source: name.clone(),
        kit: template.kit.clone(),
        meta: kit.meta.clone(),
        commit: source.commit.clone(),
        digest: kit.digest.clone(),
        shadowed_by,
        definition: template.definition.clone(),
    })
}
