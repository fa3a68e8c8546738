-- Customers whose personal data was erased, known by a keyed hash of their id (data_keys.MasterKeys
-- .customer_digests; the id itself is stored nowhere): a repeated erasure answers as the first did, and
-- `recovery dlq replay` skips their dead letters.
CREATE TABLE erased_customers (
    digest      bytea       PRIMARY KEY,
    pseudonym   text        NOT NULL,
    case_ids    text[]      NOT NULL,
    erased_by   text        NOT NULL,
    erased_at   timestamptz NOT NULL
);
