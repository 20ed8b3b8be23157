//! Running a search: candidates from the digests, then each candidate's opened profile judged
//! and ranked.

use super::query::{self, Query, Target};
use crate::crypto::IndexKind;
use crate::http::lenient::Text;
use crate::http::{ApiResult, RequestContext};
use crate::state::AppState;
use crate::users::{self, Identity, LoadedUser};

/// Users looked at per search, those sharing the most digests with the query first: a bound on
/// the work of a query whose trigrams are common to many users.
const CANDIDATES: usize = 1000;

/// Most rows one search answers, best first.
pub const MAX_ROWS: usize = 100;

/// Matching users, closest first (at most [`MAX_ROWS`]), and how many matched in all.
pub async fn search(
    app: &AppState,
    ctx: &RequestContext,
    target: Target,
    identity: &str,
) -> ApiResult<(usize, Vec<LoadedUser>)> {
    if target == Target::Kind(IndexKind::Token) {
        return exact_token(app, ctx, identity).await;
    }
    let query = Query::new(&ctx.keys, target, identity);
    if query.is_empty() {
        return Ok((0, Vec::new()));
    }
    let candidates =
        app.db.tenant(ctx.tenant).search().candidates(&query.digests(), query.min_shared(), CANDIDATES).await?;
    let shared: std::collections::HashMap<Vec<u8>, i64> = candidates.iter().cloned().collect();
    let rids: Vec<Vec<u8>> = candidates.into_iter().map(|(rid, _)| rid).collect();
    // Expired users (not yet swept) are not loaded. The decision is taken on the opened profile,
    // in memory: the digests only chose whom to open.
    let mut opened = Vec::new();
    for row in app.db.tenant(ctx.tenant).bulk().users_by_rid(&rids, ctx.now).await? {
        opened.push(users::service::open(ctx, row)?);
    }
    // A caller bound by policies searches only what it may see: its rows are judged and masked
    // first, and matched on the masked profile, so a hidden field cannot be probed by searching.
    let opened = crate::access::judge::admit_rows(app, ctx, opened, None).await?;
    let mut ranked = Vec::new();
    for user in opened {
        if let Some(distance) = query.distance(&query::profile_parts(&user.profile)) {
            let shared = shared.get(&user.row.rid).copied().unwrap_or(0);
            ranked.push((distance, std::cmp::Reverse(shared), user.row.rid.clone(), user));
        }
    }
    ranked.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
    let matched = ranked.len();
    Ok((matched, ranked.into_iter().take(MAX_ROWS).map(|(_, _, _, user)| user).collect()))
}

/// `mode: token` is an exact lookup: a token has nothing to be fuzzy about.
async fn exact_token(app: &AppState, ctx: &RequestContext, identity: &str) -> ApiResult<(usize, Vec<LoadedUser>)> {
    let who = Identity::parse(Some(Text("token".into())), Some(Text(identity.into())))?;
    let idx = ctx.keys.index(IndexKind::Token, &who.normalised);
    let found = match app.db.tenant(ctx.tenant).users().find(IndexKind::Token, &idx, ctx.now).await? {
        Some(row) => users::service::open_found(ctx, row, &who)?.into_iter().collect(),
        None => Vec::new(),
    };
    let found = crate::access::judge::admit_rows(app, ctx, found, None).await?;
    Ok((found.len(), found))
}
