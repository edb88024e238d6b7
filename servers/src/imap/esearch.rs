//! Extended SEARCH (RFC 4731 ESEARCH, RFC 4466's `RETURN (...)`) and what RFC 5182
//! (SEARCHRES) adds to it: the result options a client asks for, which messages a
//! `SAVE` keeps for `$`, and the `* ESEARCH` response, which imap-types cannot express
//! and is encoded here.
//!
//! Pure: the SEARCH command (`command/search.rs`) finds the messages, and this decides
//! what of them goes back and what is saved.

use imap_codec::imap_types::core::Tag;

use super::response::runs;

/// The result options of `SEARCH RETURN (...)`. An empty list means `ALL` (RFC 4731
/// §3.1); the options may come in any order and more than once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReturnOptions {
    pub min: bool,
    pub max: bool,
    pub all: bool,
    pub count: bool,
    /// RFC 5182: keep the result for `$`.
    pub save: bool,
}

impl ReturnOptions {
    /// Adds the option `name` (any case); false for an option Lifeboat does not know,
    /// which the command is refused for (RFC 4466 §2.6: an unknown one is an error).
    pub fn add(&mut self, name: &[u8]) -> bool {
        let flag = match name.to_ascii_uppercase().as_slice() {
            b"MIN" => &mut self.min,
            b"MAX" => &mut self.max,
            b"ALL" => &mut self.all,
            b"COUNT" => &mut self.count,
            b"SAVE" => &mut self.save,
            _ => return false,
        };
        *flag = true;
        true
    }

    /// `RETURN ()` asks for ALL.
    fn effective(self) -> ReturnOptions {
        if self == ReturnOptions::default() {
            ReturnOptions { all: true, ..self }
        } else {
            self
        }
    }

    /// Whether an ESEARCH response is sent: not for `SAVE` alone (RFC 5182 §2: it
    /// suppresses the response the search would have made).
    pub fn answers(self) -> bool {
        let o = self.effective();
        o.min || o.max || o.all || o.count
    }

    /// Which of the found messages (ascending) `SAVE` keeps for `$` (RFC 5182 §2.4):
    /// with MIN and/or MAX but neither ALL nor COUNT, only the lowest and/or highest;
    /// otherwise all of them.
    pub fn saved<T: Copy>(self, found: &[T]) -> Vec<T> {
        let o = self.effective();
        if (o.min || o.max) && !o.all && !o.count {
            let mut kept = Vec::with_capacity(2);
            if let Some(&first) = found.first().filter(|_| o.min) {
                kept.push(first);
            }
            if let Some(&last) = found.last().filter(|_| o.max)
                && !(o.min && found.len() == 1)
            {
                kept.push(last);
            }
            kept
        } else {
            found.to_vec()
        }
    }
}

/// One `* ESEARCH` response (RFC 4731 §3.1, RFC 4466 §2.6.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Esearch {
    pub tag: Tag<'static>,
    /// The numbers are UIDs (UID SEARCH).
    pub uid: bool,
    pub min: Option<u32>,
    pub max: Option<u32>,
    /// Ascending.
    pub all: Option<Vec<u32>>,
    pub count: Option<u32>,
    /// RFC 4731 §3.2: with a MODSEQ search key, the highest mod-sequence of the
    /// messages returned.
    pub modseq: Option<u64>,
}

impl Esearch {
    /// The response to a search with `options` that found `found` (message numbers or
    /// UIDs, ascending), whose mod-sequences `modseq` gives when the search had a MODSEQ
    /// key. MIN, MAX and ALL are left out when nothing was found; COUNT never is.
    pub fn new(
        tag: &Tag<'static>,
        uid: bool,
        options: ReturnOptions,
        found: &[u32],
        modseq: Option<&dyn Fn(u32) -> u64>,
    ) -> Esearch {
        let o = options.effective();
        let min = found.first().copied().filter(|_| o.min);
        let max = found.last().copied().filter(|_| o.max);
        let all = (o.all && !found.is_empty()).then(|| found.to_vec());
        let count = o.count.then_some(found.len() as u32);
        // RFC 4731 §3.2: the mod-sequence of what MIN and/or MAX return when they are
        // all that is asked for, else the highest of every message found.
        let modseq = modseq.and_then(|of| {
            let returned: Vec<u32> = if (o.min || o.max) && !o.all && !o.count {
                min.into_iter().chain(max).collect()
            } else {
                found.to_vec()
            };
            returned.into_iter().map(of).max()
        });
        Esearch {
            tag: tag.clone(),
            uid,
            min,
            max,
            all,
            count,
            modseq,
        }
    }

    /// The response line as the server writes it.
    pub fn encode(&self) -> Vec<u8> {
        // A tag has no `"` or `\` (RFC 3501 `tag` is made of ASTRING-CHARs): it
        // needs no escaping inside the quotes.
        let mut line = format!("* ESEARCH (TAG \"{}\")", self.tag.as_ref());
        if self.uid {
            line.push_str(" UID");
        }
        if let Some(min) = self.min {
            line.push_str(&format!(" MIN {min}"));
        }
        if let Some(max) = self.max {
            line.push_str(&format!(" MAX {max}"));
        }
        if let Some(all) = &self.all {
            line.push_str(" ALL ");
            line.push_str(&sequence_set(all));
        }
        if let Some(count) = self.count {
            line.push_str(&format!(" COUNT {count}"));
        }
        if let Some(modseq) = self.modseq {
            line.push_str(&format!(" MODSEQ {modseq}"));
        }
        line.push_str("\r\n");
        line.into_bytes()
    }
}

/// Ascending numbers as a compact sequence set: runs folded into ranges (`2,10:11`).
pub fn sequence_set(numbers: &[u32]) -> String {
    let mut set = String::new();
    for (low, high) in runs(numbers.iter().copied()) {
        if !set.is_empty() {
            set.push(',');
        }
        if low == high {
            set.push_str(&low.to_string());
        } else {
            set.push_str(&format!("{low}:{high}"));
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(t: &str) -> Tag<'static> {
        Tag::try_from(t.to_string()).unwrap()
    }

    fn options(names: &[&str]) -> ReturnOptions {
        let mut o = ReturnOptions::default();
        for name in names {
            assert!(o.add(name.as_bytes()), "{name}");
        }
        o
    }

    fn line(tag_: &str, uid: bool, names: &[&str], found: &[u32]) -> String {
        let e = Esearch::new(&tag(tag_), uid, options(names), found, None);
        String::from_utf8(e.encode()).unwrap()
    }

    #[test]
    fn the_rfc_4731_examples() {
        // §3.1, with the messages the examples found.
        assert_eq!(
            line("A282", false, &["MIN", "COUNT"], &[2, 10, 11]),
            "* ESEARCH (TAG \"A282\") MIN 2 COUNT 3\r\n"
        );
        assert_eq!(
            line("A283", false, &[], &[2, 10, 11]),
            "* ESEARCH (TAG \"A283\") ALL 2,10:11\r\n"
        );
        assert_eq!(
            line("A284", false, &["MIN"], &[4, 9]),
            "* ESEARCH (TAG \"A284\") MIN 4\r\n"
        );
        assert_eq!(
            line("A285", true, &["MIN", "MAX"], &[7, 100, 3800]),
            "* ESEARCH (TAG \"A285\") UID MIN 7 MAX 3800\r\n"
        );
        let fifteen: Vec<u32> = (1..=15).collect();
        assert_eq!(
            line("A286", false, &["COUNT"], &fifteen),
            "* ESEARCH (TAG \"A286\") COUNT 15\r\n"
        );
    }

    #[test]
    fn nothing_found_keeps_only_count() {
        assert_eq!(
            line("a1", true, &["MIN", "MAX", "ALL", "COUNT"], &[]),
            "* ESEARCH (TAG \"a1\") UID COUNT 0\r\n"
        );
        assert_eq!(
            line("a1", false, &["ALL"], &[]),
            "* ESEARCH (TAG \"a1\")\r\n"
        );
    }

    #[test]
    fn modseq_follows_rfc_4731_section_3_2() {
        // Message n has mod-sequence 100 - n: the lowest message has the highest.
        let of = |n: u32| 100 - u64::from(n);
        let found = [2, 5, 23];
        let with = |names: &[&str]| {
            let e = Esearch::new(&tag("a"), false, options(names), &found, Some(&of));
            e.modseq
        };
        assert_eq!(with(&["MIN"]), Some(98));
        assert_eq!(with(&["MAX"]), Some(77));
        assert_eq!(with(&["MIN", "MAX"]), Some(98));
        assert_eq!(with(&["MAX", "COUNT"]), Some(98));
        let e = Esearch::new(&tag("a1"), false, options(&["MIN"]), &found, Some(&of));
        assert_eq!(e.encode(), b"* ESEARCH (TAG \"a1\") MIN 2 MODSEQ 98\r\n");
        let none = Esearch::new(&tag("a"), false, options(&["COUNT"]), &[], Some(&of));
        assert_eq!(none.modseq, None);
    }

    #[test]
    fn save_keeps_what_rfc_5182_section_2_4_says() {
        let found = [3, 4, 9];
        assert_eq!(options(&["SAVE"]).saved(&found), [3, 4, 9]);
        assert_eq!(options(&["SAVE", "MIN"]).saved(&found), [3]);
        assert_eq!(options(&["SAVE", "MAX"]).saved(&found), [9]);
        assert_eq!(options(&["SAVE", "MIN", "MAX"]).saved(&found), [3, 9]);
        assert_eq!(options(&["SAVE", "MIN", "MAX"]).saved(&[4]), [4]);
        assert_eq!(options(&["SAVE", "MIN", "COUNT"]).saved(&found), [3, 4, 9]);
        assert_eq!(options(&["SAVE", "MAX", "ALL"]).saved(&found), [3, 4, 9]);
        assert!(options(&["SAVE", "MIN"]).saved::<u32>(&[]).is_empty());
        assert!(!options(&["SAVE"]).answers());
        assert!(options(&["SAVE", "COUNT"]).answers() && options(&[]).answers());
    }

    #[test]
    fn options_are_case_insensitive_and_unknown_ones_refused() {
        let mut o = ReturnOptions::default();
        assert!(o.add(b"min") && o.add(b"Count") && o.add(b"MIN"));
        assert_eq!(o, options(&["MIN", "COUNT"]));
        assert!(!o.add(b"PARTIAL") && !o.add(b"") && !o.add(b"MINI"));
    }

    #[test]
    fn sequence_sets_fold_runs() {
        assert_eq!(sequence_set(&[1]), "1");
        assert_eq!(sequence_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(
            sequence_set(&[u32::MAX - 1, u32::MAX]),
            "4294967294:4294967295"
        );
        assert_eq!(sequence_set(&[]), "");
    }
}
