//! Prompt templates: text with `{name}` placeholders.
//!
//! A placeholder is `{` + a name + `}`, where a name is an identifier
//! (`input`, `target`) or `meta.` + a meta key (`meta.options`, letters,
//! digits, `_` and `-`). `{{` and `}}` are literal braces. Any other brace is
//! literal too, so JSON in a prompt (`{"route": [...]}`) needs no escaping,
//! but `{x}` is a placeholder and must be known (checked when the suite loads).
//! Substituted values are inserted as they are, never re-scanned.

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    /// Literal text.
    Text(&'a str),
    /// A placeholder name.
    Slot(&'a str),
}

fn is_name(name: &str) -> bool {
    let (head, key) = match name.split_once('.') {
        Some(("meta", key)) => ("meta", Some(key)),
        Some(_) => return false,
        None => (name, None),
    };
    let mut chars = head.chars();
    let ident = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    ident
        && key.is_none_or(|k| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
}

/// Splits a template into literal text and placeholders.
pub(crate) fn parse(template: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut literal_start = 0;
    let mut i = 0;
    let bytes = template.as_bytes();
    while i < bytes.len() {
        let rest = &template[i..];
        if rest.starts_with("{{") || rest.starts_with("}}") {
            pieces.push(Piece::Text(&template[literal_start..i + 1]));
            i += 2;
            literal_start = i;
            continue;
        }
        if bytes[i] == b'{'
            && let Some(close) = rest.find('}')
            && is_name(&rest[1..close])
        {
            if literal_start < i {
                pieces.push(Piece::Text(&template[literal_start..i]));
            }
            pieces.push(Piece::Slot(&rest[1..close]));
            i += close + 1;
            literal_start = i;
            continue;
        }
        i += rest.chars().next().map_or(1, char::len_utf8);
    }
    if literal_start < template.len() {
        pieces.push(Piece::Text(&template[literal_start..]));
    }
    pieces
}

/// The placeholder names a template uses, in order.
pub(crate) fn slots(template: &str) -> Vec<&str> {
    parse(template)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Slot(name) => Some(name),
            Piece::Text(_) => None,
        })
        .collect()
}

/// Fills a template; a placeholder `lookup` does not know stays as written.
pub(crate) fn render(template: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len());
    for piece in parse(template) {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Slot(name) => match lookup(name) {
                Some(value) => out.push_str(&value),
                None => {
                    out.push('{');
                    out.push_str(name);
                    out.push('}');
                }
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_escapes_and_literal_json() {
        let t = "Q: {input}\n{{literal}} {\"route\": [1]} {meta.max-stops} {a.b} {x";
        assert_eq!(slots(t), vec!["input", "meta.max-stops"]);
        let out = render(t, |name| match name {
            "input" => Some("{input} stays".to_string()),
            _ => None,
        });
        assert_eq!(
            out,
            "Q: {input} stays\n{literal} {\"route\": [1]} {meta.max-stops} {a.b} {x"
        );
        assert_eq!(render("}}{{", |_| None), "}{");
        assert_eq!(render("", |_| None), "");
        assert_eq!(render("é{input}ü", |_| Some("ß".into())), "éßü");
    }
}
