-- A verify that wins an attempt sums the account's code attempts of the
-- last day. Through recovery_flow_identity_idx that read walked every flow
-- of the account, so flows a stranger started by one of its logins (a
-- username, free but for the start limit) slowed a verify on another (an
-- email): a timing link between the two logins (SECURITY.md). A flow
-- without an attempt adds nothing to the sum. This index holds only the
-- others, and each of those cost a guess from a daily budget.
create index recovery_flow_attempted_idx on recovery_flow (identity_id, created_at) where code_attempts > 0;
-- Here the reservation's update, which raises code_attempts, can no longer
-- be HOT; that is the same for a decoy's flow as for an account's.
