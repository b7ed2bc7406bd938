//! The run's scratch world: a database of its own on the given server, a queue and its
//! dead-letter queue configured as Terraform configures them, and the end state read back
//! from both once the services have stopped.

use std::process::Command;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use gift_core::domain::{GiftId, SendMessage, Status};
use gift_runtime::conformance::sqs_emulator;
use gift_sim::world::MAX_RECEIVES;

use crate::history::EndState;

/// Runs `sql` against `url`; the rows as lines of tab-separated fields.
pub fn psql(url: &str, sql: &str) -> Result<String, String> {
    let out =
        Command::new("psql").args([url, "-qtAX", "-F", "\t", "-c", sql]).output().map_err(|e| format!("psql: {e}"))?;
    if !out.status.success() {
        return Err(format!("psql {sql}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `postgres://user@host:port/db` → (`postgres://user@`, `host:port`).
pub fn split_url(url: &str) -> Result<(String, String), String> {
    let rest =
        url.strip_prefix("postgres://").or_else(|| url.strip_prefix("postgresql://")).ok_or("not a postgres URL")?;
    let (auth, after) = rest.rsplit_once('@').map_or(("", rest), |(a, h)| (a, h));
    let host = after.split('/').next().unwrap_or_default();
    Ok((format!("postgres://{auth}{}", if auth.is_empty() { "" } else { "@" }), host.to_owned()))
}

pub struct Queues {
    client: aws_sdk_sqs::Client,
    rt: tokio::runtime::Runtime,
    pub main: String,
    dead: String,
}

impl Queues {
    /// A queue and its dead-letter queue, configured as Terraform configures them.
    pub fn create(endpoint: &str, name: &str, visibility_seconds: u32) -> Result<Self, String> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        let client = sqs_emulator::client(endpoint);
        let (main, dead) = rt.block_on(sqs_emulator::queue_with_dlq(&client, name, visibility_seconds, MAX_RECEIVES));
        Ok(Self { client, rt, main, dead })
    }

    /// Every message in the dead-letter queue, by SQS message id.
    fn dead_letters(&self) -> Result<Vec<(String, GiftId)>, String> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100 {
            let got = self
                .rt
                .block_on(
                    self.client
                        .receive_message()
                        .queue_url(&self.dead)
                        .max_number_of_messages(10)
                        .visibility_timeout(600)
                        .message_system_attribute_names(MessageSystemAttributeName::All)
                        .send(),
                )
                .map_err(|e| format!("SQS: {e:?}"))?;
            let messages = got.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                let id = m.message_id.unwrap_or_default();
                if let Ok(body) = SendMessage::from_body(m.body.as_deref().unwrap_or_default()) {
                    if seen.insert(id.clone()) {
                        out.push((id, body.gift_id));
                    }
                }
            }
        }
        Ok(out)
    }

    pub fn delete(&self) {
        for url in [&self.main, &self.dead] {
            let _ = self.rt.block_on(self.client.delete_queue().queue_url(url).send());
        }
    }
}

/// The gifts' final statuses, the send requests and the dead letters, once all is stopped.
pub fn end_state(db: &str, queues: &Queues) -> Result<EndState, String> {
    let mut finals = std::collections::BTreeMap::new();
    for line in psql(db, "SELECT id, status FROM gifts")?.lines() {
        let Some((id, status)) = line.split_once('\t') else { continue };
        let (Ok(id), Ok(status)) = (GiftId::parse(id), Status::parse(status)) else {
            return Err(format!("unreadable gifts row {line:?}"));
        };
        finals.insert(id, status);
    }
    let mut send_requests = Vec::new();
    let sql = "SELECT gift_id, (extract(epoch FROM created_at) * 1000000)::bigint, request_id FROM send_requests";
    for line in psql(db, sql)?.lines() {
        let mut parts = line.splitn(3, '\t');
        let (Some(id), Some(at), Some(key)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let (Ok(id), Ok(at)) = (GiftId::parse(id), at.parse::<i64>()) else {
            return Err(format!("unreadable send_requests row {line:?}"));
        };
        send_requests.push((id, key.to_owned(), at));
    }
    Ok(EndState { send_requests, finals, dead_letters: queues.dead_letters()? })
}
