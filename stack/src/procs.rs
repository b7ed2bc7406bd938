//! The fleet: each service process by name (api-1, worker-2), started with its environment,
//! and what the nemesis does to it — `kill -9`, `SIGSTOP`/`SIGCONT`, `SIGTERM` — and a
//! restart. Every incarnation writes its own effect log and stdout file, so a restarted
//! process's pseudo-send numbers never meet its predecessor's.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What a process runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Api,
    Worker,
}

pub struct Node {
    pub name: String,
    pub role: Role,
    bin: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
    pub paused: bool,
    incarnation: u32,
    dir: PathBuf,
}

impl Node {
    pub fn new(name: &str, role: Role, bin: &Path, env: Vec<(String, String)>, dir: &Path) -> Self {
        let (bin, dir) = (bin.to_owned(), dir.to_owned());
        Self { name: name.to_owned(), role, bin, env, child: None, paused: false, incarnation: 0, dir }
    }

    /// The effect log of incarnation `n`.
    pub fn effect_log(&self, n: u32) -> PathBuf {
        self.dir.join(format!("{}.{n}.effects", self.name))
    }

    pub fn incarnations(&self) -> u32 {
        self.incarnation
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn start(&mut self) -> Result<(), String> {
        self.incarnation += 1;
        let n = self.incarnation;
        let stdout = File::create(self.dir.join(format!("{}.{n}.log", self.name))).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&self.bin);
        cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.env("NODE_NAME", &self.name).env("EFFECT_LOG", self.effect_log(n));
        let stderr = stdout.try_clone().map_err(|e| e.to_string())?;
        let child = cmd.stdout(Stdio::from(stdout)).stderr(Stdio::from(stderr)).spawn();
        self.child = Some(child.map_err(|e| format!("start {}: {e}", self.bin.display()))?);
        self.paused = false;
        Ok(())
    }

    fn signal(&self, sig: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill").arg(format!("-{sig}")).arg(child.id().to_string()).status();
        }
    }

    /// SIGKILL: no drain, no cleanup.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    pub fn pause(&mut self) {
        self.signal("STOP");
        self.paused = true;
    }

    pub fn resume(&mut self) {
        self.signal("CONT");
        self.paused = false;
    }

    /// SIGTERM and waits up to `within` for the exit; `false` if it did not come.
    pub fn terminate(&mut self, within: Duration) -> bool {
        if self.paused {
            self.resume();
        }
        self.signal("TERM");
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            match self.child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(_))) | None => {
                    self.child = None;
                    return true;
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        false
    }

    /// Whether the process died on its own (a crash the nemesis did not cause).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.paused {
            self.resume();
        }
        self.kill9();
    }
}
