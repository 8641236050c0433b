//! The detection rules, as data: one row per framework ([`FRAMEWORKS`]) with the
//! evidence it needs, one row per backing service ([`BACKING`]), and per runtime where
//! its dependencies are declared and how its code reads environment variables
//! ([`RUNTIMES`]). Nothing else in the crate names a framework; adding one is a row.
//!
//! A framework matches a component when the runtime's dependency manifests declare
//! its `dependency` (when it has one) and one of its `evidence` strings appears in a
//! source file of that runtime (or, written `file:PATH`, that file exists in the
//! component). Its `command` starts it: `{module}` is the dotted module of the file the
//! evidence was found in (`app/main.py` → `app.main`), `{var}` the variable that line
//! assigns (`api = FastAPI()` → `api`, else `app`), `{file}` that file's path, `{port}`
//! the port found, `{django}` the package holding `wsgi.py`, `{project}` the .NET
//! project file's stem, `{redis-url}` the stack's Redis.

use serde::Serialize;

/// What a process does, which decides its runnable's readiness check and whether it
/// needs a container at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Serves HTTP: a port, a service, an HTTP readiness check.
    ApiServer,
    /// Consumes a queue: no port; ready while its process lives.
    Worker,
    /// Runs tasks on a schedule (Celery beat, cron).
    Scheduler,
    /// Files a browser loads: no container (served by any static host or CDN).
    StaticSite,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ApiServer => "api server",
            Role::Worker => "worker",
            Role::Scheduler => "scheduled tasks",
            Role::StaticSite => "static front end",
        }
    }
}

/// A language runtime: its files, and its row in [`RUNTIMES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runtime {
    Node,
    Python,
    Go,
    Java,
    Ruby,
    #[serde(rename = "dotnet")]
    DotNet,
    /// HTML, CSS and JavaScript for a browser.
    Web,
}

/// One framework a component may be built on.
#[derive(Debug)]
pub struct Framework {
    pub name: &'static str,
    pub role: Role,
    pub runtime: Runtime,
    /// A dependency the runtime's manifests must declare; `None` for the standard
    /// library (Go's `net/http`).
    pub dependency: Option<&'static str>,
    /// Any one of these in a source file of the runtime, or `file:PATH` existing.
    pub evidence: &'static [&'static str],
    /// The port when none is found in the code.
    pub default_port: Option<u16>,
    /// How the process starts (see the module docs for the placeholders).
    pub command: &'static [&'static str],
}

/// Every framework `monk containerize` recognises.
pub const FRAMEWORKS: &[Framework] = &[
    Framework {
        name: "Express",
        role: Role::ApiServer,
        runtime: Runtime::Node,
        dependency: Some("express"),
        evidence: &[
            "express()",
            "require('express')",
            "require(\"express\")",
            "from 'express'",
            "from \"express\"",
        ],
        default_port: Some(3000),
        command: &["node", "{file}"],
    },
    Framework {
        name: "BullMQ",
        role: Role::Worker,
        runtime: Runtime::Node,
        dependency: Some("bullmq"),
        evidence: &["new Worker("],
        default_port: None,
        command: &["node", "{file}"],
    },
    Framework {
        name: "node-cron",
        role: Role::Scheduler,
        runtime: Runtime::Node,
        dependency: Some("node-cron"),
        evidence: &["cron.schedule("],
        default_port: None,
        command: &["node", "{file}"],
    },
    Framework {
        name: "FastAPI",
        role: Role::ApiServer,
        runtime: Runtime::Python,
        dependency: Some("fastapi"),
        evidence: &["FastAPI("],
        default_port: Some(8000),
        command: &[
            "uvicorn",
            "{module}:{var}",
            "--host",
            "0.0.0.0",
            "--port",
            "{port}",
        ],
    },
    Framework {
        name: "Flask",
        role: Role::ApiServer,
        runtime: Runtime::Python,
        dependency: Some("flask"),
        evidence: &["Flask(__name__)"],
        default_port: Some(5000),
        command: &["gunicorn", "--bind", "0.0.0.0:{port}", "{module}:{var}"],
    },
    Framework {
        name: "Django",
        role: Role::ApiServer,
        runtime: Runtime::Python,
        dependency: Some("django"),
        evidence: &["file:manage.py"],
        default_port: Some(8000),
        command: &["gunicorn", "--bind", "0.0.0.0:{port}", "{django}.wsgi"],
    },
    Framework {
        name: "Celery",
        role: Role::Worker,
        runtime: Runtime::Python,
        dependency: Some("celery"),
        evidence: &["Celery("],
        default_port: None,
        command: &["celery", "-A", "{module}", "worker", "--loglevel=info"],
    },
    Framework {
        name: "Celery beat",
        role: Role::Scheduler,
        runtime: Runtime::Python,
        dependency: Some("celery"),
        evidence: &["beat_schedule"],
        default_port: None,
        command: &["celery", "-A", "{module}", "beat", "--loglevel=info"],
    },
    Framework {
        name: "RQ",
        role: Role::Worker,
        runtime: Runtime::Python,
        dependency: Some("rq"),
        evidence: &["from rq import", "import rq"],
        default_port: None,
        command: &["rq", "worker", "--url", "{redis-url}"],
    },
    Framework {
        name: "Go net/http",
        role: Role::ApiServer,
        runtime: Runtime::Go,
        dependency: None,
        evidence: &["http.ListenAndServe("],
        default_port: Some(8080),
        command: &["/app/server"],
    },
    Framework {
        name: "Spring Boot",
        role: Role::ApiServer,
        runtime: Runtime::Java,
        dependency: Some("spring-boot-starter-web"),
        evidence: &["@SpringBootApplication"],
        default_port: Some(8080),
        command: &["java", "-jar", "/app/app.jar"],
    },
    Framework {
        name: "Rails",
        role: Role::ApiServer,
        runtime: Runtime::Ruby,
        dependency: Some("rails"),
        evidence: &["file:config/application.rb"],
        default_port: Some(3000),
        command: &[
            "bundle", "exec", "rails", "server", "-b", "0.0.0.0", "-p", "{port}",
        ],
    },
    Framework {
        name: "Sidekiq",
        role: Role::Worker,
        runtime: Runtime::Ruby,
        dependency: Some("sidekiq"),
        evidence: &["include Sidekiq::Job", "include Sidekiq::Worker"],
        default_port: None,
        command: &["bundle", "exec", "sidekiq"],
    },
    Framework {
        name: "ASP.NET",
        role: Role::ApiServer,
        runtime: Runtime::DotNet,
        dependency: Some("Microsoft.NET.Sdk.Web"),
        evidence: &["WebApplication.CreateBuilder("],
        default_port: Some(8080),
        command: &["dotnet", "{project}.dll"],
    },
    Framework {
        name: "static site",
        role: Role::StaticSite,
        runtime: Runtime::Web,
        dependency: None,
        evidence: &["file:index.html", "file:public/index.html"],
        default_port: None,
        command: &[],
    },
];

/// A service the code talks to that runs from a stock image.
#[derive(Debug)]
pub struct Backing {
    /// The runnable's name, and its DNS name's first label.
    pub name: &'static str,
    pub image: &'static str,
    pub tag: &'static str,
    pub port: u16,
    /// Client libraries that mean the code talks to it (any runtime).
    pub dependencies: &'static [&'static str],
    /// Environment variables that carry its address: `*_URL` get `url`, `*_HOST` the
    /// host name.
    pub variables: &'static [&'static str],
    /// `{host}` is the runnable's name on the overlay (`redis.NAMESPACE.monk`).
    pub url: &'static str,
    /// Environment variables its container needs, with their values.
    pub environment: &'static [(&'static str, &'static str)],
}

/// Every backing service `monk containerize` recognises.
pub const BACKING: &[Backing] = &[
    Backing {
        name: "redis",
        image: "redis",
        tag: "7-alpine",
        port: 6379,
        dependencies: &["redis", "ioredis", "bullmq", "rq", "sidekiq"],
        variables: &[
            "REDIS_URL",
            "REDIS_HOST",
            "CELERY_BROKER_URL",
            "CELERY_RESULT_BACKEND",
        ],
        url: "redis://{host}:6379/0",
        environment: &[],
    },
    Backing {
        name: "postgres",
        image: "postgres",
        tag: "16-alpine",
        port: 5432,
        dependencies: &[
            "pg",
            "psycopg2",
            "psycopg2-binary",
            "psycopg",
            "asyncpg",
            "postgresql",
            "org.postgresql",
        ],
        variables: &["DATABASE_URL", "POSTGRES_HOST", "PGHOST"],
        url: "postgres://app:app@{host}:5432/app",
        environment: &[
            ("POSTGRES_USER", "app"),
            ("POSTGRES_PASSWORD", "app"),
            ("POSTGRES_DB", "app"),
        ],
    },
    Backing {
        name: "mongodb",
        image: "mongo",
        tag: "7",
        port: 27017,
        dependencies: &["mongodb", "mongoose", "pymongo", "motor", "mongoid"],
        variables: &["MONGODB_URI", "MONGO_URL", "MONGO_HOST"],
        url: "mongodb://{host}:27017/app",
        environment: &[],
    },
];

/// What a runtime's components look like and how its code reads the environment.
#[derive(Debug)]
pub struct RuntimeRow {
    pub runtime: Runtime,
    /// Files that declare dependencies (`*.csproj`: any file with that extension).
    pub manifests: &'static [&'static str],
    /// Extensions of its source files.
    pub sources: &'static [&'static str],
    /// Text that precedes an environment variable's name in code (`process.env.`).
    pub env_readers: &'static [&'static str],
}

pub const RUNTIMES: &[RuntimeRow] = &[
    RuntimeRow {
        runtime: Runtime::Node,
        manifests: &["package.json"],
        sources: &["js", "mjs", "cjs", "ts"],
        env_readers: &["process.env.", "process.env[\"", "process.env['"],
    },
    RuntimeRow {
        runtime: Runtime::Python,
        manifests: &["requirements.txt", "pyproject.toml", "Pipfile"],
        sources: &["py"],
        env_readers: &[
            "os.environ[\"",
            "os.environ['",
            "os.environ.get(\"",
            "os.environ.get('",
            "os.getenv(\"",
            "os.getenv('",
        ],
    },
    RuntimeRow {
        runtime: Runtime::Go,
        manifests: &["go.mod"],
        sources: &["go"],
        env_readers: &["os.Getenv(\"", "os.LookupEnv(\""],
    },
    RuntimeRow {
        runtime: Runtime::Java,
        manifests: &["pom.xml", "build.gradle", "build.gradle.kts"],
        sources: &["java", "kt", "properties", "yml"],
        env_readers: &["System.getenv(\"", "${"],
    },
    RuntimeRow {
        runtime: Runtime::Ruby,
        manifests: &["Gemfile"],
        sources: &["rb"],
        env_readers: &["ENV[\"", "ENV['", "ENV.fetch(\"", "ENV.fetch('"],
    },
    RuntimeRow {
        runtime: Runtime::DotNet,
        manifests: &["*.csproj"],
        sources: &["cs"],
        env_readers: &["Environment.GetEnvironmentVariable(\""],
    },
    RuntimeRow {
        runtime: Runtime::Web,
        manifests: &[],
        sources: &["html", "js"],
        env_readers: &[],
    },
];

/// The row of `runtime`.
pub fn runtime_row(runtime: Runtime) -> &'static RuntimeRow {
    // Every `Runtime` has a row (checked by a test); the first is a harmless fallback.
    RUNTIMES
        .iter()
        .find(|r| r.runtime == runtime)
        .unwrap_or(&RUNTIMES[0])
}

/// Dependencies that serve a health endpoint, and its path (used when the code names
/// none itself).
pub const HEALTH_DEPENDENCIES: &[(&str, &str)] =
    &[("spring-boot-starter-actuator", "/actuator/health")];

/// Files whose presence makes a directory a component, besides a runtime's manifests.
pub const CONTAINER_FILES: &[&str] = &["Containerfile", "Dockerfile"];

/// Files that hold cron schedules (reported as scheduled tasks).
pub const CRON_FILES: &[&str] = &["crontab", "cron.d"];
