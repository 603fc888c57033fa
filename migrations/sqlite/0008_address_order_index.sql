-- An identity is read with its addresses in order (created_at, kind,
-- value): every session check, login and start. Through
-- address_identity_idx that order needed a temporary B-tree per read;
-- this index hands the addresses over in it.
create index address_identity_order_idx on address (identity_id, created_at, kind, value);
drop index address_identity_idx;
