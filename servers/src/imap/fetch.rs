//! FETCH: which data items a client asked for, and their values for one message.
//!
//! BINARY (RFC 3516) items come last in a message's responses, grouped by section, so
//! each section is decoded once however many ranges of it are asked for; they are
//! written here ([`response`]) since imap-codec has no `BINARY[1]<0>` nor `~{n}` to
//! answer with.

use std::collections::HashSet;
use std::num::{NonZeroU32, NonZeroU64};

use chrono::{FixedOffset, TimeZone};
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::core::{IString, Literal, NString, Vec1};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName, Section,
};
use imap_codec::imap_types::response::Data;

use super::flags::flag_list;
use super::mime;
use super::response::{data, encode, nz};
use lifeboat_mailstore::reader::MessageRecord;

/// One requested data item, owned and checked.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Item {
    Flags,
    Uid,
    InternalDate,
    Size,
    Envelope,
    /// BODY (`extended = false`) or BODYSTRUCTURE.
    Structure {
        extended: bool,
    },
    /// BODY[section]<partial> and BODY.PEEK[...].
    Section {
        section: Option<Section<'static>>,
        partial: Option<(u32, NonZeroU32)>,
        peek: bool,
    },
    Rfc822,
    Rfc822Header,
    Rfc822Text,
    ModSeq,
    /// BINARY[part]<partial> and BINARY.PEEK[...] (RFC 3516).
    Binary {
        part: Vec<NonZeroU32>,
        partial: Option<(u32, NonZeroU32)>,
        peek: bool,
    },
    /// BINARY.SIZE[part].
    BinarySize {
        part: Vec<NonZeroU32>,
    },
}

impl Item {
    /// Whether serving it sets `\Seen` (RFC 3501 §6.4.5: BODY[...] and RFC822, RFC822.TEXT;
    /// RFC 3516: BINARY[...]).
    pub fn marks_seen(&self) -> bool {
        matches!(
            self,
            Item::Section { peek: false, .. }
                | Item::Rfc822
                | Item::Rfc822Text
                | Item::Binary { peek: false, .. }
        )
    }

    /// The part a BINARY item asks for.
    pub fn binary_part(&self) -> Option<&[NonZeroU32]> {
        match self {
            Item::Binary { part, .. } | Item::BinarySize { part } => Some(part),
            _ => None,
        }
    }

    /// Whether the message's bytes must be read for it.
    pub fn needs_bytes(&self) -> bool {
        !matches!(
            self,
            Item::Flags | Item::Uid | Item::InternalDate | Item::Size | Item::ModSeq
        )
    }
}

/// The items of a FETCH command, each once, in the order asked but BINARY items last,
/// those of one section together; UID FETCH always includes UID (RFC 3501 §6.4.8).
/// Duplicates are found with a set: hundreds of items in one command are cheap to sort
/// out.
pub fn item_names(names: MacroOrMessageDataItemNames<'static>, uid: bool) -> Vec<Item> {
    let names = match names {
        MacroOrMessageDataItemNames::Macro(m) => m
            .expand()
            .into_iter()
            .map(|name| name.into_static())
            .collect(),
        MacroOrMessageDataItemNames::MessageDataItemNames(names) => names,
    };
    let mut items: Vec<Item> = Vec::with_capacity(names.len() + 1);
    let mut seen = HashSet::with_capacity(names.len() + 1);
    if uid {
        items.push(Item::Uid);
        seen.insert(Item::Uid);
    }
    for name in names {
        let item = match name {
            MessageDataItemName::Body => Item::Structure { extended: false },
            MessageDataItemName::BodyStructure => Item::Structure { extended: true },
            MessageDataItemName::BodyExt {
                section,
                partial,
                peek,
            } => Item::Section {
                section,
                partial,
                peek,
            },
            MessageDataItemName::Envelope => Item::Envelope,
            MessageDataItemName::Flags => Item::Flags,
            MessageDataItemName::InternalDate => Item::InternalDate,
            MessageDataItemName::Rfc822 => Item::Rfc822,
            MessageDataItemName::Rfc822Header => Item::Rfc822Header,
            MessageDataItemName::Rfc822Size => Item::Size,
            MessageDataItemName::Rfc822Text => Item::Rfc822Text,
            MessageDataItemName::Uid => Item::Uid,
            MessageDataItemName::ModSeq => Item::ModSeq,
            MessageDataItemName::Binary {
                section,
                partial,
                peek,
            } => Item::Binary {
                part: section,
                partial,
                peek,
            },
            MessageDataItemName::BinarySize { section } => Item::BinarySize { part: section },
        };
        if seen.insert(item.clone()) {
            items.push(item);
        }
    }
    // BINARY items last, by section in the order first asked (a stable sort).
    let mut parts: Vec<&[NonZeroU32]> = Vec::new();
    let rank: Vec<usize> = items
        .iter()
        .map(|item| match item.binary_part() {
            None => 0,
            Some(part) => match parts.iter().position(|p| *p == part) {
                Some(at) => at + 1,
                None => {
                    parts.push(part);
                    parts.len()
                }
            },
        })
        .collect();
    let mut ranked: Vec<(usize, Item)> = rank.into_iter().zip(items.iter().cloned()).collect();
    ranked.sort_by_key(|(rank, _)| *rank);
    ranked.into_iter().map(|(_, item)| item).collect()
}

/// Most message data one FETCH response carries when a client asks for several items of
/// one message: past it the values go in further FETCH responses for the same message.
/// 600 ranges of a 1 MB message made one 600 MB response.
pub const GROUP_BYTES: usize = 1024 * 1024;

/// The FETCH values for one message. `bytes` is the message when an item needs it;
/// `recent` whether it is `\Recent` to this session. (For items other than BINARY.)
pub fn values(
    items: &[Item],
    message: &MessageRecord,
    recent: bool,
    bytes: Option<&[u8]>,
    condstore: bool,
) -> Vec1<MessageDataItem<'static>> {
    let mut all = None;
    let whole = Grouping {
        condstore,
        uid: false,
        limit: usize::MAX,
    };
    let _ = in_groups(items, message, recent, bytes, None, whole, |group| {
        all = Some(group.items);
        Ok::<(), ()>(())
    });
    Vec1::try_from(all.unwrap_or_default())
        .unwrap_or_else(|_| Vec1::from(MessageDataItem::Uid(nz(message.uid))))
}

/// How [`in_groups`] splits one message's values.
#[derive(Clone, Copy, Debug)]
pub struct Grouping {
    /// CONDSTORE (RFC 7162 §3.1.4.1): once enabled, every FETCH response has MODSEQ.
    pub condstore: bool,
    /// UID FETCH: every response has the UID (RFC 3501 §6.4.8).
    pub uid: bool,
    /// Message data per group before the next one starts (a group holds at least one
    /// item).
    pub limit: usize,
}

/// The values of one FETCH response: imap-codec's items, then BINARY data.
#[derive(Debug, Default)]
pub struct Group {
    pub items: Vec<MessageDataItem<'static>>,
    pub binary: Vec<Binary>,
}

/// `BINARY[part]<origin>` and its decoded data.
#[derive(Debug)]
pub struct Binary {
    pub part: Vec<NonZeroU32>,
    pub origin: Option<u32>,
    pub data: Vec<u8>,
}

impl Group {
    fn is_empty(&self) -> bool {
        self.items.is_empty() && self.binary.is_empty()
    }
}

/// The FETCH response for message `seq` with the values of `group`, encoded: BINARY
/// data as a literal, a literal8 (`~{n}`) when it holds NUL (RFC 3516 §4.3).
pub fn response(seq: u32, group: Group) -> Vec<u8> {
    let mut out = match Vec1::try_from(group.items) {
        Ok(items) => {
            let mut encoded = encode(&data(Data::Fetch {
                seq: nz(seq),
                items,
            }));
            // `* 1 FETCH (...)\r\n`: the BINARY values go before the `)`.
            encoded.truncate(encoded.len().saturating_sub(3));
            encoded
        }
        Err(_) => format!("* {} FETCH (", nz(seq)).into_bytes(),
    };
    for value in group.binary {
        if !out.ends_with(b"(") {
            out.push(b' ');
        }
        let part: Vec<String> = value.part.iter().map(|n| n.to_string()).collect();
        out.extend_from_slice(format!("BINARY[{}]", part.join(".")).as_bytes());
        if let Some(origin) = value.origin {
            out.extend_from_slice(format!("<{origin}>").as_bytes());
        }
        let eight = if value.data.contains(&0) { "~" } else { "" };
        out.extend_from_slice(format!(" {eight}{{{}}}\r\n", value.data.len()).as_bytes());
        out.extend_from_slice(&value.data);
    }
    out.extend_from_slice(b")\r\n");
    out
}

/// The FETCH values for one message, handed to `send` a group at a time, each group
/// with at most about `grouping.limit` bytes of message data: only one group is ever
/// built at a time. `tree` is the message's MIME tree, which BINARY items need. Stops
/// at the first error `send` returns.
pub fn in_groups<E>(
    items: &[Item],
    message: &MessageRecord,
    recent: bool,
    bytes: Option<&[u8]>,
    tree: Option<&mime::tree::Entity<'_>>,
    grouping: Grouping,
    mut send: impl FnMut(Group) -> Result<(), E>,
) -> Result<(), E> {
    let bytes = bytes.unwrap_or_default();
    let asks_modseq = items.contains(&Item::ModSeq);
    let finish = |mut group: Group| {
        if grouping.condstore && !asks_modseq {
            group
                .items
                .push(MessageDataItem::ModSeq(modseq(message.modseq)));
        }
        if group.is_empty() {
            group.items.push(MessageDataItem::Uid(nz(message.uid)));
        }
        group
    };
    let mut group = Group::default();
    let mut size = 0;
    // Ranges of one section (BODY[]<0.100> BODY[]<100.100> ...) cut the section once,
    // and BINARY ranges of one part (they come together) decode it once; one BINARY
    // range alone decodes only itself.
    let mut cut = Cut {
        tree,
        ..Cut::default()
    };
    let shared = shared_parts(items);
    for (item, shared) in items.iter().zip(shared) {
        if size >= grouping.limit && !group.is_empty() {
            send(finish(std::mem::take(&mut group)))?;
            size = 0;
            if grouping.uid && *item != Item::Uid {
                group.items.push(MessageDataItem::Uid(nz(message.uid)));
            }
        }
        match item {
            Item::Binary { part, partial, .. } => {
                let data = cut.binary(part, *partial, shared);
                size += data.len();
                group.binary.push(Binary {
                    part: part.clone(),
                    origin: partial.map(|(start, _)| start),
                    data,
                });
            }
            Item::BinarySize { part } => {
                let size = cut.binary_size(part);
                group.items.push(MessageDataItem::BinarySize {
                    section: part.clone(),
                    size: u32::try_from(size).unwrap_or(u32::MAX),
                });
            }
            _ => {
                let value = value(item, message, recent, bytes, &mut cut);
                size += data_size(&value);
                group.items.push(value);
            }
        }
    }
    send(finish(group))
}

/// For each item, whether it is a BINARY item whose part another BINARY item (next to
/// it: [`item_names`] puts them together) asks for too.
fn shared_parts(items: &[Item]) -> Vec<bool> {
    let part = |i: usize| items.get(i).and_then(Item::binary_part);
    (0..items.len())
        .map(|i| {
            let this = part(i);
            this.is_some() && (i > 0 && part(i - 1) == this || part(i + 1) == this)
        })
        .collect()
}

/// The section cut last (BODY[...]); for BINARY[...] the message's MIME tree and the
/// part decoded whole last.
#[derive(Default)]
struct Cut<'t, 'a> {
    section: Option<(Option<Section<'static>>, Vec<u8>)>,
    tree: Option<&'t mime::tree::Entity<'a>>,
    binary: Option<(Vec<NonZeroU32>, Vec<u8>)>,
}

impl Cut<'_, '_> {
    /// The decoded data of `BINARY[part]<range>`: decoded whole once when `shared` by
    /// several items, else only the range. Empty when its encoding is unknown (FETCH
    /// refuses such a part before it gets here).
    fn binary(
        &mut self,
        part: &[NonZeroU32],
        range: Option<(u32, NonZeroU32)>,
        shared: bool,
    ) -> Vec<u8> {
        let Some(root) = self.tree else {
            return Vec::new();
        };
        if !shared {
            return mime::binary::section(root, part, range).unwrap_or_default();
        }
        let cached = matches!(&self.binary, Some((p, _)) if p == part);
        if !cached {
            let whole = mime::binary::section(root, part, None).unwrap_or_default();
            self.binary = Some((part.to_vec(), whole));
        }
        let whole = self.binary.as_ref().map_or(&[][..], |(_, data)| data);
        match range {
            Some((start, length)) => mime::partial(whole, start, length).to_vec(),
            None => whole.to_vec(),
        }
    }

    /// `BINARY.SIZE[part]`: the length of what is decoded already, else counted.
    fn binary_size(&self, part: &[NonZeroU32]) -> usize {
        match (&self.binary, self.tree) {
            (Some((p, data)), _) if p == part => data.len(),
            (_, Some(root)) => mime::binary::size(root, part).unwrap_or_default(),
            (_, None) => 0,
        }
    }
}

fn value(
    item: &Item,
    message: &MessageRecord,
    recent: bool,
    bytes: &[u8],
    cut: &mut Cut<'_, '_>,
) -> MessageDataItem<'static> {
    let last_section = &mut cut.section;
    match item {
        Item::Flags => MessageDataItem::Flags(flag_list(message.flags, &message.keywords, recent)),
        Item::Uid => MessageDataItem::Uid(nz(message.uid)),
        Item::InternalDate => MessageDataItem::InternalDate(internal_date(message.internal_date)),
        Item::Size => MessageDataItem::Rfc822Size(message.size.min(u64::from(u32::MAX)) as u32),
        Item::Envelope => MessageDataItem::Envelope(mime::envelope(bytes)),
        Item::Structure { extended } => {
            let structure = mime::body_structure(bytes, *extended);
            if *extended {
                MessageDataItem::BodyStructure(structure)
            } else {
                MessageDataItem::Body(structure)
            }
        }
        Item::Section {
            section, partial, ..
        } => {
            let cached = matches!(last_section, Some((cut, _)) if cut == section);
            if !cached {
                *last_section = Some((section.clone(), mime::section(bytes, section.as_ref())));
            }
            let (origin, slice) = match partial {
                Some((start, length)) => {
                    let whole = last_section.as_ref().map(|(_, whole)| &whole[..]);
                    let range = mime::partial(whole.unwrap_or_default(), *start, *length);
                    (Some(*start), range.to_vec())
                }
                // The whole section (perhaps the whole message) is handed over, not copied.
                None => (
                    None,
                    last_section
                        .take()
                        .map(|(_, whole)| whole)
                        .unwrap_or_default(),
                ),
            };
            MessageDataItem::BodyExt {
                section: section.clone(),
                origin,
                data: nstring(slice),
            }
        }
        Item::Rfc822 => MessageDataItem::Rfc822(nstring(bytes.to_vec())),
        Item::Rfc822Header => MessageDataItem::Rfc822Header(nstring(mime::section(
            bytes,
            Some(&Section::Header(None)),
        ))),
        Item::Rfc822Text => {
            MessageDataItem::Rfc822Text(nstring(mime::section(bytes, Some(&Section::Text(None)))))
        }
        Item::ModSeq => MessageDataItem::ModSeq(modseq(message.modseq)),
        // Served by `in_groups`.
        Item::Binary { .. } | Item::BinarySize { .. } => MessageDataItem::Uid(nz(message.uid)),
    }
}

/// Bytes of message data a value carries (what dominates a response's size).
fn data_size(value: &MessageDataItem<'_>) -> usize {
    let data = match value {
        MessageDataItem::BodyExt { data, .. }
        | MessageDataItem::Rfc822(data)
        | MessageDataItem::Rfc822Header(data)
        | MessageDataItem::Rfc822Text(data) => data,
        _ => return 0,
    };
    match &data.0 {
        Some(IString::Literal(literal)) => literal.data().len(),
        Some(IString::Quoted(quoted)) => quoted.inner().len(),
        None => 0,
    }
}

/// The untagged FETCH that tells a client about new flags.
pub fn flags_update(
    message: &MessageRecord,
    recent: bool,
    uid: bool,
    condstore: bool,
) -> Vec1<MessageDataItem<'static>> {
    let mut items = vec![Item::Flags];
    if uid {
        items.insert(0, Item::Uid);
    }
    values(&items, message, recent, None, condstore)
}

fn modseq(value: i64) -> NonZeroU64 {
    NonZeroU64::new(u64::try_from(value).unwrap_or(1)).unwrap_or(NonZeroU64::MIN)
}

/// A unix time as IMAP's date-time, in UTC.
pub fn internal_date(seconds: i64) -> DateTime {
    let utc = FixedOffset::east_opt(0).expect("UTC is a valid offset");
    let at = utc
        .timestamp_opt(seconds, 0)
        .single()
        .unwrap_or_else(|| utc.timestamp_opt(0, 0).single().expect("the epoch exists"));
    DateTime::unvalidated(at)
}

/// Bytes as an IMAP string: a literal, since message data may hold any byte.
fn nstring(bytes: Vec<u8>) -> NString<'static> {
    NString(Some(IString::Literal(Literal::unvalidated(bytes))))
}
