//! The small text formats of a container definition, each a pure function from the
//! text as written (after any ArrowScript ran) to a typed value or a message saying
//! what is wrong: ports, paths (bind mounts), durations, byte sizes, CPU and memory
//! requests, `K=V` entries, image references, restart policies, file modes and shell
//! words. Messages name the offending text; the caller adds the field path.

use super::{MountSpec, PortSpec, Protocol, RestartPolicy};
use crate::tree::Tree;

/// Longest image reference accepted (Docker's own limit on a reference is 255 for
/// the name plus 128 for the tag; 512 leaves room for a registry host and digest).
pub const IMAGE_REF_BYTES_MAX: usize = 512;

/// Longest tag Docker accepts.
pub const TAG_BYTES_MAX: usize = 128;

/// Most words one command line splits into; real commands have under 50, and the
/// bound keeps a pathological string from building a huge vector of tiny words.
pub const COMMAND_WORDS_MAX: usize = 4_096;

/// Largest duration accepted for a grace period: one day, far above any real stop
/// timeout, small enough that seconds stay exact in every integer type.
pub const DURATION_SECS_MAX: u64 = 86_400;

/// Parses `[[ip:]host_port:]container_port[/protocol]`. A bare `8080` publishes the
/// container port on the same host port (Monk's `ports` always publish).
pub fn port(text: &str) -> Result<PortSpec, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("empty port mapping".to_string());
    }
    let (mapping, protocol) = match trimmed.rsplit_once('/') {
        Some((mapping, proto)) => (mapping, protocol(proto)?),
        None => (trimmed, Protocol::Tcp),
    };
    let (rest, container) = match mapping.rsplit_once(':') {
        Some((rest, container)) => (Some(rest), container),
        None => (None, mapping),
    };
    let container_port = port_number(container)?;
    let (host_ip, host_port) = match rest {
        None => (None, container_port),
        Some(rest) => match rest.rsplit_once(':') {
            Some((ip, host)) => (Some(host_ip(ip)?), port_number(host)?),
            None => (None, port_number(rest)?),
        },
    };
    Ok(PortSpec {
        host_ip,
        host_port: Some(host_port),
        container_port,
        protocol,
    })
}

/// `tcp`, `udp` or `sctp`, any case.
pub fn protocol(text: &str) -> Result<Protocol, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        "sctp" => Ok(Protocol::Sctp),
        other => Err(format!(
            "unknown protocol `{other}` (expected tcp, udp or sctp)"
        )),
    }
}

/// A port number 1..=65535.
pub fn port_number(text: &str) -> Result<u16, String> {
    let text = text.trim();
    let is_range = text
        .split_once('-')
        .is_some_and(|(a, b)| a.parse::<u16>().is_ok() && b.parse::<u16>().is_ok());
    if is_range {
        return Err(format!("port ranges like `{text}` are not supported"));
    }
    match text.parse::<u32>() {
        Ok(n @ 1..=65_535) => Ok(n as u16),
        _ => Err(format!("`{text}` is not a port number (1-65535)")),
    }
}

fn host_ip(text: &str) -> Result<String, String> {
    let ip = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    if ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("`{text}` is not an IP address"));
    }
    Ok(ip.to_string())
}

/// Parses `source:target[:options]` (options comma-separated: `ro`, `rw`, `z`, `Z`,
/// propagation modes). A source with a scheme (`blobs://name`) keeps its `://`.
pub fn mount(text: &str) -> Result<MountSpec, String> {
    let text = text.trim();
    let (scheme, rest) = match text.find("://") {
        Some(i) => text.split_at(i + 3),
        None => ("", text),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (source, target, options) = match parts.as_slice() {
        [source, target] => (*source, *target, ""),
        [source, target, options] => (*source, *target, *options),
        _ => return Err(format!("`{text}` is not `source:target[:options]`")),
    };
    if source.is_empty() && scheme.is_empty() {
        return Err(format!("`{text}` has an empty source"));
    }
    if !target.starts_with('/') {
        return Err(format!("mount target `{target}` is not an absolute path"));
    }
    let mut read_only = false;
    let mut kept = Vec::new();
    for option in options.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        match option {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "z" | "Z" | "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate"
            | "nocopy" | "delegated" | "cached" | "consistent" => kept.push(option.to_string()),
            other => return Err(format!("unknown mount option `{other}` in `{text}`")),
        }
    }
    Ok(MountSpec {
        source: format!("{scheme}{source}"),
        target: target.to_string(),
        read_only,
        options: kept,
    })
}

/// A duration in whole seconds: an integer (seconds) or units `ms`, `s`, `m`, `h`,
/// combinable (`1m30s`); a fraction of a second rounds up.
pub fn duration_secs(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return bounded_secs(secs, text);
    }
    let mut millis: u64 = 0;
    let mut rest = text;
    if rest.is_empty() {
        return Err("empty duration".to_string());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let factor = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => {
                return Err(format!(
                    "`{text}` is not a duration like `30s`, `5m` or `1h`"
                ))
            }
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("`{text}` is not a duration like `30s`, `5m` or `1h`"))?;
        millis = n
            .checked_mul(factor)
            .and_then(|v| v.checked_add(millis))
            .ok_or_else(|| format!("duration `{text}` is too long"))?;
        rest = tail;
    }
    bounded_secs(millis.div_ceil(1_000), text)
}

fn bounded_secs(secs: u64, text: &str) -> Result<u64, String> {
    if secs > DURATION_SECS_MAX {
        return Err(format!(
            "duration `{text}` is longer than {DURATION_SECS_MAX} seconds"
        ));
    }
    Ok(secs)
}

/// Splits a number from its unit suffix: `512Mi` is (512, "Mi").
fn number_and_unit(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    text.split_at(end)
}

/// A size in bytes: an integer, or a number with a suffix `k`, `m`, `g`, `t` (binary
/// multiples, as Docker reads `--memory 512m`), optionally followed by `b`/`i`/`ib`
/// (`512Mi`, `1GB`, `64mb`).
pub fn bytes(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let (number, unit) = number_and_unit(trimmed);
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "ki" | "kib" => 10,
        "m" | "mb" | "mi" | "mib" => 20,
        "g" | "gb" | "gi" | "gib" => 30,
        "t" | "tb" | "ti" | "tib" => 40,
        _ => {
            return Err(format!(
                "`{trimmed}` is not a size like `536870912`, `512m` or `1Gi`"
            ))
        }
    };
    scaled(number, 1u64 << shift, trimmed)
}

/// `number * factor` for a decimal number (`1.5`), rounded down, without overflow.
fn scaled(number: &str, factor: u64, text: &str) -> Result<u64, String> {
    let bad = || format!("`{text}` is not a number with an optional unit");
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return Err(bad());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let value = whole
        .checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too large"))?;
    // At most 9 fraction digits count; finer fractions of a byte or millicore are noise.
    let digits: String = fraction.chars().take(9).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) || !fraction.chars().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let numerator: u128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| bad())?
    };
    let part = numerator * u128::from(factor) / 10u128.pow(digits.len() as u32);
    let value = value
        .checked_add(u64::try_from(part).map_err(|_| bad())?)
        .ok_or_else(|| format!("`{text}` is too large"))?;
    Ok(value)
}

/// A CPU request in millicores: an integer is millicores (the reference's unit), a
/// string with `m` is millicores (`250m`), a decimal string is cores (`"0.5"`).
pub fn cpu_millis(tree: &Tree) -> Result<u64, String> {
    match tree {
        Tree::Int(n) if *n >= 0 => Ok(*n as u64),
        Tree::Float(f) | Tree::Str(f) => {
            let text = f.trim();
            match text.strip_suffix('m') {
                Some(millis) => millis
                    .parse()
                    .map_err(|_| format!("`{text}` is not a CPU amount like `250m` or `0.5`")),
                None => scaled(text, 1_000, text),
            }
        }
        other => Err(format!("a CPU request cannot be {}", other.type_name())),
    }
}

/// A memory request in MB: an integer is MB (the reference's unit), a string with a
/// unit (`512Mi`, `1Gi`, `256M`) is converted, rounding up.
pub fn memory_mb(tree: &Tree) -> Result<u64, String> {
    match tree {
        Tree::Int(n) if *n >= 0 => Ok(*n as u64),
        Tree::Str(text) => match text.trim().parse::<u64>() {
            Ok(mb) => Ok(mb),
            Err(_) => Ok(bytes(text)?.div_ceil(1 << 20)),
        },
        other => Err(format!("a memory request cannot be {}", other.type_name())),
    }
}

/// `K=V` (the value may be empty or contain `=`); the key must not be empty nor hold
/// whitespace.
pub fn key_value(text: &str) -> Result<(String, String), String> {
    let Some((key, value)) = text.split_once('=') else {
        return Err(format!("`{}` is not `NAME=value`", clip(text)));
    };
    let key = key.trim();
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(format!("`{}` has no valid name before `=`", clip(text)));
    }
    Ok((key.to_string(), value.to_string()))
}

fn clip(text: &str) -> String {
    const SHOWN_CHARS: usize = 60;
    let mut out: String = text.chars().take(SHOWN_CHARS).collect();
    if text.chars().count() > SHOWN_CHARS {
        out.push_str("...");
    }
    out
}

/// The image reference to pull: `image` with `image-tag` applied. A tag written in
/// `image` is kept unless `image-tag` is given (which replaces it); a digest
/// (`@sha256:...`) is kept as is and cannot take a tag; otherwise the tag is `latest`.
pub fn image_reference(image: &str, tag: Option<&str>) -> Result<String, String> {
    let image = image.trim();
    if image.is_empty() {
        return Err("the image is empty".to_string());
    }
    if image.len() > IMAGE_REF_BYTES_MAX || image.contains(char::is_whitespace) {
        return Err(format!("`{}` is not an image reference", clip(image)));
    }
    let tag = tag.map(str::trim).filter(|t| !t.is_empty());
    if image.contains('@') {
        return match tag {
            Some(tag) => Err(format!(
                "image `{image}` is pinned by digest; image-tag `{tag}` cannot apply"
            )),
            None => Ok(image.to_string()),
        };
    }
    let name_start = image.rfind('/').map_or(0, |i| i + 1);
    let (name, written_tag) = match image[name_start..].rfind(':') {
        Some(i) => (&image[..name_start + i], Some(&image[name_start + i + 1..])),
        None => (image, None),
    };
    let tag = tag.or(written_tag).unwrap_or("latest");
    check_tag(tag)?;
    Ok(format!("{name}:{tag}"))
}

fn check_tag(tag: &str) -> Result<(), String> {
    let valid_chars = tag
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if tag.is_empty() || tag.len() > TAG_BYTES_MAX || !valid_chars || tag.starts_with(['.', '-']) {
        return Err(format!("`{}` is not a valid image tag", clip(tag)));
    }
    Ok(())
}

/// `no`, `always`, `unless-stopped`, `on-failure` or `on-failure:N`; empty means the
/// default.
pub fn restart(text: &str) -> Result<RestartPolicy, String> {
    let text = text.trim();
    Ok(match text {
        "" => RestartPolicy::default(),
        "no" | "false" => RestartPolicy::No,
        "always" => RestartPolicy::Always,
        "unless-stopped" => RestartPolicy::UnlessStopped,
        "on-failure" => RestartPolicy::OnFailure { max_retries: None },
        _ => match text.strip_prefix("on-failure:") {
            Some(n) => RestartPolicy::OnFailure {
                max_retries: Some(
                    n.parse()
                        .map_err(|_| format!("`{n}` is not a retry count in `{text}`"))?,
                ),
            },
            None => {
                return Err(format!(
                    "unknown restart policy `{text}` (expected no, always, unless-stopped, on-failure[:N])"
                ))
            }
        },
    })
}

/// A file mode. Text with a leading `0` or `0o` is octal (`"0644"`). An integer up to
/// 511 is the mode's value (Go's YAML writes `0777` as `511`); a larger integer whose
/// digits are all octal is read as those digits (`644` means `0644`, since 644 as a
/// value would set the sticky bit and no read bit for the group).
pub fn file_mode(tree: &Tree) -> Result<u32, String> {
    const MODE_BITS_MAX: u32 = 0o7777;
    let mode = match tree {
        Tree::Int(n @ 0..=511) => *n as u32,
        Tree::Int(n) => {
            let digits = n.to_string();
            u32::from_str_radix(&digits, 8)
                .map_err(|_| format!("{n} is not a file mode (write it in octal, e.g. 0644)"))?
        }
        Tree::Str(text) => {
            let text = text.trim();
            let digits = text.strip_prefix("0o").unwrap_or(text);
            u32::from_str_radix(digits, 8)
                .map_err(|_| format!("`{text}` is not an octal file mode like 0644"))?
        }
        other => return Err(format!("a file mode cannot be {}", other.type_name())),
    };
    if mode > MODE_BITS_MAX {
        return Err(format!("mode {mode:o} has bits above 0o7777"));
    }
    Ok(mode)
}

/// Splits a command line into words like a POSIX shell does, without expansion:
/// whitespace separates, `'...'` is literal, `"..."` allows `\"`, `\\`, `\$`, `` \` ``,
/// a backslash outside quotes escapes the next character.
pub fn shell_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    push_word(&mut words, std::mem::take(&mut word))?;
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated `'` in command".to_string()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated `\"` in command".to_string()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated `\"` in command".to_string()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => {
                    in_word = true;
                    word.push(c);
                }
                None => return Err("command ends with a lone `\\`".to_string()),
            },
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        push_word(&mut words, word)?;
    }
    Ok(words)
}

fn push_word(words: &mut Vec<String>, word: String) -> Result<(), String> {
    if words.len() >= COMMAND_WORDS_MAX {
        return Err(format!("command has more than {COMMAND_WORDS_MAX} words"));
    }
    words.push(word);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(host_ip: Option<&str>, host: u16, container: u16, protocol: Protocol) -> PortSpec {
        PortSpec {
            host_ip: host_ip.map(str::to_string),
            host_port: Some(host),
            container_port: container,
            protocol,
        }
    }

    #[test]
    fn ports_in_every_written_form() {
        assert_eq!(port("8080"), Ok(p(None, 8080, 8080, Protocol::Tcp)));
        assert_eq!(port("80:8000"), Ok(p(None, 80, 8000, Protocol::Tcp)));
        assert_eq!(
            port("127.0.0.1:8080:80/tcp"),
            Ok(p(Some("127.0.0.1"), 8080, 80, Protocol::Tcp))
        );
        assert_eq!(
            port("4545:4445/UDP"),
            Ok(p(None, 4545, 4445, Protocol::Udp))
        );
        assert_eq!(
            port("[::1]:53:53/udp"),
            Ok(p(Some("::1"), 53, 53, Protocol::Udp))
        );
        assert_eq!(port("53/udp"), Ok(p(None, 53, 53, Protocol::Udp)));
    }

    #[test]
    fn malformed_ports_say_why() {
        for (text, needle) in [
            ("", "empty"),
            ("80:http", "not a port number"),
            ("0", "not a port number"),
            ("70000", "not a port number"),
            ("80/icmp", "unknown protocol"),
            ("nothost:80:80", "not an IP address"),
            ("8000-8010:8000-8010", "ranges"),
        ] {
            let err = port(text).unwrap_err();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn mounts_with_options_and_schemes() {
        let m = mount("/data:/app/data").unwrap();
        assert_eq!(
            (m.source.as_str(), m.target.as_str(), m.read_only),
            ("/data", "/app/data", false)
        );
        let m = mount("/host/config:/app/config:ro,Z").unwrap();
        assert!(m.read_only);
        assert_eq!(m.options, vec!["Z".to_string()]);
        let m = mount("blobs://site:/usr/share/nginx/html").unwrap();
        assert_eq!(m.source, "blobs://site");
        assert_eq!(m.target, "/usr/share/nginx/html");
        assert_eq!(
            mount("named-volume:/var/lib/x").unwrap().source,
            "named-volume"
        );
    }

    #[test]
    fn malformed_mounts_say_why() {
        for (text, needle) in [
            ("/only-one-part", "source:target"),
            ("/a:/b:ro:extra", "source:target"),
            (":/b", "empty source"),
            ("/a:relative", "absolute"),
            ("/a:/b:sideways", "unknown mount option"),
        ] {
            let err = mount(text).unwrap_err();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(duration_secs("30"), Ok(30));
        assert_eq!(duration_secs("30s"), Ok(30));
        assert_eq!(duration_secs("5m"), Ok(300));
        assert_eq!(duration_secs("1h"), Ok(3600));
        assert_eq!(duration_secs("1m30s"), Ok(90));
        assert_eq!(duration_secs("1500ms"), Ok(2));
        for bad in [
            "",
            "s",
            "30 sec",
            "5d",
            "-3s",
            "99999999999999999999h",
            "48h",
        ] {
            assert!(duration_secs(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn sizes_and_requests() {
        assert_eq!(bytes("536870912"), Ok(536_870_912));
        assert_eq!(bytes("512m"), Ok(512 << 20));
        assert_eq!(bytes("512Mi"), Ok(512 << 20));
        assert_eq!(bytes("1GB"), Ok(1 << 30));
        assert_eq!(bytes("1.5k"), Ok(1536));
        for bad in ["", "lots", "12 parsecs", "1.2.3m", "99999999999999t"] {
            assert!(bytes(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(cpu_millis(&Tree::Int(100)), Ok(100));
        assert_eq!(cpu_millis(&Tree::Str("250m".into())), Ok(250));
        assert_eq!(cpu_millis(&Tree::Str("0.5".into())), Ok(500));
        assert_eq!(cpu_millis(&Tree::Float("1.5".into())), Ok(1500));
        assert!(cpu_millis(&Tree::Str("fast".into())).is_err());
        assert!(cpu_millis(&Tree::Int(-1)).is_err());
        assert_eq!(memory_mb(&Tree::Int(128)), Ok(128));
        assert_eq!(memory_mb(&Tree::Str("256".into())), Ok(256));
        assert_eq!(memory_mb(&Tree::Str("1Gi".into())), Ok(1024));
        assert!(memory_mb(&Tree::Bool(true)).is_err());
    }

    #[test]
    fn key_values() {
        assert_eq!(key_value("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert_eq!(key_value("EMPTY="), Ok(("EMPTY".into(), String::new())));
        assert!(key_value("NOEQUALS").unwrap_err().contains("NAME=value"));
        assert!(key_value("=x").unwrap_err().contains("no valid name"));
        assert!(key_value("A B=x").is_err());
    }

    #[test]
    fn images_and_tags() {
        assert_eq!(image_reference("nginx", None), Ok("nginx:latest".into()));
        assert_eq!(image_reference("nginx:1.21", None), Ok("nginx:1.21".into()));
        assert_eq!(
            image_reference("nginx:1.21", Some("1.25")),
            Ok("nginx:1.25".into())
        );
        assert_eq!(
            image_reference("nginx", Some("1.25")),
            Ok("nginx:1.25".into())
        );
        assert_eq!(
            image_reference("localhost:5000/app", None),
            Ok("localhost:5000/app:latest".into())
        );
        assert_eq!(
            image_reference("localhost:5000/app:v2", None),
            Ok("localhost:5000/app:v2".into())
        );
        let pinned = "redis@sha256:0123abcd";
        assert_eq!(image_reference(pinned, None), Ok(pinned.into()));
        assert!(image_reference(pinned, Some("7"))
            .unwrap_err()
            .contains("digest"));
        assert!(image_reference("", None).is_err());
        assert!(image_reference("two words", None).is_err());
        assert!(image_reference("nginx", Some("bad tag")).is_err());
        assert!(image_reference("nginx", Some(".hidden")).is_err());
    }

    #[test]
    fn restart_policies() {
        assert_eq!(restart("no"), Ok(RestartPolicy::No));
        assert_eq!(restart(""), Ok(RestartPolicy::default()));
        assert_eq!(restart("always"), Ok(RestartPolicy::Always));
        assert_eq!(restart("unless-stopped"), Ok(RestartPolicy::UnlessStopped));
        assert_eq!(
            restart("on-failure:3"),
            Ok(RestartPolicy::OnFailure {
                max_retries: Some(3)
            })
        );
        assert!(restart("on-failure:x").is_err());
        assert!(restart("sometimes")
            .unwrap_err()
            .contains("unknown restart policy"));
    }

    #[test]
    fn file_modes() {
        assert_eq!(file_mode(&Tree::Str("0644".into())), Ok(0o644));
        assert_eq!(file_mode(&Tree::Str("0o755".into())), Ok(0o755));
        assert_eq!(file_mode(&Tree::Int(511)), Ok(0o777));
        assert_eq!(file_mode(&Tree::Int(420)), Ok(0o644));
        assert_eq!(file_mode(&Tree::Int(644)), Ok(0o644));
        assert_eq!(file_mode(&Tree::Int(755)), Ok(0o755));
        assert!(file_mode(&Tree::Int(999)).is_err());
        assert!(file_mode(&Tree::Int(77777)).is_err());
        assert!(file_mode(&Tree::Str("rwx".into())).is_err());
        assert!(file_mode(&Tree::Bool(true)).is_err());
    }

    #[test]
    fn shell_words_split_like_a_shell() {
        assert_eq!(
            shell_words("nginx -g 'daemon off;'"),
            Ok(vec!["nginx".into(), "-g".into(), "daemon off;".into()])
        );
        assert_eq!(
            shell_words(r#"sh -c "echo \"hi\" $X" a\ b"#),
            Ok(vec![
                "sh".into(),
                "-c".into(),
                "echo \"hi\" $X".into(),
                "a b".into()
            ])
        );
        assert_eq!(shell_words("  "), Ok(vec![]));
        assert_eq!(shell_words("''"), Ok(vec![String::new()]));
        assert!(shell_words("echo 'open")
            .unwrap_err()
            .contains("unterminated"));
        assert!(shell_words("echo \"open")
            .unwrap_err()
            .contains("unterminated"));
        assert!(shell_words("echo \\").unwrap_err().contains("lone"));
    }
}
