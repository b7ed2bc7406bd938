//! A throwaway PostgreSQL cluster, which a case may stop, start and reconfigure.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::support::{free_port, temp_dir};

fn pg_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A PostgreSQL cluster in a temporary directory on a free port, which the test may stop
/// and start. As root, initdb and pg_ctl run as the `postgres` user (initdb refuses root).
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
    as_postgres: bool,
    admin_password: Option<String>,
}

impl Cluster {
    /// Initialises and starts a cluster; `admin_password` makes it password-only
    /// (scram-sha-256) instead of trust. `None` when skipped (no initdb found).
    pub fn start_new(tag: &str, admin_password: Option<&str>) -> Option<Self> {
        let Some(bin) = pg_bin() else {
            if std::env::var("GIFT_TEST_SERVICES").as_deref() == Ok("required") {
                panic!("initdb is required: no /usr/lib/postgresql/*/bin and no PG_BIN");
            }
            eprintln!("SKIPPED: needs initdb (/usr/lib/postgresql/*/bin or PG_BIN)");
            return None;
        };
        let dir = temp_dir(&format!("pg-{tag}"));
        let cluster = Self {
            bin,
            port: free_port(),
            as_postgres: is_root(),
            admin_password: admin_password.map(str::to_owned),
            dir,
        };
        let data = cluster.dir.join("data");
        let mut args: Vec<String> = vec!["-D".into(), data.display().to_string(), "-U".into(), "postgres".into()];
        args.extend(["-N".into(), "-E".into(), "UTF8".into()]);
        match admin_password {
            Some(pw) => {
                let pwfile = cluster.dir.join("pwfile");
                std::fs::write(&pwfile, pw).unwrap();
                args.extend(["-A".into(), "scram-sha-256".into(), "--pwfile".into(), pwfile.display().to_string()]);
            }
            None => args.extend(["-A".into(), "trust".into()]),
        }
        if cluster.as_postgres {
            let chown = Command::new("chown").arg("-R").arg("postgres").arg(&cluster.dir).status().unwrap();
            assert!(chown.success(), "chown postgres {}", cluster.dir.display());
        }
        let out = cluster.command("initdb").args(&args).stdin(Stdio::null()).output().unwrap();
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        cluster.start();
        Some(cluster)
    }

    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn pg_ctl(&self, args: &[&str]) -> bool {
        self.command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    pub fn start(&self) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.display());
        let log = self.dir.join("log").display().to_string();
        let ok = self.pg_ctl(&["-o", &options, "-l", &log, "-w", "-t", "60", "start"]);
        assert!(ok, "pg_ctl start: {}", std::fs::read_to_string(&log).unwrap_or_default());
    }

    /// A fast shutdown: sessions are terminated, as when RDS fails over or restarts.
    pub fn stop(&self) {
        assert!(self.pg_ctl(&["-m", "fast", "-w", "-t", "60", "stop"]), "pg_ctl stop");
    }

    pub fn admin_url(&self) -> String {
        let auth = self.admin_password.as_deref().map(|p| format!(":{p}")).unwrap_or_default();
        format!("postgres://postgres{auth}@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
