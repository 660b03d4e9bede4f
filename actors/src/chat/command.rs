//! Every command the bot knows, typed: a message's text becomes one
//! [`Command`], and the bot's handlers match on it. The menu Telegram shows
//! (`texts::commands`) lists the same names; a test holds the two together.

/// A command as the user sent it: `/name@bot args`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Start,
    Help,
    Balance,
    TopUp,
    PaySupport,
    Terms,
    Privacy,
    DeleteMyData,
    /// In a group: `on`, `off`, or empty (asks how it stands).
    AutoTranscribe(String),
    Cancel,
    /// An image from the description (empty: how to use it).
    Imagine(String),
    /// An image of the user's avatar (empty: how to use it).
    Generate(String),
    Avatars,
    History,
    Gallery,
    Settings,
    /// A `/word` that is none of ours.
    Unknown(String),
}

impl Command {
    /// Every name a user may type, in the order the menu shows them.
    pub const NAMES: [&'static str; 16] = [
        "start",
        "help",
        "balance",
        "history",
        "imagine",
        "generate",
        "avatars",
        "gallery",
        "settings",
        "cancel",
        "topup",
        "paysupport",
        "terms",
        "privacy",
        "deletemydata",
        "autotranscribe",
    ];

    /// The command a text holds; `None` when it is no command at all.
    pub fn parse(text: &str) -> Option<Self> {
        let (name, args) = split(text)?;
        Some(match name.as_str() {
            "start" => Command::Start,
            "help" => Command::Help,
            "balance" => Command::Balance,
            "topup" => Command::TopUp,
            "paysupport" => Command::PaySupport,
            "terms" => Command::Terms,
            "privacy" => Command::Privacy,
            "deletemydata" => Command::DeleteMyData,
            "autotranscribe" => Command::AutoTranscribe(args),
            "cancel" => Command::Cancel,
            "imagine" => Command::Imagine(args),
            "generate" => Command::Generate(args),
            "avatars" => Command::Avatars,
            "history" => Command::History,
            "gallery" => Command::Gallery,
            "settings" => Command::Settings,
            _ => Command::Unknown(name),
        })
    }
}

/// `/cmd@bot args` → (`cmd`, `args`).
fn split(text: &str) -> Option<(String, String)> {
    let rest = text.strip_prefix('/')?;
    let (head, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let command = head.split('@').next().unwrap_or_default().to_ascii_lowercase();
    (!command.is_empty()).then(|| (command, args.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{texts, Lang};

    #[test]
    fn commands_parse_with_and_without_the_bot_name() {
        assert_eq!(Command::parse("/start"), Some(Command::Start));
        assert_eq!(Command::parse("/imagine@aisha_bot  a red fox "), Some(Command::Imagine("a red fox".into())));
        assert_eq!(Command::parse("/Balance"), Some(Command::Balance));
        assert_eq!(Command::parse("/frobnicate now"), Some(Command::Unknown("frobnicate".into())));
        assert_eq!(Command::parse("hello"), None);
        assert_eq!(Command::parse("/"), None);
    }

    #[test]
    fn every_name_is_a_command_and_the_menu_lists_exactly_them() {
        for name in Command::NAMES {
            let parsed = Command::parse(&format!("/{name}"));
            assert!(!matches!(parsed, None | Some(Command::Unknown(_))), "/{name}");
        }
        for lang in [Lang::Ru, Lang::En] {
            let menu: Vec<&str> = texts::commands(lang).into_iter().map(|(name, _)| name).collect();
            assert_eq!(menu, Command::NAMES, "the menu in {lang:?}");
        }
    }
}
