//! `.dockerignore` as Docker reads it: one pattern a line, `#` comments, blank lines
//! skipped, a leading `/` dropped, `!` for an exception; `*` matches within one path
//! component, `?` one character of it, `[a-z]` (and `[^a-z]`) a class, `\` escapes,
//! and `**` any number of components (none included). A pattern that matches a
//! directory matches everything under it; the last pattern that matches a path
//! decides. Pure: text in, decisions out.

/// One pattern of a `.dockerignore`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pattern {
    /// The pattern's components (`a/**/b*` is `["a", "**", "b*"]`).
    parts: Vec<String>,
    /// `!pattern`: matching paths are kept.
    keep: bool,
}

/// A parsed `.dockerignore`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

impl Ignore {
    /// Reads the text of a `.dockerignore`.
    pub fn parse(text: &str) -> Ignore {
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter_map(|line| {
                let (keep, pattern) = match line.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, line),
                };
                let parts: Vec<String> = pattern
                    .split('/')
                    .filter(|p| !p.is_empty() && *p != ".")
                    .map(String::from)
                    .collect();
                (!parts.is_empty()).then_some(Pattern { parts, keep })
            })
            .collect();
        Ignore { patterns }
    }

    /// Whether any pattern is an exception (`!`): then an excluded directory may still
    /// hold kept files.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.keep)
    }

    /// Whether `path` (relative to the context, `/`-separated) is left out of it.
    pub fn excludes(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let mut excluded = false;
        for pattern in &self.patterns {
            // The path itself or any directory above it.
            let matched = (1..=parts.len()).any(|n| matches(&pattern.parts, &parts[..n]));
            if matched {
                excluded = !pattern.keep;
            }
        }
        excluded
    }
}

/// Whether the pattern's components match the path's, with `**` spanning any number.
fn matches(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| matches(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((name, path_rest)) => {
                let pattern_chars: Vec<char> = first.chars().collect();
                let name_chars: Vec<char> = name.chars().collect();
                component_matches(&pattern_chars, &name_chars) && matches(rest, path_rest)
            }
            None => false,
        },
    }
}

/// One component against one glob component (`*`, `?`, `[...]`, `\x`).
fn component_matches(pattern: &[char], name: &[char]) -> bool {
    let Some((&first, rest)) = pattern.split_first() else {
        return name.is_empty();
    };
    match first {
        '*' => (0..=name.len()).any(|skip| component_matches(rest, &name[skip..])),
        '?' => !name.is_empty() && component_matches(rest, &name[1..]),
        '[' => {
            let Some(close) = rest.iter().position(|&c| c == ']') else {
                return name.first() == Some(&'[') && component_matches(rest, &name[1..]);
            };
            let Some(&c) = name.first() else {
                return false;
            };
            let (negated, class) = match rest[..close].split_first() {
                Some(('^' | '!', class)) => (true, class),
                _ => (false, &rest[..close]),
            };
            in_class(class, c) != negated && component_matches(&rest[close + 1..], &name[1..])
        }
        '\\' if !rest.is_empty() => {
            name.first() == Some(&rest[0]) && component_matches(&rest[1..], &name[1..])
        }
        literal => name.first() == Some(&literal) && component_matches(rest, &name[1..]),
    }
}

/// Whether `c` is in a class body (`a-z0-9_`).
fn in_class(class: &[char], c: char) -> bool {
    let mut i = 0;
    while i < class.len() {
        if i + 2 < class.len() && class[i + 1] == '-' {
            if class[i] <= c && c <= class[i + 2] {
                return true;
            }
            i += 3;
        } else {
            if class[i] == c {
                return true;
            }
            i += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_globs_and_directories() {
        let ignore = Ignore::parse(
            "# comment\n\nnode_modules\n*.log\n/build/\ndocs/**/*.md\ntmp?\n[ab]c.txt\n",
        );
        for path in [
            "node_modules",
            "node_modules/x/y.js",
            "app.log",
            "build/out.bin",
            "docs/a.md",
            "docs/x/y/z.md",
            "tmp1",
            "ac.txt",
            "bc.txt",
        ] {
            assert!(ignore.excludes(path), "{path} is excluded");
        }
        for path in [
            "src/node_modules_x",
            "src/app.log",
            "builder/x",
            "docs/a.txt",
            "tmp12",
            "cc.txt",
            "Containerfile",
        ] {
            assert!(!ignore.excludes(path), "{path} is kept");
        }
    }

    #[test]
    fn the_last_matching_pattern_decides() {
        let ignore = Ignore::parse("*.md\n!README.md\nREADME*.md\n!README-keep.md\n");
        assert!(ignore.excludes("CHANGES.md"));
        assert!(ignore.excludes("README.md"));
        assert!(!ignore.excludes("README-keep.md"));
        let everything = Ignore::parse("*\n!www\n!Containerfile\n");
        assert!(everything.excludes("secret.env"));
        assert!(!everything.excludes("www/index.html"));
        assert!(!everything.excludes("Containerfile"));
    }

    #[test]
    fn classes_escapes_and_odd_patterns() {
        let ignore = Ignore::parse("[^x]y\n\\*star\n[unclosed\n./dot\n**/deep\n");
        assert!(ignore.excludes("ay"));
        assert!(!ignore.excludes("xy"));
        assert!(ignore.excludes("*star"));
        assert!(!ignore.excludes("astar"));
        assert!(ignore.excludes("[unclosed"));
        assert!(ignore.excludes("dot"));
        assert!(ignore.excludes("deep"));
        assert!(ignore.excludes("a/b/deep/c"));
        assert_eq!(Ignore::parse("!\n/\n  \n"), Ignore::default());
    }
}
