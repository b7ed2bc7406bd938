-- The embedded store and queue of the local service, in one file.
-- Times are integer microseconds since the Unix epoch.
CREATE TABLE gifts (
    id          TEXT    PRIMARY KEY,
    code        TEXT    NOT NULL UNIQUE,
    amount      INTEGER NOT NULL CHECK (amount > 0),
    message     TEXT,
    status      TEXT    NOT NULL DEFAULT 'CREATED'
                        CHECK (status IN ('CREATED', 'QUEUED', 'SENT', 'FAILED')),
    last_error  TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE INDEX gifts_queued_by_updated_at ON gifts (updated_at) WHERE status = 'QUEUED';

CREATE TABLE send_requests (
    gift_id     TEXT    NOT NULL REFERENCES gifts (id),
    request_id  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (gift_id, request_id)
);

CREATE TABLE outbox (
    gift_id      TEXT    NOT NULL,
    request_id   TEXT    NOT NULL,
    available_at INTEGER NOT NULL,
    PRIMARY KEY (gift_id, request_id)
);

CREATE INDEX outbox_by_available_at ON outbox (available_at);

-- The embedded queue: SQS semantics (visibility timeout, receive count, dead letters).
CREATE TABLE queue_messages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    body          TEXT    NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    visible_at    INTEGER NOT NULL,
    receipt       TEXT
);

CREATE INDEX queue_messages_by_visible_at ON queue_messages (visible_at);

CREATE TABLE dead_letters (
    id            INTEGER PRIMARY KEY,
    body          TEXT    NOT NULL,
    receive_count INTEGER NOT NULL,
    moved_at      INTEGER NOT NULL
);
