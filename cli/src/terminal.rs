//! Text from log content, file names and error messages, made safe to print for a person.
//!
//! A log file's `eventName`, a caller's ARN or a file's name can hold a newline (to forge a line
//! of our own report, such as `skipped damaged file FAKE`), an ANSI escape (to recolour, move the
//! cursor or clear the screen), or Unicode controls that reorder text. Everything printed for a
//! person goes through [`escape`]; JSON output is serde's exact JSON, which escapes controls
//! itself.

use std::borrow::Cow;
use std::fmt::Write;

/// True for characters a terminal interprets rather than shows: C0 and C1 controls, DEL, and the
/// bidirectional and zero-width format characters.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
        )
}

/// `text` with every unsafe character written as a visible escape (`\n`, `\t`, `\r`, `\e`,
/// `\u{..}`). Other text, backslashes included, is shown as it is.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{1b}' => out.push_str("\\e"),
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A path, escaped for printing.
pub fn path(path: &std::path::Path) -> String {
    escape(&path.display().to_string()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_ansi_escapes_become_visible() {
        assert!(matches!(escape("RunInstances"), Cow::Borrowed(_)));
        assert_eq!(
            escape("Create\nskipped damaged file FAKE"),
            "Create\\nskipped damaged file FAKE"
        );
        assert_eq!(escape("\u{1b}[2J\u{1b}[31mred"), "\\e[2J\\e[31mred");
        assert_eq!(escape("a\u{7}\u{9b}b\r\t"), "a\\u{7}\\u{9b}b\\r\\t");
        assert_eq!(escape("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(escape("C:\\path ü"), "C:\\path ü");
    }
}
