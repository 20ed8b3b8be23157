//! Reading the file a line at a time, each bounded, and turning a line into a UserCreateBulk
//! record or a refusal. Refusal reasons never quote the line's content.

use std::collections::HashMap;
use std::io::BufRead;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::cli::ImportFormat;

/// Per-record lifetime fields, taken out of the record: UserCreateBulk takes them per call.
const LIFETIMES: [&str; 2] = ["slidingtime", "finaltime"];

/// One line of the file.
pub enum Line {
    /// Longer than the cap: skipped to its end, never held whole.
    TooLong,
    /// Its bytes, without the line end.
    Text(Vec<u8>),
}

/// Reads the next line into memory up to `cap` bytes; `None` at the end of the file.
pub fn next_line(reader: &mut impl BufRead, cap: usize) -> std::io::Result<Option<Line>> {
    let mut line = Vec::new();
    let mut too_long = false;
    let mut any = false;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            break;
        }
        any = true;
        let (chunk, end) = match buffer.iter().position(|&b| b == b'\n') {
            Some(at) => (&buffer[..at], Some(at + 1)),
            None => (buffer, None),
        };
        if !too_long && line.len() + chunk.len() <= cap {
            line.extend_from_slice(chunk);
        } else {
            too_long = true;
            line = Vec::new();
        }
        let used = end.unwrap_or(buffer.len());
        reader.consume(used);
        if end.is_some() {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    if too_long {
        return Ok(Some(Line::TooLong));
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(Line::Text(line)))
}

/// A record ready for UserCreateBulk.
pub struct Record {
    /// The record's JSON text: `{"profile": ..., ...}`.
    pub json: String,
    /// The profile's JSON text exactly as sent, which the reply echoes.
    pub profile: String,
    /// Its own `slidingtime` and `finaltime`, as JSON values.
    pub lifetime: [Option<Value>; 2],
}

/// What a line holds.
pub enum Parsed {
    Blank,
    Record(Record),
    Refused(String),
}

/// Turns lines into records: the header row of a CSV file first.
pub struct Parser {
    format: ImportFormat,
    header: Option<Vec<String>>,
}

impl Parser {
    pub fn new(format: ImportFormat) -> Parser {
        Parser { format, header: None }
    }

    /// Whether a CSV parser still waits for its header row.
    pub fn wants_header(&self) -> bool {
        self.format == ImportFormat::Csv && self.header.is_none()
    }

    /// Reads the CSV header row.
    pub fn header(&mut self, line: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(strip_bom(line)).map_err(|_| "the header row is not UTF-8".to_owned())?;
        let names: Vec<String> = csv_fields(text)?.into_iter().map(|name| name.trim().to_owned()).collect();
        if names.iter().any(String::is_empty) {
            return Err("the header row has an empty column name".to_owned());
        }
        self.header = Some(names);
        Ok(())
    }

    /// Parses one line (not the header).
    pub fn parse(&self, line: &[u8]) -> Parsed {
        let Ok(text) = std::str::from_utf8(strip_bom(line)) else {
            return Parsed::Refused("the line is not UTF-8".to_owned());
        };
        if text.trim().is_empty() {
            return Parsed::Blank;
        }
        let parsed = match (&self.format, &self.header) {
            (ImportFormat::Csv, Some(header)) => csv_record(header, text),
            _ => jsonl_record(text.trim()),
        };
        parsed.map_or_else(Parsed::Refused, Parsed::Record)
    }
}

fn strip_bom(line: &[u8]) -> &[u8] {
    line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
}

/// A JSON Lines record: a profile object, or `{"profile": {...}, ...}` with the record's
/// other UserCreateBulk keys (groupname, rolename, ...) and its lifetimes.
fn jsonl_record(text: &str) -> Result<Record, String> {
    // serde_json's messages may quote the input: the reasons here are fixed.
    let object: HashMap<String, Box<RawValue>> = match serde_json::from_str(text) {
        Ok(object) => object,
        Err(err) if err.is_syntax() || err.is_eof() => return Err("the line is not valid JSON".to_owned()),
        Err(_) => return Err("the line is not a JSON object".to_owned()),
    };
    let Some(profile) = object.get("profile") else {
        return Ok(Record {
            json: format!("{{\"profile\":{text}}}"),
            profile: text.to_owned(),
            lifetime: [None, None],
        });
    };
    if !profile.get().starts_with('{') {
        return Err("the profile is not a JSON object".to_owned());
    }
    if object.contains_key("appdata") {
        return Err("app data is not imported (UserCreateBulk takes profiles only)".to_owned());
    }
    let mut lifetime = [None, None];
    for (slot, name) in lifetime.iter_mut().zip(LIFETIMES) {
        if let Some(raw) = object.get(name) {
            let value: Value = serde_json::from_str(raw.get()).map_err(|_| format!("{name} is not valid"))?;
            *slot = Some(value).filter(|v| !v.is_null());
        }
    }
    let mut json = String::with_capacity(text.len() + 16);
    json.push('{');
    let mut first = true;
    for (key, value) in object.iter().filter(|(key, _)| !LIFETIMES.contains(&key.as_str())) {
        if !first {
            json.push(',');
        }
        first = false;
        json.push_str(&serde_json::to_string(key).map_err(|_| "a key cannot be encoded".to_owned())?);
        json.push(':');
        json.push_str(value.get());
    }
    json.push('}');
    Ok(Record { json, profile: profile.get().to_owned(), lifetime })
}

/// The fields of one CSV line (quoted fields may not span lines).
fn csv_fields(text: &str) -> Result<Vec<String>, String> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut row = csv::StringRecord::new();
    match reader.read_record(&mut row) {
        Ok(true) => {}
        Ok(false) => return Ok(Vec::new()),
        Err(_) => return Err("the row is not valid CSV".to_owned()),
    }
    if reader.read_record(&mut csv::StringRecord::new()).unwrap_or(true) {
        return Err("the row is not valid CSV (a quoted field spans lines)".to_owned());
    }
    Ok(row.iter().map(str::to_owned).collect())
}

/// A CSV row: each column a profile field (a string), `slidingtime`/`finaltime` the record's
/// lifetimes; empty cells are absent.
fn csv_record(header: &[String], text: &str) -> Result<Record, String> {
    let fields = csv_fields(text)?;
    if fields.len() != header.len() {
        return Err(format!("the row has {} fields, the header {}", fields.len(), header.len()));
    }
    let mut profile = Map::new();
    let mut lifetime = [None, None];
    for (name, value) in header.iter().zip(fields) {
        if value.is_empty() {
            continue;
        }
        match LIFETIMES.iter().position(|l| l == name) {
            Some(slot) => lifetime[slot] = Some(Value::String(value)),
            None => {
                profile.insert(name.clone(), Value::String(value));
            }
        }
    }
    let profile = Value::Object(profile).to_string();
    Ok(Record { json: format!("{{\"profile\":{profile}}}"), profile, lifetime })
}
