-- "This wasn't me" (SPEC §5.3). A frozen identity has no password login and
-- no recovery until an operator unfreezes it; a paused one gets no new code
-- until the pause ends. A report link is single-use: its digest is written
-- here, in the transaction of what it did, and a second use finds it.
alter table identity add column frozen_at bigint;
alter table identity add column recovery_paused_until bigint;
create table spent_link (
    link_digest text primary key,
    identity_id text not null,
    kind text not null,
    expires_at bigint not null,
    spent_at bigint not null
);
