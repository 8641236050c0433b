//! Which credential `monk` sends, found without flags the way k3s finds its kubeconfig:
//! 1. `--credentials FILE` or `MONK_CREDENTIALS`;
//! 2. the per-user store, `$XDG_CONFIG_HOME/monk/credentials/` (else
//!    `~/.config/monk/credentials/`): the file that lists the addressed peer, else the
//!    only file there;
//! 3. `admin.credentials` in the data dir of the peer `monk up` starts by default.
//!
//! `monk cluster new` and `monk up` put the admin's credential in the store;
//! `monk cluster join` adds the joined peer's address to it. With no credential,
//! `monk` calls anonymously over TLS without checking the peer (which then allows only
//! what anyone may: `cluster new`/`join` on its own machine, `version`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use monk_node::trust::credentials::{Credential, ADMIN_CREDENTIALS_FILE};
use monk_node::trust::tls::Dialer;

use crate::exit::Failure;

/// `--credentials` (or `MONK_CREDENTIALS`), set once by `main`.
static EXPLICIT: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Records `--credentials`.
pub fn set_explicit(path: Option<PathBuf>) {
    let _ = EXPLICIT.set(path);
}

/// The per-user store of credentials.
pub fn store_dir() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("monk").join("credentials"))
}

fn file_name(cluster: &str) -> String {
    let safe: String = cluster
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                true => c,
                false => '_',
            },
        )
        .collect();
    format!("{safe}.json")
}

fn stored() -> Vec<(PathBuf, Credential)> {
    let Some(dir) = store_dir() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut found: Vec<(PathBuf, Credential)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter_map(|p| Credential::load(&p).ok().map(|c| (p, c)))
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// The credential to use with the peer at `address`, if any (see the module doc).
pub fn find(address: &str) -> Result<Option<Credential>, Failure> {
    if let Some(Some(path)) = EXPLICIT.get() {
        return Credential::load(path)
            .map(Some)
            .map_err(|e| Failure::usage(e.to_string()));
    }
    let stored = stored();
    if let Some((_, c)) = stored
        .iter()
        .find(|(_, c)| c.peers.iter().any(|p| p == address))
    {
        return Ok(Some(c.clone()));
    }
    if let [(_, only)] = stored.as_slice() {
        return Ok(Some(only.clone()));
    }
    if stored.len() > 1 {
        let files: Vec<String> = stored
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect();
        return Err(Failure::usage(format!(
            "several clusters' credentials are stored and none lists {address}: {}; pass --credentials FILE",
            files.join(", ")
        )));
    }
    let beside_peer = crate::up::default_data_dir().join(ADMIN_CREDENTIALS_FILE);
    Ok(Credential::load(&beside_peer).ok())
}

/// How to dial `address`: with the credential [`find`] gives, else anonymously.
pub fn dialer_for(address: &str) -> Result<Dialer, Failure> {
    match find(address)? {
        Some(credential) => credential
            .dialer()
            .map_err(|e| Failure::usage(format!("the credential for {address}: {e}"))),
        None => anonymous(),
    }
}

/// Anonymous, trusting any peer: for setting up a fresh local peer.
pub fn anonymous() -> Result<Dialer, Failure> {
    Dialer::unverified(None).map_err(|e| Failure::failed(e.to_string()))
}

/// Keeps `credential` in the per-user store (replacing one for the same cluster);
/// returns where, or `None` when there is no home to keep it in.
pub fn remember(credential: &Credential) -> Result<Option<PathBuf>, Failure> {
    let Some(dir) = store_dir() else {
        return Ok(None);
    };
    let path = dir.join(file_name(&credential.cluster));
    credential
        .store(&path)
        .map_err(|e| Failure::failed(format!("cannot keep the credential: {e}")))?;
    Ok(Some(path))
}

/// Adds `address` to the stored credential of `cluster`, so later calls to that peer
/// pick it.
pub fn add_peer(cluster: &str, address: &str) {
    let Some(dir) = store_dir() else {
        return;
    };
    let path = dir.join(file_name(cluster));
    let Ok(mut credential) = Credential::load(&path) else {
        return;
    };
    if !credential.peers.iter().any(|p| p == address) {
        credential.peers.push(address.to_string());
        let _ = credential.store(&path);
    }
}

/// Writes a credential for a new user to `path`, or returns it as text.
pub fn write_or_text(credential: &Credential, path: Option<&Path>) -> Result<String, Failure> {
    match path {
        Some(path) => {
            credential
                .store(path)
                .map_err(|e| Failure::failed(e.to_string()))?;
            Ok(format!(
                "Credential for {} ({}) written to {}\n",
                credential.user,
                credential.role,
                path.display()
            ))
        }
        None => serde_json::to_string_pretty(credential)
            .map(|s| s + "\n")
            .map_err(|e| Failure::failed(e.to_string())),
    }
}
