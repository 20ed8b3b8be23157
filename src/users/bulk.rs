//! `UserCreateBulk` and `UserDeleteBulk`.

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::identity::IdentityFields;
use super::record;
use super::routes::Assignment;
use super::service::{self, Prepared};
use crate::crypto::IndexKind;
use crate::expiry::Lifetime;
use crate::http::body::{Small, decode_element, elements, record_object, small};
use crate::http::{ApiError, ApiResult, Body, Reply, RequestContext, Rule};
use crate::state::AppState;
use crate::store::audit::AuditRecord;
use crate::store::roles::Ref;
use crate::store::users::{Chunk, ChunksWritten, OnTaken, ProfileIndexes};

#[derive(Debug, Deserialize)]
pub(crate) struct CreateBulkRequest {
    /// The records as their raw text, split into at most `max_bulk_records` records once read:
    /// a record becomes a tree only while it is sealed, one at a time, so a large batch costs
    /// about its text, not a tree of many times its size.
    records: Option<Box<RawValue>>,
    slidingtime: Option<Small>,
    finaltime: Option<Small>,
}

/// `created: [{token, profile}]` and `errors: [{profile, reason}]`, in input order, each
/// profile serialised from the request's own record instead of a copy.
pub(super) struct CreateBulkReply {
    records: Vec<Box<RawValue>>,
    answers: Vec<Answer>,
}

/// What became of one record.
enum Answer {
    Created(String),
    Refused(String),
}

impl Serialize for CreateBulkReply {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Created<'a> {
            token: &'a str,
            profile: Option<&'a RawValue>,
        }
        #[derive(Serialize)]
        struct Refused<'a> {
            profile: Option<&'a RawValue>,
            reason: &'a str,
        }
        let pairs = || self.records.iter().map(|record| profile_of(record)).zip(&self.answers);
        let created: Vec<Created> = pairs()
            .filter_map(|(profile, answer)| match answer {
                Answer::Created(token) => Some(Created { token, profile }),
                Answer::Refused(_) => None,
            })
            .collect();
        let errors: Vec<Refused> = pairs()
            .filter_map(|(profile, answer)| match answer {
                Answer::Refused(reason) => Some(Refused { profile, reason }),
                Answer::Created(_) => None,
            })
            .collect();
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("created", &created)?;
        map.serialize_entry("errors", &errors)?;
        map.end()
    }
}

/// One submitted record: checked and indexed for insertion (with the group and role it joins,
/// once looked up), or refused with a reason. Only its identity digests are kept: a record is
/// sealed later, a chunk at a time, while the chunk before it is written.
enum Outcome {
    Ready(Box<ProfileIndexes>, Option<Join>),
    Refused(String),
}

/// The group a new user joins, and the role it holds there: as named, then as found.
enum Join {
    Named(Ref, Option<Ref>),
    Found(i64, Option<i64>),
}

/// A group id, and the id of the role held there.
type Membership = (i64, Option<i64>);

/// Records sealed and sent to the database at a time: a call of thousands holds a few chunks
/// in memory, not all of its records sealed at once.
const CHUNK_RECORDS: usize = 500;

/// Sealed chunks waiting for the database beside the one being written and the one being sealed.
const CHUNKS_AHEAD: usize = 1;

/// A record that became a new user: its position in the call, its token, its record id, and
/// the group it joins with the event of that (written only if the user was inserted).
struct Made {
    position: usize,
    token: String,
    rid: Vec<u8>,
    joins: Option<(i64, Option<i64>, AuditRecord)>,
}

pub(super) async fn create_bulk(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<CreateBulkRequest>,
) -> ApiResult<Reply<CreateBulkReply>> {
    ctx.require(Rule::Granted)?;
    let records = req
        .records
        .map(|records| elements(&records, app.settings.max_bulk_records, "records"))
        .transpose()?
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::bad_request("Missing API request parameters: records"))?;
    let lifetime = service::lifetime(&app, ctx.now, small(req.slidingtime.as_ref()), small(req.finaltime.as_ref()))?;
    // Checking and indexing thousands of profiles is CPU work: keep it off the async workers.
    let checking_ctx = ctx.clone();
    let max_record_size = app.settings.max_record_size;
    let (records, mut outcomes) = tokio::task::spawn_blocking(move || {
        let outcomes =
            records.iter().map(|record| check_one(&checking_ctx, record, max_record_size)).collect::<Vec<_>>();
        (records, outcomes)
    })
    .await
    .map_err(ApiError::internal)?;
    refuse_unknown_groups(&app, &ctx, &mut outcomes).await?;
    // Read once before the write: records past the licence's room are refused.
    let room = crate::licence::room(&app).await?;

    // Most calls repeat no value another user holds: they are inserted whole without looking
    // the values up first, which costs the database a lookup per record and index. When a
    // record repeats an earlier one of the call, the licence's room would refuse some, or the
    // insert meets a value already taken (and rolls back), the values are looked up first and
    // the records refused one by one, as a sequence of UserCreates would see them.
    let ready = outcomes.iter().filter(|outcome| outcome.ready().is_some()).count();
    let at_once = !repeats_within(&outcomes) && room.is_none_or(|room| ready <= room);
    let written = if at_once {
        insert(&app, &ctx, records, &outcomes, lifetime, OnTaken::RollBack).await?
    } else {
        // Not tried: the records go the way of a call that clashed.
        Written::Clashed(records)
    };
    let (records, mut made, inserted) = match written {
        Written::Done(records, made, inserted) => (records, made, inserted),
        Written::Clashed(records) => {
            refuse_duplicates(&app, &ctx, &mut outcomes).await?;
            if let Some(room) = room {
                refuse_past(&mut outcomes, room);
            }
            match insert(&app, &ctx, records, &outcomes, lifetime, OnTaken::Skip).await? {
                Written::Done(records, made, inserted) => (records, made, inserted),
                Written::Clashed(_) => {
                    return Err(ApiError::internal(std::io::Error::other("a skipping insert clashed")));
                }
            }
        }
    };

    // The new users join their groups in one transaction, one event each.
    type Joins<'a> = Vec<(i64, &'a [u8], Option<i64>)>;
    let (joins, events): (Joins, Vec<AuditRecord>) = made
        .iter_mut()
        .filter(|m| inserted.contains(&m.rid))
        .filter_map(|m| m.joins.take().map(|(group, role, event)| ((group, m.rid.as_slice(), role), event)))
        .unzip();
    if !joins.is_empty() {
        app.db.tenant(ctx.tenant).groups().add_members(&joins, ctx.now_ms, &events).await?;
        app.caches.forget_grants(ctx.tenant);
    }

    let mut made = made.into_iter().peekable();
    let mut answers = Vec::with_capacity(records.len());
    let mut created = 0;
    for (position, outcome) in outcomes.into_iter().enumerate() {
        let new = made.next_if(|m| m.position == position);
        answers.push(match (outcome, new) {
            (Outcome::Ready(..), Some(m)) if inserted.contains(&m.rid) => {
                created += 1;
                Answer::Created(m.token)
            }
            (Outcome::Ready(indexes, _), _) => {
                // Lost a race with a concurrent writer since the duplicate check.
                let kind = app.db.tenant(ctx.tenant).users().clash(&indexes, None).await?;
                Answer::Refused(format!("Duplicate {} value", kind.map_or("token", IndexKind::name)))
            }
            (Outcome::Refused(reason), _) => Answer::Refused(reason),
        });
    }
    let errors = records.len() - created;
    ctx.set_extra(json!({"records": records.len(), "created": created, "errors": errors}));
    Ok(Reply(CreateBulkReply { records, answers }))
}

/// What [`insert`] did, with the records back.
enum Written {
    /// Committed: the users made in input order, and the rids inserted.
    Done(Vec<Box<RawValue>>, Vec<Made>, HashSet<Vec<u8>>),
    /// [`OnTaken::RollBack`], and some record's value was taken: nothing was written.
    Clashed(Vec<Box<RawValue>>),
}

/// Seals the records ready for insertion, a chunk at a time on a blocking thread, while the
/// database writes the chunk before (all in one transaction, with one creation event per user).
async fn insert(
    app: &AppState,
    ctx: &RequestContext,
    records: Vec<Box<RawValue>>,
    outcomes: &[Outcome],
    lifetime: Lifetime,
    on_taken: OnTaken,
) -> ApiResult<Written> {
    let ready: Vec<(usize, Option<Membership>)> = outcomes
        .iter()
        .enumerate()
        .filter_map(|(position, outcome)| match outcome {
            Outcome::Ready(_, Some(Join::Found(group, role))) => Some((position, Some((*group, *role)))),
            Outcome::Ready(..) => Some((position, None)),
            Outcome::Refused(_) => None,
        })
        .collect();
    let (sender, mut chunks) = tokio::sync::mpsc::channel(CHUNKS_AHEAD);
    let sealing_ctx = ctx.clone();
    let sealing = tokio::task::spawn_blocking(move || {
        let mut made = Vec::with_capacity(ready.len());
        for positions in ready.chunks(CHUNK_RECORDS) {
            let mut users = Vec::with_capacity(positions.len());
            let mut events = Vec::with_capacity(positions.len());
            for &(position, joins) in positions {
                // Checked before: the profile is an object that parses.
                let Some(profile) = profile_of(&records[position]).and_then(|p| serde_json::from_str(p.get()).ok())
                else {
                    continue;
                };
                let Prepared { new, subject } = service::prepare(&sealing_ctx, &profile, lifetime);
                events.push(sealing_ctx.change_event(Some(&subject), None, None, None));
                let joins = joins.map(|(group, role)| {
                    let after = json!({"groupid": group, "roleid": role});
                    let joined = json!({"joins": "group"});
                    (group, role, sealing_ctx.change_event(Some(&subject), None, Some(&after), Some(&joined)))
                });
                made.push(Made { position, token: subject.token, rid: new.rid.clone(), joins });
                users.push(new);
            }
            if sender.blocking_send(Chunk::Users(users, events)).is_err() {
                return (records, made, false);
            }
        }
        let sent = sender.blocking_send(Chunk::End).is_ok();
        (records, made, sent)
    });
    let written = app.db.tenant(ctx.tenant).users().insert_chunks(&mut chunks, on_taken).await;
    // The sealing thread stops at its next chunk once the receiver is gone.
    drop(chunks);
    let (records, made, sent) = sealing.await.map_err(ApiError::internal)?;
    match written? {
        ChunksWritten::Committed(inserted) if sent => Ok(Written::Done(records, made, inserted)),
        ChunksWritten::Clashed => Ok(Written::Clashed(records)),
        _ => Err(ApiError::internal(std::io::Error::other("the bulk insert stopped before its last chunk"))),
    }
}

/// Whether a record ready for insertion repeats a login, email, phone or custom value of an
/// earlier one.
fn repeats_within(outcomes: &[Outcome]) -> bool {
    let mut seen: Vec<HashSet<[u8; 32]>> = vec![HashSet::new(); IndexKind::PROFILE.len()];
    outcomes
        .iter()
        .filter_map(Outcome::ready)
        .any(|indexes| indexes.iter().zip(&mut seen).any(|(idx, seen)| idx.is_some_and(|idx| !seen.insert(idx))))
}

/// Refuses the records ready for insertion past the first `room` ones.
fn refuse_past(outcomes: &mut [Outcome], room: usize) {
    for outcome in outcomes.iter_mut().filter(|outcome| outcome.ready().is_some()).skip(room) {
        *outcome = Outcome::Refused(crate::licence::LIMIT_REACHED.to_owned());
    }
}

impl Outcome {
    fn ready(&self) -> Option<&ProfileIndexes> {
        match self {
            Outcome::Ready(indexes, _) => Some(indexes),
            Outcome::Refused(_) => None,
        }
    }
}

/// The `profile` of a submitted record, as sent (`None` when there is none).
fn profile_of(record: &RawValue) -> Option<&RawValue> {
    record_object(record)?.take("profile")
}

/// Validates one record and computes its identity digests (it is sealed later, in its chunk).
fn check_one(ctx: &RequestContext, record: &RawValue, max_record_size: usize) -> Outcome {
    let refused = || Outcome::Refused("The profile parameter has an incorrect format".to_owned());
    let Some(mut fields) = record_object(record) else { return refused() };
    let Some(profile) = fields.take("profile").filter(|p| p.get().starts_with('{')) else { return refused() };
    // Measured as sent before it becomes a tree: a record's text bounds what parsing it costs.
    if profile.get().len() > max_record_size.saturating_mul(2) {
        return Outcome::Refused(format!("The profile is larger than the limit of {max_record_size} bytes"));
    }
    let Ok(profile) = serde_json::from_str::<Value>(profile.get()) else { return refused() };
    let checked = service::check_profile(&profile, max_record_size)
        .and_then(|()| fields.decode::<Assignment>())
        .and_then(Assignment::refs);
    match checked {
        Err(err) => Outcome::Refused(err.to_string()),
        Ok(refs) => Outcome::Ready(
            Box::new(record::indexes(&ctx.keys, &profile)),
            refs.map(|(group, role)| Join::Named(group, role)),
        ),
    }
}

/// Looks up the groups and roles the records name (each once) and refuses, with UserCreate's
/// 404 message, each record that names one that does not exist.
async fn refuse_unknown_groups(app: &AppState, ctx: &RequestContext, outcomes: &mut [Outcome]) -> ApiResult<()> {
    let scope = app.db.tenant(ctx.tenant);
    let mut groups: HashMap<Ref, Option<i64>> = HashMap::new();
    let mut roles: HashMap<Ref, Option<i64>> = HashMap::new();
    for outcome in outcomes.iter_mut() {
        let Outcome::Ready(_, Some(Join::Named(group, role))) = outcome else { continue };
        if !groups.contains_key(group) {
            let found = scope.groups().get(group).await?.map(|g| g.id);
            groups.insert(group.clone(), found);
        }
        if let Some(role) = role
            && !roles.contains_key(role)
        {
            let found = scope.roles().role(role).await?.map(|r| r.id);
            roles.insert(role.clone(), found);
        }
        let group = groups.get(group).copied().flatten();
        let role = role.as_ref().map(|role| roles.get(role).copied().flatten());
        *outcome = match (group, role) {
            (None, _) => Outcome::Refused("The group record was not found".to_owned()),
            (Some(_), Some(None)) => Outcome::Refused("The role record was not found".to_owned()),
            (Some(group), role) => match std::mem::replace(outcome, Outcome::Refused(String::new())) {
                Outcome::Ready(indexes, _) => Outcome::Ready(indexes, Some(Join::Found(group, role.flatten()))),
                other => other,
            },
        };
    }
    Ok(())
}

/// Refuses, in input order, each record whose login/email/phone/custom is held by an existing
/// user or by an earlier accepted record: the batch behaves like a sequence of `UserCreate`s.
async fn refuse_duplicates(app: &AppState, ctx: &RequestContext, outcomes: &mut [Outcome]) -> ApiResult<()> {
    let mut taken: Vec<HashSet<[u8; 32]>> = Vec::with_capacity(IndexKind::PROFILE.len());
    for position in 0..IndexKind::PROFILE.len() {
        let values: Vec<[u8; 32]> =
            outcomes.iter().filter_map(Outcome::ready).filter_map(|indexes| indexes[position]).collect();
        let existing = if values.is_empty() {
            HashSet::new()
        } else {
            app.db.tenant(ctx.tenant).users().taken(position, &values).await?
        };
        taken.push(existing);
    }
    for outcome in outcomes.iter_mut() {
        let Outcome::Ready(indexes, _) = outcome else { continue };
        let indexes = **indexes;
        let clash =
            indexes.iter().enumerate().find(|(position, idx)| idx.is_some_and(|idx| taken[*position].contains(&idx)));
        if let Some((position, _)) = clash {
            *outcome = Outcome::Refused(format!("Duplicate {} value", IndexKind::PROFILE[position].name()));
            continue;
        }
        for (position, idx) in indexes.iter().enumerate() {
            if let Some(idx) = idx {
                taken[position].insert(*idx);
            }
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
pub(crate) struct DeleteBulkRequest {
    /// `{mode, identity}` pairs as their raw text, at most `max_bulk_records` of them.
    users: Option<Box<RawValue>>,
}

#[derive(Serialize)]
pub(super) struct DeleteBulkReply {
    total: usize,
    deleted: u64,
    deleted_count: u64,
}

pub(super) async fn delete_bulk(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<DeleteBulkRequest>,
) -> ApiResult<Reply<DeleteBulkReply>> {
    ctx.require(Rule::Granted)?;
    let users = req
        .users
        .map(|users| elements(&users, app.settings.max_bulk_records, "users"))
        .transpose()?
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::bad_request("Missing API request parameters: users"))?
        .iter()
        .enumerate()
        .map(|(index, user)| decode_element::<IdentityFields>(user, "users", index))
        .collect::<Result<Vec<_>, _>>()?;
    let total = users.len();
    let mut rids = Vec::with_capacity(total);
    let mut events = Vec::with_capacity(total);
    let mut seen = HashSet::with_capacity(total);
    let mut session_names = Vec::new();
    let mut erasures = Vec::with_capacity(total);
    for fields in users {
        // An identity that cannot name anyone (an empty value, a phone without digits) is skipped
        // like an unknown one; a malformed mode is still an error.
        let who = match fields.parse() {
            Ok(who) => who,
            Err(ApiError::NotFound(_)) => continue,
            Err(err) => return Err(err),
        };
        let user = match service::find(&app, &ctx, &who).await {
            Ok(user) => user,
            Err(ApiError::NotFound(_)) => continue,
            Err(err) => return Err(err),
        };
        if seen.insert(user.row.rid.clone()) {
            session_names.extend(crate::sessions::service::names_of(&ctx, &user)?);
            let event = ctx.change_event(Some(&user.subject), None, None, None);
            erasures.push(crate::connectors::erasure::queued(
                &ctx.keys,
                &event.uuid,
                &user.subject.token,
                &user.profile,
                ctx.now_ms,
            ));
            events.push(event);
            rids.push(user.row.rid);
        }
    }
    let (deleted, tokens) = app
        .db
        .tenant(ctx.tenant)
        .users()
        .delete_many(&rids, &events, None, &erasures, ctx.now_ms, &service::erased_tag(&ctx))
        .await?;
    if deleted > 0 {
        crate::sessions::service::erase_naming(&app, &ctx, &session_names).await;
        app.checkpoints.after_erasure();
    }
    if tokens {
        app.caches.forget_users(ctx.tenant, &rids);
    }
    // The users' files went with them (cascade); their blobs, if any, go now.
    crate::files::blobs::purge(&app).await;
    ctx.set_extra(json!({"users": total, "deleted": deleted}));
    Ok(Reply(DeleteBulkReply { total, deleted, deleted_count: deleted }))
}
