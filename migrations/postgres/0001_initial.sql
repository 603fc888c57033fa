-- latchkey schema (PostgreSQL). Times are Unix milliseconds (BIGINT) so the
-- same queries work on SQLite (INTEGER). Secrets never appear here in
-- plaintext: codes and tokens are HMAC-SHA-256 hex, payloads are sealed.

-- Server-wide values generated once and shared by every instance
-- (the HMAC secret when none is configured).
create table setting (
    setting_key text primary key not null,
    value       text not null,
    created_at  bigint not null
);

-- Ed25519 keys that sign JWTs; the private half is sealed under the secret.
-- A key is active until retired_at; it stays in the JWKS until published_until.
create table signing_key (
    signing_key_id     text primary key not null,
    sealed_private_key bytea not null,
    public_key         bytea not null,
    created_at         bigint not null,
    retired_at         bigint,
    published_until    bigint
);

create table identity (
    identity_id   text primary key not null,
    -- NFKC, lower-cased; unique when present.
    username      text unique,
    -- PHC string (Argon2id); null until the person sets a password.
    password_hash text,
    -- JSON array of role names.
    roles         text not null default '[]',
    created_at    bigint not null,
    updated_at    bigint not null
);

-- Email addresses and phone numbers; a code is only ever sent to a verified one.
create table address (
    address_id  text primary key not null,
    identity_id text not null references identity (identity_id) on delete cascade,
    kind        text not null check (kind in ('email', 'phone')),
    value       text not null,
    verified    boolean not null default false,
    created_at  bigint not null,
    unique (kind, value)
);
create index address_identity_idx on address (identity_id);

-- The placeholder account: a lookup for a login that has no account
-- answers this row instead of nothing, so known and unknown logins read the
-- same rows (see identity::find_by_login). No login can reach it: its one
-- address is the empty string, which never parses.
insert into identity (identity_id, username, password_hash, roles, created_at, updated_at)
values ('00000000-0000-0000-0000-000000000000', null, null, '[]', 0, 0);
insert into address (address_id, identity_id, kind, value, verified, created_at)
values ('00000000-0000-0000-0000-000000000000', '00000000-0000-0000-0000-000000000000', 'email', '', false, 0);

-- One recovery attempt. A flow for an unknown or unverified login is a
-- decoy: it has the same shape, including a random identity_id that names
-- no account (so its rows land in the indexes like a real flow's), and it
-- can never succeed.
create table recovery_flow (
    recovery_flow_id text primary key not null,
    -- No foreign key on purpose: a decoy's identity_id names no account.
    -- Deleting an identity deletes its flows explicitly.
    identity_id      text not null,
    decoy            boolean not null,
    -- HMAC of the normalised address, for the per-address start limit.
    address_key      text not null,
    channel          text not null,
    -- HMAC of the current cookie/token secret; rotated on verify.
    cookie_hash      text not null unique,
    -- HMAC of the code; null once used or killed.
    code_hash        text,
    state            text not null check (state in ('sent', 'verified', 'used', 'dead')),
    -- Code attempts spent (reserved before each comparison).
    code_attempts    bigint not null default 0,
    locale           text not null,
    expires_at       bigint not null,
    created_at       bigint not null,
    verified_at      bigint,
    used_at          bigint
);
create index recovery_flow_address_idx on recovery_flow (address_key, created_at);
create index recovery_flow_identity_idx on recovery_flow (identity_id, created_at);

create table session (
    session_id       text primary key not null,
    identity_id      text not null references identity (identity_id) on delete cascade,
    -- HMAC of the opaque session token.
    token_hash       text not null unique,
    authenticated_at bigint not null,
    expires_at       bigint not null,
    revoked_at       bigint,
    ip_address       text,
    user_agent       text,
    created_at       bigint not null
);
create index session_identity_idx on session (identity_id);

-- Refresh tokens of the token dialect. Each use spends the token and issues
-- the next one in the same family; presenting a spent one revokes the family.
create table refresh_token (
    refresh_token_id text primary key not null,
    family_id        text not null,
    session_id       text not null references session (session_id) on delete cascade,
    identity_id      text not null references identity (identity_id) on delete cascade,
    -- HMAC of the opaque refresh token.
    token_hash       text not null unique,
    expires_at       bigint not null,
    spent_at         bigint,
    revoked_at       bigint,
    created_at       bigint not null
);
create index refresh_token_family_idx on refresh_token (family_id);

-- The courier's outbox, written in the same transaction as the flow that
-- needs the message. The payload (recipient, template, values) is sealed,
-- and erased once the message is delivered or given up.
-- A 'void' row is the decoy an unknown login writes so that both paths do
-- the same work; it is never sent.
create table outbox_message (
    outbox_message_id text primary key not null,
    -- Whom the message concerns (for the audit trail); null for decoys.
    identity_id       text,
    channel           text not null check (channel in ('email', 'sms')),
    sealed_payload    bytea,
    status            text not null check (status in ('pending', 'sent', 'failed', 'void')),
    attempts          bigint not null default 0,
    next_attempt_at   bigint not null,
    lease_until       bigint,
    last_error        text,
    created_at        bigint not null,
    sent_at           bigint
);
create index outbox_message_due_idx on outbox_message (status, next_attempt_at);

-- Consecutive failed logins per typed identifier (keyed hash), for
-- slowing down and then locking password guessing. Unknown identifiers are
-- throttled exactly like known ones.
create table login_throttle (
    throttle_key text primary key not null,
    failures     bigint not null,
    locked_until bigint not null default 0,
    updated_at   bigint not null
);

-- Who did what, when, from where. Never a secret.
create table audit_event (
    audit_event_id text primary key not null,
    identity_id    text,
    kind           text not null,
    ip_address     text,
    user_agent     text,
    detail         text not null default '{}',
    created_at     bigint not null
);
create index audit_event_identity_idx on audit_event (identity_id, created_at);
create index audit_event_created_idx on audit_event (created_at);
