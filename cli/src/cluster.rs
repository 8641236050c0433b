//! `monk cluster` (create, join, tokens, peers, tags, leave, info) and `monk user`
//! (add, list, remove): setting up a cluster and who may use it.

use std::path::PathBuf;

use clap::Subcommand;
use monk_node::views::{InfoView, PeerRow};
use monk_statemachine::Command;

use crate::exit::Failure;
use crate::{
    connect, connect_with, credentials, json, opt, table, workloads, Outcome, Output, OutputArg,
};

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Withdraw an outstanding token, named by (a prefix of) its hash from `tokens`.
    Revoke { hash: String },
}

/// `--ttl`: a number with a unit, s, m, h or d.
fn ttl(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{text:?}: write a number and a unit, e.g. 90s, 30m, 1h, 7d");
    let split = text.len().checked_sub(1).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(bad()),
    };
    Ok(std::time::Duration::from_secs(seconds))
}

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Add a user (or give it a new credential or role) and print its credential file.
    Add {
        name: String,
        /// viewer: reads; operator: also runs, updates, scales, stops, execs; admin:
        /// also secrets, users, tokens, peers, raw data.
        #[arg(long, value_parser = role)]
        role: monk_statemachine::Role,
        /// Write the credential to this file (mode 0600) instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List users and their roles.
    List {
        #[command(flatten)]
        out: OutputArg,
    },
    /// Remove a user: its credential stops working on every peer.
    #[command(visible_alias = "rm")]
    Remove { name: String },
}

fn role(text: &str) -> Result<monk_statemachine::Role, String> {
    monk_statemachine::Role::parse(text)
        .ok_or_else(|| format!("{text:?}: a role is viewer, operator or admin"))
}

#[derive(Subcommand, Debug)]
pub enum ClusterCmd {
    /// Make the addressed peer a one-voter cluster.
    New {
        #[arg(short, long, default_value = "monk")]
        name: String,
        /// The IPv4 range peers get their overlay addresses and container subnets
        /// from (a /8 to a /20; a /16 holds 128 peers over the cluster's life).
        #[arg(long, value_name = "CIDR", default_value = monk_statemachine::overlay::OVERLAY_RANGE_DEFAULT, value_parser = overlay_range)]
        overlay: String,
        /// Let every workload reach every other on the overlay; by default only
        /// declared `connections` pass the firewall.
        #[arg(long)]
        open_network: bool,
    },
    /// Print a single-use join token for one new peer (admins only); `revoke HASH`
    /// withdraws one.
    Token {
        /// How long it admits a peer: 90s, 30m, 1h, 7d (default 1h, at most 30d).
        #[arg(long, value_parser = ttl)]
        ttl: Option<std::time::Duration>,
        #[command(subcommand)]
        action: Option<TokenCmd>,
    },
    /// List outstanding join tokens (their hashes) and when they expire.
    Tokens {
        #[command(flatten)]
        out: OutputArg,
    },
    /// Make the addressed peer join the cluster named in the token.
    Join {
        #[arg(long)]
        token: String,
    },
    /// List the cluster's peers.
    Peers {
        #[command(flatten)]
        out: OutputArg,
        #[arg(long)]
        stale: bool,
    },
    /// The addressed peer leaves the cluster.
    Leave,
    /// The addressed peer's id, name and address, and the cluster's name and leader.
    Info {
        #[command(flatten)]
        out: OutputArg,
    },
    /// Change a peer's tags: `monk cluster tag beta +gpu -spot`. Placement reacts at
    /// once: replicas that no longer fit move, pending ones may land.
    Tag {
        /// The peer, by name or id.
        peer: String,
        /// `+TAG` adds, `-TAG` removes.
        #[arg(required = true, allow_hyphen_values = true)]
        changes: Vec<String>,
    },
}

pub async fn cluster(addr: &str, cmd: ClusterCmd) -> Outcome {
    // A fresh peer has no cluster CA to check yet: set it up anonymously (it allows
    // that only from its own machine).
    let fresh = matches!(cmd, ClusterCmd::New { .. } | ClusterCmd::Join { .. });
    let mut client = match fresh {
        true => connect_with(addr, &credentials::anonymous()?).await?,
        false => connect(addr).await?,
    };
    match cmd {
        ClusterCmd::New {
            name,
            overlay,
            open_network,
        } => {
            let created = client
                .cluster_new_with(&name, Some(&overlay), open_network)
                .await?;
            let info = created.info;
            let kept = match credentials::remember(&created.credential)? {
                Some(path) => format!("The admin credential is in {}\n", path.display()),
                None => String::new(),
            };
            Ok(format!(
                "Your cluster has been created successfully: {} (peer {} at {})\n{kept}",
                opt(info.cluster),
                opt(info.id),
                info.address
            ))
        }
        ClusterCmd::Token { ttl, action: None } => Ok(client.issue_token_for(ttl).await? + "\n"),
        ClusterCmd::Token {
            action: Some(TokenCmd::Revoke { hash }),
            ..
        } => {
            let tokens = client.join_tokens().await?;
            let matching: Vec<_> = tokens
                .iter()
                .filter(|t| t.sha256.starts_with(&hash))
                .collect();
            let token = match matching.as_slice() {
                [one] => one.sha256.clone(),
                [] => return Err(Failure::failed(format!("no outstanding join token whose hash starts with {hash:?} (see monk cluster tokens)"))),
                _ => return Err(Failure::usage(format!("{hash:?} names {} tokens; give more of the hash", matching.len()))),
            };
            workloads::propose(
                &mut client,
                Command::JoinTokenRevoked {
                    token_sha256: token.clone(),
                },
            )
            .await?;
            Ok(format!(
                "Join token {} revoked\n",
                &token[..12.min(token.len())]
            ))
        }
        ClusterCmd::Tokens { out } => {
            let tokens = client.join_tokens().await?;
            if out.output == Output::Json {
                return json(&tokens);
            }
            let rows: Vec<Vec<String>> = tokens
                .iter()
                .map(|t| {
                    vec![
                        t.sha256[..16.min(t.sha256.len())].to_string(),
                        t.issued_at_index.to_string(),
                        t.expires_at_ms
                            .map_or("never".into(), monk_audit::time::format_ms),
                    ]
                })
                .collect();
            Ok(table::render(
                &["HASH", "ISSUED AT INDEX", "EXPIRES"],
                &rows,
            ))
        }
        ClusterCmd::Join { token } => {
            let info = client.cluster_join(&token).await?;
            if let Some(cluster) = &info.cluster {
                credentials::add_peer(cluster, addr);
            }
            Ok(format!(
                "Joined cluster {} as peer {}\n",
                opt(info.cluster),
                opt(info.id)
            ))
        }
        ClusterCmd::Leave => {
            let info = client.leave().await?;
            Ok(format!(
                "Peer {} left cluster {}\n",
                opt(info.id),
                opt(info.cluster)
            ))
        }
        ClusterCmd::Info { out } => {
            let info: InfoView = client.info().await?;
            if out.output == Output::Json {
                return json(&info);
            }
            Ok(format!(
                "peer id   {}\nname      {}\naddress   {}\ncluster   {}\nleader    {} ({})\n",
                opt(info.id),
                info.name,
                info.address,
                opt(info.cluster),
                opt(info.leader_id),
                opt(info.leader_address)
            ))
        }
        ClusterCmd::Tag { peer, changes } => {
            let mut add = Vec::new();
            let mut remove = Vec::new();
            for change in &changes {
                match change.split_at_checked(1) {
                    Some(("+", tag)) if !tag.is_empty() => add.push(tag.to_string()),
                    Some(("-", tag)) if !tag.is_empty() => remove.push(tag.to_string()),
                    _ => {
                        return Err(Failure::usage(format!(
                            "{change:?}: write +TAG to add a tag or -TAG to remove one"
                        )))
                    }
                }
            }
            let peers: Vec<PeerRow> = client.peers(false).await?;
            let target = peers
                .iter()
                .find(|p| p.name == peer || p.id.to_string() == peer)
                .ok_or_else(|| Failure::failed(format!("no peer {peer:?} in the cluster")))?;
            let id = target.id;
            let name = target.name.clone();
            let command = Command::PeerTagged {
                peer: id,
                add,
                remove,
            };
            workloads::propose(&mut client, command).await?;
            let peers: Vec<PeerRow> = client.peers(false).await?;
            let tags = peers
                .iter()
                .find(|p| p.id == id)
                .map(|p| p.tags.join(","))
                .unwrap_or_default();
            Ok(format!("Peer {name} ({id}) tags: {tags}\n"))
        }
        ClusterCmd::Peers { out, stale } => {
            let peers: Vec<PeerRow> = client.peers(stale).await?;
            if out.output == Output::Json {
                return json(&peers);
            }
            let rows: Vec<Vec<String>> = peers
                .iter()
                .map(|p| {
                    vec![
                        p.id.to_string(),
                        p.name.clone(),
                        p.address.clone(),
                        p.overlay_address.map_or("-".into(), |a| a.to_string()),
                        p.role.clone(),
                        if p.voter { "yes" } else { "no" }.into(),
                        if p.up { "up" } else { "down" }.into(),
                        p.tags.join(","),
                        p.last_contact_ms.map_or("-".into(), |ms| format!("{ms}ms")),
                        p.handshake_age_secs
                            .map_or("-".into(), |s| format!("{s}s ago")),
                    ]
                })
                .collect();
            Ok(table::render(
                &[
                    "ID",
                    "NAME",
                    "ADDRESS",
                    "OVERLAY",
                    "ROLE",
                    "VOTER",
                    "STATE",
                    "TAGS",
                    "LAST CONTACT",
                    "HANDSHAKE",
                ],
                &rows,
            ))
        }
    }
}

/// A `--overlay` value: a range `apply` accepts.
fn overlay_range(text: &str) -> Result<String, String> {
    let range: monk_statemachine::Ipv4Net = text.parse()?;
    monk_statemachine::overlay::check_range(range)?;
    Ok(range.to_string())
}

/// `monk user add|list|remove`.
pub async fn user(addr: &str, cmd: UserCmd) -> Outcome {
    let mut client = connect(addr).await?;
    match cmd {
        UserCmd::Add { name, role, out } => {
            let mine = credentials::find(addr)?.ok_or_else(|| {
                Failure::usage("no credential to add users with (pass --credentials FILE)")
            })?;
            // Made here: only its hash travels and enters the log.
            let secret = monk_node::trust::credentials::new_credential()
                .map_err(|e| Failure::failed(e.to_string()))?;
            let command = Command::UserAdded {
                name: name.clone(),
                role,
                token_sha256: monk_node::trust::access::credential_sha256(&secret),
            };
            workloads::propose(&mut client, command).await?;
            let credential = monk_node::trust::credentials::Credential {
                cluster: mine.cluster,
                user: name,
                role,
                credential: secret,
                ca_pem: mine.ca_pem,
                peers: mine.peers,
            };
            credentials::write_or_text(&credential, out.as_deref())
        }
        UserCmd::List { out } => {
            let users = client.users().await?;
            if out.output == Output::Json {
                return json(&users);
            }
            let rows: Vec<Vec<String>> = users
                .iter()
                .map(|u| {
                    vec![
                        u.name.clone(),
                        u.role.to_string(),
                        u.added_at_index.to_string(),
                    ]
                })
                .collect();
            Ok(table::render(&["NAME", "ROLE", "SINCE INDEX"], &rows))
        }
        UserCmd::Remove { name } => {
            workloads::propose(&mut client, Command::UserRemoved { name: name.clone() }).await?;
            Ok(format!("User {name} removed\n"))
        }
    }
}
