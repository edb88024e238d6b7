//! Self-checking synthetic messages, for the durability tests and store benchmarks: a
//! reader can tell from the bytes alone whether a message is complete.

/// Message number `seq`: an `X-Seq` header and a body whose length depends on `seq`,
/// closed by a fixed trailer.
pub fn message(seq: u64) -> Vec<u8> {
    let mut text =
        format!("From: writer@example.test\r\nSubject: message {seq}\r\nX-Seq: {seq}\r\n\r\n");
    for line in 0..body_lines(seq) {
        text.push_str(&format!(
            "line {line} of message {seq} ........................................\r\n"
        ));
    }
    text.push_str(&format!("end of message {seq}\r\n"));
    text.into_bytes()
}

/// The `seq` of a complete synthetic message (trace headers in front are fine); `None`
/// when the bytes are torn, truncated or not a synthetic message.
pub fn verify(content: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(content).ok()?;
    let seq: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("X-Seq: "))?
        .trim()
        .parse()
        .ok()?;
    let complete = text.ends_with(&format!("end of message {seq}\r\n"))
        && text.matches(&format!(" of message {seq} ....")).count() as u64 == body_lines(seq);
    complete.then_some(seq)
}

fn body_lines(seq: u64) -> u64 {
    20 + seq % 200
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_truncation() {
        let full = message(7);
        assert_eq!(verify(&full), Some(7));
        assert_eq!(verify(&full[..full.len() - 3]), None);
        assert_eq!(verify(&full[..full.len() / 2]), None);
    }
}
