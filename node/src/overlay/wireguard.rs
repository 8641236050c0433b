//! This peer's WireGuard interface, the effects half of the overlay: start a userspace
//! WireGuard (`boringtun-cli`) as monkd's child, give the interface its private key,
//! port and overlay address, read its peers, and carry out the planner's actions over
//! the UAPI socket (`super::uapi`).
//!
//! The child runs in the foreground with `PR_SET_PDEATHSIG`, so it dies with monkd
//! even on SIGKILL: no tunnel outlives the peer that configures it (a restarted monkd
//! starts a new one in about a second; the userspace tunnel is down meanwhile). The
//! kernel's WireGuard, which would survive a monkd restart, is not used yet: no machine
//! here has the module, so that path could not be tested.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use monk_statemachine::Ipv4Net;
use tokio::process::{Child, Command};

use super::uapi::{self, DeviceStatus, UapiError};

/// The userspace WireGuard monkd starts (`monkd --wg-userspace` or
/// `WG_USERSPACE_IMPLEMENTATION` to use another, e.g. `wireguard-go`).
pub const USERSPACE_DEFAULT: &str = "boringtun-cli";
/// How long a started userspace WireGuard may take to open its control socket.
pub const START_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on each `ip` command.
const IP_TIMEOUT: Duration = Duration::from_secs(5);
/// MTU of the interface: 1500 minus WireGuard's 80 bytes of IPv6/UDP/header overhead.
pub const MTU: u16 = 1420;
/// Longest Linux interface name.
pub const IFNAME_MAX: usize = 15;

/// Why the interface could not be made or changed.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error("cannot start the userspace WireGuard {program:?}: {source} (install it with ./scripts/setup, or give another with --wg-userspace)")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("the userspace WireGuard {program:?} exited at start ({status}); its log: {log}")]
    Exited {
        program: String,
        status: String,
        log: PathBuf,
    },
    #[error(
        "the userspace WireGuard opened no control socket within {START_TIMEOUT:?}; its log: {log}"
    )]
    NoSocket { log: PathBuf },
    #[error("`ip {args}` failed: {why}")]
    Ip { args: String, why: String },
    #[error(transparent)]
    Uapi(#[from] UapiError),
}

/// An interface name unique on this machine for the peer whose data dir is
/// `data_dir` (userspace control sockets share one directory across namespaces).
pub fn interface_name(data_dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(data_dir.to_string_lossy().as_bytes());
    let mut name = format!("wgmonk{}", &hex::encode(digest)[..8]);
    name.truncate(IFNAME_MAX);
    name
}

/// A running interface and the process behind it.
pub struct Tunnel {
    pub name: String,
    program: String,
    child: Child,
    socket: PathBuf,
    log: PathBuf,
    address: Option<(Ipv4Addr, Ipv4Net)>,
}

impl Tunnel {
    /// Starts `program` for interface `name` (its output goes to `log`), waits for its
    /// control socket, and gives it `private_key` and `listen_port`.
    pub async fn start(
        program: &str,
        name: &str,
        private_key: &[u8; 32],
        listen_port: u16,
        log: &Path,
    ) -> Result<Tunnel, TunnelError> {
        let socket = uapi::socket_path(name);
        // A socket left by a process that died (SIGKILL) would answer nothing.
        if uapi::get(&socket).await.is_err() {
            let _ = std::fs::remove_file(&socket);
        }
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|source| TunnelError::Spawn {
                program: program.into(),
                source,
            })?;
        let err = out.try_clone().map_err(|source| TunnelError::Spawn {
            program: program.into(),
            source,
        })?;
        let mut command = Command::new(program);
        command
            .args([
                "--foreground",
                "--disable-drop-privileges",
                "--threads",
                "2",
            ])
            .arg(name)
            .env("WG_SUDO", "true")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill the
        // child when its parent (monkd) dies.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|source| TunnelError::Spawn {
            program: program.into(),
            source,
        })?;
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(TunnelError::Exited {
                    program: program.into(),
                    status: status.to_string(),
                    log: log.into(),
                });
            }
            if uapi::get(&socket).await.is_ok() {
                break;
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(TunnelError::NoSocket { log: log.into() });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let request = uapi::set_request(Some(private_key), Some(listen_port), &[])?;
        uapi::set(&socket, &request).await?;
        ip(&["link", "set", "dev", name, "mtu", &MTU.to_string(), "up"]).await?;
        Ok(Tunnel {
            name: name.into(),
            program: program.into(),
            child,
            socket,
            log: log.into(),
            address: None,
        })
    }

    /// `Some(why)` once the process behind the interface has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!(
                "{} exited ({status}); its log: {}",
                self.program,
                self.log.display()
            )),
            Ok(None) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    /// Gives the interface `address` in `range` (the range's route goes through it),
    /// unless it already has exactly that.
    pub async fn set_address(
        &mut self,
        address: Ipv4Addr,
        range: Ipv4Net,
    ) -> Result<(), TunnelError> {
        if self.address == Some((address, range)) {
            return Ok(());
        }
        ip(&["-4", "address", "flush", "dev", &self.name]).await?;
        let cidr = format!("{address}/{}", range.prefix());
        ip(&["-4", "address", "add", &cidr, "dev", &self.name]).await?;
        self.address = Some((address, range));
        Ok(())
    }

    /// The device's listen port and peers.
    pub async fn status(&self) -> Result<DeviceStatus, TunnelError> {
        Ok(uapi::get(&self.socket).await?)
    }

    /// Carries out the planner's actions in one request.
    pub async fn apply(&self, actions: &[super::plan::Action]) -> Result<(), TunnelError> {
        let request = uapi::set_request(None, None, actions)?;
        Ok(uapi::set(&self.socket, &request).await?)
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        // kill_on_drop ends the process; the socket file it leaves is removed here.
        let _ = self.child.start_kill();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Runs `ip ARGS`, bounded.
pub async fn ip(args: &[&str]) -> Result<(), TunnelError> {
    let failed = |why: String| TunnelError::Ip {
        args: args.join(" "),
        why,
    };
    let run = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(IP_TIMEOUT, run)
        .await
        .map_err(|_| failed(format!("no answer within {IP_TIMEOUT:?}")))?
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_fit_linux_and_differ_per_data_dir() {
        let a = interface_name(Path::new("/var/lib/monk/a"));
        let b = interface_name(Path::new("/var/lib/monk/b"));
        assert!(a.len() <= IFNAME_MAX, "{a}");
        assert_ne!(a, b);
        assert_eq!(a, interface_name(Path::new("/var/lib/monk/a")));
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
