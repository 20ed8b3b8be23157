//! The licence in force as this process knows it: read from the database at most every
//! [`TTL`], and dropped at once when the change feed says another replica installed one.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::format::Terms;
use crate::store::{self, Db, StoreResult};

/// How long the licence read is trusted without asking again: the bound on how late a replica
/// honours a new licence should it miss the change feed (which normally tells it within
/// [`crate::tenants::changes::POLL`]).
pub const TTL: Duration = Duration::from_secs(5);

/// The terms in force (`None`: no licence), cached with a generation counter so that a read
/// which started before a change cannot keep what it read once the change is known.
#[derive(Debug, Default)]
pub struct InForce {
    slot: Mutex<Slot>,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u64,
    cached: Option<(Option<Terms>, Instant)>,
}

impl InForce {
    /// The terms in force, from the cache or the database.
    pub async fn terms(&self, db: &Db) -> StoreResult<Option<Terms>> {
        let generation = {
            let slot = self.slot();
            if let Some((terms, _)) = slot.cached.as_ref().filter(|(_, at)| at.elapsed() < TTL) {
                return Ok(terms.clone());
            }
            slot.generation
        };
        let terms = store::licence::load(db).await?;
        let mut slot = self.slot();
        if slot.generation == generation {
            slot.cached = Some((terms.clone(), Instant::now()));
        }
        Ok(terms)
    }

    /// Knows `terms` as the ones in force at once (this process installed them).
    pub fn set(&self, terms: Terms) {
        let mut slot = self.slot();
        slot.generation += 1;
        slot.cached = Some((Some(terms), Instant::now()));
    }

    /// Forgets what was read: the next use reads the database (another replica changed it).
    pub fn forget(&self) {
        let mut slot = self.slot();
        slot.generation += 1;
        slot.cached = None;
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
