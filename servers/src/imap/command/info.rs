//! Small commands about the server rather than a mailbox: ID (RFC 2971), NAMESPACE
//! (RFC 2342) and ENABLE (RFC 5161).

use imap_codec::imap_types::core::{IString, NString, Tag, Vec1};
use imap_codec::imap_types::extensions::enable::CapabilityEnable;
use imap_codec::imap_types::extensions::namespace::Namespace;
use imap_codec::imap_types::response::Data;

use crate::imap::context::Context;
use crate::imap::names::delimiter;
use crate::imap::response::{Reply, data, ok};

/// ID, in any state: the server's name; what the client says about itself is not kept.
pub fn id(tag: &Tag<'static>) -> Reply {
    Reply::new(vec![
        data(Data::Id {
            parameters: Some(vec![(
                IString::try_from("name").expect("valid"),
                NString::try_from("Lifeboat").expect("valid"),
            )]),
        }),
        ok(tag, "ID completed"),
    ])
}

/// NAMESPACE: one personal namespace at the root; nothing is shared.
pub fn namespace(tag: &Tag<'static>) -> Reply {
    Reply::new(vec![
        data(Data::Namespace {
            personal: vec![Namespace {
                prefix: IString::try_from("").expect("valid"),
                delimiter: Some(delimiter()),
                extensions: vec![],
            }],
            other: vec![],
            shared: vec![],
        }),
        ok(tag, "NAMESPACE completed"),
    ])
}

/// ENABLE: CONDSTORE is the only extension that can be enabled; others are left out of
/// the ENABLED answer, as RFC 5161 §3.1 asks.
pub fn enable(
    cx: &mut Context,
    tag: &Tag<'static>,
    capabilities: Vec1<CapabilityEnable<'static>>,
) -> Reply {
    let mut enabled = Vec::new();
    for capability in capabilities.into_inner() {
        if matches!(capability, CapabilityEnable::CondStore) {
            cx.condstore = true;
            enabled.push(capability);
        }
    }
    Reply::new(vec![
        data(Data::Enabled {
            capabilities: enabled,
        }),
        ok(tag, "ENABLE completed"),
    ])
}
