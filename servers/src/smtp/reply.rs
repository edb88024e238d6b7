//! An SMTP reply as Lifeboat's clients see it: the code, its class, and the text as the
//! server wrote it (for logs, notices and clients we pass it on to).

use std::fmt;

use smtp_proto::Response;

/// RFC 5321 §4.2.1: what the first digit of a reply code means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyClass {
    /// 2xx: done.
    Positive,
    /// 3xx: go on (354 after DATA).
    Intermediate,
    /// 4xx: not now; the same request may work later.
    Transient,
    /// 5xx (and anything unknown): never.
    Permanent,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// The whole reply on one line, code and enhanced status included, e.g.
    /// `450 4.2.0 mailbox busy`; continuation lines are joined with a space.
    pub text: String,
}

impl Reply {
    pub fn class(&self) -> ReplyClass {
        match self.code / 100 {
            2 => ReplyClass::Positive,
            3 => ReplyClass::Intermediate,
            4 => ReplyClass::Transient,
            _ => ReplyClass::Permanent,
        }
    }

    pub fn is_positive(&self) -> bool {
        self.class() == ReplyClass::Positive
    }
}

/// smtp-proto splits the enhanced status code off the text; logs and clients want it
/// back.
impl From<Response<String>> for Reply {
    fn from(response: Response<String>) -> Reply {
        let [class, subject, detail] = response.esc;
        let message = response.message.trim_end().replace("\r\n", " ");
        let text = if class == 0 {
            format!("{} {message}", response.code)
        } else {
            format!("{} {class}.{subject}.{detail} {message}", response.code)
        };
        Reply {
            code: response.code,
            text,
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, esc: [u8; 3], message: &str) -> Reply {
        Reply::from(Response {
            code,
            esc,
            message: message.to_string(),
        })
    }

    #[test]
    fn classes_follow_the_first_digit() {
        assert_eq!(reply(250, [2, 0, 0], "ok").class(), ReplyClass::Positive);
        assert_eq!(
            reply(354, [0, 0, 0], "go").class(),
            ReplyClass::Intermediate
        );
        assert_eq!(
            reply(451, [4, 3, 0], "later").class(),
            ReplyClass::Transient
        );
        assert_eq!(reply(550, [5, 1, 1], "no").class(), ReplyClass::Permanent);
        assert_eq!(reply(999, [0, 0, 0], "?").class(), ReplyClass::Permanent);
    }

    #[test]
    fn text_keeps_the_enhanced_code_and_joins_lines() {
        assert_eq!(
            reply(450, [4, 2, 0], "mailbox\r\nbusy\r\n").text,
            "450 4.2.0 mailbox busy"
        );
        assert_eq!(reply(220, [0, 0, 0], "hello").text, "220 hello");
    }
}
