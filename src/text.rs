//! Text for a terminal: names are data, and a control character in one (a newline, an
//! escape sequence) must not break lines or drive the terminal.

use std::borrow::Cow;

/// `s` with every control character written as a Rust escape (`\n`, `\t`, `\u{1b}`);
/// borrowed when there is none, which is nearly always.
pub fn escape_control(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// An I/O error as words, without the "(os error N)" a user has no use for:
/// "no such file or folder", "permission denied".
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or folder".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(at) => s[..at].to_lowercase(),
                None => s,
            }
        }
    }
}

/// Lower-case hex of the bytes, for the exact form of a name that is not UTF-8.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_only_controls() {
        assert!(matches!(escape_control("Ça va/é.mp3"), Cow::Borrowed(_)));
        assert_eq!(escape_control("a\nb\tc\u{1b}[31m"), "a\\nb\\tc\\u{1b}[31m");
        assert_eq!(escape_control("x\u{7f}\u{85}"), "x\\u{7f}\\u{85}");
    }
}
