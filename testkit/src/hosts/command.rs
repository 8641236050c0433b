//! The commands a bed runs (`ip`, `iptables`, `docker`, `monk`), each bounded in time,
//! their output read while they run.

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::COMMAND_TIMEOUT;

pub(super) fn ip(args: &[&str]) -> Result<String, String> {
    ok(Command::new("ip").args(args))
}

/// Runs `command`, requiring success; its stdout.
pub(super) fn ok(command: &mut Command) -> Result<String, String> {
    succeeded(run(command, COMMAND_TIMEOUT)?)
}

pub(super) fn succeeded(out: Output) -> Result<String, String> {
    if out.status.success() {
        Ok(crate::cli::stdout(&out))
    } else {
        Err(format!(
            "{}: {}",
            out.status,
            crate::cli::stderr(&out).trim()
        ))
    }
}

/// Runs `command` to its end, killed after `limit`.
pub fn run(command: &mut Command, limit: Duration) -> Result<Output, String> {
    let what = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: {e}"))?;
    let readers = [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn Read + Send>),
    ]
    .map(|pipe| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    });
    let status = wait_child(child, limit).map_err(|e| format!("{what}: {e}"))?;
    let [stdout, stderr] = readers.map(|r| r.join().unwrap_or_default());
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// Waits for `child`, killing it after `limit`.
pub(super) fn wait_child(
    mut child: Child,
    limit: Duration,
) -> Result<std::process::ExitStatus, String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("still running after {limit:?}, killed"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
