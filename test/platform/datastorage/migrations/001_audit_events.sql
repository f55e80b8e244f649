CREATE TABLE audit_events (
    id             BIGSERIAL PRIMARY KEY,
    correlation_id TEXT        NOT NULL,
    event_type     TEXT        NOT NULL,
    service        TEXT        NOT NULL,
    payload        JSONB       NOT NULL DEFAULT '{}'::jsonb,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
