//! Reading the CSV file of `lifeboat user import FILE.csv`.
//!
//! ```text
//! address,password,password_hash,aliases,active,alternate_email
//! alice@example.com,correct horse,,"a.smith@example.com sales@example.com",yes,alice@home.example
//! bob@example.com,,{SHA512-CRYPT}$6$…,,true,
//! ```
//!
//! The header line names the columns, in any order. `address` is required, and so is one of
//! `password` (plaintext, hashed here with argon2id) and `password_hash` (an existing hash,
//! see [`password::normalise_imported`]); each row fills exactly one of the two. `aliases`
//! (separated by spaces or commas), `active` (`true`/`false`/`yes`/`no`/`1`/`0`, empty means
//! true) and `alternate_email` are optional, as columns and as values.
//!
//! This module checks the file on its own terms (well-formed values, every address and alias
//! owned by one user only). Checks against the store and the configured domains are the
//! caller's.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use lifeboat_mailstore::address::Address;
use lifeboat_mailstore::password::{self, PasswordError};

/// One user from the file, ready to be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    /// The 1-based line of the file the row starts on.
    pub line: usize,
    pub address: Address,
    /// In stored form: `password::hash(password)` or `password::normalise_imported(hash)`.
    pub password_hash: String,
    pub aliases: Vec<Address>,
    pub active: bool,
    pub alternate_email: Option<Address>,
}

/// Why the file was refused. The message never contains a plaintext password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ImportError {
    /// The 1-based line of the file; header problems are reported on the header's line.
    pub line: usize,
    pub message: String,
}

/// The column names, as the header must spell them (case and surrounding spaces aside).
const ADDRESS: &str = "address";
const PASSWORD: &str = "password";
const PASSWORD_HASH: &str = "password_hash";
const ALIASES: &str = "aliases";
const ACTIVE: &str = "active";
const ALTERNATE_EMAIL: &str = "alternate_email";
const ALL_COLUMNS: [&str; 6] = [
    ADDRESS,
    PASSWORD,
    PASSWORD_HASH,
    ALIASES,
    ACTIVE,
    ALTERNATE_EMAIL,
];

/// Parses and checks the whole file; the first problem found refuses it.
///
/// Blank lines (and rows whose fields are all empty) are skipped. A file with a header and no
/// users gives an empty list.
pub fn parse_user_csv(text: &str) -> Result<Vec<ImportRow>, ImportError> {
    // Spreadsheets save UTF-8 with a byte-order mark, which would otherwise become part of
    // the first column's name.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        // The header is read as an ordinary record so that it gets a line number, and so
        // that a short or long row is reported here, with a hint, not as a bare csv error.
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());

    let mut lines = LineCounter::new(text);
    let mut columns: Option<Columns> = None;
    let mut owners = Owners::default();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|err| ImportError {
            line: lines.line_at(err.position()),
            message: format!("cannot read the file as CSV: {}", describe_csv_error(&err)),
        })?;
        let line = lines.line_at(record.position());
        if record.iter().all(|field| field.trim().is_empty()) {
            continue;
        }
        match &columns {
            None => columns = Some(Columns::from_header(&record, line)?),
            Some(columns) => rows.push(
                check_row(columns, &record, line, &mut owners)
                    .map_err(|message| ImportError { line, message })?,
            ),
        }
    }
    if columns.is_none() {
        return Err(ImportError {
            line: 1,
            message: format!(
                "the file is empty; the first line must name the columns, e.g. `{}`",
                ALL_COLUMNS.join(",")
            ),
        });
    }

    // argon2id is slow by design, so plaintext passwords are hashed only after every row has
    // passed the cheap checks: a mistake on the last line is reported at once, not after
    // hashing all the lines before it.
    Ok(rows.into_iter().map(CheckedRow::into_import_row).collect())
}

/// Turns csv byte positions into 1-based line numbers.
///
/// The csv crate's own `Position::line` is wrong after blank lines, CRLF line ends and
/// quoted fields that span lines. Its byte offset is right, except that it may point at the
/// line end left over from the previous record, so that is skipped before counting.
struct LineCounter<'a> {
    text: &'a str,
    /// Where the last count stopped, and the line number there.
    offset: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> LineCounter<'a> {
        LineCounter {
            text,
            offset: 0,
            line: 1,
        }
    }

    /// The line a record starting at `position` begins on. Records come in file order, so
    /// counting resumes from the previous call instead of starting over.
    fn line_at(&mut self, position: Option<&csv::Position>) -> usize {
        let Some(position) = position else {
            return self.line;
        };
        let bytes = self.text.as_bytes();
        let mut start =
            usize::try_from(position.byte()).map_or(bytes.len(), |b| b.min(bytes.len()));
        while matches!(bytes.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        if start >= self.offset {
            self.line += bytes[self.offset..start]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            self.offset = start;
        }
        self.line
    }
}

/// Describes a csv error without quoting the record it failed on, which may hold a password.
fn describe_csv_error(err: &csv::Error) -> String {
    match err.kind() {
        csv::ErrorKind::Utf8 { err, .. } => format!("invalid UTF-8 in field {}", err.field() + 1),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("a row has {len} fields, the one before has {expected_len}"),
        _ => "malformed CSV".to_string(),
    }
}

/// Where each column is in a row.
#[derive(Debug)]
struct Columns {
    address: usize,
    password: Option<usize>,
    password_hash: Option<usize>,
    aliases: Option<usize>,
    active: Option<usize>,
    alternate_email: Option<usize>,
    /// How many fields every row must have.
    width: usize,
}

impl Columns {
    fn from_header(header: &csv::StringRecord, line: usize) -> Result<Columns, ImportError> {
        let fail = |message: String| ImportError { line, message };
        let mut positions: HashMap<&'static str, usize> = HashMap::new();
        for (index, name) in header.iter().enumerate() {
            let name = name.trim();
            let known = ALL_COLUMNS
                .into_iter()
                .find(|column| column.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    fail(format!(
                        "unknown column `{name}` in the header; the columns are {}",
                        ALL_COLUMNS.join(", ")
                    ))
                })?;
            if positions.insert(known, index).is_some() {
                return Err(fail(format!(
                    "column `{known}` appears twice in the header"
                )));
            }
        }
        let address = *positions.get(ADDRESS).ok_or_else(|| {
            fail(format!(
                "the header has no `{ADDRESS}` column (found: {})",
                header.iter().map(str::trim).collect::<Vec<_>>().join(",")
            ))
        })?;
        let password = positions.get(PASSWORD).copied();
        let password_hash = positions.get(PASSWORD_HASH).copied();
        if password.is_none() && password_hash.is_none() {
            return Err(fail(format!(
                "the header needs a `{PASSWORD}` or a `{PASSWORD_HASH}` column, or both"
            )));
        }
        Ok(Columns {
            address,
            password,
            password_hash,
            aliases: positions.get(ALIASES).copied(),
            active: positions.get(ACTIVE).copied(),
            alternate_email: positions.get(ALTERNATE_EMAIL).copied(),
            width: header.len(),
        })
    }
}

/// How a row gives its password.
enum Secret {
    /// To be hashed once the whole file has been checked.
    Plaintext(String),
    /// Already in stored form.
    Stored(String),
}

/// A row that passed every check; only the hashing of a plaintext password is left.
struct CheckedRow {
    line: usize,
    address: Address,
    secret: Secret,
    aliases: Vec<Address>,
    active: bool,
    alternate_email: Option<Address>,
}

impl CheckedRow {
    fn into_import_row(self) -> ImportRow {
        let password_hash = match self.secret {
            Secret::Plaintext(plaintext) => password::hash(&plaintext),
            Secret::Stored(stored) => stored,
        };
        ImportRow {
            line: self.line,
            address: self.address,
            password_hash,
            aliases: self.aliases,
            active: self.active,
            alternate_email: self.alternate_email,
        }
    }
}

/// Checks one data row; the error is the message without the line number.
fn check_row(
    columns: &Columns,
    record: &csv::StringRecord,
    line: usize,
    owners: &mut Owners,
) -> Result<CheckedRow, String> {
    if record.len() != columns.width {
        // An argon2 PHC string holds commas (`m=…,t=…,p=…`), so a hash pasted unquoted is
        // the likeliest cause; say so rather than leave the admin counting commas.
        let hint = if record.iter().any(|field| field.contains("$argon2")) {
            "argon2 hashes contain commas, so quote the password_hash field"
        } else {
            "quote fields that contain commas"
        };
        return Err(format!(
            "this row has {} fields but the header has {}; {hint}",
            record.len(),
            columns.width
        ));
    }
    let field = |column: Option<usize>| column.and_then(|index| record.get(index)).unwrap_or("");
    let address_text = field(Some(columns.address)).trim();
    if address_text.is_empty() {
        return Err(format!("the `{ADDRESS}` field is empty"));
    }
    let address = Address::parse(address_text).map_err(|err| format!("{ADDRESS}: {err}"))?;

    let secret = check_secret(field(columns.password), field(columns.password_hash))?;

    let mut aliases = Vec::new();
    for alias_text in field(columns.aliases)
        // Space-separated per the format; commas too, because a list pasted from elsewhere
        // is often written `a@x, b@x`.
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|text| !text.is_empty())
    {
        let alias = Address::parse(alias_text).map_err(|err| format!("{ALIASES}: {err}"))?;
        aliases.push(alias);
    }

    let active = parse_active(field(columns.active))?;

    let alternate_text = field(columns.alternate_email).trim();
    let alternate_email = if alternate_text.is_empty() {
        None
    } else {
        let alternate =
            Address::parse(alternate_text).map_err(|err| format!("{ALTERNATE_EMAIL}: {err}"))?;
        // The alternate address receives the outage notice; one that lands in the user's own
        // (unreachable) mailbox would never be read.
        if same_mailbox(&alternate, &address) || aliases.iter().any(|a| same_mailbox(a, &alternate))
        {
            return Err(format!(
                "{ALTERNATE_EMAIL} `{alternate}` is the user's own address or alias; it must be \
                 an address outside this mailbox"
            ));
        }
        Some(alternate)
    };

    owners.claim(&address, line, &address, OwnerRole::User)?;
    for alias in &aliases {
        owners.claim(alias, line, &address, OwnerRole::Alias)?;
    }

    Ok(CheckedRow {
        line,
        address,
        secret,
        aliases,
        active,
        alternate_email,
    })
}

/// Checks that exactly one of `password` and `password_hash` is given.
///
/// The plaintext password is never put into a message, not even when it is rejected.
fn check_secret(plaintext: &str, hash: &str) -> Result<Secret, String> {
    match (plaintext.trim().is_empty(), hash.trim().is_empty()) {
        (false, false) => Err(format!(
            "both `{PASSWORD}` and `{PASSWORD_HASH}` are filled in; give exactly one"
        )),
        (true, true) => Err(format!(
            "neither `{PASSWORD}` nor `{PASSWORD_HASH}` is filled in; give exactly one"
        )),
        (false, true) => {
            // Trimming would silently change the password and keeping the spaces would
            // surprise whoever typed `alice@x, secret`; refusing is the only safe reading.
            if plaintext.trim() != plaintext {
                return Err(format!(
                    "the `{PASSWORD}` field begins or ends with whitespace, which is ambiguous \
                     in CSV; remove it, or give a `{PASSWORD_HASH}` instead"
                ));
            }
            if plaintext.chars().any(char::is_control) {
                return Err(format!(
                    "the `{PASSWORD}` field contains a control character (such as a line \
                     break), which no mail client can send"
                ));
            }
            Ok(Secret::Plaintext(plaintext.to_string()))
        }
        (true, false) => password::normalise_imported(hash)
            .map(Secret::Stored)
            .map_err(|err| {
                let hint = match &err {
                    PasswordError::UnknownScheme { scheme }
                        if scheme == "{PLAIN}" || scheme == "{CLEARTEXT}" =>
                    {
                        format!("; put plaintext passwords in the `{PASSWORD}` column instead")
                    }
                    _ => String::new(),
                };
                format!("{PASSWORD_HASH}: {err}{hint}")
            }),
    }
}

fn parse_active(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(format!(
            "`{ACTIVE}` must be true, false, yes, no, 1, 0 or empty (meaning true), not `{}`",
            text.trim()
        )),
    }
}

/// The store compares addresses with SQLite's `COLLATE NOCASE` (ASCII case only), so the
/// file is checked the same way: `Bob@x` and `bob@x` are one mailbox.
fn mailbox_key(address: &Address) -> String {
    address.as_str().to_ascii_lowercase()
}

fn same_mailbox(a: &Address, b: &Address) -> bool {
    mailbox_key(a) == mailbox_key(b)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OwnerRole {
    User,
    Alias,
}

/// Who in the file has claimed an address so far.
struct Owner {
    line: usize,
    /// The user the address belongs to (itself, for a user's own address).
    user: Address,
    role: OwnerRole,
}

/// Every address and alias seen so far, so that each belongs to one user only.
#[derive(Default)]
struct Owners(HashMap<String, Owner>);

impl Owners {
    fn claim(
        &mut self,
        address: &Address,
        line: usize,
        user: &Address,
        role: OwnerRole,
    ) -> Result<(), String> {
        let owner = match self.0.entry(mailbox_key(address)) {
            Entry::Vacant(vacant) => {
                vacant.insert(Owner {
                    line,
                    user: user.clone(),
                    role,
                });
                return Ok(());
            }
            Entry::Occupied(occupied) => occupied.into_mut(),
        };
        let what = match role {
            OwnerRole::User => "address",
            OwnerRole::Alias => "alias",
        };
        let taken_by = match (owner.role, owner.line == line) {
            (OwnerRole::User, true) => "the user's own address".to_string(),
            (OwnerRole::Alias, true) => "listed twice in this row".to_string(),
            (OwnerRole::User, false) => format!("already a user on line {}", owner.line),
            (OwnerRole::Alias, false) => format!(
                "already an alias of `{}` on line {}",
                owner.user, owner.line
            ),
        };
        Err(format!(
            "{what} `{address}` is {taken_by}; an address may belong to one user only"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Hashes for the tests, from `openssl passwd` (cheap to verify, unlike argon2id).
    /// `openssl passwd -6 -salt BobFixtureSalt bob-sha512-secret`
    const BOB_SHA512: &str = "$6$BobFixtureSalt$wjolnGocBcU5cXt2NLkTWEzqUZpv3EAkz4g6u1o4ikn.rTsZ/VgsZoX/kfKeVs3bOID1WbHaHOIXGTvfpCord.";
    /// `openssl passwd -5 -salt ErinFixtureSalt erin-sha256-secret`
    const ERIN_SHA256: &str = "$5$ErinFixtureSalt$Slsd.DLjbzHIj/5EmbTXYGXbOjxENQHR8L9vnWzApR7";

    const HEADER: &str = "address,password,password_hash,aliases,active,alternate_email";
    /// A password that must never show up in an error message.
    const SECRET: &str = "Hunter2-do-not-print";

    fn addr(text: &str) -> Address {
        Address::parse(text).expect("test address")
    }

    /// Parses `header` + `rows` (one per line) and expects an error on `line`.
    fn expect_error(header: &str, rows: &[&str], line: usize, needle: &str) -> ImportError {
        let text = std::iter::once(header)
            .chain(rows.iter().copied())
            .collect::<Vec<_>>()
            .join("\n");
        let err = parse_user_csv(&text).expect_err(&text);
        assert_eq!(err.line, line, "{err}");
        assert!(err.message.contains(needle), "{err} lacks {needle:?}");
        assert!(!err.to_string().contains(SECRET), "{err}");
        assert!(err.to_string().starts_with(&format!("line {line}: ")));
        err
    }

    #[test]
    fn good_file_with_reordered_columns_quotes_and_crlf() {
        let text = format!(
            "\u{feff}Active, Address ,password_hash,aliases,password,alternate_email\r\n\
             yes,Alice@Example.TEST,,\"a.smith@example.test  Postmaster@example.test\",\"pa,ss \"\"word\"\"\",alice@home.example\r\n\
             \r\n\
             0,bob@example.test,{BOB_SHA512},,,\r\n\
             ,carol@example.test,\"{{sha256-crypt}}{ERIN_SHA256}\",\"sales@example.test, info@example.test\",,\r\n\
             TRUE,dave@example.test,{{SHA512-CRYPT}}{BOB_SHA512},,,\"\"\r\n\
             \r\n"
        );
        let rows = parse_user_csv(&text).expect("good file");
        assert_eq!(rows.len(), 4);

        let alice = &rows[0];
        assert_eq!(alice.line, 2);
        assert_eq!(alice.address, addr("Alice@example.test"));
        assert!(alice.password_hash.starts_with("{ARGON2ID}$argon2id$"));
        assert!(password::verify(&alice.password_hash, "pa,ss \"word\""));
        assert_eq!(
            alice.aliases,
            vec![
                addr("a.smith@example.test"),
                addr("Postmaster@example.test")
            ]
        );
        assert!(alice.active);
        assert_eq!(alice.alternate_email, Some(addr("alice@home.example")));

        let bob = &rows[1];
        assert_eq!(bob.line, 4, "the blank line 3 still counts");
        assert_eq!(bob.password_hash, format!("{{SHA512-CRYPT}}{BOB_SHA512}"));
        assert!(password::verify(&bob.password_hash, "bob-sha512-secret"));
        assert!(!bob.active);
        assert!(bob.aliases.is_empty());
        assert_eq!(bob.alternate_email, None);

        let carol = &rows[2];
        assert_eq!(carol.line, 5);
        assert_eq!(
            carol.password_hash,
            format!("{{SHA256-CRYPT}}{ERIN_SHA256}")
        );
        assert!(carol.active, "empty active means true");
        assert_eq!(
            carol.aliases,
            vec![addr("sales@example.test"), addr("info@example.test")]
        );

        let dave = &rows[3];
        assert_eq!(dave.line, 6);
        assert!(dave.active);
        assert_eq!(dave.alternate_email, None);
    }

    #[test]
    fn active_values() {
        for (text, expected) in [
            ("true", true),
            ("Yes", true),
            ("1", true),
            ("", true),
            (" no ", false),
            ("FALSE", false),
            ("0", false),
        ] {
            assert_eq!(parse_active(text), Ok(expected), "{text:?}");
        }
        for bad in ["y", "n", "2", "enabled", "truee"] {
            assert!(parse_active(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn minimal_header_and_no_users() {
        let rows = parse_user_csv(&format!(
            "address,password_hash\nbob@example.test,{BOB_SHA512}\n"
        ))
        .expect("minimal file");
        assert_eq!(rows.len(), 1);
        assert!(rows[0].active);
        assert!(rows[0].aliases.is_empty());
        assert_eq!(parse_user_csv(&format!("{HEADER}\n\n")), Ok(Vec::new()));
    }

    #[test]
    fn empty_file_is_refused_on_line_1() {
        for text in ["", "\n\n", "\u{feff}", " , \r\n"] {
            let err = parse_user_csv(text).expect_err(text);
            assert_eq!(err.line, 1);
            assert!(err.message.contains("empty"), "{err}");
        }
    }

    #[test]
    fn header_problems_are_on_the_header_line() {
        expect_error("password,aliases", &[], 1, "no `address` column");
        expect_error(
            "address,aliases,active",
            &[],
            1,
            "`password` or a `password_hash`",
        );
        expect_error(
            "address,password,alias",
            &["alice@example.test,x,"],
            1,
            "unknown column `alias`",
        );
        expect_error("address,password,Address", &[], 1, "appears twice");
        // A header after blank lines is reported where it is.
        let err = parse_user_csv("\n\naddress,aliases\n").expect_err("no password column");
        assert_eq!(err.line, 3);
    }

    #[test]
    fn bad_rows_report_their_line() {
        let good = format!("alice@example.test,{SECRET},,,,");
        expect_error(
            HEADER,
            &[&good, "not-an-address,pw,,,,"],
            3,
            "not a valid address",
        );
        expect_error(HEADER, &[&good, ",pw,,,,"], 3, "`address` field is empty");
        expect_error(
            HEADER,
            &[&good, "bob@example.test,,{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==,,,"],
            3,
            "{MD5}",
        );
        expect_error(
            HEADER,
            &[&good, "bob@example.test,,$6$salt$tooshort,,,"],
            3,
            "malformed {SHA512-CRYPT} hash",
        );
        let plain = expect_error(
            HEADER,
            &[&good, "bob@example.test,,{PLAIN}secret,,,"],
            3,
            "{PLAIN}",
        );
        assert!(plain.message.contains("`password` column"), "{plain}");
        expect_error(
            HEADER,
            &[&good, &format!("bob@example.test,{SECRET},{BOB_SHA512},,,")],
            3,
            "both",
        );
        expect_error(HEADER, &[&good, "bob@example.test,,,,,"], 3, "neither");
        expect_error(
            HEADER,
            &[&good, &format!("bob@example.test,{SECRET},,,maybe,")],
            3,
            "`active` must be",
        );
        expect_error(
            HEADER,
            &[&good, &format!("bob@example.test,{SECRET},,bad alias,,")],
            3,
            "aliases:",
        );
        expect_error(
            HEADER,
            &[&good, &format!("bob@example.test,{SECRET},,,,nobody")],
            3,
            "alternate_email:",
        );
        expect_error(
            HEADER,
            &[&good, &format!("bob@example.test,{SECRET},,,")],
            3,
            "this row has 5 fields",
        );
        expect_error(
            HEADER,
            &[&good, &format!("bob@example.test,{SECRET},,,,,")],
            3,
            "this row has 7 fields",
        );
    }

    #[test]
    fn unquoted_argon2_hash_gets_a_hint() {
        expect_error(
            HEADER,
            &["dave@example.test,,$argon2id$v=19$m=4096,t=2,p=1$c29tZXNhbHR2YWx1ZQ$aGFzaA,,,"],
            2,
            "quote the password_hash field",
        );
    }

    #[test]
    fn plaintext_passwords_are_checked_but_never_echoed() {
        expect_error(
            HEADER,
            &[&format!("alice@example.test,\" {SECRET}\",,,,")],
            2,
            "whitespace",
        );
        expect_error(
            HEADER,
            &[&format!("alice@example.test,\"{SECRET}\nmore\",,,,")],
            2,
            "control character",
        );
    }

    #[test]
    fn an_address_belongs_to_one_user_only() {
        let alice = format!("alice@example.test,{SECRET},,sales@example.test,,");
        expect_error(
            HEADER,
            &[&alice, &format!("ALICE@example.test,{SECRET},,,,")],
            3,
            "already a user on line 2",
        );
        expect_error(
            HEADER,
            &[
                &alice,
                &format!("bob@example.test,{SECRET},,Sales@Example.test,,"),
            ],
            3,
            "already an alias of `alice@example.test` on line 2",
        );
        // An alias equal to another row's address, in either order.
        expect_error(
            HEADER,
            &[
                &alice,
                &format!("bob@example.test,{SECRET},,alice@example.test,,"),
            ],
            3,
            "alias `alice@example.test` is already a user on line 2",
        );
        expect_error(
            HEADER,
            &[&alice, &format!("sales@example.test,{SECRET},,,,")],
            3,
            "address `sales@example.test` is already an alias",
        );
        expect_error(
            HEADER,
            &[&format!("bob@example.test,{SECRET},,bob@example.test,,")],
            2,
            "the user's own address",
        );
        expect_error(
            HEADER,
            &[&format!(
                "bob@example.test,{SECRET},,b@example.test b@example.test,,"
            )],
            2,
            "listed twice",
        );
        expect_error(
            HEADER,
            &[&format!(
                "bob@example.test,{SECRET},,b@example.test,,B@example.test"
            )],
            2,
            "alternate_email `B@example.test` is the user's own address or alias",
        );
    }

    #[test]
    fn a_quoted_multi_line_field_reports_the_line_the_row_starts_on() {
        expect_error(
            HEADER,
            &[
                &format!("alice@example.test,,{BOB_SHA512},\"a@example.test\nb@example.test\",,"),
                "bob@example.test,,,,,",
            ],
            4,
            "neither",
        );
    }

    /// The fixtures the CLI tests use: they must import, and every password in
    /// PASSWORDS.md must log in.
    #[test]
    fn fixture_files() {
        let rows = parse_user_csv(include_str!("../../tests/fixtures/import/good.csv"))
            .expect("good.csv imports");
        let logins = [
            ("alice@example.test", "alice-plain-Pa55", true),
            ("bob@example.test", "bob-sha512-secret", true),
            ("carol@example.test", "carol-bcrypt-secret", true),
            ("dave@example.test", "dave-argon2-secret", true),
            ("erin@example.test", "erin-sha256-secret", false),
        ];
        assert_eq!(rows.len(), logins.len());
        for (row, (address, password, active)) in rows.iter().zip(logins) {
            assert_eq!(row.address, addr(address));
            assert_eq!(row.active, active, "{address}");
            assert!(password::verify(&row.password_hash, password), "{address}");
            assert_eq!(row.address.domain(), "example.test");
            for alias in &row.aliases {
                assert_eq!(alias.domain(), "example.test");
            }
        }

        let err = parse_user_csv(include_str!("../../tests/fixtures/import/bad-row.csv"))
            .expect_err("bad-row.csv is refused");
        assert_eq!(err.line, 5, "{err}");
        assert!(err.message.contains("password_hash"), "{err}");
    }
}
