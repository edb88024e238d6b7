//! Reading every user under `base`: a paged search (RFC 2696, so directories with a
//! size limit and tens of thousands of entries are read whole), the disabled filter and
//! the protected group, and the conflicts between entries.

use std::collections::{HashMap, HashSet};

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, Scope, SearchEntry};
use lifeboat_mailstore::directory_sync::{DisableReason, SkipReason, Skipped, SyncInput};

use crate::connection::{DirectoryError, service_connection};
use crate::entry::{RawEntry, map_entry, wanted_attributes};
use crate::settings::Settings;

/// Every user under `base` matching `user_filter`, mapped, with the entries left out
/// and why: no address, a bad one, a domain outside `domains` (the origins'), or an
/// address another entry claims too (both are left out). Any failure to read the
/// directory is an error and nothing is returned, so a partial answer never disables
/// users that were merely not read.
pub async fn list_users(
    settings: &Settings,
    domains: &[String],
) -> Result<SyncInput, DirectoryError> {
    let mut ldap = service_connection(settings).await?;
    let listing = read(&mut ldap, settings, domains).await;
    let _ = ldap.unbind().await;
    listing
}

async fn read(
    ldap: &mut Ldap,
    settings: &Settings,
    domains: &[String],
) -> Result<SyncInput, DirectoryError> {
    let entries = search(
        ldap,
        settings,
        &settings.user_filter,
        wanted_attributes(settings),
    )
    .await?;
    let disabled_dns = match &settings.disabled_filter {
        Some(filter) => {
            let both = format!("(&{}{filter})", settings.user_filter);
            dns(search(ldap, settings, &both, vec!["1.1".to_string()]).await?)
        }
        None => HashSet::new(),
    };
    let members = match &settings.group {
        Some(group) => Some(group_members(ldap, settings, group).await?),
        None => None,
    };
    let mut input = SyncInput::default();
    for entry in &entries {
        let key = entry.dn.to_ascii_lowercase();
        let disabled = if disabled_dns.contains(&key) {
            Some(DisableReason::DisabledInDirectory)
        } else if members.as_ref().is_some_and(|m| !m.contains(&key)) {
            Some(DisableReason::NotInGroup)
        } else {
            None
        };
        match map_entry(entry, settings, disabled) {
            Ok(user) => input.users.push(user),
            Err(skipped) => input.skipped.push(skipped),
        }
    }
    keep_protected_domains(&mut input, domains);
    drop_double_claims(&mut input);
    Ok(input)
}

/// A paged subtree search under `base`.
async fn search(
    ldap: &mut Ldap,
    settings: &Settings,
    filter: &str,
    attributes: Vec<String>,
) -> Result<Vec<RawEntry>, DirectoryError> {
    let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
        Box::new(EntriesOnly::new()),
        Box::new(PagedResults::new(settings.page_size as i32)),
    ];
    let failed = |e: ldap3::LdapError| classify(settings, e);
    let mut stream = ldap
        .streaming_search_with(adapters, &settings.base, Scope::Subtree, filter, attributes)
        .await
        .map_err(failed)?;
    let mut entries = Vec::new();
    loop {
        // Each page must come within the timeout; the whole listing may take longer.
        let next = tokio::time::timeout(settings.timeout, stream.next())
            .await
            .map_err(|_| DirectoryError::Unreachable {
                url: settings.url.clone(),
                why: format!("no answer to the search within {:?}", settings.timeout),
            })?;
        match next.map_err(failed)? {
            Some(entry) => entries.push(raw(SearchEntry::construct(entry))),
            None => break,
        }
    }
    stream.finish().await.success().map_err(failed)?;
    Ok(entries)
}

/// The DNs (lowercased) the group lists as `member` or `uniqueMember`.
async fn group_members(
    ldap: &mut Ldap,
    settings: &Settings,
    group: &str,
) -> Result<HashSet<String>, DirectoryError> {
    let (entries, _) = ldap
        .with_timeout(settings.timeout)
        .search(
            group,
            Scope::Base,
            "(objectClass=*)",
            vec!["member", "uniqueMember"],
        )
        .await
        .and_then(|result| result.success())
        .map_err(|e| classify(settings, e))?;
    let Some(entry) = entries.into_iter().next() else {
        return Err(DirectoryError::Search(format!("group {group} not found")));
    };
    let entry = raw(SearchEntry::construct(entry));
    Ok(["member", "uniquemember"]
        .iter()
        .flat_map(|a| entry.attrs.get(*a).into_iter().flatten())
        // uniqueMember may carry an optional `#'0101'B` UID after the DN.
        .map(|dn| {
            dn.split('#')
                .next()
                .unwrap_or(dn)
                .trim()
                .to_ascii_lowercase()
        })
        .collect())
}

fn raw(entry: SearchEntry) -> RawEntry {
    RawEntry {
        dn: entry.dn,
        attrs: entry
            .attrs
            .into_iter()
            .map(|(name, values)| (name.to_ascii_lowercase(), values))
            .collect(),
    }
}

fn dns(entries: Vec<RawEntry>) -> HashSet<String> {
    entries
        .into_iter()
        .map(|e| e.dn.to_ascii_lowercase())
        .collect()
}

fn classify(settings: &Settings, error: ldap3::LdapError) -> DirectoryError {
    if crate::connection::is_connection_failure(&error) {
        crate::connection::unreachable(settings, error)
    } else {
        DirectoryError::Search(error.to_string())
    }
}

/// Leaves out entries with an address (own or alias) outside every origin's domains.
fn keep_protected_domains(input: &mut SyncInput, domains: &[String]) {
    let protected = |domain: &str| domains.iter().any(|d| d.eq_ignore_ascii_case(domain));
    let users = std::mem::take(&mut input.users);
    for user in users {
        let outside = std::iter::once(&user.address)
            .chain(&user.aliases)
            .find(|a| !protected(a.domain()));
        match outside {
            Some(address) => input.skipped.push(Skipped {
                dn: user.dn.clone(),
                address: Some(user.address.clone()),
                reason: SkipReason::OutsideDomains {
                    address: address.to_string(),
                },
            }),
            None => input.users.push(user),
        }
    }
}

/// Leaves out every entry that claims an address another entry claims too: which of
/// them is right is for an admin to decide, not for the order of a search.
fn drop_double_claims(input: &mut SyncInput) {
    let mut claims: HashMap<String, Vec<usize>> = HashMap::new();
    for (index, user) in input.users.iter().enumerate() {
        for address in std::iter::once(&user.address).chain(&user.aliases) {
            claims
                .entry(address.as_str().to_ascii_lowercase())
                .or_default()
                .push(index);
        }
    }
    let mut conflicts: HashMap<usize, (String, usize)> = HashMap::new();
    for (address, claimants) in &claims {
        if let [first, second, ..] = claimants[..] {
            conflicts.entry(first).or_insert((address.clone(), second));
            for &other in &claimants[1..] {
                conflicts.entry(other).or_insert((address.clone(), first));
            }
        }
    }
    if conflicts.is_empty() {
        return;
    }
    let users = std::mem::take(&mut input.users);
    let dns: Vec<String> = users.iter().map(|u| u.dn.clone()).collect();
    for (index, user) in users.into_iter().enumerate() {
        match conflicts.get(&index) {
            Some((address, other)) => input.skipped.push(Skipped {
                dn: user.dn.clone(),
                address: Some(user.address.clone()),
                reason: SkipReason::ClaimedTwice {
                    address: address.clone(),
                    other_dn: dns[*other].clone(),
                },
            }),
            None => input.users.push(user),
        }
    }
}
