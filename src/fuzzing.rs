//! Entry points for the cargo-fuzz targets under `fuzz/`: request decoding as the handlers do
//! it, without a server or a database. Not part of the API.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::http::ApiError;
use crate::http::body::decode;
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

/// Decodes a body (already through [`crate::http::body::parse_object`]) into the request struct
/// of `operation`, as its handler's `Body` extractor does; for the operations whose struct is a
/// bare user address (`UserDelete`, the `Audit`/`UserRequest` listings) the address is then
/// validated as their handlers do. An operation not in [`OPERATIONS`] decodes nothing.
pub fn decode_request(operation: &str, map: Map<String, Value>) -> Result<(), ApiError> {
    use crate::{agreements, appdata, audit, bulk, files, search, sessions, shared, tokens, users};
    match operation {
        "UserCreate" => one::<users::routes::CreateRequest>(map),
        "UserGet" => one::<users::routes::GetRequest>(map),
        "UserUpdate" => one::<users::routes::UpdateRequest>(map),
        "UserPatch" => one::<users::routes::PatchRequest>(map),
        "UserDelete" => decode::<IdentityFields>(map)?.parse().map(drop),
        "UserCreateBulk" => one::<users::bulk::CreateBulkRequest>(map),
        "UserDeleteBulk" => one::<users::bulk::DeleteBulkRequest>(map),
        "BulkListUsers" => one::<bulk::routes::ListUsersRequest>(map),
        "BulkListAllUsers" => one::<bulk::routes::PageRequest>(map),
        "UserSearch" => one::<search::routes::SearchRequest>(map),
        "TokenCreate" => one::<tokens::routes::CreateRequest>(map),
        "TokenCreateBulk" => one::<tokens::bulk::CreateBulkRequest>(map),
        "AppdataCreate" => one::<appdata::routes::CreateRequest>(map),
        "SessionUpsert" => one::<sessions::routes::UpsertRequest>(map),
        "FileCreate" => one::<files::routes::CreateRequest>(map),
        "SharedRecordCreate" => one::<shared::routes::CreateRequest>(map),
        "AgreementAccept" => one::<agreements::routes::AcceptRequest>(map),
        "AuditGetEvent" => one::<audit::routes::GetRequest>(map),
        "AuditListUserEvents" | "UserRequestListUserRequests" => decode::<IdentityPage>(map)?.parse().map(drop),
        _ => Ok(()),
    }
}

fn one<T: DeserializeOwned>(map: Map<String, Value>) -> Result<(), ApiError> {
    decode::<T>(map).map(drop)
}
