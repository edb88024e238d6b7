//! A private Dovecot IMAP server playing an origin mail server that has no LDAP: its own
//! config, users (a passwd-file the test rewrites to change passwords; Dovecot re-reads
//! it when it changes) and certificate from a test CA, on loopback ports with STARTTLS
//! and implicit TLS. /etc/dovecot and the system's service are not touched.
//!
//! Lifeboat asks for every user from one address, so, as the README says for real
//! origins, that address is in `login_trusted_networks` (no per-address auth penalty
//! for all users after a few failures); failures answer after 1 s.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;
use super::test_ca::TestCa;

pub struct Dovecot {
    dir: tempfile::TempDir,
    /// IMAP with STARTTLS.
    pub port: u16,
    /// IMAP over TLS from the first byte.
    pub tls_port: u16,
    pub tls: TestCa,
    child: Option<Child>,
}

impl Dovecot {
    /// Writes the configuration with these (address, password) users; not started.
    pub fn new(users: &[(&str, &str)]) -> Dovecot {
        let dir = tempfile::tempdir().unwrap();
        // Dovecot's login and auth processes run as dovenull/dovecot and must reach
        // their files.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let tls = TestCa::create(&dir.path().join("tls"));
        fs::set_permissions(dir.path().join("tls"), fs::Permissions::from_mode(0o755)).unwrap();
        for sub in ["run", "state", "mail"] {
            fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let dovecot = Dovecot {
            port: free_port(),
            tls_port: free_port(),
            dir,
            tls,
            child: None,
        };
        dovecot.set_users(users);
        let d = dovecot.dir.path().display();
        let config = format!(
            "protocols = imap\nlisten = 127.0.0.1\n\
             base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\n\
             ssl = required\nssl_cert = <{cert}\nssl_key = <{key}\n\
             auth_mechanisms = plain login\n\
             login_trusted_networks = 127.0.0.0/8\nauth_failure_delay = 1s\n\
             default_internal_user = dovecot\ndefault_login_user = dovenull\nfirst_valid_uid = 1\n\
             mail_location = maildir:{d}/mail/%d/%n\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN {d}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid=dovecot gid=dovecot home={d}/mail/%d/%n\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    port = {port}\n  }}\n  \
             inet_listener imaps {{\n    port = {tls_port}\n    ssl = yes\n  }}\n}}\n",
            cert = dovecot.tls.cert.display(),
            key = dovecot.tls.key.display(),
            port = dovecot.port,
            tls_port = dovecot.tls_port,
        );
        fs::write(dovecot.dir.path().join("dovecot.conf"), config).unwrap();
        dovecot
    }

    /// Replaces the users and their passwords (takes effect at the next login).
    pub fn set_users(&self, users: &[(&str, &str)]) {
        let mut passwd = String::new();
        for (user, password) in users {
            writeln!(passwd, "{user}:{{PLAIN}}{password}::::::").unwrap();
        }
        let path = self.dir.path().join("passwd");
        // Written aside and renamed, so Dovecot never reads half a file.
        let tmp = self.dir.path().join("passwd.new");
        fs::write(&tmp, passwd).unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).unwrap();
        fs::rename(&tmp, &path).unwrap();
    }

    /// Starts Dovecot in the foreground and waits for both listeners.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("dovecot")
            .arg("-F")
            .arg("-c")
            .arg(self.dir.path().join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dovecot (tests/install-deps.sh installs dovecot-imapd)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        let up = |port: u16| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        while !(up(self.port) && up(self.tls_port)) {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("dovecot exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "dovecot did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops Dovecot (SIGTERM to the master, which ends its children).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let _ = child.wait();
            // The master waits for its children; give the ports a moment to close.
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}
