//! `*`/`?` wildcard patterns, matched without allocating.

/// One element of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// `*`: any run of characters, possibly empty.
    Star,
    /// `?`: exactly one character.
    One,
    /// A literal character (already folded when the pattern ignores case).
    Char(char),
}

/// A wildcard pattern: `*` matches any run of characters, `?` exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    tokens: Vec<Token>,
    ignore_case: bool,
    literal: bool,
}

/// The simple lowercase of a character; one char per char keeps matching allocation-free.
pub(crate) fn fold(c: char) -> char {
    if c.is_ascii() { c.to_ascii_lowercase() } else { c.to_lowercase().next().unwrap_or(c) }
}

impl Pattern {
    /// A pattern matched case-insensitively (operation and role names).
    pub(crate) fn ignoring_case(text: &str) -> Self {
        Self::build(text, true)
    }

    /// A pattern matched exactly (profile keys, `StringLike` values).
    pub(crate) fn exact(text: &str) -> Self {
        Self::build(text, false)
    }

    fn build(text: &str, ignore_case: bool) -> Self {
        let mut tokens: Vec<Token> = Vec::with_capacity(text.len());
        for c in text.chars() {
            let token = match c {
                // Runs of stars mean the same as one and would only slow backtracking.
                '*' if tokens.last() == Some(&Token::Star) => continue,
                '*' => Token::Star,
                '?' => Token::One,
                c if ignore_case => Token::Char(fold(c)),
                c => Token::Char(c),
            };
            tokens.push(token);
        }
        let literal = tokens.iter().all(|t| matches!(t, Token::Char(_)));
        Self { tokens, ignore_case, literal }
    }

    /// True when the pattern has no wildcard.
    pub(crate) fn is_literal(&self) -> bool {
        self.literal
    }

    /// True for the pattern `*`, which matches everything.
    pub(crate) fn is_any(&self) -> bool {
        self.tokens == [Token::Star]
    }

    /// The literal text of a wildcard-free pattern, folded when the pattern ignores case.
    pub(crate) fn literal_text(&self) -> Option<String> {
        self.literal
            .then(|| self.tokens.iter().filter_map(|t| if let Token::Char(c) = t { Some(*c) } else { None }).collect())
    }

    /// True when `text` matches the whole pattern.
    pub(crate) fn matches(&self, text: &str) -> bool {
        let char_at = |i: usize| text[i..].chars().next();
        let same = |token: Token, c: char| match token {
            Token::Char(p) => p == if self.ignore_case { fold(c) } else { c },
            Token::One => true,
            Token::Star => false,
        };
        let (mut p, mut t) = (0, 0);
        // The last star seen and the text position it currently swallows up to: on a mismatch
        // the star takes one more character and matching resumes after it.
        let mut backtrack: Option<(usize, usize)> = None;
        while let Some(c) = char_at(t) {
            match self.tokens.get(p) {
                Some(Token::Star) => {
                    backtrack = Some((p, t));
                    p += 1;
                    continue;
                }
                Some(&token) if same(token, c) => {
                    p += 1;
                    t += c.len_utf8();
                    continue;
                }
                _ => {}
            }
            let Some((star, from)) = backtrack else { return false };
            let skipped = char_at(from).map_or(0, char::len_utf8);
            backtrack = Some((star, from + skipped));
            p = star + 1;
            t = from + skipped;
        }
        self.tokens[p..].iter().all(|t| *t == Token::Star)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_runs_and_single_characters() {
        let cases: &[(&str, &str, bool)] = &[
            ("UserGet", "userget", true),
            ("UserGet", "UserGett", false),
            ("User*", "UserGet", true),
            ("User*", "User", true),
            ("User*", "Use", false),
            ("*", "", true),
            ("*", "anything", true),
            ("User?et", "UserGet", true),
            ("User?et", "Useret", false),
            ("*Get", "UserGet", true),
            ("*Get", "UserGetX", false),
            ("B*k*List*", "BulkListAllUsers", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("**a", "ba", true),
            ("r?le", "RÖLE", true),
            ("rle", "RÖLE", false),
            ("RÖ*", "röle", true),
        ];
        for &(pattern, text, expected) in cases {
            assert_eq!(Pattern::ignoring_case(pattern).matches(text), expected, "{pattern} vs {text}");
        }
    }

    #[test]
    fn exact_patterns_keep_case() {
        assert!(Pattern::exact("a*C").matches("abcC"));
        assert!(!Pattern::exact("a*C").matches("abcc"));
        assert_eq!(Pattern::ignoring_case("UserGet").literal_text().as_deref(), Some("userget"));
        assert_eq!(Pattern::ignoring_case("User*").literal_text(), None);
        assert!(Pattern::exact("**").is_any());
    }
}
