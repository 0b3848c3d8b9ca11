//! What the server hands a person to read, safe by construction (docs/bulletins.md, "Safe
//! output"; docs/dashboard.md): one set of security headers on every response, text without
//! bidirectional controls, and spreadsheet cells that cannot turn into formulas. HTML itself is
//! rendered from askama templates (`server/templates/`), which escape every value.

use axum::http::{HeaderValue, header};
use axum::response::Response;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::sync::LazyLock;

/// The one Content-Security-Policy of every response: only this server's own scripts, styles
/// and images (photos and voice notes come from `/v1/media` on the same origin), no inline
/// script, no inline style but the printable bulletin's own stylesheet (by its hash), no
/// plugins, no `<base>`, no framing. Sent on every response, not only on HTML, so a route that
/// starts returning HTML (or an SVG opened on its own) cannot be without it.
pub static CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
    let policy = format!(
        "default-src 'none'; script-src 'self'; style-src 'self' '{}'; img-src 'self'; \
         media-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; \
         frame-ancestors 'none'",
        bulletin_style_hash()
    );
    HeaderValue::from_str(&policy).expect("the policy is ASCII")
});

/// Sets the security headers on a response; the router applies it to every response,
/// including the errors of extractors, guards and unknown routes (`http::router`). A handler's
/// own value for one of these headers is replaced, so none can loosen them.
pub async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, CSP.clone());
    // Bytes are what their Content-Type says: an uploaded blob or a JSON error that looks like
    // HTML is never run as a page or a script.
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Links in the dashboard and the bulletin (inspection ids, media hashes) stay on the server.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // `frame-ancestors 'none'` for browsers that predate it.
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// Bidirectional formatting characters: they reorder how a line is shown without changing what
/// it holds (a note `满溢`, U+202E, `gpj.exe` reads as `满溢exe.jpg`). Embeddings and overrides U+202A–U+202E,
/// isolates U+2066–U+2069, the marks U+200E, U+200F and U+061C.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// Text as a person may read it: without bidirectional controls, so what is shown is what is
/// stored, in its own order. Used for every text cell and line of the bulletins (HTML, CSV,
/// XLSX); the dashboard does the same in the browser (`server/dashboard/app.js`, `readable`).
pub fn readable(text: &str) -> Cow<'_, str> {
    if text.contains(is_bidi_control) {
        Cow::Owned(text.chars().filter(|c| !is_bidi_control(*c)).collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// A text cell for a CSV file a spreadsheet program will open: [`readable`], and a cell that
/// would start a formula (`=`, `+`, `-`, `@`, tab, carriage return; OWASP's CSV injection
/// guidance) gets a leading `'`, which spreadsheets read as "this is text". Only text cells go
/// through here: numbers are written as numbers.
pub fn spreadsheet_text(text: &str) -> String {
    let text = readable(text);
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.into_owned()
    }
}

/// The bulletin's stylesheet, inlined so the page stays one self-contained file.
pub const BULLETIN_CSS: &str = include_str!("../templates/bulletin.css");

/// `sha256-<base64>` of the bulletin's stylesheet: the one inline style the Content-Security-
/// Policy allows ([`CSP`] and the page's own meta policy).
pub fn bulletin_style_hash() -> String {
    let digest = Sha256::digest(BULLETIN_CSS.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_controls_are_removed_and_other_text_kept() {
        assert_eq!(readable("满溢\u{202E}gpj.exe"), "满溢gpj.exe");
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
        ] {
            assert_eq!(readable(&format!("a{c}b{c}")), "ab", "{:04X}", c as u32);
        }
        let plain = "如意和苑 3 号楼 ‘门口’ — ok";
        assert!(matches!(readable(plain), Cow::Borrowed(t) if t == plain));
    }

    #[test]
    fn formula_starts_are_neutralised() {
        for (cell, out) in [
            (
                "=HYPERLINK(\"http://evil\",\"x\")",
                "'=HYPERLINK(\"http://evil\",\"x\")",
            ),
            ("+1+1", "'+1+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            // A bidi control in front does not hide a formula.
            ("\u{202E}=1+1", "'=1+1"),
            ("如意和苑", "如意和苑"),
            ("150102-0001", "150102-0001"),
            ("a=b", "a=b"),
            ("", ""),
        ] {
            assert_eq!(spreadsheet_text(cell), out, "{cell:?}");
        }
    }
}
