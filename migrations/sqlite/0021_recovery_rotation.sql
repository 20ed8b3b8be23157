-- Two-phase recovery-key rotation: SystemRotateRecoveryKey keeps the recovery wrapping of the
-- main tenant's root (tenant 1, version 1) that the old shares open here while the new one is in
-- recovery_wrapped; either set of shares proves custody until the new shares are used once,
-- which drops this wrapping (the old shares open nothing from then on).
ALTER TABLE tenant_keys ADD COLUMN previous_recovery_wrapped BLOB;
