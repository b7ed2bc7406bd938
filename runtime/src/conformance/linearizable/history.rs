//! What clients ask and what they are told: operations over a few gifts, and the recorder
//! that runs concurrent clients against a store and writes down every call.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gift_core::domain::{Amount, Gift, GiftCode, GiftId, IdempotencyKey, Status};
use gift_core::ports::Store;
use gift_core::StoreError;
use tokio::sync::Barrier;

use super::call::perform;
use crate::rt;

/// Gifts the recorder creates, CREATED, before the clients start.
pub const GIFTS: u8 = 3;
/// One more gift, never created: sends to it are not found, reads find nothing.
pub const GHOST: G = G(GIFTS);
/// The keys clients send with: few, so that replays and conflicts happen.
pub const KEYS: [&str; 2] = ["a", "b"];
/// Outbox rows one read asks for: more than a store shared by a test run ever holds.
pub(super) const OUTBOX_LIMIT: u32 = 100_000;

/// A gift of the history, by number: `G(0)..G(GIFTS)` exist, [`GHOST`] does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct G(pub u8);

/// An idempotency key of [`KEYS`], by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct K(pub u8);

impl K {
    pub(super) fn key(self) -> IdempotencyKey {
        IdempotencyKey::parse(KEYS[usize::from(self.0)]).expect("the pool's keys are valid")
    }
}

impl fmt::Display for G {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == GHOST {
            f.write_str("ghost")
        } else {
            write!(f, "g{}", self.0)
        }
    }
}

impl fmt::Display for K {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(KEYS[usize::from(self.0)])
    }
}

/// One call of the [`Store`] port, on the history's gifts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    RequestSend {
        gift: G,
        key: K,
    },
    Get {
        gift: G,
    },
    GetGifts {
        gifts: Vec<G>,
    },
    MarkSent {
        gift: G,
    },
    MarkSentAll {
        gifts: Vec<G>,
    },
    MarkFailed {
        gift: G,
    },
    /// A relay's claim on every outbox row of the history's gifts, due or not: `hold` claims
    /// them for longer than any history lasts, a peek (`hold: false`) with a claim already
    /// lapsed, which holds nothing.
    OutboxClaim {
        hold: bool,
    },
    OutboxPublished {
        gift: G,
        key: K,
    },
}

impl Op {
    /// Whether the call changes nothing, whatever it answers.
    pub fn is_read(&self) -> bool {
        matches!(self, Op::Get { .. } | Op::GetGifts { .. } | Op::OutboxClaim { hold: false })
    }

    fn random(rng: &mut Rng) -> Op {
        fn gift(rng: &mut Rng) -> G {
            if rng.below(8) == 0 {
                GHOST
            } else {
                G(rng.below(GIFTS.into()) as u8)
            }
        }
        fn gifts(rng: &mut Rng) -> Vec<G> {
            (0..1 + rng.below(3)).map(|_| gift(rng)).collect()
        }
        fn key(rng: &mut Rng) -> K {
            K(rng.below(KEYS.len() as u64) as u8)
        }
        match rng.below(100) {
            0..30 => Op::RequestSend { gift: gift(rng), key: key(rng) },
            30..42 => Op::Get { gift: gift(rng) },
            42..50 => Op::GetGifts { gifts: gifts(rng) },
            50..62 => Op::MarkSent { gift: gift(rng) },
            62..70 => Op::MarkSentAll { gifts: gifts(rng) },
            70..78 => Op::MarkFailed { gift: gift(rng) },
            78..84 => Op::OutboxClaim { hold: false },
            84..90 => Op::OutboxClaim { hold: true },
            _ => Op::OutboxPublished { gift: gift(rng), key: key(rng) },
        }
    }
}

fn list(gifts: &[G]) -> String {
    gifts.iter().map(G::to_string).collect::<Vec<_>>().join(", ")
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::RequestSend { gift, key } => write!(f, "request_send({gift}, {key})"),
            Op::Get { gift } => write!(f, "get({gift})"),
            Op::GetGifts { gifts } => write!(f, "get_gifts([{}])", list(gifts)),
            Op::MarkSent { gift } => write!(f, "mark_sent({gift})"),
            Op::MarkSentAll { gifts } => write!(f, "mark_sent_all([{}])", list(gifts)),
            Op::MarkFailed { gift } => write!(f, "mark_failed({gift})"),
            Op::OutboxClaim { hold: true } => f.write_str("outbox_claim(hold)"),
            Op::OutboxClaim { hold: false } => f.write_str("outbox_claim(peek)"),
            Op::OutboxPublished { gift, key } => write!(f, "outbox_published({gift}, {key})"),
        }
    }
}

/// What a send decided, reduced to what the model predicts: the accepted body is checked
/// against the asked gift and key when it is recorded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Decision {
    Queued,
    Replay,
    Conflict(Status),
    NotFound,
}

/// An answer, reduced to what is observable and deterministic: statuses and decisions,
/// not timestamps.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Answer {
    Send(Decision),
    /// A gift's status; `None`: no such gift.
    Status(Option<Status>),
    Statuses(Vec<Option<Status>>),
    Won(bool),
    WonEach(Vec<bool>),
    /// The history's outbox rows, sorted.
    Due(Vec<(G, K)>),
    Done,
    /// Something no answer of the model looks like (a body about another gift, an unknown
    /// key, a batch answer of the wrong length): never linearizable.
    Unexpected(String),
}

fn status(s: &Option<Status>) -> &'static str {
    s.map_or("none", Status::as_str)
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Send(Decision::Conflict(s)) => write!(f, "Conflict({s})"),
            Answer::Send(d) => write!(f, "{d:?}"),
            Answer::Status(s) => f.write_str(status(s)),
            Answer::Statuses(s) => write!(f, "[{}]", s.iter().map(status).collect::<Vec<_>>().join(", ")),
            Answer::Won(won) => write!(f, "{won}"),
            Answer::WonEach(won) => write!(f, "{won:?}"),
            Answer::Due(rows) => {
                write!(f, "[{}]", rows.iter().map(|(g, k)| format!("{g}/{k}")).collect::<Vec<_>>().join(", "))
            }
            Answer::Done => f.write_str("ok"),
            Answer::Unexpected(what) => write!(f, "unexpected {what}"),
        }
    }
}

/// An answer, or why there is none: an indeterminate call, which may or may not have taken
/// effect (a store error, a client that gave up).
pub type Outcome = Result<Answer, String>;

/// One call as a client saw it. `invoke` and `complete` are ticks of one clock shared by
/// all clients, so `a.complete < b.invoke` means `a` returned before `b` was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub client: usize,
    pub invoke: u64,
    pub complete: u64,
    pub op: Op,
    pub answer: Outcome,
}

/// The shape of a recorded history.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub clients: usize,
    pub ops_per_client: usize,
    /// One call in this many is given up after a random moment of up to 2 ms, its future
    /// dropped mid-call as by a client that hangs up (0: never).
    pub cancel_one_in: u64,
}

/// SplitMix64: each client's operations follow from the seed alone, so the program of a
/// failing history can be generated again (its interleaving is up to the store).
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Creates fresh gifts, runs `config.clients` clients at once, each making
/// `config.ops_per_client` random calls, and returns every call ordered by invocation.
/// Fresh gift ids keep histories apart on a store that outlives one of them.
pub async fn record(store: Arc<dyn Store>, seed: u64, config: Config) -> Result<Vec<Record>, StoreError> {
    let ids: Arc<Vec<GiftId>> = Arc::new(create_gifts(&*store).await?);
    let clock = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(config.clients));
    let mut seeds = Rng::new(seed);
    let clients: Vec<_> = (0..config.clients)
        .map(|client| {
            let (store, ids, clock, start) = (store.clone(), ids.clone(), clock.clone(), start.clone());
            let mut rng = Rng::new(seeds.next_u64());
            rt::spawn(async move {
                // All at once, so that their first calls overlap too.
                start.wait().await;
                let mut records = Vec::with_capacity(config.ops_per_client);
                for _ in 0..config.ops_per_client {
                    let op = Op::random(&mut rng);
                    let cancel = config.cancel_one_in > 0 && rng.below(config.cancel_one_in) == 0;
                    let after = Duration::from_micros(rng.below(2_000));
                    let invoke = clock.fetch_add(1, Ordering::SeqCst);
                    let answer = perform(&*store, &ids, &op, cancel.then_some(after)).await;
                    let complete = clock.fetch_add(1, Ordering::SeqCst);
                    records.push(Record { client, invoke, complete, op, answer });
                }
                records
            })
        })
        .collect();
    let mut history = Vec::new();
    for client in clients {
        history.extend(client.await.expect("a client of the history panicked"));
    }
    history.sort_by_key(|r| r.invoke);
    Ok(history)
}

/// The ids of `G(0)..G(GIFTS)`, inserted CREATED, and of the ghost, not inserted.
async fn create_gifts(store: &dyn Store) -> Result<Vec<GiftId>, StoreError> {
    let random_id = || GiftId::from_random(rt::random_u128());
    let mut ids = Vec::new();
    for _ in 0..GIFTS {
        let gift = Gift::new(
            random_id(),
            GiftCode::from_random(rt::random_u64()),
            Amount::try_from(100).expect("a valid amount"),
            None,
            rt::now_utc(),
        );
        insert_surely(store, &gift).await?;
        ids.push(gift.id);
    }
    ids.push(random_id());
    Ok(ids)
}

/// Inserts `gift` through a store that may be failing calls (backends killed, statements
/// timed out): an insert that errored may still have committed, so the gift is looked up
/// before it is tried again. Gives up after 200 tries, with the last error.
async fn insert_surely(store: &dyn Store, gift: &Gift) -> Result<(), StoreError> {
    let mut last = None;
    for _ in 0..200 {
        match store.insert_gift(gift).await {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
        if let Ok(Some(_)) = store.get_gift(gift.id).await {
            return Ok(());
        }
        rt::sleep(Duration::from_millis(5)).await;
    }
    Err(last.unwrap_or(StoreError::Unavailable("no try made".into())))
}
