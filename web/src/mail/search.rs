//! The search form as IMAP SEARCH keys (dates as SENTSINCE and SENTBEFORE: the day in
//! the Date: field, which is the date the list shows), matched by the IMAP server's own
//! `imap::search::matches` (decoded headers and bodies, case-insensitive substrings,
//! dates by day).

use imap_codec::imap_types::core::AString;
use imap_codec::imap_types::datetime::NaiveDate;
use imap_codec::imap_types::search::SearchKey;
use lifeboat_mailstore::MessageRecord;
use lifeboat_servers::imap::search::{Candidate, matches};

use crate::pages::SearchForm;

/// The keys the form asks for (all must match); an error names a field that does not
/// read. No keys: the form is empty.
pub fn criteria(form: &SearchForm) -> Result<Vec<SearchKey<'static>>, String> {
    let mut keys = Vec::new();
    let text = |value: &str, make: fn(AString<'static>) -> SearchKey<'static>| {
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        AString::try_from(value.to_string())
            .map(|s| Some(make(s)))
            .map_err(|_| format!("“{value}” cannot be searched for."))
    };
    for (value, make) in [
        (
            &form.from,
            SearchKey::From as fn(AString<'static>) -> SearchKey<'static>,
        ),
        (&form.to, SearchKey::To),
        (&form.subject, SearchKey::Subject),
        (&form.text, SearchKey::Text),
    ] {
        keys.extend(text(value, make)?);
    }
    if let Some(date) = day(&form.since)? {
        keys.push(SearchKey::SentSince(date));
    }
    if let Some(date) = day(&form.before)? {
        keys.push(SearchKey::SentBefore(date));
    }
    Ok(keys)
}

/// A `YYYY-MM-DD` date field (what `<input type=date>` sends).
fn day(value: &str) -> Result<Option<NaiveDate>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| NaiveDate::try_from(d).ok())
        .map(Some)
        .ok_or_else(|| format!("“{value}” is not a date (YYYY-MM-DD)."))
}

/// Whether a message matches every key.
pub fn matches_all(keys: &[SearchKey<'static>], record: &MessageRecord, bytes: &[u8]) -> bool {
    let candidate = Candidate {
        seq: 1,
        uid: record.uid,
        flags: record.flags,
        recent: false,
        keywords: &record.keywords,
        internal_date: record.internal_date,
        size: record.size,
        message: bytes,
        modseq: record.modseq.max(0) as u64,
    };
    keys.iter()
        .all(|key| matches(key, &candidate, u32::MAX, u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_keys_and_bad_dates_are_named() {
        let form = SearchForm {
            from: "jörg".into(),
            since: "2026-11-01".into(),
            ..SearchForm::default()
        };
        let keys = criteria(&form).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(criteria(&SearchForm::default()).unwrap().is_empty());
        let bad = SearchForm {
            before: "yesterday".into(),
            ..SearchForm::default()
        };
        assert!(criteria(&bad).unwrap_err().contains("yesterday"));
    }
}
