-- Two-phase wrapping-key rotation: SystemGenerateWrappingKey stores the new wrapping of every
-- master key beside the one in force, with the new key's check value; both keys open the vault
-- until a start with the new key promotes it (wrapped := next_wrapped, kek_check :=
-- next_kek_check) and clears these columns in one transaction.
ALTER TABLE tenant_keys ADD COLUMN next_wrapped BLOB;
ALTER TABLE vault_meta ADD COLUMN next_kek_check BLOB;
