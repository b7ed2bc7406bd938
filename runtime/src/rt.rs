//! The runtime facade. Under `--cfg madsim` every function here is answered by the
//! simulator (simulated clock, seeded randomness, tasks owned by simulated nodes);
//! otherwise by tokio, the OS clock and OS randomness.

use std::future::Future;
use std::time::Duration;

use gift_core::domain::Timestamp;
use gift_core::ports::{BoxFuture, Env};
use madsim::rand::Rng;

pub use madsim::task::JoinHandle;
pub use madsim::time::Instant;

/// Wall-clock time: the simulated clock under madsim.
pub fn now_utc() -> Timestamp {
    #[cfg(madsim)]
    let now = madsim::time::TimeHandle::current().now_time();
    #[cfg(not(madsim))]
    let now = std::time::SystemTime::now();
    // Microseconds: what PostgreSQL keeps, so every store reads back what it was given.
    chrono::SubsecRound::trunc_subsecs(Timestamp::from(now), 6)
}

/// Monotonic time, for timeouts and visibility deadlines.
pub fn now_instant() -> Instant {
    Instant::now()
}

pub async fn sleep(duration: Duration) {
    madsim::time::sleep(duration).await
}

pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    madsim::task::spawn(future)
}

pub fn random_u64() -> u64 {
    madsim::rand::thread_rng().gen()
}

pub fn random_u128() -> u128 {
    madsim::rand::thread_rng().gen()
}

/// The production and simulation implementation of the core [`Env`] port.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemEnv;

impl Env for SystemEnv {
    fn now(&self) -> Timestamp {
        now_utc()
    }

    fn random_u64(&self) -> u64 {
        random_u64()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        Box::pin(sleep(duration))
    }
}
