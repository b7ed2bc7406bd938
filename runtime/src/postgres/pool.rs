//! The connection pool: deadpool over sqlx `PgConnection`s, and the way the store uses it:
//! [`Pool::run`], or [`Pool::connection`] then [`Pool::run_on`] where a caller must decide
//! what to run only once it holds a connection (the shared statements).
//!
//! Why not `sqlx::PgPool`: it pings every connection when it lends it and again when it
//! takes it back, a full round trip each time, which tripled the round trips of a
//! one-statement request. The pings are a guard against connections left half-way through
//! the protocol by a cancelled future. Here nothing is cancelled half-way — a call that is
//! dropped finishes on a task of its own — so a returned connection is idle and is lent
//! again as it is. A connection that saw a transport error is closed instead of returned.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use deadpool::managed::{self, Metrics, Object, PoolError, RecycleError, RecycleResult};
use deadpool::Runtime;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

/// A connection is replaced after this long, so credential rotation and a failed-over
/// endpoint are picked up without a restart.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// The future of one store operation on a borrowed connection.
pub(crate) type OpFuture<'c, T> = Pin<Box<dyn Future<Output = Result<T, sqlx::Error>> + Send + 'c>>;

pub(crate) struct Connector {
    options: PgConnectOptions,
}

impl managed::Manager for Connector {
    type Type = PgConnection;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<PgConnection, sqlx::Error> {
        // Boxed: deadpool embeds this future in the one `get` returns, and sqlx's connect
        // future is some 10 KiB, which every call would otherwise allocate and copy.
        Box::pin(self.options.connect()).await
    }

    async fn recycle(&self, conn: &mut PgConnection, metrics: &Metrics) -> RecycleResult<sqlx::Error> {
        if metrics.age() > MAX_LIFETIME {
            return Err(RecycleError::message("past its lifetime"));
        }
        // Unreachable while every operation runs to completion (a `Transaction` dropped on
        // an error queues its ROLLBACK, which leaves the depth at zero); kept as the guard
        // that a connection inside a transaction is never lent.
        if conn.is_in_transaction() {
            return Err(RecycleError::message("returned inside a transaction"));
        }
        Ok(())
    }
}

#[derive(Clone)]
pub(crate) struct Pool {
    inner: managed::Pool<Connector>,
}

impl Pool {
    /// Connects lazily: the first operation opens the first connection.
    pub(crate) fn new(options: PgConnectOptions, max_connections: usize, acquire_timeout: Duration) -> Self {
        let inner = managed::Pool::builder(Connector { options })
            .max_size(max_connections)
            .wait_timeout(Some(acquire_timeout))
            .create_timeout(Some(acquire_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .expect("a pool with a runtime and a size builds");
        Self { inner }
    }

    /// Connections open, lent out, and callers waiting.
    pub(crate) fn status(&self) -> crate::gauges::PoolGauges {
        let status = self.inner.status();
        crate::gauges::PoolGauges {
            size: status.size,
            in_use: status.size.saturating_sub(status.available),
            waiting: status.waiting,
        }
    }

    /// A connection of one's own: for migrations, and for [`Pool::run_on`]. Store operations
    /// otherwise use [`Pool::run`].
    pub(crate) async fn connection(&self) -> Result<Object<Connector>, sqlx::Error> {
        self.inner.get().await.map_err(pool_error)
    }

    /// Runs `op` on a pooled connection, to completion: if the returned future is dropped
    /// part-way (a client that hung up, a request timeout), what is left of the call moves
    /// to a task of its own and finishes there, instead of stopping between a statement and
    /// its answer, which would leave the connection in a state nobody tracks (a `BEGIN`
    /// sent but not yet counted, for one). A call that is not dropped runs on the caller's
    /// task: no spawn and no hop between threads on the hot path.
    pub(crate) async fn run<T, F>(&self, op: F) -> Result<T, sqlx::Error>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut PgConnection) -> OpFuture<'c, T> + Send + 'static,
    {
        let pool = self.inner.clone();
        FinishOnDrop(Some(Box::pin(async move {
            let conn = pool.get().await.map_err(pool_error)?;
            run_then_return(conn, op).await
        })))
        .await
    }

    /// [`Pool::run`] on a connection already borrowed with [`Pool::connection`]: `op` runs
    /// to completion even if the returned future is dropped.
    pub(crate) async fn run_on<T, F>(conn: Object<Connector>, op: F) -> Result<T, sqlx::Error>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut PgConnection) -> OpFuture<'c, T> + Send + 'static,
    {
        FinishOnDrop(Some(Box::pin(run_then_return(conn, op)))).await
    }
}

/// Runs `op` on `conn`, then returns the connection to the pool, or closes it if it saw a
/// transport error: the next borrower gets a fresh one.
async fn run_then_return<T, F>(mut conn: Object<Connector>, op: F) -> Result<T, sqlx::Error>
where
    F: for<'c> FnOnce(&'c mut PgConnection) -> OpFuture<'c, T>,
{
    let result = op(&mut conn).await;
    if let Err(e) = &result {
        if is_broken(e) {
            drop(Object::take(conn));
        }
    }
    result
}

/// A boxed call that is polled in place and, if dropped before it is done, spawned to
/// finish (its result is then dropped: nobody is waiting for it).
struct FinishOnDrop<T: Send + 'static>(Option<Pin<Box<dyn Future<Output = T> + Send>>>);

impl<T: Send + 'static> Future for FinishOnDrop<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let call = self.0.as_mut().expect("FinishOnDrop polled after completion");
        let out = ready!(call.as_mut().poll(cx));
        self.0 = None;
        Poll::Ready(out)
    }
}

impl<T: Send + 'static> Drop for FinishOnDrop<T> {
    fn drop(&mut self) {
        if let Some(call) = self.0.take() {
            // Without a runtime (the process is ending) the call cannot finish anyway.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    call.await;
                });
            }
        }
    }
}

/// Errors after which the connection cannot be trusted to be at a statement boundary.
fn is_broken(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed)
}

/// Keeps the driver's error kinds, so `store_error` decides what is a 503 in one place.
fn pool_error(e: PoolError<sqlx::Error>) -> sqlx::Error {
    match e {
        PoolError::Backend(e) => e,
        PoolError::Timeout(_) => sqlx::Error::PoolTimedOut,
        _ => sqlx::Error::PoolClosed,
    }
}
