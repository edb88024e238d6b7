//! A private OpenLDAP `slapd` for a test: its own `slapd.conf`, schema and MDB database
//! in a temp dir, listening on a loopback port (StartTLS with a test CA; plain binds are
//! refused, `security ssf=1`) and on a Unix socket for the harness's own changes. The
//! system's slapd and /etc/ldap are not touched (tests/install-deps.sh installs slapd
//! without configuring an instance).
//!
//! The tree is `dc=example,dc=test` with `ou=people` and `ou=groups`; the service
//! account `cn=lifeboat,dc=example,dc=test` (password [`SERVICE_PASSWORD`]) may read
//! everything but passwords, at most 500 entries per search or page but any number of
//! pages (`size.prtotal=unlimited`, what an OpenLDAP admin sets for such an account).
//! A small test schema adds `mailAlternateAddress`, and the
//! Active Directory attributes `proxyAddresses` and `userAccountControl`
//! (objectClass `lifeboatTestUser`).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;
use super::test_ca::TestCa;

pub const SUFFIX: &str = "dc=example,dc=test";
pub const SERVICE_DN: &str = "cn=lifeboat,dc=example,dc=test";
pub const SERVICE_PASSWORD: &str = "service-secret";
const ROOT_DN: &str = "cn=admin,dc=example,dc=test";
const ROOT_PASSWORD: &str = "root-secret";

const SCHEMA: &str = r#"
attributetype ( 1.3.6.1.4.1.99999.1.1 NAME 'mailAlternateAddress'
    EQUALITY caseIgnoreIA5Match SUBSTR caseIgnoreIA5SubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.26{256} )
attributetype ( 1.3.6.1.4.1.99999.1.2 NAME 'proxyAddresses'
    EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.3.6.1.4.1.99999.1.3 NAME 'userAccountControl'
    EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.99999.2.1 NAME 'lifeboatTestUser' SUP top AUXILIARY
    MAY ( mailAlternateAddress $ proxyAddresses $ userAccountControl $ otherMailbox ) )
"#;

pub struct Slapd {
    dir: tempfile::TempDir,
    pub port: u16,
    pub tls: TestCa,
    child: Option<Child>,
}

/// One person entry for [`Slapd::add_people`].
pub struct Person<'a> {
    pub uid: &'a str,
    pub mail: Option<&'a str>,
    pub password: &'a str,
    pub aliases: &'a [&'a str],
    pub other_mailbox: Option<&'a str>,
    /// Active Directory style: `proxyAddresses` values and `userAccountControl`.
    pub proxy_addresses: &'a [&'a str],
    pub account_control: Option<u32>,
    /// Writes `employeeType: disabled` (what the tests' `disabled_filter` looks for).
    pub disabled: bool,
}

impl<'a> Person<'a> {
    /// An OpenLDAP user `uid` with `mail: <uid>@example.test`.
    pub fn new(uid: &'a str, mail: &'a str, password: &'a str) -> Person<'a> {
        Person {
            uid,
            mail: Some(mail),
            password,
            aliases: &[],
            other_mailbox: None,
            proxy_addresses: &[],
            account_control: None,
            disabled: false,
        }
    }
}

impl Person<'_> {
    pub fn dn(&self) -> String {
        format!("uid={},ou=people,{SUFFIX}", self.uid)
    }
}

impl Slapd {
    /// Writes the configuration and the base tree (not started; see [`Slapd::start`]).
    pub fn new() -> Slapd {
        let dir = tempfile::tempdir().unwrap();
        let tls = TestCa::create(&dir.path().join("tls"));
        fs::create_dir_all(dir.path().join("db")).unwrap();
        fs::write(dir.path().join("lifeboat-test.schema"), SCHEMA).unwrap();
        let d = dir.path().display();
        let config = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             include {d}/lifeboat-test.schema\n\
             pidfile {d}/slapd.pid\nargsfile {d}/slapd.args\n\
             modulepath /usr/lib/ldap\nmoduleload back_mdb\n\
             TLSCACertificateFile {ca}\nTLSCertificateFile {cert}\nTLSCertificateKeyFile {key}\n\
             security ssf=1\n\
             sizelimit 500\n\
             database mdb\nmaxsize 1073741824\nsuffix \"{SUFFIX}\"\n\
             rootdn \"{ROOT_DN}\"\nrootpw {ROOT_PASSWORD}\ndirectory {d}/db\n\
             limits dn.exact=\"{SERVICE_DN}\" size.pr=500 size.prtotal=unlimited\n\
             access to attrs=userPassword by anonymous auth by self write by * none\n\
             access to * by dn.exact=\"{SERVICE_DN}\" read by self read by * none\n",
            ca = tls.ca.display(),
            cert = tls.cert.display(),
            key = tls.key.display(),
        );
        fs::write(dir.path().join("slapd.conf"), config).unwrap();
        let slapd = Slapd {
            port: free_port(),
            dir,
            tls,
            child: None,
        };
        slapd.load(&format!(
            "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
             dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n\n\
             dn: {SERVICE_DN}\nobjectClass: person\nobjectClass: simpleSecurityObject\n\
             cn: lifeboat\nsn: service\nuserPassword: {SERVICE_PASSWORD}\n"
        ));
        slapd
    }

    /// The LDIF of `people`, for [`Slapd::load`] (before start) or [`Slapd::modify`].
    pub fn people_ldif(people: &[Person]) -> String {
        let mut ldif = String::new();
        for p in people {
            writeln!(ldif, "dn: {}", p.dn()).unwrap();
            ldif.push_str("objectClass: inetOrgPerson\nobjectClass: lifeboatTestUser\n");
            writeln!(ldif, "uid: {}\ncn: {}\nsn: {}", p.uid, p.uid, p.uid).unwrap();
            if let Some(mail) = p.mail {
                writeln!(ldif, "mail: {mail}").unwrap();
            }
            writeln!(ldif, "userPassword: {}", p.password).unwrap();
            for alias in p.aliases {
                writeln!(ldif, "mailAlternateAddress: {alias}").unwrap();
            }
            if let Some(other) = p.other_mailbox {
                writeln!(ldif, "otherMailbox: {other}").unwrap();
            }
            for value in p.proxy_addresses {
                writeln!(ldif, "proxyAddresses: {value}").unwrap();
            }
            if let Some(flags) = p.account_control {
                writeln!(ldif, "userAccountControl: {flags}").unwrap();
            }
            if p.disabled {
                ldif.push_str("employeeType: disabled\n");
            }
            ldif.push('\n');
        }
        ldif
    }

    /// A `groupOfNames` under `ou=groups` with these member DNs.
    pub fn group_ldif(name: &str, members: &[String]) -> String {
        let mut ldif =
            format!("dn: cn={name},ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: {name}\n");
        for member in members {
            writeln!(ldif, "member: {member}").unwrap();
        }
        ldif.push('\n');
        ldif
    }

    pub fn group_dn(name: &str) -> String {
        format!("cn={name},ou=groups,{SUFFIX}")
    }

    /// Adds entries offline with `slapadd` (fast for many); slapd must be stopped.
    pub fn load(&self, ldif: &str) {
        assert!(self.child.is_none(), "slapadd needs slapd stopped");
        let file = self.dir.path().join("load.ldif");
        fs::write(&file, ldif).unwrap();
        let out = Command::new("slapadd")
            .arg("-f")
            .arg(self.dir.path().join("slapd.conf"))
            .arg("-q")
            .arg("-l")
            .arg(&file)
            .output()
            .expect("slapadd (tests/install-deps.sh installs slapd)");
        assert!(
            out.status.success(),
            "slapadd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Applies an LDIF change (`changetype:` records) through the running server.
    pub fn modify(&self, ldif: &str) {
        let mut child = Command::new("ldapmodify")
            .args([
                "-H",
                &self.ldapi_url(),
                "-x",
                "-D",
                ROOT_DN,
                "-w",
                ROOT_PASSWORD,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ldapmodify (tests/install-deps.sh installs ldap-utils)");
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), ldif.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ldapmodify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Sets a user's password through the running server.
    pub fn set_password(&self, dn: &str, password: &str) {
        self.modify(&format!(
            "dn: {dn}\nchangetype: modify\nreplace: userPassword\nuserPassword: {password}\n"
        ));
    }

    pub fn delete(&self, dn: &str) {
        self.modify(&format!("dn: {dn}\nchangetype: delete\n"));
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("ldapi")
    }

    fn ldapi_url(&self) -> String {
        format!(
            "ldapi://{}",
            self.socket().display().to_string().replace('/', "%2F")
        )
    }

    /// `ldap://127.0.0.1:<port>` (clients must use StartTLS).
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// A file holding the service account's password, for `bind_password_file`.
    pub fn service_password_file(&self) -> PathBuf {
        let path = self.dir.path().join("service.password");
        fs::write(&path, format!("{SERVICE_PASSWORD}\n")).unwrap();
        path
    }

    /// Starts slapd in the foreground and waits until it accepts connections.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = fs::File::create(self.dir.path().join("slapd.log")).unwrap();
        let child = Command::new("slapd")
            .arg("-f")
            .arg(self.dir.path().join("slapd.conf"))
            .arg("-h")
            .arg(format!(
                "ldap://127.0.0.1:{}/ {}",
                self.port,
                self.ldapi_url()
            ))
            // Stay in the foreground (a debug level keeps slapd from forking).
            .args(["-d", "256"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("slapd (tests/install-deps.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err()
            || !self.socket().exists()
        {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("slapd exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "slapd did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops slapd (SIGTERM, then waits); its data stays for the next start.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
