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

/// [`escape_control`] for a name that may not be UTF-8: a UTF-8 name is escaped as
/// text; in any other, the ASCII control bytes are escaped and every other byte is
/// kept, so the name's exact bytes survive in a file meant for scripts.
pub fn escape_control_bytes(b: &[u8]) -> Cow<'_, [u8]> {
    match std::str::from_utf8(b) {
        Ok(s) => match escape_control(s) {
            Cow::Borrowed(_) => Cow::Borrowed(b),
            Cow::Owned(o) => Cow::Owned(o.into_bytes()),
        },
        Err(_) if !b.iter().any(|c| c.is_ascii_control()) => Cow::Borrowed(b),
        Err(_) => {
            let mut out = Vec::with_capacity(b.len() + 8);
            for &c in b {
                if c.is_ascii_control() {
                    out.extend((c as char).escape_default().to_string().bytes());
                } else {
                    out.push(c);
                }
            }
            Cow::Owned(out)
        }
    }
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
    fn bytes_keep_what_is_not_a_control() {
        assert!(matches!(
            escape_control_bytes(b"caf\xe9/\xff.mp3"),
            Cow::Borrowed(b"caf\xe9/\xff.mp3")
        ));
        assert_eq!(
            &*escape_control_bytes(b"a\tb\xff\n\x1b.mp3"),
            b"a\\tb\xff\\n\\u{1b}.mp3"
        );
        assert_eq!(&*escape_control_bytes("é\n".as_bytes()), "é\\n".as_bytes());
    }

    #[test]
    fn escapes_only_controls() {
        assert!(matches!(escape_control("Ça va/é.mp3"), Cow::Borrowed(_)));
        assert_eq!(escape_control("a\nb\tc\u{1b}[31m"), "a\\nb\\tc\\u{1b}[31m");
        assert_eq!(escape_control("x\u{7f}\u{85}"), "x\\u{7f}\\u{85}");
    }
}
