//! The clients, on the main node (which the nemesis never kills): each creates gifts,
//! sends each from racing senders through random API nodes, and reads it back.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request};
use gift_core::domain::GiftId;
use gift_runtime::rt::{self, JoinHandle};
use http_body_util::BodyExt;
use madsim::rand::{thread_rng, Rng};
use madsim::runtime::Handle;
use tower::ServiceExt;

use crate::cluster::Api;
use crate::faults::Ctx;
use crate::history::Event;
use crate::workload;
use crate::world::World;

/// Starts the world's clients.
pub fn spawn_clients(world: &World, ctx: &Ctx, apis: Arc<Vec<Api>>) -> Vec<JoinHandle<()>> {
    (0..world.clients).map(|c| rt::spawn(client(c, world.clone(), ctx.clone(), apis.clone()))).collect()
}

/// Sends one request to a random API node; `None` when the node died before answering.
async fn call(apis: &[Api], method: Method, uri: String, key: Option<&str>, body: &str) -> Option<(u16, String)> {
    let api = &apis[thread_rng().gen_range(0..apis.len())];
    let mut req = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let req = req.body(Body::from(body.to_owned())).expect("valid request");
    let router = api.router.clone();
    api.in_progress.fetch_add(1, Ordering::SeqCst);
    // A fresh handle each time: a handle taken before a restart spawns onto the dead node.
    let node = Handle::current().get_node(api.id).expect("api node exists");
    let answer = node
        .spawn(async move {
            let res = router.oneshot(req).await.expect("the router is infallible");
            let status = res.status().as_u16();
            let bytes = res.into_body().collect().await.expect("body").to_bytes();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        })
        .await
        .ok();
    let _ = api.in_progress.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    answer
}

/// One client: creates gifts (amounts and messages of every legal shape), then sends each
/// from several racing senders (keys of every legal shape), retrying unanswered or 503
/// requests with the same key until it hears a final answer, and finally reads it back.
async fn client(id: usize, world: World, ctx: Ctx, apis: Arc<Vec<Api>>) {
    for g in 0..world.gifts_per_client {
        let (amount, message) = (workload::amount(), workload::message());
        let body = serde_json::json!({ "amount": amount, "message": message }).to_string();
        let gift = loop {
            match call(&apis, Method::POST, "/gifts".into(), None, &body).await {
                Some((201, answer)) => {
                    let v: serde_json::Value = serde_json::from_str(&answer).expect("201 body is JSON");
                    let gift = GiftId::parse(v["gift_id"].as_str().expect("gift_id")).expect("gift_id is a UUID");
                    ctx.record(Event::Created { gift, amount, message: message.clone() });
                    break gift;
                }
                Some((code, answer)) if code != 503 => panic!("POST /gifts answered {code}: {answer}"),
                _ => rt::sleep(Duration::from_millis(thread_rng().gen_range(10..=500))).await,
            }
        };
        let shared = thread_rng().gen_bool(world.shared_key_chance).then(|| workload::key(id, g, 0));
        let senders: Vec<_> = (0..world.senders_per_gift)
            .map(|s| {
                let key = shared.clone().unwrap_or_else(|| workload::key(id, g, s));
                rt::spawn(sender(gift, key, world.replay_chance, ctx.clone(), apis.clone()))
            })
            .collect();
        for s in senders {
            let _ = s.await;
        }
        loop {
            match call(&apis, Method::GET, format!("/gifts/{gift}"), None, "").await {
                Some((503, _)) | None => rt::sleep(Duration::from_millis(thread_rng().gen_range(10..=500))).await,
                Some((code, body)) => {
                    ctx.record(Event::Fetched { gift, code, body });
                    break;
                }
            }
        }
    }
}

async fn sender(gift: GiftId, key: String, replay_chance: f64, ctx: Ctx, apis: Arc<Vec<Api>>) {
    let uri = format!("/gifts/{gift}/send");
    let mut replays_left = u32::from(thread_rng().gen_bool(replay_chance));
    loop {
        match call(&apis, Method::POST, uri.clone(), Some(&key), "").await {
            None => ctx.record(Event::SendLost { gift, key: key.clone() }),
            Some((code, body)) => {
                ctx.record(Event::SendAnswered { gift, key: key.clone(), code, body });
                let settled = (200..300).contains(&code) || (400..500).contains(&code);
                if settled && replays_left == 0 {
                    return;
                }
                if settled {
                    replays_left -= 1;
                }
            }
        }
        rt::sleep(Duration::from_millis(thread_rng().gen_range(10..=1_000))).await;
    }
}
