//! Prometheus metrics of policy enforcement, in the spirit of Gatekeeper's
//! (`gatekeeper_validation_request_count`, `…_duration_seconds`):
//! admission decisions by status, their latency, and violations found at
//! each enforcement point by action.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds of the admission latency histogram, in seconds.
const BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
const STATUSES: [&str; 4] = ["allow", "warn", "deny", "error"];

/// The counters.
#[derive(Debug, Default)]
pub struct PolicyMetrics {
    /// Per status in [`STATUSES`] order.
    decisions: [AtomicU64; 4],
    /// Per bucket (cumulative at render), plus +Inf.
    buckets: [AtomicU64; 11],
    /// Sum of latencies, in nanoseconds.
    sum_ns: AtomicU64,
    /// Violations by (point, action).
    violations: Mutex<std::collections::BTreeMap<(&'static str, &'static str), u64>>,
}

impl PolicyMetrics {
    /// One admission decision (`allow`, `warn`, `deny` or `error`) and how long it took.
    pub fn decision(&self, status: &str, elapsed: std::time::Duration) {
        if let Some(i) = STATUSES.iter().position(|s| *s == status) {
            self.decisions[i].fetch_add(1, Ordering::Relaxed);
        }
        let secs = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_ns
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Violations found at `point` with `action`.
    pub fn violations(&self, point: &'static str, action: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        if let Ok(mut map) = self.violations.lock() {
            *map.entry((point, action)).or_default() += n;
        }
    }

    /// The Prometheus text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP paved_policy_admission_requests_total Admission reviews answered, by decision.\n");
        out.push_str("# TYPE paved_policy_admission_requests_total counter\n");
        for (i, status) in STATUSES.iter().enumerate() {
            let _ = writeln!(
                out,
                "paved_policy_admission_requests_total{{status=\"{status}\"}} {}",
                self.decisions[i].load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP paved_policy_admission_duration_seconds Time to decide an admission review.\n",
        );
        out.push_str("# TYPE paved_policy_admission_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "paved_policy_admission_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += self.buckets[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "paved_policy_admission_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(
            out,
            "paved_policy_admission_duration_seconds_sum {}",
            self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9
        );
        let _ = writeln!(
            out,
            "paved_policy_admission_duration_seconds_count {cumulative}"
        );
        out.push_str("# HELP paved_policy_violations_total Violations found, by enforcement point and action.\n");
        out.push_str("# TYPE paved_policy_violations_total counter\n");
        if let Ok(map) = self.violations.lock() {
            for ((point, action), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "paved_policy_violations_total{{point=\"{point}\",action=\"{action}\"}} {n}"
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let m = PolicyMetrics::default();
        m.decision("allow", std::time::Duration::from_micros(300));
        m.decision("deny", std::time::Duration::from_millis(2));
        m.decision("allow", std::time::Duration::from_secs(2));
        m.violations("admission", "deny", 2);
        let text = m.render();
        assert!(text.contains("paved_policy_admission_requests_total{status=\"allow\"} 2\n"));
        assert!(text.contains("paved_policy_admission_duration_seconds_bucket{le=\"0.0005\"} 1\n"));
        assert!(text.contains("paved_policy_admission_duration_seconds_bucket{le=\"0.0025\"} 2\n"));
        assert!(text.contains("paved_policy_admission_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("paved_policy_admission_duration_seconds_count 3\n"));
        assert!(
            text.contains("paved_policy_violations_total{point=\"admission\",action=\"deny\"} 2\n")
        );
    }
}
