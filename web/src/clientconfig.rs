//! Mail-client autoconfiguration documents, from the listener settings: Thunderbird's
//! `config-v1.1.xml` (also read by Evolution, K-9/Thunderbird for Android), Outlook's
//! Autodiscover POX answer, and an Apple configuration profile (`.mobileconfig`).
//! Pure functions of their inputs; the routes serve them.

use sha2::{Digest, Sha256};

use crate::MailPorts;

/// Escapes text for XML element content and attribute values.
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// One server a client may use: the implicit-TLS port first, else STARTTLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub port: u16,
    /// TLS from the first byte (else STARTTLS).
    pub implicit_tls: bool,
}

fn endpoint(tls: Option<u16>, plain: Option<u16>) -> Option<Endpoint> {
    tls.map(|port| Endpoint {
        port,
        implicit_tls: true,
    })
    .or(plain.map(|port| Endpoint {
        port,
        implicit_tls: false,
    }))
}

pub fn imap(ports: &MailPorts) -> Option<Endpoint> {
    endpoint(ports.imaps, ports.imap)
}

pub fn pop3(ports: &MailPorts) -> Option<Endpoint> {
    endpoint(ports.pop3s, ports.pop3)
}

pub fn smtp(ports: &MailPorts) -> Option<Endpoint> {
    endpoint(ports.submissions, ports.submission)
}

/// Thunderbird's autoconfig document (config-v1.1) for `domain`, served by `host`.
pub fn thunderbird(host: &str, domain: &str, ports: &MailPorts) -> String {
    let server = |tag: &str, kind: &str, end: Endpoint| {
        let socket = if end.implicit_tls { "SSL" } else { "STARTTLS" };
        format!(
            "    <{tag} type=\"{kind}\">\n      <hostname>{host}</hostname>\n      <port>{port}</port>\n      \
             <socketType>{socket}</socketType>\n      <authentication>password-cleartext</authentication>\n      \
             <username>%EMAILADDRESS%</username>\n    </{tag}>\n",
            host = xml(host),
            port = end.port,
        )
    };
    let mut servers = String::new();
    if let Some(end) = imap(ports) {
        servers.push_str(&server("incomingServer", "imap", end));
    }
    if let Some(end) = pop3(ports) {
        servers.push_str(&server("incomingServer", "pop3", end));
    }
    if let Some(end) = smtp(ports) {
        servers.push_str(&server("outgoingServer", "smtp", end));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n  \
         <emailProvider id=\"{domain}\">\n    <domain>{domain}</domain>\n    \
         <displayName>{domain} (Lifeboat continuity)</displayName>\n    \
         <displayShortName>{domain}</displayShortName>\n{servers}  </emailProvider>\n</clientConfig>\n",
        domain = xml(domain),
    )
}

/// The address in an Outlook Autodiscover POX request, if it has one.
pub fn outlook_request_address(body: &str) -> Option<String> {
    let lower = body.to_ascii_lowercase();
    let start = lower.find("<emailaddress>")? + "<emailaddress>".len();
    let end = start + lower[start..].find("</emailaddress>")?;
    let address = body[start..end].trim();
    (!address.is_empty() && address.len() <= 320).then(|| address.to_string())
}

/// Outlook's Autodiscover POX answer (responseschema 2006a) for `address`.
pub fn outlook(host: &str, address: &str, ports: &MailPorts) -> String {
    let protocol = |kind: &str, end: Endpoint| {
        let security = if end.implicit_tls {
            "<SSL>on</SSL>".to_string()
        } else {
            "<SSL>on</SSL>\n        <Encryption>TLS</Encryption>".to_string()
        };
        format!(
            "      <Protocol>\n        <Type>{kind}</Type>\n        <Server>{host}</Server>\n        \
             <Port>{port}</Port>\n        <DomainRequired>off</DomainRequired>\n        \
             <LoginName>{login}</LoginName>\n        <SPA>off</SPA>\n        {security}\n        \
             <AuthRequired>on</AuthRequired>\n      </Protocol>\n",
            host = xml(host),
            port = end.port,
            login = xml(address),
        )
    };
    let mut protocols = String::new();
    if let Some(end) = imap(ports) {
        protocols.push_str(&protocol("IMAP", end));
    }
    if let Some(end) = pop3(ports) {
        protocols.push_str(&protocol("POP3", end));
    }
    if let Some(end) = smtp(ports) {
        protocols.push_str(&protocol("SMTP", end));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n  \
         <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\">\n    \
         <Account>\n      <AccountType>email</AccountType>\n      <Action>settings</Action>\n{protocols}    \
         </Account>\n  </Response>\n</Autodiscover>\n"
    )
}

/// A stable UUID for a profile payload, so installing again replaces the old one.
fn uuid(seed: &str) -> String {
    let d = Sha256::digest(seed.as_bytes());
    let hex: String = d[..16].iter().map(|b| format!("{b:02X}")).collect();
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// An Apple configuration profile with one mail account for `address` (IMAP or POP3
/// in, SMTP out; the password is asked on the device).
pub fn mobileconfig(host: &str, address: &str, ports: &MailPorts) -> Option<String> {
    let (kind, incoming) = match (imap(ports), pop3(ports)) {
        (Some(end), _) => ("EmailTypeIMAP", end),
        (None, Some(end)) => ("EmailTypePOP", end),
        (None, None) => return None,
    };
    let outgoing = smtp(ports)?;
    let bool_tag = |b: bool| if b { "<true/>" } else { "<false/>" };
    let (host, address_x) = (xml(host), xml(address));
    let reverse_host: String = host.split('.').rev().collect::<Vec<_>>().join(".");
    Some(format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>PayloadContent</key>
  <array>
    <dict>
      <key>EmailAccountDescription</key><string>{address_x} (continuity)</string>
      <key>EmailAccountName</key><string>{address_x}</string>
      <key>EmailAccountType</key><string>{kind}</string>
      <key>EmailAddress</key><string>{address_x}</string>
      <key>IncomingMailServerAuthentication</key><string>EmailAuthPassword</string>
      <key>IncomingMailServerHostName</key><string>{host}</string>
      <key>IncomingMailServerPortNumber</key><integer>{in_port}</integer>
      <key>IncomingMailServerUseSSL</key>{in_ssl}
      <key>IncomingMailServerUsername</key><string>{address_x}</string>
      <key>OutgoingMailServerAuthentication</key><string>EmailAuthPassword</string>
      <key>OutgoingMailServerHostName</key><string>{host}</string>
      <key>OutgoingMailServerPortNumber</key><integer>{out_port}</integer>
      <key>OutgoingMailServerUseSSL</key>{out_ssl}
      <key>OutgoingMailServerUsername</key><string>{address_x}</string>
      <key>OutgoingPasswordSameAsIncomingPassword</key><true/>
      <key>PayloadDescription</key><string>Mail account for {address_x}</string>
      <key>PayloadDisplayName</key><string>{address_x}</string>
      <key>PayloadIdentifier</key><string>{reverse_host}.lifeboat.mail.{account_uuid}</string>
      <key>PayloadType</key><string>com.apple.mail.managed</string>
      <key>PayloadUUID</key><string>{account_uuid}</string>
      <key>PayloadVersion</key><integer>1</integer>
    </dict>
  </array>
  <key>PayloadDisplayName</key><string>Continuity mail ({host})</string>
  <key>PayloadIdentifier</key><string>{reverse_host}.lifeboat.{profile_uuid}</string>
  <key>PayloadRemovalDisallowed</key><false/>
  <key>PayloadType</key><string>Configuration</string>
  <key>PayloadUUID</key><string>{profile_uuid}</string>
  <key>PayloadVersion</key><integer>1</integer>
</dict>
</plist>
"#,
        in_port = incoming.port,
        in_ssl = bool_tag(incoming.implicit_tls),
        out_port = outgoing.port,
        out_ssl = bool_tag(outgoing.implicit_tls),
        account_uuid = uuid(&format!("account:{address}:{host}")),
        profile_uuid = uuid(&format!("profile:{address}:{host}")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports() -> MailPorts {
        MailPorts {
            imap: Some(143),
            imaps: Some(993),
            pop3: None,
            pop3s: Some(995),
            submission: Some(587),
            submissions: None,
        }
    }

    #[test]
    fn thunderbird_gets_config_v1_1_with_the_live_ports() {
        let doc = thunderbird("mail.example.com", "example.com", &ports());
        assert!(doc.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">"
        ));
        assert!(doc.contains("<emailProvider id=\"example.com\">"));
        assert!(doc.contains("<incomingServer type=\"imap\">\n      <hostname>mail.example.com</hostname>\n      <port>993</port>\n      <socketType>SSL</socketType>"));
        assert!(doc.contains("<incomingServer type=\"pop3\">"));
        assert!(doc.contains("<outgoingServer type=\"smtp\">"));
        assert!(doc.contains("<port>587</port>\n      <socketType>STARTTLS</socketType>"));
        assert!(doc.contains("<username>%EMAILADDRESS%</username>"));
    }

    #[test]
    fn outlook_pox_request_and_answer() {
        let request = r#"<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>alice@example.com</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>"#;
        assert_eq!(
            outlook_request_address(request).as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(outlook_request_address("<x/>"), None);
        let doc = outlook("mail.example.com", "alice@example.com", &ports());
        assert!(doc.contains("responseschema/2006a"));
        assert!(doc.contains(
            "<Type>IMAP</Type>\n        <Server>mail.example.com</Server>\n        <Port>993</Port>"
        ));
        assert!(doc.contains("<Type>SMTP</Type>"));
        assert!(
            doc.contains("<Encryption>TLS</Encryption>"),
            "STARTTLS on 587"
        );
        assert!(doc.contains("<LoginName>alice@example.com</LoginName>"));
    }

    #[test]
    fn apple_profiles_are_stable_and_escaped() {
        let a = mobileconfig("h.example.com", "a&b@example.com", &ports()).unwrap();
        assert!(a.contains("a&amp;b@example.com") && !a.contains("a&b@"));
        assert!(a.contains("<key>IncomingMailServerPortNumber</key><integer>993</integer>"));
        assert_eq!(
            a,
            mobileconfig("h.example.com", "a&b@example.com", &ports()).unwrap()
        );
        assert!(mobileconfig("h", "a@b", &MailPorts::default()).is_none());
    }
}
