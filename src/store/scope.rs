//! The store as one tenant sees it.
//!
//! Every query on tenant data is a method of a handle that can only be had from
//! [`Db::tenant`], so it cannot be written without its tenant: `db.tenant(id).users().find(…)`.
//! The handle binds the tenant into each statement itself; callers never pass it again.

use super::{
    Db, accounts, agreements, appdata, audit, audit_chain, bulk, connectors, console, files, groups, legal, portal,
    requests, roles, search, sessions, shared, tokens, users, vault,
};
use crate::tenants::TenantId;

/// The store scoped to one tenant.
#[derive(Debug, Clone, Copy)]
pub struct TenantScope<'a> {
    db: &'a Db,
    id: TenantId,
}

impl Db {
    /// The store as tenant `id` sees it.
    pub fn tenant(&self, id: TenantId) -> TenantScope<'_> {
        TenantScope { db: self, id }
    }
}

impl<'a> TenantScope<'a> {
    /// The tenant this handle is bound to.
    pub fn id(self) -> TenantId {
        self.id
    }

    /// The pool and tenant, for the store's own statements.
    pub(super) fn parts(self) -> (&'a Db, TenantId) {
        (self.db, self.id)
    }

    /// User records.
    pub fn users(self) -> users::Users<'a> {
        users::Users(self)
    }

    /// App data records.
    pub fn appdata(self) -> appdata::AppData<'a> {
        appdata::AppData(self)
    }

    /// Consent agreements.
    pub fn agreements(self) -> agreements::Agreements<'a> {
        agreements::Agreements(self)
    }

    /// Audit events.
    pub fn audit(self) -> audit::Audit<'a> {
        audit::Audit(self)
    }

    /// The audit chain.
    pub fn audit_chain(self) -> audit_chain::AuditChain<'a> {
        audit_chain::AuditChain(self)
    }

    /// Bulk listings and their unlocks.
    pub fn bulk(self) -> bulk::Bulk<'a> {
        bulk::Bulk(self)
    }

    /// Administrator accounts.
    pub fn accounts(self) -> accounts::Accounts<'a> {
        accounts::Accounts(self)
    }

    /// The data subject portal's captchas and login codes.
    pub fn portal(self) -> portal::Portal<'a> {
        portal::Portal(self)
    }

    /// The web console's sessions.
    pub fn console(self) -> console::Console<'a> {
        console::Console(self)
    }

    /// Connectors to the company's own databases.
    pub fn connectors(self) -> connectors::Connectors<'a> {
        connectors::Connectors(self)
    }

    /// Files.
    pub fn files(self) -> files::Files<'a> {
        files::Files(self)
    }

    /// Groups and their members.
    pub fn groups(self) -> groups::Groups<'a> {
        groups::Groups(self)
    }

    /// Roles, policies and the access tokens acting as a role or a user.
    pub fn roles(self) -> roles::Roles<'a> {
        roles::Roles(self)
    }

    /// Legal bases and processing activities.
    pub fn legal(self) -> legal::Legal<'a> {
        legal::Legal(self)
    }

    /// User requests awaiting approval.
    pub fn requests(self) -> requests::Requests<'a> {
        requests::Requests(self)
    }

    /// The search index.
    pub fn search(self) -> search::Search<'a> {
        search::Search(self)
    }

    /// Sessions.
    pub fn sessions(self) -> sessions::Sessions<'a> {
        sessions::Sessions(self)
    }

    /// Shared records.
    pub fn shared(self) -> shared::SharedRecords<'a> {
        shared::SharedRecords(self)
    }

    /// Format-preserving tokens.
    pub fn tokens(self) -> tokens::Tokens<'a> {
        tokens::Tokens(self)
    }

    /// The tenant's master keys.
    pub fn vault(self) -> vault::Vault<'a> {
        vault::Vault(self)
    }
}
