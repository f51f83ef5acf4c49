//! The one place errors become text for status, events, logs and the standalone output: the
//! cause chain joined with `": "`, every URL stripped of credentials, query and fragment, and the
//! result capped at a byte budget on a character boundary.

use std::error::Error;

/// Renders `err` and its causes as `outer: inner: root`, sanitised.
///
/// A cause whose text the previous level already ends with is skipped, so a library error that
/// prints its own source does not appear twice.
pub fn render(err: &(dyn Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !text.is_empty() && !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    sanitize(&out)
}

/// Removes userinfo (`user:password@`), query strings and fragments from every URL in `text`.
///
/// Flux removes query strings; userinfo goes too because a proxy or registry URL may carry a
/// password.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let scheme_start = rest[..pos]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            .last()
            .map_or(pos, |(i, _)| i);
        out.push_str(&rest[..pos + 3]);
        let tail = &rest[pos + 3..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '\'' | '"' | '<' | '>' | '`'))
            .unwrap_or(tail.len());
        let url = &tail[..end];
        if scheme_start == pos {
            // "://" without a scheme in front: not a URL, copy as is.
            out.push_str(url);
        } else {
            out.push_str(&strip_url(url));
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

// `url` is what follows "scheme://".
fn strip_url(url: &str) -> String {
    let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
    let (authority, path) = url.split_at(authority_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
    format!("{host}{path}")
}

/// Caps `text` at `max` bytes on a character boundary, marking a cut with `...`.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub(3);
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl Error for E {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }

    #[test]
    fn the_chain_is_joined_with_colons() {
        let e = E(
            "failed to pull artifact from 'oci://r/app'",
            Some(Box::new(E("connection reset", None))),
        );
        assert_eq!(
            render(&e),
            "failed to pull artifact from 'oci://r/app': connection reset"
        );
    }

    #[test]
    fn a_cause_already_printed_by_its_parent_is_not_repeated() {
        let e = E(
            "read failed: disk gone",
            Some(Box::new(E("disk gone", None))),
        );
        assert_eq!(render(&e), "read failed: disk gone");
    }

    #[test]
    fn credentials_queries_and_fragments_are_stripped_from_urls() {
        let cases = [
            (
                "GET https://user:s3cret@registry.example.com/v2/app/manifests/latest?token=abc failed",
                "GET https://registry.example.com/v2/app/manifests/latest failed",
            ),
            (
                "proxy 'http://bob:hunter2@proxy:3128' refused",
                "proxy 'http://proxy:3128' refused",
            ),
            (
                "realm \"https://auth.example.com/token?scope=repository:a:pull&account=x\"",
                "realm \"https://auth.example.com/token\"",
            ),
            ("oci://ghcr.io/org/app#frag", "oci://ghcr.io/org/app"),
            ("no url here", "no url here"),
            ("weird :// alone", "weird :// alone"),
            (
                "two http://a@b/x?y and https://c/d?e",
                "two http://b/x and https://c/d",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(sanitize(input), want, "{input}");
        }
    }

    #[test]
    fn truncation_respects_character_boundaries() {
        assert_eq!(truncate("abcdef", 10), "abcdef");
        assert_eq!(truncate("abcdefghij", 8), "abcde...");
        let t = truncate(&"é".repeat(10), 8);
        assert!(t.len() <= 8 && t.ends_with("..."), "{t}");
    }

    #[test]
    fn hostile_inputs_do_not_panic() {
        for s in [
            "://",
            "a://",
            "a://@",
            "a://@@@?",
            "é://x",
            "x://é@é?é#é",
            ":://:://",
        ] {
            let _ = sanitize(s);
            let _ = truncate(s, 2);
        }
    }
}
