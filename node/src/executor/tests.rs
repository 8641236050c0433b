//! Executor tests on the scriptable fake runtime: idempotence, adoption, generations,
//! stop, missing images, exits, strays and duplicates, the admission policy. The same executor against the
//! real Docker engine is tested in `cli/tests/containers.rs`.

use std::collections::BTreeMap;

use monk_scripting::tree::Tree;
use monk_statemachine::view::Assignment;
use monk_statemachine::{Command, Desired, InstanceStatus};

use super::fake::FakeRuntime;
use super::readiness::Memo;
use super::*;
use crate::secrets::WorkloadSecrets;

/// One executor pass on the fake runtime with no secrets and nothing ready.
async fn pass_once(rt: &FakeRuntime, assigned: &[Assignment]) -> Pass {
    let secrets = no_secrets();
    reconcile(
        rt,
        "c1",
        1,
        assigned,
        &world(&secrets),
        &mut Memo::default(),
    )
    .await
}

/// The default admission policy: everything closed, the default volume root.
static CLOSED: std::sync::LazyLock<AdmissionPolicy> =
    std::sync::LazyLock::new(AdmissionPolicy::default);

fn world(secrets: &WorkloadSecrets) -> World<'_> {
    World {
        ready: BTreeMap::new(),
        secrets,
        publish_ip: None,
        policy: &CLOSED,
        peer_name: "alpha",
        cluster: &NO_OTHERS,
        subnet: None,
        registry_pull: None,
        registries: &super::spec::NO_REGISTRIES,
    }
}

/// No other workloads.
static NO_OTHERS: std::sync::LazyLock<super::spec::Cluster> =
    std::sync::LazyLock::new(Default::default);

fn no_secrets() -> WorkloadSecrets {
    WorkloadSecrets {
        sealed: BTreeMap::new(),
        key: None,
    }
}

fn definition(image: &str, containers: &[&str]) -> Tree {
    let containers = containers
        .iter()
        .map(|name| {
            (
                name.to_string(),
                Tree::Map(vec![("image".into(), Tree::Str(image.into()))]),
            )
        })
        .collect();
    Tree::Map(vec![
        ("defines".into(), Tree::Str("runnable".into())),
        ("containers".into(), Tree::Map(containers)),
    ])
}

fn assignment(replica: u32, generation: u64, desired: Desired, image: &str) -> Assignment {
    Assignment {
        path: "ns/web".into(),
        replica,
        generation,
        desired,
        definition: definition(image, &["app", "side"]),
        overrides: BTreeMap::new(),
        reported: None,
        reported_addresses: Default::default(),
    }
}

/// Runs passes, feeding each pass's reports back as the "reported" status (what the
/// log would do), until a pass reports nothing; returns all reports.
async fn settle(rt: &FakeRuntime, assigned: &mut [Assignment]) -> Vec<(InstanceStatus, String)> {
    let mut all = Vec::new();
    for _ in 0..5 {
        let pass = pass_once(rt, assigned).await;
        if pass.reports.is_empty() {
            return all;
        }
        for report in pass.reports {
            if let Command::WorkloadReport {
                replica,
                generation,
                status,
                message,
                ..
            } = report
            {
                let a = assigned
                    .iter_mut()
                    .find(|a| a.replica == replica)
                    .expect("report for an assignment");
                a.reported = Some((generation, status, message.clone()));
                all.push((status, message));
            }
        }
    }
    panic!("the executor did not settle in 5 passes");
}

#[tokio::test]
async fn a_pass_creates_what_is_missing_and_a_second_pass_does_nothing() {
    let rt = FakeRuntime::default();
    let mut assigned = vec![assignment(0, 1, Desired::Running, "busybox")];
    let reports = settle(&rt, &mut assigned).await;
    assert_eq!(reports, vec![(InstanceStatus::Running, String::new())]);
    assert_eq!(
        rt.containers(),
        vec![
            ("monk-c1-1-ns-web-0-app".to_string(), true),
            ("monk-c1-1-ns-web-0-side".to_string(), true)
        ]
    );
    let again = pass_once(&rt, &assigned).await;
    assert_eq!((again.actions, again.reports.len()), (0, 0));
    assert_eq!(rt.counts(), (2, 0));
    // Another executor for a different peer or cluster sees none of them.
    assert!(rt.list("c1", 2).await.unwrap().is_empty());
    assert!(rt.list("c2", 1).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_restarted_executor_adopts_running_containers() {
    let rt = FakeRuntime::default();
    let mut assigned = vec![assignment(0, 1, Desired::Running, "busybox")];
    settle(&rt, &mut assigned).await;
    // A fresh executor (nothing reported yet, as after a monkd restart that lost the
    // in-flight report) re-reports but creates nothing.
    assigned[0].reported = None;
    let pass = pass_once(&rt, &assigned).await;
    assert_eq!(pass.actions, 0);
    assert_eq!(pass.reports.len(), 1);
    assert_eq!(rt.counts(), (2, 0));
}

#[tokio::test]
async fn a_new_generation_replaces_the_containers() {
    let rt = FakeRuntime::default();
    let mut assigned = vec![assignment(0, 1, Desired::Running, "busybox")];
    settle(&rt, &mut assigned).await;
    let reported = assigned[0].reported.clone();
    assigned[0] = assignment(0, 2, Desired::Running, "busybox:2");
    assigned[0].reported = reported;
    let reports = settle(&rt, &mut assigned).await;
    assert_eq!(reports, vec![(InstanceStatus::Running, String::new())]);
    assert_eq!(rt.counts(), (4, 2));
    assert_eq!(assigned[0].reported.as_ref().map(|r| r.0), Some(2));
}

#[tokio::test]
async fn stop_removes_the_containers_and_reports_stopped() {
    let rt = FakeRuntime::default();
    let mut assigned = vec![assignment(0, 1, Desired::Running, "busybox")];
    settle(&rt, &mut assigned).await;
    assigned[0].desired = Desired::Stopped;
    let reports = settle(&rt, &mut assigned).await;
    assert_eq!(reports, vec![(InstanceStatus::Stopped, String::new())]);
    assert!(rt.containers().is_empty());
}

#[tokio::test]
async fn a_missing_image_fails_the_replica_with_the_reason() {
    let rt = FakeRuntime::default();
    rt.remove_image("ghost:1");
    let mut assigned = vec![assignment(0, 1, Desired::Running, "ghost:1")];
    let reports = settle(&rt, &mut assigned).await;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].0, InstanceStatus::Failed);
    assert!(
        reports[0].1.contains("ghost:1 is not present locally"),
        "{}",
        reports[0].1
    );
    assert!(rt.containers().is_empty());
}

#[tokio::test]
async fn an_exited_container_is_reported_with_its_code() {
    let rt = FakeRuntime::default();
    let mut assigned = vec![assignment(0, 1, Desired::Running, "busybox")];
    settle(&rt, &mut assigned).await;
    rt.exit("monk-c1-1-ns-web-0-side", 3);
    let reports = settle(&rt, &mut assigned).await;
    assert_eq!(
        reports,
        vec![(
            InstanceStatus::Exited,
            "container side exited with code 3".to_string()
        )]
    );
    // The executor does not fight the restart policy: the exited container stays.
    assert_eq!(rt.counts(), (2, 0));
}

#[tokio::test]
async fn strays_and_duplicates_are_removed_and_deleted_containers_come_back() {
    let rt = FakeRuntime::default();
    let mut assigned = vec![
        assignment(0, 1, Desired::Running, "busybox"),
        assignment(1, 1, Desired::Running, "busybox"),
    ];
    settle(&rt, &mut assigned).await;
    assert_eq!(rt.containers().len(), 4);
    // Replica 1 moved away (or was scaled down): its containers go.
    assigned.truncate(1);
    settle(&rt, &mut assigned).await;
    assert_eq!(rt.containers().len(), 2);
    // Someone removed a container by hand: it is recreated.
    rt.delete("monk-c1-1-ns-web-0-app");
    settle(&rt, &mut assigned).await;
    assert_eq!(rt.containers().len(), 2);
}

/// The wanted containers of replica 0 of the two-container test runnable.
fn busybox_wanted() -> Vec<Wanted> {
    wanted_of(
        "c1",
        1,
        &assignment(0, 1, Desired::Running, "busybox"),
        &no_secrets(),
    )
    .expect("spec builds")
}

#[test]
fn plan_keeps_one_of_two_containers_with_the_same_identity() {
    let wanted = busybox_wanted();
    let observed = |id: &str, w: &Wanted, state: RunState| Observed {
        id: id.into(),
        name: w.name.clone(),
        key: Some(w.key.clone()),
        generation: w.generation,
        spec_hash: w.spec_hash.clone(),
        state,
        created_unix: 0,
        ip: None,
        started_unix: None,
        restarts: 0,
    };
    let seen = vec![
        observed("b", &wanted[0], RunState::Exited(Some(0))),
        observed("a", &wanted[0], RunState::Running),
        observed("c", &wanted[1], RunState::Created),
    ];
    let actions = plan(&wanted, &seen);
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert!(matches!(&actions[0], Action::Remove { id, .. } if id == "b"));
    assert!(matches!(&actions[1], Action::Start { id, .. } if id == "c"));
}

#[test]
fn hostnames_name_runnables_and_containers() {
    assert_eq!(runnable_hostname("hello/web"), "web.hello.monk");
    assert_eq!(runnable_hostname("a/b_c/D"), "d.b-c.a.monk");
    assert_eq!(
        container_hostname("hello/web", "main"),
        "main.web.hello.monk"
    );
    let mut a = assignment(0, 1, Desired::Running, "busybox");
    if let Tree::Map(entries) = &mut a.definition {
        entries.push((
            "connections".into(),
            Tree::Map(vec![(
                "db".into(),
                Tree::Map(vec![("runnable".into(), Tree::Str("./pg".into()))]),
            )]),
        ));
        entries.push((
            "variables".into(),
            Tree::Map(vec![(
                "db-host".into(),
                Tree::Map(vec![
                    (
                        "value".into(),
                        Tree::Str("<- connection-hostname(\"db\")".into()),
                    ),
                    ("env".into(), Tree::Str("DB_HOST".into())),
                ]),
            )]),
        ));
    }
    let wanted = wanted_of("c1", 1, &a, &no_secrets()).expect("spec builds");
    assert!(
        wanted[0]
            .spec
            .env
            .contains(&("DB_HOST".to_string(), "pg.ns.monk".to_string())),
        "{:?}",
        wanted[0].spec.env
    );
    assert_eq!(wanted[0].aliases, vec!["web.ns.monk", "app.web.ns.monk"]);
}

#[test]
fn a_container_counts_as_running_only_after_a_moment() {
    let wanted = busybox_wanted();
    let seen: Vec<Observed> = wanted
        .iter()
        .map(|w| Observed {
            id: w.name.clone(),
            name: w.name.clone(),
            key: Some(w.key.clone()),
            generation: w.generation,
            spec_hash: w.spec_hash.clone(),
            state: RunState::Running,
            created_unix: 1_000,
            ip: None,
            started_unix: None,
            restarts: 0,
        })
        .collect();
    let w: Vec<&Wanted> = wanted.iter().collect();
    let o: Vec<&Observed> = seen.iter().collect();
    let status = |now| replica_status(Desired::Running, &w, &o, None, now).0;
    assert_eq!(status(1_001), InstanceStatus::Starting);
    assert_eq!(status(1_000 + RUNNING_AFTER_SECS), InstanceStatus::Running);
}

#[test]
fn container_names_are_docker_safe() {
    let key = ContainerKey {
        path: "my ns/web@v1".into(),
        replica: 2,
        container: "app".into(),
    };
    assert_eq!(container_name("c", 3, &key), "monk-c-3-my-ns-web-v1-2-app");
}

fn with_entries(mut a: Assignment, extra: Vec<(&str, Tree)>) -> Assignment {
    if let Tree::Map(entries) = &mut a.definition {
        entries.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
    }
    a
}

fn map(pairs: Vec<(&str, Tree)>) -> Tree {
    Tree::Map(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

#[tokio::test]
async fn a_readiness_check_runs_exec_in_the_container_and_reports_ready() {
    let rt = FakeRuntime::default();
    let check = map(vec![(
        "readiness",
        map(vec![
            (
                "code",
                Tree::Str(r#"exec("app", "cat", "/tmp/ready") "yes" contains?"#.into()),
            ),
            ("period", Tree::Int(1)),
        ]),
    )]);
    let a = with_entries(
        assignment(0, 1, Desired::Running, "busybox"),
        vec![("checks", check)],
    );
    let secrets = no_secrets();
    let mut memo = Memo::default();
    let pass = reconcile(
        &rt,
        "c1",
        1,
        std::slice::from_ref(&a),
        &world(&secrets),
        &mut memo,
    )
    .await;
    let Command::WorkloadReport {
        status, message, ..
    } = &pass.reports[0]
    else {
        panic!("a report")
    };
    assert_eq!(*status, InstanceStatus::Running);
    assert!(
        message.contains("cat /tmp/ready: command not found"),
        "{message}"
    );
    // The file appears: the next check (a period later) finds the replica ready.
    rt.answer_exec("cat /tmp/ready", Ok("yes\n"));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let pass = reconcile(
        &rt,
        "c1",
        1,
        std::slice::from_ref(&a),
        &world(&secrets),
        &mut memo,
    )
    .await;
    let Command::WorkloadReport { status, .. } = &pass.reports[0] else {
        panic!("a report")
    };
    assert_eq!(*status, InstanceStatus::Ready);
}

#[tokio::test]
async fn a_replica_waits_for_its_dependencies_before_any_container_is_created() {
    let rt = FakeRuntime::default();
    let depends = map(vec![(
        "wait-for",
        map(vec![
            ("runnables", Tree::Seq(vec![Tree::Str("./db".into())])),
            ("timeout", Tree::Int(1)),
        ]),
    )]);
    let a = with_entries(
        assignment(0, 1, Desired::Running, "busybox"),
        vec![("depends", depends)],
    );
    let secrets = no_secrets();
    let mut memo = Memo::default();
    let mut w = world(&secrets);
    w.ready.insert("ns/db".into(), false);
    let pass = reconcile(&rt, "c1", 1, std::slice::from_ref(&a), &w, &mut memo).await;
    assert!(rt.containers().is_empty());
    assert!(
        matches!(&pass.reports[0], Command::WorkloadReport { status: InstanceStatus::Starting, message, .. } if message == "waiting for ns/db")
    );
    // Past the timeout the replica fails, naming what it waited for.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let pass = reconcile(&rt, "c1", 1, std::slice::from_ref(&a), &w, &mut memo).await;
    assert!(
        matches!(&pass.reports[0], Command::WorkloadReport { status: InstanceStatus::Failed, message, .. } if message.contains("ns/db not ready after 1s"))
    );
    // Once the dependency is ready, the containers come.
    w.ready.insert("ns/db".into(), true);
    reconcile(&rt, "c1", 1, std::slice::from_ref(&a), &w, &mut memo).await;
    assert_eq!(rt.containers().len(), 2);
}

/// A replica the peer's policy refuses fails with the refusal, before any image is
/// checked or container created; the same spec is admitted where the policy allows it.
#[tokio::test]
async fn a_privileged_replica_is_refused_by_policy_and_nothing_is_created() {
    let rt = FakeRuntime::default();
    let privileged = map(vec![
        ("image", Tree::Str("busybox".into())),
        ("privileged", Tree::Bool(true)),
    ]);
    let mut a = assignment(0, 1, Desired::Running, "busybox");
    a.definition = map(vec![
        ("defines", Tree::Str("runnable".into())),
        ("containers", map(vec![("main", privileged)])),
    ]);
    let mut assigned = vec![a];
    let reports = settle(&rt, &mut assigned).await;
    assert_eq!(
        reports,
        vec![(
            InstanceStatus::Failed,
            "policy: privileged containers are not allowed on peer alpha (monkd --allow-privileged)"
                .to_string()
        )]
    );
    assert!(rt.containers().is_empty());
    assert_eq!(rt.counts(), (0, 0));

    let open = AdmissionPolicy {
        allow_privileged: true,
        ..AdmissionPolicy::default()
    };
    let secrets = no_secrets();
    let w = World {
        policy: &open,
        ..world(&secrets)
    };
    let pass = reconcile(&rt, "c1", 1, &assigned, &w, &mut Memo::default()).await;
    assert!(pass.errors.is_empty(), "{:?}", pass.errors);
    assert_eq!(
        rt.containers(),
        vec![("monk-c1-1-ns-web-0-main".to_string(), true)]
    );

    // The peer restarted without the flag: what it now refuses goes.
    assigned[0].reported = None;
    let pass = pass_once(&rt, &assigned).await;
    assert!(rt.containers().is_empty());
    assert!(
        matches!(&pass.reports[..], [Command::WorkloadReport { status: InstanceStatus::Failed, message, .. }] if message.starts_with("policy: privileged")),
        "{:?}",
        pass.reports
    );
}

/// `${monk-volume-path}` is the peer's volume root; `--set` pointing it elsewhere is
/// refused, and so is a host path outside it.
#[tokio::test]
async fn the_volume_root_is_the_peers_and_paths_outside_it_are_refused() {
    let container = |path: &str| {
        map(vec![
            ("image", Tree::Str("busybox".into())),
            ("paths", Tree::Seq(vec![Tree::Str(path.into())])),
        ])
    };
    let runnable = |path: &str| {
        let mut a = assignment(0, 1, Desired::Running, "busybox");
        a.definition = map(vec![
            ("defines", Tree::Str("runnable".into())),
            ("containers", map(vec![("main", container(path))])),
        ]);
        a
    };
    let root = AdmissionPolicy {
        volume_root: "/srv/monk".into(),
        ..AdmissionPolicy::default()
    };
    let secrets = no_secrets();
    let w = World {
        policy: &root,
        ..world(&secrets)
    };
    let a = runnable("<- `${monk-volume-path}/app:/data`");
    let (wanted, _) = super::spec::spec_of("c1", 1, &a, &w).expect("admitted");
    assert_eq!(wanted[0].spec.mounts[0].source, "/srv/monk/app");

    let mut elsewhere = a.clone();
    elsewhere
        .overrides
        .insert("monk-volume-path".into(), "/etc".into());
    assert_eq!(
        super::spec::spec_of("c1", 1, &elsewhere, &w).map(|_| ()),
        Err(
            "policy: monk-volume-path /etc is not allowed on peer alpha: it must be under \
             /srv/monk (monkd --allow-host-paths PREFIX)"
                .to_string()
        )
    );
    let rt = FakeRuntime::default();
    let pass = reconcile(
        &rt,
        "c1",
        1,
        &[runnable("/var/run/docker.sock:/var/run/docker.sock")],
        &w,
        &mut Memo::default(),
    )
    .await;
    assert!(
        matches!(&pass.reports[0], Command::WorkloadReport { status: InstanceStatus::Failed, message, .. }
            if message.starts_with("policy: host path /var/run/docker.sock (container main) is not allowed on peer alpha")),
        "{:?}",
        pass.reports
    );
    assert!(rt.containers().is_empty());
}

/// A pull from a registry with a credential logs in with its user and the opened
/// global secret (Docker Hub images, named without a host, with `docker.io`'s); a
/// registry without one pulls anonymously; a credential whose secret is missing fails
/// the replica naming the registry and the secret when a pull is needed, and only
/// then.
#[tokio::test]
async fn pulls_log_in_with_the_registry_credential_of_the_image_host() {
    use crate::keys::ClusterKey;
    use monk_statemachine::state::secret_key;
    use monk_statemachine::{RegistryCredential, Secret, SecretScope};

    let credential = |host: &str, user: &str| {
        (
            host.to_string(),
            RegistryCredential {
                host: host.into(),
                username: user.into(),
                password_secret: "pw".into(),
                set_at_index: 1,
            },
        )
    };
    let registries = BTreeMap::from([credential("ghcr.io", "ci"), credential("docker.io", "hub")]);
    let key = ClusterKey::generate().expect("a key");
    let name = secret_key("pw", &SecretScope::Global);
    let sealed = key.seal(&name, b"s3cret").expect("sealed");
    let secret = Secret {
        name: "pw".into(),
        scope: SecretScope::Global,
        sealed,
        set_at_index: 1,
    };
    let with_secret = WorkloadSecrets {
        sealed: BTreeMap::from([(name, secret)]),
        key: Some(key),
    };
    let rt = FakeRuntime::default();
    let images = ["ghcr.io/acme/app:1", "nginx:1", "127.0.0.1:5000/app:1"];
    let assigned: Vec<Assignment> = images
        .iter()
        .enumerate()
        .map(|(i, image)| assignment(i as u32, 1, Desired::Running, image))
        .collect();
    let mut w = world(&with_secret);
    w.registries = &registries;
    reconcile(&rt, "c1", 1, &assigned, &w, &mut Memo::default()).await;
    let logins: BTreeMap<String, Option<(String, String, String)>> = rt
        .pulls()
        .into_iter()
        .map(|(image, auth)| (image, auth.map(|a| (a.registry, a.username, a.password))))
        .collect();
    let login = |r: &str, u: &str| Some((r.to_string(), u.to_string(), "s3cret".to_string()));
    assert_eq!(logins["ghcr.io/acme/app:1"], login("ghcr.io", "ci"));
    assert_eq!(logins["nginx:1"], login("docker.io", "hub"));
    assert_eq!(logins["127.0.0.1:5000/app:1"], None);

    // The secret is not set: an image already present still runs (no pull, no
    // login), a missing one fails naming the registry and the secret.
    let rt = FakeRuntime::default();
    let secrets = no_secrets();
    let mut w = world(&secrets);
    w.registries = &registries;
    let pass = reconcile(&rt, "c1", 1, &assigned[..1], &w, &mut Memo::default()).await;
    assert!(!rt.containers().is_empty(), "{:?}", pass.reports);
    assert!(
        pass.reports.iter().all(|r| !matches!(
            r,
            Command::WorkloadReport {
                status: InstanceStatus::Failed,
                ..
            }
        )),
        "{:?}",
        pass.reports
    );
    let rt = FakeRuntime::default();
    rt.remove_image(images[0]);
    let pass = reconcile(&rt, "c1", 1, &assigned[..1], &w, &mut Memo::default()).await;
    assert!(rt.containers().is_empty());
    let Some(Command::WorkloadReport {
        status, message, ..
    }) = pass.reports.first()
    else {
        panic!("no report: {:?}", pass.reports);
    };
    assert_eq!(*status, InstanceStatus::Failed);
    assert!(
        message.contains("registry ghcr.io") && message.contains("no global secret pw"),
        "{message}"
    );
}
