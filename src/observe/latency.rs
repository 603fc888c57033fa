//! A bounded in-memory log of recent request latencies, and the statistics
//! the diagnostics API answers with: count, min, max, avg, p50, p95, p99 and
//! a time-bucketed series, per route.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Samples kept (the oldest are dropped first).
const CAPACITY: usize = 100_000;

#[derive(Clone)]
pub struct LatencyLog {
    samples: Arc<Mutex<VecDeque<Sample>>>,
}

struct Sample {
    at_ns: u64,
    route: Arc<str>,
    latency_ns: u64,
}

#[derive(Debug, Serialize, Clone, Copy, Default)]
pub struct Stats {
    pub count: u64,
    pub min_ns: u64,
    pub max_ns: u64,
    pub avg_ns: u64,
    pub p50_ns: u64,
    pub p95_ns: u64,
    pub p99_ns: u64,
}

#[derive(Debug, Serialize)]
pub struct Bucket {
    pub start_ns: u64,
    #[serde(flatten)]
    pub stats: Stats,
}

#[derive(Debug, Serialize)]
pub struct RouteLatency {
    pub route: String,
    #[serde(flatten)]
    pub stats: Stats,
    pub series: Vec<Bucket>,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn stats(latencies: &mut [u64]) -> Stats {
    if latencies.is_empty() {
        return Stats::default();
    }
    latencies.sort_unstable();
    let count = latencies.len();
    let at = |q: f64| latencies[((q * count as f64).ceil() as usize).clamp(1, count) - 1];
    Stats {
        count: count as u64,
        min_ns: latencies[0],
        max_ns: latencies[count - 1],
        avg_ns: latencies.iter().sum::<u64>() / count as u64,
        p50_ns: at(0.50),
        p95_ns: at(0.95),
        p99_ns: at(0.99),
    }
}

impl Default for LatencyLog {
    fn default() -> Self {
        Self {
            samples: Arc::new(Mutex::new(VecDeque::with_capacity(1024))),
        }
    }
}

impl LatencyLog {
    pub fn record(&self, route: Arc<str>, latency: Duration) {
        let sample = Sample {
            at_ns: now_ns(),
            route,
            latency_ns: u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX),
        };
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if samples.len() == CAPACITY {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// Per-route statistics for requests that finished in `[from_ns, to_ns)`,
    /// with a series of `bucket_ns`-wide buckets.
    pub fn report(&self, from_ns: u64, to_ns: u64, bucket_ns: u64) -> Vec<RouteLatency> {
        let bucket_ns = bucket_ns.max(1);
        let mut by_route: BTreeMap<Arc<str>, BTreeMap<u64, Vec<u64>>> = BTreeMap::new();
        {
            let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
            for s in samples.iter().filter(|s| s.at_ns >= from_ns && s.at_ns < to_ns) {
                let bucket = from_ns + (s.at_ns - from_ns) / bucket_ns * bucket_ns;
                by_route
                    .entry(s.route.clone())
                    .or_default()
                    .entry(bucket)
                    .or_default()
                    .push(s.latency_ns);
            }
        }
        by_route
            .into_iter()
            .map(|(route, buckets)| {
                let mut all: Vec<u64> = buckets.values().flatten().copied().collect();
                let series = buckets
                    .into_iter()
                    .map(|(start_ns, mut latencies)| Bucket {
                        start_ns,
                        stats: stats(&mut latencies),
                    })
                    .collect();
                RouteLatency {
                    route: route.to_string(),
                    stats: stats(&mut all),
                    series,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::stats;

    #[test]
    fn percentiles_follow_the_nearest_rank_definition() {
        let mut latencies: Vec<u64> = (1..=100).collect();
        let s = stats(&mut latencies);
        assert_eq!((s.count, s.min_ns, s.max_ns, s.avg_ns), (100, 1, 100, 50));
        assert_eq!((s.p50_ns, s.p95_ns, s.p99_ns), (50, 95, 99));
    }
}
