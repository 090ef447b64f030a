//! Values from outside (flags, file names, names in files), made safe to
//! echo in a one-line message: quoted, cut to a readable length, and with
//! every character that would garble or disguise a terminal line escaped.

/// How many characters of a value a message shows.
pub const KEEP: usize = 60;

/// Characters that must never reach a terminal raw: controls, and the
/// bidirectional overrides and isolates that reorder what is shown.
pub fn hidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `value` quoted, hidden characters escaped, cut after [`KEEP`]
/// characters with its length said ("'xxx…' (100000 bytes)").
pub fn quoted(value: &str) -> String {
    let mut out = String::from("'");
    for c in value.chars().take(KEEP) {
        if hidden_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    if value.chars().count() > KEEP {
        out.push_str(&format!("… ({} bytes)", value.len()));
    }
    out
}

/// `value` whole, unquoted, with every hidden character escaped (`\u{1b}`
/// for ESC): for a path printed on a line of its own, which must stay
/// readable and must not move the terminal's cursor or reorder the line.
pub fn escaped(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if hidden_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// [`escaped`] for a path.
pub fn escaped_path(p: &std::path::Path) -> String {
    escaped(&p.to_string_lossy())
}

/// The same for a value that may not be text (a path).
pub fn quoted_os(value: &std::ffi::OsStr) -> String {
    quoted(&value.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_and_hidden_characters_escaped() {
        let long = "x".repeat(100_000);
        let s = quoted(&long);
        assert!(s.len() < 100, "{s}");
        assert!(s.ends_with("(100000 bytes)"), "{s}");
        assert_eq!(quoted("a\u{202e}b\0c"), "'a\\u{202e}b\\u{0}c'");
        assert_eq!(quoted("plain"), "'plain'");
        assert_eq!(
            escaped("store/\u{1b}[2Jx\u{202e}/index.html"),
            "store/\\u{1b}[2Jx\\u{202e}/index.html"
        );
    }
}
