//! Latencies by answer status, and the report.

use std::{collections::BTreeMap, fmt::Write, time::Duration};

use hdrhistogram::Histogram;
use serde::Serialize;

/// The status of an answer, or why there was none.
pub type Outcome = String;

/// Latency histograms, one per outcome (`201`, `409`, `error`, …), in microseconds.
#[derive(Default)]
pub struct Stats {
    by_outcome: BTreeMap<Outcome, Histogram<u64>>,
    all: Option<Histogram<u64>>,
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 1 h, 3 significant digits; values beyond are clamped, never lost.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant bounds are valid")
}

impl Stats {
    /// Records one request's `latency` under `outcome`.
    pub fn record(&mut self, outcome: &str, latency: Duration) {
        let micros = (latency.as_micros() as u64).max(1);
        self.by_outcome
            .entry(outcome.to_owned())
            .or_insert_with(histogram)
            .saturating_record(micros);
        self.all
            .get_or_insert_with(histogram)
            .saturating_record(micros);
    }

    /// Requests recorded.
    pub fn count(&self) -> u64 {
        self.all.as_ref().map_or(0, Histogram::len)
    }

    /// Requests that did not get a 2xx or an expected 4xx: 5xx and transport errors.
    pub fn errors(&self) -> u64 {
        self.by_outcome
            .iter()
            .filter(|(o, _)| o.starts_with('5') || o.as_str() == "error")
            .map(|(_, h)| h.len())
            .sum()
    }

    /// A latency quantile over all requests.
    pub fn quantile(&self, q: f64) -> Duration {
        Duration::from_micros(self.all.as_ref().map_or(0, |h| h.value_at_quantile(q)))
    }

    /// The report, over `elapsed`.
    pub fn report(&self, elapsed: Duration) -> Report {
        let row = |outcome: &str, h: &Histogram<u64>| Row {
            outcome: outcome.to_owned(),
            count: h.len(),
            p50_ms: h.value_at_quantile(0.50) as f64 / 1000.0,
            p90_ms: h.value_at_quantile(0.90) as f64 / 1000.0,
            p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
            max_ms: h.max() as f64 / 1000.0,
        };
        let mut rows: Vec<Row> = self.by_outcome.iter().map(|(o, h)| row(o, h)).collect();
        if let Some(all) = &self.all {
            rows.push(row("all", all));
        }
        Report {
            seconds: elapsed.as_secs_f64(),
            requests: self.count(),
            errors: self.errors(),
            throughput_per_second: self.count() as f64 / elapsed.as_secs_f64().max(1e-9),
            rows,
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Status code, `error`, or `all`.
    pub outcome: String,
    /// Requests.
    pub count: u64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Length of the run.
    pub seconds: f64,
    /// Requests answered (or failed).
    pub requests: u64,
    /// 5xx answers and transport errors.
    pub errors: u64,
    /// Requests per second.
    pub throughput_per_second: f64,
    /// Latency by outcome, then over all.
    pub rows: Vec<Row>,
}

impl Report {
    /// The report as a table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<8} {:>8} {:>10} {:>10} {:>10} {:>10}",
            "status", "count", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "{:<8} {:>8} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
                r.outcome, r.count, r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms
            );
        }
        let _ = writeln!(
            out,
            "{} requests in {:.1} s: {:.1}/s, {} errors",
            self.requests, self.seconds, self.throughput_per_second, self.errors
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_known_latencies() {
        let mut stats = Stats::default();
        for ms in 1..=100 {
            stats.record("201", Duration::from_millis(ms));
        }
        stats.record("502", Duration::from_millis(500));
        let report = stats.report(Duration::from_secs(2));
        let created = &report.rows[0];
        assert_eq!((created.outcome.as_str(), created.count), ("201", 100));
        assert!((created.p50_ms - 50.0).abs() < 0.1, "{}", created.p50_ms);
        assert!((created.p99_ms - 99.0).abs() < 0.1, "{}", created.p99_ms);
        assert!((created.max_ms - 100.0).abs() < 0.1);
        assert_eq!(report.errors, 1);
        assert_eq!(report.requests, 101);
        assert!((report.throughput_per_second - 50.5).abs() < 1e-9);
        assert!(report.table().contains("502"));
    }
}
