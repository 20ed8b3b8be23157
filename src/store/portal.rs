//! The data subject's portal login: captchas and one-time login codes, both as keyed digests
//! (see `migrations/*/0028_portal.sql`). A captcha is taken (deleted) whatever its answer; a
//! code counts an attempt before it is compared, and is deleted by the login it lets in.

use sqlx::Row;

use super::audit::{AuditRecord, insert as insert_audit};
use super::roles::{NewXToken, insert_xtoken};
use super::{Db, ScopedPool, StoreError, StoreResult, TenantScope, with_pool};

/// A live code, as a login attempt finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRow {
    /// The record id of the user it was sent to.
    pub user_rid: Vec<u8>,
    /// Keyed digest of the code.
    pub digest: Vec<u8>,
}

/// A code to store for one identity.
#[derive(Debug, Clone, Copy)]
pub struct NewCode<'a> {
    /// Keyed digest of the mode and identity it was asked for.
    pub identity_idx: &'a [u8],
    /// The record id of its user.
    pub user_rid: &'a [u8],
    /// Keyed digest of the code.
    pub digest: &'a [u8],
    /// Expiry (unix seconds).
    pub expires_at: i64,
}

/// The portal's captchas and codes of one tenant.
#[derive(Debug, Clone, Copy)]
pub struct Portal<'a>(pub(super) TenantScope<'a>);

impl Portal<'_> {
    /// Stores a captcha; `Busy` when the tenant already has `max_live` unexpired ones.
    pub async fn insert_captcha(
        &self,
        id: &str,
        answer: &[u8],
        now: i64,
        expires_at: i64,
        max_live: i64,
    ) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let live: i64 = sqlx::query("SELECT COUNT(*) FROM portal_captchas WHERE tenant_id = $1 AND expires_at > $2")
                .bind(tenant)
                .bind(now)
                .fetch_one(&mut *conn)
                .await?
                .try_get(0)?;
            if live >= max_live {
                return Err(StoreError::Busy("Too many captchas are outstanding: try again in a few minutes"));
            }
            sqlx::query("INSERT INTO portal_captchas (tenant_id, id, answer, expires_at) VALUES ($1, $2, $3, $4)")
                .bind(tenant)
                .bind(id)
                .bind(answer)
                .bind(expires_at)
                .execute(&mut *conn)
                .await?;
            Ok(())
        })
    }

    /// Takes a captcha (it is deleted, answered right or not): its answer digest and expiry.
    pub async fn take_captcha(&self, id: &str) -> StoreResult<Option<(Vec<u8>, i64)>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query(
                "DELETE FROM portal_captchas WHERE tenant_id = $1 AND id = $2 RETURNING answer, expires_at",
            )
            .bind(tenant)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
            Ok(match row {
                Some(row) => Some((row.try_get(0)?, row.try_get(1)?)),
                None => None,
            })
        })
    }

    /// Stores a code for an identity (replacing an earlier one, and its attempts) with its event.
    pub async fn issue_code(&self, code: &NewCode<'_>, event: &AuditRecord) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            sqlx::query(
                "INSERT INTO portal_codes (tenant_id, identity_idx, user_rid, digest, attempts, expires_at) \
                 VALUES ($1, $2, $3, $4, 0, $5) ON CONFLICT (tenant_id, identity_idx) DO UPDATE SET \
                 user_rid = excluded.user_rid, digest = excluded.digest, attempts = 0, expires_at = excluded.expires_at",
            )
            .bind(tenant)
            .bind(code.identity_idx)
            .bind(code.user_rid)
            .bind(code.digest)
            .bind(code.expires_at)
            .execute(&mut *tx)
            .await?;
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(())
        })
    }

    /// Counts an attempt at the identity's code: the code, when it is live and had attempts left.
    pub async fn attempt_code(&self, identity_idx: &[u8], now: i64, max_attempts: i64) -> StoreResult<Option<CodeRow>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query(
                "UPDATE portal_codes SET attempts = attempts + 1 WHERE tenant_id = $1 AND identity_idx = $2 \
                 AND expires_at > $3 AND attempts < $4 RETURNING user_rid, digest",
            )
            .bind(tenant)
            .bind(identity_idx)
            .bind(now)
            .bind(max_attempts)
            .fetch_optional(&mut *conn)
            .await?;
            Ok(match row {
                Some(row) => Some(CodeRow { user_rid: row.try_get(0)?, digest: row.try_get(1)? }),
                None => None,
            })
        })
    }

    /// Redeems the identity's code `digest` for an access token, with its event: `NotFound` when
    /// the code was taken meanwhile (another login) or its user is gone.
    pub async fn redeem_code(
        &self,
        identity_idx: &[u8],
        digest: &[u8],
        token: &NewXToken<'_>,
        event: &AuditRecord,
    ) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        let lock = if matches!(db, Db::Postgres(_)) { " FOR SHARE" } else { "" };
        let live = format!("SELECT 1 FROM users WHERE tenant_id = $1 AND rid = $2 AND held_until IS NULL{lock}");
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let taken = sqlx::query("DELETE FROM portal_codes WHERE tenant_id = $1 AND identity_idx = $2 AND digest = $3")
                .bind(tenant)
                .bind(identity_idx)
                .bind(digest)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if taken != 1 {
                return Err(StoreError::NotFound);
            }
            let Some(rid) = token.user_rid else { return Err(StoreError::NotFound) };
            if sqlx::query(&live).bind(tenant).bind(rid).fetch_optional(&mut *tx).await?.is_none() {
                return Err(StoreError::NotFound);
            }
            insert_xtoken!(&mut *tx, tenant, token);
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(())
        })
    }
}

/// Removes captchas and codes past their expiry, in every tenant (the sweeper); how many.
pub async fn sweep_expired(db: &Db, now: i64) -> StoreResult<u64> {
    with_pool!(db, pool => {
        let mut tx = pool.begin_all().await?;
        let captchas =
            sqlx::query("DELETE FROM portal_captchas WHERE expires_at <= $1").bind(now).execute(&mut *tx).await?;
        let codes = sqlx::query("DELETE FROM portal_codes WHERE expires_at <= $1").bind(now).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(captchas.rows_affected() + codes.rows_affected())
    })
}
