//! Writing to standard output. Rust starts a program with SIGPIPE ignored, so a write
//! into a pipe whose reader left (`monk list | head`, `monk events -f | grep -m1 x`)
//! fails with `BrokenPipe`, and `print!` would panic on it. `monk` keeps SIGPIPE
//! ignored (its default disposition would also kill `monk` silently when a *peer*
//! closes the connection during a vectored socket write: `writev` raises SIGPIPE,
//! and the user would see no message and an exit status of 141) and ends quietly
//! here instead, with status 0, as `ls | head` ends without a word.

use std::io::{ErrorKind, Write};

/// Writes `text` to stdout and flushes it. A reader that left ends the program
/// quietly (status 0); any other failure (a full disk behind `> file`) ends it with
/// a message and status 1.
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if e.kind() == ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("monk: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}
