//! Choosing a deployment: among the deployments of the best priority, a
//! weighted random order that leans away from busy and slow ones; each
//! deployment's own requests- and tokens-per-minute limits; per-deployment
//! latency and in-flight counts kept in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;

use super::config::Deployment;

/// Live figures of one deployment.
#[derive(Debug, Default)]
struct Stats {
    in_flight: u32,
    /// Exponentially weighted time to the provider's answer, microseconds (0: none yet).
    ewma_us: f64,
    /// `(second, requests, tokens)` per second over the last minute.
    window: Vec<(i64, u32, u64)>,
}

impl Stats {
    fn minute(&self, now_s: i64) -> (u32, u64) {
        self.window
            .iter()
            .filter(|(s, _, _)| *s > now_s - 60)
            .fold((0, 0), |(r, t), (_, r2, t2)| (r + r2, t + t2))
    }
}

/// Per-deployment load, latency and limits.
#[derive(Debug, Default, Clone)]
pub struct Balancer {
    stats: Arc<Mutex<HashMap<String, Stats>>>,
}

/// One request in flight at a deployment; ends when dropped.
#[derive(Debug)]
pub struct InFlight {
    balancer: Balancer,
    id: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut stats = self.balancer.lock();
        if let Some(s) = stats.get_mut(&self.id) {
            s.in_flight = s.in_flight.saturating_sub(1);
        }
    }
}

/// How much an answer's latency moves the average.
const EWMA_ALPHA: f64 = 0.2;

impl Balancer {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Stats>> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The order in which to try `deployments`: by priority (lower first);
    /// within one priority, a weighted random order (without replacement)
    /// where each weight is divided by one plus the requests in flight there
    /// and scaled by how much slower than the fastest it has been answering
    /// (when clearly slower: more than half again, and 5 ms).
    pub fn order<'a, R: Rng>(
        &self,
        deployments: &'a [Deployment],
        rng: &mut R,
    ) -> Vec<&'a Deployment> {
        let stats = self.lock();
        let mut priorities: Vec<u32> = deployments.iter().map(|d| d.priority).collect();
        priorities.sort_unstable();
        priorities.dedup();
        let mut out = Vec::with_capacity(deployments.len());
        for priority in priorities {
            let group: Vec<&Deployment> = deployments
                .iter()
                .filter(|d| d.priority == priority)
                .collect();
            let fastest = group
                .iter()
                .filter_map(|d| stats.get(&d.id).map(|s| s.ewma_us))
                .filter(|us| *us > 0.0)
                .fold(f64::INFINITY, f64::min);
            let mut weighted: Vec<(&Deployment, f64)> = group
                .into_iter()
                .map(|d| {
                    let (busy, slow) = stats.get(&d.id).map_or((0, 1.0), |s| {
                        // Within half again of the fastest (plus 5 ms of
                        // noise) counts as fast: weights decide among peers.
                        let slow = if s.ewma_us > 0.0
                            && fastest.is_finite()
                            && s.ewma_us > fastest * 1.5 + 5_000.0
                        {
                            (fastest / s.ewma_us).clamp(0.1, 1.0)
                        } else {
                            1.0
                        };
                        (s.in_flight, slow)
                    });
                    (d, f64::from(d.weight) * slow / (1.0 + f64::from(busy)))
                })
                .collect();
            while !weighted.is_empty() {
                let total: f64 = weighted.iter().map(|(_, w)| w).sum();
                let mut pick = rng.gen::<f64>() * total;
                let mut index = weighted.len() - 1;
                for (i, (_, w)) in weighted.iter().enumerate() {
                    if pick < *w {
                        index = i;
                        break;
                    }
                    pick -= w;
                }
                out.push(weighted.swap_remove(index).0);
            }
        }
        out
    }

    /// Counts a request of `tokens` (worst case) against the deployment's
    /// per-minute limits; false (and nothing counted) when it would pass one.
    pub fn admit(&self, d: &Deployment, tokens: u64, now_s: i64) -> bool {
        if d.rpm.is_none() && d.tpm.is_none() {
            return true;
        }
        let mut stats = self.lock();
        let s = stats.entry(d.id.clone()).or_default();
        let (requests, used) = s.minute(now_s);
        if d.rpm.is_some_and(|limit| requests + 1 > limit) {
            return false;
        }
        if d.tpm.is_some_and(|limit| used > 0 && used + tokens > limit) {
            return false;
        }
        s.window.retain(|(sec, _, _)| *sec > now_s - 60);
        match s.window.last_mut() {
            Some(last) if last.0 == now_s => {
                last.1 += 1;
                last.2 += tokens;
            }
            _ => s.window.push((now_s, 1, tokens)),
        }
        true
    }

    /// Marks a request in flight at `d` until the guard drops.
    pub fn start(&self, d: &Deployment) -> InFlight {
        self.lock().entry(d.id.clone()).or_default().in_flight += 1;
        InFlight {
            balancer: self.clone(),
            id: d.id.clone(),
        }
    }

    /// Records how long `d` took to answer.
    pub fn observe(&self, d: &Deployment, took: Duration) {
        let us = took.as_secs_f64() * 1e6;
        let mut stats = self.lock();
        let s = stats.entry(d.id.clone()).or_default();
        s.ewma_us = if s.ewma_us == 0.0 {
            us
        } else {
            s.ewma_us * (1.0 - EWMA_ALPHA) + us * EWMA_ALPHA
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::config::Api;
    use rand::SeedableRng;

    fn deployment(id: &str, weight: u32, priority: u32) -> Deployment {
        Deployment {
            id: id.into(),
            provider: "openai".into(),
            api: Api::Openai,
            base_url: "http://x/v1".into(),
            credential: None,
            credential_key: "openai".into(),
            upstream_model: "m".into(),
            price_model: "m".into(),
            weight,
            priority,
            rpm: None,
            tpm: None,
            server_address: "x".into(),
            server_port: 80,
        }
    }

    #[test]
    fn first_choices_follow_the_weights() {
        let b = Balancer::default();
        let ds = [deployment("m/a", 3, 0), deployment("m/b", 1, 0)];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let n = 20_000;
        let a = (0..n)
            .filter(|_| b.order(&ds, &mut rng)[0].id == "m/a")
            .count();
        let share = a as f64 / n as f64;
        assert!((share - 0.75).abs() < 0.02, "share of a: {share}");
    }

    #[test]
    fn every_deployment_is_listed_once_by_priority() {
        let b = Balancer::default();
        let ds = [
            deployment("m/backup", 100, 1),
            deployment("m/a", 1, 0),
            deployment("m/b", 1, 0),
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let order: Vec<&str> = b
                .order(&ds, &mut rng)
                .iter()
                .map(|d| d.id.as_str())
                .collect();
            assert_eq!(order.len(), 3);
            assert_eq!(order[2], "m/backup", "a lower priority never comes first");
        }
    }

    #[test]
    fn busy_and_slow_deployments_are_chosen_less() {
        let b = Balancer::default();
        let ds = [deployment("m/a", 1, 0), deployment("m/b", 1, 0)];
        let _busy: Vec<InFlight> = (0..3).map(|_| b.start(&ds[0])).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let n = 10_000;
        let a = (0..n)
            .filter(|_| b.order(&ds, &mut rng)[0].id == "m/a")
            .count() as f64
            / n as f64;
        // Weight 1/(1+3) against 1: a is first a fifth of the time.
        assert!((a - 0.2).abs() < 0.02, "busy share {a}");
        drop(_busy);
        b.observe(&ds[0], Duration::from_millis(400));
        b.observe(&ds[1], Duration::from_millis(100));
        let a = (0..n)
            .filter(|_| b.order(&ds, &mut rng)[0].id == "m/a")
            .count() as f64
            / n as f64;
        // Four times slower: weight 0.25 against 1.
        assert!((a - 0.2).abs() < 0.02, "slow share {a}");
    }

    #[test]
    fn per_deployment_limits_hold_for_a_minute() {
        let b = Balancer::default();
        let mut d = deployment("m/a", 1, 0);
        d.rpm = Some(2);
        assert!(b.admit(&d, 10, 1000));
        assert!(b.admit(&d, 10, 1030));
        assert!(!b.admit(&d, 10, 1059), "a third request within the minute");
        assert!(b.admit(&d, 10, 1061), "the first has left the window");
        let mut t = deployment("m/t", 1, 0);
        t.tpm = Some(100);
        assert!(b.admit(&t, 80, 5000));
        assert!(!b.admit(&t, 30, 5001));
        assert!(b.admit(&t, 20, 5001));
    }
}
