-- Crash recovery of recording chunks and integrity failures (recording/recover.go,
-- recording/FORMAT.md "Chunks recovered after a crash").
--
-- upload_id: the S3 multipart upload of a chunk being uploaded, stored when
--   the recorder creates it, so that after a crash the upload can be found,
--   completed from the parts that reached storage (or aborted when none did).
--   Cleared when the chunk is finished.
-- truncated: the chunk's object was completed by recovery and has no final
--   streaming-AEAD segment; plaintext_size is the length of the whole,
--   authenticated segments it holds, which is exactly what is served. A chunk
--   that is not truncated must end with its final segment (anything shorter is
--   an integrity failure).
-- integrity_failed_at: a segment of the object failed authentication when it
--   was read (modified or damaged ciphertext). The chunk is not served again.
ALTER TABLE recording_chunks
    ADD COLUMN upload_id           text CHECK (length(upload_id) BETWEEN 1 AND 1024),
    ADD COLUMN truncated           boolean NOT NULL DEFAULT false,
    ADD COLUMN plaintext_size      bigint CHECK (plaintext_size >= 0),
    ADD COLUMN integrity_failed_at timestamptz,
    ADD CONSTRAINT recording_chunks_truncated_size CHECK (NOT truncated OR plaintext_size IS NOT NULL);

-- Chunks still uploading: few (one per participant being recorded, plus any
-- awaiting recovery); the recovery loop and the multipart cleanup look them up.
CREATE INDEX recording_chunks_uploading ON recording_chunks (object_key) WHERE status = 'uploading';
