//! `TemplatePath`: the one rule for what a template path is, used by the linter (so a
//! bad path is a `file:line:col` error before anything is proposed) and by the state
//! machine (so a raw proposal that bypassed the linter is rejected the same way).
//!
//! A stored path is `namespace/name[/more]`: at least two segments, none empty, none
//! `.` or `..`, each made of ASCII letters, digits, `.`, `_` and `-` and not starting
//! with `.`, at most [`PATH_BYTES_MAX`] bytes. References inside a file may be relative
//! (`./name`, resolved against the file's namespace) or start with `/`; both are
//! normalised to the stored form once, here.

use std::fmt;

use super::validate::is_path_safe;

/// Longest template path, in bytes.
pub const PATH_BYTES_MAX: usize = 512;

/// A valid, normalised template path (`namespace/name[/...]`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TemplatePath(String);

/// Why a text is not a template path. The messages are the linter's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path is empty")]
    Empty,
    #[error("path `{0}` ends with a slash")]
    TrailingSlash(String),
    #[error("path `{0}` cannot be relative here")]
    Relative(String),
    #[error("path `{0}` has an empty segment")]
    EmptySegment(String),
    #[error("path `{path}` has a `{segment}` segment")]
    DotSegment { path: String, segment: String },
    #[error(
        "path segment `{segment}` in `{path}` has characters other than letters, digits, `.`, `_` and `-`"
    )]
    Characters { path: String, segment: String },
    #[error("path `{0}` starts with a slash; a stored path is namespace/name")]
    LeadingSlash(String),
    #[error("path `{0}` needs a namespace (namespace/name)")]
    NoNamespace(String),
    #[error("path `{path}` is {bytes} bytes long; at most {PATH_BYTES_MAX}")]
    TooLong { path: String, bytes: usize },
}

/// Whether `./name` is allowed where the path is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relative {
    Allowed,
    Forbidden,
}

/// Checks the segments of a path as written (relative or not); the linter's rule.
pub fn check_written(path: &str, relative: Relative) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if path.ends_with('/') {
        return Err(PathError::TrailingSlash(path.into()));
    }
    let body = match path.strip_prefix("./") {
        Some(_) if relative == Relative::Forbidden => return Err(PathError::Relative(path.into())),
        Some(rest) => rest,
        None => path.strip_prefix('/').unwrap_or(path),
    };
    for segment in body.split('/') {
        match segment {
            "" => return Err(PathError::EmptySegment(path.into())),
            "." | ".." => {
                return Err(PathError::DotSegment {
                    path: path.into(),
                    segment: segment.into(),
                })
            }
            s if !is_path_safe(s) => {
                return Err(PathError::Characters {
                    path: path.into(),
                    segment: s.into(),
                })
            }
            _ => {}
        }
    }
    Ok(())
}

impl TemplatePath {
    /// A path as stored and proposed: `namespace/name`, exactly (no `./`, no leading
    /// `/`).
    pub fn parse(text: &str) -> Result<TemplatePath, PathError> {
        check_written(text, Relative::Forbidden)?;
        if text.starts_with('/') {
            return Err(PathError::LeadingSlash(text.into()));
        }
        TemplatePath::stored(text)
    }

    /// A path as written in a file whose namespace is `namespace` (`./name` allowed).
    pub fn resolve(text: &str, namespace: &str) -> Result<TemplatePath, PathError> {
        check_written(text, Relative::Allowed)?;
        TemplatePath::stored(&super::model::normalize_path(text, namespace))
    }

    fn stored(path: &str) -> Result<TemplatePath, PathError> {
        if path.len() > PATH_BYTES_MAX {
            return Err(PathError::TooLong {
                path: path.chars().take(64).collect::<String>() + "…",
                bytes: path.len(),
            });
        }
        if !path.contains('/') {
            return Err(PathError::NoNamespace(path.into()));
        }
        Ok(TemplatePath(path.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The namespace: every segment but the last.
    pub fn namespace(&self) -> &str {
        self.0.rsplit_once('/').map_or("", |(ns, _)| ns)
    }
}

impl fmt::Display for TemplatePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TemplatePath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_paths_are_normalised_once() {
        assert_eq!(
            TemplatePath::resolve("/ns/app", "other").unwrap().as_str(),
            "ns/app"
        );
        assert_eq!(
            TemplatePath::resolve("./app", "ns/sub").unwrap().as_str(),
            "ns/sub/app"
        );
        assert_eq!(
            TemplatePath::parse("ns/v1.0.0/app").unwrap().namespace(),
            "ns/v1.0.0"
        );
    }

    #[test]
    fn every_rule_has_its_error() {
        let cases: &[(&str, PathError)] = &[
            ("", PathError::Empty),
            ("ns/app/", PathError::TrailingSlash("ns/app/".into())),
            ("./app", PathError::Relative("./app".into())),
            ("ns//app", PathError::EmptySegment("ns//app".into())),
            (
                "ns/../app",
                PathError::DotSegment {
                    path: "ns/../app".into(),
                    segment: "..".into(),
                },
            ),
            (
                "ns/my app",
                PathError::Characters {
                    path: "ns/my app".into(),
                    segment: "my app".into(),
                },
            ),
            ("app", PathError::NoNamespace("app".into())),
            ("/ns/app", PathError::LeadingSlash("/ns/app".into())),
        ];
        for (text, error) in cases {
            assert_eq!(TemplatePath::parse(text).as_ref(), Err(error), "{text:?}");
        }
        let long = format!("ns/{}", "a".repeat(PATH_BYTES_MAX));
        assert!(matches!(
            TemplatePath::parse(&long),
            Err(PathError::TooLong { bytes, .. }) if bytes == PATH_BYTES_MAX + 3
        ));
    }
}
