//! A trace drawn as indented text, the way SPEC §2 draws it.

use std::collections::HashMap;

use trace_store::{SpanKind, StoredSpan};

/// One line per span, `[service] name KIND`, children indented under their parent and ordered
/// by start time. Spans whose parent is not in the trace are roots. Kinds other than SERVER
/// and CLIENT are left out of the line, as in SPEC §2.
pub fn render_tree(spans: &[StoredSpan]) -> String {
    let ids: HashMap<&str, &StoredSpan> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let mut children: HashMap<Option<&str>, Vec<&StoredSpan>> = HashMap::new();
    for span in spans {
        let parent = span
            .parent_span_id
            .as_deref()
            .filter(|p| ids.contains_key(p));
        children.entry(parent).or_default().push(span);
    }
    for list in children.values_mut() {
        list.sort_by_key(|s| (s.start_unix_nano, s.name.clone()));
    }
    let mut out = String::new();
    draw(&children, None, 0, &mut out);
    out
}

fn draw(
    children: &HashMap<Option<&str>, Vec<&StoredSpan>>,
    parent: Option<&str>,
    depth: usize,
    out: &mut String,
) {
    for span in children.get(&parent).map(Vec::as_slice).unwrap_or_default() {
        let kind = match span.kind {
            SpanKind::Server => " SERVER",
            SpanKind::Client => " CLIENT",
            _ => "",
        };
        out.push_str(&format!(
            "{}[{}] {}{}\n",
            "  ".repeat(depth),
            span.service_name,
            span.name,
            kind
        ));
        draw(children, Some(span.span_id.as_str()), depth + 1, out);
    }
}
