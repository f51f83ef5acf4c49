//! Flag values as Flux's CLI reads them: Go durations, pflag string slices (CSV records) and the
//! default `--ignore-paths`.

use std::time::Duration;

use clap::Args;

use super::Error;

/// The default of `--ignore-paths`: Flux's `excludeOCI`, the VCS excludes then the extension
/// excludes of `fluxcd/pkg/sourceignore`.
pub const DEFAULT_IGNORE_PATHS: &str = ".git/,.gitignore,.gitmodules,.gitattributes,\
*.jpg,*.jpeg,*.gif,*.png,*.wmv,*.flv,*.tar.gz,*.zip";

/// The ignore flags of the verbs that build a tarball (`push`, `build`, `diff`).
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct IgnoreArgs {
    /// Paths to ignore, in .gitignore format, comma-separated (CSV, repeatable). An empty
    /// value ignores nothing.
    #[arg(long, default_value = DEFAULT_IGNORE_PATHS)]
    pub ignore_paths: Vec<String>,

    /// More paths to ignore, added to --ignore-paths (comma-separated, repeatable).
    #[arg(long)]
    pub add_ignore_paths: Vec<String>,
}

impl Default for IgnoreArgs {
    /// The command line's defaults.
    fn default() -> Self {
        IgnoreArgs {
            ignore_paths: vec![DEFAULT_IGNORE_PATHS.to_string()],
            add_ignore_paths: Vec::new(),
        }
    }
}

impl IgnoreArgs {
    /// The patterns: `--ignore-paths`, then `--add-ignore-paths`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidIgnorePaths`] for a value that is not a CSV record.
    pub fn patterns(&self) -> Result<Vec<String>, Error> {
        let mut patterns = ignore_patterns(&self.ignore_paths)?;
        patterns.extend(ignore_patterns(&self.add_ignore_paths)?);
        Ok(patterns)
    }
}

/// A Go duration (`5m`, `1m30s`) for clap.
pub(crate) fn go_duration(s: &str) -> Result<Duration, String> {
    crate::api::duration::parse(s).map_err(|e| e.to_string())
}

/// The `--ignore-paths` values as patterns: each value is one CSV record, as pflag's
/// `StringSlice` reads it.
pub(crate) fn ignore_patterns(values: &[String]) -> Result<Vec<String>, Error> {
    let mut patterns = Vec::new();
    for value in values {
        patterns.extend(
            split_csv(value).map_err(|reason| Error::InvalidIgnorePaths {
                value: value.clone(),
                reason,
            })?,
        );
    }
    Ok(patterns)
}

/// One CSV record as pflag's `StringSlice` reads a flag value (Go's `encoding/csv`, strict
/// quotes): comma-separated fields, a field starting with `"` is quoted (`""` is a quote), only
/// the first record counts, an empty value is no field at all.
pub(crate) fn split_csv(value: &str) -> Result<Vec<String>, &'static str> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let value = value.replace("\r\n", "\n");
    // encoding/csv skips empty lines before the record.
    let value = value.trim_start_matches('\n');
    let mut fields = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("extraneous or missing \" in quoted-field"),
                    Some('"') => match chars.peek() {
                        Some('"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some(',') | Some('\n') | None => break,
                        Some(_) => return Err("extraneous or missing \" in quoted-field"),
                    },
                    Some(c) => field.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' || c == '\n' {
                    break;
                }
                if c == '"' {
                    return Err("bare \" in non-quoted-field");
                }
                field.push(c);
                chars.next();
            }
        }
        fields.push(field);
        match chars.next() {
            Some(',') => continue,
            _ => return Ok(fields),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_path_values_are_csv_records() {
        let ok = |v: &str| split_csv(v).unwrap_or_else(|e| panic!("{v}: {e}"));
        assert_eq!(ok(""), Vec::<String>::new());
        assert_eq!(ok("a"), vec!["a"]);
        assert_eq!(ok("a,,b"), vec!["a", "", "b"]);
        assert_eq!(ok(" a , b"), vec![" a ", " b"]);
        assert_eq!(ok("\"a,b\",c"), vec!["a,b", "c"]);
        assert_eq!(ok("\"x\"\"y\""), vec!["x\"y"]);
        assert_eq!(ok("a,b\nc,d"), vec!["a", "b"]);
        assert_eq!(ok("\n\na"), vec!["a"]);
        assert_eq!(ok(DEFAULT_IGNORE_PATHS).len(), 12);
        assert!(split_csv("a\"b").is_err());
        assert!(split_csv("\"ab").is_err());
        assert!(split_csv("\"a\"b").is_err());
    }
}
