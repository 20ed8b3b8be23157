//! The app records of created users, written through AppdataCreate on the vault's own router,
//! each user addressed by the token UserCreateBulk answered for it. Writing them again is
//! harmless: a record already there with the same data counts as written (AppdataGet compares
//! it), so a resumed import finishes a batch's app records without failing on those done.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::ImportError;
use super::client::{Client, message};
use super::formats::App;

/// A created user and the app records of its line.
pub struct User {
    /// The line it was created from.
    pub line: u64,
    /// The token UserCreateBulk answered for it.
    pub token: String,
    /// The line's app records.
    pub apps: Vec<App>,
}

/// What became of the app records of a batch.
#[derive(Debug, Default)]
pub struct Written {
    /// App records created.
    pub created: u64,
    /// App records found already there with the same data (an interrupted run wrote them).
    pub existing: u64,
    /// Lines with an app record refused, and why (one reason per app refused, joined).
    pub refusals: Vec<(u64, String)>,
}

/// What became of one app record that the vault did not refuse as a whole.
enum Fate {
    Created,
    Existing,
    Refused(String),
}

/// Writes the app records of `users`, one call each. An error when the vault refused a call as
/// a whole (authentication, the database down, overload): the import stops, and resumes here.
pub async fn write(client: &Client, users: &[User]) -> Result<Written, ImportError> {
    let mut written = Written::default();
    for user in users {
        let mut reasons = Vec::new();
        for app in &user.apps {
            match create(client, &user.token, app).await? {
                Fate::Created => written.created += 1,
                Fate::Existing => written.existing += 1,
                Fate::Refused(reason) => reasons.push(format!("app {}: {reason}", app.name.as_str())),
            }
        }
        if !reasons.is_empty() {
            written.refusals.push((user.line, reasons.join("; ")));
        }
    }
    Ok(written)
}

/// Statuses that refuse one record (its data, its user, a policy on that user), not the import.
fn refuses_record(status: StatusCode) -> bool {
    [StatusCode::BAD_REQUEST, StatusCode::FORBIDDEN, StatusCode::NOT_FOUND, StatusCode::PAYLOAD_TOO_LARGE]
        .contains(&status)
}

async fn create(client: &Client, token: &str, app: &App) -> Result<Fate, ImportError> {
    // The data is already compact JSON text, checked: it is not parsed again to be sent.
    let body = format!(
        "{{\"mode\":\"token\",\"identity\":{},\"appname\":{},\"appdata\":{}}}",
        json!(token),
        json!(app.name.as_str()),
        app.data
    );
    let (status, answer) = client.call("AppdataCreate", body).await?;
    match status {
        StatusCode::OK => Ok(Fate::Created),
        StatusCode::CONFLICT => compare(client, token, app).await,
        status if refuses_record(status) => Ok(Fate::Refused(message(&answer))),
        status => Err(ImportError::Vault(format!("AppdataCreate answered {status}: {}", message(&answer)))),
    }
}

/// The fate of an app record that exists already: written when it holds the same data; left as
/// it is and refused otherwise (the import never overwrites app data).
async fn compare(client: &Client, token: &str, app: &App) -> Result<Fate, ImportError> {
    let body = json!({"mode": "token", "identity": token, "appname": app.name.as_str()}).to_string();
    let (status, answer) = client.call("AppdataGet", body).await?;
    match status {
        StatusCode::OK => {
            let found = serde_json::from_slice::<Value>(&answer).map(|mut answer| answer["appdata"].take());
            let ours = serde_json::from_str::<Value>(&app.data);
            Ok(match (found, ours) {
                (Ok(found), Ok(ours)) if found == ours => Fate::Existing,
                _ => Fate::Refused("an app record with other data exists (left as it is)".to_owned()),
            })
        }
        status if refuses_record(status) => Ok(Fate::Refused(message(&answer))),
        status => Err(ImportError::Vault(format!("AppdataGet answered {status}: {}", message(&answer)))),
    }
}
