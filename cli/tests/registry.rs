//! The cluster registry with real `monkd` peers and the real `docker` client: a locally
//! built image (busybox-static and a file unique to the run, so no layer exists
//! anywhere else) pushed to one peer and pulled back with the same digest; pulled
//! through a second peer's registry port, which fetches the blobs from the first over
//! the peer channel; the catalog and blobs after a restart; `monk images` and
//! `monk images rm`, after which every peer deletes the blobs. And an upload whose
//! bytes do not hash to the digest it names is refused with `DIGEST_INVALID`, leaving
//! nothing stored. A runnable naming `registry.monk/app`, placed on a peer that never
//! held the image, runs from it. And pull credentials (`monk registry add`): a
//! runnable whose image sits behind a registry demanding HTTP Basic authentication (a
//! proxy in front of a peer's registry port) fails naming the registry and why while
//! its credential is missing, its secret unset or wrong, and runs once it is right.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::docker::{docker, engine_present, Cleanup};
use support::*;

/// A peer serving the registry on a free loopback port, with `extra` flags: the peer
/// and the port.
fn registry_peer(root: &Path, name: &str, extra: &[&str]) -> (Peer, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut flags = vec!["--registry-listen", listen.as_str()];
    flags.extend_from_slice(extra);
    (Peer::start_with(root, name, &flags), port)
}

/// A run's unique suffix (tests of one process run in parallel).
fn run_id() -> String {
    format!("{}-{}", std::process::id(), free_port())
}

/// Cluster `cluster` of alpha and beta, each serving the registry; their ports.
fn two_peers(root: &Path, cluster: &str, extra: &[&str]) -> ((Peer, u16), (Peer, u16)) {
    let (alpha, port1) = registry_peer(root, "alpha", extra);
    ok(&alpha.addr, &["cluster", "new", "--name", cluster]);
    let (beta, port2) = registry_peer(root, "beta", extra);
    let token = ok(&alpha.addr, &["cluster", "token"]).trim().to_string();
    ok(&beta.addr, &["cluster", "join", "--token", &token]);
    ((alpha, port1), (beta, port2))
}

/// One HTTP/1.1 exchange: the status, the headers (lowercase names) and the body.
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, Vec<(String, String)>, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Whether `condition` holds within `limit` (polled every 200 ms).
fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    condition()
}

/// Blob files a peer holds.
fn blobs(peer: &Peer) -> Vec<String> {
    let dir = peer.data_dir.join("registry/blobs/sha256");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Builds `tag` from scratch: busybox-static and a file with `unique` in it, in one
/// layer, so no engine or peer holds any of its blobs before (a layer of busybox alone
/// would be shared with other tests' images, and an engine skips a layer it has).
fn build_unique_image(tag: &str, unique: &str) {
    let dir = tempfile::tempdir().unwrap();
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox-static is installed");
    std::fs::create_dir_all(dir.path().join("root/bin")).unwrap();
    std::fs::copy(busybox, dir.path().join("root/bin/busybox")).unwrap();
    std::fs::write(dir.path().join("root/unique.txt"), unique).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY root/ /\nCMD [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox cat /unique.txt; exec /bin/busybox sleep 600\"]\n",
    )
    .unwrap();
    let status = std::process::Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(dir.path())
        .env("DOCKER_BUILDKIT", "0")
        .status()
        .unwrap();
    assert!(status.success(), "docker build of {tag} failed");
}

/// The `sha256:` digest a `docker push` or `docker pull` printed.
fn printed_digest(output: &str) -> String {
    output
        .split_whitespace()
        .find(|w| w.starts_with("sha256:") && w.len() == 71)
        .unwrap_or_else(|| panic!("no digest in {output}"))
        .to_string()
}

/// Builds `local` with `unique` in it, pushes it as `at_registry` and removes both
/// tags from the engine, so only the registry holds the image.
fn push_only_to_registry(local: &str, at_registry: &str, unique: &str) {
    build_unique_image(local, &format!("{unique}\n"));
    assert!(docker(&["tag", local, at_registry]).0);
    let (pushed, text) = docker(&["push", at_registry]);
    assert!(pushed, "docker push failed: {text}");
    for tag in [at_registry, local] {
        assert!(docker(&["rmi", tag]).0);
    }
}

/// Removes the test's image tags, also when the test fails.
struct Images(Vec<String>);

impl Drop for Images {
    fn drop(&mut self) {
        for tag in &self.0 {
            docker(&["rmi", "-f", tag]);
        }
    }
}

#[test]
fn docker_push_and_pull_through_two_peers_survive_restart_and_removal() {
    if !engine_present() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let run = run_id();
    let ((mut alpha, port1), (beta, port2)) = two_peers(
        root.path(),
        &format!("reg-{run}"),
        &["--containers", "none"],
    );

    let local = format!("monk-test/registry-{run}:1");
    let at_alpha = format!("127.0.0.1:{port1}/app:1");
    let at_beta = format!("127.0.0.1:{port2}/app:1");
    let _images = Images(vec![local.clone(), at_alpha.clone(), at_beta.clone()]);
    build_unique_image(&local, &format!("registry test {run}\n"));
    let (tagged, text) = docker(&["tag", &local, &at_alpha]);
    assert!(tagged, "{text}");
    let (pushed, text) = docker(&["push", &at_alpha]);
    assert!(pushed, "docker push failed: {text}\n{}", alpha.log_text());
    let digest = printed_digest(&text);

    // Every peer lists it, held by the peer it was pushed to.
    let rows = json(&beta.addr, &["images", "-o", "json"]);
    let row = &rows[0];
    assert_eq!(row["repository"], "app", "{rows}");
    assert_eq!(row["tag"], "1", "{rows}");
    assert_eq!(row["digest"], digest.as_str(), "{rows}");
    assert_eq!(row["holders"], serde_json::json!([1]), "{rows}");
    let listed = ok(&alpha.addr, &["images"]);
    assert!(
        listed.contains("app") && listed.contains(&digest[..19]),
        "{listed}"
    );
    let held_by_alpha = blobs(&alpha);
    assert_eq!(
        held_by_alpha.len(),
        2,
        "a config and a layer: {held_by_alpha:?}"
    );
    assert!(blobs(&beta).is_empty());

    // Gone from the engine, pulled back from alpha: the same digest.
    for tag in [&at_alpha, &local] {
        let (removed, text) = docker(&["rmi", tag]);
        assert!(removed, "{text}");
    }
    let (pulled, text) = docker(&["pull", &at_alpha]);
    assert!(pulled, "docker pull from alpha failed: {text}");
    assert_eq!(printed_digest(&text), digest);

    // Through beta's port: beta fetches the blobs from alpha over the peer channel.
    let (removed, text) = docker(&["rmi", &at_alpha]);
    assert!(removed, "{text}");
    let (pulled, text) = docker(&["pull", &at_beta]);
    assert!(
        pulled,
        "docker pull through beta failed: {text}\n{}",
        beta.log_text()
    );
    assert_eq!(printed_digest(&text), digest);
    assert_eq!(blobs(&beta), held_by_alpha);
    wait_for(
        Duration::from_secs(20),
        || json(&alpha.addr, &["images", "-o", "json"])[0]["holders"] == serde_json::json!([1, 2]),
        "beta to be recorded as a holder",
    );

    // A restart keeps the catalog and the blobs.
    alpha.terminate();
    alpha.restart();
    let (status, headers, _) = http(port1, "HEAD", "/v2/app/manifests/1", b"");
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "docker-content-digest"),
        Some(digest.as_str())
    );
    assert_eq!(blobs(&alpha), held_by_alpha);
    let (status, _, body) = http(port1, "GET", "/v2/_catalog", b"");
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"repositories":["app"]}"#)
    );
    let (status, _, body) = http(port2, "GET", "/v2/app/tags/list", b"");
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"name":"app","tags":["1"]}"#)
    );

    // Removal: the tag goes, and every peer deletes the blobs.
    ok(&beta.addr, &["images", "rm", "app:1"]);
    assert_eq!(
        json(&alpha.addr, &["images", "-o", "json"]),
        serde_json::json!([])
    );
    let deleted = eventually(Duration::from_secs(30), || {
        blobs(&alpha).is_empty() && blobs(&beta).is_empty()
    });
    assert!(
        deleted,
        "the removed image's blobs are still there: alpha {:?}, beta {:?}\n{}\n{}",
        blobs(&alpha),
        blobs(&beta),
        alpha.log_text(),
        beta.log_text()
    );
    let (status, _, body) = http(port2, "GET", "/v2/app/manifests/1", b"");
    assert_eq!(status, 404);
    assert!(body.contains("MANIFEST_UNKNOWN"), "{body}");
    let again = alpha.monk(&["images", "rm", "app:1"]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("no image app:1"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn a_runnable_placed_on_another_peer_runs_from_a_cluster_image() {
    if !engine_present() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let run = run_id();
    let cluster = format!("regrun-{run}");
    let _cleanup = Cleanup(cluster.clone());
    let ((alpha, port1), (beta, port2)) = two_peers(root.path(), &cluster, &[]);
    let (reg1, reg2) = (format!("127.0.0.1:{port1}"), format!("127.0.0.1:{port2}"));

    let local = format!("monk-test/registry-run-{run}:1");
    let at_alpha = format!("{reg1}/app:1");
    let _images = Images(vec![
        local.clone(),
        at_alpha.clone(),
        format!("{reg2}/app:1"),
    ]);
    let unique = format!("cluster image {run}");
    // Only the registry has it now: beta's engine must pull it through beta.
    push_only_to_registry(&local, &at_alpha, &unique);
    let file = root.path().join("app.yaml");
    std::fs::write(
        &file,
        "namespace: regt\napp:\n  defines: runnable\n  containers:\n    main:\n      image: registry.monk/app\n      image-tag: \"1\"\n      stop-grace-period: 1s\n",
    )
    .unwrap();
    ok(&alpha.addr, &["load", file.to_str().unwrap()]);
    let out = alpha.monk(&["run", "--peer", "beta", "regt/app"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        stderr(&out),
        beta.log_text()
    );
    wait_for(
        Duration::from_secs(30),
        || stdout(&alpha.monk(&["logs", "regt/app"])).contains(&unique),
        "the container to print its image's file",
    );
    assert_eq!(
        blobs(&beta),
        blobs(&alpha),
        "beta fetched every blob from alpha"
    );
    ok(&alpha.addr, &["purge", "regt/app"]);
}

#[test]
fn an_upload_that_does_not_match_its_digest_is_refused_and_not_stored() {
    let root = tempfile::tempdir().unwrap();
    let (peer, port) = registry_peer(root.path(), "alpha", &["--containers", "none"]);
    ok(
        &peer.addr,
        &[
            "cluster",
            "new",
            "--name",
            &format!("regd-{}", std::process::id()),
        ],
    );

    let (status, headers, _) = http(port, "GET", "/v2/", b"");
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "docker-distribution-api-version"),
        Some("registry/2.0")
    );

    // Chunked: POST, PATCH, then PUT naming the digest of other bytes.
    let (status, headers, _) = http(port, "POST", "/v2/app/blobs/uploads/", b"");
    assert_eq!(status, 202);
    let location = header(&headers, "location").unwrap().to_string();
    let (status, headers, _) = http(port, "PATCH", &location, b"hello ");
    assert_eq!(status, 202);
    assert_eq!(header(&headers, "range"), Some("0-5"));
    let other = monk_statemachine::registry::sha256_digest(b"something else");
    let (status, _, body) = http(port, "PUT", &format!("{location}?digest={other}"), b"world");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("DIGEST_INVALID"), "{body}");
    assert!(blobs(&peer).is_empty(), "nothing is stored");
    let (status, _, body) = http(port, "GET", &format!("/v2/app/blobs/{other}"), b"");
    assert_eq!(status, 404);
    assert!(body.contains("BLOB_UNKNOWN"), "{body}");
    // The upload is gone with its refusal.
    let (status, _, body) = http(port, "PUT", &format!("{location}?digest={other}"), b"");
    assert_eq!(status, 404);
    assert!(body.contains("BLOB_UPLOAD_UNKNOWN"), "{body}");

    // Monolithic, with the right digest: stored under it.
    let right = monk_statemachine::registry::sha256_digest(b"hello world");
    let (status, headers, _) = http(
        port,
        "POST",
        &format!(
            "/v2/app/blobs/uploads/?digest={}",
            right.replace(':', "%3A")
        ),
        b"hello world",
    );
    assert_eq!(status, 201);
    assert_eq!(
        header(&headers, "docker-content-digest"),
        Some(right.as_str())
    );
    let (status, _, body) = http(port, "GET", &format!("/v2/app/blobs/{right}"), b"");
    assert_eq!((status, body.as_str()), (200, "hello world"));
    assert_eq!(
        blobs(&peer),
        vec![right.trim_start_matches("sha256:").to_string()]
    );

    // A manifest naming a blob never uploaded is refused; one that does not parse too.
    let missing = monk_statemachine::registry::sha256_digest(b"never uploaded");
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{right}","size":11}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{missing}","size":3}}]}}"#
    );
    let (status, _, body) = http(port, "PUT", "/v2/app/manifests/1", manifest.as_bytes());
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("MANIFEST_BLOB_UNKNOWN"), "{body}");
    let (status, _, body) = http(port, "PUT", "/v2/app/manifests/1", b"{not json");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("MANIFEST_INVALID"), "{body}");
    let (status, _, body) = http(port, "GET", "/v2/app/tags/list", b"");
    assert_eq!(status, 404);
    assert!(body.contains("NAME_UNKNOWN"), "{body}");
}

/// Longest request head the proxy reads, in bytes (the engine's are under 2 KiB).
const PROXY_HEAD_BYTES_MAX: usize = 64 << 10;

/// A registry that demands HTTP Basic authentication: a proxy on a free loopback port
/// in front of a peer's registry port, answering 401 with `WWW-Authenticate: Basic`
/// to a request without the expected `Authorization` and forwarding the others (each
/// connection carries one request: the proxy asks the upstream to close after it).
struct BasicAuthProxy {
    port: u16,
    refused: Arc<AtomicUsize>,
    forwarded: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl BasicAuthProxy {
    fn start(upstream: u16, username: &str, password: &str) -> BasicAuthProxy {
        use base64::Engine as _;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
        );
        let (refused, forwarded, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let counters = (refused.clone(), forwarded.clone(), stop.clone());
        std::thread::spawn(move || {
            let (refused, forwarded, stop) = counters;
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (expected, refused, forwarded) =
                            (expected.clone(), refused.clone(), forwarded.clone());
                        std::thread::spawn(move || {
                            match proxy_one(client, upstream, &expected) {
                                Some(true) => forwarded.fetch_add(1, Ordering::Relaxed),
                                Some(false) => refused.fetch_add(1, Ordering::Relaxed),
                                None => 0,
                            };
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        BasicAuthProxy {
            port,
            refused,
            forwarded,
            stop,
        }
    }
}

impl Drop for BasicAuthProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Serves one connection: `Some(true)` when it was forwarded, `Some(false)` when it was
/// refused for its credential, `None` when it was no HTTP request (the engine tries
/// TLS first).
fn proxy_one(mut client: TcpStream, upstream: u16, expected: &str) -> Option<bool> {
    client.set_nonblocking(false).ok()?;
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > PROXY_HEAD_BYTES_MAX {
            return None;
        }
        let n = client.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        // A TLS handshake (the engine tries HTTPS first): close, so it falls back.
        if !buf[0].is_ascii_uppercase() {
            return None;
        }
    };
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
    let request_line = lines.next()?;
    if !request_line.ends_with("HTTP/1.1") && !request_line.ends_with("HTTP/1.0") {
        return None;
    }
    let headers: Vec<(&str, &str)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let authorized = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("authorization") && *v == expected);
    if !authorized {
        let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
        let refusal = format!(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"monk-test\"\r\nDocker-Distribution-API-Version: registry/2.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            body.len(),
            if request_line.starts_with("HEAD ") { "" } else { body }
        );
        let _ = client.write_all(refusal.as_bytes());
        return Some(false);
    }
    let mut server = TcpStream::connect(("127.0.0.1", upstream)).ok()?;
    let mut forwarded = format!("{request_line}\r\n");
    for (k, v) in headers.iter().filter(|(k, _)| {
        !k.eq_ignore_ascii_case("authorization") && !k.eq_ignore_ascii_case("connection")
    }) {
        forwarded.push_str(&format!("{k}: {v}\r\n"));
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    server.write_all(forwarded.as_bytes()).ok()?;
    server.write_all(&buf[end..]).ok()?;
    let (mut from_client, mut to_server) = (client.try_clone().ok()?, server.try_clone().ok()?);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_server);
    });
    let _ = std::io::copy(&mut server, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Both);
    Some(true)
}

/// Every file under `dir`, for a search of their bytes.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            match path.is_dir() {
                true => todo.push(path),
                false => found.push(path),
            }
        }
    }
    found
}

#[test]
fn a_pull_from_a_registry_demanding_a_login_uses_the_registry_credential() {
    if !engine_present() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let run = run_id();
    let cluster = format!("regauth-{run}");
    let _cleanup = Cleanup(cluster.clone());
    let (alpha, port) = registry_peer(root.path(), "alpha", &[]);
    ok(&alpha.addr, &["cluster", "new", "--name", &cluster]);
    let password = format!("pw-{run}");
    let proxy = BasicAuthProxy::start(port, "puller", &password);
    let host = format!("127.0.0.1:{}", proxy.port);

    let local = format!("monk-test/registry-auth-{run}:1");
    let at_alpha = format!("127.0.0.1:{port}/app:1");
    let behind_proxy = format!("{host}/app:1");
    let _images = Images(vec![local.clone(), at_alpha.clone(), behind_proxy.clone()]);
    let unique = format!("private image {run}");
    push_only_to_registry(&local, &at_alpha, &unique);
    // The proxy refuses an anonymous pull, as a private registry does.
    let (pulled, text) = docker(&["pull", &behind_proxy]);
    assert!(
        !pulled,
        "an anonymous pull through the proxy worked: {text}"
    );

    let file = root.path().join("private.yaml");
    std::fs::write(
        &file,
        format!("namespace: priv\napp:\n  defines: runnable\n  containers:\n    main:\n      image: {host}/app\n      image-tag: \"1\"\n      stop-grace-period: 1s\n"),
    )
    .unwrap();
    ok(&alpha.addr, &["load", file.to_str().unwrap()]);
    let message = || -> String {
        let ps = json(&alpha.addr, &["ps", "-o", "json"]);
        ps[0]["message"].as_str().unwrap_or_default().to_string()
    };
    let wait_message = |want: &[&str], what: &str| {
        wait_for(
            Duration::from_secs(60),
            || {
                let m = message();
                want.iter().all(|w| m.contains(w))
            },
            &format!(
                "{what} (last: {}; proxy refused {}, forwarded {})\n{}",
                message(),
                proxy.refused.load(Ordering::Relaxed),
                proxy.forwarded.load(Ordering::Relaxed),
                alpha.log_text()
            ),
        )
    };

    // No credential: refused, naming the registry and how to log in.
    let failed = alpha.monk(&["run", "priv/app", "--timeout", "2m"]);
    assert!(!failed.status.success());
    let reason = stderr(&failed);
    assert!(
        reason.contains(&format!("registry {host}")) && reason.contains("monk registry add"),
        "{reason}"
    );
    assert!(proxy.refused.load(Ordering::Relaxed) > 0);

    // A credential whose secret is not set yet: said so, and the replica fails on it.
    let added = ok(
        &alpha.addr,
        &[
            "registry",
            "add",
            &format!("http://{host}/"),
            "--username",
            "puller",
            "--password-secret",
            "regpw",
        ],
    );
    assert!(added.contains("no global secret regpw"), "{added}");
    wait_message(
        &[&format!("registry {host}"), "no global secret regpw"],
        "the missing secret to be the reason",
    );
    let rows = json(&alpha.addr, &["registry", "list", "-o", "json"]);
    assert_eq!(rows[0]["host"], host.as_str(), "{rows}");
    assert_eq!(rows[0]["username"], "puller", "{rows}");
    assert_eq!(rows[0]["secret_set"], false, "{rows}");

    // A wrong password: the registry refuses it, and the reason names registry and user.
    ok(&alpha.addr, &["secrets", "add", "-g", "regpw=wrong"]);
    wait_message(
        &[&format!("registry {host} as puller"), "nauthorized"],
        "the refused login to be the reason",
    );

    // The right one: the pull goes through the proxy and the replica runs.
    let forwarded_before = proxy.forwarded.load(Ordering::Relaxed);
    ok(
        &alpha.addr,
        &["secrets", "add", "-g", &format!("regpw={password}")],
    );
    wait_for(
        Duration::from_secs(60),
        || stdout(&alpha.monk(&["logs", "priv/app"])).contains(&unique),
        &format!(
            "the replica to run from the private image (last: {})",
            message()
        ),
    );
    assert!(proxy.forwarded.load(Ordering::Relaxed) > forwarded_before);
    let listed = ok(&alpha.addr, &["registry", "list"]);
    assert!(
        listed.contains(&host) && listed.contains("puller") && !listed.contains("not set"),
        "{listed}"
    );

    // The password never reaches the log, the state or any other file in plaintext.
    for path in files_under(&alpha.data_dir) {
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert!(
            !bytes
                .windows(password.len())
                .any(|w| w == password.as_bytes()),
            "{} holds the password",
            path.display()
        );
    }

    ok(&alpha.addr, &["purge", "priv/app"]);
    let removed = ok(&alpha.addr, &["registry", "rm", &host]);
    assert!(removed.contains("credential removed"), "{removed}");
    assert_eq!(
        json(&alpha.addr, &["registry", "list", "-o", "json"]),
        serde_json::json!([])
    );
    let again = alpha.monk(&["registry", "rm", &host]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains(&format!("no credential for registry {host}")),
        "{}",
        stderr(&again)
    );
}
