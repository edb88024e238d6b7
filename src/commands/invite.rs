//! `lifeboat user invite [ADDRESS…|--unready] [--force]`: before an outage, ask users to
//! log in once (so the directory or origin password is cached) and to give an alternate
//! address. Sent to each user's own address through `[submission] relay`; at most one
//! invitation per user per `[notify] invite_min_interval` unless `--force`.

use lifeboat_mailstore::Address;

use super::open_store;
use crate::config::Config;
use crate::exit::{CommandResult, Failure};
use crate::notify::{self, Notice};
use crate::readiness;

/// The kind invitations are rate-limited under, per recipient.
const KIND: &str = "invite";

pub fn invite(
    config: &Config,
    addresses: Vec<String>,
    unready: bool,
    force: bool,
) -> CommandResult {
    if addresses.is_empty() && !unready {
        return Err(Failure::new(
            crate::exit::CONFIG,
            "name the users to invite, or pass --unready",
        ));
    }
    let store = open_store(config)?;
    let reader = store.reader()?;
    let report = readiness::report(config, &reader)?;
    let chosen: Vec<&readiness::UserReadiness> = if unready {
        report
            .iter()
            .filter(|u| u.login == readiness::LoginReadiness::NoPassword)
            .collect()
    } else {
        let mut chosen = Vec::new();
        for text in &addresses {
            let address = Address::parse(text)?;
            let user = report
                .iter()
                .find(|u| u.user.address == address)
                .ok_or_else(|| Failure::failed(format!("no user {address}")))?;
            if !user.user.active {
                return Err(Failure::failed(format!("{address} is disabled")));
            }
            chosen.push(user);
        }
        chosen
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("starting the runtime: {e}")))?;
    let min_interval = config.notify.invite_min_interval.as_secs() as i64;
    let (mut sent, mut held, mut failed) = (0, 0, 0);
    for user in chosen {
        let recipient = user.user.address.to_string();
        let claimed = if force {
            store.claim_notice(&recipient, KIND, 0)?
        } else {
            store.claim_notice(&recipient, KIND, min_interval)?
        };
        if !claimed {
            println!(
                "held     {recipient}: invited within the last {}",
                humantime::format_duration(config.notify.invite_min_interval)
            );
            held += 1;
            continue;
        }
        let notice = compose(config, &recipient).map_err(Failure::failed)?;
        match runtime.block_on(notify::send(config, &notice)) {
            Ok(()) => {
                println!("invited  {recipient}");
                sent += 1;
            }
            Err(e) => {
                println!("FAILED   {recipient}: {e}");
                store.release_notice(&recipient, KIND)?;
                failed += 1;
            }
        }
    }
    println!("{sent} invited, {held} held back (invited recently), {failed} failed");
    if failed > 0 {
        return Err(Failure::failed(format!(
            "{failed} invitations could not be handed to {}",
            config.submission.relay
        )));
    }
    Ok(())
}

/// The invitation for the user whose own address is `username`.
pub fn compose(config: &Config, username: &str) -> Result<Notice, String> {
    let domain = username.rsplit_once('@').map_or("", |(_, d)| d);
    let origin = config.origin_for_domain(domain);
    // Every placeholder the config check allows fills; those about a change of state
    // have nothing to say here.
    let fields = |name: &str| {
        notify::connection_field(config, username, name).or_else(|| {
            Some(match name {
                "origin" => origin.map(|o| o.name.clone()).unwrap_or_default(),
                "address" => origin.map(|o| o.address.to_string()).unwrap_or_default(),
                "domains" => origin.map(|o| o.domains.join(", ")).unwrap_or_default(),
                _ => String::new(),
            })
        })
    };
    Ok(Notice {
        recipient: username.to_string(),
        kind: KIND.to_string(),
        subject: crate::config::fill_template(&config.notify.invite_subject, |n| fields(n))?,
        body: crate::config::fill_template(&config.notify.invite_body, |n| fields(n))?,
    })
}
