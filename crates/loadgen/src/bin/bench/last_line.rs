//! The last thing a service wrote to stderr, kept for when it exits at start.
//!
//! A service refuses a bad setting with one line on stderr and exit code 2
//! (`PAYMENT_FAILURE_RATE="abc"`: "expected a number from 0 to 1"). bench sets the services'
//! environment from its own (`environment`), so that line is what its user needs to see, where
//! "did not become healthy" ten seconds later would say nothing of why. The pipe is read to its
//! end by a thread of its own, so that a service never waits on a full pipe, whatever it writes.
//! A process that exits may leave the pipe open behind it (a wrapper script whose background
//! child inherited it), so its line is waited for a moment, not until the pipe closes.

use std::{
    io::{BufRead, BufReader, Read},
    sync::{
        Arc, Mutex, PoisonError,
        mpsc::{self, Receiver},
    },
    time::Duration,
};

/// Of a line longer than this, the beginning is kept.
const KEPT: usize = 300;

/// How long an exited process's pipe is given to be read to its end.
const DRAIN: Duration = Duration::from_secs(1);

/// The reading of one process's stderr; see the module's documentation.
pub struct LastLine {
    last: Arc<Mutex<String>>,
    /// Disconnected once the pipe is read to its end.
    read_to_end: Option<Receiver<()>>,
}

impl LastLine {
    /// Reads `stderr` until the process closes it (as it exits).
    pub fn watch(stderr: Option<impl Read + Send + 'static>) -> Self {
        let last = Arc::new(Mutex::new(String::new()));
        let (reading, read_to_end) = mpsc::channel::<()>();
        let kept = Arc::clone(&last);
        let started = stderr.and_then(|stderr| {
            std::thread::Builder::new()
                .name("bench-stderr".into())
                .spawn(move || {
                    keep_last_line(BufReader::new(stderr), &kept);
                    drop(reading);
                })
                .ok()
        });
        Self {
            last,
            read_to_end: started.map(|_| read_to_end),
        }
    }

    /// The last line read, once the process has exited ("" if it wrote none).
    pub fn of_exited(&mut self) -> String {
        if let Some(read_to_end) = self.read_to_end.take() {
            // Returns at once when the pipe is closed, and after DRAIN when it is held open.
            let _ = read_to_end.recv_timeout(DRAIN);
        }
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Keeps in `last` the last non-empty line of `reader` that is not valgrind's (`==pid== …`,
/// under `--instructions`), at most [`KEPT`] characters of it.
fn keep_last_line(mut reader: impl BufRead, last: &Mutex<String>) {
    let mut line = Vec::new();
    while reader
        .read_until(b'\n', &mut line)
        .is_ok_and(|read| read > 0)
    {
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if !text.is_empty() && !text.starts_with("==") {
            *last.lock().unwrap_or_else(PoisonError::into_inner) =
                text.chars().take(KEPT).collect();
        }
        line.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::keep_last_line;

    fn last_line(written: &str) -> String {
        let last = Mutex::new(String::new());
        keep_last_line(written.as_bytes(), &last);
        last.into_inner().unwrap_or_default()
    }

    #[test]
    fn the_last_line_is_kept_and_valgrinds_are_not() {
        let written = "starting\npayment-service: invalid PAYMENT_FAILURE_RATE=\"abc\"\n\n==12== Events: Ir\n";
        assert_eq!(
            last_line(written),
            "payment-service: invalid PAYMENT_FAILURE_RATE=\"abc\""
        );
        assert_eq!(last_line(""), "");
        assert_eq!(last_line(&"x".repeat(1000)).len(), 300);
    }
}
