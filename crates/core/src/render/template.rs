//! Message templates: a subscription's own text for its Slack, Mattermost, Teams or Trello message,
//! written in minijinja (Jinja2 syntax) and rendered from the event.
//!
//! The template's literal text is the owner's markup (Slack mrkdwn, Markdown); every value it
//! prints from the event is escaped for the platform first, so event data cannot add markup,
//! mentions or links: control characters (newlines included) become spaces, then Slack gets `&`,
//! `<`, `>` as entities and its emphasis characters at a word's edge fenced by zero-width spaces
//! (mrkdwn has no escape), the Markdown platforms get backslash escapes, and `@` is followed by a
//! zero-width space everywhere. Null and missing values print nothing. The `url` filter is the one
//! way to print a link: an `http(s)` URL, escaped for a link target, or nothing.
//!
//! The sandbox: no loader (no `include`, `import`, `extends`), no macros, no `safe` filter and no
//! `debug()`; the context holds only `type`, `id`, `timestamp`, `data` and `event`; missing fields
//! render empty. A render has a fuel budget (time and memory), a recursion limit, and an output cap
//! applied before the platform's own size limit. Nothing here may panic or loop on any template or
//! event: a template that fails is an error for the caller (a 422 when saved, Herald's default
//! message when delivered).

use std::sync::LazyLock;

use minijinja::value::{Serde, Value as JinjaValue};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{clean_link, whole_seconds};
use crate::model::{Event, Platform};

/// Longest template source, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 4096;
/// Work one render may do: about one unit per instruction and per 64 bytes produced.
pub const TEMPLATE_FUEL: u64 = 50_000;
/// Longest rendered text, in bytes, before the platform's limit cuts it.
pub const MAX_OUTPUT_BYTES: usize = 40 * 1024;
const RECURSION_LIMIT: usize = 50;
const ZWSP: char = '\u{200B}';

/// A template that compiles, at most [`MAX_TEMPLATE_BYTES`]. Stored as its source text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageTemplate(String);

/// Why a template cannot be used, with the line it points at (1-based) when it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub line: Option<usize>,
    pub reason: String,
}

/// `line 3: unexpected end of input, …`, or the reason alone.
impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for TemplateError {}

impl TemplateError {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            line: None,
            reason: reason.into(),
        }
    }
}

/// The markup a template writes, which decides how event values are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    /// Slack mrkdwn.
    Slack,
    /// Mattermost Markdown.
    Mattermost,
    /// Adaptive Card TextBlock Markdown.
    Teams,
    /// The first line is the card name (plain text), the rest its Markdown description.
    Trello,
}

impl Markup {
    /// The markup of `platform`'s messages; `None` for `custom`, which takes no template.
    pub fn of(platform: Platform) -> Option<Self> {
        match platform {
            Platform::Custom => None,
            Platform::Slack => Some(Self::Slack),
            Platform::Mattermost => Some(Self::Mattermost),
            Platform::Teams => Some(Self::Teams),
            Platform::Trello => Some(Self::Trello),
        }
    }

    /// Also the name templates are compiled under: the formatter reads the markup back from it.
    fn name(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Mattermost => "mattermost",
            Self::Teams => "teams",
            Self::Trello => "trello",
        }
    }

    fn from_name(name: &str) -> Self {
        match name {
            "slack" => Self::Slack,
            "teams" => Self::Teams,
            "trello" => Self::Trello,
            // Backslash escapes: the safe choice for any name, though only these four occur.
            _ => Self::Mattermost,
        }
    }

    /// `value` as plain text in this markup: a space for each control character, then escaped.
    pub(super) fn escape_text(self, value: &str, out: &mut String) {
        let chars: Vec<char> = value
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        for (i, &c) in chars.iter().enumerate() {
            match self {
                Self::Slack => match c {
                    '&' => out.push_str("&amp;"),
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    // Emphasis opens or closes only at a word's edge: inside a word (`evt_01`)
                    // the character stays as it is.
                    '*' | '_' | '~' | '`' => {
                        let word = |j: Option<usize>| {
                            j.and_then(|j| chars.get(j))
                                .is_some_and(|c| c.is_alphanumeric())
                        };
                        if word(i.checked_sub(1)) && word(i.checked_add(1)) {
                            out.push(c);
                        } else {
                            out.push(ZWSP);
                            out.push(c);
                            out.push(ZWSP);
                        }
                    }
                    _ => out.push(c),
                },
                Self::Mattermost | Self::Teams | Self::Trello => {
                    if "\\`*_[]()<>~|#!".contains(c) {
                        out.push('\\');
                    }
                    out.push(c);
                }
            }
            if c == '@' {
                out.push(ZWSP);
            }
        }
    }

    /// `url` written as a link target: `&`, `<`, `>` as entities and `|` encoded for Slack's
    /// `<url|label>`; `(`, `)`, `\` and spaces encoded for Markdown's `[label](url)`.
    fn escape_link(self, url: &str) -> String {
        match self {
            Self::Slack => url
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('|', "%7C"),
            Self::Mattermost | Self::Teams | Self::Trello => url
                .replace('(', "%28")
                .replace(')', "%29")
                .replace('\\', "%5C")
                .replace(' ', "%20"),
        }
    }
}

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.set_recursion_limit(RECURSION_LIMIT);
    // Missing fields, and fields of missing fields, render empty.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_auto_escape_callback(|name| AutoEscape::Custom(Markup::from_name(name).name().into()));
    env.set_formatter(format_value);
    // Each would let event data through unescaped, or show more than the event.
    env.remove_filter("safe");
    env.remove_global("debug");
    env.add_filter("url", url_filter);
    env
});

/// Escapes every printed value for the template's markup, whatever `{% autoescape %}` says: only
/// values this module marked safe (escaped output, the `url` filter's) pass as they are.
fn format_value(out: &mut Output, state: &mut State, value: &JinjaValue) -> Result<(), Error> {
    let write_err = |_| Error::new(ErrorKind::WriteFailure, "could not write the output");
    if value.is_undefined() || value.is_none() {
        return Ok(());
    }
    if value.is_safe() {
        return out
            .write_str(value.as_str().unwrap_or_default())
            .map_err(write_err);
    }
    let markup = Markup::from_name(state.name());
    let mut escaped = String::new();
    match value.as_str() {
        Some(s) => markup.escape_text(s, &mut escaped),
        None => markup.escape_text(&value.to_string(), &mut escaped),
    }
    out.write_str(&escaped).map_err(write_err)
}

/// `{{ data.url | url }}`: an `http(s)` link without credentials, escaped as a link target in the
/// template's markup; anything else prints nothing.
fn url_filter(state: &State, value: JinjaValue) -> JinjaValue {
    let markup = Markup::from_name(state.name());
    let link = value
        .as_str()
        .and_then(clean_link)
        .map(|url| markup.escape_link(&url))
        .unwrap_or_default();
    JinjaValue::from_safe_string(link)
}

fn template_error(err: &Error) -> TemplateError {
    let reason = match err.kind() {
        ErrorKind::OutOfFuel => format!(
            "the template does too much work for one message (more than {TEMPLATE_FUEL} steps or \
             about {} MB of text)",
            TEMPLATE_FUEL * 64 / 1_000_000
        ),
        kind => err.detail().map_or_else(|| kind.to_string(), str::to_owned),
    };
    TemplateError {
        line: err.line(),
        reason,
    }
}

impl MessageTemplate {
    /// A template that compiles: at most [`MAX_TEMPLATE_BYTES`], no syntax error, no statement
    /// outside the sandbox. Filters and tests are looked up when rendering: [`Self::check`].
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        if source.len() > MAX_TEMPLATE_BYTES {
            return Err(TemplateError::new(format!(
                "a template is at most {MAX_TEMPLATE_BYTES} bytes"
            )));
        }
        if source.trim().is_empty() {
            return Err(TemplateError::new("the template is empty"));
        }
        ENV.template_from_named_str(Markup::Mattermost.name(), source)
            .map_err(|e| template_error(&e))?;
        Ok(Self(source.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Renders the message text for `event` in `markup`. Fails when the template does (unknown
    /// filter, fuel, recursion), when the text is over [`MAX_OUTPUT_BYTES`], or when it is blank.
    pub fn render(&self, markup: Markup, event: &Event) -> Result<String, TemplateError> {
        let template = ENV
            .template_from_named_str(markup.name(), &self.0)
            .map_err(|e| template_error(&e))?;
        let fields = json!({
            "type": event.event_type.as_str(),
            "id": event.id.to_string(),
            "timestamp": whole_seconds(event.timestamp),
            "data": &event.data,
        });
        let mut context = fields.clone();
        if let Some(map) = context.as_object_mut() {
            map.insert("event".to_owned(), fields);
        }
        let text = template
            .render(JinjaValue::from(Serde(&context)))
            .map_err(|e| template_error(&e))?;
        if text.len() > MAX_OUTPUT_BYTES {
            return Err(TemplateError::new(format!(
                "the message is longer than {} KB",
                MAX_OUTPUT_BYTES / 1024
            )));
        }
        if text.trim().is_empty() {
            return Err(TemplateError::new("the template renders an empty message"));
        }
        Ok(text)
    }

    /// Renders each event, refusing the template at the first one that fails: what saving a
    /// template checks against the examples of the types it will receive.
    pub fn check<'a>(
        &self,
        markup: Markup,
        events: impl IntoIterator<Item = &'a Event>,
    ) -> Result<(), TemplateError> {
        events
            .into_iter()
            .try_for_each(|event| self.render(markup, event).map(drop))
    }
}

/// `text` cut to at most `max` of `cost` (`…` included), never inside an escape: not after an odd
/// run of backslashes, not inside an `&…;` entity.
pub(super) fn cut_markup(text: &str, max: usize, cost: fn(&str) -> usize) -> String {
    if cost(text) <= max {
        return text.to_owned();
    }
    let budget = max.saturating_sub(cost(super::ELLIPSIS));
    let mut out = String::new();
    let mut used = 0;
    let mut buf = [0u8; 4];
    for c in text.chars() {
        used += cost(c.encode_utf8(&mut buf));
        if used > budget {
            break;
        }
        out.push(c);
    }
    let backslashes = out.chars().rev().take_while(|&c| c == '\\').count();
    if backslashes % 2 == 1 {
        out.pop();
    }
    if let Some(amp) = out.rfind('&') {
        let tail = &out[amp..];
        if !tail.contains(';') && tail.len() <= "&amp;".len() {
            out.truncate(amp);
        }
    }
    if max >= cost(super::ELLIPSIS) {
        out.push_str(super::ELLIPSIS);
    }
    out
}

/// Removes the backslash escapes [`Markup::escape_text`] adds, for Trello's plain-text card name.
pub(super) fn unescape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&next) = chars.peek() {
                if "\\`*_[]()<>~|#!".contains(next) {
                    out.push(next);
                    chars.next();
                    continue;
                }
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
