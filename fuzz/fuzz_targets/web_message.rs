//! The web portal's reading of a message from the network: the MIME walk (text, HTML,
//! attachments, parts by number), the header lines shown, the list line, and the HTML
//! sanitiser, whose output must never carry a script element (text is escaped, so a
//! raw `<script` can only be markup).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_web::mail::{sanitize, summary, view};

fuzz_target!(|input: &[u8]| {
    let page = view::view(input);
    let _ = view::headers(input);
    let _ = view::subject(input);
    let _ = summary::summary(input, 0);
    for attachment in &page.attachments {
        assert!(view::valid_part_id(&attachment.part));
        assert!(view::part(input, &attachment.part).is_some());
        assert!(!attachment.filename.contains('/'));
    }
    let html = page
        .html
        .unwrap_or_else(|| String::from_utf8_lossy(input).into_owned());
    for show_images in [false, true] {
        let clean = sanitize::sanitize(&html, "/folder/1/1/cid/", show_images).html;
        let lower = clean.to_ascii_lowercase();
        assert!(!lower.contains("<script"), "{clean}");
    }
});
