//! The JSON line each log event is written as on stdout, through tracing-subscriber's `fmt`
//! layer: `level`, `service`, `target`, `timestamp`, the `trace_id` and `span_id` of the span
//! it was written in, then the event's own fields (`message` among them) in the order they
//! were recorded.
//!
//! The line is written straight into the `fmt` layer's buffer. json-subscriber, used before,
//! built a `serde_json::Value` of every field, sorted them into a map and serialized that: a
//! line cost about 26 k instructions in all (the OTLP record included), 14 k once written here,
//! and 11.8 k (6.0 k without telemetry) since its timestamp is humantime's and its span's ids
//! are looked up once for both sinks; inventory-service writes two an order, with or without
//! telemetry (BENCHMARKS.md, tenth and twelfth rounds).

use std::fmt::{self, Write as _};

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

/// The format of a log line. See the module's documentation.
pub(crate) struct JsonLine {
    /// The service's name, already a JSON string.
    service: String,
}

impl JsonLine {
    pub(crate) fn new(service: &str) -> Self {
        let mut quoted = String::with_capacity(service.len() + 2);
        let _ = write_json_str(&mut quoted, service);
        Self { service: quoted }
    }
}

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        w.write_str("{\"level\":\"")?;
        w.write_str(meta.level().as_str())?;
        w.write_str("\",\"service\":")?;
        w.write_str(&self.service)?;
        w.write_str(",\"target\":")?;
        write_json_str(&mut w, meta.target())?;
        w.write_str(",\"timestamp\":\"")?;
        write_timestamp(&mut w, std::time::SystemTime::now())?;
        w.write_char('"')?;
        if let Some(context) = crate::subscriber::event_span_context(event) {
            w.write_str(",\"trace_id\":\"")?;
            w.write_str(crate::ids::trace_id_hex(context.trace_id()).as_str())?;
            w.write_str("\",\"span_id\":\"")?;
            w.write_str(crate::ids::span_id_hex(context.span_id()).as_str())?;
            w.write_char('"')?;
        }
        let mut fields = Fields {
            w: &mut w,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        w.write_str("}\n")
    }
}

/// `now` in RFC 3339 to the microsecond, `2026-12-03T16:09:30.123456Z`. humantime writes it
/// into a buffer of its own, then in one piece: 0.3 k instructions a line, where
/// tracing-subscriber's `SystemTime` took 2.3 k in nine padded `write!`s. humantime panics on a
/// time before 1970 and refuses years after 9999, and a clock can be that wrong: then
/// tracing-subscriber's formatter writes the clock's time, as it did before.
fn write_timestamp(w: &mut Writer<'_>, now: std::time::SystemTime) -> fmt::Result {
    /// 10000-01-01T00:00:00Z, the first second humantime refuses.
    const YEAR_10000: u64 = 253_402_300_800;
    match now.duration_since(std::time::UNIX_EPOCH) {
        Ok(since) if since.as_secs() < YEAR_10000 => {
            write!(w, "{}", humantime::format_rfc3339_micros(now))
        }
        _ => SystemTime.format_time(w),
    }
}

/// Writes each field of an event as `,"name":value`.
struct Fields<'a, W> {
    w: &'a mut W,
    result: fmt::Result,
}

impl<W: fmt::Write> Fields<'_, W> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            let name = field.name();
            self.w.write_str(",\"")?;
            if LINE_KEYS.contains(&name) {
                self.w.write_str("fields.")?;
            }
            Escaped(&mut *self.w).write_str(name)?;
            self.w.write_str("\":")?;
            value(self.w)
        })();
    }
}

impl<W: fmt::Write> Visit for Fields<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |w| write_json_str(w, value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity: as serde_json, `null`.
        self.field(field, |w| {
            if value.is_finite() {
                write!(w, "{value}")
            } else {
                w.write_str("null")
            }
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, |w| {
            w.write_char('"')?;
            write!(Escaped(&mut *w), "{value}")?;
            w.write_char('"')
        });
    }

    /// `message` (the `format_args!` of `info!("...")`) and every `?value` arrive here.
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |w| {
            w.write_char('"')?;
            write!(Escaped(&mut *w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

/// `value` as a JSON string, quotes included.
fn write_json_str(w: &mut impl fmt::Write, value: &str) -> fmt::Result {
    w.write_char('"')?;
    Escaped(&mut *w).write_str(value)?;
    w.write_char('"')
}

/// Writes what it is given escaped as the inside of a JSON string (RFC 8259 §7: the quote, the
/// backslash and the control characters).
struct Escaped<'a, W: ?Sized>(&'a mut W);

impl<W: fmt::Write + ?Sized> fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, byte) in s.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..0x20 => "",
                _ => continue,
            };
            self.0.write_str(&s[plain..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            plain = i + 1;
        }
        self.0.write_str(&s[plain..])
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

    fn lines_of(log: impl FnOnce()) -> Vec<serde_json::Value> {
        let lines = Lines::default();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .event_format(JsonLine::new("test \"service\""))
                .with_writer(lines.clone()),
        );
        tracing::subscriber::with_default(subscriber, log);
        let text = String::from_utf8(lines.0.lock().expect("lines").clone()).expect("UTF-8");
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
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
    fn a_clock_before_1970_or_after_9999_still_gets_a_timestamp_and_no_panic() {
        use std::time::{Duration, SystemTime, UNIX_EPOCH};

        use tracing_subscriber::fmt::format::Writer;

        let written = |now: SystemTime| {
            let mut text = String::new();
            super::write_timestamp(&mut Writer::new(&mut text), now).expect("written");
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
