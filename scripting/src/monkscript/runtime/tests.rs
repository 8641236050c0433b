//! Tests of [`super::runnable_spec`] on small runnables written as YAML.

use std::collections::BTreeMap;

use super::*;
use crate::arrow::StubHost;

fn tree(yaml: &str) -> Tree {
    crate::monkscript::syntax::parse(yaml)
        .expect("test YAML parses")
        .documents
        .remove(0)
        .to_tree()
}

fn spec_with(yaml: &str, overrides: &[(&str, &str)]) -> Result<RunnableSpec, Vec<SpecError>> {
    let overrides: BTreeMap<String, String> = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    runnable_spec("ns/app", &tree(yaml), &overrides, &mut StubHost)
}

fn spec(yaml: &str) -> RunnableSpec {
    spec_with(yaml, &[]).unwrap_or_else(|errors| panic!("unexpected errors: {errors:?}"))
}

fn errors(yaml: &str, overrides: &[(&str, &str)]) -> Vec<String> {
    match spec_with(yaml, overrides) {
        Ok(spec) => panic!("expected errors, got {spec:?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

const WEB: &str = "defines: runnable
variables:
  http-port: 8080
  version: \"1.25\"
  debug:
    type: bool
    value: true
    env: DEBUG_MODE
  log-level: <- $debug then(\"debug\") or(\"info\")
  db-host:
    type: string
    value: <- connection-hostname(\"db\")
    env: DB_HOST
containers:
  web:
    image: nginx
    image-tag: <- $version
    ports:
      - <- `${http-port}:80`
      - 127.0.0.1:9090:9090/udp
    paths:
      - <- `${monk-volume-path}/web:/usr/share/nginx/html:ro`
    environment:
      - <- `LOG_LEVEL=${log_level}`
      - DB_HOST=override
    bash: nginx -g 'daemon off;'
    restart: on-failure:3
    memory: 512m
    stop-grace-period: 1m
    ulimits:
      nofile: {soft: 1024, hard: 2048}
    labels: [\"tier=web\"]
    resources:
      requests: {cpu: 250m, memory: 128}
services:
  http:
    container: web
    port: 80
    host-port: <- $http-port
files:
  conf:
    container: web
    path: /etc/nginx/conf.d/default.conf
    mode: 0644
    contents: \"listen {{ v \\\"http-port\\\" }};{{ if v \\\"debug\\\" }} debug{{ end }}\"
";

#[test]
fn a_full_runnable_becomes_a_container_spec() {
    let spec = spec(WEB);
    assert_eq!(spec.variables["log-level"], "debug");
    assert_eq!(spec.variables["db-host"], "db.monk");
    let web = &spec.containers[0];
    assert_eq!(web.image, "nginx:1.25");
    assert_eq!(web.cmd, Some(vec!["nginx -g 'daemon off;'".to_string()]));
    assert_eq!(
        web.entrypoint.as_ref().map(|e| e[0].as_str()),
        Some("/bin/sh")
    );
    assert_eq!(
        web.env,
        vec![
            ("DEBUG_MODE".to_string(), "true".to_string()),
            ("DB_HOST".to_string(), "override".to_string()),
            ("LOG_LEVEL".to_string(), "debug".to_string()),
        ]
    );
    assert_eq!(
        web.ports.len(),
        2,
        "service port 8080->80 is already in `ports`"
    );
    assert_eq!(web.ports[0].host_port, Some(8080));
    assert_eq!(web.ports[1].protocol, Protocol::Udp);
    assert_eq!(
        web.mounts[0].source,
        format!("{DEFAULT_MONK_VOLUME_PATH}/web")
    );
    assert!(web.mounts[0].read_only);
    assert_eq!(
        web.restart,
        RestartPolicy::OnFailure {
            max_retries: Some(3)
        }
    );
    assert_eq!(web.memory_bytes, Some(512 << 20));
    assert_eq!(web.stop_grace_secs, Some(60));
    assert_eq!(web.ulimits[0].hard, 2048);
    assert_eq!(web.labels, vec![("tier".to_string(), "web".to_string())]);
    assert_eq!(web.files[0].mode, 0o644);
    assert_eq!(web.files[0].contents, b"listen 8080; debug".to_vec());
    assert_eq!(
        spec.requests,
        Requests {
            cpu_millis: 250,
            memory_mb: 128
        }
    );
    assert_eq!(spec.services[0].host_port, Some(8080));
    let json = serde_json::to_string(&spec).unwrap();
    assert_eq!(serde_json::from_str::<RunnableSpec>(&json).unwrap(), spec);
}

#[test]
fn overrides_replace_values_and_are_type_checked() {
    let spec = spec_with(WEB, &[("http-port", "9000"), ("monk-volume-path", "/vol")]).unwrap();
    assert_eq!(spec.variables["http-port"], "9000");
    let web = &spec.containers[0];
    assert_eq!(web.ports[0].host_port, Some(9000));
    assert_eq!(web.mounts[0].source, "/vol/web");
    assert_eq!(web.files[0].contents, b"listen 9000; debug".to_vec());
    let errs = errors(WEB, &[("http-port", "ninety")]);
    assert!(
        errs[0].starts_with("variables.http-port: string \"ninety\" is not a valid int"),
        "{errs:?}"
    );
    let errs = errors(WEB, &[("no-such", "1")]);
    assert!(errs[0].contains("variables.no-such"), "{errs:?}");
}

#[test]
fn required_variables_without_value_are_errors() {
    let yaml = "defines: runnable
variables:
  password: {type: string, required: true}
containers:
  db: {image: postgres}
";
    let errs = errors(yaml, &[]);
    assert_eq!(
        errs,
        vec!["variables.password: is required but has no value (set it with --set)"]
    );
    let spec = spec_with(yaml, &[("password", "s3cret")]).unwrap();
    assert_eq!(spec.variables["password"], "s3cret");
}

#[test]
fn variable_cycles_are_reported_once_with_their_members() {
    let yaml = "defines: runnable
variables:
  a: <- $b 1 add
  b: <- $c
  c: <- $a
  d: <- $a
  e: 5
  f-g: <- $f_g default(1)
containers:
  x: {image: busybox}
";
    let errs = errors(yaml, &[]);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("cycle: a -> b -> c -> a"), "{errs:?}");
}

#[test]
fn scripts_read_kebab_and_snake_names_and_errors_carry_columns() {
    let yaml = "defines: runnable
variables:
  db_port: 5432
  url: <- `pg://${db-port}`
containers:
  x:
    image: busybox
    workdir: <- $url 1 sub
    user: <- $group_only default(\"nobody\")
";
    let errs = errors(yaml, &[]);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("containers.x.workdir: ArrowScript error at column 11"),
        "{errs:?}"
    );
    let ok = spec(&yaml.replace("<- $url 1 sub", "<- $url"));
    assert_eq!(ok.containers[0].workdir.as_deref(), Some("pg://5432"));
    assert_eq!(
        ok.containers[0].user.as_deref(),
        Some("nobody"),
        "unknown names are nil"
    );
}

#[test]
fn commands_from_strings_lists_and_bash() {
    let yaml = "defines: runnable
containers:
  a: {image: x, entrypoint: \"/docker-entrypoint.sh --flag 'a b'\", cmd: [serve, \"<- `--port=${p}`\"]}
  b: {image: x, command: run}
  c: {image: x, bash: echo hi, entrypoint: /e}
  d: {image: x, bash: \"\", entrypoint: /e}
variables:
  p: 1
";
    let errs = errors(yaml, &[]);
    assert_eq!(
        errs,
        vec!["containers.c.bash: `bash` replaces `entrypoint`; write only one of them"]
    );
    let spec = spec(&yaml.replace(", entrypoint: /e", ""));
    let a = &spec.containers[0];
    assert_eq!(
        a.entrypoint,
        Some(vec![
            "/docker-entrypoint.sh".into(),
            "--flag".into(),
            "a b".into()
        ])
    );
    assert_eq!(a.cmd, Some(vec!["serve".into(), "--port=1".into()]));
    assert_eq!(spec.containers[1].cmd, Some(vec!["run".into()]));
}

#[test]
fn dropped_entries_and_malformed_fields() {
    let yaml = "defines: runnable
variables:
  on: false
containers:
  a:
    image: x
    ports: [<- $on then(\"80:80\"), \"81\"]
    environment: {A: 1, B: <- $on}
";
    let spec = spec(yaml);
    let a = &spec.containers[0];
    assert_eq!(a.ports.len(), 1);
    assert_eq!(
        a.env,
        vec![("A".into(), "1".into()), ("B".into(), "false".into())]
    );
    let bad = "defines: runnable
containers:
  a:
    image: nginx:1 2
    ports: [\"80:http\"]
    paths: [/only]
    environment: [NOVALUE]
    restart: sometimes
    memory: lots
    stop-grace-period: soon
    privileged: maybe
files:
  f: {container: b, path: relative, contents: x}
";
    let errs = errors(bad, &[]);
    let fields: Vec<&str> = errs.iter().map(|e| e.split(':').next().unwrap()).collect();
    assert_eq!(
        fields,
        vec![
            "containers.a.image",
            "containers.a.environment[0]",
            "containers.a.ports[0]",
            "containers.a.paths[0]",
            "containers.a.restart",
            "containers.a.privileged",
            "containers.a.memory",
            "containers.a.stop-grace-period",
            "files.f.container",
            "files.f.path",
        ],
        "{errs:#?}"
    );
}

#[test]
fn template_errors_name_the_file_and_raw_files_are_untouched() {
    let yaml = "defines: runnable
containers:
  a: {image: x}
files:
  tpl: {path: /a, contents: \"{{ .Env.X }}\"}
";
    let errs = errors(yaml, &[]);
    assert!(
        errs[0].starts_with("files.tpl.contents: unsupported template action"),
        "{errs:?}"
    );
    let spec = spec(&yaml.replace("contents:", "raw: true, contents:"));
    assert_eq!(
        spec.containers[0].files[0].contents,
        b"{{ .Env.X }}".to_vec()
    );
    assert_eq!(spec.containers[0].files[0].mode, DEFAULT_FILE_MODE);
}

#[test]
fn non_maps_and_empty_runnables_are_errors_not_panics() {
    let mut host = StubHost;
    let empty = BTreeMap::new();
    assert!(runnable_spec("ns/x", &Tree::Int(1), &empty, &mut host).is_err());
    let errs = errors("defines: runnable\n", &[]);
    assert_eq!(
        errs,
        vec!["containers: a runnable needs at least one container"]
    );
}
