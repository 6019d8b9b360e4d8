//! Standard output of the commands (a leaf): every line a command prints goes through
//! [`line`] (the `outln!` macro) or [`bytes`], which report a failed write instead of
//! panicking as `println!` does. A reader that closed the pipe (`| head`) is
//! [`OutputError::Closed`], which `cli::run` turns into a quiet, successful end: the reader
//! has what it wanted. Another failure (a full disk) stays an error. Lines to standard error
//! go through [`error_line`] (the `errln!` macro), which ignores a failed write instead of
//! panicking as `eprintln!` does.

use std::io::Write;

/// Why standard output could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OutputError {
    /// Its reader closed the pipe.
    #[error("standard output is closed")]
    Closed,
    /// Any other failure.
    #[error("cannot write to standard output")]
    Failed(#[source] std::io::Error),
}

impl From<std::io::Error> for OutputError {
    fn from(error: std::io::Error) -> Self {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            OutputError::Closed
        } else {
            OutputError::Failed(error)
        }
    }
}

/// Writes `text` and a newline to standard output, as `println!` would, without panicking.
pub(crate) fn line(text: std::fmt::Arguments<'_>) -> Result<(), OutputError> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(text)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Writes `data` to standard output as it is, and flushes it.
pub(crate) fn bytes(data: &[u8]) -> Result<(), OutputError> {
    let mut out = std::io::stdout().lock();
    out.write_all(data)?;
    out.flush()?;
    Ok(())
}

/// Whether `error` comes from a standard output whose reader closed the pipe.
pub(crate) fn is_closed(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| matches!(cause.downcast_ref(), Some(OutputError::Closed)))
}

/// `println!` for commands: formats a line to standard output and returns
/// `Result<(), OutputError>`, so that a closed pipe ends the command instead of a panic.
macro_rules! outln {
    () => {
        $crate::output::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
pub(crate) use outln;

/// Writes `text` and a newline to standard error, as `eprintln!` would, without panicking. A
/// standard error that cannot be written leaves nowhere to say so: the failure is ignored.
pub(crate) fn error_line(text: std::fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(text).and_then(|()| err.write_all(b"\n"));
}

/// `eprintln!` that cannot panic: see [`error_line`].
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::error_line(format_args!($($arg)*))
    };
}
pub(crate) use errln;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_pipe_is_a_closed_output_and_nothing_else_is() {
        let closed = OutputError::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(matches!(closed, OutputError::Closed));
        let full = OutputError::from(std::io::Error::from(std::io::ErrorKind::StorageFull));
        assert!(matches!(full, OutputError::Failed(_)));

        let reported = anyhow::Error::new(closed).context("printing the table");
        assert!(is_closed(&reported));
        assert!(!is_closed(&anyhow::Error::new(full)));
        // A broken pipe elsewhere (a sink's socket) is not standard output's.
        let socket = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(!is_closed(&anyhow::Error::new(socket)));
    }
}
