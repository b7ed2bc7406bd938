//! gift-admin against real PostgreSQL and SQS (moto), run the way an operator runs it: with
//! the worker's environment. Needs `TEST_DATABASE_URL` and `TEST_SQS_ENDPOINT` (scripts/test
//! provides both and makes them required).
//!
//! The cases are here, one a command; fixture.rs holds the database, queue and gifts they
//! set up, and how a run of gift-admin is read.

#[path = "../support/scratch.rs"]
mod scratch;
#[path = "../support/mod.rs"]
mod support;

mod fixture;

use std::time::Duration;

use gift_core::domain::{GiftId, IdempotencyKey, SendMessage, Timestamp};
use sqlx::Connection;

use fixture::{fresh, now, setup, Env, Run, WORKER};
use support::{free_port, Proc};

#[test]
fn show_prints_the_gift_its_send_request_outbox_row_and_log_pointers() {
    let Some(env) = setup("show") else { return };
    let id = env.queued_gift("order-7", now());
    let human = env.admin(&["show", &id.to_string()]);
    assert!(human.ok, "{}{}", human.text, human.stderr);
    for part in [&format!("gift {id}  QUEUED"), "order-7  accepted", "outbox (1)", &format!("@gift_id:{id}")] {
        assert!(human.text.contains(part), "{part:?} missing in:\n{}", human.text);
    }
    assert!(human.logs.is_empty(), "a read logs nothing on success: {:?}", human.logs);

    let json = env.admin(&["show", &id.to_string(), "--json"]);
    let shown = &json.report;
    assert_eq!(json.text.lines().count(), 1, "the report alone: {}", json.text);
    assert_eq!(shown["gift"]["gift_id"], id.to_string());
    assert_eq!(shown["gift"]["status"], "QUEUED");
    assert_eq!(shown["send_requests"][0]["request_id"], "order-7");
    assert_eq!(shown["outbox"][0]["request_id"], "order-7");
    assert_eq!(shown["outbox"][0]["publishes"], 0, "not published yet");
    assert_eq!(shown["logs"]["datadog"], format!("@gift_id:{id}"));

    let unknown = env.admin(&["show", &GiftId::from(uuid::Uuid::new_v4()).to_string()]);
    assert!(!unknown.ok && unknown.stderr.contains("no gift"), "{}", unknown.stderr);
    let bad = env.admin(&["show", "not-a-gift"]);
    assert!(!bad.ok && bad.stderr.contains("gift_id must be a UUID"), "{}", bad.stderr);
}

#[test]
fn lists_show_stale_queued_and_failed_gifts() {
    let Some(env) = setup("lists") else { return };
    let stale = env.queued_gift("k-stale", now() - chrono::Duration::minutes(45));
    let _fresh = env.queued_gift("k-fresh", now());
    let failed = env.failed_gift("k-failed");
    let _sent = env.sent_gift("k-sent");
    let ids = |run: &Run| -> Vec<String> {
        run.report["gifts"].as_array().unwrap().iter().map(|g| g["gift_id"].as_str().unwrap().to_owned()).collect()
    };

    let queued = env.admin(&["list-queued", "--older-than-minutes", "20", "--json"]);
    assert!(queued.ok, "{}", queued.stderr);
    assert_eq!(ids(&queued), [stale.to_string()]);
    let failed_list = env.admin(&["list-failed", "--json"]);
    assert_eq!(ids(&failed_list), [failed.to_string()]);
    assert_eq!(failed_list.report["gifts"][0]["last_error"], "pseudo-send failed (attempt 5)");

    let text = env.admin(&["list-failed"]).text;
    assert!(text.contains(&failed.to_string()) && text.contains("last_error: pseudo-send failed"), "{text}");
    let all_queued = env.admin(&["list-queued", "--older-than-minutes", "0", "--limit", "1", "--json"]);
    assert_eq!(ids(&all_queued), [stale.to_string()], "the longest untouched first, at most --limit");
}

#[test]
fn retry_requeues_a_failed_gift_and_refuses_a_sent_one() {
    let Some(env) = setup("retry") else { return };
    let failed = env.failed_gift("k-1");
    let sent = env.sent_gift("k-2");

    let dry = env.admin(&["retry", &failed.to_string(), "--dry-run", "--json"]);
    assert!(dry.ok, "{}", dry.stderr);
    assert_eq!(dry.report["gifts"][0]["decision"], "RETRIED");
    assert_eq!(env.gift_row(failed), ("FAILED".into(), Some("pseudo-send failed (attempt 5)".into()), 0), "dry run");

    let before = now();
    let run = env.admin(&["retry", &failed.to_string()]);
    assert!(run.ok, "{}{}", run.text, run.stderr);
    assert_eq!(env.gift_row(failed), ("QUEUED".into(), None, 1));
    let line = run.event("ADMIN_RETRY");
    assert_eq!(
        (&line["gift_id"], &line["decision"], &line["request_id"]),
        (&failed.to_string().into(), &"RETRIED".into(), &"k-1".into())
    );
    let shown = env.admin(&["show", &failed.to_string(), "--json"]).report;
    let updated: Timestamp = serde_json::from_value(shown["gift"]["updated_at"].clone()).unwrap();
    assert!(updated >= before, "updated_at is the retry's time");

    let refused = env.admin(&["retry", &sent.to_string()]);
    assert!(!refused.ok, "a SENT gift is refused with a failing exit");
    assert!(refused.text.contains("refused, it is SENT (only a FAILED gift can be retried)"), "{}", refused.text);
    assert_eq!(env.gift_row(sent), ("SENT".into(), None, 0));
    let again = env.admin(&["retry", &failed.to_string()]);
    assert!(!again.ok && again.text.contains("it is QUEUED"), "a retried gift is no longer FAILED: {}", again.text);
}

#[test]
fn redrive_rearms_a_queued_gift_which_then_gets_sent() {
    let Some(env) = setup("rearm") else { return };
    let id = env.dead_lettered("k-q");
    let run = env.admin(&["redrive-dlq", "--json"]);
    assert!(run.ok, "{}{}", run.text, run.stderr);
    let message = &run.report["messages"][0];
    assert_eq!(
        (&message["decision"], &message["dlq"], &message["request_id"]),
        (&"REARM".into(), &"DELETED".into(), &"k-q".into())
    );
    let line = run.event("ADMIN_REDRIVE");
    assert_eq!((&line["gift_id"], &line["decision"]), (&id.to_string().into(), &"REARM".into()));
    assert_eq!(env.gift_row(id), ("QUEUED".into(), None, 1), "an outbox row for the relay");
    assert_eq!(env.dlq_depth(), (0, 0), "deleted from the DLQ");

    // The worker's relay publishes the outbox row; the worker sends the gift.
    let mut worker_env = env.service_env(&env.sqs_endpoint);
    worker_env.extend([
        ("SEND_FAILURE_RATE", "0".into()),
        ("WORKER_WAIT_SECONDS", "1".into()),
        ("RELAY_INTERVAL_MS", "200".into()),
        ("HEARTBEAT_FILE", format!("/tmp/{}.heartbeat", env.db_name)),
    ]);
    let _worker = Proc::start(WORKER, &worker_env);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while env.gift_row(id).0 != "SENT" {
        assert!(std::time::Instant::now() < deadline, "the re-armed gift was never sent: {:?}", env.gift_row(id));
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn redrive_drops_a_sent_gifts_message_and_leaves_what_it_cannot_decide() {
    let Some(env) = setup("drop") else { return };
    let sent = env.sent_gift("k-s");
    env.to_dlq(&SendMessage { gift_id: sent, request_id: IdempotencyKey::parse("k-s").unwrap() }.to_body());
    let unknown = GiftId::from(uuid::Uuid::new_v4());
    let unknown_body = SendMessage { gift_id: unknown, request_id: IdempotencyKey::parse("k-u").unwrap() }.to_body();
    env.to_dlq(&unknown_body);
    env.to_dlq("not json");

    let run = env.admin(&["redrive-dlq", "--json"]);
    assert!(run.ok, "{}{}", run.text, run.stderr);
    let mut decided: Vec<(String, String, String)> = run.report["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["decision"].to_string(), m["reason"].to_string(), m["dlq"].to_string()))
        .collect();
    decided.sort();
    assert_eq!(
        decided,
        [
            (r#""DROP""#.into(), "null".into(), r#""DELETED""#.into()),
            (r#""LEAVE""#.into(), r#""UNKNOWN_GIFT""#.into(), r#""KEPT""#.into()),
            (r#""LEAVE""#.into(), r#""UNPARSEABLE""#.into(), r#""KEPT""#.into()),
        ]
    );
    let drop = run.events("ADMIN_REDRIVE").into_iter().find(|l| l["decision"] == "DROP").unwrap();
    assert_eq!((&drop["gift_id"], &drop["gift_status"]), (&sent.to_string().into(), &"SENT".into()));
    assert_eq!(env.gift_row(sent), ("SENT".into(), None, 0), "status unchanged, nothing re-armed");
    assert_eq!(env.dlq_depth(), (2, 0), "the two it could not decide are back, visible");
    let mut left = vec![unknown_body, "not json".to_owned()];
    left.sort();
    assert_eq!(env.sorted_dlq_bodies(), left);
}

#[test]
fn redrive_dry_run_leaves_the_dlq_and_the_database_as_they_were() {
    let Some(env) = setup("dry") else { return };
    let queued = env.dead_lettered("k-q");
    let sent = env.sent_gift("k-s");
    env.to_dlq(&SendMessage { gift_id: sent, request_id: IdempotencyKey::parse("k-s").unwrap() }.to_body());
    let before = env.sorted_dlq_bodies();

    let run = env.admin(&["redrive-dlq", "--dry-run", "--json"]);
    assert!(run.ok, "{}{}", run.text, run.stderr);
    let mut decisions: Vec<String> =
        run.report["messages"].as_array().unwrap().iter().map(|m| format!("{} {}", m["decision"], m["dlq"])).collect();
    decisions.sort();
    assert_eq!(decisions, [r#""DROP" "KEPT""#, r#""REARM" "KEPT""#]);
    assert!(run.events("ADMIN_REDRIVE").iter().all(|l| l["dry_run"] == true));
    assert_eq!(env.gift_row(queued), ("QUEUED".into(), None, 0), "no outbox row written");
    assert_eq!(env.dlq_depth(), (2, 0), "both visible again at once");
    assert_eq!(env.sorted_dlq_bodies(), before);
}

#[test]
fn redrive_refuses_the_send_queue_as_its_dlq() {
    let Some(env) = setup("same") else { return };
    let mut same = env.admin_env();
    same.retain(|(k, _)| *k != "SQS_DLQ_URL");
    same.push(("SQS_DLQ_URL", env.queue_url.clone()));
    let run = env.admin_with(&["redrive-dlq"], &same);
    assert!(!run.ok && run.stderr.contains("SQS_DLQ_URL is SQS_QUEUE_URL"), "{}", run.stderr);
}

/// The role is the server's, not the database's: each test run names its own and drops it.
struct Role<'a> {
    env: &'a Env,
    name: String,
}

impl Drop for Role<'_> {
    fn drop(&mut self) {
        let admin = std::env::var("TEST_DATABASE_URL").unwrap();
        let (db, role) = (&self.env.db_name, &self.name);
        self.env.rt.block_on(async {
            let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
            for statement in
                [format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"), format!("DROP ROLE IF EXISTS {role}")]
            {
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&mut c).await;
            }
        });
    }
}

#[test]
fn migrate_creates_a_data_only_role_and_runs_again() {
    // A fresh database: migrate makes the schema itself.
    let Some(env) = fresh("migrate") else { return };
    let role = Role { env: &env, name: format!("gift_app_{}", free_port()) };
    let migrate_env = |password: Option<&str>| {
        let mut vars = vec![("DATABASE_URL", env.database_url.clone()), ("DB_SSLMODE", "disable".into())];
        vars.push(("APP_DB_USER", role.name.clone()));
        vars.extend(password.map(|p| ("APP_DB_PASSWORD", p.to_owned())));
        vars
    };

    let dry = env.admin_with(&["migrate", "--dry-run", "--json"], &migrate_env(Some("pw-1")));
    assert!(dry.ok, "{}{}", dry.text, dry.stderr);
    assert_eq!((&dry.report["migrations"][0]["version"], &dry.report["role_created"]), (&1.into(), &true.into()));
    let first = env.admin_with(&["migrate"], &migrate_env(Some("pw-1")));
    assert!(first.ok, "the dry run wrote nothing, so this one creates everything: {}{}", first.text, first.stderr);
    let migrated = first.event("MIGRATED");
    assert_eq!((&migrated["role"], &migrated["role_created"]), (&role.name.clone().into(), &true.into()));
    assert!(!first.text.contains("pw-1"), "the password is never printed");

    let as_role = {
        let mut url = url::Url::parse(&env.database_url).unwrap();
        url.set_username(&role.name).unwrap();
        url.set_password(Some("pw-1")).unwrap();
        url.to_string()
    };
    let (rows, create, stored): (i64, String, String) = env.rt.block_on(async {
        let mut c = sqlx::PgConnection::connect(&as_role).await.unwrap();
        sqlx::query(
            "INSERT INTO gifts (id, code, amount, status, created_at, updated_at) \
             VALUES (gen_random_uuid(), 'GIFT-ROLE', 1, 'CREATED', now(), now())",
        )
        .execute(&mut c)
        .await
        .unwrap();
        let rows = sqlx::query_scalar("SELECT count(*) FROM gifts").fetch_one(&mut c).await.unwrap();
        let create = sqlx::raw_sql("CREATE TABLE intruder (i int)").execute(&mut c).await.unwrap_err().to_string();
        let mut su = sqlx::PgConnection::connect(&env.database_url).await.unwrap();
        let stored = sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
            .bind(&role.name)
            .fetch_one(&mut su)
            .await
            .unwrap();
        (rows, create, stored)
    });
    assert_eq!(rows, 1, "the role reads and writes gifts");
    assert!(create.contains("permission denied for schema public"), "{create}");
    assert!(
        stored.starts_with("SCRAM-SHA-256$4096:") && !stored.contains("pw-1"),
        "a verifier, not the password: {stored}"
    );

    let again = env.admin_with(&["migrate"], &migrate_env(Some("pw-2")));
    assert!(again.ok, "a second run succeeds: {}{}", again.text, again.stderr);
    assert_eq!(again.event("MIGRATED")["role_created"], false);
    let without_password = env.admin_with(&["migrate"], &migrate_env(None));
    assert!(without_password.ok, "an existing role needs no password: {}", without_password.stderr);
    drop(role);
}

#[test]
fn migrate_without_a_password_cannot_create_the_role() {
    let Some(env) = setup("nopw") else { return };
    let vars = [
        ("DATABASE_URL", env.database_url.clone()),
        ("DB_SSLMODE", "disable".into()),
        ("APP_DB_USER", format!("gift_app_absent_{}", free_port())),
    ];
    let run = env.admin_with(&["migrate"], &vars);
    assert!(!run.ok && run.stderr.contains("set APP_DB_PASSWORD"), "{}", run.stderr);
    let failed = run.logs.iter().find(|l| l["status"] == "error").expect("a failure log line");
    assert_eq!(failed["error_code"], "APP_ROLE_FAILED");
}
