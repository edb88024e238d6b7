#!/usr/bin/env bash
# Installs the system packages Lifeboat's tests need (Debian/Ubuntu), without touching
# /etc/postfix: the tests run their own Postfix instances from temp dirs.
set -euo pipefail

# fetchmail, curl and python3 (poplib) are the POP3 tests' clients; curl, isync (mbsync)
# and python3 (imaplib) the IMAP tests';
# libio-socket-ssl-perl lets swaks speak TLS (submission tests); systemd provides
# systemd-analyze (tests/systemd.rs, nothing is started); groff-base and man-db render the
# manual pages (tests/man.rs); dovecot-sieve provides sieve-test, which runs
# contrib/sieve/lifeboat-sent.sieve on replayed mail (tests/replay.rs); chromium,
# chromium-driver and python3-selenium drive a real, headless browser through the web
# portal (tests/web_browser.rs); slapd and ldap-utils are the directory tests' OpenLDAP
# server and its tools, dovecot-imapd their origin IMAP server (each test starts its own
# instance from a temp dir; no system instance is configured or started).
packages=(postfix swaks fetchmail curl isync python3 libio-socket-ssl-perl systemd groff-base man-db
    dovecot-sieve chromium chromium-driver python3-selenium slapd ldap-utils dovecot-imapd)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}" >&2
# "No configuration": Postfix is installed without a main.cf and is not started.
echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
# "Omit OpenLDAP server configuration": no /etc/ldap/slapd.d database, no admin password
# prompt, nothing started.
echo "slapd slapd/no_configuration boolean true" | $sudo debconf-set-selections
# Installing slapd or dovecot would start the system's instance on a machine without
# systemd; a temporary policy-rc.d ("101: action forbidden") keeps every service down.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod 755 /usr/sbin/policy-rc.d
    trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
