-- A start supersedes only its login's unexpired flows, found through
-- recovery_flow_address_idx (address_key, created_at) like every other read
-- by login key. The second index on address_key cost every start one more
-- random index page to write, and every superseded flow two.
drop index recovery_flow_address_state_idx;
