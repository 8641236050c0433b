//! `parser`: `jsonquery(json, path)` and `jsonqueryAll(json, path)` over a JSON text (or
//! a value), with a subset of XPath: `/a/b` from the root, `//b` at any depth, `*` any
//! child, `.` the node itself, `name[n]` the n-th (1-based) match of a step. An array
//! under a key counts as that key repeated, as XML would write it (`/items/name` is the
//! name of every item). `jsonquery` returns the first match or `null`; `jsonqueryAll`
//! every match. `xmlquery` and `htmlquery` are not available in this build (they need an
//! XML/HTML parser; the kits that use them call cloud APIs this build does not offer).

use rquickjs::{Ctx, Exception, Object, Value};
use serde_json::Value as Json;

use super::method;
use crate::convert;

pub(super) fn module<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Object<'js>> {
    let parser = Object::new(ctx.clone())?;
    method(
        ctx,
        &parser,
        "jsonquery",
        |ctx: Ctx<'js>, doc: Value<'js>, path: String| {
            let doc = document(&ctx, doc)?;
            let found = query(&doc, &path).map_err(|e| Exception::throw_type(&ctx, &e))?;
            match found.first() {
                Some(first) => convert::to_js(&ctx, first),
                None => Ok(Value::new_null(ctx.clone())),
            }
        },
    )?;
    method(
        ctx,
        &parser,
        "jsonqueryAll",
        |ctx: Ctx<'js>, doc: Value<'js>, path: String| {
            let doc = document(&ctx, doc)?;
            let found = query(&doc, &path).map_err(|e| Exception::throw_type(&ctx, &e))?;
            convert::to_js(&ctx, &Json::Array(found.into_iter().cloned().collect()))
        },
    )?;
    for name in ["xmlquery", "htmlquery"] {
        method(ctx, &parser, name, move |ctx: Ctx<'js>| {
            Err::<(), _>(Exception::throw_message(
                &ctx,
                &format!("parser.{name} is not available in this build"),
            ))
        })?;
    }
    Ok(parser)
}

fn document<'js>(ctx: &Ctx<'js>, doc: Value<'js>) -> rquickjs::Result<Json> {
    if let Some(text) = doc.as_string() {
        let text = text.to_string()?;
        return serde_json::from_str(&text).map_err(|e| {
            Exception::throw_syntax(ctx, &format!("parser.jsonquery: not JSON: {e}"))
        });
    }
    Ok(convert::from_js(ctx, doc)?.unwrap_or(Json::Null))
}

struct Step<'q> {
    descendant: bool,
    name: &'q str,
    index: Option<usize>,
}

fn parse(path: &str) -> Result<Vec<Step<'_>>, String> {
    let mut steps = Vec::new();
    let mut rest = path.trim();
    while !rest.is_empty() {
        let descendant = rest.starts_with("//");
        rest = rest.trim_start_matches('/');
        let end = rest.find('/').unwrap_or(rest.len());
        let (step, tail) = rest.split_at(end);
        rest = tail;
        let (name, index) = match step.split_once('[') {
            None => (step, None),
            Some((name, index)) => {
                let n: usize = index
                    .strip_suffix(']')
                    .and_then(|n| n.trim().parse().ok())
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| {
                        format!(
                            "parser.jsonquery: bad step {step:?} in {path:?} (only [n], n >= 1)"
                        )
                    })?;
                (name, Some(n))
            }
        };
        if name.is_empty() {
            return Err(format!("parser.jsonquery: empty step in {path:?}"));
        }
        steps.push(Step {
            descendant,
            name,
            index,
        });
    }
    Ok(steps)
}

/// The children of a node, each with the name it is matched by.
fn children(node: &Json) -> Vec<(Option<&str>, &Json)> {
    match node {
        Json::Object(map) => map
            .iter()
            .flat_map(|(key, value)| match value {
                Json::Array(items) => items
                    .iter()
                    .map(|item| (Some(key.as_str()), item))
                    .collect(),
                other => vec![(Some(key.as_str()), other)],
            })
            .collect(),
        Json::Array(items) => items.iter().map(|item| (None, item)).collect(),
        _ => Vec::new(),
    }
}

fn descendants<'a>(node: &'a Json, out: &mut Vec<(Option<&'a str>, &'a Json)>) {
    for (name, child) in children(node) {
        out.push((name, child));
        descendants(child, out);
    }
}

fn query<'a>(doc: &'a Json, path: &str) -> Result<Vec<&'a Json>, String> {
    let mut current = vec![doc];
    for step in parse(path)? {
        let mut next = Vec::new();
        for node in current {
            let candidates = if step.name == "." {
                vec![(None, node)]
            } else if step.descendant {
                let mut all = Vec::new();
                descendants(node, &mut all);
                all
            } else {
                children(node)
            };
            let matched = candidates
                .into_iter()
                .filter(|(name, _)| {
                    step.name == "." || step.name == "*" || *name == Some(step.name)
                })
                .map(|(_, value)| value);
            match step.index {
                Some(n) => next.extend(matched.skip(n - 1).take(1)),
                None => next.extend(matched),
            }
        }
        current = next;
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_select_like_xpath_over_json() {
        let doc = json!({"items": [{"name": "a", "id": 1}, {"name": "b", "id": 2}], "meta": {"next": {"name": "c"}}});
        let names = |path: &str| {
            query(&doc, path).map(|found| found.into_iter().cloned().collect::<Vec<_>>())
        };
        assert_eq!(names("/items/name"), Ok(vec![json!("a"), json!("b")]));
        assert_eq!(names("/items[2]/id"), Ok(vec![json!(2)]));
        assert_eq!(
            names("//name"),
            Ok(vec![json!("a"), json!("b"), json!("c")])
        );
        assert_eq!(names("meta/*/name"), Ok(vec![json!("c")]));
        assert_eq!(names("/missing"), Ok(vec![]));
        assert!(names("/items[0]").is_err());
    }
}
