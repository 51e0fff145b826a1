-- The append-only journal: one row per business event, numbered without gaps, hash-chained.
-- record holds the wire JSON so replication never re-serialises what was committed.
CREATE TABLE journal (
    seq        INTEGER PRIMARY KEY CHECK (seq >= 1),
    kind       TEXT    NOT NULL,
    ts         INTEGER NOT NULL,
    prev_hash  TEXT    NOT NULL,
    hash       TEXT    NOT NULL UNIQUE,
    record     TEXT    NOT NULL
) STRICT;

-- What the cloud has acknowledged as durable: a single contiguous high-water mark.
CREATE TABLE replication (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    acked_seq  INTEGER NOT NULL DEFAULT 0,
    acked_at   INTEGER
) STRICT;
INSERT INTO replication (id, acked_seq) VALUES (1, 0);

-- Gap-free counters per register (receipt numbers).
CREATE TABLE counters (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
) STRICT;

-- Business tables, written in the same transaction as their journal record.
CREATE TABLE sales (
    sale_id       TEXT    PRIMARY KEY,
    register_id   TEXT    NOT NULL,
    receipt_no    INTEGER NOT NULL,
    journal_seq   INTEGER NOT NULL UNIQUE REFERENCES journal (seq),
    currency      TEXT    NOT NULL,
    total_minor   INTEGER NOT NULL,
    tendered_minor INTEGER NOT NULL,
    change_minor  INTEGER NOT NULL,
    ts            INTEGER NOT NULL,
    UNIQUE (register_id, receipt_no)
) STRICT;

CREATE TABLE sale_lines (
    sale_id            TEXT    NOT NULL REFERENCES sales (sale_id),
    line_no            INTEGER NOT NULL,
    sku                TEXT    NOT NULL,
    description        TEXT    NOT NULL,
    quantity           TEXT    NOT NULL,
    unit_price_minor   INTEGER NOT NULL,
    amount_minor       INTEGER NOT NULL,
    PRIMARY KEY (sale_id, line_no)
) STRICT;

CREATE TABLE sale_tenders (
    sale_id       TEXT    NOT NULL REFERENCES sales (sale_id),
    tender_no     INTEGER NOT NULL,
    kind          TEXT    NOT NULL,
    amount_minor  INTEGER NOT NULL,
    reference     TEXT,
    PRIMARY KEY (sale_id, tender_no)
) STRICT;
