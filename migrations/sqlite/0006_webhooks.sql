-- Webhooks (SPEC §5.4). Audit events are the source: each new one is
-- dispatched once, turned into a delivery row per endpoint that wants its
-- type, and marked dispatched in the same transaction. Events recorded
-- before this migration count as dispatched (the default); new ones are
-- inserted undispatched.
alter table audit_event add column dispatched integer not null default 1;
create index audit_event_undispatched_idx on audit_event (created_at) where not dispatched;

-- One row per event and endpoint: the signed request's body, and its
-- delivery state (pending, sent, failed, disabled), claimed under a lease.
-- An endpoint is named by its key (a digest of its URL), never the URL,
-- whose path may hold a credential.
create table webhook_delivery (
    webhook_delivery_id text primary key not null,
    endpoint text not null,
    event_id text not null,
    event_type text not null,
    payload text not null,
    status text not null,
    attempts integer not null default 0,
    next_attempt_at integer not null,
    lease_until integer,
    give_up_at integer not null,
    last_error text,
    last_status integer,
    created_at integer not null,
    sent_at integer
);
create index webhook_delivery_due_idx on webhook_delivery (endpoint, status, next_attempt_at);
create index webhook_delivery_created_idx on webhook_delivery (created_at);
-- The minute's sweep of pending deliveries past their window.
create index webhook_delivery_expiry_idx on webhook_delivery (give_up_at) where status = 'pending';

-- An endpoint that answered 410 Gone is disabled until a replay.
create table webhook_endpoint (
    endpoint text primary key not null,
    disabled_at integer not null,
    reason text not null
);
