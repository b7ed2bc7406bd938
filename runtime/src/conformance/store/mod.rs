//! What every [`Store`] must do, one file a concern; [`run_all`] runs them all.

use std::sync::Arc;

use gift_core::ports::Store;

mod fixtures;
mod gifts;
mod outbox;
mod sends;
mod worker_writes;

pub use gifts::{
    concurrent_creates_answer_each, duplicate_code_is_code_taken, insert_then_get_round_trips, ping_answers,
};
pub use outbox::{
    claims_share_the_due_rows_until_they_lapse, gauges_count_the_due_rows_only, outbox_follows_the_send,
    outbox_keeps_each_sends_trace, parallel_outbox_publishes_all_land, settling_removes_the_outbox_row,
};
pub use sends::{
    concurrent_sends_answer_each, concurrent_sends_queue_once, dropped_sends_are_all_or_nothing,
    send_queues_replays_and_conflicts, terminal_gifts_replay_and_conflict,
};
pub use worker_writes::{
    batch_reads_and_updates_answer_in_order, conditional_updates_move_only_queued,
    racing_batch_updates_win_each_gift_once,
};

/// Runs every store test; `fresh` builds an empty store for each.
pub async fn run_all<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Store>>,
{
    insert_then_get_round_trips(&*fresh().await).await;
    duplicate_code_is_code_taken(&*fresh().await).await;
    concurrent_creates_answer_each(fresh().await).await;
    send_queues_replays_and_conflicts(&*fresh().await).await;
    terminal_gifts_replay_and_conflict(&*fresh().await).await;
    conditional_updates_move_only_queued(&*fresh().await).await;
    batch_reads_and_updates_answer_in_order(&*fresh().await).await;
    racing_batch_updates_win_each_gift_once(fresh().await).await;
    concurrent_sends_queue_once(fresh().await).await;
    concurrent_sends_answer_each(fresh().await).await;
    outbox_follows_the_send(&*fresh().await).await;
    outbox_keeps_each_sends_trace(fresh().await).await;
    claims_share_the_due_rows_until_they_lapse(fresh().await).await;
    parallel_outbox_publishes_all_land(fresh().await).await;
    settling_removes_the_outbox_row(&*fresh().await).await;
    let store = fresh().await;
    dropped_sends_are_all_or_nothing(store.clone(), store).await;
    ping_answers(&*fresh().await).await;
}
