//! `lifeboat user …` and `lifeboat alias …`.

use std::io::{BufRead, IsTerminal};

use lifeboat_mailstore::{Address, NewUser, password};

use super::{open_store, protected_address};
use crate::cli::{AliasCommand, UserCommand};
use crate::commands::import;
use crate::config::Config;
use crate::exit::{CommandResult, Failure};
use crate::readiness::{self, LoginReadiness};
use lifeboat_mailstore::store::now;

pub fn user(config: &Config, command: UserCommand) -> CommandResult {
    match command {
        UserCommand::Add {
            address,
            password_stdin,
            aliases,
            alternate_email,
            disabled,
        } => {
            let address = protected_address(config, &address)?;
            let aliases = aliases
                .iter()
                .map(|a| protected_address(config, a))
                .collect::<Result<Vec<_>, _>>()?;
            let alternate_email = alternate_email.as_deref().map(Address::parse).transpose()?;
            let password = read_password(password_stdin)?;
            let store = open_store(config)?;
            store.add_user(NewUser {
                address: address.clone(),
                password_hash: password::hash(&password),
                aliases,
                active: !disabled,
                alternate_email,
            })?;
            println!("added {address}");
        }
        UserCommand::Passwd {
            address,
            password_stdin,
        } => {
            let address = Address::parse(&address)?;
            let password = read_password(password_stdin)?;
            open_store(config)?.set_password(&address, password::hash(&password))?;
            println!("password changed for {address}");
        }
        UserCommand::Enable { address } => {
            let address = Address::parse(&address)?;
            open_store(config)?.set_active(&address, true)?;
            println!("enabled {address}");
        }
        UserCommand::Disable { address } => {
            let address = Address::parse(&address)?;
            open_store(config)?.set_active(&address, false)?;
            println!("disabled {address}");
        }
        UserCommand::Del { address, force } => {
            let address = Address::parse(&address)?;
            let moved_to = open_store(config)?.delete_user(&address, force)?;
            println!(
                "deleted {address}; its Maildir is now {}",
                moved_to.display()
            );
        }
        UserCommand::List { json, readiness } if readiness => list_readiness(config, json)?,
        UserCommand::List { json, .. } => list(config, json)?,
        UserCommand::Invite {
            addresses,
            unready,
            force,
        } => super::invite::invite(config, addresses, unready, force)?,
        UserCommand::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Failure::failed(format!("{}: {e}", file.display())))?;
            let at = |line: usize, message: String| {
                Failure::failed(format!("{}:{line}: {message}", file.display()))
            };
            let rows = import::parse_user_csv(&text).map_err(|e| at(e.line, e.message))?;
            let mut users = Vec::with_capacity(rows.len());
            for row in &rows {
                for address in std::iter::once(&row.address).chain(&row.aliases) {
                    protected_address(config, address.as_str())
                        .map_err(|e| at(row.line, e.message))?;
                }
                users.push(NewUser {
                    address: row.address.clone(),
                    password_hash: row.password_hash.clone(),
                    aliases: row.aliases.clone(),
                    active: row.active,
                    alternate_email: row.alternate_email.clone(),
                });
            }
            let count = users.len();
            open_store(config)?
                .add_users(users)
                .map_err(|failure| match failure.row {
                    Some(row) => at(
                        rows[row].line,
                        format!("{}; nothing was imported", failure.error),
                    ),
                    None => Failure::failed(format!(
                        "{}: {}; nothing was imported",
                        file.display(),
                        failure.error
                    )),
                })?;
            println!("imported {count} users from {}", file.display());
        }
    }
    Ok(())
}

pub fn alias(config: &Config, command: AliasCommand) -> CommandResult {
    let store = open_store(config)?;
    match command {
        AliasCommand::Add { alias, address } => {
            let alias = protected_address(config, &alias)?;
            let owner = Address::parse(&address)?;
            store.add_alias(&alias, &owner)?;
            println!("{alias} now lands in {owner}'s mailbox");
        }
        AliasCommand::Del { alias } => {
            let alias = Address::parse(&alias)?;
            store.delete_alias(&alias)?;
            println!("removed alias {alias}");
        }
    }
    Ok(())
}

fn list(config: &Config, json: bool) -> CommandResult {
    let users = open_store(config)?.reader()?.users()?;
    if json {
        let list: Vec<_> = users
            .iter()
            .map(|u| {
                serde_json::json!({
                    "address": u.address.as_str(),
                    "source": u.source.as_str(),
                    "active": u.active,
                    "aliases": u.aliases,
                    "alternate_email": u.alternate_email,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
        return Ok(());
    }
    println!(
        "{:<40} {:<8} {:<30} ALIASES",
        "ADDRESS", "ACTIVE", "ALTERNATE"
    );
    for u in users {
        println!(
            "{:<40} {:<8} {:<30} {}",
            u.address,
            if u.active { "yes" } else { "no" },
            u.alternate_email.as_deref().unwrap_or("-"),
            u.aliases.join(" ")
        );
    }
    Ok(())
}

/// `user list --readiness`: who could log in during an outage, and what else they lack.
fn list_readiness(config: &Config, json: bool) -> CommandResult {
    let reader = open_store(config)?.reader()?;
    let users = readiness::report(config, &reader)?;
    let summary = readiness::summary(&users);
    let when = |at: Option<i64>| at.and_then(timestamp);
    if json {
        let list: Vec<_> = users
            .iter()
            .map(|u| {
                let (cached_at, cached_age_days) = match u.login {
                    LoginReadiness::CachedPassword { cached_at } => (
                        when(Some(cached_at)),
                        Some((now() - cached_at).max(0) / 86_400),
                    ),
                    _ => (None, None),
                };
                serde_json::json!({
                    "address": u.user.address.as_str(),
                    "source": u.user.source.as_str(),
                    "active": u.user.active,
                    "ready": u.login.ready(),
                    "login": u.login.label(),
                    "cached_at": cached_at,
                    "cached_age_days": cached_age_days,
                    "alternate_email": u.user.alternate_email,
                    "last_login": when(u.user.last_login_at),
                    "history_days": u.history_days,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({ "users": list, "summary": summary })
        );
        return Ok(());
    }
    println!(
        "{:<36} {:<9} {:<6} {:<26} {:<9} {:<20} HISTORY",
        "ADDRESS", "SOURCE", "READY", "LOGIN", "ALTERNATE", "LAST LOGIN"
    );
    for u in &users {
        let login = match u.login {
            LoginReadiness::LocalPassword => "local password".to_string(),
            LoginReadiness::CachedPassword { cached_at } => {
                format!("cached, {} days old", (now() - cached_at).max(0) / 86_400)
            }
            LoginReadiness::NoPassword => "none (never logged in)".to_string(),
            LoginReadiness::Disabled => "disabled".to_string(),
        };
        println!(
            "{:<36} {:<9} {:<6} {:<26} {:<9} {:<20} {}",
            u.user.address,
            u.user.source.as_str(),
            if u.login.ready() { "yes" } else { "no" },
            login,
            if u.user.alternate_email.is_some() {
                "yes"
            } else {
                "no"
            },
            when(u.user.last_login_at).unwrap_or_else(|| "never".to_string()),
            u.history_days
                .map_or("-".to_string(), |d| format!("{d} days"))
        );
    }
    println!("{summary}");
    Ok(())
}

/// RFC 3339 UTC time of a Unix timestamp.
fn timestamp(secs: i64) -> Option<String> {
    let secs = u64::try_from(secs).ok().filter(|s| *s > 0)?;
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    Some(humantime::format_rfc3339_seconds(at).to_string())
}

/// Reads a new password: one line from stdin with `--password-stdin`, otherwise twice
/// from the terminal without echo. Never printed, never logged.
fn read_password(from_stdin: bool) -> Result<String, Failure> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| {
            Failure::failed(format!("reading the password from standard input: {e}"))
        })?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")
            .map_err(|e| Failure::failed(format!("reading the password: {e}")))?;
        let again = rpassword::prompt_password("Password (again): ")
            .map_err(|e| Failure::failed(format!("reading the password: {e}")))?;
        if first != again {
            return Err(Failure::failed("the passwords differ"));
        }
        first
    } else {
        return Err(Failure::failed(
            "no password: standard input is not a terminal; pass --password-stdin",
        ));
    };
    if password.is_empty() {
        return Err(Failure::failed("the password is empty"));
    }
    Ok(password)
}
