//! FETCH: which data items a client asked for, and their values for one message.

use std::collections::HashSet;
use std::num::{NonZeroU32, NonZeroU64};

use chrono::{FixedOffset, TimeZone};
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::core::{IString, Literal, NString, Vec1};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName, Section,
};

use super::flags::flag_list;
use super::mime;
use super::response::nz;
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
}

impl Item {
    /// Whether serving it sets `\Seen` (RFC 3501 §6.4.5: BODY[...] and RFC822, RFC822.TEXT).
    pub fn marks_seen(&self) -> bool {
        matches!(
            self,
            Item::Section { peek: false, .. } | Item::Rfc822 | Item::Rfc822Text
        )
    }

    /// Whether the message's bytes must be read for it.
    pub fn needs_bytes(&self) -> bool {
        !matches!(
            self,
            Item::Flags | Item::Uid | Item::InternalDate | Item::Size | Item::ModSeq
        )
    }
}

/// The items of a FETCH command, each once, in the order asked; UID FETCH always
/// includes UID (RFC 3501 §6.4.8). Duplicates are found with a set: hundreds of items
/// in one command are cheap to sort out.
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
            // BINARY is not advertised; a client that asks anyway gets the rest.
            MessageDataItemName::Binary { .. } | MessageDataItemName::BinarySize { .. } => {
                continue;
            }
        };
        if seen.insert(item.clone()) {
            items.push(item);
        }
    }
    items
}

/// Most message data one FETCH response carries when a client asks for several items of
/// one message: past it the values go in further FETCH responses for the same message.
/// 600 ranges of a 1 MB message made one 600 MB response.
pub const GROUP_BYTES: usize = 1024 * 1024;

/// The FETCH values for one message. `bytes` is the message when an item needs it;
/// `recent` whether it is `\Recent` to this session.
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
    let _ = in_groups(items, message, recent, bytes, whole, |group| {
        all = Some(group);
        Ok::<(), ()>(())
    });
    all.unwrap_or_else(|| Vec1::from(MessageDataItem::Uid(nz(message.uid))))
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

/// The FETCH values for one message, handed to `send` a group at a time, each group
/// with at most about `grouping.limit` bytes of message data: only one group is ever
/// built at a time. Stops at the first error `send` returns.
pub fn in_groups<E>(
    items: &[Item],
    message: &MessageRecord,
    recent: bool,
    bytes: Option<&[u8]>,
    grouping: Grouping,
    mut send: impl FnMut(Vec1<MessageDataItem<'static>>) -> Result<(), E>,
) -> Result<(), E> {
    let bytes = bytes.unwrap_or_default();
    let asks_modseq = items.contains(&Item::ModSeq);
    let finish = |mut group: Vec<MessageDataItem<'static>>| {
        if grouping.condstore && !asks_modseq {
            group.push(MessageDataItem::ModSeq(modseq(message.modseq)));
        }
        Vec1::try_from(group).unwrap_or_else(|_| Vec1::from(MessageDataItem::Uid(nz(message.uid))))
    };
    let mut group = Vec::new();
    let mut size = 0;
    // Ranges of one section (BODY[]<0.100> BODY[]<100.100> ...) cut the section once.
    let mut last_section: Option<(Option<Section<'static>>, Vec<u8>)> = None;
    for item in items {
        if size >= grouping.limit && !group.is_empty() {
            send(finish(std::mem::take(&mut group)))?;
            size = 0;
            if grouping.uid && *item != Item::Uid {
                group.push(MessageDataItem::Uid(nz(message.uid)));
            }
        }
        let value = value(item, message, recent, bytes, &mut last_section);
        size += data_size(&value);
        group.push(value);
    }
    send(finish(group))
}

fn value(
    item: &Item,
    message: &MessageRecord,
    recent: bool,
    bytes: &[u8],
    last_section: &mut Option<(Option<Section<'static>>, Vec<u8>)>,
) -> MessageDataItem<'static> {
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
