//! The fixture matrix: small sample apps under `tests/fixtures/`, each analysed as
//! `monk containerize` does; the report and every file it would write are kept in
//! `tests/expect/<app>.txt` (`UPDATE_EXPECT=1` rewrites them), and each generated
//! MonkScript file must pass `monk lint --strict`.

use std::path::Path;

use monk_containerize::rules::{runtime_row, Role, FRAMEWORKS, RUNTIMES};
use monk_containerize::{plan, report, STACK_FILE};

const APPS: &[&str] = &[
    "node-express",
    "python-fastapi-celery",
    "go-nethttp",
    "java-spring",
    "ruby-rails-sidekiq",
    "dotnet-aspnet",
    "static-site",
    "existing-dockerfile",
    "monorepo",
];

fn fixture(app: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(app)
}

/// The report, then every file it would write.
fn transcript(app: &str) -> String {
    let plan = plan(&fixture(app), app).expect("the fixture is readable");
    let mut text = report::text(&plan, false);
    for file in &plan.files {
        text.push_str(&format!("\n=== {} ===\n{}", file.path, file.text));
    }
    text
}

#[test]
fn every_fixture_matches_its_expected_report_and_files() {
    for app in APPS {
        let expected = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/expect")
            .join(format!("{app}.txt"));
        expect_test::expect_file![expected].assert_eq(&transcript(app));
    }
}

#[test]
fn every_generated_stack_lints_clean() {
    for app in APPS {
        let plan = plan(&fixture(app), app).expect("the fixture is readable");
        let Some(stack) = plan.files.iter().find(|f| f.path == STACK_FILE) else {
            assert_eq!(*app, "static-site", "{app} wrote no MonkScript");
            continue;
        };
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(STACK_FILE);
        std::fs::write(&file, &stack.text).unwrap();
        let linted = monk_scripting::monkscript::cli::lint_command(&[file], true, false);
        assert_eq!(
            linted.exit_code, 0,
            "{app}: monk lint --strict:\n{}{}\n{}",
            linted.stdout, linted.stderr, stack.text
        );
    }
}

#[test]
fn the_matrix_covers_every_required_framework() {
    let mut found: Vec<&str> = Vec::new();
    for app in APPS {
        let plan = plan(&fixture(app), app).unwrap();
        for c in &plan.components {
            found.extend(c.processes.iter().map(|p| p.framework));
        }
    }
    for framework in [
        "Express",
        "FastAPI",
        "Celery",
        "Celery beat",
        "Go net/http",
        "Spring Boot",
        "Rails",
        "Sidekiq",
        "ASP.NET",
        "static site",
        "existing container file",
    ] {
        assert!(found.contains(&framework), "no fixture shows {framework}");
    }
    let monorepo = plan(&fixture("monorepo"), "monorepo").unwrap();
    assert_eq!(monorepo.components.len(), 3);
}

#[test]
fn every_rule_has_its_runtime_row_and_evidence() {
    for framework in FRAMEWORKS {
        assert_eq!(runtime_row(framework.runtime).runtime, framework.runtime);
        assert!(!framework.evidence.is_empty(), "{}", framework.name);
        let runs = framework.role != Role::StaticSite;
        assert_eq!(!framework.command.is_empty(), runs, "{}", framework.name);
        assert_eq!(
            framework.default_port.is_some(),
            framework.role == Role::ApiServer,
            "{}",
            framework.name
        );
    }
    let mut runtimes: Vec<_> = RUNTIMES.iter().map(|r| r.runtime).collect();
    runtimes.dedup();
    assert_eq!(runtimes.len(), RUNTIMES.len(), "one row per runtime");
}
