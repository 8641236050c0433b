//! What each entity kind may contain: the sections of the MonkScript reference, every
//! key the reference lists for them (plus keys real kits use, noted per table), and the
//! type of each value. Validation walks definitions against these tables.
//!
//! Types are deliberately lenient where MonkScript is: any scalar may be an ArrowScript
//! (`<- …`) computed at run time, and numbers written as text are accepted where a
//! number is expected.

use super::model::Kind;

/// The type a value must have.
#[derive(Debug)]
pub enum Ty {
    /// Any scalar (string, number, bool); the usual case.
    Text,
    /// An integer (or numeric text, or a script).
    Int,
    /// A number (or numeric text, or a script).
    Number,
    /// A boolean (or `"true"`/`"false"`, or a script).
    Bool,
    /// ArrowScript source written without `<-` (`actions.*.code`, `checks.*.code`, `scale.value`).
    Script,
    /// A list of scalars (a single scalar script producing a list is accepted too).
    TextList,
    /// An entity path (`ns/name`, `./name`, `/ns/name`).
    Path,
    /// A list of entity paths.
    PathList,
    /// A map whose keys and values are free.
    Map,
    /// A map of names to booleans (`permitted-secrets`).
    BoolMap,
    /// Anything at all (JSON Schema, UI hints).
    Any,
    /// A map with the listed keys.
    Struct(&'static Schema),
    /// A map with the listed keys, or a list of such maps (`depends` in newer kits).
    StructOrList(&'static Schema),
    /// A map of user-chosen names to values of one type (`containers`, `services`…).
    Named(&'static Ty, NameRule),
    /// The `variables` section: names to short values or long-form maps.
    Variables,
}

/// How the names of a [`Ty::Named`] map must look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// Identifiers: kebab-case, warned about otherwise.
    Kebab,
    /// File names: letters, digits, dots, underscores, hyphens.
    FileName,
    /// Anything (e.g. ulimit names, check names).
    Free,
}

/// The keys of a map.
#[derive(Debug)]
pub struct Schema {
    pub name: &'static str,
    pub fields: &'static [(&'static str, Ty)],
    /// When true, keys not listed are allowed without a warning (e.g. `metadata`).
    pub open: bool,
}

impl Schema {
    pub fn field(&self, key: &str) -> Option<&'static Ty> {
        self.fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, ty)| ty)
    }

    pub fn keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.fields.iter().map(|(k, _)| *k)
    }
}

pub static HOOKS: Schema = Schema {
    name: "hooks",
    fields: &[
        ("container-started", Ty::Text),
        ("container-stopped", Ty::Text),
        ("container-starting", Ty::Text),
        ("container-stopping", Ty::Text),
    ],
    open: false,
};

pub static MOUNTED_SECRET: Schema = Schema {
    name: "mounted secret",
    fields: &[
        ("path", Ty::Text),
        ("unmount-on", Ty::Text),
        ("timeout", Ty::Text),
    ],
    open: false,
};

pub static ULIMIT: Schema = Schema {
    name: "ulimit",
    fields: &[("soft", Ty::Int), ("hard", Ty::Int)],
    open: false,
};

pub static LOGS: Schema = Schema {
    name: "logs",
    fields: &[("quota", Ty::Text), ("count", Ty::Int)],
    open: false,
};

pub static RESOURCES: Schema = Schema {
    name: "resources",
    fields: &[("requests", Ty::Map), ("limits", Ty::Map)],
    open: false,
};

pub static MOUNTED_VOLUME: Schema = Schema {
    name: "mounted volume",
    fields: &[("path", Ty::Text), ("subdir", Ty::Text)],
    open: false,
};

/// `containers.<name>`: every key of the reference, plus `command`, `mounted-volumes`,
/// `image-pull-policy`-style keys seen in kits are not invented here: only `command` and
/// `mounted-volumes` (MONK-REFERENCE §5.4) are added.
pub static CONTAINER: Schema = Schema {
    name: "container",
    fields: &[
        ("image", Ty::Text),
        ("image-tag", Ty::Text),
        ("arch", Ty::Text),
        ("ports", Ty::TextList),
        ("paths", Ty::TextList),
        ("environment", Ty::TextList),
        ("bash", Ty::Text),
        ("cmd", Ty::Any),
        ("command", Ty::Any),
        ("entrypoint", Ty::Any),
        ("workdir", Ty::Text),
        ("user", Ty::Text),
        ("restart", Ty::Text),
        ("stop-signal", Ty::Text),
        ("stop-grace-period", Ty::Text),
        ("hooks", Ty::Struct(&HOOKS)),
        (
            "mounted-secrets",
            Ty::Named(&Ty::Struct(&MOUNTED_SECRET), NameRule::Free),
        ),
        (
            "mounted-volumes",
            Ty::Named(&Ty::Struct(&MOUNTED_VOLUME), NameRule::Free),
        ),
        ("labels", Ty::Any),
        ("privileged", Ty::Bool),
        ("cap-add", Ty::TextList),
        ("cap-drop", Ty::TextList),
        ("ulimits", Ty::Named(&Ty::Struct(&ULIMIT), NameRule::Free)),
        ("cpuquota", Ty::Int),
        ("memory", Ty::Text),
        ("shm-size", Ty::Text),
        ("logs", Ty::Struct(&LOGS)),
        ("dockerfile", Ty::Text),
        // A context directory, or a map (`context`, `dockerfile`/`containerfile`):
        // checked by `build::build_sites`.
        ("build", Ty::Any),
        ("resources", Ty::Struct(&RESOURCES)),
    ],
    open: false,
};

pub static INGRESS_ROUTE: Schema = Schema {
    name: "ingress route",
    fields: &[("path-prefix", Ty::Text), ("path", Ty::Text)],
    open: false,
};

/// `services.<name>`; `ingress-routes` and `address` from MONK-REFERENCE §5.4.
pub static SERVICE: Schema = Schema {
    name: "service",
    fields: &[
        ("container", Ty::Text),
        ("port", Ty::Int),
        ("protocol", Ty::Text),
        ("publish", Ty::Bool),
        ("host-port", Ty::Int),
        ("description", Ty::Text),
        (
            "ingress-routes",
            Ty::Named(&Ty::Struct(&INGRESS_ROUTE), NameRule::Free),
        ),
        ("address", Ty::Text),
    ],
    open: false,
};

/// `connections.<name>`; `runnable`, `entity`, `user` from MONK-REFERENCE §5.4.
pub static CONNECTION: Schema = Schema {
    name: "connection",
    fields: &[
        ("target", Ty::Path),
        ("runnable", Ty::Path),
        ("entity", Ty::Path),
        ("service", Ty::Text),
        ("optional", Ty::Bool),
        ("description", Ty::Text),
        ("user", Ty::Text),
    ],
    open: false,
};

/// `files.<name>`; `chmod` and `pass-empty` from MONK-REFERENCE §5.4.
pub static FILE: Schema = Schema {
    name: "file",
    fields: &[
        ("container", Ty::Text),
        ("path", Ty::Text),
        ("mode", Ty::Text),
        ("chmod", Ty::Text),
        ("contents", Ty::Text),
        ("raw", Ty::Bool),
        ("pass-empty", Ty::Bool),
    ],
    open: false,
};

/// `checks.<name>` (`readiness`, `liveness`).
pub static CHECK: Schema = Schema {
    name: "check",
    fields: &[
        ("code", Ty::Script),
        ("period", Ty::Int),
        ("initialDelay", Ty::Int),
        ("attempts", Ty::Int),
        ("timeout", Ty::Int),
    ],
    open: false,
};

pub static WAIT_FOR: Schema = Schema {
    name: "wait-for",
    fields: &[("runnables", Ty::PathList), ("timeout", Ty::Int)],
    open: false,
};

pub static DEPENDS: Schema = Schema {
    name: "depends",
    fields: &[("wait-for", Ty::Struct(&WAIT_FOR))],
    open: false,
};

pub static SCALE: Schema = Schema {
    name: "scale",
    fields: &[
        ("value", Ty::Script),
        ("min", Ty::Int),
        ("max", Ty::Int),
        ("interval", Ty::Int),
        ("throttle-up", Ty::Int),
        ("throttle-down", Ty::Int),
        ("metrics", Ty::Map),
    ],
    open: false,
};

pub static BACKUP: Schema = Schema {
    name: "backup",
    fields: &[
        ("every", Ty::Int),
        ("kind", Ty::Text),
        ("rotation-days", Ty::Int),
        ("start-time", Ty::Text),
        ("start-day", Ty::Text),
    ],
    open: false,
};

pub static VOLUME: Schema = Schema {
    name: "volume",
    fields: &[
        ("kind", Ty::Text),
        ("size", Ty::Int),
        ("path", Ty::Text),
        ("name", Ty::Text),
        ("backup", Ty::Struct(&BACKUP)),
    ],
    open: false,
};

pub static AFFINITY: Schema = Schema {
    name: "affinity",
    fields: &[
        ("tag", Ty::Text),
        ("name", Ty::Text),
        ("ignore-pressure", Ty::Bool),
        ("resident", Ty::Bool),
    ],
    open: false,
};

pub static RECOVERY: Schema = Schema {
    name: "recovery",
    fields: &[
        ("after", Ty::Text),
        ("mode", Ty::Text),
        ("when", Ty::Text),
        ("kill-on-recovery", Ty::Text),
    ],
    open: false,
};

pub static ARGUMENT: Schema = Schema {
    name: "action argument",
    fields: &[
        ("type", Ty::Text),
        ("description", Ty::Text),
        ("default", Ty::Any),
    ],
    open: false,
};

pub static ACTION: Schema = Schema {
    name: "action",
    fields: &[
        ("description", Ty::Text),
        ("code", Ty::Script),
        (
            "arguments",
            Ty::Named(&Ty::Struct(&ARGUMENT), NameRule::Free),
        ),
    ],
    open: false,
};

pub static REQUIREMENTS: Schema = Schema {
    name: "requirements",
    fields: &[
        ("CPU", Ty::Number),
        ("RAM", Ty::Int),
        ("GPU", Ty::Bool),
        ("disk", Ty::Int),
    ],
    open: false,
};

/// `metadata`: the listed keys plus any other ("arbitrary keys allowed", MONK-REFERENCE §5.1).
pub static METADATA: Schema = Schema {
    name: "metadata",
    fields: &[
        ("name", Ty::Text),
        ("description", Ty::Text),
        ("website", Ty::Text),
        ("source", Ty::Text),
        ("publisher", Ty::Text),
        ("icon", Ty::Text),
        ("tags", Ty::Any),
        ("private", Ty::Bool),
        ("email", Ty::Text),
        ("license", Ty::Text),
        ("version", Ty::Text),
    ],
    open: true,
};

pub static HEALTH_CHECK: Schema = Schema {
    name: "health-check",
    fields: &[
        ("kind", Ty::Text),
        ("url", Ty::Text),
        ("interval", Ty::Int),
        ("request", Ty::Text),
        ("response", Ty::Text),
    ],
    open: false,
};

/// `balancers.<name>` (groups, MONK-REFERENCE §5.5).
pub static BALANCER: Schema = Schema {
    name: "balancer",
    fields: &[
        ("type", Ty::Text),
        ("port", Ty::Int),
        ("frontend-port", Ty::Int),
        ("instances", Ty::PathList),
        ("domain", Ty::Text),
        ("tls-certificate", Ty::Text),
        ("tls-chain", Ty::Text),
        ("tls-key", Ty::Text),
        ("health-check", Ty::Struct(&HEALTH_CHECK)),
    ],
    open: false,
};

/// `nodes.<name>` (provisioning via templates, MONK-REFERENCE §5.4).
pub static NODE: Schema = Schema {
    name: "node",
    fields: &[
        ("provider", Ty::Text),
        ("tag", Ty::Text),
        ("instance-type", Ty::Text),
        ("region", Ty::Text),
        ("zone", Ty::Text),
        ("disk-size", Ty::Int),
        ("name", Ty::Text),
    ],
    open: false,
};

/// Every section any kind knows, with its type. A kind allows a subset ([`allowed_sections`]).
pub static SECTIONS: Schema = Schema {
    name: "definition",
    fields: &[
        (
            "containers",
            Ty::Named(&Ty::Struct(&CONTAINER), NameRule::Kebab),
        ),
        ("variables", Ty::Variables),
        ("files", Ty::Named(&Ty::Struct(&FILE), NameRule::FileName)),
        (
            "connections",
            Ty::Named(&Ty::Struct(&CONNECTION), NameRule::Kebab),
        ),
        (
            "services",
            Ty::Named(&Ty::Struct(&SERVICE), NameRule::Kebab),
        ),
        ("checks", Ty::Named(&Ty::Struct(&CHECK), NameRule::Free)),
        ("depends", Ty::StructOrList(&DEPENDS)),
        ("recovery", Ty::Struct(&RECOVERY)),
        ("affinity", Ty::Struct(&AFFINITY)),
        ("volumes", Ty::Named(&Ty::Struct(&VOLUME), NameRule::Kebab)),
        ("scale", Ty::Struct(&SCALE)),
        ("metadata", Ty::Struct(&METADATA)),
        ("requirements", Ty::Struct(&REQUIREMENTS)),
        ("actions", Ty::Named(&Ty::Struct(&ACTION), NameRule::Kebab)),
        ("permitted-secrets", Ty::BoolMap),
        ("monk-ui", Ty::Any),
        ("version", Ty::Text),
        ("nodes", Ty::Named(&Ty::Struct(&NODE), NameRule::Kebab)),
        (
            "balancers",
            Ty::Named(&Ty::Struct(&BALANCER), NameRule::Kebab),
        ),
        ("members", Ty::PathList),
        ("runnable-list", Ty::PathList),
        ("schema", Ty::Any),
        ("state-schema", Ty::Any),
        ("lifecycle", Ty::Map),
        ("requires", Ty::TextList),
        ("source", Ty::Text),
        ("types", Ty::Text),
        ("entity", Ty::Path),
        ("description", Ty::Text),
        ("deprecated", Ty::Bool),
        // Old kits: a top-level readiness check, or `check:` in place of `checks:` (MONK-REFERENCE §5.4).
        ("readiness", Ty::Struct(&CHECK)),
        ("check", Ty::Any),
    ],
    open: false,
};

/// Keys every definition may carry besides its sections.
pub const COMMON_KEYS: [&str; 2] = ["defines", "inherits"];

/// Sections the `[override]` suffix may be written on (reference: "Override Syntax").
pub const OVERRIDABLE: [&str; 3] = ["connections", "depends", "affinity"];

/// Runnable sections (reference "Runnable Sections"; plus `nodes`, `description`,
/// `deprecated`, and the legacy `readiness`/`check` that real kits use).
const RUNNABLE: &[&str] = &[
    "containers",
    "variables",
    "files",
    "connections",
    "services",
    "checks",
    "depends",
    "recovery",
    "affinity",
    "volumes",
    "scale",
    "metadata",
    "requirements",
    "actions",
    "permitted-secrets",
    "monk-ui",
    "version",
    "nodes",
    "description",
    "deprecated",
    "readiness",
    "check",
];

/// Group sections (reference "Group Sections"; plus `actions`, `balancers`, `version`,
/// `description` and `depends` from MONK-REFERENCE §5.5 and real kits).
const GROUP: &[&str] = &[
    "members",
    "runnable-list",
    "variables",
    "metadata",
    "affinity",
    "permitted-secrets",
    "monk-ui",
    "actions",
    "balancers",
    "version",
    "description",
    "depends",
    "deprecated",
];

/// Entity type sections (reference; plus `state-schema`, `checks`, `permitted-secrets`,
/// `depends`, `version`, `monk-ui` from MONK-REFERENCE §5.7).
const ENTITY_TYPE: &[&str] = &[
    "schema",
    "state-schema",
    "variables",
    "services",
    "connections",
    "metadata",
    "requires",
    "lifecycle",
    "checks",
    "permitted-secrets",
    "depends",
    "version",
    "monk-ui",
    "description",
];

/// Entity instance sections (reference "Entity Instance Sections"); custom fields are
/// free, so unknown keys are not reported for instances.
const INSTANCE: &[&str] = &[
    "variables",
    "metadata",
    "monk-ui",
    "services",
    "connections",
    "checks",
    "depends",
    "permitted-secrets",
    "version",
    "entity",
];

const MODULE: &[&str] = &[
    "source",
    "types",
    "requires",
    "metadata",
    "version",
    "description",
];

/// Services: variables and actions, no containers (MONK-REFERENCE §5.6).
const SERVICE_KIND: &[&str] = &[
    "variables",
    "actions",
    "metadata",
    "services",
    "connections",
    "depends",
    "permitted-secrets",
    "monk-ui",
    "version",
    "description",
];

/// The sections `kind` accepts; `None` means any known section (abstract bases serve every kind).
pub fn allowed_sections(kind: &Kind) -> Option<&'static [&'static str]> {
    match kind {
        Kind::Runnable => Some(RUNNABLE),
        Kind::Group | Kind::ProcessGroup => Some(GROUP),
        Kind::EntityType => Some(ENTITY_TYPE),
        Kind::Instance(_) | Kind::EntityInstance => Some(INSTANCE),
        Kind::Module => Some(MODULE),
        Kind::Service => Some(SERVICE_KIND),
        Kind::Abstract | Kind::Unknown(_) | Kind::Fragment(_) => None,
    }
}

/// Whether unknown keys in a definition of `kind` are custom fields (entity instances).
pub fn allows_custom_fields(kind: &Kind) -> bool {
    matches!(kind, Kind::Instance(_) | Kind::EntityInstance)
}

/// The built-in `defines:` values, for "did you mean".
pub const BUILTIN_KINDS: [&str; 7] = [
    "runnable",
    "group",
    "process-group",
    "entity",
    "entity-instance",
    "module",
    "service",
];
