//! The metric names a PromQL expression reads, to check that every name a Grafana panel, a
//! datasource link or an alert uses is one that some component of the stack produces.

use std::collections::BTreeSet;

/// Words of PromQL that are not metrics though no `(` may follow them: keywords, and the
/// aggregation operators, which may be followed by `by (…)` first.
const KEYWORDS: [&str; 23] = [
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "count_values",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
];

/// The metric names `expr` selects. Label matchers (`{…}`), ranges (`[…]`), grouping lists
/// (`by (…)`), strings, numbers, Grafana variables and function names are skipped.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    let mut previous_word = String::new();
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => i = skip_past(&chars, i + 1, c),
            '{' => i = skip_past(&chars, i + 1, '}'),
            '[' => i = skip_past(&chars, i + 1, ']'),
            '(' if matches!(
                previous_word.as_str(),
                "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
            ) =>
            {
                i = skip_past(&chars, i + 1, ')');
                previous_word.clear();
            }
            '$' => {
                // A Grafana variable: $name, $__name, ${name}.
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || "_{}$".contains(chars[i])) {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i]))
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let next = chars[i..].iter().find(|c| !c.is_whitespace());
                let is_call = next == Some(&'(');
                if !is_call && !KEYWORDS.contains(&word.as_str()) {
                    names.insert(word.clone());
                }
                previous_word = word;
                continue;
            }
            c if c.is_ascii_digit() || c == '.' => {
                // A number or duration: 0.99, 5m, 1e3.
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
                continue;
            }
            _ => i += 1,
        }
        if !c.is_ascii_alphanumeric() && !c.is_whitespace() && c != '(' {
            previous_word.clear();
        }
    }
    names
}

/// The index after the first `end` at or after `from` (strings may escape with `\`).
fn skip_past(chars: &[char], mut from: usize, end: char) -> usize {
    while from < chars.len() {
        if chars[from] == '\\' {
            from += 2;
            continue;
        }
        if chars[from] == end {
            return from + 1;
        }
        from += 1;
    }
    from
}

#[cfg(test)]
mod tests {
    use super::metric_names;

    fn names(expr: &str) -> Vec<String> {
        metric_names(expr).into_iter().collect()
    }

    #[test]
    fn finds_the_metrics_of_panels_rules_and_links() {
        assert_eq!(
            names(
                "histogram_quantile(0.99, sum by (le, job, http_route) (rate(http_server_request_duration_seconds_bucket{job=\"order-service\"}[$__rate_interval])))"
            ),
            ["http_server_request_duration_seconds_bucket"]
        );
        assert_eq!(
            names(
                "(sum(rate(a_total{code=~\"5..\"}[5m])) or vector(0)) / sum without (instance) (rate(b_total[5m])) > 0.05"
            ),
            ["a_total", "b_total"]
        );
        assert_eq!(
            names("order_service:requests_5xx:ratio_5m > 0.05"),
            ["order_service:requests_5xx:ratio_5m"]
        );
        assert_eq!(
            names("sum(rate(traces_spanmetrics_calls_total{$$__tags}[5m]))"),
            ["traces_spanmetrics_calls_total"]
        );
        assert_eq!(
            names("rate(x_total[1m]) * on (job) group_left (version) build_info"),
            ["build_info", "x_total"]
        );
    }
}
