//! Values out of the router's JavaScript pages (`update_clients.asp`, `ajax_onboarding.asp`,
//! the Traffic Analyzer pages): find `name =` or `name :` and cut the literal that follows with
//! a bracket-balancing scan, which survives nesting where a lazy regex would not.

/// The literal assigned to `name` (the last assignment if there are several), or `None`.
pub fn value<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let mut found = None;
    let mut from = 0;
    while let Some(pos) = text[from..].find(name) {
        let start = from + pos;
        from = start + name.len();
        let before_ok = start == 0 || !is_ident(text[..start].chars().next_back().unwrap_or(' '));
        let rest = &text[from..];
        let after = rest.trim_start();
        let Some(op) = after.chars().next() else {
            break;
        };
        if !before_ok || !(op == '=' || op == ':') || after.starts_with("==") {
            continue;
        }
        let literal = after[1..].trim_start();
        if let Some(len) = literal_len(literal) {
            found = Some(&literal[..len]);
        }
    }
    found
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

/// Length of the JS literal at the start of `text`: a bracketed value, a quoted string, or a
/// bare token up to `;`, `,` or a line end.
fn literal_len(text: &str) -> Option<usize> {
    let first = text.chars().next()?;
    match first {
        '[' | '{' => balanced_len(text),
        '"' | '\'' => {
            let mut escaped = false;
            for (i, c) in text.char_indices().skip(1) {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    c if c == first => return Some(i + 1),
                    _ => {}
                }
            }
            None
        }
        _ => Some(text.find([';', ',', '\n', '\r']).unwrap_or(text.len())),
    }
}

fn balanced_len(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if let Some(q) = quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                c if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '[' | '{' | '(' => depth += 1,
            ']' | '}' | ')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + c.len_utf8());
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_nested_literals() {
        let js =
            "var a = 1;\noriginData = {\nfromNetworkmapd : [{\"x\": {\"y\": \"]\"}}],\nnmpClient : []\n}\nb = 'q;r';";
        assert_eq!(value(js, "fromNetworkmapd"), Some("[{\"x\": {\"y\": \"]\"}}]"));
        assert_eq!(value(js, "nmpClient"), Some("[]"));
        assert_eq!(value(js, "b"), Some("'q;r'"));
        assert_eq!(value(js, "a"), Some("1"));
    }

    #[test]
    fn ignores_comparisons_and_longer_names() {
        let js = "if(x == 2) f(); xx = 5; x = 3;";
        assert_eq!(value(js, "x"), Some("3"));
        assert_eq!(
            value("array_statistics = [[1,2],[3,4]];", "array_statistics"),
            Some("[[1,2],[3,4]]")
        );
    }

    #[test]
    fn truncated_literals_are_none() {
        assert_eq!(value("a = [[1,2],[3", "a"), None);
        assert_eq!(value("a = \"open", "a"), None);
        assert_eq!(value("", "a"), None);
    }
}
