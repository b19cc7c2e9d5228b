//! The Prometheus text exposition format (version 0.0.4, what node_exporter serves), read only
//! as far as this source needs: one sample per line, `name{label="value",…} value [timestamp]`,
//! `#` lines are comments (HELP and TYPE included), blank lines are ignored. Label values
//! escape `\\`, `\"` and `\n`; values are Go floats (`NaN`, `+Inf`, `1.5e+09`). Names may also
//! be quoted inside the braces (`{"a.b",x="y"}`, the UTF-8 names of newer exporters).
//!
//! The reply comes from another machine: nothing here trusts it. A line that does not parse
//! is counted and skipped (one odd collector must not hide the network counters), and only the
//! few families the source asks for are kept, so memory does not grow with the reply.

use std::borrow::Cow;

/// One parsed sample line, borrowing from the text where nothing was escaped.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    pub name: Cow<'a, str>,
    pub labels: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub value: f64,
}

impl Sample<'_> {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_ref())
    }
}

/// Why a line is not a sample; the text itself is never repeated (it is the exporter's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("no metric name")]
    NoName,
    #[error("unterminated label set")]
    UnterminatedLabels,
    #[error("malformed label")]
    BadLabel,
    #[error("no value")]
    NoValue,
    #[error("the value is not a number")]
    BadValue,
    #[error("unexpected text after the value")]
    Trailing,
}

/// Parses one line: `Ok(None)` for blank and comment lines.
pub fn parse_line(line: &str) -> Result<Option<Sample<'_>>, LineError> {
    let line = line.trim_matches([' ', '\t', '\r']);
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let mut cur = Cursor { rest: line };
    let mut name = None;
    let mut spaced = false;
    if !cur.rest.starts_with('{') {
        let n = cur.take_while(is_name_char);
        if n.is_empty() || n.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(LineError::NoName);
        }
        name = Some(Cow::Borrowed(n));
        spaced = cur.skip_blanks();
    }
    let mut labels = Vec::new();
    if cur.eat('{') {
        parse_labels(&mut cur, &mut name, &mut labels)?;
        spaced = cur.skip_blanks();
    }
    let name = name.ok_or(LineError::NoName)?;
    if !spaced {
        // `name}` or `name{…}1`: the value must be its own token.
        return Err(if cur.rest.is_empty() {
            LineError::NoValue
        } else {
            LineError::BadValue
        });
    }
    let value = cur.take_while(|c| c != ' ' && c != '\t');
    if value.is_empty() {
        return Err(LineError::NoValue);
    }
    let value = parse_value(value).ok_or(LineError::BadValue)?;
    cur.skip_blanks();
    // An optional timestamp (integer milliseconds), then nothing.
    let timestamp = cur.take_while(|c| c != ' ' && c != '\t');
    if !timestamp.is_empty() && timestamp.parse::<i64>().is_err() {
        return Err(LineError::Trailing);
    }
    cur.skip_blanks();
    if !cur.rest.is_empty() {
        return Err(LineError::Trailing);
    }
    Ok(Some(Sample { name, labels, value }))
}

/// After `{`: `label="value"` pairs separated by commas (a trailing one allowed), up to `}`.
/// A quoted item without `=` is the metric's name (only one, and only without a name before).
fn parse_labels<'a>(
    cur: &mut Cursor<'a>,
    name: &mut Option<Cow<'a, str>>,
    labels: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>,
) -> Result<(), LineError> {
    loop {
        cur.skip_blanks();
        if cur.rest.is_empty() {
            return Err(LineError::UnterminatedLabels);
        }
        if cur.eat('}') {
            return Ok(());
        }
        let key = if cur.eat('"') {
            quoted(cur)?
        } else {
            let k = cur.take_while(is_name_char);
            if k.is_empty() {
                return Err(LineError::BadLabel);
            }
            Cow::Borrowed(k)
        };
        cur.skip_blanks();
        if cur.eat('=') {
            cur.skip_blanks();
            if !cur.eat('"') {
                return Err(LineError::BadLabel);
            }
            let value = quoted(cur)?;
            labels.push((key, value));
        } else if name.is_none() && labels.is_empty() {
            *name = Some(key);
        } else {
            return Err(LineError::BadLabel);
        }
        cur.skip_blanks();
        if cur.eat(',') {
            continue;
        }
        if cur.eat('}') {
            return Ok(());
        }
        return Err(if cur.rest.is_empty() {
            LineError::UnterminatedLabels
        } else {
            LineError::BadLabel
        });
    }
}

/// After an opening `"`: the string up to the closing one, escapes resolved. An unknown escape
/// is kept as written (`\d` stays `\d`), as lenient readers do.
fn quoted<'a>(cur: &mut Cursor<'a>) -> Result<Cow<'a, str>, LineError> {
    let text = cur.rest;
    let mut owned: Option<String> = None;
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                cur.rest = &text[i + 1..];
                return Ok(owned.map_or(Cow::Borrowed(&text[..i]), Cow::Owned));
            }
            '\\' => {
                let buf = owned.get_or_insert_with(|| text[..i].to_owned());
                match chars.next() {
                    Some((_, 'n')) => buf.push('\n'),
                    Some((_, '\\')) => buf.push('\\'),
                    Some((_, '"')) => buf.push('"'),
                    Some((_, other)) => {
                        buf.push('\\');
                        buf.push(other);
                    }
                    None => return Err(LineError::UnterminatedLabels),
                }
            }
            other => {
                if let Some(buf) = owned.as_mut() {
                    buf.push(other);
                }
            }
        }
    }
    Err(LineError::UnterminatedLabels)
}

/// A Go float as exporters print it: decimal or exponent notation, `NaN`, `+Inf`, `-Inf`.
fn parse_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        // Rust would also read `inf`, `infinity` and `nan` in any case; Go's text format does not
        // print them, so they are not numbers here.
        _ if text.bytes().any(|b| b.is_ascii_alphabetic() && !matches!(b, b'e' | b'E')) => None,
        _ => text.parse().ok(),
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let end = self.rest.find(|c: char| !keep(c)).unwrap_or(self.rest.len());
        let (taken, rest) = self.rest.split_at(end);
        self.rest = rest;
        taken
    }

    /// Skips spaces and tabs; whether there were any.
    fn skip_blanks(&mut self) -> bool {
        let before = self.rest.len();
        self.rest = self.rest.trim_start_matches([' ', '\t']);
        self.rest.len() != before
    }

    fn eat(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }
}
