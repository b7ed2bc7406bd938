-- Gifts, their accepted send requests, and the outbox of messages still to publish.
CREATE TABLE gifts (
    id          uuid PRIMARY KEY,
    code        text        NOT NULL,
    amount      bigint      NOT NULL CHECK (amount > 0),
    message     text        CHECK (char_length(message) <= 500),
    status      text        NOT NULL DEFAULT 'CREATED'
                            CHECK (status IN ('CREATED', 'QUEUED', 'SENT', 'FAILED')),
    last_error  text,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    CONSTRAINT gifts_code_key UNIQUE (code)
);

-- The relay's stale-QUEUED sweep reads only QUEUED gifts by age.
CREATE INDEX gifts_queued_by_updated_at ON gifts (updated_at) WHERE status = 'QUEUED';

CREATE TABLE send_requests (
    gift_id     uuid        NOT NULL REFERENCES gifts (id),
    request_id  text        NOT NULL CHECK (char_length(request_id) BETWEEN 1 AND 255),
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (gift_id, request_id)
);

-- One row per accepted send whose queue message is not yet known to be published.
CREATE TABLE outbox (
    gift_id      uuid        NOT NULL,
    request_id   text        NOT NULL,
    available_at timestamptz NOT NULL,
    PRIMARY KEY (gift_id, request_id),
    FOREIGN KEY (gift_id, request_id) REFERENCES send_requests (gift_id, request_id)
);

CREATE INDEX outbox_by_available_at ON outbox (available_at);
