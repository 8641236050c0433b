//! Images built from `build:` (`monk build`, and what `monk up` and `monk load` do
//! before they load): each container's context directory is read here, on the user's
//! machine, honouring its `.dockerignore`, into a canonical tar (paths sorted, owners
//! and times zeroed: only the contents, the modes and the Dockerfile's name count);
//! its SHA-256 is the image's tag. When the cluster registry's catalog already has
//! `registry.monk/NAME:TAG`, nothing is sent; otherwise the tar goes to the peer over
//! `BuildImage`, which builds and pushes it, and its output is printed here. The
//! loaded definition then names the image (`image: registry.monk/NAME`,
//! `image-tag: TAG`), so every peer that runs it pulls the same thing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use monk_node::registry::build::BUILD_CONTEXT_BYTES_MAX;
use monk_node::registry::CLUSTER_REGISTRY_HOST;
use monk_node::MonkClient;
use monk_scripting::monkscript::build::{repository_of, BuildSite};
use monk_scripting::tree::Tree;
use monk_statemachine::LoadedTemplate;
use sha2::{Digest, Sha256};

use crate::dockerignore::Ignore;
use crate::up::note;
use crate::{connect, json, table, Failure, Outcome, Output, OutputArg};

/// Hex digits of the context's SHA-256 kept as the image's tag: 128 bits, so two
/// different contexts never share a tag, short enough to read in `monk images`.
const TAG_HEX_DIGITS: usize = 32;

/// The Dockerfiles looked for, in order, when `build` names none.
const DEFAULT_DOCKERFILES: [&str; 2] = ["Containerfile", "Dockerfile"];

/// `monk build`.
#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// MonkScript files, directories or MANIFESTs: every container with `build:` (and
    /// no `image:`) in them is built and pushed into the cluster registry.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print no build output, only the result.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    out: OutputArg,
}

/// A context read from disk, ready to send.
#[derive(Debug)]
pub struct Context {
    pub site: BuildSite,
    /// The directory, as found from the YAML file.
    pub dir: PathBuf,
    /// The Dockerfile's path inside the context.
    pub dockerfile: String,
    pub tar: Vec<u8>,
    pub files: usize,
    /// The repository in the cluster registry and the tag (the context's hash).
    pub repository: String,
    pub tag: String,
}

/// What became of one build.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Built {
    pub path: String,
    pub container: String,
    /// `registry.monk/NAME`.
    pub image: String,
    pub tag: String,
    /// `built`, or `unchanged` when the catalog had it.
    pub status: &'static str,
    /// The pushed manifest's digest (when built here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// Reads every site's context; the first problem fails, naming the `build` key.
pub fn read_contexts(sites: &[BuildSite]) -> Result<Vec<Context>, Failure> {
    sites.iter().map(read_context).collect()
}

fn read_context(site: &BuildSite) -> Result<Context, Failure> {
    let at = site.at();
    let base = Path::new(&site.file)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let dir = base.join(site.context.trim_start_matches("./"));
    if !dir.is_dir() {
        return Err(Failure::failed(format!(
            "{at}: the build context {} is not a directory",
            dir.display()
        )));
    }
    let dockerfile = match &site.dockerfile {
        Some(named) => {
            let named = named.trim_start_matches("./").to_string();
            let inside = dir
                .join(&named)
                .canonicalize()
                .ok()
                .zip(dir.canonicalize().ok())
                .is_some_and(|(file, root)| file.starts_with(root));
            if !dir.join(&named).is_file() || !inside {
                return Err(Failure::failed(format!(
                    "{at}: no file {named} in the build context {}",
                    dir.display()
                )));
            }
            named
        }
        None => DEFAULT_DOCKERFILES
            .iter()
            .find(|name| dir.join(name).is_file())
            .map(|name| name.to_string())
            .ok_or_else(|| {
                Failure::failed(format!(
                    "{at}: no Containerfile or Dockerfile in the build context {} (name one with `dockerfile:`)",
                    dir.display()
                ))
            })?,
    };
    let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
        Ok(text) => Ignore::parse(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ignore::default(),
        Err(e) => {
            return Err(Failure::failed(format!(
                "{at}: cannot read {}: {e}",
                dir.join(".dockerignore").display()
            )))
        }
    };
    let (tar, files) = canonical_tar(&dir, &ignore, &dockerfile)
        .map_err(|e| Failure::failed(format!("{at}: build context {}: {e}", dir.display())))?;
    let tag = tag_of(&tar, &dockerfile);
    Ok(Context {
        repository: repository_of(&site.path, &site.container),
        site: site.clone(),
        dir,
        dockerfile,
        tar,
        files,
        tag,
    })
}

/// The tag of a context: the SHA-256 of the Dockerfile's name and the canonical tar.
pub fn tag_of(tar: &[u8], dockerfile: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(dockerfile.as_bytes());
    hash.update([0]);
    hash.update(tar);
    let hex = hex::encode(hash.finalize());
    hex[..TAG_HEX_DIGITS].to_string()
}

/// One entry of a context, found by the walk.
enum Entry {
    Dir { mode: u32 },
    File { path: PathBuf, mode: u32, size: u64 },
    Link { target: PathBuf },
}

/// The files of `root` that `ignore` keeps (the Dockerfile always), as a tar with
/// sorted paths, zero owners and times, and permission bits kept; and how many
/// files it holds. Fails past [`BUILD_CONTEXT_BYTES_MAX`].
pub fn canonical_tar(
    root: &Path,
    ignore: &Ignore,
    dockerfile: &str,
) -> Result<(Vec<u8>, usize), String> {
    let mut entries: Vec<(String, Entry)> = Vec::new();
    walk(root, "", ignore, dockerfile, &mut entries)?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let total: u64 = entries
        .iter()
        .map(|(_, e)| match e {
            Entry::File { size, .. } => *size,
            _ => 0,
        })
        .sum();
    if total > BUILD_CONTEXT_BYTES_MAX {
        return Err(format!(
            "{} MiB of files, more than the {} MiB a build context may hold: list what the build does not need in .dockerignore",
            total >> 20,
            BUILD_CONTEXT_BYTES_MAX >> 20
        ));
    }
    let mut builder = tar::Builder::new(Vec::new());
    let mut files = 0;
    for (name, entry) in &entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        let written = match entry {
            Entry::Dir { mode } => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                header.set_size(0);
                builder.append_data(&mut header, format!("{name}/"), std::io::empty())
            }
            Entry::File { path, mode, .. } => {
                let bytes = std::fs::read(path).map_err(|e| format!("cannot read {name}: {e}"))?;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_size(bytes.len() as u64);
                files += 1;
                builder.append_data(&mut header, name, bytes.as_slice())
            }
            Entry::Link { target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_link(&mut header, name, target)
            }
        };
        written.map_err(|e| format!("cannot archive {name}: {e}"))?;
    }
    let tar = builder
        .into_inner()
        .map_err(|e| format!("cannot finish the archive: {e}"))?;
    // The peer counts the archive's bytes, headers and padding included.
    if tar.len() as u64 > BUILD_CONTEXT_BYTES_MAX {
        return Err(format!(
            "the context's archive is {} MiB, more than the {} MiB a build context may hold: list what the build does not need in .dockerignore",
            tar.len() >> 20,
            BUILD_CONTEXT_BYTES_MAX >> 20
        ));
    }
    Ok((tar, files))
}

/// Collects the entries under `dir` (`prefix` is its path inside the context).
fn walk(
    dir: &Path,
    prefix: &str,
    ignore: &Ignore,
    dockerfile: &str,
    out: &mut Vec<(String, Entry)>,
) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let listing = std::fs::read_dir(dir).map_err(|e| format!("cannot list {prefix:?}: {e}"))?;
    for item in listing {
        let item = item.map_err(|e| format!("cannot list {prefix:?}: {e}"))?;
        let name = format!("{prefix}{}", item.file_name().to_string_lossy());
        let meta = item
            .path()
            .symlink_metadata()
            .map_err(|e| format!("cannot read {name}: {e}"))?;
        let excluded = ignore.excludes(&name) && name != dockerfile;
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            // An excluded directory is still walked when an exception may keep
            // something under it.
            if !excluded {
                out.push((name.clone(), Entry::Dir { mode }));
            }
            if !excluded || ignore.has_exceptions() || dockerfile.starts_with(&format!("{name}/")) {
                walk(&item.path(), &format!("{name}/"), ignore, dockerfile, out)?;
            }
        } else if excluded {
            continue;
        } else if meta.is_file() {
            out.push((
                name,
                Entry::File {
                    path: item.path(),
                    mode,
                    size: meta.len(),
                },
            ));
        } else if meta.file_type().is_symlink() {
            let target =
                std::fs::read_link(item.path()).map_err(|e| format!("cannot read {name}: {e}"))?;
            out.push((name, Entry::Link { target }));
        }
    }
    Ok(())
}

/// Builds what the catalog lacks, printing the builds' output on stderr unless
/// `quiet`; what became of each context, in order.
pub async fn build_all(
    client: &mut MonkClient,
    contexts: Vec<Context>,
    quiet: bool,
) -> Result<Vec<Built>, Failure> {
    if contexts.is_empty() {
        return Ok(Vec::new());
    }
    let mut present: BTreeSet<(String, String)> = client
        .images(false)
        .await?
        .into_iter()
        .map(|row| (row.repository, row.tag))
        .collect();
    let mut done = Vec::new();
    for context in contexts {
        let image = format!("{CLUSTER_REGISTRY_HOST}/{}", context.repository);
        let key = (context.repository.clone(), context.tag.clone());
        let mut built = Built {
            path: context.site.path.clone(),
            container: context.site.container.clone(),
            image: image.clone(),
            tag: context.tag.clone(),
            status: "unchanged",
            digest: None,
        };
        if present.contains(&key) {
            note(
                quiet,
                &format!(
                    "{} {}: {image}:{} is in the registry: unchanged, not rebuilt",
                    context.site.path, context.site.container, context.tag
                ),
            );
            done.push(built);
            continue;
        }
        note(
            quiet,
            &format!(
                "Building {image}:{} from {} ({} files, {} KiB, {})",
                context.tag,
                context.dir.display(),
                context.files,
                context.tar.len().div_ceil(1024),
                context.dockerfile
            ),
        );
        let at = context.site.at();
        let failed = |message: String| {
            Failure::failed(format!(
                "{at}: building {image}:{} failed: {message}",
                context.tag
            ))
        };
        let mut events = client
            .build_image(
                &context.repository,
                &context.tag,
                &context.dockerfile,
                context.tar,
            )
            .await
            .map_err(|e| failed(e.message))?;
        loop {
            match events.message().await {
                Ok(Some(event)) => {
                    note(quiet, &format!("  {}", event.line));
                    if !event.digest.is_empty() {
                        built.digest = Some(event.digest);
                    }
                }
                Ok(None) => break,
                Err(status) => return Err(failed(status.message().to_string())),
            }
        }
        if built.digest.is_none() {
            return Err(failed(
                "the peer ended the build without a pushed image".into(),
            ));
        }
        built.status = "built";
        present.insert(key);
        done.push(built);
    }
    Ok(done)
}

/// Writes each build's image into the definitions: `image: registry.monk/NAME` and
/// `image-tag: TAG` in the container that had `build:`.
pub fn resolve_images(templates: &mut [LoadedTemplate], built: &[Built]) {
    for b in built {
        let Some(template) = templates.iter_mut().find(|t| t.path == b.path) else {
            continue;
        };
        let Some(Tree::Map(containers)) = map_get(&mut template.definition, "containers") else {
            continue;
        };
        let Some((_, container @ Tree::Map(_))) =
            containers.iter_mut().find(|(name, _)| *name == b.container)
        else {
            continue;
        };
        map_set(container, "image", Tree::Str(b.image.clone()));
        map_set(container, "image-tag", Tree::Str(b.tag.clone()));
    }
}

fn map_get<'a>(tree: &'a mut Tree, key: &str) -> Option<&'a mut Tree> {
    match tree {
        Tree::Map(entries) => entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
        _ => None,
    }
}

fn map_set(tree: &mut Tree, key: &str, value: Tree) {
    if let Tree::Map(entries) = tree {
        match entries.iter_mut().find(|(k, _)| k == key) {
            Some((_, slot)) => *slot = value,
            None => entries.push((key.to_string(), value)),
        }
    }
}

/// `monk build FILES`: builds (or finds unchanged) every `build:` in the files; loads
/// nothing.
pub async fn run(addr: &str, args: BuildArgs) -> Outcome {
    let (_, sites) = crate::read_definitions_and_builds(&args.files)?;
    if sites.is_empty() {
        return Err(Failure::failed(
            "the files have no container with `build:` (and no `image:`): nothing to build",
        ));
    }
    let contexts = read_contexts(&sites)?;
    let mut client = connect(addr).await?;
    let built = build_all(&mut client, contexts, args.quiet).await?;
    if args.out.output == Output::Json {
        return json(&built);
    }
    let rows: Vec<Vec<String>> = built
        .iter()
        .map(|b| {
            vec![
                b.path.clone(),
                b.container.clone(),
                format!("{}:{}", b.image, b.tag),
                b.status.to_string(),
            ]
        })
        .collect();
    Ok(table::render(
        &["PATH", "CONTAINER", "IMAGE", "STATUS"],
        &rows,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(root: &Path, name: &str, text: &str) {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn names(tar: &[u8]) -> Vec<String> {
        tar::Archive::new(tar)
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn the_tag_depends_on_contents_and_modes_only() {
        let one = tempfile::tempdir().unwrap();
        let two = tempfile::tempdir().unwrap();
        // Written in different orders, at different times.
        for (root, order) in [
            (one.path(), ["b.txt", "a/c.txt"]),
            (two.path(), ["a/c.txt", "b.txt"]),
        ] {
            for name in order {
                write(root, name, name);
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            write(root, "Containerfile", "FROM scratch\n");
        }
        let tag = |root: &Path| {
            let (tar, _) = canonical_tar(root, &Ignore::default(), "Containerfile").unwrap();
            tag_of(&tar, "Containerfile")
        };
        assert_eq!(tag(one.path()), tag(two.path()));
        assert_eq!(tag(one.path()).len(), TAG_HEX_DIGITS);
        let before = tag(one.path());
        write(one.path(), "b.txt", "changed");
        assert_ne!(tag(one.path()), before, "a changed file changes the tag");
        write(one.path(), "b.txt", "b.txt");
        assert_eq!(tag(one.path()), before);
        let file = one.path().join("b.txt");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_ne!(tag(one.path()), before, "a changed mode changes the tag");
        let (tar, _) = canonical_tar(one.path(), &Ignore::default(), "Containerfile").unwrap();
        assert_ne!(tag_of(&tar, "Containerfile"), tag_of(&tar, "Dockerfile"));
    }

    #[test]
    fn dockerignore_leaves_files_out_but_never_the_dockerfile() {
        let root = tempfile::tempdir().unwrap();
        for name in [
            "Containerfile",
            "www/index.html",
            "node_modules/x/y.js",
            "debug.log",
            "keep.log",
        ] {
            write(root.path(), name, "x");
        }
        let ignore = Ignore::parse("node_modules\n*.log\n!keep.log\nContainerfile\n");
        let (tar, files) = canonical_tar(root.path(), &ignore, "Containerfile").unwrap();
        assert_eq!(
            names(&tar),
            ["Containerfile", "keep.log", "www/", "www/index.html"]
        );
        assert_eq!(files, 3);
        let before = tag_of(&tar, "Containerfile");
        write(root.path(), "node_modules/x/z.js", "new");
        write(root.path(), "other.log", "new");
        let (tar, _) = canonical_tar(root.path(), &ignore, "Containerfile").unwrap();
        assert_eq!(
            tag_of(&tar, "Containerfile"),
            before,
            "ignored files do not count"
        );
    }

    fn site(file: &Path, context: &str, dockerfile: Option<&str>) -> BuildSite {
        BuildSite {
            path: "demo/web".into(),
            container: "main".into(),
            file: file.display().to_string(),
            pos: monk_scripting::monkscript::diagnostic::Pos::new(6, 7),
            context: context.into(),
            dockerfile: dockerfile.map(String::from),
        }
    }

    #[test]
    fn missing_contexts_and_dockerfiles_name_the_build_key() {
        let root = tempfile::tempdir().unwrap();
        let yaml = root.path().join("app.yaml");
        write(root.path(), "app/main.sh", "echo");
        let at = format!("{}:6:7", yaml.display());
        let e = read_context(&site(&yaml, "nowhere", None)).unwrap_err();
        assert!(
            e.reason.starts_with(&at) && e.reason.contains("nowhere"),
            "{}",
            e.reason
        );
        let e = read_context(&site(&yaml, "app", None)).unwrap_err();
        assert!(
            e.reason.starts_with(&at) && e.reason.contains("no Containerfile or Dockerfile"),
            "{}",
            e.reason
        );
        let e = read_context(&site(&yaml, "app", Some("Other"))).unwrap_err();
        assert!(e.reason.contains("no file Other"), "{}", e.reason);
        write(root.path(), "outside", "FROM scratch");
        let e = read_context(&site(&yaml, "app", Some("../outside"))).unwrap_err();
        assert!(e.reason.contains("no file ../outside"), "{}", e.reason);
        write(root.path(), "app/Dockerfile", "FROM scratch");
        let context = read_context(&site(&yaml, "./app", None)).unwrap();
        assert_eq!(context.dockerfile, "Dockerfile");
        assert_eq!(context.repository, "demo/web/main");
        assert_eq!(context.files, 2);
    }

    #[test]
    fn built_images_are_written_into_the_container() {
        let mut templates = vec![LoadedTemplate {
            path: "demo/web".into(),
            kind: "runnable".into(),
            definition: Tree::Map(vec![(
                "containers".into(),
                Tree::Map(vec![(
                    "main".into(),
                    Tree::Map(vec![("build".into(), Tree::Str("./app".into()))]),
                )]),
            )]),
        }];
        resolve_images(
            &mut templates,
            &[Built {
                path: "demo/web".into(),
                container: "main".into(),
                image: "registry.monk/demo/web/main".into(),
                tag: "abc".into(),
                status: "built",
                digest: None,
            }],
        );
        let container = templates[0]
            .definition
            .get("containers")
            .unwrap()
            .get("main")
            .unwrap();
        assert_eq!(
            container.get("image"),
            Some(&Tree::Str("registry.monk/demo/web/main".into()))
        );
        assert_eq!(container.get("image-tag"), Some(&Tree::Str("abc".into())));
    }
}
