//! `SystemGetUserReport` and `SystemGetUserHTMLReport`.

use axum::extract::State;
use serde::Serialize;

use super::{Report, build, html};
use crate::http::{ApiResult, Body, Operation, Reply, RequestContext, Rule, op};
use crate::state::AppState;
use crate::users::identity::IdentityFields;
use crate::users::service as users;

/// The report operations.
pub fn operations() -> Vec<Operation> {
    vec![op("SystemGetUserReport", report), op("SystemGetUserHTMLReport", html_report)]
}

#[derive(Serialize)]
struct ReportReply {
    report: Report,
}

/// `SystemGetUserReport`: the report as JSON.
async fn report(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<IdentityFields>,
) -> ApiResult<Reply<ReportReply>> {
    ctx.require(Rule::Granted)?;
    let who = req.parse()?;
    let user = users::load(&app, &ctx, &who).await?;
    Ok(Reply(ReportReply { report: build(&app, &ctx, &user).await? }))
}

#[derive(Serialize)]
struct HtmlReply {
    html: String,
}

/// `SystemGetUserHTMLReport`: the report as a self-contained HTML page, every value escaped.
async fn html_report(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<IdentityFields>,
) -> ApiResult<Reply<HtmlReply>> {
    ctx.require(Rule::Granted)?;
    let who = req.parse()?;
    let user = users::load(&app, &ctx, &who).await?;
    let report = build(&app, &ctx, &user).await?;
    Ok(Reply(HtmlReply { html: html::render(&report) }))
}
