//! Enables the PostgreSQL end-to-end suite (`tests/api_postgres.rs`) when
//! `LATCHKEY_TEST_POSTGRES_URL` names a database to run it against, and
//! rebuilds when a migration changes (`sqlx::migrate!` embeds them).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    println!("cargo::rerun-if-env-changed=LATCHKEY_TEST_POSTGRES_URL");
    println!("cargo::rerun-if-changed=migrations");
    if std::env::var_os("LATCHKEY_TEST_POSTGRES_URL").is_some() {
        println!("cargo::rustc-cfg=postgres_tests");
    }
}
