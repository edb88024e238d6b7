# Files the messages a user sent during an outage into their Sent folder when
# `lifeboat replay` hands them back to the origin. Replay delivers each sent copy from
# the sender to the sender's own mailbox, with `X-Lifeboat-Replay-ID` and
# `X-Lifeboat-Sent` (a value keyed with Lifeboat's secret); without a rule like this
# they land in the INBOX.
#
# What makes this rule safe: Sieve cannot check the keyed value, so the rule trusts the
# fields' presence. That is sound only because Lifeboat's milter removes every
# X-Lifeboat-* field from mail arriving at the gateway, so such fields reach the
# origin only from replay. Install it only where the origin accepts mail from the
# gateway and from Lifeboat's replay alone; any other way in (a second MX, internal
# senders submitting straight to the origin) must strip X-Lifeboat-* fields too (e.g.
# Postfix `header_checks = regexp:` with `/^X-Lifeboat-/ IGNORE`), or this rule lets a
# sender file mail into a user's Sent folder, marked read. It also requires the
# envelope sender to be the recipient, as it is for every replayed sent copy.
#
# Dovecot (Pigeonhole): install as a global before-script, e.g.
#   plugin { sieve_before = /etc/dovecot/sieve/lifeboat-sent.sieve }
# and compile it with `sievec`. Other servers with Sieve take the same script.
require ["fileinto", "mailbox", "imap4flags", "envelope", "variables"];

if envelope :matches "to" "*" {
    set "recipient" "${1}";
}
if allof (exists ["X-Lifeboat-Sent", "X-Lifeboat-Replay-ID"],
          envelope :is "from" "${recipient}") {
    addflag "\\Seen";
    fileinto :create "Sent";
    stop;
}
