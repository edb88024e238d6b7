//! HTML mail made safe to show (ammonia): no scripts, event handlers, forms, frames,
//! `<base>`, `<meta>`, `<link>` or stylesheets; links open outside the portal without a
//! referrer; only `http`, `https` and `mailto` URLs. Images from the message itself
//! (`cid:`) are served by the portal; **remote images and remote CSS are dropped**
//! unless the user asked to see them for this message, so opening a mail tells no
//! tracker anything. Style attributes keep only properties that draw inside the box
//! (colours, fonts, spacing, borders, sizes), never positioning.
//!
//! The result is shown in a sandboxed iframe without scripts and under its own CSP
//! ([`BODY_CSP`]), so anything ammonia let through still could not run or leave.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ammonia::{Builder, UrlRelative};

/// The HTML mail document's policy with remote content blocked: no script at all,
/// images only from this portal (cid: parts), inline styles only.
pub const BODY_CSP: &str = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'self'; \
    sandbox allow-same-origin allow-popups allow-popups-to-escape-sandbox";

/// The same after "show images": remote images and CSS images may load.
pub const BODY_CSP_IMAGES: &str = "default-src 'none'; img-src 'self' https: http:; \
    style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'; \
    sandbox allow-same-origin allow-popups allow-popups-to-escape-sandbox";

/// CSS properties a style attribute may keep.
const STYLE_PROPERTIES: &[&str] = &[
    "background",
    "background-color",
    "background-image",
    "border",
    "border-bottom",
    "border-collapse",
    "border-color",
    "border-left",
    "border-radius",
    "border-right",
    "border-spacing",
    "border-style",
    "border-top",
    "border-width",
    "color",
    "direction",
    "display",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "height",
    "letter-spacing",
    "line-height",
    "list-style-type",
    "margin",
    "margin-bottom",
    "margin-left",
    "margin-right",
    "margin-top",
    "max-height",
    "max-width",
    "min-height",
    "min-width",
    "overflow-wrap",
    "padding",
    "padding-bottom",
    "padding-left",
    "padding-right",
    "padding-top",
    "table-layout",
    "text-align",
    "text-decoration",
    "text-indent",
    "text-transform",
    "vertical-align",
    "white-space",
    "width",
    "word-break",
];

/// Presentational attributes old-style mail (tables) relies on.
const GENERIC_ATTRIBUTES: &[&str] = &[
    "style",
    "align",
    "valign",
    "bgcolor",
    "width",
    "height",
    "border",
    "cellpadding",
    "cellspacing",
    "dir",
    "lang",
    "title",
    "color",
];

/// The sanitised document body and whether anything remote was held back.
pub struct Sanitized {
    pub html: String,
    pub blocked_remote: bool,
}

/// Cleans `html`. `cid_prefix` is the URL path under which this message's parts are
/// served by Content-ID (`/folder/3/41/cid/`); `cid:` URLs are rewritten to it and no
/// other relative URL survives.
pub fn sanitize(html: &str, cid_prefix: &str, show_images: bool) -> Sanitized {
    let blocked = Arc::new(AtomicBool::new(false));
    let mut builder = Builder::default();
    builder
        .url_schemes(HashSet::from(["http", "https", "mailto", "cid"]))
        .add_tags(["font", "center"])
        .add_generic_attributes(GENERIC_ATTRIBUTES.iter().copied())
        .add_tag_attributes("font", ["face", "size", "color"])
        .filter_style_properties(STYLE_PROPERTIES.iter().copied().collect())
        .link_rel(Some("noopener noreferrer nofollow"))
        .set_tag_attribute_value("a", "target", "_blank")
        .strip_comments(true);
    {
        let prefix = cid_prefix.to_string();
        let blocked = blocked.clone();
        builder.attribute_filter(move |element, attribute, value| {
            filter_attribute(element, attribute, value, &prefix, show_images, &blocked)
        });
    }
    builder.url_relative(UrlRelative::Custom(Box::new(OnlyUnder(
        cid_prefix.to_string(),
    ))));
    let html = builder.clean(html).to_string();
    Sanitized {
        html,
        blocked_remote: blocked.load(Ordering::Relaxed),
    }
}

fn filter_attribute<'u>(
    element: &str,
    attribute: &str,
    value: &'u str,
    cid_prefix: &str,
    show_images: bool,
    blocked: &AtomicBool,
) -> Option<Cow<'u, str>> {
    let lower = value.trim().to_ascii_lowercase();
    match attribute {
        "src" => {
            if let Some(cid) = lower.strip_prefix("cid:").map(|_| &value.trim()[4..]) {
                let encoded =
                    percent_encoding::utf8_percent_encode(cid, percent_encoding::NON_ALPHANUMERIC);
                return Some(Cow::Owned(format!("{cid_prefix}{encoded}")));
            }
            if element == "img" && !show_images {
                blocked.store(true, Ordering::Relaxed);
                return None;
            }
            Some(Cow::Borrowed(value))
        }
        "style" => {
            // CSS escapes could spell url( in a way a substring test misses: a style
            // with any backslash goes whole. url() and image-set() load remote images.
            let loads = lower.contains("url") || lower.contains("image") || lower.contains('\\');
            if loads && !show_images {
                blocked.store(true, Ordering::Relaxed);
                return None;
            }
            if lower.contains("expression")
                || lower.contains("behavior")
                || lower.contains("binding")
            {
                return None;
            }
            Some(Cow::Borrowed(value))
        }
        // cid: only makes sense for images.
        "href" if lower.starts_with("cid:") => None,
        _ => Some(Cow::Borrowed(value)),
    }
}

/// Keeps only relative URLs under one prefix: the cid: rewrites made by the attribute
/// filter. A mail's own relative URLs would point into the portal.
struct OnlyUnder(String);

impl<'a> ammonia::UrlRelativeEvaluate<'a> for OnlyUnder {
    fn evaluate<'url>(&self, url: &'url str) -> Option<Cow<'url, str>> {
        url.starts_with(&self.0).then_some(Cow::Borrowed(url))
    }
}

/// The iframe's document around a sanitised body: a plain base style, links in a new
/// tab, images fitted to the width.
pub fn document(body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><base target=\"_blank\">\
         <style>body{{margin:0;padding:8px;font-family:system-ui,sans-serif;line-height:1.4;\
         overflow-wrap:anywhere;color:#111;background:#fff}}img{{max-width:100%;height:auto}}\
         table{{max-width:100%}}pre{{white-space:pre-wrap}}</style></head><body>{body}</body></html>"
    )
}

/// Whether HTML seems to load anything from elsewhere (an image or CSS URL): the
/// reading page offers "show images" then. A hint only, cheap on a large mail: what is
/// blocked is decided by [`sanitize`].
pub fn mentions_remote_content(html: &str) -> bool {
    let lower = html.to_ascii_lowercase();
    lower.contains("url(")
        || lower.contains("background=")
        || ["src=\"http", "src='http", "src=http", "src=\"//", "src='//"]
            .iter()
            .any(|pattern| lower.contains(pattern))
}

/// HTML as plain text (the "plain text" view of an HTML-only mail): tags dropped,
/// entities decoded.
pub fn to_text(html: &str) -> String {
    let spaced = html
        .replace("<br", "\n<br")
        .replace("<p", "\n<p")
        .replace("<div", "\n<div")
        .replace("<tr", "\n<tr");
    let stripped = Builder::empty().clean(&spaced).to_string();
    html_escape::decode_html_entities(&stripped).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "/folder/1/2/cid/";

    fn clean(html: &str) -> Sanitized {
        sanitize(html, PREFIX, false)
    }

    #[test]
    fn scripts_handlers_and_active_content_go() {
        let hostile = r#"<script>alert(1)</script><p onclick="alert(2)">hi</p>
<a href="javascript:alert(3)">x</a><svg onload="alert(4)"><circle/></svg>
<meta http-equiv="refresh" content="0;url=https://evil.example/">
<base href="https://evil.example/"><form action="https://evil.example/"><input name=p></form>
<iframe src="https://evil.example/"></iframe><object data="x.swf"></object>
<img src="data:image/png;base64,AAAA"><a href="data:text/html,<script>alert(5)</script>">d</a>
<link rel="stylesheet" href="https://evil.example/s.css"><style>body{background:url(https://evil.example/b)}</style>
<div style="position:fixed;top:0;left:0;width:100%;z-index:9999">over</div>
<p style="background:url('https://tracker.example/p.gif')">bg</p>
<p style="background:u\72l(https://tracker.example/e.gif)">esc</p>"#;
        let out = clean(hostile).html;
        for banned in [
            "<script",
            "alert(1)",
            "onclick",
            "javascript:",
            "<svg",
            "onload",
            "<meta",
            "<base",
            "<form",
            "<input",
            "<iframe",
            "<object",
            "data:",
            "<link",
            "<style",
            "evil.example",
            "tracker.example",
            "position",
            "z-index",
        ] {
            assert!(
                !out.to_ascii_lowercase().contains(banned),
                "{banned} survived in {out}"
            );
        }
        assert!(out.contains("hi") && out.contains("over"));
    }

    #[test]
    fn remote_images_wait_for_show_images_and_cid_images_are_served_here() {
        let html = r#"<img src="https://tracker.example/open.gif" alt="t"><img src="cid:logo@x"><a href="https://example.com/">link</a>"#;
        let blocked = clean(html);
        assert!(blocked.blocked_remote);
        assert!(
            !blocked.html.contains("tracker.example"),
            "{}",
            blocked.html
        );
        assert!(
            blocked.html.contains("src=\"/folder/1/2/cid/logo%40x\""),
            "{}",
            blocked.html
        );
        assert!(blocked.html.contains("href=\"https://example.com/\""));
        assert!(blocked.html.contains("target=\"_blank\""));
        assert!(blocked.html.contains("noreferrer"));
        let shown = sanitize(html, PREFIX, true);
        assert!(shown.html.contains("https://tracker.example/open.gif"));
        assert!(!shown.blocked_remote);
    }

    #[test]
    fn a_mails_own_relative_urls_never_point_into_the_portal() {
        let out = clean(
            r#"<a href="/logout">x</a><img src="/folder/9/9/part/1"><a href="../settings">y</a>"#,
        )
        .html;
        assert!(
            !out.contains("/logout") && !out.contains("/folder/9") && !out.contains("settings"),
            "{out}"
        );
    }

    #[test]
    fn safe_styles_stay() {
        let out = clean(r#"<p style="color:red;font-weight:bold;position:absolute">x</p>"#).html;
        assert!(
            out.contains("color:red") && out.contains("font-weight:bold"),
            "{out}"
        );
        assert!(!out.contains("position"));
    }

    #[test]
    fn malformed_nesting_and_a_huge_line_are_cleaned_quickly() {
        let nested = "<div>".repeat(5000) + "<b><i>x</b></i>" + &"</div>".repeat(10);
        let out = clean(&nested).html;
        assert!(out.contains('x'));
        let line =
            "<p>".to_string() + &"a".repeat(10 * 1024 * 1024) + "<img src=http://t.example/x>";
        let started = std::time::Instant::now();
        let out = clean(&line);
        assert!(out.blocked_remote);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn remote_content_is_noticed_cheaply() {
        assert!(mentions_remote_content(
            r#"<IMG SRC="https://t.example/x.gif">"#
        ));
        assert!(mentions_remote_content("<p style='background:url(x)'>"));
        assert!(!mentions_remote_content(
            r#"<img src="cid:logo"><a href="https://x">"#
        ));
    }

    #[test]
    fn html_reads_as_text() {
        assert_eq!(
            to_text("<p>a &amp; b</p><script>x</script>").trim(),
            "a & b"
        );
    }
}
