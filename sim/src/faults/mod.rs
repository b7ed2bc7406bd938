//! The simulated world's side of each port: the in-memory models wrapped with fault
//! injection and with the recording of every call, one file per port. Each node gets its
//! own wrappers (over the one shared model), so the history says who asked what.

mod dispatch;
mod queue;
mod store;

pub use dispatch::RecordingDispatcher;
pub use queue::FaultyQueue;
pub use store::FaultyStore;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gift_runtime::rt;
use madsim::rand::{thread_rng, Rng};

use crate::history::{Event, History};
use crate::kinds::FaultKind;
use crate::world::{FaultRates, World};

/// What every wrapper shares: the history, the fault rates, the switch that heals, and
/// the name of the node whose calls these are.
#[derive(Clone)]
pub struct Ctx {
    pub history: History,
    rates: FaultRates,
    latency_max_ms: u64,
    faults_on: Arc<AtomicBool>,
    start: rt::Instant,
    node: Arc<str>,
}

impl Ctx {
    pub fn new(world: &World, history: History) -> Self {
        Self {
            history,
            rates: world.faults,
            latency_max_ms: world.latency_max_ms,
            faults_on: Arc::new(AtomicBool::new(true)),
            start: rt::now_instant(),
            node: Arc::from("main"),
        }
    }

    /// The same world, for the calls of `node`.
    pub fn on(&self, node: &str) -> Self {
        Self { node: Arc::from(node), ..self.clone() }
    }

    pub fn node(&self) -> String {
        self.node.to_string()
    }

    pub fn now_ms(&self) -> u64 {
        rt::now_instant().saturating_duration_since(self.start).as_millis() as u64
    }

    pub fn record(&self, event: Event) {
        self.history.record(self.now_ms(), event);
    }

    /// Ends the safety phase: no fault fires from now on.
    pub fn heal(&self) {
        self.faults_on.store(false, Ordering::SeqCst);
    }

    /// Draws whether a fault of `kind` fires now, at the world's rate for it, and records
    /// it if so.
    fn fire(&self, kind: FaultKind) -> bool {
        let rate = self.rates.of(kind);
        if !self.faults_on.load(Ordering::SeqCst) || rate <= 0.0 {
            return false;
        }
        let fired = thread_rng().gen_bool(rate.min(1.0));
        if fired {
            self.record(Event::Fault { kind });
        }
        fired
    }

    /// A random delay up to `max_ms`, drawn only while faults are on.
    async fn lag(&self, max_ms: u64) {
        if max_ms > 0 && self.fire(FaultKind::Latency) {
            rt::sleep(Duration::from_millis(thread_rng().gen_range(0..=max_ms))).await;
        }
    }

    async fn timeout(&self) {
        rt::sleep(Duration::from_millis(thread_rng().gen_range(1_000..=5_000))).await;
    }
}
