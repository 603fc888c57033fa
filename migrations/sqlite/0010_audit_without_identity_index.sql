-- An audit event's identity is null for a login without an account, and
-- an index keyed by it put those rows on the same hot page every time and a
-- known account's on a page of its own: a start for a known address wrote
-- a few microseconds longer than one for an unknown address (SECURITY.md,
-- the timing tests). No query read through it: the audit listing walks
-- audit_event_created_idx and filters by identity.
drop index audit_event_identity_idx;
