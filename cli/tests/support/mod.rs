//! Test harness: real `monkd` processes on loopback ports with real data dirs, driven
//! by the real `monk` binary. Every wait is bounded; processes are killed on drop.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn monk_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_monk"))
}

/// `monkd` is built by the node crate into the same directory as `monk`.
pub fn monkd_bin() -> PathBuf {
    let path = monk_bin().with_file_name("monkd");
    assert!(
        path.exists(),
        "{} is missing: run `cargo test --workspace` (it builds every binary)",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .unwrap()
        .port()
}

pub struct Peer {
    /// Extra `monkd` flags used on every (re)start.
    pub extra_args: Vec<String>,
    pub name: String,
    pub data_dir: PathBuf,
    pub addr: String,
    pub child: Option<Child>,
}

impl Peer {
    pub fn start(root: &Path, name: &str) -> Peer {
        Peer::start_with(root, name, &[])
    }

    /// Starts with extra `monkd` flags, kept for restarts.
    pub fn start_with(root: &Path, name: &str, extra: &[&str]) -> Peer {
        let mut peer = Peer {
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            name: name.into(),
            data_dir: root.join(name),
            addr: format!("127.0.0.1:{}", free_port()),
            child: None,
        };
        peer.restart();
        peer
    }

    /// Starts (again) on the same data dir and address.
    pub fn restart(&mut self) {
        std::fs::create_dir_all(&self.data_dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.with_extension("log"))
            .unwrap();
        let child = Command::new(monkd_bin())
            .args([
                "--data-dir",
                self.data_dir.to_str().unwrap(),
                "--listen",
                &self.addr,
                "--name",
                &self.name,
            ])
            .args(&self.extra_args)
            .env("MONK_LOG", "info,openraft=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn monkd");
        self.child = Some(child);
        wait_for(
            Duration::from_secs(20),
            || monk(&self.addr, &["cluster", "info"]).status.success(),
            &format!("{} to answer", self.name),
        );
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and the graceful shutdown must end with exit status 0 within 15 s.
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe_sigterm(child.id());
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = child.try_wait() {
                    assert!(
                        status.success(),
                        "{} did not shut down cleanly on SIGTERM: {status}",
                        self.name
                    );
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} ignored SIGTERM for 15 s", self.name);
        }
    }

    pub fn monk(&self, args: &[&str]) -> Output {
        monk(&self.addr, args)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn unsafe_sigterm(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

pub fn monk(addr: &str, args: &[&str]) -> Output {
    Command::new(monk_bin())
        .arg("--addr")
        .arg(addr)
        .args(args)
        .output()
        .expect("run monk")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `monk`, asserting success, and returns stdout.
pub fn ok(addr: &str, args: &[&str]) -> String {
    let o = monk(addr, args);
    assert!(
        o.status.success(),
        "monk {args:?} via {addr} failed: {}",
        stderr(&o)
    );
    stdout(&o)
}

pub fn json(addr: &str, args: &[&str]) -> serde_json::Value {
    let text = ok(addr, args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("monk {args:?}: not JSON ({e}): {text}"))
}

pub fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl Peer {
    /// Starts monkd on this peer's data dir expecting it to refuse to start; returns
    /// its exit status and stderr.
    pub fn start_expecting_refusal(&self) -> (std::process::ExitStatus, String) {
        let mut child = Command::new(monkd_bin())
            .args([
                "--data-dir",
                self.data_dir.to_str().unwrap(),
                "--listen",
                &self.addr,
                "--name",
                &self.name,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn monkd");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
                return (status, err);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("monkd kept running on a corrupt data dir");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
