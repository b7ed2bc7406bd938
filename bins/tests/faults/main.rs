//! The fault suite: the real `gift-api` and `gift-worker` on loopback against PostgreSQL
//! and SQS (moto), killed, starved, stopped and raced. Every case ends the same way
//! ([`Fixture::finish`]): it waits until every accepted send is SENT or FAILED, nothing is
//! QUEUED, the outbox is empty and the main queue has drained, checks that no gift was
//! logged SENT twice, and prints the counts by status.
//!
//! Needs `TEST_DATABASE_URL` and `TEST_SQS_ENDPOINT` (scripts/test provides both and makes
//! them required). The PostgreSQL outage and the secrets cases stop, start and reconfigure a
//! throwaway cluster of their own (`initdb` from the newest /usr/lib/postgresql/*/bin, or
//! `PG_BIN`); the shared server is never stopped.
//!
//! To hold a process in the middle of its work without timing luck, the cases take table
//! locks from the test and watch `pg_stat_activity` until the process's statements are
//! waiting on them: a worker blocked in its `UPDATE … SET status = 'SENT'` is in the middle of
//! a batch, an API blocked in its `INSERT` is in the middle of a request.
//!
//! fixture.rs holds the per-case setup and the common end, load.rs the clients, cluster.rs
//! the throwaway PostgreSQL cluster; each other module is one fault.

#[path = "../support/scratch.rs"]
mod scratch;
#[path = "../support/mod.rs"]
mod support;

mod cluster;
mod fixture;
mod load;

mod kill_nine;
mod postgres_outage;
mod racing_workers;
mod secrets;
mod sigterm;
mod sqs_outage;
