//! Small helpers for Lifeboat's SMTP clients (probes, submission relay, notices).

use smtp_proto::Response;

/// A reply as the server wrote it: smtp-proto splits the enhanced status code off the
/// text, and logs and clients want it back.
pub fn reply_text(reply: &Response<String>) -> String {
    let [class, subject, detail] = reply.esc;
    let message = reply.message.trim_end().replace("\r\n", " ");
    if class == 0 {
        format!("{} {message}", reply.code)
    } else {
        format!("{} {class}.{subject}.{detail} {message}", reply.code)
    }
}
