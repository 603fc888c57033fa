-- SQLite checks `x in ('a', 'b', 'c', …)` (more than two values) by
-- building a temporary B-tree of the list, each time a row is written: a
-- start wrote three of them (its flow, the flow it superseded, its outbox
-- row) and a delivery one more. The same rules written as comparisons cost
-- nothing of the kind. SQLite cannot change a table's checks in place, so
-- the two tables are rebuilt, with their rows and indexes as they were.

create table recovery_flow_new (
    recovery_flow_id text primary key not null,
    -- No foreign key on purpose: a decoy's identity_id names no account.
    -- Deleting an identity deletes its flows explicitly.
    identity_id      text not null,
    decoy            integer not null,
    -- HMAC of the normalised address, for the per-address start limit.
    address_key      text not null,
    channel          text not null,
    -- HMAC of the current cookie/token secret; rotated on verify.
    cookie_hash      text not null unique,
    -- HMAC of the code; null once used or killed.
    code_hash        text,
    state            text not null
                     check (state = 'sent' or state = 'verified' or state = 'used' or state = 'dead'),
    -- Code attempts spent (reserved before each comparison).
    code_attempts    integer not null default 0,
    locale           text not null,
    expires_at       integer not null,
    created_at       integer not null,
    verified_at      integer,
    used_at          integer
);
insert into recovery_flow_new (recovery_flow_id, identity_id, decoy, address_key, channel, cookie_hash, code_hash,
        state, code_attempts, locale, expires_at, created_at, verified_at, used_at)
    select recovery_flow_id, identity_id, decoy, address_key, channel, cookie_hash, code_hash,
        state, code_attempts, locale, expires_at, created_at, verified_at, used_at
    from recovery_flow order by rowid;
drop table recovery_flow;
alter table recovery_flow_new rename to recovery_flow;
create index recovery_flow_address_idx on recovery_flow (address_key, created_at);
create index recovery_flow_identity_idx on recovery_flow (identity_id, created_at);
create index recovery_flow_expires_idx on recovery_flow (expires_at);
create index recovery_flow_live_idx on recovery_flow (address_key) where state = 'sent';

create table outbox_message_new (
    outbox_message_id text primary key not null,
    -- Whom the message concerns (for the audit trail); null for decoys.
    identity_id       text,
    channel           text not null check (channel = 'email' or channel = 'sms'),
    sealed_payload    blob,
    status            text not null
                      check (status = 'pending' or status = 'sent' or status = 'failed' or status = 'void'),
    attempts          integer not null default 0,
    next_attempt_at   integer not null,
    lease_until       integer,
    last_error        text,
    created_at        integer not null,
    sent_at           integer
);
insert into outbox_message_new (outbox_message_id, identity_id, channel, sealed_payload, status, attempts,
        next_attempt_at, lease_until, last_error, created_at, sent_at)
    select outbox_message_id, identity_id, channel, sealed_payload, status, attempts,
        next_attempt_at, lease_until, last_error, created_at, sent_at
    from outbox_message order by rowid;
drop table outbox_message;
alter table outbox_message_new rename to outbox_message;
create index outbox_message_due_idx on outbox_message (status, next_attempt_at);
create index outbox_message_created_idx on outbox_message (created_at);
