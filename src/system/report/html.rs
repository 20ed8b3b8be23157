//! The report as a readable, self-contained HTML page. maud escapes every interpolated value,
//! so profile contents (which the subject or anyone filling a form may have typed) cannot
//! inject markup or script.

use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::Report;
use crate::audit::event::rfc3339;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;\
color:#222}h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ddd;padding:.25rem .5rem;\
text-align:left;vertical-align:top}th{background:#f5f5f5}.empty{color:#777;font-style:italic}";

/// Renders the whole page.
pub fn render(report: &Report) -> String {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Personal data report" }
                style { (STYLE) }
            }
            body {
                h1 { "Personal data report" }
                p { "Everything this vault holds about you, as of " (time(report.generated)) "." }
                h2 { "Record" }
                table {
                    tr { th { "Token" } td { (report.token) } }
                    tr { th { "Version" } td { (report.version) } }
                    tr { th { "Last changed" } td { (time(report.updated)) } }
                    tr { th { "Expires" } td { (optional_time(report.expirationtime)) } }
                    tr { th { "Deleted at the latest" } td { (optional_time(report.finaltime)) } }
                }
                h2 { "Profile" }
                (value(&report.profile))
                h2 { "Application data" }
                @if report.appdata.is_empty() { (none()) }
                @for app in &report.appdata {
                    h3 { (text(&app["appname"])) " (version " (text(&app["version"])) ")" }
                    (value(&app["appdata"]))
                }
                h2 { "Agreements" }
                (records(&report.agreements))
                h2 { "Sessions" }
                (records(&report.sessions))
                h2 { "Shared records" }
                (records(&report.sharedrecords))
                h2 { "Files" }
                (records(&report.files))
                h2 { "Requests" }
                (records(&report.requests))
                h2 { "Other systems" }
                @if report.connectors.is_empty() { (none()) }
                @for source in &report.connectors {
                    h3 { (text(&source["connectorname"])) " (" (text(&source["tablename"])) ")" }
                    @if let Some(error) = source.get("error") {
                        p { "Could not be read: " (text(error)) }
                    } @else {
                        (records(source["rows"].as_array().map_or(&[][..], Vec::as_slice)))
                    }
                }
                h2 { "Activity" }
                p { (report.audit.total) " recorded operations concerned your record." }
                (records(&report.audit.operations))
            }
        }
    };
    page.into_string()
}

fn none() -> Markup {
    html! { p.empty { "None." } }
}

fn time(secs: i64) -> String {
    rfc3339(secs.saturating_mul(1000))
}

fn optional_time(secs: i64) -> String {
    if secs == 0 { "never".to_owned() } else { time(secs) }
}

/// A scalar as plain text (strings without their JSON quotes).
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Any JSON value: objects as two-column tables, arrays as lists, scalars as text.
fn value(value: &Value) -> Markup {
    match value {
        Value::Object(map) if map.is_empty() => none(),
        Value::Object(map) => html! {
            table {
                @for (key, item) in map {
                    tr { th { (key) } td { (self::value(item)) } }
                }
            }
        },
        Value::Array(items) if items.is_empty() => none(),
        Value::Array(items) => html! {
            ol { @for item in items { li { (self::value(item)) } } }
        },
        scalar => html! { (text(scalar)) },
    }
}

/// A list of records, one table each.
fn records(items: &[Value]) -> Markup {
    if items.is_empty() {
        return none();
    }
    html! { @for item in items { (value(item)) } }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn markup_in_values_and_keys_is_escaped() {
        let nasty = json!({"<b>key</b>": "<script>alert(1)</script>", "list": ["a&b", {"q": "\"x\""}]});
        let out = value(&nasty).into_string();
        assert!(!out.contains("<script>") && !out.contains("<b>"), "{out}");
        assert!(out.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{out}");
        assert!(out.contains("&lt;b&gt;key&lt;/b&gt;"), "{out}");
        assert!(out.contains("a&amp;b") && out.contains("&quot;x&quot;"), "{out}");
    }

    #[test]
    fn empty_collections_read_none() {
        assert!(value(&json!({})).into_string().contains("None."));
        assert!(value(&json!([])).into_string().contains("None."));
        assert_eq!(value(&json!(5)).into_string(), "5");
    }
}
