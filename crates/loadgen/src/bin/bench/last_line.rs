//! The last thing a service wrote to stderr, kept for when it exits at start.
//!
//! A service refuses a bad setting with one line on stderr and exit code 2
//! (`PAYMENT_FAILURE_RATE="abc"`: "expected a number from 0 to 1"). bench sets the services'
//! environment from its own (`environment`), so that line is what its user needs to see, where
//! "did not become healthy" ten seconds later would say nothing of why. The pipe is read to its end by a
//! thread of its own, so that a service never waits on a full pipe, whatever it writes.

use std::{
    io::{BufRead, BufReader, Read},
    thread::JoinHandle,
};

/// Of a line longer than this, the beginning is kept.
const KEPT: usize = 300;

/// The reading of one process's stderr; see the module's documentation.
pub struct LastLine(Option<JoinHandle<String>>);

impl LastLine {
    /// Reads `stderr` until the process closes it (as it exits).
    pub fn watch(stderr: Option<impl Read + Send + 'static>) -> Self {
        Self(stderr.and_then(|stderr| {
            std::thread::Builder::new()
                .name("bench-stderr".into())
                .spawn(move || last_line(BufReader::new(stderr)))
                .ok()
        }))
    }

    /// The last line read, once the process has exited ("" if it wrote none).
    pub fn of_exited(&mut self) -> String {
        self.0
            .take()
            .and_then(|reader| reader.join().ok())
            .unwrap_or_default()
    }
}

/// The last non-empty line of `reader` that is not valgrind's (`==pid== …`, under
/// `--instructions`), at most [`KEPT`] characters of it.
fn last_line(mut reader: impl BufRead) -> String {
    let mut last = String::new();
    let mut line = Vec::new();
    while reader
        .read_until(b'\n', &mut line)
        .is_ok_and(|read| read > 0)
    {
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if !text.is_empty() && !text.starts_with("==") {
            last = text.chars().take(KEPT).collect();
        }
        line.clear();
    }
    last
}

#[cfg(test)]
mod tests {
    use super::last_line;

    #[test]
    fn the_last_line_is_kept_and_valgrinds_are_not() {
        let written = "starting\npayment-service: invalid PAYMENT_FAILURE_RATE=\"abc\"\n\n==12== Events: Ir\n";
        assert_eq!(
            last_line(written.as_bytes()),
            "payment-service: invalid PAYMENT_FAILURE_RATE=\"abc\""
        );
        assert_eq!(last_line("".as_bytes()), "");
        assert_eq!(last_line("x".repeat(1000).as_bytes()).len(), 300);
    }
}
