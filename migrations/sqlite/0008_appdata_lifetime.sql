-- App data lifetimes: like a user, an app record may carry a sliding period and/or a fixed end.
-- A record without either never expires on its own (it still goes with its user).

ALTER TABLE userapps ADD COLUMN sliding_secs INTEGER;
ALTER TABLE userapps ADD COLUMN final_at INTEGER;
ALTER TABLE userapps ADD COLUMN expires_at INTEGER;
CREATE INDEX userapps_expires_at ON userapps (expires_at) WHERE expires_at IS NOT NULL;
