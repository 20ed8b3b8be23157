//! Administrator accounts, their single-use activation and reset tokens, and their login
//! sessions (access tokens naming the account). Usernames and addresses arrive sealed with
//! their blind indexes; passwords as argon2id hashes; tokens as digests.

use sqlx::Row;

use super::audit::{AuditRecord, insert as insert_audit};
use super::roles::NewXToken;
use super::tenants::{Change, RECORD_CHANGE as CHANGED};
use super::{Db, ScopedPool, StoreError, StoreResult, TenantScope, with_pool};

/// Most accounts one tenant may have.
pub const MAX_PER_TENANT: i64 = 1000;

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    /// Its id (a uuid; `accountid`).
    pub id: String,
    /// Blind index of the lower-cased username.
    pub username_idx: Vec<u8>,
    /// Blind index of the lower-cased e-mail address.
    pub email_idx: Vec<u8>,
    /// Sealed details (username, address, names, TOTP secrets).
    pub details: Vec<u8>,
    /// The role it acts as (none for an administrator account, or after its role was deleted).
    pub role_id: Option<i64>,
    /// It acts as the tenant's administrator.
    pub admin: bool,
    /// `invited`, `active` or `disabled`.
    pub status: String,
    /// The argon2id hash of its password (none until activated).
    pub password: Option<String>,
    /// A second factor is required at login.
    pub totp: bool,
    /// Consecutive failed logins.
    pub failures: i64,
    /// Logins are refused until then (unix seconds).
    pub locked_until: Option<i64>,
    /// The last successful login (unix seconds).
    pub last_login: Option<i64>,
    /// Creation (unix seconds).
    pub created_at: i64,
}

/// A single-use token to store for an account: its digest, what it is for, and its expiry.
#[derive(Debug, Clone, Copy)]
pub struct NewAccountToken<'a> {
    /// SHA-256 of the token.
    pub digest: &'a [u8; 32],
    /// `activate` or `reset`.
    pub purpose: &'static str,
    /// Expiry (unix seconds).
    pub expires_at: i64,
}

const COLUMNS: &str = "id, username_idx, email_idx, details, role_id, admin, status, password, totp, failures, \
     locked_until, last_login, created_at";

fn decode<R: Row>(row: &R) -> Result<AccountRow, sqlx::Error>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    Ok(AccountRow {
        id: row.try_get(0)?,
        username_idx: row.try_get(1)?,
        email_idx: row.try_get(2)?,
        details: row.try_get(3)?,
        role_id: row.try_get(4)?,
        admin: row.try_get(5)?,
        status: row.try_get(6)?,
        password: row.try_get(7)?,
        totp: row.try_get(8)?,
        failures: row.try_get(9)?,
        locked_until: row.try_get(10)?,
        last_login: row.try_get(11)?,
        created_at: row.try_get(12)?,
    })
}

/// The accounts of one tenant: every query here is bound to its tenant.
#[derive(Debug, Clone, Copy)]
pub struct Accounts<'a>(pub(super) TenantScope<'a>);

impl Accounts<'_> {
    /// Which of the two indexes another account of the tenant already holds (`username` first),
    /// other than account `except`.
    pub async fn taken(
        &self,
        username_idx: &[u8],
        email_idx: &[u8],
        except: &str,
    ) -> StoreResult<Option<&'static str>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query(
                "SELECT username_idx = $2 FROM accounts WHERE tenant_id = $1 AND id <> $4 \
                 AND (username_idx = $2 OR email_idx = $3) ORDER BY 1 DESC LIMIT 1",
            )
            .bind(tenant)
            .bind(username_idx)
            .bind(email_idx)
            .bind(except)
            .fetch_optional(&mut *conn)
            .await?;
            Ok(match row {
                None => None,
                Some(row) => Some(if row.try_get::<bool, _>(0)? { "username" } else { "email" }),
            })
        })
    }

    /// Inserts an account with its activation token and event; `Conflict` when the username or
    /// address is taken, `Busy` past [`MAX_PER_TENANT`].
    pub async fn insert(&self, row: &AccountRow, token: &NewAccountToken<'_>, event: &AuditRecord) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        let postgres = matches!(db, Db::Postgres(_));
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            if postgres {
                sqlx::query("SELECT id FROM tenants WHERE id = $1 FOR UPDATE").bind(tenant).execute(&mut *tx).await?;
            }
            let count: i64 = sqlx::query("SELECT COUNT(*) FROM accounts WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            if count >= MAX_PER_TENANT {
                return Err(StoreError::Busy("This tenant has the most accounts it may have"));
            }
            sqlx::query(
                "INSERT INTO accounts (tenant_id, id, username_idx, email_idx, details, role_id, admin, status, \
                 password, totp, failures, locked_until, last_login, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, NULL, NULL, $11, $11)",
            )
            .bind(tenant)
            .bind(&row.id)
            .bind(&row.username_idx)
            .bind(&row.email_idx)
            .bind(&row.details)
            .bind(row.role_id)
            .bind(row.admin)
            .bind(&row.status)
            .bind(&row.password)
            .bind(row.totp)
            .bind(row.created_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO account_tokens (digest, tenant_id, account_id, purpose, expires_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&token.digest[..])
            .bind(tenant)
            .bind(&row.id)
            .bind(token.purpose)
            .bind(token.expires_at)
            .execute(&mut *tx)
            .await?;
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(())
        })
    }

    /// An account by id.
    pub async fn get(&self, id: &str) -> StoreResult<Option<AccountRow>> {
        let (db, tenant) = self.0.parts();
        let sql = format!("SELECT {COLUMNS} FROM accounts WHERE tenant_id = $1 AND id = $2");
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query(&sql).bind(tenant).bind(id).fetch_optional(&mut *conn).await?;
            Ok(row.as_ref().map(decode).transpose()?)
        })
    }

    /// An account by the blind index of its username.
    pub async fn by_username(&self, username_idx: &[u8]) -> StoreResult<Option<AccountRow>> {
        self.by_index("username_idx", username_idx).await
    }

    /// An account by the blind index of its address.
    pub async fn by_email(&self, email_idx: &[u8]) -> StoreResult<Option<AccountRow>> {
        self.by_index("email_idx", email_idx).await
    }

    async fn by_index(&self, column: &'static str, value: &[u8]) -> StoreResult<Option<AccountRow>> {
        let (db, tenant) = self.0.parts();
        let sql = format!("SELECT {COLUMNS} FROM accounts WHERE tenant_id = $1 AND {column} = $2");
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query(&sql).bind(tenant).bind(value).fetch_optional(&mut *conn).await?;
            Ok(row.as_ref().map(decode).transpose()?)
        })
    }

    /// How many accounts the tenant has, and a page of them (oldest first).
    pub async fn list(&self, offset: i64, limit: i64) -> StoreResult<(i64, Vec<AccountRow>)> {
        let (db, tenant) = self.0.parts();
        let sql =
            format!("SELECT {COLUMNS} FROM accounts WHERE tenant_id = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3");
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let total: i64 = sqlx::query("SELECT COUNT(*) FROM accounts WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_one(&mut *conn)
                .await?
                .try_get(0)?;
            let rows = sqlx::query(&sql).bind(tenant).bind(limit).bind(offset).fetch_all(&mut *conn).await?;
            Ok((total, rows.iter().map(decode).collect::<Result<_, _>>()?))
        })
    }

    /// Writes what an administrator may change (details, address index, role, status, second
    /// factor), with the event; with `end_sessions` its login sessions end (on every replica), and
    /// `token` replaces any unused token of its purpose. `NotFound` when it is gone, `Conflict`
    /// when the address is taken.
    pub async fn update(
        &self,
        before: &AccountRow,
        row: &AccountRow,
        end_sessions: bool,
        token: Option<&NewAccountToken<'_>>,
        event: &AuditRecord,
        now_ms: i64,
    ) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            // Only over the account as read: every write of the details seals them afresh, and
            // the status moves only here and on activation, so a change made meanwhile (a
            // disable, an activation, a second factor confirmed) is never written over.
            let done = sqlx::query(
                "UPDATE accounts SET email_idx = $3, details = $4, role_id = $5, admin = $6, status = $7, totp = $8, \
                 updated_at = $9 WHERE tenant_id = $1 AND id = $2 AND details = $10 AND status = $11",
            )
            .bind(tenant)
            .bind(&row.id)
            .bind(&row.email_idx)
            .bind(&row.details)
            .bind(row.role_id)
            .bind(row.admin)
            .bind(&row.status)
            .bind(row.totp)
            .bind(now_ms.div_euclid(1000))
            .bind(&before.details)
            .bind(&before.status)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                let exists = sqlx::query("SELECT 1 FROM accounts WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant).bind(&row.id).fetch_optional(&mut *tx).await?;
                return Err(if exists.is_some() { StoreError::Busy("The account changed meanwhile: try again") } else { StoreError::NotFound });
            }
            // A reset mailed to a former address dies with it.
            if row.email_idx != before.email_idx {
                sqlx::query("DELETE FROM account_tokens WHERE tenant_id = $1 AND account_id = $2 AND purpose = 'reset'")
                    .bind(tenant).bind(&row.id).execute(&mut *tx).await?;
            }
            if let Some(token) = token {
                sqlx::query("DELETE FROM account_tokens WHERE tenant_id = $1 AND account_id = $2 AND purpose = $3")
                    .bind(tenant).bind(&row.id).bind(token.purpose).execute(&mut *tx).await?;
                sqlx::query(
                    "INSERT INTO account_tokens (digest, tenant_id, account_id, purpose, expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&token.digest[..]).bind(tenant).bind(&row.id).bind(token.purpose).bind(token.expires_at)
                .execute(&mut *tx).await?;
            }
            if end_sessions {
                sqlx::query("DELETE FROM access_tokens WHERE tenant_id = $1 AND account_id = $2")
                    .bind(tenant).bind(&row.id).execute(&mut *tx).await?;
                sqlx::query(CHANGED).bind(Change::TOKENS).bind(tenant).bind(now_ms).execute(&mut *tx).await?;
            }
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(())
        })
    }

    /// Stores a single-use token for an account (replacing any unused one of its purpose) with
    /// the event of the request that issued it; not when one of its purpose expiring after
    /// `unless_after` is there already (false: one was issued moments ago).
    pub async fn issue(
        &self,
        account: &str,
        token: &NewAccountToken<'_>,
        unless_after: Option<i64>,
        event: &AuditRecord,
    ) -> StoreResult<bool> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            if let Some(after) = unless_after {
                let recent = sqlx::query(
                    "SELECT 1 FROM account_tokens WHERE tenant_id = $1 AND account_id = $2 AND purpose = $3 \
                     AND expires_at > $4",
                )
                .bind(tenant).bind(account).bind(token.purpose).bind(after)
                .fetch_optional(&mut *tx).await?;
                if recent.is_some() {
                    return Ok(false);
                }
            }
            sqlx::query("DELETE FROM account_tokens WHERE tenant_id = $1 AND account_id = $2 AND purpose = $3")
                .bind(tenant).bind(account).bind(token.purpose).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO account_tokens (digest, tenant_id, account_id, purpose, expires_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&token.digest[..]).bind(tenant).bind(account).bind(token.purpose).bind(token.expires_at)
            .execute(&mut *tx).await?;
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(true)
        })
    }

    /// The account a live token of `purpose` belongs to (not consumed).
    pub async fn token_owner(&self, digest: &[u8; 32], purpose: &str, now: i64) -> StoreResult<Option<AccountRow>> {
        let (db, tenant) = self.0.parts();
        let sql = format!(
            "SELECT {} FROM account_tokens t JOIN accounts a ON a.tenant_id = t.tenant_id AND a.id = t.account_id \
             WHERE t.tenant_id = $1 AND t.digest = $2 AND t.purpose = $3 AND t.expires_at > $4",
            COLUMNS.split(", ").map(|c| format!("a.{c}")).collect::<Vec<_>>().join(", ")
        );
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query(&sql).bind(tenant).bind(&digest[..]).bind(purpose).bind(now)
                .fetch_optional(&mut *conn).await?;
            Ok(row.as_ref().map(decode).transpose()?)
        })
    }

    /// Consumes a token of `purpose` and sets the account's password (activating an invited
    /// account), clearing its lockout and ending its sessions, with the event, in one
    /// transaction. `NotFound` when the token is unknown, used or expired (a token is used once
    /// even by two concurrent requests: only one deletes it).
    pub async fn redeem(
        &self,
        digest: &[u8; 32],
        purpose: &'static str,
        account: &str,
        password: &str,
        event: &AuditRecord,
        now_ms: i64,
    ) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        let now = now_ms.div_euclid(1000);
        let from = if purpose == "activate" { "invited" } else { "active" };
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let used = sqlx::query(
                "DELETE FROM account_tokens WHERE tenant_id = $1 AND digest = $2 AND purpose = $3 AND account_id = $4 \
                 AND expires_at > $5",
            )
            .bind(tenant).bind(&digest[..]).bind(purpose).bind(account).bind(now)
            .execute(&mut *tx).await?;
            if used.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            let done = sqlx::query(
                "UPDATE accounts SET password = $3, status = 'active', failures = 0, locked_until = NULL, updated_at = $4 \
                 WHERE tenant_id = $1 AND id = $2 AND status = $5",
            )
            .bind(tenant).bind(account).bind(password).bind(now).bind(from)
            .execute(&mut *tx).await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query("DELETE FROM access_tokens WHERE tenant_id = $1 AND account_id = $2")
                .bind(tenant).bind(account).execute(&mut *tx).await?;
            sqlx::query(CHANGED).bind(Change::TOKENS).bind(tenant).bind(now_ms).execute(&mut *tx).await?;
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(())
        })
    }

    /// Takes one login attempt of an active account, before its password is checked: counted
    /// at once, so that attempts in flight together cannot outrun the lockout, and the one that
    /// reaches `max_failures` locks the account until `lock_until`. False (nothing counted) when
    /// the account is locked or not active; an expired lock starts the count again.
    pub async fn take_attempt(&self, account: &str, now: i64, max_failures: i64, lock_until: i64) -> StoreResult<bool> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            // The attempt that reaches the maximum locks the account at once (an attempt that
            // never finishes, cancelled or refused for load, still counts and can never leave it
            // locked for good); if its password is right, the login unlocks it.
            let taken = sqlx::query(
                "UPDATE accounts SET \
                 failures = CASE WHEN locked_until IS NOT NULL AND locked_until <= $3 THEN 1 ELSE failures + 1 END, \
                 locked_until = CASE \
                     WHEN locked_until IS NOT NULL AND locked_until <= $3 THEN CASE WHEN 1 >= $4 THEN $5 ELSE NULL END \
                     WHEN failures + 1 >= $4 THEN $5 ELSE locked_until END \
                 WHERE tenant_id = $1 AND id = $2 AND status = 'active' \
                 AND ((locked_until IS NULL AND failures < $4) OR locked_until <= $3)",
            )
            .bind(tenant).bind(account).bind(now).bind(max_failures).bind(lock_until)
            .execute(&mut *conn).await?;
            Ok(taken.rows_affected() == 1)
        })
    }

    /// Forgets the attempts counted: the password was right.
    pub async fn clear_failures(&self, account: &str) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            sqlx::query("UPDATE accounts SET failures = 0, locked_until = NULL WHERE tenant_id = $1 AND id = $2")
                .bind(tenant).bind(account).execute(&mut *conn).await?;
            Ok(())
        })
    }

    /// A refused login attempt's event (the attempt stays counted: [`Self::take_attempt`]).
    pub async fn login_refused(&self, event: &AuditRecord) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(())
        })
    }

    /// A successful login: the session token is stored, the failures (and a lock its own
    /// attempt set) forgotten and the time recorded, with the event. `NotFound` when the
    /// account changed meanwhile (no longer active, its role or password replaced) or the
    /// one-time code's step was used already.
    pub async fn logged_in(
        &self,
        account: &AccountRow,
        session: &NewXToken<'_>,
        totp_step: Option<i64>,
        event: &AuditRecord,
    ) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            // A one-time code's step is used once: a later login needs a later code.
            let done = sqlx::query(
                "UPDATE accounts SET failures = 0, locked_until = NULL, last_login = $3, \
                 totp_step = COALESCE($7, totp_step) \
                 WHERE tenant_id = $1 AND id = $2 AND status = 'active' AND password = $4 \
                 AND admin = $5 AND (role_id = $6 OR (role_id IS NULL AND $6 IS NULL)) \
                 AND ($7 IS NULL OR totp_step IS NULL OR totp_step < $7)",
            )
            .bind(tenant).bind(&account.id).bind(session.created_at).bind(&account.password)
            .bind(account.admin).bind(account.role_id).bind(totp_step)
            .execute(&mut *tx).await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query(
                "INSERT INTO access_tokens (id, tenant_id, digest, kind, created_at, expires_at, role_id, account_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(session.id).bind(tenant).bind(&session.digest[..]).bind(session.kind)
            .bind(session.created_at).bind(session.expires_at).bind(session.role_id).bind(&account.id)
            .execute(&mut *tx).await?;
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(())
        })
    }

    /// Ends one login session of `account`, with the event (on every replica). `NotFound` when
    /// it had ended already.
    pub async fn logout(&self, account: &str, session: &str, event: &AuditRecord, now_ms: i64) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let done = sqlx::query("DELETE FROM access_tokens WHERE tenant_id = $1 AND account_id = $2 AND id = $3")
                .bind(tenant).bind(account).bind(session).execute(&mut *tx).await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query(CHANGED).bind(Change::TOKENS).bind(tenant).bind(now_ms).execute(&mut *tx).await?;
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(())
        })
    }

    /// Replaces the sealed details (as read: `before`) and the second-factor flag of an active
    /// account, with the event. `NotFound` when it is gone, no longer active, or changed since.
    pub async fn set_details(
        &self,
        account: &str,
        before: &[u8],
        details: &[u8],
        totp: bool,
        event: &AuditRecord,
    ) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let done = sqlx::query(
                "UPDATE accounts SET details = $3, totp = $4 WHERE tenant_id = $1 AND id = $2 AND status = 'active' \
                 AND details = $5",
            )
            .bind(tenant).bind(account).bind(details).bind(totp).bind(before)
            .execute(&mut *tx).await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes an account, its tokens and its sessions (on every replica), with the event.
    pub async fn delete(&self, account: &str, event: &AuditRecord, now_ms: i64) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            sqlx::query("DELETE FROM access_tokens WHERE tenant_id = $1 AND account_id = $2")
                .bind(tenant).bind(account).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM account_tokens WHERE tenant_id = $1 AND account_id = $2")
                .bind(tenant).bind(account).execute(&mut *tx).await?;
            let done = sqlx::query("DELETE FROM accounts WHERE tenant_id = $1 AND id = $2")
                .bind(tenant).bind(account).execute(&mut *tx).await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query(CHANGED).bind(Change::TOKENS).bind(tenant).bind(now_ms).execute(&mut *tx).await?;
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(())
        })
    }
}
