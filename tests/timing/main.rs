//! The statistical timing-equality tests of `tests/api/timing.rs`, in a
//! binary of their own so that no other test shares the machine while they
//! measure: cargo runs test binaries one after another, and `quiet()` runs
//! these one at a time. A measurement taken beside a hundred other tests
//! measures their load, not latchkey's. They run on SQLite and, when
//! `LATCHKEY_TEST_POSTGRES_URL` is set (see `build.rs`), on PostgreSQL.
// The same modules, once per backend, each under its own `BACKEND`.
#![allow(clippy::duplicate_mod)]

/// Holds the machine for one timing test.
pub async fn quiet() -> tokio::sync::MutexGuard<'static, ()> {
    static QUIET: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    QUIET.lock().await
}

#[path = "../api"]
mod sqlite {
    pub const BACKEND: helpers::Backend = helpers::Backend::Sqlite;

    // The suite's helpers, of which these tests use a few.
    #[allow(dead_code)]
    #[path = "helpers.rs"]
    mod helpers;
    #[allow(dead_code)]
    #[path = "smtp_sink.rs"]
    mod smtp_sink;
    #[path = "timing.rs"]
    mod timing;
}

#[cfg(postgres_tests)]
#[path = "../api"]
mod postgres {
    pub const BACKEND: helpers::Backend = helpers::Backend::Postgres;

    #[allow(dead_code)]
    #[path = "helpers.rs"]
    mod helpers;
    #[allow(dead_code)]
    #[path = "smtp_sink.rs"]
    mod smtp_sink;
    #[path = "timing.rs"]
    mod timing;
}
