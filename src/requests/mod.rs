//! Approval requests: changes to a user's data that an administrator approves or cancels
//! (`UserUpdateRequest`, `UserPatchRequest`, `UserDeleteRequest`, `AppdataUpdateRequest`,
//! `AgreementCancelRequest`, and the `UserRequest*` operations that resolve them).

pub mod record;
pub mod routes;
pub mod service;

pub use routes::operations;
