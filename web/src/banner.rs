//! The origin's state in words, at the top of every page: whether the user's own mail
//! server is down, and what happens to what they do here.

use lifeboat_mailstore::{Address, OriginStatus, OutageState, Reader, Routes};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Banner {
    /// `outage`, `recovering` or `normal`: a CSS class; the words say it too, so the
    /// banner reads the same without colour.
    pub level: &'static str,
    pub headline: String,
    pub text: String,
}

/// The banner for a state (pure: testable without a store).
pub fn words(status: &OriginStatus) -> Banner {
    let since = chrono::DateTime::from_timestamp(status.since, 0)
        .map(|t| t.format("%H:%M UTC on %-d %B").to_string())
        .unwrap_or_default();
    match status.state {
        OutageState::Outage => Banner {
            level: "outage",
            headline: format!("Your mail server is unavailable since {since}."),
            text: "Mail you read and send here goes back to it when it returns.".into(),
        },
        OutageState::Recovering => Banner {
            level: "recovering",
            headline: "Recovering:".into(),
            text: "your mail server is back and your mail is being returned to it. \
                   You can keep working here until it is done."
                .into(),
        },
        OutageState::Normal => Banner {
            level: "normal",
            headline: "Your mail server is working normally.".into(),
            text: "This is a copy of your recent mail.".into(),
        },
    }
}

/// The banner for `user`'s origin, if their domain has one.
pub fn for_user(
    reader: &Reader,
    routes: &Routes,
    user: &Address,
) -> lifeboat_mailstore::Result<Option<Banner>> {
    match routes.origin_of(user.domain()) {
        Some(origin) => Ok(Some(words(&reader.origin_status(origin)?))),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: OutageState, since: i64) -> OriginStatus {
        OriginStatus {
            origin: "main".into(),
            state,
            since,
            reason: String::new(),
            manual: false,
        }
    }

    #[test]
    fn each_state_reads_in_words() {
        // 2026-11-25 10:42:00 UTC
        let outage = words(&status(OutageState::Outage, 1_795_603_320));
        assert_eq!(outage.level, "outage");
        assert_eq!(
            outage.headline,
            "Your mail server is unavailable since 10:42 UTC on 25 November."
        );
        assert!(outage.text.contains("goes back to it when it returns"));
        let recovering = words(&status(OutageState::Recovering, 0));
        assert!(recovering.text.contains("being returned"));
        assert_eq!(words(&status(OutageState::Normal, 0)).level, "normal");
    }
}
