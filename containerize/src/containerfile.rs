//! The Containerfile written for a component without one, per runtime: two stages
//! (dependencies, then the runtime image), a small base (alpine, slim or distroless
//! where the runtime allows), dependency manifests copied and installed before the
//! source so an edit to the code reuses the dependency layer, a non-root user, and a
//! `HEALTHCHECK` for a server (or, where the base has no shell, the reason it has none
//! and the MonkScript readiness check instead).

use crate::analyse::{Component, Process};
use crate::rules::{Role, Runtime};

/// The Containerfile for `component`, or `None` when it needs none (it has one, or is
/// a static front end) or its runtime has no template.
pub fn containerfile(component: &Component) -> Option<String> {
    if component.container_file.is_some() || !component.needs_container() {
        return None;
    }
    let main = main_process(component)?;
    let body = match component.runtime? {
        Runtime::Node => node(component),
        Runtime::Python => python(component),
        Runtime::Go => go(),
        Runtime::Java => java(component),
        Runtime::Ruby => ruby(component),
        Runtime::DotNet => dotnet(component),
        Runtime::Web => return None,
    };
    let mut text = format!(
        "# Written by `monk containerize` for {} ({}); edit it freely, it is yours now.\n",
        component.shown_dir(),
        component
            .processes
            .iter()
            .map(|p| p.framework)
            .collect::<Vec<_>>()
            .join(", ")
    );
    text.push_str(&body);
    text.push_str(&tail(component, main));
    Some(text)
}

/// The process whose command is the image's default: the server, else the first.
pub fn main_process(component: &Component) -> Option<&Process> {
    component
        .processes
        .iter()
        .find(|p| p.role == Role::ApiServer)
        .or_else(|| component.processes.first())
}

/// `EXPOSE`, `HEALTHCHECK` and `CMD`, common to every runtime.
fn tail(component: &Component, main: &Process) -> String {
    let mut text = String::new();
    let port = component.port.filter(|_| main.role == Role::ApiServer);
    if let Some(port) = port {
        text.push_str(&format!("EXPOSE {port}\n"));
    }
    match (port, component.runtime) {
        (Some(_), Some(Runtime::Go)) => text.push_str(
            "# The distroless base has no shell or wget, so no HEALTHCHECK can run in it:\n# the MonkScript readiness check probes the port from outside instead.\nHEALTHCHECK NONE\n",
        ),
        (Some(port), Some(Runtime::Python)) => text.push_str(&format!(
            "HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \\\n  CMD python -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{}', timeout=4)\" || exit 1\n",
            component.health_path
        )),
        (Some(port), _) => text.push_str(&format!(
            "HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \\\n  CMD wget -q -O /dev/null http://127.0.0.1:{port}{} || exit 1\n",
            component.health_path
        )),
        (None, _) => text.push_str(
            "# No HEALTHCHECK: a worker serves no port; it is healthy while its process runs\n# (Monk restarts it when it exits).\n",
        ),
    }
    let argv: Vec<String> = main.command.iter().map(|w| format!("{w:?}")).collect();
    text.push_str(&format!("CMD [{}]\n", argv.join(", ")));
    text
}

fn has(component: &Component, file: &str) -> bool {
    component.manifests.iter().any(|m| m == file)
}

fn node(component: &Component) -> String {
    let lock = component_has_lock(component);
    let install = match lock {
        true => "npm ci --omit=dev",
        false => "npm install --omit=dev",
    };
    format!(
        "FROM node:20-alpine AS deps
WORKDIR /app
COPY package*.json ./
RUN {install}

FROM node:20-alpine
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --chown=node:node . .
USER node
"
    )
}

/// Whether the component's tree has a `package-lock.json` (the scan lists manifests
/// only; the lock file's name is fixed).
fn component_has_lock(component: &Component) -> bool {
    component
        .lock_files
        .iter()
        .any(|f| f == "package-lock.json")
}

fn python(component: &Component) -> String {
    let install = match has(component, "requirements.txt") {
        true => "COPY requirements.txt ./\nRUN pip install -r requirements.txt\n",
        false => "COPY pyproject.toml ./\nRUN pip install .\n",
    };
    format!(
        "FROM python:3.12-slim AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /venv
ENV PATH=/venv/bin:$PATH
WORKDIR /app
{install}
FROM python:3.12-slim
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1
RUN useradd --create-home --uid 10001 app
WORKDIR /app
COPY --from=deps /venv /venv
COPY --chown=app:app . .
USER app
"
    )
}

fn go() -> String {
    "FROM golang:1.22-alpine AS build
WORKDIR /src
COPY go.mod go.sum* ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags=\"-s -w\" -o /out/server .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/server /app/server
USER nonroot:nonroot
"
    .to_string()
}

fn java(component: &Component) -> String {
    let build = match has(component, "pom.xml") {
        true => {
            "FROM maven:3.9-eclipse-temurin-21 AS build
WORKDIR /src
COPY pom.xml ./
RUN mvn -q -B dependency:go-offline
COPY src ./src
RUN mvn -q -B package -DskipTests && cp target/*.jar /app.jar
"
        }
        false => {
            "FROM gradle:8-jdk21 AS build
WORKDIR /src
COPY build.gradle* settings.gradle* ./
RUN gradle --no-daemon dependencies > /dev/null
COPY src ./src
RUN gradle --no-daemon bootJar && cp build/libs/*.jar /app.jar
"
        }
    };
    format!(
        "{build}
FROM eclipse-temurin:21-jre-alpine
RUN addgroup -S app && adduser -S app -G app
WORKDIR /app
COPY --from=build /app.jar /app/app.jar
USER app
"
    )
}

fn ruby(component: &Component) -> String {
    let rails = component.processes.iter().any(|p| p.framework == "Rails");
    let env = match rails {
        true => "ENV RAILS_ENV=production RAILS_LOG_TO_STDOUT=1\n",
        false => "",
    };
    format!(
        "FROM ruby:3.3-alpine AS deps
RUN apk add --no-cache build-base
WORKDIR /app
COPY Gemfile Gemfile.lock* ./
RUN bundle config set --local without 'development test' && bundle install --jobs 4

FROM ruby:3.3-alpine
RUN apk add --no-cache tzdata && addgroup -S app && adduser -S app -G app
WORKDIR /app
COPY --from=deps /usr/local/bundle /usr/local/bundle
COPY --chown=app:app . .
{env}USER app
"
    )
}

fn dotnet(component: &Component) -> String {
    let port = component.port.unwrap_or(8080);
    format!(
        "FROM mcr.microsoft.com/dotnet/sdk:8.0-alpine AS build
WORKDIR /src
COPY *.csproj ./
RUN dotnet restore
COPY . .
RUN dotnet publish -c Release -o /out --no-restore

FROM mcr.microsoft.com/dotnet/aspnet:8.0-alpine
ENV ASPNETCORE_URLS=http://+:{port}
WORKDIR /app
COPY --from=build /out ./
USER app
"
    )
}
