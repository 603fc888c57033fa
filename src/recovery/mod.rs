//! Account recovery: `start` (send a one-time code), prove the code, set a
//! new password and sign in. Two dialects share the same flows and limits:
//! the cookie flow (`verify` then `reset`) and the token flow (`confirm`,
//! code and password together). A flow is bound to a secret the client holds
//! (in a cookie, or inside a signed token), stored only as a keyed hash.
//!
//! Never tells a caller whether a login has an account (unless configured
//! to): an unknown or unverified login gets a flow of the same shape that
//! can never succeed.

pub mod token;

use serde_json::json;

use crate::audit::{self, Kind};
use crate::courier::{self, Message, Origin};
use crate::domain::{Login, RecoveryCode, SecretToken, StrongPassword};
use crate::error::{Error, Result};
use crate::i18n::Locale;
use crate::identity::{self, Identity};
use crate::report::{self, ReportKind};
use crate::secrets::Purpose;
use crate::services::{Client, Services};
use crate::session::{self, IssuedSession};
use crate::store::{AddressKind, AttemptsOf, CompletedRecovery, NewRecoveryFlow, RecoveryFlowRecord, StartOutcome};
use crate::time::{ms, now_ms};

const HOUR_MS: i64 = 3_600_000;

/// The per-account daily code budget, as a multiple of the per-login one.
const ACCOUNT_BUDGET_FACTOR: i64 = 3;

/// The channel of a flow an operator issued (the code is read out, not sent).
pub const SUPPORT_CHANNEL: &str = "support";

/// A flow just started: the secret that opens it, and when it dies.
#[derive(Debug)]
pub struct Started {
    pub flow_id: String,
    pub secret: SecretToken,
    pub expires_at: i64,
}

/// Whether an unknown login is answered like a known one (the default) or
/// refused with "Account not found" (`recovery.reveal_unknown_accounts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    Conceal,
    RevealIfConfigured,
}

fn secret_hash(services: &Services, secret: &SecretToken) -> String {
    services
        .secret
        .keyed_hash(Purpose::RecoveryCookie, &[secret.expose().as_bytes()])
}

fn code_hash(services: &Services, flow_id: &str, code: &RecoveryCode) -> String {
    services
        .secret
        .keyed_hash(Purpose::RecoveryCode, &[flow_id.as_bytes(), code.expose().as_bytes()])
}

/// Where a code for `login` goes: the verified email of the account (email
/// or username login) or its verified phone (phone login).
fn deliverable(identity: &Identity, login: &Login) -> Option<String> {
    let verified = |kind: AddressKind, value: &str| {
        identity
            .addresses
            .iter()
            .find(|a| a.kind == kind.as_str() && a.verified && a.value == value)
    };
    let address = match login {
        Login::Phone(phone) => verified(AddressKind::Phone, phone.as_str()),
        Login::Email(email) => verified(AddressKind::Email, email.as_str()),
        Login::Username(_) => identity.verified(AddressKind::Email),
    };
    address.map(|a| a.value.clone())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Email,
    Sms,
}

impl Channel {
    fn of(login: &Login) -> Self {
        match login {
            Login::Phone(_) => Channel::Sms,
            _ => Channel::Email,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

/// Starts a flow for `login`. Only a verified address of an existing account
/// gets a code; every other login gets a flow that looks the same.
pub async fn start(services: &Services, login: &Login, client: &Client, unknown: Unknown) -> Result<Started> {
    let now = now_ms();
    let account = identity::find_by_login(services, login).await?;
    // A frozen or paused account is answered like an unverified address: a
    // flow of the same shape that sends nothing and can never succeed.
    let recipient = account
        .as_ref()
        .filter(|identity| identity.accepts_codes(now))
        .and_then(|identity| deliverable(identity, login).map(|to| (identity, to)));
    if recipient.is_none()
        && unknown == Unknown::RevealIfConfigured
        && services.settings.recovery.reveal_unknown_accounts
    {
        return Err(Error::AccountNotFound);
    }
    // The channel follows the login's shape, so a decoy expires like a real flow.
    let channel = Channel::of(login);
    let lifespan = match channel {
        Channel::Sms => services.settings.recovery.sms_lifespan,
        Channel::Email => services.settings.recovery.lifespan,
    };
    let flow_id = crate::store::new_row_id();
    let secret = SecretToken::generate();
    let code = RecoveryCode::generate();
    let account_id = recipient.as_ref().map(|(identity, _)| identity.id().to_owned());
    // A decoy's owner is an id of its login's own, as random-looking as an
    // account's and the same for every decoy of that login: its rows land in
    // the indexes like a real flow's, and a verify's budget read finds as
    // many flows by owner as an account with this one login has.
    let owner_id = account_id.clone().unwrap_or_else(|| {
        services
            .secret
            .keyed_uuid(Purpose::DecoyOwner, &[login.limit_key().as_bytes()])
    });
    let digest = code_hash(services, &flow_id, &code);
    let code_message = |to: String| {
        let (code, minutes, locale) = (code.expose().to_owned(), lifespan.as_secs().div_ceil(60), client.locale);
        match channel {
            Channel::Email => Message::RecoveryCode {
                to,
                code,
                minutes,
                locale,
                link: Some(continue_link(services, &flow_id, &digest, locale)),
                cancel_link: Some(report::link(services, ReportKind::NotRequested, &owner_id, locale, now)),
            },
            Channel::Sms => Message::RecoveryCodeSms {
                to,
                code,
                minutes,
                locale,
            },
        }
    };
    // Every path writes one outbox row: the code, a notice to an address
    // without an account (when configured), or a decoy that is never sent.
    let message = match (&recipient, login) {
        (Some((identity, to)), _) => code_message(to.clone()).queue(&services.secret, Some(identity.id()), now)?,
        (None, Login::Email(email)) if account.is_none() && services.settings.recovery.notify_unknown_recipients => {
            let notice = Message::UnknownRecipient {
                to: email.to_string(),
                locale: client.locale,
            };
            notice.queue(&services.secret, None, now)?
        }
        (None, _) => code_message(login.limit_key()).decoy(&services.secret, now)?,
    };
    let expires_at = now + ms(lifespan);
    let new_flow = NewRecoveryFlow {
        flow: fresh_flow(
            services,
            FlowOwner {
                identity_id: owner_id.clone(),
                decoy: account_id.is_none(),
                limit_key: login.limit_key(),
                channel: channel.as_str(),
            },
            (&flow_id, &secret, digest.clone()),
            client.locale,
            expires_at,
            now,
        ),
        audit: audit::event(
            Kind::RecoveryRequested,
            account_id.as_deref(),
            client,
            json!({"flow_id": flow_id, "channel": channel.as_str(), "code_sent": recipient.is_some()}),
        ),
        message: Some(message),
        max_starts: services.settings.recovery.max_starts_per_hour,
        window_start: now - HOUR_MS,
    };
    match services.store.create_recovery_flow(&new_flow).await? {
        StartOutcome::Created => {
            metrics::counter!("latchkey_recovery_flows_started_total", "channel" => channel.as_str()).increment(1);
            // The worker is not woken from here: it polls on its own clock, so
            // when delivery work happens says nothing about this request.
            Ok(Started {
                flow_id,
                secret,
                expires_at,
            })
        }
        StartOutcome::RateLimited { oldest_start } => {
            let detail = json!({"channel": channel.as_str()});
            let event = audit::event(Kind::RecoveryRateLimited, account_id.as_deref(), client, detail);
            services.store.insert_audit_event(&event).await?;
            // A start admitted beside this one may carry a later clock than
            // `now` (grouped starts each keep their own), so the wait is capped
            // at the hour a start alone would be told.
            let retry_after_ms = (oldest_start + HOUR_MS - now).clamp(1000, HOUR_MS);
            Err(Error::RateLimited {
                retry_after_secs: u64::try_from((retry_after_ms + 999) / 1000).unwrap_or(3600),
            })
        }
    }
}

/// Whom a new flow is for, and how its code travels.
struct FlowOwner<'a> {
    identity_id: String,
    decoy: bool,
    /// The key starts are limited and superseded on: the normalised typed
    /// login for anonymous starts (`Login::limit_key`), one per identity for
    /// support-issued flows, so neither touches the other.
    limit_key: String,
    channel: &'a str,
}

/// The row of a flow just started, holding only keyed hashes of its secret and code.
fn fresh_flow(
    services: &Services,
    owner: FlowOwner<'_>,
    (flow_id, secret, code_hash): (&str, &SecretToken, String),
    locale: Locale,
    expires_at: i64,
    now: i64,
) -> RecoveryFlowRecord {
    RecoveryFlowRecord {
        recovery_flow_id: flow_id.to_owned(),
        identity_id: owner.identity_id,
        decoy: owner.decoy,
        address_key: services
            .secret
            .keyed_hash(Purpose::RateLimitKey, &[owner.limit_key.as_bytes()]),
        channel: owner.channel.into(),
        cookie_hash: secret_hash(services, secret),
        code_hash: Some(code_hash),
        state: "sent".into(),
        code_attempts: 0,
        locale: locale.as_str().into(),
        expires_at,
        created_at: now,
        verified_at: None,
        used_at: None,
    }
}

/// A code support staff read out to the person, for a flow they finish themselves.
#[derive(Debug)]
pub struct SupportCode {
    pub started: Started,
    pub code: RecoveryCode,
}

/// Starts a flow for an identity on an operator's request (the admin API and
/// `latchkey identity recovery-code`). The code is returned instead of sent;
/// otherwise the flow is like any other: it expires after
/// `recovery.lifespan`, allows `max_attempts` guesses, supersedes older codes
/// and is audited (`recovery.requested` with `"channel": "support"`).
pub async fn issue_for_support(services: &Services, identity_id: &str, client: &Client) -> Result<SupportCode> {
    let identity = identity::load(services, identity_id).await?.ok_or(Error::NotFound)?;
    if identity.is_frozen() {
        return Err(Error::InvalidRequest {
            key: "error.invalid_request",
            detail: "the identity is frozen (\"this wasn't me\"); unfreeze it first".into(),
        });
    }
    // The "password changed" notice goes to a verified address, so one is needed.
    if identity.verified(AddressKind::Email).is_none() && identity.verified(AddressKind::Phone).is_none() {
        return Err(Error::InvalidRequest {
            key: "error.invalid_request",
            detail: "the identity has no verified email address or phone number".into(),
        });
    }
    let now = now_ms();
    let flow_id = crate::store::new_row_id();
    let secret = SecretToken::generate();
    let code = RecoveryCode::generate();
    let expires_at = now + ms(services.settings.recovery.lifespan);
    let new_flow = NewRecoveryFlow {
        flow: fresh_flow(
            services,
            FlowOwner {
                identity_id: identity.id().to_owned(),
                decoy: false,
                limit_key: format!("support:{}", identity.id()),
                channel: SUPPORT_CHANNEL,
            },
            (&flow_id, &secret, code_hash(services, &flow_id, &code)),
            client.locale,
            expires_at,
            now,
        ),
        audit: audit::event(
            Kind::RecoveryRequested,
            Some(identity.id()),
            client,
            json!({"flow_id": flow_id, "channel": SUPPORT_CHANNEL, "code_sent": false}),
        ),
        message: None,
        // Operators are not held to the per-login start limit; every code is audited.
        max_starts: 0,
        window_start: now - HOUR_MS,
    };
    services.store.create_recovery_flow(&new_flow).await?;
    metrics::counter!("latchkey_recovery_flows_started_total", "channel" => SUPPORT_CHANNEL).increment(1);
    Ok(SupportCode {
        started: Started {
            flow_id,
            secret,
            expires_at,
        },
        code,
    })
}

/// The account a support-issued flow is for, as the support link's page
/// shows it (`a•••e@example.com`, `•••••••4567`), so the person sees whose
/// recovery they are finishing. Any other flow is refused: a token anyone
/// can request for any login must not bind a victim's browser to it.
pub async fn support_flow_account(services: &Services, secret: Option<&str>) -> Result<String> {
    let (_, flow) = open_flow(services, secret).await?;
    if flow.channel != SUPPORT_CHANNEL || flow.state != "sent" {
        return Err(Error::RecoverySessionMissing);
    }
    account_shown(services, &flow).await
}

/// The account a verified flow resets, masked as `support_flow_account`
/// shows it, for the new-password page: the person sees whose password
/// they are about to set (a flow cookie planted in their browser would
/// name someone else's). Only the code's holder has a verified flow.
pub async fn verified_flow_account(services: &Services, secret: Option<&str>) -> Result<String> {
    let (_, flow) = open_flow(services, secret).await?;
    if flow.state != "verified" {
        return Err(Error::RecoveryNotVerified);
    }
    account_shown(services, &flow).await
}

async fn account_shown(services: &Services, flow: &RecoveryFlowRecord) -> Result<String> {
    let identity_id = flow.account().ok_or(Error::RecoverySessionMissing)?;
    let identity = identity::load(services, identity_id)
        .await?
        .ok_or(Error::RecoverySessionMissing)?;
    let shown = match (
        identity.verified(AddressKind::Email),
        identity.verified(AddressKind::Phone),
    ) {
        (Some(email), _) => mask_email(&email.value),
        (None, Some(phone)) => mask_tail(&phone.value, 4),
        (None, None) => return Err(Error::RecoverySessionMissing),
    };
    Ok(shown)
}

fn mask_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let chars: Vec<char> = local.chars().collect();
            let (first, last) = (
                chars.first().copied().unwrap_or('•'),
                chars.last().copied().unwrap_or('•'),
            );
            if chars.len() <= 2 {
                format!("{first}•••@{domain}")
            } else {
                format!("{first}•••{last}@{domain}")
            }
        }
        None => mask_tail(email, 2),
    }
}

fn mask_tail(value: &str, keep: usize) -> String {
    let chars: Vec<char> = value.chars().collect();
    let hidden = chars.len().saturating_sub(keep);
    "•".repeat(hidden) + &chars[hidden..].iter().collect::<String>()
}

fn out_of_attempts(services: &Services, flow: &RecoveryFlowRecord) -> bool {
    let max = i64::from(services.settings.recovery.max_attempts);
    max > 0 && flow.code_attempts >= max
}

/// The flow a client secret opens, or why it cannot be used.
/// The proof in a code mail's link: a keyed function of the flow's code
/// hash, 128 bits. Nothing stores it; it is recomputed to check, so it works
/// exactly as long as the code does (`code_hash` is cleared when the flow is
/// verified, superseded, killed or spent) and opens nothing else.
fn link_proof(services: &Services, flow_id: &str, code_hash: &str) -> String {
    let mut proof = services
        .secret
        .keyed_hash(Purpose::RecoveryLink, &[flow_id.as_bytes(), code_hash.as_bytes()]);
    proof.truncate(32);
    proof
}

/// `/ui/recovery/continue?token=<flow id>.<proof>` for a code mail.
fn continue_link(services: &Services, flow_id: &str, code_hash: &str, locale: Locale) -> String {
    format!(
        "{}/ui/recovery/continue?token={flow_id}.{}&lang={locale}",
        services.settings.public_url.trim_end_matches('/'),
        link_proof(services, flow_id, code_hash)
    )
}

/// A code mail's link, on the `POST` of its page: proves the code of its
/// flow as `verify` does (spending it), and binds the flow to a new secret
/// for the browser that opened the link, which may not be the one that
/// started it. Any link that is not the live one answers the same.
pub async fn continue_by_link(services: &Services, token: &str, client: &Client) -> Result<SecretToken> {
    let (flow_id, proof) = token.split_once('.').ok_or(Error::RecoverySessionExpired)?;
    // A flow id is a UUID: anything else names no flow (and a NUL would
    // reach PostgreSQL, which refuses it).
    let id_like = flow_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if flow_id.len() > 64 || !id_like || proof.len() != 32 {
        return Err(Error::RecoverySessionExpired);
    }
    let flow = services
        .store
        .recovery_flow(flow_id)
        .await?
        .ok_or(Error::RecoverySessionExpired)?;
    let now = now_ms();
    let live = flow.state == "sent" && !flow.decoy && flow.expires_at > now && flow.channel == Channel::Email.as_str();
    // The proof is computed and compared for every flow found, a decoy's
    // and an ended one's too: a flow id is in every v2 token, and a link
    // for a real flow must not take longer to refuse than one for a decoy.
    let expected = link_proof(services, flow_id, flow.code_hash.as_deref().unwrap_or_default());
    let proven = bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), proof.as_bytes()));
    if !(live && flow.code_hash.is_some() && proven) {
        return Err(Error::RecoverySessionExpired);
    }
    // The recovery goes on in this browser. The browser that started it
    // (perhaps a stranger's, whose start sent this mail) keeps a decoy that
    // answers as a flow for an address without an account would (SPEC §2.10).
    let new_secret = SecretToken::generate();
    let detail = json!({"flow_id": flow.recovery_flow_id, "via": "link"});
    let event = audit::event(Kind::RecoveryVerified, flow.account(), client, detail);
    let continued = services
        .store
        .continue_flow(
            flow_id,
            &flow.cookie_hash,
            &secret_hash(services, &new_secret),
            &uuid::Uuid::new_v4().to_string(),
            now,
            &event,
        )
        .await?;
    if !continued {
        return Err(Error::RecoverySessionExpired);
    }
    metrics::counter!("latchkey_recovery_flows_verified_total").increment(1);
    Ok(new_secret)
}

async fn open_flow(services: &Services, secret: Option<&str>) -> Result<(SecretToken, RecoveryFlowRecord)> {
    let secret = secret
        .and_then(SecretToken::parse)
        .ok_or(Error::RecoverySessionMissing)?;
    let flow = services
        .store
        .recovery_flow_by_cookie(&secret_hash(services, &secret))
        .await?
        .ok_or(Error::RecoverySessionMissing)?;
    if matches!(flow.state.as_str(), "sent" | "dead") && out_of_attempts(services, &flow) {
        return Err(Error::TooManyAttempts);
    }
    if flow.state == "dead" || flow.expires_at <= now_ms() {
        return Err(Error::RecoverySessionExpired);
    }
    if flow.state == "used" {
        return Err(Error::RecoverySessionMissing);
    }
    Ok((secret, flow))
}

/// Spends one attempt, then compares the code in constant time. A flow for an
/// unknown login never matches. The attempt that uses up the budget kills the flow.
async fn check_code(
    services: &Services,
    flow: &RecoveryFlowRecord,
    code: &RecoveryCode,
    client: &Client,
) -> Result<()> {
    let settings = &services.settings.recovery;
    // Two daily budgets, so fresh flows cannot buy more guesses (SECURITY.md).
    // The one of the typed login is answered openly: a decoy spends it the
    // same way. The one of the account spans all its logins, so it is
    // enforced silently — the code just never matches — or its refusal would
    // tell that an email and a username belong to one account. It is three
    // times the login's, so a stranger who spends the budget of one login
    // (a username) does not silently break the owner's other logins (the
    // email). Support flows have a budget of their own (their login key is
    // per identity).
    // The account's is read only by a request that won an attempt, after it
    // (so the attempt counts): its time depends on the account's other
    // logins' flows, and each read costs a guess, so it cannot be sampled
    // more often than guesses are spent. The login's, read before, is the
    // same for a decoy as for an account's flow (SECURITY.md).
    let day_ago = now_ms() - 24 * HOUR_MS;
    let budget = i64::from(settings.max_wrong_codes_per_day);
    if budget > 0
        && services
            .store
            .code_attempts(AttemptsOf::Login(&flow.address_key), day_ago)
            .await?
            >= budget
    {
        return Err(Error::TooManyAttempts);
    }
    let Some(reserved) = services
        .store
        .reserve_code_attempt(&flow.recovery_flow_id, settings.max_attempts, now_ms())
        .await?
    else {
        if flow.expires_at <= now_ms() {
            return Err(Error::RecoverySessionExpired);
        }
        // Lost a race: with other attempts, or with the mail's link, which
        // verified the flow and gave its cookie to a decoy. The attempt goes
        // on against that decoy, as it would have a moment later: a flow for
        // an unknown login is never continued, so any other answer would be
        // a known account's alone (SPEC §2.10).
        // Read for a decoy too (it finds itself), so losing costs the same.
        let continued = services
            .store
            .recovery_flow_by_cookie(&flow.cookie_hash)
            .await?
            .filter(|now| !flow.decoy && now.decoy && now.recovery_flow_id != flow.recovery_flow_id);
        return match continued {
            Some(decoy) => Box::pin(check_code(services, &decoy, code, client)).await,
            None => Err(Error::TooManyAttempts),
        };
    };
    let identity_budget_left = budget == 0
        || flow.channel == SUPPORT_CHANNEL
        || services
            .store
            .code_attempts(AttemptsOf::Identity(&flow.identity_id), day_ago)
            .await?
            <= ACCOUNT_BUDGET_FACTOR * budget;
    let computed = code_hash(services, &flow.recovery_flow_id, code);
    let matches = reserved.account().is_some()
        && identity_budget_left
        && reserved
            .code_hash
            .as_deref()
            .is_some_and(|stored| subtle::ConstantTimeEq::ct_eq(computed.as_bytes(), stored.as_bytes()).into());
    if matches {
        return Ok(());
    }
    let locked = out_of_attempts(services, &reserved);
    let kind = if locked {
        Kind::RecoveryFlowLocked
    } else {
        Kind::RecoveryCodeFailed
    };
    let detail = json!({"flow_id": flow.recovery_flow_id, "attempts": reserved.code_attempts});
    let event = audit::event(kind, flow.account(), client, detail);
    if locked {
        // The flow dies with its `recovery.locked` event, in one transaction.
        services.store.kill_flow(&flow.recovery_flow_id, &event).await?;
    } else {
        services.store.insert_audit_event(&event).await?;
    }
    metrics::counter!("latchkey_recovery_codes_failed_total", "channel" => flow.channel.clone()).increment(1);
    if locked {
        metrics::counter!("latchkey_recovery_flows_locked_total").increment(1);
    }
    Err(if locked {
        Error::TooManyAttempts
    } else {
        Error::InvalidCode
    })
}

fn parse_code(code: &str) -> Result<RecoveryCode> {
    RecoveryCode::parse(code).ok_or_else(|| Error::invalid("error.invalid_code_format"))
}

/// Cookie dialect, step 2: checks the code of the flow `secret` opens. On
/// success the flow is verified and bound to a new secret (returned); the old
/// one stops working.
pub async fn verify(services: &Services, secret: Option<&str>, code: &str, client: &Client) -> Result<SecretToken> {
    let (old_secret, flow) = open_flow(services, secret).await?;
    if flow.state != "sent" {
        // Already verified: the code was spent with it.
        return Err(Error::InvalidCode);
    }
    check_code(services, &flow, &parse_code(code)?, client).await?;
    let new_secret = SecretToken::generate();
    let detail = json!({"flow_id": flow.recovery_flow_id});
    let event = audit::event(Kind::RecoveryVerified, flow.account(), client, detail);
    let rotated = services
        .store
        .mark_flow_verified(
            &flow.recovery_flow_id,
            &secret_hash(services, &old_secret),
            &secret_hash(services, &new_secret),
            now_ms(),
            &event,
        )
        .await?;
    if !rotated {
        return Err(Error::RecoverySessionMissing);
    }
    metrics::counter!("latchkey_recovery_flows_verified_total").increment(1);
    Ok(new_secret)
}

/// Cookie dialect, step 3: sets a new password on a verified flow.
pub async fn reset(
    services: &Services,
    secret: Option<&str>,
    password: &str,
    client: &Client,
) -> Result<IssuedSession> {
    let (_, flow) = open_flow(services, secret).await?;
    if flow.state != "verified" {
        return Err(Error::RecoveryNotVerified);
    }
    let strong = identity::policy(services)
        .strength(password)
        .map_err(Error::PasswordPolicy)?;
    let slot = services.hasher.slot()?;
    complete(services, &slot, &flow, strong, client).await
}

/// Token dialect: code and new password in one request. A mismatched repeat,
/// or a password any account would refuse, is answered before an attempt is
/// spent; rules that depend on the account are checked only after the code.
pub async fn confirm(
    services: &Services,
    secret: Option<&str>,
    code: &str,
    password: &str,
    repeat_password: &str,
    client: &Client,
) -> Result<IssuedSession> {
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        password.as_bytes(),
        repeat_password.as_bytes(),
    )) {
        return Err(Error::PasswordMismatch);
    }
    let (_, flow) = open_flow(services, secret).await?;
    if flow.state != "sent" {
        return Err(Error::RecoverySessionMissing);
    }
    let code = parse_code(code)?;
    let strong = identity::policy(services)
        .strength(password)
        .map_err(Error::PasswordPolicy)?;
    // The hasher slot is taken before the attempt is spent, so an
    // `overloaded` answer does not cost the person one of their guesses.
    let slot = services.hasher.slot()?;
    check_code(services, &flow, &code, client).await?;
    complete(services, &slot, &flow, strong, client).await
}

/// Spends the flow and applies the reset atomically: new password hash,
/// every session revoked, a fresh session, the "password changed" notice and
/// the audit events.
async fn complete(
    services: &Services,
    slot: &identity::Slot,
    flow: &RecoveryFlowRecord,
    password: StrongPassword,
    client: &Client,
) -> Result<IssuedSession> {
    let identity_id = flow.account().ok_or(Error::RecoverySessionMissing)?;
    let identity = identity::load(services, identity_id)
        .await?
        .filter(|identity| !identity.is_frozen())
        .ok_or(Error::RecoverySessionMissing)?;
    let checked = password
        .for_account(&identity.identifiers())
        .map_err(Error::PasswordPolicy)?;
    let password_hash = slot.hash(secrecy::SecretString::from(checked.expose())).await?;
    let now = now_ms();
    let locale = Locale::parse(&flow.locale).unwrap_or_default();
    let notices = password_changed_notices(services, &identity, locale, &Origin::of(client, now))?;
    let (token, session) = session::new_session(services, identity_id, client, now);
    let detail = json!({"flow_id": flow.recovery_flow_id, "session_id": session.session_id});
    let completed = CompletedRecovery {
        flow_id: flow.recovery_flow_id.clone(),
        from_state: if flow.state == "verified" { "verified" } else { "sent" },
        identity_id: identity_id.to_owned(),
        password_hash,
        now,
        notices,
        audit: vec![
            audit::event(Kind::PasswordChanged, Some(identity_id), client, detail.clone()),
            audit::event(Kind::SessionsRevoked, Some(identity_id), client, detail),
        ],
        session,
        // Whoever was locked out by failed logins proved themselves: unlock.
        clear_throttle: session::throttle_keys(services, &identity),
    };
    if !services.store.complete_recovery(&completed).await? {
        return Err(Error::RecoverySessionMissing);
    }
    services.courier.wake();
    metrics::counter!("latchkey_recovery_flows_completed_total").increment(1);
    let jwt = session::sign_jwt(services, &completed.session)?;
    Ok(IssuedSession {
        token,
        jwt,
        record: completed.session,
        identity,
    })
}

/// The "password changed" notice for every verified address of the account
/// (NIST SP 800-63B-4 §4.6), each saying when and from where, sealed for the
/// outbox.
fn password_changed_notices(
    services: &Services,
    identity: &Identity,
    locale: Locale,
    origin: &Origin,
) -> Result<Vec<crate::store::OutboxMessageRecord>> {
    let report_link = report::link(services, ReportKind::NotMe, identity.id(), locale, origin.at);
    let notices = courier::to_every_verified(
        &services.secret,
        identity.id(),
        &identity.addresses,
        origin.at,
        |to, phone| match phone {
            true => Message::PasswordChangedSms {
                to,
                locale,
                origin: origin.clone(),
                report_link: Some(report_link.clone()),
            },
            false => Message::PasswordChanged {
                to,
                locale,
                origin: origin.clone(),
                report_link: Some(report_link.clone()),
            },
        },
    )?;
    if notices.is_empty() {
        // A flow only reaches an account through a verified address.
        return Err(Error::RecoverySessionMissing);
    }
    Ok(notices)
}
