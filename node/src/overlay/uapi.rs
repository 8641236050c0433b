//! WireGuard's cross-platform configuration protocol ("UAPI"): the text a userspace
//! WireGuard (boringtun, wireguard-go) speaks on `/var/run/wireguard/<iface>.sock`.
//! `get=1` lists the device and its peers; `set=1` changes them. The parser and the
//! request builder are pure; [`get`] and [`set`] do the socket I/O, each bounded by
//! [`UAPI_TIMEOUT`].
//!
//! Why our own client and not `wireguard-control`'s userspace backend: that backend
//! prints every key it does not know to stdout (boringtun reports `own_public_key` on
//! every `get`, so monkd's output would fill with it), panics on an unparsable `errno`,
//! reads boringtun's handshake *age* as a timestamp, does blocking I/O on the async
//! runtime, and starts `wireguard-go` itself when the socket is missing. The kernel
//! backend still goes through `wireguard-control` (`super::wireguard`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use monk_statemachine::Ipv4Net;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::plan::Action;

/// Where userspace WireGuard implementations put their control sockets (shared by
/// every network namespace of the machine: interface names must be unique).
pub const SOCKET_DIR: &str = "/var/run/wireguard";
/// Bound on one request and its answer.
pub const UAPI_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest answer read from a device (lines × peers stay far below this).
const ANSWER_BYTES_MAX: usize = 1 << 20;

/// Why talking to the device failed.
#[derive(Debug, thiserror::Error)]
pub enum UapiError {
    #[error("WireGuard control socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("WireGuard control socket {path}: no answer within {UAPI_TIMEOUT:?}")]
    Timeout { path: PathBuf },
    #[error("WireGuard device answered errno={errno} to {what}")]
    Errno { what: &'static str, errno: i64 },
    #[error("WireGuard device sent an unreadable line {line:?}: {why}")]
    Malformed { line: String, why: String },
    #[error("invalid WireGuard key {0:?}")]
    Key(String),
}

/// A remote peer as the device reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PeerStatus {
    /// Base64, as the state holds keys.
    pub public_key: String,
    pub endpoint: Option<String>,
    pub allowed_ips: Vec<Ipv4Net>,
    /// Seconds since the last handshake (boringtun reports the age; a kernel device
    /// reports a timestamp, which `super::wireguard` turns into an age); `None`: never.
    pub handshake_age_secs: Option<u64>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// What `get=1` answered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceStatus {
    pub listen_port: Option<u16>,
    pub peers: Vec<PeerStatus>,
}

/// The control socket of interface `name`.
pub fn socket_path(name: &str) -> PathBuf {
    Path::new(SOCKET_DIR).join(format!("{name}.sock"))
}

fn hex_to_base64(hex_key: &str) -> Result<String, UapiError> {
    let bytes = hex::decode(hex_key).map_err(|_| UapiError::Key(hex_key.into()))?;
    if bytes.len() != 32 {
        return Err(UapiError::Key(hex_key.into()));
    }
    Ok(STANDARD.encode(bytes))
}

/// A base64 key as the protocol wants it (hex).
pub fn base64_to_hex(key: &str) -> Result<String, UapiError> {
    let bytes = STANDARD
        .decode(key)
        .map_err(|_| UapiError::Key(key.into()))?;
    if bytes.len() != 32 {
        return Err(UapiError::Key(key.into()));
    }
    Ok(hex::encode(bytes))
}

/// Parses the answer to `get=1` (the lines before the blank line; `errno` last).
pub fn parse_get(text: &str) -> Result<DeviceStatus, UapiError> {
    let mut device = DeviceStatus::default();
    let mut current: Option<PeerStatus> = None;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let malformed = |why: &str| UapiError::Malformed {
            line: line.to_string(),
            why: why.to_string(),
        };
        let (key, value) = line.split_once('=').ok_or_else(|| malformed("no `=`"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|_| malformed("not a number"));
        match key {
            "listen_port" => {
                device.listen_port =
                    Some(value.parse().map_err(|_| malformed("not a port number"))?)
            }
            "public_key" => {
                device.peers.extend(current.take());
                current = Some(PeerStatus {
                    public_key: hex_to_base64(value)?,
                    ..PeerStatus::default()
                });
            }
            "errno" => {
                let errno: i64 = value.parse().map_err(|_| malformed("not a number"))?;
                if errno != 0 {
                    return Err(UapiError::Errno { what: "get", errno });
                }
            }
            peer_key => {
                let Some(peer) = current.as_mut() else {
                    // Device-wide keys we do not use: private_key, own_public_key, fwmark.
                    continue;
                };
                match peer_key {
                    "endpoint" => peer.endpoint = Some(value.to_string()),
                    // IPv6 ranges are never set by monkd; a v4 one it cannot read
                    // is an error, not a silently different peer.
                    "allowed_ip" if !value.contains(':') => peer.allowed_ips.push(
                        value
                            .parse()
                            .map_err(|e: String| malformed(&format!("allowed_ip: {e}")))?,
                    ),
                    "last_handshake_time_sec" => {
                        let secs = number(value)?;
                        peer.handshake_age_secs = (secs > 0).then_some(secs);
                    }
                    "rx_bytes" => peer.rx_bytes = number(value)?,
                    "tx_bytes" => peer.tx_bytes = number(value)?,
                    _ => {}
                }
            }
        }
    }
    device.peers.extend(current);
    Ok(device)
}

/// The `set=1` request that carries out `actions` (and sets the private key and port
/// when given); keys are base64 as in the state.
pub fn set_request(
    private_key: Option<&[u8; 32]>,
    listen_port: Option<u16>,
    actions: &[Action],
) -> Result<String, UapiError> {
    let mut request = String::from("set=1\n");
    if let Some(key) = private_key {
        request.push_str(&format!("private_key={}\n", hex::encode(key)));
    }
    if let Some(port) = listen_port {
        request.push_str(&format!("listen_port={port}\n"));
    }
    for action in actions {
        request.push_str(&format!(
            "public_key={}\n",
            base64_to_hex(action.public_key())?
        ));
        let (endpoint, allowed_ips) = match action {
            Action::Remove { .. } => {
                request.push_str("remove=true\n");
                continue;
            }
            Action::Add {
                endpoint,
                allowed_ips,
                ..
            } => (Some(endpoint), Some(allowed_ips)),
            Action::Update {
                endpoint,
                allowed_ips,
                ..
            } => (endpoint.as_ref(), allowed_ips.as_ref()),
        };
        if let Some(endpoint) = endpoint {
            request.push_str(&format!("endpoint={endpoint}\n"));
        }
        if let Some(ips) = allowed_ips {
            request.push_str("replace_allowed_ips=true\n");
            for ip in ips {
                request.push_str(&format!("allowed_ip={ip}\n"));
            }
        }
    }
    request.push('\n');
    Ok(request)
}

/// Sends `request` and reads the answer up to its blank line.
async fn exchange(path: &Path, request: &str) -> Result<String, UapiError> {
    let io = |source| UapiError::Io {
        path: path.to_path_buf(),
        source,
    };
    let talk = async {
        let mut stream = UnixStream::connect(path).await.map_err(io)?;
        stream.write_all(request.as_bytes()).await.map_err(io)?;
        let mut reader = BufReader::new(stream);
        let mut answer = String::new();
        loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).await.map_err(io)?;
            if n == 0 || line == "\n" || answer.len() > ANSWER_BYTES_MAX {
                break;
            }
            answer.push_str(&line);
        }
        Ok(answer)
    };
    tokio::time::timeout(UAPI_TIMEOUT, talk)
        .await
        .map_err(|_| UapiError::Timeout {
            path: path.to_path_buf(),
        })?
}

/// `get=1` on the device behind `path`.
pub async fn get(path: &Path) -> Result<DeviceStatus, UapiError> {
    parse_get(&exchange(path, "get=1\n\n").await?)
}

/// Sends a `set=1` request built by [`set_request`].
pub async fn set(path: &Path, request: &str) -> Result<(), UapiError> {
    let answer = exchange(path, request).await?;
    let errno = answer
        .lines()
        .find_map(|l| l.strip_prefix("errno="))
        .unwrap_or("0");
    match errno.parse::<i64>() {
        Ok(0) => Ok(()),
        Ok(errno) => Err(UapiError::Errno { what: "set", errno }),
        Err(_) => Err(UapiError::Malformed {
            line: format!("errno={errno}"),
            why: "not a number".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: [u8; 32] = [7; 32];

    fn b64(bytes: &[u8; 32]) -> String {
        STANDARD.encode(bytes)
    }

    #[test]
    fn a_boringtun_answer_is_read_with_its_handshake_age() {
        let text = format!(
            "own_public_key={own}\nlisten_port=51820\npublic_key={a}\nendpoint=10.0.0.2:51820\n\
             allowed_ip=10.211.0.2/32\nallowed_ip=10.211.129.0/24\nallowed_ip=fd00::/64\n\
             last_handshake_time_sec=4\nlast_handshake_time_nsec=12\nrx_bytes=100\ntx_bytes=200\n\
             public_key={b}\nlast_handshake_time_sec=0\nrx_bytes=0\ntx_bytes=0\nerrno=0\n",
            own = hex::encode([1u8; 32]),
            a = hex::encode(KEY_A),
            b = hex::encode([9u8; 32]),
        );
        let device = parse_get(&text).unwrap();
        assert_eq!(device.listen_port, Some(51820));
        assert_eq!(device.peers.len(), 2);
        let a = &device.peers[0];
        assert_eq!(a.public_key, b64(&KEY_A));
        assert_eq!(a.endpoint.as_deref(), Some("10.0.0.2:51820"));
        assert_eq!(
            a.allowed_ips,
            vec![
                "10.211.0.2/32".parse().unwrap(),
                "10.211.129.0/24".parse().unwrap()
            ]
        );
        assert_eq!(
            (a.handshake_age_secs, a.rx_bytes, a.tx_bytes),
            (Some(4), 100, 200)
        );
        assert_eq!(device.peers[1].handshake_age_secs, None);
        assert_eq!(device.peers[1].endpoint, None);
    }

    #[test]
    fn errors_and_garbage_are_errors_not_panics() {
        assert!(matches!(
            parse_get("errno=19\n"),
            Err(UapiError::Errno { errno: 19, .. })
        ));
        assert!(matches!(
            parse_get("errno=x\n"),
            Err(UapiError::Malformed { .. })
        ));
        assert!(matches!(
            parse_get("public_key=zz\n"),
            Err(UapiError::Key(_))
        ));
        assert!(matches!(
            parse_get(&format!(
                "public_key={}\nallowed_ip=300.1.1.1/8\n",
                hex::encode(KEY_A)
            )),
            Err(UapiError::Malformed { .. })
        ));
        assert!(matches!(
            parse_get("nonsense\n"),
            Err(UapiError::Malformed { .. })
        ));
    }

    #[test]
    fn a_plan_becomes_one_set_request() {
        let actions = vec![
            Action::Remove {
                public_key: b64(&[9; 32]),
            },
            Action::Add {
                public_key: b64(&KEY_A),
                endpoint: "10.0.0.2:51820".into(),
                allowed_ips: vec!["10.211.0.2/32".parse().unwrap()],
            },
            Action::Update {
                public_key: b64(&[3; 32]),
                endpoint: Some("10.0.0.3:51820".into()),
                allowed_ips: None,
            },
        ];
        let request = set_request(Some(&[5; 32]), Some(51820), &actions).unwrap();
        let expected = format!(
            "set=1\nprivate_key={}\nlisten_port=51820\npublic_key={}\nremove=true\n\
             public_key={}\nendpoint=10.0.0.2:51820\nreplace_allowed_ips=true\nallowed_ip=10.211.0.2/32\n\
             public_key={}\nendpoint=10.0.0.3:51820\n\n",
            hex::encode([5u8; 32]),
            hex::encode([9u8; 32]),
            hex::encode(KEY_A),
            hex::encode([3u8; 32]),
        );
        assert_eq!(request, expected);
        let bad = [Action::Remove {
            public_key: "not base64!".into(),
        }];
        assert!(set_request(None, None, &bad).is_err());
    }

    #[tokio::test]
    async fn get_and_set_talk_to_a_socket_and_report_errno() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wgtest.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(async move {
            let mut seen = Vec::new();
            for answer in ["listen_port=1\nerrno=0\n\n", "errno=22\n\n"] {
                let (stream, _) = listener.accept().await.unwrap();
                let (read, mut write) = stream.into_split();
                let mut reader = BufReader::new(read);
                let mut request = String::new();
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).await.unwrap();
                    request.push_str(&line);
                    if line == "\n" || line.is_empty() {
                        break;
                    }
                }
                seen.push(request);
                write.write_all(answer.as_bytes()).await.unwrap();
            }
            seen
        });
        assert_eq!(get(&path).await.unwrap().listen_port, Some(1));
        let request = set_request(None, Some(2), &[]).unwrap();
        assert!(matches!(
            set(&path, &request).await,
            Err(UapiError::Errno { errno: 22, .. })
        ));
        let seen = server.await.unwrap();
        assert_eq!(seen, vec!["get=1\n\n".to_string(), request]);
        let missing = dir.path().join("missing.sock");
        assert!(matches!(get(&missing).await, Err(UapiError::Io { .. })));
    }
}
