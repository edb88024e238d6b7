//! A listener that runs out of file descriptors keeps listening: accepts fail with
//! EMFILE for real (this test process lowers its own limit), are counted and retried,
//! and the connections that waited are served once descriptors are free again. Both
//! accept loops: the milter's (indymilter behind `Resilient`) and the one IMAP, POP3 and
//! submission share.
//!
//! One test in its own binary: the descriptor limit is the whole process's.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lifeboat::serve::resilient::Resilient;
use lifeboat_mailstore::{Routes, Store};
use lifeboat_milter::{Milter, Settings};
use lifeboat_servers::health::{self, ListenerHealth};
use lifeboat_servers::limits::{ConnectionCounter, ConnectionLimits, Refusal};
use lifeboat_servers::listener::{self, Accepted, Server, ServerListener};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Answers every connection with one line and closes it.
struct Greeter {
    connections: ConnectionCounter,
}

impl Server for Greeter {
    const NAME: &'static str = "greeter";

    fn connections(&self) -> &ConnectionCounter {
        &self.connections
    }

    fn refusal(_: Refusal) -> &'static [u8] {
        b"busy\r\n"
    }

    async fn handle(
        self: Arc<Self>,
        connection: Accepted,
        _shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<()> {
        let mut stream = connection.stream;
        stream.write_all(b"hello\r\n").await
    }
}

/// A client in another process (which has descriptors of its own): after a second (this
/// process has no descriptor to spare by then), connects and prints the first line it is
/// told, if `listen` (a milter says nothing first).
fn client(address: SocketAddr, listen: bool) -> Child {
    let read = if listen {
        "print(s.recv(100).decode().strip())"
    } else {
        "time.sleep(30)"
    };
    let script = format!(
        "import socket, time\ntime.sleep(1)\n\
         s = socket.create_connection(('127.0.0.1', {}), timeout=20)\ns.settimeout(20)\n{read}\n",
        address.port()
    );
    let mut command = Command::new("python3");
    command
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // The child starts with this process's lowered soft limit: give it its hard one.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(std::io::Error::from)?;
            setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(std::io::Error::from)
        });
    }
    command.spawn().unwrap()
}

/// The lowest descriptor number not in use: a limit of exactly this leaves none free
/// (the limit bounds descriptor numbers, and the kernel hands out the lowest free one).
fn lowest_free_descriptor() -> u64 {
    let probe = std::fs::File::open("/dev/null").unwrap();
    use std::os::fd::AsRawFd;
    probe.as_raw_fd() as u64
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn failures(health: &ListenerHealth) -> u64 {
    health.report().accept_errors
}

#[test]
fn accept_loops_survive_running_out_of_descriptors() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The milter side: Lifeboat's milter behind a Resilient listener.
    let dir = tempfile::tempdir().unwrap();
    let (milter_address, milter_health, milter_task) = runtime.block_on(async {
        let store = Store::open(dir.path(), "accept.test").unwrap();
        let routes = Routes::new([("main", ["example.test".to_string()].as_slice())]);
        let milter = Milter::new(
            store,
            Settings {
                routes,
                max_message_size: 1 << 20,
            },
        );
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = tcp.local_addr().unwrap();
        let health = health::register("milter", address);
        let listener = Resilient::new(tcp, health.clone());
        let task = tokio::spawn(lifeboat_milter::run(
            listener,
            milter,
            4,
            std::future::pending::<()>(),
        ));
        (address, health, task)
    });
    // The servers' side: the shared accept loop.
    let greeter_address = runtime.block_on(async {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = tcp.local_addr().unwrap();
        let server = Arc::new(Greeter {
            connections: ConnectionCounter::new(ConnectionLimits {
                per_ip: 100,
                total: 100,
            }),
        });
        let (_stop, stopped) = watch::channel(false);
        tokio::spawn(async move {
            let _keep = _stop;
            listener::serve(
                vec![ServerListener {
                    listener: tcp,
                    address,
                    implicit_tls: false,
                }],
                server,
                stopped,
            )
            .await;
        });
        address
    });
    std::thread::sleep(Duration::from_millis(200));
    let greeter_health = || {
        health::reports()
            .into_iter()
            .find(|r| r.kind == "greeter")
            .expect("the greeter registered")
    };

    // No descriptor left for accept: every try fails with EMFILE.
    let mut milter_client = client(milter_address, false);
    let greeter_client = client(greeter_address, true);
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, lowest_free_descriptor(), hard).unwrap();
    wait_until("the milter listener fails to accept", || {
        failures(&milter_health) >= 2
    });
    wait_until("the shared accept loop fails to accept", || {
        greeter_health().accept_errors >= 2
    });
    let greeter_failures = greeter_health().accept_errors;

    // Descriptors again: the clients that waited are served, nothing stopped.
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
    let greeter_said = greeter_client.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&greeter_said.stdout).trim(),
        "hello"
    );
    wait_until("the milter accepts the client that waited", || {
        milter_health.report().accepted >= 1
    });
    let _ = milter_client.kill();
    let _ = milter_client.wait();
    assert!(!milter_task.is_finished(), "the milter still runs");
    let milter = milter_health.report();
    assert!(milter.accepted >= 1 && !milter.stopped, "{milter:?}");
    assert!(
        milter.last_error.unwrap().1.contains("Too many open files"),
        "the failure is remembered for `lifeboat status`"
    );
    let greeter = greeter_health();
    assert!(greeter.accepted >= 1 && !greeter.stopped, "{greeter:?}");
    assert!(greeter.accept_errors >= greeter_failures);
}
