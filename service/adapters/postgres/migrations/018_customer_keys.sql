-- The customer's words, sealed: one data key per customer (adapters/postgres/data_keys.py), wrapped by the
-- master key named in master_key_id. Deleting a customer's row makes every text sealed with it unreadable.
CREATE TABLE customer_keys (
    key_id        uuid        PRIMARY KEY,
    customer_id   text        NOT NULL UNIQUE,
    master_key_id text        NOT NULL,
    wrapped       bytea       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customer_keys_by_master ON customer_keys (master_key_id);

-- Each signal's text as it landed on its case, sealed with its customer's key; null for signals logged
-- before texts were kept and for signals without text.
ALTER TABLE signal_log ADD COLUMN text text;
