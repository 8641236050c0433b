//! Typed views of definitions: Rust structs for every entity kind and every section of
//! the reference, built from a [`Tree`] (usually a resolved one, as executors need it).
//!
//! Any scalar in MonkScript may be an ArrowScript computed at run time, so scalar fields
//! are [`Scalar`]s (a literal or a script), never bare `i64`s. Keys a struct does not
//! name are kept in `extra`, in order, so nothing written is lost. The key lists
//! (`KEYS`) are the same as the validation tables in [`super::schema`] (a test checks it).

use crate::tree::Tree;

use super::model::{normalize_path, VariableType};

/// A scalar value as written: a literal, or an ArrowScript (`<- …`, stored without the arrow).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    /// Canonical float text.
    Float(String),
    Text(String),
    Script(String),
}

impl Scalar {
    /// The scalar of a tree value; `None` for lists and maps.
    pub fn from_tree(tree: &Tree) -> Option<Scalar> {
        Some(match tree {
            Tree::Null => Scalar::Null,
            Tree::Bool(b) => Scalar::Bool(*b),
            Tree::Int(i) => Scalar::Int(*i),
            Tree::Float(f) => Scalar::Float(f.clone()),
            Tree::Str(s) => match s.trim_start().strip_prefix("<-") {
                Some(script) => Scalar::Script(script.trim().to_string()),
                None => Scalar::Text(s.clone()),
            },
            Tree::Seq(_) | Tree::Map(_) => return None,
        })
    }

    /// The literal as text (`None` for null and scripts).
    pub fn text(&self) -> Option<String> {
        match self {
            Scalar::Bool(b) => Some(b.to_string()),
            Scalar::Int(i) => Some(i.to_string()),
            Scalar::Float(s) | Scalar::Text(s) => Some(s.clone()),
            Scalar::Null | Scalar::Script(_) => None,
        }
    }
}

fn scalar_list(tree: &Tree) -> Vec<Scalar> {
    match tree {
        Tree::Seq(items) => items.iter().filter_map(Scalar::from_tree).collect(),
        other => Scalar::from_tree(other).into_iter().collect(),
    }
}

fn named<T>(tree: &Tree, build: fn(&Tree) -> T) -> Vec<(String, T)> {
    match tree {
        Tree::Map(entries) => entries
            .iter()
            .filter(|(k, _)| k != "defines")
            .map(|(k, v)| (k.clone(), build(v)))
            .collect(),
        _ => Vec::new(),
    }
}

fn one_or_many<T>(tree: &Tree, build: fn(&Tree) -> T) -> Vec<T> {
    match tree {
        Tree::Seq(items) => items.iter().map(build).collect(),
        Tree::Null => Vec::new(),
        other => vec![build(other)],
    }
}

macro_rules! field_type {
    (scalar) => { Option<Scalar> };
    (list) => { Vec<Scalar> };
    (tree) => { Option<Tree> };
    (variables) => { Vec<(String, Variable)> };
    ({$t:ident}) => { Option<$t> };
    ([$t:ident]) => { Vec<(String, $t)> };
    ((many $t:ident)) => { Vec<$t> };
}

macro_rules! convert {
    (scalar, $v:expr) => {
        Scalar::from_tree($v)
    };
    (list, $v:expr) => {
        scalar_list($v)
    };
    (tree, $v:expr) => {
        Some($v.clone())
    };
    (variables, $v:expr) => {
        named($v, Variable::from_tree)
    };
    ({$t:ident}, $v:expr) => {
        Some($t::from_tree($v))
    };
    ([$t:ident], $v:expr) => {
        named($v, $t::from_tree)
    };
    ((many $t:ident), $v:expr) => {
        one_or_many($v, $t::from_tree)
    };
}

macro_rules! typed_map {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident : $kind:tt = $key:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: field_type!($kind),)*
            /// Keys this struct does not name, in order (custom fields, `inherits`, …).
            pub extra: Vec<(String, Tree)>,
        }

        impl $name {
            /// The keys this struct reads, as written in MonkScript.
            pub const KEYS: &'static [&'static str] = &[$($key),*];

            /// Reads a map; a `defines:` marker (old kits) is ignored, other values kept in `extra`.
            pub fn from_tree(tree: &Tree) -> $name {
                let mut out = $name::default();
                if let Tree::Map(entries) = tree {
                    for (key, value) in entries {
                        match key.as_str() {
                            $($key => out.$field = convert!($kind, value),)*
                            "defines" => {}
                            _ => out.extra.push((key.clone(), value.clone())),
                        }
                    }
                }
                out
            }
        }
    };
}

/// A variable in short (`name: value`) or long (`name: {type, value, …}`) form.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Variable {
    pub ty: Option<VariableType>,
    pub value: Option<Tree>,
    pub env: Option<Scalar>,
    pub description: Option<Scalar>,
    pub required: Option<Scalar>,
    pub long_form: bool,
}

impl Variable {
    pub fn from_tree(tree: &Tree) -> Variable {
        let long = matches!(tree, Tree::Map(entries) if entries.iter().any(|(k, _)| matches!(k.as_str(), "type" | "value" | "env" | "description" | "required")));
        if !long {
            return Variable {
                value: Some(tree.clone()),
                ..Variable::default()
            };
        }
        Variable {
            ty: tree
                .get("type")
                .and_then(Tree::as_str)
                .and_then(VariableType::parse),
            value: tree.get("value").cloned(),
            env: tree.get("env").and_then(Scalar::from_tree),
            description: tree.get("description").and_then(Scalar::from_tree),
            required: tree.get("required").and_then(Scalar::from_tree),
            long_form: true,
        }
    }
}

typed_map!(Hooks {
    container_started: scalar = "container-started",
    container_stopped: scalar = "container-stopped",
    container_starting: scalar = "container-starting",
    container_stopping: scalar = "container-stopping"
});
typed_map!(MountedSecret {
    path: scalar = "path",
    unmount_on: scalar = "unmount-on",
    timeout: scalar = "timeout"
});
typed_map!(Ulimit {
    soft: scalar = "soft",
    hard: scalar = "hard"
});
typed_map!(Logs {
    quota: scalar = "quota",
    count: scalar = "count"
});
typed_map!(Resources {
    requests: tree = "requests",
    limits: tree = "limits"
});
typed_map!(MountedVolume {
    path: scalar = "path",
    subdir: scalar = "subdir"
});

typed_map!(
    /// `containers.<name>`.
    Container {
        image: scalar = "image",
        image_tag: scalar = "image-tag",
        arch: scalar = "arch",
        ports: list = "ports",
        paths: list = "paths",
        environment: list = "environment",
        bash: scalar = "bash",
        cmd: tree = "cmd",
        command: tree = "command",
        entrypoint: tree = "entrypoint",
        workdir: scalar = "workdir",
        user: scalar = "user",
        restart: scalar = "restart",
        stop_signal: scalar = "stop-signal",
        stop_grace_period: scalar = "stop-grace-period",
        hooks: {Hooks} = "hooks",
        mounted_secrets: [MountedSecret] = "mounted-secrets",
        mounted_volumes: [MountedVolume] = "mounted-volumes",
        labels: tree = "labels",
        privileged: scalar = "privileged",
        cap_add: list = "cap-add",
        cap_drop: list = "cap-drop",
        ulimits: [Ulimit] = "ulimits",
        cpuquota: scalar = "cpuquota",
        memory: scalar = "memory",
        shm_size: scalar = "shm-size",
        logs: {Logs} = "logs",
        dockerfile: scalar = "dockerfile",
        build: scalar = "build",
        resources: {Resources} = "resources",
    }
);

typed_map!(IngressRoute {
    path_prefix: scalar = "path-prefix",
    path: scalar = "path"
});

typed_map!(
    /// `services.<name>`.
    Service {
        container: scalar = "container",
        port: scalar = "port",
        protocol: scalar = "protocol",
        publish: scalar = "publish",
        host_port: scalar = "host-port",
        description: scalar = "description",
        ingress_routes: [IngressRoute] = "ingress-routes",
        address: scalar = "address",
    }
);

typed_map!(
    /// `connections.<name>`.
    Connection {
        target: scalar = "target",
        runnable: scalar = "runnable",
        entity: scalar = "entity",
        service: scalar = "service",
        optional: scalar = "optional",
        description: scalar = "description",
        user: scalar = "user",
    }
);

typed_map!(
    /// `files.<name>`.
    FileSpec {
        container: scalar = "container",
        path: scalar = "path",
        mode: scalar = "mode",
        chmod: scalar = "chmod",
        contents: scalar = "contents",
        raw: scalar = "raw",
        pass_empty: scalar = "pass-empty",
    }
);

typed_map!(
    /// `checks.<name>` (`code` is ArrowScript for runnables, JavaScript for entities).
    Check { code: scalar = "code", period: scalar = "period", initial_delay: scalar = "initialDelay", attempts: scalar = "attempts", timeout: scalar = "timeout" }
);

typed_map!(WaitFor {
    runnables: list = "runnables",
    timeout: scalar = "timeout"
});
typed_map!(Depends {
    wait_for: { WaitFor } = "wait-for"
});

typed_map!(
    /// `scale`.
    Scale {
        value: scalar = "value",
        min: scalar = "min",
        max: scalar = "max",
        interval: scalar = "interval",
        throttle_up: scalar = "throttle-up",
        throttle_down: scalar = "throttle-down",
        metrics: tree = "metrics",
    }
);

typed_map!(Backup {
    every: scalar = "every",
    kind: scalar = "kind",
    rotation_days: scalar = "rotation-days",
    start_time: scalar = "start-time",
    start_day: scalar = "start-day"
});
typed_map!(Volume {
    kind: scalar = "kind",
    size: scalar = "size",
    path: scalar = "path",
    name: scalar = "name",
    backup: { Backup } = "backup"
});
typed_map!(Affinity {
    tag: scalar = "tag",
    name: scalar = "name",
    ignore_pressure: scalar = "ignore-pressure",
    resident: scalar = "resident"
});
typed_map!(Recovery {
    after: scalar = "after",
    mode: scalar = "mode",
    when: scalar = "when",
    kill_on_recovery: scalar = "kill-on-recovery"
});
typed_map!(Argument {
    ty: scalar = "type",
    description: scalar = "description",
    default: tree = "default"
});
typed_map!(Action {
    description: scalar = "description",
    code: scalar = "code",
    arguments: [Argument] = "arguments"
});
typed_map!(Requirements {
    cpu: scalar = "CPU",
    ram: scalar = "RAM",
    gpu: scalar = "GPU",
    disk: scalar = "disk"
});

typed_map!(
    /// `metadata` (any other key is kept in `extra`).
    Metadata {
        name: scalar = "name",
        description: scalar = "description",
        website: scalar = "website",
        source: scalar = "source",
        publisher: scalar = "publisher",
        icon: scalar = "icon",
        tags: tree = "tags",
        private: scalar = "private",
        email: scalar = "email",
        license: scalar = "license",
        version: scalar = "version",
    }
);

typed_map!(HealthCheck {
    kind: scalar = "kind",
    url: scalar = "url",
    interval: scalar = "interval",
    request: scalar = "request",
    response: scalar = "response"
});

typed_map!(
    /// `balancers.<name>` (groups).
    Balancer {
        ty: scalar = "type",
        port: scalar = "port",
        frontend_port: scalar = "frontend-port",
        instances: list = "instances",
        domain: scalar = "domain",
        tls_certificate: scalar = "tls-certificate",
        tls_chain: scalar = "tls-chain",
        tls_key: scalar = "tls-key",
        health_check: {HealthCheck} = "health-check",
    }
);

typed_map!(
    /// `nodes.<name>`: a machine provisioned when the runnable runs.
    NodeSpec {
        provider: scalar = "provider",
        tag: scalar = "tag",
        instance_type: scalar = "instance-type",
        region: scalar = "region",
        zone: scalar = "zone",
        disk_size: scalar = "disk-size",
        name: scalar = "name",
    }
);

typed_map!(
    /// `defines: runnable`.
    Runnable {
        containers: [Container] = "containers",
        variables: variables = "variables",
        files: [FileSpec] = "files",
        connections: [Connection] = "connections",
        services: [Service] = "services",
        checks: [Check] = "checks",
        depends: (many Depends) = "depends",
        recovery: {Recovery} = "recovery",
        affinity: {Affinity} = "affinity",
        volumes: [Volume] = "volumes",
        scale: {Scale} = "scale",
        metadata: {Metadata} = "metadata",
        requirements: {Requirements} = "requirements",
        actions: [Action] = "actions",
        permitted_secrets: tree = "permitted-secrets",
        monk_ui: tree = "monk-ui",
        version: scalar = "version",
        nodes: [NodeSpec] = "nodes",
        description: scalar = "description",
        deprecated: scalar = "deprecated",
        /// Legacy top-level readiness check of old kits.
        readiness: {Check} = "readiness",
    }
);

typed_map!(
    /// `defines: group` (and the deprecated `process-group`).
    Group {
        members: list = "members",
        /// Deprecated spelling of `members`.
        runnable_list: list = "runnable-list",
        variables: variables = "variables",
        metadata: {Metadata} = "metadata",
        affinity: {Affinity} = "affinity",
        permitted_secrets: tree = "permitted-secrets",
        monk_ui: tree = "monk-ui",
        actions: [Action] = "actions",
        balancers: [Balancer] = "balancers",
        version: scalar = "version",
        description: scalar = "description",
        depends: (many Depends) = "depends",
    }
);

typed_map!(
    /// `defines: entity`: an entity type (JSON-Schema `schema`, JavaScript `lifecycle`).
    EntityType {
        schema: tree = "schema",
        state_schema: tree = "state-schema",
        variables: variables = "variables",
        services: [Service] = "services",
        connections: [Connection] = "connections",
        metadata: {Metadata} = "metadata",
        requires: list = "requires",
        lifecycle: tree = "lifecycle",
        checks: [Check] = "checks",
        permitted_secrets: tree = "permitted-secrets",
        depends: (many Depends) = "depends",
        version: scalar = "version",
    }
);

typed_map!(
    /// An entity instance (`defines: ns/type`, or the older `entity-instance` + `entity:`);
    /// the type's own fields are in `extra`.
    Instance {
        entity: scalar = "entity",
        variables: variables = "variables",
        metadata: {Metadata} = "metadata",
        services: [Service] = "services",
        connections: [Connection] = "connections",
        checks: [Check] = "checks",
        depends: (many Depends) = "depends",
        permitted_secrets: tree = "permitted-secrets",
    }
);

typed_map!(
    /// `defines: module`: shared JavaScript.
    Module { source: scalar = "source", types: scalar = "types", requires: list = "requires", metadata: {Metadata} = "metadata" }
);

typed_map!(
    /// `defines: service`: an external thing with variables and actions.
    ServiceDefinition {
        variables: variables = "variables",
        actions: [Action] = "actions",
        metadata: {Metadata} = "metadata",
        services: [Service] = "services",
        connections: [Connection] = "connections",
    }
);

impl Group {
    /// `members` followed by the deprecated `runnable-list`.
    pub fn all_members(&self) -> impl Iterator<Item = &Scalar> {
        self.members.iter().chain(self.runnable_list.iter())
    }
}

/// A definition read into the struct of its kind.
#[derive(Clone, Debug, PartialEq)]
pub enum TypedDefinition {
    Runnable(Box<Runnable>),
    Group(Box<Group>),
    EntityType(Box<EntityType>),
    /// The normalised type path and the instance.
    Instance(String, Box<Instance>),
    Module(Box<Module>),
    Service(Box<ServiceDefinition>),
    /// No (known) `defines`: an abstract base or fragment, kept as written.
    Other(Tree),
}

impl TypedDefinition {
    /// Reads the definition at `path` (`namespace/name`), dispatching on its `defines`.
    pub fn from_tree(path: &str, tree: &Tree) -> TypedDefinition {
        let namespace = path.rsplit_once('/').map_or("", |(ns, _)| ns);
        match tree.get("defines").and_then(Tree::as_str) {
            Some("runnable") => TypedDefinition::Runnable(Box::new(Runnable::from_tree(tree))),
            Some("group" | "process-group") => {
                TypedDefinition::Group(Box::new(Group::from_tree(tree)))
            }
            Some("entity") => TypedDefinition::EntityType(Box::new(EntityType::from_tree(tree))),
            Some("module") => TypedDefinition::Module(Box::new(Module::from_tree(tree))),
            Some("service") => {
                TypedDefinition::Service(Box::new(ServiceDefinition::from_tree(tree)))
            }
            Some("entity-instance") => {
                let instance = Instance::from_tree(tree);
                let ty = instance
                    .entity
                    .as_ref()
                    .and_then(Scalar::text)
                    .map(|t| normalize_path(&t, namespace))
                    .unwrap_or_default();
                TypedDefinition::Instance(ty, Box::new(instance))
            }
            Some(ty) if ty.contains('/') => TypedDefinition::Instance(
                normalize_path(ty, namespace),
                Box::new(Instance::from_tree(tree)),
            ),
            _ => TypedDefinition::Other(tree.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monkscript::schema;

    fn same_keys(typed: &[&str], table: &schema::Schema) {
        let table: Vec<&str> = table.keys().collect();
        assert_eq!(
            typed,
            table.as_slice(),
            "typed struct and schema table for `{}` differ",
            table.first().unwrap_or(&"")
        );
    }

    #[test]
    fn typed_structs_read_the_keys_validation_checks() {
        same_keys(Container::KEYS, &schema::CONTAINER);
        same_keys(Service::KEYS, &schema::SERVICE);
        same_keys(Connection::KEYS, &schema::CONNECTION);
        same_keys(FileSpec::KEYS, &schema::FILE);
        same_keys(Check::KEYS, &schema::CHECK);
        same_keys(Scale::KEYS, &schema::SCALE);
        same_keys(Volume::KEYS, &schema::VOLUME);
        same_keys(Affinity::KEYS, &schema::AFFINITY);
        same_keys(Recovery::KEYS, &schema::RECOVERY);
        same_keys(Action::KEYS, &schema::ACTION);
        same_keys(Requirements::KEYS, &schema::REQUIREMENTS);
        same_keys(Metadata::KEYS, &schema::METADATA);
        same_keys(Balancer::KEYS, &schema::BALANCER);
        same_keys(NodeSpec::KEYS, &schema::NODE);
        same_keys(Hooks::KEYS, &schema::HOOKS);
        same_keys(Backup::KEYS, &schema::BACKUP);
        same_keys(WaitFor::KEYS, &schema::WAIT_FOR);
    }

    #[test]
    fn reads_a_runnable_with_scripts_and_both_variable_forms() {
        let text = "defines: runnable\nvariables:\n  port: 80\n  host:\n    type: string\n    value: <- connection-hostname(\"db\")\n    env: HOST\ncontainers:\n  web:\n    image: nginx\n    ports: [\"80:80\"]\n    hooks: {container-started: warm}\ndepends:\n  - wait-for: {runnables: [a/b], timeout: 30}\n";
        let tree = crate::monkscript::syntax::parse(text)
            .unwrap()
            .documents
            .remove(0)
            .to_tree();
        let TypedDefinition::Runnable(runnable) = TypedDefinition::from_tree("ns/app", &tree)
        else {
            panic!("not a runnable")
        };
        let (name, web) = &runnable.containers[0];
        assert_eq!(
            (name.as_str(), web.image.clone()),
            ("web", Some(Scalar::Text("nginx".into())))
        );
        assert_eq!(
            web.hooks.as_ref().and_then(|h| h.container_started.clone()),
            Some(Scalar::Text("warm".into()))
        );
        let host = &runnable.variables[1].1;
        assert_eq!(
            (host.ty, host.env.clone()),
            (
                Some(VariableType::String),
                Some(Scalar::Text("HOST".into()))
            )
        );
        assert_eq!(
            host.value.as_ref().and_then(Scalar::from_tree),
            Some(Scalar::Script("connection-hostname(\"db\")".into()))
        );
        assert_eq!(
            runnable.depends[0]
                .wait_for
                .as_ref()
                .map(|w| w.runnables.len()),
            Some(1)
        );
    }

    #[test]
    fn instances_keep_custom_fields() {
        let tree = crate::monkscript::syntax::parse(
            "defines: ./bucket-type\nname: photos\nvariables: {a: 1}\n",
        )
        .unwrap()
        .documents
        .remove(0)
        .to_tree();
        let TypedDefinition::Instance(ty, instance) = TypedDefinition::from_tree("ns/mine", &tree)
        else {
            panic!("not an instance")
        };
        assert_eq!(ty, "ns/bucket-type");
        assert_eq!(
            instance.extra,
            vec![("name".to_string(), Tree::Str("photos".into()))]
        );
    }
}
