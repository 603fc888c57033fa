//! "Known and unknown take the same time": a Mann–Whitney U test over
//! hundreds of interleaved requests must not tell the two groups apart.

use std::time::Instant;

use serde_json::json;

use super::helpers::*;

const SAMPLES: usize = 300;
/// A start costs about a millisecond, so its tests can afford more samples,
/// and see a difference of a few microseconds (SECURITY.md).
const START_SAMPLES: usize = 1000;
const ALPHA: f64 = 0.01;

/// Runs `experiment` (which returns a p-value) and, only if it rejects at
/// `ALPHA`, replicates it once with fresh samples: a real difference shows in
/// both runs, while a chance rejection (1 % of runs by construction) does not
/// fail CI. The overall false-alarm rate is then ALPHA², see SECURITY.md.
async fn distinguishable<F, Fut>(mut experiment: F) -> Option<(f64, f64)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = f64>,
{
    let first = experiment().await;
    if first >= ALPHA {
        return None;
    }
    let second = experiment().await;
    (second < ALPHA).then_some((first, second))
}

/// Two-sided p-value of the Mann–Whitney U test (normal approximation with
/// tie-corrected variance).
fn mann_whitney_p(a: &[f64], b: &[f64]) -> f64 {
    let mut all: Vec<(f64, usize)> = a.iter().map(|x| (*x, 0)).chain(b.iter().map(|x| (*x, 1))).collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let n = all.len();
    let mut ranks = vec![0.0; n];
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for r in ranks.iter_mut().take(j + 1).skip(i) {
            *r = rank;
        }
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        i = j + 1;
    }
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let r1: f64 = all
        .iter()
        .zip(&ranks)
        .filter(|((_, g), _)| *g == 0)
        .map(|(_, r)| r)
        .sum();
    let u1 = r1 - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let total = n1 + n2;
    let variance = n1 * n2 / 12.0 * ((total + 1.0) - tie_term / (total * (total - 1.0)));
    let z = (u1 - mean).abs() / variance.sqrt();
    2.0 * (1.0 - normal_cdf(z))
}

fn normal_cdf(z: f64) -> f64 {
    // Abramowitz & Stegun 7.1.26 for erf.
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    0.5 * (1.0 + erf)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

/// Sends the requests in a random interleaving and returns the latencies (µs) per group.
async fn measure<F, Fut>(plan: Vec<(usize, usize)>, send: F) -> (Vec<f64>, Vec<f64>)
where
    F: Fn(usize, usize) -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for (group, n) in plan {
        let began = Instant::now();
        let status = send(group, n).await;
        let micros = began.elapsed().as_secs_f64() * 1e6;
        assert!(status < 500, "server error during timing run");
        if group == 0 {
            known.push(micros)
        } else {
            unknown.push(micros)
        }
    }
    (known, unknown)
}

fn shuffled_plan(samples: usize) -> Vec<(usize, usize)> {
    let mut plan: Vec<(usize, usize)> = (0..samples).flat_map(|n| [(0, n), (1, n)]).collect();
    shuffle(&mut plan);
    plan
}

/// What an attacker does before each measured start.
#[derive(Clone, Copy)]
enum Before {
    Nothing,
    /// An unmeasured start for `steer(address)`: a try at warming the rows
    /// the measured lookup will read.
    Steer(fn(&str) -> String),
    /// An unmeasured start for the same address, then a new account (and
    /// the table sizes read again, as a lookup does every ten seconds): a
    /// try at moving an unknown login's rows, but not a known one's, to
    /// cold ones.
    WarmThenGrow,
}

/// Whether starts for the seeded `known-N@example.com` and for
/// `unknown_address(n)`, which names no account, can be told apart by their
/// timing. Each round starts every address of both groups once, so in the
/// second round both groups supersede a live flow of the first.
async fn start_against_unknown(unknown_address: fn(usize) -> String, before: Before) -> Option<(f64, f64)> {
    let _quiet = crate::quiet().await;
    // The request path alone: delivery runs elsewhere (`latchkey courier`, or
    // this process's worker on its own clock), never inside a request.
    // Two starts per address and round: within the limit in both rounds.
    let starts_per_round = if matches!(before, Before::WarmThenGrow) { 2 } else { 1 };
    let app = spawn_app_inner(|s| s.recovery.max_starts_per_hour = 3 * starts_per_round, false).await;
    seed_accounts(&app.services, "known", START_SAMPLES, None).await;
    // Warm up connections, caches and the courier.
    for n in 0..20 {
        app.start_recovery(&format!("warmup-{n}@example.com")).await;
    }

    let app = &app;
    distinguishable(|| async move {
        let (mut known, mut unknown) = (Vec::new(), Vec::new());
        for (group, n) in shuffled_plan(START_SAMPLES) {
            let email = if group == 0 {
                format!("known-{n}@example.com")
            } else {
                unknown_address(n)
            };
            match before {
                Before::Nothing => {}
                Before::Steer(steer) => {
                    app.start_recovery(&steer(&email)).await;
                }
                Before::WarmThenGrow => {
                    app.start_recovery(&email).await;
                    let grown = GROWN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    seed_accounts(&app.services, &format!("grown{grown}"), 1, None).await;
                    app.services.store.read_lookup_sizes().await.expect("sizes read");
                }
            }
            let began = Instant::now();
            let status = app.start_recovery(&email).await.status().as_u16();
            let micros = began.elapsed().as_secs_f64() * 1e6;
            assert_eq!(status, 200, "{email}");
            if group == 0 { &mut known } else { &mut unknown }.push(micros);
        }
        let p = mann_whitney_p(&known, &unknown);
        println!(
            "start: known median {:.0} µs, unknown ({}, {}) median {:.0} µs, p = {p:.3}",
            median(&known),
            unknown_address(0),
            match before {
                Before::Nothing => "alone",
                Before::Steer(_) => "steered",
                Before::WarmThenGrow => "after an insert",
            },
            median(&unknown)
        );
        p
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_start_takes_the_same_time_for_known_and_unknown_addresses() {
    // Sorted after every known address.
    let verdict = start_against_unknown(|n| format!("unknown-{n}@example.com"), Before::Nothing).await;
    assert!(
        verdict.is_none(),
        "known and unknown starts are distinguishable: {verdict:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_start_takes_the_same_time_for_known_addresses_and_unknown_ones_between_them() {
    let verdict = start_against_unknown(|n| format!("known-{n}x@example.com"), Before::Nothing).await;
    assert!(
        verdict.is_none(),
        "known starts and unknown ones sorted between them are distinguishable: {verdict:?}"
    );
}

/// An attacker who knows how a lookup picks the rows an unknown login reads
/// tries to warm them first: a start for the address that sorts right after
/// the one measured (a lookup that read the next account in the index would
/// read the same rows for both when the measured address has no account).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_steered_by_the_address_after_it_takes_the_same_time_for_known_and_unknown() {
    let verdict = start_against_unknown(
        |n| format!("known-{n}x@example.com"),
        Before::Steer(|email| format!("{email}x")),
    )
    .await;
    assert!(
        verdict.is_none(),
        "steered starts tell known and unknown addresses apart: {verdict:?}"
    );
}

/// Accounts created by `Before::WarmThenGrow`, for their unique names.
static GROWN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// An attacker who can create accounts, or waits for them, starts an
/// address, lets an account be created, and starts it again: the known
/// address's rows are still warm, and an unknown one's must be too (its
/// place in the table must not move with every insert).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_after_an_account_was_created_takes_the_same_time_for_known_and_unknown() {
    let verdict = start_against_unknown(|n| format!("unknown-{n}@example.com"), Before::WarmThenGrow).await;
    assert!(
        verdict.is_none(),
        "starts after an insert tell known and unknown addresses apart: {verdict:?}"
    );
}

/// Whether wrong passwords for the seeded `{prefix}-N@example.com` accounts
/// and logins of unknown accounts can be told apart by their timing.
async fn wrong_password_against_unknown(app: &TestApp, prefix: &str) -> Option<(f64, f64)> {
    for n in 0..10 {
        app.login(&format!("warmup-{n}@example.com"), "wrong password entirely")
            .await;
        app.login(&format!("{prefix}-{n}@example.com"), "wrong password entirely")
            .await;
    }
    distinguishable(|| async move {
        let (known, unknown) = measure(shuffled_plan(SAMPLES), |group, n| {
            let login = if group == 0 {
                format!("{prefix}-{n}@example.com")
            } else {
                format!("unknown-{n}@example.com")
            };
            let body = json!({"identifier": login, "password": "wrong password entirely"});
            async move { app.post_json("/api/auth/login", &body, None).await.status().as_u16() }
        })
        .await;
        let p = mann_whitney_p(&known, &unknown);
        println!(
            "login: {prefix} wrong-password median {:.0} µs, unknown median {:.0} µs, p = {p:.3}",
            median(&known),
            median(&unknown)
        );
        p
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_takes_the_same_time_for_an_unknown_account_and_a_wrong_password() {
    let _quiet = crate::quiet().await;
    let app = spawn_app().await;
    let hash = app
        .services
        .hasher
        .hash(secrecy::SecretString::from(PASSWORD.to_owned()))
        .await
        .expect("hash");
    seed_accounts(&app.services, "known", SAMPLES, Some(hash)).await;
    let verdict = wrong_password_against_unknown(&app, "known").await;
    assert!(
        verdict.is_none(),
        "unknown accounts and wrong passwords are distinguishable: {verdict:?}"
    );
}

/// An imported bcrypt hash (cost 10) takes several times longer to check
/// than latchkey's Argon2id: without the failure floor, a wrong password for
/// such an account would be told from an unknown login at once. The import
/// goes straight to the store, as one by the CLI does behind a running
/// server's back: the server's first check after it covers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_for_an_imported_bcrypt_account_takes_the_time_of_an_unknown_login() {
    let _quiet = crate::quiet().await;
    let app = spawn_app().await;
    let hash = bcrypt::hash(PASSWORD, 10).expect("bcrypt");
    import_accounts(&app.services, "imported", SAMPLES, &hash).await;
    assert!(app.services.hasher.failure_floor().is_zero());
    let verdict = wrong_password_against_unknown(&app, "imported").await;
    assert!(
        verdict.is_none(),
        "unknown accounts and wrong passwords for imported accounts are distinguishable: {verdict:?}"
    );
}

/// A frozen account ("this wasn't me") must answer exactly as an account
/// that does not exist: a login with its *right* password, and a start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_account_logs_in_and_starts_in_the_time_of_an_unknown_one() {
    let _quiet = crate::quiet().await;
    let app = spawn_app_inner(|_| {}, false).await;
    let hash = app
        .services
        .hasher
        .hash(secrecy::SecretString::from(PASSWORD.to_owned()))
        .await
        .expect("hash");
    seed_accounts(&app.services, "frozen", SAMPLES, Some(hash)).await;
    app.execute_sql(
        "update identity set frozen_at = 1 where identity_id in \
         (select identity_id from address where value like 'frozen-%')",
    )
    .await;
    for n in 0..10 {
        app.login(&format!("warmup-{n}@example.com"), PASSWORD).await;
        app.start_recovery(&format!("warmup-{n}@example.com")).await;
    }

    let app = &app;
    let verdict = distinguishable(|| {
        async move {
            let (frozen, unknown) = measure(shuffled_plan(SAMPLES), |group, n| {
                // The same addresses in every round on both sides, so both
                // carry the same history (throttle rows, superseded flows).
                let login = match group {
                    0 => format!("frozen-{n}@example.com"),
                    _ => format!("unknown-{n}@example.com"),
                };
                async move {
                    let status = app.login(&login, PASSWORD).await.status().as_u16();
                    assert_eq!(status, 401, "{login} logged in");
                    status
                }
            })
            .await;
            let login_p = mann_whitney_p(&frozen, &unknown);
            let (frozen_starts, unknown_starts) = measure(shuffled_plan(SAMPLES), |group, n| {
                let email = match group {
                    0 => format!("frozen-{n}@example.com"),
                    _ => format!("unknown-{n}@example.com"),
                };
                async move { app.start_recovery(&email).await.status().as_u16() }
            })
            .await;
            let start_p = mann_whitney_p(&frozen_starts, &unknown_starts);
            println!(
                "frozen: login medians {:.0}/{:.0} µs (p = {login_p:.3}), start medians {:.0}/{:.0} µs (p = {start_p:.3})",
                median(&frozen),
                median(&unknown),
                median(&frozen_starts),
                median(&unknown_starts)
            );
            login_p.min(start_p)
        }
    })
    .await;
    assert!(
        verdict.is_none(),
        "a frozen account and an unknown one are distinguishable: {verdict:?}"
    );
}

/// An app whose account `emails[0]` also has the username `username`, after
/// an attacker started `by_username` flows by the username and `per_email`
/// for each of `emails` (the second names no account), limits off.
async fn planted(
    configure: impl FnOnce(&mut latchkey::config::Settings),
    emails: [&str; 2],
    username: &str,
    (by_username, per_email): (usize, usize),
) -> TestApp {
    let app = spawn_app_inner(
        |s| {
            s.recovery.max_starts_per_hour = 0;
            configure(s);
        },
        false,
    )
    .await;
    app.create_full_identity(emails[0], Some(username), None).await;
    for _ in 0..by_username {
        let started = app
            .post_json("/v2/auth/recovery/request", &json!({ "login": username }), None)
            .await;
        assert_eq!(started.status(), 200);
    }
    for email in emails {
        for _ in 0..per_email {
            assert_eq!(app.start_recovery(email).await.status(), 200);
        }
    }
    app
}

/// Whether wrong codes sent with `cookies[0]` (a known address's flow) and
/// `cookies[1]` (an unknown one's), interleaved, can be told apart by their
/// time; every one must be answered `status`.
async fn wrong_codes_distinguishable(
    app: &TestApp,
    cookies: &[String],
    status: u16,
    label: &str,
) -> Option<(f64, f64)> {
    distinguishable(|| async move {
        let (known, unknown) = measure(shuffled_plan(SAMPLES), |group, _| async move {
            let answered = app.verify(&cookies[group], "000000").await.status().as_u16();
            assert_eq!(answered, status);
            answered
        })
        .await;
        let p = mann_whitney_p(&known, &unknown);
        println!(
            "{label}: known median {:.0} µs, unknown median {:.0} µs, p = {p:.3}",
            median(&known),
            median(&unknown)
        );
        p
    })
    .await
}

/// A verify first reads the code budgets of the flow's login and of its
/// owner. An attacker who planted many flows for an address and spent its
/// daily budget gets every later verify answered 429 without spending an
/// attempt, so can sample that read as often as the IP limit allows. The
/// time must not show whether the address has an account, nor whether a
/// username shares it: the account has a username whose flows the attacker
/// planted too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verify_over_the_daily_budget_takes_the_same_time_for_known_and_unknown_addresses() {
    const PLANTED: usize = 300;
    let _quiet = crate::quiet().await;
    let emails = ["planted@example.com", "nobody-planted@example.com"];
    let app = planted(
        |s| s.recovery.max_wrong_codes_per_day = 1,
        emails,
        "planted",
        (PLANTED, PLANTED),
    )
    .await;
    let mut cookies = Vec::new();
    for email in emails {
        let cookie = app.started_flow(email).await;
        // The one wrong code of the day, then every verify is refused unspent.
        assert_eq!(app.verify(&cookie, "000000").await.status(), 400);
        assert_eq!(app.verify(&cookie, "000000").await.status(), 429);
        cookies.push(cookie);
    }

    let label = format!("verify over budget, {PLANTED} flows each");
    let verdict = wrong_codes_distinguishable(&app, &cookies, 429, &label).await;
    assert!(
        verdict.is_none(),
        "a known and an unknown address's verifies are distinguishable: {verdict:?}"
    );
}

/// A wrong code that spends an attempt reads the account's budget too: its
/// time must not grow with the flows a stranger started by the account's
/// other login (each is free but for the start limit), nor tell an account
/// from an unknown address. Budgets wide enough for every sample.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_code_takes_the_same_time_for_known_and_unknown_addresses_whatever_else_was_started() {
    const PLANTED: usize = 300;
    let _quiet = crate::quiet().await;
    let emails = ["spent@example.com", "nobody-spent@example.com"];
    let configure = |s: &mut latchkey::config::Settings| {
        s.recovery.max_attempts = 10 * SAMPLES as u32;
        s.recovery.max_wrong_codes_per_day = 1_000_000;
    };
    let app = planted(configure, emails, "spent", (3 * PLANTED, PLANTED)).await;
    let mut cookies = Vec::new();
    for email in emails {
        cookies.push(app.started_flow(email).await);
    }

    let label = format!("wrong code, {PLANTED} flows each");
    let verdict = wrong_codes_distinguishable(&app, &cookies, 400, &label).await;
    assert!(
        verdict.is_none(),
        "a known and an unknown address's wrong codes are distinguishable: {verdict:?}"
    );
}

/// The same read, sampled under the budget: a burst of wrong codes at a
/// flow's last attempt is answered 429 for every request but the one that
/// wins it, and none of the losers spends anything. Their time must not show
/// whether the address has an account, nor whether a username shares it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifies_that_lose_the_race_for_a_last_attempt_take_the_same_time_for_known_and_unknown() {
    const PLANTED: usize = 300;
    const BURST: usize = 8;
    const BURSTS: usize = 150;
    let _quiet = crate::quiet().await;
    let emails = ["raced@example.com", "nobody-raced@example.com"];
    // More by the username: what the account side would walk on top.
    let configure = |s: &mut latchkey::config::Settings| {
        s.recovery.max_attempts = 1;
        s.recovery.max_wrong_codes_per_day = 1_000_000;
    };
    let app = planted(configure, emails, "raced", (3 * PLANTED, PLANTED)).await;

    let (app, emails) = (&app, &emails);
    let verdict = distinguishable(|| async move {
        let (mut known, mut unknown) = (Vec::new(), Vec::new());
        // One sample per burst, the median of its losers: requests of one
        // burst share their moment (a checkpoint, a vacuum), so counting
        // each as a sample of its own would overstate the evidence.
        for (group, _) in shuffled_plan(BURSTS) {
            let cookie = app.started_flow(emails[group]).await;
            let mut burst = tokio::task::JoinSet::new();
            for _ in 0..BURST {
                let request = app
                    .client
                    .post(app.url("/api/auth/recovery/verify"))
                    .header("cookie", format!("latchkey_recovery={cookie}"))
                    .json(&json!({ "code": "000000" }));
                burst.spawn(async move {
                    let began = Instant::now();
                    let status = request.send().await.expect("sent").status().as_u16();
                    (status, began.elapsed().as_secs_f64() * 1e6)
                });
            }
            let mut lost = Vec::new();
            for (status, micros) in burst.join_all().await {
                assert!(status == 400 || status == 429, "{status}");
                if status == 429 {
                    lost.push(micros);
                }
            }
            if !lost.is_empty() {
                if group == 0 { &mut known } else { &mut unknown }.push(median(&lost));
            }
        }
        let p = mann_whitney_p(&known, &unknown);
        println!(
            "verifies losing a race, {PLANTED} flows each: known median {:.0} µs ({} bursts), unknown median {:.0} µs ({}), p = {p:.3}",
            median(&known),
            known.len(),
            median(&unknown),
            unknown.len()
        );
        p
    })
    .await;
    assert!(
        verdict.is_none(),
        "a known and an unknown address's raced verifies are distinguishable: {verdict:?}"
    );
}

#[test]
fn the_mann_whitney_test_tells_shifted_samples_apart() {
    let a: Vec<f64> = (0..300).map(|i| f64::from(i % 50)).collect();
    let b: Vec<f64> = (0..300).map(|i| f64::from(i % 50) + 10.0).collect();
    assert!(mann_whitney_p(&a, &b) < 1e-6);
    assert!(mann_whitney_p(&a, &a) > 0.5);
}

/// Fisher–Yates with the OS RNG (the test needs an unpredictable order, not a seed).
fn shuffle<T>(items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = latchkey::random::below(u32::try_from(i + 1).unwrap_or(u32::MAX)) as usize;
        items.swap(i, j);
    }
}
