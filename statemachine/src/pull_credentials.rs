//! Credentials for pulling from outside registries (`monk registry add HOST --username U
//! --password-secret NAME`), as `docker login` keeps them for one engine and Kubernetes'
//! `imagePullSecrets` for a namespace. The log holds the registry's host, the user name
//! and the *name* of a global secret holding the password; the password itself is only
//! ever the sealed secret (`crate::Command::SecretSet`), which the executor opens when
//! it pulls an image from that host.
//!
//! Hosts are kept in one canonical form ([`canonical_host`]) so that an image's registry
//! ([`image_registry`], Docker's reference rules) finds its credential: lowercase, no
//! scheme or path, and Docker Hub's aliases (`index.docker.io`, `registry-1.docker.io`,
//! `registry.hub.docker.com`) all written [`DOCKER_HUB`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Rejection, State};

/// Docker Hub's canonical host: the registry of images named without a host
/// (`nginx`, `library/nginx`).
pub const DOCKER_HUB: &str = "docker.io";

/// Other names Docker Hub answers to, written as [`DOCKER_HUB`].
const DOCKER_HUB_ALIASES: [&str; 3] = [
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

/// Longest host accepted, in bytes: a DNS name's 253 plus `:` and a five-digit port.
pub const REGISTRY_HOST_BYTES_MAX: usize = 259;

/// Longest user name accepted, in bytes (cloud registries' are short: ECR's is `AWS`,
/// GCR's `_json_key`, ACR's a service principal id).
pub const REGISTRY_USERNAME_BYTES_MAX: usize = 256;

/// Registries with a credential at once: a cluster pulls from a handful.
pub const REGISTRY_CREDENTIALS_MAX: usize = 64;

/// One registry's pull credential as the log holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryCredential {
    /// The registry's host in canonical form ([`canonical_host`]).
    pub host: String,
    pub username: String,
    /// The name of the global secret holding the password.
    pub password_secret: String,
    /// Index of the entry that set it.
    pub set_at_index: u64,
}

/// `input` (a host, `host:port`, or a URL such as `https://host/v2/`) in the form
/// credentials are kept under, or why it names no registry.
pub fn canonical_host(input: &str) -> Result<String, String> {
    let trimmed = input.trim();
    let without_scheme = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .unwrap_or(trimmed);
    let host = without_scheme
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if host.is_empty() {
        return Err("no host".into());
    }
    if host.len() > REGISTRY_HOST_BYTES_MAX {
        return Err(format!("longer than {REGISTRY_HOST_BYTES_MAX} bytes"));
    }
    if let Some(bad) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_')))
    {
        return Err(format!(
            "{bad:?} is not allowed in a registry host (letters, digits, `.`, `-`, `_`, `:PORT`)"
        ));
    }
    if host.starts_with(['.', '-', ':']) || host.ends_with(['.', '-', ':']) {
        return Err("a host starts and ends with a letter or digit".into());
    }
    if let Some((_, port)) = host.split_once(':') {
        if port.parse::<u16>().is_err() {
            return Err(format!("{port:?} is not a port"));
        }
    }
    match DOCKER_HUB_ALIASES.contains(&host.as_str()) {
        true => Ok(DOCKER_HUB.into()),
        false => Ok(host),
    }
}

/// The registry `image` is pulled from, by Docker's rule (`splitDockerDomain`): the
/// part before the first `/` is a host when it has a `.` or a `:`, is `localhost`, or
/// has an uppercase letter (repository names cannot); otherwise (and with no `/` at
/// all) the image is on Docker Hub. Differing from Docker here would hand Docker
/// Hub's credential to whatever host the engine resolves.
pub fn image_registry(image: &str) -> String {
    let Some((first, _)) = image.split_once('/') else {
        return DOCKER_HUB.into();
    };
    let is_host = first.contains(['.', ':'])
        || first == "localhost"
        || first.chars().any(|c| c.is_ascii_uppercase());
    match is_host {
        true => canonical_host(first).unwrap_or_else(|_| first.to_ascii_lowercase()),
        false => DOCKER_HUB.into(),
    }
}

/// Records `host`'s credential (replacing one set before), after checking the host is
/// canonical, the user name usable in HTTP Basic authentication and the count bounded.
pub(crate) fn set(
    state: &mut State,
    index: u64,
    host: &str,
    username: &str,
    password_secret: &str,
) -> Result<(), Rejection> {
    let invalid = |why: String| Rejection::InvalidRegistryCredential {
        host: host.to_string(),
        why,
    };
    match canonical_host(host) {
        Ok(canonical) if canonical == host => {}
        Ok(canonical) => return Err(invalid(format!("write it {canonical:?}"))),
        Err(why) => return Err(invalid(why)),
    }
    if username.is_empty() || username.len() > REGISTRY_USERNAME_BYTES_MAX {
        return Err(invalid(format!(
            "the user name must have 1 to {REGISTRY_USERNAME_BYTES_MAX} bytes"
        )));
    }
    if username.chars().any(|c| c == ':' || c.is_control()) {
        return Err(invalid(
            "the user name may not hold `:` or control characters (HTTP Basic authentication)"
                .into(),
        ));
    }
    if !state.registries.contains_key(host) && state.registries.len() >= REGISTRY_CREDENTIALS_MAX {
        return Err(Rejection::Limit {
            what: "registry credentials".into(),
            max: REGISTRY_CREDENTIALS_MAX,
        });
    }
    state.registries.insert(
        host.to_string(),
        RegistryCredential {
            host: host.to_string(),
            username: username.to_string(),
            password_secret: password_secret.to_string(),
            set_at_index: index,
        },
    );
    Ok(())
}

/// One credential as `monk registry list` shows it: never the password, and whether
/// its secret is set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryRow {
    pub host: String,
    pub username: String,
    pub password_secret: String,
    /// Whether the global secret `password_secret` exists (pulls fail until it does).
    pub secret_set: bool,
    pub set_at_index: u64,
}

/// Read accessors of the credentials.
impl State {
    /// Pull credentials by canonical host.
    pub fn registry_credentials(&self) -> &BTreeMap<String, RegistryCredential> {
        &self.registries
    }

    /// Every credential, by host, with whether its secret is set.
    pub fn registry_rows(&self) -> Vec<RegistryRow> {
        self.registries
            .values()
            .map(|c| RegistryRow {
                host: c.host.clone(),
                username: c.username.clone(),
                password_secret: c.password_secret.clone(),
                secret_set: self
                    .secret(&c.password_secret, &crate::SecretScope::Global)
                    .is_some(),
                set_at_index: c.set_at_index,
            })
            .collect()
    }

    /// The credential for the registry `image` is pulled from, if one is set.
    pub fn credential_for_image(&self, image: &str) -> Option<&RegistryCredential> {
        self.registries.get(&image_registry(image))
    }

    /// Each credential is keyed by its own canonical host, names a valid secret name,
    /// was set in the past, and there are at most [`REGISTRY_CREDENTIALS_MAX`].
    pub(crate) fn check_registry_credentials(&self) -> Result<(), String> {
        if self.registries.len() > REGISTRY_CREDENTIALS_MAX {
            return Err(format!(
                "{} registry credentials, over {REGISTRY_CREDENTIALS_MAX}",
                self.registries.len()
            ));
        }
        for (key, c) in &self.registries {
            if *key != c.host || canonical_host(key).as_deref() != Ok(key.as_str()) {
                return Err(format!(
                    "registry credential {key:?} is not keyed by its canonical host {:?}",
                    c.host
                ));
            }
            if c.set_at_index > self.last_applied_index {
                return Err(format!("registry credential {key} was set in the future"));
            }
            if c.username.is_empty() || c.password_secret.is_empty() {
                return Err(format!(
                    "registry credential {key} has no user or no secret"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_canonical_and_docker_hub_has_one_name() {
        assert_eq!(
            canonical_host("Registry.Example.com").unwrap(),
            "registry.example.com"
        );
        assert_eq!(canonical_host("https://ghcr.io/v2/").unwrap(), "ghcr.io");
        assert_eq!(canonical_host("127.0.0.1:5000").unwrap(), "127.0.0.1:5000");
        for alias in [
            "docker.io",
            "index.docker.io",
            "https://index.docker.io/v1/",
        ] {
            assert_eq!(canonical_host(alias).unwrap(), DOCKER_HUB, "{alias}");
        }
        assert!(canonical_host("").is_err());
        assert!(canonical_host("host:port").is_err());
        assert!(canonical_host("bad host").is_err());
        assert!(canonical_host("-x.io").is_err());
    }

    #[test]
    fn images_name_their_registry_as_docker_does() {
        assert_eq!(image_registry("nginx"), DOCKER_HUB);
        assert_eq!(image_registry("nginx:1.25"), DOCKER_HUB);
        assert_eq!(image_registry("library/nginx"), DOCKER_HUB);
        assert_eq!(image_registry("docker.io/library/nginx"), DOCKER_HUB);
        assert_eq!(image_registry("index.docker.io/acme/app:1"), DOCKER_HUB);
        assert_eq!(image_registry("ghcr.io/acme/app:1"), "ghcr.io");
        assert_eq!(image_registry("127.0.0.1:5000/app:1"), "127.0.0.1:5000");
        assert_eq!(image_registry("localhost/app"), "localhost");
        // An uppercase first part is a host for Docker: not Docker Hub's credential.
        assert_ne!(image_registry("Evil/app"), DOCKER_HUB);
        assert_eq!(
            image_registry("123.dkr.ecr.eu-west-1.amazonaws.com/app@sha256:ab"),
            "123.dkr.ecr.eu-west-1.amazonaws.com"
        );
    }
}
