//! The nemesis of the real stack, drawn from the seed: `kill -9` of any process and its
//! restart, `SIGSTOP`/`SIGCONT` of a worker for longer than the visibility timeout (two
//! workers then hold one message), a worker's graceful `SIGTERM`, every database backend
//! killed (`pg_terminate_backend`), PostgreSQL restarted (`pg_ctl -m immediate restart`,
//! when the run has a server of its own), the database or SQS cut off at its proxy, and
//! latency spikes. Heal undoes all of it.
//!
//! The schedule is the seed's; the outcome is not: real processes race for real, so a
//! seed replays the same faults at the same times, not the same interleaving.

use std::time::{Duration, Instant};

use gift_sim::history::Event;
use rand::rngs::StdRng;
use rand::Rng;

use crate::client::Heard;
use crate::procs::{Node, Role};
use crate::proxy::Proxy;

/// What the nemesis can reach.
pub struct Targets<'a> {
    pub nodes: &'a mut [Node],
    pub db: &'a Proxy,
    pub sqs: &'a Proxy,
    /// Kills every backend of the run's database.
    pub kill_backends: &'a dyn Fn() -> Result<(), String>,
    /// Restarts the PostgreSQL server, when the run has one of its own.
    pub restart_db: Option<&'a dyn Fn() -> Result<(), String>>,
    pub visibility: Duration,
}

/// Something to undo later.
enum Undo {
    Restart(usize),
    Resume(usize),
    DbUp,
    SqsUp,
    DbFast,
    SqsFast,
}

pub struct Nemesis {
    rng: StdRng,
    pending: Vec<(Instant, Undo)>,
    pub log: Heard,
}

impl Nemesis {
    pub fn new(rng: StdRng, log: Heard) -> Self {
        Self { rng, pending: Vec::new(), log }
    }

    fn fault(&self, kind: &'static str) {
        self.log.record(Event::StackFault { kind });
    }

    fn later(&mut self, ms: std::ops::RangeInclusive<u64>, undo: Undo) {
        let after = Duration::from_millis(self.rng.gen_range(ms));
        self.pending.push((Instant::now() + after, undo));
    }

    /// Runs the schedule until `until`, one fault every 0.5–2.5 s.
    pub fn run(&mut self, t: &mut Targets<'_>, until: Instant) -> Result<(), String> {
        let mut next = Instant::now() + Duration::from_millis(1_000);
        while Instant::now() < until {
            self.undo_due(t, false)?;
            if Instant::now() >= next {
                self.strike(t)?;
                next = Instant::now() + Duration::from_millis(self.rng.gen_range(500..=2_500));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Undoes what is due — or, when healing, everything.
    fn undo_due(&mut self, t: &mut Targets<'_>, all: bool) -> Result<(), String> {
        let now = Instant::now();
        let (due, keep): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|(at, _)| all || *at <= now);
        self.pending = keep;
        for (_, undo) in due {
            match undo {
                Undo::Restart(i) => {
                    t.nodes[i].start()?;
                    self.log.record(Event::Restarted { node: t.nodes[i].name.clone() });
                }
                Undo::Resume(i) => t.nodes[i].resume(),
                Undo::DbUp => t.db.set_up(true),
                Undo::SqsUp => t.sqs.set_up(true),
                Undo::DbFast => t.db.set_latency(Duration::ZERO),
                Undo::SqsFast => t.sqs.set_latency(Duration::ZERO),
            }
        }
        Ok(())
    }

    /// Every fault undone, every process running.
    pub fn heal(&mut self, t: &mut Targets<'_>) -> Result<(), String> {
        self.undo_due(t, true)?;
        for node in t.nodes.iter_mut() {
            if node.paused {
                node.resume();
            }
            if !node.is_running() {
                node.start()?;
                self.log.record(Event::Restarted { node: node.name.clone() });
            }
        }
        Ok(())
    }

    fn strike(&mut self, t: &mut Targets<'_>) -> Result<(), String> {
        let i = self.rng.gen_range(0..t.nodes.len());
        let busy = |n: &Node| !n.is_running() || n.paused;
        match self.rng.gen_range(0..10) {
            0 | 1 if !busy(&t.nodes[i]) => {
                t.nodes[i].kill9();
                self.log.record(Event::Killed { node: t.nodes[i].name.clone() });
                self.later(300..=2_000, Undo::Restart(i));
            }
            2 if !busy(&t.nodes[i]) && t.nodes[i].role == Role::Worker => {
                t.nodes[i].pause();
                self.fault("worker_paused");
                let vis = t.visibility.as_millis() as u64;
                self.later(vis + 500..=vis * 2 + 1_000, Undo::Resume(i));
            }
            3 if !busy(&t.nodes[i]) && t.nodes[i].role == Role::Worker => {
                let name = t.nodes[i].name.clone();
                self.log.record(Event::Stopping { node: name.clone() });
                if !t.nodes[i].terminate(Duration::from_secs(30)) {
                    t.nodes[i].kill9();
                    self.log.record(Event::Killed { node: name });
                }
                self.later(200..=1_500, Undo::Restart(i));
            }
            // While the server restarts, killing its backends fails; that is no fault of the run.
            4 => {
                if (t.kill_backends)().is_ok() {
                    self.fault("db_backends_killed");
                }
            }
            9 if t.restart_db.is_some() => {
                let restart = t.restart_db.expect("checked above");
                self.fault("db_restarted");
                restart()?;
            }
            5 => {
                t.db.set_up(false);
                self.fault("db_cut");
                self.later(300..=3_000, Undo::DbUp);
            }
            6 => {
                t.sqs.set_up(false);
                self.fault("sqs_cut");
                self.later(300..=3_000, Undo::SqsUp);
            }
            7 => {
                t.db.set_latency(Duration::from_millis(self.rng.gen_range(50..=400)));
                self.fault("db_slow");
                self.later(500..=3_000, Undo::DbFast);
            }
            _ => {
                t.sqs.set_latency(Duration::from_millis(self.rng.gen_range(50..=800)));
                self.fault("sqs_slow");
                self.later(500..=3_000, Undo::SqsFast);
            }
        }
        Ok(())
    }
}
