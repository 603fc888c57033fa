//! The `latchkey` command line (SPEC §1.1). Every command reads the same
//! configuration; output is JSON on stdout, errors one line on stderr.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::SecretString;
use serde_json::json;

use crate::config::Settings;
use crate::domain::Username;
use crate::identity::manage::{self, Address, IdentityUpdate};
use crate::services::Services;
use crate::session::KeyRing;
use crate::startup::{self, Application};

#[derive(Parser)]
#[command(name = "latchkey", version, about = "Account recovery and authentication server")]
pub struct Cli {
    /// Configuration file (default: ./latchkey.toml when present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the public API, the admin API and the courier.
    Serve {
        /// Do not run a courier worker in this instance.
        #[arg(long)]
        no_courier: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage identities.
    Identity {
        #[command(subcommand)]
        command: IdentityCommand,
    },
    /// Print audit events, newest first.
    Audit {
        #[arg(long)]
        identity: Option<String>,
        /// Only events younger than this (e.g. `1h`, `7d`).
        #[arg(long, value_parser = humantime::parse_duration)]
        since: Option<std::time::Duration>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Run only the courier worker.
    Courier,
    /// Manage JWT signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Delete rows older than `retention.flows` / `retention.audit` (as `serve` does hourly).
    Purge,
    /// The server secret: generate one, or move a generated one out of the database.
    Secret {
        #[command(subcommand)]
        command: SecretCommand,
    },
    /// Check or preview the message templates (built-in and `courier.templates_dir`).
    Templates {
        #[command(subcommand)]
        command: TemplatesCommand,
    },
    /// Webhook deliveries that failed: list them, queue one again.
    Webhooks {
        #[command(subcommand)]
        command: WebhooksCommand,
    },
}

#[derive(Subcommand)]
enum WebhooksCommand {
    /// Deliveries given up (after a day of retries) or disabled (the endpoint answered 410), newest first.
    Failed {
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Queue a failed or disabled delivery again, with a fresh day of retries;
    /// its endpoint is enabled again if a 410 had disabled it. `--all`: every
    /// one `failed` lists, and every endpoint enabled (once a receiver is fixed).
    Replay {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand)]
enum TemplatesCommand {
    /// Render every message in every locale with sample values; fail on a
    /// template that does not parse, names an unknown variable, or replaces nothing.
    Check,
    /// Print one message rendered with sample values and this configuration's branding.
    Preview {
        /// recovery_code, password_changed, unknown_recipient or account_secured.
        message: String,
        #[arg(long, default_value = "en")]
        locale: String,
    },
}

#[derive(Subcommand)]
enum SecretCommand {
    /// Print fresh secret material (64 hex digits) for `secret` / `LATCHKEY_SECRET`.
    Generate,
    /// Print the secret this database generated and keeps, to move it into
    /// the configuration (see docs/deploy.md).
    Export,
    /// Delete the database's copy of the secret once the configuration holds
    /// the same value, so a copy of the database no longer carries its own key.
    Forget,
}

#[derive(Subcommand)]
enum IdentityCommand {
    /// Create an identity and print it as JSON.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        phone: Option<String>,
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Leave the addresses unverified (no code will be sent to them).
        #[arg(long)]
        unverified: bool,
        /// Read the password from standard input (first line).
        #[arg(long)]
        password_stdin: bool,
    },
    List {
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long, default_value_t = 0)]
        offset: i64,
    },
    Show {
        id: String,
    },
    Delete {
        id: String,
    },
    /// Change an identity's username, roles or password (a new password revokes its sessions).
    Update {
        id: String,
        #[arg(long, conflicts_with = "no_username")]
        username: Option<String>,
        /// Remove the username.
        #[arg(long)]
        no_username: bool,
        /// Replace the roles (repeat for several).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Remove every role.
        #[arg(long, conflicts_with = "roles")]
        no_roles: bool,
        /// Read a new password from standard input (first line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Add an email address or phone number to an identity.
    AddAddress {
        id: String,
        #[command(flatten)]
        address: AddressArg,
        /// Count it as verified at once (codes are only sent to verified addresses).
        #[arg(long)]
        verified: bool,
    },
    /// Mark one of an identity's addresses verified.
    VerifyAddress {
        id: String,
        #[command(flatten)]
        address: AddressArg,
        /// Mark it unverified instead.
        #[arg(long)]
        unverify: bool,
    },
    /// Issue a recovery code for support staff to read out to the person,
    /// with the token and browser link that open its flow.
    RecoveryCode {
        id: String,
    },
    /// Revoke every session of an identity.
    RevokeSessions {
        id: String,
    },
    /// Lift the freeze the owner's "this wasn't me" put on an identity.
    Unfreeze {
        id: String,
    },
    /// Import identities with their existing password hashes from JSON Lines
    /// (SPEC §5.5); prints counts and every skipped or failing line.
    Import {
        /// The file, or `-` for standard input.
        file: PathBuf,
        /// Check every line and write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct AddressArg {
    #[arg(long)]
    email: Option<String>,
    #[arg(long)]
    phone: Option<String>,
}

impl AddressArg {
    fn parse(&self) -> Result<Address, crate::error::Error> {
        match (&self.email, &self.phone) {
            (Some(email), _) => Address::parse("email", email),
            (None, Some(phone)) => Address::parse("phone", phone),
            (None, None) => Address::parse("", ""),
        }
    }
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a new signing key active; the old one stays published until its JWTs expire.
    Rotate,
}

pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (settings, ignored) = Settings::load_reporting(cli.config.as_deref())?;
    crate::telemetry::init(settings.log.format);
    if !ignored.is_empty() {
        tracing::warn!(variables = %ignored.join(", "), "ignoring environment variables that name no configuration key");
    }
    match cli.command {
        Command::Serve { no_courier } => {
            Application::build(settings, !no_courier)
                .await?
                .run_until_stopped()
                .await
        }
        Command::Migrate => {
            let store = crate::store::connect(&settings).await?;
            store.migrate().await?;
            println!("{}", json!({"status": "migrated"}));
            Ok(())
        }
        Command::Identity { command } => identity(startup::build_services(settings).await?, command).await,
        Command::Audit { identity, since, limit } => {
            let services = startup::build_services(settings).await?;
            let since = since.map(|age| crate::time::now_ms() - crate::time::ms(age));
            let events = services
                .store
                .audit_events(identity.as_deref(), since, limit.clamp(1, 100_000))
                .await?;
            println!("{}", serde_json::to_string_pretty(&events)?);
            Ok(())
        }
        Command::Courier => startup::run_courier(settings).await,
        Command::Secret { command } => secret(settings, command).await,
        Command::Templates { command } => templates(&settings, command),
        Command::Webhooks { command } => {
            let services = startup::build_services(settings).await?;
            match command {
                WebhooksCommand::Failed { limit } => {
                    let mut failed = services
                        .store
                        .failed_webhook_deliveries(limit.clamp(1, 100_000))
                        .await?;
                    // Each endpoint by its label where this configuration has it, else by its key.
                    let labels: std::collections::HashMap<String, String> =
                        crate::webhooks::Endpoint::all(&services.settings)?
                            .iter()
                            .map(|e| (e.key(), e.label()))
                            .collect();
                    for delivery in &mut failed {
                        if let Some(label) = labels.get(&delivery.endpoint) {
                            delivery.endpoint.clone_from(label);
                        }
                    }
                    println!("{}", serde_json::to_string_pretty(&failed)?);
                }
                WebhooksCommand::Replay { id, all } => {
                    let now = crate::time::now_ms();
                    let give_up_at = now + crate::time::ms(crate::webhooks::RETRY_WINDOW);
                    if all {
                        let replayed = services.store.replay_all_webhook_deliveries(now, give_up_at).await?;
                        println!("{}", json!({"replayed": replayed}));
                    } else {
                        let id = id.unwrap_or_default();
                        let replayed = services.store.replay_webhook_delivery(&id, now, give_up_at).await?;
                        anyhow::ensure!(replayed, "no failed or disabled webhook delivery {id:?}");
                        println!("{}", json!({"replayed": id}));
                    }
                }
            }
            Ok(())
        }
        Command::Purge => {
            let services = startup::build_services(settings).await?;
            let purged = crate::retention::purge(&services).await.map_err(describe)?;
            println!("{}", serde_json::to_string(&purged)?);
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Rotate,
        } => {
            let services = startup::build_services(settings).await?;
            let settings = &services.settings;
            let kid = KeyRing::rotate(&services.store, &services.secret, settings.signing_key_overlap()).await?;
            println!("{}", json!({"active_kid": kid}));
            Ok(())
        }
    }
}

fn templates(settings: &Settings, command: TemplatesCommand) -> anyhow::Result<()> {
    use crate::courier::{Part, Templates, Vars, gsm7, templates::MESSAGES};
    use crate::i18n::Locale;
    let default_locale = Locale::parse(&settings.locale.default).unwrap_or_default();
    let dir = settings.courier.templates_dir.as_deref();
    // Loading renders every template with sample values, so it is the check.
    let loaded = Templates::load(dir, default_locale)?;
    match command {
        TemplatesCommand::Check => {
            let overrides: Vec<_> = loaded
                .sources()
                .iter()
                .filter_map(|s| s.file.as_ref().map(|f| json!({"template": s.name, "file": f})))
                .collect();
            let count = loaded.check()?;
            println!(
                "{}",
                json!({"status": "ok", "templates": count, "from_templates_dir": overrides})
            );
        }
        TemplatesCommand::Preview { message, locale } => {
            let locale = Locale::parse(&locale)
                .filter(|l| l.as_str() == locale)
                .with_context(|| format!("unknown locale {locale:?} (en, vi)"))?;
            anyhow::ensure!(
                MESSAGES.contains(&message.as_str()),
                "unknown message {message:?} (messages: {})",
                MESSAGES.join(", ")
            );
            let branding = &settings.branding;
            let vars = Vars {
                product_name: branding.product_name.clone(),
                support_contact: branding.support_contact.clone().or(Vars::sample().support_contact),
                logo_url: branding.logo_url.clone(),
                ..Vars::sample()
            };
            for &part in Part::of(&message) {
                let mut rendered = loaded.render(locale, &message, part, &vars)?;
                if part == Part::Sms && settings.courier.sms_gsm7 {
                    rendered = gsm7::transliterate(&rendered);
                }
                println!("==> {message}.{} ({locale})", part.extension());
                println!("{}\n", rendered.trim_end());
            }
        }
    }
    Ok(())
}

async fn secret(settings: Settings, command: SecretCommand) -> anyhow::Result<()> {
    match command {
        // Needs no database: a fresh value for the configuration.
        SecretCommand::Generate => println!("{}", crate::secrets::ServerSecret::generate_material()),
        SecretCommand::Export => {
            let (_, stored) = stored_secret(&settings).await?;
            let stored =
                stored.context("this database keeps no generated secret (it is configured, or was never generated)")?;
            println!("{stored}");
        }
        SecretCommand::Forget => {
            let (store, stored) = stored_secret(&settings).await?;
            let stored = stored.context("this database keeps no generated secret")?;
            let configured = settings
                .secret
                .as_deref()
                .context("set `secret` (or LATCHKEY_SECRET) to the exported value first")?;
            anyhow::ensure!(
                bool::from(subtle::ConstantTimeEq::ct_eq(configured.as_bytes(), stored.as_bytes())),
                "the configured secret is not the one this database generated; nothing was deleted"
            );
            store.delete_setting(startup::SECRET_SETTING).await?;
            println!("{}", json!({"status": "forgotten"}));
        }
    }
    Ok(())
}

/// The store, migrated, and the secret it generated and keeps, if any.
async fn stored_secret(settings: &Settings) -> anyhow::Result<(crate::store::DynStore, Option<String>)> {
    let store = crate::store::connect(settings).await?;
    store.migrate().await?;
    let stored = store.stored_setting(startup::SECRET_SETTING).await?;
    Ok((store, stored))
}

/// Longest line `identity import` reads; a longer one fails alone.
const MAX_IMPORT_LINE: usize = 64 * 1024;
/// Skipped and failing lines the report lists; the counts cover them all.
const MAX_LISTED_LINES: usize = 10_000;

/// The next line of `input` without its newline, or `Err` when it is longer
/// than `MAX_IMPORT_LINE` (the rest of it is skipped unread); `None` at the end.
fn next_line(input: &mut dyn std::io::BufRead) -> std::io::Result<Option<Result<Vec<u8>, ()>>> {
    use std::io::{BufRead, Read};
    let mut line = Vec::new();
    let read = Read::take(&mut *input, MAX_IMPORT_LINE as u64 + 1).read_until(b'\n', &mut line)?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        return Ok(Some(Ok(line)));
    }
    if line.len() <= MAX_IMPORT_LINE {
        return Ok(Some(Ok(line)));
    }
    let mut rest = Vec::new();
    while Read::take(&mut *input, MAX_IMPORT_LINE as u64).read_until(b'\n', &mut rest)? > 0 {
        if rest.last() == Some(&b'\n') {
            break;
        }
        rest.clear();
    }
    Ok(Some(Err(())))
}

/// `identity import`: reads the file in batches of `MAX_BATCH` lines of at
/// most `MAX_IMPORT_LINE` bytes, so memory stays bounded whatever its
/// length; exits non-zero when a line failed.
async fn import(services: &Services, file: &std::path::Path, dry_run: bool) -> anyhow::Result<()> {
    use std::io::BufRead;

    use crate::identity::import::{Import, ImportRecord, ItemOutcome, MAX_BATCH};
    let mut input: Box<dyn BufRead> = if file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let opened = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        Box::new(std::io::BufReader::new(opened))
    };
    let client = crate::services::Client {
        actor: Some("cli"),
        ..Default::default()
    };
    let mut import = Import::new(services, client, "line", dry_run);
    let (mut skipped, mut failed) = (Vec::new(), Vec::new());
    let (mut number, mut ended) = (0, false);
    while !ended {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while batch.len() < MAX_BATCH {
            let Some(line) = next_line(&mut *input).with_context(|| format!("reading {}", file.display()))? else {
                ended = true;
                break;
            };
            number += 1;
            let text = line
                .map_err(|()| format!("longer than {MAX_IMPORT_LINE} bytes"))
                .and_then(|bytes| String::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned()));
            if text.as_deref().is_ok_and(|t| t.trim().is_empty()) {
                continue;
            }
            batch.push((number, text.and_then(|t| ImportRecord::from_line(&t))));
        }
        if batch.is_empty() {
            continue;
        }
        for (line, outcome) in import.batch(batch).await.map_err(describe)? {
            let listed = json!({"line": line, "reason": match &outcome {
                ItemOutcome::Imported { .. } => continue,
                ItemOutcome::Skipped { reason } | ItemOutcome::Failed { reason } => reason,
            }});
            let list = if let ItemOutcome::Failed { reason } = &outcome {
                eprintln!("line {line}: {reason}");
                &mut failed
            } else {
                &mut skipped
            };
            if list.len() < MAX_LISTED_LINES {
                list.push(listed);
            }
        }
    }
    let mut report = serde_json::to_value(&import.summary)?;
    if let serde_json::Value::Object(map) = &mut report {
        map.insert("skipped_lines".into(), skipped.into());
        map.insert("failed_lines".into(), failed.into());
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    let summary = &import.summary;
    anyhow::ensure!(
        summary.failed == 0,
        "{} of {} lines failed (listed above){}",
        summary.failed,
        summary.imported + summary.skipped + summary.failed,
        if dry_run { "" } else { "; the other lines were imported" }
    );
    Ok(())
}

async fn identity(services: Services, command: IdentityCommand) -> anyhow::Result<()> {
    match command {
        IdentityCommand::Create {
            email,
            username,
            phone,
            roles,
            unverified,
            password_stdin,
        } => {
            let password = read_password(password_stdin)?;
            let new = crate::admin::parse_new_identity(
                &email,
                username.as_deref(),
                phone.as_deref(),
                roles,
                !unverified,
                password,
            )
            .map_err(describe)?;
            let identity = crate::identity::create_as(&services, new, &operator())
                .await
                .map_err(describe)?;
            println!("{}", serde_json::to_string_pretty(&identity.to_admin_json())?);
        }
        IdentityCommand::List { limit, offset } => {
            let mut out = Vec::new();
            for record in services
                .store
                .list_identities(limit.clamp(1, 100_000), offset.max(0))
                .await?
            {
                if let Some(identity) = crate::identity::load(&services, &record.identity_id)
                    .await
                    .map_err(describe)?
                {
                    out.push(identity.to_admin_json());
                }
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        IdentityCommand::Show { id } => {
            let identity = crate::identity::load(&services, &id)
                .await
                .map_err(describe)?
                .with_context(|| format!("no identity {id}"))?;
            println!("{}", serde_json::to_string_pretty(&identity.to_admin_json())?);
        }
        IdentityCommand::Delete { id } => {
            manage::delete(&services, &id, &operator()).await.map_err(describe)?;
            println!("{}", json!({"deleted": id}));
        }
        IdentityCommand::Update {
            id,
            username,
            no_username,
            roles,
            no_roles,
            password_stdin,
        } => {
            let username = match (username, no_username) {
                (Some(u), _) => Some(Some(
                    Username::parse(&u).with_context(|| "username must be 3–64 letters, digits, '.', '_' or '-'")?,
                )),
                (None, true) => Some(None),
                (None, false) => None,
            };
            let update = IdentityUpdate {
                username,
                roles: (no_roles || !roles.is_empty()).then_some(roles),
                password: read_password(password_stdin)?,
            };
            let identity = manage::update(&services, &id, update, &operator())
                .await
                .map_err(describe)?;
            println!("{}", serde_json::to_string_pretty(&identity.to_admin_json())?);
        }
        IdentityCommand::AddAddress { id, address, verified } => {
            let address = address.parse().map_err(describe)?;
            let identity = manage::add_address(&services, &id, &address, verified, &operator())
                .await
                .map_err(describe)?;
            println!("{}", serde_json::to_string_pretty(&identity.to_admin_json())?);
        }
        IdentityCommand::VerifyAddress { id, address, unverify } => {
            let address = address.parse().map_err(describe)?;
            let identity = manage::set_verified(&services, &id, &address, !unverify, &operator())
                .await
                .map_err(describe)?;
            println!("{}", serde_json::to_string_pretty(&identity.to_admin_json())?);
        }
        IdentityCommand::Import { file, dry_run } => import(&services, &file, dry_run).await?,
        IdentityCommand::Unfreeze { id } => {
            let identity = crate::report::unfreeze(&services, &id, &operator())
                .await
                .map_err(describe)?;
            println!("{}", identity.to_admin_json());
        }
        IdentityCommand::RevokeSessions { id } => {
            let revoked = manage::revoke_sessions(&services, &id, &operator())
                .await
                .map_err(describe)?;
            println!("{}", json!({"revoked": revoked}));
        }
        IdentityCommand::RecoveryCode { id } => {
            let issued = crate::admin::support_code(&services, &id, &operator())
                .await
                .map_err(describe)?;
            println!("{}", serde_json::to_string_pretty(&issued)?);
        }
    }
    Ok(())
}

/// The client an operator's command is audited as.
fn operator() -> crate::services::Client {
    crate::services::Client {
        user_agent: Some("latchkey-cli".into()),
        actor: Some("cli"),
        ..Default::default()
    }
}

/// The first line of standard input, when `--password-stdin` asks for it.
fn read_password(from_stdin: bool) -> anyhow::Result<Option<SecretString>> {
    if !from_stdin {
        return Ok(None);
    }
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading password from stdin")?;
    let line = input.lines().next().unwrap_or("").to_owned();
    anyhow::ensure!(!line.is_empty(), "no password on standard input");
    Ok(Some(SecretString::from(line)))
}

/// A domain error as one English line for the terminal.
fn describe(error: crate::error::Error) -> anyhow::Error {
    match error {
        crate::error::Error::Internal(e) => e,
        crate::error::Error::PasswordPolicy(v) => anyhow::anyhow!(
            "password refused: {}",
            crate::http::error::policy_message(v, crate::i18n::Locale::En)
        ),
        crate::error::Error::InvalidRequest { key, detail } if detail.is_empty() => {
            anyhow::anyhow!("{}", crate::i18n::text(crate::i18n::Locale::En, key, &[]))
        }
        other => anyhow::anyhow!("{other}"),
    }
}
