//! Unit tests of the Docker runtime's pure parts (times, exit codes, the create body, the
//! files archive).

use super::*;

#[test]
fn docker_times_become_unix_seconds() {
    assert_eq!(rfc3339_unix("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(
        rfc3339_unix("2026-11-22T05:26:27.123456789Z"),
        Some(1_795_325_187)
    );
    assert_eq!(rfc3339_unix("2000-02-29T12:00:00Z"), Some(951_825_600));
    assert_eq!(rfc3339_unix("0001-01-01T00:00:00Z"), None);
    assert_eq!(rfc3339_unix("garbage"), None);
}

/// The hand-written ustar writer cut a name over 100 bytes without a `/` in its last
/// 155 bytes to its first 100 bytes; every path must come back whole.
#[test]
fn files_keep_long_paths_and_their_modes() {
    use monk_scripting::monkscript::runtime::FileSpec;
    let long_name = format!("/etc/app/{}.conf", "n".repeat(120));
    let deep = format!("/{}/x.txt", ["dir"; 60].join("/"));
    let files = [
        ("/etc/short", 0o644),
        (long_name.as_str(), 0o600),
        (deep.as_str(), 0o444),
    ];
    let spec = ContainerSpec {
        files: files
            .iter()
            .map(|(path, mode)| FileSpec {
                name: path.to_string(),
                path: path.to_string(),
                mode: *mode,
                contents: path.as_bytes().to_vec(),
            })
            .collect(),
        ..ContainerSpec::default()
    };
    let bytes = files_tar(&spec).expect("a tar");
    let mut archive = tar::Archive::new(bytes.as_slice());
    let mut read = Vec::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("an entry");
        let path = entry.path().expect("a path").display().to_string();
        let mode = entry.header().mode().expect("a mode");
        let mut contents = String::new();
        std::io::Read::read_to_string(&mut entry, &mut contents).expect("contents");
        read.push((format!("/{path}"), mode, contents));
    }
    let want: Vec<(String, u32, String)> = files
        .iter()
        .map(|(path, mode)| (path.to_string(), *mode, path.to_string()))
        .collect();
    assert_eq!(read, want);
}

/// The hand-written civil-date arithmetic turned impossible dates into seconds.
#[test]
fn impossible_docker_times_are_not_read() {
    assert_eq!(rfc3339_unix("2026-13-45T05:26:27Z"), None);
    assert_eq!(rfc3339_unix("2026-02-30T25:00:00Z"), None);
}

/// Every container gets the pids limit and log rotation, and joins its peer's
/// network: nothing in a spec reaches the host's network or an unbounded log.
#[test]
fn every_container_is_bounded_and_on_its_peer_network() {
    let w = Wanted {
        key: super::super::ContainerKey {
            path: "ns/app".into(),
            replica: 0,
            container: "main".into(),
        },
        name: "monk-c1-1-ns-app-0-main".into(),
        network: "monk-c1-1".into(),
        aliases: Vec::new(),
        generation: 1,
        spec_hash: String::new(),
        spec: ContainerSpec::default(),
        labels: BTreeMap::new(),
        subnet: None,
    };
    let host = create_body(&w).host_config.expect("a host config");
    assert_eq!(host.pids_limit, Some(CONTAINER_PIDS_MAX));
    assert_eq!(host.network_mode.as_deref(), Some("monk-c1-1"));
    let log = host.log_config.expect("a log config");
    assert_eq!(log.typ.as_deref(), Some("json-file"));
    let config = log.config.expect("log options");
    assert_eq!(config.get("max-size").map(String::as_str), Some("10485760"));
    assert_eq!(config.get("max-file").map(String::as_str), Some("3"));
}

#[test]
fn exit_codes_are_read_from_the_status_line() {
    assert_eq!(exit_code("Exited (1) 3 seconds ago"), Some(1));
    assert_eq!(exit_code("Exited (137) About a minute ago"), Some(137));
    assert_eq!(exit_code("Up 2 seconds"), None);
}
