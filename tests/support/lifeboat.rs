//! A real `lifeboat serve` process for end-to-end tests: its own config and store in a
//! temp dir, a milter and a fallback listener on free loopback ports, and POP3 or IMAP
//! when a test asks for it ([`Lifeboat::enable_pop3`], [`Lifeboat::enable_imap`],
//! [`Lifeboat::enable_web`], ...; off otherwise, so tests never bind the default ports).

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use lifeboat_mailstore::{Address, Class, MessageRecord, NewMessage, Store};

use super::free_port;

pub struct Lifeboat {
    dir: tempfile::TempDir,
    pub config: PathBuf,
    pub milter: SocketAddr,
    pub fallback: SocketAddr,
    /// POP3 listeners once [`Lifeboat::enable_pop3`] was called: (STLS, implicit TLS).
    pub pop3: Option<(SocketAddr, SocketAddr)>,
    /// IMAP listeners once [`Lifeboat::enable_imap`] was called: (STARTTLS, implicit TLS).
    pub imap: Option<(SocketAddr, SocketAddr)>,
    /// Submission listeners once [`Lifeboat::enable_submission`] was called.
    pub submission: Option<(SocketAddr, SocketAddr)>,
    /// Web portal listeners once [`Lifeboat::enable_web`] was called: (HTTP, HTTPS).
    pub web: Option<(SocketAddr, SocketAddr)>,
    child: Option<Child>,
    /// Extra environment for every command (e.g. NOTIFY_SOCKET).
    env: Vec<(String, String)>,
    /// `RLIMIT_NOFILE` (soft and hard) for `serve`, as `ulimit -n` would set it.
    descriptor_limit: Option<u64>,
}

impl Lifeboat {
    /// Writes a config protecting `example.test` (origin `main` at `origin`). Not started.
    pub fn new(origin: SocketAddr) -> Lifeboat {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("lifeboat.toml");
        let milter: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let fallback: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        fs::write(
            &config,
            format!(
                "data_dir = \"{data}\"\nhostname = \"lifeboat.test\"\nuser = \"root\"\n\n\
                 [log]\nlevel = \"debug\"\n\n\
                 [[origin]]\nname = \"main\"\naddress = \"smtp://{origin}\"\ndomains = [\"example.test\"]\n\n\
                 [milter]\nlisten = \"inet:{milter}\"\n\n[fallback]\nlisten = \"{fallback}\"\n\n\
                 [pop3]\nlisten = []\ntls_listen = []\n\n\
                 [imap]\nlisten = []\ntls_listen = []\n\n\
                 [submission]\nlisten = []\ntls_listen = []\n\n\
                 [web]\nlisten = []\ntls_listen = []\n",
                data = dir.path().join("data").display()
            ),
        )
        .unwrap();
        Lifeboat {
            dir,
            config,
            milter,
            fallback,
            pop3: None,
            imap: None,
            submission: None,
            web: None,
            child: None,
            env: Vec::new(),
            descriptor_limit: None,
        }
    }

    /// Turns POP3 on: a plain (STLS) listener on `plain_ip` and an implicit-TLS one on
    /// 127.0.0.1, free ports, and a self-signed certificate for `localhost` (written to
    /// `tls/` unless `with_cert` is false: then the files are missing).
    pub fn enable_pop3(&mut self, plain_ip: &str, allow_plaintext: bool, with_cert: bool) {
        self.pop3 = Some(self.enable_server("pop3", plain_ip, allow_plaintext, with_cert));
    }

    /// Turns IMAP on, like [`Lifeboat::enable_pop3`] (STARTTLS listener on `plain_ip`).
    pub fn enable_imap(&mut self, plain_ip: &str, allow_plaintext: bool, with_cert: bool) {
        self.imap = Some(self.enable_server("imap", plain_ip, allow_plaintext, with_cert));
    }

    /// Turns submission on (STARTTLS listener on `plain_ip`, implicit TLS on 127.0.0.1),
    /// handing mail to `relay` (the test's Postfix).
    pub fn enable_submission(
        &mut self,
        plain_ip: &str,
        relay: SocketAddr,
        save_sent: bool,
    ) -> (SocketAddr, SocketAddr) {
        let listeners = self.enable_server("submission", plain_ip, false, true);
        self.edit_config(|text| {
            text.replace(
                &format!("[submission]\nlisten = [\"{}\"]\n", listeners.0),
                &format!(
                    "[submission]\nrelay = \"smtp://{relay}\"\nsave_sent = {save_sent}\nlisten = [\"{}\"]\n",
                    listeners.0
                ),
            )
        });
        self.submission = Some(listeners);
        listeners
    }

    /// Turns the web portal on: plain HTTP on `plain_ip` (loopback allows logins over
    /// it), HTTPS on 127.0.0.1 with the test certificate, free ports.
    pub fn enable_web(
        &mut self,
        plain_ip: &str,
        allow_plaintext: bool,
    ) -> (SocketAddr, SocketAddr) {
        let listeners = self.enable_server("web", plain_ip, allow_plaintext, true);
        self.web = Some(listeners);
        listeners
    }

    fn enable_server(
        &mut self,
        section: &str,
        plain_ip: &str,
        allow_plaintext: bool,
        with_cert: bool,
    ) -> (SocketAddr, SocketAddr) {
        let plain: SocketAddr = format!("{plain_ip}:{}", super::free_port_on(plain_ip))
            .parse()
            .unwrap();
        let tls: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        if with_cert {
            self.write_cert();
        }
        let (cert, key) = self.cert_paths();
        self.edit_config(|text| {
            let mut text = text.replace(
                &format!("[{section}]\nlisten = []\ntls_listen = []\n"),
                &format!("[{section}]\nlisten = [\"{plain}\"]\ntls_listen = [\"{tls}\"]\n"),
            );
            if !text.contains("\n[tls]\n") {
                text.push_str(&format!(
                    "\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n\n[auth]\nallow_plaintext = {allow_plaintext}\n",
                    cert.display(),
                    key.display()
                ));
            }
            text
        });
        (plain, tls)
    }

    /// Where the test certificate and key are (or will be).
    pub fn cert_paths(&self) -> (PathBuf, PathBuf) {
        let dir = self.dir.path().join("tls");
        (dir.join("cert.pem"), dir.join("key.pem"))
    }

    /// Writes a self-signed certificate for `localhost` and 127.0.0.1.
    pub fn write_cert(&self) {
        let (cert, key) = self.cert_paths();
        fs::create_dir_all(cert.parent().unwrap()).unwrap();
        let certified =
            rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
                .unwrap();
        fs::write(&cert, certified.cert.pem()).unwrap();
        fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Rewrites the config file (e.g. before a SIGHUP).
    pub fn edit_config(&self, edit: impl FnOnce(String) -> String) {
        let text = fs::read_to_string(&self.config).unwrap();
        fs::write(&self.config, edit(text)).unwrap();
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = self.pid().expect("running") as i32;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).unwrap();
    }

    /// `smtpd_milters` value for Postfix.
    pub fn milter_spec(&self) -> String {
        format!("inet:{}", self.milter)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The `lifeboat` command with this config.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
        cmd.env("LIFEBOAT_CONFIG", &self.config);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs an admin command and asserts it succeeded; returns its stdout.
    pub fn admin(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "lifeboat {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn add_user(&self, address: &str, aliases: &[&str]) {
        self.add_user_with(address, aliases, &[]);
    }

    /// `user add` with more options (e.g. `["--alternate-email", "a@b.test"]`).
    pub fn add_user_with(&self, address: &str, aliases: &[&str], options: &[&str]) {
        let mut cmd = self.command();
        cmd.args(["user", "add", address, "--password-stdin"]);
        for alias in aliases {
            cmd.args(["--alias", alias]);
        }
        cmd.args(options);
        let mut child = cmd.stdin(Stdio::piped()).spawn().unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"secret\n").unwrap();
        assert!(child.wait().unwrap().success(), "user add {address}");
    }

    /// Starts `lifeboat serve` and waits until its listeners accept connections and it
    /// holds the store (its `serve-status.json` is written).
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut command = self.command();
        command.arg("serve").stdout(Stdio::null()).stderr(log);
        if let Some(limit) = self.descriptor_limit {
            use nix::sys::resource::{Resource, setrlimit};
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    setrlimit(Resource::RLIMIT_NOFILE, limit, limit).map_err(std::io::Error::from)
                });
            }
        }
        // Written by serve once it holds the store and every listener runs; a file left
        // by a killed run must not count.
        let ready_file = self.data_dir().join("serve-status.json");
        let _ = fs::remove_file(&ready_file);
        let child = command.spawn().unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        let servers = [self.pop3, self.imap, self.submission, self.web];
        let servers_up = || {
            servers
                .iter()
                .flatten()
                .all(|(plain, tls)| accepts(*plain) && accepts(*tls))
        };
        // Listeners are bound before the store is opened and locked: ports alone would
        // let a test go on while serve may still fail to take the store.
        while !(accepts(self.milter)
            && accepts(self.fallback)
            && servers_up()
            && ready_file.exists())
        {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("lifeboat serve exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "lifeboat serve did not come up:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts `serve` with this many file descriptors at most (soft and hard limit).
    pub fn limit_descriptors(&mut self, limit: u64) {
        self.descriptor_limit = Some(limit);
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        child.wait().unwrap().code()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("serve.log")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn outage(&self, begin: bool) {
        self.admin(&["outage", if begin { "begin" } else { "end" }]);
    }

    /// Stores messages in `user`'s INBOX as the capture paths would (from
    /// sender@else.test to the user), while `serve` is not running.
    pub fn deliver_offline(
        &self,
        user: &str,
        messages: impl IntoIterator<Item = (Vec<u8>, Class)>,
    ) {
        let store = Store::open(&self.data_dir(), "lifeboat.test").unwrap();
        store.lock_for_delivery().unwrap();
        let owner = Address::parse(user).unwrap();
        for (content, class) in messages {
            let mut message = NewMessage::new(owner.clone(), "INBOX", content, class);
            message.envelope_from = Some("sender@else.test".into());
            message.envelope_to = vec![owner.clone()];
            store.deliver(message).unwrap();
        }
    }

    /// A read-only look at the store (the running `serve` holds the delivery lock).
    pub fn store(&self) -> Store {
        Store::open(&self.data_dir(), "lifeboat.test").unwrap()
    }

    /// The messages in `user`'s INBOX, in UID order.
    pub fn inbox(&self, user: &str) -> Vec<MessageRecord> {
        let reader = self.store().reader().unwrap();
        let user = reader.user(user).unwrap().unwrap();
        let mailbox = reader.mailbox(user.id, "INBOX").unwrap().unwrap();
        reader.messages(mailbox.id).unwrap()
    }

    /// Waits (up to `wait`) until `user`'s INBOX holds at least `count` messages: the
    /// milter writes journal copies in the background, after Postfix got its answer.
    pub fn wait_for_inbox(&self, user: &str, count: usize, wait: Duration) -> Vec<MessageRecord> {
        let deadline = Instant::now() + wait;
        loop {
            let inbox = self.inbox(user);
            if inbox.len() >= count || Instant::now() >= deadline {
                return inbox;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn message_bytes(&self, user: &str, message: &MessageRecord) -> Vec<u8> {
        let owner = Address::parse(user).unwrap();
        fs::read(self.store().message_path(&owner, "INBOX", message)).unwrap()
    }

    pub fn user_dir(&self, user: &str) -> PathBuf {
        self.store().user_dir(&Address::parse(user).unwrap())
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Lifeboat {
    fn drop(&mut self) {
        self.kill();
    }
}

fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// A small message with a recognisable subject and Message-ID.
pub fn message(n: usize) -> Vec<u8> {
    format!(
        "From: sender@else.test\r\nTo: alice@example.test\r\nSubject: message {n}\r\n\
         Message-ID: <msg{n}@else.test>\r\n\r\nThis is message {n}.\r\n"
    )
    .into_bytes()
}
