CREATE INDEX audit_events_correlation ON audit_events (correlation_id, id);
