-- A counter bumped by every password change (recovery, operator), never by
-- a rehash. A login remembers the epoch it verified the password under and
-- creates its session only if the epoch is still current, in the same
-- transaction as the insert: a login that verified the old password while a
-- reset was committing can never leave a live session behind.
alter table identity add column credential_epoch integer not null default 0;

-- Starts supersede and are limited by the typed login's key, so the flows
-- of one key are read on every start.
create index recovery_flow_address_state_idx on recovery_flow (address_key, state);
