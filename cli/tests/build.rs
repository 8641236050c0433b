//! Builds from source with a real `monkd` serving the cluster registry and the real
//! Docker engine: `monk up` of the fixture app (`fixtures/build-app`: a Containerfile
//! on the local busybox image serving a page with busybox httpd) builds it, pushes it
//! into the cluster registry, runs it, and its port answers; `monk up` again, with
//! only a file `.dockerignore` leaves out added, does not rebuild. From nothing, the
//! peer `monk up` starts serves a registry, so the same files build and run there. A build step that
//! fails, a missing context and a peer that serves no registry fail naming what and
//! where.

mod support;

use std::path::Path;

use support::docker::*;
use support::*;

/// The fixture app copied into `root`, publishing `port`: its `monk.yaml`.
fn fixture(root: &Path, port: u16) -> std::path::PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/build-app");
    let to = root.join("build-app");
    copy_tree(&from, &to);
    let file = to.join("monk.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("- 18080:8080"), "the fixture publishes 18080");
    std::fs::write(
        &file,
        text.replace("- 18080:8080", &format!("- {port}:8080")),
    )
    .unwrap();
    file
}

/// Removes the engine's copies of the images the registry port got, also when the
/// test fails.
struct Images(String);

impl Drop for Images {
    fn drop(&mut self) {
        let (_, ids) = docker(&[
            "images",
            "-q",
            "--filter",
            &format!("reference={}/*/*/*", self.0),
        ]);
        for id in ids.split_whitespace() {
            docker(&["rmi", "-f", id]);
        }
    }
}

/// The `(repository, tag)` rows of `monk images`.
fn images(peer: &Peer) -> Vec<(String, String)> {
    let rows = json(&peer.addr, &["images", "-o", "json"]);
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["repository"].as_str().unwrap().to_string(),
                r["tag"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn monk_up_builds_pushes_and_runs_and_an_unchanged_context_is_not_rebuilt() {
    if !engine_present() {
        return;
    }
    build_image();
    let root = tempfile::tempdir().unwrap();
    let registry = format!("127.0.0.1:{}", free_port());
    let peer = Peer::start_with(root.path(), "alpha", &["--registry-listen", &registry]);
    let cluster = format!("build-{}", std::process::id());
    let _containers = Cleanup(cluster.clone());
    let _images = Images(registry.clone());
    ok(&peer.addr, &["cluster", "new", "--name", &cluster]);
    let port = free_port();
    let file = fixture(root.path(), port);
    let file = file.to_str().unwrap();

    let o = peer.monk(&["up", file]);
    let out = succeeded(&o, "the first monk up");
    let progress = stderr(&o);
    assert!(
        progress.contains("Building registry.monk/buildtest/web/main:"),
        "{progress}"
    );
    assert!(
        progress.contains("COPY www/ /www/"),
        "the build's output: {progress}"
    );
    assert!(
        progress.contains("pushed registry.monk/buildtest/web/main:"),
        "{progress}"
    );
    assert!(
        out.contains("main (registry.monk/buildtest/web/main:"),
        "{out}"
    );
    wait_body(port, "hello from a built image");
    let first = images(&peer);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].0, "buildtest/web/main");
    assert!(
        first[0].1.len() == 32 && first[0].1.chars().all(|c| c.is_ascii_hexdigit()),
        "tagged by the context's hash: {first:?}"
    );

    // A file the context's .dockerignore leaves out: the same context, not rebuilt.
    let app = Path::new(file).parent().unwrap().join("app");
    std::fs::write(app.join("notes.tmp"), "scratch").unwrap();
    let o = peer.monk(&["up", file]);
    succeeded(&o, "the second monk up");
    let progress = stderr(&o);
    assert!(
        progress.contains("is in the registry: unchanged, not rebuilt"),
        "{progress}"
    );
    assert!(!progress.contains("Building"), "{progress}");
    assert_eq!(images(&peer), first);
    wait_body(port, "hello from a built image");

    // `monk build` of the same files: unchanged too, and says which image.
    let o = peer.monk(&["build", "-q", file]);
    let out = succeeded(&o, "monk build");
    assert!(out.contains("unchanged"), "{out}");
    assert!(
        out.contains(&format!("buildtest/web/main:{}", first[0].1)),
        "{out}"
    );

    // A failing step: non-zero, naming the `build` key and the step.
    std::fs::write(
        app.join("Containerfile"),
        "FROM monk-local/busybox:1\nRUN echo about to fail && exit 3\n",
    )
    .unwrap();
    let o = peer.monk(&["build", file]);
    assert!(!o.status.success(), "{}", stdout(&o));
    let text = stderr(&o);
    assert!(
        text.contains(&format!(
            "{file}:10:7: building registry.monk/buildtest/web/main:"
        )),
        "{text}"
    );
    assert!(text.contains("about to fail"), "the step's output: {text}");
    assert!(text.contains("non-zero code: 3"), "{text}");
    ok(&peer.addr, &["purge", "buildtest/web"]);
}

#[test]
fn missing_contexts_and_peers_without_a_registry_are_refused_by_name() {
    let root = tempfile::tempdir().unwrap();
    let file = fixture(root.path(), free_port());
    let text = std::fs::read_to_string(&file).unwrap();
    let missing = root.path().join("missing.yaml");
    std::fs::write(&missing, text.replace("./app", "./nowhere")).unwrap();
    // Offline: nothing is asked of a peer (none answers there).
    let o = monk("127.0.0.1:1", &["build", missing.to_str().unwrap()]);
    assert!(!o.status.success());
    let said = stderr(&o);
    assert!(
        said.contains(&format!("{}:10:7: the build context", missing.display()))
            && said.contains("nowhere"),
        "{said}"
    );

    let peer = Peer::start_with(root.path(), "alpha", &["--containers", "none"]);
    ok(&peer.addr, &["cluster", "new", "--name", "noreg"]);
    let o = peer.monk(&["build", file.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--registry-listen"), "{}", stderr(&o));
}

#[test]
fn monk_up_from_nothing_starts_a_peer_that_builds() {
    if !engine_present() {
        return;
    }
    build_image();
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let _peer = KillEmbedded(root.path().join("data.pid"));
    let cluster = format!("build-up-{}", std::process::id());
    let _containers = Cleanup(cluster.clone());
    let addr = format!("127.0.0.1:{}", free_port());
    let port = free_port();
    let file = fixture(root.path(), port);
    let monk_at = |args: &[&str]| {
        std::process::Command::new(monk_bin())
            .args(["--addr", &addr])
            .args(args)
            .env("XDG_CONFIG_HOME", monk_testkit::process::config_home(&addr))
            .env_remove("MONK_CREDENTIALS")
            .output()
            .expect("run monk")
    };
    let data_dir = data.to_str().unwrap();
    let o = monk_at(&[
        "up",
        file.to_str().unwrap(),
        "--data-dir",
        data_dir,
        "--cluster",
        &cluster,
    ]);
    succeeded(&o, "monk up from nothing");
    assert!(stderr(&o).contains("Started monkd"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("pushed registry.monk/buildtest/web/main:"),
        "{}",
        stderr(&o)
    );
    wait_body(port, "hello from a built image");
    let log = std::fs::read_to_string(root.path().join("data.log")).unwrap_or_default();
    let registry = log
        .split("serving the cluster registry")
        .nth(1)
        .and_then(|rest| rest.split("listen=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .map(String::from);
    let _images = Images(registry.unwrap_or_else(|| panic!("no registry in the log:\n{log}")));
    succeeded(
        &monk_at(&["down", "--all", "--data-dir", data_dir]),
        "monk down --all",
    );
}
