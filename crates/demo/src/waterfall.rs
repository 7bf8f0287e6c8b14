//! A trace drawn as a waterfall: one line per span, indented under its parent, with its start
//! offset, its duration and a bar on a shared time axis; ERROR spans marked, the span that
//! dominates the critical path marked with its share of the request, and each span's log lines
//! beneath it.

use std::{
    collections::{HashMap, HashSet},
    fmt::Write,
};

use anstyle::{AnsiColor, Style};
use trace_store::{SpanStatus, StoredLog, StoredSpan};

const ERROR: Style = AnsiColor::Red.on_default().bold();
const DOMINANT: Style = AnsiColor::Yellow.on_default().bold();
const BAR: Style = AnsiColor::Cyan.on_default();
const DIM: Style = Style::new().dimmed();

/// The spans of a trace arranged as a tree.
struct Tree<'a> {
    /// Spans whose parent is not in the trace, by start time.
    roots: Vec<&'a StoredSpan>,
    children: HashMap<&'a str, Vec<&'a StoredSpan>>,
}

impl<'a> Tree<'a> {
    fn new(spans: &'a [StoredSpan]) -> Self {
        let ids: std::collections::HashSet<&str> =
            spans.iter().map(|s| s.span_id.as_str()).collect();
        let mut roots = Vec::new();
        let mut children: HashMap<&str, Vec<&StoredSpan>> = HashMap::new();
        for span in spans {
            match span.parent_span_id.as_deref().filter(|p| ids.contains(p)) {
                Some(parent) => children.entry(parent).or_default().push(span),
                None => roots.push(span),
            }
        }
        roots.sort_by_key(|s| s.start_unix_nano);
        for list in children.values_mut() {
            list.sort_by_key(|s| s.start_unix_nano);
        }
        Self { roots, children }
    }

    fn children(&self, span: &StoredSpan) -> &[&'a StoredSpan] {
        self.children
            .get(span.span_id.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

/// The span that holds the largest part of the critical path, and that part as a fraction of
/// the root span's duration.
#[derive(Debug, Clone, PartialEq)]
pub struct Dominant {
    /// Its span id.
    pub span_id: String,
    /// Its share of the root span, 0 to 1.
    pub share: f64,
}

/// Finds the dominant span of the critical path from the first root.
///
/// The critical path is walked backwards from the end of the root, as Jaeger does: the time
/// of a span belongs to the child that finished last before the cursor, recursively; what no
/// child covers is the span's own. Children that end after their parent (fire-and-forget work)
/// count only up to the parent's end, so they cannot take the request's time for themselves.
pub fn dominant_span(spans: &[StoredSpan]) -> Option<Dominant> {
    let tree = Tree::new(spans);
    let root = *tree.roots.first()?;
    let total = root.end_unix_nano.saturating_sub(root.start_unix_nano);
    if total == 0 {
        return None;
    }
    let mut own: HashMap<&str, u64> = HashMap::new();
    let mut seen = HashSet::new();
    walk_critical_path(&tree, root, root.end_unix_nano, &mut own, &mut seen);
    let (span_id, nanos) = own
        .into_iter()
        .max_by_key(|(id, nanos)| (*nanos, std::cmp::Reverse(*id)))?;
    Some(Dominant {
        span_id: span_id.to_owned(),
        share: nanos as f64 / total as f64,
    })
}

fn walk_critical_path<'a>(
    tree: &Tree<'a>,
    span: &'a StoredSpan,
    until: u64,
    own: &mut HashMap<&'a str, u64>,
    seen: &mut HashSet<&'a str>,
) {
    // Span ids from another backend may repeat and form a cycle: visit each span once.
    if !seen.insert(span.span_id.as_str()) {
        return;
    }
    let start = span.start_unix_nano;
    let mut cursor = span.end_unix_nano.min(until);
    let mut by_end: Vec<&StoredSpan> = tree.children(span).to_vec();
    by_end.sort_by_key(|c| std::cmp::Reverse(c.end_unix_nano));
    for child in by_end {
        if cursor <= start {
            break;
        }
        if child.start_unix_nano >= cursor {
            continue;
        }
        // Clock skew between hosts can put a child outside its parent: count only the overlap.
        let child_end = child.end_unix_nano.min(cursor).max(start);
        *own.entry(span.span_id.as_str()).or_default() += cursor - child_end;
        walk_critical_path(tree, child, child_end, own, seen);
        cursor = child.start_unix_nano.max(start);
    }
    *own.entry(span.span_id.as_str()).or_default() += cursor.saturating_sub(start);
}

/// Draws `spans` in `width` columns, with ANSI styles (which `anstream` strips when the output
/// is not a terminal); each of `logs` is drawn under the span it was written in.
pub fn render(spans: &[StoredSpan], logs: &[StoredLog], width: usize) -> String {
    let tree = Tree::new(spans);
    let Some(first) = tree.roots.first() else {
        return String::from("(no spans)\n");
    };
    let origin = spans
        .iter()
        .map(|s| s.start_unix_nano)
        .min()
        .unwrap_or(first.start_unix_nano);
    let end = spans
        .iter()
        .map(|s| s.end_unix_nano)
        .max()
        .unwrap_or(first.end_unix_nano);
    let total = end.saturating_sub(origin).max(1);
    let dominant = dominant_span(spans);

    let mut rows = Vec::new();
    for root in &tree.roots {
        collect_rows(&tree, root, 0, &mut rows);
    }
    let label_width = rows
        .iter()
        .map(|(depth, s)| label(*depth, s).chars().count())
        .max()
        .unwrap_or(0)
        .min(width / 2);
    // Columns: two numbers (19), the label, a space, the bar, then room for the marker
    // (" ← 99% of the request", 21). The bar keeps 30 columns even in a narrow terminal:
    // only the marked lines then run past the edge.
    let bar_width = width.saturating_sub(19 + label_width + 1 + 21).max(30);

    let mut out = String::new();
    let status = first
        .int_attribute("http.response.status_code")
        .map(|c| format!(" · {c}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{DIM}trace{DIM:#} {} · [{}] {}{} · {} spans · {:.1} ms",
        first.trace_id,
        first.service_name,
        first.name,
        status,
        spans.len(),
        total as f64 / 1e6
    );
    let _ = writeln!(
        out,
        "{DIM}{:>8} {:>8}  {:<label_width$}{DIM:#}",
        "start ms", "dur ms", "span"
    );
    for (depth, span) in rows {
        let offset = span.start_unix_nano.saturating_sub(origin);
        let duration = span.end_unix_nano.saturating_sub(span.start_unix_nano);
        let lead = (offset as f64 / total as f64 * bar_width as f64).round() as usize;
        let lead = lead.min(bar_width - 1);
        let length = ((duration as f64 / total as f64 * bar_width as f64).round() as usize)
            .clamp(1, bar_width - lead);
        let text: String = label(depth, span).chars().take(label_width).collect();
        let failed = matches!(span.status, SpanStatus::Error(_));
        let style = if failed { ERROR } else { BAR };
        let _ = write!(
            out,
            "{:>8.1} {:>8.1}  {:<label_width$} {}{style}{}{style:#}{}",
            offset as f64 / 1e6,
            duration as f64 / 1e6,
            text,
            " ".repeat(lead),
            "█".repeat(length),
            " ".repeat(bar_width - lead - length),
        );
        if let SpanStatus::Error(description) = &span.status {
            let _ = write!(out, " {ERROR}✗ ERROR{ERROR:#} {description}");
        }
        if let Some(d) = dominant.as_ref().filter(|d| d.span_id == span.span_id) {
            let _ = write!(
                out,
                " {DOMINANT}← {:.0}% of the request{DOMINANT:#}",
                d.share * 100.0
            );
        }
        out.push('\n');
        for log in logs.iter().filter(|l| l.span_id == span.span_id) {
            let offset = log.time_unix_nano.saturating_sub(origin) as f64 / 1e6;
            let _ = writeln!(
                out,
                "{offset:>8.1} {:>8}  {}{DIM}│{DIM:#} {}",
                "",
                "  ".repeat(depth + 1),
                log_line(log)
            );
        }
    }
    out
}

/// `INFO stock reserved item=book reserved=2`, the way the JSON line reads.
fn log_line(log: &StoredLog) -> String {
    let severity = match log.severity_text.as_str() {
        "ERROR" => format!("{ERROR}ERROR{ERROR:#}"),
        "WARN" => format!("{DOMINANT}WARN{DOMINANT:#}"),
        other => format!("{DIM}{other}{DIM:#}"),
    };
    let mut line = format!("{severity} {}", log.body);
    for (key, value) in &log.attributes {
        let _ = write!(line, " {DIM}{key}={DIM:#}{value}");
    }
    line
}

fn collect_rows<'a>(
    tree: &Tree<'a>,
    span: &'a StoredSpan,
    depth: usize,
    rows: &mut Vec<(usize, &'a StoredSpan)>,
) {
    // A cycle of repeated span ids (from another backend) would never end: draw each once.
    if rows.iter().any(|(_, drawn)| std::ptr::eq(*drawn, span)) {
        return;
    }
    rows.push((depth, span));
    for child in tree.children(span) {
        collect_rows(tree, child, depth + 1, rows);
    }
}

fn label(depth: usize, span: &StoredSpan) -> String {
    format!(
        "{}[{}] {}",
        "  ".repeat(depth),
        span.service_name,
        span.name
    )
}

/// One line about a trace, for traces not drawn in full.
pub fn summary(spans: &[StoredSpan]) -> String {
    let tree = Tree::new(spans);
    let Some(root) = tree.roots.first() else {
        return String::from("(empty trace)");
    };
    let duration = root.end_unix_nano.saturating_sub(root.start_unix_nano) as f64 / 1e6;
    let errors = spans
        .iter()
        .filter(|s| matches!(s.status, SpanStatus::Error(_)))
        .count();
    let status = root
        .int_attribute("http.response.status_code")
        .map(|c| format!(" {c}"))
        .unwrap_or_default();
    let errors = if errors > 0 {
        format!(" · {ERROR}{errors} ERROR{ERROR:#}")
    } else {
        String::new()
    };
    let dominant = dominant_span(spans)
        .and_then(|d| {
            spans
                .iter()
                .find(|s| s.span_id == d.span_id)
                .map(|s| (s.name.clone(), d.share))
        })
        .map(|(name, share)| format!(" · {name} {:.0}%", share * 100.0))
        .unwrap_or_default();
    format!(
        "{} [{}] {}{status} · {} spans · {duration:.1} ms{dominant}{errors}",
        root.trace_id,
        root.service_name,
        root.name,
        spans.len()
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use trace_store::SpanKind;

    use super::*;

    /// A span from `start` to `end` milliseconds.
    fn span(id: &str, parent: Option<&str>, name: &str, start: u64, end: u64) -> StoredSpan {
        StoredSpan {
            trace_id: "t".repeat(32),
            span_id: id.to_owned(),
            parent_span_id: parent.map(str::to_owned),
            trace_state: String::new(),
            name: name.to_owned(),
            kind: SpanKind::Internal,
            service_name: "svc".to_owned(),
            scope_name: String::new(),
            start_unix_nano: start * 1_000_000,
            end_unix_nano: end * 1_000_000,
            attributes: BTreeMap::new(),
            resource: BTreeMap::new(),
            status: SpanStatus::Unset,
            events: Vec::new(),
        }
    }

    /// The shape of a quantity-8 order: a 270 ms lookup inside a 320 ms request, and a
    /// notification that outlives the request.
    fn slow_order() -> Vec<StoredSpan> {
        vec![
            span("root", None, "POST /orders", 0, 320),
            span("process", Some("root"), "process_order", 1, 318),
            span("check", Some("process"), "check_inventory", 2, 12),
            span("reserve", Some("process"), "reserve_inventory", 12, 300),
            span("lookup", Some("reserve"), "slow_lookup", 20, 290),
            span("charge", Some("process"), "charge_payment", 300, 315),
            span("notify", Some("process"), "send_notification", 316, 400),
        ]
    }

    #[test]
    fn the_slow_lookup_dominates_the_critical_path() {
        let dominant = dominant_span(&slow_order()).expect("a dominant span");
        assert_eq!(dominant.span_id, "lookup");
        assert!(
            (dominant.share - 270.0 / 320.0).abs() < 1e-9,
            "{}",
            dominant.share
        );
    }

    #[test]
    fn work_that_outlives_the_request_does_not_take_its_time() {
        let mut spans = slow_order();
        spans.push(span("late", Some("notify"), "POST", 316, 900));
        assert_eq!(dominant_span(&spans).expect("dominant").span_id, "lookup");
    }

    #[test]
    fn a_cycle_of_span_ids_or_a_skewed_child_cannot_break_the_drawing() {
        let mut spans = slow_order();
        // A child that starts before its parent (clock skew) is counted only inside it.
        spans.push(span("early", Some("check"), "skewed", 0, 5));
        let dominant = dominant_span(&spans).expect("dominant");
        assert!(dominant.share <= 1.0, "{}", dominant.share);
        // Two spans each the parent of the other, below the root.
        spans.push(span("a", Some("b"), "loop-a", 5, 6));
        spans.push(span("b", Some("a"), "loop-b", 5, 6));
        let drawn = render(&spans, &[], 100);
        assert!(drawn.lines().count() >= spans.len() - 1, "{drawn}");
        assert!(dominant_span(&spans).is_some());
    }

    #[test]
    fn each_log_line_is_drawn_under_the_span_it_was_written_in() {
        let log = |span_id: &str, at_ms: u64, body: &str| StoredLog {
            time_unix_nano: at_ms * 1_000_000,
            service_name: "svc".into(),
            severity_text: "INFO".into(),
            body: body.into(),
            trace_id: "t".repeat(32),
            span_id: span_id.into(),
            attributes: BTreeMap::from([("item".to_owned(), "book".to_owned())]),
        };
        let logs = [
            log("lookup", 289, "stock reserved"),
            log("process", 317, "order created"),
            log("elsewhere", 1, "a line of another span"),
        ];
        let drawn = anstream::adapter::strip_str(&render(&slow_order(), &logs, 120)).to_string();
        let lines: Vec<&str> = drawn.lines().collect();
        let below = |span: &str| {
            let at = lines.iter().position(|l| l.contains(span)).expect(span);
            lines[at + 1]
        };
        assert_eq!(
            below("slow_lookup").trim(),
            "289.0                   │ INFO stock reserved item=book",
            "at the line's own time, indented one step under its span"
        );
        assert!(below("slow_lookup").starts_with("   289.0"), "{drawn}");
        assert!(
            below("] process_order").contains("      │ INFO order created"),
            "{drawn}"
        );
        assert!(!drawn.contains("another span"), "{drawn}");
    }

    #[test]
    fn waterfall_has_a_line_per_span_indented_and_marked() {
        let mut spans = slow_order();
        spans[5].status = SpanStatus::Error("Payment failed".into());
        // What a user sees when the output is piped: anstream strips the styles.
        let drawn = anstream::adapter::strip_str(&render(&spans, &[], 120)).to_string();
        let plain: Vec<&str> = drawn.lines().collect();
        assert_eq!(plain.len(), 2 + spans.len(), "{drawn}");
        let lookup = plain
            .iter()
            .find(|l| l.contains("slow_lookup"))
            .expect("lookup line");
        assert!(lookup.contains("      [svc] slow_lookup"), "{lookup}");
        assert!(lookup.contains("← 84% of the request"), "{lookup}");
        assert!(
            lookup.contains("20.0") && lookup.contains("270.0"),
            "{lookup}"
        );
        let charge = plain
            .iter()
            .find(|l| l.contains("charge_payment"))
            .expect("charge line");
        assert!(
            charge.contains("✗ ERROR") && charge.contains("Payment failed"),
            "{charge}"
        );
        // The bars share one time axis: the root's bar starts in the first column of the axis.
        assert!(
            plain[2].contains("] POST /orders") && plain[2].contains(" █"),
            "{}",
            plain[2]
        );
    }
}
