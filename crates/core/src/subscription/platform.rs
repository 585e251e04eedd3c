//! A subscription's platform and its options, parsed together so they always agree, the one
//! rule for Trello credentials, and the URLs a platform cannot take.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::input::{FieldError, Fields};
use crate::model::{Platform, PlatformConfig, TrelloOptions};
use crate::target::TargetUrl;

/// Where Trello subscriptions post: the card-creation endpoint of Trello's REST API.
pub const TRELLO_CARDS_URL: &str = "https://api.trello.com/1/cards";

const TRELLO_CREDENTIAL_MAX_LEN: usize = 256;
/// The credential rule in words, for error messages.
const TRELLO_CREDENTIAL_RULE: &str = "1 to 256 ASCII letters, digits, `-`, `.`, `_` or `~`";
const TRELLO_LIST_ID_MAX_LEN: usize = 256;
const MATTERMOST_USERNAME_MAX_LEN: usize = 64;
const MATTERMOST_ICON_URL_MAX_LEN: usize = 2048;
const TEAMS_CONNECTOR_RETIRED: &str = "Office 365 connector webhooks were retired by Microsoft; \
    create a Workflows webhook in Teams (Workflows → 'Post to a channel when a webhook request is \
    received') and use its URL";

/// A Trello API key or token: 1 to 256 ASCII letters, digits, `-`, `.`, `_` or `~` (the unreserved
/// characters of RFC 3986, which covers Trello's hex keys and `ATTA…` tokens).
///
/// It travels inside a quoted parameter of the `authorization` header, where a quote, a comma or a
/// line break could forge other parameters, so anything else is refused rather than escaped. The
/// rule holds for every value of the type, so rendering needs no check of its own. `Debug` hides the
/// value; [`TrelloCredential::expose`] is for building that one header.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TrelloCredential(String);

/// A Trello credential that breaks the rule. It never carries the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a Trello credential must be {TRELLO_CREDENTIAL_RULE}")]
pub struct TrelloCredentialError;

impl TrelloCredential {
    pub fn parse(input: &str) -> Result<Self, TrelloCredentialError> {
        let ok = !input.is_empty()
            && input.len() <= TRELLO_CREDENTIAL_MAX_LEN
            && input
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if ok {
            Ok(Self(input.to_owned()))
        } else {
            Err(TrelloCredentialError)
        }
    }

    /// The credential itself, for the `authorization` header of a Trello request and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TrelloCredential {
    type Error = TrelloCredentialError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TrelloCredential> for String {
    fn from(value: TrelloCredential) -> Self {
        value.0
    }
}

impl fmt::Debug for TrelloCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// `platform` as given by the user.
pub(super) fn parse_platform(raw: &str) -> Result<Platform, FieldError> {
    Platform::parse(raw).ok_or_else(|| {
        FieldError::new(
            "platform",
            format!(
                "unknown platform `{}`: use one of custom, slack, mattermost, teams, trello",
                raw.chars().take(40).collect::<String>()
            ),
        )
    })
}

/// `platform_options` for `platform`; absent or null means none.
pub(super) fn parse_platform_options(
    platform: Platform,
    options: Option<Value>,
) -> Result<PlatformConfig, FieldError> {
    let map = match options {
        None => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(FieldError::new(
                "platform_options",
                "`platform_options` must be an object",
            ))
        }
    };
    let mut fields = Fields::new(map);
    let config = match platform {
        Platform::Custom => PlatformConfig::Custom,
        Platform::Slack => PlatformConfig::Slack,
        Platform::Teams => PlatformConfig::Teams,
        Platform::Mattermost => {
            let username = option_string(&mut fields, "username", MATTERMOST_USERNAME_MAX_LEN)?;
            let icon_url = option_string(&mut fields, "icon_url", MATTERMOST_ICON_URL_MAX_LEN)?;
            if let Some(icon) = &icon_url {
                let http = icon.starts_with("https://") || icon.starts_with("http://");
                if !http || url::Url::parse(icon).is_err() {
                    return Err(FieldError::new(
                        "platform_options.icon_url",
                        "`icon_url` must be an http(s) URL",
                    ));
                }
            }
            PlatformConfig::Mattermost { username, icon_url }
        }
        Platform::Trello => {
            let list_id = trello_required(&mut fields, "list_id", TRELLO_LIST_ID_MAX_LEN)?;
            if !list_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(FieldError::new(
                    "platform_options.list_id",
                    "`list_id` must be letters, digits, `-` or `_`",
                ));
            }
            PlatformConfig::Trello(TrelloOptions {
                list_id,
                api_key: trello_credential(&mut fields, "api_key")?,
                token: trello_credential(&mut fields, "token")?,
            })
        }
    };
    fields.finish().map_err(|e| {
        FieldError::new(
            format!("platform_options.{}", e.field),
            format!(
                "`{}` is not an option of the {} platform",
                e.field,
                platform.as_str()
            ),
        )
    })?;
    Ok(config)
}

/// Refuses a URL the platform cannot take: for Teams, an Office 365 connector webhook, which
/// Microsoft retired (Herald's Adaptive Cards go to a Workflows webhook instead).
pub(super) fn check_url(platform: &PlatformConfig, url: &TargetUrl) -> Result<(), FieldError> {
    if matches!(platform, PlatformConfig::Teams) && is_teams_connector(url) {
        return Err(FieldError::new("url", TEAMS_CONNECTOR_RETIRED));
    }
    Ok(())
}

/// `https://<tenant>.webhook.office.com/webhookb2/…`, or the older
/// `https://outlook.office.com/webhook/…` and `https://outlook.office365.com/webhook/…`.
fn is_teams_connector(url: &TargetUrl) -> bool {
    let url = url.as_url();
    // The parser lowercases hosts; a trailing dot names the same host.
    let host = url.host_str().unwrap_or_default().trim_end_matches('.');
    let path = url.path().to_ascii_lowercase();
    host == "webhook.office.com"
        || host.ends_with(".webhook.office.com")
        || (matches!(host, "outlook.office.com" | "outlook.office365.com")
            && path.starts_with("/webhook"))
}

/// An optional string option; empty counts as absent.
fn option_string(
    fields: &mut Fields,
    name: &str,
    max: usize,
) -> Result<Option<String>, FieldError> {
    let field = format!("platform_options.{name}");
    match fields.take_value(name) {
        None | Some(None) => Ok(None),
        Some(Some(Value::String(s))) if s.is_empty() => Ok(None),
        Some(Some(Value::String(s))) if s.len() <= max => Ok(Some(s)),
        Some(Some(Value::String(_))) => {
            Err(FieldError::new(field, format!("`{name}` is too long")))
        }
        Some(Some(_)) => Err(FieldError::new(field, format!("`{name}` must be a string"))),
    }
}

fn trello_required(fields: &mut Fields, name: &str, max: usize) -> Result<String, FieldError> {
    option_string(fields, name, max)?.ok_or_else(|| {
        FieldError::new(
            format!("platform_options.{name}"),
            format!("Trello needs `platform_options.{name}`"),
        )
    })
}

fn trello_credential(fields: &mut Fields, name: &str) -> Result<TrelloCredential, FieldError> {
    let raw = trello_required(fields, name, TRELLO_CREDENTIAL_MAX_LEN)?;
    TrelloCredential::parse(&raw).map_err(|_| {
        FieldError::new(
            format!("platform_options.{name}"),
            format!("`{name}` must be {TRELLO_CREDENTIAL_RULE}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "ATTAsecret-Token.value_9~8";

    fn trello(options: Value) -> Result<PlatformConfig, FieldError> {
        parse_platform_options(Platform::Trello, Some(options))
    }

    #[test]
    fn trello_credentials_are_unreserved_ascii_of_1_to_256_chars() {
        for ok in [KEY, TOKEN, "a", &"k".repeat(256)] {
            assert_eq!(TrelloCredential::parse(ok).unwrap().expose(), ok);
        }
        for bad in [
            "",
            &"k".repeat(257),
            "abc\", oauth_signature=\"x",
            "with space",
            "line\nbreak",
            "comma,",
            "clé",
        ] {
            assert_eq!(TrelloCredential::parse(bad), Err(TrelloCredentialError));
        }
    }

    #[test]
    fn trello_credentials_are_stored_as_plain_strings_and_never_printed() {
        let key = TrelloCredential::parse(KEY).unwrap();
        assert_eq!(serde_json::to_value(&key).unwrap(), json!(KEY));
        assert_eq!(
            serde_json::from_value::<TrelloCredential>(json!(KEY)).unwrap(),
            key
        );
        let err = serde_json::from_value::<TrelloCredential>(json!("a\"b")).unwrap_err();
        assert!(!err.to_string().contains("a\"b"), "{err}");

        let options = TrelloOptions {
            list_id: "list1".into(),
            api_key: key,
            token: TrelloCredential::parse(TOKEN).unwrap(),
        };
        let debug = format!("{options:?}");
        assert!(debug.contains("list1") && debug.contains("<redacted>"));
        assert!(!debug.contains(KEY) && !debug.contains(TOKEN), "{debug}");
    }

    #[test]
    fn trello_options_parse_with_the_credential_rule_in_the_message() {
        let config = trello(json!({"list_id": "l1", "api_key": KEY, "token": TOKEN})).unwrap();
        let PlatformConfig::Trello(options) = config else {
            panic!("not trello: {config:?}")
        };
        assert_eq!(options.api_key.expose(), KEY);
        assert_eq!(options.token.expose(), TOKEN);

        let err = trello(json!({"list_id": "l1", "api_key": KEY, "token": "a b"})).unwrap_err();
        assert_eq!(err.field, "platform_options.token");
        assert_eq!(
            err.message,
            "`token` must be 1 to 256 ASCII letters, digits, `-`, `.`, `_` or `~`"
        );
        let err = trello(json!({"list_id": "l1", "token": TOKEN})).unwrap_err();
        assert_eq!(
            err,
            FieldError::new(
                "platform_options.api_key",
                "Trello needs `platform_options.api_key`"
            )
        );
        let err = trello(json!({"list_id": "l 1", "api_key": KEY, "token": TOKEN})).unwrap_err();
        assert_eq!(err.field, "platform_options.list_id");
    }

    #[test]
    fn options_belong_to_their_platform() {
        let err =
            parse_platform_options(Platform::Slack, Some(json!({"username": "x"}))).unwrap_err();
        assert_eq!(
            err,
            FieldError::new(
                "platform_options.username",
                "`username` is not an option of the slack platform"
            )
        );
        let err = parse_platform_options(Platform::Custom, Some(json!([]))).unwrap_err();
        assert_eq!(err.field, "platform_options");
        assert_eq!(
            parse_platform_options(Platform::Mattermost, None).unwrap(),
            PlatformConfig::Mattermost {
                username: None,
                icon_url: None
            }
        );
        let err = parse_platform_options(
            Platform::Mattermost,
            Some(json!({"icon_url": "ftp://example.com/i.png"})),
        )
        .unwrap_err();
        assert_eq!(err.field, "platform_options.icon_url");
    }

    fn teams_url(url: &str) -> Result<(), FieldError> {
        let url = TargetUrl::from_stored(url).unwrap();
        check_url(&PlatformConfig::Teams, &url)
    }

    #[test]
    fn teams_refuses_retired_office_365_connectors() {
        for retired in [
            "https://contoso.webhook.office.com/webhookb2/a-b@c/IncomingWebhook/d/e",
            "https://CONTOSO.Webhook.Office.com./webhookb2/x",
            "https://webhook.office.com/webhookb2/x",
            "https://outlook.office.com/webhook/a@b/IncomingWebhook/c/d",
            "https://outlook.office365.com/webhook/a@b/IncomingWebhook/c/d",
            "https://outlook.office.com/WebHookB2/x",
        ] {
            let err = teams_url(retired).unwrap_err();
            assert_eq!(err.field, "url", "{retired}");
            assert!(err.message.contains("retired by Microsoft"), "{err}");
            assert!(err.message.contains("Workflows"), "{err}");
            // Only Teams has the rule.
            let url = TargetUrl::from_stored(retired).unwrap();
            assert_eq!(check_url(&PlatformConfig::Custom, &url), Ok(()));
            assert_eq!(check_url(&PlatformConfig::Slack, &url), Ok(()));
        }
        for workflows in [
            "https://prod-00.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=xyz",
            "https://default0123.45.environment.api.powerplatform.com:443/powerautomate/automations/direct/workflows/abc/triggers/manual/paths/invoke?api-version=1",
            "https://outlook.office.com/mail/",
            "https://notwebhook.office.com.example.com/webhookb2/x",
        ] {
            assert_eq!(teams_url(workflows), Ok(()), "{workflows}");
        }
    }

    #[test]
    fn unknown_platforms_are_named_in_the_error() {
        assert_eq!(parse_platform("slack"), Ok(Platform::Slack));
        let err = parse_platform("carrier-pigeon").unwrap_err();
        assert_eq!(err.field, "platform");
        assert!(err.message.contains("`carrier-pigeon`"), "{err}");
    }
}
