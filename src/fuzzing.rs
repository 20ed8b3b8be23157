//! Entry points for the cargo-fuzz targets under `fuzz/`: request decoding as the handlers do
//! it, without a server or a database. Not part of the API.

use serde::de::DeserializeOwned;

use crate::http::ApiError;
use crate::http::body::decode_body;
use crate::users::identity::{IdentityFields, IdentityPage};

/// The operations whose request structs [`decode_request`] decodes into.
pub const OPERATIONS: [&str; 20] = [
    "UserCreate",
    "UserGet",
    "UserUpdate",
    "UserPatch",
    "UserDelete",
    "UserCreateBulk",
    "UserDeleteBulk",
    "BulkListUsers",
    "BulkListAllUsers",
    "UserSearch",
    "TokenCreate",
    "TokenCreateBulk",
    "AppdataCreate",
    "SessionUpsert",
    "FileCreate",
    "SharedRecordCreate",
    "AgreementAccept",
    "AuditGetEvent",
    "AuditListUserEvents",
    "UserRequestListUserRequests",
];

/// Decodes a raw body into the request struct of `operation`, as its handler's `Body`
/// extractor does; for the operations whose struct is a
/// bare user address (`UserDelete`, the `Audit`/`UserRequest` listings) the address is then
/// validated as their handlers do. An operation not in [`OPERATIONS`] decodes nothing.
pub fn decode_request(operation: &str, body: &[u8]) -> Result<(), ApiError> {
    use crate::{agreements, appdata, audit, bulk, files, search, sessions, shared, tokens, users};
    match operation {
        "UserCreate" => one::<users::routes::CreateRequest>(body),
        "UserGet" => one::<users::routes::GetRequest>(body),
        "UserUpdate" => one::<users::routes::UpdateRequest>(body),
        "UserPatch" => one::<users::routes::PatchRequest>(body),
        "UserDelete" => decode_body::<IdentityFields>(body)?.0.parse().map(drop),
        "UserCreateBulk" => one::<users::bulk::CreateBulkRequest>(body),
        "UserDeleteBulk" => one::<users::bulk::DeleteBulkRequest>(body),
        "BulkListUsers" => one::<bulk::routes::ListUsersRequest>(body),
        "BulkListAllUsers" => one::<bulk::routes::PageRequest>(body),
        "UserSearch" => one::<search::routes::SearchRequest>(body),
        "TokenCreate" => one::<tokens::routes::CreateRequest>(body),
        "TokenCreateBulk" => one::<tokens::bulk::CreateBulkRequest>(body),
        "AppdataCreate" => one::<appdata::routes::CreateRequest>(body),
        "SessionUpsert" => one::<sessions::routes::UpsertRequest>(body),
        "FileCreate" => one::<files::routes::CreateRequest>(body),
        "SharedRecordCreate" => one::<shared::routes::CreateRequest>(body),
        "AgreementAccept" => one::<agreements::routes::AcceptRequest>(body),
        "AuditGetEvent" => one::<audit::routes::GetRequest>(body),
        "AuditListUserEvents" | "UserRequestListUserRequests" => decode_body::<IdentityPage>(body)?.0.parse().map(drop),
        _ => Ok(()),
    }
}

fn one<T: DeserializeOwned>(body: &[u8]) -> Result<(), ApiError> {
    decode_body::<T>(body).map(drop)
}
