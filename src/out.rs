//! Printing a command's results to stdout without panicking when the reader has gone
//! (`cfkit inspect … | head`): `println!` panics on a closed pipe. The binary keeps Rust's
//! default of ignoring SIGPIPE (a rank of a distributed run writing to a closed socket must get
//! an error, not be killed), so a closed stdout surfaces as [`StdoutClosed`], which unwinds the
//! command like any error (its locks and partial files are released as usual) and `main` turns
//! into the exit status a shell gives a process killed by SIGPIPE, without a message.

use std::fmt;
use std::io::{ErrorKind, Write};

/// Stdout's reader is gone.
#[derive(Debug)]
pub(crate) struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stdout was closed by its reader")
    }
}

impl std::error::Error for StdoutClosed {}

/// The status of a process that SIGPIPE ended (128 + 13), as shells report it.
pub(crate) const CLOSED_STATUS: u8 = 141;

/// Writes one line to stdout; a closed pipe is [`StdoutClosed`], another failure an error that
/// says what failed.
pub(crate) fn write_line(args: fmt::Arguments) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::anyhow!("writing to stdout: {e}")),
    }
}

/// `println!` that returns an error instead of panicking: `outln!("…", x)?`.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::out::write_line(format_args!($($arg)*))
    };
}
pub(crate) use outln;
