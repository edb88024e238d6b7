# Files the messages a user sent during an outage into their Sent folder when
# `lifeboat replay` hands them back to the origin. Replay delivers each sent copy to the
# sender's own mailbox with the header `X-Lifeboat-Sent: yes`; without a rule like this
# they land in the INBOX.
#
# Dovecot (Pigeonhole): install as a global before-script, e.g.
#   plugin { sieve_before = /etc/dovecot/sieve/lifeboat-sent.sieve }
# and compile it with `sievec`. Other servers with Sieve take the same script.
require ["fileinto", "mailbox", "imap4flags"];

if header :is "X-Lifeboat-Sent" "yes" {
    addflag "\\Seen";
    fileinto :create "Sent";
    stop;
}
