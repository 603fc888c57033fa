//! How many Argon2id verifications (latchkey's parameters) this machine can
//! run per second with every core busy: the ceiling for login and reset
//! throughput. `cargo run --release --example argon2_ceiling`.

use std::time::Instant;

use secrecy::SecretString;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let hasher = latchkey::identity::PasswordHasher::new(cores, std::time::Duration::ZERO).await?;
    let hash = hasher
        .hash(SecretString::from("correct horse battery staple 42"))
        .await?;
    // About two seconds: shorter runs moved by 15 % from one to the next.
    let rounds = 100 * cores;
    let began = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..rounds {
        let (hasher, hash) = (hasher.clone(), hash.clone());
        tasks.spawn(async move {
            hasher
                .verify(SecretString::from("wrong guess entirely"), Some(&hash))
                .await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let elapsed = began.elapsed().as_secs_f64();
    println!(
        "argon2id m=19MiB t=2 p=1: {:.1} ms per verification, ceiling {:.0} verifications/s on {cores} cores",
        1000.0 * elapsed * cores as f64 / rounds as f64,
        rounds as f64 / elapsed
    );
    Ok(())
}
