# Shared by the IMAP benchmarks (bench/imap.sh, bench/imap_stress.sh): a Dovecot 2.3 run
# from its own config in a temp dir (the system's dovecot service and /etc/dovecot are
# not touched). Source it; it defines one function.

# dovecot_write_config DIR IMAP_PORT MAIL_ROOT PASSWD CONNECTIONS [LMTP_PORT]
#   Writes DIR/dovecot.conf: IMAP on 127.0.0.1:IMAP_PORT without TLS, plaintext logins,
#   users from the passwd-file PASSWD, Maildirs under MAIL_ROOT/<domain>/<user> owned by
#   dovecot, room for CONNECTIONS connections (defaults: 100 processes, 10 connections
#   per user and address), and with LMTP_PORT an LMTP listener for deliveries.
dovecot_write_config() {
    local dir=$1 port=$2 mail=$3 passwd=$4 connections=$5 lmtp=${6:-}
    local protocols=imap userdb_extra=""
    if [ -n "$lmtp" ]; then
        protocols="imap lmtp"
        userdb_extra=" allow_all_users=yes" # LMTP asks the userdb alone
    fi
    mkdir -p "$dir/run" "$dir/state"
    cat > "$dir/dovecot.conf" <<CONF
protocols = $protocols
listen = 127.0.0.1
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 1
mail_location = maildir:$mail/%d/%n
default_process_limit = $((connections + 100))
default_client_limit = $((connections * 4 + 1000))
mail_max_userip_connections = $((connections + 100))
passdb {
  driver = passwd-file
  args = $passwd
}
userdb {
  driver = static
  args = uid=dovecot gid=dovecot home=$mail/%d/%n$userdb_extra
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    port = 0
  }
  inet_listener pop3s {
    port = 0
  }
}
CONF
    if [ -n "$lmtp" ]; then
        cat >> "$dir/dovecot.conf" <<CONF
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $lmtp
  }
}
CONF
    fi
}
