//! A tenant's ingest rate: a token bucket of rows shared by all its streams. A batch takes
//! its rows from the bucket and, when that leaves it in debt, waits until the rate has
//! paid the debt back; the stream is read that much later, which slows the producer
//! through gRPC flow control instead of failing it.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct RateLimiter {
    rows_per_second: f64,
    burst: f64,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    rows: f64,
    at: Instant,
}

impl RateLimiter {
    /// `burst` rows may pass at once (default one second's worth).
    pub fn new(rows_per_second: u64, burst: Option<u64>) -> Self {
        let rate = rows_per_second.max(1) as f64;
        let burst = burst.map_or(rate, |b| b.max(1) as f64);
        Self {
            rows_per_second: rate,
            burst,
            bucket: Mutex::new(Bucket {
                rows: burst,
                at: Instant::now(),
            }),
        }
    }

    pub fn settings(&self) -> (u64, u64) {
        (self.rows_per_second as u64, self.burst as u64)
    }

    /// Takes `rows` from the bucket and waits while it is in debt. A wait that is dropped
    /// (the stream was cancelled) gives its rows back, so it does not hold others back.
    pub async fn acquire(&self, rows: u64) {
        let wait = {
            let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let refill = now.duration_since(bucket.at).as_secs_f64() * self.rows_per_second;
            bucket.rows = (bucket.rows + refill).min(self.burst) - rows as f64;
            bucket.at = now;
            if bucket.rows >= 0.0 {
                return;
            }
            Duration::from_secs_f64(-bucket.rows / self.rows_per_second)
        };
        let mut refund = Refund {
            limiter: self,
            rows: rows as f64,
        };
        tokio::time::sleep(wait).await;
        refund.rows = 0.0;
    }
}

struct Refund<'a> {
    limiter: &'a RateLimiter,
    rows: f64,
}

impl Drop for Refund<'_> {
    fn drop(&mut self) {
        if self.rows > 0.0 {
            let mut bucket = self
                .limiter
                .bucket
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            bucket.rows = (bucket.rows + self.rows).min(self.limiter.burst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_passes_then_the_rate_holds() {
        let limiter = RateLimiter::new(1_000, Some(500));
        let start = Instant::now();
        limiter.acquire(500).await;
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst passes at once");
        limiter.acquire(1_000).await;
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(1),
            "1,000 rows of debt at 1,000/s"
        );
        limiter.acquire(2_000).await;
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn streams_of_one_tenant_share_the_bucket() {
        let limiter = std::sync::Arc::new(RateLimiter::new(100, None));
        let start = Instant::now();
        let a = tokio::spawn({
            let l = limiter.clone();
            async move { l.acquire(100).await }
        });
        let b = tokio::spawn({
            let l = limiter.clone();
            async move { l.acquire(100).await }
        });
        a.await.unwrap();
        b.await.unwrap();
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(1),
            "the second stream waits"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_wait_gives_its_rows_back() {
        let limiter = RateLimiter::new(10, Some(10));
        limiter.acquire(10).await;
        let cancelled = tokio::time::timeout(Duration::from_secs(1), limiter.acquire(1_000)).await;
        assert!(cancelled.is_err(), "still waiting when dropped");
        let start = Instant::now();
        limiter.acquire(10).await;
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "the second of refill covers it"
        );
    }
}
