//! Texts of items as Ladder holds them: cleaned, cut to size, and as ids.

/// The text with control characters (other than line breaks and tabs)
/// removed: PostgreSQL text cannot hold NUL, and none of them is meant.
pub(super) fn clean(text: Option<&str>) -> Option<String> {
    let text: String = text?
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
        .collect();
    (!text.trim().is_empty()).then_some(text)
}

/// At most `max` characters, cut at a word boundary with an ellipsis.
pub(super) fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max - 1).collect();
    let cut = match cut.rfind(char::is_whitespace) {
        Some(at) if at > max / 2 => &cut[..at],
        _ => &cut[..],
    };
    format!("{}…", cut.trim_end())
}

/// A snake_case id from a title: ASCII letters and digits (common Latin
/// accents folded), words joined by underscores, at most 48 characters so
/// that a de-duplicating suffix still fits.
pub(super) fn slug(title: &str) -> Option<String> {
    let mut out = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        let folded = match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => "a",
            'ç' => "c",
            'è' | 'é' | 'ê' | 'ë' => "e",
            'ì' | 'í' | 'î' | 'ï' => "i",
            'ñ' => "n",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => "o",
            'ù' | 'ú' | 'û' | 'ü' => "u",
            'ý' | 'ÿ' => "y",
            'ß' => "ss",
            'æ' => "ae",
            'œ' => "oe",
            c if c.is_ascii_alphanumeric() => {
                out.push(c);
                continue;
            }
            _ => "_",
        };
        if folded == "_" && (out.is_empty() || out.ends_with('_')) {
            continue;
        }
        out.push_str(folded);
    }
    let mut out = out.trim_matches('_').to_string();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "n_");
    }
    if out.len() > 48 {
        out.truncate(48);
        let trimmed = out.trim_end_matches('_').len();
        out.truncate(trimmed);
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::framework::is_valid_id;

    #[test]
    fn slugs_are_snake_case_ids() {
        assert_eq!(
            slug("Système d'information").as_deref(),
            Some("systeme_d_information")
        );
        assert_eq!(slug("  3D modelling!").as_deref(), Some("n_3d_modelling"));
        assert_eq!(slug("日本語"), None);
        let long = slug(&"word ".repeat(40)).unwrap();
        assert!(long.len() <= 48 && is_valid_id(&long), "{long}");
    }

    #[test]
    fn long_texts_are_cut_at_a_word() {
        let text = "alpha beta gamma delta";
        assert_eq!(shorten(text, 14), "alpha beta…");
        assert_eq!(shorten(text, 100), text);
    }
}
