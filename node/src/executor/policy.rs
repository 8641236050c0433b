//! The workload admission policy of one peer: what a replica's containers may ask of
//! the host before anything is created. By default a peer refuses privileged
//! containers, host paths outside its volume root, capabilities beyond Docker's
//! default set, and a `monk-volume-path` (or `moncc-volume-path`) pointing outside the
//! volume root; `monkd --allow-privileged`, `--allow-host-paths PREFIX,...` and
//! `--allow-caps CAP,...` open them deliberately (as Nomad's docker plugin config
//! does). A host network cannot be asked for: no MonkScript field selects a network,
//! and every container joins its peer's bridge network (`docker.rs`).
//!
//! Pure: [`check`] reads a [`RunnableSpec`] and the policy, and returns the first
//! refusal in a fixed order (the volume path variables, then each container in order:
//! privileged, capabilities, host paths). Host paths are compared by whole components
//! (`/var/lib/monkd/volumes-x` is not under `/var/lib/monkd/volumes`), may not contain
//! `..`, and must pass twice: as written, and as a resolver sees them. [`check`] is
//! pure (the resolver is [`normalize`]); the executor calls [`check_with`] and
//! [`resolve_on_host`], which follows symlinks on this machine, so a link a container
//! left under the volume root does not lead out of it.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use monk_scripting::monkscript::runtime::{RunnableSpec, DEFAULT_MONK_VOLUME_PATH};

/// The capabilities Docker gives a container by default; `cap-add` of any of these
/// asks for nothing new.
pub const DOCKER_DEFAULT_CAPS: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// The builtin variables that name the volume root inside a runnable.
pub const VOLUME_PATH_VARIABLES: &[&str] = &["monk-volume-path", "moncc-volume-path"];

/// What this peer lets a workload ask of its host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionPolicy {
    /// `monkd --allow-privileged`.
    pub allow_privileged: bool,
    /// `monkd --allow-host-paths`: absolute prefixes host paths may lie under besides
    /// the volume root.
    pub allow_host_paths: Vec<PathBuf>,
    /// `monkd --allow-caps`, normalized (upper case, no `CAP_` prefix); `ALL` allows any.
    pub allow_caps: BTreeSet<String>,
    /// `monkd --volume-root`: where `${monk-volume-path}` points; host paths under it
    /// are always allowed.
    pub volume_root: PathBuf,
}

impl Default for AdmissionPolicy {
    /// Everything closed, the volume root at [`DEFAULT_MONK_VOLUME_PATH`].
    fn default() -> Self {
        AdmissionPolicy {
            allow_privileged: false,
            allow_host_paths: Vec::new(),
            allow_caps: BTreeSet::new(),
            volume_root: PathBuf::from(DEFAULT_MONK_VOLUME_PATH),
        }
    }
}

impl AdmissionPolicy {
    /// A policy from `monkd`'s flags; capability names are normalized.
    pub fn new(
        allow_privileged: bool,
        allow_host_paths: Vec<PathBuf>,
        allow_caps: &[String],
        volume_root: PathBuf,
    ) -> AdmissionPolicy {
        AdmissionPolicy {
            allow_privileged,
            allow_host_paths,
            allow_caps: allow_caps.iter().map(|c| normalize_cap(c)).collect(),
            volume_root,
        }
    }

    /// Whether `cap` (normalized) may be added.
    fn cap_allowed(&self, cap: &str) -> bool {
        DOCKER_DEFAULT_CAPS.contains(&cap)
            || self.allow_caps.contains(cap)
            || self.allow_caps.contains("ALL")
    }

    /// Whether the host path `path` lies under the volume root or an allowed prefix,
    /// both as written (lexically) and as `resolve` sees it (symlinks followed). A path
    /// with a `..` component is never allowed: whether it walks back out of a symlink
    /// depends on who reads it.
    fn host_path_allowed(&self, path: &Path, resolve: Resolve) -> bool {
        if path.components().any(|c| c == Component::ParentDir) {
            return false;
        }
        let prefixes = || std::iter::once(&self.volume_root).chain(&self.allow_host_paths);
        let lexical = normalize(path);
        let resolved = resolve(path);
        prefixes().any(|prefix| lexical.starts_with(normalize(prefix)))
            && prefixes().any(|prefix| resolved.starts_with(resolve(prefix)))
    }
}

/// `cap_sys_admin`, `CAP_SYS_ADMIN` and `sys_admin` are one capability to Docker.
pub fn normalize_cap(cap: &str) -> String {
    let upper = cap.trim().to_ascii_uppercase();
    match upper.strip_prefix("CAP_") {
        Some(rest) => rest.to_string(),
        None => upper,
    }
}

/// How [`check_with`] sees a host path: [`normalize`] (pure), or [`resolve_on_host`].
pub type Resolve<'a> = &'a dyn Fn(&Path) -> PathBuf;

/// `path` as this machine's filesystem resolves it: the deepest part that exists with
/// its symlinks followed (`std::fs::canonicalize`), the rest appended. A symlink a
/// container left under the volume root (`ln -s / /data/escape`) thus counts as where
/// it points. Best effort: it reads this machine, which is the engine's when the
/// engine is local (the usual case), and a link made after the check is not seen.
pub fn resolve_on_host(path: &Path) -> PathBuf {
    let lexical = normalize(path);
    let mut existing = lexical.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(mut real) = std::fs::canonicalize(existing) {
            real.extend(rest.iter().rev());
            return real;
        }
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent;
            }
            _ => return lexical,
        }
    }
}

/// `path` with `.` and `..` resolved lexically; `..` above the root stays at the root,
/// as the kernel does.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(part) => out.push(part),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Why a replica may not run on this peer. Its text is what `monk run` and `monk ps`
/// show: `policy: <what> ... on peer <name> (monkd --<flag>)`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyRefusal {
    #[error(
        "policy: privileged containers are not allowed on peer {peer} (monkd --allow-privileged)"
    )]
    Privileged { peer: String },
    #[error("policy: capability {cap} (container {container}) is not allowed on peer {peer}: only Docker's default set is (monkd --allow-caps {cap})")]
    Capability {
        peer: String,
        container: String,
        cap: String,
    },
    #[error("policy: host path {path} (container {container}) is not allowed on peer {peer}: only paths under {root} are (monkd --allow-host-paths PREFIX)")]
    HostPath {
        peer: String,
        container: String,
        path: String,
        root: String,
    },
    #[error("policy: {variable} {path} is not allowed on peer {peer}: it must be under {root} (monkd --allow-host-paths PREFIX)")]
    VolumePath {
        peer: String,
        variable: String,
        path: String,
        root: String,
    },
}

/// Admits `spec` on the peer named `peer`, or says why not (the first refusal); host
/// paths are judged as written.
pub fn check(
    policy: &AdmissionPolicy,
    spec: &RunnableSpec,
    peer: &str,
) -> Result<(), PolicyRefusal> {
    check_with(policy, spec, peer, &normalize)
}

/// [`check`], host paths also judged as `resolve` sees them (the executor passes
/// [`resolve_on_host`]).
pub fn check_with(
    policy: &AdmissionPolicy,
    spec: &RunnableSpec,
    peer: &str,
    resolve: Resolve,
) -> Result<(), PolicyRefusal> {
    let root = || policy.volume_root.display().to_string();
    for variable in VOLUME_PATH_VARIABLES {
        let Some(path) = spec.variables.get(*variable) else {
            continue;
        };
        if !path.starts_with('/') || !policy.host_path_allowed(Path::new(path), resolve) {
            return Err(PolicyRefusal::VolumePath {
                peer: peer.to_string(),
                variable: variable.to_string(),
                path: path.clone(),
                root: root(),
            });
        }
    }
    for container in &spec.containers {
        if container.privileged && !policy.allow_privileged {
            return Err(PolicyRefusal::Privileged {
                peer: peer.to_string(),
            });
        }
        if let Some(cap) = container
            .cap_add
            .iter()
            .map(|c| normalize_cap(c))
            .find(|c| !policy.cap_allowed(c))
        {
            return Err(PolicyRefusal::Capability {
                peer: peer.to_string(),
                container: container.name.clone(),
                cap,
            });
        }
        // A source that is not an absolute path is a named volume the engine manages.
        if let Some(mount) = container
            .mounts
            .iter()
            .filter(|m| m.source.starts_with('/'))
            .find(|m| !policy.host_path_allowed(Path::new(&m.source), resolve))
        {
            return Err(PolicyRefusal::HostPath {
                peer: peer.to_string(),
                container: container.name.clone(),
                path: mount.source.clone(),
                root: root(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use monk_scripting::monkscript::runtime::{ContainerSpec, MountSpec, Requests};
    use proptest::prelude::*;

    use super::*;

    fn spec(containers: Vec<ContainerSpec>) -> RunnableSpec {
        RunnableSpec {
            path: "ns/app".into(),
            variables: VOLUME_PATH_VARIABLES
                .iter()
                .map(|v| (v.to_string(), DEFAULT_MONK_VOLUME_PATH.to_string()))
                .collect(),
            containers,
            services: Vec::new(),
            requests: Requests::default(),
        }
    }

    fn container(edit: impl FnOnce(&mut ContainerSpec)) -> ContainerSpec {
        let mut c = ContainerSpec {
            name: "main".into(),
            image: "busybox:latest".into(),
            ..ContainerSpec::default()
        };
        edit(&mut c);
        c
    }

    fn mount(source: &str) -> MountSpec {
        MountSpec {
            source: source.into(),
            target: "/data".into(),
            read_only: false,
            options: Vec::new(),
        }
    }

    fn refusal(policy: &AdmissionPolicy, c: ContainerSpec) -> String {
        match check(policy, &spec(vec![c]), "alpha") {
            Ok(()) => "admitted".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_plain_container_is_admitted_by_default() {
        let policy = AdmissionPolicy::default();
        assert_eq!(refusal(&policy, container(|_| {})), "admitted");
        let defaults = container(|c| {
            c.cap_add = DOCKER_DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
            c.cap_drop = vec!["ALL".into()];
            c.mounts = vec![
                mount("/var/lib/monkd/volumes/app/data"),
                mount("/var/lib/monkd/volumes"),
                mount("named-volume"),
            ];
        });
        assert_eq!(refusal(&policy, defaults), "admitted");
    }

    #[test]
    fn privileged_is_refused_unless_allowed() {
        let privileged = || container(|c| c.privileged = true);
        assert_eq!(
            refusal(&AdmissionPolicy::default(), privileged()),
            "policy: privileged containers are not allowed on peer alpha (monkd --allow-privileged)"
        );
        let open = AdmissionPolicy {
            allow_privileged: true,
            ..AdmissionPolicy::default()
        };
        assert_eq!(refusal(&open, privileged()), "admitted");
    }

    #[test]
    fn capabilities_beyond_the_default_set_are_refused_unless_allowed() {
        let admin = || container(|c| c.cap_add = vec!["NET_RAW".into(), "cap_sys_admin".into()]);
        assert_eq!(
            refusal(&AdmissionPolicy::default(), admin()),
            "policy: capability SYS_ADMIN (container main) is not allowed on peer alpha: only \
             Docker's default set is (monkd --allow-caps SYS_ADMIN)"
        );
        let named = AdmissionPolicy::new(
            false,
            Vec::new(),
            &["CAP_SYS_ADMIN".into()],
            DEFAULT_MONK_VOLUME_PATH.into(),
        );
        assert_eq!(refusal(&named, admin()), "admitted");
        let all = AdmissionPolicy::new(
            false,
            Vec::new(),
            &["all".into()],
            DEFAULT_MONK_VOLUME_PATH.into(),
        );
        assert_eq!(
            refusal(&all, container(|c| c.cap_add = vec!["ALL".into()])),
            "admitted"
        );
        assert!(
            refusal(&named, container(|c| c.cap_add = vec!["ALL".into()]))
                .contains("capability ALL")
        );
    }

    #[test]
    fn host_paths_outside_the_volume_root_are_refused_unless_allowed() {
        let policy = AdmissionPolicy::default();
        for source in [
            "/",
            "/etc",
            "/var/run/docker.sock",
            "/var/lib/monkd/volumes/../../../etc",
            "/var/lib/monkd/volumes/app/../app",
            "/var/lib/monkd/volumes-other/x",
            "/var/lib/monkd",
        ] {
            let refused = refusal(&policy, container(|c| c.mounts = vec![mount(source)]));
            assert_eq!(
                refused,
                format!(
                    "policy: host path {source} (container main) is not allowed on peer alpha: \
                     only paths under /var/lib/monkd/volumes are (monkd --allow-host-paths PREFIX)"
                )
            );
        }
        let open = AdmissionPolicy {
            allow_host_paths: vec!["/srv/data".into(), "/run/app/".into()],
            ..AdmissionPolicy::default()
        };
        for (source, verdict) in [
            ("/srv/data", true),
            ("/srv/data/./b", true),
            ("/srv/data/a/../b", false),
            ("/run/app/sock", true),
            ("/srv/database", false),
            ("/srv/data/../../etc", false),
        ] {
            let got = refusal(&open, container(|c| c.mounts = vec![mount(source)]));
            assert_eq!(got == "admitted", verdict, "{source}: {got}");
        }
    }

    #[test]
    fn a_volume_path_pointing_elsewhere_is_refused_unless_allowed() {
        for variable in VOLUME_PATH_VARIABLES {
            let mut s = spec(vec![container(|_| {})]);
            s.variables.insert(variable.to_string(), "/etc".into());
            assert_eq!(
                check(&AdmissionPolicy::default(), &s, "alpha").map_err(|e| e.to_string()),
                Err(format!(
                    "policy: {variable} /etc is not allowed on peer alpha: it must be under \
                     /var/lib/monkd/volumes (monkd --allow-host-paths PREFIX)"
                ))
            );
            let open = AdmissionPolicy {
                allow_host_paths: vec!["/etc".into()],
                ..AdmissionPolicy::default()
            };
            assert_eq!(check(&open, &s, "alpha"), Ok(()));
            s.variables.insert(variable.to_string(), "relative".into());
            assert!(check(&open, &s, "alpha").is_err());
            s.variables
                .insert(variable.to_string(), "/var/lib/monkd/volumes/team-a".into());
            assert_eq!(check(&AdmissionPolicy::default(), &s, "alpha"), Ok(()));
        }
    }

    #[test]
    fn another_volume_root_moves_what_is_allowed() {
        let policy = AdmissionPolicy {
            volume_root: "/data/monk".into(),
            ..AdmissionPolicy::default()
        };
        let mut s = spec(vec![container(|c| {
            c.mounts = vec![mount("/data/monk/app")]
        })]);
        s.variables = VOLUME_PATH_VARIABLES
            .iter()
            .map(|v| (v.to_string(), "/data/monk".to_string()))
            .collect::<BTreeMap<_, _>>();
        assert_eq!(check(&policy, &s, "alpha"), Ok(()));
        s.containers[0].mounts = vec![mount(DEFAULT_MONK_VOLUME_PATH)];
        assert!(check(&policy, &s, "alpha").is_err());
    }

    #[test]
    fn the_first_refusal_is_reported_in_a_fixed_order() {
        let everything = container(|c| {
            c.privileged = true;
            c.cap_add = vec!["SYS_ADMIN".into()];
            c.mounts = vec![mount("/etc")];
        });
        let policy = AdmissionPolicy::default();
        assert!(refusal(&policy, everything.clone()).contains("privileged"));
        let privileged_ok = AdmissionPolicy {
            allow_privileged: true,
            ..policy.clone()
        };
        assert!(refusal(&privileged_ok, everything.clone()).contains("capability SYS_ADMIN"));
        let caps_ok = AdmissionPolicy {
            allow_caps: ["SYS_ADMIN".to_string()].into(),
            ..privileged_ok
        };
        assert!(refusal(&caps_ok, everything).contains("host path /etc"));
    }

    /// A container that could write into its volume left a symlink there; mounting the
    /// link would have mounted where it points.
    #[test]
    fn a_symlink_under_the_volume_root_counts_as_where_it_points() {
        let host = tempfile::tempdir().expect("a temp dir");
        let root = host.path().join("volumes");
        std::fs::create_dir_all(root.join("app")).expect("a volume");
        std::os::unix::fs::symlink("/etc", root.join("app/escape")).expect("a symlink");
        let policy = AdmissionPolicy {
            volume_root: root.clone(),
            ..AdmissionPolicy::default()
        };
        let mut s = spec(vec![container(|c| {
            c.mounts = vec![mount(&format!("{}/app/escape/x", root.display()))]
        })]);
        s.variables.clear();
        assert_eq!(
            check(&policy, &s, "alpha"),
            Ok(()),
            "as written it is inside"
        );
        let refused = check_with(&policy, &s, "alpha", &resolve_on_host);
        assert!(
            matches!(&refused, Err(PolicyRefusal::HostPath { path, .. }) if path.ends_with("app/escape/x")),
            "{refused:?}"
        );
        s.containers[0].mounts = vec![mount(&format!("{}/app/data/new", root.display()))];
        assert_eq!(check_with(&policy, &s, "alpha", &resolve_on_host), Ok(()));
        assert_eq!(
            resolve_on_host(&root.join("app/escape/passwd")),
            PathBuf::from("/etc/passwd")
        );
    }

    fn component() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("..".to_string()),
            Just(".".to_string()),
            Just("var".to_string()),
            Just("lib".to_string()),
            Just("monkd".to_string()),
            Just("volumes".to_string()),
            Just("etc".to_string()),
            "[a-z]{1,3}",
        ]
    }

    proptest! {
        /// Whatever a path says, it is admitted only when its normalized form lies under
        /// the volume root or an allowed prefix: no `..` walks out.
        #[test]
        fn admitted_host_paths_never_leave_the_allowed_prefixes(
            parts in proptest::collection::vec(component(), 0..8),
            allow in proptest::option::of(proptest::collection::vec(component(), 1..3)),
        ) {
            let source = format!("/{}", parts.join("/"));
            let policy = AdmissionPolicy {
                allow_host_paths: allow.iter().map(|p| normalize(Path::new(&format!("/{}", p.join("/"))))).collect(),
                ..AdmissionPolicy::default()
            };
            let admitted = check(&policy, &spec(vec![container(|c| c.mounts = vec![mount(&source)])]), "alpha").is_ok();
            let resolved = normalize(Path::new(&source));
            prop_assert!(!resolved.components().any(|c| matches!(c, Component::ParentDir | Component::CurDir)));
            let under = std::iter::once(&policy.volume_root)
                .chain(&policy.allow_host_paths)
                .any(|p| resolved.starts_with(p));
            let climbs = parts.iter().any(|p| p == "..");
            prop_assert_eq!(admitted, under && !climbs, "{} → {}", source, resolved.display());
        }

        /// A capability is admitted exactly when it is a Docker default or allowed,
        /// however it is spelled.
        #[test]
        fn capabilities_are_judged_by_their_normalized_name(
            cap in "(cap_|CAP_)?[a-zA-Z_]{2,12}",
            allowed in proptest::collection::vec("[A-Z_]{2,12}", 0..3),
        ) {
            let policy = AdmissionPolicy::new(false, Vec::new(), &allowed, DEFAULT_MONK_VOLUME_PATH.into());
            let admitted = check(&policy, &spec(vec![container(|c| c.cap_add = vec![cap.clone()])]), "alpha").is_ok();
            let name = normalize_cap(&cap);
            let expected = DOCKER_DEFAULT_CAPS.contains(&name.as_str())
                || allowed.iter().any(|a| normalize_cap(a) == name || normalize_cap(a) == "ALL");
            prop_assert_eq!(admitted, expected);
        }
    }
}
