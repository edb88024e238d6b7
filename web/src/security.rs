//! What every answer carries and every request is checked for: security headers, the
//! refusal of cross-site state changes, and the facts of the client's connection.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::App;

/// The portal's own pages: only its own scripts, styles, images and frames; no other
/// site may frame them; forms post only here.
pub const APP_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; \
    frame-ancestors 'none'";

/// The longest a request may take, from its header to its answer.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// The connection a request came over, attached by the server to every request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    pub ip: IpAddr,
    /// The connection itself is TLS (the `tls_listen` listener).
    pub tls: bool,
    /// The listener's own address is loopback: only this host can connect (a reverse
    /// proxy, or a user on the machine itself).
    pub loopback_listener: bool,
}

/// A request's client as the portal judges it.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    /// The browser's address: the connection's, or on a loopback listener the one a
    /// reverse proxy passes in `X-Real-IP`, so lockouts count browsers, not the proxy.
    pub ip: IpAddr,
    /// The browser reached this host over TLS: the connection is TLS, or a reverse
    /// proxy on a loopback listener says so (`X-Forwarded-Proto: https`).
    pub secure: bool,
    pub loopback_listener: bool,
}

impl Peer {
    pub fn of(client: Client, headers: &HeaderMap) -> Peer {
        let forwarded = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let proxied = client.loopback_listener;
        let ip = proxied
            .then(|| forwarded("x-real-ip").and_then(|v| v.parse().ok()))
            .flatten()
            .unwrap_or(client.ip);
        let secure = client.tls
            || (proxied
                && forwarded("x-forwarded-proto").is_some_and(|p| p.eq_ignore_ascii_case("https")));
        Peer {
            ip,
            secure,
            loopback_listener: client.loopback_listener,
        }
    }

    /// Logins need TLS, except on a loopback listener (the password never crosses a
    /// network) or with `[auth] allow_plaintext`, as for IMAP, POP3 and submission.
    pub fn may_log_in(&self, allow_plaintext: bool) -> bool {
        self.secure || self.loopback_listener || allow_plaintext
    }
}

impl FromRequestParts<Arc<App>> for Peer {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, _: &Arc<App>) -> Result<Peer, StatusCode> {
        let client = parts
            .extensions
            .get::<Client>()
            .copied()
            .ok_or(StatusCode::INTERNAL_SERVER_ERROR)?;
        Ok(Peer::of(client, &parts.headers))
    }
}

/// Whether a request that changes state comes from a page of another site. Browsers
/// say so in `Sec-Fetch-Site`, which is believed when present. Without it, an `Origin`
/// naming another host is refused. `Origin: null` is what browsers send for a form
/// posted from a page with `Referrer-Policy: no-referrer` (every page here), so it
/// proves nothing either way. Requests with neither (mail clients, curl, old
/// browsers) pass; the CSRF token and the `SameSite=Strict` cookie still guard every
/// logged-in form.
pub fn is_cross_site(headers: &HeaderMap) -> bool {
    let value = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = value("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match (value("origin"), value("host")) {
        (Some("null") | None, _) => false,
        (Some(origin), Some(host)) => {
            let origin_host = origin
                .split_once("://")
                .map(|(_, rest)| rest)
                .unwrap_or(origin);
            !origin_host.eq_ignore_ascii_case(host)
        }
        (Some(_), None) => true,
    }
}

/// Middleware: refuses cross-site POSTs before any handler runs, and puts the security
/// headers on every answer (a route that set its own CSP or framing rule keeps it).
pub async fn guard(request: Request, next: Next) -> Response {
    let secure = request
        .extensions()
        .get::<Client>()
        .map(|client| Peer::of(*client, request.headers()).secure)
        .unwrap_or(false);
    let safe_method = matches!(*request.method(), Method::GET | Method::HEAD);
    let mut response = if !safe_method && is_cross_site(request.headers()) {
        tracing::warn!(path = %request.uri().path(), "web: cross-site request refused");
        (StatusCode::FORBIDDEN, "cross-site requests are refused\n").into_response()
    } else {
        // A request (an upload on a slow line included) may take this long; a client
        // that trickles bytes does not keep its connection and task for ever.
        match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
            Ok(response) => response,
            Err(_) => (StatusCode::REQUEST_TIMEOUT, "the request took too long\n").into_response(),
        }
    };
    let headers = response.headers_mut();
    let mut set_default = |name: header::HeaderName, value: &'static str| {
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    };
    set_default(header::CONTENT_SECURITY_POLICY, APP_CSP);
    set_default(header::X_FRAME_OPTIONS, "DENY");
    set_default(header::CACHE_CONTROL, "no-store");
    set_default(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_default(header::REFERRER_POLICY, "no-referrer");
    set_default(
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set_default(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    if secure {
        set_default(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn cross_site_posts_are_told_apart_from_same_origin_ones() {
        assert!(!is_cross_site(&headers(&[])));
        assert!(!is_cross_site(&headers(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!is_cross_site(&headers(&[
            ("origin", "https://mail.example.com"),
            ("host", "mail.example.com")
        ])));
        assert!(is_cross_site(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "mail.example.com")
        ])));
        // What a browser sends for a form on a no-referrer page of this very site.
        assert!(!is_cross_site(&headers(&[
            ("sec-fetch-site", "same-origin"),
            ("origin", "null"),
            ("host", "a")
        ])));
        assert!(is_cross_site(&headers(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "null"),
            ("host", "a")
        ])));
    }

    #[test]
    fn a_proxy_on_loopback_is_believed_and_others_are_not() {
        let proxied = Client {
            ip: "127.0.0.1".parse().unwrap(),
            tls: false,
            loopback_listener: true,
        };
        let h = headers(&[("x-real-ip", "192.0.2.7"), ("x-forwarded-proto", "https")]);
        let peer = Peer::of(proxied, &h);
        assert_eq!(peer.ip, "192.0.2.7".parse::<IpAddr>().unwrap());
        assert!(peer.secure);
        let direct = Client {
            ip: "198.51.100.1".parse().unwrap(),
            tls: false,
            loopback_listener: false,
        };
        let peer = Peer::of(direct, &h);
        assert_eq!(peer.ip, direct.ip);
        assert!(!peer.secure);
        assert!(!peer.may_log_in(false));
        assert!(peer.may_log_in(true));
    }
}
