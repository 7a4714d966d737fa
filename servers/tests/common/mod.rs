//! An in-process push-server on 127.0.0.1, shared by the integration tests
//! (each test file is its own crate and uses what it needs of this).

use std::net::SocketAddr;
use std::time::Duration;

use servers::ServerConfig;
use tokio::io::AsyncBufReadExt as _;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// A server running `servers::serve` in a task of the test's runtime.
pub struct InProcess {
    /// The HTTP port.
    pub addr: SocketAddr,
    tcp: Option<SocketAddr>,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl InProcess {
    /// Serves `config` on a free HTTP port and, with `with_tcp`, a free
    /// raw-TCP port.
    pub async fn start(config: ServerConfig, with_tcp: bool) -> Self {
        let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
        let listeners = servers::Listeners {
            http: bind().await.unwrap(),
            tcp: if with_tcp {
                Some(bind().await.unwrap())
            } else {
                None
            },
        };
        let addr = listeners.http.local_addr().unwrap();
        let tcp = listeners.tcp.as_ref().map(|l| l.local_addr().unwrap());
        let stop = CancellationToken::new();
        let task = tokio::spawn(servers::serve(listeners, config, stop.clone()));
        Self {
            addr,
            tcp,
            stop,
            task,
        }
    }

    /// The raw-TCP port (the server must have been started with it).
    #[allow(dead_code)] // not every test file speaks raw TCP
    pub fn tcp(&self) -> SocketAddr {
        self.tcp.expect("started with a raw-TCP port")
    }

    /// `http://addr` followed by `path_and_query`.
    #[allow(dead_code)] // the real-client tests speak raw sockets
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    /// Starts the server's graceful shutdown without waiting for it.
    #[allow(dead_code)] // only the shutdown test watches the shutdown itself
    pub fn shut_down(&self) {
        self.stop.cancel();
    }

    /// Shuts the server down (if not already begun) and waits (at most `bound`) for `serve` to
    /// return, which it must do without an error.
    pub async fn stop(self, bound: Duration) {
        self.stop.cancel();
        timeout(bound, self.task)
            .await
            .unwrap_or_else(|_| panic!("serve returns within {bound:?}"))
            .unwrap()
            .unwrap();
    }
}

/// Starts the `push-server` binary (behind `prefix`, e.g. a `prlimit`
/// wrapper) on a free loopback port with `args`, and waits (bounded) for its
/// ready line; returns the child and that line. Its stderr is piped when
/// `stderr` (a test reads the log), discarded otherwise.
#[allow(dead_code)] // not every test file starts the binary
pub async fn spawn_ready(
    prefix: &[&str],
    args: &[&str],
    stderr: bool,
) -> (tokio::process::Child, serde_json::Value) {
    let bin = env!("CARGO_BIN_EXE_push-server");
    let (program, rest): (&str, Vec<&str>) = match prefix.split_first() {
        Some((p, more)) => (p, more.iter().copied().chain([bin]).collect()),
        None => (bin, Vec::new()),
    };
    let mut child = tokio::process::Command::new(program)
        .args(rest)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(if stderr {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = timeout(Duration::from_secs(5), lines.next_line())
        .await
        .expect("ready line within 5 s")
        .unwrap()
        .expect("a ready line");
    (child, serde_json::from_str(&line).unwrap())
}
