//! JSON the vault answered, as HTML: values as text (maud escapes them), masked values marked,
//! nesting bounded.

use maud::{Markup, html};
use serde_json::{Map, Value};

/// The value the vault shows in place of one the caller may not see.
pub const MASKED: &str = "***";
const MAX_DEPTH: usize = 6;

/// One value.
pub fn value(v: &Value) -> Markup {
    nested(v, 0)
}

fn nested(v: &Value, depth: usize) -> Markup {
    if depth >= MAX_DEPTH {
        return html! { code { (v.to_string()) } };
    }
    html! {
        @match v {
            Value::Null => span.muted { "none" },
            Value::String(s) if s == MASKED => span.masked title="Masked by policy" { (MASKED) },
            Value::String(s) => (s),
            Value::Bool(b) => (if *b { "yes" } else { "no" }),
            Value::Number(n) => (n.to_string()),
            Value::Array(items) if items.is_empty() => span.muted { "none" },
            Value::Array(items) => ul { @for item in items { li { (nested(item, depth + 1)) } } },
            Value::Object(map) if map.is_empty() => span.muted { "none" },
            Value::Object(map) => table { tbody { @for (k, v) in map { tr { th scope="row" { (k) } td { (nested(v, depth + 1)) } } } } },
        }
    }
}

/// An object as a table of field and value.
pub fn fields(caption: &str, map: Option<&Map<String, Value>>) -> Markup {
    html! {
        table {
            caption { (caption) }
            thead { tr { th scope="col" { "Field" } th scope="col" { "Value" } } }
            tbody {
                @match map {
                    Some(map) if !map.is_empty() => {
                        @for (k, v) in map { tr { th scope="row" { (k) } td { (value(v)) } } }
                    }
                    _ => tr { td colspan="2" { "Nothing to show" } },
                }
            }
        }
    }
}

/// A column whose cells link somewhere: its key, and the address of a row.
pub type Link<'a> = (&'a str, &'a dyn Fn(&Value) -> String);

/// Rows as a table with the given columns (key, heading); `link` makes a column's cell a link.
pub fn rows(caption: &str, rows: &[Value], columns: &[(&str, &str)], link: Option<Link<'_>>) -> Markup {
    html! {
        table {
            caption { (caption) }
            thead { tr { @for (_, heading) in columns { th scope="col" { (heading) } } } }
            tbody {
                @if rows.is_empty() {
                    tr { td colspan=(columns.len()) { "Nothing to show" } }
                }
                @for row in rows {
                    tr {
                        @for (key, _) in columns {
                            td {
                                @let cell = row.get(*key).unwrap_or(&Value::Null);
                                @match link {
                                    Some((column, href)) if column == *key => a href=(href(row)) { (text(cell)) },
                                    _ => (value(cell)),
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A scalar as plain text.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A unix time (seconds) as UTC date and time.
pub fn time(v: &Value) -> String {
    match v.as_i64() {
        Some(secs) if secs > 0 => crate::audit::event::rfc3339(secs.saturating_mul(1000)),
        _ => text(v),
    }
}
