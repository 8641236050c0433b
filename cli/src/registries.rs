//! `monk registry add | list | rm`: credentials the peers' engines log in with when they
//! pull from outside registries (`docker login` for the whole cluster). The password is
//! a global secret (`monk secrets add -g NAME=VALUE`); the log holds only its name.

use clap::Subcommand;
use monk_statemachine::pull_credentials::canonical_host;
use monk_statemachine::{Applied, Command, RegistryRow};

use crate::{actor, connect, json, table, Failure, Outcome, Output, OutputArg};

#[derive(Subcommand, Debug)]
pub enum RegistryCmd {
    /// Log pulls from HOST in as USER with the password in a global secret:
    /// `monk secrets add -g ghcr-token=...` then
    /// `monk registry add ghcr.io --username ci --password-secret ghcr-token`.
    /// Replaces HOST's credential if it has one. Docker Hub is `docker.io`.
    Add {
        /// The registry's host (`ghcr.io`, `registry.example.com:5000`; a URL is cut
        /// down to its host; `index.docker.io` is written `docker.io`).
        host: String,
        #[arg(long, short = 'u')]
        username: String,
        /// The global secret holding the password or token.
        #[arg(long, value_name = "SECRET")]
        password_secret: String,
    },
    /// Registries with a credential: host, user, password secret and whether it is set
    /// (never the password).
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        out: OutputArg,
        /// Answer from the addressed peer's state without asking the leader.
        #[arg(long)]
        stale: bool,
    },
    /// Pull from HOST without credentials again.
    #[command(visible_alias = "remove")]
    Rm { host: String },
}

pub async fn run(addr: &str, cmd: RegistryCmd) -> Outcome {
    match cmd {
        RegistryCmd::Add {
            host,
            username,
            password_secret,
        } => add(addr, &host, username, password_secret).await,
        RegistryCmd::List { out, stale } => {
            let rows = connect(addr).await?.registries(stale).await?;
            match out.output {
                Output::Json => json(&rows),
                Output::Table => Ok(registry_table(&rows)),
            }
        }
        RegistryCmd::Rm { host } => remove(addr, &host).await,
    }
}

fn host_of(input: &str) -> Result<String, Failure> {
    canonical_host(input)
        .map_err(|why| Failure::usage(format!("registry: {input:?} is not a registry host: {why}")))
}

async fn add(addr: &str, host: &str, username: String, password_secret: String) -> Outcome {
    let host = host_of(host)?;
    let command = Command::RegistryCredentialSet {
        host: host.clone(),
        username: username.clone(),
        password_secret: password_secret.clone(),
    };
    let mut client = connect(addr).await?;
    let outcome = client.propose(&actor(), command).await?;
    if let Applied::Rejected { reason } = outcome.applied {
        return Err(Failure::failed(format!("registry add: {reason}")));
    }
    let mut text = format!(
        "registry {host}: pulls log in as {username} with secret {password_secret} (index {})\n",
        outcome.index
    );
    let rows = client.registries(false).await?;
    if rows.iter().any(|r| r.host == host && !r.secret_set) {
        text.push_str(&format!(
            "note: no global secret {password_secret} yet; pulls from {host} fail until `monk secrets add -g {password_secret}=PASSWORD`\n"
        ));
    }
    Ok(text)
}

async fn remove(addr: &str, host: &str) -> Outcome {
    let host = host_of(host)?;
    let command = Command::RegistryCredentialRemoved { host: host.clone() };
    let outcome = connect(addr).await?.propose(&actor(), command).await?;
    match outcome.applied {
        Applied::Accepted { .. } => Ok(format!(
            "registry {host}: credential removed at index {}\n",
            outcome.index
        )),
        Applied::Rejected { reason } => Err(Failure::failed(format!("registry rm: {reason}"))),
    }
}

fn registry_table(rows: &[RegistryRow]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let secret = match r.secret_set {
                true => r.password_secret.clone(),
                false => format!("{} (not set)", r.password_secret),
            };
            vec![r.host.clone(), r.username.clone(), secret]
        })
        .collect();
    table::render(&["REGISTRY", "USERNAME", "PASSWORD SECRET"], &cells)
}
