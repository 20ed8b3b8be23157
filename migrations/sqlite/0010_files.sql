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
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    INTEGER NOT NULL REFERENCES tenants (id),
    fileuuid     TEXT    NOT NULL,
    rid          BLOB    NOT NULL REFERENCES users (rid) ON DELETE CASCADE,
    name_idx     BLOB    NOT NULL,
    content_idx  BLOB    NOT NULL,
    meta         BLOB    NOT NULL,
    file_key     BLOB    NOT NULL,
    size         INTEGER NOT NULL,
    in_dir       BOOLEAN NOT NULL,
    created_at   INTEGER NOT NULL,
    sliding_secs INTEGER,
    final_at     INTEGER,
    expires_at   INTEGER,
    CONSTRAINT files_uuid_key UNIQUE (tenant_id, fileuuid),
    CONSTRAINT files_content_key UNIQUE (tenant_id, rid, content_idx)
);
CREATE INDEX files_owner ON files (rid, id);
CREATE INDEX files_owner_name ON files (rid, name_idx, id);
CREATE INDEX files_expires_at ON files (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE file_tags (
    file_id      INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    tenant_id    INTEGER NOT NULL,
    tag_idx      BLOB    NOT NULL,
    PRIMARY KEY (file_id, tag_idx)
);
CREATE INDEX file_tags_tenant_tag ON file_tags (tenant_id, tag_idx, file_id);

CREATE TABLE file_chunks (
    file_id      INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    data         BLOB    NOT NULL,
    PRIMARY KEY (file_id, seq)
);

CREATE TABLE file_blobs_gone (
    tenant_id    INTEGER NOT NULL,
    fileuuid     TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, fileuuid)
);

CREATE TRIGGER files_blob_gone AFTER DELETE ON files FOR EACH ROW WHEN OLD.in_dir
BEGIN
    INSERT OR IGNORE INTO file_blobs_gone (tenant_id, fileuuid) VALUES (OLD.tenant_id, OLD.fileuuid);
END;
