//! The `lifeboat` command line. lifeboat(8) is generated from these definitions, so the
//! help texts here are the manual's text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "lifeboat",
    version,
    about = "Email continuity for Postfix: keeps mail flowing while the origin server is down",
    long_about = "Lifeboat attaches to a Postfix gateway as a milter. It journals inbound mail for \
protected users and, while their origin mail server is down, diverts it into a local Maildir \
store that users read over IMAP, POP3 and a web portal and send from over SMTP submission \
or the portal. After recovery, \
`lifeboat replay` delivers everything back to the origin, in order."
)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "LIFEBOAT_CONFIG",
        default_value = crate::config::DEFAULT_PATH,
        value_name = "FILE"
    )]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the milter, fallback listener, origin watch, IMAP, POP3, submission and web servers.
    Serve,
    /// Deliver diverted and sent copies back to the origin (one run; the timer repeats it).
    Replay {
        /// List what would be delivered without sending anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove journal and replayed copies older than history_days.
    Expire,
    /// Show each origin's state, since when and why, and the store's counts.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Declare or end an outage by hand (e.g. for scheduled maintenance).
    #[command(subcommand)]
    Outage(OutageCommand),
    /// Manage protected users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage aliases (addresses that land in a user's mailbox).
    #[command(subcommand)]
    Alias(AliasCommand),
    /// Work with the configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Work with the mail store.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Users from the LDAP directory or Active Directory ([directory]).
    #[command(subcommand)]
    Directory(DirectoryCommand),
}

#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Read every user from the directory and add, change or disable users to match, in
    /// one store transaction (serve does this every sync_interval). Users gone from the
    /// directory are disabled, never deleted; users added by hand are left alone; an
    /// entry in conflict is skipped with its reason. An unreachable directory changes
    /// nothing (exit 75).
    Sync {
        /// Print what would change without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutageCommand {
    /// Start diverting mail now; held until `outage end`.
    Begin(OutageArgs),
    /// End the outage: back to normal at once when nothing waits for replay, otherwise
    /// recovering until replay has delivered the backlog.
    End(OutageArgs),
}

#[derive(Debug, Args)]
pub struct OutageArgs {
    /// The origin to act on (default: every configured origin).
    #[arg(long, value_name = "NAME")]
    pub origin: Option<String>,
    /// Why, for the log and `lifeboat status`.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a protected user (and their standard folders).
    Add {
        address: String,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        /// An alias that lands in this user's mailbox (repeatable).
        #[arg(long = "alias", value_name = "A")]
        aliases: Vec<String>,
        /// An outside address that gets the outage notice with connection details.
        #[arg(long, value_name = "E")]
        alternate_email: Option<String>,
        /// Create the user disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// Set a user's password.
    Passwd {
        address: String,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Let a user log in and receive diverted mail again.
    Enable { address: String },
    /// Stop a user from logging in; their mail is left with Postfix.
    Disable { address: String },
    /// Remove a user; their Maildir is moved to <data_dir>/deleted/.
    Del {
        address: String,
        /// Delete even when copies still wait for replay to the origin.
        #[arg(long)]
        force: bool,
    },
    /// List users, their aliases and state.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Whether each user could log in during an outage (local password, cached
        /// password and its age, or none), has an alternate address, when they last
        /// logged in and how many days of history are held; with a summary line.
        #[arg(long)]
        readiness: bool,
    },
    /// Mail users (at their own address, through [submission] relay) a request to log
    /// in once, so their password is cached for an outage, and to give an alternate
    /// address. A user is invited at most once per [notify] invite_min_interval.
    Invite {
        /// The users to invite, by their own address.
        #[arg(value_name = "ADDRESS")]
        addresses: Vec<String>,
        /// Invite every active user who could not log in during an outage now.
        #[arg(long, conflicts_with = "addresses")]
        unready: bool,
        /// Send even to users invited within invite_min_interval.
        #[arg(long)]
        force: bool,
    },
    /// Import users from a CSV file, all or nothing.
    ///
    /// Columns: address,password,password_hash,aliases,active,alternate_email (header line
    /// required; aliases separated by spaces). password_hash accepts {ARGON2ID},
    /// {SHA512-CRYPT}, {SHA256-CRYPT} and {BLF-CRYPT} hashes as Dovecot writes them.
    Import {
        #[arg(value_name = "FILE.csv")]
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Make ALIAS land in ADDRESS's mailbox.
    Add { alias: String, address: String },
    /// Remove an alias.
    Del { alias: String },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the configuration file; errors name the file, key and line (exit 2).
    Check,
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Compare the index with the Maildirs (exit 3 when they disagree).
    Check {
        /// Make them agree: keep known UIDs, index unknown files, rebuild lost users and
        /// folders (needs `lifeboat serve` stopped).
        #[arg(long)]
        repair: bool,
    },
}
