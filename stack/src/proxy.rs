//! A TCP forwarder in front of a dependency (PostgreSQL, the SQS emulator) that the
//! nemesis switches: off (live connections cut, new ones closed at once), stalled (bytes
//! held, not forwarded), or slowed (each chunk held for a latency). The dependency keeps
//! its state; only its clients see it go away. The binaries' fault tests use it too.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Switches {
    up: AtomicBool,
    stalled: AtomicBool,
    latency_ms: AtomicU64,
}

pub struct Proxy {
    pub port: u16,
    switches: Arc<Switches>,
    live: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Forwards 127.0.0.1:`port` to `target` (`host:port`, or a URL `http://host:port`).
    pub fn start(target: &str) -> Self {
        let target = target.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("a bound address").port();
        let switches = Arc::new(Switches { up: AtomicBool::new(true), ..Default::default() });
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let (sw, conns) = (switches.clone(), live.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if let Some(pair) = connect(&sw, &conns, client, &target) {
                    for (from, to) in pair {
                        let sw = sw.clone();
                        std::thread::spawn(move || forward(&sw, from, to));
                    }
                }
            }
        });
        Self { port, switches, live }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stalled: bytes are read but held, not forwarded, until un-stalled; cutting the
    /// connections meanwhile ([`Proxy::set_up`]`(false)`) discards them.
    pub fn set_stalled(&self, stalled: bool) {
        self.switches.stalled.store(stalled, Ordering::SeqCst);
    }

    /// Every chunk forwarded from now on waits `latency` first (zero: none).
    pub fn set_latency(&self, latency: Duration) {
        self.switches.latency_ms.store(latency.as_millis() as u64, Ordering::SeqCst);
    }

    /// Off: every live connection is cut and new ones are closed on arrival. On: forwards again.
    pub fn set_up(&self, up: bool) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if !up {
            // Cut first, then lower the flag: a stalled forwarder wakes on the flag and must
            // find its peer already gone, so what it held is discarded, not delivered.
            for conn in live.drain(..) {
                let _ = conn.shutdown(Shutdown::Both);
            }
        }
        self.switches.up.store(up, Ordering::SeqCst);
    }
}

/// The two directions of a new connection, or `None` when the proxy is off or the target
/// refuses.
fn connect(
    sw: &Switches,
    conns: &Mutex<Vec<TcpStream>>,
    client: TcpStream,
    target: &str,
) -> Option<[(TcpStream, TcpStream); 2]> {
    let refuse = |client: &TcpStream| {
        let _ = client.shutdown(Shutdown::Both);
    };
    if !sw.up.load(Ordering::SeqCst) {
        refuse(&client);
        return None;
    }
    let Ok(server) = TcpStream::connect(target) else {
        refuse(&client);
        return None;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    // Under the lock, so a switch-off either sees this pair or is seen by it.
    let mut conns = conns.lock().unwrap_or_else(|p| p.into_inner());
    if !sw.up.load(Ordering::SeqCst) {
        refuse(&client);
        let _ = server.shutdown(Shutdown::Both);
        return None;
    }
    let clones = (client.try_clone().ok()?, server.try_clone().ok()?);
    conns.push(clones.0.try_clone().ok()?);
    conns.push(clones.1.try_clone().ok()?);
    Some([(clones.0, clones.1), (server, client)])
}

fn forward(sw: &Switches, mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16384];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                while sw.stalled.load(Ordering::SeqCst) && sw.up.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                let latency = sw.latency_ms.load(Ordering::SeqCst);
                if latency > 0 {
                    std::thread::sleep(Duration::from_millis(latency));
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_server() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for mut s in listener.incoming().map_while(Result::ok) {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    fn round_trip(port: u16) -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(b"ping")?;
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf)?;
        Ok(buf.to_vec())
    }

    #[test]
    fn forwards_and_cuts_and_forwards_again() {
        let proxy = Proxy::start(&echo_server());
        assert_eq!(round_trip(proxy.port).unwrap(), b"ping");
        proxy.set_up(false);
        assert!(round_trip(proxy.port).is_err(), "a switched-off proxy must not forward");
        proxy.set_up(true);
        assert_eq!(round_trip(proxy.port).unwrap(), b"ping");
    }
}
