//! Reading the file a line at a time, each bounded, and turning a line into a UserCreateBulk
//! record (with the app records to write once its user exists) or a refusal. Refusal reasons
//! never quote the line's content; app names, which the vault's audit records too, they may.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::appdata::AppName;
use crate::cli::ImportFormat;
use crate::http::lenient::Text;
use crate::http::limits::check_record_size;

/// Per-record lifetime fields, taken out of the record: UserCreateBulk takes them per call.
const LIFETIMES: [&str; 2] = ["slidingtime", "finaltime"];

/// The key of a JSON Lines record that holds its app records, and the prefix of the CSV columns
/// that hold one each (`appdata.<appname>`).
const APPDATA: &str = "appdata";

/// Most app records one line may carry (one AppdataCreate call each). The vault has no limit of
/// its own on apps per user; this one bounds what a line may hold and cost.
pub const MAX_APPS: usize = 16;

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
    /// Its app records, written through AppdataCreate once its user is created.
    pub apps: Vec<App>,
}

impl Record {
    /// Bytes the record holds while it waits in a batch.
    pub fn bytes(&self) -> usize {
        self.json.len() + self.app_bytes()
    }

    /// Bytes its app records hold.
    pub fn app_bytes(&self) -> usize {
        self.apps.iter().map(|app| app.data.len()).sum()
    }
}

/// One app record of a line: checked as AppdataCreate would (a JSON object within the record
/// size limit), so that a user is not created for a line whose app data cannot be written.
#[derive(Debug, Clone)]
pub struct App {
    /// The app.
    pub name: AppName,
    /// Its data, a JSON object, as compact JSON text.
    pub data: String,
}

/// What a line holds.
pub enum Parsed {
    Blank,
    Record(Record),
    Refused(String),
}

/// What a CSV column holds.
enum Column {
    /// A profile field.
    Field(String),
    /// `slidingtime` (0) or `finaltime` (1).
    Lifetime(usize),
    /// `appdata.<appname>`: the app's data, a JSON object.
    App(AppName),
}

/// Turns lines into records: the header row of a CSV file first.
pub struct Parser {
    format: ImportFormat,
    header: Option<Vec<Column>>,
    /// The vault's largest record (`BUNKER_MAX_RECORD_KB`), which app data must fit.
    max_record_size: usize,
}

impl Parser {
    pub fn new(format: ImportFormat, max_record_size: usize) -> Parser {
        Parser { format, header: None, max_record_size }
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
        let mut columns = Vec::with_capacity(names.len());
        for name in names {
            let column = match name.strip_prefix(APPDATA).and_then(|rest| rest.strip_prefix('.')) {
                Some(app) => {
                    let app = app_name(app).ok_or_else(|| {
                        format!(
                            "the header's column {name} does not name an app (2 to 31 letters, digits or _, \
                             starting with a letter)"
                        )
                    })?;
                    if columns.iter().any(|column| matches!(column, Column::App(known) if *known == app)) {
                        return Err(format!("the header row names app {} twice", app.as_str()));
                    }
                    Column::App(app)
                }
                None => match LIFETIMES.iter().position(|lifetime| *lifetime == name) {
                    Some(slot) => Column::Lifetime(slot),
                    None => Column::Field(name),
                },
            };
            columns.push(column);
        }
        if columns.iter().filter(|column| matches!(column, Column::App(_))).count() > MAX_APPS {
            return Err(format!("the header row names more than {MAX_APPS} apps"));
        }
        self.header = Some(columns);
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
            (ImportFormat::Csv, Some(header)) => csv_record(header, text, self.max_record_size),
            _ => jsonl_record(text.trim(), self.max_record_size),
        };
        parsed.map_or_else(Parsed::Refused, Parsed::Record)
    }
}

fn strip_bom(line: &[u8]) -> &[u8] {
    line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
}

/// A JSON Lines record: a profile object, or `{"profile": {...}, ...}` with the record's
/// other UserCreateBulk keys (groupname, rolename, ...), its lifetimes and its app records
/// (`"appdata": {"<appname>": {...}, ...}`).
fn jsonl_record(text: &str, max_record_size: usize) -> Result<Record, String> {
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
            apps: Vec::new(),
        });
    };
    if !profile.get().starts_with('{') {
        return Err("the profile is not a JSON object".to_owned());
    }
    let apps = match object.get(APPDATA) {
        Some(appdata) => jsonl_apps(appdata, max_record_size)?,
        None => Vec::new(),
    };
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
    let sent = |key: &str| !LIFETIMES.contains(&key) && key != APPDATA;
    for (key, value) in object.iter().filter(|(key, _)| sent(key)) {
        if !first {
            json.push(',');
        }
        first = false;
        json.push_str(&serde_json::to_string(key).map_err(|_| "a key cannot be encoded".to_owned())?);
        json.push(':');
        json.push_str(value.get());
    }
    json.push('}');
    Ok(Record { json, profile: profile.get().to_owned(), lifetime, apps })
}

/// The app records of a JSON Lines record: an object of objects, keyed by app name.
fn jsonl_apps(appdata: &RawValue, max_record_size: usize) -> Result<Vec<App>, String> {
    if appdata.get() == "null" {
        return Ok(Vec::new());
    }
    let object: BTreeMap<String, Box<RawValue>> = serde_json::from_str(appdata.get())
        .map_err(|_| "the appdata is not a JSON object of app records".to_owned())?;
    if object.len() > MAX_APPS {
        return Err(format!("the appdata holds more than {MAX_APPS} apps"));
    }
    let mut apps: Vec<App> = Vec::with_capacity(object.len());
    for (name, data) in object {
        // An app name that is not one may be anything: it is not quoted.
        let name = app_name(&name).ok_or_else(|| "the appdata names an app with an incorrect name".to_owned())?;
        if apps.iter().any(|app| app.name == name) {
            return Err(format!("the appdata names app {} twice", name.as_str()));
        }
        apps.push(app(name, data.get(), max_record_size)?);
    }
    apps.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
    Ok(apps)
}

/// An app name as AppdataCreate reads it (lower-cased), if it is one.
fn app_name(text: &str) -> Option<AppName> {
    AppName::parse(Some(Text(text.to_owned()))).ok()
}

/// One app record, checked as AppdataCreate checks it and made compact.
fn app(name: AppName, text: &str, max_record_size: usize) -> Result<App, String> {
    let app = name.as_str();
    let data: Value = serde_json::from_str(text).map_err(|_| format!("the app data of {app} is not valid JSON"))?;
    if !data.is_object() {
        return Err(format!("the app data of {app} is not a JSON object"));
    }
    check_record_size(&data, max_record_size, APPDATA).map_err(|err| format!("app {app}: {err}"))?;
    let data = data.to_string();
    Ok(App { name, data })
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
/// lifetimes, `appdata.<appname>` that app's data (a JSON object); empty cells are absent.
fn csv_record(header: &[Column], text: &str, max_record_size: usize) -> Result<Record, String> {
    let fields = csv_fields(text)?;
    if fields.len() != header.len() {
        return Err(format!("the row has {} fields, the header {}", fields.len(), header.len()));
    }
    let mut profile = Map::new();
    let mut lifetime = [None, None];
    let mut apps = Vec::new();
    for (column, value) in header.iter().zip(fields) {
        if value.is_empty() {
            continue;
        }
        match column {
            Column::Lifetime(slot) => lifetime[*slot] = Some(Value::String(value)),
            Column::Field(name) => {
                profile.insert(name.clone(), Value::String(value));
            }
            Column::App(name) => apps.push(app(name.clone(), &value, max_record_size)?),
        }
    }
    let profile = Value::Object(profile).to_string();
    Ok(Record { json: format!("{{\"profile\":{profile}}}"), profile, lifetime, apps })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jsonl(line: &str) -> Result<Record, String> {
        match Parser::new(ImportFormat::Jsonl, 64).parse(line.as_bytes()) {
            Parsed::Record(record) => Ok(record),
            Parsed::Refused(reason) => Err(reason),
            Parsed::Blank => Err("blank".into()),
        }
    }

    fn apps(record: &Record) -> Vec<(&str, &str)> {
        record.apps.iter().map(|app| (app.name.as_str(), app.data.as_str())).collect()
    }

    #[test]
    fn jsonl_app_data_is_taken_out_of_the_record_and_made_compact() {
        let record =
            jsonl(r#"{"profile":{"login":"a"},"appdata":{"Shop":{"cart": [1, 2]},"blog":{}},"finaltime":"1y"}"#)
                .expect("record");
        assert_eq!(record.json, r#"{"profile":{"login":"a"}}"#);
        assert_eq!(apps(&record), [("blog", "{}"), ("shop", r#"{"cart":[1,2]}"#)]);
        assert_eq!(record.bytes(), record.json.len() + 2 + 14);
        assert!(jsonl(r#"{"profile":{"login":"a"},"appdata":null}"#).expect("record").apps.is_empty());
        // A bare profile's `appdata` is one of its fields.
        let bare = jsonl(r#"{"login":"a","appdata":{"x":1}}"#).expect("record");
        assert!(bare.apps.is_empty() && bare.profile.contains("appdata"));
    }

    #[test]
    fn jsonl_app_data_is_refused_without_quoting_it() {
        let refused = |appdata: &str| jsonl(&format!(r#"{{"profile":{{"login":"a"}},"appdata":{appdata}}}"#));
        let too_many: Vec<String> = (0..=MAX_APPS).map(|i| format!(r#""app{i}":{{}}"#)).collect();
        for (appdata, reason) in [
            (r#"["s3cr3t"]"#.to_owned(), "the appdata is not a JSON object of app records".to_owned()),
            (r#"{"s3cr3t app":{}}"#.to_owned(), "the appdata names an app with an incorrect name".to_owned()),
            (r#"{"shop":"s3cr3t"}"#.to_owned(), "the app data of shop is not a JSON object".to_owned()),
            (r#"{"shop":{},"SHOP":{}}"#.to_owned(), "the appdata names app shop twice".to_owned()),
            (
                r#"{"shop":{"a":"s3cr3t, and longer than the limit of sixty-four bytes by a few"}}"#.to_owned(),
                "app shop: The appdata is larger than the limit of 64 bytes".to_owned(),
            ),
            (format!("{{{}}}", too_many.join(",")), format!("the appdata holds more than {MAX_APPS} apps")),
        ] {
            assert_eq!(refused(&appdata).err(), Some(reason), "{appdata}");
        }
    }

    #[test]
    fn csv_app_columns_hold_json_objects() {
        let mut parser = Parser::new(ImportFormat::Csv, 64);
        parser.header(b"login,appdata.Shop,appdata.blog").expect("header");
        let Parsed::Record(record) = parser.parse(br#"ann,"{""cart"": [1]}","#) else { panic!("not a record") };
        assert_eq!(record.profile, r#"{"login":"ann"}"#);
        assert_eq!(apps(&record), [("shop", r#"{"cart":[1]}"#)]);
        let Parsed::Refused(reason) = parser.parse(b"bob,,s3cr3t") else { panic!("not refused") };
        assert_eq!(reason, "the app data of blog is not valid JSON");
        for (header, reason) in [
            ("login,appdata.x", "the header's column appdata.x does not name an app"),
            ("login,appdata.shop,appdata.SHOP", "the header row names app shop twice"),
        ] {
            let error = Parser::new(ImportFormat::Csv, 64).header(header.as_bytes()).expect_err(header);
            assert!(error.starts_with(reason), "{error}");
        }
        let many: Vec<String> = (0..=MAX_APPS).map(|i| format!("appdata.app{i}")).collect();
        let error = Parser::new(ImportFormat::Csv, 64).header(many.join(",").as_bytes()).expect_err("many");
        assert_eq!(error, format!("the header row names more than {MAX_APPS} apps"));
    }
}
