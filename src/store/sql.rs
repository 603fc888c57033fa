//! The SQL shared by both backends, written once. `impl_store!` expands to
//! the `Store` implementation for a backend module that defines its pools
//! (`pool` for writes, `readers` for reads), `MIGRATOR`, the dialect-specific
//! statements (`CLAIM_OUTBOX_SQL`, `AUDIT_EVENTS_SQL`) and `run_start`, how
//! it commits a recovery start. sqlx's SQLite driver accepts the `$n`
//! placeholders PostgreSQL uses, so the statements are the same text.

/// The failed-login streak after one more failure: a streak not touched
/// since `$3` starts over.
macro_rules! streak {
    () => {
        "(case when login_throttle.updated_at < $3 then 1 else login_throttle.failures + 1 end)"
    };
}

macro_rules! impl_store {
    ($store:ident, $db:ty) => {
        fn is_unique_violation(err: &sqlx::Error) -> bool {
            matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
        }

        /// A query with this backend's arguments, for the `bind_*` helpers.
        type BoundQuery<'q> = sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>;

        /// Binds a start's flow row and limit as `$1`…`$13` (see the flow insert).
        fn bind_flow<'q>(query: BoundQuery<'q>, start: &'q NewRecoveryFlow) -> BoundQuery<'q> {
            let f = &start.flow;
            query
                .bind(&f.recovery_flow_id)
                .bind(&f.identity_id)
                .bind(&f.address_key)
                .bind(&f.channel)
                .bind(&f.cookie_hash)
                .bind(&f.code_hash)
                .bind(&f.state)
                .bind(&f.locale)
                .bind(f.expires_at)
                .bind(f.created_at)
                .bind(start.window_start)
                .bind(start.start_limit())
                .bind(f.decoy)
        }

        /// Binds an outbox row's eleven columns, in `insert_outbox`'s order.
        fn bind_outbox<'q>(query: BoundQuery<'q>, m: &'q OutboxMessageRecord) -> BoundQuery<'q> {
            query
                .bind(&m.outbox_message_id)
                .bind(&m.channel)
                .bind(&m.sealed_payload)
                .bind(&m.status)
                .bind(m.attempts)
                .bind(m.next_attempt_at)
                .bind(m.lease_until)
                .bind(&m.last_error)
                .bind(m.created_at)
                .bind(m.sent_at)
                .bind(&m.identity_id)
        }

        /// Binds an audit row's seven columns, in `insert_audit`'s order.
        fn bind_audit<'q>(query: BoundQuery<'q>, e: &'q AuditEventRecord) -> BoundQuery<'q> {
            query
                .bind(&e.audit_event_id)
                .bind(&e.identity_id)
                .bind(&e.kind)
                .bind(&e.ip_address)
                .bind(&e.user_agent)
                .bind(&e.detail)
                .bind(e.created_at)
        }

        async fn insert_outbox(tx: &mut Transaction<'_, $db>, m: &OutboxMessageRecord) -> anyhow::Result<()> {
            let query = sqlx::query(
                "insert into outbox_message (outbox_message_id, channel, sealed_payload, status, attempts, \
                 next_attempt_at, lease_until, last_error, created_at, sent_at, identity_id) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            );
            bind_outbox(query, m)
                .execute(&mut **tx)
                .await
                .context("inserting outbox message")?;
            Ok(())
        }

        async fn insert_audit<'e, E>(executor: E, e: &AuditEventRecord) -> anyhow::Result<()>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            let query = sqlx::query(
                "insert into audit_event (audit_event_id, identity_id, kind, ip_address, user_agent, detail, created_at) \
                 values ($1, $2, $3, $4, $5, $6, $7)",
            );
            bind_audit(query, e).execute(executor).await.context("inserting audit event")?;
            Ok(())
        }

        /// The answer to a start the limit refused: when the oldest start in
        /// the window was made, so the caller can say when to retry.
        async fn refused_start(tx: &mut Transaction<'_, $db>, start: &NewRecoveryFlow) -> anyhow::Result<StartOutcome> {
            let (oldest_start,): (i64,) = sqlx::query_as(
                "select coalesce(min(created_at), $2) from recovery_flow where address_key = $1 and created_at > $2",
            )
            .bind(&start.flow.address_key)
            .bind(start.window_start)
            .fetch_one(&mut **tx)
            .await
            .context("reading oldest start")?;
            Ok(StartOutcome::RateLimited { oldest_start })
        }

        async fn insert_session<'e, E>(executor: E, s: &SessionRecord) -> anyhow::Result<()>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            sqlx::query(
                "insert into session (session_id, identity_id, token_hash, authenticated_at, expires_at, \
                 revoked_at, ip_address, user_agent, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&s.session_id)
            .bind(&s.identity_id)
            .bind(&s.token_hash)
            .bind(s.authenticated_at)
            .bind(s.expires_at)
            .bind(s.revoked_at)
            .bind(&s.ip_address)
            .bind(&s.user_agent)
            .bind(s.created_at)
            .execute(executor)
            .await
            .context("inserting session")?;
            Ok(())
        }

        async fn insert_refresh<'e, E>(executor: E, t: &RefreshTokenRecord) -> anyhow::Result<()>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            sqlx::query(
                "insert into refresh_token (refresh_token_id, family_id, session_id, identity_id, token_hash, \
                 expires_at, spent_at, revoked_at, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&t.refresh_token_id)
            .bind(&t.family_id)
            .bind(&t.session_id)
            .bind(&t.identity_id)
            .bind(&t.token_hash)
            .bind(t.expires_at)
            .bind(t.spent_at)
            .bind(t.revoked_at)
            .bind(t.created_at)
            .execute(executor)
            .await
            .context("inserting refresh token")?;
            Ok(())
        }

        #[async_trait]
        impl Store for $store {
            async fn migrate(&self) -> anyhow::Result<()> {
                MIGRATOR.run(&self.pool).await.context("applying migrations")
            }

            async fn ping(&self) -> anyhow::Result<()> {
                sqlx::query("select 1")
                    .execute(&self.readers)
                    .await
                    .context("database ping")?;
                Ok(())
            }

            async fn stored_setting(&self, key: &str) -> anyhow::Result<Option<String>> {
                let found: Option<(String,)> = sqlx::query_as("select value from setting where setting_key = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await
                    .context("reading setting")?;
                Ok(found.map(|(value,)| value))
            }

            async fn delete_setting(&self, key: &str) -> anyhow::Result<bool> {
                let done = sqlx::query("delete from setting where setting_key = $1")
                    .bind(key)
                    .execute(&self.pool)
                    .await
                    .context("deleting setting")?;
                // Leave no copy of the deleted row in the database's files.
                scrub_settings(&self.pool).await?;
                Ok(done.rows_affected() > 0)
            }

            async fn setting_or_insert(&self, key: &str, value: &str, now: i64) -> anyhow::Result<String> {
                sqlx::query("insert into setting (setting_key, value, created_at) values ($1, $2, $3) on conflict (setting_key) do nothing")
                    .bind(key)
                    .bind(value)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .context("storing setting")?;
                let (stored,): (String,) = sqlx::query_as("select value from setting where setting_key = $1")
                    .bind(key)
                    .fetch_one(&self.pool)
                    .await
                    .context("reading setting")?;
                Ok(stored)
            }

            async fn signing_keys(&self) -> anyhow::Result<Vec<SigningKeyRecord>> {
                sqlx::query_as("select * from signing_key order by created_at desc")
                    .fetch_all(&self.readers)
                    .await
                    .context("reading signing keys")
            }

            async fn insert_signing_key(&self, k: &SigningKeyRecord) -> anyhow::Result<()> {
                sqlx::query(
                    "insert into signing_key (signing_key_id, sealed_private_key, public_key, created_at, retired_at, published_until) \
                     values ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&k.signing_key_id)
                .bind(&k.sealed_private_key)
                .bind(&k.public_key)
                .bind(k.created_at)
                .bind(k.retired_at)
                .bind(k.published_until)
                .execute(&self.pool)
                .await
                .context("storing signing key")?;
                Ok(())
            }

            async fn retire_signing_keys_except(&self, keep: &str, now: i64, published_until: i64) -> anyhow::Result<()> {
                sqlx::query(
                    "update signing_key set retired_at = $2, published_until = $3 \
                     where signing_key_id <> $1 and retired_at is null",
                )
                .bind(keep)
                .bind(now)
                .bind(published_until)
                .execute(&self.pool)
                .await
                .context("retiring signing keys")?;
                Ok(())
            }

            async fn create_identity(&self, identity: &IdentityRecord, addresses: &[AddressRecord]) -> StoreResult<()> {
                let mut tx = self.pool.begin().await.context("beginning transaction")?;
                sqlx::query(
                    "insert into identity (identity_id, username, password_hash, roles, created_at, updated_at) \
                     values ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&identity.identity_id)
                .bind(&identity.username)
                .bind(&identity.password_hash)
                .bind(&identity.roles)
                .bind(identity.created_at)
                .bind(identity.updated_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| match is_unique_violation(&e) {
                    true => StoreError::Conflict("username"),
                    false => StoreError::Other(anyhow::Error::new(e).context("inserting identity")),
                })?;
                for a in addresses {
                    sqlx::query(
                        "insert into address (address_id, identity_id, kind, value, verified, created_at) \
                         values ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&a.address_id)
                    .bind(&a.identity_id)
                    .bind(&a.kind)
                    .bind(&a.value)
                    .bind(a.verified)
                    .bind(a.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| match is_unique_violation(&e) {
                        true => StoreError::Conflict("address"),
                        false => StoreError::Other(anyhow::Error::new(e).context("inserting address")),
                    })?;
                }
                tx.commit().await.context("committing identity")?;
                Ok(())
            }

            async fn identity(&self, identity_id: &str) -> anyhow::Result<Option<IdentityRecord>> {
                sqlx::query_as("select * from identity where identity_id = $1 and identity_id <> $2")
                    .bind(identity_id)
                    .bind(PLACEHOLDER_IDENTITY_ID)
                    .fetch_optional(&self.readers)
                    .await
                    .context("reading identity")
            }

            async fn identity_for_login(&self, login: LoginLookup<'_>) -> anyhow::Result<(IdentityRecord, Vec<AddressRecord>)> {
                // One statement for the identity and its addresses (a row per address).
                let query = match login {
                    LoginLookup::Address(kind, value) => sqlx::query_as::<_, IdentityAddressRow>(concat!(
                        "select i.*, a.address_id, a.kind, a.value, a.verified, a.created_at as address_created_at \
                         from identity i left join address a on a.identity_id = i.identity_id where i.identity_id = \
                         coalesce((select identity_id from address where kind = $1 and value = $2), $3) ",
                        "order by a.created_at, a.kind, a.value"
                    ))
                    .bind(kind.as_str())
                    .bind(value)
                    .bind(PLACEHOLDER_IDENTITY_ID),
                    LoginLookup::Username(username) => sqlx::query_as::<_, IdentityAddressRow>(concat!(
                        "select i.*, a.address_id, a.kind, a.value, a.verified, a.created_at as address_created_at \
                         from identity i left join address a on a.identity_id = i.identity_id where i.identity_id = \
                         coalesce((select identity_id from identity where username = $1), $2) ",
                        "order by a.created_at, a.kind, a.value"
                    ))
                    .bind(username)
                    .bind(PLACEHOLDER_IDENTITY_ID),
                };
                let rows = query.fetch_all(&self.readers).await.context("reading identity for login")?;
                IdentityAddressRow::collect(rows).context("the placeholder identity is missing")
            }

            async fn addresses(&self, identity_id: &str) -> anyhow::Result<Vec<AddressRecord>> {
                sqlx::query_as("select * from address where identity_id = $1 order by created_at, kind, value")
                    .bind(identity_id)
                    .fetch_all(&self.readers)
                    .await
                    .context("reading addresses")
            }

            async fn list_identities(&self, limit: i64, offset: i64) -> anyhow::Result<Vec<IdentityRecord>> {
                sqlx::query_as(
                    "select * from identity where identity_id <> $3 order by created_at, identity_id limit $1 offset $2",
                )
                .bind(limit)
                .bind(offset)
                .bind(PLACEHOLDER_IDENTITY_ID)
                .fetch_all(&self.readers)
                .await
                .context("listing identities")
            }

            async fn delete_identity(&self, identity_id: &str) -> anyhow::Result<bool> {
                let mut tx = self.pool.begin().await.context("beginning transaction")?;
                let done = sqlx::query("delete from identity where identity_id = $1 and identity_id <> $2")
                    .bind(identity_id)
                    .bind(PLACEHOLDER_IDENTITY_ID)
                    .execute(&mut *tx)
                    .await
                    .context("deleting identity")?;
                sqlx::query("delete from recovery_flow where identity_id = $1")
                    .bind(identity_id)
                    .execute(&mut *tx)
                    .await
                    .context("deleting the identity's recovery flows")?;
                tx.commit().await.context("committing identity deletion")?;
                Ok(done.rows_affected() > 0)
            }

            async fn update_password_hash(
                &self,
                identity_id: &str,
                expected: &str,
                new_hash: &str,
                now: i64,
            ) -> anyhow::Result<()> {
                sqlx::query(
                    "update identity set password_hash = $3, updated_at = $4 where identity_id = $1 and password_hash = $2",
                )
                .bind(identity_id)
                .bind(expected)
                .bind(new_hash)
                .bind(now)
                .execute(&self.pool)
                .await
                .context("updating password hash")?;
                Ok(())
            }

            async fn update_identity(&self, identity_id: &str, changes: &IdentityChanges, now: i64) -> StoreResult<bool> {
                let mut tx = self.pool.begin().await.context("beginning transaction")?;
                let done = sqlx::query(
                    "update identity set \
                       username = case when $2 then $3 else username end, \
                       roles = coalesce($4, roles), \
                       password_hash = coalesce($5, password_hash), \
                       credential_epoch = case when $5 is null then credential_epoch else credential_epoch + 1 end, \
                       updated_at = $6 \
                     where identity_id = $1 and identity_id <> $7",
                )
                .bind(identity_id)
                .bind(changes.username.is_some())
                .bind(changes.username.clone().flatten())
                .bind(&changes.roles)
                .bind(&changes.password_hash)
                .bind(now)
                .bind(PLACEHOLDER_IDENTITY_ID)
                .execute(&mut *tx)
                .await
                .map_err(|e| match is_unique_violation(&e) {
                    true => StoreError::Conflict("username"),
                    false => StoreError::Other(anyhow::Error::new(e).context("updating identity")),
                })?;
                if changes.password_hash.is_some() {
                    // In the same transaction, so no session of the old password survives.
                    sqlx::query("update session set revoked_at = $2 where identity_id = $1 and revoked_at is null")
                        .bind(identity_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .context("revoking sessions")?;
                }
                tx.commit().await.context("committing identity update")?;
                Ok(done.rows_affected() > 0)
            }

            async fn insert_address(&self, a: &AddressRecord) -> StoreResult<()> {
                sqlx::query(
                    "insert into address (address_id, identity_id, kind, value, verified, created_at) \
                     values ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&a.address_id)
                .bind(&a.identity_id)
                .bind(&a.kind)
                .bind(&a.value)
                .bind(a.verified)
                .bind(a.created_at)
                .execute(&self.pool)
                .await
                .map_err(|e| match is_unique_violation(&e) {
                    true => StoreError::Conflict("address"),
                    false => StoreError::Other(anyhow::Error::new(e).context("inserting address")),
                })?;
                Ok(())
            }

            async fn set_address_verified(
                &self,
                identity_id: &str,
                kind: AddressKind,
                value: &str,
                verified: bool,
            ) -> anyhow::Result<bool> {
                let done = sqlx::query(
                    "update address set verified = $4 where identity_id = $1 and kind = $2 and value = $3",
                )
                .bind(identity_id)
                .bind(kind.as_str())
                .bind(value)
                .bind(verified)
                .execute(&self.pool)
                .await
                .context("marking address verification")?;
                Ok(done.rows_affected() > 0)
            }

            async fn create_recovery_flow(&self, start: &NewRecoveryFlow) -> anyhow::Result<StartOutcome> {
                self.run_start(start).await
            }

            async fn code_attempts_since(&self, identity_id: &str, address_key: &str, since: i64) -> anyhow::Result<CodeAttempts> {
                let (by_login, by_identity): (i64, i64) = sqlx::query_as(
                    "select cast(coalesce(sum(case when address_key = $2 then code_attempts else 0 end), 0) as bigint), \
                       cast(coalesce(sum(case when identity_id = $1 and channel <> 'support' then code_attempts else 0 end), 0) as bigint) \
                     from recovery_flow where (identity_id = $1 or address_key = $2) and created_at > $3",
                )
                .bind(identity_id)
                .bind(address_key)
                .bind(since)
                .fetch_one(&self.readers)
                .await
                .context("counting recent code attempts")?;
                Ok(CodeAttempts { by_login, by_identity })
            }

            async fn recovery_flow_by_cookie(&self, cookie_hash: &str) -> anyhow::Result<Option<RecoveryFlowRecord>> {
                sqlx::query_as("select * from recovery_flow where cookie_hash = $1")
                    .bind(cookie_hash)
                    .fetch_optional(&self.readers)
                    .await
                    .context("reading recovery flow")
            }

            async fn reserve_code_attempt(
                &self,
                flow_id: &str,
                max_attempts: u32,
                now: i64,
            ) -> anyhow::Result<Option<RecoveryFlowRecord>> {
                let max_attempts = if max_attempts == 0 {
                    i64::MAX
                } else {
                    i64::from(max_attempts)
                };
                sqlx::query_as(
                    "update recovery_flow set code_attempts = code_attempts + 1 \
                     where recovery_flow_id = $1 and state = 'sent' and expires_at > $3 and code_attempts < $2 \
                     returning *",
                )
                .bind(flow_id)
                .bind(max_attempts)
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .context("reserving a code attempt")
            }

            async fn kill_flow(&self, flow_id: &str) -> anyhow::Result<()> {
                sqlx::query(
                    "update recovery_flow set state = 'dead', code_hash = null where recovery_flow_id = $1 and state = 'sent'",
                )
                .bind(flow_id)
                .execute(&self.pool)
                .await
                .context("killing flow")?;
                Ok(())
            }

            async fn mark_flow_verified(
                &self,
                flow_id: &str,
                old_cookie_hash: &str,
                new_cookie_hash: &str,
                now: i64,
            ) -> anyhow::Result<bool> {
                let done = sqlx::query(
                    "update recovery_flow set state = 'verified', code_hash = null, cookie_hash = $3, verified_at = $4 \
                     where recovery_flow_id = $1 and cookie_hash = $2 and state = 'sent' and expires_at > $4",
                )
                .bind(flow_id)
                .bind(old_cookie_hash)
                .bind(new_cookie_hash)
                .bind(now)
                .execute(&self.pool)
                .await
                .context("marking flow verified")?;
                Ok(done.rows_affected() == 1)
            }

            async fn complete_recovery(&self, r: &CompletedRecovery) -> anyhow::Result<bool> {
                let mut tx = self.pool.begin().await.context("beginning transaction")?;
                let spent = sqlx::query(
                    "update recovery_flow set state = 'used', used_at = $3 \
                     where recovery_flow_id = $1 and identity_id = $2 and state = $4 and expires_at > $3 and not decoy",
                )
                .bind(&r.flow_id)
                .bind(&r.identity_id)
                .bind(r.now)
                .bind(r.from_state)
                .execute(&mut *tx)
                .await
                .context("spending recovery flow")?;
                if spent.rows_affected() != 1 {
                    tx.rollback().await.context("rolling back")?;
                    return Ok(false);
                }
                sqlx::query(
                    "update identity set password_hash = $2, updated_at = $3, credential_epoch = credential_epoch + 1 \
                     where identity_id = $1",
                )
                    .bind(&r.identity_id)
                    .bind(&r.password_hash)
                    .bind(r.now)
                    .execute(&mut *tx)
                    .await
                    .context("storing new password hash")?;
                sqlx::query("update session set revoked_at = $2 where identity_id = $1 and revoked_at is null")
                    .bind(&r.identity_id)
                    .bind(r.now)
                    .execute(&mut *tx)
                    .await
                    .context("revoking sessions")?;
                sqlx::query(
                    "update recovery_flow set state = 'dead', code_hash = null \
                     where identity_id = $1 and state in ('sent', 'verified')",
                )
                .bind(&r.identity_id)
                .execute(&mut *tx)
                .await
                .context("closing other flows")?;
                insert_session(&mut *tx, &r.session).await?;
                insert_outbox(&mut tx, &r.notice).await?;
                for event in &r.audit {
                    insert_audit(&mut *tx, event).await?;
                }
                tx.commit().await.context("committing reset")?;
                Ok(true)
            }

            async fn create_session(
                &self,
                session: &SessionRecord,
                audit: &AuditEventRecord,
                credential_epoch: i64,
            ) -> anyhow::Result<bool> {
                let mut tx = self.pool.begin().await.context("beginning transaction")?;
                // PostgreSQL reads the epoch with a row lock (`for share`), so a
                // password change either commits first (and is seen here) or
                // waits for this session and then revokes it.
                let current: Option<(i64,)> = sqlx::query_as(IDENTITY_EPOCH_SQL)
                    .bind(&session.identity_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .context("reading the credential epoch")?;
                if current != Some((credential_epoch,)) {
                    tx.rollback().await.context("rolling back")?;
                    return Ok(false);
                }
                insert_session(&mut *tx, session).await?;
                insert_audit(&mut *tx, audit).await?;
                tx.commit().await.context("committing session")?;
                Ok(true)
            }

            async fn session_by_token_hash(&self, token_hash: &str) -> anyhow::Result<Option<SessionRecord>> {
                sqlx::query_as("select * from session where token_hash = $1")
                    .bind(token_hash)
                    .fetch_optional(&self.readers)
                    .await
                    .context("reading session by token")
            }

            async fn session(&self, session_id: &str) -> anyhow::Result<Option<SessionRecord>> {
                sqlx::query_as("select * from session where session_id = $1")
                    .bind(session_id)
                    .fetch_optional(&self.readers)
                    .await
                    .context("reading session")
            }

            async fn revoke_session(&self, session_id: &str, now: i64) -> anyhow::Result<bool> {
                let done = sqlx::query("update session set revoked_at = $2 where session_id = $1 and revoked_at is null")
                    .bind(session_id)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .context("revoking session")?;
                Ok(done.rows_affected() > 0)
            }

            async fn revoke_identity_sessions(&self, identity_id: &str, now: i64) -> anyhow::Result<u64> {
                let done = sqlx::query("update session set revoked_at = $2 where identity_id = $1 and revoked_at is null")
                    .bind(identity_id)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .context("revoking identity sessions")?;
                Ok(done.rows_affected())
            }

            async fn reserve_login_attempt(
                &self,
                key: &str,
                now: i64,
                reset_before: i64,
                policy: LoginLockPolicy,
            ) -> anyhow::Result<LoginReservation> {
                // `streak` is the count after this attempt; the lock follows
                // `LoginLockPolicy::lock_ms` of it ($4 free, $5 doublings, $6 the longest wait).
                // A refused upsert means the key is locked; if the lock is
                // gone by the time it is read (a right password cleared it
                // meanwhile), the reservation is tried again.
                for _ in 0..3 {
                    let reserved: Option<(i64,)> = sqlx::query_as(concat!(
                        "insert into login_throttle (throttle_key, failures, locked_until, updated_at) values ($1, 1, $7, $2) \
                         on conflict (throttle_key) do update set \
                           failures = ", streak!(), ", \
                           locked_until = case when ", streak!(), " < $4 then 0 \
                             when ", streak!(), " - $4 >= $5 then $2 + $6 \
                             else $2 + (cast(1000 as bigint) << cast(", streak!(), " - $4 as integer)) end, \
                           updated_at = $2 \
                         where login_throttle.locked_until <= $2 \
                         returning failures"
                    ))
                    .bind(key)
                    .bind(now)
                    .bind(reset_before)
                    .bind(policy.free)
                    .bind(policy.doublings())
                    .bind(policy.max_lock_ms)
                    .bind(match policy.lock_ms(1) { 0 => 0, lock => now + lock })
                    .fetch_optional(&self.pool)
                    .await
                    .context("reserving a login attempt")?;
                    if let Some((failures,)) = reserved {
                        return Ok(LoginReservation::Reserved { failures });
                    }
                    let lock: Option<(i64,)> = sqlx::query_as("select locked_until from login_throttle where throttle_key = $1")
                        .bind(key)
                        .fetch_optional(&self.pool)
                        .await
                        .context("reading a login lock")?;
                    if let Some((until,)) = lock {
                        return Ok(LoginReservation::Locked { until });
                    }
                }
                Ok(LoginReservation::Locked { until: now + 1000 })
            }

            async fn clear_login_throttle(&self, keys: &[String]) -> anyhow::Result<()> {
                for key in keys {
                    sqlx::query("delete from login_throttle where throttle_key = $1")
                        .bind(key)
                        .execute(&self.pool)
                        .await
                        .context("clearing login throttle")?;
                }
                Ok(())
            }

            async fn insert_refresh_token(&self, t: &RefreshTokenRecord) -> anyhow::Result<()> {
                insert_refresh(&self.pool, t).await
            }

            async fn refresh_token_by_hash(&self, token_hash: &str) -> anyhow::Result<Option<RefreshTokenRecord>> {
                sqlx::query_as("select * from refresh_token where token_hash = $1")
                    .bind(token_hash)
                    .fetch_optional(&self.readers)
                    .await
                    .context("reading refresh token")
            }

            async fn rotate_refresh_token(&self, spent_id: &str, next: &RefreshTokenRecord, now: i64) -> anyhow::Result<bool> {
                let mut tx = self.pool.begin().await.context("beginning transaction")?;
                let spent = sqlx::query(
                    "update refresh_token set spent_at = $2 \
                     where refresh_token_id = $1 and spent_at is null and revoked_at is null and expires_at > $2",
                )
                .bind(spent_id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .context("spending refresh token")?;
                if spent.rows_affected() != 1 {
                    tx.rollback().await.context("rolling back")?;
                    return Ok(false);
                }
                insert_refresh(&mut *tx, next).await?;
                tx.commit().await.context("committing refresh rotation")?;
                Ok(true)
            }

            async fn revoke_refresh_family(&self, family_id: &str, now: i64) -> anyhow::Result<()> {
                let mut tx = self.pool.begin().await.context("beginning transaction")?;
                sqlx::query("update refresh_token set revoked_at = $2 where family_id = $1 and revoked_at is null")
                    .bind(family_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .context("revoking refresh family")?;
                sqlx::query(
                    "update session set revoked_at = $2 where revoked_at is null and session_id in \
                     (select session_id from refresh_token where family_id = $1)",
                )
                .bind(family_id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .context("revoking the family's session")?;
                tx.commit().await.context("committing family revocation")?;
                Ok(())
            }

            async fn claim_outbox(&self, now: i64, lease_until: i64, limit: i64) -> anyhow::Result<Vec<OutboxMessageRecord>> {
                sqlx::query_as(CLAIM_OUTBOX_SQL)
                    .bind(now)
                    .bind(lease_until)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .context("claiming outbox messages")
            }

            async fn mark_outbox_sent(&self, message_id: &str, now: i64) -> anyhow::Result<()> {
                sqlx::query(
                    "update outbox_message set status = 'sent', sealed_payload = null, sent_at = $2, lease_until = null, last_error = null \
                     where outbox_message_id = $1",
                )
                .bind(message_id)
                .bind(now)
                .execute(&self.pool)
                .await
                .context("marking message sent")?;
                Ok(())
            }

            async fn mark_outbox_retry(&self, message_id: &str, next_attempt_at: i64, error: &str) -> anyhow::Result<()> {
                sqlx::query("update outbox_message set next_attempt_at = $2, last_error = $3, lease_until = null where outbox_message_id = $1")
                    .bind(message_id)
                    .bind(next_attempt_at)
                    .bind(error)
                    .execute(&self.pool)
                    .await
                    .context("scheduling message retry")?;
                Ok(())
            }

            async fn mark_outbox_failed(&self, message_id: &str, error: &str) -> anyhow::Result<()> {
                sqlx::query(
                    "update outbox_message set status = 'failed', sealed_payload = null, last_error = $2, lease_until = null \
                     where outbox_message_id = $1",
                )
                .bind(message_id)
                .bind(error)
                .execute(&self.pool)
                .await
                .context("marking message failed")?;
                Ok(())
            }

            async fn outbox_stats(&self) -> anyhow::Result<OutboxStats> {
                let (pending, oldest): (i64, Option<i64>) =
                    sqlx::query_as("select count(*), min(created_at) from outbox_message where status = 'pending'")
                        .fetch_one(&self.readers)
                        .await
                        .context("reading outbox stats")?;
                Ok(OutboxStats {
                    pending,
                    oldest_pending_created_at: oldest,
                })
            }

            async fn purge(&self, rows_before: i64, audit_before: i64, now: i64) -> anyhow::Result<Purged> {
                // Each statement deletes one batch (`$3 >= 0` only keeps the
                // parameter list alike, as PostgreSQL wants every one used);
                // short batches keep the
                // SQLite writer free for requests between them.
                const BATCH: i64 = 500;
                async fn drain(store: &$store, sql: &'static str, before: i64, now: i64) -> anyhow::Result<u64> {
                    let mut total = 0;
                    loop {
                        let done = sqlx::query(sql)
                            .bind(before)
                            .bind(BATCH)
                            .bind(now)
                            .execute(&store.pool)
                            .await
                            .context("purging old rows")?;
                        total += done.rows_affected();
                        if done.rows_affected() < BATCH as u64 {
                            return Ok(total);
                        }
                    }
                }
                let mut purged = Purged {
                    recovery_flows: drain(self,
                        "delete from recovery_flow where recovery_flow_id in \
                         (select recovery_flow_id from recovery_flow where expires_at < $1 and $3 >= 0 limit $2)",
                        rows_before, now).await?,
                    login_throttles: drain(self,
                        "delete from login_throttle where throttle_key in \
                         (select throttle_key from login_throttle where updated_at < $1 and locked_until < $3 limit $2)",
                        rows_before, now).await?,
                    outbox_messages: drain(self,
                        "delete from outbox_message where outbox_message_id in \
                         (select outbox_message_id from outbox_message where status <> 'pending' and created_at < $1 and $3 >= 0 limit $2)",
                        rows_before, now).await?,
                    sessions: drain(self,
                        "delete from session where session_id in \
                         (select session_id from session where expires_at < $1 and $3 >= 0 limit $2)",
                        rows_before, now).await?,
                    audit_events: 0,
                };
                if audit_before > 0 {
                    purged.audit_events = drain(self,
                        "delete from audit_event where audit_event_id in \
                         (select audit_event_id from audit_event where created_at < $1 and $3 >= 0 limit $2)",
                        audit_before, now).await?;
                }
                Ok(purged)
            }

            async fn insert_audit_event(&self, event: &AuditEventRecord) -> anyhow::Result<()> {
                insert_audit(&self.pool, event).await
            }

            async fn audit_events(
                &self,
                identity_id: Option<&str>,
                since: Option<i64>,
                limit: i64,
            ) -> anyhow::Result<Vec<AuditEventRecord>> {
                sqlx::query_as(AUDIT_EVENTS_SQL)
                .bind(identity_id)
                .bind(since.unwrap_or(0))
                .bind(limit)
                .fetch_all(&self.readers)
                .await
                .context("reading audit events")
            }
        }
    };
}

pub(crate) use {impl_store, streak};
