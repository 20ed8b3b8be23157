-- Files: one row per stored file, owned by a user and erased with it (ON DELETE CASCADE).
--
-- Nothing personal is in clear. The filename, MIME type and tag list are sealed under the owner's
-- data key (`meta`); the file's own random key is sealed under the same data key (`file_key`),
-- and the content is encrypted chunk by chunk under that file key. `name_idx` and `content_idx`
-- are HMACs under keys derived from the owner's data key (lookup by filename, de-duplication of
-- identical content), so they die with the user too. `file_tags` holds an HMAC per tag under a
-- tenant key, for the tag filters. `size` and the lifetime stay in clear.
--
-- The content lives in `file_chunks` (the embedded default) or, when a file directory is
-- configured, in one blob file per row (`in_dir`). Deleting such a row, directly or through the
-- cascade from its user, queues its blob in `file_blobs_gone` (trigger below) in the same
-- transaction; the delete paths and the retention sweeper unlink the queued blobs.

CREATE TABLE files (
    id           BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    BIGINT  NOT NULL REFERENCES tenants (id),
    fileuuid     TEXT    NOT NULL,
    rid          BYTEA   NOT NULL REFERENCES users (rid) ON DELETE CASCADE,
    name_idx     BYTEA   NOT NULL,
    content_idx  BYTEA   NOT NULL,
    meta         BYTEA   NOT NULL,
    file_key     BYTEA   NOT NULL,
    size         BIGINT  NOT NULL,
    in_dir       BOOLEAN NOT NULL,
    created_at   BIGINT  NOT NULL,
    sliding_secs BIGINT,
    final_at     BIGINT,
    expires_at   BIGINT,
    CONSTRAINT files_uuid_key UNIQUE (tenant_id, fileuuid),
    CONSTRAINT files_content_key UNIQUE (tenant_id, rid, content_idx)
);
CREATE INDEX files_owner ON files (rid, id);
CREATE INDEX files_owner_name ON files (rid, name_idx, id);
CREATE INDEX files_expires_at ON files (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE file_tags (
    file_id      BIGINT  NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    tenant_id    BIGINT  NOT NULL,
    tag_idx      BYTEA   NOT NULL,
    PRIMARY KEY (file_id, tag_idx)
);
CREATE INDEX file_tags_tenant_tag ON file_tags (tenant_id, tag_idx, file_id);

CREATE TABLE file_chunks (
    file_id      BIGINT  NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    seq          BIGINT  NOT NULL,
    data         BYTEA   NOT NULL,
    PRIMARY KEY (file_id, seq)
);

CREATE TABLE file_blobs_gone (
    tenant_id    BIGINT  NOT NULL,
    fileuuid     TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, fileuuid)
);

CREATE FUNCTION files_blob_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO file_blobs_gone (tenant_id, fileuuid) VALUES (OLD.tenant_id, OLD.fileuuid) ON CONFLICT DO NOTHING;
    RETURN OLD;
END
$$;

CREATE TRIGGER files_blob_gone AFTER DELETE ON files FOR EACH ROW WHEN (OLD.in_dir)
    EXECUTE FUNCTION files_blob_gone();

-- Ciphertext does not compress: store chunks out of line without trying.
ALTER TABLE file_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
