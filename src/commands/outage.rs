//! `lifeboat outage begin|end` and `lifeboat status`.

use lifeboat_mailstore::{OutageState, Reader, SyncRun};

use super::open_store;
use crate::cli::{OutageArgs, OutageCommand};
use crate::config::{Config, Origin};
use crate::exit::{CommandResult, Failure};
use crate::serve_report::ServeReport;

pub fn outage(config: &Config, command: OutageCommand) -> CommandResult {
    let store = open_store(config)?;
    let (args, begin) = match &command {
        OutageCommand::Begin(args) => (args, true),
        OutageCommand::End(args) => (args, false),
    };
    for origin in selected(config, args)? {
        let reason = args.reason.clone().unwrap_or_else(|| {
            format!(
                "`lifeboat outage {}` by an admin",
                if begin { "begin" } else { "end" }
            )
        });
        let change = if begin {
            store.set_origin_state(&origin.name, OutageState::Outage, &reason, true)?
        } else {
            store.end_outage(&origin.name, origin.domains.clone(), &reason)?
        };
        match change {
            Some(t) => {
                tracing::info!(origin = %origin.name, from = %t.from, to = %t.to.state, reason = %reason, "origin state changed");
                println!("{}: {} -> {}", origin.name, t.from, t.to.state);
            }
            None => {
                let state = store.reader()?.origin_status(&origin.name)?.state;
                println!("{}: already {state}", origin.name);
            }
        }
    }
    Ok(())
}

fn selected<'a>(config: &'a Config, args: &OutageArgs) -> Result<Vec<&'a Origin>, Failure> {
    match &args.origin {
        None => Ok(config.origins.iter().collect()),
        Some(name) => config.origin(name).map(|o| vec![o]).ok_or_else(|| {
            Failure::failed(format!(
                "no [[origin]] named `{name}` in {}",
                config.path.display()
            ))
        }),
    }
}

pub fn status(config: &Config, json: bool) -> CommandResult {
    let reader = open_store(config)?.reader()?;
    let mut origins = Vec::new();
    for origin in &config.origins {
        let status = reader.origin_status(&origin.name)?;
        let counts = reader.replay_counts_for(&origin.domains)?;
        let deferrals = reader.deferrals(&origin.name)?;
        let probe = reader.last_probe(&origin.name)?;
        origins.push((origin, status, counts, deferrals, probe));
    }
    if json {
        let list: Vec<_> = origins
            .iter()
            .map(|(origin, status, counts, deferrals, probe)| {
                serde_json::json!({
                    "origin": origin.name,
                    "address": origin.address.to_string(),
                    "domains": origin.domains,
                    "state": status.state.as_str(),
                    "since": timestamp(status.since),
                    "reason": status.reason,
                    "manual": status.manual,
                    "last_probe": probe.as_ref().map(|p| serde_json::json!({
                        "at": timestamp(p.at),
                        "ok": p.ok,
                        "latency_ms": p.latency_ms,
                        "detail": p.detail,
                        "streak": p.streak,
                    })),
                    "deferrals": deferrals.as_ref().map(|(count, at, detail)| serde_json::json!({
                        "count": count,
                        "last": timestamp(*at),
                        "last_detail": detail,
                    })),
                    "copies": {
                        "journal": counts.journal,
                        "diverted_pending": counts.diverted_pending,
                        "sent_pending": counts.sent_pending,
                        "delivered": counts.delivered,
                        "rejected": counts.rejected,
                        "oldest_pending": counts.oldest_pending.and_then(timestamp),
                    },
                })
            })
            .collect();
        let serve = ServeReport::read_live(&config.data_dir);
        let directory = directory_json(config, &reader)?;
        println!(
            "{}",
            serde_json::json!({ "origins": list, "serve": serve, "directory": directory })
        );
        return Ok(());
    }
    for (origin, status, counts, deferrals, probe) in origins {
        println!(
            "origin {} ({}, {})",
            origin.name,
            origin.address,
            origin.domains.join(", ")
        );
        let since = match timestamp(status.since) {
            Some(at) => format!("since {at}"),
            None => "always".to_string(),
        };
        println!(
            "  state:    {}{} ({since}: {})",
            status.state,
            if status.manual {
                ", held by an admin"
            } else {
                ""
            },
            status.reason
        );
        match probe {
            Some(p) => println!(
                "  probe:    {} in {} ms at {} ({} in a row): {}",
                if p.ok { "up" } else { "DOWN" },
                p.latency_ms,
                timestamp(p.at).unwrap_or_default(),
                p.streak,
                p.detail
            ),
            None => println!("  probe:    none yet (probes run in `lifeboat serve`)"),
        }
        println!(
            "  copies:   {} journal, {} diverted and {} sent waiting for replay, {} replayed, {} rejected",
            counts.journal,
            counts.diverted_pending,
            counts.sent_pending,
            counts.delivered,
            counts.rejected
        );
        if let Some((count, at, detail)) = deferrals {
            let at = timestamp(at).unwrap_or_default();
            println!("  deferrals: {count} fallback deliveries, last at {at} ({detail})");
        }
        if let Some(oldest) = counts.oldest_pending.and_then(timestamp) {
            println!("  oldest waiting copy arrived at {oldest}");
        }
    }
    print_serve(ServeReport::read_live(&config.data_dir));
    print_directory(config, &reader)?;
    Ok(())
}

fn sync_json(run: &SyncRun) -> serde_json::Value {
    serde_json::json!({
        "at": timestamp(run.at),
        "ok": run.ok,
        "duration_ms": run.duration_ms,
        "entries": run.entries,
        "added": run.added,
        "changed": run.changed,
        "disabled": run.disabled,
        "skipped": run.skipped,
        "error": run.error,
    })
}

fn directory_json(config: &Config, reader: &Reader) -> Result<serde_json::Value, Failure> {
    let (last, last_good) = reader.directory_syncs()?;
    if config.directory.url.is_none() && last.is_none() {
        return Ok(serde_json::Value::Null);
    }
    Ok(serde_json::json!({
        "url": config.directory.url,
        "last_sync": last.as_ref().map(sync_json),
        "last_good_sync": last_good.as_ref().map(sync_json),
    }))
}

/// The last directory sync: when, what it did, or why it failed.
fn print_directory(config: &Config, reader: &Reader) -> CommandResult {
    let (last, last_good) = reader.directory_syncs()?;
    let Some(url) = &config.directory.url else {
        return Ok(());
    };
    println!("directory {url}");
    let Some(last) = last else {
        println!(
            "  last sync: none yet (serve syncs every {}; or `lifeboat directory sync`)",
            humantime::format_duration(config.directory.sync_interval)
        );
        return Ok(());
    };
    let at = timestamp(last.at).unwrap_or_default();
    if last.ok {
        println!(
            "  last sync: ok at {at} in {} ms: {} entries, {} added, {} changed, {} disabled, {} skipped",
            last.duration_ms, last.entries, last.added, last.changed, last.disabled, last.skipped
        );
    } else {
        println!(
            "  last sync: FAILED at {at}: {} (nothing changed)",
            last.error.as_deref().unwrap_or("unknown error")
        );
        match last_good {
            Some(good) => println!(
                "  last good sync: {} ({} entries)",
                timestamp(good.at).unwrap_or_default(),
                good.entries
            ),
            None => println!("  last good sync: never"),
        }
    }
    Ok(())
}

/// `serve`'s listeners and descriptor budget, as its last report says.
fn print_serve(report: Option<ServeReport>) {
    let Some(report) = report else {
        println!(
            "serve: not running (no fresh {})",
            crate::serve_report::FILE
        );
        return;
    };
    println!(
        "serve (pid {}): {} of {} user sessions open, descriptor limit {}",
        report.pid, report.sessions_open, report.session_budget, report.descriptor_limit
    );
    for listener in &report.listeners {
        let state = if listener.stopped {
            "STOPPED"
        } else {
            "listening"
        };
        print!(
            "  {:<10} {:<24} {state}, {} accepted",
            listener.kind, listener.address, listener.accepted
        );
        match (&listener.last_error, listener.last_error_at) {
            (Some(why), Some(at)) => println!(
                ", {} failed accepts (last at {}: {why})",
                listener.accept_errors,
                timestamp(at as i64).unwrap_or_default()
            ),
            _ => println!(),
        }
    }
}

/// RFC 3339 UTC time of a Unix timestamp; `None` for 0, which means "never recorded".
fn timestamp(secs: i64) -> Option<String> {
    let secs = u64::try_from(secs).ok().filter(|s| *s > 0)?;
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    Some(humantime::format_rfc3339_seconds(at).to_string())
}
