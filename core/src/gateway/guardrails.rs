//! Per-team guardrails on LLM prompts and responses: detectors for personal
//! data (emails, phone numbers, card numbers, IBANs) and secrets (API keys,
//! AWS credentials, private keys) whose matches a team policy blocks, redacts
//! or only reports.
//!
//! The scanners are hand-written single passes over the bytes (no regex
//! engine), so scanning is linear in the text (a megabyte of mixed text
//! takes about 10 ms in release builds). Match boundaries are always `char`
//! boundaries: detectors match ASCII, except accented Latin letters in an
//! email's local part, which are taken whole.
//!
//! Matched text is sensitive by definition: nothing here logs it, and a
//! [`Match`] carries only a detector and a byte range. Findings reported in
//! spans and usage rows use [`summary`], which carries counts only.

use std::collections::BTreeMap;

use serde_json::Value;

/// A kind of sensitive content the guardrails look for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    /// An email address (`local@domain.tld`).
    Email,
    /// A phone number: E.164 (`+` and 8–15 digits) or North American.
    Phone,
    /// A payment card number that passes the Luhn check and has a known
    /// issuer prefix.
    CardNumber,
    /// An International Bank Account Number with a valid mod-97 checksum.
    Iban,
    /// A provider API key or token (OpenAI, Anthropic, Paved, GitHub, Slack,
    /// Google, Stripe).
    ApiKey,
    /// An AWS access key id, or a secret access key next to its field name.
    AwsKey,
    /// A PEM / OpenSSH / PGP private key block.
    PrivateKey,
}

impl Detector {
    /// Every detector, in declaration order.
    pub const ALL: [Detector; 7] = [
        Detector::Email,
        Detector::Phone,
        Detector::CardNumber,
        Detector::Iban,
        Detector::ApiKey,
        Detector::AwsKey,
        Detector::PrivateKey,
    ];

    /// Every detector, sorted by [`Detector::name`] (the order of [`summary`]).
    const BY_NAME: [Detector; 7] = [
        Detector::ApiKey,
        Detector::AwsKey,
        Detector::CardNumber,
        Detector::Email,
        Detector::Iban,
        Detector::Phone,
        Detector::PrivateKey,
    ];

    /// The snake_case name, as in configuration and serialized form
    /// (e.g. `"card_number"`).
    pub fn name(self) -> &'static str {
        match self {
            Detector::Email => "email",
            Detector::Phone => "phone",
            Detector::CardNumber => "card_number",
            Detector::Iban => "iban",
            Detector::ApiKey => "api_key",
            Detector::AwsKey => "aws_key",
            Detector::PrivateKey => "private_key",
        }
    }

    /// A human-readable label for messages (e.g. `"card number"`).
    pub fn label(self) -> &'static str {
        match self {
            Detector::Email => "email address",
            Detector::Phone => "phone number",
            Detector::CardNumber => "card number",
            Detector::Iban => "IBAN",
            Detector::ApiKey => "API key",
            Detector::AwsKey => "AWS access key",
            Detector::PrivateKey => "private key",
        }
    }

    /// The text that replaces a match when redacting (e.g. `"[CARD]"`).
    pub fn placeholder(self) -> &'static str {
        match self {
            Detector::Email => "[EMAIL]",
            Detector::Phone => "[PHONE]",
            Detector::CardNumber => "[CARD]",
            Detector::Iban => "[IBAN]",
            Detector::ApiKey => "[API_KEY]",
            Detector::AwsKey => "[AWS_KEY]",
            Detector::PrivateKey => "[PRIVATE_KEY]",
        }
    }

    /// Parses a detector name: the snake_case [`Detector::name`], ignoring
    /// ASCII case and surrounding whitespace, with `-` or a space accepted
    /// for `_` (`"card-number"`, `"Card Number"`).
    pub fn parse(s: &str) -> Option<Detector> {
        let s = s.trim().as_bytes();
        Detector::ALL.into_iter().find(|d| {
            let name = d.name().as_bytes();
            name.len() == s.len()
                && name.iter().zip(s).all(|(&n, &c)| {
                    n == c.to_ascii_lowercase() || (n == b'_' && (c == b'-' || c == b' '))
                })
        })
    }

    /// Tie-break between overlapping matches of equal length: higher wins.
    fn priority(self) -> u8 {
        match self {
            Detector::PrivateKey => 6,
            Detector::AwsKey => 5,
            Detector::ApiKey => 4,
            Detector::CardNumber => 3,
            Detector::Iban => 2,
            Detector::Email => 1,
            Detector::Phone => 0,
        }
    }
}

/// One match: byte range in the scanned text and its detector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// What was found.
    pub detector: Detector,
    /// Byte offset of the first byte (always a `char` boundary).
    pub start: usize,
    /// Byte offset one past the last byte (always a `char` boundary).
    pub end: usize,
}

/// Finds every match of the enabled detectors in `text` (non-overlapping;
/// when two overlap keep the longer / higher-priority one: PrivateKey >
/// AwsKey > ApiKey > CardNumber > Iban > Email > Phone), sorted by start.
///
/// Overlaps are resolved longest first, the priority breaking ties in length,
/// so a validated IBAN is not cut up by a Luhn-valid card-like run of digits
/// inside it, and a private key block swallows whatever it contains.
pub fn scan(text: &str, enabled: &[Detector]) -> Vec<Match> {
    let mut found = Vec::new();
    for detector in Detector::ALL {
        if !enabled.contains(&detector) {
            continue;
        }
        match detector {
            Detector::Email => scan_emails(text, &mut found),
            Detector::Phone => scan_phones(text.as_bytes(), &mut found),
            Detector::CardNumber => scan_cards(text.as_bytes(), &mut found),
            Detector::Iban => scan_ibans(text.as_bytes(), &mut found),
            Detector::ApiKey => scan_api_keys(text.as_bytes(), &mut found),
            Detector::AwsKey => scan_aws_keys(text.as_bytes(), &mut found),
            Detector::PrivateKey => scan_private_keys(text, &mut found),
        }
    }
    resolve_overlaps(found)
}

/// `text` with every match replaced by its placeholder.
///
/// Tolerates matches that did not come from [`scan`]: they are sorted, ranges
/// are clamped to the text and widened to `char` boundaries, and a match that
/// overlaps an earlier one extends that one's replacement (nothing covered by
/// any match survives).
pub fn redact(text: &str, matches: &[Match]) -> String {
    let mut sorted: Vec<&Match> = matches.iter().collect();
    sorted.sort_by_key(|m| (m.start, std::cmp::Reverse(m.end)));
    let mut out = String::with_capacity(text.len());
    let mut cursor = 0;
    for m in sorted {
        let start = floor_char_boundary(text, m.start);
        let end = ceil_char_boundary(text, m.end);
        if start >= end || end <= cursor {
            continue;
        }
        if start >= cursor {
            out.push_str(&text[cursor..start]);
            out.push_str(m.detector.placeholder());
        }
        cursor = end;
    }
    out.push_str(&text[cursor..]);
    out
}

/// Counts per detector, for spans and usage rows: e.g.
/// `"card_number:1,email:2"` (sorted by detector name), empty string for none.
pub fn summary(matches: &[Match]) -> String {
    let mut counts = [0usize; Detector::ALL.len()];
    for m in matches {
        counts[m.detector as usize] += 1;
    }
    let mut out = String::new();
    for detector in Detector::BY_NAME {
        let count = counts[detector as usize];
        if count == 0 {
            continue;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(detector.name());
        out.push(':');
        out.push_str(&count.to_string());
    }
    out
}

/// Applies `f` to every string that is model-visible text in an OpenAI chat
/// request / Anthropic messages request / OpenAI Responses request / chat
/// completion response JSON value, in place, and returns how many strings
/// were visited.
///
/// Visited: `messages[].content` (a string, or the parts' / blocks' `"text"`),
/// `"system"` (a string or the blocks' `"text"`), Responses `"input"` (a
/// string, or the items' `content` string / parts' `"text"`), `"instructions"`,
/// and in responses `choices[].message.content` (and streaming
/// `choices[].delta.content`), Anthropic `content[].text`, Responses
/// `output[].content[].text`; also tool call arguments
/// (`choices[].message.tool_calls[].function.arguments`,
/// `messages[].tool_calls[].function.arguments`, Responses `function_call`
/// items' `arguments`) and every string inside an Anthropic `tool_use`
/// block's `input`, recursively. Beyond that list, equally model-visible:
/// tool results (Anthropic `tool_result` content, Responses
/// `function_call_output` items' `output`), Anthropic plain-text `document`
/// sources, legacy completions `prompt` and `choices[].text`, and embeddings
/// `input` arrays of strings. Never visited: roles, names, ids, model names,
/// `thinking` blocks (their signatures would break), or object keys.
///
/// Anything of an unexpected shape is skipped; this never panics.
pub fn visit_text(value: &mut Value, f: &mut dyn FnMut(&mut String)) -> usize {
    let mut v = Visitor { f, count: 0 };
    let Value::Object(obj) = value else {
        return 0;
    };
    if let Some(Value::Array(messages)) = obj.get_mut("messages") {
        for message in messages {
            v.message(message);
        }
    }
    if let Some(system) = obj.get_mut("system") {
        v.content(system, 0);
    }
    if let Some(instructions) = obj.get_mut("instructions") {
        v.string(instructions);
    }
    if let Some(prompt) = obj.get_mut("prompt") {
        match prompt {
            Value::Array(items) => items.iter_mut().for_each(|p| v.string(p)),
            other => v.string(other),
        }
    }
    if let Some(input) = obj.get_mut("input") {
        match input {
            Value::String(_) => v.string(input),
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::String(_) => v.string(item),
                        Value::Object(_) => v.item(item),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(Value::Array(choices)) = obj.get_mut("choices") {
        for choice in choices {
            let Value::Object(choice) = choice else {
                continue;
            };
            if let Some(message) = choice.get_mut("message") {
                v.message(message);
            }
            if let Some(delta) = choice.get_mut("delta") {
                v.message(delta);
            }
            if let Some(text) = choice.get_mut("text") {
                v.string(text);
            }
        }
    }
    if let Some(content) = obj.get_mut("content") {
        v.content(content, 0);
    }
    if let Some(Value::Array(output)) = obj.get_mut("output") {
        for item in output {
            v.item(item);
        }
    }
    v.count
}

// ---------------------------------------------------------------------------
// visit_text internals

/// How deep `tool_result` blocks may nest inside each other before the rest
/// is skipped (a guard against pathological, programmatically built values).
const MAX_CONTENT_DEPTH: usize = 16;

enum BlockKind {
    ToolUse,
    ToolResult,
    Document,
    Other,
}

struct Visitor<'f> {
    f: &'f mut dyn FnMut(&mut String),
    count: usize,
}

impl Visitor<'_> {
    /// A value that is model-visible text if it is a string.
    fn string(&mut self, value: &mut Value) {
        if let Value::String(s) = value {
            (self.f)(s);
            self.count += 1;
        }
    }

    /// Every string anywhere inside `value` (tool call inputs), iteratively.
    fn deep(&mut self, value: &mut Value) {
        let mut stack = vec![value];
        while let Some(v) = stack.pop() {
            match v {
                Value::String(s) => {
                    (self.f)(s);
                    self.count += 1;
                }
                Value::Array(items) => stack.extend(items.iter_mut().rev()),
                Value::Object(map) => stack.extend(map.values_mut().rev()),
                _ => {}
            }
        }
    }

    /// Tool call arguments: a JSON-encoded string, or (some providers) the
    /// decoded object itself.
    fn arguments(&mut self, value: &mut Value) {
        match value {
            Value::String(_) => self.string(value),
            Value::Object(_) | Value::Array(_) => self.deep(value),
            _ => {}
        }
    }

    /// A chat message (or a streaming delta): content and tool calls.
    fn message(&mut self, message: &mut Value) {
        let Value::Object(message) = message else {
            return;
        };
        if let Some(content) = message.get_mut("content") {
            self.content(content, 0);
        }
        if let Some(Value::Array(calls)) = message.get_mut("tool_calls") {
            for call in calls {
                if let Some(arguments) = call
                    .get_mut("function")
                    .and_then(|function| function.get_mut("arguments"))
                {
                    self.arguments(arguments);
                }
            }
        }
        if let Some(arguments) = message
            .get_mut("function_call")
            .and_then(|call| call.get_mut("arguments"))
        {
            self.arguments(arguments);
        }
    }

    /// Message content: a string, an array of parts / blocks, or (leniently)
    /// a single block.
    fn content(&mut self, content: &mut Value, depth: usize) {
        match content {
            Value::String(_) => self.string(content),
            Value::Array(blocks) => {
                for block in blocks {
                    self.block(block, depth);
                }
            }
            Value::Object(_) => self.block(content, depth),
            _ => {}
        }
    }

    /// One content part (OpenAI) or block (Anthropic).
    fn block(&mut self, block: &mut Value, depth: usize) {
        let Value::Object(map) = block else {
            if let Value::String(_) = block {
                self.string(block);
            }
            return;
        };
        if let Some(text) = map.get_mut("text") {
            self.string(text);
        }
        let kind = match map.get("type").and_then(Value::as_str) {
            Some("tool_use" | "server_tool_use") => BlockKind::ToolUse,
            Some("tool_result") => BlockKind::ToolResult,
            Some("document") => BlockKind::Document,
            _ => BlockKind::Other,
        };
        match kind {
            BlockKind::ToolUse => {
                if let Some(input) = map.get_mut("input") {
                    self.deep(input);
                }
            }
            BlockKind::ToolResult => {
                if depth < MAX_CONTENT_DEPTH {
                    if let Some(inner) = map.get_mut("content") {
                        self.content(inner, depth + 1);
                    }
                }
            }
            BlockKind::Document => {
                if let Some(Value::Object(source)) = map.get_mut("source") {
                    if source.get("type").and_then(Value::as_str) == Some("text") {
                        if let Some(data) = source.get_mut("data") {
                            self.string(data);
                        }
                    }
                }
            }
            BlockKind::Other => {}
        }
    }

    /// A Responses API input or output item.
    fn item(&mut self, item: &mut Value) {
        let Value::Object(map) = item else {
            return;
        };
        if let Some(content) = map.get_mut("content") {
            self.content(content, 0);
        }
        if let Some(arguments) = map.get_mut("arguments") {
            self.arguments(arguments);
        }
        if let Some(output) = map.get_mut("output") {
            match output {
                Value::String(_) => self.string(output),
                Value::Array(_) => self.content(output, 0),
                _ => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Shared helpers

fn floor_char_boundary(text: &str, index: usize) -> usize {
    let mut i = index.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char_boundary(text: &str, index: usize) -> usize {
    let mut i = index.min(text.len());
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Whether the byte before `i` is an ASCII letter or digit. Non-ASCII
/// characters count as boundaries, so text in scripts written without spaces
/// (CJK) still matches next to a number or address.
fn alnum_before(b: &[u8], i: usize) -> bool {
    i > 0 && b[i - 1].is_ascii_alphanumeric()
}

/// Whether the byte at `i` is an ASCII letter or digit.
fn alnum_at(b: &[u8], i: usize) -> bool {
    b.get(i).is_some_and(u8::is_ascii_alphanumeric)
}

fn digit_at(b: &[u8], i: usize) -> bool {
    b.get(i).is_some_and(u8::is_ascii_digit)
}

/// Keeps non-overlapping matches, longest first (priority breaks ties, then
/// the earlier start), and returns them sorted by start.
fn resolve_overlaps(mut candidates: Vec<Match>) -> Vec<Match> {
    candidates.sort_by(|a, b| {
        (b.end - b.start)
            .cmp(&(a.end - a.start))
            .then(b.detector.priority().cmp(&a.detector.priority()))
            .then(a.start.cmp(&b.start))
    });
    // Accepted ranges, start -> end; they never overlap, so the one with the
    // greatest start before a candidate's end is the only one to check.
    let mut taken: BTreeMap<usize, usize> = BTreeMap::new();
    let mut kept = Vec::with_capacity(candidates.len());
    for m in candidates {
        if m.start >= m.end {
            continue;
        }
        if let Some((_, &end)) = taken.range(..m.end).next_back() {
            if end > m.start {
                continue;
            }
        }
        taken.insert(m.start, m.end);
        kept.push(m);
    }
    kept.sort_by_key(|m| m.start);
    kept
}

// ---------------------------------------------------------------------------
// Email

fn scan_emails(text: &str, out: &mut Vec<Match>) {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(offset) = b[from..].iter().position(|&c| c == b'@') {
        let at = from + offset;
        from = at + 1;
        let Some(start) = email_local_start(text, at) else {
            continue;
        };
        let Some(end) = email_domain_end(b, at + 1) else {
            continue;
        };
        out.push(Match {
            detector: Detector::Email,
            start,
            end,
        });
        from = end;
    }
}

/// Characters of the local part: the common `[A-Za-z0-9._%+-]`, plus
/// accented Latin letters (internationalised addresses such as
/// `josé@…`). Other scripts end the local part, so an address written right
/// after CJK text is not swallowed with it.
fn email_local_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '.' | '_' | '%' | '+' | '-')
        || (('\u{C0}'..='\u{24F}').contains(&c) && c.is_alphabetic())
}

/// Start of the local part ending at `at`, if there is a plausible one.
fn email_local_start(text: &str, at: usize) -> Option<usize> {
    let mut start = at;
    for (i, c) in text[..at].char_indices().rev() {
        if !email_local_char(c) {
            break;
        }
        start = i;
    }
    let b = text.as_bytes();
    while start < at && b[start] == b'.' {
        start += 1;
    }
    let local = &text[start..at];
    if !local.chars().any(char::is_alphanumeric) {
        return None;
    }
    Some(start)
}

/// End of a `label(.label)+` domain starting at `i` whose last label (the
/// TLD) is at least two letters; `None` when there is no such domain or the
/// address is really something else (`git@host:path`, `icon@2x.png`).
fn email_domain_end(b: &[u8], mut i: usize) -> Option<usize> {
    let first = i;
    let mut labels = 0;
    let mut best = None;
    loop {
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'-') {
            i += 1;
        }
        if i == start || b[start] == b'-' {
            break;
        }
        let mut end = i;
        while b[end - 1] == b'-' {
            end -= 1;
        }
        labels += 1;
        let label = &b[start..end];
        if labels >= 2 && label.len() >= 2 && label.iter().all(u8::is_ascii_alphabetic) {
            best = Some(end);
        }
        if end != i || b.get(i) != Some(&b'.') {
            break;
        }
        i += 1;
    }
    let end = best?;
    // scp-style `user@host:path` (git remotes) is a login, not an address.
    if b.get(end) == Some(&b':') && b.get(end + 1).is_some_and(|c| c.is_ascii_graphic()) {
        return None;
    }
    // Retina asset names: `icon@2x.png`.
    let first_label_end = b[first..end]
        .iter()
        .position(|&c| c == b'.')
        .map_or(end, |p| first + p);
    let first_label = &b[first..first_label_end];
    if first_label.len() >= 2
        && first_label.ends_with(b"x")
        && first_label[..first_label.len() - 1]
            .iter()
            .all(u8::is_ascii_digit)
    {
        return None;
    }
    Some(end)
}

// ---------------------------------------------------------------------------
// Phone

fn scan_phones(b: &[u8], out: &mut Vec<Match>) {
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let found = if c == b'+' {
            e164_end(b, i).map(|end| (i, end))
        } else if (c == b'(' || c.is_ascii_digit()) && !alnum_before(b, i) {
            north_american(b, i)
        } else {
            None
        };
        match found {
            Some((start, end)) => {
                out.push(Match {
                    detector: Detector::Phone,
                    start,
                    end,
                });
                i = end;
            }
            None => i += 1,
        }
    }
}

/// An E.164 number at `plus`: `+`, a country code not starting with 0, then
/// digit groups separated by one space, dot or hyphen, with at most one
/// parenthesised group — 8 to 15 digits in all. Longer runs are rejected
/// whole rather than cut (`+4111 1111 1111 1111` is not a phone number), as
/// are dotted quads (addresses) and `+YYYY-MM-DD` dates.
fn e164_end(b: &[u8], plus: usize) -> Option<usize> {
    if alnum_before(b, plus) || (plus > 0 && b[plus - 1] == b'+') {
        return None;
    }
    if !b.get(plus + 1).is_some_and(|c| (b'1'..=b'9').contains(c)) {
        return None;
    }
    let mut j = plus + 1;
    let mut digits = 0;
    let mut group_lens = [0u8; 16];
    let mut groups = 0;
    let mut dots_only = true;
    let mut paren_used = false;
    let mut in_paren = false;
    let end = loop {
        let group_start = j;
        while digit_at(b, j) {
            j += 1;
        }
        digits += j - group_start;
        if digits > 15 {
            return None;
        }
        group_lens[groups] = (j - group_start) as u8;
        groups += 1;
        let mut k = j;
        if in_paren {
            if b.get(k) != Some(&b')') {
                return None;
            }
            k += 1;
            in_paren = false;
            if matches!(b.get(k), Some(b' ' | b'.' | b'-')) {
                k += 1;
            }
            if !digit_at(b, k) {
                return None;
            }
        } else {
            let mut separated = false;
            if let Some(&sep @ (b' ' | b'.' | b'-')) = b.get(k) {
                dots_only &= sep == b'.';
                separated = true;
                k += 1;
            }
            if b.get(k) == Some(&b'(') && !paren_used {
                paren_used = true;
                in_paren = true;
                dots_only = false;
                k += 1;
            } else if !separated {
                break j;
            }
            if !digit_at(b, k) {
                if in_paren {
                    return None;
                }
                break j;
            }
        }
        j = k;
    };
    if !(8..=15).contains(&digits) || alnum_at(b, end) {
        return None;
    }
    let lens = &group_lens[..groups];
    // `+192.168.100.200` is an address, `+2024-01-15` a date.
    if dots_only && groups == 4 && lens.iter().all(|&l| l <= 3) {
        return None;
    }
    if lens == [4, 2, 2] {
        return None;
    }
    Some(end)
}

/// A North American number at `i`: `(NXX) NXX-XXXX` or `NXX-NXX-XXXX` (same
/// separator, `-` or `.`), optionally after a `1` and a separator.
fn north_american(b: &[u8], i: usize) -> Option<(usize, usize)> {
    if b[i] == b'1' && matches!(b.get(i + 1), Some(b'-' | b'.' | b' ')) {
        if let Some(end) = north_american_core(b, i + 2) {
            return Some((i, end));
        }
    }
    if b[i].is_ascii_digit()
        && i >= 2
        && matches!(b[i - 1], b'-' | b'.')
        && b[i - 2].is_ascii_digit()
    {
        // The tail of a longer hyphenated / dotted number.
        return None;
    }
    north_american_core(b, i).map(|end| (i, end))
}

fn north_american_core(b: &[u8], i: usize) -> Option<usize> {
    let digits =
        |at: usize, n: usize| at + n <= b.len() && b[at..at + n].iter().all(u8::is_ascii_digit);
    let leading_n = |at: usize| (b'2'..=b'9').contains(&b[at]);
    let mut j = i;
    if b.get(j) == Some(&b'(') {
        if !digits(j + 1, 3) || !leading_n(j + 1) || b.get(j + 4) != Some(&b')') {
            return None;
        }
        j += 5;
        if b.get(j) == Some(&b' ') {
            j += 1;
        }
        if !digits(j, 3) || !leading_n(j) {
            return None;
        }
        j += 3;
        if !matches!(b.get(j), Some(b'-' | b'.' | b' ')) {
            return None;
        }
        j += 1;
    } else {
        if !digits(j, 3) || !leading_n(j) {
            return None;
        }
        j += 3;
        let sep = match b.get(j) {
            Some(&sep @ (b'-' | b'.')) => sep,
            _ => return None,
        };
        j += 1;
        if !digits(j, 3) || !leading_n(j) || b.get(j + 3) != Some(&sep) {
            return None;
        }
        j += 4;
    }
    if !digits(j, 4) {
        return None;
    }
    j += 4;
    if alnum_at(b, j) || (matches!(b.get(j), Some(b'-' | b'.')) && digit_at(b, j + 1)) {
        return None;
    }
    Some(j)
}

// ---------------------------------------------------------------------------
// Card numbers

fn scan_cards(b: &[u8], out: &mut Vec<Match>) {
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut seps: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // The maximal run of digit groups joined by single spaces / hyphens.
        groups.clear();
        seps.clear();
        let run_start = i;
        loop {
            let start = i;
            while digit_at(b, i) {
                i += 1;
            }
            groups.push((start, i));
            if matches!(b.get(i), Some(b' ' | b'-')) && digit_at(b, i + 1) {
                seps.push(b[i]);
                i += 1;
            } else {
                break;
            }
        }
        // Digits glued to a word or a decimal point belong to something else.
        let glued_left = alnum_before(b, run_start)
            || (run_start >= 2
                && matches!(b[run_start - 1], b'.' | b',')
                && b[run_start - 2].is_ascii_digit());
        let glued_right =
            alnum_at(b, i) || (matches!(b.get(i), Some(b'.' | b',')) && digit_at(b, i + 1));
        let n = groups.len();
        let mut s = usize::from(glued_left);
        while s < n {
            let mut best = None;
            for e in s..n.min(s + 5) {
                if e == n - 1 && glued_right {
                    break;
                }
                if e > s && seps[e - 1] != seps[s] {
                    break;
                }
                if card_window_ok(b, &groups[s..=e]) {
                    best = Some(e);
                }
            }
            match best {
                Some(e) => {
                    out.push(Match {
                        detector: Detector::CardNumber,
                        start: groups[s].0,
                        end: groups[e].1,
                    });
                    s = e + 1;
                }
                None => s += 1,
            }
        }
    }
}

/// Whether these digit groups are a card number: a usual grouping, a known
/// issuer prefix with a length that issuer uses, and a valid Luhn digit.
fn card_window_ok(b: &[u8], groups: &[(usize, usize)]) -> bool {
    let mut lens = [0usize; 5];
    if groups.len() > lens.len() {
        return false;
    }
    for (len, &(s, e)) in lens.iter_mut().zip(groups) {
        *len = e - s;
    }
    let lens = &lens[..groups.len()];
    let total: usize = lens.iter().sum();
    let grouping_ok = match lens {
        [_] => true,
        // Amex 4-6-5, Diners 4-6-4.
        [4, 6, 4 | 5] => true,
        // 4-4-4-x and 4-4-4-4-x.
        [4, 4, 4, last] | [4, 4, 4, 4, last] => (1..=4).contains(last),
        _ => false,
    };
    if !grouping_ok || !(13..=19).contains(&total) {
        return false;
    }
    let mut digits = [0u8; 19];
    let mut n = 0;
    for &(s, e) in groups {
        for &c in &b[s..e] {
            digits[n] = c - b'0';
            n += 1;
        }
    }
    let digits = &digits[..n];
    issuer_ok(digits) && luhn_ok(digits)
}

fn issuer_ok(d: &[u8]) -> bool {
    let prefix = |k: usize| d[..k].iter().fold(0u32, |acc, &x| acc * 10 + u32::from(x));
    let n = d.len();
    let (p2, p3, p4) = (prefix(2), prefix(3), prefix(4));
    if d[0] == 4 {
        return matches!(n, 13 | 16 | 19); // Visa
    }
    if (51..=55).contains(&p2) || (2221..=2720).contains(&p4) {
        return n == 16; // Mastercard
    }
    if p2 == 34 || p2 == 37 {
        return n == 15; // Amex
    }
    if p4 == 6011 || p2 == 65 || (644..=649).contains(&p3) {
        return (16..=19).contains(&n); // Discover
    }
    if (3528..=3589).contains(&p4) {
        return (16..=19).contains(&n); // JCB
    }
    if p2 == 36 || p2 == 38 || (300..=305).contains(&p3) {
        return (14..=19).contains(&n); // Diners Club
    }
    if p2 == 62 {
        return (16..=19).contains(&n); // UnionPay
    }
    false
}

fn luhn_ok(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = u32::from(x);
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

// ---------------------------------------------------------------------------
// IBAN

/// IBAN lengths by country code, from the SWIFT IBAN registry (sorted).
#[rustfmt::skip]
const IBAN_LENGTHS: [([u8; 2], u8); 89] = [
    (*b"AD", 24), (*b"AE", 23), (*b"AL", 28), (*b"AT", 20), (*b"AZ", 28), (*b"BA", 20),
    (*b"BE", 16), (*b"BG", 22), (*b"BH", 22), (*b"BI", 27), (*b"BR", 29), (*b"BY", 28),
    (*b"CH", 21), (*b"CR", 22), (*b"CY", 28), (*b"CZ", 24), (*b"DE", 22), (*b"DJ", 27),
    (*b"DK", 18), (*b"DO", 28), (*b"EE", 20), (*b"EG", 29), (*b"ES", 24), (*b"FI", 18),
    (*b"FK", 18), (*b"FO", 18), (*b"FR", 27), (*b"GB", 22), (*b"GE", 22), (*b"GI", 23),
    (*b"GL", 18), (*b"GR", 27), (*b"GT", 28), (*b"HN", 28), (*b"HR", 21), (*b"HU", 28),
    (*b"IE", 22), (*b"IL", 23), (*b"IQ", 23), (*b"IS", 26), (*b"IT", 27), (*b"JO", 30),
    (*b"KW", 30), (*b"KZ", 20), (*b"LB", 28), (*b"LC", 32), (*b"LI", 21), (*b"LT", 20),
    (*b"LU", 20), (*b"LV", 21), (*b"LY", 25), (*b"MC", 27), (*b"MD", 24), (*b"ME", 22),
    (*b"MK", 19), (*b"MN", 20), (*b"MR", 27), (*b"MT", 31), (*b"MU", 30), (*b"NI", 28),
    (*b"NL", 18), (*b"NO", 15), (*b"OM", 23), (*b"PK", 24), (*b"PL", 28), (*b"PS", 29),
    (*b"PT", 25), (*b"QA", 29), (*b"RO", 24), (*b"RS", 22), (*b"RU", 33), (*b"SA", 24),
    (*b"SC", 31), (*b"SD", 18), (*b"SE", 24), (*b"SI", 19), (*b"SK", 24), (*b"SM", 27),
    (*b"SO", 23), (*b"ST", 25), (*b"SV", 28), (*b"TL", 23), (*b"TN", 24), (*b"TR", 26),
    (*b"UA", 29), (*b"VA", 22), (*b"VG", 24), (*b"XK", 20), (*b"YE", 30),
];

fn iban_length(country: [u8; 2]) -> Option<usize> {
    IBAN_LENGTHS
        .binary_search_by_key(&country, |&(c, _)| c)
        .ok()
        .map(|i| usize::from(IBAN_LENGTHS[i].1))
}

fn scan_ibans(b: &[u8], out: &mut Vec<Match>) {
    let mut i = 0;
    while i + 4 <= b.len() {
        let candidate = b[i].is_ascii_uppercase()
            && b[i + 1].is_ascii_uppercase()
            && b[i + 2].is_ascii_digit()
            && b[i + 3].is_ascii_digit()
            && !alnum_before(b, i);
        if candidate {
            if let Some(end) = iban_length([b[i], b[i + 1]]).and_then(|len| iban_end(b, i, len)) {
                out.push(Match {
                    detector: Detector::Iban,
                    start: i,
                    end,
                });
                i = end;
                continue;
            }
        }
        i += 1;
    }
}

/// End of an IBAN of `len` characters at `start`: compact, or printed with a
/// single space after every four characters throughout; then mod-97 == 1.
fn iban_end(b: &[u8], start: usize, len: usize) -> Option<usize> {
    let mut chars = [0u8; 34];
    chars[..4].copy_from_slice(&b[start..start + 4]);
    let mut j = start + 4;
    let spaced = b.get(j) == Some(&b' ');
    for (count, slot) in chars.iter_mut().enumerate().take(len).skip(4) {
        if spaced && count % 4 == 0 {
            if b.get(j) != Some(&b' ') {
                return None;
            }
            j += 1;
        }
        let c = *b.get(j)?;
        if !(c.is_ascii_digit() || c.is_ascii_uppercase()) {
            return None;
        }
        *slot = c;
        j += 1;
    }
    if alnum_at(b, j) {
        return None;
    }
    let iban = &chars[..len];
    let remainder = iban[4..].iter().chain(&iban[..4]).fold(0u32, |r, &c| {
        if c.is_ascii_digit() {
            (r * 10 + u32::from(c - b'0')) % 97
        } else {
            (r * 100 + u32::from(c - b'A' + 10)) % 97
        }
    });
    (remainder == 1).then_some(j)
}

// ---------------------------------------------------------------------------
// API keys

struct KeyShape {
    prefix: &'static [u8],
    body: fn(u8) -> bool,
    min_body: usize,
    /// Whether the body must look random (see [`looks_random`]).
    random: bool,
}

fn key_alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

fn key_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn key_word_dash(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

fn key_alnum_dash(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}

const fn shape(prefix: &'static [u8], body: fn(u8) -> bool, min_body: usize) -> KeyShape {
    KeyShape {
        prefix,
        body,
        min_body,
        random: false,
    }
}

const KEY_SHAPE_COUNT: usize = 16;

static KEY_SHAPES: [KeyShape; KEY_SHAPE_COUNT] = [
    // OpenAI `sk-…`, `sk-proj-…`, Anthropic `sk-ant-api03-…`.
    KeyShape {
        prefix: b"sk-",
        body: key_word_dash,
        min_body: 20,
        random: true,
    },
    // Paved's own gateway keys.
    shape(b"pvg_", key_alnum, 20),
    // GitHub.
    shape(b"ghp_", key_alnum, 36),
    shape(b"gho_", key_alnum, 36),
    shape(b"ghu_", key_alnum, 36),
    shape(b"ghs_", key_alnum, 36),
    shape(b"ghr_", key_alnum, 36),
    shape(b"github_pat_", key_word, 22),
    // Slack.
    shape(b"xoxb-", key_alnum_dash, 10),
    shape(b"xoxa-", key_alnum_dash, 10),
    shape(b"xoxp-", key_alnum_dash, 10),
    shape(b"xoxr-", key_alnum_dash, 10),
    shape(b"xoxs-", key_alnum_dash, 10),
    // Google.
    shape(b"AIza", key_word_dash, 35),
    // Stripe secret and restricted keys.
    shape(b"sk_live_", key_alnum, 16),
    shape(b"rk_live_", key_alnum, 16),
];

fn scan_api_keys(b: &[u8], out: &mut Vec<Match>) {
    // Per shape, where its last body ended: a start inside that body would
    // see a suffix of the same body, which cannot do better, so it is
    // skipped. This keeps inputs like `sk-sk-sk-…` linear.
    let mut resume = [0usize; KEY_SHAPE_COUNT];
    for i in 0..b.len() {
        if !matches!(b[i], b's' | b'p' | b'g' | b'x' | b'A' | b'r') {
            continue;
        }
        if i > 0 && key_word(b[i - 1]) {
            continue;
        }
        for (k, shape) in KEY_SHAPES.iter().enumerate() {
            if i < resume[k] || !b[i..].starts_with(shape.prefix) {
                continue;
            }
            let body_start = i + shape.prefix.len();
            let mut j = body_start;
            while j < b.len() && (shape.body)(b[j]) {
                j += 1;
            }
            resume[k] = j;
            let body = &b[body_start..j];
            if body.len() >= shape.min_body && (!shape.random || looks_random(body)) {
                out.push(Match {
                    detector: Detector::ApiKey,
                    start: i,
                    end: j,
                });
                break;
            }
        }
    }
}

/// Whether a `sk-` body contains a random-looking segment: 12+ characters
/// between `-`/`_` that mix at least two of digits, lowercase, and uppercase
/// past the first character. Real keys always do; slugs and CSS class names
/// (`sk-fading-circle-…`, `sk-learn-…`) and `sk-xxxx…` placeholders do not.
fn looks_random(body: &[u8]) -> bool {
    body.split(|&c| c == b'-' || c == b'_').any(|segment| {
        segment.len() >= 12 && {
            let digit = segment.iter().any(u8::is_ascii_digit);
            let lower = segment.iter().any(u8::is_ascii_lowercase);
            let upper = segment[1..].iter().any(u8::is_ascii_uppercase);
            u8::from(digit) + u8::from(lower) + u8::from(upper) >= 2
        }
    })
}

// ---------------------------------------------------------------------------
// AWS keys

fn scan_aws_keys(b: &[u8], out: &mut Vec<Match>) {
    let n = b.len();
    for i in 0..n {
        match b[i] {
            b'A' => {
                // Access key ids: AKIA / ASIA / ABIA / ACCA + 16 [A-Z0-9].
                let prefix_ok = i + 20 <= n
                    && matches!(&b[i..i + 4], b"AKIA" | b"ASIA" | b"ABIA" | b"ACCA")
                    && b[i + 4..i + 20]
                        .iter()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
                if prefix_ok && !alnum_before(b, i) && !alnum_at(b, i + 20) {
                    out.push(Match {
                        detector: Detector::AwsKey,
                        start: i,
                        end: i + 20,
                    });
                }
            }
            b's' | b'S' => {
                if let Some(end) = secret_keyword_end(b, i) {
                    if let Some(start) = aws_secret_start(b, end) {
                        out.push(Match {
                            detector: Detector::AwsKey,
                            start,
                            end: start + 40,
                        });
                    }
                }
            }
            _ => {}
        }
    }
}

/// Matches `secret[_-]?access[_-]?key` case-insensitively at `i` (covers
/// `aws_secret_access_key`, `AWS_SECRET_ACCESS_KEY`, `SecretAccessKey`,
/// `--secret-access-key`) and returns its end.
fn secret_keyword_end(b: &[u8], i: usize) -> Option<usize> {
    let word = |at: usize, w: &[u8]| {
        b.get(at..at + w.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(w))
            .then_some(at + w.len())
    };
    let joiner = |at: usize| {
        if matches!(b.get(at), Some(b'_' | b'-')) {
            at + 1
        } else {
            at
        }
    };
    let j = word(i, b"secret")?;
    let j = word(joiner(j), b"access")?;
    word(joiner(j), b"key")
}

/// A 40-character secret access key after a field name ending at `i`: within
/// 40 bytes, across only whitespace and separators, at least one of which is
/// `=`, `:`, a quote or `>` (XML).
fn aws_secret_start(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    let mut separated = false;
    while j < b.len() && j - i <= 40 {
        match b[j] {
            b'=' | b':' | b'"' | b'\'' | b'`' | b'>' => separated = true,
            b' ' | b'\t' | b'\r' | b'\n' | b'\\' => {}
            _ => break,
        }
        j += 1;
    }
    if !separated || j - i > 40 || j + 40 > b.len() {
        return None;
    }
    let secret_char = |c: &u8| c.is_ascii_alphanumeric() || *c == b'/' || *c == b'+';
    if !b[j..j + 40].iter().all(secret_char)
        || b.get(j + 40).is_some_and(|c| secret_char(c) || *c == b'=')
    {
        return None;
    }
    Some(j)
}

// ---------------------------------------------------------------------------
// Private keys

fn scan_private_keys(text: &str, out: &mut Vec<Match>) {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(offset) = text[from..].find("-----BEGIN ") {
        let start = from + offset;
        let Some(header_end) = pem_private_label_end(b, start + 11) else {
            from = start + 11;
            continue;
        };
        let end = pem_block_end(b, header_end);
        out.push(Match {
            detector: Detector::PrivateKey,
            start,
            end,
        });
        from = end;
    }
}

/// At `i`, just after `-----BEGIN ` or `-----END `: a `[A-Z ]*` label ending
/// in `PRIVATE KEY` (or PGP's `PRIVATE KEY BLOCK`) and the closing `-----`.
/// Returns the end of the closing dashes.
fn pem_private_label_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    while j < b.len() && (b[j].is_ascii_uppercase() || b[j] == b' ') {
        j += 1;
    }
    let label = &b[i..j];
    let private = label.ends_with(b"PRIVATE KEY") || label.ends_with(b"PRIVATE KEY BLOCK");
    (private && b[j..].starts_with(b"-----")).then_some(j + 5)
}

/// End of a private key block whose header ends at `i`: after the first
/// private-key `-----END …-----` line; when there is none, the end of the
/// text, or the first character no PEM body contains (a quote, backtick,
/// bracket or non-ASCII character: the end of an enclosing JSON string or
/// code fence), trailing whitespace excluded.
fn pem_block_end(b: &[u8], i: usize) -> usize {
    let mut j = i;
    let mut last = i;
    while j < b.len() {
        let c = b[j];
        if c == b'-' && b[j..].starts_with(b"-----END ") {
            if let Some(end) = pem_private_label_end(b, j + 9) {
                return end;
            }
        }
        let body = (c.is_ascii_graphic() || c.is_ascii_whitespace())
            && !matches!(
                c,
                b'"' | b'\'' | b'`' | b'{' | b'}' | b'[' | b']' | b'<' | b'>'
            );
        if !body {
            break;
        }
        if !c.is_ascii_whitespace() {
            last = j + 1;
        }
        j += 1;
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The matched substrings, scanning for `detector` alone.
    fn found(text: &str, detector: Detector) -> Vec<&str> {
        scan(text, &[detector])
            .iter()
            .map(|m| {
                assert_eq!(m.detector, detector);
                &text[m.start..m.end]
            })
            .collect()
    }

    /// Every match with all detectors enabled, as (detector, substring).
    fn all(text: &str) -> Vec<(Detector, &str)> {
        scan(text, &Detector::ALL)
            .iter()
            .map(|m| (m.detector, &text[m.start..m.end]))
            .collect()
    }

    fn assert_finds(detector: Detector, cases: &[(&str, &str)]) {
        for (text, expected) in cases {
            assert_eq!(
                found(text, detector),
                vec![*expected],
                "{detector:?} in {text:?}"
            );
        }
    }

    fn assert_misses(detector: Detector, texts: &[&str]) {
        for text in texts {
            assert!(
                found(text, detector).is_empty(),
                "{detector:?} wrongly in {text:?}: {:?}",
                found(text, detector)
            );
        }
    }

    const OPENAI_KEY: &str = "sk-Zq3xT9vLm2Pw8RkYb7Nc4Hd6Js1Fg5Ua0Ve3Wi9Ot2Qp7Xr";
    const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const RSA_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi+Q/jg5S4CTL5pV4Mb\nq8x8Sv5M0h+JbXvq8hGQ==\n-----END RSA PRIVATE KEY-----";

    #[test]
    fn detector_names_labels_placeholders_and_parse() {
        for d in Detector::ALL {
            assert_eq!(Detector::parse(d.name()), Some(d));
            assert_eq!(serde_json::to_value(d).unwrap(), json!(d.name()));
            assert_eq!(
                serde_json::from_value::<Detector>(json!(d.name())).unwrap(),
                d
            );
            assert!(d.placeholder().starts_with('[') && d.placeholder().ends_with(']'));
            assert!(!d.label().is_empty());
            assert_eq!(Detector::ALL[d as usize], d);
        }
        assert_eq!(Detector::parse(" Card-Number "), Some(Detector::CardNumber));
        assert_eq!(Detector::parse("API KEY"), Some(Detector::ApiKey));
        assert_eq!(Detector::parse("credit_card"), None);
        assert_eq!(Detector::parse(""), None);
        assert_eq!(Detector::CardNumber.label(), "card number");
        assert_eq!(Detector::AwsKey.placeholder(), "[AWS_KEY]");
        let mut by_name = Detector::ALL;
        by_name.sort_by_key(|d| d.name());
        assert_eq!(by_name, Detector::BY_NAME);
    }

    #[test]
    fn email_true_positives() {
        assert_finds(
            Detector::Email,
            &[
                (
                    "write to john.doe@example.com today",
                    "john.doe@example.com",
                ),
                ("a.b+tag@sub.example.co.uk", "a.b+tag@sub.example.co.uk"),
                ("(x_y%z-w@my-domain.io)", "x_y%z-w@my-domain.io"),
                ("Mail me: jane@corp.example.org.", "jane@corp.example.org"),
                ("<ops@paved.dev>", "ops@paved.dev"),
                ("contact josé.müller@exemple.fr", "josé.müller@exemple.fr"),
                (
                    "https://user:hunter2@db.example.com/x",
                    "hunter2@db.example.com",
                ),
                ("...leading.dots@example.com", "leading.dots@example.com"),
            ],
        );
        assert_eq!(
            found("a@example.com, b@example.org", Detector::Email).len(),
            2
        );
    }

    #[test]
    fn email_false_positives() {
        assert_misses(
            Detector::Email,
            &[
                "a@b",
                "ping @mention please",
                "foo@bar",
                "root@localhost",
                "user@example.c",
                "pkg lodash@4.17.21 and python@3.11",
                "clone git@github.com:paved/paved.git",
                "icon@2x.png and logo@3x.jpg",
                "john@-example.com",
                "++@example.com",
                "@@@",
            ],
        );
    }

    #[test]
    fn phone_true_positives() {
        assert_finds(
            Detector::Phone,
            &[
                ("call +1 (415) 555-0132 now", "+1 (415) 555-0132"),
                ("London +44 20 7946 0958.", "+44 20 7946 0958"),
                ("Berlin: +49-30-1234567", "+49-30-1234567"),
                ("+14155550132", "+14155550132"),
                ("+44 (0) 20 7946 0958", "+44 (0) 20 7946 0958"),
                ("office (415) 555-0132", "(415) 555-0132"),
                ("cell 415-555-0132.", "415-555-0132"),
                ("cell 415.555.0132", "415.555.0132"),
                ("toll free 1-800-555-0199", "1-800-555-0199"),
                ("+1-415-555-0132", "+1-415-555-0132"),
            ],
        );
    }

    #[test]
    fn phone_false_positives() {
        assert_misses(
            Detector::Phone,
            &[
                "released 2024-01-15",
                "version 1.2.3 and 10.4.22.1",
                "at 2024-01-15T10:30:00+05:30",
                "at 2024-01-15T10:30:00.123-08:00",
                "card 4111111111111111",
                "card 4111 1111 1111 1111",
                "card 4111-1111-1111-1111",
                "host 192.168.100.200",
                "+192.168.100.200",
                "+2024-01-15",
                "+4111 1111 1111 1111",
                "123-456-7890",
                "555-0132",
                "+12 34",
                "x+14155550132",
                "+1 415 555 0132abc",
                "9415-555-0132",
                "1234-415-555-0132",
                "3+4=7, 2+14155550132",
            ],
        );
    }

    #[test]
    fn card_true_positives() {
        assert_finds(
            Detector::CardNumber,
            &[
                ("pay with 4111 1111 1111 1111 please", "4111 1111 1111 1111"),
                ("5555-5555-5555-4444", "5555-5555-5555-4444"),
                ("amex 378282246310005.", "378282246310005"),
                ("amex 3782 822463 10005", "3782 822463 10005"),
                ("discover 6011111111111117", "6011111111111117"),
                ("mc2 2223003122003222", "2223003122003222"),
                ("jcb 3530111333300000", "3530111333300000"),
                ("diners 30569309025904", "30569309025904"),
                ("unionpay 6200000000000005", "6200000000000005"),
                ("visa13 4222222222222", "4222222222222"),
                // Card followed by its expiry: the card alone.
                ("4111 1111 1111 1111 12/27", "4111 1111 1111 1111"),
                ("4111111111111111 2027", "4111111111111111"),
            ],
        );
    }

    #[test]
    fn card_false_positives() {
        assert_misses(
            Detector::CardNumber,
            &[
                "4111 1111 1111 1112",
                "1234567812345678",
                "41111111111111111111",
                "order 94111111111111111",
                "x4111111111111111",
                "4111111111111111y",
                "pi 0.4111111111111111",
                "4111 11111 1111 111",
                "4111-1111 1111-1111",
                "5555555555554444555",
                "4111  1111  1111  1111",
            ],
        );
        // Amex printed 4-4-4-3 is a usual grouping; a 15-digit Amex is
        // found before unrelated trailing digits.
        assert_eq!(
            found("3782 8224 6310 005", Detector::CardNumber),
            vec!["3782 8224 6310 005"]
        );
        assert_eq!(
            found("378282246310005 0000", Detector::CardNumber),
            vec!["378282246310005"]
        );
    }

    #[test]
    fn iban_true_positives() {
        assert_finds(
            Detector::Iban,
            &[
                (
                    "IBAN: DE89 3704 0044 0532 0130 00.",
                    "DE89 3704 0044 0532 0130 00",
                ),
                ("GB82WEST12345698765432", "GB82WEST12345698765432"),
                ("to NL91ABNA0417164300 today", "NL91ABNA0417164300"),
                (
                    "FR14 2004 1010 0505 0001 3M02 606",
                    "FR14 2004 1010 0505 0001 3M02 606",
                ),
                ("BE68 5390 0754 7034", "BE68 5390 0754 7034"),
                ("(NO9386011117947)", "NO9386011117947"),
            ],
        );
    }

    #[test]
    fn iban_registry_table_is_sorted() {
        assert!(IBAN_LENGTHS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(IBAN_LENGTHS
            .iter()
            .all(|&(_, len)| (15..=34).contains(&len)));
        assert_eq!(iban_length(*b"DE"), Some(22));
        assert_eq!(iban_length(*b"NO"), Some(15));
        assert_eq!(iban_length(*b"US"), None);
    }

    #[test]
    fn iban_false_positives() {
        assert_misses(
            Detector::Iban,
            &[
                "DE88 3704 0044 0532 0130 00",
                "GB83WEST12345698765432",
                "XX89370400440532013000",
                "DE8937040044053201300",
                "DE89370400440532013000X",
                "ADE89370400440532013000",
                "de89370400440532013000",
                "DE89 3704 0044 0532 013000",
                "DE89 37040044 0532 0130 00",
            ],
        );
    }

    #[test]
    fn api_key_true_positives() {
        let anthropic = "sk-ant-api03-Xk9_fQ2mZp7LwR4tYv8NbC1dHs6JgU3eA0oIkM5qWx-Tz2rPy9VlBn4Fc7Gh1Dj8Ks3Qw6Er0Ty5Ui2Op9As4Df7Gh1Jk3LzAA";
        let project = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z_A7bC0dE3fG6hI9jK2lM5nO8pQ1rS4tU7vW0xY3z-T3BlbkFJ";
        assert_finds(
            Detector::ApiKey,
            &[
                (&format!("key={OPENAI_KEY}"), OPENAI_KEY),
                (&format!("\"{anthropic}\""), anthropic),
                (&format!("export OPENAI_API_KEY={project}\n"), project),
                (
                    "pvg_a1B2c3D4e5F6g7H8i9J0kLmN",
                    "pvg_a1B2c3D4e5F6g7H8i9J0kLmN",
                ),
                (
                    "Authorization: Bearer pvg_3fa9c1d27be04a6f9e1c55d0a8b7e2f41c6d9a0b3e5f7182",
                    "pvg_3fa9c1d27be04a6f9e1c55d0a8b7e2f41c6d9a0b3e5f7182",
                ),
                (
                    "token ghp_16C7e42F292c6912E7710c838347Ae178B4a done",
                    "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
                ),
                (
                    "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
                    "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
                ),
                (
                    "xoxb-123456789012-1234567890123-AbCdEf",
                    "xoxb-123456789012-1234567890123-AbCdEf",
                ),
                (
                    "AIzaSyA-1bC2dE3fG4hI5jK6lM7nO8pQ9rS0tUvw",
                    "AIzaSyA-1bC2dE3fG4hI5jK6lM7nO8pQ9rS0tUvw",
                ),
                (
                    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
                    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
                ),
                (
                    "rk_live_51H8xYzAbCdEfGhIjKlMn",
                    "rk_live_51H8xYzAbCdEfGhIjKlMn",
                ),
            ],
        );
    }

    #[test]
    fn api_key_false_positives() {
        assert_misses(
            Detector::ApiKey,
            &[
                "pip install sk-learn",
                "the task-force met",
                "sk-123",
                "use sk-learn-compatible-estimators-everywhere",
                "class sk-fading-circle-animation-delay",
                "placeholder sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                &format!("mask-{}", &OPENAI_KEY[3..]),
                &format!("x{OPENAI_KEY}"),
                "ghp_short1234",
                "AIzaTooShort123",
                "xoxb-123",
                "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
                "pvg_tooshort",
                "key pvg_3fa9c1 (shown prefix)",
            ],
        );
    }

    #[test]
    fn aws_true_positives() {
        assert_finds(
            Detector::AwsKey,
            &[
                ("AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
                (
                    "aws_access_key_id=ASIAY34FZKBOKMUTVV7A\n",
                    "ASIAY34FZKBOKMUTVV7A",
                ),
                (&format!("aws_secret_access_key = {AWS_SECRET}"), AWS_SECRET),
                (
                    &format!("AWS_SECRET_ACCESS_KEY=\"{AWS_SECRET}\""),
                    AWS_SECRET,
                ),
                (
                    &format!("{{\"SecretAccessKey\": \"{AWS_SECRET}\"}}"),
                    AWS_SECRET,
                ),
                (
                    &format!("<SecretAccessKey>{AWS_SECRET}</SecretAccessKey>"),
                    AWS_SECRET,
                ),
                (&format!("--secret-access-key '{AWS_SECRET}'"), AWS_SECRET),
            ],
        );
    }

    #[test]
    fn aws_false_positives() {
        assert_misses(
            Detector::AwsKey,
            &[
                "AKIAIOSFODNN7EXAMPL",
                "XAKIAIOSFODNN7EXAMPLE",
                "AKIAIOSFODNN7EXAMPLE1",
                "akiaiosfodnn7example",
                "AKIDIOSFODNN7EXAMPLE",
                AWS_SECRET,
                &format!("commit {AWS_SECRET}"),
                &format!("secret_access_key is {AWS_SECRET}"),
                &format!("secret_access_key = {}{AWS_SECRET}", " ".repeat(40)),
                &format!("secret_access_key={AWS_SECRET}X"),
                "secret_access_key=short",
            ],
        );
    }

    #[test]
    fn private_key_true_positives() {
        let openssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----";
        let pkcs8 = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw\n-----END PRIVATE KEY-----";
        let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkq\n-----END ENCRYPTED PRIVATE KEY-----";
        let pgp = "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2.0.22 (GNU/Linux)\n\nlQOYBF...\n=abcd\n-----END PGP PRIVATE KEY BLOCK-----";
        assert_finds(
            Detector::PrivateKey,
            &[
                (&format!("here:\n{RSA_KEY}\nthanks"), RSA_KEY),
                (openssh, openssh),
                (&format!("x {pkcs8} y"), pkcs8),
                (encrypted, encrypted),
                (pgp, pgp),
            ],
        );
        // Unterminated: to the end of the text (trailing whitespace aside)…
        let cut = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA3Tz2mr7SZiAMfQyu\nvBjM9Oi+Q/jg5S4CTL\n";
        assert_eq!(
            found(&format!("oops {cut}"), Detector::PrivateKey),
            vec![cut.trim_end()]
        );
        // …or of the enclosing JSON string / code fence.
        let args = r#"{"key":"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY\n","n":1}"#;
        let m = found(args, Detector::PrivateKey);
        assert_eq!(
            m,
            vec![
                r"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY\n"
            ]
        );
    }

    #[test]
    fn private_key_false_positives() {
        assert_misses(
            Detector::PrivateKey,
            &[
                "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n-----END PUBLIC KEY-----",
                "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkq\n-----END CERTIFICATE-----",
                "BEGIN RSA PRIVATE KEY without the dashes",
                "-----BEGIN rsa private key-----\nabc\n",
                "-----BEGIN PRIVATE KEY BLOB-----",
                "-----END RSA PRIVATE KEY-----",
            ],
        );
    }

    #[test]
    fn overlaps_keep_one_match() {
        // Everything inside a private key block is part of it.
        let block = format!(
            "-----BEGIN PRIVATE KEY-----\nAKIAIOSFODNN7EXAMPLE john@example.com +14155550132\n{OPENAI_KEY}\n-----END PRIVATE KEY-----"
        );
        assert_eq!(all(&block), vec![(Detector::PrivateKey, block.as_str())]);

        // A valid IBAN wins over the Luhn-valid card-like digits inside it.
        let iban = "DE89 4111 1111 1111 1111 11";
        assert_eq!(
            found(iban, Detector::CardNumber),
            vec!["4111 1111 1111 1111"]
        );
        assert_eq!(all(iban), vec![(Detector::Iban, iban)]);

        // Equal length: priority decides (AwsKey over ApiKey).
        let google_shaped = "AIzaB1c2D3e4F5g6H7i8J9k0L1m2N3o4P5q6R7s8";
        assert_eq!(google_shaped.len(), 40);
        let text = format!("aws_secret_access_key={google_shaped}");
        assert_eq!(found(&text, Detector::ApiKey), vec![google_shaped]);
        assert_eq!(all(&text), vec![(Detector::AwsKey, google_shaped)]);

        // Longer wins across detectors: the E.164 form over the NANP part.
        assert_eq!(
            all("+1-415-555-0132"),
            vec![(Detector::Phone, "+1-415-555-0132")]
        );
        // A key glued to a domain is reported as the longer email.
        let glued = format!("{OPENAI_KEY}@example.com");
        assert_eq!(all(&glued), vec![(Detector::Email, glued.as_str())]);

        // Disabled detectors do not compete.
        assert_eq!(
            scan(&block, &[Detector::Email, Detector::Email]).len(),
            1,
            "email alone still found inside the block"
        );
        assert!(scan(&block, &[]).is_empty());
    }

    #[test]
    fn mixed_text_finds_each_kind_in_order() {
        let text = format!(
            "Hi, I'm jane@example.org, +44 20 7946 0958. Card 5555-5555-5555-4444, IBAN GB82WEST12345698765432. \
             Key {OPENAI_KEY} and AKIAIOSFODNN7EXAMPLE.\n{RSA_KEY}\nBye (415) 555-0132"
        );
        let kinds: Vec<Detector> = scan(&text, &Detector::ALL)
            .iter()
            .map(|m| m.detector)
            .collect();
        assert_eq!(
            kinds,
            vec![
                Detector::Email,
                Detector::Phone,
                Detector::CardNumber,
                Detector::Iban,
                Detector::ApiKey,
                Detector::AwsKey,
                Detector::PrivateKey,
                Detector::Phone,
            ]
        );
        let matches = scan(&text, &Detector::ALL);
        assert!(matches.windows(2).all(|w| w[0].end <= w[1].start));
    }

    #[test]
    fn redact_replaces_matches_with_placeholders() {
        let text = "Email john@example.com, card 4111 1111 1111 1111.";
        let matches = scan(text, &Detector::ALL);
        assert_eq!(redact(text, &matches), "Email [EMAIL], card [CARD].");
        assert_eq!(redact(text, &[]), text);

        let text = format!("key={OPENAI_KEY}\n{RSA_KEY}\nok");
        let matches = scan(&text, &Detector::ALL);
        assert_eq!(redact(&text, &matches), "key=[API_KEY]\n[PRIVATE_KEY]\nok");

        // Only the enabled detectors are redacted.
        let text = "john@example.com 415-555-0132";
        assert_eq!(
            redact(text, &scan(text, &[Detector::Phone])),
            "john@example.com [PHONE]"
        );
    }

    #[test]
    fn redact_tolerates_odd_matches() {
        let text = "héllo wörld 😀 end";
        let m = |detector, start, end| Match {
            detector,
            start,
            end,
        };
        // Unsorted, overlapping, out of range, inside a multi-byte char.
        let odd = [
            m(Detector::Phone, 8, 10),
            m(Detector::Email, 0, 3),
            m(Detector::ApiKey, 2, 5),
            m(Detector::Iban, 16, 1000),
            m(Detector::Iban, 5, 5),
            m(Detector::Iban, 9, 7),
        ];
        let out = redact(text, &odd);
        assert_eq!(out, "[EMAIL]o w[PHONE]rld [IBAN]");
        assert_eq!(redact("", &odd), "");
    }

    #[test]
    fn summary_counts_by_detector_name() {
        let text = "a@example.com 4111111111111111 b@example.com";
        assert_eq!(
            summary(&scan(text, &Detector::ALL)),
            "card_number:1,email:2"
        );
        assert_eq!(summary(&[]), "");
        let text =
            format!("{RSA_KEY} AKIAIOSFODNN7EXAMPLE {OPENAI_KEY} +14155550132 NL91ABNA0417164300");
        assert_eq!(
            summary(&scan(&text, &Detector::ALL)),
            "api_key:1,aws_key:1,iban:1,phone:1,private_key:1"
        );
    }

    #[test]
    fn utf8_neighbours_are_safe() {
        let text =
            "Ünïcödé 🎉john@example.com🎉 — 電話+81 3-1234-5678。カード4111 1111 1111 1111です、\
                    ñ(415) 555-0132ñ «DE89 3704 0044 0532 0130 00» 🔑AKIAIOSFODNN7EXAMPLE🔑 é";
        let got = all(text);
        assert_eq!(
            got,
            vec![
                (Detector::Email, "john@example.com"),
                (Detector::Phone, "+81 3-1234-5678"),
                (Detector::CardNumber, "4111 1111 1111 1111"),
                (Detector::Phone, "(415) 555-0132"),
                (Detector::Iban, "DE89 3704 0044 0532 0130 00"),
                (Detector::AwsKey, "AKIAIOSFODNN7EXAMPLE"),
            ]
        );
        assert_eq!(
            redact(text, &scan(text, &Detector::ALL)),
            "Ünïcödé 🎉[EMAIL]🎉 — 電話[PHONE]。カード[CARD]です、ñ[PHONE]ñ «[IBAN]» 🔑[AWS_KEY]🔑 é"
        );
        // Emails after CJK text do not swallow it; accented local parts count.
        assert_eq!(
            found("邮箱john@example.com", Detector::Email),
            vec!["john@example.com"]
        );
        assert_eq!(
            found("«renée@exemple.fr»", Detector::Email),
            vec!["renée@exemple.fr"]
        );
        let eric = "«éric@exemple.fr»";
        assert_eq!(found(eric, Detector::Email), vec!["éric@exemple.fr"]);
        assert_eq!(redact(eric, &scan(eric, &Detector::ALL)), "«[EMAIL]»");

        // Cut the text at every char boundary: no panics, boundaries kept.
        let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        for &cut in &boundaries {
            for part in [&text[..cut], &text[cut..]] {
                for m in scan(part, &Detector::ALL) {
                    assert!(part.is_char_boundary(m.start) && part.is_char_boundary(m.end));
                }
                let _ = redact(part, &scan(part, &Detector::ALL));
            }
        }
    }

    #[test]
    fn large_mixed_text_is_scanned_correctly() {
        let paragraph = format!(
            "Dear support, my email is user.name+{{n}}@example.com and my phone is +1 (415) 555-0132. \
             Pay with 4111 1111 1111 1111 or transfer to DE89 3704 0044 0532 0130 00. \
             Version 1.2.3 shipped 2024-01-15T10:30:00Z from 10.0.0.1; order #1234567812345678. \
             Déjà vu — 日本語のテキスト 🎉. key {OPENAI_KEY} / AKIAIOSFODNN7EXAMPLE.\n"
        );
        let mut text = String::new();
        let mut reps = 0;
        while text.len() < 200_000 {
            text.push_str(&paragraph.replace("{n}", &reps.to_string()));
            reps += 1;
        }
        assert!(text.len() >= 200_000);
        let matches = scan(&text, &Detector::ALL);
        assert_eq!(matches.len(), reps * 6);
        assert_eq!(
            summary(&matches),
            format!("api_key:{reps},aws_key:{reps},card_number:{reps},email:{reps},iban:{reps},phone:{reps}")
        );
        let redacted = redact(&text, &matches);
        assert!(
            !redacted.contains("example.com")
                && !redacted.contains("4111")
                && !redacted.contains(OPENAI_KEY)
        );
        assert!(redacted.contains("Version 1.2.3 shipped 2024-01-15T10:30:00Z"));
    }

    #[test]
    fn pathological_inputs_finish() {
        let inputs = [
            "sk-".repeat(30_000),
            "a@".repeat(40_000),
            "a.".repeat(40_000) + "@",
            "1 ".repeat(40_000),
            "1".repeat(80_000),
            "+1 ".repeat(30_000),
            "-----BEGIN ".repeat(8_000),
            "-----BEGIN PRIVATE KEY-----".repeat(3_000),
            "secret_access_key=".repeat(5_000),
            "DE89".repeat(20_000),
            "xoxb-".repeat(20_000),
        ];
        for input in &inputs {
            let matches = scan(input, &Detector::ALL);
            assert!(matches.windows(2).all(|w| w[0].end <= w[1].start));
        }
    }

    /// Redacts through `visit_text` and returns the number of strings visited.
    fn redact_json(value: &mut Value) -> usize {
        visit_text(value, &mut |s: &mut String| {
            let matches = scan(s, &Detector::ALL);
            if !matches.is_empty() {
                *s = redact(s, &matches);
            }
        })
    }

    #[test]
    fn visit_openai_chat_request() {
        let mut body = json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "You help john@example.com."},
                {"role": "user", "content": [
                    {"type": "text", "text": "My card is 4111 1111 1111 1111"},
                    {"type": "image_url", "image_url": {"url": "https://x.test/a@example.com.png"}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {
                        "name": "lookup", "arguments": "{\"email\":\"jane@example.org\"}"
                    }}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "phone +44 20 7946 0958"}
            ],
            "user": "bob@example.com"
        });
        assert_eq!(redact_json(&mut body), 4);
        assert_eq!(body["messages"][0]["content"], "You help [EMAIL].");
        assert_eq!(
            body["messages"][1]["content"][0]["text"],
            "My card is [CARD]"
        );
        assert_eq!(
            body["messages"][1]["content"][1]["image_url"]["url"],
            "https://x.test/a@example.com.png"
        );
        assert_eq!(
            body["messages"][2]["tool_calls"][0]["function"]["arguments"],
            "{\"email\":\"[EMAIL]\"}"
        );
        assert_eq!(
            body["messages"][2]["tool_calls"][0]["function"]["name"],
            "lookup"
        );
        assert_eq!(body["messages"][3]["content"], "phone [PHONE]");
        assert_eq!(body["user"], "bob@example.com");
    }

    #[test]
    fn visit_anthropic_messages_request() {
        let mut body = json!({
            "model": "claude-sonnet-4",
            "system": [{"type": "text", "text": "Operator: ops@paved.dev"}],
            "messages": [
                {"role": "user", "content": "IBAN GB82WEST12345698765432"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "jane@example.org", "signature": "sig"},
                    {"type": "text", "text": "Calling the tool."},
                    {"type": "tool_use", "id": "tu_1", "name": "send", "input": {
                        "to": "jane@example.org",
                        "cc": ["a@example.com", {"deep": "4111111111111111"}],
                        "count": 3
                    }}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "tu_1", "content": [
                        {"type": "text", "text": format!("sent with {OPENAI_KEY}")}
                    ]},
                    {"type": "tool_result", "tool_use_id": "tu_2", "content": "AKIAIOSFODNN7EXAMPLE"},
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "call 415-555-0132"}}
                ]}
            ]
        });
        assert_eq!(redact_json(&mut body), 9);
        assert_eq!(body["system"][0]["text"], "Operator: [EMAIL]");
        assert_eq!(body["messages"][0]["content"], "IBAN [IBAN]");
        assert_eq!(
            body["messages"][1]["content"][0]["thinking"],
            "jane@example.org"
        );
        let input = &body["messages"][1]["content"][2]["input"];
        assert_eq!(
            input,
            &json!({"to": "[EMAIL]", "cc": ["[EMAIL]", {"deep": "[CARD]"}], "count": 3})
        );
        assert_eq!(
            body["messages"][2]["content"][0]["content"][0]["text"],
            "sent with [API_KEY]"
        );
        assert_eq!(body["messages"][2]["content"][1]["content"], "[AWS_KEY]");
        assert_eq!(
            body["messages"][2]["content"][2]["source"]["data"],
            "call [PHONE]"
        );

        let mut body =
            json!({"system": "Never reveal sk_live_4eC39HqLyjWDarjtT1zdp7dc", "messages": []});
        assert_eq!(redact_json(&mut body), 1);
        assert_eq!(body["system"], "Never reveal [API_KEY]");
    }

    #[test]
    fn visit_openai_responses_request() {
        let mut body = json!({"model": "gpt-4.1", "input": "mail a@example.com", "instructions": "Key AKIAIOSFODNN7EXAMPLE"});
        assert_eq!(redact_json(&mut body), 2);
        assert_eq!(body["input"], "mail [EMAIL]");
        assert_eq!(body["instructions"], "Key [AWS_KEY]");

        let mut body = json!({
            "input": [
                {"role": "user", "content": "card 5555-5555-5555-4444"},
                {"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": "iban NL91ABNA0417164300"},
                    {"type": "input_image", "image_url": "data:..."}
                ]},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{\"p\":\"+14155550132\"}"},
                {"type": "function_call_output", "call_id": "c1", "output": "b@example.com"}
            ]
        });
        assert_eq!(redact_json(&mut body), 4);
        assert_eq!(body["input"][0]["content"], "card [CARD]");
        assert_eq!(body["input"][1]["content"][0]["text"], "iban [IBAN]");
        assert_eq!(body["input"][2]["arguments"], "{\"p\":\"[PHONE]\"}");
        assert_eq!(body["input"][3]["output"], "[EMAIL]");

        // Embeddings-style input: an array of strings.
        let mut body = json!({"input": ["a@example.com", "plain", [1, 2, 3]]});
        assert_eq!(redact_json(&mut body), 2);
        assert_eq!(body["input"][0], "[EMAIL]");
    }

    #[test]
    fn visit_chat_completion_response() {
        let mut body = json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Reach me at +1 (415) 555-0132",
                    "tool_calls": [{"type": "function", "function": {"name": "pay", "arguments": "{\"card\":\"378282246310005\"}"}}]
                },
                "finish_reason": "tool_calls"
            }],
            "usage": {"prompt_tokens": 1}
        });
        assert_eq!(redact_json(&mut body), 2);
        assert_eq!(
            body["choices"][0]["message"]["content"],
            "Reach me at [PHONE]"
        );
        assert_eq!(
            body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"card\":\"[CARD]\"}"
        );

        let mut chunk = json!({"choices": [{"delta": {"content": "x@example.com"}}, {"text": "y@example.com"}]});
        assert_eq!(redact_json(&mut chunk), 2);
        assert_eq!(chunk["choices"][0]["delta"]["content"], "[EMAIL]");
        assert_eq!(chunk["choices"][1]["text"], "[EMAIL]");
    }

    #[test]
    fn visit_anthropic_response() {
        let mut body = json!({
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4",
            "content": [
                {"type": "text", "text": format!("Here: {RSA_KEY}")},
                {"type": "tool_use", "id": "tu", "name": "store", "input": {"secret": AWS_SECRET, "k": format!("aws_secret_access_key={AWS_SECRET}")}}
            ],
            "stop_reason": "tool_use"
        });
        assert_eq!(redact_json(&mut body), 3);
        assert_eq!(body["content"][0]["text"], "Here: [PRIVATE_KEY]");
        // A bare 40-character string is not flagged without its field name.
        assert_eq!(body["content"][1]["input"]["secret"], AWS_SECRET);
        assert_eq!(
            body["content"][1]["input"]["k"],
            "aws_secret_access_key=[AWS_KEY]"
        );
    }

    #[test]
    fn visit_openai_responses_response() {
        let mut body = json!({
            "id": "resp_1",
            "object": "response",
            "output": [
                {"type": "reasoning", "summary": []},
                {"type": "message", "role": "assistant", "content": [
                    {"type": "output_text", "text": "IBAN DE89 3704 0044 0532 0130 00", "annotations": []}
                ]},
                {"type": "function_call", "name": "f", "arguments": "{\"to\":\"ops@paved.dev\"}"}
            ]
        });
        assert_eq!(redact_json(&mut body), 2);
        assert_eq!(body["output"][1]["content"][0]["text"], "IBAN [IBAN]");
        assert_eq!(body["output"][2]["arguments"], "{\"to\":\"[EMAIL]\"}");
    }

    #[test]
    fn visit_survives_odd_shapes() {
        let mut f = |_: &mut String| {};
        let odd = [
            json!(null),
            json!("a@example.com"),
            json!([{"messages": "x"}]),
            json!({"messages": "x", "system": 3, "input": {"a": 1}, "choices": "y", "output": null}),
            json!({"messages": [null, 1, "s", [], {"content": 5, "tool_calls": "z"}, {"tool_calls": [null, {"function": 1}, {"function": {"arguments": null}}]}]}),
            json!({"messages": [{"content": [null, 1, [], {"type": 7, "text": 8}, {"type": "tool_use", "input": null}, {"type": "tool_result"}]}]}),
            json!({"choices": [null, {"message": "m", "delta": [1], "text": {}}]}),
            json!({"output": [1, {"content": {"text": {"value": "v"}}, "arguments": 2, "output": {}}]}),
        ];
        for mut value in odd {
            assert_eq!(visit_text(&mut value, &mut f), 0, "{value}");
        }
        // Deeply nested tool results stop at the depth limit instead of recursing without bound.
        let mut nested = json!({"type": "tool_result", "content": "deep"});
        for _ in 0..100 {
            nested = json!({"type": "tool_result", "content": [nested]});
        }
        let mut body = json!({"messages": [{"content": [nested]}]});
        assert_eq!(visit_text(&mut body, &mut f), 0);
        // Odd entries next to good ones: the good ones are still visited.
        let mut body = json!({"messages": [null, {"content": "a@example.com"}, {"content": [1, {"text": "b"}]}]});
        assert_eq!(redact_json(&mut body), 2);
        assert_eq!(body["messages"][1]["content"], "[EMAIL]");
    }
}
