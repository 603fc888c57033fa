-- A start supersedes its login's live flow. Found through
-- recovery_flow_address_idx, that meant reading every flow the login ever
-- had (each on its own table page) to find the one that is still 'sent'.
-- Each start supersedes the ones before it, so this index holds about one
-- entry per login, and a start reads only the flow it supersedes.
create index recovery_flow_live_idx on recovery_flow (address_key) where state = 'sent';
