//! Running the real binaries on loopback and talking to them over HTTP: the fixtures every
//! suite of bins/tests (and local/tests/quick_start.rs, by `#[path]`) shares. The database
//! and queue of a suite on PostgreSQL and SQS are in scratch.rs, which the bins suites
//! declare themselves: the quick start builds no SQS client.
#![allow(dead_code)]

mod client;
mod process;

// Each suite uses some of these; the others would be unused imports there.
#[allow(unused_imports)]
pub use client::{Answer, Client};
#[allow(unused_imports)]
pub use process::Proc;

use std::net::TcpListener;
use std::path::PathBuf;

use serde_json::Value;

/// The variable's value; without it, a panic under `GIFT_TEST_SERVICES=required` (how
/// scripts/test and CI run) and a printed skip otherwise.
pub fn required(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var("GIFT_TEST_SERVICES").as_deref() == Ok("required") => {
            panic!("{var} is required (scripts/test)")
        }
        _ => {
            eprintln!("SKIPPED: needs {var} (scripts/test provisions it)");
            None
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gift-{tag}-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Creates database `name` (owned by `owner` if given) on the server `admin_url` points
/// at, and returns the URL of the new database.
pub fn create_database(rt: &tokio::runtime::Runtime, admin_url: &str, name: &str, owner: Option<&str>) -> String {
    use sqlx::Connection;
    rt.block_on(async {
        let mut c = sqlx::PgConnection::connect(admin_url).await.unwrap();
        let owner = owner.map(|o| format!(" OWNER {o}")).unwrap_or_default();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}{owner}"))).execute(&mut c).await.unwrap();
    });
    let mut url = url::Url::parse(admin_url).expect("a PostgreSQL URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// What both binaries get in the suites: the URL form of the database settings, the queue,
/// and the SQS emulator (or a proxy in front of it) with dummy credentials.
pub fn service_env(database_url: &str, queue_url: &str, sqs_endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", database_url.to_owned()),
        ("SQS_QUEUE_URL", queue_url.to_owned()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_ENDPOINT_URL_SQS", sqs_endpoint.to_owned()),
        ("DB_SSLMODE", "disable".into()),
    ]
}

/// Log lines of `events` for one gift.
pub fn events_for(logs: &[Value], gift: &str, event: &str) -> usize {
    logs.iter().filter(|l| l["gift_id"] == gift && l["event"] == event).count()
}

/// The switchable TCP forwarder of the real-stack run (off, stalled, slowed).
#[allow(unused_imports)]
pub use gift_stack::proxy::Proxy;
