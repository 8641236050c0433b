//! The cluster registry's catalog: which images exist (repositories, their manifests
//! by digest and their tags) and which peers hold each blob those manifests name.
//! `monkd --registry-listen` serves it as the OCI Distribution API
//! (`monk_node::registry`); the blobs themselves live on the peers' disks, only their
//! digests, sizes and holders are here.
//!
//! What the log carries, and why: a manifest's bytes exactly as pushed (they are small,
//! bounded by [`MANIFEST_BYTES_MAX`], and their SHA-256 is the image's identity, so
//! every peer can serve a tag without asking another), the blobs it names, parsed by
//! the proposer (the `apply` rules never parse a manifest: a parser change would
//! change how old entries apply), and the peer that holds them. `apply` recomputes
//! the manifest's digest, so a catalog entry always matches its bytes.
//!
//! Removal (`image-removed`) drops a tag, then every manifest of the repository no
//! tag reaches (directly or through an image index), then every blob no manifest
//! names; each peer's garbage collector deletes from its disk what the state no
//! longer names.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::apply::Rejection;
use crate::command::PeerId;
use crate::state::State;

/// Largest manifest the catalog keeps, in bytes: every peer holds every manifest in
/// memory and in snapshots. A single-platform image's manifest is 1 to 3 KB (one
/// line per layer); an index over a dozen platforms stays under 10 KB.
pub const MANIFEST_BYTES_MAX: usize = 256 * 1024;
/// Most blobs one manifest names (its config and layers): Docker refuses images of
/// more than 127 layers.
pub const MANIFEST_BLOBS_MAX: usize = 512;
/// Most manifests the catalog holds, over all repositories (each is at most
/// [`MANIFEST_BYTES_MAX`], usually a few KB; 10,000 of them are tens of MB of state).
pub const MANIFESTS_MAX: usize = 10_000;
/// Longest repository name, in bytes (the Distribution spec's recommended bound,
/// after the registry's host).
pub const REPOSITORY_BYTES_MAX: usize = 255;
/// Longest tag, in bytes (the spec's `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`).
pub const TAG_BYTES_MAX: usize = 128;
/// Longest media type, in bytes (the longest standard one is under 60).
pub const MEDIA_TYPE_BYTES_MAX: usize = 256;

/// A blob a manifest names: its digest (`sha256:<hex>`) and size in bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BlobRef {
    pub digest: String,
    pub size: u64,
}

/// One manifest as the catalog holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Its media type (`application/vnd.oci.image.manifest.v1+json`, ...), served as
    /// its `Content-Type`.
    pub media_type: String,
    /// The bytes as pushed (manifests are JSON, so UTF-8).
    pub body: String,
    /// The blobs it names (config and layers; none for an index).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blobs: Vec<BlobRef>,
    /// The manifests an image index names, by digest (each pushed before it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<String>,
    /// Index of the entry that pushed it.
    pub pushed_at_index: u64,
}

impl Manifest {
    /// Bytes of the manifest and the blobs it names: what a pull transfers.
    pub fn size(&self) -> u64 {
        self.body.len() as u64 + self.blobs.iter().map(|b| b.size).sum::<u64>()
    }
}

/// A repository: its manifests by digest and its tags.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repository {
    pub manifests: BTreeMap<String, Manifest>,
    /// Tag → manifest digest.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// A blob some manifest names: its size and the peers that hold it on disk.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobHolders {
    pub size: u64,
    pub holders: BTreeSet<PeerId>,
}

/// `sha256:` and the hex SHA-256 of `bytes`: the content address of a manifest or
/// blob.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Why a digest is not one the registry stores: `sha256:` and 64 lowercase hex
/// digits (other algorithms are refused, as the Distribution spec allows).
pub fn check_digest(digest: &str) -> Result<(), String> {
    let Some(hex) = digest.strip_prefix("sha256:") else {
        return Err(format!("{digest:.80} is not a sha256 digest"));
    };
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "{digest:.80} is not sha256: and 64 lowercase hex digits"
        ));
    }
    Ok(())
}

/// Why `name` is not a repository name: path components of lowercase letters and
/// digits, separated inside by `.`, `_`, `__` or runs of `-` (the spec's grammar).
pub fn check_repository(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > REPOSITORY_BYTES_MAX {
        return Err(format!(
            "a repository name has 1 to {REPOSITORY_BYTES_MAX} bytes"
        ));
    }
    for component in name.split('/') {
        if !valid_component(component) {
            return Err(format!(
                "{name:.80}: {component:?} is not a name component (lowercase letters and digits, separated by '.', '_', '__' or '-')"
            ));
        }
    }
    Ok(())
}

fn valid_component(component: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    // Separators between alphanumeric runs: `.`, `_`, `__` or any run of `-`.
    let mut separator = String::new();
    for &b in bytes {
        if alnum(b) {
            if !matches!(separator.as_str(), "" | "." | "_" | "__")
                && !separator.bytes().all(|s| s == b'-')
            {
                return false;
            }
            separator.clear();
        } else if matches!(b, b'.' | b'_' | b'-') {
            separator.push(b as char);
        } else {
            return false;
        }
    }
    true
}

/// Why `tag` is not a tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = tag.len() <= TAG_BYTES_MAX
        && tag.as_bytes().first().is_some_and(|&b| word(b))
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-');
    match ok {
        true => Ok(()),
        false => Err(format!(
            "{tag:.80} is not a tag (a letter, digit or '_', then up to 127 of those, '.' or '-')"
        )),
    }
}

/// The digests of the manifests a repository's tags reach, directly or through an
/// index.
pub fn reachable(repository: &Repository) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&String> = repository.tags.values().collect();
    while let Some(digest) = stack.pop() {
        if !seen.insert(digest.clone()) {
            continue;
        }
        if let Some(m) = repository.manifests.get(digest) {
            stack.extend(m.manifests.iter());
        }
    }
    seen
}

/// The blob digests any manifest of any repository names.
pub fn referenced_blobs(images: &BTreeMap<String, Repository>) -> BTreeSet<&str> {
    images
        .values()
        .flat_map(|r| r.manifests.values())
        .flat_map(|m| m.blobs.iter().map(|b| b.digest.as_str()))
        .collect()
}

/// One tagged image, as `monk images` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRow {
    pub repository: String,
    pub tag: String,
    pub digest: String,
    pub media_type: String,
    /// The manifest and its blobs, in bytes.
    pub size: u64,
    /// Peers that hold every blob of the image.
    pub holders: Vec<PeerId>,
}

/// Read accessors of the catalog.
impl State {
    /// Repositories by name.
    pub fn images(&self) -> &BTreeMap<String, Repository> {
        &self.images
    }

    /// Blobs some manifest names, by digest, with their holders.
    pub fn blobs(&self) -> &BTreeMap<String, BlobHolders> {
        &self.blobs
    }

    /// The manifest `reference` (a tag or a digest) of `repository` names, with its
    /// digest.
    pub fn manifest(&self, repository: &str, reference: &str) -> Option<(&str, &Manifest)> {
        let repo = self.images.get(repository)?;
        let digest = repo
            .tags
            .get(reference)
            .map(String::as_str)
            .unwrap_or(reference);
        repo.manifests
            .get_key_value(digest)
            .map(|(d, m)| (d.as_str(), m))
    }

    /// Every tagged image, by repository and tag.
    pub fn image_rows(&self) -> Vec<ImageRow> {
        let mut rows = Vec::new();
        for (name, repo) in &self.images {
            for (tag, digest) in &repo.tags {
                let Some(m) = repo.manifests.get(digest) else {
                    continue;
                };
                let holders = self.holders_of_all(repo, digest);
                rows.push(ImageRow {
                    repository: name.clone(),
                    tag: tag.clone(),
                    digest: digest.clone(),
                    media_type: m.media_type.clone(),
                    size: m.size()
                        + m.manifests
                            .iter()
                            .filter_map(|d| repo.manifests.get(d))
                            .map(Manifest::size)
                            .sum::<u64>(),
                    holders: holders.into_iter().collect(),
                });
            }
        }
        rows
    }

    /// Peers holding every blob the manifest `digest` names (through an index too).
    fn holders_of_all(&self, repo: &Repository, digest: &str) -> BTreeSet<PeerId> {
        let mut blobs = Vec::new();
        let mut stack = vec![digest];
        while let Some(d) = stack.pop() {
            if let Some(m) = repo.manifests.get(d) {
                blobs.extend(m.blobs.iter().map(|b| b.digest.as_str()));
                stack.extend(m.manifests.iter().map(String::as_str));
            }
        }
        let mut holders: Option<BTreeSet<PeerId>> = None;
        for blob in blobs {
            let of_this = self
                .blobs
                .get(blob)
                .map(|b| b.holders.clone())
                .unwrap_or_default();
            holders = Some(match holders {
                None => of_this,
                Some(h) => h.intersection(&of_this).copied().collect(),
            });
        }
        // An index of manifests without blobs is held wherever the state is.
        holders.unwrap_or_else(|| self.peers.keys().copied().collect())
    }

    /// Catalog invariants: tags name manifests of their repository, an index's
    /// manifests exist, every named blob has a holder record with its size, and no
    /// record is kept for a blob nothing names.
    pub(crate) fn check_images(&self) -> Result<(), String> {
        for (name, repo) in &self.images {
            if repo.manifests.is_empty() {
                return Err(format!("repository {name} has no manifest"));
            }
            for (tag, digest) in &repo.tags {
                if !repo.manifests.contains_key(digest) {
                    return Err(format!("{name}:{tag} names {digest}, which it lacks"));
                }
            }
            for (digest, m) in &repo.manifests {
                if sha256_digest(m.body.as_bytes()) != *digest {
                    return Err(format!("{name}@{digest} does not hash to its digest"));
                }
                if let Some(child) = m
                    .manifests
                    .iter()
                    .find(|c| !repo.manifests.contains_key(*c))
                {
                    return Err(format!("{name}@{digest} names {child}, which it lacks"));
                }
                for b in &m.blobs {
                    if self.blobs.get(&b.digest).is_none_or(|h| h.size != b.size) {
                        return Err(format!(
                            "{name}@{digest} names blob {} without its record",
                            b.digest
                        ));
                    }
                }
            }
        }
        let named = referenced_blobs(&self.images);
        if let Some(orphan) = self.blobs.keys().find(|d| !named.contains(d.as_str())) {
            return Err(format!(
                "blob {orphan} is recorded but no manifest names it"
            ));
        }
        Ok(())
    }
}

/// Drops what no tag reaches any more from `repository` and the blob records no
/// manifest names (after a removal).
pub(crate) fn prune(
    images: &mut BTreeMap<String, Repository>,
    blobs: &mut BTreeMap<String, BlobHolders>,
    repository: &str,
) {
    if let Some(repo) = images.get_mut(repository) {
        let keep = reachable(repo);
        repo.manifests.retain(|d, _| keep.contains(d));
        if repo.manifests.is_empty() {
            images.remove(repository);
        }
    }
    let named: BTreeSet<String> = referenced_blobs(images)
        .into_iter()
        .map(str::to_string)
        .collect();
    blobs.retain(|d, _| named.contains(d));
}

/// Most blobs one `blobs-held` names (a fetch proposes what one pull fetched).
pub const BLOBS_HELD_MAX: usize = MANIFEST_BLOBS_MAX;

/// An `image-pushed` command's fields.
pub(crate) struct Pushed<'a> {
    pub repository: &'a str,
    pub tag: Option<&'a str>,
    pub digest: &'a str,
    pub media_type: &'a str,
    pub manifest: &'a str,
    pub blobs: &'a [BlobRef],
    pub manifests: &'a [String],
    pub peer: PeerId,
}

fn invalid(why: String) -> Rejection {
    Rejection::InvalidImage { why }
}

/// Applies `image-pushed`: checks names, bounds and the digest, then records the
/// manifest, points the tag at it and adds `peer` to its blobs' holders.
pub(crate) fn pushed(state: &mut State, index: u64, p: Pushed<'_>) -> Result<(), Rejection> {
    check_repository(p.repository).map_err(invalid)?;
    if let Some(tag) = p.tag {
        check_tag(tag).map_err(invalid)?;
    }
    if p.manifest.len() > MANIFEST_BYTES_MAX {
        return Err(Rejection::Limit {
            what: format!("bytes of a manifest of {}", p.repository),
            max: MANIFEST_BYTES_MAX,
        });
    }
    if p.media_type.is_empty() || p.media_type.len() > MEDIA_TYPE_BYTES_MAX {
        return Err(invalid(format!(
            "a media type has 1 to {MEDIA_TYPE_BYTES_MAX} bytes"
        )));
    }
    if p.blobs.len() + p.manifests.len() > MANIFEST_BLOBS_MAX {
        return Err(Rejection::Limit {
            what: format!("blobs and manifests one manifest of {} names", p.repository),
            max: MANIFEST_BLOBS_MAX,
        });
    }
    let computed = sha256_digest(p.manifest.as_bytes());
    if computed != p.digest {
        return Err(invalid(format!(
            "the manifest of {} hashes to {computed}, not {}",
            p.repository, p.digest
        )));
    }
    for b in p.blobs {
        check_digest(&b.digest).map_err(invalid)?;
        if let Some(known) = state.blobs.get(&b.digest) {
            if known.size != b.size {
                return Err(invalid(format!(
                    "blob {} has {} bytes, not {}",
                    b.digest, known.size, b.size
                )));
            }
        }
    }
    let repo = state.images.get(p.repository);
    if let Some(child) = p
        .manifests
        .iter()
        .find(|c| !repo.is_some_and(|r| r.manifests.contains_key(*c)))
    {
        return Err(Rejection::UnknownImage {
            image: format!("{}@{child}", p.repository),
        });
    }
    let is_new = !repo.is_some_and(|r| r.manifests.contains_key(p.digest));
    let count: usize = state.images.values().map(|r| r.manifests.len()).sum();
    if is_new && count >= MANIFESTS_MAX {
        return Err(Rejection::Limit {
            what: "manifests in the cluster registry".into(),
            max: MANIFESTS_MAX,
        });
    }
    for b in p.blobs {
        let record = state.blobs.entry(b.digest.clone()).or_default();
        record.size = b.size;
        record.holders.insert(p.peer);
    }
    let repo = state.images.entry(p.repository.to_string()).or_default();
    if is_new {
        repo.manifests.insert(
            p.digest.to_string(),
            Manifest {
                media_type: p.media_type.to_string(),
                body: p.manifest.to_string(),
                blobs: p.blobs.to_vec(),
                manifests: p.manifests.to_vec(),
                pushed_at_index: index,
            },
        );
    }
    if let Some(tag) = p.tag {
        repo.tags.insert(tag.to_string(), p.digest.to_string());
    }
    Ok(())
}

/// Applies `image-removed`: the tag goes, then whatever nothing reaches any more.
pub(crate) fn removed(state: &mut State, repository: &str, tag: &str) -> Result<(), Rejection> {
    let found = state
        .images
        .get_mut(repository)
        .and_then(|r| r.tags.remove(tag));
    if found.is_none() {
        return Err(Rejection::UnknownImage {
            image: format!("{repository}:{tag}"),
        });
    }
    prune(&mut state.images, &mut state.blobs, repository);
    Ok(())
}

/// Applies `blobs-held`: `peer` holds these blobs now. Blobs no manifest names any
/// more (removed while the peer fetched them) are skipped: its collector deletes them.
pub(crate) fn held(state: &mut State, peer: PeerId, blobs: &[String]) -> Result<(), Rejection> {
    if blobs.len() > BLOBS_HELD_MAX {
        return Err(Rejection::Limit {
            what: "blobs in one blobs-held".into(),
            max: BLOBS_HELD_MAX,
        });
    }
    for digest in blobs {
        if let Some(record) = state.blobs.get_mut(digest) {
            record.holders.insert(peer);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_the_spec_grammar() {
        for good in [
            "app", "a/b", "my-app", "my__app", "a.b/c_d", "a---b", "x9/y",
        ] {
            assert!(check_repository(good).is_ok(), "{good}");
        }
        for bad in [
            "", "App", "a//b", "-a", "a-", "a___b", "a/", "a b", "a..b", "_a",
        ] {
            assert!(check_repository(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags_and_digests_are_checked() {
        assert!(check_tag("1").is_ok());
        assert!(check_tag("v1.2-rc_3").is_ok());
        assert!(check_tag(".x").is_err());
        assert!(check_tag(&"a".repeat(129)).is_err());
        assert!(check_digest(&sha256_digest(b"x")).is_ok());
        assert!(check_digest("sha512:00").is_err());
        assert!(check_digest("sha256:ABC").is_err());
    }
}
