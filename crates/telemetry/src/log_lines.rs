//! The JSON line each log event is written as on stdout, through tracing-subscriber's `fmt`
//! layer: `level`, `service`, `target`, `timestamp`, the `trace_id` and `span_id` of the span
//! it was written in, then the event's own fields (`message` among them) in the order they
//! were recorded.
//!
//! The line is written here, into a `String` of the thread's, and handed to the `fmt` layer
//! whole. json-subscriber, used before, built a `serde_json::Value` of every field, sorted them
//! into a map and serialized that: a line cost about 26 k instructions in all (the OTLP record
//! included), 14 k once written here, and 11.8 k since its timestamp is humantime's and its
//! span's ids are looked up once for both sinks (BENCHMARKS.md, tenth and twelfth rounds).
//! Written to stdout alone, 5.2 k before the twentieth round's table escape and one-piece
//! hand-over, 3.5 k since. An order writes five, with or without telemetry.

use std::{
    cell::RefCell,
    fmt::{self, Write as _},
};

use tracing::{
    Event, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{
    fmt::{
        FmtContext, FormatEvent, FormatFields,
        format::Writer,
        time::{FormatTime as _, SystemTime},
    },
    registry::LookupSpan,
};

/// Keys of the line itself: an event field of one of these names is written as `fields.<name>`,
/// so that no key appears twice.
const LINE_KEYS: [&str; 6] = [
    "level",
    "service",
    "target",
    "timestamp",
    "trace_id",
    "span_id",
];

/// The longest line whose buffer a thread keeps for the next one.
const KEPT_LINE_BYTES: usize = 16 * 1024;

/// The format of a log line. See the module's documentation.
pub(crate) struct JsonLine {
    /// The service's name, already a JSON string.
    service: String,
}

impl JsonLine {
    pub(crate) fn new(service: &str) -> Self {
        let mut quoted = String::with_capacity(service.len() + 2);
        push_json_str(&mut quoted, service);
        Self { service: quoted }
    }
}

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    /// The line is made in a `String` of this thread's and handed to the `fmt` layer in one
    /// piece: its `Writer` is a `dyn fmt::Write`, one call through a vtable for every piece a
    /// line is made of (about 30; BENCHMARKS.md, twentieth round).
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        thread_local! {
            static LINE: RefCell<String> = const { RefCell::new(String::new()) };
        }
        LINE.with(|kept| {
            // A `String` of its own if the thread's is in use: not reached through tracing,
            // which calls no subscriber from inside one (tracing-core's
            // `dispatcher::get_default`), but a line is never lost or a panic raised for it.
            let mut own = String::new();
            let mut kept = kept.try_borrow_mut();
            let line = match &mut kept {
                Ok(kept) => &mut **kept,
                Err(_) => &mut own,
            };
            line.clear();
            self.write_line(line, event)?;
            let written = w.write_str(line);
            // One line of a megabyte (a long error chain) is not kept for the thread's life.
            if line.capacity() > KEPT_LINE_BYTES {
                *line = String::new();
            }
            written
        })
    }
}

impl JsonLine {
    fn write_line(&self, line: &mut String, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        line.push_str("{\"level\":\"");
        line.push_str(meta.level().as_str());
        line.push_str("\",\"service\":");
        line.push_str(&self.service);
        line.push_str(",\"target\":");
        push_json_str(line, meta.target());
        line.push_str(",\"timestamp\":\"");
        write_timestamp(line, std::time::SystemTime::now())?;
        line.push('"');
        if let Some(context) = crate::subscriber::event_span_context(event) {
            line.push_str(",\"trace_id\":\"");
            line.push_str(crate::ids::trace_id_hex(context.trace_id()).as_str());
            line.push_str("\",\"span_id\":\"");
            line.push_str(crate::ids::span_id_hex(context.span_id()).as_str());
            line.push('"');
        }
        let mut fields = Fields {
            line: &mut *line,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        line.push_str("}\n");
        Ok(())
    }
}

/// `now` in RFC 3339 to the microsecond, `2026-12-03T16:09:30.123456Z`. humantime writes it
/// into a buffer of its own, then in one piece: 0.3 k instructions a line, where
/// tracing-subscriber's `SystemTime` took 2.3 k in nine padded `write!`s. humantime panics on a
/// time before 1970 and refuses years after 9999, and a clock can be that wrong: then
/// tracing-subscriber's formatter writes the clock's time, as it did before.
fn write_timestamp(line: &mut String, now: std::time::SystemTime) -> fmt::Result {
    /// 10000-01-01T00:00:00Z, the first second humantime refuses.
    const YEAR_10000: u64 = 253_402_300_800;
    match now.duration_since(std::time::UNIX_EPOCH) {
        Ok(since) if since.as_secs() < YEAR_10000 => {
            write!(line, "{}", humantime::format_rfc3339_micros(now))
        }
        _ => SystemTime.format_time(&mut Writer::new(line)),
    }
}

/// Writes each field of an event as `,"name":value`.
struct Fields<'a> {
    line: &'a mut String,
    result: fmt::Result,
}

impl Fields<'_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut String) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        self.line.push_str(",\"");
        if LINE_KEYS.contains(&name) {
            self.line.push_str("fields.");
        }
        push_escaped(self.line, name);
        self.line.push_str("\":");
        self.result = value(self.line);
    }

    /// An integer, written by itoa (`write!` goes through `core::fmt`'s padding machinery).
    fn integer(&mut self, field: &Field, value: impl itoa::Integer) {
        self.field(field, |line| {
            line.push_str(itoa::Buffer::new().format(value));
            Ok(())
        });
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |line| {
            push_json_str(line, value);
            Ok(())
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.integer(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.integer(field, value);
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.integer(field, value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.integer(field, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity: as serde_json, `null`.
        self.field(field, |line| {
            if value.is_finite() {
                write!(line, "{value}")
            } else {
                line.push_str("null");
                Ok(())
            }
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |line| {
            line.push_str(if value { "true" } else { "false" });
            Ok(())
        });
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, |line| {
            line.push('"');
            write!(Escaped(&mut *line), "{value}")?;
            line.push('"');
            Ok(())
        });
    }

    /// `message` (the `format_args!` of `info!("...")`) and every `?value` arrive here.
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |line| {
            line.push('"');
            write!(Escaped(&mut *line), "{value:?}")?;
            line.push('"');
            Ok(())
        });
    }
}

/// `value` as a JSON string, quotes included.
fn push_json_str(line: &mut String, value: &str) {
    line.push('"');
    push_escaped(line, value);
    line.push('"');
}

/// What each byte becomes inside a JSON string (RFC 8259 §7): 0 for itself, the letter after
/// the backslash for the quote, the backslash and the control characters that have one, `u`
/// for the other control characters (`\u00XX`). A table, as serde_json's: one lookup a byte,
/// where a `match` was a chain of compares (a third of what a line cost, twentieth round).
static ESCAPES: [u8; 256] = {
    let mut table = [0; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = b'u';
        byte += 1;
    }
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table
};

/// `s` escaped as the inside of a JSON string, its plain runs copied whole.
fn push_escaped(line: &mut String, s: &str) {
    let mut plain = 0;
    for (i, &byte) in s.as_bytes().iter().enumerate() {
        let escape = ESCAPES[usize::from(byte)];
        if escape == 0 {
            continue;
        }
        // Every byte escaped is ASCII, so `i` is at a character boundary.
        line.push_str(&s[plain..i]);
        line.push('\\');
        if escape == b'u' {
            push_unicode_escape(line, byte);
        } else {
            line.push(char::from(escape));
        }
        plain = i + 1;
    }
    line.push_str(&s[plain..]);
}

/// `u00XX` for a control character that has no escape of its own. Out of the loop above and
/// cold: inlined, it made every line's escape loop slower (about 100 instructions a line).
#[cold]
fn push_unicode_escape(line: &mut String, byte: u8) {
    let mut digits = *b"u00xx";
    crate::ids::write_hex(&[byte], &mut digits[3..]);
    line.push_str(std::str::from_utf8(&digits).unwrap_or_default());
}

/// A `fmt::Write` that escapes what it is given, for values that arrive as `Display` or
/// `Debug` pieces.
struct Escaped<'a>(&'a mut String);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        push_escaped(self.0, s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io,
        sync::{Arc, Mutex},
    };

    use tracing_subscriber::{fmt::MakeWriter, layer::SubscriberExt as _};

    use super::JsonLine;

    /// What the lines were written to.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn text_of(log: impl FnOnce()) -> String {
        let lines = Lines::default();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .event_format(JsonLine::new("test \"service\""))
                .with_writer(lines.clone()),
        );
        tracing::subscriber::with_default(subscriber, log);
        String::from_utf8(lines.0.lock().expect("lines").clone()).expect("UTF-8")
    }

    fn lines_of(log: impl FnOnce()) -> Vec<serde_json::Value> {
        text_of(log)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }

    /// Each character as JSON writes it inside a string, one at a time: what `push_escaped`,
    /// which copies the runs that need no escape whole, must agree with.
    fn escaped_one_by_one(s: &str) -> String {
        s.chars()
            .map(|c| match c {
                '"' => "\\\"".to_owned(),
                '\\' => "\\\\".to_owned(),
                '\n' => "\\n".to_owned(),
                '\r' => "\\r".to_owned(),
                '\t' => "\\t".to_owned(),
                c if u32::from(c) < 0x20 => format!("\\u{:04x}", u32::from(c)),
                c => c.to_string(),
            })
            .collect()
    }

    #[test]
    fn every_character_is_escaped_as_json_wherever_it_falls_in_a_string() {
        // Every ASCII character and a few of two, three and four bytes, first, last and
        // everywhere between, in runs of every length up to 26.
        let odd_ones = ['é', '€', '😀', '\u{7f}'];
        let characters = (0..0x80u8).map(char::from).chain(odd_ones);
        for c in characters {
            for at in 0..27 {
                let mut s: String = "abcdefghijklmnopqrstuvwxyz0".chars().take(at).collect();
                s.push(c);
                s.push_str("tail");
                let mut escaped = String::new();
                super::push_escaped(&mut escaped, &s);
                assert_eq!(escaped, escaped_one_by_one(&s), "{c:?} at {at}");
                let decoded: String = serde_json::from_str(&format!("\"{escaped}\""))
                    .unwrap_or_else(|e| panic!("{c:?} at {at}: {e}: {escaped}"));
                assert_eq!(decoded, s);
            }
        }
    }

    #[test]
    fn a_line_is_one_json_object_with_the_event_fields_typed_and_escaped() {
        let error = io::Error::other("disk \"full\"");
        let lines = lines_of(|| {
            tracing::warn!(
                item = "quote \" backslash \\ newline \n tab \t bell \u{7} é",
                quantity = 3_u64,
                delta = -2_i64,
                price = 9.99_f64,
                ratio = f64::NAN,
                held = true,
                error = &error as &(dyn std::error::Error + 'static),
                debug = ?vec!["a", "b"],
                level = "shadowed",
                "stock {} low",
                "running"
            );
        });
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["service"], "test \"service\"");
        assert_eq!(line["target"], module_path!());
        // RFC 3339 in UTC to the microsecond, `2026-12-03T16:09:30.123456Z`, and now.
        let timestamp = line["timestamp"].as_str().expect("a timestamp");
        let shape: String = timestamp
            .chars()
            .map(|c| if c.is_ascii_digit() { '9' } else { c })
            .collect();
        assert_eq!(shape, "9999-99-99T99:99:99.999999Z", "{timestamp}");
        let written = humantime::parse_rfc3339(timestamp).expect("RFC 3339");
        let age = std::time::SystemTime::now()
            .duration_since(written)
            .expect("not in the future");
        assert!(age < std::time::Duration::from_secs(60), "{timestamp}");
        assert_eq!(line["message"], "stock running low");
        assert_eq!(
            line["item"],
            "quote \" backslash \\ newline \n tab \t bell \u{7} é"
        );
        assert_eq!(line["quantity"], 3);
        assert_eq!(line["delta"], -2);
        assert_eq!(line["price"], 9.99);
        assert!(line["ratio"].is_null());
        assert_eq!(line["held"], true);
        assert_eq!(line["error"], "disk \"full\"");
        assert_eq!(line["debug"], "[\"a\", \"b\"]");
        assert_eq!(line["fields.level"], "shadowed", "{line}");
        // No span is current and no OpenTelemetry layer is installed: no ids.
        assert!(line.get("trace_id").is_none() && line.get("span_id").is_none());
    }

    #[test]
    fn integers_at_their_limits_are_written_exactly() {
        let text = text_of(|| {
            tracing::info!(
                zero = 0_u64,
                most = u64::MAX,
                least = i64::MIN,
                wide = u128::MAX,
                wide_negative = i128::MIN,
                "limits"
            );
        });
        // serde_json would read the 128-bit ones as floats: the text is compared.
        for (key, value) in [
            ("zero", "0".to_owned()),
            ("most", u64::MAX.to_string()),
            ("least", i64::MIN.to_string()),
            ("wide", u128::MAX.to_string()),
            ("wide_negative", i128::MIN.to_string()),
        ] {
            assert!(
                text.contains(&format!(",\"{key}\":{value}")),
                "{key}: {text}"
            );
        }
        let line: serde_json::Value = serde_json::from_str(&text).expect("one JSON line");
        assert_eq!(line["most"], u64::MAX);
        assert_eq!(line["least"], i64::MIN);
    }

    #[test]
    fn a_clock_before_1970_or_after_9999_still_gets_a_timestamp_and_no_panic() {
        use std::time::{Duration, SystemTime, UNIX_EPOCH};

        let written = |now: SystemTime| {
            let mut text = String::new();
            super::write_timestamp(&mut text, now).expect("written");
            text
        };
        assert_eq!(
            written(UNIX_EPOCH + Duration::from_micros(1_764_777_570_123_456)),
            "2025-12-03T15:59:30.123456Z"
        );
        for wrong in [
            UNIX_EPOCH - Duration::from_secs(86_400),
            UNIX_EPOCH + Duration::from_secs(253_402_300_800),
        ] {
            let text = written(wrong);
            assert!(
                text.len() == 27 && text.ends_with('Z') && text.as_bytes()[10] == b'T',
                "{text}"
            );
        }
    }
}
