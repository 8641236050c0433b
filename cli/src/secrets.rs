//! `monk secrets add | list | get | rm`: values are sealed by the peer that receives
//! them, so only sealed bytes enter the log; `list` shows names only.

use clap::{Args, Subcommand};
use monk_statemachine::{Applied, Command, SecretScope};

use crate::{actor, connect, json, table, Failure, Outcome, Output, OutputArg};

#[derive(Args, Debug, Clone)]
pub struct ScopeArgs {
    /// A global secret (readable by runnables whose permitted-secrets name it).
    #[arg(short = 'g', long, conflicts_with = "runnable")]
    global: bool,
    /// A secret scoped to this runnable or entity path.
    #[arg(short = 'r', long, value_name = "PATH")]
    runnable: Option<String>,
}

impl ScopeArgs {
    /// The scope as the API takes it: empty for global, else the path.
    fn scope(&self) -> Result<String, Failure> {
        match (&self.runnable, self.global) {
            (Some(path), _) => Ok(path.trim_start_matches('/').to_string()),
            (None, true) => Ok(String::new()),
            (None, false) => Err(Failure::usage(
                "say where the secret lives: -g (global) or -r PATH (scoped to a runnable)",
            )),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum SecretsCmd {
    /// Set secrets: `monk secrets add -g db-password='s3cret'`.
    Add {
        #[command(flatten)]
        scope: ScopeArgs,
        #[arg(required = true, value_name = "NAME=VALUE")]
        pairs: Vec<String>,
    },
    /// Secret names, scopes and when they were set (never values).
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        out: OutputArg,
    },
    /// Print a secret's value.
    Get {
        #[command(flatten)]
        scope: ScopeArgs,
        name: String,
    },
    /// Remove a secret.
    #[command(visible_alias = "remove")]
    Rm {
        #[command(flatten)]
        scope: ScopeArgs,
        name: String,
    },
}

pub async fn run(addr: &str, cmd: SecretsCmd) -> Outcome {
    let mut client = connect(addr).await?;
    match cmd {
        SecretsCmd::Add { scope, pairs } => {
            let scope = scope.scope()?;
            let mut names = Vec::new();
            for pair in &pairs {
                let (name, value) = pair
                    .split_once('=')
                    .filter(|(n, _)| !n.is_empty())
                    .ok_or_else(|| {
                        Failure::usage(format!(
                            "{:?}: expected NAME=VALUE",
                            pair.split('=').next().unwrap_or("")
                        ))
                    })?;
                client.set_secret(name, &scope, value, &actor()).await?;
                names.push(name.to_string());
            }
            let place = if scope.is_empty() {
                "global".to_string()
            } else {
                format!("for {scope}")
            };
            Ok(format!("✔ Set {} ({place})\n", names.join(", ")))
        }
        SecretsCmd::List { out } => {
            let rows: serde_json::Value = client.secret_names().await?;
            if out.output == Output::Json {
                return json(&rows);
            }
            let cells: Vec<Vec<String>> = rows
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    let scope = match s["scope"]["scope"].as_str() {
                        Some("entity") => s["scope"]["path"].as_str().unwrap_or("").to_string(),
                        _ => "global".to_string(),
                    };
                    vec![
                        s["name"].as_str().unwrap_or("").to_string(),
                        scope,
                        s["set_at_index"].to_string(),
                    ]
                })
                .collect();
            Ok(table::render(&["NAME", "SCOPE", "SET AT"], &cells))
        }
        SecretsCmd::Get { scope, name } => {
            let value = client.get_secret(&name, &scope.scope()?).await?;
            Ok(value + "\n")
        }
        SecretsCmd::Rm { scope, name } => {
            let scope = match scope.scope()? {
                s if s.is_empty() => SecretScope::Global,
                s => SecretScope::Entity(s),
            };
            let command = Command::SecretRemoved {
                name: name.clone(),
                scope,
            };
            match client.propose(&actor(), command).await?.applied {
                Applied::Accepted { .. } => Ok(format!("✔ Removed {name}\n")),
                Applied::Rejected { reason } => Err(Failure::failed(reason.to_string())),
            }
        }
    }
}
