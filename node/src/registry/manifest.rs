//! What a pushed manifest names (pure): the config and layer blobs of an image
//! manifest (OCI or Docker schema 2), or the manifests of an image index (OCI) or
//! manifest list (Docker). Only the fields the registry needs are read; the bytes are
//! stored as pushed.

use monk_statemachine::registry::check_digest;
use monk_statemachine::BlobRef;
use serde::Deserialize;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The media types the registry accepts.
pub const MEDIA_TYPES: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    schema_version: u32,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Descriptor {
    digest: String,
    size: u64,
}

/// What a manifest names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub media_type: String,
    pub blobs: Vec<BlobRef>,
    pub manifests: Vec<String>,
}

/// Reads `body`, whose `Content-Type` was `content_type` (empty when none was sent:
/// the manifest's own `mediaType` then decides).
pub fn parse(body: &[u8], content_type: &str) -> Result<Parsed, String> {
    let raw: Raw =
        serde_json::from_slice(body).map_err(|e| format!("the manifest is not JSON: {e}"))?;
    if raw.schema_version != 2 {
        return Err(format!(
            "schemaVersion {} is not supported (only 2)",
            raw.schema_version
        ));
    }
    let content_type = content_type.split(';').next().unwrap_or("").trim();
    let media_type = match (content_type, raw.media_type.as_deref()) {
        ("", Some(inner)) => inner.to_string(),
        ("", None) if !raw.manifests.is_empty() => OCI_INDEX.to_string(),
        ("", None) => OCI_MANIFEST.to_string(),
        (outer, _) => outer.to_string(),
    };
    if !MEDIA_TYPES.contains(&media_type.as_str()) {
        return Err(format!(
            "media type {media_type:.80} is not a manifest type this registry stores ({})",
            MEDIA_TYPES.join(", ")
        ));
    }
    let is_index = matches!(media_type.as_str(), OCI_INDEX | DOCKER_LIST);
    let mut blobs = Vec::new();
    let mut manifests = Vec::new();
    if is_index {
        for m in raw.manifests {
            check_digest(&m.digest)?;
            manifests.push(m.digest);
        }
    } else {
        let config = raw
            .config
            .ok_or_else(|| "an image manifest needs a config".to_string())?;
        for d in std::iter::once(config).chain(raw.layers) {
            check_digest(&d.digest)?;
            blobs.push(BlobRef {
                digest: d.digest,
                size: d.size,
            });
        }
    }
    Ok(Parsed {
        media_type,
        blobs,
        manifests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    #[test]
    fn an_image_manifest_names_its_config_and_layers() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"x","digest":"{}","size":3}},"layers":[{{"mediaType":"y","digest":"{}","size":5}}]}}"#,
            digest(1),
            digest(2)
        );
        let parsed = parse(body.as_bytes(), DOCKER_MANIFEST).unwrap();
        assert_eq!(parsed.media_type, DOCKER_MANIFEST);
        assert_eq!(
            parsed.blobs,
            vec![
                BlobRef {
                    digest: digest(1),
                    size: 3
                },
                BlobRef {
                    digest: digest(2),
                    size: 5
                }
            ]
        );
        assert!(parsed.manifests.is_empty());
    }

    #[test]
    fn an_index_names_manifests_and_bad_input_is_refused() {
        let body = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":9}}]}}"#,
            digest(3)
        );
        let parsed = parse(body.as_bytes(), "").unwrap();
        assert_eq!(parsed.media_type, OCI_INDEX);
        assert_eq!(parsed.manifests, vec![digest(3)]);
        assert!(parse(b"not json", OCI_MANIFEST).is_err());
        assert!(parse(br#"{"schemaVersion":1}"#, OCI_MANIFEST).is_err());
        assert!(parse(br#"{"schemaVersion":2}"#, OCI_MANIFEST).is_err());
        assert!(parse(br#"{"schemaVersion":2}"#, "text/plain").is_err());
        let bad = r#"{"schemaVersion":2,"config":{"digest":"md5:00","size":1}}"#;
        assert!(parse(bad.as_bytes(), OCI_MANIFEST).is_err());
    }
}
