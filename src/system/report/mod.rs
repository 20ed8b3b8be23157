//! The data subject's report: everything the vault holds about one user, as JSON
//! (`SystemGetUserReport`) or as a readable HTML page (`SystemGetUserHTMLReport`).

mod html;
mod routes;
mod service;

pub use routes::operations;
pub use service::{Report, build};
