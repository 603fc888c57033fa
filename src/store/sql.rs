//! The SQL both backends run, written once. PostgreSQL (through sqlx) and
//! SQLite (through rusqlite) both read `$n` placeholders; the SQLite backend
//! binds them by name, so a statement may use them in any order. What only
//! one dialect can say (`for share`, `skip locked`, casts) lives in that
//! backend's module.

/// The columns and joins of a session check (`SessionIdentityRow`), up to
/// the condition that picks the session.
macro_rules! session_with_identity {
    () => {
        "select s.session_id, s.token_hash, s.authenticated_at, s.expires_at, s.revoked_at, s.ip_address, \
         s.user_agent, s.created_at as session_created_at, i.identity_id, i.username, i.password_hash, i.roles, \
         i.created_at, i.updated_at, i.credential_epoch, i.frozen_at, i.recovery_paused_until, \
         a.address_id, a.kind, a.value, a.verified, a.created_at as address_created_at \
         from session s join identity i on i.identity_id = s.identity_id and i.identity_id <> $2 \
         left join address a on a.identity_id = i.identity_id where "
    };
}
macro_rules! order_addresses {
    () => {
        " order by a.created_at, a.kind, a.value"
    };
}

pub const SETTING: &str = "select value from setting where setting_key = $1";
pub const DELETE_SETTING: &str = "delete from setting where setting_key = $1";
/// Counts a setting up by one (from 1), as decimal text.
pub const BUMP_SETTING: &str = "insert into setting (setting_key, value, created_at) values ($1, '1', $2) \
     on conflict (setting_key) do update set value = cast(cast(setting.value as bigint) + 1 as text), \
     created_at = excluded.created_at";
pub const INSERT_SETTING: &str = "insert into setting (setting_key, value, created_at) values ($1, $2, $3) \
     on conflict (setting_key) do nothing";

pub const SIGNING_KEYS: &str = "select * from signing_key order by created_at desc, signing_key_id desc";
pub const INSERT_SIGNING_KEY: &str = "insert into signing_key (signing_key_id, sealed_private_key, public_key, \
     created_at, retired_at, published_until) values ($1, $2, $3, $4, $5, $6)";
pub const RETIRE_SIGNING_KEYS: &str = "update signing_key set retired_at = $2, published_until = $3 \
     where signing_key_id <> $1 and retired_at is null";
/// Retires a key at once, whether or not it was retired before.
pub const RETIRE_SIGNING_KEY_NOW: &str = "update signing_key set retired_at = coalesce(retired_at, $2), \
       published_until = $2 \
     where signing_key_id = $1";

pub const INSERT_IDENTITY: &str = "insert into identity (identity_id, username, password_hash, roles, created_at, \
     updated_at) values ($1, $2, $3, $4, $5, $6)";
pub const INSERT_ADDRESS: &str = "insert into address (address_id, identity_id, kind, value, verified, created_at) \
     values ($1, $2, $3, $4, $5, $6)";
/// `$2` is the placeholder identity, which no operation may touch.
pub const IDENTITY: &str = "select * from identity where identity_id = $1 and identity_id <> $2";
/// The identity a login names, with its addresses: a row per address.
/// A login without an account reads instead the account at its keyed place
/// in the table (`$elsewhere`, each backend's own way of finding a row by
/// position, `store::places`, wrapping around to the first row), and only
/// in an empty table the placeholder (`$3`). So an unknown login reads as
/// many rows, from pages as cold, as a known one, and rows an attacker
/// cannot predict, as they could if it read, say, the account that sorts
/// next: the same rows each time it is repeated, and after the table grows
/// (SECURITY.md, timing and Known limits). `IdentityAddressRow::named_by`
/// keeps the rows only if they are the login's.
macro_rules! identity_by_login {
    ($at_login:expr, $elsewhere:expr) => {
        concat!(
            "select i.*, a.address_id, a.kind, a.value, a.verified, a.created_at as address_created_at \
             from identity i left join address a on a.identity_id = i.identity_id \
             where i.identity_id = coalesce(",
            $at_login,
            ", ",
            $elsewhere,
            ", $3) order by a.created_at, a.kind, a.value"
        )
    };
}
pub(super) use identity_by_login;
/// For an address login: `$1` its kind, `$2` its value (`$4` is its place).
macro_rules! address_at_login {
    () => {
        "(select identity_id from address where kind = $1 and value = $2)"
    };
}
pub(super) use address_at_login;
/// For a username: `$1` (`$2` is its place).
macro_rules! username_at_login {
    () => {
        "(select identity_id from identity where username = $1)"
    };
}
pub(super) use username_at_login;
/// An identity (`$1`, never the placeholder `$2`) with its addresses: a row per address.
pub const IDENTITY_WITH_ADDRESSES: &str = "select i.*, a.address_id, a.kind, a.value, a.verified, \
       a.created_at as address_created_at \
     from identity i left join address a on a.identity_id = i.identity_id \
     where i.identity_id = $1 and i.identity_id <> $2 \
     order by a.created_at, a.kind, a.value";
/// A session check in one statement: the session whose token hash is `$1`
/// with its identity (never the placeholder `$2`) and a row per address.
pub const SESSION_WITH_IDENTITY_BY_TOKEN: &str =
    concat!(session_with_identity!(), "s.token_hash = $1", order_addresses!());
/// The same for the session whose id is `$1` (a JWT's `sid`).
pub const SESSION_WITH_IDENTITY_BY_ID: &str =
    concat!(session_with_identity!(), "s.session_id = $1", order_addresses!());
pub const ADDRESSES: &str = "select * from address where identity_id = $1 order by created_at, kind, value";
pub const LIST_IDENTITIES: &str =
    "select * from identity where identity_id <> $3 order by created_at, identity_id limit $1 offset $2";
pub const DELETE_IDENTITY: &str = "delete from identity where identity_id = $1 and identity_id <> $2";
/// A deleted identity's flows, once closed (`CLOSE_IDENTITY_FLOWS`), are
/// kept as decoys of no account (retention deletes them with the rest): a
/// stranger who started one keeps a flow that answers as an unknown login's
/// would, and the login's start limit and code budget, which count its
/// flows, stay where they were, rather than telling by a change that the
/// address had an account (SPEC §2.10).
pub const DETACH_IDENTITY_FLOWS: &str =
    "update recovery_flow set identity_id = recovery_flow_id, decoy = true where identity_id = $1";
pub const UPDATE_PASSWORD_HASH: &str =
    "update identity set password_hash = $3, updated_at = $4 where identity_id = $1 and password_hash = $2";
/// An operator's changes: `$2` says whether the username (`$3`) changes; a
/// new password (`$5`) bumps the credential epoch.
pub const UPDATE_IDENTITY: &str = "update identity set \
       username = case when $2 then $3 else username end, \
       roles = coalesce($4, roles), \
       password_hash = coalesce($5, password_hash), \
       credential_epoch = case when $5 is null then credential_epoch else credential_epoch + 1 end, \
       updated_at = $6 \
     where identity_id = $1 and identity_id <> $7";
pub const SET_ADDRESS_VERIFIED: &str =
    "update address set verified = $4 where identity_id = $1 and kind = $2 and value = $3";

/// A start's flow row (`$1`…`$10`, `$13`), written only while the login key
/// started fewer than `$12` flows since `$11`.
pub const INSERT_FLOW: &str = "insert into recovery_flow (recovery_flow_id, identity_id, address_key, channel, \
       cookie_hash, code_hash, state, code_attempts, locale, expires_at, created_at, decoy) \
     select $1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $10, $13 \
     where (select count(*) from recovery_flow where address_key = $3 and created_at > $11) < $12";
/// A new flow (`$2`) supersedes the older live flows (unexpired at `$3`) of
/// the same typed login (`$1`), whether or not it names an account, so what
/// happens to them tells nothing. These are those flows; SQLite ends each
/// with `KILL_FLOW`, and PostgreSQL's start statement ends them in place.
/// On SQLite they are found through `recovery_flow_live_idx` (a login's
/// flows in state 'sent'); PostgreSQL has no such index
/// (`migrations/sqlite/0007_live_flow_index.sql` says why).
pub const LIVE_FLOWS: &str = "select recovery_flow_id from recovery_flow \
     where address_key = $1 and state = 'sent' and recovery_flow_id <> $2 and expires_at > $3";
/// When the oldest start in the window was made, for a refused start's retry time.
pub const OLDEST_START: &str =
    "select coalesce(min(created_at), $2) from recovery_flow where address_key = $1 and created_at > $2";
pub const INSERT_OUTBOX: &str = "insert into outbox_message (outbox_message_id, channel, sealed_payload, status, \
       attempts, next_attempt_at, lease_until, last_error, created_at, sent_at, identity_id) \
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
/// A new event is undispatched: the webhook dispatcher turns it into deliveries.
pub const INSERT_AUDIT: &str = "insert into audit_event (audit_event_id, identity_id, kind, ip_address, user_agent, \
       detail, created_at, dispatched) values ($1, $2, $3, $4, $5, $6, $7, false)";
/// Code attempts since `$2` on the flows of a login key.
pub const CODE_ATTEMPTS_BY_LOGIN: &str = "select cast(coalesce(sum(code_attempts), 0) as bigint) \
     from recovery_flow where address_key = $1 and created_at > $2";
/// Code attempts since `$2` on an identity's flows other than support-issued
/// ones, through `recovery_flow_attempted_idx`: flows without an attempt
/// (which anyone can start) are not read at all.
pub const CODE_ATTEMPTS_BY_IDENTITY: &str = "select cast(coalesce(sum(code_attempts), 0) as bigint) \
     from recovery_flow where identity_id = $1 and code_attempts > 0 and created_at > $2 \
       and channel <> 'support'";
pub const FLOW_BY_COOKIE: &str = "select * from recovery_flow where cookie_hash = $1";
pub const FLOW_BY_ID: &str = "select * from recovery_flow where recovery_flow_id = $1";
pub const RESERVE_CODE_ATTEMPT: &str = "update recovery_flow set code_attempts = code_attempts + 1 \
     where recovery_flow_id = $1 and state = 'sent' and expires_at > $3 and code_attempts < $2 \
     returning *";
pub const KILL_FLOW: &str =
    "update recovery_flow set state = 'dead', code_hash = null where recovery_flow_id = $1 and state = 'sent'";
pub const MARK_FLOW_VERIFIED: &str = "update recovery_flow set state = 'verified', code_hash = null, \
       cookie_hash = $3, verified_at = $4 \
     where recovery_flow_id = $1 and cookie_hash = $2 and state = 'sent' and expires_at > $4 and not decoy";
/// The code mail's link continues a flow in another browser: once the flow
/// is verified in place under the new cookie (`MARK_FLOW_VERIFIED`), a decoy
/// (`$2`) takes the old cookie (`$3`), with the flow's login, start time and
/// attempts, so the browser that started it keeps a flow that fails as an
/// unknown login's does (SPEC §2.10), and the login's start limit and code
/// budget count what they counted. `FLOW_OFF_ITS_LOGIN` then takes the
/// verified flow out of those counts.
pub const DECOY_FOR_CONTINUED_FLOW: &str = "insert into recovery_flow (recovery_flow_id, identity_id, address_key, \
       channel, cookie_hash, code_hash, state, code_attempts, locale, expires_at, created_at, decoy) \
     select $2, identity_id, address_key, channel, $3, null, 'sent', code_attempts, locale, expires_at, created_at, \
       true \
     from recovery_flow where recovery_flow_id = $1";
pub const FLOW_OFF_ITS_LOGIN: &str =
    "update recovery_flow set address_key = recovery_flow_id, code_attempts = 0 where recovery_flow_id = $1";
pub const SPEND_FLOW: &str = "update recovery_flow set state = 'used', used_at = $3 \
     where recovery_flow_id = $1 and identity_id = $2 and state = $4 and expires_at > $3 and not decoy";
pub const RESET_PASSWORD: &str = "update identity set password_hash = $2, updated_at = $3, \
       credential_epoch = credential_epoch + 1 where identity_id = $1";
pub const LINK_SPENT: &str = "select count(*) from spent_link where link_digest = $1";
/// A report link, spent once: a second insert of its digest is a conflict.
pub const SPEND_LINK: &str = "insert into spent_link (link_digest, identity_id, kind, expires_at, spent_at) \
     values ($1, $2, $3, $4, $5) on conflict (link_digest) do nothing";
pub const PAUSE_RECOVERY: &str = "update identity set recovery_paused_until = $2 where identity_id = $1";
pub const FREEZE_IDENTITY: &str = "update identity set frozen_at = coalesce(frozen_at, $2), updated_at = $2, \
       credential_epoch = credential_epoch + 1 where identity_id = $1 and identity_id <> $3";
pub const UNFREEZE_IDENTITY: &str = "update identity set frozen_at = null, updated_at = $2 \
     where identity_id = $1 and frozen_at is not null";
pub const REVOKE_IDENTITY_REFRESH: &str =
    "update refresh_token set revoked_at = $2 where identity_id = $1 and revoked_at is null";
/// Ends an account's flows when it is recovered, frozen or its recovery
/// cancelled. A verified flow (only its code's holder has one) dies; one
/// still waiting for a code becomes a decoy, which fails as an unknown
/// login's flow does, is superseded by the next start of its login and
/// expires when it would have: a stranger who started it must not see the
/// owner's reaction to its mail (SPEC §2.10).
pub const CLOSE_IDENTITY_FLOWS: &str = "update recovery_flow set code_hash = null, \
       decoy = case when state = 'sent' then true else decoy end, \
       state = case when state = 'sent' then state else 'dead' end \
     where identity_id = $1 and state in ('sent', 'verified')";

pub const INSERT_SESSION: &str = "insert into session (session_id, identity_id, token_hash, authenticated_at, \
       expires_at, revoked_at, ip_address, user_agent, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
pub const SESSION: &str = "select * from session where session_id = $1";
pub const REVOKE_SESSION: &str = "update session set revoked_at = $2 where session_id = $1 and revoked_at is null";
pub const REVOKE_IDENTITY_SESSIONS: &str =
    "update session set revoked_at = $2 where identity_id = $1 and revoked_at is null";

/// The failed-login streak after one more failure: a streak not touched
/// since `$3` starts over.
macro_rules! streak {
    () => {
        "(case when login_throttle.updated_at < $3 then 1 else login_throttle.failures + 1 end)"
    };
}

/// One password evaluation reserved for key `$1` at `$2`, unless it is
/// locked. The lock follows `LoginLockPolicy::lock_ms` of the new streak
/// (`$4` free, `$5` doublings, `$6` the longest wait; `$7` a first failure's lock).
pub const RESERVE_LOGIN_ATTEMPT: &str = concat!(
    "insert into login_throttle (throttle_key, failures, locked_until, updated_at) values ($1, 1, $7, $2) \
     on conflict (throttle_key) do update set \
       failures = ",
    streak!(),
    ", \
       locked_until = case when ",
    streak!(),
    " < $4 then 0 \
         when ",
    streak!(),
    " - $4 >= $5 then $2 + $6 \
         else $2 + (cast(1000 as bigint) << cast(",
    streak!(),
    " - $4 as integer)) end, \
       updated_at = $2 \
     where login_throttle.locked_until <= $2 \
     returning failures"
);
pub const LOGIN_LOCK: &str = "select locked_until from login_throttle where throttle_key = $1";
pub const CLEAR_LOGIN_THROTTLE: &str = "delete from login_throttle where throttle_key = $1";

pub const INSERT_REFRESH: &str = "insert into refresh_token (refresh_token_id, family_id, session_id, identity_id, \
       token_hash, expires_at, spent_at, revoked_at, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
pub const REFRESH_BY_HASH: &str = "select * from refresh_token where token_hash = $1";
/// Spends a live refresh token of a live session. The session is checked
/// here too, not only before: a reset or logout that commits meanwhile
/// leaves nothing to spend.
pub const SPEND_REFRESH: &str = "update refresh_token set spent_at = $2 \
     where refresh_token_id = $1 and spent_at is null and revoked_at is null and expires_at > $2 \
       and exists (select 1 from session s where s.session_id = refresh_token.session_id \
         and s.revoked_at is null and s.expires_at > $2)";
pub const REVOKE_REFRESH_FAMILY: &str =
    "update refresh_token set revoked_at = $2 where family_id = $1 and revoked_at is null";
pub const REVOKE_FAMILY_SESSION: &str = "update session set revoked_at = $2 where revoked_at is null \
     and session_id in (select session_id from refresh_token where family_id = $1)";

/// A delivery ends a pending message, whichever claim made it: a mail that
/// went out is not sent again, even when its mark comes after its lease.
pub const MARK_OUTBOX_SENT: &str = "update outbox_message set status = 'sent', sealed_payload = null, sent_at = $2, \
       lease_until = null, last_error = null where outbox_message_id = $1 and status = 'pending'";
/// A failed delivery's outcome, recorded only under the claim it was made
/// under (`attempts` as that claim set it, the message still pending): after
/// a lease ran out and another claim took the message, it changes nothing.
pub const MARK_OUTBOX_RETRY: &str = "update outbox_message set next_attempt_at = $2, last_error = $3, \
       lease_until = null where outbox_message_id = $1 and attempts = $4 and status = 'pending'";
pub const MARK_OUTBOX_FAILED: &str = "update outbox_message set status = 'failed', sealed_payload = null, \
       last_error = $2, lease_until = null where outbox_message_id = $1 and attempts = $3 and status = 'pending'";
pub const OUTBOX_STATS: &str = "select count(*), min(created_at) from outbox_message where status = 'pending'";

/// Rows a purge deletes, a batch (`$2`) per statement, so the writer is free
/// for requests between batches. `$1` is the cut-off; `$3 >= 0` only keeps
/// the parameter lists alike, as PostgreSQL wants every one used.
pub const PURGE_BATCH: i64 = 500;
pub const PURGE_FLOWS: &str = "delete from recovery_flow where recovery_flow_id in \
     (select recovery_flow_id from recovery_flow where expires_at < $1 and $3 >= 0 limit $2)";
pub const PURGE_THROTTLES: &str = "delete from login_throttle where throttle_key in \
     (select throttle_key from login_throttle where updated_at < $1 and locked_until < $3 limit $2)";
pub const PURGE_OUTBOX: &str = "delete from outbox_message where outbox_message_id in \
     (select outbox_message_id from outbox_message where status <> 'pending' and created_at < $1 and $3 >= 0 \
      limit $2)";
/// Sent deliveries go with the flows; failed and disabled ones wait for a
/// replay as long as the audit trail is kept (`PURGE_UNSENT_WEBHOOKS`).
pub const PURGE_WEBHOOKS: &str = "delete from webhook_delivery where webhook_delivery_id in \
     (select webhook_delivery_id from webhook_delivery where status = 'sent' and created_at < $1 and $3 >= 0 \
      limit $2)";
pub const PURGE_UNSENT_WEBHOOKS: &str = "delete from webhook_delivery where webhook_delivery_id in \
     (select webhook_delivery_id from webhook_delivery where status in ('failed', 'disabled') \
       and created_at < $1 and $3 >= 0 limit $2)";
pub const PURGE_SESSIONS: &str = "delete from session where session_id in \
     (select session_id from session where expires_at < $1 and $3 >= 0 limit $2)";
pub const PURGE_AUDIT: &str = "delete from audit_event where audit_event_id in \
     (select audit_event_id from audit_event where created_at < $1 and $3 >= 0 limit $2)";

/// Which of an imported identity's keys — its id (`$1`), email (`$2`),
/// username (`$3`), phone (`$4`) — an existing identity already has, if any.
pub const IMPORT_CONFLICT: &str = "select case \
       when exists (select 1 from identity where identity_id = $1) then 'id' \
       when exists (select 1 from address where kind = 'email' and value = $2) then 'email' \
       when exists (select 1 from identity where username = $3) then 'username' \
       when exists (select 1 from address where kind = 'phone' and value = $4) then 'phone' \
     end";
/// Hashes under latchkey's current Argon2id parameters (`$1`: their prefix, as a `like` pattern).
pub const COUNT_CURRENT_HASHES: &str =
    "select count(*) from identity where password_hash like $1 and identity_id <> $2";
pub const OTHER_HASHES: &str = "select password_hash from identity \
     where password_hash is not null and password_hash not like $1 and identity_id <> $2";

/// Audit events not yet turned into webhook deliveries, oldest first.
pub const UNDISPATCHED_EVENTS: &str = "select * from audit_event where not dispatched \
     order by created_at, audit_event_id limit $1";
/// Claims an event for this dispatcher: when two instances read the same
/// event, the second finds it dispatched (it waits for the first's row lock
/// on PostgreSQL) and queues nothing, so an event goes to the endpoints of
/// one configuration only.
pub const MARK_DISPATCHED: &str =
    "update audit_event set dispatched = true where audit_event_id = $1 and not dispatched";
/// A delivery, once; born `disabled` when its endpoint is (listed and
/// replayable, never sent until then).
pub const INSERT_WEBHOOK_DELIVERY: &str = "insert into webhook_delivery (webhook_delivery_id, endpoint, event_id, \
       event_type, payload, status, attempts, next_attempt_at, lease_until, give_up_at, last_error, last_status, \
       created_at, sent_at) values ($1, $2, $3, $4, $5, \
       case when exists (select 1 from webhook_endpoint where endpoint = $2) then 'disabled' else 'pending' end, \
       0, $6, null, $7, \
       case when exists (select 1 from webhook_endpoint where endpoint = $2) then 'the endpoint is disabled' end, \
       null, $8, null) \
     on conflict (webhook_delivery_id) do nothing";
/// The finishes hold the claim they were sent under (`attempts` and
/// `lease_until` as the claim set them): a sender whose lease ran out, and
/// whose delivery was claimed again since (by another instance, or after a
/// replay), records nothing over the newer claim. A 2xx is recorded even if
/// the endpoint was disabled meanwhile — it was delivered, and a replay
/// must not send it again.
pub const FINISH_WEBHOOK_SENT: &str = "update webhook_delivery set status = 'sent', sent_at = $2, \
       last_status = $3, lease_until = null \
     where webhook_delivery_id = $1 and status in ('pending', 'disabled') and attempts = $4 and lease_until = $5";
pub const FINISH_WEBHOOK_RETRY: &str = "update webhook_delivery set next_attempt_at = $2, last_error = $3, \
       last_status = $4, lease_until = null \
     where webhook_delivery_id = $1 and status = 'pending' and attempts = $5 and lease_until = $6";
pub const FINISH_WEBHOOK_FAILED: &str = "update webhook_delivery set status = 'failed', last_error = $2, \
       last_status = $3, lease_until = null \
     where webhook_delivery_id = $1 and status = 'pending' and attempts = $4 and lease_until = $5";
/// Pending deliveries past their retry window and not under a lease: those
/// of an endpoint no longer configured anywhere would otherwise wait forever.
pub const EXPIRE_WEBHOOK_DELIVERIES: &str = "update webhook_delivery set status = 'failed', \
       last_error = 'not delivered within its retry window', lease_until = null \
     where status = 'pending' and give_up_at < $1 and (lease_until is null or lease_until < $1) \
     returning endpoint";
/// Events older than a delivery's retry window when first dispatched (no
/// instance had webhooks when they happened) are marked without
/// deliveries: enabling webhooks sends what happens from then on, not a
/// backlog of the audit trail.
pub const SKIP_STALE_EVENTS: &str = "update audit_event set dispatched = true where not dispatched and created_at < $1";
pub const DISABLE_WEBHOOK_ENDPOINT: &str = "insert into webhook_endpoint (endpoint, disabled_at, reason) \
     values ($1, $2, $3) on conflict (endpoint) do nothing";
/// Every pending delivery of a disabled endpoint, the one being sent
/// included; leases are kept, so a 2xx that another instance was receiving
/// meanwhile is still recorded as sent.
pub const DISABLE_WEBHOOK_DELIVERIES: &str = "update webhook_delivery set status = 'disabled', \
       last_error = 'the endpoint answered 410 Gone' where endpoint = $1 and status = 'pending'";
pub const FAILED_WEBHOOK_DELIVERIES: &str = "select * from webhook_delivery where status in ('failed', 'disabled') \
     order by created_at desc, webhook_delivery_id limit $1";
/// Queues a failed or disabled delivery again, with a fresh day to succeed in.
pub const REPLAY_WEBHOOK_DELIVERY: &str = "update webhook_delivery set status = 'pending', attempts = 0, \
       next_attempt_at = $2, give_up_at = $3, lease_until = null, last_error = null, last_status = null \
     where webhook_delivery_id = $1 and status in ('failed', 'disabled') returning endpoint";
pub const ENABLE_WEBHOOK_ENDPOINT: &str = "delete from webhook_endpoint where endpoint = $1";
/// `REPLAY_WEBHOOK_DELIVERY` for every failed and disabled delivery, and every endpoint enabled.
pub const REPLAY_ALL_WEBHOOK_DELIVERIES: &str = "update webhook_delivery set status = 'pending', attempts = 0, \
       next_attempt_at = $1, give_up_at = $2, lease_until = null, last_error = null, last_status = null \
     where status in ('failed', 'disabled')";
pub const ENABLE_ALL_WEBHOOK_ENDPOINTS: &str = "delete from webhook_endpoint";
pub const WEBHOOK_QUEUE_DEPTH: &str =
    "select count(*) from webhook_delivery where endpoint = $1 and status = 'pending'";
