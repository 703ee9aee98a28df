//! Circuit breakers per provider and model (REFERENCE §3): open after N
//! consecutive failures, refuse while open, let one probe through when the
//! cooldown has passed (half-open), close on its success or re-open with a
//! doubled cooldown (at most 10×) on its failure.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use paved_shared::budgets::{CircuitInfo, CircuitState};

#[derive(Debug)]
struct Breaker {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    openings: u32,
    probe_in_flight: bool,
}

/// Permission to call upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permit {
    /// This call is the half-open probe.
    pub probe: bool,
}

/// Every breaker.
#[derive(Debug)]
pub struct Breakers {
    map: Mutex<HashMap<(String, String), Breaker>>,
    failures: u32,
    cooldown: Duration,
}

impl Breakers {
    /// Breakers opening after `failures` consecutive failures for `cooldown`.
    pub fn new(failures: u32, cooldown: Duration) -> Self {
        Self {
            map: Mutex::default(),
            failures: failures.max(1),
            cooldown,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Breaker>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn state_of(b: &Breaker, now: Instant) -> CircuitState {
        match b.open_until {
            None => CircuitState::Closed,
            Some(until) if now < until => CircuitState::Open,
            Some(_) => CircuitState::HalfOpen,
        }
    }

    /// Asks to call `provider`/`model` at `now`: a permit, or how long until a probe may go.
    pub fn acquire(&self, provider: &str, model: &str, now: Instant) -> Result<Permit, Duration> {
        let mut map = self.lock();
        let Some(b) = map.get_mut(&(provider.to_owned(), model.to_owned())) else {
            return Ok(Permit { probe: false });
        };
        match Self::state_of(b, now) {
            CircuitState::Closed => Ok(Permit { probe: false }),
            CircuitState::Open => Err(b.open_until.map_or(Duration::ZERO, |u| u - now)),
            CircuitState::HalfOpen if b.probe_in_flight => Err(Duration::from_secs(1)),
            CircuitState::HalfOpen => {
                b.probe_in_flight = true;
                Ok(Permit { probe: true })
            }
        }
    }

    /// Records the outcome of a permitted call.
    pub fn record(&self, provider: &str, model: &str, permit: Permit, ok: bool, now: Instant) {
        let mut map = self.lock();
        let b = map
            .entry((provider.to_owned(), model.to_owned()))
            .or_insert(Breaker {
                consecutive_failures: 0,
                open_until: None,
                openings: 0,
                probe_in_flight: false,
            });
        if permit.probe {
            b.probe_in_flight = false;
        }
        if ok {
            b.consecutive_failures = 0;
            if permit.probe || b.open_until.is_some_and(|u| now >= u) {
                b.open_until = None;
                b.openings = 0;
            }
            return;
        }
        b.consecutive_failures += 1;
        if permit.probe || (b.open_until.is_none() && b.consecutive_failures >= self.failures) {
            b.openings = (b.openings + 1).min(10);
            b.open_until = Some(now + self.cooldown * b.openings);
            tracing::warn!(%provider, %model, cooldown_ms = (self.cooldown * b.openings).as_millis() as u64, "circuit opened");
        }
    }

    /// Gives back a permit without an outcome (the call never reached the
    /// provider), so a half-open breaker can send its probe again.
    pub fn release(&self, provider: &str, model: &str, permit: Permit) {
        if !permit.probe {
            return;
        }
        if let Some(b) = self
            .lock()
            .get_mut(&(provider.to_owned(), model.to_owned()))
        {
            b.probe_in_flight = false;
        }
    }

    /// Every breaker that has seen a failure.
    pub fn list(&self, now: Instant) -> Vec<CircuitInfo> {
        let map = self.lock();
        let mut out: Vec<CircuitInfo> = map
            .iter()
            .map(|((provider, model), b)| CircuitInfo {
                provider: provider.clone(),
                model: model.clone(),
                state: Self::state_of(b, now),
                consecutive_failures: b.consecutive_failures,
                retry_in_ms: b
                    .open_until
                    .filter(|u| *u > now)
                    .map_or(0, |u| (u - now).as_millis() as u64),
            })
            .collect();
        out.sort_by(|a, b| (&a.provider, &a.model).cmp(&(&b.provider, &b.model)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_half_opens_and_closes() {
        let breakers = Breakers::new(3, Duration::from_secs(5));
        let t0 = Instant::now();
        for _ in 0..2 {
            let p = breakers.acquire("openai", "m", t0).unwrap();
            breakers.record("openai", "m", p, false, t0);
        }
        // A success resets the count.
        let p = breakers.acquire("openai", "m", t0).unwrap();
        breakers.record("openai", "m", p, true, t0);
        for _ in 0..3 {
            let p = breakers.acquire("openai", "m", t0).unwrap();
            breakers.record("openai", "m", p, false, t0);
        }
        assert_eq!(breakers.list(t0)[0].state, CircuitState::Open);
        assert_eq!(
            breakers.acquire("openai", "m", t0 + Duration::from_secs(1)),
            Err(Duration::from_secs(4))
        );
        // Other models are unaffected.
        assert!(breakers.acquire("openai", "other", t0).is_ok());
        // After the cooldown one probe goes through; a second caller waits.
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(breakers.list(t1)[0].state, CircuitState::HalfOpen);
        let probe = breakers.acquire("openai", "m", t1).unwrap();
        assert!(probe.probe);
        assert!(breakers.acquire("openai", "m", t1).is_err());
        // A probe that never reached the provider is given back, not counted.
        breakers.release("openai", "m", probe);
        let probe = breakers.acquire("openai", "m", t1).unwrap();
        assert!(probe.probe);
        // The probe fails: open again, for twice as long.
        breakers.record("openai", "m", probe, false, t1);
        assert_eq!(
            breakers.acquire("openai", "m", t1),
            Err(Duration::from_secs(10))
        );
        let t2 = t1 + Duration::from_secs(10);
        let probe = breakers.acquire("openai", "m", t2).unwrap();
        breakers.record("openai", "m", probe, true, t2);
        assert_eq!(breakers.list(t2)[0].state, CircuitState::Closed);
        assert!(!breakers.acquire("openai", "m", t2).unwrap().probe);
    }
}
