//! POP3 command lines (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH) parsed
//! into [`Command`]s. Pure: no I/O, no state; every input gives a command or an error.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Capa,
    User(String),
    /// The rest of the line after `PASS `: passwords may contain spaces (RFC 1939 §7).
    Pass(String),
    /// `AUTH` alone asks for the mechanism list (pre-CAPA clients); otherwise a
    /// mechanism and maybe an initial response (RFC 5034).
    Auth {
        mechanism: Option<String>,
        initial_response: Option<String>,
    },
    Stls,
    Stat,
    List(Option<u32>),
    Retr(u32),
    Dele(u32),
    Noop,
    Rset,
    Top {
        message: u32,
        lines: u32,
    },
    Uidl(Option<u32>),
    Quit,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    Empty,
    Unknown,
    /// The command exists; its arguments are wrong. Says what was expected.
    Arguments(&'static str),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => f.write_str("empty command"),
            ParseError::Unknown => f.write_str("unknown command"),
            ParseError::Arguments(expected) => write!(f, "syntax: {expected}"),
        }
    }
}

impl Command {
    /// Parses one line without its line end. Keywords are case-insensitive.
    pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches(['\r', '\n']);
        let (keyword, rest) = match line.split_once(' ') {
            Some((keyword, rest)) => (keyword, rest),
            None => (line, ""),
        };
        if keyword.is_empty() {
            return Err(ParseError::Empty);
        }
        let args: Vec<&str> = rest.split_ascii_whitespace().collect();
        let no_args = |command: Command, usage: &'static str| {
            if args.is_empty() {
                Ok(command)
            } else {
                Err(ParseError::Arguments(usage))
            }
        };
        match keyword.to_ascii_uppercase().as_str() {
            "CAPA" => no_args(Command::Capa, "CAPA"),
            "STLS" => no_args(Command::Stls, "STLS"),
            "STAT" => no_args(Command::Stat, "STAT"),
            "NOOP" => no_args(Command::Noop, "NOOP"),
            "RSET" => no_args(Command::Rset, "RSET"),
            "QUIT" => no_args(Command::Quit, "QUIT"),
            "USER" => match args.as_slice() {
                [name] => Ok(Command::User(name.to_string())),
                _ => Err(ParseError::Arguments("USER name")),
            },
            "PASS" if !rest.is_empty() => Ok(Command::Pass(rest.to_string())),
            "PASS" => Err(ParseError::Arguments("PASS password")),
            "AUTH" => match args.as_slice() {
                [] => Ok(Command::Auth {
                    mechanism: None,
                    initial_response: None,
                }),
                [mechanism] => Ok(Command::Auth {
                    mechanism: Some(mechanism.to_ascii_uppercase()),
                    initial_response: None,
                }),
                [mechanism, initial] => Ok(Command::Auth {
                    mechanism: Some(mechanism.to_ascii_uppercase()),
                    initial_response: Some(initial.to_string()),
                }),
                _ => Err(ParseError::Arguments("AUTH mechanism [initial-response]")),
            },
            "LIST" => optional_number(&args, "LIST [msg]").map(Command::List),
            "UIDL" => optional_number(&args, "UIDL [msg]").map(Command::Uidl),
            "RETR" => one_number(&args, "RETR msg").map(Command::Retr),
            "DELE" => one_number(&args, "DELE msg").map(Command::Dele),
            "TOP" => match args.as_slice() {
                [message, lines] => Ok(Command::Top {
                    message: message_number(message).ok_or(ParseError::Arguments("TOP msg n"))?,
                    lines: number(lines).ok_or(ParseError::Arguments("TOP msg n"))?,
                }),
                _ => Err(ParseError::Arguments("TOP msg n")),
            },
            _ => Err(ParseError::Unknown),
        }
    }
}

fn optional_number(args: &[&str], usage: &'static str) -> Result<Option<u32>, ParseError> {
    match args {
        [] => Ok(None),
        [n] => message_number(n)
            .map(Some)
            .ok_or(ParseError::Arguments(usage)),
        _ => Err(ParseError::Arguments(usage)),
    }
}

fn one_number(args: &[&str], usage: &'static str) -> Result<u32, ParseError> {
    match args {
        [n] => message_number(n).ok_or(ParseError::Arguments(usage)),
        _ => Err(ParseError::Arguments(usage)),
    }
}

/// Digits only (no sign, no spaces), fitting in a u32.
fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Message numbers start at 1.
fn message_number(text: &str) -> Option<u32> {
    number(text).filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command, ParseError> {
        Command::parse(line.as_bytes())
    }

    #[test]
    fn keywords_are_case_insensitive_and_arguments_checked() {
        assert_eq!(parse("stat"), Ok(Command::Stat));
        assert_eq!(parse("LiSt 2"), Ok(Command::List(Some(2))));
        assert_eq!(parse("LIST"), Ok(Command::List(None)));
        assert_eq!(parse("UIDL"), Ok(Command::Uidl(None)));
        assert_eq!(
            parse("TOP 1 0"),
            Ok(Command::Top {
                message: 1,
                lines: 0
            })
        );
        assert_eq!(parse("RETR 0"), Err(ParseError::Arguments("RETR msg")));
        assert_eq!(parse("RETR -1"), Err(ParseError::Arguments("RETR msg")));
        assert_eq!(parse("RETR +1"), Err(ParseError::Arguments("RETR msg")));
        assert_eq!(
            parse("RETR 99999999999"),
            Err(ParseError::Arguments("RETR msg"))
        );
        assert_eq!(parse("DELE 1 2"), Err(ParseError::Arguments("DELE msg")));
        assert_eq!(parse("STAT now"), Err(ParseError::Arguments("STAT")));
        assert_eq!(parse("XYZZY"), Err(ParseError::Unknown));
        assert_eq!(parse(""), Err(ParseError::Empty));
        assert_eq!(parse(" STAT"), Err(ParseError::Empty));
    }

    #[test]
    fn passwords_keep_their_spaces() {
        assert_eq!(
            parse("PASS  my secret "),
            Ok(Command::Pass(" my secret ".into()))
        );
        assert_eq!(parse("PASS"), Err(ParseError::Arguments("PASS password")));
        assert_eq!(parse("USER a b"), Err(ParseError::Arguments("USER name")));
    }

    #[test]
    fn auth_forms() {
        assert_eq!(
            parse("AUTH"),
            Ok(Command::Auth {
                mechanism: None,
                initial_response: None
            })
        );
        assert_eq!(
            parse("auth plain AGEAYg=="),
            Ok(Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial_response: Some("AGEAYg==".into())
            })
        );
    }

    #[test]
    fn non_utf8_bytes_do_not_panic() {
        assert!(Command::parse(b"\xff\xfe LIST").is_err());
        assert_eq!(
            Command::parse(b"USER \xff"),
            Ok(Command::User("\u{fffd}".into()))
        );
    }
}
