//! What the bot says about the transcription language, subtitles, groups and
//! the user's data, in Russian and English.

use super::texts::Lang;

/// Languages a recording can be pinned to: (ISO-639-1 code, its own name).
/// `auto` lets the API detect it.
pub const SPOKEN_LANGUAGES: [(&str, &str); 9] = [
    ("auto", "🌐 Auto"),
    ("ru", "Русский"),
    ("en", "English"),
    ("kk", "Қазақша"),
    ("uk", "Українська"),
    ("de", "Deutsch"),
    ("es", "Español"),
    ("fr", "Français"),
    ("tr", "Türkçe"),
];

pub fn spoken_language_name(lang: Lang, code: &str) -> &'static str {
    match code {
        "auto" => lang.pick("определять автоматически", "detect automatically"),
        _ => SPOKEN_LANGUAGES.iter().find(|(c, _)| *c == code).map(|(_, name)| *name).unwrap_or("?"),
    }
}

pub fn spoken_language_line(lang: Lang, code: &str) -> String {
    format!("{} {}", lang.pick("Язык записей:", "Recording language:"), spoken_language_name(lang, code))
}

pub fn spoken_language_set(lang: Lang, code: &str) -> String {
    let hint = match code {
        "auto" => {
            lang.pick("Язык будет определяться по каждой записи.", "The language is detected for each recording.")
        }
        _ => lang.pick(
            "Короткие записи больше не спутаются с другим языком.",
            "Short notes will no longer be mistaken for another language.",
        ),
    };
    format!("✅ {}\n{hint}", spoken_language_line(lang, code))
}

/// The buttons under a transcript for files: (label, callback format).
pub fn file_buttons(lang: Lang, timed: bool) -> Vec<(&'static str, &'static str)> {
    if timed {
        vec![("🎬 .srt", "srt"), ("🎬 .vtt", "vtt"), ("📄 .txt", "txt")]
    } else {
        vec![("📄 .txt", "txt"), (lang.pick("🎬 Субтитры: нет таймкодов", "🎬 Subtitles: no timing"), "none")]
    }
}

pub fn subtitles_caption(lang: Lang, format: &str) -> String {
    match format {
        "srt" | "vtt" => format!("🎬 {} .{format}", lang.pick("Субтитры", "Subtitles")),
        _ => lang.pick("📄 Текст с таймкодами", "📄 Text with timestamps").to_owned(),
    }
}

pub fn no_timing(lang: Lang, model: &str) -> String {
    match lang {
        Lang::Ru => format!(
            "Для субтитров нужны таймкоды, а эта расшифровка сделана моделью без них ({model}). Текст — кнопкой .txt."
        ),
        Lang::En => format!("Subtitles need timestamps, and this transcript was made by a model that gives none ({model}). The text is under .txt."),
    }
}

// ---- groups ----

pub fn autotranscribe_usage(lang: Lang) -> &'static str {
    lang.pick(
        "В группе: /autotranscribe on — расшифровывать голосовые и видеосообщения, /autotranscribe off — перестать. Включить может администратор группы; оплата — с его баланса.",
        "In a group: /autotranscribe on transcribes voice messages and video notes, /autotranscribe off stops. A group admin turns it on, and it is paid from their balance.",
    )
}

pub fn autotranscribe_only_in_groups(lang: Lang) -> &'static str {
    lang.pick(
        "Эта команда — для групп. Добавьте меня в группу и отправьте там /autotranscribe on. Здесь я и так расшифровываю всё, что вы пришлёте.",
        "This command is for groups. Add me to a group and send /autotranscribe on there. Here I already transcribe whatever you send.",
    )
}

pub fn admins_only(lang: Lang) -> &'static str {
    lang.pick(
        "Включать и выключать расшифровку могут только администраторы группы.",
        "Only group admins can turn transcription on or off.",
    )
}

pub fn autotranscribe_on(lang: Lang, payer: &str, per_minute: i64) -> String {
    match lang {
        Lang::Ru => format!(
            "✅ Расшифровка включена: отвечаю текстом на голосовые и видеосообщения. Оплачивает {payer}: {per_minute} монет за начатую минуту.\n\nЕсли я не вижу голосовых, выключите у меня режим приватности (@BotFather → /setprivacy → Disable) или сделайте меня администратором группы."
        ),
        Lang::En => format!(
            "✅ Transcription is on: I answer voice messages and video notes with their text. Paid by {payer}: {per_minute} coins per started minute.\n\nIf I don't see voice messages, turn my privacy mode off (@BotFather → /setprivacy → Disable) or make me a group admin."
        ),
    }
}

pub fn autotranscribe_off(lang: Lang) -> &'static str {
    lang.pick("Расшифровка в этой группе выключена.", "Transcription is off in this group.")
}

pub fn group_out_of_coins(lang: Lang, payer: &str) -> String {
    match lang {
        Lang::Ru => format!("⏸ Расшифровка на паузе: у {payer} закончились монеты. Продолжу сама, как только баланс пополнят (/topup в личном чате со мной)."),
        Lang::En => format!("⏸ Transcription is paused: {payer} ran out of coins. I'll carry on by myself once they top up (/topup in a private chat with me)."),
    }
}

pub fn group_payer_stepped_down(lang: Lang, payer: &str) -> String {
    match lang {
        Lang::Ru => format!("⏹ Расшифровка выключена: {payer} больше не администратор группы и не оплачивает её. Администратор может включить снова: /autotranscribe on."),
        Lang::En => format!("⏹ Transcription is off: {payer} is no longer a group admin, so no longer pays for it. An admin can turn it on again with /autotranscribe on."),
    }
}

pub fn no_longer_paying(lang: Lang, group: &str) -> String {
    match lang {
        Lang::Ru => format!("Вы больше не администратор «{group}»: расшифровка там выключена, с вас за неё больше не списывается."),
        Lang::En => format!("You are no longer an admin of “{group}”: transcription there is off, and nothing more is charged to you for it."),
    }
}

pub fn group_charged(lang: Lang, group: &str, price: i64, balance: i64) -> String {
    match lang {
        Lang::Ru => format!("Расшифровка в «{group}»: списано {price}, баланс {balance}."),
        Lang::En => format!("Transcription in “{group}”: charged {price}, balance {balance}."),
    }
}

// ---- your data ----

pub fn privacy(lang: Lang) -> &'static str {
    lang.pick(
        "🔒 Ваши данные\n\nЧто хранится:\n• Telegram id, имя и язык; настройки;\n• записи (аудио) и расшифровки — пока вы их не удалите;\n• фото для аватаров, обученные аватары и созданные картинки — пока вы их не удалите;\n• полученные ботом сообщения — 7 дней, ответы FAL — 30 дней;\n• история монет и платежей — как финансовые записи.\n\nЗаписи и тексты отправляются в OpenAI для расшифровки, фото и описания — в FAL для генерации.\n\n/deletemydata удаляет всё это (файлы в хранилище тоже), кроме записей о монетах и платежах: они остаются без содержимого.",
        "🔒 Your data\n\nWhat is kept:\n• your Telegram id, name and language; your settings;\n• recordings (audio) and transcripts — until you delete them;\n• avatar photos, trained avatars and generated images — until you delete them;\n• messages the bot receives — 7 days, FAL's answers — 30 days;\n• your coin and payment history — as financial records.\n\nRecordings go to OpenAI to be transcribed; photos and prompts go to FAL to make images.\n\n/deletemydata deletes all of it (stored files included) except the coin and payment records, which stay without their content.",
    )
}

pub fn confirm_delete(lang: Lang) -> &'static str {
    lang.pick(
        "⚠️ Удалить все ваши расшифровки, записи, фото, аватары и картинки? Это нельзя отменить. Баланс и история платежей останутся.",
        "⚠️ Delete all your transcripts, recordings, photos, avatars and images? This cannot be undone. Your balance and payment history stay.",
    )
}

pub fn delete_buttons(lang: Lang) -> [&'static str; 2] {
    [lang.pick("🗑 Да, удалить всё", "🗑 Yes, delete everything"), lang.pick("Отмена", "Keep my data")]
}

pub fn deleted(lang: Lang, files: usize, running: usize) -> String {
    let mut text = match lang {
        Lang::Ru => format!("✅ Ваши данные удалены (файлов в хранилище: {files})."),
        Lang::En => format!("✅ Your data is deleted ({files} stored files)."),
    };
    if running > 0 {
        text.push('\n');
        text.push_str(&match lang {
            Lang::Ru => format!("Задач уже в работе: {running}. Их результат придёт; отправьте /deletemydata ещё раз, когда он придёт, чтобы удалить и его."),
            Lang::En => format!("{running} job(s) were already under way. Their result will arrive; send /deletemydata again after it does to delete that too."),
        });
    }
    text
}

pub fn delete_kept(lang: Lang) -> &'static str {
    lang.pick("Хорошо, ничего не удалено.", "OK, nothing was deleted.")
}

// ---- rough edges ----

pub fn photo_outside_avatars(lang: Lang) -> &'static str {
    lang.pick(
        "Фото я принимаю для аватара: /avatars → «Новый аватар». А картинку по описанию нарисую через /imagine.",
        "I take photos to train an avatar: /avatars → “New avatar”. To draw a picture from a description, use /imagine.",
    )
}

pub fn avatar_dialogue_stopped(lang: Lang) -> &'static str {
    lang.pick(
        "Создание аватара прервано. Начать заново — /avatars.",
        "Avatar creation stopped. Start again with /avatars.",
    )
}

pub fn no_avatar_yet(lang: Lang) -> &'static str {
    lang.pick(
        "У вас ещё нет аватара. Нажмите «Новый аватар» — понадобится 10–20 фото.",
        "You have no avatar yet. Press “New avatar” — you'll need 10–20 photos.",
    )
}
