//! Which Distribution API endpoint a request path names (pure). Repository names hold
//! `/`, so the path is read from its end: `/v2/<name>/blobs/uploads/<id>`,
//! `/v2/<name>/manifests/<reference>`, `/v2/<name>/blobs/<digest>`,
//! `/v2/<name>/tags/list`; and the query's few parameters, percent-decoded.

/// An endpoint of the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`: the API version check.
    Base,
    /// `/v2/_catalog`.
    Catalog,
    Tags {
        name: String,
    },
    Manifest {
        name: String,
        reference: String,
    },
    Blob {
        name: String,
        digest: String,
    },
    /// `/v2/<name>/blobs/uploads/`: start an upload (or a mount, or a monolithic one).
    UploadStart {
        name: String,
    },
    Upload {
        name: String,
        id: String,
    },
}

/// The endpoint `path` names, if any.
pub fn route(path: &str) -> Option<Route> {
    if path == "/v2/" || path == "/v2" {
        return Some(Route::Base);
    }
    let rest = path.strip_prefix("/v2/")?;
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    let name = |n: &str| (!n.is_empty()).then(|| n.to_string());
    if let Some(n) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags { name: name(n)? });
    }
    if let Some(n) = rest
        .strip_suffix("/blobs/uploads/")
        .or(rest.strip_suffix("/blobs/uploads"))
    {
        return Some(Route::UploadStart { name: name(n)? });
    }
    if let Some((n, id)) = rest.rsplit_once("/blobs/uploads/") {
        return (!id.contains('/')).then(|| Route::Upload {
            name: n.to_string(),
            id: id.to_string(),
        });
    }
    if let Some((n, reference)) = rest.rsplit_once("/manifests/") {
        return (!reference.is_empty() && !reference.contains('/')).then(|| Route::Manifest {
            name: n.to_string(),
            reference: reference.to_string(),
        });
    }
    if let Some((n, digest)) = rest.rsplit_once("/blobs/") {
        return (!digest.is_empty() && !digest.contains('/')).then(|| Route::Blob {
            name: n.to_string(),
            digest: digest.to_string(),
        });
    }
    None
}

/// The value of `key` in the query string `query`, percent-decoded.
pub fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', h, l]) => hex(*h).zip(hex(*l)).map(|(h, l)| (h * 16 + l) as u8),
            _ => None,
        };
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_endpoints() {
        let cases = [
            ("/v2/", Some(Route::Base)),
            ("/v2/_catalog", Some(Route::Catalog)),
            (
                "/v2/a/b/tags/list",
                Some(Route::Tags { name: "a/b".into() }),
            ),
            (
                "/v2/app/manifests/1",
                Some(Route::Manifest {
                    name: "app".into(),
                    reference: "1".into(),
                }),
            ),
            (
                "/v2/a/b/blobs/sha256:00",
                Some(Route::Blob {
                    name: "a/b".into(),
                    digest: "sha256:00".into(),
                }),
            ),
            (
                "/v2/a/blobs/uploads/",
                Some(Route::UploadStart { name: "a".into() }),
            ),
            (
                "/v2/a/b/blobs/uploads/xyz",
                Some(Route::Upload {
                    name: "a/b".into(),
                    id: "xyz".into(),
                }),
            ),
            ("/v2/tags/list", None),
            ("/v1/x", None),
            ("/v2/a/manifests/", None),
        ];
        for (path, want) in cases {
            assert_eq!(route(path), want, "{path}");
        }
    }

    #[test]
    fn query_values_are_percent_decoded() {
        let q = Some("mount=sha256%3Aab&from=a%2Fb&digest=sha256:cd&x");
        assert_eq!(query_param(q, "mount").as_deref(), Some("sha256:ab"));
        assert_eq!(query_param(q, "from").as_deref(), Some("a/b"));
        assert_eq!(query_param(q, "digest").as_deref(), Some("sha256:cd"));
        assert_eq!(query_param(q, "x").as_deref(), Some(""));
        assert_eq!(query_param(q, "y"), None);
        assert_eq!(query_param(Some("d=%zz%4"), "d").as_deref(), Some("%zz%4"));
    }
}
