//! Ignore rules for re-archiving (§4.7): `.sourceignore` files (scoped per directory) plus
//! `spec.ignore`, the VCS and default exclusion lists, and a gitignore matcher with the exact
//! semantics of Flux's go-git fork (later patterns win, `!` negates, trailing `/` = directory
//! only, a `/` anywhere anchors the pattern to its directory, `**` spans directories).
//!
//! # Bounds
//!
//! A layer's own `.sourceignore` files are input from the registry, so they are bounded where
//! Flux is not: at most [`MAX_IGNORE_BYTES`] are read and at most [`MAX_PATTERNS`] patterns
//! (with `spec.ignore`'s) are kept; past either the archive step fails with a
//! `SourceIgnoreError` naming the bound. Patterns are stored compactly (a pattern's directory
//! is shared by every pattern of its file), loading stops at the reconcile deadline, and the
//! archive step that matches every path against every pattern runs under it too.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use super::archive::sorted_children;
use super::deadline::Deadline;
use super::error::Error;

/// Name of the per-directory ignore file.
pub const IGNORE_FILE: &str = ".sourceignore";

/// Always excluded (before any user pattern, so a negation can re-include them).
pub const VCS_EXCLUDES: [&str; 4] = [".git/", ".gitignore", ".gitmodules", ".gitattributes"];

/// Excluded only when no `.sourceignore` line and no `spec.ignore` line exists.
pub const DEFAULT_EXCLUDES: [&str; 20] = [
    "*.jpg",
    "*.jpeg",
    "*.gif",
    "*.png",
    "*.wmv",
    "*.flv",
    "*.tar.gz",
    "*.zip",
    ".github/",
    ".circleci/",
    ".travis.yml",
    ".gitlab-ci.yml",
    "appveyor.yml",
    ".drone.yml",
    "cloudbuild.yaml",
    "codeship-services.yml",
    "codeship-steps.yml",
    "**/.goreleaser.yml",
    "**/.sops.yaml",
    "**/.flux.yaml",
];

// bufio.Scanner's default token limit: Go stops reading a pattern file at a longer line.
const MAX_LINE: usize = 64 * 1024;

/// Most patterns (`.sourceignore` lines and `spec.ignore` lines together) one archive is
/// filtered with. Real ignore files hold tens of lines (Flux's own defaults are 24); a few
/// thousand leaves ample room, while every archived path is matched against every pattern, so
/// this bound is what keeps matching cost (entries x patterns) and memory (about 100 bytes a
/// pattern) proportionate. Unbounded, a 1.2 KB layer of repeated lines made 500,000 patterns.
pub const MAX_PATTERNS: usize = 5_000;

/// Most bytes of `.sourceignore` files read from one layer, comments and blank lines included:
/// 1 MiB is a thousand times a large real ignore file and bounds the reading work.
pub const MAX_IGNORE_BYTES: u64 = 1 << 20;

/// Outcome of one pattern against one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchResult {
    /// The pattern says nothing about the path.
    NoMatch,
    /// The pattern excludes the path.
    Exclude,
    /// The pattern (a `!` negation) re-includes the path.
    Include,
}

/// One gitignore pattern, scoped to a directory (its domain).
#[derive(Clone, Debug)]
pub struct Pattern {
    // Shared by every pattern of one file, as one `/`-joined string: a deep directory's path
    // costs its bytes once, not a string per segment per pattern.
    domain: Arc<Domain>,
    parts: Box<[Glob]>,
    inclusion: bool,
    dir_only: bool,
    anchored: bool,
}

impl Pattern {
    /// Parses one pattern line scoped to `domain` (the path segments of its directory relative
    /// to the archive root; empty for the root).
    #[must_use]
    pub fn parse(line: &str, domain: &[String]) -> Self {
        Self::parse_in(line, Arc::new(Domain::new(domain)))
    }

    fn parse_in(line: &str, domain: Arc<Domain>) -> Self {
        let mut p = line;
        let inclusion = p.starts_with('!');
        if inclusion {
            p = &p[1..];
        }
        if !p.ends_with("\\ ") {
            p = p.trim_end_matches(' ');
        }
        let dir_only = p.ends_with('/');
        if dir_only {
            p = &p[..p.len() - 1];
        }
        Self {
            domain,
            anchored: p.contains('/'),
            parts: p.split('/').map(Glob::compile).collect(),
            inclusion,
            dir_only,
        }
    }

    /// Whether this is a `!` pattern.
    #[must_use]
    pub fn is_inclusion(&self) -> bool {
        self.inclusion
    }

    /// Matches `path` (segments relative to the archive root); `is_dir` says whether the last
    /// segment is a directory.
    #[must_use]
    pub fn matches(&self, path: &[&str], is_dir: bool) -> MatchResult {
        self.matches_segments(&segments(path), is_dir)
    }

    fn matches_segments(&self, path: &[Segment<'_>], is_dir: bool) -> MatchResult {
        if path.len() <= self.domain.len {
            return MatchResult::NoMatch;
        }
        if self.domain.segments().zip(path).any(|(d, p)| d != p.text) {
            return MatchResult::NoMatch;
        }
        let rest = &path[self.domain.len..];
        let hit = if self.anchored {
            self.glob_match(rest, is_dir)
        } else {
            self.simple_name_match(rest, is_dir)
        };
        match (hit, self.inclusion) {
            (false, _) => MatchResult::NoMatch,
            (true, true) => MatchResult::Include,
            (true, false) => MatchResult::Exclude,
        }
    }

    // Without a slash the pattern matches any segment; a match on an ancestor covers the whole
    // subtree, and `dir_only` only constrains a match on the last segment.
    fn simple_name_match(&self, path: &[Segment<'_>], is_dir: bool) -> bool {
        let Some(glob) = self.parts.first() else {
            return false;
        };
        for (i, name) in path.iter().enumerate() {
            if !glob.matches(name) {
                continue;
            }
            if self.dir_only && !is_dir && i == path.len() - 1 {
                return false;
            }
            return true;
        }
        false
    }

    // A port of go-git v5.16.4 `globMatch` as vendored by fluxcd/pkg: segments are consumed left
    // to right, `**` lets the next segment float, and once the pattern is used up the remaining
    // path (the subtree) matches too.
    fn glob_match(&self, mut path: &[Segment<'_>], is_dir: bool) -> bool {
        let mut matched = false;
        let mut can_traverse = false;
        let last = self.parts.len().saturating_sub(1);
        for (i, part) in self.parts.iter().enumerate() {
            if part.is_empty() {
                can_traverse = false;
                continue;
            }
            if part.is_double_star() {
                if i == last {
                    break;
                }
                can_traverse = true;
                continue;
            }
            if part.contains_double_star() {
                return false;
            }
            let Some((first, _)) = path.split_first() else {
                return false;
            };
            if can_traverse {
                can_traverse = false;
                while let Some((e, rest)) = path.split_first() {
                    path = rest;
                    if part.matches(e) {
                        matched = true;
                        break;
                    } else if path.is_empty() {
                        matched = false;
                    }
                }
            } else {
                if !part.matches(first) {
                    return false;
                }
                matched = true;
                path = &path[1..];
            }
        }
        if matched && self.dir_only && !is_dir && path.is_empty() {
            matched = false;
        }
        matched
    }
}

/// The directory a pattern is scoped to, relative to the archive root.
#[derive(Debug)]
struct Domain {
    joined: String,
    len: usize,
}

impl Domain {
    fn new(segments: &[String]) -> Self {
        Self {
            joined: segments.join("/"),
            len: segments.len(),
        }
    }

    // Segments never contain `/` (they are file names).
    fn segments(&self) -> impl Iterator<Item = &str> {
        self.joined.split('/').take(self.len)
    }
}

/// An ordered pattern list; the last matching pattern decides.
#[derive(Clone, Debug, Default)]
pub struct IgnoreMatcher {
    patterns: Vec<Pattern>,
    has_inclusion: bool,
}

impl IgnoreMatcher {
    /// Builds a matcher from patterns in increasing priority.
    #[must_use]
    pub fn new(patterns: Vec<Pattern>) -> Self {
        let has_inclusion = patterns.iter().any(Pattern::is_inclusion);
        Self {
            patterns,
            has_inclusion,
        }
    }

    /// The §4.7 rule: an empty `patterns` list yields VCS + default excludes, a non-empty one
    /// yields VCS excludes followed by `patterns`.
    #[must_use]
    pub fn with_defaults(patterns: Vec<Pattern>) -> Self {
        let root: [String; 0] = [];
        let mut all: Vec<Pattern> = VCS_EXCLUDES
            .iter()
            .map(|p| Pattern::parse(p, &root))
            .collect();
        if patterns.is_empty() {
            all.extend(DEFAULT_EXCLUDES.iter().map(|p| Pattern::parse(p, &root)));
        } else {
            all.extend(patterns);
        }
        Self::new(all)
    }

    /// The patterns, lowest priority first.
    #[must_use]
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// True when some pattern is a `!` negation; without one an excluded directory's whole
    /// subtree is excluded and need not be walked.
    #[must_use]
    pub fn has_inclusion(&self) -> bool {
        self.has_inclusion
    }

    /// Whether `path` (segments relative to the archive root) is excluded.
    #[must_use]
    pub fn is_excluded(&self, path: &[&str], is_dir: bool) -> bool {
        // Decoded once for all patterns rather than once per pattern.
        let path = segments(path);
        for p in self.patterns.iter().rev() {
            match p.matches_segments(&path, is_dir) {
                MatchResult::NoMatch => {}
                MatchResult::Exclude => return true,
                MatchResult::Include => return false,
            }
        }
        false
    }
}

/// Parses pattern lines: `#` lines and blank lines are skipped, each line is scoped to `domain`.
#[must_use]
pub fn read_patterns(text: &str, domain: &[String]) -> Vec<Pattern> {
    let domain = Arc::new(Domain::new(domain));
    pattern_lines(text)
        .map(|l| Pattern::parse_in(l, Arc::clone(&domain)))
        .collect()
}

fn pattern_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
}

fn too_many_patterns() -> Error {
    Error::TooManyIgnorePatterns {
        limit: MAX_PATTERNS,
    }
}

/// Loads `.sourceignore` files from `dir` and every sub-directory except `.git`, in lexical
/// pre-order, each scoped to its own directory. Symlinks are never followed.
///
/// # Errors
///
/// [`Error::LoadIgnore`] when a directory cannot be listed or an ignore file cannot be read,
/// [`Error::IgnoreTooLarge`] / [`Error::TooManyIgnorePatterns`] past [`MAX_IGNORE_BYTES`] /
/// [`MAX_PATTERNS`], [`Error::DeadlineExceeded`] once `deadline` has passed.
pub fn load_sourceignore(dir: &Path, deadline: Option<&Deadline>) -> Result<Vec<Pattern>, Error> {
    let mut out = Vec::new();
    let mut budget = MAX_IGNORE_BYTES;
    let load_err = |path: &Path| {
        let path = path.to_path_buf();
        move |(_, source)| Error::LoadIgnore { path, source }
    };
    // One path and segment list, grown on the way down and cut on the way up, plus the pending
    // subdirectories of each open directory: memory proportional to depth plus entries (a
    // hostile layer may nest directories thousands deep and wide).
    let mut path = dir.to_path_buf();
    let mut domain: Vec<String> = Vec::new();
    let mut levels: Vec<std::vec::IntoIter<(std::ffi::OsString, std::fs::Metadata)>> = Vec::new();
    let mut enter = true;
    loop {
        if enter {
            if let Some(d) = deadline {
                d.check("archiving the artifact")?;
            }
            read_ignore_file(&path.join(IGNORE_FILE), &domain, &mut out, &mut budget)?;
            let subdirs = sorted_children(&path, true).map_err(load_err(&path))?;
            levels.push(subdirs.into_iter());
        }
        let Some(level) = levels.last_mut() else {
            break;
        };
        match level.next() {
            Some((name, _)) if name == ".git" => enter = false,
            Some((name, _)) => {
                domain.push(name.to_string_lossy().into_owned());
                path.push(&name);
                enter = true;
            }
            None => {
                levels.pop();
                if !domain.is_empty() {
                    domain.pop();
                    path.pop();
                }
                enter = false;
            }
        }
    }
    Ok(out)
}

fn read_ignore_file(
    path: &Path,
    domain: &[String],
    out: &mut Vec<Pattern>,
    budget: &mut u64,
) -> Result<(), Error> {
    let err = |source| Error::LoadIgnore {
        path: path.to_path_buf(),
        source,
    };
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(err(e)),
    }
    let mut reader = BufReader::new(File::open(path).map_err(err)?);
    let mut line = Vec::new();
    // Made at the first pattern: a file of comments costs no copy of its directory's path.
    let mut shared: Option<Arc<Domain>> = None;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(err)?;
        if n == 0 {
            return Ok(());
        }
        *budget = budget.checked_sub(n as u64).ok_or(Error::IgnoreTooLarge {
            limit: MAX_IGNORE_BYTES,
        })?;
        let complete = line.last() == Some(&b'\n');
        if !complete && n > MAX_LINE {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        if !text.starts_with('#') && !text.trim().is_empty() {
            if out.len() >= MAX_PATTERNS {
                return Err(too_many_patterns());
            }
            let domain = shared.get_or_insert_with(|| Arc::new(Domain::new(domain)));
            out.push(Pattern::parse_in(text, Arc::clone(domain)));
        }
    }
}

/// The matcher Flux uses to re-archive an extracted layer: `.sourceignore` patterns of `dir`,
/// then the `spec.ignore` lines when `spec_ignore` is `Some`, combined per
/// [`IgnoreMatcher::with_defaults`]. `Some("")` therefore archives like `None` (it only differs
/// in `status.observedIgnore`), exactly as Flux does.
///
/// # Errors
///
/// As [`load_sourceignore`]; [`Error::TooManyIgnorePatterns`] also counts `spec.ignore`.
pub fn matcher_for(
    dir: &Path,
    spec_ignore: Option<&str>,
    deadline: Option<&Deadline>,
) -> Result<IgnoreMatcher, Error> {
    let mut patterns = load_sourceignore(dir, deadline)?;
    if let Some(text) = spec_ignore {
        if pattern_lines(text).count() > MAX_PATTERNS - patterns.len() {
            return Err(too_many_patterns());
        }
        patterns.extend(read_patterns(text, &[]));
    }
    Ok(IgnoreMatcher::with_defaults(patterns))
}

/// One `/`-free pattern segment compiled with Go `path/filepath.Match` syntax: `*`, `?`,
/// `[...]` classes with `^` negation and ranges, `\` escapes. A malformed segment never matches
/// (Go returns `ErrBadPattern`, which the matcher treats as no match).
#[derive(Clone, Debug)]
struct Glob {
    source: Box<str>,
    tokens: Option<Box<[Token]>>,
    // The ASCII characters a matching name must contain (its literal tokens): a name lacking
    // one is refused without running the matcher, which keeps long ignore lists cheap.
    literals: u128,
}

#[derive(Clone, Debug)]
enum Token {
    Literal(char),
    AnyChar,
    Star,
    Class {
        negated: bool,
        ranges: Box<[(char, char)]>,
    },
}

impl Glob {
    fn compile(source: &str) -> Self {
        let tokens = tokenize(source).map(Vec::into_boxed_slice);
        let literals = tokens.as_deref().map_or(0, |tokens| {
            ascii_mask(tokens.iter().filter_map(|t| match t {
                Token::Literal(c) => Some(*c),
                _ => None,
            }))
        });
        Self {
            source: source.into(),
            tokens,
            literals,
        }
    }

    fn is_empty(&self) -> bool {
        self.source.is_empty()
    }

    fn is_double_star(&self) -> bool {
        &*self.source == "**"
    }

    fn contains_double_star(&self) -> bool {
        self.source.contains("**")
    }

    #[cfg(test)]
    fn matches_str(&self, name: &str) -> bool {
        self.matches(&Segment::new(name))
    }

    fn matches(&self, name: &Segment<'_>) -> bool {
        if self.literals & !name.ascii != 0 {
            return false;
        }
        match &self.tokens {
            Some(tokens) => match_tokens(tokens, &name.chars),
            None => false,
        }
    }
}

fn ascii_mask(chars: impl Iterator<Item = char>) -> u128 {
    chars
        .filter(char::is_ascii)
        .fold(0, |mask, c| mask | (1u128 << u32::from(c)))
}

/// A path segment with its characters decoded, as the glob matcher walks them.
struct Segment<'a> {
    text: &'a str,
    chars: Vec<char>,
    ascii: u128,
}

impl<'a> Segment<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            chars: text.chars().collect(),
            ascii: ascii_mask(text.chars()),
        }
    }
}

fn segments<'a>(path: &[&'a str]) -> Vec<Segment<'a>> {
    path.iter().map(|s| Segment::new(s)).collect()
}

fn tokenize(pattern: &str) -> Option<Vec<Token>> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        tokens.push(match c {
            '*' => Token::Star,
            '?' => Token::AnyChar,
            '\\' => {
                let lit = *chars.get(i)?;
                i += 1;
                Token::Literal(lit)
            }
            '[' => {
                let mut negated = false;
                if chars.get(i) == Some(&'^') {
                    negated = true;
                    i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    if chars.get(i) == Some(&']') && !ranges.is_empty() {
                        i += 1;
                        break;
                    }
                    let lo = class_char(&chars, &mut i)?;
                    let hi = if chars.get(i) == Some(&'-') {
                        i += 1;
                        class_char(&chars, &mut i)?
                    } else {
                        lo
                    };
                    ranges.push((lo, hi));
                }
                Token::Class {
                    negated,
                    ranges: ranges.into_boxed_slice(),
                }
            }
            c => Token::Literal(c),
        });
    }
    Some(tokens)
}

// Go's getEsc: a range bound may be escaped, but an unescaped `-` or `]` (or the end) is an error.
fn class_char(chars: &[char], i: &mut usize) -> Option<char> {
    let c = *chars.get(*i)?;
    *i += 1;
    match c {
        '-' | ']' => None,
        '\\' => {
            let e = *chars.get(*i)?;
            *i += 1;
            Some(e)
        }
        c => Some(c),
    }
}

// Every token but `*` consumes exactly one character, so greedy matching with a single
// backtrack point per star is exact.
fn match_tokens(tokens: &[Token], text: &[char]) -> bool {
    let (mut t, mut s) = (0usize, 0usize);
    let mut backtrack: Option<(usize, usize)> = None;
    while s < text.len() {
        match tokens.get(t) {
            Some(Token::Star) => {
                backtrack = Some((t, s));
                t += 1;
                continue;
            }
            Some(tok) if single_matches(tok, text[s]) => {
                t += 1;
                s += 1;
                continue;
            }
            _ => {}
        }
        match backtrack {
            Some((bt, bs)) => {
                t = bt + 1;
                s = bs + 1;
                backtrack = Some((bt, bs + 1));
            }
            None => return false,
        }
    }
    tokens[t.min(tokens.len())..]
        .iter()
        .all(|tok| matches!(tok, Token::Star))
}

fn single_matches(token: &Token, c: char) -> bool {
    match token {
        Token::Literal(l) => *l == c,
        Token::AnyChar => true,
        Token::Star => false,
        Token::Class { negated, ranges } => {
            let hit = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
            hit != *negated
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> Vec<&str> {
        p.split('/').filter(|s| !s.is_empty()).collect()
    }

    fn excluded(m: &IgnoreMatcher, p: &str, is_dir: bool) -> bool {
        m.is_excluded(&segs(p), is_dir)
    }

    fn root_matcher(lines: &str) -> IgnoreMatcher {
        IgnoreMatcher::with_defaults(read_patterns(lines, &[]))
    }

    #[test]
    fn go_glob_syntax_is_supported() {
        let g = |p: &str, n: &str| Glob::compile(p).matches_str(n);
        assert!(g("*.yaml", "a.yaml"));
        assert!(!g("*.yaml", "a.yml"));
        assert!(g("a?c", "abc"));
        assert!(g("[a-c]x", "bx"));
        assert!(!g("[^a-c]x", "bx"));
        assert!(g("[^a-c]x", "dx"));
        assert!(g("\\*", "*"));
        assert!(!g("\\*", "a"));
        assert!(g("*a*b*", "xxaxxbxx"));
        assert!(!g("*a*b*", "xxbxxaxx"));
        assert!(g("", "") && !g("", "a"));
        // Malformed patterns never match (Go: ErrBadPattern).
        assert!(!g("[", "["));
        assert!(!g("[]a]", "]"));
        assert!(!g("[a-]", "a"));
        assert!(!g("ab\\", "ab"));
        // `!` is a literal inside a Go class, not a negation.
        assert!(g("[!a]", "!"));
    }

    #[test]
    fn default_list_applies_when_no_pattern_exists() {
        let m = root_matcher("");
        for (p, dir) in [
            (".git", true),
            (".git/config", false),
            (".gitignore", false),
            ("sub/.gitmodules", false),
            ("img/logo.png", false),
            ("x.tar.gz", false),
            (".github", true),
            (".github/workflows/ci.yaml", false),
            ("a/b/.sops.yaml", false),
            (".flux.yaml", false),
            ("cloudbuild.yaml", false),
        ] {
            assert!(excluded(&m, p, dir), "{p} should be excluded");
        }
        for (p, dir) in [
            ("deploy.yaml", false),
            ("kustomization.yaml", false),
            (".github", false), // dir-only pattern, a plain file named .github stays
            ("png", true),
        ] {
            assert!(!excluded(&m, p, dir), "{p} should be kept");
        }
    }

    #[test]
    fn any_user_pattern_drops_the_default_list_but_keeps_vcs_excludes() {
        let m = root_matcher("foo.txt");
        assert!(excluded(&m, "foo.txt", false));
        assert!(!excluded(&m, "logo.png", false));
        assert!(excluded(&m, ".git/HEAD", false));
        assert!(excluded(&m, ".gitignore", false));
    }

    #[test]
    fn later_patterns_win_and_negation_reincludes() {
        let m = root_matcher("*.yaml\n!keep.yaml\n");
        assert!(excluded(&m, "a.yaml", false));
        assert!(!excluded(&m, "keep.yaml", false));
        assert!(!excluded(&m, "sub/keep.yaml", false));
        let m = root_matcher("!keep.yaml\n*.yaml\n");
        assert!(excluded(&m, "keep.yaml", false));
        // A negation can even re-include a VCS file.
        let m = root_matcher("!.gitignore");
        assert!(!excluded(&m, ".gitignore", false));
    }

    #[test]
    fn trailing_slash_anchoring_and_double_star() {
        let m = root_matcher("build/\n/top.txt\ndocs/*.md\n**/secret\na/**/z.txt\n");
        assert!(excluded(&m, "build", true));
        assert!(!excluded(&m, "build", false));
        assert!(excluded(&m, "x/build/out.bin", false));
        assert!(excluded(&m, "top.txt", false));
        assert!(!excluded(&m, "sub/top.txt", false));
        assert!(excluded(&m, "docs/readme.md", false));
        assert!(!excluded(&m, "x/docs/readme.md", false));
        assert!(excluded(&m, "secret", false));
        assert!(excluded(&m, "deep/er/secret", false));
        assert!(excluded(&m, "a/z.txt", false));
        assert!(excluded(&m, "a/b/c/z.txt", false));
        assert!(!excluded(&m, "b/z.txt", false));
    }

    #[test]
    fn comments_blank_lines_and_trailing_spaces() {
        let m = root_matcher("# foo.txt\n\n   \nbar.txt   \nsp\\ \n");
        assert!(!excluded(&m, "# foo.txt", false));
        assert!(!excluded(&m, "foo.txt", false));
        assert!(excluded(&m, "bar.txt", false));
        assert!(excluded(&m, "sp ", false));
    }

    #[test]
    fn sourceignore_files_are_scoped_to_their_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("sub/deeper")).unwrap();
        fs::create_dir_all(root.join(".git")).unwrap();
        fs::write(root.join("sub/.sourceignore"), "# c\n*.txt\r\n").unwrap();
        fs::write(root.join(".git/.sourceignore"), "*\n").unwrap();
        let m = matcher_for(root, None, None).unwrap();
        assert_eq!(m.patterns().len(), VCS_EXCLUDES.len() + 1);
        assert!(excluded(&m, "sub/a.txt", false));
        assert!(excluded(&m, "sub/deeper/a.txt", false));
        assert!(!excluded(&m, "a.txt", false));
        assert!(!excluded(&m, "other/a.txt", false));
        // The nested file disables the default list for the whole tree.
        assert!(!excluded(&m, "logo.png", false));
    }

    #[test]
    fn sourceignore_files_are_read_in_lexical_pre_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in ["b", "a/c", "a"] {
            fs::create_dir_all(root.join(d)).unwrap();
            fs::write(root.join(d).join(IGNORE_FILE), "x\n").unwrap();
        }
        fs::write(root.join(IGNORE_FILE), "x\n").unwrap();
        let domains: Vec<Vec<String>> = load_sourceignore(root, None)
            .unwrap()
            .into_iter()
            .map(|p| p.domain.segments().map(String::from).collect())
            .collect();
        let expect: Vec<Vec<String>> = [vec![], vec!["a"], vec!["a", "c"], vec!["b"]]
            .into_iter()
            .map(|v| v.into_iter().map(String::from).collect())
            .collect();
        assert_eq!(domains, expect);
    }

    #[test]
    fn spec_ignore_empty_string_archives_like_none() {
        let dir = tempfile::tempdir().unwrap();
        let none = matcher_for(dir.path(), None, None).unwrap();
        let empty = matcher_for(dir.path(), Some(""), None).unwrap();
        let comment = matcher_for(dir.path(), Some("# only a comment\n"), None).unwrap();
        for m in [&none, &empty, &comment] {
            assert!(excluded(m, "logo.png", false));
            assert_eq!(
                m.patterns().len(),
                VCS_EXCLUDES.len() + DEFAULT_EXCLUDES.len()
            );
        }
        let some = matcher_for(dir.path(), Some("foo.txt"), None).unwrap();
        assert!(!excluded(&some, "logo.png", false));
        assert!(excluded(&some, "foo.txt", false));
    }

    #[test]
    fn pattern_count_and_ignore_file_bytes_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let at_bound: String = (0..MAX_PATTERNS).map(|i| format!("p{i}\n")).collect();
        fs::write(dir.path().join(IGNORE_FILE), &at_bound).unwrap();
        let m = matcher_for(dir.path(), None, None).unwrap();
        assert_eq!(m.patterns().len(), VCS_EXCLUDES.len() + MAX_PATTERNS);
        // One more, from spec.ignore or from a nested file, is refused.
        let e = matcher_for(dir.path(), Some("more"), None).unwrap_err();
        assert!(matches!(e, Error::TooManyIgnorePatterns { .. }), "{e:?}");
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub").join(IGNORE_FILE), "x\n").unwrap();
        let e = matcher_for(dir.path(), None, None).unwrap_err();
        assert!(matches!(e, Error::TooManyIgnorePatterns { .. }), "{e:?}");

        // Comments and blank lines count against the byte bound.
        let dir = tempfile::tempdir().unwrap();
        let comments = "#\n".repeat(usize::try_from(MAX_IGNORE_BYTES).unwrap() / 2 + 1);
        fs::write(dir.path().join(IGNORE_FILE), comments).unwrap();
        let e = matcher_for(dir.path(), None, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            ".sourceignore files are bigger than the maximum of 1048576 bytes"
        );
        assert!(matches!(e, Error::IgnoreTooLarge { .. }), "{e:?}");
    }

    #[test]
    fn loading_stops_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let past = Deadline::new(
            std::time::Instant::now() - std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(1),
        );
        let e = matcher_for(dir.path(), None, Some(&past)).unwrap_err();
        assert!(matches!(e, Error::DeadlineExceeded { .. }), "{e:?}");
    }

    #[test]
    fn a_negation_in_a_sourceignore_reincludes_under_a_root_rule() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("charts")).unwrap();
        fs::write(dir.path().join("charts/.sourceignore"), "!values.yaml\n").unwrap();
        let m = matcher_for(dir.path(), Some("*.yaml"), None).unwrap();
        // spec.ignore comes after the files, so it has the last word.
        assert!(excluded(&m, "charts/values.yaml", false));
        let m = matcher_for(dir.path(), None, None).unwrap();
        assert!(!excluded(&m, "charts/values.yaml", false));
        assert!(m.has_inclusion());
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::mutation::config;

    /// Text over the characters that mean something to gitignore patterns.
    fn pattern_text(max: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(
            proptest::sample::select("ab/*?[]!^\\-#. \t\u{e9}".chars().collect::<Vec<_>>()),
            0..=max,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        #![proptest_config(config())]

        /// Any ignore file and any single pattern compile and match without panicking.
        #[test]
        fn arbitrary_ignore_rules_never_panic(
            lines in proptest::collection::vec(pattern_text(12), 1..5),
            domain in pattern_text(4),
            single in pattern_text(16),
            is_dir in any::<bool>(),
        ) {
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let matcher = IgnoreMatcher::with_defaults(read_patterns(&text, &[domain]));
            let single = Pattern::parse(&single, &[]);
            let paths: [&[&str]; 4] = [&["a"], &["a", "b"], &["dir", "x.yaml"], &[".git"]];
            for path in paths {
                let _ = matcher.is_excluded(path, is_dir);
                let _ = single.matches(path, false);
            }
        }

        /// A plain name excludes that name at any depth, and a negation after it brings it back.
        #[test]
        fn a_plain_name_is_excluded_and_negation_restores_it(
            name in "[a-z][a-z0-9]{0,7}",
            parent in "[a-z][a-z0-9]{0,7}",
        ) {
            prop_assume!(name != "git");
            let matcher = IgnoreMatcher::with_defaults(read_patterns(&format!("{name}\n"), &[]));
            prop_assert!(matcher.is_excluded(&[&name], false));
            prop_assert!(matcher.is_excluded(&[&parent, &name], false));
            let back = IgnoreMatcher::with_defaults(read_patterns(&format!("{name}\n!{name}\n"), &[]));
            prop_assert!(!back.is_excluded(&[&name], false));
        }
    }
}
