//! Every command the bot knows, typed and declared once ([`COMMANDS`]): a
//! message's text becomes one [`Command`], the bot's handlers match on it,
//! and the menu Telegram shows and `/help` are read from the same table.

use super::Lang;

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
    /// In a group, as a reply to a voice: transcribe it, paid by who asks.
    Transcribe,
    /// As a reply to a transcript: translate it into this language (empty:
    /// the languages offered).
    Translate(String),
    /// The user's names and terms: shown (empty), `add …`, `remove …`, `clear`.
    Glossary(String),
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

/// One command, declared once: the name a user types, what the menu and
/// `/help` say of it in both languages, and how its text is read. The bot's
/// handlers match on [`Command`], so one without a handler does not compile.
pub struct Declared {
    pub name: &'static str,
    pub about_ru: &'static str,
    pub about_en: &'static str,
    read: fn(String) -> Command,
}

/// Every command, in the order the menu shows them.
pub const COMMANDS: [Declared; 19] = [
    Declared {
        name: "start",
        about_ru: "Главное меню",
        about_en: "Main menu",
        // `?start=topup`: the link a guest answer gives a caller short of coins.
        read: |payload| if payload == "topup" { Command::TopUp } else { Command::Start },
    },
    Declared { name: "help", about_ru: "Что я умею", about_en: "What I can do", read: |_| Command::Help },
    Declared {
        name: "balance",
        about_ru: "Баланс и история списаний",
        about_en: "Balance and recent charges",
        read: |_| Command::Balance,
    },
    Declared {
        name: "history",
        about_ru: "Последние расшифровки",
        about_en: "Recent transcripts",
        read: |_| Command::History,
    },
    Declared {
        name: "translate",
        about_ru: "Ответом на расшифровку: перевести (например, /translate en)",
        about_en: "As a reply to a transcript: translate it (e.g. /translate en)",
        read: |code| Command::Translate(code.to_ascii_lowercase()),
    },
    Declared {
        name: "glossary",
        about_ru: "Имена и термины ваших записей",
        about_en: "Names and terms in your recordings",
        read: Command::Glossary,
    },
    Declared {
        name: "imagine",
        about_ru: "Картинка по описанию",
        about_en: "Image from a description",
        read: Command::Imagine,
    },
    Declared {
        name: "generate",
        about_ru: "Картинка с вашим аватаром",
        about_en: "Image with your avatar",
        read: Command::Generate,
    },
    Declared {
        name: "avatars", about_ru: "Ваши аватары", about_en: "Your avatars", read: |_| Command::Avatars
    },
    Declared {
        name: "gallery", about_ru: "Ваши картинки", about_en: "Your images", read: |_| Command::Gallery
    },
    Declared { name: "settings", about_ru: "Настройки", about_en: "Settings", read: |_| Command::Settings },
    Declared {
        name: "cancel",
        about_ru: "Отменить текущее",
        about_en: "Cancel what is running",
        read: |_| Command::Cancel,
    },
    Declared {
        name: "topup", about_ru: "Пополнить баланс", about_en: "Top up coins", read: |_| Command::TopUp
    },
    Declared {
        name: "paysupport",
        about_ru: "Вопросы об оплате и возвраты",
        about_en: "Payment questions and refunds",
        read: |_| Command::PaySupport,
    },
    Declared { name: "terms", about_ru: "Условия", about_en: "Terms", read: |_| Command::Terms },
    Declared {
        name: "privacy",
        about_ru: "Какие данные хранятся",
        about_en: "What data is kept",
        read: |_| Command::Privacy,
    },
    Declared {
        name: "deletemydata",
        about_ru: "Удалить мои данные",
        about_en: "Delete my data",
        read: |_| Command::DeleteMyData,
    },
    Declared {
        name: "autotranscribe",
        about_ru: "В группе: расшифровывать голосовые (on/off)",
        about_en: "In a group: transcribe voice messages (on/off)",
        read: Command::AutoTranscribe,
    },
    Declared {
        name: "transcribe",
        about_ru: "В группе, ответом на голосовое: расшифровать его",
        about_en: "In a group, as a reply to a voice: transcribe it",
        read: |_| Command::Transcribe,
    },
];

impl Command {
    /// The command a text holds; `None` when it is no command at all.
    pub fn parse(text: &str) -> Option<Self> {
        let (name, args) = split(text)?;
        Some(match COMMANDS.iter().find(|c| c.name == name) {
            Some(command) => (command.read)(args),
            None => Command::Unknown(name),
        })
    }
}

/// `(command, description)` for setMyCommands and `/help`.
pub fn menu(lang: Lang) -> Vec<(&'static str, &'static str)> {
    COMMANDS.iter().map(|c| (c.name, lang.pick(c.about_ru, c.about_en))).collect()
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

    #[test]
    fn commands_parse_with_and_without_the_bot_name() {
        assert_eq!(Command::parse("/start"), Some(Command::Start));
        assert_eq!(Command::parse("/start topup"), Some(Command::TopUp), "the deep link from a guest answer");
        assert_eq!(Command::parse("/imagine@aisha_bot  a red fox "), Some(Command::Imagine("a red fox".into())));
        assert_eq!(Command::parse("/Balance"), Some(Command::Balance));
        assert_eq!(Command::parse("/frobnicate now"), Some(Command::Unknown("frobnicate".into())));
        assert_eq!(Command::parse("hello"), None);
        assert_eq!(Command::parse("/"), None);
    }

    #[test]
    fn every_declared_command_reads_as_its_own_and_the_menu_lists_each_once() {
        let mut seen = Vec::new();
        for declared in &COMMANDS {
            let parsed = Command::parse(&format!("/{}", declared.name)).unwrap();
            assert!(!matches!(parsed, Command::Unknown(_)), "/{}", declared.name);
            let kind = std::mem::discriminant(&parsed);
            assert!(!seen.contains(&kind), "/{} reads as another command's", declared.name);
            seen.push(kind);
        }
        for lang in [Lang::Ru, Lang::En] {
            let names: Vec<&str> = menu(lang).into_iter().map(|(name, _)| name).collect();
            let declared: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
            assert_eq!(names, declared, "the menu in {lang:?}");
        }
    }
}
