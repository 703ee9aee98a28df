//! Rewrites Rego v0 source, before regorus parses it, where regorus reads
//! valid Rego differently from OPA (the same idea as Gatekeeper's own
//! rewriting of template Rego). Each rewrite is purely syntactic and keeps
//! every line where it was, so errors still point at the author's lines:
//!
//! - **Chained rule bodies** `p[x] { A } { B }` mean two definitions of `p`
//!   in OPA (a logical or); regorus reads the second body as an `else`
//!   (microsoft/regorus#403 rejects it for set rules, and evaluates it as an
//!   else for functions). They become `p[x] { A } p[x] { B }`.
//! - **A statement that starts with `(`** on a new line is a new expression in
//!   OPA; regorus continues the previous line as a call (`x\n(a - b) > c`
//!   becomes `x(a - b) > c`). A `;` is put at the end of the previous line.
//! - **Negated calls evaluate their arguments first** in OPA: its compiler
//!   binds every argument that is a reference or a call to a variable before
//!   the `not` (open-policy-agent/opa#4743), so `not f(x.missing)` is
//!   undefined, not true. regorus negates the whole call. Such arguments are
//!   bound on the same line: `__paved_n1 := x.missing; not f(__paved_n1)`.
//!   Comparisons (`not a.b == "x"`) are calls too.
//! - **`some x` after an iteration** fails in regorus ("duplicated
//!   definition of local variable") once the body runs for a second binding:
//!   the platform team's own seed policy does this (`some i … some j`). A bare
//!   `some` declaration only introduces names, so later ones are moved to the
//!   body's first `some` line (`some i, j`), which regorus evaluates once.
//! - **`sprintf` with fewer arguments than verbs** prints `%!v(MISSING)` in
//!   OPA (Go's fmt); regorus raises an error, which makes the rule undefined.
//!   Verbs past the last argument of a literal array become that text.

/// One lexical piece of Rego that matters here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    Open(char),
    Close(char),
    Newline,
    /// Anything else that is code (identifiers, operators, literals).
    Code,
}

/// Byte offsets of the pieces, skipping strings and comments.
fn pieces(src: &str) -> Vec<(usize, Piece)> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                out.push((i, Piece::Code));
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                out.push((i, Piece::Code));
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => out.push((i, Piece::Open(c as char))),
            b')' | b']' | b'}' => out.push((i, Piece::Close(c as char))),
            b'\n' => out.push((i, Piece::Newline)),
            b' ' | b'\t' | b'\r' => {}
            _ => out.push((i, Piece::Code)),
        }
        i += 1;
    }
    out
}

/// Apply every rewrite.
pub fn normalize_v0(src: &str) -> String {
    let src = split_chained_bodies(src);
    let src = separate_paren_statements(&src);
    let src = gather_some_declarations(&src);
    let mut counter = 0;
    src.split_inclusive('\n')
        .map(|line| {
            let line = missing_sprintf_args(line);
            hoist_negated_arguments(&line, &mut counter)
        })
        .collect()
}

/// The variables of a bare `some a, b` statement on its own line.
fn bare_some(line: &str) -> Option<Vec<&str>> {
    let rest = line.trim().strip_prefix("some ")?;
    let vars: Vec<&str> = rest.split(',').map(str::trim).collect();
    vars.iter().all(|v| is_ident(v)).then_some(vars)
}

/// Move later bare `some` declarations of a body to its first one.
fn gather_some_declarations(src: &str) -> String {
    let ps = pieces(src);
    let mut lines: Vec<String> = src.split_inclusive('\n').map(str::to_string).collect();
    // The innermost open brace at the start of each line.
    let mut line_starts = Vec::new();
    let mut offset = 0;
    for l in &lines {
        line_starts.push(offset);
        offset += l.len();
    }
    let mut stack: Vec<usize> = Vec::new();
    let mut k = 0;
    // For each body (by its brace offset): the line of its first bare `some`.
    let mut first_some: std::collections::HashMap<usize, usize> = Default::default();
    let mut moves: Vec<(usize, usize, Vec<String>)> = Vec::new();
    for (n, start) in line_starts.iter().enumerate() {
        while k < ps.len() && ps[k].0 < *start {
            match ps[k].1 {
                Piece::Open(_) => stack.push(ps[k].0),
                Piece::Close(_) => {
                    stack.pop();
                }
                _ => {}
            }
            k += 1;
        }
        let Some(&body) = stack.last() else { continue };
        if src.as_bytes()[body] != b'{' {
            continue;
        }
        if let Some(vars) = bare_some(&lines[n]) {
            match first_some.get(&body) {
                None => {
                    first_some.insert(body, n);
                }
                Some(&first) => {
                    moves.push((first, n, vars.iter().map(|v| v.to_string()).collect()))
                }
            }
        }
    }
    for (first, later, vars) in moves {
        let newline = if lines[later].ends_with('\n') {
            "\n"
        } else {
            ""
        };
        lines[later] = newline.to_string();
        let line = lines[first].trim_end_matches('\n').to_string();
        lines[first] = format!("{line}, {}\n", vars.join(", "));
    }
    lines.concat()
}

/// The characters of `text` outside double-quoted strings, with their byte
/// offsets; a quote that opens a string is reported (as `"`), the string's
/// content and closing quote are not.
fn code_chars(text: &str) -> impl Iterator<Item = (usize, char)> + '_ {
    let mut in_string = false;
    let mut escaped = false;
    text.char_indices().filter(move |&(_, c)| {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            return false;
        }
        in_string = c == '"';
        true
    })
}

/// Split `text` at top-level commas (outside brackets and strings); `None`
/// for unbalanced brackets or a comment.
fn split_top_level(text: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in code_chars(text) {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
            }
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            '#' => return None,
            _ => {}
        }
    }
    if depth != 0 {
        return None;
    }
    parts.push(&text[start..]);
    Some(parts)
}

/// The index just past the bracket that closes the one opening at `open`.
fn closing(text: &str, open: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (i, c) in code_chars(&text[open..]) {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether a term is a reference with a selector (`a.b`, `a[x]`) or a call
/// (`f(x)`, `a.b(x)`): what OPA evaluates before a negation.
fn is_dynamic(term: &str) -> bool {
    let t = term.trim();
    let head_end = t.find(['.', '[', '(']).unwrap_or(t.len());
    let head = &t[..head_end];
    if !is_ident(head) || head_end == t.len() {
        return false;
    }
    if matches!(head, "true" | "false" | "null") {
        return false;
    }
    // The rest must be selectors and calls only.
    let mut i = head_end;
    while i < t.len() {
        let rest = &t[i..];
        if let Some(after) = rest.strip_prefix('.') {
            let n = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if n == 0 {
                return false;
            }
            i += 1 + n;
        } else if rest.starts_with('[') || rest.starts_with('(') {
            match closing(t, i) {
                Some(end) => i = end,
                None => return false,
            }
        } else {
            return false;
        }
    }
    true
}

/// `not f(a.b, c)` → `__paved_n1 := a.b; not f(__paved_n1, c)`, and the same
/// for both sides of a negated comparison, for a statement on one line.
fn hoist_negated_arguments(line: &str, counter: &mut usize) -> String {
    let body = line.trim_end_matches(['\n', '\r']);
    let newline = &line[body.len()..];
    let indent_len = body.len() - body.trim_start().len();
    let (indent, stmt) = body.split_at(indent_len);
    let Some(expr) = stmt.strip_prefix("not ") else {
        return line.to_string();
    };
    let expr = expr.trim();
    if expr.contains('#') || expr.contains(';') || expr.contains(" with ") {
        return line.to_string();
    }
    let mut bindings = Vec::new();
    let mut bind = |term: &str, bindings: &mut Vec<String>| -> String {
        if is_dynamic(term) {
            *counter += 1;
            let var = format!("__paved_n{counter}");
            bindings.push(format!("{var} := {}; ", term.trim()));
            var
        } else {
            term.trim().to_string()
        }
    };
    let rewritten = if let Some(op) = [" == ", " != ", " <= ", " >= ", " < ", " > "]
        .iter()
        .find(|op| split_top_level(expr).is_some_and(|p| p.len() == 1) && expr.contains(*op))
    {
        let Some((lhs, rhs)) = expr.split_once(op) else {
            return line.to_string();
        };
        // Both sides must be whole terms.
        if split_top_level(lhs).is_none() || split_top_level(rhs).is_none() {
            return line.to_string();
        }
        let l = bind(lhs, &mut bindings);
        let r = bind(rhs, &mut bindings);
        format!("{l}{op}{r}")
    } else {
        // A call: name(args) covering the whole expression.
        let Some(open) = expr.find('(') else {
            return line.to_string();
        };
        let name = &expr[..open];
        if !name.split('.').all(is_ident) || closing(expr, open) != Some(expr.len()) {
            return line.to_string();
        }
        let Some(args) = split_top_level(&expr[open + 1..expr.len() - 1]) else {
            return line.to_string();
        };
        let args: Vec<String> = args.iter().map(|a| bind(a, &mut bindings)).collect();
        format!("{name}({})", args.join(", "))
    };
    if bindings.is_empty() {
        return line.to_string();
    }
    format!("{indent}{}not {rewritten}{newline}", bindings.concat())
}

/// `sprintf("%v %v", [x])` → `sprintf("%v %%!v(MISSING)", [x])`, as Go prints it.
fn missing_sprintf_args(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find("sprintf(\"") {
        let (before, call) = rest.split_at(at);
        out.push_str(before);
        let fmt_start = "sprintf(".len();
        let Some(fmt_len) = call[fmt_start + 1..]
            .char_indices()
            .scan(false, |escaped, (i, c)| {
                let end = !*escaped && c == '"';
                *escaped = !*escaped && c == '\\';
                Some((i, end))
            })
            .find(|(_, end)| *end)
            .map(|(i, _)| i)
        else {
            out.push_str(call);
            return out;
        };
        let fmt = &call[fmt_start + 1..fmt_start + 1 + fmt_len];
        let after_fmt = &call[fmt_start + fmt_len + 2..];
        let args = after_fmt
            .trim_start()
            .strip_prefix(',')
            .map(str::trim_start)
            .filter(|a| a.starts_with('['))
            .and_then(|a| closing(a, 0).map(|end| &a[1..end - 1]))
            .and_then(split_top_level)
            .map(|parts| parts.iter().filter(|p| !p.trim().is_empty()).count());
        let mut new_fmt = String::new();
        if let Some(n) = args {
            let mut verbs = 0;
            let mut chars = fmt.char_indices().peekable();
            while let Some((_, c)) = chars.next() {
                if c != '%' {
                    new_fmt.push(c);
                    continue;
                }
                if let Some(&(_, '%')) = chars.peek() {
                    chars.next();
                    new_fmt.push_str("%%");
                    continue;
                }
                // flags, width, precision, then the verb letter
                let mut spec = String::from("%");
                let mut verb = None;
                for (_, d) in chars.by_ref() {
                    spec.push(d);
                    if d.is_ascii_alphabetic() {
                        verb = Some(d);
                        break;
                    }
                }
                verbs += 1;
                match verb {
                    Some(v) if verbs > n => new_fmt.push_str(&format!("%%!{v}(MISSING)")),
                    _ => new_fmt.push_str(&spec),
                }
            }
        } else {
            new_fmt.push_str(fmt);
        }
        out.push_str("sprintf(\"");
        out.push_str(&new_fmt);
        out.push('"');
        rest = after_fmt;
    }
    out.push_str(rest);
    out
}

/// `head { A } { B }` → `head { A } head { B }` for rules at the top level.
fn split_chained_bodies(src: &str) -> String {
    let ps = pieces(src);
    let mut inserts: Vec<(usize, String)> = Vec::new();
    let mut depth = 0usize;
    // Where the current top-level statement (rule) starts, and its head's end.
    let mut rule_start: Option<usize> = None;
    let mut head: Option<(usize, usize)> = None;
    let mut k = 0;
    while k < ps.len() {
        let (at, piece) = ps[k];
        match piece {
            // A top-level line without a body (`package`, `import`, `default`,
            // `p := 1`) is a whole statement.
            Piece::Newline if depth == 0 && head.is_none() => rule_start = None,
            Piece::Newline => {}
            Piece::Code | Piece::Open(_) if depth == 0 && rule_start.is_none() => {
                rule_start = Some(line_start(src, at));
            }
            _ => {}
        }
        match piece {
            Piece::Open(c) => {
                if depth == 0 && c == '{' && head.is_none() {
                    if let Some(start) = rule_start {
                        head = Some((start, at));
                    }
                }
                depth += 1;
            }
            Piece::Close(_) => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    // A body just closed: is the next piece (past newlines) another `{`?
                    let mut j = k + 1;
                    while j < ps.len() && ps[j].1 == Piece::Newline {
                        j += 1;
                    }
                    let chained = j < ps.len() && ps[j].1 == Piece::Open('{');
                    match (chained, head) {
                        (true, Some((start, end))) => {
                            let text = src[start..end].trim();
                            // `p = {…} {…}`: the first braces were a value, not a body.
                            if !text.ends_with('=') {
                                inserts.push((ps[j].0, format!("{text} ")));
                            }
                        }
                        _ => {
                            let next_is_else = j < ps.len() && src[ps[j].0..].starts_with("else");
                            if !next_is_else {
                                rule_start = None;
                                head = None;
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        k += 1;
    }
    apply(src, inserts)
}

/// Put `;` before a newline whose next line, inside a body and outside any
/// brackets, starts with `(` after a complete term.
fn separate_paren_statements(src: &str) -> String {
    let ps = pieces(src);
    let mut stack: Vec<char> = Vec::new();
    let mut inserts = Vec::new();
    for k in 0..ps.len() {
        let (at, piece) = ps[k];
        match piece {
            Piece::Open(c) => stack.push(c),
            Piece::Close(_) => {
                stack.pop();
            }
            Piece::Newline if stack.last() == Some(&'{') => {
                let mut j = k + 1;
                while j < ps.len() && ps[j].1 == Piece::Newline {
                    j += 1;
                }
                let next_paren = j < ps.len() && ps[j].1 == Piece::Open('(');
                // The previous piece must end a term (not an operator or an opening).
                let prev = ps[..k].iter().rev().find(|p| p.1 != Piece::Newline);
                let ends_term = match prev {
                    Some((p_at, Piece::Code)) => {
                        let b = src.as_bytes()[*p_at];
                        b.is_ascii_alphanumeric() || b == b'_' || b == b'"' || b == b'`'
                    }
                    Some((_, Piece::Close(_))) => true,
                    _ => false,
                };
                if next_paren && ends_term {
                    inserts.push((at, ";".to_string()));
                }
            }
            _ => {}
        }
    }
    apply(src, inserts)
}

fn line_start(src: &str, at: usize) -> usize {
    src[..at].rfind('\n').map_or(0, |i| i + 1)
}

fn apply(src: &str, mut inserts: Vec<(usize, String)>) -> String {
    if inserts.is_empty() {
        return src.to_string();
    }
    inserts.sort_by_key(|(at, _)| *at);
    let mut out = String::with_capacity(src.len() + 64);
    let mut last = 0;
    for (at, text) in inserts {
        out.push_str(&src[last..at]);
        out.push_str(&text);
        last = at;
    }
    out.push_str(&src[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chained_bodies_become_separate_rules() {
        let src = "package t\n\nf(o) = s {\n  o.kind == \"Job\"\n  s := 1\n} {\n  o.kind == \"Pod\"\n  s := 2\n}\n\nviolation[{\"msg\": m}] {\n  m := \"a\"\n} {\n  m := \"b\"\n}\n";
        let out = normalize_v0(src);
        assert!(out.contains("} f(o) = s {\n  o.kind == \"Pod\""), "{out}");
        assert!(
            out.contains("} violation[{\"msg\": m}] {\n  m := \"b\""),
            "{out}"
        );
        assert_eq!(out.lines().count(), src.lines().count());
    }

    #[test]
    fn else_and_objects_are_left_alone() {
        let src =
            "package t\np = 1 {\n  false\n} else = 2 {\n  true\n}\nq = {\"a\": 1} {\n  true\n}\n";
        assert_eq!(normalize_v0(src), src);
    }

    #[test]
    fn a_parenthesised_statement_is_its_own_expression() {
        let src =
            "package t\nok {\n  input.x\n  (input.a - input.b) >= 1\n  y := f(\n    (1)\n  )\n}\n";
        let out = normalize_v0(src);
        assert!(out.contains("input.x;\n  (input.a"), "{out}");
        assert!(out.contains("f(\n    (1)"), "{out}");
    }

    #[test]
    fn negated_calls_bind_their_arguments_first() {
        let mut n = 0;
        assert_eq!(
            hoist_negated_arguments("  not accept(rule, v, params.ranges)\n", &mut n),
            "  __paved_n1 := params.ranges; not accept(rule, v, __paved_n1)\n"
        );
        assert_eq!(
            hoist_negated_arguments("  not input.x == \"a\"\n", &mut n),
            "  __paved_n2 := input.x; not __paved_n2 == \"a\"\n"
        );
        assert_eq!(
            hoist_negated_arguments("  not lib.f(count(x), [1, 2], \"s\")\n", &mut n),
            "  __paved_n3 := count(x); not lib.f(__paved_n3, [1, 2], \"s\")\n"
        );
        // Plain references, variables and literals stay inside the negation.
        for same in [
            "  not input.x.y\n",
            "  not f(x, 1)\n",
            "  not x == 1\n",
            "  not f(x) # c\n",
        ] {
            assert_eq!(hoist_negated_arguments(same, &mut n), same);
        }
    }

    #[test]
    fn sprintf_missing_arguments_print_as_go_does() {
        assert_eq!(
            missing_sprintf_args("msg := sprintf(\"a %v b %v c %d\", [x])\n"),
            "msg := sprintf(\"a %v b %%!v(MISSING) c %%!d(MISSING)\", [x])\n"
        );
        let same = "msg := sprintf(\"%v%% %v\", [x, f(y, z)])\n";
        assert_eq!(missing_sprintf_args(same), same);
    }

    #[test]
    fn later_some_declarations_join_the_first() {
        let src = "package k\ndeny[msg] {\n  some i\n  envs := c[i].env\n  some j, k\n  envs[j].name == k\n  msg := \"x\"\n}\n";
        assert_eq!(
            normalize_v0(src),
            "package k\ndeny[msg] {\n  some i, j, k\n  envs := c[i].env\n\n  envs[j].name == k\n  msg := \"x\"\n}\n"
        );
    }

    #[test]
    fn strings_and_comments_do_not_count() {
        let src = "package t\n# a { comment\np { x := \"}{\" } # } {\n";
        assert_eq!(normalize_v0(src), src);
    }
}
