//! Everything the bot says, in Russian and English. The user's Telegram
//! `language_code` picks the language; anything else gets Russian.

use super::callback::MenuItem;
use crate::jobs::kinds::DigestKind;
use crate::ledger::Entry;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ru,
    En,
}

impl Lang {
    pub fn from_code(code: Option<&str>) -> Self {
        match code.map(|c| c.split(['-', '_']).next().unwrap_or_default().to_ascii_lowercase()) {
            Some(c) if c == "en" => Lang::En,
            _ => Lang::Ru,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Ru => "ru",
            Lang::En => "en",
        }
    }

    pub(crate) fn pick(self, ru: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Ru => ru,
            Lang::En => en,
        }
    }
}

/// `(command, description)` for setMyCommands.
pub fn commands(lang: Lang) -> Vec<(&'static str, &'static str)> {
    vec![
        ("start", lang.pick("Главное меню", "Main menu")),
        ("help", lang.pick("Что я умею", "What I can do")),
        ("balance", lang.pick("Баланс и история списаний", "Balance and recent charges")),
        ("history", lang.pick("Последние расшифровки", "Recent transcripts")),
        ("imagine", lang.pick("Картинка по описанию", "Image from a description")),
        ("generate", lang.pick("Картинка с вашим аватаром", "Image with your avatar")),
        ("avatars", lang.pick("Ваши аватары", "Your avatars")),
        ("gallery", lang.pick("Ваши картинки", "Your images")),
        ("settings", lang.pick("Настройки", "Settings")),
        ("cancel", lang.pick("Отменить текущее", "Cancel what is running")),
        ("topup", lang.pick("Пополнить баланс", "Top up coins")),
        ("paysupport", lang.pick("Вопросы об оплате и возвраты", "Payment questions and refunds")),
        ("terms", lang.pick("Условия", "Terms")),
        ("privacy", lang.pick("Какие данные хранятся", "What data is kept")),
        ("deletemydata", lang.pick("Удалить мои данные", "Delete my data")),
        (
            "autotranscribe",
            lang.pick("В группе: расшифровывать голосовые (on/off)", "In a group: transcribe voice messages (on/off)"),
        ),
    ]
}

pub fn welcome(lang: Lang, bonus: Option<i64>, balance: i64) -> String {
    let greeting = lang.pick(
        "Привет! Я Аиша. Пришлите голосовое, аудио или видеосообщение — верну текст. /imagine нарисует картинку по описанию, а в /avatars можно обучить свой аватар.",
        "Hi! I'm Aisha. Send me a voice message, audio or video note and I'll send back the text. /imagine draws a picture from a description, and /avatars trains an avatar of you.",
    );
    let coins = match bonus {
        Some(b) => format!(
            "{} {b}. {} {balance}.",
            lang.pick("🎁 Приветственный бонус:", "🎁 Welcome bonus:"),
            lang.pick("Баланс:", "Balance:")
        ),
        None => format!("{} {balance}.", lang.pick("💰 Баланс:", "💰 Balance:")),
    };
    format!("{greeting}\n\n{coins}")
}

pub fn help(lang: Lang) -> String {
    let mut text = lang
        .pick(
            "Голосовые, аудио, видеосообщения и аудиофайлы до 20 МБ я превращаю в текст (оплата за каждую начатую минуту).\n\nКоманды:",
            "I turn voice messages, audio, video notes and audio files up to 20 MB into text (charged per started minute).\n\nCommands:",
        )
        .to_owned();
    for (command, description) in commands(lang) {
        text.push_str(&format!("\n/{command} — {description}"));
    }
    text
}

pub fn balance(lang: Lang, balance: i64, entries: &[Entry]) -> String {
    let mut text = format!("{} {balance}", lang.pick("💰 Баланс:", "💰 Balance:"));
    if !entries.is_empty() {
        text.push_str(lang.pick("\n\nПоследние операции:", "\n\nRecent entries:"));
        for e in entries {
            let what = reason(lang, &e.reason, e.job_kind.as_deref());
            text.push_str(&format!("\n{} {:+} — {what}", e.at.format("%d.%m %H:%M"), e.delta));
        }
    }
    text
}

fn reason(lang: Lang, reason: &str, kind: Option<&str>) -> String {
    let job = kind.map(|k| job_name(lang, k)).unwrap_or_default();
    match reason {
        "charge" => format!("{} {job}", lang.pick("списание:", "charge:")),
        "refund" => format!("{} {job}", lang.pick("возврат:", "refund:")),
        "welcome_bonus" => lang.pick("приветственный бонус", "welcome bonus").to_owned(),
        "admin_credit" => lang.pick("начисление", "credit").to_owned(),
        other => other.to_owned(),
    }
}

pub fn job_name(lang: Lang, kind: &str) -> String {
    match kind {
        "transcribe" => lang.pick("расшифровка", "transcription"),
        "fal.imagine" => lang.pick("картинка по описанию", "text-to-image"),
        "fal.generate" => lang.pick("картинка с аватаром", "avatar image"),
        "fal.train" => lang.pick("обучение аватара", "avatar training"),
        "transcript.digest" => lang.pick("обработка расшифровки", "transcript digest"),
        _ => kind,
    }
    .to_owned()
}

pub fn insufficient(lang: Lang, price: i64, balance: i64) -> String {
    match lang {
        Lang::Ru => {
            format!("Недостаточно монет: нужно {price}, на балансе {balance}. Пополните баланс и попробуйте снова.")
        }
        Lang::En => format!("Not enough coins: this costs {price}, your balance is {balance}. Top up and try again."),
    }
}

pub fn queued(lang: Lang, kind: &str, price: i64, balance: i64) -> String {
    let what = job_name(lang, kind);
    match lang {
        Lang::Ru => format!("⏳ Принято в работу: {what}. Списано {price}, баланс {balance}. Пришлю результат, как только будет готово."),
        Lang::En => format!("⏳ Queued: {what}. Charged {price}, balance {balance}. I'll send the result as soon as it is ready."),
    }
}

pub fn already_queued(lang: Lang) -> &'static str {
    lang.pick(
        "Этот запрос уже в работе — повторно не списываю.",
        "This request is already being worked on — not charged again.",
    )
}

/// A file over what this bot can fetch (`limit`: 20 MB, or 2000 MB with a local Bot API server).
pub fn too_big(lang: Lang, size: u64, limit: u64) -> String {
    let mb = size as f64 / (1024.0 * 1024.0);
    let limit = limit / (1024 * 1024);
    match lang {
        Lang::Ru => format!("Файл {mb:.1} МБ: Telegram позволяет ботам скачивать файлы только до {limit} МБ. Пришлите запись покороче или сожмите её."),
        Lang::En => format!("The file is {mb:.1} MB: Telegram lets bots download files of up to {limit} MB only. Send a shorter or compressed recording."),
    }
}

pub fn imagine_usage(lang: Lang) -> &'static str {
    lang.pick(
        "Напишите описание после команды, например: /imagine рыжий кот в космосе",
        "Write a description after the command, e.g. /imagine a ginger cat in space",
    )
}

pub fn generate_usage(lang: Lang) -> &'static str {
    lang.pick(
        "Напишите описание после команды, например: /generate я на вершине горы",
        "Write a description after the command, e.g. /generate me on a mountain top",
    )
}

pub fn no_avatar(lang: Lang) -> &'static str {
    lang.pick("У вас ещё нет аватара. Создайте его в /avatars.", "You have no avatar yet. Create one in /avatars.")
}

pub fn no_transcripts(lang: Lang) -> &'static str {
    lang.pick("Расшифровок пока нет — пришлите голосовое сообщение.", "No transcripts yet — send a voice message.")
}

pub fn no_images(lang: Lang) -> &'static str {
    lang.pick("Картинок пока нет — попробуйте /imagine.", "No images yet — try /imagine.")
}

pub fn settings(lang: Lang, aspect: &str) -> String {
    let label = aspect_buttons().iter().find(|(k, _)| *k == aspect).map(|(_, l)| *l).unwrap_or("1:1");
    match lang {
        Lang::Ru => format!("⚙️ Настройки\nЯзык бота: русский (по языку Telegram).\nФормат картинок: {label}"),
        Lang::En => format!("⚙️ Settings\nBot language: English (from your Telegram language).\nImage format: {label}"),
    }
}

pub fn cancelled(lang: Lang, jobs: usize, refunded: i64) -> String {
    match (lang, jobs) {
        (Lang::Ru, 0) => "Отменять нечего.".to_owned(),
        (Lang::En, 0) => "Nothing to cancel.".to_owned(),
        (Lang::Ru, n) => format!("Отменено задач: {n}. Возвращено монет: {refunded}."),
        (Lang::En, n) => format!("Cancelled {n} job(s). Refunded {refunded} coins."),
    }
}

pub fn unsupported(lang: Lang) -> &'static str {
    lang.pick(
        "С этим я пока не умею работать. Пришлите голосовое или аудио, или выберите действие в /start.",
        "I can't do anything with this yet. Send a voice message or audio, or pick an action in /start.",
    )
}

pub fn private_only(lang: Lang) -> &'static str {
    lang.pick(
        "Это — в личном чате со мной: откройте его и отправьте команду там.",
        "That one works in a private chat with me: open it and send the command there.",
    )
}

pub fn unknown_command(lang: Lang) -> &'static str {
    lang.pick("Не знаю такой команды. Список команд — /help.", "I don't know that command. See /help.")
}

pub fn something_went_wrong(lang: Lang) -> &'static str {
    lang.pick(
        "Что-то пошло не так. Попробуйте ещё раз чуть позже.",
        "Something went wrong. Please try again a little later.",
    )
}

pub fn transcribing(lang: Lang, done: usize, total: usize) -> String {
    let what = lang.pick("🎧 Расшифровываю", "🎧 Transcribing");
    if total > 1 {
        format!("{what}… {done}/{total}")
    } else {
        format!("{what}…")
    }
}

pub fn transcribed(lang: Lang) -> &'static str {
    lang.pick("✅ Готово", "✅ Done")
}

pub fn no_speech(lang: Lang) -> &'static str {
    lang.pick("В записи не удалось распознать речь.", "No speech was recognised in the recording.")
}

pub fn unreadable_audio(lang: Lang) -> &'static str {
    lang.pick(
        "Не получилось прочитать звук из этого файла. Пришлите другой формат.",
        "I could not read any audio from this file. Please send another format.",
    )
}

pub fn transcription_unavailable(lang: Lang) -> &'static str {
    lang.pick("Сервис расшифровки сейчас недоступен.", "The transcription service is unavailable right now.")
}

pub fn refunded(lang: Lang, coins: i64) -> String {
    match (lang, coins) {
        (_, 0) => String::new(),
        (Lang::Ru, n) => format!("Монеты возвращены: {n}."),
        (Lang::En, n) => format!("{n} coins refunded."),
    }
}

pub fn failed(lang: Lang, kind: &str) -> String {
    match lang {
        Lang::Ru => format!("❌ Не получилось: {}.", job_name(lang, kind)),
        Lang::En => format!("❌ Failed: {}.", job_name(lang, kind)),
    }
}

pub fn transcript_intro(lang: Lang, seconds: f64) -> String {
    let minutes = (seconds / 60.0).floor() as u64;
    let secs = (seconds % 60.0).round() as u64;
    format!("{} ({minutes}:{secs:02})", lang.pick("📝 Расшифровка", "📝 Transcript"))
}

/// Digest kinds under a transcript: (callback kind, label).
/// The button under a transcript, and the title of the answer.
pub fn digest_button(lang: Lang, kind: DigestKind) -> &'static str {
    match kind {
        DigestKind::Summary => lang.pick("📋 Кратко", "📋 Summary"),
        DigestKind::Actions => lang.pick("✅ Задачи", "✅ Action items"),
        DigestKind::Minutes => lang.pick("🗒 Протокол", "🗒 Meeting minutes"),
    }
}

/// The instruction for a digest, answered in the user's language.
pub fn digest_prompt(lang: Lang, kind: DigestKind) -> String {
    let task = match kind {
        DigestKind::Actions => "List the action items from this transcript: who does what by when, as a bulleted list. If there are none, say so.",
        DigestKind::Minutes => "Write meeting minutes for this transcript: participants if known, topics discussed, decisions, action items.",
        DigestKind::Summary => "Summarise this transcript in a few short paragraphs, keeping every important fact.",
    };
    let language = lang.pick("Russian", "English");
    format!("{task} Answer in {language}. Use plain text, no markdown tables.")
}

pub fn history_title(lang: Lang, page: i64) -> String {
    match lang {
        Lang::Ru => format!("📝 Ваши расшифровки (стр. {}):", page + 1),
        Lang::En => format!("📝 Your transcripts (page {}):", page + 1),
    }
}

pub fn transcript_gone(lang: Lang) -> &'static str {
    lang.pick("Эта расшифровка не найдена.", "That transcript was not found.")
}

/// A generated image's caption: the prompt and, if one was chosen, the
/// aspect ratio as people say it ("16:9"); never our model's name.
pub fn image_caption(prompt: &str, aspect: Option<&str>) -> String {
    let prompt: String = prompt.chars().take(800).collect();
    let label = aspect.and_then(|a| aspect_buttons().into_iter().find(|(k, _)| *k == a)).map(|(_, l)| l);
    match label {
        Some(label) => format!("🎨 {prompt}\n{label}"),
        None => format!("🎨 {prompt}"),
    }
}

pub fn image_buttons(lang: Lang) -> [&'static str; 2] {
    [lang.pick("🔁 Ещё раз", "🔁 Regenerate"), lang.pick("⭐ В избранное", "⭐ Favourite")]
}

pub fn generation_unavailable(lang: Lang) -> &'static str {
    lang.pick("Сервис генерации сейчас недоступен.", "The image service is unavailable right now.")
}

pub fn generation_failed(lang: Lang, reason: &str) -> String {
    match lang {
        Lang::Ru => format!("Генерация не удалась: {reason}"),
        Lang::En => format!("The generation failed: {reason}"),
    }
}

pub fn avatar_ready(lang: Lang, name: &str) -> String {
    match lang {
        Lang::Ru => format!("✅ Аватар «{name}» готов! Попробуйте: /generate я в горах на закате"),
        Lang::En => format!("✅ Avatar “{name}” is ready! Try: /generate me in the mountains at sunset"),
    }
}

pub fn avatars_title(lang: Lang) -> &'static str {
    lang.pick("👤 Ваши аватары:", "👤 Your avatars:")
}

pub fn avatar_state(lang: Lang, state: &str) -> &'static str {
    match state {
        "collecting" => lang.pick("собираю фото", "collecting photos"),
        "queued" => lang.pick("в очереди", "queued"),
        "training" => lang.pick("обучается", "training"),
        "ready" => lang.pick("готов", "ready"),
        "failed" => lang.pick("ошибка", "failed"),
        _ => lang.pick("отменён", "cancelled"),
    }
}

pub fn new_avatar_button(lang: Lang) -> &'static str {
    lang.pick("➕ Новый аватар", "➕ New avatar")
}

pub fn ask_avatar_name(lang: Lang) -> &'static str {
    lang.pick("Как назовём аватар? Напишите имя.", "What shall we call the avatar? Send a name.")
}

pub fn ask_gender(lang: Lang) -> &'static str {
    lang.pick("Кто на фото?", "Who is in the photos?")
}

pub fn gender_buttons(lang: Lang) -> [(&'static str, &'static str); 2] {
    [("man", lang.pick("👨 Мужчина", "👨 Man")), ("woman", lang.pick("👩 Женщина", "👩 Woman"))]
}

pub fn ask_photos(lang: Lang, min: usize, max: usize) -> String {
    match lang {
        Lang::Ru => format!("Пришлите от {min} до {max} фото (JPEG, PNG или WebP, от 512 до 4096 пикселей по сторонам): лицо крупно, разные ракурсы и фон."),
        Lang::En => format!("Send {min} to {max} photos (JPEG, PNG or WebP, 512 to 4096 px a side): your face close up, different angles and backgrounds."),
    }
}

pub fn photo_accepted(lang: Lang, count: usize, min: usize, max: usize) -> String {
    match (lang, count >= min) {
        (Lang::Ru, false) => format!("📸 Принято {count}/{max}. Нужно ещё минимум {}.", min - count),
        (Lang::En, false) => format!("📸 Got {count}/{max}. At least {} more needed.", min - count),
        (Lang::Ru, true) => format!("📸 Принято {count}/{max}. Можно обучать!"),
        (Lang::En, true) => format!("📸 Got {count}/{max}. Ready to train!"),
    }
}

pub fn photo_rejected(lang: Lang, why: &str) -> String {
    match lang {
        Lang::Ru => format!("🚫 Фото не принято: {why}"),
        Lang::En => format!("🚫 Photo not accepted: {why}"),
    }
}

pub fn photo_problem(lang: Lang, problem: &str) -> &'static str {
    match problem {
        "format" => lang.pick("нужен JPEG, PNG или WebP", "it must be JPEG, PNG or WebP"),
        "small" => lang.pick("меньше 512 пикселей по короткой стороне", "under 512 px on its short side"),
        "large" => lang.pick("больше 4096 пикселей по длинной стороне", "over 4096 px on its long side"),
        "size" => lang.pick("файл больше 20 МБ", "the file is over 20 MB"),
        "duplicate" => lang.pick("такое фото уже есть", "this photo is already there"),
        _ => lang.pick("уже достаточно фото — нажмите «Обучить»", "there are enough photos already — press Train"),
    }
}

pub fn train_button(lang: Lang) -> &'static str {
    lang.pick("🚀 Обучить", "🚀 Train")
}

pub fn avatar_buttons(lang: Lang) -> [&'static str; 3] {
    [
        lang.pick("🔄 Обновить", "🔄 Refresh"),
        lang.pick("✖️ Отменить", "✖️ Cancel"),
        lang.pick("⭐ Сделать основным", "⭐ Make main"),
    ]
}

pub fn not_enough_photos(lang: Lang, have: usize, min: usize) -> String {
    match lang {
        Lang::Ru => format!("Нужно минимум {min} фото, сейчас {have}."),
        Lang::En => format!("At least {min} photos are needed; there are {have}."),
    }
}

pub fn training_cancelled(lang: Lang, coins: i64) -> String {
    format!("{} {}", lang.pick("Обучение отменено.", "Training cancelled."), refunded(lang, coins))
}

pub fn gallery_caption(index: i64, total: i64, prompt: &str, favourite: bool) -> String {
    let star = if favourite { " ⭐" } else { "" };
    let prompt: String = prompt.chars().take(900).collect();
    format!("🖼 {}/{total}{star}\n{prompt}", index + 1)
}

pub fn gallery_buttons(lang: Lang) -> [&'static str; 3] {
    ["⭐", lang.pick("🗑 Удалить", "🗑 Delete"), lang.pick("🔁 Ещё раз", "🔁 Regenerate")]
}

pub fn image_deleted(lang: Lang) -> &'static str {
    lang.pick("Удалено.", "Deleted.")
}

pub fn favourite_set(lang: Lang, on: bool) -> &'static str {
    match on {
        true => lang.pick("Добавлено в избранное ⭐", "Added to favourites ⭐"),
        false => lang.pick("Убрано из избранного", "Removed from favourites"),
    }
}

pub fn aspect_buttons() -> [(&'static str, &'static str); 5] {
    [
        ("square_hd", "1:1"),
        ("portrait_4_3", "3:4"),
        ("portrait_16_9", "9:16"),
        ("landscape_4_3", "4:3"),
        ("landscape_16_9", "16:9"),
    ]
}

pub fn aspect_set(lang: Lang, label: &str) -> String {
    match lang {
        Lang::Ru => format!("Формат картинок: {label}"),
        Lang::En => format!("Image format: {label}"),
    }
}

/// Inline main menu: (label, item) rows.
pub fn main_menu(lang: Lang) -> Vec<Vec<(&'static str, MenuItem)>> {
    vec![
        vec![
            (lang.pick("🎨 Картинка", "🎨 Image"), MenuItem::Imagine),
            (lang.pick("👤 Аватары", "👤 Avatars"), MenuItem::Avatars),
        ],
        vec![
            (lang.pick("🖼 Галерея", "🖼 Gallery"), MenuItem::Gallery),
            (lang.pick("📝 История", "📝 History"), MenuItem::History),
        ],
        vec![
            (lang.pick("💰 Баланс", "💰 Balance"), MenuItem::Balance),
            (lang.pick("⭐ Пополнить", "⭐ Top up"), MenuItem::TopUp),
        ],
        vec![(lang.pick("⚙️ Настройки", "⚙️ Settings"), MenuItem::Settings)],
        vec![(lang.pick("❓ Помощь", "❓ Help"), MenuItem::Help)],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_comes_from_the_code_with_russian_by_default() {
        assert_eq!(Lang::from_code(Some("en")), Lang::En);
        assert_eq!(Lang::from_code(Some("en-GB")), Lang::En);
        assert_eq!(Lang::from_code(Some("ru")), Lang::Ru);
        assert_eq!(Lang::from_code(Some("de")), Lang::Ru);
        assert_eq!(Lang::from_code(None), Lang::Ru);
    }

    #[test]
    fn help_lists_every_command() {
        let text = help(Lang::En);
        for (command, _) in commands(Lang::En) {
            assert!(text.contains(&format!("/{command}")), "{command}");
        }
    }
}
