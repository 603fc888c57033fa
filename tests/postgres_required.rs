//! Under `CI=true` the PostgreSQL suite must run, not skip.

#[test]
fn the_postgres_suite_runs_under_ci() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    if ci && !cfg!(postgres_tests) {
        panic!("CI=true but LATCHKEY_TEST_POSTGRES_URL was not set: the PostgreSQL suite did not run");
    }
}
