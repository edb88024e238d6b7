//! Byte-level tests of every command family, written against the session before it was
//! split (so they pin down the wire as it was).

use crate::imap::testing::{DATE, Fixture, USER, encode, exchange, message};

mod connection {
    use super::*;
    use crate::imap::session::After;

    const COMMON: &str = "IMAP4REV1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT \
                          CONDSTORE UIDPLUS MOVE SPECIAL-USE APPENDLIMIT=52428800";

    #[test]
    fn capability_depends_on_the_listener_and_the_login() {
        let mut plaintext = Fixture::new();
        assert_eq!(
            plaintext.run(b"a1 CAPABILITY\r\n"),
            [
                format!("* CAPABILITY {COMMON} AUTH=PLAIN\r\n"),
                "a1 OK CAPABILITY completed\r\n".into()
            ]
        );
        let mut tls_first = Fixture::with_listener(false, true);
        assert_eq!(
            tls_first.run(b"a1 CAPABILITY\r\n")[0],
            format!("* CAPABILITY {COMMON} STARTTLS LOGINDISABLED\r\n")
        );
        let mut logged_in = Fixture::logged_in(0);
        assert_eq!(
            logged_in.run(b"a1 CAPABILITY\r\n")[0],
            format!("* CAPABILITY {COMMON}\r\n")
        );
    }

    #[test]
    fn only_any_state_commands_work_before_login() {
        let mut f = Fixture::new();
        assert_eq!(f.run(b"a1 NOOP\r\n"), ["a1 OK NOOP completed\r\n"]);
        // CHECK is answered like NOOP, in any state.
        assert_eq!(f.run(b"a2 CHECK\r\n"), ["a2 OK NOOP completed\r\n"]);
        for command in [
            &b"a3 SELECT INBOX\r\n"[..],
            b"a3 LIST \"\" *\r\n",
            b"a3 FETCH 1 FLAGS\r\n",
            b"a3 ENABLE CONDSTORE\r\n",
            b"a3 IDLE\r\n",
        ] {
            assert_eq!(f.run(command), ["a3 BAD log in first\r\n"]);
        }
    }

    #[test]
    fn login_and_authenticate_belong_to_the_server() {
        let mut f = Fixture::new();
        for command in [&b"a1 LOGIN a pw\r\n"[..], b"a1 AUTHENTICATE PLAIN\r\n"] {
            assert_eq!(
                f.run(command),
                ["a1 BAD LOGIN and AUTHENTICATE are handled elsewhere\r\n"]
            );
        }
        assert!(!f.session.is_authenticated());
    }

    #[test]
    fn starttls_when_offered_and_not_yet_active() {
        let mut f = Fixture::new();
        assert_eq!(
            f.run(b"a1 STARTTLS\r\n"),
            ["a1 BAD TLS is already active or not available\r\n"]
        );
        assert_eq!(f.after, After::Continue);

        let mut f = Fixture::with_listener(false, true);
        assert_eq!(
            f.run(b"a2 STARTTLS\r\n"),
            ["a2 OK begin TLS negotiation now\r\n"]
        );
        assert_eq!(f.after, After::StartTls);
        f.session.tls_started();
        assert_eq!(
            f.run(b"a3 STARTTLS\r\n"),
            ["a3 BAD TLS is already active or not available\r\n"]
        );
        // Over TLS, logins are allowed.
        assert!(f.run(b"a4 CAPABILITY\r\n")[0].ends_with(" AUTH=PLAIN\r\n"));

        let mut f = Fixture::with_listener(true, true);
        f.session.logged_in(&f.user);
        assert_eq!(
            f.run(b"a5 STARTTLS\r\n"),
            ["a5 BAD already authenticated\r\n"]
        );
        assert_eq!(f.after, After::Continue);
    }

    #[test]
    fn logout_says_bye_and_ends_the_session() {
        let mut f = Fixture::selected(1);
        assert_eq!(
            f.run(b"a1 LOGOUT\r\n"),
            ["* BYE logging out\r\n", "a1 OK LOGOUT completed\r\n"]
        );
        assert_eq!(f.after, After::Logout);
        assert!(!f.session.is_authenticated() && !f.session.is_selected());
        assert_eq!(f.run(b"a2 SELECT INBOX\r\n"), ["a2 BAD log in first\r\n"]);
    }

    #[test]
    fn unsupported_commands_get_bad_in_the_state_they_reach() {
        let mut f = Fixture::logged_in(1);
        assert_eq!(f.run(b"a1 IDLE\r\n"), ["a1 BAD select a mailbox first\r\n"]);
        f.run(b"a2 SELECT INBOX\r\n");
        assert_eq!(f.run(b"a3 IDLE\r\n"), ["a3 BAD command not supported\r\n"]);
    }

    #[test]
    fn a_login_answers_with_the_new_capabilities() {
        let mut f = Fixture::new();
        f.session.logged_in(&f.user);
        let ok = f.session.login_ok(&tag(), "logged in");
        assert_eq!(
            encode(&ok),
            format!("a1 OK [CAPABILITY {COMMON}] logged in\r\n")
        );
        assert_eq!(f.session.user().unwrap().address.as_str(), USER);
    }

    #[test]
    fn logins_are_refused_before_tls_unless_allowed_and_once_logged_in() {
        let refusal = |f: &Fixture| {
            f.session
                .login_refusal()
                .map(|r| encode(&r.response(&tag())))
        };
        let tls_first = Fixture::with_listener(false, true);
        assert_eq!(
            refusal(&tls_first).unwrap(),
            "a1 NO [PRIVACYREQUIRED] use STARTTLS or the TLS port to log in\r\n"
        );
        let mut f = Fixture::new();
        assert_eq!(refusal(&f), None);
        f.session.logged_in(&f.user);
        assert_eq!(refusal(&f).unwrap(), "a1 NO already authenticated\r\n");
    }

    fn tag() -> imap_codec::imap_types::core::Tag<'static> {
        imap_codec::imap_types::core::Tag::try_from("a1").unwrap()
    }
}

mod info {
    use super::*;

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
    fn enable_turns_on_condstore_only() {
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

mod mailboxes {
    use super::*;
    use lifeboat_mailstore::{Address, Class, NewMessage};

    /// The standard mailboxes as LIST shows them: INBOX first, then by name.
    const STANDARD: [&str; 6] = [
        "() \".\" INBOX",
        "(\\Archive) \".\" Archive",
        "(\\Drafts) \".\" Drafts",
        "(\\Junk) \".\" Junk",
        "(\\Sent) \".\" Sent",
        "(\\Trash) \".\" Trash",
    ];

    fn listing(kind: &str, entries: &[&str], tag_line: &str) -> Vec<String> {
        let mut lines: Vec<String> = entries
            .iter()
            .map(|entry| format!("* {kind} {entry}\r\n"))
            .collect();
        lines.push(tag_line.to_string());
        lines
    }

    #[test]
    fn list_everything_the_root_and_inbox_in_any_case() {
        let mut f = Fixture::logged_in(0);
        assert_eq!(
            f.run(b"a1 LIST \"\" *\r\n"),
            listing("LIST", &STANDARD, "a1 OK LIST completed\r\n")
        );
        assert_eq!(
            f.run(b"a2 LIST \"\" \"\"\r\n"),
            [
                "* LIST (\\Noselect) \".\" \"\"\r\n",
                "a2 OK LIST completed\r\n"
            ]
        );
        assert_eq!(
            f.run(b"a3 LIST \"\" inbox\r\n"),
            ["* LIST () \".\" INBOX\r\n", "a3 OK LIST completed\r\n"]
        );
        assert_eq!(
            f.run(b"a4 LIST \"\" Nothing*\r\n"),
            ["a4 OK LIST completed\r\n"]
        );
    }

    #[test]
    fn list_percent_stops_at_the_delimiter_and_the_reference_is_a_prefix() {
        let mut f = Fixture::logged_in(0);
        assert_eq!(
            f.run(b"a1 CREATE Projects.2026\r\n"),
            ["a1 OK CREATE completed\r\n"]
        );
        assert_eq!(
            f.run(b"a2 LIST \"\" P%\r\n"),
            ["* LIST () \".\" Projects\r\n", "a2 OK LIST completed\r\n"]
        );
        assert_eq!(
            f.run(b"a3 LIST Projects. %\r\n"),
            [
                "* LIST () \".\" Projects.2026\r\n",
                "a3 OK LIST completed\r\n"
            ]
        );
    }

    #[test]
    fn lsub_lists_the_subscribed_mailboxes() {
        let mut f = Fixture::logged_in(0);
        assert_eq!(
            f.run(b"a1 UNSUBSCRIBE Junk\r\n"),
            ["a1 OK UNSUBSCRIBE completed\r\n"]
        );
        let subscribed: Vec<&str> = STANDARD
            .into_iter()
            .filter(|e| !e.ends_with("Junk"))
            .collect();
        assert_eq!(
            f.run(b"a2 LSUB \"\" *\r\n"),
            listing("LSUB", &subscribed, "a2 OK LSUB completed\r\n")
        );
        assert_eq!(
            f.run(b"a3 SUBSCRIBE Junk\r\n"),
            ["a3 OK SUBSCRIBE completed\r\n"]
        );
        assert_eq!(
            f.run(b"a4 LSUB \"\" *\r\n"),
            listing("LSUB", &STANDARD, "a4 OK LSUB completed\r\n")
        );
        assert_eq!(
            f.run(b"a5 SUBSCRIBE Nowhere\r\n"),
            ["a5 NO [NONEXISTENT] no such mailbox\r\n"]
        );
    }

    #[test]
    fn create_makes_parents_and_refuses_what_exists_or_cannot_be_a_name() {
        let mut f = Fixture::logged_in(0);
        // A trailing delimiter only says the mailbox will hold others.
        assert_eq!(
            f.run(b"a1 CREATE Projects.2026.\r\n"),
            ["a1 OK CREATE completed\r\n"]
        );
        let names: Vec<String> = {
            let reader = f.store.reader().unwrap();
            let all = reader.mailboxes(f.user.id).unwrap();
            all.into_iter().map(|m| m.name).collect()
        };
        assert!(names.contains(&"Projects".to_string()), "{names:?}");
        assert!(names.contains(&"Projects.2026".to_string()), "{names:?}");
        assert_eq!(
            f.run(b"a2 CREATE Projects\r\n"),
            ["a2 NO [ALREADYEXISTS] Projects already exists\r\n"]
        );
        assert_eq!(
            f.run(b"a3 CREATE inbox\r\n"),
            ["a3 NO INBOX always exists\r\n"]
        );
        assert_eq!(
            f.run(b"a4 CREATE a..b\r\n"),
            ["a4 NO `a..b` is not a usable mailbox name\r\n"]
        );
        // Not modified UTF-7.
        assert_eq!(
            f.run(b"a5 CREATE &Jjo\r\n"),
            ["a5 NO not a valid mailbox name\r\n"]
        );
    }

    #[test]
    fn names_travel_in_modified_utf7() {
        let mut f = Fixture::logged_in(0);
        assert_eq!(
            f.run(b"a1 CREATE Entw&APw-rfe\r\n"),
            ["a1 OK CREATE completed\r\n"]
        );
        assert_eq!(f.mailbox("Entwürfe").name, "Entwürfe");
        assert_eq!(
            f.run(b"a2 LIST \"\" Entw*\r\n"),
            [
                "* LIST () \".\" Entw&APw-rfe\r\n",
                "a2 OK LIST completed\r\n"
            ]
        );
    }

    #[test]
    fn delete_refusals() {
        let mut f = Fixture::logged_in(0);
        f.run(b"a0 CREATE Projects.2026\r\n");
        assert_eq!(
            f.run(b"a1 DELETE Nowhere\r\n"),
            ["a1 NO [NONEXISTENT] no such mailbox\r\n"]
        );
        assert_eq!(
            f.run(b"a2 DELETE &Jjo\r\n"),
            ["a2 NO [NONEXISTENT] no such mailbox\r\n"]
        );
        assert_eq!(
            f.run(b"a3 DELETE INBOX\r\n"),
            ["a3 NO INBOX cannot be deleted\r\n"]
        );
        assert_eq!(
            f.run(b"a4 DELETE Projects\r\n"),
            ["a4 NO [INUSE] delete the mailboxes inside it first\r\n"]
        );
        f.run(b"a5 SELECT Projects.2026\r\n");
        assert_eq!(
            f.run(b"a6 DELETE Projects.2026\r\n"),
            ["a6 NO close the mailbox before deleting it\r\n"]
        );
        f.run(b"a7 UNSELECT\r\n");
        assert_eq!(
            f.run(b"a8 DELETE Projects.2026\r\n"),
            ["a8 OK DELETE completed\r\n"]
        );
        assert_eq!(
            f.run(b"a9 DELETE Projects\r\n"),
            ["a9 OK DELETE completed\r\n"]
        );
        assert_eq!(
            f.run(b"b1 LIST \"\" Projects*\r\n"),
            ["b1 OK LIST completed\r\n"]
        );
    }

    #[test]
    fn delete_keeps_a_mailbox_with_mail_waiting_for_replay() {
        let mut f = Fixture::logged_in(0);
        f.run(b"a0 CREATE Held\r\n");
        let owner = Address::parse(USER).unwrap();
        f.store
            .deliver(NewMessage::new(owner, "Held", message(1), Class::Diverted))
            .unwrap();
        assert_eq!(
            f.run(b"a1 DELETE Held\r\n"),
            ["a1 NO [INUSE] 1 message(s) in it still have to go back to your mail server\r\n"]
        );
    }

    #[test]
    fn rename_moves_the_hierarchy_and_refuses_clashes() {
        let mut f = Fixture::logged_in(0);
        f.run(b"a0 CREATE Projects.2026\r\n");
        let uidvalidity = f.mailbox("Projects.2026").uidvalidity;
        assert_eq!(
            f.run(b"a1 RENAME Projects Work\r\n"),
            ["a1 OK RENAME completed\r\n"]
        );
        assert_eq!(f.mailbox("Work.2026").uidvalidity, uidvalidity);
        assert_eq!(
            f.run(b"a2 RENAME Nowhere Else\r\n"),
            ["a2 NO [NONEXISTENT] no such mailbox\r\n"]
        );
        assert_eq!(
            f.run(b"a3 RENAME Work Archive\r\n"),
            ["a3 NO [ALREADYEXISTS] Archive already exists\r\n"]
        );
        assert_eq!(
            f.run(b"a4 RENAME INBOX Old\r\n"),
            ["a4 NO renaming INBOX is not supported; create a mailbox and move the mail\r\n"]
        );
        assert_eq!(
            f.run(b"a5 RENAME Work inbox\r\n"),
            ["a5 NO [ALREADYEXISTS] INBOX exists\r\n"]
        );
        assert_eq!(
            f.run(b"a6 RENAME Work a..b\r\n"),
            ["a6 NO `a..b` is not a usable mailbox name\r\n"]
        );
        assert_eq!(
            f.run(b"a7 RENAME Work &Jjo\r\n"),
            ["a7 NO not a valid mailbox name\r\n"]
        );
    }

    #[test]
    fn status_counts_without_selecting() {
        let mut f = Fixture::logged_in(3);
        f.run(b"a0 SELECT INBOX\r\n");
        f.run(b"a0 STORE 1 +FLAGS.SILENT (\\Seen \\Deleted)\r\n");
        f.run(b"a0 UNSELECT\r\n");
        let inbox = f.mailbox("INBOX");
        assert_eq!(
            f.run(
                b"a1 STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED \
                  HIGHESTMODSEQ)\r\n"
            ),
            [
                format!(
                    "* STATUS INBOX (MESSAGES 3 RECENT 0 UIDNEXT 4 UIDVALIDITY {} UNSEEN 2 \
                     DELETED 1 HIGHESTMODSEQ {})\r\n",
                    inbox.uidvalidity, inbox.highest_modseq
                ),
                "a1 OK STATUS completed\r\n".into()
            ]
        );
        assert_eq!(
            f.run(b"a2 STATUS Nowhere (MESSAGES)\r\n"),
            ["a2 NO [NONEXISTENT] no such mailbox\r\n"]
        );
    }

    #[test]
    fn mailbox_commands_report_news_of_the_selected_mailbox_first() {
        let mut f = Fixture::selected(2);
        f.deliver("INBOX", 3);
        assert_eq!(
            f.run(b"a1 CREATE Projects\r\n"),
            ["* 3 EXISTS\r\n", "a1 OK CREATE completed\r\n"]
        );
        f.deliver("INBOX", 4);
        assert_eq!(
            f.run(b"a2 CREATE Projects\r\n"),
            [
                "* 4 EXISTS\r\n",
                "a2 NO [ALREADYEXISTS] Projects already exists\r\n"
            ]
        );
    }
}

mod select {
    use super::*;

    const FLAGS: &str = "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n";

    #[test]
    fn select_reports_the_mailbox() {
        let mut f = Fixture::logged_in(2);
        let inbox = f.mailbox("INBOX");
        assert_eq!(
            f.run(b"a1 SELECT INBOX\r\n"),
            [
                FLAGS.to_string(),
                "* 2 EXISTS\r\n".into(),
                "* 0 RECENT\r\n".into(),
                format!("* OK [UIDVALIDITY {}] UIDs valid\r\n", inbox.uidvalidity),
                "* OK [UIDNEXT 3] predicted next UID\r\n".into(),
                "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] \
                 flags permitted\r\n"
                    .into(),
                format!(
                    "* OK [HIGHESTMODSEQ {}] highest modseq\r\n",
                    inbox.highest_modseq
                ),
                "* OK [UNSEEN 1] first unseen\r\n".into(),
                "a1 OK [READ-WRITE] SELECT completed\r\n".into(),
            ]
        );
        assert!(f.session.is_selected());
    }

    #[test]
    fn examine_is_read_only_and_an_empty_mailbox_has_no_unseen() {
        let mut f = Fixture::logged_in(0);
        let archive = f.mailbox("Archive");
        assert_eq!(
            f.run(b"a1 EXAMINE Archive\r\n"),
            [
                FLAGS.to_string(),
                "* 0 EXISTS\r\n".into(),
                "* 0 RECENT\r\n".into(),
                format!("* OK [UIDVALIDITY {}] UIDs valid\r\n", archive.uidvalidity),
                "* OK [UIDNEXT 1] predicted next UID\r\n".into(),
                "* OK [PERMANENTFLAGS ()] flags permitted\r\n".into(),
                "* OK [HIGHESTMODSEQ 1] highest modseq\r\n".into(),
                "a1 OK [READ-ONLY] SELECT completed\r\n".into(),
            ]
        );
    }

    #[test]
    fn a_failed_select_leaves_no_mailbox_selected() {
        let mut f = Fixture::selected(1);
        assert_eq!(
            f.run(b"a1 SELECT Nowhere\r\n"),
            ["a1 NO [NONEXISTENT] no such mailbox\r\n"]
        );
        assert!(!f.session.is_selected());
        assert_eq!(
            f.run(b"a2 FETCH 1 FLAGS\r\n"),
            ["a2 BAD select a mailbox first\r\n"]
        );
    }

    #[test]
    fn the_condstore_parameter_turns_condstore_on_and_others_are_refused() {
        let mut f = Fixture::logged_in(1);
        assert_eq!(
            f.run(b"a1 SELECT INBOX (QRESYNC (1 1))\r\n"),
            ["a1 BAD only the CONDSTORE parameter is supported\r\n"]
        );
        assert!(!f.session.is_selected());
        let select = f.run(b"a2 SELECT INBOX (CONDSTORE)\r\n");
        assert_eq!(
            select.last().unwrap(),
            "a2 OK [READ-WRITE] SELECT completed\r\n"
        );
        let modseq = f.messages("INBOX")[0].modseq;
        assert_eq!(
            f.run(b"a3 FETCH 1 UID\r\n")[0],
            format!("* 1 FETCH (UID 1 MODSEQ ({modseq}))\r\n")
        );
    }

    #[test]
    fn close_expunges_silently_unless_read_only() {
        let mut f = Fixture::selected(2);
        f.run(b"a1 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n");
        f.run(b"a2 EXAMINE INBOX\r\n");
        assert_eq!(f.run(b"a3 CLOSE\r\n"), ["a3 OK CLOSE completed\r\n"]);
        assert_eq!(f.messages("INBOX").len(), 2);
        assert!(!f.session.is_selected());

        f.run(b"a4 SELECT INBOX\r\n");
        assert_eq!(f.run(b"a5 CLOSE\r\n"), ["a5 OK CLOSE completed\r\n"]);
        let left: Vec<u32> = f.messages("INBOX").iter().map(|m| m.uid).collect();
        assert_eq!(left, [2]);
        assert_eq!(
            f.run(b"a6 CLOSE\r\n"),
            ["a6 BAD select a mailbox first\r\n"]
        );
    }

    #[test]
    fn unselect_leaves_deleted_messages() {
        let mut f = Fixture::selected(2);
        f.run(b"a1 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n");
        assert_eq!(f.run(b"a2 UNSELECT\r\n"), ["a2 OK UNSELECT completed\r\n"]);
        assert_eq!(f.messages("INBOX").len(), 2);
        assert!(!f.session.is_selected() && f.session.is_authenticated());
    }

    #[test]
    fn noop_reports_new_mail_flag_changes_and_expunges_by_others() {
        let mut f = Fixture::selected(2);
        assert_eq!(f.run(b"a1 NOOP\r\n"), ["a1 OK NOOP completed\r\n"]);
        f.deliver("INBOX", 3);
        assert_eq!(
            f.run(b"a2 NOOP\r\n"),
            ["* 3 EXISTS\r\n", "a2 OK NOOP completed\r\n"]
        );
        let mut other = f.other_session();
        exchange(&mut other, b"b1 SELECT INBOX\r\n");
        exchange(&mut other, b"b2 STORE 1 +FLAGS.SILENT (\\Flagged)\r\n");
        assert_eq!(
            f.run(b"a3 CHECK\r\n"),
            [
                "* 1 FETCH (UID 1 FLAGS (\\Flagged))\r\n",
                "a3 OK NOOP completed\r\n"
            ]
        );
        exchange(&mut other, b"b3 STORE 2 +FLAGS.SILENT (\\Deleted)\r\n");
        exchange(&mut other, b"b4 EXPUNGE\r\n");
        assert_eq!(
            f.run(b"a4 NOOP\r\n"),
            ["* 2 EXPUNGE\r\n", "a4 OK NOOP completed\r\n"]
        );
    }

    #[test]
    fn a_selected_mailbox_deleted_by_another_session_says_bye() {
        let mut f = Fixture::logged_in(0);
        f.run(b"a1 CREATE Projects\r\n");
        f.run(b"a2 SELECT Projects\r\n");
        let mut other = f.other_session();
        let (deleted, _) = exchange(&mut other, b"b1 DELETE Projects\r\n");
        assert_eq!(deleted, ["b1 OK DELETE completed\r\n"]);
        assert_eq!(
            f.run(b"a3 NOOP\r\n"),
            [
                "* BYE the selected mailbox was deleted\r\n",
                "a3 OK NOOP completed\r\n"
            ]
        );
    }
}

mod fetch {
    use super::*;

    /// Message `index` of INBOX as stored (the store adds a header), as a literal.
    fn literal(f: &Fixture, index: usize) -> String {
        let bytes = String::from_utf8(f.stored("INBOX", index)).unwrap();
        format!("{{{}}}\r\n{bytes}", bytes.len())
    }

    #[test]
    fn attributes_without_the_message() {
        let mut f = Fixture::selected(2);
        let size = f.stored("INBOX", 0).len();
        assert_eq!(f.messages("INBOX")[0].size, size as u64);
        assert_eq!(
            f.run(b"a1 FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE)\r\n"),
            [
                format!(
                    "* 1 FETCH (FLAGS () UID 1 RFC822.SIZE {size} INTERNALDATE \
                     \"24-Nov-2026 10:00:00 +0000\")\r\n"
                ),
                format!(
                    "* 2 FETCH (FLAGS () UID 2 RFC822.SIZE {size} INTERNALDATE \
                     \"24-Nov-2026 10:00:00 +0000\")\r\n"
                ),
                "a1 OK FETCH completed\r\n".into(),
            ]
        );
        assert_eq!(f.messages("INBOX")[0].internal_date, DATE);
        // UID FETCH puts UID first.
        assert_eq!(
            f.run(b"a2 UID FETCH 2 FLAGS\r\n"),
            [
                "* 2 FETCH (UID 2 FLAGS ())\r\n",
                "a2 OK FETCH completed\r\n"
            ]
        );
    }

    #[test]
    fn body_sets_seen_and_reports_it_peek_does_not() {
        let mut f = Fixture::selected(2);
        assert_eq!(
            f.run(b"a1 FETCH 2 BODY.PEEK[HEADER.FIELDS (SUBJECT)]\r\n"),
            [
                "* 2 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {22}\r\nSubject: message 2\r\n\r\n)\r\n",
                "a1 OK FETCH completed\r\n"
            ]
        );
        assert_eq!(
            f.run(b"a2 FETCH 1 BODY[]\r\n"),
            [
                format!("* 1 FETCH (BODY[] {} FLAGS (\\Seen))\r\n", literal(&f, 0)),
                "a2 OK FETCH completed\r\n".into()
            ]
        );
        let seen: Vec<bool> = f
            .messages("INBOX")
            .iter()
            .map(|m| m.flags.contains(lifeboat_mailstore::Flags::SEEN))
            .collect();
        assert_eq!(seen, [true, false]);
        // Already seen: no FLAGS unless asked.
        assert_eq!(
            f.run(b"a3 FETCH 1 RFC822\r\n"),
            [
                format!("* 1 FETCH (RFC822 {})\r\n", literal(&f, 0)),
                "a3 OK FETCH completed\r\n".into()
            ]
        );
    }

    #[test]
    fn examine_never_sets_seen() {
        let mut f = Fixture::logged_in(1);
        f.run(b"a1 EXAMINE INBOX\r\n");
        assert_eq!(
            f.run(b"a2 FETCH 1 BODY[TEXT]\r\n"),
            [
                "* 1 FETCH (BODY[TEXT] {8}\r\nbody 1\r\n)\r\n",
                "a2 OK FETCH completed\r\n"
            ]
        );
        assert!(f.messages("INBOX")[0].flags == lifeboat_mailstore::Flags::empty());
    }

    #[test]
    fn sequence_numbers_past_the_end_are_bad_uids_past_the_end_name_nothing() {
        let mut f = Fixture::selected(2);
        assert_eq!(
            f.run(b"a1 FETCH 3 FLAGS\r\n"),
            ["a1 BAD invalid message sequence number\r\n"]
        );
        assert_eq!(
            f.run(b"a2 FETCH 1:3 FLAGS\r\n"),
            ["a2 BAD invalid message sequence number\r\n"]
        );
        assert_eq!(
            f.run(b"a3 UID FETCH 9 FLAGS\r\n"),
            ["a3 OK FETCH completed\r\n"]
        );
        let mut empty = Fixture::logged_in(0);
        empty.run(b"a4 SELECT Archive\r\n");
        assert_eq!(
            empty.run(b"a5 FETCH 1 FLAGS\r\n"),
            ["a5 BAD invalid message sequence number\r\n"]
        );
        assert_eq!(
            empty.run(b"a6 UID FETCH 1:* FLAGS\r\n"),
            ["a6 OK FETCH completed\r\n"]
        );
    }

    #[test]
    fn changedsince_and_modseq() {
        let mut f = Fixture::selected(2);
        let before = f.mailbox("INBOX").highest_modseq;
        f.run(b"a1 STORE 2 +FLAGS.SILENT (\\Answered)\r\n");
        let modseq = f.messages("INBOX")[1].modseq;
        assert!(modseq > before);
        assert_eq!(
            f.run(format!("a2 FETCH 1:* FLAGS (CHANGEDSINCE {before})\r\n").as_bytes()),
            [
                format!("* 2 FETCH (FLAGS (\\Answered) MODSEQ ({modseq}))\r\n"),
                "a2 OK FETCH completed\r\n".into()
            ]
        );
        // CHANGEDSINCE turned CONDSTORE on for the session.
        let first = f.messages("INBOX")[0].modseq;
        assert_eq!(
            f.run(b"a3 FETCH 1 UID\r\n")[0],
            format!("* 1 FETCH (UID 1 MODSEQ ({first}))\r\n")
        );
        assert_eq!(
            f.run(b"a4 UID FETCH 1:* FLAGS (CHANGEDSINCE 1 VANISHED)\r\n"),
            ["a4 BAD QRESYNC is not enabled\r\n"]
        );
    }

    #[test]
    fn asking_for_modseq_turns_condstore_on() {
        let mut f = Fixture::selected(1);
        let modseq = f.messages("INBOX")[0].modseq;
        assert_eq!(
            f.run(b"a1 FETCH 1 (MODSEQ)\r\n"),
            [
                format!("* 1 FETCH (MODSEQ ({modseq}))\r\n"),
                "a1 OK FETCH completed\r\n".into()
            ]
        );
        assert_eq!(
            f.run(b"a2 FETCH 1 FLAGS\r\n")[0],
            format!("* 1 FETCH (FLAGS () MODSEQ ({modseq}))\r\n")
        );
    }

    #[test]
    fn a_message_file_that_cannot_be_read_is_a_server_bug() {
        let mut f = Fixture::selected(1);
        let owner = lifeboat_mailstore::Address::parse(USER).unwrap();
        let dir = f.store.folder_dir(&owner, "INBOX");
        for sub in ["cur", "new"] {
            for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
                std::fs::remove_file(entry.unwrap().path()).unwrap();
            }
        }
        assert_eq!(
            f.run(b"a1 FETCH 1 BODY.PEEK[]\r\n"),
            ["a1 NO [SERVERBUG] cannot read a message\r\n"]
        );
        // What the index knows is still served.
        assert_eq!(f.run(b"a2 FETCH 1 UID\r\n")[0], "* 1 FETCH (UID 1)\r\n");
    }

    #[test]
    fn new_mail_is_reported_but_expunges_wait_for_a_later_command() {
        let mut f = Fixture::selected(2);
        let mut other = f.other_session();
        exchange(&mut other, b"b1 SELECT INBOX\r\n");
        exchange(&mut other, b"b2 STORE 2 +FLAGS.SILENT (\\Deleted)\r\n");
        exchange(&mut other, b"b3 EXPUNGE\r\n");
        f.deliver("INBOX", 3);
        assert_eq!(
            f.run(b"a1 FETCH 2 UID\r\n"),
            [
                "* 2 FETCH (UID 2)\r\n",
                "* 3 EXISTS\r\n",
                "a1 OK FETCH completed\r\n"
            ]
        );
        assert_eq!(
            f.run(b"a2 NOOP\r\n"),
            ["* 2 EXPUNGE\r\n", "a2 OK NOOP completed\r\n"]
        );
    }
}

mod store {
    use super::*;

    #[test]
    fn add_remove_and_replace_flags_and_keywords() {
        let mut f = Fixture::selected(2);
        assert_eq!(
            f.run(b"a1 STORE 1 +FLAGS (\\Seen)\r\n"),
            [
                "* 1 FETCH (FLAGS (\\Seen))\r\n",
                "a1 OK STORE completed\r\n"
            ]
        );
        assert_eq!(
            f.run(b"a2 STORE 1 FLAGS ($Work \\Draft)\r\n"),
            [
                "* 1 FETCH (FLAGS (\\Draft $Work))\r\n",
                "a2 OK STORE completed\r\n"
            ]
        );
        // Keywords compare without case.
        assert_eq!(
            f.run(b"a3 STORE 1 -FLAGS ($work)\r\n"),
            [
                "* 1 FETCH (FLAGS (\\Draft))\r\n",
                "a3 OK STORE completed\r\n"
            ]
        );
        assert_eq!(
            f.run(b"a4 UID STORE 2 +FLAGS (\\Answered $Later)\r\n"),
            [
                "* 2 FETCH (UID 2 FLAGS (\\Answered $Later))\r\n",
                "a4 OK STORE completed\r\n"
            ]
        );
        let second = &f.messages("INBOX")[1];
        assert_eq!(second.keywords, ["$Later"]);
        assert!(second.flags.contains(lifeboat_mailstore::Flags::ANSWERED));
    }

    #[test]
    fn silent_stores_report_their_change_as_news() {
        let mut f = Fixture::selected(1);
        // Known defect, kept as it is: RFC 3501 §6.4.6 says .SILENT sends no untagged
        // FETCH, but the session's own change comes back as news of the mailbox.
        assert_eq!(
            f.run(b"a1 STORE 1 +FLAGS.SILENT (\\Flagged)\r\n"),
            [
                "* 1 FETCH (UID 1 FLAGS (\\Flagged))\r\n",
                "a1 OK STORE completed\r\n"
            ]
        );
        assert!(
            f.messages("INBOX")[0]
                .flags
                .contains(lifeboat_mailstore::Flags::FLAGGED)
        );
    }

    #[test]
    fn others_changes_come_first() {
        let mut f = Fixture::selected(2);
        let mut other = f.other_session();
        exchange(&mut other, b"b1 SELECT INBOX\r\n");
        exchange(&mut other, b"b2 STORE 2 +FLAGS.SILENT (\\Flagged)\r\n");
        assert_eq!(
            f.run(b"a1 STORE 1 +FLAGS (\\Seen)\r\n"),
            [
                "* 2 FETCH (UID 2 FLAGS (\\Flagged))\r\n",
                "* 1 FETCH (FLAGS (\\Seen))\r\n",
                "a1 OK STORE completed\r\n"
            ]
        );
    }

    #[test]
    fn refusals() {
        let mut f = Fixture::selected(2);
        assert_eq!(
            f.run(b"a1 STORE 3 +FLAGS (\\Seen)\r\n"),
            ["a1 BAD invalid message sequence number\r\n"]
        );
        assert_eq!(
            f.run(b"a2 STORE 1 +FLAGS (\\Recent)\r\n"),
            ["a2 BAD that system flag cannot be stored\r\n"]
        );
        f.run(b"a3 EXAMINE INBOX\r\n");
        assert_eq!(
            f.run(b"a4 STORE 1 +FLAGS (\\Seen)\r\n"),
            ["a4 NO [READ-ONLY] mailbox is read-only\r\n"]
        );
        assert!(
            f.messages("INBOX")
                .iter()
                .all(|m| m.flags == lifeboat_mailstore::Flags::empty())
        );
    }

    #[test]
    fn unchangedsince_leaves_newer_messages_alone() {
        let mut f = Fixture::selected(2);
        let since = f.mailbox("INBOX").highest_modseq;
        f.run(b"a1 STORE 2 +FLAGS.SILENT (\\Answered)\r\n");
        let stored =
            f.run(format!("a2 STORE 1:2 (UNCHANGEDSINCE {since}) +FLAGS (\\Seen)\r\n").as_bytes());
        let modseq = f.messages("INBOX")[0].modseq;
        assert_eq!(
            stored,
            [
                format!("* 1 FETCH (FLAGS (\\Seen) MODSEQ ({modseq}))\r\n"),
                "a2 OK [MODIFIED 2] conditional STORE failed for some messages\r\n".into()
            ]
        );
        assert!(
            !f.messages("INBOX")[1]
                .flags
                .contains(lifeboat_mailstore::Flags::SEEN)
        );
    }
}

mod copy {
    use super::*;
    use lifeboat_mailstore::{Class, Flags};

    #[test]
    fn copy_keeps_flags_keywords_and_dates_and_answers_copyuid() {
        let mut f = Fixture::selected(2);
        f.run(b"a0 STORE 2 +FLAGS.SILENT (\\Flagged $Work)\r\n");
        let archive = f.mailbox("Archive").uidvalidity;
        assert_eq!(
            f.run(b"a1 COPY 1:2 Archive\r\n"),
            [format!(
                "a1 OK [COPYUID {archive} 1:2 1:2] COPY completed\r\n"
            )]
        );
        let copies = f.messages("Archive");
        assert_eq!(copies.len(), 2);
        assert!(copies.iter().all(|m| m.class == Class::Other));
        assert_eq!(copies[1].flags, Flags::FLAGGED);
        assert_eq!(copies[1].keywords, ["$Work"]);
        assert_eq!(copies[0].internal_date, DATE);
        assert_eq!(f.messages("INBOX").len(), 2);
        assert_eq!(
            f.run(b"a2 UID COPY 2 Archive\r\n"),
            [format!("a2 OK [COPYUID {archive} 2 3] COPY completed\r\n")]
        );
    }

    #[test]
    fn copy_refusals() {
        let mut f = Fixture::selected(2);
        assert_eq!(
            f.run(b"a1 COPY 1 Nowhere\r\n"),
            ["a1 NO [TRYCREATE] no such mailbox\r\n"]
        );
        assert_eq!(
            f.run(b"a2 COPY 3 Archive\r\n"),
            ["a2 BAD invalid message sequence number\r\n"]
        );
        // UIDs that do not exist copy nothing, successfully.
        assert_eq!(
            f.run(b"a3 UID COPY 9 Archive\r\n"),
            ["a3 OK COPY completed\r\n"]
        );
        assert!(f.messages("Archive").is_empty());
    }

    #[test]
    fn move_expunges_the_originals() {
        let mut f = Fixture::selected(3);
        let archive = f.mailbox("Archive").uidvalidity;
        assert_eq!(
            f.run(b"a1 MOVE 1,3 Archive\r\n"),
            [
                format!("* OK [COPYUID {archive} 1,3 1:2] moved\r\n"),
                "* 3 EXPUNGE\r\n".into(),
                "* 1 EXPUNGE\r\n".into(),
                "a1 OK MOVE completed\r\n".into()
            ]
        );
        let left: Vec<u32> = f.messages("INBOX").iter().map(|m| m.uid).collect();
        assert_eq!(left, [2]);
        assert_eq!(
            f.run(b"a2 UID MOVE 9 Archive\r\n"),
            ["a2 OK MOVE completed\r\n"]
        );
    }

    #[test]
    fn a_read_only_mailbox_copies_but_does_not_move() {
        let mut f = Fixture::logged_in(1);
        f.run(b"a0 EXAMINE INBOX\r\n");
        assert_eq!(
            f.run(b"a1 UID MOVE 1 Archive\r\n"),
            ["a1 NO [READ-ONLY] mailbox is read-only\r\n"]
        );
        let archive = f.mailbox("Archive").uidvalidity;
        assert_eq!(
            f.run(b"a2 COPY 1 Archive\r\n"),
            [format!("a2 OK [COPYUID {archive} 1 1] COPY completed\r\n")]
        );
        assert_eq!(f.messages("INBOX").len(), 1);
    }
}

mod append {
    use super::*;
    use lifeboat_mailstore::{Class, Flags, OutageState};

    const MESSAGE: &str = "Subject: appended\r\nMessage-ID: <ap@example.test>\r\n\r\nhello\r\n";

    fn append(mailbox: &str, flags: &str) -> Vec<u8> {
        format!(
            "a1 APPEND {mailbox} {flags} \"20-Nov-2026 12:00:00 +0100\" {{{}+}}\r\n{MESSAGE}\r\n",
            MESSAGE.len()
        )
        .into_bytes()
    }

    #[test]
    fn append_stores_flags_keywords_and_date() {
        let mut f = Fixture::logged_in(0);
        let archive = f.mailbox("Archive").uidvalidity;
        assert_eq!(
            f.run(&append("Archive", "(\\Seen $Work)")),
            [format!(
                "a1 OK [APPENDUID {archive} 1] APPEND completed\r\n"
            )]
        );
        let stored = &f.messages("Archive")[0];
        assert_eq!(stored.flags, Flags::SEEN);
        assert_eq!(stored.keywords, ["$Work"]);
        assert_eq!(stored.internal_date, 1_795_172_400);
        assert_eq!(stored.class, Class::Other);
    }

    #[test]
    fn append_needs_an_existing_mailbox_and_a_login() {
        let mut f = Fixture::logged_in(0);
        assert_eq!(
            f.run(&append("Nowhere", "()")),
            ["a1 NO [TRYCREATE] no such mailbox\r\n"]
        );
        let mut f = Fixture::new();
        assert_eq!(f.run(&append("INBOX", "()")), ["a1 BAD log in first\r\n"]);
    }

    #[test]
    fn append_to_the_selected_mailbox_reports_it() {
        let mut f = Fixture::selected(2);
        let inbox = f.mailbox("INBOX").uidvalidity;
        assert_eq!(
            f.run(&append("INBOX", "()")),
            [
                "* 3 EXISTS\r\n".to_string(),
                format!("a1 OK [APPENDUID {inbox} 3] APPEND completed\r\n")
            ]
        );
    }

    #[test]
    fn append_to_sent_in_an_outage_is_a_sent_copy_once() {
        let mut f = Fixture::logged_in(0);
        f.run(&append("Sent", "(\\Seen)"));
        f.store
            .set_origin_state("main", OutageState::Outage, "test", true)
            .unwrap();
        f.run(&append("Sent", "(\\Seen)"));
        f.run(&append("Sent", "(\\Seen)"));
        let sent = f.messages("Sent");
        let classes: Vec<Class> = sent.iter().map(|m| m.class).collect();
        assert_eq!(classes, [Class::Other, Class::Sent, Class::Other]);
        assert_eq!(sent[1].envelope_from.as_deref(), Some(USER));
        assert_eq!(sent[1].envelope_to, [USER]);
    }
}

mod expunge {
    use super::*;

    #[test]
    fn expunge_removes_deleted_messages_highest_first() {
        let mut f = Fixture::selected(3);
        f.run(b"a0 STORE 1,3 +FLAGS.SILENT (\\Deleted)\r\n");
        assert_eq!(
            f.run(b"a1 EXPUNGE\r\n"),
            [
                "* 3 EXPUNGE\r\n",
                "* 1 EXPUNGE\r\n",
                "a1 OK EXPUNGE completed\r\n"
            ]
        );
        let left: Vec<u32> = f.messages("INBOX").iter().map(|m| m.uid).collect();
        assert_eq!(left, [2]);
        assert_eq!(f.run(b"a2 EXPUNGE\r\n"), ["a2 OK EXPUNGE completed\r\n"]);
    }

    #[test]
    fn uid_expunge_removes_only_the_named() {
        let mut f = Fixture::selected(3);
        f.run(b"a0 STORE 1:3 +FLAGS.SILENT (\\Deleted)\r\n");
        assert_eq!(
            f.run(b"a1 UID EXPUNGE 2:3\r\n"),
            [
                "* 3 EXPUNGE\r\n",
                "* 2 EXPUNGE\r\n",
                "a1 OK EXPUNGE completed\r\n"
            ]
        );
        let left: Vec<u32> = f.messages("INBOX").iter().map(|m| m.uid).collect();
        assert_eq!(left, [1]);
    }

    #[test]
    fn expunge_goes_by_the_current_flags() {
        let mut f = Fixture::selected(2);
        let mut other = f.other_session();
        exchange(&mut other, b"b1 SELECT INBOX\r\n");
        exchange(&mut other, b"b2 STORE 2 +FLAGS.SILENT (\\Deleted)\r\n");
        assert_eq!(
            f.run(b"a1 EXPUNGE\r\n"),
            ["* 2 EXPUNGE\r\n", "a1 OK EXPUNGE completed\r\n"]
        );
    }

    #[test]
    fn a_read_only_mailbox_is_not_expunged() {
        let mut f = Fixture::selected(1);
        f.run(b"a0 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n");
        f.run(b"a1 EXAMINE INBOX\r\n");
        assert_eq!(
            f.run(b"a2 EXPUNGE\r\n"),
            ["a2 NO [READ-ONLY] mailbox is read-only\r\n"]
        );
        assert_eq!(
            f.run(b"a3 UID EXPUNGE 1\r\n"),
            ["a3 NO [READ-ONLY] mailbox is read-only\r\n"]
        );
        assert_eq!(f.messages("INBOX").len(), 1);
    }
}

mod search {
    use super::*;

    #[test]
    fn search_by_flags_and_text() {
        let mut f = Fixture::selected(3);
        f.run(b"a0 STORE 2 +FLAGS.SILENT (\\Seen)\r\n");
        assert_eq!(
            f.run(b"a1 SEARCH ALL\r\n"),
            ["* SEARCH 1 2 3\r\n", "a1 OK SEARCH completed\r\n"]
        );
        assert_eq!(
            f.run(b"a2 SEARCH UNSEEN\r\n"),
            ["* SEARCH 1 3\r\n", "a2 OK SEARCH completed\r\n"]
        );
        assert_eq!(
            f.run(b"a3 UID SEARCH SUBJECT \"message 2\"\r\n"),
            ["* SEARCH 2\r\n", "a3 OK SEARCH completed\r\n"]
        );
        assert_eq!(
            f.run(b"a4 SEARCH CHARSET utf-8 BODY \"body 3\"\r\n"),
            ["* SEARCH 3\r\n", "a4 OK SEARCH completed\r\n"]
        );
        assert_eq!(
            f.run(b"a5 SEARCH DELETED\r\n"),
            ["* SEARCH\r\n", "a5 OK SEARCH completed\r\n"]
        );
    }

    #[test]
    fn search_sequence_numbers_follow_expunges() {
        let mut f = Fixture::selected(3);
        f.run(b"a0 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n");
        f.run(b"a1 EXPUNGE\r\n");
        assert_eq!(
            f.run(b"a2 SEARCH SUBJECT \"message 3\"\r\n"),
            ["* SEARCH 2\r\n", "a2 OK SEARCH completed\r\n"]
        );
        assert_eq!(
            f.run(b"a3 UID SEARCH 2\r\n"),
            ["* SEARCH 3\r\n", "a3 OK SEARCH completed\r\n"]
        );
    }

    #[test]
    fn only_utf8_and_ascii_charsets() {
        let mut f = Fixture::selected(1);
        assert_eq!(
            f.run(b"a1 SEARCH CHARSET KOI8-R ALL\r\n"),
            ["a1 NO [BADCHARSET (UTF-8 US-ASCII)] only UTF-8 and US-ASCII searches\r\n"]
        );
        f.run(b"a2 UNSELECT\r\n");
        assert_eq!(
            f.run(b"a3 SEARCH ALL\r\n"),
            ["a3 BAD select a mailbox first\r\n"]
        );
    }
}
