//! Free text as people have it in tables: reviews, tickets, names. Showing it: previews cut long
//! cells, in the CLI as in the app, on character boundaries.

/// `text` cut to at most `max_chars` characters (never inside one), on one line: line breaks and
/// tabs become spaces, and a cut text ends with "…".
pub fn cut_text(text: &str, max_chars: usize) -> String {
    let one_line = text.replace(['\n', '\r', '\t'], " ");
    if one_line.chars().count() <= max_chars {
        return one_line;
    }
    let kept: String = one_line.chars().take(max_chars.saturating_sub(1)).collect();
    format!("{}…", kept.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_between_characters_and_kept_on_one_line() {
        assert_eq!(cut_text("short", 40), "short");
        assert_eq!(cut_text("two\nlines\tand a tab", 40), "two lines and a tab");
        let shown = cut_text(&"é".repeat(100), 10);
        assert_eq!(shown.chars().count(), 10);
        assert!(shown.ends_with('…'));
        assert_eq!(cut_text("", 3), "");
    }
}
