//! A connector's configuration as a request gives it, checked field by field before anything is
//! stored or connected to.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::external::Engine;
use crate::crypto::IndexKind;
use crate::http::lenient::{Int, Text, int, opt_bool, text};
use crate::http::{ApiError, ApiResult};
use crate::store::connectors::ConnectorRow;

/// Longest connector name, user name, database, table or column name.
const MAX_NAME: usize = 128;
/// Longest description.
const MAX_DESCRIPTION: usize = 1024;
/// Longest password.
const MAX_PASSWORD: usize = 1024;

/// `active` (used) or `disabled` (kept, never connected to).
pub const ACTIVE: &str = "active";
const DISABLED: &str = "disabled";
/// The user's rows are deleted (with the rows referencing them).
pub const DELETE: &str = "delete";
/// The identifying columns of the user's rows are set to NULL.
pub const NULLIFY: &str = "nullify";

/// The configuration fields of `ConnectorCreate`, `ConnectorUpdate`,
/// `ConnectorValidateConnectivity` and `ConnectorGetTableMetaData` (all optional here; each
/// operation says what it requires).
#[derive(Debug, Default, Deserialize)]
pub struct Fields {
    /// A saved connector (`ConnectorUpdate`; or the one to reach, instead of the fields below).
    pub connectorid: Option<Int>,
    /// Unique name within the tenant.
    pub connectorname: Option<Text>,
    /// `postgresql` or `mysql` (and their aliases).
    pub connectortype: Option<Text>,
    /// Free text.
    pub connectordesc: Option<Text>,
    /// The database password (sealed, never answered).
    pub apikey: Option<Text>,
    /// The database user.
    pub username: Option<Text>,
    /// Host name or address.
    pub dbhost: Option<Text>,
    /// Port (a number or numeric text).
    pub dbport: Option<Int>,
    /// Database name.
    pub dbname: Option<Text>,
    /// The table holding the subjects' rows.
    pub tablename: Option<Text>,
    /// `active` or `disabled`.
    pub status: Option<Text>,
    /// Identity mode → column of the connector's table holding it.
    pub identitycolumns: Option<Value>,
    /// `delete` or `nullify`.
    pub erasemode: Option<Text>,
    /// Whether the vault's own erasure of a user erases the user's rows here too.
    #[serde(default, deserialize_with = "opt_bool")]
    pub erasure: Option<bool>,
    /// Whether the user's report includes the user's rows here.
    #[serde(default, deserialize_with = "opt_bool")]
    pub reports: Option<bool>,
}

/// Where and as whom to connect, before the password is sealed.
pub struct Endpoint {
    pub engine: Engine,
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub tablename: String,
    pub username: String,
    pub password: secrecy::SecretString,
}

impl Fields {
    /// The endpoint of a connector not saved: every field but the password required.
    pub fn endpoint(&self) -> ApiResult<Endpoint> {
        let engine = engine(self.connectortype.as_ref())?.ok_or_else(|| required("connectortype"))?;
        Ok(Endpoint {
            engine,
            host: host(self.dbhost.as_ref())?.ok_or_else(|| required("dbhost"))?,
            port: port(self.dbport)?.unwrap_or(engine.default_port()),
            dbname: name("dbname", self.dbname.as_ref())?.ok_or_else(|| required("dbname"))?,
            tablename: name("tablename", self.tablename.as_ref())?.ok_or_else(|| required("tablename"))?,
            username: name("username", self.username.as_ref())?.ok_or_else(|| required("username"))?,
            password: password(self.apikey.as_ref())?.unwrap_or_default().into(),
        })
    }

    /// Applies the fields given to `row` (a new connector's defaults, or the stored one). The
    /// password is returned, to be sealed, when one is given. A stored password never follows the
    /// connector to another server or user: a change of type, host, port or user name needs the
    /// password again (else whoever may update a connector could point it at a server of theirs
    /// and have the vault send it there).
    pub fn apply(&self, row: &mut ConnectorRow) -> ApiResult<Option<String>> {
        let server = |row: &ConnectorRow| (row.engine.clone(), row.host.clone(), row.port, row.username.clone());
        let before = server(row);
        let password = self.apply_fields(row)?;
        if row.id != 0 && password.is_none() && server(row) != before {
            return Err(ApiError::bad_request(
                "apikey is required when the connector's type, host, port or user name changes",
            ));
        }
        Ok(password)
    }

    fn apply_fields(&self, row: &mut ConnectorRow) -> ApiResult<Option<String>> {
        if let Some(value) = name("connectorname", self.connectorname.as_ref())? {
            row.name = value;
        }
        if let Some(engine) = engine(self.connectortype.as_ref())? {
            let was = Engine::parse(&row.engine);
            row.engine = engine.name().to_owned();
            // A port left at the old engine's default follows the engine.
            if was.is_some_and(|was| i64::from(was.default_port()) == row.port) || row.port == 0 {
                row.port = i64::from(engine.default_port());
            }
        }
        if let Some(value) = text(self.connectordesc.clone()) {
            if value.chars().count() > MAX_DESCRIPTION {
                return Err(ApiError::bad_request("connectordesc is too long"));
            }
            row.description = value;
        }
        if let Some(value) = host(self.dbhost.as_ref())? {
            row.host = value;
        }
        if let Some(value) = port(self.dbport)? {
            row.port = i64::from(value);
        }
        if let Some(value) = name("dbname", self.dbname.as_ref())? {
            row.dbname = value;
        }
        if let Some(value) = name("tablename", self.tablename.as_ref())? {
            row.tablename = value;
        }
        if let Some(value) = name("username", self.username.as_ref())? {
            row.username = value;
        }
        if let Some(value) = text(self.status.clone()) {
            row.status = match value.trim().to_ascii_lowercase().as_str() {
                ACTIVE => ACTIVE.to_owned(),
                DISABLED => DISABLED.to_owned(),
                _ => return Err(ApiError::bad_request("status must be active or disabled")),
            };
        }
        if let Some(columns) = &self.identitycolumns {
            row.identity_columns = identity_columns(columns)?;
        }
        if let Some(value) = text(self.erasemode.clone()) {
            row.erase_mode = match value.trim().to_ascii_lowercase().as_str() {
                DELETE => DELETE.to_owned(),
                NULLIFY => NULLIFY.to_owned(),
                _ => return Err(ApiError::bad_request("erasemode must be delete or nullify")),
            };
        }
        if let Some(value) = self.erasure {
            row.in_erasure = value;
        }
        if let Some(value) = self.reports {
            row.in_reports = value;
        }
        password(self.apikey.as_ref())
    }
}

/// The stored identity-column map, as a JSON object text.
fn identity_columns(value: &Value) -> ApiResult<String> {
    let invalid =
        || ApiError::bad_request("identitycolumns must map login, email, phone, custom or token to a column name");
    let mut columns = BTreeMap::new();
    match value {
        Value::Null => {}
        Value::Object(map) => {
            for (mode, column) in map {
                let kind = IndexKind::from_mode(&mode.trim().to_ascii_lowercase()).ok_or_else(invalid)?;
                let column =
                    column.as_str().filter(|c| !c.is_empty() && c.chars().count() <= MAX_NAME && !c.contains('\0'));
                columns.insert(kind.name(), column.ok_or_else(invalid)?.to_owned());
            }
        }
        _ => return Err(invalid()),
    }
    Ok(json!(columns).to_string())
}

/// The identity-column map of a stored connector.
pub fn stored_identity_columns(row: &ConnectorRow) -> BTreeMap<String, String> {
    serde_json::from_str(&row.identity_columns).unwrap_or_default()
}

/// A new connector's defaults (the name, engine and endpoint come from the request).
pub fn blank() -> ConnectorRow {
    ConnectorRow {
        id: 0,
        name: String::new(),
        engine: String::new(),
        description: String::new(),
        host: String::new(),
        port: 0,
        dbname: String::new(),
        tablename: String::new(),
        username: String::new(),
        seal_id: Vec::new(),
        secret: Vec::new(),
        status: ACTIVE.to_owned(),
        identity_columns: "{}".to_owned(),
        erase_mode: DELETE.to_owned(),
        in_erasure: false,
        in_reports: false,
        updated_ms: 0,
    }
}

/// What the API shows of a connector (never its password); also its audit image.
pub fn view(row: &ConnectorRow) -> Value {
    json!({
        "connectorid": row.id,
        "connectorname": row.name,
        "connectortype": row.engine,
        "connectordesc": row.description,
        "dbhost": row.host,
        "dbport": row.port.to_string(),
        "dbname": row.dbname,
        "tablename": row.tablename,
        "username": row.username,
        "status": row.status,
        "identitycolumns": stored_identity_columns(row),
        "erasemode": row.erase_mode,
        "erasure": row.in_erasure,
        "reports": row.in_reports,
    })
}

fn required(field: &str) -> ApiError {
    ApiError::bad_request(format!("{field} is required"))
}

fn engine(value: Option<&Text>) -> ApiResult<Option<Engine>> {
    value
        .map(|t| {
            Engine::parse(t.0.trim()).ok_or_else(|| ApiError::bad_request("connectortype must be postgresql or mysql"))
        })
        .transpose()
}

fn host(value: Option<&Text>) -> ApiResult<Option<String>> {
    let Some(value) = value.map(|t| t.0.trim()) else { return Ok(None) };
    if !super::hosts::well_formed(value) {
        return Err(ApiError::bad_request(super::hosts::Refusal::Malformed.message()));
    }
    Ok(Some(value.to_owned()))
}

fn port(value: Option<Int>) -> ApiResult<Option<u16>> {
    match int(value) {
        None => Ok(None),
        Some(p) => u16::try_from(p)
            .ok()
            .filter(|p| *p > 0)
            .map(Some)
            .ok_or_else(|| ApiError::bad_request("dbport must be a port number")),
    }
}

/// A database, table, user or connector name: 1 to 128 characters, no NUL (quotes and spaces
/// are allowed: a table name is quoted, never spliced).
fn name(field: &'static str, value: Option<&Text>) -> ApiResult<Option<String>> {
    let Some(value) = value.map(|t| t.0.as_str()) else { return Ok(None) };
    if value.trim().is_empty() || value.chars().count() > MAX_NAME || value.contains('\0') {
        return Err(ApiError::bad_request(format!("{field} must be 1 to {MAX_NAME} characters")));
    }
    Ok(Some(value.to_owned()))
}

fn password(value: Option<&Text>) -> ApiResult<Option<String>> {
    match value {
        Some(t) if t.0.len() > MAX_PASSWORD || t.0.contains('\0') => Err(ApiError::bad_request("apikey is too long")),
        other => Ok(other.map(|t| t.0.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(value: Value) -> Fields {
        serde_json::from_value(value).expect("test value")
    }

    #[test]
    fn a_port_arrives_as_text_or_number_and_follows_the_engine_by_default() {
        let mut row = blank();
        fields(json!({"connectortype": "postgresql", "dbport": "6543"})).apply(&mut row).expect("test value");
        assert_eq!((row.engine.as_str(), row.port), ("postgresql", 6543));
        let mut row = blank();
        fields(json!({"connectortype": "MariaDB"})).apply(&mut row).expect("test value");
        assert_eq!((row.engine.as_str(), row.port), ("mysql", 3306));
        fields(json!({"connectortype": "postgres"})).apply(&mut row).expect("test value");
        assert_eq!(row.port, 5432);
        assert!(fields(json!({"dbport": 70000})).apply(&mut row).is_err());
        assert!(serde_json::from_value::<Fields>(json!({"dbport": "x"})).is_err(), "a decoding error names the field");
    }

    #[test]
    fn identity_columns_name_modes_and_columns() {
        let mut row = blank();
        fields(json!({"identitycolumns": {"email": "mail", "Token": "vault_token"}}))
            .apply(&mut row)
            .expect("test value");
        let columns = stored_identity_columns(&row);
        assert_eq!(columns.get("email").map(String::as_str), Some("mail"));
        assert_eq!(columns.get("token").map(String::as_str), Some("vault_token"));
        for bad in [json!({"address": "a"}), json!({"email": 5}), json!({"email": ""}), json!(["email"])] {
            assert!(fields(json!({"identitycolumns": bad})).apply(&mut blank()).is_err());
        }
    }

    #[test]
    fn the_view_never_shows_the_password() {
        let mut row = blank();
        let password =
            fields(json!({"apikey": "s3cret-pw", "connectorname": "crm"})).apply(&mut row).expect("test value");
        assert_eq!(password.as_deref(), Some("s3cret-pw"));
        row.secret = b"s3cret-pw".to_vec();
        assert!(!view(&row).to_string().contains("s3cret"));
    }
}
