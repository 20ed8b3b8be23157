-- A profile deleted by SystemDeleteUserProfiles is held, not erased: `held_until` (unix
-- seconds) is set, every read path treats the row as absent, and SystemRestoreUserProfile may
-- clear it until then. After it the retention sweeper erases the user exactly as UserDelete
-- does (its data key goes with the row). NULL for every live user. The held row keeps its
-- blind indexes, so a new profile cannot take its identities while it can still be restored.
ALTER TABLE users ADD COLUMN held_until BIGINT;
CREATE INDEX users_held_until ON users (held_until) WHERE held_until IS NOT NULL;
