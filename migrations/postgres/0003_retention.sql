-- Retention (`latchkey purge` and the hourly purge of `serve`) deletes rows
-- by age; these indexes keep each batch from scanning whole tables.
create index recovery_flow_expires_idx on recovery_flow (expires_at);
create index outbox_message_created_idx on outbox_message (created_at);
create index login_throttle_updated_idx on login_throttle (updated_at);
create index session_expires_idx on session (expires_at);

-- Decoy ("void") rows keep no payload.
update outbox_message set sealed_payload = null where status = 'void';
