//! `fs`: a read-only view of the files the invocation was given (the instance's
//! `files`), never the peer's file system. `ls(dir)` lists the names directly under
//! `dir` (every top-level name for `""`, `"."` or `"/"`), `readFile(path)` returns a
//! file's text. `zip` and `tar` are not available in this build.

use std::collections::BTreeSet;
use std::rc::Rc;

use rquickjs::function::Opt;
use rquickjs::{Ctx, Exception, Object};

use super::method;
use crate::session::Session;

pub(super) fn module<'js>(ctx: &Ctx<'js>, session: &Rc<Session>) -> rquickjs::Result<Object<'js>> {
    let fs = Object::new(ctx.clone())?;
    let lister = Rc::clone(session);
    method(ctx, &fs, "ls", move |dir: Opt<String>| {
        list(lister.files.keys(), dir.0.as_deref().unwrap_or(""))
    })?;
    let reader = Rc::clone(session);
    method(ctx, &fs, "readFile", move |ctx: Ctx<'js>, path: String| {
        let key = normalise(&path);
        reader
            .files
            .iter()
            .find(|(name, _)| normalise(name) == key)
            .map(|(_, contents)| contents.clone())
            .ok_or_else(|| Exception::throw_message(&ctx, &format!("fs.readFile: no file {path}")))
    })?;
    for name in ["zip", "tar"] {
        method(ctx, &fs, name, move |ctx: Ctx<'js>| {
            Err::<(), _>(Exception::throw_message(
                &ctx,
                &format!("fs.{name} is not available in this build"),
            ))
        })?;
    }
    Ok(fs)
}

fn normalise(path: &str) -> &str {
    path.trim_start_matches("./").trim_matches('/')
}

/// The names directly under `dir` among `paths`, sorted, each once.
fn list<'a>(paths: impl Iterator<Item = &'a String>, dir: &str) -> Vec<String> {
    let dir = match normalise(dir) {
        "." => "",
        other => other,
    };
    let names: BTreeSet<String> = paths
        .filter_map(|path| {
            let path = normalise(path);
            let rest = if dir.is_empty() {
                path
            } else {
                path.strip_prefix(dir)?.strip_prefix('/')?
            };
            rest.split('/')
                .next()
                .filter(|n| !n.is_empty())
                .map(str::to_string)
        })
        .collect();
    names.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_lists_names_directly_under_a_directory() {
        let files: Vec<String> = [
            "app/config/a.json",
            "/app/config/b.json",
            "app/x/c",
            "top.txt",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(list(files.iter(), "/app/config"), ["a.json", "b.json"]);
        assert_eq!(list(files.iter(), "app"), ["config", "x"]);
        assert_eq!(list(files.iter(), "/"), ["app", "top.txt"]);
        assert!(list(files.iter(), "nowhere").is_empty());
    }
}
