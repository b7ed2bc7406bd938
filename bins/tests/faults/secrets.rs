//! Secrets (the database password, the AWS secret key) never reach logs or responses.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sqlx::Connection;

use crate::cluster::Cluster;
use crate::fixture::{final_lines, services, wait_until, EnvVars, Fixture, API, WORKER};
use crate::support::{free_port, Answer, Client, Proc};

type Rt = tokio::runtime::Runtime;

/// A password-only cluster and a role whose password is a distinctive secret, given as
/// `DB_PASSWORD` the way the task definitions inject it from Secrets Manager (and once in a
/// `DATABASE_URL`), with a distinctive AWS secret key too. The run covers `--help`, failed
/// connections (wrong password at start, nothing listening, credentials rotated under a
/// running API), a normal create → send → SENT, client errors, and requests while the
/// database is stopped. Neither secret may appear in any log line (stdout and stderr) or
/// any HTTP response (body or headers).
#[test]
fn secrets_never_appear_in_logs_or_responses() {
    let Some((_, sqs)) = services() else { return };
    let nonce = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    let secrets = Secrets { db: format!("Pw7-{nonce}-zQx"), aws: format!("AwsK-{nonce}-vYt") };
    let Some(pg) = Cluster::start_new("secrets", Some("admin-only-password")) else { return };
    let admin = pg.admin_url();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        // Role passwords cannot be bound parameters; the secret is alphanumeric and dashes.
        for sql in [
            format!("CREATE ROLE gift_app LOGIN PASSWORD '{}'", secrets.db),
            "CREATE ROLE gift_other LOGIN PASSWORD 'something-else'".to_owned(),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await.unwrap();
        }
    });
    let fx = Fixture::new("secrets", &admin, &sqs, Some("gift_app"));
    let mut seen = Seen::default();
    help_with_secrets(&secrets, pg.port, &mut seen);
    let failed_logs = failed_starts(&fx, &pg, &secrets, &mut seen);

    // A normal run with the secret as DB_PASSWORD, at debug level.
    let port = free_port();
    let mut env = fx.api_env(port, &secrets.split_env(&fx, &pg, "gift_app"));
    env.push(("LOG_LEVEL", "debug".into()));
    let mut api_proc = Proc::start_capturing_stderr(API, &env);
    let api = Client::new(port);
    api.wait_healthy(Duration::from_secs(30));
    let mut wenv = fx.worker_env(&secrets.split_env(&fx, &pg, "gift_app"));
    wenv.push(("SEND_FAILURE_RATE", "0".into()));
    wenv.push(("LOG_LEVEL", "debug".into()));
    let worker = Proc::start_capturing_stderr(WORKER, &wenv);

    let id = send_and_refuse(&api, &mut seen);
    let mut accepted_ids = vec![id.clone()];
    let during_rotation = rotate_credentials(&rt, &admin, &secrets, &api, &mut seen);
    let while_down = while_stopped(&pg, &api, &id, &mut seen);
    let again = seen.keep(api.try_call("POST", "/gifts", None, Some(r#"{"amount": 3}"#)));
    assert_eq!(again.status, 201);
    let id2 = again.body["gift_id"].as_str().unwrap().to_owned();
    assert_eq!(seen.keep(api.try_call("POST", &format!("/gifts/{id2}/send"), Some("sec-4"), None)).status, 202);
    accepted_ids.push(id2);
    fx.drain_and_check(&accepted_ids, Duration::from_secs(60), || worker.log_lines());

    api_proc.signal("TERM");
    assert!(api_proc.wait_exit(Duration::from_secs(15)).is_some_and(|s| s.success()));
    seen.outputs.extend(final_lines(&api_proc));
    seen.outputs.extend(worker.raw_lines());
    let leaks: Vec<&String> =
        seen.outputs.iter().filter(|o| o.contains(&secrets.db) || o.contains(&secrets.aws)).collect();
    assert!(leaks.is_empty(), "a secret leaked: {leaks:?}");
    let readyz_reasons: Vec<&Value> = seen
        .answers
        .iter()
        .filter(|a| a.status == 503 && a.body.get("reason").is_some())
        .map(|a| &a.body["reason"])
        .collect();
    println!(
        "[secrets] {} output lines/bodies/headers scanned ({} HTTP answers), neither secret found; statuses during \
         rotation {during_rotation:?}, while stopped {while_down:?}",
        seen.outputs.len(),
        seen.answers.len()
    );
    for line in &failed_logs {
        println!("[secrets] failed start, as logged: {line}");
    }
    println!("[secrets] /readyz reasons returned to the client: {readyz_reasons:?}");
}

/// The two distinctive secrets of the run: the database password and the AWS secret key.
struct Secrets {
    db: String,
    aws: String,
}

impl Secrets {
    /// The split database settings as the task definitions give them (the password as
    /// `DB_PASSWORD`), for `user` with the database secret, and the AWS secret key.
    fn split_env(&self, fx: &Fixture, pg: &Cluster, user: &str) -> EnvVars {
        self.split_env_with(fx, pg, user, &self.db)
    }

    fn split_env_with(&self, fx: &Fixture, pg: &Cluster, user: &str, password: &str) -> EnvVars {
        vec![
            ("DATABASE_URL", String::new()),
            ("DB_HOST", "127.0.0.1".into()),
            ("DB_PORT", pg.port.to_string()),
            ("DB_NAME", fx.db_name.clone()),
            ("DB_USER", user.into()),
            ("DB_PASSWORD", password.into()),
            ("AWS_SECRET_ACCESS_KEY", self.aws.clone()),
            ("DB_ACQUIRE_TIMEOUT_MS", "1000".into()),
        ]
    }
}

/// Everything the processes printed and the API answered, to search for the secrets.
#[derive(Default)]
struct Seen {
    outputs: Vec<String>,
    answers: Vec<Answer>,
}

impl Seen {
    /// Keeps an answer's body and headers; a transport failure panics.
    fn keep(&mut self, a: Result<Answer, String>) -> Answer {
        let a = a.unwrap();
        self.outputs.push(a.text.clone());
        self.outputs.extend(a.headers.iter().cloned());
        self.answers.push(a.clone());
        a
    }
}

fn run_sql(rt: &Rt, admin: &str, sql: String) {
    rt.block_on(async {
        let mut c = sqlx::PgConnection::connect(admin).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await.unwrap();
    })
}

/// `--help` of both binaries with the secrets in the environment.
fn help_with_secrets(secrets: &Secrets, pg_port: u16, seen: &mut Seen) {
    for bin in [API, WORKER] {
        let out = Command::new(bin)
            .arg("--help")
            .env("DB_PASSWORD", &secrets.db)
            .env("DATABASE_URL", format!("postgres://gift_app:{}@127.0.0.1:{pg_port}/x", secrets.db))
            .env("AWS_SECRET_ACCESS_KEY", &secrets.aws)
            .output()
            .unwrap();
        assert!(out.status.success());
        seen.outputs.push(String::from_utf8_lossy(&out.stdout).into_owned());
        seen.outputs.push(String::from_utf8_lossy(&out.stderr).into_owned());
    }
}

/// Failed connections at start: the secret as a wrong password; the secret in a URL to a
/// port where nothing listens. Both processes must exit non-zero, having said why; returns
/// the line each said it in.
fn failed_starts(fx: &Fixture, pg: &Cluster, secrets: &Secrets, seen: &mut Seen) -> Vec<String> {
    let nothing_listens = free_port();
    let wrong = secrets.split_env_with(fx, pg, "gift_other", &secrets.db);
    let starts: Vec<(&str, &str, EnvVars)> = vec![
        ("api, wrong password", API, fx.api_env(free_port(), &wrong)),
        ("worker, wrong password", WORKER, fx.worker_env(&wrong)),
        (
            "api, nothing listening",
            API,
            fx.api_env(
                free_port(),
                &[
                    ("DATABASE_URL", format!("postgres://gift_app:{}@127.0.0.1:{nothing_listens}/gift", secrets.db)),
                    ("DB_ACQUIRE_TIMEOUT_MS", "500".into()),
                    ("AWS_SECRET_ACCESS_KEY", secrets.aws.clone()),
                ],
            ),
        ),
    ];
    let mut failed_logs = Vec::new();
    for (what, bin, env) in &starts {
        let mut p = Proc::start_capturing_stderr(bin, env);
        let exit = p.wait_exit(Duration::from_secs(30)).unwrap_or_else(|| panic!("{what}: still running"));
        assert!(!exit.success(), "{what} must fail");
        let lines = final_lines(&p);
        assert!(lines.iter().any(|l| l.contains("STARTUP_FAILED")), "{what}: {lines:?}");
        failed_logs.push(format!("{what}: {}", lines.iter().find(|l| l.contains("STARTUP_FAILED")).unwrap()));
        seen.outputs.extend(lines);
    }
    assert!(failed_logs[0].contains("password authentication failed"), "{}", failed_logs[0]);
    failed_logs
}

/// A create → send accepted, then the client errors of every kind; returns the sent gift.
fn send_and_refuse(api: &Client, seen: &mut Seen) -> String {
    let created = seen.keep(api.try_call("POST", "/gifts", None, Some(r#"{"amount": 1200, "message": "hi"}"#)));
    assert_eq!(created.status, 201);
    let id = created.body["gift_id"].as_str().unwrap().to_owned();
    assert_eq!(seen.keep(api.try_call("POST", &format!("/gifts/{id}/send"), Some("sec-1"), None)).status, 202);
    for (method, path, key, body, status) in [
        ("POST", "/gifts".to_owned(), None, Some("{not json"), 400),
        ("POST", "/gifts".to_owned(), None, Some(r#"{"amount": -1}"#), 400),
        ("GET", "/gifts/not-a-uuid".to_owned(), None, None, 400),
        ("GET", "/gifts/00000000-0000-4000-8000-000000000000".to_owned(), None, None, 404),
        ("DELETE", "/gifts".to_owned(), None, None, 405),
        ("POST", format!("/gifts/{id}/send"), Some("sec-2"), None, 409),
        ("GET", "/nowhere".to_owned(), None, None, 404),
    ] {
        let a = seen.keep(api.try_call(method, &path, key, body));
        assert_eq!(a.status, status, "{method} {path}: {}", a.text);
    }
    let big = format!("{{\"amount\": 1, \"message\": \"{}\"}}", "x".repeat(40_000));
    assert_eq!(seen.keep(api.post_too_large("/gifts", &big)).status, 413);
    assert_eq!(seen.keep(api.try_call("GET", "/readyz", None, None)).status, 200);
    id
}

/// Credentials rotated under the running API: its pooled sessions are ended and new ones
/// are refused with the secret it still has. Returns the statuses it answered meanwhile.
fn rotate_credentials(rt: &Rt, admin: &str, secrets: &Secrets, api: &Client, seen: &mut Seen) -> Vec<u16> {
    run_sql(rt, admin, "ALTER ROLE gift_app PASSWORD 'rotated-elsewhere'".to_owned());
    run_sql(rt, admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'gift_app'".to_owned());
    let mut during_rotation = Vec::new();
    for _ in 0..3 {
        let a = seen.keep(api.try_call("POST", "/gifts", None, Some(r#"{"amount": 5}"#)));
        during_rotation.push(a.status);
        let r = seen.keep(api.try_call("GET", "/readyz", None, None));
        during_rotation.push(r.status);
    }
    assert!(during_rotation.iter().all(|s| *s >= 500), "requests fail with the old password: {during_rotation:?}");
    run_sql(rt, admin, format!("ALTER ROLE gift_app PASSWORD '{}'", secrets.db));
    during_rotation
}

/// The database stopped: failed connections and failed requests of every kind, all 503;
/// then started again and waited for. Returns the statuses while it was down.
fn while_stopped(pg: &Cluster, api: &Client, id: &str, seen: &mut Seen) -> Vec<u16> {
    pg.stop();
    let mut while_down = Vec::new();
    for (method, path, key, body) in [
        ("GET", "/readyz".to_owned(), None, None),
        ("POST", "/gifts".to_owned(), None, Some(r#"{"amount": 9}"#)),
        ("GET", format!("/gifts/{id}"), None, None),
        ("POST", format!("/gifts/{id}/send"), Some("sec-3"), None),
    ] {
        let a = seen.keep(api.try_call(method, &path, key, body));
        while_down.push(a.status);
        assert_eq!(a.status, 503, "{method} {path}: {}", a.text);
    }
    pg.start();
    wait_until("ready after the restart", Duration::from_secs(30), || {
        api.try_call("GET", "/readyz", None, None).is_ok_and(|a| a.status == 200)
    });
    while_down
}
