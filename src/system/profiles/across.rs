//! Finding profiles across tenants: each tenant's keys, one statement, rows opened with the
//! keys of their own tenant.

use std::collections::HashMap;
use std::sync::Arc;

use super::ProfileRow;
use crate::access::VaultWide;
use crate::crypto::{IndexValue, TenantKeys};
use crate::http::{ApiError, ApiResult, RequestContext};
use crate::search::query::{self, Query, Target};
use crate::search::service::MAX_ROWS;
use crate::state::AppState;
use crate::store::every_tenant::{LiveTenant, TenantUser};
use crate::store::users::UserRow;
use crate::tenants::TenantId;
use crate::users::{Identity, LoadedUser};

/// Users looked at per vault-wide search, those sharing the most digests first (as
/// `UserSearch` does in one tenant).
const CANDIDATES: usize = 1000;

/// A profile found, opened with its tenant's keys.
pub(super) struct Found {
    pub tenant: TenantId,
    pub tenant_name: String,
    pub keys: Arc<TenantKeys>,
    pub user: LoadedUser,
}

impl Found {
    pub fn into_row(self) -> ProfileRow {
        ProfileRow {
            token: self.user.subject.token,
            profile: self.user.profile,
            tenantid: self.tenant.get(),
            tenantname: self.tenant_name,
        }
    }
}

/// The answer for a tenant named that is not live.
pub(super) const TENANT_NOT_FOUND: &str = "The tenant record was not found";

/// The tenants to look in (every live one, or the one named: 404 when it is not live) with their
/// keys.
pub(super) async fn tenants(
    app: &AppState,
    proof: &VaultWide,
    only: Option<TenantId>,
) -> ApiResult<Vec<(LiveTenant, Arc<TenantKeys>)>> {
    let every = app.db.every_tenant(proof);
    let live: Vec<LiveTenant> =
        every.tenants().await?.into_iter().filter(|t| only.is_none_or(|id| id == t.id)).collect();
    // Keys this process has not unlocked yet are read in one statement (then cached for a while).
    let missing: Vec<TenantId> = live.iter().map(|t| t.id).filter(|id| app.keys.cached(*id).is_none()).collect();
    let stored = if missing.is_empty() { Default::default() } else { every.master_keys(&missing).await? };
    let mut out = Vec::with_capacity(live.len());
    for tenant in live {
        let keys = match app.keys.cached(tenant.id) {
            Some(keys) => keys,
            // A tenant deleted meanwhile (its keys go first) is passed over.
            None => match stored.get(&tenant.id) {
                Some(wrapped) if !wrapped.is_empty() => app
                    .keys
                    .unlock(tenant.id, wrapped)
                    .map_err(|_| ApiError::from(crate::store::StoreError::WrappingKeyChanged))?,
                _ => continue,
            },
        };
        out.push((tenant, keys));
    }
    if only.is_some() && out.is_empty() {
        return Err(ApiError::not_found(TENANT_NOT_FOUND));
    }
    Ok(out)
}

/// The live profiles carrying `who` in every tenant (or only in `only`), by tenant.
pub(super) async fn find(
    app: &AppState,
    ctx: &RequestContext,
    proof: &VaultWide,
    who: &Identity,
    only: Option<TenantId>,
) -> ApiResult<Vec<Found>> {
    let tenants = tenants(app, proof, only).await?;
    let wanted: Vec<(TenantId, IndexValue)> =
        tenants.iter().map(|(t, keys)| (t.id, keys.index(who.kind, &who.normalised))).collect();
    let rows = app.db.every_tenant(proof).find(who.kind, &wanted, ctx.now).await?;
    let mut found = opened(&tenants, rows)?;
    // A row whose opened record does not carry the identity came through a tampered index.
    found.retain(|f| {
        let carried = who.is_carried_by(&f.user.subject.token, &f.user.profile);
        if !carried {
            crate::integrity::index_mismatch(f.tenant, who.kind.name());
        }
        carried
    });
    Ok(found)
}

/// The profiles closest to `identity` in every tenant, best first (at most
/// [`MAX_ROWS`]), and how many matched in all.
pub(super) async fn search(
    app: &AppState,
    ctx: &RequestContext,
    proof: &VaultWide,
    target: Target,
    identity: &str,
) -> ApiResult<(usize, Vec<Found>)> {
    let tenants = tenants(app, proof, None).await?;
    let mut grams = Vec::with_capacity(tenants.len());
    let mut sample = None;
    for (tenant, keys) in &tenants {
        let query = Query::new(keys, target, identity);
        if query.is_empty() {
            return Ok((0, Vec::new()));
        }
        grams.push((tenant.id, query.digests()));
        sample.get_or_insert(query);
    }
    // The query's shape (its trigrams, how many must be shared, the distance) is the same in
    // every tenant; only the digests are keyed.
    let Some(query) = sample else { return Ok((0, Vec::new())) };
    let every = app.db.every_tenant(proof);
    let candidates = every.candidates(&grams, query.min_shared(), CANDIDATES).await?;
    let shared: HashMap<(TenantId, Vec<u8>), i64> =
        candidates.iter().map(|(t, rid, n)| ((*t, rid.clone()), *n)).collect();
    let wanted: Vec<(TenantId, Vec<u8>)> = candidates.into_iter().map(|(t, rid, _)| (t, rid)).collect();
    let rows = every.users_by_rid(&wanted, ctx.now).await?;
    let mut ranked = Vec::new();
    for found in opened(&tenants, rows)? {
        if let Some(distance) = query.distance(&query::profile_parts(&found.user.profile)) {
            let key = (found.tenant, found.user.row.rid.clone());
            let shared = shared.get(&key).copied().unwrap_or(0);
            ranked.push((distance, std::cmp::Reverse(shared), key, found));
        }
    }
    ranked.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
    let matched = ranked.len();
    Ok((matched, ranked.into_iter().take(MAX_ROWS).map(|(_, _, _, found)| found).collect()))
}

/// Opens rows with their tenants' keys.
fn opened(tenants: &[(LiveTenant, Arc<TenantKeys>)], rows: Vec<TenantUser>) -> ApiResult<Vec<Found>> {
    let by_id: HashMap<TenantId, &(LiveTenant, Arc<TenantKeys>)> = tenants.iter().map(|t| (t.0.id, t)).collect();
    let mut out = Vec::with_capacity(rows.len());
    for TenantUser { tenant, row } in rows {
        let Some((live, keys)) = by_id.get(&tenant) else { continue };
        out.push(open(live, keys, row)?);
    }
    out.sort_by_key(|f| f.tenant);
    Ok(out)
}

/// Opens one row of `tenant`.
pub(super) fn open(tenant: &LiveTenant, keys: &Arc<TenantKeys>, row: UserRow) -> ApiResult<Found> {
    let user = crate::users::service::open_in(keys, row)?;
    Ok(Found { tenant: tenant.id, tenant_name: tenant.name.clone(), keys: keys.clone(), user })
}

/// Commits the call's own event and one event per profile returned, in the profile's tenant
/// with the user as subject, atomically, before the answer leaves (see
/// [`crate::bulk::disclosed`]).
pub(super) async fn disclose(app: &AppState, ctx: &RequestContext, found: &[Found]) -> ApiResult<()> {
    crate::bulk::disclosed::record_across(app, ctx, found.iter().map(|f| (f.tenant, &f.keys, &f.user.subject))).await
}
