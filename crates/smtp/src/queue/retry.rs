//! When to try a deferred recipient again, and when to give up.

/// Exponential backoff for deferred recipients: the first retry after `first_delay`, each next
/// one after twice the previous delay up to `max_delay`, and none once a message is `max_age`
/// old: the delivery side then bounces it. [`Default`] gives 60 s doubling to 1 h for 5 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySchedule {
    /// Seconds before the first retry.
    pub first_delay: u64,
    /// The longest wait between two attempts, in seconds.
    pub max_delay: u64,
    /// Seconds after reception when the queue stops trying.
    pub max_age: u64,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            first_delay: 60,
            max_delay: 60 * 60,
            max_age: 5 * 24 * 60 * 60,
        }
    }
}

impl RetrySchedule {
    /// The next attempt for a recipient of a message received at `received` that has now failed
    /// `failures` times (counting the attempt that just failed), or `None` when the message is
    /// too old to try again and must be bounced. The last attempt falls at the maximum age
    /// itself, so a message is never given up on earlier than promised. Times are seconds since
    /// the Unix epoch.
    pub fn next_attempt(&self, received: u64, failures: u32, now: u64) -> Option<u64> {
        let expires = received.saturating_add(self.max_age);
        if now >= expires {
            return None;
        }
        let doublings = failures.saturating_sub(1).min(63);
        let delay = self
            .first_delay
            .saturating_mul(1u64 << doublings)
            .min(self.max_delay);
        Some(now.saturating_add(delay).min(expires))
    }
}
