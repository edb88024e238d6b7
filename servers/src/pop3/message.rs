//! A message as POP3 sends it: CRLF line ends, lines starting with `.` dot-stuffed, and
//! a terminating `.` line (RFC 1939 §3). TOP sends the header, the blank line and the
//! first n body lines.

/// Appends the multi-line body of a RETR (`top_lines: None`) or TOP answer, including
/// the terminating `.` line. The store keeps messages with CRLF already; a bare LF (a
/// file put there by another tool) is sent as CRLF anyway.
pub fn write_message(out: &mut Vec<u8>, content: &[u8], top_lines: Option<u32>) {
    out.reserve(content.len() + content.len() / 64 + 8);
    let mut in_body = false;
    let mut body_lines_left = top_lines;
    let mut rest = content;
    while !rest.is_empty() {
        if in_body && body_lines_left == Some(0) {
            break;
        }
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(end) => (&rest[..end], &rest[end + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
        if in_body {
            if let Some(left) = body_lines_left.as_mut() {
                *left -= 1;
            }
        } else if line.is_empty() {
            in_body = true;
        }
        rest = next;
    }
    out.extend_from_slice(b".\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(content: &[u8], top: Option<u32>) -> String {
        let mut out = Vec::new();
        write_message(&mut out, content, top);
        String::from_utf8(out).unwrap()
    }

    const MESSAGE: &[u8] = b"Subject: s\r\nFrom: a\r\n\r\nline 1\r\n.dot\r\n..two\r\nline 4\r\n";

    #[test]
    fn dot_stuffs_and_terminates() {
        assert_eq!(
            sent(MESSAGE, None),
            "Subject: s\r\nFrom: a\r\n\r\nline 1\r\n..dot\r\n...two\r\nline 4\r\n.\r\n"
        );
        assert_eq!(sent(b".\r\n", None), "..\r\n.\r\n");
        assert_eq!(sent(b"", None), ".\r\n");
    }

    #[test]
    fn bare_lf_and_a_missing_last_line_end_become_crlf() {
        assert_eq!(sent(b"A: b\n\nbody", None), "A: b\r\n\r\nbody\r\n.\r\n");
    }

    #[test]
    fn top_sends_header_blank_line_and_n_body_lines() {
        assert_eq!(sent(MESSAGE, Some(0)), "Subject: s\r\nFrom: a\r\n\r\n.\r\n");
        assert_eq!(
            sent(MESSAGE, Some(2)),
            "Subject: s\r\nFrom: a\r\n\r\nline 1\r\n..dot\r\n.\r\n"
        );
        assert_eq!(sent(MESSAGE, Some(100)), sent(MESSAGE, None));
        // A message without a body: TOP sends the header.
        assert_eq!(sent(b"A: b\r\n", Some(3)), "A: b\r\n.\r\n");
    }
}
