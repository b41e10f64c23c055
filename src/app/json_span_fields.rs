//! The JSON log lines' span fields, written as the span gets them.
//!
//! The fmt layer keeps each span's fields as text, formatted when the span
//! opens and again whenever a field is recorded, whether or not a line is
//! ever logged inside it. `tracing_subscriber`'s `JsonFields` builds a map
//! of `serde_json` values for that, and for every `record` parses the text
//! back, adds the field and serialises it again: for the `rpc` span (a
//! status recorded at the end of every call) that was a quarter of a
//! `GetRole` call's instructions (callgrind, docs/benchmarks.md). Here the
//! object is written directly and a recorded field is appended before its
//! closing brace. Log lines read the same: `span` and `spans` still carry
//! every field.

use std::fmt::{self, Write};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::FormattedFields;
use tracing_subscriber::fmt::format::Writer;

/// Span fields as one JSON object (`{"rpc.method":"GetRole",...}`), without
/// OpenTelemetry's own `otel.*` fields (the span's name and kind, which the
/// `rpc.*` fields already say).
#[derive(Debug, Default)]
pub struct JsonSpanFields;

impl<'writer> FormatFields<'writer> for JsonSpanFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        // Written to a String of its own first: the writer is reached
        // through two dynamic calls per piece.
        let mut object = String::with_capacity(192);
        object.push('{');
        let mut members = Members::new(&mut object, true);
        fields.record(&mut members);
        members.result?;
        object.push('}');
        writer.write_str(&object)
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        if current.fields.pop() != Some('}') {
            // Not an object this formatter wrote: start over with what is recorded now.
            current.fields.clear();
            return self.format_fields(current.as_writer(), fields);
        }
        let empty = current.fields == "{";
        let mut members = Members::new(&mut current.fields, empty);
        fields.record(&mut members);
        members.result?;
        current.fields.push('}');
        Ok(())
    }
}

/// Writes each field it visits as a `"name":value` member.
struct Members<'a> {
    out: &'a mut String,
    first: bool,
    result: fmt::Result,
}

impl<'a> Members<'a> {
    fn new(out: &'a mut String, first: bool) -> Self {
        Self {
            out,
            first,
            result: Ok(()),
        }
    }

    fn member(&mut self, field: &Field, value: impl FnOnce(&mut String) -> fmt::Result) {
        if self.result.is_err() || field.name().starts_with("otel.") {
            return;
        }
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        quoted(self.out, field.name());
        self.out.push(':');
        self.result = value(self.out);
    }
}

impl Visit for Members<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |out| {
            quoted(out, value);
            Ok(())
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |out| write!(out, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |out| write!(out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |out| write!(out, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.member(field, |out| write!(out, "{value}"));
        } else {
            // JSON has no NaN or infinities.
            self.member(field, |out| quoted_display(out, value));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.member(field, |out| quoted_display(out, format_args!("{value:?}")));
    }
}

/// `s` as a JSON string.
fn quoted(out: &mut String, s: &str) {
    out.push('"');
    escape_into(out, s);
    out.push('"');
}

/// What `value` displays, as a JSON string.
fn quoted_display(out: &mut String, value: impl fmt::Display) -> fmt::Result {
    out.push('"');
    write!(Escaped(out), "{value}")?;
    out.push('"');
    Ok(())
}

/// Escapes what is written through it for the inside of a JSON string.
struct Escaped<'a>(&'a mut String);

impl Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

/// Appends `s` escaped for the inside of a JSON string: the runs between
/// the bytes JSON escapes are copied whole.
fn escape_into(out: &mut String, s: &str) {
    // Every character JSON escapes is ASCII, so its byte is a whole
    // character and the slices between them fall on character boundaries.
    let mut plain = 0;
    for (i, &byte) in s.as_bytes().iter().enumerate() {
        if !ESCAPED[usize::from(byte)] {
            continue;
        }
        out.push_str(&s[plain..i]);
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{byte:04x}");
            }
        }
        plain = i + 1;
    }
    out.push_str(&s[plain..]);
}

/// The bytes JSON strings escape (control characters, `"` and `\`), as a
/// table: one load per byte of the common text that needs none.
static ESCAPED: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(s: &str) -> String {
        let mut out = String::new();
        quoted(&mut out, s);
        out
    }

    /// A line logged inside a span whose field was recorded after it opened
    /// (and whose `otel.*` field is left out).
    #[test]
    fn log_lines_carry_every_field_of_their_spans() {
        #[derive(Clone, Default)]
        struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .fmt_fields(JsonSpanFields)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let outer = tracing::info_span!("outer", empty = tracing::field::Empty);
            let _outer = outer.enter();
            let span = tracing::info_span!(
                "rpc",
                otel.kind = "server",
                rpc.method = "GetRole",
                tenant = %"a \"quoted\" tenant",
                code = tracing::field::Empty,
                ratio = 0.5,
                ok = true,
            );
            span.record("code", 5);
            let _entered = span.enter();
            tracing::info!(n = 1, "inside");
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).expect(&text);
        assert_eq!(
            line["span"],
            serde_json::json!({
                "name": "rpc",
                "rpc.method": "GetRole",
                "tenant": "a \"quoted\" tenant",
                "code": 5,
                "ratio": 0.5,
                "ok": true,
            }),
            "{text}"
        );
        assert_eq!(
            line["spans"][0],
            serde_json::json!({"name": "outer"}),
            "{text}"
        );
    }

    #[test]
    fn strings_round_trip_through_a_json_parser() {
        for s in [
            "",
            "plain",
            "a \"quoted\" \\ path",
            "line\nfeed\ttab\r",
            "\u{1}\u{1f}é✓",
        ] {
            let json = escaped(s);
            assert_eq!(serde_json::from_str::<String>(&json).unwrap(), s, "{json}");
        }
    }
}
