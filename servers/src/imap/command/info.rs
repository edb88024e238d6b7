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

/// ENABLE: CONDSTORE and QRESYNC (which turns CONDSTORE on too, RFC 7162 §3.2.3) can
/// be enabled; others are left out of the ENABLED answer, as RFC 5161 §3.1 asks.
pub fn enable(
    cx: &mut Context,
    tag: &Tag<'static>,
    capabilities: Vec1<CapabilityEnable<'static>>,
) -> Reply {
    let mut enabled = Vec::new();
    for capability in capabilities.into_inner() {
        match &capability {
            CapabilityEnable::CondStore => cx.condstore = true,
            other if other.to_string().eq_ignore_ascii_case("QRESYNC") => {
                cx.condstore = true;
                cx.qresync = true;
            }
            _ => continue,
        }
        enabled.push(capability);
    }
    Reply::new(vec![
        data(Data::Enabled {
            capabilities: enabled,
        }),
        ok(tag, "ENABLE completed"),
    ])
}

#[cfg(test)]
mod tests {
    use crate::imap::testing::Fixture;

    #[test]
    fn id_in_any_state() {
        let mut f = Fixture::new();
        assert_eq!(
            f.run(b"a1 ID (\"name\" \"mutt\")\r\n"),
            ["* ID (\"name\" \"Lifeboat\")\r\n", "a1 OK ID completed\r\n"]
        );
    }

    #[test]
    fn namespace_is_one_personal_root() {
        let mut f = Fixture::logged_in(0);
        assert_eq!(
            f.run(b"a1 NAMESPACE\r\n"),
            [
                "* NAMESPACE ((\"\" \".\")) NIL NIL\r\n",
                "a1 OK NAMESPACE completed\r\n"
            ]
        );
    }

    #[test]
    fn enable_qresync_turns_condstore_on_too() {
        let mut f = Fixture::logged_in(1);
        assert_eq!(
            f.run(b"a1 ENABLE QRESYNC\r\n"),
            ["* ENABLED QRESYNC\r\n", "a1 OK ENABLE completed\r\n"]
        );
        f.run(b"a2 SELECT INBOX\r\n");
        let modseq = f.messages("INBOX")[0].modseq;
        assert_eq!(
            f.run(b"a3 FETCH 1 UID\r\n")[0],
            format!("* 1 FETCH (UID 1 MODSEQ ({modseq}))\r\n")
        );
    }

    #[test]
    fn enable_turns_on_condstore_and_qresync_only() {
        let mut f = Fixture::logged_in(1);
        assert_eq!(
            f.run(b"a1 ENABLE X-UNKNOWN\r\n"),
            ["* ENABLED\r\n", "a1 OK ENABLE completed\r\n"]
        );
        f.run(b"a2 SELECT INBOX\r\n");
        assert_eq!(f.run(b"a3 FETCH 1 UID\r\n")[0], "* 1 FETCH (UID 1)\r\n");
        assert_eq!(
            f.run(b"a4 ENABLE CONDSTORE X-UNKNOWN\r\n"),
            ["* ENABLED CONDSTORE\r\n", "a4 OK ENABLE completed\r\n"]
        );
        let modseq = f.messages("INBOX")[0].modseq;
        assert_eq!(
            f.run(b"a5 FETCH 1 UID\r\n")[0],
            format!("* 1 FETCH (UID 1 MODSEQ ({modseq}))\r\n")
        );
    }
}
