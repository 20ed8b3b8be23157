//! Reaching a connector's database: its password opened, its host admitted, a connection made
//! within the limits; and which of its rows are a user's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::Zeroizing;

use super::external::{self, Connection, Erase, Failure, Matches, Table, Target};
use super::spec::{self, Endpoint};
use crate::crypto::keyring::TenantKeys;
use crate::crypto::{IndexKind, random};
use crate::http::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::connectors::ConnectorRow;

/// Longest a host name's lookup may take (then the connection has its own limit).
const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Table label the password is sealed under (record label: the row's `seal_id`).
pub const SECRET_TABLE: &str = "connectors";

/// Why a connector's database was not used: its host refused, or the database failed.
#[derive(Debug, Clone)]
pub enum Unreached {
    /// The allow-list or the name lookup refused the host.
    Host(super::hosts::Refusal),
    /// The database failed.
    Database(Failure),
}

impl Unreached {
    /// A short reason, naming no host, value or credential.
    pub fn reason(&self) -> String {
        match self {
            Unreached::Host(refusal) => refusal.message().to_owned(),
            Unreached::Database(failure) => failure.reason(),
        }
    }
}

impl From<Unreached> for ApiError {
    fn from(unreached: Unreached) -> ApiError {
        match unreached {
            Unreached::Host(refusal @ super::hosts::Refusal::Malformed) => ApiError::bad_request(refusal.message()),
            Unreached::Host(refusal) => ApiError::Forbidden(refusal.message().into()),
            Unreached::Database(Failure::NoSuchTable) => ApiError::not_found("The connector's table was not found"),
            Unreached::Database(
                failure @ (Failure::NoSuchColumn(_) | Failure::NotNullable(_) | Failure::Constraint),
            ) => ApiError::conflict(failure.reason()),
            Unreached::Database(failure) => {
                ApiError::BadGateway(format!("Connector database: {}", failure.reason()).into())
            }
        }
    }
}

/// Seals a connector's password under the tenant's key with a fresh record label.
pub fn seal_password(keys: &TenantKeys, row: &mut ConnectorRow, password: &str) {
    let mut seal_id = [0u8; 16];
    random::fill(&mut seal_id);
    row.seal_id = seal_id.to_vec();
    row.secret = keys.seal(SECRET_TABLE, &row.seal_id, password.as_bytes());
}

/// The endpoint of a saved connector, its password opened.
pub fn endpoint_of(keys: &TenantKeys, row: &ConnectorRow) -> ApiResult<Endpoint> {
    let password = Zeroizing::new(keys.open(SECRET_TABLE, &row.seal_id, &row.secret).map_err(ApiError::internal)?);
    let password = String::from_utf8(password.to_vec()).map_err(ApiError::internal)?;
    let engine = external::Engine::parse(&row.engine)
        .ok_or_else(|| ApiError::Internal(format!("stored connector engine {:?} unknown", row.engine).into()))?;
    Ok(Endpoint {
        engine,
        host: row.host.clone(),
        port: u16::try_from(row.port).unwrap_or(engine.default_port()),
        dbname: row.dbname.clone(),
        tablename: row.tablename.clone(),
        username: row.username.clone(),
        password: password.into(),
    })
}

/// A connection to `endpoint`'s database and its table's metadata.
pub async fn open(app: &AppState, endpoint: &Endpoint) -> Result<(Connection, Table), Unreached> {
    let settings = &app.settings.connectors;
    let ip = settings.hosts.admit(&endpoint.host, LOOKUP_TIMEOUT).await.map_err(Unreached::Host)?;
    let target = Target {
        engine: endpoint.engine,
        ip,
        port: endpoint.port,
        database: endpoint.dbname.clone(),
        username: endpoint.username.clone(),
        password: endpoint.password.clone(),
    };
    let mut connection = external::connect(&target, &settings.limits).await.map_err(Unreached::Database)?;
    match connection.table(&endpoint.tablename).await {
        Ok(table) => Ok((connection, table)),
        Err(failure) => {
            connection.close().await;
            Err(Unreached::Database(failure))
        }
    }
}

/// A user's identities, as an erasure queued for later keeps them (sealed).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Identities(pub BTreeMap<String, String>);

impl Identities {
    /// The token and the profile's login, email, phone and custom values of a user.
    pub fn of(token: &str, profile: &Value) -> Identities {
        let mut values = BTreeMap::from([(IndexKind::Token.name().to_owned(), token.to_owned())]);
        for kind in IndexKind::PROFILE {
            let value = match profile.get(kind.name()) {
                Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => continue,
            };
            values.insert(kind.name().to_owned(), value);
        }
        Identities(values)
    }

    /// Which of the table's rows are the user's: for each identity mode, the column the connector
    /// names for it, or by default a column named like the mode. Rows match on any of them.
    /// Also returns every column holding an identity (what `nullify` clears).
    pub fn matches(&self, row: &ConnectorRow, table: &Table) -> Result<(Matches, Vec<String>), ApiError> {
        let configured = spec::stored_identity_columns(row);
        let mut pairs = Vec::new();
        let mut columns: Vec<String> = Vec::new();
        for kind in [IndexKind::Token, IndexKind::Login, IndexKind::Email, IndexKind::Phone, IndexKind::Custom] {
            let column = match configured.get(kind.name()) {
                Some(column) if table.column(column).is_some() => column.clone(),
                Some(_) => {
                    return Err(ApiError::conflict(
                        "identitycolumns names a column the connector's table does not have",
                    ));
                }
                None if configured.is_empty() && table.column(kind.name()).is_some() => kind.name().to_owned(),
                None => continue,
            };
            if let Some(value) = self.0.get(kind.name()) {
                pairs.push((column.clone(), value.clone()));
            }
            if !columns.contains(&column) {
                columns.push(column);
            }
        }
        if columns.is_empty() {
            return Err(ApiError::conflict(
                "The connector's table has no column for any identity: set identitycolumns",
            ));
        }
        Ok((Matches(pairs), columns))
    }
}

impl Drop for Identities {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for value in self.0.values_mut() {
            value.zeroize();
        }
    }
}

/// How a connector erases a user's rows: deleted, or its identity columns set to NULL.
pub fn erase_mode(row: &ConnectorRow, columns: Vec<String>) -> Erase {
    if row.erase_mode == spec::NULLIFY { Erase::Nullify(columns) } else { Erase::Delete }
}
