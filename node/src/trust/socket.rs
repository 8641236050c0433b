//! The peer's Unix socket, `<data dir>/monkd.sock` (mode 0600): the client API without
//! TLS for whoever can open a file only the peer's own user may, like `docker.sock`.
//! A caller on it is an admin named after its uid (`local:uid0`), from the kernel's
//! peer credentials; `monk` on the same machine uses it first (`unix:PATH` as an
//! address). Peers never use it: Raft and member calls stay on TLS.

use std::future::Future;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};

use super::tls::{Conn, ConnInfo};

/// The socket's file name in the data dir.
pub const SOCKET_FILE: &str = "monkd.sock";
/// What `monk` writes before a socket path in an address.
pub const ADDRESS_PREFIX: &str = "unix:";

/// The socket of the peer whose data dir is `data_dir`.
pub fn path_in(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

/// Binds the socket in `data_dir`, replacing a file a dead peer left, readable and
/// writable by this user only.
pub fn bind(data_dir: &Path) -> io::Result<UnixListener> {
    let path = path_in(data_dir);
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "{} answers: another monkd runs on this data dir",
                    path.display()
                ),
            ));
        }
        std::fs::remove_file(&path)?;
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// One accepted connection on the socket and its caller's uid.
pub type UnixConn = Conn<UnixStream>;

/// Wraps an accepted stream with its caller's uid (`u32::MAX` when the kernel gives
/// none, which no user has).
fn accepted(stream: UnixStream) -> UnixConn {
    let uid = stream.peer_cred().ok().map(|c| c.uid());
    Conn {
        stream,
        info: ConnInfo {
            remote: None,
            local: None,
            peer: None,
            socket_uid: Some(uid.unwrap_or(u32::MAX)),
        },
    }
}

/// The connections accepted on `listener`.
pub fn incoming(listener: UnixListener) -> impl tokio_stream::Stream<Item = io::Result<UnixConn>> {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::UnixListenerStream::new(listener).map(|stream| stream.map(accepted))
}

/// Dials the socket whatever URI tonic asks for.
struct SocketConnector {
    path: PathBuf,
}

type Connecting =
    Pin<Box<dyn Future<Output = io::Result<hyper_util::rt::TokioIo<UnixStream>>> + Send>>;

impl tower::Service<tonic::transport::Uri> for SocketConnector {
    type Response = hyper_util::rt::TokioIo<UnixStream>;
    type Error = io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: tonic::transport::Uri) -> Connecting {
        let path = self.path.clone();
        Box::pin(async move {
            let stream = UnixStream::connect(&path).await?;
            Ok(hyper_util::rt::TokioIo::new(stream))
        })
    }
}

/// A gRPC channel to the socket at `path` (no TLS).
pub async fn channel(path: &Path, timeout: Duration) -> Result<tonic::transport::Channel, String> {
    // The URI is required by tonic and unused: the connector dials the socket.
    tonic::transport::Endpoint::from_static("http://monkd.sock")
        .connect_timeout(timeout)
        .connect_with_connector(SocketConnector {
            path: path.to_path_buf(),
        })
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", path.display()))
}
