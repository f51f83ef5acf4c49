//! The one place errors become text for status, events, logs and the standalone output: the
//! cause chain joined with `": "`, control characters dropped, every URL and every
//! `user:password@` or `?key=value` fragment stripped of credentials, query and fragment (and,
//! when the object's URL is known, its userinfo and query wherever they appear), and the result
//! capped at a byte budget on a character boundary.

use std::error::Error;

/// Renders `err` and its causes as `outer: inner: root`, sanitised.
///
/// A cause whose text the previous level already ends with is skipped, so a library error that
/// prints its own source does not appear twice.
pub fn render(err: &(dyn Error + 'static)) -> String {
    sanitize(&crate::error_chain::chain(err))
}

/// [`render`] for an error about the object whose `spec.url` is `url`: the URL's userinfo and
/// query also go where a parser quoted a piece of it without its scheme (`user:pa ss@host`,
/// `app?token=x`), which no pattern can recognise once it holds spaces.
pub fn render_for_url(err: &(dyn Error + 'static), url: &str) -> String {
    sanitize(&redact_url_secrets(&crate::error_chain::chain(err), url))
}

// Below this length a bare password or query is not searched for on its own: removing every
// occurrence of a short string would mangle the message, and the `user:password@` and
// `?query` forms are removed whatever their length.
const MIN_BARE_SECRET: usize = 8;

/// Removes from `text` every occurrence of the userinfo (`user:password@`) and the query and
/// fragment of `url`, parsed leniently (a URL that failed validation is exactly the one whose
/// pieces end up in a message).
pub fn redact_url_secrets(text: &str, url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let mut out = text.to_string();
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        out = out.replace(&format!("{userinfo}@"), "");
        if let Some((_, password)) = userinfo.split_once(':')
            && password.len() >= MIN_BARE_SECRET
        {
            out = out.replace(password, "");
        }
    }
    if let Some(pos) = rest.find(['?', '#']) {
        let query = &rest[pos..];
        if query.len() > 1 {
            out = out.replace(query, "");
            if query.len() > MIN_BARE_SECRET {
                out = out.replace(&query[1..], "");
            }
        }
    }
    out
}

/// Drops control characters and strips credentials from `text`: ANSI escape sequences and
/// other control or bidirectional-override characters go (tabs and line feeds become
/// spaces), every URL loses its userinfo (`user:password@`), query string and fragment, and so
/// does every other word that carries a `user:password@` prefix or a `?key=value` query.
///
/// Flux removes query strings; userinfo goes too because a proxy, registry or docker-config
/// URL may carry a password. A URL in quotes runs to the closing quote, spaces included.
pub fn sanitize(text: &str) -> String {
    strip_credentials(&strip_controls(text))
}

fn strip_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let scheme_start = rest[..pos]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            .last()
            .map_or(pos, |(i, _)| i);
        out.push_str(&strip_words(&rest[..scheme_start]));
        out.push_str(&rest[scheme_start..pos + 3]);
        let tail = &rest[pos + 3..];
        let quote = rest[..scheme_start]
            .chars()
            .next_back()
            .filter(|c| matches!(c, '\'' | '"'));
        let end = quote
            .and_then(|q| tail.find(q))
            .or_else(|| tail.find(|c: char| c.is_whitespace() || is_delimiter(c)))
            .unwrap_or(tail.len());
        let url = &tail[..end];
        if scheme_start == pos {
            // "://" without a scheme in front: not a URL, copy as is.
            out.push_str(&strip_words(url));
        } else {
            out.push_str(&strip_url(url));
        }
        rest = &tail[end..];
    }
    out.push_str(&strip_words(rest));
    out
}

fn is_delimiter(c: char) -> bool {
    matches!(c, '\'' | '"' | '<' | '>' | '`')
}

// Text outside URLs, word by word: a `user:password@` prefix and a `?key=value` query go.
fn strip_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word_start = None;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() || is_delimiter(c) {
            if let Some(start) = word_start.take() {
                out.push_str(strip_word(&text[start..i]));
            }
            out.push(c);
        } else if word_start.is_none() {
            word_start = Some(i);
        }
    }
    if let Some(start) = word_start {
        out.push_str(strip_word(&text[start..]));
    }
    out
}

fn strip_word(word: &str) -> &str {
    let mut word = word;
    // `user:password@host`: a colon before the last `@`, and no path in front of it (a tag and
    // digest reference such as `r/app:v1@sha256:...` has one).
    if let Some(at) = word.rfind('@') {
        let before = &word[..at];
        if before.contains(':') && !before.contains('/') {
            word = &word[at + 1..];
        }
    }
    if let Some(q) = word.find('?') {
        let query = &word[q + 1..];
        let key_len = query
            .find(|c: char| {
                !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '~' | '%'))
            })
            .unwrap_or(query.len());
        if key_len > 0 && query[key_len..].starts_with('=') {
            word = &word[..q];
        }
    }
    word
}

// `url` is what follows "scheme://".
fn strip_url(url: &str) -> String {
    let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
    let (authority, path) = url.split_at(authority_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
    format!("{host}{path}")
}

/// Drops ANSI escape sequences (CSI, OSC and two-character escapes), other control
/// characters (carriage returns included) and the bidirectional overrides that can make a
/// message read differently from what it says; tabs and line feeds become spaces.
pub fn strip_controls(text: &str) -> String {
    if !text.chars().any(is_unwanted) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\t' | '\n' => out.push(' '),
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates up to a final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC: up to BEL or ST (ESC \\).
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' {
                            chars.next_if_eq(&'\\');
                            break;
                        }
                    }
                }
                _ => {}
            },
            c if is_unwanted(c) => {}
            c => out.push(c),
        }
    }
    out
}

fn is_unwanted(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
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
    fn credentials_outside_urls_are_stripped_from_words_and_quoted_urls() {
        let cases = [
            (
                "entry \"user:pass@host.example:99999\" in dockercfg invalid",
                "entry \"host.example:99999\" in dockercfg invalid",
            ),
            (
                "entry \"http://us er:pa ss@h\" in dockercfg invalid",
                "entry \"http://h\" in dockercfg invalid",
            ),
            (
                "for 'oci://user:pa ss@bad host/app': bad",
                "for 'oci://bad host/app': bad",
            ),
            ("characters: app?token=s3cr3t", "characters: app"),
            ("remove ':tag?token=x'", "remove ':tag'"),
            // Not credentials: digests, tag and digest references, e-mail addresses, questions.
            (
                "r/app:v1@sha256:abc and v1@sha256:def",
                "r/app:v1@sha256:abc and v1@sha256:def",
            ),
            ("signed by ci@example.com", "signed by ci@example.com"),
            ("why? because", "why? because"),
        ];
        for (input, want) in cases {
            assert_eq!(sanitize(input), want, "{input}");
        }
    }

    #[test]
    fn the_objects_url_secrets_go_wherever_a_parser_quoted_them() {
        let url = "oci://user:pa ss@bad host/app?token=s3cr3tvalue";
        let text = "URL validation failed for 'oci://user:pa ss@bad host/app?token=s3cr3tvalue': \
                    registries must be valid RFC 3986 URI authorities: user:pa ss@bad host; \
                    token=s3cr3tvalue";
        let e = E(Box::leak(text.to_string().into_boxed_str()), None);
        assert_eq!(
            render_for_url(&e, url),
            "URL validation failed for 'oci://bad host/app': registries must be valid RFC 3986 \
             URI authorities: bad host; "
        );
        let long = "oci://u:longpassword@h/app";
        assert_eq!(
            redact_url_secrets("refused longpassword", long),
            "refused ",
            "a long bare password goes too"
        );
        assert_eq!(
            redact_url_secrets("a pass word", "oci://u:pass@h/app?x"),
            "a pass word",
            "short bare pieces stay: removing them would mangle the text"
        );
    }

    #[test]
    fn control_characters_and_escape_sequences_are_dropped() {
        let cases = [
            ("\u{1b}[31mdenied\u{1b}[0m", "denied"),
            ("a\u{1b}]0;title\u{7}b", "ab"),
            ("a\u{1b}]8;;http://x\u{1b}\\b", "ab"),
            ("no such\r\nmanifest\tnow", "no such manifest now"),
            ("bell\u{7}\u{0}\u{7f}\u{9b}end", "bellend"),
            ("evil\u{202e}txt.exe\u{2066}", "eviltxt.exe"),
            ("\u{1b}", ""),
            ("\u{1b}[", ""),
            ("plain é text", "plain é text"),
        ];
        for (input, want) in cases {
            assert_eq!(sanitize(input), want, "{input:?}");
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
            "'a://",
            "\"x://y@",
            "@",
            ":@",
            "?=",
            "a?=b",
            "\u{1b}]",
            "\u{1b}]\u{1b}",
        ] {
            let _ = redact_url_secrets(s, s);
            let _ = sanitize(s);
            let _ = truncate(s, 2);
        }
    }
}
