//! The backoff policy: pure arithmetic, so it can be tested without waiting.

use std::time::Duration;

/// Delay before retry `n` (1-based) is `base * 2^(n-1)`, capped at `max`, then spread by ±`jitter`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 means one attempt in all.
    pub max_retries: u32,
    pub base: Duration,
    pub max: Duration,
    /// Fraction of the nominal delay, e.g. 0.2 for ±20 %.
    pub jitter: f64,
}

impl RetryPolicy {
    pub fn max_attempts(&self) -> u32 {
        self.max_retries.saturating_add(1)
    }

    /// The capped delay before retry `n`, before jitter.
    pub fn nominal_delay(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(32);
        let factor = 2u64.saturating_pow(exp);
        let millis = (self.base.as_millis() as u64).saturating_mul(factor);
        Duration::from_millis(millis).min(self.max)
    }

    /// The delay before retry `n` with jitter; `unit` is a random number in `[0, 1)`.
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        let nominal = self.nominal_delay(retry).as_secs_f64();
        let spread = (unit.clamp(0.0, 1.0) * 2.0 - 1.0) * self.jitter;
        Duration::from_secs_f64((nominal * (1.0 + spread)).max(0.0))
    }

    /// The delay before retry `n` with fresh randomness.
    pub fn next_delay(&self, retry: u32) -> Duration {
        self.delay(retry, fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 3,
            base: Duration::from_secs(5),
            max: Duration::from_secs(300),
            jitter: 0.2,
        }
    }

    #[test]
    fn doubles_from_base() {
        let p = policy();
        assert_eq!(p.nominal_delay(1), Duration::from_secs(5));
        assert_eq!(p.nominal_delay(2), Duration::from_secs(10));
        assert_eq!(p.nominal_delay(3), Duration::from_secs(20));
        assert_eq!(p.max_attempts(), 4);
    }

    #[test]
    fn capped_and_does_not_overflow() {
        let p = policy();
        assert_eq!(p.nominal_delay(7), Duration::from_secs(300));
        assert_eq!(p.nominal_delay(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn jitter_band_is_plus_minus_twenty_percent() {
        let p = policy();
        assert_eq!(p.delay(2, 0.0), Duration::from_secs(8));
        assert_eq!(p.delay(2, 0.5), Duration::from_secs(10));
        assert_eq!(p.delay(2, 1.0), Duration::from_secs(12));
        for _ in 0..1000 {
            let d = p.next_delay(1).as_secs_f64();
            assert!((4.0..=6.0).contains(&d), "{d}");
        }
    }

    #[test]
    fn zero_retries_is_one_attempt() {
        let p = RetryPolicy {
            max_retries: 0,
            ..policy()
        };
        assert_eq!(p.max_attempts(), 1);
    }
}
