//! `SystemGetSystemStats`: how many records a tenant holds (the vault's, for the main tenant's
//! administrator), and the licence's limits; and the background job that keeps those counts
//! cheap to read on PostgreSQL (see [`crate::store::counts`]).

use std::time::Duration;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::http::{ApiResult, Body, Reply, RequestContext, Rule};
use crate::state::AppState;
use crate::store::counts::{self, Counts};

/// How often pending count deltas are folded into the base counts.
pub const COMPACT_INTERVAL: Duration = Duration::from_secs(2);

/// A request without parameters (its `request_metadata` still reaches the audit event).
#[derive(Debug, Deserialize)]
pub(super) struct NoParameters {}

#[derive(Debug, Serialize)]
struct Stats {
    numusers: i64,
    numtenants: i64,
    numtokens: i64,
    numsessions: i64,
    numfiles: i64,
    numagreements: i64,
    numrequests: i64,
    totalnumrecords: i64,
    licensemaxrecords: i64,
    licensefinalexpiration: i64,
}

/// The contract leaves the licence fields' place open: they are answered in `stats` and beside it.
#[derive(Debug, Serialize)]
pub(super) struct StatsReply {
    stats: Stats,
    totalnumrecords: i64,
    licensemaxrecords: i64,
    licensefinalexpiration: i64,
}

/// The counts of the caller's tenant; the vault's for the main tenant's administrator in the
/// main tenant.
pub(super) async fn get(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(NoParameters {}): Body<NoParameters>,
) -> ApiResult<Reply<StatsReply>> {
    ctx.require(Rule::TenantAdmin)?;
    let vault = ctx.require(Rule::MainTenantAdmin).is_ok();
    let (counts, numtenants) = if vault {
        (counts::vault(&app.db).await?, counts::live_tenants(&app.db).await?)
    } else {
        (counts::tenant(&app.db, ctx.tenant).await?, 1)
    };
    ctx.set_extra(json!({"scope": if vault { "vault" } else { "tenant" }}));
    let (licensemaxrecords, licensefinalexpiration) = licence_fields(&app).await?;
    let Counts { users, tokens, sessions, files, agreements, open_requests } = counts;
    let totalnumrecords = users + tokens;
    let stats = Stats {
        numusers: users,
        numtenants,
        numtokens: tokens,
        numsessions: sessions,
        numfiles: files,
        numagreements: agreements,
        numrequests: open_requests,
        totalnumrecords,
        licensemaxrecords,
        licensefinalexpiration,
    };
    Ok(Reply(StatsReply { stats, totalnumrecords, licensemaxrecords, licensefinalexpiration }))
}

/// The licence's maximum records and final expiry (unix seconds); 0 for none.
async fn licence_fields(app: &AppState) -> ApiResult<(i64, i64)> {
    let status = crate::licence::status(app).await?;
    Ok((status.max_records.unwrap_or(0), status.expires.unwrap_or(0)))
}

/// Folds pending count deltas every [`COMPACT_INTERVAL`] until the pool is closed at shutdown
/// (a run cut short rolls back whole: nothing is lost). Nothing to do on SQLite.
pub fn spawn_compaction(app: AppState) {
    if !matches!(app.db, crate::store::Db::Postgres(_)) {
        return;
    }
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(COMPACT_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if counts::closed(&app.db) {
                break;
            }
            if !app.health.is_up() {
                continue;
            }
            if let Err(err) = counts::compact(&app.db).await {
                if !counts::closed(&app.db) {
                    tracing::warn!(error = %err, "record counts not compacted");
                }
            }
        }
    });
}
