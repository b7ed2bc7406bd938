//! A fresh database and a fresh queue with its DLQ on the test servers: what every bins suite
//! on PostgreSQL and SQS (moto) starts from. The suites declare this module next to
//! `support` (`#[path = "support/scratch.rs"] mod scratch;`) rather than support/mod.rs
//! declaring it, because local/tests/quick_start.rs includes support/mod.rs and builds no
//! SQS client.
#![allow(dead_code)]

use gift_runtime::conformance::sqs_emulator;

use crate::support::{create_database, free_port, required, service_env};

/// A database and a queue of the same name, made for one test.
pub struct Scratch {
    /// The server the database was created on, with the admin's credentials.
    pub admin_url: String,
    pub db_name: String,
    /// The fresh database with the admin's credentials.
    pub database_url: String,
    pub sqs_endpoint: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub sqs: aws_sdk_sqs::Client,
    pub rt: tokio::runtime::Runtime,
}

impl Scratch {
    /// [`Scratch::create`] on `TEST_DATABASE_URL` and `TEST_SQS_ENDPOINT`, the database named
    /// `{prefix}_{tag}_{a free port}`; `None` when the case is skipped.
    pub fn from_env(prefix: &str, tag: &str) -> Option<Self> {
        let admin = required("TEST_DATABASE_URL")?;
        let sqs_endpoint = required("TEST_SQS_ENDPOINT")?;
        Some(Self::create(&admin, &sqs_endpoint, format!("{prefix}_{tag}_{}", free_port()), None))
    }

    /// Database `db_name` on the server `admin_url` names (owned by `owner` if given) and a
    /// queue of that name with a DLQ after 5 receives and a 5 s visibility timeout.
    pub fn create(admin_url: &str, sqs_endpoint: &str, db_name: String, owner: Option<&str>) -> Self {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let database_url = create_database(&rt, admin_url, &db_name, owner);
        let sqs = sqs_emulator::client(sqs_endpoint);
        let (queue_url, dlq_url) = rt.block_on(sqs_emulator::queue_with_dlq(&sqs, &db_name, 5, 5));
        Self {
            admin_url: admin_url.to_owned(),
            db_name,
            database_url,
            sqs_endpoint: sqs_endpoint.to_owned(),
            queue_url,
            dlq_url,
            sqs,
            rt,
        }
    }

    /// What both binaries get, reaching SQS at `endpoint` (the emulator, or a proxy in
    /// front of it).
    pub fn service_env(&self, endpoint: &str) -> Vec<(&'static str, String)> {
        service_env(&self.database_url, &self.queue_url, endpoint)
    }

    /// A message on the main queue that no send wrote: a duplicate or a stray by hand.
    pub fn publish_raw(&self, body: &str) {
        self.rt.block_on(async {
            self.sqs.send_message().queue_url(&self.queue_url).message_body(body).send().await.unwrap()
        });
    }

    /// Up to ten bodies of the DLQ, left visible.
    pub fn dlq_bodies(&self) -> Vec<String> {
        self.rt.block_on(sqs_emulator::peek_bodies(&self.sqs, &self.dlq_url))
    }
}
