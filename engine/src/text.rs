//! Text the lab shows of what a service sent (an answer, a header, a log line): on one line,
//! cut to a width, so a table cell or an error message stays readable whatever came back.

/// `text` with every run of whitespace (newlines included) made one space, cut after `max`
/// characters with `…` when longer.
pub fn shorten(text: &str, max: usize) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_on_one_line_and_short_text_kept() {
        let long = format!("{{\n \"a\": \"{}\"\n}}", "x".repeat(400));
        let s = shorten(&long, 240);
        assert!(s.ends_with('…') && !s.contains('\n'), "{s}");
        assert_eq!(s.chars().count(), 241);
        assert_eq!(shorten("ok\n", 240), "ok");
    }
}
